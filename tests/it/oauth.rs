//! OAuth 2.0 client credentials end to end: a client trades its id and secret at `POST /oauth/token` for a
//! JWT, as SailPoint's OAuth2 authentication does, and uses it as a bearer token on SCIM; every way of
//! getting it wrong answers RFC 6749's error shape.

use reqwest::StatusCode;
use serde_json::{Value, json};

use jumpcloud_scim::auth::Scope;
use jumpcloud_scim::config::{ClientConfig, Secret};

use crate::support::{Harness, json_of, small_emulator};

const SECRET: &str = "p+ss:word/0123456789";

async fn start() -> Harness {
    Harness::start(small_emulator(10, 2), |c| {
        c.auth.clients = vec![
            ClientConfig {
                client_id: "sailpoint".into(),
                client_secret: Some(Secret::new(SECRET)),
                client_secret_sha256: None,
                scope: Scope::Provision,
            },
            ClientConfig {
                client_id: "auditor".into(),
                client_secret: Some(Secret::new("auditor-secret-0123456789")),
                client_secret_sha256: None,
                scope: Scope::Read,
            },
        ];
        c.auth.jwt.secret = Some(Secret::new("an-hmac-key-of-at-least-32-characters!"));
        c.auth.jwt.ttl_s = 600;
    })
    .await
}

fn token_url(h: &Harness) -> String {
    format!("{}/oauth/token", h.base)
}

async fn token_via_basic(h: &Harness, user: &str, password: &str, form: &str) -> reqwest::Response {
    h.http
        .post(token_url(h))
        .basic_auth(user, Some(password))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form.to_owned())
        .send()
        .await
        .unwrap()
}

fn bearer(
    h: &Harness,
    method: reqwest::Method,
    path: &str,
    token: &str,
) -> reqwest::RequestBuilder {
    h.http
        .request(method, h.scim(path))
        .bearer_auth(token)
        .header("content-type", "application/scim+json")
}

#[tokio::test]
async fn a_client_trades_its_credentials_for_a_token_and_provisions_with_it() {
    let h = start().await;
    h.wait_ready().await;

    // HTTP Basic with the credentials as they are (many clients do not form-encode them).
    let r = token_via_basic(&h, "sailpoint", SECRET, "grant_type=client_credentials").await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["cache-control"], "no-store");
    assert_eq!(r.headers()["pragma"], "no-cache");
    let issued = json_of(r).await;
    assert_eq!(issued["token_type"], "Bearer");
    assert_eq!(issued["expires_in"], 600);
    assert_eq!(issued["scope"], "provision");
    let token = issued["access_token"].as_str().unwrap().to_owned();
    assert_eq!(token.split('.').count(), 3, "a JWT");
    assert!(!token.contains(SECRET));

    let r = bearer(&h, reqwest::Method::GET, "/Users?count=2", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r = bearer(&h, reqwest::Method::POST, "/Users", &token)
        .body(
            json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                "userName": "oauth.joiner",
                "emails": [{"value": "oauth.joiner@example.com", "primary": true}],
                "name": {"givenName": "OAuth", "familyName": "Joiner"},
            })
            .to_string(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);

    // HTTP Basic with the credentials form-encoded, as RFC 6749 §2.3.1 has it.
    let r = token_via_basic(
        &h,
        "sailpoint",
        "p%2Bss%3Aword%2F0123456789",
        "grant_type=client_credentials",
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);

    // The credentials in the form, asking for read only: the token reads and cannot write.
    let form = format!(
        "grant_type=client_credentials&client_id=sailpoint&client_secret={}&scope=read",
        "p%2Bss%3Aword%2F0123456789"
    );
    let r = h
        .http
        .post(token_url(&h))
        .header(
            "content-type",
            "application/x-www-form-urlencoded; charset=UTF-8",
        )
        .body(form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let issued = json_of(r).await;
    assert_eq!(issued["scope"], "read");
    let read_token = issued["access_token"].as_str().unwrap().to_owned();
    let r = bearer(&h, reqwest::Method::GET, "/Groups", &read_token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r = bearer(&h, reqwest::Method::DELETE, "/Users/whoever", &read_token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
}

/// An RFC 6749 §5.2 error: its status and `error` code.
async fn oauth_error(r: reqwest::Response) -> (StatusCode, Value) {
    let status = r.status();
    assert_eq!(r.headers()["cache-control"], "no-store");
    if status == StatusCode::UNAUTHORIZED {
        assert!(
            r.headers()["www-authenticate"]
                .to_str()
                .unwrap()
                .starts_with("Basic")
        );
    }
    let body = json_of(r).await;
    assert!(
        body["error_description"]
            .as_str()
            .is_some_and(|d| !d.is_empty()),
        "{body}"
    );
    (status, body)
}

#[tokio::test]
async fn token_requests_that_cannot_be_granted_say_why() {
    let h = start().await;
    let form = |extra: &str| format!("grant_type=client_credentials{extra}");
    let post = |body: String, content_type: &'static str| {
        h.http
            .post(token_url(&h))
            .header("content-type", content_type)
            .body(body)
            .send()
    };
    let cases: Vec<(reqwest::Response, StatusCode, &str)> = vec![
        (
            token_via_basic(&h, "sailpoint", "wrong-secret-0123456789", &form("")).await,
            StatusCode::UNAUTHORIZED,
            "invalid_client",
        ),
        (
            token_via_basic(&h, "nobody", SECRET, &form("")).await,
            StatusCode::UNAUTHORIZED,
            "invalid_client",
        ),
        (
            post(form(""), "application/x-www-form-urlencoded")
                .await
                .unwrap(),
            StatusCode::UNAUTHORIZED,
            "invalid_client",
        ),
        (
            token_via_basic(
                &h,
                "sailpoint",
                SECRET,
                "grant_type=password&username=a&password=b",
            )
            .await,
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
        ),
        (
            token_via_basic(&h, "sailpoint", SECRET, "scope=provision").await,
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            token_via_basic(
                &h,
                "sailpoint",
                SECRET,
                &form("&grant_type=client_credentials"),
            )
            .await,
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            token_via_basic(
                &h,
                "auditor",
                "auditor-secret-0123456789",
                &form("&scope=provision"),
            )
            .await,
            StatusCode::BAD_REQUEST,
            "invalid_scope",
        ),
        (
            post("<grant/>".into(), "application/xml").await.unwrap(),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
    ];
    for (i, (r, status, code)) in cases.into_iter().enumerate() {
        let (got, body) = oauth_error(r).await;
        assert_eq!(
            (got, body["error"].as_str().unwrap()),
            (status, code),
            "case {i}: {body}"
        );
    }

    // A JSON body with the same names is taken too.
    let r = post(
        json!({"grant_type": "client_credentials", "client_id": "auditor",
               "client_secret": "auditor-secret-0123456789"})
        .to_string(),
        "application/json",
    )
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::OK);

    // A token that is not ours is a SCIM 401, like any bad credential.
    let r = bearer(
        &h,
        reqwest::Method::GET,
        "/Users",
        "eyJhbGciOiJIUzI1NiJ9.e30.c2ln",
    )
    .send()
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let body = json_of(r).await;
    assert_eq!(body["status"], "401");
}
