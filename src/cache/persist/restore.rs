//! A loaded file back into a snapshot, and the start-up that publishes it: at once when its entries can be
//! served as saved, with JumpCloud's data behind them completed on a blocking thread.

use std::fs;
use std::path::Path;
use std::sync::Arc;

use jiff::Timestamp;

use crate::cache::{BuildOptions, Data, RawDirectory, Snapshot, Store};
use crate::scim::ResourceKind;
use crate::shutdown::Background;

use super::{PersistError, Persisted, file_path, load};

/// The snapshot a loaded file describes. Derived with the same build and options, the entries are served
/// as saved (bytes, ETags, `created` and `lastModified`) without deriving them again, and the indexes are
/// the saved ones. Otherwise (another build or a changed mapping) every entry is derived from the data:
/// those whose content is unchanged keep their saved times, the others are stamped now.
pub fn restore(p: Persisted, opts: &BuildOptions) -> Snapshot {
    if p.servable(opts) {
        let (serving, raw) = p.into_serving();
        return serving.with_data(Data::from_raw(raw));
    }
    let seen = p.seen();
    let lookup = |kind: ResourceKind, rid: &str| seen.get(&(kind, rid.to_owned())).copied();
    Snapshot::build(
        Data::from_raw(p.raw),
        p.version,
        p.taken_at,
        Timestamp::now(),
        opts,
        None,
        &lookup,
    )
}

// === start-up ===

/// Start-up: create `dir` if missing, then load its snapshot file and publish it, so the service is ready at
/// once with the snapshot's own age, and later versions continue after its version. Returns the version
/// published (which the file already holds), or `None` when there is no usable file: that is reported, with
/// the file and the reason, and the service starts empty as without a data directory.
///
/// A file this build wrote with the same options is published as soon as its entries are: reads are served
/// from then on, and JumpCloud's data behind them follows on a blocking thread (writes wait for it, see
/// [`Store::load_complete`]); that step is a task of `tasks`, stopped with them.
pub async fn load_and_publish(
    store: &Arc<Store>,
    dir: &Path,
    tasks: &mut Background,
) -> Option<u64> {
    let file = file_path(dir);
    let started = tokio::time::Instant::now();
    let opts = store.options.clone();
    let target = dir.to_path_buf();
    let loaded = tokio::task::spawn_blocking(move || {
        fs::create_dir_all(&target)?;
        let Some(p) = load(&target)? else {
            return Ok(None);
        };
        if p.servable(&opts) {
            let (serving, raw) = p.into_serving();
            Ok(Some((serving, Some(raw))))
        } else {
            Ok::<_, PersistError>(Some((restore(p, &opts), None)))
        }
    })
    .await;
    let (snapshot, pending) = match loaded {
        Ok(Ok(Some(s))) => s,
        Ok(Ok(None)) => {
            tracing::warn!(file = %file.display(), "no snapshot file; waiting for the first refresh");
            return None;
        }
        Ok(Err(e)) => {
            tracing::warn!(file = %file.display(), error = %e, "ignoring the snapshot file: {e}");
            return None;
        }
        Err(e) => {
            tracing::warn!(file = %file.display(), error = %e, "loading the snapshot file panicked");
            return None;
        }
    };
    let version = snapshot.version;
    let age_s = crate::cache::age_seconds(snapshot.taken_at, Timestamp::now());
    let (users, groups) = (snapshot.user_count(), snapshot.group_count());
    let Some(snapshot) = store.publish_restored(snapshot).await else {
        // Something fresher was published meanwhile; never replace it with the file.
        return None;
    };
    tracing::info!(
        file = %file.display(),
        version,
        age_s,
        users,
        groups,
        duration_ms = started.elapsed().as_millis() as u64,
        "serving snapshot version {version} from disk, {age_s} s old"
    );
    if let Some(raw) = pending {
        let store = store.clone();
        tasks.spawn("restore-completion", move |mut stop| async move {
            tokio::select! {
                () = complete_restored(store, snapshot, raw) => {}
                () = stop.requested() => {}
            }
        });
    }
    Some(version)
}

/// Restore JumpCloud's data behind a serving-only `snapshot` and publish the complete version in its place,
/// unless something newer was published meanwhile. Then parse the restored entries' JSON, so the first
/// filter that scans them does not pay for it.
async fn complete_restored(store: Arc<Store>, serving: Arc<Snapshot>, raw: RawDirectory) {
    let started = tokio::time::Instant::now();
    let version = serving.version;
    let base = serving.clone();
    let built = tokio::task::spawn_blocking(move || base.with_data(Data::from_raw(raw))).await;
    let complete = match built {
        Ok(s) => Arc::new(s),
        Err(e) => {
            tracing::error!(
                version,
                error = %e,
                "restoring JumpCloud's data behind snapshot version {version} panicked; writes wait for the next refresh"
            );
            return;
        }
    };
    if !store.complete_restored(&serving, complete.clone()).await {
        return;
    }
    tracing::info!(
        version,
        duration_ms = started.elapsed().as_millis() as u64,
        "restored JumpCloud's data behind snapshot version {version}; writes proceed"
    );
    drop(serving);
    // Filters read entries through their tapes: build the restored ones now, off the runtime, rather
    // than in the first scan a client sends.
    let _ = tokio::task::spawn_blocking(move || {
        for e in complete.users.values().chain(complete.groups.values()) {
            e.view();
        }
    })
    .await;
}
