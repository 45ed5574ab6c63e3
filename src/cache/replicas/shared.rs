//! The Redis side of replicas: one connection (redis-rs's reconnecting `ConnectionManager`), every call
//! bounded by `store.timeout_ms`, and the operations the rest of the service asks of the shared store:
//! publishing a version (under the publish lock, fenced), catching up with the newest one, the refresher's
//! lease, write locks, pins, and the heartbeat that read-your-writes waits on. Knows the keys
//! ([`super::keys`]) and the persisted format ([`crate::cache::persist`]) only through their functions; never
//! sees HTTP or JumpCloud.

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex as StdMutex};
use std::time::Duration;

use rand::{Rng, SeedableRng};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{RedisResult, Script};
use tokio::sync::{Mutex, Notify};

use super::keys::Keys;
use super::lease::Lease;
use crate::cache::{EventsPublished, RefreshPublished, Snapshot, Store};

/// How long a publication waits for another replica's to finish.
pub(super) const PUBLISH_WAIT: Duration = Duration::from_secs(10);
/// Uploaded chunks expire unless the publication that uploads them succeeds (which makes them lasting).
pub(super) const UPLOAD_TTL_MS: u64 = 120_000;
/// One chunk's transfer gets at least this long, whatever `store.timeout_ms` is (4 MiB on a slow link).
pub(super) const TRANSFER_TIMEOUT: Duration = Duration::from_secs(10);

/// What the shared store is asked to keep to.
#[derive(Debug, Clone)]
pub struct SharedSettings {
    /// Bound on every Redis call (`store.timeout_ms`).
    pub timeout: Duration,
    /// The refresher's lease (`store.lease_s`).
    pub lease: Duration,
    /// Published versions kept in Redis for pinned walks (the newest first).
    pub keep_versions: usize,
    /// A write waits at most this for every live replica to load its version.
    pub ryw_wait: Duration,
    /// How often a replica looks for a new version when no announcement came.
    pub poll: Duration,
    /// A write lock expires after this when its writer died (a write's own deadline and some).
    pub lock_ttl: Duration,
    /// A pinned walk's pin lives this long in Redis (`paging.pin_ttl_s`).
    pub pin_ttl: Duration,
}

/// Why the shared store could not do what was asked.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    #[error("the shared store (Redis) is unavailable: {0}")]
    Unavailable(String),
    #[error("the shared store is busy: {0}")]
    Busy(&'static str),
    #[error("this replica does not hold the refresher's lease")]
    NotLeader,
    #[error("the shared store holds a version that does not read back: {0}")]
    Corrupt(String),
}

/// Who may publish a version: only the lease's holder (refreshes, feed batches), or any replica (writes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fence {
    Leader,
    Any,
}

/// What a [`Store`] operation returns, as far as the shared store cares: the version it published, if any.
pub trait Outcome {
    fn published(&self) -> Option<Arc<Snapshot>>;
}

impl Outcome for Option<Arc<Snapshot>> {
    fn published(&self) -> Option<Arc<Snapshot>> {
        self.clone()
    }
}

impl Outcome for RefreshPublished {
    fn published(&self) -> Option<Arc<Snapshot>> {
        match self {
            RefreshPublished::Published(s) => Some(s.clone()),
            RefreshPublished::HeldBack(_) => None,
        }
    }
}

impl Outcome for EventsPublished {
    fn published(&self) -> Option<Arc<Snapshot>> {
        match self {
            EventsPublished::Published(s) => Some(s.clone()),
            _ => None,
        }
    }
}

/// What `/readyz`, `/status` and `/metrics` say of the shared store.
#[derive(Debug, Default)]
pub struct StoreHealth {
    pub(super) up: AtomicBool,
    pub(super) leader: AtomicBool,
    errors: AtomicU64,
    /// The newest shared version this replica has loaded or published.
    pub(super) version: AtomicU64,
    pub(super) fenced: AtomicU64,
    /// Versions this replica shared as deltas (the rest it shared whole).
    pub(super) deltas: AtomicU64,
    pub(super) wholes: AtomicU64,
    last_error: StdMutex<Option<String>>,
}

impl StoreHealth {
    pub fn up(&self) -> bool {
        self.up.load(Ordering::Relaxed)
    }
    pub fn leader(&self) -> bool {
        self.leader.load(Ordering::Relaxed)
    }
    pub fn errors(&self) -> u64 {
        self.errors.load(Ordering::Relaxed)
    }
    pub fn version(&self) -> u64 {
        self.version.load(Ordering::Relaxed)
    }
    /// Publications Redis refused because their fencing token was stale.
    pub fn fenced(&self) -> u64 {
        self.fenced.load(Ordering::Relaxed)
    }
    pub fn deltas(&self) -> u64 {
        self.deltas.load(Ordering::Relaxed)
    }
    pub fn wholes(&self) -> u64 {
        self.wholes.load(Ordering::Relaxed)
    }
    pub fn last_error(&self) -> Option<String> {
        self.last_error.lock().ok().and_then(|g| g.clone())
    }
    pub(super) fn failed(&self, what: String) -> StoreError {
        self.up.store(false, Ordering::Relaxed);
        self.errors.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut g) = self.last_error.lock() {
            *g = Some(what.clone());
        }
        StoreError::Unavailable(what)
    }
}

// === scripts ===

/// Take the lease if nobody holds it, under a new fencing token. KEYS: lease, fence. ARGV: lease ms.
pub(super) static TAKE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local t = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], t, 'PX', ARGV[1])
return t",
    )
});

/// Extend a key only while it holds our token. KEYS: key. ARGV: token, ms.
pub(super) static RENEW: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0",
    )
});

/// Delete a key only while it holds our token. KEYS: key. ARGV: token.
pub(super) static RELEASE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0",
    )
});

/// Set a key only while the lease holds our fencing token. KEYS: lease, key. ARGV: fencing token, value.
pub(super) static FENCED_SET: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[2], ARGV[2])
return 1",
    )
});

/// Make an uploaded version current, atomically with every check: the publish lock is ours, the lease holds
/// our fencing token (leader-only publications), the version is newer than the current one and uploaded, and
/// a delta is made on the current version. Then keep it (its chunks no longer expire), drop the versions no
/// kept version needs (past the newest `keep`, back to the whole version the oldest kept one is made on),
/// announce it.
/// KEYS: current, publish lock, lease, versions list. ARGV: publish token, fencing token or '', version,
/// keep, prefix, channel, the delta's base or ''.
pub(super) static PUBLISH: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"if redis.call('GET', KEYS[2]) ~= ARGV[1] then return -1 end
if ARGV[2] ~= '' and redis.call('GET', KEYS[3]) ~= ARGV[2] then return -2 end
local v = tonumber(ARGV[3])
local cur = tonumber(redis.call('GET', KEYS[1]) or '0')
if v <= cur then return -3 end
if ARGV[7] ~= '' and (tonumber(ARGV[7]) ~= cur or redis.call('EXISTS', ARGV[5] .. 'v:' .. cur) == 0) then
  return -5
end
local function each_key(ver, f)
  local m = redis.call('GET', ARGV[5] .. 'v:' .. ver)
  if not m then return end
  local n = tonumber(string.match(m, '^%d+:(%d+):'))
  for i = 0, n - 1 do f(ARGV[5] .. 'v:' .. ver .. ':' .. i) end
  f(ARGV[5] .. 'v:' .. ver)
end
local function whole(ver)
  local m = redis.call('GET', ARGV[5] .. 'v:' .. ver)
  return m ~= false and string.match(m, '^%d+:%d+:%d+$') ~= nil
end
if redis.call('EXISTS', ARGV[5] .. 'v:' .. ARGV[3]) == 0 then return -4 end
each_key(ARGV[3], function(k) redis.call('PERSIST', k) end)
redis.call('SET', KEYS[1], ARGV[3])
redis.call('LPUSH', KEYS[4], ARGV[3])
local keep = tonumber(ARGV[4])
local all = redis.call('LRANGE', KEYS[4], 0, -1)
if #all > keep then
  local cut = nil
  for i = keep, #all do
    if whole(all[i]) then cut = i break end
  end
  if cut then
    for i = #all, cut + 1, -1 do
      redis.call('RPOP', KEYS[4])
      each_key(all[i], function(k) redis.call('DEL', k) end)
    end
  end
end
redis.call('PUBLISH', ARGV[6], ARGV[3])
return 1",
    )
});

pub(super) fn unix_ms() -> u64 {
    jiff::Timestamp::now().as_millisecond().max(0) as u64
}

fn random<T>() -> T
where
    rand::distr::StandardUniform: rand::distr::Distribution<T>,
{
    rand::rngs::SmallRng::from_os_rng().random()
}

pub(super) fn new_token(replica: &str) -> String {
    format!("{replica}:{:016x}", random::<u64>())
}

/// Whether a Redis answers `PING` at `url` within `timeout` (for `check`); the error never repeats the URL.
pub async fn ping(url: &str, timeout: Duration) -> Result<(), StoreError> {
    let client = redis::Client::open(url).map_err(|e| {
        StoreError::Unavailable(format!(
            "store.url is not a usable Redis URL ({:?})",
            e.kind()
        ))
    })?;
    let answer = async {
        let mut c = client.get_multiplexed_async_connection().await?;
        redis::cmd("PING").query_async::<String>(&mut c).await
    };
    match tokio::time::timeout(timeout, answer).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(StoreError::Unavailable(e.to_string())),
        Err(_) => Err(StoreError::Unavailable(format!(
            "no answer within {} ms",
            timeout.as_millis()
        ))),
    }
}

// === the shared store ===

/// The shared store as one replica uses it.
pub struct Shared {
    pub(super) client: redis::Client,
    /// Made on first use and kept: the manager reconnects by itself; a tokio mutex, since making it awaits.
    pub(super) conn: Mutex<Option<ConnectionManager>>,
    pub(super) keys: Keys,
    pub(super) settings: SharedSettings,
    /// This process among the replicas (random per start).
    pub(super) replica: String,
    pub(super) store: Arc<Store>,
    pub health: StoreHealth,
    pub(super) lease: StdMutex<Lease>,
    /// Set when this replica published locally what Redis then refused: the next catch-up loads Redis's
    /// current version even if its number is not newer.
    pub(super) diverged: AtomicBool,
    /// One publication at a time from this process (others wait here, not on Redis).
    pub(super) publishing: Mutex<()>,
    /// One catch-up at a time.
    pub(super) adopting: Mutex<()>,
    /// A new version was announced.
    pub(super) announced: Notify,
    /// A follower asked the leader for a refresh.
    pub refresh_asked: Arc<Notify>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("replica", &self.replica)
            .field("prefix", &self.keys.prefix())
            .finish_non_exhaustive()
    }
}

impl Shared {
    /// The shared store at `url` (not yet connected: the first call connects, and a Redis down at start-up
    /// is only a Redis down). The error never repeats the URL.
    pub fn new(
        url: &str,
        prefix: &str,
        settings: SharedSettings,
        store: Arc<Store>,
    ) -> Result<Arc<Shared>, StoreError> {
        let client = redis::Client::open(url).map_err(|e| {
            StoreError::Unavailable(format!(
                "store.url is not a usable Redis URL ({:?})",
                e.kind()
            ))
        })?;
        Ok(Arc::new(Shared {
            client,
            conn: Mutex::new(None),
            keys: Keys::new(prefix),
            settings,
            replica: format!("{:08x}", random::<u32>()),
            store,
            health: StoreHealth::default(),
            lease: StdMutex::new(Lease::default()),
            diverged: AtomicBool::new(false),
            publishing: Mutex::new(()),
            adopting: Mutex::new(()),
            announced: Notify::new(),
            refresh_asked: Arc::new(Notify::new()),
        }))
    }

    pub fn settings(&self) -> &SharedSettings {
        &self.settings
    }

    pub fn replica(&self) -> &str {
        &self.replica
    }

    pub(super) async fn conn(&self) -> Result<ConnectionManager, StoreError> {
        let mut g = self.conn.lock().await;
        if let Some(c) = g.as_ref() {
            return Ok(c.clone());
        }
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(self.settings.timeout))
            .set_response_timeout(Some(TRANSFER_TIMEOUT.max(self.settings.timeout)))
            .set_number_of_retries(1);
        let made = tokio::time::timeout(
            self.settings.timeout,
            ConnectionManager::new_with_config(self.client.clone(), config),
        )
        .await;
        match made {
            Ok(Ok(c)) => {
                *g = Some(c.clone());
                Ok(c)
            }
            Ok(Err(e)) => Err(self.health.failed(format!("cannot connect: {e}"))),
            Err(_) => Err(self.health.failed("cannot connect: timed out".into())),
        }
    }

    /// `fut` within `within`, its failure counted as Redis being down.
    pub(super) async fn bounded<T>(
        &self,
        within: Duration,
        fut: impl Future<Output = RedisResult<T>>,
    ) -> Result<T, StoreError> {
        match tokio::time::timeout(within, fut).await {
            Ok(Ok(v)) => {
                self.health.up.store(true, Ordering::Relaxed);
                Ok(v)
            }
            Ok(Err(e)) => Err(self.health.failed(e.to_string())),
            Err(_) => Err(self
                .health
                .failed(format!("no answer within {} ms", within.as_millis()))),
        }
    }

    pub(super) async fn query<T: redis::FromRedisValue>(
        &self,
        cmd: &redis::Cmd,
    ) -> Result<T, StoreError> {
        let mut c = self.conn().await?;
        self.bounded(self.settings.timeout, cmd.query_async(&mut c))
            .await
    }

    pub(super) async fn invoke<T: redis::FromRedisValue>(
        &self,
        inv: &redis::ScriptInvocation<'_>,
    ) -> Result<T, StoreError> {
        let mut c = self.conn().await?;
        self.bounded(self.settings.timeout, inv.invoke_async(&mut c))
            .await
    }

    /// Whether Redis answers now (for `check` and start-up).
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.query::<String>(&redis::cmd("PING")).await.map(|_| ())
    }
}
