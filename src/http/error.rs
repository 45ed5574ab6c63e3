//! The one place errors become HTTP answers: every `IntoResponse` for an error type of a lower layer.
//!
//! Lower layers return typed errors ([`ScimError`] from the protocol core, [`WriteError`] from the
//! directory) and never build responses; this file renders them as RFC 7644 §3.12 bodies with the SCIM
//! content type, adding `Retry-After` where retrying helps.

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

use crate::directory::WriteError;
use crate::scim::SCIM_CONTENT_TYPE;
use crate::scim::error::ScimError;

impl IntoResponse for ScimError {
    fn into_response(self) -> Response {
        let status = self.status_code();
        let body = serde_json::to_vec(&self.to_json()).unwrap_or_default();
        let mut response = (status, body).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(SCIM_CONTENT_TYPE),
        );
        response
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn response_is_scim_json() {
        let response = ScimError::uniqueness("userName taken").into_response();
        assert_eq!(response.status(), axum::http::StatusCode::CONFLICT);
        assert_eq!(response.headers()[header::CONTENT_TYPE], SCIM_CONTENT_TYPE);
    }

    #[test]
    fn errors_render_as_scim_bodies_with_retry_after_when_it_helps() {
        let r = ScimError::uniqueness("taken").into_response();
        assert_eq!(r.status(), 409);
        assert_eq!(r.headers()[header::CONTENT_TYPE], SCIM_CONTENT_TYPE);
        assert!(r.headers().get(header::RETRY_AFTER).is_none());
        let r = WriteError {
            error: ScimError::new(503, None, "busy"),
            retry_after: Some(Duration::from_millis(300)),
        }
        .into_response();
        assert_eq!(r.status(), 503);
        assert_eq!(
            r.headers()[header::RETRY_AFTER],
            "1",
            "rounded up to a second"
        );
        // No snapshot yet: nothing true to answer with.
        let r = crate::directory::not_ready().into_response();
        assert_eq!(r.status(), 503);
        assert_eq!(r.headers()[header::RETRY_AFTER], "5");
    }
}
