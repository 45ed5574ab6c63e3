use serde_json::json;

use super::*;

fn refs() -> References {
    References::new("https://scim.example.com/scim/v2")
}

fn group(attributes: Option<Value>) -> JcGroup {
    serde_json::from_value(json!({
        "id": "g1",
        "name": "Engineering",
        "description": "old",
        "attributes": attributes,
    }))
    .unwrap()
}

#[test]
fn a_group_body_reads_name_external_id_description_and_members() {
    let body = json!({
        "schemas": [urn::GROUP, urn::JC_GROUP],
        "DisplayName": "Engineering",
        "externalId": "ext-7",
        urn::JC_GROUP: {"description": "Builds things"},
        "members": [
            {"value": "u1"},
            {"$ref": "https://scim.example.com/scim/v2/Users/u2"},
            {"value": "u3", "$ref": "Users/u3"},
        ],
    });
    let d = desired_group(&body, &refs()).unwrap();
    assert_eq!(
        d,
        DesiredGroup {
            name: "Engineering".into(),
            external_id: Some("ext-7".into()),
            description: Some("Builds things".into()),
            members: Some(vec!["u1".into(), "u2".into(), "u3".into()]),
        }
    );
    // No members key, an empty externalId and an empty description: nothing said about them.
    let d = desired_group(
        &json!({"displayName": "Ops", "externalId": "", urn::JC_GROUP: {"description": ""}}),
        &refs(),
    )
    .unwrap();
    assert_eq!(
        (d.external_id, d.description, d.members),
        (None, None, None)
    );
    let d = desired_group(&json!({"displayName": "Ops", "members": null}), &refs()).unwrap();
    assert_eq!(d.members, None);
}

#[test]
fn a_group_body_that_cannot_be_mapped_says_what_to_change() {
    for (body, status, needle) in [
        (json!([]), 400, "JSON object"),
        (json!({}), 400, "displayName is required"),
        (json!({"displayName": ""}), 400, "displayName is required"),
        (
            json!({"displayName": 7}),
            400,
            "displayName must be a string",
        ),
        (
            json!({"displayName": "g", "externalId": 1}),
            400,
            "externalId must be a string",
        ),
        (
            json!({"displayName": "g", "members": {"value": "u1"}}),
            400,
            "members must be an array",
        ),
        (
            json!({"displayName": "g", "members": [{"display": "Jane"}]}),
            400,
            "needs a value",
        ),
        (
            json!({"displayName": "g", "members": [{"$ref": "https://other.example/Users/u1"}]}),
            400,
            "",
        ),
    ] {
        let e = desired_group(&body, &refs()).unwrap_err();
        assert_eq!(e.status, status, "{body}");
        assert!(e.detail.contains(needle), "{body}: {}", e.detail);
    }
}

#[test]
fn a_group_write_keeps_unmapped_attributes_and_sets_or_clears_external_id() {
    let opts = MappingOptions::default();
    let created = group_write("Ops", Some("d"), Some("x1"), None, &opts);
    assert_eq!(created.name, "Ops");
    assert_eq!(created.description.as_deref(), Some("d"));
    assert_eq!(
        created.attributes.unwrap()[&opts.external_id_attribute],
        json!("x1")
    );
    // A create without externalId sends no attributes at all.
    assert_eq!(group_write("Ops", None, None, None, &opts).attributes, None);

    let base = group(Some(
        json!({"sudo": {"enabled": true}, "scimExternalId": "old"}),
    ));
    let w = group_write("Eng", None, None, Some(&base), &opts);
    assert_eq!((w.name.as_str(), w.description.as_deref()), ("Eng", None));
    assert_eq!(
        w.attributes,
        Some(
            json!({"sudo": {"enabled": true}})
                .as_object()
                .cloned()
                .unwrap()
        )
    );
    // A group whose only attribute was the externalId keeps an (empty) object, so the PUT clears it.
    let base = group(Some(json!({"scimExternalId": "old"})));
    assert_eq!(
        group_write("Eng", None, None, Some(&base), &opts).attributes,
        Some(Map::new())
    );
    // A group without attributes stays without.
    assert_eq!(
        group_write("Eng", None, None, Some(&group(None)), &opts).attributes,
        None
    );
}

#[test]
fn member_ids_are_the_values_a_group_lists() {
    let g =
        json!({"members": [{"value": "b"}, {"value": "a"}, {"display": "no id"}, {"value": "a"}]});
    assert_eq!(member_ids(&g).into_iter().collect::<Vec<_>>(), ["a", "b"]);
    assert!(member_ids(&json!({"displayName": "empty"})).is_empty());
}
