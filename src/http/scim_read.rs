//! SCIM reads: `/Users`, `/Groups`, their `/.search`, the root `/.search`, and discovery. Every answer
//! comes from one snapshot version and says which (`X-Snapshot-Version`, `X-Snapshot-Age`).

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::Value;
use std::collections::HashMap;

use super::AppState;
use super::support::{
    add_snapshot_headers, error, if_none_match, not_ready, query_map, scim_response,
};
use crate::cache::{Entry, Kind, Snapshot};
use crate::directory::read::{self, ListPage, resource_kind};
use crate::scim::attrs::AttrSelection;
use crate::scim::discovery;
use crate::scim::error::ScimError;
use crate::scim::list::{self, Query, QueryParams};
use crate::scim::paging::Paging;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/Users", get(list_users))
        .route("/Users/.search", post(search_users))
        .route("/Users/{id}", get(get_user))
        .route("/Groups", get(list_groups))
        .route("/Groups/.search", post(search_groups))
        .route("/Groups/{id}", get(get_group))
        .route("/.search", post(search_root))
        .route("/ServiceProviderConfig", get(service_provider_config))
        .route("/ResourceTypes", get(resource_types))
        .route("/ResourceTypes/{id}", get(resource_type))
        .route("/Schemas", get(schemas))
        .route("/Schemas/{id}", get(schema))
        .method_not_allowed_fallback(method_not_allowed)
}

async fn method_not_allowed() -> Response {
    ScimError::new(405, None, "this endpoint does not support that HTTP method").into_response()
}

// === lists ===

/// Parse `filter`, `sortBy`, `sortOrder`, `startIndex`, `count`, `attributes`, `excludedAttributes`
/// (names already lower-cased).
fn list_query(
    q: &HashMap<String, String>,
    kind: Kind,
    max_count: usize,
) -> Result<Query, ScimError> {
    let get = |k: &str| q.get(k).cloned();
    let params = QueryParams {
        filter: get("filter"),
        attributes: get("attributes"),
        excluded_attributes: get("excludedattributes"),
        sort_by: get("sortby"),
        sort_order: get("sortorder"),
        start_index: get("startindex"),
        count: get("count"),
    };
    Query::parse(&params, resource_kind(kind), max_count)
}

/// The serialised form of one entry under a projection.
fn entry_bytes(e: &Entry, attrs: &AttrSelection, kind: Kind) -> Bytes {
    if attrs.is_default() {
        e.bytes.clone()
    } else {
        Bytes::from(
            serde_json::to_vec(&attrs.project(&e.json, resource_kind(kind))).unwrap_or_default(),
        )
    }
}

/// A ListResponse assembled from pre-serialised entries: a page costs a copy, not a serialisation.
fn render_list(pages: &[(&ListPage, Kind)], attrs: &AttrSelection, snap: &Snapshot) -> Response {
    let total: usize = pages.iter().map(|(p, _)| p.total).sum();
    let items: usize = pages.iter().map(|(p, _)| p.items.len()).sum();
    let start_index = pages.first().map(|(p, _)| p.start_index).unwrap_or(1);
    let bodies: Vec<Bytes> = pages
        .iter()
        .flat_map(|(p, kind)| p.items.iter().map(move |e| entry_bytes(e, attrs, *kind)))
        .collect();
    let size: usize = bodies.iter().map(|b| b.len() + 1).sum::<usize>() + 160;
    let mut out = Vec::with_capacity(size);
    out.extend_from_slice(
        format!(
            "{{\"schemas\":[\"urn:ietf:params:scim:api:messages:2.0:ListResponse\"],\"totalResults\":{total},\
             \"itemsPerPage\":{items},\"startIndex\":{start_index},\"Resources\":["
        )
        .as_bytes(),
    );
    for (i, b) in bodies.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b);
    }
    out.extend_from_slice(b"]}");
    let mut resp = scim_response(StatusCode::OK, out);
    add_snapshot_headers(&mut resp, snap);
    resp
}

async fn list_kind(state: &AppState, kind: Kind, raw: Option<String>) -> Response {
    let Some(snap) = state.store.load() else {
        return not_ready();
    };
    let query = match query_map(raw.as_deref())
        .and_then(|q| list_query(&q, kind, state.settings.max_count))
    {
        Ok(q) => q,
        Err(e) => return error(e),
    };
    let page = read::list(&snap, kind, &query);
    render_list(&[(&page, kind)], &query.attributes, &snap)
}

async fn list_users(State(state): State<AppState>, RawQuery(raw): RawQuery) -> Response {
    list_kind(&state, Kind::User, raw).await
}

async fn list_groups(State(state): State<AppState>, RawQuery(raw): RawQuery) -> Response {
    list_kind(&state, Kind::Group, raw).await
}

/// A `SearchRequest` body as one parsed query per resource kind.
fn search_query(body: &Bytes, kinds: &[Kind], max_count: usize) -> Result<Vec<Query>, ScimError> {
    let params = QueryParams::from_search_body(body)?;
    kinds
        .iter()
        .map(|k| Query::parse(&params, resource_kind(*k), max_count))
        .collect()
}

async fn search_kind(state: &AppState, kind: Kind, body: Bytes) -> Response {
    let Some(snap) = state.store.load() else {
        return not_ready();
    };
    let query = match search_query(&body, &[kind], state.settings.max_count) {
        Ok(mut q) => q.remove(0),
        Err(e) => return error(e),
    };
    let page = read::list(&snap, kind, &query);
    render_list(&[(&page, kind)], &query.attributes, &snap)
}

async fn search_users(State(state): State<AppState>, body: Bytes) -> Response {
    search_kind(&state, Kind::User, body).await
}

async fn search_groups(State(state): State<AppState>, body: Bytes) -> Response {
    search_kind(&state, Kind::Group, body).await
}

/// `POST /.search`: Users then Groups, one result set paged as a whole.
async fn search_root(State(state): State<AppState>, body: Bytes) -> Response {
    let Some(snap) = state.store.load() else {
        return not_ready();
    };
    let queries = match search_query(&body, &[Kind::User, Kind::Group], state.settings.max_count) {
        Ok(q) => q,
        Err(e) => return error(e),
    };
    // Page over the concatenation: evaluate both without paging, then cut one window.
    let mut all = Vec::new();
    for (q, kind) in queries.iter().zip([Kind::User, Kind::Group]) {
        let unpaged = Query {
            paging: Paging::default(),
            ..q.clone()
        };
        let page = read::list(&snap, kind, &unpaged);
        all.extend(page.items.into_iter().map(|e| (e, kind)));
    }
    let paging = &queries[0].paging;
    let total = all.len();
    let window = paging.window(total);
    let mut users = ListPage {
        total,
        start_index: paging.start_index,
        items: Vec::new(),
    };
    let mut groups = ListPage {
        total: 0,
        start_index: paging.start_index,
        items: Vec::new(),
    };
    for (e, kind) in all.drain(window) {
        match kind {
            Kind::User => users.items.push(e),
            Kind::Group => groups.items.push(e),
        }
    }
    render_list(
        &[(&users, Kind::User), (&groups, Kind::Group)],
        &queries[0].attributes,
        &snap,
    )
}

// === single resources ===

async fn get_kind(
    state: &AppState,
    kind: Kind,
    id: &str,
    raw: Option<String>,
    headers: &HeaderMap,
) -> Response {
    let Some(snap) = state.store.load() else {
        return not_ready();
    };
    let attrs = match query_map(raw.as_deref()).and_then(|q| {
        AttrSelection::parse(
            q.get("attributes").map(String::as_str),
            q.get("excludedattributes").map(String::as_str),
            resource_kind(kind),
        )
    }) {
        Ok(a) => a,
        Err(e) => return error(e),
    };
    let Some(entry) = snap.get(kind, id).cloned() else {
        let mut resp = error(ScimError::not_found(format!(
            "{} {id} not found",
            kind.resource_type()
        )));
        add_snapshot_headers(&mut resp, &snap);
        return resp;
    };
    let mut resp = if if_none_match(headers, &entry.etag) {
        let mut r = StatusCode::NOT_MODIFIED.into_response();
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(super::support::SCIM_JSON),
        );
        r
    } else {
        scim_response(StatusCode::OK, entry_bytes(&entry, &attrs, kind))
    };
    if let Ok(v) = HeaderValue::from_str(&entry.etag) {
        resp.headers_mut().insert(header::ETAG, v);
    }
    add_snapshot_headers(&mut resp, &snap);
    resp
}

async fn get_user(
    State(state): State<AppState>,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Response {
    get_kind(&state, Kind::User, &id, raw, &headers).await
}

async fn get_group(
    State(state): State<AppState>,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Response {
    get_kind(&state, Kind::Group, &id, raw, &headers).await
}

// === discovery ===

fn json_response(v: &Value) -> Response {
    let mut resp = scim_response(StatusCode::OK, serde_json::to_vec(v).unwrap_or_default());
    if let Some(ver) = v.pointer("/meta/version").and_then(Value::as_str)
        && let Ok(h) = HeaderValue::from_str(ver)
    {
        resp.headers_mut().insert(header::ETAG, h);
    }
    resp
}

fn list_of(resources: Vec<Value>) -> Response {
    let total = resources.len();
    json_response(&list::list_response(resources, total, 1))
}

async fn service_provider_config(State(state): State<AppState>) -> Response {
    json_response(&discovery::service_provider_config(
        &state.settings.scim_base,
    ))
}

async fn resource_types(State(state): State<AppState>) -> Response {
    list_of(discovery::resource_types(&state.settings.scim_base))
}

async fn resource_type(State(state): State<AppState>, Path(id): Path<String>) -> Response {
    match discovery::resource_type(&id, &state.settings.scim_base) {
        Some(v) => json_response(&v),
        None => error(ScimError::not_found(format!(
            "no resource type {id}; there are User and Group"
        ))),
    }
}

async fn schemas(State(state): State<AppState>) -> Response {
    list_of(discovery::schemas(&state.settings.scim_base))
}

async fn schema(State(state): State<AppState>, Path(id): Path<String>) -> Response {
    match discovery::schema(&id, &state.settings.scim_base) {
        Some(v) => json_response(&v),
        None => error(ScimError::not_found(format!("no schema {id}"))),
    }
}
