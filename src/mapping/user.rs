//! JumpCloud system user → SCIM User (core, enterprise extension, our JumpCloud extension).

use serde_json::{Map, Value, json};

use super::{MappingOptions, present, urn};
use crate::jumpcloud::JcUser;

/// A group the user belongs to, as shown in `User.groups`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GroupRef {
    pub id: String,
    pub display: String,
    /// `false`: direct membership; `true`: held only through another group (a directory bound to a group).
    pub indirect: bool,
}

/// A directory the user holds, as shown in `User.entitlements`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Entitlement {
    /// The directory id.
    pub value: String,
    /// Its name or domain.
    pub display: String,
    /// `active_directory`, `g_suite` or `office_365`.
    pub kind: &'static str,
}

/// Facts about a user that live outside its JumpCloud record.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UserContext<'a> {
    /// Groups (and directories listed as groups), sorted for a stable representation.
    pub groups: &'a [GroupRef],
    pub entitlements: &'a [Entitlement],
}

/// The value of a JumpCloud custom attribute.
fn custom_attribute<'a>(user: &'a JcUser, name: &str) -> Option<&'a str> {
    user.attributes
        .iter()
        .find(|a| a.name == name)
        .map(|a| a.value.as_str())
        .filter(|v| !v.is_empty())
}

/// `name.formatted`: exactly what a client wrote; derived from the name's parts only for a user no client
/// has written through this service (one created in JumpCloud itself, without our userName attribute).
fn formatted_name(user: &JcUser, opts: &MappingOptions) -> Option<String> {
    if let Some(f) = custom_attribute(user, super::NAME_FORMATTED_ATTRIBUTE) {
        return Some(f.to_string());
    }
    if custom_attribute(user, &opts.username_attribute).is_some() {
        return None;
    }
    let parts: Vec<&str> = [
        present(&user.firstname),
        present(&user.middlename),
        present(&user.lastname),
    ]
    .into_iter()
    .flatten()
    .collect();
    (!parts.is_empty()).then(|| parts.join(" "))
}

/// `emails` as a client wrote them (values, types, primary flags, order), while they still name the addresses
/// JumpCloud holds; otherwise JumpCloud's two addresses as `work` (primary) and `other`.
fn served_emails(user: &JcUser) -> Vec<Value> {
    let held: Vec<String> = [Some(user.email.as_str()), present(&user.alternate_email)]
        .into_iter()
        .flatten()
        .filter(|e| !e.is_empty())
        .map(str::to_lowercase)
        .collect();
    if let Some(written) = custom_attribute(user, super::EMAILS_ATTRIBUTE)
        .and_then(|j| serde_json::from_str::<Vec<Value>>(j).ok())
    {
        let mut named: Vec<String> = written
            .iter()
            .filter_map(|e| e.get("value").and_then(Value::as_str))
            .map(str::to_lowercase)
            .collect();
        named.sort();
        named.dedup();
        let mut want = held.clone();
        want.sort();
        want.dedup();
        if named == want && !written.is_empty() {
            return written;
        }
    }
    let mut emails = Vec::new();
    if !user.email.is_empty() {
        // JumpCloud lower-cases emails; serve the client's spelling while it still names the same address.
        let value = custom_attribute(user, super::EMAIL_CASE_ATTRIBUTE)
            .filter(|v| v.to_lowercase() == user.email.to_lowercase())
            .unwrap_or(&user.email);
        emails.push(json!({"value": value, "type": "work", "primary": true}));
    }
    if let Some(alt) = present(&user.alternate_email) {
        emails.push(json!({"value": alt, "type": "other"}));
    }
    emails
}

/// The userName we serve: the client's exact userName when we created or renamed the user, else JumpCloud's username.
pub fn served_user_name<'a>(user: &'a JcUser, opts: &MappingOptions) -> &'a str {
    custom_attribute(user, &opts.username_attribute).unwrap_or(&user.username)
}

/// The externalId kept in a custom attribute.
pub fn user_external_id<'a>(user: &'a JcUser, opts: &MappingOptions) -> Option<&'a str> {
    custom_attribute(user, &opts.external_id_attribute)
}

/// Whether a JumpCloud state means "active" in SCIM. STAGED users are not active yet.
fn is_active(user: &JcUser) -> bool {
    match user.state.as_deref() {
        Some("ACTIVATED") => true,
        Some(_) => false,
        None => !user.suspended,
    }
}

/// The JumpCloud state, with `suspended` as the fallback when an old record has no `state`.
fn state_name(user: &JcUser) -> &str {
    match user.state.as_deref() {
        Some(s) if !s.is_empty() => s,
        _ if user.suspended => "SUSPENDED",
        _ => "ACTIVATED",
    }
}

/// Map one JumpCloud user to a SCIM User without `meta`.
#[allow(
    clippy::too_many_lines,
    reason = "an attribute table: one statement per mapped attribute"
)]
pub fn user_to_scim(user: &JcUser, ctx: &UserContext<'_>, opts: &MappingOptions) -> Value {
    let mut out = Map::new();
    let mut schemas = vec![Value::from(urn::USER)];
    out.insert("id".into(), Value::from(user.id.as_str()));
    if let Some(ext) = user_external_id(user, opts) {
        out.insert("externalId".into(), Value::from(ext));
    }
    out.insert("userName".into(), Value::from(served_user_name(user, opts)));

    let mut name = Map::new();
    let (given, middle, family) = (
        present(&user.firstname),
        present(&user.middlename),
        present(&user.lastname),
    );
    if let Some(f) = formatted_name(user, opts) {
        name.insert("formatted".into(), Value::from(f));
    }
    if let Some(v) = family {
        name.insert("familyName".into(), Value::from(v));
    }
    if let Some(v) = given {
        name.insert("givenName".into(), Value::from(v));
    }
    if let Some(v) = middle {
        name.insert("middleName".into(), Value::from(v));
    }
    if !name.is_empty() {
        out.insert("name".into(), Value::Object(name));
    }
    if let Some(v) = present(&user.displayname) {
        out.insert("displayName".into(), Value::from(v));
    }
    if let Some(v) = present(&user.job_title) {
        out.insert("title".into(), Value::from(v));
    }
    if let Some(v) = present(&user.employee_type) {
        out.insert("userType".into(), Value::from(v));
    }
    out.insert("active".into(), Value::Bool(is_active(user)));

    let emails = served_emails(user);
    if !emails.is_empty() {
        out.insert("emails".into(), Value::Array(emails));
    }

    let phones: Vec<Value> = user
        .phone_numbers
        .iter()
        .filter_map(|p| {
            let number = present(&p.number)?;
            let mut m = Map::new();
            m.insert("value".into(), Value::from(number));
            if let Some(t) = present(&p.kind) {
                m.insert("type".into(), Value::from(t));
            }
            Some(Value::Object(m))
        })
        .collect();
    if !phones.is_empty() {
        out.insert("phoneNumbers".into(), Value::Array(phones));
    }

    let addresses: Vec<Value> = user
        .addresses
        .iter()
        .filter_map(|a| {
            let mut m = Map::new();
            for (key, value) in [
                ("streetAddress", &a.street_address),
                ("locality", &a.locality),
                ("region", &a.region),
                ("postalCode", &a.postal_code),
                ("country", &a.country),
            ] {
                if let Some(v) = present(value) {
                    m.insert(key.into(), Value::from(v));
                }
            }
            if m.is_empty() {
                return None;
            }
            if let Some(t) = present(&a.kind) {
                m.insert("type".into(), Value::from(t));
            }
            Some(Value::Object(m))
        })
        .collect();
    if !addresses.is_empty() {
        out.insert("addresses".into(), Value::Array(addresses));
    }

    if !ctx.groups.is_empty() {
        let groups: Vec<Value> = ctx
            .groups
            .iter()
            .map(|g| {
                json!({
                    "value": g.id,
                    "$ref": format!("{}/Groups/{}", opts.scim_base, g.id),
                    "display": g.display,
                    "type": if g.indirect { "indirect" } else { "direct" },
                })
            })
            .collect();
        out.insert("groups".into(), Value::Array(groups));
    }
    if !ctx.entitlements.is_empty() {
        let ents: Vec<Value> = ctx
            .entitlements
            .iter()
            .map(|e| json!({"value": e.value, "display": e.display, "type": e.kind}))
            .collect();
        out.insert("entitlements".into(), Value::Array(ents));
    }

    let mut enterprise = Map::new();
    if let Some(v) = present(&user.employee_identifier) {
        enterprise.insert("employeeNumber".into(), Value::from(v));
    }
    if let Some(v) = present(&user.cost_center) {
        enterprise.insert("costCenter".into(), Value::from(v));
    }
    if let Some(v) = present(&user.company) {
        enterprise.insert("organization".into(), Value::from(v));
    }
    if let Some(v) = present(&user.department) {
        enterprise.insert("department".into(), Value::from(v));
    }
    if let Some(m) = present(&user.manager) {
        enterprise.insert(
            "manager".into(),
            json!({"value": m, "$ref": format!("{}/Users/{m}", opts.scim_base)}),
        );
    }
    if !enterprise.is_empty() {
        schemas.push(Value::from(urn::ENTERPRISE));
        out.insert(urn::ENTERPRISE.into(), Value::Object(enterprise));
    }

    let admin = user.admin.as_ref().is_some_and(|a| !a.is_null());
    let mut jc = json!({
        "state": state_name(user),
        "username": user.username,
        "passwordPending": !user.activated,
        "locked": user.account_locked,
        "mfaConfigured": user.mfa.as_ref().is_some_and(|m| m.configured),
        "admin": admin,
    });
    if let Some(d) = present(&user.description) {
        jc["description"] = Value::from(d);
    }
    schemas.push(Value::from(urn::JC_USER));
    out.insert(urn::JC_USER.into(), jc);

    out.insert("schemas".into(), Value::Array(schemas));
    Value::Object(out)
}

/// The name a user is shown by in `members[].display` and `manager.displayName`.
pub fn user_display(user: &JcUser, opts: &MappingOptions) -> String {
    if let Some(d) = present(&user.displayname) {
        return d.to_string();
    }
    let parts: Vec<&str> = [present(&user.firstname), present(&user.lastname)]
        .into_iter()
        .flatten()
        .collect();
    if parts.is_empty() {
        served_user_name(user, opts).to_string()
    } else {
        parts.join(" ")
    }
}

#[cfg(test)]
#[path = "user_tests.rs"]
mod tests;
