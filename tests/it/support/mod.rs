//! Spawn the emulator and the service on 127.0.0.1:0 and talk to them over real sockets.

#![allow(dead_code)]

use std::time::Duration;

use jumpcloud_scim::auth::Scope;
use jumpcloud_scim::config::{Config, Secret, TokenConfig};
use jumpcloud_scim::emulator::{self, EmulatorConfig, RunningEmulator};
use serde_json::Value;
use tokio::io::AsyncBufReadExt;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub const TOKEN: &str = "test-provision-token";
pub const READ_TOKEN: &str = "test-read-token";

/// A response's JSON body.
pub async fn json_of(r: reqwest::Response) -> Value {
    r.json().await.expect("a JSON body")
}

/// The emulator and the service in front of it; both stop when dropped.
pub struct Harness {
    pub emulator: RunningEmulator,
    /// The audit trail of this service's writes.
    pub audit_file: std::path::PathBuf,
    pub base: String,
    pub http: reqwest::Client,
    /// What the service was started with, for [`Harness::restart_service`].
    config: Config,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl Drop for Harness {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.task.take() {
            t.abort();
        }
        let _ = std::fs::remove_file(&self.audit_file);
    }
}

/// A small directory, no faults.
pub fn small_emulator(users: usize, groups: usize) -> EmulatorConfig {
    EmulatorConfig {
        users,
        groups,
        ..EmulatorConfig::default()
    }
}

impl Harness {
    /// Start the emulator, then the service configured against it (`tweak` adjusts the configuration).
    pub async fn start(emu: EmulatorConfig, tweak: impl FnOnce(&mut Config)) -> Harness {
        let api_key = emu.api_key.clone();
        let emulator = emulator::spawn(emu).await.expect("emulator starts");
        let mut config = Config {
            listen: "127.0.0.1:0".parse().unwrap(),
            ..Config::default()
        };
        config.jumpcloud.url = emulator.base_url();
        config.jumpcloud.api_key = Some(Secret::new(api_key));
        config.jumpcloud.timeout_s = 5;
        config.refresh.interval_s = Some(3600);
        config.auth.tokens = vec![
            TokenConfig {
                token: Some(Secret::new(TOKEN)),
                token_sha256: None,
                name: Some("provisioner".into()),
                scope: Scope::Provision,
            },
            TokenConfig {
                token: Some(Secret::new(READ_TOKEN)),
                token_sha256: None,
                name: Some("reader".into()),
                scope: Scope::Read,
            },
        ];
        tweak(&mut config);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        config.public_url = Some(format!("http://{addr}"));
        let audit_file = std::env::temp_dir().join(format!(
            "jcscim-audit-{}-{}.log",
            std::process::id(),
            addr.port()
        ));
        let _ = std::fs::remove_file(&audit_file);
        config.audit.destination = audit_file.to_string_lossy().into_owned();
        let kept = config.clone();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let _ = jumpcloud_scim::app::serve(listener, config, async {
                let _ = stopped.await;
            })
            .await;
        });
        Harness {
            emulator,
            audit_file,
            base: format!("http://{addr}"),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap(),
            config: kept,
            stop: Some(stop),
            task: Some(task),
        }
    }

    pub fn scim(&self, path: &str) -> String {
        format!("{}/scim/v2{path}", self.base)
    }

    pub fn get(&self, path: &str) -> reqwest::RequestBuilder {
        self.http.get(self.scim(path)).bearer_auth(TOKEN)
    }

    /// A user's JumpCloud extension, which is returned only when `attributes` names it.
    pub async fn jc_ext(&self, id: &str) -> Value {
        let r = self
            .get(&format!(
                "/Users/{id}?attributes=urn:jumpcloud-scim:schemas:extension:jumpcloud:2.0:User"
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let v: Value = r.json().await.unwrap();
        v["urn:jumpcloud-scim:schemas:extension:jumpcloud:2.0:User"].clone()
    }

    pub fn post(&self, path: &str, body: &Value) -> reqwest::RequestBuilder {
        self.http
            .post(self.scim(path))
            .bearer_auth(TOKEN)
            .header("content-type", "application/scim+json")
            .body(body.to_string())
    }

    /// Wait until `/readyz` answers 200 (bounded).
    pub async fn wait_ready(&self) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(r) = self.http.get(format!("{}/readyz", self.base)).send().await
                && r.status() == 200
            {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "service never became ready"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// `/readyz`: its status and body.
    pub async fn readyz(&self) -> (u16, Value) {
        let r = self
            .http
            .get(format!("{}/readyz", self.base))
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.json().await.unwrap())
    }

    /// The body of the service's `path` (an operations page such as `/metrics` or `/status`), as text.
    pub async fn text(&self, path: &str) -> String {
        self.http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// The last refresh outcome `/readyz` reports.
    pub async fn last_refresh(&self) -> Value {
        self.readyz().await.1["last_refresh"].clone()
    }

    /// Delete a user in JumpCloud behind the service's back (as another admin, or a bad read, would).
    pub async fn delete_upstream_user(&self, id: &str) {
        let r = self
            .jc(
                reqwest::Method::DELETE,
                &format!("/api/systemusers/{id}?cascade_manager=null"),
            )
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{}", r.status());
    }

    /// Wait (bounded) until a first refresh has finished; returns its outcome.
    pub async fn first_refresh(&self) -> Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            let last = self.last_refresh().await;
            if !last.is_null() {
                return last;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no refresh finished"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Ask for a refresh now and wait until one more refresh has finished; returns its outcome.
    pub async fn refresh_now(&self) -> Value {
        let before = self.last_refresh().await["finished_at"].clone();
        let r = self
            .http
            .post(format!("{}/admin/refresh", self.base))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            let last = self.last_refresh().await;
            if last["finished_at"] != before {
                return last;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "refresh never finished"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// `PUT /__emulator/faults`.
    pub async fn faults(&self, body: Value) {
        let r = self
            .http
            .put(format!("{}/__emulator/faults", self.emulator.base_url()))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "faults: {}", r.status());
    }

    /// `GET /__emulator/stats`.
    pub async fn stats(&self) -> Value {
        self.http
            .get(format!("{}/__emulator/stats", self.emulator.base_url()))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    pub async fn reset_stats(&self) {
        self.http
            .delete(format!("{}/__emulator/stats", self.emulator.base_url()))
            .send()
            .await
            .unwrap();
    }

    /// A direct call to the emulator's JumpCloud API.
    pub fn jc(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.emulator.base_url()))
            .header("x-api-key", "demo-key")
    }
}

// === restarting the service ===

impl Harness {
    /// Stop the service as a shutdown signal would (in-flight work and the saver finish); the emulator runs on.
    pub async fn stop_service(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.task.take() {
            tokio::time::timeout(Duration::from_secs(30), t)
                .await
                .expect("the service stops")
                .expect("the service task ends cleanly");
        }
    }

    /// Stop the service, then start it again with the same configuration against the same emulator. It
    /// listens on a new port, but keeps its public URL, so the resources it derives are the same.
    pub async fn restart_service(&mut self) {
        self.stop_service().await;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        self.base = format!("http://{}", listener.local_addr().unwrap());
        let config = self.config.clone();
        let (stop, stopped) = oneshot::channel::<()>();
        self.task = Some(tokio::spawn(async move {
            let _ = jumpcloud_scim::app::serve(listener, config, async {
                let _ = stopped.await;
            })
            .await;
        }));
        self.stop = Some(stop);
    }
}

// === the binary ===

/// The real binary running `serve`, killed when dropped.
pub struct Served {
    pub child: tokio::process::Child,
    pub base: String,
}

/// Start `jumpcloud-scim serve` with exactly these environment variables (plus a free port, a long refresh
/// interval and the audit trail on stdout), and wait until it listens.
pub async fn serve(vars: &[(&str, String)]) -> Served {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_jumpcloud-scim"));
    cmd.arg("serve")
        .env_clear()
        .env("JCSCIM_LISTEN", "127.0.0.1:0")
        .env("JCSCIM_REFRESH__INTERVAL_S", "3600")
        .env("JCSCIM_AUDIT__DESTINATION", "stdout")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true);
    for (k, v) in vars {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("serve starts");
    let stdout = child.stdout.take().unwrap();
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    let base = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if let Some(addr) = line.strip_prefix("listening on ") {
                return addr.trim().to_owned();
            }
        }
        panic!("serve ended without listening");
    })
    .await
    .expect("serve listens within 30 s");
    // Keep draining stdout (the audit trail) so the child never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Served { child, base }
}

/// What the tests read of the machine's environment, in one place: the search path for the real parts
/// they drive (Chromium, the conformance suite) and the switches CI sets.
pub mod redis;
pub mod resp;

pub mod machine {
    #![allow(
        clippy::disallowed_methods,
        reason = "tests read the machine's PATH and CI's switches; the service reads its environment only in config"
    )]

    use std::ffi::OsString;
    use std::path::PathBuf;

    /// The first of `names` found on `PATH`.
    pub fn on_path(names: &[&str]) -> Option<PathBuf> {
        let paths = std::env::var_os("PATH")?;
        std::env::split_paths(&paths)
            .flat_map(|dir| names.iter().map(move |n| dir.join(n)))
            .find(|p| p.is_file())
    }

    /// `PATH` as it is, for a child process started with a cleared environment.
    pub fn path() -> OsString {
        std::env::var_os("PATH").unwrap_or_default()
    }

    /// Whether CI asks that a test needing a missing real part fail rather than skip
    /// (`JCSCIM_REQUIRE_REAL_PARTS=1`).
    pub fn real_parts_required() -> bool {
        std::env::var("JCSCIM_REQUIRE_REAL_PARTS").is_ok_and(|v| v == "1")
    }

    /// Where the status page's screenshot goes, when `JCSCIM_STATUS_SCREENSHOT` says.
    pub fn screenshot_target() -> Option<PathBuf> {
        std::env::var_os("JCSCIM_STATUS_SCREENSHOT").map(PathBuf::from)
    }
}
