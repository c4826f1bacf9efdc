//! PodTopologySpread's PreFilter (matching pods per domain) and Filter (the skew check).

use std::collections::HashMap;

use super::*;

#[derive(Clone, Debug)]
pub(super) struct PreFilterState {
    constraints: Vec<Constraint>,
    /// Per constraint: domain value → matching pods (every eligible domain is present).
    domains: Vec<HashMap<String, i64>>,
}

impl PreFilterState {
    fn min_match(&self, index: usize) -> i64 {
        let domains = &self.domains[index];
        if domains.len() < self.constraints[index].min_domains {
            return 0;
        }
        domains.values().copied().min().unwrap_or(0)
    }

    fn update(&mut self, pod: &PodInfo, other: &PodInfo, node: &NodeInfo, by: i64) {
        if !has_all_keys(node, &self.constraints) {
            return;
        }
        for (index, constraint) in self.constraints.iter().enumerate() {
            if !constraint.includes_node(pod, &node.node) || !constraint.counts(pod, other) {
                continue;
            }
            if let Some(value) = node.labels().get(&constraint.topology_key) {
                *self.domains[index].entry(value.clone()).or_default() += by;
            }
        }
    }
}

impl PreFilterPlugin for PodTopologySpread {
    fn pre_filter(&self, state: &mut CycleState, pod: &PodInfo, snapshot: &Snapshot) -> Status {
        let constraints = constraints(pod, "DoNotSchedule");
        if constraints.is_empty() {
            return Status::skip();
        }
        let mut domains = vec![HashMap::new(); constraints.len()];
        for node in &snapshot.nodes {
            if !has_all_keys(node, &constraints) {
                continue;
            }
            for (index, constraint) in constraints.iter().enumerate() {
                if !constraint.includes_node(pod, &node.node) {
                    continue;
                }
                let value = node.labels()[&constraint.topology_key].clone();
                *domains[index].entry(value).or_default() += constraint.count_on(pod, node);
            }
        }
        state.write(PreFilterState { constraints, domains });
        Status::success()
    }

    fn add_pod(&self, state: &mut CycleState, pod: &PodInfo, added: &PodInfo, node: &NodeInfo, _: &Snapshot) {
        if let Some(s) = state.read_mut::<PreFilterState>() {
            s.update(pod, added, node, 1);
        }
    }

    fn remove_pod(&self, state: &mut CycleState, pod: &PodInfo, removed: &PodInfo, node: &NodeInfo, _: &Snapshot) {
        if let Some(s) = state.read_mut::<PreFilterState>() {
            s.update(pod, removed, node, -1);
        }
    }
}

impl FilterPlugin for PodTopologySpread {
    fn filter(&self, state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status {
        let Some(s) = state.read::<PreFilterState>() else {
            return Status::error("PodTopologySpread: no pre-filter state");
        };
        let labels = node.labels();
        for (index, constraint) in s.constraints.iter().enumerate() {
            let Some(value) = labels.get(&constraint.topology_key) else {
                return Status::new(Code::UnschedulableAndUnresolvable, ERR_REASON_NODE_LABEL_NOT_MATCH);
            };
            let self_match = i64::from(constraint.selector.matches(pod.labels()));
            let matching = s.domains[index].get(value).copied().unwrap_or(0);
            if matching + self_match - s.min_match(index) > constraint.max_skew {
                return Status::new(Code::Unschedulable, ERR_REASON_CONSTRAINTS_NOT_MATCH);
            }
        }
        Status::success()
    }
}
