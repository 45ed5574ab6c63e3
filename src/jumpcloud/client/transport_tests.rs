//! One request through the guard: read retries and their budget, the breaker and the in-flight bound, writes sent
//! once, ids placed in paths, redirects refused, and answers that break off or carry no id.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;

use crate::jumpcloud::client::test_support::{
    KEY, MS, Upstream, empty, gateway, group, protocol_message, reply, user, v1_users, with_header,
};
use crate::jumpcloud::{
    Backoff, BreakerConfig, BreakerState, BudgetConfig, ClientStats, JcClient, JcClientConfig,
    JcError, JcGroupWrite, JcUserWrite, RetryPolicy,
};

#[tokio::test]
async fn reads_are_retried_through_gateway_errors_and_rate_limits() {
    let up = Upstream::start(|_, i| match i {
        0 => gateway(),
        1 => with_header(
            reply(429, json!({"message": "slow down"})),
            "retry-after",
            1,
        ),
        _ => reply(200, group(7)),
    })
    .await;
    let mut client = up.client();
    let observed: Arc<Mutex<Vec<(&'static str, u16)>>> = Arc::default();
    let sink = observed.clone();
    client.set_observer(Arc::new(move |purpose, route, status, _| {
        assert_eq!(purpose, crate::jumpcloud::Purpose::Fetch);
        sink.lock().unwrap().push((route, status));
    }));
    let client = client.for_purpose(crate::jumpcloud::Purpose::Fetch);
    let started = tokio::time::Instant::now();
    let g = client.get_group("g00007").await.unwrap().unwrap();
    assert_eq!(g.name, "Group 7");
    assert_eq!(
        client.stats(),
        ClientStats {
            calls: 3,
            retries: 2,
            ..ClientStats::default()
        }
    );
    // Retry-After: 1 s was honoured up to the 10 ms cap, not ignored and not taken whole.
    let waited = started.elapsed();
    assert!(
        waited >= 10 * MS && waited < Duration::from_secs(1),
        "{waited:?}"
    );
    let route = "GET /api/v2/usergroups/{id}";
    assert_eq!(
        *observed.lock().unwrap(),
        [(route, 502), (route, 429), (route, 200)]
    );
}

#[tokio::test]
async fn reads_give_up_after_the_last_attempt_and_permanent_errors_at_once() {
    let up = Upstream::start(|_, _| empty(503)).await;
    let client = up.client();
    let err = client.list_groups().await.unwrap_err();
    assert!(err.is_transient() && err.status() == Some(503), "{err:?}");
    assert_eq!(
        client.stats(),
        ClientStats {
            calls: 3,
            retries: 2,
            ..ClientStats::default()
        }
    );

    let up = Upstream::start(|_, _| reply(401, json!({"message": "Unauthorized"}))).await;
    let client = up.client();
    let err = client.list_users().await.unwrap_err();
    assert!(
        matches!(err, JcError::Unauthorized { status: 401 }),
        "{err:?}"
    );
    assert_eq!(client.stats().calls, 1);
}

#[tokio::test]
async fn missing_objects_read_as_none_and_ids_are_escaped() {
    let up = Upstream::start(|_, _| reply(404, json!({"message": "Not Found"}))).await;
    let client = up.client();
    assert_eq!(
        client.get_user("5f1a00000000000000000001").await.unwrap(),
        None
    );
    assert_eq!(client.get_group("nope").await.unwrap(), None);
    // `..` would normalise into the list route; it names nothing, so no call is made.
    assert_eq!(client.get_user("..").await.unwrap(), None);
    assert_eq!(client.get_user("").await.unwrap(), None);
    assert_eq!(client.get_user("a/b?c").await.unwrap(), None);
    let paths: Vec<_> = up.seen().into_iter().map(|s| s.path).collect();
    assert_eq!(
        paths,
        [
            "/api/systemusers/5f1a00000000000000000001",
            "/api/v2/usergroups/nope",
            "/api/systemusers/a%2Fb%3Fc"
        ]
    );
}

#[tokio::test]
async fn answers_without_ids_are_protocol_errors() {
    let up = Upstream::start(|s, _| match s.path.as_str() {
        "/api/systemusers" if s.method == "GET" => reply(
            200,
            json!({"totalCount": 2, "results": [user(1), {"username": "ghost"}]}),
        ),
        "/api/v2/usergroups/g1" => reply(200, json!([])),
        _ => reply(200, json!({"message": "ok"})),
    })
    .await;
    let client = up.client();
    let msg = protocol_message(client.list_users().await);
    assert!(msg.contains("has no id"), "{msg}");
    let msg = protocol_message(client.get_group("g1").await);
    assert!(msg.contains("no id"), "{msg}");
    let msg = protocol_message(client.create_user(&JcUserWrite::default()).await);
    assert!(msg.contains("no id"), "{msg}");
}

#[tokio::test]
async fn writes_are_sent_once_with_their_exact_bodies() {
    let up = Upstream::start(|s, _| match (s.method.as_str(), s.path.as_str()) {
        ("POST", "/api/systemusers") => gateway(),
        ("PUT", "/api/systemusers/u1") => reply(200, user(1)),
        ("POST", "/api/v2/usergroups") => reply(201, group(1)),
        ("PUT", "/api/v2/usergroups/g1") => reply(200, group(1)),
        _ => empty(500),
    })
    .await;
    let client = up.client();
    let create = JcUserWrite {
        username: Some("jane".into()),
        email: Some("jane@example.com".into()),
        password: Some("pw".into()),
        ..Default::default()
    };
    let err = client.create_user(&create).await.unwrap_err();
    assert!(
        matches!(
            err,
            JcError::Transient {
                status: Some(502),
                sent: true,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(
        client.stats(),
        ClientStats {
            calls: 1,
            retries: 0,
            ..ClientStats::default()
        }
    );

    let update = JcUserWrite {
        manager: Some(None),
        ..Default::default()
    };
    let updated = client.update_user("u1", &update).await.unwrap();
    assert_eq!(updated.username, "user1");
    let created = client
        .create_group(&JcGroupWrite {
            name: "Eng".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(created.id, "g00001");
    client
        .put_group(
            "g1",
            &JcGroupWrite {
                name: "Eng".into(),
                description: Some("d".into()),
                attributes: None,
            },
        )
        .await
        .unwrap();

    let seen = up.seen();
    assert_eq!(seen.len(), 4);
    assert_eq!(seen[0].q("fullValidationDetails"), Some("password"));
    assert_eq!(
        seen[0].json(),
        json!({"username": "jane", "email": "jane@example.com", "password": "pw"})
    );
    assert_eq!(seen[0].header("content-type"), Some("application/json"));
    assert_eq!(seen[1].q("fullValidationDetails"), Some("password"));
    assert_eq!(seen[1].json(), json!({"manager": null}));
    assert_eq!(seen[2].json(), json!({"name": "Eng"}));
    assert_eq!(seen[3].json(), json!({"name": "Eng", "description": "d"}));
}

#[tokio::test]
async fn redirects_are_not_followed() {
    let elsewhere = Upstream::start(|_, _| reply(200, json!([]))).await;
    let target = format!("{}/steal", elsewhere.url);
    let up = Upstream::start(move |_, _| with_header(empty(302), "location", &target)).await;
    protocol_message(up.client().list_groups().await);
    assert!(
        elsewhere.seen().is_empty(),
        "the key must not travel to another host"
    );
}

#[tokio::test]
async fn a_base_url_path_prefix_is_kept() {
    let up = Upstream::start(|s, _| v1_users(s, 1)).await;
    let client = JcClient::new(JcClientConfig {
        base_url: format!("{}/prefix/", up.url),
        ..up.config()
    })
    .unwrap();
    client.list_users().await.unwrap();
    assert_eq!(up.seen()[0].path, "/prefix/api/systemusers");
}

#[tokio::test]
async fn a_success_whose_body_breaks_off_is_transient_and_retried() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        loop {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 4096];
            let _ = socket.read(&mut buf).await;
            // Promise 100 bytes, send 1, hang up.
            let _ = socket
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n{")
                .await;
        }
    });
    let client = JcClient::new(JcClientConfig {
        retry: RetryPolicy {
            max_attempts: 2,
            backoff: Backoff::new(MS, MS, 0.0).unwrap(),
            retry_after_cap: MS,
        },
        ..JcClientConfig::new(url, KEY)
    })
    .unwrap();
    let err = client.get_group("g1").await.unwrap_err();
    assert!(
        matches!(
            err,
            JcError::Transient {
                status: Some(200),
                sent: true,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(
        client.stats(),
        ClientStats {
            calls: 2,
            retries: 1,
            ..ClientStats::default()
        }
    );
}

#[tokio::test]
async fn an_open_breaker_fails_reads_and_writes_fast_without_a_call() {
    let up = Upstream::start(|s, _| match s.method.as_str() {
        "GET" if s.path == "/api/v2/usergroups/g00001" => reply(200, group(1)),
        _ => gateway(),
    })
    .await;
    let client = JcClient::new(JcClientConfig {
        breaker: BreakerConfig {
            failure_threshold: 3,
            cool_down: 50 * MS,
            max_cool_down: 50 * MS,
        },
        ..up.config()
    })
    .unwrap();
    // Three attempts of one read: three failures in a row open the breaker.
    let err = client.list_groups().await.unwrap_err();
    assert_eq!(err.status(), Some(502));
    assert!(matches!(
        client.breaker().state(),
        BreakerState::Open { .. }
    ));
    assert_eq!(client.breaker().state_code(), 2);
    assert_eq!(up.seen().len(), 3);

    let read = client.get_group("g00001").await.unwrap_err();
    let write = client
        .create_user(&JcUserWrite::default())
        .await
        .unwrap_err();
    for err in [read, write] {
        assert!(
            matches!(
                &err,
                JcError::Transient {
                    status: None,
                    retry_after: Some(_),
                    sent: false,
                    message,
                } if message == "JumpCloud circuit breaker is open; failing fast"
            ),
            "{err:?}"
        );
        assert!(err.is_fail_fast());
    }
    assert_eq!(up.seen().len(), 3, "nothing reached JumpCloud");
    let stats = client.stats();
    assert_eq!((stats.calls, stats.failed_fast), (3, 2));
    assert_eq!(stats.retries, 2, "the refused read was not retried");

    // After the cool-down the next call is the probe; its success closes the breaker.
    client.breaker().wait_until_callable().await;
    let g = client.get_group("g00001").await.unwrap().unwrap();
    assert_eq!(g.id, "g00001");
    assert_eq!(client.breaker().state(), BreakerState::Closed);
    assert_eq!(up.seen().len(), 4);
}

#[tokio::test]
async fn calls_in_flight_are_bounded_across_clones() {
    use std::sync::atomic::AtomicUsize;
    let in_flight = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let (now, top) = (in_flight.clone(), peak.clone());
    let app = axum::Router::new().fallback(move || {
        let (now, top) = (now.clone(), top.clone());
        async move {
            let n = now.fetch_add(1, Ordering::SeqCst) + 1;
            top.fetch_max(n, Ordering::SeqCst);
            tokio::time::sleep(30 * MS).await;
            now.fetch_sub(1, Ordering::SeqCst);
            axum::Json(group(1))
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let client = JcClient::new(JcClientConfig {
        max_in_flight: 3,
        ..JcClientConfig::new(url, KEY)
    })
    .unwrap();
    let reads = (0..12).map(|_| {
        let client = client.clone();
        async move { client.get_group("g00001").await }
    });
    for r in futures_util::future::join_all(reads).await {
        assert!(r.unwrap().is_some());
    }
    assert_eq!(peak.load(Ordering::SeqCst), 3);
    assert_eq!(client.stats().calls, 12);

    let bad = JcClient::new(JcClientConfig {
        max_in_flight: 0,
        ..JcClientConfig::new("http://127.0.0.1:1", KEY)
    });
    assert!(matches!(bad, Err(JcError::Protocol { .. })));
}

#[tokio::test]
async fn read_retries_stop_when_the_budget_is_spent() {
    let up = Upstream::start(|_, _| gateway()).await;
    let client = JcClient::new(JcClientConfig {
        retry_budget: BudgetConfig {
            ratio: 1.0,
            window: Duration::from_secs(10),
            min_per_sec: 0,
        },
        breaker: BreakerConfig {
            failure_threshold: u32::MAX,
            ..BreakerConfig::default()
        },
        ..up.config()
    })
    .unwrap();
    // Three attempts allowed, but one read buys one retry.
    assert_eq!(
        client.get_group("g1").await.unwrap_err().status(),
        Some(502)
    );
    let stats = client.stats();
    assert_eq!(
        (stats.calls, stats.retries, stats.retries_refused),
        (2, 1, 1)
    );
}
