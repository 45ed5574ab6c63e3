//! The published snapshot: what it holds, how it is published, refreshed, persisted and guarded.
//!
//! Rooms: [`store`] is publishing (the one file to read to know how a version becomes current, and the
//! [`store::Published`] seam where a shared backend plugs in), [`snapshot`] what a version holds,
//! [`refresher`] the background full refresh, [`insights`] the incremental one from JumpCloud's Directory
//! Insights feed, [`persist`] the snapshot on disk, [`guard`] the shrink guard,
//! [`versions`] version numbers that never repeat, [`replicas`] versions, the refresher's lease and write
//! locks shared through Redis when several processes serve one directory. Must not know HTTP or SCIM requests: `directory/` reads
//! and writes through [`Store`].
//!
//! The seam is a trait object (`Arc<dyn Published>` inside [`Store`]) rather than a second store type:
//! every publishing rule (locking, overlaying writes, the shrink guard, versions) stays in one place for
//! every backend, and only where the current version is kept differs.

pub mod guard;
pub mod insights;
pub mod memory;
pub mod persist;
pub(crate) mod records;
pub mod refresher;
pub mod replicas;
pub mod snapshot;
pub mod store;
#[cfg(test)]
mod test_support;
pub mod versions;

use jiff::Timestamp;

pub use snapshot::{
    BuildOptions, Data, Entry, GroupSource, Id, IdSet, Index, Indexes, PackedUser, RawDirectory,
    Seen, Snapshot, Touched,
};
pub use store::{EventsPublished, FeedMark, RefreshPublished, RefreshTicket, Store};

/// How the last refresh ended, for logs, `/readyz` and metrics.
#[derive(Debug, Clone, PartialEq)]
pub struct RefreshStatus {
    pub finished_at: Timestamp,
    pub ok: bool,
    /// The refresh was complete but shrank too much, and is held back.
    pub held_back: bool,
    /// Failure reason (never a secret), or `None` on success.
    pub error: Option<String>,
    pub calls: u64,
    pub retries: u64,
    pub duration_ms: u64,
}

/// Refreshes remembered: two hours at the default interval.
pub const REFRESH_HISTORY: usize = 120;

/// Whole seconds between `then` and `now`, never negative.
pub fn age_seconds(then: Timestamp, now: Timestamp) -> u64 {
    let secs = now.as_second() - then.as_second();
    secs.max(0) as u64
}
