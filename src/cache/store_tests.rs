//! Publishing feed batches: one version per batch that changes something, none for one that does not, a
//! refresh in flight that cannot roll a batch back, the shrink guard, and the cursor moving with the data.

use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;

use super::*;
use crate::cache::test_support::{build, opts, t};
use crate::cache::{Id, RawDirectory};
use crate::jumpcloud::JcUser;

const OVERLAP: Duration = Duration::from_secs(60);

fn user(i: usize) -> JcUser {
    JcUser {
        id: format!("u{i:03}"),
        username: format!("user{i}"),
        email: format!("user{i}@example.com"),
        ..JcUser::default()
    }
}

fn raw(n: usize) -> RawDirectory {
    RawDirectory {
        users: (0..n).map(user).collect(),
        ..RawDirectory::default()
    }
}

fn id(s: &str) -> Id {
    Arc::from(s)
}

/// A store holding a refresh of `n` users, published.
async fn store(n: usize, max_shrink: f64) -> Store {
    let store = Store::with_max_shrink(opts(), max_shrink);
    let ticket = store.begin_refresh().await;
    let at = ticket.started_at;
    match store
        .publish_refresh(ticket, Data::from_raw(raw(n)), at)
        .await
    {
        RefreshPublished::Published(_) => store,
        RefreshPublished::HeldBack(r) => panic!("{r}"),
    }
}

/// A change that sets `u`'s department.
fn department(u: &str, dept: &str) -> impl FnOnce(&mut Data) -> Touched {
    let (u, dept) = (u.to_owned(), dept.to_owned());
    move |data: &mut Data| {
        let mut ju = data.users.get(u.as_str()).unwrap().unpack();
        ju.department = Some(dept);
        let uid = data.put_user(ju);
        let mut touched = Touched::default();
        touched.users.insert(uid);
        touched
    }
}

fn dept_of(store: &Store, u: &str) -> Option<String> {
    store
        .load()
        .unwrap()
        .data
        .users
        .get(u)
        .unwrap()
        .unpack()
        .department
}

#[tokio::test]
async fn a_refresh_sets_the_cursor_where_it_began() {
    let store = store(3, 0.1).await;
    let mark = store.feed_mark();
    let refreshed = mark.refreshed_at.expect("the refresh is recorded");
    assert_eq!(mark.cursor, Some(Cursor::at(refreshed)));
    assert_eq!(mark.version, store.load().unwrap().version);
    assert_eq!(mark.epoch, 1);
}

#[tokio::test]
async fn a_batch_is_one_version_and_one_that_changes_nothing_is_none() {
    let store = store(3, 0.1).await;
    let before = store.load().unwrap();
    let mark = store.feed_mark();
    let cursor = mark
        .cursor
        .clone()
        .unwrap()
        .advance([(5, "e1".to_owned())], None, OVERLAP);
    let read = Timestamp::now();
    let published = store
        .publish_events(
            mark.epoch,
            cursor.clone(),
            Some(read),
            department("u001", "Sales"),
        )
        .await;
    let EventsPublished::Published(snap) = published else {
        panic!("{published:?}");
    };
    assert_eq!(snap.version, before.version + 1);
    assert_eq!(dept_of(&store, "u001").as_deref(), Some("Sales"));
    assert!(
        Arc::ptr_eq(&snap.users["u000"], &before.users["u000"]),
        "untouched entries are shared"
    );
    assert!(!Arc::ptr_eq(&snap.users["u001"], &before.users["u001"]));
    let mark = store.feed_mark();
    assert_eq!(mark.cursor.as_ref(), Some(&cursor));
    assert_eq!(mark.version, snap.version);
    assert_eq!(store.fresh_as_of(&snap), read.max(before.taken_at));
    // The same events again (an overlap re-read) change nothing: no version, the freshness moves.
    let later = read + jiff::SignedDuration::from_secs(5);
    let again = cursor.advance([], Some(later), OVERLAP);
    let r = store
        .publish_events(mark.epoch, again.clone(), Some(later), |_| {
            Touched::default()
        })
        .await;
    assert!(matches!(r, EventsPublished::Unchanged), "{r:?}");
    let now = store.load().unwrap();
    assert_eq!(now.version, snap.version);
    assert_eq!(store.feed_mark().cursor, Some(again));
    assert_eq!(store.fresh_as_of(&now), later);
    assert_eq!(
        store.fresh_as_of(&before),
        before.taken_at,
        "an older version is as fresh as it was"
    );
}

#[tokio::test]
async fn a_batch_read_before_the_cursor_was_reset_is_stale() {
    let store = store(3, 0.1).await;
    let old = store.feed_mark();
    // A later refresh that began after where the cursor stands resets it.
    tokio::time::sleep(Duration::from_millis(5)).await;
    let ticket = store.begin_refresh().await;
    let at = ticket.started_at;
    store
        .publish_refresh(ticket, Data::from_raw(raw(3)), at)
        .await;
    let mark = store.feed_mark();
    assert_eq!(mark.epoch, old.epoch + 1);
    assert_eq!(mark.cursor, Some(Cursor::at(at)));
    let version = store.load().unwrap().version;
    let r = store
        .publish_events(
            old.epoch,
            old.cursor.unwrap(),
            None,
            department("u001", "X"),
        )
        .await;
    assert!(matches!(r, EventsPublished::Stale), "{r:?}");
    assert_eq!(store.load().unwrap().version, version);
    assert_eq!(dept_of(&store, "u001"), None);
}

#[tokio::test]
async fn a_cursor_ahead_of_a_refresh_is_kept_and_its_batch_survives_the_refresh() {
    let store = store(3, 0.1).await;
    // A refresh begins, reads JumpCloud (without the change), and takes a while.
    let ticket = store.begin_refresh().await;
    let mark = store.feed_mark();
    let ahead = Timestamp::now() + jiff::SignedDuration::from_secs(30);
    let cursor = mark.cursor.clone().unwrap().advance(
        [(ahead.as_millisecond(), "e9".to_owned())],
        Some(ahead),
        OVERLAP,
    );
    let r = store
        .publish_events(
            mark.epoch,
            cursor.clone(),
            None,
            department("u002", "Legal"),
        )
        .await;
    assert!(matches!(r, EventsPublished::Published(_)), "{r:?}");
    let at = ticket.started_at;
    let r = store
        .publish_refresh(ticket, Data::from_raw(raw(3)), at)
        .await;
    assert!(matches!(r, RefreshPublished::Published(_)));
    assert_eq!(
        dept_of(&store, "u002").as_deref(),
        Some("Legal"),
        "the refresh in flight cannot roll the batch back"
    );
    let after = store.feed_mark();
    assert_eq!(after.cursor, Some(cursor), "ahead of the refresh: kept");
    assert_eq!(
        after.epoch, mark.epoch,
        "so a batch read from it is not stale"
    );
}

#[tokio::test]
async fn deletions_from_the_feed_count_against_the_shrink_guard() {
    let store = store(100, 0.1).await;
    let mark = store.feed_mark();
    let remove = |ids: Vec<String>| {
        move |data: &mut Data| {
            let mut touched = Touched::default();
            for u in ids {
                touched.extend(&data.remove_user(&id(&u)));
            }
            touched
        }
    };
    let few: Vec<String> = (0..5).map(|i| format!("u{i:03}")).collect();
    let cursor = mark.cursor.clone().unwrap();
    let r = store
        .publish_events(mark.epoch, cursor.clone(), None, remove(few))
        .await;
    assert!(matches!(r, EventsPublished::Published(_)), "{r:?}");
    assert_eq!(store.load().unwrap().user_count(), 95);
    // Another batch that would take the directory to 80 (20% below the mark of 100) is held back.
    let many: Vec<String> = (5..20).map(|i| format!("u{i:03}")).collect();
    let version = store.load().unwrap().version;
    let moved = cursor.advance([(1, "e1".to_owned())], None, OVERLAP);
    let r = store
        .publish_events(mark.epoch, moved, None, remove(many))
        .await;
    let EventsPublished::HeldBack(reason) = r else {
        panic!("{r:?}");
    };
    assert!(
        reason.contains("users fell from a high-water mark of 100 to 80"),
        "{reason}"
    );
    assert_eq!(store.load().unwrap().version, version);
    assert_eq!(store.load().unwrap().user_count(), 95);
    assert_eq!(
        store.feed_mark().cursor,
        Some(cursor),
        "the cursor stays before it"
    );
}

#[tokio::test]
async fn a_saved_cursor_is_restored_only_with_its_snapshot_or_a_later_one() {
    let store = Store::new(opts());
    let cursor = Cursor::at(t(1_000));
    assert!(
        !store.restore_feed(cursor.clone(), 1, None).await,
        "nothing published"
    );
    store
        .publish_as_is(Arc::new(build(raw(2), 7, t(900), None)))
        .await;
    assert!(
        !store.restore_feed(cursor.clone(), 8, None).await,
        "saved with a later version"
    );
    assert!(store.feed_mark().cursor.is_none());
    assert!(store.restore_feed(cursor.clone(), 7, Some(t(800))).await);
    let mark = store.feed_mark();
    assert_eq!(mark.cursor, Some(cursor));
    assert_eq!(mark.refreshed_at, Some(t(800)));
    assert_eq!(mark.epoch, 1);
}

#[test]
fn write_records_stay_bounded_where_no_refresh_clears_them() {
    let mut state = PublishState::default();
    let n = MAX_WRITE_RECORDS + 10;
    for _ in 0..n {
        state.record(Touched::default(), 1, 0, Timestamp::now());
    }
    assert!(state.writes.len() <= MAX_WRITE_RECORDS);
    assert_eq!(state.write_generation, n as u64);
    assert_eq!(state.writes.last().unwrap().generation, n as u64);
    assert!(
        state
            .writes
            .windows(2)
            .all(|w| w[0].generation + 1 == w[1].generation),
        "the newest records are kept, in order"
    );
}
