//! Pinned paging: a list walk is answered from the snapshot version its first page saw.
//!
//! A walk is keyed by what makes two requests pages of the same listing (principal, resource type, filter,
//! sort, `count`, `attributes`, `excludedAttributes`), or by a cursor's walk id (RFC 9865). The first page
//! pins the current version for `paging.pin_ttl_s`; later pages read that version, so a refresh landing
//! mid-walk cannot shift one account out of the walk and another into it twice. Pins are bounded in number
//! (moka: keyed, bounded, time-to-live) and so are the distinct versions they hold; versions share their
//! unchanged entries, so a pinned version costs little. A page whose pin was evicted or has expired is
//! answered from the latest version.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::cache::Snapshot;

/// The walks and the versions they hold.
pub struct Pins {
    walks: moka::sync::Cache<String, u64>,
    /// Versions some walk may still read; at most `max_versions`, the oldest dropped first.
    versions: Mutex<BTreeMap<u64, Arc<Snapshot>>>,
    max_versions: usize,
}

impl std::fmt::Debug for Pins {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pins")
            .field("walks", &self.walks.entry_count())
            .finish_non_exhaustive()
    }
}

impl Pins {
    pub fn new(ttl: Duration, max_walks: u64, max_versions: usize) -> Self {
        Self {
            walks: moka::sync::Cache::builder()
                .max_capacity(max_walks)
                .time_to_live(ttl)
                .build(),
            versions: Mutex::new(BTreeMap::new()),
            max_versions: max_versions.max(1),
        }
    }

    /// The first page of a walk: pin `snapshot` under `key`.
    pub fn pin(&self, key: &str, snapshot: &Arc<Snapshot>) {
        if let Ok(mut versions) = self.versions.lock() {
            versions.insert(snapshot.version, snapshot.clone());
            while versions.len() > self.max_versions {
                versions.pop_first();
            }
        }
        self.walks.insert(key.to_string(), snapshot.version);
    }

    /// A later page: the version the walk pinned, while it is still held.
    pub fn pinned(&self, key: &str) -> Option<Arc<Snapshot>> {
        let version = self.walks.get(key)?;
        self.versions.lock().ok()?.get(&version).cloned()
    }

    /// Version `version`, while some walk here holds it.
    pub fn held(&self, version: u64) -> Option<Arc<Snapshot>> {
        self.versions.lock().ok()?.get(&version).cloned()
    }

    /// Walks currently pinned (for the `jcscim_pinned_walks` gauge).
    pub fn walks(&self) -> u64 {
        self.walks.run_pending_tasks();
        self.walks.entry_count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(version: u64) -> Arc<Snapshot> {
        let mut s = Snapshot::empty();
        s.version = version;
        Arc::new(s)
    }

    #[test]
    fn pinned_walks_read_their_version_until_evicted() {
        let pins = Pins::new(Duration::from_secs(60), 100, 2);
        pins.pin("a", &snap(1));
        pins.pin("b", &snap(2));
        assert_eq!(pins.pinned("a").unwrap().version, 1);
        assert_eq!(pins.pinned("b").unwrap().version, 2);
        assert!(pins.pinned("nope").is_none());
        // A third distinct version drops the oldest: walk "a" falls back to the latest.
        pins.pin("c", &snap(3));
        assert!(pins.pinned("a").is_none());
        assert_eq!(pins.pinned("c").unwrap().version, 3);
        // A new first page re-pins.
        pins.pin("b", &snap(3));
        assert_eq!(pins.pinned("b").unwrap().version, 3);
        assert_eq!(pins.walks(), 3);
        // What walks hold, whichever walk pinned it.
        assert_eq!(pins.held(3).unwrap().version, 3);
        assert!(pins.held(1).is_none());
    }

    #[test]
    fn pins_expire() {
        let pins = Pins::new(Duration::from_millis(30), 100, 4);
        pins.pin("a", &snap(1));
        std::thread::park_timeout(Duration::from_millis(80));
        assert!(pins.pinned("a").is_none());
    }
}
