//! Soak: many aggregation walks for several minutes against the demo's fault pattern (random 502s, outage
//! windows), with a restart of the service in the middle (from its persisted snapshot, during an outage).
//!
//! `cargo run --release --example soak [MINUTES] [FAIL_RATE]` (default 4 minutes, 0.2). The outage pattern is
//! the demo's compressed to the run: a 30 s outage every 90 s. Prints walks completed, answers by status (the
//! goal: no 5xx), upstream calls per minute, and the snapshot age each walk saw. Bounded in time.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use jumpcloud_scim::auth::Scope;
use jumpcloud_scim::config::{Config, FeedMode, Secret, TokenConfig};
use jumpcloud_scim::emulator::{self, EmulatorConfig, FaultConfig};
use serde_json::Value;

const TOKEN: &str = "soak-token-0123456789";
const WALKERS: usize = 4;

#[derive(Default)]
struct Tally {
    walks: u64,
    incomplete_walks: u64,
    statuses: BTreeMap<u16, u64>,
    connection_errors: u64,
    ages: Vec<u64>,
}

fn config(addr: std::net::SocketAddr, emulator: &str, data_dir: &std::path::Path) -> Config {
    let mut c = Config {
        listen: addr,
        public_url: Some(format!("http://{addr}")),
        data_dir: Some(data_dir.to_path_buf()),
        ..Config::default()
    };
    c.jumpcloud.url = emulator.to_string();
    c.jumpcloud.api_key = Some(Secret::new("demo-key"));
    c.refresh.interval_s = Some(10);
    // The soak is of full refreshes through faults, every 10 s; the feed's own are in tests/it/insights.rs.
    c.insights.enabled = FeedMode::Off;
    c.auth.tokens = vec![TokenConfig {
        token: Some(Secret::new(TOKEN)),
        token_sha256: None,
        name: Some("soak".into()),
        scope: Scope::Read,
    }];
    c
}

async fn start(
    addr: std::net::SocketAddr,
    emulator: &str,
    dir: &std::path::Path,
) -> (
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<()>,
) {
    let listener = loop {
        match tokio::net::TcpListener::bind(addr).await {
            Ok(l) => break l,
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    };
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let cfg = config(addr, emulator, dir);
    let handle = tokio::spawn(async move {
        let _ = jumpcloud_scim::app::serve(listener, cfg, async {
            let _ = rx.await;
        })
        .await;
    });
    (tx, handle)
}

/// One walk of every page of `/Users` then `/Groups`; returns the first page's snapshot age when complete.
async fn walk(client: &reqwest::Client, base: &str, tally: &Mutex<Tally>) -> Option<u64> {
    let mut age = None;
    for endpoint in ["Users", "Groups"] {
        let mut start = 1u64;
        loop {
            let r = client
                .get(format!(
                    "{base}/scim/v2/{endpoint}?startIndex={start}&count=100"
                ))
                .bearer_auth(TOKEN)
                .send()
                .await;
            let r = match r {
                Ok(r) => r,
                Err(_) => {
                    tally.lock().unwrap().connection_errors += 1;
                    return None;
                }
            };
            let status = r.status().as_u16();
            *tally.lock().unwrap().statuses.entry(status).or_default() += 1;
            if status != 200 {
                return None;
            }
            if age.is_none() {
                age = r
                    .headers()
                    .get("x-snapshot-age")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse().ok());
            }
            let page: Value = r.json().await.ok()?;
            let n = page["Resources"].as_array().map_or(0, Vec::len) as u64;
            start += n;
            if n == 0 || start > page["totalResults"].as_u64().unwrap_or(0) {
                break;
            }
        }
    }
    age
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let minutes: f64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(4.0);
    let fail_rate: f64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(0.2);
    let run_for = Duration::from_secs_f64(minutes * 60.0);
    let emu = emulator::spawn(EmulatorConfig {
        faults: FaultConfig {
            fail_rate,
            outage_every_s: 90,
            outage_for_s: 30,
            ..FaultConfig::default()
        },
        ..EmulatorConfig::default()
    })
    .await
    .expect("emulator");
    let dir = std::env::temp_dir().join(format!("jcscim-soak-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let addr = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let base = format!("http://{addr}");
    let (mut stop, mut server) = start(addr, &emu.base_url(), &dir).await;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    let began = Instant::now();
    while client
        .get(format!("{base}/readyz"))
        .send()
        .await
        .map(|r| r.status() != 200)
        .unwrap_or(true)
    {
        assert!(began.elapsed() < Duration::from_secs(120), "never ready");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    println!(
        "ready after {:.1} s; soaking for {minutes} min at {fail_rate} random 502s, 30 s outages every 90 s",
        began.elapsed().as_secs_f64()
    );
    let stats_url = format!("{}/__emulator/stats", emu.base_url());
    client.delete(&stats_url).send().await.ok();

    let tally = Arc::new(Mutex::new(Tally::default()));
    let started = Instant::now();
    let deadline = started + run_for;
    let mut walkers = Vec::new();
    for _ in 0..WALKERS {
        let (client, base, tally) = (client.clone(), base.clone(), tally.clone());
        walkers.push(tokio::spawn(async move {
            while Instant::now() < deadline {
                match walk(&client, &base, &tally).await {
                    Some(age) => {
                        let mut t = tally.lock().unwrap();
                        t.walks += 1;
                        t.ages.push(age);
                    }
                    None => {
                        tally.lock().unwrap().incomplete_walks += 1;
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                }
            }
        }));
    }
    // The restart, in the middle, during an outage: the service comes back from its saved snapshot.
    tokio::time::sleep(run_for / 2).await;
    client
        .put(format!("{}/__emulator/faults", emu.base_url()))
        .body(r#"{"outage_now_s": 20}"#)
        .send()
        .await
        .ok();
    let restart = Instant::now();
    let _ = stop.send(());
    let _ = server.await;
    (stop, server) = start(addr, &emu.base_url(), &dir).await;
    while client
        .get(format!("{base}/readyz"))
        .send()
        .await
        .map(|r| r.status() != 200)
        .unwrap_or(true)
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    println!(
        "restarted during an outage; ready again after {:.2} s",
        restart.elapsed().as_secs_f64()
    );
    for w in walkers {
        let _ = w.await;
    }
    let elapsed = started.elapsed().as_secs_f64() / 60.0;
    let stats: Value = client
        .get(&stats_url)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let _ = stop.send(());
    let _ = server.await;
    let t = tally.lock().unwrap();
    let fives: u64 = t
        .statuses
        .iter()
        .filter(|(s, _)| **s >= 500)
        .map(|(_, n)| n)
        .sum();
    println!(
        "walks completed: {} ({} interrupted)",
        t.walks, t.incomplete_walks
    );
    println!(
        "answers by status: {:?}; 5xx: {fives}; connection errors (restart window): {}",
        t.statuses, t.connection_errors
    );
    let upstream = stats["total"].as_u64().unwrap_or(0);
    let failed: u64 = stats["routes"]
        .as_object()
        .map(|r| {
            r.values()
                .filter_map(|s| s.get("502").and_then(Value::as_u64))
                .sum()
        })
        .unwrap_or(0);
    println!(
        "upstream calls: {upstream} in {elapsed:.1} min = {:.0}/min ({failed} answered 502)",
        upstream as f64 / elapsed
    );
    let mut ages = t.ages.clone();
    ages.sort_unstable();
    if !ages.is_empty() {
        println!(
            "snapshot age seen by walks: min {} s, median {} s, max {} s",
            ages[0],
            ages[ages.len() / 2],
            ages[ages.len() - 1]
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
