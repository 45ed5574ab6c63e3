//! `JcClient`: the reqwest client for JumpCloud's v1 and v2 APIs.
//!
//! Owns URLs, headers (`x-api-key`, `x-org-id`), paging (v1 `{totalCount, results}`, v2 bare arrays with
//! `x-total-count`), the check of every list against its announced total, retries of reads, call/retry
//! counters and the per-call trace and observer hook. Every call passes the
//! [`UpstreamGuard`](super::resilience::UpstreamGuard): the circuit breaker (fail fast while open), the bound on
//! calls in flight, and for read retries the retry budget. Writes are sent exactly once: whether a failed write
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
    AssocTarget, GraphConnection, GraphOp, JcDirectory, JcDirectoryKind, JcGroup, JcGroupWrite,
    JcUser, JcUserWrite, V1Page,
};
use super::resilience::{
    Breaker, BreakerConfig, BudgetConfig, DEFAULT_MAX_IN_FLIGHT, UpstreamGuard,
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
    /// How many read retries may be spent, as a share of recent reads plus a floor.
    pub retry_budget: BudgetConfig,
    /// When to stop calling JumpCloud and fail fast, and for how long.
    pub breaker: BreakerConfig,
    /// Upstream calls in flight at once, across all clones of the client.
    pub max_in_flight: usize,
    pub user_agent: String,
}

impl JcClientConfig {
    /// Defaults: no org id, 20 s per call, [`RetryPolicy::default`], [`BudgetConfig::default`],
    /// [`BreakerConfig::default`], [`DEFAULT_MAX_IN_FLIGHT`] calls in flight, a `jumpcloud-scim/<version>` user
    /// agent.
    pub fn new(base_url: impl Into<String>, api_key: impl Into<String>) -> Self {
        Self {
            base_url: base_url.into(),
            api_key: api_key.into(),
            org_id: None,
            timeout: Duration::from_secs(20),
            retry: RetryPolicy::default(),
            retry_budget: BudgetConfig::default(),
            breaker: BreakerConfig::default(),
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
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
            .field("retry_budget", &self.retry_budget)
            .field("breaker", &self.breaker)
            .field("max_in_flight", &self.max_in_flight)
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
    /// Calls refused by the open circuit breaker (not in `calls`: nothing was sent).
    pub failed_fast: u64,
    /// Read retries the retry budget refused.
    pub retries_refused: u64,
}

impl ClientStats {
    /// What happened between `earlier` and `self`.
    pub fn since(self, earlier: ClientStats) -> ClientStats {
        ClientStats {
            calls: self.calls.saturating_sub(earlier.calls),
            retries: self.retries.saturating_sub(earlier.retries),
            failed_fast: self.failed_fast.saturating_sub(earlier.failed_fast),
            retries_refused: self.retries_refused.saturating_sub(earlier.retries_refused),
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

/// The API key as sent, and as scrubbed from any upstream text we keep.
struct Key {
    header: HeaderValue,
    secret: String,
}

impl Key {
    fn new(api_key: &str) -> Result<Key, JcError> {
        if api_key.trim().is_empty() {
            return Err(bad_config("api_key is empty"));
        }
        let mut header = HeaderValue::from_str(api_key)
            .map_err(|_| bad_config("api_key is not a valid header value"))?;
        header.set_sensitive(true);
        Ok(Key {
            header,
            secret: api_key.to_owned(),
        })
    }
}

struct Inner {
    http: reqwest::Client,
    base: Url,
    /// Swapped whole when the key is rotated; every request reads the current one.
    key: arc_swap::ArcSwap<Key>,
    org_id: Option<HeaderValue>,
    retry: RetryPolicy,
    /// Breaker, retry budget and in-flight bound: shared by every clone, as JumpCloud's health is.
    guard: UpstreamGuard,
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

/// A directory kind's association collection with its list and edit routes.
struct AssocRoutes {
    collection: &'static str,
    list: Route,
    edit: Route,
}

/// Only AD, Google Workspace and M365 directories have user/group associations; for other kinds the answer is a
/// `Protocol` error, without a call.
fn assoc_routes(dir: &JcDirectory) -> Result<AssocRoutes, JcError> {
    let (collection, list, edit) = match dir.kind {
        JcDirectoryKind::ActiveDirectory => (
            "activedirectories",
            "GET /api/v2/activedirectories/{id}/associations",
            "POST /api/v2/activedirectories/{id}/associations",
        ),
        JcDirectoryKind::GSuite => (
            "gsuites",
            "GET /api/v2/gsuites/{id}/associations",
            "POST /api/v2/gsuites/{id}/associations",
        ),
        JcDirectoryKind::Office365 => (
            "office365s",
            "GET /api/v2/office365s/{id}/associations",
            "POST /api/v2/office365s/{id}/associations",
        ),
        JcDirectoryKind::Other(ref kind) => {
            return Err(JcError::protocol(format!(
                "directory {} of type {kind:?} has no user or group associations",
                dir.id
            )));
        }
    };
    Ok(AssocRoutes {
        collection,
        list: route(Verb::Get, list),
        edit: route(Verb::Post, edit),
    })
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

/// An object JumpCloud identifies by id.
trait WireObject {
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
fn parse_object<T: DeserializeOwned + WireObject>(route: Route, body: &[u8]) -> Result<T, JcError> {
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
        let key = Key::new(&config.api_key)?;
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
        let guard = UpstreamGuard::new(config.breaker, config.retry_budget, config.max_in_flight)
            .map_err(|e| bad_config(&e.to_string()))?;
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
                key: arc_swap::ArcSwap::from_pointee(key),
                org_id,
                retry: config.retry,
                guard,
                calls: AtomicU64::new(0),
                retries: AtomicU64::new(0),
                jitter_seed: AtomicU64::new(initial_seed()),
            }),
            observer: None,
        })
    }

    /// Use `api_key` from the next call on (a rotated key); every clone shares it.
    pub fn set_api_key(&self, api_key: &str) -> Result<(), JcError> {
        self.inner.key.store(Arc::new(Key::new(api_key)?));
        Ok(())
    }

    /// Count upstream requests by route template and status (e.g. into metrics). Clones made afterwards share it.
    pub fn set_observer(&mut self, f: RequestObserver) {
        self.observer = Some(f);
    }

    /// Calls, retries and refusals so far.
    pub fn stats(&self) -> ClientStats {
        ClientStats {
            calls: self.inner.calls.load(Ordering::Relaxed),
            retries: self.inner.retries.load(Ordering::Relaxed),
            failed_fast: self.inner.guard.failed_fast(),
            retries_refused: self.inner.guard.retries_refused(),
        }
    }

    /// The circuit breaker every call asks first: its state for a gauge, and
    /// [`wait_until_callable`](Breaker::wait_until_callable) for work that should wait rather than fail.
    pub fn breaker(&self) -> &Breaker {
        self.inner.guard.breaker()
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
    /// Other kinds have no such associations: `Protocol` error, without a call.
    pub async fn list_directory_associations(
        &self,
        dir: &JcDirectory,
        target: AssocTarget,
    ) -> Result<Vec<String>, JcError> {
        let routes = assoc_routes(dir)?;
        let dir_id = path_id(&dir.id)?;
        let items = self
            .v2_list(
                routes.list,
                &["api", "v2", routes.collection, dir_id, "associations"],
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

    // === totals: one page of one item, for `check` ===

    /// How many system users JumpCloud holds (`totalCount` of one page of one).
    pub async fn count_users(&self) -> Result<u64, JcError> {
        let call = Call::new(LIST_USERS, vec!["api", "systemusers"])
            .query("limit", "1".to_owned())
            .query("skip", "0".to_owned());
        let reply = self.send_read(&call).await?;
        let page: V1Page<serde_json::Value> = parse(LIST_USERS, &reply.body)?;
        Ok(page.total_count.unwrap_or(page.results.len() as u64))
    }

    /// How many user groups JumpCloud holds (`x-total-count` of one page of one).
    pub async fn count_groups(&self) -> Result<u64, JcError> {
        self.v2_count(LIST_GROUPS, &["api", "v2", "usergroups"])
            .await
    }

    /// How many directories JumpCloud lists (`x-total-count` of one page of one).
    pub async fn count_directories(&self) -> Result<u64, JcError> {
        self.v2_count(LIST_DIRECTORIES, &["api", "v2", "directories"])
            .await
    }

    async fn v2_count(&self, route: Route, segments: &[&str]) -> Result<u64, JcError> {
        let call = Call::new(route, segments.to_vec())
            .query("limit", "1".to_owned())
            .query("skip", "0".to_owned());
        let reply = self.send_read(&call).await?;
        let items: Vec<serde_json::Value> = parse(route, &reply.body)?;
        Ok(reply
            .headers
            .get("x-total-count")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(items.len() as u64))
    }

    // === writes: sent once; the caller decides what a failure means ===

    /// Create a user (`200` on JumpCloud). A duplicate username/email/employeeIdentifier is a 400 `Rejected`.
    /// A `Transient` error with `sent: true` may mean the user exists now: look it up before trying again.
    pub async fn create_user(&self, body: &JcUserWrite) -> Result<JcUser, JcError> {
        let call = Call::new(CREATE_USER, vec!["api", "systemusers"])
            .query("fullValidationDetails", "password")
            .json(body)?;
        let reply = self.send_once(&call).await?;
        parse_object(CREATE_USER, &reply.body)
    }

    /// Merge `body` into a user: named fields change, arrays in it replace JumpCloud's, the rest stays.
    pub async fn update_user(&self, id: &str, body: &JcUserWrite) -> Result<JcUser, JcError> {
        let id = path_id(id)?;
        let call = Call::new(UPDATE_USER, vec!["api", "systemusers", id])
            .query("fullValidationDetails", "password")
            .json(body)?;
        let reply = self.send_once(&call).await?;
        parse_object(UPDATE_USER, &reply.body)
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
        parse_object(CREATE_GROUP, &reply.body)
    }

    /// Replace a user group: whatever `body` leaves `None` is cleared upstream.
    pub async fn put_group(&self, id: &str, body: &JcGroupWrite) -> Result<JcGroup, JcError> {
        let id = path_id(id)?;
        let call = Call::new(PUT_GROUP, vec!["api", "v2", "usergroups", id]).json(body)?;
        let reply = self.send_once(&call).await?;
        parse_object(PUT_GROUP, &reply.body)
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
        let routes = assoc_routes(dir)?;
        let dir_id = path_id(&dir.id)?;
        let body = GraphOp {
            op: op.as_str(),
            kind: target.as_str(),
            id,
        };
        let call = Call::new(
            routes.edit,
            vec!["api", "v2", routes.collection, dir_id, "associations"],
        )
        .json(&body)?;
        edge_outcome(op, self.send_once(&call).await)
    }

    // === plumbing ===

    async fn get_one<T: DeserializeOwned + WireObject>(
        &self,
        call: Call<'_>,
    ) -> Result<T, JcError> {
        let reply = self.send_read(&call).await?;
        parse_object(call.route, &reply.body)
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

    /// A read: retried on transient failures per the policy while the retry budget allows, each retry counted and
    /// traced.
    async fn send_read(&self, call: &Call<'_>) -> Result<Reply, JcError> {
        let seed = self
            .inner
            .jitter_seed
            .fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed);
        let mut rng = <rand::rngs::SmallRng as rand::SeedableRng>::seed_from_u64(seed);
        let template = call.route.template;
        self.inner
            .guard
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
    async fn send_once(&self, call: &Call<'_>) -> Result<Reply, JcError> {
        let request = self.request(call)?;
        self.inner.guard.call(self.exchange(call, request)).await
    }

    fn request(&self, call: &Call<'_>) -> Result<reqwest::RequestBuilder, JcError> {
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
            &inner.key.load().secret,
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
            .field("guard", &self.inner.guard)
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
            let Some(id) = id_of(item) else { continue };
            if id.is_empty() {
                return Err(JcError::protocol(format!(
                    "{name}: an item at skip={skip} has no id"
                )));
            }
            if !seen.insert(id.to_owned()) {
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

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use axum::body::Body;
    use axum::extract::Request;
    use serde_json::{Value, json};

    use super::*;
    use crate::jumpcloud::resilience::BreakerState;
    use crate::jumpcloud::retry::Backoff;

    const KEY: &str = "test-key-0123456789";
    const MS: Duration = Duration::from_millis(1);

    /// A request as the fake upstream saw it.
    #[derive(Debug, Clone)]
    struct Seen {
        method: String,
        path: String,
        query: Vec<(String, String)>,
        headers: axum::http::HeaderMap,
        body: String,
    }

    impl Seen {
        fn q(&self, key: &str) -> Option<&str> {
            self.query
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.as_str())
        }

        fn skip(&self) -> usize {
            self.q("skip").map_or(0, |s| s.parse().unwrap())
        }

        fn header(&self, name: &str) -> Option<&str> {
            self.headers.get(name).map(|v| v.to_str().unwrap())
        }

        fn json(&self) -> Value {
            serde_json::from_str(&self.body).unwrap()
        }
    }

    /// An answer from the fake upstream.
    struct Canned {
        status: u16,
        headers: Vec<(&'static str, String)>,
        body: String,
    }

    fn reply(status: u16, body: Value) -> Canned {
        Canned {
            status,
            headers: vec![("content-type", "application/json".into())],
            body: body.to_string(),
        }
    }

    fn empty(status: u16) -> Canned {
        Canned {
            status,
            headers: vec![],
            body: String::new(),
        }
    }

    fn with_header(mut c: Canned, name: &'static str, value: impl ToString) -> Canned {
        c.headers.push((name, value.to_string()));
        c
    }

    fn gateway() -> Canned {
        Canned {
            status: 502,
            headers: vec![("content-type", "text/html".into())],
            body: "<html><body><h1>502 Bad Gateway</h1></body></html>".into(),
        }
    }

    /// A JumpCloud stand-in on 127.0.0.1:0 that answers from a script `(request, call index) -> answer`.
    struct Upstream {
        url: String,
        seen: Arc<Mutex<Vec<Seen>>>,
    }

    impl Upstream {
        async fn start(script: impl Fn(&Seen, usize) -> Canned + Send + Sync + 'static) -> Self {
            let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
            let script = Arc::new(script);
            let log = seen.clone();
            let app = axum::Router::new().fallback(move |req: Request| {
                let (log, script) = (log.clone(), script.clone());
                async move {
                    let (parts, body) = req.into_parts();
                    let body = axum::body::to_bytes(body, usize::MAX).await.unwrap();
                    let query =
                        Url::parse(&format!("http://x/?{}", parts.uri.query().unwrap_or("")))
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

        fn seen(&self) -> Vec<Seen> {
            self.seen.lock().unwrap().clone()
        }

        fn config(&self) -> JcClientConfig {
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

        fn client(&self) -> JcClient {
            JcClient::new(self.config()).unwrap()
        }
    }

    fn user(i: usize) -> Value {
        let id = format!("{i:024x}");
        json!({"_id": id, "id": id, "username": format!("user{i}"), "email": format!("user{i}@example.com")})
    }

    /// A v1 `/api/systemusers` over `n` users, honouring `limit` and `skip`.
    fn v1_users(seen: &Seen, n: usize) -> Canned {
        let limit: usize = seen.q("limit").map_or(10, |s| s.parse().unwrap());
        let skip = seen.skip();
        let results: Vec<Value> = (skip..n.min(skip + limit)).map(user).collect();
        reply(200, json!({"totalCount": n, "results": results}))
    }

    fn group(i: usize) -> Value {
        json!({"id": format!("g{i:05}"), "name": format!("Group {i}"), "type": "user_group",
               "attributes": null, "email": "", "description": ""})
    }

    /// A v2 bare-array page of `items` with `x-total-count`.
    fn v2_page(seen: &Seen, items: &[Value], total: Option<usize>) -> Canned {
        let skip = seen.skip();
        let page: Vec<Value> = items.iter().skip(skip).take(100).cloned().collect();
        let canned = reply(200, Value::Array(page));
        match total {
            Some(t) => with_header(canned, "x-total-count", t),
            None => canned,
        }
    }

    fn protocol_message(result: Result<impl fmt::Debug, JcError>) -> String {
        match result {
            Err(JcError::Protocol { message }) => message,
            other => panic!("expected a Protocol error, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn users_are_listed_in_pages_of_100_with_every_header() {
        let up = Upstream::start(|s, _| v1_users(s, 250)).await;
        let client = up.client();
        let users = client.list_users().await.unwrap();
        assert_eq!(users.len(), 250);
        assert_eq!(users[0].id, format!("{:024x}", 0));
        assert_eq!(users[249].username, "user249");

        let seen = up.seen();
        let skips: Vec<_> = seen.iter().map(Seen::skip).collect();
        assert_eq!(skips, [0, 100, 200]);
        for s in &seen {
            assert_eq!(
                (s.method.as_str(), s.path.as_str()),
                ("GET", "/api/systemusers")
            );
            assert_eq!(s.q("limit"), Some("100"));
            assert_eq!(s.q("sort"), Some("_id"));
            assert_eq!(s.header("x-api-key"), Some(KEY));
            assert_eq!(s.header("x-org-id"), Some("org-1"));
            assert_eq!(s.header("accept"), Some("application/json"));
            assert!(
                s.header("user-agent")
                    .unwrap()
                    .starts_with("jumpcloud-scim/")
            );
            assert_eq!(s.header("content-type"), None, "no body, no content type");
        }
        assert_eq!(
            client.stats(),
            ClientStats {
                calls: 3,
                retries: 0,
                ..ClientStats::default()
            }
        );
    }

    #[tokio::test]
    async fn an_empty_list_takes_one_call_and_a_full_last_page_no_extra_one() {
        let up = Upstream::start(|s, _| v1_users(s, 0)).await;
        assert!(up.client().list_users().await.unwrap().is_empty());
        assert_eq!(up.seen().len(), 1);

        let up = Upstream::start(|s, _| v1_users(s, 200)).await;
        assert_eq!(up.client().list_users().await.unwrap().len(), 200);
        assert_eq!(up.seen().len(), 2);
    }

    #[tokio::test]
    async fn a_list_that_disagrees_with_its_total_is_a_protocol_error() {
        // The second page is short of what totalCount promised.
        let up = Upstream::start(|s, _| {
            let mut c = v1_users(s, 150);
            if s.skip() == 100 {
                let results: Vec<Value> = (100..130).map(user).collect();
                c = reply(200, json!({"totalCount": 150, "results": results}));
            }
            c
        })
        .await;
        let msg = protocol_message(up.client().list_users().await);
        assert!(msg.contains("expected 50 of 150"), "{msg}");

        // The total moves between pages: a user was created or deleted mid-listing.
        let up = Upstream::start(|s, i| v1_users(s, 150 + i)).await;
        let msg = protocol_message(up.client().list_users().await);
        assert!(msg.contains("total changed from 150 to 151"), "{msg}");

        // The same id on two pages: the list shifted under `skip`.
        let up = Upstream::start(|s, _| {
            let start = if s.skip() == 0 { 0 } else { 99 };
            let results: Vec<Value> = (start..start + 100).map(user).collect();
            reply(200, json!({"totalCount": 200, "results": results}))
        })
        .await;
        let msg = protocol_message(up.client().list_users().await);
        assert!(msg.contains("appears twice"), "{msg}");

        // A body that is not the envelope.
        let up = Upstream::start(|_, _| reply(200, json!([]))).await;
        let msg = protocol_message(up.client().list_users().await);
        assert!(msg.contains("did not parse"), "{msg}");
    }

    #[tokio::test]
    async fn groups_page_by_x_total_count() {
        let groups: Vec<Value> = (0..120).map(group).collect();
        let all = groups.clone();
        let up = Upstream::start(move |s, _| v2_page(s, &all, Some(120))).await;
        let got = up.client().list_groups().await.unwrap();
        assert_eq!(got.len(), 120);
        assert_eq!(got[119].name, "Group 119");
        let seen = up.seen();
        assert_eq!(seen.len(), 2);
        assert_eq!(seen[1].path, "/api/v2/usergroups");
        assert_eq!(seen[1].q("sort"), Some("id"));
        assert_eq!(seen[1].q("limit"), Some("100"));
        assert_eq!(seen[1].q("skip"), Some("100"));
        assert_eq!(seen[1].header("x-org-id"), Some("org-1"));

        // The header says more than the pages hold.
        let all = groups.clone();
        let up = Upstream::start(move |s, _| v2_page(s, &all[..110], Some(120))).await;
        let msg = protocol_message(up.client().list_groups().await);
        assert!(msg.contains("expected 20 of 120"), "{msg}");

        // A header that is not a number.
        let all = groups;
        let up = Upstream::start(move |s, _| {
            with_header(v2_page(s, &all, None), "x-total-count", "lots")
        })
        .await;
        let msg = protocol_message(up.client().list_groups().await);
        assert!(msg.contains("not a count"), "{msg}");
    }

    #[tokio::test]
    async fn a_v2_list_without_a_total_runs_to_a_short_page() {
        let dirs: Vec<Value> = (0..103)
            .map(|i| json!({"id": format!("d{i}"), "name": "x", "type": "ldap_server"}))
            .collect();
        let up = Upstream::start(move |s, _| v2_page(s, &dirs, None)).await;
        let got = up.client().list_directories().await.unwrap();
        assert_eq!(got.len(), 103);
        assert_eq!(got[0].kind, JcDirectoryKind::Other("ldap_server".into()));
        assert_eq!(up.seen().len(), 2);
        assert_eq!(up.seen()[0].path, "/api/v2/directories");
    }

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
        client.set_observer(Arc::new(move |route, status, _| {
            sink.lock().unwrap().push((route, status));
        }));
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
    async fn find_users_filters_with_the_v1_operator() {
        let up = Upstream::start(|_, _| reply(200, json!({"totalCount": 1, "results": [user(3)]})))
            .await;
        let client = up.client();
        let found = client
            .find_users("email", "user3@example.com")
            .await
            .unwrap();
        assert_eq!(found[0].username, "user3");
        let seen = &up.seen()[0];
        assert_eq!(seen.q("filter"), Some("email:$eq:user3@example.com"));
        assert_eq!(seen.q("limit"), Some("100"));
        assert!(client.find_users("a:b", "x").await.is_err());
        assert_eq!(up.seen().len(), 1);
    }

    #[tokio::test]
    async fn members_are_users_only_and_an_unknown_group_is_not_found() {
        let up = Upstream::start(|s, _| {
            if s.path.contains("missing") {
                return reply(404, json!({"message": "Not Found"}));
            }
            let items = json!([
                {"attributes": null, "to": {"attributes": null, "id": "u1", "type": "user"}},
                {"attributes": null, "to": {"attributes": null, "id": "x1", "type": "system"}},
                {"attributes": null, "to": {"attributes": null, "id": "u2", "type": "USER"}}
            ]);
            with_header(reply(200, items), "x-total-count", 3)
        })
        .await;
        let client = up.client();
        assert_eq!(client.list_group_members("g1").await.unwrap(), ["u1", "u2"]);
        assert_eq!(up.seen()[0].path, "/api/v2/usergroups/g1/members");
        assert!(matches!(
            client.list_group_members("missing").await,
            Err(JcError::NotFound { .. })
        ));
    }

    #[tokio::test]
    async fn member_edges_report_what_happened() {
        let up = Upstream::start(|s, i| match (s.json()["op"].as_str().unwrap(), i) {
            ("add", 0) | ("remove", 2) => empty(204),
            ("add", 1) => reply(409, json!({"message": "Already Exists"})),
            ("add", _) => reply(400, json!({"message": "Already Exists"})),
            _ => reply(404, json!({"message": "Not Found"})),
        })
        .await;
        let client = up.client();
        assert_eq!(
            client.group_member("g1", EdgeOp::Add, "u1").await.unwrap(),
            EdgeOutcome::Applied
        );
        assert_eq!(
            client.group_member("g1", EdgeOp::Add, "u1").await.unwrap(),
            EdgeOutcome::AlreadyInState
        );
        assert_eq!(
            client
                .group_member("g1", EdgeOp::Remove, "u1")
                .await
                .unwrap(),
            EdgeOutcome::Applied
        );
        assert_eq!(
            client.group_member("g1", EdgeOp::Add, "u1").await.unwrap(),
            EdgeOutcome::AlreadyInState,
            "a 400 saying Already Exists reads the same"
        );
        assert!(matches!(
            client.group_member("g1", EdgeOp::Remove, "u9").await,
            Err(JcError::NotFound { .. })
        ));
        let first = &up.seen()[0];
        assert_eq!(
            (first.method.as_str(), first.path.as_str()),
            ("POST", "/api/v2/usergroups/g1/members")
        );
        assert_eq!(
            first.json(),
            json!({"op": "add", "type": "user", "id": "u1"})
        );
        assert_eq!(first.header("content-type"), Some("application/json"));
        assert_eq!(first.header("x-org-id"), Some("org-1"));
    }

    #[tokio::test]
    async fn directory_associations_use_the_kinds_collection() {
        let up = Upstream::start(|s, _| {
            if s.method == "POST" {
                return empty(204);
            }
            let items = json!([
                {"to": {"id": "g1", "type": "user_group"}},
                {"to": {"id": "g2", "type": "user_group"}}
            ]);
            with_header(reply(200, items), "x-total-count", 2)
        })
        .await;
        let client = up.client();
        let dir = |id: &str, kind| JcDirectory {
            id: id.into(),
            name: None,
            kind,
            default_domain: None,
        };
        let gsuite = dir("d2", JcDirectoryKind::GSuite);
        assert_eq!(
            client
                .list_directory_associations(&gsuite, AssocTarget::UserGroup)
                .await
                .unwrap(),
            ["g1", "g2"]
        );
        let ad = dir("d1", JcDirectoryKind::ActiveDirectory);
        assert_eq!(
            client
                .directory_association(&ad, EdgeOp::Add, AssocTarget::User, "u1")
                .await
                .unwrap(),
            EdgeOutcome::Applied
        );
        // Edges of another type than the one asked for are dropped.
        let m365 = dir("d3", JcDirectoryKind::Office365);
        assert!(
            client
                .list_directory_associations(&m365, AssocTarget::User)
                .await
                .unwrap()
                .is_empty()
        );
        let ldap = dir("d4", JcDirectoryKind::Other("ldap_server".into()));
        protocol_message(
            client
                .list_directory_associations(&ldap, AssocTarget::User)
                .await,
        );

        let seen = up.seen();
        assert_eq!(seen.len(), 3, "no call for a kind without associations");
        assert_eq!(seen[0].path, "/api/v2/gsuites/d2/associations");
        assert_eq!(seen[0].q("targets"), Some("user_group"));
        assert_eq!(seen[1].path, "/api/v2/activedirectories/d1/associations");
        assert_eq!(
            seen[1].json(),
            json!({"op": "add", "type": "user", "id": "u1"})
        );
        assert_eq!(seen[2].path, "/api/v2/office365s/d3/associations");
    }

    #[tokio::test]
    async fn organizations_are_listed_without_x_org_id() {
        let up = Upstream::start(|_, _| {
            reply(
                200,
                json!({"totalCount": 1, "results": [{"_id": "o1", "displayName": "Acme"}]}),
            )
        })
        .await;
        let orgs = up.client().list_organizations().await.unwrap();
        assert_eq!(orgs[0]["displayName"], "Acme");
        let seen = &up.seen()[0];
        assert_eq!(seen.path, "/api/organizations");
        assert_eq!(seen.header("x-api-key"), Some(KEY));
        assert_eq!(seen.header("x-org-id"), None);

        // An empty org id is no org id.
        let up = Upstream::start(|s, _| v1_users(s, 1)).await;
        let client = JcClient::new(JcClientConfig {
            org_id: Some(String::new()),
            ..up.config()
        })
        .unwrap();
        client.list_users().await.unwrap();
        assert_eq!(up.seen()[0].header("x-org-id"), None);
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
    async fn a_rejected_create_carries_field_violations() {
        let up = Upstream::start(|_, _| {
            reply(400, json!({
                "code": 400, "message": "Password validation fail", "status": "INVALID_ARGUMENT",
                "details": [{"@type": "type.googleapis.com/google.rpc.BadRequest",
                             "fieldViolationsList": [{"field": "password", "description": "specialCharacter"}]}]
            }))
        })
        .await;
        let err = up
            .client()
            .create_user(&JcUserWrite::default())
            .await
            .unwrap_err();
        let JcError::Rejected {
            status,
            message,
            field_violations,
        } = err
        else {
            panic!("{err:?}")
        };
        assert_eq!(
            (status, message.as_str()),
            (400, "Password validation fail")
        );
        assert_eq!(
            field_violations,
            [("password".to_owned(), "specialCharacter".to_owned())]
        );
    }

    #[tokio::test]
    async fn deletes_accept_their_documented_answers() {
        let up = Upstream::start(|s, _| match s.path.as_str() {
            "/api/systemusers/boss" if s.q("cascade_manager").is_none() => {
                reply(409, json!({"message": "user is a manager"}))
            }
            "/api/systemusers/boss" => reply(200, user(1)),
            "/api/v2/usergroups/g204" => empty(204),
            "/api/v2/usergroups/g200" => reply(200, group(1)),
            _ => reply(404, json!({"message": "Not Found"})),
        })
        .await;
        let client = up.client();
        let err = client.delete_user("boss", false).await.unwrap_err();
        assert!(matches!(&err, JcError::Conflict { message } if message == "user is a manager"));
        client.delete_user("boss", true).await.unwrap();
        client.delete_group("g204").await.unwrap();
        client.delete_group("g200").await.unwrap();
        assert!(matches!(
            client.delete_group("gone").await,
            Err(JcError::NotFound { .. })
        ));
        let seen = up.seen();
        assert_eq!(seen[1].method, "DELETE");
        assert_eq!(seen[1].q("cascade_manager"), Some("null"));
        assert_eq!(seen[0].q("cascade_manager"), None);
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
    async fn the_key_stays_out_of_debug_and_errors() {
        let up = Upstream::start(|s, _| {
            let echoed = s.header("x-api-key").unwrap_or("").to_owned();
            reply(
                400,
                json!({"message": format!("key {echoed} is not allowed here")}),
            )
        })
        .await;
        let config = up.config();
        let client = JcClient::new(config.clone()).unwrap();
        let err = client.list_users().await.unwrap_err();
        for text in [
            format!("{config:?}"),
            format!("{client:?}"),
            format!("{err:?}"),
            err.to_string(),
        ] {
            assert!(!text.contains(KEY), "{text}");
        }
        assert!(err.to_string().contains("[redacted]"));
    }

    #[test]
    fn unusable_configuration_is_refused() {
        let ok = JcClientConfig::new("https://console.jumpcloud.com", KEY);
        assert!(JcClient::new(ok.clone()).is_ok());
        let bad = [
            JcClientConfig::new("console.jumpcloud.com", KEY),
            JcClientConfig::new("ftp://console.jumpcloud.com", KEY),
            JcClientConfig::new("https://console.jumpcloud.com/?x=1", KEY),
            JcClientConfig::new("https://console.jumpcloud.com", " "),
            JcClientConfig::new("https://console.jumpcloud.com", "key\nwith-newline"),
            JcClientConfig {
                timeout: Duration::ZERO,
                ..ok.clone()
            },
            JcClientConfig {
                org_id: Some("bad\norg".into()),
                ..ok
            },
        ];
        for config in bad {
            let shown = format!("{config:?}");
            assert!(
                matches!(JcClient::new(config), Err(JcError::Protocol { .. })),
                "{shown}"
            );
        }
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

    #[test]
    fn stats_diff() {
        let before = ClientStats {
            calls: 10,
            retries: 2,
            failed_fast: 4,
            retries_refused: 0,
        };
        let after = ClientStats {
            calls: 15,
            retries: 3,
            failed_fast: 9,
            retries_refused: 1,
        };
        assert_eq!(
            after.since(before),
            ClientStats {
                calls: 5,
                retries: 1,
                failed_fast: 5,
                retries_refused: 1,
            }
        );
    }
}
