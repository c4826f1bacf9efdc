//! The default profile end to end over snapshots: which node wins, and why pods fail.

use serde_json::json;

use super::*;
use crate::framework::types::testing::*;
use crate::framework::{CycleState, ScheduleResult, Snapshot};

fn schedule(pod: serde_json::Value, snapshot: &Snapshot) -> Result<String, String> {
    let framework = framework(default_plugins(None, true));
    match framework.schedule(&mut CycleState::default(), &pod_info("p", pod), snapshot) {
        ScheduleResult::Scheduled { node, .. } => Ok(node),
        ScheduleResult::Unschedulable { diagnosis, .. } => Err(diagnosis.message()),
        ScheduleResult::Error(message) => Err(format!("error: {message}")),
    }
}

fn requesting(cpu: &str) -> serde_json::Value {
    json!({"spec": {"containers": [{"name": "c", "image": "nginx", "resources": {"requests": {"cpu": cpu, "memory": "1Gi"}}}]}})
}

#[test]
fn weights_are_upstreams() {
    let framework = framework(default_plugins(None, false));
    let weights: Vec<(&str, i64)> = framework.score.iter().map(|(p, w)| (p.name(), *w)).collect();
    assert_eq!(
        weights,
        [
            ("TaintToleration", 3),
            ("NodeAffinity", 2),
            ("NodeResourcesFit", 1),
            ("PodTopologySpread", 2),
            ("InterPodAffinity", 2),
            ("NodeResourcesBalancedAllocation", 1),
            ("ImageLocality", 1),
        ]
    );
    assert!(framework.post_filter.is_empty());
}

#[test]
fn prefers_the_least_allocated_node() {
    let snapshot = Snapshot::from_nodes(vec![
        node_info(node("busy", json!({})), vec![pod("e", requesting("3"))]),
        node_info(node("idle", json!({})), vec![]),
    ]);
    for _ in 0..20 {
        assert_eq!(schedule(requesting("500m"), &snapshot), Ok("idle".to_string()));
    }
}

#[test]
fn preferred_node_affinity_outweighs_allocation() {
    let snapshot = Snapshot::from_nodes(vec![
        node_info(
            node("busy-ssd", json!({"metadata": {"labels": {"disk": "ssd"}}})),
            vec![pod("e", requesting("2"))],
        ),
        node_info(node("idle", json!({})), vec![]),
    ]);
    let mut pod = requesting("500m");
    merge(
        &mut pod,
        json!({"spec": {"affinity": {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
            {"weight": 50, "preference": {"matchExpressions": [{"key": "disk", "operator": "In", "values": ["ssd"]}]}}]}}}}),
    );
    assert_eq!(schedule(pod, &snapshot), Ok("busy-ssd".to_string()));
}

#[test]
fn failure_message_counts_every_node() {
    let taint = json!({"spec": {"taints": [{"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}]}});
    let snapshot = Snapshot::from_nodes(vec![
        node_info(node("cp", taint), vec![]),
        node_info(node("n1", json!({})), vec![]),
        node_info(node("n2", json!({})), vec![]),
    ]);
    assert_eq!(
        schedule(requesting("5"), &snapshot),
        Err(
            "0/3 nodes are available: 1 node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }, \
             2 Insufficient cpu. preemption: 0/3 nodes are available: 1 Preemption is not helpful for scheduling, \
             2 No preemption victims found for incoming pod."
                .to_string()
        )
    );
    assert_eq!(
        schedule(json!({"spec": {"nodeSelector": {"zone": "x"}}}), &snapshot),
        Err(
            "0/3 nodes are available: 1 node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }, \
             2 node(s) didn't match Pod's node affinity/selector. preemption: 0/3 nodes are available: \
             3 Preemption is not helpful for scheduling."
                .to_string()
        )
    );
    assert_eq!(
        schedule(json!({}), &Snapshot::default()),
        Err("no nodes available to schedule pods".to_string())
    );
}
