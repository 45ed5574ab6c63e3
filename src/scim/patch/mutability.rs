//! Whether a write may happen: a write that changes a readOnly attribute (other than a membership),
//! an assigned immutable attribute, a readOnly sub-attribute or an assigned immutable sub-attribute is
//! 400 `mutability`; so is a PATCH that leaves a required attribute unassigned that was assigned.
//!
//! Owns these checks. Must not compute values: the caller has already found that the write changes
//! something, and passes what was there before.

use serde_json::{Map, Value};

use super::normalize::{elements, is_unassigned};
use super::path::PathTarget;
use crate::scim::error::{ScimError, excerpt};
use crate::scim::schema::{Mutability, ResourceKind, SchemaRegistry};

/// The write changes something; may it?
pub(super) fn check_mutability(
    target: &PathTarget,
    membership: bool,
    before: Option<&Value>,
) -> Result<(), ScimError> {
    let path = excerpt(&target.text);
    if target.attr.mutability == Mutability::ReadOnly && !membership {
        return Err(ScimError::mutability(format!(
            "{path}: {} is readOnly",
            target.attr.name
        )));
    }
    if target.attr.mutability == Mutability::Immutable && before.is_some() {
        return Err(ScimError::mutability(format!(
            "{path}: {} is immutable",
            target.attr.name
        )));
    }
    if let Some(sub) = target.sub {
        if sub.mutability == Mutability::ReadOnly {
            return Err(ScimError::mutability(format!(
                "{path}: {}.{} is readOnly",
                target.attr.name, sub.name
            )));
        }
        let assigned = before.is_some_and(|b| {
            elements(b)
                .iter()
                .any(|e| e.get(&sub.name).is_some_and(|v| !is_unassigned(v)))
        });
        if sub.mutability == Mutability::Immutable && assigned {
            return Err(ScimError::mutability(format!(
                "{path}: {}.{} is immutable",
                target.attr.name, sub.name
            )));
        }
    }
    Ok(())
}

/// RFC 7644 §3.5.2.2: a required attribute that was assigned stays assigned.
pub(super) fn check_required(
    before: &Map<String, Value>,
    after: &Map<String, Value>,
    kind: ResourceKind,
) -> Result<(), ScimError> {
    let assigned =
        |m: &Map<String, Value>, name: &str| m.get(name).is_some_and(|v| !is_unassigned(v));
    for def in &SchemaRegistry::get().core(kind).attributes {
        if def.required && assigned(before, &def.name) && !assigned(after, &def.name) {
            return Err(ScimError::mutability(format!(
                "{} is required and cannot be removed",
                def.name
            )));
        }
    }
    Ok(())
}
