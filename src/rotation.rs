//! Secrets rotated without a restart: on SIGHUP, and when a file a secret was read from changes, the
//! configuration is loaded again and its secrets take effect at once: a new JumpCloud API key from the next
//! call, new client credentials accepted and removed ones refused from the next request. A configuration that
//! no longer loads (a missing or empty file, a bad value) changes nothing and says why; so does a new set of
//! credentials that cannot be used. Only secrets change this way; any other key needs a restart.
//!
//! Files are compared by content (a SHA-256 each poll, every [`POLL`]), so editors that rewrite a file in
//! place and orchestrators that swap a symlink (Kubernetes Secret volumes) are both seen.

use std::path::PathBuf;
use std::time::Duration;

use crate::auth::Authenticator;
use crate::config::Config;
use crate::jumpcloud::JcClient;
use crate::shutdown::Stop;

/// How often the secret files are looked at.
pub const POLL: Duration = Duration::from_secs(2);

/// Where the configuration came from, so it can be read again.
#[derive(Debug, Clone, Default)]
pub struct SecretSource {
    /// The `--config` file (or `JCSCIM_CONFIG`).
    pub config_file: Option<PathBuf>,
    /// The files secrets were read from.
    pub secret_files: Vec<PathBuf>,
}

/// What the rotation task swaps.
#[derive(Clone)]
pub struct Rotatable {
    pub auth: Authenticator,
    pub client: JcClient,
}

fn fingerprint(files: &[PathBuf]) -> Vec<Option<[u8; 32]>> {
    files
        .iter()
        .map(|f| std::fs::read(f).ok().map(|b| crate::auth::sha256(&b)))
        .collect()
}

/// Run until `stop` fires: re-read the secrets on SIGHUP and when a secret file changes.
pub async fn run(source: SecretSource, targets: Rotatable, mut stop: Stop) {
    #[cfg(unix)]
    let mut hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
    let mut files = source.secret_files.clone();
    let mut seen = fingerprint(&files);
    let mut tick = tokio::time::interval(POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        #[cfg(unix)]
        let hup = async {
            match hangup.as_mut() {
                Some(h) => {
                    h.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        #[cfg(not(unix))]
        let hup = std::future::pending::<()>();
        let why = tokio::select! {
            () = stop.requested() => return,
            () = hup => "SIGHUP",
            _ = tick.tick() => {
                let now = fingerprint(&files);
                if now == seen {
                    continue;
                }
                seen = now;
                "a secret file changed"
            }
        };
        if let Some(new_files) = reload(&source, &targets, why) {
            files = new_files;
            seen = fingerprint(&files);
        }
    }
}

/// Load the configuration again and apply its secrets; the files to watch from now on, or `None` when
/// nothing changed.
pub fn reload(source: &SecretSource, targets: &Rotatable, why: &str) -> Option<Vec<PathBuf>> {
    let loaded = match Config::load(source.config_file.as_deref()) {
        Ok(l) => l,
        Err(e) => {
            tracing::warn!(
                "after {why}, the configuration does not load, so the current secrets stay: {e}"
            );
            return None;
        }
    };
    if let Err(e) = targets.auth.replace(&loaded.config.auth) {
        tracing::warn!(
            "after {why}, the new client credentials cannot be used, so the current ones stay: {e}"
        );
        return None;
    }
    let key = loaded
        .config
        .jumpcloud
        .api_key
        .as_ref()
        .map(|k| k.expose().to_owned())
        .unwrap_or_default();
    if let Err(e) = targets.client.set_api_key(&key) {
        tracing::warn!(
            "after {why}, the new JumpCloud API key cannot be used, so the current one stays: {e}"
        );
    }
    let a = &loaded.config.auth;
    tracing::info!(
        tokens = a.tokens.len(),
        basic = a.basic.len(),
        clients = a.clients.len(),
        "secrets re-read after {why}: the JumpCloud API key and {} client credentials are in use",
        a.tokens.len() + a.basic.len() + a.clients.len()
    );
    Some(loaded.secret_files)
}
