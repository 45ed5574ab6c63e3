//! System users (facts sheet §2.2): the user and its nested records, its wire shape (`_id` and `id` both,
//! the read-only MFA enrolment, never a password), and the fields filters and sorts read without
//! serialising it.
//!
//! Reading a request body into a user lives in `user_body`; rules that span users belong to `store`.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::emulator::query::{Record, Scalar};

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
