//! Locks and the lease in Redis: SET NX PX with a token, released or renewed only by compare (a script), so
//! a holder whose lock expired cannot release or extend another's. Write locks are [`Held`] guards.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::lease::Round;
use super::shared::{RELEASE, RENEW, Shared, StoreError, TAKE, new_token};

/// A write lock held in Redis; released when dropped (and expiring by itself if this process dies).
#[derive(Debug)]
pub struct Held {
    shared: Arc<Shared>,
    key: String,
    token: String,
}

impl Drop for Held {
    fn drop(&mut self) {
        let (shared, key, token) = (
            self.shared.clone(),
            std::mem::take(&mut self.key),
            std::mem::take(&mut self.token),
        );
        // Dropped outside a runtime only at exit, when the lock's expiry releases it.
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move { shared.release(&key, &token).await });
        }
    }
}

impl Shared {
    /// Take `key` with a new token for `ttl`, waiting at most `wait` while another holds it.
    pub(super) async fn acquire(
        &self,
        key: &str,
        ttl: Duration,
        wait: Duration,
    ) -> Result<String, StoreError> {
        let token = new_token(&self.replica);
        let deadline = Instant::now() + wait;
        let mut pause = Duration::from_millis(5);
        loop {
            let mut cmd = redis::cmd("SET");
            cmd.arg(key)
                .arg(&token)
                .arg("NX")
                .arg("PX")
                .arg(ttl.as_millis() as u64);
            if self.query::<Option<String>>(&cmd).await?.is_some() {
                return Ok(token);
            }
            if Instant::now() + pause > deadline {
                return Err(StoreError::Busy("another replica holds the lock"));
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(50));
        }
    }

    /// Release `key` if it still holds `token` (errors ignored: it expires anyway).
    /// Keep the lock `key` (held with `token`) for `ttl` at a time, renewing it every third of that, for as
    /// long as this future is polled; it ends only when the lock was lost (expired and taken, or gone).
    pub(super) async fn keep(&self, key: &str, token: &str, ttl: Duration) {
        let ms = ttl.as_millis() as u64;
        loop {
            tokio::time::sleep(ttl / 3).await;
            let mut inv = RENEW.prepare_invoke();
            inv.key(key).arg(token).arg(ms);
            match self.invoke::<i64>(&inv).await {
                Ok(1) => {}
                Ok(_) => return,
                // Redis not answering: try again; the lock expires by itself if this goes on.
                Err(_) => {}
            }
        }
    }

    pub(super) async fn release(&self, key: &str, token: &str) {
        let mut inv = RELEASE.prepare_invoke();
        inv.key(key).arg(token);
        let _ = self.invoke::<i64>(&inv).await;
    }

    /// The write lock of one resource (`what`: the writer's lock key), waiting at most `wait`.
    pub async fn lock_resource(
        self: &Arc<Self>,
        what: &str,
        wait: Duration,
    ) -> Result<Held, StoreError> {
        let key = self.keys.lock(what);
        let token = self.acquire(&key, self.settings.lock_ttl, wait).await?;
        Ok(Held {
            shared: self.clone(),
            key,
            token,
        })
    }

    // === the lease ===

    /// The fencing token while this replica leads.
    pub fn leader_token(&self) -> Option<u64> {
        let l = self.lease.lock().ok()?;
        l.token(Instant::now(), self.settings.lease)
    }

    /// One round of the lease: a leader renews it, a follower takes it if nobody holds it. Whether this
    /// replica leads afterwards.
    pub async fn lead_round(&self) -> bool {
        let now = Instant::now();
        let held = self.lease.lock().ok().and_then(|l| l.held());
        let lease_ms = self.settings.lease.as_millis() as u64;
        let round = match held {
            Some(t) => {
                let mut inv = RENEW.prepare_invoke();
                inv.key(self.keys.lease()).arg(t).arg(lease_ms);
                match self.invoke::<i64>(&inv).await {
                    Ok(1) => Round::Renewed,
                    Ok(_) => Round::Lost,
                    Err(_) => Round::Unreachable,
                }
            }
            None => {
                let mut inv = TAKE.prepare_invoke();
                inv.key(self.keys.lease())
                    .key(self.keys.fence())
                    .arg(lease_ms);
                match self.invoke::<u64>(&inv).await {
                    Ok(0) => Round::Lost,
                    Ok(t) => {
                        if let Ok(mut l) = self.lease.lock() {
                            l.taken(t, now);
                        }
                        tracing::info!(
                            token = t,
                            "this replica now runs the refresher (lease token {t})"
                        );
                        Round::Renewed
                    }
                    Err(_) => Round::Unreachable,
                }
            }
        };
        let leading = self
            .lease
            .lock()
            .map(|mut l| l.after(round, now, self.settings.lease))
            .unwrap_or(false);
        if held.is_some() && !leading {
            tracing::warn!("this replica lost the refresher's lease");
        }
        self.health
            .leader
            .store(leading, std::sync::atomic::Ordering::Relaxed);
        leading
    }

    /// Give the lease up (at shutdown), so another replica takes over at once.
    pub async fn resign(&self) {
        let held = self.lease.lock().ok().and_then(|mut l| {
            let t = l.held();
            *l = super::lease::Lease::default();
            t
        });
        if let Some(t) = held {
            self.release(&self.keys.lease(), &t.to_string()).await;
        }
        self.health
            .leader
            .store(false, std::sync::atomic::Ordering::Relaxed);
    }
}
