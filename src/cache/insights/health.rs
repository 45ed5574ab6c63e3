//! The feed's health as the rest of the service sees it: one [`FeedHealth`] the reader updates and the full
//! refresh's schedule, `/readyz`, `/status` and the logs read. Aggregate figures only: counts, times and
//! states, never an object's id or name.

use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use jiff::Timestamp;
use tokio::sync::watch;

use super::FeedMode;

/// Where the feed stands.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum FeedState {
    /// `insights.enabled = "off"`: full refreshes only.
    Off,
    /// Not read through yet: waiting for its first answer, or for a first full refresh to start from.
    #[default]
    Starting,
    /// Read every poll; the full refresh runs at its long interval.
    InUse,
    /// 403: the organisation's plan has no Directory Insights.
    NotInPlan,
    /// Several polls in a row failed.
    Failing { reason: String },
    /// The feed cannot be trusted to have brought everything (it lags, a gap passed its retention, an
    /// event cannot be applied, a batch would shrink the directory too far): waiting for a full refresh
    /// that began at `since` or later.
    Behind { reason: String, since: Timestamp },
}

impl FeedState {
    /// Whether the full refresh may run at its long interval: the feed is read, or about to be.
    pub fn in_use(&self) -> bool {
        matches!(self, FeedState::InUse | FeedState::Starting)
    }

    /// A stable name for machines (`/readyz`).
    pub fn label(&self) -> &'static str {
        match self {
            FeedState::Off => "off",
            FeedState::Starting => "starting",
            FeedState::InUse => "in_use",
            FeedState::NotInPlan => "not_in_plan",
            FeedState::Failing { .. } => "failing",
            FeedState::Behind { .. } => "behind",
        }
    }

    /// The state in a sentence for people.
    pub fn in_words(&self) -> String {
        match self {
            FeedState::Off => "off (insights.enabled = \"off\"): full refreshes only".to_owned(),
            FeedState::Starting => "starting: not read yet".to_owned(),
            FeedState::InUse => "in use".to_owned(),
            FeedState::NotInPlan => {
                "not available: the organisation's plan has no Directory Insights (HTTP 403)"
                    .to_owned()
            }
            FeedState::Failing { reason } => format!("failing: {reason}"),
            FeedState::Behind { reason, .. } => {
                format!("behind: {reason}; a full refresh brings the snapshot up to date")
            }
        }
    }
}

/// One batch published or found to change nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchReport {
    pub at: Timestamp,
    pub events: u64,
    /// Objects fetched from JumpCloud for it.
    pub fetched: u64,
    /// The version it published (`None`: it changed nothing the snapshot holds).
    pub version: Option<u64>,
}

/// What the feed has done, for `/readyz` and `/status`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FeedReport {
    pub state: FeedState,
    /// When the state began.
    pub since: Option<Timestamp>,
    pub last_poll: Option<Timestamp>,
    /// The last poll that read the feed without an error.
    pub last_ok: Option<Timestamp>,
    /// Polls failed in a row.
    pub failures: u32,
    pub last_error: Option<String>,
    pub polls: u64,
    /// Events applied (or found to need nothing), all batches together.
    pub events: u64,
    /// Versions batches published.
    pub versions: u64,
    pub last_batch: Option<BatchReport>,
}

/// The feed's health, shared: the reader writes it, everyone else reads it.
#[derive(Debug)]
pub struct FeedHealth {
    pub mode: FeedMode,
    /// `insights.poll_s`.
    pub poll: Duration,
    report: Mutex<FeedReport>,
    /// Whether the full refresh may run at its long interval ([`FeedState::in_use`]); the refresher waits on
    /// changes to it.
    in_use: watch::Sender<bool>,
    /// When polls found the data current (seconds since the epoch), one a [`CONFIRMATION_STEP`], for
    /// [`CONFIRMATIONS_KEPT`] steps: the status page draws the snapshot's age from them.
    confirmations: Mutex<VecDeque<i64>>,
}

/// The resolution of the confirmations kept: the status page's age chart samples every 30 s.
pub const CONFIRMATION_STEP: i64 = 30;
/// Two hours of them.
pub const CONFIRMATIONS_KEPT: usize = 240;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

// === impl FeedHealth ===

impl FeedHealth {
    pub fn new(mode: FeedMode, poll: Duration) -> FeedHealth {
        let state = if mode == FeedMode::Off {
            FeedState::Off
        } else {
            FeedState::Starting
        };
        let in_use = state.in_use();
        FeedHealth {
            mode,
            poll,
            report: Mutex::new(FeedReport {
                state,
                ..FeedReport::default()
            }),
            in_use: watch::Sender::new(in_use),
            confirmations: Mutex::new(VecDeque::new()),
        }
    }

    /// A poll at `at` read the feed through and left the data current.
    pub fn confirmed(&self, at: Timestamp) {
        let t = at.as_second();
        let mut c = lock(&self.confirmations);
        if c.back().is_some_and(|last| {
            t.div_euclid(CONFIRMATION_STEP) == last.div_euclid(CONFIRMATION_STEP)
        }) {
            if let Some(last) = c.back_mut() {
                *last = t.max(*last);
            }
            return;
        }
        c.push_back(t);
        while c.len() > CONFIRMATIONS_KEPT {
            c.pop_front();
        }
    }

    /// When polls found the data current, oldest first, at most one a [`CONFIRMATION_STEP`].
    pub fn confirmations(&self) -> Vec<Timestamp> {
        lock(&self.confirmations)
            .iter()
            .filter_map(|s| Timestamp::from_second(*s).ok())
            .collect()
    }

    /// What the feed has done so far.
    pub fn report(&self) -> FeedReport {
        lock(&self.report).clone()
    }

    pub fn state(&self) -> FeedState {
        lock(&self.report).state.clone()
    }

    /// Whether the full refresh may run at its long interval now.
    pub fn in_use(&self) -> bool {
        *self.in_use.borrow()
    }

    /// Changes of [`FeedHealth::in_use`].
    pub fn subscribe(&self) -> watch::Receiver<bool> {
        self.in_use.subscribe()
    }

    /// Move to `state` at `now`; the previous state when it changed (for the caller's log line).
    pub fn set_state(&self, state: FeedState, now: Timestamp) -> Option<FeedState> {
        let previous = {
            let mut r = lock(&self.report);
            if r.state == state {
                return None;
            }
            r.since = Some(now);
            std::mem::replace(&mut r.state, state.clone())
        };
        self.in_use.send_if_modified(|v| {
            let next = state.in_use();
            let changed = *v != next;
            *v = next;
            changed
        });
        Some(previous)
    }

    /// A poll at `now` read the feed.
    pub fn polled_ok(&self, now: Timestamp) {
        let mut r = lock(&self.report);
        r.polls += 1;
        r.last_poll = Some(now);
        r.last_ok = Some(now);
        r.failures = 0;
    }

    /// A poll at `now` failed (the feed, or a fetch its batch needed); how many in a row have.
    pub fn polled_failed(&self, now: Timestamp, error: String) -> u32 {
        let mut r = lock(&self.report);
        r.polls += 1;
        r.last_poll = Some(now);
        r.failures = r.failures.saturating_add(1);
        r.last_error = Some(error);
        r.failures
    }

    /// A batch was applied.
    pub fn batch(&self, b: BatchReport) {
        let mut r = lock(&self.report);
        r.events += b.events;
        r.versions += u64::from(b.version.is_some());
        r.last_batch = Some(b);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_refresh_interval_follows_whether_the_feed_is_in_use() {
        let h = FeedHealth::new(FeedMode::Auto, Duration::from_secs(5));
        let mut rx = h.subscribe();
        assert!(
            h.in_use(),
            "starting counts as in use: a verdict changes it"
        );
        let t = Timestamp::UNIX_EPOCH;
        assert_eq!(h.set_state(FeedState::InUse, t), Some(FeedState::Starting));
        assert!(
            !rx.has_changed().unwrap(),
            "still in use: nothing to recompute"
        );
        assert_eq!(h.set_state(FeedState::InUse, t), None);
        h.set_state(FeedState::NotInPlan, t);
        assert!(rx.has_changed().unwrap());
        assert!(!*rx.borrow_and_update());
        assert_eq!(h.report().since, Some(t));
        let off = FeedHealth::new(FeedMode::Off, Duration::from_secs(5));
        assert_eq!(off.state(), FeedState::Off);
        assert!(!off.in_use());
    }

    #[test]
    fn confirmations_are_kept_one_a_step_and_bounded() {
        let h = FeedHealth::new(FeedMode::Auto, Duration::from_secs(5));
        for s in (0..(CONFIRMATIONS_KEPT as i64 + 10) * 30).step_by(5) {
            h.confirmed(Timestamp::from_second(1_800_000_000 + s).unwrap());
        }
        let c = h.confirmations();
        assert_eq!(c.len(), CONFIRMATIONS_KEPT);
        assert!(
            c.windows(2)
                .all(|w| w[1].as_second() - w[0].as_second() == 30)
        );
        assert_eq!(
            c.last().unwrap().as_second() % 30,
            25,
            "the latest of each step"
        );
    }

    #[test]
    fn polls_and_batches_are_counted() {
        let h = FeedHealth::new(FeedMode::On, Duration::from_secs(5));
        let t = Timestamp::UNIX_EPOCH;
        assert_eq!(h.polled_failed(t, "x".into()), 1);
        assert_eq!(h.polled_failed(t, "y".into()), 2);
        h.polled_ok(t);
        h.batch(BatchReport {
            at: t,
            events: 3,
            fetched: 1,
            version: Some(9),
        });
        h.batch(BatchReport {
            at: t,
            events: 2,
            fetched: 0,
            version: None,
        });
        let r = h.report();
        assert_eq!((r.polls, r.failures, r.events, r.versions), (3, 0, 5, 1));
        assert_eq!(r.last_error.as_deref(), Some("y"));
    }
}
