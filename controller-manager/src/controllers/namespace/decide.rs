//! The namespace controller's pure part: whether a namespace awaits this controller, the
//! status conditions reporting a deletion pass (upstream's five `NamespaceDeletion*` /
//! `Namespace*Remaining` conditions, always all present), and the finalizers left after it.

use std::collections::BTreeMap;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::{Namespace, NamespaceCondition};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

/// The finalizer this controller owns in `spec.finalizers`.
pub const FINALIZER: &str = "kubernetes";

/// What one deletion pass found.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Report {
    /// Discovery failed with this error.
    pub discovery_failure: Option<String>,
    /// Errors deleting content, one per resource that failed.
    pub deletion_failures: Vec<String>,
    /// Objects still present, per group resource (`pods`, `deployments.apps`).
    pub remaining: BTreeMap<String, usize>,
    /// Objects still present, per finalizer they carry.
    pub finalizers: BTreeMap<String, usize>,
}

impl Report {
    /// True when the namespace is empty and nothing failed: it may be finalized.
    pub fn done(&self) -> bool {
        self.discovery_failure.is_none() && self.deletion_failures.is_empty() && self.remaining.is_empty()
    }
}

/// What the namespace needs from this controller.
#[derive(Debug, PartialEq, Eq)]
pub enum Need {
    /// Not being deleted, or another finalizer's turn: nothing.
    Nothing,
    /// Being deleted with our finalizer: delete its content.
    DeleteContent,
    /// Finalized but still stored (kaji's apiserver removes a finalized namespace on the
    /// next DELETE): delete it again.
    Remove,
}

/// What `namespace` needs.
pub fn need(namespace: &Namespace) -> Need {
    if namespace.metadata.deletion_timestamp.is_none() {
        return Need::Nothing;
    }
    let finalizers = namespace.spec.as_ref().and_then(|spec| spec.finalizers.as_ref());
    if finalizers.is_some_and(|finalizers| finalizers.iter().any(|f| f == FINALIZER)) {
        return Need::DeleteContent;
    }
    let no_spec_finalizers = finalizers.is_none_or(Vec::is_empty);
    let no_meta_finalizers = namespace.metadata.finalizers.as_ref().is_none_or(Vec::is_empty);
    if no_spec_finalizers && no_meta_finalizers {
        Need::Remove
    } else {
        Need::Nothing
    }
}

/// `spec.finalizers` without ours.
pub fn finalizers_after(namespace: &Namespace) -> Vec<String> {
    namespace
        .spec
        .as_ref()
        .and_then(|spec| spec.finalizers.clone())
        .unwrap_or_default()
        .into_iter()
        .filter(|finalizer| finalizer != FINALIZER)
        .collect()
}

fn aggregate(errors: &[String]) -> String {
    match errors {
        [one] => one.clone(),
        many => format!("[{}]", many.join(", ")),
    }
}

/// The conditions reporting `report`, keeping the transition time of those whose status did
/// not change. Returns `None` when they equal `current` (nothing to write).
pub fn conditions(report: &Report, current: &[NamespaceCondition], now: Timestamp) -> Option<Vec<NamespaceCondition>> {
    let remaining: Vec<String> = report
        .remaining
        .iter()
        .map(|(resource, count)| format!("{resource} has {count} resource instances"))
        .collect();
    let finalizers: Vec<String> = report
        .finalizers
        .iter()
        .map(|(finalizer, count)| format!("{finalizer} in {count} resource instances"))
        .collect();
    let wanted: [(&str, bool, &str, String); 5] = [
        match &report.discovery_failure {
            Some(error) => (
                "NamespaceDeletionDiscoveryFailure",
                true,
                "DiscoveryFailed",
                format!("Discovery failed for some groups, 1 failing: {error}"),
            ),
            None => (
                "NamespaceDeletionDiscoveryFailure",
                false,
                "ResourcesDiscovered",
                "All resources successfully discovered".into(),
            ),
        },
        (
            "NamespaceDeletionGroupVersionParsingFailure",
            false,
            "ParsedGroupVersions",
            "All legacy kube types successfully parsed".into(),
        ),
        if report.deletion_failures.is_empty() {
            (
                "NamespaceDeletionContentFailure",
                false,
                "ContentDeleted",
                "All content successfully deleted, may be waiting on finalization".into(),
            )
        } else {
            (
                "NamespaceDeletionContentFailure",
                true,
                "ContentDeletionFailed",
                format!(
                    "Failed to delete all resource types, {} remaining: {}",
                    report.deletion_failures.len(),
                    aggregate(&report.deletion_failures)
                ),
            )
        },
        if remaining.is_empty() {
            (
                "NamespaceContentRemaining",
                false,
                "ContentRemoved",
                "All content successfully removed".into(),
            )
        } else {
            (
                "NamespaceContentRemaining",
                true,
                "SomeResourcesRemain",
                format!("Some resources are remaining: {}", remaining.join(", ")),
            )
        },
        if finalizers.is_empty() {
            (
                "NamespaceFinalizersRemaining",
                false,
                "ContentHasNoFinalizers",
                "All content-preserving finalizers finished".into(),
            )
        } else {
            (
                "NamespaceFinalizersRemaining",
                true,
                "SomeFinalizersRemain",
                format!(
                    "Some content in the namespace has finalizers remaining: {}",
                    finalizers.join(", ")
                ),
            )
        },
    ];
    let mut changed = false;
    let mut out: Vec<NamespaceCondition> = Vec::new();
    for (type_, failing, reason, message) in wanted {
        let status = if failing { "True" } else { "False" };
        let existing = current.iter().find(|condition| condition.type_ == type_);
        let same = existing.is_some_and(|c| {
            c.status == status && c.reason.as_deref() == Some(reason) && c.message.as_deref() == Some(message.as_str())
        });
        changed |= !same;
        let transition = existing
            .filter(|c| c.status == status)
            .and_then(|c| c.last_transition_time.clone())
            .unwrap_or(Time(now));
        out.push(NamespaceCondition {
            type_: type_.into(),
            status: status.into(),
            reason: Some(reason.into()),
            message: Some(message),
            last_transition_time: Some(transition),
        });
    }
    // Conditions of other types (set by someone else) are kept.
    for condition in current {
        if !out.iter().any(|c| c.type_ == condition.type_) {
            out.push(condition.clone());
        }
    }
    changed.then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::testing::{ago, now};
    use k8s_openapi::api::core::v1::NamespaceSpec;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn namespace(deleting: bool, spec: &[&str], meta: &[&str]) -> Namespace {
        Namespace {
            metadata: ObjectMeta {
                name: Some("ns".into()),
                deletion_timestamp: deleting.then(|| ago(1)),
                finalizers: Some(meta.iter().map(|f| f.to_string()).collect()),
                ..Default::default()
            },
            spec: Some(NamespaceSpec {
                finalizers: Some(spec.iter().map(|f| f.to_string()).collect()),
            }),
            status: None,
        }
    }

    #[test]
    fn what_a_namespace_needs() {
        let cases = [
            ("active", namespace(false, &["kubernetes"], &[]), Need::Nothing),
            (
                "deleting",
                namespace(true, &["kubernetes", "other"], &[]),
                Need::DeleteContent,
            ),
            (
                "another finalizer pending",
                namespace(true, &["other"], &[]),
                Need::Nothing,
            ),
            (
                "metadata finalizer pending",
                namespace(true, &[], &["x"]),
                Need::Nothing,
            ),
            ("finalized", namespace(true, &[], &[]), Need::Remove),
        ];
        for (name, ns, expected) in cases {
            assert_eq!(need(&ns), expected, "{name}");
        }
        assert_eq!(
            finalizers_after(&namespace(true, &["kubernetes", "other"], &[])),
            vec!["other"]
        );
    }

    fn summary(conditions: &[NamespaceCondition]) -> Vec<(String, String, String)> {
        conditions
            .iter()
            .map(|c| (c.type_.clone(), c.status.clone(), c.message.clone().unwrap_or_default()))
            .collect()
    }

    #[test]
    fn conditions_report_remaining_content_and_finalizers() {
        let report = Report {
            remaining: [("pods".to_string(), 2), ("deployments.apps".to_string(), 1)].into(),
            finalizers: [("example.com/keep".to_string(), 1)].into(),
            ..Default::default()
        };
        let conditions = conditions(&report, &[], now()).expect("first write");
        let summary = summary(&conditions);
        assert_eq!(summary.len(), 5);
        assert_eq!(
            summary[3],
            (
                "NamespaceContentRemaining".into(),
                "True".into(),
                "Some resources are remaining: deployments.apps has 1 resource instances, pods has 2 resource instances"
                    .into()
            )
        );
        assert_eq!(
            summary[4],
            (
                "NamespaceFinalizersRemaining".into(),
                "True".into(),
                "Some content in the namespace has finalizers remaining: example.com/keep in 1 resource instances"
                    .into()
            )
        );
        assert_eq!(summary[0].1, "False");
        // Unchanged: nothing to write.
        assert_eq!(super::conditions(&report, &conditions, now()), None);
        // Failures flip the failure conditions; the others keep their transition time.
        let failing = Report {
            discovery_failure: Some("boom".into()),
            deletion_failures: vec!["a".into(), "b".into()],
            ..report
        };
        let later = now() + jiff::SignedDuration::from_secs(60);
        let updated = super::conditions(&failing, &conditions, later).expect("changed");
        assert_eq!(updated[0].reason.as_deref(), Some("DiscoveryFailed"));
        assert_eq!(
            updated[2].message.as_deref(),
            Some("Failed to delete all resource types, 2 remaining: [a, b]")
        );
        assert_eq!(updated[0].last_transition_time, Some(Time(later)));
        assert_eq!(updated[3].last_transition_time, Some(Time(now())));
        assert!(Report::default().done());
        assert!(!failing.done());
    }
}
