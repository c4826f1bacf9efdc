//! The scheduling framework: extension-point traits, statuses, cycle state, and the per-cycle
//! snapshot types plugins read (as upstream's `pkg/scheduler/framework`).

pub mod helpers;
pub mod runtime;
pub mod types;

use std::any::{Any, TypeId};
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::Pod;

pub use runtime::{Diagnosis, Framework, ScheduleResult};
pub use types::{AffinityTerm, NodeInfo, PodInfo, Snapshot, WeightedAffinityTerm};

/// The highest score a plugin gives a node after normalization.
pub const MAX_NODE_SCORE: i64 = 100;

/// The outcome class of a plugin call, as upstream's `framework.Code`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Code {
    Success,
    /// An internal error: the pod is retried with back-off.
    Error,
    /// The node does not fit, but preemption might help.
    Unschedulable,
    /// The node does not fit and preemption cannot help.
    UnschedulableAndUnresolvable,
    /// The plugin has nothing to do for this pod (PreFilter / PreScore): skip its Filter / Score.
    Skip,
}

/// A plugin's verdict with its reasons (the texts that make up "0/3 nodes are available: ...").
#[derive(Clone, Debug, PartialEq)]
pub struct Status {
    pub code: Code,
    pub reasons: Vec<String>,
    /// The plugin that failed the pod, filled in by the framework.
    pub plugin: &'static str,
}

impl Status {
    pub fn success() -> Self {
        Self {
            code: Code::Success,
            reasons: Vec::new(),
            plugin: "",
        }
    }

    pub fn skip() -> Self {
        Self {
            code: Code::Skip,
            reasons: Vec::new(),
            plugin: "",
        }
    }

    pub fn new(code: Code, reason: impl Into<String>) -> Self {
        Self {
            code,
            reasons: vec![reason.into()],
            plugin: "",
        }
    }

    pub fn with_reasons(code: Code, reasons: Vec<String>) -> Self {
        Self {
            code,
            reasons,
            plugin: "",
        }
    }

    pub fn error(reason: impl Into<String>) -> Self {
        Self::new(Code::Error, reason)
    }

    pub fn is_success(&self) -> bool {
        self.code == Code::Success
    }

    /// Unschedulable, with or without hope from preemption.
    pub fn is_rejected(&self) -> bool {
        matches!(self.code, Code::Unschedulable | Code::UnschedulableAndUnresolvable)
    }

    pub fn message(&self) -> String {
        self.reasons.join(", ")
    }
}

/// Data a plugin stores in the cycle state; cloned when preemption simulates removals.
pub trait StateData: Any + Send + Sync {
    fn clone_box(&self) -> Box<dyn StateData>;
    fn as_any(&self) -> &dyn Any;
    fn as_any_mut(&mut self) -> &mut dyn Any;
}

impl<T: Any + Clone + Send + Sync> StateData for T {
    fn clone_box(&self) -> Box<dyn StateData> {
        Box::new(self.clone())
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}

/// Per-cycle data shared between a plugin's extension points, keyed by type.
#[derive(Default)]
pub struct CycleState {
    data: HashMap<TypeId, Box<dyn StateData>>,
    /// Plugins whose PreFilter returned Skip: their Filter is not run.
    pub skip_filter: BTreeSet<&'static str>,
    /// Plugins whose PreScore returned Skip: their Score is not run.
    pub skip_score: BTreeSet<&'static str>,
}

impl Clone for CycleState {
    fn clone(&self) -> Self {
        Self {
            data: self.data.iter().map(|(k, v)| (*k, v.as_ref().clone_box())).collect(),
            skip_filter: self.skip_filter.clone(),
            skip_score: self.skip_score.clone(),
        }
    }
}

impl CycleState {
    pub fn write<T: Any + Clone + Send + Sync>(&mut self, value: T) {
        self.data.insert(TypeId::of::<T>(), Box::new(value));
    }

    pub fn read<T: Any>(&self) -> Option<&T> {
        self.data
            .get(&TypeId::of::<T>())
            .and_then(|v| v.as_ref().as_any().downcast_ref())
    }

    pub fn read_mut<T: Any>(&mut self) -> Option<&mut T> {
        self.data
            .get_mut(&TypeId::of::<T>())
            .and_then(|v| v.as_mut().as_any_mut().downcast_mut())
    }
}

/// Cluster changes that can make an unschedulable pod schedulable (upstream's ClusterEvent).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ClusterEvent {
    NodeAdd,
    /// Labels, taints, allocatable, images or `spec.unschedulable` changed.
    NodeUpdate,
    NodeDelete,
    AssignedPodAdd,
    AssignedPodUpdate,
    AssignedPodDelete,
}

impl ClusterEvent {
    pub fn label(self) -> &'static str {
        match self {
            Self::NodeAdd => "NodeAdd",
            Self::NodeUpdate => "NodeUpdate",
            Self::NodeDelete => "NodeDelete",
            Self::AssignedPodAdd => "AssignedPodAdd",
            Self::AssignedPodUpdate => "AssignedPodUpdate",
            Self::AssignedPodDelete => "AssignedPodDelete",
        }
    }
}

/// Every plugin has a name and says which cluster events may make the pods it rejected
/// schedulable.
pub trait Plugin: Send + Sync {
    fn name(&self) -> &'static str;
    fn events_to_register(&self) -> &'static [ClusterEvent] {
        &[]
    }
}

/// Runs once per cycle before the filters; computes state they share.
pub trait PreFilterPlugin: Plugin {
    fn pre_filter(&self, state: &mut CycleState, pod: &PodInfo, snapshot: &Snapshot) -> Status;

    /// Updates the pre-filter state as if `added` ran on `node` (preemption's simulation).
    fn add_pod(
        &self,
        _state: &mut CycleState,
        _pod: &PodInfo,
        _added: &PodInfo,
        _node: &NodeInfo,
        _snapshot: &Snapshot,
    ) {
    }

    /// Updates the pre-filter state as if `removed` no longer ran on `node`.
    fn remove_pod(
        &self,
        _state: &mut CycleState,
        _pod: &PodInfo,
        _removed: &PodInfo,
        _node: &NodeInfo,
        _snapshot: &Snapshot,
    ) {
    }
}

/// Says whether the pod may run on one node.
pub trait FilterPlugin: Plugin {
    fn filter(&self, state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status;
}

/// Runs when no node passed the filters (preemption).
pub trait PostFilterPlugin: Plugin {
    fn post_filter(
        &self,
        framework: &Framework,
        state: &CycleState,
        pod: &PodInfo,
        snapshot: &Snapshot,
        diagnosis: &Diagnosis,
    ) -> (Option<PostFilterResult>, Status);
}

/// What a PostFilter found: a node the pod may use once the victims are gone.
#[derive(Clone, Debug, PartialEq)]
pub struct PostFilterResult {
    pub nominated_node: String,
    pub victims: Vec<Arc<PodInfo>>,
}

/// Runs once per cycle before scoring, over the feasible nodes.
pub trait PreScorePlugin: Plugin {
    fn pre_score(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        feasible: &[Arc<NodeInfo>],
        snapshot: &Snapshot,
    ) -> Status;
}

/// Ranks a feasible node; `normalize` maps the raw scores of all feasible nodes to
/// 0..=[`MAX_NODE_SCORE`].
pub trait ScorePlugin: Plugin {
    fn score(&self, state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Result<i64, Status>;

    fn normalize(&self, _state: &CycleState, _pod: &PodInfo, _nodes: &[Arc<NodeInfo>], _scores: &mut [i64]) -> Status {
        Status::success()
    }
}

/// Claims per-node resources for the chosen node; `unreserve` undoes it when binding fails.
pub trait ReservePlugin: Plugin {
    fn reserve(&self, state: &mut CycleState, pod: &PodInfo, node: &str) -> Status;
    fn unreserve(&self, state: &mut CycleState, pod: &PodInfo, node: &str);
}

/// Writes the decision to the API.
pub trait BindPlugin: Plugin {
    fn bind(&self, pod: Arc<Pod>, node: String) -> BoxFuture<'static, Status>;
}

/// The default normalization: scale to 0..=`MAX_NODE_SCORE` by the maximum, optionally
/// reversed (upstream's `helper.DefaultNormalizeScore`).
pub fn default_normalize(scores: &mut [i64], reverse: bool) {
    let max = scores.iter().copied().max().unwrap_or(0);
    if max <= 0 {
        if reverse {
            scores.iter_mut().for_each(|s| *s = MAX_NODE_SCORE);
        }
        return;
    }
    for score in scores.iter_mut() {
        let scaled = MAX_NODE_SCORE * *score / max;
        *score = if reverse { MAX_NODE_SCORE - scaled } else { scaled };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_normalize_table() {
        let cases: [(&[i64], bool, &[i64]); 4] = [
            (&[0, 5, 10], false, &[0, 50, 100]),
            (&[0, 5, 10], true, &[100, 50, 0]),
            (&[0, 0], true, &[100, 100]),
            (&[0, 0], false, &[0, 0]),
        ];
        for (input, reverse, want) in cases {
            let mut scores = input.to_vec();
            default_normalize(&mut scores, reverse);
            assert_eq!(scores, want, "{input:?} reverse={reverse}");
        }
    }

    #[test]
    fn cycle_state_clone_is_deep() {
        let mut state = CycleState::default();
        state.write(vec![1u32]);
        let mut copy = state.clone();
        copy.read_mut::<Vec<u32>>().expect("written").push(2);
        assert_eq!(state.read::<Vec<u32>>(), Some(&vec![1]));
        assert_eq!(copy.read::<Vec<u32>>(), Some(&vec![1, 2]));
    }
}
