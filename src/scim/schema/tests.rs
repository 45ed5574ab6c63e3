use serde_json::Value;

use super::*;

fn reg() -> &'static SchemaRegistry {
    SchemaRegistry::get()
}

/// RFC 7643 §7: every attribute states every characteristic; complex ones list sub-attributes,
/// references their reference types; sub-attributes are not complex themselves (§2.3.8).
fn check_attribute(schema: &str, attr: &Value, depth: usize) {
    let name = attr["name"]
        .as_str()
        .unwrap_or_else(|| panic!("{schema}: attribute without name"));
    for key in [
        "type",
        "multiValued",
        "description",
        "required",
        "caseExact",
        "mutability",
        "returned",
        "uniqueness",
    ] {
        assert!(attr.get(key).is_some(), "{schema}:{name} lacks {key}");
    }
    let ty = attr["type"].as_str().unwrap();
    assert!(
        [
            "string",
            "boolean",
            "decimal",
            "integer",
            "dateTime",
            "binary",
            "reference",
            "complex"
        ]
        .contains(&ty),
        "{schema}:{name} has type {ty}"
    );
    assert!(
        ["readOnly", "readWrite", "immutable", "writeOnly"]
            .contains(&attr["mutability"].as_str().unwrap())
    );
    assert!(
        ["always", "never", "default", "request"].contains(&attr["returned"].as_str().unwrap())
    );
    assert!(["none", "server", "global"].contains(&attr["uniqueness"].as_str().unwrap()));
    if ty == "reference" {
        assert!(
            attr["referenceTypes"]
                .as_array()
                .is_some_and(|r| !r.is_empty()),
            "{schema}:{name}"
        );
    } else {
        assert!(attr.get("referenceTypes").is_none(), "{schema}:{name}");
    }
    if ty == "complex" {
        assert_eq!(depth, 0, "{schema}:{name}: complex sub-attribute");
        let subs = attr["subAttributes"]
            .as_array()
            .expect("complex has subAttributes");
        assert!(!subs.is_empty());
        for sub in subs {
            check_attribute(&format!("{schema}:{name}"), sub, depth + 1);
        }
    } else {
        assert!(attr.get("subAttributes").is_none(), "{schema}:{name}");
    }
}

#[test]
fn every_schema_attribute_has_all_characteristics() {
    for doc in reg().schema_documents() {
        let id = doc["id"].as_str().unwrap();
        assert_eq!(
            doc["schemas"],
            serde_json::json!(["urn:ietf:params:scim:schemas:core:2.0:Schema"])
        );
        assert!(doc["name"].is_string() && doc["description"].is_string());
        for attr in doc["attributes"].as_array().unwrap() {
            check_attribute(id, attr, 0);
        }
    }
    assert_eq!(reg().schemas().len(), 5);
}

#[test]
fn resource_types_reference_existing_schemas() {
    let rts = reg().resource_type_documents();
    assert_eq!(rts.len(), 2);
    for (rt, kind) in rts.iter().zip(ResourceKind::ALL) {
        assert_eq!(rt["id"], kind.name());
        assert_eq!(rt["name"], kind.name());
        assert_eq!(rt["endpoint"], kind.endpoint());
        assert_eq!(rt["schema"], kind.core_urn());
        assert!(reg().schema(rt["schema"].as_str().unwrap()).is_some());
        let exts: Vec<&str> = rt["schemaExtensions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                assert_eq!(e["required"], false);
                e["schema"].as_str().unwrap()
            })
            .collect();
        assert_eq!(exts, kind.extension_urns());
        for ext in exts {
            assert!(reg().schema(ext).is_some(), "{ext} has no Schema");
        }
    }
}

#[test]
fn service_provider_config_states_capabilities() {
    // The fixed part; paging figures and authentication schemes come from the running configuration.
    let spc = reg().service_provider_config_document();
    assert_eq!(spc["patch"]["supported"], true);
    assert_eq!(spc["bulk"]["supported"], false);
    assert!(spc["bulk"]["maxOperations"].is_u64() && spc["bulk"]["maxPayloadSize"].is_u64());
    assert_eq!(spc["filter"]["supported"], true);
    assert_eq!(spc["changePassword"]["supported"], true);
    assert_eq!(spc["sort"]["supported"], true);
    assert_eq!(spc["etag"]["supported"], true);
    assert!(spc.get("authenticationSchemes").is_none());
}

#[test]
fn registry_characteristics_match_the_brief() {
    let user = |p: &str| reg().resolve(ResourceKind::User, p).unwrap().def().clone();
    let group = |p: &str| reg().resolve(ResourceKind::Group, p).unwrap().def().clone();
    let id = user("id");
    assert!(
        id.case_exact && id.returned == Returned::Always && id.mutability == Mutability::ReadOnly
    );
    assert!(user("externalId").case_exact);
    let user_name = user("userName");
    assert!(
        !user_name.case_exact && user_name.required && user_name.uniqueness == Uniqueness::Server
    );
    assert_eq!(user("password").returned, Returned::Never);
    assert_eq!(user("password").mutability, Mutability::WriteOnly);
    assert_eq!(user("name.formatted").mutability, Mutability::ReadWrite);
    assert_eq!(user("groups").mutability, Mutability::ReadOnly);
    assert_eq!(user("active").attr_type, AttrType::Boolean);
    assert_eq!(user("meta.lastModified").attr_type, AttrType::DateTime);
    assert_eq!(user("emails.type").canonical_values, ["work", "other"]);
    assert_eq!(user("manager.$ref").mutability, Mutability::ReadWrite);
    assert_eq!(user("manager.$ref").reference_types, ["User"]);
    assert!(
        reg()
            .resolve(ResourceKind::User, "manager.displayName")
            .is_none()
    );
    assert_eq!(user("state").returned, Returned::Request);
    assert_eq!(
        user("urn:jumpcloud-scim:schemas:extension:jumpcloud:2.0:User:description").mutability,
        Mutability::ReadWrite
    );
    assert_eq!(user("manager.value").mutability, Mutability::ReadWrite);
    assert_eq!(user("employeeNumber").uniqueness, Uniqueness::Server);
    assert_eq!(user("mfaConfigured").mutability, Mutability::ReadOnly);
    assert_eq!(group("members.value").mutability, Mutability::Immutable);
    assert_eq!(group("members.$ref").mutability, Mutability::Immutable);
    assert_eq!(group("members.$ref").reference_types, ["User"]);
    assert!(
        reg()
            .resolve(ResourceKind::Group, "members.display")
            .is_none()
    );
    assert_eq!(group("groupType").returned, Returned::Request);
    assert_eq!(group("displayName").uniqueness, Uniqueness::Server);
    assert_eq!(group("groupType").mutability, Mutability::ReadOnly);
    assert_eq!(group("description").mutability, Mutability::ReadWrite);
}

type Want = Option<(Location<'static>, &'static str, Option<&'static str>)>;

#[test]
fn resolve_spellings() {
    use Location::*;
    let ent = ENTERPRISE_USER_URN;
    let jcu = JUMPCLOUD_USER_URN;
    let cases: &[(ResourceKind, &str, Want)] = &[
        (
            ResourceKind::User,
            "userName",
            Some((Core, "userName", None)),
        ),
        (
            ResourceKind::User,
            "USERNAME",
            Some((Core, "userName", None)),
        ),
        (
            ResourceKind::User,
            " username ",
            Some((Core, "userName", None)),
        ),
        (
            ResourceKind::User,
            "name.givenName",
            Some((Core, "name", Some("givenName"))),
        ),
        (
            ResourceKind::User,
            "NAME.GIVENNAME",
            Some((Core, "name", Some("givenName"))),
        ),
        (
            ResourceKind::User,
            "emails.value",
            Some((Core, "emails", Some("value"))),
        ),
        (
            ResourceKind::User,
            "groups.$ref",
            Some((Core, "groups", Some("$ref"))),
        ),
        (
            ResourceKind::User,
            "meta.lastModified",
            Some((Core, "meta", Some("lastModified"))),
        ),
        (ResourceKind::User, "schemas", Some((Core, "schemas", None))),
        (
            ResourceKind::User,
            "urn:ietf:params:scim:schemas:core:2.0:User:userName",
            Some((Core, "userName", None)),
        ),
        (
            ResourceKind::User,
            "URN:IETF:PARAMS:SCIM:SCHEMAS:CORE:2.0:USER:name.familyName",
            Some((Core, "name", Some("familyName"))),
        ),
        (
            ResourceKind::User,
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value",
            Some((Extension(ent), "manager", Some("value"))),
        ),
        (
            ResourceKind::User,
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber",
            Some((Extension(ent), "employeeNumber", None)),
        ),
        (
            ResourceKind::User,
            "employeenumber",
            Some((Extension(ent), "employeeNumber", None)),
        ),
        (
            ResourceKind::User,
            "manager",
            Some((Extension(ent), "manager", None)),
        ),
        (
            ResourceKind::User,
            "mfaConfigured",
            Some((Extension(jcu), "mfaConfigured", None)),
        ),
        // The core attribute wins over the extension's `username` unless qualified.
        (
            ResourceKind::User,
            "username",
            Some((Core, "userName", None)),
        ),
        (
            ResourceKind::User,
            "urn:jumpcloud-scim:schemas:extension:jumpcloud:2.0:User:username",
            Some((Extension(jcu), "username", None)),
        ),
        (ResourceKind::User, "members", None),
        (ResourceKind::User, "nickName", None),
        (ResourceKind::User, "name.foo", None),
        (ResourceKind::User, "name.givenName.x", None),
        (ResourceKind::User, "name.", None),
        (ResourceKind::User, "", None),
        (ResourceKind::User, "urn:example:unknown:userName", None),
        (
            ResourceKind::User,
            "urn:ietf:params:scim:schemas:core:2.0:Group:displayName",
            None,
        ),
        (
            ResourceKind::Group,
            "displayname",
            Some((Core, "displayName", None)),
        ),
        (
            ResourceKind::Group,
            "members.value",
            Some((Core, "members", Some("value"))),
        ),
        (
            ResourceKind::Group,
            "description",
            Some((Extension(JUMPCLOUD_GROUP_URN), "description", None)),
        ),
        (
            ResourceKind::Group,
            "meta.created",
            Some((Core, "meta", Some("created"))),
        ),
        (ResourceKind::Group, "userName", None),
    ];
    for (kind, path, want) in cases {
        let got = reg()
            .resolve(*kind, path)
            .map(|r| (r.location, r.key(), r.sub_key()));
        assert_eq!(got, *want, "{kind:?} {path:?}");
    }
}

#[test]
fn resolved_path_is_canonical() {
    let r = reg()
        .resolve(
            ResourceKind::User,
            "URN:ietf:params:scim:schemas:extension:enterprise:2.0:user:MANAGER.value",
        )
        .unwrap();
    assert_eq!(
        r.path(),
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value"
    );
    let resource = serde_json::json!({
        ENTERPRISE_USER_URN: {"manager": {"value": "m1"}}
    });
    assert_eq!(r.get(&resource).unwrap()["value"], "m1");
}

#[test]
fn extension_urn_lookup() {
    assert_eq!(
        reg().extension_urn(
            ResourceKind::User,
            "URN:ietf:params:scim:schemas:extension:enterprise:2.0:USER"
        ),
        Some(ENTERPRISE_USER_URN)
    );
    assert_eq!(
        reg().extension_urn(ResourceKind::Group, ENTERPRISE_USER_URN),
        None
    );
    assert_eq!(ResourceKind::from_name("group"), Some(ResourceKind::Group));
}
