//! The background task that keeps the snapshot fresh.
//!
//! One refresh reads the whole directory with the fewest calls (users, groups, each group's members, the
//! directory list and each directory's user and group holders, every list in pages of 100), checks each list
//! against its total (the client does), builds a new [`Snapshot`] sharing unchanged entries with the current
//! one, and publishes it with one pointer swap. A failed refresh publishes nothing and keeps the last good
//! snapshot; the next tick tries again. Writes published while a refresh was in flight are laid over its
//! data, so a refresh can never roll back a write.

use std::sync::Arc;
use std::time::Duration;

use futures_util::{StreamExt, TryStreamExt, stream};
use jiff::Timestamp;
use rand::Rng;
use tokio::sync::Notify;

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
    pub interval: Duration,
    /// Share of the interval added or removed at random.
    pub jitter: f64,
    /// First delay before retrying when no snapshot exists yet (doubles up to `interval`).
    pub first_retry: Duration,
}

impl Schedule {
    fn next_delay(&self, rng: &mut impl Rng) -> Duration {
        if self.jitter <= 0.0 {
            return self.interval;
        }
        let f = 1.0 + rng.random_range(-self.jitter..=self.jitter);
        self.interval.mul_f64(f.max(0.0))
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
    // While JumpCloud is failing, wait for the breaker's probe rather than fail a refresh at its first call.
    client.breaker().wait_until_callable().await;
    let started = tokio::time::Instant::now();
    let before = client.stats();
    let ticket = store.begin_refresh().await;
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
            let taken_at = Timestamp::now();
            let held_back = match store
                .publish_refresh(ticket, Data::from_raw(raw), taken_at)
                .await
            {
                RefreshPublished::Published(_) => None,
                RefreshPublished::HeldBack(reason) => Some(reason),
            };
            RefreshStatus {
                finished_at: Timestamp::now(),
                ok: held_back.is_none(),
                held_back: held_back.is_some(),
                error: held_back.map(|r| format!("held back: {r}")),
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

/// Refresh on `schedule`, or at once when `trigger` is notified, reporting each refresh to `metrics`, until
/// `stop` fires. A refresh in flight when it fires is dropped before it publishes: the published snapshot
/// stays the last good one.
pub async fn run(
    store: Arc<Store>,
    client: JcClient,
    schedule: Schedule,
    trigger: Arc<Notify>,
    metrics: Arc<Metrics>,
    mut stop: Stop,
) {
    let mut rng = rand::rngs::StdRng::from_os_rng();
    let mut retry = schedule.first_retry;
    loop {
        let status = tokio::select! {
            status = refresh_once(&store, &client) => status,
            _ = stop.requested() => return,
        };
        let outcome = if status.held_back {
            RefreshOutcome::HeldBack
        } else if status.ok {
            RefreshOutcome::Ok
        } else {
            RefreshOutcome::Failed
        };
        metrics.observe_refresh(outcome, Duration::from_millis(status.duration_ms));
        metrics.set_refresh_held_back(store.shrink_guard().held.is_some());
        metrics.add_upstream_retries(status.retries);
        let delay = if status.ok || store.load().is_some() {
            retry = schedule.first_retry;
            schedule.next_delay(&mut rng)
        } else {
            // Nothing to serve yet: try again soon, backing off up to the interval.
            let d = retry;
            retry = (retry * 2).min(schedule.interval);
            d
        };
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = trigger.notified() => {}
            _ = stop.requested() => return,
        }
    }
}

use rand::SeedableRng as _;
