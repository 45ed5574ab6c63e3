//! How long a start-up from the persisted snapshot takes: read a seeded directory from a local emulator with
//! the real client, build and save its snapshot, then time `load` and `restore`, the work a restart does
//! before it can serve.
//!
//! ```text
//! cargo run --release --example persist_bench [USERS] [GROUPS]     # defaults: 100000 users, 200 groups
//! ```

use tokio::time::Instant;

use jiff::Timestamp;
use jumpcloud_scim::cache::{BuildOptions, Data, Snapshot, persist, refresher};
use jumpcloud_scim::emulator::{self, EmulatorConfig};
use jumpcloud_scim::jumpcloud::{JcClient, JcClientConfig};
use jumpcloud_scim::mapping::MappingOptions;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let users: usize = args
        .next()
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(100_000);
    let groups: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(200);

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

    let t = Instant::now();
    let loaded = persist::load(&dir)?.ok_or("the file just saved is missing")?;
    let load_time = t.elapsed();
    let t = Instant::now();
    let restored = persist::restore(loaded, &opts);
    let restore_time = t.elapsed();
    println!(
        "load {load_time:.2?} + restore {restore_time:.2?} = {:.2?} for {} users",
        load_time + restore_time,
        restored.user_count()
    );
    let same = snapshot
        .users
        .values()
        .all(|e| restored.users.get(&e.id).is_some_and(|r| r.etag == e.etag));
    println!("every user's ETag survived: {same}");

    std::fs::remove_dir_all(&dir)?;
    emu.shutdown().await?;
    Ok(())
}
