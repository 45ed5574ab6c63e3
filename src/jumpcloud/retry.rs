//! Retry pieces for JumpCloud calls: a validated, jittered exponential [`Backoff`], the `Retry-After` clamp, and a
//! [`RetryPolicy`] that retries only [`JcError::is_transient`] failures within a bounded number of attempts, never a
//! breaker's refusal ([`JcError::is_fail_fast`]), and only while a caller-supplied gate (the retry budget) agrees.
//!
//! Time is an input: delays are computed from an attempt number and a caller-supplied RNG, and waiting uses
//! `tokio::time::sleep`, so tests run under paused time. Must not know SCIM, HTTP, or which calls are safe to
//! repeat: the client only hands idempotent reads to a policy.

use std::future::Future;
use std::time::Duration;

use rand::{Rng, SeedableRng};

use super::error::JcError;

/// Exponential backoff: `base · 2^attempt`, capped at `max`, with a share `jitter` of it randomised.
///
/// `jitter` 1.0 is "full jitter" (uniform in `[0, d]`), 0.5 is "equal jitter" (uniform in `[d/2, d]`), 0.0 is
/// deterministic. Fields are private so every value has passed [`Backoff::new`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    base: Duration,
    max: Duration,
    jitter: f64,
}

/// Why a [`Backoff`] could not be built.
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
pub enum InvalidBackoff {
    #[error("backoff base must be greater than zero")]
    ZeroBase,
    #[error("backoff max ({max:?}) must not be below base ({base:?})")]
    MaxBelowBase { base: Duration, max: Duration },
    #[error("backoff jitter must be within [0, 1], got {0}")]
    Jitter(f64),
}

// === impl Backoff ===

impl Backoff {
    /// Validate: `base > 0`, `max >= base`, `0 <= jitter <= 1`.
    pub fn new(base: Duration, max: Duration, jitter: f64) -> Result<Self, InvalidBackoff> {
        if base.is_zero() {
            return Err(InvalidBackoff::ZeroBase);
        }
        if max < base {
            return Err(InvalidBackoff::MaxBelowBase { base, max });
        }
        // Written so NaN fails too.
        if !(0.0..=1.0).contains(&jitter) {
            return Err(InvalidBackoff::Jitter(jitter));
        }
        Ok(Self { base, max, jitter })
    }

    pub fn base(&self) -> Duration {
        self.base
    }

    pub fn max(&self) -> Duration {
        self.max
    }

    pub fn jitter(&self) -> f64 {
        self.jitter
    }

    /// The wait after failed attempt number `attempt` (0 = the first try): `min(max, base · 2^attempt)`, of which
    /// the share `jitter` is drawn uniformly from `rng`.
    pub fn delay<R: Rng + ?Sized>(&self, attempt: u32, rng: &mut R) -> Duration {
        let ceiling = 1u32
            .checked_shl(attempt)
            .map_or(self.max, |factor| self.base.saturating_mul(factor))
            .min(self.max);
        if self.jitter <= 0.0 {
            return ceiling;
        }
        // `Duration::mul_f64` panics when rounding lands past `Duration::MAX`; a cap that large is absurd but
        // must not crash a refresh.
        let scale =
            |d: Duration, by: f64| Duration::try_from_secs_f64(d.as_secs_f64() * by).unwrap_or(d);
        let spread = scale(ceiling, self.jitter).min(ceiling);
        let floor = ceiling - spread;
        let drawn = scale(spread, rng.random::<f64>()).min(spread);
        floor + drawn
    }
}

/// Keep a server-requested wait within `[min, max]` so a bogus `Retry-After: 86400` cannot park a refresh for a
/// day, nor `0` turn a rate limit into a hot loop. If `min > max`, `max` wins.
pub fn clamp_retry_after(ra: Duration, min: Duration, max: Duration) -> Duration {
    ra.max(min).min(max)
}

/// How reads are retried.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Attempts in total, the first included; 0 behaves as 1.
    pub max_attempts: u32,
    pub backoff: Backoff,
    /// Upper bound on an honoured `Retry-After`.
    pub retry_after_cap: Duration,
}

/// One retry about to happen, as reported to [`RetryPolicy::run_observed`]'s hook.
#[derive(Debug)]
pub struct RetryEvent<'a> {
    /// The attempt that is about to start (1 = the first retry).
    pub next_attempt: u32,
    /// The transient failure that caused it.
    pub error: &'a JcError,
    /// How long we sleep first.
    pub delay: Duration,
}

// === impl RetryPolicy ===

impl Default for RetryPolicy {
    /// Four attempts over roughly 0.25 + 0.5 + 1 s (equal jitter): enough to ride out a gateway blip, short enough
    /// that a snapshot refresh against a down JumpCloud fails fast and keeps the last good snapshot.
    fn default() -> Self {
        Self {
            max_attempts: 4,
            backoff: Backoff {
                base: Duration::from_millis(250),
                max: Duration::from_secs(8),
                jitter: 0.5,
            },
            retry_after_cap: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    /// A policy that never retries.
    pub fn no_retries() -> Self {
        Self {
            max_attempts: 1,
            ..Self::default()
        }
    }

    /// Run `op(attempt)` (attempt 0 is the first try) until it succeeds, fails permanently, or attempts run out.
    pub async fn run<T, F, Fut>(&self, op: F) -> Result<T, JcError>
    where
        F: FnMut(u32) -> Fut,
        Fut: Future<Output = Result<T, JcError>>,
    {
        let mut rng = rand::rngs::SmallRng::from_os_rng();
        self.run_observed(&mut rng, |_| {}, op).await
    }

    /// [`run`](Self::run) with the jitter source and a hook told about every retry before its sleep (the client
    /// counts retries and logs them there).
    ///
    /// The wait before a retry is `max(backoff.delay(attempt), clamp(retry_after, 0, retry_after_cap))`.
    pub async fn run_observed<T, F, Fut, R>(
        &self,
        rng: &mut R,
        on_retry: impl FnMut(&RetryEvent<'_>),
        op: F,
    ) -> Result<T, JcError>
    where
        F: FnMut(u32) -> Fut,
        Fut: Future<Output = Result<T, JcError>>,
        R: Rng + ?Sized,
    {
        self.run_gated(rng, |_| true, on_retry, op).await
    }

    /// [`run_observed`](Self::run_observed), asking `may_retry` before each retry the policy would make; `false`
    /// ends the run with the error at hand. The gate is asked only when a retry would otherwise happen, so a
    /// budget behind it is drawn on exactly once per retry.
    ///
    /// A breaker's refusal ([`JcError::is_fail_fast`]) ends the run at once: nothing was sent, and waiting out
    /// the cool-down inside one operation would hold its caller for up to the whole cool-down.
    pub async fn run_gated<T, F, Fut, R>(
        &self,
        rng: &mut R,
        mut may_retry: impl FnMut(&JcError) -> bool,
        mut on_retry: impl FnMut(&RetryEvent<'_>),
        mut op: F,
    ) -> Result<T, JcError>
    where
        F: FnMut(u32) -> Fut,
        Fut: Future<Output = Result<T, JcError>>,
        R: Rng + ?Sized,
    {
        let attempts = self.max_attempts.max(1);
        let mut attempt = 0;
        loop {
            let error = match op(attempt).await {
                Ok(value) => return Ok(value),
                Err(error) => error,
            };
            if !error.is_transient()
                || error.is_fail_fast()
                || attempt + 1 >= attempts
                || !may_retry(&error)
            {
                return Err(error);
            }
            let mut delay = self.backoff.delay(attempt, rng);
            if let Some(ra) = error.retry_after() {
                delay = delay.max(clamp_retry_after(ra, Duration::ZERO, self.retry_after_cap));
            }
            attempt += 1;
            on_retry(&RetryEvent {
                next_attempt: attempt,
                error: &error,
                delay,
            });
            tokio::time::sleep(delay).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use rand::rngs::StdRng;
    use tokio::time::Instant;

    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn transient(retry_after: Option<Duration>) -> JcError {
        JcError::Transient {
            status: Some(503),
            retry_after,
            message: "try later".into(),
            sent: true,
        }
    }

    fn policy(max_attempts: u32) -> RetryPolicy {
        RetryPolicy {
            max_attempts,
            backoff: Backoff::new(100 * MS, 1000 * MS, 0.0).unwrap(),
            retry_after_cap: Duration::from_secs(5),
        }
    }

    #[test]
    fn backoff_is_validated() {
        assert_eq!(
            Backoff::new(Duration::ZERO, MS, 0.0),
            Err(InvalidBackoff::ZeroBase)
        );
        assert_eq!(
            Backoff::new(2 * MS, MS, 0.0),
            Err(InvalidBackoff::MaxBelowBase {
                base: 2 * MS,
                max: MS
            })
        );
        assert!(matches!(
            Backoff::new(MS, MS, 1.5),
            Err(InvalidBackoff::Jitter(_))
        ));
        assert!(matches!(
            Backoff::new(MS, MS, -0.1),
            Err(InvalidBackoff::Jitter(_))
        ));
        assert!(matches!(
            Backoff::new(MS, MS, f64::NAN),
            Err(InvalidBackoff::Jitter(_))
        ));
        assert!(Backoff::new(MS, MS, 1.0).is_ok());
    }

    #[test]
    fn backoff_without_jitter_doubles_then_caps() {
        let b = Backoff::new(100 * MS, 1000 * MS, 0.0).unwrap();
        let mut rng = StdRng::seed_from_u64(7);
        let got: Vec<_> = (0..6).map(|a| b.delay(a, &mut rng)).collect();
        assert_eq!(
            got,
            [100 * MS, 200 * MS, 400 * MS, 800 * MS, 1000 * MS, 1000 * MS]
        );
        // Huge attempt numbers neither overflow nor panic.
        assert_eq!(b.delay(31, &mut rng), 1000 * MS);
        assert_eq!(b.delay(32, &mut rng), 1000 * MS);
        assert_eq!(b.delay(u32::MAX, &mut rng), 1000 * MS);
        let huge = Backoff::new(Duration::MAX / 2, Duration::MAX, 0.0).unwrap();
        assert_eq!(huge.delay(30, &mut rng), Duration::MAX);
        let huge = Backoff::new(Duration::MAX / 2, Duration::MAX, 1.0).unwrap();
        assert!(huge.delay(30, &mut rng) <= Duration::MAX);
    }

    #[test]
    fn jitter_stays_within_its_band() {
        let mut rng = StdRng::seed_from_u64(42);
        let equal = Backoff::new(100 * MS, 1000 * MS, 0.5).unwrap();
        let full = Backoff::new(100 * MS, 1000 * MS, 1.0).unwrap();
        let mut seen_low = false;
        for _ in 0..1000 {
            let d = equal.delay(2, &mut rng);
            assert!((200 * MS..=400 * MS).contains(&d), "{d:?}");
            let d = full.delay(2, &mut rng);
            assert!(d <= 400 * MS, "{d:?}");
            seen_low |= d < 200 * MS;
        }
        assert!(seen_low, "full jitter reaches below half");
    }

    #[test]
    fn retry_after_is_clamped() {
        let (lo, hi) = (MS, 10 * MS);
        assert_eq!(clamp_retry_after(Duration::ZERO, lo, hi), lo);
        assert_eq!(clamp_retry_after(5 * MS, lo, hi), 5 * MS);
        assert_eq!(clamp_retry_after(Duration::from_secs(86400), lo, hi), hi);
        assert_eq!(clamp_retry_after(5 * MS, hi, lo), lo, "max wins");
    }

    #[tokio::test(start_paused = true)]
    async fn transient_failures_then_success() {
        let start = Instant::now();
        let calls = Cell::new(0);
        let result = policy(4)
            .run(|attempt| {
                calls.set(calls.get() + 1);
                async move {
                    if attempt < 3 {
                        Err(transient(None))
                    } else {
                        Ok(attempt)
                    }
                }
            })
            .await;
        assert_eq!(result.unwrap(), 3);
        assert_eq!(calls.get(), 4);
        // 100 + 200 + 400 ms of backoff, nothing else.
        assert_eq!(start.elapsed(), 700 * MS);
    }

    #[tokio::test(start_paused = true)]
    async fn permanent_errors_are_not_retried() {
        let start = Instant::now();
        let calls = Cell::new(0);
        let result: Result<(), _> = policy(4)
            .run(|_| {
                calls.set(calls.get() + 1);
                async {
                    Err(JcError::Rejected {
                        status: 400,
                        message: "bad".into(),
                        field_violations: vec![],
                    })
                }
            })
            .await;
        assert!(matches!(result, Err(JcError::Rejected { .. })));
        assert_eq!(calls.get(), 1);
        assert_eq!(start.elapsed(), Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn attempts_are_bounded_and_the_last_error_returned() {
        let start = Instant::now();
        let calls = Cell::new(0);
        let mut retries = Vec::new();
        let mut rng = StdRng::seed_from_u64(0);
        let result: Result<(), _> = policy(3)
            .run_observed(
                &mut rng,
                |ev| retries.push((ev.next_attempt, ev.delay)),
                |_| {
                    calls.set(calls.get() + 1);
                    async { Err(transient(None)) }
                },
            )
            .await;
        assert!(result.unwrap_err().is_transient());
        assert_eq!(calls.get(), 3);
        assert_eq!(retries, [(1, 100 * MS), (2, 200 * MS)]);
        assert_eq!(start.elapsed(), 300 * MS);

        // Zero attempts still tries once.
        calls.set(0);
        let _ = policy(0)
            .run(|_| {
                calls.set(calls.get() + 1);
                async { Err::<(), _>(transient(None)) }
            })
            .await;
        assert_eq!(calls.get(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn retry_after_is_honoured_within_the_cap() {
        // A Retry-After longer than the backoff wins; one beyond the cap is cut to the cap; a shorter one
        // does not shorten the backoff.
        for (ra, expected) in [
            (Duration::from_secs(2), Duration::from_secs(2)),
            (Duration::from_secs(3600), Duration::from_secs(5)),
            (10 * MS, 100 * MS),
        ] {
            let start = Instant::now();
            let result = policy(2)
                .run(|attempt| async move {
                    if attempt == 0 {
                        Err(transient(Some(ra)))
                    } else {
                        Ok(())
                    }
                })
                .await;
            assert!(result.is_ok());
            assert_eq!(start.elapsed(), expected, "Retry-After {ra:?}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_closed_gate_ends_the_run_with_the_last_error() {
        let calls = Cell::new(0);
        let asked = Cell::new(0);
        let mut rng = StdRng::seed_from_u64(0);
        let result: Result<(), _> = policy(6)
            .run_gated(
                &mut rng,
                |_| {
                    asked.set(asked.get() + 1);
                    asked.get() <= 2
                },
                |_| {},
                |attempt| {
                    calls.set(calls.get() + 1);
                    async move { Err(transient(Some(Duration::from_millis(u64::from(attempt))))) }
                },
            )
            .await;
        // Two retries granted, the third refused: three calls, and the error is the third call's.
        assert_eq!((calls.get(), asked.get()), (3, 3));
        assert_eq!(result.unwrap_err().retry_after(), Some(2 * MS));
    }

    #[tokio::test(start_paused = true)]
    async fn a_breaker_refusal_is_not_retried_or_waited_out() {
        let start = Instant::now();
        let calls = Cell::new(0);
        let asked = Cell::new(0);
        let mut rng = StdRng::seed_from_u64(0);
        let result: Result<(), _> = policy(6)
            .run_gated(
                &mut rng,
                |_| {
                    asked.set(asked.get() + 1);
                    true
                },
                |_| {},
                |_| {
                    calls.set(calls.get() + 1);
                    async { Err(JcError::breaker_open(Duration::from_secs(15))) }
                },
            )
            .await;
        assert!(result.unwrap_err().is_fail_fast());
        assert_eq!(
            (calls.get(), asked.get()),
            (1, 0),
            "the budget is not drawn on"
        );
        assert_eq!(start.elapsed(), Duration::ZERO);
    }
}
