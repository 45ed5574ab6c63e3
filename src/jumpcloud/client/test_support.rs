//! What the client's tests share: a JumpCloud stand-in on 127.0.0.1:0 answering from a per-test script and
//! recording every request it saw, canned answers, and v1/v2 list fixtures.
//!
//! Must not reuse the client's request or parsing code: it speaks the wire format on its own, so the two cannot
//! agree on the same mistake.

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use reqwest::Url;
use serde_json::{Value, json};

use super::{JcClient, JcClientConfig};
use crate::jumpcloud::error::JcError;
use crate::jumpcloud::retry::{Backoff, RetryPolicy};

pub(super) const KEY: &str = "test-key-0123456789";
pub(super) const MS: Duration = Duration::from_millis(1);

/// A request as the fake upstream saw it.
#[derive(Debug, Clone)]
pub(super) struct Seen {
    pub(super) method: String,
    pub(super) path: String,
    pub(super) query: Vec<(String, String)>,
    pub(super) headers: axum::http::HeaderMap,
    pub(super) body: String,
}

impl Seen {
    pub(super) fn q(&self, key: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    pub(super) fn skip(&self) -> usize {
        self.q("skip").map_or(0, |s| s.parse().unwrap())
    }

    pub(super) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }

    pub(super) fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap()
    }
}

/// An answer from the fake upstream.
pub(super) struct Canned {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: String,
}

pub(super) fn reply(status: u16, body: Value) -> Canned {
    Canned {
        status,
        headers: vec![("content-type", "application/json".into())],
        body: body.to_string(),
    }
}

pub(super) fn empty(status: u16) -> Canned {
    Canned {
        status,
        headers: vec![],
        body: String::new(),
    }
}

pub(super) fn with_header(mut c: Canned, name: &'static str, value: impl ToString) -> Canned {
    c.headers.push((name, value.to_string()));
    c
}

pub(super) fn gateway() -> Canned {
    Canned {
        status: 502,
        headers: vec![("content-type", "text/html".into())],
        body: "<html><body><h1>502 Bad Gateway</h1></body></html>".into(),
    }
}

/// A JumpCloud stand-in on 127.0.0.1:0 that answers from a script `(request, call index) -> answer`.
pub(super) struct Upstream {
    pub(super) url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Upstream {
    pub(super) async fn start(
        script: impl Fn(&Seen, usize) -> Canned + Send + Sync + 'static,
    ) -> Self {
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let script = Arc::new(script);
        let log = seen.clone();
        let app = axum::Router::new().fallback(move |req: Request| {
            let (log, script) = (log.clone(), script.clone());
            async move {
                let (parts, body) = req.into_parts();
                let body = axum::body::to_bytes(body, usize::MAX).await.unwrap();
                let query = Url::parse(&format!("http://x/?{}", parts.uri.query().unwrap_or("")))
                    .unwrap()
                    .query_pairs()
                    .into_owned()
                    .collect();
                let seen = Seen {
                    method: parts.method.to_string(),
                    path: parts.uri.path().to_owned(),
                    query,
                    headers: parts.headers,
                    body: String::from_utf8(body.to_vec()).unwrap(),
                };
                let index = {
                    let mut log = log.lock().unwrap();
                    log.push(seen.clone());
                    log.len() - 1
                };
                let canned = script(&seen, index);
                let mut response = axum::http::Response::builder().status(canned.status);
                for (name, value) in canned.headers {
                    response = response.header(name, value);
                }
                response.body(Body::from(canned.body)).unwrap()
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Upstream { url, seen }
    }

    pub(super) fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    pub(super) fn config(&self) -> JcClientConfig {
        JcClientConfig {
            org_id: Some("org-1".into()),
            timeout: Duration::from_secs(5),
            retry: RetryPolicy {
                max_attempts: 3,
                backoff: Backoff::new(MS, 5 * MS, 0.0).unwrap(),
                retry_after_cap: 10 * MS,
            },
            ..JcClientConfig::new(&self.url, KEY)
        }
    }

    pub(super) fn client(&self) -> JcClient {
        JcClient::new(self.config()).unwrap()
    }
}

pub(super) fn user(i: usize) -> Value {
    let id = format!("{i:024x}");
    json!({"_id": id, "id": id, "username": format!("user{i}"), "email": format!("user{i}@example.com")})
}

/// A v1 `/api/systemusers` over `n` users, honouring `limit` and `skip`.
pub(super) fn v1_users(seen: &Seen, n: usize) -> Canned {
    let limit: usize = seen.q("limit").map_or(10, |s| s.parse().unwrap());
    let skip = seen.skip();
    let results: Vec<Value> = (skip..n.min(skip + limit)).map(user).collect();
    reply(200, json!({"totalCount": n, "results": results}))
}

pub(super) fn group(i: usize) -> Value {
    json!({"id": format!("g{i:05}"), "name": format!("Group {i}"), "type": "user_group",
           "attributes": null, "email": "", "description": ""})
}

/// A v2 bare-array page of `items` with `x-total-count`.
pub(super) fn v2_page(seen: &Seen, items: &[Value], total: Option<usize>) -> Canned {
    let skip = seen.skip();
    let page: Vec<Value> = items.iter().skip(skip).take(100).cloned().collect();
    let canned = reply(200, Value::Array(page));
    match total {
        Some(t) => with_header(canned, "x-total-count", t),
        None => canned,
    }
}

pub(super) fn protocol_message(result: Result<impl fmt::Debug, JcError>) -> String {
    match result {
        Err(JcError::Protocol { message }) => message,
        other => panic!("expected a Protocol error, got {other:?}"),
    }
}
