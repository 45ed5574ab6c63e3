//! Snapshot version numbers that never repeat, across restarts and crashes.
//!
//! `X-Snapshot-Version`, pinned walks, cursors and (later) replicas key on a version: a number served once must
//! never name other content. Within a process, versions come from a counter. With a data directory, the
//! counter's future is reserved on disk before it is used: the file `versions` holds the highest version this
//! service may hand out, written (temporary file, fsync, rename, fsync of the directory) a block of
//! [`BLOCK`] ahead. A restart, even after `kill -9`, starts past the reservation, so a version published but
//! not yet saved in the snapshot file is never reused. Without a data directory nothing survives a restart,
//! versions start at 1 again, and the service says so in its documentation.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Versions reserved at a time.
pub const BLOCK: u64 = 1024;
/// The reservation file in the data directory.
pub const FILE_NAME: &str = "versions";

/// Hands out strictly growing version numbers.
#[derive(Debug)]
pub struct Versions {
    inner: Mutex<Inner>,
}

#[derive(Debug)]
struct Inner {
    next: u64,
    /// With a data directory: the highest version reserved on disk, and where.
    reserved: Option<(u64, PathBuf)>,
}

impl Default for Versions {
    fn default() -> Self {
        Versions::in_memory()
    }
}

impl Versions {
    /// Versions from 1, kept only in this process.
    pub fn in_memory() -> Versions {
        Versions {
            inner: Mutex::new(Inner {
                next: 1,
                reserved: None,
            }),
        }
    }

    /// Versions reserved in `dir`: the first is past everything an earlier process reserved there.
    pub fn on_disk(dir: &Path) -> io::Result<Versions> {
        fs::create_dir_all(dir)?;
        let file = dir.join(FILE_NAME);
        let reserved = match fs::read_to_string(&file) {
            Ok(text) => text.trim().parse::<u64>().map_err(|_| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("{} does not hold a version number", file.display()),
                )
            })?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => 0,
            Err(e) => return Err(e),
        };
        let next = reserved.saturating_add(1);
        let until = next.saturating_add(BLOCK - 1);
        write_reservation(&file, until)?;
        Ok(Versions {
            inner: Mutex::new(Inner {
                next,
                reserved: Some((until, file)),
            }),
        })
    }

    /// The next version. With a data directory, a new block is reserved on disk before the current one runs
    /// out; should that write fail, versions go on from memory (and the failure is logged), since refusing
    /// to publish would be worse than a version that could repeat after a second failure and a crash.
    pub fn take(&self) -> u64 {
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let v = g.next;
        g.next = v.saturating_add(1);
        if let Some((until, file)) = &mut g.reserved
            && v >= *until
        {
            let new_until = v.saturating_add(BLOCK);
            match write_reservation(file, new_until) {
                Ok(()) => *until = new_until,
                Err(e) => {
                    tracing::error!(file = %file.display(), error = %e, "reserving snapshot versions on disk failed")
                }
            }
        }
        v
    }

    /// Make versions continue after `v` (a snapshot restored from disk, or a version seen elsewhere).
    pub fn past(&self, v: u64) {
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if g.next <= v {
            g.next = v.saturating_add(1);
        }
    }

    /// The version the next [`take`](Self::take) returns.
    pub fn peek(&self) -> u64 {
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).next
    }
}

fn write_reservation(file: &Path, until: u64) -> io::Result<()> {
    let tmp = file.with_extension("tmp");
    {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(format!("{until}\n").as_bytes())?;
        f.sync_all()?;
    }
    fs::rename(&tmp, file)?;
    if let Some(dir) = file.parent() {
        fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("jcscim-versions-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn a_restart_never_reuses_a_version_even_without_a_save() {
        let d = dir("restart");
        let first = Versions::on_disk(&d).unwrap();
        let handed: Vec<u64> = (0..10).map(|_| first.take()).collect();
        assert_eq!(handed, (1..=10).collect::<Vec<_>>());
        // A crash: nothing is saved but the reservation, which is already on disk.
        drop(first);
        let second = Versions::on_disk(&d).unwrap();
        let v = second.take();
        assert!(v > 10, "{v} was handed out before the crash");
        assert_eq!(v, BLOCK + 1);
        // Past a block, the reservation moves ahead before the versions are used.
        for _ in 0..BLOCK + 5 {
            second.take();
        }
        let on_disk: u64 = fs::read_to_string(d.join(FILE_NAME))
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        assert!(on_disk >= second.peek(), "{on_disk} < {}", second.peek());
        let third = Versions::on_disk(&d).unwrap();
        assert!(third.take() > second.peek());
        fs::remove_dir_all(&d).ok();
    }

    #[test]
    fn versions_continue_past_a_restored_snapshot() {
        let v = Versions::in_memory();
        assert_eq!(v.take(), 1);
        v.past(41);
        assert_eq!(v.take(), 42);
        v.past(10);
        assert_eq!(v.take(), 43);
        let d = dir("garbage");
        fs::create_dir_all(&d).unwrap();
        fs::write(d.join(FILE_NAME), "not a number").unwrap();
        assert!(Versions::on_disk(&d).is_err());
        fs::remove_dir_all(&d).ok();
    }
}
