//! The three discovery endpoints' bodies (RFC 7644 §4): `/ServiceProviderConfig`,
//! `/ResourceTypes[/{id}]`, `/Schemas[/{id}]`, built from the documents in `schemas/` plus a `meta`
//! whose `location` is rooted at the caller's SCIM base URL.
//!
//! Owns only the documents and their `meta`; handlers wrap the plural forms with
//! [`crate::scim::list::list_response`]. `meta.version` is a weak ETag of the document's content,
//! so it changes exactly when the documents do. Knows nothing of JumpCloud.

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::scim::schema::SchemaRegistry;

/// Body of `GET /ServiceProviderConfig`.
pub fn service_provider_config(base_url: &str) -> Value {
    let doc = SchemaRegistry::get().service_provider_config_document();
    with_meta(
        doc,
        "ServiceProviderConfig",
        format!("{}/ServiceProviderConfig", trim(base_url)),
    )
}

/// Every ResourceType (User, Group), each with `meta`.
pub fn resource_types(base_url: &str) -> Vec<Value> {
    SchemaRegistry::get()
        .resource_type_documents()
        .iter()
        .map(|doc| resource_type_with_meta(doc, base_url))
        .collect()
}

/// One ResourceType by id (`User`, `Group`; case-insensitive).
pub fn resource_type(id: &str, base_url: &str) -> Option<Value> {
    SchemaRegistry::get()
        .resource_type_documents()
        .iter()
        .find(|doc| {
            doc["id"]
                .as_str()
                .is_some_and(|d| d.eq_ignore_ascii_case(id))
        })
        .map(|doc| resource_type_with_meta(doc, base_url))
}

/// Every Schema (User, Group, EnterpriseUser, the two JumpCloud extensions), each with `meta`.
pub fn schemas(base_url: &str) -> Vec<Value> {
    SchemaRegistry::get()
        .schema_documents()
        .iter()
        .map(|doc| schema_with_meta(doc, base_url))
        .collect()
}

/// One Schema by its URN (case-insensitive).
pub fn schema(id: &str, base_url: &str) -> Option<Value> {
    SchemaRegistry::get()
        .schema_documents()
        .iter()
        .find(|doc| {
            doc["id"]
                .as_str()
                .is_some_and(|d| d.eq_ignore_ascii_case(id))
        })
        .map(|doc| schema_with_meta(doc, base_url))
}

fn resource_type_with_meta(doc: &Value, base_url: &str) -> Value {
    let id = doc["id"].as_str().unwrap_or_default();
    with_meta(
        doc,
        "ResourceType",
        format!("{}/ResourceTypes/{id}", trim(base_url)),
    )
}

fn schema_with_meta(doc: &Value, base_url: &str) -> Value {
    let id = doc["id"].as_str().unwrap_or_default();
    with_meta(doc, "Schema", format!("{}/Schemas/{id}", trim(base_url)))
}

fn trim(base_url: &str) -> &str {
    base_url.trim_end_matches('/')
}

fn with_meta(doc: &Value, resource_type: &str, location: String) -> Value {
    let mut out = doc.clone();
    let digest = Sha256::digest(doc.to_string().as_bytes());
    let tag: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
    out["meta"] = json!({
        "resourceType": resource_type,
        "location": location,
        "version": format!("W/\"{tag}\""),
    });
    out
}

#[cfg(test)]
mod tests {
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
        let spc = service_provider_config(&format!("{BASE}/"));
        check_meta(
            &spc,
            "ServiceProviderConfig",
            &format!("{BASE}/ServiceProviderConfig"),
        );
        assert_eq!(
            spc["schemas"],
            json!(["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"])
        );
        assert_eq!(spc["filter"]["maxResults"], 1000);
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
}
