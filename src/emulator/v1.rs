//! v1 routes: `/api/organizations` and `/api/systemusers` (list, get, create, update, delete, search, and the
//! small state actions). Answers use the v1 envelope `{totalCount, results}`, carry `_id` and `id`, and never
//! send `x-total-count` (facts sheet §0, §2).

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Map, Value};

use super::App;
use super::error::{ApiError, Body, Id, Pairs, json_response, parse_object, v1_list};
use super::events::Origin;
use super::model::User;
use super::query::{
    self, Cond, DEFAULT_LIMIT, Dialect, MAX_LIMIT, parse_body_filter, parse_fields, parse_list,
    parse_search_filter, parse_sort, project, string_list,
};

/// Members a v1 projection always keeps, as MongoDB keeps `_id`.
const ALWAYS: &[&str] = &["_id", "id"];

pub fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/api/organizations", get(list_organizations))
        .route("/api/organizations/{id}", get(get_organization))
        .route("/api/systemusers", get(list_users).post(create_user))
        .route(
            "/api/systemusers/{id}",
            get(get_user).put(update_user).delete(delete_user),
        )
        .route("/api/systemusers/{id}/state/activate", post(activate_user))
        .route("/api/systemusers/{id}/expire", post(expire_password))
        .route("/api/systemusers/{id}/unlock", post(unlock_user))
        .route("/api/search/systemusers", post(search_users))
}

async fn list_organizations(State(app): State<Arc<App>>) -> Response {
    let org = app.read().org.to_json();
    v1_list(1, &[org])
}

async fn get_organization(State(app): State<Arc<App>>, Id(id): Id) -> Result<Response, ApiError> {
    let store = app.read();
    if store.org.id != id {
        return Err(ApiError::NotFound(format!("organization {id} not found")));
    }
    Ok(json_response(StatusCode::OK, &store.org.to_json()))
}

async fn list_users(State(app): State<Arc<App>>, pairs: Pairs) -> Result<Response, ApiError> {
    let q = parse_list(&pairs.0, Dialect::V1)?;
    Ok(users_page(&app, &q))
}

/// Runs `q` against the store and renders the v1 envelope. A full-shape page is serialised straight from the
/// store under its read lock (readers share it); a projected page is built as values and serialised after.
fn users_page(app: &App, q: &query::ListQuery) -> Response {
    let store = app.read();
    let (total, page) = store.query_users(&q.cond, &q.sort, q.skip, q.limit);
    match q.fields.as_deref() {
        None => {
            let wires: Vec<_> = page.into_iter().map(User::wire).collect();
            v1_list(total, &wires)
        }
        Some(fields) => {
            let results: Vec<Value> = page
                .into_iter()
                .map(|u| project(u.to_json(), Some(fields), ALWAYS))
                .collect();
            drop(store);
            v1_list(total, &results)
        }
    }
}

/// One user, full or projected.
fn user_answer(user: &User, fields: Option<&[String]>) -> Response {
    match fields {
        None => json_response(StatusCode::OK, &user.wire()),
        Some(_) => json_response(StatusCode::OK, &project(user.to_json(), fields, ALWAYS)),
    }
}

/// `POST /api/search/systemusers`: body `{filter, searchFilter, fields, limit, skip, sort}`; the same members
/// are also taken from the query string (2022 spec), the body winning.
async fn search_users(
    State(app): State<Arc<App>>,
    pairs: Pairs,
    Body(body): Body,
) -> Result<Response, ApiError> {
    let mut q = parse_list(&pairs.0, Dialect::V1)?;
    let body: Map<String, Value> = if body.iter().all(u8::is_ascii_whitespace) {
        Map::new()
    } else {
        parse_object(&body)?
    };
    let mut conds = vec![std::mem::replace(&mut q.cond, Cond::True)];
    if let Some(f) = body.get("filter") {
        conds.push(parse_body_filter(f)?);
    }
    if let Some(s) = body.get("searchFilter") {
        conds.push(parse_search_filter(s)?);
    }
    q.cond = Cond::all(conds);
    if let Some(f) = body.get("fields").filter(|v| !v.is_null()) {
        let fields = string_list(f, Dialect::V1).ok_or_else(|| {
            ApiError::BadRequest("fields must be a string or an array of strings".into())
        })?;
        q.fields = (!fields.is_empty()).then_some(fields);
    }
    if let Some(s) = body.get("sort").filter(|v| !v.is_null()) {
        q.sort = match s {
            Value::String(s) => parse_sort(s, Dialect::V1),
            Value::Array(_) => parse_sort(
                &string_list(s, Dialect::V1).unwrap_or_default().join(" "),
                Dialect::V1,
            ),
            _ => return Err(ApiError::BadRequest("sort must be a string".into())),
        };
    }
    if let Some(n) = body_count(&body, "limit")? {
        q.limit = if n == 0 {
            DEFAULT_LIMIT
        } else {
            n.min(MAX_LIMIT)
        };
    }
    if let Some(n) = body_count(&body, "skip")? {
        q.skip = n;
    }
    Ok(users_page(&app, &q))
}

fn body_count(body: &Map<String, Value>, name: &'static str) -> Result<Option<usize>, ApiError> {
    match body.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_u64()
            .map(|n| Some(n as usize))
            .ok_or_else(|| ApiError::BadRequest(format!("{name} must be a non-negative integer"))),
        Some(Value::String(s)) => Ok(Some(query::parse_count(name, s)?)),
        Some(_) => Err(ApiError::BadRequest(format!(
            "{name} must be a non-negative integer"
        ))),
    }
}

async fn get_user(
    State(app): State<Arc<App>>,
    Id(id): Id,
    pairs: Pairs,
) -> Result<Response, ApiError> {
    let fields = pairs
        .get("fields")
        .and_then(|f| parse_fields(f, Dialect::V1));
    let store = app.read();
    let user = store
        .user(&id)
        .ok_or_else(|| ApiError::NotFound(format!("user {id} not found")))?;
    Ok(user_answer(user, fields.as_deref()))
}

/// A write through the API, now.
fn api_now() -> Origin {
    Origin::api(jiff::Timestamp::now())
}

/// Answers 200, not 201, as JumpCloud does.
async fn create_user(State(app): State<Arc<App>>, Body(body): Body) -> Result<Response, ApiError> {
    let body = parse_object(&body)?;
    let user = app.write().create_user(&body, api_now())?;
    Ok(json_response(StatusCode::OK, &user.wire()))
}

async fn update_user(
    State(app): State<Arc<App>>,
    Id(id): Id,
    Body(body): Body,
) -> Result<Response, ApiError> {
    let body = parse_object(&body)?;
    let user = app.write().update_user(&id, &body, api_now())?;
    Ok(json_response(StatusCode::OK, &user.wire()))
}

/// Answers 200 with the deleted user.
async fn delete_user(
    State(app): State<Arc<App>>,
    Id(id): Id,
    pairs: Pairs,
) -> Result<Response, ApiError> {
    let user = app
        .write()
        .delete_user(&id, pairs.get("cascade_manager"), api_now())?;
    Ok(json_response(StatusCode::OK, &user.wire()))
}

async fn activate_user(State(app): State<Arc<App>>, Id(id): Id) -> Result<Response, ApiError> {
    app.write().activate_user(&id, api_now())?;
    Ok(StatusCode::OK.into_response())
}

async fn expire_password(State(app): State<Arc<App>>, Id(id): Id) -> Result<Response, ApiError> {
    app.write().expire_password(&id, api_now())?;
    Ok(StatusCode::OK.into_response())
}

async fn unlock_user(State(app): State<Arc<App>>, Id(id): Id) -> Result<Response, ApiError> {
    app.write().unlock_user(&id, api_now())?;
    Ok(StatusCode::OK.into_response())
}
