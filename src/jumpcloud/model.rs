//! JumpCloud's wire objects: v1 system users, v2 user groups, directories, graph edges, and the bodies we send.
//!
//! Reading is lenient: unknown fields are ignored, `null` stands for "empty" in strings, arrays and flags, numbers
//! may arrive as strings, and a v1 user's id is taken from `_id` or `id`. A field JumpCloud adds or nulls must not
//! fail a whole page of users. Writing is exact: a field absent from a write body is not sent at all, so a v1
//! `PUT` (a top-level merge) leaves it alone.
//!
//! These types are shaped for JSON (`deserialize_any` is used for leniency); they are not a storage format.
//! Must not know SCIM: mapping to and from SCIM resources lives elsewhere.

use serde::{Deserialize, Deserializer, Serialize};

/// Values of [`JcUser::state`] (and [`JcUserWrite::state`]; a `PUT` accepts only `ACTIVATED` and `SUSPENDED`).
pub mod state {
    pub const STAGED: &str = "STAGED";
    pub const ACTIVATED: &str = "ACTIVATED";
    pub const SUSPENDED: &str = "SUSPENDED";
}

// === lenient readers ===

/// `null` (or a missing field, together with `#[serde(default)]`) becomes the type's default.
fn null_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// A number, a numeric string, or anything else (which reads as absent rather than failing the object).
fn lenient_u64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    Ok(match Option::<serde_json::Value>::deserialize(d)? {
        Some(serde_json::Value::Number(n)) => n.as_u64(),
        Some(serde_json::Value::String(s)) => s.trim().parse().ok(),
        _ => None,
    })
}

/// Custom attribute values are strings on the wire, but older objects carry numbers and booleans.
fn stringify<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(match Option::<serde_json::Value>::deserialize(d)? {
        None | Some(serde_json::Value::Null) => String::new(),
        Some(serde_json::Value::String(s)) => s,
        Some(other) => other.to_string(),
    })
}

/// An object, or nothing (JumpCloud sends `null` for "no attributes").
fn lenient_object<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<serde_json::Map<String, serde_json::Value>>, D::Error> {
    Ok(match Option::<serde_json::Value>::deserialize(d)? {
        Some(serde_json::Value::Object(map)) => Some(map),
        _ => None,
    })
}

// === users ===

/// A v1 system user as JumpCloud returns it (facts sheet §2.2), reduced to what a directory bridge needs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Default)]
#[serde(from = "JcUserWire")]
pub struct JcUser {
    /// The ObjectId, from `_id` (v1) or `id` (both are sent and agree).
    #[serde(rename = "_id")]
    pub id: String,
    pub username: String,
    pub email: String,
    pub firstname: Option<String>,
    pub middlename: Option<String>,
    pub lastname: Option<String>,
    pub displayname: Option<String>,
    #[serde(rename = "alternateEmail")]
    pub alternate_email: Option<String>,
    /// `STAGED`, `ACTIVATED` or `SUSPENDED` (see [`state`]); absent from some default field sets.
    pub state: Option<String>,
    pub suspended: bool,
    /// The password has been set; not the lifecycle state.
    pub activated: bool,
    pub account_locked: bool,
    pub password_expired: bool,
    #[serde(rename = "employeeIdentifier")]
    pub employee_identifier: Option<String>,
    #[serde(rename = "jobTitle")]
    pub job_title: Option<String>,
    pub department: Option<String>,
    #[serde(rename = "costCenter")]
    pub cost_center: Option<String>,
    pub company: Option<String>,
    #[serde(rename = "employeeType")]
    pub employee_type: Option<String>,
    pub location: Option<String>,
    pub description: Option<String>,
    /// The manager's user id.
    pub manager: Option<String>,
    #[serde(rename = "phoneNumbers")]
    pub phone_numbers: Vec<JcPhoneNumber>,
    pub addresses: Vec<JcAddress>,
    pub attributes: Vec<JcAttribute>,
    pub mfa: Option<JcMfa>,
    /// `{id, roleName, roleNames}` when the user is also an administrator.
    pub admin: Option<serde_json::Value>,
    /// Fields owned by an external authority (AD, an IdP, SCIM); writes to them are refused or overwritten.
    #[serde(rename = "restrictedFields")]
    pub restricted_fields: Vec<JcRestrictedField>,
    /// ISO-8601; the only timestamp a user carries.
    pub created: Option<String>,
    pub unix_uid: Option<u64>,
}

/// The reading side of [`JcUser`]: kept apart so `_id` and `id` can both be present without a duplicate-field
/// error, and so every field is lenient.
#[derive(Deserialize, Default)]
#[serde(default)]
struct JcUserWire {
    #[serde(rename = "_id")]
    underscore_id: Option<String>,
    id: Option<String>,
    #[serde(deserialize_with = "null_default")]
    username: String,
    #[serde(deserialize_with = "null_default")]
    email: String,
    firstname: Option<String>,
    middlename: Option<String>,
    lastname: Option<String>,
    displayname: Option<String>,
    #[serde(rename = "alternateEmail")]
    alternate_email: Option<String>,
    state: Option<String>,
    #[serde(deserialize_with = "null_default")]
    suspended: bool,
    #[serde(deserialize_with = "null_default")]
    activated: bool,
    #[serde(deserialize_with = "null_default")]
    account_locked: bool,
    #[serde(deserialize_with = "null_default")]
    password_expired: bool,
    #[serde(rename = "employeeIdentifier")]
    employee_identifier: Option<String>,
    #[serde(rename = "jobTitle")]
    job_title: Option<String>,
    department: Option<String>,
    #[serde(rename = "costCenter")]
    cost_center: Option<String>,
    company: Option<String>,
    #[serde(rename = "employeeType")]
    employee_type: Option<String>,
    location: Option<String>,
    description: Option<String>,
    manager: Option<String>,
    #[serde(rename = "phoneNumbers", deserialize_with = "null_default")]
    phone_numbers: Vec<JcPhoneNumber>,
    #[serde(deserialize_with = "null_default")]
    addresses: Vec<JcAddress>,
    #[serde(deserialize_with = "null_default")]
    attributes: Vec<JcAttribute>,
    mfa: Option<JcMfa>,
    admin: Option<serde_json::Value>,
    #[serde(rename = "restrictedFields", deserialize_with = "null_default")]
    restricted_fields: Vec<JcRestrictedField>,
    created: Option<String>,
    #[serde(deserialize_with = "lenient_u64")]
    unix_uid: Option<u64>,
}

impl From<JcUserWire> for JcUser {
    fn from(w: JcUserWire) -> Self {
        JcUser {
            id: w.underscore_id.or(w.id).unwrap_or_default(),
            username: w.username,
            email: w.email,
            firstname: w.firstname,
            middlename: w.middlename,
            lastname: w.lastname,
            displayname: w.displayname,
            alternate_email: w.alternate_email,
            state: w.state,
            suspended: w.suspended,
            activated: w.activated,
            account_locked: w.account_locked,
            password_expired: w.password_expired,
            employee_identifier: w.employee_identifier,
            job_title: w.job_title,
            department: w.department,
            cost_center: w.cost_center,
            company: w.company,
            employee_type: w.employee_type,
            location: w.location,
            description: w.description,
            manager: w.manager,
            phone_numbers: w.phone_numbers,
            addresses: w.addresses,
            attributes: w.attributes,
            mfa: w.mfa,
            admin: w.admin.filter(|a| !a.is_null()),
            restricted_fields: w.restricted_fields,
            created: w.created,
            unix_uid: w.unix_uid,
        }
    }
}

/// `phoneNumbers[]`: `type` is free text (`work`, `mobile`, `home`, …). Also used in write bodies, where a
/// missing `id` is simply not sent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct JcPhoneNumber {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub number: Option<String>,
}

/// `addresses[]`; the same names SCIM uses, plus `poBox` and `extendedAddress`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
pub struct JcAddress {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub po_box: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub extended_address: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub street_address: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub locality: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub postal_code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
}

/// A custom attribute. `value` is always text here: non-string JSON values are kept as their JSON text.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct JcAttribute {
    #[serde(deserialize_with = "null_default")]
    pub name: String,
    #[serde(deserialize_with = "stringify")]
    pub value: String,
}

/// `mfa`: whether the user has enrolled, and any enrolment grace period.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
pub struct JcMfa {
    #[serde(deserialize_with = "null_default")]
    pub configured: bool,
    #[serde(deserialize_with = "null_default")]
    pub exclusion: bool,
    #[serde(deserialize_with = "lenient_u64")]
    pub exclusion_days: Option<u64>,
    pub exclusion_until: Option<String>,
}

/// `restrictedFields[]`: `field` is owned by the authority `type`/`id` (e.g. `active_directory`, `scim`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct JcRestrictedField {
    #[serde(deserialize_with = "null_default")]
    pub field: String,
    pub id: Option<String>,
    #[serde(rename = "type")]
    pub kind: Option<String>,
}

/// Body of `POST /api/systemusers` (create) and `PUT /api/systemusers/{id}` (top-level merge).
///
/// Every field left `None` is not serialized, so an update touches only what it names. Profile strings are
/// `Option<Option<String>>`: `Some(None)` sends `null` (clear), `Some(Some(""))` sends `""` (also clear, for
/// fields where JumpCloud may refuse `null`), `Some(Some(v))` sets. Arrays (`phoneNumbers`, `addresses`,
/// `attributes`) replace JumpCloud's whole array; `Some(vec![])` empties it.
///
/// `Debug` never shows the password.
#[derive(Clone, PartialEq, Serialize, Default)]
pub struct JcUserWrite {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Write-only; JumpCloud never returns it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    /// See [`state`]. Keep `suspended` consistent with it: JumpCloud treats a contradiction as an error.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub suspended: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub firstname: Option<Option<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub middlename: Option<Option<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lastname: Option<Option<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub displayname: Option<Option<String>>,
    #[serde(rename = "alternateEmail", skip_serializing_if = "Option::is_none")]
    pub alternate_email: Option<Option<String>>,
    /// Unique per user: clear it with `null`, since two users holding `""` may collide.
    #[serde(rename = "employeeIdentifier", skip_serializing_if = "Option::is_none")]
    pub employee_identifier: Option<Option<String>>,
    #[serde(rename = "jobTitle", skip_serializing_if = "Option::is_none")]
    pub job_title: Option<Option<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub department: Option<Option<String>>,
    #[serde(rename = "costCenter", skip_serializing_if = "Option::is_none")]
    pub cost_center: Option<Option<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub company: Option<Option<String>>,
    #[serde(rename = "employeeType", skip_serializing_if = "Option::is_none")]
    pub employee_type: Option<Option<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<Option<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<Option<String>>,
    /// The manager's user id; `Some(None)` removes the manager.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub manager: Option<Option<String>>,
    #[serde(rename = "phoneNumbers", skip_serializing_if = "Option::is_none")]
    pub phone_numbers: Option<Vec<JcPhoneNumber>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub addresses: Option<Vec<JcAddress>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attributes: Option<Vec<JcAttribute>>,
}

impl std::fmt::Debug for JcUserWrite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JcUserWrite")
            .field("username", &self.username)
            .field("email", &self.email)
            .field("password", &self.password.as_ref().map(|_| "[redacted]"))
            .field("state", &self.state)
            .field("suspended", &self.suspended)
            .field("firstname", &self.firstname)
            .field("middlename", &self.middlename)
            .field("lastname", &self.lastname)
            .field("displayname", &self.displayname)
            .field("alternate_email", &self.alternate_email)
            .field("employee_identifier", &self.employee_identifier)
            .field("job_title", &self.job_title)
            .field("department", &self.department)
            .field("cost_center", &self.cost_center)
            .field("company", &self.company)
            .field("employee_type", &self.employee_type)
            .field("location", &self.location)
            .field("description", &self.description)
            .field("manager", &self.manager)
            .field("phone_numbers", &self.phone_numbers)
            .field("addresses", &self.addresses)
            .field("attributes", &self.attributes)
            .finish()
    }
}

// === groups ===

/// A v2 user group (facts sheet §3.2). `description` and `email` arrive as `""` when unset.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct JcGroup {
    #[serde(deserialize_with = "null_default")]
    pub id: String,
    #[serde(deserialize_with = "null_default")]
    pub name: String,
    pub description: Option<String>,
    pub email: Option<String>,
    /// Free-form (`sudo`, `ldapGroups`, `posixGroups`, `radius`, custom keys); `null` on most groups.
    #[serde(deserialize_with = "lenient_object")]
    pub attributes: Option<serde_json::Map<String, serde_json::Value>>,
    /// `NOTSET`, `STATIC`, `DYNAMIC_REVIEW_REQUIRED`, `DYNAMIC_AUTOMATED`: dynamic groups manage their own members.
    #[serde(rename = "membershipMethod")]
    pub membership_method: Option<String>,
}

/// Body of `POST /api/v2/usergroups` and `PUT /api/v2/usergroups/{id}`. A `PUT` is a full replace on JumpCloud:
/// what is `None` here is cleared there, so read-modify-write from a full [`JcGroup`].
#[derive(Clone, Debug, PartialEq, Serialize, Default)]
pub struct JcGroupWrite {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attributes: Option<serde_json::Map<String, serde_json::Value>>,
}

impl From<&JcGroup> for JcGroupWrite {
    /// The write body that leaves `group` as it is: the starting point for a `PUT`.
    fn from(group: &JcGroup) -> Self {
        JcGroupWrite {
            name: group.name.clone(),
            description: group.description.clone(),
            attributes: group.attributes.clone(),
        }
    }
}

// === directories and the graph ===

/// `type` of a `/api/v2/directories` entry. Only the first three have user/group associations we manage.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum JcDirectoryKind {
    /// `active_directory`
    ActiveDirectory,
    /// `g_suite` (Google Workspace)
    GSuite,
    /// `office_365` (Microsoft 365)
    Office365,
    /// `ldap_server`, `workday`, or anything newer, kept verbatim.
    Other(String),
}

impl JcDirectoryKind {
    /// The wire value of `type`.
    pub fn as_str(&self) -> &str {
        match self {
            JcDirectoryKind::ActiveDirectory => "active_directory",
            JcDirectoryKind::GSuite => "g_suite",
            JcDirectoryKind::Office365 => "office_365",
            JcDirectoryKind::Other(s) => s,
        }
    }
}

impl From<&str> for JcDirectoryKind {
    /// Graph type strings are compared case-insensitively: JumpCloud's own tools mix `g_suite` and `G_SUITE`.
    fn from(s: &str) -> Self {
        match s.to_ascii_lowercase().as_str() {
            "active_directory" => JcDirectoryKind::ActiveDirectory,
            "g_suite" => JcDirectoryKind::GSuite,
            "office_365" => JcDirectoryKind::Office365,
            _ => JcDirectoryKind::Other(s.to_owned()),
        }
    }
}

/// An entry of `GET /api/v2/directories`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "DirectoryWire", into = "DirectoryWire")]
pub struct JcDirectory {
    pub id: String,
    pub name: Option<String>,
    pub kind: JcDirectoryKind,
    /// `defaultDomain.domain` (Google Workspace and Microsoft 365).
    pub default_domain: Option<String>,
}

#[derive(Clone, Serialize, Deserialize, Default)]
#[serde(default)]
struct DirectoryWire {
    #[serde(deserialize_with = "null_default")]
    id: String,
    name: Option<String>,
    #[serde(rename = "type", deserialize_with = "null_default")]
    kind: String,
    #[serde(rename = "defaultDomain", skip_serializing_if = "Option::is_none")]
    default_domain: Option<DomainWire>,
}

#[derive(Clone, Serialize, Deserialize, Default)]
#[serde(default)]
struct DomainWire {
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<String>,
    domain: Option<String>,
}

impl From<DirectoryWire> for JcDirectory {
    fn from(w: DirectoryWire) -> Self {
        JcDirectory {
            id: w.id,
            name: w.name,
            kind: JcDirectoryKind::from(w.kind.as_str()),
            default_domain: w.default_domain.and_then(|d| d.domain),
        }
    }
}

impl From<JcDirectory> for DirectoryWire {
    fn from(d: JcDirectory) -> Self {
        DirectoryWire {
            id: d.id,
            name: d.name,
            kind: d.kind.as_str().to_owned(),
            default_domain: d.default_domain.map(|domain| DomainWire {
                id: None,
                domain: Some(domain),
            }),
        }
    }
}

/// What a directory association points at (`targets=` and the edge's `type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AssocTarget {
    User,
    UserGroup,
}

impl AssocTarget {
    pub fn as_str(self) -> &'static str {
        match self {
            AssocTarget::User => "user",
            AssocTarget::UserGroup => "user_group",
        }
    }
}

/// One item of a v2 graph list (`/members`, `/associations`): only the far end matters to us.
#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub(crate) struct GraphConnection {
    #[serde(deserialize_with = "null_default")]
    pub(crate) to: GraphObject,
}

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub(crate) struct GraphObject {
    #[serde(deserialize_with = "null_default")]
    pub(crate) id: String,
    #[serde(rename = "type", deserialize_with = "null_default")]
    pub(crate) kind: String,
}

/// Body of a graph write (`POST …/members`, `POST …/associations`).
#[derive(Debug, Serialize)]
pub(crate) struct GraphOp<'a> {
    pub(crate) op: &'static str,
    #[serde(rename = "type")]
    pub(crate) kind: &'static str,
    pub(crate) id: &'a str,
}

/// The v1 list envelope `{totalCount, results}`.
#[derive(Debug, Deserialize)]
#[serde(bound(deserialize = "T: Deserialize<'de>"))]
pub(crate) struct V1Page<T> {
    #[serde(rename = "totalCount", default, deserialize_with = "lenient_u64")]
    pub(crate) total_count: Option<u64>,
    /// Required (though `null` reads as empty): serde would otherwise accept a bare `[]` as an envelope with
    /// no results, and a v1 route answering in v2 shape would look like an empty directory.
    #[serde(deserialize_with = "null_default")]
    pub(crate) results: Vec<T>,
}

#[cfg(test)]
#[path = "model_tests.rs"]
mod tests;
