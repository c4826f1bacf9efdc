//! NodeResourcesFit: the pod's requests (containers, init containers, overhead) must fit the
//! node's allocatable minus what its pods request, pods count included; scores with the
//! LeastAllocated strategy (cpu and memory, weight 1 each), upstream's default.

use super::prelude::*;
use crate::resources::Resource;

pub const NAME: &str = "NodeResourcesFit";

pub struct NodeResourcesFit;

impl Plugin for NodeResourcesFit {
    fn name(&self) -> &'static str {
        NAME
    }
    fn events_to_register(&self) -> &'static [ClusterEvent] {
        &[
            ClusterEvent::NodeAdd,
            ClusterEvent::NodeUpdate,
            ClusterEvent::AssignedPodDelete,
            ClusterEvent::AssignedPodUpdate,
        ]
    }
}

/// The reasons `requests` does not fit on `node` (upstream's `fitsRequest`), empty if it fits.
pub fn insufficient_resources(requests: &Resource, node: &NodeInfo) -> Vec<String> {
    let mut reasons = Vec::new();
    if node.pods.len() as i64 + 1 > node.allocatable.allowed_pods {
        reasons.push("Too many pods".to_string());
    }
    if requests.is_zero() {
        return reasons;
    }
    let (allocatable, requested) = (&node.allocatable, &node.requested);
    if requests.milli_cpu > 0 && requests.milli_cpu > allocatable.milli_cpu - requested.milli_cpu {
        reasons.push("Insufficient cpu".to_string());
    }
    if requests.memory > 0 && requests.memory > allocatable.memory - requested.memory {
        reasons.push("Insufficient memory".to_string());
    }
    if requests.ephemeral_storage > 0
        && requests.ephemeral_storage > allocatable.ephemeral_storage - requested.ephemeral_storage
    {
        reasons.push("Insufficient ephemeral-storage".to_string());
    }
    for (name, quantity) in &requests.scalar {
        if *quantity == 0 {
            continue;
        }
        let free =
            allocatable.scalar.get(name).copied().unwrap_or(0) - requested.scalar.get(name).copied().unwrap_or(0);
        if *quantity > free {
            reasons.push(format!("Insufficient {name}"));
        }
    }
    reasons
}

impl FilterPlugin for NodeResourcesFit {
    fn filter(&self, _state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status {
        let reasons = insufficient_resources(&pod.requests, node);
        if reasons.is_empty() {
            Status::success()
        } else {
            Status::with_reasons(Code::Unschedulable, reasons)
        }
    }
}

/// `(capacity − requested) × 100 / capacity`, 0 when over capacity or no capacity.
fn least_requested(requested: i64, capacity: i64) -> i64 {
    if capacity == 0 || requested > capacity {
        return 0;
    }
    (capacity - requested) * MAX_NODE_SCORE / capacity
}

impl ScorePlugin for NodeResourcesFit {
    fn score(&self, _state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Result<i64, Status> {
        let cpu = least_requested(
            node.non_zero_requested.milli_cpu + pod.non_zero_requests.milli_cpu,
            node.allocatable.milli_cpu,
        );
        let memory = least_requested(
            node.non_zero_requested.memory + pod.non_zero_requests.memory,
            node.allocatable.memory,
        );
        Ok((cpu + memory) / 2)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framework::types::testing::*;
    use serde_json::json;

    fn requesting(cpu: &str, memory: &str) -> serde_json::Value {
        json!({"spec": {"containers": [{"name": "c", "resources": {"requests": {"cpu": cpu, "memory": memory}}}]}})
    }

    #[test]
    fn filter_table() {
        let existing = pod("existing", requesting("3", "1Gi"));
        let two_pods = json!({"status": {"allocatable": {"pods": "1"}}});
        let cases = [
            ("fits", json!({}), requesting("1", "1Gi"), vec![]),
            ("cpu", json!({}), requesting("2", "1Gi"), vec!["Insufficient cpu"]),
            (
                "cpu and memory",
                json!({}),
                requesting("2", "8Gi"),
                vec!["Insufficient cpu", "Insufficient memory"],
            ),
            ("pods", two_pods, requesting("0", "0"), vec!["Too many pods"]),
            (
                "init container",
                json!({}),
                json!({"spec": {"initContainers": [{"name": "i", "resources": {"requests": {"cpu": "1500m"}}}]}}),
                vec!["Insufficient cpu"],
            ),
            (
                "overhead",
                json!({}),
                json!({"spec": {"overhead": {"cpu": "1001m"}}}),
                vec!["Insufficient cpu"],
            ),
            (
                "extended resource",
                json!({}),
                json!({"spec": {"containers": [{"name": "c", "resources": {"requests": {"example.com/gpu": "1"}}}]}}),
                vec!["Insufficient example.com/gpu"],
            ),
        ];
        for (name, node_extra, pod_extra, want) in cases {
            let node = node_info(node("n1", node_extra), vec![existing.clone()]);
            let status = NodeResourcesFit.filter(&CycleState::default(), &pod_info("p", pod_extra), &node);
            assert_eq!(status.reasons, want, "{name}");
            let code = if want.is_empty() {
                Code::Success
            } else {
                Code::Unschedulable
            };
            assert_eq!(status.code, code, "{name}");
        }
    }

    #[test]
    fn least_allocated_score() {
        // 4 CPUs, 8 GiB; existing 1 CPU / 2 GiB; pod 1 CPU / 2 GiB → (50 + 50) / 2.
        let half = node_info(node("n1", json!({})), vec![pod("e", requesting("1", "2Gi"))]);
        let score = NodeResourcesFit.score(&CycleState::default(), &pod_info("p", requesting("1", "2Gi")), &half);
        assert_eq!(score, Ok(50));
        // A pod without requests counts as 100m / 200 MiB: cpu (4000−100)·100/4000 = 97,
        // memory (8192−200)·100/8192 = 97.
        let empty = node_info(node("n2", json!({})), vec![]);
        assert_eq!(
            NodeResourcesFit.score(&CycleState::default(), &pod_info("p", json!({})), &empty),
            Ok(97)
        );
        let full = node_info(node("n3", json!({})), vec![pod("e", requesting("5", "9Gi"))]);
        assert_eq!(
            NodeResourcesFit.score(&CycleState::default(), &pod_info("p", json!({})), &full),
            Ok(0)
        );
    }
}
