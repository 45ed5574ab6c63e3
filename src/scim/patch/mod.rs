//! PATCH (RFC 7644 §3.5.2): read a `PatchOp` body in the shapes real clients send, and apply it to a
//! SCIM JSON resource atomically, returning the new resource or one [`ScimError`].
//!
//! Owns operation normalisation (`op` in any case; path-less values with plain, dotted and
//! URN-qualified keys; value-filter paths via `scim_v2`'s `PatchPath` parser), the per-operation
//! rules of §3.5.2.1–3, mutability checks and the membership difference a caller needs to send
//! upstream. Knows nothing of JumpCloud: the caller decides what to do with the new resource.
//!
//! The files here, in the order a request passes through them:
//! - `mod.rs` (this file): the public types, [`PatchRequest::parse`] and [`PatchRequest::apply`].
//! - `operation.rs`: each operation read into an `op`, a target and a value, keys in any case.
//! - `path.rs`: a `path` resolved against the schemas: an extension URN, an attribute, a
//!   sub-attribute, or the elements a value filter selects.
//! - `apply.rs`: the operations run in order on a working copy of the resource; `schemas` kept in
//!   step with the extension objects at the end.
//! - `members.rs`: a Group's `members` changed on an id set rather than by rewriting the array, and
//!   the net membership difference.
//! - `values.rs`: what `add`, `replace` and `remove` make of one attribute's value.
//! - `value_filter.rs`: the same for the elements a value filter selects, and the element a
//!   `type eq "…"` filter creates when none matches.
//! - `normalize.rs`: a client's value put in the schema's shape (`"True"`, numbers as strings, bare
//!   ids, server-assigned sub-attributes dropped).
//! - `mutability.rs`: whether a write that changes something may, and required attributes.
//! - `limits.rs`: the bounds in [`PatchOptions`] and where in the body an error arose.
//!
//! Decisions where the RFC leaves room (each matches what a client in `scim-clients.md` §5 sends):
//! - `op` is compared without case; `Operations`, `op`, `path` and `value` keys too. A body without
//!   the PatchOp URN in `schemas` is accepted.
//! - An explicit path naming an attribute the schemas do not define is 400 `invalidPath`; the same
//!   key inside a path-less value object is ignored, as unknown attributes in POST/PUT bodies are.
//!   `schemas` and `meta` inside path-less values are ignored (RFC 7643 §3.1: meta "SHALL be
//!   ignored when provided by clients"), and so is `groups` on a User (clients echo it).
//! - Writing a readOnly attribute is 400 `mutability` unless the write changes nothing (`id` equal to
//!   the resource's own, as Okta sends in a Group rename). Sub-attributes the server assigns
//!   (`members.display`, `manager.$ref`, `name.formatted`, …) are dropped from values silently.
//!   Immutable sub-attributes (`members.value`) may be set only where unassigned.
//! - Memberships: `members` on a Group and, by explicit path only, `groups` on a User may be added,
//!   removed or replaced; [`PatchOutcome::membership`] reports the net difference (ids added and
//!   removed), so the caller can send only that upstream.
//! - `add` to a multi-valued attribute skips values already present (same `value`, and the same
//!   `type` where the client may set it). A `primary: true` written to one value clears it on the
//!   others (§3.5.2).
//! - A value-filter path that matches nothing: `remove` succeeds without change (§3.5.2.2's member
//!   example); `add`/`replace` create a new element when the filter is `type eq "…"` (optionally
//!   `and`-ed with more `eq` tests), which Entra relies on for `emails[type eq "work"].value`;
//!   otherwise 400 `noTarget` (§3.5.2.3).
//! - `"True"`/`"False"` (any case) become booleans for boolean attributes, numbers become strings
//!   for string attributes. A single-valued complex attribute with a `value` sub-attribute
//!   (`manager`) also accepts a bare id string or a one-element array (Entra's manager shape).
//! - `add` with `null` changes nothing; `replace` with `null` (or `[]`) unassigns (RFC 7643 §2.5).
//! - A required attribute (`userName`, `emails`, `displayName`) that was assigned and ends unassigned
//!   is 400 `mutability` (§3.5.2.2).

mod apply;
mod limits;
mod members;
mod mutability;
mod normalize;
mod operation;
mod path;
mod value_filter;
mod values;

use std::collections::HashSet;

use serde_json::{Map, Value};

use crate::scim::error::ScimError;
use crate::scim::reference::References;
use crate::scim::schema::ResourceKind;

use self::apply::{Applying, fix_schemas};
use self::limits::{at_operation, check_operation_count};
use self::members::membership_change;
use self::mutability::check_required;
use self::operation::{Operation, get_ci, parse_operation};

/// `schemas` URN of a PATCH body.
pub const PATCH_OP_URN: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

/// What bounds a PATCH, and how references in it resolve.
#[derive(Debug, Clone)]
pub struct PatchOptions {
    /// Resolves `members.$ref` and `manager.$ref` to ids.
    pub refs: References,
    /// Most operations one PATCH may carry (`limits.patch_operations`).
    pub max_operations: usize,
    /// Most values one operation's value may carry (`limits.patch_values`).
    pub max_values: usize,
    /// Most values a multi-valued attribute other than a Group's `members` and a User's `groups` may hold
    /// (`limits.multi_values`).
    pub max_multi: usize,
}

impl Default for PatchOptions {
    fn default() -> Self {
        PatchOptions {
            refs: References::default(),
            max_operations: 1000,
            max_values: 100_000,
            max_multi: 100,
        }
    }
}

/// A PATCH body read and checked for one resource kind, ready to apply.
#[derive(Debug, Clone)]
pub struct PatchRequest {
    kind: ResourceKind,
    operations: Vec<Operation>,
    options: PatchOptions,
}

/// The result of a successful PATCH.
#[derive(Debug, Clone, PartialEq)]
pub struct PatchOutcome {
    /// The resource after every operation.
    pub resource: Value,
    /// Whether it differs from the resource before.
    pub changed: bool,
    /// Net membership change: `members` of a Group, `groups` of a User.
    pub membership: MembershipChange,
}

/// Member ids (Group) or group ids (User) added and removed, net of each other, in request order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MembershipChange {
    /// Ids that are members now and were not before.
    pub added: Vec<String>,
    /// Ids that were members before and are not now.
    pub removed: Vec<String>,
}

// === impl MembershipChange ===

impl MembershipChange {
    /// No membership changed.
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty()
    }
}

// === impl PatchRequest ===

impl PatchRequest {
    /// Read a PATCH body for `kind`.
    ///
    /// Errors: not an object or no non-empty `Operations` array, or an unknown `op` → `invalidSyntax`;
    /// `remove` without `path` → `noTarget`; `add`/`replace` without `value` (or path-less with a
    /// non-object value) → `invalidValue`; a malformed path or one naming an unknown attribute →
    /// `invalidPath`.
    pub fn parse(
        body: &Value,
        kind: ResourceKind,
        options: &PatchOptions,
    ) -> Result<PatchRequest, ScimError> {
        let Some(obj) = body.as_object() else {
            return Err(ScimError::invalid_syntax(
                "a PATCH body must be a PatchOp JSON object",
            ));
        };
        let operations = get_ci(obj, "Operations")
            .and_then(Value::as_array)
            .filter(|ops| !ops.is_empty())
            .ok_or_else(|| {
                ScimError::invalid_syntax(
                    "a PatchOp needs an \"Operations\" array with at least one operation",
                )
            })?;
        check_operation_count(operations.len(), options)?;
        let operations = operations
            .iter()
            .enumerate()
            .map(|(i, raw)| parse_operation(raw, kind, options).map_err(|e| at_operation(e, i)))
            .collect::<Result<_, _>>()?;
        Ok(PatchRequest {
            kind,
            operations,
            options: options.clone(),
        })
    }

    /// The resource kind this request was read for.
    pub fn kind(&self) -> ResourceKind {
        self.kind
    }

    /// Apply every operation in order to a copy of `resource`; all or nothing.
    ///
    /// A Group PATCH made only of membership changes in the shapes clients send (values added, replaced or
    /// removed; `members[value eq "…"]` removed) works on the member ids alone and builds the members as
    /// JSON once, for the outcome: a group of 100,000 members costs a pass or two over them, not the
    /// several copies and comparisons of the general path, whose outcome it equals.
    pub fn apply(&self, resource: &Value) -> Result<PatchOutcome, ScimError> {
        let Some(original) = resource.as_object() else {
            return Err(ScimError::invalid_value(
                "the resource to patch is not a JSON object",
            ));
        };
        if let Some(outcome) = self.apply_to_members(original)? {
            return Ok(outcome);
        }
        self.apply_general(original)
    }

    /// Every operation in order on a copy of the resource, whatever its shape.
    fn apply_general(&self, original: &Map<String, Value>) -> Result<PatchOutcome, ScimError> {
        // `$ref`s in a stored resource are derived from `value`: without them, what a client writes there
        // can be told from what was served.
        let mut base = original.clone();
        self.options.refs.strip(&mut base, self.kind);
        let mut doc = base.clone();
        let mut state = Applying::new(self.kind, &self.options);
        for (i, operation) in self.operations.iter().enumerate() {
            state
                .operation(&mut doc, operation)
                .map_err(|e| at_operation(e, i))?;
        }
        state.flush_members(&mut doc);
        self.options.refs.settle(&mut doc, &base, self.kind)?;
        check_required(&base, &doc, self.kind)?;
        fix_schemas(&mut doc, self.kind);
        let membership = membership_change(&base, &doc, self.kind);
        let changed = doc != base;
        Ok(PatchOutcome {
            resource: Value::Object(doc),
            changed,
            membership,
        })
    }
}

impl PatchRequest {
    /// See [`PatchRequest::apply`]: `None` when some operation is not a membership change of a fast shape.
    fn apply_to_members(
        &self,
        original: &Map<String, Value>,
    ) -> Result<Option<PatchOutcome>, ScimError> {
        let fast = |o: &operation::Operation| match &o.target {
            path::Target::Path(t) => {
                t.attr.name == "members"
                    && t.sub.is_none()
                    && members::fast_shape(o.op, t.filter.as_ref(), o.value.as_ref())
            }
            _ => false,
        };
        if self.kind != ResourceKind::Group || !self.operations.iter().all(fast) {
            return Ok(None);
        }
        let before: Vec<&str> = original
            .get("members")
            .map(normalize::elements)
            .unwrap_or_default()
            .into_iter()
            .filter_map(|m| m.get("value").and_then(Value::as_str))
            .collect();
        let mut set = Some(members::MemberSet::of(
            before.iter().map(|s| (*s).to_owned()),
        ));
        let mut doc: Map<String, Value> = original
            .iter()
            .filter(|(k, _)| k.as_str() != "members")
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        for (i, o) in self.operations.iter().enumerate() {
            let path::Target::Path(t) = &o.target else {
                return Ok(None);
            };
            let taken = members::apply_fast(
                &mut set,
                &mut doc,
                o.op,
                t.filter.as_ref(),
                o.value.as_ref(),
                &self.options.refs,
            )
            .map_err(|e| at_operation(e, i))?;
            if !taken {
                return Ok(None);
            }
        }
        let Some(set) = set else {
            return Ok(None);
        };
        let after: Vec<&str> = set.ids().collect();
        let (old, new): (HashSet<&str>, HashSet<&str>) = (
            before.iter().copied().collect(),
            after.iter().copied().collect(),
        );
        let membership = MembershipChange {
            added: dedup(after.iter().filter(|id| !old.contains(*id))),
            removed: dedup(before.iter().filter(|id| !new.contains(*id))),
        };
        drop((old, new, after));
        let changed = set.is_changed();
        if changed {
            set.put(&mut doc);
        } else if let Some(m) = original.get("members") {
            // As the general path leaves them: the members as stored, without the `$ref`s derived from
            // their values.
            let mut only = Map::from_iter([("members".to_owned(), m.clone())]);
            self.options.refs.strip(&mut only, self.kind);
            doc.extend(only);
        }
        check_required(original, &doc, self.kind)?;
        fix_schemas(&mut doc, self.kind);
        Ok(Some(PatchOutcome {
            resource: Value::Object(doc),
            changed,
            membership,
        }))
    }
}

/// The ids in order, each once.
fn dedup<'a>(ids: impl Iterator<Item = &'a &'a str>) -> Vec<String> {
    let mut seen = HashSet::new();
    ids.filter(|id| seen.insert(**id))
        .map(|id| (*id).to_owned())
        .collect()
}

/// Parse `body` and apply it to `resource` in one step.
pub fn apply_patch(
    resource: &Value,
    body: &Value,
    kind: ResourceKind,
    options: &PatchOptions,
) -> Result<PatchOutcome, ScimError> {
    PatchRequest::parse(body, kind, options)?.apply(resource)
}

#[cfg(test)]
mod tests;
