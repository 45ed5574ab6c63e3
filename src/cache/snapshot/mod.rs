//! The immutable snapshot of the directory that every read is answered from.
//!
//! A [`Snapshot`] holds JumpCloud's data as persistent maps ([`Data`]) and the SCIM resources derived from
//! it ([`Entry`]: the served bytes, the compact tape filters and sorting read them through, the content hash
//! the ETag comes from, and the `meta` times), with the indexes reads need. No entry keeps a parsed JSON
//! tree: what needs one (a projection, a PATCH) parses the bytes and drops it. Versions share everything that did not change: the maps are `imbl` persistent maps (a clone is
//! O(1), an update O(log n)) and each resource is an `Arc<Entry>` reused as long as its content hash is
//! unchanged. That is also how `meta.lastModified` works: JumpCloud keeps no modification time, so an
//! entry's `lastModified` is the time we first saw its current content.
//!
//! # What a user costs
//!
//! Live heap at 100,000 users and 200 groups, built from the emulator, 4.0 KB a user in all (`cargo run
//! --release --example memory -- 100000 parts`); each part is kept because a read or a write needs it:
//!
//! | part | per user | what needs it |
//! |---|---|---|
//! | served bytes ([`Entry::bytes`]), packed in blocks in list order ([`block`]) | 1.49 KB | every read: sent as they are, never serialised again; a page is a few slices |
//! | request-only attributes ([`Entry::extra`]) | 0.18 KB | `attributes=` naming them, filters on them |
//! | tape ([`crate::scim::tape::Tape`], 8 bytes a value) | 0.63 KB | scan filters, sorting, index keys |
//! | the entry itself, its `Arc` and its place in the map | 0.30 KB | hash (ETag), times, kind, reuse fingerprint |
//! | JumpCloud's record, packed ([`PackedUser`]) | 0.48 KB | writes diff against it; derivation when an edge changes |
//! | indexes, with the time order ([`Indexes`]) | 0.33 KB | `eq` lookups, uniqueness checks, `lastModified gt` |
//! | edges and JumpCloud's groups and directories ([`Data`]) | 0.27 KB | derivation, membership writes |
//! | group entries (their members as served) | 0.31 KB | reads of groups |
//!
//! No parsed JSON tree is kept (what needs one parses the bytes and drops it), index keys are 64-bit hashes
//! in trees rather than text in hash tries, and sets of one id hold it inline. The `serve` process's resident
//! size is 453–458 MiB after its first refresh and a full walk (`examples/sizing`), about 4.5 KB a user past its
//! own ~20 MiB: the live heap above, jemalloc's size classes and what the last refresh's transient data left
//! in partly used pages (purged after each refresh, [`super::memory`]).
//!
//! This module knows the JumpCloud DTOs only as data handed to `crate::mapping`; it does no IO.
//!
//! Rooms: `data` (JumpCloud's records and edges, and the overlay of writes), `entry` (one derived
//! resource: bytes, ETag, times), `block` (entries' bytes laid end to end in list order), `derive`
//! (building a version, fully or after a write) and `index` (the lookups `eq` filters and membership use).

pub(crate) mod block;
mod data;
mod derive;
mod entry;
mod index;
mod packed;

use std::sync::{Arc, OnceLock};

use imbl::OrdMap;
use jiff::Timestamp;

pub use data::{Data, IdSet, RawDirectory, Touched};
pub use entry::{Entry, GroupSource, Seen, etag_listed, rfc3339_millis, to_millis};
pub use index::{Case, Index, Indexes, Postings};
pub use packed::PackedUser;

use crate::mapping::MappingOptions;
use crate::scim::ResourceKind;

/// Ids are shared strings: every map and index holds the same allocation.
pub type Id = Arc<str>;

/// The resources of one kind, by id.
pub type Entries = OrdMap<Id, Arc<Entry>>;

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
    user_stretches: OnceLock<Arc<[u32]>>,
    group_stretches: OnceLock<Arc<[u32]>>,
}

/// What a snapshot build needs besides the data.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    pub mapping: MappingOptions,
    pub directories_as_groups: bool,
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
            user_stretches: OnceLock::new(),
            group_stretches: OnceLock::new(),
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
            user_stretches: OnceLock::new(),
            group_stretches: OnceLock::new(),
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
            user_stretches: OnceLock::new(),
            group_stretches: OnceLock::new(),
        }
    }

    /// Whether this version lacks JumpCloud's data (see [`Snapshot::serving`]). Writes wait for a complete
    /// version; a build that starts from it finds no record to reuse entries by, so derives them all.
    pub fn is_serving_only(&self) -> bool {
        self.serving_only
    }

    /// Derive every resource from `data`. Entries whose content is unchanged since `prev` are shared with it;    /// For each entry of [`Snapshot::list`], the last entry of the stretch of neighbours in one block it
    /// begins ([`block::adjacent`]; itself when its successor is not its neighbour): a page is cut into
    /// slices without reading each entry. Materialised once per version.
    pub fn stretches(&self, kind: ResourceKind) -> Arc<[u32]> {
        let cell = match kind {
            ResourceKind::User => &self.user_stretches,
            ResourceKind::Group => &self.group_stretches,
        };
        cell.get_or_init(|| block::stretch_ends(&self.list(kind)))
            .clone()
    }

    /// Entries of a kind in id order, materialised once per version.
    pub fn list(&self, kind: ResourceKind) -> Arc<[Arc<Entry>]> {
        let (cell, map) = match kind {
            ResourceKind::User => (&self.user_list, &self.users),
            ResourceKind::Group => (&self.group_list, &self.groups),
        };
        cell.get_or_init(|| map.values().cloned().collect::<Vec<_>>().into())
            .clone()
    }

    pub fn get(&self, kind: ResourceKind, rid: &str) -> Option<&Arc<Entry>> {
        match kind {
            ResourceKind::User => self.users.get(rid),
            ResourceKind::Group => self.groups.get(rid),
        }
    }

    /// The content times of every entry, for persistence and for the next build.
    pub fn seen(&self, kind: ResourceKind, rid: &str) -> Option<Seen> {
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
mod tests;
