//! SCIM writes: `POST /Users`, `PUT`/`PATCH`/`DELETE /Users/{id}`, and the same for `/Groups`. Thin: read the
//! body (as `application/scim+json` or `application/json`), check the credential may write, call the
//! [`Writer`](crate::directory::write::Writer), render.

use crate::scim::view::{Key, View};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{post, put};
use serde_json::Value;

use super::AppState;
use super::support::{
    add_snapshot_headers, entry_bytes, json_object, scim_response, selection, url_query,
};
use crate::audit::AuditRecord;
use crate::auth::Principal;
use crate::directory::WriteError;
use crate::directory::write::Written;
use crate::scim::ResourceKind;
use crate::scim::error::ScimError;

pub fn router(state: AppState) -> Router<AppState> {
    Router::new()
        .route("/scim/v2/Users", post(create_user))
        .route(
            "/scim/v2/Users/{id}",
            put(replace_user).patch(patch_user).delete(delete_user),
        )
        .route("/scim/v2/Groups", post(create_group))
        .route(
            "/scim/v2/Groups/{id}",
            put(replace_group).patch(patch_group).delete(delete_group),
        )
        .route_layer(middleware::from_fn_with_state(state.clone(), audit))
        .route_layer(middleware::from_fn_with_state(state, require_write))
}

/// One audit line per write that reached a handler: who, what, which resource, the outcome.
async fn audit(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let principal = req
        .extensions()
        .get::<Principal>()
        .map(|p| p.name.clone())
        .unwrap_or_default();
    let method = req.method().to_string();
    let path = req.uri().path().to_string();
    let request_id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-")
        .to_string();
    let resp = next.run(req).await;
    state.audit.record(&AuditRecord {
        principal: &principal,
        method: &method,
        path: &path,
        status: resp.status().as_u16(),
        request_id: &request_id,
    });
    resp
}

/// A `read` credential may not write: 403, before the body is even read.
async fn require_write(State(_): State<AppState>, req: Request, next: Next) -> Response {
    let allowed = req
        .extensions()
        .get::<Principal>()
        .is_some_and(Principal::can_write);
    if !allowed {
        return ScimError::new(
            403,
            None,
            "this credential may only read; writes need a provision credential",
        )
        .into_response();
    }
    next.run(req).await
}

/// Parse a JSON body sent as `application/scim+json` or `application/json` (any charset).
fn json_body(headers: &HeaderMap, body: &Bytes, depth: usize) -> Result<Value, ScimError> {
    if let Some(ct) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    {
        let mime = ct
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        if !(mime == crate::scim::SCIM_CONTENT_TYPE
            || mime == "application/json"
            || mime.ends_with("+json"))
        {
            return Err(ScimError::new(
                415,
                None,
                format!(
                    "Content-Type {} is not supported; send application/scim+json or application/json",
                    crate::scim::error::excerpt(ct)
                ),
            ));
        }
    }
    json_object(body, depth)
}

fn if_match(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::IF_MATCH)
        .and_then(|v| v.to_str().ok())
        .map(String::from)
}

/// The resource a write produced, projected as the query asks.
fn render(
    store: &crate::cache::Store,
    written: &Written,
    kind: ResourceKind,
    status: StatusCode,
    raw: Option<&str>,
    location: bool,
) -> Response {
    let attrs = match selection(raw, kind) {
        Ok(a) => a,
        Err(e) => return e.into_response(),
    };
    let entry = &written.entry;
    let mut resp = scim_response(status, entry_bytes(entry, &attrs, kind));
    let carries_version = attrs.is_default() || attrs.keeps_meta_version(kind);
    if carries_version && let Ok(v) = HeaderValue::from_str(&entry.etag()) {
        resp.headers_mut().insert(header::ETAG, v);
    }
    if location
        && let Some(loc) = entry
            .view()
            .member(Key::of("meta"))
            .and_then(|m| m.member(Key::of("location")))
            .and_then(View::as_str)
        && let Ok(v) = HeaderValue::from_str(loc)
    {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    add_snapshot_headers(&mut resp, &written.snapshot, store);
    resp
}

fn respond(result: Result<Response, WriteError>) -> Response {
    match result {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

/// Whether the query names `attributes` or `excludedAttributes` (then PATCH on Groups answers 200 with a body).
fn asks_for_body(raw: Option<&str>) -> bool {
    url_query(raw)
        .is_ok_and(|q| q.params.attributes.is_some() || q.params.excluded_attributes.is_some())
}

async fn create_user(
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    respond(
        async {
            let v = json_body(&headers, &body, state.settings.json_depth)?;
            let w = state.writer.create_user(&v).await?;
            Ok(render(
                &state.store,
                &w,
                ResourceKind::User,
                StatusCode::CREATED,
                raw.as_deref(),
                true,
            ))
        }
        .await,
    )
}

async fn replace_user(
    State(state): State<AppState>,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    respond(
        async {
            let v = json_body(&headers, &body, state.settings.json_depth)?;
            let w = state
                .writer
                .replace_user(&id, &v, if_match(&headers).as_deref())
                .await?;
            Ok(render(
                &state.store,
                &w,
                ResourceKind::User,
                StatusCode::OK,
                raw.as_deref(),
                false,
            ))
        }
        .await,
    )
}

async fn patch_user(
    State(state): State<AppState>,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    respond(
        async {
            let v = json_body(&headers, &body, state.settings.json_depth)?;
            let w = state
                .writer
                .patch_user(&id, &v, if_match(&headers).as_deref())
                .await?;
            Ok(render(
                &state.store,
                &w,
                ResourceKind::User,
                StatusCode::OK,
                raw.as_deref(),
                false,
            ))
        }
        .await,
    )
}

async fn delete_user(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    respond(
        async {
            state
                .writer
                .delete_user(&id, if_match(&headers).as_deref())
                .await?;
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        .await,
    )
}

async fn create_group(
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    respond(
        async {
            let v = json_body(&headers, &body, state.settings.json_depth)?;
            let w = state.writer.create_group(&v).await?;
            Ok(render(
                &state.store,
                &w,
                ResourceKind::Group,
                StatusCode::CREATED,
                raw.as_deref(),
                true,
            ))
        }
        .await,
    )
}

async fn replace_group(
    State(state): State<AppState>,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    respond(
        async {
            let v = json_body(&headers, &body, state.settings.json_depth)?;
            let w = state
                .writer
                .replace_group(&id, &v, if_match(&headers).as_deref())
                .await?;
            Ok(render(
                &state.store,
                &w,
                ResourceKind::Group,
                StatusCode::OK,
                raw.as_deref(),
                false,
            ))
        }
        .await,
    )
}

/// PATCH on Groups answers 204 (a group may hold every user; Entra asks servers not to send member lists
/// back), or 200 with the resource when the request names `attributes` or `excludedAttributes`.
async fn patch_group(
    State(state): State<AppState>,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    respond(
        async {
            let v = json_body(&headers, &body, state.settings.json_depth)?;
            let w = state
                .writer
                .patch_group(&id, &v, if_match(&headers).as_deref())
                .await?;
            if asks_for_body(raw.as_deref()) {
                Ok(render(
                    &state.store,
                    &w,
                    ResourceKind::Group,
                    StatusCode::OK,
                    raw.as_deref(),
                    false,
                ))
            } else {
                let mut resp = StatusCode::NO_CONTENT.into_response();
                if let Ok(v) = HeaderValue::from_str(&w.entry.etag()) {
                    resp.headers_mut().insert(header::ETAG, v);
                }
                add_snapshot_headers(&mut resp, &w.snapshot, &state.store);
                Ok(resp)
            }
        }
        .await,
    )
}

async fn delete_group(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    respond(
        async {
            state
                .writer
                .delete_group(&id, if_match(&headers).as_deref())
                .await?;
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        .await,
    )
}
