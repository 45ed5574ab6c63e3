//! Wiring: from a validated [`Config`] to a running service — the JumpCloud client, the snapshot store, the
//! HTTP router, and the background work (refresher, Directory Insights reader, snapshot saver, restore
//! completion, secret rotation, operations listener), which this module owns as one [`Background`] and stops and awaits on shutdown.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::Notify;

use crate::audit::Audit;
use crate::auth::Authenticator;
use crate::auth::throttle::FailedAuth;
use crate::cache::insights::{FeedHealth, FeedMode, FeedSettings, Poller};
use crate::cache::persist;
use crate::cache::refresher::{self, Refresher, Refreshes, Schedule};
use crate::cache::replicas::{Leading, Shared, SharedSettings};
use crate::cache::versions::Versions;
use crate::cache::{BuildOptions, Store};
use crate::config::{Config, OpsAuth, StoreKind};
use crate::directory::pins::Pins;
use crate::directory::reader::Reader;
use crate::directory::write::{WriteSettings, Writer};
use crate::http::ops::OpsPlacement;
use crate::http::server::{self, ConnCounter, ConnLimits};
use crate::http::{self, AppState, HttpSettings};
use crate::jumpcloud::{JcClient, JcClientConfig, JcError, Purpose, RetryPolicy};
use crate::mapping::MappingOptions;
use crate::rotation::{self, Rotatable, SecretSource};
use crate::scim::discovery::Capabilities;
use crate::scim::patch::PatchOptions;
use crate::scim::reference::References;
use crate::shutdown::{Background, stop_signal};
use crate::telemetry::Metrics;

/// At most this many list walks are pinned at once (the oldest pin goes first).
const PIN_WALKS: u64 = 10_000;
/// At most this many distinct snapshot versions are held for pinned walks.
const PIN_VERSIONS: usize = 8;

/// A write waits at most this for every replica to serve its version (read-your-writes across replicas).
const RYW_WAIT: Duration = Duration::from_secs(2);
/// A replica looks for a new shared version this often when no announcement reached it.
const STORE_POLL: Duration = Duration::from_secs(1);

/// How long in-flight requests may take to finish once shutdown starts.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(8);
/// How long each background task may take to stop once requests have drained (the saver's last save).
const TASK_GRACE: Duration = Duration::from_secs(10);
/// Connections the operations listener (`ops.listen`) holds at once.
const OPS_CONNECTIONS: usize = 64;

/// Why the service could not start or stopped abnormally.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("the JumpCloud client could not be built: {0}")]
    Client(#[from] JcError),
    #[error("the listener failed: {0}")]
    Io(#[from] std::io::Error),
    #[error("client authentication cannot be set up: {0}")]
    Auth(String),
    #[error("the shared store cannot be set up: {0}")]
    Store(String),
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
    let insights = match config.insights.enabled {
        FeedMode::Off => "off: full refreshes only".to_owned(),
        mode => format!(
            "{} ({}, every {} s; whether the organisation has it is logged once asked)",
            mode.as_str(),
            config.insights_url(),
            config.insights.poll_s
        ),
    };
    let refresh_interval = match config.refresh.interval_s {
        Some(s) => format!("{s} s"),
        None if config.insights.enabled == FeedMode::Off => {
            format!("{} s", config.refresh_interval_s(false))
        }
        None => format!(
            "{} s while the Directory Insights feed is used, {} s while it is not",
            config.refresh_interval_s(true),
            config.refresh_interval_s(false)
        ),
    };
    tracing::info!(
        version = env!("CARGO_PKG_VERSION"),
        listen,
        jumpcloud = host,
        org = config.jumpcloud.org_id.as_deref().unwrap_or("-"),
        credentials = credentials.join(", "),
        data_dir,
        refresh_interval = refresh_interval.as_str(),
        insights = insights.as_str(),
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
    cc.insights_url = Some(config.insights_url());
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
    let metrics = Metrics::new();
    let client = observed_client(&config, &metrics)?;
    let store = snapshot_store(&config)?;
    let shared = shared_store(&config, &store)?;
    if let Some(sh) = &shared {
        load_shared(sh).await;
    }
    let mut tasks = Background::new();
    // A snapshot saved before a restart is served at once, before the first refresh (which may fail).
    let on_disk = match &config.data_dir {
        Some(dir) => persist::load_and_publish(&store, dir, &mut tasks).await,
        None => None,
    };
    // With the snapshot, the feed's cursor saved beside it: the feed reads on from there.
    let resumed = match (&config.data_dir, on_disk) {
        (Some(dir), Some(_)) if config.insights.enabled != FeedMode::Off => {
            persist::resume_feed(&store, dir).await
        }
        _ => None,
    };
    let (refresh_now, feed) = spawn_refreshing(
        &mut tasks,
        &config,
        (&store, &client, &metrics),
        resumed.and_then(|r| r.refreshed_at),
        shared.clone(),
    );
    let state = app_state(
        &config,
        store.clone(),
        client.clone(),
        (refresh_now, feed),
        (metrics, shared),
    )?;
    if let Some(source) = secrets {
        let targets = Rotatable {
            auth: state.auth.as_ref().clone(),
            client,
        };
        tasks.spawn("rotation", move |stop| rotation::run(source, targets, stop));
    }
    if let Some(addr) = config.ops.listen {
        spawn_ops_listener(&mut tasks, addr, &state).await?;
    }
    // The saver starts last so that it stops last: its final save comes after the last publish.
    if let Some(dir) = config.data_dir.clone() {
        tasks.spawn("saver", move |stop| {
            persist::run_saver(store, dir, on_disk, stop)
        });
    }
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
    // Requests have drained: stop the background work (the saver writing the last version) and wait for it.
    tasks.stop(TASK_GRACE).await;
    result
}

/// The full refresh and, unless `insights.enabled = "off"`, the Directory Insights reader, as tasks of
/// `tasks`; the trigger `POST /admin/refresh` notifies and the feed's health, for the handlers. The first
/// refresh waits its interval from `resume_from` (a restored snapshot and cursor) instead of running at once.
/// With replicas (`shared`), they run only while this replica holds the refresher's lease.
fn spawn_refreshing(
    tasks: &mut Background,
    config: &Config,
    (store, client, metrics): (&Arc<Store>, &JcClient, &Arc<Metrics>),
    resume_from: Option<jiff::Timestamp>,
    shared: Option<Arc<Shared>>,
) -> (Arc<Notify>, Arc<FeedHealth>) {
    let trigger = Arc::new(Notify::new());
    let feed = Arc::new(FeedHealth::new(
        config.insights.enabled,
        Duration::from_secs(config.insights.poll_s),
    ));
    let jobs = LeaderJobs {
        config: config.clone(),
        store: store.clone(),
        client: client.clone(),
        metrics: metrics.clone(),
        trigger: trigger.clone(),
        refreshes: Arc::new(Refreshes::new(trigger.clone())),
        feed: feed.clone(),
        shared: shared.clone(),
    };
    let Some(shared) = shared else {
        let (refresher, poller) = jobs.build(resume_from);
        tasks.spawn("refresher", move |stop| refresher::run(refresher, stop));
        if let Some(poller) = poller {
            tasks.spawn("insights", move |stop| poller.run(stop));
        }
        return (trigger, feed);
    };
    (spawn_replica(tasks, &shared, jobs), feed)
}

/// A replica's tasks: following the shared store, holding or seeking the lease (and running the leader's
/// jobs while it is held), and carrying `POST /admin/refresh` on any replica to the leader through Redis.
/// The trigger the handlers notify.
fn spawn_replica(tasks: &mut Background, shared: &Arc<Shared>, jobs: LeaderJobs) -> Arc<Notify> {
    let follow = shared.clone();
    tasks.spawn("store-follow", move |stop| follow.run_follow(stop));
    let admin = Arc::new(Notify::new());
    let (asked, forward, refresher) = (admin.clone(), shared.clone(), jobs.trigger.clone());
    tasks.spawn("store-refresh-requests", move |mut stop| async move {
        loop {
            tokio::select! {
                _ = asked.notified() => {
                    if let Err(e) = forward.ask_refresh().await {
                        tracing::warn!(error = %e, "a refresh could not be asked of the leader: {e}");
                    }
                }
                _ = forward.refresh_asked.notified() => refresher.notify_one(),
                _ = stop.requested() => return,
            }
        }
    });
    let lead = shared.clone();
    let jobs = Arc::new(jobs);
    tasks.spawn("store-lease", move |stop| {
        lead.run_leadership(
            move || {
                let jobs = jobs.clone();
                async move { jobs.start().await }
            },
            stop,
        )
    });
    admin
}

/// What the refresher and the feed's reader are made of, kept so that a replica taking the lease can start
/// them again.
struct LeaderJobs {
    config: Config,
    store: Arc<Store>,
    client: JcClient,
    metrics: Arc<Metrics>,
    trigger: Arc<Notify>,
    refreshes: Arc<Refreshes>,
    feed: Arc<FeedHealth>,
    shared: Option<Arc<Shared>>,
}

impl LeaderJobs {
    fn build(&self, resume_from: Option<jiff::Timestamp>) -> (Refresher, Option<Poller>) {
        let config = &self.config;
        let with_feed = config.insights.enabled != FeedMode::Off;
        let refresher = Refresher {
            store: self.store.clone(),
            client: self.client.for_purpose(Purpose::Refresh),
            schedule: Schedule {
                fixed: config.refresh.interval_s.map(Duration::from_secs),
                with_feed: Duration::from_secs(config.refresh_interval_s(true)),
                without_feed: Duration::from_secs(config.refresh_interval_s(false)),
                jitter: config.refresh.jitter,
                first_retry: Duration::from_secs(1),
            },
            trigger: self.trigger.clone(),
            refreshes: self.refreshes.clone(),
            feed: with_feed.then(|| self.feed.clone()),
            metrics: self.metrics.clone(),
            resume_from: resume_from.filter(|_| with_feed),
            shared: self.shared.clone(),
        };
        let poller = with_feed.then(|| Poller {
            store: self.store.clone(),
            feed: self.client.for_purpose(Purpose::Insights),
            fetch: self.client.for_purpose(Purpose::Fetch),
            settings: feed_settings(config),
            health: self.feed.clone(),
            refreshes: self.refreshes.clone(),
            metrics: self.metrics.clone(),
            shared: self.shared.clone(),
        });
        (refresher, poller)
    }

    /// The leader's jobs, started now: with the feed, from the cursor the last leader shared (the first
    /// full refresh then waits its interval from the one behind it), else with a full refresh at once.
    async fn start(&self) -> Leading {
        let resumed = match &self.shared {
            Some(shared) if self.config.insights.enabled != FeedMode::Off => {
                shared.resume_feed().await
            }
            _ => None,
        };
        let (handle, stop) = stop_signal();
        let (refresher, poller) = self.build(resumed.and_then(|r| r.refreshed_at));
        let mut jobs = vec![tokio::spawn(refresher::run(refresher, stop.clone()))];
        if let Some(poller) = poller {
            jobs.push(tokio::spawn(poller.run(stop)));
        }
        Leading {
            stop: handle,
            tasks: jobs,
        }
    }
}

/// With `store.kind = "redis"`, the shared store (not yet connected).
fn shared_store(config: &Config, store: &Arc<Store>) -> Result<Option<Arc<Shared>>, AppError> {
    if config.store.kind != StoreKind::Redis {
        return Ok(None);
    }
    let url = config.store.exposed_url();
    let settings = SharedSettings {
        timeout: Duration::from_millis(config.store.timeout_ms),
        lease: Duration::from_secs(config.store.lease_s),
        keep_versions: PIN_VERSIONS,
        ryw_wait: RYW_WAIT,
        poll: STORE_POLL,
        lock_ttl: write_deadline(config.limits.request_timeout_s) + Duration::from_secs(5),
        pin_ttl: Duration::from_secs(config.paging.pin_ttl_s),
    };
    Shared::new(&url, &config.store.key_prefix, settings, store.clone())
        .map(Some)
        .map_err(|e| AppError::Store(e.to_string()))
}

/// Start-up with replicas: serve the shared current version at once, if Redis has one (whatever
/// JumpCloud's state). Redis down is reported and not fatal: the replica catches up once it answers.
async fn load_shared(shared: &Shared) {
    match shared.catch_up().await {
        Ok(true) => tracing::info!(
            version = shared.health.version(),
            "serving version {} from the shared store",
            shared.health.version()
        ),
        Ok(false) => tracing::info!("the shared store holds no version yet"),
        Err(e) => tracing::warn!(
            error = %e,
            "the shared store cannot be read at start-up: {e}; this replica catches up once it answers"
        ),
    }
}

/// The feed reader's settings.
fn feed_settings(config: &Config) -> FeedSettings {
    let i = &config.insights;
    FeedSettings {
        mode: i.enabled,
        poll: Duration::from_secs(i.poll_s),
        overlap: Duration::from_secs(i.overlap_s),
        max_lag: Duration::from_secs(i.max_lag_s),
        retention: Duration::from_secs(i.retention_s),
        refresh_in_use: Duration::from_secs(config.refresh_interval_s(true)),
        refresh_otherwise: Duration::from_secs(config.refresh_interval_s(false)),
    }
}

/// The service's router for `config` over a store of its own, without a listener or background work: what
/// tests drive with `tower::ServiceExt::oneshot`. Nothing is published; JumpCloud is not called until a
/// write is.
pub fn router_for(config: &Config) -> Result<(axum::Router, Arc<Store>), AppError> {
    let metrics = Metrics::new();
    let client = observed_client(config, &metrics)?;
    let store = snapshot_store(config)?;
    let feed = Arc::new(FeedHealth::new(
        config.insights.enabled,
        Duration::from_secs(config.insights.poll_s),
    ));
    let state = app_state(
        config,
        store.clone(),
        client,
        (Arc::new(Notify::new()), feed),
        (metrics, None),
    )?;
    Ok((http::router(state), store))
}

/// The JumpCloud client, reporting every call to `metrics`.
fn observed_client(config: &Config, metrics: &Arc<Metrics>) -> Result<JcClient, AppError> {
    let mut client = jumpcloud_client(config)?;
    // Before any clone: the observer lives on the handle, so clones made earlier would not report.
    let observed = metrics.clone();
    client.set_observer(Arc::new(move |purpose, route, status, elapsed| {
        observed.observe_upstream(purpose.as_str(), route, status, elapsed)
    }));
    Ok(client)
}

/// The snapshot store. With a data directory, versions are reserved on disk before they are used, so none
/// repeats after a crash.
fn snapshot_store(config: &Config) -> Result<Arc<Store>, AppError> {
    let options = BuildOptions {
        mapping: MappingOptions {
            username_attribute: config.mapping.username_attribute.clone(),
            external_id_attribute: config.mapping.external_id_attribute.clone(),
            scim_base: scim_base(config),
        },
        directories_as_groups: config.groups.directories_as_groups,
    };
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
    Ok(Arc::new(
        Store::with_max_shrink(options, config.refresh.max_shrink).with_versions(versions),
    ))
}

/// The writer: JumpCloud first, then the snapshot.
fn writer(
    config: &Config,
    store: Arc<Store>,
    client: JcClient,
    shared: Option<Arc<Shared>>,
) -> Arc<Writer> {
    let settings = WriteSettings {
        username_policy: config.users.username_policy,
        delete_mode: config.users.delete_mode,
        mapping: store.options.mapping.clone(),
        deadline: write_deadline(config.limits.request_timeout_s),
        patch: PatchOptions {
            refs: References::new(&scim_base(config)),
            max_operations: config.limits.patch_operations,
            max_values: config.limits.patch_values,
            max_multi: config.limits.multi_values,
        },
        cpu_tasks: config.limits.cpu_tasks,
    };
    Arc::new(Writer::new(store, client.for_purpose(Purpose::Write), settings).with_shared(shared))
}

/// Everything a request handler reaches.
fn app_state(
    config: &Config,
    store: Arc<Store>,
    client: JcClient,
    (refresh_now, feed): (Arc<Notify>, Arc<FeedHealth>),
    (metrics, shared): (Arc<Metrics>, Option<Arc<Shared>>),
) -> Result<AppState, AppError> {
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
    Ok(AppState::new(crate::http::Shared {
        writer: writer(config, store.clone(), client, shared.clone()),
        reader: Reader::new(store.clone(), pins).with_shared(shared.clone()),
        store,
        audit,
        auth: Arc::new(auth),
        settings: Arc::new(http_settings(config)),
        refresh_now,
        metrics,
        failed_auth: Arc::new(FailedAuth::new(
            config.limits.auth_failures_burst,
            config.limits.auth_failures_per_minute,
        )),
        feed,
        replicas: shared.map(|shared| crate::http::Replicas {
            shared,
            url: config.store.redacted_url(),
        }),
    }))
}

/// What the HTTP layer needs to know of the configuration.
fn http_settings(config: &Config) -> HttpSettings {
    HttpSettings {
        scim_base: scim_base(config),
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
        refresh_interval_s: config.refresh_interval_s(false),
        refresh_interval_with_feed_s: config.refresh_interval_s(true),
        ops: OpsPlacement {
            separate: config.ops.listen.is_some(),
            credential: config.ops.auth == OpsAuth::Read,
        },
    }
}

/// The operations endpoints on their own address (`ops.listen`), a task of `tasks`.
async fn spawn_ops_listener(
    tasks: &mut Background,
    addr: std::net::SocketAddr,
    state: &AppState,
) -> Result<(), AppError> {
    let ops_listener = TcpListener::bind(addr).await.map_err(|e| {
        AppError::Io(std::io::Error::new(
            e.kind(),
            format!("ops.listen {addr} cannot be bound: {e}"),
        ))
    })?;
    let local = ops_listener.local_addr()?;
    println!("operations listening on http://{local}");
    let router = http::ops::ops_router(state.clone());
    tasks.spawn("ops-listener", move |mut stop| async move {
        let limits = ConnLimits {
            max_connections: OPS_CONNECTIONS,
            ..ConnLimits::default()
        };
        let counter = Arc::new(ConnCounter::default());
        let stopped = async move { stop.requested().await };
        if let Err(e) = server::serve(ops_listener, router, limits, counter, stopped).await {
            tracing::error!(error = %e, "the operations listener failed: {e}");
        }
    });
    Ok(())
}
