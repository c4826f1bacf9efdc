//! An in-process backend with etcd's semantics, for tests of the layers above.
//!
//! This is a real backend, not a mock: it keeps a global revision counter, the current keys, and
//! an event history that serves reads at past revisions and watch replays until it is compacted.
//! It passes the same [`crate::conformance`] suite as [`crate::etcd::EtcdStorage`].
//!
//! Everything lives behind one `std::sync::Mutex` that is never held across an `.await`, so every
//! operation is atomic and watchers are fed while the lock is held: a watcher registered under
//! the lock after replaying history cannot miss or reorder a write.
//!
//! A write with a ttl spawns a timer task on the caller's tokio runtime that deletes the key when
//! the ttl has passed, unless the key was written again (its modification revision moved).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::mpsc;

use crate::{
    Event, KeyValue, ListRequest, ListResponse, Result, Revision, Storage, StorageError, WatchItem, WatchStream,
};

/// The in-process backend. Cloning shares the same store.
#[derive(Clone, Default)]
pub struct MemoryStorage {
    state: Arc<Mutex<State>>,
}

struct State {
    /// The revision of the last write. A fresh etcd starts at 1, so the first write gets 2.
    revision: Revision,
    /// The last compaction revision (0: never compacted). Reads at revisions below it fail.
    compacted: Revision,
    keys: BTreeMap<String, KeyValue>,
    /// Every change with revision >= `compacted`, in revision order. Put events always carry
    /// `prev` for modifications, so past states can be rebuilt by undoing events.
    history: Vec<Event>,
    watchers: HashMap<u64, Watcher>,
    next_watcher_id: u64,
}

struct Watcher {
    prefix: String,
    after: Revision,
    // Unbounded so a write never blocks (we hold the lock) and a slow watcher never loses events;
    // the queue only grows as long as its consumer lags, which is acceptable for tests.
    tx: mpsc::UnboundedSender<Result<WatchItem>>,
}

impl Default for State {
    fn default() -> Self {
        State {
            revision: 1,
            compacted: 0,
            keys: BTreeMap::new(),
            history: Vec::new(),
            watchers: HashMap::new(),
            next_watcher_id: 0,
        }
    }
}

impl State {
    /// Records a change at the current revision: appends it to the history and fans it out to
    /// every interested watcher (dropping watchers whose stream is gone).
    fn publish(&mut self, event: Event) {
        let revision = event.revision();
        self.watchers.retain(|_, watcher| {
            if revision <= watcher.after || !event.key().starts_with(&watcher.prefix) {
                return true;
            }
            watcher.tx.send(Ok(WatchItem::Event(event.clone()))).is_ok()
        });
        self.history.push(event);
    }

    /// Deletes a key that exists, at a new revision, and publishes that.
    fn remove(&mut self, key: &str) -> Result<(KeyValue, Revision)> {
        let Some(prev) = self.keys.remove(key) else {
            return Err(StorageError::NotFound(key.to_owned()));
        };
        self.revision += 1;
        let revision = self.revision;
        self.publish(Event::Delete {
            prev: prev.clone(),
            revision,
        });
        Ok((prev, revision))
    }

    /// The keys under `prefix` as of `revision` (which must be in `[compacted, self.revision]`),
    /// rebuilt by undoing the history newer than `revision`.
    fn snapshot(&self, prefix: &str, revision: Revision) -> BTreeMap<String, KeyValue> {
        let mut view: BTreeMap<String, KeyValue> = self
            .keys
            .range(prefix.to_owned()..)
            .take_while(|(key, _)| key.starts_with(prefix))
            .map(|(key, kv)| (key.clone(), kv.clone()))
            .collect();
        for event in self.history.iter().rev() {
            if event.revision() <= revision {
                break;
            }
            if !event.key().starts_with(prefix) {
                continue;
            }
            match event {
                Event::Put { kv, prev: None } => {
                    view.remove(&kv.key);
                }
                Event::Put { prev: Some(prev), .. } | Event::Delete { prev, .. } => {
                    view.insert(prev.key.clone(), prev.clone());
                }
            }
        }
        view
    }

    /// Fails like etcd for reads at revisions that are compacted away or not yet written.
    fn check_readable(&self, revision: Revision) -> Result<()> {
        if revision < self.compacted {
            return Err(StorageError::Compacted {
                requested: revision,
                compacted: self.compacted,
            });
        }
        if revision > self.revision {
            return Err(StorageError::FutureRevision {
                requested: revision,
                current: self.revision,
            });
        }
        Ok(())
    }
}

impl MemoryStorage {
    /// An empty store at revision 1.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    /// Deletes `kv`'s key after `ttl`, unless it was written again by then.
    fn expire_later(&self, kv: &KeyValue, ttl: Option<Duration>) {
        let Some(ttl) = ttl else { return };
        let state: Weak<Mutex<State>> = Arc::downgrade(&self.state);
        let (key, written) = (kv.key.clone(), kv.mod_revision);
        tokio::spawn(async move {
            tokio::time::sleep(ttl).await;
            let Some(state) = state.upgrade() else { return };
            let mut state = lock(&state);
            if state.keys.get(&key).is_some_and(|kv| kv.mod_revision == written) {
                let _ = state.remove(&key);
            }
        });
    }
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    // No code panics while holding the lock, and every mutation leaves the state consistent
    // before the next fallible step, so a poisoned lock still guards valid data.
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

#[async_trait::async_trait]
impl Storage for MemoryStorage {
    async fn create_with_ttl(&self, key: &str, value: Bytes, ttl: Option<Duration>) -> Result<KeyValue> {
        let mut state = self.lock();
        if state.keys.contains_key(key) {
            return Err(StorageError::AlreadyExists(key.to_owned()));
        }
        state.revision += 1;
        let kv = KeyValue {
            key: key.to_owned(),
            value,
            create_revision: state.revision,
            mod_revision: state.revision,
        };
        state.keys.insert(key.to_owned(), kv.clone());
        state.publish(Event::Put {
            kv: kv.clone(),
            prev: None,
        });
        drop(state);
        self.expire_later(&kv, ttl);
        Ok(kv)
    }

    async fn get(&self, key: &str) -> Result<Option<KeyValue>> {
        Ok(self.lock().keys.get(key).cloned())
    }

    async fn list(&self, request: ListRequest) -> Result<ListResponse> {
        let state = self.lock();
        // etcd treats revisions <= 0 as "current".
        let revision = if request.revision > 0 {
            state.check_readable(request.revision)?;
            request.revision
        } else {
            state.revision
        };
        let view = state.snapshot(&request.prefix, revision);
        // A start key before the prefix must not widen the range beyond the prefix.
        let start = match request.start_key {
            Some(start) if start > request.prefix => start,
            _ => request.prefix.clone(),
        };
        let in_range: Vec<&KeyValue> = view.range(start..).map(|(_, kv)| kv).collect();
        let total = in_range.len();
        let take = if request.limit > 0 {
            usize::try_from(request.limit).unwrap_or(usize::MAX).min(total)
        } else {
            total
        };
        let kvs: Vec<KeyValue> = in_range.into_iter().take(take).cloned().collect();
        Ok(ListResponse {
            remaining: i64::try_from(total - take).unwrap_or(i64::MAX),
            kvs,
            revision,
        })
    }

    async fn update_with_ttl(
        &self,
        key: &str,
        expected: Revision,
        value: Bytes,
        ttl: Option<Duration>,
    ) -> Result<KeyValue> {
        let mut state = self.lock();
        let prev = match state.keys.get(key) {
            Some(current) if current.mod_revision == expected => current.clone(),
            current => {
                return Err(StorageError::Conflict {
                    key: key.to_owned(),
                    expected,
                    current: current.cloned(),
                });
            }
        };
        state.revision += 1;
        let kv = KeyValue {
            key: key.to_owned(),
            value,
            create_revision: prev.create_revision,
            mod_revision: state.revision,
        };
        state.keys.insert(key.to_owned(), kv.clone());
        state.publish(Event::Put {
            kv: kv.clone(),
            prev: Some(prev),
        });
        drop(state);
        self.expire_later(&kv, ttl);
        Ok(kv)
    }

    async fn delete(&self, key: &str, expected: Option<Revision>) -> Result<(KeyValue, Revision)> {
        let mut state = self.lock();
        let Some(current) = state.keys.get(key) else {
            return Err(StorageError::NotFound(key.to_owned()));
        };
        if let Some(expected) = expected
            && current.mod_revision != expected
        {
            return Err(StorageError::Conflict {
                key: key.to_owned(),
                expected,
                current: Some(current.clone()),
            });
        }
        state.remove(key)
    }

    /// Fails with [`StorageError::Compacted`] (`requested` = `after + 1`) if history needed for
    /// the replay is gone; a watch from a future revision is allowed and just waits.
    ///
    /// Like etcd, the previous value of a change made exactly at the compaction revision is gone
    /// (it was written below it), so replaying such a modification or deletion fails with
    /// `Compacted { requested: c, compacted: c }` rather than inventing a creation.
    async fn watch(&self, prefix: &str, after: Revision) -> Result<Box<dyn WatchStream>> {
        let mut state = self.lock();
        // Like etcd, whose start revision is `after + 1` and never below revision 1.
        let start = after.saturating_add(1).max(1);
        if start < state.compacted {
            return Err(StorageError::Compacted {
                requested: start,
                compacted: state.compacted,
            });
        }
        let (tx, rx) = mpsc::unbounded_channel();
        // Replay and register under the same lock so no write can slip in between.
        for event in &state.history {
            if event.revision() < start || !event.key().starts_with(prefix) {
                continue;
            }
            let needs_prev = matches!(event, Event::Put { prev: Some(_), .. } | Event::Delete { .. });
            if needs_prev && event.revision() == state.compacted {
                return Err(StorageError::Compacted {
                    requested: state.compacted,
                    compacted: state.compacted,
                });
            }
            // The receiver is alive (we hold it), so this cannot fail.
            let _ = tx.send(Ok(WatchItem::Event(event.clone())));
        }
        let id = state.next_watcher_id;
        state.next_watcher_id += 1;
        state.watchers.insert(
            id,
            Watcher {
                prefix: prefix.to_owned(),
                after,
                tx,
            },
        );
        Ok(Box::new(MemoryWatch {
            state: Arc::clone(&self.state),
            id,
            rx,
        }))
    }

    async fn current_revision(&self) -> Result<Revision> {
        Ok(self.lock().revision)
    }

    async fn prefix_changed(&self, prefix: &str, since: Revision, at: Revision) -> Result<bool> {
        let state = self.lock();
        if since < state.compacted {
            return Err(StorageError::Compacted {
                requested: since,
                compacted: state.compacted,
            });
        }
        Ok(state
            .history
            .iter()
            .any(|event| event.revision() > since && event.revision() <= at && event.key().starts_with(prefix)))
    }

    /// Like etcd: compacting at or below the last compaction fails with `Compacted`, beyond the
    /// current revision with `FutureRevision`. Revision `revision` itself stays readable.
    async fn compact(&self, revision: Revision) -> Result<()> {
        let mut state = self.lock();
        if revision <= state.compacted {
            return Err(StorageError::Compacted {
                requested: revision,
                compacted: state.compacted,
            });
        }
        if revision > state.revision {
            return Err(StorageError::FutureRevision {
                requested: revision,
                current: state.revision,
            });
        }
        state.compacted = revision;
        state.history.retain(|event| event.revision() >= revision);
        Ok(())
    }
}

/// A watch on a [`MemoryStorage`]; unregisters itself on drop.
struct MemoryWatch {
    state: Arc<Mutex<State>>,
    id: u64,
    rx: mpsc::UnboundedReceiver<Result<WatchItem>>,
}

impl MemoryWatch {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[async_trait::async_trait]
impl WatchStream for MemoryWatch {
    async fn next(&mut self) -> Option<Result<WatchItem>> {
        // The sender lives in the store's watcher table, so this only ends when the store is gone.
        self.rx.recv().await
    }

    async fn request_progress(&mut self) -> Result<()> {
        let state = self.lock();
        let Some(watcher) = state.watchers.get(&self.id) else {
            return Err(StorageError::Internal("watch is no longer registered".into()));
        };
        // Sent under the lock that every write publishes under, so it lands behind all events up
        // to the current revision.
        watcher
            .tx
            .send(Ok(WatchItem::Progress(state.revision)))
            .map_err(|_| StorageError::Internal("watch receiver is gone".into()))
    }
}

impl Drop for MemoryWatch {
    fn drop(&mut self) {
        let id = self.id;
        self.lock().watchers.remove(&id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn first_write_gets_revision_two() {
        let storage = MemoryStorage::new();
        assert_eq!(storage.current_revision().await, Ok(1));
        let kv = storage.create("/a", Bytes::from_static(b"1")).await;
        assert_eq!(kv.map(|kv| kv.mod_revision), Ok(2));
    }

    #[tokio::test]
    async fn dropped_watchers_are_unregistered() {
        let storage = MemoryStorage::new();
        let watch = storage.watch("/", 0).await;
        assert!(watch.is_ok());
        assert_eq!(storage.lock().watchers.len(), 1);
        drop(watch);
        assert!(storage.lock().watchers.is_empty());
    }

    #[tokio::test]
    async fn list_with_start_key_past_prefix_is_empty() {
        let storage = MemoryStorage::new();
        let _ = storage.create("/p/a", Bytes::new()).await;
        let response = storage
            .list(ListRequest {
                prefix: "/p/".into(),
                start_key: Some("/q".into()),
                ..ListRequest::default()
            })
            .await;
        assert_eq!(response.map(|r| (r.kvs.len(), r.remaining)), Ok((0, 0)));
    }
}
