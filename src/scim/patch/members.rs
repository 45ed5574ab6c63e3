//! Memberships: which attribute is one (`members` on a Group; `groups` on a User, by explicit path
//! only), the fast path for a Group's `members` in the shapes clients send (values added, replaced or
//! removed; `members[value eq "…"]` removed) on an id set whose cost does not grow with the group, and
//! the net difference [`MembershipChange`] reports to the caller.
//!
//! Owns [`MemberSet`] and the membership difference. Must not know how the member ids are sent
//! upstream, nor other attributes: shapes the fast path does not take fall back to the general path.

use std::collections::{HashMap, HashSet};

use scim_v2::filter::{AttrExp, CompValue, CompareOp, ValFilter};
use serde_json::{Map, Value};

use super::MembershipChange;
use super::normalize::{elements, is_unassigned};
use super::operation::Op;
use super::path::{PathTarget, Selector};
use crate::scim::error::{ScimError, excerpt};
use crate::scim::reference::References;
use crate::scim::schema::ResourceKind;

/// Is `groups` on a User written through an explicit path (the one readOnly attribute clients may
/// change, by changing memberships)?
pub(super) fn is_membership(kind: ResourceKind, target: &PathTarget, explicit: bool) -> bool {
    match kind {
        ResourceKind::User => explicit && target.attr.name == "groups" && target.sub.is_none(),
        ResourceKind::Group => target.attr.name == "members",
    }
}

/// Membership operations on a Group's `members` in the shapes clients send (add, replace or remove
/// of values; remove by `members[value eq "…"]`), on the member set in `members` (taken out of `doc`
/// on first use): `Ok(false)` when the operation is another shape, for the general path.
pub(super) fn apply_fast(
    members: &mut Option<MemberSet>,
    doc: &mut Map<String, Value>,
    op: Op,
    filter: Option<&Selector>,
    value: Option<&Value>,
    refs: &References,
) -> Result<bool, ScimError> {
    let ids_of = |v: &Value| member_ids(refs, v);
    let change = match (filter, op) {
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
    let members = members.get_or_insert_with(|| MemberSet::take(doc));
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

/// Whether `apply_fast` takes this operation on a Group's `members` (so a PATCH made only of such operations
/// never needs the members as JSON).
pub(super) fn fast_shape(op: Op, filter: Option<&Selector>, value: Option<&Value>) -> bool {
    match (filter, op) {
        (None, _) => true,
        (Some(selector), Op::Remove) => value.is_none() && value_eq_ids(&selector.ast).is_some(),
        _ => false,
    }
}

/// The member ids a value names (one member, an array of them, or null for none), each by `value`
/// or `$ref`.
fn member_ids(refs: &References, v: &Value) -> Result<Vec<String>, ScimError> {
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
pub(super) struct MemberSet {
    ids: Vec<Option<String>>,
    at: HashMap<String, usize>,
    /// `members` as it was taken out, put back as it was when nothing changed.
    original: Option<Value>,
    changed: bool,
}

impl MemberSet {
    /// A set of `ids` (already taken out of their document, which keeps no `members`).
    pub(super) fn of(ids: impl IntoIterator<Item = String>) -> MemberSet {
        let mut set = MemberSet {
            ids: Vec::new(),
            at: HashMap::new(),
            original: None,
            changed: false,
        };
        for id in ids {
            set.add(id);
        }
        set.changed = false;
        set
    }

    /// Whether any operation added or removed a member (even one that a later operation put back).
    pub(super) fn is_changed(&self) -> bool {
        self.changed
    }

    /// The ids held, in order.
    pub(super) fn ids(&self) -> impl Iterator<Item = &str> {
        self.ids.iter().flatten().map(String::as_str)
    }

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

    pub(super) fn put(self, doc: &mut Map<String, Value>) {
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

/// Ids in `members` (Group) or `groups` (User), before versus after.
pub(super) fn membership_change(
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
