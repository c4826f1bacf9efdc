//! Runs the conformance suite against every backend: [`MemoryStorage`] in-process,
//! [`EmbeddedStorage`] in a fresh temporary directory per test, and [`EtcdStorage`] on a fresh
//! real etcd per test (compaction is store-wide, so sharing one server between concurrently
//! running tests would make them interfere). Also: the embedded store's durability when the
//! process writing to it is killed.

use storage::Storage;
use storage::conformance;
use storage::embedded::EmbeddedStorage;
use storage::etcd::{EtcdStorage, progress_is_ordered};
use storage::memory::MemoryStorage;
use testkit::etcd::EtcdServer;

/// A fresh etcd and a client for it; the server lives as long as the returned guard.
async fn etcd() -> (EtcdServer, EtcdStorage) {
    let server = match EtcdServer::start() {
        Ok(server) => server,
        Err(error) => panic!("starting etcd: {error:#}"),
    };
    match EtcdStorage::connect(std::slice::from_ref(&server.endpoint)).await {
        Ok(storage) => (server, storage),
        Err(error) => panic!("connecting to {}: {error}", server.endpoint),
    }
}

/// A fresh embedded store; the directory lives as long as the returned guard.
fn embedded() -> (tempfile::TempDir, EmbeddedStorage) {
    let dir = match tempfile::Builder::new().prefix("kaji-conformance-").tempdir() {
        Ok(dir) => dir,
        Err(error) => panic!("tempdir: {error}"),
    };
    match EmbeddedStorage::open(dir.path()) {
        Ok(storage) => (dir, storage),
        Err(error) => panic!("opening the embedded store in {}: {error}", dir.path().display()),
    }
}

/// Behaviours the given etcd server is known to get wrong because of a server bug (so that a
/// Debian 12 etcd 3.4.23 still checks everything else). Newer servers run everything.
async fn server_bugs(storage: &EtcdStorage) -> Vec<&'static str> {
    let version = match storage.server_version().await {
        Ok(version) => version,
        Err(error) => panic!("etcd server version: {error}"),
    };
    if progress_is_ordered(&version) {
        return Vec::new();
    }
    eprintln!(
        "etcd {version} sends requested progress notifications before replayed events \
         (etcd-io/etcd#15220, #17507; fixed in 3.4.31 / 3.5.13): skipping \
         watch_progress_after_replay"
    );
    vec!["watch_progress_after_replay"]
}

/// One test per behaviour and backend, each with its own store and a unique prefix.
macro_rules! behaviours {
    ($($name:ident),* $(,)?) => {
        mod memory {
            use super::*;
            $(
                #[tokio::test]
                async fn $name() {
                    let storage = MemoryStorage::new();
                    conformance::$name(&storage, concat!("/conformance/", stringify!($name), "/"))
                        .await;
                }
            )*
        }
        mod embedded {
            use super::*;
            $(
                #[tokio::test]
                async fn $name() {
                    let (_dir, storage) = embedded();
                    conformance::$name(&storage, concat!("/conformance/", stringify!($name), "/"))
                        .await;
                }
            )*
        }
        mod etcd {
            use super::*;
            $(
                #[tokio::test]
                async fn $name() {
                    let (_server, storage) = etcd().await;
                    if server_bugs(&storage).await.contains(&stringify!($name)) {
                        return;
                    }
                    conformance::$name(&storage, concat!("/conformance/", stringify!($name), "/"))
                        .await;
                }
            )*
        }
    };
}

behaviours!(
    create_and_get,
    revisions,
    update_compare_and_swap,
    delete_semantics,
    list_ordering_and_prefix_isolation,
    list_pagination,
    list_past_revision,
    list_future_revision,
    watch_replay,
    watch_live,
    watch_progress,
    watch_progress_after_replay,
    concurrent_watchers,
    concurrent_compare_and_swap,
    prefix_changed,
    keys_with_a_ttl_expire,
    list_compacted,
    watch_compacted,
);

/// The whole suite in sequence on one store, as other backends would run it.
#[tokio::test]
async fn memory_run_all() {
    let storage = MemoryStorage::new();
    conformance::run_all(&storage, "/conformance/run-all/").await;
    // Two prefixes on one store must not interfere either.
    conformance::run_all(&storage, "/conformance/run-all-2/").await;
}

#[tokio::test]
async fn embedded_run_all() {
    let (_dir, storage) = embedded();
    conformance::run_all(&storage, "/conformance/run-all/").await;
    conformance::run_all(&storage, "/conformance/run-all-2/").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_run_all_multi_thread() {
    let (_dir, storage) = embedded();
    conformance::run_all(&storage, "/conformance/mt/").await;
}

/// The whole suite again on a store reopened from the same directory: history, revisions and
/// the compaction point carry over, and the suite's expectations still hold.
#[tokio::test]
async fn embedded_run_all_after_reopening() {
    let (dir, storage) = embedded();
    conformance::run_all(&storage, "/conformance/before/").await;
    let revision = storage.current_revision().await;
    drop(storage);
    let storage = match EmbeddedStorage::open(dir.path()) {
        Ok(storage) => storage,
        Err(error) => panic!("reopening: {error}"),
    };
    assert_eq!(storage.current_revision().await, revision, "the revision survives");
    conformance::run_all(&storage, "/conformance/after/").await;
}

#[tokio::test]
async fn etcd_run_all() {
    let (_server, storage) = etcd().await;
    let skip = server_bugs(&storage).await;
    conformance::run_all_except(&storage, "/conformance/run-all/", &skip).await;
    let revision = storage.current_revision().await;
    assert!(matches!(revision, Ok(r) if r > 1), "current revision {revision:?}");
}

/// A multi-threaded runtime, where watchers and writers really run in parallel.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_run_all_multi_thread() {
    let storage = MemoryStorage::new();
    conformance::run_all(&storage, "/conformance/mt/").await;
}

#[tokio::test]
async fn etcd_connect_to_nothing_is_unavailable() {
    let endpoint = format!("http://127.0.0.1:{}", testkit::free_port());
    match EtcdStorage::connect(&[endpoint]).await {
        Err(storage::StorageError::Unavailable(_)) => {}
        Err(other) => panic!("expected Unavailable, got {other:?}"),
        Ok(_) => panic!("connected to a port nobody listens on"),
    }
}

/// Where `embedded_crash_child` keeps its store; set only when the SIGKILL test runs it.
const CRASH_CHILD_DIR: &str = "KAJI_EMBEDDED_CRASH_CHILD_DIR";
/// Acknowledged writes after which the SIGKILL test kills the writing process.
const ACKS_BEFORE_KILL: usize = 2000;

/// The value `embedded_crash_child` writes under `key`.
fn crash_value(key: &str) -> bytes::Bytes {
    bytes::Bytes::from(key.repeat(8))
}

/// Not a test of its own: the process that `embedded_acknowledged_writes_survive_sigkill` starts
/// (this test binary, filtered to this test, with [`CRASH_CHILD_DIR`] set) and kills. 32
/// concurrent writers create keys and print `ACK <key> <revision>` for each acknowledged one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_crash_child() {
    let Some(dir) = std::env::var_os(CRASH_CHILD_DIR) else {
        return;
    };
    let storage = match EmbeddedStorage::open(std::path::Path::new(&dir)) {
        Ok(storage) => storage,
        Err(error) => panic!("child: opening the store: {error}"),
    };
    // Bounded, in case nobody kills us.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let writer = |w: usize| {
        let storage = storage.clone();
        async move {
            for i in 0.. {
                if std::time::Instant::now() > deadline {
                    return;
                }
                let key = format!("/crash/w{w:02}/k{i:06}");
                match storage.create(&key, crash_value(&key)).await {
                    Ok(kv) => println!("ACK {key} {}", kv.mod_revision),
                    Err(error) => panic!("child: create {key}: {error}"),
                }
            }
        }
    };
    futures::future::join_all((0..32).map(writer)).await;
}

/// A process writing to the embedded store is killed with SIGKILL in the middle of a stream of
/// concurrent writes; every write it acknowledged is in the store when it is reopened.
#[test]
fn embedded_acknowledged_writes_survive_sigkill() {
    use std::io::BufRead;
    let dir = match tempfile::Builder::new().prefix("kaji-crash-").tempdir() {
        Ok(dir) => dir,
        Err(error) => panic!("tempdir: {error}"),
    };
    let exe = std::env::current_exe().expect("the test binary's path");
    let mut child = std::process::Command::new(exe)
        .args(["--exact", "embedded_crash_child", "--nocapture", "--test-threads=1"])
        .env(CRASH_CHILD_DIR, dir.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("starting the child");
    let stdout = child.stdout.take().expect("the child's stdout");
    let mut acked: Vec<(String, i64)> = Vec::new();
    let mut killed = false;
    // Lines printed before the kill are still read after it: those writes were acknowledged.
    for line in std::io::BufReader::new(stdout).lines() {
        let Ok(line) = line else { break };
        let Some(rest) = line.strip_prefix("ACK ") else {
            continue;
        };
        let mut parts = rest.split(' ');
        let (Some(key), Some(Ok(revision))) = (parts.next(), parts.next().map(str::parse)) else {
            panic!("bad line from the child: {line:?}");
        };
        acked.push((key.to_owned(), revision));
        if acked.len() == ACKS_BEFORE_KILL {
            child.kill().expect("SIGKILL the child");
            killed = true;
        }
    }
    let status = child.wait().expect("reaping the child");
    assert!(
        killed,
        "the child stopped by itself ({status}) after {} writes",
        acked.len()
    );

    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    runtime.block_on(async {
        let storage = match EmbeddedStorage::open(dir.path()) {
            Ok(storage) => storage,
            Err(error) => panic!("reopening after SIGKILL: {error}"),
        };
        for (key, revision) in &acked {
            match storage.get(key).await {
                Ok(Some(kv)) => {
                    assert_eq!(kv.mod_revision, *revision, "revision of {key}");
                    assert_eq!(kv.value, crash_value(key), "value of {key}");
                }
                other => panic!("acknowledged {key} at {revision} is gone after SIGKILL: {other:?}"),
            }
        }
        let current = storage.current_revision().await.expect("current revision");
        let newest = acked.iter().map(|(_, revision)| *revision).max().unwrap_or(0);
        assert!(current >= newest, "current revision {current} < acknowledged {newest}");
        eprintln!(
            "{} acknowledged writes survived SIGKILL; store at revision {current}",
            acked.len()
        );
    });
}
