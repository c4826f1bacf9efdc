//! The ttl-after-finished controller: deletes a finished Job `ttlSecondsAfterFinished` after
//! it finished (its `Complete` / `Failed` condition), with background propagation so the
//! garbage collector removes its pods.

use std::sync::Arc;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::batch::v1::Job;
use kube::api::{DeleteParams, Preconditions, PropagationPolicy};
use kube::runtime::reflector::Store;
use kube::{Api, ResourceExt};

use crate::context::Context;
use crate::controllers::job::decide::finished_condition;
use crate::controllers::wiring::{EventForwarder, When, resync_each};
use crate::error::{Error, Result, is_conflict, is_not_found};
use crate::queue::WorkQueue;
use crate::util;

/// The controller's name in `--controllers`.
pub const NAME: &str = "ttl-after-finished";

/// Upstream's default `--concurrent-ttl-after-finished-syncs`.
const WORKERS: usize = 5;

/// What to do with one Job.
#[derive(Debug, PartialEq, Eq)]
pub enum Decision {
    /// Not finished, no TTL, or already being deleted: nothing.
    Ignore,
    /// Expired: delete it.
    Delete,
    /// Expires after this long.
    Wait(Duration),
}

/// Decides for `job` at `now`, as upstream's `processTTL` / `needsCleanup`.
pub fn decide(job: &Job, now: Timestamp) -> Decision {
    let Some(ttl) = job.spec.as_ref().and_then(|spec| spec.ttl_seconds_after_finished) else {
        return Decision::Ignore;
    };
    if util::is_deleting(&job.metadata) {
        return Decision::Ignore;
    }
    let Some(condition) = finished_condition(job) else {
        return Decision::Ignore;
    };
    let finished_at = job
        .status
        .as_ref()
        .and_then(|status| status.completion_time.as_ref())
        .filter(|_| condition.type_ == "Complete")
        .or(condition.last_transition_time.as_ref())
        .map(|time| time.0);
    // Finished with no time recorded: upstream treats it as just finished.
    let Some(finished_at) = finished_at else {
        return Decision::Wait(Duration::from_secs(u64::try_from(ttl.max(0)).unwrap_or(0)));
    };
    let expires = finished_at.checked_add(SignedDuration::from_secs(i64::from(ttl)));
    let expires = match expires {
        Ok(expires) => expires,
        Err(_) => return Decision::Ignore,
    };
    let left = expires.duration_since(now);
    if left.is_positive() {
        Decision::Wait(left.unsigned_abs())
    } else {
        Decision::Delete
    }
}

/// Runs the controller until the context is cancelled.
pub async fn run(ctx: Arc<Context>) -> Result<()> {
    let informer = ctx.informers.jobs();
    let changes = informer.subscribe();
    informer.wait_ready().await?;
    let jobs = informer.store();
    let queue = WorkQueue::<String>::new();
    let enqueue_all = resync_each(&queue, &jobs, |job| [util::key_of(job)]);
    enqueue_all();
    let client = ctx.client.clone();
    EventForwarder::new(&queue, enqueue_all)
        .on(changes, When::Applied, |job| [util::key_of(job)])
        .run_workers(NAME, WORKERS, &ctx.token, move |key: String| {
            let client = client.clone();
            let jobs = jobs.clone();
            async move { sync(&client, &jobs, &key).await }
        })
        .await;
    Ok(())
}

async fn sync(client: &kube::Client, jobs: &Store<Job>, key: &str) -> Result<Option<Duration>> {
    let Some(cached) = util::get(jobs, key) else {
        return Ok(None);
    };
    match decide(&cached, Timestamp::now()) {
        Decision::Ignore => return Ok(None),
        Decision::Wait(left) => return Ok(Some(left)),
        Decision::Delete => {}
    }
    // The cache may be stale (the TTL changed): decide again on a fresh read.
    let api: Api<Job> = Api::namespaced(client.clone(), &cached.namespace().unwrap_or_default());
    let fresh = match api.get(&cached.name_any()).await {
        Ok(job) => job,
        Err(error) if is_not_found(&error) => return Ok(None),
        Err(error) => return Err(Error::api("get", "Job", key, error)),
    };
    match decide(&fresh, Timestamp::now()) {
        Decision::Ignore => return Ok(None),
        Decision::Wait(left) => return Ok(Some(left)),
        Decision::Delete => {}
    }
    let params = DeleteParams {
        propagation_policy: Some(PropagationPolicy::Background),
        preconditions: Some(Preconditions {
            uid: fresh.metadata.uid.clone(),
            resource_version: fresh.metadata.resource_version.clone(),
        }),
        ..DeleteParams::default()
    };
    tracing::info!(controller = NAME, object = key, "deleting finished job after its ttl");
    match api.delete(&fresh.name_any(), &params).await {
        Ok(_) => Ok(None),
        Err(error) if is_not_found(&error) => Ok(None),
        Err(error) if is_conflict(&error) => Ok(Some(Duration::from_secs(1))),
        Err(error) => Err(Error::api("delete", "Job", key, error)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::testing::{ago, now};
    use k8s_openapi::api::batch::v1::{JobCondition, JobSpec, JobStatus};

    fn job(ttl: Option<i32>, condition: Option<(&str, i64)>) -> Job {
        Job {
            spec: Some(JobSpec {
                ttl_seconds_after_finished: ttl,
                ..Default::default()
            }),
            status: Some(JobStatus {
                conditions: condition.map(|(type_, secs)| {
                    vec![JobCondition {
                        type_: type_.into(),
                        status: "True".into(),
                        last_transition_time: Some(ago(secs)),
                        ..Default::default()
                    }]
                }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn table() {
        let cases = [
            ("no ttl", job(None, Some(("Complete", 100))), Decision::Ignore),
            ("running", job(Some(10), None), Decision::Ignore),
            (
                "only the interim condition",
                job(Some(10), Some(("SuccessCriteriaMet", 100))),
                Decision::Ignore,
            ),
            (
                "complete, expired",
                job(Some(10), Some(("Complete", 10))),
                Decision::Delete,
            ),
            ("failed, expired", job(Some(0), Some(("Failed", 1))), Decision::Delete),
            (
                "complete, not yet",
                job(Some(30), Some(("Complete", 10))),
                Decision::Wait(Duration::from_secs(20)),
            ),
        ];
        for (name, job, expected) in cases {
            assert_eq!(decide(&job, now()), expected, "{name}");
        }
        let mut deleting = job(Some(0), Some(("Complete", 10)));
        deleting.metadata.deletion_timestamp = Some(ago(1));
        assert_eq!(decide(&deleting, now()), Decision::Ignore);
        // completionTime wins over the condition for a Complete job.
        let mut completed = job(Some(30), Some(("Complete", 100)));
        if let Some(status) = completed.status.as_mut() {
            status.completion_time = Some(ago(10));
        }
        assert_eq!(decide(&completed, now()), Decision::Wait(Duration::from_secs(20)));
    }
}
