//! `?filter=` and `SearchRequest.filter`: parse with `scim_v2`'s RFC 7644 §3.4.2.2 grammar, type-check
//! against our schemas, evaluate over SCIM JSON resources, and find index-friendly conjuncts.
//!
//! Owns the two tolerated non-RFC spellings (rewritten as text before parsing, never by a second
//! parser): Entra's `emails[type eq "work"].value eq "x"` becomes `emails[(type eq "work") and
//! value eq "x"]`, and, only when the strict parse fails, a bare value as in `externalId eq jyoung`
//! is quoted. Knows nothing of JumpCloud or of how resources are stored.
//!
//! Decisions where the RFC leaves room:
//! - An attribute our schemas do not define (or a sub-attribute / URN we do not know) is treated as
//!   an attribute with no value, as RFC 7644 §3.4.2.1 prescribes for attributes outside a resource
//!   type: `eq`, `co`, `gt`, `pr`, … are false and `ne` is true. Clients such as SailPoint pass
//!   admin-typed filters through, and an empty answer is safer for them than a failing one.
//! - `ne` is the negation of `eq`: it matches when no value equals the operand, including when the
//!   attribute is unassigned.
//! - `attr eq null` matches an unassigned attribute (RFC 7643 §2.5: null and unassigned are the
//!   same state) and `attr ne null` is `attr pr`; other operators with `null` are `invalidFilter`.
//! - `gt`/`ge`/`lt`/`le` on a boolean, binary or complex attribute, `co`/`sw`/`ew` on a boolean or
//!   number, and any comparison on a complex attribute without a `value` sub-attribute are
//!   `invalidFilter` (RFC 7644 Table 3). A comparison against a complex attribute that has a
//!   `value` sub-attribute (`emails co "@x"`, `manager eq "id"`) compares that sub-attribute.
//! - dateTime attributes compare as instants; an operand without an offset is read as UTC.

mod eval;
mod index;
mod shape;

use std::borrow::Cow;

use scim_v2::filter::{Filter, ParseError};

pub use eval::CompiledFilter;
pub use eval::folded::fold as fold_case;
pub(crate) use eval::{ElementFilter, parse_instant};
pub use index::{IndexHint, index_hint};

use crate::scim::error::ScimError;
use crate::scim::schema::ResourceKind;

/// Longest filter accepted, in bytes. `scim_v2` bounds depth and term count; this bounds the text.
pub const MAX_FILTER_LEN: usize = 16 * 1024;

/// Parse a filter (syntax only; see [`CompiledFilter::new`] for the checks against the schema).
///
/// Applies the Entra value-path rewrite first; if the result does not parse, retries once with
/// bare values quoted. A syntax error becomes 400 `invalidFilter` whose detail names the offset
/// and the offending token.
///
/// A filter of a shape parsed before (the same text but for its string values) is not parsed again
/// ([`shape`]).
pub fn parse_filter(raw: &str) -> Result<Filter, ScimError> {
    if raw.len() > MAX_FILTER_LEN {
        return parse_filter_text(raw);
    }
    shape::parse(raw, parse_filter_text)
}

/// [`parse_filter`] without the cache of shapes.
pub fn parse_filter_text(raw: &str) -> Result<Filter, ScimError> {
    if raw.len() > MAX_FILTER_LEN {
        return Err(ScimError::invalid_filter(format!(
            "filter is {} bytes long; at most {MAX_FILTER_LEN} are accepted",
            raw.len()
        )));
    }
    let trimmed = raw.trim();
    if trimmed.is_empty() {
        return Err(ScimError::invalid_filter("filter is empty"));
    }
    let rewritten = rewrite_value_path_sub_attr(trimmed);
    let error = match rewritten.parse::<Filter>() {
        Ok(filter) => return Ok(filter),
        Err(error) => error,
    };
    if let Some(quoted) = quote_bare_values(&rewritten)
        && let Ok(filter) = quoted.parse::<Filter>()
    {
        return Ok(filter);
    }
    // Report positions in the client's own text when the rewrite changed it.
    let error = match rewritten {
        Cow::Owned(_) => trimmed.parse::<Filter>().err().unwrap_or(error),
        Cow::Borrowed(_) => error,
    };
    let offset = raw.len() - raw.trim_start().len();
    Err(ScimError::invalid_filter(format!(
        "invalid filter {}: {}",
        excerpt(trimmed),
        describe_parse_error(&error, offset, trimmed.len())
    )))
}

/// Parse and compile for one resource kind: the form handlers want.
pub fn parse_and_compile(raw: &str, kind: ResourceKind) -> Result<CompiledFilter, ScimError> {
    CompiledFilter::new(&parse_filter(raw)?, kind)
}

/// Does `resource` (a `kind` resource in SCIM JSON) match `filter`?
///
/// Convenience for one-off checks: it compiles the filter on every call, and a filter that does not
/// type-check matches nothing. To test many resources, compile once with [`CompiledFilter::new`].
pub fn matches(filter: &Filter, resource: &serde_json::Value, kind: ResourceKind) -> bool {
    CompiledFilter::new(filter, kind).is_ok_and(|f| f.matches(resource))
}

/// Entra's non-RFC filter form: a sub-attribute and comparison after a value path,
/// `emails[type eq "work"].value eq "x"`, becomes `emails[(type eq "work") and value eq "x"]`.
///
/// Works on the text, outside quoted strings only; anything else is returned unchanged (borrowed).
pub fn rewrite_value_path_sub_attr(raw: &str) -> Cow<'_, str> {
    let bytes = raw.as_bytes();
    let mut out = String::new();
    let mut copied = 0;
    let mut open = None;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'"' => {
                i = skip_string(bytes, i);
                continue;
            }
            b'[' => open = Some(i),
            b']' => {
                if let Some(start) = open.take()
                    && let Some((clause, end)) = trailing_comparison(raw, i + 1)
                {
                    out.push_str(&raw[copied..=start]);
                    out.push('(');
                    out.push_str(&raw[start + 1..i]);
                    out.push_str(") and ");
                    out.push_str(clause);
                    out.push(']');
                    copied = end;
                    i = end;
                    continue;
                }
            }
            _ => {}
        }
        i += 1;
    }
    if copied == 0 {
        Cow::Borrowed(raw)
    } else {
        out.push_str(&raw[copied..]);
        Cow::Owned(out)
    }
}

/// Index just past the string literal starting at `start` (a `"`), honouring `\` escapes.
fn skip_string(bytes: &[u8], start: usize) -> usize {
    let mut i = start + 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'"' => return i + 1,
            _ => i += 1,
        }
    }
    bytes.len()
}

/// At `pos` (just after a `]`): `.subAttr SP op [SP value]`. Returns the clause without the dot and
/// the index where it ends.
fn trailing_comparison(raw: &str, pos: usize) -> Option<(&str, usize)> {
    let bytes = raw.as_bytes();
    if bytes.get(pos) != Some(&b'.') {
        return None;
    }
    let name_start = pos + 1;
    let name_end = scan(bytes, name_start, |b| {
        b.is_ascii_alphanumeric() || b == b'_' || b == b'-'
    });
    if name_end == name_start || !bytes[name_start].is_ascii_alphabetic() {
        return None;
    }
    let op_start = scan(bytes, name_end, |b| b.is_ascii_whitespace());
    if op_start == name_end {
        return None;
    }
    let op_end = scan(bytes, op_start, |b| b.is_ascii_alphabetic());
    let op = &raw[op_start..op_end];
    if op.eq_ignore_ascii_case("pr") {
        return Some((&raw[name_start..op_end], op_end));
    }
    if !is_compare_op(op) {
        return None;
    }
    let value_start = scan(bytes, op_end, |b| b.is_ascii_whitespace());
    if value_start == op_end || value_start == bytes.len() {
        return None;
    }
    let value_end = if bytes[value_start] == b'"' {
        skip_string(bytes, value_start)
    } else {
        scan(bytes, value_start, |b| {
            !(b.is_ascii_whitespace() || b == b')' || b == b']')
        })
    };
    Some((&raw[name_start..value_end], value_end))
}

fn scan(bytes: &[u8], from: usize, keep: impl Fn(u8) -> bool) -> usize {
    let mut i = from;
    while i < bytes.len() && keep(bytes[i]) {
        i += 1;
    }
    i
}

fn is_compare_op(word: &str) -> bool {
    ["eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le"]
        .iter()
        .any(|op| op.eq_ignore_ascii_case(word))
}

/// Quote bare comparison values (`externalId eq jyoung` → `externalId eq "jyoung"`), leaving JSON
/// literals (`true`, `false`, `null`, numbers) and strings alone. `None` when nothing changed.
fn quote_bare_values(raw: &str) -> Option<String> {
    let bytes = raw.as_bytes();
    let mut out = String::new();
    let mut copied = 0;
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'"' {
            i = skip_string(bytes, i);
            continue;
        }
        let word_end = scan(bytes, i, |b| b.is_ascii_alphabetic());
        let at_word_start = i == 0 || bytes[i - 1].is_ascii_whitespace();
        if word_end > i && at_word_start && is_compare_op(&raw[i..word_end]) {
            let value_start = scan(bytes, word_end, |b| b.is_ascii_whitespace());
            if value_start > word_end && value_start < bytes.len() && bytes[value_start] != b'"' {
                let value_end = scan(bytes, value_start, |b| {
                    !(b.is_ascii_whitespace() || b == b')' || b == b']')
                });
                let value = &raw[value_start..value_end];
                let literal = ["true", "false", "null"].contains(&value)
                    || serde_json::from_str::<serde_json::Number>(value).is_ok();
                if !literal && !value.is_empty() {
                    out.push_str(&raw[copied..value_start]);
                    out.push_str(&serde_json::Value::from(value).to_string());
                    copied = value_end;
                }
                i = value_end;
                continue;
            }
        }
        i = word_end.max(i + 1);
    }
    (copied > 0).then(|| {
        out.push_str(&raw[copied..]);
        out
    })
}

/// The filter text for an error detail, shortened when long.
fn excerpt(filter: &str) -> String {
    const MAX: usize = 200;
    if filter.len() <= MAX {
        return format!("{filter:?}");
    }
    let mut end = MAX;
    while !filter.is_char_boundary(end) {
        end -= 1;
    }
    format!("{:?}…", &filter[..end])
}

/// A client-facing account of a parse error: what was found, where, and what would have fit.
fn describe_parse_error(error: &ParseError, offset: usize, input_len: usize) -> String {
    use scim_v2::filter::ParseError as E;
    match error {
        E::InvalidToken { location } => {
            format!("unexpected character at offset {}", location + offset)
        }
        E::UnrecognizedEof { location, expected } => format!(
            "the filter ends early at offset {}; expected {}",
            location + offset,
            expected_list(expected)
        ),
        E::UnrecognizedToken {
            token: (start, token, end),
            expected,
        } => {
            let keyword = expected
                .iter()
                .any(|e| e.trim_matches('"').eq_ignore_ascii_case(token));
            if is_compare_op(token) && *end == input_len {
                format!("the comparison at offset {} has no value", start + offset)
            } else if keyword && *end == input_len {
                format!(
                    "the filter ends early after '{token}' at offset {}",
                    start + offset
                )
            } else if expected.iter().any(|e| e == "\"eq\"")
                && !is_compare_op(token)
                && token.chars().all(|c| c.is_alphabetic())
            {
                format!(
                    "the operator '{token}' at offset {} is not supported; expected {}",
                    start + offset,
                    expected_list(expected)
                )
            } else {
                format!(
                    "unexpected '{token}' at offset {}; expected {}",
                    start + offset,
                    expected_list(expected)
                )
            }
        }
        E::ExtraToken {
            token: (start, token, _),
        } => {
            format!("unexpected '{token}' at offset {}", start + offset)
        }
        E::User { error } => error.to_string(),
    }
}

fn expected_list(expected: &[String]) -> String {
    let names: Vec<&str> = expected
        .iter()
        .map(|e| match e.as_str() {
            "StringLit" => "a quoted string",
            "NumberLit" => "a number",
            other => other.trim_matches('"'),
        })
        .collect();
    match names.as_slice() {
        [] => "nothing more".to_owned(),
        [one] => one.to_string(),
        [rest @ .., last] => format!("one of {} or {last}", rest.join(", ")),
    }
}

#[cfg(test)]
mod tests;
