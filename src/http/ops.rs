//! Operations endpoints: `/healthz`, `/readyz`, `/metrics`, `/status`, and the operators' `/admin/*`.

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use jiff::Timestamp;
use serde_json::json;

use super::AppState;
use crate::auth::Principal;
use crate::cache::age_seconds;
use crate::cache::insights::{FeedMode, FeedState};
use crate::cache::replicas::Fence;
use crate::scim::error::ScimError;

/// Where `/metrics` and `/status` are served, and who may read them (`ops.listen`, `ops.auth`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OpsPlacement {
    /// On a listener of their own (`ops.listen`): the main one keeps only the probes.
    pub separate: bool,
    /// A credential (read or provision) is required to read them.
    pub credential: bool,
}

/// The operations routes of the main listener: the probes and `/admin/*` always; `/metrics` and `/status`
/// unless they have a listener of their own.
pub fn router(state: AppState) -> Router<AppState> {
    let admin = Router::new()
        .route("/admin/refresh", post(admin_refresh))
        .route("/admin/accept-shrink", post(admin_accept_shrink))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            super::authenticate,
        ));
    let probes = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .merge(admin);
    if state.settings.ops.separate {
        probes
    } else {
        probes.merge(observation(state))
    }
}

/// The router of the operations listener (`ops.listen`): the probes, `/metrics` and `/status`.
pub fn ops_router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .merge(observation(state.clone()))
        .with_state(state)
}

/// `/metrics` and `/status`, behind a credential when `ops.auth = "read"`.
fn observation(state: AppState) -> Router<AppState> {
    let routes = Router::new()
        .route("/metrics", get(metrics))
        .route("/status", get(status_page));
    if state.settings.ops.credential {
        routes.route_layer(axum::middleware::from_fn_with_state(
            state,
            super::authenticate,
        ))
    } else {
        routes
    }
}

/// Liveness: the same few bytes every time, from a constant (what `json_body` would write for
/// `{"status": "alive"}`), for probes that may call several times a second.
async fn healthz() -> Response {
    let mut resp = Response::new(axum::body::Body::from(&br#"{"status":"alive"}"#[..]));
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

fn json_body(status: StatusCode, v: serde_json::Value) -> Response {
    let mut resp = (status, serde_json::to_vec(&v).unwrap_or_default()).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

/// The full refresh's interval now: the long one while the Directory Insights feed is in use.
fn refresh_interval_s(state: &AppState) -> u64 {
    if state.feed.mode != FeedMode::Off && state.feed.in_use() {
        state.settings.refresh_interval_with_feed_s
    } else {
        state.settings.refresh_interval_s
    }
}

/// Whether this process is a replica that does not hold the refresher's lease while the feed is on: the
/// leader reads the feed and refreshes, and this one loads what it publishes, so its own feed reader never
/// runs. With the feed off, the feed's state is `off` on every replica.
fn follows(state: &AppState) -> bool {
    state.feed.mode != FeedMode::Off
        && state
            .replicas
            .as_ref()
            .is_some_and(|r| !r.shared.health.leader())
}

/// The feed's state on a follower, in `/readyz`'s words and the status page's.
const FOLLOWER_FEED: (&str, &str) = (
    "read_by_leader",
    "read by the leader replica; this replica loads the versions it publishes",
);

/// The Directory Insights feed in `/readyz`: its state and aggregate figures.
fn feed_json(state: &AppState, now: Timestamp) -> serde_json::Value {
    let r = state.feed.report();
    let mark = state.store.feed_mark();
    let time = |t: Option<Timestamp>| t.map(|t| t.to_string());
    let detail = match &r.state {
        FeedState::Failing { reason } | FeedState::Behind { reason, .. } => Some(reason.clone()),
        _ => None,
    };
    let (label, words) = if follows(state) {
        (FOLLOWER_FEED.0.to_owned(), FOLLOWER_FEED.1.to_owned())
    } else {
        (r.state.label().to_owned(), r.state.in_words())
    };
    json!({
        "enabled": state.feed.mode.as_str(),
        "state": label,
        "in_words": words,
        "reason": detail,
        "since": time(r.since),
        "poll_s": state.feed.poll.as_secs(),
        "last_poll": time(r.last_poll),
        "last_read": time(r.last_ok),
        "polls": r.polls,
        "failures": r.failures,
        "last_error": r.last_error,
        "events_applied": r.events,
        "versions_published": r.versions,
        "lag_seconds": state.metrics.insights_lag_seconds(now),
        "cursor": mark.cursor.as_ref().map(|c| json!({
            "read_through": c.read_through().to_string(),
            "newest_event": time(c.newest()),
        })),
        "last_full_refresh_began": time(mark.refreshed_at),
    })
}

/// The snapshot store in `/readyz`: where versions live and, with replicas, whether Redis answers, whether
/// this replica leads, and what the shared store's state means for writes. Never the URL's password.
fn store_json(state: &AppState) -> serde_json::Value {
    let Some(r) = &state.replicas else {
        return json!({ "kind": "local" });
    };
    let h = &r.shared.health;
    json!({
        "kind": "redis",
        "url": r.url,
        "replica": r.shared.replica(),
        "up": h.up(),
        "role": if h.leader() { "leader" } else { "follower" },
        "version": h.version(),
        "errors": h.errors(),
        "fenced": h.fenced(),
        "shared": { "deltas": h.deltas(), "wholes": h.wholes() },
        "last_error": h.last_error(),
        "writes": if h.up() { "accepted" } else { "paused (503) until Redis answers; reads go on from the last version loaded" },
    })
}

/// What `/readyz` and `/status` report.
fn readiness(state: &AppState) -> (bool, serde_json::Value) {
    let now = Timestamp::now();
    let snap = state.store.load();
    let last = state.store.last_refresh();
    let held = state.store.shrink_guard().held.clone();
    let body = json!({
        "ready": snap.is_some(),
        "snapshot": snap.as_ref().map(|s| json!({
            "version": s.version,
            // Since the snapshot was known to match JumpCloud: its read, or the feed's last poll.
            "age_seconds": age_seconds(state.store.fresh_as_of(s), now),
            "fresh_as_of": state.store.fresh_as_of(s).to_string(),
            "taken_at": s.taken_at.to_string(),
            "users": s.user_count(),
            "groups": s.group_count(),
            // Just after a start from disk: reads are served, writes wait for JumpCloud's data to be restored.
            "restoring": s.is_serving_only(),
        })),
        "last_refresh": last.map(|r| json!({
            "ok": r.ok,
            "held_back": r.held_back,
            "finished_at": r.finished_at.to_string(),
            "error": r.error,
            "calls": r.calls,
            "retries": r.retries,
            "duration_ms": r.duration_ms,
        })),
        "refresh_interval_s": refresh_interval_s(state),
        "insights": feed_json(state, now),
        "store": store_json(state),
        "held_back": held.map(|h| json!({
            "users": h.users,
            "groups": h.groups,
            "high_water_users": h.high_water_users,
            "high_water_groups": h.high_water_groups,
            "since": h.at.to_string(),
            "reason": h.reason,
            "accept_with": "POST /admin/accept-shrink",
        })),
    });
    (snap.is_some(), body)
}

/// 200 once a snapshot is loaded, whatever JumpCloud's state; 503 before.
async fn readyz(State(state): State<AppState>) -> Response {
    let (ready, body) = readiness(&state);
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let mut resp = json_body(status, body);
    if !ready {
        resp.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
    }
    resp
}

/// Prometheus text format; no credential, like `/healthz`: it holds aggregate figures only.
async fn metrics(State(state): State<AppState>) -> Response {
    // Gauges read from their owners at scrape time.
    state.metrics.set_pinned_walks(state.reader.pinned_walks());
    state
        .metrics
        .set_breaker_state(state.writer.breaker_state());
    if let Some(r) = &state.replicas {
        let h = &r.shared.health;
        state
            .metrics
            .set_store(h.up(), h.leader(), h.version(), (h.errors(), h.fenced()));
        state.metrics.set_store_shared(h.deltas(), h.wholes());
    }
    let body = state.metrics.render(&state.store);
    let mut resp = body.into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(crate::telemetry::CONTENT_TYPE),
    );
    resp
}

/// A page for people: aggregate figures only, no personal data (see [`super::status`]).
async fn status_page(State(state): State<AppState>) -> Response {
    use super::status::{HeldBackView, SnapshotView, View};
    let now = Timestamp::now();
    state.metrics.set_pinned_walks(state.reader.pinned_walks());
    state
        .metrics
        .set_breaker_state(state.writer.breaker_state());
    let (upstream, requests) = state.metrics.last_hour(now);
    let held = state.store.shrink_guard().held.clone();
    let view = View {
        version: env!("CARGO_PKG_VERSION"),
        now,
        started: state.metrics.started,
        snapshot: state.store.load().map(|s| SnapshotView {
            version: s.version,
            taken_at: s.taken_at,
            fresh_as_of: state.store.fresh_as_of(&s),
            users: s.user_count(),
            groups: s.group_count(),
            restoring: s.is_serving_only(),
        }),
        refreshes: state.store.refresh_history(),
        refresh_interval_s: refresh_interval_s(&state),
        feed: feed_view(&state, now),
        confirmations: state.feed.confirmations(),
        store: state.replicas.as_ref().map(|r| {
            let h = &r.shared.health;
            super::status::StoreView {
                url: r.url.clone(),
                up: h.up(),
                leader: h.leader(),
                version: h.version(),
                errors: h.errors(),
            }
        }),
        breaker: state.metrics.breaker_state(),
        upstream_retries: state.metrics.upstream_retries(),
        upstream,
        requests,
        pinned_walks: state.metrics.pinned_walks(),
        held_back: held.map(|h| HeldBackView {
            users: h.users,
            groups: h.groups,
            high_water_users: h.high_water_users,
            high_water_groups: h.high_water_groups,
            since: h.at,
            reason: h.reason.clone(),
        }),
    };
    Html(super::status::render(&view)).into_response()
}

/// The feed's card on `/status`; `None` with `insights.enabled = "off"`.
fn feed_view(state: &AppState, now: Timestamp) -> Option<super::status::FeedView> {
    if state.feed.mode == FeedMode::Off {
        return None;
    }
    let r = state.feed.report();
    let follows = follows(state);
    Some(super::status::FeedView {
        mode: state.feed.mode.as_str(),
        state: if follows {
            FOLLOWER_FEED.1.to_owned()
        } else {
            r.state.in_words()
        },
        healthy: follows
            || matches!(r.state, FeedState::InUse | FeedState::Starting)
            || (r.state == FeedState::NotInPlan && state.feed.mode == FeedMode::Auto),
        poll_s: state.feed.poll.as_secs(),
        last_read: r.last_ok,
        failures: r.failures,
        events: r.events,
        versions: r.versions,
        lag_s: (r.events > 0).then(|| state.metrics.insights_lag_seconds(now)),
    })
}

/// Refresh now (needs a provision credential).
async fn admin_refresh(State(state): State<AppState>, req: Request) -> Response {
    if let Some(refused) = needs_provision(&req, "/admin/refresh") {
        return refused;
    }
    state.refresh_now.notify_one();
    json_body(StatusCode::ACCEPTED, json!({"refresh": "started"}))
}

/// 403 unless the credential may provision.
fn needs_provision(req: &Request, what: &str) -> Option<Response> {
    let allowed = req
        .extensions()
        .get::<Principal>()
        .is_some_and(Principal::can_write);
    (!allowed).then(|| {
        ScimError::new(
            403,
            None,
            format!("this credential may only read; {what} needs a provision credential"),
        )
        .into_response()
    })
}

/// Publish the refresh the shrink guard held back.
async fn admin_accept_shrink(State(state): State<AppState>, req: Request) -> Response {
    if let Some(refused) = needs_provision(&req, "/admin/accept-shrink") {
        return refused;
    }
    // With replicas, the held-back refresh is the leader's, and it is shared like any refresh (fenced).
    let accepted = match &state.replicas {
        None => state.store.accept_shrink().await,
        Some(r) => match r
            .shared
            .publish(Fence::Leader, || state.store.accept_shrink())
            .await
        {
            Ok(accepted) => accepted,
            Err(e) => {
                return json_body(
                    StatusCode::CONFLICT,
                    json!({"error": format!(
                        "{e}: a held-back refresh is accepted on the replica leading the refresher \
                         (its /readyz says \"role\": \"leader\")"
                    )}),
                );
            }
        },
    };
    match accepted {
        Some(snap) => {
            state.metrics.set_refresh_held_back(false);
            tracing::warn!(
                version = snap.version,
                users = snap.user_count(),
                groups = snap.group_count(),
                "an operator published a held-back refresh"
            );
            json_body(
                StatusCode::OK,
                json!({"published": {"version": snap.version, "users": snap.user_count(), "groups": snap.group_count()}}),
            )
        }
        None => json_body(
            StatusCode::CONFLICT,
            json!({"error": "no refresh is held back"}),
        ),
    }
}
