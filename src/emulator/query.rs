//! List-query grammar of both API versions: `filter`, `sort`, `fields`, `limit`, `skip`, and the v1 search body.
//!
//! Pure: it parses into a [`Cond`] tree and evaluates it over anything that implements [`Record`]. It knows
//! nothing of users or groups, and nothing of HTTP beyond decoded query pairs.
//!
//! The two dialects differ exactly where the facts sheet says they do: v1 operators carry a `$`
//! (`$eq $ne $gt $gte $lt $lte`) and `sort`/`fields` are space-separated; v2 operators do not
//! (`eq ne gt ge lt le in`, `in` taking `a|b|c`) and `sort`/`fields` are comma-separated. Values compare
//! case-sensitively in both.

use std::borrow::Cow;
use std::cmp::Ordering;

use serde_json::Value;

/// Page size when `limit` is absent (or 0).
pub const DEFAULT_LIMIT: usize = 10;
/// Larger `limit`s are capped to this, not rejected.
pub const MAX_LIMIT: usize = 100;
/// Longest filter expression accepted; anything longer is a client bug, not a query.
const MAX_FILTER_LEN: usize = 4096;
/// Most filter clauses in one request.
const MAX_CLAUSES: usize = 64;

/// Why a query could not be parsed; every variant is a 400 for the client.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum QueryError {
    #[error("invalid filter {0:?}: expected field:operator:value")]
    FilterShape(String),
    #[error("invalid filter {filter:?}: unknown operator {op:?}")]
    FilterOp { filter: String, op: String },
    #[error(
        "invalid filter: more than {MAX_CLAUSES} clauses or longer than {MAX_FILTER_LEN} characters"
    )]
    TooLarge,
    #[error("invalid {name} {value:?}: expected a non-negative integer")]
    NotANumber { name: &'static str, value: String },
    #[error("invalid search body: {0}")]
    Body(String),
}

/// Which API's spelling a query uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// `/api/...`: `$eq`, space-separated lists.
    V1,
    /// `/api/v2/...`: `eq`, comma-separated lists.
    V2,
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
    /// v2 only: the value is `a|b|c`, or a JSON array in a search body.
    In,
}

/// The right-hand side of a comparison: text from a query string, or a typed value from a JSON body.
#[derive(Debug, Clone, PartialEq)]
pub enum Operand {
    Text(String),
    Json(Value),
}

/// One `field op value` clause.
#[derive(Debug, Clone, PartialEq)]
pub struct Test {
    /// Dotted path; arrays along the way match if any element matches.
    pub field: String,
    pub op: Op,
    pub value: Operand,
}

/// A filter tree.
#[derive(Debug, Clone, PartialEq)]
pub enum Cond {
    /// Matches everything (no filter given).
    True,
    And(Vec<Cond>),
    Or(Vec<Cond>),
    Test(Test),
    /// v1 `searchFilter`: any of `terms` occurs (case-insensitively) in any of `fields`.
    Search {
        terms: Vec<String>,
        fields: Vec<String>,
    },
}

/// One sort key; `desc` for a leading `-`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SortKey {
    pub field: String,
    pub desc: bool,
}

/// Everything a list endpoint takes from its query string.
#[derive(Debug, Clone, PartialEq)]
pub struct ListQuery {
    pub limit: usize,
    pub skip: usize,
    pub sort: Vec<SortKey>,
    /// Projection; `None` = every field.
    pub fields: Option<Vec<String>>,
    pub cond: Cond,
}

impl Default for ListQuery {
    fn default() -> Self {
        Self {
            limit: DEFAULT_LIMIT,
            skip: 0,
            sort: Vec::new(),
            fields: None,
            cond: Cond::True,
        }
    }
}

/// A value found in a record, borrowed where it can be.
#[derive(Debug, Clone, PartialEq)]
pub enum Scalar<'a> {
    Null,
    Bool(bool),
    Num(f64),
    Str(Cow<'a, str>),
    /// An object or array: never equal to a filter value.
    Other,
}

/// Something a [`Cond`] can be evaluated on.
pub trait Record {
    /// Calls `f` on each value at `path` (once with [`Scalar::Null`] when the path is missing), stopping at
    /// the first `true`; returns whether any call returned `true`.
    fn any_value(&self, path: &str, f: &mut dyn FnMut(&Scalar<'_>) -> bool) -> bool;

    /// The value `path` sorts by: its first value, or null.
    fn sort_value(&self, path: &str) -> Scalar<'_>;
}

// === impl Scalar ===

impl<'a> Scalar<'a> {
    /// The scalar a JSON value stands for.
    pub fn of(v: &'a Value) -> Self {
        match v {
            Value::Null => Scalar::Null,
            Value::Bool(b) => Scalar::Bool(*b),
            Value::Number(n) => n.as_f64().map_or(Scalar::Other, Scalar::Num),
            Value::String(s) => Scalar::Str(Cow::Borrowed(s)),
            Value::Array(_) | Value::Object(_) => Scalar::Other,
        }
    }

    /// A copy that outlives the record it came from.
    pub fn into_owned(self) -> Scalar<'static> {
        match self {
            Scalar::Null => Scalar::Null,
            Scalar::Bool(b) => Scalar::Bool(b),
            Scalar::Num(n) => Scalar::Num(n),
            Scalar::Str(s) => Scalar::Str(Cow::Owned(s.into_owned())),
            Scalar::Other => Scalar::Other,
        }
    }

    fn rank(&self) -> u8 {
        match self {
            Scalar::Null => 0,
            Scalar::Bool(_) => 1,
            Scalar::Num(_) => 2,
            Scalar::Str(_) => 3,
            Scalar::Other => 4,
        }
    }

    /// Total order used by `sort`: null < booleans < numbers < strings < anything else.
    pub fn sort_cmp(&self, other: &Scalar<'_>) -> Ordering {
        match (self, other) {
            (Scalar::Bool(a), Scalar::Bool(b)) => a.cmp(b),
            (Scalar::Num(a), Scalar::Num(b)) => a.total_cmp(b),
            (Scalar::Str(a), Scalar::Str(b)) => a.as_ref().cmp(b.as_ref()),
            _ => self.rank().cmp(&other.rank()),
        }
    }

    fn eq_text(&self, v: &str) -> bool {
        match self {
            Scalar::Null => v == "null",
            Scalar::Bool(b) => v == if *b { "true" } else { "false" },
            Scalar::Num(n) => v.parse::<f64>().is_ok_and(|x| x == *n),
            Scalar::Str(s) => s.as_ref() == v,
            Scalar::Other => false,
        }
    }

    fn eq_json(&self, v: &Value) -> bool {
        match (self, v) {
            (Scalar::Null, Value::Null) => true,
            (Scalar::Bool(a), Value::Bool(b)) => a == b,
            (Scalar::Num(a), Value::Number(b)) => b.as_f64() == Some(*a),
            (Scalar::Str(a), Value::String(b)) => a.as_ref() == b,
            _ => false,
        }
    }

    fn cmp_operand(&self, v: &Operand) -> Option<Ordering> {
        match (self, v) {
            (Scalar::Str(s), Operand::Text(t)) => Some(s.as_ref().cmp(t.as_str())),
            (Scalar::Num(n), Operand::Text(t)) => {
                t.parse::<f64>().ok().and_then(|x| n.partial_cmp(&x))
            }
            (Scalar::Str(s), Operand::Json(Value::String(t))) => Some(s.as_ref().cmp(t.as_str())),
            (Scalar::Num(n), Operand::Json(Value::Number(x))) => {
                x.as_f64().and_then(|x| n.partial_cmp(&x))
            }
            _ => None,
        }
    }

    fn eq_operand(&self, v: &Operand) -> bool {
        match v {
            Operand::Text(t) => self.eq_text(t),
            Operand::Json(j) => self.eq_json(j),
        }
    }

    fn contains_ci(&self, term_lower: &str) -> bool {
        match self {
            Scalar::Str(s) => s.to_lowercase().contains(term_lower),
            _ => false,
        }
    }
}

// === impl Cond ===

impl Cond {
    /// Whether `r` satisfies this condition.
    pub fn matches<R: Record + ?Sized>(&self, r: &R) -> bool {
        match self {
            Cond::True => true,
            Cond::And(cs) => cs.iter().all(|c| c.matches(r)),
            Cond::Or(cs) => cs.iter().any(|c| c.matches(r)),
            Cond::Test(t) => t.matches(r),
            Cond::Search { terms, fields } => fields
                .iter()
                .any(|f| r.any_value(f, &mut |s| terms.iter().any(|t| s.contains_ci(t)))),
        }
    }

    /// AND of `conds`, simplified: no clause is [`Cond::True`], one clause stands alone.
    pub fn all(conds: Vec<Cond>) -> Cond {
        let mut conds: Vec<Cond> = conds.into_iter().filter(|c| *c != Cond::True).collect();
        match conds.len() {
            0 => Cond::True,
            1 => conds.pop().unwrap_or(Cond::True),
            _ => Cond::And(conds),
        }
    }

    /// The top-level `field == value` tests (this one, or those of a top-level AND), for index look-ups.
    pub fn equalities(&self) -> Vec<(&str, &Operand)> {
        match self {
            Cond::Test(Test {
                field,
                op: Op::Eq,
                value,
            }) => vec![(field.as_str(), value)],
            Cond::And(cs) => cs
                .iter()
                .flat_map(|c| match c {
                    Cond::Test(Test {
                        field,
                        op: Op::Eq,
                        value,
                    }) => Some((field.as_str(), value)),
                    _ => None,
                })
                .collect(),
            _ => Vec::new(),
        }
    }
}

// === impl Test ===

impl Test {
    fn matches<R: Record + ?Sized>(&self, r: &R) -> bool {
        match self.op {
            Op::Eq => r.any_value(&self.field, &mut |s| s.eq_operand(&self.value)),
            Op::Ne => !r.any_value(&self.field, &mut |s| s.eq_operand(&self.value)),
            Op::Gt => self.ordered(r, |o| o == Ordering::Greater),
            Op::Ge => self.ordered(r, |o| o != Ordering::Less),
            Op::Lt => self.ordered(r, |o| o == Ordering::Less),
            Op::Le => self.ordered(r, |o| o != Ordering::Greater),
            Op::In => match &self.value {
                Operand::Text(t) => {
                    r.any_value(&self.field, &mut |s| t.split('|').any(|v| s.eq_text(v)))
                }
                Operand::Json(Value::Array(vs)) => {
                    r.any_value(&self.field, &mut |s| vs.iter().any(|v| s.eq_json(v)))
                }
                Operand::Json(v) => r.any_value(&self.field, &mut |s| s.eq_json(v)),
            },
        }
    }

    fn ordered<R: Record + ?Sized>(&self, r: &R, want: impl Fn(Ordering) -> bool) -> bool {
        r.any_value(&self.field, &mut |s| {
            s.cmp_operand(&self.value).is_some_and(&want)
        })
    }
}

// === impl Record for serde_json::Value ===

impl Record for Value {
    fn any_value(&self, path: &str, f: &mut dyn FnMut(&Scalar<'_>) -> bool) -> bool {
        let segs: Vec<&str> = path.split('.').collect();
        walk(self, &segs, f)
    }

    fn sort_value(&self, path: &str) -> Scalar<'_> {
        let mut v = self;
        for seg in path.split('.') {
            v = match v {
                Value::Object(m) => match m.get(seg) {
                    Some(c) => c,
                    None => return Scalar::Null,
                },
                Value::Array(items) => match items.first() {
                    Some(Value::Object(m)) => match m.get(seg) {
                        Some(c) => c,
                        None => return Scalar::Null,
                    },
                    _ => return Scalar::Null,
                },
                _ => return Scalar::Null,
            };
        }
        Scalar::of(v)
    }
}

fn walk(v: &Value, segs: &[&str], f: &mut dyn FnMut(&Scalar<'_>) -> bool) -> bool {
    match (segs.split_first(), v) {
        (None, Value::Array(items)) if !items.is_empty() => items.iter().any(|i| f(&Scalar::of(i))),
        (None, Value::Array(_)) => f(&Scalar::Null),
        (None, _) => f(&Scalar::of(v)),
        (Some((seg, rest)), Value::Object(m)) => match m.get(*seg) {
            Some(c) => walk(c, rest, f),
            None => f(&Scalar::Null),
        },
        (Some(_), Value::Array(items)) if !items.is_empty() => {
            items.iter().any(|i| walk(i, segs, f))
        }
        (Some(_), _) => f(&Scalar::Null),
    }
}

// === parsing ===

/// Parses one `field:op:value` filter in `dialect`. The value may itself contain colons.
pub fn parse_filter(raw: &str, dialect: Dialect) -> Result<Test, QueryError> {
    if raw.len() > MAX_FILTER_LEN {
        return Err(QueryError::TooLarge);
    }
    let mut parts = raw.splitn(3, ':');
    let (Some(field), Some(op), Some(value)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(QueryError::FilterShape(raw.to_owned()));
    };
    if field.is_empty() {
        return Err(QueryError::FilterShape(raw.to_owned()));
    }
    let op = match (dialect, op) {
        (Dialect::V1, "$eq") | (Dialect::V2, "eq") => Op::Eq,
        (Dialect::V1, "$ne") | (Dialect::V2, "ne") => Op::Ne,
        (Dialect::V1, "$gt") | (Dialect::V2, "gt") => Op::Gt,
        (Dialect::V1, "$gte") | (Dialect::V2, "ge") => Op::Ge,
        (Dialect::V1, "$lt") | (Dialect::V2, "lt") => Op::Lt,
        (Dialect::V1, "$lte") | (Dialect::V2, "le") => Op::Le,
        (Dialect::V2, "in") => Op::In,
        _ => {
            return Err(QueryError::FilterOp {
                filter: raw.to_owned(),
                op: op.to_owned(),
            });
        }
    };
    Ok(Test {
        field: field.to_owned(),
        op,
        value: Operand::Text(value.to_owned()),
    })
}

/// Parses `sort` (`-field` = descending).
pub fn parse_sort(raw: &str, dialect: Dialect) -> Vec<SortKey> {
    split_list(raw, dialect)
        .map(|f| match f.strip_prefix('-') {
            Some(rest) => SortKey {
                field: rest.to_owned(),
                desc: true,
            },
            None => SortKey {
                field: f.trim_start_matches('+').to_owned(),
                desc: false,
            },
        })
        .filter(|k| !k.field.is_empty())
        .collect()
}

/// Parses a `fields` projection; `None` when it names nothing.
pub fn parse_fields(raw: &str, dialect: Dialect) -> Option<Vec<String>> {
    let fields: Vec<String> = split_list(raw, dialect).map(str::to_owned).collect();
    (!fields.is_empty()).then_some(fields)
}

fn split_list(raw: &str, dialect: Dialect) -> impl Iterator<Item = &str> {
    let sep: &[char] = match dialect {
        // A v1 `sort=-created username` arrives with `+` already decoded to a space; commas are tolerated.
        Dialect::V1 => &[' ', ','],
        Dialect::V2 => &[','],
    };
    raw.split(sep).map(str::trim).filter(|s| !s.is_empty())
}

/// Parses `limit` (0 or absent = default, above the cap = the cap).
pub fn parse_limit(raw: &str) -> Result<usize, QueryError> {
    let n = parse_count("limit", raw)?;
    Ok(if n == 0 {
        DEFAULT_LIMIT
    } else {
        n.min(MAX_LIMIT)
    })
}

/// Parses a non-negative integer parameter.
pub fn parse_count(name: &'static str, raw: &str) -> Result<usize, QueryError> {
    raw.trim()
        .parse::<usize>()
        .map_err(|_| QueryError::NotANumber {
            name,
            value: raw.to_owned(),
        })
}

/// Builds a [`ListQuery`] from decoded query pairs. Unknown parameters are left to the caller.
///
/// Filters: repeated `filter=`, `filter[]=`, `filter[N]=` and `filter[and][N]=` are ANDed;
/// `filter[or][N]=` clauses are ORed together and that OR is ANDed with the rest. v1 also takes
/// `search[searchTerm]` and `search[fields][]`.
pub fn parse_list(pairs: &[(String, String)], dialect: Dialect) -> Result<ListQuery, QueryError> {
    let mut q = ListQuery::default();
    let mut and = Vec::new();
    let mut or = Vec::new();
    let mut terms = Vec::new();
    let mut search_fields = Vec::new();
    for (k, v) in pairs {
        match k.as_str() {
            "limit" => q.limit = parse_limit(v)?,
            "skip" => q.skip = parse_count("skip", v)?,
            "sort" => q.sort = parse_sort(v, dialect),
            "fields" => q.fields = parse_fields(v, dialect),
            _ => {
                if let Some(rest) = k.strip_prefix("filter") {
                    match filter_group(rest) {
                        Some(FilterGroup::And) => and.push(Cond::Test(parse_filter(v, dialect)?)),
                        Some(FilterGroup::Or) => or.push(Cond::Test(parse_filter(v, dialect)?)),
                        None => {}
                    }
                } else if let Some(rest) = k.strip_prefix("search") {
                    if rest.starts_with("[searchTerm]") {
                        terms.push(v.to_lowercase());
                    } else if rest.starts_with("[fields]") {
                        search_fields.extend(split_list(v, Dialect::V1).map(str::to_owned));
                    }
                }
            }
        }
        if and.len() + or.len() > MAX_CLAUSES {
            return Err(QueryError::TooLarge);
        }
    }
    if !or.is_empty() {
        and.push(Cond::Or(or));
    }
    if !terms.is_empty() {
        and.push(search_cond(terms, search_fields));
    }
    q.cond = Cond::all(and);
    Ok(q)
}

enum FilterGroup {
    And,
    Or,
}

/// Classifies what follows `filter` in a parameter name.
fn filter_group(rest: &str) -> Option<FilterGroup> {
    if rest.is_empty() || rest == "[]" || rest.starts_with("[and]") {
        return Some(FilterGroup::And);
    }
    if rest.starts_with("[or]") {
        return Some(FilterGroup::Or);
    }
    let inner = rest.strip_prefix('[')?.strip_suffix(']')?;
    inner
        .bytes()
        .all(|b| b.is_ascii_digit())
        .then_some(FilterGroup::And)
}

/// Fields a `searchFilter` without `fields` looks in.
const DEFAULT_SEARCH_FIELDS: [&str; 5] =
    ["username", "email", "firstname", "lastname", "displayname"];

fn search_cond(terms: Vec<String>, fields: Vec<String>) -> Cond {
    let fields = if fields.is_empty() {
        DEFAULT_SEARCH_FIELDS
            .iter()
            .map(|s| (*s).to_owned())
            .collect()
    } else {
        fields
    };
    Cond::Search { terms, fields }
}

/// Parses the `filter` member of a v1 search body: an array of `{field: value}` objects (ANDed), or
/// `{"and": [...]}` / `{"or": [...]}`, nested freely. A value may be an operator object such as
/// `{"$ne": "Sales"}`.
pub fn parse_body_filter(v: &Value) -> Result<Cond, QueryError> {
    parse_body_filter_at(v, 0)
}

fn parse_body_filter_at(v: &Value, depth: usize) -> Result<Cond, QueryError> {
    if depth > 8 {
        return Err(QueryError::Body("filter nested too deeply".into()));
    }
    match v {
        Value::Null => Ok(Cond::True),
        Value::Array(items) => {
            if items.len() > MAX_CLAUSES {
                return Err(QueryError::TooLarge);
            }
            let conds = items
                .iter()
                .map(|i| parse_body_filter_at(i, depth + 1))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Cond::all(conds))
        }
        Value::Object(m) => {
            let mut conds = Vec::new();
            for (k, v) in m {
                match k.as_str() {
                    "and" | "$and" => conds.push(Cond::all(list_of(v, depth)?)),
                    "or" | "$or" => conds.push(Cond::Or(list_of(v, depth)?)),
                    field => conds.push(body_test(field, v)?),
                }
            }
            Ok(Cond::all(conds))
        }
        _ => Err(QueryError::Body(
            "filter must be an array or an object".into(),
        )),
    }
}

fn list_of(v: &Value, depth: usize) -> Result<Vec<Cond>, QueryError> {
    match v {
        Value::Array(items) => items
            .iter()
            .map(|i| parse_body_filter_at(i, depth + 1))
            .collect(),
        _ => Err(QueryError::Body("and/or take an array".into())),
    }
}

fn body_test(field: &str, v: &Value) -> Result<Cond, QueryError> {
    let Value::Object(ops) = v else {
        return Ok(Cond::Test(Test {
            field: field.to_owned(),
            op: Op::Eq,
            value: Operand::Json(v.clone()),
        }));
    };
    let mut conds = Vec::new();
    for (op, value) in ops {
        let op = match op.as_str() {
            "$eq" => Op::Eq,
            "$ne" => Op::Ne,
            "$gt" => Op::Gt,
            "$gte" => Op::Ge,
            "$lt" => Op::Lt,
            "$lte" => Op::Le,
            "$in" => Op::In,
            other => return Err(QueryError::Body(format!("unknown operator {other:?}"))),
        };
        conds.push(Cond::Test(Test {
            field: field.to_owned(),
            op,
            value: Operand::Json(value.clone()),
        }));
    }
    Ok(Cond::all(conds))
}

/// Builds the `searchFilter` condition of a v1 search body: `{searchTerm: string | [string], fields: [..]}`.
pub fn parse_search_filter(v: &Value) -> Result<Cond, QueryError> {
    let Value::Object(m) = v else {
        return match v {
            Value::Null => Ok(Cond::True),
            _ => Err(QueryError::Body("searchFilter must be an object".into())),
        };
    };
    let terms: Vec<String> = match m.get("searchTerm") {
        None | Some(Value::Null) => return Ok(Cond::True),
        Some(Value::String(s)) => vec![s.to_lowercase()],
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| {
                i.as_str()
                    .map(str::to_lowercase)
                    .ok_or_else(|| QueryError::Body("searchTerm items must be strings".into()))
            })
            .collect::<Result<_, _>>()?,
        Some(_) => {
            return Err(QueryError::Body(
                "searchTerm must be a string or an array".into(),
            ));
        }
    };
    let fields = match m.get("fields") {
        None | Some(Value::Null) => Vec::new(),
        Some(v) => string_list(v, Dialect::V1)
            .ok_or_else(|| QueryError::Body("searchFilter.fields must be strings".into()))?,
    };
    Ok(search_cond(terms, fields))
}

/// A list given either as an array of strings or as one separated string.
pub fn string_list(v: &Value, dialect: Dialect) -> Option<Vec<String>> {
    match v {
        Value::String(s) => Some(split_list(s, dialect).map(str::to_owned).collect()),
        Value::Array(items) => items
            .iter()
            .map(|i| i.as_str().map(str::to_owned))
            .collect(),
        _ => None,
    }
}

// === evaluation helpers ===

/// Sorts `items` by `keys`, keeping the incoming order among equals (callers pass id order).
pub fn sort_records<'a, R: Record>(items: Vec<&'a R>, keys: &[SortKey]) -> Vec<&'a R> {
    if keys.is_empty() {
        return items;
    }
    // Keys are computed once per record, not once per comparison: a fallback field may be costly to read.
    let mut keyed: Vec<(Vec<Scalar<'a>>, &'a R)> = items
        .into_iter()
        .map(|r| (keys.iter().map(|k| r.sort_value(&k.field)).collect(), r))
        .collect();
    keyed.sort_by(|(a, _), (b, _)| {
        for ((x, y), k) in a.iter().zip(b).zip(keys) {
            let o = x.sort_cmp(y);
            if o != Ordering::Equal {
                return if k.desc { o.reverse() } else { o };
            }
        }
        Ordering::Equal
    });
    keyed.into_iter().map(|(_, r)| r).collect()
}

/// Keeps only the projected top-level members of `v` (a dotted field keeps its top-level member), plus `always`.
pub fn project(v: Value, fields: Option<&[String]>, always: &[&str]) -> Value {
    let Some(fields) = fields else {
        return v;
    };
    match v {
        Value::Object(mut m) => {
            m.retain(|k, _| {
                always.contains(&k.as_str())
                    || fields
                        .iter()
                        .any(|f| f.split('.').next().is_some_and(|top| top == k))
            });
            Value::Object(m)
        }
        other => other,
    }
}

#[cfg(test)]
#[path = "query_tests.rs"]
mod tests;
