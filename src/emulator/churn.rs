//! Console churn: a background task that changes the directory at `churn_per_minute`, as an admin clicking
//! in the console would, so a consumer of the Directory Insights feed sees changes it did not make.
//!
//! Each change goes through the same store functions the API's routes call, with a console [`Origin`], so
//! each records its events: users edited (title, department, location), created, suspended, re-activated and
//! deleted; members added to and removed from groups ("All Users" excepted, as the console manages it);
//! directory access granted and revoked for users and groups. The choices are drawn from one `StdRng`
//! seeded from the emulator's seed, so the same seed and the same store give the same changes.
//!
//! Bounded: at most [`MAX_CHURN_PER_MINUTE`] changes a minute, never more than a second's worth of catch-up
//! after a stall, a bounded number of attempts and a bounded scan per change. The task never ends by itself:
//! its owner (`serve`, `spawn`) aborts it when the emulator stops. The rate is read again on every tick, so
//! `PUT /__emulator/faults` changes it at run time and 0 pauses it.

use std::sync::Arc;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use serde_json::{Map, Value, json};
use tokio::time::Instant;

use super::model::UserState;
use super::seed::{DEPARTMENTS, FIRST_NAMES, LAST_NAMES, OFFICES, slug};
use super::store::{EdgeOp, Store, Target, Via};
use super::{App, MAX_CHURN_PER_MINUTE};
use crate::emulator::events::Origin;

/// Mixed into the seed so the churn draws a stream of its own.
const CHURN_SALT: u64 = 0x6368_7572_6e00;
/// How often a paused churn looks at its rate again.
const IDLE_POLL: Duration = Duration::from_millis(200);
/// Longest single sleep, so a new rate takes effect quickly.
const MAX_SLICE: Duration = Duration::from_millis(250);
/// How far behind schedule the churn may fall before it skips ahead instead of catching up.
const CATCH_UP: Duration = Duration::from_secs(1);
/// Different changes tried before a tick gives up (e.g. nobody left to suspend).
const MAX_ATTEMPTS: usize = 8;
/// Users looked at when searching for one in a given state.
const MAX_SCAN: usize = 4096;
/// Tries at finding a user who is not yet on the other end of an edge.
const MAX_PICKS: usize = 8;

/// The kinds of change an admin makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    EditUser,
    CreateUser,
    SuspendUser,
    ReactivateUser,
    DeleteUser,
    AddMember,
    RemoveMember,
    GrantDirectory,
    RevokeDirectory,
}

/// How often each change is made, relatively; creates and deletes balance so the directory keeps its size.
const WEIGHTS: &[(Action, u32)] = &[
    (Action::EditUser, 30),
    (Action::CreateUser, 7),
    (Action::SuspendUser, 8),
    (Action::ReactivateUser, 8),
    (Action::DeleteUser, 6),
    (Action::AddMember, 14),
    (Action::RemoveMember, 12),
    (Action::GrantDirectory, 8),
    (Action::RevokeDirectory, 7),
];

/// The dice and the count of users created so far (which keeps new usernames unique).
#[derive(Debug)]
pub struct Churner {
    rng: StdRng,
    created: u64,
}

// === impl Churner ===

impl Churner {
    pub fn new(seed: u64) -> Self {
        Self {
            rng: StdRng::seed_from_u64(seed ^ CHURN_SALT),
            created: 0,
        }
    }

    /// Makes one change at `origin`; `None` when none of the tries could be made.
    pub fn step(&mut self, store: &mut Store, origin: Origin) -> Option<Action> {
        (0..MAX_ATTEMPTS).find_map(|_| {
            let action = self.pick_action();
            self.apply(action, store, origin).then_some(action)
        })
    }

    fn pick_action(&mut self) -> Action {
        let total: u32 = WEIGHTS.iter().map(|(_, w)| w).sum();
        let mut roll = self.rng.random_range(0..total);
        for (action, w) in WEIGHTS {
            if roll < *w {
                return *action;
            }
            roll -= w;
        }
        Action::EditUser
    }

    /// Whether `action` could be made (and so was).
    fn apply(&mut self, action: Action, store: &mut Store, origin: Origin) -> bool {
        match action {
            Action::EditUser => self.edit_user(store, origin),
            Action::CreateUser => self.create_user(store, origin),
            Action::SuspendUser => self.move_user(store, origin, UserState::Activated, "SUSPENDED"),
            Action::ReactivateUser => {
                self.move_user(store, origin, UserState::Suspended, "ACTIVATED")
            }
            Action::DeleteUser => self.delete_user(store, origin),
            Action::AddMember => self.add_member(store, origin),
            Action::RemoveMember => self.remove_member(store, origin),
            Action::GrantDirectory => self.grant_directory(store, origin),
            Action::RevokeDirectory => self.revoke_directory(store, origin),
        }
    }

    /// A user moves to another department, title and office.
    fn edit_user(&mut self, store: &mut Store, origin: Origin) -> bool {
        let Some(id) = self.user_where(store, |_| true) else {
            return false;
        };
        let (dept, _, titles) = DEPARTMENTS[self.rng.random_range(0..DEPARTMENTS.len())];
        let title = titles
            .choose(&mut self.rng)
            .copied()
            .unwrap_or("Specialist");
        let office = OFFICES[self.rng.random_range(0..OFFICES.len())].0;
        let body = object(json!({ "jobTitle": title, "department": dept, "location": office }));
        store.update_user(&id, &body, origin).is_ok()
    }

    /// A new hire, with a username no seeded or earlier churned user has.
    fn create_user(&mut self, store: &mut Store, origin: Origin) -> bool {
        self.created += 1;
        let first = FIRST_NAMES.choose(&mut self.rng).copied().unwrap_or("Alex");
        let last = LAST_NAMES.choose(&mut self.rng).copied().unwrap_or("Doe");
        let (dept, _, titles) = DEPARTMENTS[self.rng.random_range(0..DEPARTMENTS.len())];
        let username = format!("{}.{}.c{}", slug(first), slug(last), self.created);
        let body = object(json!({
            "username": username,
            "email": format!("{username}@example.com"),
            "firstname": first,
            "lastname": last,
            "displayname": format!("{first} {last}"),
            "department": dept,
            "jobTitle": titles.first().copied().unwrap_or("Specialist"),
            "company": "Example Corp",
        }));
        store.create_user(&body, origin).is_ok()
    }

    /// A user in state `from` is set to `to` (suspended, or re-activated).
    fn move_user(
        &mut self,
        store: &mut Store,
        origin: Origin,
        from: UserState,
        to: &'static str,
    ) -> bool {
        let Some(id) = self.user_where(store, |u| u.state == from) else {
            return false;
        };
        let body = object(json!({ "state": to }));
        store.update_user(&id, &body, origin).is_ok()
    }

    /// A user leaves; never the last one.
    fn delete_user(&mut self, store: &mut Store, origin: Origin) -> bool {
        if store.user_count() <= 1 {
            return false;
        }
        let Some(id) = self.user_where(store, |_| true) else {
            return false;
        };
        // The console asks what becomes of a manager's reports; the admin clears their manager.
        store.delete_user(&id, Some("null"), origin).is_ok()
    }

    /// A user who is not yet a member joins a hand-managed group.
    fn add_member(&mut self, store: &mut Store, origin: Origin) -> bool {
        let Some(group) = self.group(store) else {
            return false;
        };
        let Some(user) = self.user_not_in(store, |s, u| {
            s.group(&group).is_some_and(|g| g.members.contains(u))
        }) else {
            return false;
        };
        store
            .change_member(&group, EdgeOp::Add, &user, origin)
            .is_ok()
    }

    /// A member leaves a hand-managed group.
    fn remove_member(&mut self, store: &mut Store, origin: Origin) -> bool {
        let Some(group) = self.group(store) else {
            return false;
        };
        let member = store.group(&group).and_then(|g| {
            let n = g.members.len();
            (n > 0)
                .then(|| g.members.iter().nth(self.rng.random_range(0..n)))
                .flatten()
                .cloned()
        });
        let Some(user) = member else {
            return false;
        };
        store
            .change_member(&group, EdgeOp::Remove, &user, origin)
            .is_ok()
    }

    /// A directory is granted to a user not yet bound to it (mostly) or to a hand-managed group.
    fn grant_directory(&mut self, store: &mut Store, origin: Origin) -> bool {
        let Some((kind, dir)) = self.directory(store) else {
            return false;
        };
        let (target, id) = if self.rng.random_bool(0.8) {
            let bound = |s: &Store, u: &str| {
                s.directories()
                    .iter()
                    .any(|d| d.id == dir && d.users.contains(u))
            };
            let Some(user) = self.user_not_in(store, bound) else {
                return false;
            };
            (Target::User, user)
        } else {
            let Some(group) = self.group(store) else {
                return false;
            };
            (Target::UserGroup, group)
        };
        store
            .change_association(kind, &dir, EdgeOp::Add, target, &id, Via::Directory, origin)
            .is_ok()
    }

    /// A directory is revoked from one of the users (mostly) or groups bound to it.
    fn revoke_directory(&mut self, store: &mut Store, origin: Origin) -> bool {
        let Some((kind, dir)) = self.directory(store) else {
            return false;
        };
        let Some(d) = store.directories().iter().find(|d| d.id == dir) else {
            return false;
        };
        let (target, set) = if !d.groups.is_empty() && self.rng.random_bool(0.2) {
            (Target::UserGroup, &d.groups)
        } else {
            (Target::User, &d.users)
        };
        let n = set.len();
        if n == 0 {
            return false;
        }
        let Some(id) = set.iter().nth(self.rng.random_range(0..n)).cloned() else {
            return false;
        };
        store
            .change_association(
                kind,
                &dir,
                EdgeOp::Remove,
                target,
                &id,
                Via::Directory,
                origin,
            )
            .is_ok()
    }

    /// A user matching `pred`, scanning from a random place, at most [`MAX_SCAN`] users.
    fn user_where(
        &mut self,
        store: &Store,
        pred: impl Fn(&super::model::User) -> bool,
    ) -> Option<String> {
        let n = store.user_count();
        if n == 0 {
            return None;
        }
        let start = self.rng.random_range(0..n);
        store
            .users()
            .skip(start)
            .chain(store.users().take(start))
            .take(MAX_SCAN)
            .find(|u| pred(u))
            .map(|u| u.id.clone())
    }

    /// A random user for whom `taken` is false, in at most [`MAX_PICKS`] tries.
    fn user_not_in(
        &mut self,
        store: &Store,
        taken: impl Fn(&Store, &str) -> bool,
    ) -> Option<String> {
        let n = store.user_count();
        if n == 0 {
            return None;
        }
        (0..MAX_PICKS).find_map(|_| {
            let u = store.nth_user(self.rng.random_range(0..n))?;
            (!taken(store, &u.id)).then(|| u.id.clone())
        })
    }

    /// A random group an admin edits by hand: any but "All Users".
    fn group(&mut self, store: &Store) -> Option<String> {
        let all = store.all_users_group();
        let groups: Vec<&str> = store
            .groups()
            .map(|g| g.id.as_str())
            .filter(|id| Some(*id) != all)
            .collect();
        groups.choose(&mut self.rng).map(|id| (*id).to_owned())
    }

    fn directory(&mut self, store: &Store) -> Option<(super::model::DirKind, String)> {
        store
            .directories()
            .choose(&mut self.rng)
            .map(|d| (d.kind, d.id.clone()))
    }
}

fn object(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

/// The churn loop: one change every `60 / churn_per_minute` seconds, for as long as its owner lets it run.
pub async fn run(app: Arc<App>, seed: u64) {
    let mut churner = Churner::new(seed);
    // The rate the schedule was made for, and when the next change is due.
    let mut schedule: Option<(u32, Instant)> = None;
    loop {
        let rate = app
            .faults()
            .config()
            .churn_per_minute
            .min(MAX_CHURN_PER_MINUTE);
        if rate == 0 {
            schedule = None;
            tokio::time::sleep(IDLE_POLL).await;
            continue;
        }
        let period = Duration::from_secs_f64(60.0 / f64::from(rate));
        let now = Instant::now();
        let due = match schedule {
            Some((r, due)) if r == rate => due,
            _ => now + period,
        };
        if now < due {
            schedule = Some((rate, due));
            tokio::time::sleep((due - now).min(MAX_SLICE)).await;
            continue;
        }
        let made = {
            let mut store = app.write();
            churner.step(&mut store, Origin::console(jiff::Timestamp::now()))
        };
        tracing::trace!(?made, "console churn");
        let floor = now.checked_sub(CATCH_UP).unwrap_or(now);
        schedule = Some((rate, (due + period).max(floor)));
        tokio::task::yield_now().await;
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeSet, HashMap};

    use super::*;
    use crate::emulator::events::kind;
    use crate::emulator::seed::seed;

    fn origin(i: i64) -> Origin {
        Origin::console(jiff::Timestamp::from_second(1_700_000_000 + i).unwrap())
    }

    fn run_steps(seed_value: u64, steps: i64) -> (Store, Vec<Action>) {
        let mut store = seed(3, 60, 8);
        let mut c = Churner::new(seed_value);
        let actions = (0..steps)
            .filter_map(|i| c.step(&mut store, origin(i)))
            .collect();
        (store, actions)
    }

    #[test]
    fn every_kind_of_change_is_made_and_recorded() {
        let (store, actions) = run_steps(1, 400);
        assert_eq!(actions.len(), 400, "every tick makes a change");
        let kinds: BTreeSet<String> = actions.iter().map(|a| format!("{a:?}")).collect();
        assert_eq!(kinds.len(), WEIGHTS.len(), "{kinds:?}");
        let mut types: HashMap<&str, usize> = HashMap::new();
        for e in store.events.iter() {
            *types.entry(e.event_type).or_default() += 1;
            assert!(matches!(e.source, crate::emulator::events::Source::Console));
        }
        for t in [
            kind::USER_CREATE,
            kind::USER_UPDATE,
            kind::USER_DELETE,
            kind::USER_SUSPENDED,
            kind::USER_UNSUSPENDED,
            kind::ASSOCIATION_CHANGE,
        ] {
            assert!(types.get(t).is_some_and(|n| *n > 0), "{t}: {types:?}");
        }
        let deletes = actions.iter().filter(|a| **a == Action::DeleteUser).count();
        assert_eq!(types[kind::USER_DELETE], deletes);
    }

    #[test]
    fn same_seed_same_changes() {
        let (a, x) = run_steps(9, 100);
        let (b, y) = run_steps(9, 100);
        assert_eq!(x, y);
        let render = |s: &Store| {
            s.events
                .iter()
                .map(|e| s.events.render(e))
                .collect::<Vec<_>>()
        };
        assert_eq!(render(&a), render(&b));
        let (_, z) = run_steps(10, 100);
        assert_ne!(x, z);
    }

    #[test]
    fn an_empty_directory_only_grows() {
        let mut store = seed(1, 0, 0);
        let mut c = Churner::new(1);
        for i in 0..50 {
            c.step(&mut store, origin(i));
        }
        assert!(store.user_count() > 0);
    }
}
