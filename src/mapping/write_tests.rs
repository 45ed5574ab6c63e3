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
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager": [{"value": "m1", "$ref": "Users/m1"}],
        "roles": [],
        "meta": {"resourceType": "User"}
    });
    let mut a = desired_user(&nested, &opts()).unwrap();
    let mut b = desired_user(&flat, &opts()).unwrap();
    // Each keeps its emails exactly as written; everything else reads the same.
    assert_eq!(a.emails, nested["emails"].as_array().unwrap().clone());
    assert_eq!(
        b.emails,
        vec![
            json!({"value": "j@home.example"}),
            json!({"value": "Jane@Example.com", "primary": true})
        ]
    );
    a.emails.clear();
    b.emails.clear();
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
        let err = desired_user(&body, &opts()).unwrap_err();
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
    }), &opts())
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
    let d = desired_user(
        &json!({
            "userName": "jane@example.com",
            "name": {"givenName": "Jane", "familyName": "Smith"},
            "emails": [{"value": "jane@example.com", "type": "work", "primary": true}]
        }),
        &opts(),
    )
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
    let base = json!({"userName": "jane@example.com",
        "emails": [{"value": "jane@example.com", "type": "work", "primary": true}],
        "name": {"givenName": "Jane", "familyName": "Doe"}, "title": "Engineer",
        urn::ENTERPRISE: {"department": "R&D"}});
    let mut off = base.clone();
    off["active"] = json!(false);
    let w = user_write(
        &desired_user(&off, &opts()).unwrap(),
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
    let w = user_write(
        &desired_user(&on, &opts()).unwrap(),
        Some(&staged),
        None,
        &opts(),
    );
    assert_eq!(w.state.as_deref(), Some("ACTIVATED"));
    let w = user_write(
        &desired_user(&off, &opts()).unwrap(),
        Some(&staged),
        None,
        &opts(),
    );
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
        "title": "Engineer"}), &opts())
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

#[test]
fn emails_name_formatted_and_description_are_kept_as_written() {
    let d = desired_user(
        &json!({
            "userName": "jane@example.com",
            "name": {"formatted": "Dr. Jane Doe", "givenName": "Jane"},
            "emails": [
                {"value": "Jane@Example.com", "type": "home", "primary": false},
                {"value": "jane@work.example", "type": "work", "primary": true}
            ],
            urn::JC_USER: {"description": "contractor"}
        }),
        &opts(),
    )
    .unwrap();
    assert_eq!(d.email.as_deref(), Some("jane@work.example"));
    assert_eq!(d.alternate_email.as_deref(), Some("Jane@Example.com"));
    let w = user_write(&d, Some(&current()), None, &opts());
    assert_eq!(w.description, Some(Some("contractor".into())));
    let attrs = w.attributes.unwrap();
    let attr = |name: &str| {
        attrs
            .iter()
            .find(|a| a.name == name)
            .map(|a| a.value.clone())
    };
    assert_eq!(attr("scimNameFormatted").as_deref(), Some("Dr. Jane Doe"));
    let kept: Value = serde_json::from_str(&attr("scimEmails").unwrap()).unwrap();
    assert_eq!(
        kept[0],
        json!({"value": "Jane@Example.com", "type": "home", "primary": false})
    );
}

#[test]
fn what_jumpcloud_cannot_hold_is_refused() {
    let three = json!({"userName": "a", "emails": [
        {"value": "a@x.example"}, {"value": "b@x.example"}, {"value": "c@x.example"}]});
    let e = desired_user(&three, &opts()).unwrap_err();
    assert!(
        e.0.contains("3 distinct addresses") && e.0.contains("two"),
        "{e}"
    );
    // The same address twice is one address.
    let twice = json!({"userName": "a", "emails": [
        {"value": "a@x.example", "type": "work"}, {"value": "A@x.example", "type": "home"}]});
    assert!(desired_user(&twice, &opts()).is_ok());
    let long = json!({"userName": "a", "title": "t".repeat(1025)});
    let e = desired_user(&long, &opts()).unwrap_err();
    assert!(e.0.contains("title") && e.0.contains("1024"), "{e}");
    let id = json!({"userName": "a", urn::ENTERPRISE: {"employeeNumber": "9".repeat(257)}});
    assert!(desired_user(&id, &opts()).unwrap_err().0.contains("256"));
}

#[test]
fn manager_by_value_ref_or_both() {
    let o = MappingOptions {
        scim_base: "https://scim.example.com/scim/v2".into(),
        ..MappingOptions::default()
    };
    let with = |m: Value| {
        desired_user(
            &json!({"userName": "a", urn::ENTERPRISE: {"manager": m}}),
            &o,
        )
    };
    let uri = "https://scim.example.com/scim/v2/Users/m1";
    for m in [
        json!("m1"),
        json!({"value": "m1"}),
        json!({"$ref": uri}),
        json!({"value": "m1", "$ref": uri}),
        json!([{"$ref": uri}]),
    ] {
        assert_eq!(
            with(m.clone()).unwrap().manager.as_deref(),
            Some("m1"),
            "{m}"
        );
    }
    assert!(
        with(json!({"value": "m2", "$ref": uri}))
            .unwrap_err()
            .0
            .contains("different users")
    );
    assert!(
        with(json!({"$ref": "https://elsewhere.example/Users/m1"}))
            .unwrap_err()
            .0
            .contains("manager.$ref")
    );
}

#[test]
fn a_key_with_a_wide_character_where_a_urn_ends_is_an_unknown_attribute_not_a_panic() {
    // One byte longer than the URN, with a two-byte character straddling the URN's end.
    for key in [
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:UseƝx",
        "urn:ietf:params:scim:schemas:core:2.0:UseƝx",
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:ƝƝ",
    ] {
        let body = json!({"userName": "jane@example.com", key: "x"});
        // Whatever the verdict, it is a verdict: no slice panics.
        let _ = desired_user(&body, &opts());
        assert_eq!(
            split_urn_key(key).0.is_some(),
            key.ends_with(":ƝƝ"),
            "{key}"
        );
    }
    assert_eq!(
        split_urn_key("URN:ietf:params:scim:schemas:core:2.0:User:userName"),
        (None, "userName")
    );
}
