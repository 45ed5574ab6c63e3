//! Fault injection: what the emulated gateway does to a request before (or after) the API sees it.
//!
//! Decisions, in order: a scripted `fail_next` matching the route; an outage window (one started by
//! `outage_now_s`, or the periodic `[k*every, k*every+for)` for k ≥ 1 from start); a 429 at
//! `rate_limit_rate`; a random `fail_status` at `fail_rate`; and for writes, commit-then-502 at
//! `commit_then_fail_rate`. The dice are one `StdRng` seeded from the emulator's seed, so a test with a fixed
//! seed and a sequential client sees the same faults every run. Time is tokio's clock, so paused-time tests
//! can walk through windows.
//!
//! The same configuration carries the Directory Insights plan, its ingestion lag and the console churn rate:
//! not faults of the gateway, but settings a test changes at run time the same way.

use std::time::Duration;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::time::Instant;

use super::error::json_response;
use super::{DEFAULT_INSIGHTS_RETENTION_S, FaultConfig, MAX_CHURN_PER_MINUTE, MAX_INSIGHTS_LAG_MS};

/// Statuses a random failure may take.
const GATEWAY_STATUSES: [u16; 4] = [500, 502, 503, 504];
/// Mixed into the seed so the fault dice and the seeded data draw different streams.
const DICE_SALT: u64 = 0x6661_756c_7473;

/// "The next `count` requests to `route` (any route when absent) answer `status`."
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FailNext {
    pub count: u32,
    pub status: u16,
    #[serde(default)]
    pub route: Option<String>,
}

/// "The next `count` events recorded become visible `extra_ms` later than the others" (late ingestion).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LateNext {
    pub count: u32,
    pub extra_ms: u64,
}

/// Body of `PUT /__emulator/faults`: any subset of the fields.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultPatch {
    pub fail_rate: Option<f64>,
    pub fail_status: Option<u16>,
    pub outage_every_s: Option<u64>,
    pub outage_for_s: Option<u64>,
    pub outage_now_s: Option<u64>,
    pub latency_ms: Option<u64>,
    pub rate_limit_rate: Option<f64>,
    pub retry_after_s: Option<u64>,
    pub commit_then_fail_rate: Option<f64>,
    pub fail_next: Option<FailNext>,
    pub insights: Option<bool>,
    pub insights_lag_ms: Option<u64>,
    pub insights_retention_s: Option<u64>,
    /// Recorded in the event history, not here: the caller hands it to the store (see `gate`).
    pub insights_late_next: Option<LateNext>,
    pub churn_per_minute: Option<u32>,
}

/// A fault answered instead of the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Injected {
    /// A proxy's HTML error page (500/502/503/504).
    Gateway(StatusCode),
    /// 429 with `Retry-After`.
    RateLimited { retry_after_s: u64 },
    /// Any other scripted status, as a JSON error.
    Status(StatusCode),
}

/// What to do with one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub latency: Duration,
    pub injected: Option<Injected>,
    /// Run the write, then answer 502 if it succeeded.
    pub commit_then_fail: bool,
}

/// Current faults and the dice.
#[derive(Debug)]
pub struct Faults {
    config: FaultConfig,
    started: Instant,
    outage_until: Option<Instant>,
    fail_next: Option<FailNext>,
    rng: StdRng,
}

// === impl Faults ===

impl Faults {
    /// The settings in force.
    pub fn config(&self) -> &FaultConfig {
        &self.config
    }

    pub fn new(config: FaultConfig, seed: u64, started: Instant) -> Self {
        Self {
            config,
            started,
            outage_until: None,
            fail_next: None,
            rng: StdRng::seed_from_u64(seed ^ DICE_SALT),
        }
    }

    /// Decides the fate of a request to `route` (e.g. `GET /api/systemusers`) arriving at `now`.
    pub fn decide(&mut self, route: &str, is_write: bool, now: Instant) -> Decision {
        let latency = Duration::from_millis(self.config.latency_ms);
        let injected = self.injected(route, now);
        let commit_then_fail = injected.is_none()
            && is_write
            && self.config.commit_then_fail_rate > 0.0
            && self.rng.random::<f64>() < self.config.commit_then_fail_rate;
        Decision {
            latency,
            injected,
            commit_then_fail,
        }
    }

    fn injected(&mut self, route: &str, now: Instant) -> Option<Injected> {
        if let Some(f) = &mut self.fail_next
            && f.count > 0
            && f.route.as_deref().is_none_or(|r| r == route)
        {
            f.count -= 1;
            let status = f.status;
            if f.count == 0 {
                self.fail_next = None;
            }
            return Some(Injected::for_status(status, self.config.retry_after_s));
        }
        if self.in_outage(now) {
            return Some(Injected::Gateway(StatusCode::BAD_GATEWAY));
        }
        if self.config.rate_limit_rate > 0.0
            && self.rng.random::<f64>() < self.config.rate_limit_rate
        {
            return Some(Injected::RateLimited {
                retry_after_s: self.config.retry_after_s,
            });
        }
        if self.config.fail_rate > 0.0 && self.rng.random::<f64>() < self.config.fail_rate {
            let status =
                StatusCode::from_u16(self.config.fail_status).unwrap_or(StatusCode::BAD_GATEWAY);
            return Some(Injected::Gateway(status));
        }
        None
    }

    /// Whether `now` falls in an outage: a manual one, or periodic window k ≥ 1.
    pub fn in_outage(&self, now: Instant) -> bool {
        if self.outage_until.is_some_and(|until| now < until) {
            return true;
        }
        let (every, len) = (self.config.outage_every_s, self.config.outage_for_s);
        if every == 0 || len == 0 {
            return false;
        }
        let elapsed = now.saturating_duration_since(self.started).as_millis();
        let every_ms = u128::from(every) * 1000;
        elapsed >= every_ms && elapsed % every_ms < u128::from(len) * 1000
    }

    /// Applies a `PUT /__emulator/faults` body; nothing changes unless all of it is valid.
    pub fn patch(&mut self, p: FaultPatch, now: Instant) -> Result<(), String> {
        for (name, rate) in [
            ("fail_rate", p.fail_rate),
            ("rate_limit_rate", p.rate_limit_rate),
            ("commit_then_fail_rate", p.commit_then_fail_rate),
        ] {
            if let Some(r) = rate
                && !(0.0..=1.0).contains(&r)
            {
                return Err(format!("{name} must be between 0 and 1, got {r}"));
            }
        }
        if let Some(s) = p.fail_status
            && !GATEWAY_STATUSES.contains(&s)
        {
            return Err(format!("fail_status must be 500, 502, 503 or 504, got {s}"));
        }
        if let Some(f) = &p.fail_next
            && !(400..=599).contains(&f.status)
        {
            return Err(format!(
                "fail_next.status must be an error status (400-599), got {}",
                f.status
            ));
        }
        if let Some(n) = p.churn_per_minute
            && n > MAX_CHURN_PER_MINUTE
        {
            return Err(format!(
                "churn_per_minute must be at most {MAX_CHURN_PER_MINUTE}, got {n}"
            ));
        }
        for (name, ms) in [
            ("insights_lag_ms", p.insights_lag_ms),
            (
                "insights_late_next.extra_ms",
                p.insights_late_next.map(|l| l.extra_ms),
            ),
        ] {
            if let Some(ms) = ms
                && ms > MAX_INSIGHTS_LAG_MS
            {
                return Err(format!(
                    "{name} must be at most {MAX_INSIGHTS_LAG_MS}, got {ms}"
                ));
            }
        }
        if let Some(s) = p.insights_retention_s
            && !(1..=DEFAULT_INSIGHTS_RETENTION_S).contains(&s)
        {
            return Err(format!(
                "insights_retention_s must be between 1 and {DEFAULT_INSIGHTS_RETENTION_S}, got {s}"
            ));
        }
        let c = &mut self.config;
        c.fail_rate = p.fail_rate.unwrap_or(c.fail_rate);
        c.fail_status = p.fail_status.unwrap_or(c.fail_status);
        c.outage_every_s = p.outage_every_s.unwrap_or(c.outage_every_s);
        c.outage_for_s = p.outage_for_s.unwrap_or(c.outage_for_s);
        c.latency_ms = p.latency_ms.unwrap_or(c.latency_ms);
        c.rate_limit_rate = p.rate_limit_rate.unwrap_or(c.rate_limit_rate);
        c.retry_after_s = p.retry_after_s.unwrap_or(c.retry_after_s);
        c.commit_then_fail_rate = p.commit_then_fail_rate.unwrap_or(c.commit_then_fail_rate);
        c.insights = p.insights.unwrap_or(c.insights);
        c.insights_lag_ms = p.insights_lag_ms.unwrap_or(c.insights_lag_ms);
        c.insights_retention_s = p.insights_retention_s.unwrap_or(c.insights_retention_s);
        c.churn_per_minute = p.churn_per_minute.unwrap_or(c.churn_per_minute);
        if let Some(secs) = p.outage_now_s {
            self.outage_until = (secs > 0).then(|| now + Duration::from_secs(secs));
        }
        if let Some(f) = p.fail_next {
            self.fail_next = (f.count > 0).then_some(f);
        }
        Ok(())
    }

    /// The `GET /__emulator/faults` shape: the configuration, the seconds left of a manual outage, and any
    /// pending `fail_next`.
    pub fn to_json(&self, now: Instant) -> Value {
        let c = &self.config;
        let outage_left = self.outage_until.map_or(0, |u| {
            u.saturating_duration_since(now).as_millis().div_ceil(1000) as u64
        });
        json!({
            "fail_rate": c.fail_rate,
            "fail_status": c.fail_status,
            "outage_every_s": c.outage_every_s,
            "outage_for_s": c.outage_for_s,
            "outage_now_s": outage_left,
            "latency_ms": c.latency_ms,
            "rate_limit_rate": c.rate_limit_rate,
            "retry_after_s": c.retry_after_s,
            "commit_then_fail_rate": c.commit_then_fail_rate,
            "fail_next": self.fail_next,
            "insights": c.insights,
            "insights_lag_ms": c.insights_lag_ms,
            "insights_retention_s": c.insights_retention_s,
            "churn_per_minute": c.churn_per_minute,
        })
    }
}

// === impl Injected ===

impl Injected {
    /// The fault a scripted status stands for; a 429 carries `retry_after_s`.
    pub fn for_status(status: u16, retry_after_s: u64) -> Self {
        match StatusCode::from_u16(status) {
            Ok(StatusCode::TOO_MANY_REQUESTS) => Injected::RateLimited { retry_after_s },
            Ok(s) if GATEWAY_STATUSES.contains(&status) => Injected::Gateway(s),
            Ok(s) => Injected::Status(s),
            Err(_) => Injected::Gateway(StatusCode::BAD_GATEWAY),
        }
    }
}

impl IntoResponse for Injected {
    fn into_response(self) -> Response {
        match self {
            Injected::Gateway(status) => {
                let mut resp = (status, gateway_page(status)).into_response();
                resp.headers_mut()
                    .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html"));
                resp.headers_mut()
                    .insert(header::SERVER, HeaderValue::from_static("nginx"));
                resp
            }
            Injected::RateLimited { retry_after_s } => {
                let mut resp = json_response(
                    StatusCode::TOO_MANY_REQUESTS,
                    &json!({ "code": 429, "message": "Too Many Requests", "status": "Too Many Requests" }),
                );
                resp.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_s));
                resp
            }
            Injected::Status(status) => {
                let reason = status.canonical_reason().unwrap_or("Error");
                json_response(
                    status,
                    &json!({ "code": status.as_u16(), "message": reason, "status": reason }),
                )
            }
        }
    }
}

/// The page a reverse proxy serves when its upstream fails: HTML, not the API's JSON.
fn gateway_page(status: StatusCode) -> String {
    let title = format!(
        "{} {}",
        status.as_u16(),
        status.canonical_reason().unwrap_or("Error")
    );
    format!(
        "<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n<center><h1>{title}</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periodic_windows_start_at_every_not_zero() {
        let t0 = Instant::now();
        let f = Faults::new(
            FaultConfig {
                outage_every_s: 10,
                outage_for_s: 2,
                ..FaultConfig::default()
            },
            1,
            t0,
        );
        let at = |s: f64| t0 + Duration::from_secs_f64(s);
        assert!(!f.in_outage(at(0.5)));
        assert!(!f.in_outage(at(9.9)));
        assert!(f.in_outage(at(10.0)));
        assert!(f.in_outage(at(11.9)));
        assert!(!f.in_outage(at(12.0)));
        assert!(f.in_outage(at(20.5)));
    }

    #[test]
    fn fail_next_counts_down_on_its_route_only() {
        let t0 = Instant::now();
        let mut f = Faults::new(FaultConfig::default(), 1, t0);
        f.patch(
            FaultPatch {
                fail_next: Some(FailNext {
                    count: 2,
                    status: 503,
                    route: Some("GET /a".into()),
                }),
                ..FaultPatch::default()
            },
            t0,
        )
        .unwrap();
        assert_eq!(f.decide("GET /b", false, t0).injected, None);
        assert!(f.decide("GET /a", false, t0).injected.is_some());
        assert!(f.decide("GET /a", false, t0).injected.is_some());
        assert_eq!(f.decide("GET /a", false, t0).injected, None);
    }

    #[test]
    fn insights_settings_are_patched_and_shown() {
        let t0 = Instant::now();
        let mut f = Faults::new(FaultConfig::default(), 1, t0);
        let v = f.to_json(t0);
        assert_eq!(
            (
                &v["insights"],
                &v["insights_lag_ms"],
                &v["churn_per_minute"]
            ),
            (&json!(true), &json!(0), &json!(0))
        );
        let p: FaultPatch = serde_json::from_value(
            json!({"insights": false, "insights_lag_ms": 300, "churn_per_minute": 120}),
        )
        .unwrap();
        f.patch(p, t0).unwrap();
        assert!(!f.config().insights);
        assert_eq!(f.config().insights_lag_ms, 300);
        assert_eq!(f.config().churn_per_minute, 120);
        let p = FaultPatch {
            churn_per_minute: Some(MAX_CHURN_PER_MINUTE + 1),
            ..FaultPatch::default()
        };
        assert!(f.patch(p, t0).is_err());
        assert_eq!(f.config().churn_per_minute, 120);
    }

    #[test]
    fn the_feed_retention_and_late_events_are_bounded() {
        let t0 = Instant::now();
        let mut f = Faults::new(FaultConfig::default(), 1, t0);
        assert_eq!(
            f.to_json(t0)["insights_retention_s"],
            json!(DEFAULT_INSIGHTS_RETENTION_S)
        );
        for bad in [
            json!({"insights_retention_s": 0}),
            json!({"insights_retention_s": DEFAULT_INSIGHTS_RETENTION_S + 1}),
            json!({"insights_late_next": {"count": 1, "extra_ms": MAX_INSIGHTS_LAG_MS + 1}}),
        ] {
            let p: FaultPatch = serde_json::from_value(bad.clone()).unwrap();
            assert!(f.patch(p, t0).is_err(), "{bad}");
        }
        assert!(
            serde_json::from_value::<FaultPatch>(json!({"insights_late_next": {"count": 1}}))
                .is_err()
        );
        let p: FaultPatch = serde_json::from_value(json!({"insights_retention_s": 3})).unwrap();
        f.patch(p, t0).unwrap();
        assert_eq!(f.config().insights_retention_s, 3);
        assert_eq!(f.to_json(t0)["insights_retention_s"], json!(3));
    }

    #[test]
    fn bad_patches_change_nothing() {
        let t0 = Instant::now();
        let mut f = Faults::new(FaultConfig::default(), 1, t0);
        let p = FaultPatch {
            fail_rate: Some(0.5),
            rate_limit_rate: Some(2.0),
            ..FaultPatch::default()
        };
        assert!(f.patch(p, t0).is_err());
        assert_eq!(f.config.fail_rate, 0.0);
        let p = FaultPatch {
            fail_status: Some(404),
            ..FaultPatch::default()
        };
        assert!(f.patch(p, t0).is_err());
    }
}
