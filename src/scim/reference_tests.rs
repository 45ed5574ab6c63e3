use super::*;
use serde_json::json;

const BASE: &str = "https://scim.example.com/scim/v2";

#[test]
fn own_user_uris_name_their_id() {
    let r = References::new(BASE);
    for (uri, want) in [
        ("https://scim.example.com/scim/v2/Users/abc", Some("abc")),
        (
            "HTTPS://SCIM.example.com:443/scim/v2/Users/abc/",
            Some("abc"),
        ),
        ("/scim/v2/Users/abc", Some("abc")),
        ("Users/abc", Some("abc")),
        ("https://other.example.com/scim/v2/Users/abc", None),
        ("http://scim.example.com/scim/v2/Users/abc", None),
        ("https://scim.example.com/scim/v2/Groups/abc", None),
        ("https://scim.example.com/elsewhere/Users/abc", None),
        ("/Users/abc", None),
        ("Users/", None),
        ("Users/a/b", None),
        ("urn:x", None),
    ] {
        assert_eq!(r.user_id(uri), want, "{uri}");
    }
}

#[test]
fn value_ref_or_both() {
    let r = References::new(BASE);
    let uri = "https://scim.example.com/scim/v2/Users/u1";
    assert_eq!(
        r.resolve("manager", Some("u1"), None).unwrap().as_deref(),
        Some("u1")
    );
    assert_eq!(
        r.resolve("manager", None, Some(uri)).unwrap().as_deref(),
        Some("u1")
    );
    assert_eq!(
        r.resolve("manager", Some("u1"), Some(uri))
            .unwrap()
            .as_deref(),
        Some("u1")
    );
    let e = r.resolve("manager", Some("u2"), Some(uri)).unwrap_err();
    assert_eq!(
        e.scim_type.as_ref().map(|t| t.as_str()),
        Some("invalidValue")
    );
    assert!(e.detail.contains("different users"), "{}", e.detail);
    let e = r
        .resolve("members", None, Some("https://evil.example/Users/u1"))
        .unwrap_err();
    assert!(e.detail.contains("members.$ref"), "{}", e.detail);
    assert_eq!(r.resolve("manager", None, None).unwrap(), None);
    assert_eq!(
        r.element_id("members", &json!({"$ref": uri}))
            .unwrap()
            .as_deref(),
        Some("u1")
    );
    assert_eq!(
        r.element_id("members", &json!("u9")).unwrap().as_deref(),
        Some("u9")
    );
    assert!(r.element_id("members", &json!(7)).is_err());
}

#[test]
fn strip_then_settle_follows_what_the_client_wrote() {
    let r = References::new(BASE);
    let served = json!({
        "members": [{"value": "u1", "$ref": format!("{BASE}/Users/u1")}],
    });
    let mut before = served.as_object().unwrap().clone();
    r.strip(&mut before, ResourceKind::Group);
    assert_eq!(before["members"], json!([{"value": "u1"}]));
    let mut doc = before.clone();
    doc["members"]
        .as_array_mut()
        .unwrap()
        .push(json!({"$ref": "Users/u2"}));
    r.settle(&mut doc, &before, ResourceKind::Group).unwrap();
    assert_eq!(doc["members"], json!([{"value": "u1"}, {"value": "u2"}]));

    // The manager's $ref alone changed: its value follows.
    let ent = crate::scim::schema::ENTERPRISE_USER_URN;
    let mut before = json!({ent: {"manager": {"value": "m1"}}})
        .as_object()
        .unwrap()
        .clone();
    let mut doc = json!({ent: {"manager": {"value": "m1", "$ref": "Users/m2"}}})
        .as_object()
        .unwrap()
        .clone();
    r.settle(&mut doc, &before, ResourceKind::User).unwrap();
    assert_eq!(doc[ent]["manager"], json!({"value": "m2"}));
    // A new value and a $ref elsewhere: refused.
    before = json!({}).as_object().unwrap().clone();
    let mut doc = json!({ent: {"manager": {"value": "m3", "$ref": "Users/m2"}}})
        .as_object()
        .unwrap()
        .clone();
    assert!(r.settle(&mut doc, &before, ResourceKind::User).is_err());
}
