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

// === helpers shared by the tests below ===

/// `/readyz`'s view of the feed.
async fn feed(h: &Harness) -> Value {
    h.readyz().await.1["insights"].clone()
}

/// Wait until the feed's state is `state`.
async fn feed_state(h: &Harness, state: &str) -> Value {
    let deadline = Instant::now() + VISIBLE_WITHIN;
    loop {
        let f = feed(h).await;
        if f["state"] == state {
            return f;
        }
        assert!(
            Instant::now() < deadline,
            "the feed never became {state}: {f}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Wait until the feed has polled `n` more times than `since` says (the count `/readyz` shows).
async fn polls_after(h: &Harness, since: u64, n: u64) {
    let deadline = Instant::now() + VISIBLE_WITHIN;
    while feed(h).await["polls"].as_u64().unwrap_or(0) < since + n {
        assert!(Instant::now() < deadline, "the feed stopped polling");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn polls(h: &Harness) -> u64 {
    feed(h).await["polls"].as_u64().unwrap_or(0)
}

/// A write straight to the emulator's JumpCloud API, as another admin makes it; must succeed.
async fn upstream(h: &Harness, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
    let mut rb = h.jc(method, path);
    if let Some(b) = body {
        rb = rb.json(&b);
    }
    let r = rb.send().await.unwrap();
    let status = r.status();
    let text = r.text().await.unwrap();
    assert!(status.is_success(), "{path}: {status} {text}");
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

/// The id of the emulator's directory of `kind` (`active_directory`, `g_suite`).
async fn directory(h: &Harness, kind: &str) -> String {
    let list = upstream(h, reqwest::Method::GET, "/api/v2/directories", None).await;
    list.as_array()
        .unwrap()
        .iter()
        .find(|d| d["type"] == kind)
        .and_then(|d| d["id"].as_str())
        .expect("a seeded directory of that kind")
        .to_owned()
}

/// Whether the SCIM group `gid` lists `uid` among its members.
fn lists(body: &Value, uid: &str) -> bool {
    body["members"]
        .as_array()
        .is_some_and(|m| m.iter().any(|x| x["value"] == uid))
}

/// Whether the SCIM user lists `gid` among its groups.
fn in_group(body: &Value, gid: &str) -> bool {
    body["groups"]
        .as_array()
        .is_some_and(|g| g.iter().any(|x| x["value"] == gid))
}

/// One sample of `/metrics`.
async fn metric(h: &Harness, series: &str) -> f64 {
    let text = h.text("/metrics").await;
    text.lines()
        .find_map(|l| l.strip_prefix(series).and_then(|r| r.strip_prefix(' ')))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

// === each kind of change ===

#[tokio::test]
async fn a_user_created_suspended_and_deleted_in_jumpcloud_follows_in_scim() {
    let h = start(small_emulator(30, 3), |_| {}).await;
    let lists_before = calls(&h, "GET /api/systemusers").await;
    let created = upstream(
        &h,
        reqwest::Method::POST,
        "/api/systemusers",
        Some(
            json!({"username": "feed.joiner", "email": "feed.joiner@example.com",
                    "firstname": "Feed", "lastname": "Joiner"}),
        ),
    )
    .await;
    let id = created["_id"].as_str().unwrap().to_owned();
    let body = until(&h, &format!("/Users/{id}"), "the new user shows", |v| {
        v["status"] == 200
    })
    .await;
    assert_eq!(body["active"], true);
    assert_eq!(body["name"]["givenName"], "Feed");
    // JumpCloud puts every new user in "All Users": that edge came with the event, not with a fetch.
    let all_users = h
        .get("/Groups?filter=displayName%20eq%20%22All%20Users%22")
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap()["Resources"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    until(
        &h,
        &format!("/Users/{id}"),
        "the user is in All Users",
        |v| in_group(&v["body"], &all_users),
    )
    .await;

    upstream(
        &h,
        reqwest::Method::PUT,
        &format!("/api/systemusers/{id}"),
        Some(json!({"state": "SUSPENDED"})),
    )
    .await;
    until(&h, &format!("/Users/{id}"), "the suspension shows", |v| {
        v["body"]["active"] == false
    })
    .await;

    upstream(
        &h,
        reqwest::Method::DELETE,
        &format!("/api/systemusers/{id}?cascade_manager=null"),
        None,
    )
    .await;
    until(&h, &format!("/Users/{id}"), "the deletion shows", |v| {
        v["status"] == 404
    })
    .await;
    let group = h
        .get(&format!("/Groups/{all_users}"))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    assert!(!lists(&group, &id), "a deleted user leaves its groups");
    assert_eq!(
        calls(&h, "GET /api/systemusers").await,
        lists_before,
        "no full refresh"
    );
    assert!(metric(&h, r#"jcscim_insights_events_total{type="user_suspended"}"#).await >= 1.0);
    assert_eq!(
        metric(&h, r#"jcscim_insights_events_total{type="user_delete"}"#).await,
        1.0
    );
}

#[tokio::test]
async fn members_added_and_removed_in_jumpcloud_follow_in_both_resources() {
    let h = start(small_emulator(30, 3), |_| {}).await;
    let group = upstream(
        &h,
        reqwest::Method::POST,
        "/api/v2/usergroups",
        Some(json!({"name": "Feed Readers"})),
    )
    .await;
    let gid = group["id"].as_str().unwrap().to_owned();
    until(&h, &format!("/Groups/{gid}"), "the new group shows", |v| {
        v["status"] == 200 && v["body"]["displayName"] == "Feed Readers"
    })
    .await;
    let uid = some_user(&h, 7).await["_id"].as_str().unwrap().to_owned();
    let members_before = calls(&h, "GET /api/v2/usergroups/{id}/members").await;
    upstream(
        &h,
        reqwest::Method::POST,
        &format!("/api/v2/usergroups/{gid}/members"),
        Some(json!({"op": "add", "type": "user", "id": uid})),
    )
    .await;
    until(
        &h,
        &format!("/Groups/{gid}"),
        "the member shows in the group",
        |v| lists(&v["body"], &uid),
    )
    .await;
    let user = h.get(&format!("/Users/{uid}")).send().await.unwrap();
    assert!(
        in_group(&user.json::<Value>().await.unwrap(), &gid),
        "and in the user"
    );
    upstream(
        &h,
        reqwest::Method::POST,
        &format!("/api/v2/usergroups/{gid}/members"),
        Some(json!({"op": "remove", "type": "user", "id": uid})),
    )
    .await;
    until(
        &h,
        &format!("/Users/{uid}"),
        "the removal shows in the user",
        |v| !in_group(&v["body"], &gid),
    )
    .await;
    let group = h.get(&format!("/Groups/{gid}")).send().await.unwrap();
    assert!(!lists(&group.json::<Value>().await.unwrap(), &uid));
    assert_eq!(
        calls(&h, "GET /api/v2/usergroups/{id}/members").await,
        members_before,
        "an edge the event names is applied from the event: no member list is read"
    );
}

#[tokio::test]
async fn active_directory_and_google_workspace_access_follows() {
    let h = start(small_emulator(30, 3), |_| {}).await;
    // A new hire: in no group bound to a directory, so the access granted here is its only one.
    let uid = upstream(
        &h,
        reqwest::Method::POST,
        "/api/systemusers",
        Some(json!({"username": "feed.access", "email": "feed.access@example.com"})),
    )
    .await["_id"]
        .as_str()
        .unwrap()
        .to_owned();
    until(&h, &format!("/Users/{uid}"), "the hire shows", |v| {
        v["status"] == 200
    })
    .await;
    for (kind, collection) in [
        ("active_directory", "activedirectories"),
        ("g_suite", "gsuites"),
    ] {
        let did = directory(&h, kind).await;
        let path = format!("/api/v2/{collection}/{did}/associations");
        upstream(
            &h,
            reqwest::Method::POST,
            &path,
            Some(json!({"op": "add", "type": "user", "id": uid})),
        )
        .await;
        until(
            &h,
            &format!("/Groups/{did}"),
            &format!("{kind} granted"),
            |v| lists(&v["body"], &uid),
        )
        .await;
        until(
            &h,
            &format!("/Users/{uid}"),
            &format!("{kind} on the user"),
            |v| in_group(&v["body"], &did),
        )
        .await;
        upstream(
            &h,
            reqwest::Method::POST,
            &path,
            Some(json!({"op": "remove", "type": "user", "id": uid})),
        )
        .await;
        until(
            &h,
            &format!("/Groups/{did}"),
            &format!("{kind} revoked"),
            |v| !lists(&v["body"], &uid),
        )
        .await;
    }
    assert_eq!(
        calls(&h, "GET /api/v2/activedirectories/{id}/associations").await
            + calls(&h, "GET /api/v2/gsuites/{id}/associations").await,
        // The first full refresh read each directory's users and groups.
        4,
        "access changes come from the events, not from reading the holders again"
    );
}

// === late and repeated events ===

#[tokio::test]
async fn a_late_event_within_the_overlap_is_applied_once() {
    let h = start(small_emulator(30, 3), |_| {}).await;
    let early = some_user(&h, 4).await["_id"].as_str().unwrap().to_owned();
    let later = some_user(&h, 5).await["_id"].as_str().unwrap().to_owned();
    let fetched_before = calls(&h, "GET /api/systemusers/{id}").await;
    // The first change's event reaches the feed 2.5 s late, after the second's.
    h.faults(json!({"insights_late_next": {"count": 1, "extra_ms": 2500}}))
        .await;
    let edit = |id: &str, title: &str| {
        h.jc(reqwest::Method::PUT, &format!("/api/systemusers/{id}"))
            .json(&json!({"jobTitle": title}))
            .send()
    };
    assert!(edit(&early, "Early").await.unwrap().status().is_success());
    assert!(edit(&later, "Later").await.unwrap().status().is_success());
    until(
        &h,
        &format!("/Users/{later}"),
        "the later change shows",
        |v| v["body"]["title"] == "Later",
    )
    .await;
    let r = h.get(&format!("/Users/{early}")).send().await.unwrap();
    assert_ne!(
        r.json::<Value>().await.unwrap()["title"],
        "Early",
        "not before its event arrives"
    );
    until(
        &h,
        &format!("/Users/{early}"),
        "the late change shows",
        |v| v["body"]["title"] == "Early",
    )
    .await;
    // Read again by the polls that follow (it is within the overlap), it is applied no more.
    let p = polls(&h).await;
    polls_after(&h, p, 3).await;
    assert_eq!(
        calls(&h, "GET /api/systemusers/{id}").await,
        fetched_before + 2
    );
    assert_eq!(
        metric(&h, r#"jcscim_insights_events_total{type="user_update"}"#).await,
        2.0
    );
    assert_eq!(
        feed(&h).await["state"],
        "in_use",
        "2.5 s late is within max_lag_s"
    );
}

#[tokio::test]
async fn events_read_again_in_the_overlap_are_applied_once() {
    let h = start(small_emulator(30, 3), |_| {}).await;
    let id = some_user(&h, 9).await["_id"].as_str().unwrap().to_owned();
    upstream(
        &h,
        reqwest::Method::PUT,
        &format!("/api/systemusers/{id}"),
        Some(json!({"jobTitle": "Once"})),
    )
    .await;
    until(&h, &format!("/Users/{id}"), "the edit shows", |v| {
        v["body"]["title"] == "Once"
    })
    .await;
    let r = h.get(&format!("/Users/{id}")).send().await.unwrap();
    let version = r.headers()["x-snapshot-version"]
        .to_str()
        .unwrap()
        .to_owned();
    let fetched = calls(&h, "GET /api/systemusers/{id}").await;
    let events = metric(&h, r#"jcscim_insights_events_total{type="user_update"}"#).await;
    let versions = feed(&h).await["versions_published"].clone();
    // Every poll within the next ten seconds (the overlap) reads the event again.
    let p = polls(&h).await;
    polls_after(&h, p, 4).await;
    let r = h.get(&format!("/Users/{id}")).send().await.unwrap();
    assert_eq!(
        r.headers()["x-snapshot-version"].to_str().unwrap(),
        version,
        "no new version"
    );
    let age: u64 = r.headers()["x-snapshot-age"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(age <= 3, "each poll found the snapshot current: age {age}");
    assert_eq!(
        calls(&h, "GET /api/systemusers/{id}").await,
        fetched,
        "not fetched again"
    );
    assert_eq!(
        metric(&h, r#"jcscim_insights_events_total{type="user_update"}"#).await,
        events
    );
    assert_eq!(feed(&h).await["versions_published"], versions);
    // The feed's reads and fetches are counted by purpose.
    assert!(
        metric(
            &h,
            r#"jcscim_upstream_requests_total{purpose="insights",route="POST /insights/directory/v1/events",status="200"}"#
        )
        .await
            >= 4.0
    );
    assert_eq!(
        metric(
            &h,
            r#"jcscim_upstream_requests_total{purpose="fetch",route="GET /api/systemusers/{id}",status="200"}"#
        )
        .await,
        1.0
    );
    assert!(metric(&h, "jcscim_insights_lag_seconds").await >= 0.0);
}

// === failures ===

#[tokio::test]
async fn a_fetch_failing_under_502s_is_retried_at_the_next_poll_and_not_skipped() {
    let h = start(small_emulator(30, 3), |_| {}).await;
    let id = some_user(&h, 2).await["_id"].as_str().unwrap().to_owned();
    let lists_before = calls(&h, "GET /api/systemusers").await;
    // More 502s than one poll's fetch retries: the first poll's batch fails whole.
    h.faults(
        json!({"fail_next": {"count": 6, "status": 502, "route": "GET /api/systemusers/{id}"}}),
    )
    .await;
    upstream(
        &h,
        reqwest::Method::PUT,
        &format!("/api/systemusers/{id}"),
        Some(json!({"jobTitle": "Through 502s"})),
    )
    .await;
    until(
        &h,
        &format!("/Users/{id}"),
        "the edit shows after the 502s",
        |v| v["body"]["title"] == "Through 502s",
    )
    .await;
    let by_status = &h.stats().await["routes"]["GET /api/systemusers/{id}"];
    assert_eq!(by_status["502"], 6, "{by_status}");
    assert!(by_status["200"].as_u64().unwrap() >= 1, "{by_status}");
    let f = feed(&h).await;
    assert!(
        f["last_error"].as_str().unwrap_or("").contains("502"),
        "a poll failed on them: {f}"
    );
    assert_eq!(f["failures"], 0, "and a later one succeeded");
    assert_eq!(
        calls(&h, "GET /api/systemusers").await,
        lists_before,
        "no full refresh"
    );
}

#[tokio::test]
async fn a_plan_without_the_feed_falls_back_to_full_refreshes() {
    // The refresh interval unset: it follows the feed.
    let h = start(small_emulator(30, 3), |c| c.refresh.interval_s = None).await;
    feed_state(&h, "in_use").await;
    assert_eq!(h.readyz().await.1["refresh_interval_s"], 3600);
    let refreshed = h.last_refresh().await["finished_at"].clone();
    // The organisation loses Directory Insights; a change is made meanwhile.
    h.faults(json!({"insights": false})).await;
    let id = some_user(&h, 6).await["_id"].as_str().unwrap().to_owned();
    upstream(
        &h,
        reqwest::Method::PUT,
        &format!("/api/systemusers/{id}"),
        Some(json!({"jobTitle": "Seen by a refresh"})),
    )
    .await;
    let f = feed_state(&h, "not_in_plan").await;
    assert!(f["in_words"].as_str().unwrap().contains("403"), "{f}");
    // A full refresh runs at once, and brings the change.
    until(
        &h,
        &format!("/Users/{id}"),
        "the refresh brings the change",
        |v| v["body"]["title"] == "Seen by a refresh",
    )
    .await;
    assert_ne!(
        h.last_refresh().await["finished_at"],
        refreshed,
        "a refresh ran"
    );
    assert_eq!(
        h.readyz().await.1["refresh_interval_s"],
        60,
        "and they run every minute"
    );
    let page = h.text("/status").await;
    assert!(
        page.contains("not in the organisation") || page.contains("plan has no Directory Insights"),
        "{page}"
    );
}

#[tokio::test]
async fn a_plan_without_the_feed_is_known_from_the_start() {
    let emu = EmulatorConfig {
        faults: jumpcloud_scim::emulator::FaultConfig {
            insights: false,
            ..Default::default()
        },
        ..small_emulator(20, 2)
    };
    let h = start(emu, |c| c.refresh.interval_s = None).await;
    let f = feed_state(&h, "not_in_plan").await;
    assert_eq!(f["enabled"], "auto");
    assert_eq!(h.readyz().await.1["refresh_interval_s"], 60);
    assert_eq!(
        h.stats().await["routes"]["POST /insights/directory/v1/events"]["403"],
        1,
        "auto asks once, not every poll"
    );
}

// === restarts ===

/// A data directory removed when dropped.
struct DataDir(std::path::PathBuf);

impl DataDir {
    fn new(name: &str) -> DataDir {
        let d = std::env::temp_dir().join(format!(
            "jcscim-insights-{name}-{}-{}",
            std::process::id(),
            jiff::Timestamp::now().as_nanosecond()
        ));
        let _ = std::fs::remove_dir_all(&d);
        DataDir(d)
    }

    /// Wait until the cursor file is saved beside snapshot version `version` or a later one.
    async fn cursor_saved(&self, version: u64) -> Value {
        let deadline = Instant::now() + VISIBLE_WITHIN;
        loop {
            if let Ok(text) = std::fs::read_to_string(self.0.join("insights-cursor.json")) {
                let v: Value = serde_json::from_str(&text).unwrap();
                if v["snapshot_version"].as_u64().unwrap_or(0) >= version {
                    return v;
                }
            }
            assert!(Instant::now() < deadline, "the cursor was never saved");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for DataDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[tokio::test]
async fn a_restart_resumes_from_the_saved_cursor_and_misses_nothing_made_while_down() {
    let data = DataDir::new("resume");
    let dir = data.0.clone();
    let mut h = start(small_emulator(30, 3), move |c| c.data_dir = Some(dir)).await;
    let version = h.readyz().await.1["snapshot"]["version"].as_u64().unwrap();
    data.cursor_saved(version).await;
    h.stop_service().await;

    // While the service is down, another admin edits a user, hires one and changes a group.
    let edited = some_user(&h, 8).await["_id"].as_str().unwrap().to_owned();
    upstream(
        &h,
        reqwest::Method::PUT,
        &format!("/api/systemusers/{edited}"),
        Some(json!({"jobTitle": "Edited While Down"})),
    )
    .await;
    let hired = upstream(
        &h,
        reqwest::Method::POST,
        "/api/systemusers",
        Some(json!({"username": "hired.while.down", "email": "hired.while.down@example.com"})),
    )
    .await["_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let group = upstream(
        &h,
        reqwest::Method::POST,
        "/api/v2/usergroups",
        Some(json!({"name": "Made While Down"})),
    )
    .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    upstream(
        &h,
        reqwest::Method::POST,
        &format!("/api/v2/usergroups/{group}/members"),
        Some(json!({"op": "add", "type": "user", "id": hired})),
    )
    .await;
    h.reset_stats().await;

    h.restart_service().await;
    h.wait_ready().await;
    until(
        &h,
        &format!("/Users/{edited}"),
        "the edit made while down",
        |v| v["body"]["title"] == "Edited While Down",
    )
    .await;
    until(
        &h,
        &format!("/Users/{hired}"),
        "the hire made while down",
        |v| v["status"] == 200 && in_group(&v["body"], &group),
    )
    .await;
    until(
        &h,
        &format!("/Groups/{group}"),
        "the group made while down",
        |v| lists(&v["body"], &hired),
    )
    .await;
    assert_eq!(
        calls(&h, "GET /api/systemusers").await,
        0,
        "no full refresh: the feed resumed from the saved cursor"
    );
    assert_eq!(
        h.last_refresh().await,
        Value::Null,
        "none ran since the restart"
    );
    assert_eq!(feed(&h).await["state"], "in_use");
}

#[tokio::test]
async fn a_gap_past_the_feeds_retention_is_closed_by_a_full_refresh() {
    let data = DataDir::new("gap");
    let dir = data.0.clone();
    // The feed keeps six seconds of events, and the service knows it.
    let mut h = start(small_emulator(30, 3), move |c| {
        c.data_dir = Some(dir);
        c.insights.overlap_s = 3;
        c.insights.max_lag_s = 1;
        c.insights.retention_s = 6;
    })
    .await;
    h.faults(json!({"insights_retention_s": 6})).await;
    let version = h.readyz().await.1["snapshot"]["version"].as_u64().unwrap();
    data.cursor_saved(version).await;
    h.stop_service().await;
    let id = some_user(&h, 10).await["_id"].as_str().unwrap().to_owned();
    upstream(
        &h,
        reqwest::Method::PUT,
        &format!("/api/systemusers/{id}"),
        Some(json!({"jobTitle": "Lost From The Feed"})),
    )
    .await;
    // Until the feed no longer holds the change's event.
    let deadline = Instant::now() + VISIBLE_WITHIN;
    loop {
        let since = (jiff::Timestamp::now() - jiff::SignedDuration::from_mins(5)).to_string();
        let r = h
            .jc(reqwest::Method::POST, "/insights/directory/v1/events/count")
            .json(&json!({"service": ["directory"], "start_time": since}))
            .send()
            .await
            .unwrap();
        if r.json::<Value>().await.unwrap()["count"] == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "the feed kept the event");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    h.reset_stats().await;
    h.restart_service().await;
    h.wait_ready().await;
    until(
        &h,
        &format!("/Users/{id}"),
        "a full refresh brings the change",
        |v| v["body"]["title"] == "Lost From The Feed",
    )
    .await;
    assert!(
        calls(&h, "GET /api/systemusers").await >= 1,
        "a full refresh ran"
    );
    assert_eq!(h.last_refresh().await["ok"], true);
    // Then the feed is read on from where the refresh began.
    feed_state(&h, "in_use").await;
}

// === the shrink guard ===

#[tokio::test]
async fn deletions_from_the_feed_count_against_the_shrink_guard() {
    let h = start(small_emulator(30, 3), |_| {}).await;
    feed_state(&h, "in_use").await;
    // A third of the directory vanishes in JumpCloud at once.
    let mut gone = Vec::new();
    for skip in 0..10 {
        gone.push(
            some_user(&h, skip).await["_id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    for id in &gone {
        h.delete_upstream_user(id).await;
    }
    let f = feed_state(&h, "behind").await;
    assert!(
        f["reason"].as_str().unwrap_or("").contains("held back"),
        "{f}"
    );
    // The full refresh that follows reads the same and is held back in its turn.
    let deadline = Instant::now() + VISIBLE_WITHIN;
    while h.readyz().await.1["held_back"].is_null() {
        assert!(Instant::now() < deadline, "the refresh was not held back");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let users = h.readyz().await.1["snapshot"]["users"].as_u64().unwrap();
    assert!(users >= 27, "at most the allowed few were applied: {users}");
    // An operator accepts it: published, and the feed reads on from where that refresh began.
    let r = h
        .http
        .post(format!("{}/admin/accept-shrink", h.base))
        .bearer_auth(crate::support::TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(h.readyz().await.1["snapshot"]["users"], 20);
    feed_state(&h, "in_use").await;
    let r = h.get(&format!("/Users/{}", gone[0])).send().await.unwrap();
    assert_eq!(r.status(), 404);
}
