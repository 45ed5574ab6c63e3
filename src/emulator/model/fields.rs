//! Readers of request-body members: each takes one JSON value, checks its type and length, and answers the
//! typed field or the API's `Invalid value for …` error.
//!
//! Knows the shape of one member at a time, never the object it lands in nor the rest of the body.

use serde_json::{Map, Value};

use super::ids::IdGen;
use super::users::{Address, Attribute, Mfa, PhoneNumber, RecoveryEmail};
use crate::emulator::error::ApiError;

/// Longest string field accepted (spec `maxLength` 1024).
pub(super) const MAX_TEXT: usize = 1024;
/// Longest `employeeIdentifier` (spec `maxLength` 256).
pub(super) const MAX_EMPLOYEE_ID: usize = 256;

pub(super) fn bad_field(field: &str, description: impl Into<String>) -> ApiError {
    let description = description.into();
    ApiError::invalid_field(
        format!("Invalid value for {field}: {description}"),
        field,
        description,
    )
}

pub(super) fn text(field: &str, v: &Value) -> Result<String, ApiError> {
    match v {
        Value::Null => Ok(String::new()),
        Value::String(s) if s.chars().count() > MAX_TEXT => Err(bad_field(
            field,
            format!("longer than {MAX_TEXT} characters"),
        )),
        Value::String(s) => Ok(s.clone()),
        _ => Err(bad_field(field, "must be a string")),
    }
}

pub(super) fn opt_text(field: &str, v: &Value, max: usize) -> Result<Option<String>, ApiError> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) if s.is_empty() => Ok(None),
        Value::String(s) if s.chars().count() > max => {
            Err(bad_field(field, format!("longer than {max} characters")))
        }
        Value::String(s) => Ok(Some(s.clone())),
        _ => Err(bad_field(field, "must be a string or null")),
    }
}

pub(super) fn flag(field: &str, v: &Value) -> Result<bool, ApiError> {
    match v {
        Value::Null => Ok(false),
        Value::Bool(b) => Ok(*b),
        _ => Err(bad_field(field, "must be a boolean")),
    }
}

pub(super) fn positive(field: &str, v: &Value) -> Result<Option<u32>, ApiError> {
    match v {
        Value::Null => Ok(None),
        Value::Number(n) => match n.as_u64() {
            Some(n) if n >= 1 && n <= u64::from(u32::MAX) => Ok(Some(n as u32)),
            _ => Err(bad_field(field, "must be a positive integer")),
        },
        _ => Err(bad_field(field, "must be a positive integer")),
    }
}

fn array<'a>(field: &str, v: &'a Value) -> Result<&'a [Value], ApiError> {
    match v {
        Value::Null => Ok(&[]),
        Value::Array(items) => Ok(items),
        _ => Err(bad_field(field, "must be an array")),
    }
}

pub(super) fn objects(field: &str, v: &Value) -> Result<Vec<Value>, ApiError> {
    array(field, v)?
        .iter()
        .map(|i| match i {
            Value::Object(_) => Ok(i.clone()),
            _ => Err(bad_field(field, "items must be objects")),
        })
        .collect()
}

pub(super) fn strings(field: &str, v: &Value) -> Result<Vec<String>, ApiError> {
    array(field, v)?
        .iter()
        .map(|i| match i {
            Value::String(s) => Ok(s.clone()),
            _ => Err(bad_field(field, "items must be strings")),
        })
        .collect()
}

fn member(field: &str, m: &Map<String, Value>, key: &str) -> Result<String, ApiError> {
    text(
        &format!("{field}.{key}"),
        m.get(key).unwrap_or(&Value::Null),
    )
}

/// Keeps an item's `id` when the client sent one back (round trip), else assigns a fresh one.
fn item_id(m: &Map<String, Value>, ids: &mut IdGen, secs: i64) -> String {
    match m.get("id") {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        _ => ids.next(secs),
    }
}

pub(super) fn phones(
    field: &str,
    v: &Value,
    ids: &mut IdGen,
    secs: i64,
) -> Result<Vec<PhoneNumber>, ApiError> {
    array(field, v)?
        .iter()
        .map(|i| {
            let Value::Object(m) = i else {
                return Err(bad_field(field, "items must be objects"));
            };
            Ok(PhoneNumber {
                id: item_id(m, ids, secs),
                kind: member(field, m, "type")?,
                number: member(field, m, "number")?,
            })
        })
        .collect()
}

pub(super) fn addresses(
    field: &str,
    v: &Value,
    ids: &mut IdGen,
    secs: i64,
) -> Result<Vec<Address>, ApiError> {
    array(field, v)?
        .iter()
        .map(|i| {
            let Value::Object(m) = i else {
                return Err(bad_field(field, "items must be objects"));
            };
            Ok(Address {
                id: item_id(m, ids, secs),
                kind: member(field, m, "type")?,
                po_box: member(field, m, "poBox")?,
                extended_address: member(field, m, "extendedAddress")?,
                street_address: member(field, m, "streetAddress")?,
                locality: member(field, m, "locality")?,
                region: member(field, m, "region")?,
                postal_code: member(field, m, "postalCode")?,
                country: member(field, m, "country")?,
            })
        })
        .collect()
}

pub(super) fn attributes(field: &str, v: &Value) -> Result<Vec<Attribute>, ApiError> {
    array(field, v)?
        .iter()
        .map(|i| {
            let Value::Object(m) = i else {
                return Err(bad_field(field, "items must be objects"));
            };
            let name = match m.get("name") {
                Some(Value::String(s)) if !s.is_empty() => s.clone(),
                _ => return Err(bad_field(field, "each attribute needs a string name")),
            };
            let value = m.get("value").cloned().unwrap_or(Value::Null);
            if matches!(&value, Value::String(s) if s.chars().count() > MAX_TEXT) {
                return Err(bad_field(
                    field,
                    format!("value longer than {MAX_TEXT} characters"),
                ));
            }
            Ok(Attribute { name, value })
        })
        .collect()
}

/// `ssh_keys`: objects kept as sent, each given an `_id` and a `create_date` when it has none.
pub(super) fn ssh_keys(
    field: &str,
    v: &Value,
    ids: &mut IdGen,
    secs: i64,
    now: &str,
) -> Result<Vec<Value>, ApiError> {
    let mut keys = objects(field, v)?;
    for key in &mut keys {
        if let Value::Object(m) = key {
            if !m.get("_id").is_some_and(Value::is_string) {
                m.insert("_id".into(), Value::String(ids.next(secs)));
            }
            m.entry("create_date")
                .or_insert_with(|| Value::String(now.to_owned()));
        }
    }
    Ok(keys)
}

/// `mfa`: the settings object, or its defaults for `null`.
pub(super) fn mfa(field: &str, v: &Value) -> Result<Mfa, ApiError> {
    match v {
        Value::Null => Ok(Mfa::default()),
        v => serde_json::from_value(v.clone())
            .map_err(|e| bad_field(field, format!("invalid mfa object: {e}"))),
    }
}

/// `recoveryEmail`: an object whose `address` sets an unverified recovery email; no address clears it.
pub(super) fn recovery_email(field: &str, v: &Value) -> Result<Option<RecoveryEmail>, ApiError> {
    match v {
        Value::Null => Ok(None),
        Value::Object(m) => match m.get("address") {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(a)) if a.is_empty() => Ok(None),
            Some(Value::String(a)) => Ok(Some(RecoveryEmail {
                address: a.clone(),
                verified: false,
                verified_at: None,
            })),
            Some(_) => Err(bad_field(field, "address must be a string")),
        },
        _ => Err(bad_field(field, "must be an object")),
    }
}

/// A free-form object kept as sent, or `None` for `null`.
pub(super) fn object_or_null(field: &str, v: &Value) -> Result<Option<Value>, ApiError> {
    match v {
        Value::Null => Ok(None),
        Value::Object(_) => Ok(Some(v.clone())),
        _ => Err(bad_field(field, "must be an object or null")),
    }
}
