//! NodeUnschedulable: cordoned nodes (`spec.unschedulable`) take only pods that tolerate the
//! `node.kubernetes.io/unschedulable:NoSchedule` taint.

use k8s_openapi::api::core::v1::Taint;

use super::prelude::*;
use crate::framework::helpers::{pod_tolerations, tolerates};

pub const NAME: &str = "NodeUnschedulable";
pub const ERR_REASON: &str = "node(s) were unschedulable";
pub const TAINT_UNSCHEDULABLE: &str = "node.kubernetes.io/unschedulable";

pub struct NodeUnschedulable;

impl Plugin for NodeUnschedulable {
    fn name(&self) -> &'static str {
        NAME
    }
    fn events_to_register(&self) -> &'static [ClusterEvent] {
        &[ClusterEvent::NodeAdd, ClusterEvent::NodeUpdate]
    }
}

impl FilterPlugin for NodeUnschedulable {
    fn filter(&self, _state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status {
        let unschedulable = node.node.spec.as_ref().and_then(|s| s.unschedulable).unwrap_or(false);
        if !unschedulable {
            return Status::success();
        }
        let taint = Taint {
            key: TAINT_UNSCHEDULABLE.into(),
            effect: "NoSchedule".into(),
            ..Taint::default()
        };
        if tolerates(pod_tolerations(&pod.pod), &taint) {
            Status::success()
        } else {
            Status::new(Code::UnschedulableAndUnresolvable, ERR_REASON)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framework::types::testing::*;
    use serde_json::json;

    #[test]
    fn filter_table() {
        let tolerate = json!({"spec": {"tolerations": [
            {"key": TAINT_UNSCHEDULABLE, "operator": "Exists", "effect": "NoSchedule"}]}});
        let cases = [
            ("schedulable node", json!({}), json!({}), Code::Success),
            (
                "cordoned",
                json!({"spec": {"unschedulable": true}}),
                json!({}),
                Code::UnschedulableAndUnresolvable,
            ),
            (
                "cordoned, tolerated",
                json!({"spec": {"unschedulable": true}}),
                tolerate,
                Code::Success,
            ),
        ];
        for (name, node_extra, pod_extra, want) in cases {
            let node = node_info(node("n1", node_extra), vec![]);
            let status = NodeUnschedulable.filter(&CycleState::default(), &pod_info("p", pod_extra), &node);
            assert_eq!(status.code, want, "{name}");
        }
    }
}
