//! The background task that keeps the snapshot fresh.
//!
//! One refresh reads the whole directory with the fewest calls (users, groups, each group's members, the
//! directory list and each directory's user and group holders, every list in pages of 100), checks each list
//! against its total (the client does), builds a new [`Snapshot`] sharing unchanged entries with the current
//! one, and publishes it with one pointer swap. A failed refresh publishes nothing and keeps the last good
//! snapshot; the next tick tries again. Writes published while a refresh was in flight are laid over its
//! data, so a refresh can never roll back a write.
//!
//! The full refresh stays the source of truth while the Directory Insights feed keeps the snapshot fresh
//! between refreshes ([`super::insights`]): its interval is `refresh.interval_s` when set, else the long one
//! while the feed is in use and the short one while it is not, recomputed as the feed's health changes. The
//! feed's reader asks for a refresh at once when it cannot be trusted ([`Refreshes::need_after`]), and
//! `POST /admin/refresh` does the same.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use futures_util::{StreamExt, TryStreamExt, stream};
use jiff::Timestamp;
use rand::Rng;
use tokio::sync::Notify;

use super::insights::health::FeedHealth;
use super::replicas::{Fence, Shared};
use super::{Data, RawDirectory, RefreshPublished, RefreshStatus, Store, age_seconds};
use crate::jumpcloud::{
    AssocTarget, JcClient, JcDirectory, JcDirectoryKind, JcError, with_deadline,
};
use crate::shutdown::Stop;
use crate::telemetry::{Metrics, RefreshOutcome};

/// How many list calls one refresh keeps in flight: enough to hide latency, few enough not to look like a burst.
const FETCH_CONCURRENCY: usize = 4;

/// A whole fetch gives up after this and keeps the last good snapshot: about 90 calls with their retries fit
/// easily, and a refresh that hangs must not hold the next one off forever.
const REFRESH_DEADLINE: Duration = Duration::from_secs(120);

/// How often a refresh in flight logs its progress.
const PROGRESS_EVERY: Duration = Duration::from_secs(5);

/// When refreshes run.
#[derive(Debug, Clone)]
pub struct Schedule {
    /// `refresh.interval_s` when set: the interval whatever the feed does.
    pub fixed: Option<Duration>,
    /// Unset, the interval while the Directory Insights feed is in use, and while it is not.
    pub with_feed: Duration,
    pub without_feed: Duration,
    /// Share of the interval added or removed at random.
    pub jitter: f64,
    /// First delay before retrying when no snapshot exists yet (doubles up to the interval).
    pub first_retry: Duration,
}

impl Schedule {
    /// A schedule of one interval, whatever the feed does.
    pub fn every(interval: Duration, jitter: f64) -> Schedule {
        Schedule {
            fixed: Some(interval),
            with_feed: interval,
            without_feed: interval,
            jitter,
            first_retry: Duration::from_secs(1),
        }
    }

    /// The interval with the feed in use or not.
    pub fn interval(&self, feed_in_use: bool) -> Duration {
        self.fixed.unwrap_or(if feed_in_use {
            self.with_feed
        } else {
            self.without_feed
        })
    }

    /// A factor drawn once per wait: the interval times it, give or take `jitter`.
    fn jitter_factor(&self, rng: &mut impl Rng) -> f64 {
        if self.jitter <= 0.0 {
            return 1.0;
        }
        (1.0 + rng.random_range(-self.jitter..=self.jitter)).max(0.0)
    }
}

/// Asks for full refreshes and knows when the one in flight began; shared by the refresher, the feed's
/// reader and `POST /admin/refresh` (which notifies `trigger` itself).
#[derive(Debug)]
pub struct Refreshes {
    trigger: Arc<Notify>,
    /// When the refresh in flight began reading JumpCloud, in ms since the epoch; `i64::MIN` when none is.
    running_since: AtomicI64,
    /// The latest `after` a refresh was asked for (ms since the epoch).
    asked_after: AtomicI64,
}

impl Refreshes {
    pub fn new(trigger: Arc<Notify>) -> Refreshes {
        Refreshes {
            trigger,
            running_since: AtomicI64::new(i64::MIN),
            asked_after: AtomicI64::new(i64::MIN),
        }
    }

    /// A full refresh that begins at `after` or later is needed (what the feed brought since then cannot be
    /// trusted): one is asked for at once, unless one that began then or later is in flight or published,
    /// or one was asked for already for as late a point (should it fail, the schedule tries again: a feed
    /// failing through an outage must not turn into back-to-back refreshes). Whether one was asked for. A
    /// refresh in flight that began earlier is followed by another.
    pub fn need_after(&self, after: Timestamp, store: &Store) -> bool {
        let at = after.as_millisecond();
        let running = self.running_since.load(Ordering::Relaxed);
        if running != i64::MIN && running >= at {
            return false;
        }
        if store.feed_mark().refreshed_at.is_some_and(|r| r >= after) {
            return false;
        }
        if self.asked_after.fetch_max(at, Ordering::Relaxed) >= at {
            return false;
        }
        self.trigger.notify_one();
        true
    }

    fn began(&self, at: Timestamp) {
        self.running_since
            .store(at.as_millisecond(), Ordering::Relaxed);
    }

    fn ended(&self) {
        self.running_since.store(i64::MIN, Ordering::Relaxed);
    }
}

/// Read the whole directory from JumpCloud.
pub async fn fetch(client: &JcClient) -> Result<RawDirectory, JcError> {
    let users = client.list_users().await?;
    let groups = client.list_groups().await?;
    // Owned inputs and a cloned client per future: the futures must be `Send` for any lifetime, which
    // closures over borrowed items cannot promise.
    let group_ids: Vec<String> = groups.iter().map(|g| g.id.clone()).collect();
    let members: Vec<(String, Vec<String>)> = stream::iter(group_ids)
        .map(|gid| {
            let client = client.clone();
            async move {
                let m = client.list_group_members(&gid).await?;
                Ok::<_, JcError>((gid, m))
            }
        })
        .buffered(FETCH_CONCURRENCY)
        .try_collect()
        .await?;
    let directories = client.list_directories().await?;
    let holdable: Vec<JcDirectory> = directories
        .iter()
        .filter(|d| !matches!(d.kind, JcDirectoryKind::Other(_)))
        .cloned()
        .collect();
    let holders: Vec<(String, Vec<String>, Vec<String>)> = stream::iter(holdable)
        .map(|d| {
            let client = client.clone();
            async move {
                let users = client
                    .list_directory_associations(&d, AssocTarget::User)
                    .await?;
                let groups = client
                    .list_directory_associations(&d, AssocTarget::UserGroup)
                    .await?;
                Ok::<_, JcError>((d.id.clone(), users, groups))
            }
        })
        .buffered(FETCH_CONCURRENCY)
        .try_collect()
        .await?;
    let mut raw = RawDirectory {
        users,
        groups,
        members: members.into_iter().collect(),
        directories,
        ..RawDirectory::default()
    };
    for (did, users, groups) in holders {
        raw.directory_users.insert(did.clone(), users);
        raw.directory_groups.insert(did, groups);
    }
    Ok(raw)
}

/// One refresh: fetch, build, publish. Returns what happened; never panics, never clears the snapshot.
pub async fn refresh_once(store: &Store, client: &JcClient) -> RefreshStatus {
    refresh_tracked(store, client, None, None).await
}

/// [`refresh_once`], telling `refreshes` when it begins reading and when it ends.
async fn refresh_tracked(
    store: &Store,
    client: &JcClient,
    refreshes: Option<&Refreshes>,
    shared: Option<&Shared>,
) -> RefreshStatus {
    struct Ended<'a>(Option<&'a Refreshes>);
    impl Drop for Ended<'_> {
        fn drop(&mut self) {
            if let Some(r) = self.0 {
                r.ended();
            }
        }
    }
    // While JumpCloud is failing, wait for the breaker's probe rather than fail a refresh at its first call.
    client.breaker().wait_until_callable().await;
    let started = tokio::time::Instant::now();
    let before = client.stats();
    let ticket = store.begin_refresh().await;
    let _ended = Ended(refreshes);
    if let Some(r) = refreshes {
        r.began(ticket.started_at());
    }
    let fetching = with_deadline(REFRESH_DEADLINE, "the refresh", fetch(client));
    let mut fetching = std::pin::pin!(fetching);
    // A long refresh (100,000 users is a few thousand calls) says how far it is, every few seconds.
    let mut progress = tokio::time::interval_at(started + PROGRESS_EVERY, PROGRESS_EVERY);
    let result = loop {
        tokio::select! {
            r = &mut fetching => break r,
            _ = progress.tick() => {
                let so_far = client.stats().calls.saturating_sub(before.calls);
                tracing::info!(
                    calls = so_far,
                    elapsed_s = started.elapsed().as_secs(),
                    "refresh in progress: {so_far} JumpCloud calls so far"
                );
            }
        }
    };
    let after = client.stats();
    let calls = after.calls.saturating_sub(before.calls);
    let retries = after.retries.saturating_sub(before.retries);
    let status = match result {
        Ok(raw) => {
            let published = publish(store, shared, ticket, Data::from_raw(raw)).await;
            let (held_back, error) = match published {
                Ok(RefreshPublished::Published(_)) => (false, None),
                Ok(RefreshPublished::HeldBack(reason)) => {
                    (true, Some(format!("held back: {reason}")))
                }
                Err(e) => (false, Some(format!("not published: {e}"))),
            };
            RefreshStatus {
                finished_at: Timestamp::now(),
                ok: error.is_none(),
                held_back,
                error,
                calls,
                retries,
                duration_ms: started.elapsed().as_millis() as u64,
            }
        }
        Err(e) => RefreshStatus {
            finished_at: Timestamp::now(),
            ok: false,
            held_back: false,
            error: Some(e.in_words()),
            calls,
            retries,
            duration_ms: started.elapsed().as_millis() as u64,
        },
    };
    log_refresh(store, &status);
    store.record_refresh(status.clone());
    // Whatever the outcome, the pages and records this refresh read are free now.
    let _ = tokio::task::spawn_blocking(super::memory::release_free).await;
    status
}

fn log_refresh(store: &Store, status: &RefreshStatus) {
    let snap = store.load();
    let (version, age, users, groups) = match &snap {
        Some(s) => (
            s.version,
            age_seconds(s.taken_at, Timestamp::now()),
            s.user_count(),
            s.group_count(),
        ),
        None => (0, 0, 0, 0),
    };
    if status.held_back {
        tracing::warn!(
            outcome = "held_back",
            calls = status.calls,
            duration_ms = status.duration_ms,
            version,
            age_s = age,
            reason = status.error.as_deref().unwrap_or(""),
            "refresh held back; still serving snapshot version {version}; POST /admin/accept-shrink publishes it"
        );
    } else if status.ok {
        tracing::info!(
            outcome = "ok",
            calls = status.calls,
            retries = status.retries,
            duration_ms = status.duration_ms,
            version,
            age_s = age,
            users,
            groups,
            "refresh published snapshot version {version}"
        );
    } else {
        tracing::warn!(
            outcome = "failed",
            calls = status.calls,
            retries = status.retries,
            duration_ms = status.duration_ms,
            version,
            age_s = age,
            error = status.error.as_deref().unwrap_or(""),
            "refresh failed; still serving snapshot version {version}"
        );
    }
}

/// What the refresher runs with.
#[derive(Debug, Clone)]
pub struct Refresher {
    pub store: Arc<Store>,
    pub client: JcClient,
    pub schedule: Schedule,
    /// Notified by `POST /admin/refresh` and the feed's reader.
    pub trigger: Arc<Notify>,
    pub refreshes: Arc<Refreshes>,
    /// The feed's health, whose verdict picks the interval; `None` without the feed.
    pub feed: Option<Arc<FeedHealth>>,
    pub metrics: Arc<Metrics>,
    /// The first refresh waits its interval from here instead of running at once: a snapshot and the feed's
    /// cursor were restored, and the full refresh behind them began then.
    pub resume_from: Option<Timestamp>,
    /// With replicas: refreshes are published through the shared store, fenced by the lease.
    pub shared: Option<Arc<Shared>>,
}

/// Publish a refresh's data: through the shared store (fenced by the lease) with replicas, else here.
async fn publish(
    store: &Store,
    shared: Option<&Shared>,
    ticket: super::RefreshTicket,
    data: Data,
) -> Result<RefreshPublished, super::replicas::StoreError> {
    let taken_at = Timestamp::now();
    match shared {
        None => Ok(store.publish_refresh(ticket, data, taken_at).await),
        Some(sh) => {
            sh.publish(Fence::Leader, || {
                store.publish_refresh(ticket, data, taken_at)
            })
            .await
        }
    }
}

/// Resolves when the feed's verdict changes; never without a feed (or once its health is gone).
async fn feed_changed(rx: &mut Option<tokio::sync::watch::Receiver<bool>>) {
    match rx {
        Some(r) => {
            if r.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
        None => std::future::pending::<()>().await,
    }
}

/// Refresh on the schedule, or at once when the trigger is notified, reporting each refresh to the metrics,
/// until `stop` fires. A refresh in flight when it fires is dropped before it publishes: the published
/// snapshot stays the last good one. The wait before the next refresh is recomputed whenever the feed's
/// verdict changes, so a feed that stops being usable brings the next refresh forward.
pub async fn run(r: Refresher, mut stop: Stop) {
    let mut rng = rand::rngs::StdRng::from_os_rng();
    let schedule = &r.schedule;
    let mut retry = schedule.first_retry;
    let mut feed_rx = r.feed.as_ref().map(|f| f.subscribe());
    let in_use = |feed: &Option<Arc<FeedHealth>>| feed.as_ref().is_some_and(|f| f.in_use());
    // When the wait before the next refresh counts from, and a delay that replaces the interval (the retry
    // while nothing can be served); `None`: refresh at once.
    let mut wait_from: Option<(tokio::time::Instant, Option<Duration>)> = r.resume_from.map(|t| {
        let ago = Timestamp::now().duration_since(t).unsigned_abs();
        let now = tokio::time::Instant::now();
        (now.checked_sub(ago).unwrap_or(now), None)
    });
    loop {
        if let Some((from, delay)) = wait_from {
            let factor = schedule.jitter_factor(&mut rng);
            loop {
                let wait = delay.unwrap_or_else(|| {
                    let interval = schedule.interval(in_use(&r.feed));
                    Duration::try_from_secs_f64(interval.as_secs_f64() * factor).unwrap_or(interval)
                });
                let due = async {
                    match from.checked_add(wait) {
                        Some(at) => tokio::time::sleep_until(at).await,
                        // An interval past the clock's range: only a trigger or a stop ends the wait.
                        None => std::future::pending().await,
                    }
                };
                tokio::select! {
                    _ = due => break,
                    _ = r.trigger.notified() => break,
                    _ = feed_changed(&mut feed_rx) => {}
                    _ = stop.requested() => return,
                }
            }
        }
        let status = tokio::select! {
            status = refresh_tracked(&r.store, &r.client, Some(&r.refreshes), r.shared.as_deref()) => status,
            _ = stop.requested() => return,
        };
        let outcome = if status.held_back {
            RefreshOutcome::HeldBack
        } else if status.ok {
            RefreshOutcome::Ok
        } else {
            RefreshOutcome::Failed
        };
        r.metrics
            .observe_refresh(outcome, Duration::from_millis(status.duration_ms));
        r.metrics
            .set_refresh_held_back(r.store.shrink_guard().held.is_some());
        r.metrics.add_upstream_retries(status.retries);
        let now = tokio::time::Instant::now();
        wait_from = if status.ok || r.store.load().is_some() {
            retry = schedule.first_retry;
            Some((now, None))
        } else {
            // Nothing to serve yet: try again soon, backing off up to the interval.
            let d = retry;
            retry = (retry * 2).min(schedule.interval(in_use(&r.feed)));
            Some((now, Some(d)))
        };
    }
}

use rand::SeedableRng as _;

#[cfg(test)]
mod tests {
    use jiff::SignedDuration;

    use super::*;
    use crate::cache::test_support::opts;

    #[tokio::test]
    async fn a_refresh_is_asked_for_once_per_need_and_not_when_one_covers_it() {
        let store = Store::new(opts());
        let trigger = Arc::new(Notify::new());
        let r = Refreshes::new(trigger.clone());
        let t0 = Timestamp::now();
        let s = SignedDuration::from_secs;
        assert!(r.need_after(t0, &store));
        assert!(!r.need_after(t0, &store), "asked for already");
        assert!(!r.need_after(t0 - s(1), &store));
        tokio::time::timeout(Duration::from_millis(100), trigger.notified())
            .await
            .expect("the refresher is woken");
        // A refresh in flight that began after the point covers it.
        r.began(t0 + s(5));
        assert!(!r.need_after(t0 + s(2), &store));
        r.ended();
        // So does one published that began after it.
        let ticket = store.begin_refresh().await;
        let began = ticket.started_at();
        store.publish_refresh(ticket, Data::default(), began).await;
        assert!(!r.need_after(began, &store));
        assert!(
            r.need_after(began + s(60), &store),
            "a later need asks again"
        );
    }

    #[test]
    fn the_interval_follows_the_feed_unless_it_is_set() {
        let mut sched = Schedule {
            fixed: None,
            with_feed: Duration::from_secs(3600),
            without_feed: Duration::from_secs(60),
            jitter: 0.0,
            first_retry: Duration::from_secs(1),
        };
        assert_eq!(sched.interval(true), Duration::from_secs(3600));
        assert_eq!(sched.interval(false), Duration::from_secs(60));
        sched.fixed = Some(Duration::from_secs(300));
        assert_eq!(sched.interval(true), Duration::from_secs(300));
        assert_eq!(sched.interval(false), Duration::from_secs(300));
        assert_eq!(
            Schedule::every(Duration::from_secs(9), 0.0)
                .interval(true)
                .as_secs(),
            9
        );
    }
}
