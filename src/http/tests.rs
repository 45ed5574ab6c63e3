//! Routing, driven by `oneshot` on the service's router (no socket): which path answers what, which need a
//! credential, and that every refusal is a SCIM error.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use axum::response::Response;
use jiff::Timestamp;
use serde_json::Value;
use tower::ServiceExt;

use crate::cache::{Data, RawDirectory, Snapshot, Store};
use crate::config::{Config, Secret, parse_token_list};
use crate::jumpcloud::JcUser;
use crate::scim::SCIM_CONTENT_TYPE;

const TOKEN: &str = "routing-token-0123";

fn config() -> Config {
    let mut c = Config::default();
    c.jumpcloud.url = "http://127.0.0.1:9".into();
    c.jumpcloud.api_key = Some(Secret::new("unused-key"));
    c.auth.tokens = parse_token_list(TOKEN).expect("a token list");
    c
}

fn router() -> (axum::Router, Arc<Store>) {
    crate::app::router_for(&config()).expect("the router builds")
}

async fn publish_one_user(store: &Store) {
    let raw = RawDirectory {
        users: vec![JcUser {
            id: "u1".into(),
            username: "jane".into(),
            email: "jane@example.com".into(),
            ..JcUser::default()
        }],
        ..RawDirectory::default()
    };
    let now = Timestamp::now();
    let snapshot = Snapshot::build(
        Data::from_raw(raw),
        7,
        now,
        now,
        &store.options,
        None,
        &|_, _| None,
    );
    store.publish_as_is(Arc::new(snapshot)).await;
}

async fn send(router: &axum::Router, method: &str, path: &str, token: Option<&str>) -> Response {
    let mut req = Request::builder().method(method).uri(path);
    if let Some(t) = token {
        req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    router
        .clone()
        .oneshot(req.body(Body::empty()).expect("a request"))
        .await
        .expect("the router answers")
}

async fn json(resp: Response) -> Value {
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
        .await
        .expect("a body");
    serde_json::from_slice(&bytes).expect("a JSON body")
}

fn is_scim_error(resp: &Response, status: u16) {
    assert_eq!(resp.status().as_u16(), status);
    assert_eq!(resp.headers()[header::CONTENT_TYPE], SCIM_CONTENT_TYPE);
}

#[tokio::test]
async fn reads_before_the_first_snapshot_are_503_with_retry_after() {
    let (router, _) = router();
    let resp = send(&router, "GET", "/scim/v2/Users", Some(TOKEN)).await;
    is_scim_error(&resp, 503);
    assert_eq!(resp.headers()[header::RETRY_AFTER], "5");
    let body = json(resp).await;
    assert_eq!(body["status"], "503");
    // The probes answer without a credential, and say the service is not ready.
    assert_eq!(send(&router, "GET", "/healthz", None).await.status(), 200);
    assert_eq!(send(&router, "GET", "/readyz", None).await.status(), 503);
}

#[tokio::test]
async fn scim_paths_need_a_credential_and_unknown_ones_are_scim_404s() {
    let (router, store) = router();
    publish_one_user(&store).await;
    let resp = send(&router, "GET", "/scim/v2/Users", None).await;
    is_scim_error(&resp, 401);
    assert!(resp.headers().contains_key(header::WWW_AUTHENTICATE));
    is_scim_error(
        &send(&router, "GET", "/scim/v2/Users", Some("not-a-token")).await,
        401,
    );
    // Unknown paths are 404 with or without a credential: a path says nothing about who may read it.
    is_scim_error(&send(&router, "GET", "/scim/v2/Nothing", None).await, 404);
    is_scim_error(
        &send(&router, "GET", "/scim/v2/Nothing", Some(TOKEN)).await,
        404,
    );
}

#[tokio::test]
async fn resources_lists_and_discovery_answer_from_the_snapshot() {
    let (router, store) = router();
    publish_one_user(&store).await;
    let resp = send(&router, "GET", "/scim/v2/Users", Some(TOKEN)).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["x-snapshot-version"], "7");
    let list = json(resp).await;
    assert_eq!(list["totalResults"], 1);
    assert_eq!(list["Resources"][0]["userName"], "jane");

    let resp = send(&router, "GET", "/scim/v2/Users/u1", Some(TOKEN)).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(resp.headers().contains_key(header::ETAG));
    assert_eq!(json(resp).await["id"], "u1");

    let resp = send(&router, "GET", "/scim/v2/Users/u2", Some(TOKEN)).await;
    is_scim_error(&resp, 404);
    assert_eq!(resp.headers()["x-snapshot-version"], "7");
    let resp = send(&router, "GET", "/scim/v2/Users/Users", Some(TOKEN)).await;
    is_scim_error(&resp, 404);
    let detail = json(resp).await["detail"].as_str().unwrap().to_owned();
    assert!(detail.contains("must end in /scim/v2"), "{detail}");

    for path in [
        "/scim/v2/ServiceProviderConfig",
        "/scim/v2/ResourceTypes",
        "/scim/v2/Schemas",
    ] {
        assert_eq!(
            send(&router, "GET", path, Some(TOKEN)).await.status(),
            200,
            "{path}"
        );
    }
}

#[tokio::test]
async fn what_is_not_offered_says_so() {
    let (router, store) = router();
    publish_one_user(&store).await;
    is_scim_error(&send(&router, "GET", "/scim/v2/Me", Some(TOKEN)).await, 501);
    is_scim_error(
        &send(&router, "POST", "/scim/v2/Bulk", Some(TOKEN)).await,
        501,
    );
    is_scim_error(
        &send(
            &router,
            "DELETE",
            "/scim/v2/ServiceProviderConfig",
            Some(TOKEN),
        )
        .await,
        405,
    );
    // A 405 names the methods the path takes (RFC 9110 §15.5.6).
    for (method, path, allow) in [
        ("DELETE", "/scim/v2/ServiceProviderConfig", "GET"),
        ("PATCH", "/scim/v2/Users", "GET, POST"),
        ("POST", "/scim/v2/Groups/some-id", "GET, PUT, PATCH, DELETE"),
        ("GET", "/scim/v2/Users/.search", "POST"),
        ("PUT", "/scim/v2/.search", "POST"),
        ("POST", "/scim/v2/Schemas/urn:x", "GET"),
    ] {
        let resp = send(&router, method, path, Some(TOKEN)).await;
        is_scim_error(&resp, 405);
        assert_eq!(resp.headers()[header::ALLOW], allow, "{method} {path}");
    }
}

#[tokio::test]
async fn every_answer_carries_a_request_id_and_scim_ones_their_snapshot() {
    let (router, store) = router();
    publish_one_user(&store).await;
    // The service's own ids count up, `req-<n>`; a client's own is kept.
    let first = send(&router, "GET", "/healthz", None).await;
    let id = first.headers()["x-request-id"].to_str().unwrap().to_owned();
    let n: u64 = id.strip_prefix("req-").expect("req-<n>").parse().unwrap();
    let next = send(&router, "GET", "/scim/v2/Users/u1", Some(TOKEN)).await;
    assert_eq!(next.headers()["x-request-id"], format!("req-{}", n + 1));
    let given = router
        .clone()
        .oneshot(
            Request::get("/healthz")
                .header("x-request-id", "client-chosen-7")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(given.headers()["x-request-id"], "client-chosen-7");
    // The probe's body, byte for byte.
    assert_eq!(first.headers()[header::CONTENT_TYPE], "application/json");
    let body = axum::body::to_bytes(first.into_body(), 1024).await.unwrap();
    assert_eq!(&body[..], br#"{"status":"alive"}"#);
    // A refusal and an unknown path under /scim/v2 say which version answered too.
    for (path, token, status) in [
        ("/scim/v2/Users", None, 401),
        ("/scim/v2/Nothing", Some(TOKEN), 404),
    ] {
        let resp = send(&router, "GET", path, token).await;
        is_scim_error(&resp, status);
        assert_eq!(resp.headers()["x-snapshot-version"], "7", "{path}");
        assert!(resp.headers().contains_key("x-snapshot-age"), "{path}");
        assert!(resp.headers().contains_key("x-request-id"), "{path}");
    }
}
