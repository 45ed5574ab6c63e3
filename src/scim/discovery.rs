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

/// What the running service offers, as `/ServiceProviderConfig` tells it.
#[derive(Debug, Clone, PartialEq)]
pub struct Capabilities {
    /// The most resources one answer holds (`paging.max_results`): `filter.maxResults`, and the page a
    /// list without `count` gets.
    pub max_results: usize,
    /// The largest `count` honoured (`paging.max_count`).
    pub max_page_size: usize,
    /// How long a cursor (and an index walk) stays on its snapshot (`paging.pin_ttl_s`).
    pub cursor_timeout_s: u64,
    /// Static bearer tokens are configured.
    pub bearer_tokens: bool,
    /// OAuth 2.0 clients are configured: their token endpoint.
    pub oauth_token_url: Option<String>,
    /// HTTP Basic credentials are configured.
    pub basic: bool,
}

impl Default for Capabilities {
    fn default() -> Self {
        Capabilities {
            max_results: 100_000,
            max_page_size: 1000,
            cursor_timeout_s: 900,
            bearer_tokens: true,
            oauth_token_url: None,
            basic: false,
        }
    }
}

/// Body of `GET /ServiceProviderConfig`: the fixed capabilities from `schemas/`, and the paging figures and
/// authentication schemes of the running configuration.
pub fn service_provider_config(base_url: &str, caps: &Capabilities) -> Value {
    let mut doc = SchemaRegistry::get()
        .service_provider_config_document()
        .clone();
    doc["filter"] = json!({"supported": true, "maxResults": caps.max_results});
    // RFC 9865: cursor and index paging.
    doc["pagination"] = json!({
        "cursor": true,
        "index": true,
        "defaultPaginationMethod": "index",
        "defaultPageSize": caps.max_results,
        "maxPageSize": caps.max_page_size,
        "cursorTimeout": caps.cursor_timeout_s,
    });
    let mut schemes = Vec::new();
    if caps.bearer_tokens {
        schemes.push(json!({
            "type": "oauthbearertoken",
            "name": "Bearer token",
            "description": "A bearer token configured on the service: Authorization: Bearer <token>",
            "specUri": "https://www.rfc-editor.org/info/rfc6750",
        }));
    }
    if let Some(url) = &caps.oauth_token_url {
        schemes.push(json!({
            "type": "oauthbearertoken",
            "name": "OAuth 2.0 bearer token",
            "description": format!(
                "A token an OAuth 2.0 client gets from POST {url} (client credentials grant, RFC 6749 §4.4), sent \
                 as Authorization: Bearer <token>"
            ),
            "specUri": "https://www.rfc-editor.org/info/rfc6749",
            "documentationUri": url,
        }));
    }
    if caps.basic {
        schemes.push(json!({
            "type": "httpbasic",
            "name": "HTTP Basic",
            "description": "A user name and password configured on the service",
            "specUri": "https://www.rfc-editor.org/info/rfc7617",
        }));
    }
    for (i, s) in schemes.iter_mut().enumerate() {
        s["primary"] = Value::Bool(i == 0);
    }
    doc["authenticationSchemes"] = Value::Array(schemes);
    with_meta(
        &doc,
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
#[path = "discovery_tests.rs"]
mod tests;
