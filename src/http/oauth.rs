//! `POST /oauth/token`: the OAuth 2.0 token endpoint (RFC 6749 §3.2), client-credentials grant only.
//!
//! Reads the form (or a JSON object with the same names) and the client's credentials (HTTP Basic, RFC 6749
//! §2.3.1, or `client_id` / `client_secret` in the body), hands them to [`TokenIssuer`], and answers in the
//! RFC's shape: the token with `Cache-Control: no-store`, or `{"error", "error_description"}`. The
//! grant's rules live in `auth::oauth`.

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::json;

use super::AppState;
use crate::auth::base64_decode;
use crate::auth::oauth::{OAuthError, TokenIssuer, TokenRequest};

pub fn router() -> Router<AppState> {
    Router::new().route("/oauth/token", post(token))
}

async fn token(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let Some(issuer) = state.auth.token_issuer() else {
        return error_response(&OAuthError::InvalidClient(
            "no OAuth client is configured on this service: use a bearer token or HTTP Basic"
                .into(),
        ));
    };
    let req = match token_request(&headers, &body) {
        Ok(r) => r,
        Err(e) => return error_response(&e),
    };
    // Guessing a client's secret runs at the failure rate of its client id (see `auth::throttle`).
    let name = format!("client:{}", req.client_id.as_deref().unwrap_or_default());
    if let Some(wait) = state.failed_auth.blocked(&name) {
        return super::too_many_failures(wait);
    }
    match issue(&issuer, &req) {
        Ok(issued) => {
            tracing::info!(
                grant = "client_credentials",
                scope = issued.scope,
                "issued an OAuth token"
            );
            let mut resp = (StatusCode::OK, axum::Json(issued)).into_response();
            no_store(&mut resp);
            resp
        }
        Err(e) => {
            tracing::info!(
                error = e.code(),
                "refused an OAuth token request: {}",
                e.description()
            );
            if matches!(e, OAuthError::InvalidClient(_))
                && let Some(wait) = state.failed_auth.failed(&name)
            {
                return super::too_many_failures(wait);
            }
            error_response(&e)
        }
    }
}

/// Issue for the credentials as sent, then as form-decoded (RFC 6749 §2.3.1 has HTTP Basic carry them
/// form-encoded; many clients send them raw).
fn issue(
    issuer: &TokenIssuer,
    req: &TokenRequest,
) -> Result<crate::auth::oauth::IssuedToken, OAuthError> {
    match issuer.issue(req) {
        Err(OAuthError::InvalidClient(d)) if req.basic => {
            let decoded = TokenRequest {
                client_id: req.client_id.as_deref().map(form_decode),
                client_secret: req.client_secret.as_deref().map(form_decode),
                ..req.clone()
            };
            if decoded.client_id == req.client_id && decoded.client_secret == req.client_secret {
                return Err(OAuthError::InvalidClient(d));
            }
            issuer.issue(&decoded)
        }
        other => other,
    }
}

/// The request's parameters and client credentials.
fn token_request(headers: &HeaderMap, body: &[u8]) -> Result<TokenRequest, OAuthError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/x-www-form-urlencoded");
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    let params: Vec<(String, String)> = match essence.as_str() {
        "application/x-www-form-urlencoded" => form_urlencoded::parse(body).into_owned().collect(),
        "application/json" => json_params(body)?,
        other => {
            return Err(OAuthError::InvalidRequest(format!(
                "the body must be application/x-www-form-urlencoded, not {other}"
            )));
        }
    };
    let mut req = TokenRequest::default();
    for (name, value) in params {
        let slot = match name.as_str() {
            "grant_type" => &mut req.grant_type,
            "client_id" => &mut req.client_id,
            "client_secret" => &mut req.client_secret,
            "scope" => &mut req.scope,
            _ => continue,
        };
        if slot.is_some() {
            return Err(OAuthError::InvalidRequest(format!(
                "the parameter {name} is sent more than once"
            )));
        }
        *slot = Some(value);
    }
    if let Some(auth) = headers.get(header::AUTHORIZATION) {
        let basic = auth
            .to_str()
            .ok()
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("basic"))
            .and_then(|(_, creds)| base64_decode(creds.trim()))
            .and_then(|raw| String::from_utf8(raw).ok());
        let Some(basic) = basic else {
            return Err(OAuthError::InvalidClient(
                "the Authorization header must be HTTP Basic with the client id and secret".into(),
            ));
        };
        if req.client_secret.is_some() {
            return Err(OAuthError::InvalidRequest(
                "the client authenticates twice (HTTP Basic and client_secret in the body): use one".into(),
            ));
        }
        let (id, secret) = basic.split_once(':').unwrap_or((basic.as_str(), ""));
        if req
            .client_id
            .as_deref()
            .is_some_and(|form_id| form_id != id)
        {
            return Err(OAuthError::InvalidRequest(
                "client_id in the body differs from the one in HTTP Basic".into(),
            ));
        }
        req.client_id = Some(id.to_owned());
        req.client_secret = Some(secret.to_owned());
        req.basic = true;
    }
    Ok(req)
}

/// A JSON object's string members, as form parameters.
fn json_params(body: &[u8]) -> Result<Vec<(String, String)>, OAuthError> {
    let value: serde_json::Value = serde_json::from_slice(body)
        .map_err(|e| OAuthError::InvalidRequest(format!("the body is not JSON: {e}")))?;
    let object = value
        .as_object()
        .ok_or_else(|| OAuthError::InvalidRequest("the body must be a JSON object".into()))?;
    Ok(object
        .iter()
        .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_owned())))
        .collect())
}

/// `application/x-www-form-urlencoded` decoding of one value: `+` is a space, `%XX` a byte.
fn form_decode(s: &str) -> String {
    let mut out = Vec::with_capacity(s.len());
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                match std::str::from_utf8(&bytes[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                {
                    Some(b) => {
                        out.push(b);
                        i += 3;
                        continue;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn no_store(resp: &mut Response) {
    let h = resp.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
}

/// RFC 6749 §5.2: `{"error", "error_description"}`; a 401 carries the HTTP Basic challenge.
fn error_response(e: &OAuthError) -> Response {
    let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::BAD_REQUEST);
    let body = json!({"error": e.code(), "error_description": e.description()});
    let mut resp = (status, axum::Json(body)).into_response();
    no_store(&mut resp);
    if status == StatusCode::UNAUTHORIZED {
        resp.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"jumpcloud-scim\""),
        );
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_decoding() {
        assert_eq!(form_decode("a+b%2Bc%3A%25"), "a b+c:%");
        assert_eq!(form_decode("plain-id"), "plain-id");
        // A stray percent sign stays as it is.
        assert_eq!(form_decode("50%"), "50%");
        assert_eq!(form_decode("%zz"), "%zz");
    }
}
