//! Writes: SCIM creates, replaces, patches and deletes carried to JumpCloud exactly once, then published
//! into the snapshot at once (read-your-writes).
//!
//! Rules that make "exactly once" hold:
//! - A create is never retried blindly. When its answer is lost (timeout, a 502 after sending), the user is
//!   looked up by its JumpCloud username before anything is sent again; a client retrying a create we
//!   completed gets 409 `uniqueness` naming the existing id. A throttled create is not retried: JumpCloud
//!   did not take it, and the client reschedules on `Retry-After`.
//! - An update sends absolute values, so sending it again cannot change the outcome: it is retried on
//!   transient failures within the write deadline.
//! - Membership and association edges are idempotent by nature ("Already Exists" is success), and so are
//!   deletes ("not found" after a retry is done).
//! - Nothing is retried past the circuit breaker's refusal, and every retry waits a jittered backoff: the
//!   per-kind table is in `upstream.rs`.
//! - Writes to one resource are serialised (striped locks keyed by id or userName), and every write to an
//!   existing resource starts in [`Writer::begin`]: the lock first, then the current version and `If-Match`.
//! - A write answers within [`WriteSettings::deadline`], whatever JumpCloud does.
//!
//! Rooms: this file holds the [`Writer`], its settings, the lock stripes and the helpers every write shares;
//! `users.rs` and `groups.rs` hold the writes of each resource type (their checks against the snapshot and
//! what they publish); `upstream.rs` holds every call to JumpCloud a write makes, how a failure is retried
//! and how it is answered ([`upstream_error`], [`refusal`]). The SCIM → JumpCloud mapping itself is
//! [`crate::mapping`]'s.
//!
//! Knows JumpCloud only through `crate::jumpcloud`'s client and `crate::mapping`.

mod groups;
mod upstream;
mod users;

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::{Mutex, MutexGuard};

use super::{WriteError, not_ready, store_unavailable};
use crate::cache::replicas::{Fence, Held, Shared};
use crate::cache::snapshot::etag_listed;
use crate::cache::{Data, Entry, Id, Snapshot, Store, Touched};
use crate::jumpcloud::JcClient;
use crate::mapping::{MappingOptions, UsernamePolicy};
use crate::scim::ResourceKind;
use crate::scim::error::ScimError;
use crate::scim::patch::{PatchOptions, apply_patch};

pub use crate::mapping::username::{derive_username, valid_jumpcloud_username};
use upstream::WriteRetries;
pub use upstream::{refusal, upstream_error};

/// Lock stripes: enough that unrelated writes rarely wait on each other.
const STRIPES: usize = 64;
/// How long a write waits for JumpCloud's data behind a snapshot restored from disk (it takes about a
/// second for 100,000 users) before answering 503.
const COMPLETE_WAIT: Duration = Duration::from_secs(10);

/// What `DELETE /Users/{id}` does in JumpCloud (`users.delete_mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DeleteMode {
    /// Delete the user (its direct reports lose their manager).
    Delete,
    /// Suspend the user and keep it: it reads back with `active: false`.
    Suspend,
}

/// How writes behave.
#[derive(Debug, Clone)]
pub struct WriteSettings {
    pub username_policy: UsernamePolicy,
    pub delete_mode: DeleteMode,
    pub mapping: MappingOptions,
    /// A write answers within this, whatever JumpCloud does (clients give up at 60 s).
    pub deadline: Duration,
    /// PATCH bounds and reference resolution.
    pub patch: PatchOptions,
    /// PATCH applications running at once, on blocking threads rather than the async workers.
    pub cpu_tasks: usize,
}

/// Carries SCIM writes to JumpCloud and publishes their results.
pub struct Writer {
    store: Arc<Store>,
    client: JcClient,
    settings: WriteSettings,
    stripes: Vec<Mutex<()>>,
    /// How each kind of upstream call is retried.
    retries: WriteRetries,
    /// Bounds CPU-heavy work (PATCH application) taken off the async workers.
    cpu: Arc<tokio::sync::Semaphore>,
    /// With replicas: the write locks and publication through Redis.
    shared: Option<Arc<Shared>>,
}

/// A resource's write lock: this process's stripe, and with replicas the lock in Redis too.
pub(super) struct WriteLock<'a> {
    _local: MutexGuard<'a, ()>,
    _shared: Option<Held>,
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

/// A created or changed resource, and the snapshot version that shows it.
#[derive(Debug, Clone)]
pub struct Written {
    pub entry: Arc<Entry>,
    pub snapshot: Arc<Snapshot>,
}

fn stripe_of(key: &str) -> usize {
    // FNV-1a: stable and cheap; only the spread matters.
    let mut h: u64 = 0xcbf29ce484222325;
    for b in key.to_lowercase().bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x100000001b3);
    }
    (h % STRIPES as u64) as usize
}

fn ident(id: &str) -> Id {
    Arc::from(id)
}

fn touched_user(uid: &Id) -> Touched {
    let mut t = Touched::default();
    t.users.insert(uid.clone());
    t
}

/// `If-Match` with a stale ETag → 412.
fn check_if_match(if_match: Option<&str>, entry: &Entry) -> Result<(), WriteError> {
    let Some(header) = if_match else {
        return Ok(());
    };
    if etag_listed(header, &entry.etag()) {
        Ok(())
    } else {
        Err(ScimError::precondition_failed(format!(
            "If-Match {header} does not match the current version {} of {}; read it again",
            entry.etag(),
            entry.id
        ))
        .into())
    }
}

/// Say which part of a multi-call write landed.
fn partial(mut e: WriteError, landed: &str) -> WriteError {
    e.error.detail = format!("{landed}: {}", e.error.detail);
    e
}

// === impl Writer ===

impl Writer {
    /// The upstream circuit breaker's state, for the metrics gauge (0 closed, 1 half-open, 2 open).
    pub fn breaker_state(&self) -> u8 {
        self.client.breaker().state_code()
    }

    pub fn new(store: Arc<Store>, client: JcClient, settings: WriteSettings) -> Self {
        Self {
            store,
            client,
            stripes: (0..STRIPES).map(|_| Mutex::new(())).collect(),
            retries: WriteRetries::default(),
            cpu: Arc::new(tokio::sync::Semaphore::new(settings.cpu_tasks.max(1))),
            settings,
            shared: None,
        }
    }

    /// The same writer locking and publishing through the shared store (replicas).
    pub fn with_shared(mut self, shared: Option<Arc<Shared>>) -> Self {
        self.shared = shared;
        self
    }

    /// One of the `cpu_tasks` permits for work done on a blocking thread (a PATCH, a scan filter), waited for
    /// as long as the request's deadline allows; `None` when the service is shutting down.
    pub async fn cpu_permit(&self) -> Option<tokio::sync::OwnedSemaphorePermit> {
        self.cpu.clone().acquire_owned().await.ok()
    }

    /// Apply a PATCH to an entry on a blocking thread (at most `cpu_tasks` at once), so that however large
    /// it is, the async workers keep answering everyone else.
    async fn apply_off_runtime(
        &self,
        entry: &Arc<Entry>,
        body: &Value,
        kind: ResourceKind,
    ) -> Result<crate::scim::PatchOutcome, WriteError> {
        let _permit = self.cpu.acquire().await.map_err(|_| not_ready())?;
        let (entry, body, options) = (entry.clone(), body.clone(), self.settings.patch.clone());
        tokio::task::spawn_blocking(move || apply_patch(&entry.to_json(), &body, kind, &options))
            .await
            .map_err(|_| {
                WriteError::from(ScimError::new(
                    500,
                    None,
                    "the PATCH could not be applied; nothing was changed",
                ))
            })?
            .map_err(WriteError::from)
    }

    /// The write lock of `key`. With replicas, also the lock in Redis (so one resource is written by one
    /// replica at a time), after which this replica loads the newest shared version, so the write works
    /// against what the write before it, on any replica, left. Redis down: 503, nothing sent upstream.
    async fn lock(&self, key: &str) -> Result<WriteLock<'_>, WriteError> {
        let local = self.stripes[stripe_of(key)].lock().await;
        let Some(shared) = &self.shared else {
            return Ok(WriteLock {
                _local: local,
                _shared: None,
            });
        };
        let held = shared
            .lock_resource(key, self.settings.deadline)
            .await
            .map_err(|e| store_unavailable(&e))?;
        shared.catch_up().await.map_err(|e| store_unavailable(&e))?;
        Ok(WriteLock {
            _local: local,
            _shared: Some(held),
        })
    }

    /// The published snapshot a write works against: a complete one, so right after a restart from disk the
    /// write waits the moment JumpCloud's data takes to restore.
    async fn snapshot(&self) -> Result<Arc<Snapshot>, WriteError> {
        self.store
            .load_complete(COMPLETE_WAIT)
            .await
            .ok_or_else(not_ready)
    }

    fn entry(snap: &Snapshot, kind: ResourceKind, id: &str) -> Result<Arc<Entry>, WriteError> {
        snap.get(kind, id).cloned().ok_or_else(|| {
            WriteError::from(ScimError::not_found(format!(
                "{} {id} not found",
                kind.name()
            )))
        })
    }

    /// The start of every write to an existing resource: take its lock, then read the current version and
    /// check `If-Match` against it (after the lock, so a queued write sees what the one before it did).
    async fn begin(
        &self,
        kind: ResourceKind,
        id: &str,
        if_match: Option<&str>,
    ) -> Result<(WriteLock<'_>, Arc<Snapshot>, Arc<Entry>), WriteError> {
        let guard = self.lock(id).await?;
        let snap = self.snapshot().await?;
        let entry = Self::entry(&snap, kind, id)?;
        check_if_match(if_match, &entry)?;
        Ok((guard, snap, entry))
    }

    fn written(snap: Arc<Snapshot>, kind: ResourceKind, id: &str) -> Result<Written, WriteError> {
        let entry = Self::entry(&snap, kind, id)?;
        Ok(Written {
            entry,
            snapshot: snap,
        })
    }

    async fn publish(
        &self,
        change: impl FnOnce(&mut Data) -> Touched,
    ) -> Result<Arc<Snapshot>, WriteError> {
        let Some(shared) = &self.shared else {
            return self.store.publish_write(change).await.ok_or_else(not_ready);
        };
        // The write has landed in JumpCloud; a failure to share its version now is not the client's: the
        // version is published here, and the next refresh brings it to every replica.
        let published = match shared
            .publish(Fence::Any, || self.store.publish_write(change))
            .await
        {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(error = %e, "a write could not be shared with the other replicas: {e}");
                None
            }
        };
        let snapshot = match published {
            Some(s) => s,
            None => self.snapshot().await?,
        };
        if !shared.wait_everywhere(snapshot.version).await {
            tracing::debug!(
                version = snapshot.version,
                "not every replica served the write's version within the read-your-writes wait"
            );
        }
        Ok(snapshot)
    }
}

#[cfg(test)]
mod tests;
