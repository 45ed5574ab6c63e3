//! Memory: what a snapshot holds, part by part, counted by a global allocator that tracks live bytes.
//!
//! `cargo run --release --example memory -- [USERS] [parts|scan|walk]` (default 100000):
//! - `parts`: fetch the emulator's directory with the real client, build a snapshot, and take it apart,
//!   printing the live bytes per user of each part (the table in `src/cache/snapshot/mod.rs`);
//! - `scan`: the time of scan filters over the built snapshot, without HTTP;
//! - otherwise: start the service in front of the emulator (`walk`: page through every user first), time
//!   two scan filters over HTTP, and print live heap and resident memory per user.
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::Duration;

use jumpcloud_scim::auth::Scope;
use jumpcloud_scim::config::{Config, Secret, TokenConfig};
use jumpcloud_scim::emulator::{self, EmulatorConfig};

/// The system allocator, counting the bytes live.
struct Counting;
static LIVE: AtomicIsize = AtomicIsize::new(0);
// SAFETY: every call is passed to the system allocator unchanged; only a counter is updated beside it.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        LIVE.fetch_add(l.size() as isize, Ordering::Relaxed);
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size() as isize, Ordering::Relaxed);
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        LIVE.fetch_add(n as isize - l.size() as isize, Ordering::Relaxed);
        unsafe { System.realloc(p, l, n) }
    }
}
#[global_allocator]
static A: Counting = Counting;

fn rss() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|k| k.parse::<f64>().ok())
        })
        .unwrap_or(0.0)
        / 1e3
}
fn live() -> f64 {
    LIVE.load(Ordering::Relaxed) as f64 / 1e6
}

#[tokio::main]
async fn main() {
    let users: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(100_000);
    let emu = emulator::spawn(EmulatorConfig {
        users,
        groups: 200,
        ..EmulatorConfig::default()
    })
    .await
    .unwrap();
    let (l0, r0) = (live(), rss());
    println!("seeded: live {l0:.0} MB rss {r0:.0} MB");
    if std::env::args().nth(2).as_deref() == Some("parts") {
        parts(&emu.base_url(), users).await;
        return;
    }
    if std::env::args().nth(2).as_deref() == Some("scan") {
        scan_time(&emu.base_url()).await;
        return;
    }
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
    config.auth.tokens = vec![TokenConfig {
        token: Some(Secret::new("load-token-0123456789")),
        token_sha256: None,
        name: None,
        scope: Scope::Provision,
    }];
    tokio::spawn(jumpcloud_scim::app::serve(
        listener,
        config,
        std::future::pending(),
    ));
    let client = reqwest::Client::new();
    loop {
        if let Ok(r) = client.get(format!("http://{addr}/readyz")).send().await
            && r.status() == 200
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    if std::env::args().nth(2).as_deref() == Some("walk") {
        let mut start = 1;
        while start <= users {
            let _ = client
                .get(format!(
                    "http://{addr}/scim/v2/Users?startIndex={start}&count=100"
                ))
                .bearer_auth("load-token-0123456789")
                .send()
                .await
                .unwrap()
                .bytes()
                .await;
            start += 100;
        }
        println!("walked");
    }
    for f in ["userName%20co%20%229999%22", "title%20eq%20%22Engineer%22"] {
        for _ in 0..3 {
            let t = tokio::time::Instant::now();
            let r = client
                .get(format!("http://{addr}/scim/v2/Users?count=10&filter={f}"))
                .bearer_auth("load-token-0123456789")
                .send()
                .await
                .unwrap();
            let st = r.status();
            let _ = r.bytes().await;
            println!("{f}: {st} {:.1} ms", t.elapsed().as_secs_f64() * 1e3);
        }
    }
    let (l1, r1) = (live(), rss());
    println!(
        "ready: service live {:.0} MB ({:.1} KB/user) rss {:.0} MB ({:.1} KB/user)",
        l1 - l0,
        (l1 - l0) * 1e3 / users as f64,
        r1 - r0,
        (r1 - r0) * 1e3 / users as f64
    );
}

async fn parts(url: &str, users: usize) {
    use jumpcloud_scim::cache::snapshot::{Data, Snapshot};
    use jumpcloud_scim::jumpcloud::client::{JcClient, JcClientConfig};
    let client = JcClient::new(JcClientConfig::new(url, "demo-key")).unwrap();
    let per = |a: f64, b: f64| {
        format!(
            "{:.0} MB = {:.2} KB/user",
            a - b,
            (a - b) * 1e3 / users as f64
        )
    };
    let l0 = live();
    let raw = jumpcloud_scim::cache::refresher::fetch(&client)
        .await
        .unwrap();
    let l1 = live();
    println!("raw directory: {}", per(l1, l0));
    let data = Data::from_raw(raw);
    let l2 = live();
    println!("Data (raw dropped): {}", per(l2, l0));
    let opts = build_options();
    let now = jiff::Timestamp::now();
    let mut snap = Snapshot::build(data, 1, now, now, &opts, None, &|_, _| None);
    let l3 = live();
    println!("built snapshot total: {}", per(l3, l0));
    let (mut b, mut x, mut n) = (0usize, 0usize, 0usize);
    let mut t = 0usize;
    for e in snap.users.values() {
        t += e.tape_bytes();
        b += e.bytes.len();
        x += e.extra.as_ref().map_or(0, |v| v.len());
        n += 1;
    }
    println!("  tapes {:.2} KB/user", t as f64 / 1e3 / users as f64);
    println!(
        "  user bytes {:.2} KB/user, extra {:.2} KB/user ({n} users)",
        b as f64 / 1e3 / users as f64,
        x as f64 / 1e3 / users as f64
    );
    let idx = std::mem::take(&mut snap.indexes);
    drop(idx);
    let l4 = live();
    println!("  indexes: {}", per(l3, l4));
    let d = std::mem::take(&mut snap.data.users);
    drop(d);
    let l5 = live();
    println!("  data.users (JcUser): {}", per(l4, l5));
    let d = std::mem::take(&mut snap.data);
    drop(d);
    let l6 = live();
    println!("  rest of data (edges, groups): {}", per(l5, l6));
    let g = std::mem::take(&mut snap.groups);
    drop(g);
    let l7 = live();
    println!("  group entries: {}", per(l6, l7));
    for e in snap.users.values() {
        let _ = e.view();
    }
    let u = std::mem::take(&mut snap.users);
    drop(u);
    let l8 = live();
    println!("  user entries (json+bytes+...): {}", per(l7, l8));
    drop(snap);
    println!("  remaining: {}", per(live(), l0));
}

pub async fn scan_time(url: &str) {
    use jumpcloud_scim::cache::snapshot::{Data, Snapshot};
    use jumpcloud_scim::jumpcloud::client::{JcClient, JcClientConfig};
    use jumpcloud_scim::scim::ResourceKind;
    use jumpcloud_scim::scim::list::{Query, QueryParams};
    let client = JcClient::new(JcClientConfig::new(url, "demo-key")).unwrap();
    let raw = jumpcloud_scim::cache::refresher::fetch(&client)
        .await
        .unwrap();
    let opts = build_options();
    let now = jiff::Timestamp::now();
    let snap = Snapshot::build(Data::from_raw(raw), 1, now, now, &opts, None, &|_, _| None);
    for f in [
        "userName co \"9999\"",
        "title eq \"Engineer\"",
        "name.familyName sw \"Zz\"",
        "active eq false",
    ] {
        let params = QueryParams {
            filter: Some(f.into()),
            count: Some("10".into()),
            ..QueryParams::default()
        };
        let q = Query::parse(&params, ResourceKind::User, 1000).unwrap();
        let _ = jumpcloud_scim::directory::read::list(&snap, ResourceKind::User, &q);
        let t = tokio::time::Instant::now();
        let mut total = 0;
        for _ in 0..10 {
            total = jumpcloud_scim::directory::read::list(&snap, ResourceKind::User, &q).total;
        }
        println!(
            "{f}: {:.1} ms ({total} match)",
            t.elapsed().as_secs_f64() * 100.0
        );
    }
}

/// The options the service builds snapshots with by default, for the builds measured here.
fn build_options() -> jumpcloud_scim::cache::snapshot::BuildOptions {
    jumpcloud_scim::cache::snapshot::BuildOptions {
        mapping: jumpcloud_scim::mapping::MappingOptions {
            username_attribute: "scimUserName".into(),
            external_id_attribute: "scimExternalId".into(),
            scim_base: "http://x/scim/v2".into(),
        },
        directories_as_groups: true,
    }
}
