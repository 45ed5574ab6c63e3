//! A value as a client sent it, put in the schema's shape: `"True"`/`"False"` as booleans for
//! boolean attributes, numbers (and booleans) as strings for string attributes, numeric strings as
//! numbers, a bare id or a one-element array for a single-valued complex attribute with `value`
//! (Entra's `manager`), sub-attribute names in their canonical spelling, server-assigned
//! sub-attributes dropped. Also the RFC 7643 §2.5 notion of "unassigned" the other files share.
//!
//! Owns nothing but these functions. Must not know operations, paths or the resource: it sees one
//! value and the definition of the attribute it is for.

use serde_json::{Map, Value};

use crate::scim::error::ScimError;
use crate::scim::schema::{AttrDef, AttrType, Mutability};

/// A value for one attribute (or one element of a multi-valued one), in the schema's shape:
/// booleans from "True"/"False", strings from numbers, complex values with canonical sub-attribute
/// names and without server-assigned sub-attributes. `membership` keeps `value` in `groups`.
pub(super) fn normalize_value(
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

/// `value` without null members (a stored element carries no nulls).
pub(super) fn without_nulls(mut value: Value) -> Value {
    if let Value::Object(o) = &mut value {
        o.retain(|_, v| !v.is_null());
    }
    value
}

/// The elements of a multi-valued value (or the single value of a single-valued complex one).
pub(super) fn elements(v: &Value) -> Vec<&Value> {
    match v {
        Value::Array(items) => items.iter().collect(),
        Value::Null => Vec::new(),
        other => vec![other],
    }
}

/// RFC 7643 §2.5: null, an empty array and (for complex values) an empty object are unassigned.
pub(super) fn is_unassigned(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Array(items) => items.is_empty(),
        Value::Object(o) => o.values().all(is_unassigned),
        _ => false,
    }
}
