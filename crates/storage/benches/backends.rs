//! Storage backends side by side (issue 8), through the `Storage` trait.
//!
//! One run measures, on this machine:
//! 1. creates/s of ~1 KiB values on the embedded store and on a real etcd (Debian's, started by
//!    `testkit`, fsync on), at concurrency 1 and 64, with per-write latency percentiles;
//! 2. the size on disk after UPDATES updates spread over OBJECTS objects of ~1 KiB (64 writers):
//!    the embedded store with automatic compaction keeping the last 1000 revisions (and again
//!    after compacting all history), and a fresh etcd compacted to the same point, next to the
//!    live data (keys + values of the current objects).
//!
//! Knobs (environment): KAJI_BENCH_CREATES_1 (1000), KAJI_BENCH_CREATES_64 (20000),
//! KAJI_BENCH_OBJECTS (1000), KAJI_BENCH_UPDATES (100000), KAJI_BENCH_OBJECT_BYTES (1024).
//!
//! Run: `cargo bench -p storage --bench backends`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use storage::embedded::{EmbeddedOptions, EmbeddedStorage};
use storage::etcd::EtcdStorage;
use storage::{ListRequest, Storage};
use testkit::etcd::EtcdServer;

fn knob(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|text| text.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

/// A ~`size`-byte JSON-ish value that differs with `seed`.
fn value(size: usize, seed: u64) -> Bytes {
    let mut state = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    let mut text = String::with_capacity(size);
    text.push_str("{\"data\":\"");
    while text.len() < size.saturating_sub(2) {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        text.push(char::from(b'a' + u8::try_from((state >> 33) % 26).unwrap_or(0)));
    }
    text.push_str("\"}");
    Bytes::from(text)
}

struct Figures {
    per_second: f64,
    p50: Duration,
    p99: Duration,
}

/// `total` creates of distinct keys by `concurrency` workers.
async fn creates(
    storage: Arc<dyn Storage>,
    prefix: &str,
    concurrency: usize,
    total: usize,
    size: usize,
) -> Result<Figures> {
    let started = Instant::now();
    let workers = (0..concurrency).map(|worker| {
        let storage = Arc::clone(&storage);
        let prefix = prefix.to_owned();
        tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut i = worker;
            while i < total {
                let key = format!("{prefix}{i:08}");
                let one = Instant::now();
                storage
                    .create(&key, value(size, i as u64))
                    .await
                    .with_context(|| format!("create {key}"))?;
                latencies.push(one.elapsed());
                i += concurrency;
            }
            anyhow::Ok(latencies)
        })
    });
    let mut latencies = Vec::with_capacity(total);
    for worker in futures::future::join_all(workers).await {
        latencies.extend(worker??);
    }
    let elapsed = started.elapsed();
    latencies.sort();
    let at = |q: f64| {
        latencies
            .get(((latencies.len() as f64 * q) as usize).min(latencies.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    };
    Ok(Figures {
        per_second: total as f64 / elapsed.as_secs_f64(),
        p50: at(0.50),
        p99: at(0.99),
    })
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

/// Live bytes: keys and values of every current object.
async fn live_bytes(storage: &dyn Storage) -> Result<u64> {
    let listed = storage
        .list(ListRequest {
            prefix: "/".into(),
            ..ListRequest::default()
        })
        .await?;
    Ok(listed.kvs.iter().map(|kv| (kv.key.len() + kv.value.len()) as u64).sum())
}

/// Creates `objects` objects, then applies `updates` updates to them from 64 workers (each
/// owning its objects, so no conflicts); returns the updates/s.
async fn update_workload(store: &dyn Storage, objects: usize, updates: usize, size: usize) -> Result<f64> {
    const WORKERS: usize = 64;
    let key = |i: usize| format!("/registry/configmaps/bench/cm-{i:05}");
    let mut owned: Vec<Vec<(usize, i64)>> = vec![Vec::new(); WORKERS];
    for i in 0..objects {
        let kv = store.create(&key(i), value(size, i as u64)).await?;
        owned[i % WORKERS].push((i, kv.mod_revision));
    }
    let started = Instant::now();
    let workers = owned.into_iter().enumerate().map(|(worker, mut mine)| async move {
        let mut rng = worker as u64 + 1;
        let mut done = worker;
        while done < updates && !mine.is_empty() {
            rng = rng.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let slot = usize::try_from(rng >> 33).unwrap_or(0) % mine.len();
            let (i, revision) = mine[slot];
            let kv = store.update(&key(i), revision, value(size, rng)).await?;
            mine[slot].1 = kv.mod_revision;
            done += WORKERS;
        }
        anyhow::Ok(())
    });
    for worker in futures::future::join_all(workers).await {
        worker?;
    }
    Ok(updates as f64 / started.elapsed().as_secs_f64())
}

/// The on-disk size after the update workload: the embedded store with its automatic
/// compaction keeping 1000 revisions, and etcd compacted to the same point.
async fn disk_size(etcd_endpoint: &str, objects: usize, updates: usize, size: usize) -> Result<()> {
    let dir = tempfile::Builder::new().prefix("kaji-bench-size-").tempdir()?;
    let options = EmbeddedOptions {
        retain_revisions: 1000,
        retain_for: Duration::ZERO,
        compaction_interval: Duration::from_secs(1),
        ..EmbeddedOptions::default()
    };
    let store = EmbeddedStorage::open_with(dir.path(), options)?;
    let rate = update_workload(&store, objects, updates, size).await?;
    let current = store.current_revision().await?;
    // Let automatic compaction catch up with the end of the run, then finish its deletions.
    let deadline = Instant::now() + Duration::from_secs(30);
    while store.compaction_lag() > 1000 {
        if Instant::now() > deadline {
            bail!("automatic compaction did not catch up: lag {}", store.compaction_lag());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    store.settle().await?;
    let live = live_bytes(&store).await?;
    let kept = store.size_bytes();
    let ratio = |bytes: u64| bytes as f64 / live as f64;
    println!(
        "| embedded: automatic compaction keeping 1000 revisions (lag {}) | {rate:.0} | {:.2} MiB | {:.2} MiB | {:.2}x |",
        store.compaction_lag(),
        mib(kept),
        mib(live),
        ratio(kept)
    );
    store.compact(current).await?;
    store.settle().await?;
    let bare = store.size_bytes();
    println!(
        "| embedded: then compacted to the current revision (no history) | | {:.2} MiB | {:.2} MiB | {:.2}x |",
        mib(bare),
        mib(live),
        ratio(bare)
    );
    drop(store);

    let etcd = EtcdStorage::connect(&[etcd_endpoint.to_owned()]).await?;
    let rate = update_workload(&etcd, objects, updates, size).await?;
    let current = etcd.current_revision().await?;
    etcd.compact(current - 1000).await?;
    let mut client = etcd_client::Client::connect([etcd_endpoint], None).await?;
    let status = client.status().await?;
    let (file, in_use) = (status.db_size() as u64, status.raft_used_db_size() as u64);
    println!(
        "| etcd: compacted to 1000 revisions before the end, no defragmentation | {rate:.0} | {:.2} MiB ({:.2} MiB in use) | {:.2} MiB | {:.2}x |",
        mib(file),
        mib(in_use),
        mib(live),
        ratio(file)
    );
    Ok(())
}

#[tokio::main]
async fn main() -> Result<()> {
    let creates_1 = knob("KAJI_BENCH_CREATES_1", 1000);
    let creates_64 = knob("KAJI_BENCH_CREATES_64", 20_000);
    let objects = knob("KAJI_BENCH_OBJECTS", 1000);
    let updates = knob("KAJI_BENCH_UPDATES", 100_000);
    let size = knob("KAJI_BENCH_OBJECT_BYTES", 1024);
    println!("load average before: {}", load_average());

    let etcd = EtcdServer::start()?;
    let etcd_storage: Arc<dyn Storage> = Arc::new(EtcdStorage::connect(std::slice::from_ref(&etcd.endpoint)).await?);
    let etcd_version = EtcdStorage::connect(std::slice::from_ref(&etcd.endpoint))
        .await?
        .server_version()
        .await?;
    let dir = tempfile::Builder::new().prefix("kaji-bench-embedded-").tempdir()?;
    let embedded: Arc<dyn Storage> = Arc::new(EmbeddedStorage::open(dir.path())?);

    println!();
    println!("| backend | concurrency | creates | creates/s | p50 | p99 |");
    println!("|---|---:|---:|---:|---:|---:|");
    for (concurrency, total) in [(1, creates_1), (64, creates_64)] {
        for (name, storage) in [
            ("embedded (SQLite)", &embedded),
            (&*format!("etcd {etcd_version}"), &etcd_storage),
        ] {
            let prefix = format!("/bench/c{concurrency}/");
            let figures = creates(Arc::clone(storage), &prefix, concurrency, total, size).await?;
            println!(
                "| {name} | {concurrency} | {total} | {:.0} | {:.2} ms | {:.2} ms |",
                figures.per_second,
                figures.p50.as_secs_f64() * 1000.0,
                figures.p99.as_secs_f64() * 1000.0
            );
        }
    }
    drop(embedded);
    drop(etcd_storage);

    println!();
    println!("{updates} updates of {objects} objects of ~{size} bytes, at concurrency 64:");
    println!();
    println!("| store | updates/s | on disk | live data | ratio |");
    println!("|---|---:|---:|---:|---:|");
    let fresh_etcd = EtcdServer::start()?;
    disk_size(&fresh_etcd.endpoint, objects, updates, size).await?;
    drop(fresh_etcd);
    drop(etcd);
    println!();
    println!("load average after: {}", load_average());
    Ok(())
}
