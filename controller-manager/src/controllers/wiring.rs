//! The event wiring every informer-driven controller shares: forward each watched change to
//! the work queue as keys, enqueue everything again on a resync, and run the workers until the
//! context's token is cancelled.
//!
//! ```ignore
//! EventForwarder::new(&queue, enqueue_all)
//!     .on(rs_changes, When::Changed, |rs| [util::key_of(rs)])
//!     .on(pod_changes, When::Changed, move |pod| owners_of(pod, &replicasets))
//!     .run_workers(NAME, workers, &ctx.token, handler)
//!     .await;
//! ```

use std::fmt::Display;
use std::future::Future;
use std::hash::Hash;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use futures::stream::{self, BoxStream};
use kube::runtime::reflector::{Lookup, Store};
use tokio::sync::broadcast;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::error::Error;
use crate::informer::{Change, next_change};
use crate::queue::{WorkQueue, run_workers};

/// What one change leads to.
pub enum Forward<I> {
    /// Enqueue these keys.
    Keys(I),
    /// Enqueue everything again (the forwarder's resync function).
    ResyncAll,
    /// Nothing.
    Nothing,
}

/// Which changed objects lead to keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum When {
    /// Applied or deleted.
    Changed,
    /// Applied (created or modified) only.
    Applied,
    /// Deleted only.
    Deleted,
}

/// A resync function for [`EventForwarder::new`]: enqueues `keys(object)` for every object
/// in `store`.
pub fn resync_each<K, T, I>(
    queue: &Arc<WorkQueue<T>>,
    store: &Store<K>,
    keys: impl Fn(&K) -> I + Send + Sync + 'static,
) -> impl Fn() + Send + Sync + 'static
where
    K: Lookup + Clone + Send + Sync + 'static,
    K::DynamicType: Eq + Hash + Clone + Send + Sync,
    T: Clone + Eq + Hash + Send + Sync + 'static,
    I: IntoIterator<Item = T>,
{
    let (queue, store) = (queue.clone(), store.clone());
    move || {
        for object in store.state() {
            keys(&object).into_iter().for_each(|key| queue.add(key));
        }
    }
}

/// What a source yielded: one change handled, or its informer stopped.
enum Step {
    Handled,
    Closed,
}

/// Forwards the changes of any number of informers to one work queue.
pub struct EventForwarder<T> {
    queue: Arc<WorkQueue<T>>,
    resync: Arc<dyn Fn() + Send + Sync>,
    sources: Vec<BoxStream<'static, Step>>,
}

impl<T> EventForwarder<T>
where
    T: Clone + Eq + Hash + Send + Sync + 'static,
{
    /// A forwarder into `queue`; `resync` enqueues every key, and is called when a watched
    /// informer resyncs (or lagged behind). It is not called here: enqueue the initial keys
    /// yourself.
    pub fn new(queue: &Arc<WorkQueue<T>>, resync: impl Fn() + Send + Sync + 'static) -> Self {
        EventForwarder {
            queue: queue.clone(),
            resync: Arc::new(resync),
            sources: Vec::new(),
        }
    }

    /// The objects `when` names (applied, deleted, or both) enqueue `keys(object)`; a resync
    /// enqueues everything.
    pub fn on<K, I>(
        self,
        changes: broadcast::Receiver<Change<K>>,
        when: When,
        keys: impl Fn(&K) -> I + Send + 'static,
    ) -> Self
    where
        K: Clone + Send + Sync + 'static,
        I: IntoIterator<Item = T>,
    {
        self.watch(changes, move |change| match (change, when) {
            (Change::Applied(obj), When::Changed | When::Applied)
            | (Change::Deleted(obj), When::Changed | When::Deleted) => Forward::Keys(keys(&obj)),
            (Change::Applied(_) | Change::Deleted(_), _) => Forward::Nothing,
            (Change::Resynced, _) => Forward::ResyncAll,
        })
    }

    /// Every change is handed to `forward`, which says what it leads to.
    pub fn watch<K, I>(
        mut self,
        changes: broadcast::Receiver<Change<K>>,
        mut forward: impl FnMut(Change<K>) -> Forward<I> + Send + 'static,
    ) -> Self
    where
        K: Clone + Send + Sync + 'static,
        I: IntoIterator<Item = T>,
    {
        let queue = self.queue.clone();
        let resync = self.resync.clone();
        let source = stream::unfold(changes, |mut changes| async move {
            next_change(&mut changes).await.map(|change| (change, changes))
        })
        .map(move |change| {
            match forward(change) {
                Forward::Keys(keys) => keys.into_iter().for_each(|key| queue.add(key)),
                Forward::ResyncAll => resync(),
                Forward::Nothing => {}
            }
            Step::Handled
        })
        .chain(stream::once(async { Step::Closed }));
        self.sources.push(source.boxed());
        self
    }

    /// Also enqueues everything every `period`, the first time at once.
    pub fn every(mut self, period: Duration) -> Self {
        let resync = self.resync.clone();
        let ticks = stream::unfold(tokio::time::interval(period), |mut ticker| async move {
            ticker.tick().await;
            Some(((), ticker))
        })
        .map(move |()| {
            resync();
            Step::Handled
        });
        self.sources.push(ticks.boxed());
        self
    }

    /// Forwards, in a task of its own, until `token` is cancelled or a watched informer stops.
    /// The sources take turns, one change at a time.
    pub fn spawn(self, token: CancellationToken) -> JoinHandle<()> {
        let mut sources = stream::select_all(self.sources);
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    () = token.cancelled() => return,
                    step = sources.next() => match step {
                        Some(Step::Handled) => {}
                        Some(Step::Closed) | None => return,
                    },
                }
            }
        })
    }

    /// Forwards while `workers` workers run `handler` on the queue (see [`run_workers`]) until
    /// `token` is cancelled, then stops forwarding.
    pub async fn run_workers<F, Fut>(
        self,
        controller: &'static str,
        workers: usize,
        token: &CancellationToken,
        handler: F,
    ) where
        T: Display,
        F: Fn(T) -> Fut + Clone + Send + Sync + 'static,
        Fut: Future<Output = Result<Option<Duration>, Error>> + Send + 'static,
    {
        let queue = self.queue.clone();
        let events = self.spawn(token.clone());
        run_workers(controller, queue, workers, token.clone(), handler).await;
        events.abort();
    }
}

#[cfg(test)]
mod tests {
    use futures::FutureExt;

    use super::*;

    fn drain(queue: &WorkQueue<String>) -> Vec<String> {
        let mut keys = Vec::new();
        while let Some(key) = queue.get().now_or_never().flatten() {
            queue.done(&key);
            keys.push(key);
        }
        keys.sort();
        keys
    }

    #[tokio::test]
    async fn forwards_keys_resyncs_and_stops_when_an_informer_stops() {
        let queue = WorkQueue::<String>::new();
        let (applied_tx, applied_rx) = broadcast::channel::<Change<String>>(16);
        let (any_tx, any_rx) = broadcast::channel::<Change<String>>(16);
        let (deleted_tx, deleted_rx) = broadcast::channel::<Change<String>>(16);
        let resync_queue = queue.clone();
        let events = EventForwarder::new(&queue, move || resync_queue.add("all".to_string()))
            .on(applied_rx, When::Applied, |name: &String| [format!("applied/{name}")])
            .on(any_rx, When::Changed, |name: &String| Some(format!("any/{name}")))
            .on(deleted_rx, When::Deleted, |name: &String| {
                vec![format!("deleted/{name}")]
            })
            .spawn(CancellationToken::new());
        applied_tx.send(Change::Applied(Arc::new("a".into()))).unwrap();
        applied_tx.send(Change::Deleted(Arc::new("b".into()))).unwrap();
        any_tx.send(Change::Deleted(Arc::new("c".into()))).unwrap();
        any_tx.send(Change::Resynced).unwrap();
        deleted_tx.send(Change::Applied(Arc::new("d".into()))).unwrap();
        deleted_tx.send(Change::Deleted(Arc::new("e".into()))).unwrap();
        while queue.len() < 4 {
            tokio::task::yield_now().await;
        }
        drop(any_tx);
        events.await.unwrap();
        assert_eq!(drain(&queue), ["all", "any/c", "applied/a", "deleted/e"]);
    }
}
