//! Layered configuration: built-in defaults → TOML file → `JCSCIM_*` environment (`__` for nesting) → the
//! files named by `…_file` keys and `…_FILE` variables, for every secret. The only reader of environment
//! variables.
//!
//! Owns the configuration's types and defaults ([`Config`]), loading ([`load`]: figment's providers, the
//! secret files, warnings for unknown keys at every depth) and the checks that need more than types
//! ([`Config::validate`], once, with errors that name the key and the fix; the `[auth]` checks that need
//! to know signing keys and password hashes are [`crate::auth::validate`]'s). Secrets are [`Secret`]s whose
//! `Debug` is redacted and which never appear in an error. `config.example.toml` at the top level documents
//! every key with its default; a test holds it to [`Config::default`].
//!
//! A setting whose type another module owns is parsed into that type: [`Scope`](crate::auth::Scope),
//! [`UsernamePolicy`](crate::mapping::UsernamePolicy), [`DeleteMode`](crate::directory::write::DeleteMode),
//! [`FeedMode`](crate::cache::insights::FeedMode).

pub mod load;
mod store;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use crate::auth::settings::{
    AuthConfig, BasicConfig, ClientConfig, JwtConfig, TokenConfig, parse_token_list,
};
pub use crate::cache::insights::FeedMode;
use crate::directory::write::DeleteMode;
use crate::mapping::UsernamePolicy;
pub use crate::secret::Secret;
use crate::secret::lenient_opt_string;
pub use store::{StoreConfig, StoreKind, redact_url};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JumpCloudConfig {
    pub url: String,
    #[serde(default)]
    pub api_key: Option<Secret>,
    #[serde(default, deserialize_with = "lenient_opt_string")]
    pub org_id: Option<String>,
    /// Per-call timeout.
    pub timeout_s: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RefreshConfig {
    /// Seconds between full refreshes. Unset: [`REFRESH_WITHOUT_FEED_S`] while the Directory Insights feed
    /// is off or unavailable, [`REFRESH_WITH_FEED_S`] while it is used; a value set applies in both cases.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval_s: Option<u64>,
    /// Share of the interval added or removed at random, so replicas do not refresh in lockstep.
    pub jitter: f64,
    pub max_shrink: f64,
}

/// The full refresh's interval while the Directory Insights feed is off or unavailable, unless set.
pub const REFRESH_WITHOUT_FEED_S: u64 = 60;
/// The full refresh's interval while the feed is used, unless set: the feed keeps the snapshot fresh, the
/// refresh stays the source of truth.
pub const REFRESH_WITH_FEED_S: u64 = 3600;

/// Reading JumpCloud's Directory Insights feed between full refreshes (`[insights]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct InsightsConfig {
    /// `auto` (when the organisation has it), `on`, `off`.
    pub enabled: FeedMode,
    /// The feed's base URL; unset, derived from `jumpcloud.url` ([`crate::jumpcloud::insights_url_for`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Seconds between polls.
    pub poll_s: u64,
    /// Each poll reads again this many seconds before where the last one stood, for events the feed
    /// ingested late; an event id is applied once.
    pub overlap_s: u64,
    /// An event the feed showed this many seconds or more after an earlier poll could have seen it, or a
    /// backlog this far behind, means the feed is lagging: a full refresh runs at once.
    pub max_lag_s: u64,
    /// How far back the feed is trusted to hold every event; a gap longer than this (the service stopped,
    /// the feed unread) is closed by a full refresh rather than read.
    pub retention_s: u64,
}

impl Default for InsightsConfig {
    fn default() -> Self {
        InsightsConfig {
            enabled: FeedMode::Auto,
            url: None,
            poll_s: 5,
            overlap_s: 60,
            max_lag_s: 30,
            retention_s: 7 * 24 * 3600,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UsersConfig {
    pub username_policy: UsernamePolicy,
    pub delete_mode: DeleteMode,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MappingConfig {
    /// JumpCloud custom attribute that keeps the client's exact userName.
    pub username_attribute: String,
    /// JumpCloud custom attribute that keeps a user's externalId.
    pub external_id_attribute: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupsConfig {
    /// List each directory (AD, Google Workspace, M365) as a Group whose members are its holders.
    pub directories_as_groups: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PagingConfig {
    /// The largest page a `count` may ask for.
    pub max_count: usize,
    /// The most resources one answer holds: a list without `count` gets every match up to this many
    /// (`totalResults` still counts them all). `/ServiceProviderConfig` advertises it as `filter.maxResults`.
    #[serde(default = "default_max_results")]
    pub max_results: usize,
    pub pin_ttl_s: u64,
}

fn default_max_results() -> usize {
    100_000
}

/// Bounds on what one request or connection may take. Every one is a documented key with a safe default.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LimitsConfig {
    /// Largest request body.
    pub body_bytes: usize,
    /// Longest request URI (path and query); a long filter belongs in a `POST …/.search` body.
    pub uri_bytes: usize,
    /// Deepest nesting of arrays and objects a JSON body may have.
    pub json_depth: usize,
    /// Most operations in one PATCH.
    pub patch_operations: usize,
    /// Most values one PATCH operation may carry.
    pub patch_values: usize,
    /// Most values a multi-valued attribute (phone numbers, addresses, …) may hold; a Group's members and a
    /// User's groups are not bounded by it.
    pub multi_values: usize,
    /// A request (the whole of it, reading to answering) that takes longer is cancelled and answered 503.
    pub request_timeout_s: u64,
    /// A client must send a request's headers within this after connecting or after its previous answer.
    pub header_read_timeout_s: u64,
    /// A keep-alive connection with no request for this long is closed.
    pub idle_timeout_s: u64,
    /// Connections open at once; one more is answered 503 and closed.
    pub max_connections: usize,
    /// CPU-heavy request work (PATCH applications, scan filters and sorts) running at once, off the async
    /// workers.
    pub cpu_tasks: usize,
    /// Failed authentications a credential name (a Basic user name, an OAuth client id; for bearer tokens,
    /// the client's address) may have in a burst before it is answered 429.
    pub auth_failures_burst: u32,
    /// Failed authentications per minute a credential name may have once its burst is spent.
    pub auth_failures_per_minute: u32,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            body_bytes: 1_048_576,
            uri_bytes: 16_384,
            json_depth: 32,
            patch_operations: 1000,
            patch_values: 100_000,
            multi_values: 100,
            request_timeout_s: 55,
            header_read_timeout_s: 10,
            idle_timeout_s: 75,
            max_connections: 1024,
            cpu_tasks: 2,
            auth_failures_burst: 10,
            auth_failures_per_minute: 10,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogConfig {
    pub format: LogFormat,
    /// The log filter: a level (`info`) or `tracing` directives (`info,jumpcloud_scim=debug`); `RUST_LOG`
    /// wins when set.
    #[serde(default = "default_log_level")]
    pub level: String,
}

fn default_log_level() -> String {
    "info".into()
}

/// Who may read `/metrics` and `/status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum OpsAuth {
    /// Anyone who can reach them (they hold aggregate figures only).
    #[default]
    None,
    /// A client credential, read or provision.
    Read,
}

/// Where the operations endpoints live.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct OpsConfig {
    /// A listen address of their own for `/metrics` and `/status` (and the probes too); the main listener
    /// then keeps only `/healthz`, `/readyz` and `/admin/*`. Default: everything on `listen`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<SocketAddr>,
    pub auth: OpsAuth,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditConfig {
    pub destination: String,
}

/// The validated configuration of `serve`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Config {
    pub listen: SocketAddr,
    /// Externally visible base URL of the service (for `meta.location`); default `http://{listen}`.
    #[serde(default)]
    pub public_url: Option<String>,
    pub jumpcloud: JumpCloudConfig,
    pub refresh: RefreshConfig,
    #[serde(default)]
    pub data_dir: Option<PathBuf>,
    #[serde(default)]
    pub auth: AuthConfig,
    pub users: UsersConfig,
    pub mapping: MappingConfig,
    pub groups: GroupsConfig,
    pub paging: PagingConfig,
    pub limits: LimitsConfig,
    pub log: LogConfig,
    pub audit: AuditConfig,
    #[serde(default)]
    pub ops: OpsConfig,
    #[serde(default)]
    pub insights: InsightsConfig,
    #[serde(default)]
    pub store: StoreConfig,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            public_url: None,
            jumpcloud: JumpCloudConfig {
                url: "https://console.jumpcloud.com".into(),
                api_key: None,
                org_id: None,
                timeout_s: 20,
            },
            refresh: RefreshConfig {
                interval_s: None,
                jitter: 0.1,
                max_shrink: 0.1,
            },
            data_dir: None,
            auth: AuthConfig::default(),
            users: UsersConfig {
                username_policy: UsernamePolicy::LocalPart,
                delete_mode: DeleteMode::Delete,
            },
            mapping: MappingConfig {
                username_attribute: "scimUserName".into(),
                external_id_attribute: "scimExternalId".into(),
            },
            groups: GroupsConfig {
                directories_as_groups: true,
            },
            paging: PagingConfig {
                max_count: 1000,
                max_results: default_max_results(),
                pin_ttl_s: 900,
            },
            limits: LimitsConfig::default(),
            log: LogConfig {
                format: LogFormat::Text,
                level: default_log_level(),
            },
            audit: AuditConfig {
                destination: "stdout".into(),
            },
            ops: OpsConfig::default(),
            insights: InsightsConfig::default(),
            store: StoreConfig::default(),
        }
    }
}

/// Why the configuration could not be loaded; every message says what to change.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration is invalid: {0}")]
    Invalid(String),
    #[error("while reading {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("configuration could not be parsed: {0}")]
    Parse(#[from] Box<figment::Error>),
}

/// A loaded configuration and the warnings found while loading it (unknown keys and variables).
#[derive(Debug)]
pub struct Loaded {
    pub config: Config,
    pub warnings: Vec<String>,
    /// The files secrets were read from, watched for rotation.
    pub secret_files: Vec<PathBuf>,
}

impl Config {
    /// Load from the process environment and an optional file (`--config` wins over `JCSCIM_CONFIG`), and
    /// validate.
    pub fn load(file: Option<&Path>) -> Result<Loaded, ConfigError> {
        let loaded = load::layers(file)?;
        loaded.config.validate()?;
        Ok(loaded)
    }

    /// The layered configuration without the checks a running service needs (for `healthcheck`, which only
    /// needs `listen`, and `check`, which only needs `jumpcloud`).
    pub fn load_unchecked(file: Option<&Path>) -> Result<Loaded, ConfigError> {
        load::layers(file)
    }

    /// Checks that need more than types, in a fixed order (the first problem found is reported).
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.validate_jumpcloud()
            .and_then(|()| self.validate_auth())
            .and_then(|()| self.validate_refresh_and_paging())
            .and_then(|()| self.validate_limits())
            .and_then(|()| self.validate_upstream_and_mapping())
            .and_then(|()| self.validate_insights())
            .and_then(|()| self.store.validate(self.data_dir.is_some()))
            .map_err(ConfigError::Invalid)
    }

    fn validate_jumpcloud(&self) -> Result<(), String> {
        match &self.jumpcloud.api_key {
            Some(k) if !k.is_empty() => {}
            _ => {
                return Err(
                    "jumpcloud.api_key is required: set JCSCIM_JUMPCLOUD__API_KEY or \
                     JCSCIM_JUMPCLOUD__API_KEY_FILE (a file holding the key)"
                        .into(),
                );
            }
        }
        if !(self.jumpcloud.url.starts_with("http://")
            || self.jumpcloud.url.starts_with("https://"))
        {
            return Err(format!(
                "jumpcloud.url must start with http:// or https://, got {:?}",
                self.jumpcloud.url
            ));
        }
        Ok(())
    }

    fn validate_auth(&self) -> Result<(), String> {
        if self.auth.tokens.is_empty() && self.auth.basic.is_empty() && self.auth.clients.is_empty()
        {
            return Err(
                "no client credential is configured, and the service is never open: set \
                 JCSCIM_AUTH__TOKENS (comma-separated TOKEN or TOKEN:read), or [[auth.tokens]], \
                 [[auth.basic]] or [[auth.clients]] in the file"
                    .into(),
            );
        }
        let mut client_ids = BTreeSet::new();
        for (i, c) in self.auth.clients.iter().enumerate() {
            if c.client_id.is_empty() || c.client_id.contains(':') {
                return Err(format!(
                    "auth.clients[{i}]: client_id must be non-empty and without ':' (HTTP Basic splits on it)"
                ));
            }
            if !client_ids.insert(c.client_id.as_str()) {
                return Err(format!(
                    "auth.clients[{i}]: client_id {:?} is configured twice",
                    c.client_id
                ));
            }
            secret_or_hash(
                &format!("auth.clients[{i}]"),
                ("client_secret", c.client_secret.as_ref(), 16),
                ("client_secret_sha256", c.client_secret_sha256.as_deref()),
            )?;
        }
        crate::auth::validate(&self.auth)?;
        for (i, t) in self.auth.tokens.iter().enumerate() {
            secret_or_hash(
                &format!("auth.tokens[{i}]"),
                ("token", t.token.as_ref(), 8),
                ("token_sha256", t.token_sha256.as_deref()),
            )?;
        }
        Ok(())
    }

    fn validate_refresh_and_paging(&self) -> Result<(), String> {
        if self.refresh.interval_s == Some(0) {
            return Err("refresh.interval_s must be at least 1".into());
        }
        if !(0.0..=0.5).contains(&self.refresh.jitter) {
            return Err("refresh.jitter must be between 0 and 0.5".into());
        }
        if !(0.0..1.0).contains(&self.refresh.max_shrink) {
            return Err("refresh.max_shrink must be at least 0 and below 1".into());
        }
        if self.paging.max_count == 0 {
            return Err("paging.max_count must be at least 1".into());
        }
        if self.paging.max_results < self.paging.max_count {
            return Err(format!(
                "paging.max_results ({}) must be at least paging.max_count ({})",
                self.paging.max_results, self.paging.max_count
            ));
        }
        Ok(())
    }

    fn validate_limits(&self) -> Result<(), String> {
        let l = &self.limits;
        for (key, value, min) in [
            ("limits.body_bytes", l.body_bytes as u64, 1024),
            ("limits.uri_bytes", l.uri_bytes as u64, 1024),
            ("limits.json_depth", l.json_depth as u64, 8),
            ("limits.patch_operations", l.patch_operations as u64, 1),
            ("limits.patch_values", l.patch_values as u64, 1),
            ("limits.multi_values", l.multi_values as u64, 2),
            ("limits.request_timeout_s", l.request_timeout_s, 1),
            ("limits.header_read_timeout_s", l.header_read_timeout_s, 1),
            ("limits.idle_timeout_s", l.idle_timeout_s, 1),
            ("limits.max_connections", l.max_connections as u64, 1),
            ("limits.cpu_tasks", l.cpu_tasks as u64, 1),
            (
                "limits.auth_failures_burst",
                u64::from(l.auth_failures_burst),
                1,
            ),
            (
                "limits.auth_failures_per_minute",
                u64::from(l.auth_failures_per_minute),
                1,
            ),
        ] {
            if value < min {
                return Err(format!("{key} must be at least {min}, got {value}"));
            }
        }
        Ok(())
    }

    fn validate_insights(&self) -> Result<(), String> {
        let i = &self.insights;
        if i.poll_s == 0 {
            return Err("insights.poll_s must be at least 1".into());
        }
        if i.max_lag_s == 0 {
            return Err("insights.max_lag_s must be at least 1".into());
        }
        // An event ingested later than `overlap_s - poll_s` after it happened can be missed; lagging is
        // noticed before that.
        if i.max_lag_s.saturating_add(i.poll_s) >= i.overlap_s {
            return Err(format!(
                "insights.overlap_s ({}) must exceed insights.max_lag_s + insights.poll_s ({} + {}): a poll \
                 reads again what the feed may still deliver late",
                i.overlap_s, i.max_lag_s, i.poll_s
            ));
        }
        // A poll starts reading an overlap before where the last one stood, a poll later.
        if i.retention_s <= i.overlap_s.saturating_add(i.poll_s) {
            return Err(format!(
                "insights.retention_s ({}) must exceed insights.overlap_s + insights.poll_s ({} + {})",
                i.retention_s, i.overlap_s, i.poll_s
            ));
        }
        if let Some(url) = &i.url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return Err(format!(
                "insights.url must start with http:// or https://, got {url:?}"
            ));
        }
        Ok(())
    }

    fn validate_upstream_and_mapping(&self) -> Result<(), String> {
        if self.jumpcloud.timeout_s == 0 {
            return Err("jumpcloud.timeout_s must be at least 1".into());
        }
        for (name, v) in [
            (
                "mapping.username_attribute",
                &self.mapping.username_attribute,
            ),
            (
                "mapping.external_id_attribute",
                &self.mapping.external_id_attribute,
            ),
        ] {
            if v.is_empty() {
                return Err(format!("{name} must not be empty"));
            }
        }
        Ok(())
    }

    /// The Directory Insights base URL: `insights.url`, or derived from `jumpcloud.url`.
    pub fn insights_url(&self) -> String {
        match &self.insights.url {
            Some(u) => u.trim_end_matches('/').to_owned(),
            None => crate::jumpcloud::insights_url_for(&self.jumpcloud.url),
        }
    }

    /// The full refresh's interval in seconds, with the feed used (`feed_in_use`) or not.
    pub fn refresh_interval_s(&self, feed_in_use: bool) -> u64 {
        self.refresh.interval_s.unwrap_or(if feed_in_use {
            REFRESH_WITH_FEED_S
        } else {
            REFRESH_WITHOUT_FEED_S
        })
    }

    /// The externally visible base URL, without a trailing slash.
    pub fn base_url(&self) -> String {
        match &self.public_url {
            Some(u) => u.trim_end_matches('/').to_string(),
            None => format!("http://{}", self.listen),
        }
    }
}

/// A credential given as exactly one of a secret (at least `min` characters) and its hex SHA-256.
fn secret_or_hash(
    at: &str,
    (secret_key, secret, min): (&str, Option<&Secret>, usize),
    (hash_key, hash): (&str, Option<&str>),
) -> Result<(), String> {
    match (secret, hash) {
        (Some(s), None) if s.expose().len() >= min => Ok(()),
        (Some(_), None) => Err(format!(
            "{at}: {secret_key} must be at least {min} characters"
        )),
        (None, Some(h)) if h.len() == 64 && h.chars().all(|c| c.is_ascii_hexdigit()) => Ok(()),
        (None, Some(_)) => Err(format!("{at}: {hash_key} must be 64 hex digits")),
        _ => Err(format!(
            "{at}: set exactly one of {secret_key} and {hash_key}"
        )),
    }
}

#[cfg(test)]
mod tests;
