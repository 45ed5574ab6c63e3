//! One SCIM resource of a snapshot version ([`Entry`]) and what depends only on its content: the
//! served bytes, the tape filters read, the ETag, the content times, and their RFC 3339 form.
//!
//! Entries are built in `derive` and restored in `persist`; this file only describes them.

use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use jiff::Timestamp;
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::Id;
use super::block::Block;
use crate::scim::ResourceKind;
use crate::scim::attrs;
use crate::scim::tape::{Cursor, Tape};

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
    pub kind: ResourceKind,
    /// For groups: a JumpCloud user group or a directory listed as a group.
    pub group_source: Option<GroupSource>,
    /// The resource serialised once, for answers with the default attribute set: without the attributes
    /// the schemas return only on request.
    pub bytes: Bytes,
    /// The block `bytes` is a slice of, when a build packed it with its neighbours in list order.
    pub(crate) block: Option<Arc<Block>>,
    /// Those attributes (JSON, shaped like the resource), merged into [`Entry::to_json`].
    pub extra: Option<Bytes>,
    /// `bytes` and `extra` as one resource, for filters, sorting and index keys ([`Entry::view`]): set
    /// when the entry is derived, built on first use when it was restored from disk.
    pub(crate) tape: OnceLock<Tape>,
    /// Hash of the content without `meta`; the ETag is made from it ([`Entry::etag`]).
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

// === impl Entry ===

impl Entry {
    /// An entry as it was served before a restart: its bytes and content times, without deriving it.
    pub fn restored(
        id: Id,
        kind: ResourceKind,
        group_source: Option<GroupSource>,
        bytes: Bytes,
        extra: Option<Bytes>,
        seen: Seen,
    ) -> Entry {
        Entry {
            id,
            kind,
            group_source,
            bytes,
            block: None,
            extra,
            tape: OnceLock::new(),
            hash: seen.hash,
            created: seen.created,
            last_modified: seen.last_modified,
            inputs: None,
        }
    }

    /// The same entry with its bytes in an allocation of their own, outside any block.
    pub(super) fn unpacked(&self) -> Entry {
        Entry {
            id: self.id.clone(),
            kind: self.kind,
            group_source: self.group_source,
            bytes: Bytes::copy_from_slice(&self.bytes),
            block: None,
            extra: self.extra.clone(),
            tape: self.tape.clone(),
            hash: self.hash,
            created: self.created,
            last_modified: self.last_modified,
            inputs: self.inputs,
        }
    }

    /// The full resource as filters, sorting and index keys read it, `meta` included.
    pub fn view(&self) -> Cursor<'_> {
        self.tape
            .get_or_init(|| tape_of(&self.bytes, self.extra.as_deref()))
            .root(&self.bytes, self.extra.as_deref())
    }

    /// The full resource, `meta` included, parsed from the stored bytes: for what must build a resource of
    /// its own (a projection, a PATCH's target). Nothing keeps it.
    pub fn to_json(&self) -> Value {
        self.to_json_skipping(&|_| false)
    }

    /// What the entry's tape holds, in bytes (0 until it is built).
    pub fn tape_bytes(&self) -> usize {
        self.tape.get().map_or(0, Tape::heap_bytes)
    }

    /// [`Entry::to_json`] without the top-level members `skip` names, which are stepped over unread: a
    /// projection that leaves out a group's 100,000 members does not build them.
    pub fn to_json_skipping(&self, skip: &dyn Fn(&str) -> bool) -> Value {
        // The bytes are what serde_json wrote (checked by the snapshot file's checksum when restored), so
        // they parse.
        let mut de = serde_json::Deserializer::from_slice(&self.bytes);
        let mut v = serde::de::Deserializer::deserialize_map(&mut de, Skipping(skip))
            .map(Value::Object)
            .unwrap_or(Value::Null);
        if let Some(extra) = self
            .extra
            .as_ref()
            .and_then(|x| serde_json::from_slice::<Value>(x).ok())
        {
            attrs::merge_request_only(&mut v, &extra, self.kind);
        }
        v
    }

    /// Weak ETag from the content (equal to `meta.version`).
    pub fn etag(&self) -> String {
        etag_of(&self.hash)
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

/// Reads a JSON object, stepping over the members a predicate names.
struct Skipping<'f>(&'f dyn Fn(&str) -> bool);

impl<'de> serde::de::Visitor<'de> for Skipping<'_> {
    type Value = serde_json::Map<String, Value>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut out = serde_json::Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if (self.0)(&key) {
                map.next_value::<serde::de::IgnoredAny>()?;
            } else {
                out.insert(key, map.next_value()?);
            }
        }
        Ok(out)
    }
}

/// The tape of an entry's bytes. They were written by serde_json as an object (and a restored file's are
/// checked by its checksum), so it builds; a resource that did not would read as an empty object.
pub(super) fn tape_of(bytes: &[u8], extra: Option<&[u8]>) -> Tape {
    Tape::build(bytes, extra).unwrap_or_default()
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
pub(super) fn etag_of(hash: &[u8; 16]) -> String {
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

pub(super) fn hash_bytes(bytes: &[u8]) -> [u8; 16] {
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
