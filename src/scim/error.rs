//! The one SCIM error value of the protocol core and its RFC 7644 §3.12 wire form.
//!
//! Owns: status code, `scimType` and a client-safe `detail`. Every function of `scim::*` fails with a
//! [`ScimError`]; `crate::http` renders it (this layer builds no responses). It never carries internal error text: a
//! `detail` says what was wrong with the request, in words meant for the client.

use axum::http::StatusCode;
use scim_v2::models::errors::ScimType;
use serde_json::{Value, json};

/// The `schemas` URN of an RFC 7644 §3.12 error body.
pub const ERROR_URN: &str = "urn:ietf:params:scim:api:messages:2.0:Error";

/// The media type every SCIM answer carries (RFC 7644 §3.1).
pub const SCIM_CONTENT_TYPE: &str = "application/scim+json";

/// The most of a client's input an error detail quotes.
pub const EXCERPT_CHARS: usize = 80;
/// The longest detail an error carries: a detail quotes input, and input can be large.
pub const MAX_DETAIL_CHARS: usize = 1024;

/// A client's input as an error detail quotes it: in quotes, at most [`EXCERPT_CHARS`] characters, with
/// how much was left out.
pub fn excerpt(input: &str) -> String {
    let total = input.chars().count();
    if total <= EXCERPT_CHARS {
        return format!("{input:?}");
    }
    let head: String = input.chars().take(EXCERPT_CHARS).collect();
    format!("{head:?}… ({total} characters)")
}

/// A SCIM error: HTTP status, optional `scimType` keyword and a human-readable detail.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{status} {}: {detail}", scim_type.as_ref().map_or("error", |t| t.as_str()))]
pub struct ScimError {
    /// HTTP status code (400, 404, 409, …).
    pub status: u16,
    /// RFC 7644 §3.12 `scimType`, only meaningful with 400 (and 409 `uniqueness`).
    pub scim_type: Option<ScimType>,
    /// Human-readable explanation for the client.
    pub detail: String,
}

// === impl ScimError ===

impl ScimError {
    /// Any status, any keyword.
    pub fn new(status: u16, scim_type: Option<ScimType>, detail: impl Into<String>) -> Self {
        let mut detail = detail.into();
        if detail.len() > MAX_DETAIL_CHARS {
            let mut cut = MAX_DETAIL_CHARS;
            while !detail.is_char_boundary(cut) {
                cut -= 1;
            }
            detail.truncate(cut);
            detail.push('…');
        }
        Self {
            status,
            scim_type,
            detail,
        }
    }

    fn bad_request(scim_type: ScimType, detail: impl Into<String>) -> Self {
        Self::new(400, Some(scim_type), detail)
    }

    /// 400 `invalidFilter`: the filter does not parse, or compares an attribute in a way its type forbids.
    pub fn invalid_filter(detail: impl Into<String>) -> Self {
        Self::bad_request(ScimType::InvalidFilter, detail)
    }

    /// 400 `invalidValue`: a value does not fit the attribute, the operation or a query parameter.
    pub fn invalid_value(detail: impl Into<String>) -> Self {
        Self::bad_request(ScimType::InvalidValue, detail)
    }

    /// 400 `invalidPath`: a PATCH path is malformed or names an attribute the resource does not have.
    pub fn invalid_path(detail: impl Into<String>) -> Self {
        Self::bad_request(ScimType::InvalidPath, detail)
    }

    /// 400 `noTarget`: a PATCH path yields nothing to act on (or a `remove` has no path).
    pub fn no_target(detail: impl Into<String>) -> Self {
        Self::bad_request(ScimType::NoTarget, detail)
    }

    /// 400 `mutability`: the request changes a readOnly or immutable attribute.
    pub fn mutability(detail: impl Into<String>) -> Self {
        Self::bad_request(ScimType::Mutability, detail)
    }

    /// 409 `uniqueness`: a value that must be unique is already taken.
    pub fn uniqueness(detail: impl Into<String>) -> Self {
        Self::new(409, Some(ScimType::Uniqueness), detail)
    }

    /// 400 `invalidSyntax`: the request body is not the structure the endpoint expects.
    pub fn invalid_syntax(detail: impl Into<String>) -> Self {
        Self::bad_request(ScimType::InvalidSyntax, detail)
    }

    /// 400 `tooMany`: the query would return more results than the server will.
    pub fn too_many(detail: impl Into<String>) -> Self {
        Self::bad_request(ScimType::TooMany, detail)
    }

    /// 400 `sensitive`: the request would expose or carry sensitive data in a forbidden place.
    pub fn sensitive(detail: impl Into<String>) -> Self {
        Self::bad_request(ScimType::Sensitive, detail)
    }

    /// 404 without a keyword: no resource with that id (or no such endpoint).
    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(404, None, detail)
    }

    /// 412: `If-Match` names a version that is no longer current (RFC 7644 §3.14).
    pub fn precondition_failed(detail: impl Into<String>) -> Self {
        Self::new(412, None, detail)
    }

    /// 501: an operation the service provider does not offer (bulk, `/Me`, password change).
    pub fn not_implemented(detail: impl Into<String>) -> Self {
        Self::new(501, None, detail)
    }

    /// The status as an [`axum::http::StatusCode`]; an out-of-range value becomes 500.
    pub fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    /// The RFC 7644 §3.12 body: `schemas`, `status` as a **string**, `scimType` when set, `detail`.
    pub fn to_json(&self) -> Value {
        let mut body = json!({
            "schemas": [ERROR_URN],
            "status": self.status.to_string(),
            "detail": self.detail,
        });
        if let Some(scim_type) = &self.scim_type {
            body["scimType"] = Value::String(scim_type.as_str().to_owned());
        }
        body
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_follows_rfc7644_3_12() {
        let cases = [
            (
                ScimError::invalid_filter("bad"),
                "400",
                Some("invalidFilter"),
            ),
            (ScimError::invalid_value("bad"), "400", Some("invalidValue")),
            (ScimError::invalid_path("bad"), "400", Some("invalidPath")),
            (ScimError::no_target("bad"), "400", Some("noTarget")),
            (ScimError::mutability("bad"), "400", Some("mutability")),
            (ScimError::uniqueness("bad"), "409", Some("uniqueness")),
            (
                ScimError::invalid_syntax("bad"),
                "400",
                Some("invalidSyntax"),
            ),
            (ScimError::too_many("bad"), "400", Some("tooMany")),
            (ScimError::sensitive("bad"), "400", Some("sensitive")),
            (ScimError::not_found("bad"), "404", None),
            (ScimError::precondition_failed("bad"), "412", None),
            (ScimError::not_implemented("bad"), "501", None),
        ];
        for (err, status, scim_type) in cases {
            let body = err.to_json();
            assert_eq!(body["schemas"], json!([ERROR_URN]));
            assert_eq!(body["status"], json!(status), "status is a string");
            assert_eq!(body["detail"], json!("bad"));
            assert_eq!(body.get("scimType").and_then(Value::as_str), scim_type);
        }
    }

    #[test]
    fn display_names_keyword() {
        assert_eq!(ScimError::no_target("x").to_string(), "400 noTarget: x");
        assert_eq!(ScimError::not_found("x").to_string(), "404 error: x");
    }
}
