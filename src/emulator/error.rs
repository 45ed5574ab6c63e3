//! The HTTP edge shared by every handler: error answers, JSON responses, and reading bodies and query strings
//! without ever answering with axum's plain-text rejections.
//!
//! JumpCloud's error model (facts sheet §4.1) is `{code, message, status}`; validation errors on system users
//! add `details` (google.rpc-style, with `@type`); a graph edge that already exists answers
//! `{"message": "Already Exists"}`. Every JSON answer is `application/json; charset=utf-8`.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{Value, json};

use super::query::QueryError;

/// The content type of every JSON answer, as observed on the real API.
pub const JSON_UTF8: &str = "application/json; charset=utf-8";

/// One google.rpc `FieldViolation`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub field: String,
    pub description: String,
}

/// Everything a handler can refuse with.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ApiError {
    /// 400 with the plain `Error` body.
    #[error("{0}")]
    BadRequest(String),
    /// 400 with the `ErrorDetails` body (`details[0]` a google.rpc.BadRequest listing the violations).
    #[error("{message}")]
    Invalid {
        message: String,
        /// gRPC-style status text, e.g. `INVALID_ARGUMENT`.
        status: &'static str,
        violations: Vec<Violation>,
    },
    #[error("{0}")]
    Unauthorized(String),
    /// 403, e.g. Directory Insights on a plan without it.
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    /// 409 with the plain `Error` body (e.g. deleting someone's manager).
    #[error("{0}")]
    Conflict(String),
    /// 409 `{"message": "Already Exists"}`: an existing group name or graph edge.
    #[error("Already Exists")]
    AlreadyExists,
    #[error("Method Not Allowed")]
    MethodNotAllowed,
    /// A request axum could not read (body too large, broken path encoding), with axum's status.
    #[error("{message}")]
    Unreadable { status: StatusCode, message: String },
    #[error(transparent)]
    Query(#[from] QueryError),
}

// === impl ApiError ===

impl ApiError {
    /// A 400 `ErrorDetails` naming one offending field.
    pub fn invalid_field(
        message: impl Into<String>,
        field: &str,
        description: impl Into<String>,
    ) -> Self {
        ApiError::Invalid {
            message: message.into(),
            status: "INVALID_ARGUMENT",
            violations: vec![Violation {
                field: field.to_owned(),
                description: description.into(),
            }],
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) | ApiError::Invalid { .. } | ApiError::Query(_) => {
                StatusCode::BAD_REQUEST
            }
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) | ApiError::AlreadyExists => StatusCode::CONFLICT,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Unreadable { status, .. } => *status,
        }
    }

    fn body(&self) -> Value {
        let status = self.status();
        let reason = status.canonical_reason().unwrap_or("Error");
        match self {
            ApiError::AlreadyExists => json!({ "message": "Already Exists" }),
            ApiError::Invalid {
                message,
                status: grpc,
                violations,
            } => json!({
                "code": status.as_u16(),
                "message": message,
                "status": grpc,
                "details": [{
                    "@type": "type.googleapis.com/google.rpc.BadRequest",
                    "fieldViolationsList": violations
                        .iter()
                        .map(|v| json!({ "field": v.field, "description": v.description }))
                        .collect::<Vec<_>>(),
                }],
            }),
            other => json!({
                "code": status.as_u16(),
                "message": other.to_string(),
                "status": reason,
            }),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        json_response(self.status(), &self.body())
    }
}

/// Serialises `body` with the API's JSON content type.
pub fn json_response<T: Serialize + ?Sized>(status: StatusCode, body: &T) -> Response {
    match serde_json::to_vec(body) {
        Ok(bytes) => {
            let mut resp = (status, bytes).into_response();
            resp.headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static(JSON_UTF8));
            resp.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            resp
        }
        Err(e) => {
            tracing::error!(error = %e, "could not serialise an emulator answer");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

/// A v1 list: `{"totalCount": N, "results": [...]}` and no `x-total-count`.
pub fn v1_list<T: Serialize>(total: usize, results: &[T]) -> Response {
    #[derive(Serialize)]
    struct Envelope<'a, T> {
        #[serde(rename = "totalCount")]
        total_count: usize,
        results: &'a [T],
    }
    json_response(
        StatusCode::OK,
        &Envelope {
            total_count: total,
            results,
        },
    )
}

/// A v2 list: a bare array, the total in `x-total-count`.
pub fn v2_list(total: usize, items: Vec<Value>) -> Response {
    let mut resp = json_response(StatusCode::OK, &items);
    resp.headers_mut()
        .insert("x-total-count", HeaderValue::from(total as u64));
    resp
}

/// Parses a JSON request body; anything malformed is a 400, never a panic or axum's plain-text rejection.
pub fn parse_body(bytes: &[u8]) -> Result<Value, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::BadRequest("request body is empty".into()));
    }
    serde_json::from_slice(bytes)
        .map_err(|e| ApiError::BadRequest(format!("malformed JSON body: {e}")))
}

/// Parses a JSON body that must be an object.
pub fn parse_object(bytes: &[u8]) -> Result<serde_json::Map<String, Value>, ApiError> {
    match parse_body(bytes)? {
        Value::Object(m) => Ok(m),
        _ => Err(ApiError::BadRequest(
            "request body must be a JSON object".into(),
        )),
    }
}

/// The decoded query string as ordered pairs, repeats kept (`filter=a&filter=b`).
#[derive(Debug, Clone, Default)]
pub struct Pairs(pub Vec<(String, String)>);

// === impl Pairs ===

impl Pairs {
    /// The first value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Pairs {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Query::<Vec<(String, String)>>::try_from_uri(&parts.uri)
            .map(|Query(pairs)| Pairs(pairs))
            .map_err(|e| ApiError::BadRequest(format!("malformed query string: {e}")))
    }
}

/// The `{id}` path segment, with a JSON error instead of axum's plain-text rejection.
#[derive(Debug, Clone)]
pub struct Id(pub String);

impl<S: Send + Sync> FromRequestParts<S> for Id {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Path::<String>::from_request_parts(parts, state)
            .await
            .map(|Path(id)| Id(id))
            .map_err(|e| ApiError::Unreadable {
                status: e.status(),
                message: format!("invalid path: {}", e.body_text()),
            })
    }
}

/// The raw request body, with a JSON error when it cannot be read (too large, connection cut).
#[derive(Debug, Clone)]
pub struct Body(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for Body {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        Bytes::from_request(req, state)
            .await
            .map(Body)
            .map_err(|e| ApiError::Unreadable {
                status: e.status(),
                message: format!("unreadable body: {}", e.body_text()),
            })
    }
}
