//! What the frame carries: the snapshot's version, `taken_at` and derivation, then JumpCloud's data and
//! the served entries with their indexes, in two sections encoded apart so a load decodes them on two
//! threads.

use std::collections::HashMap;
use std::sync::Arc;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use bytes::Bytes;

use crate::cache::snapshot::{Entries, Index, Indexes, Postings};
use crate::cache::{BuildOptions, Entry, GroupSource, Id, IdSet, RawDirectory, Seen, Snapshot};
use crate::jumpcloud::{JcDirectory, JcGroup, JcUser};
use crate::scim::ResourceKind;

use super::squeeze::{squeeze, unsqueeze};
use super::{PersistError, Persisted};
use crate::cache::records::{DirectoryRec, GroupRec, UserRec};

// === the payload ===

/// What one file holds after its header. The data and the entries are encoded apart, so a load decodes them
/// on two threads.
#[derive(Serialize)]
pub(super) struct PayloadOut<'a> {
    version: u64,
    /// Nanoseconds since the Unix epoch.
    taken_at: i128,
    derivation: String,
    /// A postcard [`DataSection`].
    data: Blob<'a>,
    /// A postcard [`EntrySection`].
    entries: Blob<'a>,
}

/// [`PayloadOut`] as read back, its sections borrowed from the file's bytes.
#[derive(Deserialize)]
pub(super) struct PayloadIn<'a> {
    version: u64,
    taken_at: i128,
    derivation: String,
    #[serde(borrow)]
    data: Blob<'a>,
    #[serde(borrow)]
    entries: Blob<'a>,
}

/// Bytes as one run, borrowed when read back (serde would write a `[u8]` element by element).
pub(super) struct Blob<'a>(&'a [u8]);

impl Serialize for Blob<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(self.0)
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Blob<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        <&'a [u8]>::deserialize(d).map(Blob)
    }
}

/// JumpCloud's data: what [`Data::from_raw`] needs.
#[derive(Serialize, Deserialize)]
pub(super) struct DataSection {
    users: Vec<UserRec>,
    groups: Vec<GroupRec>,
    /// Group id → member user ids.
    members: Vec<(String, Vec<String>)>,
    directories: Vec<DirectoryRec>,
    /// Directory id → user ids bound directly.
    directory_users: Vec<(String, Vec<String>)>,
    /// Directory id → user group ids bound to it.
    directory_groups: Vec<(String, Vec<String>)>,
}

/// Every entry as served, and the indexes over them; read back borrowing the file's bytes.
#[derive(Serialize, Deserialize)]
pub(super) struct EntrySection<'a> {
    /// Users then groups, each in id order.
    #[serde(borrow)]
    entries: Vec<EntryRec<'a>>,
    /// In the order of [`Index::ALL`]: key → positions in `entries`.
    indexes: Vec<Vec<(u64, Vec<u32>)>>,
}

#[derive(Serialize, Deserialize)]
pub(super) struct EntryRec<'a> {
    /// 0 = User, 1 = Group.
    kind: u8,
    id: &'a str,
    /// 0 = none (a user), 1 = a user group, 2 = a directory listed as a group.
    source: u8,
    /// The served resource, `meta` included.
    #[serde(borrow)]
    bytes: Blob<'a>,
    /// The attributes returned only on request, kept beside the served bytes.
    #[serde(borrow)]
    extra: Option<Blob<'a>>,
    hash: [u8; 16],
    created: i128,
    last_modified: i128,
}

/// What the saved entries were derived with: this build and its options. Entries are served as saved only
/// under the same; otherwise they are derived again from the data.
pub fn derivation(opts: &BuildOptions) -> String {
    format!("{} {opts:?}", env!("CARGO_PKG_VERSION"))
}

pub(super) fn nanos(t: Timestamp) -> i128 {
    t.as_nanosecond()
}

pub(super) fn timestamp(n: i128) -> Result<Timestamp, PersistError> {
    Timestamp::from_nanosecond(n).map_err(|e| PersistError::Decode(e.to_string()))
}

/// An edge map in id order, so the same data always gives the same bytes.
pub(super) fn edges<'a, S>(map: impl IntoIterator<Item = (&'a Id, S)>) -> Vec<(String, Vec<String>)>
where
    S: IntoIterator<Item = &'a Id>,
{
    let mut out: Vec<(String, Vec<String>)> = map
        .into_iter()
        .map(|(k, set)| {
            (
                k.to_string(),
                set.into_iter().map(|v| v.to_string()).collect(),
            )
        })
        .collect();
    out.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    out
}

pub(super) fn encode<T: Serialize>(v: &T) -> Result<Vec<u8>, PersistError> {
    postcard::to_allocvec(v).map_err(|e| PersistError::Encode(e.to_string()))
}

/// Decode one postcard value that must fill `bytes` exactly.
pub(super) fn decode_exact<'a, T: Deserialize<'a>>(
    bytes: &'a [u8],
    what: &str,
) -> Result<T, PersistError> {
    let (value, rest) = postcard::take_from_bytes::<T>(bytes)
        .map_err(|e| PersistError::Decode(format!("{what}: {e}")))?;
    if !rest.is_empty() {
        return Err(PersistError::Decode(format!(
            "{what}: {} bytes left after it",
            rest.len()
        )));
    }
    Ok(value)
}

/// The payload of `s`: its two sections are encoded on two threads.
pub(super) fn encode_payload(
    s: &Snapshot,
    opts_derivation: String,
) -> Result<Vec<u8>, PersistError> {
    let (data, entries) = std::thread::scope(|scope| {
        let data = scope.spawn(|| encode(&DataSection::from_snapshot(s)).map(|d| squeeze(&d)));
        let entries = encode(&EntrySection::from_snapshot(s)).map(|e| squeeze(&e));
        let data = data.join().unwrap_or_else(|p| std::panic::resume_unwind(p));
        (data, entries)
    });
    let (data, entries) = (data?, entries?);
    encode(&PayloadOut {
        version: s.version,
        taken_at: nanos(s.taken_at),
        derivation: opts_derivation,
        data: Blob(&data),
        entries: Blob(&entries),
    })
}

/// A checked payload (inside `file`) back into a [`Persisted`]. Its parts are independent, so each has a
/// thread and the cores share them out: the data's records, the entries, and two halves of the indexes.
pub(super) fn decode_payload(payload: &[u8]) -> Result<Persisted, PersistError> {
    let head: PayloadIn<'_> = decode_exact(payload, "payload")?;
    let (raw, entries) = std::thread::scope(|scope| {
        let raw = scope.spawn(|| {
            let data = unsqueeze(head.data.0)?;
            decode_exact::<DataSection>(&data, "data section")?.into_raw()
        });
        // The restored entries' bytes are slices of this section, which lives as long as the first of them.
        let entries = unsqueeze(head.entries.0)
            .map(Bytes::from)
            .and_then(|section| {
                decode_exact::<EntrySection>(&section, "entry section")?.restore(&section)
            });
        let raw = raw.join().unwrap_or_else(|p| std::panic::resume_unwind(p));
        (raw, entries)
    });
    let (users, groups, indexes) = entries?;
    Ok(Persisted {
        version: head.version,
        taken_at: timestamp(head.taken_at)?,
        derivation: head.derivation,
        raw: raw?,
        users,
        groups,
        indexes,
    })
}

// === impl DataSection ===

impl DataSection {
    fn from_snapshot(s: &Snapshot) -> DataSection {
        let d = &s.data;
        DataSection {
            users: d
                .users
                .values()
                .map(|u| UserRec::from(&u.unpack()))
                .collect(),
            groups: d.groups.values().map(|g| GroupRec::from(&**g)).collect(),
            members: edges(&d.members),
            directories: d
                .directories
                .values()
                .map(|x| DirectoryRec::from(&**x))
                .collect(),
            directory_users: edges(&d.directory_users),
            directory_groups: edges(&d.directory_groups),
        }
    }

    fn into_raw(self) -> Result<RawDirectory, PersistError> {
        let users = self
            .users
            .into_iter()
            .map(JcUser::try_from)
            .collect::<Result<_, _>>()?;
        let groups = self
            .groups
            .into_iter()
            .map(JcGroup::try_from)
            .collect::<Result<_, _>>()?;
        Ok(RawDirectory {
            users,
            groups,
            members: self.members.into_iter().collect(),
            directories: self
                .directories
                .into_iter()
                .map(JcDirectory::from)
                .collect(),
            directory_users: self.directory_users.into_iter().collect(),
            directory_groups: self.directory_groups.into_iter().collect(),
        })
    }
}

// === impl EntrySection ===

impl<'a> EntrySection<'a> {
    fn from_snapshot(s: &'a Snapshot) -> EntrySection<'a> {
        let all = || s.users.values().chain(s.groups.values());
        let position: HashMap<&str, u32> =
            all().enumerate().map(|(i, e)| (&*e.id, i as u32)).collect();
        let entries = all()
            .map(|e| EntryRec {
                kind: match e.kind {
                    ResourceKind::User => 0,
                    ResourceKind::Group => 1,
                },
                id: &e.id,
                source: match e.group_source {
                    None => 0,
                    Some(GroupSource::UserGroup) => 1,
                    Some(GroupSource::Directory) => 2,
                },
                bytes: Blob(&e.bytes),
                extra: e.extra.as_deref().map(Blob),
                hash: e.hash,
                created: nanos(e.created),
                last_modified: nanos(e.last_modified),
            })
            .collect();
        let indexes = s
            .indexes
            .iter()
            .map(|(_, map)| {
                // In key order already: the map is a tree.
                map.iter()
                    .map(|(key, ids)| {
                        // An id no entry has names nothing a reader could find: it is left out.
                        let at = ids.iter().filter_map(|i| position.get(&**i).copied());
                        (*key, at.collect())
                    })
                    .collect()
            })
            .collect();
        EntrySection { entries, indexes }
    }

    /// The entries as saved, deriving nothing, and the indexes over them. The entries' bytes are slices of
    /// `file`, which this section borrows from.
    fn restore(self, file: &Bytes) -> Result<(Entries, Entries, Indexes), PersistError> {
        if self.indexes.len() != Index::COUNT {
            return Err(PersistError::Decode(format!(
                "{} indexes where {} were expected",
                self.indexes.len(),
                Index::COUNT
            )));
        }
        let ids: Vec<Id> = self.entries.iter().map(|r| Id::from(r.id)).collect();
        let EntrySection { entries, indexes } = self;
        let mut rows = indexes.into_iter();
        let first: Vec<_> = rows.by_ref().take(Index::COUNT / 2).collect();
        let second: Vec<_> = rows.collect();
        std::thread::scope(|scope| {
            let first = scope.spawn(|| index_maps(first, &ids));
            let second = scope.spawn(|| index_maps(second, &ids));
            let maps = entry_maps(entries, &ids, file);
            let join = |h: std::thread::ScopedJoinHandle<'_, _>| {
                h.join().unwrap_or_else(|p| std::panic::resume_unwind(p))
            };
            let (first, second) = (join(first)?, join(second)?);
            let (users, groups) = maps?;
            let all: Vec<Postings> = first.into_iter().chain(second).collect();
            let indexes = Indexes::from_postings(all, users.values().chain(groups.values()))
                .ok_or_else(|| PersistError::Decode("index count changed".into()))?;
            Ok((users, groups, indexes))
        })
    }
}

/// The entries by kind and id, each sharing its id with `ids` and its bytes with `file`.
pub(super) fn entry_maps(
    entries: Vec<EntryRec<'_>>,
    ids: &[Id],
    file: &Bytes,
) -> Result<(Entries, Entries), PersistError> {
    let mut users = Entries::new();
    let mut groups = Entries::new();
    for (r, rid) in entries.into_iter().zip(ids) {
        let kind = match r.kind {
            0 => ResourceKind::User,
            1 => ResourceKind::Group,
            other => return Err(PersistError::Decode(format!("unknown entry kind {other}"))),
        };
        let source = match r.source {
            0 => None,
            1 => Some(GroupSource::UserGroup),
            2 => Some(GroupSource::Directory),
            other => {
                return Err(PersistError::Decode(format!(
                    "unknown group source {other}"
                )));
            }
        };
        let seen = Seen {
            hash: r.hash,
            created: timestamp(r.created)?,
            last_modified: timestamp(r.last_modified)?,
        };
        let bytes = file.slice_ref(r.bytes.0);
        let extra = r.extra.map(|x| file.slice_ref(x.0));
        let entry = Arc::new(Entry::restored(
            rid.clone(),
            kind,
            source,
            bytes,
            extra,
            seen,
        ));
        match kind {
            ResourceKind::User => users.insert(rid.clone(), entry),
            ResourceKind::Group => groups.insert(rid.clone(), entry),
        };
    }
    Ok((users, groups))
}

/// Indexes from their saved rows: key → positions in `ids`.
pub(super) fn index_maps(
    saved: Vec<Vec<(u64, Vec<u32>)>>,
    ids: &[Id],
) -> Result<Vec<Postings>, PersistError> {
    saved
        .into_iter()
        .map(|rows| {
            let mut map = Postings::new();
            for (key, at) in rows {
                let set = at
                    .iter()
                    .map(|&i| {
                        usize::try_from(i)
                            .ok()
                            .and_then(|at| ids.get(at))
                            .cloned()
                            .ok_or_else(|| {
                                PersistError::Decode(format!(
                                    "an index names entry {i}, which is not there"
                                ))
                            })
                    })
                    .collect::<Result<IdSet, _>>()?;
                map.insert(key, set);
            }
            Ok(map)
        })
        .collect()
}
