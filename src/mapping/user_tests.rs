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
