//! The ownerReference graph: every watched object's identity, owners, finalizers and deletion
//! state by uid, with the reverse index owner → dependents (kept for owners not or no longer
//! in the graph too, so their dependents can be found when they turn out to be gone). Each
//! change returns the uids the collector must look at again.

use std::collections::{BTreeSet, HashMap};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;

/// The finalizer asking the collector to orphan the dependents first.
pub const ORPHAN: &str = "orphan";
/// The finalizer asking the collector to delete the dependents first.
pub const FOREGROUND: &str = "foregroundDeletion";

/// One object as the collector sees it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Node {
    /// Index of its resource in the collector's resource list.
    pub resource: usize,
    pub api_version: String,
    pub kind: String,
    pub namespace: Option<String>,
    pub name: String,
    pub uid: String,
    pub resource_version: Option<String>,
    pub owners: Vec<OwnerReference>,
    pub finalizers: Vec<String>,
    pub deleting: bool,
}

impl Node {
    /// True when the object carries `finalizer`.
    pub fn has_finalizer(&self, finalizer: &str) -> bool {
        self.finalizers.iter().any(|f| f == finalizer)
    }

    /// Being deleted and waiting for its dependents to go first.
    pub fn deleting_dependents(&self) -> bool {
        self.deleting && self.has_finalizer(FOREGROUND)
    }

    /// `namespace/name` or `name`, for logs and errors.
    pub fn key(&self) -> String {
        crate::util::key(self.namespace.as_deref(), &self.name)
    }

    fn needs_attention(&self) -> bool {
        !self.owners.is_empty() || (self.deleting && (self.has_finalizer(ORPHAN) || self.has_finalizer(FOREGROUND)))
    }
}

/// The graph.
#[derive(Debug, Default)]
pub struct Graph {
    nodes: HashMap<String, Node>,
    dependents: HashMap<String, BTreeSet<String>>,
}

impl Graph {
    /// The node with `uid`.
    pub fn get(&self, uid: &str) -> Option<&Node> {
        self.nodes.get(uid)
    }

    /// The dependents of `uid` that are in the graph.
    pub fn dependents(&self, uid: &str) -> Vec<Node> {
        self.dependents
            .get(uid)
            .into_iter()
            .flatten()
            .filter_map(|dependent| self.nodes.get(dependent).cloned())
            .collect()
    }

    /// Every node of resource `resource`, by uid.
    pub fn uids_of_resource(&self, resource: usize) -> Vec<String> {
        self.nodes
            .values()
            .filter(|node| node.resource == resource)
            .map(|node| node.uid.clone())
            .collect()
    }

    /// Every uid needing a look at start-up.
    pub fn all_needing_attention(&self) -> Vec<String> {
        self.nodes
            .values()
            .filter(|node| node.needs_attention())
            .map(|node| node.uid.clone())
            .collect()
    }

    /// Owners of `node` (by the given references) being deleted in the foreground.
    fn foreground_owners(&self, owners: &[OwnerReference]) -> impl Iterator<Item = String> + '_ {
        owners
            .iter()
            .filter(|owner| self.nodes.get(&owner.uid).is_some_and(Node::deleting_dependents))
            .map(|owner| owner.uid.clone())
            .collect::<Vec<_>>()
            .into_iter()
    }

    /// Adds or replaces a node; returns the uids to look at.
    pub fn upsert(&mut self, node: Node) -> Vec<String> {
        let mut attention = Vec::new();
        let old = self.nodes.remove(&node.uid);
        if let Some(old) = &old {
            if old == &node {
                self.nodes.insert(node.uid.clone(), node);
                return attention;
            }
            for owner in &old.owners {
                if let Some(set) = self.dependents.get_mut(&owner.uid) {
                    set.remove(&old.uid);
                    if set.is_empty() {
                        self.dependents.remove(&owner.uid);
                    }
                }
            }
            attention.extend(self.foreground_owners(&old.owners));
        }
        for owner in &node.owners {
            self.dependents
                .entry(owner.uid.clone())
                .or_default()
                .insert(node.uid.clone());
        }
        attention.extend(self.foreground_owners(&node.owners));
        if node.needs_attention() {
            attention.push(node.uid.clone());
        }
        // A new owner (or one whose uid was reused by name) changes its dependents' view.
        if old.is_none() && self.dependents.contains_key(&node.uid) {
            attention.extend(self.dependents.get(&node.uid).into_iter().flatten().cloned());
        }
        self.nodes.insert(node.uid.clone(), node);
        attention.sort();
        attention.dedup();
        attention
    }

    /// Removes a node (deleted); returns the uids to look at: its dependents and the owners
    /// that waited for it.
    pub fn remove(&mut self, uid: &str) -> Vec<String> {
        let Some(node) = self.nodes.remove(uid) else {
            return Vec::new();
        };
        for owner in &node.owners {
            if let Some(set) = self.dependents.get_mut(&owner.uid) {
                set.remove(uid);
                if set.is_empty() {
                    self.dependents.remove(&owner.uid);
                }
            }
        }
        let mut attention: Vec<String> = self.foreground_owners(&node.owners).collect();
        attention.extend(self.dependents.get(uid).into_iter().flatten().cloned());
        attention.sort();
        attention.dedup();
        attention
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn owner_ref(uid: &str, block: bool) -> OwnerReference {
        OwnerReference {
            api_version: "apps/v1".into(),
            kind: "ReplicaSet".into(),
            name: uid.into(),
            uid: uid.into(),
            controller: Some(true),
            block_owner_deletion: Some(block),
        }
    }

    pub(crate) fn node(uid: &str, owners: &[&str]) -> Node {
        Node {
            api_version: "v1".into(),
            kind: "Pod".into(),
            namespace: Some("ns".into()),
            name: uid.into(),
            uid: uid.into(),
            owners: owners.iter().map(|owner| owner_ref(owner, true)).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn changes_point_at_the_right_nodes() {
        let mut graph = Graph::default();
        assert!(
            graph.upsert(node("rs", &[])).is_empty(),
            "an owner without owners needs nothing"
        );
        assert_eq!(graph.upsert(node("pod", &["rs"])), vec!["pod"]);
        assert_eq!(graph.dependents("rs").len(), 1);
        // The same state again: nothing.
        assert!(graph.upsert(node("pod", &["rs"])).is_empty());
        // The owner starts a foreground deletion: it needs a look.
        let mut deleting = node("rs", &[]);
        deleting.deleting = true;
        deleting.finalizers = vec![FOREGROUND.into()];
        assert_eq!(graph.upsert(deleting), vec!["rs"]);
        // Its dependent goes: the owner and nothing else.
        assert_eq!(graph.remove("pod"), vec!["rs"]);
        assert!(graph.dependents("rs").is_empty());
        // An owner goes: its dependents need a look.
        graph.upsert(node("orphaned", &["rs"]));
        assert_eq!(graph.remove("rs"), vec!["orphaned"]);
        // A dependent that arrived before its owner is looked at again when the owner shows.
        assert_eq!(
            graph.upsert(node("late-owner-child", &["late"])),
            vec!["late-owner-child"]
        );
        assert_eq!(graph.upsert(node("late", &[])), vec!["late-owner-child"]);
    }
}
