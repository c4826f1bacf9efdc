//! Shared informers: one watch per resource type per process, feeding a kube-runtime reflector
//! store that every controller reads, plus a broadcast of changes that controllers subscribe to.
//!
//! kube-runtime's own shared-stream subscription (`Writer::subscribe`) only dispatches
//! applied objects, never deletions, so controllers that must react to a pod disappearing
//! (replicaset expectations, the garbage collector) could not use it; this module keeps
//! kube-runtime's watcher (with its backoff and re-list) and store, and adds the deletions.
//! Readiness is signalled here too: kube-runtime's `Store::wait_until_ready` keeps only the
//! last waiter's waker, so two controllers waiting on one store at once could hang.

use std::fmt::Debug;
use std::hash::Hash;
use std::sync::{Arc, Mutex};

use futures::StreamExt;
use kube::runtime::WatchStreamExt;
use kube::runtime::reflector::{self, Lookup, Store};
use kube::runtime::watcher::{self, Event};
use kube::{Api, Resource};
use serde::de::DeserializeOwned;
use tokio::sync::{broadcast, watch};
use tokio_util::sync::CancellationToken;

use crate::error::{Error, Result};

/// How many changes a slow subscriber may fall behind before it is told to resync. tokio
/// allocates every slot up front, per informer: 8 192 slots held 6.5 MB across the ~20
/// informers of an idle controller-manager, 1 024 hold 0.8 MB, and a resync only re-queues.
const CHANNEL_CAPACITY: usize = 1024;

/// One observed change.
#[derive(Debug)]
pub enum Change<K> {
    /// The object was created or modified (or listed by a re-list).
    Applied(Arc<K>),
    /// The object was deleted; this is its last known state.
    Deleted(Arc<K>),
    /// The store was (re)filled by a list: every object may have changed, some may be gone.
    Resynced,
}

impl<K> Clone for Change<K> {
    fn clone(&self) -> Self {
        match self {
            Change::Applied(obj) => Change::Applied(obj.clone()),
            Change::Deleted(obj) => Change::Deleted(obj.clone()),
            Change::Resynced => Change::Resynced,
        }
    }
}

/// A started watch on one resource type.
pub struct Informer<K>
where
    K: Lookup + Clone + 'static,
    K::DynamicType: Eq + Hash + Clone,
{
    store: Store<K>,
    changes: broadcast::Sender<Change<K>>,
    ready: watch::Receiver<bool>,
    kind: &'static str,
}

impl<K> Informer<K>
where
    K: Resource<DynamicType = ()> + Lookup<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    /// Starts watching `api` (with `config`) until `token` is cancelled.
    pub fn start(api: Api<K>, config: watcher::Config, kind: &'static str, token: CancellationToken) -> Self {
        let mut writer = reflector::store::Writer::<K>::default();
        let store = writer.as_reader();
        let (changes, _) = broadcast::channel(CHANNEL_CAPACITY);
        let sender = changes.clone();
        let (ready_tx, ready) = watch::channel(false);
        tokio::spawn(async move {
            let mut stream = watcher::watcher(api, config).default_backoff().boxed();
            loop {
                let next = tokio::select! {
                    () = token.cancelled() => return,
                    next = stream.next() => next,
                };
                let event = match next {
                    Some(Ok(event)) => event,
                    Some(Err(error)) => {
                        tracing::warn!(%error, kind, "watch failed, retrying");
                        continue;
                    }
                    None => return,
                };
                writer.apply_watcher_event(&event);
                tracing::trace!(kind, ?event, "watch event");
                let change = match event {
                    Event::Apply(obj) => Change::Applied(Arc::new(obj)),
                    Event::Delete(obj) => Change::Deleted(Arc::new(obj)),
                    Event::InitDone => {
                        ready_tx.send_replace(true);
                        Change::Resynced
                    }
                    Event::Init | Event::InitApply(_) => continue,
                };
                // No subscriber yet is fine: subscribers read the store when they start.
                let _ = sender.send(change);
            }
        });
        Informer {
            store,
            changes,
            ready,
            kind,
        }
    }
}

impl<K> Informer<K>
where
    K: Lookup + Clone + 'static,
    K::DynamicType: Eq + Hash + Clone,
{
    /// The shared read-only cache.
    pub fn store(&self) -> Store<K> {
        self.store.clone()
    }

    /// A new subscription to changes from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Change<K>> {
        self.changes.subscribe()
    }

    /// Waits until the first list has filled the store.
    pub async fn wait_ready(&self) -> Result<()> {
        let mut ready = self.ready.clone();
        ready
            .wait_for(|ready| *ready)
            .await
            .map(|_| ())
            .map_err(|_| Error::CacheStopped(self.kind))
    }
}

/// Receives the next change, turning a lag (missed changes) into a resync; `None` once the
/// informer stopped.
pub async fn next_change<K>(rx: &mut broadcast::Receiver<Change<K>>) -> Option<Change<K>>
where
    K: Clone,
{
    match rx.recv().await {
        Ok(change) => Some(change),
        Err(broadcast::error::RecvError::Lagged(_)) => Some(Change::Resynced),
        Err(broadcast::error::RecvError::Closed) => None,
    }
}

/// A lazily started informer slot.
pub struct Slot<K>
where
    K: Lookup + Clone + 'static,
    K::DynamicType: Eq + Hash + Clone,
{
    inner: Mutex<Option<Arc<Informer<K>>>>,
}

impl<K> Default for Slot<K>
where
    K: Lookup + Clone + 'static,
    K::DynamicType: Eq + Hash + Clone,
{
    fn default() -> Self {
        Slot {
            inner: Mutex::new(None),
        }
    }
}

impl<K> Slot<K>
where
    K: Lookup + Clone + 'static,
    K::DynamicType: Eq + Hash + Clone,
{
    /// The informer, started by `start` on first use.
    pub fn get_or_start(&self, start: impl FnOnce() -> Informer<K>) -> Arc<Informer<K>> {
        let mut guard = self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        guard.get_or_insert_with(|| Arc::new(start())).clone()
    }
}
