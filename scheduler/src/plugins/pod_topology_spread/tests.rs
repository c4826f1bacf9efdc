//! Table tests for PodTopologySpread's Filter and Score.

use serde_json::{Value, json};

use super::*;
use crate::framework::types::testing::*;

fn web(name: &str) -> k8s_openapi::api::core::v1::Pod {
    pod(name, json!({"metadata": {"labels": {"app": "web"}}}))
}

/// n1, n2 in zone a (n1 with 2 web pods), n3 in zone b (1 web pod), n4 without a zone.
fn snapshot() -> Snapshot {
    let zone = |name: &str, zone: &str| node(name, json!({"metadata": {"labels": {"zone": zone}}}));
    Snapshot::from_nodes(vec![
        node_info(zone("n1", "a"), vec![web("w1"), web("w2")]),
        node_info(zone("n2", "a"), vec![]),
        node_info(zone("n3", "b"), vec![web("w3")]),
        node_info(node("n4", json!({})), vec![]),
    ])
}

fn spread(when: &str, key: &str, max_skew: i32, extra: Value) -> PodInfo {
    let mut constraint = json!({"maxSkew": max_skew, "topologyKey": key, "whenUnsatisfiable": when,
        "labelSelector": {"matchLabels": {"app": "web"}}});
    merge(&mut constraint, extra);
    pod_info(
        "p",
        json!({"metadata": {"labels": {"app": "web"}}, "spec": {"topologySpreadConstraints": [constraint]}}),
    )
}

fn filter(pod: &PodInfo, snapshot: &Snapshot) -> Vec<Option<&'static str>> {
    let mut state = CycleState::default();
    if PodTopologySpread.pre_filter(&mut state, pod, snapshot).code == Code::Skip {
        return vec![None; snapshot.nodes.len()];
    }
    snapshot
        .nodes
        .iter()
        .map(|node| {
            let status = PodTopologySpread.filter(&state, pod, node);
            match status.code {
                Code::Success => None,
                Code::Unschedulable => Some("skew"),
                Code::UnschedulableAndUnresolvable => Some("label"),
                _ => Some("error"),
            }
        })
        .collect()
}

#[test]
fn filter_table() {
    let cases = [
        ("no constraints", pod_info("p", json!({})), vec![None, None, None, None]),
        (
            "zone skew 1",
            spread("DoNotSchedule", "zone", 1, json!({})),
            vec![Some("skew"), Some("skew"), None, Some("label")],
        ),
        (
            "zone skew 2",
            spread("DoNotSchedule", "zone", 2, json!({})),
            vec![None, None, None, Some("label")],
        ),
        (
            "minDomains above the domain count makes the minimum 0",
            spread("DoNotSchedule", "zone", 1, json!({"minDomains": 3})),
            vec![Some("skew"), Some("skew"), Some("skew"), Some("label")],
        ),
        (
            "hostname skew 1",
            spread("DoNotSchedule", "kubernetes.io/hostname", 1, json!({})),
            vec![Some("skew"), None, Some("skew"), None],
        ),
        (
            "ScheduleAnyway does not filter",
            spread("ScheduleAnyway", "zone", 1, json!({})),
            vec![None, None, None, None],
        ),
        (
            "matchLabelKeys narrows the selector",
            {
                let mut p = spread("DoNotSchedule", "zone", 1, json!({"matchLabelKeys": ["version"]}));
                let mut pod = (*p.pod).clone();
                pod.metadata
                    .labels
                    .get_or_insert_default()
                    .insert("version".into(), "v2".into());
                p = PodInfo::new(Arc::new(pod));
                p
            },
            vec![None, None, None, Some("label")],
        ),
    ];
    let snapshot = snapshot();
    for (name, pod, want) in cases {
        assert_eq!(filter(&pod, &snapshot), want, "{name}");
    }
}

#[test]
fn node_affinity_policy_excludes_nodes() {
    // Only zone-a nodes count (the pod selects zone a): zone a alone is the only domain.
    let pod = {
        let p = spread("DoNotSchedule", "zone", 1, json!({}));
        let mut pod = (*p.pod).clone();
        pod.spec.get_or_insert_default().node_selector = Some([("zone".to_string(), "a".to_string())].into());
        PodInfo::new(Arc::new(pod))
    };
    let snapshot = snapshot();
    let mut state = CycleState::default();
    assert!(PodTopologySpread.pre_filter(&mut state, &pod, &snapshot).is_success());
    // Domain a has 2 pods and is the minimum itself: 2 + 1 − 2 = 1 ≤ 1.
    assert!(PodTopologySpread.filter(&state, &pod, &snapshot.nodes[0]).is_success());
}

#[test]
fn score_table() {
    let snapshot = snapshot();
    let pod = spread("ScheduleAnyway", "zone", 1, json!({}));
    let mut state = CycleState::default();
    assert!(
        PodTopologySpread
            .pre_score(&mut state, &pod, &snapshot.nodes, &snapshot)
            .is_success()
    );
    let mut scores: Vec<i64> = snapshot
        .nodes
        .iter()
        .map(|n| PodTopologySpread.score(&state, &pod, n).expect("score"))
        .collect();
    // ln(4) = 1.386: zone a has 2 pods → 3, zone b 1 pod → 1, n4 is ignored.
    assert_eq!(scores, vec![3, 3, 1, 0]);
    PodTopologySpread.normalize(&state, &pod, &snapshot.nodes, &mut scores);
    assert_eq!(scores, vec![33, 33, 100, 0]);
    let mut state = CycleState::default();
    let no_constraints = pod_info("p", json!({}));
    assert_eq!(
        PodTopologySpread
            .pre_score(&mut state, &no_constraints, &snapshot.nodes, &snapshot)
            .code,
        Code::Skip
    );
}
