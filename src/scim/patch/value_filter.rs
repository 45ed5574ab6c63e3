//! `add`, `replace` and `remove` on the elements a value filter selects (`emails[type eq "work"]`,
//! optionally `.value`). When nothing matches, `remove` changes nothing and `add`/`replace` create the
//! element a filter of `eq` tests naming `type` describes (Entra's `emails[type eq "work"].value`);
//! any other filter is 400 `noTarget` (§3.5.2.3).
//!
//! Owns the element-level rules and the seed element. Matching is the compiled
//! [`ElementFilter`](crate::scim::filter::ElementFilter)'s; the filter grammar is `scim_v2`'s. Must
//! not know the resource: like [`super::values`], it maps the old value to the new one.

use scim_v2::filter::{AttrExp, CompValue, CompareOp, ValFilter};
use serde_json::{Map, Value};

use super::normalize::{elements, is_unassigned, normalize_value, without_nulls};
use super::operation::Op;
use super::path::Selector;
use super::values::{Ctx, fix_primary};
use crate::scim::error::ScimError;
use crate::scim::schema::AttrDef;

impl Ctx<'_> {
    /// `op` on the elements a value filter selects (`emails[type eq "work"]`, optionally `.value`).
    pub(super) fn filtered(
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
            match self.seed(selector, sub, value)? {
                Some(seed) => items.push(Value::Object(seed)),
                None => return Ok(before.cloned()),
            }
        } else {
            self.edit_matched(op, sub, value, &mut items, &matched)?;
            items.retain(|i| !is_unassigned(i));
        }
        if !self.attr.multi_valued {
            return Ok(items.into_iter().next());
        }
        let mut after = Value::Array(items);
        fix_primary(before, &mut after);
        Ok(Some(after))
    }

    /// The element `add`/`replace` creates when the filter matches none: the filter's `eq` terms with
    /// `value` written in. `Ok(None)` when a sub-attribute's value is unassigned (nothing to create);
    /// `noTarget` when the filter does not describe an element.
    fn seed(
        &self,
        selector: &Selector,
        sub: Option<&'static AttrDef>,
        value: &Value,
    ) -> Result<Option<Map<String, Value>>, ScimError> {
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
                    return Ok(None);
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
        Ok(Some(seed))
    }

    /// `op` on each matched element of `items` (indices ascending), last first so that removing one
    /// leaves the indices before it valid.
    fn edit_matched(
        &self,
        op: Op,
        sub: Option<&'static AttrDef>,
        value: &Value,
        items: &mut Vec<Value>,
        matched: &[usize],
    ) -> Result<(), ScimError> {
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
                        set_sub(obj, op, sub, new.as_ref());
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
                        merge_fields(obj, fields);
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }
}

/// `op` on one sub-attribute of a matched element: an assigned value is written; an unassigned one
/// removes the sub-attribute, except under `add`, where it changes nothing.
fn set_sub(element: &mut Map<String, Value>, op: Op, sub: &AttrDef, new: Option<&Value>) {
    match new {
        Some(v) if !is_unassigned(v) => {
            element.insert(sub.name.clone(), v.clone());
        }
        _ if op == Op::Add => {}
        _ => {
            element.remove(&sub.name);
        }
    }
}

/// `add` of an object to a matched element: its sub-attributes written in, a null one removed.
fn merge_fields(element: &mut Map<String, Value>, fields: &Map<String, Value>) {
    for (k, v) in fields {
        if v.is_null() {
            element.remove(k);
        } else {
            element.insert(k.clone(), v.clone());
        }
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
