//! What handlers call: reads over one snapshot version, and writes carried to JumpCloud and published
//! into the snapshot.

pub mod pins;
pub mod read;
pub mod write;

use std::time::Duration;

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

use crate::scim::error::ScimError;

/// A write that failed: the SCIM error, and when to retry if retrying can help.
#[derive(Debug, Clone, PartialEq)]
pub struct WriteError {
    pub error: ScimError,
    /// Sent as `Retry-After` (503 and 429).
    pub retry_after: Option<Duration>,
}

impl From<ScimError> for WriteError {
    fn from(error: ScimError) -> Self {
        Self {
            error,
            retry_after: None,
        }
    }
}

impl IntoResponse for WriteError {
    fn into_response(self) -> Response {
        let mut resp = self.error.into_response();
        if let Some(ra) = self.retry_after {
            let secs = ra.as_secs().max(1);
            if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
                resp.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        resp
    }
}
