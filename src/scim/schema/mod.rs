//! The schemas this service provider serves, loaded once from `schemas/*.json`, and attribute-path
//! resolution against them.
//!
//! Owns: [`ResourceKind`], the attribute characteristics of RFC 7643 §7 ([`AttrDef`]) and
//! [`SchemaRegistry::resolve`], which turns any spelling a client uses (`userName`, `USERNAME`,
//! `name.givenName`, `urn:…:enterprise:2.0:User:manager.value`, `meta.lastModified`) into the
//! canonical attribute definition and where it sits in a resource. Knows nothing of JumpCloud: the
//! JumpCloud extension schemas are SCIM documents like the others.
//!
//! Resource layout the rest of `scim::*` relies on: core and common attributes sit at the top level
//! under their canonical (schema) spelling, extension attributes sit in an object keyed by the
//! extension's URN, and `schemas` lists the URNs present.

use std::sync::LazyLock;

use scim_v2::filter::AttrPath;
use serde::Deserialize;
use serde_json::{Map, Value};

/// Core User schema URN.
pub const USER_URN: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
/// Core Group schema URN.
pub const GROUP_URN: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
/// Enterprise User extension URN (RFC 7643 §4.3).
pub const ENTERPRISE_USER_URN: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
/// This service's User extension URN (directory account state, all readOnly).
pub const JUMPCLOUD_USER_URN: &str = "urn:jumpcloud-scim:schemas:extension:jumpcloud:2.0:User";
/// This service's Group extension URN (`groupType`, `description`).
pub const JUMPCLOUD_GROUP_URN: &str = "urn:jumpcloud-scim:schemas:extension:jumpcloud:2.0:Group";

const USER_JSON: &str = include_str!("../../../schemas/User.json");
const GROUP_JSON: &str = include_str!("../../../schemas/Group.json");
const ENTERPRISE_USER_JSON: &str = include_str!("../../../schemas/EnterpriseUser.json");
const JUMPCLOUD_USER_JSON: &str = include_str!("../../../schemas/JumpCloudUser.json");
const JUMPCLOUD_GROUP_JSON: &str = include_str!("../../../schemas/JumpCloudGroup.json");
const RESOURCE_TYPES_JSON: &str = include_str!("../../../schemas/ResourceTypes.json");
const SERVICE_PROVIDER_CONFIG_JSON: &str =
    include_str!("../../../schemas/ServiceProviderConfig.json");

/// The two resource types this service provider offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResourceKind {
    /// `/Users`, schema [`USER_URN`].
    User,
    /// `/Groups`, schema [`GROUP_URN`].
    Group,
}

// === impl ResourceKind ===

impl ResourceKind {
    /// Both kinds, in the order discovery lists them.
    pub const ALL: [ResourceKind; 2] = [ResourceKind::User, ResourceKind::Group];

    /// The resource type name (`meta.resourceType`, `/ResourceTypes/{name}`).
    pub fn name(self) -> &'static str {
        match self {
            ResourceKind::User => "User",
            ResourceKind::Group => "Group",
        }
    }

    /// The endpoint relative to the SCIM base URL, e.g. `/Users`.
    pub fn endpoint(self) -> &'static str {
        match self {
            ResourceKind::User => "/Users",
            ResourceKind::Group => "/Groups",
        }
    }

    /// The core schema URN.
    pub fn core_urn(self) -> &'static str {
        match self {
            ResourceKind::User => USER_URN,
            ResourceKind::Group => GROUP_URN,
        }
    }

    /// The extension schema URNs a resource of this kind may carry.
    pub fn extension_urns(self) -> &'static [&'static str] {
        match self {
            ResourceKind::User => &[ENTERPRISE_USER_URN, JUMPCLOUD_USER_URN],
            ResourceKind::Group => &[JUMPCLOUD_GROUP_URN],
        }
    }

    /// The kind whose name is `name` (case-insensitive).
    pub fn from_name(name: &str) -> Option<ResourceKind> {
        ResourceKind::ALL
            .into_iter()
            .find(|k| k.name().eq_ignore_ascii_case(name))
    }
}

/// RFC 7643 §2.3 data types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum AttrType {
    /// `string`
    String,
    /// `boolean`
    Boolean,
    /// `decimal`
    Decimal,
    /// `integer`
    Integer,
    /// `dateTime`
    DateTime,
    /// `binary`
    Binary,
    /// `reference`
    Reference,
    /// `complex`
    Complex,
}

/// RFC 7643 §7 `mutability`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Mutability {
    /// Set by the service provider only.
    ReadOnly,
    /// Clients may set and change it.
    ReadWrite,
    /// Set on create or replace, never changed afterwards.
    Immutable,
    /// Clients may set it; never returned.
    WriteOnly,
}

/// RFC 7643 §7 `returned`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Returned {
    /// Whatever `attributes`/`excludedAttributes` say.
    Always,
    /// Not even when asked for.
    Never,
    /// Unless `attributes` leaves it out or `excludedAttributes` names it.
    Default,
    /// Only when `attributes` names it.
    Request,
}

/// RFC 7643 §7 `uniqueness`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Uniqueness {
    /// No uniqueness.
    None,
    /// Unique among this service provider's resources.
    Server,
    /// Globally unique.
    Global,
}

/// One attribute definition with all RFC 7643 §7 characteristics; the defaults are §2.2's.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AttrDef {
    /// Canonical spelling, which is also the JSON key in resources.
    pub name: String,
    /// Data type.
    #[serde(rename = "type", default = "default_type")]
    pub attr_type: AttrType,
    /// Plurality.
    #[serde(default)]
    pub multi_valued: bool,
    /// Human-readable description.
    #[serde(default)]
    pub description: String,
    /// Required on create/replace.
    #[serde(default)]
    pub required: bool,
    /// String comparisons (filters, sorting) respect case.
    #[serde(default)]
    pub case_exact: bool,
    /// Who may change it.
    #[serde(default = "default_mutability")]
    pub mutability: Mutability,
    /// When it is returned.
    #[serde(default = "default_returned")]
    pub returned: Returned,
    /// Uniqueness the service provider enforces.
    #[serde(default = "default_uniqueness")]
    pub uniqueness: Uniqueness,
    /// Suggested values.
    #[serde(default)]
    pub canonical_values: Vec<String>,
    /// Resource types a reference may point at.
    #[serde(default)]
    pub reference_types: Vec<String>,
    /// Sub-attributes of a complex attribute.
    #[serde(default)]
    pub sub_attributes: Vec<AttrDef>,
}

fn default_type() -> AttrType {
    AttrType::String
}
fn default_mutability() -> Mutability {
    Mutability::ReadWrite
}
fn default_returned() -> Returned {
    Returned::Default
}
fn default_uniqueness() -> Uniqueness {
    Uniqueness::None
}

// === impl AttrDef ===

impl AttrDef {
    /// The sub-attribute named `name` (case-insensitive).
    pub fn sub(&self, name: &str) -> Option<&AttrDef> {
        self.sub_attributes
            .iter()
            .find(|a| a.name.eq_ignore_ascii_case(name))
    }

    /// Complex type.
    pub fn is_complex(&self) -> bool {
        self.attr_type == AttrType::Complex
    }
}

/// A Schema resource (RFC 7643 §7) as this service provider defines it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct SchemaDef {
    /// The schema URN.
    pub id: String,
    /// Short name, e.g. `User`.
    pub name: String,
    /// Human-readable description.
    #[serde(default)]
    pub description: String,
    /// Top-level attributes.
    pub attributes: Vec<AttrDef>,
}

// === impl SchemaDef ===

impl SchemaDef {
    /// The top-level attribute named `name` (case-insensitive).
    pub fn attr(&self, name: &str) -> Option<&AttrDef> {
        self.attributes
            .iter()
            .find(|a| a.name.eq_ignore_ascii_case(name))
    }
}

/// Where an attribute lives in a resource object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Location<'a> {
    /// Top level: core and common attributes.
    Core,
    /// Inside the object keyed by this extension URN (canonical spelling).
    Extension(&'a str),
}

/// An attribute path resolved against a resource kind's schemas.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ResolvedAttr<'a> {
    /// Top level or inside an extension object.
    pub location: Location<'a>,
    /// The top-level attribute (`name` for `name.givenName`).
    pub attr: &'a AttrDef,
    /// The sub-attribute, when the path names one.
    pub sub: Option<&'a AttrDef>,
}

// === impl ResolvedAttr ===

impl<'a> ResolvedAttr<'a> {
    /// The definition the path ends at: the sub-attribute if any, else the attribute.
    pub fn def(&self) -> &'a AttrDef {
        self.sub.unwrap_or(self.attr)
    }

    /// Canonical JSON key of the top-level attribute.
    pub fn key(&self) -> &'a str {
        &self.attr.name
    }

    /// Canonical JSON key of the sub-attribute.
    pub fn sub_key(&self) -> Option<&'a str> {
        self.sub.map(|s| s.name.as_str())
    }

    /// The object holding the attribute: the resource itself or its extension object.
    pub fn container<'v>(&self, resource: &'v Value) -> Option<&'v Map<String, Value>> {
        let root = resource.as_object()?;
        match self.location {
            Location::Core => Some(root),
            Location::Extension(urn) => root.get(urn)?.as_object(),
        }
    }

    /// The value of the top-level attribute in `resource` (not descending into the sub-attribute).
    pub fn get<'v>(&self, resource: &'v Value) -> Option<&'v Value> {
        self.container(resource)?.get(self.key())
    }

    /// The canonical full path, URN-qualified for extension attributes
    /// (`urn:…:enterprise:2.0:User:manager.value`, `name.givenName`).
    pub fn path(&self) -> String {
        let mut out = String::new();
        if let Location::Extension(urn) = self.location {
            out.push_str(urn);
            out.push(':');
        }
        out.push_str(self.key());
        if let Some(sub) = self.sub_key() {
            out.push('.');
            out.push_str(sub);
        }
        out
    }
}

/// Everything `schemas/` declares, parsed once.
#[derive(Debug)]
pub struct SchemaRegistry {
    schemas: Vec<SchemaDef>,
    schema_docs: Vec<Value>,
    resource_types: Vec<Value>,
    service_provider_config: Value,
    /// The `schemas` attribute every resource carries (RFC 7643 §3): not in any schema document.
    schemas_attr: AttrDef,
}

static REGISTRY: LazyLock<SchemaRegistry> = LazyLock::new(SchemaRegistry::load);

// === impl SchemaRegistry ===

impl SchemaRegistry {
    /// The process-wide registry (parsed on first use from the embedded documents).
    pub fn get() -> &'static SchemaRegistry {
        &REGISTRY
    }

    fn load() -> SchemaRegistry {
        let docs = [
            ("User.json", USER_JSON),
            ("Group.json", GROUP_JSON),
            ("EnterpriseUser.json", ENTERPRISE_USER_JSON),
            ("JumpCloudUser.json", JUMPCLOUD_USER_JSON),
            ("JumpCloudGroup.json", JUMPCLOUD_GROUP_JSON),
        ];
        let mut schemas = Vec::with_capacity(docs.len());
        let mut schema_docs = Vec::with_capacity(docs.len());
        for (file, text) in docs {
            // The documents are compiled in and covered by tests: a parse failure is a build defect.
            let doc: Value = serde_json::from_str(text)
                .unwrap_or_else(|e| panic!("schemas/{file} is not JSON: {e}"));
            let def: SchemaDef = serde_json::from_value(doc.clone())
                .unwrap_or_else(|e| panic!("schemas/{file} is not a Schema resource: {e}"));
            schemas.push(def);
            schema_docs.push(doc);
        }
        let resource_types = serde_json::from_str(RESOURCE_TYPES_JSON)
            .unwrap_or_else(|e| panic!("schemas/ResourceTypes.json is not a JSON array: {e}"));
        let service_provider_config = serde_json::from_str(SERVICE_PROVIDER_CONFIG_JSON)
            .unwrap_or_else(|e| panic!("schemas/ServiceProviderConfig.json is not JSON: {e}"));
        let schemas_attr = AttrDef {
            name: "schemas".to_owned(),
            attr_type: AttrType::Reference,
            multi_valued: true,
            description: "The schema URNs the resource's attributes belong to.".to_owned(),
            required: true,
            case_exact: false,
            mutability: Mutability::ReadOnly,
            returned: Returned::Always,
            uniqueness: Uniqueness::None,
            canonical_values: Vec::new(),
            reference_types: vec!["uri".to_owned()],
            sub_attributes: Vec::new(),
        };
        SchemaRegistry {
            schemas,
            schema_docs,
            resource_types,
            service_provider_config,
            schemas_attr,
        }
    }

    /// Every schema, in discovery order (User, Group, EnterpriseUser, JumpCloudUser, JumpCloudGroup).
    pub fn schemas(&self) -> &[SchemaDef] {
        &self.schemas
    }

    /// The schema with this URN (case-insensitive).
    pub fn schema(&self, urn: &str) -> Option<&SchemaDef> {
        self.schemas.iter().find(|s| s.id.eq_ignore_ascii_case(urn))
    }

    /// The core schema of `kind`.
    pub fn core(&self, kind: ResourceKind) -> &SchemaDef {
        self.schema(kind.core_urn())
            .expect("core schema is embedded")
    }

    /// The raw Schema documents (without `meta`), in [`SchemaRegistry::schemas`] order.
    pub fn schema_documents(&self) -> &[Value] {
        &self.schema_docs
    }

    /// The raw ResourceType documents (without `meta`).
    pub fn resource_type_documents(&self) -> &[Value] {
        &self.resource_types
    }

    /// The raw ServiceProviderConfig document (without `meta`).
    pub fn service_provider_config_document(&self) -> &Value {
        &self.service_provider_config
    }

    /// The definition of the `schemas` attribute (multi-valued reference, returned always).
    pub fn schemas_attr(&self) -> &AttrDef {
        &self.schemas_attr
    }

    /// The canonical spelling of `name` if it is one of `kind`'s extension URNs (case-insensitive).
    pub fn extension_urn(&self, kind: ResourceKind, name: &str) -> Option<&'static str> {
        kind.extension_urns()
            .iter()
            .copied()
            .find(|u| u.eq_ignore_ascii_case(name))
    }

    /// The schemas a resource of `kind` may use, core first.
    fn schemas_of(
        &self,
        kind: ResourceKind,
    ) -> impl Iterator<Item = (Location<'static>, &SchemaDef)> {
        std::iter::once((Location::Core, self.core(kind))).chain(
            kind.extension_urns()
                .iter()
                .filter_map(|urn| Some((Location::Extension(urn), self.schema(urn)?))),
        )
    }

    /// Resolve an attribute path written in RFC 7644 §3.10 notation, case-insensitively:
    /// `userName`, `name.givenName`, `emails.value`, `meta.lastModified`, `schemas`, or
    /// URN-qualified (`urn:ietf:params:scim:schemas:core:2.0:User:userName`,
    /// `urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value`).
    ///
    /// An unqualified name is looked up in the core schema first, then in each extension in turn,
    /// so `employeeNumber` finds the enterprise attribute. `None` for an unknown attribute,
    /// sub-attribute or URN, or for a path with more than one `.`.
    pub fn resolve(&self, kind: ResourceKind, path: &str) -> Option<ResolvedAttr<'_>> {
        let path = path.trim();
        if has_prefix_ignore_case(path, "urn:") {
            for (location, schema) in self.schemas_of(kind) {
                let Some(rest) = strip_prefix_ignore_case(path, &schema.id) else {
                    continue;
                };
                let Some(rest) = rest.strip_prefix(':') else {
                    continue;
                };
                let (name, sub) = split_sub(rest)?;
                return self.resolve_in(location, schema, name, sub);
            }
            return None;
        }
        let (name, sub) = split_sub(path)?;
        self.resolve_parts(kind, None, name, sub)
    }

    /// Resolve a path already split by the filter parser (`uri`, `name`, `sub_attr`).
    pub fn resolve_parts(
        &self,
        kind: ResourceKind,
        uri: Option<&str>,
        name: &str,
        sub: Option<&str>,
    ) -> Option<ResolvedAttr<'_>> {
        if let Some(uri) = uri {
            let (location, schema) = self
                .schemas_of(kind)
                .find(|(_, s)| s.id.eq_ignore_ascii_case(uri))?;
            return self.resolve_in(location, schema, name, sub);
        }
        if name.eq_ignore_ascii_case("schemas") {
            return sub.is_none().then_some(ResolvedAttr {
                location: Location::Core,
                attr: &self.schemas_attr,
                sub: None,
            });
        }
        self.schemas_of(kind)
            .find(|(_, s)| s.attr(name).is_some())
            .and_then(|(location, schema)| self.resolve_in(location, schema, name, sub))
    }

    /// Resolve a scim_v2 [`AttrPath`].
    pub fn resolve_attr_path(
        &self,
        kind: ResourceKind,
        path: &AttrPath,
    ) -> Option<ResolvedAttr<'_>> {
        self.resolve_parts(
            kind,
            path.uri.as_deref(),
            &path.name,
            path.sub_attr.as_deref(),
        )
    }

    fn resolve_in<'a>(
        &'a self,
        location: Location<'static>,
        schema: &'a SchemaDef,
        name: &str,
        sub: Option<&str>,
    ) -> Option<ResolvedAttr<'a>> {
        let attr = schema.attr(name)?;
        let sub = match sub {
            Some(sub) => Some(attr.sub(sub)?),
            None => None,
        };
        Some(ResolvedAttr {
            location,
            attr,
            sub,
        })
    }
}

/// `name` or `name.sub`; `None` for an empty segment or a second `.`.
fn split_sub(path: &str) -> Option<(&str, Option<&str>)> {
    match path.split_once('.') {
        None if !path.is_empty() => Some((path, None)),
        Some((name, sub)) if !name.is_empty() && !sub.is_empty() && !sub.contains('.') => {
            Some((name, Some(sub)))
        }
        _ => None,
    }
}

/// ASCII case-insensitive `starts_with`.
pub(crate) fn has_prefix_ignore_case(s: &str, prefix: &str) -> bool {
    s.len() >= prefix.len() && s.as_bytes()[..prefix.len()].eq_ignore_ascii_case(prefix.as_bytes())
}

/// ASCII case-insensitive `strip_prefix`.
pub(crate) fn strip_prefix_ignore_case<'s>(s: &'s str, prefix: &str) -> Option<&'s str> {
    if has_prefix_ignore_case(s, prefix) {
        s.get(prefix.len()..)
    } else {
        None
    }
}

#[cfg(test)]
mod tests;
