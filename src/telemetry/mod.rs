//! Telemetry: the metrics registry behind `/metrics` and the middleware that counts, times and logs each
//! HTTP request.
//!
//! Owns every metric family the service exposes and their names and help texts, kept in a
//! `prometheus-client` registry (the Prometheus project's own Rust client; a registry per process rather than
//! a global recorder, so tests that run several services in one process keep their figures apart) and
//! rendered in the OpenMetrics text format. Every family is in the output from start-up, before its first event, so
//! dashboards and alerts never see a family appear from nowhere. Route labels are templates (axum's matched
//! path, the client's upstream route template), never raw paths, so ids cannot multiply the series.
//!
//! It must not know JumpCloud's wire format, SCIM, or how the refresher, the breaker or the pinning cache
//! work: they report events as plain numbers and route templates through [`Metrics`]' methods. It never sees
//! a header value or a body, so no credential can reach a label or a log line from here.

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tracing::Instrument;

use axum::extract::{MatchedPath, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;
use jiff::Timestamp;
use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::{EncodeMetric, MetricEncoder};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::cache::{Store, age_seconds};

pub mod history;
pub mod logging;

use history::LastHour;

/// Upper bounds (seconds) for HTTP request latency: SCIM reads answer in milliseconds, the deadline is 55 s.
const HTTP_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];
/// Upper bounds (seconds) for one upstream call, retries not included.
const UPSTREAM_BUCKETS: &[f64] = &[0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];
/// Upper bounds (seconds) for a whole refresh: tens of calls, more under retries and backoff.
const REFRESH_BUCKETS: &[f64] = &[
    0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
];

/// The `type` labels of `jcscim_insights_events_total`: the event types the feed's reader acts on (facts
/// sheet §5.4), and `other` for the rest. Every one is present from start-up.
pub const INSIGHTS_EVENT_TYPES: &[&str] = &[
    "user_create",
    "user_update",
    "user_delete",
    "user_activated",
    "user_suspended",
    "user_unsuspended",
    "user_password_set",
    "user_password_expired",
    "user_lockout",
    "user_unlocked",
    "group_create",
    "group_update",
    "group_delete",
    "association_change",
    "directory",
    "other",
];

/// How a refresh ended, as `jcscim_refresh_total{outcome}` counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefreshOutcome {
    /// A snapshot was published.
    Ok,
    /// JumpCloud could not be read; the last good snapshot stays.
    Failed,
    /// Read, but not published because it shrank too much; waits for an operator.
    HeldBack,
}

impl RefreshOutcome {
    const ALL: [RefreshOutcome; 3] = [Self::Ok, Self::Failed, Self::HeldBack];

    fn label(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Failed => "failed",
            Self::HeldBack => "held_back",
        }
    }
}

/// Every metric the service exposes, in a `prometheus-client` registry rendered at `/metrics`. Cheap to share
/// as `Arc<Metrics>`; every method takes `&self` (the crate's metrics are atomics, its families behind
/// short read-write locks, never held across an `.await`).
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    snapshot_version: Gauge,
    snapshot_age: Gauge,
    refresh_total: Family<Labels, Counter>,
    refresh_duration: Histogram,
    refresh_held_back: Gauge,
    upstream_requests: Family<Labels, Counter>,
    upstream_duration: Histogram,
    upstream_retries: Counter,
    breaker_state: Gauge,
    http_requests: Family<Labels, Counter>,
    http_duration: Family<Labels, Histogram, fn() -> Histogram>,
    /// The families' handles by route template, then method, so that counting a request allocates nothing
    /// (not even its route label) once its route and status have been seen (a handle shares its series with
    /// the family).
    http_handles: std::sync::RwLock<HandlesByRoute>,
    pinned_walks: Gauge,
    insights_events: Family<Labels, Counter>,
    insights_lag: Gauge,
    /// When the newest event the feed applied happened (ms since the epoch; `i64::MIN`: none yet), so the
    /// lag gauge is read at scrape time.
    insights_newest_ms: std::sync::atomic::AtomicI64,
    resident_memory: Gauge,
    /// `jcscim_store_*`: the shared store (Redis, for replicas), read from its health at scrape time.
    store: StoreMetrics,
    /// Upstream answers and requests served, by class, minute by minute for the last hour (`/status`).
    upstream_minutes: Mutex<LastHour>,
    http_minutes: Mutex<LastHour>,
    /// When this process started.
    pub started: Timestamp,
}

/// `jcscim_store_*`.
#[derive(Debug, Default)]
struct StoreMetrics {
    up: Gauge,
    leader: Gauge,
    version: Gauge,
    errors: Counter,
    fenced: Counter,
    deltas: Counter,
    wholes: Counter,
}

impl StoreMetrics {
    fn register(registry: &mut Registry) -> StoreMetrics {
        let m = StoreMetrics {
            // The embedded store is always up.
            up: {
                let g = Gauge::default();
                g.set(1);
                g
            },
            ..StoreMetrics::default()
        };
        registry.register(
            "jcscim_store_up",
            "1 while the snapshot store answers (always 1 for store.kind = local; Redis's reachability for replicas)",
            m.up.clone(),
        );
        registry.register(
            "jcscim_store_leader",
            "1 while this replica holds the refresher's lease (always 0 for store.kind = local)",
            m.leader.clone(),
        );
        registry.register(
            "jcscim_store_version",
            "The newest shared snapshot version this replica has loaded or published (0 for store.kind = local)",
            m.version.clone(),
        );
        registry.register(
            "jcscim_store_errors",
            "Calls to the shared store (Redis) that failed or timed out",
            m.errors.clone(),
        );
        registry.register(
            "jcscim_store_fenced",
            "Versions this replica published that Redis refused because its lease token was stale",
            m.fenced.clone(),
        );
        registry.register(
            "jcscim_store_shared_deltas",
            "Versions this replica published and shared as a delta on the one before (a write's or a feed batch's change)",
            m.deltas.clone(),
        );
        registry.register(
            "jcscim_store_shared_wholes",
            "Versions this replica published and shared whole (a refresh's, or every so often a write's)",
            m.wholes.clone(),
        );
        m
    }
}

/// A sample's labels, in the order they are written.
type Labels = Vec<(&'static str, String)>;

/// Route template → method → that route's handles.
type HandlesByRoute = std::collections::HashMap<String, Vec<(Box<str>, RouteHandles)>>;

/// One route's duration histogram and its request counters by status.
#[derive(Clone, Debug)]
struct RouteHandles {
    duration: Histogram,
    by_status: Vec<(u16, Counter)>,
}

/// A family whose HELP and TYPE are written even before its first sample, so dashboards and alerts never see
/// a family appear from nowhere.
#[derive(Debug, Clone)]
struct Always<M>(M);

impl<M: EncodeMetric> EncodeMetric for Always<M> {
    fn encode(&self, encoder: MetricEncoder) -> Result<(), fmt::Error> {
        self.0.encode(encoder)
    }
    fn metric_type(&self) -> MetricType {
        self.0.metric_type()
    }
    fn is_empty(&self) -> bool {
        false
    }
}

fn http_histogram() -> Histogram {
    Histogram::new(HTTP_BUCKETS.iter().copied())
}

// === impl Metrics ===

impl Metrics {
    /// A registry with every family present and every counter at zero.
    #[allow(
        clippy::too_many_lines,
        reason = "a table: one registration per metric family"
    )]
    pub fn new() -> Arc<Metrics> {
        let mut registry = Registry::default();
        let snapshot_version = Gauge::default();
        registry.register(
            "jcscim_snapshot_version",
            "Version of the published snapshot (grows with every refresh and write; 0 before the first)",
            snapshot_version.clone(),
        );
        let snapshot_age = Gauge::default();
        registry.register(
            "jcscim_snapshot_age_seconds",
            "Seconds since the published snapshot was known to match JumpCloud: read by a refresh, or found current \
             by a poll of the Directory Insights feed (0 before the first)",
            snapshot_age.clone(),
        );
        let refresh_total = Family::<Labels, Counter>::default();
        for outcome in RefreshOutcome::ALL {
            let _ = refresh_total.get_or_create(&vec![("outcome", outcome.label().to_owned())]);
        }
        registry.register(
            "jcscim_refresh",
            "Refreshes finished, by outcome: ok (published), failed, held_back (shrank too much)",
            refresh_total.clone(),
        );
        let refresh_duration = Histogram::new(REFRESH_BUCKETS.iter().copied());
        registry.register(
            "jcscim_refresh_duration_seconds",
            "Time one refresh took, retries and backoff included",
            refresh_duration.clone(),
        );
        let refresh_held_back = Gauge::default();
        registry.register(
            "jcscim_refresh_held_back",
            "1 while a refresh waits for an operator to accept its shrink, else 0",
            refresh_held_back.clone(),
        );
        let upstream_requests = Family::<Labels, Counter>::default();
        registry.register(
            "jcscim_upstream_requests",
            "Requests sent to JumpCloud, by purpose (refresh, insights, fetch, write), route template and HTTP \
             status (none: no answer)",
            Always(upstream_requests.clone()),
        );
        let upstream_duration = Histogram::new(UPSTREAM_BUCKETS.iter().copied());
        registry.register(
            "jcscim_upstream_request_duration_seconds",
            "Time one request to JumpCloud took, until its answer was read",
            upstream_duration.clone(),
        );
        let upstream_retries = Counter::default();
        registry.register(
            "jcscim_upstream_retries",
            "Requests to JumpCloud that repeated an earlier attempt",
            upstream_retries.clone(),
        );
        let breaker_state = Gauge::default();
        registry.register(
            "jcscim_breaker_state",
            "Circuit breaker in front of JumpCloud: 0 closed (calls flow), 1 half-open (one probe), 2 open (failing fast)",
            breaker_state.clone(),
        );
        let http_requests = Family::<Labels, Counter>::default();
        registry.register(
            "jcscim_http_requests",
            "HTTP requests answered, by route (method and template) and status",
            Always(http_requests.clone()),
        );
        let http_duration: Family<Labels, Histogram, fn() -> Histogram> =
            Family::new_with_constructor(http_histogram);
        registry.register(
            "jcscim_http_request_duration_seconds",
            "Time to answer an HTTP request (until the response head), by route",
            Always(http_duration.clone()),
        );
        let pinned_walks = Gauge::default();
        registry.register(
            "jcscim_pinned_walks",
            "Paged walks currently holding a pinned snapshot",
            pinned_walks.clone(),
        );
        let insights_events = Family::<Labels, Counter>::default();
        for t in INSIGHTS_EVENT_TYPES {
            let _ = insights_events.get_or_create(&vec![("type", (*t).to_owned())]);
        }
        registry.register(
            "jcscim_insights_events",
            "Directory Insights events applied to the snapshot, by event type (other: a type the service \
             does not act on)",
            insights_events.clone(),
        );
        let insights_lag = Gauge::default();
        registry.register(
            "jcscim_insights_lag_seconds",
            "Seconds since the newest Directory Insights event applied happened (0 before the first)",
            insights_lag.clone(),
        );
        let build_info = Family::<Labels, Gauge>::default();
        build_info
            .get_or_create(&vec![("version", env!("CARGO_PKG_VERSION").to_owned())])
            .set(1);
        registry.register(
            "jcscim_build_info",
            "1, labelled with the version of this build",
            build_info,
        );
        let resident_memory = Gauge::default();
        registry.register(
            "process_resident_memory_bytes",
            "Resident memory of this process (from /proc/self/status; 0 where that cannot be read)",
            resident_memory.clone(),
        );
        let store = StoreMetrics::register(&mut registry);
        Arc::new(Metrics {
            store,
            registry,
            snapshot_version,
            snapshot_age,
            refresh_total,
            refresh_duration,
            refresh_held_back,
            upstream_requests,
            upstream_duration,
            upstream_retries,
            breaker_state,
            http_requests,
            http_duration,
            http_handles: std::sync::RwLock::default(),
            pinned_walks,
            insights_events,
            insights_lag,
            insights_newest_ms: std::sync::atomic::AtomicI64::new(i64::MIN),
            resident_memory,
            upstream_minutes: Mutex::new(LastHour::default()),
            http_minutes: Mutex::new(LastHour::default()),
            started: Timestamp::now(),
        })
    }

    /// Upstream answers and requests served in each of the last sixty minutes, by class, oldest first.
    pub fn last_hour(&self, now: Timestamp) -> (Vec<[u64; 5]>, Vec<[u64; 5]>) {
        let minute = now.as_second().div_euclid(60);
        (
            lock(&self.upstream_minutes).series(minute),
            lock(&self.http_minutes).series(minute),
        )
    }

    /// The shared store's state, as its owner reports it at scrape time: whether it answers, whether this
    /// replica leads, and the totals of errors and fenced publications so far.
    pub fn set_store(&self, up: bool, leader: bool, version: u64, (errors, fenced): (u64, u64)) {
        let m = &self.store;
        m.up.set(i64::from(up));
        m.leader.set(i64::from(leader));
        m.version.set(i64::try_from(version).unwrap_or(i64::MAX));
        m.errors.inc_by(errors.saturating_sub(m.errors.get()));
        m.fenced.inc_by(fenced.saturating_sub(m.fenced.get()));
    }

    /// The totals of versions this replica shared as deltas and whole so far.
    pub fn set_store_shared(&self, deltas: u64, wholes: u64) {
        let m = &self.store;
        m.deltas.inc_by(deltas.saturating_sub(m.deltas.get()));
        m.wholes.inc_by(wholes.saturating_sub(m.wholes.get()));
    }

    /// Requests to JumpCloud that repeated an earlier attempt, so far.
    pub fn upstream_retries(&self) -> u64 {
        self.upstream_retries.get()
    }

    /// The circuit breaker's state as last reported (0 closed, 1 half-open, 2 open).
    pub fn breaker_state(&self) -> u8 {
        u8::try_from(self.breaker_state.get()).unwrap_or(0)
    }

    /// Walks holding a pinned snapshot, as last reported.
    pub fn pinned_walks(&self) -> u64 {
        u64::try_from(self.pinned_walks.get()).unwrap_or(0)
    }

    /// One answered HTTP request. `route` is the route label (method and template, see [`route_label`]).
    pub fn observe_http(&self, route: &str, status: u16, elapsed: Duration) {
        let (method, template) = route.split_once(' ').unwrap_or(("OTHER", route));
        self.observe_route(method, template, status, elapsed);
    }

    /// [`Self::observe_http`] with the label's two halves apart, as a request has them: no label is built
    /// once the route and status have been seen.
    fn observe_route(&self, method: &str, template: &str, status: u16, elapsed: Duration) {
        // Counted under the read guard: the handles are not cloned (two shared counts fewer per request).
        let counted = self.http_handles.read().ok().is_some_and(|h| {
            let Some((_, r)) = h
                .get(template)
                .and_then(|by_method| by_method.iter().find(|(m, _)| **m == *method))
            else {
                return false;
            };
            let Some((_, counter)) = r.by_status.iter().find(|(s, _)| *s == status) else {
                return false;
            };
            counter.inc();
            r.duration.observe(elapsed.as_secs_f64());
            true
        });
        if !counted {
            let (duration, counter) = self.http_handles_for(method, template, status);
            counter.inc();
            duration.observe(elapsed.as_secs_f64());
        }
        lock(&self.http_minutes).add(current_minute(), status);
    }

    /// The handles of a route and status seen for the first time, kept for the next request.
    fn http_handles_for(&self, method: &str, template: &str, status: u16) -> (Histogram, Counter) {
        let route = format!("{method} {template}");
        let counter = self
            .http_requests
            .get_or_create(&vec![
                ("route", route.clone()),
                ("status", status.to_string()),
            ])
            .clone();
        let duration = self
            .http_duration
            .get_or_create(&vec![("route", route)])
            .clone();
        if let Ok(mut handles) = self.http_handles.write() {
            let by_method = handles.entry(template.to_owned()).or_default();
            let i = match by_method.iter().position(|(m, _)| **m == *method) {
                Some(i) => i,
                None => {
                    by_method.push((
                        method.into(),
                        RouteHandles {
                            duration: duration.clone(),
                            by_status: Vec::new(),
                        },
                    ));
                    by_method.len() - 1
                }
            };
            let r = &mut by_method[i].1;
            if !r.by_status.iter().any(|(s, _)| *s == status) {
                r.by_status.push((status, counter.clone()));
            }
        }
        (duration, counter)
    }

    /// One request sent to JumpCloud: `purpose` what it was for (`refresh`, `insights`, `fetch`, `write`),
    /// `route` its template with the method (`GET /api/v2/usergroups/{id}/members`), `status` the HTTP status
    /// or 0 when no answer came.
    pub fn observe_upstream(
        &self,
        purpose: &'static str,
        route: &str,
        status: u16,
        elapsed: Duration,
    ) {
        self.upstream_requests
            .get_or_create(&vec![
                ("purpose", purpose.to_owned()),
                ("route", route.to_owned()),
                ("status", status_label(status)),
            ])
            .inc();
        self.upstream_duration.observe(elapsed.as_secs_f64());
        lock(&self.upstream_minutes).add(current_minute(), status);
    }

    /// `n` Directory Insights events of `event_type` applied. The type is one of [`INSIGHTS_EVENT_TYPES`]
    /// (the caller folds any other into `other`), so no upstream text can add a series.
    pub fn add_insights_events(&self, event_type: &'static str, n: u64) {
        let label = if INSIGHTS_EVENT_TYPES.contains(&event_type) {
            event_type
        } else {
            "other"
        };
        self.insights_events
            .get_or_create(&vec![("type", label.to_owned())])
            .inc_by(n);
    }

    /// Directory Insights events applied so far, all types together.
    pub fn insights_events(&self) -> u64 {
        INSIGHTS_EVENT_TYPES
            .iter()
            .map(|t| {
                self.insights_events
                    .get_or_create(&vec![("type", (*t).to_owned())])
                    .get()
            })
            .sum()
    }

    /// When the newest Directory Insights event applied happened.
    pub fn set_insights_newest(&self, at: Timestamp) {
        self.insights_newest_ms
            .fetch_max(at.as_millisecond(), std::sync::atomic::Ordering::Relaxed);
    }

    /// The feed's lag at `now`: seconds since the newest event applied happened (0 before the first).
    pub fn insights_lag_seconds(&self, now: Timestamp) -> u64 {
        let newest = self
            .insights_newest_ms
            .load(std::sync::atomic::Ordering::Relaxed);
        if newest == i64::MIN {
            return 0;
        }
        u64::try_from(now.as_millisecond().saturating_sub(newest).max(0) / 1000).unwrap_or(0)
    }

    /// Requests to JumpCloud that were repeats of an earlier attempt.
    pub fn add_upstream_retries(&self, n: u64) {
        self.upstream_retries.inc_by(n);
    }

    /// One finished refresh and how long it took.
    pub fn observe_refresh(&self, outcome: RefreshOutcome, elapsed: Duration) {
        self.refresh_total
            .get_or_create(&vec![("outcome", outcome.label().to_owned())])
            .inc();
        self.refresh_duration.observe(elapsed.as_secs_f64());
    }

    /// Whether a refresh is waiting for an operator to accept its shrink.
    pub fn set_refresh_held_back(&self, held: bool) {
        self.refresh_held_back.set(i64::from(held));
    }

    /// The circuit breaker's state: 0 closed (calls flow), 1 half-open (one probe), 2 open (failing fast).
    pub fn set_breaker_state(&self, state: u8) {
        self.breaker_state.set(i64::from(state));
    }

    /// How many paged walks currently hold a pinned snapshot.
    pub fn set_pinned_walks(&self, n: u64) {
        self.pinned_walks.set(i64::try_from(n).unwrap_or(i64::MAX));
    }

    /// The whole exposition in the OpenMetrics text format; snapshot version and age are read from `store`
    /// now (0 and 0 before the first snapshot), and so is this process's resident memory.
    pub fn render(&self, store: &Store) -> String {
        let (version, age) = match store.load() {
            Some(s) => (
                s.version,
                age_seconds(store.fresh_as_of(&s), Timestamp::now()),
            ),
            None => (0, 0),
        };
        self.snapshot_version
            .set(i64::try_from(version).unwrap_or(i64::MAX));
        self.snapshot_age
            .set(i64::try_from(age).unwrap_or(i64::MAX));
        self.insights_lag
            .set(i64::try_from(self.insights_lag_seconds(Timestamp::now())).unwrap_or(i64::MAX));
        self.resident_memory
            .set(i64::try_from(resident_memory_bytes().unwrap_or(0)).unwrap_or(i64::MAX));
        let mut out = String::with_capacity(8 * 1024);
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}

/// The media type of [`Metrics::render`].
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// This process's resident set size, from `/proc/self/status` (Linux).
pub fn resident_memory_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kb * 1024)
}

fn current_minute() -> i64 {
    Timestamp::now().as_second().div_euclid(60)
}

/// A poisoned lock only means a panic elsewhere mid-add; the counts are still worth serving.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn status_label(status: u16) -> String {
    if status == 0 {
        "none".to_string()
    } else {
        status.to_string()
    }
}

/// The HTTP route label: the method, a space and axum's matched route template
/// (`GET /scim/v2/Users/{id}`), or `METHOD unmatched` when no route matched. Methods outside the standard
/// set become `OTHER`, so neither a made-up method nor a made-up path can add a series.
pub fn route_label(method: &Method, matched: Option<&str>) -> String {
    format!("{} {}", method_label(method), route_template(matched))
}

/// The template half of [`route_label`].
fn route_template(matched: Option<&str>) -> &str {
    match matched {
        // A nested router's fallback carries axum's private catch-all parameter: no route matched.
        Some(t) if !t.contains("{*__private__") => t,
        _ => "unmatched",
    }
}

fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        _ => "OTHER",
    }
}

/// Middleware: count and time every request by route template and status, and log one line at info when
/// it is answered (method, route template, status, latency; never a header value or a body). Sits inside
/// the trace span, so the line carries the request id, and outside the deadline, so timeouts are counted.
pub async fn track(State(metrics): State<Arc<Metrics>>, req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let matched = req.extensions().get::<MatchedPath>().cloned();
    let id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-")
        .to_owned();
    tracked(
        &metrics,
        &method,
        matched.as_ref().map(MatchedPath::as_str),
        &id,
        next.run(req),
    )
    .await
}

/// What [`track`] does around `answer`, the answer to a request of `method` whose route template is
/// `matched` and whose id is `id`: for a layer that has those at hand already (the service's front layer).
pub async fn tracked(
    metrics: &Metrics,
    method: &Method,
    matched: Option<&str>,
    id: &str,
    answer: impl Future<Output = Response>,
) -> Response {
    let started = tokio::time::Instant::now();
    let method = method_label(method);
    let template = route_template(matched);
    // Every line logged while the request runs carries its id.
    let span = tracing::info_span!("request", id = %id);
    let resp = answer.instrument(span).await;
    let elapsed = started.elapsed();
    let status = resp.status().as_u16();
    metrics.observe_route(method, template, status, elapsed);
    // The one line per request.
    tracing::info!(
        id,
        method,
        route = template,
        status,
        // Microsecond resolution: most answers come from memory in well under a millisecond.
        latency_ms = elapsed.as_micros() as f64 / 1000.0,
        "request answered"
    );
    resp
}

#[cfg(test)]
mod tests;
