//! Unit tests of the embedded backend beyond the conformance suite: persistence, locking,
//! physical compaction, automatic compaction, slow watchers.

use std::time::Duration;

use bytes::Bytes;

use super::*;
use crate::{Event, WatchItem};

fn temp() -> tempfile::TempDir {
    match tempfile::Builder::new().prefix("kaji-embedded-").tempdir() {
        Ok(dir) => dir,
        Err(error) => panic!("tempdir: {error}"),
    }
}

fn open(dir: &Path) -> EmbeddedStorage {
    match EmbeddedStorage::open(dir) {
        Ok(storage) => storage,
        Err(error) => panic!("open {}: {error}", dir.display()),
    }
}

fn rows(storage: &EmbeddedStorage) -> i64 {
    let conn = Connection::open(storage.path()).expect("open the database");
    conn.query_row("SELECT COUNT(*) FROM kv", [], |row| row.get(0))
        .expect("count rows")
}

#[tokio::test]
async fn first_write_gets_revision_two() {
    let dir = temp();
    let storage = open(dir.path());
    assert_eq!(storage.current_revision().await, Ok(1));
    let kv = storage.create("/a", Bytes::from_static(b"1")).await;
    assert_eq!(kv.map(|kv| kv.mod_revision), Ok(2));
}

#[tokio::test]
async fn state_survives_reopening() {
    let dir = temp();
    let storage = open(dir.path());
    let a = storage.create("/a", Bytes::from_static(b"1")).await.expect("create a");
    let a2 = storage
        .update("/a", a.mod_revision, Bytes::from_static(b"2"))
        .await
        .expect("update");
    let b = storage.create("/b", Bytes::from_static(b"1")).await.expect("create b");
    let (_, deleted) = storage.delete("/b", None).await.expect("delete b");
    storage.compact(a2.mod_revision).await.expect("compact");
    drop(storage);

    let storage = open(dir.path());
    assert_eq!(storage.current_revision().await, Ok(deleted), "the revision survives");
    assert_eq!(storage.get("/a").await, Ok(Some(a2.clone())));
    assert_eq!(storage.get("/b").await, Ok(None));
    assert_eq!(storage.compacted_revision(), a2.mod_revision);
    let old = ListRequest {
        prefix: "/".into(),
        revision: a.mod_revision,
        ..ListRequest::default()
    };
    assert!(matches!(storage.list(old).await, Err(StorageError::Compacted { .. })));
    let at_b = ListRequest {
        prefix: "/".into(),
        revision: b.mod_revision,
        ..ListRequest::default()
    };
    let listed = storage.list(at_b).await.expect("list at b");
    assert_eq!(listed.kvs.len(), 2, "history above the compaction survives: {listed:?}");
    let next = storage.create("/c", Bytes::new()).await.expect("create c");
    assert_eq!(next.mod_revision, deleted + 1, "revisions go on");
}

#[tokio::test]
async fn a_store_is_opened_by_one_owner_at_a_time() {
    let dir = temp();
    let storage = open(dir.path());
    match EmbeddedStorage::open(dir.path()) {
        Err(StorageError::Unavailable(message)) => assert!(message.contains("in use"), "{message}"),
        Err(other) => panic!("expected Unavailable, got {other:?}"),
        Ok(_) => panic!("opened a store that is in use"),
    }
    drop(storage);
    drop(open(dir.path()));
}

/// Copying the files of a running store is what a power cut leaves behind (the writes were
/// acknowledged, so they are in the fsync'd log): the copy opens with every write.
#[tokio::test]
async fn acknowledged_writes_are_in_the_files_without_a_clean_shutdown() {
    let dir = temp();
    let storage = open(dir.path());
    let mut written = Vec::new();
    for i in 0..50 {
        written.push(
            storage
                .create(&format!("/k{i:02}"), Bytes::from(vec![b'x'; 100]))
                .await
                .expect("create"),
        );
    }
    let copy = temp();
    for file in [DB_FILE.to_string(), format!("{DB_FILE}-wal")] {
        if dir.path().join(&file).exists() {
            std::fs::copy(dir.path().join(&file), copy.path().join(&file)).expect("copy");
        }
    }
    let recovered = open(copy.path());
    let listed = recovered
        .list(ListRequest {
            prefix: "/".into(),
            ..ListRequest::default()
        })
        .await
        .expect("list");
    assert_eq!(listed.kvs, written);
    drop(storage);
}

#[tokio::test]
async fn compaction_deletes_superseded_rows_and_tombstones() {
    let dir = temp();
    let storage = open(dir.path());
    let mut kv = storage.create("/a", Bytes::from_static(b"0")).await.expect("create");
    for i in 1..=20 {
        kv = storage
            .update("/a", kv.mod_revision, Bytes::from(format!("{i}")))
            .await
            .expect("update");
    }
    storage.create("/gone", Bytes::new()).await.expect("create");
    storage.delete("/gone", None).await.expect("delete");
    let last = storage.create("/b", Bytes::new()).await.expect("create b");
    assert_eq!(rows(&storage), 24);
    storage.compact(last.mod_revision).await.expect("compact");
    storage.settle().await.expect("settle");
    assert_eq!(rows(&storage), 2, "only the live rows of /a and /b are left");
    assert_eq!(storage.get("/a").await, Ok(Some(kv)));
    assert_eq!(storage.compaction_lag(), 0);
}

#[tokio::test]
async fn automatic_compaction_keeps_the_configured_history() {
    let dir = temp();
    let options = EmbeddedOptions {
        retain_revisions: 10,
        retain_for: Duration::ZERO,
        compaction_interval: Duration::from_millis(20),
        ..EmbeddedOptions::default()
    };
    let storage = EmbeddedStorage::open_with(dir.path(), options).expect("open");
    let mut kv = storage.create("/a", Bytes::from_static(b"0")).await.expect("create");
    for i in 0..100 {
        kv = storage
            .update("/a", kv.mod_revision, Bytes::from(format!("{i}")))
            .await
            .expect("update");
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while storage.compacted_revision() < kv.mod_revision - 10 {
        assert!(tokio::time::Instant::now() < deadline, "no automatic compaction");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(storage.compaction_lag(), 10);
    storage.settle().await.expect("settle");
    assert!(rows(&storage) <= 11, "rows after compaction: {}", rows(&storage));
    let watch = storage.watch("/", kv.mod_revision - 20).await;
    assert!(matches!(watch.err(), Some(StorageError::Compacted { .. })));
    assert!(storage.size_bytes() > 0);
}

#[tokio::test]
async fn a_slow_watcher_is_ended_not_fed_with_gaps() {
    let dir = temp();
    let options = EmbeddedOptions {
        watch_queue: 4,
        ..EmbeddedOptions::default()
    };
    let storage = EmbeddedStorage::open_with(dir.path(), options).expect("open");
    let mut watch = storage.watch("/", 1).await.expect("watch");
    for i in 0..10 {
        storage.create(&format!("/k{i}"), Bytes::new()).await.expect("create");
    }
    let mut revisions = Vec::new();
    loop {
        match tokio::time::timeout(Duration::from_secs(5), watch.next()).await {
            Ok(Some(Ok(WatchItem::Event(event)))) => revisions.push(event.revision()),
            Ok(None) => break,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(revisions, [2, 3, 4, 5], "the first events, in order, then the end");
}

#[tokio::test]
async fn replay_spans_many_pages_then_goes_live() {
    let dir = temp();
    let storage = open(dir.path());
    let total = watch_page_multiple();
    for i in 0..total {
        storage
            .create(&format!("/p/k{i:05}"), Bytes::new())
            .await
            .expect("create");
        storage
            .create(&format!("/q/k{i:05}"), Bytes::new())
            .await
            .expect("create");
    }
    let mut watch = storage.watch("/p/", 1).await.expect("watch");
    let live = storage.create("/p/live", Bytes::new()).await.expect("create");
    let mut seen = 0;
    let mut last = 1;
    loop {
        match tokio::time::timeout(Duration::from_secs(10), watch.next()).await {
            Ok(Some(Ok(WatchItem::Event(Event::Put { kv, prev: None })))) => {
                assert!(kv.mod_revision > last, "in order");
                last = kv.mod_revision;
                seen += 1;
                if kv == live {
                    break;
                }
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(seen, total + 1);
}

fn watch_page_multiple() -> usize {
    1200
}

/// 2000 updates of ~1 KiB to 10 keys, then compaction of all history: the file and the log
/// shrink back to about the live data (k3s#3660, kine#607: space that is never given back).
#[tokio::test]
async fn compaction_gives_the_space_back() {
    let dir = temp();
    let storage = open(dir.path());
    let mut revisions = Vec::new();
    for i in 0..10 {
        let kv = storage
            .create(&format!("/k{i}"), Bytes::from(vec![b'a'; 1024]))
            .await
            .expect("create");
        revisions.push(kv.mod_revision);
    }
    for round in 0..200u8 {
        for (i, revision) in revisions.iter_mut().enumerate() {
            let value = Bytes::from(vec![b'b'.wrapping_add(round % 20); 1024]);
            *revision = storage
                .update(&format!("/k{i}"), *revision, value)
                .await
                .expect("update")
                .mod_revision;
        }
    }
    let grown = storage.size_bytes();
    assert!(grown > 2_000_000, "2000 revisions of 1 KiB take room: {grown}");
    let current = storage.current_revision().await.expect("revision");
    storage.compact(current).await.expect("compact");
    storage.settle().await.expect("settle");
    let shrunk = storage.size_bytes();
    assert!(shrunk < 100_000, "after compaction: {shrunk} bytes (was {grown})");
    let wal = std::fs::metadata(dir.path().join(format!("{DB_FILE}-wal"))).map_or(0, |meta| meta.len());
    assert_eq!(wal, 0, "the write-ahead log is truncated");
}

/// Values that do not compress to nothing: 1 KiB of pseudo-random lowercase letters.
fn letters(seed: u64) -> Bytes {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..1024)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            b'a' + u8::try_from(state % 26).unwrap_or(0)
        })
        .collect::<Vec<u8>>()
        .into()
}

/// Deleting every other object leaves each page of the survivors half empty once compaction
/// removed the tombstones: SQLite merges a page into its siblings only below a third full, and
/// `incremental_vacuum` only returns pages that became empty, so the store repacks the file.
#[tokio::test]
async fn thinned_pages_are_repacked() {
    let dir = temp();
    let storage = open(dir.path());
    let mut survivors = Vec::new();
    for i in 0..1200u64 {
        let key = format!("/k{i:04}");
        let kv = storage.create(&key, letters(i)).await.expect("create");
        if i % 2 == 0 {
            survivors.push(kv);
        } else {
            storage.delete(&key, Some(kv.mod_revision)).await.expect("delete");
        }
    }
    let current = storage.current_revision().await.expect("revision");
    storage.compact(current).await.expect("compact");
    storage.settle().await.expect("settle");
    let conn = Connection::open(storage.path()).expect("open the database");
    let live: i64 = conn
        .query_row("SELECT SUM(length(name) + length(value)) FROM kv", [], |row| row.get(0))
        .expect("sum the live data");
    // The survivors, and the newest tombstone (kept: it carries the revision).
    assert_eq!(rows(&storage), 601);
    let size = i64::try_from(storage.size_bytes()).unwrap_or(i64::MAX);
    assert!(
        size <= live * 3 / 2,
        "{size} bytes on disk for {live} bytes of live data"
    );
    for kv in survivors {
        assert_eq!(
            storage.get(&kv.key).await,
            Ok(Some(kv.clone())),
            "a repack keeps rows as they were"
        );
        storage
            .update(&kv.key, kv.mod_revision, Bytes::from_static(b"after"))
            .await
            .expect("compare-and-swap on the kept revision");
    }
    let next = storage.create("/new", Bytes::from_static(b"x")).await.expect("create");
    assert!(next.mod_revision > current, "revisions go on from where they were");
}

/// A ttl outlives the process: a key written with one before a restart expires after it, on
/// time, and its expiry row goes with it.
#[tokio::test]
async fn expiry_survives_reopening() {
    let dir = temp();
    let storage = open(dir.path());
    let ttl = Some(Duration::from_millis(1500));
    let kv = storage
        .create_with_ttl("/e", Bytes::from_static(b"1"), ttl)
        .await
        .expect("create with a ttl");
    drop(storage);

    let storage = open(dir.path());
    assert_eq!(storage.get("/e").await, Ok(Some(kv.clone())), "not expired yet");
    let mut watch = storage.watch("/", kv.mod_revision).await.expect("watch");
    let started = std::time::Instant::now();
    let item = tokio::time::timeout(Duration::from_secs(10), watch.next()).await;
    let Ok(Some(Ok(WatchItem::Event(Event::Delete { prev, revision })))) = item else {
        panic!("expected the expiry, got {item:?}");
    };
    assert_eq!((prev, revision), (kv.clone(), kv.mod_revision + 1));
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "expired late: {:?}",
        started.elapsed()
    );
    let conn = Connection::open(storage.path()).expect("open the database");
    let left: i64 = conn
        .query_row("SELECT COUNT(*) FROM expiry", [], |row| row.get(0))
        .expect("count expiry rows");
    assert_eq!(left, 0, "the expiry row is gone with the key");
}
