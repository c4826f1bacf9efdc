//! InterPodAffinity's PreScore (scores per topology domain), Score and NormalizeScore.

use std::collections::HashMap;

use super::*;
use crate::framework::WeightedAffinityTerm;
use crate::framework::helpers::Labels;

/// topology key → value → score.
#[derive(Clone, Default)]
pub(super) struct PreScoreState {
    topology_score: HashMap<String, HashMap<String, i64>>,
}

impl PreScoreState {
    fn add(&mut self, node: &NodeInfo, key: &str, weight: i64) {
        if let Some(value) = node.labels().get(key) {
            *self
                .topology_score
                .entry(key.to_string())
                .or_default()
                .entry(value.clone())
                .or_default() += weight;
        }
    }

    /// Terms of `owner` that `other` matches add `sign × weight` to the node's domains.
    fn process_terms(
        &mut self,
        terms: &[WeightedAffinityTerm],
        other: &PodInfo,
        node: &NodeInfo,
        namespaces: &HashMap<String, Labels>,
        sign: i64,
    ) {
        for term in terms {
            if term.term.matches(other, namespaces) {
                self.add(node, &term.term.topology_key, sign * term.weight);
            }
        }
    }

    fn process_existing(
        &mut self,
        pod: &PodInfo,
        existing: &PodInfo,
        node: &NodeInfo,
        namespaces: &HashMap<String, Labels>,
    ) {
        // The incoming pod's preferences about the existing pod.
        self.process_terms(&pod.preferred_affinity, existing, node, namespaces, 1);
        self.process_terms(&pod.preferred_anti_affinity, existing, node, namespaces, -1);
        // The existing pod's rules about the incoming pod (symmetry).
        for term in &existing.required_affinity {
            if term.matches(pod, namespaces) {
                self.add(node, &term.topology_key, HARD_POD_AFFINITY_WEIGHT);
            }
        }
        self.process_terms(&existing.preferred_affinity, pod, node, namespaces, 1);
        self.process_terms(&existing.preferred_anti_affinity, pod, node, namespaces, -1);
    }
}

impl PreScorePlugin for InterPodAffinity {
    fn pre_score(&self, state: &mut CycleState, pod: &PodInfo, _: &[Arc<NodeInfo>], snapshot: &Snapshot) -> Status {
        let has_preferred = !pod.preferred_affinity.is_empty() || !pod.preferred_anti_affinity.is_empty();
        let mut scores = PreScoreState::default();
        let namespaces = &snapshot.namespaces;
        if has_preferred {
            for node in &snapshot.nodes {
                for existing in &node.pods {
                    scores.process_existing(pod, existing, node, namespaces);
                }
            }
        } else {
            for node in snapshot.nodes_with_pods_with_affinity() {
                for existing in node.pods.iter().filter(|p| p.has_affinity()) {
                    scores.process_existing(pod, existing, node, namespaces);
                }
            }
        }
        if scores.topology_score.is_empty() {
            return Status::skip();
        }
        state.write(scores);
        Status::success()
    }
}

impl ScorePlugin for InterPodAffinity {
    fn score(&self, state: &CycleState, _pod: &PodInfo, node: &NodeInfo) -> Result<i64, Status> {
        let scores = state
            .read::<PreScoreState>()
            .ok_or_else(|| Status::error("InterPodAffinity: no pre-score state"))?;
        let labels = node.labels();
        Ok(scores
            .topology_score
            .iter()
            .filter_map(|(key, values)| values.get(labels.get(key)?))
            .sum())
    }

    fn normalize(&self, _: &CycleState, _: &PodInfo, _: &[Arc<NodeInfo>], scores: &mut [i64]) -> Status {
        let max = scores.iter().copied().max().unwrap_or(0).max(0);
        let min = scores.iter().copied().min().unwrap_or(0).min(0);
        let spread = max - min;
        for score in scores.iter_mut() {
            *score = if spread > 0 {
                (MAX_NODE_SCORE as f64 * ((*score - min) as f64 / spread as f64)) as i64
            } else {
                0
            };
        }
        Status::success()
    }
}
