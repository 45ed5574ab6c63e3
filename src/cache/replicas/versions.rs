//! Versions through Redis: publishing one (under the publish lock, re-based on the newest version first,
//! fenced), reading one back, and catching up with the current one. Knows the persisted format only
//! through [`persist::encode`], [`persist::decode`] and [`persist::restore`].

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::chunks::{CHUNK_BYTES, Delta, Manifest, join, split};
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
/// Deltas in a row before a version is shared whole again: what a replica loading from scratch applies
/// at most on top of a whole version.
const MAX_DEPTH: u32 = 64;
/// A chain read back is refused past this many deltas (it cannot be longer unless Redis's data is damaged).
const MAX_CHAIN: usize = 4 * MAX_DEPTH as usize;
/// Why a delta was not made current: the version it is made on is no longer Redis's current one.
const BASE_MOVED: &str = "the delta's base is no longer the shared current version";

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
        // A refresh's publication (building and uploading a large version) may take longer than the lock
        // lasts: it is renewed for as long as the publication runs.
        let work = self.publish_locked(fence, &token, publish);
        tokio::pin!(work);
        let out = tokio::select! {
            out = &mut work => out,
            () = self.keep(&key, &token, self.settings.lease) => {
                tracing::warn!("the publish lock was lost while publishing; the version is not shared");
                work.await
            }
        };
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
        let mut shared = true;
        if let Some(snapshot) = out.published() {
            shared = false;
            match self.upload(&snapshot, token, fencing).await {
                Ok(()) => {
                    self.loaded(snapshot.version);
                    shared = true;
                }
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
        // Where the leader's feed reader now stands, once the version it describes is shared.
        if let Some(f) = fencing.filter(|_| shared) {
            self.share_feed(f).await;
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

    /// Share version `snapshot` (published here): as a delta on the version it was made on when it is a
    /// write's (or a feed batch's) and that version is current in Redis, otherwise whole; then make it current.
    async fn upload(
        &self,
        snapshot: &Arc<Snapshot>,
        token: &str,
        fencing: Option<u64>,
    ) -> Result<(), StoreError> {
        let v = snapshot.version;
        let change = self.store.change_of(v).await;
        // What it touched, so a replica whose refresh is in flight when it adopts this version keeps it.
        let touched = change
            .as_ref()
            .map_or_else(|| REFRESHED.to_owned(), |c| encode_touched(&c.touched));
        let mut cmd = redis::cmd("SET");
        cmd.arg(self.keys.touched(v))
            .arg(touched)
            .arg("PX")
            .arg(TOUCHED_TTL_MS);
        self.query::<()>(&cmd).await?;
        if let Some(change) = change
            && let Some(delta) = self.delta_on(change.base).await?
        {
            let s = snapshot.clone();
            let bytes = tokio::task::spawn_blocking(move || persist::encode_delta(&s, &change))
                .await
                .map_err(|_| StoreError::Corrupt("the delta could not be encoded".into()))?
                .map_err(|e| StoreError::Corrupt(e.to_string()))?;
            if bytes.len() <= CHUNK_BYTES {
                let manifest = Manifest::of(&bytes, CHUNK_BYTES).on(delta);
                self.put(v, &bytes, &manifest).await?;
                match self.make_current(v, token, fencing, Some(delta.base)).await {
                    Err(StoreError::Busy(BASE_MOVED)) => {}
                    shared => {
                        if shared.is_ok() {
                            self.health.deltas.fetch_add(1, Ordering::Relaxed);
                        }
                        return shared;
                    }
                }
            }
        }
        let (s, opts) = (snapshot.clone(), self.store.options.clone());
        let bytes = tokio::task::spawn_blocking(move || persist::encode(&s, &opts))
            .await
            .map_err(|_| StoreError::Corrupt("the version could not be encoded".into()))?
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        self.put(v, &bytes, &Manifest::of(&bytes, CHUNK_BYTES))
            .await?;
        self.make_current(v, token, fencing, None).await?;
        self.health.wholes.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Where a delta on version `base` would stand: `None` when `base` is not kept in Redis or its chain is
    /// as long as chains get (the next version is shared whole).
    async fn delta_on(&self, base: u64) -> Result<Option<Delta>, StoreError> {
        let Some(m) = self
            .query::<Option<String>>(redis::cmd("GET").arg(self.keys.version(base)))
            .await?
        else {
            return Ok(None);
        };
        let Ok(m) = Manifest::decode(&m) else {
            return Ok(None);
        };
        let depth = m.delta.map_or(0, |d| d.depth) + 1;
        Ok((depth <= MAX_DEPTH).then_some(Delta { base, depth }))
    }

    /// Upload version `v`'s bytes in chunks, then its manifest; all expire unless it is made current.
    async fn put(&self, v: u64, bytes: &[u8], manifest: &Manifest) -> Result<(), StoreError> {
        let mut c = self.conn().await?;
        for (i, part) in split(bytes, CHUNK_BYTES).into_iter().enumerate() {
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
        self.query::<()>(&cmd).await
    }

    /// Make the uploaded version `v` current (a delta on `base`), with every check in one script.
    async fn make_current(
        &self,
        v: u64,
        token: &str,
        fencing: Option<u64>,
        base: Option<u64>,
    ) -> Result<(), StoreError> {
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
            .arg(self.keys.channel())
            .arg(base.map_or_else(String::new, |b| b.to_string()));
        match self.invoke::<i64>(&inv).await? {
            1 => Ok(()),
            -1 => Err(StoreError::Busy(
                "the publish lock expired before the version was shared",
            )),
            -2 => Err(StoreError::NotLeader),
            -3 => Err(StoreError::Busy("a newer version was shared meanwhile")),
            -5 => Err(StoreError::Busy(BASE_MOVED)),
            _ => Err(StoreError::Busy(
                "the uploaded version expired before it was shared",
            )),
        }
    }

    /// Version `v`'s manifest and bytes as Redis holds them; `None` when it is no longer kept.
    async fn fetch(&self, v: u64) -> Result<Option<(Manifest, Vec<u8>)>, StoreError> {
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
        let bytes = join(&manifest, parts).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        Ok(Some((manifest, bytes)))
    }

    /// Version `v` as Redis holds it; `None` when it is no longer kept. A delta is applied on the version
    /// it is made on: this replica's own when the chain reaches it, otherwise the whole version the chain
    /// starts from, read back.
    pub async fn download(&self, v: u64) -> Result<Option<Arc<Snapshot>>, StoreError> {
        let local = self
            .store
            .load()
            .filter(|s| !s.is_serving_only() && !self.diverged.load(Ordering::Relaxed));
        let mut deltas = Vec::new();
        let mut at = v;
        let base = loop {
            if let Some(l) = local.as_ref().filter(|l| l.version == at) {
                break Base::Here(l.clone());
            }
            let Some((manifest, bytes)) = self.fetch(at).await? else {
                return Ok(None);
            };
            match manifest.delta {
                None => break Base::Whole(bytes),
                Some(d) if d.base < at && deltas.len() < MAX_CHAIN => {
                    deltas.push(bytes);
                    at = d.base;
                }
                Some(_) => {
                    return Err(StoreError::Corrupt(format!(
                        "version {v}'s chain of deltas does not lead back to a whole version"
                    )));
                }
            }
        };
        let opts = self.store.options.clone();
        let read = tokio::task::spawn_blocking(move || {
            let mut s = match base {
                Base::Here(s) => s,
                Base::Whole(bytes) => {
                    let p = persist::decode(bytes).map_err(|e| e.to_string())?;
                    Arc::new(persist::restore(p, &opts))
                }
            };
            for d in deltas.iter().rev() {
                let (next, _) = persist::apply_delta(&s, d, &opts).map_err(|e| e.to_string())?;
                s = Arc::new(next);
            }
            Ok::<_, String>(s)
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
        let adopted = self.store.adopt(snapshot, writes).await;
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
        self.download(v).await.ok().flatten()
    }
}

/// What a chain of deltas is applied on.
enum Base {
    /// This replica's current version.
    Here(Arc<Snapshot>),
    /// A whole version's bytes, read back.
    Whole(Vec<u8>),
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
