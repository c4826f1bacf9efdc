//! The framework runtime: runs the plugins of each extension point in order and implements the
//! scheduling algorithm of one cycle (filter a share of the nodes, score the feasible ones,
//! pick the best with a random tie-break), and the "0/3 nodes are available: ..." diagnosis.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use k8s_openapi::api::core::v1::Pod;
use rand::Rng;

use super::{
    BindPlugin, ClusterEvent, Code, CycleState, FilterPlugin, NodeInfo, PodInfo, PostFilterPlugin, PostFilterResult,
    PreFilterPlugin, PreScorePlugin, ReservePlugin, ScorePlugin, Snapshot, Status,
};

/// Upstream's `minFeasibleNodesToFind`.
const MIN_FEASIBLE_NODES_TO_FIND: usize = 100;
/// Upstream's `minFeasibleNodesPercentageToFind`.
const MIN_FEASIBLE_NODES_PERCENTAGE_TO_FIND: usize = 5;
/// The message when the cluster has no nodes (upstream's `ErrNoNodesAvailable`).
pub const NO_NODES_AVAILABLE: &str = "no nodes available to schedule pods";

/// Why a pod did not fit: per-node statuses and the PreFilter / PostFilter messages.
#[derive(Clone, Debug, Default)]
pub struct Diagnosis {
    pub num_all_nodes: usize,
    /// Rejected nodes and the status of the plugin that rejected each.
    pub node_statuses: Vec<(String, Status)>,
    /// The status every node not in `node_statuses` gets (a PreFilter rejection).
    pub absent_nodes_status: Option<Status>,
    pub pre_filter_msg: Option<String>,
    pub post_filter_msg: Option<String>,
    /// The plugins that rejected the pod: events they registered move it back to the queue.
    pub unschedulable_plugins: BTreeSet<&'static str>,
}

impl Diagnosis {
    /// The status of `node` (explicit, or the absent-nodes status).
    pub fn status_of(&self, node: &str) -> Option<&Status> {
        self.node_statuses
            .iter()
            .find(|(name, _)| name == node)
            .map(|(_, status)| status)
            .or(self.absent_nodes_status.as_ref())
    }

    /// Upstream's `FitError.Error()`: reasons counted over nodes, sorted as strings.
    pub fn message(&self) -> String {
        if self.num_all_nodes == 0 && self.pre_filter_msg.is_none() && self.node_statuses.is_empty() {
            return NO_NODES_AVAILABLE.to_string();
        }
        let mut message = format!("0/{} nodes are available:", self.num_all_nodes);
        if let Some(pre_filter) = &self.pre_filter_msg {
            message.push_str(&format!(" {pre_filter}."));
        } else {
            let histogram = reason_histogram(self);
            if !histogram.is_empty() {
                message.push_str(&format!(" {}.", histogram.join(", ")));
            }
        }
        if let Some(post_filter) = &self.post_filter_msg {
            message.push_str(&format!(" {post_filter}."));
        }
        message
    }
}

/// "N reason" strings for every reason over all nodes, sorted as strings (as upstream).
pub fn reason_histogram(diagnosis: &Diagnosis) -> Vec<String> {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for (_, status) in &diagnosis.node_statuses {
        for reason in &status.reasons {
            *counts.entry(reason).or_default() += 1;
        }
    }
    let absent = diagnosis.num_all_nodes.saturating_sub(diagnosis.node_statuses.len());
    if absent > 0
        && let Some(status) = &diagnosis.absent_nodes_status
    {
        for reason in &status.reasons {
            *counts.entry(reason).or_default() += absent;
        }
    }
    let mut reasons: Vec<String> = counts.into_iter().map(|(reason, n)| format!("{n} {reason}")).collect();
    reasons.sort();
    reasons
}

/// The outcome of one scheduling attempt.
#[derive(Debug)]
pub enum ScheduleResult {
    Scheduled {
        node: String,
        evaluated: usize,
        feasible: usize,
    },
    /// No node fits; `nominated` is set when preemption made room.
    Unschedulable {
        diagnosis: Diagnosis,
        nominated: Option<PostFilterResult>,
    },
    /// A plugin failed: retry with back-off.
    Error(String),
}

/// The plugins of one profile, per extension point, in order.
#[derive(Default)]
pub struct Framework {
    pub pre_filter: Vec<Arc<dyn PreFilterPlugin>>,
    pub filter: Vec<Arc<dyn FilterPlugin>>,
    pub post_filter: Vec<Arc<dyn PostFilterPlugin>>,
    pub pre_score: Vec<Arc<dyn PreScorePlugin>>,
    pub score: Vec<(Arc<dyn ScorePlugin>, i64)>,
    pub reserve: Vec<Arc<dyn ReservePlugin>>,
    pub bind: Vec<Arc<dyn BindPlugin>>,
    /// Plugin name → the cluster events that may make pods it rejected schedulable.
    pub events: HashMap<&'static str, Vec<ClusterEvent>>,
    /// 0 = adaptive (upstream's default), otherwise a percentage of nodes to find feasible.
    pub percentage_of_nodes_to_score: usize,
    next_start_node: AtomicUsize,
}

/// How many feasible nodes to look for before scoring (upstream's `numFeasibleNodesToFind`).
pub fn num_feasible_nodes_to_find(percentage: usize, all: usize) -> usize {
    if all < MIN_FEASIBLE_NODES_TO_FIND || percentage >= 100 {
        return all;
    }
    let percentage = if percentage == 0 {
        (50usize.saturating_sub(all / 125)).max(MIN_FEASIBLE_NODES_PERCENTAGE_TO_FIND)
    } else {
        percentage
    };
    (all * percentage / 100).max(MIN_FEASIBLE_NODES_TO_FIND)
}

impl Framework {
    /// Runs every PreFilter; `Err` carries a rejection or error status.
    pub fn run_pre_filter(&self, state: &mut CycleState, pod: &PodInfo, snapshot: &Snapshot) -> Result<(), Status> {
        for plugin in &self.pre_filter {
            let mut status = plugin.pre_filter(state, pod, snapshot);
            match status.code {
                Code::Success => {}
                Code::Skip => {
                    state.skip_filter.insert(plugin.name());
                }
                _ => {
                    status.plugin = plugin.name();
                    return Err(status);
                }
            }
        }
        Ok(())
    }

    /// Runs the filters on one node, stopping at the first rejection.
    pub fn run_filters(&self, state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status {
        for plugin in &self.filter {
            if state.skip_filter.contains(plugin.name()) {
                continue;
            }
            let mut status = plugin.filter(state, pod, node);
            if !status.is_success() {
                status.plugin = plugin.name();
                return status;
            }
        }
        Status::success()
    }

    /// PreFilter extensions: the state as if `added` ran on `node`.
    pub fn run_add_pod(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        added: &PodInfo,
        node: &NodeInfo,
        snapshot: &Snapshot,
    ) {
        for plugin in &self.pre_filter {
            if !state.skip_filter.contains(plugin.name()) {
                plugin.add_pod(state, pod, added, node, snapshot);
            }
        }
    }

    /// PreFilter extensions: the state as if `removed` no longer ran on `node`.
    pub fn run_remove_pod(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        removed: &PodInfo,
        node: &NodeInfo,
        snapshot: &Snapshot,
    ) {
        for plugin in &self.pre_filter {
            if !state.skip_filter.contains(plugin.name()) {
                plugin.remove_pod(state, pod, removed, node, snapshot);
            }
        }
    }

    /// One scheduling attempt of `pod` against `snapshot`.
    pub fn schedule(&self, state: &mut CycleState, pod: &PodInfo, snapshot: &Snapshot) -> ScheduleResult {
        let all = snapshot.nodes.len();
        let mut diagnosis = Diagnosis {
            num_all_nodes: all,
            ..Diagnosis::default()
        };
        if all == 0 {
            return ScheduleResult::Unschedulable {
                diagnosis,
                nominated: None,
            };
        }
        let feasible = match self.run_pre_filter(state, pod, snapshot) {
            Ok(()) => self.find_feasible(state, pod, snapshot, &mut diagnosis),
            Err(status) if status.code == Code::Error => return ScheduleResult::Error(status.message()),
            Err(status) => {
                diagnosis.pre_filter_msg = Some(status.message());
                diagnosis.unschedulable_plugins.insert(status.plugin);
                diagnosis.absent_nodes_status = Some(status);
                Vec::new()
            }
        };
        if let Some((_, status)) = diagnosis.node_statuses.iter().find(|(_, s)| s.code == Code::Error) {
            return ScheduleResult::Error(status.message());
        }
        if feasible.is_empty() {
            let mut nominated = None;
            for plugin in &self.post_filter {
                let (result, status) = plugin.post_filter(self, state, pod, snapshot, &diagnosis);
                if !status.reasons.is_empty() {
                    diagnosis.post_filter_msg = Some(status.message());
                }
                if status.is_success() {
                    nominated = result;
                    break;
                }
            }
            return ScheduleResult::Unschedulable { diagnosis, nominated };
        }
        let evaluated = diagnosis.node_statuses.len() + feasible.len();
        if feasible.len() == 1 {
            return ScheduleResult::Scheduled {
                node: feasible[0].name.clone(),
                evaluated,
                feasible: 1,
            };
        }
        let totals = match self.prioritize(state, pod, &feasible, snapshot) {
            Ok(totals) => totals,
            Err(status) => return ScheduleResult::Error(status.message()),
        };
        let index = select_host(&totals, &mut rand::rng());
        ScheduleResult::Scheduled {
            node: feasible[index].name.clone(),
            evaluated,
            feasible: feasible.len(),
        }
    }

    fn find_feasible(
        &self,
        state: &CycleState,
        pod: &PodInfo,
        snapshot: &Snapshot,
        diagnosis: &mut Diagnosis,
    ) -> Vec<Arc<NodeInfo>> {
        let all = snapshot.nodes.len();
        let wanted = num_feasible_nodes_to_find(self.percentage_of_nodes_to_score, all);
        let start = self.next_start_node.load(Ordering::Relaxed) % all;
        let mut feasible = Vec::with_capacity(wanted.min(all));
        let mut processed = 0;
        for offset in 0..all {
            if feasible.len() >= wanted {
                break;
            }
            processed += 1;
            let node = &snapshot.nodes[(start + offset) % all];
            let status = self.run_filters(state, pod, node);
            if status.is_success() {
                feasible.push(node.clone());
            } else {
                diagnosis.unschedulable_plugins.insert(status.plugin);
                diagnosis.node_statuses.push((node.name.clone(), status));
            }
        }
        self.next_start_node.store((start + processed) % all, Ordering::Relaxed);
        feasible
    }

    /// PreScore, Score, NormalizeScore and weights: the total score of each feasible node.
    pub fn prioritize(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        feasible: &[Arc<NodeInfo>],
        snapshot: &Snapshot,
    ) -> Result<Vec<i64>, Status> {
        for plugin in &self.pre_score {
            let status = plugin.pre_score(state, pod, feasible, snapshot);
            match status.code {
                Code::Success => {}
                Code::Skip => {
                    state.skip_score.insert(plugin.name());
                }
                _ => return Err(status),
            }
        }
        let mut totals = vec![0i64; feasible.len()];
        let mut scores = vec![0i64; feasible.len()];
        for (plugin, weight) in &self.score {
            if state.skip_score.contains(plugin.name()) {
                continue;
            }
            for (score, node) in scores.iter_mut().zip(feasible) {
                *score = plugin.score(state, pod, node)?;
            }
            let status = plugin.normalize(state, pod, feasible, &mut scores);
            if !status.is_success() {
                return Err(status);
            }
            for (total, score) in totals.iter_mut().zip(&scores) {
                *total += score * weight;
            }
        }
        Ok(totals)
    }

    /// Reserve on every plugin; on a failure, the ones that reserved are unreserved.
    pub fn run_reserve(&self, state: &mut CycleState, pod: &PodInfo, node: &str) -> Status {
        for (index, plugin) in self.reserve.iter().enumerate() {
            let mut status = plugin.reserve(state, pod, node);
            if !status.is_success() {
                for reserved in self.reserve[..index].iter().rev() {
                    reserved.unreserve(state, pod, node);
                }
                status.plugin = plugin.name();
                return status;
            }
        }
        Status::success()
    }

    /// Unreserve on every plugin, in reverse order.
    pub fn run_unreserve(&self, state: &mut CycleState, pod: &PodInfo, node: &str) {
        for plugin in self.reserve.iter().rev() {
            plugin.unreserve(state, pod, node);
        }
    }

    /// The first bind plugin that does not skip binds the pod.
    pub async fn run_bind(&self, pod: Arc<Pod>, node: String) -> Status {
        for plugin in &self.bind {
            let status = plugin.bind(pod.clone(), node.clone()).await;
            if status.code != Code::Skip {
                return status;
            }
        }
        Status::error("no bind plugin bound the pod")
    }
}

/// The index of a highest total, chosen uniformly among ties (reservoir sampling).
pub fn select_host(totals: &[i64], rng: &mut impl Rng) -> usize {
    let mut best = 0;
    let mut ties = 0u32;
    for (index, total) in totals.iter().enumerate() {
        if *total > totals[best] {
            best = index;
            ties = 1;
        } else if *total == totals[best] {
            ties += 1;
            if rng.random_range(0..ties) == 0 {
                best = index;
            }
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn feasible_nodes_to_find() {
        let cases = [
            (0, 50, 50),
            (0, 100, 100),
            (0, 1000, 420),
            (0, 5000, 500),
            (0, 6000, 300),
            (10, 1000, 100),
            (100, 1000, 1000),
        ];
        for (percentage, all, want) in cases {
            assert_eq!(
                num_feasible_nodes_to_find(percentage, all),
                want,
                "{percentage}% of {all}"
            );
        }
    }

    #[test]
    fn fit_error_message_like_upstream() {
        let status = |code, reason: &str| Status::new(code, reason);
        let diagnosis = Diagnosis {
            num_all_nodes: 3,
            node_statuses: vec![
                (
                    "cp".into(),
                    status(
                        Code::UnschedulableAndUnresolvable,
                        "node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }",
                    ),
                ),
                ("a".into(), status(Code::Unschedulable, "Insufficient cpu")),
                ("b".into(), status(Code::Unschedulable, "Insufficient cpu")),
            ],
            post_filter_msg: Some(
                "preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling".into(),
            ),
            ..Diagnosis::default()
        };
        assert_eq!(
            diagnosis.message(),
            "0/3 nodes are available: 1 node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }, \
             2 Insufficient cpu. preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling."
        );
        let pre_filter = Diagnosis {
            num_all_nodes: 2,
            pre_filter_msg: Some("node(s) didn't match pod affinity rules".into()),
            ..Diagnosis::default()
        };
        assert_eq!(
            pre_filter.message(),
            "0/2 nodes are available: node(s) didn't match pod affinity rules."
        );
        assert_eq!(Diagnosis::default().message(), NO_NODES_AVAILABLE);
    }

    #[test]
    fn select_host_breaks_ties_randomly() {
        let mut rng = rand::rng();
        assert_eq!(select_host(&[1, 5, 3], &mut rng), 1);
        let mut seen = BTreeSet::new();
        for _ in 0..200 {
            seen.insert(select_host(&[7, 2, 7, 7], &mut rng));
        }
        assert_eq!(seen, BTreeSet::from([0, 2, 3]));
    }
}
