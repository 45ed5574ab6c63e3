//! Where the published data stands in the feed: a [`Cursor`], the only state the feed's reader keeps
//! between polls, published and saved with the snapshot it describes.
//!
//! The feed orders events by time but may ingest one late, so a poll reads from a little before where the
//! last one stood (the overlap) and skips the ids it has applied already. The cursor therefore holds the
//! time of the newest event applied, the time the feed was last read through, and the ids applied within
//! the overlap: at most [`MAX_SEEN`], so a burst cannot grow it without bound (past it the oldest are
//! dropped, and reading never again starts before them). Times are milliseconds since the epoch: the feed's
//! own precision, and what a query's `start_time` is sent in.
//!
//! Pure: no clock, no IO; every time is an argument.

use std::collections::BTreeSet;
use std::time::Duration;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// Event ids remembered at most (about 40 bytes each); past it the overlap shrinks to what they cover.
pub const MAX_SEEN: usize = 20_000;

/// The place in the feed up to which the published data has applied every event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    /// When the newest event applied since the cursor was set happened.
    newest_ms: Option<i64>,
    /// When the feed was last read through: every event it showed by then, from the query's start on, is
    /// applied. Set by a poll that read to the end, or by the full refresh the cursor was reset to.
    read_ms: i64,
    /// Whether `read_ms` is a poll's (then an event older than it, first seen later, came late) rather than
    /// a full refresh's (whose overlap is read for the first time).
    polled: bool,
    /// Reading never starts before this (raised when ids were dropped past [`MAX_SEEN`]).
    floor_ms: i64,
    /// `(time, id)` of the events applied from the query's start on.
    seen: BTreeSet<(i64, String)>,
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn at(ms: i64) -> Timestamp {
    Timestamp::from_millisecond(ms).unwrap_or(Timestamp::UNIX_EPOCH)
}

// === impl Cursor ===

impl Cursor {
    /// The cursor a full refresh that began reading JumpCloud at `t` leaves: every change before `t` is in
    /// its data, so the feed is read from `t` (less the overlap, which may hold events ingested late).
    pub fn at(t: Timestamp) -> Cursor {
        Cursor {
            newest_ms: None,
            read_ms: t.as_millisecond(),
            polled: false,
            floor_ms: i64::MIN,
            seen: BTreeSet::new(),
        }
    }

    /// Where the next poll starts reading.
    pub fn query_start(&self, overlap: Duration) -> Timestamp {
        at(self.start_ms(overlap))
    }

    fn start_ms(&self, overlap: Duration) -> i64 {
        let stood = self.newest_ms.map_or(self.read_ms, |n| n.max(self.read_ms));
        stood.saturating_sub(ms(overlap)).max(self.floor_ms)
    }

    /// When the feed was last read through (or the full refresh the cursor stands on began).
    pub fn read_through(&self) -> Timestamp {
        at(self.read_ms)
    }

    /// When the newest event applied happened, if one was.
    pub fn newest(&self) -> Option<Timestamp> {
        self.newest_ms.map(at)
    }

    /// Event ids remembered.
    pub fn seen_len(&self) -> usize {
        self.seen.len()
    }

    /// Whether the event `(time, id)` is applied already.
    pub fn has_seen(&self, time_ms: i64, id: &str) -> bool {
        self.seen.contains(&(time_ms, id.to_owned()))
    }

    /// Whether reading from here would start before what a feed keeping `retention` still holds at `now`:
    /// events in the gap may be gone, and only a full refresh closes it.
    pub fn past_retention(&self, now: Timestamp, overlap: Duration, retention: Duration) -> bool {
        self.start_ms(overlap) < now.as_millisecond().saturating_sub(ms(retention))
    }

    /// How late an event at `time_ms`, applied for the first time now, came: the feed's last read through
    /// was after it happened and did not show it. `None` when that read was a full refresh's.
    pub fn lateness(&self, time_ms: i64) -> Option<Duration> {
        (self.polled && time_ms < self.read_ms)
            .then(|| Duration::from_millis(u64::try_from(self.read_ms - time_ms).unwrap_or(0)))
    }

    /// The cursor once the events `applied` (`(time, id)`, each new) are published; `read_through` is the
    /// start of the poll when it read the feed to its end, `None` when it stopped early (more events wait,
    /// or one cannot be applied), so the next poll starts again from the newest event applied.
    pub fn advance(
        &self,
        applied: impl IntoIterator<Item = (i64, String)>,
        read_through: Option<Timestamp>,
        overlap: Duration,
    ) -> Cursor {
        let mut next = self.clone();
        for (t, id) in applied {
            next.newest_ms = Some(next.newest_ms.map_or(t, |n| n.max(t)));
            next.seen.insert((t, id));
        }
        if let Some(r) = read_through {
            let r = r.as_millisecond();
            if r >= next.read_ms {
                next.read_ms = r;
                next.polled = true;
            }
        }
        next.prune(overlap);
        next
    }

    /// The cursor once a full refresh that began at `t` is published: the same when it already stands past
    /// `t` (the events since were applied and laid over the refresh), else [`Cursor::at`] `t`.
    pub fn after_refresh(&self, t: Timestamp) -> Option<Cursor> {
        let stood = self.newest_ms.map_or(self.read_ms, |n| n.max(self.read_ms));
        (stood < t.as_millisecond()).then(|| Cursor::at(t))
    }

    /// Forget ids no query will return again, and the oldest past [`MAX_SEEN`] (whole milliseconds at a
    /// time, so that no id at the new floor is forgotten).
    fn prune(&mut self, overlap: Duration) {
        let start = self.start_ms(overlap);
        self.seen = self.seen.split_off(&(start, String::new()));
        while self.seen.len() > MAX_SEEN {
            let Some((oldest, _)) = self.seen.first().cloned() else {
                break;
            };
            self.seen = self
                .seen
                .split_off(&(oldest.saturating_add(1), String::new()));
            self.floor_ms = self.floor_ms.max(oldest.saturating_add(1));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OVERLAP: Duration = Duration::from_secs(60);
    const T: i64 = 1_700_000_000_000;

    fn t(ms: i64) -> Timestamp {
        at(T + ms)
    }

    fn ev(ms: i64, id: &str) -> (i64, String) {
        (T + ms, id.to_owned())
    }

    #[test]
    fn a_refresh_cursor_reads_from_its_start_less_the_overlap() {
        let c = Cursor::at(t(100_000));
        assert_eq!(c.query_start(OVERLAP), t(40_000));
        assert_eq!(c.newest(), None);
        assert_eq!(
            c.lateness(T),
            None,
            "the overlap of a refresh is read, not late"
        );
    }

    #[test]
    fn advancing_remembers_ids_within_the_overlap_and_moves_the_start() {
        let c = Cursor::at(t(0));
        let c = c.advance([ev(1_000, "a"), ev(2_000, "b")], Some(t(5_000)), OVERLAP);
        assert_eq!(c.newest(), Some(t(2_000)));
        assert_eq!(c.read_through(), t(5_000));
        assert!(c.has_seen(T + 1_000, "a") && c.has_seen(T + 2_000, "b"));
        assert!(!c.has_seen(T + 1_000, "b"), "time and id together");
        assert_eq!(c.query_start(OVERLAP), t(5_000 - 60_000));
        // A quiet feed read through later moves the start on and forgets what it no longer returns.
        let c = c.advance([], Some(t(63_000)), OVERLAP);
        assert_eq!(c.query_start(OVERLAP), t(3_000));
        assert_eq!(c.seen_len(), 0);
        assert_eq!(c.newest(), Some(t(2_000)), "still the newest applied");
    }

    #[test]
    fn a_poll_that_stopped_early_does_not_move_the_read_time() {
        let c = Cursor::at(t(0)).advance([ev(1_000, "a")], Some(t(2_000)), OVERLAP);
        let c = c.advance([ev(90_000, "b")], None, OVERLAP);
        assert_eq!(c.read_through(), t(2_000));
        assert_eq!(c.query_start(OVERLAP), t(30_000), "from the newest applied");
        // A read-through time before the one held never moves it back.
        let c = c.advance([], Some(t(1_000)), OVERLAP);
        assert_eq!(c.read_through(), t(2_000));
    }

    #[test]
    fn an_event_older_than_the_last_read_came_late() {
        let c = Cursor::at(t(0)).advance([ev(1_000, "a")], Some(t(10_000)), OVERLAP);
        assert_eq!(c.lateness(T + 4_000), Some(Duration::from_secs(6)));
        assert_eq!(c.lateness(T + 10_000), None);
        assert_eq!(c.lateness(T + 12_000), None);
    }

    #[test]
    fn past_retention_when_the_start_is_older_than_the_feed_keeps() {
        let c = Cursor::at(t(0));
        let week = Duration::from_secs(7 * 24 * 3600);
        assert!(!c.past_retention(t(3_600_000), OVERLAP, week));
        assert!(c.past_retention(at(T + ms(week)), OVERLAP, week));
        assert!(!c.past_retention(at(T + ms(week) - 60_000), OVERLAP, week));
    }

    #[test]
    fn a_refresh_resets_only_a_cursor_behind_it() {
        let c = Cursor::at(t(0)).advance([ev(50_000, "a")], Some(t(60_000)), OVERLAP);
        assert_eq!(c.after_refresh(t(30_000)), None, "ahead: kept");
        assert_eq!(c.after_refresh(t(60_000)), None);
        assert_eq!(c.after_refresh(t(61_000)), Some(Cursor::at(t(61_000))));
    }

    #[test]
    fn the_seen_ids_are_bounded_and_the_floor_rises_past_those_dropped() {
        let mut c = Cursor::at(t(0));
        // Three ids a millisecond, all within the overlap.
        let events: Vec<(i64, String)> = (0..MAX_SEEN + 10)
            .map(|i| ev(1_000 + (i / 3) as i64, &format!("e{i:06}")))
            .collect();
        c = c.advance(events.clone(), Some(t(10_000)), OVERLAP);
        assert!(c.seen_len() <= MAX_SEEN);
        assert!(c.seen_len() >= MAX_SEEN - 3, "{}", c.seen_len());
        let start = c.query_start(OVERLAP).as_millisecond();
        assert!(
            start > T + 1_000,
            "never read again from before the dropped ids"
        );
        // Every id at or after the start is still known, so nothing there is applied twice.
        for (ms, id) in &events {
            if *ms >= start {
                assert!(c.has_seen(*ms, id), "{id}");
            }
        }
    }

    #[test]
    fn it_round_trips_as_json() {
        let c = Cursor::at(t(0)).advance([ev(1, "x")], Some(t(2)), OVERLAP);
        let text = serde_json::to_string(&c).unwrap();
        assert_eq!(serde_json::from_str::<Cursor>(&text).unwrap(), c);
    }
}
