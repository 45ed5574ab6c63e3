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
#[path = "retry_tests.rs"]
mod tests;
