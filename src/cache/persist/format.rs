//! The file's frame: magic, format version, payload length and CRC-32 ahead of the payload; the atomic
//! write (temporary file, fsync, rename, fsync of the directory) and a load that refuses anything short,
//! damaged or of another format.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::Path;

use bytes::Bytes;

use crate::cache::{BuildOptions, Snapshot};

use super::payload::{decode_payload, encode_payload};
use super::{
    FORMAT_VERSION, HEADER_LEN, MAGIC, PersistError, Persisted, TMP_NAME, derivation, file_path,
};

// === save and load ===

/// Write `snapshot` to `dir` atomically: a temporary file in the same directory, fsync, rename over the old
/// file, fsync of the directory. Blocking: call it from `spawn_blocking`.
pub fn save(dir: &Path, snapshot: &Snapshot, opts: &BuildOptions) -> Result<(), PersistError> {
    let payload = encode_payload(snapshot, derivation(opts))?;
    let header = header_of(&payload);
    let tmp = dir.join(TMP_NAME);
    let written = write_replace(dir, &tmp, &header, &payload);
    if written.is_err() {
        // Best effort: the error being returned is the one worth reporting.
        let _ = fs::remove_file(&tmp);
    }
    Ok(written?)
}

/// The frame's header for `payload`.
fn header_of(payload: &[u8]) -> Vec<u8> {
    let mut header = Vec::with_capacity(HEADER_LEN);
    header.extend_from_slice(&MAGIC);
    header.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    header.extend_from_slice(&len_u64(payload.len()).to_le_bytes());
    header.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
    header
}

/// `snapshot` framed exactly as [`save`] writes it, in memory ([`decode`] reads it back): how replicas
/// share a version through Redis. Blocking (it compresses): call it from `spawn_blocking`.
pub fn encode(snapshot: &Snapshot, opts: &BuildOptions) -> Result<Vec<u8>, PersistError> {
    let payload = encode_payload(snapshot, derivation(opts))?;
    let mut framed = header_of(&payload);
    framed.extend_from_slice(&payload);
    Ok(framed)
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
pub(super) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(not(unix))]
pub(super) fn sync_dir(_dir: &Path) -> io::Result<()> {
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
/// file's bytes.
///
/// Every length in the header is checked against the bytes actually there without arithmetic that can wrap,
/// so a damaged or hostile file is an error, whatever its header claims.
pub fn decode(file: impl Into<Bytes>) -> Result<Persisted, PersistError> {
    let file: Bytes = file.into();
    let payload = check_frame(&file)?;
    decode_payload(payload)
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
