//! [`Store`]: the published snapshot, and every way a version becomes published. This is the one file to
//! read to know how a snapshot is published.
//!
//! Readers [`load`](Store::load) the current version (a pointer load; readers never block the refresher or a
//! write). A version becomes current only through these operations, each returning what happened:
//!
//! | operation | who | what it does |
//! |---|---|---|
//! | [`publish_write`](Store::publish_write) | the writer | applies a write's change to a copy of the data, derives the touched entries, records the write so a refresh in flight cannot roll it back |
//! | [`publish_events`](Store::publish_events) | the feed's reader | applies a batch of Directory Insights events to a copy of the data as a write does (derives only what it touched, recorded so a refresh in flight cannot roll it back), lets the shrink guard hold back one that deletes too much, and moves the feed's cursor with it; a batch that changes nothing moves only the cursor |
//! | [`begin_refresh`](Store::begin_refresh) / [`publish_refresh`](Store::publish_refresh) | the refresher | builds the refresh's snapshot *outside* the publish lock (writes keep publishing meanwhile), then, under the lock, lays over it every write (and feed batch) published since the refresh began and lets the shrink guard publish or hold it back; a published refresh brings the feed's cursor up to when it began |
//! | [`publish_restored`](Store::publish_restored) / [`complete_restored`](Store::complete_restored) | start-up | a snapshot read from disk, published unless something is already published; then the complete version (with JumpCloud's records) in its place; [`restore_feed`](Store::restore_feed) puts back the cursor saved with it |
//! | [`accept_shrink`](Store::accept_shrink) | an operator | publishes the held-back refresh, with later writes laid over it |
//! | [`adopt`](Store::adopt) | a replica | a version another replica published, read back from Redis, in place of the current one |
//!
//! Every operation takes the publish lock, so no two publish over each other, and takes its version from
//! [`Versions`] under it, so versions grow in publication order. Writes laid over a refresh's data are
//! overlaid in one place ([`overlay_writes`]).
//!
//! Beside the current version the store keeps its [`FeedMark`]: where that data stands in the Directory
//! Insights feed (the [`Cursor`], changed only under the publish lock together with the data it describes),
//! when the last full refresh began, and when the feed last confirmed the data current, which is what
//! [`fresh_as_of`](Store::fresh_as_of) reports as the snapshot's freshness.
//!
//! Where the published version lives is a [`Published`] backend held as `Arc<dyn Published>`: [`Local`] (an
//! atomic pointer in this process). Replicas keep it so (each serves its own copy) and share versions around
//! it: [`crate::cache::replicas`] runs each of these operations under Redis's publish lock, after loading the
//! newest shared version with [`adopt`](Store::adopt), and uploads what it published. `http/` and
//! `directory/` only ever see [`Store`] (and, with replicas, the shared store's locks and pins).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex as StdMutex, MutexGuard as StdMutexGuard};

use arc_swap::ArcSwapOption;
use jiff::Timestamp;
use tokio::sync::{Mutex, watch};

use super::guard::{HeldBack, ShrinkGuard};
use super::insights::Cursor;
use super::persist::Change;
use super::snapshot::{BuildOptions, Data, Snapshot, Touched};
use super::versions::Versions;
use super::{REFRESH_HISTORY, RefreshStatus};
use crate::scim::ResourceKind;

/// Where the published version lives.
pub trait Published: Send + Sync + std::fmt::Debug {
    /// The current version, if any.
    fn load(&self) -> Option<Arc<Snapshot>>;
    /// Make `snapshot` the current version. Called under the publish lock.
    fn store(&self, snapshot: Arc<Snapshot>);
}

/// The published version in this process's memory.
#[derive(Debug, Default)]
pub struct Local(ArcSwapOption<Snapshot>);

impl Published for Local {
    fn load(&self) -> Option<Arc<Snapshot>> {
        self.0.load_full()
    }
    fn store(&self, snapshot: Arc<Snapshot>) {
        self.0.store(Some(snapshot));
    }
}

/// A write recorded since a refresh began, so the refresh cannot roll it back.
#[derive(Debug, Clone)]
struct WriteRecord {
    generation: u64,
    /// The version it published (0: another replica's, recorded when its version was adopted).
    version: u64,
    /// The version it was made on, and when it was derived (what a delta on that base needs).
    base: u64,
    at: Timestamp,
    touched: Touched,
}

/// State guarded by the publish lock.
#[derive(Debug, Default)]
struct PublishState {
    /// Grows with every write published.
    write_generation: u64,
    /// Writes published since the oldest refresh in flight began (cleared when a refresh is published).
    writes: Vec<WriteRecord>,
}

/// Writes recorded at most: a replica that never refreshes (a follower) never clears them, so the oldest go
/// first; a refresh in flight while more writes than this are published may roll the oldest back (until
/// the next refresh).
const MAX_WRITE_RECORDS: usize = 50_000;

impl PublishState {
    /// Record a write (or feed batch) just published.
    fn record(&mut self, touched: Touched, version: u64, base: u64, at: Timestamp) {
        self.write_generation += 1;
        if self.writes.len() >= MAX_WRITE_RECORDS {
            self.writes.drain(..self.writes.len() / 10);
        }
        self.writes.push(WriteRecord {
            generation: self.write_generation,
            version,
            base,
            at,
            touched,
        });
    }
}

/// Where a refresh began, for [`Store::publish_refresh`].
#[derive(Debug, Clone, Copy)]
pub struct RefreshTicket {
    generation_at_start: u64,
    /// When it began reading JumpCloud: every change before this is in its data.
    started_at: Timestamp,
}

impl RefreshTicket {
    /// When the refresh began reading JumpCloud.
    pub fn started_at(&self) -> Timestamp {
        self.started_at
    }
}

/// Where the published data stands in the Directory Insights feed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FeedMark {
    /// The published data has applied every event up to here; `None` until a full refresh is published
    /// or a saved cursor restored.
    pub cursor: Option<Cursor>,
    /// Grows whenever the cursor is set by anything but the feed's own batches (a full refresh, a restore):
    /// a batch read from before then is stale.
    pub epoch: u64,
    /// When the last full refresh published began reading JumpCloud.
    pub refreshed_at: Option<Timestamp>,
    /// The version published when the cursor was last set: a saved cursor belongs with this version or a
    /// later one.
    pub version: u64,
    /// `(version, when)`: the feed read through `when` found nothing more to apply to that version, so it and
    /// every later one were current then.
    pub confirmed: Option<(u64, Timestamp)>,
}

/// What became of a batch handed to [`Store::publish_events`].
#[derive(Debug, Clone)]
pub enum EventsPublished {
    /// A new version with the batch applied.
    Published(Arc<Snapshot>),
    /// The batch changed nothing the snapshot holds: no new version; the cursor moved.
    Unchanged,
    /// The cursor was set anew (a full refresh, a restore) since the batch was read: nothing was done.
    Stale,
    /// No complete snapshot to apply it to (none yet, or one still being restored): nothing was done.
    NotReady,
    /// It would lose too many users or groups: not published, the cursor left where it was; the reason.
    HeldBack(String),
}

/// What became of a refresh handed to [`Store::publish_refresh`].
#[derive(Debug, Clone)]
pub enum RefreshPublished {
    Published(Arc<Snapshot>),
    /// It lost too many users or groups: held back for an operator; the reason.
    HeldBack(String),
}

/// The published snapshot and what is known about how it got there.
#[derive(Debug)]
pub struct Store {
    current: Arc<dyn Published>,
    versions: Versions,
    /// Serialises publication: a refresh and a write never publish over each other.
    publish: Mutex<PublishState>,
    /// The last [`REFRESH_HISTORY`] refreshes, oldest first (the status page draws the last hour from them).
    refreshes: StdMutex<VecDeque<RefreshStatus>>,
    pub options: BuildOptions,
    /// Holds back refreshes that lost too many users or groups.
    guard: StdMutex<ShrinkGuard>,
    /// Counts publications, so a write can wait for a complete version ([`Store::load_complete`]).
    published: watch::Sender<u64>,
    /// Changed only under the publish lock; read at any time (held briefly, never across an await).
    feed: StdMutex<FeedMark>,
}

/// Lay over `data` the writes published after `since` (their entries as `current` has them); the generation
/// of the last one laid.
fn overlay_writes(
    state: &PublishState,
    data: &mut Data,
    current: Option<&Snapshot>,
    since: u64,
) -> u64 {
    let mut last = since;
    if let Some(cur) = current {
        for w in state.writes.iter().filter(|w| w.generation > since) {
            data.overlay(&cur.data, &w.touched);
            last = last.max(w.generation);
        }
    }
    last
}

fn lock<T>(m: &StdMutex<T>) -> StdMutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Store {
    pub fn new(options: BuildOptions) -> Self {
        Self::with_max_shrink(options, 0.1)
    }

    pub fn with_max_shrink(options: BuildOptions, max_shrink: f64) -> Self {
        Self {
            current: Arc::new(Local::default()),
            versions: Versions::in_memory(),
            publish: Mutex::new(PublishState::default()),
            refreshes: StdMutex::new(VecDeque::new()),
            options,
            guard: StdMutex::new(ShrinkGuard::new(max_shrink)),
            published: watch::Sender::new(0),
            feed: StdMutex::new(FeedMark::default()),
        }
    }

    /// The same store with its versions from `versions` (reserved on disk when there is a data directory).
    pub fn with_versions(mut self, versions: Versions) -> Self {
        self.versions = versions;
        self
    }

    /// The same store publishing into `backend`.
    pub fn with_backend(mut self, backend: Arc<dyn Published>) -> Self {
        self.current = backend;
        self
    }

    // === reading ===

    /// The latest published snapshot, if any.
    pub fn load(&self) -> Option<Arc<Snapshot>> {
        self.current.load()
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

    /// What the write (or feed batch) that published `version` here changed, on which version and when,
    /// while it is recorded; `None` for a refresh's version (or an adopted one).
    pub async fn change_of(&self, version: u64) -> Option<Change> {
        let state = self.publish.lock().await;
        state
            .writes
            .iter()
            .rev()
            .find(|w| w.version == version && version != 0)
            .map(|w| Change {
                base: w.base,
                at: w.at,
                touched: w.touched.clone(),
            })
    }

    /// The version the next publication takes.
    pub fn next_version(&self) -> u64 {
        self.versions.peek()
    }

    /// Where the published data stands in the Directory Insights feed.
    pub fn feed_mark(&self) -> FeedMark {
        lock(&self.feed).clone()
    }

    /// Since when `snapshot` is known to match JumpCloud: when its data was read, or later when the feed
    /// last found nothing more to apply to it (or to a version before it).
    pub fn fresh_as_of(&self, snapshot: &Snapshot) -> Timestamp {
        match self.confirmed_for(snapshot.version) {
            Some(at) => at.max(snapshot.taken_at),
            None => snapshot.taken_at,
        }
    }

    /// When the feed last found version `version`'s data (or an earlier version's) current, if it has.
    pub fn confirmed_for(&self, version: u64) -> Option<Timestamp> {
        lock(&self.feed)
            .confirmed
            .filter(|(v, _)| *v <= version)
            .map(|(_, at)| at)
    }

    /// The one place a version becomes current. Callers hold the publish lock.
    fn swap(&self, snapshot: Arc<Snapshot>) {
        self.current.store(snapshot);
        self.published.send_modify(|n| *n += 1);
    }

    // === publishing ===

    /// Publish a write: `change` edits a copy of the current data and says what it touched; only the
    /// affected entries are derived again, and the write is recorded so a refresh already in flight
    /// cannot roll it back. `None` when there is no snapshot to write into.
    pub async fn publish_write(
        &self,
        change: impl FnOnce(&mut Data) -> Touched,
    ) -> Option<Arc<Snapshot>> {
        let mut state = self.publish.lock().await;
        // A serving-only version has no data to change: writers wait for a complete one first.
        let current = self.load().filter(|s| !s.is_serving_only())?;
        let mut data = current.data.clone();
        let touched = change(&mut data);
        let version = self.versions.take();
        let now = Timestamp::now();
        let next = Arc::new(current.with_changes(data, &touched, version, now, &self.options));
        self.swap(next.clone());
        state.record(touched, version, current.version, now);
        Some(next)
    }

    /// Publish a batch of Directory Insights events read from the feed at cursor epoch `epoch`: `change`
    /// edits a copy of the current data and says what it touched, as a write's does, and `cursor` is where the
    /// data stands once it is applied. `read_through` is when the poll read the feed to its end, if it did:
    /// the data is then current as of that time.
    ///
    /// Composes with the rest as a write does: only the touched entries are derived again, and the batch is
    /// recorded so a refresh in flight lays it over its own data. Unlike a write, it comes from outside this
    /// service: a batch that would leave fewer users or groups than the shrink guard allows is not published
    /// (and the cursor stays before it), as a refresh that read as much would be held back.
    pub async fn publish_events(
        &self,
        epoch: u64,
        cursor: Cursor,
        read_through: Option<Timestamp>,
        change: impl FnOnce(&mut Data) -> Touched,
    ) -> EventsPublished {
        let mut state = self.publish.lock().await;
        if lock(&self.feed).epoch != epoch {
            return EventsPublished::Stale;
        }
        let Some(current) = self.load().filter(|s| !s.is_serving_only()) else {
            return EventsPublished::NotReady;
        };
        let mut data = current.data.clone();
        let touched = change(&mut data);
        if touched.is_empty() {
            let mut feed = lock(&self.feed);
            feed.cursor = Some(cursor);
            if let Some(at) = read_through {
                feed.confirmed = Some((current.version, at));
            }
            return EventsPublished::Unchanged;
        }
        let (users, groups) = (data.users.len(), data.groups.len());
        let now = Timestamp::now();
        if let Some(reason) = lock(&self.guard).check(users, groups, now) {
            return EventsPublished::HeldBack(reason);
        }
        let version = self.versions.take();
        let mut next = current.with_changes(data, &touched, version, now, &self.options);
        if let Some(at) = read_through {
            next.taken_at = next.taken_at.max(at);
        }
        let next = Arc::new(next);
        self.swap(next.clone());
        state.record(touched, version, current.version, now);
        lock(&self.guard).record_change(users, groups, now);
        let mut feed = lock(&self.feed);
        feed.cursor = Some(cursor);
        feed.version = version;
        if let Some(at) = read_through {
            feed.confirmed = Some((version, at));
        }
        EventsPublished::Published(next)
    }

    /// Put back the feed's cursor saved with snapshot version `saved_with` (restored at start-up), and when
    /// the full refresh behind it began. Ignored unless the published version is the one saved with it or a
    /// later one (an older file must never claim events it does not hold); whether it was taken.
    pub async fn restore_feed(
        &self,
        cursor: Cursor,
        saved_with: u64,
        refreshed_at: Option<Timestamp>,
    ) -> bool {
        let _state = self.publish.lock().await;
        let Some(current) = self.load() else {
            return false;
        };
        if current.version < saved_with {
            return false;
        }
        let mut feed = lock(&self.feed);
        feed.cursor = Some(cursor);
        feed.epoch += 1;
        feed.refreshed_at = refreshed_at;
        feed.version = current.version;
        true
    }

    /// Under the publish lock: a full refresh that began at `started_at` is now the published data
    /// (`version`), so the cursor stands at least where it began.
    fn feed_refreshed(&self, started_at: Timestamp, version: u64) {
        let mut feed = lock(&self.feed);
        let reset = match &feed.cursor {
            Some(c) => c.after_refresh(started_at),
            None => Some(Cursor::at(started_at)),
        };
        if let Some(c) = reset {
            feed.cursor = Some(c);
            feed.epoch += 1;
        }
        feed.refreshed_at = Some(feed.refreshed_at.map_or(started_at, |r| r.max(started_at)));
        feed.version = version;
    }

    /// A refresh begins: writes published from now on are laid over its data when it is published.
    pub async fn begin_refresh(&self) -> RefreshTicket {
        RefreshTicket {
            generation_at_start: self.publish.lock().await.write_generation,
            started_at: Timestamp::now(),
        }
    }

    /// Publish a refresh's data, read from JumpCloud at `taken_at`.
    ///
    /// The snapshot is built (seconds of CPU for a large directory, on a blocking thread) without the publish
    /// lock, from the data with the writes published so far laid over it; then, under the lock, writes
    /// published during the build are laid over it too (deriving only what they touched), and the shrink
    /// guard publishes it or holds it back.
    pub async fn publish_refresh(
        &self,
        ticket: RefreshTicket,
        mut data: Data,
        taken_at: Timestamp,
    ) -> RefreshPublished {
        let (current, laid) = {
            let state = self.publish.lock().await;
            let current = self.load();
            let laid = overlay_writes(
                &state,
                &mut data,
                current.as_deref(),
                ticket.generation_at_start,
            );
            (current, laid)
        };
        let options = self.options.clone();
        let prev = current.clone();
        // The version is set when it is published; the build's placeholder is never served.
        let built = tokio::task::spawn_blocking(move || {
            Snapshot::build(
                data,
                0,
                taken_at,
                Timestamp::now(),
                &options,
                prev.as_deref(),
                &|_, _| None,
            )
        })
        .await;
        let mut snapshot = match built {
            Ok(s) => s,
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        };

        let mut state = self.publish.lock().await;
        snapshot = self.overlay_late(&state, snapshot, laid);
        let (users, groups) = (snapshot.user_count(), snapshot.group_count());
        let now = Timestamp::now();
        let mut shrink = lock(&self.guard);
        match shrink.check(users, groups, now) {
            Some(reason) => {
                // A complete read that lost too much: keep serving the last snapshot until an operator
                // publishes this one with POST /admin/accept-shrink.
                let (hu, hg) = shrink.high_water();
                shrink.held = Some(HeldBack {
                    snapshot: Arc::new(snapshot),
                    generation_at_start: ticket.generation_at_start,
                    started_at: ticket.started_at,
                    users,
                    groups,
                    high_water_users: hu,
                    high_water_groups: hg,
                    at: now,
                    reason: reason.clone(),
                });
                RefreshPublished::HeldBack(reason)
            }
            None => {
                snapshot.version = self.versions.take();
                let snapshot = Arc::new(snapshot);
                self.swap(snapshot.clone());
                // Every recorded write is now in the published data, and later refreshes start after it.
                state.writes.clear();
                shrink.record(users, groups, now);
                shrink.held = None;
                drop(shrink);
                self.feed_refreshed(ticket.started_at, snapshot.version);
                RefreshPublished::Published(snapshot)
            }
        }
    }

    /// `snapshot` (a refresh's, built outside the lock) with the writes published after generation `laid`
    /// laid over it, as the current version has them. Callers hold the publish lock (`state`).
    fn overlay_late(&self, state: &PublishState, snapshot: Snapshot, laid: u64) -> Snapshot {
        let late: Vec<&WriteRecord> = state
            .writes
            .iter()
            .filter(|w| w.generation > laid)
            .collect();
        let Some(cur) = self.load().filter(|_| !late.is_empty()) else {
            return snapshot;
        };
        let mut late_data = snapshot.data.clone();
        let mut touched = Touched::default();
        for w in &late {
            late_data.overlay(&cur.data, &w.touched);
            touched.extend(&w.touched);
        }
        snapshot.with_changes(late_data, &touched, 0, Timestamp::now(), &self.options)
    }

    /// Publish a snapshot read from disk at start-up, unless something is already published (then `None`).
    /// It counts as published for the shrink guard, and versions continue past it.
    pub async fn publish_restored(&self, snapshot: Snapshot) -> Option<Arc<Snapshot>> {
        self.versions.past(snapshot.version);
        let _state = self.publish.lock().await;
        if self.load().is_some() {
            return None;
        }
        let (users, groups) = (snapshot.user_count(), snapshot.group_count());
        let snapshot = Arc::new(snapshot);
        self.swap(snapshot.clone());
        // The restored snapshot is a published one: a first refresh after the restart that lost half the
        // directory must be held back like any other.
        lock(&self.guard).record(users, groups, Timestamp::now());
        Some(snapshot)
    }

    /// Publish `complete` (the same version with JumpCloud's records restored) in place of the serving-only
    /// `serving`, unless something newer was published meanwhile; whether it was.
    pub async fn complete_restored(
        &self,
        serving: &Arc<Snapshot>,
        complete: Arc<Snapshot>,
    ) -> bool {
        let _state = self.publish.lock().await;
        if !self.load().is_some_and(|cur| Arc::ptr_eq(&cur, serving)) {
            return false;
        }
        self.swap(complete);
        true
    }

    /// Publish the held-back refresh (an operator's `POST /admin/accept-shrink`), with the writes made since
    /// its refresh began laid over it. `None` when nothing is held back.
    pub async fn accept_shrink(&self) -> Option<Arc<Snapshot>> {
        let state = self.publish.lock().await;
        let held = lock(&self.guard).held.take()?;
        let current = self.load();
        let mut data = held.snapshot.data.clone();
        overlay_writes(
            &state,
            &mut data,
            current.as_deref(),
            held.generation_at_start,
        );
        let now = Timestamp::now();
        let snapshot = Arc::new(Snapshot::build(
            data,
            self.versions.take(),
            held.snapshot.taken_at,
            now,
            &self.options,
            current.as_deref(),
            &|_, _| None,
        ));
        self.swap(snapshot.clone());
        lock(&self.guard).reset_to(snapshot.user_count(), snapshot.group_count(), now);
        self.feed_refreshed(held.started_at, snapshot.version);
        Some(snapshot)
    }

    /// Publish a version another replica published (read back from the shared store) in place of whatever
    /// is current, unless the current one is that version already; versions here continue past it. The
    /// shrink guard measures later refreshes against it. Whether it was published.
    ///
    /// `writes` are what the writes (and feed batches) published on other replicas since the version this one
    /// had touched: recorded as this replica's own are, so a refresh in flight here lays them over its data
    /// instead of rolling them back.
    pub async fn adopt(&self, snapshot: Arc<Snapshot>, writes: Vec<Touched>) -> bool {
        let mut state = self.publish.lock().await;
        for touched in writes {
            state.record(touched, 0, 0, Timestamp::now());
        }
        self.versions.past(snapshot.version);
        if self
            .load()
            .is_some_and(|cur| cur.version == snapshot.version && !cur.is_serving_only())
        {
            return false;
        }
        lock(&self.guard).record(
            snapshot.user_count(),
            snapshot.group_count(),
            Timestamp::now(),
        );
        self.swap(snapshot);
        true
    }

    /// Publish `snapshot` as it is (tests that need a given version in place).
    #[doc(hidden)]
    pub async fn publish_as_is(&self, snapshot: Arc<Snapshot>) {
        let _state = self.publish.lock().await;
        self.versions.past(snapshot.version);
        self.swap(snapshot);
    }

    // === the shrink guard and the refresh history ===

    /// The shrink guard (held only briefly, never across an await).
    pub fn shrink_guard(&self) -> StdMutexGuard<'_, ShrinkGuard> {
        lock(&self.guard)
    }

    /// A delete made through this service: not shrinkage.
    pub fn note_deletion(&self, kind: ResourceKind) {
        lock(&self.guard).deleted(kind);
    }

    pub fn record_refresh(&self, status: RefreshStatus) {
        let mut g = lock(&self.refreshes);
        if g.len() == REFRESH_HISTORY {
            g.pop_front();
        }
        g.push_back(status);
    }

    pub fn last_refresh(&self) -> Option<RefreshStatus> {
        lock(&self.refreshes).back().cloned()
    }

    /// The refreshes kept, oldest first.
    pub fn refresh_history(&self) -> Vec<RefreshStatus> {
        lock(&self.refreshes).iter().cloned().collect()
    }
}

#[cfg(test)]
#[path = "store_tests.rs"]
mod tests;
