//! Entry points of the fuzz targets in `fuzz/fuzz_targets/` and of the corpus replay test below.
//!
//! Each function takes arbitrary bytes and drives one of the parsers that read what the network or the disk
//! hands the service: SCIM filters, PATCH bodies, User bodies for the write mapping, `Authorization` headers
//! and `/oauth/token` requests, and the persisted snapshot file. None of them may panic, hang or allocate
//! without bound, whatever the bytes: an error is the expected answer to most inputs. Where a property is
//! cheap to state (an index hint never hides a resource the filter matches, an issued token authenticates),
//! the entry point checks it too, so the fuzzer finds wrong answers as well as crashes.
//!
//! The sample resources and credentials are fixed, so an input found once reproduces.

use std::sync::{Arc, LazyLock};
use std::time::Duration;

use axum::body::Body;
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE};
use axum::http::{HeaderMap, HeaderValue, Method, Request, StatusCode};
use scim_v2::filter::{AttrExp, AttrPath, CompValue, CompareOp, Filter};
use serde_json::{Value, json};
use tower::ServiceExt;

use crate::auth::{Authenticator, Scope, sha256};
use crate::cache::persist;
use crate::cache::{BuildOptions, Store};
use crate::config::{AuthConfig, BasicConfig, ClientConfig, JwtConfig, Secret, TokenConfig};
use crate::directory::write::DeleteMode;
use crate::jumpcloud::{
    JcAddress, JcAttribute, JcClient, JcClientConfig, JcPhoneNumber, JcRestrictedField, JcUser,
};
use crate::mapping::urn;
use crate::mapping::write::{desired_user, is_noop, user_write};
use crate::mapping::{MappingOptions, UsernamePolicy};
use crate::scim::filter::{self, IndexHint};
use crate::scim::patch::{PATCH_OP_URN, PatchOptions, PatchOutcome, PatchRequest};
use crate::scim::schema::ResourceKind;

// === filters ===

/// `?filter=` text, for both resource kinds: parse (by its shape as in full, to the same tree), type-check,
/// and evaluate over the sample resources.
///
/// Checks that a compiled filter's index hint admits every sample the filter matches, as the list handler
/// relies on (it looks the hint up in the snapshot's indexes, then re-checks the full filter on what it finds).
pub fn filter(data: &[u8]) {
    let raw = String::from_utf8_lossy(data);
    let _ = filter::rewrite_value_path_sub_attr(&raw);
    // Through the cache of shapes (twice: a miss, then perhaps a hit) as without it.
    let fresh = filter::parse_filter_text(&raw);
    for _ in 0..2 {
        match (filter::parse_filter(&raw), &fresh) {
            (Ok(a), Ok(b)) => assert_eq!(&a, b, "{raw:?} parses to another tree by its shape"),
            (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string()),
            (a, b) => panic!("{raw:?}: {a:?} by its shape, {b:?} in full"),
        }
    }
    for kind in ResourceKind::ALL {
        let Ok(compiled) = filter::parse_and_compile(&raw, kind) else {
            continue;
        };
        assert_eq!(compiled.kind(), kind);
        assert!(
            !compiled.matches(&Value::Null),
            "a non-object never matches"
        );
        for resource in samples(kind) {
            if compiled.matches(resource)
                && let Some(hint) = compiled.index_hint()
            {
                assert!(
                    hint_admits(hint, kind, resource),
                    "{kind:?} filter {raw:?} matches {} but its index hint {hint:?} would not find it",
                    resource["id"]
                );
            }
        }
    }
}

/// The bytes as an attribute value. Quoted as a JSON string (the filter grammar's string literal), the value
/// must parse back as itself; and a resource holding it in its string attributes must match the comparisons
/// that hold for any string and itself (`eq`, `sw`, `ew`, `co`, `ge`, `le`) and no other (`ne`, `gt`, `lt`),
/// whatever the value's case or script. The comparisons are built as syntax trees, so the parser's cost is
/// paid once per input.
pub fn filter_operand(data: &[u8]) {
    let value = String::from_utf8_lossy(data).into_owned();
    if value.is_empty() {
        return;
    }
    let text = format!("userName eq {}", Value::from(value.as_str()));
    if text.len() <= filter::MAX_FILTER_LEN {
        match filter::parse_filter(&text) {
            Ok(Filter::Attr(AttrExp::Comparison(_, CompareOp::Eq, CompValue::Str(read)))) => {
                assert_eq!(read, value, "{text} reads back another value");
            }
            other => panic!("{text} does not parse as a comparison with a string: {other:?}"),
        }
    }
    let (user, group) = holding(&value);
    let user_paths = [
        AttrPath::with_name("userName"),
        AttrPath::with_name("displayName"),
        AttrPath::with_name("externalId"),
        AttrPath::with_sub_attr("name", "givenName"),
        AttrPath::with_sub_attr("emails", "value"),
        AttrPath::with_name("emails"),
    ];
    let group_paths = [
        AttrPath::with_name("displayName"),
        AttrPath::with_name("externalId"),
        AttrPath::with_sub_attr("members", "value"),
        AttrPath::with_name("members"),
    ];
    for path in &user_paths {
        compare_with_itself(ResourceKind::User, &user, path, &value);
    }
    for path in &group_paths {
        compare_with_itself(ResourceKind::Group, &group, path, &value);
    }
}

/// A User and a Group holding `value` in every string attribute [`filter_operand`] compares.
fn holding(value: &str) -> (Value, Value) {
    let user = json!({
        "schemas": [urn::USER],
        "id": "fuzz",
        "userName": value,
        "displayName": value,
        "externalId": value,
        "name": {"givenName": value},
        "emails": [{"value": value, "type": "work"}]
    });
    let group = json!({
        "schemas": [urn::GROUP],
        "id": "fuzz",
        "displayName": value,
        "externalId": value,
        "members": [{"value": value}]
    });
    (user, group)
}

/// `resource` holds `value` at `path`: every comparison that holds for a string and itself matches, no
/// other does, and an index hint of a match finds the resource.
fn compare_with_itself(kind: ResourceKind, resource: &Value, path: &AttrPath, value: &str) {
    for (op, expected) in [
        (CompareOp::Eq, true),
        (CompareOp::Sw, true),
        (CompareOp::Ew, true),
        (CompareOp::Co, true),
        (CompareOp::Ge, true),
        (CompareOp::Le, true),
        (CompareOp::Ne, false),
        (CompareOp::Gt, false),
        (CompareOp::Lt, false),
    ] {
        let f = Filter::Attr(AttrExp::Comparison(
            path.clone(),
            op,
            CompValue::Str(value.to_owned()),
        ));
        let Ok(compiled) = filter::CompiledFilter::new(&f, kind) else {
            continue;
        };
        assert_eq!(
            compiled.matches(resource),
            expected,
            "{kind:?} filter {f} on a resource holding that value"
        );
        if expected && let Some(hint) = compiled.index_hint() {
            assert!(
                hint_admits(hint, kind, resource),
                "{kind:?} filter {f} matches, but its index hint {hint:?} would not find it"
            );
        }
    }
}

/// Would the list handler's index lookup for `hint` find `resource`? Mirrors `directory::read::candidates`
/// over the keys `Snapshot` indexes an entry under (lower-cased `userName`, email values and group
/// `displayName`; exact ids, `externalId`s and member ids). A hint the handler cannot look up means a scan,
/// which finds everything.
fn hint_admits(hint: &IndexHint, kind: ResourceKind, resource: &Value) -> bool {
    let text = |key: &str| resource.get(key).and_then(Value::as_str);
    let values = |key: &str| -> Vec<&str> {
        resource
            .get(key)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|v| v.get("value").and_then(Value::as_str))
            .collect()
    };
    // Index keys fold as `cache::Index::key` does.
    let lower_eq = |have: &str, want: &str| filter::fold_case(have) == filter::fold_case(want);
    match (kind, hint) {
        (_, IndexHint::Id(v)) => text("id") == Some(v.as_str()),
        (ResourceKind::User, IndexHint::UserName(v)) => {
            text("userName").is_some_and(|u| lower_eq(u, v))
        }
        (ResourceKind::User, IndexHint::Email(v)) => {
            values("emails").iter().any(|e| lower_eq(e, v))
        }
        (ResourceKind::Group, IndexHint::DisplayName(v)) => {
            text("displayName").is_some_and(|n| lower_eq(n, v))
        }
        (_, IndexHint::ExternalId(v)) => text("externalId") == Some(v.as_str()),
        (ResourceKind::Group, IndexHint::Member(v)) => values("members").contains(&v.as_str()),
        _ => true,
    }
}

// === PATCH ===

/// A PATCH body as JSON, applied to the sample Users and Groups as `apply_patch` does; a User's result goes
/// on through the write mapping as `PATCH /Users/{id}` does.
pub fn patch(data: &[u8]) {
    let Ok(body) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    patch_both(&body);
}

/// PATCH operations built from a table of the paths real clients send, so the fuzzer reaches the
/// per-operation rules without first having to spell a PatchOp. Operations are separated by a zero byte;
/// in each, the first byte picks the `op`, the second the `path`, and the rest is the `value` (JSON if it
/// parses, else a string; none if empty).
pub fn patch_ops(data: &[u8]) {
    let operations: Vec<Value> = data
        .split(|&b| b == 0)
        .filter_map(|chunk| {
            let (&op, rest) = chunk.split_first()?;
            let (&path, value) = rest.split_first()?;
            let mut operation = json!({"op": PATCH_OPS[usize::from(op) % PATCH_OPS.len()]});
            if let Some(path) = PATCH_PATHS[usize::from(path) % PATCH_PATHS.len()] {
                operation["path"] = path.into();
            }
            if !value.is_empty() {
                operation["value"] = serde_json::from_slice(value)
                    .unwrap_or_else(|_| String::from_utf8_lossy(value).into_owned().into());
            }
            Some(operation)
        })
        .take(16)
        .collect();
    patch_both(&json!({"schemas": [PATCH_OP_URN], "Operations": operations}));
}

/// `op` spellings clients send.
const PATCH_OPS: &[&str] = &["add", "remove", "replace", "Add", "Replace", "Remove"];

/// Paths from Entra, Okta, OneLogin and SailPoint requests, both kinds (a path of the other kind is
/// `invalidPath`, which is worth reaching too), and `None` for a path-less operation.
const PATCH_PATHS: &[Option<&str>] = &[
    None,
    Some("userName"),
    Some("displayName"),
    Some("active"),
    Some("title"),
    Some("userType"),
    Some("externalId"),
    Some("password"),
    Some("name"),
    Some("name.givenName"),
    Some("name.familyName"),
    Some("name.middleName"),
    Some("name.formatted"),
    Some("emails"),
    Some(r#"emails[type eq "work"]"#),
    Some(r#"emails[type eq "work"].value"#),
    Some(r#"emails[type eq "home"].value"#),
    Some("emails[primary eq true].value"),
    Some(r#"emails[value eq "jane.doe@example.com"]"#),
    Some("emails.value"),
    Some("phoneNumbers"),
    Some(r#"phoneNumbers[type eq "work"].value"#),
    Some(r#"phoneNumbers[type eq "mobile"].value"#),
    Some(r#"phoneNumbers[type eq "mobile" and primary eq true]"#),
    Some("addresses"),
    Some(r#"addresses[type eq "work"].streetAddress"#),
    Some(r#"addresses[type eq "work"].locality"#),
    Some(r#"addresses[type eq "work"].postalCode"#),
    Some(r#"addresses[type eq "home"].country"#),
    Some("groups"),
    Some(r#"groups[value eq "g1"]"#),
    Some(urn::ENTERPRISE),
    Some("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager"),
    Some("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value"),
    Some("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department"),
    Some("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber"),
    Some("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:costCenter"),
    Some("urn:jumpcloud-scim:schemas:extension:jumpcloud:2.0:User:description"),
    Some("members"),
    Some(r#"members[value eq "u1"]"#),
    Some(r#"members[value eq "u1" or value eq "u3"]"#),
    Some(r#"members[display co "Jane"]"#),
    Some("members.value"),
    Some("urn:jumpcloud-scim:schemas:extension:jumpcloud:2.0:Group:description"),
    Some("id"),
    Some("meta.lastModified"),
    Some("schemas"),
];

/// Read `body` once per kind (reading parses every path, the costly part) and apply it to each sample.
fn patch_both(body: &Value) {
    for kind in ResourceKind::ALL {
        let Ok(request) = PatchRequest::parse(body, kind, &PATCH) else {
            continue;
        };
        for resource in samples(kind) {
            let Ok(outcome) = request.apply(resource) else {
                continue;
            };
            check_patched(&outcome);
            if kind == ResourceKind::User {
                write_user(&outcome.resource);
            }
            // Once more on the result: some rules depend on what is already there.
            if let Ok(again) = request.apply(&outcome.resource) {
                check_patched(&again);
            }
        }
    }
}

fn check_patched(outcome: &PatchOutcome) {
    assert!(
        outcome.resource.is_object(),
        "a patched resource is an object"
    );
    let m = &outcome.membership;
    assert!(
        m.added.iter().all(|id| !m.removed.contains(id)),
        "membership is net: {m:?}"
    );
}

// === the write mapping ===

/// A SCIM User body as JSON, as `POST` and `PUT /Users` read it, mapped onto a JumpCloud write against the
/// sample JumpCloud user and against none (a create).
pub fn mapping(data: &[u8]) {
    let Ok(body) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    write_user(&body);
}

fn write_user(body: &Value) {
    let opts = &*MAPPING;
    let Ok(desired) = desired_user(body, opts) else {
        return;
    };
    let update = user_write(&desired, Some(&*CURRENT_USER), Some("jdoe"), opts);
    let _ = is_noop(&update);
    let _ = user_write(&desired, Some(&*CURRENT_USER), None, opts);
    let create = user_write(&desired, None, Some("jdoe"), opts);
    let _ = is_noop(&create);
}

// === credentials ===

/// The bytes as an `Authorization` header against static tokens, a Basic credential and OAuth clients.
pub fn auth(data: &[u8]) {
    let Ok(value) = HeaderValue::from_bytes(data) else {
        return;
    };
    let mut headers = HeaderMap::new();
    headers.insert(AUTHORIZATION, value);
    if let Ok(principal) = AUTH.authenticate(&headers) {
        assert!(!principal.name.is_empty());
    }
}

/// A `POST /oauth/token` request through the service's router: the first byte picks the `Content-Type`, the
/// bytes up to the first newline are the `Authorization` header (none if empty or not a header value), the
/// rest is the body. The answer must be RFC 6749's: a token that then authenticates, or an error object.
pub fn oauth_token(data: &[u8]) {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let (authorization, body) = match rest.iter().position(|&b| b == b'\n') {
        Some(at) => (&rest[..at], &rest[at + 1..]),
        None => (&[][..], rest),
    };
    let mut req = Request::builder().method(Method::POST).uri("/oauth/token");
    if let Some(ct) = CONTENT_TYPES[usize::from(selector) % CONTENT_TYPES.len()] {
        req = req.header(CONTENT_TYPE, ct);
    }
    if !authorization.is_empty()
        && let Ok(v) = HeaderValue::from_bytes(authorization)
    {
        req = req.header(AUTHORIZATION, v);
    }
    let Ok(req) = req.body(Body::from(body.to_vec())) else {
        return;
    };
    let (status, answer) = OAUTH.runtime.block_on(async {
        let resp = OAUTH
            .router
            .clone()
            .oneshot(req)
            .await
            .unwrap_or_else(|e| match e {});
        let status = resp.status();
        let body = axum::body::to_bytes(resp.into_body(), 1 << 20).await;
        (status, body)
    });
    let answer: Value = answer
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_else(|| panic!("the token endpoint answered {status} without a JSON body"));
    match status {
        StatusCode::OK => {
            let token = answer["access_token"].as_str().expect("a token");
            let mut headers = HeaderMap::new();
            let bearer = HeaderValue::from_str(&format!("Bearer {token}")).expect("a header value");
            headers.insert(AUTHORIZATION, bearer);
            let principal = AUTH
                .authenticate(&headers)
                .expect("an issued token authenticates");
            let scope = match principal.scope {
                Scope::Provision => "provision",
                Scope::Read => "read",
            };
            assert_eq!(answer["scope"].as_str(), Some(scope));
        }
        StatusCode::BAD_REQUEST | StatusCode::UNAUTHORIZED => {
            assert!(answer["error"].is_string(), "an error answer: {answer}");
        }
        other => panic!("the token endpoint answered {other}: {answer}"),
    }
}

/// `Content-Type`s a token request comes with; `None` sends none (read as a form).
const CONTENT_TYPES: &[Option<&str>] = &[
    None,
    Some("application/x-www-form-urlencoded"),
    Some("application/x-www-form-urlencoded; charset=UTF-8"),
    Some("application/json"),
    Some("text/plain"),
];

// === the snapshot file ===

/// The bytes as a snapshot file, checksum and all; what decodes is restored as start-up does.
pub fn snapshot(data: &[u8]) {
    restore_file(data.to_vec());
}

/// The bytes as a snapshot file whose length and checksum fields are first made to agree with its payload,
/// so mutations of the payload reach its decoder instead of stopping at the checksum. The fields are
/// rewritten here, rather than skipped by the decoder, so the service has no unchecked way in.
pub fn snapshot_payload(data: &[u8]) {
    let mut file = data.to_vec();
    if let Some((header, payload)) = file.split_at_mut_checked(persist::HEADER_LEN) {
        let len = u64::try_from(payload.len()).unwrap_or(u64::MAX);
        header[12..20].copy_from_slice(&len.to_le_bytes());
        header[20..24].copy_from_slice(&crc32fast::hash(payload).to_le_bytes());
    }
    restore_file(file);
}

fn restore_file(file: Vec<u8>) {
    let Ok(persisted) = persist::decode(file) else {
        return;
    };
    for entry in persisted.users.values().chain(persisted.groups.values()) {
        let _ = entry.view();
        let _ = entry.to_json();
    }
    let _ = persisted.seen();
    let snapshot = persist::restore(persisted, &BUILD);
    for kind in [ResourceKind::User, ResourceKind::Group] {
        for entry in snapshot.list(kind).iter() {
            assert!(snapshot.get(kind, &entry.id).is_some());
        }
    }
}

// === fixtures ===

/// Resources the filter and PATCH entry points work on: shaped as this service serves them.
fn samples(kind: ResourceKind) -> &'static [Value] {
    match kind {
        ResourceKind::User => &USERS,
        ResourceKind::Group => &GROUPS,
    }
}

static USERS: LazyLock<Vec<Value>> = LazyLock::new(|| {
    vec![
        json!({
            "schemas": [urn::USER, urn::ENTERPRISE, urn::JC_USER],
            "id": "5f1b2c3d4e5f6a7b8c9d0e1f",
            "externalId": "00u1abcdEFGH",
            "userName": "Jane.Doe@Example.com",
            "name": {
                "formatted": "Jane Q. Doe",
                "givenName": "Jane",
                "middleName": "Q.",
                "familyName": "Doe"
            },
            "displayName": "Jane Doe",
            "title": "Staff Engineer",
            "userType": "Employee",
            "active": true,
            "emails": [
                {"value": "Jane.Doe@Example.com", "type": "work", "primary": true},
                {"value": "jane@home.example", "type": "home"}
            ],
            "phoneNumbers": [
                {"value": "+1 555 0100", "type": "work"},
                {"value": "+1 555 0199", "type": "mobile"}
            ],
            "addresses": [{
                "type": "work",
                "streetAddress": "1 Main St",
                "locality": "Springfield",
                "region": "IL",
                "postalCode": "62701",
                "country": "US",
                "formatted": "1 Main St\nSpringfield IL 62701\nUS",
                "primary": true
            }],
            "groups": [
                {"value": "g1", "display": "Engineering", "$ref": "http://localhost/scim/v2/Groups/g1", "type": "direct"},
                {"value": "d1", "display": "corp.example.com", "type": "indirect"}
            ],
            urn::ENTERPRISE: {
                "employeeNumber": "E-1042",
                "costCenter": "CC-7",
                "organization": "Example Corp",
                "department": "R&D",
                "manager": {
                    "value": "5f1b2c3d4e5f6a7b8c9d0e20",
                    "$ref": "http://localhost/scim/v2/Users/5f1b2c3d4e5f6a7b8c9d0e20",
                    "displayName": "Chief Doe"
                }
            },
            urn::JC_USER: {
                "description": "on call",
                "state": "ACTIVATED",
                "username": "jdoe",
                "passwordPending": false,
                "locked": false,
                "mfaConfigured": true
            },
            "meta": {
                "resourceType": "User",
                "created": "2020-02-03T04:05:06.123Z",
                "lastModified": "2024-05-06T07:08:09.000Z",
                "location": "http://localhost/scim/v2/Users/5f1b2c3d4e5f6a7b8c9d0e1f",
                "version": "W/\"3a5f0c1d2e3f40516273\""
            }
        }),
        // Outside ASCII, where case folding is not byte-wise.
        json!({
            "schemas": [urn::USER, urn::ENTERPRISE],
            "id": "5f1b2c3d4e5f6a7b8c9d0e21",
            "userName": "ΟΔΥΣΣΕΑΣ@παράδειγμα.ελ",
            "name": {"givenName": "Οδυσσέας", "familyName": "Ödegård"},
            "displayName": "Οδυσσέας Ödegård",
            "active": false,
            "emails": [{"value": "ΟΔΥΣΣΕΑΣ@παράδειγμα.ελ", "type": "work", "primary": true}],
            urn::ENTERPRISE: {"department": "İstanbul", "manager": {"value": "5f1b2c3d4e5f6a7b8c9d0e1f"}},
            "meta": {
                "resourceType": "User",
                "created": "2023-12-31T23:59:59.999Z",
                "lastModified": "2024-01-01T00:00:00.000Z"
            }
        }),
        json!({
            "schemas": [urn::USER],
            "id": "u3",
            "userName": "carol",
            "active": true,
            "meta": {"resourceType": "User", "created": "2024-01-01T00:00:00Z", "lastModified": "2024-01-01T00:00:00Z"}
        }),
    ]
});

static GROUPS: LazyLock<Vec<Value>> = LazyLock::new(|| {
    vec![
        json!({
            "schemas": [urn::GROUP, urn::JC_GROUP],
            "id": "g1",
            "externalId": "ext-g1",
            "displayName": "Engineering",
            "members": [
                {"value": "5f1b2c3d4e5f6a7b8c9d0e1f", "display": "Jane Doe", "$ref": "http://localhost/scim/v2/Users/5f1b2c3d4e5f6a7b8c9d0e1f", "type": "User"},
                {"value": "u1", "display": "alice", "type": "User"},
                {"value": "u3", "display": "carol", "type": "User"}
            ],
            urn::JC_GROUP: {"groupType": "user_group", "description": "Everyone who ships"},
            "meta": {
                "resourceType": "Group",
                "created": "2021-01-01T00:00:00.000Z",
                "lastModified": "2024-03-04T05:06:07.890Z",
                "location": "http://localhost/scim/v2/Groups/g1",
                "version": "W/\"0011223344556677aabb\""
            }
        }),
        json!({
            "schemas": [urn::GROUP],
            "id": "d1",
            "displayName": "corp.example.com",
            "members": [],
            "meta": {"resourceType": "Group", "created": "2022-02-02T00:00:00Z", "lastModified": "2022-02-02T00:00:00Z"}
        }),
    ]
});

/// The JumpCloud user the sample SCIM User was read from, with a restricted field and custom attributes.
static CURRENT_USER: LazyLock<JcUser> = LazyLock::new(|| JcUser {
    id: "5f1b2c3d4e5f6a7b8c9d0e1f".into(),
    username: "jdoe".into(),
    email: "jane.doe@example.com".into(),
    firstname: Some("Jane".into()),
    middlename: Some("Q.".into()),
    lastname: Some("Doe".into()),
    displayname: Some("Jane Doe".into()),
    alternate_email: Some("jane@home.example".into()),
    state: Some("ACTIVATED".into()),
    activated: true,
    employee_identifier: Some("E-1042".into()),
    job_title: Some("Staff Engineer".into()),
    department: Some("R&D".into()),
    cost_center: Some("CC-7".into()),
    company: Some("Example Corp".into()),
    employee_type: Some("Employee".into()),
    manager: Some("5f1b2c3d4e5f6a7b8c9d0e20".into()),
    phone_numbers: vec![JcPhoneNumber {
        id: Some("p1".into()),
        kind: Some("work".into()),
        number: Some("+1 555 0100".into()),
    }],
    addresses: vec![JcAddress {
        kind: Some("work".into()),
        street_address: Some("1 Main St".into()),
        locality: Some("Springfield".into()),
        region: Some("IL".into()),
        postal_code: Some("62701".into()),
        country: Some("US".into()),
        ..Default::default()
    }],
    attributes: vec![
        JcAttribute {
            name: "scimUserName".into(),
            value: "Jane.Doe@Example.com".into(),
        },
        JcAttribute {
            name: "scimExternalId".into(),
            value: "00u1abcdEFGH".into(),
        },
        JcAttribute {
            name: "badge".into(),
            value: "42".into(),
        },
    ],
    restricted_fields: vec![JcRestrictedField {
        field: "department".into(),
        id: Some("r1".into()),
        kind: Some("ad".into()),
    }],
    created: Some("2020-02-03T04:05:06.123Z".into()),
    ..Default::default()
});

/// The service's default PATCH limits, with references resolved against [`MappingOptions::default`]'s base.
static PATCH: LazyLock<PatchOptions> = LazyLock::new(PatchOptions::default);

static MAPPING: LazyLock<MappingOptions> = LazyLock::new(MappingOptions::default);

/// The options the snapshot seed was saved with (those of the cache's unit tests), so it is restored as a
/// servable file; a mutated derivation takes the other path, deriving every entry again.
static BUILD: LazyLock<BuildOptions> = LazyLock::new(|| BuildOptions {
    mapping: MappingOptions::default(),
    directories_as_groups: true,
});

/// Two static tokens (one given by its hash), a Basic credential and two OAuth clients, with a fixed JWT key
/// and a century of validity, so a token in the corpus keeps verifying.
///
/// The secrets, for writing seeds: bearer `provision-token` and `reader-token`, Basic `iiq:s3cret`, OAuth
/// clients `okta-client:client-secret` (provision) and `reader-client:reader-secret` (read).
fn auth_config() -> AuthConfig {
    let hex = |s: &str| -> String {
        sha256(s.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    };
    AuthConfig {
        tokens: vec![
            TokenConfig {
                token: Some(Secret::new("provision-token")),
                token_sha256: None,
                name: Some("sailpoint".into()),
                scope: Scope::Provision,
            },
            TokenConfig {
                token: None,
                token_sha256: Some(hex("reader-token")),
                name: None,
                scope: Scope::Read,
            },
        ],
        basic: vec![BasicConfig {
            username: "iiq".into(),
            password_hash: hex("s3cret"),
            scope: Scope::Provision,
        }],
        clients: vec![
            ClientConfig {
                client_id: "okta-client".into(),
                client_secret: Some(Secret::new("client-secret")),
                client_secret_sha256: None,
                scope: Scope::Provision,
            },
            ClientConfig {
                client_id: "reader-client".into(),
                client_secret: None,
                client_secret_sha256: Some(hex("reader-secret")),
                scope: Scope::Read,
            },
        ],
        jwt: JwtConfig {
            ttl_s: 100 * 365 * 24 * 3600,
            secret: Some(Secret::new("fuzzing-jwt-secret-of-32-bytes!!")),
            ..JwtConfig::default()
        },
    }
}

static AUTH: LazyLock<Arc<Authenticator>> = LazyLock::new(|| {
    Arc::new(Authenticator::from_config(&auth_config()).expect("the fuzzing credentials are valid"))
});

/// The service's router and a runtime to drive it, for the token endpoint (the only route used, so the
/// JumpCloud client behind it is never called).
struct OAuthHarness {
    runtime: tokio::runtime::Runtime,
    router: axum::Router,
}

static OAUTH: LazyLock<OAuthHarness> = LazyLock::new(|| {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let router = runtime.block_on(async {
        let store = Arc::new(Store::new(BUILD.clone()));
        let client = JcClient::new(JcClientConfig::new("http://127.0.0.1:9", "unused"))
            .expect("a JumpCloud client");
        let writer = crate::directory::write::Writer::new(
            store.clone(),
            client,
            crate::directory::write::WriteSettings {
                username_policy: UsernamePolicy::LocalPart,
                delete_mode: DeleteMode::Suspend,
                mapping: MAPPING.clone(),
                deadline: Duration::from_secs(1),
                patch: crate::scim::patch::PatchOptions::default(),
                cpu_tasks: 1,
            },
        );
        crate::http::router(crate::http::AppState::new(crate::http::Shared {
            reader: crate::directory::reader::Reader::new(
                store.clone(),
                Arc::new(crate::directory::pins::Pins::new(
                    Duration::from_secs(60),
                    16,
                    4,
                )),
            ),
            store,
            auth: AUTH.clone(),
            settings: Arc::new(crate::http::HttpSettings {
                scim_base: MAPPING.scim_base.clone(),
                max_count: 100,
                body_bytes: 64 * 1024,
                request_timeout: Duration::from_secs(10),
                ..crate::http::HttpSettings::default()
            }),
            refresh_now: Arc::new(tokio::sync::Notify::new()),
            writer: Arc::new(writer),
            audit: Arc::new(crate::audit::Audit::to_writer(Box::new(std::io::sink()))),
            metrics: crate::telemetry::Metrics::new(),
            // Never refusing a name keeps each answer a function of the request alone, so an input found
            // once reproduces; the throttle itself is not what this target is about.
            failed_auth: Arc::new(crate::auth::throttle::FailedAuth::new(u32::MAX, u32::MAX)),
            feed: Arc::new(crate::cache::insights::FeedHealth::new(
                crate::cache::insights::FeedMode::Off,
                Duration::from_secs(5),
            )),
            replicas: None,
        }))
    });
    OAuthHarness { runtime, router }
});

#[cfg(test)]
mod tests {
    use std::fs;
    use std::panic::{AssertUnwindSafe, catch_unwind};
    use std::path::Path;

    use super::*;

    /// Every fuzz target, by the name of its directory under `fuzz/corpus/` and `fuzz/fuzz_targets/`.
    /// A fuzz target's entry point.
    type Target = fn(&[u8]);

    const TARGETS: &[(&str, Target)] = &[
        ("filter", filter),
        ("filter_operand", filter_operand),
        ("patch", patch),
        ("patch_ops", patch_ops),
        ("mapping", mapping),
        ("auth", auth),
        ("oauth_token", oauth_token),
        ("snapshot", snapshot),
        ("snapshot_payload", snapshot_payload),
    ];

    fn corpus() -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus")
    }

    /// The files of one target's corpus; fails when there are none.
    fn inputs(target: &str) -> Vec<(String, Vec<u8>)> {
        let dir = corpus().join(target);
        let entries = fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}; each fuzz target has a corpus", dir.display()));
        let mut files: Vec<(String, Vec<u8>)> = entries
            .map(|e| e.expect("a corpus entry").path())
            .filter(|p| p.is_file())
            .map(|p| {
                let bytes = fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
                (p.display().to_string(), bytes)
            })
            .collect();
        assert!(!files.is_empty(), "{} holds no input", dir.display());
        files.sort();
        files
    }

    #[test]
    fn every_corpus_input_replays_without_a_panic() {
        let mut failed = Vec::new();
        for (target, run) in TARGETS {
            for (name, bytes) in inputs(target) {
                if catch_unwind(AssertUnwindSafe(|| run(&bytes))).is_err() {
                    failed.push(name);
                }
            }
        }
        assert!(failed.is_empty(), "these corpus inputs panic: {failed:#?}");
    }

    /// The names in `TARGETS`, `fuzz/corpus/` and `fuzz/fuzz_targets/` agree.
    #[test]
    fn every_target_has_a_corpus_and_a_fuzz_target() {
        let names = |dir: &Path, suffix: &str| -> Vec<String> {
            let mut names: Vec<String> = fs::read_dir(dir)
                .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
                .map(|e| {
                    e.expect("a directory entry")
                        .file_name()
                        .to_string_lossy()
                        .into_owned()
                })
                .filter_map(|n| n.strip_suffix(suffix).map(str::to_owned))
                .collect();
            names.sort();
            names
        };
        let mut expected: Vec<String> = TARGETS.iter().map(|(t, _)| t.to_string()).collect();
        expected.sort();
        let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
        assert_eq!(names(&corpus(), ""), expected, "fuzz/corpus/");
        assert_eq!(
            names(&fuzz.join("fuzz_targets"), ".rs"),
            expected,
            "fuzz/fuzz_targets/"
        );
    }

    /// The decoder targets start from a real file; one written by another format version stops at the
    /// version check. Regenerate with `cargo test --lib write_the_fuzz_seed_snapshot -- --ignored`.
    #[test]
    fn the_snapshot_corpus_holds_a_file_this_build_reads() {
        for target in ["snapshot", "snapshot_payload"] {
            assert!(
                inputs(target)
                    .into_iter()
                    .any(|(_, bytes)| persist::decode(bytes).is_ok()),
                "no file in fuzz/corpus/{target} decodes: regenerate the seed with \
                 `cargo test --lib write_the_fuzz_seed_snapshot -- --ignored`"
            );
        }
    }

    #[test]
    fn the_token_endpoint_issues_a_token_that_authenticates() {
        oauth_token(b"\x01\ngrant_type=client_credentials&client_id=okta-client&client_secret=client-secret");
        oauth_token(b"\x03Basic cmVhZGVyLWNsaWVudDpyZWFkZXItc2VjcmV0\n{\"grant_type\":\"client_credentials\"}");
    }
}
