//! batch/v1 kinds: Jobs (defaults, the selector and labels the server generates from the uid,
//! validation) and CronJobs (schedule, time zone, policies, job template).

use std::collections::BTreeMap;

use k8s_openapi::api::batch::v1::{CronJob, Job, JobSpec, JobTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector as ApiSelector;
use serde_json::Value;

use crate::field::{FieldError, child, go_string_map};
use crate::kinds::core::{default_pod_template, validate_pod_template};
use crate::selector::LabelSelector;
use crate::strategy::{Operation, Typed};
use crate::validation::common::{nonnegative, validate_label_selector};
use crate::validation::meta::{FIELD_IMMUTABLE, IS_NEGATIVE, validate_immutable};

pub mod cron;

pub(crate) static JOB: Typed<Job> = Typed::new(default_job, validate_job);
pub(crate) static CRON_JOB: Typed<CronJob> = Typed::new(default_cron_job, validate_cron_job);

const CONTROLLER_UID: &str = "batch.kubernetes.io/controller-uid";
const LEGACY_CONTROLLER_UID: &str = "controller-uid";
const JOB_NAME: &str = "batch.kubernetes.io/job-name";
const LEGACY_JOB_NAME: &str = "job-name";

/// upstream's `SetDefaults_Job`, plus the selector the job strategy generates on create.
fn default_job(job: &mut Job) {
    let spec = job.spec.get_or_insert_with(Default::default);
    if spec.completions.is_none() && spec.parallelism.is_none() {
        spec.completions = Some(1);
        spec.parallelism = Some(1);
    }
    spec.parallelism.get_or_insert(1);
    if spec.backoff_limit.is_none() {
        spec.backoff_limit = Some(if spec.backoff_limit_per_index.is_some() {
            i32::MAX
        } else {
            6
        });
    }
    if spec.completion_mode.as_deref().is_none_or(str::is_empty) {
        spec.completion_mode = Some("NonIndexed".into());
    }
    spec.suspend.get_or_insert(false);
    if let Some(policy) = spec.pod_failure_policy.as_mut() {
        for pattern in policy
            .rules
            .iter_mut()
            .flat_map(|r| r.on_pod_conditions.iter_mut().flatten())
        {
            if pattern.status.as_deref().is_none_or(str::is_empty) {
                pattern.status = Some("True".into());
            }
        }
    }
    if spec.pod_replacement_policy.is_none() {
        let policy = if spec.pod_failure_policy.is_some() {
            "Failed"
        } else {
            "TerminatingOrFailed"
        };
        spec.pod_replacement_policy = Some(policy.into());
    }
    // The server generates the selector from the uid it assigned; without a uid (a bare
    // defaulting call) there is nothing to generate from.
    let uid = job.metadata.uid.clone().unwrap_or_default();
    if spec.manual_selector != Some(true) && !uid.is_empty() {
        let name = job.metadata.name.clone().unwrap_or_default();
        let labels = spec
            .template
            .metadata
            .get_or_insert_with(Default::default)
            .labels
            .get_or_insert_with(BTreeMap::new);
        for (k, v) in [
            (LEGACY_JOB_NAME, &name),
            (JOB_NAME, &name),
            (LEGACY_CONTROLLER_UID, &uid),
            (CONTROLLER_UID, &uid),
        ] {
            labels.entry(k.to_string()).or_insert_with(|| v.clone());
        }
        let selector = spec.selector.get_or_insert_with(ApiSelector::default);
        selector
            .match_labels
            .get_or_insert_with(BTreeMap::new)
            .entry(CONTROLLER_UID.to_string())
            .or_insert(uid);
    }
    // A job without labels shows its template's (upstream defaults this when reading too, so
    // the generated labels appear on the job).
    if job.metadata.labels.as_ref().is_none_or(BTreeMap::is_empty)
        && let Some(labels) = spec.template.metadata.as_ref().and_then(|m| m.labels.clone())
    {
        job.metadata.labels = Some(labels);
    }
    default_pod_template(&mut spec.template);
}

fn validate_job(job: &Job, old: Option<&Job>, op: Operation) -> Vec<FieldError> {
    if op == Operation::UpdateStatus {
        return status_counters(serde_json::to_value(&job.status).ok());
    }
    let spec = job.spec.clone().unwrap_or_default();
    let mut errs = Vec::new();
    if spec.manual_selector != Some(true) {
        errs.extend(validate_generated_selector(job, &spec));
    }
    errs.extend(validate_job_spec(&spec, "spec"));
    match &spec.selector {
        None => errs.push(FieldError::required("spec.selector", "")),
        Some(sel) => {
            errs.extend(validate_label_selector(sel, "spec.selector"));
            if let Ok(selector) = LabelSelector::from_label_selector(sel) {
                let labels = spec.template.metadata.as_ref().and_then(|m| m.labels.as_ref());
                if !selector.matches(&labels.cloned().unwrap_or_default()) {
                    errs.push(FieldError::invalid_rendered(
                        "spec.template.metadata.labels",
                        go_string_map(labels),
                        "`selector` does not match template `labels`",
                    ));
                }
            }
        }
    }
    if spec.completion_mode.as_deref() == Some("Indexed")
        && let Some(completions) = spec.completions.filter(|c| *c > 0)
    {
        let name = job.metadata.name.as_deref().unwrap_or_default();
        let hostname = format!("{name}-{}", completions - 1);
        if !crate::validation::names::is_dns1123_label(&hostname).is_empty() {
            errs.push(FieldError::invalid(
                "metadata.name",
                name,
                format!("will not able to create pod with invalid DNS label: {hostname}"),
            ));
        }
    }
    if let Some(old) = old {
        // As stored by today's defaulting, so older stored objects compare fairly.
        let mut old = old.clone();
        default_job(&mut old);
        errs.extend(validate_job_update(&spec, &old.spec.clone().unwrap_or_default()));
    }
    errs
}

/// upstream's `validateGeneratedSelector`: the generated selector is there and the template
/// carries the uid it selects.
fn validate_generated_selector(job: &Job, spec: &JobSpec) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let Some(labels) = spec.template.metadata.as_ref().and_then(|m| m.labels.as_ref()) else {
        return errs;
    };
    let uid = job.metadata.uid.as_deref().unwrap_or_default();
    if uid.is_empty() {
        errs.push(FieldError::required("metadata.uid", ""));
    }
    for label in [CONTROLLER_UID, LEGACY_CONTROLLER_UID] {
        if let Some(v) = labels.get(label).filter(|v| v.as_str() != uid) {
            errs.push(FieldError::invalid(
                format!("spec.template.metadata.labels[{label}]"),
                v.as_str(),
                format!("must be '{uid}'"),
            ));
        }
    }
    if let Some(sel) = &spec.selector
        && !sel
            .match_labels
            .as_ref()
            .is_some_and(|m| m.contains_key(CONTROLLER_UID))
    {
        errs.push(FieldError::invalid_rendered(
            "spec.selector.matchLabels",
            go_string_map(sel.match_labels.as_ref()),
            "`selector` not auto-generated",
        ));
    }
    errs
}

/// upstream's `validateJobSpec`: counts, modes, policies and the pod template, at `path`.
fn validate_job_spec(spec: &JobSpec, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for (v, name) in [
        (spec.parallelism.map(i64::from), "parallelism"),
        (spec.completions.map(i64::from), "completions"),
        (spec.active_deadline_seconds, "activeDeadlineSeconds"),
        (spec.backoff_limit.map(i64::from), "backoffLimit"),
        (
            spec.ttl_seconds_after_finished.map(i64::from),
            "ttlSecondsAfterFinished",
        ),
        (spec.backoff_limit_per_index.map(i64::from), "backoffLimitPerIndex"),
        (spec.max_failed_indexes.map(i64::from), "maxFailedIndexes"),
    ] {
        errs.extend(nonnegative(v, &child(path, name)));
    }
    if spec.max_failed_indexes.is_some() && spec.backoff_limit_per_index.is_none() {
        errs.push(FieldError::required(
            child(path, "backoffLimitPerIndex"),
            "when maxFailedIndexes is specified",
        ));
    }
    let indexed = spec.completion_mode.as_deref() == Some("Indexed");
    if let Some(mode) = spec.completion_mode.as_deref() {
        if mode != "NonIndexed" && mode != "Indexed" {
            errs.push(FieldError::not_supported(
                child(path, "completionMode"),
                mode,
                &["NonIndexed", "Indexed"],
            ));
        }
        if indexed {
            if spec.completions.is_none() {
                errs.push(FieldError::required(
                    child(path, "completions"),
                    "when completion mode is Indexed",
                ));
            }
            if let Some(p) = spec.parallelism.filter(|p| *p > 100_000) {
                errs.push(FieldError::invalid(
                    child(path, "parallelism"),
                    p,
                    "must be less than or equal to 100000 when completion mode is Indexed",
                ));
            }
        }
    }
    if !indexed {
        if let Some(b) = spec.backoff_limit_per_index {
            errs.push(FieldError::invalid(
                child(path, "backoffLimitPerIndex"),
                b,
                "requires indexed completion mode",
            ));
        }
        if let Some(m) = spec.max_failed_indexes {
            errs.push(FieldError::invalid(
                child(path, "maxFailedIndexes"),
                m,
                "requires indexed completion mode",
            ));
        }
    }
    if let Some(policy) = spec.pod_replacement_policy.as_deref() {
        let rp = child(path, "podReplacementPolicy");
        if spec.pod_failure_policy.is_some() {
            if policy != "Failed" {
                errs.push(FieldError::not_supported(rp, policy, &["Failed"]));
            }
        } else if policy != "Failed" && policy != "TerminatingOrFailed" {
            errs.push(FieldError::not_supported(
                rp,
                policy,
                &["Failed", "TerminatingOrFailed"],
            ));
        }
    }
    let template_path = child(path, "template");
    errs.extend(validate_pod_template(Some(&spec.template), &template_path));
    let restart_path = child(&child(&template_path, "spec"), "restartPolicy");
    match spec
        .template
        .spec
        .as_ref()
        .and_then(|s| s.restart_policy.as_deref())
        .unwrap_or_default()
    {
        "Always" | "" => errs.push(FieldError::required(
            restart_path,
            "valid values: \"OnFailure\", \"Never\"",
        )),
        "OnFailure" if spec.pod_failure_policy.is_some() => errs.push(FieldError::invalid(
            restart_path,
            "OnFailure",
            "only \"Never\" is supported when podFailurePolicy is specified",
        )),
        "OnFailure" | "Never" => {}
        other => errs.push(FieldError::not_supported(restart_path, other, &["OnFailure", "Never"])),
    }
    errs
}

/// upstream's `ValidateJobSpecUpdate`: selector, template, completion mode and failure policy
/// are fixed; completions change only for indexed jobs, with parallelism.
fn validate_job_update(new: &JobSpec, old: &JobSpec) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let indexed = new.completion_mode.as_deref() == Some("Indexed");
    if new.completions != old.completions {
        if !indexed {
            errs.extend(validate_immutable(
                &new.completions,
                &old.completions,
                "spec.completions",
            ));
        } else if let Some(c) = new.completions
            && Some(c) != new.parallelism
        {
            errs.push(FieldError::invalid(
                "spec.completions",
                c,
                "can only be modified in tandem with spec.parallelism",
            ));
        }
    }
    errs.extend(validate_immutable(&new.selector, &old.selector, "spec.selector"));
    // A suspended job that never started may change its scheduling directives.
    let mut old_template = old.template.clone();
    if new.suspend == Some(true) {
        let new_meta = new.template.metadata.clone().unwrap_or_default();
        let meta = old_template.metadata.get_or_insert_with(Default::default);
        meta.labels = new_meta.labels;
        meta.annotations = new_meta.annotations;
        if let (Some(o), Some(n)) = (old_template.spec.as_mut(), new.template.spec.as_ref()) {
            o.node_selector.clone_from(&n.node_selector);
            o.tolerations.clone_from(&n.tolerations);
            o.scheduling_gates.clone_from(&n.scheduling_gates);
            o.affinity.clone_from(&n.affinity);
        }
    }
    if new.template != old_template {
        errs.push(FieldError::invalid(
            "spec.template",
            serde_json::to_value(&new.template).unwrap_or_default(),
            FIELD_IMMUTABLE,
        ));
    }
    errs.extend(validate_immutable(
        &new.completion_mode,
        &old.completion_mode,
        "spec.completionMode",
    ));
    errs.extend(validate_immutable(
        &new.pod_failure_policy,
        &old.pod_failure_policy,
        "spec.podFailurePolicy",
    ));
    errs.extend(validate_immutable(
        &new.backoff_limit_per_index,
        &old.backoff_limit_per_index,
        "spec.backoffLimitPerIndex",
    ));
    errs.extend(validate_immutable(&new.managed_by, &old.managed_by, "spec.managedBy"));
    errs.extend(validate_immutable(
        &new.success_policy,
        &old.success_policy,
        "spec.successPolicy",
    ));
    errs
}

fn status_counters(status: Option<Value>) -> Vec<FieldError> {
    let Some(Value::Object(status)) = status else {
        return Vec::new();
    };
    status
        .iter()
        .filter_map(|(k, v)| {
            v.as_i64()
                .filter(|n| *n < 0)
                .map(|n| FieldError::invalid(child("status", k), n, IS_NEGATIVE))
        })
        .collect()
}

/// upstream's `SetDefaults_CronJob` (the job template gets only the pod template defaults).
fn default_cron_job(cj: &mut CronJob) {
    let spec = &mut cj.spec;
    if spec.concurrency_policy.as_deref().is_none_or(str::is_empty) {
        spec.concurrency_policy = Some("Allow".into());
    }
    spec.suspend.get_or_insert(false);
    spec.successful_jobs_history_limit.get_or_insert(3);
    spec.failed_jobs_history_limit.get_or_insert(1);
    if let Some(job_spec) = spec.job_template.spec.as_mut() {
        default_pod_template(&mut job_spec.template);
    }
}

fn validate_cron_job(cj: &CronJob, old: Option<&CronJob>, op: Operation) -> Vec<FieldError> {
    if op == Operation::UpdateStatus {
        return Vec::new();
    }
    let spec = &cj.spec;
    let old_spec = old.map(|o| &o.spec);
    let mut errs = Vec::new();
    let name = cj.metadata.name.as_deref().unwrap_or_default();
    // The controller appends an 11-character suffix to make job names, which are 63 at most.
    if name.len() > 52 {
        errs.push(FieldError::invalid(
            "metadata.name",
            name,
            "must be no more than 52 characters",
        ));
    }
    if spec.schedule.is_empty() {
        errs.push(FieldError::required("spec.schedule", ""));
    } else {
        if let Err(e) = cron::parse_schedule(&spec.schedule) {
            errs.push(FieldError::invalid("spec.schedule", spec.schedule.as_str(), e));
        }
        let allow_tz = old_spec.is_some_and(|o| o.schedule.contains("TZ"));
        if allow_tz && spec.schedule.contains("TZ") && spec.time_zone.is_some() {
            errs.push(FieldError::invalid(
                "spec.schedule",
                spec.schedule.as_str(),
                "cannot use both timeZone field and TZ or CRON_TZ in schedule",
            ));
        } else if !allow_tz && spec.schedule.contains("TZ") {
            errs.push(FieldError::invalid(
                "spec.schedule",
                spec.schedule.as_str(),
                "cannot use TZ or CRON_TZ in schedule, use timeZone field instead",
            ));
        }
    }
    errs.extend(nonnegative(
        spec.starting_deadline_seconds,
        "spec.startingDeadlineSeconds",
    ));
    if old_spec.is_none_or(|o| o.time_zone != spec.time_zone) {
        errs.extend(validate_time_zone(spec.time_zone.as_deref()));
    }
    match spec.concurrency_policy.as_deref().unwrap_or_default() {
        "Allow" | "Forbid" | "Replace" => {}
        "" => errs.push(FieldError::required("spec.concurrencyPolicy", "")),
        other => errs.push(FieldError::not_supported(
            "spec.concurrencyPolicy",
            other,
            &["Allow", "Forbid", "Replace"],
        )),
    }
    errs.extend(validate_job_template(&spec.job_template));
    errs.extend(nonnegative(
        spec.successful_jobs_history_limit.map(i64::from),
        "spec.successfulJobsHistoryLimit",
    ));
    errs.extend(nonnegative(
        spec.failed_jobs_history_limit.map(i64::from),
        "spec.failedJobsHistoryLimit",
    ));
    errs
}

/// upstream's `ValidateJobTemplateSpec`: the job spec, without a selector (the server
/// generates one for each job).
fn validate_job_template(template: &JobTemplateSpec) -> Vec<FieldError> {
    let path = "spec.jobTemplate.spec";
    let spec = template.spec.clone().unwrap_or_default();
    let mut errs = validate_job_spec(&spec, path);
    if let Some(sel) = &spec.selector {
        errs.push(FieldError::invalid(
            child(path, "selector"),
            serde_json::to_value(sel).unwrap_or_default(),
            "`selector` will be auto-generated",
        ));
    }
    if spec.manual_selector == Some(true) {
        errs.push(FieldError::not_supported(
            child(path, "manualSelector"),
            true,
            &["nil", "false"],
        ));
    }
    errs
}

/// upstream's `validateTimeZone`.
fn validate_time_zone(tz: Option<&str>) -> Vec<FieldError> {
    let Some(tz) = tz else { return Vec::new() };
    let path = "spec.timeZone";
    if tz.is_empty() {
        return vec![FieldError::invalid(
            path,
            tz,
            "timeZone must be nil or non-empty string",
        )];
    }
    let part_ok = |p: &str| {
        p != "."
            && p != ".."
            && !p.starts_with('-')
            && (1..=14).contains(&p.len())
            && p.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '+'))
    };
    if !tz.split('/').all(part_ok) {
        return vec![FieldError::invalid(path, tz, format!("unknown time zone {tz}"))];
    }
    let mut errs = Vec::new();
    if tz.eq_ignore_ascii_case("Local") {
        errs.push(FieldError::invalid(
            path,
            tz,
            "timeZone must be an explicit time zone as defined in https://www.iana.org/time-zones",
        ));
    }
    // Go loads "Local" without error; it is rejected by the rule above alone.
    else if let Err(e) = cron::load_location(tz) {
        errs.push(FieldError::invalid(path, tz, e));
    }
    errs
}

#[cfg(test)]
mod tests;
