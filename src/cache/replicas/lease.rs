//! The refresher's lease as this replica sees it: whether it leads, when to renew, when to step down. Pure
//! (time is an argument); the Redis side (SET NX PX with a token from INCR, renewal and release by compare)
//! is in `shared.rs`.
//!
//! A leader holds a fencing token: a number from one Redis counter, larger for every lease ever taken. Every
//! publication of a leader-only version (a refresh, a feed batch) is accepted by Redis only while the lease
//! key still holds that token, so a leader paused past its lease, whose lease another replica has since
//! taken, cannot publish over the newer leader. Locally, a leader that could not renew steps down once two
//! thirds of the lease have passed since its last renewal, before Redis can give the lease to anyone else.

use std::time::Duration;

use tokio::time::Instant;

/// This replica's view of the lease.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Lease {
    /// The token held and when the lease was last set or renewed in Redis.
    held: Option<(u64, Instant)>,
}

/// What a renewal round found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Round {
    /// Redis has the lease under our token, extended now.
    Renewed,
    /// Redis has the lease under another token (or none): we lost it.
    Lost,
    /// Redis did not answer.
    Unreachable,
}

impl Lease {
    /// How often a leader renews, and a follower tries to take the lease: a third of it.
    pub fn renew_every(lease: Duration) -> Duration {
        (lease / 3).max(Duration::from_millis(100))
    }

    /// A lease just taken with `token` at `now`.
    pub fn taken(&mut self, token: u64, now: Instant) {
        self.held = Some((token, now));
    }

    /// The token while this replica may act as leader at `now`.
    pub fn token(&self, now: Instant, lease: Duration) -> Option<u64> {
        let (token, at) = self.held?;
        (now.saturating_duration_since(at) < lease * 2 / 3).then_some(token)
    }

    /// The token held, whether or not still valid (for renewing or releasing it).
    pub fn held(&self) -> Option<u64> {
        self.held.map(|(t, _)| t)
    }

    /// Account for a renewal round at `now`; whether this replica still leads.
    pub fn after(&mut self, round: Round, now: Instant, lease: Duration) -> bool {
        match round {
            Round::Renewed => {
                if let Some((t, _)) = self.held {
                    self.held = Some((t, now));
                }
            }
            Round::Lost => self.held = None,
            Round::Unreachable => {
                if self.token(now, lease).is_none() {
                    self.held = None;
                }
            }
        }
        self.held.is_some()
    }
}

/// Whether a publication fenced by `token` may land while the lease key holds `holder` (what the publish
/// script checks in Redis).
pub fn fence_admits(holder: Option<u64>, token: u64) -> bool {
    holder == Some(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LEASE: Duration = Duration::from_secs(9);

    #[tokio::test(start_paused = true)]
    async fn a_leader_that_cannot_renew_steps_down_before_its_lease_ends() {
        let mut l = Lease::default();
        let t0 = Instant::now();
        assert_eq!(l.token(t0, LEASE), None);
        l.taken(4, t0);
        assert_eq!(l.token(t0, LEASE), Some(4));
        assert!(l.after(Round::Unreachable, t0 + Duration::from_secs(3), LEASE));
        assert!(l.after(Round::Unreachable, t0 + Duration::from_secs(5), LEASE));
        // Two thirds of the lease without a renewal: no longer the leader, though Redis may still say so.
        assert!(!l.after(Round::Unreachable, t0 + Duration::from_secs(6), LEASE));
        assert_eq!(l.held(), None);
    }

    #[tokio::test(start_paused = true)]
    async fn renewals_extend_and_a_lost_lease_ends_at_once() {
        let mut l = Lease::default();
        let t0 = Instant::now();
        l.taken(7, t0);
        assert!(l.after(Round::Renewed, t0 + Duration::from_secs(5), LEASE));
        assert_eq!(l.token(t0 + Duration::from_secs(10), LEASE), Some(7));
        assert!(!l.after(Round::Lost, t0 + Duration::from_secs(11), LEASE));
        assert_eq!(l.token(t0 + Duration::from_secs(11), LEASE), None);
        assert_eq!(Lease::renew_every(LEASE), Duration::from_secs(3));
    }

    #[test]
    fn only_the_current_token_is_admitted() {
        assert!(fence_admits(Some(8), 8));
        assert!(!fence_admits(Some(9), 8), "an old leader is fenced off");
        assert!(!fence_admits(None, 8), "an expired lease admits nobody");
    }
}
