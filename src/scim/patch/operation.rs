//! Reading one operation of a PatchOp body: `op` in any case, the `op`/`path`/`value` keys in any
//! case, a blank or null `path` as none, and the checks that need only the operation itself
//! (`remove` needs a path, `add`/`replace` a value, a path-less value must be an object).
//!
//! Owns [`Operation`] and [`Op`]. Resolving the path is [`super::path`]'s; what the operation does to
//! a resource is [`super::apply`]'s. Must not look at the resource.

use serde_json::{Map, Value};

use super::PatchOptions;
use super::limits::check_value_count;
use super::path::{Target, parse_target};
use crate::scim::error::{ScimError, excerpt};
use crate::scim::schema::ResourceKind;

/// One operation, read and checked, ready to apply.
#[derive(Debug, Clone)]
pub(super) struct Operation {
    pub(super) op: Op,
    pub(super) target: Target,
    pub(super) value: Option<Value>,
}

/// What an operation does (RFC 7644 §3.5.2.1–3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Op {
    Add,
    Remove,
    Replace,
}

/// A member of `obj` whose key matches `key` without regard to case (exact spelling first).
pub(super) fn get_ci<'v>(obj: &'v Map<String, Value>, key: &str) -> Option<&'v Value> {
    obj.get(key).or_else(|| {
        obj.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v)
    })
}

pub(super) fn parse_operation(
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
    check_value_count(value.as_ref(), options)?;
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
