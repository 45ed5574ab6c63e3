//! `JcClient`: the reqwest client for JumpCloud's v1 and v2 APIs.
//!
//! Owns URLs, headers (`x-api-key`, `x-org-id`), paging (v1 `{totalCount, results}`, v2 bare arrays with
//! `x-total-count`), the check of every list against its announced total, retries of reads, call/retry
//! counters and the per-call trace and observer hook. Writes are sent exactly once: whether a failed write
//! may be repeated depends on what it was, which only the caller knows.
//!
//! Must not know SCIM or the snapshot; it speaks only in [`model`](super::model) types.

use std::collections::HashSet;
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderMap, HeaderValue, RETRY_AFTER};
use reqwest::{Method, Url};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::error::{self, JcError};
use super::model::{
    AssocTarget, GraphConnection, GraphOp, JcDirectory, JcGroup, JcGroupWrite, JcUser, JcUserWrite,
    V1Page,
};
use super::retry::RetryPolicy;

/// Page size of every list: JumpCloud's maximum on v1 and v2.
const PAGE: u64 = 100;

/// A list longer than this many pages is taken as a server ignoring `skip`, not as a directory.
const MAX_PAGES: u64 = 10_000;

/// Told about every upstream request: route template (e.g. `GET /api/v2/usergroups/{id}/members`), HTTP status
/// (0 when no response arrived) and duration. For metrics; called on the request's task, so keep it cheap.
pub type RequestObserver = Arc<dyn Fn(&'static str, u16, Duration) + Send + Sync>;

/// Where and how to reach JumpCloud.
#[derive(Clone)]
pub struct JcClientConfig {
    /// e.g. `https://console.jumpcloud.com` (or `https://console.eu.jumpcloud.com`); `/api/...` is appended.
    pub base_url: String,
    /// Secret: never logged, redacted in `Debug`.
    pub api_key: String,
    /// Sent as `x-org-id` (multi-tenant admins need it); an empty string counts as none.
    pub org_id: Option<String>,
    /// Per call, connect to last body byte.
    pub timeout: Duration,
    /// How reads are retried. Writes are never retried here.
    pub retry: RetryPolicy,
    pub user_agent: String,
}

impl JcClientConfig {
    /// Defaults: no org id, 20 s per call, [`RetryPolicy::default`], a `jumpcloud-scim/<version>` user agent.
    pub fn new(base_url: impl Into<String>, api_key: impl Into<String>) -> Self {
        Self {
            base_url: base_url.into(),
            api_key: api_key.into(),
            org_id: None,
            timeout: Duration::from_secs(20),
            retry: RetryPolicy::default(),
            user_agent: concat!("jumpcloud-scim/", env!("CARGO_PKG_VERSION")).to_owned(),
        }
    }
}

impl fmt::Debug for JcClientConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JcClientConfig")
            .field("base_url", &self.base_url)
            .field("api_key", &"[redacted]")
            .field("org_id", &self.org_id)
            .field("timeout", &self.timeout)
            .field("retry", &self.retry)
            .field("user_agent", &self.user_agent)
            .finish()
    }
}

/// Monotonic counters since the client was built; diff two readings with [`ClientStats::since`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClientStats {
    /// Requests sent upstream, retries included.
    pub calls: u64,
    /// Retries of reads (each also counted in `calls`).
    pub retries: u64,
}

impl ClientStats {
    /// What happened between `earlier` and `self`.
    pub fn since(self, earlier: ClientStats) -> ClientStats {
        ClientStats {
            calls: self.calls.saturating_sub(earlier.calls),
            retries: self.retries.saturating_sub(earlier.retries),
        }
    }
}

/// A graph edge change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EdgeOp {
    Add,
    Remove,
}

impl EdgeOp {
    fn as_str(self) -> &'static str {
        match self {
            EdgeOp::Add => "add",
            EdgeOp::Remove => "remove",
        }
    }
}

/// What a graph write did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EdgeOutcome {
    /// JumpCloud made the change.
    Applied,
    /// The edge was already there (an add answered "Already Exists").
    AlreadyInState,
}

/// The JumpCloud API. Cheap to clone; clones share the connection pool and the counters.
#[derive(Clone)]
pub struct JcClient {
    inner: Arc<Inner>,
    /// Outside `inner` so it can be set after construction without a lock on every call.
    observer: Option<RequestObserver>,
}

struct Inner {
    http: reqwest::Client,
    base: Url,
    api_key: HeaderValue,
    /// Kept only to scrub it from any upstream text we keep.
    secret: String,
    org_id: Option<HeaderValue>,
    retry: RetryPolicy,
    calls: AtomicU64,
    retries: AtomicU64,
    /// Seeds a fresh jitter RNG per read, so reads never share (or lock) one.
    jitter_seed: AtomicU64,
}

/// A route: the method and the template that names it in traces and metrics.
#[derive(Clone, Copy)]
struct Route {
    method: Verb,
    template: &'static str,
}

#[derive(Clone, Copy)]
enum Verb {
    Get,
    Post,
    Put,
    Delete,
}

const fn route(method: Verb, template: &'static str) -> Route {
    Route { method, template }
}

const LIST_USERS: Route = route(Verb::Get, "GET /api/systemusers");
const GET_USER: Route = route(Verb::Get, "GET /api/systemusers/{id}");
const CREATE_USER: Route = route(Verb::Post, "POST /api/systemusers");
const UPDATE_USER: Route = route(Verb::Put, "PUT /api/systemusers/{id}");
const DELETE_USER: Route = route(Verb::Delete, "DELETE /api/systemusers/{id}");
const LIST_ORGS: Route = route(Verb::Get, "GET /api/organizations");
const LIST_GROUPS: Route = route(Verb::Get, "GET /api/v2/usergroups");
const GET_GROUP: Route = route(Verb::Get, "GET /api/v2/usergroups/{id}");
const CREATE_GROUP: Route = route(Verb::Post, "POST /api/v2/usergroups");
const PUT_GROUP: Route = route(Verb::Put, "PUT /api/v2/usergroups/{id}");
const DELETE_GROUP: Route = route(Verb::Delete, "DELETE /api/v2/usergroups/{id}");
const LIST_MEMBERS: Route = route(Verb::Get, "GET /api/v2/usergroups/{id}/members");
const EDIT_MEMBERS: Route = route(Verb::Post, "POST /api/v2/usergroups/{id}/members");
const LIST_DIRECTORIES: Route = route(Verb::Get, "GET /api/v2/directories");

fn list_assoc_route(collection: &str) -> Route {
    match collection {
        "activedirectories" => route(Verb::Get, "GET /api/v2/activedirectories/{id}/associations"),
        "gsuites" => route(Verb::Get, "GET /api/v2/gsuites/{id}/associations"),
        _ => route(Verb::Get, "GET /api/v2/office365s/{id}/associations"),
    }
}

fn edit_assoc_route(collection: &str) -> Route {
    match collection {
        "activedirectories" => route(
            Verb::Post,
            "POST /api/v2/activedirectories/{id}/associations",
        ),
        "gsuites" => route(Verb::Post, "POST /api/v2/gsuites/{id}/associations"),
        _ => route(Verb::Post, "POST /api/v2/office365s/{id}/associations"),
    }
}

/// One request, ready to send (and to send again, for reads).
struct Call<'a> {
    route: Route,
    segments: Vec<&'a str>,
    query: Vec<(&'static str, String)>,
    /// JSON, serialized once.
    body: Option<Vec<u8>>,
    /// `/api/organizations` refuses `x-org-id`.
    org_header: bool,
}

impl<'a> Call<'a> {
    fn new(route: Route, segments: Vec<&'a str>) -> Self {
        Call {
            route,
            segments,
            query: Vec::new(),
            body: None,
            org_header: true,
        }
    }

    fn query(mut self, key: &'static str, value: impl Into<String>) -> Self {
        self.query.push((key, value.into()));
        self
    }

    fn json(mut self, body: &impl Serialize) -> Result<Self, JcError> {
        let bytes = serde_json::to_vec(body)
            .map_err(|e| JcError::protocol(format!("cannot encode request body: {e}")))?;
        self.body = Some(bytes);
        Ok(self)
    }
}

/// A 2xx answer.
struct Reply {
    headers: HeaderMap,
    body: Vec<u8>,
}

/// Config problems surface as `Protocol` errors: the caller gave us something we cannot speak with.
fn bad_config(what: &str) -> JcError {
    JcError::protocol(format!("invalid JumpCloud client configuration: {what}"))
}

/// An id placed in a path. `.`/`..` would be dropped by URL normalisation and turn `GET /systemusers/..` into
/// the list; such ids (and empty ones) cannot name an object, so they are "not found" without a call.
fn path_id(id: &str) -> Result<&str, JcError> {
    if id.is_empty() || id == "." || id == ".." {
        Err(JcError::NotFound {
            message: format!("no object has the id {id:?}"),
        })
    } else {
        Ok(id)
    }
}

fn parse<T: DeserializeOwned>(route: Route, body: &[u8]) -> Result<T, JcError> {
    serde_json::from_slice(body).map_err(|e| {
        JcError::protocol(format!(
            "{}: response body did not parse: {e}",
            route.template
        ))
    })
}

/// 404 on a single-object read means "there is no such object".
fn found<T>(result: Result<T, JcError>) -> Result<Option<T>, JcError> {
    match result {
        Ok(v) => Ok(Some(v)),
        Err(JcError::NotFound { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

// === impl JcClient ===

impl JcClient {
    /// Validate `config` and build the HTTP client. Fails on an unusable base URL, key, org id, timeout or
    /// user agent; no request is made.
    pub fn new(config: JcClientConfig) -> Result<Self, JcError> {
        let base = Url::parse(config.base_url.trim())
            .map_err(|e| bad_config(&format!("base_url {:?}: {e}", config.base_url)))?;
        if !matches!(base.scheme(), "http" | "https")
            || base.cannot_be_a_base()
            || base.query().is_some()
        {
            return Err(bad_config(&format!(
                "base_url {:?} must be an http(s) URL without a query",
                config.base_url
            )));
        }
        if config.api_key.trim().is_empty() {
            return Err(bad_config("api_key is empty"));
        }
        let mut api_key = HeaderValue::from_str(&config.api_key)
            .map_err(|_| bad_config("api_key is not a valid header value"))?;
        api_key.set_sensitive(true);
        let org_id = match config.org_id.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(org) => Some(
                HeaderValue::from_str(org)
                    .map_err(|_| bad_config("org_id is not a valid header value"))?,
            ),
        };
        if config.timeout.is_zero() {
            return Err(bad_config("timeout must be greater than zero"));
        }
        let user_agent = HeaderValue::from_str(&config.user_agent)
            .map_err(|_| bad_config("user_agent is not a valid header value"))?;
        let mut headers = HeaderMap::new();
        headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
        let http = reqwest::Client::builder()
            .default_headers(headers)
            .user_agent(user_agent)
            .timeout(config.timeout)
            // A separate connect timeout makes a dead host a connect error: provably not sent.
            .connect_timeout(config.timeout.min(Duration::from_secs(10)))
            // reqwest strips only well-known credential headers on redirect; x-api-key would travel on.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| bad_config(&format!("cannot build the HTTP client: {e}")))?;
        Ok(Self {
            inner: Arc::new(Inner {
                http,
                base,
                api_key,
                secret: config.api_key,
                org_id,
                retry: config.retry,
                calls: AtomicU64::new(0),
                retries: AtomicU64::new(0),
                jitter_seed: AtomicU64::new(initial_seed()),
            }),
            observer: None,
        })
    }

    /// Count upstream requests by route template and status (e.g. into metrics). Clones made afterwards share it.
    pub fn set_observer(&mut self, f: RequestObserver) {
        self.observer = Some(f);
    }

    /// Calls and retries so far.
    pub fn stats(&self) -> ClientStats {
        ClientStats {
            calls: self.inner.calls.load(Ordering::Relaxed),
            retries: self.inner.retries.load(Ordering::Relaxed),
        }
    }

    // === reads: idempotent, retried per policy, lists checked against their totals ===

    /// Every system user, in `_id` order.
    pub async fn list_users(&self) -> Result<Vec<JcUser>, JcError> {
        self.v1_list(
            LIST_USERS,
            &["api", "systemusers"],
            Vec::new(),
            true,
            |u: &JcUser| Some(u.id.as_str()),
        )
        .await
    }

    /// One user; `None` when JumpCloud answers 404.
    pub async fn get_user(&self, id: &str) -> Result<Option<JcUser>, JcError> {
        let Ok(id) = path_id(id) else {
            return Ok(None);
        };
        found(
            self.get_one(Call::new(GET_USER, vec!["api", "systemusers", id]))
                .await,
        )
    }

    /// Users whose `field` equals `value` exactly (v1 `filter=field:$eq:value`; case-sensitive upstream).
    pub async fn find_users(&self, field: &str, value: &str) -> Result<Vec<JcUser>, JcError> {
        if field.is_empty() || field.contains(':') {
            return Err(JcError::Rejected {
                status: 400,
                message: format!("cannot filter on field {field:?}"),
                field_violations: Vec::new(),
            });
        }
        self.v1_list(
            LIST_USERS,
            &["api", "systemusers"],
            vec![("filter", format!("{field}:$eq:{value}"))],
            true,
            |u: &JcUser| Some(u.id.as_str()),
        )
        .await
    }

    /// Every user group, in `id` order.
    pub async fn list_groups(&self) -> Result<Vec<JcGroup>, JcError> {
        self.v2_list(
            LIST_GROUPS,
            &["api", "v2", "usergroups"],
            vec![("sort", "id".to_owned())],
            |g: &JcGroup| Some(g.id.as_str()),
        )
        .await
    }

    /// One user group; `None` when JumpCloud answers 404.
    pub async fn get_group(&self, id: &str) -> Result<Option<JcGroup>, JcError> {
        let Ok(id) = path_id(id) else {
            return Ok(None);
        };
        found(
            self.get_one(Call::new(GET_GROUP, vec!["api", "v2", "usergroups", id]))
                .await,
        )
    }

    /// Ids of the users directly in a group. An unknown group is `NotFound`.
    pub async fn list_group_members(&self, group_id: &str) -> Result<Vec<String>, JcError> {
        let group_id = path_id(group_id)?;
        let items = self
            .v2_list(
                LIST_MEMBERS,
                &["api", "v2", "usergroups", group_id, "members"],
                Vec::new(),
                |c: &GraphConnection| Some(c.to.id.as_str()),
            )
            .await?;
        Ok(items
            .into_iter()
            .filter(|c| c.to.kind.eq_ignore_ascii_case("user"))
            .map(|c| c.to.id)
            .collect())
    }

    /// Every directory (Active Directory, Google Workspace, Microsoft 365, LDAP, Workday, …).
    pub async fn list_directories(&self) -> Result<Vec<JcDirectory>, JcError> {
        self.v2_list(
            LIST_DIRECTORIES,
            &["api", "v2", "directories"],
            Vec::new(),
            |d: &JcDirectory| Some(d.id.as_str()),
        )
        .await
    }

    /// Ids of the users or user groups directly associated with an AD, Google Workspace or M365 directory.
    /// Other kinds have no such associations: `Protocol` error without a call.
    pub async fn list_directory_associations(
        &self,
        dir: &JcDirectory,
        target: AssocTarget,
    ) -> Result<Vec<String>, JcError> {
        let collection = directory_collection(dir)?;
        let dir_id = path_id(&dir.id)?;
        let items = self
            .v2_list(
                list_assoc_route(collection),
                &["api", "v2", collection, dir_id, "associations"],
                vec![("targets", target.as_str().to_owned())],
                |c: &GraphConnection| Some(c.to.id.as_str()),
            )
            .await?;
        Ok(items
            .into_iter()
            // An edge without a type is taken to be what we asked for.
            .filter(|c| c.to.kind.is_empty() || c.to.kind.eq_ignore_ascii_case(target.as_str()))
            .map(|c| c.to.id)
            .collect())
    }

    /// The organizations the key can see (v1 envelope). Sent without `x-org-id`, which this route refuses.
    pub async fn list_organizations(&self) -> Result<Vec<serde_json::Value>, JcError> {
        self.v1_list(
            LIST_ORGS,
            &["api", "organizations"],
            Vec::new(),
            false,
            |o: &serde_json::Value| {
                o.get("_id")
                    .or_else(|| o.get("id"))
                    .and_then(|v| v.as_str())
            },
        )
        .await
    }

    // === writes: sent once; the caller decides what a failure means ===

    /// Create a user (`200` on JumpCloud). A duplicate username/email/employeeIdentifier is a 400 `Rejected`.
    /// A `Transient` error with `sent: true` may mean the user exists now: look it up before trying again.
    pub async fn create_user(&self, body: &JcUserWrite) -> Result<JcUser, JcError> {
        let call = Call::new(CREATE_USER, vec!["api", "systemusers"])
            .query("fullValidationDetails", "password")
            .json(body)?;
        let reply = self.send_once(&call).await?;
        parse(CREATE_USER, &reply.body)
    }

    /// Merge `body` into a user: named fields change, arrays in it replace JumpCloud's, the rest stays.
    pub async fn update_user(&self, id: &str, body: &JcUserWrite) -> Result<JcUser, JcError> {
        let id = path_id(id)?;
        let call = Call::new(UPDATE_USER, vec!["api", "systemusers", id])
            .query("fullValidationDetails", "password")
            .json(body)?;
        let reply = self.send_once(&call).await?;
        parse(UPDATE_USER, &reply.body)
    }

    /// Delete a user. Without `cascade_manager`, deleting someone's manager is a 409 `Conflict`; with it,
    /// JumpCloud first clears `manager` on the direct reports. The returned body (the deleted user) is ignored.
    pub async fn delete_user(&self, id: &str, cascade_manager: bool) -> Result<(), JcError> {
        let id = path_id(id)?;
        let mut call = Call::new(DELETE_USER, vec!["api", "systemusers", id]);
        if cascade_manager {
            call = call.query("cascade_manager", "null");
        }
        self.send_once(&call).await.map(drop)
    }

    /// Create a user group (`201`). A name taken (case-insensitively) comes back as `Conflict` or `Rejected`.
    pub async fn create_group(&self, body: &JcGroupWrite) -> Result<JcGroup, JcError> {
        let call = Call::new(CREATE_GROUP, vec!["api", "v2", "usergroups"]).json(body)?;
        let reply = self.send_once(&call).await?;
        parse(CREATE_GROUP, &reply.body)
    }

    /// Replace a user group: whatever `body` leaves `None` is cleared upstream.
    pub async fn put_group(&self, id: &str, body: &JcGroupWrite) -> Result<JcGroup, JcError> {
        let id = path_id(id)?;
        let call = Call::new(PUT_GROUP, vec!["api", "v2", "usergroups", id]).json(body)?;
        let reply = self.send_once(&call).await?;
        parse(PUT_GROUP, &reply.body)
    }

    /// Delete a user group (JumpCloud answers 200 with the group, or 204).
    pub async fn delete_group(&self, id: &str) -> Result<(), JcError> {
        let id = path_id(id)?;
        self.send_once(&Call::new(
            DELETE_GROUP,
            vec!["api", "v2", "usergroups", id],
        ))
        .await
        .map(drop)
    }

    /// Add a user to, or remove one from, a group (`204`). Adding a member again is `AlreadyInState`.
    pub async fn group_member(
        &self,
        group_id: &str,
        op: EdgeOp,
        user_id: &str,
    ) -> Result<EdgeOutcome, JcError> {
        let group_id = path_id(group_id)?;
        let body = GraphOp {
            op: op.as_str(),
            kind: "user",
            id: user_id,
        };
        let call = Call::new(
            EDIT_MEMBERS,
            vec!["api", "v2", "usergroups", group_id, "members"],
        )
        .json(&body)?;
        edge_outcome(op, self.send_once(&call).await)
    }

    /// Bind a user or user group to (or unbind it from) an AD, Google Workspace or M365 directory (`204`).
    pub async fn directory_association(
        &self,
        dir: &JcDirectory,
        op: EdgeOp,
        target: AssocTarget,
        id: &str,
    ) -> Result<EdgeOutcome, JcError> {
        let collection = directory_collection(dir)?;
        let dir_id = path_id(&dir.id)?;
        let body = GraphOp {
            op: op.as_str(),
            kind: target.as_str(),
            id,
        };
        let call = Call::new(
            edit_assoc_route(collection),
            vec!["api", "v2", collection, dir_id, "associations"],
        )
        .json(&body)?;
        edge_outcome(op, self.send_once(&call).await)
    }

    // === plumbing ===

    async fn get_one<T: DeserializeOwned>(&self, call: Call<'_>) -> Result<T, JcError> {
        let reply = self.send_read(&call).await?;
        parse(call.route, &reply.body)
    }

    /// All pages of a v1 list (`{totalCount, results}`), sorted by `_id` so `skip` paging is stable.
    async fn v1_list<T: DeserializeOwned>(
        &self,
        route: Route,
        segments: &[&str],
        extra: Vec<(&'static str, String)>,
        org_header: bool,
        id_of: impl Fn(&T) -> Option<&str>,
    ) -> Result<Vec<T>, JcError> {
        collect_pages(
            route,
            |skip| {
                let mut call = Call::new(route, segments.to_vec());
                call.org_header = org_header;
                call.query.extend(extra.iter().cloned());
                let call = call
                    .query("limit", PAGE.to_string())
                    .query("skip", skip.to_string())
                    .query("sort", "_id");
                async move {
                    let reply = self.send_read(&call).await?;
                    let page: V1Page<T> = parse(route, &reply.body)?;
                    Ok((page.results, page.total_count))
                }
            },
            id_of,
        )
        .await
    }

    /// All pages of a v2 list (bare array, total in `x-total-count`).
    async fn v2_list<T: DeserializeOwned>(
        &self,
        route: Route,
        segments: &[&str],
        extra: Vec<(&'static str, String)>,
        id_of: impl Fn(&T) -> Option<&str>,
    ) -> Result<Vec<T>, JcError> {
        collect_pages(
            route,
            |skip| {
                let mut call = Call::new(route, segments.to_vec());
                call.query.extend(extra.iter().cloned());
                let call = call
                    .query("limit", PAGE.to_string())
                    .query("skip", skip.to_string());
                async move {
                    let reply = self.send_read(&call).await?;
                    let total = match reply.headers.get("x-total-count") {
                        None => None,
                        Some(v) => Some(
                            v.to_str()
                                .ok()
                                .and_then(|s| s.trim().parse::<u64>().ok())
                                .ok_or_else(|| {
                                    JcError::protocol(format!(
                                        "{}: x-total-count {v:?} is not a count",
                                        route.template
                                    ))
                                })?,
                        ),
                    };
                    let items: Vec<T> = parse(route, &reply.body)?;
                    Ok((items, total))
                }
            },
            id_of,
        )
        .await
    }

    /// A read: retried on transient failures per the policy, each retry counted and traced.
    async fn send_read(&self, call: &Call<'_>) -> Result<Reply, JcError> {
        let seed = self
            .inner
            .jitter_seed
            .fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed);
        let mut rng = <rand::rngs::SmallRng as rand::SeedableRng>::seed_from_u64(seed);
        let template = call.route.template;
        self.inner
            .retry
            .run_observed(
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

    /// One request. 2xx → `Reply`; anything else → a classified `JcError`.
    async fn send_once(&self, call: &Call<'_>) -> Result<Reply, JcError> {
        let inner = &*self.inner;
        let mut url = inner.base.clone();
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
            .header("x-api-key", inner.api_key.clone());
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

        inner.calls.fetch_add(1, Ordering::Relaxed);
        let started = tokio::time::Instant::now();
        let answer = match request.send().await {
            Err(e) => Err(error::from_transport(e, &inner.secret)),
            Ok(response) => {
                let status = response.status().as_u16();
                let headers = response.headers().clone();
                match response.bytes().await {
                    Ok(body) => Ok((status, headers, body.to_vec())),
                    // The status line arrived, so the request did too.
                    Err(e) => Err(match error::from_transport(e, &inner.secret) {
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
            observe(call.route.template, status, elapsed);
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
            &inner.secret,
        ))
    }
}

impl fmt::Debug for JcClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JcClient")
            .field("base_url", &self.inner.base.as_str())
            .field("api_key", &"[redacted]")
            .field("org_id", &self.inner.org_id)
            .field("retry", &self.inner.retry)
            .field("observer", &self.observer.is_some())
            .finish()
    }
}

fn initial_seed() -> u64 {
    use rand::TryRngCore;
    rand::rngs::OsRng
        .try_next_u64()
        // Jitter only needs to differ between processes; the clock is good enough when the OS is not.
        .unwrap_or_else(|_| jiff::Timestamp::now().as_nanosecond() as u64)
}

fn directory_collection(dir: &JcDirectory) -> Result<&'static str, JcError> {
    dir.kind.collection().ok_or_else(|| {
        JcError::protocol(format!(
            "directory {} of type {:?} has no user or group associations",
            dir.id,
            dir.kind.as_str()
        ))
    })
}

/// Graph writes answer 204. Adding an edge that exists answers `{"message":"Already Exists"}` — most likely with
/// 409, but the status is not documented, so a 400 saying the same is read the same way.
fn edge_outcome(op: EdgeOp, result: Result<Reply, JcError>) -> Result<EdgeOutcome, JcError> {
    match result {
        Ok(_) => Ok(EdgeOutcome::Applied),
        Err(JcError::Conflict { .. }) if op == EdgeOp::Add => Ok(EdgeOutcome::AlreadyInState),
        Err(JcError::Rejected { message, .. })
            if op == EdgeOp::Add && message.to_ascii_lowercase().contains("already exists") =>
        {
            Ok(EdgeOutcome::AlreadyInState)
        }
        Err(e) => Err(e),
    }
}

/// Fetch pages at `skip = 0, 100, 200, …` and check them against the total the first page announced: every
/// page but the last holds exactly 100, the last holds the rest, the total does not move while we page, and no
/// id repeats (which would mean the list shifted under us). Without a total (header or field missing), pages
/// run until one comes back short.
async fn collect_pages<T, F, Fut>(
    route: Route,
    mut fetch: F,
    id_of: impl Fn(&T) -> Option<&str>,
) -> Result<Vec<T>, JcError>
where
    F: FnMut(u64) -> Fut,
    Fut: Future<Output = Result<(Vec<T>, Option<u64>), JcError>>,
{
    let name = route.template;
    let mut out: Vec<T> = Vec::new();
    let mut seen: HashSet<String> = HashSet::new();
    let mut announced: Option<Option<u64>> = None;
    let mut skip = 0u64;
    for _ in 0..MAX_PAGES {
        let (items, total) = fetch(skip).await?;
        let total = match announced {
            None => {
                if total.is_none() {
                    tracing::debug!(
                        route = name,
                        "list carries no total; paging to a short page"
                    );
                }
                announced = Some(total);
                total
            }
            Some(first) if first == total => first,
            Some(first) => {
                return Err(JcError::protocol(format!(
                    "{name}: total changed from {} to {} while paging",
                    show(first),
                    show(total)
                )));
            }
        };
        let got = items.len() as u64;
        if let Some(total) = total {
            let expected = PAGE.min(total.saturating_sub(skip));
            if got != expected {
                return Err(JcError::protocol(format!(
                    "{name}: page at skip={skip} has {got} items, expected {expected} of {total}"
                )));
            }
        } else if got > PAGE {
            return Err(JcError::protocol(format!(
                "{name}: page at skip={skip} has {got} items, more than the limit {PAGE}"
            )));
        }
        for item in &items {
            if let Some(id) = id_of(item)
                && !seen.insert(id.to_owned())
            {
                return Err(JcError::protocol(format!(
                    "{name}: id {id} appears twice (the list changed while paging)"
                )));
            }
        }
        out.extend(items);
        skip += PAGE;
        let done = match total {
            Some(total) => skip >= total,
            None => got < PAGE,
        };
        if done {
            return Ok(out);
        }
    }
    Err(JcError::protocol(format!(
        "{name}: more than {MAX_PAGES} pages; the server seems to ignore skip"
    )))
}

fn show(total: Option<u64>) -> String {
    total.map_or_else(|| "none".to_owned(), |t| t.to_string())
}
