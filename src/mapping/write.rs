//! SCIM User → the JumpCloud update that produces exactly it.
//!
//! [`desired_user`] reads what a SCIM resource says about every attribute we map (leniently: flattened
//! `name.givenName` keys, URN-keyed extension attributes, `"True"`/`"False"`, manager as an id, an object or
//! an array), and [`user_write`] turns it into a `JcUserWrite` against the current JumpCloud user: only
//! fields that differ are sent, mapped attributes absent from the resource are cleared, and nothing else is
//! touched (never the password unless given, never the state unless `active` is given, never fields
//! JumpCloud's `restrictedFields` gives to another authority, never custom attributes we do not map).

use serde_json::{Map, Value};

use super::{MAX_EMPLOYEE_ID, MAX_TEXT, MappingOptions, present, urn};
use crate::jumpcloud::{JcAddress, JcAttribute, JcPhoneNumber, JcUser, JcUserWrite};
use crate::scim::reference::References;

/// A SCIM body that cannot be mapped; the detail says what to change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidValue(pub String);

/// What a SCIM User says about the attributes we map onto JumpCloud.
#[derive(Clone, Default, PartialEq)]
pub struct DesiredUser {
    pub user_name: String,
    pub external_id: Option<String>,
    pub email: Option<String>,
    pub alternate_email: Option<String>,
    pub firstname: Option<String>,
    pub middlename: Option<String>,
    pub lastname: Option<String>,
    /// `name.formatted` as the client wrote it.
    pub name_formatted: Option<String>,
    pub displayname: Option<String>,
    pub job_title: Option<String>,
    pub employee_type: Option<String>,
    pub employee_identifier: Option<String>,
    pub cost_center: Option<String>,
    pub company: Option<String>,
    pub department: Option<String>,
    pub manager: Option<String>,
    /// (type, number)
    pub phone_numbers: Vec<(Option<String>, String)>,
    pub addresses: Vec<JcAddress>,
    pub active: Option<bool>,
    pub password: Option<String>,
    /// The JumpCloud extension's `description`.
    pub description: Option<String>,
    /// `emails` exactly as written (value, type, primary), in order.
    pub emails: Vec<Value>,
}

impl std::fmt::Debug for DesiredUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DesiredUser")
            .field("user_name", &self.user_name)
            .field("email", &self.email)
            .field("active", &self.active)
            .field("password", &self.password.as_ref().map(|_| "[redacted]"))
            .finish_non_exhaustive()
    }
}

/// Case-insensitive lookup of `key` in an object.
fn field<'a>(obj: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    obj.get(key)
        .or_else(|| {
            obj.iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(key))
                .map(|(_, v)| v)
        })
        .filter(|v| !v.is_null())
}

/// A string attribute; numbers and booleans are accepted as their text, anything else is an error.
fn string_of(v: Option<&Value>, name: &str) -> Result<Option<String>, InvalidValue> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        Some(Value::Bool(b)) => Ok(Some(b.to_string())),
        Some(other) => Err(InvalidValue(format!(
            "{name} must be a string, got {other}"
        ))),
    }
}

/// `true`, `false`, or their string forms in any case (Entra sends `"False"`).
pub fn boolean_of(v: &Value, name: &str) -> Result<bool, InvalidValue> {
    match v {
        Value::Bool(b) => Ok(*b),
        Value::String(s) if s.eq_ignore_ascii_case("true") => Ok(true),
        Value::String(s) if s.eq_ignore_ascii_case("false") => Ok(false),
        other => Err(InvalidValue(format!(
            "{name} must be true or false, got {other}"
        ))),
    }
}

/// Fold flattened keys (`name.givenName`) and URN-prefixed keys (`urn:…:User:department`) into the nested
/// shape, so one reader handles every dialect.
pub fn normalise_user_body(body: &Value) -> Result<Map<String, Value>, InvalidValue> {
    let Value::Object(obj) = body else {
        return Err(InvalidValue(
            "the request body must be a JSON object".into(),
        ));
    };
    let mut out = Map::new();
    for (k, v) in obj {
        let (ext, key) = split_urn_key(k);
        match (ext, key) {
            (Some(u), "") => merge(&mut out, u, v),
            (Some(u), key) => put(object_at(&mut out, u), key, v),
            (None, key) => put(&mut out, key, v),
        }
    }
    Ok(out)
}

/// The object under `key`, created (or replacing a non-object) as needed.
fn object_at<'a>(m: &'a mut Map<String, Value>, key: &str) -> &'a mut Map<String, Value> {
    let slot = m
        .entry(key.to_string())
        .or_insert_with(|| Value::Object(Map::new()));
    if !slot.is_object() {
        *slot = Value::Object(Map::new());
    }
    match slot {
        Value::Object(o) => o,
        _ => unreachable!("made an object above"),
    }
}

/// Insert `v` at `key`, where a dotted key names a sub-attribute.
fn put(m: &mut Map<String, Value>, key: &str, v: &Value) {
    match key.split_once('.') {
        Some((parent, sub)) => {
            object_at(m, parent).insert(sub.to_string(), v.clone());
        }
        None => merge(m, key, v),
    }
}

/// Insert `v` at `key`, merging objects so flattened and nested forms of one attribute combine.
fn merge(m: &mut Map<String, Value>, key: &str, v: &Value) {
    match (m.get_mut(key), v) {
        (Some(Value::Object(existing)), Value::Object(incoming)) => {
            for (ik, iv) in incoming {
                existing.insert(ik.clone(), iv.clone());
            }
        }
        _ => {
            m.insert(key.to_string(), v.clone());
        }
    }
}

/// `urn:…:enterprise:2.0:User:department` → (Some(urn), "department"); a bare extension URN → (Some(urn), "").
fn split_urn_key(k: &str) -> (Option<&'static str>, &str) {
    for u in [urn::ENTERPRISE, urn::JC_USER] {
        if k.eq_ignore_ascii_case(u) {
            return (Some(u), "");
        }
        if let Some(rest) = after_urn(k, u) {
            return (Some(u), rest);
        }
    }
    match after_urn(k, urn::USER) {
        Some(rest) => (None, rest),
        None => (None, k),
    }
}

/// What follows `urn:` in `k` when `k` is `<urn>:<rest>` (the URN compared case-blind). Compared
/// byte by byte, so a key with a multi-byte character where the URN ends is simply not a match.
fn after_urn<'k>(k: &'k str, urn: &str) -> Option<&'k str> {
    let head = k.as_bytes().get(..urn.len())?;
    if !head.eq_ignore_ascii_case(urn.as_bytes()) || k.as_bytes().get(urn.len()) != Some(&b':') {
        return None;
    }
    // The byte at urn.len() is ':', so urn.len() + 1 is a character boundary.
    k.get(urn.len() + 1..)
}

/// The manager id from an id string, `{"value": id}`, `{"$ref": uri}` (both when they agree) or a
/// one-element array of those; empty means none.
fn manager_of(v: Option<&Value>, refs: &References) -> Result<Option<String>, InvalidValue> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(a)) => match a.first() {
            None => Ok(None),
            Some(first) => manager_of(Some(first), refs),
        },
        Some(e @ (Value::String(_) | Value::Object(_))) => refs
            .element_id("manager", e)
            .map_err(|err| InvalidValue(err.detail)),
        Some(other) => Err(InvalidValue(format!(
            "manager must be an id or an object with a value or a $ref, got {}",
            crate::scim::error::excerpt(&other.to_string())
        ))),
    }
}

/// A text JumpCloud keeps at most `max` characters of.
fn bounded(v: Option<String>, name: &str, max: usize) -> Result<Option<String>, InvalidValue> {
    match v {
        Some(s) if s.chars().count() > max => Err(InvalidValue(format!(
            "{name} is {} characters long; JumpCloud keeps at most {max}",
            s.chars().count()
        ))),
        other => Ok(other),
    }
}

/// Read what a SCIM User body says. `userName` is required; the primary (else `work`, else first) email
/// becomes JumpCloud's email and the next one its alternate email.
#[allow(
    clippy::too_many_lines,
    reason = "an attribute table: one statement per mapped attribute"
)]
pub fn desired_user(body: &Value, opts: &MappingOptions) -> Result<DesiredUser, InvalidValue> {
    let obj = normalise_user_body(body)?;
    let refs = References::new(&opts.scim_base);
    let mut d = DesiredUser {
        user_name: string_of(field(&obj, "userName"), "userName")?
            .ok_or_else(|| InvalidValue("userName is required".into()))?,
        external_id: string_of(field(&obj, "externalId"), "externalId")?,
        displayname: string_of(field(&obj, "displayName"), "displayName")?,
        job_title: string_of(field(&obj, "title"), "title")?,
        employee_type: string_of(field(&obj, "userType"), "userType")?,
        password: string_of(field(&obj, "password"), "password")?,
        ..DesiredUser::default()
    };
    if let Some(v) = field(&obj, "active") {
        d.active = Some(boolean_of(v, "active")?);
    }
    match field(&obj, "name") {
        Some(Value::Object(n)) => {
            d.firstname = string_of(field(n, "givenName"), "name.givenName")?;
            d.middlename = string_of(field(n, "middleName"), "name.middleName")?;
            d.lastname = string_of(field(n, "familyName"), "name.familyName")?;
            d.name_formatted = string_of(field(n, "formatted"), "name.formatted")?;
        }
        None => {}
        Some(other) => return Err(InvalidValue(format!("name must be an object, got {other}"))),
    }
    let emails = match field(&obj, "emails") {
        None => Vec::new(),
        Some(Value::Array(a)) => a.clone(),
        Some(Value::Object(o)) => vec![Value::Object(o.clone())],
        Some(other) => {
            return Err(InvalidValue(format!(
                "emails must be an array, got {other}"
            )));
        }
    };
    let mut parsed: Vec<(String, Option<String>, bool)> = Vec::new();
    for e in &emails {
        let Value::Object(o) = e else {
            return Err(InvalidValue(format!(
                "each email must be an object with a value, got {e}"
            )));
        };
        let Some(value) = string_of(field(o, "value"), "emails.value")? else {
            continue;
        };
        let kind = string_of(field(o, "type"), "emails.type")?;
        let primary = match field(o, "primary") {
            Some(p) => boolean_of(p, "emails.primary")?,
            None => false,
        };
        let mut exact = Map::new();
        exact.insert("value".into(), Value::from(value.as_str()));
        if let Some(k) = &kind {
            exact.insert("type".into(), Value::from(k.as_str()));
        }
        if let Some(p) = field(o, "primary") {
            exact.insert(
                "primary".into(),
                Value::Bool(boolean_of(p, "emails.primary")?),
            );
        }
        d.emails.push(Value::Object(exact));
        parsed.push((value, kind, primary));
    }
    let mut distinct: Vec<String> = parsed.iter().map(|(v, _, _)| v.to_lowercase()).collect();
    distinct.sort();
    distinct.dedup();
    if distinct.len() > 2 {
        return Err(InvalidValue(format!(
            "emails names {} distinct addresses; JumpCloud holds two per user (the primary and one alternate)",
            distinct.len()
        )));
    }
    let primary_idx = parsed
        .iter()
        .position(|(_, _, p)| *p)
        .or_else(|| {
            parsed
                .iter()
                .position(|(_, t, _)| t.as_deref().is_some_and(|t| t.eq_ignore_ascii_case("work")))
        })
        .or(if parsed.is_empty() { None } else { Some(0) });
    if let Some(i) = primary_idx {
        d.email = Some(parsed[i].0.clone());
        d.alternate_email = parsed
            .iter()
            .enumerate()
            .find(|(j, (v, _, _))| *j != i && !v.eq_ignore_ascii_case(&parsed[i].0))
            .map(|(_, (v, _, _))| v.clone());
    }
    if let Some(v) = field(&obj, "phoneNumbers") {
        let Value::Array(a) = v else {
            return Err(InvalidValue(format!(
                "phoneNumbers must be an array, got {v}"
            )));
        };
        for p in a {
            let Value::Object(o) = p else {
                return Err(InvalidValue(format!(
                    "each phone number must be an object, got {p}"
                )));
            };
            if let Some(number) = string_of(field(o, "value"), "phoneNumbers.value")? {
                d.phone_numbers
                    .push((string_of(field(o, "type"), "phoneNumbers.type")?, number));
            }
        }
    }
    if let Some(v) = field(&obj, "addresses") {
        let Value::Array(a) = v else {
            return Err(InvalidValue(format!("addresses must be an array, got {v}")));
        };
        for p in a {
            let Value::Object(o) = p else {
                return Err(InvalidValue(format!(
                    "each address must be an object, got {p}"
                )));
            };
            let addr = JcAddress {
                kind: string_of(field(o, "type"), "addresses.type")?,
                street_address: string_of(field(o, "streetAddress"), "addresses.streetAddress")?,
                locality: string_of(field(o, "locality"), "addresses.locality")?,
                region: string_of(field(o, "region"), "addresses.region")?,
                postal_code: string_of(field(o, "postalCode"), "addresses.postalCode")?,
                country: string_of(field(o, "country"), "addresses.country")?,
                ..JcAddress::default()
            };
            let empty = addr.street_address.is_none()
                && addr.locality.is_none()
                && addr.region.is_none()
                && addr.postal_code.is_none()
                && addr.country.is_none();
            if !empty {
                d.addresses.push(addr);
            }
        }
    }
    if let Some(Value::Object(ent)) = obj.get(urn::ENTERPRISE) {
        d.employee_identifier = string_of(field(ent, "employeeNumber"), "employeeNumber")?;
        d.cost_center = string_of(field(ent, "costCenter"), "costCenter")?;
        d.company = string_of(field(ent, "organization"), "organization")?;
        d.department = string_of(field(ent, "department"), "department")?;
        d.manager = manager_of(field(ent, "manager"), &refs)?;
    }
    if let Some(Value::Object(jc)) = obj.get(urn::JC_USER) {
        d.description = string_of(field(jc, "description"), "description")?;
    }
    check_lengths(&d)?;
    emails_to_keep(&d)?;
    Ok(d)
}

/// JumpCloud's field lengths: 1024 characters for text and custom attribute values (userName and
/// externalId are kept in custom attributes), 256 for `employeeIdentifier`.
fn check_lengths(d: &DesiredUser) -> Result<(), InvalidValue> {
    let texts = [
        ("userName", Some(&d.user_name)),
        ("externalId", d.external_id.as_ref()),
        ("emails.value", d.email.as_ref()),
        ("emails.value", d.alternate_email.as_ref()),
        ("name.givenName", d.firstname.as_ref()),
        ("name.middleName", d.middlename.as_ref()),
        ("name.familyName", d.lastname.as_ref()),
        ("name.formatted", d.name_formatted.as_ref()),
        ("displayName", d.displayname.as_ref()),
        ("title", d.job_title.as_ref()),
        ("userType", d.employee_type.as_ref()),
        ("costCenter", d.cost_center.as_ref()),
        ("organization", d.company.as_ref()),
        ("department", d.department.as_ref()),
        ("description", d.description.as_ref()),
    ];
    for (name, v) in texts {
        bounded(v.cloned(), name, MAX_TEXT)?;
    }
    bounded(
        d.employee_identifier.clone(),
        "employeeNumber",
        MAX_EMPLOYEE_ID,
    )?;
    for (_, number) in &d.phone_numbers {
        bounded(Some(number.clone()), "phoneNumbers.value", MAX_TEXT)?;
    }
    for a in &d.addresses {
        for (name, v) in [
            ("addresses.streetAddress", &a.street_address),
            ("addresses.locality", &a.locality),
            ("addresses.region", &a.region),
            ("addresses.postalCode", &a.postal_code),
            ("addresses.country", &a.country),
        ] {
            bounded(v.clone(), name, MAX_TEXT)?;
        }
    }
    Ok(())
}

/// `emails` as JumpCloud alone would serve them: its address (as the client spelt it) as the `work` primary
/// and the alternate as `other`. Written emails of any other shape are kept in [`super::EMAILS_ATTRIBUTE`].
fn default_emails(d: &DesiredUser) -> Vec<Value> {
    let mut out = Vec::new();
    if let Some(e) = &d.email {
        out.push(serde_json::json!({"value": e, "type": "work", "primary": true}));
    }
    if let Some(a) = &d.alternate_email {
        out.push(serde_json::json!({"value": a, "type": "other"}));
    }
    out
}

/// The exact emails to keep beside JumpCloud's two addresses, when they differ from how JumpCloud's would
/// be served; an error when they are longer than a custom attribute holds.
pub fn emails_to_keep(d: &DesiredUser) -> Result<Option<String>, InvalidValue> {
    let lower_email = d.email.as_deref().is_none_or(|e| e.to_lowercase() == e);
    if d.emails == default_emails(d) && lower_email {
        return Ok(None);
    }
    let text = Value::Array(d.emails.clone()).to_string();
    if text.chars().count() > MAX_TEXT {
        return Err(InvalidValue(format!(
            "emails as written take {} characters to keep; JumpCloud keeps at most {MAX_TEXT} (shorten the types)",
            text.chars().count()
        )));
    }
    Ok(Some(text))
}

/// The JumpCloud state a SCIM `active` asks for, given the current state (`None` on create).
fn state_for(active: Option<bool>, current: Option<&JcUser>) -> Option<(&'static str, bool)> {
    let cur = current.and_then(|c| c.state.as_deref());
    match active? {
        true if cur != Some("ACTIVATED") => Some(("ACTIVATED", false)),
        false if cur != Some("SUSPENDED") && cur != Some("STAGED") => Some(("SUSPENDED", true)),
        _ => None,
    }
}

fn restricted(current: Option<&JcUser>, field: &str) -> bool {
    current.is_some_and(|c| c.restricted_fields.iter().any(|r| r.field == field))
}

/// Set `slot` when the desired value differs from the current one (`None` clears).
fn scalar(
    slot: &mut Option<Option<String>>,
    want: &Option<String>,
    have: Option<&Option<String>>,
    skip: bool,
) {
    if skip {
        return;
    }
    match have {
        None => {
            if want.is_some() {
                *slot = Some(want.clone());
            }
        }
        Some(have) => {
            let have = present(have);
            if have != want.as_deref() {
                *slot = Some(want.clone());
            }
        }
    }
}

/// The JumpCloud body that makes `current` (or a new user, when `None`) say what `d` says. `username` is
/// the JumpCloud username to set (derived by the caller's policy), `None` to leave it.
#[allow(
    clippy::too_many_lines,
    reason = "an attribute table: one statement per mapped attribute"
)]
pub fn user_write(
    d: &DesiredUser,
    current: Option<&JcUser>,
    username: Option<&str>,
    opts: &MappingOptions,
) -> JcUserWrite {
    let mut w = JcUserWrite::default();
    if let Some(u) = username
        && current.is_none_or(|c| c.username != u)
        && !restricted(current, "username")
    {
        w.username = Some(u.to_string());
    }
    if let Some(e) = &d.email {
        let lower = e.to_lowercase();
        if current.is_none_or(|c| c.email != lower) && !restricted(current, "email") {
            w.email = Some(e.clone());
        }
    }
    if d.password.is_some() && !restricted(current, "password") {
        w.password = d.password.clone();
    }
    if let Some((state, suspended)) = state_for(d.active, current) {
        w.state = Some(state.into());
        w.suspended = Some(suspended);
    }
    let c = current;
    scalar(
        &mut w.firstname,
        &d.firstname,
        c.map(|c| &c.firstname),
        restricted(c, "firstname"),
    );
    scalar(
        &mut w.middlename,
        &d.middlename,
        c.map(|c| &c.middlename),
        restricted(c, "middlename"),
    );
    scalar(
        &mut w.lastname,
        &d.lastname,
        c.map(|c| &c.lastname),
        restricted(c, "lastname"),
    );
    scalar(
        &mut w.displayname,
        &d.displayname,
        c.map(|c| &c.displayname),
        restricted(c, "displayname"),
    );
    scalar(
        &mut w.alternate_email,
        &d.alternate_email,
        c.map(|c| &c.alternate_email),
        false,
    );
    scalar(
        &mut w.job_title,
        &d.job_title,
        c.map(|c| &c.job_title),
        restricted(c, "jobTitle"),
    );
    scalar(
        &mut w.employee_type,
        &d.employee_type,
        c.map(|c| &c.employee_type),
        restricted(c, "employeeType"),
    );
    scalar(
        &mut w.employee_identifier,
        &d.employee_identifier,
        c.map(|c| &c.employee_identifier),
        restricted(c, "employeeIdentifier"),
    );
    scalar(
        &mut w.cost_center,
        &d.cost_center,
        c.map(|c| &c.cost_center),
        restricted(c, "costCenter"),
    );
    scalar(
        &mut w.company,
        &d.company,
        c.map(|c| &c.company),
        restricted(c, "company"),
    );
    scalar(
        &mut w.department,
        &d.department,
        c.map(|c| &c.department),
        restricted(c, "department"),
    );
    scalar(&mut w.manager, &d.manager, c.map(|c| &c.manager), false);
    scalar(
        &mut w.description,
        &d.description,
        c.map(|c| &c.description),
        restricted(c, "description"),
    );

    // Arrays replace JumpCloud's whole array: send only when the mapped content differs.
    let phones: Vec<JcPhoneNumber> = d
        .phone_numbers
        .iter()
        .map(|(t, n)| JcPhoneNumber {
            id: None,
            kind: t.clone(),
            number: Some(n.clone()),
        })
        .collect();
    let have_phones: Vec<(Option<String>, String)> = c
        .map(|c| {
            c.phone_numbers
                .iter()
                .filter_map(|p| {
                    Some((
                        present(&p.kind).map(String::from),
                        present(&p.number)?.to_string(),
                    ))
                })
                .collect()
        })
        .unwrap_or_default();
    if have_phones != d.phone_numbers && !restricted(c, "phoneNumbers") {
        w.phone_numbers = Some(phones);
    }
    let norm = |a: &JcAddress| {
        (
            present(&a.kind).map(String::from),
            present(&a.street_address).map(String::from),
            present(&a.locality).map(String::from),
            present(&a.region).map(String::from),
            present(&a.postal_code).map(String::from),
            present(&a.country).map(String::from),
        )
    };
    let have_addr: Vec<_> = c
        .map(|c| {
            c.addresses
                .iter()
                .map(norm)
                .filter(|t| {
                    t.1.is_some()
                        || t.2.is_some()
                        || t.3.is_some()
                        || t.4.is_some()
                        || t.5.is_some()
                })
                .collect()
        })
        .unwrap_or_default();
    let want_addr: Vec<_> = d.addresses.iter().map(norm).collect();
    if have_addr != want_addr && !restricted(c, "addresses") {
        w.addresses = Some(d.addresses.clone());
    }

    // Our custom attributes; every other custom attribute is kept as it is.
    let mut attrs: Vec<JcAttribute> = c.map(|c| c.attributes.clone()).unwrap_or_default();
    let before = attrs.clone();
    set_attribute(&mut attrs, &opts.username_attribute, Some(&d.user_name));
    // The exact emails replace the older attribute that kept only the primary address's spelling.
    set_attribute(&mut attrs, super::EMAIL_CASE_ATTRIBUTE, None);
    let exact_emails = emails_to_keep(d).ok().flatten();
    set_attribute(&mut attrs, super::EMAILS_ATTRIBUTE, exact_emails.as_deref());
    set_attribute(
        &mut attrs,
        super::NAME_FORMATTED_ATTRIBUTE,
        d.name_formatted.as_deref(),
    );
    set_attribute(
        &mut attrs,
        &opts.external_id_attribute,
        d.external_id.as_deref(),
    );
    if attrs != before {
        w.attributes = Some(attrs);
    }
    w
}

fn set_attribute(attrs: &mut Vec<JcAttribute>, name: &str, value: Option<&str>) {
    match value {
        Some(v) => match attrs.iter_mut().find(|a| a.name == name) {
            Some(a) => {
                if a.value != v {
                    a.value = v.to_string();
                }
            }
            None => attrs.push(JcAttribute {
                name: name.to_string(),
                value: v.to_string(),
            }),
        },
        None => attrs.retain(|a| a.name != name),
    }
}

/// Whether a write body changes nothing.
pub fn is_noop(w: &JcUserWrite) -> bool {
    *w == JcUserWrite::default()
}

#[cfg(test)]
#[path = "write_tests.rs"]
mod tests;
