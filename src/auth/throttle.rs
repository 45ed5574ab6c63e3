//! Failed authentication, slowed per credential name.
//!
//! Every failure costs the name it was made under a token from a bucket (`limits.auth_failures_burst`
//! tokens, refilled at `limits.auth_failures_per_minute`); once the bucket is empty the name is refused
//! with 429 and `Retry-After` until it refills, whatever credential comes with it, so guessing a password
//! or a client secret runs at the refill rate. A name is a Basic user name, an OAuth client id, or, for a
//! bearer token (which names nobody until it is valid), the client's address. Keying by name rather than
//! by address alone matters because SailPoint's and Entra's calls come from a few shared addresses: one
//! tenant's mistyped secret must not lock out another. Successful authentication costs nothing.
//!
//! Memory is bounded: names whose buckets are full again are forgotten once more than [`MAX_NAMES`] are
//! held. Knows nothing of HTTP.

use std::num::NonZeroU32;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};

type Instant = <DefaultClock as Clock>::Instant;

/// Names held before the full buckets are swept.
pub const MAX_NAMES: usize = 10_000;

/// The failure buckets and the names currently refused.
pub struct FailedAuth {
    limiter: DefaultKeyedRateLimiter<String>,
    clock: DefaultClock,
    /// Names refused until a moment; a name here is answered 429 before its credential is looked at.
    blocked: Mutex<std::collections::HashMap<String, Instant>>,
    /// How many names `blocked` holds, read without its lock: while none is held (the usual case), a
    /// request need not spell out its name or take the lock to learn that it is not refused.
    held: AtomicUsize,
}

impl std::fmt::Debug for FailedAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FailedAuth").finish_non_exhaustive()
    }
}

impl FailedAuth {
    /// `burst` failures at once, then `per_minute` (both at least 1).
    pub fn new(burst: u32, per_minute: u32) -> FailedAuth {
        let burst = NonZeroU32::new(burst.max(1)).unwrap_or(NonZeroU32::MIN);
        let rate = NonZeroU32::new(per_minute.max(1)).unwrap_or(NonZeroU32::MIN);
        FailedAuth {
            limiter: DefaultKeyedRateLimiter::hashmap(Quota::per_minute(rate).allow_burst(burst)),
            clock: DefaultClock::default(),
            blocked: Mutex::new(std::collections::HashMap::new()),
            held: AtomicUsize::new(0),
        }
    }

    /// Whether any name may be refused now (`false`: [`Self::blocked`] is `None` for every name).
    pub fn refuses_any(&self) -> bool {
        self.held.load(Ordering::Relaxed) > 0
    }

    /// How long `name` is still refused, if it is.
    pub fn blocked(&self, name: &str) -> Option<Duration> {
        let now = self.clock.now();
        let mut blocked = self.blocked.lock().unwrap_or_else(|p| p.into_inner());
        match blocked.get(name) {
            Some(until) if *until > now => Some(until.duration_since(now)),
            Some(_) => {
                blocked.remove(name);
                self.held.store(blocked.len(), Ordering::Relaxed);
                None
            }
            None => None,
        }
    }

    /// Record a failure under `name`: `Some(wait)` when the name has now failed too often and is refused
    /// for `wait`.
    pub fn failed(&self, name: &str) -> Option<Duration> {
        let key = name.to_owned();
        let outcome = self.limiter.check_key(&key);
        if self.limiter.len() > MAX_NAMES {
            self.limiter.retain_recent();
        }
        let not_until = outcome.err()?;
        let now = self.clock.now();
        let wait = not_until.wait_time_from(now).max(Duration::from_secs(1));
        let mut blocked = self.blocked.lock().unwrap_or_else(|p| p.into_inner());
        if blocked.len() > MAX_NAMES {
            blocked.retain(|_, until| *until > now);
        }
        blocked.insert(key, now + governor::nanos::Nanos::from(wait));
        self.held.store(blocked.len(), Ordering::Relaxed);
        Some(wait)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_is_refused_after_its_burst_and_others_are_not() {
        let f = FailedAuth::new(3, 1);
        for _ in 0..3 {
            assert_eq!(f.failed("basic:iiq"), None);
        }
        assert_eq!(f.blocked("basic:iiq"), None);
        assert!(!f.refuses_any());
        let wait = f
            .failed("basic:iiq")
            .expect("the fourth failure is one too many");
        assert!(
            wait >= Duration::from_secs(1) && wait <= Duration::from_secs(60),
            "{wait:?}"
        );
        assert!(f.blocked("basic:iiq").is_some());
        assert!(f.refuses_any());
        // Another name, from the same address, is untouched.
        assert_eq!(f.blocked("client:sailpoint"), None);
        assert_eq!(f.failed("client:sailpoint"), None);
    }
}
