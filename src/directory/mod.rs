//! What handlers call: reads over one snapshot version, and writes carried to JumpCloud and published
//! into the snapshot.
//!
//! Rooms: [`reader`] (which version a read sees: the latest, or the one a walk is pinned to, and cursor
//! walks), [`pins`] (the pinned walks), [`read`] (a list query evaluated over one version), [`write`]
//! (users, groups and the upstream calls with their one retry path). Knows nothing of HTTP: handlers
//! parse requests and render what comes back; errors are [`WriteError`]s, rendered by `http`.

pub mod pins;
pub mod read;
pub mod reader;
pub mod write;

use std::time::Duration;

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

/// The shared store (Redis, for replicas) cannot take a write now: nothing was sent to JumpCloud.
pub fn store_unavailable(e: &crate::cache::replicas::StoreError) -> WriteError {
    let why = match e {
        crate::cache::replicas::StoreError::Busy(_) => {
            "another replica is writing this resource or publishing; nothing was changed; retry shortly"
        }
        _ => {
            "the shared store (Redis) is unavailable, so writes are paused; nothing was changed; retry shortly"
        }
    };
    WriteError {
        error: ScimError::new(503, None, why),
        retry_after: Some(Duration::from_secs(5)),
    }
}

/// No complete snapshot yet: nothing true to answer or write against. Retrying in a few seconds helps.
pub fn not_ready() -> WriteError {
    WriteError {
        error: ScimError::new(
            503,
            None,
            "the directory has not been loaded from JumpCloud yet; retry shortly",
        ),
        retry_after: Some(Duration::from_secs(5)),
    }
}
