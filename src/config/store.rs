//! `[store]`: where published snapshot versions live: in this process (`local`, the default) or in Redis,
//! shared by replicas (`redis`). Owns the keys, their defaults, their checks and the redacted form of the
//! Redis URL; knows nothing of how the store uses them.

use serde::{Deserialize, Serialize};

use crate::secret::Secret;

/// `store.kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum StoreKind {
    /// One process: the published version in memory (and in `data_dir` when set).
    #[default]
    Local,
    /// Replicas sharing their published versions, one refresher and write locks through Redis.
    Redis,
}

/// `[store]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct StoreConfig {
    pub kind: StoreKind,
    /// `redis://[user:password@]host:port[/db]` or `rediss://…` (TLS); a secret (it may carry a password).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<Secret>,
    /// Prefixes every key this service writes, so several deployments can share one Redis.
    pub key_prefix: String,
    /// The refresher's lease: a leader that stops renewing is replaced within this.
    pub lease_s: u64,
    /// Every Redis call answers within this, or counts as Redis being down.
    pub timeout_ms: u64,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            kind: StoreKind::Local,
            url: None,
            key_prefix: "jcscim:".into(),
            lease_s: 10,
            timeout_ms: 1000,
        }
    }
}

impl StoreConfig {
    /// Checks beyond types; the message names the key to change.
    pub fn validate(&self, data_dir: bool) -> Result<(), String> {
        if self.kind == StoreKind::Local {
            return Ok(());
        }
        let url = match &self.url {
            Some(u) if !u.is_empty() => u.expose(),
            _ => {
                return Err("store.url is required when store.kind = \"redis\": set JCSCIM_STORE__URL or \
                            JCSCIM_STORE__URL_FILE (a file holding it), e.g. redis://redis:6379 or rediss://… for TLS"
                    .into());
            }
        };
        if !(url.starts_with("redis://") || url.starts_with("rediss://")) {
            return Err(format!(
                "store.url must start with redis:// or rediss:// (TLS); it is {}",
                redact_url(url)
            ));
        }
        if self.key_prefix.is_empty() || self.key_prefix.len() > 64 {
            return Err("store.key_prefix must be 1 to 64 characters".into());
        }
        if !(2..=300).contains(&self.lease_s) {
            return Err("store.lease_s must be between 2 and 300".into());
        }
        if !(10..=60_000).contains(&self.timeout_ms) {
            return Err("store.timeout_ms must be between 10 and 60000".into());
        }
        if self.timeout_ms >= self.lease_s * 1000 / 3 {
            return Err(format!(
                "store.timeout_ms ({}) must be below a third of store.lease_s ({} s): the lease is renewed that often",
                self.timeout_ms, self.lease_s
            ));
        }
        if data_dir {
            return Err("data_dir and store.kind = \"redis\" do not go together: with Redis, the published \
                        versions live in Redis; unset data_dir"
                .into());
        }
        Ok(())
    }

    /// The URL as given, password included: only for connecting, never to be shown.
    pub fn exposed_url(&self) -> String {
        self.url
            .as_ref()
            .map(|u| u.expose().to_owned())
            .unwrap_or_default()
    }

    /// The URL with any password replaced by `***` (for logs, errors and `/status`).
    pub fn redacted_url(&self) -> String {
        self.url
            .as_ref()
            .map_or_else(String::new, |u| redact_url(u.expose()))
    }
}

/// `scheme://user:***@host…`: the password (or a lone credential before `@`) never shown.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "***".into();
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    match authority.rsplit_once('@') {
        None => format!("{scheme}://{authority}{path}"),
        Some((creds, host)) => {
            let user = creds.split_once(':').map_or("", |(u, _)| u);
            format!("{scheme}://{user}:***@{host}{path}")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn redis(url: Option<&str>) -> StoreConfig {
        StoreConfig {
            kind: StoreKind::Redis,
            url: url.map(Secret::new),
            ..StoreConfig::default()
        }
    }

    #[test]
    fn a_redis_store_needs_a_redis_url() {
        let e = redis(None).validate(false).unwrap_err();
        assert!(e.contains("store.url is required"), "{e}");
        let e = redis(Some("http://x")).validate(false).unwrap_err();
        assert!(e.contains("redis://"), "{e}");
        assert!(
            redis(Some("redis://127.0.0.1:6379"))
                .validate(false)
                .is_ok()
        );
        assert!(redis(Some("rediss://h:6380/2")).validate(false).is_ok());
        let e = redis(Some("redis://h")).validate(true).unwrap_err();
        assert!(e.contains("data_dir"), "{e}");
        assert!(StoreConfig::default().validate(true).is_ok());
    }

    #[test]
    fn the_timeout_must_fit_in_the_renewal_interval() {
        let mut c = redis(Some("redis://h"));
        c.lease_s = 2;
        c.timeout_ms = 1000;
        assert!(c.validate(false).unwrap_err().contains("store.timeout_ms"));
    }

    #[test]
    fn passwords_never_show() {
        for (url, shown) in [
            ("redis://:hunter2@h:6379/0", "redis://:***@h:6379/0"),
            ("rediss://app:hunter2@h:6380", "rediss://app:***@h:6380"),
            ("redis://hunter2@h", "redis://:***@h"),
            ("redis://h:6379", "redis://h:6379"),
            ("garbage-hunter2", "***"),
        ] {
            assert_eq!(redact_url(url), shown);
            assert!(!redact_url(url).contains("hunter2"));
        }
        let e = redis(Some("http://u:hunter2@h"))
            .validate(false)
            .unwrap_err();
        assert!(!e.contains("hunter2"), "{e}");
    }
}
