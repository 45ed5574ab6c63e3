//! Publishing through a real `redis-server` (started on a free port; skipped loudly without one, failing
//! under `JCSCIM_REQUIRE_REAL_PARTS=1` as in CI).

use std::sync::Arc;
use std::time::Duration;

use super::shared::{Fence, Shared, SharedSettings};
use crate::cache::test_support::opts;
use crate::cache::{Data, RawDirectory, RefreshPublished, Store, Touched};
use crate::jumpcloud::JcUser;

/// A `redis-server` on a free port, killed when dropped.
struct Redis(std::process::Child, u16);

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

// A test starting a real part reads PATH and CI's requirement, and waits for the port before any runtime.
#[allow(clippy::disallowed_methods)]
fn redis() -> Option<Redis> {
    let bin = std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join("redis-server"))
            .find(|p| p.is_file())
    });
    let Some(bin) = bin else {
        let how = "install it with: sudo apt-get install -y redis-server";
        assert!(
            std::env::var("JCSCIM_REQUIRE_REAL_PARTS").as_deref() != Ok("1"),
            "redis-server is not installed, and JCSCIM_REQUIRE_REAL_PARTS=1: {how}"
        );
        eprintln!("\n*** SKIPPED: redis-server is not installed. {how} ***\n");
        return None;
    };
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = std::process::Command::new(bin)
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no"])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let redis = Redis(child, port);
    for _ in 0..200 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Some(redis);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("redis-server did not listen on {port}");
}

async fn store() -> Arc<Store> {
    let store = Store::new(opts());
    let ticket = store.begin_refresh().await;
    let at = ticket.started_at();
    let raw = RawDirectory {
        users: vec![JcUser {
            id: "u1".into(),
            username: "alice".into(),
            email: "alice@example.com".into(),
            ..JcUser::default()
        }],
        ..RawDirectory::default()
    };
    match store.publish_refresh(ticket, Data::from_raw(raw), at).await {
        RefreshPublished::Published(_) => Arc::new(store),
        RefreshPublished::HeldBack(r) => panic!("{r}"),
    }
}

fn settings(lease: Duration) -> SharedSettings {
    SharedSettings {
        timeout: Duration::from_millis(500),
        lease,
        keep_versions: 8,
        ryw_wait: Duration::from_secs(2),
        poll: Duration::from_secs(1),
        lock_ttl: Duration::from_secs(10),
        pin_ttl: Duration::from_secs(60),
    }
}

#[tokio::test]
async fn a_publication_slower_than_its_lock_still_shares_its_version() {
    let Some(redis) = redis() else {
        return;
    };
    let url = format!("redis://127.0.0.1:{}", redis.1);
    let store = store().await;
    let shared = Shared::new(
        &url,
        "slow:",
        settings(Duration::from_secs(1)),
        store.clone(),
    )
    .unwrap();
    // The publication takes three times the lock's life (a large refresh on a loaded machine).
    let out = shared
        .publish(Fence::Any, || async {
            tokio::time::sleep(Duration::from_secs(3)).await;
            store
                .publish_write(|d: &mut Data| {
                    let mut u = d.users.get("u1").unwrap().unpack();
                    u.job_title = Some("Slow".into());
                    let mut t = Touched::default();
                    t.users.insert(d.put_user(u));
                    t
                })
                .await
        })
        .await
        .unwrap();
    let published = out.expect("published here");
    // Another replica catches up with Redis's current version: it is that one.
    let elsewhere = Arc::new(Store::new(opts()));
    let other = Shared::new(
        &url,
        "slow:",
        settings(Duration::from_secs(1)),
        elsewhere.clone(),
    )
    .unwrap();
    assert!(
        other.catch_up().await.unwrap(),
        "Redis has no current version"
    );
    assert_eq!(
        elsewhere.load().map(|s| s.version),
        Some(published.version),
        "the slow publication's version was not made current"
    );
    assert_eq!(
        shared.health.wholes(),
        1,
        "shared whole: Redis held no base"
    );
}
