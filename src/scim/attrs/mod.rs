//! `attributes` / `excludedAttributes` (RFC 7644 §3.4.2.5, §3.9) and the `returned` characteristic
//! (RFC 7643 §7): which parts of a resource an answer carries.
//!
//! Owns parsing the two comma-separated lists against the schemas and projecting a SCIM JSON
//! resource. Knows nothing of where resources come from.
//!
//! Decisions where the RFC leaves room:
//! - Names the schemas do not define are ignored, not refused: SailPoint's "explicit attribute
//!   request" may list attributes a server lacks, and failing a whole aggregation over it helps
//!   nobody. `attributes=nickName` therefore returns only the always-returned attributes.
//! - When both lists are given (RFC 7644 §3.9 makes them mutually exclusive), `attributes` wins.
//! - `returned: always` is `id` and `schemas`. `meta` is `returned: default` as RFC 7643 §3.1
//!   says, so `attributes=userName` leaves it out and `excludedAttributes=meta` removes it.
//! - `returned: never` (`password`) is removed from every answer, even when named.
//! - Naming a complex attribute (`name`) keeps all of its sub-attributes; naming sub-attributes
//!   (`name.givenName`, `emails.value`) keeps only those, in every element of a multi-valued one.
//!   An extension URN on its own (`urn:…:enterprise:2.0:User`) names the whole extension.
//! - An extension object left empty is dropped, and `schemas` then lists the core URN plus the
//!   extension URNs whose objects remain.

use serde_json::{Map, Value};

use crate::scim::error::ScimError;
use crate::scim::schema::{AttrDef, Location, ResourceKind, Returned, SchemaRegistry};

/// A parsed attribute selection for one resource kind.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AttrSelection {
    mode: Mode,
}

#[derive(Debug, Clone, Default, PartialEq)]
enum Mode {
    /// Neither parameter: every attribute returned by default.
    #[default]
    Default,
    /// `attributes=`: only these, plus `returned: always`.
    Include(Vec<Sel>),
    /// `excludedAttributes=`: all but these (never the `returned: always` ones).
    Exclude(Vec<Sel>),
}

/// One resolved name from a selection list.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Sel {
    /// A whole extension object.
    Extension(&'static str),
    /// An attribute, or one sub-attribute of it.
    Attr {
        location: Location<'static>,
        key: &'static str,
        sub: Option<&'static str>,
    },
}

/// What a selection says about one top-level attribute.
enum Verdict {
    /// Leave it out.
    Drop,
    /// Keep it, minus sub-attributes that are never returned by default.
    Whole,
    /// Keep only these sub-attributes (and always-returned ones).
    Only(Vec<&'static str>),
    /// Keep it without these sub-attributes.
    Without(Vec<&'static str>),
}

// === impl AttrSelection ===

impl AttrSelection {
    /// Parse the raw query parameters (comma-separated, case-insensitive, URN-qualified or dotted).
    /// An empty or blank parameter counts as absent. Never fails today; the `Result` leaves room
    /// for refusing malformed names without changing callers.
    pub fn parse(
        attributes: Option<&str>,
        excluded: Option<&str>,
        kind: ResourceKind,
    ) -> Result<AttrSelection, ScimError> {
        Ok(match (present(attributes), present(excluded)) {
            (Some(list), _) => AttrSelection {
                mode: Mode::Include(resolve_list(list.split(','), kind)),
            },
            (None, Some(list)) => AttrSelection {
                mode: Mode::Exclude(resolve_list(list.split(','), kind)),
            },
            (None, None) => AttrSelection::default(),
        })
    }

    /// The same from lists of names, as a `SearchRequest` body carries them.
    pub fn from_lists(
        attributes: &[String],
        excluded: &[String],
        kind: ResourceKind,
    ) -> Result<AttrSelection, ScimError> {
        let names = |list: &[String]| {
            list.iter()
                .flat_map(|s| s.split(','))
                .filter(|s| !s.trim().is_empty())
                .count()
        };
        Ok(if names(attributes) > 0 {
            AttrSelection {
                mode: Mode::Include(resolve_list(
                    attributes.iter().flat_map(|s| s.split(',')),
                    kind,
                )),
            }
        } else if names(excluded) > 0 {
            AttrSelection {
                mode: Mode::Exclude(resolve_list(
                    excluded.iter().flat_map(|s| s.split(',')),
                    kind,
                )),
            }
        } else {
            AttrSelection::default()
        })
    }

    /// Neither parameter was given: projection only removes never-returned attributes.
    pub fn is_default(&self) -> bool {
        self.mode == Mode::Default
    }

    /// The resource as this selection and the schemas' `returned` characteristics allow.
    /// A non-object is returned unchanged.
    pub fn project(&self, resource: &Value, kind: ResourceKind) -> Value {
        let Some(obj) = resource.as_object() else {
            return resource.clone();
        };
        let registry = SchemaRegistry::get();
        let core = registry.core(kind);
        let mut out = Map::new();
        for (key, value) in obj {
            if key == "schemas" {
                continue;
            }
            if let Some(urn) = registry.extension_urn(kind, key) {
                let Some(ext_obj) = value.as_object() else {
                    continue;
                };
                let Some(schema) = registry.schema(urn) else {
                    continue;
                };
                let mut ext_out = Map::new();
                for (k, v) in ext_obj {
                    let kept = match schema.attr(k) {
                        Some(def) => self.project_attr(Location::Extension(urn), def, v),
                        None => self.keep_unknown().then(|| v.clone()),
                    };
                    if let Some(v) = kept {
                        ext_out.insert(k.clone(), v);
                    }
                }
                if !ext_out.is_empty() {
                    out.insert(urn.to_owned(), Value::Object(ext_out));
                }
                continue;
            }
            let kept = match core.attr(key) {
                Some(def) => self.project_attr(Location::Core, def, value),
                None => self.keep_unknown().then(|| value.clone()),
            };
            if let Some(v) = kept {
                out.insert(key.clone(), v);
            }
        }
        out.insert(
            "schemas".to_owned(),
            Value::Array(schemas_after(obj.get("schemas"), &out, kind)),
        );
        Value::Object(out)
    }

    /// Whether this selection leaves the core attribute `key` out whatever its value (so a caller may skip
    /// reading it at all: a group's members under `excludedAttributes=members`).
    pub fn drops_core(&self, kind: ResourceKind, key: &str) -> bool {
        key != "schemas"
            && SchemaRegistry::get()
                .core(kind)
                .attr(key)
                .is_some_and(|def| matches!(self.verdict(Location::Core, def), Verdict::Drop))
    }

    /// Whether a resource projected by this selection still carries `meta.version` (and so an answer
    /// carrying it may carry the `ETag` header that stands for it).
    pub fn keeps_meta_version(&self, kind: ResourceKind) -> bool {
        let probe = serde_json::json!({"meta": {"version": "v"}});
        self.project(&probe, kind)
            .pointer("/meta/version")
            .is_some()
    }

    /// Keys our schemas do not describe survive unless the client listed what it wants.
    fn keep_unknown(&self) -> bool {
        !matches!(self.mode, Mode::Include(_))
    }

    fn project_attr(
        &self,
        location: Location<'static>,
        def: &AttrDef,
        value: &Value,
    ) -> Option<Value> {
        let verdict = self.verdict(location, def);
        let named_subs: &[&str] = match &verdict {
            Verdict::Only(subs) => subs,
            _ => &[],
        };
        let keep_sub = |sub: &AttrDef| match sub.returned {
            Returned::Never => false,
            Returned::Always => true,
            Returned::Request => named_subs.contains(&sub.name.as_str()),
            Returned::Default => match &verdict {
                Verdict::Only(subs) => subs.contains(&sub.name.as_str()),
                Verdict::Without(subs) => !subs.contains(&sub.name.as_str()),
                _ => true,
            },
        };
        let keep_unknown_sub = !matches!(verdict, Verdict::Only(_));
        match verdict {
            Verdict::Drop => None,
            _ if !def.is_complex() => Some(value.clone()),
            _ => filter_subs(def, value, &keep_sub, keep_unknown_sub),
        }
    }

    fn verdict(&self, location: Location<'static>, def: &AttrDef) -> Verdict {
        if def.returned == Returned::Never {
            return Verdict::Drop;
        }
        let whole = |s: &Sel| match *s {
            Sel::Extension(urn) => location == Location::Extension(urn),
            Sel::Attr {
                location: l,
                key,
                sub: None,
            } => l == location && key == def.name,
            Sel::Attr { .. } => false,
        };
        let subs = |sels: &[Sel]| -> Vec<&'static str> {
            sels.iter()
                .filter_map(|s| match *s {
                    Sel::Attr {
                        location: l,
                        key,
                        sub: Some(sub),
                    } if l == location && key == def.name => Some(sub),
                    _ => None,
                })
                .collect()
        };
        match &self.mode {
            Mode::Default if def.returned == Returned::Request => Verdict::Drop,
            Mode::Default => Verdict::Whole,
            Mode::Include(_) if def.returned == Returned::Always => Verdict::Whole,
            Mode::Include(sels) if sels.iter().any(whole) => Verdict::Whole,
            Mode::Include(sels) => match subs(sels) {
                named if named.is_empty() => Verdict::Drop,
                named => Verdict::Only(named),
            },
            Mode::Exclude(_) if def.returned == Returned::Always => Verdict::Whole,
            Mode::Exclude(sels) if sels.iter().any(whole) => Verdict::Drop,
            Mode::Exclude(_) if def.returned == Returned::Request => Verdict::Drop,
            Mode::Exclude(sels) => Verdict::Without(subs(sels)),
        }
    }
}

/// Move the attributes the schemas mark `returned: request` (top-level and extension attributes) out of
/// `resource`, returning them as an object of the same shape, so the default representation can be served
/// without them while filters and `attributes=` still see the whole resource ([`merge_request_only`]).
/// Extension objects left empty go, with their URN in `schemas`.
pub fn split_request_only(resource: &mut Value, kind: ResourceKind) -> Option<Value> {
    let registry = SchemaRegistry::get();
    let obj = resource.as_object_mut()?;
    let mut extra = Map::new();
    for def in &registry.core(kind).attributes {
        if def.returned == Returned::Request
            && let Some(v) = obj.remove(&def.name)
        {
            extra.insert(def.name.clone(), v);
        }
    }
    for urn in kind.extension_urns() {
        let Some(schema) = registry.schema(urn) else {
            continue;
        };
        let Some(Value::Object(ext)) = obj.get_mut(*urn) else {
            continue;
        };
        let mut moved = Map::new();
        for def in &schema.attributes {
            if def.returned == Returned::Request
                && let Some(v) = ext.remove(&def.name)
            {
                moved.insert(def.name.clone(), v);
            }
        }
        if moved.is_empty() {
            continue;
        }
        if ext.is_empty() {
            obj.remove(*urn);
            if let Some(Value::Array(list)) = obj.get_mut("schemas") {
                list.retain(|u| u.as_str().is_none_or(|u| !u.eq_ignore_ascii_case(urn)));
            }
        }
        extra.insert((*urn).to_owned(), Value::Object(moved));
    }
    (!extra.is_empty()).then_some(Value::Object(extra))
}

/// Put back what [`split_request_only`] took out.
pub fn merge_request_only(resource: &mut Value, extra: &Value, kind: ResourceKind) {
    let (Some(obj), Some(extra)) = (resource.as_object_mut(), extra.as_object()) else {
        return;
    };
    for (key, v) in extra {
        match (obj.get_mut(key), v) {
            (Some(Value::Object(ext)), Value::Object(moved)) => {
                for (k, vv) in moved {
                    ext.insert(k.clone(), vv.clone());
                }
            }
            _ => {
                obj.insert(key.clone(), v.clone());
            }
        }
        if kind.extension_urns().contains(&key.as_str())
            && let Some(Value::Array(list)) = obj.get_mut("schemas")
            && !list
                .iter()
                .any(|u| u.as_str().is_some_and(|u| u.eq_ignore_ascii_case(key)))
        {
            list.push(Value::from(key.as_str()));
        }
    }
}

fn present(s: Option<&str>) -> Option<&str> {
    s.filter(|s| !s.trim().is_empty())
}

fn resolve_list<'a>(names: impl Iterator<Item = &'a str>, kind: ResourceKind) -> Vec<Sel> {
    let registry = SchemaRegistry::get();
    names
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .filter_map(|name| {
            if let Some(urn) = registry.extension_urn(kind, name) {
                return Some(Sel::Extension(urn));
            }
            let r = registry.resolve(kind, name)?;
            // `registry` is 'static, so are the names it hands out.
            Some(Sel::Attr {
                location: r.location,
                key: r.key(),
                sub: r.sub_key(),
            })
        })
        .collect()
}

/// Keep the sub-attributes `keep` allows in a complex value (each element of a multi-valued one);
/// elements left empty are dropped, and so is an attribute left with nothing.
fn filter_subs(
    def: &AttrDef,
    value: &Value,
    keep: &impl Fn(&AttrDef) -> bool,
    keep_unknown: bool,
) -> Option<Value> {
    let filter_obj = |o: &Map<String, Value>| -> Map<String, Value> {
        o.iter()
            .filter(|(k, _)| def.sub(k).map_or(keep_unknown, keep))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    };
    match value {
        Value::Object(o) => {
            let kept = filter_obj(o);
            (!kept.is_empty() || o.is_empty()).then_some(Value::Object(kept))
        }
        Value::Array(items) => {
            let kept: Vec<Value> = items
                .iter()
                .filter_map(|item| match item {
                    Value::Object(o) => {
                        let kept = filter_obj(o);
                        (!kept.is_empty()).then_some(Value::Object(kept))
                    }
                    other => Some(other.clone()),
                })
                .collect();
            (!kept.is_empty() || items.is_empty()).then_some(Value::Array(kept))
        }
        other => Some(other.clone()),
    }
}

/// `schemas` after projection: the core URN always, extension URNs only while their object remains,
/// other URNs as they were.
fn schemas_after(
    original: Option<&Value>,
    out: &Map<String, Value>,
    kind: ResourceKind,
) -> Vec<Value> {
    let registry = SchemaRegistry::get();
    let mut schemas: Vec<Value> = original
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|v| {
            let Some(urn) = v.as_str() else { return false };
            match registry.extension_urn(kind, urn) {
                Some(canonical) => out.contains_key(canonical),
                None => true,
            }
        })
        .cloned()
        .collect();
    if !schemas.iter().any(|v| {
        v.as_str()
            .is_some_and(|u| u.eq_ignore_ascii_case(kind.core_urn()))
    }) {
        schemas.insert(0, Value::from(kind.core_urn()));
    }
    for urn in kind.extension_urns() {
        if out.contains_key(*urn)
            && !schemas
                .iter()
                .any(|v| v.as_str().is_some_and(|u| u.eq_ignore_ascii_case(urn)))
        {
            schemas.push(Value::from(*urn));
        }
    }
    schemas
}

#[cfg(test)]
mod tests;
