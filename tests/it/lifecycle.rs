//! Start-up and shutdown: graceful within ten seconds even mid-refresh, in-flight requests finish.

use std::time::Duration;

use tokio::time::Instant;

use jumpcloud_scim::auth::Scope;
use jumpcloud_scim::config::{Config, Secret, TokenConfig};
use jumpcloud_scim::emulator::{self, EmulatorConfig, FaultConfig};
use serde_json::json;

use crate::support::TOKEN;

#[tokio::test]
async fn shutdown_is_graceful_and_prompt_even_mid_refresh() {
    let emu = emulator::spawn(EmulatorConfig {
        users: 20,
        groups: 2,
        faults: FaultConfig::default(),
        ..EmulatorConfig::default()
    })
    .await
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut config = Config {
        listen: addr,
        public_url: Some(format!("http://{addr}")),
        ..Config::default()
    };
    config.jumpcloud.url = emu.base_url();
    config.jumpcloud.api_key = Some(Secret::new("demo-key"));
    config.refresh.interval_s = Some(3600);
    config.auth.tokens = vec![TokenConfig {
        token: Some(Secret::new(TOKEN)),
        token_sha256: None,
        name: None,
        scope: Scope::Provision,
    }];
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(jumpcloud_scim::app::serve(listener, config, async {
        let _ = stopped.await;
    }));
    let http = reqwest::Client::new();
    let base = format!("http://{addr}");
    let deadline = Instant::now() + Duration::from_secs(30);
    while http
        .get(format!("{base}/readyz"))
        .send()
        .await
        .map(|r| r.status() != 200)
        .unwrap_or(true)
    {
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // JumpCloud turns slow: a refresh and a write are both in flight when shutdown starts.
    http.put(format!("{}/__emulator/faults", emu.base_url()))
        .json(&json!({"latency_ms": 1500}))
        .send()
        .await
        .unwrap();
    http.post(format!("{base}/admin/refresh"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    let write = {
        let http = http.clone();
        let url = format!("{base}/scim/v2/Users");
        tokio::spawn(async move {
            http.post(url)
                .bearer_auth(TOKEN)
                .header("content-type", "application/scim+json")
                .body(json!({"userName": "late.joiner", "emails": [{"value": "late.joiner@example.com"}]}).to_string())
                .send()
                .await
                .map(|r| r.status().as_u16())
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = Instant::now();
    stop.send(()).unwrap();
    let result = tokio::time::timeout(Duration::from_secs(12), server).await;
    assert!(
        result.is_ok(),
        "serve did not return within 10 s of shutdown"
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    // The write that was in flight finished with its real answer.
    assert_eq!(write.await.unwrap().unwrap(), 201);
    // And the service no longer accepts connections.
    assert!(http.get(format!("{base}/healthz")).send().await.is_err());
}
