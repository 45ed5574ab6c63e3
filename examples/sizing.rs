//! Sizing: the resident memory of a `jumpcloud-scim serve` process in front of directories of several sizes,
//! for the README's sizing table.
//!
//! `cargo build --release && cargo run --release --example sizing -- 1000 10000 100000`
//!
//! For each size it starts the emulator (in this process) with that many users and a group per 500 users,
//! starts the release binary `target/release/jumpcloud-scim serve` in front of it (its own process, so its
//! memory is its own), waits for the first snapshot, walks every user and group once in pages of 1000 (as an
//! aggregation does), and reads the service's resident memory from `/proc/<pid>/status`. Every wait is
//! bounded.

use std::process::Stdio;
use std::time::Duration;

use tokio::time::Instant;

use jumpcloud_scim::emulator::{self, EmulatorConfig};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};

const TOKEN: &str = "sizing-token-0123456789";

fn rss_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

async fn walk(http: &reqwest::Client, base: &str, what: &str) -> anyhow::Result<usize> {
    let mut start = 1;
    let mut seen = 0;
    loop {
        let page: Value = http
            .get(format!(
                "{base}/scim/v2/{what}?startIndex={start}&count=1000"
            ))
            .bearer_auth(TOKEN)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        let n = page["Resources"].as_array().map_or(0, Vec::len);
        seen += n;
        let total = page["totalResults"].as_u64().unwrap_or(0) as usize;
        if n == 0 || seen >= total {
            return Ok(seen);
        }
        start += n;
    }
}

async fn measure(users: usize) -> anyhow::Result<(u64, u64, usize)> {
    let groups = (users / 500).max(2);
    let emu = emulator::spawn(EmulatorConfig {
        users,
        groups,
        ..EmulatorConfig::default()
    })
    .await?;
    let binary =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/release/jumpcloud-scim");
    anyhow::ensure!(
        binary.is_file(),
        "{} is missing: run `cargo build --release` first",
        binary.display()
    );
    let mut child = tokio::process::Command::new(&binary)
        .arg("serve")
        .env_clear()
        .env("JCSCIM_LISTEN", "127.0.0.1:0")
        .env("JCSCIM_JUMPCLOUD__URL", emu.base_url())
        .env("JCSCIM_JUMPCLOUD__API_KEY", "demo-key")
        .env("JCSCIM_AUTH__TOKENS", TOKEN)
        .env("JCSCIM_REFRESH__INTERVAL_S", "3600")
        .env("JCSCIM_LOG__LEVEL", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()?;
    let pid = child.id().unwrap_or(0);
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let base = tokio::time::timeout(Duration::from_secs(30), async {
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some(addr) = line.strip_prefix("listening on ") {
                return Some(addr.trim().to_owned());
            }
        }
        None
    })
    .await?
    .ok_or_else(|| anyhow::anyhow!("serve ended without listening"))?;
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    let http = reqwest::Client::new();
    let started = Instant::now();
    loop {
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(300),
            "no snapshot within 5 minutes"
        );
        let r = http.get(format!("{base}/readyz")).send().await;
        if r.is_ok_and(|r| r.status().is_success()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let after_refresh = rss_kb(pid).unwrap_or(0);
    let seen = walk(&http, &base, "Users").await?;
    walk(&http, &base, "Groups").await?;
    let after_walk = rss_kb(pid).unwrap_or(0);
    child.kill().await.ok();
    Ok((after_refresh, after_walk, seen))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let sizes: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| a.parse())
        .collect::<Result<_, _>>()?;
    let sizes = if sizes.is_empty() {
        vec![1000, 10_000, 100_000]
    } else {
        sizes
    };
    println!("| users | resident after the first refresh | after a full walk | per user |");
    println!("|---|---|---|---|");
    for users in sizes {
        let (refresh, walk, seen) = measure(users).await?;
        anyhow::ensure!(seen == users, "walked {seen} of {users} users");
        println!(
            "| {users} | {:.0} MiB | {:.0} MiB | {:.1} KB |",
            refresh as f64 / 1024.0,
            walk as f64 / 1024.0,
            walk as f64 / users as f64
        );
    }
    Ok(())
}
