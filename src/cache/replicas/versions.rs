//! Versions through Redis: publishing one (under the publish lock, re-based on the newest version first,
//! fenced), reading one back, and catching up with the current one. Knows the persisted format only
//! through [`persist::encode`], [`persist::decode`] and [`persist::restore`].

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::chunks::{CHUNK_BYTES, Manifest, join, split};
use super::shared::{
    Fence, Outcome, PUBLISH, PUBLISH_WAIT, Shared, StoreError, TRANSFER_TIMEOUT, UPLOAD_TTL_MS,
};
use crate::cache::{Id, Snapshot, Touched, persist};

/// How long a version's record of what it touched is kept: longer than any refresh takes.
const TOUCHED_TTL_MS: u64 = 30 * 60 * 1000;
/// A replica this many versions behind adopts the newest without the records of the writes between.
const TOUCHED_SPAN: u64 = 256;
/// What a refresh's (or an accepted shrink's) version records instead of what it touched.
const REFRESHED: &str = "refresh";

/// What a write touched, as stored beside its version: JSON arrays of ids.
pub fn encode_touched(t: &Touched) -> String {
    let ids =
        |s: &std::collections::BTreeSet<Id>| s.iter().map(|i| i.to_string()).collect::<Vec<_>>();
    serde_json::json!({
        "users": ids(&t.users),
        "groups": ids(&t.groups),
        "directories": ids(&t.directories),
        "member_lists": ids(&t.member_lists),
    })
    .to_string()
}

/// [`encode_touched`] read back; `None` for anything else.
pub fn decode_touched(s: &str) -> Option<Touched> {
    let v: serde_json::Value = serde_json::from_str(s).ok()?;
    let ids = |k: &str| -> Option<std::collections::BTreeSet<Id>> {
        v.get(k)?
            .as_array()?
            .iter()
            .map(|i| i.as_str().map(Id::from))
            .collect()
    };
    Some(Touched {
        users: ids("users")?,
        groups: ids("groups")?,
        directories: ids("directories")?,
        member_lists: ids("member_lists")?,
    })
}

impl Shared {
    /// Publish through Redis: take the publish lock (every replica's publications are serialised by it),
    /// load the newest shared version first so `publish` builds on it and loses nobody's change, check the
    /// lease for a leader-only publication, run `publish` (a [`crate::cache::Store`] operation), then
    /// upload what it published and make it current in one script that checks the lock and the fencing token
    /// again. An error before `publish` runs means nothing was published anywhere; once it has run, its
    /// outcome is returned even if Redis then refused the version (counted, logged, and this replica loads
    /// Redis's current version at its next catch-up). A write ([`Fence::Any`]) is always published here,
    /// shared or not: it has landed in JumpCloud already.
    pub async fn publish<T: Outcome, Fut: Future<Output = T>>(
        &self,
        fence: Fence,
        publish: impl FnOnce() -> Fut,
    ) -> Result<T, StoreError> {
        let _local = self.publishing.lock().await;
        let key = self.keys.publish();
        let token = match self.acquire(&key, self.settings.lease, PUBLISH_WAIT).await {
            Ok(t) => t,
            Err(e) => return self.unshared(fence, e, publish).await,
        };
        let out = self.publish_locked(fence, &token, publish).await;
        self.release(&key, &token).await;
        out
    }

    async fn publish_locked<T: Outcome, Fut: Future<Output = T>>(
        &self,
        fence: Fence,
        token: &str,
        publish: impl FnOnce() -> Fut,
    ) -> Result<T, StoreError> {
        if let Err(e) = self.catch_up().await {
            return self.unshared(fence, e, publish).await;
        }
        let fencing = match fence {
            Fence::Leader => Some(self.leader_token().ok_or(StoreError::NotLeader)?),
            Fence::Any => None,
        };
        let out = publish().await;
        if let Some(snapshot) = out.published() {
            match self.upload(&snapshot, token, fencing).await {
                Ok(()) => self.loaded(snapshot.version),
                Err(e) => {
                    self.diverged.store(true, Ordering::Relaxed);
                    if matches!(e, StoreError::NotLeader) {
                        self.health.fenced.fetch_add(1, Ordering::Relaxed);
                    }
                    tracing::warn!(
                        version = snapshot.version,
                        error = %e,
                        "version {} was published here but not shared: {e}; this replica loads the shared \
                         current version next",
                        snapshot.version
                    );
                }
            }
        }
        Ok(out)
    }

    /// Redis cannot take a publication now. A write (it has landed in JumpCloud) is published here alone, and
    /// this replica loads the shared version again once Redis answers; a leader-only publication is not made.
    async fn unshared<T: Outcome, Fut: Future<Output = T>>(
        &self,
        fence: Fence,
        e: StoreError,
        publish: impl FnOnce() -> Fut,
    ) -> Result<T, StoreError> {
        if fence == Fence::Leader {
            return Err(e);
        }
        tracing::warn!(error = %e, "a write is published on this replica only: {e}");
        self.diverged.store(true, Ordering::Relaxed);
        Ok(publish().await)
    }

    /// This replica has `version` (loaded or published).
    pub(super) fn loaded(&self, version: u64) {
        self.health.version.fetch_max(version, Ordering::Relaxed);
        self.diverged.store(false, Ordering::Relaxed);
    }

    async fn upload(
        &self,
        snapshot: &Arc<Snapshot>,
        token: &str,
        fencing: Option<u64>,
    ) -> Result<(), StoreError> {
        let v = snapshot.version;
        let (s, opts) = (snapshot.clone(), self.store.options.clone());
        let bytes = tokio::task::spawn_blocking(move || persist::encode(&s, &opts))
            .await
            .map_err(|_| StoreError::Corrupt("the version could not be encoded".into()))?
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let manifest = Manifest::of(&bytes, CHUNK_BYTES);
        let mut c = self.conn().await?;
        for (i, part) in split(&bytes, CHUNK_BYTES).into_iter().enumerate() {
            let mut cmd = redis::cmd("SET");
            cmd.arg(self.keys.chunk(v, i))
                .arg(part)
                .arg("PX")
                .arg(UPLOAD_TTL_MS);
            self.bounded(
                TRANSFER_TIMEOUT.max(self.settings.timeout),
                cmd.query_async::<()>(&mut c),
            )
            .await?;
        }
        let mut cmd = redis::cmd("SET");
        cmd.arg(self.keys.version(v))
            .arg(manifest.encode())
            .arg("PX")
            .arg(UPLOAD_TTL_MS);
        self.query::<()>(&cmd).await?;
        // What it touched, so a replica whose refresh is in flight when it adopts this version keeps it.
        let touched = match self.store.touched_by(v).await {
            Some(t) => encode_touched(&t),
            None => REFRESHED.to_owned(),
        };
        let mut cmd = redis::cmd("SET");
        cmd.arg(self.keys.touched(v))
            .arg(touched)
            .arg("PX")
            .arg(TOUCHED_TTL_MS);
        self.query::<()>(&cmd).await?;
        let mut inv = PUBLISH.prepare_invoke();
        inv.key(self.keys.current())
            .key(self.keys.publish())
            .key(self.keys.lease())
            .key(self.keys.versions())
            .arg(token)
            .arg(fencing.map_or_else(String::new, |t| t.to_string()))
            .arg(v)
            .arg(self.settings.keep_versions)
            .arg(self.keys.prefix())
            .arg(self.keys.channel());
        match self.invoke::<i64>(&inv).await? {
            1 => Ok(()),
            -1 => Err(StoreError::Busy(
                "the publish lock expired before the version was shared",
            )),
            -2 => Err(StoreError::NotLeader),
            -3 => Err(StoreError::Busy("a newer version was shared meanwhile")),
            _ => Err(StoreError::Busy(
                "the uploaded version expired before it was shared",
            )),
        }
    }

    /// Version `v` as Redis holds it; `None` when it is no longer kept.
    pub async fn download(&self, v: u64) -> Result<Option<Snapshot>, StoreError> {
        let Some(m) = self
            .query::<Option<String>>(redis::cmd("GET").arg(self.keys.version(v)))
            .await?
        else {
            return Ok(None);
        };
        let manifest = Manifest::decode(&m).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let mut c = self.conn().await?;
        let mut parts = Vec::with_capacity(manifest.chunks);
        for i in 0..manifest.chunks {
            let mut cmd = redis::cmd("GET");
            cmd.arg(self.keys.chunk(v, i));
            let within = TRANSFER_TIMEOUT.max(self.settings.timeout);
            parts.push(
                self.bounded(within, cmd.query_async::<Option<Vec<u8>>>(&mut c))
                    .await?,
            );
        }
        if parts.iter().any(Option::is_none) {
            // Dropped between the manifest and its chunks: no longer kept.
            return Ok(None);
        }
        let opts = self.store.options.clone();
        let read = tokio::task::spawn_blocking(move || {
            let bytes = join(&manifest, parts).map_err(|e| e.to_string())?;
            let p = persist::decode(bytes).map_err(|e| e.to_string())?;
            Ok::<_, String>(persist::restore(p, &opts))
        })
        .await
        .map_err(|_| StoreError::Corrupt("the version could not be decoded".into()))?;
        read.map(Some).map_err(StoreError::Corrupt)
    }

    /// Load Redis's current version here when it is newer than what this replica has (or this replica
    /// published something Redis refused). Whether a version was adopted.
    pub async fn catch_up(&self) -> Result<bool, StoreError> {
        let _one = self.adopting.lock().await;
        let Some(v) = self
            .query::<Option<u64>>(redis::cmd("GET").arg(self.keys.current()))
            .await?
        else {
            return Ok(false);
        };
        let diverged = self.diverged.load(Ordering::Relaxed);
        let have = self.health.version();
        let local = self.store.load().map(|s| s.version);
        if v <= have && !diverged && local.is_some() {
            return Ok(false);
        }
        let Some(snapshot) = self.download(v).await? else {
            return Ok(false);
        };
        let writes = self.writes_between(have, v).await;
        let adopted = self.store.adopt(Arc::new(snapshot), writes).await;
        self.loaded(v);
        if adopted {
            tracing::debug!(version = v, "loaded version {v} from the shared store");
        }
        Ok(adopted)
    }

    /// What the writes published after version `have`, up to `v`, touched (those after the last refresh
    /// among them); none when this replica had nothing yet or is too far behind.
    async fn writes_between(&self, have: u64, v: u64) -> Vec<Touched> {
        if have == 0 || v <= have || v - have > TOUCHED_SPAN {
            return Vec::new();
        }
        let mut cmd = redis::cmd("MGET");
        for k in have + 1..=v {
            cmd.arg(self.keys.touched(k));
        }
        let Ok(marks) = self.query::<Vec<Option<String>>>(&cmd).await else {
            return Vec::new();
        };
        let mut writes = Vec::new();
        for mark in marks.into_iter().flatten() {
            if mark == REFRESHED {
                writes.clear();
            } else if let Some(t) = decode_touched(&mark) {
                writes.push(t);
            }
        }
        writes
    }

    /// Version `v` for a walk pinned to it on another replica: this replica's current one when it is that
    /// version, otherwise read back from Redis (while it is kept).
    pub async fn version(&self, v: u64) -> Option<Arc<Snapshot>> {
        if let Some(cur) = self.store.load().filter(|s| s.version == v) {
            return Some(cur);
        }
        self.download(v).await.ok().flatten().map(Arc::new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_a_write_touched_reads_back_and_nothing_else_does() {
        let mut t = Touched::default();
        t.users.insert(Id::from("u1"));
        t.users.insert(Id::from("u\"2"));
        t.member_lists.insert(Id::from("g1"));
        let back = decode_touched(&encode_touched(&t)).unwrap();
        assert_eq!(back.users, t.users);
        assert_eq!(back.member_lists, t.member_lists);
        assert!(back.groups.is_empty() && back.directories.is_empty());
        for bad in [REFRESHED, "", "{}", "{\"users\": [1]}", "[]"] {
            assert!(decode_touched(bad).is_none(), "{bad}");
        }
    }
}
