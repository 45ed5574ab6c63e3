//! Reading a resource without owning it: the [`View`] filters, sorting and index keys are written against,
//! so they run the same on a `serde_json::Value` (a request body, a PATCH target) and on the compact
//! [`Tape`](crate::scim::tape::Tape) a snapshot keeps of each served resource.
//!
//! Object keys are compared as [`Key`]s: the schemas' canonical spelling, with the small number the tape
//! stores instead of the text ([`Key::of`]). Every name any schema defines has a number; a key the schemas
//! do not define has none and is never found, which is how filters already treat undefined attributes.

use std::collections::HashMap;
use std::sync::LazyLock;

use serde_json::Value;

use crate::scim::schema::{AttrDef, SchemaRegistry};

/// One JSON value as a view shows it: a scalar, or which kind of container.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Shape<'a> {
    Null,
    Bool(bool),
    Num(f64),
    Str(&'a str),
    Array,
    Object,
}

/// A read-only view of one JSON value.
pub trait View<'a>: Copy + 'a {
    /// What this value is.
    fn shape(self) -> Shape<'a>;
    /// The member named `key` of an object; `None` for a missing key or a non-object.
    fn member(self, key: Key) -> Option<Self>;
    /// The elements of an array, or the member values of an object; nothing for a scalar.
    fn items(self) -> impl Iterator<Item = Self> + 'a;

    fn as_str(self) -> Option<&'a str> {
        match self.shape() {
            Shape::Str(s) => Some(s),
            _ => None,
        }
    }

    fn is_null(self) -> bool {
        self.shape() == Shape::Null
    }
}

/// An object key: a schema's attribute name (or extension URN) and its number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Key {
    pub name: &'static str,
    pub sym: u16,
}

/// The number of a key no schema defines.
pub const UNKNOWN: u16 = u16::MAX;

/// Every name the schemas define (attribute and sub-attribute names, schema URNs, `schemas`), numbered.
static SYMBOLS: LazyLock<HashMap<&'static str, u16>> = LazyLock::new(|| {
    fn walk(defs: &'static [AttrDef], names: &mut Vec<&'static str>) {
        for d in defs {
            names.push(d.name.as_str());
            walk(&d.sub_attributes, names);
        }
    }
    let registry = SchemaRegistry::get();
    let mut names = vec!["schemas"];
    for schema in registry.schemas() {
        names.push(schema.id.as_str());
        walk(&schema.attributes, &mut names);
    }
    let mut map = HashMap::new();
    for name in names {
        let next = u16::try_from(map.len()).unwrap_or(UNKNOWN);
        map.entry(name).or_insert(next);
    }
    map
});

// === impl Key ===

impl Key {
    /// The key for `name` as resources spell it.
    pub fn of(name: &'static str) -> Key {
        Key {
            name,
            sym: symbol(name),
        }
    }
}

/// The number of a key as resources spell it ([`UNKNOWN`] when no schema defines it).
pub fn symbol(name: &str) -> u16 {
    SYMBOLS.get(name).copied().unwrap_or(UNKNOWN)
}

// === impl View for &Value ===

impl<'a> View<'a> for &'a Value {
    fn shape(self) -> Shape<'a> {
        match self {
            Value::Null => Shape::Null,
            Value::Bool(b) => Shape::Bool(*b),
            Value::Number(n) => n.as_f64().map_or(Shape::Null, Shape::Num),
            Value::String(s) => Shape::Str(s),
            Value::Array(_) => Shape::Array,
            Value::Object(_) => Shape::Object,
        }
    }

    fn member(self, key: Key) -> Option<Self> {
        self.as_object()?.get(key.name)
    }

    fn items(self) -> impl Iterator<Item = Self> + 'a {
        let elements = self.as_array().into_iter().flatten();
        let members = self.as_object().into_iter().flat_map(|o| o.values());
        elements.chain(members)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_schema_name_has_a_number_and_others_have_none() {
        for name in ["userName", "value", "meta", "lastModified", "schemas"] {
            assert_ne!(symbol(name), UNKNOWN, "{name}");
        }
        assert_ne!(
            symbol("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"),
            UNKNOWN
        );
        assert_eq!(symbol("notAnAttribute"), UNKNOWN);
        assert_eq!(
            symbol("USERNAME"),
            UNKNOWN,
            "keys are the canonical spelling"
        );
        assert_ne!(symbol("userName"), symbol("displayName"));
    }

    #[test]
    fn a_value_reads_as_a_view() {
        let v = serde_json::json!({"userName": "a", "emails": [{"value": "x"}], "active": true});
        let v = &v;
        assert_eq!(
            v.member(Key::of("userName")).unwrap().shape(),
            Shape::Str("a")
        );
        assert_eq!(
            v.member(Key::of("active")).unwrap().shape(),
            Shape::Bool(true)
        );
        let emails = v.member(Key::of("emails")).unwrap();
        assert_eq!(emails.shape(), Shape::Array);
        let first = emails.items().next().unwrap();
        assert_eq!(first.member(Key::of("value")).unwrap().as_str(), Some("x"));
        assert_eq!(v.items().count(), 3);
        assert!(v.member(Key::of("title")).is_none());
    }
}
