use super::*;
use crate::scim::schema::{ENTERPRISE_USER_URN, ResourceKind};

const BASE: &str = "http://127.0.0.1:8080/scim/v2";

fn check_meta(doc: &Value, resource_type: &str, location: &str) {
    assert_eq!(doc["meta"]["resourceType"], resource_type);
    assert_eq!(doc["meta"]["location"], location);
    let version = doc["meta"]["version"].as_str().unwrap();
    assert!(
        version.starts_with("W/\"") && version.ends_with('"') && version.len() == 20,
        "{version}"
    );
}

#[test]
fn service_provider_config_has_meta() {
    let spc = service_provider_config(&format!("{BASE}/"), &Capabilities::default());
    check_meta(
        &spc,
        "ServiceProviderConfig",
        &format!("{BASE}/ServiceProviderConfig"),
    );
    assert_eq!(
        spc["schemas"],
        json!(["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"])
    );
    assert_eq!(spc["filter"]["maxResults"], 100_000);
    assert_eq!(spc["authenticationSchemes"].as_array().unwrap().len(), 1);
    let all = Capabilities {
        max_results: 5000,
        max_page_size: 200,
        cursor_timeout_s: 60,
        bearer_tokens: true,
        oauth_token_url: Some("https://scim.example.com/oauth/token".into()),
        basic: true,
    };
    let spc = service_provider_config(BASE, &all);
    assert_eq!(spc["filter"]["maxResults"], 5000);
    assert_eq!(spc["pagination"]["maxPageSize"], 200);
    assert_eq!(spc["pagination"]["cursorTimeout"], 60);
    let types: Vec<&str> = spc["authenticationSchemes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["type"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["oauthbearertoken", "oauthbearertoken", "httpbasic"]);
    assert_eq!(
        spc["authenticationSchemes"][1]["documentationUri"],
        "https://scim.example.com/oauth/token"
    );
    let none = Capabilities {
        bearer_tokens: false,
        ..Capabilities::default()
    };
    assert_eq!(
        service_provider_config(BASE, &none)["authenticationSchemes"],
        json!([])
    );
}

#[test]
fn resource_types_have_meta_and_resolve() {
    let all = resource_types(BASE);
    assert_eq!(all.len(), 2);
    for (doc, kind) in all.iter().zip(ResourceKind::ALL) {
        check_meta(
            doc,
            "ResourceType",
            &format!("{BASE}/ResourceTypes/{}", kind.name()),
        );
        assert_eq!(
            doc["schemas"],
            json!(["urn:ietf:params:scim:schemas:core:2.0:ResourceType"])
        );
        assert!(schema(doc["schema"].as_str().unwrap(), BASE).is_some());
        for ext in doc["schemaExtensions"].as_array().unwrap() {
            assert!(schema(ext["schema"].as_str().unwrap(), BASE).is_some());
        }
    }
    assert_eq!(resource_type("group", BASE).unwrap()["endpoint"], "/Groups");
    assert_eq!(resource_type("User", BASE).as_ref(), Some(&all[0]));
    assert!(resource_type("Device", BASE).is_none());
}

#[test]
fn schemas_have_meta_and_resolve() {
    let all = schemas(BASE);
    assert_eq!(all.len(), 5);
    for doc in &all {
        let id = doc["id"].as_str().unwrap();
        check_meta(doc, "Schema", &format!("{BASE}/Schemas/{id}"));
        assert_eq!(schema(id, BASE).as_ref(), Some(doc));
    }
    let ent = schema(&ENTERPRISE_USER_URN.to_uppercase(), BASE).unwrap();
    assert_eq!(ent["id"], ENTERPRISE_USER_URN);
    assert!(schema("urn:example:none", BASE).is_none());
    // Versions differ between documents and are stable between calls.
    assert_ne!(all[0]["meta"]["version"], all[1]["meta"]["version"]);
    assert_eq!(
        schemas(BASE)[0]["meta"]["version"],
        all[0]["meta"]["version"]
    );
}
