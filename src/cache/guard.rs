//! The shrink guard: a complete refresh whose user or group count falls below the high-water mark of recent
//! published snapshots by more than `refresh.max_shrink` (and by more than a few objects, so a small
//! organisation can still delete one user) is held back instead of published. SailPoint treats a vanished
//! account as deleted, so publishing a bad read of JumpCloud would start mass leaver events.
//!
//! Measured against the high-water mark of a window (not the last snapshot), a slow mass deletion cannot
//! ratchet through; deletions made through this service lower the mark, so they are not shrinkage.

use std::collections::VecDeque;
use std::sync::Arc;

use jiff::{SignedDuration, Timestamp};

use super::Snapshot;
use crate::scim::ResourceKind;

/// A shrink up to this many objects is always allowed.
pub const MIN_SHRINK_OBJECTS: usize = 3;
/// How far back the high-water mark looks.
pub const WINDOW: SignedDuration = SignedDuration::from_hours(24);

/// A refresh held back, waiting for an operator.
#[derive(Debug, Clone)]
pub struct HeldBack {
    pub snapshot: Arc<Snapshot>,
    /// The write generation when its refresh started (writes after it are laid over it on accept).
    pub generation_at_start: u64,
    /// When its refresh began reading JumpCloud (where the feed's cursor stands once it is accepted).
    pub started_at: Timestamp,
    pub users: usize,
    pub groups: usize,
    pub high_water_users: usize,
    pub high_water_groups: usize,
    pub at: Timestamp,
    pub reason: String,
}

#[derive(Debug)]
pub struct ShrinkGuard {
    max_shrink: f64,
    /// Published counts: (when, users, groups).
    history: VecDeque<(Timestamp, usize, usize)>,
    pub held: Option<HeldBack>,
}

impl ShrinkGuard {
    pub fn new(max_shrink: f64) -> Self {
        Self {
            max_shrink,
            history: VecDeque::new(),
            held: None,
        }
    }

    fn prune(&mut self, now: Timestamp) {
        // Keep the newest entry whatever its age: the mark must not vanish during a long outage.
        while self.history.len() > 1
            && self
                .history
                .front()
                .is_some_and(|(t, _, _)| now.duration_since(*t) > WINDOW)
        {
            self.history.pop_front();
        }
    }

    /// The highest user and group counts published within the window.
    pub fn high_water(&self) -> (usize, usize) {
        self.history
            .iter()
            .fold((0, 0), |(u, g), (_, hu, hg)| (u.max(*hu), g.max(*hg)))
    }

    fn allowed_drop(&self, mark: usize) -> usize {
        ((mark as f64 * self.max_shrink).floor() as usize).max(MIN_SHRINK_OBJECTS)
    }

    /// Why a refresh with these counts must be held back, if it must.
    pub fn check(&mut self, users: usize, groups: usize, now: Timestamp) -> Option<String> {
        self.prune(now);
        let (hu, hg) = self.high_water();
        let mut reasons = Vec::new();
        for (what, count, mark) in [("users", users, hu), ("groups", groups, hg)] {
            if mark > count && mark - count > self.allowed_drop(mark) {
                reasons.push(format!(
                    "{what} fell from a high-water mark of {mark} to {count} (more than {:.0}% and {MIN_SHRINK_OBJECTS} objects)",
                    self.max_shrink * 100.0
                ));
            }
        }
        (!reasons.is_empty()).then(|| reasons.join("; "))
    }

    /// A snapshot with these counts was published.
    pub fn record(&mut self, users: usize, groups: usize, now: Timestamp) {
        self.history.push_back((now, users, groups));
        self.prune(now);
    }

    /// A snapshot with these counts was published by a batch of feed events: recorded when the counts
    /// moved, so a batch every few seconds adds an entry only when it creates or deletes.
    pub fn record_change(&mut self, users: usize, groups: usize, now: Timestamp) {
        if self
            .history
            .back()
            .is_some_and(|(_, u, g)| (*u, *g) == (users, groups))
        {
            return;
        }
        self.record(users, groups, now);
    }

    /// A delete made through this service is not shrinkage: lower the mark by one.
    pub fn deleted(&mut self, kind: ResourceKind) {
        for (_, u, g) in self.history.iter_mut() {
            match kind {
                ResourceKind::User => *u = u.saturating_sub(1),
                ResourceKind::Group => *g = g.saturating_sub(1),
            }
        }
    }

    /// An operator accepted the shrink: the accepted counts are the new mark.
    pub fn reset_to(&mut self, users: usize, groups: usize, now: Timestamp) {
        self.history.clear();
        self.record(users, groups, now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::ToSpan;

    fn t(h: i64) -> Timestamp {
        Timestamp::UNIX_EPOCH + h.hours()
    }

    #[test]
    fn a_large_shrink_is_held_and_a_small_one_is_not() {
        let mut g = ShrinkGuard::new(0.1);
        g.record(600, 50, t(0));
        assert!(g.check(600, 50, t(1)).is_none());
        assert!(g.check(545, 50, t(1)).is_none(), "60 of 600 is within 10%");
        let why = g.check(300, 50, t(1)).expect("a 50% shrink is held back");
        assert!(
            why.contains("users fell from a high-water mark of 600 to 300"),
            "{why}"
        );
        assert!(g.check(600, 20, t(1)).unwrap().contains("groups"));
    }

    #[test]
    fn small_organisations_can_delete_a_few() {
        let mut g = ShrinkGuard::new(0.1);
        g.record(5, 2, t(0));
        assert!(g.check(4, 2, t(1)).is_none());
        assert!(
            g.check(2, 0, t(1)).is_none(),
            "3 objects are always allowed"
        );
        assert!(g.check(1, 2, t(1)).is_some());
    }

    #[test]
    fn a_slow_mass_deletion_cannot_ratchet_through() {
        let mut g = ShrinkGuard::new(0.1);
        g.record(1000, 10, t(0));
        let mut count = 1000;
        let mut held = false;
        for hour in 1..20 {
            count -= 50;
            match g.check(count, 10, t(hour)) {
                None => g.record(count, 10, t(hour)),
                Some(_) => {
                    held = true;
                    break;
                }
            }
        }
        assert!(
            held,
            "5% a step must be stopped once it adds up to more than 10%"
        );
        assert!(count >= 850);
    }

    #[test]
    fn deletions_through_us_lower_the_mark_and_the_window_forgets() {
        let mut g = ShrinkGuard::new(0.1);
        g.record(100, 10, t(0));
        for _ in 0..20 {
            g.deleted(ResourceKind::User);
        }
        assert!(g.check(80, 10, t(1)).is_none());
        g.record(80, 10, t(1));
        // A day later the old mark is gone, but the newest entry always stays.
        g.record(70, 10, t(30));
        assert_eq!(g.high_water(), (70, 10));
        g.reset_to(10, 1, t(31));
        assert_eq!(g.high_water(), (10, 1));
    }
}
