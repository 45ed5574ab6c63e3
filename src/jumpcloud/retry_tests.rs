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
