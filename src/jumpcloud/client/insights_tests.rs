//! The feed read: where it is sent, how it pages by `X-Search_after`, its bound, and what its failures mean.

use serde_json::{Value, json};

use crate::jumpcloud::client::test_support::{KEY, Upstream, gateway, reply, with_header};
use crate::jumpcloud::{FeedError, JcClient, JcClientConfig, JcError, insights_url_for};

/// `n` events, one a millisecond, answered `limit` at a time after the request's `search_after`.
fn feed(body: &Value, n: usize) -> crate::jumpcloud::client::test_support::Canned {
    let limit = body["limit"].as_u64().unwrap() as usize;
    let after = body
        .get("search_after")
        .and_then(|a| a[0].as_u64())
        .map_or(0, |ms| ms as usize + 1);
    let rows: Vec<Value> = (after..n.min(after + limit))
        .map(|i| {
            json!({"id": format!("e{i:04}"), "event_type": "user_update",
                   "timestamp": format!("2024-05-01T10:00:00.{i:03}Z"),
                   "resource": {"type": "systemuser", "id": format!("u{i}")}})
        })
        .collect();
    let last = rows.len().checked_sub(1).map(|l| after + l);
    let cursor = last.map_or(json!([]), |l| json!([l, format!("e{l:04}")]));
    let r = with_header(
        reply(200, Value::Array(rows.clone())),
        "x-result-count",
        rows.len(),
    );
    let r = with_header(r, "x-limit", limit);
    let r = with_header(r, "x-sort", "ASC");
    with_header(r, "x-search_after", cursor)
}

fn client_at(up: &Upstream) -> JcClient {
    JcClient::new(JcClientConfig {
        insights_url: Some(format!("{}/insights/directory/v1", up.url)),
        ..up.config()
    })
    .unwrap()
}

fn start() -> jiff::Timestamp {
    "2024-05-01T09:59:00.5Z".parse().unwrap()
}

#[tokio::test]
async fn pages_follow_the_search_after_header_until_a_short_page() {
    let up = Upstream::start(|s, _| feed(&s.json(), 2500)).await;
    let batch = client_at(&up)
        .directory_events(start(), 10_000)
        .await
        .unwrap();
    assert_eq!(batch.events.len(), 2500);
    assert!(!batch.more);
    assert_eq!(batch.events[1234].id, "e1234");
    let seen = up.seen();
    assert_eq!(seen.len(), 3);
    let first = &seen[0];
    assert_eq!(
        (first.method.as_str(), first.path.as_str()),
        ("POST", "/insights/directory/v1/events")
    );
    assert_eq!(first.header("x-api-key"), Some(KEY));
    assert_eq!(first.header("x-org-id"), Some("org-1"));
    assert_eq!(
        first.json(),
        json!({"service": ["directory"], "start_time": "2024-05-01T09:59:00.500Z",
               "limit": 1000, "sort": "ASC"})
    );
    assert_eq!(seen[1].json()["search_after"], json!([999, "e0999"]));
    assert_eq!(seen[2].json()["search_after"], json!([1999, "e1999"]));
    assert_eq!(seen[2].json()["start_time"], first.json()["start_time"]);
}

#[tokio::test]
async fn a_read_stops_at_its_bound_and_says_more_follow() {
    let up = Upstream::start(|s, _| feed(&s.json(), 5000)).await;
    let batch = client_at(&up)
        .directory_events(start(), 1500)
        .await
        .unwrap();
    assert_eq!(batch.events.len(), 1500);
    assert!(batch.more);
    let seen = up.seen();
    assert_eq!(seen.len(), 2);
    assert_eq!(
        seen[1].json()["limit"],
        500,
        "the last page asks for what is left"
    );
    // Exactly a page's worth: full, so the feed may hold more.
    let up = Upstream::start(|s, _| feed(&s.json(), 1000)).await;
    let batch = client_at(&up)
        .directory_events(start(), 1000)
        .await
        .unwrap();
    assert_eq!((batch.events.len(), batch.more), (1000, true));
}

#[tokio::test]
async fn a_403_is_a_plan_without_the_feed_and_502s_are_retried() {
    let up = Upstream::start(|_, _| {
        reply(
            403,
            json!({"code": 403, "message": "Directory Insights is not available"}),
        )
    })
    .await;
    assert!(matches!(
        client_at(&up).directory_events(start(), 10).await,
        Err(FeedError::NotInPlan)
    ));
    assert_eq!(up.seen().len(), 1, "a 403 is not retried");
    let up = Upstream::start(|_, _| reply(401, json!({"message": "Unauthorized"}))).await;
    assert!(matches!(
        client_at(&up).directory_events(start(), 10).await,
        Err(FeedError::Upstream(JcError::Unauthorized { status: 401 }))
    ));
    let up = Upstream::start(|s, i| if i < 2 { gateway() } else { feed(&s.json(), 3) }).await;
    let batch = client_at(&up).directory_events(start(), 10).await.unwrap();
    assert_eq!(batch.events.len(), 3);
    assert_eq!(up.seen().len(), 3);
}

#[tokio::test]
async fn answers_the_loop_cannot_trust_are_protocol_errors() {
    // Sorted the other way.
    let up = Upstream::start(|_, _| {
        let rows = json!([{"id": "e1", "timestamp": "2024-05-01T10:00:00Z"}]);
        let r = with_header(reply(200, rows), "x-result-count", 1);
        let r = with_header(r, "x-limit", 10);
        let r = with_header(r, "x-sort", "DESC");
        with_header(r, "x-search_after", json!([1, "e1"]))
    })
    .await;
    let e = client_at(&up).directory_events(start(), 10).await;
    assert!(
        matches!(e, Err(FeedError::Upstream(JcError::Protocol { .. }))),
        "{e:?}"
    );
    // A full page whose cursor does not move would loop forever.
    let up = Upstream::start(|_, _| {
        let rows: Vec<Value> = (0..2).map(|i| json!({"id": format!("e{i}")})).collect();
        let r = with_header(reply(200, Value::Array(rows)), "x-result-count", 2);
        let r = with_header(r, "x-limit", 2);
        with_header(r, "x-search_after", json!([1, "e1"]))
    })
    .await;
    let e = client_at(&up).directory_events(start(), 10).await;
    assert!(
        matches!(e, Err(FeedError::Upstream(JcError::Protocol { .. }))),
        "{e:?}"
    );
    assert_eq!(up.seen().len(), 2);
    // Not an array.
    let up = Upstream::start(|_, _| reply(200, json!({"events": []}))).await;
    let e = client_at(&up).directory_events(start(), 10).await;
    assert!(
        matches!(e, Err(FeedError::Upstream(JcError::Protocol { .. }))),
        "{e:?}"
    );
}

#[test]
fn the_feed_host_is_derived_from_the_console_url() {
    for (console, feed) in [
        (
            "https://console.jumpcloud.com",
            "https://api.jumpcloud.com/insights/directory/v1",
        ),
        (
            "https://console.eu.jumpcloud.com/",
            "https://api.eu.jumpcloud.com/insights/directory/v1",
        ),
        (
            "https://CONSOLE.in.jumpcloud.com",
            "https://api.in.jumpcloud.com/insights/directory/v1",
        ),
        (
            "http://127.0.0.1:8081",
            "http://127.0.0.1:8081/insights/directory/v1",
        ),
        (
            "https://console.jumpcloud.com.evil.example",
            "https://console.jumpcloud.com.evil.example/insights/directory/v1",
        ),
        (
            "https://proxy.example/jc/",
            "https://proxy.example/jc/insights/directory/v1",
        ),
    ] {
        assert_eq!(insights_url_for(console), feed, "{console}");
    }
}
