//! What `add`, `replace` and `remove` make of one attribute's value (RFC 7644 §3.5.2.1–3): the
//! attribute as a whole (multi-valued values merged without duplicates, complex values merged
//! sub-attribute by sub-attribute) or one sub-attribute of every element. `primary: true` newly set on
//! one element clears it on the others.
//!
//! Owns [`Ctx`], the attribute being written. Elements selected by a value filter are
//! [`super::value_filter`]'s. Must not know the resource or where the attribute lives in it: it maps
//! the old value to the new one, and the caller checks and stores the result.

use serde_json::{Map, Value};

use super::normalize::{elements, is_unassigned, normalize_value, without_nulls};
use super::operation::Op;
use crate::scim::error::ScimError;
use crate::scim::schema::{AttrDef, Mutability};

/// The attribute being written and how to read values for it.
pub(super) struct Ctx<'a> {
    pub(super) attr: &'static AttrDef,
    /// Membership attribute: `value` (otherwise server-assigned in `groups`) is kept.
    pub(super) membership: bool,
    pub(super) text: &'a str,
}

impl Ctx<'_> {
    /// `op` on the attribute as a whole; returns its new top-level value.
    pub(super) fn whole(
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
    pub(super) fn sub_everywhere(
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
pub(super) fn fix_primary(before: Option<&Value>, after: &mut Value) {
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
