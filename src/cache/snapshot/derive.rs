//! Deriving SCIM resources from JumpCloud's data: a full build (reusing every entry whose inputs did
//! not change) and the next version after a write (deriving only what the write shows up in).
//!
//! The attribute mapping itself is `crate::mapping`'s; this file decides what to derive and reuse.

use std::collections::BTreeSet;
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use imbl::OrdMap;
use jiff::Timestamp;
use serde_json::{Value, json};

use super::block;
use super::entry::{etag_of, hash_bytes, tape_of};
use super::{
    BuildOptions, Data, Entries, Entry, GroupSource, Id, Indexes, PackedUser, Seen, Snapshot,
    Touched, rfc3339_millis, to_millis,
};
use crate::jumpcloud::{JcDirectory, JcGroup};
use crate::mapping::{self, Entitlement, GroupMember, GroupRef, UserContext};
use crate::scim::ResourceKind;
use crate::scim::attrs;

/// Everything derivation needs to look up while building entries.
struct Ctx<'a> {
    data: &'a Data,
    opts: &'a BuildOptions,
    now: Timestamp,
    /// Previous content times, by (kind, id).
    seen: &'a (dyn Fn(ResourceKind, &str) -> Option<Seen> + Sync),
    /// Previous entries, reused as they are when the content hash is unchanged.
    prev: Option<&'a Snapshot>,
}

/// A fingerprint of derivation inputs (within one process only).
fn fingerprint(parts: &impl std::hash::Hash) -> u64 {
    use std::hash::{BuildHasher, BuildHasherDefault};
    BuildHasherDefault::<std::hash::DefaultHasher>::default().hash_one(parts)
}

/// Above this many users a full build derives them on every core.
pub(super) const PARALLEL_BUILD_USERS: usize = 4_000;

impl Ctx<'_> {
    /// The previous version's entry for `rid`, when it was derived from the same inputs.
    fn reusable(
        &self,
        kind: ResourceKind,
        rid: &Id,
        inputs: u64,
        same_record: impl Fn(&Data) -> bool,
    ) -> Option<Arc<Entry>> {
        let prev = self.prev?;
        let e = prev.get(kind, rid)?;
        (e.inputs == Some(inputs) && same_record(&prev.data)).then(|| e.clone())
    }

    fn finish(
        &self,
        kind: ResourceKind,
        rid: &Id,
        mut resource: Value,
        jc_created: Option<Timestamp>,
        source: Option<GroupSource>,
        inputs: u64,
    ) -> Arc<Entry> {
        // One serialisation serves the content hash and, with `meta` spliced in, the served bytes; what the
        // schemas return only on request is kept beside them, and hashed with them.
        let extra = attrs::split_request_only(&mut resource, kind);
        let body = serde_json::to_vec(&resource).unwrap_or_default();
        let extra_bytes = extra
            .as_ref()
            .map(|x| Bytes::copy_from_slice(&serde_json::to_vec(x).unwrap_or_default()));
        let hash = match &extra_bytes {
            Some(x) => hash_bytes(&[body.as_slice(), x].concat()),
            None => hash_bytes(&body),
        };
        if let Some(prev) = self.prev {
            let map = match kind {
                ResourceKind::User => &prev.users,
                ResourceKind::Group => &prev.groups,
            };
            // An entry restored from disk has no fingerprint yet: it is replaced by one that has (same
            // content, same times), so the builds after this one can reuse it without deriving.
            if let Some(e) = map.get(rid)
                && e.hash == hash
                && e.inputs.is_some()
            {
                return e.clone();
            }
        }
        let seen = (self.seen)(kind, rid);
        let (created, last_modified) = match seen {
            Some(s) if s.hash == hash => (s.created, s.last_modified),
            Some(s) => (jc_created.unwrap_or(s.created), self.now),
            None => (jc_created.unwrap_or(self.now), self.now),
        };
        let etag = etag_of(&hash);
        let meta = json!({
            "resourceType": kind.name(),
            "created": rfc3339_millis(created),
            "lastModified": rfc3339_millis(last_modified),
            "location": format!("{}{}/{}", self.opts.mapping.scim_base, kind.endpoint(), rid),
            "version": etag,
        });
        let mut bytes = body;
        if bytes.last() == Some(&b'}') {
            bytes.pop();
            if bytes.len() > 1 {
                bytes.push(b',');
            }
            bytes.extend_from_slice(b"\"meta\":");
            bytes.extend_from_slice(&serde_json::to_vec(&meta).unwrap_or_default());
            bytes.push(b'}');
        }
        let tape = OnceLock::from(tape_of(&bytes, extra_bytes.as_deref()));
        // One allocation of the exact size, made last: a `Bytes` keeps its vector's whole allocation, and
        // the vector's growth steps are freed here, before the long-lived copy is placed.
        let exact = Bytes::copy_from_slice(&bytes);
        drop(bytes);
        let bytes = exact;
        Arc::new(Entry {
            id: rid.clone(),
            kind,
            group_source: source,
            bytes,
            block: None,
            extra: extra_bytes,
            tape,
            hash,
            created,
            last_modified,
            inputs: Some(inputs),
        })
    }

    /// Every user's entry, split over the cores, with `derive_groups` on a thread of its own.
    fn derive_in_parallel(
        &self,
        derive_groups: impl FnOnce() -> Entries + Send,
    ) -> (Entries, Entries) {
        let items: Vec<(&Id, &PackedUser)> = self.data.users.iter().collect();
        let threads = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .clamp(1, 8);
        let chunk = items.len().div_ceil(threads).max(1);
        std::thread::scope(|scope| {
            let groups = scope.spawn(derive_groups);
            let handles: Vec<_> = items
                .chunks(chunk)
                .map(|part| {
                    scope.spawn(move || {
                        part.iter()
                            .map(|(uid, u)| ((*uid).clone(), self.user_entry(uid, u)))
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            let users: Vec<(Id, Arc<Entry>)> = handles
                .into_iter()
                .flat_map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
                .collect();
            let users = packed(users);
            let groups = groups
                .join()
                .unwrap_or_else(|p| std::panic::resume_unwind(p));
            (users, groups)
        })
    }

    fn user_entry(&self, uid: &Id, packed: &PackedUser) -> Arc<Entry> {
        let data = self.data;
        let mut groups: Vec<GroupRef> = data
            .user_groups
            .get(uid)
            .into_iter()
            .flatten()
            .filter_map(|g| {
                data.groups.get(g).map(|jg| GroupRef {
                    id: g.to_string(),
                    display: jg.name.clone(),
                    indirect: false,
                })
            })
            .collect();
        let mut entitlements = Vec::new();
        for (did, inherited) in data.user_directories(uid) {
            let Some(dir) = data.directories.get(&did) else {
                continue;
            };
            let Some(kind) = mapping::directory_type_name(&dir.kind) else {
                continue;
            };
            let display = mapping::directory_display(dir);
            if self.opts.directories_as_groups {
                groups.push(GroupRef {
                    id: did.to_string(),
                    display: display.clone(),
                    indirect: inherited,
                });
            }
            entitlements.push(Entitlement {
                value: did.to_string(),
                display,
                kind,
            });
        }
        groups.sort();
        let inputs = fingerprint(&(&groups, &entitlements));
        let same_record = |d: &Data| d.users.get(uid).is_some_and(|p| p.same(packed));
        if let Some(e) = self.reusable(ResourceKind::User, uid, inputs, same_record) {
            return e;
        }
        let ctx = UserContext {
            groups: &groups,
            entitlements: &entitlements,
        };
        let user = packed.unpack();
        let resource = mapping::user_to_scim(&user, &ctx, &self.opts.mapping);
        let created = user
            .created
            .as_deref()
            .and_then(|c| c.parse::<Timestamp>().ok())
            .map(to_millis);
        self.finish(ResourceKind::User, uid, resource, created, None, inputs)
    }

    fn member_list(&self, users: impl IntoIterator<Item = Id>) -> Vec<GroupMember> {
        users
            .into_iter()
            .filter_map(|u| {
                self.data
                    .users
                    .contains_key(&u)
                    .then(|| GroupMember { id: u.to_string() })
            })
            .collect()
    }

    fn group_entry(&self, gid: &Id, group: &Arc<JcGroup>) -> Arc<Entry> {
        let members = self.member_list(self.data.members.get(gid).into_iter().flatten().cloned());
        let inputs = fingerprint(&members);
        let same_record = |d: &Data| {
            d.groups
                .get(gid)
                .is_some_and(|p| Arc::ptr_eq(p, group) || **p == **group)
        };
        if let Some(e) = self.reusable(ResourceKind::Group, gid, inputs, same_record) {
            return e;
        }
        let resource = mapping::group_to_scim(group, &members, &self.opts.mapping);
        self.finish(
            ResourceKind::Group,
            gid,
            resource,
            None,
            Some(GroupSource::UserGroup),
            inputs,
        )
    }

    fn directory_entry(&self, did: &Id, dir: &Arc<JcDirectory>) -> Option<Arc<Entry>> {
        let holders =
            self.member_list(self.data.directory_holders(did).into_iter().map(|(u, _)| u));
        let inputs = fingerprint(&holders);
        let same_record = |d: &Data| {
            d.directories
                .get(did)
                .is_some_and(|p| Arc::ptr_eq(p, dir) || **p == **dir)
        };
        if let Some(e) = self.reusable(ResourceKind::Group, did, inputs, same_record) {
            return Some(e);
        }
        let resource = mapping::directory_to_scim(dir, &holders, &self.opts.mapping)?;
        Some(self.finish(
            ResourceKind::Group,
            did,
            resource,
            None,
            Some(GroupSource::Directory),
            inputs,
        ))
    }
}

/// `entries` (in id order) as a map, the ones this build derived packed into blocks ([`block::pack`]).
fn packed(entries: Vec<(Id, Arc<Entry>)>) -> Entries {
    let (ids, mut list): (Vec<Id>, Vec<Arc<Entry>>) = entries.into_iter().unzip();
    block::pack(&mut list);
    ids.into_iter().zip(list).collect()
}

impl Snapshot {
    /// `seen` supplies content times of resources `prev` does not hold (a snapshot loaded from disk).
    pub fn build(
        data: Data,
        version: u64,
        taken_at: Timestamp,
        now: Timestamp,
        opts: &BuildOptions,
        prev: Option<&Snapshot>,
        seen: &(dyn Fn(ResourceKind, &str) -> Option<Seen> + Sync),
    ) -> Snapshot {
        let prev_seen = |kind: ResourceKind, rid: &str| -> Option<Seen> {
            if let Some(seen) = prev.and_then(|p| p.seen(kind, rid)) {
                return Some(seen);
            }
            seen(kind, rid)
        };
        let ctx = Ctx {
            data: &data,
            opts,
            now: to_millis(now),
            seen: &prev_seen,
            prev,
        };
        // Groups (one may list every user) derive beside the users rather than after them.
        let derive_groups = || {
            let mut groups = OrdMap::new();
            for (gid, g) in &data.groups {
                groups.insert(gid.clone(), ctx.group_entry(gid, g));
            }
            if opts.directories_as_groups {
                for (did, d) in &data.directories {
                    if let Some(e) = ctx.directory_entry(did, d) {
                        groups.insert(did.clone(), e);
                    }
                }
            }
            packed(groups.into_iter().collect())
        };
        let (users, groups) = if data.users.len() > PARALLEL_BUILD_USERS {
            ctx.derive_in_parallel(derive_groups)
        } else {
            let users = data
                .users
                .iter()
                .map(|(uid, u)| (uid.clone(), ctx.user_entry(uid, u)))
                .collect();
            (packed(users), derive_groups())
        };
        let mut snap = Snapshot {
            version,
            taken_at,
            data,
            serving_only: false,
            users,
            groups,
            indexes: Indexes::default(),
            user_list: OnceLock::new(),
            group_list: OnceLock::new(),
            user_stretches: OnceLock::new(),
            group_stretches: OnceLock::new(),
        };
        snap.reindex_all();
        snap
    }

    /// A new version after a write: `data` is this version's data with the write applied; only the entries
    /// `touched` (and those whose representation shows them: their groups, members and reports) are derived again.
    pub fn with_changes(
        &self,
        data: Data,
        touched: &Touched,
        version: u64,
        now: Timestamp,
        opts: &BuildOptions,
    ) -> Snapshot {
        let prev_seen = |kind: ResourceKind, rid: &str| self.seen(kind, rid);
        let ctx = Ctx {
            data: &data,
            opts,
            now: to_millis(now),
            seen: &prev_seen,
            prev: Some(self),
        };
        let (users, group_ids) = self.shown_in(&data, touched);
        let mut next = Snapshot {
            version,
            taken_at: self.taken_at,
            data: data.clone(),
            serving_only: false,
            users: self.users.clone(),
            groups: self.groups.clone(),
            indexes: self.indexes.clone(),
            user_list: OnceLock::new(),
            group_list: OnceLock::new(),
            user_stretches: OnceLock::new(),
            group_stretches: OnceLock::new(),
        };
        for u in &users {
            let old = next.users.get(u).cloned();
            match data.users.get(u) {
                Some(ju) => {
                    let e = ctx.user_entry(u, ju);
                    next.reindex(old.as_deref(), &e);
                    next.users.insert(u.clone(), e);
                }
                None => {
                    if let Some(old) = old {
                        next.unindex(&old);
                    }
                    next.users.remove(u);
                }
            }
        }
        for g in &group_ids {
            let old = next.groups.get(g).cloned();
            let entry = if let Some(jg) = data.groups.get(g) {
                Some(ctx.group_entry(g, jg))
            } else if let (true, Some(d)) = (opts.directories_as_groups, data.directories.get(g)) {
                ctx.directory_entry(g, d)
            } else {
                None
            };
            match entry {
                Some(e) => {
                    next.reindex(old.as_deref(), &e);
                    next.groups.insert(g.clone(), e);
                }
                None => {
                    if let Some(old) = old {
                        next.unindex(&old);
                    }
                    next.groups.remove(g);
                }
            }
        }
        next
    }

    /// The users and groups whose representation shows what a write `touched` (in `data`, the data with the
    /// write applied, or in this version's): they are derived again.
    ///
    /// A group or a directory listed as a group shows its members' ids alone, so a touched user's groups and
    /// directories are derived again only where the user joined, left, appeared or went; a user's title
    /// changed in a group of 100,000 leaves the group (and every other holder of its directories) as it is.
    fn shown_in(&self, data: &Data, touched: &Touched) -> (BTreeSet<Id>, BTreeSet<Id>) {
        let mut users: BTreeSet<Id> = touched.users.clone();
        let mut groups: BTreeSet<Id> = touched.groups.clone();
        // Directories whose holders show them (a directory changed, or a group bound to it).
        let mut dirs: BTreeSet<Id> = touched.directories.clone();
        // Groups and directories whose member list changed alone: derived again, their members not.
        let mut lists: BTreeSet<Id> = BTreeSet::new();
        for u in &touched.users {
            // Reports show their manager's name.
            for r in data
                .reports
                .get(u)
                .into_iter()
                .flatten()
                .chain(self.data.reports.get(u).into_iter().flatten())
            {
                users.insert(r.clone());
            }
            let moved = self.data.users.contains_key(u) != data.users.contains_key(u);
            let (before, after) = (self.data.user_groups.get(u), data.user_groups.get(u));
            let held = |set: Option<&super::IdSet>, g: &Id| set.is_some_and(|s| s.contains(g));
            for g in before
                .into_iter()
                .flatten()
                .chain(after.into_iter().flatten())
            {
                if moved || held(before, g) != held(after, g) {
                    groups.insert(g.clone());
                }
            }
            let (before, after) = (self.data.user_directories(u), data.user_directories(u));
            let holds = |list: &[(Id, bool)], d: &Id| list.iter().any(|(x, _)| x == d);
            for (d, _) in before.iter().chain(after.iter()) {
                if moved || holds(&before, d) != holds(&after, d) {
                    lists.insert(d.clone());
                }
            }
        }
        for g in &touched.groups {
            // Members show the group's name (and directories it grants).
            for u in data
                .members
                .get(g)
                .into_iter()
                .flatten()
                .chain(self.data.members.get(g).into_iter().flatten())
            {
                users.insert(u.clone());
            }
            for (did, bound) in data.directory_groups.iter() {
                if bound.contains(g) {
                    dirs.insert(did.clone());
                }
            }
        }
        for d in &dirs {
            for (u, _) in data
                .directory_holders(d)
                .into_iter()
                .chain(self.data.directory_holders(d))
            {
                users.insert(u);
            }
        }
        // A member list that changed alone: the group (and a directory it is bound to, whose holders it
        // changes) is derived again, but not every member; those added or removed are in `users`.
        for g in &touched.member_lists {
            lists.insert(g.clone());
            for (did, bound) in data.directory_groups.iter() {
                if bound.contains(g) {
                    lists.insert(did.clone());
                }
            }
        }
        let group_ids = groups.into_iter().chain(dirs).chain(lists).collect();
        (users, group_ids)
    }
}
