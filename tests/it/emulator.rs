//! The JumpCloud emulator over real sockets: envelopes, paging, filters, the user and group rules, the graph,
//! faults, stats, multi-tenancy and the seeded organisation. Each test starts its own emulator on
//! 127.0.0.1:0 with small sizes.

use std::collections::BTreeSet;

use jumpcloud_scim::emulator::{self, EmulatorConfig, FaultConfig, RunningEmulator};
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};

const KEY: &str = "test-key";

fn config(users: usize, groups: usize) -> EmulatorConfig {
    EmulatorConfig {
        api_key: KEY.into(),
        users,
        groups,
        seed: 7,
        multi_tenant: false,
        faults: FaultConfig::default(),
    }
}

/// One emulator and a client that sends the API key.
struct Emu {
    server: RunningEmulator,
    http: reqwest::Client,
}

/// Status, headers and body (JSON, or the text as a JSON string when it is not JSON).
struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Value,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    fn total(&self) -> usize {
        self.header("x-total-count")
            .and_then(|v| v.parse().ok())
            .expect("x-total-count")
    }

    fn items(&self) -> &Vec<Value> {
        self.body.as_array().expect("a bare JSON array")
    }

    fn results(&self) -> &Vec<Value> {
        self.body["results"].as_array().expect("a v1 envelope")
    }
}

impl Emu {
    async fn start(config: EmulatorConfig) -> Self {
        let server = emulator::spawn(config).await.expect("emulator starts");
        let http = reqwest::Client::builder()
            .no_proxy()
            .build()
            .expect("client");
        Self { server, http }
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

    async fn get(&self, path: &str, query: &[(&str, &str)]) -> Answer {
        let rb = self
            .http
            .get(self.url(path))
            .header("x-api-key", KEY)
            .query(query);
        self.send(rb).await
    }

    async fn post(&self, path: &str, body: Value) -> Answer {
        self.send(
            self.http
                .post(self.url(path))
                .header("x-api-key", KEY)
                .json(&body),
        )
        .await
    }

    async fn put(&self, path: &str, body: Value) -> Answer {
        self.send(
            self.http
                .put(self.url(path))
                .header("x-api-key", KEY)
                .json(&body),
        )
        .await
    }

    async fn delete(&self, path: &str, query: &[(&str, &str)]) -> Answer {
        let rb = self
            .http
            .delete(self.url(path))
            .header("x-api-key", KEY)
            .query(query);
        self.send(rb).await
    }

    async fn faults(&self, patch: Value) -> Answer {
        self.send(self.http.put(self.url("/__emulator/faults")).json(&patch))
            .await
    }

    async fn stats(&self) -> Value {
        self.send(self.http.get(self.url("/__emulator/stats")))
            .await
            .body
    }

    /// Every user, walking `sort=_id` pages of 100.
    async fn all_users(&self) -> Vec<Value> {
        let mut out = Vec::new();
        loop {
            let skip = out.len().to_string();
            let a = self
                .get(
                    "/api/systemusers",
                    &[("limit", "100"), ("skip", &skip), ("sort", "_id")],
                )
                .await;
            assert_eq!(a.status, StatusCode::OK);
            let page = a.results().clone();
            if page.is_empty() {
                return out;
            }
            out.extend(page);
        }
    }

    async fn create_user(&self, username: &str, extra: Value) -> Value {
        let mut body = json!({ "username": username, "email": format!("{username}@test.example") });
        if let (Value::Object(b), Value::Object(e)) = (&mut body, extra) {
            b.extend(e);
        }
        let a = self.post("/api/systemusers", body).await;
        assert_eq!(a.status, StatusCode::OK, "create {username}: {}", a.body);
        a.body
    }

    async fn create_group(&self, name: &str) -> Value {
        let a = self
            .post("/api/v2/usergroups", json!({ "name": name }))
            .await;
        assert_eq!(a.status, StatusCode::CREATED, "{}", a.body);
        a.body
    }

    async fn directory_id(&self, kind: &str) -> String {
        let a = self.get("/api/v2/directories", &[]).await;
        a.items()
            .iter()
            .find(|d| d["type"] == kind)
            .and_then(|d| d["id"].as_str())
            .expect("directory of that kind")
            .to_owned()
    }
}

fn id(v: &Value) -> &str {
    v["id"].as_str().expect("id")
}

fn is_json(a: &Answer) -> bool {
    a.header("content-type") == Some("application/json; charset=utf-8")
}

// --- envelopes and paging ---

#[tokio::test]
async fn v1_lists_use_the_envelope_and_no_total_header() {
    let emu = Emu::start(config(30, 5)).await;
    let a = emu.get("/api/systemusers", &[]).await;
    assert_eq!(a.status, StatusCode::OK);
    assert!(is_json(&a));
    assert!(a.header("x-total-count").is_none());
    assert_eq!(a.body["totalCount"], 30);
    assert_eq!(a.results().len(), 10, "default limit is 10");
    for u in a.results() {
        assert_eq!(u["_id"], u["id"]);
        assert_eq!(u["_id"].as_str().unwrap().len(), 24);
        assert!(u.get("password").is_none());
        for field in [
            "username",
            "email",
            "firstname",
            "lastname",
            "displayname",
            "state",
            "suspended",
            "activated",
            "account_locked",
            "mfa",
            "restrictedFields",
            "attributes",
            "phoneNumbers",
            "addresses",
            "employeeIdentifier",
            "manager",
            "created",
            "organization",
            "unix_uid",
            "unix_guid",
            "password_expired",
            "jobTitle",
            "department",
            "costCenter",
            "company",
            "employeeType",
            "location",
            "description",
            "alternateEmail",
        ] {
            assert!(u.get(field).is_some(), "user lacks {field}");
        }
        assert!(u["admin"].is_null());
        assert!(u["mfa"]["configured"].is_boolean());
    }
    let orgs = emu.get("/api/organizations", &[]).await;
    assert_eq!(orgs.body["totalCount"], 1);
    assert_eq!(orgs.results()[0]["_id"], emu.server.org_id());
}

#[tokio::test]
async fn v2_lists_are_bare_arrays_with_a_total_header() {
    let emu = Emu::start(config(30, 5)).await;
    let a = emu.get("/api/v2/usergroups", &[]).await;
    assert_eq!(a.status, StatusCode::OK);
    assert!(is_json(&a));
    assert_eq!(a.total(), 6, "5 groups and All Users");
    assert_eq!(a.items().len(), 6);
    let g = &a.items()[0];
    assert_eq!(g["type"], "user_group");
    for field in [
        "id",
        "name",
        "description",
        "email",
        "attributes",
        "membershipMethod",
    ] {
        assert!(g.get(field).is_some(), "group lacks {field}");
    }
    let d = emu.get("/api/v2/directories", &[]).await;
    assert_eq!(d.total(), 2);
    let kinds: BTreeSet<&str> = d
        .items()
        .iter()
        .map(|d| d["type"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, BTreeSet::from(["active_directory", "g_suite"]));
}

#[tokio::test]
async fn pages_cap_at_100_and_walk_in_id_order() {
    let emu = Emu::start(config(250, 120)).await;
    let a = emu.get("/api/systemusers", &[("limit", "1000")]).await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.results().len(), 100);
    assert_eq!(a.body["totalCount"], 250);
    let last = emu
        .get(
            "/api/systemusers",
            &[("limit", "100"), ("skip", "200"), ("sort", "_id")],
        )
        .await;
    assert_eq!(last.results().len(), 50);

    let all = emu.all_users().await;
    let ids: Vec<&str> = all.iter().map(id).collect();
    assert_eq!(ids.len(), 250);
    assert!(
        ids.windows(2).all(|w| w[0] < w[1]),
        "sort=_id pages are ascending and disjoint"
    );

    let desc = emu
        .get("/api/systemusers", &[("limit", "3"), ("sort", "-_id")])
        .await;
    let top: Vec<&str> = desc.results().iter().map(id).collect();
    assert_eq!(top, [ids[249], ids[248], ids[247]]);

    let g = emu.get("/api/v2/usergroups", &[("limit", "500")]).await;
    assert_eq!(g.items().len(), 100);
    assert_eq!(g.total(), 121);
    let g = emu
        .get("/api/v2/usergroups", &[("limit", "100"), ("skip", "100")])
        .await;
    assert_eq!(g.items().len(), 21);

    let bad = emu.get("/api/systemusers", &[("limit", "-1")]).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.body["message"].is_string());
}

// --- filters and sort ---

#[tokio::test]
async fn v1_filters_and_sort() {
    let emu = Emu::start(config(80, 5)).await;
    let all = emu.all_users().await;
    let dept = all[0]["department"].as_str().unwrap().to_owned();
    let expected = all
        .iter()
        .filter(|u| u["department"] == dept.as_str())
        .count();

    let eq = format!("department:$eq:{dept}");
    let a = emu
        .get("/api/systemusers", &[("filter", &eq), ("limit", "100")])
        .await;
    assert_eq!(a.body["totalCount"], expected);
    assert!(a.results().iter().all(|u| u["department"] == dept.as_str()));

    let lower = format!("department:$eq:{}", dept.to_lowercase());
    let a = emu.get("/api/systemusers", &[("filter", &lower)]).await;
    assert_eq!(a.body["totalCount"], 0, "values are case-sensitive");

    let ne = format!("department:$ne:{dept}");
    let a = emu.get("/api/systemusers", &[("filter", &ne)]).await;
    assert_eq!(a.body["totalCount"], 80 - expected);

    // filter[0] AND filter[1]; filter[or][n] OR.
    let a = emu
        .get(
            "/api/systemusers",
            &[
                ("filter[0]", &eq),
                ("filter[1]", "unix_uid:$gte:5041"),
                ("limit", "100"),
            ],
        )
        .await;
    let want = all
        .iter()
        .filter(|u| u["department"] == dept.as_str() && u["unix_uid"].as_u64().unwrap() >= 5041)
        .count();
    assert_eq!(a.body["totalCount"], want);

    let (u1, u2) = (
        all[3]["username"].as_str().unwrap(),
        all[9]["username"].as_str().unwrap(),
    );
    let (f1, f2) = (format!("username:$eq:{u1}"), format!("username:$eq:{u2}"));
    let a = emu
        .get(
            "/api/systemusers",
            &[("filter[or][0]", &f1), ("filter[or][1]", &f2)],
        )
        .await;
    assert_eq!(a.body["totalCount"], 2);

    // Sort by a non-unique field, then check order and that paging is a partition.
    let a = emu
        .get(
            "/api/systemusers",
            &[("sort", "-lastname firstname"), ("limit", "100")],
        )
        .await;
    let names: Vec<(String, String)> = a
        .results()
        .iter()
        .map(|u| {
            (
                u["lastname"].as_str().unwrap().into(),
                u["firstname"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert!(
        names
            .windows(2)
            .all(|w| w[0].0 > w[1].0 || (w[0].0 == w[1].0 && w[0].1 <= w[1].1))
    );

    let a = emu
        .get(
            "/api/systemusers",
            &[("fields", "username email"), ("limit", "2")],
        )
        .await;
    let keys: BTreeSet<&str> = a.results()[0]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys, BTreeSet::from(["_id", "id", "username", "email"]));

    let bad = emu
        .get("/api/systemusers", &[("filter", "department:eq:Sales")])
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST, "v1 needs $ operators");
    assert!(is_json(&bad));
}

#[tokio::test]
async fn v2_filters_and_sort() {
    let emu = Emu::start(config(30, 12)).await;
    let a = emu
        .get("/api/v2/usergroups", &[("filter", "name:eq:All Users")])
        .await;
    assert_eq!(a.total(), 1);
    assert_eq!(a.items()[0]["name"], "All Users");
    let a = emu
        .get("/api/v2/usergroups", &[("filter", "name:eq:all users")])
        .await;
    assert_eq!(a.total(), 0);
    let a = emu
        .get(
            "/api/v2/usergroups",
            &[("filter", "name:in:Sales|Engineering|Nope")],
        )
        .await;
    assert_eq!(a.total(), 2);
    let a = emu
        .get(
            "/api/v2/usergroups",
            &[("filter", "name:ne:All Users"), ("filter", "name:ge:M")],
        )
        .await;
    assert!(a.items().iter().all(|g| g["name"].as_str().unwrap() >= "M"));
    let a = emu
        .get("/api/v2/usergroups", &[("sort", "-name"), ("limit", "100")])
        .await;
    let names: Vec<&str> = a
        .items()
        .iter()
        .map(|g| g["name"].as_str().unwrap())
        .collect();
    assert!(names.windows(2).all(|w| w[0] >= w[1]));
    let a = emu
        .get("/api/v2/usergroups", &[("fields", "name"), ("limit", "1")])
        .await;
    let keys: BTreeSet<&str> = a.items()[0]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys, BTreeSet::from(["id", "name"]));
    let bad = emu
        .get("/api/v2/usergroups", &[("filter", "name:$eq:x")])
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn search_endpoint_takes_filter_search_and_fields() {
    let emu = Emu::start(config(120, 2)).await;
    emu.create_user(
        "zed.searchable",
        json!({"department": "Research", "firstname": "Zed"}),
    )
    .await;
    emu.create_user("amy.other", json!({"department": "Research"}))
        .await;
    let a = emu
        .post(
            "/api/search/systemusers",
            json!({
                "filter": [{"department": "Research"}],
                "searchFilter": {"searchTerm": "SEARCH", "fields": ["username"]},
                "fields": "username department",
                "limit": 5
            }),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.body["totalCount"], 1);
    assert_eq!(a.results()[0]["username"], "zed.searchable");
    assert!(a.results()[0].get("email").is_none());
    let a = emu
        .post(
            "/api/search/systemusers",
            json!({"filter": {"or": [{"username": "zed.searchable"}, {"username": "amy.other"}]}}),
        )
        .await;
    assert_eq!(a.body["totalCount"], 2);
    let a = emu
        .post("/api/search/systemusers", json!({"limit": 1000}))
        .await;
    assert_eq!(a.body["totalCount"], 122);
    assert_eq!(a.results().len(), 100, "search caps limit at 100 too");
    let bad = emu
        .post("/api/search/systemusers", json!({"filter": "x"}))
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
}

// --- users ---

#[tokio::test]
async fn create_applies_the_rules() {
    let emu = Emu::start(config(5, 1)).await;
    let u = emu
        .create_user(
            "Jane.Doe",
            json!({"email": "Jane.Doe@Test.Example", "employeeIdentifier": "X1"}),
        )
        .await;
    assert_eq!(u["email"], "jane.doe@test.example", "email lower-cased");
    assert_eq!(u["username"], "Jane.Doe");
    assert_eq!(u["activated"], false, "no password: password pending");
    assert_eq!(u["state"], "ACTIVATED");
    assert_eq!(u["suspended"], false);
    assert!(u["unix_uid"].as_u64().unwrap() >= 5001);
    assert_eq!(u["unix_uid"], u["unix_guid"]);
    assert_eq!(u["_id"], u["id"]);
    let created = u["created"].as_str().unwrap();
    assert!(created.ends_with('Z') && created.len() == 24, "{created}");
    assert!(u.get("password").is_none());

    let p = emu
        .create_user(
            "pw.user",
            json!({"password": "s3cretpass", "state": "STAGED"}),
        )
        .await;
    assert_eq!(p["activated"], true);
    assert_eq!(p["state"], "STAGED");
    assert!(p.get("password").is_none());
    assert!(p["unix_uid"].as_u64() > u["unix_uid"].as_u64());

    // Duplicates: 400 ErrorDetails, not 409.
    for body in [
        json!({"username": "jane.doe", "email": "other@test.example"}),
        json!({"username": "other", "email": "JANE.DOE@test.example"}),
        json!({"username": "other", "email": "other@test.example", "employeeIdentifier": "X1"}),
    ] {
        let a = emu.post("/api/systemusers", body).await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{}", a.body);
        assert_eq!(a.body["code"], 400);
        assert!(
            a.body["message"]
                .as_str()
                .unwrap()
                .contains("already exists")
        );
        assert!(a.body["status"].is_string());
        assert!(a.body["details"].is_array());
    }

    // Naming rule and required fields.
    for username in ["jane@doe", "jane doe", "1jane", "jané"] {
        let a = emu
            .post(
                "/api/systemusers",
                json!({"username": username, "email": "n@test.example"}),
            )
            .await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{username}");
    }
    let a = emu
        .post("/api/systemusers", json!({"username": "noemail"}))
        .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    let a = emu
        .post("/api/systemusers", json!({"email": "nouser@test.example"}))
        .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);

    // Password policy: the fullValidationDetails shape.
    let a = emu
        .post(
            "/api/systemusers",
            json!({"username": "weak", "email": "weak@test.example", "password": "short"}),
        )
        .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert_eq!(a.body["message"], "Password validation fail");
    assert_eq!(a.body["status"], "INVALID_ARGUMENT");
    let detail = &a.body["details"][0];
    assert_eq!(detail["@type"], "type.googleapis.com/google.rpc.BadRequest");
    let violations = detail["fieldViolationsList"].as_array().unwrap();
    assert!(!violations.is_empty());
    assert!(
        violations
            .iter()
            .all(|v| v["field"] == "password" && v["description"].is_string())
    );

    // Bad input never panics.
    let raw = emu
        .send(
            emu.http
                .post(emu.url("/api/systemusers"))
                .header("x-api-key", KEY)
                .header("content-type", "application/json")
                .body("{not json"),
        )
        .await;
    assert_eq!(raw.status, StatusCode::BAD_REQUEST);
    assert!(is_json(&raw) && raw.body["message"].is_string());
    let a = emu.post("/api/systemusers", json!([1, 2])).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    let a = emu
        .post(
            "/api/systemusers",
            json!({"username": "typed", "email": "t@test.example", "firstname": 5}),
        )
        .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn update_merges_scalars_and_replaces_arrays() {
    let emu = Emu::start(config(5, 1)).await;
    let u = emu
        .create_user(
            "merge.me",
            json!({
                "firstname": "Merge", "jobTitle": "Engineer", "department": "R&D",
                "phoneNumbers": [{"type": "work", "number": "1"}, {"type": "mobile", "number": "2"}],
                "attributes": [{"name": "a", "value": "1"}],
                "addresses": [{"type": "home", "locality": "Oslo"}]
            }),
        )
        .await;
    assert!(u["phoneNumbers"][0]["id"].is_string());
    let path = format!("/api/systemusers/{}", id(&u));
    let a = emu
        .put(
            &path,
            json!({"jobTitle": "Manager", "phoneNumbers": [{"type": "home", "number": "3"}],
                   "department": null, "description": ""}),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let v = &a.body;
    assert_eq!(v["firstname"], "Merge", "omitted scalar kept");
    assert_eq!(v["jobTitle"], "Manager");
    assert_eq!(v["department"], "", "null clears");
    assert_eq!(
        v["phoneNumbers"].as_array().unwrap().len(),
        1,
        "array replaced whole"
    );
    assert_eq!(v["phoneNumbers"][0]["number"], "3");
    assert_eq!(v["attributes"], u["attributes"], "omitted array kept");
    assert_eq!(v["addresses"][0]["locality"], "Oslo");

    let got = emu.get(&path, &[]).await;
    assert_eq!(got.body, a.body);

    let other = emu.create_user("taken.name", json!({})).await;
    let a = emu.put(&path, json!({"username": "TAKEN.NAME"})).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    let a = emu.put(&path, json!({"email": other["email"]})).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    let a = emu.put(&path, json!({"username": ""})).await;
    assert_eq!(
        a.status,
        StatusCode::BAD_REQUEST,
        "username cannot be cleared"
    );
    let a = emu.put(&path, json!({"password": "n3wpassword"})).await;
    assert_eq!(a.body["activated"], true);
    let a = emu
        .put(
            "/api/systemusers/5f0000000000000000000000",
            json!({"jobTitle": "x"}),
        )
        .await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    assert!(is_json(&a));
}

#[tokio::test]
async fn state_transitions() {
    let emu = Emu::start(config(5, 1)).await;
    let u = emu.create_user("state.user", json!({})).await;
    let path = format!("/api/systemusers/{}", id(&u));
    let a = emu.put(&path, json!({"state": "SUSPENDED"})).await;
    assert_eq!(
        (a.body["state"].as_str(), a.body["suspended"].as_bool()),
        (Some("SUSPENDED"), Some(true))
    );
    let a = emu.put(&path, json!({"suspended": false})).await;
    assert_eq!(
        (a.body["state"].as_str(), a.body["suspended"].as_bool()),
        (Some("ACTIVATED"), Some(false))
    );
    let a = emu.put(&path, json!({"state": "STAGED"})).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST, "no way back to STAGED");
    let a = emu
        .put(&path, json!({"state": "ACTIVATED", "suspended": true}))
        .await;
    assert_eq!(
        a.status,
        StatusCode::BAD_REQUEST,
        "conflicting state and suspended"
    );
    let a = emu.put(&path, json!({"state": "BOGUS"})).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);

    let staged = emu
        .create_user("staged.user", json!({"state": "STAGED"}))
        .await;
    assert_eq!(staged["state"], "STAGED");
    let a = emu
        .put(
            &format!("/api/systemusers/{}", id(&staged)),
            json!({"state": "ACTIVATED"}),
        )
        .await;
    assert_eq!(a.body["state"], "ACTIVATED");
    let s = emu
        .create_user("born.suspended", json!({"suspended": true}))
        .await;
    assert_eq!(s["state"], "SUSPENDED");
    let a = emu
        .post(
            "/api/systemusers",
            json!({"username": "conflict", "email": "c@test.example", "state": "ACTIVATED", "suspended": true}),
        )
        .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn delete_refuses_managers_unless_cascaded_and_cleans_up() {
    let emu = Emu::start(config(5, 1)).await;
    let boss = emu.create_user("the.boss", json!({})).await;
    let report = emu
        .create_user("the.report", json!({"manager": id(&boss)}))
        .await;
    assert_eq!(report["manager"], boss["id"]);
    let a = emu
        .post("/api/systemusers", json!({"username": "x", "email": "x@test.example", "manager": "5f0000000000000000000000"}))
        .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST, "manager must exist");

    // Bind the boss to a group and a directory first.
    let g = emu.create_group("Boss Club").await;
    let members = format!("/api/v2/usergroups/{}/members", id(&g));
    let a = emu
        .post(
            &members,
            json!({"op": "add", "type": "user", "id": id(&boss)}),
        )
        .await;
    assert_eq!(a.status, StatusCode::NO_CONTENT);
    let ad = emu.directory_id("active_directory").await;
    let ad_assoc = format!("/api/v2/activedirectories/{ad}/associations");
    let a = emu
        .post(
            &ad_assoc,
            json!({"op": "add", "type": "user", "id": id(&boss)}),
        )
        .await;
    assert!(a.status == StatusCode::NO_CONTENT || a.status == StatusCode::CONFLICT);

    let path = format!("/api/systemusers/{}", id(&boss));
    let a = emu.delete(&path, &[]).await;
    assert_eq!(a.status, StatusCode::CONFLICT);
    assert!(a.body["message"].is_string());
    let a = emu.delete(&path, &[("cascade_manager", "null")]).await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.body["id"], boss["id"], "200 with the deleted user");
    let r = emu
        .get(&format!("/api/systemusers/{}", id(&report)), &[])
        .await;
    assert!(r.body["manager"].is_null(), "reports lose their manager");
    assert_eq!(emu.get(&path, &[]).await.status, StatusCode::NOT_FOUND);
    assert_eq!(emu.delete(&path, &[]).await.status, StatusCode::NOT_FOUND);

    let m = emu.get(&members, &[]).await;
    assert_eq!(m.total(), 0, "left the group");
    let d = emu
        .get(&ad_assoc, &[("targets", "user"), ("limit", "100")])
        .await;
    assert!(
        d.items().iter().all(|e| e["to"]["id"] != boss["id"]),
        "left the directory"
    );

    // A plain user deletes without cascade.
    let a = emu
        .delete(&format!("/api/systemusers/{}", id(&report)), &[])
        .await;
    assert_eq!(a.status, StatusCode::OK);
}

// --- groups and the graph ---

#[tokio::test]
async fn group_crud() {
    let emu = Emu::start(config(5, 1)).await;
    let attrs =
        json!({"sudo": {"enabled": true, "withoutPassword": false}, "custom": [1, {"x": null}]});
    let a = emu
        .post(
            "/api/v2/usergroups",
            json!({"name": "Ops Team", "description": "d", "attributes": attrs}),
        )
        .await;
    assert_eq!(a.status, StatusCode::CREATED);
    assert_eq!(a.body["attributes"], attrs, "attributes kept as sent");
    assert_eq!(a.body["type"], "user_group");
    let gid = id(&a.body).to_owned();
    let dup = emu
        .post("/api/v2/usergroups", json!({"name": "OPS TEAM"}))
        .await;
    assert_eq!(dup.status, StatusCode::CONFLICT);
    assert_eq!(dup.body, json!({"message": "Already Exists"}));
    assert_eq!(
        emu.post("/api/v2/usergroups", json!({"description": "x"}))
            .await
            .status,
        StatusCode::BAD_REQUEST
    );

    let path = format!("/api/v2/usergroups/{gid}");
    let a = emu.put(&path, json!({"name": "ops team"})).await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(
        a.body["name"], "ops team",
        "renaming within case is allowed"
    );
    assert_eq!(
        a.body["description"], "",
        "PUT replaces: omitted description cleared"
    );
    assert!(
        a.body["attributes"].is_null(),
        "PUT replaces: omitted attributes cleared"
    );
    assert_eq!(
        emu.put(&path, json!({"description": "no name"}))
            .await
            .status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        emu.put(&path, json!({"name": "All Users"})).await.status,
        StatusCode::CONFLICT
    );
    assert_eq!(emu.get(&path, &[]).await.body["name"], "ops team");

    let a = emu.delete(&path, &[]).await;
    assert_eq!(a.status, StatusCode::NO_CONTENT);
    assert_eq!(emu.get(&path, &[]).await.status, StatusCode::NOT_FOUND);
    assert_eq!(emu.delete(&path, &[]).await.status, StatusCode::NOT_FOUND);
    // The name is free again.
    emu.create_group("Ops Team").await;
}

#[tokio::test]
async fn members_and_reverse_views() {
    let emu = Emu::start(config(10, 1)).await;
    let g = emu.create_group("Readers").await;
    let users = emu.all_users().await;
    let uid = id(&users[0]).to_owned();
    let members = format!("/api/v2/usergroups/{}/members", id(&g));
    let add = json!({"op": "add", "type": "user", "id": uid});
    let a = emu.post(&members, add.clone()).await;
    assert_eq!(a.status, StatusCode::NO_CONTENT);
    assert!(a.body.is_null(), "204 has no body");
    let a = emu.post(&members, add.clone()).await;
    assert_eq!(a.status, StatusCode::CONFLICT);
    assert_eq!(a.body, json!({"message": "Already Exists"}));
    for u in &users[1..4] {
        emu.post(&members, json!({"op": "add", "type": "user", "id": id(u)}))
            .await;
    }

    let a = emu.get(&members, &[("limit", "2")]).await;
    assert_eq!(a.total(), 4);
    assert_eq!(a.items().len(), 2);
    assert_eq!(
        a.items()[0],
        json!({"attributes": null, "to": {"attributes": null, "id": a.items()[0]["to"]["id"], "type": "user"}})
    );

    let m = emu
        .get(
            &format!("/api/v2/usergroups/{}/membership", id(&g)),
            &[("limit", "100")],
        )
        .await;
    assert_eq!(m.total(), 4);
    let first = &m.items()[0];
    assert_eq!(first["type"], "user");
    assert_eq!(first["paths"][0][0]["to"]["id"], first["id"]);
    assert!(first.get("compiledAttributes").is_some());
    let f = format!("object_id:eq:{uid}");
    let m = emu
        .get(
            &format!("/api/v2/usergroups/{}/membership", id(&g)),
            &[("filter", &f)],
        )
        .await;
    assert_eq!(m.total(), 1);

    let of = emu
        .get(
            &format!("/api/v2/users/{uid}/memberof"),
            &[("limit", "100")],
        )
        .await;
    let groups: BTreeSet<&str> = of.items().iter().map(id).collect();
    assert!(groups.contains(id(&g)));
    assert!(
        of.items()
            .iter()
            .all(|o| o["type"] == "user_group" && o["paths"][0][0]["to"]["id"] == o["id"])
    );
    let all_users = emu
        .get("/api/v2/usergroups", &[("filter", "name:eq:All Users")])
        .await;
    assert!(
        groups.contains(id(&all_users.items()[0])),
        "everyone is in All Users"
    );

    let remove = json!({"op": "remove", "type": "user", "id": uid});
    assert_eq!(
        emu.post(&members, remove.clone()).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        emu.post(&members, remove).await.status,
        StatusCode::NOT_FOUND,
        "not a member"
    );
    let ghost = json!({"op": "add", "type": "user", "id": "5f0000000000000000000000"});
    assert_eq!(
        emu.post(&members, ghost).await.status,
        StatusCode::NOT_FOUND
    );
    let nowhere = "/api/v2/usergroups/5f0000000000000000000000/members";
    assert_eq!(emu.post(nowhere, add).await.status, StatusCode::NOT_FOUND);
    assert_eq!(emu.get(nowhere, &[]).await.status, StatusCode::NOT_FOUND);
    let wrong = json!({"op": "add", "type": "system", "id": uid});
    assert_eq!(
        emu.post(&members, wrong).await.status,
        StatusCode::BAD_REQUEST
    );
    let wrong = json!({"op": "update", "type": "user", "id": uid});
    assert_eq!(
        emu.post(&members, wrong).await.status,
        StatusCode::BAD_REQUEST
    );

    // New users join All Users; a deleted group takes its memberships along.
    let fresh = emu.create_user("fresh.user", json!({})).await;
    let of = emu
        .get(&format!("/api/v2/users/{}/memberof", id(&fresh)), &[])
        .await;
    assert_eq!(of.total(), 1);
    emu.delete(&format!("/api/v2/usergroups/{}", id(&g)), &[])
        .await;
    let of = emu
        .get(
            &format!("/api/v2/users/{}/memberof", id(&users[1])),
            &[("limit", "100")],
        )
        .await;
    assert!(of.items().iter().all(|o| o["id"] != g["id"]));
}

#[tokio::test]
async fn associations_and_targets() {
    let emu = Emu::start(config(30, 4)).await;
    let users = emu.all_users().await;
    let uid = id(&users[0]).to_owned();
    let user_assoc = format!("/api/v2/users/{uid}/associations");

    let a = emu.get(&user_assoc, &[]).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST, "targets is required");
    assert!(is_json(&a));
    assert_eq!(
        emu.get(&user_assoc, &[("targets", "user_group")])
            .await
            .status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        emu.get(&user_assoc, &[("targets", "bogus")]).await.status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        emu.get(&user_assoc, &[("targets", "system")]).await.status,
        StatusCode::OK
    );

    let ad = emu.directory_id("active_directory").await;
    let gs = emu.directory_id("g_suite").await;
    let ad_assoc = format!("/api/v2/activedirectories/{ad}/associations");
    assert_eq!(
        emu.get(&ad_assoc, &[]).await.status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        emu.get(&ad_assoc, &[("targets", "system")]).await.status,
        StatusCode::BAD_REQUEST
    );

    // Make sure uid is not bound, then bind it.
    emu.post(
        &ad_assoc,
        json!({"op": "remove", "type": "user", "id": uid}),
    )
    .await;
    let before = emu
        .get(&ad_assoc, &[("targets", "user"), ("limit", "100")])
        .await
        .total();
    let add = json!({"op": "add", "type": "user", "id": uid});
    assert_eq!(
        emu.post(&ad_assoc, add.clone()).await.status,
        StatusCode::NO_CONTENT
    );
    let dup = emu.post(&ad_assoc, add).await;
    assert_eq!(dup.status, StatusCode::CONFLICT);
    assert_eq!(dup.body, json!({"message": "Already Exists"}));
    let after = emu
        .get(&ad_assoc, &[("targets", "user"), ("limit", "100")])
        .await;
    assert_eq!(after.total(), before + 1);
    assert!(
        after
            .items()
            .iter()
            .all(|e| e["to"]["type"] == "user" && e["attributes"].is_null())
    );

    let mine = emu
        .get(&user_assoc, &[("targets", "active_directory")])
        .await;
    assert_eq!(
        mine.items(),
        &vec![
            json!({"attributes": null, "to": {"attributes": null, "id": ad, "type": "active_directory"}})
        ]
    );

    // Groups bound to directories, and the user side of the POST.
    let g = emu.create_group("Synced").await;
    let gs_assoc = format!("/api/v2/gsuites/{gs}/associations");
    let bind = json!({"op": "add", "type": "user_group", "id": id(&g)});
    assert_eq!(
        emu.post(&gs_assoc, bind.clone()).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(emu.post(&gs_assoc, bind).await.status, StatusCode::CONFLICT);
    let bound = emu.get(&gs_assoc, &[("targets", "user_group")]).await;
    assert!(
        bound
            .items()
            .iter()
            .any(|e| e["to"]["id"] == g["id"] && e["to"]["type"] == "user_group")
    );
    let ga = emu
        .get(
            &format!("/api/v2/usergroups/{}/associations", id(&g)),
            &[("targets", "g_suite")],
        )
        .await;
    assert_eq!(ga.total(), 1);
    emu.delete(&format!("/api/v2/usergroups/{}", id(&g)), &[])
        .await;
    let bound = emu.get(&gs_assoc, &[("targets", "user_group")]).await;
    assert!(
        bound.items().iter().all(|e| e["to"]["id"] != g["id"]),
        "deleted group's edges go"
    );

    let via_user = json!({"op": "remove", "type": "active_directory", "id": ad});
    assert_eq!(
        emu.post(&user_assoc, via_user.clone()).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        emu.post(&user_assoc, via_user).await.status,
        StatusCode::NOT_FOUND
    );
    let bad = json!({"op": "add", "type": "user_group", "id": ad});
    assert_eq!(
        emu.post(&user_assoc, bad).await.status,
        StatusCode::BAD_REQUEST
    );

    // Directory objects themselves.
    let one = emu
        .get(&format!("/api/v2/activedirectories/{ad}"), &[])
        .await;
    assert_eq!(one.body["id"], ad.as_str());
    assert!(one.body["domain"].is_string());
    let list = emu.get("/api/v2/activedirectories", &[]).await;
    assert_eq!(list.total(), 1);
    let g1 = emu.get(&format!("/api/v2/gsuites/{gs}"), &[]).await;
    assert_eq!(g1.status, StatusCode::OK);
    assert!(g1.body["defaultDomain"]["domain"].is_string());
    assert_eq!(
        emu.get(&format!("/api/v2/gsuites/{ad}"), &[]).await.status,
        StatusCode::NOT_FOUND
    );
    let o365 = format!("/api/v2/office365s/{gs}/associations");
    assert_eq!(
        emu.get(&o365, &[("targets", "user")]).await.status,
        StatusCode::NOT_FOUND
    );
}

// --- faults ---

#[tokio::test]
async fn random_gateway_failures_have_the_configured_share() {
    let emu = Emu::start(config(5, 1)).await;
    let f = emu.faults(json!({"fail_rate": 0.2})).await;
    assert_eq!(f.status, StatusCode::OK);
    assert_eq!(f.body["fail_rate"], 0.2);
    let n = 2000;
    let mut failed = 0;
    let mut seen_page = false;
    for _ in 0..n {
        let a = emu.get("/api/systemusers", &[("limit", "1")]).await;
        match a.status {
            StatusCode::OK => {}
            StatusCode::BAD_GATEWAY => {
                failed += 1;
                if !seen_page {
                    assert_eq!(a.header("content-type"), Some("text/html"));
                    assert!(a.body.as_str().unwrap().contains("502 Bad Gateway"));
                    seen_page = true;
                }
            }
            other => panic!("unexpected {other}"),
        }
    }
    let share = f64::from(failed) / f64::from(n);
    assert!((0.17..=0.23).contains(&share), "502 share {share}");
    let stats = emu.stats().await;
    assert_eq!(stats["total"], n);
    assert_eq!(stats["routes"]["GET /api/systemusers"]["502"], failed);
    assert_eq!(stats["routes"]["GET /api/systemusers"]["200"], n - failed);

    emu.faults(json!({"fail_rate": 1.0, "fail_status": 503}))
        .await;
    let a = emu.get("/api/systemusers", &[]).await;
    assert_eq!(a.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        emu.faults(json!({"fail_status": 404})).await.status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        emu.faults(json!({"fail_rate": 2})).await.status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        emu.faults(json!({"no_such_knob": 1})).await.status,
        StatusCode::BAD_REQUEST
    );
}

#[tokio::test]
async fn same_seed_same_fault_sequence() {
    let mut runs = Vec::new();
    for _ in 0..2 {
        let emu = Emu::start(config(3, 0)).await;
        emu.faults(json!({"fail_rate": 0.3})).await;
        let mut seq = Vec::new();
        for _ in 0..200 {
            seq.push(emu.get("/api/systemusers", &[]).await.status.as_u16());
        }
        runs.push(seq);
    }
    assert_eq!(runs[0], runs[1]);
}

#[tokio::test]
async fn outage_now_fails_everything_until_ended() {
    let emu = Emu::start(config(3, 0)).await;
    let f = emu.faults(json!({"outage_now_s": 60})).await;
    assert!(f.body["outage_now_s"].as_u64().unwrap() > 0);
    for path in [
        "/api/systemusers",
        "/api/v2/usergroups",
        "/api/organizations",
    ] {
        for _ in 0..20 {
            let a = emu.get(path, &[]).await;
            assert_eq!(a.status, StatusCode::BAD_GATEWAY, "{path}");
        }
    }
    // The control endpoints stay up during an outage.
    assert_eq!(emu.stats().await["total"], 60);
    emu.faults(json!({"outage_now_s": 0})).await;
    assert_eq!(
        emu.get("/api/systemusers", &[]).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn rate_limits_carry_retry_after() {
    let emu = Emu::start(config(3, 0)).await;
    emu.faults(json!({"rate_limit_rate": 1.0, "retry_after_s": 7}))
        .await;
    let a = emu.get("/api/systemusers", &[]).await;
    assert_eq!(a.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(a.header("retry-after"), Some("7"));
    assert!(is_json(&a));
    emu.faults(json!({"rate_limit_rate": 0.3})).await;
    let mut limited = 0;
    for _ in 0..1000 {
        let a = emu.get("/api/systemusers", &[]).await;
        if a.status == StatusCode::TOO_MANY_REQUESTS {
            assert_eq!(a.header("retry-after"), Some("7"));
            limited += 1;
        }
    }
    assert!((250..=350).contains(&limited), "429s: {limited}");
}

#[tokio::test]
async fn commit_then_fail_applies_the_write() {
    let emu = Emu::start(config(3, 0)).await;
    emu.faults(json!({"commit_then_fail_rate": 1.0})).await;
    let body = json!({"username": "once.only", "email": "once@test.example"});
    let a = emu.post("/api/systemusers", body.clone()).await;
    assert_eq!(a.status, StatusCode::BAD_GATEWAY);
    assert_eq!(a.header("content-type"), Some("text/html"));
    // Reads are not writes: they pass.
    let found = emu
        .get("/api/systemusers", &[("filter", "username:$eq:once.only")])
        .await;
    assert_eq!(found.status, StatusCode::OK);
    assert_eq!(found.body["totalCount"], 1);
    // A blind retry does not duplicate: the emulator refuses it as a duplicate.
    let again = emu.post("/api/systemusers", body).await;
    assert_eq!(again.status, StatusCode::BAD_REQUEST);
    emu.faults(json!({"commit_then_fail_rate": 0})).await;
    let found = emu
        .get(
            "/api/systemusers",
            &[("filter", "email:$eq:once@test.example")],
        )
        .await;
    assert_eq!(found.body["totalCount"], 1, "exactly one user");
}

#[tokio::test]
async fn fail_next_scripts_the_next_answers() {
    let emu = Emu::start(config(3, 0)).await;
    let f = emu
        .faults(json!({"fail_next": {"count": 2, "status": 503, "route": "GET /api/systemusers"}}))
        .await;
    assert_eq!(f.body["fail_next"]["count"], 2);
    assert_eq!(
        emu.get("/api/v2/usergroups", &[]).await.status,
        StatusCode::OK,
        "other routes pass"
    );
    assert_eq!(
        emu.get("/api/systemusers", &[]).await.status,
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(
        emu.get("/api/systemusers", &[("limit", "1")]).await.status,
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(
        emu.get("/api/systemusers", &[]).await.status,
        StatusCode::OK
    );

    emu.faults(json!({"fail_next": {"count": 1, "status": 500}}))
        .await;
    assert_eq!(
        emu.get("/api/v2/directories", &[]).await.status,
        StatusCode::INTERNAL_SERVER_ERROR
    );
    assert_eq!(
        emu.get("/api/v2/directories", &[]).await.status,
        StatusCode::OK
    );

    emu.faults(json!({"fail_next": {"count": 1, "status": 429}}))
        .await;
    let a = emu.get("/api/v2/directories", &[]).await;
    assert_eq!(a.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(a.header("retry-after").is_some());

    // Route templates use {id}.
    let users = emu.all_users().await;
    emu.faults(
        json!({"fail_next": {"count": 1, "status": 504, "route": "GET /api/systemusers/{id}"}}),
    )
    .await;
    let one = format!("/api/systemusers/{}", id(&users[0]));
    assert_eq!(emu.get(&one, &[]).await.status, StatusCode::GATEWAY_TIMEOUT);
    assert_eq!(emu.get(&one, &[]).await.status, StatusCode::OK);
}

#[tokio::test]
async fn latency_is_added() {
    let emu = Emu::start(config(3, 0)).await;
    emu.faults(json!({"latency_ms": 30})).await;
    let t = tokio::time::Instant::now();
    assert_eq!(
        emu.get("/api/systemusers", &[]).await.status,
        StatusCode::OK
    );
    assert!(t.elapsed() >= std::time::Duration::from_millis(30));
    let f = emu.send(emu.http.get(emu.url("/__emulator/faults"))).await;
    assert_eq!(f.body["latency_ms"], 30);
}

// --- stats, auth, tenancy ---

#[tokio::test]
async fn stats_count_by_route_template_and_reset() {
    let emu = Emu::start(config(5, 1)).await;
    let users = emu.all_users().await;
    let g = emu.get("/api/v2/usergroups", &[]).await;
    let gid = id(&g.items()[0]).to_owned();
    emu.get(&format!("/api/systemusers/{}", id(&users[0])), &[])
        .await;
    emu.get(&format!("/api/systemusers/{}", id(&users[1])), &[])
        .await;
    emu.get("/api/systemusers/5f0000000000000000000000", &[])
        .await;
    emu.get(&format!("/api/v2/usergroups/{gid}/members"), &[])
        .await;
    let unauth = emu.send(emu.http.get(emu.url("/api/systemusers"))).await;
    assert_eq!(unauth.status, StatusCode::UNAUTHORIZED);
    assert!(is_json(&unauth) && unauth.body["message"].is_string());
    let wrong_key = emu
        .send(
            emu.http
                .get(emu.url("/api/systemusers"))
                .header("x-api-key", "nope"),
        )
        .await;
    assert_eq!(wrong_key.status, StatusCode::UNAUTHORIZED);
    let missing = emu.get("/api/nothing/here", &[]).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert!(is_json(&missing));

    let s = emu.stats().await;
    let r = &s["routes"];
    // all_users() walked two pages: five users, then an empty one.
    assert_eq!(r["GET /api/systemusers"]["200"], 2, "{s}");
    assert_eq!(r["GET /api/systemusers"]["401"], 2);
    assert_eq!(r["GET /api/systemusers/{id}"]["200"], 2);
    assert_eq!(r["GET /api/systemusers/{id}"]["404"], 1);
    assert_eq!(r["GET /api/v2/usergroups"]["200"], 1);
    assert_eq!(r["GET /api/v2/usergroups/{id}/members"]["200"], 1);
    assert_eq!(r["GET (unmatched)"]["404"], 1);
    assert_eq!(s["total"], 10);
    assert!(
        r.as_object()
            .unwrap()
            .keys()
            .all(|k| !k.contains("__emulator"))
    );

    let reset = emu
        .send(emu.http.delete(emu.url("/__emulator/stats")))
        .await;
    assert_eq!(reset.status, StatusCode::OK);
    assert_eq!(emu.stats().await, json!({"total": 0, "routes": {}}));
    emu.get("/api/systemusers", &[]).await;
    assert_eq!(emu.stats().await["total"], 1);
}

#[tokio::test]
async fn multi_tenant_keys_need_x_org_id() {
    let mut cfg = config(5, 1);
    cfg.multi_tenant = true;
    let emu = Emu::start(cfg).await;
    let org = emu.server.org_id().to_owned();
    let req = |org: Option<&str>, path: &str| {
        let rb = emu.http.get(emu.url(path)).header("x-api-key", KEY);
        match org {
            Some(o) => rb.header("x-org-id", o),
            None => rb,
        }
    };
    assert_eq!(
        emu.send(req(None, "/api/systemusers")).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        emu.send(req(Some(""), "/api/systemusers")).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        emu.send(req(None, "/api/v2/usergroups")).await.status,
        StatusCode::UNAUTHORIZED
    );
    let orgs = emu.send(req(None, "/api/organizations")).await;
    assert_eq!(
        orgs.status,
        StatusCode::OK,
        "listing organisations never needs x-org-id"
    );
    assert_eq!(orgs.body["results"][0]["_id"], org.as_str());
    assert_eq!(
        emu.send(req(Some(&org), "/api/systemusers")).await.status,
        StatusCode::OK
    );
    assert_eq!(
        emu.send(req(Some(&org), "/api/v2/usergroups")).await.status,
        StatusCode::OK
    );
    assert_eq!(
        emu.send(req(Some("5f0000000000000000000000"), "/api/systemusers"))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        emu.send(req(Some("not-an-id"), "/api/systemusers"))
            .await
            .status,
        StatusCode::BAD_REQUEST
    );

    // Single tenant: an empty x-org-id is fine.
    let single = Emu::start(config(5, 1)).await;
    let a = single
        .send(
            single
                .http
                .get(single.url("/api/systemusers"))
                .header("x-api-key", KEY)
                .header("x-org-id", ""),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK);
}

// --- the seeded organisation ---

#[tokio::test]
async fn same_seed_gives_the_same_organisation() {
    let a = Emu::start(config(40, 6)).await;
    let b = Emu::start(config(40, 6)).await;
    let mut other_cfg = config(40, 6);
    other_cfg.seed = 8;
    let c = Emu::start(other_cfg).await;
    let ua = a.all_users().await;
    assert_eq!(ua, b.all_users().await);
    assert_ne!(ua, c.all_users().await);
    let ga = a.get("/api/v2/usergroups", &[("limit", "100")]).await.body;
    assert_eq!(
        ga,
        b.get("/api/v2/usergroups", &[("limit", "100")]).await.body
    );
    assert_eq!(
        a.get("/api/v2/directories", &[]).await.body,
        b.get("/api/v2/directories", &[]).await.body
    );
}

#[tokio::test]
async fn seeded_organisation_has_the_recorded_proportions() {
    let emu = Emu::start(EmulatorConfig {
        api_key: KEY.into(),
        ..EmulatorConfig::default()
    })
    .await;
    let users = emu.all_users().await;
    assert_eq!(users.len(), 601);
    let names: BTreeSet<String> = users
        .iter()
        .map(|u| u["username"].as_str().unwrap().to_lowercase())
        .collect();
    let emails: BTreeSet<&str> = users.iter().map(|u| u["email"].as_str().unwrap()).collect();
    assert_eq!(
        (names.len(), emails.len()),
        (601, 601),
        "unique case-insensitively"
    );
    let count = |f: &dyn Fn(&Value) -> bool| users.iter().filter(|u| f(u)).count();
    assert!(count(&|u| u["state"] == "STAGED") > 0);
    assert!(count(&|u| u["state"] == "SUSPENDED") > 0);
    assert!(count(&|u| u["activated"] == false) > 0);
    assert!(count(&|u| !u["manager"].is_null()) > 300);
    assert!(count(&|u| !u["employeeIdentifier"].is_null()) > 500);
    assert!(count(&|u| !u["phoneNumbers"].as_array().unwrap().is_empty()) > 300);

    let groups = emu.get("/api/v2/usergroups", &[("limit", "100")]).await;
    assert_eq!(groups.total(), 51);
    let all = groups
        .items()
        .iter()
        .find(|g| g["name"] == "All Users")
        .unwrap();
    let members = emu
        .get(&format!("/api/v2/usergroups/{}/members", id(all)), &[])
        .await;
    assert_eq!(members.total(), 601, "All Users holds everyone");
    let mut sizes = Vec::new();
    for g in groups.items() {
        sizes.push(
            emu.get(
                &format!("/api/v2/usergroups/{}/members", id(g)),
                &[("limit", "1")],
            )
            .await
            .total(),
        );
    }
    assert!(
        sizes.iter().any(|s| *s <= 12) && sizes.iter().any(|s| *s >= 100),
        "{sizes:?}"
    );

    for (kind, segment, direct) in [
        ("active_directory", "activedirectories", 23),
        ("g_suite", "gsuites", 241),
    ] {
        let dir = emu.directory_id(kind).await;
        let path = format!("/api/v2/{segment}/{dir}/associations");
        let a = emu.get(&path, &[("targets", "user")]).await;
        assert_eq!(a.total(), direct, "{kind}: ~{}%", direct * 100 / 601);
        let direct_ids: BTreeSet<String> = {
            let mut ids = BTreeSet::new();
            for skip in (0..direct).step_by(100) {
                let s = skip.to_string();
                let p = emu
                    .get(
                        &path,
                        &[("targets", "user"), ("limit", "100"), ("skip", &s)],
                    )
                    .await;
                ids.extend(
                    p.items()
                        .iter()
                        .map(|e| e["to"]["id"].as_str().unwrap().to_owned()),
                );
            }
            ids
        };
        assert_eq!(direct_ids.len(), direct);
        let bound = emu.get(&path, &[("targets", "user_group")]).await;
        assert_eq!(bound.total(), 1, "{kind} has a bound group");
        let gid = bound.items()[0]["to"]["id"].as_str().unwrap();
        let holders = emu
            .get(
                &format!("/api/v2/usergroups/{gid}/members"),
                &[("limit", "100")],
            )
            .await;
        assert!(holders.total() > 0);
        assert!(
            holders
                .items()
                .iter()
                .all(|e| !direct_ids.contains(e["to"]["id"].as_str().unwrap())),
            "bound-group holders get {kind} only through the group"
        );
    }
}

#[tokio::test]
async fn unreadable_requests_answer_json() {
    let emu = Emu::start(config(3, 1)).await;
    let a = emu.get("/api/systemusers/%FF%FE", &[]).await;
    assert!(a.status.is_client_error(), "{}", a.status);
    assert!(is_json(&a) && a.body["message"].is_string());
    let a = emu
        .send(
            emu.http
                .patch(emu.url("/api/v2/usergroups/x"))
                .header("x-api-key", KEY),
        )
        .await;
    assert_eq!(a.status, StatusCode::METHOD_NOT_ALLOWED);
    assert!(is_json(&a));
    let a = emu
        .send(
            emu.http
                .post(emu.url("/api/v2/usergroups"))
                .header("x-api-key", KEY)
                .body(""),
        )
        .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert!(is_json(&a));
    let a = emu
        .post(
            "/api/v2/usergroups",
            json!({"name": "x", "attributes": "flat"}),
        )
        .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    let members = emu.get("/api/v2/usergroups", &[("limit", "1")]).await;
    let path = format!("/api/v2/usergroups/{}/members", id(&members.items()[0]));
    let a = emu.post(&path, json!({"op": "add"})).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    let a = emu.get("/api/v2/usergroups", &[("skip", "ten")]).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert!(is_json(&a));
}
