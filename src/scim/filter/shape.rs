//! Filter shapes: a filter's text with each string literal replaced by a numbered placeholder. Clients
//! send a few shapes with ever new values (`userName eq "…"`, `externalId eq "…"`, `id eq "…" or id eq
//! "…"`), so a shape is parsed by `scim_v2` once and each request puts its own values into a copy of
//! the tree: the grammar's cost (its lexer builds a matcher for every parse) is paid per shape, not per
//! request.
//!
//! The text is only cut at string literals, the grammar's one token whose content does not change the
//! tree's shape: a `"`, then characters with `\` escaping the next, to the closing `"`, decoded as
//! `scim_v2` decodes it (`serde_json`). A text whose literals do not all decode, or whose tree does not
//! hold each placeholder exactly once, is parsed in full; and a shape enters the cache only when its tree
//! with the values put in equals the full parse of the text it came from. Errors are always the full
//! parse's, with positions in the client's own text.

use std::ops::Range;
use std::sync::{Arc, LazyLock};

use scim_v2::filter::{AttrExp, CompValue, Filter, Operands, ValFilter};

use crate::scim::error::ScimError;

/// Shapes kept (least recently used go first).
pub const SHAPES: u64 = 1024;

/// Longest shape kept, in bytes: the cache holds at most [`SHAPES`] of them.
pub const MAX_SHAPE_LEN: usize = 1024;

static CACHE: LazyLock<moka::sync::Cache<Box<str>, Arc<Filter>>> =
    LazyLock::new(|| moka::sync::Cache::builder().max_capacity(SHAPES).build());

/// Placeholder `k` as the shape's text writes it, `"\u0000k"`; its tree holds it decoded, `\0k`.
fn push_placeholder(shape: &mut String, k: usize) {
    shape.push_str("\"\\u0000");
    shape.push_str(itoa::Buffer::new().format(k));
    shape.push('"');
}

/// A string literal's value (quotes included in `literal`), decoded as `serde_json` decodes it; one
/// without escapes or control characters is its own text.
fn literal_value(literal: &str) -> Option<String> {
    let inner = literal.strip_prefix('"')?.strip_suffix('"')?;
    if inner.bytes().all(|b| b != b'\\' && b != b'"' && b >= 0x20) {
        return Some(inner.to_owned());
    }
    serde_json::from_str(literal).ok()
}

/// Parse `raw` (already bounded in length) as `full` would, through the cache of shapes.
pub fn parse(
    raw: &str,
    full: impl Fn(&str) -> Result<Filter, ScimError>,
) -> Result<Filter, ScimError> {
    let Some((shape, values)) = cut(raw) else {
        return full(raw);
    };
    if shape.len() > MAX_SHAPE_LEN {
        return full(raw);
    }
    if let Some(tree) = CACHE.get(shape.as_str())
        && let Some(filter) = fill(&tree, &values)
    {
        return Ok(filter);
    }
    let parsed = full(raw)?;
    if let Ok(tree) = full(&shape)
        && fill(&tree, &values).as_ref() == Some(&parsed)
    {
        CACHE.insert(shape.into_boxed_str(), Arc::new(tree));
    }
    Ok(parsed)
}

/// The shape of `raw` and its literals' values, in order; `None` when a literal does not decode (or
/// is not closed).
fn cut(raw: &str) -> Option<(String, Vec<String>)> {
    let mut shape = String::with_capacity(raw.len());
    let mut values = Vec::new();
    let mut copied = 0;
    for r in literals(raw) {
        let value = literal_value(raw.get(r.clone())?)?;
        shape.push_str(&raw[copied..r.start]);
        push_placeholder(&mut shape, values.len());
        values.push(value);
        copied = r.end;
    }
    shape.push_str(&raw[copied..]);
    Some((shape, values))
}

/// Byte ranges of the string literals in `raw`, quotes included (an unclosed one runs to the end).
fn literals(raw: &str) -> Vec<Range<usize>> {
    let bytes = raw.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'"' {
            i += 1;
            continue;
        }
        let start = i;
        i += 1;
        while i < bytes.len() && bytes[i] != b'"' {
            i += if bytes[i] == b'\\' { 2 } else { 1 };
        }
        i = (i + 1).min(bytes.len());
        out.push(start..i.max(start + 1));
    }
    out
}

/// `tree` with placeholder `k` replaced by `values[k]`; `None` unless each placeholder is held exactly
/// once and no other string looks like one.
fn fill(tree: &Filter, values: &[String]) -> Option<Filter> {
    let mut used = vec![false; values.len()];
    let filled = fill_filter(tree, values, &mut used)?;
    used.iter().all(|u| *u).then_some(filled)
}

fn fill_filter(f: &Filter, values: &[String], used: &mut [bool]) -> Option<Filter> {
    Some(match f {
        Filter::Attr(e) => Filter::Attr(fill_exp(e, values, used)?),
        Filter::ValuePath(vp) => {
            let mut vp = vp.clone();
            vp.filter = Box::new(fill_val(&vp.filter, values, used)?);
            Filter::ValuePath(vp)
        }
        Filter::Not(inner) => Filter::Not(Box::new(fill_filter(inner, values, used)?)),
        Filter::And(ops) => Filter::And(fill_ops(ops, |f, u| fill_filter(f, values, u), used)?),
        Filter::Or(ops) => Filter::Or(fill_ops(ops, |f, u| fill_filter(f, values, u), used)?),
    })
}

fn fill_val(f: &ValFilter, values: &[String], used: &mut [bool]) -> Option<ValFilter> {
    Some(match f {
        ValFilter::Attr(e) => ValFilter::Attr(fill_exp(e, values, used)?),
        ValFilter::Not(inner) => ValFilter::Not(Box::new(fill_val(inner, values, used)?)),
        ValFilter::And(ops) => ValFilter::And(fill_ops(ops, |f, u| fill_val(f, values, u), used)?),
        ValFilter::Or(ops) => ValFilter::Or(fill_ops(ops, |f, u| fill_val(f, values, u), used)?),
    })
}

fn fill_ops<T>(
    ops: &Operands<T>,
    mut each: impl FnMut(&T, &mut [bool]) -> Option<T>,
    used: &mut [bool],
) -> Option<Operands<T>> {
    let items = ops
        .iter()
        .map(|o| each(o, used))
        .collect::<Option<Vec<T>>>()?;
    Operands::new(items).ok()
}

fn fill_exp(e: &AttrExp, values: &[String], used: &mut [bool]) -> Option<AttrExp> {
    Some(match e {
        AttrExp::Comparison(path, op, CompValue::Str(s)) if s.starts_with('\u{0}') => {
            let k: usize = s[1..].parse().ok()?;
            let slot = used.get_mut(k)?;
            if std::mem::replace(slot, true) {
                return None;
            }
            AttrExp::Comparison(
                path.clone(),
                op.clone(),
                CompValue::Str(values.get(k)?.clone()),
            )
        }
        other => other.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scim::filter::parse_filter_text;

    fn both(raw: &str) -> (Result<Filter, ScimError>, Result<Filter, ScimError>) {
        (parse(raw, parse_filter_text), parse_filter_text(raw))
    }

    #[test]
    fn a_shape_seen_before_gives_the_tree_a_full_parse_gives() {
        let texts = [
            r#"userName eq "shape-a-alice""#,
            r#"userName eq "shape-a-bob""#,
            r#"userName eq "shape-a-\"quoted\" \u00e9""#,
            r#"emails[type eq "work" and value co "@shape-a"] or externalId eq "x""#,
            r#"emails[type eq "home" and value co "@other"] or externalId eq "y""#,
            r#"emails[type eq "work"].value eq "entra@shape-a""#,
            r#"externalId eq shape-a-bare"#,
            r#"meta.lastModified gt "2026-01-01T00:00:00Z" and active eq true"#,
            r#"not (userName sw "a") and title pr"#,
        ];
        for _ in 0..2 {
            for t in texts {
                let (cached, fresh) = both(t);
                assert_eq!(cached.expect(t), fresh.expect(t), "{t}");
            }
        }
        let (shape, _) = cut(texts[1]).unwrap();
        assert!(CACHE.get(shape.as_str()).is_some(), "the shape was kept");
    }

    #[test]
    fn errors_are_the_full_parses_and_nothing_odd_is_kept() {
        for t in [
            r#"userName eq "unclosed"#,
            r#"userName eq "bad \x escape""#,
            r#"userName eq "a" "b""#,
            r#"userName zz "shape-b""#,
            "userName eq \"raw\u{1}control\"",
        ] {
            let (cached, fresh) = both(t);
            assert_eq!(
                cached.expect_err(t).to_string(),
                fresh.expect_err(t).to_string(),
                "{t}"
            );
        }
        // A value that is itself a placeholder's spelling is a value like any other.
        let t = r#"userName eq "\u00000" or userName eq "x""#;
        for _ in 0..2 {
            let (cached, fresh) = both(t);
            assert_eq!(cached.unwrap(), fresh.unwrap());
        }
    }

    #[test]
    fn a_literal_decodes_as_serde_json_decodes_it() {
        for literal in [
            r#""plain@example.com""#,
            r#""""#,
            r#""tab\there""#,
            r#""\u00e9 and \"quotes\"""#,
            "\"raw\u{1}control\"",
            r#""unclosed"#,
            r#""\x""#,
        ] {
            assert_eq!(
                literal_value(literal),
                serde_json::from_str::<String>(literal).ok(),
                "{literal}"
            );
        }
    }

    #[test]
    fn literals_are_cut_where_the_grammar_cuts_them() {
        let raw = r#"a eq "x\"y" and b eq "" and c eq "\\""#;
        let got: Vec<&str> = literals(raw).into_iter().map(|r| &raw[r]).collect();
        assert_eq!(got, [r#""x\"y""#, r#""""#, r#""\\""#]);
        let (shape, values) = cut(raw).unwrap();
        assert_eq!(values, ["x\"y", "", "\\"]);
        assert_eq!(
            shape,
            r#"a eq "\u00000" and b eq "\u00001" and c eq "\u00002""#
        );
    }
}
