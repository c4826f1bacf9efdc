//! TaintToleration: NoSchedule / NoExecute taints must be tolerated; untolerated
//! PreferNoSchedule taints lower the score.

use k8s_openapi::api::core::v1::Toleration;

use super::prelude::*;
use crate::framework::helpers::{find_untolerated_taint, node_taints, pod_tolerations, tolerates};

pub const NAME: &str = "TaintToleration";

pub struct TaintToleration;

impl Plugin for TaintToleration {
    fn name(&self) -> &'static str {
        NAME
    }
    fn events_to_register(&self) -> &'static [ClusterEvent] {
        &[ClusterEvent::NodeAdd, ClusterEvent::NodeUpdate]
    }
}

impl FilterPlugin for TaintToleration {
    fn filter(&self, _state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status {
        let taints = node_taints(&node.node);
        match find_untolerated_taint(taints, pod_tolerations(&pod.pod), &["NoSchedule", "NoExecute"]) {
            None => Status::success(),
            Some(taint) => Status::new(
                Code::UnschedulableAndUnresolvable,
                format!(
                    "node(s) had untolerated taint {{{}: {}}}",
                    taint.key,
                    taint.value.as_deref().unwrap_or_default()
                ),
            ),
        }
    }
}

/// The tolerations that count for PreferNoSchedule (effect empty or PreferNoSchedule).
#[derive(Clone)]
struct PreScoreState(Vec<Toleration>);

impl PreScorePlugin for TaintToleration {
    fn pre_score(&self, state: &mut CycleState, pod: &PodInfo, _: &[Arc<NodeInfo>], _: &Snapshot) -> Status {
        let tolerations = pod_tolerations(&pod.pod)
            .iter()
            .filter(|t| matches!(t.effect.as_deref().unwrap_or_default(), "" | "PreferNoSchedule"))
            .cloned()
            .collect();
        state.write(PreScoreState(tolerations));
        Status::success()
    }
}

impl ScorePlugin for TaintToleration {
    fn score(&self, state: &CycleState, _pod: &PodInfo, node: &NodeInfo) -> Result<i64, Status> {
        let tolerations = state
            .read::<PreScoreState>()
            .ok_or_else(|| Status::error("TaintToleration: no pre-score state"))?;
        let untolerated = node_taints(&node.node)
            .iter()
            .filter(|taint| taint.effect == "PreferNoSchedule" && !tolerates(&tolerations.0, taint))
            .count();
        Ok(untolerated as i64)
    }

    fn normalize(&self, _: &CycleState, _: &PodInfo, _: &[Arc<NodeInfo>], scores: &mut [i64]) -> Status {
        default_normalize(scores, true);
        Status::success()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framework::types::testing::*;
    use serde_json::json;

    fn tainted(key: &str, value: &str, effect: &str) -> serde_json::Value {
        json!({"spec": {"taints": [{"key": key, "value": value, "effect": effect}]}})
    }

    #[test]
    fn filter_table() {
        let tolerate_cp = json!({"spec": {"tolerations": [
            {"key": "node-role.kubernetes.io/control-plane", "operator": "Exists", "effect": "NoSchedule"}]}});
        let cases = [
            ("no taints", json!({}), json!({}), Ok(())),
            (
                "control plane",
                tainted("node-role.kubernetes.io/control-plane", "", "NoSchedule"),
                json!({}),
                Err("node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }"),
            ),
            (
                "tolerated",
                tainted("node-role.kubernetes.io/control-plane", "", "NoSchedule"),
                tolerate_cp,
                Ok(()),
            ),
            (
                "NoExecute",
                tainted("k", "v", "NoExecute"),
                json!({}),
                Err("node(s) had untolerated taint {k: v}"),
            ),
            (
                "PreferNoSchedule does not filter",
                tainted("k", "v", "PreferNoSchedule"),
                json!({}),
                Ok(()),
            ),
        ];
        for (name, node_extra, pod_extra, want) in cases {
            let node = node_info(node("n1", node_extra), vec![]);
            let status = TaintToleration.filter(&CycleState::default(), &pod_info("p", pod_extra), &node);
            match want {
                Ok(()) => assert!(status.is_success(), "{name}: {status:?}"),
                Err(reason) => {
                    assert_eq!(status.code, Code::UnschedulableAndUnresolvable, "{name}");
                    assert_eq!(status.reasons, vec![reason.to_string()], "{name}");
                }
            }
        }
    }

    #[test]
    fn score_prefers_fewer_untolerated_soft_taints() {
        let nodes = vec![
            node_info(node("clean", json!({})), vec![]),
            node_info(node("soft", tainted("k", "v", "PreferNoSchedule")), vec![]),
            node_info(node("tolerated", tainted("t", "v", "PreferNoSchedule")), vec![]),
        ];
        let pod = pod_info(
            "p",
            json!({"spec": {"tolerations": [{"key": "t", "operator": "Exists"}]}}),
        );
        let mut state = CycleState::default();
        TaintToleration.pre_score(&mut state, &pod, &nodes, &Snapshot::default());
        let mut scores: Vec<i64> = nodes
            .iter()
            .map(|n| TaintToleration.score(&state, &pod, n).expect("score"))
            .collect();
        assert_eq!(scores, vec![0, 1, 0]);
        TaintToleration.normalize(&state, &pod, &nodes, &mut scores);
        assert_eq!(scores, vec![100, 0, 100]);
    }
}
