//! The daemonset controller: one pod of each DaemonSet on every node it fits (node selector,
//! required node affinity, taints against tolerations), pinned by node affinity so the
//! scheduler binds it; pods on nodes that stopped fitting are deleted, failed ones replaced
//! (with a per-node back-off), templates rolled out with RollingUpdate (maxUnavailable, or
//! maxSurge: the new pod starts beside the old one, which goes once the new one is available) or
//! OnDelete, and the template history kept as ControllerRevisions.
//!
//! The shared context has no DaemonSet or ControllerRevision informer yet, so this controller
//! starts its own watches of those two types.

pub mod decide;
pub mod fit;
pub mod history;
pub mod revisions;
#[cfg(test)]
mod tests;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::join_all;
use k8s_openapi::api::apps::v1::{ControllerRevision, DaemonSet};
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{DeleteParams, Patch, PatchParams, PostParams, Preconditions};
use kube::runtime::reflector::Store;
use kube::runtime::watcher;
use kube::{Api, ResourceExt};
use serde_json::json;
use tokio::time::Instant;

use crate::context::{Context, EventRecorder};
use crate::controllers::expectations::Expectations;
use crate::controllers::ownership;
use crate::controllers::wiring::{EventForwarder, Forward, When, resync_each};
use crate::error::{Error, Result, is_not_found};
use crate::informer::{Change, Informer};
use crate::queue::WorkQueue;
use crate::util;

/// The controller's name in `--controllers`.
pub const NAME: &str = "daemonset";

/// Upstream's `--concurrent-daemonset-syncs` default.
const WORKERS: usize = 2;

/// How long to wait before re-checking unmet expectations (pod events normally come first).
const EXPECTATIONS_RECHECK: Duration = Duration::from_secs(2);

/// Upstream's back-off for replacing failed daemon pods on one node.
const BACKOFF_INITIAL: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(15 * 60);

struct Controller {
    client: kube::Client,
    daemonsets: Store<DaemonSet>,
    revisions: Store<ControllerRevision>,
    nodes: Store<Node>,
    pods: Store<Pod>,
    expectations: Expectations,
    backoff: Backoff,
    recorder: EventRecorder,
}

/// Runs the controller until the context is cancelled.
pub async fn run(ctx: Arc<Context>) -> Result<()> {
    let ds_informer = Informer::start(
        Api::<DaemonSet>::all(ctx.client.clone()),
        watcher::Config::default(),
        "daemonsets",
        ctx.token.clone(),
    );
    let revision_informer = Informer::start(
        Api::<ControllerRevision>::all(ctx.client.clone()),
        watcher::Config::default(),
        "controllerrevisions",
        ctx.token.clone(),
    );
    let node_informer = ctx.informers.nodes();
    let pod_informer = ctx.informers.pods();
    let ds_changes = ds_informer.subscribe();
    let revision_changes = revision_informer.subscribe();
    let node_changes = node_informer.subscribe();
    let pod_changes = pod_informer.subscribe();
    ds_informer.wait_ready().await?;
    revision_informer.wait_ready().await?;
    node_informer.wait_ready().await?;
    pod_informer.wait_ready().await?;
    let controller = Arc::new(Controller {
        client: ctx.client.clone(),
        daemonsets: ds_informer.store(),
        revisions: revision_informer.store(),
        nodes: node_informer.store(),
        pods: pod_informer.store(),
        expectations: Expectations::default(),
        backoff: Backoff::default(),
        recorder: ctx.recorder("daemonset-controller"),
    });
    let queue = WorkQueue::<String>::new();
    let enqueue_all = resync_each(&queue, &controller.daemonsets, |ds| [util::key_of(ds)]);
    enqueue_all();
    let daemonsets = controller.daemonsets.clone();
    let mut node_shapes: HashMap<String, serde_json::Value> = HashMap::new();
    EventForwarder::new(&queue, enqueue_all)
        .on(ds_changes, When::Changed, |ds| [util::key_of(ds)])
        .on(revision_changes, When::Changed, |revision: &ControllerRevision| {
            owner_key(&revision.metadata, revision.namespace().as_deref())
        })
        .on(pod_changes, When::Changed, move |pod| owners_of(pod, &daemonsets))
        // Only what decides where daemon pods go matters: labels, taints, the node coming or
        // going; status heartbeats are ignored.
        .watch(node_changes, move |change: Change<Node>| match change {
            Change::Applied(node) => {
                let shape = json!([node.metadata.labels, node.spec.as_ref().map(|spec| &spec.taints)]);
                if node_shapes.insert(node.name_any(), shape.clone()) == Some(shape) {
                    Forward::<Vec<String>>::Nothing
                } else {
                    Forward::ResyncAll
                }
            }
            Change::Deleted(node) => {
                node_shapes.remove(&node.name_any());
                Forward::ResyncAll
            }
            Change::Resynced => Forward::ResyncAll,
        })
        .run_workers(NAME, WORKERS, &ctx.token, move |key: String| {
            let controller = controller.clone();
            async move { controller.sync(&key).await }
        })
        .await;
    Ok(())
}

/// The DaemonSet controlling an object, as a key.
fn owner_key(
    meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
    namespace: Option<&str>,
) -> Vec<String> {
    util::controller_key(meta, namespace, "DaemonSet")
}

/// The DaemonSets to sync when `pod` changes: its controller if that is a DaemonSet, else
/// every DaemonSet of its namespace whose selector matches it (it may be adopted).
fn owners_of(pod: &Pod, daemonsets: &Store<DaemonSet>) -> Vec<String> {
    let namespace = pod.namespace();
    if util::controller_of(&pod.metadata).is_some() {
        return owner_key(&pod.metadata, namespace.as_deref());
    }
    let labels = pod.labels();
    daemonsets
        .state()
        .iter()
        .filter(|ds| ds.namespace() == namespace)
        .filter(|ds| util::selects(&ds.spec.selector, labels))
        .map(|ds| util::key_of(ds.as_ref()))
        .collect()
}

impl Controller {
    async fn sync(&self, key: &str) -> Result<Option<Duration>> {
        let Some(ds) = util::get(&self.daemonsets, key) else {
            self.expectations.forget(key);
            self.backoff.forget(key);
            return Ok(None);
        };
        if util::is_deleting(&ds.metadata) {
            return Ok(None);
        }
        let namespace = ds.namespace().unwrap_or_default();
        let pods: Vec<Arc<Pod>> = self
            .pods
            .state()
            .into_iter()
            .filter(|pod| pod.namespace().as_deref() == Some(namespace.as_str()))
            .collect();
        let nodes = {
            let mut nodes = self.nodes.state();
            nodes.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
            nodes
        };
        let Some(hash) = self.sync_history(&ds, &pods).await? else {
            // The collision count was raised: the DaemonSet's update brings it back.
            return Ok(None);
        };
        let by_uid: HashMap<&str, &Pod> = pods
            .iter()
            .filter_map(|pod| Some((pod.metadata.uid.as_deref()?, pod.as_ref())))
            .collect();
        let met = self.expectations.satisfied(
            key,
            |name| pods.iter().any(|pod| pod.metadata.name.as_deref() == Some(name)),
            |uid| by_uid.get(uid).is_none_or(|pod| util::is_deleting(&pod.metadata)),
        );
        let backoff = self.backoff.nodes_waiting(key);
        let inputs = decide::Inputs {
            nodes: &nodes,
            pods: &pods,
            hash: &hash,
            now: jiff::Timestamp::now(),
            expectations_met: met,
            backoff: &backoff,
        };
        let plan = decide::decide(&ds, &inputs);
        let requeue = self.apply(&ds, key, &hash, plan).await?;
        if !met {
            return Ok(Some(
                requeue.map_or(EXPECTATIONS_RECHECK, |after| after.min(EXPECTATIONS_RECHECK)),
            ));
        }
        Ok(requeue)
    }

    /// Brings the ControllerRevisions up to date; the current revision's hash, or `None` when
    /// a hash collision raised the collision count.
    async fn sync_history(&self, ds: &DaemonSet, pods: &[Arc<Pod>]) -> Result<Option<String>> {
        let uid = ds.metadata.uid.clone().unwrap_or_default();
        let live_hashes: HashSet<String> = pods
            .iter()
            .filter(|pod| util::controller_of(&pod.metadata).is_some_and(|owner| owner.uid == uid))
            .filter_map(|pod| pod.labels().get(history::REVISION_HASH).cloned())
            .collect();
        let owner = history::Owner::daemonset(ds);
        let owned = history::owned(&owner, &self.revisions.state());
        let plan = history::plan(&owner, &owned, |revision| {
            history::label_hash(revision).is_some_and(|hash| live_hashes.contains(&hash))
        });
        match revisions::apply(&self.client, &owner, &plan).await? {
            revisions::Applied::Current { hash, .. } => Ok(Some(hash)),
            revisions::Applied::Collision => {
                self.raise_collision_count(ds).await?;
                Ok(None)
            }
        }
    }

    async fn raise_collision_count(&self, ds: &DaemonSet) -> Result<()> {
        let count = ds
            .status
            .as_ref()
            .and_then(|status| status.collision_count)
            .unwrap_or(0);
        let api: Api<DaemonSet> = Api::namespaced(self.client.clone(), &ds.namespace().unwrap_or_default());
        let patch = json!({"status": {"collisionCount": count.saturating_add(1)}});
        api.patch_status(&ds.name_any(), &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map(|_| ())
            .map_err(|error| Error::api("update status of", "DaemonSet", util::key_of(ds), error))
    }

    async fn apply(&self, ds: &DaemonSet, key: &str, hash: &str, plan: decide::Plan) -> Result<Option<Duration>> {
        let namespace = ds.namespace().unwrap_or_default();
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), &namespace);
        let owner = util::controller_ref(ds);
        for pod in &plan.adopt {
            patch_pod(
                &pods,
                pod,
                ownership::adopt_patch(&pod.metadata, owner.clone()),
                "adopt",
            )
            .await?;
        }
        for pod in &plan.release {
            patch_pod(
                &pods,
                pod,
                ownership::release_patch(&pod.metadata, &owner.uid),
                "release",
            )
            .await?;
        }
        for node in &plan.failed_on {
            self.backoff.advance(key, node);
        }
        let mut first_error = None;
        let mut created = Vec::new();
        let mut remaining: &[String] = &plan.create_on;
        let mut batch = 1;
        // Slow start, like upstream: batches of 1, 2, 4, … stop at the first failure.
        while !remaining.is_empty() && first_error.is_none() {
            let (now, later) = remaining.split_at(batch.min(remaining.len()));
            remaining = later;
            batch *= 2;
            let results = join_all(now.iter().map(|node| {
                let pod = decide::daemon_pod(ds, node, hash);
                let pods = pods.clone();
                async move { pods.create(&PostParams::default(), &pod).await }
            }))
            .await;
            for result in results {
                match result {
                    Ok(pod) => {
                        let name = pod.name_any();
                        self.recorder
                            .publish(ds, false, "SuccessfulCreate", format!("Created pod: {name}"))
                            .await;
                        created.push(name);
                    }
                    Err(error) => {
                        self.recorder
                            .publish(ds, true, "FailedCreate", format!("Error creating: {error}"))
                            .await;
                        first_error.get_or_insert(Error::api("create", "Pod", key, error));
                    }
                }
            }
        }
        self.expectations.expect(key, created, Vec::new());

        let mut seen = HashSet::new();
        let deletions = plan
            .delete
            .iter()
            .filter(|pod| seen.insert(pod.metadata.uid.clone()))
            .map(|pod| {
                let params = DeleteParams {
                    preconditions: Some(Preconditions {
                        uid: pod.metadata.uid.clone(),
                        resource_version: None,
                    }),
                    ..DeleteParams::default()
                };
                let pods = pods.clone();
                async move { (pod, pods.delete(&pod.name_any(), &params).await) }
            });
        let mut deleted = Vec::new();
        for (pod, result) in join_all(deletions).await {
            match result {
                Ok(_) => {
                    self.recorder
                        .publish(
                            ds,
                            false,
                            "SuccessfulDelete",
                            format!("Deleted pod: {}", pod.name_any()),
                        )
                        .await;
                    deleted.push(pod.metadata.uid.clone().unwrap_or_default());
                }
                Err(error) if is_not_found(&error) => {}
                Err(error) => {
                    self.recorder
                        .publish(ds, true, "FailedDelete", format!("Error deleting: {error}"))
                        .await;
                    first_error.get_or_insert(Error::api("delete", "Pod", key, error));
                }
            }
        }
        self.expectations.expect(key, Vec::new(), deleted);

        if let Some(status) = plan.status {
            let api: Api<DaemonSet> = Api::namespaced(self.client.clone(), &namespace);
            let patch = json!({ "status": status });
            match api
                .patch_status(&ds.name_any(), &PatchParams::default(), &Patch::Merge(&patch))
                .await
            {
                Ok(_) => {}
                Err(error) if is_not_found(&error) => {}
                Err(error) => return Err(Error::api("update status of", "DaemonSet", key, error)),
            }
        }
        match first_error {
            Some(error) => Err(error),
            None => Ok(plan.requeue_after),
        }
    }
}

async fn patch_pod(pods: &Api<Pod>, pod: &Pod, patch: serde_json::Value, verb: &'static str) -> Result<()> {
    match pods
        .patch(&pod.name_any(), &PatchParams::default(), &Patch::Merge(&patch))
        .await
    {
        Ok(_) => Ok(()),
        Err(error) if is_not_found(&error) => Ok(()),
        Err(error) => Err(Error::api(verb, "Pod", util::key_of(pod), error)),
    }
}

/// Per DaemonSet and node: until when failed pods are left alone, and the next delay.
#[derive(Default)]
struct Backoff {
    entries: Mutex<HashMap<(String, String), (Instant, Duration)>>,
}

impl Backoff {
    fn nodes_waiting(&self, ds: &str) -> HashSet<String> {
        let mut entries = self.entries.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let now = Instant::now();
        // Entries idle for twice the longest delay are forgotten, like upstream's GC.
        entries.retain(|_, (until, _)| now.saturating_duration_since(*until) < 2 * BACKOFF_MAX);
        entries
            .iter()
            .filter(|((owner, _), (until, _))| owner == ds && *until > now)
            .map(|((_, node), _)| node.clone())
            .collect()
    }

    fn advance(&self, ds: &str, node: &str) {
        let mut entries = self.entries.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let now = Instant::now();
        let entry = entries
            .entry((ds.to_string(), node.to_string()))
            .or_insert((now, Duration::ZERO));
        let delay = if entry.1.is_zero() {
            BACKOFF_INITIAL
        } else {
            (entry.1 * 2).min(BACKOFF_MAX)
        };
        *entry = (now + delay, delay);
    }

    fn forget(&self, ds: &str) {
        self.entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .retain(|(owner, _), _| owner != ds);
    }
}
