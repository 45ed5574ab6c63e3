//! A real `redis-server` (the Debian package) for the replica tests, on a free port of 127.0.0.1, with no
//! persistence; and replicas: `jumpcloud-scim serve` processes sharing it, in front of one emulator.
//!
//! Where `redis-server` is not on `PATH`, [`redis_server`] says loudly that the test is skipped and how to
//! install it, and returns `None`; with `JCSCIM_REQUIRE_REAL_PARTS=1` (set by `.ci/run`) it fails instead.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;

use super::{Served, machine};

pub const TOKEN: &str = "replica-token";

/// `redis-server`, or `None` (the test is skipped, and says so) when it is not installed.
pub fn redis_server(test: &str) -> Option<PathBuf> {
    if let Some(p) = machine::on_path(&["redis-server"]) {
        return Some(p);
    }
    let how = "install it with: sudo apt-get install -y redis-server (Debian/Ubuntu), then run cargo test again";
    assert!(
        !machine::real_parts_required(),
        "redis-server is not installed, and JCSCIM_REQUIRE_REAL_PARTS=1: {how}"
    );
    eprintln!(
        "\n*** SKIPPED {test}: redis-server is not installed, so the replica tests cannot run. {how} ***\n"
    );
    None
}

/// A running `redis-server`; killed when dropped.
pub struct Redis {
    bin: PathBuf,
    pub port: u16,
    child: Option<tokio::process::Child>,
}

impl Drop for Redis {
    fn drop(&mut self) {
        if let Some(c) = self.child.as_mut() {
            let _ = c.start_kill();
        }
    }
}

impl Redis {
    /// Start `bin` on a free port and wait until it answers.
    pub async fn start(bin: PathBuf) -> Redis {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let mut r = Redis {
            bin,
            port,
            child: None,
        };
        r.resume().await;
        r
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kill it (as a crash or an outage would), and wait until the port refuses connections.
    pub async fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill().await;
        }
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while self.command(&["PING"]).await.is_some() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "redis never stopped"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Start it again on the same port (empty: it persists nothing).
    pub async fn resume(&mut self) {
        let child = tokio::process::Command::new(&self.bin)
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--protected-mode", "no"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("redis-server starts");
        self.child = Some(child);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while self.command(&["PING"]).await.is_none() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "redis-server never answered"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// One command in RESP; the raw reply, or `None` when Redis does not answer.
    pub async fn command(&self, args: &[&str]) -> Option<String> {
        super::resp::command(self.port, args, 4096).await
    }
}

/// A replica: the real binary serving in front of `jumpcloud` and sharing `redis` under `prefix`.
pub struct Replica {
    pub served: Served,
    pub http: reqwest::Client,
}

/// How replicas are started: lease and refresh interval (seconds).
#[derive(Debug, Clone, Copy)]
pub struct ReplicaSettings {
    pub lease_s: u64,
    pub refresh_s: u64,
    /// The Directory Insights feed read every second (else off).
    pub insights: bool,
}

impl Replica {
    pub async fn start(
        jumpcloud: &str,
        redis: &Redis,
        prefix: &str,
        s: ReplicaSettings,
    ) -> Replica {
        let feed = if s.insights { "auto" } else { "off" };
        let vars = [
            ("JCSCIM_JUMPCLOUD__URL", jumpcloud.to_owned()),
            ("JCSCIM_JUMPCLOUD__API_KEY", "demo-key".to_owned()),
            ("JCSCIM_AUTH__TOKENS", TOKEN.to_owned()),
            ("JCSCIM_INSIGHTS__ENABLED", feed.to_owned()),
            ("JCSCIM_INSIGHTS__POLL_S", "1".to_owned()),
            ("JCSCIM_INSIGHTS__OVERLAP_S", "10".to_owned()),
            ("JCSCIM_INSIGHTS__MAX_LAG_S", "5".to_owned()),
            ("JCSCIM_REFRESH__INTERVAL_S", s.refresh_s.to_string()),
            ("JCSCIM_REFRESH__JITTER", "0".to_owned()),
            ("JCSCIM_STORE__KIND", "redis".to_owned()),
            ("JCSCIM_STORE__URL", redis.url()),
            ("JCSCIM_STORE__KEY_PREFIX", prefix.to_owned()),
            ("JCSCIM_STORE__LEASE_S", s.lease_s.to_string()),
            ("JCSCIM_STORE__TIMEOUT_MS", "500".to_owned()),
        ];
        Replica {
            served: super::serve(&vars).await,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap(),
        }
    }

    pub fn scim(&self, path: &str) -> String {
        format!("{}/scim/v2{path}", self.served.base)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.http
            .get(self.scim(path))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap()
    }

    pub async fn patch(&self, path: &str, body: &Value) -> reqwest::Response {
        self.http
            .patch(self.scim(path))
            .bearer_auth(TOKEN)
            .header("content-type", "application/scim+json")
            .body(body.to_string())
            .send()
            .await
            .unwrap()
    }

    /// A PATCH sent with `If-Match: etag`.
    pub async fn patch_if(&self, path: &str, body: &Value, etag: &str) -> reqwest::Response {
        self.http
            .patch(self.scim(path))
            .bearer_auth(TOKEN)
            .header("content-type", "application/scim+json")
            .header("if-match", etag)
            .body(body.to_string())
            .send()
            .await
            .unwrap()
    }

    /// `/readyz`, or `None` when the replica does not answer.
    pub async fn readyz(&self) -> Option<(u16, Value)> {
        let r = self
            .http
            .get(format!("{}/readyz", self.served.base))
            .timeout(Duration::from_secs(5))
            .send()
            .await
            .ok()?;
        Some((r.status().as_u16(), r.json().await.ok()?))
    }

    /// The shared store as `/readyz` reports it.
    pub async fn store(&self) -> Value {
        self.readyz()
            .await
            .map(|r| r.1["store"].clone())
            .unwrap_or(Value::Null)
    }

    pub async fn is_leader(&self) -> bool {
        self.store().await["role"] == "leader"
    }

    /// The version this replica serves (`X-Snapshot-Version` of a read).
    pub async fn version(&self) -> u64 {
        let r = self.get("/Users?count=1").await;
        assert_eq!(r.status(), 200);
        version_of(&r)
    }

    /// This replica's `/metrics` text.
    pub async fn metrics(&self) -> String {
        self.http
            .get(format!("{}/metrics", self.served.base))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// Every JumpCloud call this replica made, whatever the purpose (from `/metrics`).
    pub async fn upstream_calls(&self) -> u64 {
        let text = self.metrics().await;
        text.lines()
            .filter(|l| l.starts_with("jcscim_upstream_requests_total{"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum::<f64>() as u64
    }

    /// Kill the process at once (SIGKILL): no shutdown, no lease given up.
    pub async fn kill(&mut self) {
        let _ = self.served.child.kill().await;
    }

    /// Pause (`STOP`) or resume (`CONT`) the process, as a long pause or a frozen VM would.
    pub async fn signal(&self, sig: &str) {
        let pid = self.served.child.id().expect("running");
        let status = tokio::process::Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(pid.to_string())
            .status()
            .await
            .expect("kill runs");
        assert!(status.success(), "kill -{sig} {pid}");
    }
}

/// `X-Snapshot-Version` of a response.
pub fn version_of(r: &reqwest::Response) -> u64 {
    r.headers()["x-snapshot-version"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

/// Wait (bounded by `within`) until `cond` holds; whether it did.
pub async fn eventually<F, Fut>(within: Duration, mut cond: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if cond().await {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A key prefix of this test's own.
pub fn prefix(test: &str) -> String {
    format!("t{}-{test}:", std::process::id())
}
