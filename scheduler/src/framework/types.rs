//! What plugins read: pods pre-processed once ([`PodInfo`]), nodes with their pods and
//! aggregated requests ([`NodeInfo`]), and the immutable per-cycle [`Snapshot`].

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Node, Pod, PodAffinityTerm, WeightedPodAffinityTerm};

use super::helpers::{Labels, Selector, labels_of, normalized_image_name};
use crate::resources::{Resource, pod_non_zero_requests, pod_requests};

/// A pod affinity term with its selectors compiled and its namespaces resolved.
#[derive(Clone, Debug, PartialEq)]
pub struct AffinityTerm {
    pub namespaces: BTreeSet<String>,
    pub namespace_selector: Option<Selector>,
    pub selector: Selector,
    pub topology_key: String,
}

impl AffinityTerm {
    /// Compiles `term` of a pod in `namespace`: no namespaces and no namespace selector mean
    /// the pod's own namespace; `matchLabelKeys` / `mismatchLabelKeys` add the pod's values.
    pub fn new(term: &PodAffinityTerm, namespace: &str, pod_labels: &Labels) -> Self {
        let mut namespaces: BTreeSet<String> = term.namespaces.iter().flatten().cloned().collect();
        let namespace_selector = term
            .namespace_selector
            .as_ref()
            .map(|selector| Selector::from_label_selector(Some(selector)));
        if namespaces.is_empty() && namespace_selector.is_none() {
            namespaces.insert(namespace.to_string());
        }
        let mut selector = Selector::from_label_selector(term.label_selector.as_ref());
        if term.label_selector.is_some() {
            for key in term.match_label_keys.iter().flatten() {
                if let Some(value) = pod_labels.get(key) {
                    selector.add_equals(key, value);
                }
            }
        }
        Self {
            namespaces,
            namespace_selector,
            selector,
            topology_key: term.topology_key.clone(),
        }
    }

    /// Whether `pod` (in a namespace labelled per `namespace_labels`) matches this term.
    pub fn matches(&self, pod: &PodInfo, namespace_labels: &HashMap<String, Labels>) -> bool {
        let in_namespace = self.namespaces.contains(&pod.namespace)
            || self.namespace_selector.as_ref().is_some_and(|selector| {
                static EMPTY: Labels = Labels::new();
                selector.matches(namespace_labels.get(&pod.namespace).unwrap_or(&EMPTY))
            });
        in_namespace && self.selector.matches(pod.labels())
    }
}

/// A preferred affinity term and its weight.
#[derive(Clone, Debug, PartialEq)]
pub struct WeightedAffinityTerm {
    pub term: AffinityTerm,
    pub weight: i64,
}

/// A pod and what the plugins need from it, computed once.
#[derive(Clone, Debug, PartialEq)]
pub struct PodInfo {
    pub pod: Arc<Pod>,
    /// `namespace/name`.
    pub key: String,
    pub namespace: String,
    pub name: String,
    pub uid: String,
    pub requests: Resource,
    pub non_zero_requests: Resource,
    pub priority: i32,
    pub required_affinity: Vec<AffinityTerm>,
    pub required_anti_affinity: Vec<AffinityTerm>,
    pub preferred_affinity: Vec<WeightedAffinityTerm>,
    pub preferred_anti_affinity: Vec<WeightedAffinityTerm>,
}

fn weighted(
    terms: Option<&Vec<WeightedPodAffinityTerm>>,
    namespace: &str,
    labels: &Labels,
) -> Vec<WeightedAffinityTerm> {
    terms
        .into_iter()
        .flatten()
        .map(|t| WeightedAffinityTerm {
            term: AffinityTerm::new(&t.pod_affinity_term, namespace, labels),
            weight: i64::from(t.weight),
        })
        .collect()
}

fn required(terms: Option<&Vec<PodAffinityTerm>>, namespace: &str, labels: &Labels) -> Vec<AffinityTerm> {
    terms
        .into_iter()
        .flatten()
        .map(|t| AffinityTerm::new(t, namespace, labels))
        .collect()
}

impl PodInfo {
    pub fn new(pod: Arc<Pod>) -> Self {
        let namespace = pod.metadata.namespace.clone().unwrap_or_else(|| "default".to_string());
        let name = pod.metadata.name.clone().unwrap_or_default();
        let labels = labels_of(&pod.metadata);
        let spec = pod.spec.as_ref();
        let affinity = spec.and_then(|s| s.affinity.as_ref());
        let pod_affinity = affinity.and_then(|a| a.pod_affinity.as_ref());
        let anti_affinity = affinity.and_then(|a| a.pod_anti_affinity.as_ref());
        Self {
            key: format!("{namespace}/{name}"),
            uid: pod.metadata.uid.clone().unwrap_or_default(),
            requests: pod_requests(&pod),
            non_zero_requests: pod_non_zero_requests(&pod),
            priority: spec.and_then(|s| s.priority).unwrap_or(0),
            required_affinity: required(
                pod_affinity.and_then(|a| a.required_during_scheduling_ignored_during_execution.as_ref()),
                &namespace,
                labels,
            ),
            required_anti_affinity: required(
                anti_affinity.and_then(|a| a.required_during_scheduling_ignored_during_execution.as_ref()),
                &namespace,
                labels,
            ),
            preferred_affinity: weighted(
                pod_affinity.and_then(|a| a.preferred_during_scheduling_ignored_during_execution.as_ref()),
                &namespace,
                labels,
            ),
            preferred_anti_affinity: weighted(
                anti_affinity.and_then(|a| a.preferred_during_scheduling_ignored_during_execution.as_ref()),
                &namespace,
                labels,
            ),
            namespace,
            name,
            pod,
        }
    }

    pub fn labels(&self) -> &Labels {
        labels_of(&self.pod.metadata)
    }

    /// Whether the pod has any pod affinity or anti-affinity term.
    pub fn has_affinity(&self) -> bool {
        !(self.required_affinity.is_empty()
            && self.required_anti_affinity.is_empty()
            && self.preferred_affinity.is_empty()
            && self.preferred_anti_affinity.is_empty())
    }

    pub fn is_terminating(&self) -> bool {
        self.pod.metadata.deletion_timestamp.is_some()
    }

    pub fn node_name(&self) -> Option<&str> {
        self.pod
            .spec
            .as_ref()
            .and_then(|s| s.node_name.as_deref())
            .filter(|n| !n.is_empty())
    }
}

/// A node, its pods and what they request.
#[derive(Clone, Debug)]
pub struct NodeInfo {
    pub name: String,
    pub node: Arc<Node>,
    /// False when the Node object is gone but pods still reference it.
    pub present: bool,
    pub pods: Vec<Arc<PodInfo>>,
    pub pods_with_affinity: usize,
    pub pods_with_required_anti_affinity: usize,
    pub allocatable: Resource,
    pub requested: Resource,
    pub non_zero_requested: Resource,
    /// Normalized image names → size in bytes.
    pub images: Arc<HashMap<String, i64>>,
}

impl NodeInfo {
    pub fn new(node: Arc<Node>) -> Self {
        let mut info = Self {
            name: node.metadata.name.clone().unwrap_or_default(),
            node: Arc::new(Node::default()),
            present: true,
            pods: Vec::new(),
            pods_with_affinity: 0,
            pods_with_required_anti_affinity: 0,
            allocatable: Resource::default(),
            requested: Resource::default(),
            non_zero_requested: Resource::default(),
            images: Arc::default(),
        };
        info.set_node(node);
        info
    }

    /// A placeholder for pods bound to a node we have not seen (or no longer see).
    pub fn absent(name: &str) -> Self {
        let mut node = Node::default();
        node.metadata.name = Some(name.to_string());
        let mut info = Self::new(Arc::new(node));
        info.present = false;
        info
    }

    pub fn set_node(&mut self, node: Arc<Node>) {
        self.allocatable = Resource::from_list(node.status.as_ref().and_then(|s| s.allocatable.as_ref()));
        let mut images = HashMap::new();
        for image in node
            .status
            .as_ref()
            .and_then(|s| s.images.as_ref())
            .into_iter()
            .flatten()
        {
            for name in image.names.iter().flatten() {
                images.insert(normalized_image_name(name), image.size_bytes.unwrap_or(0));
            }
        }
        self.images = Arc::new(images);
        self.node = node;
        self.present = true;
    }

    pub fn labels(&self) -> &Labels {
        labels_of(&self.node.metadata)
    }

    pub fn add_pod(&mut self, pod: Arc<PodInfo>) {
        self.requested.add(&pod.requests);
        self.non_zero_requested.add(&pod.non_zero_requests);
        if pod.has_affinity() {
            self.pods_with_affinity += 1;
        }
        if !pod.required_anti_affinity.is_empty() {
            self.pods_with_required_anti_affinity += 1;
        }
        self.pods.push(pod);
    }

    /// Removes the pod with `key`; returns whether it was there.
    pub fn remove_pod(&mut self, key: &str) -> bool {
        let Some(index) = self.pods.iter().position(|p| p.key == key) else {
            return false;
        };
        let pod = self.pods.swap_remove(index);
        self.requested.sub(&pod.requests);
        self.non_zero_requested.sub(&pod.non_zero_requests);
        if pod.has_affinity() {
            self.pods_with_affinity -= 1;
        }
        if !pod.required_anti_affinity.is_empty() {
            self.pods_with_required_anti_affinity -= 1;
        }
        true
    }
}

/// The cluster as one scheduling cycle sees it; never changes during the cycle.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    pub nodes: Vec<Arc<NodeInfo>>,
    /// Namespace name → labels (for namespaceSelector in affinity terms).
    pub namespaces: Arc<HashMap<String, Labels>>,
    /// Normalized image name → number of nodes that have it.
    pub image_nodes: Arc<HashMap<String, usize>>,
}

impl Snapshot {
    /// A snapshot of `nodes` (test helper and preemption): image counts derived from them.
    pub fn from_nodes(nodes: Vec<Arc<NodeInfo>>) -> Self {
        let mut image_nodes: HashMap<String, usize> = HashMap::new();
        for node in &nodes {
            for image in node.images.keys() {
                *image_nodes.entry(image.clone()).or_default() += 1;
            }
        }
        Self {
            nodes,
            namespaces: Arc::default(),
            image_nodes: Arc::new(image_nodes),
        }
    }

    pub fn get(&self, name: &str) -> Option<&Arc<NodeInfo>> {
        self.nodes.iter().find(|n| n.name == name)
    }

    pub fn nodes_with_pods_with_affinity(&self) -> impl Iterator<Item = &Arc<NodeInfo>> {
        self.nodes.iter().filter(|n| n.pods_with_affinity > 0)
    }

    pub fn nodes_with_required_anti_affinity(&self) -> impl Iterator<Item = &Arc<NodeInfo>> {
        self.nodes.iter().filter(|n| n.pods_with_required_anti_affinity > 0)
    }
}

/// Test helpers: typed objects from compact JSON.
#[cfg(test)]
pub(crate) mod testing {
    use super::*;
    use serde_json::{Value, json};

    pub(crate) fn node(name: &str, extra: Value) -> Node {
        let mut value = json!({
            "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
            "status": {"allocatable": {"cpu": "4", "memory": "8Gi", "pods": "110"}},
        });
        merge(&mut value, extra);
        serde_json::from_value(value).expect("valid node")
    }

    pub(crate) fn pod(name: &str, extra: Value) -> Pod {
        let mut value = json!({
            "metadata": {"name": name, "namespace": "default", "uid": format!("uid-{name}")},
            "spec": {"containers": [{"name": "c", "image": "nginx"}], "schedulerName": "default-scheduler"},
        });
        merge(&mut value, extra);
        serde_json::from_value(value).expect("valid pod")
    }

    pub(crate) fn pod_info(name: &str, extra: Value) -> PodInfo {
        PodInfo::new(Arc::new(pod(name, extra)))
    }

    /// A node info with `pods` on it.
    pub(crate) fn node_info(node: Node, pods: Vec<Pod>) -> Arc<NodeInfo> {
        let mut info = NodeInfo::new(Arc::new(node));
        for pod in pods {
            info.add_pod(Arc::new(PodInfo::new(Arc::new(pod))));
        }
        Arc::new(info)
    }

    /// Deep-merges `patch` into `base` (objects merge, everything else replaces).
    pub(crate) fn merge(base: &mut Value, patch: Value) {
        match (base, patch) {
            (Value::Object(base), Value::Object(patch)) => {
                for (key, value) in patch {
                    merge(base.entry(key).or_insert(Value::Null), value);
                }
            }
            (base, patch) => *base = patch,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testing::*;
    use super::*;
    use serde_json::json;

    #[test]
    fn node_info_accounts_pods() {
        let mut info = NodeInfo::new(Arc::new(node("n1", json!({}))));
        let with_anti = pod_info(
            "a",
            json!({"spec": {"containers": [{"name": "c", "resources": {"requests": {"cpu": "1"}}}],
                "affinity": {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
                    {"labelSelector": {"matchLabels": {"app": "x"}}, "topologyKey": "kubernetes.io/hostname"}]}}}}),
        );
        info.add_pod(Arc::new(with_anti));
        info.add_pod(Arc::new(pod_info("b", json!({}))));
        assert_eq!(info.requested.milli_cpu, 1000);
        assert_eq!(info.non_zero_requested.milli_cpu, 1100);
        assert_eq!((info.pods_with_affinity, info.pods_with_required_anti_affinity), (1, 1));
        assert!(info.remove_pod("default/a"));
        assert!(!info.remove_pod("default/a"));
        assert_eq!(info.requested.milli_cpu, 0);
        assert_eq!((info.pods_with_affinity, info.pods_with_required_anti_affinity), (0, 0));
        assert_eq!(info.allocatable.milli_cpu, 4000);
        assert_eq!(info.allocatable.allowed_pods, 110);
    }

    #[test]
    fn affinity_term_namespaces() {
        let pod = pod_info("p", json!({"metadata": {"namespace": "ns1"}}));
        let term: PodAffinityTerm =
            serde_json::from_value(json!({"labelSelector": {}, "topologyKey": "zone"})).expect("valid term");
        let own = AffinityTerm::new(&term, "ns1", &Labels::new());
        assert!(own.matches(&pod, &HashMap::new()));
        let other = AffinityTerm::new(&term, "ns2", &Labels::new());
        assert!(!other.matches(&pod, &HashMap::new()));
        let term: PodAffinityTerm = serde_json::from_value(
            json!({"labelSelector": {}, "topologyKey": "zone", "namespaceSelector": {"matchLabels": {"team": "a"}}}),
        )
        .expect("valid term");
        let by_selector = AffinityTerm::new(&term, "ns2", &Labels::new());
        let mut namespaces = HashMap::new();
        assert!(!by_selector.matches(&pod, &namespaces));
        namespaces.insert("ns1".to_string(), [("team".to_string(), "a".to_string())].into());
        assert!(by_selector.matches(&pod, &namespaces));
    }
}
