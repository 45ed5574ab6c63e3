//! The HTTP surface: one router, one layer stack, SCIM under `/scim/v2`, operations at the root.
//!
//! Handlers are thin: extract, ask the snapshot (reads) or the directory (writes), render. SCIM errors are
//! `crate::scim::error::ScimError`, rendered as RFC 7644 §3.12 bodies; internal errors are logged, never sent.

mod error;
mod list_body;
mod oauth;
pub mod ops;
mod scim_read;
mod scim_write;
pub mod server;
mod status;
mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tokio::sync::Notify;
use tower::ServiceBuilder;

use crate::audit::Audit;
use crate::auth::throttle::FailedAuth;
use crate::auth::{AuthError, Authenticator};
use crate::cache::Store;
use crate::cache::insights::FeedHealth;
use crate::directory::reader::Reader;
use crate::directory::write::Writer;
use crate::scim::error::ScimError;
use crate::telemetry::{self, Metrics};

/// Settings handlers need.
#[derive(Debug, Clone)]
pub struct HttpSettings {
    /// SCIM base URL (`…/scim/v2`), for `meta.location` and discovery documents.
    pub scim_base: String,
    /// The largest `count` honoured.
    pub max_count: usize,
    /// The most resources one answer holds (a list without `count`).
    pub max_results: usize,
    pub body_bytes: usize,
    /// Longest request URI.
    pub uri_bytes: usize,
    /// Deepest JSON nesting a body may have.
    pub json_depth: usize,
    /// Answers slower than this become 503: every client gives up at 60 s.
    pub request_timeout: Duration,
    /// What `/ServiceProviderConfig` advertises.
    pub capabilities: crate::scim::discovery::Capabilities,
    /// The full refresh's interval while the Directory Insights feed is not in use, and while it is (the
    /// same when `refresh.interval_s` is set), for `/readyz` and `/status`.
    pub refresh_interval_s: u64,
    pub refresh_interval_with_feed_s: u64,
    /// Where `/metrics` and `/status` are served and who may read them.
    pub ops: ops::OpsPlacement,
}

impl Default for HttpSettings {
    fn default() -> Self {
        HttpSettings {
            scim_base: "http://localhost/scim/v2".into(),
            max_count: 1000,
            max_results: 100_000,
            body_bytes: 1_048_576,
            uri_bytes: 16_384,
            json_depth: 32,
            request_timeout: Duration::from_secs(55),
            capabilities: crate::scim::discovery::Capabilities::default(),
            refresh_interval_s: 60,
            refresh_interval_with_feed_s: 3600,
            ops: ops::OpsPlacement::default(),
        }
    }
}

/// Everything handlers share: one reference-counted handle, since every layer and handler of every request
/// clones it (a clone is one count, not one per part).
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl AppState {
    pub fn new(shared: Shared) -> AppState {
        AppState(Arc::new(shared))
    }
}

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// What [`AppState`] holds.
pub struct Shared {
    pub store: Arc<Store>,
    pub auth: Arc<Authenticator>,
    pub settings: Arc<HttpSettings>,
    /// Wakes the refresher (`POST /admin/refresh`).
    pub refresh_now: Arc<Notify>,
    /// Carries writes to JumpCloud.
    pub writer: Arc<Writer>,
    /// What the SCIM read handlers read through: the latest snapshot, or the one a walk is pinned to.
    pub reader: Reader,
    /// Where client writes are recorded.
    pub audit: Arc<Audit>,
    /// Everything `/metrics` reports.
    pub metrics: Arc<Metrics>,
    /// Failed authentications by credential name.
    pub failed_auth: Arc<FailedAuth>,
    /// The Directory Insights feed's health, for `/readyz` and `/status`.
    pub feed: Arc<FeedHealth>,
    /// With replicas: the shared store, for `/readyz`, `/status` and `/metrics`.
    pub replicas: Option<Replicas>,
}

/// The shared store as the operations endpoints show it.
#[derive(Debug, Clone)]
pub struct Replicas {
    pub shared: Arc<crate::cache::replicas::Shared>,
    /// `store.url` with its password redacted.
    pub url: String,
}

/// What [`FrontLayer`] needs: the metrics it counts into, the request-id counter and the two limits it applies.
#[derive(Clone)]
struct Front {
    metrics: Arc<Metrics>,
    /// Request ids: a process-unique counter is enough to correlate log lines.
    ids: Arc<AtomicU64>,
    timeout: Duration,
    uri_limit: usize,
}

/// The request id's header, on the request (for the handlers and the audit) and on its answer.
static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

impl Front {
    /// The next `req-<n>`, written without a format string or a `String` of its own.
    fn next_id(&self) -> HeaderValue {
        let n = self.ids.fetch_add(1, Ordering::Relaxed) + 1;
        let mut digits = itoa::Buffer::new();
        let digits = digits.format(n).as_bytes();
        let mut buf = [0u8; 24];
        buf[..4].copy_from_slice(b"req-");
        buf[4..4 + digits.len()].copy_from_slice(digits);
        HeaderValue::from_bytes(&buf[..4 + digits.len()])
            .unwrap_or_else(|_| HeaderValue::from_static("req"))
    }
}

/// The whole application.
///
/// The SCIM routes are written out under `/scim/v2` rather than nested there: a nested router rewrites
/// every request's URI to strip its prefix, and the audit and error details want the path the client sent.
pub fn router(state: AppState) -> Router {
    let scim = scim_read::router()
        .merge(scim_write::router(state.clone()))
        // Auth as a route layer: unknown paths stay 404 rather than 401. The snapshot headers go on in the
        // same layer (and on the 404 of an unknown SCIM path by [`unmatched`]).
        .route_layer(ScimRouteLayer(state.clone()));
    let front_state = Front {
        metrics: state.metrics.clone(),
        ids: Arc::default(),
        timeout: state.settings.request_timeout,
        uri_limit: state.settings.uri_bytes,
    };
    let body_limit = state.settings.body_bytes;
    Router::new()
        .merge(scim)
        .merge(ops::router(state.clone()))
        .merge(oauth::router())
        .fallback(unmatched)
        .with_state(state)
        // The front layer (request id, tracking, deadline, URI limit, SCIM errors: one layer, so that a
        // request pays for one boxed future, not six and their copies of the stack below), then the body
        // limit, innermost, next to the extractors it protects.
        .layer(
            ServiceBuilder::new()
                .layer(FrontLayer(Arc::new(front_state)))
                .layer(tower_http::limit::RequestBodyLimitLayer::new(body_limit)),
        )
}

/// Every request, outermost first: the request id exists before tracking opens the request's span (every
/// line logged inside carries the id) and writes the one log line per request; tracking sits outside the
/// deadline, so a timed-out request is still counted and logged; inside the deadline, a URI too long is
/// refused, and whatever answers an error on a SCIM path (an extractor's rejection, the body limit below)
/// gets an RFC 7644 error body. The answer carries the request's id (`X-Request-Id`): the client's own when
/// it sent one, else `req-<n>`.
///
/// A layer of its own rather than `from_fn`: the routes below are called in place (no copy of the stack
/// below it, no boxed `Next`), and the request's one boxed future is its answer.
#[derive(Clone)]
struct FrontLayer(Arc<Front>);

impl<S> tower::Layer<S> for FrontLayer {
    type Service = FrontService<S>;

    fn layer(&self, inner: S) -> FrontService<S> {
        FrontService {
            front: self.0.clone(),
            inner,
        }
    }
}

#[derive(Clone)]
struct FrontService<S> {
    front: Arc<Front>,
    inner: S,
}

impl<S, B> tower::Service<Request> for FrontService<S>
where
    S: tower::Service<
            Request,
            Response = axum::http::Response<B>,
            Error = std::convert::Infallible,
        >,
    S::Future: Send + 'static,
    B: http_body::Body<Data = axum::body::Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    type Response = Response;
    type Error = std::convert::Infallible;
    type Future = std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<Response, std::convert::Infallible>> + Send>,
    >;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request) -> Self::Future {
        let front = self.front.clone();
        let id = request_id(&front, &mut req);
        let method = req.method().clone();
        let matched = req.extensions().get::<MatchedPath>().cloned();
        let scim_path = req.uri().path().starts_with("/scim/");
        // A URI too long is refused without calling the routes (as the layer inside the deadline did).
        let inner = match long_uri(front.uri_limit, &req) {
            Some(refused) => Err(refused),
            None => Ok(self.inner.call(req)),
        };
        Box::pin(async move {
            let answer = async {
                let within = async {
                    match inner {
                        Err(refused) => refused,
                        Ok(answer) => {
                            let Ok(resp) = answer.await;
                            scim_errors_only(scim_path, resp.into_response()).await
                        }
                    }
                };
                match tokio::time::timeout(front.timeout, within).await {
                    Ok(resp) => resp,
                    Err(_) => timed_out(front.timeout),
                }
            };
            let mut resp = telemetry::tracked(
                &front.metrics,
                &method,
                matched.as_ref().map(MatchedPath::as_str),
                id.to_str().unwrap_or("-"),
                answer,
            )
            .await;
            if !resp.headers().contains_key(&X_REQUEST_ID) {
                resp.headers_mut().insert(X_REQUEST_ID.clone(), id);
            }
            Ok(resp)
        })
    }
}

/// The request's id: the client's own `X-Request-Id`, else the next `req-<n>`, written into the request
/// (the handlers and the audit read it there).
fn request_id(front: &Front, req: &mut Request) -> HeaderValue {
    match req.headers().get(&X_REQUEST_ID) {
        Some(given) => given.clone(),
        None => {
            let id = front.next_id();
            req.headers_mut().insert(X_REQUEST_ID.clone(), id.clone());
            id
        }
    }
}

/// A URI longer than `limits.uri_bytes` is 414 with a SCIM error (longer still, past what the HTTP parser
/// reads, it gets the parser's own empty 414).
fn long_uri(limit: usize, req: &Request) -> Option<Response> {
    let len = req.uri().path_and_query().map_or(0, |pq| pq.as_str().len());
    if len > limit {
        return Some(ScimError::new(
            414,
            None,
            format!(
                "the request URI is {len} bytes; this service takes at most {limit} (limits.uri_bytes): send a \
                 long filter in the body of POST …/.search instead"
            ),
        )
        .into_response());
    }
    None
}

/// The answer to a request that outlived every client's patience (`limits.request_timeout_s`): the request
/// is cancelled (its future dropped); the answer carries no `Retry-After` and says why the same request would
/// fail the same way.
fn timed_out(limit: Duration) -> Response {
    ScimError::new(
        503,
        None,
        format!(
            "the request took longer than {} s (limits.request_timeout_s) and was cancelled; the same request \
             would take as long again: narrow it (a smaller count, a simpler filter, fewer operations), and \
             after a write, read the resource to see what was done",
            limit.as_secs()
        ),
    )
    .into_response()
}

/// Every `/scim/v2` route: the credential is checked ([`admit`]), then the answer gets the snapshot
/// headers ([`snapshot_headers`]).
///
/// A layer of its own rather than `from_fn`: a credential that can be checked at once (a bearer token, an
/// OAuth token, a Basic password verified recently) is, before the route is called, and the route is then
/// called in place (no copy of it, no boxed `Next`); only an argon2 verification waits with a copy.
#[derive(Clone)]
struct ScimRouteLayer(AppState);

impl<S> tower::Layer<S> for ScimRouteLayer {
    type Service = ScimRoute<S>;

    fn layer(&self, inner: S) -> ScimRoute<S> {
        ScimRoute {
            state: self.0.clone(),
            inner,
        }
    }
}

#[derive(Clone)]
struct ScimRoute<S> {
    state: AppState,
    inner: S,
}

type Answer = std::pin::Pin<
    Box<dyn std::future::Future<Output = Result<Response, std::convert::Infallible>> + Send>,
>;

impl<S> tower::Service<Request> for ScimRoute<S>
where
    S: tower::Service<Request, Response = Response, Error = std::convert::Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = std::convert::Infallible;
    type Future = Answer;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request) -> Answer {
        let state = self.state.clone();
        match admit(&state, &mut req) {
            Admitted::Now => {
                let answer = self.inner.call(req);
                Box::pin(async move {
                    let Ok(resp) = answer.await;
                    Ok(snapshot_headers(&state, resp))
                })
            }
            Admitted::Refused(resp) => Box::pin(async move { Ok(snapshot_headers(&state, resp)) }),
            Admitted::Pending(pending) => {
                // The route was made ready for this request: take it, and leave a copy for the next.
                let ready = self.inner.clone();
                let mut inner = std::mem::replace(&mut self.inner, ready);
                Box::pin(async move {
                    let resp = match pending.finish().await {
                        Ok(p) => {
                            req.extensions_mut().insert(p);
                            let Ok(resp) = inner.call(req).await;
                            resp
                        }
                        Err(e) => refused(&state, &req, e),
                    };
                    Ok(snapshot_headers(&state, resp))
                })
            }
        }
    }
}

/// What [`admit`] decided.
enum Admitted {
    /// The principal is in the request's extensions.
    Now,
    Refused(Response),
    /// An argon2 verification still to do.
    Pending(crate::auth::PendingCheck),
}

/// Every `/scim/v2` route needs a credential; the principal goes into the request's extensions. A name that
/// failed too often is answered 429 with `Retry-After` before its credential is looked at.
fn admit(state: &AppState, req: &mut Request) -> Admitted {
    // The name is only spelled out when some name is refused, or this credential failed.
    if state.failed_auth.refuses_any()
        && let Some(wait) = state.failed_auth.blocked(&failure_name(req))
    {
        return Admitted::Refused(too_many_failures(wait));
    }
    match state.auth.check(req.headers()) {
        crate::auth::Checked::Done(Ok(p)) => {
            req.extensions_mut().insert(p);
            Admitted::Now
        }
        crate::auth::Checked::Done(Err(e)) => Admitted::Refused(refused(state, req, e)),
        crate::auth::Checked::Pending(p) => Admitted::Pending(p),
    }
}

/// The name failed authentications are counted under.
fn failure_name(req: &Request) -> String {
    let peer = req.extensions().get::<server::PeerAddr>().map(|p| p.0.ip());
    crate::auth::failure_name(req.headers(), peer)
}

/// The answer to a credential refused: 401 with `WWW-Authenticate`, or 429 when this failure is one too many.
fn refused(state: &AppState, req: &Request, e: AuthError) -> Response {
    if e == AuthError::Invalid
        && let Some(wait) = state.failed_auth.failed(&failure_name(req))
    {
        return too_many_failures(wait);
    }
    let detail = match e {
        AuthError::Missing => "authentication required: send Authorization: Bearer <token>",
        AuthError::Invalid => "the credential presented is not valid",
    };
    let mut resp = ScimError::new(401, None, detail).into_response();
    resp.headers_mut().insert(
        "www-authenticate",
        HeaderValue::from_static("Bearer realm=\"jumpcloud-scim\""),
    );
    resp
}

/// Middleware: the operations endpoints that take a credential.
async fn authenticate(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    match admit(&state, &mut req) {
        Admitted::Now => next.run(req).await,
        Admitted::Refused(resp) => resp,
        Admitted::Pending(pending) => match pending.finish().await {
            Ok(p) => {
                req.extensions_mut().insert(p);
                next.run(req).await
            }
            Err(e) => refused(&state, &req, e),
        },
    }
}

/// 429 for a credential name that failed too often.
pub(crate) fn too_many_failures(wait: Duration) -> Response {
    let mut resp = ScimError::new(
        429,
        None,
        "this credential failed to authenticate too many times; wait before trying again \
         (limits.auth_failures_per_minute)",
    )
    .into_response();
    if let Ok(v) = HeaderValue::from_str(&wait.as_secs().max(1).to_string()) {
        resp.headers_mut().insert("retry-after", v);
    }
    resp
}

/// Every SCIM answer says which snapshot version it was made from and how old it is: handlers that read a
/// version set these themselves ([`support::add_snapshot_headers`]); the rest get the latest's.
fn snapshot_headers(state: &AppState, mut resp: Response) -> Response {
    if !resp.headers().contains_key(&support::X_SNAPSHOT_VERSION)
        && let Some(snap) = state.store.load()
    {
        support::add_snapshot_headers(&mut resp, &snap, &state.store);
    }
    resp
}

/// Turn any error answer that is not already a SCIM error (axum's plain-text rejections, the body limit's
/// 413) into one with the same status.
async fn scim_errors_only(scim_path: bool, resp: Response) -> Response {
    if !scim_path {
        return resp;
    }
    let status = resp.status();
    let is_scim = resp
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with(crate::scim::SCIM_CONTENT_TYPE));
    if status.as_u16() < 400 || is_scim {
        return resp;
    }
    let (parts, body) = resp.into_parts();
    let text = axum::body::to_bytes(body, 4096).await.unwrap_or_default();
    let detail = match std::str::from_utf8(&text).map(str::trim) {
        Ok(t) if !t.is_empty() => t.to_string(),
        _ => status.canonical_reason().unwrap_or("error").to_string(),
    };
    let detail = if status.as_u16() == 413 {
        "the request body is larger than this service accepts (limits.body_bytes)".to_string()
    } else {
        detail
    };
    let mut out = ScimError::new(status.as_u16(), None, detail).into_response();
    for (k, v) in parts.headers.iter() {
        if k != axum::http::header::CONTENT_TYPE && k != axum::http::header::CONTENT_LENGTH {
            out.headers_mut().insert(k.clone(), v.clone());
        }
    }
    out
}

/// A path no route matches: under `/scim/v2` a SCIM 404 with the snapshot headers, elsewhere a bare 404.
async fn unmatched(State(state): State<AppState>, req: Request) -> Response {
    let path = req.uri().path();
    if path == "/scim/v2" || path.starts_with("/scim/v2/") {
        snapshot_headers(&state, not_found(&req))
    } else {
        axum::http::StatusCode::NOT_FOUND.into_response()
    }
}

fn not_found(req: &Request) -> Response {
    let path = req.uri().path().to_string();
    let hint = if path.contains("/Users/Users") || path.contains("/Users/ServiceProviderConfig") {
        " (the base URL should end in /scim/v2, without /Users)"
    } else {
        ""
    };
    ScimError::new(404, None, format!("no SCIM endpoint at {path}{hint}")).into_response()
}

#[cfg(test)]
mod tests;
