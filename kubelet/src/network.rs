//! The pod network as the kubelet runs it: waits for the node's pod CIDR, then sets up the
//! node's bridge, gives each pod a veth and an address, and keeps host-gw routes to every
//! other node's pod CIDR in step with the Node objects.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Node;
use kube::Api;
use kube::runtime::{WatchStreamExt, reflector, watcher};
use tokio_util::sync::CancellationToken;

/// The node's pod networking: off (`--pod-network none`) or a bridge network that becomes
/// ready once the pod CIDR is known.
pub struct PodNetworking {
    enabled: bool,
    bridge: String,
    state_dir: PathBuf,
    node: OnceLock<Arc<podnet::NodeNetwork>>,
    host_ports: crate::hostports::HostPorts,
    /// Flips to true once the network is set up (the heartbeat posts Ready at once).
    set_up: tokio::sync::watch::Sender<bool>,
}

impl PodNetworking {
    pub fn new(enabled: bool, bridge: String, root_dir: &Path) -> PodNetworking {
        PodNetworking {
            enabled,
            bridge,
            state_dir: root_dir.join("network"),
            node: OnceLock::new(),
            host_ports: Default::default(),
            set_up: tokio::sync::watch::Sender::new(false),
        }
    }

    /// Changes when the network becomes ready.
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<bool> {
        self.set_up.subscribe()
    }

    /// Whether pods may start: always with no pod network, else once the bridge is set up.
    /// The error is upstream's wording for the node's Ready condition and pod events.
    pub fn ready(&self) -> Result<(), String> {
        if !self.enabled || self.node.get().is_some() {
            return Ok(());
        }
        Err(
            "container runtime network not ready: NetworkReady=false reason:NetworkPluginNotReady \
             message:Network plugin returns error: the node has no pod CIDR yet"
                .to_string(),
        )
    }

    /// Gives the pod whose network namespace is `netns` its interface and address; None with
    /// no pod network.
    pub async fn setup_pod(&self, uid: &str, netns: &Path) -> Result<Option<Ipv4Addr>, String> {
        if !self.enabled {
            return Ok(None);
        }
        let node = self.node.get().ok_or_else(|| self.ready().unwrap_err())?;
        let network = node.setup_pod(uid, netns).await.map_err(|e| e.to_string())?;
        Ok(Some(network.ip))
    }

    /// Keeps the pod's hostPort mappings (to `pod_ip`) in the node's NAT rules.
    pub async fn sync_host_ports(&self, uid: &str, pod: &k8s_openapi::api::core::v1::Pod, pod_ip: &str) {
        if !self.enabled || self.node.get().is_none() {
            return;
        }
        let mappings = crate::hostports::mappings(pod, pod_ip);
        if let Err(error) = self.host_ports.set(uid, mappings).await {
            tracing::warn!(%error, uid, "programming hostPort mappings");
        }
    }

    /// Releases the pod's address (its veth goes with its namespace, or is deleted here) and
    /// its hostPort mappings.
    pub async fn teardown_pod(&self, uid: &str) {
        if self.enabled
            && self.node.get().is_some()
            && let Err(error) = self.host_ports.set(uid, Vec::new()).await
        {
            tracing::warn!(%error, uid, "removing hostPort mappings");
        }
        if let Some(node) = self.node.get()
            && let Err(error) = node.teardown_pod(uid).await
        {
            tracing::warn!(%error, uid, "tearing down a pod's network");
        }
    }

    /// The pod's address, when it holds one.
    pub fn pod_ip(&self, uid: &str) -> Option<Ipv4Addr> {
        self.node.get().and_then(|node| node.pod_ip(uid))
    }

    /// Watches the Nodes: sets the network up once this node's pod CIDR is known (or from
    /// `flag_cidr`), then keeps routes to the other nodes' pod CIDRs. `is_live(uid)` tells which
    /// recorded addresses still belong to a sandbox; the others are released at set-up.
    pub async fn run(
        self: Arc<Self>,
        client: kube::Client,
        node_name: String,
        flag_cidr: Option<String>,
        is_live: impl Fn(&str) -> bool + Send + 'static,
        cancel: CancellationToken,
    ) {
        if !self.enabled {
            return;
        }
        let (store, writer) = reflector::store::<Node>();
        let stream = reflector(writer, watcher(Api::<Node>::all(client), watcher::Config::default()))
            .default_backoff()
            .touched_objects();
        futures::pin_mut!(stream);
        let mut is_live = Some(is_live);
        let mut last_routes = None;
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return,
                event = stream.next() => match event {
                    None => return,
                    Some(Err(error)) => {
                        tracing::debug!(%error, "watching nodes");
                        continue;
                    }
                    Some(Ok(_)) => {}
                },
            }
            let nodes = store.state();
            if self.node.get().is_none() {
                let own = nodes
                    .iter()
                    .find(|n| n.metadata.name.as_deref() == Some(node_name.as_str()));
                let Some(cidr) = own.and_then(|n| pod_cidr(n)).or_else(|| flag_cidr.clone()) else {
                    continue;
                };
                match self.set_up(&cidr).await {
                    Ok(node) => {
                        if let Some(is_live) = is_live.take() {
                            for (uid, _) in node.allocated() {
                                if !is_live(&uid) {
                                    let _ = node.teardown_pod(&uid).await;
                                }
                            }
                        }
                        tracing::info!(cidr, bridge = %self.bridge, "pod network ready");
                    }
                    Err(error) => {
                        tracing::error!(%error, cidr, "setting up the pod network; retrying");
                        tokio::time::sleep(Duration::from_secs(2)).await;
                        continue;
                    }
                }
            }
            let routes = routes_to_others(&nodes, &node_name);
            if last_routes.as_ref() != Some(&routes)
                && let Some(node) = self.node.get()
            {
                let wanted: Vec<(podnet::Ipv4Cidr, Ipv4Addr)> = routes
                    .values()
                    .filter_map(|(cidr, via)| Some((cidr.parse().ok()?, *via)))
                    .collect();
                match node.sync_routes(&wanted).await {
                    Ok(()) => last_routes = Some(routes),
                    Err(error) => tracing::warn!(%error, "programming routes to other nodes"),
                }
            }
        }
    }

    async fn set_up(&self, cidr: &str) -> Result<Arc<podnet::NodeNetwork>, String> {
        let pod_cidr = cidr.parse().map_err(|e| format!("pod CIDR {cidr:?}: {e}"))?;
        let node = podnet::NodeNetwork::new(podnet::NetworkConfig {
            bridge: self.bridge.clone(),
            pod_cidr,
            state_dir: self.state_dir.clone(),
            mtu: None,
        })
        .await
        .map_err(|e| e.to_string())?;
        let node = Arc::new(node);
        // Only `run` sets the network up, once.
        let _ = self.node.set(node.clone());
        self.set_up.send_replace(true);
        Ok(node)
    }
}

/// The node's IPv4 pod CIDR.
fn pod_cidr(node: &Node) -> Option<String> {
    let spec = node.spec.as_ref()?;
    spec.pod_cidrs
        .iter()
        .flatten()
        .chain(spec.pod_cidr.iter())
        .find(|cidr| !cidr.contains(':'))
        .cloned()
}

/// Every other node's pod CIDR with the InternalIP that leads to it, by node name.
fn routes_to_others(nodes: &[Arc<Node>], own: &str) -> BTreeMap<String, (String, Ipv4Addr)> {
    nodes
        .iter()
        .filter(|n| n.metadata.name.as_deref() != Some(own))
        .filter_map(|n| {
            let cidr = pod_cidr(n)?;
            let via = n
                .status
                .as_ref()?
                .addresses
                .iter()
                .flatten()
                .filter(|a| a.type_ == "InternalIP")
                .find_map(|a| a.address.parse::<Ipv4Addr>().ok())?;
            Some((n.metadata.name.clone()?, (cidr, via)))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{NodeAddress, NodeSpec, NodeStatus};
    use kube::api::ObjectMeta;

    fn node(name: &str, cidr: Option<&str>, ip: Option<&str>) -> Arc<Node> {
        Arc::new(Node {
            metadata: ObjectMeta {
                name: Some(name.into()),
                ..Default::default()
            },
            spec: Some(NodeSpec {
                pod_cidr: cidr.map(str::to_string),
                pod_cidrs: cidr.map(|c| vec!["fd00::/64".to_string(), c.to_string()]),
                ..Default::default()
            }),
            status: Some(NodeStatus {
                addresses: ip.map(|ip| {
                    vec![
                        NodeAddress {
                            type_: "Hostname".into(),
                            address: name.into(),
                        },
                        NodeAddress {
                            type_: "InternalIP".into(),
                            address: ip.into(),
                        },
                    ]
                }),
                ..Default::default()
            }),
        })
    }

    #[test]
    fn routes_lead_to_other_nodes_with_a_cidr_and_an_address() {
        let nodes = vec![
            node("a", Some("10.244.0.0/24"), Some("10.0.0.1")),
            node("b", Some("10.244.1.0/24"), Some("10.0.0.2")),
            node("c", None, Some("10.0.0.3")),
            node("d", Some("10.244.3.0/24"), None),
        ];
        let routes = routes_to_others(&nodes, "a");
        assert_eq!(
            routes,
            BTreeMap::from([(
                "b".to_string(),
                ("10.244.1.0/24".to_string(), Ipv4Addr::new(10, 0, 0, 2))
            )])
        );
        assert_eq!(pod_cidr(&nodes[0]).as_deref(), Some("10.244.0.0/24"));
    }

    #[test]
    fn without_a_pod_network_pods_never_wait() {
        let dir = tempfile::tempdir().unwrap();
        assert!(PodNetworking::new(false, "kaji0".into(), dir.path()).ready().is_ok());
        let waiting = PodNetworking::new(true, "kaji0".into(), dir.path()).ready();
        assert!(waiting.unwrap_err().contains("NetworkPluginNotReady"));
    }
}
