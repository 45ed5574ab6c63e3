//! Command line: `serve | demo | emulator | check | healthcheck | hash-password`. anyhow lives only here.

use std::net::SocketAddr;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use jumpcloud_scim::app;
use jumpcloud_scim::auth::Scope;
use jumpcloud_scim::config::{Config, LogFormat, Secret, TokenConfig};
use jumpcloud_scim::emulator::{self, EmulatorConfig, FaultConfig};
use jumpcloud_scim::telemetry::logging;

#[global_allocator]
static ALLOCATOR: jumpcloud_scim::cache::memory::Allocator = tikv_jemallocator::Jemalloc;

#[derive(Parser, Debug)]
#[command(
    name = "jumpcloud-scim",
    version,
    about = "SCIM 2.0 service provider in front of JumpCloud"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// The service, in front of a real (or emulated) JumpCloud.
    Serve {
        /// TOML configuration file (also `JCSCIM_CONFIG`).
        #[arg(long, env = "JCSCIM_CONFIG")]
        config: Option<std::path::PathBuf>,
    },
    /// Emulator and service in one process: seeded directory, faults on, ready to aggregate.
    Demo(EmulatorFlags),
    /// The JumpCloud emulator alone.
    Emulator(EmulatorFlags),
    /// Try the configured JumpCloud URL and key and report what was found; exit 0 ok, 1 not.
    Check {
        #[arg(long, env = "JCSCIM_CONFIG")]
        config: Option<std::path::PathBuf>,
    },
    /// Ask the running service's `/healthz` at the configured `listen`; exit 0 or 1.
    Healthcheck {
        #[arg(long, env = "JCSCIM_CONFIG")]
        config: Option<std::path::PathBuf>,
    },
    /// Read a password from standard input and print its argon2id PHC string, for `[[auth.basic]]`
    /// `password_hash`.
    HashPassword,
}

/// Flags of `emulator`, and the same names on `demo` (whose defaults differ where noted).
#[derive(Args, Debug, Clone)]
struct EmulatorFlags {
    /// Where to listen (emulator 127.0.0.1:8081; demo: the service, 127.0.0.1:8080).
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// The only `x-api-key` accepted.
    #[arg(long, default_value = "demo-key")]
    api_key: String,
    /// Number of seeded users (up to 100000).
    #[arg(long, default_value_t = 601, value_parser = clap::value_parser!(u32).range(0..=100_000))]
    users: u32,
    /// Number of seeded user groups.
    #[arg(long, default_value_t = 50)]
    groups: u32,
    /// Seeded data is a pure function of the seed and the sizes.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Share of requests answered with a gateway 502 (emulator 0, demo 0.2).
    #[arg(long)]
    fail_rate: Option<f64>,
    /// Outage period in seconds; 0 turns it off (emulator off, demo 600).
    #[arg(long)]
    outage_every: Option<u64>,
    /// Outage length in seconds (demo 100).
    #[arg(long)]
    outage_for: Option<u64>,
    /// Added to every answer.
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
    /// Share of requests answered 429 with `Retry-After`.
    #[arg(long, default_value_t = 0.0)]
    rate_limit_rate: f64,
    /// Share of writes applied and then answered 502.
    #[arg(long, default_value_t = 0.0)]
    commit_then_fail_rate: f64,
    /// The API key belongs to a multi-tenant admin: requests without `x-org-id` get 401.
    #[arg(long)]
    multi_tenant: bool,
    /// Bearer token the demo's service accepts (demo only; random when absent).
    #[arg(long)]
    token: Option<String>,
    /// The organisation's plan has no Directory Insights: the event feed answers 403.
    #[arg(long)]
    no_insights: bool,
    /// An event becomes visible in the Directory Insights feed this long after its change (emulator 0,
    /// demo 2000).
    #[arg(long)]
    insights_lag_ms: Option<u64>,
    /// Changes made at random to the seeded users and groups per minute, as an admin in the console would,
    /// each with its event (up to 60000).
    #[arg(long, default_value_t = 0)]
    churn_per_minute: u32,
}

impl EmulatorFlags {
    /// Emulator configuration with `demo` defaults when `demo` is true.
    fn emulator_config(&self, demo: bool) -> anyhow::Result<EmulatorConfig> {
        let fail_rate = self.fail_rate.unwrap_or(if demo { 0.2 } else { 0.0 });
        for (name, rate) in [
            ("--fail-rate", fail_rate),
            ("--rate-limit-rate", self.rate_limit_rate),
            ("--commit-then-fail-rate", self.commit_then_fail_rate),
        ] {
            anyhow::ensure!(
                (0.0..=1.0).contains(&rate),
                "{name} must be between 0 and 1, got {rate}"
            );
        }
        anyhow::ensure!(
            self.churn_per_minute <= emulator::MAX_CHURN_PER_MINUTE,
            "--churn-per-minute must be at most {}, got {}",
            emulator::MAX_CHURN_PER_MINUTE,
            self.churn_per_minute
        );
        let insights_lag_ms = self.insights_lag_ms.unwrap_or(if demo { 2000 } else { 0 });
        anyhow::ensure!(
            insights_lag_ms <= emulator::MAX_INSIGHTS_LAG_MS,
            "--insights-lag-ms must be at most {}, got {insights_lag_ms}",
            emulator::MAX_INSIGHTS_LAG_MS
        );
        let outage_every_s = self.outage_every.unwrap_or(if demo { 600 } else { 0 });
        let outage_for_s = self.outage_for.unwrap_or(if demo { 100 } else { 0 });
        Ok(EmulatorConfig {
            api_key: self.api_key.clone(),
            users: self.users as usize,
            groups: self.groups as usize,
            seed: self.seed,
            multi_tenant: self.multi_tenant,
            faults: FaultConfig {
                fail_rate,
                outage_every_s,
                outage_for_s,
                latency_ms: self.latency_ms,
                rate_limit_rate: self.rate_limit_rate,
                commit_then_fail_rate: self.commit_then_fail_rate,
                insights: !self.no_insights,
                insights_lag_ms,
                churn_per_minute: self.churn_per_minute,
                ..FaultConfig::default()
            },
        })
    }
}

fn main() {
    let cli = Cli::parse();
    let result = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("while starting the async runtime")
        .and_then(|runtime| runtime.block_on(run(cli)));
    if let Err(e) = result {
        // One line: what failed and why, each cause after a colon; never a backtrace.
        eprintln!("jumpcloud-scim: {e:#}");
        std::process::exit(1);
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Emulator(flags) => {
            let _log = logging::init(LogFormat::Text, "info");
            run_emulator(flags).await
        }
        Command::Demo(flags) => {
            let _log = logging::init(LogFormat::Text, "info");
            run_demo(flags).await
        }
        Command::Serve { config } => run_serve(config.as_deref()).await,
        Command::Check { config } => {
            let ok = run_check(config.as_deref()).await?;
            std::process::exit(if ok { 0 } else { 1 });
        }
        Command::HashPassword => {
            let mut line = String::new();
            std::io::stdin()
                .read_line(&mut line)
                .context("while reading the password from standard input")?;
            let password = line.trim_end_matches(['\r', '\n']);
            anyhow::ensure!(
                !password.is_empty(),
                "no password on standard input: pipe one in, e.g. `printf %s \"$PW\" | jumpcloud-scim hash-password`"
            );
            let phc = jumpcloud_scim::auth::hash_password(password).map_err(anyhow::Error::msg)?;
            println!("{phc}");
            Ok(())
        }
        Command::Healthcheck { config } => {
            let ok = run_healthcheck(config.as_deref()).await;
            std::process::exit(if ok { 0 } else { 1 });
        }
    }
}

async fn run_serve(path: Option<&std::path::Path>) -> anyhow::Result<()> {
    // Logging needs the configured format, and loading may warn: load first, then log the warnings.
    let loaded = Config::load(path).context("while loading the configuration")?;
    let _log = logging::init(loaded.config.log.format, &loaded.config.log.level);
    for w in &loaded.warnings {
        tracing::warn!("{w}");
    }
    let config = loaded.config.clone();
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("while binding {}", config.listen))?;
    println!("listening on http://{}", listener.local_addr()?);
    let secrets = jumpcloud_scim::rotation::SecretSource {
        config_file: path.map(std::path::Path::to_path_buf),
        secret_files: loaded.secret_files,
    };
    app::serve_with(listener, config, Some(secrets), shutdown_signal())
        .await
        .context("while serving")
}

async fn run_demo(flags: EmulatorFlags) -> anyhow::Result<()> {
    let emu_config = flags.emulator_config(true)?;
    let api_key = emu_config.api_key.clone();
    let emulator = emulator::spawn(emu_config)
        .await
        .context("while starting the emulator")?;
    println!("JumpCloud emulator: {}", emulator.base_url());
    let token = flags.token.clone().unwrap_or_else(random_token);
    let mut config = Config {
        listen: flags
            .listen
            .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8080))),
        ..Config::default()
    };
    config.jumpcloud.url = emulator.base_url();
    config.jumpcloud.api_key = Some(Secret::new(api_key));
    config.auth.tokens = vec![TokenConfig {
        token: Some(Secret::new(token.clone())),
        token_sha256: None,
        name: Some("demo".into()),
        scope: Scope::Provision,
    }];
    config.validate().context("while configuring the demo")?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("while binding {}", config.listen))?;
    let local = listener.local_addr()?;
    config.public_url = Some(format!("http://{local}"));
    println!("listening on http://{local}");
    println!("SCIM base URL: http://{local}/scim/v2");
    println!("Bearer token: {token}");
    println!(
        "Try: curl -s -H 'Authorization: Bearer {token}' 'http://{local}/scim/v2/Users?startIndex=1&count=2'"
    );
    app::serve(listener, config, shutdown_signal())
        .await
        .context("while serving")?;
    drop(emulator);
    Ok(())
}

/// 32 hex digits from the operating system's randomness.
fn random_token() -> String {
    use rand::TryRngCore;
    let mut bytes = [0u8; 16];
    let _ = rand::rngs::OsRng.try_fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Try the configured JumpCloud URL and key; print what was found. Needs only the `jumpcloud` part.
async fn run_check(path: Option<&std::path::Path>) -> anyhow::Result<bool> {
    let loaded = Config::load_unchecked(path).context("while loading the configuration")?;
    let _log = logging::init(LogFormat::Text, "warn");
    for w in &loaded.warnings {
        tracing::warn!("{w}");
    }
    let report = jumpcloud_scim::check::run(&loaded.config).await;
    println!("{}", report.render());
    Ok(report.ok())
}

/// Ask the running service's `/healthz` at the configured `listen`.
async fn run_healthcheck(path: Option<&std::path::Path>) -> bool {
    let listen = match Config::load_unchecked(path) {
        Ok(l) => l.config.listen,
        Err(e) => {
            eprintln!("healthcheck: {e}");
            return false;
        }
    };
    let host = if listen.ip().is_unspecified() {
        SocketAddr::from(([127, 0, 0, 1], listen.port()))
    } else {
        listen
    };
    let Ok(client) = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(5))
        .build()
    else {
        return false;
    };
    match client.get(format!("http://{host}/healthz")).send().await {
        Ok(r) if r.status().is_success() => true,
        Ok(r) => {
            eprintln!("healthcheck: /healthz answered {}", r.status());
            false
        }
        Err(e) => {
            eprintln!("healthcheck: {e}");
            false
        }
    }
}

async fn run_emulator(flags: EmulatorFlags) -> anyhow::Result<()> {
    let config = flags.emulator_config(false)?;
    let addr = flags
        .listen
        .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8081)));
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("while binding the emulator to {addr}"))?;
    let local = listener.local_addr()?;
    println!("listening on http://{local}");
    emulator::serve(listener, config, shutdown_signal())
        .await
        .context("while serving the emulator")
}

/// Resolves on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
