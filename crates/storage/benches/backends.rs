//! Storage backends side by side (issue 8), through the `Storage` trait.
//!
//! One run measures, on this machine:
//! 1. creates/s of ~1 KiB values on the embedded store and on a real etcd (Debian's, started by
//!    `testkit`, fsync on), at concurrency 1 and 64, with per-write latency percentiles;
//! 2. the embedded store's size on disk after UPDATES updates spread over OBJECTS objects of
//!    ~1 KiB, with automatic compaction keeping the last 1000 revisions, next to the live data
//!    (keys + values of the current objects); and again after compacting all history.
//!
//! Knobs (environment): KAJI_BENCH_CREATES_1 (1000), KAJI_BENCH_CREATES_64 (20000),
//! KAJI_BENCH_OBJECTS (1000), KAJI_BENCH_UPDATES (100000), KAJI_BENCH_OBJECT_BYTES (1024).
//!
//! Run: `cargo bench -p storage --bench backends`.

use std::path::Path;
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

/// UPDATES updates over OBJECTS objects by 64 workers (each owning its objects, so no
/// conflicts), with automatic compaction; returns the size figures.
async fn disk_size(dir: &Path, objects: usize, updates: usize, size: usize) -> Result<()> {
    let options = EmbeddedOptions {
        retain_revisions: 1000,
        retain_for: Duration::ZERO,
        compaction_interval: Duration::from_secs(1),
        ..EmbeddedOptions::default()
    };
    let store = EmbeddedStorage::open_with(dir, options)?;
    let mut revisions = Vec::with_capacity(objects);
    for i in 0..objects {
        let kv = store
            .create(&format!("/registry/configmaps/bench/cm-{i:05}"), value(size, i as u64))
            .await?;
        revisions.push(kv.mod_revision);
    }
    const WORKERS: usize = 64;
    let started = Instant::now();
    let workers = (0..WORKERS).map(|worker| {
        let store = store.clone();
        let mut mine: Vec<(usize, i64)> = revisions
            .iter()
            .enumerate()
            .filter(|(i, _)| i % WORKERS == worker)
            .map(|(i, revision)| (i, *revision))
            .collect();
        tokio::spawn(async move {
            let mut rng = worker as u64 + 1;
            let mut done = worker;
            while done < updates && !mine.is_empty() {
                rng = rng.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                let slot = usize::try_from(rng >> 33).unwrap_or(0) % mine.len();
                let (i, revision) = mine[slot];
                let key = format!("/registry/configmaps/bench/cm-{i:05}");
                let kv = store.update(&key, revision, value(size, rng)).await?;
                mine[slot].1 = kv.mod_revision;
                done += WORKERS;
            }
            anyhow::Ok(())
        })
    });
    for worker in futures::future::join_all(workers).await {
        worker??;
    }
    let elapsed = started.elapsed();
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
    println!(
        "| embedded, {updates} updates of {objects} objects ({:.0} updates/s at concurrency {WORKERS}), \
         automatic compaction keeping 1000 revisions (lag {}) | {:.2} MiB | {:.2} MiB | {:.2}x |",
        updates as f64 / elapsed.as_secs_f64(),
        store.compaction_lag(),
        mib(kept),
        mib(live),
        kept as f64 / live as f64
    );
    store.compact(current).await?;
    store.settle().await?;
    let bare = store.size_bytes();
    println!(
        "| same, then compacted to the current revision (no history) | {:.2} MiB | {:.2} MiB | {:.2}x |",
        mib(bare),
        mib(live),
        bare as f64 / live as f64
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
    drop(etcd);

    println!();
    println!("| embedded store on disk | size (db + WAL) | live data | ratio |");
    println!("|---|---:|---:|---:|");
    let dir = tempfile::Builder::new().prefix("kaji-bench-size-").tempdir()?;
    disk_size(dir.path(), objects, updates, size).await?;
    println!();
    println!("load average after: {}", load_average());
    Ok(())
}
