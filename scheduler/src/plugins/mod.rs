//! The in-tree plugins and the registry of the default profile (upstream's weights).

pub mod balanced_allocation;
pub mod default_binder;
pub mod default_preemption;
pub mod image_locality;
pub mod inter_pod_affinity;
pub mod node_affinity;
pub mod node_name;
pub mod node_resources_fit;
pub mod node_unschedulable;
pub mod pod_topology_spread;
pub mod taint_toleration;

use std::sync::Arc;

use crate::framework::{
    BindPlugin, ClusterEvent, FilterPlugin, Framework, Plugin, PostFilterPlugin, PreFilterPlugin, PreScorePlugin,
    ReservePlugin, ScorePlugin,
};

/// What every plugin module imports.
mod prelude {
    pub(crate) use std::sync::Arc;

    pub(crate) use crate::framework::{
        ClusterEvent, Code, CycleState, FilterPlugin, MAX_NODE_SCORE, NodeInfo, Plugin, PodInfo, PreFilterPlugin,
        PreScorePlugin, ScorePlugin, Snapshot, Status, default_normalize,
    };
}

/// One plugin and the extension points it implements.
pub struct PluginEntry {
    pub name: &'static str,
    pub events: &'static [ClusterEvent],
    pub pre_filter: Option<Arc<dyn PreFilterPlugin>>,
    pub filter: Option<Arc<dyn FilterPlugin>>,
    pub post_filter: Option<Arc<dyn PostFilterPlugin>>,
    pub pre_score: Option<Arc<dyn PreScorePlugin>>,
    /// The plugin and its weight.
    pub score: Option<(Arc<dyn ScorePlugin>, i64)>,
    pub reserve: Option<Arc<dyn ReservePlugin>>,
    pub bind: Option<Arc<dyn BindPlugin>>,
}

impl PluginEntry {
    fn new(plugin: &dyn Plugin) -> Self {
        Self {
            name: plugin.name(),
            events: plugin.events_to_register(),
            pre_filter: None,
            filter: None,
            post_filter: None,
            pre_score: None,
            score: None,
            reserve: None,
            bind: None,
        }
    }
}

/// The default profile's plugins in upstream's order, with upstream's score weights
/// (TaintToleration 3, NodeAffinity 2, InterPodAffinity 2, PodTopologySpread 2, the others 1).
/// Without a binder (tests, benchmarks of the algorithm) nothing can be bound.
pub fn default_plugins(binder: Option<Arc<dyn BindPlugin>>, preemption: bool) -> Vec<PluginEntry> {
    let mut entries = Vec::new();

    entries.push(PluginEntry {
        filter: Some(Arc::new(node_unschedulable::NodeUnschedulable)),
        ..PluginEntry::new(&node_unschedulable::NodeUnschedulable)
    });
    entries.push(PluginEntry {
        filter: Some(Arc::new(node_name::NodeName)),
        ..PluginEntry::new(&node_name::NodeName)
    });
    let taints = Arc::new(taint_toleration::TaintToleration);
    entries.push(PluginEntry {
        filter: Some(taints.clone()),
        pre_score: Some(taints.clone()),
        score: Some((taints.clone(), 3)),
        ..PluginEntry::new(taints.as_ref())
    });
    let affinity = Arc::new(node_affinity::NodeAffinity);
    entries.push(PluginEntry {
        pre_filter: Some(affinity.clone()),
        filter: Some(affinity.clone()),
        pre_score: Some(affinity.clone()),
        score: Some((affinity.clone(), 2)),
        ..PluginEntry::new(affinity.as_ref())
    });
    let fit = Arc::new(node_resources_fit::NodeResourcesFit);
    entries.push(PluginEntry {
        filter: Some(fit.clone()),
        score: Some((fit.clone(), 1)),
        ..PluginEntry::new(fit.as_ref())
    });
    let spread = Arc::new(pod_topology_spread::PodTopologySpread);
    entries.push(PluginEntry {
        pre_filter: Some(spread.clone()),
        filter: Some(spread.clone()),
        pre_score: Some(spread.clone()),
        score: Some((spread.clone(), 2)),
        ..PluginEntry::new(spread.as_ref())
    });
    let pod_affinity = Arc::new(inter_pod_affinity::InterPodAffinity);
    entries.push(PluginEntry {
        pre_filter: Some(pod_affinity.clone()),
        filter: Some(pod_affinity.clone()),
        pre_score: Some(pod_affinity.clone()),
        score: Some((pod_affinity.clone(), 2)),
        ..PluginEntry::new(pod_affinity.as_ref())
    });
    if preemption {
        let preemption = Arc::new(default_preemption::DefaultPreemption);
        entries.push(PluginEntry {
            post_filter: Some(preemption.clone()),
            ..PluginEntry::new(preemption.as_ref())
        });
    }
    let balanced = Arc::new(balanced_allocation::BalancedAllocation);
    entries.push(PluginEntry {
        pre_score: Some(balanced.clone()),
        score: Some((balanced.clone(), 1)),
        ..PluginEntry::new(balanced.as_ref())
    });
    let images = Arc::new(image_locality::ImageLocality);
    entries.push(PluginEntry {
        pre_score: Some(images.clone()),
        score: Some((images.clone(), 1)),
        ..PluginEntry::new(images.as_ref())
    });
    if let Some(binder) = binder {
        entries.push(PluginEntry {
            bind: Some(binder.clone()),
            ..PluginEntry::new(binder.as_ref())
        });
    }
    entries
}

/// A framework from registry entries.
pub fn framework(entries: Vec<PluginEntry>) -> Framework {
    let mut framework = Framework::default();
    for entry in entries {
        framework.events.insert(entry.name, entry.events.to_vec());
        framework.pre_filter.extend(entry.pre_filter);
        framework.filter.extend(entry.filter);
        framework.post_filter.extend(entry.post_filter);
        framework.pre_score.extend(entry.pre_score);
        framework.score.extend(entry.score);
        framework.reserve.extend(entry.reserve);
        framework.bind.extend(entry.bind);
    }
    framework
}

#[cfg(test)]
mod tests;
