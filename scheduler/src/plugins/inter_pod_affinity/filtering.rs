//! InterPodAffinity's PreFilter (counts per topology pair) and Filter.

use std::collections::HashMap;

use super::*;
use crate::framework::helpers::Labels;

/// (topology key, value) → number of matching pods in that domain.
type TopologyCounts = HashMap<(String, String), i64>;

#[derive(Clone, Default)]
pub(super) struct PreFilterState {
    /// Domains where an existing pod's required anti-affinity term matches the incoming pod.
    existing_anti_affinity: TopologyCounts,
    /// Domains with pods matching all of the incoming pod's required affinity terms.
    affinity: TopologyCounts,
    /// Domains with pods matching one of the incoming pod's required anti-affinity terms.
    anti_affinity: TopologyCounts,
}

fn bump(counts: &mut TopologyCounts, node: &NodeInfo, key: &str, by: i64) {
    if let Some(value) = node.labels().get(key) {
        let entry = counts.entry((key.to_string(), value.clone())).or_default();
        *entry += by;
        if *entry == 0 {
            counts.remove(&(key.to_string(), value.clone()));
        }
    }
}

impl PreFilterState {
    /// Counts the required anti-affinity terms of `existing` (on `node`) that match `pod`.
    fn count_existing_anti_affinity(
        &mut self,
        pod: &PodInfo,
        existing: &PodInfo,
        node: &NodeInfo,
        namespaces: &HashMap<String, Labels>,
        by: i64,
    ) {
        for term in &existing.required_anti_affinity {
            if term.matches(pod, namespaces) {
                bump(&mut self.existing_anti_affinity, node, &term.topology_key, by);
            }
        }
    }

    /// Counts `existing` (on `node`) against the incoming pod's required terms.
    fn count_incoming(
        &mut self,
        pod: &PodInfo,
        existing: &PodInfo,
        node: &NodeInfo,
        namespaces: &HashMap<String, Labels>,
        by: i64,
    ) {
        if !pod.required_affinity.is_empty() && pod.required_affinity.iter().all(|t| t.matches(existing, namespaces)) {
            for term in &pod.required_affinity {
                bump(&mut self.affinity, node, &term.topology_key, by);
            }
        }
        for term in &pod.required_anti_affinity {
            if term.matches(existing, namespaces) {
                bump(&mut self.anti_affinity, node, &term.topology_key, by);
            }
        }
    }

    /// Accounts `existing` on `node` for the incoming `pod`, `by` = +1 or −1.
    fn update(
        &mut self,
        pod: &PodInfo,
        existing: &PodInfo,
        node: &NodeInfo,
        namespaces: &HashMap<String, Labels>,
        by: i64,
    ) {
        self.count_existing_anti_affinity(pod, existing, node, namespaces, by);
        self.count_incoming(pod, existing, node, namespaces, by);
    }
}

impl PreFilterPlugin for InterPodAffinity {
    fn pre_filter(&self, state: &mut CycleState, pod: &PodInfo, snapshot: &Snapshot) -> Status {
        let mut counts = PreFilterState::default();
        let namespaces = &snapshot.namespaces;
        for node in snapshot.nodes_with_required_anti_affinity() {
            for existing in node.pods.iter().filter(|p| !p.required_anti_affinity.is_empty()) {
                counts.count_existing_anti_affinity(pod, existing, node, namespaces, 1);
            }
        }
        let has_required = !pod.required_affinity.is_empty() || !pod.required_anti_affinity.is_empty();
        if !has_required && counts.existing_anti_affinity.is_empty() {
            return Status::skip();
        }
        if has_required {
            for node in &snapshot.nodes {
                for existing in &node.pods {
                    counts.count_incoming(pod, existing, node, namespaces, 1);
                }
            }
        }
        state.write(counts);
        state.write(NamespaceLabels(namespaces.clone()));
        Status::success()
    }

    fn add_pod(&self, state: &mut CycleState, pod: &PodInfo, added: &PodInfo, node: &NodeInfo, snapshot: &Snapshot) {
        if let Some(counts) = state.read_mut::<PreFilterState>() {
            counts.update(pod, added, node, &snapshot.namespaces, 1);
        }
    }

    fn remove_pod(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        removed: &PodInfo,
        node: &NodeInfo,
        snapshot: &Snapshot,
    ) {
        if let Some(counts) = state.read_mut::<PreFilterState>() {
            counts.update(pod, removed, node, &snapshot.namespaces, -1);
        }
    }
}

fn count_at(counts: &TopologyCounts, key: &str, value: &str) -> i64 {
    counts.get(&(key.to_string(), value.to_string())).copied().unwrap_or(0)
}

/// Every required affinity term has a matching pod in the node's domain (or no pod anywhere
/// matches and the pod matches its own terms: the first pod of a group may go anywhere).
fn satisfies_affinity(
    state: &PreFilterState,
    pod: &PodInfo,
    node: &NodeInfo,
    namespaces: &HashMap<String, Labels>,
) -> bool {
    let mut pods_exist = true;
    for term in &pod.required_affinity {
        match node.labels().get(&term.topology_key) {
            Some(value) => {
                if count_at(&state.affinity, &term.topology_key, value) <= 0 {
                    pods_exist = false;
                }
            }
            None => return false,
        }
    }
    if pods_exist {
        return true;
    }
    state.affinity.is_empty() && pod.required_affinity.iter().all(|t| t.matches(pod, namespaces))
}

fn satisfies_anti_affinity(state: &PreFilterState, pod: &PodInfo, node: &NodeInfo) -> bool {
    !pod.required_anti_affinity.iter().any(|term| {
        node.labels()
            .get(&term.topology_key)
            .is_some_and(|value| count_at(&state.anti_affinity, &term.topology_key, value) > 0)
    })
}

fn satisfies_existing_anti_affinity(state: &PreFilterState, node: &NodeInfo) -> bool {
    let labels = node.labels();
    !state
        .existing_anti_affinity
        .iter()
        .any(|((key, value), count)| *count > 0 && labels.get(key) == Some(value))
}

impl FilterPlugin for InterPodAffinity {
    fn filter(&self, state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status {
        let Some(counts) = state.read::<PreFilterState>() else {
            return Status::error("InterPodAffinity: no pre-filter state");
        };
        let namespaces = state.read::<NamespaceLabels>().map(|n| n.0.as_ref());
        static EMPTY: std::sync::LazyLock<HashMap<String, Labels>> = std::sync::LazyLock::new(HashMap::new);
        if !satisfies_affinity(counts, pod, node, namespaces.unwrap_or(&EMPTY)) {
            return Status::new(Code::UnschedulableAndUnresolvable, ERR_REASON_AFFINITY);
        }
        if !satisfies_anti_affinity(counts, pod, node) {
            return Status::new(Code::Unschedulable, ERR_REASON_ANTI_AFFINITY);
        }
        if !satisfies_existing_anti_affinity(counts, node) {
            return Status::new(Code::Unschedulable, ERR_REASON_EXISTING_ANTI_AFFINITY);
        }
        Status::success()
    }
}

/// The snapshot's namespace labels, kept in the cycle state for Filter.
#[derive(Clone)]
pub(super) struct NamespaceLabels(pub(super) std::sync::Arc<HashMap<String, Labels>>);
