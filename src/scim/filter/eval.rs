//! Filter evaluation: a parsed [`Filter`] is compiled once per request into a tree whose attribute
//! references (as [`Key`]s), operand case-folding and timestamps are resolved up front, so testing a
//! resource walks a borrowed [`View`] of it (a `serde_json::Value` or a snapshot's
//! [`Tape`](crate::scim::tape::Tape)) and allocates nothing in the common paths.

use std::cmp::Ordering;

use jiff::Timestamp;
use scim_v2::filter::{AttrExp, AttrPath, CompValue, CompareOp, Filter, ValFilter, ValuePath};
use serde_json::Value;

use super::index::{IndexHint, index_hint};
use crate::scim::error::ScimError;
use crate::scim::schema::{AttrDef, AttrType, Location, ResourceKind, SchemaRegistry};
use crate::scim::view::{Key, Shape, View};

/// A filter checked against one resource kind's schemas and ready to test many resources.
#[derive(Debug, Clone)]
pub struct CompiledFilter {
    kind: ResourceKind,
    root: Node,
    hint: Option<IndexHint>,
}

#[derive(Debug, Clone)]
enum Node {
    Const(bool),
    And(Vec<Node>),
    Or(Vec<Node>),
    Not(Box<Node>),
    /// Some value at `Slot` passes `Test`.
    Test(Slot, Test),
    /// Some element of the (multi-valued or complex) attribute at `Slot` matches the inner node,
    /// which is evaluated with the element as its root.
    Any(Slot, Box<Node>),
}

/// Where one attribute path's values sit, relative to the object a node is evaluated on.
#[derive(Debug, Clone, Copy)]
struct Slot {
    ext: Option<Key>,
    key: Key,
    sub: Option<Key>,
}

#[derive(Debug, Clone)]
enum Test {
    Present,
    Str {
        op: StrOp,
        operand: Box<str>,
        case_exact: bool,
    },
    Bool(bool),
    Num {
        op: Ord,
        operand: f64,
    },
    Time {
        op: Ord,
        operand: Timestamp,
    },
}

#[derive(Debug, Clone, Copy)]
enum StrOp {
    Eq,
    Co,
    Sw,
    Ew,
    Ord(Ord),
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Ord {
    Eq,
    Gt,
    Ge,
    Lt,
    Le,
}

/// What a path inside the filter is resolved against.
#[derive(Clone, Copy)]
enum Scope {
    Resource(ResourceKind),
    /// Inside `attr[...]`: names are sub-attributes of this attribute.
    Element(&'static AttrDef),
}

// === impl CompiledFilter ===

impl CompiledFilter {
    /// Check `filter` against `kind`'s schemas and prepare it for evaluation.
    ///
    /// Fails with 400 `invalidFilter` when a comparison does not fit the attribute's type.
    /// Attributes the schemas do not define are treated as unassigned (see the module docs).
    pub fn new(filter: &Filter, kind: ResourceKind) -> Result<CompiledFilter, ScimError> {
        let root = compile(filter, kind)?;
        Ok(CompiledFilter {
            kind,
            root,
            hint: index_hint(filter, kind),
        })
    }

    /// The resource kind this filter was compiled for.
    pub fn kind(&self) -> ResourceKind {
        self.kind
    }

    /// A top-level equality the caller can answer from an index (see [`index_hint`]).
    pub fn index_hint(&self) -> Option<&IndexHint> {
        self.hint.as_ref()
    }

    /// Does `resource` match? A non-object never does.
    pub fn matches(&self, resource: &Value) -> bool {
        self.matches_view(resource)
    }

    /// Does the resource `view` shows match? A non-object never does.
    pub fn matches_view<'a>(&self, view: impl View<'a>) -> bool {
        view.shape() == Shape::Object && eval(&self.root, view)
    }
}

/// A value-path filter (`emails[type eq "work"]`) compiled against the sub-attributes of one complex
/// attribute, tested on single elements; PATCH paths use it.
#[derive(Debug, Clone)]
pub(crate) struct ElementFilter(Node);

// === impl ElementFilter ===

impl ElementFilter {
    /// Compile `filter` for elements of `parent`; type errors are `invalidFilter`.
    pub(crate) fn new(
        filter: &ValFilter,
        parent: &'static AttrDef,
    ) -> Result<ElementFilter, ScimError> {
        Ok(ElementFilter(compile_val(filter, Scope::Element(parent))?))
    }

    /// Does this element (an object) match?
    pub(crate) fn matches(&self, element: &Value) -> bool {
        element.is_object() && eval(&self.0, element)
    }
}

fn registry() -> &'static SchemaRegistry {
    SchemaRegistry::get()
}

fn compile(filter: &Filter, kind: ResourceKind) -> Result<Node, ScimError> {
    Ok(match filter {
        Filter::Attr(exp) => compile_exp(exp, Scope::Resource(kind))?,
        Filter::ValuePath(vp) => compile_value_path(vp, kind)?,
        Filter::Not(inner) => Node::Not(Box::new(compile(inner, kind)?)),
        Filter::And(items) => Node::And(
            items
                .iter()
                .map(|f| compile(f, kind))
                .collect::<Result<_, _>>()?,
        ),
        Filter::Or(items) => Node::Or(
            items
                .iter()
                .map(|f| compile(f, kind))
                .collect::<Result<_, _>>()?,
        ),
    })
}

fn compile_val(filter: &ValFilter, scope: Scope) -> Result<Node, ScimError> {
    Ok(match filter {
        ValFilter::Attr(exp) => compile_exp(exp, scope)?,
        ValFilter::Not(inner) => Node::Not(Box::new(compile_val(inner, scope)?)),
        ValFilter::And(items) => Node::And(
            items
                .iter()
                .map(|f| compile_val(f, scope))
                .collect::<Result<_, _>>()?,
        ),
        ValFilter::Or(items) => Node::Or(
            items
                .iter()
                .map(|f| compile_val(f, scope))
                .collect::<Result<_, _>>()?,
        ),
    })
}

fn compile_value_path(vp: &ValuePath, kind: ResourceKind) -> Result<Node, ScimError> {
    let Some(resolved) = registry().resolve_attr_path(kind, &vp.attr) else {
        return Ok(Node::Const(false));
    };
    if resolved.sub.is_some() || !resolved.attr.is_complex() {
        return Err(ScimError::invalid_filter(format!(
            "'{}' has no sub-attributes to filter on with '[...]'",
            vp.attr
        )));
    }
    let slot = Slot {
        ext: ext_of(resolved.location),
        key: Key::of(resolved.key()),
        sub: None,
    };
    let inner = compile_val(&vp.filter, Scope::Element(resolved.attr))?;
    Ok(Node::Any(slot, Box::new(inner)))
}

fn ext_of(location: Location<'static>) -> Option<Key> {
    match location {
        Location::Core => None,
        Location::Extension(urn) => Some(Key::of(urn)),
    }
}

/// The slot and leaf definition of `path`, or `None` for an attribute the schemas do not define.
fn resolve(path: &AttrPath, scope: Scope) -> Option<(Slot, &'static AttrDef)> {
    match scope {
        Scope::Resource(kind) => {
            let r = registry().resolve_attr_path(kind, path)?;
            Some((
                Slot {
                    ext: ext_of(r.location),
                    key: Key::of(r.key()),
                    sub: r.sub_key().map(Key::of),
                },
                r.def(),
            ))
        }
        Scope::Element(parent) => {
            if path.uri.is_some() || path.sub_attr.is_some() {
                return None;
            }
            let sub = parent.sub(&path.name)?;
            Some((
                Slot {
                    ext: None,
                    key: Key::of(&sub.name),
                    sub: None,
                },
                sub,
            ))
        }
    }
}

fn compile_exp(exp: &AttrExp, scope: Scope) -> Result<Node, ScimError> {
    let (path, op, value) = match exp {
        AttrExp::Present(path) => {
            return Ok(match resolve(path, scope) {
                Some((slot, _)) => Node::Test(slot, Test::Present),
                None => Node::Const(false),
            });
        }
        AttrExp::Comparison(path, op, value) => (path, op, value),
    };
    let Some((mut slot, mut def)) = resolve(path, scope) else {
        // An attribute without a value: only `ne` holds.
        return Ok(Node::Const(*op == CompareOp::Ne));
    };
    if def.is_complex() {
        // `emails co "@x"` compares the `value` sub-attribute (RFC 7644 §3.4.2.2, Figure 2).
        match def.sub("value") {
            Some(value_def) if slot.sub.is_none() => {
                slot.sub = Some(Key::of(&value_def.name));
                def = value_def;
            }
            _ => {
                return Err(ScimError::invalid_filter(format!(
                    "'{path}' is complex; compare one of its sub-attributes, e.g. '{path}.{}'",
                    def.sub_attributes
                        .first()
                        .map_or("value", |s| s.name.as_str())
                )));
            }
        }
    }
    if *value == CompValue::Null {
        let present = Node::Test(slot, Test::Present);
        return match op {
            CompareOp::Eq => Ok(Node::Not(Box::new(present))),
            CompareOp::Ne => Ok(present),
            _ => Err(ScimError::invalid_filter(format!(
                "'{path} {op} null': null can only be compared with eq or ne"
            ))),
        };
    }
    let test = build_test(path, op, value, def)?;
    let node = Node::Test(slot, test);
    Ok(if *op == CompareOp::Ne {
        Node::Not(Box::new(node))
    } else {
        node
    })
}

/// The test `op value` makes for an attribute of `def`'s type, its operand read and folded once.
fn build_test(
    path: &AttrPath,
    op: &CompareOp,
    value: &CompValue,
    def: &AttrDef,
) -> Result<Test, ScimError> {
    let ord = match op {
        CompareOp::Eq | CompareOp::Ne => Some(Ord::Eq),
        CompareOp::Gt => Some(Ord::Gt),
        CompareOp::Ge => Some(Ord::Ge),
        CompareOp::Lt => Some(Ord::Lt),
        CompareOp::Le => Some(Ord::Le),
        CompareOp::Co | CompareOp::Sw | CompareOp::Ew => None,
    };
    match def.attr_type {
        AttrType::Boolean if ord == Some(Ord::Eq) => build_bool(path, value),
        AttrType::Boolean => Err(unsupported(path, op, "a boolean")),
        AttrType::Integer | AttrType::Decimal => match ord {
            Some(ord) => build_num(path, ord, value),
            None => Err(unsupported(path, op, "a number")),
        },
        AttrType::DateTime if ord.is_some() => build_time(path, ord.unwrap_or(Ord::Eq), value),
        AttrType::Complex => Err(unsupported(path, op, "complex")),
        AttrType::Binary if matches!(ord, Some(o) if o != Ord::Eq) => {
            Err(unsupported(path, op, "binary"))
        }
        AttrType::String | AttrType::Reference | AttrType::Binary | AttrType::DateTime => {
            Ok(build_str(op, ord, value, def))
        }
    }
}

fn unsupported(path: &AttrPath, op: &CompareOp, what: &str) -> ScimError {
    ScimError::invalid_filter(format!(
        "'{path}' is {what}; the operator '{op}' does not apply to it"
    ))
}

/// `eq` against a boolean: `true`/`false`, bare or as a string in any case.
fn build_bool(path: &AttrPath, value: &CompValue) -> Result<Test, ScimError> {
    let operand = match value {
        CompValue::True => true,
        CompValue::False => false,
        CompValue::Str(s) if s.eq_ignore_ascii_case("true") => true,
        CompValue::Str(s) if s.eq_ignore_ascii_case("false") => false,
        other => {
            return Err(ScimError::invalid_filter(format!(
                "'{path}' is a boolean; {other} is not true or false"
            )));
        }
    };
    Ok(Test::Bool(operand))
}

/// An ordering against a number, given as a number or a numeric string.
fn build_num(path: &AttrPath, op: Ord, value: &CompValue) -> Result<Test, ScimError> {
    let operand = match value {
        CompValue::Number(n) => n.as_f64(),
        CompValue::Str(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    }
    .ok_or_else(|| ScimError::invalid_filter(format!("'{path}' is a number; {value} is not")))?;
    Ok(Test::Num { op, operand })
}

/// An ordering against a dateTime, compared as instants.
fn build_time(path: &AttrPath, op: Ord, value: &CompValue) -> Result<Test, ScimError> {
    let operand = match value {
        CompValue::Str(s) => parse_instant(s),
        _ => None,
    }
    .ok_or_else(|| {
        ScimError::invalid_filter(format!(
            "'{path}' is a dateTime; {value} is not one (expected e.g. \"2026-01-01T00:00:00Z\")"
        ))
    })?;
    Ok(Test::Time { op, operand })
}

/// A test on the lexical form: any operand as text, lower-cased unless the attribute is caseExact.
fn build_str(op: &CompareOp, ord: Option<Ord>, value: &CompValue, def: &AttrDef) -> Test {
    let text = match value {
        CompValue::Str(s) => s.clone(),
        CompValue::Number(n) => n.to_string(),
        CompValue::True => "true".to_owned(),
        CompValue::False => "false".to_owned(),
        CompValue::Null => String::new(),
    };
    // dateTime reaches here only for co/sw/ew, which work on the lexical form.
    let case_exact = def.case_exact && def.attr_type != AttrType::DateTime;
    let operand = if case_exact {
        text
    } else {
        folded::fold(&text)
    };
    let op = match op {
        CompareOp::Co => StrOp::Co,
        CompareOp::Sw => StrOp::Sw,
        CompareOp::Ew => StrOp::Ew,
        _ => match ord {
            Some(Ord::Eq) | None => StrOp::Eq,
            Some(o) => StrOp::Ord(o),
        },
    };
    Test::Str {
        op,
        operand: operand.into_boxed_str(),
        case_exact,
    }
}

/// An RFC 3339 / xsd:dateTime instant; without an offset the value is read as UTC.
pub(crate) fn parse_instant(s: &str) -> Option<Timestamp> {
    let s = s.trim();
    if let Ok(ts) = s.parse::<Timestamp>() {
        return Some(ts);
    }
    let civil: jiff::civil::DateTime = s.parse().ok()?;
    jiff::tz::Offset::UTC.to_timestamp(civil).ok()
}

// === evaluation ===

fn eval<'a, V: View<'a>>(node: &Node, obj: V) -> bool {
    match node {
        Node::Const(b) => *b,
        Node::And(items) => items.iter().all(|n| eval(n, obj)),
        Node::Or(items) => items.iter().any(|n| eval(n, obj)),
        Node::Not(inner) => !eval(inner, obj),
        Node::Test(slot, test) => slot.any(obj, |v| test.check(v)),
        Node::Any(slot, inner) => slot.top(obj).is_some_and(|top| match top.shape() {
            Shape::Array => top
                .items()
                .any(|item| item.shape() == Shape::Object && eval(inner, item)),
            Shape::Object => eval(inner, top),
            _ => false,
        }),
    }
}

// === impl Slot ===

impl Slot {
    fn top<'a, V: View<'a>>(&self, obj: V) -> Option<V> {
        let container = match self.ext {
            None => obj,
            Some(urn) => obj.member(urn)?,
        };
        container.member(self.key)
    }

    /// Whether `f` holds for some non-null value at this slot (any element of a multi-valued one).
    fn any<'a, V: View<'a>>(&self, obj: V, mut f: impl FnMut(V) -> bool) -> bool {
        let Some(top) = self.top(obj) else {
            return false;
        };
        match (top.shape(), self.sub) {
            (_, None) => any_leaf(top, &mut f),
            (Shape::Array, Some(sub)) => top
                .items()
                .any(|item| item.member(sub).is_some_and(|v| any_leaf(v, &mut f))),
            (Shape::Object, Some(sub)) => top.member(sub).is_some_and(|v| any_leaf(v, &mut f)),
            _ => false,
        }
    }
}

fn any_leaf<'a, V: View<'a>>(v: V, f: &mut impl FnMut(V) -> bool) -> bool {
    match v.shape() {
        Shape::Null => false,
        Shape::Array => v.items().any(|item| !item.is_null() && f(item)),
        _ => f(v),
    }
}

/// RFC 7644 Table 3 `pr`: a non-empty, non-null value, or a complex value with such a member.
pub(crate) fn is_present<'a, V: View<'a>>(v: V) -> bool {
    match v.shape() {
        Shape::Null => false,
        Shape::Str(s) => !s.is_empty(),
        Shape::Array | Shape::Object => v.items().any(is_present),
        Shape::Bool(_) | Shape::Num(_) => true,
    }
}

// === impl Test ===

impl Test {
    fn check<'a, V: View<'a>>(&self, v: V) -> bool {
        match self {
            Test::Present => is_present(v),
            Test::Str {
                op,
                operand,
                case_exact,
            } => v
                .as_str()
                .is_some_and(|s| str_test(*op, s, operand, *case_exact)),
            Test::Bool(want) => as_bool(v.shape()) == Some(*want),
            Test::Num { op, operand } => as_f64(v.shape())
                .and_then(|n| n.partial_cmp(operand))
                .is_some_and(|c| op.holds(c)),
            Test::Time { op, operand } => v
                .as_str()
                .and_then(parse_instant)
                .is_some_and(|t| op.holds(t.cmp(operand))),
        }
    }
}

impl Ord {
    fn holds(self, c: Ordering) -> bool {
        match self {
            Ord::Eq => c == Ordering::Equal,
            Ord::Gt => c == Ordering::Greater,
            Ord::Ge => c != Ordering::Less,
            Ord::Lt => c == Ordering::Less,
            Ord::Le => c != Ordering::Greater,
        }
    }
}

fn as_bool(v: Shape<'_>) -> Option<bool> {
    match v {
        Shape::Bool(b) => Some(b),
        Shape::Str(s) if s.eq_ignore_ascii_case("true") => Some(true),
        Shape::Str(s) if s.eq_ignore_ascii_case("false") => Some(false),
        _ => None,
    }
}

fn as_f64(v: Shape<'_>) -> Option<f64> {
    match v {
        Shape::Num(n) => Some(n),
        Shape::Str(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// `s` against `operand`; when not case-exact, `operand` is already lowercase.
fn str_test(op: StrOp, s: &str, operand: &str, case_exact: bool) -> bool {
    if case_exact {
        return match op {
            StrOp::Eq => s == operand,
            StrOp::Co => s.contains(operand),
            StrOp::Sw => s.starts_with(operand),
            StrOp::Ew => s.ends_with(operand),
            StrOp::Ord(o) => o.holds(s.cmp(operand)),
        };
    }
    match op {
        StrOp::Eq => folded::eq(s, operand),
        StrOp::Co => folded::contains(s, operand),
        StrOp::Sw => folded::starts_with(s, operand),
        StrOp::Ew => folded::ends_with(s, operand),
        StrOp::Ord(o) => o.holds(folded::cmp(s, operand)),
    }
}

/// Case-insensitive comparisons of a resource string with an operand already folded by [`folded::fold`],
/// without allocating for ASCII input (the overwhelmingly common case).
///
/// Both sides fold the same way: character by character with `char::to_lowercase`, which does not look
/// at a character's neighbours. `str::to_lowercase` does (a capital sigma ending a word becomes `ς`,
/// elsewhere `σ`), so a value folded one way and an operand the other would not equal each other, and a
/// prefix or substring folds differently from the whole.
pub mod folded {
    use std::cmp::Ordering;

    fn lower(s: &str) -> impl Iterator<Item = char> + '_ {
        s.chars().flat_map(char::to_lowercase)
    }

    /// `s` folded for a case-insensitive comparison: what operands and index keys are stored as.
    pub fn fold(s: &str) -> String {
        if s.is_ascii() {
            s.to_ascii_lowercase()
        } else {
            lower(s).collect()
        }
    }

    pub(crate) fn eq(s: &str, lower_operand: &str) -> bool {
        if s.is_ascii() && lower_operand.is_ascii() {
            s.eq_ignore_ascii_case(lower_operand)
        } else {
            lower(s).eq(lower_operand.chars())
        }
    }

    pub(crate) fn cmp(s: &str, lower_operand: &str) -> Ordering {
        if s.is_ascii() && lower_operand.is_ascii() {
            s.bytes()
                .map(|b| b.to_ascii_lowercase())
                .cmp(lower_operand.bytes())
        } else {
            lower(s).cmp(lower_operand.chars())
        }
    }

    pub(crate) fn starts_with(s: &str, lower_operand: &str) -> bool {
        if s.is_ascii() && lower_operand.is_ascii() {
            s.len() >= lower_operand.len()
                && s.as_bytes()[..lower_operand.len()]
                    .eq_ignore_ascii_case(lower_operand.as_bytes())
        } else {
            let mut chars = lower(s);
            lower_operand.chars().all(|c| chars.next() == Some(c))
        }
    }

    pub(crate) fn ends_with(s: &str, lower_operand: &str) -> bool {
        if s.is_ascii() && lower_operand.is_ascii() {
            s.len() >= lower_operand.len()
                && s.as_bytes()[s.len() - lower_operand.len()..]
                    .eq_ignore_ascii_case(lower_operand.as_bytes())
        } else {
            fold(s).ends_with(lower_operand)
        }
    }

    pub(crate) fn contains(s: &str, lower_operand: &str) -> bool {
        if s.is_ascii() && lower_operand.is_ascii() {
            let needle = lower_operand.as_bytes();
            needle.is_empty()
                || s.as_bytes()
                    .windows(needle.len())
                    .any(|w| w.eq_ignore_ascii_case(needle))
        } else {
            fold(s).contains(lower_operand)
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// No schema attribute is numeric; the number path is exercised with a synthetic definition.
    #[test]
    fn numbers_compare_by_value() {
        let def: AttrDef = serde_json::from_value(json!({"name": "n", "type": "integer"})).unwrap();
        let path = AttrPath::with_name("n");
        let num = |op: CompareOp, v: CompValue| build_test(&path, &op, &v, &def);
        let n = |x: i64| CompValue::Number(x.into());
        let cases = [
            (CompareOp::Eq, n(5), json!(5), true),
            (CompareOp::Eq, n(5), json!(5.0), true),
            (CompareOp::Eq, CompValue::Str("5".into()), json!(5), true),
            (CompareOp::Gt, n(4), json!(5), true),
            (CompareOp::Gt, n(5), json!(5), false),
            (CompareOp::Ge, n(5), json!(5), true),
            (CompareOp::Lt, n(10), json!(9), true),
            (CompareOp::Le, n(9), json!(10), false),
            (CompareOp::Gt, n(4), json!("5"), true),
            (CompareOp::Gt, n(4), json!("five"), false),
        ];
        for (op, operand, value, want) in cases {
            let test = num(op.clone(), operand).unwrap();
            assert_eq!(test.check(&value), want, "{op} {value}");
        }
        for op in [CompareOp::Co, CompareOp::Sw, CompareOp::Ew] {
            assert!(num(op, n(1)).is_err());
        }
        assert!(num(CompareOp::Eq, CompValue::Str("x".into())).is_err());
        assert!(num(CompareOp::Eq, CompValue::True).is_err());
    }

    #[test]
    fn binary_allows_equality_only() {
        let def: AttrDef =
            serde_json::from_value(json!({"name": "b", "type": "binary", "caseExact": true}))
                .unwrap();
        let path = AttrPath::with_name("b");
        assert!(build_test(&path, &CompareOp::Eq, &"QUJD".into(), &def).is_ok());
        assert!(build_test(&path, &CompareOp::Gt, &"QUJD".into(), &def).is_err());
    }

    #[test]
    fn folded_comparisons() {
        assert!(folded::eq("ABC", "abc"));
        assert!(!folded::eq("ABCD", "abc"));
        assert!(folded::starts_with("ABC", ""));
        assert!(!folded::starts_with("AB", "abc"));
        assert!(folded::ends_with("xABC", "abc"));
        assert!(!folded::ends_with("BC", "abc"));
        assert!(folded::contains("xxABCxx", "abc"));
        assert!(folded::contains("", ""));
        assert!(!folded::contains("ab", "abc"));
        assert_eq!(folded::cmp("B", "a"), Ordering::Greater);
        assert_eq!(folded::cmp("a", "ab"), Ordering::Less);
        assert!(folded::eq("STRASSE", "strasse"));
        assert!(folded::starts_with("Ärger", "är"));
    }

    #[test]
    fn instants() {
        let a = parse_instant("2026-01-01T00:00:00Z").unwrap();
        assert_eq!(parse_instant("2026-01-01T01:00:00+01:00"), Some(a));
        assert_eq!(parse_instant("2026-01-01T00:00:00"), Some(a));
        assert_eq!(parse_instant(" 2026-01-01T00:00:00.000Z "), Some(a));
        assert_eq!(parse_instant("yesterday"), None);
    }
}
