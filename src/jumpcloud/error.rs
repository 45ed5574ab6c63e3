//! `JcError`: every way a JumpCloud call can fail, classified once so callers branch on variants, never on strings.
//!
//! Owns the status → class table, transport-error classification, error-body parsing (`message`, `error`,
//! `ErrorDetails` field violations) and `Retry-After` parsing. Must not know SCIM, nor which caller retries what:
//! it only says whether a failure is worth retrying.

use std::error::Error as _;
use std::time::Duration;

use serde::Deserialize;

/// Longest message kept from an upstream body or transport error; gateway pages can be kilobytes of HTML.
const MAX_MESSAGE_CHARS: usize = 300;

/// A failed JumpCloud call.
#[derive(Debug, thiserror::Error)]
pub enum JcError {
    /// Connect error, timeout, 408, 429, 500, 502, 503, 504: worth retrying later. `retry_after` from the header
    /// (seconds or HTTP-date), if any.
    #[error("JumpCloud unavailable{}: {message}", fmt_status(.status))]
    Transient {
        status: Option<u16>,
        retry_after: Option<Duration>,
        message: String,
        /// The request may have reached JumpCloud (and a write may have been applied).
        sent: bool,
    },
    /// 400 and other 4xx except 404/409/429 (and 408), plus 5xx codes that do not mean "try later": the request
    /// is wrong. `message` is JumpCloud's `message`/`error`/raw body, trimmed, never containing the API key.
    #[error("JumpCloud rejected the request (HTTP {status}): {message}")]
    Rejected {
        status: u16,
        message: String,
        /// `details[].fieldViolationsList[]` of an `ErrorDetails` body, as (field, description).
        field_violations: Vec<(String, String)>,
    },
    /// 404.
    #[error("JumpCloud: not found: {message}")]
    NotFound { message: String },
    /// 409, e.g. `{"message":"Already Exists"}` on a graph edge, or deleting a user who manages others.
    #[error("JumpCloud: conflict: {message}")]
    Conflict { message: String },
    /// 401/403: the API key (or the `x-org-id` that goes with it) is not accepted.
    #[error("JumpCloud refused the credentials (HTTP {status})")]
    Unauthorized { status: u16 },
    /// A list disagreed with its `totalCount` / `x-total-count`, a body did not parse, the answer was not one
    /// JumpCloud gives (e.g. a redirect), or the client was configured with something unusable.
    #[error("JumpCloud protocol error: {message}")]
    Protocol { message: String },
}

fn fmt_status(status: &Option<u16>) -> String {
    status.map(|s| format!(" (HTTP {s})")).unwrap_or_default()
}

// === impl JcError ===

impl JcError {
    /// Worth retrying later (for a write: only if the caller has made sure a retry cannot apply it twice).
    pub fn is_transient(&self) -> bool {
        matches!(self, JcError::Transient { .. })
    }

    /// The error in a sentence for people (logs, `/readyz`, `/status`): the status and what it means, with
    /// at most a short excerpt of what JumpCloud said (a gateway's HTML page is left out).
    pub fn in_words(&self) -> String {
        let short = |m: &str| {
            let plain = m.trim();
            if plain.starts_with('<') {
                return String::new();
            }
            let cut: String = plain.chars().take(160).collect();
            if cut.len() < plain.len() {
                format!(": {cut}…")
            } else if cut.is_empty() {
                String::new()
            } else {
                format!(": {cut}")
            }
        };
        match self {
            JcError::Transient {
                status: Some(429), ..
            } => "JumpCloud is throttling requests (HTTP 429)".to_owned(),
            JcError::Transient {
                status: Some(s),
                message,
                ..
            } => format!("JumpCloud is unavailable (HTTP {s}){}", short(message)),
            JcError::Transient {
                status: None,
                message,
                ..
            } => format!("no answer from JumpCloud{}", short(message)),
            JcError::Rejected {
                status, message, ..
            } => format!(
                "JumpCloud refused a request (HTTP {status}){}",
                short(message)
            ),
            JcError::NotFound { message } => format!("JumpCloud answered 404{}", short(message)),
            JcError::Conflict { message } => format!("JumpCloud answered 409{}", short(message)),
            JcError::Unauthorized { status } => format!(
                "JumpCloud refused this service's API key (HTTP {status}): check jumpcloud.api_key"
            ),
            JcError::Protocol { message } => {
                format!("JumpCloud answered unexpectedly{}", short(message))
            }
        }
    }

    /// How long JumpCloud asked us to wait, if it did.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            JcError::Transient { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// The HTTP status JumpCloud answered with, when there was an answer.
    pub fn status(&self) -> Option<u16> {
        match self {
            JcError::Transient { status, .. } => *status,
            JcError::Rejected { status, .. } | JcError::Unauthorized { status } => Some(*status),
            JcError::NotFound { .. } => Some(404),
            JcError::Conflict { .. } => Some(409),
            JcError::Protocol { .. } => None,
        }
    }

    /// The client's circuit breaker refused the call: nothing was sent, and asking again within `retry_after`
    /// fails the same way. Still [`Transient`](JcError::Transient) (JumpCloud is expected back), so callers that
    /// map errors exhaustively need no new arm.
    ///
    /// It is the only `Transient` error with no status and a `retry_after`: an answer always has a status, and a
    /// transport failure never carries a `Retry-After`. [`is_fail_fast`](Self::is_fail_fast) relies on that.
    pub fn is_fail_fast(&self) -> bool {
        matches!(
            self,
            JcError::Transient {
                status: None,
                retry_after: Some(_),
                sent: false,
                ..
            }
        )
    }

    /// The error for a call the breaker refused; `wait` is rounded up to whole seconds (at least one), which is
    /// what a `Retry-After` header passed on to a client can say.
    pub(crate) fn breaker_open(wait: Duration) -> Self {
        let secs = u64::try_from(wait.as_millis().div_ceil(1000))
            .unwrap_or(u64::MAX)
            .max(1);
        JcError::Transient {
            status: None,
            retry_after: Some(Duration::from_secs(secs)),
            message: "JumpCloud circuit breaker is open; failing fast".to_owned(),
            sent: false,
        }
    }

    pub(crate) fn protocol(message: impl Into<String>) -> Self {
        JcError::Protocol {
            message: message.into(),
        }
    }
}

/// What an HTTP status means to a caller. The one place that decides transient vs permanent for answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusClass {
    /// 2xx.
    Success,
    /// 408, 429, 500, 502, 503, 504.
    Transient,
    NotFound,
    Conflict,
    Unauthorized,
    /// Other 4xx, and 5xx that do not promise a later success (501, 505, …).
    Rejected,
    /// 1xx/3xx: JumpCloud does not send these to API calls; redirects are not followed so the key never
    /// travels to another host.
    Unexpected,
}

/// Classify an HTTP status.
pub fn classify_status(status: u16) -> StatusClass {
    match status {
        200..=299 => StatusClass::Success,
        // 408 is the server giving up on a slow request: the same request can succeed later.
        408 | 429 | 500 | 502 | 503 | 504 => StatusClass::Transient,
        401 | 403 => StatusClass::Unauthorized,
        404 => StatusClass::NotFound,
        409 => StatusClass::Conflict,
        400..=599 => StatusClass::Rejected,
        _ => StatusClass::Unexpected,
    }
}

/// Build the error for a non-2xx answer. `secret` (the API key) is scrubbed from any text kept.
pub(crate) fn from_response(
    status: u16,
    retry_after: Option<&str>,
    body: &[u8],
    now: jiff::Timestamp,
    secret: &str,
) -> JcError {
    let parsed = ErrorBody::parse(body, secret);
    match classify_status(status) {
        StatusClass::Transient => JcError::Transient {
            status: Some(status),
            retry_after: retry_after.and_then(|v| parse_retry_after(v, now)),
            message: parsed.message,
            sent: true,
        },
        StatusClass::Unauthorized => JcError::Unauthorized { status },
        StatusClass::NotFound => JcError::NotFound {
            message: parsed.message,
        },
        StatusClass::Conflict => JcError::Conflict {
            message: parsed.message,
        },
        StatusClass::Rejected => JcError::Rejected {
            status,
            message: parsed.message,
            field_violations: parsed.field_violations,
        },
        StatusClass::Unexpected | StatusClass::Success => {
            JcError::protocol(format!("unexpected HTTP {status}: {}", parsed.message))
        }
    }
}

/// Classify a request that got no usable answer. Walks the error's source chain through reqwest's own
/// predicates (which look at hyper and io errors), never at message text.
pub(crate) fn from_transport(err: reqwest::Error, secret: &str) -> JcError {
    // The URL carries no secret, but ids in paths are not worth repeating in every log line either.
    let err = err.without_url();
    let message = clean(&error_chain(&err), secret);
    if err.is_builder() || err.is_redirect() {
        return JcError::protocol(message);
    }
    // A connect error (including a connect timeout) means no byte of the request left this process.
    // Anything later (a timeout waiting for the answer, a reset mid-exchange) may have been applied.
    let sent = !err.is_connect();
    let message = if err.is_timeout() {
        format!("timed out: {message}")
    } else {
        message
    };
    JcError::Transient {
        status: err.status().map(|s| s.as_u16()),
        retry_after: None,
        message,
        sent,
    }
}

fn error_chain(err: &reqwest::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let part = cause.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = cause.source();
    }
    text
}

/// Parse a `Retry-After` value: delay-seconds, or an HTTP-date measured from `now` (a date in the past means
/// "now"). Anything else is ignored rather than guessed at.
pub fn parse_retry_after(value: &str, now: jiff::Timestamp) -> Option<Duration> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        return value.parse::<u64>().ok().map(Duration::from_secs);
    }
    let at = jiff::fmt::rfc2822::DateTimeParser::new()
        .parse_timestamp(value)
        .ok()?;
    let millis = at.as_millisecond().saturating_sub(now.as_millisecond());
    Some(Duration::from_millis(u64::try_from(millis).unwrap_or(0)))
}

/// What we keep from an error body.
#[derive(Debug, Default, PartialEq)]
struct ErrorBody {
    message: String,
    field_violations: Vec<(String, String)>,
}

#[derive(Deserialize)]
struct WireError {
    #[serde(default)]
    message: Option<serde_json::Value>,
    #[serde(default)]
    error: Option<serde_json::Value>,
    #[serde(default)]
    details: Option<Vec<serde_json::Value>>,
}

impl ErrorBody {
    /// `message`, else `error`, else the raw body; plus field violations from google.rpc `BadRequest` details.
    fn parse(body: &[u8], secret: &str) -> Self {
        let raw = String::from_utf8_lossy(body);
        let Ok(wire) = serde_json::from_slice::<WireError>(body) else {
            return ErrorBody {
                message: clean(&raw, secret),
                field_violations: Vec::new(),
            };
        };
        let text = |v: &Option<serde_json::Value>| match v {
            Some(serde_json::Value::String(s)) if !s.trim().is_empty() => Some(s.clone()),
            Some(serde_json::Value::Object(o)) => {
                o.get("message").and_then(|m| m.as_str()).map(str::to_owned)
            }
            _ => None,
        };
        let message = text(&wire.message)
            .or_else(|| text(&wire.error))
            .unwrap_or_else(|| raw.into_owned());
        let field_violations = wire
            .details
            .iter()
            .flatten()
            .filter_map(|d| {
                // The proto3 JSON name is `fieldViolations`; JumpCloud's Java-style name is `fieldViolationsList`.
                d.get("fieldViolationsList")
                    .or_else(|| d.get("fieldViolations"))
                    .and_then(|v| v.as_array())
            })
            .flatten()
            .map(|v| {
                let s = |k: &str| clean(v.get(k).and_then(|x| x.as_str()).unwrap_or(""), secret);
                (s("field"), s("description"))
            })
            .collect();
        ErrorBody {
            message: clean(&message, secret),
            field_violations,
        }
    }
}

/// Collapse whitespace, drop the secret, cap the length: messages end up in logs and in errors.
fn clean(text: &str, secret: &str) -> String {
    let mut out = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if !secret.is_empty() && out.contains(secret) {
        out = out.replace(secret, "[redacted]");
    }
    if out.chars().count() > MAX_MESSAGE_CHARS {
        out = out.chars().take(MAX_MESSAGE_CHARS).collect::<String>() + "…";
    }
    out
}

#[cfg(test)]
#[path = "error_tests.rs"]
mod tests;
