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
mod tests {
    use super::*;
    use crate::jumpcloud::{JcAddress, JcAttribute, JcMfa, JcPhoneNumber};

    fn jane() -> JcUser {
        JcUser {
            id: "5f0c1a2b3c4d5e6f7a8b9c0d".into(),
            username: "jane.doe".into(),
            email: "jane.doe@example.com".into(),
            firstname: Some("Jane".into()),
            middlename: Some("Q".into()),
            lastname: Some("Doe".into()),
            displayname: Some("Jane Doe".into()),
            alternate_email: Some("jane@home.example".into()),
            state: Some("ACTIVATED".into()),
            activated: true,
            employee_identifier: Some("E-1001".into()),
            job_title: Some("Engineer".into()),
            department: Some("R&D".into()),
            cost_center: Some("CC-7".into()),
            company: Some("Example Corp".into()),
            employee_type: Some("Employee".into()),
            manager: Some("5f0c1a2b3c4d5e6f7a8b9c0e".into()),
            phone_numbers: vec![
                JcPhoneNumber {
                    id: Some("p1".into()),
                    kind: Some("work".into()),
                    number: Some("+1 555 0100".into()),
                },
                JcPhoneNumber {
                    id: None,
                    kind: Some("mobile".into()),
                    number: Some(String::new()),
                },
            ],
            addresses: vec![JcAddress {
                kind: Some("work".into()),
                street_address: Some("1 Main St".into()),
                locality: Some("Denver".into()),
                region: Some("CO".into()),
                postal_code: Some("80202".into()),
                country: Some("US".into()),
                ..Default::default()
            }],
            attributes: vec![
                JcAttribute {
                    name: "scimUserName".into(),
                    value: "jane.doe@example.com".into(),
                },
                JcAttribute {
                    name: "scimExternalId".into(),
                    value: "okta-00u1".into(),
                },
                JcAttribute {
                    name: "costCode".into(),
                    value: "x".into(),
                },
                JcAttribute {
                    name: "scimNameFormatted".into(),
                    value: "Jane Q. Doe".into(),
                },
            ],
            mfa: Some(JcMfa {
                configured: true,
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn full_user_maps_every_attribute() {
        let opts = MappingOptions::default();
        let groups = vec![GroupRef {
            id: "g1".into(),
            display: "Engineering".into(),
            indirect: false,
        }];
        let ents = vec![Entitlement {
            value: "d1".into(),
            display: "corp.example.com".into(),
            kind: "active_directory",
        }];
        let ctx = UserContext {
            groups: &groups,
            entitlements: &ents,
        };
        let v = user_to_scim(&jane(), &ctx, &opts);
        let cases: &[(&str, Value)] = &[
            ("/id", json!("5f0c1a2b3c4d5e6f7a8b9c0d")),
            ("/userName", json!("jane.doe@example.com")),
            ("/externalId", json!("okta-00u1")),
            ("/name/givenName", json!("Jane")),
            ("/name/middleName", json!("Q")),
            ("/name/familyName", json!("Doe")),
            ("/name/formatted", json!("Jane Q. Doe")),
            ("/displayName", json!("Jane Doe")),
            ("/title", json!("Engineer")),
            ("/userType", json!("Employee")),
            ("/active", json!(true)),
            (
                "/emails/0",
                json!({"value": "jane.doe@example.com", "type": "work", "primary": true}),
            ),
            (
                "/emails/1",
                json!({"value": "jane@home.example", "type": "other"}),
            ),
            (
                "/phoneNumbers",
                json!([{"value": "+1 555 0100", "type": "work"}]),
            ),
            ("/addresses/0/locality", json!("Denver")),
            ("/addresses/0/type", json!("work")),
            ("/groups/0/value", json!("g1")),
            ("/groups/0/type", json!("direct")),
            (
                "/groups/0/$ref",
                json!("http://localhost/scim/v2/Groups/g1"),
            ),
            ("/entitlements/0/type", json!("active_directory")),
            (
                "/urn:ietf:params:scim:schemas:extension:enterprise:2.0:User/employeeNumber",
                json!("E-1001"),
            ),
            (
                "/urn:ietf:params:scim:schemas:extension:enterprise:2.0:User/organization",
                json!("Example Corp"),
            ),
            (
                "/urn:ietf:params:scim:schemas:extension:enterprise:2.0:User/costCenter",
                json!("CC-7"),
            ),
            (
                "/urn:ietf:params:scim:schemas:extension:enterprise:2.0:User/department",
                json!("R&D"),
            ),
            (
                "/urn:ietf:params:scim:schemas:extension:enterprise:2.0:User/manager",
                json!({"value": "5f0c1a2b3c4d5e6f7a8b9c0e",
                       "$ref": "http://localhost/scim/v2/Users/5f0c1a2b3c4d5e6f7a8b9c0e"}),
            ),
            (
                "/urn:jumpcloud-scim:schemas:extension:jumpcloud:2.0:User/state",
                json!("ACTIVATED"),
            ),
            (
                "/urn:jumpcloud-scim:schemas:extension:jumpcloud:2.0:User/username",
                json!("jane.doe"),
            ),
            (
                "/urn:jumpcloud-scim:schemas:extension:jumpcloud:2.0:User/passwordPending",
                json!(false),
            ),
            (
                "/urn:jumpcloud-scim:schemas:extension:jumpcloud:2.0:User/mfaConfigured",
                json!(true),
            ),
            (
                "/urn:jumpcloud-scim:schemas:extension:jumpcloud:2.0:User/admin",
                json!(false),
            ),
        ];
        for (pointer, want) in cases {
            assert_eq!(v.pointer(pointer), Some(want), "{pointer} in {v:#}");
        }
        assert_eq!(v["schemas"].as_array().unwrap().len(), 3);
        assert!(v.get("password").is_none());
    }

    #[test]
    fn states_map_to_active() {
        let opts = MappingOptions::default();
        for (state, suspended, activated, active, shown) in [
            (Some("ACTIVATED"), false, true, true, "ACTIVATED"),
            (Some("SUSPENDED"), true, true, false, "SUSPENDED"),
            (Some("STAGED"), false, false, false, "STAGED"),
            (None, true, true, false, "SUSPENDED"),
            (None, false, false, true, "ACTIVATED"),
        ] {
            let u = JcUser {
                id: "a".into(),
                username: "u".into(),
                email: "u@x".into(),
                state: state.map(Into::into),
                suspended,
                activated,
                ..Default::default()
            };
            let v = user_to_scim(&u, &UserContext::default(), &opts);
            assert_eq!(v["active"], json!(active), "{state:?}");
            assert_eq!(v[urn::JC_USER]["state"], json!(shown));
            assert_eq!(v[urn::JC_USER]["passwordPending"], json!(!activated));
        }
    }

    #[test]
    fn minimal_user_omits_unset_attributes() {
        let u = JcUser {
            id: "a".into(),
            username: "bare".into(),
            email: "bare@example.com".into(),
            firstname: Some(String::new()),
            state: Some("ACTIVATED".into()),
            activated: true,
            ..Default::default()
        };
        let v = user_to_scim(&u, &UserContext::default(), &MappingOptions::default());
        for absent in [
            "name",
            "displayName",
            "externalId",
            "groups",
            "entitlements",
            "phoneNumbers",
            urn::ENTERPRISE,
        ] {
            assert!(v.get(absent).is_none(), "{absent} in {v}");
        }
        assert_eq!(v["userName"], "bare");
        assert_eq!(v["schemas"], json!([urn::USER, urn::JC_USER]));
    }

    #[test]
    fn formatted_name_is_derived_only_for_users_no_client_wrote() {
        let opts = MappingOptions::default();
        let mut u = jane();
        let formatted = |u: &JcUser| {
            user_to_scim(u, &UserContext::default(), &opts)["name"]
                .get("formatted")
                .cloned()
        };
        assert_eq!(formatted(&u), Some(json!("Jane Q. Doe")));
        // Written through this service without a formatted name: none is invented.
        u.attributes.retain(|a| a.name != "scimNameFormatted");
        assert_eq!(formatted(&u), None);
        // Created in JumpCloud itself: derived from the parts.
        u.attributes.retain(|a| a.name != "scimUserName");
        assert_eq!(formatted(&u), Some(json!("Jane Q Doe")));
    }

    #[test]
    fn emails_come_back_as_written_while_they_name_what_jumpcloud_holds() {
        let opts = MappingOptions::default();
        let mut u = jane();
        let written = json!([
            {"value": "Jane@Home.example", "type": "home"},
            {"value": "jane.doe@example.com", "type": "work", "primary": true}
        ]);
        u.attributes.push(JcAttribute {
            name: "scimEmails".into(),
            value: written.to_string(),
        });
        let emails = |u: &JcUser| user_to_scim(u, &UserContext::default(), &opts)["emails"].clone();
        assert_eq!(emails(&u), written);
        // Changed in JumpCloud since: JumpCloud's addresses win.
        u.alternate_email = Some("other@example.com".into());
        assert_eq!(
            emails(&u),
            json!([
                {"value": "jane.doe@example.com", "type": "work", "primary": true},
                {"value": "other@example.com", "type": "other"}
            ])
        );
    }

    #[test]
    fn display_falls_back_to_names_then_user_name() {
        let opts = MappingOptions::default();
        let mut u = jane();
        assert_eq!(user_display(&u, &opts), "Jane Doe");
        u.displayname = None;
        u.firstname = Some("J".into());
        assert_eq!(user_display(&u, &opts), "J Doe");
        u.firstname = None;
        u.lastname = None;
        assert_eq!(user_display(&u, &opts), "jane.doe@example.com");
    }
}
