//! The client's resilience against the emulator's scripted faults, counted with `/__emulator/stats`: retries ride
//! out a few 502s, a 429's `Retry-After` is honoured within the cap, the retry budget caps calls in an outage,
//! and a write while the breaker is open is answered 503 + `Retry-After` without reaching JumpCloud.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::response::IntoResponse;
use jumpcloud_scim::cache::refresher::refresh_once;
use jumpcloud_scim::cache::{BuildOptions, Store};
use jumpcloud_scim::directory::write::{DeleteMode, WriteSettings, Writer};
use jumpcloud_scim::emulator::{self, RunningEmulator};
use jumpcloud_scim::jumpcloud::{
    Backoff, BreakerConfig, BreakerState, BudgetConfig, JcClient, JcClientConfig, RetryPolicy,
};
use jumpcloud_scim::mapping::{MappingOptions, UsernamePolicy};
use serde_json::{Value, json};
use tokio::time::Instant;

use crate::support::small_emulator;

const MS: Duration = Duration::from_millis(1);

/// The emulator alone, with its control endpoints.
struct Emu {
    running: RunningEmulator,
    http: reqwest::Client,
}

impl Emu {
    async fn start() -> Emu {
        Emu {
            running: emulator::spawn(small_emulator(120, 4))
                .await
                .expect("emulator starts"),
            http: reqwest::Client::new(),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.running.base_url())
    }

    async fn faults(&self, body: Value) {
        let r = self
            .http
            .put(self.url("/__emulator/faults"))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "faults: {}", r.status());
    }

    async fn stats(&self) -> Value {
        self.http
            .get(self.url("/__emulator/stats"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    async fn reset_stats(&self) {
        self.http
            .delete(self.url("/__emulator/stats"))
            .send()
            .await
            .unwrap();
    }

    /// A client with quick, deterministic retries (10 ms doubling, no jitter); `tweak` adjusts the rest.
    fn client(&self, tweak: impl FnOnce(&mut JcClientConfig)) -> JcClient {
        let mut config = JcClientConfig::new(self.running.base_url(), "demo-key");
        config.timeout = Duration::from_secs(5);
        config.retry = RetryPolicy {
            max_attempts: 6,
            backoff: Backoff::new(10 * MS, 100 * MS, 0.0).unwrap(),
            retry_after_cap: Duration::from_secs(5),
        };
        tweak(&mut config);
        JcClient::new(config).unwrap()
    }
}

fn count(stats: &Value, route: &str, status: &str) -> u64 {
    stats["routes"][route][status].as_u64().unwrap_or(0)
}

#[tokio::test]
async fn a_few_502s_are_ridden_out_by_retries() {
    let emu = Emu::start().await;
    let client = emu.client(|_| {});
    emu.faults(json!({"fail_next": {"count": 3, "status": 502, "route": "GET /api/systemusers"}}))
        .await;
    let users = client.list_users().await.unwrap();
    assert_eq!(users.len(), 120);
    let stats = emu.stats().await;
    assert_eq!(count(&stats, "GET /api/systemusers", "502"), 3, "{stats}");
    assert_eq!(count(&stats, "GET /api/systemusers", "200"), 2, "{stats}");
    let s = client.stats();
    assert_eq!((s.calls, s.retries, s.retries_refused), (5, 3, 0));
    assert_eq!(client.breaker().state(), BreakerState::Closed);
}

#[tokio::test]
async fn a_429_retry_after_is_honoured_within_the_cap() {
    let emu = Emu::start().await;
    // The emulator's scripted 429 says `Retry-After: 1`.
    for (cap, at_least, below) in [
        (
            Duration::from_secs(5),
            Duration::from_secs(1),
            Duration::from_secs(2),
        ),
        (300 * MS, 300 * MS, Duration::from_secs(1)),
    ] {
        let answers: Arc<Mutex<Vec<(u16, Instant)>>> = Arc::default();
        let mut client = emu.client(|c| c.retry.retry_after_cap = cap);
        let sink = answers.clone();
        client.set_observer(Arc::new(move |_, _, status, _| {
            sink.lock().unwrap().push((status, Instant::now()));
        }));
        emu.faults(json!({"fail_next": {"count": 1, "status": 429}}))
            .await;
        assert_eq!(client.list_groups().await.unwrap().len(), 5);
        let answers = answers.lock().unwrap().clone();
        assert_eq!(answers[0].0, 429);
        assert_eq!(answers[1].0, 200);
        // From the 429's answer to the retry's answer: the wait, plus one quick local call.
        let gap = answers[1].1 - answers[0].1;
        assert!(
            gap >= at_least && gap < below,
            "cap {cap:?}: waited {gap:?}"
        );
    }
}

/// 40 reads at once during an outage, each allowed 6 attempts (240 calls unbudgeted), with the breaker out of
/// the way: the budget (ratio 0.5, 1 retry a second over 10 s) lets through at most 40 · 1.5 + 10.
#[tokio::test]
async fn in_an_outage_the_retry_budget_caps_upstream_calls() {
    let emu = Emu::start().await;
    let client = emu.client(|c| {
        c.retry_budget = BudgetConfig {
            ratio: 0.5,
            window: Duration::from_secs(10),
            min_per_sec: 1,
        };
        c.breaker.failure_threshold = u32::MAX;
        c.max_in_flight = 40;
    });
    let groups = client.list_groups().await.unwrap();
    emu.faults(json!({"outage_now_s": 30})).await;
    emu.reset_stats().await;
    let reads = (0..40).map(|i| {
        let client = client.clone();
        let gid = groups[i % groups.len()].id.clone();
        async move { client.list_group_members(&gid).await }
    });
    let results = futures_util::future::join_all(reads).await;
    assert!(
        results
            .iter()
            .all(|r| r.as_ref().unwrap_err().status() == Some(502))
    );
    let total = emu.stats().await["total"].as_u64().unwrap();
    let bound = 40 + 40 / 2 + 10;
    assert!(
        (40..=bound).contains(&total),
        "{total} calls, bound {bound}"
    );
    let s = client.stats();
    assert!(s.retries_refused > 0, "{s:?}");
    emu.faults(json!({"outage_now_s": 0})).await;
}

#[tokio::test]
async fn a_write_while_the_breaker_is_open_is_503_with_retry_after_and_sends_nothing() {
    let emu = Emu::start().await;
    let client = emu.client(|c| {
        c.retry.max_attempts = 3;
        c.breaker = BreakerConfig {
            failure_threshold: 3,
            cool_down: Duration::from_secs(20),
            max_cool_down: Duration::from_secs(60),
        };
    });
    let store = Arc::new(Store::new(BuildOptions {
        mapping: MappingOptions::default(),
        directories_as_groups: true,
    }));
    assert!(refresh_once(&store, &client).await.ok);
    let writer = Writer::new(
        store,
        client.clone(),
        WriteSettings {
            username_policy: UsernamePolicy::LocalPart,
            delete_mode: DeleteMode::Delete,
            mapping: MappingOptions::default(),
            deadline: Duration::from_secs(45),
            patch: jumpcloud_scim::scim::patch::PatchOptions::default(),
            cpu_tasks: 2,
        },
    );

    // An outage: one read's three attempts fail and open the breaker.
    emu.faults(json!({"outage_now_s": 60})).await;
    assert!(client.list_users().await.unwrap_err().is_transient());
    assert!(matches!(
        client.breaker().state(),
        BreakerState::Open { .. }
    ));
    emu.reset_stats().await;

    let started = Instant::now();
    let err = writer
        .create_user(&json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": "breaker.test@example.com",
            "emails": [{"value": "breaker.test@example.com", "primary": true}],
        }))
        .await
        .unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "answered at once"
    );
    assert_eq!(err.error.status, 503, "{err:?}");
    let retry_after = err.retry_after.expect("a Retry-After");
    assert!(
        (Duration::from_secs(1)..=Duration::from_secs(20)).contains(&retry_after),
        "the rest of the cool-down: {retry_after:?}"
    );
    let response = err.into_response();
    assert_eq!(response.status(), 503);
    assert!(response.headers().contains_key("retry-after"));
    assert_eq!(
        emu.stats().await["total"].as_u64().unwrap(),
        0,
        "nothing reached JumpCloud"
    );
    assert!(client.stats().failed_fast >= 1);
    emu.faults(json!({"outage_now_s": 0})).await;
}

#[tokio::test]
async fn a_refresh_waits_out_an_open_breaker_and_its_first_call_probes() {
    let emu = Emu::start().await;
    let client = emu.client(|c| {
        c.retry.max_attempts = 2;
        c.breaker = BreakerConfig {
            failure_threshold: 2,
            cool_down: 400 * MS,
            max_cool_down: 400 * MS,
        };
    });
    let store = Store::new(BuildOptions {
        mapping: MappingOptions::default(),
        directories_as_groups: true,
    });
    emu.faults(json!({"fail_next": {"count": 2, "status": 503}}))
        .await;
    assert!(client.list_users().await.is_err());
    let BreakerState::Open { until } = client.breaker().state() else {
        panic!("two failures open the breaker");
    };
    emu.reset_stats().await;
    let status = refresh_once(&store, &client).await;
    assert!(status.ok, "{status:?}");
    assert!(
        Instant::now() >= until,
        "the refresh waited for the cool-down"
    );
    assert_eq!(client.breaker().state(), BreakerState::Closed);
    assert_eq!(status.retries, 0, "nothing failed once it started");
    assert_eq!(
        client.stats().failed_fast,
        0,
        "it waited rather than failed"
    );
    assert!(emu.stats().await["total"].as_u64().unwrap() >= 3);
}
