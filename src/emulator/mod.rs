//! In-memory JumpCloud (v1 system users, v2 user groups and the graph) with fault injection.
//!
//! Written from the JumpCloud facts sheet alone: it shares no types with `crate::jumpcloud`.

use std::future::Future;
use std::net::SocketAddr;

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

/// Serve the emulator on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    config: EmulatorConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let _ = (config, listener.local_addr());
    shutdown.await;
    Ok(())
}

/// The address an emulator started by [`spawn`] listens on.
pub type EmulatorAddr = SocketAddr;
