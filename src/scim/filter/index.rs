//! Index hints: a top-level equality (or a `meta.lastModified` lower bound) in a filter that a caller can
//! answer from an index instead of scanning every resource. A hint only narrows the candidates; the caller re-checks each one with
//! the full filter, so a hint may match more than the filter does, never less.

use jiff::Timestamp;
use scim_v2::filter::{AttrExp, AttrPath, CompValue, CompareOp, Filter, ValFilter, ValuePath};

use super::eval::parse_instant;

use crate::scim::schema::{Location, ResourceKind, SchemaRegistry};

/// An equality the caller can look up directly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IndexHint {
    /// `id eq "…"`: exact (ids are case-exact).
    Id(String),
    /// `userName eq "…"` (User): look up case-insensitively.
    UserName(String),
    /// `externalId eq "…"`: exact (case-exact).
    ExternalId(String),
    /// `emails.value eq "…"`, `emails eq "…"`, `emails[value eq "…"]` or
    /// `emails[type eq "work" and value eq "…"]` (User): case-insensitive.
    Email(String),
    /// `displayName eq "…"` (Group): case-insensitive.
    DisplayName(String),
    /// `members.value eq "…"` or `members[value eq "…"]` (Group): the groups with this member id, exact.
    Member(String),
    /// `meta.lastModified gt "…"` or `ge "…"` (a delta aggregation): the resources modified at or after
    /// this millisecond, the first one the comparison admits (resources' times are whole milliseconds).
    ModifiedSince(Timestamp),
}

// === impl IndexHint ===

impl IndexHint {
    /// Lower is narrower; used to pick one hint out of several conjuncts.
    fn rank(&self) -> u8 {
        match self {
            IndexHint::Id(_) => 0,
            IndexHint::UserName(_) | IndexHint::DisplayName(_) => 1,
            IndexHint::ExternalId(_) => 2,
            IndexHint::Email(_) => 3,
            IndexHint::Member(_) => 4,
            IndexHint::ModifiedSince(_) => 5,
        }
    }
}

/// The narrowest indexable equality among the filter's top-level conjuncts, if any.
///
/// A lone comparison or value path counts as one conjunct; `or` and `not` give `None`, and the
/// caller scans.
pub fn index_hint(filter: &Filter, kind: ResourceKind) -> Option<IndexHint> {
    match filter {
        Filter::And(items) => items
            .iter()
            .filter_map(|f| index_hint(f, kind))
            .min_by_key(IndexHint::rank),
        Filter::Attr(AttrExp::Comparison(path, CompareOp::Eq, value)) => {
            attr_hint(path, operand(value)?, kind)
        }
        Filter::Attr(AttrExp::Comparison(
            path,
            op @ (CompareOp::Gt | CompareOp::Ge),
            CompValue::Str(t),
        )) => since_hint(path, t, *op == CompareOp::Ge, kind),
        Filter::ValuePath(vp) => value_path_hint(vp, kind),
        _ => None,
    }
}

fn operand(value: &CompValue) -> Option<String> {
    match value {
        CompValue::Str(s) => Some(s.clone()),
        CompValue::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn attr_hint(path: &AttrPath, value: String, kind: ResourceKind) -> Option<IndexHint> {
    let r = SchemaRegistry::get().resolve_attr_path(kind, path)?;
    if r.location != Location::Core {
        return None;
    }
    let hint = match (kind, r.key(), r.sub_key()) {
        (_, "id", None) => IndexHint::Id(value),
        (_, "externalId", None) => IndexHint::ExternalId(value),
        (ResourceKind::User, "userName", None) => IndexHint::UserName(value),
        (ResourceKind::User, "emails", None | Some("value")) => IndexHint::Email(value),
        (ResourceKind::Group, "displayName", None) => IndexHint::DisplayName(value),
        (ResourceKind::Group, "members", None | Some("value")) => IndexHint::Member(value),
        _ => return None,
    };
    Some(hint)
}

fn since_hint(path: &AttrPath, t: &str, inclusive: bool, kind: ResourceKind) -> Option<IndexHint> {
    let r = SchemaRegistry::get().resolve_attr_path(kind, path)?;
    if r.location != Location::Core || r.key() != "meta" || r.sub_key() != Some("lastModified") {
        return None;
    }
    let t = parse_instant(t)?;
    // The first whole millisecond `gt t` (or `ge t`) holds for.
    let floor = t.as_millisecond();
    let exact = Timestamp::from_millisecond(floor).is_ok_and(|f| f == t);
    let first = if inclusive && exact { floor } else { floor + 1 };
    Timestamp::from_millisecond(first)
        .ok()
        .map(IndexHint::ModifiedSince)
}

fn value_path_hint(vp: &ValuePath, kind: ResourceKind) -> Option<IndexHint> {
    let r = SchemaRegistry::get().resolve_attr_path(kind, &vp.attr)?;
    if r.location != Location::Core || r.sub.is_some() {
        return None;
    }
    let make: fn(String) -> IndexHint = match (kind, r.key()) {
        (ResourceKind::User, "emails") => IndexHint::Email,
        (ResourceKind::Group, "members") => IndexHint::Member,
        _ => return None,
    };
    let value_eq = |f: &ValFilter| match f {
        ValFilter::Attr(AttrExp::Comparison(p, CompareOp::Eq, v))
            if p.uri.is_none() && p.sub_attr.is_none() && p.name.eq_ignore_ascii_case("value") =>
        {
            operand(v)
        }
        _ => None,
    };
    match vp.filter.as_ref() {
        ValFilter::And(items) => items.iter().find_map(value_eq),
        single => value_eq(single),
    }
    .map(make)
}
