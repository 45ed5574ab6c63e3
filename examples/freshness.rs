//! Freshness: how long a change made in JumpCloud takes to show through SCIM, and what it costs upstream, with
//! the Directory Insights feed against full refreshes every 60 s, measured side by side in one run.
//!
//! `cargo run --release --example freshness -- [USERS] [--poll-s S] [--churn-per-minute N] [--idle-s S]
//! [--churn-s S] [--probe-every-ms MS]` (defaults: 100,000 users, one group per 500; a 5 s poll; 180 console
//! changes a minute; 120 s idle, then 180 s of churn; a probe every 2 s).
//!
//! One emulator (feed ingestion lag 2 s) and two services in this process: `feed` (`insights.enabled =
//! "auto"`, the refresh interval unset, so 3600 s while the feed is used) and `refresh` (the feed off, a
//! full refresh every 60 s). Idle first: upstream calls a minute with nothing changing. Then the emulator's
//! console churn changes users, groups and directory access at the given rate, and every probe interval
//! this program changes one of its own users' job titles through the emulator's API and times until each
//! service answers the new title: p50 and p99 of write → visible. Upstream calls are each service's own
//! (`jcscim_upstream_requests_total` by purpose). Every wait is bounded; a probe not seen within
//! [`PROBE_DEADLINE`] counts as missed.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use jumpcloud_scim::auth::Scope;
use jumpcloud_scim::config::{Config, FeedMode, Secret, TokenConfig};
use jumpcloud_scim::emulator::{self, EmulatorConfig, FaultConfig};
use serde_json::{Value, json};
use tokio::sync::Mutex;
use tokio::time::Instant;

/// The binary's allocator, so the services measured here allocate as they do in production.
#[global_allocator]
static ALLOCATOR: jumpcloud_scim::cache::memory::Allocator = tikv_jemallocator::Jemalloc;

const TOKEN: &str = "freshness-token-0123456789";
/// A probe not visible by then is missed (a full refresh every 60 s of 100,000 users shows it within ~75 s).
const PROBE_DEADLINE: Duration = Duration::from_secs(150);
/// How long a service may take to be ready (its first full refresh).
const READY_DEADLINE: Duration = Duration::from_secs(600);
/// Users of this program's own, changed by the probes: one per probe, so that no probe's title is written
/// over by a later probe before a service could show it (which would count a slow service's probe as missed).
const MAX_PROBE_USERS: usize = 2_000;
/// The emulator's Directory Insights ingestion lag.
const FEED_LAG_MS: u64 = 2000;

#[derive(Debug, Clone)]
struct Args {
    users: usize,
    poll_s: u64,
    churn_per_minute: u32,
    idle: Duration,
    churn: Duration,
    probe_every: Duration,
}

fn args() -> Args {
    let mut a = Args {
        users: 100_000,
        poll_s: 5,
        churn_per_minute: 180,
        idle: Duration::from_secs(120),
        churn: Duration::from_secs(180),
        probe_every: Duration::from_millis(2000),
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = |name: &str| -> u64 {
            it.next()
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("{name} needs a number"))
        };
        match arg.as_str() {
            "--poll-s" => a.poll_s = value("--poll-s").max(1),
            "--churn-per-minute" => {
                a.churn_per_minute = u32::try_from(value("--churn-per-minute")).unwrap_or(0);
            }
            "--idle-s" => a.idle = Duration::from_secs(value("--idle-s")),
            "--churn-s" => a.churn = Duration::from_secs(value("--churn-s")),
            "--probe-every-ms" => {
                a.probe_every = Duration::from_millis(value("--probe-every-ms").max(100));
            }
            n => a.users = n.parse().expect("USERS, or one of the flags"),
        }
    }
    a
}

/// A service of this run.
struct Service {
    name: &'static str,
    base: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

fn config(emulator: &str, addr: std::net::SocketAddr, feed: bool, poll_s: u64) -> Config {
    let mut c = Config {
        listen: addr,
        public_url: Some(format!("http://{addr}")),
        ..Config::default()
    };
    c.jumpcloud.url = emulator.to_owned();
    c.jumpcloud.api_key = Some(Secret::new("demo-key"));
    c.auth.tokens = vec![TokenConfig {
        token: Some(Secret::new(TOKEN)),
        token_sha256: None,
        name: Some("freshness".into()),
        scope: Scope::Read,
    }];
    c.audit.destination = std::env::temp_dir()
        .join(format!("jcscim-freshness-audit-{}.log", addr.port()))
        .to_string_lossy()
        .into_owned();
    if feed {
        c.insights.enabled = FeedMode::Auto;
        c.insights.poll_s = poll_s;
        c.insights.overlap_s = c.insights.overlap_s.max(c.insights.max_lag_s + poll_s + 1);
        c.refresh.interval_s = None;
    } else {
        c.insights.enabled = FeedMode::Off;
        c.refresh.interval_s = Some(60);
    }
    c
}

async fn start(
    name: &'static str,
    config_for: impl FnOnce(std::net::SocketAddr) -> Config,
) -> Service {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let cfg = config_for(addr);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        if let Err(e) = jumpcloud_scim::app::serve(listener, cfg, async {
            let _ = stopped.await;
        })
        .await
        {
            eprintln!("{name}: {e}");
        }
    });
    Service {
        name,
        base: format!("http://{addr}"),
        stop: Some(stop),
        task,
    }
}

/// Wait until `s` answers `/readyz` 200 (and, for the feed, reads it).
async fn ready(http: &reqwest::Client, s: &Service, feed: bool) {
    let deadline = Instant::now() + READY_DEADLINE;
    loop {
        if let Ok(r) = http.get(format!("{}/readyz", s.base)).send().await
            && r.status() == 200
            && let Ok(v) = r.json::<Value>().await
            && (!feed || v["insights"]["state"] == "in_use")
        {
            return;
        }
        assert!(Instant::now() < deadline, "{} never became ready", s.name);
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Full refreshes by outcome (`ok`, `failed`, `held_back`), and the last failure's reason.
async fn refreshes(http: &reqwest::Client, s: &Service) -> (BTreeMap<String, f64>, Option<String>) {
    let text = http
        .get(format!("{}/metrics", s.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let mut out = BTreeMap::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("jcscim_refresh_total{outcome=\"")
            && let Some((outcome, rest)) = rest.split_once('"')
        {
            let n: f64 = rest
                .rsplit(' ')
                .next()
                .and_then(|v| v.parse().ok())
                .unwrap_or(0.0);
            out.insert(outcome.to_owned(), n);
        }
    }
    let ready: Value = http
        .get(format!("{}/readyz", s.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap_or(Value::Null);
    let error = ready["last_refresh"]["error"].as_str().map(str::to_owned);
    (out, error)
}

/// Upstream requests the service sent, by purpose.
async fn upstream_calls(http: &reqwest::Client, s: &Service) -> BTreeMap<String, f64> {
    let text = http
        .get(format!("{}/metrics", s.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("jcscim_upstream_requests_total{purpose=\"") else {
            continue;
        };
        let Some((purpose, rest)) = rest.split_once('"') else {
            continue;
        };
        let n: f64 = rest
            .rsplit(' ')
            .next()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0);
        *out.entry(purpose.to_owned()).or_default() += n;
    }
    out
}

fn per_minute(
    before: &BTreeMap<String, f64>,
    after: &BTreeMap<String, f64>,
    over: Duration,
) -> BTreeMap<String, f64> {
    let minutes = over.as_secs_f64() / 60.0;
    after
        .iter()
        .map(|(k, v)| (k.clone(), (v - before.get(k).unwrap_or(&0.0)) / minutes))
        .filter(|(_, v)| *v > 0.0)
        .collect()
}

fn calls_text(by: &BTreeMap<String, f64>) -> String {
    let total: f64 = by.values().sum();
    let parts: Vec<String> = by.iter().map(|(k, v)| format!("{k} {v:.1}")).collect();
    if parts.is_empty() {
        "0".to_owned()
    } else {
        format!("{total:.1} ({})", parts.join(", "))
    }
}

/// Create this program's own users, so the churn's edits and the probes' never meet.
async fn probe_users(http: &reqwest::Client, emulator: &str, n: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for i in 0..n.clamp(1, MAX_PROBE_USERS) {
        let r = http
            .post(format!("{emulator}/api/systemusers"))
            .header("x-api-key", "demo-key")
            .json(&json!({"username": format!("probe.{i}"), "email": format!("probe.{i}@example.com")}))
            .send()
            .await
            .unwrap();
        let v: Value = r.json().await.unwrap();
        ids.push(v["_id"].as_str().unwrap().to_owned());
    }
    ids
}

/// Change `id`'s title to `title` in JumpCloud, then time until each service answers it; `None`: missed.
async fn probe(
    http: reqwest::Client,
    emulator: String,
    services: Arc<Vec<(String, String)>>,
    id: String,
    title: String,
) -> Vec<Option<Duration>> {
    let written = Instant::now();
    let r = http
        .put(format!("{emulator}/api/systemusers/{id}"))
        .header("x-api-key", "demo-key")
        .json(&json!({"jobTitle": title}))
        .send()
        .await;
    if !r.is_ok_and(|r| r.status().is_success()) {
        return vec![None; services.len()];
    }
    let mut seen: Vec<Option<Duration>> = vec![None; services.len()];
    let deadline = written + PROBE_DEADLINE;
    while seen.iter().any(Option::is_none) && Instant::now() < deadline {
        for (i, (_, base)) in services.iter().enumerate() {
            if seen[i].is_some() {
                continue;
            }
            let got = http
                .get(format!("{base}/scim/v2/Users/{id}?attributes=title"))
                .bearer_auth(TOKEN)
                .send()
                .await;
            if let Ok(r) = got
                && let Ok(v) = r.json::<Value>().await
                && v["title"] == title.as_str()
            {
                seen[i] = Some(written.elapsed());
            }
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    seen
}

fn quantile(sorted: &[Duration], q: f64) -> String {
    if sorted.is_empty() {
        return "-".to_owned();
    }
    let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    format!("{:.1} s", sorted[i.min(sorted.len() - 1)].as_secs_f64())
}

#[tokio::main]
async fn main() {
    let a = args();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    println!(
        "seeding {} users, {} groups; feed lag {FEED_LAG_MS} ms, poll {} s",
        a.users,
        (a.users / 500).max(2),
        a.poll_s
    );
    let emu = emulator::spawn(EmulatorConfig {
        users: a.users,
        groups: (a.users / 500).max(2),
        faults: FaultConfig {
            insights_lag_ms: FEED_LAG_MS,
            ..FaultConfig::default()
        },
        ..EmulatorConfig::default()
    })
    .await
    .unwrap();
    let emulator = emu.base_url();
    let probes_wanted = a.churn.as_millis() / a.probe_every.as_millis().max(1) + 1;
    let probes = probe_users(
        &http,
        &emulator,
        usize::try_from(probes_wanted).unwrap_or(MAX_PROBE_USERS),
    )
    .await;
    let (ea, eb) = (emulator.clone(), emulator.clone());
    let poll_s = a.poll_s;
    let started = Instant::now();
    let mut services = vec![
        start("feed", move |addr| config(&ea, addr, true, poll_s)).await,
        start("refresh", move |addr| config(&eb, addr, false, poll_s)).await,
    ];
    ready(&http, &services[0], true).await;
    ready(&http, &services[1], false).await;
    println!("both ready after {:.1} s", started.elapsed().as_secs_f64());
    let first_refresh = upstream_calls(&http, &services[0])
        .await
        .get("refresh")
        .copied()
        .unwrap_or(0.0);

    // Idle: nothing changes.
    let before: Vec<_> =
        futures_util::future::join_all(services.iter().map(|s| upstream_calls(&http, s))).await;
    tokio::time::sleep(a.idle).await;
    let after: Vec<_> =
        futures_util::future::join_all(services.iter().map(|s| upstream_calls(&http, s))).await;
    let idle: Vec<_> = before
        .iter()
        .zip(&after)
        .map(|(b, x)| per_minute(b, x, a.idle))
        .collect();

    // Churn, with probes.
    let r = http
        .put(format!("{emulator}/__emulator/faults"))
        .json(&json!({"churn_per_minute": a.churn_per_minute}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    let bases: Arc<Vec<(String, String)>> = Arc::new(
        services
            .iter()
            .map(|s| (s.name.to_owned(), s.base.clone()))
            .collect(),
    );
    let results: Arc<Mutex<Vec<Vec<Option<Duration>>>>> = Arc::default();
    let before = after;
    let churn_started = Instant::now();
    let mut tasks = Vec::new();
    let mut n = 0usize;
    while churn_started.elapsed() < a.churn {
        let (http, emulator, bases, results) = (
            http.clone(),
            emulator.clone(),
            bases.clone(),
            results.clone(),
        );
        let id = probes[n % probes.len()].clone();
        let title = format!("probe {n}");
        tasks.push(tokio::spawn(async move {
            let seen = probe(http, emulator, bases, id, title).await;
            results.lock().await.push(seen);
        }));
        n += 1;
        tokio::time::sleep(a.probe_every).await;
    }
    let churned = churn_started.elapsed();
    let refreshed: Vec<_> =
        futures_util::future::join_all(services.iter().map(|s| refreshes(&http, s))).await;
    let after: Vec<_> =
        futures_util::future::join_all(services.iter().map(|s| upstream_calls(&http, s))).await;
    let churn: Vec<_> = before
        .iter()
        .zip(&after)
        .map(|(b, x)| per_minute(b, x, churned))
        .collect();
    let _ = http
        .put(format!("{emulator}/__emulator/faults"))
        .json(&json!({"churn_per_minute": 0}))
        .send()
        .await;
    for t in tasks {
        let _ = tokio::time::timeout(PROBE_DEADLINE + Duration::from_secs(10), t).await;
    }

    let results = results.lock().await.clone();
    println!(
        "\n{} users; feed lag {FEED_LAG_MS} ms; console churn {} a minute; {} probes",
        a.users,
        a.churn_per_minute,
        results.len()
    );
    println!(
        "{:<34} {:>30} {:>30}",
        "",
        format!("feed (poll {} s)", a.poll_s),
        "full refresh every 60 s"
    );
    let mut rows: Vec<(String, String, String)> = Vec::new();
    let lat: Vec<Vec<Duration>> = (0..services.len())
        .map(|i| {
            let mut v: Vec<Duration> = results.iter().filter_map(|r| r[i]).collect();
            v.sort();
            v
        })
        .collect();
    let missed: Vec<usize> = (0..services.len())
        .map(|i| results.iter().filter(|r| r[i].is_none()).count())
        .collect();
    rows.push((
        "write → visible, p50".into(),
        quantile(&lat[0], 0.5),
        quantile(&lat[1], 0.5),
    ));
    rows.push((
        "write → visible, p99".into(),
        quantile(&lat[0], 0.99),
        quantile(&lat[1], 0.99),
    ));
    rows.push((
        "probes missed".into(),
        missed[0].to_string(),
        missed[1].to_string(),
    ));
    rows.push((
        "upstream calls a minute, idle".into(),
        calls_text(&idle[0]),
        calls_text(&idle[1]),
    ));
    rows.push((
        "upstream calls a minute, churn".into(),
        calls_text(&churn[0]),
        calls_text(&churn[1]),
    ));
    let outcomes = |(by, _): &(BTreeMap<String, f64>, Option<String>)| {
        format!(
            "{:.0} published, {:.0} failed",
            by.get("ok").unwrap_or(&0.0),
            by.get("failed").unwrap_or(&0.0)
        )
    };
    rows.push((
        "full refreshes by the end of churn".into(),
        outcomes(&refreshed[0]),
        outcomes(&refreshed[1]),
    ));
    for (what, x, y) in rows {
        println!("{what:<34} {x:>30} {y:>30}");
    }
    for (s, (_, error)) in services.iter().zip(&refreshed) {
        if let Some(e) = error {
            println!("{}: last refresh: {e}", s.name);
        }
    }
    println!(
        "(the feed's service also refreshes in full once an hour: {first_refresh:.0} calls, {:.1} a minute \
         spread over the hour)",
        first_refresh / 60.0
    );

    for s in &mut services {
        if let Some(stop) = s.stop.take() {
            let _ = stop.send(());
        }
    }
    for s in services {
        let _ = tokio::time::timeout(Duration::from_secs(30), s.task).await;
    }
    let _ = emu.shutdown().await;
}
