//! The indexes reads use for `eq` filters and membership, named by [`Index`]: which keys an entry has
//! in each, and keeping them in step as entries come and go.
//!
//! Adding an index is a line in the `indexes!` table below (its name, the kind of entry it names and how
//! its keys compare) and an arm in [`Index::keys`]; building, updating, persisting and looking up follow
//! from the table. The persisted file stores indexes in the table's order, so a new index also moves the
//! file's format version.
//!
//! A key is the 64-bit hash of the value as the index compares it ([`Index::key`]), kept in a tree
//! (`OrdMap`): about 50 bytes a key where the folded text in a hash trie cost about 250. Two values may
//! share a hash, so a posting names candidates: [`Snapshot::holders`] keeps those whose value really is
//! the one looked up, and a filter answered from an index is still evaluated on each candidate. The hash
//! is FNV-1a with a final mix, fixed here rather than taken from the standard library (whose algorithm
//! may change between compilers), because the snapshot file stores the keys.

use std::sync::Arc;

use std::borrow::Cow;

use imbl::{OrdMap, OrdSet};
use jiff::Timestamp;

use super::{Entry, Id, IdSet, Snapshot};
use crate::scim::ResourceKind;
use crate::scim::filter::fold_case;
use crate::scim::schema::ENTERPRISE_USER_URN;
use crate::scim::view::{Key, View};

/// One index: a key ([`Index::key`]) → the entries that may hold it.
pub type Postings = OrdMap<u64, IdSet>;

/// How an index's keys compare.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Case {
    /// As SCIM compares a `caseExact: false` string: folded (see [`fold_case`]).
    Insensitive,
    /// Byte for byte (`externalId`, ids).
    Exact,
}

macro_rules! indexes {
    ($($(#[doc = $doc:literal])* $name:ident: $kind:ident, $case:ident;)*) => {
        /// The indexes a snapshot keeps.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Index {
            $($(#[doc = $doc])* $name,)*
        }

        impl Index {
            /// Every index, in the order the snapshot file stores them.
            pub const ALL: &'static [Index] = &[$(Index::$name,)*];

            /// The kind of entry an index's values name.
            pub fn kind(self) -> ResourceKind {
                match self {
                    $(Index::$name => ResourceKind::$kind,)*
                }
            }

            /// How the index's keys compare.
            pub fn case(self) -> Case {
                match self {
                    $(Index::$name => Case::$case,)*
                }
            }
        }
    };
}

indexes! {
    /// The served `userName` → the user.
    UserName: User, Insensitive;
    /// Every email `value` (primary and alternate) → users.
    Email: User, Insensitive;
    /// A User's `externalId` → users.
    UserExternalId: User, Exact;
    /// The enterprise `employeeNumber` → users.
    EmployeeNumber: User, Insensitive;
    /// A Group's `displayName` → groups.
    GroupName: Group, Insensitive;
    /// A Group's `externalId` → groups.
    GroupExternalId: Group, Exact;
    /// A member user's id → the Group entries listing it (user groups and directory groups).
    MemberOf: Group, Exact;
}

/// Every index of a snapshot, by [`Index`], and each kind's entries in `meta.lastModified` order.
#[derive(Debug, Clone)]
pub struct Indexes {
    maps: Vec<Postings>,
    /// Users then groups: (lastModified in milliseconds, id), in time order, for the delta filters a
    /// SailPoint aggregation sends (`meta.lastModified gt "…"`). Not stored in the snapshot file: it is
    /// rebuilt from the entries' times when one is restored.
    modified: [OrdSet<(i64, Id)>; 2],
}

fn kind_at(kind: ResourceKind) -> usize {
    match kind {
        ResourceKind::User => 0,
        ResourceKind::Group => 1,
    }
}

impl Index {
    /// How many indexes there are.
    pub const COUNT: usize = Index::ALL.len();

    fn at(self) -> usize {
        self as usize
    }

    /// `value` as this index compares it.
    fn fold(self, value: &str) -> Cow<'_, str> {
        match self.case() {
            Case::Insensitive => Cow::Owned(fold_case(value)),
            Case::Exact => Cow::Borrowed(value),
        }
    }

    /// The key this index stores `value` under.
    pub fn key(self, value: &str) -> u64 {
        key_hash(self.fold(value).as_bytes())
    }

    /// The values `resource` has in this index (before [`Index::key`]); none for an entry of the other kind.
    fn values<'a, V: View<'a>>(self, resource: V) -> Vec<&'a str> {
        let k = &*KEYS;
        let each = |list: Key, field: Key| -> Vec<&'a str> {
            resource
                .member(list)
                .into_iter()
                .flat_map(View::items)
                .filter_map(|item| item.member(field).and_then(View::as_str))
                .collect()
        };
        let one = |v: Option<V>| v.and_then(View::as_str).into_iter().collect();
        match self {
            Index::UserName => one(resource.member(k.user_name)),
            Index::Email => each(k.emails, k.value),
            Index::UserExternalId | Index::GroupExternalId => one(resource.member(k.external_id)),
            Index::EmployeeNumber => one(resource
                .member(k.enterprise)
                .and_then(|x| x.member(k.employee_number))),
            Index::GroupName => one(resource.member(k.display_name)),
            Index::MemberOf => each(k.members, k.value),
        }
    }

    /// The keys `e` has in this index.
    pub fn keys(self, e: &Entry) -> Vec<u64> {
        if self.kind() != e.kind {
            return Vec::new();
        }
        self.values(e.view())
            .into_iter()
            .map(|v| self.key(v))
            .collect()
    }
}

/// The keys the indexes read, looked up once.
struct IndexKeys {
    user_name: Key,
    emails: Key,
    value: Key,
    external_id: Key,
    enterprise: Key,
    employee_number: Key,
    display_name: Key,
    members: Key,
}

static KEYS: std::sync::LazyLock<IndexKeys> = std::sync::LazyLock::new(|| IndexKeys {
    user_name: Key::of("userName"),
    emails: Key::of("emails"),
    value: Key::of("value"),
    external_id: Key::of("externalId"),
    enterprise: Key::of(ENTERPRISE_USER_URN),
    employee_number: Key::of("employeeNumber"),
    display_name: Key::of("displayName"),
    members: Key::of("members"),
});

/// FNV-1a over `bytes`, then the `splitmix64` finaliser so that near keys spread over the tree.
fn key_hash(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h ^= h >> 30;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

impl Default for Indexes {
    fn default() -> Self {
        Indexes {
            maps: vec![Postings::new(); Index::COUNT],
            modified: [OrdSet::new(), OrdSet::new()],
        }
    }
}

// === impl Indexes ===

impl Indexes {
    /// The entries `index` names under `value` (compared as the index compares its keys).
    pub fn find(&self, index: Index, value: &str) -> Option<&IdSet> {
        self.postings(index).get(&index.key(value))
    }

    /// One index whole.
    pub fn postings(&self, index: Index) -> &Postings {
        &self.maps[index.at()]
    }

    /// Every index in [`Index::ALL`]'s order.
    pub fn iter(&self) -> impl Iterator<Item = (Index, &Postings)> {
        Index::ALL.iter().map(|&i| (i, self.postings(i)))
    }

    /// The indexes from [`Index::ALL`]'s order, with the time order of `entries` (users and groups); `None`
    /// unless there is one map per index.
    pub fn from_postings<'a>(
        maps: Vec<Postings>,
        entries: impl IntoIterator<Item = &'a Arc<Entry>>,
    ) -> Option<Indexes> {
        if maps.len() != Index::COUNT {
            return None;
        }
        let mut modified = [OrdSet::new(), OrdSet::new()];
        for e in entries {
            modified[kind_at(e.kind)].insert((e.last_modified.as_millisecond(), e.id.clone()));
        }
        Some(Indexes { maps, modified })
    }

    /// The ids of `kind` whose `meta.lastModified` is at or after `since`'s millisecond, oldest first.
    pub fn modified_since(&self, kind: ResourceKind, since: Timestamp) -> Vec<Id> {
        let from = (since.as_millisecond(), Id::from(""));
        self.modified[kind_at(kind)]
            .range(from..)
            .map(|(_, id)| id.clone())
            .collect()
    }

    /// Add `e` under each of its keys.
    fn add(&mut self, e: &Entry) {
        self.modified[kind_at(e.kind)].insert((e.last_modified.as_millisecond(), e.id.clone()));
        for &index in Index::ALL {
            for key in index.keys(e) {
                self.maps[index.at()]
                    .entry(key)
                    .or_default()
                    .insert(e.id.clone());
            }
        }
    }

    /// Take `e` out from under each of its keys.
    fn remove(&mut self, e: &Entry) {
        self.modified[kind_at(e.kind)].remove(&(e.last_modified.as_millisecond(), e.id.clone()));
        for &index in Index::ALL {
            let map = &mut self.maps[index.at()];
            for key in index.keys(e) {
                if let Some(set) = map.get_mut(&key) {
                    set.remove(&e.id);
                    if set.is_empty() {
                        map.remove(&key);
                    }
                }
            }
        }
    }

    /// `new` in place of `old` (the same resource, derived again): only the keys that differ move, so a
    /// group of 100,000 members that gained one changes one key, not 200,000.
    fn replace(&mut self, old: &Entry, new: &Entry) {
        if !std::ptr::eq(old, new) {
            let time = |e: &Entry| (e.last_modified.as_millisecond(), e.id.clone());
            if time(old) != time(new) {
                self.modified[kind_at(old.kind)].remove(&time(old));
                self.modified[kind_at(new.kind)].insert(time(new));
            }
        }
        for &index in Index::ALL {
            let mut before = index.keys(old);
            let mut after = index.keys(new);
            before.sort_unstable();
            after.sort_unstable();
            let map = &mut self.maps[index.at()];
            for key in before.iter().filter(|k| after.binary_search(k).is_err()) {
                if let Some(set) = map.get_mut(key) {
                    set.remove(&old.id);
                    if set.is_empty() {
                        map.remove(key);
                    }
                }
            }
            for key in after.iter().filter(|k| before.binary_search(k).is_err()) {
                map.entry(*key).or_default().insert(new.id.clone());
            }
        }
    }

    /// Every entry of `entries` indexed.
    fn of(entries: &OrdMap<Id, Arc<Entry>>) -> Indexes {
        let mut idx = Indexes::default();
        for e in entries.values() {
            idx.add(e);
        }
        idx
    }
}

impl Snapshot {
    /// The entries of `index`'s kind whose value in it is `value` (as the index compares), in id order.
    pub fn holders(&self, index: Index, value: &str) -> Vec<Id> {
        let want = index.fold(value);
        self.indexes
            .find(index, value)
            .into_iter()
            .flatten()
            .filter(|id| {
                self.get(index.kind(), id).is_some_and(|e| {
                    e.kind == index.kind()
                        && index
                            .values(e.view())
                            .into_iter()
                            .any(|v| index.fold(v) == want)
                })
            })
            .cloned()
            .collect()
    }

    /// Index every entry. Users and groups feed disjoint indexes, so they are built on two threads.
    pub(super) fn reindex_all(&mut self) {
        let (users, groups) = std::thread::scope(|scope| {
            let users = scope.spawn(|| Indexes::of(&self.users));
            let groups = Indexes::of(&self.groups);
            (
                users
                    .join()
                    .unwrap_or_else(|p| std::panic::resume_unwind(p)),
                groups,
            )
        });
        let maps = Index::ALL
            .iter()
            .map(|&i| match i.kind() {
                ResourceKind::User => users.postings(i).clone(),
                ResourceKind::Group => groups.postings(i).clone(),
            })
            .collect();
        let [user_times, _] = users.modified;
        let [_, group_times] = groups.modified;
        self.indexes = Indexes {
            maps,
            modified: [user_times, group_times],
        };
    }

    pub(super) fn unindex(&mut self, e: &Entry) {
        self.indexes.remove(e);
    }

    /// `new` indexed in place of `old`, when there was one.
    pub(super) fn reindex(&mut self, old: Option<&Entry>, new: &Entry) {
        match old {
            Some(old) if old.id == new.id => self.indexes.replace(old, new),
            Some(old) => {
                self.indexes.remove(old);
                self.indexes.add(new);
            }
            None => self.indexes.add(new),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_names_each_index_once_in_file_order() {
        for (n, &i) in Index::ALL.iter().enumerate() {
            assert_eq!(i.at(), n, "{i:?}");
        }
        assert_eq!(Index::COUNT, 7);
        assert_eq!(
            Index::UserName.key("ΓΙΑΝΝΗΣ"),
            Index::UserName.key("γιαννησ")
        );
        assert_ne!(
            Index::UserExternalId.key("A"),
            Index::UserExternalId.key("a")
        );
        // The hash is fixed: the snapshot file stores it.
        assert_eq!(key_hash(b""), 0xf52a_15e9_a9b5_e89b);
        assert_eq!(key_hash(b"alice"), 0xc5d1_556d_6677_4a5c);
    }
}
