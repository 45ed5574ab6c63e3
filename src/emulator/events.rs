//! The Directory Insights event history: what every write through the store records (facts sheet §5.4), kept
//! in time order and bounded.
//!
//! Owns event ids, timestamps, retention and the wire shape of one event. Knows nothing of HTTP or of the
//! `EventQuery` grammar (`insights` reads the history), and of users and groups only the few names an event
//! carries.
//!
//! Bounds: events older than [`RETENTION_DAYS`] (the real feed's 90 days) are dropped and never returned, and
//! at most [`MAX_EVENTS`] are kept, oldest dropped first, so a long churn run cannot grow memory. The feed
//! can be told to return less (`insights_retention_s`, applied by `insights` when it reads), and to deliver
//! the next few events late ([`EventLog::delay_next`]).
//!
//! Ids are 24 hex digits, `{seconds:08x}{salt:04x}{sequence:012x}`: unique for the emulator's life, and
//! within one millisecond they sort in the order the events were recorded, so `(timestamp, id)` orders the
//! history exactly and can serve as the `search_after` cursor.

use std::collections::VecDeque;

use serde_json::{Map, Value, json};

use super::model::iso_millis;

/// Events older than this are dropped and never returned (facts sheet §5.1: 90 days).
pub const RETENTION_DAYS: i64 = 90;
/// Retention in milliseconds.
pub const RETENTION_MS: i64 = RETENTION_DAYS * 24 * 3600 * 1000;
/// The most events kept; past it the oldest go first.
pub const MAX_EVENTS: usize = 50_000;
/// The one service the emulator's events come from.
pub const SERVICE: &str = "directory";

/// The documentation addresses (RFC 5737) the two kinds of change come from.
const API_IP: &str = "203.0.113.10";
const CONSOLE_IP: &str = "198.51.100.7";

/// Who made a change: a client with the API key, or an admin in the console (the churn).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Api,
    Console,
}

/// When and through what a store write happened; every write takes one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Origin {
    pub at: jiff::Timestamp,
    pub source: Source,
}

// === impl Origin ===

impl Origin {
    /// A write through the API at `at`.
    pub fn api(at: jiff::Timestamp) -> Self {
        Self {
            at,
            source: Source::Api,
        }
    }

    /// A change made in the console at `at`.
    pub fn console(at: jiff::Timestamp) -> Self {
        Self {
            at,
            source: Source::Console,
        }
    }
}

/// `event_type`s the emulator emits, spelled as the facts sheet's event list (§5.4) spells them.
pub mod kind {
    pub const USER_CREATE: &str = "user_create";
    pub const USER_UPDATE: &str = "user_update";
    pub const USER_DELETE: &str = "user_delete";
    /// STAGED → ACTIVATED.
    pub const USER_ACTIVATED: &str = "user_activated";
    /// → SUSPENDED.
    pub const USER_SUSPENDED: &str = "user_suspended";
    /// SUSPENDED → ACTIVATED.
    pub const USER_UNSUSPENDED: &str = "user_unsuspended";
    /// `activated` false → true: the user left "Password Pending".
    pub const USER_PASSWORD_SET: &str = "user_password_set";
    pub const USER_PASSWORD_EXPIRED: &str = "user_password_expired";
    pub const USER_UNLOCKED: &str = "user_unlocked";
    pub const GROUP_CREATE: &str = "group_create";
    pub const GROUP_UPDATE: &str = "group_update";
    pub const GROUP_DELETE: &str = "group_delete";
    /// A graph edge added or removed: group membership and directory access alike.
    pub const ASSOCIATION_CHANGE: &str = "association_change";
}

/// One end of an association edge: a graph `type` (`user`, `user_group`, `active_directory`, `g_suite`,
/// `office_365`), the object's id and a display name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct End {
    pub kind: &'static str,
    pub id: String,
    pub name: String,
}

/// One `{field, from, to}` of `changes`.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    pub field: String,
    pub from: Value,
    pub to: Value,
}

/// What an event is about.
#[derive(Debug, Clone, PartialEq)]
pub enum Subject {
    User {
        id: String,
        username: String,
        email: String,
    },
    Group {
        id: String,
        name: String,
    },
    /// An association edge; `op` is `add` or `remove`.
    Edge {
        op: &'static str,
        from: End,
        to: End,
    },
}

/// One recorded event.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub id: String,
    /// Milliseconds since the epoch; never smaller than the previous event's.
    pub at_ms: i64,
    pub event_type: &'static str,
    pub source: Source,
    pub subject: Subject,
    /// `None` for events without `changes` (creates, deletes, edges).
    pub changes: Option<Vec<Change>>,
    /// Ingestion later than the feed's lag by this much (`insights_late_next`); 0 for most events.
    pub late_ms: i64,
}

// === impl Event ===

impl Event {
    /// The order of the history and the cursor: `(timestamp ms, id)`.
    pub fn key(&self) -> (i64, &str) {
        (self.at_ms, self.id.as_str())
    }
}

/// The history, oldest first.
#[derive(Debug, Clone)]
pub struct EventLog {
    events: VecDeque<Event>,
    max: usize,
    next_seq: u64,
    salt: u16,
    organization: String,
    admin_id: String,
    /// The next events recorded arrive late: how many more, and by how much (`insights_late_next`).
    late_next: Option<(u32, i64)>,
}

// === impl EventLog ===

impl EventLog {
    /// An empty history for `organization` (an ObjectId), keeping at most `max` events.
    pub fn new(organization: &str, max: usize) -> Self {
        let hex = |range: std::ops::Range<usize>| {
            organization
                .get(range)
                .and_then(|s| u64::from_str_radix(s, 16).ok())
                .unwrap_or(0)
        };
        // The acting admin: the organisation's id with a counter part of its own.
        let admin_id = match organization.get(0..18) {
            Some(head) if super::model::is_object_id(organization) => format!("{head}ad0001"),
            _ => "000000000000000000ad0001".to_owned(),
        };
        Self {
            events: VecDeque::new(),
            max: max.max(1),
            next_seq: 1,
            salt: (hex(8..12) & 0xffff) as u16,
            organization: organization.to_owned(),
            admin_id,
            late_next: None,
        }
    }

    /// The next `count` events recorded become visible `extra_ms` later than the others: a feed whose
    /// ingestion fell behind for a moment, so they arrive after events that happened after them.
    pub fn delay_next(&mut self, count: u32, extra_ms: u64) {
        let extra = i64::try_from(extra_ms).unwrap_or(i64::MAX);
        self.late_next = (count > 0 && extra > 0).then_some((count, extra));
    }

    /// Records one event at `origin`; drops what falls out of retention or past the bound.
    pub fn record(
        &mut self,
        origin: Origin,
        event_type: &'static str,
        subject: Subject,
        changes: Option<Vec<Change>>,
    ) {
        let last = self.events.back().map_or(i64::MIN, |e| e.at_ms);
        // A clock that steps back must not reorder the history: such an event takes its predecessor's time.
        let at_ms = origin.at.as_millisecond().max(last);
        let secs = at_ms.div_euclid(1000).clamp(0, i64::from(u32::MAX));
        let id = format!("{secs:08x}{:04x}{:012x}", self.salt, self.next_seq);
        self.next_seq += 1;
        let late_ms = match &mut self.late_next {
            Some((left, extra)) => {
                let extra = *extra;
                *left -= 1;
                if *left == 0 {
                    self.late_next = None;
                }
                extra
            }
            None => 0,
        };
        self.events.push_back(Event {
            id,
            at_ms,
            event_type,
            source: origin.source,
            subject,
            changes,
            late_ms,
        });
        self.prune(at_ms);
    }

    fn prune(&mut self, now_ms: i64) {
        let floor = now_ms.saturating_sub(RETENTION_MS);
        while self.events.len() > self.max || self.events.front().is_some_and(|e| e.at_ms < floor) {
            self.events.pop_front();
        }
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.events.len()
    }

    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    /// Every kept event, oldest first.
    #[cfg(test)]
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &Event> {
        self.events.iter()
    }

    /// Events with `from_ms <= timestamp < until_ms`, oldest first; found by binary search.
    pub fn between(&self, from_ms: i64, until_ms: i64) -> impl DoubleEndedIterator<Item = &Event> {
        let lo = self.events.partition_point(|e| e.at_ms < from_ms);
        let hi = self.events.partition_point(|e| e.at_ms < until_ms).max(lo);
        self.events.range(lo..hi)
    }

    /// The wire shape of `e` (facts sheet §5.4).
    pub fn render(&self, e: &Event) -> Value {
        let (auth_method, client_ip, useragent) = match e.source {
            Source::Api => (
                "api-key",
                API_IP,
                json!({ "name": "Other", "os": "Other", "os_name": "Other", "device": "Other",
                        "major": "", "minor": "", "patch": "", "build": "" }),
            ),
            Source::Console => (
                "session",
                CONSOLE_IP,
                json!({ "name": "Chrome", "os": "Mac OS X", "os_name": "Mac OS X", "device": "Other",
                        "major": "124", "minor": "0", "patch": "6367", "build": "",
                        "os_major": "14", "os_minor": "4" }),
            ),
        };
        let ts = jiff::Timestamp::from_millisecond(e.at_ms).unwrap_or(jiff::Timestamp::UNIX_EPOCH);
        let mut m = Map::new();
        m.insert("id".into(), json!(e.id));
        m.insert("event_type".into(), json!(e.event_type));
        m.insert("timestamp".into(), json!(iso_millis(ts)));
        m.insert("service".into(), json!(SERVICE));
        m.insert("organization".into(), json!(self.organization));
        m.insert("success".into(), json!(true));
        m.insert("client_ip".into(), json!(client_ip));
        m.insert("auth_method".into(), json!(auth_method));
        m.insert("provider".into(), Value::Null);
        m.insert("@version".into(), json!("1"));
        m.insert(
            "geoip".into(),
            json!({ "country_code": "US", "continent_code": "NA", "region_code": "CO",
                    "region_name": "Colorado", "timezone": "America/Denver" }),
        );
        m.insert("useragent".into(), useragent);
        m.insert(
            "initiated_by".into(),
            json!({ "type": "admin", "id": self.admin_id, "email": "admin@example.com" }),
        );
        let resource = match &e.subject {
            Subject::User {
                id,
                username,
                email,
            } => json!({ "type": "systemuser", "id": id, "username": username, "email": email }),
            Subject::Group { id, name } => json!({ "type": "user_group", "id": id, "name": name }),
            Subject::Edge { op, from, to } => {
                let end = |x: &End| json!({ "type": x.kind, "object_id": x.id, "name": x.name });
                m.insert(
                    "association".into(),
                    json!({
                        "op": op,
                        "connection": { "from": end(from), "to": end(to) },
                    }),
                );
                json!({ "type": from.kind, "id": from.id, "name": from.name })
            }
        };
        m.insert("resource".into(), resource);
        if let Some(changes) = &e.changes {
            let list: Vec<Value> = changes
                .iter()
                .map(|c| json!({ "field": c.field, "from": c.from, "to": c.to }))
                .collect();
            m.insert("changes".into(), Value::Array(list));
        }
        Value::Object(m)
    }
}

/// The top-level members that differ between two renderings of an object, in key order, leaving out `skip`.
pub fn diff(old: &Value, new: &Value, skip: &[&str]) -> Vec<Change> {
    let (Value::Object(a), Value::Object(b)) = (old, new) else {
        return Vec::new();
    };
    let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter(|k| !skip.contains(&k.as_str()))
        .filter_map(|k| {
            let (from, to) = (
                a.get(k).unwrap_or(&Value::Null),
                b.get(k).unwrap_or(&Value::Null),
            );
            (from != to).then(|| Change {
                field: k.clone(),
                from: from.clone(),
                to: to.clone(),
            })
        })
        .collect()
}

#[cfg(test)]
#[path = "events_tests.rs"]
mod tests;
