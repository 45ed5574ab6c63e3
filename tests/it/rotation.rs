//! Secrets rotated without a restart, on the real binary: a token file that changes is read again at once
//! (the new token is accepted, the old refused); a file that turns bad keeps the old secrets; a new
//! JumpCloud API key is used from the next call after SIGHUP.

use std::time::Duration;

use serde_json::Value;

use crate::support::{serve, small_emulator};

async fn status_with(base: &str, token: &str) -> u16 {
    reqwest::Client::new()
        .get(format!("{base}/scim/v2/Users?count=1"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// Poll until `want` holds, for at most ten seconds.
async fn eventually(mut check: impl AsyncFnMut() -> bool, what: &str) {
    let until = tokio::time::Instant::now() + Duration::from_secs(10);
    while tokio::time::Instant::now() < until {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("{what} did not happen within 10 s");
}

async fn last_refresh_ok(base: &str, token: &str) -> Option<bool> {
    let http = reqwest::Client::new();
    let before: Value = http
        .get(format!("{base}/readyz"))
        .send()
        .await
        .ok()?
        .json()
        .await
        .ok()?;
    let r = http
        .post(format!("{base}/admin/refresh"))
        .bearer_auth(token)
        .send()
        .await
        .ok()?;
    assert_eq!(r.status(), 202);
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let now: Value = http
            .get(format!("{base}/readyz"))
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        if now["last_refresh"]["finished_at"] != before["last_refresh"]["finished_at"] {
            return now["last_refresh"]["ok"].as_bool();
        }
    }
    None
}

#[tokio::test]
async fn secrets_rotate_without_a_restart() {
    let emu = jumpcloud_scim::emulator::spawn(small_emulator(5, 1))
        .await
        .unwrap();
    let dir = std::env::temp_dir().join(format!("jcscim-rotation-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let tokens = dir.join("tokens");
    let key = dir.join("api-key");
    std::fs::write(&tokens, "first-token-1234\n").unwrap();
    std::fs::write(&key, "demo-key\n").unwrap();
    let served = serve(&[
        ("JCSCIM_JUMPCLOUD__URL", emu.base_url()),
        ("JCSCIM_JUMPCLOUD__API_KEY_FILE", key.display().to_string()),
        ("JCSCIM_AUTH__TOKENS_FILE", tokens.display().to_string()),
        // Polling with a token that is not valid yet is a failed authentication from this address each
        // time; on a slow machine enough of them would be slowed (429), which is not what this test is about.
        ("JCSCIM_LIMITS__AUTH_FAILURES_BURST", "10000".to_string()),
    ])
    .await;
    let base = served.base.clone();
    eventually(
        async || status_with(&base, "first-token-1234").await == 200,
        "the first token works",
    )
    .await;

    // A new token file: the new token is accepted and the old one refused, without a restart.
    std::fs::write(&tokens, "second-token-5678\n").unwrap();
    eventually(
        async || status_with(&base, "second-token-5678").await == 200,
        "the new token works",
    )
    .await;
    assert_eq!(status_with(&base, "first-token-1234").await, 401);

    // A file that turns bad (empty) keeps the secrets in use.
    std::fs::write(&tokens, "").unwrap();
    tokio::time::sleep(jumpcloud_scim::rotation::POLL * 3).await;
    assert_eq!(status_with(&base, "second-token-5678").await, 200);
    std::fs::write(&tokens, "second-token-5678\n").unwrap();

    // A new JumpCloud key, taken on SIGHUP: a wrong one makes the next refresh fail, the right one mends it.
    assert_eq!(
        last_refresh_ok(&base, "second-token-5678").await,
        Some(true)
    );
    std::fs::write(&key, "not-the-key\n").unwrap();
    let pid = served.child.id().unwrap().to_string();
    let hup = |pid: String| async move {
        let s = tokio::process::Command::new("kill")
            .args(["-HUP", &pid])
            .status()
            .await
            .unwrap();
        assert!(s.success());
    };
    hup(pid.clone()).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        last_refresh_ok(&base, "second-token-5678").await,
        Some(false)
    );
    std::fs::write(&key, "demo-key\n").unwrap();
    hup(pid).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        last_refresh_ok(&base, "second-token-5678").await,
        Some(true)
    );
    std::fs::remove_dir_all(&dir).ok();
}
