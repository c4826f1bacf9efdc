//! Informers: kube-runtime watchers on pods, nodes and namespaces that feed the cache (bound
//! pods, nodes) and the queue (pending pods, cluster events). A relist drops what disappeared.

use std::collections::HashSet;
use std::future::Future;
use std::sync::Arc;

use futures::TryStreamExt;
use k8s_openapi::api::core::v1::{Namespace, Node, Pod};
use kube::Resource;
use kube::api::Api;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use serde::de::DeserializeOwned;
use tokio_util::sync::CancellationToken;

use crate::SchedulerError;
use crate::framework::ClusterEvent;
use crate::scheduler::Scheduler;

/// What an informer does with the objects of one kind.
trait Handler<K>: Send + 'static {
    fn apply(&mut self, object: K, initial: bool);
    fn delete(&mut self, object: K);
    /// After a (re)list: everything not seen since `Init` is gone.
    fn relisted(&mut self, seen: &HashSet<String>);
}

fn key_of<K: Resource>(object: &K) -> String {
    let meta = object.meta();
    match meta.namespace.as_deref() {
        Some(namespace) => format!("{namespace}/{}", meta.name.as_deref().unwrap_or_default()),
        None => meta.name.clone().unwrap_or_default(),
    }
}

/// Runs one watcher until `stop`; `synced` is cancelled after the first complete list.
async fn run_informer<K, H>(api: Api<K>, mut handler: H, synced: CancellationToken, stop: CancellationToken)
where
    K: Resource + Clone + DeserializeOwned + std::fmt::Debug + Send + 'static,
    H: Handler<K>,
{
    let stream = watcher::watcher(api, watcher::Config::default()).default_backoff();
    futures::pin_mut!(stream);
    let mut seen = HashSet::new();
    loop {
        let next = tokio::select! {
            () = stop.cancelled() => return,
            next = stream.try_next() => next,
        };
        match next {
            Ok(Some(Event::Init)) => seen.clear(),
            Ok(Some(Event::InitApply(object))) => {
                seen.insert(key_of(&object));
                handler.apply(object, true);
            }
            Ok(Some(Event::InitDone)) => {
                handler.relisted(&seen);
                seen.clear();
                synced.cancel();
            }
            Ok(Some(Event::Apply(object))) => handler.apply(object, false),
            Ok(Some(Event::Delete(object))) => handler.delete(object),
            Ok(None) => return,
            Err(error) => tracing::warn!(%error, "watch failed, retrying"),
        }
    }
}

struct Pods(Arc<Scheduler>);

impl Handler<Pod> for Pods {
    fn apply(&mut self, pod: Pod, _initial: bool) {
        let scheduler = &self.0;
        let key = key_of(&pod);
        let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref()).unwrap_or_default();
        let assigned = pod
            .spec
            .as_ref()
            .and_then(|s| s.node_name.as_deref())
            .is_some_and(|n| !n.is_empty());
        if matches!(phase, "Succeeded" | "Failed") {
            scheduler.queue.delete(&key);
            let event = scheduler.cache().remove_pod(&key);
            if let Some(event) = event {
                scheduler.queue.move_on_event(event);
            }
        } else if assigned {
            scheduler.queue.delete(&key);
            let event = scheduler.cache().add_or_update_pod(Arc::new(pod));
            if let Some(event) = event {
                scheduler.queue.move_on_event(event);
            }
        } else if pod.metadata.deletion_timestamp.is_some() || !scheduler.responsible_for(&pod) {
            scheduler.queue.delete(&key);
        } else if !scheduler.cache().contains_pod(&key) {
            // Not yet assumed (an assumed pod's own status updates must not queue it again).
            scheduler.queue.add_or_update(Arc::new(pod));
        }
    }

    fn delete(&mut self, pod: Pod) {
        let key = key_of(&pod);
        self.0.queue.delete(&key);
        let event = self.0.cache().remove_pod(&key);
        if event.is_some() {
            self.0.queue.move_on_event(ClusterEvent::AssignedPodDelete);
        }
    }

    fn relisted(&mut self, seen: &HashSet<String>) {
        self.0.cache().retain_pods(seen);
        self.0.queue.move_on_event(ClusterEvent::AssignedPodDelete);
    }
}

struct Nodes(Arc<Scheduler>);

impl Handler<Node> for Nodes {
    fn apply(&mut self, node: Node, _initial: bool) {
        let event = self.0.cache().add_or_update_node(Arc::new(node));
        if let Some(event) = event {
            self.0.queue.move_on_event(event);
        }
    }

    fn delete(&mut self, node: Node) {
        self.0.cache().remove_node(&key_of(&node));
        self.0.queue.move_on_event(ClusterEvent::NodeDelete);
    }

    fn relisted(&mut self, seen: &HashSet<String>) {
        self.0.cache().retain_nodes(seen);
        self.0.queue.move_on_event(ClusterEvent::NodeUpdate);
    }
}

struct Namespaces(Arc<Scheduler>);

impl Handler<Namespace> for Namespaces {
    fn apply(&mut self, namespace: Namespace, _initial: bool) {
        self.0.cache().set_namespace(&namespace);
    }

    fn delete(&mut self, namespace: Namespace) {
        self.0.cache().remove_namespace(&key_of(&namespace));
    }

    fn relisted(&mut self, _seen: &HashSet<String>) {}
}

/// Starts the informers; the returned future resolves once each has listed once.
pub(crate) fn start(
    scheduler: Arc<Scheduler>,
    stop: CancellationToken,
) -> impl Future<Output = Result<(), SchedulerError>> + Send {
    let client = scheduler.client.clone();
    let nodes_synced = CancellationToken::new();
    let pods_synced = CancellationToken::new();
    let namespaces_synced = CancellationToken::new();
    // Nodes first, so that the first pods find them.
    tokio::spawn(run_informer(
        Api::<Node>::all(client.clone()),
        Nodes(scheduler.clone()),
        nodes_synced.clone(),
        stop.clone(),
    ));
    tokio::spawn(run_informer(
        Api::<Namespace>::all(client.clone()),
        Namespaces(scheduler.clone()),
        namespaces_synced.clone(),
        stop.clone(),
    ));
    tokio::spawn(run_informer(
        Api::<Pod>::all(client),
        Pods(scheduler),
        pods_synced.clone(),
        stop.clone(),
    ));
    async move {
        let all = futures::future::join3(
            nodes_synced.cancelled(),
            pods_synced.cancelled(),
            namespaces_synced.cancelled(),
        );
        tokio::select! {
            _ = all => Ok(()),
            () = stop.cancelled() => Err(SchedulerError::Stopped),
        }
    }
}
