//! In-memory JumpCloud (v1 system users, v2 user groups and the graph) with fault injection.
//!
//! Written from the JumpCloud facts sheet alone: it shares no types with `crate::jumpcloud`, so the client and
//! this fake cannot agree on the same mistake.
//!
//! # Layout
//! - [`serve`], [`spawn`], [`router`]: the ways in; configuration is [`EmulatorConfig`] and [`FaultConfig`].
//! - `gate`: the one middleware (stats → latency/faults → auth → handler) and `/__emulator/*`.
//! - `v1`, `v2`: the routes, thin: parse, call the store, render.
//! - `store/`: data, indexes and cross-object rules: the `Store` in `mod.rs`, user reads (`users`) and writes
//!   (`user_writes`), `groups`, `directories`.
//! - `model/`: objects and wire shapes, one file per kind (`users`, `groups`, `directories`, `org`, `graph`),
//!   with `ids` (ids and timestamps), `user_body` (a user body applied), `fields` (single-member readers)
//!   and `rules` (username, email, password).
//! - `query`: filter/sort/fields grammar of both API versions; `seed`: the seeded organisation.
//! - `faults`, `stats`: the fault dice and the request counters.
//! - `error`: error bodies, JSON answers, body and query extraction.
//! - `events`: the Directory Insights history every store write records; `insights`: the feed's routes
//!   (`/insights/directory/v1/events`, `/events/count`) over it; its query rules are tested in
//!   `insights_tests.rs`.
//! - `churn`: the background task that changes the directory as an admin in the console would.

mod churn;
mod error;
mod events;
mod faults;
mod gate;
mod insights;
mod model;
mod query;
mod seed;
mod stats;
mod store;
mod v1;
mod v2;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use std::sync::{
    Arc, Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard, Weak,
};

use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use self::error::ApiError;
use self::faults::Faults;
use self::stats::Stats;
use self::store::Store;

pub use self::events::{
    MAX_EVENTS as INSIGHTS_MAX_EVENTS, RETENTION_DAYS as INSIGHTS_RETENTION_DAYS,
};

/// The fastest console churn accepted: 1000 changes a second.
pub const MAX_CHURN_PER_MINUTE: u32 = 60_000;
/// The longest Directory Insights ingestion lag accepted: a day.
pub const MAX_INSIGHTS_LAG_MS: u64 = 24 * 3600 * 1000;
/// The feed's retention unless told otherwise (`insights_retention_s`): the real feed's 90 days.
pub const DEFAULT_INSIGHTS_RETENTION_S: u64 = INSIGHTS_RETENTION_DAYS as u64 * 24 * 3600;

/// Faults the emulator injects, and the Directory Insights plan, lag and console churn; every field can
/// also be changed at run time via `PUT /__emulator/faults`.
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
    /// Whether the organisation's plan includes Directory Insights; without it the feed answers 403
    /// (`--no-insights`).
    pub insights: bool,
    /// An event becomes visible in the Directory Insights feed this long after its change.
    pub insights_lag_ms: u64,
    /// The feed returns events at most this old (at most [`DEFAULT_INSIGHTS_RETENTION_S`], its default); a
    /// test makes it small to open a gap the feed no longer covers.
    pub insights_retention_s: u64,
    /// Changes made at random to the directory per minute, as an admin in the console would; 0 = none.
    /// At most [`MAX_CHURN_PER_MINUTE`].
    pub churn_per_minute: u32,
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
            insights: true,
            insights_lag_ms: 0,
            insights_retention_s: DEFAULT_INSIGHTS_RETENTION_S,
            churn_per_minute: 0,
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
    /// Numbers the Directory Insights answers' `X-Request-Id`.
    request_ids: AtomicU64,
    /// Seed of the console churn's dice.
    seed: u64,
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
        request_ids: AtomicU64::new(1),
        seed: config.seed,
    })
}

fn app_router(app: Arc<App>) -> Router {
    Router::new()
        .merge(v1::routes())
        .merge(v2::routes())
        .merge(insights::routes())
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
/// sizes). Its periodic outage windows count from this call. A bare router runs no console churn: [`serve`]
/// and [`spawn`] own that task.
pub fn router(config: EmulatorConfig) -> Router {
    app_router(build(config))
}

/// Starts the console churn on `app`; it runs until aborted.
fn start_churn(app: &Arc<App>) -> JoinHandle<()> {
    tokio::spawn(churn::run(app.clone(), app.seed))
}

/// Serve the emulator on `listener` until `shutdown` resolves; the console churn stops with it.
pub async fn serve(
    listener: tokio::net::TcpListener,
    config: EmulatorConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = tokio::task::spawn_blocking(move || build(config))
        .await
        .map_err(std::io::Error::other)?;
    let churn = start_churn(&app);
    let stop_churn = churn.abort_handle();
    let result = axum::serve(listener, app_router(app))
        .with_graceful_shutdown(async move {
            shutdown.await;
            stop_churn.abort();
        })
        .await;
    churn.abort();
    let _ = churn.await;
    result
}

/// An emulator serving on 127.0.0.1 in the background; dropping it shuts the server down.
#[derive(Debug)]
pub struct RunningEmulator {
    addr: SocketAddr,
    org_id: String,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
    churn: Option<JoinHandle<()>>,
    /// Lets tests see that nothing still holds the emulator after it stopped.
    #[cfg_attr(not(test), allow(dead_code))]
    app: Weak<App>,
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

    /// Stops the console churn and accepting, lets in-flight requests finish, and waits for both tasks.
    pub async fn shutdown(mut self) -> std::io::Result<()> {
        if let Some(churn) = self.churn.take() {
            churn.abort();
            let _ = churn.await;
        }
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
        if let Some(churn) = self.churn.take() {
            churn.abort();
        }
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
    let weak = Arc::downgrade(&app);
    let churn = start_churn(&app);
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
        churn: Some(churn),
        app: weak,
    })
}

/// The address an emulator started by [`spawn`] listens on.
pub type EmulatorAddr = SocketAddr;

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_churn_stops_with_the_emulator() {
        let emu = spawn(EmulatorConfig {
            users: 20,
            groups: 3,
            faults: FaultConfig {
                churn_per_minute: MAX_CHURN_PER_MINUTE,
                ..FaultConfig::default()
            },
            ..EmulatorConfig::default()
        })
        .await
        .unwrap();
        let app = emu.app.clone();
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
        loop {
            let n = app.upgrade().map_or(0, |a| a.read().events.len());
            if n >= 5 {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no churn: {n} events"
            );
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        emu.shutdown().await.unwrap();
        assert!(
            app.upgrade().is_none(),
            "something still holds the emulator"
        );
    }
}
