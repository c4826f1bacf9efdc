//! PodTopologySpread: spreads pods matching a selector evenly over topology domains
//! (`whenUnsatisfiable: DoNotSchedule` filters, `ScheduleAnyway` scores), with maxSkew,
//! minDomains, matchLabelKeys and the node inclusion policies.

mod filtering;
mod scoring;
#[cfg(test)]
mod tests;

use k8s_openapi::api::core::v1::Node;

use super::prelude::*;
use crate::framework::helpers::{
    Selector, node_taints, pod_matches_node_selector_and_affinity, pod_tolerations, tolerates,
};

pub const NAME: &str = "PodTopologySpread";
pub const ERR_REASON_CONSTRAINTS_NOT_MATCH: &str = "node(s) didn't match pod topology spread constraints";
pub const ERR_REASON_NODE_LABEL_NOT_MATCH: &str =
    "node(s) didn't match pod topology spread constraints (missing required label)";
const LABEL_HOSTNAME: &str = "kubernetes.io/hostname";

pub struct PodTopologySpread;

impl Plugin for PodTopologySpread {
    fn name(&self) -> &'static str {
        NAME
    }
    fn events_to_register(&self) -> &'static [ClusterEvent] {
        &[
            ClusterEvent::AssignedPodAdd,
            ClusterEvent::AssignedPodUpdate,
            ClusterEvent::AssignedPodDelete,
            ClusterEvent::NodeAdd,
            ClusterEvent::NodeUpdate,
            ClusterEvent::NodeDelete,
        ]
    }
}

/// One of the pod's topology spread constraints, compiled.
#[derive(Clone, Debug)]
struct Constraint {
    max_skew: i64,
    topology_key: String,
    selector: Selector,
    min_domains: usize,
    /// nodeAffinityPolicy Honor (default): only nodes matching the pod's node affinity count.
    honor_node_affinity: bool,
    /// nodeTaintsPolicy Honor (default Ignore): only nodes whose taints the pod tolerates count.
    honor_node_taints: bool,
}

impl Constraint {
    /// Whether pods on `node` count for this constraint.
    fn includes_node(&self, pod: &PodInfo, node: &Node) -> bool {
        if self.honor_node_affinity && !pod_matches_node_selector_and_affinity(&pod.pod, node) {
            return false;
        }
        if self.honor_node_taints {
            let tolerations = pod_tolerations(&pod.pod);
            let untolerated = node_taints(node)
                .iter()
                .any(|t| matches!(t.effect.as_str(), "NoSchedule" | "NoExecute") && !tolerates(tolerations, t));
            if untolerated {
                return false;
            }
        }
        true
    }

    /// Whether `other` counts as a matching pod for the incoming `pod`.
    fn counts(&self, pod: &PodInfo, other: &PodInfo) -> bool {
        other.namespace == pod.namespace && !other.is_terminating() && self.selector.matches(other.labels())
    }

    fn count_on(&self, pod: &PodInfo, node: &NodeInfo) -> i64 {
        node.pods.iter().filter(|p| self.counts(pod, p)).count() as i64
    }
}

/// The pod's constraints with `whenUnsatisfiable` = `when`.
fn constraints(pod: &PodInfo, when: &str) -> Vec<Constraint> {
    let spec_constraints = pod
        .pod
        .spec
        .as_ref()
        .and_then(|s| s.topology_spread_constraints.as_deref())
        .unwrap_or_default();
    spec_constraints
        .iter()
        .filter(|c| c.when_unsatisfiable == when)
        .map(|c| {
            let mut selector = Selector::from_label_selector(c.label_selector.as_ref());
            if c.label_selector.is_some() {
                for key in c.match_label_keys.iter().flatten() {
                    if let Some(value) = pod.labels().get(key) {
                        selector.add_equals(key, value);
                    }
                }
            }
            Constraint {
                max_skew: i64::from(c.max_skew),
                topology_key: c.topology_key.clone(),
                selector,
                min_domains: c.min_domains.unwrap_or(1).max(1) as usize,
                honor_node_affinity: c.node_affinity_policy.as_deref() != Some("Ignore"),
                honor_node_taints: c.node_taints_policy.as_deref() == Some("Honor"),
            }
        })
        .collect()
}

/// Whether the node has every constraint's topology key.
fn has_all_keys(node: &NodeInfo, constraints: &[Constraint]) -> bool {
    let labels = node.labels();
    constraints.iter().all(|c| labels.contains_key(&c.topology_key))
}
