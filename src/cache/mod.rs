//! The published snapshot and the background task that refreshes it.
//!
//! [`Store`] owns the one pointer readers load (an `ArcSwapOption`, so readers never block the refresher
//! or a write) and the bookkeeping operators see: version, age and the last refresh outcome.

pub mod guard;
pub mod persist;
pub mod refresher;
pub mod snapshot;
#[cfg(test)]
mod test_support;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use arc_swap::ArcSwapOption;
use jiff::Timestamp;
use tokio::sync::{Mutex, watch};

use guard::ShrinkGuard;
pub use snapshot::{
    BuildOptions, Data, Entry, GroupSource, Id, IdSet, Kind, RawDirectory, Seen, Snapshot, Touched,
};

/// How the last refresh ended, for logs, `/readyz` and metrics.
#[derive(Debug, Clone, PartialEq)]
pub struct RefreshStatus {
    pub finished_at: Timestamp,
    pub ok: bool,
    /// The refresh was complete but shrank too much, and is held back.
    pub held_back: bool,
    /// Failure reason (never a secret), or `None` on success.
    pub error: Option<String>,
    pub calls: u64,
    pub retries: u64,
    pub duration_ms: u64,
}

/// A write recorded since a refresh started, so the refresh cannot roll it back.
#[derive(Debug, Clone)]
pub struct WriteRecord {
    pub generation: u64,
    pub touched: Touched,
}

/// The published snapshot and what is known about how it got there.
#[derive(Debug)]
pub struct Store {
    current: ArcSwapOption<Snapshot>,
    next_version: AtomicU64,
    /// Serialises publication: a refresh and a write never publish over each other.
    pub publish: Mutex<PublishState>,
    /// The last [`REFRESH_HISTORY`] refreshes, oldest first (the status page draws the last hour from them).
    last_refresh: std::sync::Mutex<std::collections::VecDeque<RefreshStatus>>,
    pub options: BuildOptions,
    /// Holds back refreshes that lost too many users or groups.
    guard: std::sync::Mutex<ShrinkGuard>,
    /// Counts publications, so a write can wait for a complete version ([`Store::load_complete`]).
    published: watch::Sender<u64>,
}

/// State guarded by the publish lock.
#[derive(Debug, Default)]
pub struct PublishState {
    /// Grows with every write published into the snapshot.
    pub write_generation: u64,
    /// Writes published recently (pruned once no refresh in flight predates them).
    pub writes: Vec<WriteRecord>,
}

impl Store {
    pub fn new(options: BuildOptions) -> Self {
        Self::with_max_shrink(options, 0.1)
    }

    pub fn with_max_shrink(options: BuildOptions, max_shrink: f64) -> Self {
        Self {
            current: ArcSwapOption::empty(),
            next_version: AtomicU64::new(1),
            publish: Mutex::new(PublishState::default()),
            last_refresh: std::sync::Mutex::new(std::collections::VecDeque::new()),
            options,
            guard: std::sync::Mutex::new(ShrinkGuard::new(max_shrink)),
            published: watch::Sender::new(0),
        }
    }

    /// The shrink guard (held only briefly, never across an await).
    pub fn shrink_guard(&self) -> std::sync::MutexGuard<'_, ShrinkGuard> {
        self.guard
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Publish the held-back refresh (an operator's `POST /admin/accept-shrink`), with the writes made since
    /// its refresh started laid over it. `None` when nothing is held back.
    pub async fn accept_shrink(&self) -> Option<Arc<Snapshot>> {
        let guard = self.publish.lock().await;
        let held = self.shrink_guard().held.take()?;
        let current = self.load();
        let mut data = held.snapshot.data.clone();
        if let Some(cur) = &current {
            for w in guard
                .writes
                .iter()
                .filter(|w| w.generation > held.generation_at_start)
            {
                data.overlay(&cur.data, &w.touched);
            }
        }
        let version = self.take_version();
        let now = Timestamp::now();
        let snapshot = Arc::new(Snapshot::build(
            data,
            version,
            held.snapshot.taken_at,
            now,
            &self.options,
            current.as_deref(),
            &|_, _| None,
        ));
        self.swap(snapshot.clone());
        self.shrink_guard()
            .reset_to(snapshot.user_count(), snapshot.group_count(), now);
        Some(snapshot)
    }

    /// A delete made through this service: not shrinkage.
    pub fn note_deletion(&self, kind: Kind) {
        self.shrink_guard().deleted(kind);
    }

    /// The latest published snapshot, if any.
    pub fn load(&self) -> Option<Arc<Snapshot>> {
        self.current.load_full()
    }

    /// A fresh version number (strictly growing).
    pub fn take_version(&self) -> u64 {
        self.next_version.fetch_add(1, Ordering::Relaxed)
    }

    /// Make versions continue after `v` (a snapshot loaded from disk).
    pub fn bump_version_past(&self, v: u64) {
        self.next_version.fetch_max(v + 1, Ordering::Relaxed);
    }

    /// The latest published snapshot once it is complete: a version restored from disk serves reads before
    /// JumpCloud's data behind it is restored (a moment later), and a write needs that data. Waits at most
    /// `within`; `None` when there is no complete snapshot by then.
    pub async fn load_complete(&self, within: std::time::Duration) -> Option<Arc<Snapshot>> {
        let deadline = tokio::time::Instant::now() + within;
        let mut published = self.published.subscribe();
        loop {
            published.borrow_and_update();
            let snapshot = self.load()?;
            if !snapshot.is_serving_only() {
                return Some(snapshot);
            }
            // The sender lives as long as the store, so `changed` only ends by a publication.
            if tokio::time::timeout_at(deadline, published.changed())
                .await
                .is_err()
            {
                return None;
            }
        }
    }

    /// Publish with one atomic pointer swap. Callers hold the publish lock.
    pub fn swap(&self, snapshot: Arc<Snapshot>) {
        self.current.store(Some(snapshot));
        self.published.send_modify(|n| *n += 1);
    }

    /// Publish a write: `change` edits a copy of the current data and says what it touched; only the
    /// affected entries are derived again, and the write is recorded so a refresh already in flight
    /// cannot roll it back. `None` when there is no snapshot to write into.
    pub async fn publish_write(
        &self,
        change: impl FnOnce(&mut Data) -> Touched,
    ) -> Option<Arc<Snapshot>> {
        let mut guard = self.publish.lock().await;
        // A serving-only version has no data to change: writers wait for a complete one first.
        let current = self.load().filter(|s| !s.is_serving_only())?;
        let mut data = current.data.clone();
        let touched = change(&mut data);
        let version = self.take_version();
        let next = Arc::new(current.with_changes(
            data,
            &touched,
            version,
            Timestamp::now(),
            &self.options,
        ));
        self.swap(next.clone());
        guard.write_generation += 1;
        let generation = guard.write_generation;
        guard.writes.push(WriteRecord {
            generation,
            touched,
        });
        Some(next)
    }

    pub fn record_refresh(&self, status: RefreshStatus) {
        if let Ok(mut g) = self.last_refresh.lock() {
            if g.len() == REFRESH_HISTORY {
                g.pop_front();
            }
            g.push_back(status);
        }
    }

    pub fn last_refresh(&self) -> Option<RefreshStatus> {
        self.last_refresh
            .lock()
            .ok()
            .and_then(|g| g.back().cloned())
    }

    /// The refreshes kept, oldest first.
    pub fn refresh_history(&self) -> Vec<RefreshStatus> {
        self.last_refresh
            .lock()
            .map(|g| g.iter().cloned().collect())
            .unwrap_or_default()
    }
}

/// Refreshes remembered: two hours at the default interval.
pub const REFRESH_HISTORY: usize = 120;

/// Whole seconds between `then` and `now`, never negative.
pub fn age_seconds(then: Timestamp, now: Timestamp) -> u64 {
    let secs = now.as_second() - then.as_second();
    secs.max(0) as u64
}
