//! What the load programs share (`examples/load.rs`, `examples/replicas.rs`): concurrent GETs round-robin
//! over a list of URLs for a bounded time, their latencies, and percentiles of them. Each program formats a
//! [`Sample`] its own way.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::time::Instant;

/// Requests one task makes at most in one [`sample`], whatever the time allows.
const MAX_PER_TASK: usize = 200_000;

/// The `p` quantile of `sorted` (zero for none).
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Latencies of the requests answered, the failures, and the time they took.
#[derive(Default)]
pub struct Sample {
    pub lat: Vec<Duration>,
    pub errors: usize,
    pub elapsed: Duration,
}

impl Sample {
    pub fn extend(&mut self, other: Sample) {
        self.lat.extend(other.lat);
        self.errors += other.errors;
        self.elapsed += other.elapsed;
    }

    pub fn rps(&self) -> f64 {
        self.lat.len() as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// Requests/s, p50 and p99 in milliseconds.
    pub fn figures(&self) -> (f64, f64, f64) {
        let mut lat = self.lat.clone();
        lat.sort();
        (
            self.rps(),
            percentile(&lat, 0.5).as_secs_f64() * 1e3,
            percentile(&lat, 0.99).as_secs_f64() * 1e3,
        )
    }
}

/// GET `urls` round-robin, with `token` as the bearer, from `concurrency` tasks for `run_for` (at most
/// [`MAX_PER_TASK`] requests a task).
pub async fn sample(
    client: &reqwest::Client,
    urls: &Arc<Vec<String>>,
    run_for: Duration,
    concurrency: usize,
    token: &'static str,
) -> Sample {
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let deadline = started + run_for;
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (client, urls, next) = (client.clone(), urls.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut errors = 0usize;
            while Instant::now() < deadline && lat.len() < MAX_PER_TASK {
                let i = next.fetch_add(1, Ordering::Relaxed) % urls.len();
                let t = Instant::now();
                match client.get(&urls[i]).bearer_auth(token).send().await {
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
        let (l, e) = t.await.expect("a load task");
        out.lat.extend(l);
        out.errors += e;
    }
    out.elapsed = started.elapsed();
    out
}

/// A query-string value, percent-encoded (everything but RFC 3986's unreserved characters).
pub fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
