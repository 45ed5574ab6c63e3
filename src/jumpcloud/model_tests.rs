use serde_json::json;

use super::*;

#[test]
fn v1_user_reads_leniently() {
    let user: JcUser = serde_json::from_value(json!({
        "_id": "5f1a00000000000000000001",
        "id": "5f1a00000000000000000001",
        "username": "jane.doe",
        "email": "jane@example.com",
        "firstname": "Jane",
        "middlename": null,
        "displayname": "",
        "alternateEmail": "jane@home.example",
        "state": "ACTIVATED",
        "suspended": false,
        "activated": null,
        "account_locked": true,
        "employeeIdentifier": null,
        "jobTitle": "Engineer",
        "costCenter": "CC-1",
        "employeeType": "contractor",
        "manager": "5f1a00000000000000000002",
        "phoneNumbers": [{"id": "p1", "type": "work", "number": "+1 555 0100"}],
        "addresses": null,
        "attributes": [
            {"name": "badge", "value": "17"},
            {"name": "level", "value": 3},
            {"name": "remote", "value": true},
            {"name": "nothing", "value": null}
        ],
        "mfa": {"configured": true, "exclusion": false, "exclusionDays": "7", "exclusionUntil": null},
        "admin": null,
        "restrictedFields": [{"field": "email", "id": "ad1", "type": "active_directory"}],
        "created": "2021-02-12T10:00:00.000Z",
        "unix_uid": 5001,
        "unix_guid": 5001,
        "ssh_keys": [],
        "systemUsername": "jdoe",
        "mfaEnrollment": {"overallStatus": "ENROLLED"},
        "tags": ["a"],
        "someFutureField": {"deep": [1, 2, 3]}
    }))
    .unwrap();
    assert_eq!(user.id, "5f1a00000000000000000001");
    assert_eq!(user.username, "jane.doe");
    assert_eq!(user.middlename, None);
    assert_eq!(user.displayname.as_deref(), Some(""));
    assert!(!user.activated, "null flag reads as false");
    assert!(user.account_locked);
    assert_eq!(user.employee_identifier, None);
    assert_eq!(user.job_title.as_deref(), Some("Engineer"));
    assert_eq!(user.cost_center.as_deref(), Some("CC-1"));
    assert_eq!(user.phone_numbers[0].kind.as_deref(), Some("work"));
    assert!(user.addresses.is_empty(), "null array reads as empty");
    let attrs: Vec<_> = user
        .attributes
        .iter()
        .map(|a| (a.name.as_str(), a.value.as_str()))
        .collect();
    assert_eq!(
        attrs,
        [
            ("badge", "17"),
            ("level", "3"),
            ("remote", "true"),
            ("nothing", "")
        ]
    );
    let mfa = user.mfa.unwrap();
    assert!(mfa.configured);
    assert_eq!(mfa.exclusion_days, Some(7));
    assert_eq!(user.admin, None);
    assert_eq!(user.restricted_fields[0].field, "email");
    assert_eq!(
        user.restricted_fields[0].kind.as_deref(),
        Some("active_directory")
    );
    assert_eq!(user.unix_uid, Some(5001));
}

#[test]
fn user_id_comes_from_either_key_and_minimal_objects_read() {
    let only_id: JcUser = serde_json::from_str(r#"{"id":"abc","email":"a@b"}"#).unwrap();
    assert_eq!(only_id.id, "abc");
    let only_underscore: JcUser = serde_json::from_str(r#"{"_id":"def"}"#).unwrap();
    assert_eq!(only_underscore.id, "def");
    assert_eq!(only_underscore.username, "");
    let nulls: JcUser = serde_json::from_str(
        r#"{"_id":"x","username":null,"email":null,"phoneNumbers":null,"attributes":null,
            "restrictedFields":null,"suspended":null,"unix_uid":"5002","mfa":null}"#,
    )
    .unwrap();
    assert_eq!(nulls.username, "");
    assert_eq!(nulls.unix_uid, Some(5002));
    assert_eq!(nulls.mfa, None);
}

#[test]
fn user_round_trips_through_json() {
    let user = JcUser {
        id: "u1".into(),
        username: "u".into(),
        email: "u@example.com".into(),
        state: Some(state::SUSPENDED.into()),
        suspended: true,
        phone_numbers: vec![JcPhoneNumber {
            id: None,
            kind: Some("mobile".into()),
            number: Some("1".into()),
        }],
        attributes: vec![JcAttribute {
            name: "k".into(),
            value: "v".into(),
        }],
        admin: Some(json!({"id": "a", "roleName": "Administrator"})),
        ..JcUser::default()
    };
    let text = serde_json::to_string(&user).unwrap();
    assert!(text.contains(r#""_id":"u1""#), "{text}");
    assert_eq!(serde_json::from_str::<JcUser>(&text).unwrap(), user);
}

#[test]
fn user_write_sends_only_what_it_names() {
    let body = JcUserWrite {
        email: Some("new@example.com".into()),
        manager: Some(None),
        job_title: Some(Some(String::new())),
        phone_numbers: Some(vec![JcPhoneNumber {
            id: None,
            kind: Some("work".into()),
            number: Some("+1".into()),
        }]),
        addresses: Some(vec![]),
        ..JcUserWrite::default()
    };
    assert_eq!(
        serde_json::to_value(&body).unwrap(),
        json!({
            "email": "new@example.com",
            "manager": null,
            "jobTitle": "",
            "phoneNumbers": [{"type": "work", "number": "+1"}],
            "addresses": []
        })
    );
    assert_eq!(
        serde_json::to_value(JcUserWrite::default()).unwrap(),
        json!({})
    );
}

#[test]
fn user_write_debug_hides_the_password() {
    let body = JcUserWrite {
        username: Some("jane".into()),
        password: Some("Sup3r$ecret!".into()),
        ..JcUserWrite::default()
    };
    let shown = format!("{body:?} {body:#?}");
    assert!(!shown.contains("Sup3r$ecret!"), "{shown}");
    assert!(shown.contains("[redacted]"));
    assert!(shown.contains("jane"));
    // The body itself still carries it.
    assert_eq!(
        serde_json::to_value(&body).unwrap()["password"],
        "Sup3r$ecret!"
    );
}

#[test]
fn groups_read_leniently_and_write_exactly() {
    let g: JcGroup = serde_json::from_value(json!({
        "attributes": null, "id": "g1", "name": "Engineering", "type": "user_group",
        "email": "", "description": "", "membershipMethod": "STATIC",
        "memberQueryErrorFlags": [], "suggestionCounts": {"add": 0, "remove": 0, "total": 0}
    }))
    .unwrap();
    assert_eq!(g.id, "g1");
    assert_eq!(g.attributes, None);
    assert_eq!(g.membership_method.as_deref(), Some("STATIC"));
    let g: JcGroup = serde_json::from_value(json!({
        "id": "g2", "name": null, "attributes": {"sudo": {"enabled": true}}
    }))
    .unwrap();
    assert_eq!(g.name, "");
    assert!(g.attributes.unwrap().contains_key("sudo"));

    let w = JcGroupWrite {
        name: "Eng".into(),
        ..Default::default()
    };
    assert_eq!(serde_json::to_value(&w).unwrap(), json!({"name": "Eng"}));
    let from_group = JcGroupWrite::from(&JcGroup {
        name: "Ops".into(),
        description: Some("on call".into()),
        ..Default::default()
    });
    assert_eq!(
        serde_json::to_value(&from_group).unwrap(),
        json!({"name": "Ops", "description": "on call"})
    );
}

#[test]
fn directories_read_their_kind_and_domain() {
    let dirs: Vec<JcDirectory> = serde_json::from_value(json!([
        {"id": "d1", "name": "Corp AD", "type": "active_directory"},
        {"id": "d2", "name": "Workspace", "type": "g_suite",
         "defaultDomain": {"id": "x", "domain": "example.com"}, "oAuthStatus": {}},
        {"id": "d3", "name": null, "type": "OFFICE_365", "defaultDomain": null},
        {"id": "d4", "type": "workday"}
    ]))
    .unwrap();
    let kinds: Vec<_> = dirs.iter().map(|d| d.kind.clone()).collect();
    assert_eq!(
        kinds,
        [
            JcDirectoryKind::ActiveDirectory,
            JcDirectoryKind::GSuite,
            JcDirectoryKind::Office365,
            JcDirectoryKind::Other("workday".into())
        ]
    );
    assert_eq!(dirs[1].default_domain.as_deref(), Some("example.com"));
    assert_eq!(dirs[2].default_domain, None);
    assert_eq!(
        serde_json::from_value::<JcDirectory>(serde_json::to_value(&dirs[1]).unwrap()).unwrap(),
        dirs[1]
    );
}

#[test]
fn graph_items_and_v1_pages_read() {
    let items: Vec<GraphConnection> = serde_json::from_value(json!([
        {"attributes": null, "to": {"attributes": null, "id": "u1", "type": "user"}},
        {"to": {"id": "g1", "type": "user_group"}, "from": {"id": "x"}}
    ]))
    .unwrap();
    assert_eq!(
        (items[0].to.id.as_str(), items[0].to.kind.as_str()),
        ("u1", "user")
    );
    assert_eq!(items[1].to.kind, "user_group");

    let page: V1Page<JcUser> =
        serde_json::from_str(r#"{"totalCount": 2, "results": [{"_id": "a"}, {"_id": "b"}]}"#)
            .unwrap();
    assert_eq!(page.total_count, Some(2));
    assert_eq!(page.results.len(), 2);
    let page: V1Page<JcUser> = serde_json::from_str(r#"{"results": null}"#).unwrap();
    assert_eq!((page.total_count, page.results.len()), (None, 0));
    for not_an_envelope in ["[]", "{}", r#"{"totalCount": 0}"#] {
        assert!(
            serde_json::from_str::<V1Page<JcUser>>(not_an_envelope).is_err(),
            "{not_an_envelope}"
        );
    }
}
