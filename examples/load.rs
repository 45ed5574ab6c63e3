//! Load program: the emulator, the service and a ceiling server in one process, then measured reads.
//!
//! `cargo run --release --example load -- [--log=json|--log=text] [USERS...]` (default: 2000 100000).
//!
//! For each size it prints:
//! - the first refresh (calls, seconds) and the service's resident memory per user after it and one full walk;
//! - for `/healthz`, a page of 100, a get by id, a `userName eq` filter and a `meta.lastModified gt` delta
//!   of a few users: requests/s, p50 and p99 at 32 concurrent connections, beside the **ceiling** (axum on
//!   its own listener in this process, no layers, answering the same bytes from memory) and the ratio of
//!   the two. Service and ceiling run in alternating rounds, so both see the same machine;
//! - a scan filter's latency, one request at a time;
//! - "All Users" (a member per user): read whole and without members, and a PATCH of 256 members each way;
//! - the memory added while a list without `count` (every user) is answered and read;
//! - one more full refresh;
//! - the persisted file's size, and how soon a start-up from it serves reads.
//!
//! `--only=TEXT` measures only the scenarios whose label contains TEXT (e.g. to profile one with `perf`),
//! and `--no-ceiling` leaves the ceiling out, so that a profile shows the service's side alone.
//! With `--log=…` the service logs as it does in production (one line per request, at info), and each
//! scenario also runs without and with that line, for its cost (send standard error to `/dev/null`).
//! Every loop is bounded in count and time.

#[path = "support/sampling.rs"]
mod sampling;

use std::sync::atomic::{AtomicU64, Ordering};

/// The binary's allocator, so that the service measured here allocates as it does in production.
#[global_allocator]
static ALLOCATOR: jumpcloud_scim::cache::memory::Allocator = tikv_jemallocator::Jemalloc;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::body::Bytes;
use sampling::{Sample, enc, percentile};
use tokio::time::Instant;

use jumpcloud_scim::auth::Scope;
use jumpcloud_scim::cache::{BuildOptions, Data, Snapshot, Store, persist, refresher};
use jumpcloud_scim::config::{Config, LogFormat, Secret, TokenConfig};
use jumpcloud_scim::emulator::{self, EmulatorConfig};
use jumpcloud_scim::jumpcloud::{JcClient, JcClientConfig};
use jumpcloud_scim::mapping::MappingOptions;
use jumpcloud_scim::shutdown::Background;
use jumpcloud_scim::telemetry::logging::{self, LogSwitch};
use serde_json::Value;

const TOKEN: &str = "load-token-0123456789";
const CONCURRENCY: usize = 32;
/// Each side of a comparison runs this long in all, in [`ROUNDS`] rounds.
const RUN_FOR: Duration = Duration::from_secs(5);
const ROUNDS: u32 = 5;

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

/// Set by `--log=…`.
static LOG_SWITCH: OnceLock<LogSwitch> = OnceLock::new();
/// Set by `--only=TEXT`: measure only the scenarios whose label contains it (for a profile of one).
static ONLY: OnceLock<String> = OnceLock::new();
/// Set by `--no-ceiling`: measure the service alone (for a profile of its side only).
static NO_CEILING: OnceLock<bool> = OnceLock::new();

impl Sample {
    fn line(&self) -> String {
        let (rps, p50, p99) = self.figures();
        format!("{rps:>7.0} req/s  p50 {p50:>5.2} ms  p99 {p99:>5.2} ms")
    }
}

/// Hit `urls` round-robin from `CONCURRENCY` tasks for `run_for`.
async fn sample(client: &reqwest::Client, urls: &Arc<Vec<String>>, run_for: Duration) -> Sample {
    sampling::sample(client, urls, run_for, CONCURRENCY, TOKEN).await
}

/// The ceiling: axum with no layers answering `bodies[s][i]` at `/{s}/{i}`, from memory.
async fn ceiling(bodies: Vec<Vec<Bytes>>) -> String {
    let bodies = Arc::new(bodies);
    let app = axum::Router::new().route(
        "/{s}/{i}",
        axum::routing::get(
            move |axum::extract::Path((s, i)): axum::extract::Path<(usize, usize)>| {
                let bodies = bodies.clone();
                async move {
                    bodies
                        .get(s)
                        .and_then(|b| b.get(i))
                        .cloned()
                        .unwrap_or_default()
                }
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://{addr}")
}

/// One scenario against the service and the ceiling, in alternating rounds; with `--log=…`, the service
/// also alternates its request line off and on. The ceiling answers request `i` with the bytes the
/// service answered `service[i]` with (`ceiling[i]`), so both read as many distinct bytes from memory;
/// the ratio to a ceiling that answers every request with one body (cache-hot, as no directory is) is
/// printed beside it.
async fn versus(label: &str, client: &reqwest::Client, service: Vec<String>, ceiling: Vec<String>) {
    let service = Arc::new(service);
    let one = Arc::new(ceiling[..1].to_vec());
    let ceiling = Arc::new(ceiling);
    let (mut svc, mut top, mut top1, mut quiet) = (
        Sample::default(),
        Sample::default(),
        Sample::default(),
        Sample::default(),
    );
    for _ in 0..ROUNDS {
        if let Some(switch) = LOG_SWITCH.get() {
            switch.set("off");
            quiet.extend(sample(client, &service, RUN_FOR / ROUNDS).await);
            switch.set("info");
        }
        svc.extend(sample(client, &service, RUN_FOR / ROUNDS).await);
        if !NO_CEILING.get().copied().unwrap_or(false) {
            top.extend(sample(client, &ceiling, RUN_FOR / ROUNDS).await);
            top1.extend(sample(client, &one, RUN_FOR / ROUNDS).await);
        }
    }
    println!(
        "  {label:<24} service {}   ceiling {:>7.0} req/s   ratio {:>3.0}%   (one body: {:>6.0} req/s, {:>3.0}%)   errors {}",
        svc.line(),
        top.rps(),
        svc.rps() / top.rps().max(1.0) * 100.0,
        top1.rps(),
        svc.rps() / top1.rps().max(1.0) * 100.0,
        svc.errors + top.errors + top1.errors,
    );
    if LOG_SWITCH.get().is_some() {
        println!(
            "  {:<24} without the request line {}: the line costs {:.1}%",
            "",
            quiet.line(),
            (1.0 - svc.rps() / quiet.rps().max(1.0)) * 100.0
        );
    }
}

async fn get_bytes(client: &reqwest::Client, url: &str) -> Bytes {
    let r = client.get(url).bearer_auth(TOKEN).send().await.unwrap();
    assert!(r.status().is_success(), "{url}: {}", r.status());
    r.bytes().await.unwrap()
}

async fn get_json(client: &reqwest::Client, url: &str) -> Value {
    serde_json::from_slice(&get_bytes(client, url).await).unwrap()
}

/// Ask for a full refresh and wait until it is recorded; returns `/readyz`'s `last_refresh`.
async fn refresh(client: &reqwest::Client, base: &str) -> Value {
    let before =
        get_json(client, &format!("{base}/readyz")).await["last_refresh"]["finished_at"].clone();
    client
        .post(format!("{base}/admin/refresh"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    let t = Instant::now();
    loop {
        let r = get_json(client, &format!("{base}/readyz")).await;
        if r["last_refresh"]["finished_at"] != before {
            return r["last_refresh"].clone();
        }
        assert!(
            t.elapsed() < Duration::from_secs(600),
            "refresh never finished"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Walk every user in pages of 100; returns (id, userName) of each.
async fn walk(client: &reqwest::Client, base: &str) -> Vec<(String, String)> {
    let mut start = 1;
    let mut ids = Vec::new();
    loop {
        let page = get_json(
            client,
            &format!("{base}/scim/v2/Users?startIndex={start}&count=100"),
        )
        .await;
        let items = page["Resources"].as_array().unwrap();
        for u in items {
            ids.push((
                u["id"].as_str().unwrap().to_string(),
                u["userName"].as_str().unwrap().to_string(),
            ));
        }
        start += items.len();
        if items.is_empty() || start > page["totalResults"].as_u64().unwrap() as usize {
            return ids;
        }
    }
}

/// The resident memory added while every user is answered in one list and read chunk by chunk.
async fn list_without_count(client: &reqwest::Client, base: &str) -> (u64, u64) {
    let before = rss_bytes();
    let peak = Arc::new(AtomicU64::new(before));
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watcher = {
        let (peak, done) = (peak.clone(), done.clone());
        tokio::spawn(async move {
            while !done.load(Ordering::Relaxed) {
                peak.fetch_max(rss_bytes(), Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        })
    };
    let mut r = client
        .get(format!("{base}/scim/v2/Users"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    let mut read = 0u64;
    while let Some(chunk) = r.chunk().await.unwrap() {
        read += chunk.len() as u64;
    }
    done.store(true, Ordering::Relaxed);
    let _ = watcher.await;
    (read, peak.load(Ordering::Relaxed).saturating_sub(before))
}

/// The median and slowest of `n` sequential runs of `f`, in milliseconds.
async fn timed<F, Fut>(n: usize, mut f: F) -> (f64, f64)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut lat = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        f().await;
        lat.push(t.elapsed());
    }
    lat.sort();
    (
        percentile(&lat, 0.5).as_secs_f64() * 1e3,
        lat.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
    )
}

/// "All Users", the group JumpCloud gives every user: read whole, read without members, and 256 members
/// removed and added back in one PATCH each, as Entra and Okta batch them.
async fn large_group(client: &reqwest::Client, base: &str, ids: &[(String, String)]) {
    let found = get_json(
        client,
        &format!(
            "{base}/scim/v2/Groups?filter={}&excludedAttributes=members",
            enc("displayName eq \"All Users\"")
        ),
    )
    .await;
    let Some(gid) = found["Resources"][0]["id"].as_str().map(str::to_owned) else {
        println!("  (no \"All Users\" group)");
        return;
    };
    let whole = format!("{base}/scim/v2/Groups/{gid}");
    let size = get_bytes(client, &whole).await.len();
    let (get_p50, get_max) = timed(5, || async {
        let _ = get_bytes(client, &whole).await;
    })
    .await;
    let slim = format!("{whole}?excludedAttributes=members");
    let (slim_p50, slim_max) = timed(5, || async {
        let _ = get_bytes(client, &slim).await;
    })
    .await;
    let batch: Vec<Value> = ids
        .iter()
        .step_by((ids.len() / 256).max(1))
        .take(256)
        .map(|(id, _)| serde_json::json!({"value": id}))
        .collect();
    let patch = |op: &'static str| {
        let body = serde_json::json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": op, "path": "members", "value": batch.clone()}],
        });
        let (client, whole) = (client.clone(), whole.clone());
        async move {
            let r = client
                .patch(&whole)
                .bearer_auth(TOKEN)
                .query(&[("excludedAttributes", "members")])
                .json(&body)
                .send()
                .await
                .unwrap();
            assert!(r.status().is_success(), "PATCH {op}: {}", r.status());
            let _ = r.bytes().await;
        }
    };
    let t = Instant::now();
    patch("remove").await;
    let removed = t.elapsed();
    let t = Instant::now();
    patch("add").await;
    let added = t.elapsed();
    println!(
        "  \"All Users\" ({} members, {:.1} MB): GET p50 {get_p50:.1} ms (max {get_max:.1}); without members p50 {slim_p50:.2} ms (max {slim_max:.2}); PATCH of 256 members: remove {:.0} ms, add {:.0} ms",
        ids.len(),
        size as f64 / 1e6,
        removed.as_secs_f64() * 1e3,
        added.as_secs_f64() * 1e3,
    );
}

/// Change `n` users in the emulator (a job title, as an admin would), for the delta filter.
async fn touch_users(client: &reqwest::Client, emu: &str, ids: &[(String, String)], n: usize) {
    for (id, _) in ids.iter().step_by((ids.len() / n).max(1)).take(n) {
        let r = client
            .put(format!("{emu}/api/systemusers/{id}"))
            .header("x-api-key", "demo-key")
            .json(&serde_json::json!({"jobTitle": "Load Tester"}))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "emulator PUT {id}: {}", r.status());
    }
}

/// The persisted file: its size, and how soon a start-up from it serves reads.
async fn persisted(emu_url: &str) {
    let client = JcClient::new(JcClientConfig::new(emu_url, "demo-key")).unwrap();
    let raw = refresher::fetch(&client).await.unwrap();
    let opts = BuildOptions {
        mapping: MappingOptions::default(),
        directories_as_groups: true,
    };
    let now = jiff::Timestamp::now();
    let snapshot = Snapshot::build(Data::from_raw(raw), 7, now, now, &opts, None, &|_, _| None);
    let dir = std::env::temp_dir().join(format!("jcscim-load-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    persist::save(&dir, &snapshot, &opts).unwrap();
    let size = std::fs::metadata(persist::file_path(&dir)).unwrap().len();
    drop(snapshot);
    let store = Arc::new(Store::new(opts));
    let mut tasks = Background::new();
    let t = Instant::now();
    let published = persist::load_and_publish(&store, &dir, &mut tasks).await;
    let serving = t.elapsed();
    let complete = store
        .load_complete(Duration::from_secs(120))
        .await
        .is_some();
    let writable = t.elapsed();
    tasks.stop(Duration::from_secs(60)).await;
    println!(
        "  persisted file: {:.1} MB; a start-up from it serves reads after {:.2} s{}, takes writes after {:.2} s",
        size as f64 / 1e6,
        serving.as_secs_f64(),
        if published.is_some() {
            ""
        } else {
            " (NOT PUBLISHED)"
        },
        if complete {
            writable.as_secs_f64()
        } else {
            f64::NAN
        },
    );
    let _ = std::fs::remove_dir_all(&dir);
}

async fn run(users: usize) {
    println!("== {users} users");
    let rss0 = rss_bytes();
    let t = Instant::now();
    let emu = emulator::spawn(EmulatorConfig {
        users,
        groups: (users / 500).max(2),
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
    config.refresh.interval_s = Some(3600);
    config.paging.max_results = users.max(100_000);
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
    let refresh0 = &ready["last_refresh"];
    println!(
        "  first refresh: {} upstream calls in {:.2} s",
        refresh0["calls"],
        refresh0["duration_ms"].as_f64().unwrap_or(0.0) / 1e3
    );

    let t = Instant::now();
    let ids = walk(&client, &base).await;
    let walked = t.elapsed();
    // Let the refresh's own clean-up (the allocator's trim) finish before reading the figure.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_service = rss_bytes().saturating_sub(rss_emulator);
    println!(
        "  walk of {} users in pages of 100: {:.2} s; resident memory: emulator {:.0} MB, service {:.0} MB = {:.1} KB per user",
        ids.len(),
        walked.as_secs_f64(),
        (rss_emulator.saturating_sub(rss0)) as f64 / 1e6,
        rss_service as f64 / 1e6,
        rss_service as f64 / 1e3 / users as f64
    );

    // A few users change in JumpCloud; the next refresh gives them a later lastModified than the rest.
    let before_delta = get_json(&client, &format!("{base}/scim/v2/Users?count=1")).await["Resources"][0]
        ["meta"]["lastModified"]
        .as_str()
        .unwrap()
        .to_owned();
    touch_users(&client, &emu.base_url(), &ids, 5).await;
    refresh(&client, &base).await;

    let scim = |path: &str| format!("{base}/scim/v2{path}");
    let pages: Vec<String> = (0..ids.len().div_ceil(100).max(1))
        .map(|p| scim(&format!("/Users?startIndex={}&count=100", p * 100 + 1)))
        .collect();
    let sample_ids: Vec<&(String, String)> =
        ids.iter().step_by((ids.len() / 1000).max(1)).collect();
    let gets: Vec<String> = sample_ids
        .iter()
        .map(|(id, _)| scim(&format!("/Users/{id}")))
        .collect();
    let filters: Vec<String> = sample_ids
        .iter()
        .map(|(_, u)| {
            scim(&format!(
                "/Users?filter={}",
                enc(&format!("userName eq \"{u}\""))
            ))
        })
        .collect();
    let delta = scim(&format!(
        "/Users?filter={}",
        enc(&format!("meta.lastModified gt \"{before_delta}\""))
    ));
    let delta_answer = get_json(&client, &delta).await;
    let scenarios: Vec<(&str, Vec<String>)> = vec![
        ("/healthz", vec![format!("{base}/healthz")]),
        ("page of 100", pages),
        ("get by id", gets),
        ("userName eq filter", filters),
        ("lastModified gt delta", vec![delta]),
    ];
    // The ceiling answers each of a scenario's requests with the bytes the service answered it with.
    let mut bodies = Vec::new();
    for (_, urls) in &scenarios {
        let mut answers = Vec::with_capacity(urls.len());
        for url in urls {
            answers.push(get_bytes(&client, url).await);
        }
        bodies.push(answers);
    }
    let top = ceiling(bodies).await;
    println!(
        "  (the delta filter matches {} users)",
        delta_answer["totalResults"]
    );
    for (i, (label, urls)) in scenarios.into_iter().enumerate() {
        if ONLY.get().is_none_or(|only| label.contains(only.as_str())) {
            let ceiling = (0..urls.len()).map(|j| format!("{top}/{i}/{j}")).collect();
            versus(label, &client, urls, ceiling).await;
        }
    }

    // A scan filter no index answers, one request at a time.
    let scan = scim(&format!(
        "/Users?count=10&filter={}",
        enc("userName co \"9999\"")
    ));
    let mut lat = Vec::new();
    for _ in 0..20 {
        let t = Instant::now();
        let _ = get_bytes(&client, &scan).await;
        lat.push(t.elapsed());
    }
    lat.sort();
    println!(
        "  scan filter (userName co): median {:.1} ms, slowest {:.1} ms over 20 requests",
        percentile(&lat, 0.5).as_secs_f64() * 1e3,
        lat.last().copied().unwrap_or_default().as_secs_f64() * 1e3
    );

    large_group(&client, &base, &ids).await;

    let (read, added) = list_without_count(&client, &base).await;
    println!(
        "  a list without count: {:.0} MB answered, resident memory grew by {:.1} MB while it was",
        read as f64 / 1e6,
        added as f64 / 1e6
    );

    let r = refresh(&client, &base).await;
    println!(
        "  full refresh: {} upstream calls in {:.2} s",
        r["calls"],
        r["duration_ms"].as_f64().unwrap_or(0.0) / 1e3
    );
    let _ = stop_tx.send(());
    let _ = server.await;
    persisted(&emu.base_url()).await;
    drop(emu);
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
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
    if let Some(only) = args.iter().find_map(|a| a.strip_prefix("--only=")) {
        let _ = ONLY.set(only.to_owned());
    }
    let _ = NO_CEILING.set(args.iter().any(|a| a == "--no-ceiling"));
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
