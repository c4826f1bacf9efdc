//! The cronjob controller's pure decision (upstream's `syncCronJob`): given a CronJob, the
//! Jobs it controls and the time, which Job to create for the most recent missed schedule,
//! which Jobs to delete (concurrencyPolicy Replace, history limits), the new status and the
//! events to record.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::batch::v1::{CronJob, CronJobStatus, Job};
use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use kube::ResourceExt;

use super::schedule::Schedule;
use crate::controllers::job::decide::{Note, finished_condition};
use crate::util;

/// The annotation recording the scheduled time a Job was created for.
pub const SCHEDULED_TIMESTAMP: &str = "batch.kubernetes.io/cronjob-scheduled-timestamp";
/// More missed start times than this is reported (upstream's limit).
const TOO_MANY_MISSED: usize = 100;
/// Sync slightly after the next activation so it is due.
const NEXT_SYNC_SLACK: Duration = Duration::from_millis(100);

/// What to do for one CronJob.
#[derive(Debug, Default)]
pub struct Plan {
    /// The Job to create and the scheduled time it is for.
    pub create: Option<(Job, Timestamp)>,
    /// Jobs to delete (background propagation), by name.
    pub delete: Vec<String>,
    /// The status to write (before adding the created Job), when it changes.
    pub status: Option<CronJobStatus>,
    /// Events to record.
    pub events: Vec<Note>,
    /// Sync again after this long (the next activation).
    pub requeue_after: Option<Duration>,
}

fn note(warning: bool, reason: &str, message: String) -> Note {
    Note {
        warning,
        reason: reason.to_string(),
        message,
    }
}

/// A reference to `job` for `status.active`.
pub fn job_reference(job: &Job) -> ObjectReference {
    ObjectReference {
        api_version: Some("batch/v1".into()),
        kind: Some("Job".into()),
        name: job.metadata.name.clone(),
        namespace: job.metadata.namespace.clone(),
        uid: job.metadata.uid.clone(),
        resource_version: job.metadata.resource_version.clone(),
        ..Default::default()
    }
}

/// Decides for `cj` at `now`, given the Jobs it controls.
pub fn decide(cj: &CronJob, jobs: &[Arc<Job>], now: Timestamp) -> Plan {
    let mut plan = Plan::default();
    let spec = cj.spec.clone();
    let old = cj.status.clone().unwrap_or_default();
    let mut status = old.clone();
    let by_uid: BTreeMap<&str, &Arc<Job>> = jobs
        .iter()
        .filter_map(|job| Some((job.metadata.uid.as_deref()?, job)))
        .collect();

    // Active references: drop the gone and the finished, add running Jobs it forgot.
    let mut active = Vec::new();
    for reference in old.active.iter().flatten() {
        let Some(job) = reference.uid.as_deref().and_then(|uid| by_uid.get(uid)) else {
            continue;
        };
        match finished_condition(job) {
            Some(condition) => plan.events.push(note(
                false,
                "SawCompletedJob",
                format!("Saw completed job: {}, condition: {}", job.name_any(), condition.type_),
            )),
            None => active.push(reference.clone()),
        }
    }
    for job in jobs {
        let known = active.iter().any(|r| r.uid == job.metadata.uid);
        if !known && finished_condition(job).is_none() && !util::is_deleting(&job.metadata) {
            plan.events.push(note(
                true,
                "UnexpectedJob",
                format!(
                    "Saw a job that the controller did not create or forgot: {}",
                    job.name_any()
                ),
            ));
            active.push(job_reference(job));
        }
    }
    let last_success = jobs
        .iter()
        .filter(|job| finished_condition(job).is_some_and(|c| c.type_ == "Complete"))
        .filter_map(|job| job.status.as_ref()?.completion_time.as_ref().map(|t| t.0))
        .max();
    if let Some(last) = last_success
        && status.last_successful_time.as_ref().is_none_or(|t| t.0 < last)
    {
        status.last_successful_time = Some(Time(last));
    }

    // History limits: the oldest finished Jobs beyond the limits go.
    for (type_, limit) in [
        ("Complete", spec.successful_jobs_history_limit.unwrap_or(3)),
        ("Failed", spec.failed_jobs_history_limit.unwrap_or(1)),
    ] {
        let mut finished: Vec<&Arc<Job>> = jobs
            .iter()
            .filter(|job| !util::is_deleting(&job.metadata))
            .filter(|job| finished_condition(job).is_some_and(|c| c.type_ == type_))
            .collect();
        finished.sort_by_key(|job| {
            let started = job.status.as_ref().and_then(|s| s.start_time.as_ref());
            started.or(job.metadata.creation_timestamp.as_ref()).map(|t| t.0)
        });
        let excess = finished
            .len()
            .saturating_sub(usize::try_from(limit.max(0)).unwrap_or(0));
        plan.delete.extend(finished[..excess].iter().map(|job| job.name_any()));
    }

    let finish = |plan: &mut Plan, active: Vec<ObjectReference>, status: &mut CronJobStatus| {
        status.active = (!active.is_empty()).then_some(active);
        if *status != old {
            plan.status = Some(status.clone());
        }
    };
    if util::is_deleting(&cj.metadata) || spec.suspend == Some(true) {
        finish(&mut plan, active, &mut status);
        return plan;
    }
    let zone = match spec.time_zone.as_deref() {
        None => TimeZone::UTC,
        Some(name) => match jiff::tz::db().get(name) {
            Ok(zone) => zone,
            Err(error) => {
                plan.events.push(note(
                    true,
                    "UnknownTimeZone",
                    format!("invalid timeZone: {name:?}: {error}"),
                ));
                finish(&mut plan, active, &mut status);
                return plan;
            }
        },
    };
    let schedule = match Schedule::parse(&spec.schedule) {
        Ok(schedule) => schedule,
        Err(error) => {
            let message = format!("unparseable schedule: {:?} : {error}", spec.schedule);
            plan.events.push(note(true, "UnparseableSchedule", message));
            finish(&mut plan, active, &mut status);
            return plan;
        }
    };
    plan.requeue_after = schedule
        .next(now, &zone)
        .map(|next| next.duration_since(now).unsigned_abs() + NEXT_SYNC_SLACK);

    let mut earliest = status
        .last_schedule_time
        .as_ref()
        .or(cj.metadata.creation_timestamp.as_ref())
        .map_or(now, |t| t.0);
    if let Some(deadline) = spec.starting_deadline_seconds
        && let Ok(bound) = now.checked_sub(SignedDuration::from_secs(deadline))
        && bound > earliest
    {
        earliest = bound;
    }
    let (scheduled, too_many) = most_recent(&schedule, &zone, earliest, now);
    if too_many {
        plan.events.push(note(
            true,
            "TooManyMissedTimes",
            "too many missed start times. Set or decrease .spec.startingDeadlineSeconds or check clock skew".into(),
        ));
    }
    let Some(scheduled) = scheduled else {
        finish(&mut plan, active, &mut status);
        return plan;
    };
    if let Some(deadline) = spec.starting_deadline_seconds
        && scheduled
            .checked_add(SignedDuration::from_secs(deadline))
            .is_ok_and(|late| late < now)
    {
        let message = format!(
            "Missed scheduled time to start a job: {}",
            scheduled.strftime("%a, %d %b %Y %H:%M:%S %z")
        );
        plan.events.push(note(true, "MissSchedule", message));
        finish(&mut plan, active, &mut status);
        return plan;
    }
    let name = format!("{}-{}", cj.name_any(), scheduled.as_second().div_euclid(60));
    let exists = jobs.iter().any(|job| job.metadata.name.as_deref() == Some(&name))
        || active.iter().any(|r| r.name.as_deref() == Some(&name));
    if exists {
        // Created by an earlier sync whose status write was lost.
        if status.last_schedule_time.as_ref().is_none_or(|t| t.0 < scheduled) {
            status.last_schedule_time = Some(Time(scheduled));
        }
        finish(&mut plan, active, &mut status);
        return plan;
    }
    match spec.concurrency_policy.as_deref() {
        Some("Forbid") if !active.is_empty() => {
            let message = "Not starting job because prior execution is running and concurrency policy is Forbid";
            plan.events.push(note(false, "JobAlreadyActive", message.into()));
            finish(&mut plan, active, &mut status);
            return plan;
        }
        Some("Replace") => {
            plan.delete.extend(active.drain(..).filter_map(|r| r.name));
        }
        _ => {}
    }
    plan.create = Some((job_from_template(cj, &name, scheduled, &zone), scheduled));
    finish(&mut plan, active, &mut status);
    plan
}

/// The most recent activation in `(earliest, now]`, and whether more than 100 were missed.
pub fn most_recent(
    schedule: &Schedule,
    zone: &TimeZone,
    earliest: Timestamp,
    now: Timestamp,
) -> (Option<Timestamp>, bool) {
    let mut last = None;
    let mut count = 0;
    let mut next = schedule.next(earliest, zone);
    while let Some(at) = next.filter(|at| *at <= now) {
        count += 1;
        last = Some(at);
        if count > TOO_MANY_MISSED {
            break;
        }
        next = schedule.next(at, zone);
    }
    if count <= TOO_MANY_MISSED {
        return (last, false);
    }
    // Many missed: look back from now in growing windows instead of walking them all.
    let mut window = SignedDuration::from_hours(1);
    loop {
        let start = now.checked_sub(window).map_or(earliest, |start| start.max(earliest));
        let mut found = None;
        let mut next = schedule.next(start, zone);
        while let Some(at) = next.filter(|at| *at <= now) {
            found = Some(at);
            next = schedule.next(at, zone);
        }
        if found.is_some() || start == earliest {
            return (found.or(last), true);
        }
        window = window.saturating_mul(2);
    }
}

/// The Job a CronJob creates for `scheduled`: its template, named `<cronjob>-<minute>`,
/// controlled by it.
pub fn job_from_template(cj: &CronJob, name: &str, scheduled: Timestamp, zone: &TimeZone) -> Job {
    let template = cj.spec.job_template.clone();
    let meta = template.metadata.unwrap_or_default();
    let mut annotations = meta.annotations.unwrap_or_default();
    annotations.insert(
        SCHEDULED_TIMESTAMP.to_string(),
        scheduled
            .to_zoned(zone.clone())
            .strftime("%Y-%m-%dT%H:%M:%S%:z")
            .to_string(),
    );
    Job {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            namespace: cj.namespace(),
            labels: meta.labels,
            annotations: Some(annotations),
            owner_references: Some(vec![util::controller_ref(cj)]),
            ..Default::default()
        },
        spec: template.spec,
        status: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::testing::{ago, now};
    use k8s_openapi::api::batch::v1::{CronJobSpec, JobCondition, JobStatus, JobTemplateSpec};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;

    // now() is 2025-01-01T00:10:00Z.
    fn cronjob(schedule: &str, created_secs_ago: i64) -> CronJob {
        CronJob {
            metadata: ObjectMeta {
                name: Some("tick".into()),
                namespace: Some("ns".into()),
                uid: Some("uid-tick".into()),
                creation_timestamp: Some(ago(created_secs_ago)),
                ..Default::default()
            },
            spec: CronJobSpec {
                schedule: schedule.into(),
                job_template: JobTemplateSpec {
                    metadata: Some(ObjectMeta {
                        labels: Some([("app".to_string(), "tick".to_string())].into()),
                        ..Default::default()
                    }),
                    spec: None,
                },
                ..Default::default()
            },
            status: None,
        }
    }

    fn edit(mut cj: CronJob, f: impl FnOnce(&mut CronJobSpec)) -> CronJob {
        f(&mut cj.spec);
        cj
    }

    fn job(name: &str, finished: Option<&str>, started_secs_ago: i64) -> Job {
        Job {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some("ns".into()),
                uid: Some(format!("uid-{name}")),
                owner_references: Some(vec![OwnerReference {
                    api_version: "batch/v1".into(),
                    kind: "CronJob".into(),
                    name: "tick".into(),
                    uid: "uid-tick".into(),
                    controller: Some(true),
                    block_owner_deletion: Some(true),
                }]),
                ..Default::default()
            },
            spec: None,
            status: Some(JobStatus {
                start_time: Some(ago(started_secs_ago)),
                completion_time: finished.filter(|t| *t == "Complete").map(|_| ago(started_secs_ago - 1)),
                conditions: finished.map(|type_| {
                    vec![JobCondition {
                        type_: type_.into(),
                        status: "True".into(),
                        ..Default::default()
                    }]
                }),
                ..Default::default()
            }),
        }
    }

    fn with_active(mut cj: CronJob, jobs: &[&Job]) -> CronJob {
        cj.status.get_or_insert_with(Default::default).active = Some(jobs.iter().map(|j| job_reference(j)).collect());
        cj
    }

    fn run(cj: &CronJob, jobs: Vec<Job>) -> Plan {
        let jobs: Vec<Arc<Job>> = jobs.into_iter().map(Arc::new).collect();
        decide(cj, &jobs, now())
    }

    fn created(plan: &Plan) -> Option<String> {
        plan.create.as_ref().and_then(|(job, _)| job.metadata.name.clone())
    }

    fn reasons(plan: &Plan) -> Vec<String> {
        plan.events.iter().map(|n| n.reason.clone()).collect()
    }

    #[test]
    fn creates_the_job_for_the_most_recent_schedule() {
        // Created 90 s ago: 00:09 and 00:10 are due, the latest is started; minute
        // 28_928_170 since the epoch.
        let plan = run(&cronjob("* * * * *", 90), vec![]);
        assert_eq!(created(&plan).as_deref(), Some("tick-28928170"));
        let (template, at) = plan.create.clone().expect("a job");
        assert_eq!(at.to_string(), "2025-01-01T00:10:00Z");
        let annotations = template.metadata.annotations.unwrap_or_default();
        assert_eq!(
            annotations.get(SCHEDULED_TIMESTAMP).map(String::as_str),
            Some("2025-01-01T00:10:00+00:00")
        );
        assert_eq!(
            template
                .metadata
                .labels
                .unwrap_or_default()
                .get("app")
                .map(String::as_str),
            Some("tick")
        );
        assert_eq!(plan.requeue_after, Some(Duration::from_secs(60) + NEXT_SYNC_SLACK));
        // Created just now: nothing due yet.
        let plan = run(&cronjob("* * * * *", 0), vec![]);
        assert!(plan.create.is_none());
        // Already created for that minute.
        let plan = run(&cronjob("* * * * *", 90), vec![job("tick-28928170", None, 50)]);
        assert!(plan.create.is_none());
        // Suspended.
        let plan = run(&edit(cronjob("* * * * *", 90), |s| s.suspend = Some(true)), vec![]);
        assert!(plan.create.is_none());
    }

    #[test]
    fn concurrency_policies() {
        let running = job("tick-1", None, 500);
        let forbid = with_active(
            edit(cronjob("* * * * *", 90), |s| {
                s.concurrency_policy = Some("Forbid".into())
            }),
            &[&running],
        );
        let plan = run(&forbid, vec![running.clone()]);
        assert!(plan.create.is_none());
        assert_eq!(reasons(&plan), vec!["JobAlreadyActive"]);
        let replace = with_active(
            edit(cronjob("* * * * *", 90), |s| {
                s.concurrency_policy = Some("Replace".into())
            }),
            &[&running],
        );
        let plan = run(&replace, vec![running.clone()]);
        assert_eq!(plan.delete, vec!["tick-1"]);
        assert!(plan.create.is_some());
        let allow = with_active(cronjob("* * * * *", 90), &[&running]);
        let plan = run(&allow, vec![running]);
        assert!(plan.delete.is_empty() && plan.create.is_some());
    }

    #[test]
    fn starting_deadline_and_too_many_missed() {
        // Due at 00:00, 600 s ago: missed with a 30 s deadline, still started with 700 s.
        let late = edit(cronjob("0 * * * *", 900), |s| s.starting_deadline_seconds = Some(30));
        let plan = run(&late, vec![]);
        assert!(plan.create.is_none());
        assert_eq!(plan.requeue_after, Some(Duration::from_secs(50 * 60) + NEXT_SYNC_SLACK));
        let in_time = edit(cronjob("0 * * * *", 900), |s| s.starting_deadline_seconds = Some(700));
        assert!(run(&in_time, vec![]).create.is_some());
        // Created 3 hours ago, never run: 180 missed, the last one is started.
        let plan = run(&cronjob("* * * * *", 3 * 3600), vec![]);
        assert_eq!(reasons(&plan), vec!["TooManyMissedTimes"]);
        assert_eq!(
            plan.create.map(|(_, at)| at.to_string()).as_deref(),
            Some("2025-01-01T00:10:00Z")
        );
    }

    #[test]
    fn status_and_history() {
        let done = job("tick-a", Some("Complete"), 300);
        let running = job("tick-b", None, 100);
        let cj = with_active(cronjob("0 * * * *", 90), &[&done, &running]);
        let jobs = vec![
            done.clone(),
            running.clone(),
            job("tick-old-ok-1", Some("Complete"), 900),
            job("tick-old-ok-2", Some("Complete"), 800),
            job("tick-old-ok-3", Some("Complete"), 700),
            job("tick-fail-1", Some("Failed"), 600),
            job("tick-fail-2", Some("Failed"), 400),
            job("tick-forgotten", None, 50),
        ];
        let plan = run(&cj, jobs);
        assert!(plan.create.is_none());
        assert_eq!(plan.delete, vec!["tick-old-ok-1", "tick-fail-1"]);
        assert_eq!(reasons(&plan), vec!["SawCompletedJob", "UnexpectedJob"]);
        let status = plan.status.expect("status");
        let active: Vec<String> = status
            .active
            .unwrap_or_default()
            .into_iter()
            .filter_map(|r| r.name)
            .collect();
        assert_eq!(active, vec!["tick-b", "tick-forgotten"]);
        assert_eq!(status.last_successful_time.map(|t| t.0), Some(ago(299).0));
    }

    #[test]
    fn bad_schedule_or_time_zone_is_reported() {
        let plan = run(&cronjob("* * *", 90), vec![]);
        assert_eq!(reasons(&plan), vec!["UnparseableSchedule"]);
        let plan = run(
            &edit(cronjob("* * * * *", 90), |s| s.time_zone = Some("Mars/Base".into())),
            vec![],
        );
        assert_eq!(reasons(&plan), vec!["UnknownTimeZone"]);
        // A time zone shifts the schedule: 01:00 in Paris is 00:00 UTC.
        let paris = edit(cronjob("0 1 * * *", 900), |s| s.time_zone = Some("Europe/Paris".into()));
        let plan = run(&paris, vec![]);
        assert_eq!(
            plan.create.map(|(_, at)| at.to_string()).as_deref(),
            Some("2025-01-01T00:00:00Z")
        );
    }
}
