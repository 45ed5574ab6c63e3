//! A delta applied on its base makes, byte for byte, the version its writer published.

use std::collections::HashMap;
use std::sync::Arc;

use super::*;
use crate::cache::persist::encode;
use crate::cache::test_support::{group, opts};
use crate::cache::{Data, RawDirectory, RefreshPublished, Store};
use crate::jumpcloud::{JcDirectory, JcDirectoryKind, JcUser};

fn user(i: usize, manager: Option<usize>) -> JcUser {
    JcUser {
        id: format!("u{i:03}"),
        username: format!("user{i}"),
        email: format!("user{i}@example.com"),
        manager: manager.map(|m| format!("u{m:03}")),
        ..JcUser::default()
    }
}

fn raw() -> RawDirectory {
    let ids = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    RawDirectory {
        users: (0..10).map(|i| user(i, (i > 5).then_some(1))).collect(),
        groups: vec![group("g1", "Engineering"), group("g2", "Sales")],
        members: HashMap::from([
            ("g1".into(), ids(&["u001", "u003", "u006"])),
            ("g2".into(), ids(&["u003", "u004"])),
        ]),
        directories: vec![JcDirectory {
            id: "d1".into(),
            name: Some("Workspace".into()),
            kind: JcDirectoryKind::from("g_suite"),
            default_domain: Some("example.com".into()),
        }],
        directory_users: HashMap::from([("d1".into(), ids(&["u003"]))]),
        directory_groups: HashMap::from([("d1".into(), ids(&["g2"]))]),
    }
}

async fn store() -> Store {
    let store = Store::new(opts());
    let ticket = store.begin_refresh().await;
    let at = ticket.started_at();
    match store
        .publish_refresh(ticket, Data::from_raw(raw()), at)
        .await
    {
        RefreshPublished::Published(_) => store,
        RefreshPublished::HeldBack(r) => panic!("{r}"),
    }
}

fn id(s: &str) -> Id {
    Arc::from(s)
}

type Change = Box<dyn FnOnce(&mut Data) -> Touched>;

/// The writes a provisioning client makes, one of each kind.
fn writes() -> Vec<(&'static str, Change)> {
    vec![
        (
            "a user's title",
            Box::new(|d: &mut Data| {
                let mut u = d.users.get("u002").unwrap().unpack();
                u.job_title = Some("Engineer".into());
                let mut t = Touched::default();
                t.users.insert(d.put_user(u));
                t
            }),
        ),
        (
            "a joiner with a manager",
            Box::new(|d: &mut Data| {
                let mut t = Touched::default();
                t.users.insert(d.put_user(user(100, Some(2))));
                t
            }),
        ),
        (
            "a member added",
            Box::new(|d: &mut Data| {
                d.add_member(&id("g1"), &id("u100"));
                let mut t = Touched::default();
                t.member_lists.insert(id("g1"));
                t.users.insert(id("u100"));
                t
            }),
        ),
        (
            "a group renamed",
            Box::new(|d: &mut Data| {
                d.groups
                    .insert(id("g2"), Arc::new(group("g2", "Field Sales")));
                let mut t = Touched::default();
                t.groups.insert(id("g2"));
                t
            }),
        ),
        (
            "a directory bound to a user",
            Box::new(|d: &mut Data| {
                d.directory_users
                    .entry(id("d1"))
                    .or_default()
                    .insert(id("u005"));
                let mut t = Touched::default();
                t.directories.insert(id("d1"));
                t.users.insert(id("u005"));
                t
            }),
        ),
        (
            "a manager deleted",
            Box::new(|d: &mut Data| d.remove_user(&id("u001"))),
        ),
        (
            "a group deleted",
            Box::new(|d: &mut Data| d.remove_group(&id("g2"))),
        ),
    ]
}

#[tokio::test]
async fn a_delta_on_its_base_makes_the_writers_version_byte_for_byte() {
    let store = store().await;
    for (what, write) in writes() {
        let base = store.load().unwrap();
        let next = store.publish_write(write).await.unwrap();
        let change = store.change_of(next.version).await.expect(what);
        assert_eq!(change.base, base.version, "{what}");
        let bytes = encode_delta(&next, &change).unwrap();
        let (applied, touched) = apply_delta(&base, &bytes, &opts()).unwrap();
        assert_eq!(touched.users, change.touched.users, "{what}");
        assert_eq!(applied.version, next.version, "{what}");
        assert!(
            encode(&applied, &opts()).unwrap() == encode(&next, &opts()).unwrap(),
            "{what}: the applied version differs from the published one"
        );
        // The next write's base is the applied version as much as the published one.
        store.publish_as_is(Arc::new(applied)).await;
    }
}

#[tokio::test]
async fn a_delta_is_refused_on_another_base_or_damaged() {
    let store = store().await;
    let base = store.load().unwrap();
    let mut writes = writes();
    let (_, write) = writes.remove(0);
    let next = store.publish_write(write).await.unwrap();
    let change = store.change_of(next.version).await.unwrap();
    let bytes = encode_delta(&next, &change).unwrap();
    let err = apply_delta(&next, &bytes, &opts()).unwrap_err().to_string();
    assert!(err.contains("made on version"), "{err}");
    let mut damaged = bytes.clone();
    damaged[0] ^= 1;
    assert!(apply_delta(&base, &damaged, &opts()).is_err());
    let mut future = bytes.clone();
    future[8] = 9;
    assert!(matches!(
        apply_delta(&base, &future, &opts()),
        Err(PersistError::WrongVersion { found: 9, .. })
    ));
    assert!(apply_delta(&base, &bytes[..bytes.len() - 3], &opts()).is_err());
    assert!(apply_delta(&base, b"JCSC", &opts()).is_err());
}

#[tokio::test]
async fn a_refresh_has_no_delta() {
    let store = store().await;
    let v = store.load().unwrap().version;
    assert!(store.change_of(v).await.is_none());
}
