//! NodeAffinity (with NodeSelector): `spec.nodeSelector` and required node affinity must
//! match; preferred terms add their weight to the score.

use super::prelude::*;
use crate::framework::helpers::{node_matches_term, pod_matches_node_selector_and_affinity};

pub const NAME: &str = "NodeAffinity";
pub const ERR_REASON_POD: &str = "node(s) didn't match Pod's node affinity/selector";

pub struct NodeAffinity;

impl Plugin for NodeAffinity {
    fn name(&self) -> &'static str {
        NAME
    }
    fn events_to_register(&self) -> &'static [ClusterEvent] {
        &[ClusterEvent::NodeAdd, ClusterEvent::NodeUpdate]
    }
}

fn node_affinity(pod: &PodInfo) -> Option<&k8s_openapi::api::core::v1::NodeAffinity> {
    pod.pod.spec.as_ref()?.affinity.as_ref()?.node_affinity.as_ref()
}

impl PreFilterPlugin for NodeAffinity {
    fn pre_filter(&self, _state: &mut CycleState, pod: &PodInfo, _snapshot: &Snapshot) -> Status {
        let has_selector = pod
            .pod
            .spec
            .as_ref()
            .is_some_and(|s| s.node_selector.as_ref().is_some_and(|m| !m.is_empty()));
        let has_required =
            node_affinity(pod).is_some_and(|a| a.required_during_scheduling_ignored_during_execution.is_some());
        if has_selector || has_required {
            Status::success()
        } else {
            Status::skip()
        }
    }
}

impl FilterPlugin for NodeAffinity {
    fn filter(&self, _state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status {
        if pod_matches_node_selector_and_affinity(&pod.pod, &node.node) {
            Status::success()
        } else {
            Status::new(Code::UnschedulableAndUnresolvable, ERR_REASON_POD)
        }
    }
}

impl PreScorePlugin for NodeAffinity {
    fn pre_score(&self, _state: &mut CycleState, pod: &PodInfo, _: &[Arc<NodeInfo>], _: &Snapshot) -> Status {
        let preferred = node_affinity(pod)
            .and_then(|a| a.preferred_during_scheduling_ignored_during_execution.as_ref())
            .is_some_and(|terms| !terms.is_empty());
        if preferred { Status::success() } else { Status::skip() }
    }
}

impl ScorePlugin for NodeAffinity {
    fn score(&self, _state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Result<i64, Status> {
        let terms = node_affinity(pod)
            .and_then(|a| a.preferred_during_scheduling_ignored_during_execution.as_deref())
            .unwrap_or_default();
        Ok(terms
            .iter()
            .filter(|t| t.weight != 0 && node_matches_term(&node.node, &t.preference))
            .map(|t| i64::from(t.weight))
            .sum())
    }

    fn normalize(&self, _: &CycleState, _: &PodInfo, _: &[Arc<NodeInfo>], scores: &mut [i64]) -> Status {
        default_normalize(scores, false);
        Status::success()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framework::types::testing::*;
    use serde_json::json;

    #[test]
    fn filter_table() {
        let required = |expr: serde_json::Value| {
            json!({"spec": {"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution":
                {"nodeSelectorTerms": [{"matchExpressions": [expr]}]}}}}})
        };
        let cases = [
            ("nothing required", json!({}), true),
            (
                "nodeSelector match",
                json!({"spec": {"nodeSelector": {"zone": "a"}}}),
                true,
            ),
            (
                "nodeSelector mismatch",
                json!({"spec": {"nodeSelector": {"zone": "b"}}}),
                false,
            ),
            (
                "In",
                required(json!({"key": "zone", "operator": "In", "values": ["a"]})),
                true,
            ),
            (
                "NotIn",
                required(json!({"key": "zone", "operator": "NotIn", "values": ["a"]})),
                false,
            ),
            (
                "Gt",
                required(json!({"key": "cpus", "operator": "Gt", "values": ["8"]})),
                true,
            ),
            (
                "Lt",
                required(json!({"key": "cpus", "operator": "Lt", "values": ["8"]})),
                false,
            ),
            ("Exists", required(json!({"key": "gpu", "operator": "Exists"})), false),
            (
                "matchFields",
                json!({"spec": {"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution":
                    {"nodeSelectorTerms": [{"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n1"]}]}]}}}}}),
                true,
            ),
            (
                "terms are ORed",
                json!({"spec": {"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution":
                    {"nodeSelectorTerms": [
                        {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["x"]}]},
                        {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]}]}}}}}),
                true,
            ),
            (
                "selector and affinity both apply",
                json!({"spec": {"nodeSelector": {"zone": "b"}, "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution":
                    {"nodeSelectorTerms": [{"matchExpressions": [{"key": "zone", "operator": "Exists"}]}]}}}}}),
                false,
            ),
        ];
        let node = node_info(
            node("n1", json!({"metadata": {"labels": {"zone": "a", "cpus": "16"}}})),
            vec![],
        );
        for (name, extra, fits) in cases {
            let status = NodeAffinity.filter(&CycleState::default(), &pod_info("p", extra), &node);
            assert_eq!(status.is_success(), fits, "{name}");
            if !fits {
                assert_eq!(status.reasons, vec![ERR_REASON_POD.to_string()], "{name}");
                assert_eq!(status.code, Code::UnschedulableAndUnresolvable, "{name}");
            }
        }
    }

    #[test]
    fn score_preferred_terms() {
        let pod = pod_info(
            "p",
            json!({"spec": {"affinity": {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
                {"weight": 10, "preference": {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]}},
                {"weight": 30, "preference": {"matchExpressions": [{"key": "disk", "operator": "In", "values": ["ssd"]}]}},
            ]}}}}),
        );
        let nodes = vec![
            node_info(node("a", json!({"metadata": {"labels": {"zone": "a"}}})), vec![]),
            node_info(node("ssd", json!({"metadata": {"labels": {"disk": "ssd"}}})), vec![]),
            node_info(
                node("both", json!({"metadata": {"labels": {"zone": "a", "disk": "ssd"}}})),
                vec![],
            ),
            node_info(node("none", json!({})), vec![]),
        ];
        let state = CycleState::default();
        let mut scores: Vec<i64> = nodes
            .iter()
            .map(|n| NodeAffinity.score(&state, &pod, n).expect("score"))
            .collect();
        assert_eq!(scores, vec![10, 30, 40, 0]);
        NodeAffinity.normalize(&state, &pod, &nodes, &mut scores);
        assert_eq!(scores, vec![25, 75, 100, 0]);
    }
}
