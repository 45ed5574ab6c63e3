//! The persisted snapshot end to end: a restart during a JumpCloud outage serves the saved snapshot at once,
//! with its version, ETags and age; a damaged file is refused and the service waits for JumpCloud instead.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use jumpcloud_scim::cache::persist;
use jumpcloud_scim::config::FeedMode;
use serde_json::{Value, json};

use crate::support::{Harness, small_emulator};

/// A fresh data directory under the system temp dir, removed on drop.
struct DataDir(PathBuf);

impl DataDir {
    fn new(name: &str) -> DataDir {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("jcscim-it-{}-{name}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        // Not created: the service creates it.
        DataDir(dir)
    }

    fn file(&self) -> PathBuf {
        persist::file_path(&self.0)
    }
}

impl Drop for DataDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Every user's id and ETag, with the snapshot version the page came from.
async fn user_etags(h: &Harness) -> (Vec<(String, String)>, u64, u64) {
    let r = h.get("/Users?count=1000").send().await.unwrap();
    assert_eq!(r.status(), 200);
    let header = |name: &str| -> u64 { r.headers()[name].to_str().unwrap().parse().unwrap() };
    let (version, age) = (header("x-snapshot-version"), header("x-snapshot-age"));
    let page: Value = r.json().await.unwrap();
    let users = page["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| {
            (
                u["id"].as_str().unwrap().to_string(),
                u["meta"]["version"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    (users, version, age)
}

#[tokio::test]
async fn a_restart_during_an_outage_serves_the_saved_snapshot_at_once() {
    let data = DataDir::new("restart");
    let dir = data.0.clone();
    // Without the Directory Insights feed a restart refreshes at once; with it, the cursor saved beside the
    // snapshot resumes the feed instead (tests/it/insights.rs).
    let mut h = Harness::start(small_emulator(40, 4), |c| {
        c.data_dir = Some(dir);
        c.insights.enabled = FeedMode::Off;
    })
    .await;
    h.wait_ready().await;
    // A write after the refresh: its version must be the one on disk at shutdown.
    let r = h
        .post(
            "/Users",
            &json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                "userName": "persisted.user",
                "emails": [{"value": "persisted.user@example.com", "primary": true}],
                "name": {"givenName": "Persisted", "familyName": "User"},
            }),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let created = r.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (before, version, _) = user_etags(&h).await;
    assert_eq!(before.len(), 41);
    let (_, ready_before) = h.readyz().await;
    let taken_at = ready_before["snapshot"]["taken_at"].clone();
    let one = &before[0];
    let r = h.get(&format!("/Users/{}", one.0)).send().await.unwrap();
    let etag = r.headers()["etag"].to_str().unwrap().to_string();
    assert_eq!(etag, one.1);

    h.stop_service().await;
    tracing::info!("stopped; the file holds the last version");
    let saved = persist::load(&data.0).unwrap().expect("saved at shutdown");
    assert_eq!(saved.version, version);

    h.faults(json!({"outage_now_s": 60})).await;
    // Let the snapshot grow old enough that an age counted from the restart would show.
    let taken: jiff::Timestamp = taken_at.as_str().unwrap().parse().unwrap();
    let old_enough = taken + jiff::SignedDuration::from_secs(2);
    if let Ok(wait) =
        std::time::Duration::try_from(old_enough.duration_since(jiff::Timestamp::now()))
    {
        tokio::time::sleep(wait).await;
    }
    h.restart_service().await;
    // Ready on the first request: no refresh can have succeeded during the outage.
    let (status, ready) = h.readyz().await;
    assert_eq!(status, 200, "{ready}");
    assert_eq!(ready["snapshot"]["version"], version);
    assert_eq!(ready["snapshot"]["taken_at"], taken_at);
    assert_eq!(ready["snapshot"]["users"], 41);
    // The data behind the restored entries follows at once (it is `restoring` until then).
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    while h.readyz().await.1["snapshot"]["restoring"] != false {
        assert!(tokio::time::Instant::now() < deadline, "never restored");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let (after, served_version, age) = user_etags(&h).await;
    assert_eq!(served_version, version);
    assert_eq!(after, before, "same users, same ETags");
    assert!(after.iter().any(|(id, _)| *id == created));
    // The age counts from the saved taken_at, not from the restart.
    assert!(age >= 2, "age {age}");
    let expected_age = (jiff::Timestamp::now().as_second() - taken.as_second()) as u64;
    assert!(age + 1 >= expected_age && age <= expected_age, "age {age}");
    let r = h.get(&format!("/Users/{}", one.0)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["etag"].to_str().unwrap(), etag);
    // If-None-Match with the ETag from before the restart still matches.
    let r = h
        .get(&format!("/Users/{}", one.0))
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 304);

    // The refresh at start-up fails, and the saved snapshot is still what is served.
    assert_eq!(h.first_refresh().await["ok"], false);
    assert_eq!(user_etags(&h).await.1, version);

    // Once JumpCloud answers again, versions continue after the saved one and unchanged users keep their ETags.
    h.faults(json!({"outage_now_s": 0})).await;
    let outcome = h.refresh_now().await;
    assert_eq!(outcome["ok"], true, "{outcome}");
    let (refreshed, refreshed_version, _) = user_etags(&h).await;
    assert!(refreshed_version > version);
    // The created user changes: JumpCloud put it in "All Users", which the write could not know.
    let others = |users: Vec<(String, String)>| -> Vec<(String, String)> {
        users.into_iter().filter(|(id, _)| *id != created).collect()
    };
    assert_eq!(others(refreshed), others(before));
}

#[tokio::test]
async fn a_write_right_after_a_restart_lands_on_the_restored_data() {
    let data = DataDir::new("write-after-restart");
    let dir = data.0.clone();
    let mut h = Harness::start(small_emulator(12, 2), |c| c.data_dir = Some(dir)).await;
    h.wait_ready().await;
    let (users, _, _) = user_etags(&h).await;
    let target = users[3].0.clone();
    h.stop_service().await;
    let saved = persist::load(&data.0)
        .unwrap()
        .expect("saved at shutdown")
        .version;

    // A slow JumpCloud: the first refresh after the restart takes seconds, the write one call.
    h.faults(json!({"latency_ms": 1500})).await;
    h.restart_service().await;
    let r = h
        .http
        .patch(h.scim(&format!("/Users/{target}")))
        .bearer_auth(crate::support::TOKEN)
        .header("content-type", "application/scim+json")
        .body(
            json!({
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [{"op": "replace", "path": "title", "value": "Restored Writer"}],
            })
            .to_string(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // The write was published on the restored version, before any refresh (the JumpCloud latency holds the
    // first refresh off), under a version past everything the earlier process reserved.
    let version: u64 = r.headers()["x-snapshot-version"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(version > saved, "{version} after {saved}");
    assert_eq!(
        h.readyz().await.1["last_refresh"],
        Value::Null,
        "no refresh yet"
    );
    assert_eq!(r.json::<Value>().await.unwrap()["title"], "Restored Writer");

    // The refresh that read JumpCloud meanwhile keeps it.
    h.faults(json!({"latency_ms": 0})).await;
    let outcome = h.refresh_now().await;
    assert_eq!(outcome["ok"], true, "{outcome}");
    let r = h.get(&format!("/Users/{target}")).send().await.unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["title"], "Restored Writer");
}

#[tokio::test]
async fn a_shrunken_first_refresh_after_a_restart_is_held_back() {
    let data = DataDir::new("shrink-after-restart");
    let dir = data.0.clone();
    let mut h = Harness::start(small_emulator(40, 2), |c| c.data_dir = Some(dir)).await;
    h.wait_ready().await;
    let (users, _, _) = user_etags(&h).await;
    h.stop_service().await;
    // While the service is down, half the directory vanishes upstream (a bad read would look the same).
    for (id, _) in &users[..20] {
        h.delete_upstream_user(id).await;
    }
    h.restart_service().await;
    // The refresh at start-up, or this one, finds 20 users where the restored snapshot had 40.
    let outcome = h.first_refresh().await;
    assert_eq!(outcome["held_back"], true, "{outcome}");
    let (status, ready) = h.readyz().await;
    assert_eq!(status, 200);
    assert_eq!(ready["held_back"]["users"], 20, "{ready}");
    assert_eq!(ready["held_back"]["high_water_users"], 40, "{ready}");
    let (served, _, _) = user_etags(&h).await;
    assert_eq!(served.len(), 40, "the restored snapshot is still served");
}

/// Stop the service, damage its file with `damage`, start it again in an outage: it must refuse the file, say
/// it is not ready, and become ready once JumpCloud answers.
async fn refused_after(h: &mut Harness, data: &DataDir, damage: impl FnOnce(&mut Vec<u8>)) {
    h.stop_service().await;
    let mut bytes = std::fs::read(data.file()).unwrap();
    damage(&mut bytes);
    std::fs::write(data.file(), &bytes).unwrap();
    h.faults(json!({"outage_now_s": 60})).await;
    h.restart_service().await;
    let (status, ready) = h.readyz().await;
    assert_eq!(status, 503, "{ready}");
    let r = h.get("/Users").send().await.unwrap();
    assert_eq!(r.status(), 503);
    h.faults(json!({"outage_now_s": 0})).await;
    h.wait_ready().await;
    let (users, _, _) = user_etags(h).await;
    assert_eq!(users.len(), 12);
}

#[tokio::test]
async fn a_truncated_or_corrupt_file_is_refused() {
    let data = DataDir::new("damaged");
    let dir = data.0.clone();
    let mut h = Harness::start(small_emulator(12, 2), |c| c.data_dir = Some(dir)).await;
    h.wait_ready().await;
    tracing::info!("truncated");
    refused_after(&mut h, &data, |b| b.truncate(b.len() / 2)).await;
    tracing::info!("one byte flipped in the payload");
    refused_after(&mut h, &data, |b| {
        let i = b.len() - 10;
        b[i] ^= 0x40;
    })
    .await;
    // The service saved what it fetched after the refusal, so the next start serves it again.
    h.stop_service().await;
    assert!(persist::load(&data.0).unwrap().is_some());
}

#[tokio::test]
async fn versions_never_repeat_after_a_kill_9() {
    let emu = jumpcloud_scim::emulator::spawn(small_emulator(6, 1))
        .await
        .unwrap();
    let dir = std::env::temp_dir().join(format!("jcscim-kill9-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let vars = [
        ("JCSCIM_JUMPCLOUD__URL", emu.base_url()),
        ("JCSCIM_JUMPCLOUD__API_KEY", "demo-key".to_owned()),
        ("JCSCIM_AUTH__TOKENS", "kill-nine-token".to_owned()),
        ("JCSCIM_DATA_DIR", dir.display().to_string()),
    ];
    let http = reqwest::Client::new();
    let version_of = |r: &reqwest::Response| -> u64 {
        r.headers()["x-snapshot-version"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap()
    };
    let mut served = crate::support::serve(&vars).await;
    let mut seen = Vec::new();
    let mut id = String::new();
    // Bounded by count; generous, for a start-up on a loaded machine.
    for _ in 0..600 {
        if let Ok(r) = http
            .get(format!("{}/scim/v2/Users?count=1", served.base))
            .bearer_auth("kill-nine-token")
            .send()
            .await
            && r.status() == 200
        {
            seen.push(version_of(&r));
            id = r.json::<Value>().await.unwrap()["Resources"][0]["id"]
                .as_str()
                .unwrap()
                .to_owned();
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(!id.is_empty(), "the service never became ready");
    // Writes publish versions; the process dies at once, before its saver can catch up.
    for i in 0..5 {
        let r = http
            .patch(format!("{}/scim/v2/Users/{id}", served.base))
            .bearer_auth("kill-nine-token")
            .header("content-type", "application/scim+json")
            .body(
                json!({"Operations": [{"op": "replace", "path": "title", "value": format!("t{i}")}]})
                    .to_string(),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        seen.push(version_of(&r));
    }
    served.child.start_kill().unwrap();
    let _ = served.child.wait().await;
    let highest = *seen.iter().max().unwrap();

    let served = crate::support::serve(&vars).await;
    // Whether or not the saver got the snapshot to disk in time, a write lands once there is one.
    let mut r = None;
    // Bounded by count; generous, for a start-up on a loaded machine.
    for _ in 0..600 {
        let a = http
            .patch(format!("{}/scim/v2/Users/{id}", served.base))
            .bearer_auth("kill-nine-token")
            .header("content-type", "application/scim+json")
            .body(
                json!({"Operations": [{"op": "replace", "path": "title", "value": "after"}]})
                    .to_string(),
            )
            .send()
            .await
            .unwrap();
        if a.status() != 503 {
            r = Some(a);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let r = r.expect("the service takes writes again");
    assert_eq!(r.status(), 200);
    let after = version_of(&r);
    assert!(
        after > highest,
        "version {after} after a crash, but {highest} was served before it"
    );
    drop(served);
    std::fs::remove_dir_all(&dir).ok();
}
