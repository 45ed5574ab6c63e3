//! The Directory Insights cursor through Redis: the leader writes where its feed reader stands after each of
//! its publications (fenced, so a leader past its lease cannot move it), and a new leader puts it back
//! before its jobs start, so it reads the feed on from there instead of refreshing everything at once. The
//! document is the data directory's cursor file ([`persist::encode_feed`]), naming the version it
//! describes: it is put back only beside that version or a later one, as at a restart.

use super::shared::{FENCED_SET, Shared};
use crate::cache::persist::{self, SavedFeed};

impl Shared {
    /// After a leader's publication (fenced by `fencing`): share where the feed's reader stands, if it has
    /// a cursor. Best effort: a new leader with an older cursor reads a few events again.
    pub(super) async fn share_feed(&self, fencing: u64) {
        let mark = self.store.feed_mark();
        let Some(cursor) = mark.cursor else {
            return;
        };
        let saved = SavedFeed {
            snapshot_version: mark.version,
            cursor,
            refreshed_at: mark.refreshed_at,
        };
        let Ok(doc) = persist::encode_feed(&saved) else {
            return;
        };
        let mut inv = FENCED_SET.prepare_invoke();
        inv.key(self.keys.lease())
            .key(self.keys.feed())
            .arg(fencing)
            .arg(doc);
        if let Err(e) = self.invoke::<i64>(&inv).await {
            tracing::debug!(error = %e, "the feed's cursor was not shared: {e}");
        }
    }

    /// A new leader, before its jobs start: put back the cursor the last leader shared, when this replica
    /// serves the version it describes or a later one. What was put back, or `None` (none shared, Redis
    /// not answering, or a cursor ahead of this replica's data: the new leader then refreshes at once).
    pub async fn resume_feed(&self) -> Option<SavedFeed> {
        let doc = self
            .query::<Option<Vec<u8>>>(redis::cmd("GET").arg(self.keys.feed()))
            .await
            .ok()??;
        let saved = match persist::decode_feed(&doc) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "ignoring the feed's cursor in the shared store: {e}");
                return None;
            }
        };
        let taken = self
            .store
            .restore_feed(
                saved.cursor.clone(),
                saved.snapshot_version,
                saved.refreshed_at,
            )
            .await;
        if !taken {
            tracing::info!(
                saved_with = saved.snapshot_version,
                "the feed's shared cursor describes a version this replica has not loaded; refreshing"
            );
            return None;
        }
        tracing::info!(
            read_through = %saved.cursor.read_through(),
            "reading the Directory Insights feed on from where the last leader stood"
        );
        Some(saved)
    }
}
