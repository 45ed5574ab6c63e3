//! The emulator's Directory Insights feed over real sockets: each write's event and its shape, `search_after`
//! paging and its headers, `EventQuery` validation, ingestion lag, a plan without the feed, faults and stats
//! on its routes, multi-tenant keys, and the console churn. Each test starts its own emulator on
//! 127.0.0.1:0; every wait is bounded.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::time::Duration;

use jumpcloud_scim::emulator::{self, EmulatorConfig, FaultConfig, RunningEmulator};
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};
use tokio::time::Instant;

const KEY: &str = "insights-key";
const EVENTS: &str = "/insights/directory/v1/events";
const COUNT: &str = "/insights/directory/v1/events/count";

fn config(faults: FaultConfig) -> EmulatorConfig {
    EmulatorConfig {
        api_key: KEY.into(),
        users: 30,
        groups: 5,
        seed: 11,
        faults,
        ..EmulatorConfig::default()
    }
}

/// RFC 3339 for `secs` seconds ago.
fn ago(secs: i64) -> String {
    let now = jiff::Timestamp::now();
    now.checked_sub(jiff::SignedDuration::from_secs(secs))
        .unwrap_or(now)
        .to_string()
}

struct Emu {
    server: RunningEmulator,
    http: reqwest::Client,
    /// `start_time` of every query: a little before the emulator started.
    since: String,
}

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Value,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    fn rows(&self) -> &Vec<Value> {
        self.body.as_array().expect("a JSON array of events")
    }
}

impl Emu {
    async fn start(config: EmulatorConfig) -> Self {
        let since = ago(5);
        let server = emulator::spawn(config).await.expect("emulator starts");
        let http = reqwest::Client::builder()
            .no_proxy()
            .build()
            .expect("client");
        Self {
            server,
            http,
            since,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{}", self.server.base_url(), path)
    }

    async fn send(&self, rb: reqwest::RequestBuilder) -> Answer {
        let resp = rb.send().await.expect("request sent");
        let status = resp.status();
        let headers = resp.headers().clone();
        let text = resp.text().await.expect("body read");
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        Answer {
            status,
            headers,
            body,
        }
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Answer {
        let mut rb = self
            .http
            .request(method, self.url(path))
            .header("x-api-key", KEY);
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        self.send(rb).await
    }

    async fn post(&self, path: &str, body: Value) -> Answer {
        self.call(reqwest::Method::POST, path, Some(body)).await
    }

    async fn put(&self, path: &str, body: Value) -> Answer {
        self.call(reqwest::Method::PUT, path, Some(body)).await
    }

    async fn get(&self, path: &str) -> Answer {
        self.call(reqwest::Method::GET, path, None).await
    }

    async fn delete(&self, path: &str) -> Answer {
        self.call(reqwest::Method::DELETE, path, None).await
    }

    async fn faults(&self, patch: Value) -> Answer {
        self.send(self.http.put(self.url("/__emulator/faults")).json(&patch))
            .await
    }

    /// The query `{service: [directory], start_time: since}` plus `extra`.
    fn query(&self, extra: Value) -> Value {
        let mut q = json!({ "service": ["directory"], "start_time": self.since });
        if let (Value::Object(q), Value::Object(e)) = (&mut q, extra) {
            q.extend(e);
        }
        q
    }

    /// Every visible event, oldest first, walking pages of 1000.
    async fn all_events(&self) -> Vec<Value> {
        let mut out = Vec::new();
        let mut after = json!([]);
        for _ in 0..100 {
            let a = self
                .post(EVENTS, self.query(json!({ "search_after": after })))
                .await;
            assert_eq!(a.status, StatusCode::OK, "{}", a.body);
            let rows = a.rows().clone();
            let full = rows.len() == 1000;
            out.extend(rows);
            if !full {
                return out;
            }
            after = serde_json::from_str(a.header("x-search_after").expect("cursor")).unwrap();
        }
        panic!("more than 100 pages of events");
    }

    async fn count(&self, extra: Value) -> u64 {
        let a = self.post(COUNT, self.query(extra)).await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.body);
        a.body["count"].as_u64().expect("{count}")
    }

    async fn directory_id(&self, kind: &str) -> String {
        let a = self.get("/api/v2/directories").await;
        a.body
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["type"] == kind)
            .and_then(|d| d["id"].as_str())
            .expect("a directory of that kind")
            .to_owned()
    }
}

fn id(v: &Value) -> String {
    v["id"].as_str().expect("id").to_owned()
}

fn types(events: &[Value]) -> Vec<&str> {
    events
        .iter()
        .map(|e| e["event_type"].as_str().unwrap())
        .collect()
}

fn edge(e: &Value) -> (&str, &str, &str, &str, &str) {
    let c = &e["association"]["connection"];
    (
        e["association"]["op"].as_str().unwrap(),
        c["from"]["type"].as_str().unwrap(),
        c["from"]["object_id"].as_str().unwrap(),
        c["to"]["type"].as_str().unwrap(),
        c["to"]["object_id"].as_str().unwrap(),
    )
}

#[tokio::test]
async fn each_write_emits_its_event_with_its_shape() {
    let emu = Emu::start(config(FaultConfig::default())).await;
    assert!(emu.all_events().await.is_empty(), "seeding emits nothing");
    let gsuite = emu.directory_id("g_suite").await;
    let ad = emu.directory_id("active_directory").await;

    let user = emu
        .post(
            "/api/systemusers",
            json!({"username": "ann.lee", "email": "Ann.Lee@x.example"}),
        )
        .await;
    assert_eq!(user.status, StatusCode::OK);
    let uid = id(&user.body);
    let path = format!("/api/systemusers/{uid}");
    assert_eq!(
        emu.put(&path, json!({"jobTitle": "Pilot"})).await.status,
        StatusCode::OK
    );
    assert_eq!(
        emu.put(&path, json!({"state": "SUSPENDED"})).await.status,
        StatusCode::OK
    );
    assert_eq!(
        emu.put(&path, json!({"state": "ACTIVATED"})).await.status,
        StatusCode::OK
    );
    let group = emu
        .post("/api/v2/usergroups", json!({"name": "Pilots"}))
        .await;
    assert_eq!(group.status, StatusCode::CREATED);
    let gid = id(&group.body);
    let gpath = format!("/api/v2/usergroups/{gid}");
    assert_eq!(
        emu.put(&gpath, json!({"name": "Pilots", "description": "fly"}))
            .await
            .status,
        StatusCode::OK
    );
    let members = format!("{gpath}/members");
    let member = json!({"op": "add", "type": "user", "id": uid});
    assert_eq!(
        emu.post(&members, member.clone()).await.status,
        StatusCode::NO_CONTENT
    );
    // A refused write records nothing.
    assert_eq!(
        emu.post(&members, member).await.status,
        StatusCode::CONFLICT
    );
    assert_eq!(
        emu.post(&members, json!({"op": "remove", "type": "user", "id": uid}))
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    let grants = [
        (
            format!("/api/v2/gsuites/{gsuite}/associations"),
            json!({"op": "add", "type": "user", "id": uid}),
        ),
        (
            format!("/api/v2/users/{uid}/associations"),
            json!({"op": "add", "type": "active_directory", "id": ad}),
        ),
        (
            format!("{gpath}/associations"),
            json!({"op": "add", "type": "g_suite", "id": gsuite}),
        ),
        (
            format!("/api/v2/gsuites/{gsuite}/associations"),
            json!({"op": "remove", "type": "user_group", "id": gid}),
        ),
    ];
    for (p, b) in &grants {
        assert_eq!(
            emu.post(p, b.clone()).await.status,
            StatusCode::NO_CONTENT,
            "{p}"
        );
    }
    assert_eq!(emu.delete(&gpath).await.status, StatusCode::NO_CONTENT);
    assert_eq!(emu.delete(&path).await.status, StatusCode::OK);

    let events = emu.all_events().await;
    assert_eq!(
        types(&events),
        [
            "user_create",
            "association_change",
            "user_update",
            "user_update",
            "user_suspended",
            "user_update",
            "user_unsuspended",
            "group_create",
            "group_update",
            "association_change",
            "association_change",
            "association_change",
            "association_change",
            "association_change",
            "association_change",
            "group_delete",
            "user_delete",
        ]
    );
    // The common fields of §5.4, on every event.
    let mut ids = HashSet::new();
    for e in &events {
        assert!(
            ids.insert(e["id"].as_str().unwrap().to_owned()),
            "unique ids"
        );
        let ts: jiff::Timestamp = e["timestamp"].as_str().unwrap().parse().expect("RFC 3339");
        assert!(ts <= jiff::Timestamp::now());
        assert_eq!(e["service"], "directory");
        assert_eq!(e["organization"], emu.server.org_id());
        assert_eq!(e["success"], true);
        assert_eq!(e["auth_method"], "api-key");
        assert_eq!(e["initiated_by"]["type"], "admin");
        assert!(e["client_ip"].is_string() && e["resource"]["id"].is_string());
    }
    let user_resource = json!({"type": "systemuser", "id": uid, "username": "ann.lee", "email": "ann.lee@x.example"});
    assert_eq!(events[0]["resource"], user_resource);
    assert_eq!(
        events[16]["resource"], user_resource,
        "a delete names who went"
    );
    assert!(events[0].get("changes").is_none());
    assert_eq!(
        events[2]["changes"],
        json!([{"field": "jobTitle", "from": "", "to": "Pilot"}])
    );
    let fields = |e: &Value| -> BTreeSet<String> {
        e["changes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["field"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        fields(&events[4]),
        BTreeSet::from(["state".to_owned(), "suspended".to_owned()])
    );
    assert_eq!(events[4]["changes"][0]["to"], "SUSPENDED");
    assert_eq!(events[6]["changes"][0]["to"], "ACTIVATED");
    assert_eq!(
        events[7]["resource"],
        json!({"type": "user_group", "id": gid, "name": "Pilots"})
    );
    assert_eq!(
        events[8]["changes"],
        json!([{"field": "description", "from": "", "to": "fly"}])
    );
    // Edges name both ends: from the side the write went through.
    let all_users = edge(&events[1]);
    assert_eq!(
        (all_users.0, all_users.1, all_users.3, all_users.4),
        ("add", "user_group", "user", uid.as_str())
    );
    assert_eq!(
        edge(&events[9]),
        ("add", "user_group", gid.as_str(), "user", uid.as_str())
    );
    assert_eq!(
        edge(&events[10]),
        ("remove", "user_group", gid.as_str(), "user", uid.as_str())
    );
    assert_eq!(
        edge(&events[11]),
        ("add", "g_suite", gsuite.as_str(), "user", uid.as_str())
    );
    assert_eq!(
        edge(&events[12]),
        ("add", "user", uid.as_str(), "active_directory", ad.as_str())
    );
    assert_eq!(
        edge(&events[13]),
        (
            "add",
            "user_group",
            gid.as_str(),
            "g_suite",
            gsuite.as_str()
        )
    );
    assert_eq!(
        edge(&events[14]),
        (
            "remove",
            "g_suite",
            gsuite.as_str(),
            "user_group",
            gid.as_str()
        )
    );
    assert_eq!(
        events[9]["association"]["connection"]["from"]["name"],
        "Pilots"
    );
    assert_eq!(
        events[9]["association"]["connection"]["to"]["name"],
        "ann.lee"
    );
    assert_eq!(emu.count(json!({})).await, events.len() as u64);
}

#[tokio::test]
async fn state_actions_and_a_managers_delete_emit_their_events() {
    let emu = Emu::start(config(FaultConfig::default())).await;
    let boss = id(&emu
        .post(
            "/api/systemusers",
            json!({"username": "boss", "email": "boss@x.example", "state": "STAGED"}),
        )
        .await
        .body);
    let report = id(&emu
        .post(
            "/api/systemusers",
            json!({"username": "rep", "email": "rep@x.example", "manager": boss}),
        )
        .await
        .body);
    let base = format!("/api/systemusers/{boss}");
    for action in ["state/activate", "expire", "unlock"] {
        let a = emu.post(&format!("{base}/{action}"), json!({})).await;
        assert_eq!(a.status, StatusCode::OK, "{action}");
    }
    assert_eq!(
        emu.put(&base, json!({"password": "Secret123!"}))
            .await
            .status,
        StatusCode::OK
    );
    let a = emu
        .call(
            reqwest::Method::DELETE,
            &format!("{base}?cascade_manager=null"),
            None,
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let events = emu.all_events().await;
    let tail: Vec<&str> = types(&events)[4..].to_vec();
    assert_eq!(
        tail,
        [
            "user_activated",
            "user_password_expired",
            "user_unlocked",
            "user_update",
            "user_password_set",
            "user_update",
            "user_delete",
        ]
    );
    // The report lost its manager: an update of the report, before the manager's delete.
    assert_eq!(events[9]["resource"]["id"], report.as_str());
    assert_eq!(
        events[9]["changes"],
        json!([{"field": "manager", "from": boss, "to": null}])
    );
}

#[tokio::test]
async fn paging_walks_every_event_once_with_headers_on_every_page() {
    let emu = Emu::start(config(FaultConfig::default())).await;
    for i in 0..12 {
        let a = emu
            .post(
                "/api/systemusers",
                json!({"username": format!("p{i}"), "email": format!("p{i}@x.example")}),
            )
            .await;
        assert_eq!(a.status, StatusCode::OK);
    }
    let everything = emu.all_events().await;
    assert_eq!(everything.len(), 24);
    for (sort, want) in [
        ("ASC", everything.clone()),
        ("DESC", {
            let mut r = everything.clone();
            r.reverse();
            r
        }),
    ] {
        let mut seen = Vec::new();
        let mut after = Value::Null;
        let mut pages = 0;
        loop {
            pages += 1;
            assert!(pages <= 10, "paging does not end");
            let mut q = emu.query(json!({"limit": 7, "sort": sort.to_lowercase()}));
            if !after.is_null() {
                q["search_after"] = after.clone();
            }
            let a = emu.post(EVENTS, q).await;
            assert_eq!(a.status, StatusCode::OK);
            assert_eq!(
                a.header("content-type"),
                Some("application/json; charset=utf-8")
            );
            let n = a.rows().len();
            assert_eq!(a.header("x-result-count"), Some(n.to_string().as_str()));
            assert_eq!(a.header("x-limit"), Some("7"));
            assert_eq!(a.header("x-sort"), Some(sort));
            assert!(a.header("x-request-id").is_some());
            let cursor: Value =
                serde_json::from_str(a.header("x-search_after").expect("on every page")).unwrap();
            assert!(cursor.is_array());
            if let Some(last) = a.rows().last() {
                assert_eq!(cursor[1], last["id"]);
            }
            seen.extend(a.rows().iter().cloned());
            if n < 7 {
                break;
            }
            after = cursor;
        }
        assert_eq!(pages, 4, "24 events in pages of 7");
        assert_eq!(seen, want, "{sort}: every event exactly once, in order");
    }
    // `skip` offsets, `fields` projects, `end_time` bounds.
    let a = emu
        .post(
            EVENTS,
            emu.query(json!({"skip": 22, "fields": ["event_type", "resource.username"]})),
        )
        .await;
    assert_eq!(
        a.body,
        json!([
            {"event_type": "user_create", "resource": {"username": "p11"}},
            {"event_type": "association_change"},
        ])
    );
    let first = everything[0]["timestamp"].as_str().unwrap();
    let a = emu
        .post(EVENTS, emu.query(json!({"end_time": first})))
        .await;
    assert_eq!(a.rows().len(), 0, "end_time is exclusive");
    // Search terms, in lower case as the feed stores values.
    assert_eq!(
        emu.count(json!({"search_term": {"and": [{"event_type": "user_create"}, {"resource.username": ["p1", "p2"]}]}}))
            .await,
        2
    );
    assert_eq!(
        emu.count(json!({"search_term": {"and": [{"association.connection.to.name": "p3"}]}}))
            .await,
        1
    );
    // The count ignores paging; another service has no events.
    assert_eq!(emu.count(json!({"limit": 3, "skip": 5})).await, 24);
    assert_eq!(emu.count(json!({"service": ["sso"]})).await, 0);
    assert_eq!(emu.count(json!({"service": ["all"]})).await, 24);
}

#[tokio::test]
async fn nonsense_limits_and_sorts_fall_back_as_the_sheet_says() {
    let emu = Emu::start(config(FaultConfig::default())).await;
    for (limit, want) in [
        (json!(20_000), "1000"),
        (json!(10_000), "10000"),
        (json!(0), "1000"),
        (json!("lots"), "1000"),
    ] {
        let a = emu.post(EVENTS, emu.query(json!({ "limit": limit }))).await;
        assert_eq!(a.status, StatusCode::OK);
        assert_eq!(a.header("x-limit"), Some(want), "limit {limit}");
    }
    let a = emu
        .post(EVENTS, emu.query(json!({"sort": "upwards"})))
        .await;
    assert_eq!(a.header("x-sort"), Some("ASC"));
    assert_eq!(a.header("x-search_after"), Some("[]"));
}

#[tokio::test]
async fn a_bad_event_query_is_a_400_that_says_why() {
    let emu = Emu::start(config(FaultConfig::default())).await;
    for route in [EVENTS, COUNT] {
        let a = emu.post(route, json!({"start_time": emu.since})).await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{route}");
        let msg = a.body["message"].as_str().unwrap();
        for valid in ["directory", "all", "sso", "systems"] {
            assert!(msg.contains(valid), "{msg}");
        }
        assert_eq!(a.body["code"], 400);
        let a = emu
            .post(
                route,
                json!({"service": ["directory", "users"], "start_time": emu.since}),
            )
            .await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST);
        let msg = a.body["message"].as_str().unwrap();
        assert!(
            msg.contains("users") && msg.contains("password_manager"),
            "{msg}"
        );
    }
    for bad in [
        json!({"service": ["directory"]}),
        json!({"service": ["directory"], "start_time": "last tuesday"}),
        json!({"service": ["directory"], "start_time": "2999-01-01T00:00:00Z"}),
        json!({"service": ["directory"], "start_time": emu.since, "end_time": "2000-01-01T00:00:00Z"}),
        json!({"service": ["directory"], "start_time": emu.since, "fields": []}),
        json!({"service": ["directory"], "start_time": emu.since, "fields": ["nope"]}),
        json!({"service": ["directory"], "start_time": emu.since, "search_after": "x"}),
        json!({"service": ["directory"], "start_time": emu.since, "search_term": {"and": [{"changes.field": "x"}]}}),
        json!({"service": ["directory"], "start_time": emu.since, "q": "a", "exact_match": "b"}),
        json!(["not", "an", "object"]),
    ] {
        let a = emu.post(EVENTS, bad.clone()).await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{bad}");
        assert!(a.body["message"].is_string(), "{}", a.body);
    }
}

#[tokio::test]
async fn the_lag_hides_an_event_until_it_passes() {
    let emu = Emu::start(config(FaultConfig {
        insights_lag_ms: 300,
        ..FaultConfig::default()
    }))
    .await;
    let find = json!({"search_term": {"and": [{"event_type": "user_create"}, {"resource.username": "late"}]}});
    let written = Instant::now();
    let a = emu
        .post(
            "/api/systemusers",
            json!({"username": "late", "email": "late@x.example"}),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(emu.count(find.clone()).await, 0, "not visible at once");
    let deadline = written + Duration::from_secs(5);
    loop {
        if emu.count(find.clone()).await == 1 {
            break;
        }
        assert!(Instant::now() < deadline, "never became visible");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let waited = written.elapsed();
    assert!(
        waited >= Duration::from_millis(290),
        "visible after {waited:?}"
    );
    // The lag is a run-time setting: at 0, the next change shows at once.
    assert_eq!(
        emu.faults(json!({"insights_lag_ms": 0})).await.status,
        StatusCode::OK
    );
    emu.post("/api/v2/usergroups", json!({"name": "Now"})).await;
    assert_eq!(
        emu.count(json!({"search_term": {"and": [{"event_type": "group_create"}]}}))
            .await,
        1
    );
}

#[tokio::test]
async fn a_plan_without_insights_answers_403() {
    let emu = Emu::start(config(FaultConfig {
        insights: false,
        ..FaultConfig::default()
    }))
    .await;
    for route in [EVENTS, COUNT] {
        let a = emu.post(route, emu.query(json!({}))).await;
        assert_eq!(a.status, StatusCode::FORBIDDEN, "{route}");
        assert_eq!(a.body["code"], 403);
        assert_eq!(a.body["status"], "Forbidden");
        assert!(
            a.body["message"]
                .as_str()
                .unwrap()
                .contains("Directory Insights")
        );
    }
    // Authentication still comes first.
    let a = emu
        .send(emu.http.post(emu.url(EVENTS)).json(&emu.query(json!({}))))
        .await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    // Writes made meanwhile are still recorded, and show once the plan has the feed.
    emu.post("/api/v2/usergroups", json!({"name": "Quiet"}))
        .await;
    let f = emu.faults(json!({"insights": true})).await;
    assert_eq!(f.body["insights"], true);
    assert_eq!(emu.count(json!({})).await, 1);
}

#[tokio::test]
async fn faults_and_stats_apply_to_the_feed() {
    let emu = Emu::start(config(FaultConfig::default())).await;
    let f = emu
        .faults(json!({"fail_next": {"count": 1, "status": 503, "route": "POST /insights/directory/v1/events"}}))
        .await;
    assert_eq!(f.status, StatusCode::OK);
    let a = emu.post(EVENTS, emu.query(json!({}))).await;
    assert_eq!(a.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(a.header("content-type"), Some("text/html"));
    assert_eq!(
        emu.post(EVENTS, emu.query(json!({}))).await.status,
        StatusCode::OK
    );
    emu.faults(json!({"retry_after_s": 2, "fail_next": {"count": 1, "status": 429, "route": "POST /insights/directory/v1/events/count"}}))
        .await;
    let a = emu.post(COUNT, emu.query(json!({}))).await;
    assert_eq!(a.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(a.header("retry-after"), Some("2"));
    // The feed's POSTs only read: a commit-then-fail gateway leaves them alone.
    emu.faults(json!({"commit_then_fail_rate": 1.0})).await;
    assert_eq!(
        emu.post(EVENTS, emu.query(json!({}))).await.status,
        StatusCode::OK
    );
    assert_eq!(
        emu.post(COUNT, emu.query(json!({}))).await.status,
        StatusCode::OK
    );
    emu.faults(json!({"commit_then_fail_rate": 0.0})).await;
    assert_eq!(
        emu.post(EVENTS, json!({"start_time": emu.since}))
            .await
            .status,
        StatusCode::BAD_REQUEST
    );
    let stats = emu
        .send(emu.http.get(emu.url("/__emulator/stats")))
        .await
        .body;
    assert_eq!(
        stats["routes"]["POST /insights/directory/v1/events"],
        json!({"200": 2, "400": 1, "503": 1})
    );
    assert_eq!(
        stats["routes"]["POST /insights/directory/v1/events/count"],
        json!({"200": 1, "429": 1})
    );
}

#[tokio::test]
async fn a_multi_tenant_key_names_its_organisation_once_or_more() {
    let emu = Emu::start(EmulatorConfig {
        multi_tenant: true,
        ..config(FaultConfig::default())
    })
    .await;
    let org = emu.server.org_id().to_owned();
    let org = org.as_str();
    let post = |orgs: Vec<&str>| {
        let mut rb = emu
            .http
            .post(emu.url(EVENTS))
            .header("x-api-key", KEY)
            .json(&emu.query(json!({})));
        for o in orgs {
            rb = rb.header("x-org-id", o);
        }
        emu.send(rb)
    };
    assert_eq!(post(vec![]).await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(post(vec![org]).await.status, StatusCode::OK);
    assert_eq!(post(vec![org, org]).await.status, StatusCode::OK);
    assert_eq!(
        post(vec![org, "0123456789abcdef01234567"]).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        post(vec!["not-an-id"]).await.status,
        StatusCode::BAD_REQUEST
    );
}

#[tokio::test]
async fn the_faults_endpoint_shows_and_changes_the_insights_settings() {
    let emu = Emu::start(config(FaultConfig::default())).await;
    let view = emu
        .send(emu.http.get(emu.url("/__emulator/faults")))
        .await
        .body;
    assert_eq!(
        (
            &view["insights"],
            &view["insights_lag_ms"],
            &view["churn_per_minute"]
        ),
        (&json!(true), &json!(0), &json!(0))
    );
    let view = emu
        .faults(json!({"insights_lag_ms": 1500, "churn_per_minute": 0, "insights": false}))
        .await
        .body;
    assert_eq!(
        (&view["insights"], &view["insights_lag_ms"]),
        (&json!(false), &json!(1500))
    );
    let a = emu.faults(json!({"churn_per_minute": 10_000_000})).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn late_events_and_a_short_retention_are_set_at_run_time() {
    let emu = Emu::start(config(FaultConfig::default())).await;
    let a = emu
        .faults(json!({"insights_late_next": {"count": 1, "extra_ms": 600}}))
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let first = Instant::now();
    emu.post("/api/v2/usergroups", json!({"name": "Early"}))
        .await;
    emu.post("/api/v2/usergroups", json!({"name": "Later"}))
        .await;
    let names = |events: Vec<Value>| -> Vec<String> {
        events
            .iter()
            .map(|e| e["resource"]["name"].as_str().unwrap_or("").to_owned())
            .collect()
    };
    // The first change arrives after the second until its extra delay has passed.
    assert_eq!(names(emu.all_events().await), ["Later"]);
    let deadline = first + Duration::from_secs(5);
    loop {
        let seen = names(emu.all_events().await);
        if seen.len() == 2 {
            assert_eq!(seen, ["Early", "Later"], "in the order they happened");
            break;
        }
        assert!(Instant::now() < deadline, "the late event never arrived");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(first.elapsed() >= Duration::from_millis(590));
    // A retention of one second drops both from the answers once they are older.
    let a = emu.faults(json!({"insights_retention_s": 1})).await;
    assert_eq!(a.body["insights_retention_s"], 1);
    let deadline = Instant::now() + Duration::from_secs(5);
    while emu.count(json!({})).await > 0 {
        assert!(Instant::now() < deadline, "retention never applied");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let a = emu.faults(json!({"insights_retention_s": 0})).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
}

/// Polls the event count until it stops moving (the churn's last tick may land after it was paused).
async fn settled_count(emu: &Emu) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut last = emu.count(json!({})).await;
    loop {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let now = emu.count(json!({})).await;
        if now == last {
            return now;
        }
        assert!(Instant::now() < deadline, "the churn does not stop");
        last = now;
    }
}

#[tokio::test]
async fn console_churn_changes_the_directory_and_feeds_events() {
    let emu = Emu::start(config(FaultConfig::default())).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(emu.count(json!({})).await, 0, "no churn by default");
    let f = emu.faults(json!({"churn_per_minute": 12_000})).await;
    assert_eq!(f.body["churn_per_minute"], 12_000);
    let deadline = Instant::now() + Duration::from_secs(10);
    while emu.count(json!({})).await < 150 {
        assert!(Instant::now() < deadline, "the churn is too slow");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    emu.faults(json!({"churn_per_minute": 0})).await;
    let n = settled_count(&emu).await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(emu.count(json!({})).await, n, "0 stops it");

    let events = emu.all_events().await;
    assert_eq!(events.len() as u64, n);
    let kinds: BTreeSet<&str> = types(&events).into_iter().collect();
    for k in [
        "user_update",
        "user_create",
        "user_delete",
        "user_suspended",
        "association_change",
    ] {
        assert!(kinds.contains(k), "{k} missing from {kinds:?}");
    }
    assert!(events.iter().all(|e| e["auth_method"] == "session"));

    // The feed tells the directory's story: the last word on each user, membership and binding holds.
    let mut user_fate: HashMap<String, &str> = HashMap::new();
    let mut user_state: HashMap<String, &str> = HashMap::new();
    let mut edges: HashMap<(String, String), &str> = HashMap::new();
    for e in &events {
        let t = e["event_type"].as_str().unwrap();
        let rid = e["resource"]["id"].as_str().unwrap().to_owned();
        match t {
            "user_create" | "user_delete" => {
                user_fate.insert(rid, t);
            }
            "user_suspended" | "user_unsuspended" => {
                user_state.insert(rid, t);
            }
            "association_change" => {
                let (op, _, from, _, to) = edge(e);
                edges.insert((from.to_owned(), to.to_owned()), op);
            }
            _ => {}
        }
    }
    assert!(edges.len() > 5 && !user_fate.is_empty());
    let mut gone = HashSet::new();
    for (uid, fate) in &user_fate {
        let a = emu.get(&format!("/api/systemusers/{uid}")).await;
        let want = if *fate == "user_delete" {
            gone.insert(uid.clone());
            StatusCode::NOT_FOUND
        } else {
            StatusCode::OK
        };
        assert_eq!(a.status, want, "{uid} after {fate}");
    }
    for (uid, t) in &user_state {
        if gone.contains(uid) {
            continue;
        }
        let a = emu.get(&format!("/api/systemusers/{uid}")).await;
        let want = if *t == "user_suspended" {
            "SUSPENDED"
        } else {
            "ACTIVATED"
        };
        assert_eq!(a.body["state"], want, "{uid} after {t}");
    }
    let groups: Vec<String> = emu
        .get("/api/v2/usergroups?limit=100")
        .await
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(id)
        .collect();
    let mut members: HashSet<(String, String)> = HashSet::new();
    for g in &groups {
        let a = emu
            .get(&format!("/api/v2/usergroups/{g}/members?limit=100"))
            .await;
        for m in a.body.as_array().unwrap() {
            members.insert((g.clone(), m["to"]["id"].as_str().unwrap().to_owned()));
        }
    }
    let mut bound: HashSet<(String, String)> = HashSet::new();
    for kind in ["g_suite", "active_directory"] {
        let dir = emu.directory_id(kind).await;
        let segment = if kind == "g_suite" {
            "gsuites"
        } else {
            "activedirectories"
        };
        let a = emu
            .get(&format!(
                "/api/v2/{segment}/{dir}/associations?targets=user&targets=user_group&limit=100"
            ))
            .await;
        for m in a.body.as_array().unwrap() {
            bound.insert((dir.clone(), m["to"]["id"].as_str().unwrap().to_owned()));
        }
    }
    for ((from, to), op) in &edges {
        if gone.contains(to) {
            continue;
        }
        let now = members.contains(&(from.clone(), to.clone()))
            || bound.contains(&(from.clone(), to.clone()));
        assert_eq!(now, *op == "add", "edge {from} → {to} after {op}");
    }
}
