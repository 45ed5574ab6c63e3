//! References to this service's own resources: `members.$ref` of a Group and `manager.$ref` of a User
//! (RFC 7643 §2.3.7, §4.2, §4.3). A client may name a referenced User by its id (`value`), by its URI
//! (`$ref`), or by both when they agree.
//!
//! Owns turning a `$ref` into the id it names and checking it against `value`. A `$ref` must name this
//! service's own `/Users/{id}`: absolute under the SCIM base URL (scheme and host compared without case,
//! a default port written or not), path-absolute (`/scim/v2/Users/{id}`), or relative to the base
//! (`Users/{id}`). Anything else is another service's resource, and refused. Whether the id names an
//! existing User is the caller's question (it needs the directory). Knows nothing of JumpCloud.
//!
//! Which attributes are references comes from the schemas: a complex attribute whose `$ref`
//! sub-attribute clients may write and whose `referenceTypes` name `User` (today `members` and the
//! enterprise `manager`). In a stored resource their `$ref` is always derived from `value`, so
//! [`References::strip`] removes it before a PATCH and [`References::settle`] resolves what the client
//! wrote after it.

use serde_json::{Map, Value};

use crate::scim::error::{ScimError, excerpt};
use crate::scim::schema::{AttrDef, Location, Mutability, ResourceKind, SchemaRegistry};

/// Resolves `$ref`s against this service's SCIM base URL.
#[derive(Debug, Clone, PartialEq)]
pub struct References {
    /// `scheme://host[:port]`, lower-cased, without a default port.
    origin: String,
    /// The base URL's path, e.g. `/scim/v2`, without a trailing slash.
    path: String,
}

impl Default for References {
    fn default() -> Self {
        References::new("http://localhost/scim/v2")
    }
}

/// `scheme://authority` (lower-cased, default port dropped) and the rest of an absolute URL.
fn split_url(url: &str) -> Option<(String, &str)> {
    let (scheme, rest) = url.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    if scheme != "http" && scheme != "https" {
        return None;
    }
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    let authority = authority.to_ascii_lowercase();
    let authority = match (scheme.as_str(), authority.rsplit_once(':')) {
        ("http", Some((host, "80"))) | ("https", Some((host, "443"))) => host.to_owned(),
        _ => authority,
    };
    Some((format!("{scheme}://{authority}"), path))
}

/// A reference attribute of `kind`: where it sits and its definition.
struct RefAttr {
    location: Location<'static>,
    attr: &'static AttrDef,
}

fn reference_attrs(kind: ResourceKind) -> Vec<RefAttr> {
    let registry = SchemaRegistry::get();
    let mut out = Vec::new();
    let core = registry.core(kind);
    let extensions = kind
        .extension_urns()
        .iter()
        .filter_map(|u| Some((Location::Extension(u), registry.schema(u)?)));
    for (location, schema) in std::iter::once((Location::Core, core)).chain(extensions) {
        for attr in &schema.attributes {
            let writable_ref = attr.sub("$ref").is_some_and(|r| {
                r.mutability != Mutability::ReadOnly
                    && r.reference_types.iter().any(|t| t == "User")
            });
            if writable_ref {
                out.push(RefAttr { location, attr });
            }
        }
    }
    out
}

// === impl References ===

impl References {
    /// For the SCIM base URL `scim_base` (e.g. `https://scim.example.com/scim/v2`).
    pub fn new(scim_base: &str) -> References {
        let base = scim_base.trim_end_matches('/');
        let (origin, path) = split_url(base).unwrap_or_else(|| (String::new(), base));
        References {
            origin,
            path: path.trim_end_matches('/').to_owned(),
        }
    }

    /// The id a `$ref` names when it is this service's `/Users/{id}`.
    pub fn user_id<'a>(&self, uri: &'a str) -> Option<&'a str> {
        let uri = uri.trim();
        let path = if uri.contains("://") {
            let (origin, path) = split_url(uri)?;
            if origin != self.origin {
                return None;
            }
            path
        } else {
            uri
        };
        let rest = match path.strip_prefix('/') {
            // Path-absolute: under the base's path.
            Some(_) => path
                .strip_prefix(self.path.as_str())
                .and_then(|r| r.strip_prefix('/'))?,
            // Relative to the base.
            None => path,
        };
        let id = rest.strip_prefix("Users/")?;
        let id = id.strip_suffix('/').unwrap_or(id);
        (!id.is_empty() && !id.contains(['/', '?', '#'])).then_some(id)
    }

    /// The id an element names by `value`, `$ref` or both; `attr` names the attribute in errors.
    /// `Ok(None)` when it names none.
    pub fn resolve(
        &self,
        attr: &str,
        value: Option<&str>,
        uri: Option<&str>,
    ) -> Result<Option<String>, ScimError> {
        let value = value.map(str::trim).filter(|v| !v.is_empty());
        let uri = uri.map(str::trim).filter(|v| !v.is_empty());
        let Some(uri) = uri else {
            return Ok(value.map(String::from));
        };
        let Some(id) = self.user_id(uri) else {
            return Err(ScimError::invalid_value(format!(
                "{attr}.$ref {} does not name a User of this service: give its id as {attr}.value, or its URI as \
                 {}{}/Users/{{id}}",
                excerpt(uri),
                self.origin,
                self.path
            )));
        };
        match value {
            Some(v) if v != id => Err(ScimError::invalid_value(format!(
                "{attr}.value {} and {attr}.$ref {} name different users; give one, or both naming the same user",
                excerpt(v),
                excerpt(uri)
            ))),
            _ => Ok(Some(id.to_owned())),
        }
    }

    /// Resolve one element (an object with `value` and/or `$ref`, or a bare id) to the id it names.
    pub fn element_id(&self, attr: &str, element: &Value) -> Result<Option<String>, ScimError> {
        match element {
            Value::String(s) => self.resolve(attr, Some(s), None),
            Value::Object(o) => {
                let text = |k: &str| -> Result<Option<&str>, ScimError> {
                    match get_ci(o, k) {
                        None | Some(Value::Null) => Ok(None),
                        Some(Value::String(s)) => Ok(Some(s)),
                        Some(other) => Err(ScimError::invalid_value(format!(
                            "{attr}.{k} must be a string, got {}",
                            excerpt(&other.to_string())
                        ))),
                    }
                };
                self.resolve(attr, text("value")?, text("$ref")?)
            }
            Value::Null => Ok(None),
            other => Err(ScimError::invalid_value(format!(
                "each {attr} must be an object with a value or a $ref, got {}",
                excerpt(&other.to_string())
            ))),
        }
    }

    /// Remove the derived `$ref` from every reference attribute of a stored resource, so that what a PATCH
    /// writes there can be told from what was served.
    pub fn strip(&self, doc: &mut Map<String, Value>, kind: ResourceKind) {
        for r in reference_attrs(kind) {
            let Some(slot) = container_mut(doc, r.location).and_then(|c| c.get_mut(&r.attr.name))
            else {
                continue;
            };
            for element in elements_mut(slot) {
                if let Some(o) = element.as_object_mut() {
                    o.remove("$ref");
                }
            }
        }
    }

    /// After a PATCH: every reference element names its user by `value` alone. A `$ref` a client wrote
    /// becomes the `value` (when the client changed only the `$ref` of an element, its old `value` follows
    /// it); a `$ref` elsewhere, or one that disagrees with a `value` the client also wrote, is an error.
    pub fn settle(
        &self,
        doc: &mut Map<String, Value>,
        before: &Map<String, Value>,
        kind: ResourceKind,
    ) -> Result<(), ScimError> {
        for r in reference_attrs(kind) {
            let old_values: Vec<String> = container(before, r.location)
                .and_then(|c| c.get(&r.attr.name))
                .map(|v| {
                    elements(v)
                        .filter_map(|e| e.get("value").and_then(Value::as_str).map(String::from))
                        .collect()
                })
                .unwrap_or_default();
            let Some(slot) = container_mut(doc, r.location).and_then(|c| c.get_mut(&r.attr.name))
            else {
                continue;
            };
            let name = r.attr.name.as_str();
            for element in elements_mut(slot) {
                let Some(o) = element.as_object_mut() else {
                    continue;
                };
                let Some(uri) = o.remove("$ref") else {
                    continue;
                };
                let uri = uri.as_str().map(String::from).ok_or_else(|| {
                    ScimError::invalid_value(format!("{name}.$ref must be a string"))
                })?;
                let value = o.get("value").and_then(Value::as_str).map(String::from);
                // The `value` still served from before: the client wrote only the `$ref`.
                let value =
                    value.filter(|v| !old_values.contains(v) || self.user_id(&uri) == Some(v));
                if let Some(id) = self.resolve(name, value.as_deref(), Some(&uri))? {
                    o.insert("value".to_owned(), Value::from(id));
                }
            }
        }
        Ok(())
    }
}

fn get_ci<'v>(o: &'v Map<String, Value>, key: &str) -> Option<&'v Value> {
    o.get(key).or_else(|| {
        o.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v)
    })
}

fn container<'d>(
    doc: &'d Map<String, Value>,
    location: Location<'_>,
) -> Option<&'d Map<String, Value>> {
    match location {
        Location::Core => Some(doc),
        Location::Extension(urn) => doc.get(urn)?.as_object(),
    }
}

fn container_mut<'d>(
    doc: &'d mut Map<String, Value>,
    location: Location<'_>,
) -> Option<&'d mut Map<String, Value>> {
    match location {
        Location::Core => Some(doc),
        Location::Extension(urn) => doc.get_mut(urn)?.as_object_mut(),
    }
}

fn elements(v: &Value) -> Box<dyn Iterator<Item = &Value> + '_> {
    match v {
        Value::Array(items) => Box::new(items.iter()),
        other => Box::new(std::iter::once(other)),
    }
}

fn elements_mut(v: &mut Value) -> Box<dyn Iterator<Item = &mut Value> + '_> {
    match v {
        Value::Array(items) => Box::new(items.iter_mut()),
        other => Box::new(std::iter::once(other)),
    }
}

#[cfg(test)]
#[path = "reference_tests.rs"]
mod tests;
