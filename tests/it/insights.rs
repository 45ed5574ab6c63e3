//! The service reading JumpCloud's Directory Insights feed from the emulator, over real sockets: each kind of
//! change an admin makes in JumpCloud reaches SCIM without a full refresh; late and repeated events apply
//! once; a fetch failing under 502s is read again and never skipped; a plan without the feed falls back to
//! full refreshes; a restart resumes from the saved cursor, and a gap past the feed's retention is closed by
//! a full refresh. Every wait is a poll until a deadline.

use std::time::Duration;

use jumpcloud_scim::config::{Config, FeedMode};
use jumpcloud_scim::emulator::EmulatorConfig;
use serde_json::{Value, json};
use tokio::time::Instant;

use crate::support::{Harness, small_emulator};

/// The feed read every second (the default is five), with an overlap and lag bound to match.
fn fast_feed(c: &mut Config) {
    c.insights.enabled = FeedMode::Auto;
    c.insights.poll_s = 1;
    c.insights.overlap_s = 10;
    c.insights.max_lag_s = 5;
}

/// How long a change may take to show: a few polls.
const VISIBLE_WITHIN: Duration = Duration::from_secs(20);

async fn start(emu: EmulatorConfig, tweak: impl FnOnce(&mut Config)) -> Harness {
    let h = Harness::start(emu, |c| {
        fast_feed(c);
        tweak(c);
    })
    .await;
    h.wait_ready().await;
    h
}

/// GET `path` until `check` holds on its JSON body (or the deadline passes, failing with `what`).
async fn until(h: &Harness, path: &str, what: &str, check: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + VISIBLE_WITHIN;
    loop {
        let r = h.get(path).send().await.unwrap();
        let status = r.status().as_u16();
        let body: Value = r.json().await.unwrap_or(Value::Null);
        if check(&json!({"status": status, "body": body})) {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: last answer {status} {body}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The emulator's request count for `route` (e.g. `GET /api/systemusers`), all statuses.
async fn calls(h: &Harness, route: &str) -> u64 {
    let stats = h.stats().await;
    stats["routes"][route]
        .as_object()
        .map_or(0, |by| by.values().filter_map(Value::as_u64).sum())
}

/// The id of the first seeded user JumpCloud lists.
async fn some_user(h: &Harness, skip: usize) -> Value {
    let r = h
        .jc(
            reqwest::Method::GET,
            &format!("/api/systemusers?limit=1&skip={skip}&sort=_id"),
        )
        .send()
        .await
        .unwrap();
    r.json::<Value>().await.unwrap()["results"][0].clone()
}

#[tokio::test]
async fn a_user_edited_in_jumpcloud_shows_without_a_full_refresh() {
    let h = start(small_emulator(30, 3), |_| {}).await;
    let u = some_user(&h, 3).await;
    let refreshes = calls(&h, "GET /api/systemusers").await;
    let id = u["_id"].as_str().unwrap().to_owned();
    let r = h
        .jc(reqwest::Method::PUT, &format!("/api/systemusers/{id}"))
        .json(&json!({"department": "Feed Department", "jobTitle": "Event Reader"}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    let body = until(&h, &format!("/Users/{id}"), "the edit shows", |v| {
        v["body"]["title"] == "Event Reader"
    })
    .await;
    assert_eq!(
        body["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"]["department"],
        "Feed Department"
    );
    assert_eq!(
        calls(&h, "GET /api/systemusers").await,
        refreshes,
        "no full refresh read the users"
    );
    assert!(
        calls(&h, "GET /api/systemusers/{id}").await >= 1,
        "the user was fetched by id"
    );
}
