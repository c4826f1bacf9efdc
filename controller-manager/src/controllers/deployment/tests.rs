//! Table tests for the deployment controller's decide step.

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::apps::v1::{
    Deployment, DeploymentCondition, DeploymentSpec, DeploymentStatus, DeploymentStrategy, ReplicaSet, ReplicaSetSpec,
    ReplicaSetStatus, RollingUpdateDeployment,
};
use k8s_openapi::api::core::v1::{Container, PodSpec, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::decide::{Action, Plan, decide};
use super::util::*;
use crate::util::testing::{ago, now};

fn template(image: &str) -> PodTemplateSpec {
    PodTemplateSpec {
        metadata: Some(ObjectMeta {
            labels: Some([("app".to_string(), "web".to_string())].into()),
            ..Default::default()
        }),
        spec: Some(PodSpec {
            containers: vec![Container {
                name: "c".into(),
                image: Some(image.into()),
                ..Default::default()
            }],
            ..Default::default()
        }),
    }
}

fn deployment(image: &str, replicas: i32, recreate: bool) -> Deployment {
    Deployment {
        metadata: ObjectMeta {
            name: Some("web".into()),
            namespace: Some("ns".into()),
            uid: Some("uid-web".into()),
            generation: Some(1),
            annotations: Some([(CHANGE_CAUSE.to_string(), "because".to_string())].into()),
            ..Default::default()
        },
        spec: DeploymentSpec {
            replicas: Some(replicas),
            selector: LabelSelector {
                match_labels: Some([("app".to_string(), "web".to_string())].into()),
                ..Default::default()
            },
            template: template(image),
            strategy: Some(if recreate {
                DeploymentStrategy {
                    type_: Some("Recreate".into()),
                    rolling_update: None,
                }
            } else {
                DeploymentStrategy {
                    type_: Some("RollingUpdate".into()),
                    rolling_update: Some(RollingUpdateDeployment {
                        max_surge: Some(IntOrString::String("25%".into())),
                        max_unavailable: Some(IntOrString::String("25%".into())),
                    }),
                }
            }),
            revision_history_limit: Some(10),
            progress_deadline_seconds: Some(600),
            ..Default::default()
        },
        status: None,
    }
}

/// A ReplicaSet of `web` for `image`: `size` replicas of which `available` are available.
fn rs(image: &str, revision: i64, size: i32, available: i32, age: i64) -> Arc<ReplicaSet> {
    let hash = format!("h{image}");
    let mut template = template(image);
    template
        .metadata
        .as_mut()
        .and_then(|meta| meta.labels.as_mut())
        .map(|labels| labels.insert(POD_TEMPLATE_HASH.into(), hash.clone()));
    let annotations: BTreeMap<String, String> = [
        (REVISION.to_string(), revision.to_string()),
        (DESIRED_REPLICAS.to_string(), "4".to_string()),
        (MAX_REPLICAS.to_string(), "5".to_string()),
        (CHANGE_CAUSE.to_string(), "because".to_string()),
    ]
    .into();
    Arc::new(ReplicaSet {
        metadata: ObjectMeta {
            name: Some(format!("web-{hash}")),
            namespace: Some("ns".into()),
            uid: Some(format!("uid-{hash}")),
            creation_timestamp: Some(ago(age)),
            labels: Some(
                [
                    ("app".to_string(), "web".to_string()),
                    (POD_TEMPLATE_HASH.to_string(), hash),
                ]
                .into(),
            ),
            annotations: Some(annotations),
            owner_references: Some(vec![crate::util::controller_ref(&deployment(image, 4, false))]),
            generation: Some(1),
            ..Default::default()
        },
        spec: ReplicaSetSpec {
            replicas: Some(size),
            template: Some(template),
            ..Default::default()
        },
        status: Some(ReplicaSetStatus {
            replicas: size,
            available_replicas: Some(available),
            ready_replicas: Some(available),
            observed_generation: Some(1),
            ..Default::default()
        }),
    })
}

/// Like `rs`, with a status from before the last scale.
fn rs_stale(image: &str, revision: i64, size: i32, available: i32, age: i64) -> Arc<ReplicaSet> {
    let mut stale = rs(image, revision, size, available, age).as_ref().clone();
    if let Some(status) = stale.status.as_mut() {
        status.replicas = available;
    }
    Arc::new(stale)
}

/// A compact rendering of the plan's ReplicaSet writes: `create NAME=N rev R`,
/// `scale NAME A->B`, `update NAME rev R`, `delete NAME`.
fn writes(plan: &Plan) -> Vec<String> {
    plan.actions
        .iter()
        .filter_map(|action| match action {
            Action::CreateReplicaSet(rs) => Some(format!(
                "create {}={} rev {}",
                rs.metadata.name.as_deref().unwrap_or_default().starts_with("web-"),
                rs.spec.replicas.unwrap_or(0),
                revision(rs)
            )),
            Action::UpdateReplicaSet { rs, scaled_from } if rs.spec.replicas != Some(*scaled_from) => Some(format!(
                "scale {} {}->{}",
                rs.metadata.name.as_deref().unwrap_or_default(),
                scaled_from,
                rs.spec.replicas.unwrap_or(0)
            )),
            Action::UpdateReplicaSet { rs, .. } => Some(format!(
                "update {} rev {}",
                rs.metadata.name.as_deref().unwrap_or_default(),
                revision(rs)
            )),
            Action::DeleteReplicaSet { name, .. } => Some(format!("delete {name}")),
            _ => None,
        })
        .collect()
}

fn status(plan: &Plan) -> Option<&DeploymentStatus> {
    plan.actions.iter().find_map(|action| match action {
        Action::UpdateStatus(status) => Some(status),
        _ => None,
    })
}

fn condition_reason(plan: &Plan, type_: &str) -> Option<String> {
    status(plan)
        .and_then(|s| condition(s, type_))
        .and_then(|c| c.reason.clone())
}

#[test]
fn rollout_steps() {
    struct Case {
        name: &'static str,
        deployment: Deployment,
        replicasets: Vec<Arc<ReplicaSet>>,
        writes: Vec<&'static str>,
    }
    let cases = vec![
        Case {
            name: "new deployment creates its first ReplicaSet at full size",
            deployment: deployment("v1", 4, false),
            replicasets: vec![],
            writes: vec!["create true=4 rev 1"],
        },
        Case {
            name: "template change surges one and scales the old down by maxUnavailable",
            deployment: deployment("v2", 4, false),
            replicasets: vec![rs("v1", 1, 4, 4, 100)],
            writes: vec!["create true=1 rev 2", "scale web-hv1 4->3"],
        },
        Case {
            name: "nothing moves while the new pods are not available",
            deployment: deployment("v2", 4, false),
            replicasets: vec![rs("v1", 1, 3, 3, 100), rs("v2", 2, 2, 0, 10)],
            writes: vec![],
        },
        Case {
            name: "new pods available: old scaled down",
            deployment: deployment("v2", 4, false),
            replicasets: vec![rs("v1", 1, 3, 3, 100), rs("v2", 2, 2, 2, 10)],
            writes: vec!["scale web-hv1 3->1"],
        },
        Case {
            name: "room to surge: new scaled up",
            deployment: deployment("v2", 4, false),
            replicasets: vec![rs("v1", 1, 1, 1, 100), rs("v2", 2, 2, 2, 10)],
            writes: vec!["scale web-hv2 2->4"],
        },
        Case {
            name: "old unhealthy pods are removed first",
            deployment: deployment("v2", 4, false),
            // 4+1 pods, 3 must stay available, the new one is not: one may go, an unhealthy one.
            replicasets: vec![rs("v1", 1, 4, 1, 100), rs("v2", 2, 1, 0, 10)],
            writes: vec!["scale web-hv1 4->3"],
        },
        Case {
            name: "recreate scales the old ReplicaSet to zero first",
            deployment: deployment("v2", 4, true),
            replicasets: vec![rs("v1", 1, 4, 4, 100)],
            writes: vec!["scale web-hv1 4->0"],
        },
        Case {
            name: "recreate creates the new ReplicaSet once old pods are gone",
            deployment: deployment("v2", 4, true),
            replicasets: vec![rs("v1", 1, 0, 0, 100)],
            writes: vec!["create true=4 rev 2"],
        },
        Case {
            name: "rollback reuses the old ReplicaSet and bumps its revision",
            deployment: deployment("v1", 4, false),
            replicasets: vec![rs("v1", 1, 0, 0, 100), rs("v2", 2, 4, 4, 10)],
            writes: vec!["scale web-hv1 0->1"],
        },
        Case {
            name: "resize of a settled deployment scales its only active ReplicaSet",
            deployment: deployment("v1", 6, false),
            replicasets: vec![rs("v1", 1, 4, 4, 100)],
            writes: vec!["scale web-hv1 4->6"],
        },
        Case {
            name: "resize during a rollout scales proportionally",
            deployment: deployment("v2", 8, false),
            replicasets: vec![rs("v1", 1, 3, 3, 100), rs("v2", 2, 2, 0, 10)],
            // allowed 8+2=10, 5 more: v1 gets round(3*10/5)-3=3, v2 round(2*10/5)-2=2.
            writes: vec!["scale web-hv1 3->6", "scale web-hv2 2->4"],
        },
        Case {
            name: "an old ReplicaSet's stale status does not count beyond its size",
            deployment: deployment("v2", 4, false),
            // v1 was just scaled to 3 but its status still shows 4 available.
            // Counting 4 would allow 4+1-3 = 2 down; 3+1-3 = 1 is right.
            replicasets: vec![rs_stale("v1", 1, 3, 4, 100), rs("v2", 2, 2, 1, 10)],
            writes: vec!["scale web-hv1 3->2"],
        },
    ];
    for case in cases {
        let plan = decide(&case.deployment, &case.replicasets, &[], now());
        assert_eq!(writes(&plan), case.writes, "{}", case.name);
    }
}

#[test]
fn rollback_bumps_revision_and_copies_change_cause() {
    let d = deployment("v1", 4, false);
    let plan = decide(&d, &[rs("v1", 1, 0, 0, 100), rs("v2", 2, 4, 4, 10)], &[], now());
    let reused = plan
        .actions
        .iter()
        .find_map(|action| match action {
            Action::UpdateReplicaSet { rs, .. } if rs.metadata.name.as_deref() == Some("web-hv1") => Some(rs),
            _ => None,
        })
        .expect("reused ReplicaSet updated");
    let annotations = reused.metadata.annotations.clone().unwrap_or_default();
    assert_eq!(annotations.get(REVISION).map(String::as_str), Some("3"));
    assert_eq!(annotations.get(REVISION_HISTORY).map(String::as_str), Some("1"));
    assert_eq!(annotations.get(CHANGE_CAUSE).map(String::as_str), Some("because"));
    assert!(plan.actions.iter().any(|action| matches!(action,
        Action::AnnotateDeployment(a) if a.get(REVISION).map(String::as_str) == Some("3"))));
}

#[test]
fn new_replicaset_carries_hash_revision_and_owner() {
    let d = deployment("v1", 2, false);
    let plan = decide(&d, &[], &[], now());
    let Some(Action::CreateReplicaSet(rs)) = plan.actions.first() else {
        panic!("expected a create first, got {:?}", plan.actions);
    };
    let hash = template_hash(&d.spec.template, None);
    assert_eq!(rs.metadata.name.as_deref(), Some(format!("web-{hash}").as_str()));
    assert_eq!(rs.labels_hash(), Some(hash.clone()));
    assert_eq!(
        rs.spec
            .selector
            .match_labels
            .as_ref()
            .and_then(|l| l.get(POD_TEMPLATE_HASH)),
        Some(&hash)
    );
    let annotations = rs.metadata.annotations.clone().unwrap_or_default();
    assert_eq!(annotations.get(REVISION).map(String::as_str), Some("1"));
    assert_eq!(annotations.get(CHANGE_CAUSE).map(String::as_str), Some("because"));
    assert_eq!(annotations.get(DESIRED_REPLICAS).map(String::as_str), Some("2"));
    assert_eq!(annotations.get(MAX_REPLICAS).map(String::as_str), Some("3"));
    let owner = crate::util::controller_of(&rs.metadata).expect("controller reference");
    assert_eq!(owner.uid, "uid-web");
    assert_eq!(
        condition_reason(&plan, PROGRESSING).as_deref(),
        Some(REASON_NEW_RS_CREATED)
    );
}

trait HashLabel {
    fn labels_hash(&self) -> Option<String>;
}

impl HashLabel for ReplicaSet {
    fn labels_hash(&self) -> Option<String> {
        self.spec
            .template
            .as_ref()?
            .metadata
            .as_ref()?
            .labels
            .as_ref()?
            .get(POD_TEMPLATE_HASH)
            .cloned()
    }
}

#[test]
fn status_conditions() {
    // Complete: all updated and available.
    let d = deployment("v1", 4, false);
    let plan = decide(&d, &[rs("v1", 1, 4, 4, 100)], &[], now());
    let s = status(&plan).expect("status written");
    assert_eq!(
        (s.replicas, s.updated_replicas, s.available_replicas),
        (Some(4), Some(4), Some(4))
    );
    assert_eq!(s.unavailable_replicas, Some(0));
    assert_eq!(s.observed_generation, Some(1));
    assert_eq!(
        condition_reason(&plan, PROGRESSING).as_deref(),
        Some(REASON_NEW_RS_AVAILABLE)
    );
    assert_eq!(
        condition_reason(&plan, AVAILABLE).as_deref(),
        Some(REASON_MIN_AVAILABLE)
    );

    // Below minimum availability.
    let plan = decide(&d, &[rs("v1", 1, 4, 1, 100)], &[], now());
    assert_eq!(
        condition_reason(&plan, AVAILABLE).as_deref(),
        Some(REASON_MIN_UNAVAILABLE)
    );

    // No progress for longer than the deadline.
    let mut stuck = deployment("v2", 4, false);
    let replicasets = vec![rs("v1", 1, 3, 3, 1000), rs("v2", 2, 2, 0, 900)];
    let settled = decide(&stuck, &replicasets, &[], now());
    let mut last = status(&settled).cloned().expect("status");
    for condition in last.conditions.iter_mut().flatten() {
        if condition.type_.as_deref() == Some(PROGRESSING) {
            *condition = DeploymentCondition {
                last_update_time: Some(ago(700)),
                ..condition.clone()
            };
        }
    }
    stuck.status = Some(last);
    let plan = decide(&stuck, &replicasets, &[], now());
    assert_eq!(condition_reason(&plan, PROGRESSING).as_deref(), Some(REASON_TIMED_OUT));
}

#[test]
fn paused_deployment_only_scales_and_reports_paused() {
    let mut d = deployment("v2", 4, false);
    d.spec.paused = Some(true);
    let plan = decide(&d, &[rs("v1", 1, 4, 4, 100)], &[], now());
    assert_eq!(writes(&plan), Vec::<String>::new());
    assert_eq!(condition_reason(&plan, PROGRESSING).as_deref(), Some(REASON_PAUSED));
}

#[test]
fn history_beyond_the_limit_is_deleted_oldest_first() {
    let mut d = deployment("v4", 4, false);
    d.spec.revision_history_limit = Some(1);
    let replicasets = vec![
        rs("v1", 1, 0, 0, 400),
        rs("v2", 2, 0, 0, 300),
        rs("v3", 3, 0, 0, 200),
        rs("v4", 4, 4, 4, 100),
    ];
    let settled = decide(&d, &replicasets, &[], now());
    d.status = status(&settled).cloned();
    let plan = decide(&d, &replicasets, &[], now());
    assert_eq!(writes(&plan), vec!["delete web-hv1", "delete web-hv2"]);
}
