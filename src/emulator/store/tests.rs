//! Tests of the store's cross-object rules on a small hand-made organisation: defaults and indexes on
//! create, the events writes record (and refusals do not), and state kept in step on update.

use super::*;
use crate::emulator::events::{Origin, kind};
use crate::emulator::model::{GroupFields, UserState};
use crate::emulator::query::{Dialect, parse_list};
use serde_json::{Map, Value, json};

fn store() -> Store {
    let org = Organization {
        id: "0".repeat(24),
        name: "Org".into(),
        created: "2020-01-01T00:00:00.000Z".into(),
    };
    Store::new(org, IdGen::new(7, 0), 5001)
}

fn body(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => panic!("not an object"),
    }
}

fn now() -> Origin {
    Origin::api(jiff::Timestamp::from_second(1_700_000_000).unwrap())
}

#[test]
fn create_defaults_and_indexes() {
    let mut s = store();
    let u = s
        .create_user(
            &body(json!({"username": "Ann", "email": "ANN@x.io"})),
            now(),
        )
        .unwrap();
    assert_eq!(u.email, "ann@x.io");
    assert_eq!(u.state, UserState::Activated);
    assert!(!u.activated);
    assert_eq!(u.unix_uid, 5001);
    let dup = s.create_user(&body(json!({"username": "ann", "email": "b@x.io"})), now());
    assert!(matches!(dup, Err(ApiError::Invalid { .. })));
    let q = parse_list(&[("filter".into(), "username:$eq:Ann".into())], Dialect::V1).unwrap();
    assert_eq!(s.query_users(&q.cond, &q.sort, 0, 10).0, 1);
    let q = parse_list(&[("filter".into(), "username:$eq:ann".into())], Dialect::V1).unwrap();
    assert_eq!(s.query_users(&q.cond, &q.sort, 0, 10).0, 0);
}

#[test]
fn writes_record_their_events_and_refusals_nothing() {
    let mut s = store();
    let g = s
        .create_group(GroupFields::named("All Users"), now())
        .unwrap()
        .id
        .clone();
    s.set_all_users_group(&g);
    let u = s
        .create_user(&body(json!({"username": "ann", "email": "a@x.io"})), now())
        .unwrap();
    assert!(
        s.create_user(&body(json!({"username": "ann", "email": "b@x.io"})), now())
            .is_err()
    );
    assert!(s.change_member(&g, EdgeOp::Add, &u.id, now()).is_err());
    s.change_member(&g, EdgeOp::Remove, &u.id, now()).unwrap();
    s.update_user(&u.id, &body(json!({"suspended": true})), now())
        .unwrap();
    s.delete_user(&u.id, None, now()).unwrap();
    let types: Vec<&str> = s.events.iter().map(|e| e.event_type).collect();
    assert_eq!(
        types,
        [
            kind::GROUP_CREATE,
            kind::USER_CREATE,
            kind::ASSOCIATION_CHANGE,
            kind::ASSOCIATION_CHANGE,
            kind::USER_UPDATE,
            kind::USER_SUSPENDED,
            kind::USER_DELETE,
        ]
    );
}

#[test]
fn update_reindexes_and_keeps_state_in_step() {
    let mut s = store();
    let u = s
        .create_user(&body(json!({"username": "ann", "email": "a@x.io"})), now())
        .unwrap();
    let u2 = s
        .update_user(
            &u.id,
            &body(json!({"username": "anne", "suspended": true})),
            now(),
        )
        .unwrap();
    assert_eq!(u2.state, UserState::Suspended);
    assert!(
        s.create_user(&body(json!({"username": "ann", "email": "c@x.io"})), now())
            .is_ok()
    );
    assert!(
        s.update_user(&u.id, &body(json!({"state": "STAGED"})), now())
            .is_err()
    );
    assert!(
        s.update_user(
            &u.id,
            &body(json!({"state": "ACTIVATED", "suspended": true})),
            now()
        )
        .is_err()
    );
    let u3 = s
        .update_user(&u.id, &body(json!({"suspended": false})), now())
        .unwrap();
    assert_eq!(u3.state, UserState::Activated);
}
