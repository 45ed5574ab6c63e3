//! The immutable snapshot of the directory that every read is answered from.
//!
//! A [`Snapshot`] holds JumpCloud's data as persistent maps ([`Data`]) and the SCIM resources derived from
//! it ([`Entry`]: the JSON, its serialised bytes, its ETag and its `meta` times), with the indexes reads
//! need. Versions share everything that did not change: the maps are `imbl` persistent maps (a clone is
//! O(1), an update O(log n)) and each resource is an `Arc<Entry>` reused as long as its content hash is
//! unchanged. That is also how `meta.lastModified` works: JumpCloud keeps no modification time, so an
//! entry's `lastModified` is the time we first saw its current content.
//!
//! This module knows the JumpCloud DTOs only as data handed to `crate::mapping`; it does no IO.

use std::collections::{BTreeSet, HashMap as StdHashMap, HashSet as StdHashSet};
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use imbl::{HashMap, OrdMap, OrdSet};
use jiff::Timestamp;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::jumpcloud::{JcDirectory, JcGroup, JcUser};
use crate::mapping::{self, Entitlement, GroupMember, GroupRef, MappingOptions, UserContext};
use crate::scim::ResourceKind;
use crate::scim::attrs;

/// Ids are shared strings: every map and index holds the same allocation.
pub type Id = Arc<str>;

/// The resources of one kind, by id.
pub type Entries = OrdMap<Id, Arc<Entry>>;

/// A small set of ids in order: what an index key or a user's edges hold (one name, a few groups). A sorted
/// vector, so it costs one allocation where a tree set costs a node per set; large sets (a group's members)
/// stay `OrdSet`s.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IdSet(Vec<Id>);

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
    pub users: OrdMap<Id, Arc<JcUser>>,
    pub groups: OrdMap<Id, Arc<JcGroup>>,
    pub directories: OrdMap<Id, Arc<JcDirectory>>,
    /// Group → member users.
    pub members: HashMap<Id, OrdSet<Id>>,
    /// User → groups it is a direct member of.
    pub user_groups: HashMap<Id, IdSet>,
    /// Directory → users associated directly.
    pub directory_users: HashMap<Id, OrdSet<Id>>,
    /// Directory → user groups bound to it.
    pub directory_groups: HashMap<Id, OrdSet<Id>>,
    /// Manager → direct reports.
    pub reports: HashMap<Id, IdSet>,
}

/// Which resource type an entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    User,
    Group,
}

impl Kind {
    pub fn resource_type(self) -> &'static str {
        match self {
            Kind::User => "User",
            Kind::Group => "Group",
        }
    }
    pub fn endpoint(self) -> &'static str {
        match self {
            Kind::User => "Users",
            Kind::Group => "Groups",
        }
    }
}

/// The SCIM resource kind of an entry kind.
fn resource_kind(kind: Kind) -> ResourceKind {
    match kind {
        Kind::User => ResourceKind::User,
        Kind::Group => ResourceKind::Group,
    }
}

/// Where a Group entry comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupSource {
    UserGroup,
    Directory,
}

/// One SCIM resource of one snapshot version, with everything that depends only on its content.
#[derive(Debug)]
pub struct Entry {
    pub id: Id,
    pub kind: Kind,
    /// For groups: a JumpCloud user group or a directory listed as a group.
    pub group_source: Option<GroupSource>,
    /// The full resource, `meta` included: set when the entry is derived, parsed from `bytes` on first use
    /// when it was restored from disk.
    json: OnceLock<Value>,
    /// The resource serialised once, for answers with the default attribute set: without the attributes
    /// the schemas return only on request.
    pub bytes: Bytes,
    /// Those attributes (JSON, shaped like the resource), merged into [`Entry::json`].
    pub extra: Option<Bytes>,
    /// Weak ETag from the content (equal to `meta.version`).
    pub etag: String,
    /// Hash of the content without `meta`.
    pub hash: [u8; 16],
    pub created: Timestamp,
    pub last_modified: Timestamp,
    /// Fingerprint of what the entry was derived from besides its own JumpCloud record (group names,
    /// directory holdings, the manager's name, members' names): with an equal record, an equal fingerprint
    /// means the entry can be reused without deriving it again. Only compared within one process: `None` for
    /// an entry restored from disk, which the next build derives again before it is reused by fingerprint.
    pub inputs: Option<u64>,
}

/// Content times carried across refreshes (and, with persistence, restarts).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seen {
    pub hash: [u8; 16],
    pub created: Timestamp,
    pub last_modified: Timestamp,
}

/// Case-insensitive and exact lookups for indexed filters.
#[derive(Debug, Clone, Default)]
pub struct Indexes {
    /// Lower-cased served userName → user.
    pub user_name: Index,
    /// Lower-cased email (primary and alternate) → users.
    pub email: Index,
    /// externalId (case-exact) → users.
    pub user_external_id: Index,
    /// Lower-cased employeeNumber → users.
    pub employee_number: Index,
    /// Lower-cased displayName → groups.
    pub group_name: Index,
    /// externalId (case-exact) → groups.
    pub group_external_id: Index,
    /// Member user → Group entries listing it (user groups and directory groups).
    pub member_of: Index,
}

/// One published version of the directory. Immutable once built.
#[derive(Debug)]
pub struct Snapshot {
    /// Grows with each published snapshot.
    pub version: u64,
    /// When the data was read from JumpCloud (the snapshot's age counts from here).
    pub taken_at: Timestamp,
    /// JumpCloud's data; empty in a serving-only version.
    pub data: Data,
    /// Restored from disk without its data yet ([`Snapshot::serving`]).
    serving_only: bool,
    pub users: Entries,
    pub groups: Entries,
    pub indexes: Indexes,
    user_list: OnceLock<Arc<[Arc<Entry>]>>,
    group_list: OnceLock<Arc<[Arc<Entry>]>>,
}

/// What a snapshot build needs besides the data.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    pub mapping: MappingOptions,
    pub directories_as_groups: bool,
}

fn id(s: &str) -> Id {
    Arc::from(s)
}

fn lower(s: &str) -> Arc<str> {
    Arc::from(s.to_lowercase().as_str())
}

// === impl IdSet ===

impl IdSet {
    /// Add `id`; `false` when it was there already.
    pub fn insert(&mut self, id: Id) -> bool {
        match self.0.binary_search(&id) {
            Ok(_) => false,
            Err(at) => {
                self.0.insert(at, id);
                true
            }
        }
    }

    /// Remove `id`; `false` when it was not there.
    pub fn remove(&mut self, id: &str) -> bool {
        match self.0.binary_search_by(|x| (**x).cmp(id)) {
            Ok(at) => {
                self.0.remove(at);
                true
            }
            Err(_) => false,
        }
    }

    pub fn contains(&self, id: &str) -> bool {
        self.0.binary_search_by(|x| (**x).cmp(id)).is_ok()
    }

    pub fn iter(&self) -> std::slice::Iter<'_, Id> {
        self.0.iter()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl FromIterator<Id> for IdSet {
    fn from_iter<I: IntoIterator<Item = Id>>(iter: I) -> IdSet {
        let mut ids: Vec<Id> = iter.into_iter().collect();
        ids.sort_unstable();
        ids.dedup();
        IdSet(ids)
    }
}

impl<'a> IntoIterator for &'a IdSet {
    type Item = &'a Id;
    type IntoIter = std::slice::Iter<'a, Id>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
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
            data.users.insert(uid, Arc::new(u));
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
        if let Some(old_manager) = self
            .users
            .get(&uid)
            .and_then(|u| u.manager.clone())
            .filter(|m| !m.is_empty())
            && let Some(set) = self.reports.get_mut(old_manager.as_str())
        {
            set.remove(&uid);
        }
        if let Some(m) = user.manager.as_deref().filter(|m| !m.is_empty()) {
            self.reports.entry(id(m)).or_default().insert(uid.clone());
        }
        self.users.insert(uid.clone(), Arc::new(user));
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
                let mut u = (**u).clone();
                u.manager = None;
                self.users.insert(r.clone(), Arc::new(u));
                touched.users.insert(r);
            }
        }
        self.reports.remove(uid);
        if let Some(m) = self.users.get(uid).and_then(|u| u.manager.clone())
            && let Some(set) = self.reports.get_mut(m.as_str())
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
        let mut reports: HashMap<Id, IdSet> = HashMap::new();
        for (uid, u) in &self.users {
            if let Some(m) = u.manager.as_deref().filter(|m| !m.is_empty()) {
                reports.entry(id(m)).or_default().insert(uid.clone());
            }
        }
        self.reports = reports;
    }

    /// Take what `from` (the published data) says about the objects a write `touched`: a refresh that read
    /// JumpCloud before the write landed must not roll the write back.
    pub fn overlay(&mut self, from: &Data, touched: &Touched) {
        for u in &touched.users {
            match from.users.get(u) {
                Some(ju) => {
                    self.users.insert(u.clone(), ju.clone());
                }
                None => {
                    self.users.remove(u);
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
                continue;
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
        for g in &touched.groups {
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
                    continue;
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
        for d in &touched.directories {
            if !self.directories.contains_key(d) {
                continue;
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
        self.rebuild_reports();
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
    fn user_directories(&self, user: &Id) -> Vec<(Id, bool)> {
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

// === impl Indexes ===

/// One index: a key → the entries it names.
pub type Index = HashMap<Arc<str>, IdSet>;

impl Indexes {
    /// How many indexes there are, in the order of [`Indexes::as_array`].
    pub const COUNT: usize = 7;

    /// Every index in a fixed order, with the kind of entry its values name.
    pub fn as_array(&self) -> [(&Index, Kind); Self::COUNT] {
        [
            (&self.user_name, Kind::User),
            (&self.email, Kind::User),
            (&self.user_external_id, Kind::User),
            (&self.employee_number, Kind::User),
            (&self.group_name, Kind::Group),
            (&self.group_external_id, Kind::Group),
            (&self.member_of, Kind::Group),
        ]
    }

    /// The indexes from [`Indexes::as_array`]'s order.
    pub fn from_array(maps: [Index; Self::COUNT]) -> Indexes {
        let [
            user_name,
            email,
            user_external_id,
            employee_number,
            group_name,
            group_external_id,
            member_of,
        ] = maps;
        Indexes {
            user_name,
            email,
            user_external_id,
            employee_number,
            group_name,
            group_external_id,
            member_of,
        }
    }
}

// === impl Entry ===

impl Entry {
    /// An entry as it was served before a restart: its bytes and content times, without deriving it.
    pub fn restored(
        id: Id,
        kind: Kind,
        group_source: Option<GroupSource>,
        bytes: Bytes,
        extra: Option<Bytes>,
        seen: Seen,
    ) -> Entry {
        Entry {
            id,
            kind,
            group_source,
            json: OnceLock::new(),
            bytes,
            extra,
            etag: etag_of(&seen.hash),
            hash: seen.hash,
            created: seen.created,
            last_modified: seen.last_modified,
            inputs: None,
        }
    }

    /// The full resource, `meta` included.
    pub fn json(&self) -> &Value {
        // The bytes are what serde_json wrote (checked by the snapshot file's checksum when restored), so
        // they parse.
        self.json.get_or_init(|| {
            let mut v = serde_json::from_slice(&self.bytes).unwrap_or(Value::Null);
            if let Some(extra) = self
                .extra
                .as_ref()
                .and_then(|x| serde_json::from_slice::<Value>(x).ok())
            {
                attrs::merge_request_only(&mut v, &extra, resource_kind(self.kind));
            }
            v
        })
    }

    /// The content hash and times, carried to the next version of this resource.
    pub fn seen(&self) -> Seen {
        Seen {
            hash: self.hash,
            created: self.created,
            last_modified: self.last_modified,
        }
    }
}

// === impl Snapshot ===

/// Whether a comma-separated list of entity tags (an `If-Match` or `If-None-Match` value) names `etag`,
/// compared weakly; `*` names any.
pub fn etag_listed(list: &str, etag: &str) -> bool {
    let bare = |t: &str| t.trim().trim_start_matches("W/").to_string();
    list.split(',')
        .any(|t| t.trim() == "*" || bare(t) == bare(etag))
}

/// The ETag (and `meta.version`) of a content hash.
fn etag_of(hash: &[u8; 16]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(24);
    s.push_str("W/\"");
    for b in &hash[..10] {
        s.push(HEX[usize::from(b >> 4)] as char);
        s.push(HEX[usize::from(b & 0xf)] as char);
    }
    s.push('"');
    s
}

fn hash_bytes(bytes: &[u8]) -> [u8; 16] {
    let digest = Sha256::digest(bytes);
    let mut out = [0u8; 16];
    out.copy_from_slice(&digest[..16]);
    out
}

/// RFC 3339 in UTC with milliseconds, the precision JumpCloud's `created` has and clients parse.
pub fn rfc3339_millis(t: Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// Times are kept at millisecond precision, so that a `meta.lastModified gt "<served value>"` filter
/// never matches the resource it was read from.
pub fn to_millis(t: Timestamp) -> Timestamp {
    Timestamp::from_millisecond(t.as_millisecond()).unwrap_or(t)
}

/// The index an `index_keys` key goes to.
fn index_map(i: &mut Indexes, which: u8) -> &mut Index {
    match which {
        0 => &mut i.user_name,
        1 => &mut i.email,
        2 => &mut i.user_external_id,
        3 => &mut i.employee_number,
        4 => &mut i.group_name,
        5 => &mut i.group_external_id,
        _ => &mut i.member_of,
    }
}

/// Everything derivation needs to look up while building entries.
struct Ctx<'a> {
    data: &'a Data,
    opts: &'a BuildOptions,
    now: Timestamp,
    /// Previous content times, by (kind, id).
    seen: &'a (dyn Fn(Kind, &str) -> Option<Seen> + Sync),
    /// Previous entries, reused as they are when the content hash is unchanged.
    prev: Option<&'a Snapshot>,
}

/// A fingerprint of derivation inputs (within one process only).
fn fingerprint(parts: &impl std::hash::Hash) -> u64 {
    use std::hash::{BuildHasher, BuildHasherDefault};
    BuildHasherDefault::<std::hash::DefaultHasher>::default().hash_one(parts)
}

/// Above this many users a full build derives them on every core.
const PARALLEL_BUILD_USERS: usize = 4_000;

impl Ctx<'_> {
    /// The previous version's entry for `rid`, when it was derived from the same inputs.
    fn reusable(
        &self,
        kind: Kind,
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
        kind: Kind,
        rid: &Id,
        mut resource: Value,
        jc_created: Option<Timestamp>,
        source: Option<GroupSource>,
        inputs: u64,
    ) -> Arc<Entry> {
        // One serialisation serves the content hash and, with `meta` spliced in, the served bytes; what the
        // schemas return only on request is kept beside them, and hashed with them.
        let extra = attrs::split_request_only(&mut resource, resource_kind(kind));
        let body = serde_json::to_vec(&resource).unwrap_or_default();
        let extra_bytes = extra
            .as_ref()
            .map(|x| Bytes::from(serde_json::to_vec(x).unwrap_or_default()));
        let hash = match &extra_bytes {
            Some(x) => hash_bytes(&[body.as_slice(), x].concat()),
            None => hash_bytes(&body),
        };
        if let Some(x) = &extra {
            attrs::merge_request_only(&mut resource, x, resource_kind(kind));
        }
        if let Some(prev) = self.prev {
            let map = match kind {
                Kind::User => &prev.users,
                Kind::Group => &prev.groups,
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
            "resourceType": kind.resource_type(),
            "created": rfc3339_millis(created),
            "lastModified": rfc3339_millis(last_modified),
            "location": format!("{}/{}/{}", self.opts.mapping.scim_base, kind.endpoint(), rid),
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
        if let Value::Object(map) = &mut resource {
            map.insert("meta".into(), meta);
        }
        let bytes = Bytes::from(bytes);
        Arc::new(Entry {
            id: rid.clone(),
            kind,
            group_source: source,
            json: OnceLock::from(resource),
            bytes,
            extra: extra_bytes,
            etag,
            hash,
            created,
            last_modified,
            inputs: Some(inputs),
        })
    }

    fn user_entry(&self, uid: &Id, user: &Arc<JcUser>) -> Arc<Entry> {
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
        let same_record = |d: &Data| {
            d.users
                .get(uid)
                .is_some_and(|p| Arc::ptr_eq(p, user) || **p == **user)
        };
        if let Some(e) = self.reusable(Kind::User, uid, inputs, same_record) {
            return e;
        }
        let ctx = UserContext {
            groups: &groups,
            entitlements: &entitlements,
        };
        let resource = mapping::user_to_scim(user, &ctx, &self.opts.mapping);
        let created = user
            .created
            .as_deref()
            .and_then(|c| c.parse::<Timestamp>().ok())
            .map(to_millis);
        self.finish(Kind::User, uid, resource, created, None, inputs)
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
        if let Some(e) = self.reusable(Kind::Group, gid, inputs, same_record) {
            return e;
        }
        let resource = mapping::group_to_scim(group, &members, &self.opts.mapping);
        self.finish(
            Kind::Group,
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
        if let Some(e) = self.reusable(Kind::Group, did, inputs, same_record) {
            return Some(e);
        }
        let resource = mapping::directory_to_scim(dir, &holders, &self.opts.mapping)?;
        Some(self.finish(
            Kind::Group,
            did,
            resource,
            None,
            Some(GroupSource::Directory),
            inputs,
        ))
    }
}

/// What changed in a write, so only affected entries are derived again.
#[derive(Debug, Default, Clone)]
pub struct Touched {
    pub users: BTreeSet<Id>,
    pub groups: BTreeSet<Id>,
    pub directories: BTreeSet<Id>,
}

impl Touched {
    /// Add what `other` touched.
    pub fn extend(&mut self, other: &Touched) {
        self.users.extend(other.users.iter().cloned());
        self.groups.extend(other.groups.iter().cloned());
        self.directories.extend(other.directories.iter().cloned());
    }

    /// Nothing touched.
    pub fn is_empty(&self) -> bool {
        self.users.is_empty() && self.groups.is_empty() && self.directories.is_empty()
    }
}

impl Snapshot {
    /// An empty snapshot (version 0), the base of the first build.
    pub fn empty() -> Snapshot {
        Snapshot {
            version: 0,
            taken_at: Timestamp::UNIX_EPOCH,
            data: Data::default(),
            serving_only: false,
            users: OrdMap::new(),
            groups: OrdMap::new(),
            indexes: Indexes::default(),
            user_list: OnceLock::new(),
            group_list: OnceLock::new(),
        }
    }

    /// A snapshot serving entries restored from disk, with the indexes they had, before JumpCloud's data
    /// behind them is restored: enough for every read, not for a write ([`Snapshot::is_serving_only`]).
    pub fn serving(
        version: u64,
        taken_at: Timestamp,
        users: Entries,
        groups: Entries,
        indexes: Indexes,
    ) -> Snapshot {
        Snapshot {
            version,
            taken_at,
            data: Data::default(),
            serving_only: true,
            users,
            groups,
            indexes,
            user_list: OnceLock::new(),
            group_list: OnceLock::new(),
        }
    }

    /// The same version with JumpCloud's data behind its entries: complete.
    pub fn with_data(&self, data: Data) -> Snapshot {
        Snapshot {
            version: self.version,
            taken_at: self.taken_at,
            data,
            serving_only: false,
            users: self.users.clone(),
            groups: self.groups.clone(),
            indexes: self.indexes.clone(),
            user_list: OnceLock::new(),
            group_list: OnceLock::new(),
        }
    }

    /// Whether this version lacks JumpCloud's data (see [`Snapshot::serving`]). Writes wait for a complete
    /// version; a build that starts from it finds no record to reuse entries by, so derives them all.
    pub fn is_serving_only(&self) -> bool {
        self.serving_only
    }

    /// Derive every resource from `data`. Entries whose content is unchanged since `prev` are shared with it;
    /// `seen` supplies content times of resources `prev` does not hold (a snapshot loaded from disk).
    pub fn build(
        data: Data,
        version: u64,
        taken_at: Timestamp,
        now: Timestamp,
        opts: &BuildOptions,
        prev: Option<&Snapshot>,
        seen: &(dyn Fn(Kind, &str) -> Option<Seen> + Sync),
    ) -> Snapshot {
        let prev_seen = |kind: Kind, rid: &str| -> Option<Seen> {
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
            groups
        };
        let (users, groups): (OrdMap<Id, Arc<Entry>>, OrdMap<Id, Arc<Entry>>) =
            if data.users.len() > PARALLEL_BUILD_USERS {
                // Users derive independently: split them over the cores.
                let items: Vec<(&Id, &Arc<JcUser>)> = data.users.iter().collect();
                let threads = std::thread::available_parallelism()
                    .map_or(1, |n| n.get())
                    .clamp(1, 8);
                let chunk = items.len().div_ceil(threads);
                std::thread::scope(|scope| {
                    let ctx = &ctx;
                    let groups = scope.spawn(derive_groups);
                    let handles: Vec<_> = items
                        .chunks(chunk)
                        .map(|part| {
                            scope.spawn(move || {
                                part.iter()
                                    .map(|(uid, u)| ((*uid).clone(), ctx.user_entry(uid, u)))
                                    .collect::<Vec<_>>()
                            })
                        })
                        .collect();
                    let users = handles
                        .into_iter()
                        .flat_map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
                        .collect();
                    let groups = groups
                        .join()
                        .unwrap_or_else(|p| std::panic::resume_unwind(p));
                    (users, groups)
                })
            } else {
                let users = data
                    .users
                    .iter()
                    .map(|(uid, u)| (uid.clone(), ctx.user_entry(uid, u)))
                    .collect();
                (users, derive_groups())
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
        let prev_seen = |kind: Kind, rid: &str| self.seen(kind, rid);
        let ctx = Ctx {
            data: &data,
            opts,
            now: to_millis(now),
            seen: &prev_seen,
            prev: Some(self),
        };
        // Expand what a change shows up in.
        let mut users: BTreeSet<Id> = touched.users.clone();
        let mut groups: BTreeSet<Id> = touched.groups.clone();
        let mut dirs: BTreeSet<Id> = touched.directories.clone();
        for u in &touched.users {
            // Reports show their manager's name; groups and directories show their members' names.
            for r in data
                .reports
                .get(u)
                .into_iter()
                .flatten()
                .chain(self.data.reports.get(u).into_iter().flatten())
            {
                users.insert(r.clone());
            }
            for g in data
                .user_groups
                .get(u)
                .into_iter()
                .flatten()
                .chain(self.data.user_groups.get(u).into_iter().flatten())
            {
                groups.insert(g.clone());
            }
            for (did, _) in data
                .user_directories(u)
                .into_iter()
                .chain(self.data.user_directories(u))
            {
                dirs.insert(did);
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
        };
        for u in &users {
            if let Some(old) = next.users.get(u).cloned() {
                next.unindex(&old);
            }
            match data.users.get(u) {
                Some(ju) => {
                    let e = ctx.user_entry(u, ju);
                    next.index(&e);
                    next.users.insert(u.clone(), e);
                }
                None => {
                    next.users.remove(u);
                }
            }
        }
        let group_ids: BTreeSet<Id> = groups.into_iter().chain(dirs).collect();
        for g in &group_ids {
            if let Some(old) = next.groups.get(g).cloned() {
                next.unindex(&old);
            }
            let entry = if let Some(jg) = data.groups.get(g) {
                Some(ctx.group_entry(g, jg))
            } else if let (true, Some(d)) = (opts.directories_as_groups, data.directories.get(g)) {
                ctx.directory_entry(g, d)
            } else {
                None
            };
            match entry {
                Some(e) => {
                    next.index(&e);
                    next.groups.insert(g.clone(), e);
                }
                None => {
                    next.groups.remove(g);
                }
            }
        }
        next
    }

    /// Index every entry. Users and groups feed disjoint indexes, so they are built on two threads.
    fn reindex_all(&mut self) {
        let of = |entries: &OrdMap<Id, Arc<Entry>>| {
            let mut idx = Indexes::default();
            for e in entries.values() {
                for (which, key) in Self::index_keys(e) {
                    index_map(&mut idx, which)
                        .entry(key)
                        .or_default()
                        .insert(e.id.clone());
                }
            }
            idx
        };
        let (u, g) = std::thread::scope(|scope| {
            let users = scope.spawn(|| of(&self.users));
            let g = of(&self.groups);
            (
                users
                    .join()
                    .unwrap_or_else(|p| std::panic::resume_unwind(p)),
                g,
            )
        });
        self.indexes = Indexes {
            user_name: u.user_name,
            email: u.email,
            user_external_id: u.user_external_id,
            employee_number: u.employee_number,
            group_name: g.group_name,
            group_external_id: g.group_external_id,
            member_of: g.member_of,
        };
    }

    fn index_keys(e: &Entry) -> Vec<(u8, Arc<str>)> {
        let j = e.json();
        let mut keys = Vec::new();
        match e.kind {
            Kind::User => {
                if let Some(u) = j.get("userName").and_then(Value::as_str) {
                    keys.push((0, lower(u)));
                }
                for em in j
                    .get("emails")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    if let Some(v) = em.get("value").and_then(Value::as_str) {
                        keys.push((1, lower(v)));
                    }
                }
                if let Some(x) = j.get("externalId").and_then(Value::as_str) {
                    keys.push((2, Arc::from(x)));
                }
                if let Some(n) = j.pointer("/urn:ietf:params:scim:schemas:extension:enterprise:2.0:User/employeeNumber").and_then(Value::as_str) {
                    keys.push((3, lower(n)));
                }
            }
            Kind::Group => {
                if let Some(n) = j.get("displayName").and_then(Value::as_str) {
                    keys.push((4, lower(n)));
                }
                if let Some(x) = j.get("externalId").and_then(Value::as_str) {
                    keys.push((5, Arc::from(x)));
                }
                for m in j
                    .get("members")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    if let Some(v) = m.get("value").and_then(Value::as_str) {
                        keys.push((6, Arc::from(v)));
                    }
                }
            }
        }
        keys
    }

    fn index_map(&mut self, which: u8) -> &mut Index {
        index_map(&mut self.indexes, which)
    }

    fn index(&mut self, e: &Entry) {
        for (which, key) in Self::index_keys(e) {
            self.index_map(which)
                .entry(key)
                .or_default()
                .insert(e.id.clone());
        }
    }

    fn unindex(&mut self, e: &Entry) {
        for (which, key) in Self::index_keys(e) {
            let map = self.index_map(which);
            if let Some(set) = map.get_mut(&key) {
                set.remove(&e.id);
                if set.is_empty() {
                    map.remove(&key);
                }
            }
        }
    }

    /// Entries of a kind in id order, materialised once per version.
    pub fn list(&self, kind: Kind) -> Arc<[Arc<Entry>]> {
        let (cell, map) = match kind {
            Kind::User => (&self.user_list, &self.users),
            Kind::Group => (&self.group_list, &self.groups),
        };
        cell.get_or_init(|| map.values().cloned().collect::<Vec<_>>().into())
            .clone()
    }

    pub fn get(&self, kind: Kind, rid: &str) -> Option<&Arc<Entry>> {
        match kind {
            Kind::User => self.users.get(rid),
            Kind::Group => self.groups.get(rid),
        }
    }

    /// The content times of every entry, for persistence and for the next build.
    pub fn seen(&self, kind: Kind, rid: &str) -> Option<Seen> {
        self.get(kind, rid).map(|e| e.seen())
    }

    /// Users: one entry each.
    pub fn user_count(&self) -> usize {
        self.users.len()
    }

    /// JumpCloud user groups (directories listed as groups are not counted).
    pub fn group_count(&self) -> usize {
        if self.serving_only {
            self.groups
                .values()
                .filter(|e| e.group_source == Some(GroupSource::UserGroup))
                .count()
        } else {
            self.data.groups.len()
        }
    }
}

#[cfg(test)]
#[path = "snapshot_tests.rs"]
mod tests;
