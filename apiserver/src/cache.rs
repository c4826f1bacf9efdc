//! The watch cache: one per storage segment (`/registry/pods/`, ...). It holds the current
//! objects and a window of recent events in memory, fed by a single storage watch, so that GETs,
//! LISTs and every client watch are served from memory and etcd sees one watch per resource.
//!
//! Consistency: a read that must be current first learns the store's revision (see
//! `RevisionSource` in `store.rs`) and waits until the cache has caught up to it; an idle cache
//! catches up through the storage watch's progress notifications.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, OnceLock, RwLock};
use std::time::Duration;

use bytes::Bytes;
use serde_json::Value;
use storage::{Event, KeyValue, ListRequest, Revision, Storage, StorageError, WatchItem};
use tokio::sync::{broadcast, mpsc, watch};
use tokio_util::sync::CancellationToken;

use crate::error::ApiError;

/// How many events a cache keeps for watches that resume from an older revision.
const HISTORY_CAPACITY: usize = 20_000;
/// Page size of the initial list, to stay under gRPC message limits.
const LIST_PAGE: i64 = 500;
/// Broadcast buffer per resource; a watcher that falls further behind is closed and resumes
/// from `history`. tokio allocates every slot up front (16 384 slots cost 20 MB across the
/// served resources of an idle apiserver), so the channel is made only when a resource gets
/// its first watcher: most of the ~60 served resources never have one.
const BROADCAST_CAPACITY: usize = 2_048;

/// One object as served: its JSON with `metadata.resourceVersion` set, and what selectors need.
#[derive(Debug)]
pub struct CachedObject {
    pub key: String,
    pub name: String,
    pub namespace: Option<String>,
    pub labels: BTreeMap<String, String>,
    pub value: Value,
    pub json: Bytes,
    pub revision: Revision,
}

impl CachedObject {
    /// Decodes a stored value; `None` if it is not a JSON object (logged: that is corruption).
    pub fn from_kv(kv: &KeyValue) -> Option<Self> {
        let value: Value = match serde_json::from_slice(&kv.value) {
            Ok(value @ Value::Object(_)) => value,
            _ => {
                tracing::error!(key = %kv.key, "stored value is not a JSON object; skipping it");
                return None;
            }
        };
        Some(Self::new(kv.key.clone(), value, kv.mod_revision))
    }

    /// Builds the served form of `value` at `revision`.
    pub fn new(key: String, mut value: Value, revision: Revision) -> Self {
        if let Some(meta) = value.get_mut("metadata").and_then(Value::as_object_mut) {
            meta.insert("resourceVersion".into(), Value::String(revision.to_string()));
        }
        let meta = value.get("metadata");
        let text = |field: &str| {
            meta.and_then(|m| m.get(field))
                .and_then(Value::as_str)
                .map(str::to_string)
        };
        let labels = meta
            .and_then(|m| m.get("labels"))
            .and_then(Value::as_object)
            .map(|labels| {
                labels
                    .iter()
                    .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string())))
                    .collect()
            })
            .unwrap_or_default();
        let json = Bytes::from(serde_json::to_vec(&value).unwrap_or_default());
        Self {
            key,
            name: text("name").unwrap_or_default(),
            namespace: text("namespace"),
            labels,
            value,
            json,
            revision,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventType {
    Added,
    Modified,
    Deleted,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }
}

/// A change as watchers see it; `prev` lets filtered watches turn a change that leaves the
/// filter into DELETED and one that enters it into ADDED.
#[derive(Debug)]
pub struct CachedEvent {
    pub event_type: EventType,
    pub object: Arc<CachedObject>,
    pub prev: Option<Arc<CachedObject>>,
    pub revision: Revision,
    /// The event's JSON watch frame in the stored version, encoded once by the first watcher
    /// that needs it and shared by all the others.
    pub frame: std::sync::OnceLock<Bytes>,
}

/// What the cache broadcasts to its watchers, in revision order.
#[derive(Clone, Debug)]
pub enum Broadcast {
    Event(Arc<CachedEvent>),
    /// The cache is current up to this revision (no events for this resource in between).
    Progress(Revision),
    /// The cache was rebuilt from a fresh list (its watch was compacted): watchers must end.
    Reset,
}

struct Inner {
    objects: BTreeMap<String, Arc<CachedObject>>,
    /// Every change up to this revision is reflected (from events, progress, or proof).
    revision: Revision,
    /// The revision of the last event applied. Events are applied in order and deduplicated
    /// by this, never by `revision`: an early progress notification must not hide an event.
    last_event: Revision,
    history: VecDeque<Arc<CachedEvent>>,
    /// Every event with a revision above this one is in `history`.
    oldest: Revision,
    ready: bool,
}

/// How a watch starts: from the current state or after a revision.
pub enum WatchStart {
    /// Current objects (to send as ADDED), at `revision`.
    State {
        objects: Vec<Arc<CachedObject>>,
        revision: Revision,
    },
    /// Events after the requested revision.
    Replay {
        events: Vec<Arc<CachedEvent>>,
        revision: Revision,
    },
}

/// The watch cache of one storage segment.
pub struct WatchCache {
    prefix: String,
    /// Progress notifications from storage may be trusted (see `Storage::progress_is_reliable`).
    progress_reliable: bool,
    inner: RwLock<Inner>,
    /// Made by the first `watch` (under the read lock); sent to only under the write lock, so
    /// a subscriber never misses an event between its snapshot and its subscription.
    tx: OnceLock<broadcast::Sender<Broadcast>>,
    revision: watch::Sender<Revision>,
    progress: mpsc::Sender<()>,
}

impl WatchCache {
    /// Creates the cache for keys under `prefix` and starts the task that fills it.
    pub fn start(storage: Arc<dyn Storage>, prefix: String, cancel: CancellationToken) -> Arc<Self> {
        let (revision, _) = watch::channel(0);
        let (progress, progress_rx) = mpsc::channel(1);
        let cache = Arc::new(Self {
            prefix,
            progress_reliable: storage.progress_is_reliable(),
            inner: RwLock::new(Inner {
                objects: BTreeMap::new(),
                revision: 0,
                last_event: 0,
                history: VecDeque::new(),
                oldest: 0,
                ready: false,
            }),
            tx: OnceLock::new(),
            revision,
            progress,
        });
        tokio::spawn(reflect(cache.clone(), storage, progress_rx, cancel));
        cache
    }

    /// Sends to the watchers, if any ever subscribed; callers hold the write lock.
    fn broadcast(&self, item: Broadcast) {
        if let Some(tx) = self.tx.get() {
            // No receiver left is fine: the next watcher subscribes afresh.
            let _ = tx.send(item);
        }
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Inner> {
        self.inner.read().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Inner> {
        self.inner.write().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn is_ready(&self) -> bool {
        self.read().ready
    }

    pub fn revision(&self) -> Revision {
        self.read().revision
    }

    pub fn len(&self) -> usize {
        self.read().objects.len()
    }

    pub fn is_empty(&self) -> bool {
        self.read().objects.is_empty()
    }

    /// Waits until the cache has seen revision `at_least`, asking storage for a progress
    /// notification if it is behind. `false` on timeout.
    pub async fn wait_for(&self, at_least: Revision, timeout: Duration) -> bool {
        let mut rx = self.revision.subscribe();
        if *rx.borrow_and_update() >= at_least && self.is_ready() {
            return true;
        }
        if self.progress_reliable {
            let _ = self.progress.try_send(());
        }
        let wait = async {
            loop {
                if *rx.borrow_and_update() >= at_least && self.is_ready() {
                    return true;
                }
                if rx.changed().await.is_err() {
                    return false;
                }
            }
        };
        tokio::time::timeout(timeout, wait).await.unwrap_or(false)
    }

    /// One object and the cache revision.
    pub fn get(&self, key: &str) -> (Option<Arc<CachedObject>>, Revision) {
        let inner = self.read();
        (inner.objects.get(key).cloned(), inner.revision)
    }

    /// Every object whose key starts with `key_prefix`, in key order, and the cache revision.
    pub fn list(&self, key_prefix: &str) -> (Vec<Arc<CachedObject>>, Revision) {
        let inner = self.read();
        let objects = inner
            .objects
            .range(key_prefix.to_string()..)
            .take_while(|(k, _)| k.starts_with(key_prefix))
            .map(|(_, v)| v.clone())
            .collect();
        (objects, inner.revision)
    }

    /// Registers a watcher. `after = None` starts from the current state; `Some(rv)` replays
    /// the events after `rv` (410 Expired if they are no longer all in the window). The
    /// receiver gets everything after the returned start.
    pub fn watch(
        &self,
        key_prefix: &str,
        after: Option<Revision>,
    ) -> Result<(WatchStart, broadcast::Receiver<Broadcast>), ApiError> {
        let inner = self.read();
        // Subscribing under the read lock: writers broadcast under the write lock, so nothing
        // falls between the snapshot and the subscription.
        let rx = self
            .tx
            .get_or_init(|| broadcast::channel(BROADCAST_CAPACITY).0)
            .subscribe();
        let start = match after {
            None => WatchStart::State {
                objects: inner
                    .objects
                    .range(key_prefix.to_string()..)
                    .take_while(|(k, _)| k.starts_with(key_prefix))
                    .map(|(_, v)| v.clone())
                    .collect(),
                revision: inner.revision,
            },
            Some(rv) if rv < inner.oldest => {
                return Err(ApiError::expired(format!(
                    "too old resource version: {rv} ({})",
                    inner.oldest
                )));
            }
            Some(rv) => {
                let first = inner.history.partition_point(|e| e.revision <= rv);
                WatchStart::Replay {
                    events: inner
                        .history
                        .range(first..)
                        .filter(|e| e.object.key.starts_with(key_prefix))
                        .cloned()
                        .collect(),
                    revision: inner.revision.max(rv),
                }
            }
        };
        Ok((start, rx))
    }

    fn replace(&self, objects: Vec<KeyValue>, revision: Revision) {
        let mut inner = self.write();
        let was_ready = inner.ready;
        inner.objects = objects
            .iter()
            .filter_map(CachedObject::from_kv)
            .map(|o| (o.key.clone(), Arc::new(o)))
            .collect();
        inner.revision = revision;
        inner.last_event = revision;
        inner.history.clear();
        inner.oldest = revision;
        inner.ready = true;
        if was_ready {
            self.broadcast(Broadcast::Reset);
        }
        drop(inner);
        self.revision.send_replace(revision);
    }

    fn apply(&self, event: Event) {
        let revision = event.revision();
        let mut inner = self.write();
        if revision <= inner.last_event {
            return;
        }
        inner.last_event = revision;
        let cached = match event {
            Event::Put { kv, .. } => {
                let Some(object) = CachedObject::from_kv(&kv) else {
                    return;
                };
                let object = Arc::new(object);
                let prev = inner.objects.insert(kv.key.clone(), object.clone());
                let event_type = if prev.is_some() {
                    EventType::Modified
                } else {
                    EventType::Added
                };
                CachedEvent {
                    event_type,
                    object,
                    prev,
                    revision,
                    frame: Default::default(),
                }
            }
            Event::Delete { prev, revision } => {
                let Some(last) = inner.objects.remove(&prev.key) else {
                    inner.revision = inner.revision.max(revision);
                    return;
                };
                // Watchers receive the last state with the deletion's revision, as upstream.
                let object = Arc::new(CachedObject::new(last.key.clone(), last.value.clone(), revision));
                CachedEvent {
                    event_type: EventType::Deleted,
                    object,
                    prev: Some(last),
                    revision,
                    frame: Default::default(),
                }
            }
        };
        let cached = Arc::new(cached);
        inner.revision = inner.revision.max(revision);
        inner.history.push_back(cached.clone());
        while inner.history.len() > HISTORY_CAPACITY {
            if let Some(dropped) = inner.history.pop_front() {
                inner.oldest = dropped.revision;
            }
        }
        self.broadcast(Broadcast::Event(cached));
        let current = inner.revision;
        drop(inner);
        self.revision.send_replace(current);
    }

    /// Proves the cache current at `at` by asking storage whether anything under the prefix
    /// changed since the revision the cache reflects; on success the cache moves to `at`.
    pub async fn prove_current(&self, storage: &dyn Storage, at: Revision) -> bool {
        if !self.is_ready() {
            return false;
        }
        let since = self.revision();
        if since >= at {
            return true;
        }
        match storage.prefix_changed(&self.prefix, since, at).await {
            Ok(false) => {
                self.progress_to(at);
                true
            }
            Ok(true) => false,
            Err(error) => {
                tracing::debug!(prefix = %self.prefix, %error, "cannot prove the cache current");
                false
            }
        }
    }

    fn progress_to(&self, revision: Revision) {
        let mut inner = self.write();
        if revision <= inner.revision {
            return;
        }
        inner.revision = revision;
        self.broadcast(Broadcast::Progress(revision));
        drop(inner);
        self.revision.send_replace(revision);
    }
}

async fn list_all(storage: &dyn Storage, prefix: &str) -> Result<(Vec<KeyValue>, Revision), StorageError> {
    let mut all = Vec::new();
    let mut start_key = None;
    let mut revision = 0;
    loop {
        let page = storage
            .list(ListRequest {
                prefix: prefix.to_string(),
                start_key: start_key.take(),
                limit: LIST_PAGE,
                revision,
            })
            .await?;
        revision = page.revision;
        let more = page.remaining > 0;
        if let Some(last) = page.kvs.last() {
            start_key = Some(format!("{}\0", last.key));
        }
        all.extend(page.kvs);
        if !more || start_key.is_none() {
            return Ok((all, revision));
        }
    }
}

/// The task that keeps one cache current: list, then watch from the list's revision; relist
/// when the watch falls behind compaction; re-watch when it ends.
async fn reflect(
    cache: Arc<WatchCache>,
    storage: Arc<dyn Storage>,
    mut progress_rx: mpsc::Receiver<()>,
    cancel: CancellationToken,
) {
    let backoff = Duration::from_millis(500);
    'relist: loop {
        let listed = tokio::select! {
            _ = cancel.cancelled() => return,
            listed = list_all(storage.as_ref(), &cache.prefix) => listed,
        };
        match listed {
            Ok((kvs, revision)) => cache.replace(kvs, revision),
            Err(error) => {
                tracing::warn!(prefix = %cache.prefix, %error, "watch cache list failed; retrying");
                tokio::time::sleep(backoff).await;
                continue 'relist;
            }
        }
        loop {
            let from = cache.revision();
            let mut stream = match storage.watch(&cache.prefix, from).await {
                Ok(stream) => stream,
                Err(StorageError::Compacted { .. }) => continue 'relist,
                Err(error) => {
                    tracing::warn!(prefix = %cache.prefix, %error, "watch cache watch failed; retrying");
                    tokio::time::sleep(backoff).await;
                    continue;
                }
            };
            loop {
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    Some(()) = progress_rx.recv() => {
                        if let Err(error) = stream.request_progress().await {
                            tracing::debug!(%error, "progress request failed");
                        }
                    }
                    item = stream.next() => match item {
                        Some(Ok(WatchItem::Event(event))) => cache.apply(event),
                        Some(Ok(WatchItem::Progress(revision))) if cache.progress_reliable => cache.progress_to(revision),
                        Some(Ok(WatchItem::Progress(_))) => {}
                        Some(Err(StorageError::Compacted { .. })) => continue 'relist,
                        Some(Err(error)) => {
                            tracing::warn!(prefix = %cache.prefix, %error, "watch cache watch broke; re-watching");
                            tokio::time::sleep(backoff).await;
                            break;
                        }
                        None => break,
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use storage::memory::MemoryStorage;

    #[tokio::test]
    async fn follows_storage_and_replays_history() {
        let storage: Arc<dyn Storage> = Arc::new(MemoryStorage::new());
        let put = |name: &str| {
            Bytes::from(
                serde_json::to_vec(&serde_json::json!({"metadata": {"name": name, "namespace": "ns"}})).unwrap(),
            )
        };
        let a = storage.create("/registry/pods/ns/a", put("a")).await.unwrap();
        let cancel = CancellationToken::new();
        let cache = WatchCache::start(storage.clone(), "/registry/pods/".into(), cancel.clone());
        assert!(cache.wait_for(a.mod_revision, Duration::from_secs(5)).await);
        let b = storage.create("/registry/pods/ns/b", put("b")).await.unwrap();
        storage.create("/registry/other/x", put("x")).await.unwrap();
        assert!(cache.wait_for(b.mod_revision, Duration::from_secs(5)).await);
        let (objects, _) = cache.list("/registry/pods/ns/");
        assert_eq!(objects.iter().map(|o| o.name.as_str()).collect::<Vec<_>>(), ["a", "b"]);
        assert_eq!(
            objects[1].value["metadata"]["resourceVersion"],
            b.mod_revision.to_string()
        );
        // A revision written to another prefix is reached through progress notifications.
        let current = storage.current_revision().await.unwrap();
        assert!(cache.wait_for(current, Duration::from_secs(5)).await);
        let (start, _rx) = cache.watch("/registry/pods/", Some(a.mod_revision)).unwrap();
        match start {
            WatchStart::Replay { events, .. } => {
                assert_eq!(events.len(), 1);
                assert_eq!(events[0].object.name, "b");
                assert_eq!(events[0].event_type, EventType::Added);
            }
            WatchStart::State { .. } => panic!("expected a replay"),
        }
        cancel.cancel();
    }

    /// A backend whose progress notifications may not be trusted (like etcd 3.4.23).
    struct UnreliableProgress(MemoryStorage);

    #[async_trait::async_trait]
    impl Storage for UnreliableProgress {
        async fn create_with_ttl(&self, key: &str, value: Bytes, ttl: Option<Duration>) -> storage::Result<KeyValue> {
            self.0.create_with_ttl(key, value, ttl).await
        }
        async fn get(&self, key: &str) -> storage::Result<Option<KeyValue>> {
            self.0.get(key).await
        }
        async fn list(&self, request: ListRequest) -> storage::Result<storage::ListResponse> {
            self.0.list(request).await
        }
        async fn update_with_ttl(
            &self,
            key: &str,
            expected: Revision,
            value: Bytes,
            ttl: Option<Duration>,
        ) -> storage::Result<KeyValue> {
            self.0.update_with_ttl(key, expected, value, ttl).await
        }
        async fn delete(&self, key: &str, expected: Option<Revision>) -> storage::Result<(KeyValue, Revision)> {
            self.0.delete(key, expected).await
        }
        async fn watch(&self, prefix: &str, after: Revision) -> storage::Result<Box<dyn storage::WatchStream>> {
            self.0.watch(prefix, after).await
        }
        async fn current_revision(&self) -> storage::Result<Revision> {
            self.0.current_revision().await
        }
        async fn compact(&self, revision: Revision) -> storage::Result<()> {
            self.0.compact(revision).await
        }
        async fn prefix_changed(&self, prefix: &str, since: Revision, at: Revision) -> storage::Result<bool> {
            self.0.prefix_changed(prefix, since, at).await
        }
        fn progress_is_reliable(&self) -> bool {
            false
        }
    }

    #[tokio::test]
    async fn without_trusted_progress_the_cache_proves_itself_current() {
        let storage: Arc<dyn Storage> = Arc::new(UnreliableProgress(MemoryStorage::new()));
        let cancel = CancellationToken::new();
        let cache = WatchCache::start(storage.clone(), "/registry/pods/".into(), cancel.clone());
        let body = Bytes::from_static(br#"{"metadata":{"name":"x"}}"#);
        assert!(
            cache.wait_for(1, Duration::from_secs(5)).await,
            "the initial list completes"
        );
        let foreign = storage.create("/registry/other/x", body.clone()).await.unwrap();
        // No event for this prefix and no trusted progress: waiting alone does not get there...
        assert!(!cache.wait_for(foreign.mod_revision, Duration::from_millis(200)).await);
        // ...but storage can prove nothing under the prefix changed.
        assert!(cache.prove_current(storage.as_ref(), foreign.mod_revision).await);
        assert_eq!(cache.revision(), foreign.mod_revision);
        // A change under the prefix is never proven away: it must arrive as an event.
        let own = storage.create("/registry/pods/ns/a", body).await.unwrap();
        assert!(cache.wait_for(own.mod_revision, Duration::from_secs(5)).await);
        assert_eq!(cache.list("/registry/pods/").0.len(), 1);
        cancel.cancel();
    }
}
