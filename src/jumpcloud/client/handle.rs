//! The [`JcClient`] handle: its configuration, construction (every setting validated before any request),
//! api-key rotation, the call/retry counters and the observer hook, and the shared state every clone holds.
//!
//! Must not know any endpoint, how a request is built or sent, or how lists page: those live in the sibling
//! files that add `impl JcClient` blocks.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use reqwest::Url;
use reqwest::header::{ACCEPT, HeaderMap, HeaderValue};

use crate::jumpcloud::error::JcError;
use crate::jumpcloud::resilience::{
    Breaker, BreakerConfig, BudgetConfig, DEFAULT_MAX_IN_FLIGHT, UpstreamGuard,
};
use crate::jumpcloud::retry::RetryPolicy;

/// Told about every upstream request: the [`Purpose`] of the handle that sent it, route template (e.g.
/// `GET /api/v2/usergroups/{id}/members`), HTTP status (0 when no response arrived) and duration. For metrics;
/// called on the request's task, so keep it cheap.
pub type RequestObserver = Arc<dyn Fn(Purpose, &'static str, u16, Duration) + Send + Sync>;

/// What a handle's calls are for, as its caller named it ([`JcClient::for_purpose`]); reported with every call
/// so upstream load can be told apart. The client itself treats every purpose alike.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Purpose {
    /// Reading the whole directory.
    #[default]
    Refresh,
    /// Reading the Directory Insights feed.
    Insights,
    /// Reading the objects feed events name.
    Fetch,
    /// A client's write, and the reads that carry it out.
    Write,
}

impl Purpose {
    pub const ALL: [Purpose; 4] = [
        Purpose::Refresh,
        Purpose::Insights,
        Purpose::Fetch,
        Purpose::Write,
    ];

    /// The label metrics give it.
    pub fn as_str(self) -> &'static str {
        match self {
            Purpose::Refresh => "refresh",
            Purpose::Insights => "insights",
            Purpose::Fetch => "fetch",
            Purpose::Write => "write",
        }
    }
}

/// The Directory Insights base URL for a console URL (facts sheet §1.1): the feed lives on JumpCloud's `api.`
/// host of the same region (`console.jumpcloud.com` → `https://api.jumpcloud.com/insights/directory/v1`,
/// `console.eu.jumpcloud.com` → `api.eu.…`); any other host (an emulator, a proxy) serves it under its own
/// `/insights/directory/v1`.
pub fn insights_url_for(console_url: &str) -> String {
    const PATH: &str = "/insights/directory/v1";
    let trimmed = console_url.trim().trim_end_matches('/');
    if let Ok(url) = Url::parse(trimmed)
        && let Some(host) = url.host_str()
        && let Some(region) = host.to_ascii_lowercase().strip_prefix("console.")
        && (region == "jumpcloud.com" || region.ends_with(".jumpcloud.com"))
    {
        return format!("https://api.{region}{PATH}");
    }
    format!("{trimmed}{PATH}")
}

/// Where and how to reach JumpCloud.
#[derive(Clone)]
pub struct JcClientConfig {
    /// e.g. `https://console.jumpcloud.com` (or `https://console.eu.jumpcloud.com`); `/api/...` is appended.
    pub base_url: String,
    /// The Directory Insights base (`…/insights/directory/v1`); `None`: [`insights_url_for`] the base URL.
    pub insights_url: Option<String>,
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
            insights_url: None,
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
            .field("insights_url", &self.insights_url)
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

/// The JumpCloud API. Cheap to clone; clones share the connection pool and the counters.
#[derive(Clone)]
pub struct JcClient {
    pub(super) inner: Arc<Inner>,
    /// Outside `inner` so it can be set after construction without a lock on every call.
    pub(super) observer: Option<RequestObserver>,
    /// What this handle's calls are for; clones keep it, [`JcClient::for_purpose`] changes it.
    pub(super) purpose: Purpose,
}

/// The API key as sent, and as scrubbed from any upstream text we keep.
pub(super) struct Key {
    pub(super) header: HeaderValue,
    pub(super) secret: String,
}

impl Key {
    pub(super) fn new(api_key: &str) -> Result<Key, JcError> {
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

pub(super) struct Inner {
    pub(super) http: reqwest::Client,
    pub(super) base: Url,
    /// Directory Insights lives on another host: its own base, and its own guard, so a failing feed never
    /// opens the breaker writes and refreshes go through.
    pub(super) insights_base: Url,
    pub(super) insights_guard: UpstreamGuard,
    /// Swapped whole when the key is rotated; every request reads the current one.
    pub(super) key: arc_swap::ArcSwap<Key>,
    pub(super) org_id: Option<HeaderValue>,
    pub(super) retry: RetryPolicy,
    /// Breaker, retry budget and in-flight bound: shared by every clone, as JumpCloud's health is.
    pub(super) guard: UpstreamGuard,
    pub(super) calls: AtomicU64,
    pub(super) retries: AtomicU64,
    /// Seeds a fresh jitter RNG per read, so reads never share (or lock) one.
    pub(super) jitter_seed: AtomicU64,
}

/// Config problems surface as `Protocol` errors: the caller gave us something we cannot speak with.
pub(super) fn bad_config(what: &str) -> JcError {
    JcError::protocol(format!("invalid JumpCloud client configuration: {what}"))
}

// === impl JcClient ===

impl JcClient {
    /// Validate `config` and build the HTTP client. Fails on an unusable base URL, key, org id, timeout or
    /// user agent; no request is made.
    pub fn new(config: JcClientConfig) -> Result<Self, JcError> {
        let base = base_url("base_url", &config.base_url)?;
        let insights = config
            .insights_url
            .clone()
            .unwrap_or_else(|| insights_url_for(&config.base_url));
        let insights_base = base_url("insights_url", &insights)?;
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
        let insights_guard = UpstreamGuard::new(
            config.breaker,
            config.retry_budget,
            config.max_in_flight.min(INSIGHTS_IN_FLIGHT),
        )
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
                insights_base,
                insights_guard,
                key: arc_swap::ArcSwap::from_pointee(key),
                org_id,
                retry: config.retry,
                guard,
                calls: AtomicU64::new(0),
                retries: AtomicU64::new(0),
                jitter_seed: AtomicU64::new(initial_seed()),
            }),
            observer: None,
            purpose: Purpose::default(),
        })
    }

    /// The same client (shared pool, counters, guards and observer), its calls reported as `purpose`.
    pub fn for_purpose(&self, purpose: Purpose) -> JcClient {
        JcClient {
            purpose,
            ..self.clone()
        }
    }

    /// What this handle's calls are reported as.
    pub fn purpose(&self) -> Purpose {
        self.purpose
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
}

impl fmt::Debug for JcClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JcClient")
            .field("base_url", &self.inner.base.as_str())
            .field("insights_url", &self.inner.insights_base.as_str())
            .field("purpose", &self.purpose)
            .field("api_key", &"[redacted]")
            .field("org_id", &self.inner.org_id)
            .field("retry", &self.inner.retry)
            .field("guard", &self.inner.guard)
            .field("observer", &self.observer.is_some())
            .finish()
    }
}

/// Calls to the Directory Insights host in flight at once: the feed is read one page at a time.
const INSIGHTS_IN_FLIGHT: usize = 2;

/// An http(s) base URL without a query, or a configuration error naming `what`.
fn base_url(what: &str, url: &str) -> Result<Url, JcError> {
    let base = Url::parse(url.trim()).map_err(|e| bad_config(&format!("{what} {url:?}: {e}")))?;
    if !matches!(base.scheme(), "http" | "https")
        || base.cannot_be_a_base()
        || base.query().is_some()
    {
        return Err(bad_config(&format!(
            "{what} {url:?} must be an http(s) URL without a query"
        )));
    }
    Ok(base)
}

fn initial_seed() -> u64 {
    use rand::TryRngCore;
    rand::rngs::OsRng
        .try_next_u64()
        // Jitter only needs to differ between processes; the clock is good enough when the OS is not.
        .unwrap_or_else(|_| jiff::Timestamp::now().as_nanosecond() as u64)
}

#[cfg(test)]
#[path = "handle_tests.rs"]
mod tests;
