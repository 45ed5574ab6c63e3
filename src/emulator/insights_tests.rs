//! Tests of the `EventQuery` parsing and of matching, windows and paging over a fixed event log.
//!
//! Pure: no router, no store; the log is built by hand so every expectation can be read off it.

use super::*;
use crate::emulator::events::{Origin, Subject, kind};

const ORG: &str = "5c86b6cf9fdce00001d3800b";
const T0: i64 = 1_700_000_000_000;

fn body(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => panic!("not an object"),
    }
}

fn query(v: Value) -> Result<EventQuery, ApiError> {
    parse_query(&body(v), T0 + 10_000)
}

fn ok(v: Value) -> EventQuery {
    query(v).expect("valid query")
}

fn base() -> Value {
    json!({"service": ["directory"], "start_time": "2023-11-14T22:13:20Z"})
}

fn with(extra: Value) -> Value {
    let mut b = base();
    if let (Value::Object(m), Value::Object(e)) = (&mut b, extra) {
        m.extend(e);
    }
    b
}

/// Ten events, one per second from T0: users u0..u9, alternately created and updated.
fn log() -> EventLog {
    let mut log = EventLog::new(ORG, 100);
    for i in 0..10 {
        let at = jiff::Timestamp::from_millisecond(T0 + i * 1000).unwrap();
        let t = if i % 2 == 0 {
            kind::USER_CREATE
        } else {
            kind::USER_UPDATE
        };
        log.record(
            Origin::api(at),
            t,
            Subject::User {
                id: format!("u{i}"),
                username: format!("User{i}"),
                email: format!("u{i}@x.io"),
            },
            None,
        );
    }
    log
}

/// `lag_ms` with the real feed's retention.
fn lag(lag_ms: i64) -> Visibility {
    Visibility {
        lag_ms,
        retention_ms: RETENTION_MS,
    }
}

fn run(log: &EventLog, q: &EventQuery, now_ms: i64, lag_ms: i64) -> Page {
    super::run(log, q, now_ms, lag(lag_ms))
}

fn count(log: &EventLog, q: &EventQuery, now_ms: i64, lag_ms: i64) -> u64 {
    super::count(log, q, now_ms, lag(lag_ms))
}

fn ids(p: &Page) -> Vec<String> {
    p.rows
        .iter()
        .map(|r| r["resource"]["id"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn service_is_required_and_validated() {
    for b in [
        json!({"start_time": "2023-11-14T22:13:20Z"}),
        json!({"service": [], "start_time": "2023-11-14T22:13:20Z"}),
        json!({"service": ["directory", "nope"], "start_time": "2023-11-14T22:13:20Z"}),
        json!({"service": "directory", "start_time": "2023-11-14T22:13:20Z"}),
    ] {
        let err = query(b).unwrap_err().to_string();
        assert!(
            err.contains("directory") && err.contains("password_manager"),
            "{err}"
        );
    }
    assert_eq!(ok(base()).services, ["directory"]);
}

#[test]
fn times_are_required_rfc3339_and_ordered() {
    assert!(query(json!({"service": ["all"]})).is_err());
    assert!(query(with(json!({"start_time": "yesterday"}))).is_err());
    assert!(
        query(with(json!({"start_time": "2099-01-01T00:00:00Z"})))
            .unwrap_err()
            .to_string()
            .contains("future")
    );
    assert!(query(with(json!({"end_time": "2023-11-14T22:13:19Z"}))).is_err());
    assert_eq!(
        ok(with(json!({"start_time": "2023-11-14T22:13:20"}))).start_ms,
        T0
    );
    assert_eq!(
        ok(with(json!({"start_time": "2023-11-14T23:13:20+01:00"}))).start_ms,
        T0
    );
}

#[test]
fn nonsense_limits_and_sorts_fall_back_silently() {
    assert_eq!(ok(base()).limit, DEFAULT_LIMIT);
    assert_eq!(ok(with(json!({"limit": 2000}))).limit, 2000);
    assert_eq!(ok(with(json!({"limit": 10_000}))).limit, MAX_LIMIT);
    for l in [json!(10_001), json!(0), json!(-5), json!(1.5), json!("x")] {
        assert_eq!(ok(with(json!({ "limit": l }))).limit, DEFAULT_LIMIT, "{l}");
    }
    assert!(ok(with(json!({"sort": "desc"}))).desc);
    assert!(!ok(with(json!({"sort": "sideways"}))).desc);
}

#[test]
fn fields_must_name_something_known() {
    assert!(query(with(json!({"fields": []}))).is_err());
    assert!(query(with(json!({"fields": ["nope"]}))).is_err());
    assert_eq!(
        ok(with(json!({"fields": ["nope", "resource.id"]}))).fields,
        Some(vec!["resource.id".to_owned()])
    );
}

#[test]
fn search_terms_parse_and_refuse_what_the_spec_refuses() {
    let q = ok(with(
        json!({"search_term": {"and": [{"event_type": ["user_create", "user_update"]}, {"or": [{"resource.id": "u1"}, {"success": true}]}]}}),
    ));
    assert!(matches!(q.search, Some(Term::And(ref ts)) if ts.len() == 2));
    for st in [
        json!({"and": [{"a": 1}], "or": []}),
        json!({"or": [{"resource.id": "a"}, {"resource.id": "b"}]}),
        json!({"and": [{"changes.field": "x"}]}),
        json!({"and": [{"resource": {"id": "x"}}]}),
        json!("event_type"),
    ] {
        assert!(query(with(json!({ "search_term": st }))).is_err(), "{st}");
    }
    let mut deep = json!({"a": "b"});
    for _ in 0..12 {
        deep = json!({ "and": [deep] });
    }
    assert!(query(with(json!({ "search_term": deep }))).is_err());
    assert!(query(with(json!({"q": "a", "exact_match": "b"}))).is_err());
}

#[test]
fn search_after_is_the_header_array() {
    assert_eq!(ok(with(json!({"search_after": []}))).search_after, None);
    assert_eq!(
        ok(with(json!({"search_after": [5, "x"]}))).search_after,
        Some((5, "x".to_owned()))
    );
    assert_eq!(
        ok(with(json!({"search_after": ["5", "x"]}))).search_after,
        Some((5, "x".to_owned()))
    );
    assert!(query(with(json!({"search_after": "5"}))).is_err());
    assert!(query(with(json!({"search_after": [5]}))).is_err());
}

#[test]
fn pages_walk_every_event_once_both_ways() {
    let log = log();
    let now = T0 + 60_000;
    for desc in [false, true] {
        let mut q = ok(with(json!({"limit": 3})));
        q.desc = desc;
        let mut seen = Vec::new();
        for _ in 0..10 {
            let p = run(&log, &q, now, 0);
            seen.extend(ids(&p));
            if p.rows.len() < q.limit {
                break;
            }
            let c = p.cursor.as_array().unwrap();
            q.search_after = Some((c[0].as_i64().unwrap(), c[1].as_str().unwrap().into()));
        }
        let mut want: Vec<String> = (0..10).map(|i| format!("u{i}")).collect();
        if desc {
            want.reverse();
        }
        assert_eq!(seen, want, "desc={desc}");
    }
}

#[test]
fn an_empty_page_still_has_a_cursor() {
    let log = log();
    let mut q = ok(base());
    q.search_after = Some((T0 + 9000, "zzzzzzzzzzzzzzzzzzzzzzzz".into()));
    let p = run(&log, &q, T0 + 60_000, 0);
    assert!(p.rows.is_empty());
    assert_eq!(p.cursor, json!([T0 + 9000, "zzzzzzzzzzzzzzzzzzzzzzzz"]));
    let q = ok(with(json!({"service": ["radius"]})));
    assert_eq!(run(&log, &q, T0 + 60_000, 0).cursor, json!([]));
}

#[test]
fn window_lag_and_retention() {
    let log = log();
    let q = ok(with(json!({"end_time": "2023-11-14T22:13:23Z"})));
    assert_eq!(ids(&run(&log, &q, T0 + 60_000, 0)), ["u0", "u1", "u2"]);
    // At T0 + 4.5 s with a 2 s lag, only what happened by T0 + 2.5 s shows.
    let q = ok(base());
    assert_eq!(ids(&run(&log, &q, T0 + 4_500, 2_000)), ["u0", "u1", "u2"]);
    assert_eq!(count(&log, &q, T0 + 4_500, 2_000), 3);
    assert_eq!(count(&log, &q, T0 + RETENTION_MS + 5_000, 0), 5);
    let other_service = ok(with(json!({"service": ["sso"]})));
    assert_eq!(count(&log, &other_service, T0 + 60_000, 0), 0);
}

#[test]
fn a_shorter_retention_and_late_events_hide_what_they_cover() {
    let log = log();
    let q = ok(base());
    // Retention of 3 s at T0 + 9.5 s: only what happened from T0 + 6.5 s on (u7, u8, u9).
    let short = Visibility {
        lag_ms: 0,
        retention_ms: 3_000,
    };
    assert_eq!(
        ids(&super::run(&log, &q, T0 + 9_500, short)),
        ["u7", "u8", "u9"]
    );
    assert_eq!(super::count(&log, &q, T0 + 9_500, short), 3);
    // An event delivered late shows after those that happened after it.
    let mut log = EventLog::new(ORG, 100);
    let user = |i: i64| Subject::User {
        id: format!("u{i}"),
        username: format!("User{i}"),
        email: format!("u{i}@x.io"),
    };
    let at = |ms: i64| Origin::api(jiff::Timestamp::from_millisecond(T0 + ms).unwrap());
    log.delay_next(1, 5_000);
    log.record(at(0), kind::USER_CREATE, user(0), None);
    log.record(at(1_000), kind::USER_CREATE, user(1), None);
    let visible = lag(0);
    assert_eq!(ids(&super::run(&log, &q, T0 + 2_000, visible)), ["u1"]);
    assert_eq!(
        ids(&super::run(&log, &q, T0 + 5_000, visible)),
        ["u0", "u1"]
    );
}

fn count_of(log: &EventLog, extra: Value) -> u64 {
    count(log, &ok(with(extra)), T0 + 60_000, 0)
}

#[test]
fn search_skip_fields_and_text() {
    let log = log();
    assert_eq!(
        count_of(
            &log,
            json!({"search_term": {"and": [{"event_type": "user_create"}]}})
        ),
        5
    );
    assert_eq!(
        count_of(
            &log,
            json!({"search_term": {"or": [{"resource.id": ["u1", "u2"]}, {"event_type": "nope"}]}})
        ),
        2
    );
    assert_eq!(
        count_of(
            &log,
            json!({"search_term": {"not": [{"event_type": "user_create"}]}})
        ),
        5
    );
    // Stored values are lower case: "User3" is found as "user3" only.
    assert_eq!(
        count_of(
            &log,
            json!({"search_term": {"and": [{"resource.username": "user3"}]}})
        ),
        1
    );
    assert_eq!(
        count_of(
            &log,
            json!({"search_term": {"and": [{"resource.username": "User3"}]}})
        ),
        0
    );
    assert_eq!(
        count_of(&log, json!({"search_term": {"and": [{"success": "true"}]}})),
        10
    );
    assert_eq!(count_of(&log, json!({"q": "U7@X"})), 1);
    assert_eq!(count_of(&log, json!({"exact_match": "u7@x.io"})), 1);
    let p = run(
        &log,
        &ok(with(
            json!({"skip": 8, "fields": ["resource.id", "event_type"]}),
        )),
        T0 + 60_000,
        0,
    );
    assert_eq!(
        p.rows,
        [
            json!({"resource": {"id": "u8"}, "event_type": "user_create"}),
            json!({"resource": {"id": "u9"}, "event_type": "user_update"}),
        ]
    );
}
