//! In-memory JumpCloud (v1 system users, v2 user groups and the graph) with fault injection.
//!
//! Written from the JumpCloud facts sheet alone: it shares no types with `crate::jumpcloud`, so the client and
//! this fake cannot agree on the same mistake.
//!
//! # Layout
//! - [`serve`], [`spawn`], [`router`]: the ways in; configuration is [`EmulatorConfig`] and [`FaultConfig`].
//! - `gate`: the one middleware (stats → latency/faults → auth → handler) and `/__emulator/*`.
//! - `v1`, `v2`: the routes, thin: parse, call the store, render.
//! - `store`: data, indexes and cross-object rules; `model`: objects, wire shapes, field validation.
//! - `query`: filter/sort/fields grammar of both API versions; `seed`: the seeded organisation.
//! - `faults`, `stats`: the fault dice and the request counters.
//! - `error`: error bodies, JSON answers, body and query extraction.

mod error;
mod faults;
mod gate;
mod model;
mod query;
mod seed;
mod stats;
mod store;
mod v1;
mod v2;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use self::error::ApiError;
use self::faults::Faults;
use self::stats::Stats;
use self::store::Store;

/// Faults the emulator injects; every field can also be changed at run time via `PUT /__emulator/faults`.
#[derive(Debug, Clone, PartialEq)]
pub struct FaultConfig {
    /// Share of requests answered with `fail_status` (an HTML gateway body for 502), at random.
    pub fail_rate: f64,
    /// Status for random failures: 502 (default), 500, 503 or 504.
    pub fail_status: u16,
    /// Period of outage windows in seconds; 0 = no periodic outage. The first starts at t = `outage_every_s`.
    pub outage_every_s: u64,
    /// Length of each outage window in seconds.
    pub outage_for_s: u64,
    /// Added latency on every answer.
    pub latency_ms: u64,
    /// Share of requests answered 429 with `Retry-After: retry_after_s`.
    pub rate_limit_rate: f64,
    /// `Retry-After` seconds sent with 429.
    pub retry_after_s: u64,
    /// Share of writes that are applied and then answered 502.
    pub commit_then_fail_rate: f64,
}

impl Default for FaultConfig {
    fn default() -> Self {
        Self {
            fail_rate: 0.0,
            fail_status: 502,
            outage_every_s: 0,
            outage_for_s: 0,
            latency_ms: 0,
            rate_limit_rate: 0.0,
            retry_after_s: 1,
            commit_then_fail_rate: 0.0,
        }
    }
}

/// Everything the emulator needs to start.
#[derive(Debug, Clone)]
pub struct EmulatorConfig {
    /// The only `x-api-key` accepted.
    pub api_key: String,
    /// Number of seeded users.
    pub users: usize,
    /// Number of seeded user groups (besides "All Users").
    pub groups: usize,
    /// Seed of the generated directory and of the fault dice.
    pub seed: u64,
    /// Requests without `x-org-id` get 401 (`/api/organizations` excepted).
    pub multi_tenant: bool,
    /// Faults at start.
    pub faults: FaultConfig,
}

impl Default for EmulatorConfig {
    fn default() -> Self {
        Self {
            api_key: "demo-key".into(),
            users: 601,
            groups: 50,
            seed: 1,
            multi_tenant: false,
            faults: FaultConfig::default(),
        }
    }
}

/// Shared state of one emulator.
///
/// Plain std locks: every critical section is in-memory work with no `.await` inside, and readers (list pages)
/// far outnumber writers, hence `RwLock` for the store.
pub(crate) struct App {
    api_key: String,
    multi_tenant: bool,
    org_id: String,
    store: RwLock<Store>,
    faults: Mutex<Faults>,
    stats: Mutex<Stats>,
}

// === impl App ===

impl App {
    /// A poisoned lock only means a handler panicked mid-way; the data is still the best we have.
    fn read(&self) -> RwLockReadGuard<'_, Store> {
        self.store.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, Store> {
        self.store.write().unwrap_or_else(PoisonError::into_inner)
    }

    fn faults(&self) -> MutexGuard<'_, Faults> {
        self.faults.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn stats(&self) -> MutexGuard<'_, Stats> {
        self.stats.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Seeds the organisation and builds the shared state. Seeding 100 000 users is CPU work of a second or so.
fn build(config: EmulatorConfig) -> Arc<App> {
    let store = seed::seed(config.seed, config.users, config.groups);
    tracing::info!(
        users = config.users,
        groups = config.groups,
        seed = config.seed,
        org = %store.org.id,
        "JumpCloud emulator seeded"
    );
    Arc::new(App {
        api_key: config.api_key,
        multi_tenant: config.multi_tenant,
        org_id: store.org.id.clone(),
        store: RwLock::new(store),
        faults: Mutex::new(Faults::new(
            config.faults,
            config.seed,
            tokio::time::Instant::now(),
        )),
        stats: Mutex::new(Stats::default()),
    })
}

fn app_router(app: Arc<App>) -> Router {
    Router::new()
        .merge(v1::routes())
        .merge(v2::routes())
        .merge(gate::control_routes())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        // `Router::layer` wraps each route and the fallback after routing, so the gate sees `MatchedPath`.
        .layer(axum::middleware::from_fn_with_state(
            app.clone(),
            gate::gate,
        ))
        .with_state(app)
}

async fn not_found(State(_): State<Arc<App>>) -> Response {
    ApiError::NotFound("Not Found".into()).into_response()
}

async fn method_not_allowed(State(_): State<Arc<App>>) -> Response {
    ApiError::MethodNotAllowed.into_response()
}

/// The emulator as a router, seeded from `config` (synchronously: call from a blocking context for large
/// sizes). Its periodic outage windows count from this call.
pub fn router(config: EmulatorConfig) -> Router {
    app_router(build(config))
}

/// Serve the emulator on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    config: EmulatorConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = tokio::task::spawn_blocking(move || router(config))
        .await
        .map_err(std::io::Error::other)?;
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}

/// An emulator serving on 127.0.0.1 in the background; dropping it shuts the server down.
#[derive(Debug)]
pub struct RunningEmulator {
    addr: SocketAddr,
    org_id: String,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

// === impl RunningEmulator ===

impl RunningEmulator {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`, to which `/api/...` paths are appended.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The seeded organisation's id, for `x-org-id` with a multi-tenant key.
    pub fn org_id(&self) -> &str {
        &self.org_id
    }

    /// Stops accepting, lets in-flight requests finish, and waits for the server task.
    pub async fn shutdown(mut self) -> std::io::Result<()> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        match self.task.take() {
            Some(task) => task.await.map_err(std::io::Error::other)?,
            None => Ok(()),
        }
    }
}

impl Drop for RunningEmulator {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// Seeds an emulator from `config` and serves it on 127.0.0.1 with an ephemeral port.
pub async fn spawn(config: EmulatorConfig) -> std::io::Result<RunningEmulator> {
    let listener = tokio::net::TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, 0)).await?;
    let addr = listener.local_addr()?;
    let app = tokio::task::spawn_blocking(move || build(config))
        .await
        .map_err(std::io::Error::other)?;
    let org_id = app.org_id.clone();
    let router = app_router(app);
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        axum::serve(listener, router)
            .with_graceful_shutdown(async move {
                // A dropped sender also ends the server.
                let _ = rx.await;
            })
            .await
    });
    Ok(RunningEmulator {
        addr,
        org_id,
        shutdown: Some(tx),
        task: Some(task),
    })
}

/// The address an emulator started by [`spawn`] listens on.
pub type EmulatorAddr = SocketAddr;
