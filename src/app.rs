//! Wiring: from a validated [`Config`] to a running service — the JumpCloud client, the snapshot store, the
//! refresher task and the snapshot saver (which this module owns and stops) and the HTTP router.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::Notify;

use crate::audit::Audit;
use crate::auth::Authenticator;
use crate::auth::throttle::FailedAuth;
use crate::cache::persist;
use crate::cache::refresher::{self, Schedule};
use crate::cache::versions::Versions;
use crate::cache::{BuildOptions, Store};
use crate::config::{Config, OpsAuth};
use crate::directory::pins::Pins;
use crate::directory::write::{WriteSettings, Writer};
use crate::http::ops::OpsPlacement;
use crate::http::server::{self, ConnCounter, ConnLimits};
use crate::http::{self, AppState, HttpSettings};
use crate::jumpcloud::{JcClient, JcClientConfig, JcError, RetryPolicy};
use crate::mapping::MappingOptions;
use crate::rotation::{self, Rotatable, SecretSource};
use crate::scim::discovery::Capabilities;
use crate::scim::patch::PatchOptions;
use crate::scim::reference::References;
use crate::telemetry::Metrics;

/// At most this many list walks are pinned at once (the oldest pin goes first).
const PIN_WALKS: u64 = 10_000;
/// At most this many distinct snapshot versions are held for pinned walks.
const PIN_VERSIONS: usize = 8;

/// How long in-flight requests may take to finish once shutdown starts.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(8);

/// Why the service could not start or stopped abnormally.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("the JumpCloud client could not be built: {0}")]
    Client(#[from] JcError),
    #[error("the listener failed: {0}")]
    Io(#[from] std::io::Error),
    #[error("client authentication cannot be set up: {0}")]
    Auth(String),
}

/// The one start-up line: what this process is and what it stands in front of (never a secret).
fn log_start(config: &Config, listener: &TcpListener) {
    let listen = listener
        .local_addr()
        .map_or_else(|_| config.listen.to_string(), |a| a.to_string());
    let host = config
        .jumpcloud
        .url
        .split("://")
        .nth(1)
        .unwrap_or(&config.jumpcloud.url)
        .trim_end_matches('/');
    let a = &config.auth;
    let mut credentials = Vec::new();
    for (n, what) in [
        (a.tokens.len(), "bearer tokens"),
        (a.basic.len(), "Basic users"),
        (a.clients.len(), "OAuth clients"),
    ] {
        if n > 0 {
            credentials.push(format!("{n} {what}"));
        }
    }
    let data_dir = config.data_dir.as_ref().map_or_else(
        || "none (nothing persisted)".to_owned(),
        |d| d.display().to_string(),
    );
    tracing::info!(
        version = env!("CARGO_PKG_VERSION"),
        listen,
        jumpcloud = host,
        org = config.jumpcloud.org_id.as_deref().unwrap_or("-"),
        credentials = credentials.join(", "),
        data_dir,
        refresh_interval_s = config.refresh.interval_s,
        "jumpcloud-scim {} serving SCIM at {}/scim/v2 in front of {host}",
        env!("CARGO_PKG_VERSION"),
        config.base_url()
    );
}

/// A write answers within this, leaving the rest of the request's time for reading and answering.
fn write_deadline(request_timeout_s: u64) -> Duration {
    let total = Duration::from_secs(request_timeout_s);
    total.saturating_sub((total / 5).min(Duration::from_secs(10)))
}

/// The SCIM base URL for a configuration.
pub fn scim_base(config: &Config) -> String {
    format!("{}/scim/v2", config.base_url())
}

/// The JumpCloud client the configuration describes. Reads get a few more attempts than the client's default:
/// a refresh is ~70 calls, and under a gateway that fails one call in five each of them must get through.
pub fn jumpcloud_client(config: &Config) -> Result<JcClient, JcError> {
    let mut cc = client_config(config);
    cc.retry = RetryPolicy {
        max_attempts: 6,
        ..RetryPolicy::default()
    };
    JcClient::new(cc)
}

/// The client `check` uses: two attempts per call, so that a failure is reported in seconds.
pub fn jumpcloud_client_for_check(config: &Config) -> Result<JcClient, JcError> {
    let mut cc = client_config(config);
    cc.retry = RetryPolicy {
        max_attempts: 2,
        ..RetryPolicy::default()
    };
    cc.timeout = cc.timeout.min(Duration::from_secs(10));
    JcClient::new(cc)
}

fn client_config(config: &Config) -> JcClientConfig {
    let key = config
        .jumpcloud
        .api_key
        .as_ref()
        .map(|k| k.expose().to_string())
        .unwrap_or_default();
    let mut cc = JcClientConfig::new(config.jumpcloud.url.clone(), key);
    cc.org_id = config.jumpcloud.org_id.clone().filter(|o| !o.is_empty());
    cc.timeout = Duration::from_secs(config.jumpcloud.timeout_s);
    cc
}

/// Run the service on `listener` until `shutdown` resolves, then stop within about ten seconds.
pub async fn serve(
    listener: TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), AppError> {
    serve_with(listener, config, None, shutdown).await
}

/// [`serve`], re-reading secrets from `secrets` on SIGHUP and when a secret file changes.
pub async fn serve_with(
    listener: TcpListener,
    config: Config,
    secrets: Option<SecretSource>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), AppError> {
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let shutdown = async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    };
    let metrics = Metrics::new();
    let mut client = jumpcloud_client(&config)?;
    // Before any clone: the observer lives on the handle, so clones made earlier would not report.
    let observed = metrics.clone();
    client.set_observer(Arc::new(move |route, status, elapsed| {
        observed.observe_upstream(route, status, elapsed)
    }));
    let options = BuildOptions {
        mapping: MappingOptions {
            username_attribute: config.mapping.username_attribute.clone(),
            external_id_attribute: config.mapping.external_id_attribute.clone(),
            scim_base: scim_base(&config),
        },
        directories_as_groups: config.groups.directories_as_groups,
    };
    // With a data directory, versions are reserved on disk before they are used: none repeats after a crash.
    let versions = match &config.data_dir {
        Some(dir) => Versions::on_disk(dir).map_err(|e| {
            AppError::Io(std::io::Error::new(
                e.kind(),
                format!(
                    "data_dir {}: the version reservation cannot be read or written: {e}",
                    dir.display()
                ),
            ))
        })?,
        None => Versions::in_memory(),
    };
    let store = Arc::new(
        Store::with_max_shrink(options, config.refresh.max_shrink).with_versions(versions),
    );
    // A snapshot saved before a restart is served at once, before the first refresh (which may fail).
    let saver = match &config.data_dir {
        Some(dir) => {
            let on_disk = persist::load_and_publish(&store, dir).await;
            Some(persist::spawn_saver(store.clone(), dir.clone(), on_disk))
        }
        None => None,
    };
    let refresh_now = Arc::new(Notify::new());
    let schedule = Schedule {
        interval: Duration::from_secs(config.refresh.interval_s),
        jitter: config.refresh.jitter,
        first_retry: Duration::from_secs(1),
    };
    let refresher = tokio::spawn(refresher::run(
        store.clone(),
        client.clone(),
        schedule,
        refresh_now.clone(),
        metrics.clone(),
    ));

    let writer = Arc::new(Writer::new(
        store.clone(),
        client.clone(),
        WriteSettings {
            username_policy: config.users.username_policy,
            delete_mode: config.users.delete_mode,
            mapping: store.options.mapping.clone(),
            deadline: write_deadline(config.limits.request_timeout_s),
            patch: PatchOptions {
                refs: References::new(&scim_base(&config)),
                max_operations: config.limits.patch_operations,
                max_values: config.limits.patch_values,
                max_multi: config.limits.multi_values,
            },
            cpu_tasks: config.limits.cpu_tasks,
        },
    ));
    let pins = Arc::new(Pins::new(
        Duration::from_secs(config.paging.pin_ttl_s),
        PIN_WALKS,
        PIN_VERSIONS,
    ));
    let audit = Arc::new(Audit::open(&config.audit.destination).map_err(|e| {
        AppError::Io(std::io::Error::new(
            e.kind(),
            format!(
                "audit.destination {:?} cannot be opened: {e}",
                config.audit.destination
            ),
        ))
    })?);
    let auth = Authenticator::from_config(&config.auth).map_err(AppError::Auth)?;
    if !config.auth.clients.is_empty()
        && config.auth.jwt.secret.is_none()
        && config.auth.jwt.private_key_file.is_none()
    {
        tracing::warn!(
            "auth.jwt.secret is not set: OAuth tokens are signed with a random key that dies with this process, \
             so clients must fetch new tokens after a restart; set auth.jwt.secret (or JCSCIM_AUTH__JWT__SECRET_FILE) \
             or auth.jwt.private_key_file"
        );
    }
    let state = AppState {
        store,
        writer,
        pins,
        audit,
        auth: Arc::new(auth),
        settings: Arc::new(HttpSettings {
            scim_base: scim_base(&config),
            max_count: config.paging.max_count,
            max_results: config.paging.max_results,
            body_bytes: config.limits.body_bytes,
            uri_bytes: config.limits.uri_bytes,
            json_depth: config.limits.json_depth,
            request_timeout: Duration::from_secs(config.limits.request_timeout_s),
            capabilities: Capabilities {
                max_results: config.paging.max_results,
                max_page_size: config.paging.max_count,
                cursor_timeout_s: config.paging.pin_ttl_s,
                bearer_tokens: !config.auth.tokens.is_empty(),
                oauth_token_url: (!config.auth.clients.is_empty())
                    .then(|| format!("{}/oauth/token", config.base_url())),
                basic: !config.auth.basic.is_empty(),
            },
            refresh_interval_s: config.refresh.interval_s,
            ops: OpsPlacement {
                separate: config.ops.listen.is_some(),
                credential: config.ops.auth == OpsAuth::Read,
            },
        }),
        refresh_now,
        metrics,
        failed_auth: Arc::new(FailedAuth::new(
            config.limits.auth_failures_burst,
            config.limits.auth_failures_per_minute,
        )),
    };
    let rotation = secrets.map(|source| {
        tokio::spawn(rotation::run(
            source,
            Rotatable {
                auth: state.auth.as_ref().clone(),
                client: client.clone(),
            },
            stop_rx.clone(),
        ))
    });
    let ops = match config.ops.listen {
        Some(addr) => {
            let ops_listener = TcpListener::bind(addr).await.map_err(|e| {
                AppError::Io(std::io::Error::new(
                    e.kind(),
                    format!("ops.listen {addr} cannot be bound: {e}"),
                ))
            })?;
            let local = ops_listener.local_addr()?;
            println!("operations listening on http://{local}");
            let mut stop = stop_rx.clone();
            let router = http::ops::ops_router(state.clone());
            Some(tokio::spawn(async move {
                let _ = server::serve(
                    ops_listener,
                    router,
                    ConnLimits {
                        max_connections: 64,
                        ..ConnLimits::default()
                    },
                    Arc::new(ConnCounter::default()),
                    async move {
                        let _ = stop.wait_for(|s| *s).await;
                    },
                )
                .await;
            }))
        }
        None => None,
    };
    let router = http::router(state);
    log_start(&config, &listener);

    let limits = ConnLimits {
        header_read_timeout: Duration::from_secs(config.limits.header_read_timeout_s),
        idle_timeout: Duration::from_secs(config.limits.idle_timeout_s),
        max_connections: config.limits.max_connections,
        shutdown_grace: SHUTDOWN_GRACE,
    };
    let result = server::serve(
        listener,
        router,
        limits,
        Arc::new(ConnCounter::default()),
        shutdown,
    )
    .await
    .map_err(AppError::from);
    refresher.abort();
    if let Some(r) = rotation {
        let _ = r.await;
    }
    if let Some(o) = ops {
        let _ = o.await;
    }
    if let Some(saver) = saver {
        // The last published snapshot is on disk before the process ends.
        saver.flush_and_stop().await;
    }
    result
}
