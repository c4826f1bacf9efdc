//! The job controller: runs each Job's pods to completion (completions, parallelism, Indexed
//! completion mode, back-off after failures, backoffLimit, activeDeadlineSeconds, suspend,
//! podFailurePolicy), counts finished pods exactly once through the tracking finalizer and
//! reports it all in the Job's status and conditions.

pub mod decide;
pub mod pods;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::join_all;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams, Preconditions};
use kube::runtime::reflector::Store;
use kube::{Api, ResourceExt};
use serde_json::json;

use crate::context::{Context, EventRecorder};
use crate::controllers::expectations::Expectations;
use crate::controllers::wiring::{EventForwarder, When};
use crate::error::{Error, Result, is_not_found};
use crate::queue::WorkQueue;
use crate::util;

/// The controller's name in `--controllers`.
pub const NAME: &str = "job";

/// How long to wait before re-checking unmet expectations (watch events normally come first).
const EXPECTATIONS_RECHECK: Duration = Duration::from_secs(1);

struct Controller {
    client: kube::Client,
    jobs: Store<Job>,
    pods: Store<Pod>,
    /// Pods created and deleted, until the cache shows them.
    expectations: Expectations,
    /// Tracking finalizers removed (by pod uid), until the cache shows them gone.
    finalizers: Expectations,
    /// The resourceVersion of each Job's last status write, until the cache has caught up.
    written: Mutex<HashMap<String, u64>>,
    recorder: EventRecorder,
}

/// Runs the controller until the context is cancelled.
pub async fn run(ctx: Arc<Context>) -> Result<()> {
    let job_informer = ctx.informers.jobs();
    let pod_informer = ctx.informers.pods();
    let job_changes = job_informer.subscribe();
    let pod_changes = pod_informer.subscribe();
    job_informer.wait_ready().await?;
    pod_informer.wait_ready().await?;
    let controller = Arc::new(Controller {
        client: ctx.client.clone(),
        jobs: job_informer.store(),
        pods: pod_informer.store(),
        expectations: Expectations::default(),
        finalizers: Expectations::default(),
        written: Mutex::new(HashMap::new()),
        recorder: ctx.recorder("job-controller"),
    });
    let queue = WorkQueue::<String>::new();
    let enqueue_all = {
        let queue = queue.clone();
        let jobs = controller.jobs.clone();
        let pods = controller.pods.clone();
        move || {
            jobs.state()
                .iter()
                .for_each(|job| queue.add(util::key_of(job.as_ref())));
            // Pods of Jobs that are gone may still hold the tracking finalizer.
            pods.state()
                .iter()
                .filter(|pod| pods::has_tracking_finalizer(pod))
                .filter_map(|pod| owner_key(pod))
                .for_each(|key| queue.add(key));
        }
    };
    enqueue_all();
    let workers = ctx.options.concurrent_job_syncs;
    EventForwarder::new(&queue, enqueue_all)
        .on(job_changes, When::Changed, |job| [util::key_of(job)])
        .on(pod_changes, When::Changed, owner_key)
        .run_workers(NAME, workers, &ctx.token, move |key: String| {
            let controller = controller.clone();
            async move { controller.sync(&key).await }
        })
        .await;
    Ok(())
}

/// The key of the Job controlling `pod`, if a Job does.
fn owner_key(pod: &Pod) -> Option<String> {
    let owner = util::controller_of(&pod.metadata)?;
    (owner.kind == "Job" && owner.api_version.starts_with("batch/"))
        .then(|| util::key(pod.namespace().as_deref(), &owner.name))
}

fn resource_version(job: &Job) -> Option<u64> {
    job.metadata.resource_version.as_deref()?.parse().ok()
}

impl Controller {
    async fn sync(&self, key: &str) -> Result<Option<Duration>> {
        let (namespace, name) = util::split_key(key);
        let namespace = namespace.unwrap_or_default().to_string();
        let Some(job) = util::get(&self.jobs, key) else {
            self.expectations.forget(key);
            self.finalizers.forget(key);
            self.lock_written().remove(key);
            return self.release_orphans(&namespace, name).await.map(|()| None);
        };
        // A status written by the previous sync must be visible before deciding again.
        if let (Some(written), Some(cached)) = (self.lock_written().get(key).copied(), resource_version(&job))
            && cached < written
        {
            return Ok(Some(EXPECTATIONS_RECHECK));
        }
        let uid = job.metadata.uid.clone().unwrap_or_default();
        let owned: Vec<Arc<Pod>> = self
            .pods
            .state()
            .into_iter()
            .filter(|pod| pod.namespace().as_deref() == Some(namespace.as_str()))
            .filter(|pod| util::controller_of(&pod.metadata).is_some_and(|owner| owner.uid == uid))
            .collect();
        let by_uid: HashMap<&str, &Pod> = owned
            .iter()
            .filter_map(|pod| Some((pod.metadata.uid.as_deref()?, pod.as_ref())))
            .collect();
        let pods_met = self.expectations.satisfied(
            key,
            |name| owned.iter().any(|pod| pod.metadata.name.as_deref() == Some(name)),
            |uid| by_uid.get(uid).is_none_or(|pod| util::is_deleting(&pod.metadata)),
        );
        let finalizers_met = self.finalizers.satisfied(
            key,
            |_| true,
            |uid| by_uid.get(uid).is_none_or(|pod| !pods::has_tracking_finalizer(pod)),
        );
        if !pods_met || !finalizers_met {
            return Ok(Some(EXPECTATIONS_RECHECK));
        }
        let plan = decide::decide(&job, &owned, jiff::Timestamp::now());
        self.apply(&job, key, plan).await
    }

    fn lock_written(&self) -> std::sync::MutexGuard<'_, HashMap<String, u64>> {
        self.written.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Removes the tracking finalizer from pods whose Job is gone.
    async fn release_orphans(&self, namespace: &str, name: &str) -> Result<()> {
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), namespace);
        let orphans: Vec<Arc<Pod>> = self
            .pods
            .state()
            .into_iter()
            .filter(|pod| pod.namespace().as_deref() == Some(namespace))
            .filter(|pod| pods::has_tracking_finalizer(pod))
            .filter(|pod| owner_key(pod).is_some_and(|key| util::split_key(&key).1 == name))
            .collect();
        for pod in orphans {
            remove_finalizer(&pods, &pod).await?;
        }
        Ok(())
    }

    async fn apply(&self, job: &Job, key: &str, plan: decide::Plan) -> Result<Option<Duration>> {
        let namespace = job.namespace().unwrap_or_default();
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), &namespace);
        let mut first_error = None;

        // Pods deleted by the controller lose the finalizer first: they are not failures.
        let mut deleted = Vec::new();
        for pod in &plan.delete {
            if let Err(error) = remove_finalizer(&pods, pod).await {
                first_error.get_or_insert(error);
                continue;
            }
            let params = DeleteParams {
                preconditions: Some(Preconditions {
                    uid: pod.metadata.uid.clone(),
                    resource_version: None,
                }),
                ..DeleteParams::default()
            };
            match pods.delete(&pod.name_any(), &params).await {
                Ok(_) => {
                    let message = format!("Deleted pod: {}", pod.name_any());
                    self.recorder.publish(job, false, "SuccessfulDelete", message).await;
                    deleted.push(pod.metadata.uid.clone().unwrap_or_default());
                }
                Err(error) if is_not_found(&error) => {}
                Err(error) => {
                    let message = format!("Error deleting: {error}");
                    self.recorder.publish(job, true, "FailedDelete", message).await;
                    first_error.get_or_insert(Error::api("delete", "Pod", key, error));
                }
            }
        }
        self.expectations.expect(key, Vec::new(), deleted);

        // Created in slow-start batches (1, 2, 4, ...), stopping at the first failure.
        let mut created = Vec::new();
        let mut remaining: &[Option<i32>] = &plan.create;
        let mut batch = 1;
        while !remaining.is_empty() && first_error.is_none() {
            let (now, later) = remaining.split_at(batch.min(remaining.len()));
            remaining = later;
            batch *= 2;
            let params = PostParams::default();
            let results = join_all(now.iter().map(|index| {
                let pod = pods::pod_from_template(job, *index);
                let pods = pods.clone();
                let params = params.clone();
                async move { pods.create(&params, &pod).await }
            }))
            .await;
            for result in results {
                match result {
                    Ok(pod) => {
                        let name = pod.name_any();
                        self.recorder
                            .publish(job, false, "SuccessfulCreate", format!("Created pod: {name}"))
                            .await;
                        created.push(name);
                    }
                    Err(error) => {
                        let message = format!("Error creating: {error}");
                        self.recorder.publish(job, true, "FailedCreate", message).await;
                        first_error.get_or_insert(Error::api("create", "Pod", key, error));
                    }
                }
            }
        }
        self.expectations.expect(key, created, Vec::new());
        if let Some(error) = first_error {
            return Err(error);
        }

        // The status (with newly uncounted pods) goes first, guarded by the cached
        // resourceVersion; only then may finalizers go.
        if let Some(status) = plan.status {
            let api: Api<Job> = Api::namespaced(self.client.clone(), &namespace);
            let mut updated = job.clone();
            updated.status = Some(status);
            match api
                .replace_status(&job.name_any(), &PostParams::default(), &updated)
                .await
            {
                Ok(written) => {
                    if let Some(version) = resource_version(&written) {
                        self.lock_written().insert(key.to_string(), version);
                    }
                }
                Err(error) if is_not_found(&error) => return Ok(None),
                Err(error) => return Err(Error::api("update status of", "Job", key, error)),
            }
        }
        for note in plan.events {
            self.recorder
                .publish(job, note.warning, &note.reason, note.message)
                .await;
        }
        let mut released = Vec::new();
        for pod in &plan.release {
            remove_finalizer(&pods, pod).await?;
            released.push(pod.metadata.uid.clone().unwrap_or_default());
        }
        self.finalizers.expect(key, Vec::new(), released);
        Ok(plan.requeue_after)
    }
}

/// Removes the tracking finalizer from `pod`, guarded by its resourceVersion.
async fn remove_finalizer(pods: &Api<Pod>, pod: &Pod) -> Result<()> {
    if !pods::has_tracking_finalizer(pod) {
        return Ok(());
    }
    let rest: Vec<&String> = pod
        .metadata
        .finalizers
        .iter()
        .flatten()
        .filter(|f| *f != pods::TRACKING_FINALIZER)
        .collect();
    let finalizers = if rest.is_empty() { json!(null) } else { json!(rest) };
    let patch = json!({"metadata": {"finalizers": finalizers, "resourceVersion": pod.metadata.resource_version}});
    match pods
        .patch(&pod.name_any(), &PatchParams::default(), &Patch::Merge(&patch))
        .await
    {
        Ok(_) => Ok(()),
        Err(error) if is_not_found(&error) => Ok(()),
        Err(error) => Err(Error::api("remove finalizer from", "Pod", util::key_of(pod), error)),
    }
}
