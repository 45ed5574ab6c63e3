//! Graph shapes (facts sheet §3.3/§3.4): the `GraphConnection` and `GraphObjectWithPaths` JSON of an edge.
//!
//! Pure shapes built from an id and a graph type; which edges exist is the store's business.

use serde_json::{Value, json};

/// A `GraphConnection` to `id` of graph type `kind`.
pub fn edge(id: &str, kind: &str) -> Value {
    json!({ "attributes": null, "to": { "attributes": null, "id": id, "type": kind } })
}

/// A `GraphObjectWithPaths` for an object one hop away.
pub fn with_paths(id: &str, kind: &str) -> Value {
    json!({ "id": id, "type": kind, "compiledAttributes": {}, "paths": [[edge(id, kind)]] })
}
