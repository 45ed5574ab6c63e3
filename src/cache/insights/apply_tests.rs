//! The edit a batch makes: fetched objects in, removals out, edges from events unless a fetch already says
//! how they stand, unknown ends fetched, and nothing touched when nothing changes.

use std::collections::HashMap;

use serde_json::json;

use super::*;
use crate::cache::RawDirectory;
use crate::cache::test_support::group;
use crate::jumpcloud::JcEvent;

fn user(id: &str) -> JcUser {
    JcUser {
        id: id.into(),
        username: format!("user-{id}"),
        email: format!("{id}@example.com"),
        ..JcUser::default()
    }
}

fn ad(id: &str) -> JcDirectory {
    JcDirectory {
        id: id.into(),
        name: Some("Corp AD".into()),
        kind: JcDirectoryKind::ActiveDirectory,
        default_domain: None,
    }
}

/// u1, u2, u3; g1 = {u1}; ad1 held by u2 and bound to nothing.
fn data() -> Data {
    Data::from_raw(RawDirectory {
        users: vec![user("u1"), user("u2"), user("u3")],
        groups: vec![group("g1", "Eng")],
        members: HashMap::from([("g1".to_owned(), vec!["u1".to_owned()])]),
        directories: vec![ad("ad1")],
        directory_users: HashMap::from([("ad1".to_owned(), vec!["u2".to_owned()])]),
        directory_groups: HashMap::new(),
    })
}

fn edge(i: u32, op: &str, from: (&str, &str), to: (&str, &str)) -> JcEvent {
    JcEvent::from_value(json!({
        "id": format!("e{i}"), "event_type": "association_change",
        "timestamp": format!("2024-05-01T10:00:0{i}Z"),
        "association": {"op": op, "connection": {
            "from": {"type": from.0, "object_id": from.1},
            "to": {"type": to.0, "object_id": to.1}}}
    }))
}

fn about(i: u32, t: &str, kind: &str, id: &str) -> JcEvent {
    JcEvent::from_value(json!({
        "id": format!("e{i}"), "event_type": t, "timestamp": format!("2024-05-01T10:00:0{i}Z"),
        "resource": {"type": kind, "id": id}
    }))
}

fn ids(set: &std::collections::BTreeSet<Id>) -> Vec<&str> {
    set.iter().map(|s| &**s).collect()
}

#[test]
fn unknown_ends_of_added_edges_are_fetched_and_removed_ones_are_not() {
    let d = data();
    let plan = Plan::of(&[
        edge(1, "add", ("user_group", "g1"), ("user", "u9")),
        edge(2, "add", ("user_group", "g7"), ("user", "u1")),
        edge(3, "add", ("active_directory", "ad5"), ("user", "u1")),
        edge(4, "remove", ("user_group", "g8"), ("user", "u8")),
        about(5, "user_update", "systemuser", "u2"),
        about(6, "user_delete", "systemuser", "u3"),
    ]);
    let n = Needs::of(&plan, &d);
    assert_eq!(n.users.iter().collect::<Vec<_>>(), ["u2", "u9"]);
    assert_eq!(
        n.groups.iter().collect::<Vec<_>>(),
        [(&"g7".to_owned(), &true)]
    );
    assert!(n.directories);
    assert_eq!(n.holders.iter().collect::<Vec<_>>(), ["ad5"]);
    assert_eq!(n.len(), 5);
}

#[test]
fn fetched_objects_and_event_edges_edit_the_data_and_say_what_they_touched() {
    let mut d = data();
    let plan = Plan::of(&[
        about(1, "user_update", "systemuser", "u1"),
        about(2, "user_delete", "systemuser", "u3"),
        edge(3, "add", ("user_group", "g1"), ("user", "u2")),
        edge(4, "remove", ("active_directory", "ad1"), ("user", "u2")),
        edge(5, "add", ("active_directory", "ad1"), ("user_group", "g1")),
        about(6, "user_create", "systemuser", "u4"),
        edge(7, "add", ("user_group", "g1"), ("user", "u4")),
    ]);
    let mut edited_u1 = user("u1");
    edited_u1.department = Some("Sales".into());
    let fetched = Fetched {
        users: BTreeMap::from([
            ("u1".to_owned(), Some(edited_u1)),
            ("u4".to_owned(), Some(user("u4"))),
        ]),
        ..Fetched::default()
    };
    let e = edit(&mut d, &plan, &fetched);
    assert_eq!(e.users_removed, 1);
    assert!(!d.users.contains_key("u3"));
    assert_eq!(d.users["u1"].unpack().department.as_deref(), Some("Sales"));
    let members: Vec<&str> = d.members["g1"].iter().map(|s| &**s).collect();
    assert_eq!(members, ["u1", "u2", "u4"]);
    assert!(d.directory_users["ad1"].is_empty());
    assert!(d.directory_groups["ad1"].contains("g1"));
    assert_eq!(ids(&e.touched.users), ["u1", "u2", "u3", "u4"]);
    assert_eq!(ids(&e.touched.member_lists), ["g1"]);
    assert_eq!(ids(&e.touched.directories), ["ad1"]);
    assert!(e.touched.groups.is_empty(), "no group's name changed");
}

#[test]
fn a_fetched_member_list_outranks_the_edges_of_its_batch() {
    let mut d = data();
    let plan = Plan::of(&[
        about(1, "group_create", "user_group", "g2"),
        edge(2, "add", ("user_group", "g2"), ("user", "u1")),
        edge(3, "add", ("user_group", "g2"), ("user", "u3")),
    ]);
    // JumpCloud, read after both events, says u3 has left already.
    let fetched = Fetched {
        groups: BTreeMap::from([(
            "g2".to_owned(),
            Some(GroupRead {
                group: group("g2", "New"),
                members: Some(vec!["u1".to_owned(), "u2".to_owned()]),
            }),
        )]),
        ..Fetched::default()
    };
    let e = edit(&mut d, &plan, &fetched);
    let members: Vec<&str> = d.members["g2"].iter().map(|s| &**s).collect();
    assert_eq!(members, ["u1", "u2"]);
    assert_eq!(
        ids(&e.touched.groups),
        ["g2"],
        "a new group shows in its members"
    );
}

#[test]
fn what_is_already_so_touches_nothing() {
    let mut d = data();
    let plan = Plan::of(&[
        about(1, "user_update", "systemuser", "u1"),
        edge(2, "add", ("user_group", "g1"), ("user", "u1")),
        edge(3, "add", ("active_directory", "ad1"), ("user", "u2")),
        edge(4, "remove", ("user_group", "g1"), ("user", "u9")),
        about(5, "user_delete", "systemuser", "u9"),
        about(6, "group_update", "user_group", "g1"),
    ]);
    let fetched = Fetched {
        users: BTreeMap::from([("u1".to_owned(), Some(user("u1")))]),
        groups: BTreeMap::from([(
            "g1".to_owned(),
            Some(GroupRead {
                group: group("g1", "Eng"),
                members: None,
            }),
        )]),
        ..Fetched::default()
    };
    let e = edit(&mut d, &plan, &fetched);
    assert!(e.touched.is_empty(), "{:?}", e.touched);
    assert_eq!(e.users_removed, 0);
}

#[test]
fn gone_objects_and_directories_are_removed_with_their_edges() {
    let mut d = data();
    let plan = Plan::of(&[
        about(1, "user_update", "systemuser", "u1"),
        about(2, "group_update", "user_group", "g1"),
        about(3, "activedirectory_delete", "active_directory", "ad1"),
    ]);
    let fetched = Fetched {
        users: BTreeMap::from([("u1".to_owned(), None)]),
        groups: BTreeMap::from([("g1".to_owned(), None)]),
        directories: Some(Vec::new()),
        ..Fetched::default()
    };
    let e = edit(&mut d, &plan, &fetched);
    assert_eq!((e.users_removed, e.groups_removed), (1, 1));
    assert!(d.users.get("u1").is_none() && d.groups.get("g1").is_none());
    assert!(d.directories.is_empty() && d.directory_users.get("ad1").is_none());
    assert!(d.user_groups.get("u1").is_none());
    assert_eq!(ids(&e.touched.directories), ["ad1"]);
}

#[test]
fn fetched_holders_replace_a_directory_s_bindings() {
    let mut d = data();
    let plan = Plan::of(&[about(
        1,
        "activedirectory_update",
        "active_directory",
        "ad1",
    )]);
    let fetched = Fetched {
        directories: Some(vec![ad("ad1")]),
        holders: BTreeMap::from([(
            "ad1".to_owned(),
            (
                vec!["u1".to_owned(), "u-unknown".to_owned()],
                vec!["g1".to_owned()],
            ),
        )]),
        ..Fetched::default()
    };
    let e = edit(&mut d, &plan, &fetched);
    let users: Vec<&str> = d.directory_users["ad1"].iter().map(|s| &**s).collect();
    assert_eq!(users, ["u1"], "only users the data holds");
    assert!(d.directory_groups["ad1"].contains("g1"));
    assert_eq!(ids(&e.touched.directories), ["ad1"]);
}
