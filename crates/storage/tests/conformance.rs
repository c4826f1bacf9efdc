//! Runs the conformance suite against every backend: [`MemoryStorage`] in-process and
//! [`EtcdStorage`] on a fresh real etcd per test (compaction is store-wide, so sharing one
//! server between concurrently running tests would make them interfere).

use storage::Storage;
use storage::conformance;
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
