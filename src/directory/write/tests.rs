use std::collections::BTreeSet;
use std::time::Duration;

use super::*;
use crate::jumpcloud::JcError;

#[test]
fn upstream_failures_map_to_client_answers() {
    let t = |status| JcError::Transient {
        status,
        retry_after: None,
        message: String::new(),
        sent: true,
    };
    let e = upstream_error(&t(Some(502)), "the create");
    assert_eq!(e.error.status, 503);
    assert!(e.retry_after.is_some());
    // An open breaker: 503 with the rest of its cool-down.
    let e = upstream_error(&JcError::breaker_open(Duration::from_secs(12)), "x");
    assert_eq!(
        (e.error.status, e.retry_after),
        (503, Some(Duration::from_secs(12)))
    );
    let e = upstream_error(
        &JcError::Transient {
            status: Some(429),
            retry_after: Some(Duration::from_secs(7)),
            message: String::new(),
            sent: true,
        },
        "x",
    );
    assert_eq!(
        (e.error.status, e.retry_after),
        (429, Some(Duration::from_secs(7)))
    );
    let e = upstream_error(
        &JcError::Rejected {
            status: 400,
            message: "Password validation fail".into(),
            field_violations: vec![("password".into(), "minLength".into())],
        },
        "x",
    );
    assert_eq!(e.error.status, 400);
    assert!(e.error.detail.contains("minLength"));
    let e = upstream_error(&JcError::Unauthorized { status: 401 }, "x");
    assert_eq!(e.error.status, 503);
}

#[test]
fn stripes_spread_and_ignore_case() {
    assert_eq!(stripe_of("Jane@Example.com"), stripe_of("jane@example.com"));
    let distinct: BTreeSet<usize> = (0..200).map(|i| stripe_of(&format!("user{i}"))).collect();
    assert!(distinct.len() > 40);
}

// === the retry path of creates ===

mod creates {
    use std::cell::{Cell, RefCell};
    use std::collections::VecDeque;

    use tokio::time::Instant;

    use super::super::upstream::{
        CreateFailed, Lookup, WriteRetries, create_resolved, may_have_landed,
    };
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn sent(status: u16, retry_after: Option<Duration>) -> JcError {
        JcError::Transient {
            status: Some(status),
            retry_after,
            message: String::new(),
            sent: true,
        }
    }

    fn unsent() -> JcError {
        JcError::Transient {
            status: None,
            retry_after: None,
            message: "connection refused".into(),
            sent: false,
        }
    }

    /// A create scripted answer by answer, and the lookups after those that may have landed.
    struct Script {
        answers: RefCell<VecDeque<Result<u32, JcError>>>,
        lookups: RefCell<VecDeque<Lookup<u32>>>,
        sends: Cell<u32>,
        looks: Cell<u32>,
    }

    impl Script {
        fn new(answers: Vec<Result<u32, JcError>>, lookups: Vec<Lookup<u32>>) -> Self {
            Script {
                answers: RefCell::new(answers.into()),
                lookups: RefCell::new(lookups.into()),
                sends: Cell::new(0),
                looks: Cell::new(0),
            }
        }

        async fn run(&self) -> Result<u32, CreateFailed> {
            create_resolved(
                &WriteRetries::default().create_user,
                "the create",
                || {
                    self.sends.set(self.sends.get() + 1);
                    let answer = self.answers.borrow_mut().pop_front();
                    async move { answer.expect("a scripted answer") }
                },
                || {
                    self.looks.set(self.looks.get() + 1);
                    let found = self.lookups.borrow_mut().pop_front();
                    async move { found.expect("a scripted lookup") }
                },
            )
            .await
        }

        fn calls(&self) -> (u32, u32) {
            (self.sends.get(), self.looks.get())
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_create_that_may_have_landed_is_looked_up_before_it_is_sent_again() {
        let start = Instant::now();
        let s = Script::new(vec![Err(sent(502, None)), Ok(7)], vec![Lookup::Absent]);
        assert_eq!(s.run().await.unwrap(), 7);
        assert_eq!(s.calls(), (2, 1));
        // The first backoff, equal jitter: 150 to 300 ms.
        assert!(
            (150 * MS..=300 * MS).contains(&start.elapsed()),
            "{:?}",
            start.elapsed()
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_create_the_lookup_finds_is_not_sent_again() {
        let s = Script::new(vec![Err(sent(504, None))], vec![Lookup::Landed(5)]);
        assert_eq!(s.run().await.unwrap(), 5);
        assert_eq!(s.calls(), (1, 1));

        let taken = WriteError::from(ScimError::uniqueness("held by someone else"));
        let s = Script::new(
            vec![Err(sent(502, None))],
            vec![Lookup::Taken(taken.clone())],
        );
        assert!(matches!(s.run().await, Err(CreateFailed::Answered(e)) if e == taken));
        assert_eq!(s.calls(), (1, 1));

        // The lookup failing too: nobody can tell, and nothing is sent again.
        let s = Script::new(vec![Err(sent(502, None))], vec![Lookup::Unknown]);
        assert!(matches!(
            s.run().await,
            Err(CreateFailed::Unknown(JcError::Transient {
                status: Some(502),
                ..
            }))
        ));
        assert_eq!(s.calls(), (1, 1));
    }

    #[tokio::test(start_paused = true)]
    async fn a_throttled_refused_or_rejected_create_ends_at_once() {
        for error in [
            sent(429, Some(Duration::from_secs(2))),
            JcError::breaker_open(Duration::from_secs(20)),
            JcError::Rejected {
                status: 400,
                message: "Username already exists".into(),
                field_violations: vec![],
            },
        ] {
            let start = Instant::now();
            let what = error.to_string();
            let s = Script::new(vec![Err(error)], vec![]);
            assert!(
                matches!(s.run().await, Err(CreateFailed::Upstream(_))),
                "{what}"
            );
            assert_eq!(s.calls(), (1, 0), "{what}");
            assert_eq!(start.elapsed(), Duration::ZERO, "{what}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_create_that_never_reached_jumpcloud_is_sent_again_without_a_lookup() {
        let start = Instant::now();
        let s = Script::new(vec![Err(unsent()), Err(unsent()), Ok(1)], vec![]);
        assert_eq!(s.run().await.unwrap(), 1);
        assert_eq!(s.calls(), (3, 0));
        // 150..300 ms, then 300..600 ms: jittered, never the bare doubling.
        assert!(
            (450 * MS..=900 * MS).contains(&start.elapsed()),
            "{:?}",
            start.elapsed()
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_create_is_sent_at_most_three_times_and_retry_after_is_capped() {
        let start = Instant::now();
        let s = Script::new(
            vec![
                Err(sent(503, Some(Duration::from_secs(3600)))),
                Err(sent(502, None)),
                Err(sent(502, None)),
            ],
            vec![Lookup::Absent, Lookup::Absent, Lookup::Absent],
        );
        assert!(matches!(
            s.run().await,
            Err(CreateFailed::Upstream(JcError::Transient {
                status: Some(502),
                ..
            }))
        ));
        assert_eq!(s.calls(), (3, 3));
        // The hour JumpCloud asked for is cut to 5 s; then 300..600 ms.
        let waited = start.elapsed();
        assert!(
            (Duration::from_secs(5) + 300 * MS..=Duration::from_secs(5) + 600 * MS)
                .contains(&waited),
            "{waited:?}"
        );
    }

    #[test]
    fn every_write_policy_is_jittered_and_a_create_keeps_time_for_its_lookups() {
        let r = WriteRetries::default();
        assert_eq!(
            (
                r.create_user.max_attempts,
                r.create_group.max_attempts,
                r.repeatable.max_attempts
            ),
            (3, 1, 3)
        );
        for p in [&r.create_user, &r.repeatable] {
            assert!(p.backoff.jitter() > 0.0, "{p:?}");
        }
        // A user create waits at most 2 × 5 s between its attempts, so a 45 s write deadline leaves its
        // lookups the time they need; an update's longer waits are cut by the deadline itself.
        let worst: Duration = (1..r.create_user.max_attempts)
            .map(|_| {
                r.create_user
                    .backoff
                    .max()
                    .max(r.create_user.retry_after_cap)
            })
            .sum();
        assert_eq!(worst, Duration::from_secs(10));
    }

    #[test]
    fn only_a_sent_unrefused_failure_may_have_landed() {
        let timed_out = JcError::Transient {
            status: None,
            retry_after: None,
            message: "timed out".into(),
            sent: true,
        };
        assert!(may_have_landed(&timed_out));
        assert!(may_have_landed(&sent(502, None)));
        assert!(!may_have_landed(&sent(429, None)));
        assert!(!may_have_landed(&unsent()));
        assert!(!may_have_landed(&JcError::breaker_open(
            Duration::from_secs(1)
        )));
        assert!(!may_have_landed(&JcError::Conflict {
            message: "Already Exists".into()
        }));
    }
}
