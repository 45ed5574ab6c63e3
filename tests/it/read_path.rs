//! The read path end to end: snapshot refresh against the emulator, SCIM reads and discovery, as
//! SailPoint, Entra ID and Okta read.

use std::collections::HashSet;

use serde_json::{Value, json};

use crate::support::{Harness, READ_TOKEN, json_of, small_emulator};

/// Walk `/Users` (or `/Groups`) in pages of `count`, returning every id seen; panics on any non-200.
async fn walk(h: &Harness, endpoint: &str, count: usize) -> (Vec<String>, u64) {
    let mut ids = Vec::new();
    let mut start = 1;
    loop {
        let r = h
            .get(&format!("/{endpoint}?startIndex={start}&count={count}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "page at {start}");
        let page = json_of(r).await;
        let total = page["totalResults"].as_u64().unwrap();
        let items = page["Resources"].as_array().unwrap();
        for it in items {
            ids.push(it["id"].as_str().unwrap().to_string());
        }
        start += items.len();
        if items.is_empty() || start as u64 > total {
            return (ids, total);
        }
    }
}

#[tokio::test]
async fn sailpoint_aggregation_under_faults_never_sees_an_error() {
    let h = Harness::start(small_emulator(250, 8), |c| c.refresh.interval_s = Some(1)).await;
    h.wait_ready().await;
    h.faults(json!({"fail_rate": 0.3})).await;
    for walk_no in 0..6 {
        if walk_no == 2 {
            // A full outage in the middle of the run: every upstream call fails.
            h.faults(json!({"outage_now_s": 3})).await;
        }
        let (users, total) = walk(&h, "Users", 40).await;
        assert_eq!(total, 250);
        let unique: HashSet<_> = users.iter().collect();
        assert_eq!(
            unique.len(),
            users.len(),
            "a user seen twice in walk {walk_no}"
        );
        assert_eq!(users.len(), 250, "walk {walk_no} missed users");
        let (groups, gtotal) = walk(&h, "Groups", 5).await;
        assert_eq!(groups.len() as u64, gtotal);
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    }
    // The faults did reach the refresher: some upstream answers were 502.
    let stats = h.stats().await;
    let failed: u64 = stats["routes"]
        .as_object()
        .unwrap()
        .values()
        .filter_map(|r| r.get("502").and_then(Value::as_u64))
        .sum();
    assert!(failed > 0, "no upstream 502 was injected: {stats}");
}

/// Pages of 100 a list of `n` items costs: an empty list still costs one call, and each page after the
/// first shares three items with the one before it, so it brings 97 new ones.
fn pages(n: u64) -> u64 {
    1 + n.saturating_sub(100).div_ceil(97)
}

#[tokio::test]
async fn a_refresh_reads_a_directory_an_admin_is_changing_in_the_console() {
    // 1,500 users in 16 pages of at least 10 ms each, while the console makes a change every millisecond
    // (users created, deleted, suspended; members moved): every page lands on a list that moved since the
    // page before it, as at 100,000 users under a few changes a second.
    let h = Harness::start(small_emulator(1_500, 20), |c| {
        c.insights.enabled = jumpcloud_scim::config::FeedMode::Off;
    })
    .await;
    h.wait_ready().await;
    h.faults(json!({"latency_ms": 10, "churn_per_minute": 60_000}))
        .await;
    for round in 0..3 {
        let outcome = h.refresh_now().await;
        assert_eq!(
            outcome["ok"], true,
            "refresh {round} under churn: {outcome}"
        );
    }
    // The console stops; the next refresh holds exactly what JumpCloud holds.
    h.faults(json!({"latency_ms": 0, "churn_per_minute": 0}))
        .await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let outcome = h.refresh_now().await;
    assert_eq!(outcome["ok"], true, "{outcome}");
    let mut upstream: HashSet<String> = HashSet::new();
    let mut skip = 0;
    loop {
        let page = json_of(
            h.jc(
                reqwest::Method::GET,
                &format!("/api/systemusers?limit=100&skip={skip}&sort=_id"),
            )
            .send()
            .await
            .unwrap(),
        )
        .await;
        let results = page["results"].as_array().unwrap();
        upstream.extend(
            results
                .iter()
                .map(|u| u["_id"].as_str().unwrap().to_owned()),
        );
        skip += 100;
        if results.len() < 100 {
            break;
        }
    }
    let (served, total) = walk(&h, "Users", 200).await;
    let served: HashSet<String> = served.into_iter().collect();
    assert_eq!(total as usize, upstream.len());
    assert_eq!(served, upstream, "the snapshot is JumpCloud's directory");
    let stats = h.stats().await;
    assert_ne!(
        upstream.len(),
        1_500,
        "the console did change the directory: {stats}"
    );
}

#[tokio::test]
async fn a_refresh_costs_one_call_per_page_of_each_list() {
    let h = Harness::start(small_emulator(601, 50), |_| {}).await;
    h.wait_ready().await;
    h.reset_stats().await;
    let outcome = h.refresh_now().await;
    assert_eq!(outcome["ok"], true, "{outcome}");
    let stats = h.stats().await;
    let total = stats["total"].as_u64().unwrap();

    // What the lists hold, read from the emulator directly (after the stats were taken).
    let mut expected = pages(601);
    let groups: Vec<Value> = json_of(
        h.jc(reqwest::Method::GET, "/api/v2/usergroups?limit=100")
            .send()
            .await
            .unwrap(),
    )
    .await
    .as_array()
    .unwrap()
    .clone();
    expected += pages(groups.len() as u64);
    for g in &groups {
        let r = h
            .jc(
                reqwest::Method::GET,
                &format!(
                    "/api/v2/usergroups/{}/members?limit=1",
                    g["id"].as_str().unwrap()
                ),
            )
            .send()
            .await
            .unwrap();
        let n: u64 = r.headers()["x-total-count"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        expected += pages(n);
    }
    let dirs: Vec<Value> = json_of(
        h.jc(reqwest::Method::GET, "/api/v2/directories?limit=100")
            .send()
            .await
            .unwrap(),
    )
    .await
    .as_array()
    .unwrap()
    .clone();
    expected += pages(dirs.len() as u64);
    for d in &dirs {
        let base = match d["type"].as_str().unwrap() {
            "active_directory" => "activedirectories",
            "g_suite" => "gsuites",
            "office_365" => "office365s",
            _ => continue,
        };
        for target in ["user", "user_group"] {
            let r = h
                .jc(
                    reqwest::Method::GET,
                    &format!(
                        "/api/v2/{base}/{}/associations?targets={target}&limit=1",
                        d["id"].as_str().unwrap()
                    ),
                )
                .send()
                .await
                .unwrap();
            let n: u64 = r.headers()["x-total-count"]
                .to_str()
                .unwrap()
                .parse()
                .unwrap();
            expected += pages(n);
        }
    }
    assert_eq!(total, expected, "upstream calls for one refresh: {stats}");
    assert!(
        (40..=120).contains(&total),
        "about 70 calls expected, got {total}"
    );
    assert_eq!(outcome["calls"].as_u64(), Some(total));
}

#[tokio::test]
async fn a_refresh_that_fails_midway_publishes_nothing() {
    let h = Harness::start(small_emulator(120, 6), |_| {}).await;
    h.wait_ready().await;
    let before = h.get("/Users?count=1").send().await.unwrap();
    let version_before = before.headers()["x-snapshot-version"]
        .to_str()
        .unwrap()
        .to_string();
    h.faults(json!({"fail_next": {"count": 1000, "status": 502, "route": "GET /api/v2/usergroups/{id}/members"}}))
        .await;
    let outcome = h.refresh_now().await;
    assert_eq!(outcome["ok"], false, "{outcome}");
    let after = h.get("/Users?count=1").send().await.unwrap();
    assert_eq!(after.status(), 200);
    assert_eq!(
        after.headers()["x-snapshot-version"].to_str().unwrap(),
        version_before
    );
    let body = json_of(after).await;
    assert_eq!(body["totalResults"], 120);
}

#[tokio::test]
async fn before_the_first_snapshot_reads_are_503_with_retry_after() {
    let mut emu = small_emulator(10, 2);
    emu.faults.fail_rate = 1.0;
    let h = Harness::start(emu, |_| {}).await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let r = h.get("/Users").send().await.unwrap();
    assert_eq!(r.status(), 503);
    assert!(r.headers().contains_key("retry-after"));
    assert_eq!(r.headers()["content-type"], "application/scim+json");
    let body = json_of(r).await;
    assert_eq!(
        body["schemas"][0],
        "urn:ietf:params:scim:api:messages:2.0:Error"
    );
    assert_eq!(body["status"], "503");
    assert_eq!(h.readyz().await.0, 503);
    // Once JumpCloud answers, the service becomes ready.
    h.faults(json!({"fail_rate": 0.0})).await;
    h.wait_ready().await;
    assert_eq!(h.get("/Users").send().await.unwrap().status(), 200);
}

#[tokio::test]
async fn okta_lookups_and_paging_edges() {
    let h = Harness::start(small_emulator(40, 3), |c| c.paging.max_count = 25).await;
    h.wait_ready().await;
    let first = json_of(h.get("/Users?startIndex=1&count=1").send().await.unwrap()).await;
    assert_eq!(first["itemsPerPage"], 1);
    assert_eq!(first["startIndex"], 1);
    assert_eq!(first["totalResults"], 40);
    let user = &first["Resources"][0];
    for field in ["id", "userName", "active"] {
        assert!(user.get(field).is_some(), "{field} missing in {user}");
    }
    let user_name = user["userName"].as_str().unwrap();

    // Case-insensitive userName match (Okta probes with upper case).
    let q = format!(
        "/Users?filter={}",
        urlenc(&format!("userName eq \"{}\"", user_name.to_uppercase()))
    );
    let found = json_of(h.get(&q).send().await.unwrap()).await;
    assert_eq!(found["totalResults"], 1, "{found}");
    assert_eq!(found["Resources"][0]["id"], user["id"]);

    // No match: 200 and an empty list, never 404.
    let q = format!(
        "/Users?filter={}",
        urlenc("userName eq \"nobody-7f3a@example.invalid\"")
    );
    let r = h.get(&q).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let none = json_of(r).await;
    assert_eq!(none["totalResults"], 0);
    assert_eq!(none["Resources"], json!([]));

    // count=0: totals only. startIndex 0 or negative: 1. Beyond the end: empty. Above the maximum: capped.
    let z = json_of(h.get("/Users?count=0").send().await.unwrap()).await;
    assert_eq!(
        (z["totalResults"].as_u64(), z["itemsPerPage"].as_u64()),
        (Some(40), Some(0))
    );
    let s = json_of(h.get("/Users?startIndex=-5&count=2").send().await.unwrap()).await;
    assert_eq!(s["startIndex"], 1);
    assert_eq!(s["Resources"][0]["id"], user["id"]);
    let beyond = json_of(
        h.get("/Users?startIndex=500&count=10")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(beyond["totalResults"], 40);
    assert_eq!(beyond["Resources"], json!([]));
    let capped = json_of(h.get("/Users?count=1000").send().await.unwrap()).await;
    assert_eq!(capped["itemsPerPage"], 25);
    // No count at all: every match (SailPoint may not page).
    let all = json_of(h.get("/Users").send().await.unwrap()).await;
    assert_eq!(all["itemsPerPage"], 40);

    // Projection: id and schemas always come back.
    let p = json_of(
        h.get("/Users?count=1&attributes=userName")
            .send()
            .await
            .unwrap(),
    )
    .await;
    let r0 = p["Resources"][0].as_object().unwrap();
    assert!(r0.contains_key("id") && r0.contains_key("schemas") && r0.contains_key("userName"));
    assert!(
        !r0.contains_key("emails") && !r0.contains_key("name"),
        "{r0:?}"
    );
    let x = json_of(
        h.get("/Users?count=1&excludedAttributes=groups,emails")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert!(x["Resources"][0].get("emails").is_none() && x["Resources"][0].get("id").is_some());

    // A broken filter is a 400 invalidFilter, not a 500.
    let bad = h
        .get(&format!("/Users?filter={}", urlenc("userName eq")))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    assert_eq!(json_of(bad).await["scimType"], "invalidFilter");
}

#[tokio::test]
async fn entra_and_sailpoint_filters() {
    let h = Harness::start(small_emulator(30, 4), |_| {}).await;
    h.wait_ready().await;
    let all = json_of(h.get("/Users").send().await.unwrap()).await;
    let u = all["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["groups"].as_array().is_some_and(|g| g.len() > 1))
        .expect("a user in a group")
        .clone();
    let email = u["emails"][0]["value"].as_str().unwrap();
    // Entra's non-RFC form and the RFC form.
    for f in [
        format!("emails[type eq \"work\"].value eq \"{email}\""),
        format!(
            "emails[type eq \"work\" and value eq \"{}\"]",
            email.to_uppercase()
        ),
        format!("emails.value eq \"{email}\""),
    ] {
        let r = json_of(
            h.get(&format!("/Users?filter={}", urlenc(&f)))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(r["totalResults"], 1, "{f}: {r}");
        assert_eq!(r["Resources"][0]["id"], u["id"]);
    }
    // SailPoint's admin-entered filters use odd casing.
    let prefix: String = u["userName"].as_str().unwrap().chars().take(3).collect();
    let r = json_of(
        h.get(&format!(
            "/Users?filter={}",
            urlenc(&format!("UserName sw \"{prefix}\""))
        ))
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert!(r["totalResults"].as_u64().unwrap() >= 1);
    for it in r["Resources"].as_array().unwrap() {
        assert!(
            it["userName"]
                .as_str()
                .unwrap()
                .to_lowercase()
                .starts_with(&prefix.to_lowercase())
        );
    }
    // members[value eq …] on Groups: exactly the groups listing the user.
    let uid = u["id"].as_str().unwrap();
    let r = json_of(
        h.get(&format!(
            "/Groups?filter={}&excludedAttributes=members",
            urlenc(&format!("members[value eq \"{uid}\"]"))
        ))
        .send()
        .await
        .unwrap(),
    )
    .await;
    let got: HashSet<String> = r["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["id"].as_str().unwrap().to_string())
        .collect();
    let want: HashSet<String> = u["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["value"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(got, want);
    assert!(r["Resources"][0].get("members").is_none());
    // displayName eq on Groups, case-insensitively.
    let g0 = &u["groups"][0];
    let name = g0["display"].as_str().unwrap().to_uppercase();
    let r = json_of(
        h.get(&format!(
            "/Groups?filter={}",
            urlenc(&format!("displayName eq \"{name}\""))
        ))
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(r["totalResults"], 1);
    // POST /.search answers like GET.
    let r = json_of(
        h.post(
            "/Users/.search",
            &json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
            "filter": format!("id eq \"{uid}\""), "attributes": ["userName"]}),
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(r["totalResults"], 1);
    assert!(r["Resources"][0].get("emails").is_none());
}

#[tokio::test]
async fn get_by_id_carries_etag_and_snapshot_headers() {
    let h = Harness::start(small_emulator(10, 2), |_| {}).await;
    h.wait_ready().await;
    let list = json_of(h.get("/Users?count=1").send().await.unwrap()).await;
    let id = list["Resources"][0]["id"].as_str().unwrap();
    let r = h.get(&format!("/Users/{id}")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers().contains_key("x-snapshot-version"));
    assert!(r.headers().contains_key("x-snapshot-age"));
    let etag = r.headers()["etag"].to_str().unwrap().to_string();
    let body = json_of(r).await;
    assert_eq!(body["meta"]["version"], etag);
    assert_eq!(body["meta"]["resourceType"], "User");
    assert!(
        body["meta"]["location"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/scim/v2/Users/{id}"))
    );
    for k in ["created", "lastModified"] {
        assert!(
            body["meta"][k]
                .as_str()
                .unwrap()
                .parse::<jiff::Timestamp>()
                .is_ok()
        );
    }
    let r = h
        .get(&format!("/Users/{id}"))
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 304);
    // Delta aggregation: lastModified filters compare as instants.
    let lm = body["meta"]["lastModified"].as_str().unwrap();
    let f = |op: &str| {
        format!(
            "/Users?filter={}",
            urlenc(&format!("meta.lastModified {op} \"{lm}\""))
        )
    };
    let after = json_of(h.get(&f("gt")).send().await.unwrap()).await;
    let since = json_of(h.get(&f("ge")).send().await.unwrap()).await;
    assert!(after["totalResults"].as_u64().unwrap() < since["totalResults"].as_u64().unwrap());
    assert!(
        since["Resources"]
            .as_array()
            .unwrap()
            .iter()
            .any(|u| u["id"] == id)
    );
    assert!(
        !after["Resources"]
            .as_array()
            .unwrap()
            .iter()
            .any(|u| u["id"] == id)
    );
    // Answered from the time index, a delta is the same as the same filter scanned: `not (… le …)` is `gt`
    // but no index serves it.
    let scanned = json_of(
        h.get(&format!(
            "/Users?filter={}",
            urlenc(&format!("not (meta.lastModified le \"{lm}\")"))
        ))
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(scanned["totalResults"], after["totalResults"]);
    assert_eq!(scanned["Resources"], after["Resources"]);
    assert_eq!(h.get("/Me").send().await.unwrap().status(), 501);
    let r = h
        .get("/Users/000000000000000000000000")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let e = json_of(r).await;
    assert_eq!(e["status"], "404");
    assert!(!e["detail"].as_str().unwrap().is_empty());
}

#[tokio::test]
async fn discovery_documents_and_errors() {
    let h = Harness::start(small_emulator(5, 2), |_| {}).await;
    h.wait_ready().await;
    let r = h.get("/ServiceProviderConfig").send().await.unwrap();
    assert!(
        r.headers().contains_key("x-snapshot-version")
            && r.headers().contains_key("x-snapshot-age")
    );
    let spc = json_of(r).await;
    assert_eq!(spc["pagination"]["cursor"], true);
    assert_eq!(spc["patch"]["supported"], true);
    assert_eq!(spc["filter"]["supported"], true);
    let rts = json_of(h.get("/ResourceTypes").send().await.unwrap()).await;
    assert_eq!(rts["totalResults"], 2);
    let user_rt = json_of(h.get("/ResourceTypes/User").send().await.unwrap()).await;
    assert_eq!(user_rt["endpoint"], "/Users");
    let schemas = json_of(h.get("/Schemas").send().await.unwrap()).await;
    assert!(schemas["totalResults"].as_u64().unwrap() >= 4);
    let core = h
        .get("/Schemas/urn:ietf:params:scim:schemas:core:2.0:User")
        .send()
        .await
        .unwrap();
    assert_eq!(core.status(), 200);
    assert_eq!(
        h.get("/Schemas/urn:nope").send().await.unwrap().status(),
        404
    );
    let r = h
        .post("/ServiceProviderConfig", &json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 405);
    assert_eq!(json_of(r).await["status"], "405");
}

#[tokio::test]
async fn credentials_are_required_and_scoped() {
    let h = Harness::start(small_emulator(5, 2), |_| {}).await;
    h.wait_ready().await;
    let r = h.http.get(h.scim("/Users")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(json_of(r).await["status"], "401");
    let r = h
        .http
        .get(h.scim("/Users"))
        .bearer_auth("wrong-token")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = h
        .http
        .get(h.scim("/Users"))
        .bearer_auth(READ_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = h
        .http
        .post(format!("{}/admin/refresh", h.base))
        .bearer_auth(READ_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(
        h.http
            .get(format!("{}/healthz", h.base))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}

#[tokio::test]
async fn directories_are_entitlements_and_groups() {
    let h = Harness::start(small_emulator(200, 6), |_| {}).await;
    h.wait_ready().await;
    let ext = "urn:jumpcloud-scim:schemas:extension:jumpcloud:2.0:Group";
    let groups = json_of(
        h.get(&format!("/Groups?attributes=displayName,members,{ext}"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    let dir_groups: Vec<&Value> = groups["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|g| g[ext]["groupType"] != "user_group")
        .collect();
    assert!(
        dir_groups
            .iter()
            .any(|g| g[ext]["groupType"] == "active_directory")
    );
    assert!(dir_groups.iter().any(|g| g[ext]["groupType"] == "g_suite"));
    let users = json_of(h.get("/Users").send().await.unwrap()).await;
    for dg in dir_groups {
        let kind = dg[ext]["groupType"].as_str().unwrap();
        let holders: HashSet<&str> = dg["members"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["value"].as_str().unwrap())
            .collect();
        let entitled: HashSet<&str> = users["Resources"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|u| {
                u["entitlements"].as_array().is_some_and(|es| {
                    es.iter()
                        .any(|e| e["type"] == kind && e["value"] == dg["id"])
                })
            })
            .map(|u| u["id"].as_str().unwrap())
            .collect();
        assert_eq!(holders, entitled, "{kind}");
        assert!(!holders.is_empty());
    }
}

fn urlenc(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[tokio::test]
async fn a_walk_is_pinned_to_the_version_its_first_page_saw() {
    let h = Harness::start(small_emulator(60, 3), |_| {}).await;
    h.wait_ready().await;
    // First page of an index walk and of a cursor walk.
    let first = json_of(
        h.get("/Users?startIndex=1&count=10&sortBy=userName")
            .send()
            .await
            .unwrap(),
    )
    .await;
    let cursor_first = json_of(
        h.get("/Users?cursor=&count=10&sortBy=userName")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(first["totalResults"], 60);
    // A user who sorts first by userName is inserted upstream and a refresh publishes it: without the pin,
    // every later page would shift by one.
    let r = h
        .jc(reqwest::Method::POST, "/api/systemusers")
        .json(&json!({"username": "aaa.inserted", "email": "aaa.inserted@example.com"}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    assert_eq!(h.refresh_now().await["ok"], true);
    // The rest of the walk still reads the first page's version: every user exactly once.
    let mut ids: Vec<String> = first["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["id"].as_str().unwrap().to_string())
        .collect();
    let mut start = 11;
    while start <= 60 {
        let page = json_of(
            h.get(&format!(
                "/Users?startIndex={start}&count=10&sortBy=userName"
            ))
            .send()
            .await
            .unwrap(),
        )
        .await;
        assert_eq!(page["totalResults"], 60, "a later page saw the new version");
        ids.extend(
            page["Resources"]
                .as_array()
                .unwrap()
                .iter()
                .map(|u| u["id"].as_str().unwrap().to_string()),
        );
        start += 10;
    }
    let unique: HashSet<&String> = ids.iter().collect();
    assert_eq!((ids.len(), unique.len()), (60, 60));
    // The cursor walk likewise.
    let mut cids: Vec<String> = cursor_first["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["id"].as_str().unwrap().to_string())
        .collect();
    let mut next = cursor_first["nextCursor"].as_str().map(String::from);
    assert!(cursor_first.get("startIndex").is_none());
    while let Some(c) = next {
        let page = json_of(
            h.get(&format!("/Users?cursor={c}&count=10&sortBy=userName"))
                .send()
                .await
                .unwrap(),
        )
        .await;
        cids.extend(
            page["Resources"]
                .as_array()
                .unwrap()
                .iter()
                .map(|u| u["id"].as_str().unwrap().to_string()),
        );
        next = page["nextCursor"].as_str().map(String::from);
    }
    assert_eq!(
        cids, ids,
        "the cursor walk saw the same version, in the same order"
    );
    // A new walk sees the new version.
    let again = json_of(
        h.get("/Users?startIndex=1&count=10&sortBy=userName")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(again["totalResults"], 61);
    assert_eq!(again["Resources"][0]["userName"], "aaa.inserted");
    // A cursor this service did not issue is refused.
    let bad = h.get("/Users?cursor=garbage").send().await.unwrap();
    assert_eq!(bad.status(), 400);
    assert_eq!(json_of(bad).await["scimType"], "invalidCursor");
}

#[tokio::test]
async fn a_shrunken_refresh_is_held_back_until_accepted() {
    let h = Harness::start(small_emulator(60, 3), |_| {}).await;
    h.wait_ready().await;
    let users = json_of(h.get("/Users").send().await.unwrap()).await;
    let ids: Vec<String> = users["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["id"].as_str().unwrap().to_string())
        .collect();
    // Deletions made through us are not shrinkage.
    for id in &ids[..8] {
        let r = h
            .http
            .delete(h.scim(&format!("/Users/{id}")))
            .bearer_auth(crate::support::TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 204);
    }
    assert_eq!(h.refresh_now().await["ok"], true);
    // Half the directory vanishes upstream.
    for id in &ids[8..38] {
        h.delete_upstream_user(id).await;
    }
    let outcome = h.refresh_now().await;
    assert_eq!(
        (outcome["ok"].as_bool(), outcome["held_back"].as_bool()),
        (Some(false), Some(true)),
        "{outcome}"
    );
    let served = json_of(h.get("/Users?count=0").send().await.unwrap()).await;
    assert_eq!(
        served["totalResults"], 52,
        "the shrunken refresh is not published"
    );
    let ready = h.readyz().await.1;
    assert_eq!(ready["held_back"]["users"], 22, "{ready}");
    let metrics = h.text("/metrics").await;
    assert!(
        metrics.lines().any(|l| l == "jcscim_refresh_held_back 1"),
        "{metrics}"
    );
    assert!(metrics.contains("jcscim_refresh_total{outcome=\"held_back\"} 1"));
    // A read credential may not accept it; a provision credential may.
    let r = h
        .http
        .post(format!("{}/admin/accept-shrink", h.base))
        .bearer_auth(READ_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = h
        .http
        .post(format!("{}/admin/accept-shrink", h.base))
        .bearer_auth(crate::support::TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let served = json_of(h.get("/Users?count=0").send().await.unwrap()).await;
    assert_eq!(served["totalResults"], 22);
    let r = h
        .http
        .post(format!("{}/admin/accept-shrink", h.base))
        .bearer_auth(crate::support::TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 409, "nothing left to accept");
    // The accepted counts are the new mark: the next refresh publishes.
    assert_eq!(h.refresh_now().await["ok"], true);
}

/// A list is streamed from the stored bytes: unprojected it carries its exact length, projected it is
/// chunked; either way it is one JSON document whose `itemsPerPage` counts its `Resources`.
#[tokio::test]
async fn lists_are_streamed_whole_with_their_length_when_known() {
    let h = Harness::start(small_emulator(40, 3), |_| {}).await;
    h.wait_ready().await;
    for (path, length_known) in [
        ("/Users", true),
        ("/Users?count=7&startIndex=3", true),
        ("/Groups", true),
        ("/Users?attributes=userName", false),
        (
            "/Users?filter=userName%20pr&excludedAttributes=emails",
            false,
        ),
        ("/Users?count=0", true),
    ] {
        let r = h.get(path).send().await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
        let declared = r
            .headers()
            .get("content-length")
            .map(|v| v.to_str().unwrap().parse::<usize>().unwrap());
        let bytes = r.bytes().await.unwrap();
        match declared {
            Some(n) => assert_eq!(n, bytes.len(), "{path}"),
            None => assert!(!length_known, "{path}: no Content-Length"),
        }
        let body: Value = serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{path}: {e}"));
        let resources = body["Resources"].as_array().unwrap();
        assert_eq!(body["itemsPerPage"], resources.len(), "{path}");
        assert!(resources.iter().all(Value::is_object), "{path}");
    }
    let all = json_of(h.get("/Users").send().await.unwrap()).await;
    assert_eq!(all["totalResults"], 40);
    assert_eq!(all["Resources"].as_array().unwrap().len(), 40);
}
