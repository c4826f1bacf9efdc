//! The key-value contract the apiserver stores objects through.
//!
//! Semantics are etcd's, because the Kubernetes API is defined on top of them: one global,
//! monotonically increasing revision; every key carries the revision that created it and the one
//! that last modified it; writes are compare-and-swap on the modification revision; reads and
//! watches can be served at any revision that has not been compacted away. The apiserver maps
//! `metadata.resourceVersion` to the modification revision.
//!
//! Backends: [`etcd::EtcdStorage`] (production, and the path to HA), [`embedded::EmbeddedStorage`]
//! (SQLite in a local directory: one machine, nothing else to run) and [`memory::MemoryStorage`]
//! (in-process; used by unit tests of the layers above). All must pass [`conformance`].

use std::time::Duration;

use bytes::Bytes;
use futures::stream::BoxStream;

pub mod conformance;
pub mod embedded;
pub mod etcd;
pub mod memory;

/// A global store revision (etcd's `revision`). Revisions start at 1; 0 means "current".
pub type Revision = i64;

/// One stored key with its value and revisions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyValue {
    pub key: String,
    pub value: Bytes,
    /// Revision of the write that created this key (since its last deletion).
    pub create_revision: Revision,
    /// Revision of the last write to this key.
    pub mod_revision: Revision,
}

/// A change seen by a watch, in revision order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// The key was created (`prev` is `None`) or modified. `kv.mod_revision` is the event's revision.
    Put { kv: KeyValue, prev: Option<KeyValue> },
    /// The key was deleted at `revision`; `prev` is its last value.
    Delete { prev: KeyValue, revision: Revision },
}

impl Event {
    /// The revision at which this change happened.
    pub fn revision(&self) -> Revision {
        match self {
            Event::Put { kv, .. } => kv.mod_revision,
            Event::Delete { revision, .. } => *revision,
        }
    }

    /// The key this change is about.
    pub fn key(&self) -> &str {
        match self {
            Event::Put { kv, .. } => &kv.key,
            Event::Delete { prev, .. } => &prev.key,
        }
    }
}

/// What a watch stream yields.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WatchItem {
    Event(Event),
    /// Every change up to and including this revision has been delivered (etcd's progress
    /// notification). Sent in answer to [`WatchStream::request_progress`].
    Progress(Revision),
}

/// A range read.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListRequest {
    /// Only keys starting with this prefix.
    pub prefix: String,
    /// Start at this key (inclusive); `None` starts at the beginning of the prefix.
    pub start_key: Option<String>,
    /// At most this many keys; 0 means no limit.
    pub limit: i64,
    /// Read the state as of this revision; 0 means the current revision.
    pub revision: Revision,
}

/// The answer to a [`ListRequest`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListResponse {
    /// Matching keys in ascending key order.
    pub kvs: Vec<KeyValue>,
    /// The revision the read was served at.
    pub revision: Revision,
    /// How many keys in the range (from `start_key`) were not returned because of `limit`.
    pub remaining: i64,
}

/// Errors every backend maps its failures to.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum StorageError {
    #[error("key {0:?} already exists")]
    AlreadyExists(String),
    #[error("key {0:?} not found")]
    NotFound(String),
    /// Compare-and-swap failed: the key's modification revision is not the expected one.
    /// `current` is the stored value (`None` if the key no longer exists).
    #[error("key {key:?} was modified (expected revision {expected})")]
    Conflict {
        key: String,
        expected: Revision,
        current: Option<KeyValue>,
    },
    /// The requested revision is older than the compaction point.
    #[error("revision {requested} has been compacted (oldest available is {compacted})")]
    Compacted { requested: Revision, compacted: Revision },
    /// The requested revision is newer than the store's current revision.
    #[error("revision {requested} is newer than the current revision {current}")]
    FutureRevision { requested: Revision, current: Revision },
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    #[error("storage error: {0}")]
    Internal(String),
}

pub type Result<T, E = StorageError> = std::result::Result<T, E>;

/// A live watch on a key prefix.
#[async_trait::async_trait]
pub trait WatchStream: Send {
    /// The next change or progress notification; `None` when the watch has ended (the caller
    /// re-establishes it from the last revision it saw). A `Compacted` error ends the stream.
    async fn next(&mut self) -> Option<Result<WatchItem>>;
    /// Ask the backend for a [`WatchItem::Progress`] carrying its current revision, delivered
    /// after every event up to that revision.
    async fn request_progress(&mut self) -> Result<()>;
}

/// The storage contract. Keys are `/registry/<resource>/<namespace>/<name>` strings; values are
/// opaque bytes.
#[async_trait::async_trait]
pub trait Storage: Send + Sync + 'static {
    /// Creates `key`; fails with [`StorageError::AlreadyExists`] if it exists.
    async fn create(&self, key: &str, value: Bytes) -> Result<KeyValue> {
        self.create_with_ttl(key, value, None).await
    }
    /// [`Storage::create`]; with a `ttl`, the key expires: see [`Storage::update_with_ttl`].
    async fn create_with_ttl(&self, key: &str, value: Bytes, ttl: Option<Duration>) -> Result<KeyValue>;
    /// The current value of `key`, if any.
    async fn get(&self, key: &str) -> Result<Option<KeyValue>>;
    /// A range read over a prefix, optionally paginated and at a past revision.
    async fn list(&self, request: ListRequest) -> Result<ListResponse>;
    /// Replaces `key` if its modification revision is `expected`; fails with
    /// [`StorageError::Conflict`] otherwise (also when the key is gone).
    async fn update(&self, key: &str, expected: Revision, value: Bytes) -> Result<KeyValue> {
        self.update_with_ttl(key, expected, value, None).await
    }
    /// [`Storage::update`]. With a `ttl`, the key is deleted once `ttl` has passed since this
    /// write, by the store itself: watchers see a [`Event::Delete`] at a revision of its own.
    /// Every write restarts the clock, and a write without a `ttl` keeps the key for good (an
    /// etcd lease, which is what the apiserver's `--event-ttl` uses). A key may outlive its
    /// `ttl` by a little: etcd backends share one lease among the writes of up to a minute (5 %
    /// of the `ttl` at most), as upstream's apiserver does, and etcd rounds a `ttl` up to its
    /// minimum lease TTL (about 2 s).
    async fn update_with_ttl(
        &self,
        key: &str,
        expected: Revision,
        value: Bytes,
        ttl: Option<Duration>,
    ) -> Result<KeyValue>;
    /// Deletes `key`, if `expected` is given only when its modification revision matches.
    /// Returns the deleted value and the revision of the deletion. [`StorageError::NotFound`]
    /// if the key does not exist; [`StorageError::Conflict`] on a revision mismatch.
    async fn delete(&self, key: &str, expected: Option<Revision>) -> Result<(KeyValue, Revision)>;
    /// Watches every key under `prefix`, delivering each change with revision `> after` in
    /// revision order. Fails with [`StorageError::Compacted`] if `after + 1` was compacted.
    async fn watch(&self, prefix: &str, after: Revision) -> Result<Box<dyn WatchStream>>;
    /// The store's current revision (a linearizable read).
    async fn current_revision(&self) -> Result<Revision>;
    /// Discards history before `revision`.
    async fn compact(&self, revision: Revision) -> Result<()>;
    /// Whether any key under `prefix` was created, modified or deleted at a revision in
    /// `(since, at]`. A cache that has applied every change up to `since` uses it to prove itself
    /// current at `at` without trusting progress notifications (see
    /// [`Storage::progress_is_reliable`]). [`StorageError::Compacted`] if `since` is compacted.
    async fn prefix_changed(&self, prefix: &str, since: Revision, at: Revision) -> Result<bool>;
    /// Whether [`WatchStream::request_progress`] answers arrive after every event they cover.
    /// etcd before 3.4.31 / 3.5.13 may answer early (etcd-io/etcd#15220, #17507), so a cache
    /// must not take such an answer as proof that it is current.
    fn progress_is_reliable(&self) -> bool {
        true
    }
}

/// A boxed stream type backends may find handy for implementing [`WatchStream`].
pub type BoxedItems = BoxStream<'static, Result<WatchItem>>;
