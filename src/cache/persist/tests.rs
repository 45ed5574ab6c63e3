use std::collections::HashMap as StdHashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use jiff::Timestamp;
use serde_json::json;

use std::fs;
use std::time::Duration;

use bytes::Bytes;

use super::*;
use crate::cache::test_support::{build, opts, t};
use crate::cache::{Data, Index, PackedUser, Store};
use crate::jumpcloud::{JcAddress, JcAttribute, JcMfa, JcPhoneNumber, JcRestrictedField};
use crate::jumpcloud::{JcDirectory, JcDirectoryKind, JcGroup, JcUser};
use crate::scim::ResourceKind;
use crate::shutdown::Background;

/// A fresh directory under the system temp dir, removed on drop.
struct TestDir(PathBuf);

impl TestDir {
    fn new(name: &str) -> TestDir {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("jcscim-persist-{}-{name}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        TestDir(dir)
    }

    fn file(&self) -> PathBuf {
        file_path(&self.0)
    }

    fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(&self.0)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }
}

impl Drop for TestDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// A user with every field set, so a field the records forget shows up as a difference.
fn full_user(id: &str, name: &str, manager: Option<&str>) -> JcUser {
    JcUser {
        id: id.into(),
        username: name.into(),
        email: format!("{name}@example.com"),
        firstname: Some(name.to_uppercase()),
        middlename: Some("Q".into()),
        lastname: Some("Public".into()),
        displayname: Some(format!("{name} Public")),
        alternate_email: Some(format!("{name}@alt.example.com")),
        state: Some("ACTIVATED".into()),
        suspended: false,
        activated: true,
        account_locked: true,
        password_expired: true,
        employee_identifier: Some(format!("E-{id}")),
        job_title: Some("Engineer".into()),
        department: Some("R&D".into()),
        cost_center: Some("CC1".into()),
        company: Some("Example".into()),
        employee_type: Some("Contractor".into()),
        location: Some("Remote".into()),
        description: Some("ünïcödé".into()),
        manager: manager.map(Into::into),
        phone_numbers: vec![JcPhoneNumber {
            id: Some("p1".into()),
            kind: Some("work".into()),
            number: Some("+1 555 0100".into()),
        }],
        addresses: vec![JcAddress {
            id: None,
            kind: Some("work".into()),
            po_box: Some("PO 1".into()),
            extended_address: Some("Suite 2".into()),
            street_address: Some("1 Main St".into()),
            locality: Some("Springfield".into()),
            region: Some("IL".into()),
            postal_code: Some("62701".into()),
            country: Some("US".into()),
        }],
        attributes: vec![
            JcAttribute {
                name: "scimExternalId".into(),
                value: format!("ext-{id}"),
            },
            JcAttribute {
                name: "n".into(),
                value: "42".into(),
            },
        ],
        mfa: Some(JcMfa {
            configured: true,
            exclusion: true,
            exclusion_days: Some(7),
            exclusion_until: Some("2024-01-08T00:00:00.000Z".into()),
        }),
        admin: Some(json!({"id": "a1", "roleName": "Administrator", "n": 1.5})),
        restricted_fields: vec![JcRestrictedField {
            field: "email".into(),
            id: Some("r1".into()),
            kind: Some("scim".into()),
        }],
        // Microseconds: more precision than the entries' own times, kept exactly.
        created: Some("2020-02-03T04:05:06.123456Z".into()),
        unix_uid: Some(5001),
    }
}

fn sparse_user(id: &str, name: &str) -> JcUser {
    JcUser {
        id: id.into(),
        username: name.into(),
        email: format!("{name}@example.com"),
        ..Default::default()
    }
}

fn raw() -> RawDirectory {
    let edges = |pairs: &[(&str, &[&str])]| -> StdHashMap<String, Vec<String>> {
        pairs
            .iter()
            .map(|(k, vs)| (k.to_string(), vs.iter().map(|v| v.to_string()).collect()))
            .collect()
    };
    RawDirectory {
        users: vec![
            full_user("u1", "alice", None),
            full_user("u2", "bob", Some("u1")),
            sparse_user("u3", "carol"),
        ],
        groups: vec![
            JcGroup {
                id: "g1".into(),
                name: "Engineering".into(),
                description: Some("".into()),
                email: Some("eng@example.com".into()),
                attributes: json!({"scimExternalId": "ext-g1", "sudo": {"enabled": true}})
                    .as_object()
                    .cloned(),
                membership_method: Some("STATIC".into()),
            },
            JcGroup {
                id: "g2".into(),
                name: "Sales".into(),
                ..Default::default()
            },
        ],
        members: edges(&[("g1", &["u1", "u2"]), ("g2", &["u3"])]),
        directories: vec![
            JcDirectory {
                id: "d1".into(),
                name: Some("corp.example.com".into()),
                kind: JcDirectoryKind::ActiveDirectory,
                default_domain: None,
            },
            JcDirectory {
                id: "d2".into(),
                name: Some("Workspace".into()),
                kind: JcDirectoryKind::GSuite,
                default_domain: Some("example.com".into()),
            },
            JcDirectory {
                id: "d3".into(),
                name: None,
                kind: JcDirectoryKind::Other("ldap_server".into()),
                default_domain: None,
            },
        ],
        directory_users: edges(&[("d1", &["u3"]), ("d2", &["u1", "u2"])]),
        directory_groups: edges(&[("d1", &["g1"])]),
    }
}

/// Two versions, so entries carry different `lastModified` times.
fn snapshot() -> Snapshot {
    let first = build(raw(), 6, t(1_000_000), None);
    let mut changed = raw();
    changed.users[2].department = Some("Sales".into());
    build(changed, 7, t(2_000_000), Some(&first))
}

fn saved_bytes(dir: &TestDir) -> Vec<u8> {
    save(&dir.0, &snapshot(), &opts()).unwrap();
    fs::read(dir.file()).unwrap()
}

fn edge_map(
    map: &imbl::HashMap<crate::cache::Id, imbl::OrdSet<crate::cache::Id>>,
) -> StdHashMap<String, Vec<String>> {
    map.iter()
        .map(|(k, set)| (k.to_string(), set.iter().map(|v| v.to_string()).collect()))
        .collect()
}

#[test]
fn round_trip_keeps_version_taken_at_data_and_seen_times() {
    let dir = TestDir::new("round-trip");
    let s = snapshot();
    // The change made a difference worth checking: carol's times moved, alice's did not.
    let carol = s.get(ResourceKind::User, "u3").unwrap();
    let alice = s.get(ResourceKind::User, "u1").unwrap();
    assert_eq!(carol.last_modified, t(2_000_000));
    assert_eq!(alice.last_modified, t(1_000_000));

    save(&dir.0, &s, &opts()).unwrap();
    let p = load(&dir.0).unwrap().expect("a file was saved");
    assert_eq!(p.version, 7);
    assert_eq!(p.taken_at, s.taken_at);
    let users: Vec<JcUser> = s.data.users.values().map(PackedUser::unpack).collect();
    assert_eq!(p.raw.users, users);
    let groups: Vec<JcGroup> = s.data.groups.values().map(|g| (**g).clone()).collect();
    assert_eq!(p.raw.groups, groups);
    let dirs: Vec<JcDirectory> = s.data.directories.values().map(|d| (**d).clone()).collect();
    assert_eq!(p.raw.directories, dirs);
    assert_eq!(p.raw.members, edge_map(&s.data.members));
    assert_eq!(p.raw.directory_users, edge_map(&s.data.directory_users));
    assert_eq!(p.raw.directory_groups, edge_map(&s.data.directory_groups));
    assert_eq!(p.seen().len(), s.users.len() + s.groups.len());
    for e in s.users.values().chain(s.groups.values()) {
        assert_eq!(
            p.seen().get(&(e.kind, e.id.to_string())),
            s.seen(e.kind, &e.id).as_ref(),
            "{}",
            e.id
        );
    }

    let r = restore(p, &opts());
    assert_eq!(r.version, 7);
    assert_eq!(r.taken_at, s.taken_at);
    assert_eq!(r.users.len(), s.users.len());
    assert_eq!(r.groups.len(), s.groups.len());
    for e in s.users.values().chain(s.groups.values()) {
        let back = r.get(e.kind, &e.id).expect("entry restored");
        assert_eq!(back.etag(), e.etag(), "{}", e.id);
        assert_eq!(back.created, e.created, "{}", e.id);
        assert_eq!(back.last_modified, e.last_modified, "{}", e.id);
        // The served bytes, `meta` included, are the same.
        assert_eq!(back.bytes, e.bytes, "{}", e.id);
    }
    assert_eq!(r.data.reports["u1"].len(), 1);
    assert!(
        r.indexes
            .find(Index::UserName, "carol")
            .unwrap()
            .contains("u3")
    );
}

#[test]
fn restore_with_other_options_stamps_changed_entries_now() {
    let dir = TestDir::new("other-options");
    let s = snapshot();
    save(&dir.0, &s, &opts()).unwrap();
    let p = load(&dir.0).unwrap().unwrap();
    let mut other = opts();
    other.mapping.scim_base = "https://elsewhere.example.com/scim/v2".into();
    assert!(
        !p.servable(&other),
        "entries derived with other options are derived again"
    );
    let before = Timestamp::now();
    let r = restore(p, &other);
    // Group members carry `$ref`s with the base URL, so their content changed.
    let g1 = r.get(ResourceKind::Group, "g1").unwrap();
    assert_ne!(g1.etag(), s.get(ResourceKind::Group, "g1").unwrap().etag());
    assert!(g1.last_modified >= to_millis_floor(before));
}

/// Every index as key → ids, for comparing two snapshots' indexes.
fn index_rows(s: &Snapshot) -> Vec<Vec<(String, Vec<String>)>> {
    s.indexes
        .iter()
        .map(|(_, map)| {
            let mut rows: Vec<(String, Vec<String>)> = map
                .iter()
                .map(|(k, ids)| (k.to_string(), ids.iter().map(|i| i.to_string()).collect()))
                .collect();
            rows.sort();
            rows
        })
        .collect()
}

#[test]
fn a_file_from_this_build_is_served_as_saved_without_deriving() {
    let dir = TestDir::new("serving");
    let s = snapshot();
    save(&dir.0, &s, &opts()).unwrap();
    let p = load(&dir.0).unwrap().unwrap();
    assert!(p.servable(&opts()));
    let (serving, raw) = p.into_serving();
    assert!(serving.is_serving_only());
    assert!(serving.data.users.is_empty(), "the data comes separately");
    assert_eq!(raw.users.len(), s.data.users.len());
    assert_eq!(serving.user_count(), s.user_count());
    assert_eq!(serving.group_count(), s.group_count());
    for e in s.users.values().chain(s.groups.values()) {
        let back = serving.get(e.kind, &e.id).expect("entry restored");
        // Nothing was derived: no fingerprint, the JSON comes from the saved bytes on first use.
        assert_eq!(back.inputs, None, "{}", e.id);
        assert_eq!(back.bytes, e.bytes, "{}", e.id);
        assert_eq!(back.etag(), e.etag(), "{}", e.id);
        assert_eq!(back.group_source, e.group_source, "{}", e.id);
        assert_eq!(
            (back.created, back.last_modified),
            (e.created, e.last_modified)
        );
        assert_eq!(back.to_json(), e.to_json(), "{}", e.id);
    }
    assert_eq!(index_rows(&serving), index_rows(&s));
    assert!(
        !index_rows(&s)[0].is_empty(),
        "the userName index has rows to compare"
    );

    let complete = serving.with_data(Data::from_raw(raw));
    assert!(!complete.is_serving_only());
    assert_eq!(complete.data.users, s.data.users);
    assert_eq!(complete.data.members, s.data.members);
    assert_eq!(complete.data.user_groups, s.data.user_groups);
    assert_eq!(complete.data.reports, s.data.reports);
    assert_eq!(complete.version, s.version);
}

#[test]
fn the_first_build_after_a_restore_derives_every_entry_and_keeps_its_times() {
    let dir = TestDir::new("after-restore");
    let s = snapshot();
    save(&dir.0, &s, &opts()).unwrap();
    let restored = restore(load(&dir.0).unwrap().unwrap(), &opts());
    // The next refresh reads the same directory, except that bob's title changed.
    let next = build(raw_with_chief(), 8, t(3_000_000), Some(&restored));
    for e in next.users.values().chain(next.groups.values()) {
        assert!(e.inputs.is_some(), "{} was derived again", e.id);
        let before = s.get(e.kind, &e.id).unwrap();
        if &*e.id == "u2" {
            assert_ne!(e.etag(), before.etag());
            assert_eq!(e.last_modified, t(3_000_000));
            assert_eq!(e.created, before.created);
        } else if e.kind == ResourceKind::User {
            assert_eq!(e.etag(), before.etag(), "{}", e.id);
            assert_eq!(e.bytes, before.bytes, "{}", e.id);
            assert_eq!(e.last_modified, before.last_modified, "{}", e.id);
        }
    }
    // And the build after that reuses them by fingerprint.
    let again = build(raw_with_chief(), 9, t(4_000_000), Some(&next));
    assert!(Arc::ptr_eq(
        again.get(ResourceKind::User, "u1").unwrap(),
        next.get(ResourceKind::User, "u1").unwrap()
    ));
}

fn raw_with_chief() -> RawDirectory {
    let mut r = raw();
    r.users[2].department = Some("Sales".into());
    r.users[1].job_title = Some("Chief".into());
    r
}

fn to_millis_floor(t: Timestamp) -> Timestamp {
    Timestamp::from_millisecond(t.as_millisecond()).unwrap()
}

#[test]
fn the_same_snapshot_gives_the_same_bytes() {
    let a = TestDir::new("same-a");
    let b = TestDir::new("same-b");
    assert_eq!(saved_bytes(&a), saved_bytes(&b));
}

#[test]
fn a_missing_file_is_none() {
    let dir = TestDir::new("missing");
    assert!(load(&dir.0).unwrap().is_none());
    assert!(load(&dir.0.join("not-there")).unwrap().is_none());
}

#[test]
fn a_truncated_file_is_refused_at_every_cut() {
    let dir = TestDir::new("truncated");
    let bytes = saved_bytes(&dir);
    for cut in 0..bytes.len() {
        match decode(Bytes::copy_from_slice(&bytes[..cut])) {
            Err(PersistError::Truncated { found, .. }) => assert_eq!(found, cut as u64),
            other => panic!("cut at {cut}: {other:?}"),
        }
    }
    // And through the file, at a few offsets.
    for cut in [
        0,
        5,
        HEADER_LEN,
        HEADER_LEN + 1,
        bytes.len() / 2,
        bytes.len() - 1,
    ] {
        fs::write(dir.file(), &bytes[..cut]).unwrap();
        assert!(
            matches!(load(&dir.0), Err(PersistError::Truncated { .. })),
            "cut at {cut}"
        );
    }
}

#[test]
fn a_flipped_byte_is_corrupt() {
    let dir = TestDir::new("flipped");
    let bytes = saved_bytes(&dir);
    for i in HEADER_LEN..bytes.len() {
        let mut damaged = bytes.clone();
        damaged[i] ^= 0x20;
        assert!(
            matches!(
                decode(Bytes::copy_from_slice(&damaged)),
                Err(PersistError::Corrupt(_))
            ),
            "flip at {i}"
        );
    }
    // The checksum itself, and the magic.
    for i in [0, 20, 23] {
        let mut damaged = bytes.clone();
        damaged[i] ^= 0x01;
        fs::write(dir.file(), &damaged).unwrap();
        assert!(
            matches!(load(&dir.0), Err(PersistError::Corrupt(_))),
            "flip at {i}"
        );
    }
    // A length that disagrees with the file either way.
    for delta in [1i64, -1] {
        let mut damaged = bytes.clone();
        let len = u64::from_le_bytes(damaged[12..20].try_into().unwrap());
        damaged[12..20].copy_from_slice(&((len as i64 + delta) as u64).to_le_bytes());
        assert!(
            matches!(
                decode(Bytes::copy_from_slice(&damaged)),
                Err(PersistError::Truncated { .. } | PersistError::Corrupt(_))
            ),
            "length {delta:+}"
        );
    }
    assert!(matches!(
        decode(Bytes::from_static(b"not a snapshot at all, just text")),
        Err(PersistError::Corrupt(_))
    ));
}

#[test]
fn a_file_of_another_format_version_is_refused() {
    let dir = TestDir::new("version");
    let mut bytes = saved_bytes(&dir);
    bytes[8..12].copy_from_slice(&(FORMAT_VERSION + 1).to_le_bytes());
    fs::write(dir.file(), &bytes).unwrap();
    match load(&dir.0) {
        Err(PersistError::WrongVersion { found, expected }) => {
            assert_eq!((found, expected), (FORMAT_VERSION + 1, FORMAT_VERSION));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_payload_that_passes_the_checksum_but_does_not_decode_is_refused() {
    let payload = vec![0xff; 10];
    let mut bytes = Vec::new();
    bytes.extend_from_slice(&MAGIC);
    bytes.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    bytes.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    bytes.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
    bytes.extend_from_slice(&payload);
    assert!(matches!(
        decode(Bytes::copy_from_slice(&bytes)),
        Err(PersistError::Decode(_))
    ));
}

#[test]
fn a_save_leaves_no_temporary_file() {
    let dir = TestDir::new("no-tmp");
    save(&dir.0, &snapshot(), &opts()).unwrap();
    assert_eq!(dir.names(), vec![FILE_NAME.to_string()]);
    // Saving again replaces the file in place.
    let next = build(raw(), 9, t(3_000_000), None);
    save(&dir.0, &next, &opts()).unwrap();
    assert_eq!(dir.names(), vec![FILE_NAME.to_string()]);
    assert_eq!(load(&dir.0).unwrap().unwrap().version, 9);
    // A save that cannot write reports it and leaves nothing behind.
    let gone = dir.0.join("gone");
    assert!(matches!(
        save(&gone, &next, &opts()),
        Err(PersistError::Io(_))
    ));
    assert_eq!(dir.names(), vec![FILE_NAME.to_string()]);
}

// === the saver ===

async fn publish(store: &Store, version: u64) {
    let snapshot = build(raw(), version, t(1_000_000 + version as i64), None);
    store.publish_as_is(Arc::new(snapshot)).await;
}

/// The saver as the app runs it: an owned task, stopped and awaited.
struct Saver(Background);

fn spawn_saver(store: Arc<Store>, dir: PathBuf, on_disk: Option<u64>) -> Saver {
    let mut tasks = Background::new();
    tasks.spawn("saver", move |stop| run_saver(store, dir, on_disk, stop));
    Saver(tasks)
}

impl Saver {
    /// Stop the saver (it saves the latest version first) and wait for it.
    async fn flush_and_stop(self) {
        self.0.stop(Duration::from_secs(60)).await;
    }
}

fn saved_version(dir: &TestDir) -> Option<u64> {
    load(&dir.0).unwrap().map(|p| p.version)
}

#[tokio::test]
async fn the_saver_ends_with_the_latest_version_on_disk() {
    let dir = TestDir::new("saver-flush");
    let store = Arc::new(Store::new(opts()));
    let saver = spawn_saver(store.clone(), dir.0.clone(), None);
    for v in 1..=5 {
        publish(&store, v).await;
    }
    saver.flush_and_stop().await;
    assert_eq!(saved_version(&dir), Some(5));
    assert_eq!(dir.names(), vec![FILE_NAME.to_string()]);
}

#[tokio::test]
async fn the_saver_saves_a_new_version_while_running() {
    let dir = TestDir::new("saver-running");
    let store = Arc::new(Store::new(opts()));
    let saver = spawn_saver(store.clone(), dir.0.clone(), None);
    publish(&store, 3).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while saved_version(&dir) != Some(3) {
        assert!(tokio::time::Instant::now() < deadline, "never saved");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    publish(&store, 4).await;
    while saved_version(&dir) != Some(4) {
        assert!(tokio::time::Instant::now() < deadline, "never saved");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    saver.flush_and_stop().await;
}

#[tokio::test]
async fn the_saver_does_not_rewrite_the_version_on_disk() {
    let dir = TestDir::new("saver-on-disk");
    let store = Arc::new(Store::new(opts()));
    publish(&store, 8).await;
    let saver = spawn_saver(store.clone(), dir.0.clone(), Some(8));
    saver.flush_and_stop().await;
    assert!(dir.names().is_empty());
}

#[tokio::test]
async fn the_saver_does_not_save_a_serving_only_version() {
    let dir = TestDir::new("saver-serving");
    let store = Arc::new(Store::new(opts()));
    let source = TestDir::new("saver-serving-source");
    save(&source.0, &snapshot(), &opts()).unwrap();
    let (serving, _) = load(&source.0).unwrap().unwrap().into_serving();
    store.publish_as_is(Arc::new(serving)).await;
    spawn_saver(store, dir.0.clone(), None)
        .flush_and_stop()
        .await;
    assert!(dir.names().is_empty());
}

#[tokio::test]
async fn a_start_up_serves_the_file_and_completes_it_for_writes() {
    let dir = TestDir::new("start-up");
    let s = snapshot();
    save(&dir.0, &s, &opts()).unwrap();
    let store = Arc::new(Store::new(opts()));
    // The restore completion is a task of `tasks`: held for the test, stopped at its end.
    let mut tasks = Background::new();
    assert_eq!(load_and_publish(&store, &dir.0, &mut tasks).await, Some(7));
    let served = store.load().expect("published at once");
    assert_eq!(served.version, 7);
    assert_eq!(served.user_count(), s.user_count());
    let complete = store
        .load_complete(Duration::from_secs(20))
        .await
        .expect("the data follows");
    assert!(!complete.is_serving_only());
    assert_eq!(complete.version, 7);
    assert_eq!(complete.data.users, s.data.users);
    // Later versions continue after the file's.
    assert!(store.next_version() > 7);
    tasks.stop(Duration::from_secs(10)).await;
}

#[tokio::test(start_paused = true)]
async fn writes_wait_for_a_complete_version_and_give_up_after_their_wait() {
    let dir = TestDir::new("load-complete");
    save(&dir.0, &snapshot(), &opts()).unwrap();
    let (serving, raw) = load(&dir.0).unwrap().unwrap().into_serving();
    let serving = Arc::new(serving);
    let store = Arc::new(Store::new(opts()));
    assert!(
        store.load_complete(Duration::from_secs(1)).await.is_none(),
        "nothing published"
    );
    store.publish_as_is(serving.clone()).await;
    // A write against a serving-only version has no data to change.
    assert!(
        store
            .publish_write(|_| crate::cache::Touched::default())
            .await
            .is_none()
    );
    assert!(
        store.load_complete(Duration::from_secs(1)).await.is_none(),
        "never completed"
    );

    let completing = {
        let store = store.clone();
        let complete = Arc::new(serving.with_data(Data::from_raw(raw)));
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            store.publish_as_is(complete).await;
        })
    };
    let started = tokio::time::Instant::now();
    let complete = store
        .load_complete(Duration::from_secs(5))
        .await
        .expect("completed while waiting");
    assert!(!complete.is_serving_only());
    assert!(started.elapsed() >= Duration::from_millis(300));
    completing.await.unwrap();
    assert!(
        store
            .publish_write(|_| crate::cache::Touched::default())
            .await
            .is_some()
    );
}

#[tokio::test]
async fn the_saver_with_nothing_published_writes_nothing() {
    let dir = TestDir::new("saver-empty");
    let store = Arc::new(Store::new(opts()));
    spawn_saver(store, dir.0.clone(), None)
        .flush_and_stop()
        .await;
    assert!(dir.names().is_empty());
}

/// A file whose header is `bytes`'s, except the payload length.
fn with_claimed_length(bytes: &[u8], claimed: u64) -> Vec<u8> {
    let mut damaged = bytes.to_vec();
    damaged[12..20].copy_from_slice(&claimed.to_le_bytes());
    damaged
}

#[test]
fn a_length_no_file_can_have_is_refused_without_overflow() {
    let dir = TestDir::new("all-ones");
    let bytes = saved_bytes(&dir);
    let held = (bytes.len() - HEADER_LEN) as u64;
    let err = decode(with_claimed_length(&bytes, u64::MAX)).unwrap_err();
    match &err {
        PersistError::ImpossibleLength { claimed, held: h } => {
            assert_eq!((*claimed, *h), (u64::MAX, held));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        err.to_string(),
        format!(
            "file is corrupt: the header claims a payload of 18446744073709551615 bytes; the file holds {held} \
             after the header"
        )
    );
    // Just short of overflowing: an honest truncation, however unlikely.
    let near = u64::MAX - HEADER_LEN as u64;
    match decode(with_claimed_length(&bytes, near)) {
        Err(PersistError::Truncated { expected, found }) => {
            assert_eq!((expected, found), (u64::MAX, bytes.len() as u64));
        }
        other => panic!("{other:?}"),
    }
    // Through the file too, and from a borrowed slice.
    fs::write(dir.file(), with_claimed_length(&bytes, u64::MAX)).unwrap();
    assert!(matches!(
        load(&dir.0),
        Err(PersistError::ImpossibleLength { .. })
    ));
    assert!(decode(bytes.clone()).is_ok());
}

/// The small real file the snapshot fuzz targets start from. Run when [`FORMAT_VERSION`] moves:
/// `cargo test --lib write_the_fuzz_seed_snapshot -- --ignored`.
#[test]
#[ignore = "writes the fuzz seed corpus"]
fn write_the_fuzz_seed_snapshot() {
    let mut raw = raw();
    raw.users.truncate(2);
    raw.groups.truncate(1);
    raw.members = StdHashMap::from([("g1".into(), vec!["u1".into(), "u2".into()])]);
    raw.directories.truncate(1);
    raw.directory_users = StdHashMap::from([("d1".into(), vec!["u2".into()])]);
    raw.directory_groups = StdHashMap::from([("d1".into(), vec!["g1".into()])]);
    let snapshot = build(raw, 3, t(1_700_000_000), None);
    let dir = TestDir::new("fuzz-seed");
    save(&dir.0, &snapshot, &opts()).unwrap();
    let bytes = fs::read(dir.file()).unwrap();
    decode(bytes.clone()).unwrap();
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus");
    for target in ["snapshot", "snapshot_payload"] {
        let dir = corpus.join(target);
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join(format!("small-v{FORMAT_VERSION}.bin")), &bytes).unwrap();
    }
}
