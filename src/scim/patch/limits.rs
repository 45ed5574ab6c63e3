//! The bounds a PATCH is held to ([`PatchOptions`]'s `max_*`, set from `limits.*` in the
//! configuration) and the `Operations[i]` prefix that says where in the body an error arose.
//!
//! Owns the limit checks and their messages. Must not know what an operation does or how values are
//! normalised: it counts what it is given.

use serde_json::Value;

use super::PatchOptions;
use crate::scim::error::ScimError;

/// At most `options.max_operations` operations in one body.
pub(super) fn check_operation_count(count: usize, options: &PatchOptions) -> Result<(), ScimError> {
    if count > options.max_operations {
        return Err(ScimError::invalid_value(format!(
            "this PATCH carries {} operations; this service applies at most {} in one request \
             (limits.patch_operations): send them in several requests",
            count, options.max_operations
        )));
    }
    Ok(())
}

/// At most `options.max_values` values in one operation's value.
pub(super) fn check_value_count(
    value: Option<&Value>,
    options: &PatchOptions,
) -> Result<(), ScimError> {
    let values = value_count(value);
    if values > options.max_values {
        return Err(ScimError::invalid_value(format!(
            "the operation carries {values} values; this service takes at most {} in one operation \
             (limits.patch_values): split it",
            options.max_values
        )));
    }
    Ok(())
}

/// At most `options.max_multi` values in a multi-valued attribute other than a membership one.
pub(super) fn check_multi_values(
    name: &str,
    after: Option<&Value>,
    membership: bool,
    options: &PatchOptions,
) -> Result<(), ScimError> {
    if let Some(Value::Array(items)) = after
        && !membership
        && items.len() > options.max_multi
    {
        return Err(ScimError::invalid_value(format!(
            "{} would hold {} values; this service keeps at most {} (limits.multi_values)",
            name,
            items.len(),
            options.max_multi
        )));
    }
    Ok(())
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

/// `e` with its detail prefixed by the operation it arose in.
pub(super) fn at_operation(mut e: ScimError, index: usize) -> ScimError {
    e.detail = format!("Operations[{index}]: {}", e.detail);
    e
}
