//! The loop: every `insights.poll_s`, read the feed from the published cursor, plan the events not applied
//! yet, fetch what they name, publish one version for the batch ([`Store::publish_events`]); and the verdict
//! on the feed's health ([`FeedHealth`]) that picks the full refresh's interval, with a full refresh asked
//! for at once ([`Refreshes::need_after`]) when the feed cannot be trusted:
//!
//! | what the poll finds | state | full refresh |
//! |---|---|---|
//! | events read and applied (or nothing new) | in use | at its long interval |
//! | 403 | not in the plan (`auto`: asked again after [`PLAN_RECHECK`]) | at once, then at the short interval |
//! | [`MAX_FAILURES`] polls in a row failed (the feed, or a fetch a batch needs) | failing | at once, then short |
//! | an event ingested more than `insights.max_lag_s` late, or a backlog that far behind | behind | at once |
//! | a cursor older than `insights.retention_s` allows | behind | at once |
//! | an event that cannot be applied | behind | at once |
//! | a batch the shrink guard holds back | behind | at once (and held back too, if JumpCloud says the same) |
//!
//! While behind, the feed is not read until a full refresh that began after the verdict is published: it
//! brings the cursor up to when it began. A failed fetch publishes nothing and leaves the cursor where it
//! was, so the next poll reads the same events again: none is ever skipped.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;

use super::apply::{self, Fetched, Needs};
use super::health::{BatchReport, FeedHealth, FeedState};
use super::{Cursor, FeedMode, Plan};
use crate::cache::refresher::Refreshes;
use crate::cache::{EventsPublished, Store};
use crate::jumpcloud::{EventBatch, FeedError, JcClient, JcError, JcEvent, with_deadline};
use crate::shutdown::Stop;
use crate::telemetry::Metrics;

/// Events one poll reads at most; past them the next poll follows at once.
pub const MAX_EVENTS_PER_POLL: usize = 5_000;
/// Polls in a row that may fail before the feed counts as failing.
pub const MAX_FAILURES: u32 = 3;
/// With `insights.enabled = "auto"`, how long a plan without the feed waits before it is asked again.
pub const PLAN_RECHECK: Duration = Duration::from_secs(3600);
/// One read of the feed, its pages and retries included.
const FEED_DEADLINE: Duration = Duration::from_secs(60);
/// The fetches of one batch, retries included.
const FETCH_DEADLINE: Duration = Duration::from_secs(60);
/// Polls that follow one another without waiting while a backlog is read.
const MAX_CATCH_UP: u32 = 20;
/// Ids of events that could not be applied and that a full refresh has since covered, remembered so the
/// overlap does not read them again as new: the most recent this many.
const MAX_COVERED: usize = 64;

/// The feed's settings (`[insights]`), and the refresh intervals the log names.
#[derive(Debug, Clone)]
pub struct FeedSettings {
    pub mode: FeedMode,
    pub poll: Duration,
    pub overlap: Duration,
    pub max_lag: Duration,
    pub retention: Duration,
    /// The full refresh's interval while the feed is in use, and while it is not (for log lines).
    pub refresh_in_use: Duration,
    pub refresh_otherwise: Duration,
}

/// The feed's reader and what it works with.
#[derive(Debug, Clone)]
pub struct Poller {
    pub store: Arc<Store>,
    /// Reads the feed (its calls counted as `insights`).
    pub feed: JcClient,
    /// Fetches what events name (counted as `fetch`).
    pub fetch: JcClient,
    pub settings: FeedSettings,
    pub health: Arc<FeedHealth>,
    pub refreshes: Arc<Refreshes>,
    pub metrics: Arc<Metrics>,
    /// With replicas: batches are published through the shared store, fenced by the lease.
    pub shared: Option<Arc<crate::cache::replicas::Shared>>,
}

/// What the loop does after a poll.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Next {
    Wait,
    /// More events wait: poll again at once.
    Again,
}

/// What the loop remembers between polls.
#[derive(Debug, Default)]
struct Between {
    /// The feed's availability was asked before there was a cursor.
    probed: bool,
    /// A plan without the feed (`auto`): not asked again before this.
    recheck_at: Option<Timestamp>,
    catch_up: u32,
    /// The event that stopped the last plan, waiting for the full refresh that covers it.
    blocker: Option<String>,
    /// Events that could not be applied, covered by a full refresh since: skipped when read again.
    covered: std::collections::VecDeque<String>,
}

fn secs(d: Duration) -> u64 {
    d.as_secs()
}

// === impl Poller ===

impl Poller {
    /// Poll until `stop` fires; returns at once with `insights.enabled = "off"`.
    pub async fn run(self, mut stop: Stop) {
        if self.settings.mode == FeedMode::Off {
            return;
        }
        let mut tick = tokio::time::interval(self.settings.poll);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut between = Between::default();
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stop.requested() => return,
            }
            loop {
                let next = tokio::select! {
                    next = self.poll_once(&mut between) => next,
                    _ = stop.requested() => return,
                };
                if next == Next::Again && between.catch_up < MAX_CATCH_UP {
                    between.catch_up += 1;
                    continue;
                }
                between.catch_up = 0;
                break;
            }
        }
    }

    /// One poll: read, plan, fetch, publish, judge.
    async fn poll_once(&self, between: &mut Between) -> Next {
        let now = Timestamp::now();
        if between.recheck_at.is_some_and(|at| now < at) {
            return Next::Wait;
        }
        let mark = self.store.feed_mark();
        let Some(cursor) = mark.cursor.clone() else {
            if !between.probed {
                self.probe(between, now).await;
            }
            return Next::Wait;
        };
        if let FeedState::Behind { since, .. } = self.health.state() {
            if mark.refreshed_at.is_none_or(|r| r < since) {
                return Next::Wait;
            }
            tracing::info!(
                "a full refresh brought the snapshot up to date; reading the Directory Insights feed again"
            );
            if let Some(id) = between.blocker.take().filter(|id| !id.is_empty()) {
                between.covered.push_back(id);
                while between.covered.len() > MAX_COVERED {
                    between.covered.pop_front();
                }
            }
            self.set(FeedState::InUse, now);
        }
        let s = &self.settings;
        if cursor.past_retention(now, s.overlap, s.retention) {
            self.behind(
                format!(
                    "the feed was last read through {}, longer ago than insights.retention_s ({} s) allows",
                    cursor.read_through(),
                    secs(s.retention)
                ),
                now,
            );
            return Next::Wait;
        }
        let batch = match self.read(&cursor).await {
            Ok(b) => b,
            Err(FeedError::NotInPlan) => {
                self.not_in_plan(between, &cursor, now);
                return Next::Wait;
            }
            Err(FeedError::Upstream(e)) => {
                self.failed(&cursor, format!("reading the feed: {}", e.in_words()), now);
                return Next::Wait;
            }
        };
        between.recheck_at = None;
        between.probed = true;
        self.apply(between, mark.epoch, &cursor, batch, now).await
    }

    /// The feed's events from where the cursor says, bounded in count and time.
    async fn read(&self, cursor: &Cursor) -> Result<EventBatch, FeedError> {
        let start = cursor.query_start(self.settings.overlap);
        match tokio::time::timeout(
            FEED_DEADLINE,
            self.feed.directory_events(start, MAX_EVENTS_PER_POLL),
        )
        .await
        {
            Ok(r) => r,
            Err(_) => Err(FeedError::Upstream(JcError::Transient {
                status: None,
                retry_after: None,
                message: format!(
                    "reading the feed did not finish within {} s",
                    FEED_DEADLINE.as_secs()
                ),
                sent: true,
            })),
        }
    }

    /// Plan the events not applied yet, fetch what they name, publish them, and judge the feed.
    async fn apply(
        &self,
        between: &mut Between,
        epoch: u64,
        cursor: &Cursor,
        batch: EventBatch,
        now: Timestamp,
    ) -> Next {
        let fresh = unseen(cursor, &batch.events, &between.covered);
        let late = fresh
            .iter()
            .filter_map(|e| e.at())
            .filter_map(|t| cursor.lateness(t.as_millisecond()))
            .max();
        let plan = Plan::of(fresh.iter().copied());
        let Some((fetched, objects)) = self.fetch_for(&plan, cursor, now).await else {
            return Next::Wait;
        };
        let read_through = (!batch.more && plan.blocked.is_none()).then_some(now);
        let next = cursor.advance(
            plan.events.iter().cloned(),
            read_through,
            self.settings.overlap,
        );
        let mut removed = (0, 0);
        let edit = |data: &mut crate::cache::Data| {
            let e = apply::edit(data, &plan, &fetched);
            removed = (e.users_removed, e.groups_removed);
            e.touched
        };
        let published = match &self.shared {
            None => {
                self.store
                    .publish_events(epoch, next, read_through, edit)
                    .await
            }
            Some(sh) => {
                let fenced = sh
                    .publish(crate::cache::replicas::Fence::Leader, || {
                        self.store.publish_events(epoch, next, read_through, edit)
                    })
                    .await;
                match fenced {
                    Ok(p) => p,
                    // Not published (Redis down, or the lease lost): the batch is read again later.
                    Err(_) => return Next::Wait,
                }
            }
        };
        self.health.polled_ok(now);
        let version = match published {
            EventsPublished::Published(snap) => Some(snap.version),
            EventsPublished::Unchanged => None,
            // The cursor moved under the batch (a full refresh was published): read again from there.
            EventsPublished::Stale => return Next::Again,
            EventsPublished::NotReady => return Next::Wait,
            EventsPublished::HeldBack(reason) => {
                let why = format!(
                    "a batch of {} events was held back: {reason}",
                    plan.events.len()
                );
                self.behind(why, now);
                return Next::Wait;
            }
        };
        self.count(&plan, objects, version, now);
        if read_through.is_some() {
            self.health.confirmed(now);
        }
        if version.is_some() || !plan.events.is_empty() {
            tracing::debug!(
                events = plan.events.len(),
                fetched = objects,
                users_removed = removed.0,
                groups_removed = removed.1,
                version = version.unwrap_or(0),
                "applied Directory Insights events"
            );
        }
        between.blocker = plan.blocked.as_ref().map(|b| b.event_id.clone());
        self.judge(&plan, late, batch.more, now)
    }

    /// What `plan` needs from JumpCloud, and how many objects that is; `None` when the fetch failed (counted
    /// as a failed poll: the same events are read again next time).
    async fn fetch_for(
        &self,
        plan: &Plan,
        cursor: &Cursor,
        now: Timestamp,
    ) -> Option<(Fetched, usize)> {
        let snapshot = self.store.load().filter(|x| !x.is_serving_only())?;
        let needs = Needs::of(plan, &snapshot.data);
        if needs.is_empty() {
            return Some((Fetched::default(), 0));
        }
        let work = apply::fetch(&self.fetch, &needs, &snapshot.data);
        match with_deadline(FETCH_DEADLINE, "fetching what the feed's events name", work).await {
            Ok(f) => Some((f, needs.len())),
            Err(e) => {
                let why = format!(
                    "fetching the {} objects {} new events name: {}",
                    needs.len(),
                    plan.events.len(),
                    e.in_words()
                );
                self.failed(cursor, why, now);
                None
            }
        }
    }

    /// After a batch is applied: whether the feed can be trusted to have brought everything.
    fn judge(&self, plan: &Plan, late: Option<Duration>, more: bool, now: Timestamp) -> Next {
        let max_lag = self.settings.max_lag;
        let backlog_behind = more
            && plan
                .events
                .last()
                .is_some_and(|(t, _)| now.as_millisecond().saturating_sub(*t) > ms(max_lag));
        let verdict = if let Some(b) = &plan.blocked {
            Some(format!(
                "event {} ({}) cannot be applied: {}",
                b.event_id, b.event_type, b.reason
            ))
        } else if let Some(l) = late.filter(|l| *l > max_lag) {
            Some(format!(
                "the feed delivered an event {} s after it could have (insights.max_lag_s is {})",
                l.as_secs(),
                secs(max_lag)
            ))
        } else if backlog_behind {
            Some(format!(
                "more than {MAX_EVENTS_PER_POLL} events wait, the newest read more than {} s old",
                secs(max_lag)
            ))
        } else {
            None
        };
        match verdict {
            Some(reason) => {
                self.behind(reason, now);
                Next::Wait
            }
            None => {
                self.set(FeedState::InUse, now);
                if more { Next::Again } else { Next::Wait }
            }
        }
    }

    /// Count an applied batch in the metrics and the health report.
    fn count(&self, plan: &Plan, fetched: usize, version: Option<u64>, now: Timestamp) {
        for (t, n) in &plan.by_type {
            self.metrics.add_insights_events(t, *n);
        }
        if let Some(newest) = plan.events.iter().map(|(t, _)| *t).max()
            && let Ok(at) = Timestamp::from_millisecond(newest)
        {
            self.metrics.set_insights_newest(at);
        }
        if !plan.events.is_empty() {
            self.health.batch(BatchReport {
                at: now,
                events: plan.events.len() as u64,
                fetched: fetched as u64,
                version,
            });
        }
    }

    /// Before the first full refresh gives the feed a cursor: whether the organisation has the feed.
    async fn probe(&self, between: &mut Between, now: Timestamp) {
        let since = now
            .checked_sub(jiff::SignedDuration::from_secs(60))
            .unwrap_or(now);
        match tokio::time::timeout(FEED_DEADLINE, self.feed.directory_events(since, 1)).await {
            Ok(Ok(_)) => {
                between.probed = true;
                tracing::info!(
                    "Directory Insights feed available: read every {} s once the first full refresh is published",
                    secs(self.settings.poll)
                );
            }
            Ok(Err(FeedError::NotInPlan)) => {
                between.probed = true;
                self.plan_lacks_feed(between, now);
            }
            Ok(Err(FeedError::Upstream(e))) => {
                tracing::debug!(error = %e.in_words(), "asking the Directory Insights feed failed; asked again at the next poll");
            }
            Err(_) => tracing::debug!("asking the Directory Insights feed timed out"),
        }
    }

    fn not_in_plan(&self, between: &mut Between, cursor: &Cursor, now: Timestamp) {
        self.health
            .polled_failed(now, "HTTP 403: not in the plan".into());
        self.plan_lacks_feed(between, now);
        self.refreshes
            .need_after(cursor.read_through(), &self.store);
    }

    fn plan_lacks_feed(&self, between: &mut Between, now: Timestamp) {
        let changed = self.set(FeedState::NotInPlan, now);
        let recheck = match self.settings.mode {
            FeedMode::Auto => {
                between.recheck_at =
                    Some(now + jiff::SignedDuration::from_secs(PLAN_RECHECK.as_secs() as i64));
                format!("asked again in {} minutes", PLAN_RECHECK.as_secs() / 60)
            }
            _ => format!(
                "insights.enabled = \"on\": asked again every {} s",
                secs(self.settings.poll)
            ),
        };
        if changed {
            tracing::warn!(
                "Directory Insights is not in the organisation's plan (HTTP 403): full refreshes every {} s keep \
                 the snapshot fresh; {recheck}",
                secs(self.settings.refresh_otherwise)
            );
        }
    }

    /// A poll failed; past [`MAX_FAILURES`] in a row the feed is failing, and a full refresh is asked for.
    fn failed(&self, cursor: &Cursor, reason: String, now: Timestamp) {
        let n = self.health.polled_failed(now, reason.clone());
        tracing::debug!(failures = n, error = %reason, "a poll of the Directory Insights feed failed; the next poll reads the same events again");
        if n < MAX_FAILURES {
            return;
        }
        if self.set(
            FeedState::Failing {
                reason: reason.clone(),
            },
            now,
        ) {
            tracing::warn!(
                failures = n,
                error = %reason,
                "the Directory Insights feed is failing ({n} polls in a row): full refreshes every {} s until it \
                 answers again",
                secs(self.settings.refresh_otherwise)
            );
        }
        self.refreshes
            .need_after(cursor.read_through(), &self.store);
    }

    /// The feed cannot be trusted to have brought everything: a full refresh that begins now is needed.
    fn behind(&self, reason: String, now: Timestamp) {
        let asked = self.refreshes.need_after(now, &self.store);
        let state = FeedState::Behind {
            reason: reason.clone(),
            since: now,
        };
        if self.set(state, now) {
            tracing::warn!(
                refresh_asked = asked,
                "Directory Insights feed behind: {reason}; a full refresh runs at once"
            );
        }
    }

    /// Move to `state`; whether it changed. Coming into use is logged here.
    fn set(&self, state: FeedState, now: Timestamp) -> bool {
        let into_use = state == FeedState::InUse;
        let Some(previous) = self.health.set_state(state, now) else {
            return false;
        };
        if into_use {
            tracing::info!(
                previous = previous.label(),
                "Directory Insights feed in use: read every {} s; full refresh every {} s",
                secs(self.settings.poll),
                secs(self.settings.refresh_in_use)
            );
        }
        true
    }
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// The events of `events` the cursor has not applied, each once, in the feed's order, less those a full
/// refresh `covered` after they could not be applied. One without a readable id or time is kept: the plan
/// stops at it.
fn unseen<'a>(
    cursor: &Cursor,
    events: &'a [JcEvent],
    covered: &std::collections::VecDeque<String>,
) -> Vec<&'a JcEvent> {
    let mut keys: HashSet<(i64, &str)> = HashSet::new();
    events
        .iter()
        .filter(|e| e.id.is_empty() || !covered.contains(&e.id))
        .filter(|e| match e.at() {
            Some(t) if !e.id.is_empty() => {
                let at = t.as_millisecond();
                !cursor.has_seen(at, &e.id) && keys.insert((at, e.id.as_str()))
            }
            _ => true,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn events_applied_or_repeated_in_one_answer_are_left_out() {
        let ev = |id: &str, ts: &str| {
            JcEvent::from_value(json!({"id": id, "event_type": "user_update", "timestamp": ts}))
        };
        let cursor = Cursor::at("2024-05-01T10:00:00Z".parse().unwrap()).advance(
            [(
                "2024-05-01T10:00:01Z"
                    .parse::<Timestamp>()
                    .unwrap()
                    .as_millisecond(),
                "a".to_owned(),
            )],
            None,
            Duration::from_secs(60),
        );
        let events = [
            ev("a", "2024-05-01T10:00:01Z"),
            ev("b", "2024-05-01T10:00:02Z"),
            ev("b", "2024-05-01T10:00:02Z"),
            ev("a", "2024-05-01T10:00:03Z"),
            ev("", "2024-05-01T10:00:04Z"),
        ];
        let none = std::collections::VecDeque::new();
        let ids: Vec<&str> = unseen(&cursor, &events, &none)
            .iter()
            .map(|e| e.id.as_str())
            .collect();
        assert_eq!(
            ids,
            ["b", "a", ""],
            "the same id at another time is another event; one without an id is kept for the plan to stop at"
        );
        let covered = std::collections::VecDeque::from(["b".to_owned()]);
        let ids: Vec<&str> = unseen(&cursor, &events, &covered)
            .iter()
            .map(|e| e.id.as_str())
            .collect();
        assert_eq!(
            ids,
            ["a", ""],
            "an event a refresh covered is not read again"
        );
    }
}
