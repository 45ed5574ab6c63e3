//! JumpCloud's data as a snapshot holds it: persistent maps with the reverse edges derivation needs, the
//! edits a write makes to them, and the overlay that keeps a refresh from rolling a write back.
//!
//! Only plain data lives here: no SCIM, no derivation, no indexes.

use std::collections::{BTreeSet, HashMap as StdHashMap, HashSet as StdHashSet};
use std::sync::Arc;

use imbl::{HashMap, OrdMap, OrdSet};

use super::{Id, PackedUser};
use crate::jumpcloud::{JcDirectory, JcGroup, JcUser};

/// A small set of ids in order: what an index key or a user's edges hold (one name, a few groups). One id is
/// held inline and more in a sorted vector, so the common set of one costs no allocation where a tree set
/// costs a node per set; large sets (a group's members) stay `OrdSet`s.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IdSet(Ids);

#[derive(Debug, Clone, Default, PartialEq, Eq)]
enum Ids {
    #[default]
    None,
    One(Id),
    Many(Vec<Id>),
}

/// What a full refresh read from JumpCloud, in plain collections.
#[derive(Debug, Clone, Default)]
pub struct RawDirectory {
    pub users: Vec<JcUser>,
    pub groups: Vec<JcGroup>,
    /// Group id → member user ids.
    pub members: StdHashMap<String, Vec<String>>,
    pub directories: Vec<JcDirectory>,
    /// Directory id → user ids associated directly.
    pub directory_users: StdHashMap<String, Vec<String>>,
    /// Directory id → user group ids bound to it.
    pub directory_groups: StdHashMap<String, Vec<String>>,
}

/// JumpCloud's data as persistent maps, with the reverse edges derivation needs.
#[derive(Debug, Clone, Default)]
pub struct Data {
    /// Users, packed ([`PackedUser`]).
    pub users: OrdMap<Id, PackedUser>,
    pub groups: OrdMap<Id, Arc<JcGroup>>,
    pub directories: OrdMap<Id, Arc<JcDirectory>>,
    /// Group → member users.
    pub members: HashMap<Id, OrdSet<Id>>,
    /// User → groups it is a direct member of (a tree: a hash trie costs about 200 bytes an entry at
    /// 100,000 users, a tree about 50).
    pub user_groups: OrdMap<Id, IdSet>,
    /// Directory → users associated directly.
    pub directory_users: HashMap<Id, OrdSet<Id>>,
    /// Directory → user groups bound to it.
    pub directory_groups: HashMap<Id, OrdSet<Id>>,
    /// Manager → direct reports.
    pub reports: OrdMap<Id, IdSet>,
}

fn id(s: &str) -> Id {
    Arc::from(s)
}

// === impl IdSet ===

impl IdSet {
    /// Add `id`; `false` when it was there already.
    pub fn insert(&mut self, id: Id) -> bool {
        match &mut self.0 {
            Ids::None => {
                self.0 = Ids::One(id);
                true
            }
            Ids::One(one) => match (**one).cmp(&*id) {
                std::cmp::Ordering::Equal => false,
                std::cmp::Ordering::Less => {
                    self.0 = Ids::Many(vec![one.clone(), id]);
                    true
                }
                std::cmp::Ordering::Greater => {
                    self.0 = Ids::Many(vec![id, one.clone()]);
                    true
                }
            },
            Ids::Many(ids) => match ids.binary_search(&id) {
                Ok(_) => false,
                Err(at) => {
                    ids.insert(at, id);
                    true
                }
            },
        }
    }

    /// Remove `id`; `false` when it was not there.
    pub fn remove(&mut self, id: &str) -> bool {
        match &mut self.0 {
            Ids::None => false,
            Ids::One(one) if **one == *id => {
                self.0 = Ids::None;
                true
            }
            Ids::One(_) => false,
            Ids::Many(ids) => match ids.binary_search_by(|x| (**x).cmp(id)) {
                Ok(at) => {
                    ids.remove(at);
                    if ids.len() == 1 {
                        self.0 = Ids::One(ids.remove(0));
                    }
                    true
                }
                Err(_) => false,
            },
        }
    }

    pub fn contains(&self, id: &str) -> bool {
        self.as_slice().binary_search_by(|x| (**x).cmp(id)).is_ok()
    }

    pub fn iter(&self) -> std::slice::Iter<'_, Id> {
        self.as_slice().iter()
    }

    pub fn len(&self) -> usize {
        self.as_slice().len()
    }

    pub fn is_empty(&self) -> bool {
        self.as_slice().is_empty()
    }

    fn as_slice(&self) -> &[Id] {
        match &self.0 {
            Ids::None => &[],
            Ids::One(id) => std::slice::from_ref(id),
            Ids::Many(ids) => ids,
        }
    }
}

impl FromIterator<Id> for IdSet {
    fn from_iter<I: IntoIterator<Item = Id>>(iter: I) -> IdSet {
        let mut ids: Vec<Id> = iter.into_iter().collect();
        ids.sort_unstable();
        ids.dedup();
        IdSet(match ids.len() {
            0 => Ids::None,
            1 => Ids::One(ids.remove(0)),
            _ => {
                ids.shrink_to_fit();
                Ids::Many(ids)
            }
        })
    }
}

impl<'a> IntoIterator for &'a IdSet {
    type Item = &'a Id;
    type IntoIter = std::slice::Iter<'a, Id>;
    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

// === impl Data ===

impl Data {
    /// Index a refresh's plain collections, dropping edges to objects the lists did not contain.
    pub fn from_raw(raw: RawDirectory) -> Data {
        // Every id once, so edges share the objects' allocations; a hash lookup is cheaper than the tree's.
        let mut users: StdHashSet<Id> = StdHashSet::with_capacity(raw.users.len());
        let mut groups: StdHashSet<Id> = StdHashSet::with_capacity(raw.groups.len());
        let mut directories: StdHashSet<Id> = StdHashSet::with_capacity(raw.directories.len());
        let mut data = Data::default();
        for u in raw.users {
            let uid = id(&u.id);
            users.insert(uid.clone());
            data.users.insert(uid, PackedUser::pack(&u));
        }
        for g in raw.groups {
            let gid = id(&g.id);
            groups.insert(gid.clone());
            data.groups.insert(gid, Arc::new(g));
        }
        for d in raw.directories {
            let did = id(&d.id);
            directories.insert(did.clone());
            data.directories.insert(did, Arc::new(d));
        }
        let known = |ids: &StdHashSet<Id>, key: &str| ids.get(key).cloned();
        for (gid, uids) in raw.members {
            let Some(gid) = known(&groups, &gid) else {
                continue;
            };
            let set: OrdSet<Id> = uids.iter().filter_map(|u| known(&users, u)).collect();
            if set.is_empty() {
                continue;
            }
            for uid in &set {
                data.user_groups
                    .entry(uid.clone())
                    .or_default()
                    .insert(gid.clone());
            }
            data.members.insert(gid, set);
        }
        for (did, uids) in raw.directory_users {
            let Some(did) = known(&directories, &did) else {
                continue;
            };
            let set: OrdSet<Id> = uids.iter().filter_map(|u| known(&users, u)).collect();
            data.directory_users.insert(did, set);
        }
        for (did, gids) in raw.directory_groups {
            let Some(did) = known(&directories, &did) else {
                continue;
            };
            let set: OrdSet<Id> = gids.iter().filter_map(|g| known(&groups, g)).collect();
            data.directory_groups.insert(did, set);
        }
        data.rebuild_reports();
        data
    }

    pub fn add_member(&mut self, group: &Id, user: &Id) {
        self.members
            .entry(group.clone())
            .or_default()
            .insert(user.clone());
        self.user_groups
            .entry(user.clone())
            .or_default()
            .insert(group.clone());
    }

    pub fn remove_member(&mut self, group: &Id, user: &Id) {
        if let Some(set) = self.members.get_mut(group) {
            set.remove(user);
        }
        if let Some(set) = self.user_groups.get_mut(user) {
            set.remove(group);
        }
    }

    /// Insert or replace a user as JumpCloud returned it, keeping manager → reports in step.
    pub fn put_user(&mut self, user: JcUser) -> Id {
        let uid = self
            .users
            .get_key_value(user.id.as_str())
            .map(|(k, _)| k.clone())
            .unwrap_or_else(|| id(&user.id));
        if let Some(old_manager) = self.users.get(&uid).and_then(PackedUser::manager)
            && let Some(set) = self.reports.get_mut(old_manager)
        {
            set.remove(&uid);
        }
        if let Some(m) = user.manager.as_deref().filter(|m| !m.is_empty()) {
            self.reports.entry(id(m)).or_default().insert(uid.clone());
        }
        self.users.insert(uid.clone(), PackedUser::pack(&user));
        uid
    }

    /// Remove a user and every edge to it; its reports lose their manager (as JumpCloud's
    /// `cascade_manager` does). Returns what the removal touched.
    pub fn remove_user(&mut self, uid: &Id) -> Touched {
        let mut touched = Touched::default();
        touched.users.insert(uid.clone());
        let groups: Vec<Id> = self
            .user_groups
            .get(uid)
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default();
        for g in groups {
            self.remove_member(&g, uid);
            touched.groups.insert(g);
        }
        self.user_groups.remove(uid);
        for (did, set) in self.directory_users.iter_mut() {
            if set.remove(uid).is_some() {
                touched.directories.insert(did.clone());
            }
        }
        let reports: Vec<Id> = self
            .reports
            .get(uid)
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default();
        for r in reports {
            if let Some(u) = self.users.get(&r) {
                let mut u = u.unpack();
                u.manager = None;
                self.users.insert(r.clone(), PackedUser::pack(&u));
                touched.users.insert(r);
            }
        }
        self.reports.remove(uid);
        if let Some(m) = self.users.get(uid).and_then(PackedUser::manager)
            && let Some(set) = self.reports.get_mut(m)
        {
            set.remove(uid);
        }
        self.users.remove(uid);
        touched
    }

    /// Remove a user group and every edge to it. Returns what the removal touched.
    pub fn remove_group(&mut self, gid: &Id) -> Touched {
        let mut touched = Touched::default();
        touched.groups.insert(gid.clone());
        let members: Vec<Id> = self
            .members
            .get(gid)
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default();
        for u in members {
            self.remove_member(gid, &u);
            touched.users.insert(u);
        }
        self.members.remove(gid);
        for (did, set) in self.directory_groups.iter_mut() {
            if set.remove(gid).is_some() {
                touched.directories.insert(did.clone());
            }
        }
        self.groups.remove(gid);
        touched
    }

    /// Recompute manager → reports from the users' `manager` fields.
    pub fn rebuild_reports(&mut self) {
        let mut reports: OrdMap<Id, IdSet> = OrdMap::new();
        for (uid, u) in &self.users {
            if let Some(m) = u.manager() {
                reports.entry(id(m)).or_default().insert(uid.clone());
            }
        }
        self.reports = reports;
    }

    /// Take what `from` (the published data) says about the objects a write `touched`: a refresh that read
    /// JumpCloud before the write landed must not roll the write back.
    pub fn overlay(&mut self, from: &Data, touched: &Touched) {
        for u in &touched.users {
            self.overlay_user(from, u);
        }
        for g in touched.groups.iter().chain(&touched.member_lists) {
            self.overlay_group(from, g);
        }
        for d in &touched.directories {
            self.overlay_directory(from, d);
        }
    }

    /// The user `u` and its edges as `from` has them (its manager's reports kept in step, without
    /// recomputing every manager's).
    fn overlay_user(&mut self, from: &Data, u: &Id) {
        let manager = |d: &Data| d.users.get(u).and_then(PackedUser::manager).map(id);
        let old_manager = manager(self);
        match from.users.get(u) {
            Some(ju) => {
                self.users.insert(u.clone(), ju.clone());
            }
            None => {
                self.users.remove(u);
            }
        }
        let new_manager = manager(self);
        if old_manager != new_manager {
            if let Some(m) = old_manager
                && let Some(set) = self.reports.get_mut(&m)
            {
                set.remove(u);
                if set.is_empty() {
                    self.reports.remove(&m);
                }
            }
            if let Some(m) = new_manager {
                self.reports.entry(m).or_default().insert(u.clone());
            }
        }
        let old: Vec<Id> = self
            .user_groups
            .get(u)
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default();
        for g in old {
            self.remove_member(&g, u);
        }
        for (_, set) in self.directory_users.iter_mut() {
            set.remove(u);
        }
        if !self.users.contains_key(u) {
            self.user_groups.remove(u);
            return;
        }
        for g in from.user_groups.get(u).into_iter().flatten() {
            if self.groups.contains_key(g) {
                self.add_member(g, u);
            }
        }
        for (did, set) in &from.directory_users {
            if set.contains(u) && self.directories.contains_key(did) {
                self.directory_users
                    .entry(did.clone())
                    .or_default()
                    .insert(u.clone());
            }
        }
    }

    /// The group `g`, its members and its directory bindings as `from` has them.
    fn overlay_group(&mut self, from: &Data, g: &Id) {
        let old: Vec<Id> = self
            .members
            .get(g)
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default();
        for u in old {
            self.remove_member(g, &u);
        }
        for (_, set) in self.directory_groups.iter_mut() {
            set.remove(g);
        }
        match from.groups.get(g) {
            Some(jg) => {
                self.groups.insert(g.clone(), jg.clone());
            }
            None => {
                self.groups.remove(g);
                self.members.remove(g);
                return;
            }
        }
        for u in from.members.get(g).into_iter().flatten() {
            if self.users.contains_key(u) {
                self.add_member(g, u);
            }
        }
        for (did, set) in &from.directory_groups {
            if set.contains(g) && self.directories.contains_key(did) {
                self.directory_groups
                    .entry(did.clone())
                    .or_default()
                    .insert(g.clone());
            }
        }
    }

    /// The directory `d`'s associations as `from` has them, limited to objects this data holds.
    fn overlay_directory(&mut self, from: &Data, d: &Id) {
        if !self.directories.contains_key(d) {
            return;
        }
        let users: OrdSet<Id> = from
            .directory_users
            .get(d)
            .into_iter()
            .flatten()
            .filter(|u| self.users.contains_key(*u))
            .cloned()
            .collect();
        let groups: OrdSet<Id> = from
            .directory_groups
            .get(d)
            .into_iter()
            .flatten()
            .filter(|g| self.groups.contains_key(*g))
            .cloned()
            .collect();
        self.directory_users.insert(d.clone(), users);
        self.directory_groups.insert(d.clone(), groups);
    }

    /// Users holding a directory: directly, or through a bound group (`true` = only through a group).
    pub fn directory_holders(&self, dir: &Id) -> Vec<(Id, bool)> {
        let mut out: std::collections::BTreeMap<Id, bool> = std::collections::BTreeMap::new();
        if let Some(groups) = self.directory_groups.get(dir) {
            for g in groups {
                if let Some(members) = self.members.get(g) {
                    for u in members {
                        out.insert(u.clone(), true);
                    }
                }
            }
        }
        if let Some(users) = self.directory_users.get(dir) {
            for u in users {
                out.insert(u.clone(), false);
            }
        }
        out.into_iter().collect()
    }

    /// Directories a user holds, with `true` when held only through a group.
    pub(super) fn user_directories(&self, user: &Id) -> Vec<(Id, bool)> {
        let groups = self.user_groups.get(user);
        let mut out = Vec::new();
        for did in self.directories.keys() {
            let direct = self
                .directory_users
                .get(did)
                .is_some_and(|s| s.contains(user));
            let inherited = !direct
                && groups.is_some_and(|gs| {
                    self.directory_groups
                        .get(did)
                        .is_some_and(|bound| bound.iter().any(|g| gs.contains(g)))
                });
            if direct || inherited {
                out.push((did.clone(), inherited));
            }
        }
        out
    }
}

/// What changed in a write, so only affected entries are derived again.
#[derive(Debug, Default, Clone)]
pub struct Touched {
    pub users: BTreeSet<Id>,
    pub groups: BTreeSet<Id>,
    pub directories: BTreeSet<Id>,
    /// Groups whose member list alone changed: derived again themselves, while their members are not (a
    /// member shows the group's name, which did not change; the members added or removed are in `users`).
    pub member_lists: BTreeSet<Id>,
}

impl Touched {
    /// Add what `other` touched.
    pub fn extend(&mut self, other: &Touched) {
        self.users.extend(other.users.iter().cloned());
        self.groups.extend(other.groups.iter().cloned());
        self.directories.extend(other.directories.iter().cloned());
        self.member_lists.extend(other.member_lists.iter().cloned());
    }

    /// Nothing touched.
    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
            && self.groups.is_empty()
            && self.directories.is_empty()
            && self.member_lists.is_empty()
    }
}
