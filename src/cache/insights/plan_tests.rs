//! Coalescing: one fetch per object however many events name it, removals that stay, the last edge
//! operation winning, what is ignored, and where an unreadable event stops a plan.

use serde_json::{Value, json};

use super::*;

fn event(i: u32, event_type: &str, rest: Value) -> JcEvent {
    let mut v = json!({
        "id": format!("e{i:03}"),
        "event_type": event_type,
        "timestamp": format!("2024-05-01T10:00:{:02}.000Z", i % 60),
    });
    if let (Value::Object(m), Value::Object(r)) = (&mut v, rest) {
        m.extend(r);
    }
    JcEvent::from_value(v)
}

fn user_event(i: u32, event_type: &str, id: &str) -> JcEvent {
    event(
        i,
        event_type,
        json!({"resource": {"type": "systemuser", "id": id}}),
    )
}

fn group_event(i: u32, event_type: &str, id: &str) -> JcEvent {
    event(
        i,
        event_type,
        json!({"resource": {"type": "user_group", "id": id}}),
    )
}

fn edge_event(i: u32, op: &str, from: (&str, &str), to: (&str, &str)) -> JcEvent {
    event(
        i,
        "association_change",
        json!({"resource": {"type": from.0, "id": from.1},
               "association": {"op": op, "connection": {
                   "from": {"type": from.0, "object_id": from.1},
                   "to": {"type": to.0, "object_id": to.1}}}}),
    )
}

#[test]
fn many_events_of_one_user_are_one_fetch_and_a_delete_stays_a_delete() {
    let events = [
        user_event(1, "user_update", "u1"),
        user_event(2, "user_suspended", "u1"),
        user_event(3, "USER_UPDATE", "u1"),
        user_event(4, "user_create", "u2"),
        user_event(5, "user_delete", "u2"),
        user_event(6, "user_update", "u2"),
        user_event(7, "user_a_type_not_yet_known", "u3"),
    ];
    let plan = Plan::of(&events);
    assert_eq!(
        plan.users.into_iter().collect::<Vec<_>>(),
        [
            ("u1".to_owned(), Want::Fetch { members: false }),
            ("u2".to_owned(), Want::Remove),
            ("u3".to_owned(), Want::Fetch { members: false }),
        ]
    );
    assert_eq!(plan.events.len(), 7);
    assert_eq!(plan.events[0].1, "e001");
    assert_eq!(plan.by_type["user_update"], 3, "types compare in any case");
    assert_eq!(plan.by_type["other"], 1);
    assert!(plan.blocked.is_none());
}

#[test]
fn a_created_group_brings_its_members_and_an_update_does_not() {
    let plan = Plan::of(&[
        group_event(1, "group_update", "g1"),
        group_event(2, "group_create", "g2"),
        group_event(3, "group_update", "g2"),
        group_event(4, "group_delete", "g3"),
        event(
            5,
            "group_update",
            json!({"resource": {"type": "system_group", "id": "s1"}}),
        ),
    ]);
    assert_eq!(plan.groups["g1"], Want::Fetch { members: false });
    assert_eq!(plan.groups["g2"], Want::Fetch { members: true });
    assert_eq!(plan.groups["g3"], Want::Remove);
    assert!(
        !plan.groups.contains_key("s1"),
        "system groups are not held"
    );
    assert_eq!(plan.events.len(), 5, "ignored events are still consumed");
}

#[test]
fn edges_come_from_the_event_and_the_last_operation_wins() {
    let plan = Plan::of(&[
        edge_event(1, "add", ("user_group", "g1"), ("user", "u1")),
        edge_event(2, "remove", ("USER_GROUP", "g1"), ("USER", "u1")),
        edge_event(3, "add", ("user", "u2"), ("user_group", "g1")),
        edge_event(4, "add", ("active_directory", "ad1"), ("user", "u1")),
        edge_event(5, "add", ("g_suite", "gs1"), ("user_group", "g1")),
        edge_event(6, "remove", ("user", "u3"), ("office_365", "o1")),
        edge_event(7, "add", ("system", "sys1"), ("user", "u1")),
        edge_event(8, "add", ("user_group", "g1"), ("user_group", "g2")),
    ]);
    let member = |g: &str, u: &str| Edge::Member {
        group: g.into(),
        user: u.into(),
    };
    assert_eq!(plan.edges.get(&member("g1", "u1")), Some(&false));
    assert_eq!(
        plan.edges.get(&member("g1", "u2")),
        Some(&true),
        "either direction"
    );
    assert_eq!(
        plan.edges.get(&Edge::DirectoryUser {
            directory: "ad1".into(),
            user: "u1".into()
        }),
        Some(&true)
    );
    assert_eq!(
        plan.edges.get(&Edge::DirectoryGroup {
            directory: "gs1".into(),
            group: "g1".into()
        }),
        Some(&true)
    );
    assert_eq!(
        plan.edges.get(&Edge::DirectoryUser {
            directory: "o1".into(),
            user: "u3".into()
        }),
        Some(&false)
    );
    assert_eq!(
        plan.edges.len(),
        5,
        "systems and nested groups are not held"
    );
    assert!(plan.users.is_empty(), "an edge needs no fetch of its ends");
    assert_eq!(plan.by_type["association_change"], 8);
}

#[test]
fn what_changes_nothing_held_is_consumed_and_planned_as_nothing() {
    let plan = Plan::of(&[
        user_event(1, "user_update_provision", "u1"),
        user_event(2, "user_activation_schedule_create", "u1"),
        user_event(3, "user_login_attempt", "u1"),
        event(
            4,
            "system_update",
            json!({"resource": {"type": "system", "id": "s"}}),
        ),
        event(
            5,
            "user_update",
            json!({"success": false, "resource": {"type": "systemuser", "id": "u1"}}),
        ),
    ]);
    assert!(plan.is_empty(), "{plan:?}");
    assert_eq!(plan.events.len(), 5);
    assert!(plan.blocked.is_none());
}

#[test]
fn a_directory_event_fetches_the_list_and_its_holders() {
    let plan = Plan::of(&[
        event(
            1,
            "gsuite_directory_update",
            json!({"resource": {"type": "g_suite", "id": "gs1"}}),
        ),
        event(
            2,
            "activedirectory_delete",
            json!({"resource": {"type": "active_directory", "id": "ad9"}}),
        ),
    ]);
    assert!(plan.directories);
    assert_eq!(plan.holders.iter().collect::<Vec<_>>(), ["gs1"]);
    assert_eq!(plan.by_type["directory"], 2);
}

#[test]
fn an_unreadable_event_stops_the_plan_there() {
    for bad in [
        event(
            2,
            "user_update",
            json!({"resource": {"type": "systemuser"}}),
        ),
        event(2, "association_change", json!({})),
        edge_event(2, "replace", ("user_group", "g1"), ("user", "u1")),
        edge_event(2, "add", ("user_group", ""), ("user", "u1")),
        JcEvent::from_value(
            json!({"id": "e002", "event_type": "user_update", "timestamp": "soon"}),
        ),
        JcEvent::from_value(
            json!({"event_type": "user_update", "timestamp": "2024-05-01T10:00:02Z"}),
        ),
        JcEvent::from_value(json!("not an event")),
    ] {
        let plan = Plan::of(&[
            user_event(1, "user_update", "u1"),
            bad.clone(),
            user_event(3, "user_update", "u3"),
        ]);
        let blocked = plan.blocked.as_ref().expect("blocked");
        assert!(!blocked.reason.is_empty(), "{bad:?}");
        assert_eq!(plan.events.len(), 1, "{bad:?}");
        assert_eq!(plan.users.len(), 1, "nothing after it: {bad:?}");
        assert!(plan.users.contains_key("u1"));
    }
}

#[test]
fn every_label_is_one_the_metrics_know() {
    assert_eq!(
        label("USER_Update"),
        "user_update",
        "types compare case-insensitively"
    );
    assert_eq!(label("association_change"), "association_change");
    assert_eq!(label("gsuite_directory_create"), "directory");
    assert_eq!(label("something_else"), "other");
}
