//! NodeResourcesBalancedAllocation: prefers nodes whose cpu and memory would be used in equal
//! fractions after placing the pod (score = (1 − standard deviation) × 100).

use super::prelude::*;

pub const NAME: &str = "NodeResourcesBalancedAllocation";

pub struct BalancedAllocation;

impl Plugin for BalancedAllocation {
    fn name(&self) -> &'static str {
        NAME
    }
}

impl PreScorePlugin for BalancedAllocation {
    fn pre_score(&self, _state: &mut CycleState, pod: &PodInfo, _: &[Arc<NodeInfo>], _: &Snapshot) -> Status {
        // Best-effort pods are not scored, so that they do not all pile onto one node.
        if pod.requests.milli_cpu == 0 && pod.requests.memory == 0 {
            Status::skip()
        } else {
            Status::success()
        }
    }
}

/// The score for requested/allocatable pairs, as upstream's `balancedResourceScorer`.
pub fn balanced_score(pairs: &[(i64, i64)]) -> i64 {
    let fractions: Vec<f64> = pairs
        .iter()
        .filter(|(_, allocatable)| *allocatable != 0)
        .map(|(requested, allocatable)| (*requested as f64 / *allocatable as f64).min(1.0))
        .collect();
    let std = match fractions.len() {
        0 | 1 => 0.0,
        2 => ((fractions[0] - fractions[1]) / 2.0).abs(),
        n => {
            let mean = fractions.iter().sum::<f64>() / n as f64;
            (fractions.iter().map(|f| (f - mean) * (f - mean)).sum::<f64>() / n as f64).sqrt()
        }
    };
    ((1.0 - std) * MAX_NODE_SCORE as f64) as i64
}

impl ScorePlugin for BalancedAllocation {
    fn score(&self, _state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Result<i64, Status> {
        Ok(balanced_score(&[
            (
                node.requested.milli_cpu + pod.requests.milli_cpu,
                node.allocatable.milli_cpu,
            ),
            (node.requested.memory + pod.requests.memory, node.allocatable.memory),
        ]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framework::types::testing::*;
    use serde_json::json;

    #[test]
    fn score_table() {
        let requesting = |cpu: &str, memory: &str| json!({"spec": {"containers": [{"name": "c", "resources": {"requests": {"cpu": cpu, "memory": memory}}}]}});
        // Node: 4 CPUs, 8 GiB.
        let cases = [
            ("balanced", requesting("2", "4Gi"), 100),
            ("cpu heavy", requesting("4", "0"), 50),
            ("quarter off", requesting("3", "2Gi"), 75),
        ];
        let node = node_info(node("n1", json!({})), vec![]);
        for (name, extra, want) in cases {
            let score = BalancedAllocation.score(&CycleState::default(), &pod_info("p", extra), &node);
            assert_eq!(score, Ok(want), "{name}");
        }
        let mut state = CycleState::default();
        let best_effort = pod_info("p", json!({}));
        assert_eq!(
            BalancedAllocation
                .pre_score(&mut state, &best_effort, &[], &Snapshot::default())
                .code,
            Code::Skip
        );
        assert_eq!(balanced_score(&[(1, 2), (1, 4), (1, 8)]), 84);
    }
}
