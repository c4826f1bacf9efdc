//! The embedded backend: etcd's semantics in one SQLite database file, for a single machine.
//!
//! Why SQLite (through `rusqlite`, bundled) rather than `redb`: kine has run k3s clusters on
//! exactly this schema for years (one row per revision: `id` is the global revision, plus
//! `name`, `created`, `deleted`, `create_revision`, `prev_revision`, `value`), so the mapping of
//! etcd's model onto it is proven; WAL mode with `synchronous=FULL` gives fsync'd commits while
//! readers run concurrently on their own connections; and `auto_vacuum=INCREMENTAL` plus
//! `incremental_vacuum` and WAL checkpoints give space back to the file system online, whereas
//! redb only shrinks its file in `compact()`, which needs exclusive access to the database.
//!
//! Layout of the implementation:
//! - [`writer`]: one thread owns the write connection. Writes are queued to it; it drains the
//!   queue, applies every queued operation with its compare-and-swap check in one transaction,
//!   commits once (one fsync: group commit), publishes the events to watchers, then answers
//!   every caller. It also runs automatic compaction, gives space back, and deletes keys whose
//!   ttl has passed (etcd's leases, as far as the apiserver uses them: `--event-ttl`).
//! - [`reads`]: reads on a small pool of read-only connections, each in its own snapshot.
//! - [`watch`]: watchers replay history from the database, then receive live events from the
//!   writer; a watcher registered at published revision `R` replays `(after, R]` and receives
//!   every event after `R` live, so nothing is lost or repeated.
//!
//! Compaction is logical first (the compaction revision is committed, reads below it fail from
//! then on) and physical afterwards, in small transactions interleaved with writes: for every
//! row up to the compaction revision the row it superseded is deleted, and so are tombstones
//! below it. A read at a revision `>= compacted` never needs a deleted row.

mod codec;
mod reads;
mod watch;
mod writer;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, mpsc as std_mpsc};
use std::thread::JoinHandle;
use std::time::Duration;

use bytes::Bytes;
use rusqlite::Connection;
use tokio::sync::oneshot;

use crate::{KeyValue, ListRequest, ListResponse, Result, Revision, Storage, StorageError, WatchStream};
use writer::{Done, Op, Request};

/// The database file inside the store directory.
pub const DB_FILE: &str = "kaji.db";
/// The lock file that keeps a second process from opening the same store.
const LOCK_FILE: &str = "LOCK";

/// Tuning of an [`EmbeddedStorage`]. History is kept for at least `retain_revisions` revisions
/// and at least `retain_for`, whichever is more, so watches can resume from any revision that
/// young (as with the apiserver's compactor on etcd).
#[derive(Clone, Debug)]
pub struct EmbeddedOptions {
    /// Keep at least this many revisions of history (default 1000, kine's figure).
    pub retain_revisions: i64,
    /// Keep at least this much time of history (default 5 minutes).
    pub retain_for: Duration,
    /// How often automatic compaction looks for history to drop (default 30 s); zero disables
    /// automatic compaction ([`Storage::compact`] still works).
    pub compaction_interval: Duration,
    /// Most writes committed in one transaction (default 1024).
    pub max_batch: usize,
    /// Read connections, which is also how many reads run at once (default 8).
    pub readers: usize,
    /// Events a watcher may have queued before it is ended as too slow (default 100 000); its
    /// consumer re-establishes it from the last revision it saw.
    pub watch_queue: usize,
}

impl Default for EmbeddedOptions {
    fn default() -> Self {
        EmbeddedOptions {
            retain_revisions: 1000,
            retain_for: Duration::from_secs(300),
            compaction_interval: Duration::from_secs(30),
            max_batch: 1024,
            readers: 8,
            watch_queue: 100_000,
        }
    }
}

/// Figures for `/metrics`.
pub trait StorageStats: Send + Sync {
    /// Bytes the store occupies on disk (database and write-ahead log).
    fn size_bytes(&self) -> u64;
    /// How many revisions of history are kept: current revision − compaction revision.
    fn compaction_lag(&self) -> i64;
}

/// The embedded backend. Cloning shares the same store; the writer thread stops when the last
/// clone is dropped.
#[derive(Clone)]
pub struct EmbeddedStorage {
    inner: Arc<Inner>,
}

struct Inner {
    shared: Arc<Shared>,
    requests: Option<std_mpsc::Sender<Request>>,
    writer: Option<JoinHandle<()>>,
    // Held (flock) for as long as the store is open; released by the OS if the process dies.
    _lock: File,
}

/// What the writer, the readers and the watches share.
pub(crate) struct Shared {
    db_path: PathBuf,
    readers: reads::Pool,
    /// One per read connection: reads beyond that wait rather than open more connections.
    read_permits: tokio::sync::Semaphore,
    hub: Mutex<watch::Hub>,
    /// The last published revision: every write up to it is committed and was fanned out.
    revision: AtomicI64,
    /// The logical compaction revision (0: never compacted).
    compacted: AtomicI64,
    watch_queue: usize,
}

impl Shared {
    fn hub(&self) -> MutexGuard<'_, watch::Hub> {
        // Nothing panics while holding the lock; the hub stays consistent.
        self.hub.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `f` on a read connection in a blocking thread. `f` gets the revision published
    /// before its snapshot starts, so every write up to it is visible to the snapshot.
    async fn read<T, F>(self: &Arc<Self>, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection, Revision) -> Result<T> + Send + 'static,
    {
        let _permit = self
            .read_permits
            .acquire()
            .await
            .map_err(|_| StorageError::Unavailable("the embedded store is closed".into()))?;
        let current = self.revision.load(Ordering::Acquire);
        let shared = Arc::clone(self);
        tokio::task::spawn_blocking(move || shared.readers.with(|conn| f(conn, current)))
            .await
            .map_err(|error| StorageError::Internal(format!("read task failed: {error}")))?
    }
}

impl EmbeddedStorage {
    /// Opens (creating if needed) the store in directory `dir` with default options.
    pub fn open(dir: &Path) -> Result<Self> {
        Self::open_with(dir, EmbeddedOptions::default())
    }

    /// Opens (creating if needed) the store in directory `dir`. Fails with
    /// [`StorageError::Unavailable`] if another process has it open.
    pub fn open_with(dir: &Path, options: EmbeddedOptions) -> Result<Self> {
        std::fs::create_dir_all(dir)
            .map_err(|e| StorageError::Unavailable(format!("creating {}: {e}", dir.display())))?;
        let lock_path = dir.join(LOCK_FILE);
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| StorageError::Unavailable(format!("opening {}: {e}", lock_path.display())))?;
        lock.try_lock().map_err(|e| {
            StorageError::Unavailable(format!(
                "the store in {} is in use by another process: {e}",
                dir.display()
            ))
        })?;
        let db_path = dir.join(DB_FILE);
        let conn = reads::open_writer(&db_path).map_err(reads::sql_error)?;
        let state = writer::State::load(&conn).map_err(reads::sql_error)?;
        let shared = Arc::new(Shared {
            readers: reads::Pool::new(db_path.clone(), options.readers.clamp(1, 1024)),
            read_permits: tokio::sync::Semaphore::new(options.readers.clamp(1, 1024)),
            db_path,
            hub: Mutex::new(watch::Hub::new(state.revision)),
            revision: AtomicI64::new(state.revision),
            compacted: AtomicI64::new(state.compacted),
            watch_queue: options.watch_queue.max(1),
        });
        let (requests, queue) = std_mpsc::channel();
        let writer = writer::Writer::new(conn, Arc::clone(&shared), options, state);
        let writer = std::thread::Builder::new()
            .name("kaji-store-writer".into())
            .spawn(move || writer.run(queue))
            .map_err(|e| StorageError::Internal(format!("starting the writer thread: {e}")))?;
        tracing::info!(path = %shared.db_path.display(), revision = shared.revision.load(Ordering::Relaxed), "opened the embedded store");
        Ok(EmbeddedStorage {
            inner: Arc::new(Inner {
                shared,
                requests: Some(requests),
                writer: Some(writer),
                _lock: lock,
            }),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.inner.shared.db_path
    }

    /// Bytes on disk: the database file and its write-ahead log.
    pub fn size_bytes(&self) -> u64 {
        let db = &self.inner.shared.db_path;
        let mut wal = db.clone().into_os_string();
        wal.push("-wal");
        [db.as_os_str(), wal.as_os_str()]
            .iter()
            .filter_map(|path| std::fs::metadata(path).ok())
            .map(|meta| meta.len())
            .sum()
    }

    /// Current revision − compaction revision.
    pub fn compaction_lag(&self) -> i64 {
        let shared = &self.inner.shared;
        shared.revision.load(Ordering::Acquire) - shared.compacted.load(Ordering::Acquire)
    }

    /// The logical compaction revision (0 if never compacted).
    pub fn compacted_revision(&self) -> Revision {
        self.inner.shared.compacted.load(Ordering::Acquire)
    }

    /// Waits until the writer has deleted the rows superseded before the compaction revision
    /// and given the space back (for tests and benchmarks).
    pub async fn settle(&self) -> Result<()> {
        self.submit(Op::Settle).await.map(drop)
    }

    async fn submit(&self, op: Op) -> Result<Done> {
        let stopped = || StorageError::Unavailable("the embedded store's writer has stopped".into());
        let (reply, answer) = oneshot::channel();
        let requests = self.inner.requests.as_ref().ok_or_else(stopped)?;
        requests.send(Request { op, reply }).map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

impl StorageStats for EmbeddedStorage {
    fn size_bytes(&self) -> u64 {
        EmbeddedStorage::size_bytes(self)
    }

    fn compaction_lag(&self) -> i64 {
        EmbeddedStorage::compaction_lag(self)
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Closing the queue stops the writer after the writes already queued.
        drop(self.requests.take());
        if let Some(writer) = self.writer.take()
            && writer.join().is_err()
        {
            tracing::error!("the embedded store's writer thread panicked");
        }
    }
}

fn unexpected(done: Done) -> StorageError {
    StorageError::Internal(format!("unexpected writer answer {done:?}"))
}

#[async_trait::async_trait]
impl Storage for EmbeddedStorage {
    async fn create_with_ttl(&self, key: &str, value: Bytes, ttl: Option<Duration>) -> Result<KeyValue> {
        match self
            .submit(Op::Create {
                key: key.to_owned(),
                value,
                ttl,
            })
            .await?
        {
            Done::Put(kv) => Ok(kv),
            other => Err(unexpected(other)),
        }
    }

    async fn get(&self, key: &str) -> Result<Option<KeyValue>> {
        let key = key.to_owned();
        self.inner.shared.read(move |conn, _| reads::get(conn, &key)).await
    }

    async fn list(&self, request: ListRequest) -> Result<ListResponse> {
        self.inner
            .shared
            .read(move |conn, current| reads::list(conn, &request, current))
            .await
    }

    async fn update_with_ttl(
        &self,
        key: &str,
        expected: Revision,
        value: Bytes,
        ttl: Option<Duration>,
    ) -> Result<KeyValue> {
        let op = Op::Update {
            key: key.to_owned(),
            expected,
            value,
            ttl,
        };
        match self.submit(op).await? {
            Done::Put(kv) => Ok(kv),
            other => Err(unexpected(other)),
        }
    }

    async fn delete(&self, key: &str, expected: Option<Revision>) -> Result<(KeyValue, Revision)> {
        let op = Op::Delete {
            key: key.to_owned(),
            expected,
        };
        match self.submit(op).await? {
            Done::Deleted(prev, revision) => Ok((prev, revision)),
            other => Err(unexpected(other)),
        }
    }

    /// Fails with [`StorageError::Compacted`] (`requested` = `after + 1`) if the replay needs
    /// compacted history, right away or as the stream's only item; like etcd, a modification
    /// or deletion made exactly at the compaction revision has lost its previous value and is
    /// `Compacted { requested: c, compacted: c }`. A watch from a future revision just waits.
    async fn watch(&self, prefix: &str, after: Revision) -> Result<Box<dyn WatchStream>> {
        Ok(Box::new(watch::EmbeddedWatch::start(
            &self.inner.shared,
            prefix,
            after,
        )?))
    }

    async fn current_revision(&self) -> Result<Revision> {
        Ok(self.inner.shared.revision.load(Ordering::Acquire))
    }

    /// Like etcd: compacting at or below the last compaction fails with `Compacted`, beyond the
    /// current revision with `FutureRevision`. Revision `revision` itself stays readable.
    async fn compact(&self, revision: Revision) -> Result<()> {
        self.submit(Op::Compact { revision }).await.map(drop)
    }

    async fn prefix_changed(&self, prefix: &str, since: Revision, at: Revision) -> Result<bool> {
        let prefix = prefix.to_owned();
        self.inner
            .shared
            .read(move |conn, _| reads::prefix_changed(conn, &prefix, since, at))
            .await
    }
}

#[cfg(test)]
mod tests;
