//! Telemetry: the metrics registry behind `/metrics` and the middleware that counts, times and logs each
//! HTTP request.
//!
//! Owns every metric family the service exposes, their names and help texts, and their rendering in the
//! Prometheus text format 0.0.4. Every family is in the output from start-up, before its first event, so
//! dashboards and alerts never see a family appear from nowhere. Route labels are templates (axum's matched
//! path, the client's upstream route template), never raw paths, so ids cannot multiply the series.
//!
//! It must not know JumpCloud's wire format, SCIM, or how the refresher, the breaker or the pinning cache
//! work: they report events as plain numbers and route templates through [`Metrics`]' methods. It never sees
//! a header value or a body, so no credential can reach a label or a log line from here.

use std::collections::{BTreeMap, HashMap};
use std::fmt::{self, Write as _};
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tracing::Instrument;

use axum::extract::{MatchedPath, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;
use jiff::Timestamp;

use crate::cache::{Store, age_seconds};

pub mod history;

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

    fn index(self) -> usize {
        self as usize
    }
}

/// Every metric the service exposes. Cheap to share as `Arc<Metrics>`; every method takes `&self`.
///
/// Scalars are atomics. Labelled families and histograms sit behind `std::sync::Mutex`es held only for a
/// map lookup and an add, or by a scrape for a copy, never across an `.await`: neither a request nor a
/// scrape waits on the other for long.
#[derive(Debug)]
pub struct Metrics {
    refresh_total: [AtomicU64; 3],
    refresh_duration: Mutex<Histogram>,
    refresh_held_back: AtomicU8,
    /// Route template → status (0 = no answer) → count.
    upstream_requests: Mutex<HashMap<String, BTreeMap<u16, u64>>>,
    upstream_duration: Mutex<Histogram>,
    upstream_retries: AtomicU64,
    breaker_state: AtomicU8,
    /// Route label → counts by status and latency.
    http: Mutex<HashMap<String, HttpRoute>>,
    pinned_walks: AtomicU64,
    /// Upstream answers and requests served, by class, minute by minute for the last hour (`/status`).
    upstream_minutes: Mutex<LastHour>,
    http_minutes: Mutex<LastHour>,
    /// When this process started.
    pub started: Timestamp,
}

#[derive(Debug, Clone)]
struct HttpRoute {
    statuses: BTreeMap<u16, u64>,
    duration: Histogram,
}

/// A fixed-bucket histogram; `counts[i]` holds observations in bucket `i` alone (the last one is `+Inf`),
/// made cumulative when rendered.
#[derive(Debug, Clone)]
struct Histogram {
    bounds: &'static [f64],
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

// === impl Histogram ===

impl Histogram {
    fn new(bounds: &'static [f64]) -> Self {
        Self {
            bounds,
            counts: vec![0; bounds.len() + 1],
            sum: 0.0,
            count: 0,
        }
    }

    fn observe(&mut self, elapsed: Duration) {
        let v = elapsed.as_secs_f64();
        let i = self
            .bounds
            .iter()
            .position(|b| v <= *b)
            .unwrap_or(self.bounds.len());
        self.counts[i] += 1;
        self.sum += v;
        self.count += 1;
    }

    fn render(&self, out: &mut String, name: &str, labels: &[(&str, &str)]) {
        let mut cumulative = 0;
        for (i, n) in self.counts.iter().enumerate() {
            cumulative += n;
            let le = match self.bounds.get(i) {
                Some(b) => b.to_string(),
                None => "+Inf".to_string(),
            };
            let mut with_le = labels.to_vec();
            with_le.push(("le", &le));
            sample(out, &format!("{name}_bucket"), &with_le, cumulative);
        }
        sample(out, &format!("{name}_sum"), labels, self.sum);
        sample(out, &format!("{name}_count"), labels, self.count);
    }
}

// === impl Metrics ===

impl Metrics {
    /// A registry with every family present and every counter at zero.
    pub fn new() -> Arc<Metrics> {
        Arc::new(Metrics {
            refresh_total: Default::default(),
            refresh_duration: Mutex::new(Histogram::new(REFRESH_BUCKETS)),
            refresh_held_back: AtomicU8::new(0),
            upstream_requests: Mutex::new(HashMap::new()),
            upstream_duration: Mutex::new(Histogram::new(UPSTREAM_BUCKETS)),
            upstream_retries: AtomicU64::new(0),
            breaker_state: AtomicU8::new(0),
            http: Mutex::new(HashMap::new()),
            pinned_walks: AtomicU64::new(0),
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

    /// Requests to JumpCloud that repeated an earlier attempt, so far.
    pub fn upstream_retries(&self) -> u64 {
        self.upstream_retries.load(Ordering::Relaxed)
    }

    /// The circuit breaker's state as last reported (0 closed, 1 half-open, 2 open).
    pub fn breaker_state(&self) -> u8 {
        self.breaker_state.load(Ordering::Relaxed)
    }

    /// Walks holding a pinned snapshot, as last reported.
    pub fn pinned_walks(&self) -> u64 {
        self.pinned_walks.load(Ordering::Relaxed)
    }

    /// One answered HTTP request. `route` is the route label (method and template, see [`route_label`]).
    pub fn observe_http(&self, route: &str, status: u16, elapsed: Duration) {
        let mut http = lock(&self.http);
        let entry = match http.get_mut(route) {
            Some(e) => e,
            None => http.entry(route.to_string()).or_insert_with(|| HttpRoute {
                statuses: BTreeMap::new(),
                duration: Histogram::new(HTTP_BUCKETS),
            }),
        };
        *entry.statuses.entry(status).or_default() += 1;
        entry.duration.observe(elapsed);
        drop(http);
        lock(&self.http_minutes).add(current_minute(), status);
    }

    /// One request sent to JumpCloud: `route` is its template with the method
    /// (`GET /api/v2/usergroups/{id}/members`), `status` the HTTP status or 0 when no answer came.
    pub fn observe_upstream(&self, route: &str, status: u16, elapsed: Duration) {
        {
            let mut upstream = lock(&self.upstream_requests);
            let statuses = match upstream.get_mut(route) {
                Some(s) => s,
                None => upstream.entry(route.to_string()).or_default(),
            };
            *statuses.entry(status).or_default() += 1;
        }
        lock(&self.upstream_duration).observe(elapsed);
        lock(&self.upstream_minutes).add(current_minute(), status);
    }

    /// Requests to JumpCloud that were repeats of an earlier attempt.
    pub fn add_upstream_retries(&self, n: u64) {
        self.upstream_retries.fetch_add(n, Ordering::Relaxed);
    }

    /// One finished refresh and how long it took.
    pub fn observe_refresh(&self, outcome: RefreshOutcome, elapsed: Duration) {
        self.refresh_total[outcome.index()].fetch_add(1, Ordering::Relaxed);
        lock(&self.refresh_duration).observe(elapsed);
    }

    /// Whether a refresh is waiting for an operator to accept its shrink.
    pub fn set_refresh_held_back(&self, held: bool) {
        self.refresh_held_back
            .store(u8::from(held), Ordering::Relaxed);
    }

    /// The circuit breaker's state: 0 closed (calls flow), 1 half-open (one probe), 2 open (failing fast).
    pub fn set_breaker_state(&self, state: u8) {
        self.breaker_state.store(state, Ordering::Relaxed);
    }

    /// How many paged walks currently hold a pinned snapshot.
    pub fn set_pinned_walks(&self, n: u64) {
        self.pinned_walks.store(n, Ordering::Relaxed);
    }

    /// The whole exposition in Prometheus text format 0.0.4; snapshot version and age are read from `store`
    /// now (0 and 0 before the first snapshot).
    pub fn render(&self, store: &Store) -> String {
        let mut out = String::with_capacity(8 * 1024);
        let (version, age) = match store.load() {
            Some(s) => (s.version, age_seconds(s.taken_at, Timestamp::now())),
            None => (0, 0),
        };

        family(
            &mut out,
            "jcscim_snapshot_version",
            "Version of the published snapshot (grows with every refresh and write; 0 before the first).",
            "gauge",
        );
        sample(&mut out, "jcscim_snapshot_version", &[], version);
        family(
            &mut out,
            "jcscim_snapshot_age_seconds",
            "Seconds since the published snapshot was read from JumpCloud (0 before the first).",
            "gauge",
        );
        sample(&mut out, "jcscim_snapshot_age_seconds", &[], age);

        family(
            &mut out,
            "jcscim_refresh_total",
            "Refreshes finished, by outcome: ok (published), failed, held_back (shrank too much).",
            "counter",
        );
        for outcome in RefreshOutcome::ALL {
            let n = self.refresh_total[outcome.index()].load(Ordering::Relaxed);
            sample(
                &mut out,
                "jcscim_refresh_total",
                &[("outcome", outcome.label())],
                n,
            );
        }
        family(
            &mut out,
            "jcscim_refresh_duration_seconds",
            "Time one refresh took, retries and backoff included.",
            "histogram",
        );
        let refresh_duration = lock(&self.refresh_duration).clone();
        refresh_duration.render(&mut out, "jcscim_refresh_duration_seconds", &[]);
        family(
            &mut out,
            "jcscim_refresh_held_back",
            "1 while a refresh waits for an operator to accept its shrink, else 0.",
            "gauge",
        );
        sample(
            &mut out,
            "jcscim_refresh_held_back",
            &[],
            self.refresh_held_back.load(Ordering::Relaxed),
        );

        family(
            &mut out,
            "jcscim_upstream_requests_total",
            "Requests sent to JumpCloud, by route template and HTTP status (none: no answer).",
            "counter",
        );
        let upstream: BTreeMap<String, BTreeMap<u16, u64>> = copy_sorted(&self.upstream_requests);
        for (route, statuses) in &upstream {
            for (status, n) in statuses {
                sample(
                    &mut out,
                    "jcscim_upstream_requests_total",
                    &[("route", route), ("status", &status_label(*status))],
                    n,
                );
            }
        }
        family(
            &mut out,
            "jcscim_upstream_request_duration_seconds",
            "Time one request to JumpCloud took, until its answer was read.",
            "histogram",
        );
        let upstream_duration = lock(&self.upstream_duration).clone();
        upstream_duration.render(&mut out, "jcscim_upstream_request_duration_seconds", &[]);
        family(
            &mut out,
            "jcscim_upstream_retries_total",
            "Requests to JumpCloud that repeated an earlier attempt.",
            "counter",
        );
        sample(
            &mut out,
            "jcscim_upstream_retries_total",
            &[],
            self.upstream_retries.load(Ordering::Relaxed),
        );
        family(
            &mut out,
            "jcscim_breaker_state",
            "Circuit breaker in front of JumpCloud: 0 closed (calls flow), 1 half-open (one probe), 2 open (failing fast).",
            "gauge",
        );
        sample(
            &mut out,
            "jcscim_breaker_state",
            &[],
            self.breaker_state.load(Ordering::Relaxed),
        );

        {
            let routes: BTreeMap<String, HttpRoute> = copy_sorted(&self.http);
            family(
                &mut out,
                "jcscim_http_requests_total",
                "HTTP requests answered, by route (method and template) and status.",
                "counter",
            );
            for (route, r) in &routes {
                for (status, n) in &r.statuses {
                    sample(
                        &mut out,
                        "jcscim_http_requests_total",
                        &[("route", route), ("status", &status.to_string())],
                        n,
                    );
                }
            }
            family(
                &mut out,
                "jcscim_http_request_duration_seconds",
                "Time to answer an HTTP request (until the response head), by route.",
                "histogram",
            );
            for (route, r) in &routes {
                r.duration.render(
                    &mut out,
                    "jcscim_http_request_duration_seconds",
                    &[("route", route)],
                );
            }
        }

        family(
            &mut out,
            "jcscim_pinned_walks",
            "Paged walks currently holding a pinned snapshot.",
            "gauge",
        );
        sample(
            &mut out,
            "jcscim_pinned_walks",
            &[],
            self.pinned_walks.load(Ordering::Relaxed),
        );
        out
    }
}

fn current_minute() -> i64 {
    Timestamp::now().as_second().div_euclid(60)
}

/// A sorted copy of a labelled family, so rendering never holds the lock requests add under.
fn copy_sorted<V: Clone>(m: &Mutex<HashMap<String, V>>) -> BTreeMap<String, V> {
    lock(m)
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
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

fn family(out: &mut String, name: &str, help: &str, kind: &str) {
    let help = help.replace('\\', "\\\\").replace('\n', "\\n");
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn sample(out: &mut String, name: &str, labels: &[(&str, &str)], value: impl fmt::Display) {
    out.push_str(name);
    if !labels.is_empty() {
        out.push('{');
        for (i, (k, v)) in labels.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(k);
            out.push_str("=\"");
            escape_label_value(out, v);
            out.push('"');
        }
        out.push('}');
    }
    let _ = writeln!(out, " {value}");
}

/// Label values escape backslash, double quote and line feed (the text format's only escapes).
fn escape_label_value(out: &mut String, v: &str) {
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// The HTTP route label: the method, a space and axum's matched route template
/// (`GET /scim/v2/Users/{id}`), or `METHOD unmatched` when no route matched. Methods outside the standard
/// set become `OTHER`, so neither a made-up method nor a made-up path can add a series.
pub fn route_label(method: &Method, matched: Option<&str>) -> String {
    let template = match matched {
        // A nested router's fallback carries axum's private catch-all parameter: no route matched.
        Some(t) if !t.contains("{*__private__") => t,
        _ => "unmatched",
    };
    format!("{} {template}", method_label(method))
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
    let started = tokio::time::Instant::now();
    let method = method_label(req.method());
    let route = route_label(
        req.method(),
        req.extensions()
            .get::<MatchedPath>()
            .map(MatchedPath::as_str),
    );
    let id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-")
        .to_owned();
    // Every line logged while the request runs carries its id.
    let span = tracing::info_span!("request", id = %id);
    let resp = next.run(req).instrument(span).await;
    let elapsed = started.elapsed();
    let status = resp.status().as_u16();
    metrics.observe_http(&route, status, elapsed);
    let template = route.split_once(' ').map_or(route.as_str(), |(_, t)| t);
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
