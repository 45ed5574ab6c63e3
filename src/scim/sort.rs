//! `sortBy` / `sortOrder` (RFC 7644 §3.4.2.3): a stable order over resources by one attribute.
//!
//! Owns the sort key of a resource: strings fold case unless the attribute is caseExact, booleans,
//! numbers and dateTimes (as instants) compare by value, a multi-valued attribute sorts by its
//! primary value or else its first one. Resources with no value for the attribute go last when
//! ascending and first when descending, as the RFC says. Knows nothing of storage.
//!
//! Decisions where the RFC leaves room: a `sortBy` naming an attribute the schemas do not define
//! is ignored (no sorting, like a filter on it matches nothing rather than failing); a `sortOrder`
//! other than ascending/descending (any case) is 400 `invalidValue`; `sortOrder` without `sortBy`
//! is ignored.

use std::cmp::{Ordering, Reverse};

use jiff::Timestamp;
use serde_json::Value;

use crate::scim::error::ScimError;
use crate::scim::filter::{fold_case, parse_instant};
use crate::scim::schema::{AttrType, Location, ResourceKind, SchemaRegistry};
use crate::scim::view::{Key, Shape, View};

/// The `primary` sub-attribute, looked up once.
static PRIMARY: std::sync::LazyLock<Key> = std::sync::LazyLock::new(|| Key::of("primary"));

/// A resolved sort request.
#[derive(Debug, Clone, PartialEq)]
pub struct SortSpec {
    ext: Option<Key>,
    key: Key,
    sub: Option<Key>,
    attr_type: AttrType,
    case_exact: bool,
    descending: bool,
}

/// One resource's value for the sort attribute, ordered ascending with unassigned last.
#[derive(Debug, Clone)]
pub enum SortKey {
    /// A boolean (false before true).
    Bool(bool),
    /// A number.
    Num(f64),
    /// A dateTime instant.
    Time(Timestamp),
    /// A string, already lowercased when the attribute is not caseExact.
    Str(String),
    /// No value: after every value.
    Missing,
}

// === impl SortKey ===

impl SortKey {
    fn rank(&self) -> u8 {
        match self {
            SortKey::Bool(_) => 0,
            SortKey::Num(_) => 1,
            SortKey::Time(_) => 2,
            SortKey::Str(_) => 3,
            SortKey::Missing => 4,
        }
    }
}

impl Ord for SortKey {
    fn cmp(&self, other: &Self) -> Ordering {
        match (self, other) {
            (SortKey::Bool(a), SortKey::Bool(b)) => a.cmp(b),
            (SortKey::Num(a), SortKey::Num(b)) => a.total_cmp(b),
            (SortKey::Time(a), SortKey::Time(b)) => a.cmp(b),
            (SortKey::Str(a), SortKey::Str(b)) => a.cmp(b),
            _ => self.rank().cmp(&other.rank()),
        }
    }
}

impl PartialOrd for SortKey {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for SortKey {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for SortKey {}

// === impl SortSpec ===

impl SortSpec {
    /// Read `sortBy` and `sortOrder`. `Ok(None)` means "do not sort".
    pub fn parse(
        sort_by: Option<&str>,
        sort_order: Option<&str>,
        kind: ResourceKind,
    ) -> Result<Option<SortSpec>, ScimError> {
        let descending = match sort_order.map(str::trim).filter(|s| !s.is_empty()) {
            None => false,
            Some(o) if o.eq_ignore_ascii_case("ascending") => false,
            Some(o) if o.eq_ignore_ascii_case("descending") => true,
            Some(o) => {
                return Err(ScimError::invalid_value(format!(
                    "sortOrder must be \"ascending\" or \"descending\", got {o:?}"
                )));
            }
        };
        let Some(sort_by) = sort_by.map(str::trim).filter(|s| !s.is_empty()) else {
            return Ok(None);
        };
        let Some(r) = SchemaRegistry::get().resolve(kind, sort_by) else {
            return Ok(None);
        };
        let mut def = r.def();
        let mut sub = r.sub_key();
        if def.is_complex() {
            match def.sub("value") {
                Some(value) if sub.is_none() => {
                    def = value;
                    sub = Some(&value.name);
                }
                _ => {
                    return Err(ScimError::invalid_value(format!(
                        "sortBy {sort_by:?} is complex; name one of its sub-attributes, e.g. \"{}.{}\"",
                        r.key(),
                        def.sub_attributes
                            .first()
                            .map_or("value", |s| s.name.as_str())
                    )));
                }
            }
        }
        Ok(Some(SortSpec {
            ext: match r.location {
                Location::Core => None,
                Location::Extension(urn) => Some(Key::of(urn)),
            },
            key: Key::of(r.key()),
            sub: sub.map(Key::of),
            attr_type: def.attr_type,
            case_exact: def.case_exact,
            descending,
        }))
    }

    /// Whether the order is descending.
    pub fn descending(&self) -> bool {
        self.descending
    }

    /// The ascending sort key of `resource` (see [`SortSpec::compare`] for the requested order).
    pub fn sort_key(&self, resource: &Value) -> SortKey {
        self.sort_key_of(resource)
    }

    /// The ascending sort key of the resource `view` shows.
    pub fn sort_key_of<'a>(&self, view: impl View<'a>) -> SortKey {
        self.value(view)
            .map_or(SortKey::Missing, |v| self.key_of(v.shape()))
    }

    /// Compare two keys in the requested order.
    pub fn compare(&self, a: &SortKey, b: &SortKey) -> Ordering {
        if self.descending { b.cmp(a) } else { a.cmp(b) }
    }

    /// Sort `items` stably; `resource` gives each item's SCIM JSON.
    pub fn sort<T>(&self, items: &mut [T], resource: impl Fn(&T) -> &Value) {
        self.sort_with(items, |item| self.sort_key(resource(item)));
    }

    /// Sort `items` stably by the ascending keys `key` gives (see [`SortSpec::sort_key_of`]).
    pub fn sort_with<T>(&self, items: &mut [T], key: impl Fn(&T) -> SortKey) {
        if self.descending {
            items.sort_by_cached_key(|item| Reverse(key(item)));
        } else {
            items.sort_by_cached_key(key);
        }
    }

    fn value<'a, V: View<'a>>(&self, resource: V) -> Option<V> {
        let container = match self.ext {
            None => resource,
            Some(urn) => resource.member(urn)?,
        };
        let top = container.member(self.key)?;
        let chosen = match top.shape() {
            Shape::Array => top
                .items()
                .find(|i| {
                    i.member(*PRIMARY).is_some_and(|p| {
                        matches!(p.shape(), Shape::Bool(true) | Shape::Str("true" | "True"))
                    })
                })
                .or_else(|| top.items().find(|i| !i.is_null()))?,
            _ => top,
        };
        let leaf = match self.sub {
            Some(sub) => chosen.member(sub)?,
            None => chosen,
        };
        (!leaf.is_null()).then_some(leaf)
    }

    fn key_of(&self, v: Shape<'_>) -> SortKey {
        match (self.attr_type, v) {
            (AttrType::Boolean, Shape::Bool(b)) => SortKey::Bool(b),
            (AttrType::Boolean, Shape::Str(s)) if s.eq_ignore_ascii_case("true") => {
                SortKey::Bool(true)
            }
            (AttrType::Boolean, Shape::Str(s)) if s.eq_ignore_ascii_case("false") => {
                SortKey::Bool(false)
            }
            (AttrType::Integer | AttrType::Decimal, Shape::Num(n)) => SortKey::Num(n),
            (AttrType::DateTime, Shape::Str(s)) => {
                parse_instant(s).map_or(SortKey::Missing, SortKey::Time)
            }
            (_, Shape::Str("")) => SortKey::Missing,
            (_, Shape::Str(s)) if self.case_exact => SortKey::Str(s.to_owned()),
            (_, Shape::Str(s)) => SortKey::Str(fold_case(s)),
            _ => SortKey::Missing,
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn users() -> Vec<Value> {
        vec![
            json!({"id": "1", "userName": "bob", "active": true, "meta": {"lastModified": "2026-01-02T00:00:00Z"},
                   "emails": [{"value": "z@x", "type": "work"}, {"value": "a@x", "primary": true}]}),
            json!({"id": "2", "userName": "Alice", "active": false, "meta": {"lastModified": "2026-01-01T23:00:00-02:00"},
                   "emails": [{"value": "m@x"}]}),
            json!({"id": "3", "active": true, "meta": {"lastModified": "2026-01-01T00:00:00Z"}, "externalId": "b"}),
            json!({"id": "4", "userName": "carol", "externalId": "B"}),
            json!({"id": "5", "userName": "ALICE"}),
        ]
    }

    fn order(sort_by: &str, sort_order: Option<&str>) -> Vec<String> {
        let spec = SortSpec::parse(Some(sort_by), sort_order, ResourceKind::User)
            .unwrap()
            .unwrap();
        let mut items = users();
        spec.sort(&mut items, |v| v);
        items
            .iter()
            .map(|u| u["id"].as_str().unwrap().to_owned())
            .collect()
    }

    #[test]
    fn orders() {
        let rows: &[(&str, Option<&str>, [&str; 5])] = &[
            // Case-insensitive, stable for equal keys (2 and 5), unassigned last.
            ("userName", None, ["2", "5", "1", "4", "3"]),
            ("USERNAME", Some("Ascending"), ["2", "5", "1", "4", "3"]),
            // Descending reverses, unassigned first, equal keys keep their order.
            ("userName", Some("descending"), ["3", "4", "1", "2", "5"]),
            // Case-exact: "B" < "b".
            ("externalId", None, ["4", "3", "1", "2", "5"]),
            ("active", None, ["2", "1", "3", "4", "5"]),
            // Instants, not text: 23:00-02:00 is 01:00Z on Jan 2, after 00:00Z on Jan 2.
            ("meta.lastModified", None, ["3", "1", "2", "4", "5"]),
            // Multi-valued: the primary value, else the first.
            ("emails.value", None, ["1", "2", "3", "4", "5"]),
            ("emails", Some("DESCENDING"), ["3", "4", "5", "2", "1"]),
        ];
        for (by, ord, want) in rows {
            assert_eq!(order(by, *ord), want, "{by} {ord:?}");
        }
    }

    #[test]
    fn parse_rules() {
        let kind = ResourceKind::User;
        assert_eq!(SortSpec::parse(None, None, kind).unwrap(), None);
        assert_eq!(
            SortSpec::parse(None, Some("descending"), kind).unwrap(),
            None
        );
        assert_eq!(SortSpec::parse(Some("nickName"), None, kind).unwrap(), None);
        assert_eq!(SortSpec::parse(Some(" "), None, kind).unwrap(), None);
        assert!(SortSpec::parse(Some("userName"), Some("up"), kind).is_err());
        assert!(SortSpec::parse(Some("name"), None, kind).is_err());
        assert!(
            SortSpec::parse(Some("name.familyName"), None, kind)
                .unwrap()
                .is_some()
        );
        assert!(
            SortSpec::parse(Some("employeeNumber"), None, kind)
                .unwrap()
                .is_some()
        );
        let spec = SortSpec::parse(Some("userName"), Some("descending"), kind)
            .unwrap()
            .unwrap();
        assert!(spec.descending());
        assert_eq!(
            spec.compare(&SortKey::Missing, &SortKey::Str("a".into())),
            Ordering::Less
        );
        assert_eq!(spec.sort_key(&json!({"userName": ""})), SortKey::Missing);
    }

    #[test]
    fn extension_attribute() {
        let spec = SortSpec::parse(
            Some("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value"),
            None,
            ResourceKind::User,
        )
        .unwrap()
        .unwrap();
        let r = json!({"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"manager": {"value": "M1"}}});
        assert_eq!(spec.sort_key(&r), SortKey::Str("M1".into()));
    }
}
