//! A batch of events coalesced per object: what to fetch again, what to drop, which edges to set, in the
//! order the feed reported them, so that twenty edits of one user are one fetch of that user.
//!
//! What each event means (facts sheet §5.4, types and graph types compared case-insensitively):
//!
//! | event | plan |
//! |---|---|
//! | `user_delete` | remove the user |
//! | another event about a system user (`user_update`, `user_suspended`, …, and unknown `user_*` types) | fetch the user |
//! | `group_create` | fetch the group and its members |
//! | `group_update` (and unknown `group_*` on a user group) | fetch the group (members change by their own events) |
//! | `group_delete` | remove the group |
//! | `association_change` between a user group and a user, a directory and a user, a directory and a user group | set or clear that edge, as the event names both ends |
//! | a directory's own events (`activedirectory_*`, `gsuite_directory_*`, `o365_directory_*`) | fetch the directory list and that directory's holders |
//! | what JumpCloud does for itself or that the snapshot does not hold (`*_provision`, schedules, logins, admin grants, system groups, devices, applications) | nothing |
//!
//! A later event of an object overrides an earlier one (a removal stays a removal); the last operation on
//! an edge wins. An event that should change the snapshot but cannot be read (no id, no time, an edge
//! without both ends or with another `op`) stops the plan there: events before it are planned, it and
//! those after it are not, and [`Plan::blocked`] says why.
//!
//! Pure: no IO, no snapshot; what the snapshot already holds is [`super::apply`]'s concern.

use std::collections::{BTreeMap, BTreeSet};

use crate::jumpcloud::JcEvent;
use crate::telemetry::INSIGHTS_EVENT_TYPES;

/// What becomes of a user or group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Want {
    /// Fetch it again (a 404 removes it); for a group, `members` fetches its member list too.
    Fetch { members: bool },
    /// Remove it and every edge to it, without a call.
    Remove,
}

/// An edge an event names by both ends.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Edge {
    /// A user in a user group.
    Member { group: String, user: String },
    /// A user bound to a directory directly.
    DirectoryUser { directory: String, user: String },
    /// A user group bound to a directory.
    DirectoryGroup { directory: String, group: String },
}

/// Why an event stopped a plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blocked {
    pub event_id: String,
    pub event_type: String,
    pub reason: String,
}

/// A batch's events, coalesced.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    pub users: BTreeMap<String, Want>,
    pub groups: BTreeMap<String, Want>,
    /// Fetch the directory list.
    pub directories: bool,
    /// Directories whose holders (users and groups bound) to fetch.
    pub holders: BTreeSet<String>,
    /// `true`: add the edge; `false`: remove it.
    pub edges: BTreeMap<Edge, bool>,
    /// `(time, id)` of every event planned, in order: what the cursor advances past once it is published.
    pub events: Vec<(i64, String)>,
    /// Events planned by the type `jcscim_insights_events_total` counts them as.
    pub by_type: BTreeMap<&'static str, u64>,
    /// The first event that could not be planned; none from it on are.
    pub blocked: Option<Blocked>,
}

/// A graph type as the feed spells it, in any case and with or without `_`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    User,
    Group,
    Directory,
    /// Anything the snapshot does not hold (systems, applications, LDAP, policies, system groups).
    Other,
}

fn squash(s: &str) -> String {
    s.chars()
        .filter(|c| *c != '_' && *c != '-')
        .flat_map(char::to_lowercase)
        .collect()
}

fn end_kind(kind: &str) -> End {
    match squash(kind).as_str() {
        "user" | "systemuser" => End::User,
        "usergroup" => End::Group,
        "activedirectory" | "gsuite" | "googleworkspace" | "office365" => End::Directory,
        _ => End::Other,
    }
}

/// The `type` label an event is counted under: one of [`INSIGHTS_EVENT_TYPES`] by its own name, else
/// `directory` (a directory's own events) or `other`.
fn label(event_type: &str) -> &'static str {
    let t = event_type.to_ascii_lowercase();
    if let Some(k) = INSIGHTS_EVENT_TYPES.iter().find(|k| **k == t) {
        return k;
    }
    if directory_event(&t) {
        "directory"
    } else {
        "other"
    }
}

fn directory_event(t: &str) -> bool {
    ["activedirectory_", "gsuite_directory_", "o365_directory_"]
        .iter()
        .any(|p| t.starts_with(p))
}

/// Events that change nothing the snapshot holds, whatever their resource.
fn ignored(t: &str) -> bool {
    t.ends_with("_provision")
        || t.contains("schedule")
        || t.contains("login")
        || t.contains("logout")
        || t.starts_with("user_group_admin")
}

// === impl Plan ===

impl Plan {
    /// Plan `events` (new ones, in the feed's order).
    pub fn of<'a>(events: impl IntoIterator<Item = &'a JcEvent>) -> Plan {
        let mut plan = Plan::default();
        for e in events {
            let Some(at) = e.at().filter(|_| !e.id.is_empty()) else {
                plan.block(e, "it has no id or no time that can be read");
                return plan;
            };
            if let Err(reason) = plan.add(e) {
                plan.block(e, &reason);
                return plan;
            }
            plan.events.push((at.as_millisecond(), e.id.clone()));
            *plan.by_type.entry(label(&e.event_type)).or_default() += 1;
        }
        plan
    }

    fn block(&mut self, e: &JcEvent, reason: &str) {
        self.blocked = Some(Blocked {
            event_id: e.id.clone(),
            event_type: e.event_type.clone(),
            reason: reason.to_owned(),
        });
    }

    /// Nothing to fetch or edit (the events planned change nothing the snapshot holds).
    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
            && self.groups.is_empty()
            && !self.directories
            && self.holders.is_empty()
            && self.edges.is_empty()
    }

    /// Plan one readable event; `Err` when it should change the snapshot but cannot be read.
    fn add(&mut self, e: &JcEvent) -> Result<(), String> {
        if !e.succeeded() {
            return Ok(());
        }
        let t = e.event_type.to_ascii_lowercase();
        if ignored(&t) {
            return Ok(());
        }
        if t == "association_change" {
            return self.add_edge(e);
        }
        let resource = e.resource.as_ref();
        let kind = resource.map_or(End::Other, |r| end_kind(&r.kind));
        let id = resource.map(|r| r.id.as_str()).unwrap_or("");
        if directory_event(&t) || kind == End::Directory {
            self.directories = true;
            if !t.ends_with("_delete") && !id.is_empty() {
                self.holders.insert(id.to_owned());
            }
            return Ok(());
        }
        let named_kind = resource.is_some_and(|r| !r.kind.is_empty());
        let group = if t.starts_with("group_") {
            // Group events cover system and policy groups too: only a user group (or one of no stated
            // type) is the snapshot's.
            if kind != End::Group && named_kind {
                return Ok(());
            }
            true
        } else if kind == End::User || (t.starts_with("user_") && kind != End::Group) {
            if kind == End::Other && named_kind {
                return Ok(());
            }
            false
        } else if kind == End::Group {
            true
        } else {
            return Ok(());
        };
        if id.is_empty() {
            return Err(format!("a {t} event names no resource id"));
        }
        if group {
            let want = match t.as_str() {
                "group_delete" => Want::Remove,
                "group_create" => Want::Fetch { members: true },
                _ => Want::Fetch { members: false },
            };
            merge(&mut self.groups, id, want);
        } else {
            let want = if t == "user_delete" {
                Want::Remove
            } else {
                Want::Fetch { members: false }
            };
            merge(&mut self.users, id, want);
        }
        Ok(())
    }

    fn add_edge(&mut self, e: &JcEvent) -> Result<(), String> {
        let Some(a) = &e.association else {
            return Err("an association_change without its association".into());
        };
        let add = match a.op.to_ascii_lowercase().as_str() {
            "add" => true,
            "remove" => false,
            other => return Err(format!("an association_change with op {other:?}")),
        };
        let ends = a
            .connection
            .as_ref()
            .and_then(|c| c.from.as_ref().zip(c.to.as_ref()));
        let Some((from, to)) = ends else {
            return Err("an association_change without both ends".into());
        };
        let (fk, tk) = (end_kind(&from.kind), end_kind(&to.kind));
        let pick = |k: End| {
            if fk == k {
                Some(from.object_id.clone())
            } else if tk == k {
                Some(to.object_id.clone())
            } else {
                None
            }
        };
        let edge = match (fk, tk) {
            (End::Group, End::User) | (End::User, End::Group) => Edge::Member {
                group: pick(End::Group).unwrap_or_default(),
                user: pick(End::User).unwrap_or_default(),
            },
            (End::Directory, End::User) | (End::User, End::Directory) => Edge::DirectoryUser {
                directory: pick(End::Directory).unwrap_or_default(),
                user: pick(End::User).unwrap_or_default(),
            },
            (End::Directory, End::Group) | (End::Group, End::Directory) => Edge::DirectoryGroup {
                directory: pick(End::Directory).unwrap_or_default(),
                group: pick(End::Group).unwrap_or_default(),
            },
            // Systems, applications, policies, nested groups: not in the snapshot.
            _ => return Ok(()),
        };
        let named = match &edge {
            Edge::Member { group, user } => !group.is_empty() && !user.is_empty(),
            Edge::DirectoryUser { directory, user } => !directory.is_empty() && !user.is_empty(),
            Edge::DirectoryGroup { directory, group } => !directory.is_empty() && !group.is_empty(),
        };
        if !named {
            return Err("an association_change naming an end without its object_id".into());
        }
        self.edges.insert(edge, add);
        Ok(())
    }
}

/// A later want of the same object overrides an earlier one; a removal stays, and a group's member fetch
/// is kept.
fn merge(map: &mut BTreeMap<String, Want>, id: &str, want: Want) {
    let next = match (map.get(id), want) {
        (Some(Want::Remove), _) | (_, Want::Remove) => Want::Remove,
        (Some(Want::Fetch { members: a }), Want::Fetch { members: b }) => {
            Want::Fetch { members: *a || b }
        }
        (None, w) => w,
    };
    map.insert(id.to_owned(), next);
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
