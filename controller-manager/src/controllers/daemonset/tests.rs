//! Table tests of the daemonset controller's decision: which nodes need a pod, which pods
//! go, what a rolling update replaces, and the status.

use std::collections::HashSet;
use std::sync::Arc;

use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::{Node, Pod};
use serde_json::json;

use super::decide::{self, Inputs, Plan};
use super::fit;
use super::history::REVISION_HASH;
use crate::util::testing::{now, owned_by, pod, ready};

const NEW: &str = "new-hash";
const OLD: &str = "old-hash";

fn ds(max_unavailable: Option<serde_json::Value>, on_delete: bool) -> DaemonSet {
    let mut strategy = json!({"type": "RollingUpdate", "rollingUpdate": {}});
    if let Some(value) = max_unavailable {
        strategy["rollingUpdate"]["maxUnavailable"] = value;
    }
    if on_delete {
        strategy = json!({"type": "OnDelete"});
    }
    serde_json::from_value(json!({
        "metadata": {"name": "agent", "namespace": "ns", "uid": "uid-agent", "generation": 2},
        "spec": {
            "selector": {"matchLabels": {"app": "agent"}},
            "updateStrategy": strategy,
            "template": {
                "metadata": {"labels": {"app": "agent"}},
                "spec": {"containers": [{"name": "c", "image": "i"}], "nodeSelector": {"role": "worker"}},
            },
        },
    }))
    .expect("daemonset")
}

fn node(name: &str, role: &str, taint: Option<&str>) -> Arc<Node> {
    let taints = taint.map(|effect| json!([{"key": "dedicated", "effect": effect}]));
    Arc::new(
        serde_json::from_value(json!({
            "metadata": {"name": name, "labels": {"role": role}},
            "spec": {"taints": taints},
        }))
        .expect("node"),
    )
}

/// A daemon pod of `agent` for `node` with revision `hash`, created `age` seconds ago.
fn daemon(name: &str, node: &str, hash: &str, age: i64) -> Pod {
    let mut pod = owned_by(
        pod(name, &[("app", "agent"), (REVISION_HASH, hash)], age),
        "DaemonSet",
        "agent",
    );
    if let Some(spec) = pod.spec.as_mut() {
        spec.affinity = Some(fit::pin_to_node(None, node));
    }
    pod
}

/// Ready for a minute, and bound to the node it is pinned to.
fn available(pod: Pod) -> Pod {
    let node = pod.spec.as_ref().and_then(fit::target_node);
    let mut pod = ready(pod, 60);
    if let Some(spec) = pod.spec.as_mut() {
        spec.node_name = node;
    }
    pod
}

fn with_phase(mut pod: Pod, phase: &str) -> Pod {
    if let Some(status) = pod.status.as_mut() {
        status.phase = Some(phase.into());
    }
    pod
}

fn deleting(mut pod: Pod) -> Pod {
    pod.metadata.deletion_timestamp = Some(crate::util::testing::ago(1));
    pod
}

fn run(ds: &DaemonSet, nodes: &[Arc<Node>], pods: Vec<Pod>, backoff: &[&str]) -> Plan {
    let pods: Vec<Arc<Pod>> = pods.into_iter().map(Arc::new).collect();
    let backoff: HashSet<String> = backoff.iter().map(|node| node.to_string()).collect();
    decide::decide(
        ds,
        &Inputs {
            nodes,
            pods: &pods,
            hash: NEW,
            now: now(),
            expectations_met: true,
            backoff: &backoff,
        },
    )
}

fn names(pods: &[Arc<Pod>]) -> Vec<String> {
    let mut names: Vec<String> = pods.iter().filter_map(|pod| pod.metadata.name.clone()).collect();
    names.sort();
    names
}

#[test]
fn manage_table() {
    let workers = || {
        vec![
            node("n1", "worker", None),
            node("n2", "worker", None),
            node("n3", "edge", None),
            node("n4", "worker", Some("NoSchedule")),
        ]
    };
    // (name, nodes, pods, backoff, want create_on, want deleted, want adopted)
    type Case = (
        &'static str,
        Vec<Arc<Node>>,
        Vec<Pod>,
        Vec<&'static str>,
        Vec<&'static str>,
        Vec<&'static str>,
        Vec<&'static str>,
    );
    let cases: Vec<Case> = vec![
        (
            "fresh: every fitting node",
            workers(),
            vec![],
            vec![],
            vec!["n1", "n2"],
            vec![],
            vec![],
        ),
        (
            "existing pods kept, NoSchedule node keeps its pod",
            workers(),
            vec![daemon("a", "n1", NEW, 10), daemon("d", "n4", NEW, 10)],
            vec![],
            vec!["n2"],
            vec![],
            vec![],
        ),
        (
            "misscheduled pod on a node that stopped fitting",
            workers(),
            vec![
                daemon("a", "n1", NEW, 10),
                daemon("b", "n2", NEW, 10),
                daemon("c", "n3", NEW, 10),
            ],
            vec![],
            vec![],
            vec!["c"],
            vec![],
        ),
        (
            "NoExecute taint evicts",
            vec![node("n1", "worker", Some("NoExecute"))],
            vec![daemon("a", "n1", NEW, 10)],
            vec![],
            vec![],
            vec!["a"],
            vec![],
        ),
        (
            "duplicates: the oldest running pod stays",
            vec![node("n1", "worker", None)],
            vec![
                daemon("young", "n1", NEW, 5),
                available(daemon("old", "n1", NEW, 50)),
                daemon("older-pending", "n1", NEW, 90),
            ],
            vec![],
            vec![],
            vec!["older-pending", "young"],
            vec![],
        ),
        (
            "failed pod deleted (replacement comes next sync), succeeded too",
            vec![node("n1", "worker", None), node("n2", "worker", None)],
            vec![
                with_phase(daemon("f", "n1", NEW, 10), "Failed"),
                with_phase(daemon("s", "n2", NEW, 10), "Succeeded"),
            ],
            vec![],
            vec![],
            vec!["f", "s"],
            vec![],
        ),
        (
            "failed pod in back-off is left alone",
            vec![node("n1", "worker", None)],
            vec![with_phase(daemon("f", "n1", NEW, 10), "Failed")],
            vec!["n1"],
            vec![],
            vec![],
            vec![],
        ),
        (
            "terminating pod still counts as present",
            vec![node("n1", "worker", None)],
            vec![deleting(daemon("t", "n1", NEW, 10))],
            vec![],
            vec![],
            vec![],
            vec![],
        ),
        (
            "unscheduled pod for a deleted node goes",
            vec![node("n1", "worker", None)],
            vec![daemon("a", "n1", NEW, 10), daemon("gone", "n9", NEW, 10)],
            vec![],
            vec![],
            vec!["gone"],
            vec![],
        ),
        (
            "orphan matching the selector is adopted, other owners are not",
            vec![node("n1", "worker", None), node("n2", "worker", None)],
            vec![
                {
                    let mut orphan = daemon("orphan", "n1", NEW, 10);
                    orphan.metadata.owner_references = None;
                    orphan
                },
                owned_by(daemon("theirs", "n2", NEW, 10), "ReplicaSet", "other"),
            ],
            vec![],
            vec!["n2"],
            vec![],
            vec!["orphan"],
        ),
    ];
    for (name, nodes, pods, backoff, want_create, want_delete, want_adopt) in cases {
        let plan = run(&ds(None, false), &nodes, pods, &backoff);
        assert_eq!(plan.create_on, want_create, "{name}: create");
        assert_eq!(names(&plan.delete), want_delete, "{name}: delete");
        assert_eq!(names(&plan.adopt), want_adopt, "{name}: adopt");
    }
}

#[test]
fn failed_pods_advance_the_back_off_and_back_off_requeues() {
    let nodes = vec![node("n1", "worker", None)];
    let failed = || vec![with_phase(daemon("f", "n1", NEW, 10), "Failed")];
    let plan = run(&ds(None, false), &nodes, failed(), &[]);
    assert_eq!(plan.failed_on, vec!["n1".to_string()]);
    let plan = run(&ds(None, false), &nodes, failed(), &["n1"]);
    assert!(plan.failed_on.is_empty());
    assert!(plan.requeue_after.is_some());
}

#[test]
fn rolling_update_table() {
    let nodes: Vec<Arc<Node>> = (1..=4).map(|i| node(&format!("n{i}"), "worker", None)).collect();
    let all_old = || {
        (1..=4)
            .map(|i| available(daemon(&format!("p{i}"), &format!("n{i}"), OLD, 100)))
            .collect::<Vec<_>>()
    };
    // (name, maxUnavailable, on_delete, pods, want deleted)
    type Case = (
        &'static str,
        Option<serde_json::Value>,
        bool,
        Vec<Pod>,
        Vec<&'static str>,
    );
    let cases: Vec<Case> = vec![
        (
            "default maxUnavailable 1: one old pod at a time",
            None,
            false,
            all_old(),
            vec!["p1"],
        ),
        ("maxUnavailable 2", Some(json!(2)), false, all_old(), vec!["p1", "p2"]),
        (
            "maxUnavailable 50% of 4",
            Some(json!("50%")),
            false,
            all_old(),
            vec!["p1", "p2"],
        ),
        (
            "maxUnavailable 10% rounds up to 1",
            Some(json!("10%")),
            false,
            all_old(),
            vec!["p1"],
        ),
        ("OnDelete never deletes", Some(json!(4)), true, all_old(), vec![]),
        (
            "an unavailable new pod uses the budget",
            None,
            false,
            {
                let mut pods = all_old();
                pods[0] = daemon("p1-new", "n1", NEW, 1);
                pods
            },
            vec![],
        ),
        (
            "an available new pod frees the budget",
            None,
            false,
            {
                let mut pods = all_old();
                pods[0] = available(daemon("p1-new", "n1", NEW, 1));
                pods
            },
            vec!["p2"],
        ),
        (
            "unavailable old pods are replaced regardless of the budget",
            None,
            false,
            {
                let mut pods = all_old();
                pods[0] = daemon("p1-new", "n1", NEW, 1);
                pods[3] = daemon("p4", "n4", OLD, 100);
                pods
            },
            vec!["p4"],
        ),
        (
            "pods on the template generation count as updated",
            None,
            false,
            (1..=4)
                .map(|i| {
                    let mut pod = available(daemon(&format!("p{i}"), &format!("n{i}"), OLD, 100));
                    if let Some(labels) = pod.metadata.labels.as_mut() {
                        labels.insert(decide::TEMPLATE_GENERATION.into(), "2".into());
                    }
                    pod
                })
                .collect(),
            vec![],
        ),
    ];
    for (name, max_unavailable, on_delete, pods, want) in cases {
        let plan = run(&ds(max_unavailable, on_delete), &nodes, pods, &[]);
        assert!(plan.create_on.is_empty(), "{name}: create");
        assert_eq!(names(&plan.delete), want, "{name}");
    }
}

/// A rolling DaemonSet with `maxSurge` and maxUnavailable 0.
fn surge_ds(max_surge: serde_json::Value) -> DaemonSet {
    let mut ds = ds(Some(json!(0)), false);
    let rolling = ds
        .spec
        .update_strategy
        .as_mut()
        .and_then(|strategy| strategy.rolling_update.as_mut())
        .expect("rolling update");
    rolling.max_surge = Some(serde_json::from_value(max_surge).expect("maxSurge"));
    ds
}

#[test]
fn surge_update_table() {
    let nodes: Vec<Arc<Node>> = (1..=4).map(|i| node(&format!("n{i}"), "worker", None)).collect();
    let all_old = || {
        (1..=4)
            .map(|i| available(daemon(&format!("p{i}"), &format!("n{i}"), OLD, 100)))
            .collect::<Vec<_>>()
    };
    let with = |changes: Vec<(usize, Pod)>| {
        let mut pods = all_old();
        for (at, pod) in changes {
            if at < pods.len() {
                pods[at] = pod;
            } else {
                pods.push(pod);
            }
        }
        pods
    };
    // (name, maxSurge, pods, want created on, want deleted)
    type Case = (
        &'static str,
        serde_json::Value,
        Vec<Pod>,
        Vec<&'static str>,
        Vec<&'static str>,
    );
    let cases: Vec<Case> = vec![
        (
            "maxSurge 1: a new pod beside one old pod",
            json!(1),
            all_old(),
            vec!["n1"],
            vec![],
        ),
        ("maxSurge 2", json!(2), all_old(), vec!["n1", "n2"], vec![]),
        (
            "maxSurge 30% of 4 rounds up to 2",
            json!("30%"),
            all_old(),
            vec!["n1", "n2"],
            vec![],
        ),
        (
            "a new pod that is not available yet uses the budget; both pods stay",
            json!(1),
            with(vec![(4, daemon("p1-new", "n1", NEW, 1))]),
            vec![],
            vec![],
        ),
        (
            "an available new pod: its old pod goes",
            json!(1),
            with(vec![(4, available(daemon("p1-new", "n1", NEW, 1)))]),
            vec![],
            vec!["p1"],
        ),
        (
            "an old pod that is not ready goes at once beside an unavailable new one",
            json!(1),
            with(vec![
                (0, daemon("p1", "n1", OLD, 100)),
                (4, daemon("p1-new", "n1", NEW, 1)),
            ]),
            vec![],
            vec!["p1"],
        ),
        (
            "an unavailable old pod gets its new pod regardless of the budget",
            json!(1),
            with(vec![(2, daemon("p3", "n3", OLD, 100))]),
            vec!["n3", "n1"],
            vec![],
        ),
        (
            "two new pods on a node: the younger goes",
            json!(1),
            with(vec![
                (0, available(daemon("p1-new", "n1", NEW, 50))),
                (4, daemon("p1-newer", "n1", NEW, 1)),
            ]),
            vec![],
            vec!["p1-newer"],
        ),
    ];
    for (name, max_surge, pods, want_created, want_deleted) in cases {
        let plan = run(&surge_ds(max_surge), &nodes, pods, &[]);
        assert_eq!(plan.create_on, want_created, "{name}: created on");
        assert_eq!(names(&plan.delete), want_deleted, "{name}: deleted");
    }
}

#[test]
fn status_counts_like_upstream() {
    let nodes = vec![
        node("n1", "worker", None),
        node("n2", "worker", None),
        node("n3", "worker", None),
        node("n4", "edge", None),
    ];
    let pods = vec![
        available(daemon("a", "n1", NEW, 100)),
        daemon("b", "n2", OLD, 100),
        daemon("c", "n4", NEW, 100),
    ];
    let plan = run(&ds(None, false), &nodes, pods, &[]);
    let status = plan.status.expect("status changes");
    assert_eq!(status.desired_number_scheduled, 3);
    assert_eq!(status.current_number_scheduled, 2);
    assert_eq!(status.number_misscheduled, 1);
    assert_eq!(status.number_ready, 1);
    assert_eq!(status.number_available, Some(1));
    assert_eq!(status.number_unavailable, Some(2));
    assert_eq!(status.updated_number_scheduled, Some(1));
    assert_eq!(status.observed_generation, Some(2));
}

#[test]
fn unmet_expectations_only_update_status_without_observing_the_generation() {
    let ds = ds(None, false);
    let nodes = vec![node("n1", "worker", None)];
    let backoff = HashSet::new();
    let plan = decide::decide(
        &ds,
        &Inputs {
            nodes: &nodes,
            pods: &[],
            hash: NEW,
            now: now(),
            expectations_met: false,
            backoff: &backoff,
        },
    );
    assert!(plan.create_on.is_empty());
    let status = plan.status.expect("status");
    assert_eq!(status.desired_number_scheduled, 1);
    assert_eq!(status.observed_generation, None);
}

#[test]
fn deleting_daemonset_and_empty_selector_do_nothing() {
    let nodes = vec![node("n1", "worker", None)];
    let mut gone = ds(None, false);
    gone.metadata.deletion_timestamp = Some(crate::util::testing::ago(1));
    let plan = run(&gone, &nodes, vec![], &[]);
    assert!(plan.create_on.is_empty() && plan.status.is_none());
    let mut everything = ds(None, false);
    everything.spec.selector = Default::default();
    let mut orphan = pod("x", &[("app", "agent")], 1);
    orphan.metadata.owner_references = None;
    let plan = run(&everything, &nodes, vec![orphan], &[]);
    assert!(plan.adopt.is_empty());
}

#[test]
fn daemon_pod_is_pinned_labelled_tolerant_and_owned() {
    let ds = ds(None, false);
    let pod = decide::daemon_pod(&ds, "n7", NEW);
    let labels = pod.metadata.labels.clone().unwrap_or_default();
    assert_eq!(labels.get(REVISION_HASH).map(String::as_str), Some(NEW));
    assert_eq!(labels.get(decide::TEMPLATE_GENERATION).map(String::as_str), Some("2"));
    assert_eq!(labels.get("app").map(String::as_str), Some("agent"));
    assert_eq!(pod.metadata.generate_name.as_deref(), Some("agent-"));
    let owner = crate::util::controller_of(&pod.metadata).expect("controller");
    assert_eq!((owner.kind.as_str(), owner.uid.as_str()), ("DaemonSet", "uid-agent"));
    let spec = pod.spec.expect("spec");
    assert_eq!(fit::target_node(&spec).as_deref(), Some("n7"));
    assert_eq!(spec.tolerations.map(|t| t.len()), Some(6));
    assert_eq!(spec.node_name, None);
    assert_eq!(
        spec.node_selector.and_then(|s| s.get("role").cloned()).as_deref(),
        Some("worker")
    );
}
