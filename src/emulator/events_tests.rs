use super::*;

const ORG: &str = "5c86b6cf9fdce00001d3800b";

fn at(ms: i64) -> Origin {
    Origin::api(jiff::Timestamp::from_millisecond(ms).unwrap())
}

fn user(id: &str) -> Subject {
    Subject::User {
        id: id.into(),
        username: "ann".into(),
        email: "ann@x.io".into(),
    }
}

#[test]
fn ids_are_unique_and_sort_like_the_history() {
    let mut log = EventLog::new(ORG, 100);
    let t = 1_700_000_000_000;
    for ms in [t, t, t + 1, t + 1, t + 1000] {
        log.record(at(ms), kind::USER_UPDATE, user("u"), Some(Vec::new()));
    }
    let keys: Vec<(i64, String)> = log.iter().map(|e| (e.at_ms, e.id.clone())).collect();
    let mut sorted = keys.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(keys, sorted, "in order and unique");
    assert!(log.iter().all(|e| e.id.len() == 24));
}

#[test]
fn a_clock_stepping_back_keeps_the_order() {
    let mut log = EventLog::new(ORG, 100);
    log.record(at(2_000), kind::USER_CREATE, user("a"), None);
    log.record(at(1_000), kind::USER_DELETE, user("a"), None);
    let ms: Vec<i64> = log.iter().map(|e| e.at_ms).collect();
    assert_eq!(ms, [2_000, 2_000]);
}

#[test]
fn bounded_by_count_and_by_retention() {
    let mut log = EventLog::new(ORG, 3);
    for i in 0..5 {
        log.record(at(1_000 + i), kind::USER_CREATE, user("a"), None);
    }
    assert_eq!(log.len(), 3);
    assert_eq!(log.iter().next().unwrap().at_ms, 1_002);
    let mut log = EventLog::new(ORG, 100);
    log.record(at(1_000), kind::USER_CREATE, user("a"), None);
    log.record(at(1_000 + RETENTION_MS), kind::USER_CREATE, user("b"), None);
    assert_eq!(log.len(), 2, "exactly at the edge is still kept");
    log.record(at(1_001 + RETENTION_MS), kind::USER_CREATE, user("c"), None);
    assert_eq!(log.len(), 2);
    assert!(!log.is_empty());
}

#[test]
fn delay_next_marks_only_the_next_events() {
    let mut log = EventLog::new(ORG, 100);
    log.record(at(1_000), kind::USER_CREATE, user("a"), None);
    log.delay_next(2, 3_000);
    for ms in [1_001, 1_002, 1_003] {
        log.record(at(ms), kind::USER_UPDATE, user("a"), Some(Vec::new()));
    }
    let late: Vec<i64> = log.iter().map(|e| e.late_ms).collect();
    assert_eq!(late, [0, 3_000, 3_000, 0]);
    log.delay_next(0, 3_000);
    log.record(at(1_004), kind::USER_DELETE, user("a"), None);
    assert_eq!(
        log.iter().last().unwrap().late_ms,
        0,
        "a count of 0 delays none"
    );
}

#[test]
fn between_is_half_open() {
    let mut log = EventLog::new(ORG, 100);
    for ms in [10, 20, 20, 30] {
        log.record(at(ms), kind::USER_CREATE, user("a"), None);
    }
    let got: Vec<i64> = log.between(20, 30).map(|e| e.at_ms).collect();
    assert_eq!(got, [20, 20]);
    assert_eq!(log.between(31, 40).count(), 0);
    assert_eq!(log.between(40, 10).count(), 0);
}

#[test]
fn edge_events_carry_both_ends() {
    let mut log = EventLog::new(ORG, 10);
    let from = End {
        kind: "user_group",
        id: "g1".into(),
        name: "VPN".into(),
    };
    let to = End {
        kind: "user",
        id: "u1".into(),
        name: "ann".into(),
    };
    log.record(
        Origin::console(jiff::Timestamp::from_second(1_700_000_000).unwrap()),
        kind::ASSOCIATION_CHANGE,
        Subject::Edge {
            op: "add",
            from,
            to,
        },
        None,
    );
    let v = log.render(log.iter().next().unwrap());
    assert_eq!(v["event_type"], "association_change");
    assert_eq!(v["association"]["op"], "add");
    assert_eq!(v["association"]["connection"]["from"]["type"], "user_group");
    assert_eq!(v["association"]["connection"]["to"]["object_id"], "u1");
    assert_eq!(v["auth_method"], "session");
    assert_eq!(v["organization"], ORG);
    assert_eq!(v["timestamp"], "2023-11-14T22:13:20.000Z");
    assert!(v.get("changes").is_none());
    let admin = v["initiated_by"]["id"].as_str().unwrap();
    assert!(crate::emulator::model::is_object_id(admin), "{admin}");
}

#[test]
fn diff_names_what_changed() {
    let a = json!({"id": "1", "jobTitle": "A", "tags": [], "x": 1});
    let b = json!({"id": "1", "jobTitle": "B", "tags": ["t"], "y": 2});
    let fields: Vec<String> = diff(&a, &b, &["id"]).into_iter().map(|c| c.field).collect();
    assert_eq!(fields, ["jobTitle", "tags", "x", "y"]);
}
