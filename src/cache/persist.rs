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
//! ([`derivation`]), then two sections encoded apart so a load decodes them on two threads: JumpCloud's data in
//! plain records (what [`Data::from_raw`] needs), and every entry as it was served (bytes, content hash,
//! `created`, `lastModified`) with the indexes over them. A restart under the same build and options serves
//! the saved entries as they are, deriving nothing, so it is ready about as fast as the file reads; under
//! others it derives every entry again, keeping the saved times of those whose content did not change. The
//! magic and format version come first in every format, so a reader of any version can refuse a file it does
//! not understand. Anything short, damaged or of another format is an error to report, never a snapshot to
//! serve.
//!
//! The records mirror the JumpCloud DTOs field by field (the DTOs' serde shape is lenient JSON, not a storage
//! format); the conversions destructure every field, so a DTO that gains one does not compile until the
//! record does (and [`FORMAT_VERSION`] moves). Must not know HTTP, SCIM or JumpCloud's wire format, nor the
//! service's lifecycle: `app` decides when to load and when to stop the saver.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use bytes::Bytes;

use super::snapshot::{Entries, Index, Indexes};
use super::{
    BuildOptions, Data, Entry, GroupSource, Id, IdSet, Kind, RawDirectory, Seen, Snapshot, Store,
};
use crate::jumpcloud::{
    JcAddress, JcAttribute, JcDirectory, JcDirectoryKind, JcGroup, JcMfa, JcPhoneNumber,
    JcRestrictedField, JcUser,
};

/// The file's name inside the data directory.
pub const FILE_NAME: &str = "snapshot.bin";
/// Written first, then renamed over [`FILE_NAME`]; never left behind by a save.
pub const TMP_NAME: &str = "snapshot.bin.tmp";
/// Identifies the file whatever its format version.
pub const MAGIC: [u8; 8] = *b"JCSCIMSN";
/// Moves whenever the payload's shape changes; a file of another version is refused, not guessed at.
pub const FORMAT_VERSION: u32 = 3;
/// Magic, format version, payload length, checksum.
pub const HEADER_LEN: usize = 8 + 4 + 8 + 4;

/// How often the saver looks for a newer published version: a pointer load, so cheap enough to do often.
const SAVE_POLL: Duration = Duration::from_millis(200);

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
    pub fn seen(&self) -> HashMap<(Kind, String), Seen> {
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

// === save and load ===

/// Write `snapshot` to `dir` atomically: a temporary file in the same directory, fsync, rename over the old
/// file, fsync of the directory. Blocking: call it from `spawn_blocking`.
pub fn save(dir: &Path, snapshot: &Snapshot, opts: &BuildOptions) -> Result<(), PersistError> {
    let payload = encode_payload(snapshot, derivation(opts))?;
    let mut header = Vec::with_capacity(HEADER_LEN);
    header.extend_from_slice(&MAGIC);
    header.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    header.extend_from_slice(&len_u64(payload.len()).to_le_bytes());
    header.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
    let tmp = dir.join(TMP_NAME);
    let written = write_replace(dir, &tmp, &header, &payload);
    if written.is_err() {
        // Best effort: the error being returned is the one worth reporting.
        let _ = fs::remove_file(&tmp);
    }
    Ok(written?)
}

fn write_replace(dir: &Path, tmp: &Path, header: &[u8], payload: &[u8]) -> io::Result<()> {
    let mut file = File::create(tmp)?;
    file.write_all(header)?;
    file.write_all(payload)?;
    file.sync_all()?;
    drop(file);
    fs::rename(tmp, file_path(dir))?;
    sync_dir(dir)
}

/// Make the rename itself durable.
#[cfg(unix)]
fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> io::Result<()> {
    Ok(())
}

/// Read the snapshot file in `dir`: `Ok(None)` when there is none, an error when it cannot be trusted.
/// Blocking.
pub fn load(dir: &Path) -> Result<Option<Persisted>, PersistError> {
    let bytes = match read_file(&file_path(dir)) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    decode(bytes).map(Some)
}

/// The whole file at `path`; a large one is read in two halves on two threads (most of a read from the page
/// cache is copying, and the copy is per page).
fn read_file(path: &Path) -> io::Result<Vec<u8>> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileExt;
        let file = File::open(path)?;
        let len = usize::try_from(file.metadata()?.len())
            .map_err(|_| io::Error::other("the file does not fit in memory"))?;
        if len >= 1 << 24 {
            let mut buf = vec![0u8; len];
            let (a, b) = buf.split_at_mut(len / 2);
            let at = len_u64(a.len());
            std::thread::scope(|scope| {
                let second = scope.spawn(|| file.read_exact_at(b, at));
                let first = file.read_exact_at(a, 0);
                let second = second
                    .join()
                    .unwrap_or_else(|p| std::panic::resume_unwind(p));
                first.and(second)
            })
            .map_err(|e| match e.kind() {
                // The file shrank while being read (a save renames a new file in, so this is another writer).
                io::ErrorKind::UnexpectedEof => {
                    io::Error::new(e.kind(), "the snapshot file changed while it was read")
                }
                _ => e,
            })?;
            return Ok(buf);
        }
    }
    fs::read(path)
}

/// Check the frame (magic, version, length, checksum), then decode the payload: what [`load`] does with the
/// file's bytes. The restored entries' bytes are slices of `file`, which lives as long as the first of them;
/// hence `Into<Bytes>` rather than a borrowed slice, so a file of tens of MB read at start-up is not copied.
///
/// Every length in the header is checked against the bytes actually there without arithmetic that can wrap,
/// so a damaged or hostile file is an error, whatever its header claims.
pub fn decode(file: impl Into<Bytes>) -> Result<Persisted, PersistError> {
    let file: Bytes = file.into();
    let payload = check_frame(&file)?;
    decode_payload(&file, payload)
}

/// The payload inside `bytes`, once the header's magic, version, length and checksum agree with it.
fn check_frame(bytes: &[u8]) -> Result<&[u8], PersistError> {
    let magic_len = bytes.len().min(MAGIC.len());
    if bytes[..magic_len] != MAGIC[..magic_len] {
        return Err(PersistError::Corrupt("not a snapshot file (bad magic)"));
    }
    let Some((header, payload)) = bytes.split_at_checked(HEADER_LEN) else {
        return Err(PersistError::Truncated {
            expected: len_u64(HEADER_LEN),
            found: len_u64(bytes.len()),
        });
    };
    let found = u32::from_le_bytes(header_field(header, 8));
    if found != FORMAT_VERSION {
        return Err(PersistError::WrongVersion {
            found,
            expected: FORMAT_VERSION,
        });
    }
    let claimed = u64::from_le_bytes(header_field(header, 12));
    let crc = u32::from_le_bytes(header_field(header, 20));
    // The whole file the header describes; `None` when no file could be that long.
    let expected = len_u64(HEADER_LEN).checked_add(claimed);
    let claimed_len = usize::try_from(claimed).ok();
    match (claimed_len, expected) {
        (Some(len), Some(_)) if len == payload.len() => {}
        (Some(len), Some(_)) if len < payload.len() => {
            return Err(PersistError::Corrupt("bytes after the payload"));
        }
        (Some(_), Some(expected)) => {
            return Err(PersistError::Truncated {
                expected,
                found: len_u64(bytes.len()),
            });
        }
        _ => {
            return Err(PersistError::ImpossibleLength {
                claimed,
                held: len_u64(payload.len()),
            });
        }
    }
    if checksum(payload) != crc {
        return Err(PersistError::Corrupt("checksum mismatch"));
    }
    Ok(payload)
}

/// `N` header bytes at `at` (zeros past the end, which a header of [`HEADER_LEN`] bytes never reaches).
fn header_field<const N: usize>(header: &[u8], at: usize) -> [u8; N] {
    header
        .get(at..at.saturating_add(N))
        .and_then(|b| b.try_into().ok())
        .unwrap_or([0; N])
}

/// A length as the file format writes it: `usize` is at most 64 bits wherever this builds.
fn len_u64(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

/// CRC-32 of `bytes`, the halves on two threads.
fn checksum(bytes: &[u8]) -> u32 {
    if bytes.len() < 1 << 20 {
        return crc32fast::hash(bytes);
    }
    let (a, b) = bytes.split_at(bytes.len() / 2);
    let (mut first, second) = std::thread::scope(|scope| {
        let second = scope.spawn(|| {
            let mut h = crc32fast::Hasher::new();
            h.update(b);
            h
        });
        let mut h = crc32fast::Hasher::new();
        h.update(a);
        let second = second
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p));
        (h, second)
    });
    first.combine(&second);
    first.finalize()
}

/// The snapshot a loaded file describes. Derived with the same build and options, the entries are served
/// as saved (bytes, ETags, `created` and `lastModified`) without deriving them again, and the indexes are
/// the saved ones. Otherwise (another build or a changed mapping) every entry is derived from the data:
/// those whose content is unchanged keep their saved times, the others are stamped now.
pub fn restore(p: Persisted, opts: &BuildOptions) -> Snapshot {
    if p.servable(opts) {
        let (serving, raw) = p.into_serving();
        return serving.with_data(Data::from_raw(raw));
    }
    let seen = p.seen();
    let lookup = |kind: Kind, rid: &str| seen.get(&(kind, rid.to_owned())).copied();
    Snapshot::build(
        Data::from_raw(p.raw),
        p.version,
        p.taken_at,
        Timestamp::now(),
        opts,
        None,
        &lookup,
    )
}

// === start-up ===

/// Start-up: create `dir` if missing, then load its snapshot file and publish it, so the service is ready at
/// once with the snapshot's own age, and later versions continue after its version. Returns the version
/// published (which the file already holds), or `None` when there is no usable file: that is reported, with
/// the file and the reason, and the service starts empty as without a data directory.
///
/// A file this build wrote with the same options is published as soon as its entries are: reads are served
/// from then on, and JumpCloud's data behind them follows on a blocking thread (writes wait for it, see
/// [`Store::load_complete`]).
pub async fn load_and_publish(store: &Arc<Store>, dir: &Path) -> Option<u64> {
    let file = file_path(dir);
    let started = tokio::time::Instant::now();
    let opts = store.options.clone();
    let target = dir.to_path_buf();
    let loaded = tokio::task::spawn_blocking(move || {
        fs::create_dir_all(&target)?;
        let Some(p) = load(&target)? else {
            return Ok(None);
        };
        if p.servable(&opts) {
            let (serving, raw) = p.into_serving();
            Ok(Some((serving, Some(raw))))
        } else {
            Ok::<_, PersistError>(Some((restore(p, &opts), None)))
        }
    })
    .await;
    let (snapshot, pending) = match loaded {
        Ok(Ok(Some(s))) => s,
        Ok(Ok(None)) => {
            tracing::warn!(file = %file.display(), "no snapshot file; waiting for the first refresh");
            return None;
        }
        Ok(Err(e)) => {
            tracing::warn!(file = %file.display(), error = %e, "ignoring the snapshot file: {e}");
            return None;
        }
        Err(e) => {
            tracing::warn!(file = %file.display(), error = %e, "loading the snapshot file panicked");
            return None;
        }
    };
    let version = snapshot.version;
    let age_s = super::age_seconds(snapshot.taken_at, Timestamp::now());
    let (users, groups) = (snapshot.user_count(), snapshot.group_count());
    let Some(snapshot) = store.publish_restored(snapshot).await else {
        // Something fresher was published meanwhile; never replace it with the file.
        return None;
    };
    tracing::info!(
        file = %file.display(),
        version,
        age_s,
        users,
        groups,
        duration_ms = started.elapsed().as_millis() as u64,
        "serving snapshot version {version} from disk, {age_s} s old"
    );
    if let Some(raw) = pending {
        tokio::spawn(complete_restored(store.clone(), snapshot, raw));
    }
    Some(version)
}

/// Restore JumpCloud's data behind a serving-only `snapshot` and publish the complete version in its place,
/// unless something newer was published meanwhile. Then parse the restored entries' JSON, so the first
/// filter that scans them does not pay for it.
async fn complete_restored(store: Arc<Store>, serving: Arc<Snapshot>, raw: RawDirectory) {
    let started = tokio::time::Instant::now();
    let version = serving.version;
    let base = serving.clone();
    let built = tokio::task::spawn_blocking(move || base.with_data(Data::from_raw(raw))).await;
    let complete = match built {
        Ok(s) => Arc::new(s),
        Err(e) => {
            tracing::error!(
                version,
                error = %e,
                "restoring JumpCloud's data behind snapshot version {version} panicked; writes wait for the next refresh"
            );
            return;
        }
    };
    if !store.complete_restored(&serving, complete.clone()).await {
        return;
    }
    tracing::info!(
        version,
        duration_ms = started.elapsed().as_millis() as u64,
        "restored JumpCloud's data behind snapshot version {version}; writes proceed"
    );
    drop(serving);
    let _ = tokio::task::spawn_blocking(move || {
        for e in complete.users.values().chain(complete.groups.values()) {
            e.json();
        }
    })
    .await;
}

// === the saver ===

/// The background saver; stop it with [`SaverHandle::flush_and_stop`]. Dropping the handle also stops it after
/// one last save, but nothing waits for that save.
#[derive(Debug)]
pub struct SaverHandle {
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

/// Save every version `store` publishes to `dir`, one save at a time: a burst of versions published during a
/// save is written once, as its latest. `on_disk` is the version the file already holds (the one just loaded),
/// so it is not written again.
pub fn spawn_saver(store: Arc<Store>, dir: PathBuf, on_disk: Option<u64>) -> SaverHandle {
    let (stop, stopped) = oneshot::channel();
    let task = tokio::spawn(run_saver(store, dir, on_disk.unwrap_or(0), stopped));
    SaverHandle { stop, task }
}

// === impl SaverHandle ===

impl SaverHandle {
    /// Save the latest published version if it is not on disk yet, then stop.
    pub async fn flush_and_stop(self) {
        let _ = self.stop.send(());
        if let Err(e) = self.task.await {
            tracing::warn!(error = %e, "the snapshot saver ended abnormally");
        }
    }
}

async fn run_saver(
    store: Arc<Store>,
    dir: PathBuf,
    mut attempted: u64,
    mut stopped: oneshot::Receiver<()>,
) {
    let mut tick = tokio::time::interval(SAVE_POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let stopping = tokio::select! {
            _ = tick.tick() => false,
            // A dropped handle stops the saver too.
            _ = &mut stopped => true,
        };
        save_if_newer(&store, &dir, &mut attempted).await;
        if stopping {
            return;
        }
    }
}

/// Save the published snapshot if its version is newer than the last one tried. A failed save is reported
/// and not retried until a newer version is published (a full disk must not turn into a warning every tick).
async fn save_if_newer(store: &Store, dir: &Path, attempted: &mut u64) {
    let Some(snapshot) = store.load() else {
        return;
    };
    let version = snapshot.version;
    // A serving-only version is the file itself, restored; it has no data to write.
    if version <= *attempted || snapshot.is_serving_only() {
        return;
    }
    *attempted = version;
    let started = tokio::time::Instant::now();
    let target = dir.to_path_buf();
    let opts = store.options.clone();
    let saved = tokio::task::spawn_blocking(move || save(&target, &snapshot, &opts)).await;
    let file = file_path(dir);
    match saved {
        Ok(Ok(())) => tracing::debug!(
            file = %file.display(),
            version,
            duration_ms = started.elapsed().as_millis() as u64,
            "saved snapshot version {version}"
        ),
        Ok(Err(e)) => tracing::warn!(
            file = %file.display(),
            version,
            error = %e,
            "could not save snapshot version {version}"
        ),
        Err(e) => tracing::warn!(
            file = %file.display(),
            version,
            error = %e,
            "saving snapshot version {version} panicked"
        ),
    }
}

// === the payload ===

/// What one file holds after its header. The data and the entries are encoded apart, so a load decodes them
/// on two threads.
#[derive(Serialize)]
struct PayloadOut<'a> {
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
struct PayloadIn<'a> {
    version: u64,
    taken_at: i128,
    derivation: String,
    #[serde(borrow)]
    data: Blob<'a>,
    #[serde(borrow)]
    entries: Blob<'a>,
}

/// Bytes as one run, borrowed when read back (serde would write a `[u8]` element by element).
struct Blob<'a>(&'a [u8]);

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
struct DataSection {
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
struct EntrySection<'a> {
    /// Users then groups, each in id order.
    #[serde(borrow)]
    entries: Vec<EntryRec<'a>>,
    /// In the order of [`Indexes::as_array`]: key → positions in `entries`.
    #[serde(borrow)]
    indexes: Vec<Vec<(&'a str, Vec<u32>)>>,
}

#[derive(Serialize, Deserialize)]
struct EntryRec<'a> {
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

fn nanos(t: Timestamp) -> i128 {
    t.as_nanosecond()
}

fn timestamp(n: i128) -> Result<Timestamp, PersistError> {
    Timestamp::from_nanosecond(n).map_err(|e| PersistError::Decode(e.to_string()))
}

/// An edge map in id order, so the same data always gives the same bytes.
fn edges<'a, S>(map: impl IntoIterator<Item = (&'a super::Id, S)>) -> Vec<(String, Vec<String>)>
where
    S: IntoIterator<Item = &'a super::Id>,
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

fn encode<T: Serialize>(v: &T) -> Result<Vec<u8>, PersistError> {
    postcard::to_allocvec(v).map_err(|e| PersistError::Encode(e.to_string()))
}

/// Decode one postcard value that must fill `bytes` exactly.
fn decode_exact<'a, T: Deserialize<'a>>(bytes: &'a [u8], what: &str) -> Result<T, PersistError> {
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
fn encode_payload(s: &Snapshot, opts_derivation: String) -> Result<Vec<u8>, PersistError> {
    let (data, entries) = std::thread::scope(|scope| {
        let data = scope.spawn(|| encode(&DataSection::from_snapshot(s)));
        let entries = encode(&EntrySection::from_snapshot(s));
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
fn decode_payload(file: &Bytes, payload: &[u8]) -> Result<Persisted, PersistError> {
    let head: PayloadIn<'_> = decode_exact(payload, "payload")?;
    let (raw, entries) = std::thread::scope(|scope| {
        let raw =
            scope.spawn(|| decode_exact::<DataSection>(head.data.0, "data section")?.into_raw());
        let entries = decode_exact::<EntrySection>(head.entries.0, "entry section")
            .and_then(|section| section.restore(file));
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
            users: d.users.values().map(|u| UserRec::from(&**u)).collect(),
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
                    Kind::User => 0,
                    Kind::Group => 1,
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
            .as_array()
            .into_iter()
            .map(|(map, _)| {
                let mut rows: Vec<(&str, Vec<u32>)> = map
                    .iter()
                    .map(|(key, ids)| {
                        // An id no entry has names nothing a reader could find: it is left out.
                        let at = ids.iter().filter_map(|i| position.get(&**i).copied());
                        (&**key, at.collect())
                    })
                    .collect();
                rows.sort_unstable_by(|a, b| a.0.cmp(b.0));
                rows
            })
            .collect();
        EntrySection { entries, indexes }
    }

    /// The entries as saved, deriving nothing, and the indexes over them. The entries' bytes are slices of
    /// `file`, which this section borrows from.
    fn restore(self, file: &Bytes) -> Result<(Entries, Entries, Indexes), PersistError> {
        if self.indexes.len() != Indexes::COUNT {
            return Err(PersistError::Decode(format!(
                "{} indexes where {} were expected",
                self.indexes.len(),
                Indexes::COUNT
            )));
        }
        let ids: Vec<Id> = self.entries.iter().map(|r| Id::from(r.id)).collect();
        let EntrySection { entries, indexes } = self;
        let mut rows = indexes.into_iter();
        let first: Vec<_> = rows.by_ref().take(Indexes::COUNT / 2).collect();
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
            let all: Vec<Index> = first.into_iter().chain(second).collect();
            let all: [Index; Indexes::COUNT] = all
                .try_into()
                .map_err(|_| PersistError::Decode("index count changed".into()))?;
            Ok((users, groups, Indexes::from_array(all)))
        })
    }
}

/// The entries by kind and id, each sharing its id with `ids` and its bytes with `file`.
fn entry_maps(
    entries: Vec<EntryRec<'_>>,
    ids: &[Id],
    file: &Bytes,
) -> Result<(Entries, Entries), PersistError> {
    let mut users = Entries::new();
    let mut groups = Entries::new();
    for (r, rid) in entries.into_iter().zip(ids) {
        let kind = match r.kind {
            0 => Kind::User,
            1 => Kind::Group,
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
            Kind::User => users.insert(rid.clone(), entry),
            Kind::Group => groups.insert(rid.clone(), entry),
        };
    }
    Ok((users, groups))
}

/// Indexes from their saved rows: key → positions in `ids`.
fn index_maps(saved: Vec<Vec<(&str, Vec<u32>)>>, ids: &[Id]) -> Result<Vec<Index>, PersistError> {
    saved
        .into_iter()
        .map(|rows| {
            let mut map = Index::new();
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
                map.insert(Arc::from(key), set);
            }
            Ok(map)
        })
        .collect()
}

// === records mirroring the DTOs ===

#[derive(Serialize, Deserialize)]
struct UserRec {
    id: String,
    username: String,
    email: String,
    firstname: Option<String>,
    middlename: Option<String>,
    lastname: Option<String>,
    displayname: Option<String>,
    alternate_email: Option<String>,
    state: Option<String>,
    suspended: bool,
    activated: bool,
    account_locked: bool,
    password_expired: bool,
    employee_identifier: Option<String>,
    job_title: Option<String>,
    department: Option<String>,
    cost_center: Option<String>,
    company: Option<String>,
    employee_type: Option<String>,
    location: Option<String>,
    description: Option<String>,
    manager: Option<String>,
    phone_numbers: Vec<PhoneRec>,
    addresses: Vec<AddressRec>,
    /// (name, value)
    attributes: Vec<(String, String)>,
    mfa: Option<MfaRec>,
    /// Free-form JSON, kept as its text.
    admin: Option<String>,
    restricted_fields: Vec<RestrictedRec>,
    created: Option<String>,
    unix_uid: Option<u64>,
}

#[derive(Serialize, Deserialize)]
struct PhoneRec {
    id: Option<String>,
    kind: Option<String>,
    number: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct AddressRec {
    id: Option<String>,
    kind: Option<String>,
    po_box: Option<String>,
    extended_address: Option<String>,
    street_address: Option<String>,
    locality: Option<String>,
    region: Option<String>,
    postal_code: Option<String>,
    country: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct MfaRec {
    configured: bool,
    exclusion: bool,
    exclusion_days: Option<u64>,
    exclusion_until: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct RestrictedRec {
    field: String,
    id: Option<String>,
    kind: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct GroupRec {
    id: String,
    name: String,
    description: Option<String>,
    email: Option<String>,
    /// A JSON object, kept as its text.
    attributes: Option<String>,
    membership_method: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct DirectoryRec {
    id: String,
    name: Option<String>,
    /// The wire value of `type`.
    kind: String,
    default_domain: Option<String>,
}

fn json_text<T: Serialize>(v: &T) -> String {
    // A JSON value always serialises.
    serde_json::to_string(v).unwrap_or_default()
}

fn from_json_text<T: serde::de::DeserializeOwned>(s: &str) -> Result<T, PersistError> {
    serde_json::from_str(s).map_err(|e| PersistError::Decode(e.to_string()))
}

impl From<&JcUser> for UserRec {
    fn from(u: &JcUser) -> Self {
        let JcUser {
            id,
            username,
            email,
            firstname,
            middlename,
            lastname,
            displayname,
            alternate_email,
            state,
            suspended,
            activated,
            account_locked,
            password_expired,
            employee_identifier,
            job_title,
            department,
            cost_center,
            company,
            employee_type,
            location,
            description,
            manager,
            phone_numbers,
            addresses,
            attributes,
            mfa,
            admin,
            restricted_fields,
            created,
            unix_uid,
        } = u;
        UserRec {
            id: id.clone(),
            username: username.clone(),
            email: email.clone(),
            firstname: firstname.clone(),
            middlename: middlename.clone(),
            lastname: lastname.clone(),
            displayname: displayname.clone(),
            alternate_email: alternate_email.clone(),
            state: state.clone(),
            suspended: *suspended,
            activated: *activated,
            account_locked: *account_locked,
            password_expired: *password_expired,
            employee_identifier: employee_identifier.clone(),
            job_title: job_title.clone(),
            department: department.clone(),
            cost_center: cost_center.clone(),
            company: company.clone(),
            employee_type: employee_type.clone(),
            location: location.clone(),
            description: description.clone(),
            manager: manager.clone(),
            phone_numbers: phone_numbers.iter().map(PhoneRec::from).collect(),
            addresses: addresses.iter().map(AddressRec::from).collect(),
            attributes: attributes
                .iter()
                .map(|JcAttribute { name, value }| (name.clone(), value.clone()))
                .collect(),
            mfa: mfa.as_ref().map(MfaRec::from),
            admin: admin.as_ref().map(json_text),
            restricted_fields: restricted_fields.iter().map(RestrictedRec::from).collect(),
            created: created.clone(),
            unix_uid: *unix_uid,
        }
    }
}

impl TryFrom<UserRec> for JcUser {
    type Error = PersistError;
    fn try_from(u: UserRec) -> Result<Self, PersistError> {
        Ok(JcUser {
            id: u.id,
            username: u.username,
            email: u.email,
            firstname: u.firstname,
            middlename: u.middlename,
            lastname: u.lastname,
            displayname: u.displayname,
            alternate_email: u.alternate_email,
            state: u.state,
            suspended: u.suspended,
            activated: u.activated,
            account_locked: u.account_locked,
            password_expired: u.password_expired,
            employee_identifier: u.employee_identifier,
            job_title: u.job_title,
            department: u.department,
            cost_center: u.cost_center,
            company: u.company,
            employee_type: u.employee_type,
            location: u.location,
            description: u.description,
            manager: u.manager,
            phone_numbers: u.phone_numbers.into_iter().map(Into::into).collect(),
            addresses: u.addresses.into_iter().map(Into::into).collect(),
            attributes: u
                .attributes
                .into_iter()
                .map(|(name, value)| JcAttribute { name, value })
                .collect(),
            mfa: u.mfa.map(Into::into),
            admin: u.admin.as_deref().map(from_json_text).transpose()?,
            restricted_fields: u.restricted_fields.into_iter().map(Into::into).collect(),
            created: u.created,
            unix_uid: u.unix_uid,
        })
    }
}

impl From<&JcPhoneNumber> for PhoneRec {
    fn from(p: &JcPhoneNumber) -> Self {
        let JcPhoneNumber { id, kind, number } = p;
        PhoneRec {
            id: id.clone(),
            kind: kind.clone(),
            number: number.clone(),
        }
    }
}

impl From<PhoneRec> for JcPhoneNumber {
    fn from(p: PhoneRec) -> Self {
        JcPhoneNumber {
            id: p.id,
            kind: p.kind,
            number: p.number,
        }
    }
}

impl From<&JcAddress> for AddressRec {
    fn from(a: &JcAddress) -> Self {
        let JcAddress {
            id,
            kind,
            po_box,
            extended_address,
            street_address,
            locality,
            region,
            postal_code,
            country,
        } = a;
        AddressRec {
            id: id.clone(),
            kind: kind.clone(),
            po_box: po_box.clone(),
            extended_address: extended_address.clone(),
            street_address: street_address.clone(),
            locality: locality.clone(),
            region: region.clone(),
            postal_code: postal_code.clone(),
            country: country.clone(),
        }
    }
}

impl From<AddressRec> for JcAddress {
    fn from(a: AddressRec) -> Self {
        JcAddress {
            id: a.id,
            kind: a.kind,
            po_box: a.po_box,
            extended_address: a.extended_address,
            street_address: a.street_address,
            locality: a.locality,
            region: a.region,
            postal_code: a.postal_code,
            country: a.country,
        }
    }
}

impl From<&JcMfa> for MfaRec {
    fn from(m: &JcMfa) -> Self {
        let JcMfa {
            configured,
            exclusion,
            exclusion_days,
            exclusion_until,
        } = m;
        MfaRec {
            configured: *configured,
            exclusion: *exclusion,
            exclusion_days: *exclusion_days,
            exclusion_until: exclusion_until.clone(),
        }
    }
}

impl From<MfaRec> for JcMfa {
    fn from(m: MfaRec) -> Self {
        JcMfa {
            configured: m.configured,
            exclusion: m.exclusion,
            exclusion_days: m.exclusion_days,
            exclusion_until: m.exclusion_until,
        }
    }
}

impl From<&JcRestrictedField> for RestrictedRec {
    fn from(r: &JcRestrictedField) -> Self {
        let JcRestrictedField { field, id, kind } = r;
        RestrictedRec {
            field: field.clone(),
            id: id.clone(),
            kind: kind.clone(),
        }
    }
}

impl From<RestrictedRec> for JcRestrictedField {
    fn from(r: RestrictedRec) -> Self {
        JcRestrictedField {
            field: r.field,
            id: r.id,
            kind: r.kind,
        }
    }
}

impl From<&JcGroup> for GroupRec {
    fn from(g: &JcGroup) -> Self {
        let JcGroup {
            id,
            name,
            description,
            email,
            attributes,
            membership_method,
        } = g;
        GroupRec {
            id: id.clone(),
            name: name.clone(),
            description: description.clone(),
            email: email.clone(),
            attributes: attributes.as_ref().map(json_text),
            membership_method: membership_method.clone(),
        }
    }
}

impl TryFrom<GroupRec> for JcGroup {
    type Error = PersistError;
    fn try_from(g: GroupRec) -> Result<Self, PersistError> {
        Ok(JcGroup {
            id: g.id,
            name: g.name,
            description: g.description,
            email: g.email,
            attributes: g.attributes.as_deref().map(from_json_text).transpose()?,
            membership_method: g.membership_method,
        })
    }
}

impl From<&JcDirectory> for DirectoryRec {
    fn from(d: &JcDirectory) -> Self {
        let JcDirectory {
            id,
            name,
            kind,
            default_domain,
        } = d;
        DirectoryRec {
            id: id.clone(),
            name: name.clone(),
            kind: kind.as_str().to_owned(),
            default_domain: default_domain.clone(),
        }
    }
}

impl From<DirectoryRec> for JcDirectory {
    fn from(d: DirectoryRec) -> Self {
        JcDirectory {
            id: d.id,
            name: d.name,
            kind: JcDirectoryKind::from(d.kind.as_str()),
            default_domain: d.default_domain,
        }
    }
}

#[cfg(test)]
#[path = "persist_tests.rs"]
mod tests;
