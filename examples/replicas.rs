//! Replicas: two `jumpcloud-scim serve` replicas sharing Redis behind HAProxy, against one process alone,
//! measured in one run (issue 15's "Benchmark").
//!
//! `cargo build --release && cargo run --release --example replicas -- [USERS] [--window-s S] [--refresh-s S]
//! [--run-s S] [--writes N] [--fresh N]` (defaults: 100,000 users; a 120 s window for JumpCloud's calls with a
//! full refresh every 30 s; 5 s of load for each side of each read scenario; 20 writes a side; 3 refreshes).
//!
//! It needs `redis-server` and `haproxy` (Debian: `sudo apt-get install -y redis-server haproxy`) and the
//! release binary next to this example (`target/release/jumpcloud-scim`, from `cargo build --release`). All on
//! 127.0.0.1, it starts Redis on a free port with no persistence; the emulator in this process, seeded with
//! USERS users and a group per 500; `alone`, a `serve` process with the embedded store; replicas `a` and `b`,
//! `serve` processes with `store.kind = "redis"`; and HAProxy round-robining to the replicas with a health
//! check on `/readyz`, as `deploy/compose/haproxy.cfg` does (without its request log). Every `serve` has a
//! TOML config in a temp dir, the Directory Insights feed off, a refresh interval of an hour (refreshes only
//! when asked), and logs at `warn` to a file there. Then, in this order:
//! - (a) reads at 32 connections (a page of 100, a get by id, a `userName eq` filter): `alone`, `alone`
//!   through HAProxy (a frontend of its own with `alone` as its only server: what the proxy costs by itself),
//!   each replica directly, and both replicas through HAProxy, in alternating rounds so all five see the same
//!   machine; requests/s, p50, p99, and what each replica served through the proxy (its
//!   `jcscim_http_requests_total`);
//! - (c) resident memory (`VmRSS`) of each process after a full walk of every user on it, and Redis's;
//! - (b) a user's title changed in the emulator, then `POST /admin/refresh` through the proxy (so to either
//!   replica, which asks the leader): how long until each replica, polled directly, answers it, beside the
//!   leader's own refresh duration (`/readyz`, the refresh asked for), and the gap between the first replica
//!   serving it and the last; then the same on `alone`;
//! - (e) a PATCH of one user's title, alternately on `alone` and through the proxy (beside the emulator's own PUT
//!   of a title, the floor under both): p50 and p99, also by the
//!   replica that took it (HAProxy names it in `X-Server`), and how many proxied writes every replica already
//!   served when the PATCH answered (read-your-writes);
//! - (d) those processes stopped, two clusters side by side over the same window, each with its own emulator
//!   and the same refresh interval: one replica, and three. JumpCloud calls a minute as each emulator counted
//!   them (`/__emulator/stats`), by replica as each says (`jcscim_upstream_requests_total`), and the full
//!   refreshes each cluster published in the window.
//!
//! A table of every figure is printed at the end. Every wait and loop is bounded in count and time. Every
//! child process is killed when the run ends, when it panics and on Ctrl-C or SIGTERM (drop guards); the temp
//! dir is removed, except after a panic (its logs are kept, and its path printed).
//!
//! Honesty about the machine: on this project's 2-core machine the two replicas, HAProxy, Redis, the
//! emulator and the load generator all share the same two cores. "Per replica" throughput is what each replica
//! serves under that sharing, not what a replica on its own cores would; `alone` gets both cores (less the
//! load generator's share) while it is measured, so the proxy's figure says what replicas cost on the same
//! hardware, not how they scale out. Every child inherits this program's niceness (run under `nice -n 19` on
//! a machine shared with other builds, the figures are slower and noisier than on an idle one), and on such
//! a machine a first refresh of 100,000 users can outlast the publish lock (`store.lease_s`), so that its
//! version is never shared: the report's notes then show the replicas' `WARN` lines.

#[path = "../tests/it/support/resp.rs"]
mod resp;
#[path = "support/sampling.rs"]
mod sampling;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use jumpcloud_scim::emulator::{self, EmulatorConfig, RunningEmulator};
use sampling::{Sample, enc, percentile};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::time::Instant;

const TOKEN: &str = "replicas-bench-token-0123456789";
const CONCURRENCY: usize = 32;
/// Each side of a read comparison runs in this many rounds, alternating with the others.
const ROUNDS: u32 = 5;
/// How long a process may take to serve its first snapshot (a full refresh of 100,000 users is ~11 s alone).
const READY_DEADLINE: Duration = Duration::from_secs(600);
/// How long a change may take to be served after a refresh was asked for.
const FRESH_DEADLINE: Duration = Duration::from_secs(180);
/// A process not ready this long after it started is asked for a refresh again ([`wait_ready`]).
const NUDGE_AFTER: Duration = Duration::from_secs(90);
/// What the run had to work around, for the report.
static NOTES: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

fn note(text: String) {
    println!("  NOTE: {text}");
    NOTES
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .push(text);
}

/// The `WARN` and `ERROR` lines of every log in `dir` (escape codes removed), by file: how many, and the
/// first few.
fn log_warnings(dir: &Path) -> Vec<(String, usize, Vec<String>)> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    let mut files: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.extension().is_some_and(|x| x == "log") && !p.to_string_lossy().contains("audit")
        })
        .collect();
    files.sort();
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap_or_default();
        let lines: Vec<String> = text
            .lines()
            .map(strip_escapes)
            .filter(|l| l.contains(" WARN ") || l.contains(" ERROR "))
            .collect();
        if !lines.is_empty() {
            let name = f
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let first = lines
                .iter()
                .take(3)
                .map(|l| l.chars().take(400).collect())
                .collect();
            out.push((name, lines.len(), first));
        }
    }
    out
}

/// `line` without its terminal colour codes (`ESC [ … m`).
fn strip_escapes(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for d in chars.by_ref() {
                if d.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// All the writes of (e) together stop after this long, however many were asked for.
const WRITES_DEADLINE: Duration = Duration::from_secs(600);

#[derive(Debug, Clone)]
struct Args {
    users: usize,
    window: Duration,
    refresh_s: u64,
    run_for: Duration,
    writes: usize,
    fresh: usize,
}

fn args() -> Args {
    let mut a = Args {
        users: 100_000,
        window: Duration::from_secs(120),
        refresh_s: 30,
        run_for: Duration::from_secs(5),
        writes: 20,
        fresh: 3,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = |name: &str| -> u64 {
            it.next()
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("{name} needs a number"))
        };
        match arg.as_str() {
            "--window-s" => a.window = Duration::from_secs(value("--window-s").clamp(10, 1800)),
            "--refresh-s" => a.refresh_s = value("--refresh-s").clamp(5, 3600),
            "--run-s" => a.run_for = Duration::from_secs(value("--run-s").clamp(1, 120)),
            "--writes" => a.writes = usize::try_from(value("--writes")).unwrap_or(20).min(500),
            "--fresh" => a.fresh = usize::try_from(value("--fresh")).unwrap_or(3).clamp(1, 20),
            n => a.users = n.parse().expect("USERS, or one of the flags"),
        }
    }
    a
}

// === the programs driven ===

#[allow(
    clippy::disallowed_methods,
    reason = "a benchmark looks up the programs it drives on PATH; the service never does"
)]
fn on_path(name: &str) -> Option<PathBuf> {
    let paths = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&paths)
        .chain(["/usr/sbin", "/usr/local/sbin"].map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// `name` on PATH; or exit (before anything was started) saying how to install it.
fn require(name: &str, package: &str) -> PathBuf {
    on_path(name).unwrap_or_else(|| {
        eprintln!(
            "{name} is not installed: install it with `sudo apt-get install -y {package}` (Debian/Ubuntu), then run again"
        );
        std::process::exit(2)
    })
}

/// The release binary: this example is `target/release/examples/replicas`, the binary `target/release/jumpcloud-scim`.
fn serve_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("the example's own path");
    let bin = exe
        .parent()
        .and_then(Path::parent)
        .map(|d| d.join("jumpcloud-scim"));
    match bin {
        Some(b) if b.is_file() => b,
        _ => {
            eprintln!(
                "the binary jumpcloud-scim is not next to {}: run `cargo build --release` first",
                exe.display()
            );
            std::process::exit(2)
        }
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// A child process, killed when dropped (the end of the run, a panic, Ctrl-C).
struct Proc {
    name: String,
    pid: u32,
    child: tokio::process::Child,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

impl Proc {
    fn spawn(name: &str, cmd: &mut tokio::process::Command) -> Proc {
        let child = cmd
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("{name} does not start: {e}"));
        Proc {
            name: name.to_owned(),
            pid: child.id().unwrap_or(0),
            child,
        }
    }

    /// Kill it and wait (bounded) until it is gone.
    async fn stop(mut self) {
        let _ = self.child.start_kill();
        if tokio::time::timeout(Duration::from_secs(10), self.child.wait())
            .await
            .is_err()
        {
            eprintln!("{} did not end within 10 s of SIGKILL", self.name);
        }
    }

    /// Resident memory (`VmRSS`), in bytes.
    fn rss(&self) -> u64 {
        let Ok(status) = std::fs::read_to_string(format!("/proc/{}/status", self.pid)) else {
            return 0;
        };
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map_or(0, |kb| kb * 1024)
    }
}

/// The run's temp dir (configs, logs, audit trails): removed at the end, kept after a panic.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("logs kept in {}", self.0.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

// === Redis ===

/// One command in RESP; the raw reply, or `None` when Redis does not answer.
async fn redis_cmd(port: u16, args: &[&str]) -> Option<String> {
    resp::command(port, args, 64 * 1024).await
}

async fn start_redis(bin: &Path, dir: &Path) -> (Proc, u16) {
    let port = free_port();
    let proc = Proc::spawn(
        "redis-server",
        tokio::process::Command::new(bin)
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--protected-mode", "no"])
            .arg("--dir")
            .arg(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while redis_cmd(port, &["PING"]).await.is_none() {
        assert!(Instant::now() < deadline, "redis-server never answered");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    (proc, port)
}

/// Redis's `used_memory`, in bytes.
async fn redis_used_memory(port: u16) -> u64 {
    let info = redis_cmd(port, &["INFO", "memory"])
        .await
        .unwrap_or_default();
    info.lines()
        .find_map(|l| l.strip_prefix("used_memory:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

// === serve ===

/// Where a `serve` keeps its versions: alone (embedded), or on Redis under a key prefix.
#[derive(Clone, Copy)]
enum StoreKind<'a> {
    Local,
    Redis { url: &'a str, prefix: &'a str },
}

/// A `serve` configuration. Every process gets the same `public_url` (the proxy's), so that the resources
/// they answer are the same bytes.
fn serve_toml(
    emulator: &str,
    public: &str,
    refresh_s: u64,
    store: StoreKind,
    audit: &Path,
) -> String {
    let mut toml = format!(
        r#"listen = "127.0.0.1:0"
public_url = "{public}"

[jumpcloud]
url = "{emulator}"
api_key = "demo-key"

[refresh]
interval_s = {refresh_s}
jitter = 0.0

[insights]
enabled = "off"

[log]
level = "warn"

[audit]
destination = "{audit}"

[[auth.tokens]]
token = "{TOKEN}"
name = "bench"
scope = "provision"
"#,
        audit = audit.display(),
    );
    if let StoreKind::Redis { url, prefix } = store {
        toml.push_str(&format!(
            "\n[store]\nkind = \"redis\"\nurl = \"{url}\"\nkey_prefix = \"{prefix}\"\n"
        ));
    }
    toml
}

/// A running `serve` process and its address.
struct Serve {
    proc: Proc,
    base: String,
}

/// Start `serve --config` with `toml` (written to the temp dir) and wait until it listens.
async fn start_serve(bin: &Path, dir: &Path, name: &str, toml: &str) -> Serve {
    let cfg = dir.join(format!("{name}.toml"));
    std::fs::write(&cfg, toml).expect("the config is written");
    let log = std::fs::File::create(dir.join(format!("{name}.log"))).expect("the log file");
    let mut proc = Proc::spawn(
        name,
        tokio::process::Command::new(bin)
            .arg("serve")
            .arg("--config")
            .arg(&cfg)
            .env_clear()
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log)),
    );
    let stdout = proc.child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let base = tokio::time::timeout(Duration::from_secs(30), async {
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some(addr) = line.strip_prefix("listening on ") {
                return Some(addr.trim().to_owned());
            }
        }
        None
    })
    .await
    .ok()
    .flatten()
    .unwrap_or_else(|| {
        panic!(
            "{name} never listened: see {}",
            dir.join(format!("{name}.log")).display()
        )
    });
    // Keep draining stdout so the child never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Serve { proc, base }
}

/// Wait (bounded) until `base` answers `/readyz` 200. One still not ready after [`NUDGE_AFTER`] is asked for
/// a refresh again, at most 3 times, and the run says so: a replica stays unready when its leader's first
/// version was never shared (seen at 100,000 users on a busy machine: the publish lock expired during the
/// upload), and the next refresh, an hour later here, is what would share one.
async fn wait_ready(http: &reqwest::Client, name: &str, base: &str) {
    let started = Instant::now();
    let deadline = started + READY_DEADLINE;
    let mut nudges = 0;
    loop {
        let r = http.get(format!("{base}/readyz")).send().await;
        if r.is_ok_and(|r| r.status() == 200) {
            return;
        }
        assert!(Instant::now() < deadline, "{name} never became ready");
        if started.elapsed() > NUDGE_AFTER * (nudges + 1) && nudges < 3 {
            nudges += 1;
            note(format!(
                "{name} was not ready {} s after it started: asked for a refresh again (POST /admin/refresh, \
                 try {nudges}); see the WARN lines of the logs below",
                started.elapsed().as_secs()
            ));
            let _ = http
                .post(format!("{base}/admin/refresh"))
                .bearer_auth(TOKEN)
                .send()
                .await;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn get_json(http: &reqwest::Client, url: &str) -> Value {
    let r = http.get(url).bearer_auth(TOKEN).send().await;
    match r {
        Ok(r) => r.json().await.unwrap_or(Value::Null),
        Err(_) => Value::Null,
    }
}

/// The sum of the samples of the counter `name` in `base`'s `/metrics` whose line contains `with`.
async fn metric_sum(http: &reqwest::Client, base: &str, name: &str, with: &str) -> f64 {
    let Ok(r) = http.get(format!("{base}/metrics")).send().await else {
        return 0.0;
    };
    let text = r.text().await.unwrap_or_default();
    text.lines()
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|r| r.starts_with(['{', ' ']))
        })
        .filter(|l| l.contains(with))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// `/readyz`'s `store.role` (`leader`, `follower`; `local` alone).
async fn role(http: &reqwest::Client, base: &str) -> String {
    let r = get_json(http, &format!("{base}/readyz")).await;
    r["store"]["role"]
        .as_str()
        .or(r["store"]["kind"].as_str())
        .unwrap_or("?")
        .to_owned()
}

// === HAProxy ===

/// Based on deploy/compose/haproxy.cfg: round robin, health check on /readyz, retries for reads; no request
/// log, and a stats page of its own for the wait until every server is in its rotation. A second frontend
/// (`solo_port`) has `alone` as its only server: the proxy's own cost, apart from the replicas'.
fn haproxy_cfg(ports: (u16, u16, u16), replicas: &[(String, String)], alone: &str) -> String {
    let (port, solo_port, stats_port) = ports;
    let mut cfg = format!(
        "global
    maxconn 4096

defaults
    mode http
    timeout connect 5s
    timeout client 65s
    timeout server 65s
    retries 2
    option redispatch
    retry-on conn-failure empty-response response-timeout

frontend scim
    bind 127.0.0.1:{port}
    default_backend replicas

frontend solo
    bind 127.0.0.1:{solo_port}
    default_backend solo

frontend stats
    bind 127.0.0.1:{stats_port}
    stats enable
    stats uri /stats

backend solo
    option httpchk GET /readyz
    http-check expect status 200
    default-server inter 2s fall 2 rise 1
    http-response set-header X-Server %s
    server alone {alone} check

backend replicas
    balance roundrobin
    option httpchk GET /readyz
    http-check expect status 200
    default-server inter 2s fall 2 rise 1
    http-response set-header X-Server %s
",
        alone = alone.trim_start_matches("http://"),
    );
    for (name, base) in replicas {
        let addr = base.trim_start_matches("http://");
        cfg.push_str(&format!("    server {name} {addr} check\n"));
    }
    cfg
}

/// Start HAProxy in front of `replicas` on `port` and of `alone` on `solo_port`, and wait (bounded) until it
/// has every one of them UP.
async fn start_haproxy(
    bin: &Path,
    dir: &Path,
    (port, solo_port): (u16, u16),
    replicas: &[(String, String)],
    alone: &str,
) -> Proc {
    let stats_port = free_port();
    let cfg = dir.join("haproxy.cfg");
    let text = haproxy_cfg((port, solo_port, stats_port), replicas, alone);
    std::fs::write(&cfg, text).expect("haproxy.cfg is written");
    let log = std::fs::File::create(dir.join("haproxy.log")).expect("the log file");
    let proc = Proc::spawn(
        "haproxy",
        tokio::process::Command::new(bin)
            .arg("-db")
            .arg("-f")
            .arg(&cfg)
            .stdout(Stdio::null())
            .stderr(Stdio::from(log)),
    );
    let http = reqwest::Client::new();
    let stats = format!("http://127.0.0.1:{stats_port}/stats;csv");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let csv = match http.get(&stats).send().await {
            Ok(r) => r.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        let up = csv
            .lines()
            .map(|l| l.split(',').collect::<Vec<_>>())
            .filter(|f| matches!(f[0], "replicas" | "solo"))
            .filter(|f| {
                f.get(1)
                    .is_some_and(|s| !matches!(*s, "BACKEND" | "FRONTEND"))
            })
            .filter(|f| f.get(17) == Some(&"UP"))
            .count();
        if up == replicas.len() + 1 {
            return proc;
        }
        assert!(
            Instant::now() < deadline,
            "HAProxy never had every replica UP: see {}",
            dir.join("haproxy.log").display()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

// === measuring ===

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

impl Sample {
    fn cell(&self) -> String {
        let (rps, p50, p99) = self.figures();
        format!(
            "{rps:>6.0} req/s p50 {p50:>5.2} p99 {p99:>6.2}{}",
            if self.errors > 0 {
                format!(" ({} errors)", self.errors)
            } else {
                String::new()
            }
        )
    }
}

/// Hit `urls` round-robin from `CONCURRENCY` tasks for `run_for`.
async fn sample(client: &reqwest::Client, urls: &Arc<Vec<String>>, run_for: Duration) -> Sample {
    sampling::sample(client, urls, run_for, CONCURRENCY, TOKEN).await
}

/// Walk every user of `base` in pages of 100 (bounded: 10,000 pages); (id, userName) of each.
async fn walk(http: &reqwest::Client, base: &str) -> Vec<(String, String)> {
    let mut start = 1;
    let mut ids = Vec::new();
    for _ in 0..10_000 {
        let page = get_json(
            http,
            &format!("{base}/scim/v2/Users?startIndex={start}&count=100"),
        )
        .await;
        let items = page["Resources"].as_array().cloned().unwrap_or_default();
        for u in &items {
            ids.push((
                u["id"].as_str().unwrap_or_default().to_owned(),
                u["userName"].as_str().unwrap_or_default().to_owned(),
            ));
        }
        start += items.len();
        if items.is_empty() || start > page["totalResults"].as_u64().unwrap_or(0) as usize {
            break;
        }
    }
    ids
}

// === (a) reads ===

/// The processes of the main comparison: `alone`, the proxy in front of it alone, the replicas (name, base),
/// and the proxy in front of them.
struct Bases {
    alone: String,
    alone_proxy: String,
    replicas: Vec<(String, String)>,
    /// Each replica's role (`leader`, `follower`) when the measures began.
    roles: Vec<String>,
    proxy: String,
}

/// One read scenario: each side's sample, and what each replica served a second through the proxy.
struct ReadRow {
    label: &'static str,
    alone: Sample,
    alone_proxy: Sample,
    /// Each replica alone, directly: ("replica a (follower), direct", its sample).
    direct: Vec<(String, Sample)>,
    proxy: Sample,
    per_replica: Vec<f64>,
}

/// Requests each replica has counted (`jcscim_http_requests_total`, every route).
async fn served(http: &reqwest::Client, b: &Bases) -> Vec<f64> {
    let mut out = Vec::new();
    for (_, base) in &b.replicas {
        out.push(metric_sum(http, base, "jcscim_http_requests_total", "").await);
    }
    out
}

async fn read_row(
    http: &reqwest::Client,
    b: &Bases,
    label: &'static str,
    paths: &[String],
    run_for: Duration,
) -> ReadRow {
    let urls = |base: &str| -> Arc<Vec<String>> {
        Arc::new(paths.iter().map(|p| format!("{base}/scim/v2{p}")).collect())
    };
    let (alone, alone_proxy) = (urls(&b.alone), urls(&b.alone_proxy));
    let direct: Vec<Arc<Vec<String>>> = b.replicas.iter().map(|(_, base)| urls(base)).collect();
    let proxy = urls(&b.proxy);
    // Warm every side's connections (and each replica's pin of the page walk) before counting.
    for u in [&alone, &alone_proxy, &proxy].into_iter().chain(&direct) {
        let _ = sample(http, u, Duration::from_millis(300)).await;
    }
    let mut row = ReadRow {
        label,
        alone: Sample::default(),
        alone_proxy: Sample::default(),
        direct: b
            .replicas
            .iter()
            .zip(&b.roles)
            .map(|((name, _), role)| {
                (
                    format!("replica {name} ({role}), direct"),
                    Sample::default(),
                )
            })
            .collect(),
        proxy: Sample::default(),
        per_replica: Vec::new(),
    };
    let mut counted = vec![0.0; b.replicas.len()];
    let each = run_for / ROUNDS;
    for _ in 0..ROUNDS {
        row.alone.extend(sample(http, &alone, each).await);
        row.alone_proxy
            .extend(sample(http, &alone_proxy, each).await);
        for ((_, d), urls) in row.direct.iter_mut().zip(&direct) {
            d.extend(sample(http, urls, each).await);
        }
        let before = served(http, b).await;
        row.proxy.extend(sample(http, &proxy, each).await);
        let after = served(http, b).await;
        for (c, (x, y)) in counted.iter_mut().zip(after.iter().zip(&before)) {
            *c += x - y;
        }
    }
    let secs = row.proxy.elapsed.as_secs_f64().max(1e-9);
    row.per_replica = counted.iter().map(|n| n / secs).collect();
    println!(
        "  {label:<20} alone {} | alone via HAProxy {} | {} | 2 via HAProxy {}",
        row.alone.cell(),
        row.alone_proxy.cell(),
        row.direct
            .iter()
            .map(|(l, s)| format!("{l} {}", s.cell()))
            .collect::<Vec<_>>()
            .join(" | "),
        row.proxy.cell()
    );
    row
}

async fn reads(
    http: &reqwest::Client,
    b: &Bases,
    ids: &[(String, String)],
    run_for: Duration,
) -> Vec<ReadRow> {
    let some: Vec<&(String, String)> = ids.iter().step_by((ids.len() / 1000).max(1)).collect();
    let pages = (0..ids.len().div_ceil(100).max(1))
        .map(|p| format!("/Users?startIndex={}&count=100", p * 100 + 1))
        .collect::<Vec<_>>();
    let gets = some
        .iter()
        .map(|(id, _)| format!("/Users/{id}"))
        .collect::<Vec<_>>();
    let filters = some
        .iter()
        .map(|(_, u)| format!("/Users?filter={}", enc(&format!("userName eq \"{u}\""))))
        .collect::<Vec<_>>();
    let mut rows = Vec::new();
    for (label, paths) in [
        ("page of 100", pages),
        ("get by id", gets),
        ("userName eq filter", filters),
    ] {
        rows.push(read_row(http, b, label, &paths, run_for).await);
    }
    rows
}

// === (b) a new version served everywhere ===

/// Change `id`'s title in the emulator, as an admin in the console would.
async fn set_title_upstream(http: &reqwest::Client, emulator: &str, id: &str, title: &str) {
    let r = http
        .put(format!("{emulator}/api/systemusers/{id}"))
        .header("x-api-key", "demo-key")
        .json(&json!({ "jobTitle": title }))
        .send()
        .await
        .expect("the emulator answers");
    assert!(r.status().is_success(), "emulator PUT {id}: {}", r.status());
}

/// The time since `t0` until `base` answers `id` with `title` (polled every 50 ms until `FRESH_DEADLINE`).
async fn until_title(
    http: &reqwest::Client,
    base: &str,
    id: &str,
    title: &str,
    t0: Instant,
) -> Option<Duration> {
    let url = format!("{base}/scim/v2/Users/{id}?attributes=title");
    while t0.elapsed() < FRESH_DEADLINE {
        if get_json(http, &url).await["title"] == title {
            return Some(t0.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    None
}

/// Ask `base` for a refresh.
async fn ask_refresh(http: &reqwest::Client, base: &str) {
    let r = http
        .post(format!("{base}/admin/refresh"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("POST /admin/refresh answers");
    assert_eq!(r.status(), 202, "POST {base}/admin/refresh");
}

/// `base`'s last refresh as its `/readyz` says: when it finished (to tell the next one from it).
async fn last_refresh(http: &reqwest::Client, base: &str) -> Value {
    get_json(http, &format!("{base}/readyz")).await["last_refresh"].clone()
}

/// The duration of the first refresh `base` finished after the one that finished at `before` (waiting for
/// it, bounded: it is recorded a moment after its version is served).
async fn refresh_after(http: &reqwest::Client, base: &str, before: &Value) -> Option<Duration> {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        let last = last_refresh(http, base).await;
        if last["finished_at"] != before["finished_at"] {
            return last["duration_ms"].as_u64().map(Duration::from_millis);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    None
}

/// One repetition of (b): on the replicas (each one's time, the leader's refresh), then on `alone`.
struct FreshRow {
    replicas: Vec<Option<Duration>>,
    leader_refresh: Option<Duration>,
    alone: Option<Duration>,
    alone_refresh: Option<Duration>,
}

async fn freshness(
    http: &reqwest::Client,
    emulator: &str,
    b: &Bases,
    ids: &[(String, String)],
    reps: usize,
) -> Vec<FreshRow> {
    let mut rows = Vec::new();
    for rep in 0..reps {
        let id = &ids[(rep * 7 + 1) % ids.len()].0;
        let title = format!("fresh-replicas-{rep}");
        set_title_upstream(http, emulator, id, &title).await;
        let mut leader = &b.replicas[0].1;
        for (_, base) in &b.replicas {
            if role(http, base).await == "leader" {
                leader = base;
            }
        }
        let before = last_refresh(http, leader).await;
        let t0 = Instant::now();
        ask_refresh(http, &b.proxy).await;
        let seen = futures_util::future::join_all(
            b.replicas
                .iter()
                .map(|(_, base)| until_title(http, base, id, &title, t0)),
        )
        .await;
        let leader_refresh = refresh_after(http, leader, &before).await;
        let title = format!("fresh-alone-{rep}");
        set_title_upstream(http, emulator, id, &title).await;
        let before = last_refresh(http, &b.alone).await;
        let t0 = Instant::now();
        ask_refresh(http, &b.alone).await;
        let alone = until_title(http, &b.alone, id, &title, t0).await;
        let alone_refresh = refresh_after(http, &b.alone, &before).await;
        let row = FreshRow {
            replicas: seen,
            leader_refresh,
            alone,
            alone_refresh,
        };
        println!(
            "  refresh {rep}: replicas {} (leader's refresh {}); alone {} (its refresh {})",
            row.replicas
                .iter()
                .map(|d| opt_s(*d))
                .collect::<Vec<_>>()
                .join(", "),
            opt_s(row.leader_refresh),
            opt_s(row.alone),
            opt_s(row.alone_refresh)
        );
        rows.push(row);
    }
    rows
}

fn secs(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

fn opt_s(d: Option<Duration>) -> String {
    d.map_or_else(|| "never".to_owned(), secs)
}

// === (c) memory ===

/// Resident memory after a full walk on each: (name, role, bytes) of each process, and Redis's
/// (resident, `used_memory`).
struct Memory {
    processes: Vec<(String, String, u64)>,
    redis: (u64, u64),
}

async fn memory(
    http: &reqwest::Client,
    alone: &Serve,
    replicas: &[Serve],
    redis: (&Proc, u16),
) -> Memory {
    let mut processes = Vec::new();
    for s in std::iter::once(alone).chain(replicas) {
        let walked = walk(http, &s.base).await.len();
        println!("  walked {walked} users on {}", s.proc.name);
    }
    // Let each process's clean-up after the walk (and any allocator trim) settle before reading.
    tokio::time::sleep(Duration::from_secs(1)).await;
    for s in std::iter::once(alone).chain(replicas) {
        let role = role(http, &s.base).await;
        processes.push((s.proc.name.clone(), role, s.proc.rss()));
    }
    Memory {
        processes,
        redis: (redis.0.rss(), redis_used_memory(redis.1).await),
    }
}

// === (e) writes ===

/// PATCH `id`'s title on `base`; its latency when it answered 200, and the server HAProxy sent it to.
async fn patch_title(
    http: &reqwest::Client,
    base: &str,
    id: &str,
    title: &str,
) -> Option<(Duration, String)> {
    let body = json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "path": "title", "value": title}],
    });
    let t = Instant::now();
    let r = http
        .patch(format!("{base}/scim/v2/Users/{id}"))
        .bearer_auth(TOKEN)
        .header("content-type", "application/scim+json")
        .body(body.to_string())
        .timeout(Duration::from_secs(60))
        .send()
        .await
        .ok()?;
    let ok = r.status() == 200;
    let server = r
        .headers()
        .get("x-server")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-")
        .to_owned();
    let _ = r.bytes().await;
    ok.then(|| (t.elapsed(), server))
}

/// Latencies of the writes on `alone` and through the proxy, the failures, and how many proxied writes
/// every replica already served when the PATCH answered.
#[derive(Default)]
struct Writes {
    /// The emulator's own PUT of a title, with no service in front: the floor under both.
    upstream: Vec<Duration>,
    alone: Vec<Duration>,
    proxy: Vec<Duration>,
    /// The proxied writes by the replica HAProxy sent them to.
    by_replica: BTreeMap<String, Vec<Duration>>,
    errors: usize,
    visible_everywhere: usize,
}

async fn writes(
    http: &reqwest::Client,
    emulator: &str,
    b: &Bases,
    ids: &[(String, String)],
    n: usize,
) -> Writes {
    let mut w = Writes::default();
    let started = Instant::now();
    let half = ids.len() / 2;
    for i in 0..n {
        if started.elapsed() > WRITES_DEADLINE {
            println!("  writes stopped after {i} of {n}: {WRITES_DEADLINE:?} passed");
            break;
        }
        let t = Instant::now();
        let direct = &ids[(ids.len() / 4 + i) % ids.len()].0;
        set_title_upstream(http, emulator, direct, &format!("write-upstream-{i}")).await;
        w.upstream.push(t.elapsed());
        let alone_id = &ids[(half + 2 * i) % ids.len()].0;
        match patch_title(http, &b.alone, alone_id, &format!("write-alone-{i}")).await {
            Some((d, _)) => w.alone.push(d),
            None => w.errors += 1,
        }
        let id = &ids[(half + 2 * i + 1) % ids.len()].0;
        let title = format!("write-replicas-{i}");
        match patch_title(http, &b.proxy, id, &title).await {
            Some((d, server)) => {
                w.proxy.push(d);
                w.by_replica.entry(server).or_default().push(d);
            }
            None => w.errors += 1,
        }
        let mut everywhere = true;
        for (_, base) in &b.replicas {
            let u = get_json(http, &format!("{base}/scim/v2/Users/{id}?attributes=title")).await;
            everywhere &= u["title"] == title.as_str();
        }
        w.visible_everywhere += usize::from(everywhere);
    }
    w.upstream.sort();
    w.alone.sort();
    w.proxy.sort();
    for (name, lat) in std::mem::take(&mut w.by_replica) {
        let role = b
            .replicas
            .iter()
            .position(|(n, _)| *n == name)
            .and_then(|i| b.roles.get(i))
            .map_or("?", String::as_str);
        let mut lat = lat;
        lat.sort();
        w.by_replica.insert(format!("on {name} ({role})"), lat);
    }
    w
}

// === (d) JumpCloud calls: one replica against three ===

/// A cluster of (d): its own emulator and `n` replicas on Redis under a prefix of their own.
struct Cluster {
    label: String,
    emulator: RunningEmulator,
    replicas: Vec<Serve>,
}

/// What a cluster cost JumpCloud over the window.
struct CallsRow {
    label: String,
    /// Calls a minute as the emulator counted them.
    emulator: f64,
    /// (name, role, calls a minute) as each replica counted its own.
    replicas: Vec<(String, String, f64)>,
    /// Full refreshes published in the window (the leader's `jcscim_refresh_total{outcome="ok"}`).
    refreshes: f64,
    /// Resident memory of each replica at the end of the window.
    rss: Vec<u64>,
    /// JumpCloud calls of the leader's last full refresh (its `/readyz`): what one refresh costs, whatever
    /// the window's phase.
    per_refresh: u64,
}

async fn seed(users: usize) -> RunningEmulator {
    emulator::spawn(EmulatorConfig {
        users,
        groups: (users / 500).max(2),
        ..EmulatorConfig::default()
    })
    .await
    .expect("the emulator starts")
}

struct Parts<'a> {
    bin: &'a Path,
    dir: &'a Path,
    redis_url: &'a str,
}

async fn start_cluster(p: &Parts<'_>, a: &Args, n: usize, emulator: RunningEmulator) -> Cluster {
    let label = format!("{n} replica{}", if n == 1 { "" } else { "s" });
    let prefix = format!("calls{n}:");
    let store = StoreKind::Redis {
        url: p.redis_url,
        prefix: &prefix,
    };
    let mut replicas = Vec::new();
    for i in 0..n {
        let name = format!("calls{n}-{i}");
        let audit = p.dir.join(format!("{name}-audit.log"));
        let public = "http://127.0.0.1:9";
        let toml = serve_toml(&emulator.base_url(), public, a.refresh_s, store, &audit);
        replicas.push(start_serve(p.bin, p.dir, &name, &toml).await);
    }
    Cluster {
        label,
        emulator,
        replicas,
    }
}

/// Counters of a cluster at one moment: the emulator's total, each replica's upstream calls, refreshes.
async fn counters(http: &reqwest::Client, c: &Cluster) -> (f64, Vec<f64>, f64) {
    let stats = get_json(http, &format!("{}/__emulator/stats", c.emulator.base_url())).await;
    let mut calls = Vec::new();
    let mut refreshes = 0.0;
    for s in &c.replicas {
        calls.push(metric_sum(http, &s.base, "jcscim_upstream_requests_total", "").await);
        refreshes += metric_sum(http, &s.base, "jcscim_refresh_total", "outcome=\"ok\"").await;
    }
    (stats["total"].as_f64().unwrap_or(0.0), calls, refreshes)
}

async fn calls(http: &reqwest::Client, p: &Parts<'_>, a: &Args) -> Vec<CallsRow> {
    println!("(d) seeding two emulators of {} users", a.users);
    let (e1, e3) = tokio::join!(seed(a.users), seed(a.users));
    let clusters = [
        start_cluster(p, a, 1, e1).await,
        start_cluster(p, a, 3, e3).await,
    ];
    for c in &clusters {
        for s in &c.replicas {
            wait_ready(http, &s.proc.name, &s.base).await;
        }
    }
    println!(
        "(d) both clusters ready; counting JumpCloud's calls for {} s (a full refresh every {} s)",
        a.window.as_secs(),
        a.refresh_s
    );
    let before = futures_util::future::join_all(clusters.iter().map(|c| counters(http, c))).await;
    tokio::time::sleep(a.window).await;
    let after = futures_util::future::join_all(clusters.iter().map(|c| counters(http, c))).await;
    let minutes = a.window.as_secs_f64() / 60.0;
    let mut rows = Vec::new();
    for ((c, b), x) in clusters.iter().zip(&before).zip(&after) {
        let mut replicas = Vec::new();
        let mut per_refresh = 0;
        for (s, (cb, cx)) in c.replicas.iter().zip(b.1.iter().zip(&x.1)) {
            let role = role(http, &s.base).await;
            if role == "leader" {
                let r = get_json(http, &format!("{}/readyz", s.base)).await;
                per_refresh = r["last_refresh"]["calls"].as_u64().unwrap_or(0);
            }
            replicas.push((s.proc.name.clone(), role, (cx - cb) / minutes));
        }
        rows.push(CallsRow {
            label: c.label.clone(),
            emulator: (x.0 - b.0) / minutes,
            replicas,
            refreshes: x.2 - b.2,
            rss: c.replicas.iter().map(|s| s.proc.rss()).collect(),
            per_refresh,
        });
    }
    for c in clusters {
        for s in c.replicas {
            s.proc.stop().await;
        }
        let _ = c.emulator.shutdown().await;
    }
    rows
}

// === the run ===

/// The processes of (a), (b), (c) and (e).
struct Main {
    emulator: RunningEmulator,
    alone: Serve,
    replicas: Vec<Serve>,
    haproxy: Proc,
    bases: Bases,
}

async fn start_main(http: &reqwest::Client, p: &Parts<'_>, haproxy: &Path, a: &Args) -> Main {
    let t = Instant::now();
    let emulator = seed(a.users).await;
    println!(
        "emulator seeded with {} users in {}",
        a.users,
        secs(t.elapsed())
    );
    let (proxy_port, solo_port) = (free_port(), free_port());
    let public = format!("http://127.0.0.1:{proxy_port}");
    let audit = |name: &str| p.dir.join(format!("{name}-audit.log"));
    let t = Instant::now();
    let toml = serve_toml(
        &emulator.base_url(),
        &public,
        3600,
        StoreKind::Local,
        &audit("alone"),
    );
    let alone = start_serve(p.bin, p.dir, "alone", &toml).await;
    let mut replicas = Vec::new();
    for name in ["a", "b"] {
        let store = StoreKind::Redis {
            url: p.redis_url,
            prefix: "bench:",
        };
        let toml = serve_toml(&emulator.base_url(), &public, 3600, store, &audit(name));
        replicas.push(start_serve(p.bin, p.dir, name, &toml).await);
    }
    for s in std::iter::once(&alone).chain(&replicas) {
        wait_ready(http, &s.proc.name, &s.base).await;
        println!("  {} ready after {}", s.proc.name, secs(t.elapsed()));
    }
    let bases = Bases {
        alone: alone.base.clone(),
        alone_proxy: format!("http://127.0.0.1:{solo_port}"),
        replicas: replicas
            .iter()
            .map(|s| (s.proc.name.clone(), s.base.clone()))
            .collect(),
        proxy: public,
        roles: Vec::new(),
    };
    let ports = (proxy_port, solo_port);
    let haproxy = start_haproxy(haproxy, p.dir, ports, &bases.replicas, &bases.alone).await;
    let mut bases = bases;
    for (_, base) in &bases.replicas {
        bases.roles.push(role(http, base).await);
    }
    println!(
        "  HAProxy has both replicas in its rotation at {}",
        bases.proxy
    );
    Main {
        emulator,
        alone,
        replicas,
        haproxy,
        bases,
    }
}

/// Every figure of the run, for the table at the end.
struct Report {
    reads: Vec<ReadRow>,
    memory: Memory,
    fresh: Vec<FreshRow>,
    writes: Writes,
    calls: Vec<CallsRow>,
    /// `WARN`/`ERROR` lines of the processes' logs, by file.
    warnings: Vec<(String, usize, Vec<String>)>,
}

async fn run(a: Args, redis_bin: PathBuf, haproxy_bin: PathBuf, bin: PathBuf) {
    let dir = TempDir(std::env::temp_dir().join(format!("jcscim-replicas-{}", std::process::id())));
    std::fs::create_dir_all(&dir.0).expect("the temp dir");
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .timeout(Duration::from_secs(60))
        .build()
        .expect("an HTTP client");
    let (redis, redis_port) = start_redis(&redis_bin, &dir.0).await;
    let redis_url = format!("redis://127.0.0.1:{redis_port}");
    let parts = Parts {
        bin: &bin,
        dir: &dir.0,
        redis_url: &redis_url,
    };
    let m = start_main(&http, &parts, &haproxy_bin, &a).await;
    let ids = walk(&http, &m.bases.alone).await;
    assert!(
        ids.len() >= a.users,
        "walked {} users of {}",
        ids.len(),
        a.users
    );
    println!(
        "(a) reads, {} s a side in {ROUNDS} rounds",
        a.run_for.as_secs()
    );
    let reads = reads(&http, &m.bases, &ids, a.run_for).await;
    println!("(c) memory after a full walk on each process");
    let memory = memory(&http, &m.alone, &m.replicas, (&redis, redis_port)).await;
    println!("(b) a change in the emulator, then POST /admin/refresh");
    let emu = m.emulator.base_url();
    let fresh = freshness(&http, &emu, &m.bases, &ids, a.fresh).await;
    println!("(e) {} PATCHes a side", a.writes);
    let writes = writes(&http, &emu, &m.bases, &ids, a.writes).await;
    m.haproxy.stop().await;
    for s in std::iter::once(m.alone).chain(m.replicas) {
        s.proc.stop().await;
    }
    let _ = m.emulator.shutdown().await;
    let calls = calls(&http, &parts, &a).await;
    let report = Report {
        reads,
        memory,
        fresh,
        writes,
        calls,
        warnings: log_warnings(&dir.0),
    };
    print_report(&a, &report);
    redis.stop().await;
}

#[tokio::main]
async fn main() {
    let a = args();
    let redis_bin = require("redis-server", "redis-server");
    let haproxy_bin = require("haproxy", "haproxy");
    let bin = serve_binary();
    let mut sigterm = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("a SIGTERM handler");
    // Dropping the run (on a signal) drops every child's guard, which kills it.
    tokio::select! {
        () = run(a, redis_bin, haproxy_bin, bin) => {}
        _ = tokio::signal::ctrl_c() => eprintln!("interrupted: every child process is killed"),
        _ = sigterm.recv() => eprintln!("terminated: every child process is killed"),
    }
}

// === the table ===

fn mib(b: u64) -> String {
    format!("{:.0} MiB", b as f64 / (1024.0 * 1024.0))
}

fn print_report(a: &Args, r: &Report) {
    println!(
        "\n==== {} users; 2 replicas on Redis behind HAProxy vs one process alone ====",
        a.users
    );
    print_reads(&r.reads);
    print_memory(&r.memory, a.users);
    print_fresh(&r.fresh);
    print_writes(&r.writes);
    print_calls(&r.calls, a);
    print_notes(&r.warnings);
}

fn print_notes(warnings: &[(String, usize, Vec<String>)]) {
    let notes = NOTES
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    if notes.is_empty() && warnings.is_empty() {
        println!("\n(no notes; no WARN or ERROR line in any log)");
        return;
    }
    println!("\nnotes");
    for n in notes {
        println!("  {n}");
    }
    for (file, count, first) in warnings {
        println!("  {file}: {count} WARN/ERROR lines, the first:");
        for l in first {
            println!("    {l}");
        }
    }
}

fn print_reads(rows: &[ReadRow]) {
    println!("\n(a) reads at {CONCURRENCY} connections (ms)");
    println!(
        "{:<20} {:<32} {:>8} {:>8} {:>8} {:>7}  per replica via the proxy",
        "scenario", "side", "req/s", "p50", "p99", "errors"
    );
    for row in rows {
        let per = row
            .per_replica
            .iter()
            .map(|n| format!("{n:.0} req/s"))
            .collect::<Vec<_>>()
            .join(" + ");
        let mut sides = vec![
            ("alone".to_owned(), &row.alone, String::new()),
            (
                "alone via HAProxy".to_owned(),
                &row.alone_proxy,
                String::new(),
            ),
        ];
        sides.extend(
            row.direct
                .iter()
                .map(|(l, s)| (l.clone(), s, String::new())),
        );
        sides.push(("2 replicas via HAProxy".to_owned(), &row.proxy, per));
        for (i, (side, s, per)) in sides.into_iter().enumerate() {
            let mut lat = s.lat.clone();
            lat.sort();
            println!(
                "{:<20} {side:<32} {:>8.0} {:>8.2} {:>8.2} {:>7}  {per}",
                if i == 0 { row.label } else { "" },
                s.rps(),
                percentile(&lat, 0.5).as_secs_f64() * 1e3,
                percentile(&lat, 0.99).as_secs_f64() * 1e3,
                s.errors,
            );
        }
    }
}

fn print_memory(m: &Memory, users: usize) {
    println!("\n(c) resident memory after a full walk on each");
    for (name, role, rss) in &m.processes {
        println!(
            "  {name:<8} {role:<9} {:>9}  ({:.1} KB per user)",
            mib(*rss),
            *rss as f64 / 1e3 / users.max(1) as f64
        );
    }
    println!(
        "  redis    -         {:>9}  (used_memory {})",
        mib(m.redis.0),
        mib(m.redis.1)
    );
}

fn print_fresh(rows: &[FreshRow]) {
    println!(
        "\n(b) a change in the emulator + POST /admin/refresh → served (seconds from the POST)"
    );
    println!(
        "  {:<4} {:>22} {:>14} {:>16} {:>13} {:>8} {:>15}",
        "rep",
        "each replica",
        "every replica",
        "leader's refresh",
        "last - first",
        "alone",
        "alone's refresh"
    );
    for (i, f) in rows.iter().enumerate() {
        let every = if f.replicas.iter().all(Option::is_some) {
            f.replicas.iter().flatten().max().copied()
        } else {
            None
        };
        let first = f.replicas.iter().flatten().min().copied();
        let each = f
            .replicas
            .iter()
            .map(|d| opt_s(*d))
            .collect::<Vec<_>>()
            .join(", ");
        println!(
            "  {i:<4} {each:>22} {:>14} {:>16} {:>13} {:>8} {:>15}",
            opt_s(every),
            opt_s(f.leader_refresh),
            opt_s(every.zip(first).map(|(e, f)| e - f)),
            opt_s(f.alone),
            opt_s(f.alone_refresh)
        );
    }
}

fn print_writes(w: &Writes) {
    println!("\n(e) PATCH of one user's title, one at a time");
    let mut sides = vec![
        ("emulator PUT, no service", &w.upstream),
        ("alone", &w.alone),
        ("through HAProxy", &w.proxy),
    ];
    sides.extend(w.by_replica.iter().map(|(k, v)| (k.as_str(), v)));
    for (side, lat) in sides {
        println!(
            "  {side:<26} {:>3} writes  p50 {:>10}  p99 {:>10}  fastest {:>10}",
            lat.len(),
            ms(percentile(lat, 0.5)),
            ms(percentile(lat, 0.99)),
            ms(lat.first().copied().unwrap_or_default())
        );
    }
    println!(
        "  failed: {}; proxied writes every replica served when the PATCH answered: {} of {}",
        w.errors,
        w.visible_everywhere,
        w.proxy.len()
    );
}

fn print_calls(rows: &[CallsRow], a: &Args) {
    println!(
        "\n(d) JumpCloud calls a minute over the same {} s, a full refresh every {} s",
        a.window.as_secs(),
        a.refresh_s
    );
    for c in rows {
        let by: BTreeMap<&str, String> = c
            .replicas
            .iter()
            .map(|(n, role, v)| (n.as_str(), format!("{role} {v:.1}")))
            .collect();
        let by = by
            .iter()
            .map(|(n, v)| format!("{n}: {v}"))
            .collect::<Vec<_>>()
            .join(", ");
        let rss = c.rss.iter().map(|b| mib(*b)).collect::<Vec<_>>().join(", ");
        println!(
            "  {:<10} emulator counted {:>8.1}/min; {:.0} refreshes published in the window, {} calls each; \
             by replica: {by}; resident {rss}",
            c.label, c.emulator, c.refreshes, c.per_refresh
        );
    }
}
