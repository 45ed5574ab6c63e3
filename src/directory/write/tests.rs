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
