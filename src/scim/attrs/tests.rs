use serde_json::{Value, json};

use super::*;
use crate::scim::schema::{
    ENTERPRISE_USER_URN, GROUP_URN, JUMPCLOUD_GROUP_URN, JUMPCLOUD_USER_URN, USER_URN,
};

fn user() -> Value {
    json!({
        "schemas": [USER_URN, ENTERPRISE_USER_URN, JUMPCLOUD_USER_URN],
        "id": "u-1",
        "externalId": "e-1",
        "userName": "bjensen",
        "password": "secret",
        "name": {"givenName": "Barbara", "familyName": "Jensen", "formatted": "Barbara Jensen"},
        "active": true,
        "emails": [
            {"value": "b@example.com", "type": "work", "primary": true},
            {"value": "b@home.org", "type": "other"}
        ],
        "groups": [{"value": "g-1", "display": "Guides"}],
        "meta": {"resourceType": "User", "lastModified": "2026-01-01T00:00:00Z"},
        ENTERPRISE_USER_URN: {"employeeNumber": "7", "manager": {"value": "m", "displayName": "M"}},
        JUMPCLOUD_USER_URN: {"description": "d", "state": "ACTIVATED"}
    })
}

fn group() -> Value {
    json!({
        "schemas": [GROUP_URN, JUMPCLOUD_GROUP_URN],
        "id": "g-1",
        "displayName": "Guides",
        "members": [{"value": "u-1", "display": "B"}],
        "meta": {"resourceType": "Group"},
        JUMPCLOUD_GROUP_URN: {"groupType": "user_group"}
    })
}

fn project(
    attributes: Option<&str>,
    excluded: Option<&str>,
    kind: ResourceKind,
    resource: &Value,
) -> Value {
    AttrSelection::parse(attributes, excluded, kind)
        .unwrap()
        .project(resource, kind)
}

fn keys(v: &Value) -> Vec<&str> {
    v.as_object().unwrap().keys().map(String::as_str).collect()
}

#[test]
fn default_removes_only_never_returned() {
    let sel = AttrSelection::parse(None, None, ResourceKind::User).unwrap();
    assert!(sel.is_default());
    let out = sel.project(&user(), ResourceKind::User);
    let mut want = user();
    want.as_object_mut().unwrap().remove("password");
    // `state` is returned only on request.
    want[JUMPCLOUD_USER_URN] = json!({"description": "d"});
    assert_eq!(out, want);
    assert!(
        AttrSelection::parse(Some(""), Some("  "), ResourceKind::User)
            .unwrap()
            .is_default()
    );
}

#[test]
fn attributes_keep_named_plus_always() {
    let out = project(Some("userName"), None, ResourceKind::User, &user());
    assert_eq!(
        out,
        json!({"id": "u-1", "userName": "bjensen", "schemas": [USER_URN]})
    );
    let out = project(Some("USERNAME, Active"), None, ResourceKind::User, &user());
    assert_eq!(keys(&out), ["active", "id", "schemas", "userName"]);
    // Unknown names are ignored; what remains is the always-returned part.
    let out = project(Some("nickName"), None, ResourceKind::User, &user());
    assert_eq!(out, json!({"id": "u-1", "schemas": [USER_URN]}));
    // `password` is never returned, even when named.
    let out = project(Some("password,userName"), None, ResourceKind::User, &user());
    assert!(out.get("password").is_none());
    // meta is `returned: default`.
    assert!(
        project(Some("userName"), None, ResourceKind::User, &user())
            .get("meta")
            .is_none()
    );
    assert_eq!(
        project(Some("meta.lastModified"), None, ResourceKind::User, &user())["meta"],
        json!({"lastModified": "2026-01-01T00:00:00Z"})
    );
}

#[test]
fn sub_attribute_selection() {
    let out = project(Some("name.givenName"), None, ResourceKind::User, &user());
    assert_eq!(
        out,
        json!({"id": "u-1", "name": {"givenName": "Barbara"}, "schemas": [USER_URN]})
    );
    let out = project(Some("name"), None, ResourceKind::User, &user());
    assert_eq!(out["name"], user()["name"]);
    let out = project(Some("emails.value"), None, ResourceKind::User, &user());
    assert_eq!(
        out["emails"],
        json!([{"value": "b@example.com"}, {"value": "b@home.org"}])
    );
    let out = project(
        Some("emails.value,emails.type"),
        None,
        ResourceKind::User,
        &user(),
    );
    assert_eq!(
        out["emails"],
        json!([{"value": "b@example.com", "type": "work"}, {"value": "b@home.org", "type": "other"}])
    );
    // Named parent and sub together: the parent wins.
    let out = project(
        Some("emails,emails.value"),
        None,
        ResourceKind::User,
        &user(),
    );
    assert_eq!(out["emails"], user()["emails"]);
    // A sub-attribute no element has: the attribute disappears.
    let no_middle = project(Some("name.middleName"), None, ResourceKind::User, &user());
    assert!(no_middle.get("name").is_none());
}

#[test]
fn excluded_attributes() {
    let out = project(None, Some("members"), ResourceKind::Group, &group());
    assert!(out.get("members").is_none());
    assert_eq!(out["displayName"], "Guides");
    // Always-returned attributes cannot be excluded.
    let out = project(
        None,
        Some("id,schemas,displayName"),
        ResourceKind::Group,
        &group(),
    );
    assert_eq!(out["id"], "g-1");
    assert!(
        out["schemas"]
            .as_array()
            .unwrap()
            .contains(&json!(GROUP_URN))
    );
    assert!(out.get("displayName").is_none());
    let out = project(None, Some("emails.type,meta"), ResourceKind::User, &user());
    assert_eq!(
        out["emails"],
        json!([{"value": "b@example.com", "primary": true}, {"value": "b@home.org"}])
    );
    assert!(out.get("meta").is_none());
    assert!(out.get("password").is_none());
    // attributes wins when both are given.
    let out = project(
        Some("displayName"),
        Some("displayName"),
        ResourceKind::Group,
        &group(),
    );
    assert_eq!(out["displayName"], "Guides");
}

#[test]
fn extension_attributes_and_schemas() {
    let out = project(
        Some("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber"),
        None,
        ResourceKind::User,
        &user(),
    );
    assert_eq!(
        out,
        json!({
            "id": "u-1",
            "schemas": [USER_URN, ENTERPRISE_USER_URN],
            ENTERPRISE_USER_URN: {"employeeNumber": "7"}
        })
    );
    let out = project(
        Some("employeenumber,manager.value"),
        None,
        ResourceKind::User,
        &user(),
    );
    assert_eq!(
        out[ENTERPRISE_USER_URN],
        json!({"employeeNumber": "7", "manager": {"value": "m"}})
    );
    let out = project(
        Some("URN:ietf:params:scim:schemas:extension:enterprise:2.0:User"),
        None,
        ResourceKind::User,
        &user(),
    );
    assert_eq!(out[ENTERPRISE_USER_URN], user()[ENTERPRISE_USER_URN]);
    assert_eq!(out["schemas"], json!([USER_URN, ENTERPRISE_USER_URN]));
    // Excluding a whole extension drops its object and its URN.
    let out = project(None, Some(ENTERPRISE_USER_URN), ResourceKind::User, &user());
    assert!(out.get(ENTERPRISE_USER_URN).is_none());
    assert_eq!(out["schemas"], json!([USER_URN, JUMPCLOUD_USER_URN]));
    // Excluding its only attribute empties the object, which then goes too.
    let out = project(
        None,
        Some("urn:jumpcloud-scim:schemas:extension:jumpcloud:2.0:User:description"),
        ResourceKind::User,
        &user(),
    );
    assert!(out.get(JUMPCLOUD_USER_URN).is_none());
    assert_eq!(out["schemas"], json!([USER_URN, ENTERPRISE_USER_URN]));
    // Group extension.
    let out = project(Some("groupType"), None, ResourceKind::Group, &group());
    assert_eq!(
        out,
        json!({"id": "g-1", "schemas": [GROUP_URN, JUMPCLOUD_GROUP_URN], JUMPCLOUD_GROUP_URN: {"groupType": "user_group"}})
    );
}

#[test]
fn schemas_always_present_with_core() {
    let bare = json!({"id": "x", "userName": "u", ENTERPRISE_USER_URN: {"costCenter": "1"}});
    let out = project(None, None, ResourceKind::User, &bare);
    assert_eq!(out["schemas"], json!([USER_URN, ENTERPRISE_USER_URN]));
    let out = project(Some("userName"), None, ResourceKind::User, &bare);
    assert_eq!(out["schemas"], json!([USER_URN]));
}

#[test]
fn unknown_keys_follow_the_mode() {
    let resource =
        json!({"schemas": [USER_URN], "id": "x", "roles": [], "urn:example:other": {"a": 1}});
    let out = project(None, None, ResourceKind::User, &resource);
    assert!(out.get("roles").is_some() && out.get("urn:example:other").is_some());
    let out = project(Some("userName"), None, ResourceKind::User, &resource);
    assert!(out.get("roles").is_none() && out.get("urn:example:other").is_none());
    let out = project(None, Some("userName"), ResourceKind::User, &resource);
    assert!(out.get("roles").is_some());
}

#[test]
fn search_request_lists() {
    let sel = AttrSelection::from_lists(
        &["userName".into(), "name.givenName".into()],
        &[],
        ResourceKind::User,
    )
    .unwrap();
    let out = sel.project(&user(), ResourceKind::User);
    assert_eq!(keys(&out), ["id", "name", "schemas", "userName"]);
    let sel = AttrSelection::from_lists(&[], &["emails".into()], ResourceKind::User).unwrap();
    assert!(
        sel.project(&user(), ResourceKind::User)
            .get("emails")
            .is_none()
    );
    assert!(
        AttrSelection::from_lists(&[], &[], ResourceKind::User)
            .unwrap()
            .is_default()
    );
    assert!(
        AttrSelection::from_lists(&["".into()], &[], ResourceKind::User)
            .unwrap()
            .is_default()
    );
}

#[test]
fn non_objects_pass_through() {
    let sel = AttrSelection::parse(Some("userName"), None, ResourceKind::User).unwrap();
    assert_eq!(sel.project(&json!("x"), ResourceKind::User), json!("x"));
}

#[test]
fn request_only_attributes_come_when_named() {
    let state = "urn:jumpcloud-scim:schemas:extension:jumpcloud:2.0:User:state";
    let out = project(Some(state), None, ResourceKind::User, &user());
    assert_eq!(out[JUMPCLOUD_USER_URN], json!({"state": "ACTIVATED"}));
    let out = project(Some(JUMPCLOUD_USER_URN), None, ResourceKind::User, &user());
    assert_eq!(out[JUMPCLOUD_USER_URN], user()[JUMPCLOUD_USER_URN]);
    let out = project(None, Some("userName"), ResourceKind::User, &user());
    assert_eq!(out[JUMPCLOUD_USER_URN], json!({"description": "d"}));
}

#[test]
fn request_only_attributes_split_out_and_merge_back() {
    let mut u = user();
    let extra = split_request_only(&mut u, ResourceKind::User).unwrap();
    assert_eq!(extra, json!({JUMPCLOUD_USER_URN: {"state": "ACTIVATED"}}));
    assert_eq!(u[JUMPCLOUD_USER_URN], json!({"description": "d"}));
    merge_request_only(&mut u, &extra, ResourceKind::User);
    assert_eq!(u, user());
    // An extension left empty goes with its URN, and comes back with it.
    let mut g = group();
    let extra = split_request_only(&mut g, ResourceKind::Group).unwrap();
    assert!(g.get(JUMPCLOUD_GROUP_URN).is_none());
    assert_eq!(g["schemas"], json!([GROUP_URN]));
    merge_request_only(&mut g, &extra, ResourceKind::Group);
    assert_eq!(g, group());
    let mut plain = json!({"schemas": [GROUP_URN], "id": "g"});
    assert!(split_request_only(&mut plain, ResourceKind::Group).is_none());
}

#[test]
fn request_only_is_declared_only_where_it_can_be_split() {
    let registry = SchemaRegistry::get();
    for schema in registry.schemas() {
        for attr in &schema.attributes {
            for sub in &attr.sub_attributes {
                assert_ne!(
                    sub.returned,
                    Returned::Request,
                    "{}:{}.{} is returned on request, which only top-level attributes may be",
                    schema.id,
                    attr.name,
                    sub.name
                );
            }
        }
    }
}
