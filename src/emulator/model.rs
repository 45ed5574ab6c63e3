//! The emulated objects and their wire shapes: system users (facts sheet §2.2), user groups (§3.2),
//! directories (§3.5), the organisation, graph edges (§3.3/§3.4), and the rules for reading request bodies
//! into them (§2.3, §2.5).
//!
//! Owns field-level validation; cross-object rules (uniqueness, managers, membership) belong to `store`.

use std::borrow::Cow;
use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::error::{ApiError, Violation};
use super::query::{Record, Scalar};

/// Longest string field accepted (spec `maxLength` 1024).
const MAX_TEXT: usize = 1024;
/// Longest `employeeIdentifier` (spec `maxLength` 256).
const MAX_EMPLOYEE_ID: usize = 256;
/// Shortest password the emulated policy accepts.
pub const MIN_PASSWORD_LEN: usize = 8;

/// Formats a timestamp as the API does: ISO-8601 UTC with milliseconds and `Z`.
pub fn iso_millis(ts: jiff::Timestamp) -> String {
    ts.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// Hands out 24-hex ObjectId-like ids: 4 bytes of seconds, 5 bytes fixed per organisation, 3 bytes counter.
/// Ids therefore sort by creation time, as MongoDB's do.
#[derive(Debug, Clone)]
pub struct IdGen {
    machine: u64,
    counter: u32,
}

// === impl IdGen ===

impl IdGen {
    pub fn new(machine: u64, counter: u32) -> Self {
        Self {
            machine: machine & 0xff_ffff_ffff,
            counter: counter & 0xff_ffff,
        }
    }

    /// A fresh id stamped with `unix_secs`.
    pub fn next(&mut self, unix_secs: i64) -> String {
        let id = format!(
            "{:08x}{:010x}{:06x}",
            unix_secs.clamp(0, i64::from(u32::MAX)) as u32,
            self.machine,
            self.counter
        );
        self.counter = (self.counter + 1) & 0xff_ffff;
        id
    }
}

/// Whether `s` looks like an ObjectId.
pub fn is_object_id(s: &str) -> bool {
    s.len() == 24 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The organisation the API key belongs to.
#[derive(Debug, Clone)]
pub struct Organization {
    pub id: String,
    pub name: String,
    pub created: String,
}

// === impl Organization ===

impl Organization {
    pub fn to_json(&self) -> Value {
        json!({
            "_id": self.id,
            "id": self.id,
            "displayName": self.name,
            "logoUrl": "",
            "created": self.created,
            "settings": {
                "newSystemUserStateDefaults": {
                    "manualEntry": "ACTIVATED",
                    "csvImport": "ACTIVATED",
                    "applicationImport": "ACTIVATED"
                }
            }
        })
    }
}

/// `state` of a system user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum UserState {
    Staged,
    Activated,
    Suspended,
}

// === impl UserState ===

impl UserState {
    pub fn as_str(self) -> &'static str {
        match self {
            UserState::Staged => "STAGED",
            UserState::Activated => "ACTIVATED",
            UserState::Suspended => "SUSPENDED",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "STAGED" => Some(UserState::Staged),
            "ACTIVATED" => Some(UserState::Activated),
            "SUSPENDED" => Some(UserState::Suspended),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PhoneNumber {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub number: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Address {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub po_box: String,
    pub extended_address: String,
    pub street_address: String,
    pub locality: String,
    pub region: String,
    pub postal_code: String,
    pub country: String,
}

/// A custom attribute; `value` is kept as sent.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Attribute {
    pub name: String,
    pub value: Value,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RecoveryEmail {
    pub address: String,
    pub verified: bool,
    #[serde(rename = "verifiedAt")]
    pub verified_at: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Mfa {
    pub configured: bool,
    pub exclusion: bool,
    #[serde(rename = "exclusionDays", skip_serializing_if = "Option::is_none")]
    pub exclusion_days: Option<u32>,
    #[serde(rename = "exclusionUntil", skip_serializing_if = "Option::is_none")]
    pub exclusion_until: Option<String>,
}

/// A system user. `password` is never stored: only whether one was set (`activated`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct User {
    #[serde(rename = "_id")]
    pub id: String,
    pub username: String,
    pub email: String,
    pub firstname: String,
    pub middlename: String,
    pub lastname: String,
    pub displayname: String,
    #[serde(rename = "alternateEmail")]
    pub alternate_email: String,
    #[serde(rename = "recoveryEmail")]
    pub recovery_email: Option<RecoveryEmail>,
    pub state: UserState,
    pub suspended: bool,
    pub activated: bool,
    pub account_locked: bool,
    pub account_locked_date: Option<String>,
    pub password_expired: bool,
    pub password_expiration_date: Option<String>,
    pub password_date: Option<String>,
    pub password_never_expires: bool,
    #[serde(rename = "employeeIdentifier")]
    pub employee_identifier: Option<String>,
    #[serde(rename = "jobTitle")]
    pub job_title: String,
    pub department: String,
    #[serde(rename = "costCenter")]
    pub cost_center: String,
    pub company: String,
    #[serde(rename = "employeeType")]
    pub employee_type: String,
    pub location: String,
    pub description: String,
    pub manager: Option<String>,
    #[serde(rename = "phoneNumbers")]
    pub phone_numbers: Vec<PhoneNumber>,
    pub addresses: Vec<Address>,
    pub attributes: Vec<Attribute>,
    pub relationships: Vec<Value>,
    pub mfa: Mfa,
    pub totp_enabled: bool,
    pub enable_user_portal_multifactor: bool,
    #[serde(rename = "restrictedFields")]
    pub restricted_fields: Vec<Value>,
    pub externally_managed: bool,
    #[serde(rename = "delegatedAuthority")]
    pub delegated_authority: Option<Value>,
    pub external_dn: String,
    pub external_source_type: String,
    pub external_password_expiration_date: Option<String>,
    #[serde(rename = "creationSource")]
    pub creation_source: String,
    pub created: String,
    pub organization: String,
    pub admin: Option<Value>,
    #[serde(rename = "badLoginAttempts")]
    pub bad_login_attempts: u32,
    pub unix_uid: u32,
    pub unix_guid: u32,
    pub sudo: bool,
    pub passwordless_sudo: bool,
    pub allow_public_key: bool,
    pub public_key: String,
    pub ssh_keys: Vec<Value>,
    pub samba_service_user: bool,
    pub ldap_binding_user: bool,
    pub enable_managed_uid: bool,
    #[serde(rename = "disableDeviceMaxLoginAttempts")]
    pub disable_device_max_login_attempts: bool,
    #[serde(rename = "managedAppleId")]
    pub managed_apple_id: String,
    #[serde(rename = "systemUsername")]
    pub system_username: String,
    pub tags: Vec<String>,
}

/// How a [`User`] goes on the wire: its fields (with `_id`), then `id` again and the read-only enrolment.
#[derive(Debug, Serialize)]
pub struct UserWire<'a> {
    #[serde(flatten)]
    user: &'a User,
    id: &'a str,
    #[serde(rename = "mfaEnrollment")]
    mfa_enrollment: MfaEnrollment,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct MfaEnrollment {
    overall_status: &'static str,
    totp_status: &'static str,
    web_authn_status: &'static str,
    push_status: &'static str,
    jc_go_status: &'static str,
}

/// The parts of a user body that `store` decides on, because they depend on the rest of the user.
#[derive(Debug, Default)]
pub struct Applied {
    pub password: Option<String>,
    pub state: Option<UserState>,
    pub suspended: Option<bool>,
}

// === impl User ===

impl User {
    /// A user with every field at its default, as a create starts from.
    pub fn blank(id: String, created: String, organization: String, uid: u32) -> Self {
        Self {
            id,
            username: String::new(),
            email: String::new(),
            firstname: String::new(),
            middlename: String::new(),
            lastname: String::new(),
            displayname: String::new(),
            alternate_email: String::new(),
            recovery_email: None,
            state: UserState::Activated,
            suspended: false,
            activated: false,
            account_locked: false,
            account_locked_date: None,
            password_expired: false,
            password_expiration_date: None,
            password_date: None,
            password_never_expires: false,
            employee_identifier: None,
            job_title: String::new(),
            department: String::new(),
            cost_center: String::new(),
            company: String::new(),
            employee_type: String::new(),
            location: String::new(),
            description: String::new(),
            manager: None,
            phone_numbers: Vec::new(),
            addresses: Vec::new(),
            attributes: Vec::new(),
            relationships: Vec::new(),
            mfa: Mfa::default(),
            totp_enabled: false,
            enable_user_portal_multifactor: false,
            restricted_fields: Vec::new(),
            externally_managed: false,
            delegated_authority: None,
            external_dn: String::new(),
            external_source_type: String::new(),
            external_password_expiration_date: None,
            creation_source: String::new(),
            created,
            organization,
            admin: None,
            bad_login_attempts: 0,
            unix_uid: uid,
            unix_guid: uid,
            sudo: false,
            passwordless_sudo: false,
            allow_public_key: true,
            public_key: String::new(),
            ssh_keys: Vec::new(),
            samba_service_user: false,
            ldap_binding_user: false,
            enable_managed_uid: false,
            disable_device_max_login_attempts: false,
            managed_apple_id: String::new(),
            system_username: String::new(),
            tags: Vec::new(),
        }
    }

    /// The wire shape: every field, `_id` and `id` both, never a password. Serialises straight to bytes.
    pub fn wire(&self) -> UserWire<'_> {
        let status = |on: bool| if on { "ENROLLED" } else { "NOT_ENROLLED" };
        UserWire {
            user: self,
            id: &self.id,
            mfa_enrollment: MfaEnrollment {
                overall_status: status(self.mfa.configured),
                totp_status: status(self.totp_enabled),
                web_authn_status: "NOT_ENROLLED",
                push_status: "NOT_ENROLLED",
                jc_go_status: "NOT_ENROLLED",
            },
        }
    }

    /// The wire shape as a `Value`, for projections and filters on fields without a fast path.
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self.wire())
            .unwrap_or_else(|_| json!({ "_id": self.id, "id": self.id }))
    }

    /// Scalar fields read without serialising the user: the ones filters and sorts usually name.
    fn fast_field(&self, name: &str) -> Option<Scalar<'_>> {
        fn s(v: &str) -> Scalar<'_> {
            Scalar::Str(Cow::Borrowed(v))
        }
        fn o(v: &Option<String>) -> Scalar<'_> {
            v.as_deref().map_or(Scalar::Null, s)
        }
        Some(match name {
            "_id" | "id" => s(&self.id),
            "username" => s(&self.username),
            "email" => s(&self.email),
            "firstname" => s(&self.firstname),
            "middlename" => s(&self.middlename),
            "lastname" => s(&self.lastname),
            "displayname" => s(&self.displayname),
            "alternateEmail" => s(&self.alternate_email),
            "state" => s(self.state.as_str()),
            "suspended" => Scalar::Bool(self.suspended),
            "activated" => Scalar::Bool(self.activated),
            "account_locked" => Scalar::Bool(self.account_locked),
            "password_expired" => Scalar::Bool(self.password_expired),
            "password_never_expires" => Scalar::Bool(self.password_never_expires),
            "password_expiration_date" => o(&self.password_expiration_date),
            "password_date" => o(&self.password_date),
            "employeeIdentifier" => o(&self.employee_identifier),
            "jobTitle" => s(&self.job_title),
            "department" => s(&self.department),
            "costCenter" => s(&self.cost_center),
            "company" => s(&self.company),
            "employeeType" => s(&self.employee_type),
            "location" => s(&self.location),
            "description" => s(&self.description),
            "manager" => o(&self.manager),
            "externally_managed" => Scalar::Bool(self.externally_managed),
            "creationSource" => s(&self.creation_source),
            "created" => s(&self.created),
            "organization" => s(&self.organization),
            "unix_uid" => Scalar::Num(f64::from(self.unix_uid)),
            "unix_guid" => Scalar::Num(f64::from(self.unix_guid)),
            "totp_enabled" => Scalar::Bool(self.totp_enabled),
            "sudo" => Scalar::Bool(self.sudo),
            "systemUsername" => s(&self.system_username),
            _ => return None,
        })
    }

    /// Applies the fields of a create or update body. Scalars sent as `null` or `""` are cleared; arrays are
    /// replaced whole; read-only and unknown members are ignored. `password`, `state` and `suspended` are
    /// returned for the caller to reconcile.
    pub fn apply(
        &mut self,
        body: &Map<String, Value>,
        ids: &mut IdGen,
        now: jiff::Timestamp,
    ) -> Result<Applied, ApiError> {
        let mut applied = Applied::default();
        let secs = now.as_second();
        let now = iso_millis(now);
        for (key, v) in body {
            let k = key.as_str();
            match k {
                "username" => self.username = text(k, v)?,
                "email" => self.email = text(k, v)?.to_lowercase(),
                "firstname" => self.firstname = text(k, v)?,
                "middlename" => self.middlename = text(k, v)?,
                "lastname" => self.lastname = text(k, v)?,
                "displayname" => self.displayname = text(k, v)?,
                "alternateEmail" => self.alternate_email = text(k, v)?,
                "jobTitle" => self.job_title = text(k, v)?,
                "department" => self.department = text(k, v)?,
                "costCenter" => self.cost_center = text(k, v)?,
                "company" => self.company = text(k, v)?,
                "employeeType" => self.employee_type = text(k, v)?,
                "location" => self.location = text(k, v)?,
                "description" => self.description = text(k, v)?,
                "external_dn" => self.external_dn = text(k, v)?,
                "external_source_type" => self.external_source_type = text(k, v)?,
                "public_key" => self.public_key = text(k, v)?,
                "managedAppleId" => self.managed_apple_id = text(k, v)?,
                "creationSource" => self.creation_source = text(k, v)?,
                "systemUsername" => self.system_username = text(k, v)?,
                "employeeIdentifier" => self.employee_identifier = opt_text(k, v, MAX_EMPLOYEE_ID)?,
                "manager" => self.manager = opt_text(k, v, MAX_TEXT)?,
                "password_expiration_date" => {
                    self.password_expiration_date = opt_text(k, v, MAX_TEXT)?
                }
                "external_password_expiration_date" => {
                    self.external_password_expiration_date = opt_text(k, v, MAX_TEXT)?
                }
                "account_locked" => {
                    self.account_locked = flag(k, v)?;
                    self.account_locked_date = self.account_locked.then(|| now.clone());
                }
                "password_expired" => self.password_expired = flag(k, v)?,
                "password_never_expires" => self.password_never_expires = flag(k, v)?,
                "totp_enabled" => self.totp_enabled = flag(k, v)?,
                "enable_user_portal_multifactor" => {
                    self.enable_user_portal_multifactor = flag(k, v)?
                }
                "externally_managed" => self.externally_managed = flag(k, v)?,
                "sudo" => self.sudo = flag(k, v)?,
                "passwordless_sudo" => self.passwordless_sudo = flag(k, v)?,
                "allow_public_key" => self.allow_public_key = flag(k, v)?,
                "samba_service_user" => self.samba_service_user = flag(k, v)?,
                "ldap_binding_user" => self.ldap_binding_user = flag(k, v)?,
                "enable_managed_uid" => self.enable_managed_uid = flag(k, v)?,
                "disableDeviceMaxLoginAttempts" => {
                    self.disable_device_max_login_attempts = flag(k, v)?
                }
                "unix_uid" => {
                    if let Some(n) = positive(k, v)? {
                        self.unix_uid = n;
                    }
                }
                "unix_guid" => {
                    if let Some(n) = positive(k, v)? {
                        self.unix_guid = n;
                    }
                }
                "phoneNumbers" => self.phone_numbers = phones(k, v, ids, secs)?,
                "addresses" => self.addresses = addresses(k, v, ids, secs)?,
                "attributes" => self.attributes = attributes(k, v)?,
                "relationships" => self.relationships = objects(k, v)?,
                "restrictedFields" => self.restricted_fields = objects(k, v)?,
                "ssh_keys" => {
                    let mut keys = objects(k, v)?;
                    for key in &mut keys {
                        if let Value::Object(m) = key {
                            if !m.get("_id").is_some_and(Value::is_string) {
                                m.insert("_id".into(), Value::String(ids.next(secs)));
                            }
                            m.entry("create_date")
                                .or_insert_with(|| Value::String(now.clone()));
                        }
                    }
                    self.ssh_keys = keys;
                }
                "tags" => self.tags = strings(k, v)?,
                "mfa" => {
                    self.mfa = match v {
                        Value::Null => Mfa::default(),
                        v => serde_json::from_value(v.clone())
                            .map_err(|e| bad_field(k, format!("invalid mfa object: {e}")))?,
                    }
                }
                "recoveryEmail" => {
                    self.recovery_email = match v {
                        Value::Null => None,
                        Value::Object(m) => match m.get("address") {
                            None | Some(Value::Null) => None,
                            Some(Value::String(a)) if a.is_empty() => None,
                            Some(Value::String(a)) => Some(RecoveryEmail {
                                address: a.clone(),
                                verified: false,
                                verified_at: None,
                            }),
                            Some(_) => return Err(bad_field(k, "address must be a string")),
                        },
                        _ => return Err(bad_field(k, "must be an object")),
                    }
                }
                "delegatedAuthority" => {
                    self.delegated_authority = match v {
                        Value::Null => None,
                        Value::Object(_) => Some(v.clone()),
                        _ => return Err(bad_field(k, "must be an object or null")),
                    }
                }
                "password" => match v {
                    Value::Null => {}
                    Value::String(p) if p.is_empty() => {}
                    Value::String(p) => applied.password = Some(p.clone()),
                    _ => return Err(bad_field(k, "must be a string")),
                },
                "state" => match v {
                    Value::Null => {}
                    Value::String(s) => {
                        applied.state = Some(UserState::parse(s).ok_or_else(|| {
                            bad_field(k, "must be STAGED, ACTIVATED or SUSPENDED")
                        })?)
                    }
                    _ => return Err(bad_field(k, "must be a string")),
                },
                "suspended" => match v {
                    Value::Null => {}
                    Value::Bool(b) => applied.suspended = Some(*b),
                    _ => return Err(bad_field(k, "must be a boolean")),
                },
                // Read-only or derived: `activated` follows the password, the rest the server owns.
                _ => {}
            }
        }
        Ok(applied)
    }
}

impl Record for User {
    fn any_value(&self, path: &str, f: &mut dyn FnMut(&Scalar<'_>) -> bool) -> bool {
        match self.fast_field(path) {
            Some(s) => f(&s),
            None => self.to_json().any_value(path, f),
        }
    }

    fn sort_value(&self, path: &str) -> Scalar<'_> {
        match self.fast_field(path) {
            Some(s) => s,
            None => self.to_json().sort_value(path).into_owned(),
        }
    }
}

// === field readers ===

fn bad_field(field: &str, description: impl Into<String>) -> ApiError {
    let description = description.into();
    ApiError::invalid_field(
        format!("Invalid value for {field}: {description}"),
        field,
        description,
    )
}

fn text(field: &str, v: &Value) -> Result<String, ApiError> {
    match v {
        Value::Null => Ok(String::new()),
        Value::String(s) if s.chars().count() > MAX_TEXT => Err(bad_field(
            field,
            format!("longer than {MAX_TEXT} characters"),
        )),
        Value::String(s) => Ok(s.clone()),
        _ => Err(bad_field(field, "must be a string")),
    }
}

fn opt_text(field: &str, v: &Value, max: usize) -> Result<Option<String>, ApiError> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) if s.is_empty() => Ok(None),
        Value::String(s) if s.chars().count() > max => {
            Err(bad_field(field, format!("longer than {max} characters")))
        }
        Value::String(s) => Ok(Some(s.clone())),
        _ => Err(bad_field(field, "must be a string or null")),
    }
}

fn flag(field: &str, v: &Value) -> Result<bool, ApiError> {
    match v {
        Value::Null => Ok(false),
        Value::Bool(b) => Ok(*b),
        _ => Err(bad_field(field, "must be a boolean")),
    }
}

fn positive(field: &str, v: &Value) -> Result<Option<u32>, ApiError> {
    match v {
        Value::Null => Ok(None),
        Value::Number(n) => match n.as_u64() {
            Some(n) if n >= 1 && n <= u64::from(u32::MAX) => Ok(Some(n as u32)),
            _ => Err(bad_field(field, "must be a positive integer")),
        },
        _ => Err(bad_field(field, "must be a positive integer")),
    }
}

fn array<'a>(field: &str, v: &'a Value) -> Result<&'a [Value], ApiError> {
    match v {
        Value::Null => Ok(&[]),
        Value::Array(items) => Ok(items),
        _ => Err(bad_field(field, "must be an array")),
    }
}

fn objects(field: &str, v: &Value) -> Result<Vec<Value>, ApiError> {
    array(field, v)?
        .iter()
        .map(|i| match i {
            Value::Object(_) => Ok(i.clone()),
            _ => Err(bad_field(field, "items must be objects")),
        })
        .collect()
}

fn strings(field: &str, v: &Value) -> Result<Vec<String>, ApiError> {
    array(field, v)?
        .iter()
        .map(|i| match i {
            Value::String(s) => Ok(s.clone()),
            _ => Err(bad_field(field, "items must be strings")),
        })
        .collect()
}

fn member(field: &str, m: &Map<String, Value>, key: &str) -> Result<String, ApiError> {
    text(
        &format!("{field}.{key}"),
        m.get(key).unwrap_or(&Value::Null),
    )
}

/// Keeps an item's `id` when the client sent one back (round trip), else assigns a fresh one.
fn item_id(m: &Map<String, Value>, ids: &mut IdGen, secs: i64) -> String {
    match m.get("id") {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        _ => ids.next(secs),
    }
}

fn phones(
    field: &str,
    v: &Value,
    ids: &mut IdGen,
    secs: i64,
) -> Result<Vec<PhoneNumber>, ApiError> {
    array(field, v)?
        .iter()
        .map(|i| {
            let Value::Object(m) = i else {
                return Err(bad_field(field, "items must be objects"));
            };
            Ok(PhoneNumber {
                id: item_id(m, ids, secs),
                kind: member(field, m, "type")?,
                number: member(field, m, "number")?,
            })
        })
        .collect()
}

fn addresses(field: &str, v: &Value, ids: &mut IdGen, secs: i64) -> Result<Vec<Address>, ApiError> {
    array(field, v)?
        .iter()
        .map(|i| {
            let Value::Object(m) = i else {
                return Err(bad_field(field, "items must be objects"));
            };
            Ok(Address {
                id: item_id(m, ids, secs),
                kind: member(field, m, "type")?,
                po_box: member(field, m, "poBox")?,
                extended_address: member(field, m, "extendedAddress")?,
                street_address: member(field, m, "streetAddress")?,
                locality: member(field, m, "locality")?,
                region: member(field, m, "region")?,
                postal_code: member(field, m, "postalCode")?,
                country: member(field, m, "country")?,
            })
        })
        .collect()
}

fn attributes(field: &str, v: &Value) -> Result<Vec<Attribute>, ApiError> {
    array(field, v)?
        .iter()
        .map(|i| {
            let Value::Object(m) = i else {
                return Err(bad_field(field, "items must be objects"));
            };
            let name = match m.get("name") {
                Some(Value::String(s)) if !s.is_empty() => s.clone(),
                _ => return Err(bad_field(field, "each attribute needs a string name")),
            };
            let value = m.get("value").cloned().unwrap_or(Value::Null);
            if matches!(&value, Value::String(s) if s.chars().count() > MAX_TEXT) {
                return Err(bad_field(
                    field,
                    format!("value longer than {MAX_TEXT} characters"),
                ));
            }
            Ok(Attribute { name, value })
        })
        .collect()
}

// === naming and password rules ===

/// Why `username` breaks JumpCloud's naming rule (starts with a letter; letters, digits, `.`, `_`, `-`).
pub fn username_problem(username: &str) -> Option<&'static str> {
    let first = username.chars().next()?;
    if username.contains('@') {
        return Some("may not contain '@'");
    }
    if username.chars().any(char::is_whitespace) {
        return Some("may not contain spaces");
    }
    if !first.is_ascii_alphabetic() {
        return Some("must start with a letter");
    }
    if !username
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
    {
        return Some("may contain only letters, digits, '.', '_' and '-'");
    }
    None
}

/// Whether `email` has the `local@domain` shape.
pub fn email_ok(email: &str) -> bool {
    let mut parts = email.split('@');
    matches!(
        (parts.next(), parts.next(), parts.next()),
        (Some(local), Some(domain), None) if !local.is_empty() && !domain.is_empty()
    ) && !email.chars().any(char::is_whitespace)
}

/// The emulated password policy: at least 8 characters, containing a letter and a digit. Returns the names of
/// the rules `password` breaks.
pub fn password_violations(password: &str) -> Vec<Violation> {
    let mut rules = Vec::new();
    if password.chars().count() < MIN_PASSWORD_LEN {
        rules.push("minimumLength");
    }
    if !password.chars().any(char::is_alphabetic) {
        rules.push("alphabeticCharacter");
    }
    if !password.chars().any(|c| c.is_ascii_digit()) {
        rules.push("numericCharacter");
    }
    rules
        .into_iter()
        .map(|r| Violation {
            field: "password".into(),
            description: r.into(),
        })
        .collect()
}

// === groups ===

/// `membershipMethod` values the spec lists.
const MEMBERSHIP_METHODS: [&str; 4] = [
    "NOTSET",
    "STATIC",
    "DYNAMIC_REVIEW_REQUIRED",
    "DYNAMIC_AUTOMATED",
];

/// A user group. `members` holds direct members (users only, as the member-operation enum allows).
#[derive(Debug, Clone, PartialEq)]
pub struct Group {
    pub id: String,
    pub organization: String,
    pub fields: GroupFields,
    pub members: BTreeSet<String>,
}

/// The writable part of a group: what `POST` sets and `PUT` replaces.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupFields {
    pub name: String,
    pub description: String,
    pub email: String,
    /// Free-form, kept as sent (an object or null).
    pub attributes: Option<Value>,
    pub membership_method: String,
    pub member_query: Option<Value>,
    pub member_query_exemptions: Vec<Value>,
    pub member_suggestions_notify: bool,
}

// === impl GroupFields ===

impl GroupFields {
    /// A group called `name` with every other field at its default.
    pub fn named(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            description: String::new(),
            email: String::new(),
            attributes: None,
            membership_method: "STATIC".into(),
            member_query: None,
            member_query_exemptions: Vec::new(),
            member_suggestions_notify: false,
        }
    }

    /// Reads a `UserGroupPost`/`UserGroupPut` body: `name` required, everything omitted takes its default
    /// (which is what makes `PUT` a full replace).
    pub fn parse(body: &Map<String, Value>) -> Result<Self, ApiError> {
        let bad = |m: &str| ApiError::BadRequest(m.to_owned());
        let name = match body.get("name") {
            Some(Value::String(s)) if !s.trim().is_empty() => s.clone(),
            Some(Value::String(_)) | None | Some(Value::Null) => {
                return Err(bad("name is required"));
            }
            Some(_) => return Err(bad("name must be a string")),
        };
        if name.chars().count() > MAX_TEXT {
            return Err(bad("name is too long"));
        }
        let mut g = GroupFields::named(name);
        for (k, v) in body {
            match k.as_str() {
                "description" => {
                    g.description = text(k, v).map_err(|_| bad("description must be a string"))?
                }
                "email" => g.email = text(k, v).map_err(|_| bad("email must be a string"))?,
                "attributes" => {
                    g.attributes = match v {
                        Value::Null => None,
                        Value::Object(_) => Some(v.clone()),
                        _ => return Err(bad("attributes must be an object or null")),
                    }
                }
                "membershipMethod" => match v {
                    Value::Null => {}
                    Value::String(s) if MEMBERSHIP_METHODS.contains(&s.as_str()) => {
                        g.membership_method = s.clone()
                    }
                    _ => {
                        return Err(bad(
                            "membershipMethod must be NOTSET, STATIC, DYNAMIC_REVIEW_REQUIRED or DYNAMIC_AUTOMATED",
                        ));
                    }
                },
                "memberQuery" => {
                    g.member_query = match v {
                        Value::Null => None,
                        Value::Object(_) => Some(v.clone()),
                        _ => return Err(bad("memberQuery must be an object")),
                    }
                }
                "memberQueryExemptions" => {
                    g.member_query_exemptions = match v {
                        Value::Null => Vec::new(),
                        Value::Array(items) => items.clone(),
                        _ => return Err(bad("memberQueryExemptions must be an array")),
                    }
                }
                "memberSuggestionsNotify" => {
                    g.member_suggestions_notify =
                        flag(k, v).map_err(|_| bad("memberSuggestionsNotify must be a boolean"))?
                }
                _ => {}
            }
        }
        Ok(g)
    }
}

// === impl Group ===

impl Group {
    /// The `UserGroup` wire shape.
    pub fn to_json(&self) -> Value {
        let f = &self.fields;
        let mut v = json!({
            "id": self.id,
            "name": f.name,
            "type": "user_group",
            "description": f.description,
            "email": f.email,
            "attributes": f.attributes,
            "membershipMethod": f.membership_method,
            "memberQueryExemptions": f.member_query_exemptions,
            "memberQueryErrorFlags": [],
            "memberSuggestionsNotify": f.member_suggestions_notify,
            "suggestionCounts": { "add": 0, "remove": 0, "total": 0 },
            "organizationObjectId": self.organization,
        });
        if let (Some(q), Value::Object(m)) = (&f.member_query, &mut v) {
            m.insert("memberQuery".into(), q.clone());
        }
        v
    }
}

// === directories ===

/// The kinds of directory the emulator can hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DirKind {
    ActiveDirectory,
    GSuite,
    Office365,
}

// === impl DirKind ===

impl DirKind {
    /// The graph `type` of this kind.
    pub fn type_name(self) -> &'static str {
        match self {
            DirKind::ActiveDirectory => "active_directory",
            DirKind::GSuite => "g_suite",
            DirKind::Office365 => "office_365",
        }
    }

    pub fn from_type(s: &str) -> Option<Self> {
        match s {
            "active_directory" => Some(DirKind::ActiveDirectory),
            "g_suite" => Some(DirKind::GSuite),
            "office_365" => Some(DirKind::Office365),
            _ => None,
        }
    }
}

/// A directory instance and its direct associations.
#[derive(Debug, Clone, PartialEq)]
pub struct Directory {
    pub id: String,
    pub kind: DirKind,
    pub name: String,
    pub domain: String,
    pub domain_id: String,
    pub agent_id: String,
    pub updated_at: String,
    /// Users bound directly (`targets=user`).
    pub users: BTreeSet<String>,
    /// User groups bound (`targets=user_group`); their members hold the directory through them.
    pub groups: BTreeSet<String>,
}

// === impl Directory ===

impl Directory {
    /// The item of `GET /api/v2/directories`.
    pub fn summary_json(&self) -> Value {
        let mut v = json!({ "id": self.id, "name": self.name, "type": self.kind.type_name() });
        if self.kind != DirKind::ActiveDirectory
            && let Value::Object(m) = &mut v
        {
            m.insert(
                "defaultDomain".into(),
                json!({ "id": self.domain_id, "domain": self.domain }),
            );
        }
        v
    }

    /// The object of the kind's own endpoint (`/activedirectories/{id}`, `/gsuites/{id}`, `/office365s/{id}`).
    pub fn detail_json(&self, organization: &str) -> Value {
        match self.kind {
            DirKind::ActiveDirectory => json!({
                "id": self.id,
                "domain": self.domain,
                "primaryAgent": self.agent_id,
                "primaryImportAgent": "",
                "delegationState": "DISABLED",
                "useCase": "JCASAUTHORITY",
                "groupsEnabled": true,
                "permission": "",
                "updatedAt": self.updated_at,
            }),
            DirKind::GSuite => json!({
                "id": self.id,
                "name": self.name,
                "defaultDomain": { "id": self.domain_id, "domain": self.domain },
                "groupsEnabled": true,
                "importFilter": "",
                "userLockoutAction": "suspend",
                "userPasswordExpirationAction": "suspend",
                "organizationObjectId": organization,
            }),
            DirKind::Office365 => json!({
                "id": self.id,
                "name": self.name,
                "defaultDomain": { "id": self.domain_id, "domain": self.domain },
                "groupsEnabled": true,
                "userLockoutAction": "suspend",
                "userPasswordExpirationAction": "suspend",
                "organizationObjectId": organization,
            }),
        }
    }
}

// === graph shapes ===

/// A `GraphConnection` to `id` of graph type `kind`.
pub fn edge(id: &str, kind: &str) -> Value {
    json!({ "attributes": null, "to": { "attributes": null, "id": id, "type": kind } })
}

/// A `GraphObjectWithPaths` for an object one hop away.
pub fn with_paths(id: &str, kind: &str) -> Value {
    json!({ "id": id, "type": kind, "compiledAttributes": {}, "paths": [[edge(id, kind)]] })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_24_hex_and_sort_by_time() {
        let mut g = IdGen::new(0xabcdef, 1);
        let a = g.next(1_600_000_000);
        let b = g.next(1_600_000_001);
        assert!(is_object_id(&a) && is_object_id(&b));
        assert!(a < b);
        assert_ne!(g.next(1), g.next(1));
    }

    #[test]
    fn timestamps_have_millis_and_z() {
        let ts = jiff::Timestamp::from_millisecond(1_613_132_461_123).unwrap();
        assert_eq!(iso_millis(ts), "2021-02-12T12:21:01.123Z");
    }

    #[test]
    fn username_rule() {
        assert_eq!(username_problem("jane.doe-2_x"), None);
        assert!(username_problem("jane@x").is_some());
        assert!(username_problem("jane doe").is_some());
        assert!(username_problem("1jane").is_some());
        assert!(username_problem("jané").is_some());
        assert!(username_problem("_jane").is_some());
    }

    #[test]
    fn password_rule() {
        assert!(password_violations("abcdefg1").is_empty());
        let v: Vec<String> = password_violations("abc")
            .into_iter()
            .map(|v| v.description)
            .collect();
        assert_eq!(v, ["minimumLength", "numericCharacter"]);
        assert_eq!(password_violations("12345678").len(), 1);
    }

    #[test]
    fn email_shape() {
        assert!(email_ok("a@b"));
        assert!(!email_ok("ab"));
        assert!(!email_ok("a@b@c"));
        assert!(!email_ok("a b@c"));
        assert!(!email_ok("@c"));
    }
}
