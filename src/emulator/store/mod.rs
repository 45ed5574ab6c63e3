//! The emulated organisation's data and every rule that spans objects: uniqueness, managers, group
//! membership, directory associations, and what a delete takes with it.
//!
//! Users live in an id-ordered `BTreeMap`, so `sort=_id` pages are a walk, not a sort; usernames, emails and
//! employee identifiers have hash indexes (usernames case-insensitively, emails as stored, which is lower
//! case) so duplicate checks and equality filters on them never scan. Knows nothing of routes, envelopes or
//! faults; its refusals are already the API's error answers (`ApiError`).
//!
//! Every write takes an [`Origin`](super::events::Origin) and, once it has succeeded, records its Directory
//! Insights events in `events` (facts sheet §5.4): the API's routes and the console churn go through the same
//! functions, so nothing changes without its event. Cascades a write implies (a deleted user leaving its
//! groups and directories, a deleted group its members and bindings) are not separate edge events: the delete
//! says it.
//!
//! # Layout
//! - here: the `Store` itself, the edge vocabulary ([`EdgeOp`], [`Via`], [`Target`]), the event ends every
//!   write names, and the unchecked inserts the seed builds with.
//! - `users`: the user indexes and reads (filtered, sorted pages). `user_writes`: create, update, delete and
//!   the state actions, with the rules a stored user satisfies.
//! - `groups`: groups and their members. `directories`: directories and their associations.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::error::ApiError;
use super::events::{End, EventLog, MAX_EVENTS, Subject};
use super::model::{Directory, Group, IdGen, Organization, User};

mod directories;
mod groups;
mod user_writes;
mod users;

/// A graph write's `op`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EdgeOp {
    Add,
    Remove,
}

// === impl EdgeOp ===

impl EdgeOp {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "add" => Some(EdgeOp::Add),
            "remove" => Some(EdgeOp::Remove),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            EdgeOp::Add => "add",
            EdgeOp::Remove => "remove",
        }
    }
}

/// Which end of a directory association a write named first: its `from` in the event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// `POST /api/v2/{directory}/{id}/associations` (and the console's directory page).
    Directory,
    /// `POST /api/v2/users/{id}/associations` or `/usergroups/{id}/associations`.
    Member,
}

/// What an association edge points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    User,
    UserGroup,
}

/// The whole emulated organisation.
#[derive(Debug, Clone)]
pub struct Store {
    pub org: Organization,
    users: BTreeMap<String, User>,
    /// Lower-cased username → id.
    by_username: HashMap<String, String>,
    /// Email (stored lower-cased) → id.
    by_email: HashMap<String, String>,
    /// employeeIdentifier → id.
    by_employee_id: HashMap<String, String>,
    /// Manager id → ids of the users whose `manager` it is; makes the delete-a-manager check a look-up.
    reports: HashMap<String, BTreeSet<String>>,
    groups: BTreeMap<String, Group>,
    /// Lower-cased group name → id (names are unique case-insensitively).
    group_by_name: HashMap<String, String>,
    /// Few (one per configured directory), kept in id order.
    directories: Vec<Directory>,
    /// The group every new user joins, as JumpCloud's "All Users" does.
    all_users: Option<String>,
    ids: IdGen,
    next_uid: u32,
    /// The Directory Insights history of every write.
    pub events: EventLog,
}

// === impl Store ===

impl Store {
    pub fn new(org: Organization, ids: IdGen, first_uid: u32) -> Self {
        Self {
            events: EventLog::new(&org.id, MAX_EVENTS),
            org,
            users: BTreeMap::new(),
            by_username: HashMap::new(),
            by_email: HashMap::new(),
            by_employee_id: HashMap::new(),
            reports: HashMap::new(),
            groups: BTreeMap::new(),
            group_by_name: HashMap::new(),
            directories: Vec::new(),
            all_users: None,
            ids,
            next_uid: first_uid,
        }
    }

    /// Number of users.
    pub fn user_count(&self) -> usize {
        self.users.len()
    }

    /// The `n`th user in id order.
    pub fn nth_user(&self, n: usize) -> Option<&User> {
        self.users.values().nth(n)
    }

    /// The group every new user joins ("All Users"), if there is one.
    pub fn all_users_group(&self) -> Option<&str> {
        self.all_users.as_deref()
    }

    fn user_subject(u: &User) -> Subject {
        Subject::User {
            id: u.id.clone(),
            username: u.username.clone(),
            email: u.email.clone(),
        }
    }

    fn group_subject(g: &Group) -> Subject {
        Subject::Group {
            id: g.id.clone(),
            name: g.fields.name.clone(),
        }
    }

    fn user_end(u: &User) -> End {
        End {
            kind: "user",
            id: u.id.clone(),
            name: u.username.clone(),
        }
    }

    fn group_end(g: &Group) -> End {
        End {
            kind: "user_group",
            id: g.id.clone(),
            name: g.fields.name.clone(),
        }
    }

    /// A fresh ObjectId-like id stamped with `secs`.
    pub fn next_id(&mut self, secs: i64) -> String {
        self.ids.next(secs)
    }

    // --- seeding: the seed guarantees the invariants these skip ---

    /// Adds a user whose uniqueness the caller guarantees.
    pub fn insert_user_unchecked(&mut self, user: User) {
        self.index_user(&user);
        self.next_uid = self.next_uid.max(user.unix_uid.saturating_add(1));
        self.users.insert(user.id.clone(), user);
    }

    /// Adds a group whose name the caller guarantees unique.
    pub fn insert_group_unchecked(&mut self, group: Group) {
        self.group_by_name
            .insert(group.fields.name.to_lowercase(), group.id.clone());
        self.groups.insert(group.id.clone(), group);
    }

    /// Marks `group_id` as the group every user belongs to.
    pub fn set_all_users_group(&mut self, group_id: &str) {
        self.all_users = Some(group_id.to_owned());
    }

    /// Adds a directory instance.
    pub fn insert_directory(&mut self, dir: Directory) {
        let at = self.directories.partition_point(|d| d.id < dir.id);
        self.directories.insert(at, dir);
    }

    /// Mutable access to a directory, for seeding associations.
    pub fn directory_mut(&mut self, id: &str) -> Option<&mut Directory> {
        self.directories.iter_mut().find(|d| d.id == id)
    }
}

fn user_not_found(id: &str) -> ApiError {
    ApiError::NotFound(format!("user {id} not found"))
}

fn group_not_found(id: &str) -> ApiError {
    ApiError::NotFound(format!("user group {id} not found"))
}

#[cfg(test)]
mod tests;
