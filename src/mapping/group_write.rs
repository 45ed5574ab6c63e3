//! SCIM Group → the JumpCloud user-group write that produces it.
//!
//! [`desired_group`] reads what a Group body says (`displayName`, `externalId`, the JumpCloud extension's
//! `description`, and the member ids when `members` is given, by `value` or `$ref`); [`group_write`] turns
//! it into the `PUT`/`POST` body against the current group, keeping every attribute we do not map;
//! [`member_ids`] lists the members a served Group resource holds. Pure: whether the ids name users of
//! this directory, and whether the name is free, are the writer's questions.

use crate::scim::view::{Key, View};
use std::collections::BTreeSet;

use serde_json::{Map, Value};

use super::{MappingOptions, urn};
use crate::jumpcloud::{JcGroup, JcGroupWrite};
use crate::scim::error::{ScimError, excerpt};
use crate::scim::reference::References;

/// What a SCIM Group body says: displayName, externalId, description and (when given) member ids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesiredGroup {
    pub name: String,
    pub external_id: Option<String>,
    pub description: Option<String>,
    /// `None` when the body has no `members` (or `null`): a create starts empty, a replace empties it.
    pub members: Option<Vec<String>>,
}

/// Case-insensitive lookup of a top-level attribute.
fn get<'a>(obj: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    obj.iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(key))
        .map(|(_, v)| v)
}

/// What a SCIM Group body says; `refs` resolves `members[].$ref`.
pub fn desired_group(body: &Value, refs: &References) -> Result<DesiredGroup, ScimError> {
    let Value::Object(obj) = body else {
        return Err(ScimError::invalid_syntax(
            "the request body must be a JSON object",
        ));
    };
    let name = match get(obj, "displayName") {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        Some(Value::String(_)) | None | Some(Value::Null) => {
            return Err(ScimError::invalid_value("displayName is required"));
        }
        Some(other) => {
            return Err(ScimError::invalid_value(format!(
                "displayName must be a string, got {other}"
            )));
        }
    };
    let external_id = match get(obj, "externalId") {
        Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
        Some(Value::Null) | None => None,
        Some(Value::String(_)) => None,
        Some(other) => {
            return Err(ScimError::invalid_value(format!(
                "externalId must be a string, got {other}"
            )));
        }
    };
    let description = get(obj, urn::JC_GROUP)
        .and_then(|ext| ext.get("description"))
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(String::from);
    let members = match get(obj, "members") {
        None | Some(Value::Null) => None,
        Some(Value::Array(a)) => Some(member_refs(a, refs)?),
        Some(other) => {
            return Err(ScimError::invalid_value(format!(
                "members must be an array, got {other}"
            )));
        }
    };
    Ok(DesiredGroup {
        name,
        external_id,
        description,
        members,
    })
}

/// The user ids a `members` array names, each by `value`, `$ref`, or both when they agree.
fn member_refs(members: &[Value], refs: &References) -> Result<Vec<String>, ScimError> {
    let mut ids = Vec::with_capacity(members.len());
    for m in members {
        match refs.element_id("members", m)? {
            Some(id) => ids.push(id),
            None => {
                return Err(ScimError::invalid_value(format!(
                    "each member needs a value (a user id) or a $ref, got {}",
                    excerpt(&m.to_string())
                )));
            }
        }
    }
    Ok(ids)
}

/// The user-group body for a name, description and externalId, on top of `base` (the current group, for a
/// `PUT`, which JumpCloud treats as a full replace) so attributes we do not map are kept.
pub fn group_write(
    name: &str,
    description: Option<&str>,
    external_id: Option<&str>,
    base: Option<&JcGroup>,
    options: &MappingOptions,
) -> JcGroupWrite {
    let mut attributes = base.and_then(|g| g.attributes.clone()).unwrap_or_default();
    match external_id {
        Some(x) => {
            attributes.insert(options.external_id_attribute.clone(), Value::from(x));
        }
        None => {
            attributes.remove(&options.external_id_attribute);
        }
    }
    let mut w = base.map(JcGroupWrite::from).unwrap_or_default();
    w.name = name.to_string();
    w.description = description.map(String::from);
    w.attributes = if attributes.is_empty() && base.is_none_or(|b| b.attributes.is_none()) {
        None
    } else {
        Some(attributes)
    };
    w
}

/// The member ids a Group resource lists.
pub fn member_ids<'a>(group: impl View<'a>) -> BTreeSet<String> {
    group
        .member(Key::of("members"))
        .into_iter()
        .flat_map(View::items)
        .filter_map(|m| m.member(Key::of("value")).and_then(View::as_str))
        .map(String::from)
        .collect()
}

#[cfg(test)]
#[path = "group_write_tests.rs"]
mod tests;
