//! The emulated organisation's data and every rule that spans objects: uniqueness, managers, group
//! membership, directory associations, and what a delete takes with it.
//!
//! Users live in an id-ordered `BTreeMap`, so `sort=_id` pages are a walk, not a sort; usernames, emails and
//! employee identifiers have hash indexes (usernames case-insensitively, emails as stored, which is lower
//! case) so duplicate checks and equality filters on them never scan. Knows nothing of routes, envelopes or
//! faults; its refusals are already the API's error answers (`ApiError`).
//!
//! Every write takes an [`Origin`] and, once it has succeeded, records its Directory Insights events in
//! `events` (facts sheet §5.4): the API's routes and the console churn go through the same functions, so
//! nothing changes without its event. Cascades a write implies (a deleted user leaving its groups and
//! directories, a deleted group its members and bindings) are not separate edge events: the delete says it.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde_json::{Map, Value};

use super::error::ApiError;
use super::events::{Change, End, EventLog, MAX_EVENTS, Origin, Subject, diff, kind};
use super::model::{
    Applied, DirKind, Directory, Group, GroupFields, IdGen, Organization, User, UserState,
    email_ok, iso_millis, password_violations, username_problem,
};
use super::query::{Cond, Operand, SortKey, sort_records};

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

    /// `user_update`, then the state and password events the change from `old` to `new` stands for.
    fn record_user_change(&mut self, origin: Origin, old: &User, new: &User, event: &'static str) {
        let changes = diff(
            &old.to_json(),
            &new.to_json(),
            &["_id", "id", "mfaEnrollment"],
        );
        let state_changes: Vec<Change> = changes
            .iter()
            .filter(|c| c.field == "state" || c.field == "suspended")
            .cloned()
            .collect();
        self.events
            .record(origin, event, Self::user_subject(new), Some(changes));
        let state_event = match (old.state, new.state) {
            (a, b) if a == b => None,
            (_, UserState::Suspended) => Some(kind::USER_SUSPENDED),
            (UserState::Suspended, _) => Some(kind::USER_UNSUSPENDED),
            (UserState::Staged, UserState::Activated) => Some(kind::USER_ACTIVATED),
            _ => None,
        };
        if let Some(t) = state_event
            && event != t
        {
            self.events
                .record(origin, t, Self::user_subject(new), Some(state_changes));
        }
        if !old.activated && new.activated {
            let c = Change {
                field: "activated".into(),
                from: Value::Bool(false),
                to: Value::Bool(true),
            };
            self.events.record(
                origin,
                kind::USER_PASSWORD_SET,
                Self::user_subject(new),
                Some(vec![c]),
            );
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

    fn index_user(&mut self, u: &User) {
        self.by_username
            .insert(u.username.to_lowercase(), u.id.clone());
        self.by_email.insert(u.email.clone(), u.id.clone());
        if let Some(e) = &u.employee_identifier {
            self.by_employee_id.insert(e.clone(), u.id.clone());
        }
        if let Some(m) = &u.manager {
            self.reports
                .entry(m.clone())
                .or_default()
                .insert(u.id.clone());
        }
    }

    fn unindex_user(&mut self, u: &User) {
        self.by_username.remove(&u.username.to_lowercase());
        self.by_email.remove(&u.email);
        if let Some(e) = &u.employee_identifier {
            self.by_employee_id.remove(e);
        }
        if let Some(m) = &u.manager {
            self.remove_report(m, &u.id);
        }
    }

    fn remove_report(&mut self, manager: &str, report: &str) {
        if let Some(set) = self.reports.get_mut(manager) {
            set.remove(report);
            if set.is_empty() {
                self.reports.remove(manager);
            }
        }
    }

    // --- users: reads ---

    pub fn user(&self, id: &str) -> Option<&User> {
        self.users.get(id)
    }

    /// Every user, in id order.
    pub fn users(&self) -> impl DoubleEndedIterator<Item = &User> {
        self.users.values()
    }

    /// Users matching `cond`, sorted by `sort`, as (total matches, the page `skip..skip+limit`).
    ///
    /// Equality on `_id`/`username`/`email`/`employeeIdentifier` goes through an index; `sort=_id` (or none)
    /// walks the id-ordered map and keeps only the page; any other sort sorts references, never clones.
    pub fn query_users(
        &self,
        cond: &Cond,
        sort: &[SortKey],
        skip: usize,
        limit: usize,
    ) -> (usize, Vec<&User>) {
        if let Some(candidates) = self.index_candidates(cond) {
            let matched: Vec<&User> = candidates
                .into_iter()
                .filter(|u| cond.matches(*u))
                .collect();
            let sorted = sort_records(matched, sort);
            let total = sorted.len();
            return (total, sorted.into_iter().skip(skip).take(limit).collect());
        }
        let by_id_desc = match sort {
            [] => Some(false),
            [k] if k.field == "_id" || k.field == "id" => Some(k.desc),
            _ => None,
        };
        match by_id_desc {
            Some(desc) => {
                // Unfiltered: the page is a walk of the ordered map, concrete (not boxed) so `skip` is cheap.
                if *cond == Cond::True {
                    let page = if desc {
                        self.users.values().rev().skip(skip).take(limit).collect()
                    } else {
                        self.users.values().skip(skip).take(limit).collect()
                    };
                    return (self.users.len(), page);
                }
                let walk: Box<dyn Iterator<Item = &User>> = if desc {
                    Box::new(self.users.values().rev())
                } else {
                    Box::new(self.users.values())
                };
                let mut total = 0;
                let mut page = Vec::new();
                for u in walk.filter(|u| cond.matches(*u)) {
                    if total >= skip && page.len() < limit {
                        page.push(u);
                    }
                    total += 1;
                }
                (total, page)
            }
            None => {
                let matched: Vec<&User> =
                    self.users.values().filter(|u| cond.matches(*u)).collect();
                let sorted = sort_records(matched, sort);
                let total = sorted.len();
                (total, sorted.into_iter().skip(skip).take(limit).collect())
            }
        }
    }

    /// The users an indexed equality in `cond` narrows the search to, if there is one.
    fn index_candidates(&self, cond: &Cond) -> Option<Vec<&User>> {
        for (field, value) in cond.equalities() {
            let value = match value {
                Operand::Text(t) => t.as_str(),
                Operand::Json(Value::String(s)) => s.as_str(),
                Operand::Json(_) => continue,
            };
            let id = match field {
                "_id" | "id" => Some(value),
                "username" => self
                    .by_username
                    .get(&value.to_lowercase())
                    .map(String::as_str),
                "email" => self.by_email.get(value).map(String::as_str),
                "employeeIdentifier" => self.by_employee_id.get(value).map(String::as_str),
                _ => continue,
            };
            return Some(id.and_then(|id| self.users.get(id)).into_iter().collect());
        }
        None
    }

    // --- users: writes ---

    /// `POST /api/systemusers`: validates, applies the defaults of the facts sheet §2.3 and stores.
    pub fn create_user(
        &mut self,
        body: &Map<String, Value>,
        origin: Origin,
    ) -> Result<User, ApiError> {
        let now = origin.at;
        let id = self.ids.next(now.as_second());
        let mut user = User::blank(id, iso_millis(now), self.org.id.clone(), self.next_uid);
        let applied = user.apply(body, &mut self.ids, now)?;
        user.state = match (applied.state, applied.suspended) {
            (Some(s), Some(b)) if b != (s == UserState::Suspended) => return Err(state_conflict()),
            (Some(s), _) => s,
            (None, Some(true)) => UserState::Suspended,
            (None, _) => UserState::Activated,
        };
        user.suspended = user.state == UserState::Suspended;
        self.validate(&mut user, &applied, now)?;
        self.check_unique(&user, None)?;
        self.next_uid = self.next_uid.max(user.unix_uid.saturating_add(1));
        self.index_user(&user);
        self.users.insert(user.id.clone(), user.clone());
        self.events
            .record(origin, kind::USER_CREATE, Self::user_subject(&user), None);
        if let Some(g) = self.all_users.as_ref().and_then(|g| self.groups.get_mut(g)) {
            g.members.insert(user.id.clone());
            let from = Self::group_end(g);
            self.events.record(
                origin,
                kind::ASSOCIATION_CHANGE,
                Subject::Edge {
                    op: EdgeOp::Add.as_str(),
                    from,
                    to: Self::user_end(&user),
                },
                None,
            );
        }
        Ok(user)
    }

    /// `PUT /api/systemusers/{id}`: scalars merged, arrays replaced, state moves only to ACTIVATED/SUSPENDED.
    pub fn update_user(
        &mut self,
        id: &str,
        body: &Map<String, Value>,
        origin: Origin,
    ) -> Result<User, ApiError> {
        let now = origin.at;
        let old = self
            .users
            .get(id)
            .cloned()
            .ok_or_else(|| user_not_found(id))?;
        let mut user = old.clone();
        let applied = user.apply(body, &mut self.ids, now)?;
        user.state = match (applied.state, applied.suspended) {
            (Some(UserState::Staged), _) => {
                return Err(ApiError::invalid_field(
                    "state can only be set to ACTIVATED or SUSPENDED",
                    "state",
                    "must be ACTIVATED or SUSPENDED",
                ));
            }
            (Some(s), Some(b)) if b != (s == UserState::Suspended) => return Err(state_conflict()),
            (Some(s), _) => s,
            (None, Some(true)) => UserState::Suspended,
            (None, Some(false)) if old.state == UserState::Suspended => UserState::Activated,
            (None, _) => old.state,
        };
        user.suspended = user.state == UserState::Suspended;
        self.validate(&mut user, &applied, now)?;
        self.check_unique(&user, Some(id))?;
        self.unindex_user(&old);
        self.index_user(&user);
        self.users.insert(user.id.clone(), user.clone());
        self.record_user_change(origin, &old, &user, kind::USER_UPDATE);
        Ok(user)
    }

    /// Rules every stored user satisfies; also applies a new password's consequences.
    fn validate(
        &self,
        user: &mut User,
        applied: &Applied,
        now: jiff::Timestamp,
    ) -> Result<(), ApiError> {
        if user.username.is_empty() {
            return Err(ApiError::invalid_field(
                "username is required",
                "username",
                "required",
            ));
        }
        if let Some(problem) = username_problem(&user.username) {
            return Err(ApiError::invalid_field(
                format!("Invalid username: {problem}"),
                "username",
                problem,
            ));
        }
        if user.email.is_empty() {
            return Err(ApiError::invalid_field(
                "email is required",
                "email",
                "required",
            ));
        }
        if !email_ok(&user.email) {
            return Err(ApiError::invalid_field(
                "Invalid email",
                "email",
                "must be an email address",
            ));
        }
        if let Some(m) = &user.manager {
            if *m == user.id {
                return Err(ApiError::invalid_field(
                    "a user cannot be their own manager",
                    "manager",
                    "must be another user's id",
                ));
            }
            if !self.users.contains_key(m) {
                return Err(ApiError::invalid_field(
                    format!("manager {m} does not exist"),
                    "manager",
                    "must be an existing user's id",
                ));
            }
        }
        if let Some(password) = &applied.password {
            let violations = password_violations(password);
            if !violations.is_empty() {
                return Err(ApiError::Invalid {
                    message: "Password validation fail".into(),
                    status: "INVALID_ARGUMENT",
                    violations,
                });
            }
            user.activated = true;
            user.password_expired = false;
            user.password_date = Some(iso_millis(now));
        }
        Ok(())
    }

    /// Duplicate username (case-insensitive), email or employeeIdentifier, ignoring the user `except`.
    fn check_unique(&self, user: &User, except: Option<&str>) -> Result<(), ApiError> {
        let taken = |index: &HashMap<String, String>, key: &str| {
            index
                .get(key)
                .is_some_and(|owner| Some(owner.as_str()) != except)
        };
        let clash = if taken(&self.by_username, &user.username.to_lowercase()) {
            Some(("username", user.username.as_str()))
        } else if taken(&self.by_email, &user.email) {
            Some(("email", user.email.as_str()))
        } else {
            user.employee_identifier
                .as_deref()
                .filter(|e| taken(&self.by_employee_id, e))
                .map(|e| ("employeeIdentifier", e))
        };
        match clash {
            Some((field, value)) => Err(ApiError::invalid_field(
                format!("User already exists: {field} {value:?} is already in use"),
                field,
                "already exists",
            )),
            None => Ok(()),
        }
    }

    /// `DELETE /api/systemusers/{id}`. A manager is refused (409) unless `cascade_manager` says what becomes
    /// of the reports: `null` clears their `manager`, another user's id hands them over.
    pub fn delete_user(
        &mut self,
        id: &str,
        cascade_manager: Option<&str>,
        origin: Origin,
    ) -> Result<User, ApiError> {
        if !self.users.contains_key(id) {
            return Err(user_not_found(id));
        }
        let reports: Vec<String> = self
            .reports
            .get(id)
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default();
        if !reports.is_empty() {
            let new_manager = match cascade_manager {
                None => {
                    return Err(ApiError::Conflict(format!(
                        "user {id} is the manager of {} users; delete with cascade_manager=null to clear their manager",
                        reports.len()
                    )));
                }
                Some("null") | Some("") => None,
                Some(m) if m != id && self.users.contains_key(m) => Some(m.to_owned()),
                Some(m) => {
                    return Err(ApiError::BadRequest(format!(
                        "cascade_manager must be null or another existing user's id, got {m:?}"
                    )));
                }
            };
            for r in &reports {
                if let Some(u) = self.users.get_mut(r) {
                    let old = u.clone();
                    u.manager = new_manager.clone();
                    let new = u.clone();
                    self.record_user_change(origin, &old, &new, kind::USER_UPDATE);
                }
                if let Some(m) = &new_manager {
                    self.reports.entry(m.clone()).or_default().insert(r.clone());
                }
            }
            self.reports.remove(id);
        }
        let user = self.users.remove(id).ok_or_else(|| user_not_found(id))?;
        self.unindex_user(&user);
        for g in self.groups.values_mut() {
            g.members.remove(id);
        }
        for d in &mut self.directories {
            d.users.remove(id);
        }
        self.events
            .record(origin, kind::USER_DELETE, Self::user_subject(&user), None);
        Ok(user)
    }

    /// `POST /api/systemusers/{id}/state/activate`: STAGED → ACTIVATED.
    /// `user_activated` when a STAGED user moves; nothing for a user already past STAGED.
    pub fn activate_user(&mut self, id: &str, origin: Origin) -> Result<(), ApiError> {
        let u = self.users.get_mut(id).ok_or_else(|| user_not_found(id))?;
        if u.state == UserState::Staged {
            let old = u.clone();
            u.state = UserState::Activated;
            u.suspended = false;
            let new = u.clone();
            self.record_user_change(origin, &old, &new, kind::USER_ACTIVATED);
        }
        Ok(())
    }

    /// `POST /api/systemusers/{id}/expire`: `user_password_expired`.
    pub fn expire_password(&mut self, id: &str, origin: Origin) -> Result<(), ApiError> {
        let u = self.users.get_mut(id).ok_or_else(|| user_not_found(id))?;
        let old = u.clone();
        u.password_expired = true;
        let new = u.clone();
        self.record_user_change(origin, &old, &new, kind::USER_PASSWORD_EXPIRED);
        Ok(())
    }

    /// `POST /api/systemusers/{id}/unlock`: `user_unlocked`.
    pub fn unlock_user(&mut self, id: &str, origin: Origin) -> Result<(), ApiError> {
        let u = self.users.get_mut(id).ok_or_else(|| user_not_found(id))?;
        let old = u.clone();
        u.account_locked = false;
        u.account_locked_date = None;
        u.bad_login_attempts = 0;
        let new = u.clone();
        self.record_user_change(origin, &old, &new, kind::USER_UNLOCKED);
        Ok(())
    }

    // --- groups ---

    pub fn groups(&self) -> impl Iterator<Item = &Group> {
        self.groups.values()
    }

    pub fn group(&self, id: &str) -> Option<&Group> {
        self.groups.get(id)
    }

    /// `POST /api/v2/usergroups`.
    pub fn create_group(
        &mut self,
        fields: GroupFields,
        origin: Origin,
    ) -> Result<&Group, ApiError> {
        let key = fields.name.to_lowercase();
        if self.group_by_name.contains_key(&key) {
            return Err(ApiError::AlreadyExists);
        }
        let id = self.ids.next(origin.at.as_second());
        self.group_by_name.insert(key, id.clone());
        let group = Group {
            id: id.clone(),
            organization: self.org.id.clone(),
            fields,
            members: BTreeSet::new(),
        };
        self.events.record(
            origin,
            kind::GROUP_CREATE,
            Self::group_subject(&group),
            None,
        );
        Ok(self.groups.entry(id).or_insert(group))
    }

    /// `PUT /api/v2/usergroups/{id}`: replaces every writable field; members stay.
    pub fn replace_group(
        &mut self,
        id: &str,
        fields: GroupFields,
        origin: Origin,
    ) -> Result<&Group, ApiError> {
        let old_key = match self.groups.get(id) {
            Some(g) => g.fields.name.to_lowercase(),
            None => return Err(group_not_found(id)),
        };
        let key = fields.name.to_lowercase();
        if self
            .group_by_name
            .get(&key)
            .is_some_and(|owner| owner != id)
        {
            return Err(ApiError::AlreadyExists);
        }
        self.group_by_name.remove(&old_key);
        self.group_by_name.insert(key, id.to_owned());
        let group = self.groups.get_mut(id).ok_or_else(|| group_not_found(id))?;
        let old = group.to_json();
        group.fields = fields;
        let changes = diff(&old, &group.to_json(), &["id"]);
        self.events.record(
            origin,
            kind::GROUP_UPDATE,
            Self::group_subject(group),
            Some(changes),
        );
        Ok(group)
    }

    /// `DELETE /api/v2/usergroups/{id}`: the group's memberships and associations go with it.
    pub fn delete_group(&mut self, id: &str, origin: Origin) -> Result<Group, ApiError> {
        let group = self.groups.remove(id).ok_or_else(|| group_not_found(id))?;
        self.group_by_name.remove(&group.fields.name.to_lowercase());
        for d in &mut self.directories {
            d.groups.remove(id);
        }
        if self.all_users.as_deref() == Some(id) {
            self.all_users = None;
        }
        self.events.record(
            origin,
            kind::GROUP_DELETE,
            Self::group_subject(&group),
            None,
        );
        Ok(group)
    }

    /// `POST /api/v2/usergroups/{id}/members`. Adding a member twice is 409 Already Exists; removing a
    /// non-member is 404.
    pub fn change_member(
        &mut self,
        group_id: &str,
        op: EdgeOp,
        user_id: &str,
        origin: Origin,
    ) -> Result<(), ApiError> {
        if !self.groups.contains_key(group_id) {
            return Err(group_not_found(group_id));
        }
        let user = self
            .users
            .get(user_id)
            .ok_or_else(|| user_not_found(user_id))?;
        let group = self
            .groups
            .get_mut(group_id)
            .ok_or_else(|| group_not_found(group_id))?;
        match op {
            EdgeOp::Add if !group.members.insert(user_id.to_owned()) => {
                return Err(ApiError::AlreadyExists);
            }
            EdgeOp::Remove if !group.members.remove(user_id) => {
                return Err(ApiError::NotFound(format!(
                    "user {user_id} is not a member of group {group_id}"
                )));
            }
            _ => {}
        }
        let edge = Subject::Edge {
            op: op.as_str(),
            from: Self::group_end(group),
            to: Self::user_end(user),
        };
        self.events
            .record(origin, kind::ASSOCIATION_CHANGE, edge, None);
        Ok(())
    }

    /// Groups `user_id` is a direct member of, in id order.
    pub fn groups_of<'a>(&'a self, user_id: &'a str) -> impl Iterator<Item = &'a Group> + 'a {
        self.groups
            .values()
            .filter(move |g| g.members.contains(user_id))
    }

    // --- directories ---

    pub fn directories(&self) -> &[Directory] {
        &self.directories
    }

    /// The directory `id` of `kind`.
    pub fn directory(&self, kind: DirKind, id: &str) -> Option<&Directory> {
        self.directories
            .iter()
            .find(|d| d.kind == kind && d.id == id)
    }

    /// A graph write between a directory and a user or group. Existing edge on add → 409 Already Exists;
    /// missing edge on remove → 404; unknown directory, user or group → 404. Its `association_change` runs
    /// from the end the write went `via` to the other.
    #[allow(clippy::too_many_arguments)]
    pub fn change_association(
        &mut self,
        kind: DirKind,
        dir_id: &str,
        op: EdgeOp,
        target: Target,
        target_id: &str,
        via: Via,
        origin: Origin,
    ) -> Result<(), ApiError> {
        let member = match target {
            Target::User => self.users.get(target_id).map(Self::user_end),
            Target::UserGroup => self.groups.get(target_id).map(Self::group_end),
        };
        let exists = member.is_some();
        let dir = self
            .directories
            .iter_mut()
            .find(|d| d.kind == kind && d.id == dir_id)
            .ok_or_else(|| {
                ApiError::NotFound(format!("{} {dir_id} not found", kind.type_name()))
            })?;
        if !exists {
            return Err(match target {
                Target::User => user_not_found(target_id),
                Target::UserGroup => group_not_found(target_id),
            });
        }
        let set = match target {
            Target::User => &mut dir.users,
            Target::UserGroup => &mut dir.groups,
        };
        match op {
            EdgeOp::Add if !set.insert(target_id.to_owned()) => {
                return Err(ApiError::AlreadyExists);
            }
            EdgeOp::Remove if !set.remove(target_id) => {
                return Err(ApiError::NotFound(format!(
                    "no association between {} {dir_id} and {target_id}",
                    kind.type_name()
                )));
            }
            _ => {}
        }
        let directory = End {
            kind: kind.type_name(),
            id: dir.id.clone(),
            name: dir.name.clone(),
        };
        if let Some(member) = member {
            let (from, to) = match via {
                Via::Directory => (directory, member),
                Via::Member => (member, directory),
            };
            let edge = Subject::Edge {
                op: op.as_str(),
                from,
                to,
            };
            self.events
                .record(origin, kind::ASSOCIATION_CHANGE, edge, None);
        }
        Ok(())
    }
}

fn user_not_found(id: &str) -> ApiError {
    ApiError::NotFound(format!("user {id} not found"))
}

fn group_not_found(id: &str) -> ApiError {
    ApiError::NotFound(format!("user group {id} not found"))
}

fn state_conflict() -> ApiError {
    ApiError::invalid_field(
        "state and suspended disagree",
        "suspended",
        "must be true exactly when state is SUSPENDED",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::emulator::query::{Dialect, parse_list};
    use serde_json::json;

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
}
