//! One request and its answer: the [`Call`] a method builds (path segments, query, JSON body, whether
//! `x-org-id` goes along), sending it through the
//! [`UpstreamGuard`](crate::jumpcloud::resilience::UpstreamGuard) once (writes) or with retries (reads), the
//! per-call trace and observer, classifying a failure into a [`JcError`], and reading a 2xx body: parsing, the
//! id check on single objects, 404 as "no such object".
//!
//! Must not know any endpoint or paging; callers hand it a route and segments.

use reqwest::Method;
use reqwest::header::{CONTENT_TYPE, HeaderMap, RETRY_AFTER};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::sync::atomic::Ordering;

use super::handle::{JcClient, bad_config};
use super::routes::{Route, Verb};
use crate::jumpcloud::error::{self, JcError};
use crate::jumpcloud::model::{JcGroup, JcUser};

/// Which of JumpCloud's hosts a call goes to.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Host {
    /// The console API (`/api/…`, `/api/v2/…`).
    Console,
    /// Directory Insights (`…/insights/directory/v1`).
    Insights,
}

/// One request, ready to send (and to send again, for reads).
pub(super) struct Call<'a> {
    pub(super) host: Host,
    pub(super) route: Route,
    pub(super) segments: Vec<&'a str>,
    pub(super) query: Vec<(&'static str, String)>,
    /// JSON, serialized once.
    pub(super) body: Option<Vec<u8>>,
    /// `/api/organizations` refuses `x-org-id`.
    pub(super) org_header: bool,
}

impl<'a> Call<'a> {
    pub(super) fn new(route: Route, segments: Vec<&'a str>) -> Self {
        Call {
            host: Host::Console,
            route,
            segments,
            query: Vec::new(),
            body: None,
            org_header: true,
        }
    }

    pub(super) fn query(mut self, key: &'static str, value: impl Into<String>) -> Self {
        self.query.push((key, value.into()));
        self
    }

    pub(super) fn json(mut self, body: &impl Serialize) -> Result<Self, JcError> {
        let bytes = serde_json::to_vec(body)
            .map_err(|e| JcError::protocol(format!("cannot encode request body: {e}")))?;
        self.body = Some(bytes);
        Ok(self)
    }
}

/// A 2xx answer.
pub(super) struct Reply {
    pub(super) headers: HeaderMap,
    pub(super) body: Vec<u8>,
}

/// An id placed in a path. `.`/`..` would be dropped by URL normalisation and turn `GET /systemusers/..` into
/// the list; such ids (and empty ones) cannot name an object, so they are "not found" without a call.
pub(super) fn path_id(id: &str) -> Result<&str, JcError> {
    if id.is_empty() || id == "." || id == ".." {
        Err(JcError::NotFound {
            message: format!("no object has the id {id:?}"),
        })
    } else {
        Ok(id)
    }
}

pub(super) fn parse<T: DeserializeOwned>(route: Route, body: &[u8]) -> Result<T, JcError> {
    serde_json::from_slice(body).map_err(|e| {
        JcError::protocol(format!(
            "{}: response body did not parse: {e}",
            route.template
        ))
    })
}

/// An object JumpCloud identifies by id.
pub(super) trait WireObject {
    fn wire_id(&self) -> &str;
}

impl WireObject for JcUser {
    fn wire_id(&self) -> &str {
        &self.id
    }
}

impl WireObject for JcGroup {
    fn wire_id(&self) -> &str {
        &self.id
    }
}

/// A single object. The DTOs read leniently, so an answer that is not the object at all (`{}`, `[]`, an error
/// envelope with 200) would read as an empty one; the id is what tells them apart.
pub(super) fn parse_object<T: DeserializeOwned + WireObject>(
    route: Route,
    body: &[u8],
) -> Result<T, JcError> {
    let object: T = parse(route, body)?;
    if object.wire_id().is_empty() {
        return Err(JcError::protocol(format!(
            "{}: the answer carries no id",
            route.template
        )));
    }
    Ok(object)
}

/// 404 on a single-object read means "there is no such object".
pub(super) fn found<T>(result: Result<T, JcError>) -> Result<Option<T>, JcError> {
    match result {
        Ok(v) => Ok(Some(v)),
        Err(JcError::NotFound { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

// === impl JcClient ===

impl JcClient {
    /// The guard in front of `host`: its breaker, retry budget and in-flight bound.
    fn guard(&self, host: Host) -> &crate::jumpcloud::resilience::UpstreamGuard {
        match host {
            Host::Console => &self.inner.guard,
            Host::Insights => &self.inner.insights_guard,
        }
    }

    pub(super) async fn get_one<T: DeserializeOwned + WireObject>(
        &self,
        call: Call<'_>,
    ) -> Result<T, JcError> {
        let reply = self.send_read(&call).await?;
        parse_object(call.route, &reply.body)
    }

    /// A read: retried on transient failures per the policy while the retry budget allows, each retry counted and
    /// traced.
    pub(super) async fn send_read(&self, call: &Call<'_>) -> Result<Reply, JcError> {
        let seed = self
            .inner
            .jitter_seed
            .fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed);
        let mut rng = <rand::rngs::SmallRng as rand::SeedableRng>::seed_from_u64(seed);
        let template = call.route.template;
        self.guard(call.host)
            .retry(
                &self.inner.retry,
                &mut rng,
                |ev| {
                    self.inner.retries.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(
                        route = template,
                        attempt = ev.next_attempt,
                        delay_ms = u64::try_from(ev.delay.as_millis()).unwrap_or(u64::MAX),
                        error = %ev.error,
                        "retrying JumpCloud read"
                    );
                },
                |_| self.send_once(call),
            )
            .await
    }

    /// One request through the guard: refused at once while the breaker is open, otherwise sent within the
    /// in-flight bound and its outcome reported to the breaker.
    pub(super) async fn send_once(&self, call: &Call<'_>) -> Result<Reply, JcError> {
        let request = self.request(call)?;
        self.guard(call.host)
            .call(self.exchange(call, request))
            .await
    }

    fn request(&self, call: &Call<'_>) -> Result<reqwest::RequestBuilder, JcError> {
        let inner = &*self.inner;
        let mut url = match call.host {
            Host::Console => inner.base.clone(),
            Host::Insights => inner.insights_base.clone(),
        };
        url.path_segments_mut()
            .map_err(|()| bad_config("base_url cannot take a path"))?
            .pop_if_empty()
            .extend(&call.segments);
        let method = match call.route.method {
            Verb::Get => Method::GET,
            Verb::Post => Method::POST,
            Verb::Put => Method::PUT,
            Verb::Delete => Method::DELETE,
        };
        let mut request = inner
            .http
            .request(method, url)
            .header("x-api-key", inner.key.load().header.clone());
        if !call.query.is_empty() {
            request = request.query(&call.query);
        }
        if call.org_header
            && let Some(org) = &inner.org_id
        {
            request = request.header("x-org-id", org.clone());
        }
        if let Some(body) = &call.body {
            request = request
                .header(CONTENT_TYPE, "application/json")
                .body(body.clone());
        }
        Ok(request)
    }

    /// Send one request. 2xx → `Reply`; anything else → a classified `JcError`.
    async fn exchange(
        &self,
        call: &Call<'_>,
        request: reqwest::RequestBuilder,
    ) -> Result<Reply, JcError> {
        let inner = &*self.inner;
        inner.calls.fetch_add(1, Ordering::Relaxed);
        let started = tokio::time::Instant::now();
        let answer = match request.send().await {
            Err(e) => Err(error::from_transport(e, &inner.key.load().secret)),
            Ok(response) => {
                let status = response.status().as_u16();
                let headers = response.headers().clone();
                match response.bytes().await {
                    Ok(body) => Ok((status, headers, body.to_vec())),
                    // A failure answer keeps its class without its body; a success whose body broke off is
                    // worth asking again (the status line arrived, so the request did too).
                    Err(_) if !(200..300).contains(&status) => Ok((status, headers, Vec::new())),
                    Err(e) => Err(match error::from_transport(e, &inner.key.load().secret) {
                        JcError::Transient { message, .. } => JcError::Transient {
                            status: Some(status),
                            retry_after: None,
                            message: format!("reading the response body: {message}"),
                            sent: true,
                        },
                        other => other,
                    }),
                }
            }
        };
        let elapsed = started.elapsed();
        let status = match &answer {
            Ok((status, ..)) => *status,
            Err(e) => e.status().unwrap_or(0),
        };
        tracing::debug!(
            method = call.route.template.split(' ').next().unwrap_or(""),
            route = call.route.template,
            status,
            elapsed_ms = u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX),
            "JumpCloud call"
        );
        if let Some(observe) = &self.observer {
            observe(self.purpose, call.route.template, status, elapsed);
        }

        let (status, headers, body) = answer?;
        if (200..300).contains(&status) {
            return Ok(Reply { headers, body });
        }
        let retry_after = headers.get(RETRY_AFTER).and_then(|v| v.to_str().ok());
        Err(error::from_response(
            status,
            retry_after,
            &body,
            jiff::Timestamp::now(),
            &inner.key.load().secret,
        ))
    }
}

#[cfg(test)]
#[path = "transport_tests.rs"]
mod tests;
