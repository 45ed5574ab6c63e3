//! What an RFC 7643/7644 conformance suite checks, against a small fault-free directory (five users, two
//! groups): every attribute `/Schemas` publishes as writable round-trips exactly through POST, PUT and PATCH
//! add / replace / remove; `Location` equals `meta.location` on 201; `ETag` equals `meta.version`; DELETE
//! answers 204 with no body and the resource is 404 afterwards.

use reqwest::Method;
use serde_json::{Map, Value, json};

use crate::support::{Harness, TOKEN, json_of, small_emulator};

const ENT: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

fn send(h: &Harness, method: Method, path: &str, body: &Value) -> reqwest::RequestBuilder {
    h.http
        .request(method, h.scim(path))
        .bearer_auth(TOKEN)
        .header("content-type", "application/scim+json")
        .body(body.to_string())
}

/// A writable attribute as `/Schemas` publishes it.
#[derive(Debug, Clone)]
struct Writable {
    /// `None` for core attributes, the URN for extension ones.
    urn: Option<String>,
    name: String,
    multi: bool,
    kind: String,
    required: bool,
    subs: Vec<(String, String)>,
}

fn writable(schema: &Value, core: bool) -> Vec<Writable> {
    schema["attributes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["mutability"] == "readWrite")
        .map(|a| Writable {
            urn: if core {
                None
            } else {
                Some(schema["id"].as_str().unwrap().to_string())
            },
            name: a["name"].as_str().unwrap().to_string(),
            multi: a["multiValued"] == true,
            kind: a["type"].as_str().unwrap().to_string(),
            required: a["required"] == true,
            subs: a["subAttributes"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|s| s["mutability"] == "readWrite" || s["mutability"] == "immutable")
                .map(|s| {
                    (
                        s["name"].as_str().unwrap().to_string(),
                        s["type"].as_str().unwrap().to_string(),
                    )
                })
                .collect(),
        })
        .collect()
}

/// Another user, referenced by `manager` and `members`.
struct Peer {
    id: String,
    /// Its `meta.location`, which is what `$ref` holds.
    uri: String,
}

/// A value for an attribute, distinct per `round`; references to other resources use `peer`, by its id and
/// its URI as RFC 7643 publishes them.
fn sample(a: &Writable, round: u32, tag: &str, peer: &Peer) -> Value {
    let s = |base: &str| Value::from(format!("{base}-{tag}-{round}"));
    match (a.name.as_str(), a.kind.as_str()) {
        ("userName", _) => s("user"),
        ("active", _) => Value::Bool(round.is_multiple_of(2)),
        ("emails", _) => json!([
            {"value": format!("Primary.{tag}.{round}@Example.com"), "type": "work", "primary": true},
            {"value": format!("other.{tag}.{round}@example.net"), "type": "other"}
        ]),
        ("phoneNumbers", _) => json!([{"value": format!("+1 555 01{round:02}"), "type": "work"},
                                      {"value": format!("+1 555 02{round:02}"), "type": "mobile"}]),
        ("manager", _) => json!({"value": peer.id, "$ref": peer.uri}),
        ("members", _) => json!([{"value": peer.id, "$ref": peer.uri}]),
        (_, "complex") => {
            let mut m = Map::new();
            for (sub, kind) in &a.subs {
                let v = match kind.as_str() {
                    "boolean" => Value::Bool(true),
                    _ if sub == "type" => Value::from("work"),
                    _ => s(sub),
                };
                m.insert(sub.clone(), v);
            }
            if a.multi {
                Value::Array(vec![Value::Object(m)])
            } else {
                Value::Object(m)
            }
        }
        (_, "boolean") => Value::Bool(!round.is_multiple_of(2)),
        _ => s(&a.name),
    }
}

/// The attribute's value in a resource.
fn read<'a>(resource: &'a Value, a: &Writable) -> Option<&'a Value> {
    match &a.urn {
        None => resource.get(&a.name),
        Some(u) => resource.get(u).and_then(|e| e.get(&a.name)),
    }
}

/// Server-assigned sub-attributes (`$ref`, `display`, …) are not part of what the client wrote.
fn comparable(v: &Value, a: &Writable) -> Value {
    let keep = |o: &Map<String, Value>| -> Value {
        Value::Object(
            o.iter()
                .filter(|(k, _)| a.subs.iter().any(|(s, _)| s == *k))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        )
    };
    match v {
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|i| {
                    if let Value::Object(o) = i {
                        keep(o)
                    } else {
                        i.clone()
                    }
                })
                .collect(),
        ),
        Value::Object(o) if a.kind == "complex" => keep(o),
        other => other.clone(),
    }
}

fn put_attr(body: &mut Value, a: &Writable, v: Value) {
    match &a.urn {
        None => {
            body[&a.name] = v;
        }
        Some(u) => {
            if body.get(u).is_none() {
                body[u] = json!({});
            }
            body[u][&a.name] = v;
            let schemas = body["schemas"].as_array_mut().unwrap();
            if !schemas.iter().any(|s| s == u.as_str()) {
                schemas.push(Value::from(u.as_str()));
            }
        }
    }
}

fn path_of(a: &Writable) -> String {
    match &a.urn {
        None => a.name.clone(),
        Some(u) => format!("{u}:{}", a.name),
    }
}

async fn check_round_trips(
    h: &Harness,
    endpoint: &str,
    attrs: &[Writable],
    base: impl Fn(u32, &str) -> Value,
    peer: &Peer,
) {
    for a in attrs {
        let tag = a.name.to_lowercase();
        // POST with the attribute set.
        let mut body = base(0, &tag);
        put_attr(&mut body, a, sample(a, 0, &tag, peer));
        let r = send(h, Method::POST, endpoint, &body).send().await.unwrap();
        assert_eq!(
            r.status(),
            201,
            "POST {}: {}",
            a.name,
            r.text().await.unwrap()
        );
        let loc = r.headers()["location"].to_str().unwrap().to_string();
        let etag = r.headers()["etag"].to_str().unwrap().to_string();
        let created = json_of(r).await;
        assert_eq!(created["meta"]["location"], loc.as_str());
        assert_eq!(created["meta"]["version"], etag.as_str());
        let id = created["id"].as_str().unwrap().to_string();
        let got = json_of(h.get(&format!("{endpoint}/{id}")).send().await.unwrap()).await;
        assert_eq!(
            read(&got, a).map(|v| comparable(v, a)),
            Some(comparable(&sample(a, 0, &tag, peer), a)),
            "POST round trip of {} in {got:#}",
            a.name
        );

        // PUT with a new value.
        let mut body = base(0, &tag);
        put_attr(&mut body, a, sample(a, 1, &tag, peer));
        if a.name == "userName" || a.name == "displayName" {
            // The base names the resource by round 0; keep the sample.
        }
        let r = send(h, Method::PUT, &format!("{endpoint}/{id}"), &body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "PUT {}", a.name);
        let etag = r.headers()["etag"].to_str().unwrap().to_string();
        let put = json_of(r).await;
        assert_eq!(put["meta"]["version"], etag.as_str());
        assert_eq!(
            read(&put, a).map(|v| comparable(v, a)),
            Some(comparable(&sample(a, 1, &tag, peer), a)),
            "PUT {}",
            a.name
        );

        // PATCH replace, then remove (unless required), then add.
        let path = path_of(a);
        let v2 = sample(a, 2, &tag, peer);
        let ops = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "replace", "path": path, "value": v2}]});
        let r = send(h, Method::PATCH, &format!("{endpoint}/{id}"), &ops)
            .send()
            .await
            .unwrap();
        assert!(
            r.status().is_success(),
            "PATCH replace {}: {}",
            a.name,
            r.status()
        );
        let got = json_of(h.get(&format!("{endpoint}/{id}")).send().await.unwrap()).await;
        assert_eq!(
            read(&got, a).map(|v| comparable(v, a)),
            Some(comparable(&v2, a)),
            "PATCH replace {}",
            a.name
        );
        if !a.required && a.name != "active" {
            let ops = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [{"op": "remove", "path": path}]});
            let r = send(h, Method::PATCH, &format!("{endpoint}/{id}"), &ops)
                .send()
                .await
                .unwrap();
            assert!(
                r.status().is_success(),
                "PATCH remove {}: {}",
                a.name,
                r.status()
            );
            let got = json_of(h.get(&format!("{endpoint}/{id}")).send().await.unwrap()).await;
            let left = read(&got, a).map(|v| comparable(v, a));
            assert!(
                left.is_none() || left == Some(json!([])) || left == Some(json!({})),
                "PATCH remove {} left {left:?}",
                a.name
            );
            let v3 = sample(a, 3, &tag, peer);
            let ops = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [{"op": "add", "path": path, "value": v3}]});
            let r = send(h, Method::PATCH, &format!("{endpoint}/{id}"), &ops)
                .send()
                .await
                .unwrap();
            assert!(
                r.status().is_success(),
                "PATCH add {}: {}",
                a.name,
                r.status()
            );
            let got = json_of(h.get(&format!("{endpoint}/{id}")).send().await.unwrap()).await;
            assert_eq!(
                read(&got, a).map(|v| comparable(v, a)),
                Some(comparable(&v3, a)),
                "PATCH add {}",
                a.name
            );
        }

        // DELETE: 204, no body, then 404.
        let r = send(h, Method::DELETE, &format!("{endpoint}/{id}"), &Value::Null)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 204);
        assert!(r.bytes().await.unwrap().is_empty());
        assert_eq!(
            h.get(&format!("{endpoint}/{id}"))
                .send()
                .await
                .unwrap()
                .status(),
            404
        );
    }
}

#[tokio::test]
async fn every_writable_attribute_round_trips() {
    let h = Harness::start(small_emulator(5, 2), |_| {}).await;
    h.wait_ready().await;
    let first =
        json_of(h.get("/Users?count=1").send().await.unwrap()).await["Resources"][0].clone();
    let peer = Peer {
        id: first["id"].as_str().unwrap().to_string(),
        uri: first["meta"]["location"].as_str().unwrap().to_string(),
    };
    let schema = |id: &str| {
        let h = &h;
        let id = id.to_string();
        async move { json_of(h.get(&format!("/Schemas/{id}")).send().await.unwrap()).await }
    };
    let mut user_attrs = writable(
        &schema("urn:ietf:params:scim:schemas:core:2.0:User").await,
        true,
    );
    user_attrs.extend(writable(&schema(ENT).await, false));
    user_attrs.extend(writable(
        &schema("urn:jumpcloud-scim:schemas:extension:jumpcloud:2.0:User").await,
        false,
    ));
    assert!(user_attrs.len() >= 15, "{user_attrs:?}");
    let base_user = |round: u32, tag: &str| {
        json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": format!("rt-{tag}-{round}"),
            "emails": [{"value": format!("rt.{tag}.{round}@example.com"), "type": "work", "primary": true}],
        })
    };
    check_round_trips(&h, "/Users", &user_attrs, base_user, &peer).await;

    let mut group_attrs = writable(
        &schema("urn:ietf:params:scim:schemas:core:2.0:Group").await,
        true,
    );
    group_attrs.extend(writable(
        &schema("urn:jumpcloud-scim:schemas:extension:jumpcloud:2.0:Group").await,
        false,
    ));
    assert!(group_attrs.iter().any(|a| a.name == "members"));
    let base_group = |round: u32, tag: &str| json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": format!("rt group {tag} {round}")});
    check_round_trips(&h, "/Groups", &group_attrs, base_group, &peer).await;
}

#[tokio::test]
async fn lists_errors_and_content_types_follow_rfc_7644() {
    let h = Harness::start(small_emulator(5, 2), |_| {}).await;
    h.wait_ready().await;
    for path in [
        "/Users",
        "/Groups",
        "/Schemas",
        "/ResourceTypes",
        "/ServiceProviderConfig",
        "/Users/nope",
    ] {
        let r = h.get(path).send().await.unwrap();
        assert_eq!(
            r.headers()["content-type"],
            "application/scim+json",
            "{path}"
        );
    }
    let list = json_of(h.get("/Users").send().await.unwrap()).await;
    assert_eq!(
        list["schemas"],
        json!(["urn:ietf:params:scim:api:messages:2.0:ListResponse"])
    );
    for k in ["totalResults", "itemsPerPage", "startIndex"] {
        assert!(list[k].is_u64(), "{k} is an integer");
    }
    let e = json_of(h.get("/Users/nope").send().await.unwrap()).await;
    assert_eq!(
        e["schemas"],
        json!(["urn:ietf:params:scim:api:messages:2.0:Error"])
    );
    assert!(e["status"].is_string());
    // Unsupported content type on a write: 415 as a SCIM error.
    let r = h
        .http
        .post(h.scim("/Users"))
        .bearer_auth(TOKEN)
        .header("content-type", "text/plain")
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 415);
    assert_eq!(json_of(r).await["status"], "415");
    // A body over limits.body_bytes: 413, still a SCIM error.
    let big = format!("{{\"userName\": \"{}\"}}", "x".repeat(2_000_000));
    let r = h
        .http
        .post(h.scim("/Users"))
        .bearer_auth(TOKEN)
        .header("content-type", "application/scim+json")
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    assert_eq!(r.headers()["content-type"], "application/scim+json");
    assert_eq!(json_of(r).await["status"], "413");
}
