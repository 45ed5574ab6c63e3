use serde_json::json;

use super::*;
use crate::jumpcloud::{JcRestrictedField, JcUser};

fn opts() -> MappingOptions {
    MappingOptions::default()
}

#[test]
fn every_dialect_of_a_user_body_reads_the_same() {
    let nested = json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", urn::ENTERPRISE],
        "userName": "jane@example.com",
        "externalId": "ext-1",
        "name": {"givenName": "Jane", "familyName": "Doe"},
        "emails": [{"value": "Jane@Example.com", "type": "work", "primary": true}, {"value": "j@home.example", "type": "home"}],
        "active": "False",
        urn::ENTERPRISE: {"department": "R&D", "manager": {"value": "m1"}}
    });
    let flat = json!({
        "userName": "jane@example.com",
        "externalId": "ext-1",
        "name.givenName": "Jane",
        "name.familyName": "Doe",
        "emails": [{"value": "j@home.example"}, {"value": "Jane@Example.com", "primary": "True"}],
        "active": false,
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department": "R&D",
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager": [{"value": "m1", "$ref": "x"}],
        "roles": [],
        "meta": {"resourceType": "User"}
    });
    let a = desired_user(&nested).unwrap();
    let b = desired_user(&flat).unwrap();
    assert_eq!(a, b);
    assert_eq!(a.email.as_deref(), Some("Jane@Example.com"));
    assert_eq!(a.alternate_email.as_deref(), Some("j@home.example"));
    assert_eq!(a.active, Some(false));
    assert_eq!(a.manager.as_deref(), Some("m1"));
    assert_eq!(a.department.as_deref(), Some("R&D"));
}

#[test]
fn bad_bodies_say_what_is_wrong() {
    for (body, needle) in [
        (json!({"name": {"givenName": "x"}}), "userName is required"),
        (
            json!({"userName": "a", "active": "maybe"}),
            "active must be true or false",
        ),
        (
            json!({"userName": "a", "emails": "x@y"}),
            "emails must be an array",
        ),
        (
            json!({"userName": "a", "name": "Jane"}),
            "name must be an object",
        ),
        (json!([1, 2]), "JSON object"),
    ] {
        let err = desired_user(&body).unwrap_err();
        assert!(err.0.contains(needle), "{body}: {err}");
    }
}

#[test]
fn create_sends_every_given_field_and_our_attributes() {
    let d = desired_user(&json!({
        "userName": "jane@example.com", "externalId": "ext-1", "password": "Secret123",
        "name": {"givenName": "Jane"}, "emails": [{"value": "jane@example.com"}], "active": true,
        "phoneNumbers": [{"value": "+1 555", "type": "work"}],
        "addresses": [{"locality": "Denver", "type": "work"}]
    }))
    .unwrap();
    let w = user_write(&d, None, Some("jane"), &opts());
    assert_eq!(w.username.as_deref(), Some("jane"));
    assert_eq!(w.email.as_deref(), Some("jane@example.com"));
    assert_eq!(w.password.as_deref(), Some("Secret123"));
    assert_eq!(
        (w.state.as_deref(), w.suspended),
        (Some("ACTIVATED"), Some(false))
    );
    assert_eq!(w.firstname, Some(Some("Jane".into())));
    assert_eq!(w.lastname, None, "absent on create means not sent");
    assert_eq!(
        w.phone_numbers.as_ref().unwrap()[0].number.as_deref(),
        Some("+1 555")
    );
    assert_eq!(
        w.addresses.as_ref().unwrap()[0].locality.as_deref(),
        Some("Denver")
    );
    let attrs = w.attributes.clone().unwrap();
    assert!(
        attrs
            .iter()
            .any(|a| a.name == "scimUserName" && a.value == "jane@example.com")
    );
    assert!(
        attrs
            .iter()
            .any(|a| a.name == "scimExternalId" && a.value == "ext-1")
    );
    assert!(!format!("{w:?}").contains("Secret123"));
}

fn current() -> JcUser {
    JcUser {
        id: "u1".into(),
        username: "jane".into(),
        email: "jane@example.com".into(),
        firstname: Some("Jane".into()),
        lastname: Some("Doe".into()),
        department: Some("R&D".into()),
        job_title: Some("Engineer".into()),
        state: Some("ACTIVATED".into()),
        activated: true,
        attributes: vec![
            JcAttribute {
                name: "scimUserName".into(),
                value: "jane@example.com".into(),
            },
            JcAttribute {
                name: "badge".into(),
                value: "42".into(),
            },
        ],
        ..Default::default()
    }
}

#[test]
fn replace_clears_absent_mapped_fields_and_nothing_else() {
    let d = desired_user(&json!({
        "userName": "jane@example.com",
        "name": {"givenName": "Jane", "familyName": "Smith"},
        "emails": [{"value": "jane@example.com", "primary": true}]
    }))
    .unwrap();
    let w = user_write(&d, Some(&current()), Some("jane"), &opts());
    assert_eq!(w.lastname, Some(Some("Smith".into())));
    assert_eq!(w.department, Some(None), "absent department is cleared");
    assert_eq!(w.job_title, Some(None));
    assert_eq!(w.firstname, None, "unchanged is not sent");
    assert_eq!(w.username, None);
    assert_eq!(w.email, None);
    assert_eq!(w.state, None, "no active, no state change");
    assert_eq!(w.password, None);
    assert_eq!(w.attributes, None, "the custom attributes already say this");
}

#[test]
fn state_follows_active_and_staged_users_are_activated() {
    let base = json!({"userName": "jane@example.com", "emails": [{"value": "jane@example.com"}],
        "name": {"givenName": "Jane", "familyName": "Doe"}, "title": "Engineer",
        urn::ENTERPRISE: {"department": "R&D"}});
    let mut off = base.clone();
    off["active"] = json!(false);
    let w = user_write(
        &desired_user(&off).unwrap(),
        Some(&current()),
        None,
        &opts(),
    );
    assert_eq!(
        (w.state.as_deref(), w.suspended),
        (Some("SUSPENDED"), Some(true))
    );
    let mut staged = current();
    staged.state = Some("STAGED".into());
    let mut on = base.clone();
    on["active"] = json!("True");
    let w = user_write(&desired_user(&on).unwrap(), Some(&staged), None, &opts());
    assert_eq!(w.state.as_deref(), Some("ACTIVATED"));
    let w = user_write(&desired_user(&off).unwrap(), Some(&staged), None, &opts());
    assert_eq!(w.state, None, "a staged user is already inactive");
    assert!(is_noop(&w));
}

#[test]
fn restricted_fields_and_foreign_attributes_are_left_alone() {
    let mut cur = current();
    cur.restricted_fields = vec![JcRestrictedField {
        field: "department".into(),
        id: None,
        kind: Some("active_directory".into()),
    }];
    let d = desired_user(&json!({"userName": "jane.d@example.com", "externalId": "e9",
        "emails": [{"value": "jane@example.com"}], "name": {"givenName": "Jane", "familyName": "Doe"},
        "title": "Engineer"}))
    .unwrap();
    let w = user_write(&d, Some(&cur), Some("jane.d"), &opts());
    assert_eq!(w.department, None, "owned by Active Directory");
    let attrs = w.attributes.unwrap();
    assert!(attrs.iter().any(|a| a.name == "badge" && a.value == "42"));
    assert!(
        attrs
            .iter()
            .any(|a| a.name == "scimUserName" && a.value == "jane.d@example.com")
    );
    assert!(
        attrs
            .iter()
            .any(|a| a.name == "scimExternalId" && a.value == "e9")
    );
    assert_eq!(w.username.as_deref(), Some("jane.d"));
}
