use serde_json::{Value, json};

use super::*;
use crate::scim::ResourceKind;
use crate::scim::attrs::{merge_request_only, split_request_only};

const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
const JUMPCLOUD: &str = "urn:jumpcloud-scim:schemas:extension:jumpcloud:2.0:User";

/// A view's whole tree as a `Value` (keys by their schema name), to compare a tape with the JSON it read.
fn rebuild<'a, V: View<'a>>(v: V, names: &[&'static str]) -> Value {
    match v.shape() {
        Shape::Null => Value::Null,
        Shape::Bool(b) => Value::Bool(b),
        Shape::Num(n) => json!(n),
        Shape::Str(s) => Value::from(s),
        Shape::Array => Value::Array(v.items().map(|i| rebuild(i, names)).collect()),
        Shape::Object => {
            let mut out = serde_json::Map::new();
            for name in names {
                if let Some(child) = v.member(Key::of(name)) {
                    out.insert((*name).to_owned(), rebuild(child, names));
                }
            }
            Value::Object(out)
        }
    }
}

fn names() -> Vec<&'static str> {
    vec![
        "schemas",
        "id",
        "externalId",
        "userName",
        "name",
        "givenName",
        "familyName",
        "formatted",
        "active",
        "emails",
        "value",
        "type",
        "primary",
        "display",
        "meta",
        "lastModified",
        "created",
        "resourceType",
        "version",
        "location",
        ENTERPRISE,
        "employeeNumber",
        "manager",
        "$ref",
        "displayName",
        JUMPCLOUD,
        "state",
        "title",
    ]
}

fn user() -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ENTERPRISE],
        "id": "u1",
        "userName": "J\u{00f6}rg \"the\" Smith\\",
        "name": {"givenName": "Jörg", "familyName": "Smith", "formatted": "Jörg Smith"},
        "active": true,
        "title": null,
        "emails": [{"value": "a@x", "type": "work", "primary": true}, {"value": "b@x", "primary": false}],
        "meta": {"resourceType": "User", "version": "W/\"1\"", "lastModified": "2026-01-01T00:00:00.000Z"},
        ENTERPRISE: {"employeeNumber": "42", "manager": {"value": "u2", "$ref": "../Users/u2"}},
        "notInAnySchema": {"deep": [1, 2, 3]},
    })
}

#[test]
fn a_tape_reads_as_the_json_it_was_built_from() {
    let v = user();
    let bytes = serde_json::to_vec(&v).unwrap();
    let tape = Tape::build(&bytes, None).unwrap();
    let names = names();
    assert_eq!(
        rebuild(tape.root(&bytes, None), &names),
        rebuild(&v, &names)
    );
    let root = tape.root(&bytes, None);
    // An escaped string comes back unescaped; undefined keys are never found.
    assert_eq!(
        root.member(Key::of("userName")).unwrap().as_str(),
        Some("Jörg \"the\" Smith\\")
    );
    assert!(root.member(Key::of("notInAnySchema")).is_none());
    // Containers are stepped over whole: the root has every member, the undefined one included.
    assert_eq!(root.items().count(), v.as_object().unwrap().len());
}

#[test]
fn a_tape_with_request_only_attributes_reads_as_the_merged_resource() {
    let mut full = user();
    full[JUMPCLOUD] = json!({"state": "ACTIVATED"});
    full["schemas"]
        .as_array_mut()
        .unwrap()
        .push(JUMPCLOUD.into());
    let mut served = full.clone();
    let Some(extra) = split_request_only(&mut served, ResourceKind::User) else {
        panic!("the JumpCloud extension's state is returned on request");
    };
    let (doc, extra_bytes) = (
        serde_json::to_vec(&served).unwrap(),
        serde_json::to_vec(&extra).unwrap(),
    );
    let tape = Tape::build(&doc, Some(&extra_bytes)).unwrap();
    let mut merged = served.clone();
    merge_request_only(&mut merged, &extra, ResourceKind::User);
    let names = names();
    let read = rebuild(tape.root(&doc, Some(&extra_bytes)), &names);
    // `schemas` may list the URNs in another order; compare them as sets.
    let set = |v: &Value| {
        let mut s: Vec<String> = v["schemas"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u.as_str().unwrap().to_owned())
            .collect();
        s.sort();
        s
    };
    assert_eq!(set(&read), set(&merged));
    let without = |mut v: Value| {
        v.as_object_mut().unwrap().remove("schemas");
        v
    };
    assert_eq!(without(read), without(rebuild(&merged, &names)));
}

#[test]
fn an_extension_object_in_both_documents_is_one_object() {
    let doc = serde_json::to_vec(&json!({"id": "1", ENTERPRISE: {"employeeNumber": "7"}})).unwrap();
    let extra = serde_json::to_vec(&json!({ENTERPRISE: {"manager": {"value": "m\"1"}}})).unwrap();
    let tape = Tape::build(&doc, Some(&extra)).unwrap();
    let root = tape.root(&doc, Some(&extra));
    let ext = root.member(Key::of(ENTERPRISE)).unwrap();
    assert_eq!(
        ext.member(Key::of("employeeNumber")).unwrap().as_str(),
        Some("7")
    );
    let manager = ext.member(Key::of("manager")).unwrap();
    assert_eq!(
        manager.member(Key::of("value")).unwrap().as_str(),
        Some("m\"1")
    );
    assert_eq!(root.items().count(), 2, "id and one enterprise object");
}

#[test]
fn only_objects_make_tapes() {
    for text in ["[1]", "\"x\"", "{", "{} {}", "{\"a\":}"] {
        assert!(Tape::build(text.as_bytes(), None).is_err(), "{text}");
    }
    assert!(Tape::build(b"{}", Some(b"[]")).is_err());
}

#[test]
fn a_tape_costs_eight_bytes_a_value() {
    let bytes = serde_json::to_vec(&user()).unwrap();
    let tape = Tape::build(&bytes, None).unwrap();
    assert_eq!(std::mem::size_of::<Node>(), 8);
    // The only copied text is what the serialiser escaped (the userName and the version, each after its
    // length), and the numbers (8 bytes each: the three in `notInAnySchema`).
    assert_eq!(
        tape.side.len(),
        4 + "Jörg \"the\" Smith\\".len() + 4 + "W/\"1\"".len() + 3 * 8
    );
}

#[test]
fn numbers_and_escapes_read_back() {
    let bytes = br#"{"emails":[1,-2.5,1e300],"userName":"x\u00e9\"q"}"#;
    let tape = Tape::build(bytes, None).unwrap();
    let root = tape.root(bytes, None);
    let nums: Vec<Shape> = root
        .member(Key::of("emails"))
        .unwrap()
        .items()
        .map(|v| v.shape())
        .collect();
    assert_eq!(
        nums,
        vec![Shape::Num(1.0), Shape::Num(-2.5), Shape::Num(1e300)]
    );
    assert_eq!(
        root.member(Key::of("userName")).unwrap().as_str(),
        Some("xé\"q")
    );
}
