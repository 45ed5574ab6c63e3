//! Load program: the emulator and the service in one process, then measured reads.
//!
//! `cargo run --release --example load [USERS...]` (default: 2000 100000). For each size it prints the time
//! to walk every user in pages of 100, requests/s with p50/p99 latency at 32 concurrent connections for a
//! page of 100, a `userName eq` filter and a get by id, the upstream calls and seconds of one full refresh,
//! and the service's resident memory per user. Every loop is bounded in count and time. `--log=text` or
//! `--log=json` logs as the service does (one line per request, at info) and runs each scenario without and
//! with the line, for its cost in one run (send standard error to `/dev/null`).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tokio::time::Instant;

use jumpcloud_scim::auth::Scope;
use jumpcloud_scim::config::{Config, LogFormat, Secret, TokenConfig};
use jumpcloud_scim::emulator::{self, EmulatorConfig};
use jumpcloud_scim::telemetry::logging::{self, LogSwitch};
use serde_json::Value;

const TOKEN: &str = "load-token-0123456789";
const CONCURRENCY: usize = 32;
const RUN_FOR: Duration = Duration::from_secs(5);

fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

/// Set by `--log=…`: each scenario then runs with the request line off and on, for its cost.
static LOG_SWITCH: OnceLock<LogSwitch> = OnceLock::new();

/// [`measure`]; when logging is on, the same requests in alternating rounds without and with the request
/// line (so that both see the same machine), and the cost of the line.
async fn hammer(label: &str, client: &reqwest::Client, urls: Arc<Vec<String>>) {
    let Some(switch) = LOG_SWITCH.get() else {
        let s = sample(client, &urls, RUN_FOR).await;
        report(label, &s);
        return;
    };
    const ROUNDS: u32 = 5;
    let (mut quiet, mut logged) = (Sample::default(), Sample::default());
    for _ in 0..ROUNDS {
        switch.set("off");
        quiet.extend(sample(client, &urls, RUN_FOR / ROUNDS).await);
        switch.set("info");
        logged.extend(sample(client, &urls, RUN_FOR / ROUNDS).await);
    }
    report(&format!("{label} (no log)"), &quiet);
    report(&format!("{label} (logged)"), &logged);
    println!(
        "  {:<28} the request line costs {:.1}% of throughput",
        "",
        (1.0 - logged.rps() / quiet.rps().max(1.0)) * 100.0
    );
}

/// Latencies of the requests answered, the failures, and the time they took.
#[derive(Default)]
struct Sample {
    lat: Vec<Duration>,
    errors: usize,
    elapsed: Duration,
}

impl Sample {
    fn extend(&mut self, other: Sample) {
        self.lat.extend(other.lat);
        self.errors += other.errors;
        self.elapsed += other.elapsed;
    }

    fn rps(&self) -> f64 {
        self.lat.len() as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

fn report(label: &str, s: &Sample) {
    let mut lat = s.lat.clone();
    lat.sort();
    println!(
        "  {label:<28} {:>9.0} req/s   p50 {:>7.2} ms   p99 {:>7.2} ms   errors {}",
        s.rps(),
        percentile(&lat, 0.5).as_secs_f64() * 1e3,
        percentile(&lat, 0.99).as_secs_f64() * 1e3,
        s.errors,
    );
}

/// Hit `urls` round-robin from `CONCURRENCY` tasks for `run_for` (at most 200,000 requests a task).
async fn sample(client: &reqwest::Client, urls: &Arc<Vec<String>>, run_for: Duration) -> Sample {
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let deadline = started + run_for;
    let mut tasks = Vec::new();
    for _ in 0..CONCURRENCY {
        let (client, urls, next) = (client.clone(), urls.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut errors = 0usize;
            while Instant::now() < deadline && lat.len() < 200_000 {
                let i = next.fetch_add(1, Ordering::Relaxed) % urls.len();
                let t = Instant::now();
                match client.get(&urls[i]).bearer_auth(TOKEN).send().await {
                    Ok(r) if r.status().is_success() => {
                        let _ = r.bytes().await;
                        lat.push(t.elapsed());
                    }
                    _ => errors += 1,
                }
            }
            (lat, errors)
        }));
    }
    let mut out = Sample::default();
    for t in tasks {
        let (l, e) = t.await.expect("task");
        out.lat.extend(l);
        out.errors += e;
    }
    out.elapsed = started.elapsed();
    out
}

async fn run(users: usize) {
    println!("== {users} users");
    let rss0 = rss_bytes();
    let t = Instant::now();
    let emu = emulator::spawn(EmulatorConfig {
        users,
        groups: 50,
        ..EmulatorConfig::default()
    })
    .await
    .expect("emulator");
    let rss_emulator = rss_bytes();
    println!("  emulator seeded in {:.2} s", t.elapsed().as_secs_f64());

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut config = Config {
        listen: addr,
        public_url: Some(format!("http://{addr}")),
        ..Config::default()
    };
    config.jumpcloud.url = emu.base_url();
    config.jumpcloud.api_key = Some(Secret::new("demo-key"));
    config.refresh.interval_s = 3600;
    config.paging.max_count = 100;
    config.auth.tokens = vec![TokenConfig {
        token: Some(Secret::new(TOKEN)),
        token_sha256: None,
        name: None,
        scope: Scope::Provision,
    }];
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(jumpcloud_scim::app::serve(listener, config, async {
        let _ = stop_rx.await;
    }));
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .build()
        .unwrap();
    let base = format!("http://{addr}");
    let t = Instant::now();
    let ready: Value = loop {
        if let Ok(r) = client.get(format!("{base}/readyz")).send().await
            && r.status() == 200
        {
            break r.json().await.unwrap();
        }
        assert!(t.elapsed() < Duration::from_secs(600), "never ready");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let rss_service = rss_bytes();
    let refresh = &ready["last_refresh"];
    println!(
        "  first refresh: {} upstream calls in {:.2} s",
        refresh["calls"],
        refresh["duration_ms"].as_f64().unwrap_or(0.0) / 1e3
    );
    println!(
        "  resident memory: emulator {:.0} MB, service {:.0} MB = {:.1} KB per user",
        (rss_emulator.saturating_sub(rss0)) as f64 / 1e6,
        (rss_service.saturating_sub(rss_emulator)) as f64 / 1e6,
        (rss_service.saturating_sub(rss_emulator)) as f64 / 1e3 / users as f64
    );

    // A full walk in pages of 100.
    let t = Instant::now();
    let mut start = 1;
    let mut ids = Vec::with_capacity(users);
    loop {
        let page: Value = client
            .get(format!("{base}/scim/v2/Users?startIndex={start}&count=100"))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let items = page["Resources"].as_array().unwrap();
        for u in items {
            ids.push((
                u["id"].as_str().unwrap().to_string(),
                u["userName"].as_str().unwrap().to_string(),
            ));
        }
        start += items.len();
        if items.is_empty() || start > page["totalResults"].as_u64().unwrap() as usize {
            break;
        }
    }
    println!(
        "  walk of {} users in pages of 100: {:.2} s",
        ids.len(),
        t.elapsed().as_secs_f64()
    );

    let pages: Vec<String> = (0..ids.len().div_ceil(100).max(1))
        .map(|p| format!("{base}/scim/v2/Users?startIndex={}&count=100", p * 100 + 1))
        .collect();
    hammer("page of 100", &client, Arc::new(pages)).await;
    let filters: Vec<String> = ids
        .iter()
        .step_by((ids.len() / 1000).max(1))
        .map(|(_, u)| format!("{base}/scim/v2/Users?filter=userName%20eq%20%22{u}%22"))
        .collect();
    hammer("userName eq filter", &client, Arc::new(filters)).await;
    let gets: Vec<String> = ids
        .iter()
        .step_by((ids.len() / 1000).max(1))
        .map(|(id, _)| format!("{base}/scim/v2/Users/{id}"))
        .collect();
    hammer("get by id", &client, Arc::new(gets)).await;

    // One more full refresh, measured.
    let before = ready["last_refresh"]["finished_at"].clone();
    client
        .post(format!("{base}/admin/refresh"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    let t = Instant::now();
    loop {
        let r: Value = client
            .get(format!("{base}/readyz"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if r["last_refresh"]["finished_at"] != before {
            println!(
                "  full refresh: {} upstream calls in {:.2} s",
                r["last_refresh"]["calls"],
                r["last_refresh"]["duration_ms"].as_f64().unwrap_or(0.0) / 1e3
            );
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(600),
            "refresh never finished"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let _ = stop_tx.send(());
    let _ = server.await;
    drop(emu);
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // `--log=text` or `--log=json`: install the service's own subscriber at info, so the request line is
    // formatted and written as in production (run with `2>/dev/null` to measure its cost, not a terminal's).
    let _log = args.iter().find_map(|a| {
        let format = match a.as_str() {
            "--log=text" => LogFormat::Text,
            "--log=json" => LogFormat::Json,
            _ => return None,
        };
        let (guard, switch) = logging::init_switchable(format, "info");
        let _ = LOG_SWITCH.set(switch);
        Some(guard)
    });
    let sizes: Vec<usize> = args.iter().filter_map(|a| a.parse().ok()).collect();
    let sizes = if sizes.is_empty() {
        vec![2000, 100_000]
    } else {
        sizes
    };
    for n in sizes {
        run(n).await;
    }
}
