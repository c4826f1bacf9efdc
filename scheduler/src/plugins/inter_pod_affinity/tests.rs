//! Table tests for InterPodAffinity's Filter and Score.

use serde_json::{Value, json};

use super::*;
use crate::framework::types::testing::*;

fn term(app: &str, topology: &str) -> Value {
    json!({"labelSelector": {"matchLabels": {"app": app}}, "topologyKey": topology})
}

fn snapshot() -> Snapshot {
    let zone = |name: &str, zone: &str| node(name, json!({"metadata": {"labels": {"zone": zone}}}));
    let db = pod("db", json!({"metadata": {"labels": {"app": "db"}}}));
    let web = pod(
        "web",
        json!({"metadata": {"labels": {"app": "web"}}, "spec": {"affinity": {"podAntiAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": [term("web", "kubernetes.io/hostname")]}}}}),
    );
    Snapshot::from_nodes(vec![
        node_info(zone("n1", "a"), vec![db]),
        node_info(zone("n2", "a"), vec![]),
        node_info(zone("n3", "b"), vec![web]),
        node_info(node("n4", json!({})), vec![]),
    ])
}

/// Runs PreFilter and Filter on every node: `None` = fits, else the reason.
fn filter(pod: &PodInfo, snapshot: &Snapshot) -> Vec<Option<String>> {
    let mut state = CycleState::default();
    let status = InterPodAffinity.pre_filter(&mut state, pod, snapshot);
    if status.code == Code::Skip {
        return vec![None; snapshot.nodes.len()];
    }
    snapshot
        .nodes
        .iter()
        .map(|node| {
            let status = InterPodAffinity.filter(&state, pod, node);
            (!status.is_success()).then(|| status.message())
        })
        .collect()
}

#[test]
fn filter_table() {
    let a = || None;
    let aff = || Some(ERR_REASON_AFFINITY.to_string());
    let anti = || Some(ERR_REASON_ANTI_AFFINITY.to_string());
    let existing = || Some(ERR_REASON_EXISTING_ANTI_AFFINITY.to_string());
    let cases = [
        ("no affinity", json!({}), vec![a(), a(), a(), a()]),
        (
            "affinity to db by zone",
            json!({"spec": {"affinity": {"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [term("db", "zone")]}}}}),
            vec![a(), a(), aff(), aff()],
        ),
        (
            "anti-affinity to web by hostname",
            json!({"metadata": {"labels": {"app": "web"}}, "spec": {"affinity": {"podAntiAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": [term("web", "kubernetes.io/hostname")]}}}}),
            vec![a(), a(), anti(), a()],
        ),
        (
            "anti-affinity to db by zone",
            json!({"spec": {"affinity": {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [term("db", "zone")]}}}}),
            vec![anti(), anti(), a(), a()],
        ),
        (
            "symmetric: existing web repels web",
            json!({"metadata": {"labels": {"app": "web"}}}),
            vec![a(), a(), existing(), a()],
        ),
        (
            "first pod of a group matches itself",
            json!({"metadata": {"labels": {"app": "cache"}}, "spec": {"affinity": {"podAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": [term("cache", "zone")]}}}}),
            vec![a(), a(), a(), aff()],
        ),
        (
            "affinity to a pod of another namespace",
            json!({"spec": {"affinity": {"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
                {"labelSelector": {"matchLabels": {"app": "db"}}, "topologyKey": "zone", "namespaces": ["other"]}]}}}}),
            vec![aff(), aff(), aff(), aff()],
        ),
        (
            "affinity with an empty namespace selector matches all namespaces",
            json!({"metadata": {"namespace": "other"}, "spec": {"affinity": {"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
                {"labelSelector": {"matchLabels": {"app": "db"}}, "topologyKey": "zone", "namespaceSelector": {}}]}}}}),
            vec![a(), a(), aff(), aff()],
        ),
    ];
    let snapshot = snapshot();
    for (name, extra, want) in cases {
        assert_eq!(filter(&pod_info("p", extra), &snapshot), want, "{name}");
    }
}

#[test]
fn preemption_simulation_removes_counts() {
    let snapshot = snapshot();
    let pod = pod_info("p", json!({"metadata": {"labels": {"app": "web"}}}));
    let mut state = CycleState::default();
    assert!(InterPodAffinity.pre_filter(&mut state, &pod, &snapshot).is_success());
    let n3 = &snapshot.nodes[2];
    assert!(!InterPodAffinity.filter(&state, &pod, n3).is_success());
    InterPodAffinity.remove_pod(&mut state, &pod, &n3.pods[0], n3, &snapshot);
    assert!(InterPodAffinity.filter(&state, &pod, n3).is_success());
    InterPodAffinity.add_pod(&mut state, &pod, &n3.pods[0], n3, &snapshot);
    assert!(!InterPodAffinity.filter(&state, &pod, n3).is_success());
}

fn scores(pod: &PodInfo, snapshot: &Snapshot) -> Vec<i64> {
    let mut state = CycleState::default();
    if InterPodAffinity
        .pre_score(&mut state, pod, &snapshot.nodes, snapshot)
        .code
        == Code::Skip
    {
        return vec![0; snapshot.nodes.len()];
    }
    let mut scores: Vec<i64> = snapshot
        .nodes
        .iter()
        .map(|n| InterPodAffinity.score(&state, pod, n).expect("score"))
        .collect();
    InterPodAffinity.normalize(&state, pod, &snapshot.nodes, &mut scores);
    scores
}

#[test]
fn score_table() {
    let preferred = |kind: &str, app: &str| {
        json!({"spec": {"affinity": {kind: {"preferredDuringSchedulingIgnoredDuringExecution": [
            {"weight": 10, "podAffinityTerm": term(app, "zone")}]}}}})
    };
    let cases = [
        ("no preferences", json!({}), vec![0, 0, 0, 0]),
        ("prefer near db", preferred("podAffinity", "db"), vec![100, 100, 0, 0]),
        (
            "prefer away from db",
            preferred("podAntiAffinity", "db"),
            vec![0, 0, 100, 100],
        ),
    ];
    let snapshot = snapshot();
    for (name, extra, want) in cases {
        assert_eq!(scores(&pod_info("p", extra), &snapshot), want, "{name}");
    }
}

#[test]
fn score_symmetry_of_existing_required_affinity() {
    let follower = pod(
        "follower",
        json!({"spec": {"affinity": {"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [term("leader", "zone")]}}}}),
    );
    let snapshot = Snapshot::from_nodes(vec![
        node_info(
            node("n1", json!({"metadata": {"labels": {"zone": "a"}}})),
            vec![follower],
        ),
        node_info(node("n2", json!({"metadata": {"labels": {"zone": "b"}}})), vec![]),
    ]);
    let leader = pod_info("leader", json!({"metadata": {"labels": {"app": "leader"}}}));
    assert_eq!(scores(&leader, &snapshot), vec![100, 0]);
}
