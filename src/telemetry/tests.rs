use std::sync::Arc;
use std::time::Duration;

use axum::http::Method;
use jiff::{SignedDuration, Timestamp};

use super::*;
use crate::cache::{BuildOptions, Data, RawDirectory, Snapshot, Store};
use crate::mapping::MappingOptions;

/// Every family INTERFACE.md names, plus the upstream latency histogram.
const FAMILIES: &[(&str, &str)] = &[
    ("jcscim_snapshot_version", "gauge"),
    ("jcscim_snapshot_age_seconds", "gauge"),
    ("jcscim_refresh_total", "counter"),
    ("jcscim_refresh_duration_seconds", "histogram"),
    ("jcscim_refresh_held_back", "gauge"),
    ("jcscim_upstream_requests_total", "counter"),
    ("jcscim_upstream_request_duration_seconds", "histogram"),
    ("jcscim_upstream_retries_total", "counter"),
    ("jcscim_breaker_state", "gauge"),
    ("jcscim_http_requests_total", "counter"),
    ("jcscim_http_request_duration_seconds", "histogram"),
    ("jcscim_pinned_walks", "gauge"),
    ("jcscim_insights_events_total", "counter"),
    ("jcscim_insights_lag_seconds", "gauge"),
];

fn store() -> Store {
    Store::new(BuildOptions {
        mapping: MappingOptions::default(),
        directories_as_groups: true,
    })
}

/// The value of the one sample line starting with `series` (name and labels exactly as rendered).
fn value(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| {
        l.strip_prefix(series)
            .and_then(|rest| rest.strip_prefix(' '))
            .and_then(|v| v.parse().ok())
    })
}

#[test]
fn every_family_is_present_before_any_event() {
    let text = Metrics::new().render(&store());
    for (name, kind) in FAMILIES {
        // OpenMetrics names a counter's family without the `_total` its samples carry.
        let family = typed(name, kind);
        assert!(
            text.contains(&format!("\n# HELP {family} "))
                || text.starts_with(&format!("# HELP {family} ")),
            "no HELP for {name}:\n{text}"
        );
        assert!(
            text.contains(&format!("# TYPE {family} {kind}\n")),
            "no TYPE for {name}:\n{text}"
        );
    }
    assert_eq!(
        value(
            &text,
            &format!(
                "jcscim_build_info{{version=\"{}\"}}",
                env!("CARGO_PKG_VERSION")
            )
        ),
        Some(1.0)
    );
    assert!(value(&text, "process_resident_memory_bytes").unwrap() > 1e6);
    assert!(text.ends_with("# EOF\n"), "{text}");
    // Unlabelled gauges and counters start with a 0 sample; every refresh outcome is pre-created.
    for name in [
        "jcscim_snapshot_version",
        "jcscim_snapshot_age_seconds",
        "jcscim_refresh_held_back",
        "jcscim_upstream_retries_total",
        "jcscim_breaker_state",
        "jcscim_pinned_walks",
        "jcscim_refresh_duration_seconds_count",
        "jcscim_upstream_request_duration_seconds_count",
        "jcscim_insights_lag_seconds",
    ] {
        assert_eq!(value(&text, name), Some(0.0), "{name}:\n{text}");
    }
    for t in INSIGHTS_EVENT_TYPES {
        assert_eq!(
            value(
                &text,
                &format!("jcscim_insights_events_total{{type=\"{t}\"}}")
            ),
            Some(0.0),
            "{t}"
        );
    }
    for outcome in ["ok", "failed", "held_back"] {
        assert_eq!(
            value(
                &text,
                &format!("jcscim_refresh_total{{outcome=\"{outcome}\"}}")
            ),
            Some(0.0)
        );
    }
    // Nothing but comments and samples, each family once.
    for (name, kind) in FAMILIES {
        assert_eq!(
            text.matches(&format!("# TYPE {} ", typed(name, kind)))
                .count(),
            1,
            "{name}"
        );
    }
}

fn typed<'a>(name: &'a str, kind: &str) -> &'a str {
    match kind {
        "counter" => name.strip_suffix("_total").unwrap_or(name),
        _ => name,
    }
}

#[test]
fn counters_and_histograms_move_with_events() {
    let m = Metrics::new();
    m.observe_http("GET /scim/v2/Users/{id}", 200, Duration::from_millis(3));
    m.observe_http("GET /scim/v2/Users/{id}", 404, Duration::from_millis(30));
    m.observe_http("GET /scim/v2/Users/{id}", 404, Duration::from_millis(2));
    m.observe_upstream(
        "refresh",
        "GET /api/v2/usergroups/{id}/members",
        200,
        Duration::from_millis(40),
    );
    m.observe_upstream("refresh", "GET /api/systemusers", 0, Duration::from_secs(5));
    m.observe_upstream(
        "fetch",
        "GET /api/systemusers",
        502,
        Duration::from_millis(1),
    );
    m.add_upstream_retries(2);
    m.add_upstream_retries(1);
    m.observe_refresh(RefreshOutcome::Ok, Duration::from_millis(700));
    m.observe_refresh(RefreshOutcome::HeldBack, Duration::from_secs(2));
    m.set_refresh_held_back(true);
    m.set_breaker_state(2);
    m.set_pinned_walks(7);
    let text = m.render(&store());

    let route = r#"route="GET /scim/v2/Users/{id}""#;
    assert_eq!(
        value(
            &text,
            &format!("jcscim_http_requests_total{{{route},status=\"200\"}}")
        ),
        Some(1.0)
    );
    assert_eq!(
        value(
            &text,
            &format!("jcscim_http_requests_total{{{route},status=\"404\"}}")
        ),
        Some(2.0)
    );
    // Buckets are cumulative: 2 ms and 3 ms fit 0.005, 30 ms first fits 0.05.
    let bucket = |le: &str| {
        value(
            &text,
            &format!("jcscim_http_request_duration_seconds_bucket{{le=\"{le}\",{route}}}"),
        )
    };
    assert_eq!(bucket("0.005"), Some(2.0));
    assert_eq!(bucket("0.025"), Some(2.0));
    assert_eq!(bucket("0.05"), Some(3.0));
    assert_eq!(bucket("+Inf"), Some(3.0));
    assert_eq!(
        value(
            &text,
            &format!("jcscim_http_request_duration_seconds_count{{{route}}}")
        ),
        Some(3.0)
    );
    let sum = value(
        &text,
        &format!("jcscim_http_request_duration_seconds_sum{{{route}}}"),
    )
    .unwrap();
    assert!((sum - 0.035).abs() < 1e-9, "{sum}");

    assert_eq!(
        value(
            &text,
            r#"jcscim_upstream_requests_total{purpose="refresh",route="GET /api/v2/usergroups/{id}/members",status="200"}"#
        ),
        Some(1.0)
    );
    assert_eq!(
        value(
            &text,
            r#"jcscim_upstream_requests_total{purpose="refresh",route="GET /api/systemusers",status="none"}"#
        ),
        Some(1.0)
    );
    assert_eq!(
        value(
            &text,
            r#"jcscim_upstream_requests_total{purpose="fetch",route="GET /api/systemusers",status="502"}"#
        ),
        Some(1.0)
    );
    assert_eq!(
        value(&text, "jcscim_upstream_request_duration_seconds_count"),
        Some(3.0)
    );
    assert_eq!(value(&text, "jcscim_upstream_retries_total"), Some(3.0));
    assert_eq!(
        value(&text, r#"jcscim_refresh_total{outcome="ok"}"#),
        Some(1.0)
    );
    assert_eq!(
        value(&text, r#"jcscim_refresh_total{outcome="failed"}"#),
        Some(0.0)
    );
    assert_eq!(
        value(&text, r#"jcscim_refresh_total{outcome="held_back"}"#),
        Some(1.0)
    );
    assert_eq!(
        value(&text, r#"jcscim_refresh_duration_seconds_bucket{le="1.0"}"#),
        Some(1.0)
    );
    assert_eq!(
        value(&text, "jcscim_refresh_duration_seconds_count"),
        Some(2.0)
    );
    assert_eq!(value(&text, "jcscim_refresh_held_back"), Some(1.0));
    assert_eq!(value(&text, "jcscim_breaker_state"), Some(2.0));
    assert_eq!(value(&text, "jcscim_pinned_walks"), Some(7.0));

    m.set_refresh_held_back(false);
    assert_eq!(
        value(&m.render(&store()), "jcscim_refresh_held_back"),
        Some(0.0)
    );
}

#[test]
fn feed_events_are_counted_by_a_bounded_type_and_the_lag_is_read_at_scrape_time() {
    let m = Metrics::new();
    m.add_insights_events("user_update", 3);
    m.add_insights_events("a_type_from_upstream", 2);
    let now = Timestamp::now();
    m.set_insights_newest(now - SignedDuration::from_secs(30));
    m.set_insights_newest(now - SignedDuration::from_secs(90));
    let text = m.render(&store());
    assert_eq!(
        value(&text, r#"jcscim_insights_events_total{type="user_update"}"#),
        Some(3.0)
    );
    assert_eq!(
        value(&text, r#"jcscim_insights_events_total{type="other"}"#),
        Some(2.0)
    );
    assert!(!text.contains("a_type_from_upstream"), "{text}");
    assert_eq!(m.insights_events(), 5);
    let lag = value(&text, "jcscim_insights_lag_seconds").unwrap();
    assert!(
        (30.0..35.0).contains(&lag),
        "the newest event counts: {lag}"
    );
}

#[test]
fn label_values_are_escaped() {
    let m = Metrics::new();
    m.observe_upstream("write", "GET /a\\b \"q\"\nnext", 200, Duration::ZERO);
    let text = m.render(&store());
    assert!(
        text.contains(
            r#"jcscim_upstream_requests_total{purpose="write",route="GET /a\\b \"q\"\nnext",status="200"} 1"#
        ),
        "{text}"
    );
    // No sample line was split by the raw line feed.
    assert!(
        text.lines()
            .all(|l| l.starts_with('#') || l.starts_with("jcscim_") || l.starts_with("process_")),
        "{text}"
    );
}

#[test]
fn route_labels_are_templates_never_raw_paths() {
    assert_eq!(
        route_label(&Method::GET, Some("/scim/v2/Users/{id}")),
        "GET /scim/v2/Users/{id}"
    );
    assert_eq!(route_label(&Method::DELETE, None), "DELETE unmatched");
    // A nested router's fallback is not a route.
    assert_eq!(
        route_label(
            &Method::GET,
            Some("/scim/v2/{*__private__axum_nest_tail_param}")
        ),
        "GET unmatched"
    );
    // Made-up methods share one label.
    let brew = Method::from_bytes(b"BREW").unwrap();
    assert_eq!(route_label(&brew, Some("/healthz")), "OTHER /healthz");
}

#[tokio::test]
async fn the_middleware_counts_by_template_and_status() {
    use axum::Router;
    use axum::body::Body;
    use axum::routing::get;
    use tower::ServiceExt as _;

    let m = Metrics::new();
    let app = Router::new()
        .route(
            "/Users/{id}",
            get(|| async { axum::http::StatusCode::NOT_FOUND }),
        )
        .layer(axum::middleware::from_fn_with_state(m.clone(), track));
    for path in ["/Users/2c9a1f", "/Users/77aa00", "/nowhere"] {
        let resp = app
            .clone()
            .oneshot(axum::http::Request::get(path).body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(resp.status(), 404);
    }
    let text = m.render(&store());
    assert_eq!(
        value(
            &text,
            r#"jcscim_http_requests_total{route="GET /Users/{id}",status="404"}"#
        ),
        Some(2.0),
        "{text}"
    );
    assert_eq!(
        value(
            &text,
            r#"jcscim_http_requests_total{route="GET unmatched",status="404"}"#
        ),
        Some(1.0),
        "{text}"
    );
    assert!(
        !text.contains("2c9a1f") && !text.contains("nowhere"),
        "{text}"
    );
}

#[test]
fn snapshot_version_and_age_come_from_the_store_at_scrape_time() {
    let store = store();
    let taken_at = Timestamp::now() - SignedDuration::from_secs(42);
    let snap = Snapshot::build(
        Data::from_raw(RawDirectory::default()),
        5,
        taken_at,
        Timestamp::now(),
        &store.options,
        None,
        &|_, _| None,
    );
    futures_util::FutureExt::now_or_never(store.publish_as_is(Arc::new(snap)))
        .expect("nothing else holds the publish lock");
    let text = Metrics::new().render(&store);
    assert_eq!(value(&text, "jcscim_snapshot_version"), Some(5.0));
    let age = value(&text, "jcscim_snapshot_age_seconds").unwrap();
    assert!((42.0..45.0).contains(&age), "{age}");
}
