//! User writes (facts sheet §2.3–§2.5): create, update, delete (with what becomes of a manager's reports)
//! and the state actions, with the rules every stored user satisfies (required fields, the username and
//! password rules, an existing manager, uniqueness) and the events each write records.
//!
//! Reading the body field by field is `model`'s; the indexes these keep up to date live in `users`.

use std::collections::HashMap;

use serde_json::{Map, Value};

use super::{EdgeOp, Store, user_not_found};
use crate::emulator::error::ApiError;
use crate::emulator::events::{Change, Origin, Subject, diff, kind};
use crate::emulator::model::{
    Applied, User, UserState, email_ok, iso_millis, password_violations, username_problem,
};

// === impl Store ===

impl Store {
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
}

fn state_conflict() -> ApiError {
    ApiError::invalid_field(
        "state and suspended disagree",
        "suspended",
        "must be true exactly when state is SUSPENDED",
    )
}
