//! v2 routes: user groups, their members, the reverse and transitive views, directories and the association
//! edges between directories, users and groups. Lists are bare arrays with `x-total-count` (facts sheet §3).
//!
//! Only users can be group members, so `/membership` and `/memberof` paths are one hop long.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::Value;

use super::App;
use super::error::{ApiError, Body, Id, Pairs, json_response, parse_object, v2_list};
use super::events::Origin;
use super::model::{DirKind, GroupFields, edge, with_paths};
use super::query::{Cond, Dialect, ListQuery, SortKey, parse_list, project, sort_records};
use super::store::{EdgeOp, Target, Via};

/// `targets` a user's or group's associations may name (spec enum; `user_group` is not one of them).
const OBJECT_TARGETS: &[&str] = &[
    "active_directory",
    "application",
    "g_suite",
    "idp_routing_policy",
    "ldap_server",
    "office_365",
    "password_manager_item",
    "radius_server",
    "system",
    "system_group",
];
/// `targets` a directory's associations may name.
const DIRECTORY_TARGETS: &[&str] = &["user", "user_group"];

pub fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/api/v2/usergroups", get(list_groups).post(create_group))
        .route(
            "/api/v2/usergroups/{id}",
            get(get_group).put(replace_group).delete(delete_group),
        )
        .route(
            "/api/v2/usergroups/{id}/members",
            get(list_members).post(change_member),
        )
        .route("/api/v2/usergroups/{id}/membership", get(group_membership))
        .route(
            "/api/v2/usergroups/{id}/associations",
            get(group_associations).post(change_group_association),
        )
        .route("/api/v2/users/{id}/memberof", get(user_memberof))
        .route(
            "/api/v2/users/{id}/associations",
            get(user_associations).post(change_user_association),
        )
        .route("/api/v2/directories", get(list_directories))
        .route("/api/v2/activedirectories", get(list_active_directories))
        .merge(directory_routes(
            "activedirectories",
            DirKind::ActiveDirectory,
        ))
        .merge(directory_routes("gsuites", DirKind::GSuite))
        .merge(directory_routes("office365s", DirKind::Office365))
}

/// `/{segment}/{id}` and `/{segment}/{id}/associations` for one kind of directory.
fn directory_routes(segment: &str, kind: DirKind) -> Router<Arc<App>> {
    Router::new()
        .route(
            &format!("/api/v2/{segment}/{{id}}"),
            get(move |app: State<Arc<App>>, id: Id| get_directory(kind, app, id)),
        )
        .route(
            &format!("/api/v2/{segment}/{{id}}/associations"),
            get(move |app: State<Arc<App>>, id: Id, pairs: Pairs| {
                directory_associations(kind, app, id, pairs)
            })
            .post(move |app: State<Arc<App>>, id: Id, body: Body| {
                change_directory_association(kind, app, id, body)
            }),
        )
}

/// Filters, sorts and pages rendered objects; `id` survives any projection.
fn page_values(items: Vec<Value>, q: &ListQuery) -> Response {
    let matched: Vec<&Value> = items.iter().filter(|v| q.cond.matches(*v)).collect();
    let sorted = sort_records(matched, &q.sort);
    let total = sorted.len();
    let page = sorted
        .into_iter()
        .skip(q.skip)
        .take(q.limit)
        .map(|v| project(v.clone(), q.fields.as_deref(), &["id"]))
        .collect();
    v2_list(total, page)
}

/// Graph views filter on `object_id`; our rendered objects call it `id`.
fn alias_object_id(q: &mut ListQuery) {
    fn walk(c: &mut Cond) {
        match c {
            Cond::And(cs) | Cond::Or(cs) => cs.iter_mut().for_each(walk),
            Cond::Test(t) if t.field == "object_id" => t.field = "id".into(),
            _ => {}
        }
    }
    walk(&mut q.cond);
    for SortKey { field, .. } in &mut q.sort {
        if field == "object_id" {
            *field = "id".into();
        }
    }
}

/// Whether a graph list can be paged straight from an id-ordered set.
fn is_plain(q: &ListQuery) -> bool {
    q.cond == Cond::True
        && match q.sort.as_slice() {
            [] => true,
            [k] => !k.desc && (k.field == "id" || k.field == "object_id"),
            _ => false,
        }
}

// --- groups ---

async fn list_groups(State(app): State<Arc<App>>, pairs: Pairs) -> Result<Response, ApiError> {
    let q = parse_list(&pairs.0, Dialect::V2)?;
    let groups: Vec<Value> = app.read().groups().map(|g| g.to_json()).collect();
    Ok(page_values(groups, &q))
}

async fn get_group(State(app): State<Arc<App>>, Id(id): Id) -> Result<Response, ApiError> {
    let group = app
        .read()
        .group(&id)
        .map(|g| g.to_json())
        .ok_or_else(|| group_not_found(&id))?;
    Ok(json_response(StatusCode::OK, &group))
}

/// Answers 201.
async fn create_group(State(app): State<Arc<App>>, Body(body): Body) -> Result<Response, ApiError> {
    let fields = GroupFields::parse(&parse_object(&body)?)?;
    let group = app.write().create_group(fields, api_now())?.to_json();
    Ok(json_response(StatusCode::CREATED, &group))
}

/// A full replace: whatever the body omits goes back to its default.
async fn replace_group(
    State(app): State<Arc<App>>,
    Id(id): Id,
    Body(body): Body,
) -> Result<Response, ApiError> {
    let fields = GroupFields::parse(&parse_object(&body)?)?;
    let group = app.write().replace_group(&id, fields, api_now())?.to_json();
    Ok(json_response(StatusCode::OK, &group))
}

/// Answers 204.
async fn delete_group(State(app): State<Arc<App>>, Id(id): Id) -> Result<Response, ApiError> {
    app.write().delete_group(&id, api_now())?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

// --- membership ---

/// Direct members as `GraphConnection`s; only `limit` and `skip` apply.
async fn list_members(
    State(app): State<Arc<App>>,
    Id(id): Id,
    pairs: Pairs,
) -> Result<Response, ApiError> {
    let q = parse_list(&pairs.0, Dialect::V2)?;
    let store = app.read();
    let group = store.group(&id).ok_or_else(|| group_not_found(&id))?;
    let page: Vec<Value> = group
        .members
        .iter()
        .skip(q.skip)
        .take(q.limit)
        .map(|u| edge(u, "user"))
        .collect();
    let total = group.members.len();
    drop(store);
    Ok(v2_list(total, page))
}

/// `{op: add|remove, type: "user", id}` → 204.
async fn change_member(
    State(app): State<Arc<App>>,
    Id(id): Id,
    Body(body): Body,
) -> Result<Response, ApiError> {
    let e = EdgeBody::parse(&body)?;
    if e.kind != "user" {
        return Err(ApiError::BadRequest(format!(
            "type must be \"user\": only users can be members, got {:?}",
            e.kind
        )));
    }
    app.write().change_member(&id, e.op, &e.id, api_now())?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Every user reachable from the group, as `GraphObjectWithPaths`.
async fn group_membership(
    State(app): State<Arc<App>>,
    Id(id): Id,
    pairs: Pairs,
) -> Result<Response, ApiError> {
    let mut q = parse_list(&pairs.0, Dialect::V2)?;
    let store = app.read();
    let group = store.group(&id).ok_or_else(|| group_not_found(&id))?;
    if is_plain(&q) {
        let total = group.members.len();
        let page: Vec<Value> = group
            .members
            .iter()
            .skip(q.skip)
            .take(q.limit)
            .map(|u| with_paths(u, "user"))
            .collect();
        drop(store);
        return Ok(v2_list(total, page));
    }
    let items: Vec<Value> = group
        .members
        .iter()
        .map(|u| with_paths(u, "user"))
        .collect();
    drop(store);
    alias_object_id(&mut q);
    Ok(page_values(items, &q))
}

/// The groups a user is in, as `GraphObjectWithPaths`.
async fn user_memberof(
    State(app): State<Arc<App>>,
    Id(id): Id,
    pairs: Pairs,
) -> Result<Response, ApiError> {
    let mut q = parse_list(&pairs.0, Dialect::V2)?;
    let items: Vec<Value> = {
        let store = app.read();
        if store.user(&id).is_none() {
            return Err(user_not_found(&id));
        }
        store
            .groups_of(&id)
            .map(|g| with_paths(&g.id, "user_group"))
            .collect()
    };
    alias_object_id(&mut q);
    Ok(page_values(items, &q))
}

// --- associations ---

/// The validated `targets` (repeatable, or comma-separated): required, and each one of `allowed`.
fn targets(pairs: &Pairs, allowed: &[&str]) -> Result<Vec<String>, ApiError> {
    let targets: Vec<String> = pairs
        .0
        .iter()
        .filter(|(k, _)| k == "targets" || k == "targets[]")
        .flat_map(|(_, v)| v.split(','))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .collect();
    if targets.is_empty() {
        return Err(ApiError::BadRequest(format!(
            "targets is required: one of {}",
            allowed.join(", ")
        )));
    }
    if let Some(bad) = targets.iter().find(|t| !allowed.contains(&t.as_str())) {
        return Err(ApiError::BadRequest(format!(
            "invalid targets {bad:?}: must be one of {}",
            allowed.join(", ")
        )));
    }
    Ok(targets)
}

/// A user's or group's direct edges to directories of the `targets` kinds.
fn object_associations(
    app: &App,
    target: Target,
    id: &str,
    pairs: &Pairs,
) -> Result<Response, ApiError> {
    let targets = targets(pairs, OBJECT_TARGETS)?;
    let q = parse_list(&pairs.0, Dialect::V2)?;
    let edges: Vec<Value> = {
        let store = app.read();
        let exists = match target {
            Target::User => store.user(id).is_some(),
            Target::UserGroup => store.group(id).is_some(),
        };
        if !exists {
            return Err(match target {
                Target::User => user_not_found(id),
                Target::UserGroup => group_not_found(id),
            });
        }
        store
            .directories()
            .iter()
            .filter(|d| targets.iter().any(|t| t == d.kind.type_name()))
            .filter(|d| match target {
                Target::User => d.users.contains(id),
                Target::UserGroup => d.groups.contains(id),
            })
            .map(|d| edge(&d.id, d.kind.type_name()))
            .collect()
    };
    let total = edges.len();
    Ok(v2_list(
        total,
        edges.into_iter().skip(q.skip).take(q.limit).collect(),
    ))
}

async fn user_associations(
    State(app): State<Arc<App>>,
    Id(id): Id,
    pairs: Pairs,
) -> Result<Response, ApiError> {
    object_associations(&app, Target::User, &id, &pairs)
}

async fn group_associations(
    State(app): State<Arc<App>>,
    Id(id): Id,
    pairs: Pairs,
) -> Result<Response, ApiError> {
    object_associations(&app, Target::UserGroup, &id, &pairs)
}

/// `POST` on a user's or group's associations: `{op, type: <directory type>, id: <directory id>}`.
fn change_object_association(
    app: &App,
    target: Target,
    id: &str,
    body: &[u8],
) -> Result<Response, ApiError> {
    let e = EdgeBody::parse(body)?;
    if !OBJECT_TARGETS.contains(&e.kind.as_str()) {
        return Err(ApiError::BadRequest(format!(
            "invalid type {:?}: must be one of {}",
            e.kind,
            OBJECT_TARGETS.join(", ")
        )));
    }
    // The emulator holds directories only: any other target type names an object that does not exist.
    let kind = DirKind::from_type(&e.kind)
        .ok_or_else(|| ApiError::NotFound(format!("{} {} not found", e.kind, e.id)))?;
    app.write()
        .change_association(kind, &e.id, e.op, target, id, Via::Member, api_now())?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn change_user_association(
    State(app): State<Arc<App>>,
    Id(id): Id,
    Body(body): Body,
) -> Result<Response, ApiError> {
    change_object_association(&app, Target::User, &id, &body)
}

async fn change_group_association(
    State(app): State<Arc<App>>,
    Id(id): Id,
    Body(body): Body,
) -> Result<Response, ApiError> {
    change_object_association(&app, Target::UserGroup, &id, &body)
}

// --- directories ---

async fn list_directories(State(app): State<Arc<App>>, pairs: Pairs) -> Result<Response, ApiError> {
    let q = parse_list(&pairs.0, Dialect::V2)?;
    let items: Vec<Value> = app
        .read()
        .directories()
        .iter()
        .map(|d| d.summary_json())
        .collect();
    Ok(page_values(items, &q))
}

async fn list_active_directories(
    State(app): State<Arc<App>>,
    pairs: Pairs,
) -> Result<Response, ApiError> {
    let q = parse_list(&pairs.0, Dialect::V2)?;
    let items: Vec<Value> = {
        let store = app.read();
        store
            .directories()
            .iter()
            .filter(|d| d.kind == DirKind::ActiveDirectory)
            .map(|d| d.detail_json(&store.org.id))
            .collect()
    };
    Ok(page_values(items, &q))
}

async fn get_directory(
    kind: DirKind,
    State(app): State<Arc<App>>,
    Id(id): Id,
) -> Result<Response, ApiError> {
    let item = {
        let store = app.read();
        store
            .directory(kind, &id)
            .map(|d| d.detail_json(&store.org.id))
            .ok_or_else(|| directory_not_found(kind, &id))?
    };
    Ok(json_response(StatusCode::OK, &item))
}

/// Direct edges of a directory: `targets=user` and/or `targets=user_group`.
async fn directory_associations(
    kind: DirKind,
    State(app): State<Arc<App>>,
    Id(id): Id,
    pairs: Pairs,
) -> Result<Response, ApiError> {
    let targets = targets(&pairs, DIRECTORY_TARGETS)?;
    let q = parse_list(&pairs.0, Dialect::V2)?;
    let (total, page) = {
        let store = app.read();
        let dir = store
            .directory(kind, &id)
            .ok_or_else(|| directory_not_found(kind, &id))?;
        let want = |t: &str| targets.iter().any(|x| x == t);
        let users = want("user")
            .then_some(&dir.users)
            .into_iter()
            .flatten()
            .map(|u| (u, "user"));
        let groups = want("user_group")
            .then_some(&dir.groups)
            .into_iter()
            .flatten()
            .map(|g| (g, "user_group"));
        let total = users.clone().count() + groups.clone().count();
        let page: Vec<Value> = users
            .chain(groups)
            .skip(q.skip)
            .take(q.limit)
            .map(|(id, t)| edge(id, t))
            .collect();
        (total, page)
    };
    Ok(v2_list(total, page))
}

/// `{op, type: user|user_group, id}` → 204.
async fn change_directory_association(
    kind: DirKind,
    State(app): State<Arc<App>>,
    Id(id): Id,
    Body(body): Body,
) -> Result<Response, ApiError> {
    let e = EdgeBody::parse(&body)?;
    let target = match e.kind.as_str() {
        "user" => Target::User,
        "user_group" => Target::UserGroup,
        other => {
            return Err(ApiError::BadRequest(format!(
                "invalid type {other:?}: must be user or user_group"
            )));
        }
    };
    app.write()
        .change_association(kind, &id, e.op, target, &e.id, Via::Directory, api_now())?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

// --- helpers ---

/// A write through the API, now.
fn api_now() -> Origin {
    Origin::api(jiff::Timestamp::now())
}

/// A graph write body: `{op, type, id, attributes?}`.
struct EdgeBody {
    op: EdgeOp,
    kind: String,
    id: String,
}

// === impl EdgeBody ===

impl EdgeBody {
    fn parse(bytes: &[u8]) -> Result<Self, ApiError> {
        let m = parse_object(bytes)?;
        let text = |k: &str| match m.get(k) {
            Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
            _ => Err(ApiError::BadRequest(format!(
                "{k} is required and must be a string"
            ))),
        };
        let op = text("op")?;
        let op = EdgeOp::parse(&op)
            .ok_or_else(|| ApiError::BadRequest(format!("op must be add or remove, got {op:?}")))?;
        Ok(Self {
            op,
            kind: text("type")?,
            id: text("id")?,
        })
    }
}

fn group_not_found(id: &str) -> ApiError {
    ApiError::NotFound(format!("user group {id} not found"))
}

fn user_not_found(id: &str) -> ApiError {
    ApiError::NotFound(format!("user {id} not found"))
}

fn directory_not_found(kind: DirKind, id: &str) -> ApiError {
    ApiError::NotFound(format!("{} {id} not found", kind.type_name()))
}
