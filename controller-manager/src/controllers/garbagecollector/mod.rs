//! The garbage collector: an ownerReference graph over every listable, watchable and
//! deletable resource discovery reports (metadata-only watches), deleting dependents whose
//! owners are all gone (background), deleting the dependents of an owner with the
//! `foregroundDeletion` finalizer before removing the finalizer (foreground), and removing
//! the owner reference from the dependents of an owner with the `orphan` finalizer (orphan).
//!
//! Resources are discovered once at start; an owner of a kind the graph does not watch, or
//! one the graph does not know (yet), is looked up live before a dependent is deleted.

pub mod decide;
pub mod graph;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::api::{
    Api, DeleteParams, DynamicObject, PartialObjectMeta, Patch, PatchParams, Preconditions, PropagationPolicy,
};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::context::Context;
use crate::discovery::{self, Resource};
use crate::error::{Error, Result, is_conflict, is_not_found};
use crate::queue::{WorkQueue, run_workers};
use decide::{Action, OwnerState, Policy};
use graph::{Graph, Node};

/// The controller's name in `--controllers`.
pub const NAME: &str = "garbagecollector";

/// Resources the collector does not watch, as upstream (many, short-lived, never owners).
const IGNORED: &[(&str, &str)] = &[("", "events"), ("events.k8s.io", "events")];

/// How long to wait for every watch's first list before collecting anyway.
const SYNC_TIMEOUT: Duration = Duration::from_secs(60);

struct Collector {
    client: kube::Client,
    resources: Vec<Resource>,
    graph: Mutex<Graph>,
    queue: Arc<WorkQueue<String>>,
}

/// Runs the collector until the context is cancelled.
pub async fn run(ctx: Arc<Context>) -> Result<()> {
    let resources = loop {
        match discovery::resources(&ctx.client).await {
            Ok(resources) => break resources,
            Err(error) => {
                tracing::warn!(%error, "garbage collector discovery failed, retrying");
                tokio::select! {
                    () = ctx.token.cancelled() => return Ok(()),
                    () = tokio::time::sleep(Duration::from_secs(5)) => {}
                }
            }
        }
    };
    let resources: Vec<Resource> = resources
        .into_iter()
        .filter(|r| r.supports("list") && r.supports("watch") && r.supports("delete"))
        .filter(|r| {
            !IGNORED
                .iter()
                .any(|(group, plural)| r.resource.group == *group && r.resource.plural == *plural)
        })
        .collect();
    let collector = Arc::new(Collector {
        client: ctx.client.clone(),
        resources,
        graph: Mutex::new(Graph::default()),
        queue: WorkQueue::new(),
    });
    let (synced_tx, mut synced_rx) = mpsc::channel::<usize>(collector.resources.len().max(1));
    let mut watches = Vec::new();
    for index in 0..collector.resources.len() {
        watches.push(tokio::spawn(watch(collector.clone(), index, synced_tx.clone())));
    }
    drop(synced_tx);
    let mut synced = HashSet::new();
    let deadline = tokio::time::sleep(SYNC_TIMEOUT);
    tokio::pin!(deadline);
    while synced.len() < collector.resources.len() {
        tokio::select! {
            () = ctx.token.cancelled() => break,
            () = &mut deadline => {
                tracing::warn!(synced = synced.len(), total = collector.resources.len(), "garbage collector starts before every watch synced");
                break;
            }
            index = synced_rx.recv() => match index {
                Some(index) => { synced.insert(index); }
                None => break,
            },
        }
    }
    let attention = lock(&collector.graph).all_needing_attention();
    for uid in attention {
        collector.queue.add(uid);
    }
    let queue = collector.queue.clone();
    let workers = ctx.options.concurrent_gc_syncs;
    let worker_collector = collector.clone();
    run_workers(NAME, queue, workers, ctx.token.clone(), move |uid: String| {
        let collector = worker_collector.clone();
        async move { collector.sync(&uid).await }
    })
    .await;
    for task in watches {
        task.abort();
    }
    Ok(())
}

fn lock(graph: &Mutex<Graph>) -> std::sync::MutexGuard<'_, Graph> {
    graph.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn node_of(index: usize, resource: &Resource, meta: &ObjectMeta) -> Option<Node> {
    Some(Node {
        resource: index,
        api_version: resource.resource.api_version.clone(),
        kind: resource.resource.kind.clone(),
        namespace: meta.namespace.clone(),
        name: meta.name.clone()?,
        uid: meta.uid.clone()?,
        resource_version: meta.resource_version.clone(),
        owners: meta.owner_references.clone().unwrap_or_default(),
        finalizers: meta.finalizers.clone().unwrap_or_default(),
        deleting: meta.deletion_timestamp.is_some(),
    })
}

/// Keeps the graph up to date with one resource's objects.
async fn watch(collector: Arc<Collector>, index: usize, synced: mpsc::Sender<usize>) {
    let resource = &collector.resources[index];
    let api: Api<PartialObjectMeta<DynamicObject>> = Api::all_with(collector.client.clone(), &resource.resource);
    let mut stream = watcher::watcher(api, watcher::Config::default())
        .default_backoff()
        .boxed();
    let mut listed: Option<HashSet<String>> = None;
    while let Some(event) = stream.next().await {
        let event = match event {
            Ok(event) => event,
            Err(error) => {
                tracing::debug!(%error, resource = %resource.group_resource(), "garbage collector watch failed, retrying");
                continue;
            }
        };
        let attention = match event {
            Event::Init => {
                listed = Some(HashSet::new());
                Vec::new()
            }
            Event::InitApply(obj) | Event::Apply(obj) => {
                let Some(node) = node_of(index, resource, &obj.metadata) else {
                    continue;
                };
                if let Some(listed) = listed.as_mut() {
                    listed.insert(node.uid.clone());
                }
                lock(&collector.graph).upsert(node)
            }
            Event::Delete(obj) => match obj.metadata.uid.as_deref() {
                Some(uid) => lock(&collector.graph).remove(uid),
                None => Vec::new(),
            },
            Event::InitDone => {
                let seen = listed.take().unwrap_or_default();
                let mut graph = lock(&collector.graph);
                let gone: Vec<String> = graph
                    .uids_of_resource(index)
                    .into_iter()
                    .filter(|uid| !seen.contains(uid))
                    .collect();
                let attention = gone.iter().flat_map(|uid| graph.remove(uid)).collect();
                drop(graph);
                let _ = synced.try_send(index);
                attention
            }
        };
        for uid in attention {
            collector.queue.add(uid);
        }
    }
}

/// Splits `group/version` (or `version`) into its group.
fn group_of(api_version: &str) -> &str {
    api_version.rsplit_once('/').map(|(group, _)| group).unwrap_or("")
}

impl Collector {
    fn api(&self, resource: &Resource, namespace: Option<&str>) -> Api<DynamicObject> {
        match namespace.filter(|_| resource.namespaced()) {
            Some(ns) => Api::namespaced_with(self.client.clone(), ns, &resource.resource),
            None => Api::all_with(self.client.clone(), &resource.resource),
        }
    }

    fn node_api(&self, node: &Node) -> Api<DynamicObject> {
        self.api(&self.resources[node.resource], node.namespace.as_deref())
    }

    async fn sync(&self, uid: &str) -> Result<Option<Duration>> {
        let (node, dependents) = {
            let graph = lock(&self.graph);
            let Some(node) = graph.get(uid).cloned() else {
                return Ok(None);
            };
            (node, graph.dependents(uid))
        };
        if let Some(actions) = decide::decide_deleting(&node, &dependents) {
            return self.apply(&node, actions).await;
        }
        let mut states = Vec::new();
        for owner in &node.owners {
            let known = lock(&self.graph).get(&owner.uid).map(|owner| {
                if owner.deleting_dependents() {
                    OwnerState::Waiting
                } else {
                    OwnerState::Solid
                }
            });
            let state = match known {
                Some(state) => state,
                None => self.look_up_owner(&node, owner).await?,
            };
            states.push((owner.uid.clone(), state));
        }
        let actions = decide::decide_dependent(&node, &states, !dependents.is_empty());
        self.apply(&node, actions).await
    }

    /// The state of an owner the graph does not hold, from the API.
    async fn look_up_owner(&self, node: &Node, owner: &OwnerReference) -> Result<OwnerState> {
        let group = group_of(&owner.api_version);
        let Some(resource) = self
            .resources
            .iter()
            .find(|r| r.resource.group == group && r.resource.kind == owner.kind)
        else {
            return Err(Error::UnknownOwnerKind {
                key: node.key(),
                api_version: owner.api_version.clone(),
                kind: owner.kind.clone(),
            });
        };
        if resource.namespaced() && node.namespace.is_none() {
            // A cluster-scoped object cannot be owned by a namespaced one.
            return Ok(OwnerState::Dangling);
        }
        let api = self.api(resource, node.namespace.as_deref());
        match api.get_metadata_opt(&owner.name).await {
            Ok(Some(found)) if found.metadata.uid.as_deref() == Some(owner.uid.as_str()) => {
                let deleting = found.metadata.deletion_timestamp.is_some()
                    && found
                        .metadata
                        .finalizers
                        .iter()
                        .flatten()
                        .any(|f| f == graph::FOREGROUND);
                Ok(if deleting {
                    OwnerState::Waiting
                } else {
                    OwnerState::Solid
                })
            }
            Ok(_) => Ok(OwnerState::Dangling),
            Err(error) => Err(Error::api(
                "get",
                "owner",
                format!("{} of {}", owner.name, node.key()),
                error,
            )),
        }
    }

    async fn apply(&self, node: &Node, actions: Vec<Action>) -> Result<Option<Duration>> {
        for action in actions {
            match action {
                Action::Enqueue(uids) => uids.into_iter().for_each(|uid| self.queue.add(uid)),
                Action::RemoveOwners { dependent, owners } => {
                    let remaining: Vec<&OwnerReference> = dependent
                        .owners
                        .iter()
                        .filter(|reference| !owners.contains(&reference.uid))
                        .collect();
                    let references = if remaining.is_empty() {
                        Value::Null
                    } else {
                        json!(remaining)
                    };
                    let patch = json!({"metadata": {
                        "ownerReferences": references,
                        "resourceVersion": dependent.resource_version,
                    }});
                    tracing::debug!(object = %dependent.key(), ?owners, "removing owner references");
                    self.patch(&dependent, &patch, "remove owner references from").await?;
                }
                Action::RemoveFinalizer(finalizer) => {
                    let remaining: Vec<&String> = node.finalizers.iter().filter(|f| *f != finalizer).collect();
                    let patch = json!({"metadata": {
                        "finalizers": if remaining.is_empty() { Value::Null } else { json!(remaining) },
                        "resourceVersion": node.resource_version,
                    }});
                    tracing::debug!(object = %node.key(), finalizer, "removing finalizer");
                    self.patch(node, &patch, "remove finalizer from").await?;
                }
                Action::Delete(policy) => {
                    let params = DeleteParams {
                        propagation_policy: Some(match policy {
                            Policy::Background => PropagationPolicy::Background,
                            Policy::Foreground => PropagationPolicy::Foreground,
                            Policy::Orphan => PropagationPolicy::Orphan,
                        }),
                        preconditions: Some(Preconditions {
                            uid: Some(node.uid.clone()),
                            resource_version: None,
                        }),
                        ..DeleteParams::default()
                    };
                    tracing::debug!(object = %node.key(), kind = %node.kind, ?policy, "deleting object whose owners are gone");
                    match self.node_api(node).delete(&node.name, &params).await {
                        Ok(_) => {}
                        // Gone already, or replaced by another object of that name.
                        Err(error) if is_not_found(&error) || is_conflict(&error) => {}
                        Err(error) => return Err(Error::api("delete", "dependent", node.key(), error)),
                    }
                }
            }
        }
        Ok(None)
    }

    async fn patch(&self, node: &Node, patch: &Value, verb: &'static str) -> Result<()> {
        match self
            .node_api(node)
            .patch(&node.name, &PatchParams::default(), &Patch::Merge(patch))
            .await
        {
            Ok(_) => Ok(()),
            Err(error) if is_not_found(&error) => Ok(()),
            Err(error) => Err(Error::api(verb, "object", node.key(), error)),
        }
    }
}
