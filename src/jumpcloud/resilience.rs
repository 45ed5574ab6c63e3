//! Upstream resilience: what keeps a flaky JumpCloud gateway from becoming an outage of ours, and our retries
//! from becoming more load on an outage of theirs.
//!
//! - [`RetryBudget`]: retries allowed as a share of recent requests, plus a small floor per second, so random
//!   502s are ridden out while a full outage adds a bounded number of extra calls.
//! - [`Breaker`]: a consecutive-failures circuit breaker. Vocabulary (the textbook one, the reverse of linkerd's
//!   gate): **closed** = calls flow; **open** = failing fast, no call is made; **half-open** = exactly one probe
//!   call is in flight and every other caller fails fast until it answers.
//! - [`UpstreamGuard`]: the breaker, the budget and a bound on concurrent upstream calls, applied around each
//!   call and each retried read. The client holds one, shared by its clones.
//! - [`with_deadline`]: one deadline over a whole unit of work (a refresh, a write).
//!
//! What counts against JumpCloud's health ([`is_upstream_failure`]): connect errors, timeouts, broken bodies,
//! 408 and 5xx gateway answers. A 429 does not: JumpCloud answered deliberately, `Retry-After` paces us, and
//! opening on it would turn a rate limit into an outage of our own. Any other answer (404, 409, 400, 401, …)
//! shows JumpCloud is up and counts as a success.
//!
//! Time is tokio's clock, so paused-time tests walk through windows and cool-downs; the budget also takes `now`
//! explicitly. Locks are `std` mutexes held for a few instructions, never across an `.await`.
//!
//! Must not know SCIM, routes or JumpCloud's wire format: it sees only [`JcError`] classes.

use std::fmt;
use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use rand::Rng;
use tokio::sync::{Notify, Semaphore};
use tokio::time::Instant;

use super::error::JcError;
use super::retry::{RetryEvent, RetryPolicy};

/// Upstream calls in flight at once, by default: a refresh keeps 4 list calls going, which leaves as many for
/// writes and their lookups; more than that against one gateway looks like a burst and buys no speed.
pub const DEFAULT_MAX_IN_FLIGHT: usize = 8;

/// The budget window is kept in this many slots; requests and retries leave it one slot at a time.
const SLOTS: usize = 10;

/// What a refused caller is told to wait while a probe is in flight: about as long as one call takes.
const PROBE_WAIT: Duration = Duration::from_secs(1);

/// Whether a failure speaks against JumpCloud's health (see the module docs). A breaker's own refusal does not.
pub fn is_upstream_failure(error: &JcError) -> bool {
    match error {
        JcError::Transient { status, .. } => *status != Some(429) && !error.is_fail_fast(),
        _ => false,
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // The state is a few plain fields updated in place: a panic elsewhere cannot leave it half-written.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

// === RetryBudget ===

/// Parameters of a [`RetryBudget`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BudgetConfig {
    /// Retries allowed per original request over the window (0.5: one retry for every two requests).
    pub ratio: f64,
    /// How far back requests and retries are remembered; between 1 s and 60 s.
    pub window: Duration,
    /// Retries per second allowed regardless of traffic, so a quiet client can still retry.
    pub min_per_sec: u32,
}

impl Default for BudgetConfig {
    /// Ratio 0.5 over 10 s plus 5 retries a second. Under 20% random 502s a call needs 0.25 retries on average,
    /// so a refresh (~90 calls) needs ~23 against ~95 allowed; during an outage a refresh's retries stop at
    /// half its calls plus 50.
    fn default() -> Self {
        Self {
            ratio: 0.5,
            window: Duration::from_secs(10),
            min_per_sec: 5,
        }
    }
}

/// Why a [`RetryBudget`] could not be built.
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
pub enum InvalidBudget {
    #[error("retry budget ratio must be within [0, 10], got {0}")]
    Ratio(f64),
    #[error("retry budget window must be between 1 s and 60 s, got {0:?}")]
    Window(Duration),
}

/// Retries as a share of recent requests: each original request deposits, each retry withdraws, and a retry
/// is allowed only while `min_per_sec · window + ratio · requests − retries ≥ 1` over the window.
///
/// The window is [`SLOTS`] slots of `window / 10`; the oldest slot is forgotten as time moves on, so the
/// remembered span is between 0.9 and 1 window.
pub struct RetryBudget {
    config: BudgetConfig,
    slot_len: Duration,
    reserve: f64,
    ledger: Mutex<Ledger>,
}

#[derive(Debug, Clone, Copy, Default)]
struct Slot {
    deposits: u64,
    withdrawals: u64,
}

struct Ledger {
    slots: [Slot; SLOTS],
    current: usize,
    current_started: Instant,
}

impl Ledger {
    /// Forget the slots that have left the window by `now`.
    fn roll(&mut self, now: Instant, slot_len: Duration) {
        let elapsed = now.saturating_duration_since(self.current_started);
        let steps = elapsed.as_nanos() / slot_len.as_nanos();
        if steps == 0 {
            return;
        }
        if steps >= SLOTS as u128 {
            self.slots = [Slot::default(); SLOTS];
            self.current_started = now;
            return;
        }
        for _ in 0..steps {
            self.current = (self.current + 1) % SLOTS;
            self.slots[self.current] = Slot::default();
        }
        // steps < SLOTS, so the product is at most one window.
        self.current_started += slot_len * steps as u32;
    }

    fn totals(&self) -> Slot {
        self.slots.iter().fold(Slot::default(), |a, s| Slot {
            deposits: a.deposits.saturating_add(s.deposits),
            withdrawals: a.withdrawals.saturating_add(s.withdrawals),
        })
    }
}

// === impl RetryBudget ===

impl RetryBudget {
    /// Validate: `0 <= ratio <= 10`, `1 s <= window <= 60 s`. A ratio of 0 with no minimum allows no retries.
    pub fn new(config: BudgetConfig) -> Result<Self, InvalidBudget> {
        // Written so NaN fails too.
        if !(0.0..=10.0).contains(&config.ratio) {
            return Err(InvalidBudget::Ratio(config.ratio));
        }
        if !(Duration::from_secs(1)..=Duration::from_secs(60)).contains(&config.window) {
            return Err(InvalidBudget::Window(config.window));
        }
        Ok(Self {
            config,
            slot_len: config.window / SLOTS as u32,
            reserve: f64::from(config.min_per_sec) * config.window.as_secs_f64(),
            ledger: Mutex::new(Ledger {
                slots: [Slot::default(); SLOTS],
                current: 0,
                current_started: Instant::now(),
            }),
        })
    }

    pub fn config(&self) -> BudgetConfig {
        self.config
    }

    /// An original request was made.
    pub fn deposit(&self) {
        self.deposit_at(Instant::now());
    }

    /// A retry wants to go: `true` (and the retry is counted) if the budget allows it.
    pub fn try_withdraw(&self) -> bool {
        self.try_withdraw_at(Instant::now())
    }

    /// Retries the budget would allow right now.
    pub fn balance(&self) -> f64 {
        self.balance_at(Instant::now())
    }

    pub fn deposit_at(&self, now: Instant) {
        let mut ledger = lock(&self.ledger);
        ledger.roll(now, self.slot_len);
        let i = ledger.current;
        ledger.slots[i].deposits = ledger.slots[i].deposits.saturating_add(1);
    }

    pub fn try_withdraw_at(&self, now: Instant) -> bool {
        let mut ledger = lock(&self.ledger);
        ledger.roll(now, self.slot_len);
        if self.balance_of(&ledger) < 1.0 {
            return false;
        }
        let i = ledger.current;
        ledger.slots[i].withdrawals = ledger.slots[i].withdrawals.saturating_add(1);
        true
    }

    pub fn balance_at(&self, now: Instant) -> f64 {
        let mut ledger = lock(&self.ledger);
        ledger.roll(now, self.slot_len);
        self.balance_of(&ledger)
    }

    fn balance_of(&self, ledger: &Ledger) -> f64 {
        let t = ledger.totals();
        self.reserve + self.config.ratio * t.deposits as f64 - t.withdrawals as f64
    }
}

impl fmt::Debug for RetryBudget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RetryBudget")
            .field("config", &self.config)
            .field("balance", &self.balance())
            .finish()
    }
}

// === Breaker ===

/// Parameters of a [`Breaker`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BreakerConfig {
    /// Consecutive upstream failures that open the breaker.
    pub failure_threshold: u32,
    /// How long it stays open the first time.
    pub cool_down: Duration,
    /// Each failed probe doubles the cool-down, up to this.
    pub max_cool_down: Duration,
}

impl Default for BreakerConfig {
    /// 10 failures in a row, 15 s, doubling to 60 s. Under 20% random 502s ten in a row happen about once in ten
    /// million calls, so only an outage opens it. JumpCloud's outages last minutes: probing every 15–60 s costs
    /// one call each time, and a recovery is noticed within a minute (no later than the next refresh).
    fn default() -> Self {
        Self {
            failure_threshold: 10,
            cool_down: Duration::from_secs(15),
            max_cool_down: Duration::from_secs(60),
        }
    }
}

/// Why a [`Breaker`] could not be built.
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
pub enum InvalidBreaker {
    #[error("breaker failure_threshold must be at least 1")]
    ZeroThreshold,
    #[error("breaker cool_down must be greater than zero")]
    ZeroCoolDown,
    #[error("breaker max_cool_down ({max:?}) must not be below cool_down ({cool_down:?})")]
    MaxBelowCoolDown { cool_down: Duration, max: Duration },
}

/// Where a [`Breaker`] stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    /// Calls flow.
    Closed,
    /// Failing fast until `until`; the first call after it becomes the probe. Reported as open until that call
    /// is made, even when `until` has passed.
    Open { until: Instant },
    /// One probe is in flight; everyone else fails fast until it answers.
    HalfOpen,
}

impl BreakerState {
    /// For a metrics gauge: 0 closed, 1 half-open, 2 open.
    pub fn code(self) -> u8 {
        match self {
            BreakerState::Closed => 0,
            BreakerState::HalfOpen => 1,
            BreakerState::Open { .. } => 2,
        }
    }
}

/// A consecutive-failures circuit breaker with one-probe half-open (see the module docs for the vocabulary).
pub struct Breaker {
    config: BreakerConfig,
    state: Mutex<BreakerInner>,
    /// Woken on every change of state, for [`Breaker::wait_until_callable`].
    changed: Notify,
}

struct BreakerInner {
    state: BreakerState,
    /// Consecutive failures while closed.
    failures: u32,
    /// The cool-down the next failed probe doubles.
    cool_down: Duration,
}

/// Leave to make one call, from [`Breaker::try_call`]. Report the outcome with [`record`](Self::record); a probe
/// dropped unreported (its caller gave up) hands the probe to the next caller.
#[must_use = "report the call's outcome"]
pub struct BreakerCall<'a> {
    breaker: &'a Breaker,
    probe: bool,
    reported: bool,
}

// === impl Breaker ===

impl Breaker {
    /// Validate: `failure_threshold >= 1`, `cool_down > 0`, `max_cool_down >= cool_down`.
    pub fn new(config: BreakerConfig) -> Result<Self, InvalidBreaker> {
        if config.failure_threshold == 0 {
            return Err(InvalidBreaker::ZeroThreshold);
        }
        if config.cool_down.is_zero() {
            return Err(InvalidBreaker::ZeroCoolDown);
        }
        if config.max_cool_down < config.cool_down {
            return Err(InvalidBreaker::MaxBelowCoolDown {
                cool_down: config.cool_down,
                max: config.max_cool_down,
            });
        }
        Ok(Self {
            config,
            state: Mutex::new(BreakerInner {
                state: BreakerState::Closed,
                failures: 0,
                cool_down: config.cool_down,
            }),
            changed: Notify::new(),
        })
    }

    pub fn config(&self) -> BreakerConfig {
        self.config
    }

    pub fn state(&self) -> BreakerState {
        lock(&self.state).state
    }

    /// 0 closed, 1 half-open, 2 open: for a metrics gauge.
    pub fn state_code(&self) -> u8 {
        self.state().code()
    }

    /// Ask to make a call. `Err(wait)`: fail fast, and asking again within `wait` fails the same way.
    pub fn try_call(&self) -> Result<BreakerCall<'_>, Duration> {
        let now = Instant::now();
        let mut inner = lock(&self.state);
        let probe = match inner.state {
            BreakerState::Closed => false,
            BreakerState::Open { until } if now < until => return Err(until - now),
            BreakerState::Open { .. } => {
                inner.state = BreakerState::HalfOpen;
                true
            }
            BreakerState::HalfOpen => return Err(PROBE_WAIT),
        };
        drop(inner);
        if probe {
            tracing::info!("JumpCloud circuit breaker half-open: one probe call goes through");
            self.changed.notify_waiters();
        }
        Ok(BreakerCall {
            breaker: self,
            probe,
            reported: false,
        })
    }

    /// Resolves once a call may go: at once when closed, at the end of the cool-down when open (the next call
    /// is the probe), when the probe succeeds when half-open. Another caller may still take the probe first,
    /// in which case this caller's call fails fast.
    pub async fn wait_until_callable(&self) {
        loop {
            let mut changed = pin!(self.changed.notified());
            // Registered before the state is read, so a change in between is not missed.
            changed.as_mut().enable();
            match self.state() {
                BreakerState::Closed => return,
                BreakerState::Open { until } => {
                    if until <= Instant::now() {
                        return;
                    }
                    tokio::select! {
                        () = tokio::time::sleep_until(until) => {}
                        () = changed => {}
                    }
                }
                BreakerState::HalfOpen => changed.await,
            }
        }
    }

    fn report(&self, probe: bool, failed: bool) {
        let now = Instant::now();
        let mut inner = lock(&self.state);
        let before = inner.state;
        match (before, probe, failed) {
            (BreakerState::Closed, false, false) => inner.failures = 0,
            (BreakerState::Closed, false, true) => {
                inner.failures = inner.failures.saturating_add(1);
                if inner.failures >= self.config.failure_threshold {
                    inner.cool_down = self.config.cool_down;
                    inner.state = BreakerState::Open {
                        until: now + inner.cool_down,
                    };
                    tracing::warn!(
                        failures = inner.failures,
                        cool_down_s = inner.cool_down.as_secs_f64(),
                        "JumpCloud circuit breaker open: consecutive failures; failing fast"
                    );
                }
            }
            (BreakerState::HalfOpen, true, false) => {
                inner.state = BreakerState::Closed;
                inner.failures = 0;
                inner.cool_down = self.config.cool_down;
                tracing::info!("JumpCloud circuit breaker closed: the probe succeeded");
            }
            (BreakerState::HalfOpen, true, true) => {
                inner.cool_down = inner
                    .cool_down
                    .saturating_mul(2)
                    .min(self.config.max_cool_down);
                inner.state = BreakerState::Open {
                    until: now + inner.cool_down,
                };
                tracing::warn!(
                    cool_down_s = inner.cool_down.as_secs_f64(),
                    "JumpCloud circuit breaker open again: the probe failed"
                );
            }
            // A call that started before the breaker opened: the probe, not stragglers, decides.
            _ => {}
        }
        let changed = inner.state != before;
        drop(inner);
        if changed {
            self.changed.notify_waiters();
        }
    }

    /// The probe's caller gave up before it answered: no evidence either way, so the next caller probes.
    fn abandon_probe(&self) {
        let mut inner = lock(&self.state);
        if inner.state == BreakerState::HalfOpen {
            inner.state = BreakerState::Open {
                until: Instant::now(),
            };
            drop(inner);
            self.changed.notify_waiters();
        }
    }
}

impl fmt::Debug for Breaker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Breaker")
            .field("config", &self.config)
            .field("state", &self.state())
            .finish()
    }
}

// === impl BreakerCall ===

impl BreakerCall<'_> {
    /// This call is the half-open probe.
    pub fn is_probe(&self) -> bool {
        self.probe
    }

    /// Report how the call went ([`is_upstream_failure`] decides what counts against JumpCloud).
    pub fn record<T>(mut self, result: &Result<T, JcError>) {
        self.reported = true;
        let failed = result.as_ref().err().is_some_and(is_upstream_failure);
        self.breaker.report(self.probe, failed);
    }
}

impl Drop for BreakerCall<'_> {
    fn drop(&mut self) {
        if self.probe && !self.reported {
            self.breaker.abandon_probe();
        }
    }
}

// === UpstreamGuard ===

/// The breaker, the retry budget and the in-flight bound, with the counters of what they refused.
pub struct UpstreamGuard {
    breaker: Breaker,
    budget: RetryBudget,
    /// A tokio semaphore: a permit is held across the HTTP exchange's `.await`s.
    in_flight: Semaphore,
    max_in_flight: usize,
    failed_fast: AtomicU64,
    retries_refused: AtomicU64,
}

/// Why an [`UpstreamGuard`] could not be built.
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
pub enum InvalidGuard {
    #[error(transparent)]
    Breaker(#[from] InvalidBreaker),
    #[error(transparent)]
    Budget(#[from] InvalidBudget),
    #[error("max_in_flight must be between 1 and {max}, got {got}")]
    MaxInFlight { got: usize, max: usize },
}

// === impl UpstreamGuard ===

impl UpstreamGuard {
    pub fn new(
        breaker: BreakerConfig,
        budget: BudgetConfig,
        max_in_flight: usize,
    ) -> Result<Self, InvalidGuard> {
        if max_in_flight == 0 || max_in_flight > Semaphore::MAX_PERMITS {
            return Err(InvalidGuard::MaxInFlight {
                got: max_in_flight,
                max: Semaphore::MAX_PERMITS,
            });
        }
        Ok(Self {
            breaker: Breaker::new(breaker)?,
            budget: RetryBudget::new(budget)?,
            in_flight: Semaphore::new(max_in_flight),
            max_in_flight,
            failed_fast: AtomicU64::new(0),
            retries_refused: AtomicU64::new(0),
        })
    }

    pub fn breaker(&self) -> &Breaker {
        &self.breaker
    }

    pub fn budget(&self) -> &RetryBudget {
        &self.budget
    }

    pub fn max_in_flight(&self) -> usize {
        self.max_in_flight
    }

    /// Calls refused by the breaker so far.
    pub fn failed_fast(&self) -> u64 {
        self.failed_fast.load(Ordering::Relaxed)
    }

    /// Retries the budget refused so far.
    pub fn retries_refused(&self) -> u64 {
        self.retries_refused.load(Ordering::Relaxed)
    }

    /// One upstream call: ask the breaker (refused → [`JcError::breaker_open`] without running `exchange`), hold
    /// an in-flight permit while `exchange` runs, report its outcome to the breaker.
    pub async fn call<T>(
        &self,
        exchange: impl Future<Output = Result<T, JcError>>,
    ) -> Result<T, JcError> {
        let ticket = match self.breaker.try_call() {
            Ok(ticket) => ticket,
            Err(wait) => {
                self.failed_fast.fetch_add(1, Ordering::Relaxed);
                return Err(JcError::breaker_open(wait));
            }
        };
        let permit = self
            .in_flight
            .acquire()
            .await
            .map_err(|_| JcError::protocol("the upstream call limit was closed"))?;
        let result = exchange.await;
        drop(permit);
        ticket.record(&result);
        result
    }

    /// A read retried per `policy`: the first attempt that reached JumpCloud deposits into the budget, every
    /// retry withdraws, and a retry the budget refuses ends the read with the error at hand. `op(attempt)` should
    /// go through [`call`](Self::call).
    pub async fn retry<T, F, Fut, R>(
        &self,
        policy: &RetryPolicy,
        rng: &mut R,
        on_retry: impl FnMut(&RetryEvent<'_>),
        mut op: F,
    ) -> Result<T, JcError>
    where
        F: FnMut(u32) -> Fut,
        Fut: Future<Output = Result<T, JcError>>,
        R: Rng + ?Sized,
    {
        policy
            .run_gated(
                rng,
                |error| {
                    let granted = self.budget.try_withdraw();
                    if !granted {
                        self.retries_refused.fetch_add(1, Ordering::Relaxed);
                        tracing::debug!(%error, "retry budget exhausted; not retrying");
                    }
                    granted
                },
                on_retry,
                |attempt| {
                    let attempt_done = op(attempt);
                    async move {
                        let result = attempt_done.await;
                        let refused = matches!(&result, Err(e) if e.is_fail_fast());
                        if attempt == 0 && !refused {
                            self.budget.deposit();
                        }
                        result
                    }
                },
            )
            .await
    }
}

impl fmt::Debug for UpstreamGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UpstreamGuard")
            .field("breaker", &self.breaker)
            .field("budget", &self.budget)
            .field("max_in_flight", &self.max_in_flight)
            .finish()
    }
}

// === deadline ===

/// Run `work` within `limit`. Past it, `work` is dropped (any call in flight is abandoned) and the answer is a
/// `Transient` error with `sent: true`: some of the work may have been done.
pub async fn with_deadline<T>(
    limit: Duration,
    what: &str,
    work: impl Future<Output = Result<T, JcError>>,
) -> Result<T, JcError> {
    match tokio::time::timeout(limit, work).await {
        Ok(result) => result,
        Err(_) => Err(JcError::Transient {
            status: None,
            retry_after: None,
            message: format!("{what} did not finish within {} s", limit.as_secs_f64()),
            sent: true,
        }),
    }
}

#[cfg(test)]
#[path = "resilience_tests.rs"]
mod tests;
