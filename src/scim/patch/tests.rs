use scim_v2::models::errors::ScimType;
use serde_json::{Value, json};

use super::*;
use crate::scim::schema::{
    ENTERPRISE_USER_URN, GROUP_URN, JUMPCLOUD_GROUP_URN, JUMPCLOUD_USER_URN, USER_URN,
};

const ENT: &str = ENTERPRISE_USER_URN;

fn user() -> Value {
    json!({
        "schemas": [USER_URN, JUMPCLOUD_USER_URN],
        "id": "u-1",
        "externalId": "e-1",
        "userName": "bjensen",
        "name": {"givenName": "Barbara", "familyName": "Jensen", "formatted": "Barbara Jensen"},
        "displayName": "Babs",
        "active": true,
        "emails": [{"value": "b@example.com", "type": "work", "primary": true}],
        "groups": [{"value": "g-1", "display": "Guides", "type": "direct"}],
        "meta": {"resourceType": "User", "lastModified": "2026-01-01T00:00:00Z"},
        JUMPCLOUD_USER_URN: {"state": "ACTIVATED", "locked": false}
    })
}

fn group() -> Value {
    json!({
        "schemas": [GROUP_URN, JUMPCLOUD_GROUP_URN],
        "id": "g-1",
        "displayName": "Guides",
        "members": [
            {"value": "u-1", "$ref": "http://localhost/scim/v2/Users/u-1"},
            {"value": "u-2", "$ref": "http://localhost/scim/v2/Users/u-2"}
        ],
        "meta": {"resourceType": "Group"},
        JUMPCLOUD_GROUP_URN: {"groupType": "user_group", "description": "d"}
    })
}

fn body(ops: Value) -> Value {
    json!({"schemas": [PATCH_OP_URN], "Operations": ops})
}

fn patch(resource: &Value, kind: ResourceKind, ops: Value) -> Result<PatchOutcome, ScimError> {
    apply_patch(resource, &body(ops), kind, &PatchOptions::default())
}

fn ok(resource: &Value, kind: ResourceKind, ops: Value) -> Value {
    patch(resource, kind, ops.clone())
        .unwrap_or_else(|e| panic!("{ops}: {e}"))
        .resource
}

fn err(resource: &Value, kind: ResourceKind, ops: Value) -> ScimError {
    patch(resource, kind, ops.clone()).expect_err(&ops.to_string())
}

fn member_ids(g: &Value) -> Vec<&str> {
    g["members"].as_array().map_or(Vec::new(), |m| {
        m.iter().map(|m| m["value"].as_str().unwrap()).collect()
    })
}

/// scim-clients.md §5, one row per input variant the three clients send.
#[test]
fn accept_list_from_the_clients() {
    // `op` in any case (Entra default: capitalised).
    for op in ["Replace", "REPLACE", "replace", "rEpLaCe"] {
        let out = ok(
            &user(),
            ResourceKind::User,
            json!([{"op": op, "path": "displayName", "value": "B"}]),
        );
        assert_eq!(out["displayName"], "B", "{op}");
    }
    let out = ok(
        &user(),
        ResourceKind::User,
        json!([{"Op": "Remove", "Path": "displayName"}]),
    );
    assert!(out.get("displayName").is_none());

    // Path-less object value with plain keys (Okta deactivate).
    let out = ok(
        &user(),
        ResourceKind::User,
        json!([{"op": "replace", "value": {"active": false}}]),
    );
    assert_eq!(out["active"], false);

    // Path-less value with dotted and full-URN keys (Entra with aadOptscim062020).
    let out = ok(
        &user(),
        ResourceKind::User,
        json!([{"op": "replace", "value": {
            "name.givenName": "Barb",
            "NAME.FAMILYNAME": "J",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber": "701984",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager": {"value": "m-1"},
            "active": false
        }}]),
    );
    assert_eq!(
        out["name"],
        json!({"givenName": "Barb", "familyName": "J", "formatted": "Barbara Jensen"})
    );
    assert_eq!(
        out[ENT],
        json!({"employeeNumber": "701984", "manager": {"value": "m-1"}})
    );
    assert_eq!(out["schemas"], json!([USER_URN, JUMPCLOUD_USER_URN, ENT]));
    assert_eq!(out["active"], false);

    // Path-less replace carrying id + displayName on a Group (Okta): id is a no-op when it matches.
    let out = patch(
        &group(),
        ResourceKind::Group,
        json!([{"op": "replace", "value": {"id": "g-1", "displayName": "Tour Guides"}}]),
    )
    .unwrap();
    assert_eq!(out.resource["displayName"], "Tour Guides");
    assert!(out.membership.is_empty());
    let e = err(
        &group(),
        ResourceKind::Group,
        json!([{"op": "replace", "value": {"id": "g-2", "displayName": "X"}}]),
    );
    assert_eq!(e.scim_type, Some(ScimType::Mutability));

    // Value-filter path with a sub-attribute (Entra).
    let out = ok(
        &user(),
        ResourceKind::User,
        json!([{"op": "Replace", "path": "emails[type eq \"work\"].value", "value": "new@example.com"}]),
    );
    assert_eq!(
        out["emails"],
        json!([{"value": "new@example.com", "type": "work", "primary": true}])
    );

    // members[value eq "…"] remove (Okta, Entra with the flag, SailPoint recipes).
    let out = patch(
        &group(),
        ResourceKind::Group,
        json!([{"op": "remove", "path": "members[value eq \"u-1\"]"}]),
    )
    .unwrap();
    assert_eq!(member_ids(&out.resource), ["u-2"]);
    assert_eq!(
        out.membership,
        MembershipChange {
            added: vec![],
            removed: vec!["u-1".into()]
        }
    );

    // remove `members` with a value array (Entra default).
    let out = patch(
        &group(),
        ResourceKind::Group,
        json!([{"op": "Remove", "path": "members", "value": [{"value": "u-2"}, {"value": "u-9"}]}]),
    )
    .unwrap();
    assert_eq!(member_ids(&out.resource), ["u-1"]);
    assert_eq!(out.membership.removed, ["u-2"]);

    // replace `members` with a full array (Okta): only the difference is reported.
    let out = patch(
        &group(),
        ResourceKind::Group,
        json!([{"op": "replace", "path": "members", "value": [
            {"value": "u-2", "display": "Jim"}, {"value": "u-3", "display": "Ann"}
        ]}]),
    )
    .unwrap();
    assert_eq!(member_ids(&out.resource), ["u-2", "u-3"]);
    assert_eq!(
        out.membership,
        MembershipChange {
            added: vec!["u-3".into()],
            removed: vec!["u-1".into()]
        }
    );
    // Server-assigned sub-attributes in values are dropped.
    assert_eq!(out.resource["members"][1], json!({"value": "u-3"}));

    // `active` as "True"/"False" strings (Entra default).
    for (raw, want) in [
        ("False", false),
        ("True", true),
        ("false", false),
        ("TRUE", true),
    ] {
        let out = ok(
            &user(),
            ResourceKind::User,
            json!([{"op": "Replace", "path": "active", "value": raw}]),
        );
        assert_eq!(out["active"], want, "{raw}");
    }

    // Manager as [{"$ref":…,"value":…}] on path `manager` (Entra).
    let out = ok(
        &user(),
        ResourceKind::User,
        json!([{"op": "Add", "path": "manager", "value": [{"$ref": "http://localhost/scim/v2/Users/m-7", "value": "m-7"}]}]),
    );
    assert_eq!(out[ENT]["manager"], json!({"value": "m-7"}));

    // Unknown extra schema URN in bodies (Entra's ADSCIM group URN) and read-only attributes
    // (meta, groups: [], id) echoed in a path-less value.
    let adscim = "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group";
    let out = apply_patch(
        &group(),
        &json!({"schemas": [PATCH_OP_URN, adscim], "Operations": [{"op": "Replace", "value": {
            "schemas": [GROUP_URN, adscim], "meta": {"resourceType": "Group", "created": "x"}, "id": "g-1", "displayName": "Renamed"
        }}]}),
        ResourceKind::Group,
        &PatchOptions::default(),
    )
    .unwrap();
    assert_eq!(out.resource["displayName"], "Renamed");
    assert_eq!(out.resource["schemas"], group()["schemas"]);
    assert_eq!(out.resource["meta"], group()["meta"]);
    let out = patch(
        &user(),
        ResourceKind::User,
        json!([{"op": "replace", "value": {"groups": [], "meta": {}, "id": "u-1", "title": "T"}}]),
    )
    .unwrap();
    assert_eq!(out.resource["groups"], user()["groups"]);
    assert!(out.membership.is_empty());
    assert_eq!(out.resource["title"], "T");

    // Flattened keys like name.givenName (also what a SailPoint-facing body uses).
    let out = ok(
        &user(),
        ResourceKind::User,
        json!([{"op": "add", "value": {"name.middleName": "Jane", "emails.type": "work"}}]),
    );
    assert_eq!(out["name"]["middleName"], "Jane");
}

#[test]
fn add_operation() {
    // Single-valued: replaces; missing: added.
    let out = ok(
        &user(),
        ResourceKind::User,
        json!([{"op": "add", "path": "title", "value": "Guide"}]),
    );
    assert_eq!(out["title"], "Guide");
    // Multi-valued: appends, skipping values already present.
    let out = ok(
        &user(),
        ResourceKind::User,
        json!([{"op": "add", "path": "emails", "value": [
            {"value": "B@EXAMPLE.COM", "type": "work"},
            {"value": "b@home.org", "type": "other"}
        ]}]),
    );
    assert_eq!(out["emails"].as_array().unwrap().len(), 2);
    assert_eq!(
        out["emails"][1],
        json!({"value": "b@home.org", "type": "other"})
    );
    // The same address with another type is another value.
    let out = ok(
        &user(),
        ResourceKind::User,
        json!([{"op": "add", "path": "emails", "value": {"value": "b@example.com", "type": "other"}}]),
    );
    assert_eq!(out["emails"].as_array().unwrap().len(), 2);
    // Members: adding an existing member changes nothing; several at once (Entra gallery checklist).
    let out = patch(
        &group(),
        ResourceKind::Group,
        json!([{"op": "add", "path": "members", "value": [{"value": "u-1"}]}]),
    )
    .unwrap();
    assert!(!out.changed && out.membership.is_empty());
    let out = patch(&group(), ResourceKind::Group, json!([{"op": "Add", "path": "members", "value": [{"value": "u-3"}, {"value": "u-4"}, {"value": "u-3"}]}]))
        .unwrap();
    assert_eq!(member_ids(&out.resource), ["u-1", "u-2", "u-3", "u-4"]);
    assert_eq!(out.membership.added, ["u-3", "u-4"]);
    // add null changes nothing.
    let out = patch(
        &user(),
        ResourceKind::User,
        json!([{"op": "add", "path": "title", "value": null}]),
    )
    .unwrap();
    assert!(!out.changed);
    // Path-less add of the RFC's example: emails appended, unknown nickname ignored.
    let out = ok(
        &user(),
        ResourceKind::User,
        json!([{"op": "add", "value": {"emails": [{"value": "babs@jensen.org", "type": "home"}], "nickname": "Babs"}}]),
    );
    assert_eq!(out["emails"].as_array().unwrap().len(), 2);
    assert!(out.get("nickname").is_none());
}

#[test]
fn replace_operation() {
    // Replace of a missing attribute acts as add.
    let out = ok(
        &user(),
        ResourceKind::User,
        json!([{"op": "replace", "path": "userType", "value": "Employee"}]),
    );
    assert_eq!(out["userType"], "Employee");
    // Complex: given sub-attributes replace, the others stay.
    let out = ok(
        &user(),
        ResourceKind::User,
        json!([{"op": "replace", "path": "name", "value": {"givenName": "B"}}]),
    );
    assert_eq!(
        out["name"],
        json!({"givenName": "B", "familyName": "Jensen", "formatted": "Barbara Jensen"})
    );
    // Multi-valued without filter: all values replaced.
    let out = ok(
        &user(),
        ResourceKind::User,
        json!([{"op": "replace", "path": "phoneNumbers", "value": [{"value": "555", "type": "work"}]}]),
    );
    assert_eq!(
        out["phoneNumbers"],
        json!([{"value": "555", "type": "work"}])
    );
    // An empty object changes nothing; a null sub-attribute unassigns it.
    assert!(
        !patch(
            &user(),
            ResourceKind::User,
            json!([{"op": "replace", "path": "name", "value": {}}])
        )
        .unwrap()
        .changed
    );
    let out = ok(
        &user(),
        ResourceKind::User,
        json!([{"op": "replace", "path": "name", "value": {"familyName": null, "formatted": "x"}}]),
    );
    assert_eq!(
        out["name"],
        json!({"givenName": "Barbara", "formatted": "x"})
    );
    let out = ok(
        &user(),
        ResourceKind::User,
        json!([{"op": "add", "path": "emails", "value": [{"value": "n@x", "type": null}]}]),
    );
    assert_eq!(out["emails"][1], json!({"value": "n@x"}));
    // null unassigns.
    let out = ok(
        &user(),
        ResourceKind::User,
        json!([{"op": "replace", "path": "displayName", "value": null}]),
    );
    assert!(out.get("displayName").is_none());
    // Filter + whole element: the matched element is replaced (RFC §3.5.2.3 work address).
    let with_address = ok(
        &user(),
        ResourceKind::User,
        json!([{"op": "add", "path": "addresses", "value": [
            {"type": "work", "locality": "Hollywood", "country": "US"}, {"type": "home", "locality": "Malibu"}
        ]}]),
    );
    let out = ok(
        &with_address,
        ResourceKind::User,
        json!([{"op": "replace", "path": "addresses[type eq \"work\"]", "value": {
            "type": "work", "streetAddress": "911 Universal City Plaza", "locality": "Hollywood", "primary": "ignored-unknown"
        }}]),
    );
    assert_eq!(
        out["addresses"][0],
        json!({"type": "work", "streetAddress": "911 Universal City Plaza", "locality": "Hollywood"})
    );
    assert_eq!(out["addresses"][1]["locality"], "Malibu");
    // Filter + sub-attribute (addresses[type eq "work"].locality).
    let out = ok(
        &with_address,
        ResourceKind::User,
        json!([{"op": "Replace", "path": "addresses[type eq \"work\"].locality", "value": "Burbank"}]),
    );
    assert_eq!(out["addresses"][0]["locality"], "Burbank");
    assert_eq!(out["addresses"][0]["country"], "US");
    // Filter matching nothing: `type eq` creates the element (Entra), anything else is noTarget.
    let out = ok(
        &user(),
        ResourceKind::User,
        json!([{"op": "replace", "path": "phoneNumbers[type eq \"mobile\"].value", "value": "555-1"}]),
    );
    assert_eq!(
        out["phoneNumbers"],
        json!([{"type": "mobile", "value": "555-1"}])
    );
    let out = ok(
        &with_address,
        ResourceKind::User,
        json!([{"op": "replace", "path": "addresses[type eq \"other\"].locality", "value": "X"}]),
    );
    assert_eq!(
        out["addresses"][2],
        json!({"type": "other", "locality": "X"})
    );
    let out = ok(
        &user(),
        ResourceKind::User,
        json!([{"op": "add", "path": "emails[type eq \"other\"].value", "value": "o@x"}]),
    );
    assert_eq!(out["emails"][1], json!({"type": "other", "value": "o@x"}));
    for path in [
        "emails[value eq \"none@x\"].type",
        "emails[type co \"oth\"].value",
        "emails[type eq \"other\" or type eq \"home\"].value",
    ] {
        let e = err(
            &user(),
            ResourceKind::User,
            json!([{"op": "replace", "path": path, "value": "x"}]),
        );
        assert_eq!(e.scim_type, Some(ScimType::NoTarget), "{path}");
    }
}

#[test]
fn remove_operation() {
    let e = err(&user(), ResourceKind::User, json!([{"op": "remove"}]));
    assert_eq!(e.scim_type, Some(ScimType::NoTarget));
    assert!(e.detail.starts_with("Operations[0]"));
    let out = ok(
        &user(),
        ResourceKind::User,
        json!([{"op": "remove", "path": "name.familyName"}]),
    );
    assert_eq!(
        out["name"],
        json!({"givenName": "Barbara", "formatted": "Barbara Jensen"})
    );
    let out = ok(
        &group(),
        ResourceKind::Group,
        json!([{"op": "remove", "path": "members"}]),
    );
    assert!(out.get("members").is_none());
    // Removing a non-member changes nothing and succeeds.
    let out = patch(
        &group(),
        ResourceKind::Group,
        json!([{"op": "remove", "path": "members[value eq \"u-9\"]"}]),
    )
    .unwrap();
    assert!(!out.changed);
    // The RFC's complex filter.
    let two = ok(
        &user(),
        ResourceKind::User,
        json!([{"op": "add", "path": "emails", "value": {"value": "x@other.org", "type": "other"}}]),
    );
    let out = ok(
        &two,
        ResourceKind::User,
        json!([{"op": "remove", "path": "emails[type eq \"other\" and value ew \"other.org\"]"}]),
    );
    assert_eq!(out["emails"], user()["emails"]);
    // Required attributes cannot become unassigned.
    for (resource, kind, path) in [
        (user(), ResourceKind::User, "userName"),
        (user(), ResourceKind::User, "emails"),
        (user(), ResourceKind::User, "emails[type eq \"work\"]"),
        (group(), ResourceKind::Group, "displayName"),
    ] {
        let e = err(&resource, kind, json!([{"op": "remove", "path": path}]));
        assert_eq!(e.scim_type, Some(ScimType::Mutability), "{path}");
    }
}

#[test]
fn paths_and_mutability() {
    for (path, scim_type) in [
        ("nickName", ScimType::InvalidPath),
        ("roles", ScimType::InvalidPath),
        ("name.nick", ScimType::InvalidPath),
        ("emails[type eq \"work\"].display", ScimType::InvalidPath),
        ("emails[type eq", ScimType::InvalidPath),
        ("userName[value eq \"x\"]", ScimType::InvalidPath),
        ("id", ScimType::Mutability),
        ("meta.lastModified", ScimType::Mutability),
        ("groups.display", ScimType::Mutability),
        ("entitlements", ScimType::Mutability),
        (
            "urn:jumpcloud-scim:schemas:extension:jumpcloud:2.0:User:state",
            ScimType::Mutability,
        ),
        ("manager.displayName", ScimType::InvalidPath),
        ("manager.$ref", ScimType::InvalidValue),
    ] {
        let e = err(
            &user(),
            ResourceKind::User,
            json!([{"op": "replace", "path": path, "value": "x"}]),
        );
        assert_eq!(e.scim_type, Some(scim_type), "{path}: {}", e.detail);
        assert_eq!(e.status, 400);
    }
    // Writing a readOnly attribute's current value is not a change.
    assert!(
        !patch(
            &user(),
            ResourceKind::User,
            json!([{"op": "replace", "path": "id", "value": "u-1"}])
        )
        .unwrap()
        .changed
    );
    assert!(!patch(&user(), ResourceKind::User, json!([{"op": "replace", "path": "urn:jumpcloud-scim:schemas:extension:jumpcloud:2.0:User:state", "value": "ACTIVATED"}])).unwrap().changed);
    // An immutable sub-attribute can be set only where unassigned.
    let e = err(
        &group(),
        ResourceKind::Group,
        json!([{"op": "replace", "path": "members[value eq \"u-1\"].value", "value": "u-5"}]),
    );
    assert_eq!(e.scim_type, Some(ScimType::Mutability));
    // Group extension: description writable, groupType not.
    let out = ok(
        &group(),
        ResourceKind::Group,
        json!([{"op": "replace", "path": "description", "value": "new"}]),
    );
    assert_eq!(out[JUMPCLOUD_GROUP_URN]["description"], "new");
    assert_eq!(
        err(
            &group(),
            ResourceKind::Group,
            json!([{"op": "replace", "path": "groupType", "value": "g_suite"}])
        )
        .scim_type,
        Some(ScimType::Mutability)
    );
    // Bad values.
    for (path, value) in [
        ("active", json!("yes")),
        ("active", json!(1)),
        ("title", json!({"a": 1})),
        ("emails", json!(true)),
        ("name", json!(5)),
    ] {
        let e = err(
            &user(),
            ResourceKind::User,
            json!([{"op": "replace", "path": path, "value": value}]),
        );
        assert_eq!(e.scim_type, Some(ScimType::InvalidValue), "{path} {value}");
    }
    // Numbers become strings for string attributes.
    let out = ok(
        &user(),
        ResourceKind::User,
        json!([{"op": "replace", "path": "employeeNumber", "value": 701984}]),
    );
    assert_eq!(out[ENT]["employeeNumber"], "701984");
}

#[test]
fn body_shape_errors() {
    let rows: &[(Value, ScimType)] = &[
        (json!([]), ScimType::InvalidSyntax),
        (json!({"schemas": [PATCH_OP_URN]}), ScimType::InvalidSyntax),
        (json!({"Operations": []}), ScimType::InvalidSyntax),
        (json!({"Operations": ["add"]}), ScimType::InvalidSyntax),
        (
            json!({"Operations": [{"op": "move", "path": "title"}]}),
            ScimType::InvalidSyntax,
        ),
        (
            json!({"Operations": [{"path": "title", "value": "x"}]}),
            ScimType::InvalidSyntax,
        ),
        (
            json!({"Operations": [{"op": "add", "path": "title"}]}),
            ScimType::InvalidValue,
        ),
        (
            json!({"Operations": [{"op": "replace", "value": "x"}]}),
            ScimType::InvalidValue,
        ),
        (
            json!({"Operations": [{"op": "replace", "path": 5, "value": "x"}]}),
            ScimType::InvalidPath,
        ),
    ];
    for (b, want) in rows {
        let e = apply_patch(&user(), b, ResourceKind::User, &PatchOptions::default()).unwrap_err();
        assert_eq!(e.scim_type.as_ref(), Some(want), "{b}");
    }
    // Lower-case `operations` and a missing `schemas` are accepted.
    let out = apply_patch(
        &user(),
        &json!({"operations": [{"op": "replace", "path": "title", "value": "T"}]}),
        ResourceKind::User,
        &PatchOptions::default(),
    )
    .unwrap();
    assert_eq!(out.resource["title"], "T");
    assert!(
        apply_patch(
            &json!("x"),
            &body(json!([{"op": "add", "path": "title", "value": "T"}])),
            ResourceKind::User,
            &PatchOptions::default(),
        )
        .is_err()
    );
}

#[test]
fn atomic() {
    let before = user();
    let e = err(
        &before,
        ResourceKind::User,
        json!([
            {"op": "replace", "path": "title", "value": "changed"},
            {"op": "replace", "path": "meta.created", "value": "2020-01-01T00:00:00Z"}
        ]),
    );
    assert!(e.detail.starts_with("Operations[1]"), "{}", e.detail);
    assert_eq!(before, user());
    // Later operations see the earlier ones' result.
    let out = ok(
        &user(),
        ResourceKind::User,
        json!([
            {"op": "add", "path": "title", "value": "a"},
            {"op": "replace", "path": "title", "value": "b"},
            {"op": "remove", "path": "title"},
            {"op": "add", "path": "title", "value": "c"}
        ]),
    );
    assert_eq!(out["title"], "c");
}

#[test]
fn user_groups_are_reported_not_refused() {
    let out = patch(
        &user(),
        ResourceKind::User,
        json!([{"op": "add", "path": "groups", "value": [{"value": "g-2", "display": "Other"}]}]),
    )
    .unwrap();
    assert_eq!(
        out.membership,
        MembershipChange {
            added: vec!["g-2".into()],
            removed: vec![]
        }
    );
    assert_eq!(out.resource["groups"][1], json!({"value": "g-2"}));
    let out = patch(
        &user(),
        ResourceKind::User,
        json!([{"op": "remove", "path": "groups[value eq \"g-1\"]"}]),
    )
    .unwrap();
    assert_eq!(out.membership.removed, ["g-1"]);
    assert!(out.resource.get("groups").is_none());
    let out = patch(
        &user(),
        ResourceKind::User,
        json!([{"op": "remove", "path": "groups", "value": [{"value": "g-1"}]}]),
    )
    .unwrap();
    assert_eq!(out.membership.removed, ["g-1"]);
    // Add then remove in one request nets out.
    let out = patch(
        &user(),
        ResourceKind::User,
        json!([
            {"op": "add", "path": "groups", "value": [{"value": "g-3"}]},
            {"op": "remove", "path": "groups[value eq \"g-3\"]"}
        ]),
    )
    .unwrap();
    assert!(out.membership.is_empty() && !out.changed);
}

#[test]
fn okta_group_push_membership() {
    // One PATCH: remove one member, add another with display (Okta).
    let out = patch(
        &group(),
        ResourceKind::Group,
        json!([
            {"op": "remove", "path": "members[value eq \"u-2\"]"},
            {"op": "add", "path": "members", "value": [{"value": "u-7", "display": "New"}]}
        ]),
    )
    .unwrap();
    assert_eq!(member_ids(&out.resource), ["u-1", "u-7"]);
    assert_eq!(
        out.membership,
        MembershipChange {
            added: vec!["u-7".into()],
            removed: vec!["u-2".into()]
        }
    );
    // SailPoint recipe.
    let out = patch(
        &group(),
        ResourceKind::Group,
        json!([{"op": "add", "path": "members", "value": [{"value": "u-8"}]}]),
    )
    .unwrap();
    assert_eq!(out.membership.added, ["u-8"]);
    // Members given as bare ids.
    let out = patch(
        &group(),
        ResourceKind::Group,
        json!([{"op": "add", "path": "members", "value": ["u-9"]}]),
    )
    .unwrap();
    assert_eq!(out.membership.added, ["u-9"]);
}

#[test]
fn manager_shapes() {
    let shapes = [
        json!([{"$ref": "http://localhost/scim/v2/Users/m-2", "value": "m-2"}]),
        json!({"value": "m-2", "displayName": "ignored"}),
        json!("m-2"),
    ];
    for shape in shapes {
        for op in ["add", "replace", "Add"] {
            let out = ok(
                &user(),
                ResourceKind::User,
                json!([{"op": op, "path": "manager", "value": shape}]),
            );
            assert_eq!(out[ENT]["manager"], json!({"value": "m-2"}), "{op} {shape}");
            assert!(out["schemas"].as_array().unwrap().contains(&json!(ENT)));
        }
    }
    // The served $ref is derived from the value: a new manager replaces both.
    let mut with_manager = user();
    with_manager[ENT] =
        json!({"manager": {"value": "m-1", "$ref": "http://localhost/scim/v2/Users/m-1"}});
    with_manager["schemas"] = json!([USER_URN, JUMPCLOUD_USER_URN, ENT]);
    let out = ok(
        &with_manager,
        ResourceKind::User,
        json!([{"op": "replace", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager", "value": "m-3"}]),
    );
    assert_eq!(out[ENT]["manager"], json!({"value": "m-3"}));
    let same = patch(
        &with_manager,
        ResourceKind::User,
        json!([{"op": "replace", "path": "manager.value", "value": "m-1"}]),
    )
    .unwrap();
    assert!(!same.changed);
    // Only the $ref written: the value follows it.
    let out = ok(
        &with_manager,
        ResourceKind::User,
        json!([{"op": "replace", "path": "manager.$ref", "value": "/scim/v2/Users/m-4"}]),
    );
    assert_eq!(out[ENT]["manager"], json!({"value": "m-4"}));
    // Removing the manager (empty array, empty string, remove) drops the extension object.
    for ops in [
        json!([{"op": "replace", "path": "manager", "value": []}]),
        json!([{"op": "replace", "path": "manager", "value": ""}]),
        json!([{"op": "remove", "path": "manager"}]),
        json!([{"op": "remove", "path": ENT}]),
    ] {
        let out = ok(&with_manager, ResourceKind::User, ops.clone());
        assert!(out.get(ENT).is_none(), "{ops}");
        assert!(
            !out["schemas"].as_array().unwrap().contains(&json!(ENT)),
            "{ops}"
        );
    }
}

#[test]
fn extensions_by_urn() {
    // A whole-extension path, and a whole-extension key in a path-less value: merged per attribute.
    let out = ok(
        &user(),
        ResourceKind::User,
        json!([{"op": "replace", "path": ENT, "value": {"department": "D", "costCenter": "C"}}]),
    );
    assert_eq!(out[ENT], json!({"department": "D", "costCenter": "C"}));
    let out = ok(
        &out,
        ResourceKind::User,
        json!([{"op": "add", "value": {ENT: {"department": "E"}}}]),
    );
    assert_eq!(out[ENT], json!({"department": "E", "costCenter": "C"}));
    // Unqualified extension names resolve too.
    let out = ok(
        &out,
        ResourceKind::User,
        json!([{"op": "replace", "value": {"costcenter": "Z", "organization": "O"}}]),
    );
    assert_eq!(
        out[ENT],
        json!({"department": "E", "costCenter": "Z", "organization": "O"})
    );
    // The read-only JumpCloud extension cannot be removed wholesale.
    // Removing a whole extension removes what clients wrote there; the service provider's facts stay.
    let mut described = user();
    described[JUMPCLOUD_USER_URN]["description"] = json!("d");
    let out = ok(
        &described,
        ResourceKind::User,
        json!([{"op": "remove", "path": JUMPCLOUD_USER_URN}]),
    );
    assert_eq!(out[JUMPCLOUD_USER_URN], user()[JUMPCLOUD_USER_URN]);
    assert!(
        !patch(
            &user(),
            ResourceKind::User,
            json!([{"op": "remove", "path": JUMPCLOUD_USER_URN}])
        )
        .unwrap()
        .changed
    );
}

#[test]
fn primary_moves() {
    let out = ok(
        &user(),
        ResourceKind::User,
        json!([{"op": "add", "path": "emails", "value": [{"value": "n@x", "type": "other", "primary": "True"}]}]),
    );
    assert_eq!(
        out["emails"],
        json!([
            {"value": "b@example.com", "type": "work", "primary": false},
            {"value": "n@x", "type": "other", "primary": true}
        ])
    );
    let out = ok(
        &out,
        ResourceKind::User,
        json!([{"op": "replace", "path": "emails[type eq \"work\"].primary", "value": true}]),
    );
    assert_eq!(out["emails"][0]["primary"], true);
    assert_eq!(out["emails"][1]["primary"], false);
}

#[test]
fn parsed_request_is_reusable() {
    let request = PatchRequest::parse(
        &body(json!([{"op": "replace", "path": "title", "value": "T"}])),
        ResourceKind::User,
        &PatchOptions::default(),
    )
    .unwrap();
    assert_eq!(request.kind(), ResourceKind::User);
    let a = request.apply(&user()).unwrap();
    let b = request.apply(&user()).unwrap();
    assert_eq!(a, b);
    assert!(a.changed);
}

/// The members-only path answers exactly as the general one: the same resource, `changed` and membership,
/// and the same refusals.
#[test]
fn member_batches_answer_as_the_general_path() {
    let bodies = [
        json!([{"op": "add", "path": "members", "value": [{"value": "u-3"}, {"value": "u-1"}]}]),
        json!([{"op": "add", "path": "members", "value": [{"value": "u-1"}]}]),
        json!([{"op": "remove", "path": "members", "value": [{"value": "u-1"}]}]),
        json!([{"op": "remove", "path": "members[value eq \"u-2\"]"}]),
        json!([{"op": "remove", "path": "members[value eq \"u-2\" or value eq \"u-9\"]"}]),
        json!([{"op": "replace", "path": "members", "value": [{"value": "u-7"}]}]),
        json!([{"op": "remove", "path": "members"}]),
        json!([
            {"op": "remove", "path": "members[value eq \"u-1\"]"},
            {"op": "add", "path": "members", "value": [{"value": "u-1"}]}
        ]),
        json!([{"op": "add", "path": "members", "value": [{"$ref": "http://localhost/scim/v2/Users/u-5"}]}]),
        json!([{"op": "add", "path": "members", "value": [{"display": "no id"}]}]),
        json!([{"op": "add", "path": "members", "value": [{"value": "u-5", "$ref": "http://elsewhere/Users/u-5"}]}]),
    ];
    let options = PatchOptions {
        refs: crate::scim::reference::References::new("http://localhost/scim/v2"),
        ..PatchOptions::default()
    };
    for ops in bodies {
        let request =
            PatchRequest::parse(&body(ops.clone()), ResourceKind::Group, &options).unwrap();
        for resource in [
            group(),
            json!({"schemas": [GROUP_URN], "id": "g-2", "displayName": "Empty"}),
        ] {
            let original = resource.as_object().unwrap();
            let fast = request.apply_to_members(original);
            let general = request.apply_general(original);
            match (fast, general) {
                (Ok(Some(f)), Ok(g)) => {
                    assert_eq!(f.resource, g.resource, "{ops}");
                    assert_eq!(f.changed, g.changed, "{ops}");
                    assert_eq!(f.membership, g.membership, "{ops}");
                }
                (Err(f), Err(g)) => assert_eq!(f, g, "{ops}"),
                (f, g) => panic!("{ops}: fast {f:?} general {g:?}"),
            }
        }
    }
}
