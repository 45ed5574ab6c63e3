//! The Directory Insights cursor on disk: [`FEED_FILE_NAME`] beside the snapshot file, written by the saver
//! right after each snapshot it saves, naming the snapshot version it was saved with. At start-up it is put
//! back only beside that snapshot or a later one ([`crate::cache::Store::restore_feed`]): a cursor never
//! claims events its snapshot lacks. A crash between the two writes leaves an older cursor beside a newer
//! snapshot, and the feed then applies a few events again: the cursor replays a contiguous run of events in
//! order, which lands where applying them once does.
//!
//! A small JSON document (its ids bounded by the cursor's own bound) with a `format` number of its own, so
//! the snapshot file's format does not move for it and either file can be read without the other. Written
//! as the snapshot is: a temporary file, fsync, rename, fsync of the directory.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::Path;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::PersistError;
use crate::cache::Store;
use crate::cache::insights::Cursor;

/// The file's name inside the data directory.
pub const FEED_FILE_NAME: &str = "insights-cursor.json";
/// Written first, then renamed over [`FEED_FILE_NAME`].
const FEED_TMP_NAME: &str = "insights-cursor.json.tmp";
/// Moves whenever the document's shape changes; another is refused.
pub const FEED_FORMAT: u32 = 1;
/// A larger file is not a cursor this service wrote (the cursor's ids are bounded).
const MAX_FEED_FILE: u64 = 8 << 20;

/// What the file holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SavedFeed {
    /// The snapshot version saved just before it.
    pub snapshot_version: u64,
    pub cursor: Cursor,
    /// When the full refresh behind that snapshot began.
    pub refreshed_at: Option<Timestamp>,
}

#[derive(Serialize, Deserialize)]
struct Document {
    format: u32,
    snapshot_version: u64,
    /// Milliseconds since the epoch.
    refreshed_at_ms: Option<i64>,
    cursor: Cursor,
}

/// `saved` as the document the file holds (and replicas share through Redis).
pub fn encode_feed(saved: &SavedFeed) -> Result<Vec<u8>, PersistError> {
    let doc = Document {
        format: FEED_FORMAT,
        snapshot_version: saved.snapshot_version,
        refreshed_at_ms: saved.refreshed_at.map(Timestamp::as_millisecond),
        cursor: saved.cursor.clone(),
    };
    serde_json::to_vec(&doc).map_err(|e| PersistError::Encode(e.to_string()))
}

/// [`encode_feed`]'s document read back; an error for anything else (another format included).
pub fn decode_feed(bytes: &[u8]) -> Result<SavedFeed, PersistError> {
    if bytes.len() as u64 > MAX_FEED_FILE {
        return Err(PersistError::Corrupt(
            "the cursor file is larger than any cursor",
        ));
    }
    let value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| PersistError::Decode(e.to_string()))?;
    let found = value.get("format").and_then(serde_json::Value::as_u64);
    if found != Some(u64::from(FEED_FORMAT)) {
        return Err(PersistError::WrongVersion {
            found: found.and_then(|f| u32::try_from(f).ok()).unwrap_or(0),
            expected: FEED_FORMAT,
        });
    }
    let doc: Document =
        serde_json::from_value(value).map_err(|e| PersistError::Decode(e.to_string()))?;
    let refreshed_at = doc
        .refreshed_at_ms
        .map(Timestamp::from_millisecond)
        .transpose()
        .map_err(|e| PersistError::Decode(e.to_string()))?;
    Ok(SavedFeed {
        snapshot_version: doc.snapshot_version,
        cursor: doc.cursor,
        refreshed_at,
    })
}

/// Write `saved` into `dir` atomically. Blocking.
pub fn save_feed(dir: &Path, saved: &SavedFeed) -> Result<(), PersistError> {
    let bytes = encode_feed(saved)?;
    let tmp = dir.join(FEED_TMP_NAME);
    let written = (|| -> io::Result<()> {
        let mut file = File::create(&tmp)?;
        file.write_all(&bytes)?;
        file.sync_all()?;
        drop(file);
        fs::rename(&tmp, dir.join(FEED_FILE_NAME))?;
        super::format::sync_dir(dir)
    })();
    if written.is_err() {
        // Best effort: the error being returned is the one worth reporting.
        let _ = fs::remove_file(&tmp);
    }
    Ok(written?)
}

/// Read the cursor file in `dir`: `Ok(None)` when there is none, an error when it cannot be trusted.
/// Blocking.
pub fn load_feed(dir: &Path) -> Result<Option<SavedFeed>, PersistError> {
    let file = match File::open(dir.join(FEED_FILE_NAME)) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let mut bytes = Vec::new();
    file.take(MAX_FEED_FILE + 1).read_to_end(&mut bytes)?;
    decode_feed(&bytes).map(Some)
}

/// Start-up, after the snapshot file was published: put back the cursor saved with it, so the feed is read
/// on from where the snapshot stands instead of a full refresh. The cursor restored, or `None` (no file, a
/// file that cannot be trusted, or one saved with a later snapshot than the one published: each reported).
pub async fn resume_feed(store: &Store, dir: &Path) -> Option<SavedFeed> {
    let file = dir.join(FEED_FILE_NAME);
    let target = dir.to_path_buf();
    let saved = match tokio::task::spawn_blocking(move || load_feed(&target)).await {
        Ok(Ok(Some(saved))) => saved,
        Ok(Ok(None)) => return None,
        Ok(Err(e)) => {
            tracing::warn!(file = %file.display(), error = %e, "ignoring the Directory Insights cursor file: {e}");
            return None;
        }
        Err(e) => {
            tracing::warn!(file = %file.display(), error = %e, "reading the Directory Insights cursor file panicked");
            return None;
        }
    };
    if !store
        .restore_feed(
            saved.cursor.clone(),
            saved.snapshot_version,
            saved.refreshed_at,
        )
        .await
    {
        tracing::warn!(
            file = %file.display(),
            saved_with = saved.snapshot_version,
            "ignoring the Directory Insights cursor file: it was saved with a later snapshot than the one on disk"
        );
        return None;
    }
    tracing::info!(
        file = %file.display(),
        read_through = %saved.cursor.read_through(),
        "resuming the Directory Insights feed from where the saved snapshot stands"
    );
    Some(saved)
}
