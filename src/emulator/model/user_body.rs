//! Reading a create or update body into a [`User`] (facts sheet §2.3, §2.5): which member sets which field,
//! how `null` and `""` clear, and the members (`password`, `state`, `suspended`) handed back undecided.
//!
//! Field-level only: each member is checked on its own by the readers in `fields`; what depends on the rest
//! of the user or on other users (state reconciliation, the password policy, uniqueness) is `store`'s.

use serde_json::{Map, Value};

use super::fields::{
    MAX_EMPLOYEE_ID, MAX_TEXT, addresses, attributes, bad_field, flag, mfa, object_or_null,
    objects, opt_text, phones, positive, recovery_email, ssh_keys, strings, text,
};
use super::ids::{IdGen, iso_millis};
use super::users::{User, UserState};
use crate::emulator::error::ApiError;

/// The parts of a user body that `store` decides on, because they depend on the rest of the user.
#[derive(Debug, Default)]
pub struct Applied {
    pub password: Option<String>,
    pub state: Option<UserState>,
    pub suspended: Option<bool>,
}

// === impl Applied ===

impl Applied {
    /// Keeps `password`, `state` or `suspended` for the caller; `false` for any other member.
    fn take(&mut self, k: &str, v: &Value) -> Result<bool, ApiError> {
        match k {
            "password" => match v {
                Value::Null => {}
                Value::String(p) if p.is_empty() => {}
                Value::String(p) => self.password = Some(p.clone()),
                _ => return Err(bad_field(k, "must be a string")),
            },
            "state" => match v {
                Value::Null => {}
                Value::String(s) => {
                    self.state =
                        Some(UserState::parse(s).ok_or_else(|| {
                            bad_field(k, "must be STAGED, ACTIVATED or SUSPENDED")
                        })?)
                }
                _ => return Err(bad_field(k, "must be a string")),
            },
            "suspended" => match v {
                Value::Null => {}
                Value::Bool(b) => self.suspended = Some(*b),
                _ => return Err(bad_field(k, "must be a boolean")),
            },
            _ => return Ok(false),
        }
        Ok(true)
    }
}

// === impl User ===

impl User {
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
            // Each member belongs to at most one of these; read-only or derived ones (`activated` follows the
            // password, the rest the server owns) to none.
            let _known = self.apply_text(k, v)?
                || self.apply_scalar(k, v, &now)?
                || self.apply_list(k, v, ids, secs, &now)?
                || self.apply_object(k, v)?
                || applied.take(k, v)?;
        }
        Ok(applied)
    }

    /// String members; `false` when `k` is not one.
    fn apply_text(&mut self, k: &str, v: &Value) -> Result<bool, ApiError> {
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
            "password_expiration_date" => self.password_expiration_date = opt_text(k, v, MAX_TEXT)?,
            "external_password_expiration_date" => {
                self.external_password_expiration_date = opt_text(k, v, MAX_TEXT)?
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// Boolean and numeric members; `false` when `k` is not one. Locking stamps `account_locked_date`.
    fn apply_scalar(&mut self, k: &str, v: &Value, now: &str) -> Result<bool, ApiError> {
        match k {
            "account_locked" => {
                self.account_locked = flag(k, v)?;
                self.account_locked_date = self.account_locked.then(|| now.to_owned());
            }
            "password_expired" => self.password_expired = flag(k, v)?,
            "password_never_expires" => self.password_never_expires = flag(k, v)?,
            "totp_enabled" => self.totp_enabled = flag(k, v)?,
            "enable_user_portal_multifactor" => self.enable_user_portal_multifactor = flag(k, v)?,
            "externally_managed" => self.externally_managed = flag(k, v)?,
            "sudo" => self.sudo = flag(k, v)?,
            "passwordless_sudo" => self.passwordless_sudo = flag(k, v)?,
            "allow_public_key" => self.allow_public_key = flag(k, v)?,
            "samba_service_user" => self.samba_service_user = flag(k, v)?,
            "ldap_binding_user" => self.ldap_binding_user = flag(k, v)?,
            "enable_managed_uid" => self.enable_managed_uid = flag(k, v)?,
            "disableDeviceMaxLoginAttempts" => self.disable_device_max_login_attempts = flag(k, v)?,
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
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// Array members, each replaced whole; `false` when `k` is not one.
    fn apply_list(
        &mut self,
        k: &str,
        v: &Value,
        ids: &mut IdGen,
        secs: i64,
        now: &str,
    ) -> Result<bool, ApiError> {
        match k {
            "phoneNumbers" => self.phone_numbers = phones(k, v, ids, secs)?,
            "addresses" => self.addresses = addresses(k, v, ids, secs)?,
            "attributes" => self.attributes = attributes(k, v)?,
            "relationships" => self.relationships = objects(k, v)?,
            "restrictedFields" => self.restricted_fields = objects(k, v)?,
            "ssh_keys" => self.ssh_keys = ssh_keys(k, v, ids, secs, now)?,
            "tags" => self.tags = strings(k, v)?,
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// Object members; `false` when `k` is not one.
    fn apply_object(&mut self, k: &str, v: &Value) -> Result<bool, ApiError> {
        match k {
            "mfa" => self.mfa = mfa(k, v)?,
            "recoveryEmail" => self.recovery_email = recovery_email(k, v)?,
            "delegatedAuthority" => self.delegated_authority = object_or_null(k, v)?,
            _ => return Ok(false),
        }
        Ok(true)
    }
}
