//! How fast the JumpCloud emulator seeds a large organisation and serves a page from deep inside it.
//!
//! Seeds 100 000 users (or the count given as the first argument), serves them in-process on
//! 127.0.0.1:0, then asks `GET /api/systemusers?limit=100&skip=<half>&sort=_id` 200 times over one
//! keep-alive connection and prints mean, p50 and p99 of the round trip.
//!
//! ```sh
//! cargo run --release --example emulator_bench
//! ```

use std::time::Duration;

use jumpcloud_scim::emulator::{self, EmulatorConfig};
use tokio::time::Instant;

const ROUNDS: usize = 200;
const WARM_UP: usize = 20;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let users: usize = match std::env::args().nth(1) {
        Some(n) => n.parse()?,
        None => 100_000,
    };
    let config = EmulatorConfig {
        users,
        ..EmulatorConfig::default()
    };
    let key = config.api_key.clone();
    let groups = config.groups;

    let started = Instant::now();
    let emu = emulator::spawn(config).await?;
    let seeded = started.elapsed();
    println!(
        "seeded {users} users and {groups} groups (+ All Users) in {:.3} s",
        seeded.as_secs_f64()
    );

    let skip = users / 2;
    let url = format!(
        "{}/api/systemusers?limit=100&skip={skip}&sort=_id",
        emu.base_url()
    );
    let client = reqwest::Client::builder().no_proxy().build()?;

    let first: serde_json::Value = client
        .get(&url)
        .header("x-api-key", &key)
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let page = first["results"].as_array().map_or(0, Vec::len);
    println!(
        "page check: totalCount {}, {page} results",
        first["totalCount"]
    );

    for _ in 0..WARM_UP {
        client
            .get(&url)
            .header("x-api-key", &key)
            .send()
            .await?
            .bytes()
            .await?;
    }
    let mut samples: Vec<Duration> = Vec::with_capacity(ROUNDS);
    let mut bytes = 0;
    for _ in 0..ROUNDS {
        let t = Instant::now();
        let body = client
            .get(&url)
            .header("x-api-key", &key)
            .send()
            .await?
            .error_for_status()?
            .bytes()
            .await?;
        samples.push(t.elapsed());
        bytes = body.len();
    }
    samples.sort();
    let mean = samples.iter().sum::<Duration>() / ROUNDS as u32;
    let pct = |p: f64| samples[((ROUNDS as f64 * p).ceil() as usize).clamp(1, ROUNDS) - 1];
    println!(
        "GET /api/systemusers?limit=100&skip={skip}&sort=_id x{ROUNDS} ({bytes} bytes): mean {:.3} ms, p50 {:.3} ms, p99 {:.3} ms",
        ms(mean),
        ms(pct(0.50)),
        ms(pct(0.99)),
    );
    emu.shutdown().await?;
    Ok(())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
