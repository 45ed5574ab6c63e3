//! The one middleware in front of every API route, and the control endpoints it lets through.
//!
//! Order, outermost first, and why:
//! 1. stats: counts what the client saw, so it wraps everything else (faults and 401s are counted);
//! 2. latency and faults: they stand for the proxy in front of JumpCloud, so they strike before auth;
//! 3. auth (`x-api-key`, then `x-org-id` for a multi-tenant key);
//! 4. the handler; then commit-then-502 swaps a successful write's answer for a gateway error.
//!
//! `/__emulator/*` skips all of it: never faulted, never authenticated, never counted.

use std::sync::Arc;

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::time::Instant;

use super::App;
use super::error::{ApiError, Body, json_response, parse_body};
use super::faults::{FaultPatch, Injected};
use super::model::is_object_id;

/// Prefix of the control endpoints.
pub const CONTROL_PREFIX: &str = "/__emulator/";
/// Route key under which requests that matched no route are counted.
const UNMATCHED: &str = "(unmatched)";

/// The middleware; see the module docs for its order.
pub async fn gate(State(app): State<Arc<App>>, req: Request, next: Next) -> Response {
    if req.uri().path().starts_with(CONTROL_PREFIX) {
        return next.run(req).await;
    }
    let route = route_key(&req);
    let resp = guarded(&app, &route, req, next).await;
    app.stats().record(&route, resp.status().as_u16());
    resp
}

/// `METHOD /route/template`, e.g. `POST /api/v2/usergroups/{id}/members`.
fn route_key(req: &Request) -> String {
    let path = req
        .extensions()
        .get::<MatchedPath>()
        .map_or(UNMATCHED, MatchedPath::as_str);
    format!("{} {}", req.method(), path)
}

/// Prefix of the Directory Insights routes, whose POSTs only read.
const INSIGHTS_PREFIX: &str = "/insights/";

/// Whether a request changes data (the search POST and the Directory Insights POSTs only read).
fn is_write(method: &Method, route: &str) -> bool {
    matches!(
        *method,
        Method::POST | Method::PUT | Method::PATCH | Method::DELETE
    ) && route != "POST /api/search/systemusers"
        && !route
            .split_once(' ')
            .is_some_and(|(_, path)| path.starts_with(INSIGHTS_PREFIX))
}

async fn guarded(app: &App, route: &str, req: Request, next: Next) -> Response {
    let write = is_write(req.method(), route);
    // Decided in one short lock; the latency sleep happens after it is released.
    let decision = app.faults().decide(route, write, Instant::now());
    if !decision.latency.is_zero() {
        tokio::time::sleep(decision.latency).await;
    }
    if let Some(injected) = decision.injected {
        return injected.into_response();
    }
    if let Err(e) = authorize(app, &req) {
        return e.into_response();
    }
    let resp = next.run(req).await;
    if decision.commit_then_fail && resp.status().is_success() {
        return Injected::Gateway(StatusCode::BAD_GATEWAY).into_response();
    }
    resp
}

/// `x-api-key` must be the configured key. A multi-tenant key also needs `x-org-id` naming the organisation,
/// except on `/api/organizations*`, the routes used to find it. A single-tenant key ignores `x-org-id`
/// (observed clients send it empty). Directory Insights takes the header repeated (an MSP's several
/// organisations): each one must be well-formed and this organisation.
fn authorize(app: &App, req: &Request) -> Result<(), ApiError> {
    let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok());
    if header("x-api-key") != Some(app.api_key.as_str()) {
        return Err(ApiError::Unauthorized(
            "Unauthorized: missing or invalid x-api-key".into(),
        ));
    }
    if !app.multi_tenant || req.uri().path().starts_with("/api/organizations") {
        return Ok(());
    }
    if req.uri().path().starts_with(INSIGHTS_PREFIX) {
        let orgs: Vec<&str> = req
            .headers()
            .get_all("x-org-id")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .collect();
        if orgs.is_empty() {
            return Err(ApiError::Unauthorized(
                "x-org-id is required: this API key belongs to a multi-tenant administrator".into(),
            ));
        }
        return orgs.into_iter().try_for_each(|org| check_org(app, org));
    }
    match header("x-org-id").map(str::trim) {
        None | Some("") => Err(ApiError::Unauthorized(
            "x-org-id is required: this API key belongs to a multi-tenant administrator".into(),
        )),
        Some(org) => check_org(app, org),
    }
}

fn check_org(app: &App, org: &str) -> Result<(), ApiError> {
    if !is_object_id(org) {
        Err(ApiError::BadRequest(format!("malformed x-org-id {org:?}")))
    } else if org != app.org_id {
        Err(ApiError::NotFound(format!("organization {org} not found")))
    } else {
        Ok(())
    }
}

/// `/__emulator/stats` and `/__emulator/faults`.
pub fn control_routes() -> Router<Arc<App>> {
    Router::new()
        .route("/__emulator/stats", get(get_stats).delete(reset_stats))
        .route("/__emulator/faults", get(get_faults).put(put_faults))
}

async fn get_stats(State(app): State<Arc<App>>) -> Response {
    let stats = app.stats().clone();
    json_response(StatusCode::OK, &stats)
}

async fn reset_stats(State(app): State<Arc<App>>) -> Response {
    let stats = {
        let mut s = app.stats();
        s.reset();
        s.clone()
    };
    json_response(StatusCode::OK, &stats)
}

async fn get_faults(State(app): State<Arc<App>>) -> Response {
    let view = app.faults().to_json(Instant::now());
    json_response(StatusCode::OK, &view)
}

async fn put_faults(State(app): State<Arc<App>>, Body(body): Body) -> Result<Response, ApiError> {
    let patch: FaultPatch = serde_json::from_value(parse_body(&body)?)
        .map_err(|e| ApiError::BadRequest(format!("invalid faults: {e}")))?;
    let late = patch.insights_late_next;
    let now = Instant::now();
    let view = {
        let mut faults = app.faults();
        faults.patch(patch, now).map_err(ApiError::BadRequest)?;
        faults.to_json(now)
    };
    // Late ingestion belongs to the events about to be recorded, which the store records.
    if let Some(l) = late {
        app.write().events.delay_next(l.count, l.extra_ms);
    }
    Ok(json_response(StatusCode::OK, &view))
}
