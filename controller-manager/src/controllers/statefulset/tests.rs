//! Table tests of the statefulset controller's decision: ordered and parallel creation,
//! scale-down from the top, the rolling update with partition, identity, claims and status.

use std::sync::Arc;

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{Pod, PodTemplateSpec};
use serde_json::json;

use super::decide::{self, Inputs, Plan, Revision};
use crate::util::testing::{ago, now, owned_by, pod, ready};

const OLD: &str = "web-old";
const NEW: &str = "web-new";

fn set(replicas: i32, parallel: bool, strategy: serde_json::Value) -> StatefulSet {
    serde_json::from_value(json!({
        "metadata": {"name": "web", "namespace": "ns", "uid": "uid-web", "generation": 3},
        "spec": {
            "replicas": replicas,
            "serviceName": "web-svc",
            "podManagementPolicy": if parallel { "Parallel" } else { "OrderedReady" },
            "updateStrategy": strategy,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "c", "image": "new"}]},
            },
            "volumeClaimTemplates": [{
                "metadata": {"name": "data"},
                "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
            }],
        },
    }))
    .expect("statefulset")
}

fn rolling(partition: i32) -> serde_json::Value {
    json!({"type": "RollingUpdate", "rollingUpdate": {"partition": partition}})
}

/// Pod `web-<ordinal>` of `revision`, Running and Ready when `is_ready`.
fn member(ordinal: i32, revision: &str, is_ready: bool) -> Pod {
    let name = format!("web-{ordinal}");
    let labels = [
        ("app", "web"),
        (decide::REVISION_LABEL, revision),
        (decide::POD_NAME_LABEL, name.as_str()),
    ];
    let index = ordinal.to_string();
    let mut labels: Vec<(&str, &str)> = labels.to_vec();
    labels.push((decide::POD_INDEX_LABEL, index.as_str()));
    let pod = owned_by(pod(&name, &labels, 100), "StatefulSet", "web");
    if is_ready { ready(pod, 60) } else { pod }
}

fn terminating(mut pod: Pod) -> Pod {
    pod.metadata.deletion_timestamp = Some(ago(1));
    pod
}

fn failed(mut pod: Pod) -> Pod {
    if let Some(status) = pod.status.as_mut() {
        status.phase = Some("Failed".into());
    }
    pod
}

fn template(image: &str) -> PodTemplateSpec {
    serde_json::from_value(json!({
        "metadata": {"labels": {"app": "web"}},
        "spec": {"containers": [{"name": "c", "image": image}]},
    }))
    .expect("template")
}

fn run(set: &StatefulSet, pods: Vec<Pod>) -> Plan {
    let pods: Vec<Arc<Pod>> = pods.into_iter().map(Arc::new).collect();
    let old = template("old");
    let new = set.spec.template.clone();
    decide::decide(
        set,
        &Inputs {
            pods: &pods,
            current: Revision {
                name: OLD,
                template: &old,
            },
            update: Revision {
                name: NEW,
                template: &new,
            },
            now: now(),
        },
    )
}

fn created(plan: &Plan) -> Vec<String> {
    plan.create
        .iter()
        .filter_map(|create| create.pod.metadata.name.clone())
        .collect()
}

fn deleted(plan: &Plan) -> Vec<String> {
    plan.delete.iter().filter_map(|pod| pod.metadata.name.clone()).collect()
}

#[test]
fn ordering_table() {
    // (name, set, pods, want created, want deleted)
    type Case = (
        &'static str,
        StatefulSet,
        Vec<Pod>,
        Vec<&'static str>,
        Vec<&'static str>,
    );
    let cases: Vec<Case> = vec![
        (
            "ordered: first pod only",
            set(3, false, rolling(0)),
            vec![],
            vec!["web-0"],
            vec![],
        ),
        (
            "ordered: waits for web-0 to be ready",
            set(3, false, rolling(0)),
            vec![member(0, NEW, false)],
            vec![],
            vec![],
        ),
        (
            "ordered: next once web-0 is ready",
            set(3, false, rolling(0)),
            vec![member(0, NEW, true)],
            vec!["web-1"],
            vec![],
        ),
        (
            "ordered: a missing lower ordinal comes first",
            set(3, false, rolling(0)),
            vec![member(1, NEW, true), member(2, NEW, true)],
            vec!["web-0"],
            vec![],
        ),
        (
            "parallel: all at once",
            set(3, true, rolling(0)),
            vec![],
            vec!["web-0", "web-1", "web-2"],
            vec![],
        ),
        (
            "parallel: does not wait for readiness",
            set(3, true, rolling(0)),
            vec![member(0, NEW, false)],
            vec!["web-1", "web-2"],
            vec![],
        ),
        (
            "ordered scale-down: highest ordinal, one at a time",
            set(1, false, rolling(0)),
            vec![member(0, NEW, true), member(1, NEW, true), member(2, NEW, true)],
            vec![],
            vec!["web-2"],
        ),
        (
            "ordered scale-down waits for a terminating pod",
            set(1, false, rolling(0)),
            vec![
                member(0, NEW, true),
                member(1, NEW, true),
                terminating(member(2, NEW, true)),
            ],
            vec![],
            vec![],
        ),
        (
            "ordered scale-down: the first unhealthy pod may go",
            set(1, false, rolling(0)),
            vec![member(0, NEW, true), member(1, NEW, true), member(2, NEW, false)],
            vec![],
            vec!["web-2"],
        ),
        (
            "ordered scale-down: a healthy top pod goes even if a lower condemned one is not",
            set(1, false, rolling(0)),
            vec![member(0, NEW, true), member(1, NEW, false), member(2, NEW, true)],
            vec![],
            vec!["web-2"],
        ),
        (
            "ordered scale-down waits for the replicas to be ready",
            set(2, false, rolling(0)),
            vec![member(0, NEW, true), member(1, NEW, false), member(2, NEW, true)],
            vec![],
            vec![],
        ),
        (
            "parallel scale-down: all condemned at once",
            set(1, true, rolling(0)),
            vec![member(0, NEW, true), member(1, NEW, true), member(2, NEW, false)],
            vec![],
            vec!["web-2", "web-1"],
        ),
        (
            "failed pod deleted first (recreated next sync)",
            set(2, false, rolling(0)),
            vec![failed(member(0, NEW, false)), member(1, NEW, true)],
            vec![],
            vec!["web-0"],
        ),
        (
            "other sets' pods and bad names are ignored",
            set(1, false, rolling(0)),
            vec![
                member(0, NEW, true),
                owned_by(pod("web-x", &[("app", "web")], 1), "StatefulSet", "web"),
                owned_by(pod("webby-1", &[("app", "web")], 1), "StatefulSet", "web"),
            ],
            vec![],
            vec![],
        ),
    ];
    for (name, set, pods, want_created, want_deleted) in cases {
        let plan = run(&set, pods);
        assert_eq!(created(&plan), want_created, "{name}: created");
        assert_eq!(deleted(&plan), want_deleted, "{name}: deleted");
    }
}

#[test]
fn rolling_update_table() {
    let all_old = || vec![member(0, OLD, true), member(1, OLD, true), member(2, OLD, true)];
    // (name, set, pods, want deleted)
    type Case = (&'static str, StatefulSet, Vec<Pod>, Vec<&'static str>);
    let cases: Vec<Case> = vec![
        (
            "highest ordinal first",
            set(3, false, rolling(0)),
            all_old(),
            vec!["web-2"],
        ),
        (
            "next once the updated pod is ready",
            set(3, false, rolling(0)),
            vec![member(0, OLD, true), member(1, OLD, true), member(2, NEW, true)],
            vec!["web-1"],
        ),
        (
            "waits while the updated pod is not ready",
            set(3, true, rolling(0)),
            vec![member(0, OLD, true), member(1, OLD, true), member(2, NEW, false)],
            vec![],
        ),
        (
            "partition 2: only ordinals >= 2",
            set(3, false, rolling(2)),
            vec![member(0, OLD, true), member(1, OLD, true), member(2, NEW, true)],
            vec![],
        ),
        (
            "partition 1",
            set(3, false, rolling(1)),
            vec![member(0, OLD, true), member(1, OLD, true), member(2, NEW, true)],
            vec!["web-1"],
        ),
        (
            "OnDelete never deletes",
            set(3, false, json!({"type": "OnDelete"})),
            all_old(),
            vec![],
        ),
    ];
    for (name, set, pods, want) in cases {
        let plan = run(&set, pods);
        assert!(plan.create.is_empty(), "{name}: create");
        assert_eq!(deleted(&plan), want, "{name}");
    }
}

#[test]
fn recreated_pods_below_the_partition_use_the_current_revision() {
    let plan = run(
        &set(3, false, rolling(2)),
        vec![member(1, OLD, true), member(2, NEW, true)],
    );
    let pod = &plan.create.first().expect("a creation").pod;
    let labels = pod.metadata.labels.clone().unwrap_or_default();
    assert_eq!(labels.get(decide::REVISION_LABEL).map(String::as_str), Some(OLD));
    let image = pod
        .spec
        .as_ref()
        .and_then(|spec| spec.containers.first()?.image.clone());
    assert_eq!(image.as_deref(), Some("old"));
    let plan = run(&set(3, false, rolling(0)), vec![]);
    let labels = plan.create[0].pod.metadata.labels.clone().unwrap_or_default();
    assert_eq!(labels.get(decide::REVISION_LABEL).map(String::as_str), Some(NEW));
}

#[test]
fn pod_identity_and_claims() {
    let set = set(3, false, rolling(0));
    let plan = run(&set, vec![member(0, NEW, true)]);
    let create = plan.create.first().expect("a creation");
    let pod = &create.pod;
    let spec = pod.spec.clone().expect("spec");
    assert_eq!(pod.metadata.name.as_deref(), Some("web-1"));
    assert_eq!(spec.hostname.as_deref(), Some("web-1"));
    assert_eq!(spec.subdomain.as_deref(), Some("web-svc"));
    let labels = pod.metadata.labels.clone().unwrap_or_default();
    assert_eq!(labels.get(decide::POD_NAME_LABEL).map(String::as_str), Some("web-1"));
    assert_eq!(labels.get(decide::POD_INDEX_LABEL).map(String::as_str), Some("1"));
    let owner = crate::util::controller_of(&pod.metadata).expect("controller");
    assert_eq!((owner.kind.as_str(), owner.uid.as_str()), ("StatefulSet", "uid-web"));
    let volume = spec
        .volumes
        .unwrap_or_default()
        .into_iter()
        .find(|v| v.name == "data")
        .expect("data volume");
    assert_eq!(
        volume.persistent_volume_claim.map(|c| c.claim_name).as_deref(),
        Some("data-web-1")
    );
    assert_eq!(create.claims.len(), 1);
    let claim = &create.claims[0];
    assert_eq!(claim.metadata.name.as_deref(), Some("data-web-1"));
    assert_eq!(
        claim
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get("app"))
            .map(String::as_str),
        Some("web")
    );
}

#[test]
fn missing_identity_labels_are_restored() {
    let mut pod = member(0, NEW, true);
    if let Some(labels) = pod.metadata.labels.as_mut() {
        labels.remove(decide::POD_INDEX_LABEL);
    }
    let plan = run(&set(1, false, rolling(0)), vec![pod]);
    assert_eq!(plan.relabel.len(), 1);
    assert_eq!(plan.relabel[0].1["metadata"]["labels"][decide::POD_INDEX_LABEL], "0");
}

#[test]
fn status_counts_and_completes_the_rollout() {
    let plan = run(
        &set(3, false, rolling(0)),
        vec![
            member(0, OLD, true),
            member(1, OLD, false),
            terminating(member(2, NEW, true)),
        ],
    );
    let status = plan.status.expect("status");
    assert_eq!(status.replicas, 3);
    assert_eq!(status.ready_replicas, Some(2));
    assert_eq!(status.available_replicas, Some(2));
    assert_eq!(status.current_replicas, Some(2));
    assert_eq!(status.updated_replicas, Some(0));
    assert_eq!(status.current_revision.as_deref(), Some(OLD));
    assert_eq!(status.update_revision.as_deref(), Some(NEW));
    assert_eq!(status.observed_generation, Some(3));

    let plan = run(
        &set(2, false, rolling(0)),
        vec![member(0, NEW, true), member(1, NEW, true)],
    );
    let status = plan.status.expect("status");
    assert_eq!(status.current_revision.as_deref(), Some(NEW));
    assert_eq!(status.current_replicas, Some(2));
    assert_eq!(status.updated_replicas, Some(2));
}

#[test]
fn names_parse_like_upstream() {
    assert_eq!(decide::parent_and_ordinal("web-12"), Some(("web", 12)));
    assert_eq!(decide::parent_and_ordinal("my-web-0"), Some(("my-web", 0)));
    assert_eq!(decide::parent_and_ordinal("web-"), None);
    assert_eq!(decide::parent_and_ordinal("web-1a"), None);
    assert_eq!(decide::parent_and_ordinal("web"), None);
    assert_eq!(decide::parent_and_ordinal("web-99999999999999999999"), None);
    assert_eq!(decide::claim_name("data", "web", 4), "data-web-4");
}
