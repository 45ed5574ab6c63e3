//! Joiner, mover, leaver end to end against the emulator, named after the client each test imitates.

use std::collections::HashSet;

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{Harness, READ_TOKEN, json_of, small_emulator};

const ENT: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
const JCG: &str = "urn:jumpcloud-scim:schemas:extension:jumpcloud:2.0:Group";

fn patch(ops: Value) -> Value {
    json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": ops})
}

impl Harness {
    fn req(&self, method: Method, path: &str, body: &Value) -> reqwest::RequestBuilder {
        self.http
            .request(method, self.scim(path))
            .bearer_auth(crate::support::TOKEN)
            .header("content-type", "application/scim+json")
            .body(body.to_string())
    }

    async fn user_groups(&self, id: &str) -> HashSet<String> {
        let u = json_of(self.get(&format!("/Users/{id}")).send().await.unwrap()).await;
        u["groups"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|g| g["value"].as_str().unwrap().to_string())
            .collect()
    }

    /// The user as JumpCloud holds it (straight from the emulator).
    async fn jc_user(&self, id: &str) -> Value {
        json_of(
            self.jc(Method::GET, &format!("/api/systemusers/{id}"))
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    async fn jc_user_count(&self) -> u64 {
        json_of(
            self.jc(Method::GET, "/api/systemusers?limit=1")
                .send()
                .await
                .unwrap(),
        )
        .await["totalCount"]
            .as_u64()
            .unwrap()
    }

    /// Groups and directories by `groupType`.
    async fn groups_of_type(&self, kind: &str) -> Vec<Value> {
        let all = json_of(
            self.get("/Groups?attributes=displayName,externalId,urn:jumpcloud-scim:schemas:extension:jumpcloud:2.0:Group")
                .send()
                .await
                .unwrap(),
        )
        .await;
        all["Resources"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|g| g[JCG]["groupType"] == kind)
            .cloned()
            .collect()
    }
}

fn new_user(user_name: &str, email: &str) -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ENT],
        "userName": user_name,
        "name": {"givenName": "Casey", "familyName": "Jordan"},
        "emails": [{"value": email, "type": "work", "primary": true}],
        "active": true,
        "title": "Analyst",
        ENT: {"employeeNumber": format!("E-{user_name}"), "department": "Finance"}
    })
}

#[tokio::test]
async fn sailpoint_joiner_mover_leaver() {
    let h = Harness::start(small_emulator(40, 4), |_| {}).await;
    h.wait_ready().await;
    let groups = h.groups_of_type("user_group").await;
    let (g1, g2, g3) = (
        groups[1]["id"].as_str().unwrap().to_string(),
        groups[2]["id"].as_str().unwrap().to_string(),
        groups[3]["id"].as_str().unwrap().to_string(),
    );

    // Joiner: create, then add to two groups.
    let r = h
        .req(
            Method::POST,
            "/Users",
            &new_user("cjordan", "casey.jordan@example.com"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let location = r.headers()["location"].to_str().unwrap().to_string();
    let etag = r.headers()["etag"].to_str().unwrap().to_string();
    let user = json_of(r).await;
    let id = user["id"].as_str().unwrap().to_string();
    assert_eq!(user["meta"]["location"], location.as_str());
    assert_eq!(user["meta"]["version"], etag.as_str());
    assert_eq!(user["userName"], "cjordan");
    assert_eq!(
        h.jc_ext(&id).await["passwordPending"],
        true,
        "no password: JumpCloud's password-pending state"
    );
    // Grant and revoke AD and Google Workspace access (before any group could grant it indirectly).
    for kind in ["active_directory", "g_suite"] {
        let dir = h.groups_of_type(kind).await[0]["id"]
            .as_str()
            .unwrap()
            .to_string();
        let r = h
            .req(
                Method::PATCH,
                &format!("/Groups/{dir}"),
                &patch(json!([{"op": "add", "path": "members", "value": [{"value": id}]}])),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 204, "grant {kind}");
        let u = json_of(h.get(&format!("/Users/{id}")).send().await.unwrap()).await;
        assert!(
            u["entitlements"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["type"] == kind && e["value"] == dir.as_str())
        );
        let r = h
            .req(
                Method::PATCH,
                &format!("/Groups/{dir}"),
                &patch(json!([{"op": "remove", "path": format!("members[value eq \"{id}\"]")}])),
            )
            .send()
            .await
            .unwrap();
        let status = r.status();
        assert_eq!(status, 204, "revoke {kind}: {}", r.text().await.unwrap());
        let u = json_of(h.get(&format!("/Users/{id}")).send().await.unwrap()).await;
        assert!(u.get("entitlements").is_none_or(|e| {
            !e.as_array()
                .unwrap()
                .iter()
                .any(|e| e["value"] == dir.as_str())
        }));
    }

    for g in [&g1, &g2] {
        let r = h
            .req(
                Method::PATCH,
                &format!("/Groups/{g}"),
                &patch(json!([{"op": "add", "path": "members", "value": [{"value": id}]}])),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 204);
    }
    // Every write is in the audit trail, with who made it and never a body.
    let audit = std::fs::read_to_string(&h.audit_file).unwrap();
    let lines: Vec<Value> = audit
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(lines.iter().any(|l| l["method"] == "POST"
        && l["path"] == "/scim/v2/Users"
        && l["status"] == 201
        && l["principal"] == "provisioner"));
    assert!(lines.iter().filter(|l| l["method"] == "PATCH").count() >= 2);
    assert!(!audit.contains("casey.jordan@example.com"));
    let want: HashSet<String> = [g1.clone(), g2.clone()].into_iter().collect();
    assert!(
        h.user_groups(&id).await.is_superset(&want),
        "read-your-writes"
    );
    // An aggregation (after a real refresh) agrees.
    assert_eq!(h.refresh_now().await["ok"], true);
    let found = json_of(
        h.get("/Users?filter=userName%20eq%20%22cjordan%22")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(found["totalResults"], 1);
    let agg_groups: HashSet<String> = found["Resources"][0]["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["value"].as_str().unwrap().to_string())
        .collect();
    assert!(agg_groups.is_superset(&want));

    // Mover: surname by PUT, then by PATCH.
    let mut put = new_user("cjordan", "casey.jordan@example.com");
    put["name"]["familyName"] = json!("Jordan-Smith");
    let r = h
        .req(Method::PUT, &format!("/Users/{id}"), &put)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(json_of(r).await["name"]["familyName"], "Jordan-Smith");
    assert_eq!(h.jc_user(&id).await["lastname"], "Jordan-Smith");
    let r = h
        .req(
            Method::PATCH,
            &format!("/Users/{id}"),
            &patch(json!([{"op": "replace", "path": "name.familyName", "value": "Smith"}])),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(json_of(r).await["name"]["familyName"], "Smith");
    assert_eq!(h.jc_user(&id).await["lastname"], "Smith");
    // Move between groups.
    let r = h
        .req(
            Method::PATCH,
            &format!("/Groups/{g1}"),
            &patch(json!([{"op": "remove", "path": format!("members[value eq \"{id}\"]")}])),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let r = h
        .req(
            Method::PATCH,
            &format!("/Groups/{g3}"),
            &patch(json!([{"op": "add", "path": "members", "value": [{"value": id}]}])),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let now = h.user_groups(&id).await;
    assert!(!now.contains(&g1) && now.contains(&g2) && now.contains(&g3));
    // Leaver.
    let r = h
        .req(
            Method::PATCH,
            &format!("/Users/{id}"),
            &patch(json!([{"op": "replace", "path": "active", "value": false}])),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let u = json_of(r).await;
    assert_eq!(u["active"], false);
    assert_eq!(h.jc_ext(&id).await["state"], "SUSPENDED");
    assert_eq!(h.jc_user(&id).await["state"], "SUSPENDED");
    assert_eq!(h.refresh_now().await["ok"], true);
    let u = json_of(h.get(&format!("/Users/{id}")).send().await.unwrap()).await;
    assert_eq!(
        u["active"], false,
        "still listed, inactive, after an aggregation"
    );
}

#[tokio::test]
async fn entra_dialect() {
    let h = Harness::start(small_emulator(20, 3), |_| {}).await;
    h.wait_ready().await;
    let body = json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ENT],
        "externalId": "0f8f5b0e-entra",
        "userName": "Alex.Wu@contoso.onmicrosoft.com",
        "active": true,
        "displayName": "Alex Wu",
        "emails": [{"primary": true, "type": "work", "value": "alex.wu@contoso.com"}],
        "name": {"formatted": "Alex Wu", "familyName": "Wu", "givenName": "Alex"},
        "roles": [],
        "meta": {"resourceType": "User"},
        ENT: {"department": null}
    });
    let r = h.req(Method::POST, "/Users", &body).send().await.unwrap();
    assert_eq!(r.status(), 201);
    let u = json_of(r).await;
    let id = u["id"].as_str().unwrap().to_string();
    assert_eq!(
        u["userName"], "Alex.Wu@contoso.onmicrosoft.com",
        "the UPN is served exactly"
    );
    assert_eq!(
        h.jc_ext(&id).await["username"],
        "Alex.Wu",
        "JumpCloud's username is the local part"
    );
    assert_eq!(u["externalId"], "0f8f5b0e-entra");
    // Matching round-trips.
    let f = json_of(
        h.get("/Users?filter=userName%20eq%20%22alex.wu%40contoso.onmicrosoft.com%22")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(f["totalResults"], 1);
    let f = json_of(
        h.get("/Users?filter=externalId%20eq%20%220f8f5b0e-entra%22")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(f["totalResults"], 1);

    // Path-less Replace with dotted and URN keys, and a filtered email path.
    let manager =
        json_of(h.get("/Users?count=1").send().await.unwrap()).await["Resources"][0]["id"].clone();
    let ops = patch(json!([
        {"op": "Replace", "value": {"name.givenName": "Alexander", "displayName": "Alexander Wu",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department": "Research"}},
        {"op": "Replace", "path": "emails[type eq \"work\"].value", "value": "alexander.wu@contoso.com"},
        {"op": "Add", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager", "value": [{"$ref": null, "value": manager}]}
    ]));
    let r = h
        .req(Method::PATCH, &format!("/Users/{id}"), &ops)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let u = json_of(r).await;
    assert_eq!(u["name"]["givenName"], "Alexander");
    assert_eq!(u[ENT]["department"], "Research");
    assert_eq!(u[ENT]["manager"]["value"], manager);
    assert_eq!(u["emails"][0]["value"], "alexander.wu@contoso.com");
    let jc = h.jc_user(&id).await;
    assert_eq!(
        (jc["firstname"].as_str(), jc["department"].as_str()),
        (Some("Alexander"), Some("Research"))
    );
    assert_eq!(jc["manager"], manager);

    // "False" as a string disables.
    let r = h
        .req(
            Method::PATCH,
            &format!("/Users/{id}"),
            &patch(json!([{"op": "Replace", "path": "active", "value": "False"}])),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(json_of(r).await["active"], false);

    // Groups: create empty with Entra's extra schema, rename, add, remove with a value array.
    let r = h
        .req(
            Method::POST,
            "/Groups",
            &json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group",
                "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group"],
                "externalId": "entra-g-1", "displayName": "Entra Team", "members": []}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let g = json_of(r).await;
    let gid = g["id"].as_str().unwrap().to_string();
    assert_eq!(g["externalId"], "entra-g-1");
    for ops in [
        json!([{"op": "Replace", "path": "displayName", "value": "Entra Team 2"}]),
        json!([{"op": "Add", "path": "members", "value": [{"value": id}]}]),
    ] {
        let r = h
            .req(Method::PATCH, &format!("/Groups/{gid}"), &patch(ops))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 204);
    }
    assert!(h.user_groups(&id).await.contains(&gid));
    let f = json_of(
        h.get(
            "/Groups?filter=displayName%20eq%20%22entra%20team%202%22&excludedAttributes=members",
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(f["totalResults"], 1);
    let r = h
        .req(
            Method::PATCH,
            &format!("/Groups/{gid}"),
            &patch(json!([{"op": "Remove", "path": "members", "value": [{"value": id}]}])),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert!(!h.user_groups(&id).await.contains(&gid));
    // Hard delete, later.
    assert_eq!(
        h.req(Method::DELETE, &format!("/Groups/{gid}"), &json!(null))
            .send()
            .await
            .unwrap()
            .status(),
        204
    );
    assert_eq!(
        h.req(Method::DELETE, &format!("/Users/{id}"), &json!(null))
            .send()
            .await
            .unwrap()
            .status(),
        204
    );
    assert_eq!(
        h.get(&format!("/Users/{id}"))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    assert_eq!(
        h.jc(Method::GET, &format!("/api/systemusers/{id}"))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
}

#[tokio::test]
async fn okta_dialect() {
    let h = Harness::start(small_emulator(10, 2), |_| {}).await;
    h.wait_ready().await;
    let body = json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": "morgan.lee@example.org",
        "name": {"givenName": "Morgan", "familyName": "Lee"},
        "emails": [{"primary": true, "value": "morgan.lee@example.org", "type": "work"}],
        "displayName": "Morgan Lee", "locale": "en-US", "externalId": "00u1okta", "groups": [],
        "password": "Str0ngPassw0rd", "active": true
    });
    let send = |b: &Value| {
        h.http
            .post(h.scim("/Users"))
            .bearer_auth(crate::support::TOKEN)
            .header("content-type", "application/json; charset=utf-8")
            .body(b.to_string())
            .send()
    };
    let r = send(&body).await.unwrap();
    assert_eq!(r.status(), 201);
    let u = json_of(r).await;
    let id = u["id"].as_str().unwrap().to_string();
    assert!(u.get("password").is_none());
    assert_eq!(
        h.jc_ext(&id).await["passwordPending"],
        false,
        "a password was set"
    );
    // The same create again: 409 naming the existing user.
    let r = send(&body).await.unwrap();
    assert_eq!(r.status(), 409);
    let e = json_of(r).await;
    assert_eq!(e["scimType"], "uniqueness");
    assert!(e["detail"].as_str().unwrap().contains(&id), "{e}");
    // Upper-case probe.
    let f = json_of(
        h.get("/Users?filter=userName%20eq%20%22MORGAN.LEE%40EXAMPLE.ORG%22")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(f["totalResults"], 1);
    // PUT-style update of the whole object (deactivation included, as AIW apps do).
    let mut put = json_of(h.get(&format!("/Users/{id}")).send().await.unwrap()).await;
    put["name"]["givenName"] = json!("Morgana");
    put["active"] = json!(false);
    let r = h
        .req(Method::PUT, &format!("/Users/{id}"), &put)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let u = json_of(r).await;
    assert_eq!(
        (u["name"]["givenName"].as_str(), u["active"].as_bool()),
        (Some("Morgana"), Some(false))
    );
    // Okta deactivation by path-less patch.
    let r = h
        .req(
            Method::PATCH,
            &format!("/Users/{id}"),
            &patch(json!([{"op": "replace", "value": {"active": true}}])),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(json_of(r).await["active"], true);
    // Group push: create, rename with {id, displayName}, then full member replace.
    let r = h
        .req(
            Method::POST,
            "/Groups",
            &json!({"displayName": "Okta Push", "members": []}),
        )
        .send()
        .await
        .unwrap();
    let gid = json_of(r).await["id"].as_str().unwrap().to_string();
    let others: Vec<String> =
        json_of(h.get("/Users?count=3").send().await.unwrap()).await["Resources"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u["id"].as_str().unwrap().to_string())
            .collect();
    let ops = patch(json!([
        {"op": "replace", "value": {"id": gid, "displayName": "Okta Push Renamed"}},
        {"op": "replace", "path": "members", "value": [{"value": id, "display": "x"}, {"value": others[0]}]}
    ]));
    let r = h
        .req(
            Method::PATCH,
            &format!("/Groups/{gid}?excludedAttributes=members"),
            &ops,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        200,
        "a PATCH naming excludedAttributes answers with the resource"
    );
    assert_eq!(json_of(r).await["displayName"], "Okta Push Renamed");
    let g = json_of(h.get(&format!("/Groups/{gid}")).send().await.unwrap()).await;
    let members: HashSet<&str> = g["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["value"].as_str().unwrap())
        .collect();
    assert_eq!(
        members,
        [id.as_str(), others[0].as_str()].into_iter().collect()
    );
    // Replace again with a different set: only the difference is sent.
    let ops = patch(json!([{"op": "replace", "path": "members", "value": [{"value": others[1]}]}]));
    assert_eq!(
        h.req(Method::PATCH, &format!("/Groups/{gid}"), &ops)
            .send()
            .await
            .unwrap()
            .status(),
        204
    );
    let g = json_of(h.get(&format!("/Groups/{gid}")).send().await.unwrap()).await;
    assert_eq!(g["members"].as_array().unwrap().len(), 1);
    assert_eq!(g["members"][0]["value"], others[1].as_str());
}

#[tokio::test]
async fn commit_then_502_creates_each_user_exactly_once() {
    let h = Harness::start(small_emulator(10, 2), |_| {}).await;
    h.wait_ready().await;
    let before = h.jc_user_count().await;
    h.faults(json!({"commit_then_fail_rate": 0.5})).await;
    let n = 12;
    for i in 0..n {
        let r = h
            .req(
                Method::POST,
                "/Users",
                &new_user(&format!("once{i}"), &format!("once{i}@example.com")),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201, "create {i}: {}", r.text().await.unwrap());
    }
    h.faults(json!({"commit_then_fail_rate": 0.0})).await;
    assert_eq!(h.jc_user_count().await, before + n);
    // The emulator did answer some of those creates with 502 after committing them.
    let stats = h.stats().await;
    assert!(
        stats["routes"]["POST /api/systemusers"]["502"]
            .as_u64()
            .unwrap_or(0)
            > 0,
        "{stats}"
    );
}

#[tokio::test]
async fn patch_under_a_502_storm_neither_loses_nor_doubles_membership() {
    let h = Harness::start(small_emulator(30, 3), |_| {}).await;
    h.wait_ready().await;
    let g = h.groups_of_type("user_group").await[1]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let users: Vec<String> =
        json_of(h.get("/Users?count=10").send().await.unwrap()).await["Resources"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u["id"].as_str().unwrap().to_string())
            .collect();
    h.faults(json!({"fail_rate": 0.3, "commit_then_fail_rate": 0.3}))
        .await;
    let mut want: HashSet<String> = json_of(h.get(&format!("/Groups/{g}")).send().await.unwrap())
        .await["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["value"].as_str().unwrap().to_string())
        .collect();
    for (i, u) in users.iter().enumerate() {
        let op = if i % 3 == 2 { "remove" } else { "add" };
        let body = if op == "add" {
            patch(json!([{"op": "add", "path": "members", "value": [{"value": u}]}]))
        } else {
            patch(json!([{"op": "remove", "path": format!("members[value eq \"{u}\"]")}]))
        };
        // A client retries until it gets an answer that is not 503 (as provisioning clients do).
        let mut status = 0;
        for _ in 0..20 {
            status = h
                .req(Method::PATCH, &format!("/Groups/{g}"), &body)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16();
            if status != 503 {
                break;
            }
        }
        assert_eq!(status, 204);
        if op == "add" {
            want.insert(u.clone());
        } else {
            want.remove(u);
        }
    }
    h.faults(json!({"fail_rate": 0.0, "commit_then_fail_rate": 0.0}))
        .await;
    let members: Vec<Value> = json_of(
        h.jc(
            Method::GET,
            &format!("/api/v2/usergroups/{g}/members?limit=100"),
        )
        .send()
        .await
        .unwrap(),
    )
    .await
    .as_array()
    .unwrap()
    .clone();
    let upstream: Vec<String> = members
        .iter()
        .map(|m| m["to"]["id"].as_str().unwrap().to_string())
        .collect();
    let unique: HashSet<String> = upstream.iter().cloned().collect();
    assert_eq!(unique.len(), upstream.len(), "a doubled membership");
    assert_eq!(unique, want, "upstream membership");
    let served: HashSet<String> = json_of(h.get(&format!("/Groups/{g}")).send().await.unwrap())
        .await["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["value"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(served, want, "served membership");
}

#[tokio::test]
async fn every_client_mistake_gets_its_scim_type() {
    let h = Harness::start(small_emulator(10, 2), |c| {
        c.users.username_policy = jumpcloud_scim::mapping::UsernamePolicy::Verbatim
    })
    .await;
    h.wait_ready().await;
    let existing =
        json_of(h.get("/Users?count=1").send().await.unwrap()).await["Resources"][0].clone();
    let id = existing["id"].as_str().unwrap();
    let cases: Vec<(Method, String, Value, u16, &str)> = vec![
        (
            Method::POST,
            "/Users".into(),
            json!("{not json"),
            400,
            "invalidSyntax",
        ),
        (
            Method::POST,
            "/Users".into(),
            json!({"userName": "nomail"}),
            400,
            "invalidValue",
        ),
        (
            Method::POST,
            "/Users".into(),
            new_user("has@sign", "x1@example.com"),
            400,
            "invalidValue",
        ),
        (
            Method::POST,
            "/Users".into(),
            new_user(existing["userName"].as_str().unwrap(), "x2@example.com"),
            409,
            "uniqueness",
        ),
        (
            Method::PATCH,
            format!("/Users/{id}"),
            patch(json!([{"op": "replace", "path": "nope", "value": 1}])),
            400,
            "invalidPath",
        ),
        (
            Method::PATCH,
            format!("/Users/{id}"),
            patch(json!([{"op": "remove"}])),
            400,
            "noTarget",
        ),
        (
            Method::PATCH,
            format!("/Users/{id}"),
            patch(json!([{"op": "replace", "path": "id", "value": "other"}])),
            400,
            "mutability",
        ),
        (
            Method::PATCH,
            format!("/Users/{id}"),
            patch(
                json!([{"op": "replace", "path": "emails[type eq \"home\" and value eq \"z\"].display", "value": "q"}]),
            ),
            400,
            "invalidPath",
        ),
    ];
    for (method, path, body, status, scim_type) in cases {
        let req = if body.is_string() {
            h.http
                .request(method.clone(), h.scim(&path))
                .bearer_auth(crate::support::TOKEN)
                .header("content-type", "application/scim+json")
                .body(body.as_str().unwrap().to_string())
        } else {
            h.req(method.clone(), &path, &body)
        };
        let r = req.send().await.unwrap();
        assert_eq!(r.status().as_u16(), status, "{method} {path} {body}");
        let e = json_of(r).await;
        assert_eq!(e["scimType"], scim_type, "{method} {path}: {e}");
        assert!(!e["detail"].as_str().unwrap().is_empty());
    }
    let r = h
        .get("/Users?filter=userName%20zz%20%22x%22")
        .send()
        .await
        .unwrap();
    assert_eq!(
        (r.status().as_u16(), json_of(r).await["scimType"].clone()),
        (400, json!("invalidFilter"))
    );
    // A stale If-Match → 412; a read credential → 403; a password the policy refuses → 400 naming the rule.
    let r = h
        .req(
            Method::PATCH,
            &format!("/Users/{id}"),
            &patch(json!([{"op": "replace", "path": "title", "value": "x"}])),
        )
        .header("if-match", "W/\"stale\"")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 412);
    let r = h
        .http
        .post(h.scim("/Users"))
        .bearer_auth(READ_TOKEN)
        .header("content-type", "application/scim+json")
        .body(new_user("reader", "reader@example.com").to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let mut weak = new_user("weakpw", "weak@example.com");
    weak["password"] = json!("short");
    let r = h.req(Method::POST, "/Users", &weak).send().await.unwrap();
    assert_eq!(r.status(), 400);
    let e = json_of(r).await;
    assert_eq!(e["scimType"], "invalidValue");
    assert!(e["detail"].as_str().unwrap().contains("password"), "{e}");
}

#[tokio::test]
async fn jumpcloud_down_fails_writes_fast_with_retry_after() {
    let h = Harness::start(small_emulator(10, 2), |_| {}).await;
    h.wait_ready().await;
    h.faults(json!({"outage_now_s": 60})).await;
    let started = tokio::time::Instant::now();
    let r = h
        .req(
            Method::POST,
            "/Users",
            &new_user("downtime", "downtime@example.com"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    assert!(r.headers().contains_key("retry-after"));
    assert!(
        json_of(r).await["detail"]
            .as_str()
            .unwrap()
            .contains("JumpCloud")
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(50));
    // Throttling comes back as 429 with Retry-After.
    h.faults(json!({"outage_now_s": 0, "rate_limit_rate": 1.0, "retry_after_s": 2}))
        .await;
    let r = h
        .req(
            Method::POST,
            "/Users",
            &new_user("throttled", "throttled@example.com"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    assert!(r.headers().contains_key("retry-after"));
    // Reads never notice.
    assert_eq!(h.get("/Users").send().await.unwrap().status(), 200);
}

#[tokio::test]
async fn directory_access_inherited_through_a_group_cannot_be_revoked_directly() {
    let h = Harness::start(small_emulator(200, 6), |_| {}).await;
    h.wait_ready().await;
    // Find a user who holds a directory only through a group (an indirect directory group).
    let users = json_of(h.get("/Users").send().await.unwrap()).await;
    let (uid, did) = users["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .find_map(|u| {
            let g = u["groups"]
                .as_array()?
                .iter()
                .find(|g| g["type"] == "indirect")?;
            Some((
                u["id"].as_str()?.to_string(),
                g["value"].as_str()?.to_string(),
            ))
        })
        .expect("the seed has users holding a directory through a group");
    let r = h
        .req(
            Method::PATCH,
            &format!("/Groups/{did}"),
            &patch(json!([{"op": "remove", "path": format!("members[value eq \"{uid}\"]")}])),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let e = json_of(r).await;
    assert!(
        e["detail"].as_str().unwrap().contains("through group"),
        "{e}"
    );
    // Renaming or deleting a directory listed as a group is refused too.
    let r = h
        .req(
            Method::PATCH,
            &format!("/Groups/{did}"),
            &patch(json!([{"op": "replace", "path": "displayName", "value": "x"}])),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(
        h.req(Method::DELETE, &format!("/Groups/{did}"), &json!(null))
            .send()
            .await
            .unwrap()
            .status(),
        400
    );
}

#[tokio::test]
async fn sailpoint_groups_via_the_user_and_delete_as_suspend() {
    let h = Harness::start(small_emulator(12, 3), |c| {
        c.users.delete_mode = jumpcloud_scim::directory::write::DeleteMode::Suspend
    })
    .await;
    h.wait_ready().await;
    let g = h.groups_of_type("user_group").await[1]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let r = h
        .req(
            Method::POST,
            "/Users",
            &new_user("viauser", "via.user@example.com"),
        )
        .send()
        .await
        .unwrap();
    let id = json_of(r).await["id"].as_str().unwrap().to_string();
    // updateGroupsViaUsers: add and remove groups through the User resource.
    let r = h
        .req(
            Method::PATCH,
            &format!("/Users/{id}"),
            &patch(json!([{"op": "add", "path": "groups", "value": [{"value": g}]}])),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(h.user_groups(&id).await.contains(&g));
    let members: Vec<Value> = json_of(
        h.jc(
            Method::GET,
            &format!("/api/v2/usergroups/{g}/members?limit=100"),
        )
        .send()
        .await
        .unwrap(),
    )
    .await
    .as_array()
    .unwrap()
    .clone();
    assert!(
        members.iter().any(|m| m["to"]["id"] == id.as_str()),
        "the membership reached JumpCloud"
    );
    let r = h
        .req(
            Method::PATCH,
            &format!("/Users/{id}"),
            &patch(json!([{"op": "remove", "path": format!("groups[value eq \"{g}\"]")}])),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(!h.user_groups(&id).await.contains(&g));
    // users.delete_mode = suspend: DELETE suspends, the user stays listed, inactive.
    let r = h
        .req(Method::DELETE, &format!("/Users/{id}"), &Value::Null)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let u = json_of(h.get(&format!("/Users/{id}")).send().await.unwrap()).await;
    assert_eq!(u["active"], false);
    assert_eq!(h.jc_user(&id).await["state"], "SUSPENDED");
}

/// A PATCH of many members sends them a few at a time and publishes what landed once; when JumpCloud
/// refuses some (here: a user deleted in the console since the last refresh), the answer says how many of the
/// changes were applied, and the group shows exactly those.
#[tokio::test]
async fn a_member_batch_is_published_once_and_a_partial_failure_says_how_much_landed() {
    let h = Harness::start(small_emulator(30, 2), |_| {}).await;
    h.wait_ready().await;
    let users = json_of(h.get("/Users?count=30").send().await.unwrap()).await;
    let ids: Vec<String> = users["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["id"].as_str().unwrap().to_owned())
        .collect();
    let group = json_of(
        h.post("/Groups", &json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Batch"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    let gid = group["id"].as_str().unwrap().to_owned();
    let members = |ids: &[String]| -> Value {
        ids.iter()
            .map(|id| json!({"value": id}))
            .collect::<Vec<_>>()
            .into()
    };
    let before = h.last_refresh().await;
    let r = h
        .req(
            Method::PATCH,
            &format!("/Groups/{gid}"),
            &patch(json!([{"op": "add", "path": "members", "value": members(&ids[..20])}])),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let body = json_of(h.get(&format!("/Groups/{gid}")).send().await.unwrap()).await;
    assert_eq!(body["members"].as_array().unwrap().len(), 20);
    assert_eq!(
        h.last_refresh().await,
        before,
        "read-your-writes without a refresh"
    );

    // Delete one of the next five upstream only: the service still believes in it.
    h.delete_upstream_user(&ids[22]).await;
    let r = h
        .req(
            Method::PATCH,
            &format!("/Groups/{gid}"),
            &patch(json!([{"op": "add", "path": "members", "value": members(&ids[20..25])}])),
        )
        .send()
        .await
        .unwrap();
    let status = r.status();
    let err = json_of(r).await;
    assert!(
        status.is_client_error() || status.is_server_error(),
        "{status}"
    );
    let detail = err["detail"].as_str().unwrap();
    assert!(
        detail.starts_with("4 of 5 member changes were applied"),
        "{detail}"
    );
    let now = json_of(h.get(&format!("/Groups/{gid}")).send().await.unwrap()).await;
    let held: HashSet<String> = now["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["value"].as_str().unwrap().to_owned())
        .collect();
    let want: HashSet<String> = ids[..25]
        .iter()
        .filter(|id| **id != ids[22])
        .cloned()
        .collect();
    assert_eq!(held, want);
}
