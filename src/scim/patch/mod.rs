//! PATCH (RFC 7644 §3.5.2): read a `PatchOp` body in the shapes real clients send, and apply it to a
//! SCIM JSON resource atomically, returning the new resource or one [`ScimError`].
//!
//! Owns operation normalisation (`op` in any case; path-less values with plain, dotted and
//! URN-qualified keys; value-filter paths via `scim_v2`'s `PatchPath` parser), the per-operation
//! rules of §3.5.2.1–3, mutability checks and the membership difference a caller needs to send
//! upstream. Knows nothing of JumpCloud: the caller decides what to do with the new resource.
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

use std::collections::{HashMap, HashSet};

use scim_v2::filter::{AttrExp, CompValue, CompareOp, PatchPath, ValFilter};
use serde_json::{Map, Value};

use crate::scim::error::{ScimError, excerpt};
use crate::scim::filter::ElementFilter;
use crate::scim::reference::References;
use crate::scim::schema::{AttrDef, AttrType, Location, Mutability, ResourceKind, SchemaRegistry};

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

#[derive(Debug, Clone)]
struct Operation {
    op: Op,
    target: Target,
    value: Option<Value>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Add,
    Remove,
    Replace,
}

#[derive(Debug, Clone)]
enum Target {
    /// No path: the resource itself.
    Resource,
    /// A whole extension object, named by its URN.
    Extension(&'static str),
    /// An attribute, a sub-attribute, or filtered elements of one.
    Path(Box<PathTarget>),
}

#[derive(Debug, Clone)]
struct PathTarget {
    location: Location<'static>,
    attr: &'static AttrDef,
    sub: Option<&'static AttrDef>,
    filter: Option<Selector>,
    /// The path as the client wrote it, for error details.
    text: String,
}

#[derive(Debug, Clone)]
struct Selector {
    compiled: ElementFilter,
    ast: ValFilter,
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
        if operations.len() > options.max_operations {
            return Err(ScimError::invalid_value(format!(
                "this PATCH carries {} operations; this service applies at most {} in one request \
                 (limits.patch_operations): send them in several requests",
                operations.len(),
                options.max_operations
            )));
        }
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
    pub fn apply(&self, resource: &Value) -> Result<PatchOutcome, ScimError> {
        let Some(original) = resource.as_object() else {
            return Err(ScimError::invalid_value(
                "the resource to patch is not a JSON object",
            ));
        };
        // `$ref`s in a stored resource are derived from `value`: without them, what a client writes there
        // can be told from what was served.
        let mut base = original.clone();
        self.options.refs.strip(&mut base, self.kind);
        let mut doc = base.clone();
        let mut state = Applying {
            kind: self.kind,
            options: &self.options,
            members: None,
        };
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

/// Parse `body` and apply it to `resource` in one step.
pub fn apply_patch(
    resource: &Value,
    body: &Value,
    kind: ResourceKind,
    options: &PatchOptions,
) -> Result<PatchOutcome, ScimError> {
    PatchRequest::parse(body, kind, options)?.apply(resource)
}

/// The values an operation carries: the elements of an array value, or of arrays inside a path-less
/// value object.
fn value_count(value: Option<&Value>) -> usize {
    match value {
        Some(Value::Array(items)) => items.len(),
        Some(Value::Object(o)) => o
            .values()
            .map(|v| match v {
                Value::Array(items) => items.len(),
                _ => 1,
            })
            .max()
            .unwrap_or(0),
        Some(_) => 1,
        None => 0,
    }
}

fn at_operation(mut e: ScimError, index: usize) -> ScimError {
    e.detail = format!("Operations[{index}]: {}", e.detail);
    e
}

/// A member of `obj` whose key matches `key` without regard to case (exact spelling first).
fn get_ci<'v>(obj: &'v Map<String, Value>, key: &str) -> Option<&'v Value> {
    obj.get(key).or_else(|| {
        obj.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v)
    })
}

fn parse_operation(
    raw: &Value,
    kind: ResourceKind,
    options: &PatchOptions,
) -> Result<Operation, ScimError> {
    let Some(obj) = raw.as_object() else {
        return Err(ScimError::invalid_syntax(
            "each operation must be a JSON object",
        ));
    };
    let op = match get_ci(obj, "op").and_then(Value::as_str).map(str::trim) {
        Some(o) if o.eq_ignore_ascii_case("add") => Op::Add,
        Some(o) if o.eq_ignore_ascii_case("remove") => Op::Remove,
        Some(o) if o.eq_ignore_ascii_case("replace") => Op::Replace,
        Some(o) => {
            return Err(ScimError::invalid_syntax(format!(
                "\"op\" is {}; it must be add, remove or replace",
                excerpt(o)
            )));
        }
        None => return Err(ScimError::invalid_syntax("the operation has no \"op\"")),
    };
    let path = match get_ci(obj, "path") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.trim().is_empty() => None,
        Some(Value::String(s)) => Some(s.as_str()),
        Some(_) => return Err(ScimError::invalid_path("\"path\" must be a string")),
    };
    let value = get_ci(obj, "value").cloned();
    let values = value_count(value.as_ref());
    if values > options.max_values {
        return Err(ScimError::invalid_value(format!(
            "the operation carries {values} values; this service takes at most {} in one operation \
             (limits.patch_values): split it",
            options.max_values
        )));
    }
    let target = match path {
        None if op == Op::Remove => {
            return Err(ScimError::no_target("a remove operation needs a \"path\""));
        }
        None => Target::Resource,
        Some(path) => parse_target(path, kind)?.ok_or_else(|| {
            ScimError::invalid_path(format!(
                "{} does not name an attribute of a {}",
                excerpt(path),
                kind.name()
            ))
        })?,
    };
    match (&target, op, &value) {
        (_, Op::Add | Op::Replace, None) => Err(ScimError::invalid_value(format!(
            "an {} operation needs a \"value\"",
            if op == Op::Add { "add" } else { "replace" }
        ))),
        (Target::Resource, _, Some(v)) if !v.is_object() => Err(ScimError::invalid_value(
            "without a \"path\", \"value\" must be an object of attributes",
        )),
        _ => Ok(Operation { op, target, value }),
    }
}

/// Read a path; `Ok(None)` when it is well formed but names nothing the schemas define.
fn parse_target(raw: &str, kind: ResourceKind) -> Result<Option<Target>, ScimError> {
    let registry = SchemaRegistry::get();
    let raw = raw.trim();
    if let Some(urn) = registry.extension_urn(kind, raw) {
        return Ok(Some(Target::Extension(urn)));
    }
    let parsed = match raw.parse::<PatchPath>() {
        Ok(p) => p,
        // Names the filter grammar cannot spell but RFC 7643 can (`manager.$ref`).
        Err(_) if !raw.contains('[') && registry.resolve(kind, raw).is_some() => {
            let r = registry.resolve(kind, raw).expect("checked");
            return Ok(Some(Target::Path(Box::new(PathTarget {
                location: r.location,
                attr: r.attr,
                sub: r.sub,
                filter: None,
                text: raw.to_owned(),
            }))));
        }
        Err(e) => {
            return Err(ScimError::invalid_path(format!(
                "{} is not a valid path: {e}",
                excerpt(raw)
            )));
        }
    };
    let target = match parsed {
        PatchPath::Attr(path) => registry.resolve_attr_path(kind, &path).map(|r| PathTarget {
            location: r.location,
            attr: r.attr,
            sub: r.sub,
            filter: None,
            text: raw.to_owned(),
        }),
        PatchPath::Value(vp) => {
            let Some(r) = registry.resolve_attr_path(kind, &vp.attr) else {
                return Ok(None);
            };
            if r.sub.is_some() || !r.attr.is_complex() {
                return Err(ScimError::invalid_path(format!(
                    "{}: '{}' has no sub-attributes to select with [...]",
                    excerpt(raw),
                    vp.attr
                )));
            }
            let sub = match vp.sub_attr.as_deref() {
                Some(name) => match r.attr.sub(name) {
                    Some(sub) => Some(sub),
                    None => return Ok(None),
                },
                None => None,
            };
            let compiled = ElementFilter::new(&vp.filter, r.attr)
                .map_err(|e| ScimError::invalid_path(format!("{}: {}", excerpt(raw), e.detail)))?;
            Some(PathTarget {
                location: r.location,
                attr: r.attr,
                sub,
                filter: Some(Selector {
                    compiled,
                    ast: vp.filter,
                }),
                text: raw.to_owned(),
            })
        }
    };
    Ok(target.map(|t| Target::Path(Box::new(t))))
}

// === application ===

/// One PATCH being applied: the working document's companions.
struct Applying<'a> {
    kind: ResourceKind,
    options: &'a PatchOptions,
    /// A Group's members while membership operations run (taken out of the document on the first one, put
    /// back before any other operation on `members` and at the end).
    members: Option<MemberSet>,
}

impl Applying<'_> {
    fn operation(
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

    fn flush_members(&mut self, doc: &mut Map<String, Value>) {
        if let Some(m) = self.members.take() {
            m.put(doc);
        }
    }

    /// Membership operations on a Group's `members` in the shapes clients send (add, replace or remove
    /// of values; remove by `members[value eq "…"]`), on the member set: `Ok(false)` when the operation is
    /// another shape, for the general path.
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
        let refs = &self.options.refs;
        let ids_of = |v: &Value| -> Result<Vec<String>, ScimError> {
            let items: Vec<&Value> = match v {
                Value::Array(items) => items.iter().collect(),
                Value::Null => Vec::new(),
                other => vec![other],
            };
            let mut ids = Vec::with_capacity(items.len());
            for item in items {
                match refs.element_id("members", item)? {
                    Some(id) => ids.push(id),
                    None if item.is_null() => {}
                    None => {
                        return Err(ScimError::invalid_value(format!(
                            "each member needs a value (a user id) or a $ref, got {}",
                            excerpt(&item.to_string())
                        )));
                    }
                }
            }
            Ok(ids)
        };
        let change = match (&target.filter, op) {
            (None, Op::Add) => Change::Add(ids_of(value.unwrap_or(&Value::Null))?),
            (None, Op::Replace) => Change::Replace(ids_of(value.unwrap_or(&Value::Null))?),
            (None, Op::Remove) => match value {
                Some(v) if !is_unassigned(v) => Change::Remove(ids_of(v)?),
                _ => Change::Replace(Vec::new()),
            },
            (Some(selector), Op::Remove) if value.is_none() => match value_eq_ids(&selector.ast) {
                Some(ids) => Change::Remove(ids),
                None => return Ok(false),
            },
            _ => return Ok(false),
        };
        let members = self.members.get_or_insert_with(|| MemberSet::take(doc));
        match change {
            Change::Add(ids) => ids.into_iter().for_each(|id| members.add(id)),
            Change::Remove(ids) => ids.iter().for_each(|id| members.remove(id)),
            Change::Replace(ids) => {
                members.clear();
                ids.into_iter().for_each(|id| members.add(id));
            }
        }
        Ok(true)
    }

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
            if let Some(Value::Array(items)) = &after
                && !membership
                && items.len() > self.options.max_multi
            {
                return Err(ScimError::invalid_value(format!(
                    "{} would hold {} values; this service keeps at most {} (limits.multi_values)",
                    target.attr.name,
                    items.len(),
                    self.options.max_multi
                )));
            }
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

/// A membership operation on the member set.
enum Change {
    Add(Vec<String>),
    Remove(Vec<String>),
    Replace(Vec<String>),
}

/// The ids a filter `value eq "a"` (or `value eq "a" or value eq "b" …`) names; `None` for any other filter.
fn value_eq_ids(filter: &ValFilter) -> Option<Vec<String>> {
    match filter {
        ValFilter::Attr(AttrExp::Comparison(path, CompareOp::Eq, CompValue::Str(id)))
            if path.uri.is_none()
                && path.sub_attr.is_none()
                && path.name.eq_ignore_ascii_case("value") =>
        {
            Some(vec![id.clone()])
        }
        ValFilter::Or(items) => {
            let mut out = Vec::new();
            for item in items.iter() {
                out.extend(value_eq_ids(item)?);
            }
            Some(out)
        }
        _ => None,
    }
}

/// A Group's member ids, in order, with a map from id to position: adding or removing one costs the same
/// however many the group holds.
struct MemberSet {
    ids: Vec<Option<String>>,
    at: HashMap<String, usize>,
    /// `members` as it was taken out, put back as it was when nothing changed.
    original: Option<Value>,
    changed: bool,
}

impl MemberSet {
    fn take(doc: &mut Map<String, Value>) -> MemberSet {
        let original = doc.remove("members");
        let mut set = MemberSet {
            ids: Vec::new(),
            at: HashMap::new(),
            original: None,
            changed: false,
        };
        for element in original.as_ref().map(elements).unwrap_or_default() {
            if let Some(id) = element.get("value").and_then(Value::as_str) {
                set.add(id.to_owned());
            }
        }
        set.changed = false;
        set.original = original;
        set
    }

    fn add(&mut self, id: String) {
        if !self.at.contains_key(&id) {
            self.at.insert(id.clone(), self.ids.len());
            self.ids.push(Some(id));
            self.changed = true;
        }
    }

    fn remove(&mut self, id: &str) {
        if let Some(i) = self.at.remove(id) {
            self.ids[i] = None;
            self.changed = true;
        }
    }

    fn clear(&mut self) {
        self.changed |= !self.at.is_empty();
        self.ids.clear();
        self.at.clear();
    }

    fn put(self, doc: &mut Map<String, Value>) {
        if !self.changed {
            if let Some(v) = self.original {
                doc.insert("members".to_owned(), v);
            }
            return;
        }
        let members: Vec<Value> = self
            .ids
            .into_iter()
            .flatten()
            .map(|id| Value::Object(Map::from_iter([("value".to_owned(), Value::from(id))])))
            .collect();
        if !members.is_empty() {
            doc.insert("members".to_owned(), Value::Array(members));
        }
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

/// Is `groups` on a User written through an explicit path (the one readOnly attribute clients may
/// change, by changing memberships)?
fn is_membership(kind: ResourceKind, target: &PathTarget, explicit: bool) -> bool {
    match kind {
        ResourceKind::User => explicit && target.attr.name == "groups" && target.sub.is_none(),
        ResourceKind::Group => target.attr.name == "members",
    }
}

/// The write changes something; may it?
fn check_mutability(
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

/// The attribute being written and how to read values for it.
struct Ctx<'a> {
    attr: &'static AttrDef,
    /// Membership attribute: `value` (otherwise server-assigned in `groups`) is kept.
    membership: bool,
    text: &'a str,
}

impl Ctx<'_> {
    /// `op` on the attribute as a whole; returns its new top-level value.
    fn whole(
        &self,
        op: Op,
        before: Option<&Value>,
        value: Option<&Value>,
    ) -> Result<Option<Value>, ScimError> {
        let def = self.attr;
        if op == Op::Remove {
            return Ok(match value {
                Some(v) if def.multi_valued && !is_unassigned(v) => {
                    let remove = self.normalize_elements(v)?;
                    let kept: Vec<Value> = elements(before.unwrap_or(&Value::Null))
                        .into_iter()
                        .filter(|e| !remove.iter().any(|r| self.same_element(r, e)))
                        .cloned()
                        .collect();
                    Some(Value::Array(kept))
                }
                _ => None,
            });
        }
        let value = value.unwrap_or(&Value::Null);
        if is_unassigned(value) && !value.is_object() {
            return Ok(if op == Op::Add { before.cloned() } else { None });
        }
        if def.multi_valued {
            let incoming = self.normalize_elements(value)?;
            let mut out: Vec<Value> = match op {
                Op::Add => elements(before.unwrap_or(&Value::Null))
                    .into_iter()
                    .cloned()
                    .collect(),
                _ => Vec::new(),
            };
            for element in incoming {
                if !out.iter().any(|e| self.same_element(&element, e)) {
                    out.push(element);
                }
            }
            let mut after = Value::Array(out);
            fix_primary(before, &mut after);
            return Ok(Some(after));
        }
        let normalized = normalize_value(def, value, self.membership, self.text)?;
        // An object merges (even an empty one); null, "" or [] for a complex value unassigns.
        if is_unassigned(&normalized) && !value.is_object() {
            return Ok(if op == Op::Add { before.cloned() } else { None });
        }
        if def.is_complex() {
            return Ok(merge_complex(def, before, &normalized));
        }
        Ok(Some(normalized))
    }

    /// `op` on one sub-attribute of every element (or of the single complex value).
    fn sub_everywhere(
        &self,
        op: Op,
        sub: &'static AttrDef,
        before: Option<&Value>,
        value: Option<&Value>,
    ) -> Result<Option<Value>, ScimError> {
        let new = match (op, value) {
            (Op::Remove, _) => None,
            (_, Some(v)) => Some(normalize_value(sub, v, false, self.text)?),
            (_, None) => None,
        };
        if op == Op::Add && new.as_ref().is_some_and(is_unassigned) {
            return Ok(before.cloned());
        }
        let set = |element: &mut Map<String, Value>| match &new {
            Some(v) if !is_unassigned(v) => {
                element.insert(sub.name.clone(), v.clone());
            }
            _ => {
                element.remove(&sub.name);
            }
        };
        if !self.attr.multi_valued {
            let mut obj = before
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default();
            set(&mut obj);
            return Ok((!obj.is_empty()).then_some(Value::Object(obj)));
        }
        let mut items: Vec<Value> = elements(before.unwrap_or(&Value::Null))
            .into_iter()
            .cloned()
            .collect();
        if items.is_empty() && op != Op::Remove {
            items.push(Value::Object(Map::new()));
        }
        for item in &mut items {
            if let Some(obj) = item.as_object_mut() {
                set(obj);
            }
        }
        items.retain(|i| !is_unassigned(i));
        let mut after = Value::Array(items);
        fix_primary(before, &mut after);
        Ok(Some(after))
    }

    /// `op` on the elements a value filter selects (`emails[type eq "work"]`, optionally `.value`).
    fn filtered(
        &self,
        op: Op,
        selector: &Selector,
        sub: Option<&'static AttrDef>,
        before: Option<&Value>,
        value: Option<&Value>,
    ) -> Result<Option<Value>, ScimError> {
        let mut items: Vec<Value> = elements(before.unwrap_or(&Value::Null))
            .into_iter()
            .cloned()
            .collect();
        let matched: Vec<usize> = (0..items.len())
            .filter(|&i| selector.compiled.matches(&items[i]))
            .collect();
        let value = match value.unwrap_or(&Value::Null) {
            // One element written as a one-element array.
            Value::Array(items) if sub.is_none() && items.len() == 1 => &items[0],
            other => other,
        };
        if matched.is_empty() {
            if op == Op::Remove {
                return Ok(before.cloned());
            }
            let Some(mut seed) = seed_from_filter(self.attr, &selector.ast) else {
                return Err(ScimError::no_target(format!(
                    "{:?} matches no value",
                    self.text
                )));
            };
            match sub {
                Some(sub) => {
                    let v = normalize_value(sub, value, false, self.text)?;
                    if is_unassigned(&v) {
                        return Ok(before.cloned());
                    }
                    seed.insert(sub.name.clone(), v);
                }
                None => {
                    if let Value::Object(fields) = without_nulls(normalize_value(
                        self.attr,
                        value,
                        self.membership,
                        self.text,
                    )?) {
                        seed.extend(fields);
                    }
                }
            }
            items.push(Value::Object(seed));
        } else {
            let replacement = match (op, sub) {
                (Op::Remove, _) => None,
                (_, Some(sub)) => Some(normalize_value(sub, value, false, self.text)?),
                (_, None) => Some(normalize_value(
                    self.attr,
                    value,
                    self.membership,
                    self.text,
                )?),
            };
            for &i in matched.iter().rev() {
                match (op, sub, &replacement) {
                    (Op::Remove, None, _) => {
                        items.remove(i);
                    }
                    (_, Some(sub), new) => {
                        if let Some(obj) = items[i].as_object_mut() {
                            match new {
                                Some(v) if !is_unassigned(v) => {
                                    obj.insert(sub.name.clone(), v.clone());
                                }
                                _ if op == Op::Add => {}
                                _ => {
                                    obj.remove(&sub.name);
                                }
                            }
                        }
                    }
                    (Op::Replace, None, Some(new)) => {
                        let new = without_nulls(new.clone());
                        if is_unassigned(&new) {
                            items.remove(i);
                        } else {
                            items[i] = new;
                        }
                    }
                    (Op::Add, None, Some(Value::Object(fields))) => {
                        if let Some(obj) = items[i].as_object_mut() {
                            for (k, v) in fields {
                                if v.is_null() {
                                    obj.remove(k);
                                } else {
                                    obj.insert(k.clone(), v.clone());
                                }
                            }
                        }
                    }
                    _ => {}
                }
            }
            items.retain(|i| !is_unassigned(i));
        }
        if !self.attr.multi_valued {
            return Ok(items.into_iter().next());
        }
        let mut after = Value::Array(items);
        fix_primary(before, &mut after);
        Ok(Some(after))
    }

    /// The elements a value for a multi-valued attribute carries (an array, one object, or for a
    /// complex attribute with `value`, a bare id), each normalised.
    fn normalize_elements(&self, value: &Value) -> Result<Vec<Value>, ScimError> {
        let items: Vec<&Value> = match value {
            Value::Array(items) => items.iter().collect(),
            other => vec![other],
        };
        items
            .into_iter()
            .filter(|v| !v.is_null())
            .map(|v| normalize_value(self.attr, v, self.membership, self.text).map(without_nulls))
            .filter(|r| !r.as_ref().is_ok_and(is_unassigned))
            .collect()
    }

    /// Do two elements denote the same value? By `value` (with the attribute's case rule) plus a
    /// client-settable `type`; elements without `value` compare whole.
    fn same_element(&self, a: &Value, b: &Value) -> bool {
        let (Some(av), Some(bv)) = (a.get("value"), b.get("value")) else {
            return a == b;
        };
        let value_def = self.attr.sub("value");
        let same_value = match (av.as_str(), bv.as_str()) {
            (Some(x), Some(y)) if !value_def.is_some_and(|d| d.case_exact) => {
                x.eq_ignore_ascii_case(y)
            }
            _ => av == bv,
        };
        let type_settable = self
            .attr
            .sub("type")
            .is_some_and(|d| d.mutability != Mutability::ReadOnly);
        let same_type = !type_settable
            || match (
                a.get("type").and_then(Value::as_str),
                b.get("type").and_then(Value::as_str),
            ) {
                (Some(x), Some(y)) => x.eq_ignore_ascii_case(y),
                (x, y) => x == y,
            };
        same_value && same_type
    }
}

/// For a filter of `eq` tests that names `type` (`type eq "work"`, optionally `and`-ed with more
/// `eq` tests), the element those tests describe; otherwise `None`.
fn seed_from_filter(attr: &AttrDef, filter: &ValFilter) -> Option<Map<String, Value>> {
    let terms: Vec<&ValFilter> = match filter {
        ValFilter::And(items) => items.iter().collect(),
        single => vec![single],
    };
    let mut seed = Map::new();
    for term in terms {
        let ValFilter::Attr(AttrExp::Comparison(path, CompareOp::Eq, value)) = term else {
            return None;
        };
        if path.uri.is_some() || path.sub_attr.is_some() {
            return None;
        }
        let sub = attr.sub(&path.name)?;
        let v = match value {
            CompValue::Str(s) => Value::from(s.as_str()),
            CompValue::True => Value::Bool(true),
            CompValue::False => Value::Bool(false),
            CompValue::Number(n) => Value::Number(n.clone()),
            CompValue::Null => return None,
        };
        seed.insert(sub.name.clone(), normalize_value(sub, &v, false, "").ok()?);
    }
    seed.contains_key("type").then_some(seed)
}

/// A value for one attribute (or one element of a multi-valued one), in the schema's shape:
/// booleans from "True"/"False", strings from numbers, complex values with canonical sub-attribute
/// names and without server-assigned sub-attributes. `membership` keeps `value` in `groups`.
fn normalize_value(
    def: &AttrDef,
    value: &Value,
    membership: bool,
    path: &str,
) -> Result<Value, ScimError> {
    let bad = |what: &str| {
        ScimError::invalid_value(format!("{path}: {} must be {what}, got {value}", def.name))
    };
    if value.is_null() {
        return Ok(Value::Null);
    }
    match def.attr_type {
        AttrType::Complex => {
            let obj = match value {
                Value::Object(o) => o,
                Value::String(s) if def.sub("value").is_some() => {
                    if s.is_empty() {
                        return Ok(Value::Null);
                    }
                    return Ok(Value::Object(Map::from_iter([(
                        "value".to_owned(),
                        Value::from(s.as_str()),
                    )])));
                }
                // Entra sends a single-valued complex attribute (manager) as a one-element array.
                Value::Array(items) if !def.multi_valued && items.len() <= 1 => {
                    return match items.first() {
                        Some(item) => normalize_value(def, item, membership, path),
                        None => Ok(Value::Null),
                    };
                }
                _ => return Err(bad("an object of sub-attributes")),
            };
            let mut out = Map::new();
            for (key, v) in obj {
                let Some(sub) = def.sub(key) else { continue };
                let server_assigned =
                    sub.mutability == Mutability::ReadOnly && !(membership && sub.name == "value");
                if server_assigned {
                    continue;
                }
                // A null sub-attribute stays, meaning "unassign it" when merged into a value.
                out.insert(sub.name.clone(), normalize_value(sub, v, false, path)?);
            }
            Ok(Value::Object(out))
        }
        AttrType::Boolean => match value {
            Value::Bool(_) => Ok(value.clone()),
            Value::String(s) if s.trim().eq_ignore_ascii_case("true") => Ok(Value::Bool(true)),
            Value::String(s) if s.trim().eq_ignore_ascii_case("false") => Ok(Value::Bool(false)),
            _ => Err(bad("true or false")),
        },
        AttrType::Integer | AttrType::Decimal => match value {
            Value::Number(_) => Ok(value.clone()),
            Value::String(s) => s
                .trim()
                .parse::<serde_json::Number>()
                .map(Value::Number)
                .map_err(|_| bad("a number")),
            _ => Err(bad("a number")),
        },
        AttrType::String | AttrType::Reference | AttrType::DateTime | AttrType::Binary => {
            match value {
                Value::String(_) => Ok(value.clone()),
                Value::Number(n) => Ok(Value::from(n.to_string())),
                Value::Bool(b) => Ok(Value::from(b.to_string())),
                _ => Err(bad("a string")),
            }
        }
    }
}

/// RFC 7644 §3.5.2.3: a complex value's sub-attributes replace or add to the existing ones, the
/// others stay. When `value` changes (a new manager), the server-assigned sub-attributes that
/// described the old one go.
fn merge_complex(def: &AttrDef, before: Option<&Value>, new: &Value) -> Option<Value> {
    let Some(new) = new.as_object() else {
        return before.cloned();
    };
    let mut out = before
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let value_changes = new
        .get("value")
        .is_some_and(|v| out.get("value") != Some(v));
    if value_changes {
        out.retain(|k, _| {
            def.sub(k)
                .is_none_or(|s| s.mutability != Mutability::ReadOnly)
        });
    }
    for (k, v) in new {
        if v.is_null() {
            out.remove(k);
        } else {
            out.insert(k.clone(), v.clone());
        }
    }
    Some(Value::Object(out))
}

/// §3.5.2: a value newly marked `primary: true` makes every other value non-primary.
fn fix_primary(before: Option<&Value>, after: &mut Value) {
    let is_primary = |v: &Value| v.get("primary") == Some(&Value::Bool(true));
    let old: Vec<&Value> = before
        .map(elements)
        .unwrap_or_default()
        .into_iter()
        .filter(|v| is_primary(v))
        .collect();
    let Value::Array(items) = after else { return };
    let Some(keep) = items
        .iter()
        .rposition(|v| is_primary(v) && !old.contains(&v))
    else {
        return;
    };
    for (i, item) in items.iter_mut().enumerate() {
        if i != keep && is_primary(item) {
            item["primary"] = Value::Bool(false);
        }
    }
}

/// `value` without null members (a stored element carries no nulls).
fn without_nulls(mut value: Value) -> Value {
    if let Value::Object(o) = &mut value {
        o.retain(|_, v| !v.is_null());
    }
    value
}

/// The elements of a multi-valued value (or the single value of a single-valued complex one).
fn elements(v: &Value) -> Vec<&Value> {
    match v {
        Value::Array(items) => items.iter().collect(),
        Value::Null => Vec::new(),
        other => vec![other],
    }
}

/// RFC 7643 §2.5: null, an empty array and (for complex values) an empty object are unassigned.
fn is_unassigned(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Array(items) => items.is_empty(),
        Value::Object(o) => o.values().all(is_unassigned),
        _ => false,
    }
}

fn check_required(
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

/// Keep `schemas` in step with the extension objects: an extension written to is listed, one left
/// empty is dropped with its URN (RFC 7644 §3.5.2: adding a URN-qualified attribute adds its URN).
fn fix_schemas(doc: &mut Map<String, Value>, kind: ResourceKind) {
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

/// Ids in `members` (Group) or `groups` (User), before versus after.
fn membership_change(
    before: &Map<String, Value>,
    after: &Map<String, Value>,
    kind: ResourceKind,
) -> MembershipChange {
    let key = match kind {
        ResourceKind::User => "groups",
        ResourceKind::Group => "members",
    };
    let ids = |m: &Map<String, Value>| -> Vec<String> {
        let mut seen = HashSet::new();
        m.get(key)
            .map(elements)
            .unwrap_or_default()
            .into_iter()
            .filter_map(|v| v.get("value").and_then(Value::as_str))
            .filter(|id| seen.insert(*id))
            .map(str::to_owned)
            .collect()
    };
    let (old, new) = (ids(before), ids(after));
    let (old_set, new_set): (HashSet<&String>, HashSet<&String>) =
        (old.iter().collect(), new.iter().collect());
    MembershipChange {
        added: new
            .iter()
            .filter(|id| !old_set.contains(id))
            .cloned()
            .collect(),
        removed: old
            .iter()
            .filter(|id| !new_set.contains(id))
            .cloned()
            .collect(),
    }
}

#[cfg(test)]
mod tests;
