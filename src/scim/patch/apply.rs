//! Running the operations of one PATCH, in order, on a working copy of the resource: a path-less
//! value split into its keys (extension objects into theirs; `schemas`, `meta`, unknown keys and a
//! User's `groups` skipped), a whole extension removed, and for an attribute path the attribute taken
//! out, its new value computed, checked and put back. After the last operation, `schemas` is brought
//! in step with the extension objects present.
//!
//! Owns [`Applying`] and the working document. What an operation makes of a value is
//! [`super::values`]'s and [`super::value_filter`]'s; the membership fast path is [`super::members`]'s.
//! Must not know the request body: operations arrive parsed.

use serde_json::{Map, Value};

use super::PatchOptions;
use super::limits::check_multi_values;
use super::members::{MemberSet, apply_fast, is_membership};
use super::mutability::check_mutability;
use super::normalize::is_unassigned;
use super::operation::{Op, Operation};
use super::path::{PathTarget, Target, parse_target};
use super::values::Ctx;
use crate::scim::error::ScimError;
use crate::scim::schema::{Location, Mutability, ResourceKind, SchemaRegistry};

/// One PATCH being applied: the working document's companions.
pub(super) struct Applying<'a> {
    kind: ResourceKind,
    options: &'a PatchOptions,
    /// A Group's members while membership operations run (taken out of the document on the first one, put
    /// back before any other operation on `members` and at the end).
    members: Option<MemberSet>,
}

impl<'a> Applying<'a> {
    pub(super) fn new(kind: ResourceKind, options: &'a PatchOptions) -> Applying<'a> {
        Applying {
            kind,
            options,
            members: None,
        }
    }

    /// Apply one operation to `doc`.
    pub(super) fn operation(
        &mut self,
        doc: &mut Map<String, Value>,
        operation: &Operation,
    ) -> Result<(), ScimError> {
        let value = operation.value.as_ref();
        match &operation.target {
            Target::Resource => {
                let Some(Value::Object(attrs)) = value else {
                    return Ok(());
                };
                for (key, v) in attrs {
                    self.key(doc, operation.op, key, v)?;
                }
                Ok(())
            }
            Target::Extension(urn) => match (operation.op, value) {
                (Op::Remove, _) => remove_extension(doc, urn),
                (_, Some(Value::Object(attrs))) => {
                    for (key, v) in attrs {
                        self.key(doc, operation.op, &format!("{urn}:{key}"), v)?;
                    }
                    Ok(())
                }
                (_, Some(Value::Null)) => Ok(()),
                _ => Err(ScimError::invalid_value(format!(
                    "the value for {urn} must be an object"
                ))),
            },
            Target::Path(target) => self.path(doc, operation.op, target, value, true),
        }
    }

    /// One key of a path-less value object (or of an extension object).
    fn key(
        &mut self,
        doc: &mut Map<String, Value>,
        op: Op,
        key: &str,
        v: &Value,
    ) -> Result<(), ScimError> {
        let registry = SchemaRegistry::get();
        if key.eq_ignore_ascii_case("schemas") || key.eq_ignore_ascii_case("meta") {
            return Ok(());
        }
        if let Some(urn) = registry.extension_urn(self.kind, key) {
            return match v {
                Value::Object(attrs) => {
                    for (k, vv) in attrs {
                        self.key(doc, op, &format!("{urn}:{k}"), vv)?;
                    }
                    Ok(())
                }
                Value::Null => Ok(()),
                _ => Err(ScimError::invalid_value(format!(
                    "the value for {urn} must be an object"
                ))),
            };
        }
        match parse_target(key, self.kind) {
            Ok(Some(Target::Path(target))) => {
                if self.kind == ResourceKind::User && target.attr.name == "groups" {
                    return Ok(());
                }
                self.path(doc, op, &target, Some(v), false)
            }
            // Unknown or unreadable keys in a path-less value are ignored (see the module docs).
            Ok(_) | Err(_) => Ok(()),
        }
    }

    /// Put a Group's member set, if taken out, back into `doc`.
    pub(super) fn flush_members(&mut self, doc: &mut Map<String, Value>) {
        if let Some(m) = self.members.take() {
            m.put(doc);
        }
    }

    /// The membership fast path, for a Group's `members` as a whole; `Ok(false)` when it does not
    /// apply.
    fn members_fast(
        &mut self,
        doc: &mut Map<String, Value>,
        op: Op,
        target: &PathTarget,
        value: Option<&Value>,
    ) -> Result<bool, ScimError> {
        if self.kind != ResourceKind::Group || target.attr.name != "members" || target.sub.is_some()
        {
            return Ok(false);
        }
        apply_fast(
            &mut self.members,
            doc,
            op,
            target.filter.as_ref(),
            value,
            &self.options.refs,
        )
    }

    /// `op` at an attribute path; `explicit` when the client wrote the path (rather than a key of a
    /// path-less value).
    fn path(
        &mut self,
        doc: &mut Map<String, Value>,
        op: Op,
        target: &PathTarget,
        value: Option<&Value>,
        explicit: bool,
    ) -> Result<(), ScimError> {
        if self.members_fast(doc, op, target, value)? {
            return Ok(());
        }
        if self.kind == ResourceKind::Group && target.attr.name == "members" {
            self.flush_members(doc);
        }
        let membership = is_membership(self.kind, target, explicit);
        let container = match target.location {
            Location::Core => Some(&mut *doc),
            Location::Extension(urn) => doc.get_mut(urn).and_then(Value::as_object_mut),
        };
        // Taken out rather than copied: an operation costs the attribute's size once.
        let (before, unassigned) = match container.and_then(|c| c.remove(&target.attr.name)) {
            Some(v) if !is_unassigned(&v) => (Some(v), None),
            other => (None, other),
        };
        let ctx = Ctx {
            attr: target.attr,
            membership,
            text: &target.text,
        };
        let computed = match (&target.filter, target.sub) {
            (None, None) => ctx.whole(op, before.as_ref(), value),
            (None, Some(sub)) => ctx.sub_everywhere(op, sub, before.as_ref(), value),
            (Some(selector), sub) => ctx.filtered(op, selector, sub, before.as_ref(), value),
        };
        let after = computed?.filter(|v| !is_unassigned(v));
        let after = if after == before {
            before.or(unassigned)
        } else {
            check_mutability(target, membership, before.as_ref())?;
            check_multi_values(&target.attr.name, after.as_ref(), membership, self.options)?;
            after
        };
        let Some(after) = after else {
            return Ok(());
        };
        let container = match target.location {
            Location::Core => doc,
            Location::Extension(urn) => {
                let entry = doc
                    .entry(urn.to_owned())
                    .or_insert_with(|| Value::Object(Map::new()));
                if !entry.is_object() {
                    *entry = Value::Object(Map::new());
                }
                entry.as_object_mut().expect("just made an object")
            }
        };
        container.insert(target.attr.name.clone(), after);
        Ok(())
    }
}

/// Removing a whole extension removes what clients may write in it; what the service provider assigns
/// (readOnly) stays, being the service provider's.
fn remove_extension(doc: &mut Map<String, Value>, urn: &str) -> Result<(), ScimError> {
    let Some(Value::Object(ext)) = doc.get_mut(urn) else {
        return Ok(());
    };
    let schema = SchemaRegistry::get().schema(urn);
    ext.retain(|key, _| {
        schema
            .and_then(|s| s.attr(key))
            .is_some_and(|d| d.mutability == Mutability::ReadOnly)
    });
    if ext.is_empty() {
        doc.remove(urn);
    }
    Ok(())
}

/// Keep `schemas` in step with the extension objects: an extension written to is listed, one left
/// empty is dropped with its URN (RFC 7644 §3.5.2: adding a URN-qualified attribute adds its URN).
pub(super) fn fix_schemas(doc: &mut Map<String, Value>, kind: ResourceKind) {
    let mut present = Vec::new();
    for urn in kind.extension_urns() {
        match doc.get(*urn) {
            Some(v) if v.is_object() && !is_unassigned(v) => present.push(*urn),
            Some(_) => {
                doc.remove(*urn);
            }
            None => {}
        }
    }
    let schemas = doc
        .entry("schemas")
        .or_insert_with(|| Value::Array(vec![Value::from(kind.core_urn())]));
    let Value::Array(list) = schemas else { return };
    let registry = SchemaRegistry::get();
    list.retain(|v| {
        v.as_str().is_none_or(|u| {
            registry
                .extension_urn(kind, u)
                .is_none_or(|canonical| present.contains(&canonical))
        })
    });
    for urn in present {
        if !list
            .iter()
            .any(|v| v.as_str().is_some_and(|u| u.eq_ignore_ascii_case(urn)))
        {
            list.push(Value::from(urn));
        }
    }
}
