//! NodeName: a pod that names a node fits only that node.

use super::prelude::*;

pub const NAME: &str = "NodeName";
pub const ERR_REASON: &str = "node(s) didn't match the requested node name";

pub struct NodeName;

impl Plugin for NodeName {
    fn name(&self) -> &'static str {
        NAME
    }
    fn events_to_register(&self) -> &'static [ClusterEvent] {
        &[ClusterEvent::NodeAdd]
    }
}

impl FilterPlugin for NodeName {
    fn filter(&self, _state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status {
        match pod.node_name() {
            Some(wanted) if wanted != node.name => Status::new(Code::UnschedulableAndUnresolvable, ERR_REASON),
            _ => Status::success(),
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
        let cases = [
            ("no node name", json!({}), Code::Success),
            ("matching", json!({"spec": {"nodeName": "n1"}}), Code::Success),
            (
                "other",
                json!({"spec": {"nodeName": "n2"}}),
                Code::UnschedulableAndUnresolvable,
            ),
        ];
        let node = node_info(node("n1", json!({})), vec![]);
        for (name, extra, want) in cases {
            let status = NodeName.filter(&CycleState::default(), &pod_info("p", extra), &node);
            assert_eq!(status.code, want, "{name}");
        }
    }
}
