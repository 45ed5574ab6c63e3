use serde_json::{Value, json};

use super::*;
use crate::scim::schema::{
    ENTERPRISE_USER_URN, GROUP_URN, JUMPCLOUD_GROUP_URN, JUMPCLOUD_USER_URN, USER_URN,
};

fn user() -> Value {
    json!({
        "schemas": [USER_URN, ENTERPRISE_USER_URN, JUMPCLOUD_USER_URN],
        "id": "u-1",
        "externalId": "Ext-1",
        "userName": "BJensen@Example.com",
        "name": {"formatted": "Barbara Jensen", "familyName": "Jensen", "givenName": "Barbara", "middleName": ""},
        "displayName": "Babs Jensen",
        "title": "Tour Guide",
        "userType": "Employee",
        "active": true,
        "emails": [
            {"value": "bjensen@example.com", "type": "work", "primary": true},
            {"value": "babs@jensen.org", "type": "other"}
        ],
        "phoneNumbers": [{"value": "555-555-8377", "type": "work"}],
        "addresses": [{"locality": "Hollywood", "type": "work", "country": "US"}],
        "groups": [{"value": "g-1", "$ref": "https://h/scim/v2/Groups/g-1", "display": "Tour Guides", "type": "direct"}],
        "entitlements": [],
        "meta": {
            "resourceType": "User",
            "created": "2025-06-01T10:00:00Z",
            "lastModified": "2026-02-03T04:05:06Z",
            "location": "https://h/scim/v2/Users/u-1",
            "version": "W/\"1\""
        },
        ENTERPRISE_USER_URN: {
            "employeeNumber": "701984",
            "costCenter": "4130",
            "department": "Tour Operations",
            "manager": {"value": "m-9", "$ref": "http://localhost/scim/v2/Users/m-9"}
        },
        JUMPCLOUD_USER_URN: {
            "state": "ACTIVATED", "username": "bjensen", "passwordPending": false,
            "locked": false, "mfaConfigured": true, "admin": false
        }
    })
}

fn group() -> Value {
    json!({
        "schemas": [GROUP_URN, JUMPCLOUD_GROUP_URN],
        "id": "g-1",
        "displayName": "Tour Guides",
        "members": [
            {"value": "u-1", "$ref": "http://localhost/scim/v2/Users/u-1"},
            {"value": "u-2", "$ref": "http://localhost/scim/v2/Users/u-2"}
        ],
        "meta": {"resourceType": "Group", "created": "2025-01-01T00:00:00Z", "lastModified": "2025-01-02T00:00:00+02:00"},
        JUMPCLOUD_GROUP_URN: {"groupType": "user_group", "description": "People who guide tours"}
    })
}

fn check(kind: ResourceKind, resource: &Value, rows: &[(&str, bool)]) {
    for (raw, want) in rows {
        let compiled = parse_and_compile(raw, kind).unwrap_or_else(|e| panic!("{raw}: {e}"));
        assert_eq!(compiled.matches(resource), *want, "{raw}");
        let parsed = parse_filter(raw).unwrap();
        assert_eq!(
            matches(&parsed, resource, kind),
            *want,
            "{raw} (uncompiled)"
        );
    }
}

#[test]
fn string_operators_case_insensitive_attribute() {
    check(
        ResourceKind::User,
        &user(),
        &[
            (r#"userName eq "bjensen@example.com""#, true),
            (r#"userName eq "BJENSEN@EXAMPLE.COM""#, true),
            (r#"userName eq "bjensen""#, false),
            (r#"userName ne "bjensen""#, true),
            (r#"userName ne "bjensen@EXAMPLE.com""#, false),
            (r#"userName co "JENSEN@""#, true),
            (r#"userName co "smith""#, false),
            (r#"userName co """#, true),
            (r#"userName sw "bj""#, true),
            (r#"userName sw "example""#, false),
            (r#"userName sw "bjensen@example.com""#, true),
            (r#"userName ew ".COM""#, true),
            (r#"userName ew "bjensen""#, false),
            (r#"userName ew "bjensen@example.com""#, true),
            (r#"userName gt "a""#, true),
            (r#"userName gt "BZ""#, false),
            (r#"userName ge "bjensen@example.com""#, true),
            (r#"userName lt "C""#, true),
            (r#"userName lt "b""#, false),
            (r#"userName le "BJENSEN@EXAMPLE.COM""#, true),
            (r#"userName pr"#, true),
            (r#"title pr"#, true),
            (r#"nickName pr"#, false),
            (r#"name.middleName pr"#, false),
            (r#"name.givenName eq "barbara""#, true),
            (r#"displayName co "babs""#, true),
        ],
    );
}

#[test]
fn string_operators_case_exact_attribute() {
    check(
        ResourceKind::User,
        &user(),
        &[
            (r#"id eq "u-1""#, true),
            (r#"id eq "U-1""#, false),
            (r#"externalId eq "Ext-1""#, true),
            (r#"externalId eq "ext-1""#, false),
            (r#"externalId ne "ext-1""#, true),
            (r#"externalId co "xt""#, true),
            (r#"externalId co "XT""#, false),
            (r#"externalId sw "Ext""#, true),
            (r#"externalId sw "ext""#, false),
            (r#"externalId ew "-1""#, true),
            (r#"externalId gt "Ext-0""#, true),
            (r#"externalId lt "ext""#, true),
            (r#"meta.resourceType eq "User""#, true),
            (r#"meta.resourceType eq "user""#, false),
            (r#"meta.version eq "W/\"1\"""#, true),
        ],
    );
}

#[test]
fn attribute_names_are_case_insensitive() {
    check(
        ResourceKind::User,
        &user(),
        &[
            (r#"USERNAME eq "bjensen@example.com""#, true),
            (r#"UserName Eq "bjensen@example.com""#, true),
            (r#"NAME.GIVENNAME EQ "Barbara""#, true),
            (r#"Emails.Value co "jensen.org""#, true),
            (r#"EMAILS[TYPE eq "work"]"#, true),
            (r#"userName eq "bjensen@example.com" AND title PR"#, true),
            (r#"NOT (title pr)"#, false),
        ],
    );
}

#[test]
fn boolean_attributes() {
    check(
        ResourceKind::User,
        &user(),
        &[
            ("active eq true", true),
            ("active eq false", false),
            ("active ne false", true),
            ("active ne true", false),
            (r#"active eq "True""#, true),
            ("active pr", true),
            ("emails.primary eq true", true),
            ("emails[primary eq true and value ew \"example.com\"]", true),
            ("emails[primary eq true and value ew \"jensen.org\"]", false),
            (
                "urn:jumpcloud-scim:schemas:extension:jumpcloud:2.0:User:mfaConfigured eq true",
                true,
            ),
            ("locked eq false", true),
            ("locked eq true", false),
        ],
    );
    let active_string = json!({"schemas": [USER_URN], "id": "x", "active": "False"});
    check(
        ResourceKind::User,
        &active_string,
        &[("active eq false", true), ("active eq true", false)],
    );
}

#[test]
fn datetime_attributes_compare_as_instants() {
    check(
        ResourceKind::User,
        &user(),
        &[
            (r#"meta.lastModified gt "2026-01-01T00:00:00Z""#, true),
            (r#"meta.lastModified gt "2026-02-03T04:05:06Z""#, false),
            (r#"meta.lastModified ge "2026-02-03T04:05:06Z""#, true),
            (r#"meta.lastModified eq "2026-02-03T05:05:06+01:00""#, true),
            (r#"meta.lastModified eq "2026-02-03T04:05:06.000Z""#, true),
            (r#"meta.lastModified ne "2026-02-03T04:05:06Z""#, false),
            (r#"meta.lastModified lt "2026-02-03T04:05:07Z""#, true),
            (r#"meta.lastModified le "2026-02-03T04:05:05Z""#, false),
            (r#"meta.lastModified gt "2026-01-01T00:00:00""#, true),
            (r#"meta.created lt "2025-06-01T11:00:00+00:30""#, true),
            (r#"meta.lastModified sw "2026-02""#, true),
            (r#"meta.lastModified co "T04""#, true),
            (r#"meta.lastModified pr"#, true),
            (
                r#"meta.lastModified gt "2026-01-01T00:00:00Z" and userName sw "bj""#,
                true,
            ),
        ],
    );
    // Offsets are honoured: 00:00+02:00 is 22:00Z the day before.
    check(
        ResourceKind::Group,
        &group(),
        &[
            (r#"meta.lastModified lt "2025-01-01T23:00:00Z""#, true),
            (r#"meta.lastModified gt "2025-01-01T21:59:59Z""#, true),
        ],
    );
}

#[test]
fn multi_valued_and_complex_attributes() {
    check(
        ResourceKind::User,
        &user(),
        &[
            (r#"emails.value eq "babs@jensen.org""#, true),
            (r#"emails.value eq "BABS@JENSEN.ORG""#, true),
            (r#"emails.type eq "work""#, true),
            (r#"emails.type eq "home""#, false),
            (r#"emails eq "bjensen@example.com""#, true),
            (r#"emails co "example.com""#, true),
            (r#"emails co "example.org""#, false),
            (r#"emails pr"#, true),
            (r#"entitlements pr"#, false),
            (r#"emails.value ne "babs@jensen.org""#, false),
            (r#"emails.display pr"#, false),
            (r#"name pr"#, true),
            (r#"groups.value eq "g-1""#, true),
            (r#"groups eq "g-1""#, true),
            (r#"groups.type eq "DIRECT""#, true),
            (r#"phoneNumbers.value sw "555""#, true),
            (r#"addresses.locality eq "hollywood""#, true),
            (
                r#"schemas eq "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User""#,
                true,
            ),
            (
                r#"schemas eq "urn:ietf:params:scim:schemas:extension:other:2.0:User""#,
                false,
            ),
        ],
    );
}

#[test]
fn value_paths() {
    check(
        ResourceKind::User,
        &user(),
        &[
            (r#"emails[type eq "work"]"#, true),
            (r#"emails[type eq "home"]"#, false),
            (
                r#"emails[type eq "work" and value co "@example.com"]"#,
                true,
            ),
            // Both conditions must hold for the same element.
            (
                r#"emails[type eq "work" and value co "@jensen.org"]"#,
                false,
            ),
            (r#"emails[type eq "other" or value co "nothing"]"#, true),
            (r#"emails[not (type eq "work")]"#, true),
            (r#"emails[value pr and primary eq false]"#, false),
            (r#"emails[type eq "work"] and userName sw "bj""#, true),
            (
                r#"emails[type eq "work" and value co "@example.com"] or ims[type eq "xmpp"]"#,
                true,
            ),
            (r#"name[givenName eq "Barbara"]"#, true),
            (r#"addresses[type eq "work" and country eq "us"]"#, true),
            (r#"emails[unknown eq "x"]"#, false),
            (r#"emails[unknown ne "x"]"#, true),
        ],
    );
    check(
        ResourceKind::Group,
        &group(),
        &[
            (r#"members[value eq "u-2"]"#, true),
            (r#"members[value eq "U-2"]"#, false),
            (r#"members[value eq "u-3"]"#, false),
            (r#"members.value eq "u-1""#, true),
            (r#"members[value sw "u-"]"#, true),
        ],
    );
}

#[test]
fn logical_operators_and_precedence() {
    check(
        ResourceKind::User,
        &user(),
        &[
            (r#"userName eq "x" or title pr"#, true),
            (r#"userName eq "x" and title pr"#, false),
            // and binds tighter than or: x or (y and z)
            (
                r#"title pr or userName eq "x" and userType eq "nobody""#,
                true,
            ),
            (
                r#"userName eq "x" or title pr and userType eq "nobody""#,
                false,
            ),
            (
                r#"(userName eq "x" or title pr) and userType eq "Employee""#,
                true,
            ),
            (
                r#"(title pr or userName eq "x") and userType eq "nobody""#,
                false,
            ),
            (r#"not (userName eq "x")"#, true),
            (r#"not (userName eq "x" or title pr)"#, false),
            (
                r#"userType ne "Employee" and not (emails co "example.com" or emails.value co "example.org")"#,
                false,
            ),
            (
                r#"userType eq "Employee" and (emails.type eq "work")"#,
                true,
            ),
            (r#"not (not (title pr))"#, true),
        ],
    );
}

#[test]
fn urn_qualified_names() {
    check(
        ResourceKind::User,
        &user(),
        &[
            (
                r#"urn:ietf:params:scim:schemas:core:2.0:User:userName sw "bj""#,
                true,
            ),
            (
                r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber eq "701984""#,
                true,
            ),
            (
                r#"URN:IETF:PARAMS:SCIM:SCHEMAS:EXTENSION:ENTERPRISE:2.0:USER:EMPLOYEENUMBER eq "701984""#,
                true,
            ),
            (
                r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value eq "m-9""#,
                true,
            ),
            (
                r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value eq "M-9""#,
                false,
            ),
            (r#"employeeNumber eq "701984""#, true),
            (r#"department co "tour""#, true),
            (r#"manager.value eq "m-9""#, true),
            // A complex attribute with a `value` sub-attribute compares that.
            (r#"manager eq "m-9""#, true),
            (
                r#"urn:jumpcloud-scim:schemas:extension:jumpcloud:2.0:User:username eq "BJENSEN""#,
                true,
            ),
            (
                r#"urn:jumpcloud-scim:schemas:extension:jumpcloud:2.0:User:state eq "activated""#,
                true,
            ),
            (r#"urn:example:other:2.0:User:userName pr"#, false),
        ],
    );
    check(
        ResourceKind::Group,
        &group(),
        &[
            (
                r#"urn:jumpcloud-scim:schemas:extension:jumpcloud:2.0:Group:groupType eq "user_group""#,
                true,
            ),
            (r#"description co "guide""#, true),
            (r#"displayName eq "TOUR GUIDES""#, true),
            (r#"DisplayName sw "Tour""#, true),
        ],
    );
}

#[test]
fn unknown_attributes_have_no_value() {
    check(
        ResourceKind::User,
        &user(),
        &[
            (r#"nickName eq "babs""#, false),
            (r#"nickName ne "babs""#, true),
            (r#"nickName co "b""#, false),
            (r#"nickName gt "a""#, false),
            (r#"nickName pr"#, false),
            (r#"not (nickName pr)"#, true),
            (r#"name.nick eq "x""#, false),
            (r#"members.value eq "u-1""#, false),
            (r#"roles eq null"#, false),
        ],
    );
}

#[test]
fn null_literal() {
    check(
        ResourceKind::User,
        &user(),
        &[
            ("nickName eq null", false),
            ("title eq null", false),
            ("title ne null", true),
            ("name.middleName eq null", true),
            ("entitlements eq null", true),
            ("emails eq null", false),
        ],
    );
}

#[test]
fn unicode_case_folding() {
    let resource = json!({"schemas": [USER_URN], "id": "x", "userName": "ÉLODIE.Ünal@example.com", "displayName": "Åsa"});
    check(
        ResourceKind::User,
        &resource,
        &[
            (r#"userName eq "élodie.ünal@EXAMPLE.com""#, true),
            (r#"userName sw "éLODIE""#, true),
            (r#"userName ew "ünal@example.COM""#, true),
            (r#"userName co "ÜNAL""#, true),
            (r#"displayName gt "Z""#, true),
            (r#"displayName eq "ÅSA""#, true),
        ],
    );
}

#[test]
fn type_errors_are_invalid_filter() {
    for (raw, kind) in [
        ("active gt true", ResourceKind::User),
        ("active co \"t\"", ResourceKind::User),
        ("active eq \"yes\"", ResourceKind::User),
        ("active eq 1", ResourceKind::User),
        ("name gt \"a\"", ResourceKind::User),
        ("name eq \"a\"", ResourceKind::User),
        ("addresses eq \"a\"", ResourceKind::User),
        ("meta.lastModified gt \"yesterday\"", ResourceKind::User),
        ("meta.lastModified gt 5", ResourceKind::User),
        ("userName gt null", ResourceKind::User),
        ("userName[value eq \"x\"]", ResourceKind::User),
        ("emails.value[value eq \"x\"]", ResourceKind::User),
        ("emails[primary gt true]", ResourceKind::User),
        ("meta gt \"a\"", ResourceKind::Group),
    ] {
        let err = parse_and_compile(raw, kind).unwrap_err();
        assert_eq!(err.status, 400, "{raw}");
        assert_eq!(
            err.scim_type,
            Some(scim_v2::models::errors::ScimType::InvalidFilter),
            "{raw}"
        );
        assert!(err.detail.contains('\''), "{raw}: {}", err.detail);
        // The uncompiled convenience matches nothing rather than failing.
        assert!(!matches(&parse_filter(raw).unwrap(), &user(), kind));
    }
}

#[test]
fn syntax_errors_are_invalid_filter_with_position() {
    for (raw, needle) in [
        (
            r#"userName eq "x" garbage"#,
            "unexpected 'garbage' at offset 16",
        ),
        (r#"  userName eq "x" garbage"#, "at offset 18"),
        (
            r#"userName regex "x""#,
            "the operator 'regex' at offset 9 is not supported",
        ),
        (r#"(userName eq "x""#, "ends early at offset 16"),
        (r#"userName eq"#, "has no value"),
        ("userName eq \"x\" and", "ends early"),
        ("", "empty"),
        ("   ", "empty"),
        ("emails[type eq \"work\"", "ends early"),
        ("emails[type eq \"work\"].value eq", "invalid filter"),
        ("a.b.c eq \"x\"", "sub-attribute"),
    ] {
        let err = parse_filter(raw).unwrap_err();
        assert_eq!(
            err.scim_type,
            Some(scim_v2::models::errors::ScimType::InvalidFilter),
            "{raw}"
        );
        assert!(err.detail.contains(needle), "{raw}: {}", err.detail);
    }
    let long = format!("userName eq \"{}\"", "x".repeat(MAX_FILTER_LEN));
    assert!(parse_filter(&long).unwrap_err().detail.contains("at most"));
}

#[test]
fn entra_value_path_rewrite() {
    let rows = [
        (
            r#"emails[type eq "work"].value eq "x@y.z""#,
            r#"emails[(type eq "work") and value eq "x@y.z"]"#,
        ),
        (
            r#"emails[type eq "work"].value pr"#,
            r#"emails[(type eq "work") and value pr]"#,
        ),
        (
            r#"emails[type eq "work" or type eq "other"].value EQ "a""#,
            r#"emails[(type eq "work" or type eq "other") and value EQ "a"]"#,
        ),
        (
            r#"userName eq "u" and emails[type eq "work"].value eq "a b""#,
            r#"userName eq "u" and emails[(type eq "work") and value eq "a b"]"#,
        ),
        (
            r#"emails[type eq "work"].value eq "q\"].x eq \"""#,
            r#"emails[(type eq "work") and value eq "q\"].x eq \""]"#,
        ),
        // Untouched: quoted `]` and `].` inside strings, plain value paths, filters without brackets.
        (
            r#"userName eq "a].value eq \"b""#,
            r#"userName eq "a].value eq \"b""#,
        ),
        (
            r#"displayName eq "x]" and title pr"#,
            r#"displayName eq "x]" and title pr"#,
        ),
        (
            r#"emails[value eq "a].b eq c"]"#,
            r#"emails[value eq "a].b eq c"]"#,
        ),
        (r#"emails[type eq "work"]"#, r#"emails[type eq "work"]"#),
        (
            r#"emails[type eq "work"].value"#,
            r#"emails[type eq "work"].value"#,
        ),
        (r#"userName eq "x""#, r#"userName eq "x""#),
    ];
    for (raw, want) in rows {
        assert_eq!(rewrite_value_path_sub_attr(raw), want, "{raw}");
    }
    assert!(matches!(
        rewrite_value_path_sub_attr(r#"userName eq "]."#),
        Cow::Borrowed(_)
    ));

    check(
        ResourceKind::User,
        &user(),
        &[
            (
                r#"emails[type eq "work"].value eq "bjensen@example.com""#,
                true,
            ),
            (
                r#"emails[type eq "work"].value eq "BJensen@Example.com""#,
                true,
            ),
            (
                r#"emails[type eq "work"].value eq "babs@jensen.org""#,
                false,
            ),
            (
                r#"emails[type eq "other"].value eq "babs@jensen.org""#,
                true,
            ),
        ],
    );
}

#[test]
fn bare_values_are_tolerated() {
    check(
        ResourceKind::User,
        &user(),
        &[
            ("externalId eq Ext-1", true),
            ("externalId eq ext-1", false),
            ("userName eq bjensen@example.com", true),
            ("(userName eq bjensen@example.com) and active eq true", true),
            ("emails[type eq work]", true),
            ("active eq true", true),
        ],
    );
    assert_eq!(
        quote_bare_values("externalId eq jyoung").as_deref(),
        Some(r#"externalId eq "jyoung""#)
    );
    assert_eq!(quote_bare_values("a eq 12 and b eq null"), None);
    assert_eq!(quote_bare_values(r#"a eq "x y""#), None);
    // A string that ends a valid filter is never requoted.
    assert!(parse_filter(r#"userName eq "eq x""#).is_ok());
}

#[test]
fn index_hints() {
    use IndexHint::*;
    let user_rows: &[(&str, Option<IndexHint>)] = &[
        (r#"id eq "u-1""#, Some(Id("u-1".into()))),
        (r#"userName eq "BJensen""#, Some(UserName("BJensen".into()))),
        (r#"USERNAME eq "a""#, Some(UserName("a".into()))),
        (
            r#"urn:ietf:params:scim:schemas:core:2.0:User:userName eq "a""#,
            Some(UserName("a".into())),
        ),
        (r#"externalId eq "e""#, Some(ExternalId("e".into()))),
        ("externalId eq 1234", Some(ExternalId("1234".into()))),
        ("externalId eq jyoung", Some(ExternalId("jyoung".into()))),
        (r#"emails.value eq "a@b""#, Some(Email("a@b".into()))),
        (r#"emails eq "a@b""#, Some(Email("a@b".into()))),
        (r#"emails[value eq "a@b"]"#, Some(Email("a@b".into()))),
        (
            r#"emails[type eq "work" and value eq "a@b"]"#,
            Some(Email("a@b".into())),
        ),
        (
            r#"emails[type eq "work"].value eq "a@b""#,
            Some(Email("a@b".into())),
        ),
        (r#"userName eq "a" and id eq "i""#, Some(Id("i".into()))),
        (
            r#"active eq true and externalId eq "e""#,
            Some(ExternalId("e".into())),
        ),
        (
            r#"emails[value eq "a@b"] and userName eq "u""#,
            Some(UserName("u".into())),
        ),
        (r#"userName eq "a" or userName eq "b""#, None),
        (r#"not (userName eq "a")"#, None),
        (r#"userName ne "a""#, None),
        (r#"userName sw "a""#, None),
        (r#"userName eq null"#, None),
        (r#"displayName eq "x""#, None),
        (r#"emails[type eq "work"]"#, None),
        (r#"emails[type eq "work" or value eq "a"]"#, None),
        (r#"emails.type eq "work""#, None),
        (r#"members[value eq "u"]"#, None),
        (r#"employeeNumber eq "1""#, None),
        (
            r#"meta.lastModified gt "2026-01-02T03:04:05Z""#,
            Some(ModifiedSince("2026-01-02T03:04:05.001Z".parse().unwrap())),
        ),
        (
            r#"meta.lastModified ge "2026-01-02T03:04:05.0005Z""#,
            Some(ModifiedSince("2026-01-02T03:04:05.001Z".parse().unwrap())),
        ),
        (
            r#"meta.lastModified ge "2026-01-02T05:04:05+02:00""#,
            Some(ModifiedSince("2026-01-02T03:04:05Z".parse().unwrap())),
        ),
        (
            r#"meta.lastModified gt "2026-01-02T03:04:05Z" and userName eq "u""#,
            Some(UserName("u".into())),
        ),
        (r#"meta.lastModified lt "2026-01-02T03:04:05Z""#, None),
        (r#"meta.created gt "2026-01-02T03:04:05Z""#, None),
    ];
    for (raw, want) in user_rows {
        let filter = parse_filter(raw).unwrap();
        assert_eq!(index_hint(&filter, ResourceKind::User), *want, "{raw}");
        assert_eq!(
            CompiledFilter::new(&filter, ResourceKind::User)
                .unwrap()
                .index_hint(),
            want.as_ref()
        );
    }
    let group_rows: &[(&str, Option<IndexHint>)] = &[
        (
            r#"displayName eq "Admins""#,
            Some(DisplayName("Admins".into())),
        ),
        (r#"id eq "g""#, Some(Id("g".into()))),
        (r#"externalId eq "e""#, Some(ExternalId("e".into()))),
        (r#"members[value eq "u-1"]"#, Some(Member("u-1".into()))),
        (r#"members.value eq "u-1""#, Some(Member("u-1".into()))),
        (
            r#"members[value eq "u-1"] and displayName eq "A""#,
            Some(DisplayName("A".into())),
        ),
        (r#"userName eq "x""#, None),
        (r#"emails.value eq "x""#, None),
        (r#"displayName sw "A""#, None),
    ];
    for (raw, want) in group_rows {
        assert_eq!(
            index_hint(&parse_filter(raw).unwrap(), ResourceKind::Group),
            *want,
            "{raw}"
        );
    }
}

#[test]
fn hints_are_supersets_of_matches() {
    // For every filter with a hint, a resource that matches must be one the hint selects.
    let u = user();
    for raw in [
        r#"userName eq "BJENSEN@example.com""#,
        r#"emails[type eq "work"].value eq "BJENSEN@EXAMPLE.COM""#,
        r#"externalId eq "Ext-1" and active eq true"#,
    ] {
        let compiled = parse_and_compile(raw, ResourceKind::User).unwrap();
        assert!(compiled.matches(&u), "{raw}");
        let selected = match compiled.index_hint().unwrap() {
            IndexHint::UserName(v) => u["userName"].as_str().unwrap().eq_ignore_ascii_case(v),
            IndexHint::Email(v) => u["emails"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["value"].as_str().unwrap().eq_ignore_ascii_case(v)),
            IndexHint::ExternalId(v) => u["externalId"] == *v,
            other => panic!("{other:?}"),
        };
        assert!(selected, "{raw}");
    }
}

#[test]
fn non_objects_never_match() {
    let f = parse_and_compile("title pr", ResourceKind::User).unwrap();
    assert!(!f.matches(&json!(null)));
    assert!(!f.matches(&json!([1])));
    assert_eq!(f.kind(), ResourceKind::User);
}

#[test]
fn a_value_ending_a_word_in_capital_sigma_equals_itself() {
    // `str::to_lowercase` folds a word-final Σ to ς, `char::to_lowercase` to σ: both sides must fold alike.
    let mut u = user();
    u["userName"] = json!("ΓΙΑΝΝΗΣ@example.gr");
    u["displayName"] = json!("IΣ");
    check(
        ResourceKind::User,
        &u,
        &[
            (r#"userName eq "ΓΙΑΝΝΗΣ@example.gr""#, true),
            (r#"userName eq "γιαννησ@example.gr""#, true),
            (r#"userName ne "ΓΙΑΝΝΗΣ@example.gr""#, false),
            (r#"userName sw "ΓΙΑΝΝΗΣ""#, true),
            (r#"userName co "ΝΗΣ@""#, true),
            (r#"userName ew "ΗΣ@example.gr""#, true),
            (r#"displayName eq "IΣ""#, true),
            (r#"displayName ge "IΣ""#, true),
            (r#"displayName gt "IΣ""#, false),
            (r#"displayName le "IΣ""#, true),
        ],
    );
    assert_eq!(fold_case("IΣ"), fold_case("iσ"));
    assert_eq!(fold_case("ABC"), "abc");
}
