//! The deployment controller: rolls a Deployment's pods from one ReplicaSet to the next
//! (RollingUpdate or Recreate), keeps revisions and history, and reports progress in the
//! status so that `kubectl rollout status` and `rollout undo` work.

pub mod decide;
pub mod util;

#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams, Preconditions};
use kube::runtime::reflector::Store;
use kube::{Api, ResourceExt};
use serde_json::json;

use crate::context::{Context, EventRecorder};
use crate::controllers::ownership;
use crate::controllers::wiring::{EventForwarder, Forward, When, resync_each};
use crate::error::{Error, Result, is_conflict, is_not_found};
use crate::informer::Change;
use crate::queue::WorkQueue;
use crate::util as common;
use decide::Action;

/// The controller's name in `--controllers`.
pub const NAME: &str = "deployment";

struct Controller {
    client: kube::Client,
    deployments: Store<Deployment>,
    replicasets: Store<ReplicaSet>,
    pods: Store<Pod>,
    recorder: EventRecorder,
}

/// Runs the controller until the context is cancelled.
pub async fn run(ctx: Arc<Context>) -> Result<()> {
    let d_informer = ctx.informers.deployments();
    let rs_informer = ctx.informers.replicasets();
    let pod_informer = ctx.informers.pods();
    let d_changes = d_informer.subscribe();
    let rs_changes = rs_informer.subscribe();
    let pod_changes = pod_informer.subscribe();
    d_informer.wait_ready().await?;
    rs_informer.wait_ready().await?;
    pod_informer.wait_ready().await?;
    tracing::debug!(controller = NAME, "caches synced");
    let controller = Arc::new(Controller {
        client: ctx.client.clone(),
        deployments: d_informer.store(),
        replicasets: rs_informer.store(),
        pods: pod_informer.store(),
        recorder: ctx.recorder("deployment-controller"),
    });
    let queue = WorkQueue::<String>::new();
    let enqueue_all = resync_each(&queue, &controller.deployments, |d| [common::key_of(d)]);
    enqueue_all();
    let (deployments, replicasets) = (controller.deployments.clone(), controller.replicasets.clone());
    let rs_deployments = deployments.clone();
    let workers = ctx.options.concurrent_deployment_syncs;
    EventForwarder::new(&queue, enqueue_all)
        .on(d_changes, When::Changed, |d| [common::key_of(d)])
        .on(rs_changes, When::Changed, move |rs| owners_of(rs, &rs_deployments))
        .watch(pod_changes, move |change| match change {
            // Recreate waits for old pods to be gone; a pod resync is no reason to look again.
            Change::Deleted(pod) => {
                let rs = common::controller_of(&pod.metadata)
                    .filter(|owner| owner.kind == "ReplicaSet")
                    .and_then(|owner| common::get(&replicasets, &common::key(pod.namespace().as_deref(), &owner.name)));
                Forward::Keys(rs.map(|rs| owners_of(&rs, &deployments)).unwrap_or_default())
            }
            Change::Applied(_) | Change::Resynced => Forward::Nothing,
        })
        .run_workers(NAME, workers, &ctx.token, move |key: String| {
            let controller = controller.clone();
            async move { controller.sync(&key).await }
        })
        .await;
    Ok(())
}

/// The Deployments to sync when `rs` changes: its controller, or those selecting an orphan.
fn owners_of(rs: &ReplicaSet, deployments: &Store<Deployment>) -> Vec<String> {
    let namespace = rs.namespace();
    if let Some(owner) = common::controller_of(&rs.metadata) {
        if owner.kind == "Deployment" {
            return vec![common::key(namespace.as_deref(), &owner.name)];
        }
        return Vec::new();
    }
    deployments
        .state()
        .iter()
        .filter(|d| d.namespace() == namespace && common::selects(&d.spec.selector, rs.labels()))
        .map(|d| common::key_of(d.as_ref()))
        .collect()
}

impl Controller {
    async fn sync(&self, key: &str) -> Result<Option<Duration>> {
        let Some(d) = common::get(&self.deployments, key) else {
            return Ok(None);
        };
        let namespace = d.namespace();
        let in_namespace = |ns: Option<String>| ns == namespace;
        let replicasets: Vec<Arc<ReplicaSet>> = self
            .replicasets
            .state()
            .into_iter()
            .filter(|rs| in_namespace(rs.namespace()))
            .collect();
        let pods: Vec<Arc<Pod>> = self
            .pods
            .state()
            .into_iter()
            .filter(|pod| in_namespace(pod.namespace()))
            .collect();
        let plan = decide::decide(&d, &replicasets, &pods, jiff::Timestamp::now());
        for action in plan.actions {
            if let Some(again) = self.apply(&d, key, action).await? {
                return Ok(Some(again));
            }
        }
        Ok(plan.requeue_after)
    }

    /// Applies one action; `Some(delay)` stops the sync and retries after `delay`.
    async fn apply(&self, d: &Deployment, key: &str, action: Action) -> Result<Option<Duration>> {
        let namespace = d.namespace().unwrap_or_default();
        let rs_api: Api<ReplicaSet> = Api::namespaced(self.client.clone(), &namespace);
        let d_api: Api<Deployment> = Api::namespaced(self.client.clone(), &namespace);
        let params = PatchParams::default();
        let tolerate_missing = |result: kube::Result<ReplicaSet>, verb, name: &str| match result {
            Ok(_) => Ok(()),
            Err(error) if is_not_found(&error) => Ok(()),
            Err(error) => Err(Error::api(
                verb,
                "ReplicaSet",
                common::key(Some(&namespace), name),
                error,
            )),
        };
        match action {
            Action::AdoptReplicaSet(rs) => {
                let patch = ownership::adopt_patch(&rs.metadata, common::controller_ref(d));
                tolerate_missing(
                    rs_api.patch(&rs.name_any(), &params, &Patch::Merge(&patch)).await,
                    "adopt",
                    &rs.name_any(),
                )?;
            }
            Action::ReleaseReplicaSet(rs) => {
                let uid = d.metadata.uid.clone().unwrap_or_default();
                let patch = ownership::release_patch(&rs.metadata, &uid);
                tolerate_missing(
                    rs_api.patch(&rs.name_any(), &params, &Patch::Merge(&patch)).await,
                    "release",
                    &rs.name_any(),
                )?;
            }
            Action::CreateReplicaSet(rs) => {
                let name = rs.name_any();
                match rs_api.create(&PostParams::default(), &rs).await {
                    Ok(created) => {
                        let size = created.spec.replicas.unwrap_or(0);
                        if size > 0 {
                            let note = format!("Scaled up replica set {name} from 0 to {size}");
                            self.recorder.publish(d, false, "ScalingReplicaSet", note).await;
                        }
                    }
                    Err(error) if is_conflict(&error) => {
                        let existing = rs_api.get(&name).await.map_err(|error| {
                            Error::api("get", "ReplicaSet", common::key(Some(&namespace), &name), error)
                        })?;
                        let same = existing
                            .spec
                            .template
                            .as_ref()
                            .is_some_and(|template| util::equal_ignore_hash(template, &d.spec.template));
                        if !same {
                            // A hash collision: bump collisionCount so the next name differs.
                            let count = d.status.as_ref().and_then(|s| s.collision_count).unwrap_or(0) + 1;
                            let patch = json!({"status": {"collisionCount": count}});
                            d_api
                                .patch_status(&d.name_any(), &params, &Patch::Merge(&patch))
                                .await
                                .map_err(|error| Error::api("update status of", "Deployment", key, error))?;
                        }
                        // The cache is behind (or the name changes): look again shortly.
                        return Ok(Some(Duration::from_millis(200)));
                    }
                    Err(error) => {
                        let note = format!("Failed to create new replica set \"{name}\": {error}");
                        self.recorder.publish(d, true, "ReplicaSetCreateError", note).await;
                        return Err(Error::api(
                            "create",
                            "ReplicaSet",
                            common::key(Some(&namespace), &name),
                            error,
                        ));
                    }
                }
            }
            Action::UpdateReplicaSet { rs, scaled_from } => {
                let name = rs.name_any();
                let size = rs.spec.replicas.unwrap_or(1);
                let patch = json!({
                    "metadata": {"annotations": rs.metadata.annotations, "resourceVersion": rs.metadata.resource_version},
                    "spec": {"replicas": size, "minReadySeconds": rs.spec.min_ready_seconds},
                });
                match rs_api.patch(&name, &params, &Patch::Merge(&patch)).await {
                    Ok(_) if size != scaled_from => {
                        let direction = if size > scaled_from { "up" } else { "down" };
                        let note = format!("Scaled {direction} replica set {name} from {scaled_from} to {size}");
                        self.recorder.publish(d, false, "ScalingReplicaSet", note).await;
                    }
                    result => tolerate_missing(result, "update", &name)?,
                }
            }
            Action::DeleteReplicaSet { name, uid } => {
                let params = DeleteParams {
                    preconditions: Some(Preconditions {
                        uid: Some(uid),
                        resource_version: None,
                    }),
                    ..DeleteParams::default()
                };
                match rs_api.delete(&name, &params).await {
                    Ok(_) => {}
                    Err(error) if is_not_found(&error) || is_conflict(&error) => {}
                    Err(error) => {
                        return Err(Error::api(
                            "delete",
                            "ReplicaSet",
                            common::key(Some(&namespace), &name),
                            error,
                        ));
                    }
                }
            }
            Action::AnnotateDeployment(annotations) => {
                let patch = json!({"metadata": {"annotations": annotations}});
                match d_api.patch(&d.name_any(), &params, &Patch::Merge(&patch)).await {
                    Ok(_) => {}
                    Err(error) if is_not_found(&error) => {}
                    Err(error) => return Err(Error::api("annotate", "Deployment", key, error)),
                }
            }
            Action::UpdateStatus(status) => {
                let patch = json!({ "status": status });
                match d_api.patch_status(&d.name_any(), &params, &Patch::Merge(&patch)).await {
                    Ok(_) => {}
                    Err(error) if is_not_found(&error) => {}
                    Err(error) => return Err(Error::api("update status of", "Deployment", key, error)),
                }
            }
        }
        Ok(None)
    }
}
