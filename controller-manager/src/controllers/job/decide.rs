//! The job controller's pure decision: given a Job and its pods, which pods to create
//! (with their completion indexes), delete and release (tracking finalizer removed), the new
//! status and the events to record.
//!
//! Finished pods are counted the way upstream guarantees exactly-once counting: a finished pod
//! that still has the `batch.kubernetes.io/job-tracking` finalizer is first recorded in
//! `status.uncountedTerminatedPods` (the status is written before the finalizer goes), and
//! only once its finalizer is gone (or the pod is) does it move into `succeeded` / `failed`.
//! As in 1.37, the terminal `Complete` / `Failed` condition is preceded by
//! `SuccessCriteriaMet` / `FailureTarget` and only added once no pod is left to count or
//! terminate.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::batch::v1::{Job, JobCondition, JobStatus, UncountedTerminatedPods};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::pods::{self, PolicyAction};
use crate::controllers::replicaset::decide::deletion_order;
use crate::util;

/// Most pods created or deleted in one sync (upstream's `MaxPodCreateDeletePerSync`).
pub const MAX_PODS_PER_SYNC: usize = 500;
/// First back-off after a failure (upstream's `DefaultJobPodFailureBackOff`).
pub const BACKOFF_BASE: Duration = Duration::from_secs(10);
/// Longest back-off (upstream's `MaxJobPodFailureBackOff`).
pub const BACKOFF_MAX: Duration = Duration::from_secs(360);

/// An event to record about the Job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    pub warning: bool,
    pub reason: String,
    pub message: String,
}

/// What to do for one Job.
#[derive(Debug, Default)]
pub struct Plan {
    /// Pods to create: one entry per pod, with its completion index for Indexed Jobs.
    pub create: Vec<Option<i32>>,
    /// Active pods to delete.
    pub delete: Vec<Arc<Pod>>,
    /// Pods whose tracking finalizer to remove, after the status is written.
    pub release: Vec<Arc<Pod>>,
    /// The status to write, when it differs from the current one.
    pub status: Option<JobStatus>,
    /// Events to record once the status is written.
    pub events: Vec<Note>,
    /// Sync again after this long (back-off or active deadline).
    pub requeue_after: Option<Duration>,
}

/// True when the Job has a true `Complete` or `Failed` condition.
pub fn is_finished(job: &Job) -> bool {
    finished_condition(job).is_some()
}

/// The Job's true `Complete` or `Failed` condition.
pub fn finished_condition(job: &Job) -> Option<&JobCondition> {
    conditions(job)
        .iter()
        .find(|c| (c.type_ == "Complete" || c.type_ == "Failed") && c.status == "True")
}

fn conditions(job: &Job) -> &[JobCondition] {
    job.status
        .as_ref()
        .and_then(|status| status.conditions.as_deref())
        .unwrap_or_default()
}

fn condition(type_: &str, reason: &str, message: &str, now: Timestamp) -> JobCondition {
    JobCondition {
        type_: type_.to_string(),
        status: "True".to_string(),
        reason: Some(reason.to_string()),
        message: Some(message.to_string()),
        last_probe_time: Some(Time(now)),
        last_transition_time: Some(Time(now)),
    }
}

/// Decides for `job`, given the pods it controls.
pub fn decide(job: &Job, owned: &[Arc<Pod>], now: Timestamp) -> Plan {
    let mut plan = Plan::default();
    let spec = job.spec.clone().unwrap_or_default();
    let old = job.status.clone().unwrap_or_default();
    if is_finished(job) || util::is_deleting(&job.metadata) {
        // Nothing more to run or count: let every pod go.
        plan.release = owned
            .iter()
            .filter(|p| pods::has_tracking_finalizer(p))
            .cloned()
            .collect();
        return plan;
    }
    let indexed = pods::is_indexed(job);
    let completions = spec.completions;
    let parallelism = spec.parallelism.unwrap_or(1).max(0);
    let suspended = spec.suspend == Some(true);
    let rules = spec
        .pod_failure_policy
        .as_ref()
        .map(|policy| policy.rules.clone())
        .unwrap_or_default();
    let only_failed_replaced =
        spec.pod_failure_policy.is_some() || spec.pod_replacement_policy.as_deref() == Some("Failed");
    let mut status = old.clone();
    let by_uid: BTreeMap<&str, &Arc<Pod>> = owned
        .iter()
        .filter_map(|pod| Some((pod.metadata.uid.as_deref()?, pod)))
        .collect();

    // 1. Uncounted pods whose finalizer is gone are counted; the others are released again.
    let uncounted = old.uncounted_terminated_pods.clone().unwrap_or_default();
    let mut completed: BTreeSet<i32> = match (indexed, completions) {
        (true, Some(c)) => pods::parse_indexes(old.completed_indexes.as_deref().unwrap_or_default(), c),
        _ => BTreeSet::new(),
    };
    let mut succeeded = old.succeeded.unwrap_or(0);
    let mut failed = old.failed.unwrap_or(0);
    let mut uncounted_succeeded = BTreeSet::new();
    let mut uncounted_failed = BTreeSet::new();
    for (uids, counter, kept) in [
        (
            uncounted.succeeded.unwrap_or_default(),
            &mut succeeded,
            &mut uncounted_succeeded,
        ),
        (uncounted.failed.unwrap_or_default(), &mut failed, &mut uncounted_failed),
    ] {
        for uid in uids {
            match by_uid.get(uid.as_str()) {
                Some(pod) if pods::has_tracking_finalizer(pod) => {
                    plan.release.push((*pod).clone());
                    kept.insert(uid);
                }
                _ => *counter = counter.saturating_add(1),
            }
        }
    }

    // 2. Newly finished pods (still holding the finalizer) become uncounted.
    let mut fail_job = None;
    for pod in owned {
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        if !pods::has_tracking_finalizer(pod) || uncounted_succeeded.contains(&uid) || uncounted_failed.contains(&uid) {
            continue;
        }
        let phase = pods::phase(pod);
        let is_failed = phase == Some("Failed")
            || (!only_failed_replaced && util::is_deleting(&pod.metadata) && phase != Some("Succeeded"));
        if phase == Some("Succeeded") {
            plan.release.push(pod.clone());
            match (indexed, completions, pods::completion_index(pod)) {
                (false, ..) => {
                    uncounted_succeeded.insert(uid);
                }
                (true, Some(c), Some(index)) if index < c && completed.insert(index) => {
                    uncounted_succeeded.insert(uid);
                }
                // A duplicate or out-of-range index: released, never counted.
                _ => {}
            }
        } else if is_failed {
            plan.release.push(pod.clone());
            let action = if phase == Some("Failed") {
                pods::match_failure_policy(&rules, pod)
            } else {
                PolicyAction::Count
            };
            match action {
                PolicyAction::Ignore => {}
                PolicyAction::Count => {
                    uncounted_failed.insert(uid);
                }
                PolicyAction::FailJob(message) => {
                    uncounted_failed.insert(uid);
                    fail_job.get_or_insert(message);
                }
            }
        }
    }
    if indexed {
        succeeded = i32::try_from(completed.len()).unwrap_or(i32::MAX);
    }
    let total_succeeded = if indexed {
        succeeded
    } else {
        succeeded.saturating_add(i32::try_from(uncounted_succeeded.len()).unwrap_or(i32::MAX))
    };
    let total_failed = failed.saturating_add(i32::try_from(uncounted_failed.len()).unwrap_or(i32::MAX));

    let active: Vec<Arc<Pod>> = owned
        .iter()
        .filter(|pod| !pods::is_terminal(pod) && !util::is_deleting(&pod.metadata))
        .cloned()
        .collect();
    let mut terminating = owned
        .iter()
        .filter(|pod| !pods::is_terminal(pod) && util::is_deleting(&pod.metadata))
        .count();

    // 3. Suspension and start time.
    let mut conds: Vec<JobCondition> = old.conditions.clone().unwrap_or_default();
    let suspended_cond = conds.iter().position(|c| c.type_ == "Suspended");
    if suspended {
        if suspended_cond.is_none_or(|i| conds[i].status != "True") {
            let fresh = condition("Suspended", "JobSuspended", "Job suspended", now);
            match suspended_cond {
                Some(i) => conds[i] = fresh,
                None => conds.push(fresh),
            }
            plan.events.push(normal("Suspended", "Job suspended"));
        }
    } else {
        if let Some(i) = suspended_cond.filter(|i| conds[*i].status == "True") {
            conds[i] = JobCondition {
                status: "False".into(),
                ..condition("Suspended", "JobResumed", "Job resumed", now)
            };
            // A resumed Job starts again: its active deadline counts from now.
            status.start_time = Some(Time(now));
            plan.events.push(normal("Resumed", "Job resumed"));
        }
        if status.start_time.is_none() {
            status.start_time = Some(Time(now));
        }
    }

    // 4. Has the Job reached its end?
    let interim = conds
        .iter()
        .find(|c| (c.type_ == "FailureTarget" || c.type_ == "SuccessCriteriaMet") && c.status == "True")
        .cloned();
    let finished = interim.or_else(|| {
        let failure = |reason: &str, message: &str| condition("FailureTarget", reason, message, now);
        if let Some(message) = fail_job.clone() {
            return Some(failure("PodFailurePolicy", &message));
        }
        if total_failed > spec.backoff_limit.unwrap_or(6) {
            return Some(failure(
                "BackoffLimitExceeded",
                "Job has reached the specified backoff limit",
            ));
        }
        if !suspended && past_deadline(&spec, &status, now) {
            return Some(failure(
                "DeadlineExceeded",
                "Job was active longer than specified deadline",
            ));
        }
        let complete = match completions {
            None => total_succeeded > 0 && active.is_empty(),
            Some(c) if indexed => total_succeeded >= c,
            Some(c) => total_succeeded >= c && active.is_empty(),
        };
        complete.then(|| {
            condition(
                "SuccessCriteriaMet",
                "CompletionsReached",
                "Reached expected number of succeeded pods",
                now,
            )
        })
    });

    // 5. Pods to create or delete.
    match &finished {
        Some(cond) => {
            if cond.type_ == "FailureTarget" || indexed {
                plan.delete = active.clone();
            }
            if !conds.iter().any(|c| c.type_ == cond.type_) {
                conds.push(cond.clone());
            }
        }
        None if suspended => plan.delete = active.clone(),
        None => {
            manage(
                job,
                &spec,
                &active,
                &completed,
                total_succeeded,
                parallelism,
                owned,
                now,
                &mut plan,
            );
            if let Some(deadline) = spec.active_deadline_seconds.filter(|_| !suspended)
                && let Some(start) = status.start_time.as_ref()
            {
                let left = (start.0 + SignedDuration::from_secs(deadline)).duration_since(now);
                if left.is_positive() {
                    plan.requeue_after = Some(
                        plan.requeue_after
                            .map_or(left.unsigned_abs(), |r| r.min(left.unsigned_abs())),
                    );
                }
            }
        }
    }
    plan.delete.truncate(MAX_PODS_PER_SYNC);
    terminating += plan.delete.len();
    let active_after = active.len().saturating_sub(plan.delete.len()) + plan.create.len();

    // 6. The terminal condition, once nothing is left to count or terminate.
    if let Some(cond) = &finished
        && plan.release.is_empty()
        && uncounted_succeeded.is_empty()
        && uncounted_failed.is_empty()
        && active_after == 0
        && terminating == 0
    {
        let (type_, note) = if cond.type_ == "SuccessCriteriaMet" {
            status.completion_time = Some(Time(now));
            ("Complete", normal("Completed", "Job completed"))
        } else {
            let reason = cond.reason.clone().unwrap_or_default();
            let message = cond.message.clone().unwrap_or_default();
            (
                "Failed",
                Note {
                    warning: true,
                    reason,
                    message,
                },
            )
        };
        conds.push(JobCondition {
            type_: type_.to_string(),
            last_probe_time: Some(Time(now)),
            last_transition_time: Some(Time(now)),
            ..cond.clone()
        });
        plan.events.push(note);
    }

    status.conditions = (!conds.is_empty()).then_some(conds);
    status.active = Some(i32::try_from(active_after).unwrap_or(i32::MAX));
    status.ready = Some(i32::try_from(active.iter().filter(|p| util::is_pod_ready(p)).count()).unwrap_or(i32::MAX));
    status.terminating = Some(i32::try_from(terminating).unwrap_or(i32::MAX));
    status.succeeded = Some(succeeded);
    status.failed = Some(failed);
    if indexed {
        status.completed_indexes = Some(pods::format_indexes(&completed));
    }
    status.uncounted_terminated_pods = Some(UncountedTerminatedPods {
        succeeded: (!uncounted_succeeded.is_empty()).then(|| uncounted_succeeded.into_iter().collect()),
        failed: (!uncounted_failed.is_empty()).then(|| uncounted_failed.into_iter().collect()),
    });
    if !same_status(&status, &old) {
        plan.status = Some(status);
    }
    plan
}

fn normal(reason: &str, message: &str) -> Note {
    Note {
        warning: false,
        reason: reason.to_string(),
        message: message.to_string(),
    }
}

fn past_deadline(spec: &k8s_openapi::api::batch::v1::JobSpec, status: &JobStatus, now: Timestamp) -> bool {
    match (spec.active_deadline_seconds, status.start_time.as_ref()) {
        (Some(deadline), Some(start)) => start.0 + SignedDuration::from_secs(deadline) <= now,
        _ => false,
    }
}

/// Compares statuses ignoring an empty `uncountedTerminatedPods` vs none.
fn same_status(a: &JobStatus, b: &JobStatus) -> bool {
    let normalize = |status: &JobStatus| {
        let mut status = status.clone();
        if status.uncounted_terminated_pods.as_ref().is_some_and(|u| {
            u.succeeded.as_deref().is_none_or(<[String]>::is_empty)
                && u.failed.as_deref().is_none_or(<[String]>::is_empty)
        }) {
            status.uncounted_terminated_pods = None;
        }
        status
    };
    normalize(a) == normalize(b)
}

/// Upstream's `manageJob` for a running Job: delete excess pods, create missing ones once
/// the failure back-off has passed.
#[allow(clippy::too_many_arguments)]
fn manage(
    job: &Job,
    spec: &k8s_openapi::api::batch::v1::JobSpec,
    active: &[Arc<Pod>],
    completed: &BTreeSet<i32>,
    succeeded: i32,
    parallelism: i32,
    owned: &[Arc<Pod>],
    now: Timestamp,
    plan: &mut Plan,
) {
    let indexed = pods::is_indexed(job);
    let want = match spec.completions {
        None if succeeded > 0 => active.len(),
        None => parallelism as usize,
        Some(c) => (c.saturating_sub(succeeded)).clamp(0, parallelism) as usize,
    };
    let mut keep: Vec<Arc<Pod>> = Vec::new();
    if indexed {
        // Pods without a valid, still-needed index, and duplicates of an index, go first.
        let completions = spec.completions.unwrap_or(0);
        let mut seen = BTreeSet::new();
        let mut sorted = active.to_vec();
        sorted.sort_by(|a, b| deletion_order(b, a, now));
        for pod in sorted {
            match pods::completion_index(&pod) {
                Some(index) if index < completions && !completed.contains(&index) && seen.insert(index) => {
                    keep.push(pod)
                }
                _ => plan.delete.push(pod),
            }
        }
    } else {
        keep = active.to_vec();
    }
    if keep.len() > want {
        keep.sort_by(|a, b| deletion_order(a, b, now));
        let excess = keep.len() - want;
        plan.delete.extend(keep.drain(..excess));
    }
    if keep.len() >= want {
        return;
    }
    if let Some(left) = backoff_remaining(owned, now) {
        plan.requeue_after = Some(left);
        return;
    }
    let missing = (want - keep.len()).min(MAX_PODS_PER_SYNC);
    if indexed {
        let running: BTreeSet<i32> = keep.iter().filter_map(|pod| pods::completion_index(pod)).collect();
        plan.create = (0..spec.completions.unwrap_or(0))
            .filter(|index| !completed.contains(index) && !running.contains(index))
            .take(missing)
            .map(Some)
            .collect();
    } else {
        plan.create = vec![None; missing];
    }
}

/// How long new pods must still wait after the latest failures: 10 s doubling per failure
/// since the last success, at most 6 minutes, counted from the last failure.
pub fn backoff_remaining(owned: &[Arc<Pod>], now: Timestamp) -> Option<Duration> {
    let last_success = owned
        .iter()
        .filter(|pod| pods::phase(pod) == Some("Succeeded"))
        .filter_map(|pod| pods::finish_time(pod))
        .max();
    let failures: Vec<Timestamp> = owned
        .iter()
        .filter(|pod| pods::phase(pod) == Some("Failed"))
        .filter_map(|pod| pods::finish_time(pod))
        .filter(|time| last_success.is_none_or(|success| *time > success))
        .collect();
    let last_failure = failures.iter().max()?;
    let exponent = u32::try_from(failures.len() - 1).unwrap_or(u32::MAX).min(16);
    let backoff = BACKOFF_BASE.saturating_mul(1 << exponent).min(BACKOFF_MAX);
    let at = last_failure.checked_add(SignedDuration::try_from(backoff).ok()?).ok()?;
    let left = at.duration_since(now);
    left.is_positive().then(|| left.unsigned_abs())
}
