//! Table tests for the job controller's decide step.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::batch::v1::{
    Job, JobCondition, JobSpec, JobStatus, PodFailurePolicy, PodFailurePolicyOnExitCodesRequirement,
    PodFailurePolicyRule, UncountedTerminatedPods,
};
use k8s_openapi::api::core::v1::{ContainerState, ContainerStateTerminated, ContainerStatus, Pod, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};

use super::decide::{Plan, decide};
use super::pods::{COMPLETION_INDEX, TRACKING_FINALIZER};
use crate::util::testing::{ago, now, pod, ready};

fn job(completions: Option<i32>, parallelism: i32) -> Job {
    Job {
        metadata: ObjectMeta {
            name: Some("work".into()),
            namespace: Some("ns".into()),
            uid: Some("uid-work".into()),
            ..Default::default()
        },
        spec: Some(JobSpec {
            completions,
            parallelism: Some(parallelism),
            backoff_limit: Some(6),
            template: PodTemplateSpec::default(),
            ..Default::default()
        }),
        status: Some(JobStatus {
            start_time: Some(ago(100)),
            ..Default::default()
        }),
    }
}

fn indexed(mut job: Job) -> Job {
    if let Some(spec) = job.spec.as_mut() {
        spec.completion_mode = Some("Indexed".into());
    }
    job
}

fn with_status(mut job: Job, edit: impl FnOnce(&mut JobStatus)) -> Job {
    edit(job.status.get_or_insert_with(Default::default));
    job
}

fn with_spec(mut job: Job, edit: impl FnOnce(&mut JobSpec)) -> Job {
    edit(job.spec.get_or_insert_with(Default::default));
    job
}

/// A pod of the job with the tracking finalizer, created `age` seconds ago.
fn running(name: &str, age: i64) -> Pod {
    let mut pod = pod(name, &[], age);
    pod.metadata.finalizers = Some(vec![TRACKING_FINALIZER.into()]);
    pod.metadata.owner_references = Some(vec![OwnerReference {
        api_version: "batch/v1".into(),
        kind: "Job".into(),
        name: "work".into(),
        uid: "uid-work".into(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }]);
    pod
}

fn at_index(mut pod: Pod, index: i32) -> Pod {
    pod.metadata
        .annotations
        .get_or_insert_with(Default::default)
        .insert(COMPLETION_INDEX.into(), index.to_string());
    pod
}

/// Finished `secs` seconds ago with `phase` (exit code 0 or 1).
fn finished(mut pod: Pod, phase: &str, secs: i64) -> Pod {
    let status = pod.status.get_or_insert_with(Default::default);
    status.phase = Some(phase.into());
    status.container_statuses = Some(vec![ContainerStatus {
        name: "main".into(),
        state: Some(ContainerState {
            terminated: Some(ContainerStateTerminated {
                exit_code: if phase == "Succeeded" { 0 } else { 1 },
                finished_at: Some(ago(secs)),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }]);
    pod
}

fn counted(mut pod: Pod) -> Pod {
    pod.metadata.finalizers = None;
    pod
}

fn run(job: &Job, pods: Vec<Pod>) -> Plan {
    let pods: Vec<Arc<Pod>> = pods.into_iter().map(Arc::new).collect();
    decide(job, &pods, now())
}

fn names(pods: &[Arc<Pod>]) -> Vec<String> {
    pods.iter()
        .map(|pod| pod.metadata.name.clone().unwrap_or_default())
        .collect()
}

fn condition_types(plan: &Plan) -> Vec<String> {
    plan.status
        .as_ref()
        .and_then(|status| status.conditions.as_ref())
        .map(|conds| conds.iter().map(|c| format!("{}={}", c.type_, c.status)).collect())
        .unwrap_or_default()
}

fn reasons(plan: &Plan) -> Vec<String> {
    plan.events.iter().map(|note| note.reason.clone()).collect()
}

#[test]
fn creation_respects_parallelism_and_remaining_completions() {
    struct Case {
        name: &'static str,
        job: Job,
        pods: Vec<Pod>,
        create: Vec<Option<i32>>,
        delete: Vec<&'static str>,
    }
    let cases = vec![
        Case {
            name: "fresh job starts parallelism pods",
            job: job(Some(3), 2),
            pods: vec![],
            create: vec![None, None],
            delete: vec![],
        },
        Case {
            name: "never more than the remaining completions",
            job: with_status(job(Some(3), 2), |s| s.succeeded = Some(2)),
            pods: vec![],
            create: vec![None],
            delete: vec![],
        },
        Case {
            name: "work queue: parallelism pods until one succeeds",
            job: job(None, 3),
            pods: vec![running("a", 5)],
            create: vec![None, None],
            delete: vec![],
        },
        Case {
            name: "work queue: no new pods after a success",
            job: with_status(job(None, 3), |s| s.succeeded = Some(1)),
            pods: vec![running("a", 5)],
            create: vec![],
            delete: vec![],
        },
        Case {
            name: "parallelism lowered deletes the newest",
            job: job(Some(5), 1),
            pods: vec![running("old", 50), running("new", 5)],
            create: vec![],
            delete: vec!["new"],
        },
        Case {
            name: "indexed creates the lowest missing indexes",
            job: with_status(indexed(job(Some(4), 2)), |s| s.completed_indexes = Some("0".into())),
            pods: vec![at_index(running("a", 5), 2)],
            create: vec![Some(1)],
            delete: vec![],
        },
        Case {
            name: "indexed deletes duplicates and completed indexes",
            job: with_status(indexed(job(Some(3), 3)), |s| s.completed_indexes = Some("0".into())),
            pods: vec![
                at_index(running("zero", 5), 0),
                at_index(running("one", 9), 1),
                at_index(running("one-dup", 5), 1),
            ],
            create: vec![Some(2)],
            delete: vec!["zero", "one-dup"],
        },
        Case {
            name: "suspended jobs delete active pods and create none",
            job: with_spec(job(Some(3), 2), |s| s.suspend = Some(true)),
            pods: vec![running("a", 5)],
            create: vec![],
            delete: vec!["a"],
        },
    ];
    for case in cases {
        let plan = run(&case.job, case.pods);
        assert_eq!(plan.create, case.create, "{}: create", case.name);
        let mut deleted = names(&plan.delete);
        deleted.sort();
        let mut expected: Vec<String> = case.delete.iter().map(|s| s.to_string()).collect();
        expected.sort();
        assert_eq!(deleted, expected, "{}: delete", case.name);
    }
}

#[test]
fn finished_pods_are_counted_through_uncounted() {
    let job = job(Some(2), 2);
    // A newly succeeded pod goes to uncounted and is released.
    let plan = run(&job, vec![finished(running("a", 20), "Succeeded", 5), running("b", 20)]);
    let status = plan.status.clone().expect("status changes");
    let uncounted = status.uncounted_terminated_pods.clone().unwrap_or_default();
    assert_eq!(uncounted.succeeded, Some(vec!["uid-a".to_string()]));
    assert_eq!(status.succeeded, Some(0));
    assert_eq!(status.active, Some(1));
    assert_eq!(names(&plan.release), vec!["a"]);
    assert!(
        plan.create.is_empty(),
        "remaining completions are covered by the active pod"
    );

    // Once its finalizer is gone it moves into the counter.
    let job = with_status(job, |s| *s = status);
    let plan = run(
        &job,
        vec![counted(finished(running("a", 20), "Succeeded", 5)), running("b", 20)],
    );
    let status = plan.status.expect("status changes");
    assert_eq!(status.succeeded, Some(1));
    assert_eq!(
        status.uncounted_terminated_pods.unwrap_or_default(),
        UncountedTerminatedPods::default()
    );
    assert!(plan.release.is_empty());
}

#[test]
fn completion_sets_success_criteria_then_complete() {
    let job = job(Some(2), 2);
    let pods = || {
        vec![
            counted(finished(running("a", 20), "Succeeded", 5)),
            finished(running("b", 20), "Succeeded", 2),
        ]
    };
    let job = with_status(job, |s| s.succeeded = Some(1));
    let plan = run(&job, pods());
    assert_eq!(condition_types(&plan), vec!["SuccessCriteriaMet=True"]);
    assert!(reasons(&plan).is_empty());
    let status = plan.status.expect("status");
    let job = with_status(job, |s| *s = status);
    let plan = run(
        &job,
        vec![
            counted(finished(running("a", 20), "Succeeded", 5)),
            counted(finished(running("b", 20), "Succeeded", 2)),
        ],
    );
    assert_eq!(condition_types(&plan), vec!["SuccessCriteriaMet=True", "Complete=True"]);
    assert_eq!(reasons(&plan), vec!["Completed"]);
    let status = plan.status.expect("status");
    assert_eq!(status.succeeded, Some(2));
    assert!(status.completion_time.is_some());
    let complete = status.conditions.unwrap_or_default().pop().unwrap_or_default();
    assert_eq!(complete.reason.as_deref(), Some("CompletionsReached"));
    // A finished job only lets its pods go.
    let done = with_status(job, |s| {
        s.conditions = Some(vec![JobCondition {
            type_: "Complete".into(),
            status: "True".into(),
            ..Default::default()
        }])
    });
    let plan = run(&done, vec![finished(running("c", 1), "Failed", 1), running("d", 1)]);
    assert!(plan.status.is_none() && plan.create.is_empty() && plan.delete.is_empty());
    assert_eq!(names(&plan.release), vec!["c", "d"]);
}

#[test]
fn backoff_limit_fails_the_job() {
    let job = with_spec(job(Some(1), 1), |s| s.backoff_limit = Some(1));
    let job = with_status(job, |s| s.failed = Some(1));
    let plan = run(
        &job,
        vec![
            counted(finished(running("a", 60), "Failed", 50)),
            finished(running("b", 40), "Failed", 5),
            running("c", 1),
        ],
    );
    assert_eq!(condition_types(&plan), vec!["FailureTarget=True"]);
    assert_eq!(names(&plan.delete), vec!["c"]);
    let status = plan.status.expect("status");
    let target = status.conditions.clone().unwrap_or_default().pop().unwrap_or_default();
    assert_eq!(target.reason.as_deref(), Some("BackoffLimitExceeded"));
    assert_eq!(
        target.message.as_deref(),
        Some("Job has reached the specified backoff limit")
    );
    let job = with_status(job, |s| *s = status);
    let plan = run(
        &job,
        vec![
            counted(finished(running("a", 60), "Failed", 50)),
            counted(finished(running("b", 40), "Failed", 5)),
        ],
    );
    assert_eq!(condition_types(&plan), vec!["FailureTarget=True", "Failed=True"]);
    assert_eq!(reasons(&plan), vec!["BackoffLimitExceeded"]);
    let status = plan.status.expect("status");
    assert_eq!(status.failed, Some(2));
    assert!(status.completion_time.is_none());
}

#[test]
fn failures_back_off_exponentially_since_the_last_failure() {
    let job = job(Some(1), 1);
    // One failure 4 s ago: 10 s back-off, 6 s left.
    let job1 = with_status(job.clone(), |s| s.failed = Some(1));
    let plan = run(&job1, vec![counted(finished(running("a", 20), "Failed", 4))]);
    assert!(plan.create.is_empty());
    assert_eq!(plan.requeue_after, Some(Duration::from_secs(6)));
    // Two failures, the last 15 s ago: 20 s back-off, 5 s left.
    let job2 = with_status(job.clone(), |s| s.failed = Some(2));
    let pods = vec![
        counted(finished(running("a", 90), "Failed", 80)),
        counted(finished(running("b", 30), "Failed", 15)),
    ];
    assert_eq!(run(&job2, pods).requeue_after, Some(Duration::from_secs(5)));
    // Back-off over: a replacement.
    let plan = run(&job1, vec![counted(finished(running("a", 60), "Failed", 11))]);
    assert_eq!(plan.create, vec![None]);
}

#[test]
fn active_deadline_fails_and_requeues() {
    let job = with_spec(job(Some(1), 1), |s| s.active_deadline_seconds = Some(100));
    let plan = run(&job, vec![running("a", 50)]);
    assert_eq!(condition_types(&plan), vec!["FailureTarget=True"]);
    assert_eq!(names(&plan.delete), vec!["a"]);
    let reason = plan.status.and_then(|s| s.conditions).and_then(|c| c[0].reason.clone());
    assert_eq!(reason.as_deref(), Some("DeadlineExceeded"));
    let job = with_spec(job, |s| s.active_deadline_seconds = Some(130));
    let plan = run(&job, vec![running("a", 50)]);
    assert_eq!(plan.requeue_after, Some(Duration::from_secs(30)));
    assert!(condition_types(&plan).is_empty());
}

#[test]
fn indexed_success_fills_completed_indexes() {
    let job = indexed(job(Some(3), 3));
    let pods = vec![
        at_index(finished(running("a", 20), "Succeeded", 5), 0),
        at_index(finished(running("b", 20), "Succeeded", 5), 2),
        at_index(finished(running("dup", 20), "Succeeded", 5), 2),
        ready(at_index(running("c", 20), 1), 10),
    ];
    let plan = run(&job, pods);
    let status = plan.status.expect("status");
    assert_eq!(status.completed_indexes.as_deref(), Some("0,2"));
    assert_eq!(status.succeeded, Some(2));
    assert_eq!(status.ready, Some(1));
    assert_eq!(status.active, Some(1));
    assert_eq!(
        status
            .uncounted_terminated_pods
            .and_then(|u| u.succeeded)
            .map(|u| u.len()),
        Some(2)
    );
    // The duplicate is released without being counted.
    assert_eq!(plan.release.len(), 3);
}

#[test]
fn pod_failure_policy_fails_or_ignores() {
    let policy = |action: &str| {
        with_spec(job(Some(1), 1), |s| {
            s.pod_failure_policy = Some(PodFailurePolicy {
                rules: vec![PodFailurePolicyRule {
                    action: action.into(),
                    on_exit_codes: Some(PodFailurePolicyOnExitCodesRequirement {
                        container_name: None,
                        operator: "In".into(),
                        values: vec![1],
                    }),
                    on_pod_conditions: None,
                }],
            })
        })
    };
    let plan = run(&policy("FailJob"), vec![finished(running("a", 9), "Failed", 5)]);
    let conds = plan.status.and_then(|s| s.conditions).unwrap_or_default();
    assert_eq!(conds[0].type_, "FailureTarget");
    assert_eq!(conds[0].reason.as_deref(), Some("PodFailurePolicy"));
    let plan = run(&policy("Ignore"), vec![finished(running("a", 9), "Failed", 5)]);
    let status = plan.status.expect("status");
    assert_eq!(
        status.uncounted_terminated_pods.unwrap_or_default(),
        UncountedTerminatedPods::default()
    );
    assert_eq!(names(&plan.release), vec!["a"]);
}

#[test]
fn suspend_and_resume_set_the_condition_and_start_time() {
    let suspended = with_spec(job(Some(1), 1), |s| s.suspend = Some(true));
    let plan = run(&suspended, vec![]);
    assert_eq!(condition_types(&plan), vec!["Suspended=True"]);
    assert_eq!(reasons(&plan), vec!["Suspended"]);
    let status = plan.status.expect("status");
    let resumed = with_status(job(Some(1), 1), |s| *s = status);
    let plan = run(&resumed, vec![]);
    assert_eq!(condition_types(&plan), vec!["Suspended=False"]);
    assert_eq!(reasons(&plan), vec!["Resumed"]);
    assert_eq!(plan.status.and_then(|s| s.start_time).map(|t| t.0), Some(now()));
    assert_eq!(plan.create, vec![None]);
}
