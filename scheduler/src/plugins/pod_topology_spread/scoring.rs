//! PodTopologySpread's scoring of `ScheduleAnyway` constraints: fewer matching pods in the
//! node's domains is better, each constraint weighted by ln(number of domains + 2).

use std::collections::{HashMap, HashSet};

use super::*;

#[derive(Clone, Debug)]
pub(super) struct PreScoreState {
    constraints: Vec<Constraint>,
    /// Feasible nodes lacking a topology key: scored 0.
    ignored: HashSet<String>,
    /// Per constraint (not hostname): domain value → matching pods.
    counts: Vec<HashMap<String, i64>>,
    weights: Vec<f64>,
}

impl PreScorePlugin for PodTopologySpread {
    fn pre_score(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        feasible: &[Arc<NodeInfo>],
        snapshot: &Snapshot,
    ) -> Status {
        let constraints = constraints(pod, "ScheduleAnyway");
        if constraints.is_empty() || snapshot.nodes.is_empty() {
            return Status::skip();
        }
        let mut ignored = HashSet::new();
        let mut counts = vec![HashMap::new(); constraints.len()];
        for node in feasible {
            if !has_all_keys(node, &constraints) {
                ignored.insert(node.name.clone());
                continue;
            }
            for (index, constraint) in constraints.iter().enumerate() {
                if constraint.topology_key != LABEL_HOSTNAME {
                    counts[index]
                        .entry(node.labels()[&constraint.topology_key].clone())
                        .or_insert(0);
                }
            }
        }
        let weights = constraints
            .iter()
            .enumerate()
            .map(|(index, c)| {
                let size = if c.topology_key == LABEL_HOSTNAME {
                    feasible.len() - ignored.len()
                } else {
                    counts[index].len()
                };
                ((size + 2) as f64).ln()
            })
            .collect();
        for node in &snapshot.nodes {
            if !has_all_keys(node, &constraints) {
                continue;
            }
            for (index, constraint) in constraints.iter().enumerate() {
                if !constraint.includes_node(pod, &node.node) {
                    continue;
                }
                let value = &node.labels()[&constraint.topology_key];
                if let Some(count) = counts[index].get_mut(value) {
                    *count += constraint.count_on(pod, node);
                }
            }
        }
        state.write(PreScoreState {
            constraints,
            ignored,
            counts,
            weights,
        });
        Status::success()
    }
}

impl ScorePlugin for PodTopologySpread {
    fn score(&self, state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Result<i64, Status> {
        let s = state
            .read::<PreScoreState>()
            .ok_or_else(|| Status::error("PodTopologySpread: no pre-score state"))?;
        if s.ignored.contains(&node.name) {
            return Ok(0);
        }
        let labels = node.labels();
        let mut score = 0.0;
        for (index, constraint) in s.constraints.iter().enumerate() {
            let Some(value) = labels.get(&constraint.topology_key) else {
                continue;
            };
            let count = if constraint.topology_key == LABEL_HOSTNAME {
                constraint.count_on(pod, node)
            } else {
                s.counts[index].get(value).copied().unwrap_or(0)
            };
            score += count as f64 * s.weights[index] + (constraint.max_skew - 1) as f64;
        }
        Ok(score.round() as i64)
    }

    fn normalize(&self, state: &CycleState, _: &PodInfo, nodes: &[Arc<NodeInfo>], scores: &mut [i64]) -> Status {
        let Some(s) = state.read::<PreScoreState>() else {
            return Status::error("PodTopologySpread: no pre-score state");
        };
        let counted = || {
            nodes
                .iter()
                .zip(scores.iter())
                .filter(|(n, _)| !s.ignored.contains(&n.name))
                .map(|(_, s)| *s)
        };
        let min = counted().min().unwrap_or(0);
        let max = counted().max().unwrap_or(0);
        for (node, score) in nodes.iter().zip(scores.iter_mut()) {
            *score = if s.ignored.contains(&node.name) {
                0
            } else if max == 0 {
                MAX_NODE_SCORE
            } else {
                MAX_NODE_SCORE * (max + min - *score) / max
            };
        }
        Status::success()
    }
}
