//! `/metrics` end to end: every family from start-up, HTTP requests counted by route template (401s and
//! 404s included), upstream requests by JumpCloud route template, refreshes and retries.

use serde_json::json;

use crate::support::{Harness, small_emulator};

const FAMILIES: &[&str] = &[
    "jcscim_snapshot_version",
    "jcscim_snapshot_age_seconds",
    "jcscim_refresh_total",
    "jcscim_refresh_duration_seconds",
    "jcscim_refresh_held_back",
    "jcscim_upstream_requests_total",
    "jcscim_upstream_retries_total",
    "jcscim_breaker_state",
    "jcscim_http_requests_total",
    "jcscim_http_request_duration_seconds",
    "jcscim_pinned_walks",
    "jcscim_insights_events_total",
    "jcscim_insights_lag_seconds",
];

async fn scrape(h: &Harness) -> String {
    let r = h
        .http
        .get(format!("{}/metrics", h.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let ct = r.headers()["content-type"].to_str().unwrap().to_string();
    assert!(
        ct.starts_with("application/openmetrics-text; version=1.0.0"),
        "{ct}"
    );
    r.text().await.unwrap()
}

/// The value of the sample whose name and labels are exactly `series`.
fn value(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| {
        l.strip_prefix(series)
            .and_then(|rest| rest.strip_prefix(' '))
            .and_then(|v| v.parse().ok())
    })
}

#[tokio::test]
async fn metrics_count_requests_by_template_and_report_refreshes() {
    let h = Harness::start(small_emulator(20, 3), |_| {}).await;

    // Every family is there from the first scrape, whatever has happened yet.
    let first = scrape(&h).await;
    for name in FAMILIES {
        // OpenMetrics names a counter's family without the `_total` its samples carry.
        let family = name.strip_suffix("_total").unwrap_or(name);
        assert!(
            first.contains(&format!("# TYPE {family} ")),
            "{name} missing:\n{first}"
        );
        assert!(
            first.contains(&format!("# HELP {family} ")),
            "{name} missing:\n{first}"
        );
    }

    h.wait_ready().await;
    let list: serde_json::Value = h.get("/Users").send().await.unwrap().json().await.unwrap();
    let id = list["Resources"][0]["id"].as_str().unwrap().to_string();
    assert_eq!(
        h.get(&format!("/Users/{id}"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    for missing in ["no-such-user", "another-missing-one"] {
        let r = h.get(&format!("/Users/{missing}")).send().await.unwrap();
        assert_eq!(r.status(), 404);
    }
    let r = h
        .http
        .get(h.scim(&format!("/Users/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(h.get("/NoSuchEndpoint").send().await.unwrap().status(), 404);
    assert_eq!(
        h.http
            .get(format!("{}/no/such/path", h.base))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );

    // One refresh that needs a retry: the first user listing answers 503.
    h.faults(json!({"fail_next": {"count": 1, "status": 503, "route": "GET /api/systemusers"}}))
        .await;
    let last = h.refresh_now().await;
    assert_eq!(last["ok"], true, "{last}");

    let text = scrape(&h).await;
    let http = |route: &str, status: u16| {
        value(
            &text,
            &format!("jcscim_http_requests_total{{route=\"{route}\",status=\"{status}\"}}"),
        )
    };
    assert_eq!(http("GET /scim/v2/Users/{id}", 200), Some(1.0), "{text}");
    assert_eq!(http("GET /scim/v2/Users/{id}", 404), Some(2.0), "{text}");
    assert_eq!(http("GET /scim/v2/Users/{id}", 401), Some(1.0), "{text}");
    assert_eq!(http("GET /scim/v2/Users", 200), Some(1.0), "{text}");
    assert_eq!(http("GET unmatched", 404), Some(2.0), "{text}");
    assert!(http("POST /admin/refresh", 202).is_some(), "{text}");
    assert!(
        value(
            &text,
            r#"jcscim_http_request_duration_seconds_count{route="GET /scim/v2/Users/{id}"}"#
        ) == Some(4.0),
        "{text}"
    );
    // Ids never become labels.
    for raw in [
        id.as_str(),
        "no-such-user",
        "NoSuchEndpoint",
        "/no/such/path",
    ] {
        assert!(!text.contains(raw), "{raw} leaked into a label:\n{text}");
    }

    // Upstream requests by JumpCloud route template, the scripted 503 and its retry included.
    let upstream = |route: &str, status: &str| {
        value(
            &text,
            &format!(
                "jcscim_upstream_requests_total{{purpose=\"refresh\",route=\"{route}\",status=\"{status}\"}}"
            ),
        )
        .unwrap_or(0.0)
    };
    assert!(upstream("GET /api/systemusers", "200") >= 2.0, "{text}");
    assert!(upstream("GET /api/systemusers", "503") >= 1.0, "{text}");
    assert!(
        upstream("GET /api/v2/usergroups/{id}/members", "200") >= 3.0,
        "{text}"
    );
    assert!(
        value(&text, "jcscim_upstream_retries_total").unwrap() >= 1.0,
        "{text}"
    );

    assert!(
        value(&text, r#"jcscim_refresh_total{outcome="ok"}"#).unwrap() >= 1.0,
        "{text}"
    );
    assert!(
        value(&text, "jcscim_refresh_duration_seconds_count").unwrap() >= 1.0,
        "{text}"
    );
    assert!(
        value(&text, "jcscim_snapshot_version").unwrap() >= 1.0,
        "{text}"
    );
    assert_eq!(
        value(&text, "jcscim_refresh_held_back"),
        Some(0.0),
        "{text}"
    );
}
