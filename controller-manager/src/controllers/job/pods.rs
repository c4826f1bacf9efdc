//! What the job controller knows about its pods, all pure: the pod built from a Job's
//! template, completion indexes and their `"0-2,4"` text form, pod failure policy matching,
//! and when a pod finished.

use std::collections::BTreeSet;

use jiff::Timestamp;
use k8s_openapi::api::batch::v1::{Job, PodFailurePolicyRule};
use k8s_openapi::api::core::v1::{Container, EnvVar, EnvVarSource, ObjectFieldSelector, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::ResourceExt;

use crate::util;

/// The finalizer that keeps a finished pod until the controller has counted it.
pub const TRACKING_FINALIZER: &str = "batch.kubernetes.io/job-tracking";
/// The annotation and label carrying an Indexed Job pod's completion index.
pub const COMPLETION_INDEX: &str = "batch.kubernetes.io/job-completion-index";
/// The environment variable carrying the completion index.
pub const COMPLETION_INDEX_ENV: &str = "JOB_COMPLETION_INDEX";
/// The labels tying pods to their Job, current and legacy.
pub const CONTROLLER_UID: &str = "batch.kubernetes.io/controller-uid";
pub const LEGACY_CONTROLLER_UID: &str = "controller-uid";
pub const JOB_NAME: &str = "batch.kubernetes.io/job-name";
pub const LEGACY_JOB_NAME: &str = "job-name";
/// Longest `generateName` prefix (upstream's `MaxGeneratedNameLength`).
const MAX_GENERATED_NAME: usize = 58;

/// True for an Indexed Job.
pub fn is_indexed(job: &Job) -> bool {
    job.spec.as_ref().and_then(|spec| spec.completion_mode.as_deref()) == Some("Indexed")
}

/// True when the pod still carries the tracking finalizer.
pub fn has_tracking_finalizer(pod: &Pod) -> bool {
    pod.metadata
        .finalizers
        .as_ref()
        .is_some_and(|finalizers| finalizers.iter().any(|f| f == TRACKING_FINALIZER))
}

/// The pod's phase.
pub fn phase(pod: &Pod) -> Option<&str> {
    pod.status.as_ref().and_then(|status| status.phase.as_deref())
}

/// True when the pod's phase is Succeeded or Failed.
pub fn is_terminal(pod: &Pod) -> bool {
    matches!(phase(pod), Some("Succeeded" | "Failed"))
}

/// The pod's completion index from its annotation (or label), if valid.
pub fn completion_index(pod: &Pod) -> Option<i32> {
    let text = pod
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(COMPLETION_INDEX))
        .or_else(|| pod.metadata.labels.as_ref().and_then(|l| l.get(COMPLETION_INDEX)))?;
    text.parse::<i32>().ok().filter(|index| *index >= 0)
}

/// The pod a Job creates: its template, controlled by the Job, with the Job's labels, the
/// tracking finalizer and, for Indexed Jobs, the completion index.
pub fn pod_from_template(job: &Job, index: Option<i32>) -> Pod {
    let template = job.spec.as_ref().map(|spec| spec.template.clone()).unwrap_or_default();
    let template_meta = template.metadata.unwrap_or_default();
    let name = job.name_any();
    let uid = job.metadata.uid.clone().unwrap_or_default();
    let mut labels = template_meta.labels.unwrap_or_default();
    for (key, value) in [
        (LEGACY_JOB_NAME, &name),
        (JOB_NAME, &name),
        (LEGACY_CONTROLLER_UID, &uid),
        (CONTROLLER_UID, &uid),
    ] {
        labels.entry(key.to_string()).or_insert_with(|| value.clone());
    }
    let mut annotations = template_meta.annotations.unwrap_or_default();
    let mut finalizers = template_meta.finalizers.unwrap_or_default();
    if !finalizers.iter().any(|f| f == TRACKING_FINALIZER) {
        finalizers.push(TRACKING_FINALIZER.to_string());
    }
    let mut spec = template.spec.unwrap_or_default();
    let appendix = match index {
        Some(index) => format!("-{index}-"),
        None => "-".to_string(),
    };
    let mut prefix = name.clone();
    if prefix.len() + appendix.len() > MAX_GENERATED_NAME {
        let mut cut = MAX_GENERATED_NAME.saturating_sub(appendix.len());
        while !prefix.is_char_boundary(cut) {
            cut -= 1;
        }
        prefix.truncate(cut);
    }
    prefix.push_str(&appendix);
    if let Some(index) = index {
        annotations.insert(COMPLETION_INDEX.to_string(), index.to_string());
        labels.insert(COMPLETION_INDEX.to_string(), index.to_string());
        if spec.hostname.as_deref().is_none_or(str::is_empty) {
            spec.hostname = Some(format!("{name}-{index}"));
        }
        spec.containers.iter_mut().for_each(add_index_env);
        spec.init_containers.iter_mut().flatten().for_each(add_index_env);
    }
    Pod {
        metadata: ObjectMeta {
            generate_name: Some(prefix),
            namespace: job.namespace(),
            labels: Some(labels),
            annotations: (!annotations.is_empty()).then_some(annotations),
            finalizers: Some(finalizers),
            owner_references: Some(vec![util::controller_ref(job)]),
            ..Default::default()
        },
        spec: Some(spec),
        status: None,
    }
}

fn add_index_env(container: &mut Container) {
    let env = container.env.get_or_insert_with(Vec::new);
    if env.iter().any(|var| var.name == COMPLETION_INDEX_ENV) {
        return;
    }
    env.push(EnvVar {
        name: COMPLETION_INDEX_ENV.to_string(),
        value: None,
        value_from: Some(EnvVarSource {
            field_ref: Some(ObjectFieldSelector {
                api_version: None,
                field_path: format!("metadata.annotations['{COMPLETION_INDEX}']"),
            }),
            ..Default::default()
        }),
    });
}

/// Parses `status.completedIndexes` (`"0-2,4"`), keeping indexes below `completions`;
/// malformed parts are skipped.
pub fn parse_indexes(text: &str, completions: i32) -> BTreeSet<i32> {
    let mut indexes = BTreeSet::new();
    for part in text.split(',').map(str::trim).filter(|part| !part.is_empty()) {
        let (first, last) = match part.split_once('-') {
            Some((first, last)) => (first.parse::<i32>(), last.parse::<i32>()),
            None => (part.parse::<i32>(), part.parse::<i32>()),
        };
        let (Ok(first), Ok(last)) = (first, last) else {
            continue;
        };
        let last = last.min(completions.saturating_sub(1));
        if first < 0 {
            continue;
        }
        indexes.extend(first..=last);
    }
    indexes
}

/// Formats indexes as upstream does: ascending intervals, `a-b` for runs of 2 or more.
pub fn format_indexes(indexes: &BTreeSet<i32>) -> String {
    let mut parts = Vec::new();
    let mut run: Option<(i32, i32)> = None;
    for &index in indexes {
        run = match run {
            Some((first, last)) if index == last + 1 => Some((first, index)),
            Some(done) => {
                parts.push(interval(done));
                Some((index, index))
            }
            None => Some((index, index)),
        };
    }
    if let Some(done) = run {
        parts.push(interval(done));
    }
    parts.join(",")
}

fn interval((first, last): (i32, i32)) -> String {
    if first == last {
        first.to_string()
    } else {
        format!("{first}-{last}")
    }
}

/// What the pod failure policy says about a failed pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicyAction {
    /// Fail the whole Job with this message.
    FailJob(String),
    /// Do not count the failure.
    Ignore,
    /// Count the failure (also when no rule matches).
    Count,
}

/// Evaluates `rules` in order against a failed pod, as upstream's `matchPodFailurePolicy`.
pub fn match_failure_policy(rules: &[PodFailurePolicyRule], pod: &Pod) -> PolicyAction {
    let key = util::key_of(pod);
    for (index, rule) in rules.iter().enumerate() {
        let message = if let Some(requirement) = &rule.on_exit_codes {
            let Some((container, code)) = matching_exit_code(pod, requirement) else {
                continue;
            };
            format!(
                "Container {container} for pod {key} failed with exit code {code} matching {} rule at index {index}",
                rule.action
            )
        } else if let Some(patterns) = &rule.on_pod_conditions {
            let conditions = pod.status.as_ref().and_then(|status| status.conditions.as_ref());
            let Some(condition) = patterns.iter().find_map(|pattern| {
                let wanted = pattern.status.as_deref().unwrap_or("True");
                conditions?
                    .iter()
                    .find(|c| c.type_ == pattern.type_ && c.status == wanted)
            }) else {
                continue;
            };
            format!(
                "Pod {key} has condition {} matching {} rule at index {index}",
                condition.type_, rule.action
            )
        } else {
            continue;
        };
        return match rule.action.as_str() {
            "FailJob" => PolicyAction::FailJob(message),
            "Ignore" => PolicyAction::Ignore,
            _ => PolicyAction::Count,
        };
    }
    PolicyAction::Count
}

fn matching_exit_code(
    pod: &Pod,
    requirement: &k8s_openapi::api::batch::v1::PodFailurePolicyOnExitCodesRequirement,
) -> Option<(String, i32)> {
    let status = pod.status.as_ref()?;
    let statuses = status
        .init_container_statuses
        .iter()
        .flatten()
        .chain(status.container_statuses.iter().flatten());
    for container in statuses {
        if requirement
            .container_name
            .as_deref()
            .is_some_and(|name| name != container.name)
        {
            continue;
        }
        let Some(terminated) = container.state.as_ref().and_then(|state| state.terminated.as_ref()) else {
            continue;
        };
        let code = terminated.exit_code;
        // Exit code 0 never matches: the container succeeded.
        if code == 0 {
            continue;
        }
        let listed = requirement.values.contains(&code);
        let matches = match requirement.operator.as_str() {
            "In" => listed,
            "NotIn" => !listed,
            _ => false,
        };
        if matches {
            return Some((container.name.clone(), code));
        }
    }
    None
}

/// When a finished pod finished: its last container's termination, else when it stopped
/// being Ready, else when its deletion started, else its latest condition change, else its
/// creation (every fallback is stable across syncs, unlike "now").
pub fn finish_time(pod: &Pod) -> Option<Timestamp> {
    let status = pod.status.as_ref();
    let containers = status
        .and_then(|status| status.container_statuses.as_ref())
        .into_iter()
        .flatten()
        .filter_map(|c| c.state.as_ref()?.terminated.as_ref()?.finished_at.as_ref())
        .map(|time| time.0)
        .max();
    if containers.is_some() {
        return containers;
    }
    let conditions = status.and_then(|status| status.conditions.as_ref());
    let not_ready = conditions
        .into_iter()
        .flatten()
        .find(|c| c.type_ == "Ready" && c.status == "False")
        .and_then(|c| c.last_transition_time.as_ref())
        .map(|time| time.0);
    not_ready
        .or_else(|| pod.metadata.deletion_timestamp.as_ref().map(|time| time.0))
        .or_else(|| {
            conditions
                .into_iter()
                .flatten()
                .filter_map(|c| c.last_transition_time.as_ref().map(|time| time.0))
                .max()
        })
        .or_else(|| pod.metadata.creation_timestamp.as_ref().map(|time| time.0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::batch::v1::{
        JobSpec, PodFailurePolicyOnExitCodesRequirement, PodFailurePolicyOnPodConditionsPattern,
    };
    use k8s_openapi::api::core::v1::{
        ContainerState, ContainerStateTerminated, ContainerStatus, PodCondition, PodSpec, PodStatus, PodTemplateSpec,
    };

    #[test]
    fn indexes_round_trip_like_upstream() {
        let set = parse_indexes("0-2,4,7-8", 8);
        assert_eq!(set.iter().copied().collect::<Vec<_>>(), vec![0, 1, 2, 4, 7]);
        assert_eq!(format_indexes(&set), "0-2,4,7");
        assert_eq!(format_indexes(&BTreeSet::new()), "");
        assert_eq!(format_indexes(&[5, 6].into()), "5-6");
        assert_eq!(parse_indexes("x,1,-3", 5).len(), 1);
    }

    #[test]
    fn indexed_pod_gets_index_hostname_env_and_finalizer() {
        let job = Job {
            metadata: ObjectMeta {
                name: Some("work".into()),
                namespace: Some("ns".into()),
                uid: Some("u1".into()),
                ..Default::default()
            },
            spec: Some(JobSpec {
                completion_mode: Some("Indexed".into()),
                template: PodTemplateSpec {
                    metadata: None,
                    spec: Some(PodSpec {
                        containers: vec![Container {
                            name: "c".into(),
                            ..Default::default()
                        }],
                        ..Default::default()
                    }),
                },
                ..Default::default()
            }),
            status: None,
        };
        let pod = pod_from_template(&job, Some(3));
        assert_eq!(pod.metadata.generate_name.as_deref(), Some("work-3-"));
        assert_eq!(completion_index(&pod), Some(3));
        let labels = pod.metadata.labels.clone().unwrap_or_default();
        assert_eq!(labels.get(CONTROLLER_UID).map(String::as_str), Some("u1"));
        assert_eq!(labels.get(LEGACY_JOB_NAME).map(String::as_str), Some("work"));
        let spec = pod.spec.clone().unwrap_or_default();
        assert_eq!(spec.hostname.as_deref(), Some("work-3"));
        let env = spec.containers[0].env.clone().unwrap_or_default();
        assert_eq!(env[0].name, COMPLETION_INDEX_ENV);
        assert!(has_tracking_finalizer(&pod));
        let owner = util::controller_of(&pod.metadata).map(|r| r.kind.clone());
        assert_eq!(owner.as_deref(), Some("Job"));
        let plain = pod_from_template(&job, None);
        assert_eq!(plain.metadata.generate_name.as_deref(), Some("work-"));
        assert_eq!(completion_index(&plain), None);
    }

    fn failed_with(code: i32, conditions: &[(&str, &str)]) -> Pod {
        Pod {
            metadata: ObjectMeta {
                name: Some("p".into()),
                namespace: Some("ns".into()),
                ..Default::default()
            },
            spec: None,
            status: Some(PodStatus {
                phase: Some("Failed".into()),
                container_statuses: Some(vec![ContainerStatus {
                    name: "main".into(),
                    state: Some(ContainerState {
                        terminated: Some(ContainerStateTerminated {
                            exit_code: code,
                            ..Default::default()
                        }),
                        ..Default::default()
                    }),
                    ..Default::default()
                }]),
                conditions: Some(
                    conditions
                        .iter()
                        .map(|(t, s)| PodCondition {
                            type_: t.to_string(),
                            status: s.to_string(),
                            ..Default::default()
                        })
                        .collect(),
                ),
                ..Default::default()
            }),
        }
    }

    #[test]
    fn failure_policy_rules_match_in_order() {
        let rules = vec![
            PodFailurePolicyRule {
                action: "Ignore".into(),
                on_pod_conditions: Some(vec![PodFailurePolicyOnPodConditionsPattern {
                    type_: "DisruptionTarget".into(),
                    status: Some("True".into()),
                }]),
                on_exit_codes: None,
            },
            PodFailurePolicyRule {
                action: "FailJob".into(),
                on_exit_codes: Some(PodFailurePolicyOnExitCodesRequirement {
                    container_name: Some("main".into()),
                    operator: "In".into(),
                    values: vec![42],
                }),
                on_pod_conditions: None,
            },
            PodFailurePolicyRule {
                action: "Count".into(),
                on_exit_codes: Some(PodFailurePolicyOnExitCodesRequirement {
                    container_name: None,
                    operator: "NotIn".into(),
                    values: vec![42],
                }),
                on_pod_conditions: None,
            },
        ];
        assert_eq!(
            match_failure_policy(&rules, &failed_with(42, &[])),
            PolicyAction::FailJob(
                "Container main for pod ns/p failed with exit code 42 matching FailJob rule at index 1".into()
            )
        );
        assert_eq!(
            match_failure_policy(&rules, &failed_with(42, &[("DisruptionTarget", "True")])),
            PolicyAction::Ignore
        );
        assert_eq!(match_failure_policy(&rules, &failed_with(1, &[])), PolicyAction::Count);
        // Exit code 0 matches no exit-code rule.
        assert_eq!(
            match_failure_policy(&rules[1..2], &failed_with(0, &[])),
            PolicyAction::Count
        );
    }
}
