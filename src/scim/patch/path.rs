//! Resolving an operation's `path` against the schemas: an extension URN names the whole extension
//! object; `name`, `name.sub` and URN-qualified names name an attribute or sub-attribute; `name[filter]`
//! (optionally `.sub`) names the elements a value filter selects. The grammar is `scim_v2`'s
//! `PatchPath`; names it cannot spell but RFC 7643 can (`manager.$ref`) go to the registry directly.
//!
//! Owns [`Target`], [`PathTarget`] and [`Selector`]. Must not know operations or values: it says what
//! a path names, not what is done there.

use scim_v2::filter::{PatchPath, ValFilter};

use crate::scim::error::{ScimError, excerpt};
use crate::scim::filter::ElementFilter;
use crate::scim::schema::{AttrDef, Location, ResourceKind, SchemaRegistry};

/// What an operation's path names.
#[derive(Debug, Clone)]
pub(super) enum Target {
    /// No path: the resource itself.
    Resource,
    /// A whole extension object, named by its URN.
    Extension(&'static str),
    /// An attribute, a sub-attribute, or filtered elements of one.
    Path(Box<PathTarget>),
}

/// An attribute, optionally one sub-attribute of it, optionally only the elements a filter selects.
#[derive(Debug, Clone)]
pub(super) struct PathTarget {
    pub(super) location: Location<'static>,
    pub(super) attr: &'static AttrDef,
    pub(super) sub: Option<&'static AttrDef>,
    pub(super) filter: Option<Selector>,
    /// The path as the client wrote it, for error details.
    pub(super) text: String,
}

/// A value filter, compiled for matching elements and kept as written for reading its terms.
#[derive(Debug, Clone)]
pub(super) struct Selector {
    pub(super) compiled: ElementFilter,
    pub(super) ast: ValFilter,
}

/// Read a path; `Ok(None)` when it is well formed but names nothing the schemas define.
pub(super) fn parse_target(raw: &str, kind: ResourceKind) -> Result<Option<Target>, ScimError> {
    let registry = SchemaRegistry::get();
    let raw = raw.trim();
    if let Some(urn) = registry.extension_urn(kind, raw) {
        return Ok(Some(Target::Extension(urn)));
    }
    let parsed = match raw.parse::<PatchPath>() {
        Ok(p) => p,
        // Names the filter grammar cannot spell but RFC 7643 can (`manager.$ref`).
        Err(_) if !raw.contains('[') && registry.resolve(kind, raw).is_some() => {
            let r = registry.resolve(kind, raw).expect("checked");
            return Ok(Some(Target::Path(Box::new(PathTarget {
                location: r.location,
                attr: r.attr,
                sub: r.sub,
                filter: None,
                text: raw.to_owned(),
            }))));
        }
        Err(e) => {
            return Err(ScimError::invalid_path(format!(
                "{} is not a valid path: {e}",
                excerpt(raw)
            )));
        }
    };
    let target = match parsed {
        PatchPath::Attr(path) => registry.resolve_attr_path(kind, &path).map(|r| PathTarget {
            location: r.location,
            attr: r.attr,
            sub: r.sub,
            filter: None,
            text: raw.to_owned(),
        }),
        PatchPath::Value(vp) => {
            let Some(r) = registry.resolve_attr_path(kind, &vp.attr) else {
                return Ok(None);
            };
            if r.sub.is_some() || !r.attr.is_complex() {
                return Err(ScimError::invalid_path(format!(
                    "{}: '{}' has no sub-attributes to select with [...]",
                    excerpt(raw),
                    vp.attr
                )));
            }
            let sub = match vp.sub_attr.as_deref() {
                Some(name) => match r.attr.sub(name) {
                    Some(sub) => Some(sub),
                    None => return Ok(None),
                },
                None => None,
            };
            let compiled = ElementFilter::new(&vp.filter, r.attr)
                .map_err(|e| ScimError::invalid_path(format!("{}: {}", excerpt(raw), e.detail)))?;
            Some(PathTarget {
                location: r.location,
                attr: r.attr,
                sub,
                filter: Some(Selector {
                    compiled,
                    ast: vp.filter,
                }),
                text: raw.to_owned(),
            })
        }
    };
    Ok(target.map(|t| Target::Path(Box::new(t))))
}
