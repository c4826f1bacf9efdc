//! The cronjob controller: creates a Job for each activation of a CronJob's schedule (in its
//! time zone), honouring concurrencyPolicy, startingDeadlineSeconds, suspend and the history
//! limits, and reports the active Jobs and the last schedule and success times.

pub mod decide;
pub mod schedule;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::batch::v1::{CronJob, Job};
use kube::api::{DeleteParams, PostParams, PropagationPolicy};
use kube::runtime::reflector::Store;
use kube::{Api, ResourceExt};

use crate::clock::Clock;
use crate::context::{Context, EventRecorder};
use crate::controllers::expectations::Expectations;
use crate::controllers::wiring::{EventForwarder, When, resync_each};
use crate::error::{Error, Result, is_conflict, is_not_found};
use crate::queue::WorkQueue;
use crate::util;

/// The controller's name in `--controllers`.
pub const NAME: &str = "cronjob";

/// How long to wait before re-checking unmet expectations (watch events normally come first).
const EXPECTATIONS_RECHECK: Duration = Duration::from_secs(1);

struct Controller {
    client: kube::Client,
    cronjobs: Store<CronJob>,
    jobs: Store<Job>,
    /// Jobs created, until the cache shows them.
    expectations: Expectations,
    /// The resourceVersion of each CronJob's last status write, until the cache has it.
    written: Mutex<HashMap<String, u64>>,
    recorder: EventRecorder,
    clock: Clock,
}

/// Runs the controller until the context is cancelled.
pub async fn run(ctx: Arc<Context>) -> Result<()> {
    let cj_informer = ctx.informers.cronjobs();
    let job_informer = ctx.informers.jobs();
    let cj_changes = cj_informer.subscribe();
    let job_changes = job_informer.subscribe();
    cj_informer.wait_ready().await?;
    job_informer.wait_ready().await?;
    let controller = Arc::new(Controller {
        client: ctx.client.clone(),
        cronjobs: cj_informer.store(),
        jobs: job_informer.store(),
        expectations: Expectations::default(),
        written: Mutex::new(HashMap::new()),
        recorder: ctx.recorder("cronjob-controller"),
        clock: ctx.clock,
    });
    let queue = WorkQueue::<String>::new();
    let enqueue_all = resync_each(&queue, &controller.cronjobs, |cj| [util::key_of(cj)]);
    enqueue_all();
    let workers = ctx.options.concurrent_cron_job_syncs;
    EventForwarder::new(&queue, enqueue_all)
        .on(cj_changes, When::Changed, |cj| [util::key_of(cj)])
        .on(job_changes, When::Changed, |job| {
            util::controller_of(&job.metadata)
                .filter(|o| o.kind == "CronJob")
                .map(|owner| util::key(job.namespace().as_deref(), &owner.name))
        })
        .run_workers(NAME, workers, &ctx.token, move |key: String| {
            let controller = controller.clone();
            async move { controller.sync(&key).await }
        })
        .await;
    Ok(())
}

fn resource_version(cj: &CronJob) -> Option<u64> {
    cj.metadata.resource_version.as_deref()?.parse().ok()
}

impl Controller {
    fn lock_written(&self) -> std::sync::MutexGuard<'_, HashMap<String, u64>> {
        self.written.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    async fn sync(&self, key: &str) -> Result<Option<Duration>> {
        let Some(cj) = util::get(&self.cronjobs, key) else {
            self.expectations.forget(key);
            self.lock_written().remove(key);
            return Ok(None);
        };
        if let (Some(written), Some(cached)) = (self.lock_written().get(key).copied(), resource_version(&cj))
            && cached < written
        {
            return Ok(Some(EXPECTATIONS_RECHECK));
        }
        let uid = cj.metadata.uid.clone().unwrap_or_default();
        let namespace = cj.namespace();
        let jobs: Vec<Arc<Job>> = self
            .jobs
            .state()
            .into_iter()
            .filter(|job| job.namespace() == namespace)
            .filter(|job| util::controller_of(&job.metadata).is_some_and(|owner| owner.uid == uid))
            .collect();
        let met = self.expectations.satisfied(
            key,
            |name| jobs.iter().any(|job| job.metadata.name.as_deref() == Some(name)),
            |_| true,
        );
        if !met {
            return Ok(Some(EXPECTATIONS_RECHECK));
        }
        let plan = decide::decide(&cj, &jobs, self.clock.now());
        self.apply(&cj, key, plan).await
    }

    async fn apply(&self, cj: &CronJob, key: &str, plan: decide::Plan) -> Result<Option<Duration>> {
        let namespace = cj.namespace().unwrap_or_default();
        let jobs: Api<Job> = Api::namespaced(self.client.clone(), &namespace);
        for note in &plan.events {
            self.recorder
                .publish(cj, note.warning, &note.reason, note.message.clone())
                .await;
        }
        let background = DeleteParams {
            propagation_policy: Some(PropagationPolicy::Background),
            ..DeleteParams::default()
        };
        for name in &plan.delete {
            match jobs.delete(name, &background).await {
                Ok(_) => {
                    self.recorder
                        .publish(cj, false, "SuccessfulDelete", format!("Deleted job {name}"))
                        .await;
                }
                Err(error) if is_not_found(&error) => {}
                Err(error) => return Err(Error::api("delete", "Job", key, error)),
            }
        }
        let mut status = plan.status;
        if let Some((job, scheduled)) = plan.create {
            let name = job.name_any();
            let created = match jobs.create(&PostParams::default(), &job).await {
                Ok(created) => {
                    self.recorder
                        .publish(cj, false, "SuccessfulCreate", format!("Created job {name}"))
                        .await;
                    created
                }
                // Created by an earlier sync whose status write was lost: ours if we control it.
                Err(error) if is_conflict(&error) => match jobs.get(&name).await {
                    Ok(existing)
                        if util::controller_of(&existing.metadata)
                            .is_some_and(|o| Some(&o.uid) == cj.metadata.uid.as_ref()) =>
                    {
                        existing
                    }
                    Ok(_) => return Ok(plan.requeue_after),
                    Err(error) => return Err(Error::api("get", "Job", key, error)),
                },
                Err(error) => {
                    let message = format!("Error creating job: {error}");
                    self.recorder.publish(cj, true, "FailedCreate", message).await;
                    return Err(Error::api("create", "Job", key, error));
                }
            };
            self.expectations.expect(key, vec![name], Vec::new());
            let status = status.get_or_insert_with(|| cj.status.clone().unwrap_or_default());
            let active = status.active.get_or_insert_with(Vec::new);
            if !active.iter().any(|r| r.uid == created.metadata.uid) {
                active.push(decide::job_reference(&created));
            }
            status.last_schedule_time = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(scheduled));
        }
        if let Some(status) = status {
            let api: Api<CronJob> = Api::namespaced(self.client.clone(), &namespace);
            let mut updated = cj.clone();
            updated.status = Some(status);
            match api
                .replace_status(&cj.name_any(), &PostParams::default(), &updated)
                .await
            {
                Ok(written) => {
                    if let Some(version) = resource_version(&written) {
                        self.lock_written().insert(key.to_string(), version);
                    }
                }
                Err(error) if is_not_found(&error) => return Ok(None),
                Err(error) => return Err(Error::api("update status of", "CronJob", key, error)),
            }
        }
        Ok(plan.requeue_after)
    }
}
