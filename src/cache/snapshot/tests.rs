use std::sync::Arc;

use super::*;
use crate::cache::test_support::{build, group, opts, t};
use crate::jumpcloud::{JcDirectory, JcDirectoryKind, JcUser};
use crate::scim::ResourceKind;

fn user(id: &str, name: &str, manager: Option<&str>) -> JcUser {
    JcUser {
        id: id.into(),
        username: name.into(),
        email: format!("{name}@example.com"),
        firstname: Some(name.to_uppercase()),
        state: Some("ACTIVATED".into()),
        activated: true,
        manager: manager.map(Into::into),
        ..Default::default()
    }
}

fn raw() -> RawDirectory {
    RawDirectory {
        users: vec![
            user("u1", "alice", None),
            user("u2", "bob", Some("u1")),
            user("u3", "carol", Some("u1")),
        ],
        groups: vec![group("g1", "Engineering"), group("g2", "Sales")],
        members: [
            ("g1".to_string(), vec!["u1".to_string(), "u2".to_string()]),
            (
                "g2".to_string(),
                vec!["u3".to_string(), "ghost".to_string()],
            ),
        ]
        .into_iter()
        .collect(),
        directories: vec![
            JcDirectory {
                id: "d1".into(),
                name: Some("corp.example.com".into()),
                kind: JcDirectoryKind::ActiveDirectory,
                default_domain: None,
            },
            JcDirectory {
                id: "d2".into(),
                name: Some("LDAP".into()),
                kind: JcDirectoryKind::Other("ldap_server".into()),
                default_domain: None,
            },
        ],
        directory_users: [("d1".to_string(), vec!["u3".to_string()])]
            .into_iter()
            .collect(),
        directory_groups: [("d1".to_string(), vec!["g1".to_string()])]
            .into_iter()
            .collect(),
    }
}

#[test]
fn build_derives_resources_edges_and_indexes() {
    let s = build(raw(), 1, t(1000), None);
    assert_eq!(s.users.len(), 3);
    // Two user groups and the AD directory; the LDAP server is not something users hold as a group.
    assert_eq!(s.groups.len(), 3);
    let alice = &s.get(ResourceKind::User, "u1").unwrap().to_json();
    let groups: Vec<(&str, &str)> = alice["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| (g["value"].as_str().unwrap(), g["type"].as_str().unwrap()))
        .collect();
    assert_eq!(groups, vec![("d1", "indirect"), ("g1", "direct")]);
    let carol = &s.get(ResourceKind::User, "u3").unwrap().to_json();
    assert_eq!(carol["entitlements"][0]["type"], "active_directory");
    assert_eq!(
        carol["groups"]
            .as_array()
            .unwrap()
            .iter()
            .find(|g| g["value"] == "d1")
            .unwrap()["type"],
        "direct"
    );
    // The unknown member "ghost" is dropped.
    let sales = &s.get(ResourceKind::Group, "g2").unwrap().to_json();
    assert_eq!(sales["members"].as_array().unwrap().len(), 1);
    let ad = &s.get(ResourceKind::Group, "d1").unwrap().to_json();
    assert_eq!(ad["members"].as_array().unwrap().len(), 3);
    assert_eq!(ad["meta"]["resourceType"], "Group");
    // Indexes.
    assert!(
        s.indexes
            .find(Index::UserName, "alice")
            .unwrap()
            .contains("u1")
    );
    assert!(
        s.indexes
            .find(Index::Email, "bob@example.com")
            .unwrap()
            .contains("u2")
    );
    assert!(
        s.indexes
            .find(Index::GroupName, "engineering")
            .unwrap()
            .contains("g1")
    );
    assert_eq!(s.indexes.find(Index::MemberOf, "u1").unwrap().len(), 2);
    // Manager reference and reports.
    assert_eq!(
        s.get(ResourceKind::User, "u2").unwrap().to_json()["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"]
            ["manager"],
        serde_json::json!({"value": "u1", "$ref": "http://localhost/scim/v2/Users/u1"})
    );
    // The account state is returned on request: kept beside the served bytes, seen by filters.
    let alice = s.get(ResourceKind::User, "u1").unwrap();
    let served: serde_json::Value = serde_json::from_slice(&alice.bytes).unwrap();
    assert!(
        served["urn:jumpcloud-scim:schemas:extension:jumpcloud:2.0:User"]
            .get("state")
            .is_none()
    );
    assert_eq!(
        alice.to_json()["urn:jumpcloud-scim:schemas:extension:jumpcloud:2.0:User"]["state"],
        "ACTIVATED"
    );
    assert_eq!(s.data.reports["u1"].len(), 2);
    // Meta and bytes agree.
    let e = s.get(ResourceKind::User, "u1").unwrap();
    assert_eq!(e.to_json()["meta"]["version"], e.etag().as_str());
    // The bytes are the whole resource without what is returned only on request.
    let mut default = e.to_json().clone();
    crate::scim::attrs::split_request_only(&mut default, crate::scim::ResourceKind::User);
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&e.bytes).unwrap(),
        default
    );
    assert_eq!(
        s.list(ResourceKind::User)
            .iter()
            .map(|e| e.id.to_string())
            .collect::<Vec<_>>(),
        ["u1", "u2", "u3"]
    );
}

#[test]
fn unchanged_entries_are_shared_and_keep_their_times() {
    let first = build(raw(), 1, t(1000), None);
    let mut changed = raw();
    changed.users[2].lastname = Some("Changed".into());
    let second = build(changed, 2, t(2000), Some(&first));
    let a1 = first.get(ResourceKind::User, "u1").unwrap();
    let a2 = second.get(ResourceKind::User, "u1").unwrap();
    assert!(
        Arc::ptr_eq(a1, a2),
        "an unchanged user is shared between versions"
    );
    assert!(Arc::ptr_eq(
        first.get(ResourceKind::Group, "g1").unwrap(),
        second.get(ResourceKind::Group, "g1").unwrap()
    ));
    let c1 = first.get(ResourceKind::User, "u3").unwrap();
    let c2 = second.get(ResourceKind::User, "u3").unwrap();
    assert_ne!(c1.etag(), c2.etag());
    assert_eq!(c1.last_modified, t(1000));
    assert_eq!(c2.last_modified, t(2000));
    assert_eq!(c2.created, c1.created, "created survives a change");
}

#[test]
fn content_times_come_from_seen_when_there_is_no_previous_version() {
    let first = build(raw(), 1, t(1000), None);
    let seen = |k: ResourceKind, id: &str| first.seen(k, id);
    let again = Snapshot::build(
        Data::from_raw(raw()),
        7,
        t(5000),
        t(5000),
        &opts(),
        None,
        &seen,
    );
    assert_eq!(
        again.get(ResourceKind::User, "u1").unwrap().last_modified,
        t(1000)
    );
    assert_eq!(again.version, 7);
}

#[test]
fn with_changes_rederives_only_what_shows_the_change() {
    let s1 = build(raw(), 1, t(1000), None);
    let s2 = alice_renamed(&s1);
    assert_eq!(
        s2.get(ResourceKind::User, "u1").unwrap().to_json()["name"]["givenName"],
        "Alicia"
    );
    // Others name Alice by id only: Bob's entry and Engineering's say what they said.
    for (kind, id) in [(ResourceKind::User, "u2"), (ResourceKind::Group, "g1")] {
        assert_eq!(
            s1.get(kind, id).unwrap().etag(),
            s2.get(kind, id).unwrap().etag(),
            "{id}"
        );
    }
    // Sales does not list Alice: shared.
    assert!(Arc::ptr_eq(
        s1.get(ResourceKind::Group, "g2").unwrap(),
        s2.get(ResourceKind::Group, "g2").unwrap()
    ));
    assert_eq!(s2.version, 2);
}

#[test]
fn membership_change_moves_indexes() {
    let s1 = build(raw(), 1, t(1000), None);
    let mut data = s1.data.clone();
    let (g2, u1): (Id, Id) = (Arc::from("g2"), Arc::from("u1"));
    data.add_member(&g2, &u1);
    let touched = Touched {
        groups: [g2.clone()].into_iter().collect(),
        ..Touched::default()
    };
    let s2 = s1.with_changes(data, &touched, 2, t(2000), &opts());
    assert!(
        s2.indexes
            .find(Index::MemberOf, "u1")
            .unwrap()
            .contains("g2")
    );
    let alice = &s2.get(ResourceKind::User, "u1").unwrap().to_json();
    assert!(
        alice["groups"]
            .as_array()
            .unwrap()
            .iter()
            .any(|g| g["value"] == "g2")
    );
    // Deleting a user drops it from every index.
    let mut data = s2.data.clone();
    data.remove_member(&g2, &u1);
    data.remove_member(&Arc::from("g1"), &u1);
    data.users.remove("u1");
    let touched = Touched {
        users: [u1.clone()].into_iter().collect(),
        groups: [g2.clone(), Arc::from("g1")].into_iter().collect(),
        ..Touched::default()
    };
    let s3 = s2.with_changes(data, &touched, 3, t(3000), &opts());
    assert!(s3.get(ResourceKind::User, "u1").is_none());
    assert!(s3.indexes.find(Index::UserName, "alice").is_none());
    assert!(s3.indexes.find(Index::MemberOf, "u1").is_none());
    assert_eq!(s3.list(ResourceKind::User).len(), 2);
}

#[test]
fn overlay_keeps_writes_a_stale_refresh_missed() {
    let s1 = build(raw(), 1, t(1000), None);
    // A write added Bob to Sales and renamed Carol.
    let mut published = s1.data.clone();
    published.add_member(&Arc::from("g2"), &Arc::from("u2"));
    let mut carol = published.users.get("u3").unwrap().unpack();
    carol.lastname = Some("Written".into());
    published
        .users
        .insert(Arc::from("u3"), PackedUser::pack(&carol));
    let touched = Touched {
        users: [Arc::from("u3")].into_iter().collect(),
        groups: [Arc::from("g2")].into_iter().collect(),
        ..Touched::default()
    };
    // A refresh that read JumpCloud before the write.
    let mut stale = Data::from_raw(raw());
    stale.overlay(&published, &touched);
    assert!(stale.members["g2"].contains("u2"));
    assert!(stale.user_groups["u2"].contains("g2"));
    assert_eq!(
        stale.users["u3"].unpack().lastname.as_deref(),
        Some("Written")
    );
    // A user deleted by the write stays deleted.
    let mut published2 = s1.data.clone();
    published2.users.remove("u2");
    published2.remove_member(&Arc::from("g1"), &Arc::from("u2"));
    let mut stale2 = Data::from_raw(raw());
    stale2.overlay(
        &published2,
        &Touched {
            users: [Arc::from("u2")].into_iter().collect(),
            ..Touched::default()
        },
    );
    assert!(!stale2.users.contains_key("u2"));
    assert!(!stale2.members["g1"].contains("u2"));
}

#[test]
fn a_large_directory_builds_on_every_core_with_the_same_result() {
    let n = derive::PARALLEL_BUILD_USERS + 321;
    let users: Vec<JcUser> = (0..n)
        .map(|i| {
            user(
                &format!("u{i:06}"),
                &format!("user{i}"),
                (i > 0).then_some("u000000"),
            )
        })
        .collect();
    let raw = RawDirectory {
        users,
        groups: vec![group("g1", "Everyone")],
        members: [(
            "g1".to_string(),
            (0..n).map(|i| format!("u{i:06}")).collect(),
        )]
        .into_iter()
        .collect(),
        ..RawDirectory::default()
    };
    let s = build(raw.clone(), 1, t(1000), None);
    assert_eq!(s.users.len(), n);
    assert_eq!(
        s.list(ResourceKind::User).first().unwrap().id.as_ref(),
        "u000000"
    );
    for (id, e) in s.users.iter().step_by(997) {
        assert_eq!(e.id, *id);
        assert_eq!(e.to_json()["id"], id.as_ref());
        assert_eq!(e.to_json()["groups"][0]["value"], "g1");
    }
    assert_eq!(
        s.get(ResourceKind::Group, "g1").unwrap().to_json()["members"]
            .as_array()
            .unwrap()
            .len(),
        n
    );
    // A second build from the same data reuses every entry.
    let again = build(raw, 2, t(2000), Some(&s));
    assert!(
        again
            .users
            .iter()
            .all(|(id, e)| Arc::ptr_eq(e, s.users.get(id).unwrap()))
    );
}

#[test]
fn the_time_index_follows_writes_and_finds_what_changed_since() {
    let s1 = build(raw(), 1, t(1000), None);
    let all_since = |s: &Snapshot, at: i64| s.indexes.modified_since(ResourceKind::User, t(at));
    assert_eq!(all_since(&s1, 0).len(), s1.users.len());
    assert!(all_since(&s1, 1001).is_empty());
    let s2 = alice_renamed(&s1);
    assert_eq!(all_since(&s2, 1001), vec![Arc::<str>::from("u1")]);
    assert_eq!(
        all_since(&s2, 0).len(),
        s2.users.len(),
        "the old time is gone"
    );
    assert_eq!(
        s2.indexes.modified_since(ResourceKind::Group, t(0)).len(),
        s2.groups.len()
    );
}

#[test]
fn a_projection_that_skips_what_it_drops_equals_the_whole_projection() {
    use crate::scim::attrs::AttrSelection;
    let s = build(raw(), 1, t(1000), None);
    let selections = [
        (None, Some("members")),
        (Some("displayName"), None),
        (Some("userName,emails.value"), None),
        (None, Some("emails,groups,name.givenName")),
        (
            Some("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager"),
            None,
        ),
        (Some("members.value"), None),
    ];
    for (kind, entries) in [
        (ResourceKind::User, &s.users),
        (ResourceKind::Group, &s.groups),
    ] {
        for (a, x) in selections {
            let sel = AttrSelection::parse(a, x, kind).unwrap();
            for e in entries.values() {
                let skipped = e.to_json_skipping(&|k| sel.drops_core(kind, k));
                assert_eq!(
                    sel.project(&skipped, kind),
                    sel.project(&e.to_json(), kind),
                    "{kind:?} {a:?} {x:?} {}",
                    e.id
                );
            }
        }
    }
    let sel = AttrSelection::parse(None, Some("members"), ResourceKind::Group).unwrap();
    assert!(sel.drops_core(ResourceKind::Group, "members"));
    assert!(
        !sel.drops_core(ResourceKind::Group, "id"),
        "returned always"
    );
    assert!(!sel.drops_core(ResourceKind::Group, "schemas"));
    assert!(!sel.drops_core(ResourceKind::Group, "displayName"));
}

#[test]
fn a_member_list_change_derives_the_group_and_the_member_not_every_member() {
    let s1 = build(raw(), 1, t(1000), None);
    let mut data = s1.data.clone();
    data.add_member(&Arc::from("g1"), &Arc::from("u3"));
    let touched = Touched {
        users: [Arc::from("u3")].into_iter().collect(),
        member_lists: [Arc::from("g1")].into_iter().collect(),
        ..Touched::default()
    };
    let s2 = s1.with_changes(data, &touched, 2, t(2000), &opts());
    let members =
        |s: &Snapshot| member_ids_of(&s.get(ResourceKind::Group, "g1").unwrap().to_json());
    assert!(members(&s2).contains("u3") && !members(&s1).contains("u3"));
    let groups_of = |s: &Snapshot, u: &str| {
        s.get(ResourceKind::User, u).unwrap().to_json()["groups"].to_string()
    };
    assert!(groups_of(&s2, "u3").contains("Engineering"));
    // The members that did not change are the same entries, not derived again.
    for u in ["u1", "u2"] {
        assert!(
            Arc::ptr_eq(
                s1.get(ResourceKind::User, u).unwrap(),
                s2.get(ResourceKind::User, u).unwrap()
            ),
            "{u}"
        );
    }
    assert!(
        s2.indexes
            .find(Index::MemberOf, "u3")
            .unwrap()
            .contains("g1")
    );
}

fn member_ids_of(group: &serde_json::Value) -> std::collections::BTreeSet<String> {
    group["members"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| m["value"].as_str().map(String::from))
        .collect()
}

/// The next version after a write that renamed Alice (u1) at t(2000).
fn alice_renamed(s1: &Snapshot) -> Snapshot {
    let mut data = s1.data.clone();
    let mut alice = data.users.get("u1").unwrap().unpack();
    alice.firstname = Some("Alicia".into());
    data.users.insert(Arc::from("u1"), PackedUser::pack(&alice));
    let touched = Touched {
        users: [Arc::from("u1")].into_iter().collect(),
        ..Touched::default()
    };
    s1.with_changes(data, &touched, 2, t(2000), &opts())
}

#[test]
fn a_build_packs_neighbours_and_the_next_keeps_them_where_they_were() {
    let adjacent_users = |s: &Snapshot| -> Vec<bool> {
        s.list(ResourceKind::User)
            .windows(2)
            .map(|w| block::adjacent(&w[0], &w[1]))
            .collect()
    };
    let first = build(raw(), 1, t(1000), None);
    assert_eq!(
        adjacent_users(&first),
        [true, true],
        "one block, list order"
    );
    let groups = first.list(ResourceKind::Group);
    assert!(groups.windows(2).all(|w| block::adjacent(&w[0], &w[1])));

    // carol changes: alice and bob stay in their block, carol's new bytes are her own.
    let mut changed = raw();
    changed.users[2].lastname = Some("Changed".into());
    let second = build(changed, 2, t(2000), Some(&first));
    assert_eq!(adjacent_users(&second), [true, false]);
    let served: serde_json::Value =
        serde_json::from_slice(&second.get(ResourceKind::User, "u3").unwrap().bytes).unwrap();
    assert_eq!(served["name"]["familyName"], "Changed");
}

#[test]
fn an_overlay_keeps_managers_reports_as_a_rebuild_makes_them() {
    let mut base = Data::from_raw(raw());
    let mut next = base.clone();
    let mut touched = Touched::default();
    // Carol moves to Bob, Bob loses his manager, Dave joins under Alice, and Alice's record is edited.
    for u in [
        user("u3", "carol", Some("u2")),
        user("u2", "bob", None),
        user("u4", "dave", Some("u1")),
        user("u1", "alice-renamed", None),
    ] {
        touched.users.insert(next.put_user(u));
    }
    base.overlay(&next, &touched);
    let mut rebuilt = base.clone();
    rebuilt.rebuild_reports();
    assert_eq!(base.reports, rebuilt.reports);
    assert_eq!(base.reports["u1"].len(), 1, "Alice keeps only Dave");
    assert_eq!(base.reports["u2"].len(), 1, "Bob has Carol");
    // A manager deleted: their reports lose them (the removal touches them), and no entry is left.
    let mut next = base.clone();
    let touched = next.remove_user(&Arc::from("u2"));
    base.overlay(&next, &touched);
    let mut rebuilt = base.clone();
    rebuilt.rebuild_reports();
    assert_eq!(base.reports, rebuilt.reports);
    assert!(!base.reports.contains_key("u2"));
}

#[test]
fn a_user_who_left_a_group_is_gone_from_its_members_though_only_the_user_was_touched() {
    let s1 = build(raw(), 1, t(1000), None);
    let members =
        |s: &Snapshot| s.get(ResourceKind::Group, "g1").unwrap().to_json()["members"].clone();
    assert!(members(&s1).to_string().contains("\"u2\""));
    let mut data = s1.data.clone();
    let (g1, u2): (Id, Id) = (Arc::from("g1"), Arc::from("u2"));
    data.remove_member(&g1, &u2);
    let touched = Touched {
        users: [u2].into_iter().collect(),
        ..Touched::default()
    };
    let s2 = s1.with_changes(data, &touched, 2, t(2000), &opts());
    assert!(
        !members(&s2).to_string().contains("\"u2\""),
        "{}",
        members(&s2)
    );
    // Sales, which Bob never was in, is shared as it was.
    assert!(Arc::ptr_eq(
        s1.get(ResourceKind::Group, "g2").unwrap(),
        s2.get(ResourceKind::Group, "g2").unwrap()
    ));
}
