//! The replicaset controller: keeps `spec.replicas` pods of each ReplicaSet, adopting and
//! releasing pods by selector, and reports their readiness in the status.

pub mod decide;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures::future::join_all;
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams, Preconditions};
use kube::runtime::reflector::Store;
use kube::{Api, ResourceExt};

use crate::context::{Context, EventRecorder};
use crate::controllers::expectations::Expectations;
use crate::controllers::ownership;
use crate::controllers::wiring::{EventForwarder, When, resync_each};
use crate::error::{Error, Result, is_not_found};
use crate::queue::WorkQueue;
use crate::util;

/// The controller's name in `--controllers`.
pub const NAME: &str = "replicaset";

/// How long to wait before re-checking unmet expectations (pod events normally come first).
const EXPECTATIONS_RECHECK: Duration = Duration::from_secs(2);

struct Controller {
    client: kube::Client,
    replicasets: Store<ReplicaSet>,
    pods: Store<Pod>,
    expectations: Expectations,
    recorder: EventRecorder,
}

/// Runs the controller until the context is cancelled.
pub async fn run(ctx: Arc<Context>) -> Result<()> {
    let rs_informer = ctx.informers.replicasets();
    let pod_informer = ctx.informers.pods();
    let rs_changes = rs_informer.subscribe();
    let pod_changes = pod_informer.subscribe();
    rs_informer.wait_ready().await?;
    pod_informer.wait_ready().await?;
    let controller = Arc::new(Controller {
        client: ctx.client.clone(),
        replicasets: rs_informer.store(),
        pods: pod_informer.store(),
        expectations: Expectations::default(),
        recorder: ctx.recorder("replicaset-controller"),
    });
    let queue = WorkQueue::<String>::new();
    let enqueue_all = resync_each(&queue, &controller.replicasets, |rs| [util::key_of(rs)]);
    enqueue_all();
    let replicasets = controller.replicasets.clone();
    let workers = ctx.options.concurrent_replicaset_syncs;
    EventForwarder::new(&queue, enqueue_all)
        .on(rs_changes, When::Changed, |rs| [util::key_of(rs)])
        .on(pod_changes, When::Changed, move |pod| owners_of(pod, &replicasets))
        .run_workers(NAME, workers, &ctx.token, move |key: String| {
            let controller = controller.clone();
            async move { controller.sync(&key).await }
        })
        .await;
    Ok(())
}

/// The ReplicaSets to sync when `pod` changes: its controller if that is a ReplicaSet, else
/// every ReplicaSet of its namespace whose selector matches it (it may be adopted).
fn owners_of(pod: &Pod, replicasets: &Store<ReplicaSet>) -> Vec<String> {
    let namespace = pod.namespace();
    if let Some(owner) = util::controller_of(&pod.metadata) {
        if owner.kind == "ReplicaSet" {
            return vec![util::key(namespace.as_deref(), &owner.name)];
        }
        return Vec::new();
    }
    let labels = pod.labels();
    replicasets
        .state()
        .iter()
        .filter(|rs| rs.namespace() == namespace)
        .filter(|rs| util::selects(&rs.spec.selector, labels))
        .map(|rs| util::key_of(rs.as_ref()))
        .collect()
}

impl Controller {
    async fn sync(&self, key: &str) -> Result<Option<Duration>> {
        let Some(rs) = util::get(&self.replicasets, key) else {
            self.expectations.forget(key);
            return Ok(None);
        };
        let namespace = rs.namespace().unwrap_or_default();
        let pods: Vec<Arc<Pod>> = self
            .pods
            .state()
            .into_iter()
            .filter(|pod| pod.namespace().as_deref() == Some(namespace.as_str()))
            .collect();
        let by_uid: HashMap<&str, &Pod> = pods
            .iter()
            .filter_map(|pod| Some((pod.metadata.uid.as_deref()?, pod.as_ref())))
            .collect();
        let met = self.expectations.satisfied(
            key,
            |name| pods.iter().any(|pod| pod.metadata.name.as_deref() == Some(name)),
            |uid| by_uid.get(uid).is_none_or(|pod| util::is_deleting(&pod.metadata)),
        );
        let plan = decide::decide(&rs, &pods, jiff::Timestamp::now(), met);
        self.apply(&rs, key, plan, met).await
    }

    async fn apply(&self, rs: &ReplicaSet, key: &str, plan: decide::Plan, met: bool) -> Result<Option<Duration>> {
        let namespace = rs.namespace().unwrap_or_default();
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), &namespace);
        let owner = util::controller_ref(rs);
        for pod in &plan.adopt {
            let patch = ownership::adopt_patch(&pod.metadata, owner.clone());
            patch_pod(&pods, pod, patch, "adopt").await?;
        }
        for pod in &plan.release {
            let patch = ownership::release_patch(&pod.metadata, &owner.uid);
            patch_pod(&pods, pod, patch, "release").await?;
        }

        let mut first_error = None;
        if plan.create > 0 {
            let template = pod_from_template(rs);
            let mut created = Vec::new();
            let mut remaining = plan.create;
            let mut batch = 1;
            'batches: while remaining > 0 {
                let size = batch.min(remaining);
                let params = PostParams::default();
                let results = join_all((0..size).map(|_| pods.create(&params, &template))).await;
                for result in results {
                    match result {
                        Ok(pod) => {
                            let name = pod.name_any();
                            self.recorder
                                .publish(rs, false, "SuccessfulCreate", format!("Created pod: {name}"))
                                .await;
                            created.push(name);
                        }
                        Err(error) => {
                            self.recorder
                                .publish(rs, true, "FailedCreate", format!("Error creating: {error}"))
                                .await;
                            first_error.get_or_insert(Error::api("create", "Pod", key, error));
                        }
                    }
                }
                if first_error.is_some() {
                    break 'batches;
                }
                remaining -= size;
                batch *= 2;
            }
            self.expectations.expect(key, created, Vec::new());
        }
        if !plan.delete.is_empty() {
            let results = join_all(plan.delete.iter().map(|pod| {
                let params = DeleteParams {
                    preconditions: Some(Preconditions {
                        uid: pod.metadata.uid.clone(),
                        resource_version: None,
                    }),
                    ..DeleteParams::default()
                };
                let pods = pods.clone();
                async move { (pod, pods.delete(&pod.name_any(), &params).await) }
            }))
            .await;
            let mut deleted = Vec::new();
            for (pod, result) in results {
                match result {
                    Ok(_) => {
                        self.recorder
                            .publish(
                                rs,
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
                            .publish(rs, true, "FailedDelete", format!("Error deleting: {error}"))
                            .await;
                        first_error.get_or_insert(Error::api("delete", "Pod", key, error));
                    }
                }
            }
            self.expectations.expect(key, Vec::new(), deleted);
        }

        if let Some(status) = plan.status {
            let api: Api<ReplicaSet> = Api::namespaced(self.client.clone(), &namespace);
            let patch = serde_json::json!({ "status": status });
            match api
                .patch_status(&rs.name_any(), &PatchParams::default(), &Patch::Merge(&patch))
                .await
            {
                Ok(_) => {}
                Err(error) if is_not_found(&error) => {}
                Err(error) => return Err(Error::api("update status of", "ReplicaSet", key, error)),
            }
        }
        if let Some(error) = first_error {
            return Err(error);
        }
        if !met {
            return Ok(Some(EXPECTATIONS_RECHECK));
        }
        Ok(plan.requeue_after)
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

/// The pod a ReplicaSet creates: its template, named `<rs>-<random>`, controlled by it.
pub fn pod_from_template(rs: &ReplicaSet) -> Pod {
    let template = rs.spec.template.clone().unwrap_or_default();
    let template_meta = template.metadata.unwrap_or_default();
    let mut prefix = format!("{}-", rs.name_any());
    if prefix.len() > 58 {
        prefix.truncate(57);
        prefix.push('-');
    }
    Pod {
        metadata: ObjectMeta {
            generate_name: Some(prefix),
            namespace: rs.namespace(),
            labels: template_meta.labels,
            annotations: template_meta.annotations,
            finalizers: template_meta.finalizers,
            owner_references: Some(vec![util::controller_ref(rs)]),
            ..Default::default()
        },
        spec: template.spec,
        status: None,
    }
}
