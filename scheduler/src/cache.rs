//! The scheduler cache: nodes with the pods bound or assumed on them. A pod is assumed on its
//! node as soon as the scheduling cycle picks it (before the binding is written), forgotten if
//! binding fails, and confirmed when the informer shows it bound, so that the next cycles see
//! its resources taken and no pod is ever placed twice.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Namespace, Node, Pod};

use crate::framework::helpers::{Labels, labels_of};
use crate::framework::{ClusterEvent, NodeInfo, PodInfo, Snapshot};

/// Cache misuse the scheduler reports instead of corrupting its state.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum CacheError {
    #[error("pod {0} is already in the cache")]
    AlreadyInCache(String),
    #[error("pod {0} has no node name")]
    NoNodeName(String),
}

struct PodState {
    info: Arc<PodInfo>,
    node: String,
    assumed: bool,
}

/// See the module documentation.
#[derive(Default)]
pub struct Cache {
    nodes: Vec<Arc<NodeInfo>>,
    index: HashMap<String, usize>,
    pods: HashMap<String, PodState>,
    namespaces: Arc<HashMap<String, Labels>>,
    image_nodes: Arc<HashMap<String, usize>>,
    images_dirty: bool,
}

/// Whether a node update can change scheduling decisions (not heartbeats or conditions).
fn is_relevant_node_update(old: &Node, new: &Node) -> bool {
    old.metadata.labels != new.metadata.labels
        || old.spec.as_ref().map(|s| (&s.taints, s.unschedulable))
            != new.spec.as_ref().map(|s| (&s.taints, s.unschedulable))
        || old.status.as_ref().map(|s| (&s.allocatable, &s.images))
            != new.status.as_ref().map(|s| (&s.allocatable, &s.images))
}

impl Cache {
    fn node_mut(&mut self, name: &str) -> &mut NodeInfo {
        let index = match self.index.get(name) {
            Some(index) => *index,
            None => {
                self.nodes.push(Arc::new(NodeInfo::absent(name)));
                self.index.insert(name.to_string(), self.nodes.len() - 1);
                self.nodes.len() - 1
            }
        };
        Arc::make_mut(&mut self.nodes[index])
    }

    fn drop_node(&mut self, name: &str) {
        let Some(index) = self.index.remove(name) else {
            return;
        };
        self.nodes.swap_remove(index);
        if let Some(moved) = self.nodes.get(index) {
            self.index.insert(moved.name.clone(), index);
        }
    }

    /// Adds or updates a node; returns the cluster event worth telling the queue about.
    pub fn add_or_update_node(&mut self, node: Arc<Node>) -> Option<ClusterEvent> {
        let name = node.metadata.name.clone().unwrap_or_default();
        let existing = self.index.get(&name).map(|i| self.nodes[*i].clone());
        let event = match &existing {
            Some(info) if info.present => {
                is_relevant_node_update(&info.node, &node).then_some(ClusterEvent::NodeUpdate)
            }
            _ => Some(ClusterEvent::NodeAdd),
        };
        if existing.as_ref().is_none_or(|info| {
            info.node.status.as_ref().map(|s| &s.images) != node.status.as_ref().map(|s| &s.images) || !info.present
        }) {
            self.images_dirty = true;
        }
        self.node_mut(&name).set_node(node);
        event
    }

    /// Removes a node; its pods stay accounted until they are deleted.
    pub fn remove_node(&mut self, name: &str) {
        let Some(index) = self.index.get(name).copied() else {
            return;
        };
        self.images_dirty = true;
        if self.nodes[index].pods.is_empty() {
            self.drop_node(name);
        } else {
            Arc::make_mut(&mut self.nodes[index]).present = false;
        }
    }

    /// Adds or updates a pod the API shows bound; confirms it if it was assumed.
    pub fn add_or_update_pod(&mut self, pod: Arc<Pod>) -> Option<ClusterEvent> {
        let info = Arc::new(PodInfo::new(pod));
        let node = info.node_name()?.to_string();
        let event = match self.pods.remove(&info.key) {
            Some(old) => {
                self.remove_from_node(&old.node, &info.key);
                if old.assumed {
                    ClusterEvent::AssignedPodAdd
                } else {
                    ClusterEvent::AssignedPodUpdate
                }
            }
            None => ClusterEvent::AssignedPodAdd,
        };
        self.node_mut(&node).add_pod(info.clone());
        self.pods.insert(
            info.key.clone(),
            PodState {
                info,
                node,
                assumed: false,
            },
        );
        Some(event)
    }

    fn remove_from_node(&mut self, node: &str, key: &str) {
        let Some(index) = self.index.get(node).copied() else {
            return;
        };
        let info = Arc::make_mut(&mut self.nodes[index]);
        info.remove_pod(key);
        if !info.present && info.pods.is_empty() {
            self.drop_node(node);
        }
    }

    /// Removes a pod (deleted, or finished).
    pub fn remove_pod(&mut self, key: &str) -> Option<ClusterEvent> {
        let state = self.pods.remove(key)?;
        self.remove_from_node(&state.node, key);
        Some(ClusterEvent::AssignedPodDelete)
    }

    /// Accounts `info` (whose `spec.nodeName` is the chosen node) before it is bound.
    pub fn assume(&mut self, info: Arc<PodInfo>) -> Result<(), CacheError> {
        if self.pods.contains_key(&info.key) {
            return Err(CacheError::AlreadyInCache(info.key.clone()));
        }
        let node = info
            .node_name()
            .ok_or_else(|| CacheError::NoNodeName(info.key.clone()))?
            .to_string();
        self.node_mut(&node).add_pod(info.clone());
        self.pods.insert(
            info.key.clone(),
            PodState {
                info,
                node,
                assumed: true,
            },
        );
        Ok(())
    }

    /// Undoes [`Cache::assume`] after a failed binding (no-op if already confirmed).
    pub fn forget(&mut self, key: &str) {
        if self.pods.get(key).is_some_and(|s| s.assumed) {
            self.remove_pod(key);
        }
    }

    /// Whether the pod is assumed or known bound.
    pub fn contains_pod(&self, key: &str) -> bool {
        self.pods.contains_key(key)
    }

    pub fn is_assumed(&self, key: &str) -> bool {
        self.pods.get(key).is_some_and(|s| s.assumed)
    }

    /// The pod as the cache knows it.
    pub fn pod(&self, key: &str) -> Option<Arc<PodInfo>> {
        self.pods.get(key).map(|s| s.info.clone())
    }

    pub fn set_namespace(&mut self, namespace: &Namespace) {
        let name = namespace.metadata.name.clone().unwrap_or_default();
        Arc::make_mut(&mut self.namespaces).insert(name, labels_of(&namespace.metadata).clone());
    }

    pub fn remove_namespace(&mut self, name: &str) {
        Arc::make_mut(&mut self.namespaces).remove(name);
    }

    /// After a relist: drops the nodes not listed.
    pub fn retain_nodes(&mut self, listed: &HashSet<String>) {
        let gone: Vec<String> = self
            .nodes
            .iter()
            .filter(|n| n.present && !listed.contains(&n.name))
            .map(|n| n.name.clone())
            .collect();
        for name in gone {
            self.remove_node(&name);
        }
    }

    /// After a relist: drops the bound (not assumed) pods not listed.
    pub fn retain_pods(&mut self, listed: &HashSet<String>) {
        let gone: Vec<String> = self
            .pods
            .iter()
            .filter(|(k, s)| !s.assumed && !listed.contains(*k))
            .map(|(k, _)| k.clone())
            .collect();
        for key in gone {
            self.remove_pod(&key);
        }
    }

    /// An immutable view for one scheduling cycle (cheap: shares every node with the cache).
    pub fn snapshot(&mut self) -> Snapshot {
        if self.images_dirty {
            let mut image_nodes: HashMap<String, usize> = HashMap::new();
            for node in self.nodes.iter().filter(|n| n.present) {
                for image in node.images.keys() {
                    *image_nodes.entry(image.clone()).or_default() += 1;
                }
            }
            self.image_nodes = Arc::new(image_nodes);
            self.images_dirty = false;
        }
        Snapshot {
            nodes: self.nodes.iter().filter(|n| n.present).cloned().collect(),
            namespaces: self.namespaces.clone(),
            image_nodes: self.image_nodes.clone(),
        }
    }

    /// (nodes, pods, assumed pods), for logs and tests.
    pub fn counts(&self) -> (usize, usize, usize) {
        let assumed = self.pods.values().filter(|s| s.assumed).count();
        (
            self.nodes.iter().filter(|n| n.present).count(),
            self.pods.len(),
            assumed,
        )
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::framework::types::testing::{node, pod};

    fn bound(name: &str, node: &str, cpu: &str) -> Arc<Pod> {
        Arc::new(pod(
            name,
            json!({"spec": {"nodeName": node, "containers": [{"name": "c", "resources": {"requests": {"cpu": cpu}}}]}}),
        ))
    }

    fn requested(cache: &mut Cache, node: &str) -> i64 {
        cache.snapshot().get(node).map(|n| n.requested.milli_cpu).unwrap_or(-1)
    }

    #[test]
    fn assume_confirm_forget() {
        let mut cache = Cache::default();
        assert_eq!(
            cache.add_or_update_node(Arc::new(node("n1", json!({})))),
            Some(ClusterEvent::NodeAdd)
        );
        assert_eq!(
            cache.add_or_update_node(Arc::new(node("n2", json!({})))),
            Some(ClusterEvent::NodeAdd)
        );
        let assumed = Arc::new(PodInfo::new(bound("p", "n1", "1")));
        cache.assume(assumed.clone()).expect("first assume");
        assert_eq!(
            cache.assume(assumed),
            Err(CacheError::AlreadyInCache("default/p".into()))
        );
        assert_eq!(requested(&mut cache, "n1"), 1000);
        assert_eq!(cache.counts(), (2, 1, 1));
        // The informer shows it bound: confirmed, still counted once.
        assert_eq!(
            cache.add_or_update_pod(bound("p", "n1", "1")),
            Some(ClusterEvent::AssignedPodAdd)
        );
        assert_eq!(requested(&mut cache, "n1"), 1000);
        assert_eq!(cache.counts(), (2, 1, 0));
        cache.forget("default/p");
        assert_eq!(requested(&mut cache, "n1"), 1000, "confirmed pods are not forgotten");
        // A failed binding: forgotten.
        cache
            .assume(Arc::new(PodInfo::new(bound("q", "n2", "2"))))
            .expect("assume");
        assert_eq!(requested(&mut cache, "n2"), 2000);
        cache.forget("default/q");
        assert_eq!(requested(&mut cache, "n2"), 0);
        assert_eq!(cache.remove_pod("default/p"), Some(ClusterEvent::AssignedPodDelete));
        assert_eq!(requested(&mut cache, "n1"), 0);
    }

    #[test]
    fn snapshots_are_immutable() {
        let mut cache = Cache::default();
        cache.add_or_update_node(Arc::new(node("n1", json!({}))));
        let before = cache.snapshot();
        cache.add_or_update_pod(bound("p", "n1", "1"));
        assert_eq!(before.nodes[0].requested.milli_cpu, 0);
        assert_eq!(cache.snapshot().nodes[0].requested.milli_cpu, 1000);
    }

    #[test]
    fn node_updates_and_removal() {
        let mut cache = Cache::default();
        cache.add_or_update_node(Arc::new(node("n1", json!({}))));
        let heartbeat = node(
            "n1",
            json!({"status": {"conditions": [{"type": "Ready", "status": "True"}]}}),
        );
        assert_eq!(cache.add_or_update_node(Arc::new(heartbeat)), None);
        let labelled = node("n1", json!({"metadata": {"labels": {"zone": "a"}}}));
        assert_eq!(
            cache.add_or_update_node(Arc::new(labelled)),
            Some(ClusterEvent::NodeUpdate)
        );
        // Pods on a node survive its removal until they go, and come back with the node.
        cache.add_or_update_pod(bound("p", "n1", "1"));
        cache.remove_node("n1");
        assert!(cache.snapshot().nodes.is_empty());
        assert_eq!(
            cache.add_or_update_node(Arc::new(node("n1", json!({})))),
            Some(ClusterEvent::NodeAdd)
        );
        assert_eq!(requested(&mut cache, "n1"), 1000);
        cache.remove_node("n1");
        cache.remove_pod("default/p");
        assert_eq!(cache.counts(), (0, 0, 0));
        // A pod bound to an unknown node is kept aside.
        cache.add_or_update_pod(bound("q", "later", "1"));
        cache.add_or_update_node(Arc::new(node("later", json!({}))));
        assert_eq!(requested(&mut cache, "later"), 1000);
    }

    #[test]
    fn pod_moved_between_nodes_is_accounted_once() {
        let mut cache = Cache::default();
        cache.add_or_update_node(Arc::new(node("n1", json!({}))));
        cache.add_or_update_node(Arc::new(node("n2", json!({}))));
        cache
            .assume(Arc::new(PodInfo::new(bound("p", "n1", "1"))))
            .expect("assume");
        // Someone else bound it to n2 first: the informer wins.
        cache.add_or_update_pod(bound("p", "n2", "1"));
        assert_eq!((requested(&mut cache, "n1"), requested(&mut cache, "n2")), (0, 1000));
    }

    #[test]
    fn relist_drops_what_is_gone() {
        let mut cache = Cache::default();
        cache.add_or_update_node(Arc::new(node("n1", json!({}))));
        cache.add_or_update_node(Arc::new(node("n2", json!({}))));
        cache.add_or_update_pod(bound("p", "n1", "1"));
        cache
            .assume(Arc::new(PodInfo::new(bound("a", "n2", "1"))))
            .expect("assume");
        cache.retain_nodes(&HashSet::from(["n1".to_string()]));
        cache.retain_pods(&HashSet::new());
        assert_eq!(cache.counts(), (1, 1, 1), "the assumed pod stays");
    }
}
