//! Budget arithmetic, the breaker's state machine, the in-flight bound and the deadline, all under paused time
//! with zero jitter: upstream calls are closures that count themselves.

use std::cell::{Cell, RefCell};
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;

use rand::SeedableRng;
use rand::rngs::StdRng;
use tokio::time::{advance, sleep};

use super::*;
use crate::jumpcloud::retry::Backoff;

const S: Duration = Duration::from_secs(1);
const MS: Duration = Duration::from_millis(1);

fn gateway() -> JcError {
    JcError::Transient {
        status: Some(502),
        retry_after: None,
        message: "bad gateway".into(),
        sent: true,
    }
}

fn throttled() -> JcError {
    JcError::Transient {
        status: Some(429),
        retry_after: Some(S),
        message: "slow down".into(),
        sent: true,
    }
}

fn budget(ratio: f64, window_s: u64, min_per_sec: u32) -> RetryBudget {
    RetryBudget::new(BudgetConfig {
        ratio,
        window: S * window_s as u32,
        min_per_sec,
    })
    .unwrap()
}

fn breaker_config(threshold: u32) -> BreakerConfig {
    BreakerConfig {
        failure_threshold: threshold,
        cool_down: 15 * S,
        max_cool_down: 60 * S,
    }
}

fn guard(threshold: u32) -> UpstreamGuard {
    UpstreamGuard::new(breaker_config(threshold), BudgetConfig::default(), 8).unwrap()
}

/// A fake upstream: counts calls and answers what the test sets.
#[derive(Default)]
struct Fake {
    calls: Cell<u32>,
}

impl Fake {
    async fn answer(&self, result: Result<(), JcError>) -> Result<(), JcError> {
        self.calls.set(self.calls.get() + 1);
        result
    }
}

/// Poll once: the future has started and is waiting.
fn is_pending<F: Future>(f: std::pin::Pin<&mut F>) -> bool {
    let waker = std::task::Waker::noop();
    f.poll(&mut std::task::Context::from_waker(waker))
        .is_pending()
}

fn policy(max_attempts: u32) -> RetryPolicy {
    RetryPolicy {
        max_attempts,
        backoff: Backoff::new(250 * MS, 8 * S, 0.0).unwrap(),
        retry_after_cap: 30 * S,
    }
}

// === RetryBudget ===

#[test]
fn budget_parameters_are_validated() {
    let ok = BudgetConfig::default();
    assert!(RetryBudget::new(ok).is_ok());
    for ratio in [-0.1, 10.5, f64::NAN, f64::INFINITY] {
        assert!(matches!(
            RetryBudget::new(BudgetConfig { ratio, ..ok }),
            Err(InvalidBudget::Ratio(_))
        ));
    }
    for window in [Duration::ZERO, 999 * MS, 61 * S] {
        assert_eq!(
            RetryBudget::new(BudgetConfig { window, ..ok }).unwrap_err(),
            InvalidBudget::Window(window)
        );
    }
    // No ratio and no minimum: a deliberate "never retry".
    let never = budget(0.0, 10, 0);
    never.deposit();
    assert!(!never.try_withdraw());
}

#[tokio::test(start_paused = true)]
async fn retries_are_a_share_of_recent_requests() {
    let b = budget(0.5, 10, 0);
    assert!(!b.try_withdraw(), "no requests, no minimum: no retries");
    for _ in 0..10 {
        b.deposit();
    }
    assert_eq!(b.balance(), 5.0);
    let granted = (0..10).filter(|_| b.try_withdraw()).count();
    assert_eq!(granted, 5, "0.5 retries per request");
    assert_eq!(b.balance(), 0.0);
    // Once the requests leave the window, their retries go with them.
    advance(10 * S).await;
    assert_eq!(b.balance(), 0.0);
    assert!(!b.try_withdraw());
}

#[tokio::test(start_paused = true)]
async fn the_minimum_lets_a_quiet_client_retry_and_refills_with_time() {
    let b = budget(0.5, 10, 2);
    // 2 per second over a 10 s window: 20 retries with no traffic at all.
    let granted = (0..30).filter(|_| b.try_withdraw()).count();
    assert_eq!(granted, 20);
    advance(5 * S).await;
    assert!(!b.try_withdraw(), "the retries are still in the window");
    advance(5 * S).await;
    assert_eq!(b.balance(), 20.0, "they left it");
}

#[tokio::test(start_paused = true)]
async fn the_window_forgets_one_slot_at_a_time() {
    let b = budget(1.0, 10, 0);
    b.deposit(); // slot 0
    advance(4 * S).await;
    b.deposit(); // slot 4
    assert_eq!(b.balance(), 2.0);
    advance(6 * S).await; // slot 0 leaves
    assert_eq!(b.balance(), 1.0);
    advance(4 * S).await; // slot 4 leaves
    assert_eq!(b.balance(), 0.0);
    // A long silence clears everything without walking slot by slot.
    b.deposit();
    advance(3600 * S).await;
    assert_eq!(b.balance(), 0.0);
    b.deposit();
    assert_eq!(b.balance(), 1.0);
}

#[tokio::test(start_paused = true)]
async fn now_is_an_input() {
    let b = budget(1.0, 10, 0);
    let t0 = Instant::now();
    b.deposit_at(t0);
    assert!(b.try_withdraw_at(t0 + 9 * S));
    b.deposit_at(t0 + 9 * S);
    assert_eq!(
        b.balance_at(t0 + 10 * S),
        0.0,
        "slot 0 gone, slot 9 nets out"
    );
    assert_eq!(b.balance_at(t0 + 19 * S), 0.0);
}

// === Breaker ===

#[test]
fn breaker_parameters_are_validated() {
    let ok = BreakerConfig::default();
    assert!(Breaker::new(ok).is_ok());
    assert_eq!(
        Breaker::new(BreakerConfig {
            failure_threshold: 0,
            ..ok
        })
        .unwrap_err(),
        InvalidBreaker::ZeroThreshold
    );
    assert_eq!(
        Breaker::new(BreakerConfig {
            cool_down: Duration::ZERO,
            ..ok
        })
        .unwrap_err(),
        InvalidBreaker::ZeroCoolDown
    );
    assert!(matches!(
        Breaker::new(BreakerConfig {
            max_cool_down: S,
            ..ok
        }),
        Err(InvalidBreaker::MaxBelowCoolDown { .. })
    ));
}

#[test]
fn what_counts_against_jumpcloud() {
    let refused = JcError::Transient {
        status: None,
        retry_after: None,
        message: "connection refused".into(),
        sent: false,
    };
    let timed_out = JcError::Transient {
        status: None,
        retry_after: None,
        message: "timed out".into(),
        sent: true,
    };
    assert!(is_upstream_failure(&gateway()));
    assert!(is_upstream_failure(&refused));
    assert!(is_upstream_failure(&timed_out));
    assert!(!is_upstream_failure(&throttled()), "429 is an answer");
    assert!(!is_upstream_failure(&JcError::breaker_open(S)));
    assert!(!is_upstream_failure(&JcError::NotFound {
        message: String::new()
    }));
    assert!(!is_upstream_failure(&JcError::Unauthorized { status: 401 }));
}

#[tokio::test(start_paused = true)]
async fn the_breaker_opens_after_n_consecutive_failures_and_then_makes_no_calls() {
    let g = guard(10);
    let up = Fake::default();
    // Nine failures, a success, nine more: never ten in a row. A 429 in between is a success too.
    for i in 0..19 {
        let answer = match i {
            9 => Ok(()),
            14 => Err(throttled()),
            _ => Err(gateway()),
        };
        let _ = g.call(up.answer(answer)).await;
        assert_eq!(g.breaker().state(), BreakerState::Closed, "after call {i}");
    }
    // Four failures followed the 429; six more make ten in a row.
    for _ in 0..6 {
        let _ = g.call(up.answer(Err(gateway()))).await;
    }
    let opened_at = Instant::now();
    assert_eq!(
        g.breaker().state(),
        BreakerState::Open {
            until: opened_at + 15 * S
        }
    );
    assert_eq!(g.breaker().state_code(), 2);
    assert_eq!(up.calls.get(), 25);

    // While open: refused at once, nothing sent, told how long to wait.
    advance(4 * S + 300 * MS).await;
    for _ in 0..5 {
        let err = g.call(up.answer(Ok(()))).await.unwrap_err();
        assert!(err.is_fail_fast(), "{err:?}");
        assert_eq!(err.retry_after(), Some(11 * S), "10.7 s rounded up");
        assert!(matches!(err, JcError::Transient { sent: false, .. }));
    }
    assert_eq!(up.calls.get(), 25, "no upstream call while open");
    assert_eq!(g.failed_fast(), 5);
}

#[tokio::test(start_paused = true)]
async fn after_the_cool_down_one_probe_goes_while_others_fail_fast_and_success_closes() {
    let g = guard(1);
    let up = Fake::default();
    let _ = g.call(up.answer(Err(gateway()))).await;
    assert!(matches!(g.breaker().state(), BreakerState::Open { .. }));
    advance(15 * S).await;

    // The probe: in flight until `release` fires.
    let (release, released) = tokio::sync::oneshot::channel::<()>();
    let probe = g.call(async {
        let _ = released.await;
        up.answer(Ok(())).await
    });
    let mut probe = std::pin::pin!(probe);
    assert!(
        is_pending(probe.as_mut()),
        "the probe is waiting for its answer"
    );
    assert_eq!(g.breaker().state(), BreakerState::HalfOpen);
    assert_eq!(g.breaker().state_code(), 1);

    // A second caller meanwhile fails fast without a call.
    let err = g.call(up.answer(Ok(()))).await.unwrap_err();
    assert!(err.is_fail_fast());
    assert_eq!(err.retry_after(), Some(PROBE_WAIT));
    assert_eq!(up.calls.get(), 1, "only the first failure reached upstream");

    release.send(()).unwrap();
    probe.await.unwrap();
    assert_eq!(up.calls.get(), 2);
    assert_eq!(g.breaker().state(), BreakerState::Closed);
    assert_eq!(g.breaker().state_code(), 0);
    g.call(up.answer(Ok(()))).await.unwrap();
    assert_eq!(up.calls.get(), 3);
}

#[tokio::test(start_paused = true)]
async fn a_failed_probe_reopens_with_a_doubled_cool_down_up_to_the_cap() {
    let g = guard(1);
    let up = Fake::default();
    let _ = g.call(up.answer(Err(gateway()))).await;
    let mut cool_down = 15 * S;
    for next in [30, 60, 60] {
        // Up to the last moment of the cool-down: refused, no call.
        advance(cool_down - MS).await;
        assert!(g.call(up.answer(Ok(()))).await.unwrap_err().is_fail_fast());
        advance(MS).await;
        let err = g.call(up.answer(Err(gateway()))).await.unwrap_err();
        assert_eq!(err.status(), Some(502), "the probe went and failed");
        cool_down = next * S;
        assert_eq!(
            g.breaker().state(),
            BreakerState::Open {
                until: Instant::now() + cool_down
            }
        );
    }
    assert_eq!(up.calls.get(), 4, "the first failure and three probes");
    // A successful probe closes it and resets the cool-down to its start.
    advance(cool_down).await;
    g.call(up.answer(Ok(()))).await.unwrap();
    assert_eq!(g.breaker().state(), BreakerState::Closed);
    let _ = g.call(up.answer(Err(gateway()))).await;
    assert_eq!(
        g.breaker().state(),
        BreakerState::Open {
            until: Instant::now() + 15 * S
        }
    );
}

#[tokio::test(start_paused = true)]
async fn an_abandoned_probe_hands_the_probe_to_the_next_caller() {
    let g = guard(1);
    let up = Fake::default();
    let _ = g.call(up.answer(Err(gateway()))).await;
    advance(15 * S).await;
    {
        let probe = g.call(std::future::pending::<Result<(), JcError>>());
        let mut probe = std::pin::pin!(probe);
        assert!(is_pending(probe.as_mut()));
        assert_eq!(g.breaker().state(), BreakerState::HalfOpen);
        // Dropped here, as a deadline would drop it.
    }
    assert!(matches!(g.breaker().state(), BreakerState::Open { .. }));
    g.call(up.answer(Ok(()))).await.unwrap();
    assert_eq!(g.breaker().state(), BreakerState::Closed);
}

#[tokio::test(start_paused = true)]
async fn stragglers_do_not_move_an_open_breaker() {
    let g = guard(2);
    let up = Fake::default();
    let (release, released) = tokio::sync::oneshot::channel::<()>();
    // A call that started while closed and answers after the breaker opened.
    let slow = g.call(async {
        let _ = released.await;
        up.answer(Ok(())).await
    });
    let mut slow = std::pin::pin!(slow);
    assert!(is_pending(slow.as_mut()));
    let _ = g.call(up.answer(Err(gateway()))).await;
    let _ = g.call(up.answer(Err(gateway()))).await;
    let open = g.breaker().state();
    assert!(matches!(open, BreakerState::Open { .. }));
    release.send(()).unwrap();
    slow.await.unwrap();
    assert_eq!(g.breaker().state(), open, "only the probe closes it");
}

#[tokio::test(start_paused = true)]
async fn wait_until_callable_waits_out_the_cool_down_and_the_probe() {
    let g = Arc::new(guard(1));
    let start = Instant::now();
    g.breaker().wait_until_callable().await;
    assert_eq!(start.elapsed(), Duration::ZERO, "closed: at once");

    let _ = g.call(async { Err::<(), _>(gateway()) }).await;
    g.breaker().wait_until_callable().await;
    assert_eq!(start.elapsed(), 15 * S, "open: until the cool-down ends");

    // Half-open: the waiter resolves when the probe succeeds, not before.
    let (release, released) = tokio::sync::oneshot::channel::<Result<(), JcError>>();
    let prober = {
        let g = g.clone();
        tokio::spawn(async move { g.call(async { released.await.unwrap() }).await })
    };
    tokio::task::yield_now().await;
    assert_eq!(g.breaker().state(), BreakerState::HalfOpen);
    let waiter = {
        let g = g.clone();
        tokio::spawn(async move {
            g.breaker().wait_until_callable().await;
            Instant::now()
        })
    };
    advance(3 * S).await;
    assert!(!waiter.is_finished());
    release.send(Ok(())).unwrap();
    prober.await.unwrap().unwrap();
    assert_eq!(waiter.await.unwrap(), start + 18 * S);

    // A failed probe sends the waiter on to the end of the longer cool-down.
    let _ = g.call(async { Err::<(), _>(gateway()) }).await;
    advance(15 * S).await;
    let (release, released) = tokio::sync::oneshot::channel::<Result<(), JcError>>();
    let prober = {
        let g = g.clone();
        tokio::spawn(async move { g.call(async { released.await.unwrap() }).await })
    };
    tokio::task::yield_now().await;
    let waiter = {
        let g = g.clone();
        tokio::spawn(async move {
            g.breaker().wait_until_callable().await;
            Instant::now()
        })
    };
    tokio::task::yield_now().await;
    let failed_at = Instant::now();
    release.send(Err(gateway())).unwrap();
    assert!(prober.await.unwrap().is_err());
    assert_eq!(waiter.await.unwrap(), failed_at + 30 * S);
}

// === in-flight bound ===

#[tokio::test(start_paused = true)]
async fn no_more_than_max_in_flight_calls_run_at_once() {
    let g = Arc::new(UpstreamGuard::new(breaker_config(10), BudgetConfig::default(), 3).unwrap());
    let now = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let (g, now, peak) = (g.clone(), now.clone(), peak.clone());
            tokio::spawn(async move {
                g.call(async {
                    let n = now.fetch_add(1, Ordering::SeqCst) + 1;
                    peak.fetch_max(n, Ordering::SeqCst);
                    sleep(100 * MS).await;
                    now.fetch_sub(1, Ordering::SeqCst);
                    Ok::<_, JcError>(())
                })
                .await
            })
        })
        .collect();
    let start = Instant::now();
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    assert_eq!(peak.load(Ordering::SeqCst), 3);
    // 20 calls, 3 at a time, 100 ms each: 7 rounds.
    assert_eq!(start.elapsed(), 700 * MS);
    assert!(matches!(
        UpstreamGuard::new(BreakerConfig::default(), BudgetConfig::default(), 0),
        Err(InvalidGuard::MaxInFlight { got: 0, .. })
    ));
}

// === retries under the budget ===

#[tokio::test(start_paused = true)]
async fn a_read_rides_out_failures_then_succeeds() {
    let g = guard(10);
    let up = Fake::default();
    let mut rng = StdRng::seed_from_u64(0);
    let start = Instant::now();
    let result = g
        .retry(
            &policy(6),
            &mut rng,
            |_| {},
            |attempt| g.call(up.answer(if attempt < 3 { Err(gateway()) } else { Ok(()) })),
        )
        .await;
    result.unwrap();
    assert_eq!(up.calls.get(), 4);
    assert_eq!(
        start.elapsed(),
        1750 * MS,
        "250 + 500 + 1000 ms, zero jitter"
    );
    assert_eq!(g.budget().balance(), 50.0 + 0.5 - 3.0);
}

#[tokio::test(start_paused = true)]
async fn an_empty_budget_returns_the_last_error_and_counts_the_refusal() {
    let g = UpstreamGuard::new(
        breaker_config(u32::MAX),
        BudgetConfig {
            ratio: 1.0,
            window: 10 * S,
            min_per_sec: 0,
        },
        8,
    )
    .unwrap();
    let up = Fake::default();
    let mut rng = StdRng::seed_from_u64(0);
    let err = g
        .retry(
            &policy(6),
            &mut rng,
            |_| {},
            |_| g.call(up.answer(Err(gateway()))),
        )
        .await
        .unwrap_err();
    // One request deposits one retry's worth: two calls, then the budget says no.
    assert_eq!(err.status(), Some(502));
    assert_eq!(up.calls.get(), 2);
    assert_eq!(g.retries_refused(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_refused_read_deposits_nothing() {
    let g = guard(1);
    let up = Fake::default();
    let _ = g.call(up.answer(Err(gateway()))).await;
    let before = g.budget().balance();
    let mut rng = StdRng::seed_from_u64(0);
    let err = g
        .retry(&policy(6), &mut rng, |_| {}, |_| g.call(up.answer(Ok(()))))
        .await
        .unwrap_err();
    assert!(err.is_fail_fast());
    assert_eq!(g.budget().balance(), before);
    assert_eq!(up.calls.get(), 1);
}

/// During a full outage with the breaker out of the way, the budget alone bounds what retries add: 40 reads
/// that may each make 6 attempts (240 calls unbudgeted) make at most 40 · (1 + 0.5) + 5 · 10 calls.
#[tokio::test(start_paused = true)]
async fn in_an_outage_the_budget_caps_the_extra_calls() {
    let g = UpstreamGuard::new(breaker_config(u32::MAX), BudgetConfig::default(), 8).unwrap();
    let up = Fake::default();
    let reads = (0..40).map(|i| {
        let (g, up) = (&g, &up);
        async move {
            let mut rng = StdRng::seed_from_u64(i);
            g.retry(
                &policy(6),
                &mut rng,
                |_| {},
                |_| g.call(up.answer(Err(gateway()))),
            )
            .await
        }
    });
    let results = futures_util::future::join_all(reads).await;
    assert!(
        results
            .iter()
            .all(|r| r.as_ref().unwrap_err().status() == Some(502))
    );
    let calls = f64::from(up.calls.get());
    let bound = 40.0 * (1.0 + 0.5) + 5.0 * 10.0;
    assert!(calls <= bound, "{calls} calls > {bound}");
    assert!(
        calls >= 40.0 + 50.0,
        "the minimum and the ratio were spent: {calls}"
    );
    assert!(g.retries_refused() > 0);
}

/// The budget does not cost refreshes under random gateway errors. A refresh is 90 reads, each up to 6
/// attempts (250 ms doubling, zero jitter), 20 ms per call, one refresh a minute; 20% of calls answer 502.
///
/// Unbudgeted, a refresh fails only if some read fails six times: 1 − (1 − 0.2⁶)⁹⁰ ≈ 0.6%. A refresh needs
/// about 90 · 0.25 ≈ 23 retries against 50 + 0.5 · 90 = 95 allowed, so the budget should change nothing.
#[tokio::test(start_paused = true)]
async fn at_least_95_percent_of_refreshes_succeed_under_20_percent_502s() {
    const REFRESHES: u32 = 1000;
    const READS: u32 = 90;
    const FAIL_RATE: f64 = 0.2;
    let unbudgeted = (1.0 - FAIL_RATE.powi(6)).powi(READS as i32);
    assert!(unbudgeted > 0.99, "{unbudgeted}");

    let g = UpstreamGuard::new(BreakerConfig::default(), BudgetConfig::default(), 8).unwrap();
    let dice = RefCell::new(StdRng::seed_from_u64(2024));
    let mut jitter = StdRng::seed_from_u64(0);
    let calls = Cell::new(0u32);
    let (mut succeeded, mut retries) = (0u32, 0u32);
    for _ in 0..REFRESHES {
        let mut ok = true;
        for _ in 0..READS {
            let result = g
                .retry(
                    &policy(6),
                    &mut jitter,
                    |_| retries += 1,
                    |_| {
                        g.call(async {
                            sleep(20 * MS).await;
                            calls.set(calls.get() + 1);
                            if dice.borrow_mut().random::<f64>() < FAIL_RATE {
                                Err(gateway())
                            } else {
                                Ok(())
                            }
                        })
                    },
                )
                .await;
            if result.is_err() {
                ok = false;
                break;
            }
        }
        succeeded += u32::from(ok);
        sleep(60 * S).await;
    }
    let rate = f64::from(succeeded) / f64::from(REFRESHES);
    let calls = calls.get();
    tracing::info!(
        succeeded,
        calls,
        retries,
        refused = g.retries_refused(),
        "simulated refreshes"
    );
    assert!(rate >= 0.95, "{succeeded}/{REFRESHES} refreshes succeeded");
    assert_eq!(g.retries_refused(), 0, "the budget never had to say no");
    assert_eq!(g.breaker().state(), BreakerState::Closed);
    assert_eq!(g.failed_fast(), 0);
    // The failures really were there: about a quarter of a retry per read.
    let per_read = f64::from(retries) / f64::from(calls - retries);
    assert!((0.2..0.3).contains(&per_read), "{per_read}");
}

// === deadline ===

#[tokio::test(start_paused = true)]
async fn a_deadline_bounds_the_whole_unit_of_work() {
    let start = Instant::now();
    let done = with_deadline(120 * S, "the refresh", async {
        sleep(119 * S).await;
        Ok::<_, JcError>(7)
    })
    .await;
    assert_eq!(done.unwrap(), 7);
    let late = with_deadline(120 * S, "the refresh", async {
        sleep(10 * 60 * S).await;
        Ok::<_, JcError>(7)
    })
    .await
    .unwrap_err();
    assert_eq!(start.elapsed(), 239 * S);
    assert!(late.is_transient() && !late.is_fail_fast(), "{late:?}");
    assert!(
        late.to_string()
            .contains("the refresh did not finish within 120 s"),
        "{late}"
    );
    // An error inside the deadline comes back as it was.
    let inner = with_deadline(S, "x", async { Err::<(), _>(throttled()) })
        .await
        .unwrap_err();
    assert_eq!(inner.status(), Some(429));
}
