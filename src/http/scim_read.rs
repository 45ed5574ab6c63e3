//! SCIM reads: `/Users`, `/Groups`, their `/.search`, the root `/.search`, and discovery. Every answer
//! comes from one snapshot version and says which (`X-Snapshot-Version`, `X-Snapshot-Age`).

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Extension, Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::Value;

use super::AppState;
use super::list_body::{self, Part};
use super::support::{
    UrlQuery, add_snapshot_headers, entry_bytes, error, if_none_match, scim_response, selection,
    url_query,
};
use crate::auth::Principal;
use crate::cache::{Snapshot, Store};
use crate::directory::read::ListPage;
use crate::directory::reader::walk_key;
use crate::scim::ResourceKind;
use crate::scim::attrs::AttrSelection;
use crate::scim::discovery;
use crate::scim::error::ScimError;
use crate::scim::list::{self, Position, Query, QueryParams};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/scim/v2/Users", get(list_users))
        .route("/scim/v2/Users/.search", post(search_users))
        .route("/scim/v2/Users/{id}", get(get_user))
        .route("/scim/v2/Groups", get(list_groups))
        .route("/scim/v2/Groups/.search", post(search_groups))
        .route("/scim/v2/Groups/{id}", get(get_group))
        .route("/scim/v2/.search", post(search_root))
        .route(
            "/scim/v2/ServiceProviderConfig",
            get(service_provider_config),
        )
        .route("/scim/v2/ResourceTypes", get(resource_types))
        .route("/scim/v2/ResourceTypes/{id}", get(resource_type))
        .route("/scim/v2/Schemas", get(schemas))
        .route("/scim/v2/Schemas/{id}", get(schema))
        .route("/scim/v2/Me", axum::routing::any(not_implemented))
        .route("/scim/v2/Bulk", axum::routing::any(not_implemented))
        .method_not_allowed_fallback(method_not_allowed)
}

/// `/Me` and `/Bulk` are optional in RFC 7644 and not offered (`/ServiceProviderConfig` says so).
async fn not_implemented(req: axum::extract::Request) -> Response {
    ScimError::not_implemented(format!(
        "{} is not supported by this service provider",
        req.uri().path()
    ))
    .into_response()
}

/// 405 with the `Allow` header RFC 9110 §15.5.6 requires, naming the methods the path takes.
async fn method_not_allowed(req: axum::extract::Request) -> Response {
    let allowed = allowed_methods(req.uri().path());
    let mut resp = ScimError::new(
        405,
        None,
        format!(
            "{} {} is not offered: this endpoint takes {allowed}",
            req.method(),
            req.uri().path()
        ),
    )
    .into_response();
    resp.headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static(allowed));
    resp
}

/// The methods a SCIM path takes (paths the routes above match).
fn allowed_methods(path: &str) -> &'static str {
    let rest = path.strip_prefix("/scim/v2/").unwrap_or(path);
    let mut segments = rest.split('/');
    match (segments.next(), segments.next()) {
        (Some("Users" | "Groups"), None) => "GET, POST",
        (Some(".search"), None) | (Some("Users" | "Groups"), Some(".search")) => "POST",
        (Some("Users" | "Groups"), Some(_)) => "GET, PUT, PATCH, DELETE",
        _ => "GET",
    }
}

// === lists ===

/// The serialised form of one entry under a projection.
/// A ListResponse assembled from pre-serialised entries: a page costs a copy, not a serialisation.
/// Pages of one or two resource kinds, each projected by its own kind's selection.
type Pages<'a> = [(&'a ListPage, ResourceKind, &'a AttrSelection)];

fn render_list(pages: &Pages<'_>, snap: &Snapshot, store: &Store) -> Response {
    render_list_with(pages, snap, store, None)
}

/// Cursors of an RFC 9865 page: `nextCursor` and `previousCursor`, when there are such pages.
struct Cursors {
    next: Option<String>,
    previous: Option<String>,
}

fn render_list_with(
    pages: &Pages<'_>,
    snap: &Snapshot,
    store: &Store,
    cursors: Option<Cursors>,
) -> Response {
    let total: usize = pages.iter().map(|(p, _, _)| p.total).sum();
    let start_index = pages.first().map(|(p, _, _)| p.start_index).unwrap_or(1);
    // Index paging says where the page starts; cursor paging says where the next one does.
    let position = match &cursors {
        None => Position::Index(start_index),
        Some(c) => Position::Cursors {
            next: c.next.as_deref(),
            previous: c.previous.as_deref(),
        },
    };
    let count: usize = pages.iter().map(|(p, _, _)| p.items.len()).sum();
    let parts: Vec<Part> = pages
        .iter()
        .map(|(p, kind, attrs)| Part {
            items: p.items.clone(),
            kind: *kind,
            attrs: (*attrs).clone(),
        })
        .collect();
    let (body, handoff) = list_body::body(list::list_head(total, count, position), parts);
    let mut resp = scim_response(StatusCode::OK, body);
    if let Some(handoff) = handoff {
        resp.extensions_mut().insert(handoff);
    }
    add_snapshot_headers(&mut resp, snap, store);
    resp
}

/// One page of an index-paged walk (a GET list or a `.search`), from the snapshot its walk reads.
fn index_page(
    state: &AppState,
    principal: &Principal,
    kind: ResourceKind,
    params: &QueryParams,
    query: &Query,
) -> Response {
    let walk = || walk_key(&principal.name, kind, params);
    match state.reader.index_page(&walk, kind, query) {
        Ok(read) => render_list(
            &[(&read.value, kind, &query.attributes)],
            &read.snapshot,
            &state.store,
        ),
        Err(e) => e.into_response(),
    }
}

async fn list_kind(
    state: &AppState,
    principal: &Principal,
    kind: ResourceKind,
    raw: Option<String>,
) -> Response {
    let UrlQuery { params, cursor } = match url_query(raw.as_deref()) {
        Ok(q) => q,
        Err(e) => return error(e),
    };
    if let Some(cursor) = cursor {
        if let Some((walk, _)) = cursor.split_once('.') {
            state.reader.follow_walk(walk).await;
        }
        return cursor_page(state, kind, params, &cursor);
    }
    let query = match Query::parse(&params, kind, state.settings.max_count) {
        Ok(q) => bounded(q, state.settings.max_results),
        Err(e) => return error(e),
    };
    page_off_runtime(state, principal, kind, params, query).await
}

/// [`index_page`], on a blocking thread when the query scans: a scan takes tens of milliseconds at 100,000
/// users, and the async workers keep answering everyone else. At most `limits.cpu_tasks` such threads work
/// at once (the request's deadline still applies to the wait).
async fn page_off_runtime(
    state: &AppState,
    principal: &Principal,
    kind: ResourceKind,
    params: QueryParams,
    query: Query,
) -> Response {
    if query.paging.start_index > 1 {
        // A later page: its walk may have begun on another replica.
        state
            .reader
            .follow_walk_named(|| walk_key(&principal.name, kind, &params))
            .await;
    }
    if !crate::directory::read::scans(&query) {
        return index_page(state, principal, kind, &params, &query);
    }
    // Scans share the `cpu_tasks` bound with PATCH applications: however many clients scan at once, only
    // that many blocking threads do the work, and the rest wait within their deadline.
    let Some(permit) = state.writer.cpu_permit().await else {
        return error(ScimError::new(
            503,
            None,
            "the service is shutting down; retry shortly",
        ));
    };
    let (state, principal) = (state.clone(), principal.clone());
    tokio::task::spawn_blocking(move || {
        let _permit = permit;
        index_page(&state, &principal, kind, &params, &query)
    })
    .await
    .unwrap_or_else(|_| {
        error(ScimError::new(
            500,
            None,
            "the list could not be answered; try again",
        ))
    })
}

/// RFC 9865 cursor paging: `cursor` (empty for the first page) and `count`; the cursor names the walk and the
/// offset, and the walk is pinned like index paging.
fn cursor_page(
    state: &AppState,
    kind: ResourceKind,
    mut params: QueryParams,
    cursor: &str,
) -> Response {
    if params.start_index.is_some() {
        return error(ScimError::invalid_value(
            "startIndex and cursor cannot be used together; send one of them",
        ));
    }
    let count = match params
        .count
        .as_deref()
        .map(str::trim)
        .filter(|c| !c.is_empty())
    {
        None => state.settings.max_count,
        Some(c) => match c.parse::<i64>() {
            Ok(n) => n.clamp(0, state.settings.max_count as i64) as usize,
            Err(_) => {
                return error(ScimError::invalid_value(format!(
                    "count {c:?} is not an integer"
                )));
            }
        },
    };
    // The cursor says where the page starts; the count is the one honoured.
    params.count = Some(count.to_string());
    let query = match Query::parse(&params, kind, state.settings.max_count) {
        Ok(q) => q,
        Err(e) => return error(e),
    };
    let attributes = query.attributes.clone();
    match state.reader.cursor_page(kind, cursor, count, query) {
        Ok(read) => {
            let cursors = Cursors {
                next: read.value.next,
                previous: read.value.previous,
            };
            render_list_with(
                &[(&read.value.page, kind, &attributes)],
                &read.snapshot,
                &state.store,
                Some(cursors),
            )
        }
        Err(e) => e.into_response(),
    }
}

async fn list_users(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    RawQuery(raw): RawQuery,
) -> Response {
    list_kind(&state, &p, ResourceKind::User, raw).await
}

async fn list_groups(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    RawQuery(raw): RawQuery,
) -> Response {
    list_kind(&state, &p, ResourceKind::Group, raw).await
}

/// A list without `count` gets every match up to `paging.max_results` (`totalResults` still counts all).
fn bounded(mut query: Query, max_results: usize) -> Query {
    query.paging.count.get_or_insert(max_results);
    query
}

/// A `SearchRequest` body's parameters, refused before parsing when it nests too deep.
fn search_params(body: &Bytes, depth: usize) -> Result<QueryParams, ScimError> {
    if super::support::nests_deeper_than(body, depth) {
        return Err(ScimError::invalid_syntax(format!(
            "the request body nests arrays and objects more than {depth} deep (limits.json_depth)"
        )));
    }
    QueryParams::from_search_body(body)
}

/// A `SearchRequest` body as one parsed query per resource kind.
fn search_query(
    body: &Bytes,
    kinds: &[ResourceKind],
    max_count: usize,
    depth: usize,
) -> Result<Vec<Query>, ScimError> {
    let params = search_params(body, depth)?;
    kinds
        .iter()
        .map(|k| Query::parse(&params, *k, max_count))
        .collect()
}

async fn search_kind(
    state: &AppState,
    principal: &Principal,
    kind: ResourceKind,
    body: Bytes,
) -> Response {
    let parsed = search_params(&body, state.settings.json_depth)
        .and_then(|p| Query::parse(&p, kind, state.settings.max_count).map(|q| (p, q)));
    let (params, query) = match parsed {
        Ok((p, q)) => (p, bounded(q, state.settings.max_results)),
        Err(e) => return error(e),
    };
    page_off_runtime(state, principal, kind, params, query).await
}

async fn search_users(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    body: Bytes,
) -> Response {
    search_kind(&state, &p, ResourceKind::User, body).await
}

async fn search_groups(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    body: Bytes,
) -> Response {
    search_kind(&state, &p, ResourceKind::Group, body).await
}

/// `POST /.search`: Users then Groups, one result set paged as a whole.
async fn search_root(State(state): State<AppState>, body: Bytes) -> Response {
    let queries = match search_query(
        &body,
        &[ResourceKind::User, ResourceKind::Group],
        state.settings.max_count,
        state.settings.json_depth,
    ) {
        Ok(q) => q,
        Err(e) => return error(e),
    };
    let paging = bounded(queries[0].clone(), state.settings.max_results).paging;
    match state.reader.search_root(&queries[0], &queries[1], &paging) {
        Ok(read) => render_list(
            &[
                (
                    &read.value.users,
                    ResourceKind::User,
                    &queries[0].attributes,
                ),
                (
                    &read.value.groups,
                    ResourceKind::Group,
                    &queries[1].attributes,
                ),
            ],
            &read.snapshot,
            &state.store,
        ),
        Err(e) => e.into_response(),
    }
}

// === single resources ===

async fn get_kind(
    state: &AppState,
    kind: ResourceKind,
    id: &str,
    raw: Option<String>,
    headers: &HeaderMap,
) -> Response {
    let attrs = match selection(raw.as_deref(), kind) {
        Ok(a) => a,
        Err(e) => return error(e),
    };
    let (snap, entry) = match state.reader.get(kind, id) {
        Ok(read) => (read.snapshot, read.value),
        Err(e) => return e.into_response(),
    };
    let Some(entry) = entry else {
        // `/Users/Users`, `/Users/Groups`, `/Users/ServiceProviderConfig`: a base URL configured with `/Users`
        // appended (a JumpCloud article tells SailPoint admins to do so).
        let endpoint = [
            "Users",
            "Groups",
            "ServiceProviderConfig",
            "ResourceTypes",
            "Schemas",
            ".search",
        ]
        .iter()
        .any(|e| e.eq_ignore_ascii_case(id));
        let hint = if endpoint {
            format!(
                "; the SCIM base URL is configured with {} appended: it must end in /scim/v2",
                kind.endpoint()
            )
        } else {
            String::new()
        };
        let mut resp = error(ScimError::not_found(format!(
            "{} {} not found{hint}",
            kind.name(),
            crate::scim::error::excerpt(id)
        )));
        add_snapshot_headers(&mut resp, &snap, &state.store);
        return resp;
    };
    // The ETag header stands for `meta.version`: sent with every representation that carries it.
    let carries_version = attrs.is_default() || attrs.keeps_meta_version(kind);
    let etag = entry.etag();
    let mut resp = if if_none_match(headers, &etag) {
        let mut r = StatusCode::NOT_MODIFIED.into_response();
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(crate::scim::SCIM_CONTENT_TYPE),
        );
        r
    } else {
        scim_response(StatusCode::OK, entry_bytes(&entry, &attrs, kind))
    };
    if carries_version && let Ok(v) = HeaderValue::try_from(etag) {
        resp.headers_mut().insert(header::ETAG, v);
    }
    add_snapshot_headers(&mut resp, &snap, &state.store);
    resp
}

// The request itself rather than a `HeaderMap` extractor, which would copy every header for the one
// (`If-None-Match`) read.
async fn get_user(
    State(state): State<AppState>,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
    req: axum::extract::Request,
) -> Response {
    get_kind(&state, ResourceKind::User, &id, raw, req.headers()).await
}

async fn get_group(
    State(state): State<AppState>,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
    req: axum::extract::Request,
) -> Response {
    get_kind(&state, ResourceKind::Group, &id, raw, req.headers()).await
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
    let bodies: Vec<Vec<u8>> = resources
        .iter()
        .map(|r| serde_json::to_vec(r).unwrap_or_default())
        .collect();
    scim_response(
        StatusCode::OK,
        list::list_response(bodies.len(), Position::Index(1), &bodies),
    )
}

async fn service_provider_config(State(state): State<AppState>) -> Response {
    json_response(&discovery::service_provider_config(
        &state.settings.scim_base,
        &state.settings.capabilities,
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
