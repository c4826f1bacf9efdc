//! The nodeipam controller (upstream's range allocator): every Node gets `spec.podCIDR` /
//! `spec.podCIDRs`, one block per `--cluster-cidr` (dual-stack: one per family) of
//! `--node-cidr-mask-size` (IPv4; IPv6 blocks are /64). Allocations are rebuilt from the
//! Nodes at start, released when a Node goes, and never handed out twice. Off with
//! `--allocate-node-cidrs=false`.

pub mod cidrset;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::core::v1::Node;
use kube::api::{Patch, PatchParams};
use kube::runtime::reflector::Store;
use kube::{Api, ResourceExt};

use crate::context::{Context, EventRecorder};
use crate::controllers::wiring::{EventForwarder, Forward, resync_each};
use crate::error::{Error, Result, is_not_found};
use crate::informer::Change;
use crate::queue::WorkQueue;
use crate::util;
use cidrset::{Cidr, CidrError, CidrSet};

/// The controller's name in `--controllers`.
pub const NAME: &str = "nodeipam";

/// IPv6 node blocks, as upstream's `--node-cidr-mask-size-ipv6` default.
const IPV6_NODE_MASK: u8 = 64;

/// The allocation state: one set per cluster CIDR, plus allocations written to Nodes that
/// the cache does not show yet (by Node uid), so a lagging cache never allocates twice.
#[derive(Debug)]
pub struct Allocator {
    sets: Vec<CidrSet>,
    pending: HashMap<String, Vec<String>>,
}

/// The pod CIDRs a Node already has.
pub fn node_cidrs(node: &Node) -> Vec<String> {
    let spec = node.spec.as_ref();
    let mut cidrs: Vec<String> = spec.and_then(|spec| spec.pod_cidrs.clone()).unwrap_or_default();
    if cidrs.is_empty()
        && let Some(cidr) = spec.and_then(|spec| spec.pod_cidr.clone()).filter(|c| !c.is_empty())
    {
        cidrs.push(cidr);
    }
    cidrs
}

impl Allocator {
    /// Sets for `--cluster-cidr` (comma-separated) with `--node-cidr-mask-size`.
    pub fn new(cluster_cidrs: &str, node_mask: u8) -> Result<Self> {
        let flag = |error: CidrError| Error::Flag {
            flag: "cluster-cidr",
            message: error.to_string(),
        };
        let mut sets = Vec::new();
        for text in cluster_cidrs.split(',').map(str::trim).filter(|t| !t.is_empty()) {
            let cidr = Cidr::parse(text).map_err(flag)?;
            let mask = if cidr.v6 {
                IPV6_NODE_MASK.max(cidr.prefix)
            } else {
                node_mask
            };
            sets.push(CidrSet::new(cidr, mask).map_err(flag)?);
        }
        if sets.is_empty() || sets.len() > 2 || (sets.len() == 2 && sets[0].is_v6() == sets[1].is_v6()) {
            return Err(Error::Flag {
                flag: "cluster-cidr",
                message: format!("{cluster_cidrs:?}: one CIDR, or one IPv4 and one IPv6 CIDR"),
            });
        }
        Ok(Allocator {
            sets,
            pending: HashMap::new(),
        })
    }

    fn set_for(&mut self, cidr: &str) -> Option<&mut CidrSet> {
        let v6 = cidr.contains(':');
        self.sets.iter_mut().find(|set| set.is_v6() == v6)
    }

    /// Marks the Node's CIDRs taken; returns those already taken by another Node or outside
    /// the cluster CIDR (logged, never reallocated).
    pub fn occupy(&mut self, node: &Node) -> Vec<String> {
        let mut conflicts = Vec::new();
        if let Some(uid) = node.metadata.uid.as_deref() {
            self.pending.remove(uid);
        }
        for cidr in node_cidrs(node) {
            match self.set_for(&cidr).map(|set| set.occupy(&cidr)) {
                Some(Ok(_)) => {}
                _ => conflicts.push(cidr),
            }
        }
        conflicts
    }

    /// Frees the CIDRs of a deleted Node.
    pub fn release(&mut self, node: &Node) {
        let mut cidrs = node_cidrs(node);
        if let Some(pending) = node.metadata.uid.as_deref().and_then(|uid| self.pending.remove(uid)) {
            cidrs.extend(pending);
        }
        for cidr in cidrs {
            if let Some(set) = self.set_for(&cidr) {
                let _ = set.release(&cidr);
            }
        }
    }

    /// The CIDRs to write to a Node without any: those allocated to it before (not yet in
    /// the cache) or new ones, one per set. `None` when it has CIDRs already.
    pub fn decide(&mut self, node: &Node) -> Option<Result<Vec<String>, CidrError>> {
        if !node_cidrs(node).is_empty() {
            self.occupy(node);
            return None;
        }
        let uid = node.metadata.uid.clone().unwrap_or_default();
        if let Some(pending) = self.pending.get(&uid) {
            return Some(Ok(pending.clone()));
        }
        let mut allocated = Vec::new();
        for index in 0..self.sets.len() {
            match self.sets[index].allocate() {
                Ok(cidr) => allocated.push(cidr),
                Err(error) => {
                    for (set, cidr) in self.sets.iter_mut().zip(&allocated) {
                        let _ = set.release(cidr);
                    }
                    return Some(Err(error));
                }
            }
        }
        self.pending.insert(uid, allocated.clone());
        Some(Ok(allocated))
    }
}

fn lock(allocator: &Mutex<Allocator>) -> std::sync::MutexGuard<'_, Allocator> {
    allocator.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Runs the controller until the context is cancelled.
pub async fn run(ctx: Arc<Context>) -> Result<()> {
    if !ctx.options.allocate_node_cidrs {
        tracing::info!("--allocate-node-cidrs is false: nodeipam does nothing");
        ctx.token.cancelled().await;
        return Ok(());
    }
    let allocator = Arc::new(Mutex::new(Allocator::new(
        &ctx.options.cluster_cidr,
        ctx.options.node_cidr_mask_size,
    )?));
    let informer = ctx.informers.nodes();
    let changes = informer.subscribe();
    informer.wait_ready().await?;
    let nodes = informer.store();
    let queue = WorkQueue::<String>::new();
    {
        let mut allocator = lock(&allocator);
        for node in nodes.state() {
            for cidr in allocator.occupy(&node) {
                tracing::warn!(node = %node.name_any(), cidr, "node pod CIDR conflicts or lies outside --cluster-cidr");
            }
            queue.add(node.name_any());
        }
    }
    let enqueue_all = resync_each(&queue, &nodes, |node| [node.name_any()]);
    let released = allocator.clone();
    let client = ctx.client.clone();
    let recorder = ctx.recorder("node-ipam-controller");
    EventForwarder::new(&queue, enqueue_all)
        .watch(changes, move |change| match change {
            Change::Applied(node) => Forward::Keys(Some(node.name_any())),
            Change::Deleted(node) => {
                lock(&released).release(&node);
                Forward::Nothing
            }
            Change::Resynced => Forward::ResyncAll,
        })
        // One worker: allocations are serialized anyway.
        .run_workers(NAME, 1, &ctx.token, move |name: String| {
            let (client, nodes, allocator, recorder) =
                (client.clone(), nodes.clone(), allocator.clone(), recorder.clone());
            async move { sync(&client, &nodes, &allocator, &recorder, &name).await }
        })
        .await;
    Ok(())
}

async fn sync(
    client: &kube::Client,
    nodes: &Store<Node>,
    allocator: &Mutex<Allocator>,
    recorder: &EventRecorder,
    name: &str,
) -> Result<Option<Duration>> {
    let Some(node) = util::get(nodes, name) else {
        return Ok(None);
    };
    let decision = lock(allocator).decide(&node);
    let cidrs = match decision {
        None => return Ok(None),
        Some(Ok(cidrs)) => cidrs,
        Some(Err(error)) => {
            recorder
                .publish(
                    node.as_ref(),
                    true,
                    "CIDRNotAvailable",
                    format!("Node {name} status is now: CIDRNotAvailable"),
                )
                .await;
            tracing::warn!(node = name, %error, "cannot allocate a pod CIDR");
            return Ok(Some(Duration::from_secs(30)));
        }
    };
    let api: Api<Node> = Api::all(client.clone());
    let patch = serde_json::json!({"spec": {"podCIDR": cidrs[0], "podCIDRs": cidrs}});
    match api.patch(name, &PatchParams::default(), &Patch::Merge(&patch)).await {
        Ok(_) => {
            tracing::info!(node = name, ?cidrs, "allocated pod CIDRs");
            Ok(None)
        }
        Err(error) if is_not_found(&error) => {
            lock(allocator).release(&node);
            Ok(None)
        }
        Err(error) => Err(Error::api("set pod CIDR of", "Node", name, error)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::NodeSpec;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn node(name: &str, cidr: Option<&str>) -> Node {
        Node {
            metadata: ObjectMeta {
                name: Some(name.into()),
                uid: Some(format!("uid-{name}")),
                ..Default::default()
            },
            spec: Some(NodeSpec {
                pod_cidr: cidr.map(str::to_string),
                pod_cidrs: cidr.map(|c| vec![c.to_string()]),
                ..Default::default()
            }),
            status: None,
        }
    }

    #[test]
    fn nodes_get_distinct_cidrs_rebuilt_from_existing_nodes() {
        let mut allocator = Allocator::new("10.244.0.0/16", 24).unwrap();
        assert!(allocator.occupy(&node("old", Some("10.244.0.0/24"))).is_empty());
        assert_eq!(
            allocator.occupy(&node("dup", Some("10.244.0.0/24"))),
            Vec::<String>::new(),
            "occupying twice is idempotent per block"
        );
        assert_eq!(allocator.decide(&node("old", Some("10.244.0.0/24"))), None);
        let first = allocator.decide(&node("a", None)).unwrap().unwrap();
        assert_eq!(first, vec!["10.244.1.0/24"]);
        // The cache still shows `a` without a CIDR: the same block again, not a new one.
        assert_eq!(allocator.decide(&node("a", None)).unwrap().unwrap(), first);
        assert_eq!(
            allocator.decide(&node("b", None)).unwrap().unwrap(),
            vec!["10.244.2.0/24"]
        );
        // `a` is deleted: its block is free again (after the others, round-robin).
        allocator.release(&node("a", None));
        assert_eq!(
            allocator.decide(&node("c", None)).unwrap().unwrap(),
            vec!["10.244.3.0/24"]
        );
        assert!(Allocator::new("nope", 24).is_err());
        assert!(Allocator::new("10.0.0.0/8,10.1.0.0/16", 24).is_err());
    }

    #[test]
    fn dual_stack_gets_one_block_per_family() {
        let mut allocator = Allocator::new("10.244.0.0/16,fd00:10::/56", 24).unwrap();
        assert_eq!(
            allocator.decide(&node("a", None)).unwrap().unwrap(),
            vec!["10.244.0.0/24", "fd00:10::/64"]
        );
        let mut tiny = Allocator::new("10.0.0.0/24", 24).unwrap();
        assert!(tiny.decide(&node("a", None)).unwrap().is_ok());
        assert_eq!(tiny.decide(&node("b", None)), Some(Err(CidrError::Full)));
    }
}
