//! The published snapshot on disk, so a restart during a JumpCloud outage serves at once.
//!
//! Owns the file format and its atomic write, and the background saver that keeps the file at the latest
//! published version. The file is `snapshot.bin` in the data directory:
//!
//! ```text
//! magic "JCSCIMSN" (8) | format u32 LE (4) | payload length u64 LE (8) | CRC-32 of the payload u32 LE (4) | payload
//! ```
//!
//! The payload is `postcard`: the snapshot's version and `taken_at`, what its entries were derived with
//! ([`derivation`]), then two sections encoded and compressed (LZ4) apart so a load decodes them on two
//! threads: JumpCloud's data in plain records (what [`Data::from_raw`] needs), and every entry as it was
//! served (bytes, content hash, `created`, `lastModified`) with the indexes over them. A restart under the
//! same build and options serves the saved entries as they are, deriving nothing, so it is ready about as
//! fast as the file reads; under others it derives every entry again, keeping the saved times of those whose content did not change. The
//! magic and format version come first in every format, so a reader of any version can refuse a file it does
//! not understand. Anything short, damaged or of another format is an error to report, never a snapshot to
//! serve.
//!
//! The records mirror the JumpCloud DTOs field by field (the DTOs' serde shape is lenient JSON, not a storage
//! format); the conversions destructure every field, so a DTO that gains one does not compile until the
//! record does (and [`FORMAT_VERSION`] moves). Must not know HTTP, SCIM or JumpCloud's wire format, nor how
//! a version is published beyond [`Store`](crate::cache::Store)'s operations.
//!
//! Rooms: `format` (the frame: header, checksum, atomic write, load), `payload` (what the frame carries:
//! sections, entries, indexes), `squeeze` (a section compressed in LZ4 chunks), `records` (plain records
//! mirroring the JumpCloud DTOs), `restore` (a loaded file back into a snapshot, and start-up), `feed` (the
//! Directory Insights cursor, a small file of its own written after each snapshot) and `saver` (the
//! background task that keeps both files current).

mod delta;
mod feed;
mod format;
mod payload;
mod restore;
mod saver;
mod squeeze;

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};

use jiff::Timestamp;

pub use delta::{Change, apply_delta, encode_delta};
pub use feed::{
    FEED_FILE_NAME, FEED_FORMAT, SavedFeed, decode_feed, encode_feed, load_feed, resume_feed,
    save_feed,
};
pub use format::{decode, encode, load, save};
pub use payload::derivation;
pub use restore::{load_and_publish, restore};
pub use saver::run_saver;

use super::snapshot::{Entries, Indexes};
use super::{BuildOptions, RawDirectory, Seen, Snapshot};
use crate::scim::ResourceKind;

/// The file's name inside the data directory.
pub const FILE_NAME: &str = "snapshot.bin";
/// Written first, then renamed over [`FILE_NAME`]; never left behind by a save.
pub const TMP_NAME: &str = "snapshot.bin.tmp";
/// Identifies the file whatever its format version.
pub const MAGIC: [u8; 8] = *b"JCSCIMSN";
/// Moves whenever the payload's shape changes; a file of another version is refused, not guessed at.
pub const FORMAT_VERSION: u32 = 6;
/// Magic, format version, payload length, checksum.
pub const HEADER_LEN: usize = 8 + 4 + 8 + 4;

/// Why a snapshot could not be saved or loaded.
#[derive(Debug, thiserror::Error)]
pub enum PersistError {
    #[error("i/o error: {0}")]
    Io(#[from] io::Error),
    #[error("file is truncated: {found} bytes where {expected} were expected")]
    Truncated { expected: u64, found: u64 },
    /// A payload length no file could have (it overflows the file size), so not a truncation.
    #[error(
        "file is corrupt: the header claims a payload of {claimed} bytes; the file holds {held} after the header"
    )]
    ImpossibleLength { claimed: u64, held: u64 },
    #[error("file is corrupt: {0}")]
    Corrupt(&'static str),
    #[error("file has format version {found}, this build reads {expected}")]
    WrongVersion { found: u32, expected: u32 },
    #[error("payload does not decode: {0}")]
    Decode(String),
    #[error("snapshot does not encode: {0}")]
    Encode(String),
}

/// A snapshot as read back from disk: everything [`restore`] needs.
#[derive(Debug, Clone)]
pub struct Persisted {
    pub version: u64,
    pub taken_at: Timestamp,
    /// What the entries were derived with ([`derivation`]).
    pub derivation: String,
    pub raw: RawDirectory,
    /// Every entry as it was served, by id.
    pub users: Entries,
    pub groups: Entries,
    /// The indexes over the entries.
    pub indexes: Indexes,
}

impl Persisted {
    /// Content times of every entry, by resource type and id.
    pub fn seen(&self) -> HashMap<(ResourceKind, String), Seen> {
        self.users
            .values()
            .chain(self.groups.values())
            .map(|e| ((e.kind, e.id.to_string()), e.seen()))
            .collect()
    }

    /// Whether the saved entries can be served as they are under `opts`: derived by this build with the same
    /// options, one per user.
    pub fn servable(&self, opts: &BuildOptions) -> bool {
        self.derivation == derivation(opts) && self.users.len() == self.raw.users.len()
    }

    /// A snapshot serving the saved entries at once, and the data it still lacks: reads need only the
    /// entries, writes and refreshes need the data ([`Snapshot::with_data`] completes it). Only for a
    /// [`servable`](Persisted::servable) file.
    pub fn into_serving(self) -> (Snapshot, RawDirectory) {
        let serving = Snapshot::serving(
            self.version,
            self.taken_at,
            self.users,
            self.groups,
            self.indexes,
        );
        (serving, self.raw)
    }
}

/// Where the snapshot file lives in `dir`.
pub fn file_path(dir: &Path) -> PathBuf {
    dir.join(FILE_NAME)
}

#[cfg(test)]
mod tests;
