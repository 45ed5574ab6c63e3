//! What an outside reviewer checks first: references by `value` and `$ref`, refusals named by what they
//! concern, discovery that matches behaviour, strict credentials, bounded input and bounded connections.

use std::time::Duration;

use tokio::time::Instant;

use reqwest::Method;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::{Harness, TOKEN, json_of, small_emulator};

const ENT: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

fn user(name: &str) -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": name,
        "emails": [{"value": format!("{name}@example.com"), "type": "work", "primary": true}],
    })
}

fn with_manager(name: &str, manager: Value) -> Value {
    let mut u = user(name);
    u[ENT] = json!({"manager": manager});
    u["schemas"].as_array_mut().unwrap().push(Value::from(ENT));
    u
}

async fn send(h: &Harness, method: Method, path: &str, body: &Value) -> reqwest::Response {
    h.http
        .request(method, h.scim(path))
        .bearer_auth(TOKEN)
        .header("content-type", "application/scim+json")
        .body(body.to_string())
        .send()
        .await
        .unwrap()
}

async fn error_of(r: reqwest::Response, status: u16, scim_type: &str) -> String {
    assert_eq!(r.status(), status);
    let v = json_of(r).await;
    assert_eq!(v["scimType"], scim_type, "{v}");
    v["detail"].as_str().unwrap().to_string()
}

fn patch(ops: Value) -> Value {
    json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": ops})
}

#[tokio::test]
async fn references_by_value_ref_or_both() {
    let h = Harness::start(small_emulator(5, 2), |_| {}).await;
    h.wait_ready().await;
    let r = send(&h, Method::POST, "/Users", &user("peer.one")).await;
    assert_eq!(r.status(), 201);
    let peer = json_of(r).await;
    let (pid, uri) = (
        peer["id"].as_str().unwrap().to_string(),
        peer["meta"]["location"].as_str().unwrap().to_string(),
    );
    let relative = format!("/scim/v2/Users/{pid}");
    for (i, manager) in [
        json!({"$ref": uri}),
        json!({"value": pid}),
        json!({"value": pid, "$ref": uri}),
        json!({"$ref": relative}),
    ]
    .into_iter()
    .enumerate()
    {
        let r = send(
            &h,
            Method::POST,
            "/Users",
            &with_manager(&format!("report.{i}"), manager.clone()),
        )
        .await;
        assert_eq!(r.status(), 201, "{manager}");
        let u = json_of(r).await;
        assert_eq!(
            u[ENT]["manager"],
            json!({"value": pid, "$ref": uri}),
            "{manager}"
        );
    }
    let other = json_of(h.get("/Users?count=1").send().await.unwrap()).await["Resources"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let detail = error_of(
        send(
            &h,
            Method::POST,
            "/Users",
            &with_manager("report.x", json!({"value": other, "$ref": uri})),
        )
        .await,
        400,
        "invalidValue",
    )
    .await;
    assert!(detail.contains("different users"), "{detail}");
    let detail = error_of(
        send(
            &h,
            Method::POST,
            "/Users",
            &with_manager(
                "report.y",
                json!({"$ref": format!("https://elsewhere.example/scim/v2/Users/{pid}")}),
            ),
        )
        .await,
        400,
        "invalidValue",
    )
    .await;
    assert!(detail.contains("manager.$ref"), "{detail}");

    // Group members by $ref, in every dialect.
    let r = send(
        &h,
        Method::POST,
        "/Groups",
        &json!({"displayName": "By Ref", "members": [{"$ref": uri}]}),
    )
    .await;
    assert_eq!(r.status(), 201);
    let g = json_of(r).await;
    let gid = g["id"].as_str().unwrap().to_string();
    assert_eq!(g["members"], json!([{"value": pid, "$ref": uri}]));
    let second = json_of(send(&h, Method::POST, "/Users", &user("peer.two")).await).await;
    let second_uri = second["meta"]["location"].as_str().unwrap().to_string();
    let r = send(
        &h,
        Method::PATCH,
        &format!("/Groups/{gid}"),
        &patch(json!([{"op": "add", "path": "members", "value": [{"$ref": second_uri}]}])),
    )
    .await;
    assert_eq!(r.status(), 204);
    let g = json_of(h.get(&format!("/Groups/{gid}")).send().await.unwrap()).await;
    assert_eq!(g["members"].as_array().unwrap().len(), 2);
    let r = send(
        &h,
        Method::PUT,
        &format!("/Groups/{gid}"),
        &json!({"displayName": "By Ref", "members": [{"value": second["id"], "$ref": second_uri}]}),
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        json_of(r).await["members"],
        json!([{"value": second["id"], "$ref": second_uri}])
    );
    let detail = error_of(
        send(
            &h,
            Method::PATCH,
            &format!("/Groups/{gid}"),
            &patch(json!([{"op": "add", "path": "members", "value": [{"value": pid, "$ref": second_uri}]}])),
        )
        .await,
        400,
        "invalidValue",
    )
    .await;
    assert!(detail.contains("members"), "{detail}");
}

#[tokio::test]
async fn unknown_references_are_refused_before_anything_goes_upstream() {
    let h = Harness::start(small_emulator(5, 2), |_| {}).await;
    h.wait_ready().await;
    h.reset_stats().await;
    let detail = error_of(
        send(
            &h,
            Method::POST,
            "/Users",
            &with_manager("orphan", json!({"value": "no-such-user"})),
        )
        .await,
        400,
        "invalidValue",
    )
    .await;
    assert!(
        detail.contains("manager")
            && detail.contains("no-such-user")
            && !detail.contains("password"),
        "{detail}"
    );
    let stats = h.stats().await;
    assert!(
        stats["routes"].get("POST /api/systemusers").is_none(),
        "nothing was sent: {stats}"
    );
    let id = json_of(h.get("/Users?count=1").send().await.unwrap()).await["Resources"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let mut body = json_of(h.get(&format!("/Users/{id}")).send().await.unwrap()).await;
    body[ENT] = json!({"manager": {"value": "no-such-user"}});
    let detail = error_of(
        send(&h, Method::PUT, &format!("/Users/{id}"), &body).await,
        400,
        "invalidValue",
    )
    .await;
    assert!(detail.contains("no-such-user"), "{detail}");
    let gid = json_of(h.get("/Groups?count=1").send().await.unwrap()).await["Resources"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let detail = error_of(
        send(
            &h,
            Method::PATCH,
            &format!("/Groups/{gid}"),
            &patch(json!([{"op": "add", "path": "members", "value": [{"value": "ghost"}]}])),
        )
        .await,
        400,
        "invalidValue",
    )
    .await;
    assert!(
        detail.contains("members") && detail.contains("ghost"),
        "{detail}"
    );
    // Removing a member that is not there succeeds: clients retry.
    let r = send(
        &h,
        Method::PATCH,
        &format!("/Groups/{gid}"),
        &patch(json!([{"op": "remove", "path": "members[value eq \"ghost\"]"}])),
    )
    .await;
    assert_eq!(r.status(), 204);
    let stats = h.stats().await;
    assert!(
        stats["routes"].get("PUT /api/systemusers/{id}").is_none()
            && stats["routes"]
                .get("POST /api/v2/usergroups/{id}/members")
                .is_none(),
        "{stats}"
    );
}

#[tokio::test]
async fn upstream_refusals_are_named_by_what_they_concern() {
    let h = Harness::start(small_emulator(5, 2), |_| {}).await;
    h.wait_ready().await;
    let mut weak = user("weak.password");
    weak["password"] = json!("a");
    let detail = error_of(
        send(&h, Method::POST, "/Users", &weak).await,
        400,
        "invalidValue",
    )
    .await;
    assert!(
        detail.starts_with("JumpCloud's password policy refused the password"),
        "{detail}"
    );
    // A user JumpCloud holds but the snapshot does not know yet: the create's refusal is resolved by lookup.
    let r = h
        .jc(Method::POST, "/api/systemusers")
        .json(&json!({"username": "console.made", "email": "console.made@example.com"}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    let detail = error_of(
        send(&h, Method::POST, "/Users", &user("console.made")).await,
        409,
        "uniqueness",
    )
    .await;
    assert!(detail.contains("console.made"), "{detail}");
}

#[tokio::test]
async fn discovery_tells_what_the_service_does() {
    let phc = jumpcloud_scim::auth::hash_password("iiq-password").unwrap();
    let h = Harness::start(small_emulator(5, 2), move |c| {
        c.paging.max_count = 2;
        c.paging.max_results = 4;
        c.paging.pin_ttl_s = 77;
        c.auth.basic = vec![jumpcloud_scim::config::BasicConfig {
            username: "iiq".into(),
            password_hash: phc,
            scope: jumpcloud_scim::auth::Scope::Provision,
        }];
    })
    .await;
    h.wait_ready().await;
    let spc = json_of(h.get("/ServiceProviderConfig").send().await.unwrap()).await;
    assert_eq!(spc["filter"]["maxResults"], 4);
    assert_eq!(spc["pagination"]["maxPageSize"], 2);
    assert_eq!(spc["pagination"]["cursorTimeout"], 77);
    let types: Vec<&str> = spc["authenticationSchemes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["type"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["oauthbearertoken", "httpbasic"]);

    // maxResults: a list without count holds at most that many; totalResults counts them all.
    let all = json_of(h.get("/Users").send().await.unwrap()).await;
    assert_eq!(all["itemsPerPage"], 4);
    assert_eq!(all["Resources"].as_array().unwrap().len(), 4);
    assert!(all["totalResults"].as_u64().unwrap() >= 5);
    // maxPageSize: a larger count is capped.
    let page = json_of(h.get("/Users?count=50").send().await.unwrap()).await;
    assert_eq!(page["Resources"].as_array().unwrap().len(), 2);
    // sort.supported.
    assert_eq!(spc["sort"]["supported"], true);
    let sorted = json_of(
        h.get("/Users?sortBy=userName&sortOrder=descending&count=2")
            .send()
            .await
            .unwrap(),
    )
    .await;
    let names: Vec<&str> = sorted["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["userName"].as_str().unwrap())
        .collect();
    assert!(names[0] >= names[1], "{names:?}");
    // etag.supported.
    assert_eq!(spc["etag"]["supported"], true);
    let id = sorted["Resources"][0]["id"].as_str().unwrap().to_string();
    let r = h.get(&format!("/Users/{id}")).send().await.unwrap();
    let etag = r.headers()["etag"].to_str().unwrap().to_string();
    let r = h
        .get(&format!("/Users/{id}"))
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 304);
    // patch.supported and changePassword.supported.
    assert_eq!(spc["patch"]["supported"], true);
    assert_eq!(spc["changePassword"]["supported"], true);
    let r = send(
        &h,
        Method::PATCH,
        &format!("/Users/{id}"),
        &patch(json!([{"op": "replace", "path": "password", "value": "A-much-longer-Passw0rd!"}])),
    )
    .await;
    assert_eq!(r.status(), 200);
    // bulk.supported is false: /Bulk says so.
    assert_eq!(spc["bulk"]["supported"], false);
    let r = send(&h, Method::POST, "/Bulk", &json!({})).await;
    assert_eq!(r.status(), 501);
    // httpbasic works with the argon2 credential.
    let r = h
        .http
        .get(h.scim("/Users?count=1"))
        .basic_auth("iiq", Some("iiq-password"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn failed_authentication_is_slowed_per_name() {
    let phc = jumpcloud_scim::auth::hash_password("right-password").unwrap();
    let h = Harness::start(small_emulator(3, 1), move |c| {
        c.limits.auth_failures_burst = 3;
        c.limits.auth_failures_per_minute = 1;
        c.auth.basic = vec![jumpcloud_scim::config::BasicConfig {
            username: "iiq".into(),
            password_hash: phc,
            scope: jumpcloud_scim::auth::Scope::Provision,
        }];
    })
    .await;
    h.wait_ready().await;
    let basic = |pw: &'static str| {
        h.http
            .get(h.scim("/Users?count=1"))
            .basic_auth("iiq", Some(pw))
            .send()
    };
    for _ in 0..3 {
        assert_eq!(basic("wrong").await.unwrap().status(), 401);
    }
    let r = basic("wrong").await.unwrap();
    assert_eq!(r.status(), 429);
    let wait: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&wait), "{wait}");
    // Refused whatever it presents now, until its bucket refills.
    assert_eq!(basic("right-password").await.unwrap().status(), 429);
    // Another credential, from the same address, is not affected.
    assert_eq!(h.get("/Users?count=1").send().await.unwrap().status(), 200);
}

#[tokio::test]
async fn input_limits_answer_at_once_with_the_limit_named() {
    let h = Harness::start(small_emulator(5, 2), |_| {}).await;
    h.wait_ready().await;
    let gid = json_of(h.get("/Groups?count=1").send().await.unwrap()).await["Resources"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let ops: Vec<Value> = (0..10_000)
        .map(|i| json!({"op": "add", "path": "members", "value": [{"value": format!("u{i}")}]}))
        .collect();
    let big = patch(Value::Array(ops));
    let started = Instant::now();
    let group_path = format!("/Groups/{gid}");
    let (r, health) = tokio::join!(
        send(&h, Method::PATCH, &group_path, &big),
        h.http.get(format!("{}/healthz", h.base)).send()
    );
    let detail = error_of(r, 400, "invalidValue").await;
    assert!(detail.contains("limits.patch_operations"), "{detail}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(health.unwrap().status(), 200);

    let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
    let r = h
        .http
        .post(h.scim("/Users"))
        .bearer_auth(TOKEN)
        .header("content-type", "application/scim+json")
        .body(format!("{{\"userName\": \"x\", \"emails\": {deep}}}"))
        .send()
        .await
        .unwrap();
    let detail = error_of(r, 400, "invalidSyntax").await;
    assert!(detail.contains("limits.json_depth"), "{detail}");
    for path in ["/Users", "/Groups"] {
        let detail = error_of(
            send(&h, Method::POST, path, &json!([{"userName": "x"}])).await,
            400,
            "invalidSyntax",
        )
        .await;
        assert!(detail.contains("JSON object"), "{path}: {detail}");
    }
    // One rule for counts, by query and by body.
    let r = h
        .get("/Users?count=99999999999999999999")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = send(
        &h,
        Method::POST,
        "/Users/.search",
        &json!({"count": 99999999999999999999u128 as f64}),
    )
    .await;
    assert_eq!(r.status(), 200);
    // A URI past limits.uri_bytes is a SCIM 414 pointing at .search.
    let r = h
        .get(&format!(
            "/Users?filter=userName%20eq%20%22{}%22",
            "a".repeat(20_000)
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 414);
    assert_eq!(r.headers()["content-type"], "application/scim+json");
    let detail = json_of(r).await["detail"].as_str().unwrap().to_string();
    assert!(
        detail.contains("limits.uri_bytes") && detail.contains(".search"),
        "{detail}"
    );
    // Details quote a short excerpt of the input, never all of it.
    let cursor = "c".repeat(15_000);
    let r = h
        .get(&format!("/Users?cursor={cursor}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let detail = json_of(r).await["detail"].as_str().unwrap().to_string();
    assert!(detail.len() < 1_200, "{} characters", detail.len());
    // A JumpCloud user holds two email addresses; a third is refused, not dropped.
    let three = json!({"userName": "three.mails", "emails": [
        {"value": "a@example.com", "primary": true}, {"value": "b@example.com"}, {"value": "c@example.com"}]});
    let detail = error_of(
        send(&h, Method::POST, "/Users", &three).await,
        400,
        "invalidValue",
    )
    .await;
    assert!(detail.contains("two"), "{detail}");
    let uid = json_of(h.get("/Users?count=1").send().await.unwrap()).await["Resources"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let r = send(
        &h,
        Method::PATCH,
        &format!("/Users/{uid}"),
        &patch(json!([{"op": "add", "path": "emails", "value": [
            {"value": "x1@example.net", "type": "other"}, {"value": "x2@example.net", "type": "other"}]}])),
    )
    .await;
    let detail = error_of(r, 400, "invalidValue").await;
    assert!(detail.contains("emails"), "{detail}");
}

#[tokio::test]
async fn slow_and_idle_connections_are_cut_off_and_the_cap_answers() {
    let h = Harness::start(small_emulator(3, 1), |c| {
        c.limits.header_read_timeout_s = 1;
        c.limits.idle_timeout_s = 2;
        c.limits.max_connections = 6;
    })
    .await;
    h.wait_ready().await;
    let addr = h.base.trim_start_matches("http://").to_string();
    // A client that starts a request and never finishes its headers is cut off.
    let mut slow = tokio::net::TcpStream::connect(&addr).await.unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let started = Instant::now();
    let mut buf = [0u8; 1024];
    let n = tokio::time::timeout(Duration::from_secs(10), slow.read(&mut buf))
        .await
        .expect("the server closes a slow-header connection")
        .unwrap_or(0);
    let said = String::from_utf8_lossy(&buf[..n]).to_string();
    assert!(n == 0 || said.starts_with("HTTP/1.1 408"), "{said}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );

    // Connections over the cap are answered, not left to fail accept. (First the test client's pooled
    // connections fall idle and are closed.)
    tokio::time::sleep(Duration::from_secs(4)).await;
    let mut idle = Vec::new();
    for _ in 0..6 {
        idle.push(tokio::net::TcpStream::connect(&addr).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut over = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), over.read_to_end(&mut answer))
        .await
        .expect("the cap answers at once")
        .unwrap();
    let answer = String::from_utf8_lossy(&answer).to_string();
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(answer.contains("limits.max_connections") && answer.contains("application/scim+json"));
    // Idle connections are closed after the idle timeout; then reads work again.
    for mut c in idle {
        let mut b = Vec::new();
        tokio::time::timeout(Duration::from_secs(10), c.read_to_end(&mut b))
            .await
            .expect("an idle connection is closed")
            .ok();
        let said = String::from_utf8_lossy(&b).to_string();
        assert!(b.is_empty() || said.starts_with("HTTP/1.1 408"), "{said}");
    }
    let r = h.get("/Users?count=1").send().await.unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn a_base_url_with_users_appended_is_named_in_the_404() {
    let h = Harness::start(small_emulator(3, 1), |_| {}).await;
    h.wait_ready().await;
    for path in [
        "/Users/Users",
        "/Users/Users?filter=userName%20eq%20%22a%22",
        "/Users/ServiceProviderConfig",
        "/Users/Users/abc",
    ] {
        let r = h.get(path).send().await.unwrap();
        assert_eq!(r.status(), 404, "{path}");
        let detail = json_of(r).await["detail"].as_str().unwrap().to_string();
        assert!(
            detail.contains("must end in /scim/v2") || detail.contains("should end in /scim/v2"),
            "{path}: {detail}"
        );
    }
    let detail = json_of(h.get("/Users/no-such-id").send().await.unwrap()).await["detail"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(!detail.contains("/scim/v2"), "{detail}");
}
