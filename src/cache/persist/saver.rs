//! The background saver: writes the latest published version, one save at a time, until it is told to
//! stop (after one last save); then the Directory Insights cursor that goes with it.
//!
//! A save of a large directory takes seconds of a core, and the feed publishes a version every few seconds
//! under churn: a save starts at most [`SAVE_DUTY`] times its last duration after the previous one began, so
//! saving takes at most a tenth of a core. What the file lacks meanwhile is never lost: the saved cursor is
//! the saved snapshot's, and the feed replays what came after it.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::cache::Store;
use crate::shutdown::Stop;

use super::feed::{SavedFeed, save_feed};
use super::{file_path, save};

/// How often the saver looks for a newer published version: a pointer load, so cheap enough to do often.
const SAVE_POLL: Duration = Duration::from_millis(200);
/// A save begins at least this many times the last save's duration after the last one began.
const SAVE_DUTY: u32 = 10;

/// Save every version `store` publishes to `dir`, one save at a time, until `stop` fires; then save the latest
/// version once more if it is not on disk yet, and return. A burst of versions published during a save is
/// written once, as its latest. `on_disk` is the version the file already holds (the one just loaded), so it
/// is not written again. The caller owns the task (see `crate::shutdown`).
pub async fn run_saver(store: Arc<Store>, dir: PathBuf, on_disk: Option<u64>, mut stop: Stop) {
    let mut attempted = on_disk.unwrap_or(0);
    let mut tick = tokio::time::interval(SAVE_POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut next_save = tokio::time::Instant::now();
    loop {
        let stopping = tokio::select! {
            _ = tick.tick() => false,
            _ = stop.requested() => true,
        };
        if stopping || tokio::time::Instant::now() >= next_save {
            let began = tokio::time::Instant::now();
            if save_if_newer(&store, &dir, &mut attempted).await {
                next_save = began + began.elapsed() * SAVE_DUTY;
            }
        }
        if stopping {
            return;
        }
    }
}

/// Save the published snapshot if its version is newer than the last one tried, then the feed's cursor
/// that goes with it; whether a save was tried. A failed save is reported and not retried until a newer
/// version is published (a full disk must not turn into a warning every tick).
async fn save_if_newer(store: &Store, dir: &Path, attempted: &mut u64) -> bool {
    // The mark first: the version loaded after it is the one its cursor was set with, or a later one.
    let mark = store.feed_mark();
    let Some(snapshot) = store.load() else {
        return false;
    };
    let version = snapshot.version;
    // A serving-only version is the file itself, restored; it has no data to write.
    if version <= *attempted || snapshot.is_serving_only() {
        return false;
    }
    *attempted = version;
    let started = tokio::time::Instant::now();
    let target = dir.to_path_buf();
    let opts = store.options.clone();
    let feed = mark.cursor.map(|cursor| SavedFeed {
        snapshot_version: version,
        cursor,
        refreshed_at: mark.refreshed_at,
    });
    let saved = tokio::task::spawn_blocking(move || {
        save(&target, &snapshot, &opts)?;
        match feed {
            Some(f) => save_feed(&target, &f),
            None => Ok(()),
        }
    })
    .await;
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
    true
}
