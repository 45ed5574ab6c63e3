//! The replica's background work against Redis: following new versions (announcements by pub/sub, and a
//! poll for when one is missed or pub/sub is down), the heartbeat that says which version this replica
//! serves, holding or seeking the refresher's lease (running the refresher only while it is held), and the
//! waits read-your-writes and pinned walks need.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::lease::Lease;
use super::shared::{Shared, StoreError, unix_ms};
use crate::shutdown::{Stop, StopHandle};

/// The leader-only tasks (the refresher, the feed reader) while this replica leads.
#[derive(Debug)]
pub struct Leading {
    pub stop: StopHandle,
    pub tasks: Vec<JoinHandle<()>>,
}

impl Leading {
    fn end(self) {
        self.stop.fire();
        for t in self.tasks {
            // A refresh in flight is dropped before it publishes; nothing half-published remains.
            t.abort();
        }
    }
}

impl Shared {
    /// Follow the shared store until `stop`: load each new version as it is announced or found by the poll,
    /// and beat the heartbeat.
    pub async fn run_follow(self: Arc<Self>, mut stop: Stop) {
        let listener = tokio::spawn(self.clone().listen());
        let mut tick = tokio::time::interval(self.settings.poll);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = self.announced.notified() => {}
                _ = stop.requested() => break,
            }
            if let Err(e) = self.catch_up().await {
                tracing::debug!(error = %e, "the shared store could not be read: {e}");
            }
            let _ = self.heartbeat().await;
        }
        listener.abort();
        let _ = self.leave().await;
    }

    /// Announcements: a new version (catch up now) or a follower's refresh request (for the leader).
    async fn listen(self: Arc<Self>) {
        loop {
            if let Err(e) = self.listen_once().await {
                tracing::debug!(error = %e, "pub/sub from the shared store ended: {e}");
            }
            tokio::time::sleep(self.settings.poll).await;
        }
    }

    async fn listen_once(&self) -> Result<(), StoreError> {
        let connect = async {
            let mut ps = self.client.get_async_pubsub().await?;
            ps.subscribe(self.keys.channel()).await?;
            ps.subscribe(self.keys.refresh_channel()).await?;
            Ok(ps)
        };
        let ps = self.bounded(self.settings.timeout, connect).await?;
        let refresh = self.keys.refresh_channel();
        let mut messages = ps.into_on_message();
        while let Some(msg) = messages.next().await {
            if msg.get_channel_name() == refresh {
                self.refresh_asked.notify_one();
            } else {
                self.announced.notify_one();
            }
        }
        Ok(())
    }

    /// Ask whichever replica leads for a refresh now.
    pub async fn ask_refresh(&self) -> Result<(), StoreError> {
        let mut cmd = redis::cmd("PUBLISH");
        cmd.arg(self.keys.refresh_channel()).arg("now");
        self.query::<i64>(&cmd).await.map(|_| ())
    }

    /// Say that this replica is alive and which version it serves.
    async fn heartbeat(&self) -> Result<(), StoreError> {
        let now = unix_ms();
        let until = now + (self.settings.poll * 3 + self.settings.timeout).as_millis() as u64;
        let served = self.store.load().map_or(0, |s| s.version);
        let mut pipe = redis::pipe();
        pipe.cmd("ZADD")
            .arg(self.keys.replicas())
            .arg(until)
            .arg(&self.replica)
            .ignore()
            .cmd("ZREMRANGEBYSCORE")
            .arg(self.keys.replicas())
            .arg("-inf")
            .arg(now)
            .ignore()
            .cmd("HSET")
            .arg(self.keys.loaded())
            .arg(&self.replica)
            .arg(served)
            .ignore();
        let mut c = self.conn().await?;
        self.bounded(self.settings.timeout, pipe.query_async::<()>(&mut c))
            .await
    }

    async fn leave(&self) -> Result<(), StoreError> {
        let mut pipe = redis::pipe();
        pipe.cmd("ZREM")
            .arg(self.keys.replicas())
            .arg(&self.replica)
            .ignore()
            .cmd("HDEL")
            .arg(self.keys.loaded())
            .arg(&self.replica)
            .ignore();
        let mut c = self.conn().await?;
        self.bounded(self.settings.timeout, pipe.query_async::<()>(&mut c))
            .await
    }

    /// Read-your-writes: wait (at most `ryw_wait`) until every live replica serves `version` or later, so
    /// the writer's next request finds its write whichever replica it reaches. Whether they all did.
    pub async fn wait_everywhere(&self, version: u64) -> bool {
        // This replica's own heartbeat carries the version at once.
        let _ = self.heartbeat().await;
        let deadline = Instant::now() + self.settings.ryw_wait;
        loop {
            if self.everywhere(version).await.unwrap_or(false) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    async fn everywhere(&self, version: u64) -> Result<bool, StoreError> {
        let mut cmd = redis::cmd("ZRANGEBYSCORE");
        cmd.arg(self.keys.replicas()).arg(unix_ms()).arg("+inf");
        let live: Vec<String> = self.query(&cmd).await?;
        if live.is_empty() {
            return Ok(true);
        }
        let mut cmd = redis::cmd("HMGET");
        cmd.arg(self.keys.loaded()).arg(&live);
        let served: Vec<Option<u64>> = self.query(&cmd).await?;
        Ok(served.iter().all(|v| v.is_some_and(|v| v >= version)))
    }

    /// A walk's first page pinned `version` here: remember it in Redis, for the walk's later pages on any
    /// replica.
    pub async fn pin(&self, walk: &str, version: u64) {
        let mut cmd = redis::cmd("SET");
        cmd.arg(self.keys.pin(walk))
            .arg(version)
            .arg("PX")
            .arg(self.settings.pin_ttl.as_millis() as u64);
        let _ = self.query::<()>(&cmd).await;
    }

    /// The version a walk pinned on any replica, while its pin lives.
    pub async fn pinned(&self, walk: &str) -> Option<u64> {
        self.query::<Option<u64>>(redis::cmd("GET").arg(self.keys.pin(walk)))
            .await
            .ok()
            .flatten()
    }

    /// Hold or seek the refresher's lease until `stop`: `start` runs the leader-only tasks when this replica
    /// takes the lease; they stop when it is lost. At the end the lease is given up.
    pub async fn run_leadership<Fut: std::future::Future<Output = Leading> + Send>(
        self: Arc<Self>,
        mut start: impl FnMut() -> Fut + Send,
        mut stop: Stop,
    ) {
        let mut leading: Option<Leading> = None;
        loop {
            let leader = self.lead_round().await;
            match (leader, leading.take()) {
                (true, None) => leading = Some(start().await),
                (true, Some(l)) => leading = Some(l),
                (false, Some(l)) => l.end(),
                (false, None) => {}
            }
            // A leader renews at a third of the lease; a follower looks more often, to take over promptly.
            let every = if leader {
                Lease::renew_every(self.settings.lease)
            } else {
                (self.settings.lease / 10).max(Duration::from_millis(100))
            };
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = stop.requested() => break,
            }
        }
        if let Some(l) = leading {
            l.end();
        }
        self.resign().await;
    }
}
