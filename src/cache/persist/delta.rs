//! A version as the change from the one before it (its base): what a write or a feed batch touched, in
//! plain records, so replicas share a write without moving the whole directory. Applied on the base it
//! makes the version its writer published, entry for entry: the touched objects are laid over the base's
//! data as a refresh lays a write over its own ([`Data::overlay`]), then derived again with the write's own
//! time ([`Snapshot::with_changes`]), so `created`, `lastModified` and ETags agree across replicas.
//!
//! The frame is the snapshot file's ([`super::format`]'s magic is not repeated: a delta travels inside a
//! checksummed manifest's chunks); the payload is postcard, compressed in LZ4 chunks ([`super::squeeze`]).

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::PersistError;
use super::payload::{decode_exact, encode, nanos, timestamp};
use super::squeeze::{squeeze, unsqueeze};
use crate::cache::records::{DirectoryRec, GroupRec, UserRec};
use crate::cache::{BuildOptions, Data, Id, PackedUser, Snapshot, Touched};
use crate::jumpcloud::{JcDirectory, JcGroup, JcUser};

/// Leads every delta, so nothing else is ever applied as one.
const DELTA_MAGIC: [u8; 8] = *b"JCSCIMDL";
/// Moves whenever the delta's shape changes.
const DELTA_FORMAT: u32 = 1;

/// What a version changed, and when.
#[derive(Debug, Clone)]
pub struct Change {
    /// The version it was made on.
    pub base: u64,
    /// When it was derived (the `now` of [`Snapshot::with_changes`]).
    pub at: Timestamp,
    pub touched: Touched,
}

#[derive(Serialize, Deserialize)]
struct DeltaRec {
    base: u64,
    version: u64,
    /// Nanoseconds since the Unix epoch: the version's `taken_at` and its derivation time.
    taken_at: i128,
    at: i128,
    touched: [Vec<String>; 4],
    users: Vec<UserPart>,
    groups: Vec<GroupPart>,
    directories: Vec<DirectoryPart>,
}

/// A touched user as the version has it (`None`: deleted), with the groups it is in and the directories
/// bound to it directly.
#[derive(Serialize, Deserialize)]
struct UserPart {
    id: String,
    user: Option<UserRec>,
    groups: Vec<String>,
    directories: Vec<String>,
}

/// A touched group (`None`: deleted), its members and the directories bound to it.
#[derive(Serialize, Deserialize)]
struct GroupPart {
    id: String,
    group: Option<GroupRec>,
    members: Vec<String>,
    directories: Vec<String>,
}

/// A touched directory's associations.
#[derive(Serialize, Deserialize)]
struct DirectoryPart {
    id: String,
    directory: Option<DirectoryRec>,
    users: Vec<String>,
    groups: Vec<String>,
}

fn strings<'a>(ids: impl IntoIterator<Item = &'a Id>) -> Vec<String> {
    ids.into_iter().map(|i| i.to_string()).collect()
}

fn ids(strings: Vec<String>) -> impl Iterator<Item = Id> {
    strings.into_iter().map(Id::from)
}

/// `next` as the change `change` made on its base: just the touched objects, from `next`'s data.
pub fn encode_delta(next: &Snapshot, change: &Change) -> Result<Vec<u8>, PersistError> {
    let d = &next.data;
    let t = &change.touched;
    let users = t
        .users
        .iter()
        .map(|u| UserPart {
            id: u.to_string(),
            user: d.users.get(u).map(|p| UserRec::from(&p.unpack())),
            groups: strings(d.user_groups.get(u).into_iter().flat_map(|s| s.iter())),
            directories: strings(
                d.directory_users
                    .iter()
                    .filter(|(_, set)| set.contains(u))
                    .map(|(did, _)| did),
            ),
        })
        .collect();
    let groups = t
        .groups
        .iter()
        .chain(t.member_lists.iter().filter(|g| !t.groups.contains(*g)))
        .map(|g| GroupPart {
            id: g.to_string(),
            group: d.groups.get(g).map(|x| GroupRec::from(&**x)),
            members: strings(d.members.get(g).into_iter().flatten()),
            directories: strings(
                d.directory_groups
                    .iter()
                    .filter(|(_, set)| set.contains(g))
                    .map(|(did, _)| did),
            ),
        })
        .collect();
    let directories = t
        .directories
        .iter()
        .map(|x| DirectoryPart {
            id: x.to_string(),
            directory: d.directories.get(x).map(|r| DirectoryRec::from(&**r)),
            users: strings(d.directory_users.get(x).into_iter().flatten()),
            groups: strings(d.directory_groups.get(x).into_iter().flatten()),
        })
        .collect();
    let rec = DeltaRec {
        base: change.base,
        version: next.version,
        taken_at: nanos(next.taken_at),
        at: nanos(change.at),
        touched: [
            strings(&t.users),
            strings(&t.groups),
            strings(&t.directories),
            strings(&t.member_lists),
        ],
        users,
        groups,
        directories,
    };
    let body = squeeze(&encode(&rec)?);
    let mut out = Vec::with_capacity(DELTA_MAGIC.len() + 4 + body.len());
    out.extend_from_slice(&DELTA_MAGIC);
    out.extend_from_slice(&DELTA_FORMAT.to_le_bytes());
    out.extend_from_slice(&body);
    Ok(out)
}

/// The version a delta makes on `base`, and what it touched. Refused unless it was made on exactly `base`.
pub fn apply_delta(
    base: &Snapshot,
    bytes: &[u8],
    opts: &BuildOptions,
) -> Result<(Snapshot, Touched), PersistError> {
    let head = DELTA_MAGIC.len() + 4;
    if bytes.len() < head || bytes[..DELTA_MAGIC.len()] != DELTA_MAGIC {
        return Err(PersistError::Corrupt("not a delta"));
    }
    let format = u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]);
    if format != DELTA_FORMAT {
        return Err(PersistError::WrongVersion {
            found: format,
            expected: DELTA_FORMAT,
        });
    }
    let body = unsqueeze(&bytes[head..])?;
    let rec: DeltaRec = decode_exact(&body, "delta")?;
    if rec.base != base.version || base.is_serving_only() {
        return Err(PersistError::Decode(format!(
            "the delta is made on version {}, not on version {}",
            rec.base, base.version
        )));
    }
    let [users, groups, directories, member_lists] = rec.touched;
    let touched = Touched {
        users: ids(users).collect(),
        groups: ids(groups).collect(),
        directories: ids(directories).collect(),
        member_lists: ids(member_lists).collect(),
    };
    let from = partial_data(rec.users, rec.groups, rec.directories)?;
    let mut data = base.data.clone();
    data.overlay(&from, &touched);
    let mut next = base.with_changes(data, &touched, rec.version, timestamp(rec.at)?, opts);
    next.taken_at = timestamp(rec.taken_at)?;
    Ok((next, touched))
}

/// The touched objects as a [`Data`] holding only them: what [`Data::overlay`] reads of them.
fn partial_data(
    users: Vec<UserPart>,
    groups: Vec<GroupPart>,
    directories: Vec<DirectoryPart>,
) -> Result<Data, PersistError> {
    let mut from = Data::default();
    for p in users {
        let uid = Id::from(p.id.as_str());
        if let Some(rec) = p.user {
            from.users
                .insert(uid.clone(), PackedUser::pack(&JcUser::try_from(rec)?));
        }
        for g in ids(p.groups) {
            from.user_groups.entry(uid.clone()).or_default().insert(g);
        }
        for did in ids(p.directories) {
            from.directory_users
                .entry(did)
                .or_default()
                .insert(uid.clone());
        }
    }
    for p in groups {
        let gid = Id::from(p.id.as_str());
        if let Some(rec) = p.group {
            from.groups
                .insert(gid.clone(), std::sync::Arc::new(JcGroup::try_from(rec)?));
        }
        from.members.insert(gid.clone(), ids(p.members).collect());
        for did in ids(p.directories) {
            from.directory_groups
                .entry(did)
                .or_default()
                .insert(gid.clone());
        }
    }
    for p in directories {
        let did = Id::from(p.id.as_str());
        if let Some(rec) = p.directory {
            from.directories
                .insert(did.clone(), std::sync::Arc::new(JcDirectory::from(rec)));
        }
        from.directory_users
            .insert(did.clone(), ids(p.users).collect());
        from.directory_groups.insert(did, ids(p.groups).collect());
    }
    Ok(from)
}

#[cfg(test)]
#[path = "delta_tests.rs"]
mod tests;
