//! The statefulset controller: pods `<set>-0 … <set>-N-1` with stable hostnames under the
//! governing Service, one PersistentVolumeClaim per claim template and ordinal (created, never
//! deleted: there is no provisioner and the default retention policy is Retain), created in
//! order (`OrderedReady`: each waits for the previous to be Running and Ready) or all at once
//! (`Parallel`), removed from the highest ordinal down, and rolled to a new template from the
//! highest ordinal down to the partition. The template history is kept as ControllerRevisions
//! (shared with the daemonset controller).
//!
//! The shared context has no StatefulSet or ControllerRevision informer yet, so this
//! controller starts its own watches of those two types.

pub mod decide;
#[cfg(test)]
mod tests;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use futures::future::join_all;
use k8s_openapi::api::apps::v1::{ControllerRevision, StatefulSet};
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod, PodTemplateSpec};
use kube::api::{DeleteParams, Patch, PatchParams, PostParams, Preconditions};
use kube::runtime::reflector::Store;
use kube::runtime::watcher;
use kube::{Api, ResourceExt};
use serde_json::json;

use crate::context::{Context, EventRecorder};
use crate::controllers::daemonset::history::{self, Owner};
use crate::controllers::daemonset::revisions;
use crate::controllers::ownership;
use crate::controllers::wiring::{EventForwarder, When, resync_each};
use crate::error::{Error, Result, is_conflict, is_not_found};
use crate::informer::Informer;
use crate::queue::WorkQueue;
use crate::util;

/// The controller's name in `--controllers`.
pub const NAME: &str = "statefulset";

/// Upstream's `--concurrent-statefulset-syncs` default.
const WORKERS: usize = 5;

struct Controller {
    client: kube::Client,
    sets: Store<StatefulSet>,
    revisions: Store<ControllerRevision>,
    pods: Store<Pod>,
    recorder: EventRecorder,
}

/// Runs the controller until the context is cancelled.
pub async fn run(ctx: Arc<Context>) -> Result<()> {
    let set_informer = Informer::start(
        Api::<StatefulSet>::all(ctx.client.clone()),
        watcher::Config::default(),
        "statefulsets",
        ctx.token.clone(),
    );
    let revision_informer = Informer::start(
        Api::<ControllerRevision>::all(ctx.client.clone()),
        watcher::Config::default(),
        "controllerrevisions",
        ctx.token.clone(),
    );
    let pod_informer = ctx.informers.pods();
    let set_changes = set_informer.subscribe();
    let revision_changes = revision_informer.subscribe();
    let pod_changes = pod_informer.subscribe();
    set_informer.wait_ready().await?;
    revision_informer.wait_ready().await?;
    pod_informer.wait_ready().await?;
    let controller = Arc::new(Controller {
        client: ctx.client.clone(),
        sets: set_informer.store(),
        revisions: revision_informer.store(),
        pods: pod_informer.store(),
        recorder: ctx.recorder("statefulset-controller"),
    });
    let queue = WorkQueue::<String>::new();
    let enqueue_all = resync_each(&queue, &controller.sets, |set| [util::key_of(set)]);
    enqueue_all();
    let sets = controller.sets.clone();
    EventForwarder::new(&queue, enqueue_all)
        .on(set_changes, When::Changed, |set| [util::key_of(set)])
        .on(revision_changes, When::Changed, |revision: &ControllerRevision| {
            owner_key(&revision.metadata, revision.namespace().as_deref())
        })
        .on(pod_changes, When::Changed, move |pod| owners_of(pod, &sets))
        .run_workers(NAME, WORKERS, &ctx.token, move |key: String| {
            let controller = controller.clone();
            async move { controller.sync(&key).await }
        })
        .await;
    Ok(())
}

fn owner_key(
    meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
    namespace: Option<&str>,
) -> Vec<String> {
    util::controller_key(meta, namespace, "StatefulSet")
}

/// The StatefulSets to sync when `pod` changes: its controller, else the set its name says it
/// belongs to (it may be adopted).
fn owners_of(pod: &Pod, sets: &Store<StatefulSet>) -> Vec<String> {
    let namespace = pod.namespace();
    if util::controller_of(&pod.metadata).is_some() {
        return owner_key(&pod.metadata, namespace.as_deref());
    }
    let name = pod.name_any();
    let Some((parent, _)) = decide::parent_and_ordinal(&name) else {
        return Vec::new();
    };
    let key = util::key(namespace.as_deref(), parent);
    match util::get(sets, &key) {
        Some(set) if util::selects(&set.spec.selector, pod.labels()) => vec![key],
        _ => Vec::new(),
    }
}

/// A StatefulSet as the owner of a template history.
fn history_owner(set: &StatefulSet) -> Owner<'_> {
    Owner {
        name: set.metadata.name.as_deref().unwrap_or_default(),
        namespace: set.metadata.namespace.as_deref(),
        uid: set.metadata.uid.as_deref().unwrap_or_default(),
        template: &set.spec.template,
        collision_count: set.status.as_ref().and_then(|status| status.collision_count),
        history_limit: set.spec.revision_history_limit,
        reference: util::controller_ref(set),
        annotations: set.metadata.annotations.as_ref(),
    }
}

impl Controller {
    async fn sync(&self, key: &str) -> Result<Option<Duration>> {
        let Some(set) = util::get(&self.sets, key) else {
            return Ok(None);
        };
        let namespace = set.namespace().unwrap_or_default();
        let pods: Vec<Arc<Pod>> = self
            .pods
            .state()
            .into_iter()
            .filter(|pod| pod.namespace().as_deref() == Some(namespace.as_str()))
            .collect();

        // The revisions: the update one holds the current template, the current one is what
        // the status names (or the update one).
        let owner = history_owner(&set);
        let owned = history::owned(&owner, &self.revisions.state());
        let status = set.status.clone().unwrap_or_default();
        let pod_revisions: HashSet<&str> = pods
            .iter()
            .filter_map(|pod| pod.labels().get(decide::REVISION_LABEL).map(String::as_str))
            .collect();
        let plan = history::plan(&owner, &owned, |revision| {
            let name = revision.metadata.name.as_deref().unwrap_or_default();
            pod_revisions.contains(name) || status.current_revision.as_deref() == Some(name)
        });
        let update_name = match revisions::apply(&self.client, &owner, &plan).await? {
            revisions::Applied::Current { name, .. } => name,
            revisions::Applied::Collision => {
                self.raise_collision_count(&set).await?;
                return Ok(None);
            }
        };
        let current_template: Option<PodTemplateSpec> = status
            .current_revision
            .as_deref()
            .filter(|name| *name != update_name)
            .and_then(|name| {
                owned
                    .iter()
                    .find(|revision| revision.metadata.name.as_deref() == Some(name))
            })
            .and_then(|revision| history::template_of(revision));
        let update = decide::Revision {
            name: &update_name,
            template: &set.spec.template,
        };
        let current = match (&current_template, status.current_revision.as_deref()) {
            (Some(template), Some(name)) => decide::Revision { name, template },
            _ => update,
        };
        let inputs = decide::Inputs {
            pods: &pods,
            current,
            update,
            now: jiff::Timestamp::now(),
        };
        let plan = decide::decide(&set, &inputs);
        self.apply(&set, key, plan).await
    }

    async fn raise_collision_count(&self, set: &StatefulSet) -> Result<()> {
        let count = set
            .status
            .as_ref()
            .and_then(|status| status.collision_count)
            .unwrap_or(0);
        let api: Api<StatefulSet> = Api::namespaced(self.client.clone(), &set.namespace().unwrap_or_default());
        let patch = json!({"status": {"collisionCount": count.saturating_add(1)}});
        api.patch_status(&set.name_any(), &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map(|_| ())
            .map_err(|error| Error::api("update status of", "StatefulSet", util::key_of(set), error))
    }

    async fn apply(&self, set: &StatefulSet, key: &str, plan: decide::Plan) -> Result<Option<Duration>> {
        let namespace = set.namespace().unwrap_or_default();
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), &namespace);
        let claims: Api<PersistentVolumeClaim> = Api::namespaced(self.client.clone(), &namespace);
        let owner = util::controller_ref(set);
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
        for (pod, patch) in &plan.relabel {
            patch_pod(&pods, pod, patch.clone(), "relabel").await?;
        }
        let creations = plan
            .create
            .iter()
            .map(|create| self.create(set, key, &pods, &claims, create));
        let mut first_error = join_all(creations).await.into_iter().find_map(Result::err);

        let deletions = plan.delete.iter().map(|pod| {
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
        for (pod, result) in join_all(deletions).await {
            let name = pod.name_any();
            match result {
                Ok(_) => {
                    self.recorder
                        .publish(
                            set,
                            false,
                            "SuccessfulDelete",
                            format!("delete Pod {name} in StatefulSet {} successful", set.name_any()),
                        )
                        .await;
                }
                Err(error) if is_not_found(&error) || is_conflict(&error) => {}
                Err(error) => {
                    self.recorder
                        .publish(
                            set,
                            true,
                            "FailedDelete",
                            format!("delete Pod {name} in StatefulSet {} failed: {error}", set.name_any()),
                        )
                        .await;
                    first_error.get_or_insert(Error::api("delete", "Pod", key, error));
                }
            }
        }

        if let Some(status) = plan.status {
            let api: Api<StatefulSet> = Api::namespaced(self.client.clone(), &namespace);
            let patch = json!({ "status": status });
            match api
                .patch_status(&set.name_any(), &PatchParams::default(), &Patch::Merge(&patch))
                .await
            {
                Ok(_) => {}
                Err(error) if is_not_found(&error) => {}
                Err(error) => return Err(Error::api("update status of", "StatefulSet", key, error)),
            }
        }
        match first_error {
            Some(error) => Err(error),
            None => Ok(plan.requeue_after),
        }
    }

    /// Creates a pod's claims (those that exist already are kept), then the pod. A pod that
    /// exists already is a lagging cache, not an error.
    async fn create(
        &self,
        set: &StatefulSet,
        key: &str,
        pods: &Api<Pod>,
        claims: &Api<PersistentVolumeClaim>,
        create: &decide::Create,
    ) -> Result<()> {
        let set_name = set.name_any();
        for claim in &create.claims {
            let name = claim.name_any();
            match claims.create(&PostParams::default(), claim).await {
                Ok(_) => {
                    self.recorder
                        .publish(
                            set,
                            false,
                            "SuccessfulCreate",
                            format!("create Claim {name} in StatefulSet {set_name} success"),
                        )
                        .await;
                }
                Err(error) if is_conflict(&error) => {}
                Err(error) => {
                    self.recorder
                        .publish(
                            set,
                            true,
                            "FailedCreate",
                            format!("create Claim {name} in StatefulSet {set_name} failed: {error}"),
                        )
                        .await;
                    return Err(Error::api("create", "PersistentVolumeClaim", key, error));
                }
            }
        }
        let name = create.pod.name_any();
        match pods.create(&PostParams::default(), &create.pod).await {
            Ok(_) => {
                self.recorder
                    .publish(
                        set,
                        false,
                        "SuccessfulCreate",
                        format!("create Pod {name} in StatefulSet {set_name} successful"),
                    )
                    .await;
                Ok(())
            }
            Err(error) if is_conflict(&error) => Ok(()),
            Err(error) => {
                self.recorder
                    .publish(
                        set,
                        true,
                        "FailedCreate",
                        format!("create Pod {name} in StatefulSet {set_name} failed: {error}"),
                    )
                    .await;
                Err(Error::api("create", "Pod", key, error))
            }
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
