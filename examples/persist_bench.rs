//! How long a start-up from the persisted snapshot takes: read a seeded directory from a local emulator with
//! the real client, build and save its snapshot, then run the service's start-up path (`load_and_publish`)
//! against a fresh store and time it until reads are served, and until writes can proceed (the JumpCloud data
//! behind the restored entries). `load` then `restore`, the path a file from another build takes, is timed
//! too.
//!
//! ```text
//! cargo run --release --example persist_bench [USERS] [GROUPS] [RUNS]   # defaults: 100000 users, 200 groups, 3 runs
//! ```

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use jiff::Timestamp;
use jumpcloud_scim::cache::{BuildOptions, Data, Snapshot, Store, persist, refresher};
use jumpcloud_scim::emulator::{self, EmulatorConfig};
use jumpcloud_scim::jumpcloud::{JcClient, JcClientConfig};
use jumpcloud_scim::mapping::MappingOptions;
use jumpcloud_scim::shutdown::Background;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let users: usize = args
        .next()
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(100_000);
    let groups: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(200);
    let runs: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(3);

    let t = Instant::now();
    let config = EmulatorConfig {
        users,
        groups,
        ..EmulatorConfig::default()
    };
    let api_key = config.api_key.clone();
    let emu = emulator::spawn(config).await?;
    println!(
        "emulator seeded with {users} users, {groups} groups in {:.2?}",
        t.elapsed()
    );

    let client = JcClient::new(JcClientConfig::new(emu.base_url(), api_key))?;
    let t = Instant::now();
    let raw = refresher::fetch(&client).await?;
    println!("fetched with the client in {:.2?}", t.elapsed());

    let opts = BuildOptions {
        mapping: MappingOptions::default(),
        directories_as_groups: true,
    };
    let t = Instant::now();
    let now = Timestamp::now();
    let snapshot = Snapshot::build(Data::from_raw(raw), 42, now, now, &opts, None, &|_, _| None);
    println!(
        "built snapshot: {} users, {} groups in {:.2?}",
        snapshot.user_count(),
        snapshot.group_count(),
        t.elapsed()
    );

    let dir = std::env::temp_dir().join(format!("jcscim-persist-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let t = Instant::now();
    persist::save(&dir, &snapshot, &opts)?;
    let save_time = t.elapsed();
    let size = std::fs::metadata(persist::file_path(&dir))?.len();
    println!(
        "saved {:.1} MiB in {save_time:.2?}",
        size as f64 / (1024.0 * 1024.0)
    );

    for run in 1..=runs {
        let store = Arc::new(Store::new(opts.clone()));
        let t = Instant::now();
        let mut tasks = Background::new();
        let version = persist::load_and_publish(&store, &dir, &mut tasks)
            .await
            .ok_or("the file just saved was not published")?;
        let serving = t.elapsed();
        let complete = store
            .load_complete(Duration::from_secs(60))
            .await
            .ok_or("the restored snapshot never completed")?;
        let writable = t.elapsed();
        let same = snapshot.users.values().all(|e| {
            complete
                .users
                .get(&e.id)
                .is_some_and(|r| r.etag() == e.etag() && r.bytes == e.bytes)
        });
        println!(
            "run {run}: start-up serves version {version} after {serving:.2?}, takes writes after {writable:.2?}; \
             every user's bytes and ETag survived: {same}"
        );
        // A start-up goes on to parse the restored entries' JSON in the background; let that and the drop of
        // this run's store finish, so the next run starts on idle cores as a real start-up does.
        drop((complete, store));
        tokio::time::sleep(Duration::from_secs(15)).await;
        tasks.stop(Duration::from_secs(60)).await;
    }

    let t = Instant::now();
    let loaded = persist::load(&dir)?.ok_or("the file just saved is missing")?;
    let load_time = t.elapsed();
    let t = Instant::now();
    let restored = persist::restore(loaded, &opts);
    let restore_time = t.elapsed();
    println!(
        "load {load_time:.2?} + restore {restore_time:.2?} = {:.2?} for {} users, complete before serving",
        load_time + restore_time,
        restored.user_count()
    );

    std::fs::remove_dir_all(&dir)?;
    emu.shutdown().await?;
    Ok(())
}
