//! Pod network on a node: bridge, veth pairs, IPAM and host-gw routes over netlink.
//!
//! [`NodeNetwork`] owns one bridge per node whose address is the gateway (first host of the
//! node's podCIDR). Each pod gets a veth pair: the host side (named from the pod id) is a
//! port of the bridge, the other side is `eth0` inside the pod's network namespace with an
//! address from the podCIDR and a default route via the gateway. Addresses are handed out
//! by a host-local IPAM persisted under `NetworkConfig::state_dir`. [`NodeNetwork::sync_routes`]
//! keeps host-gw routes to the other nodes' podCIDRs.
//!
//! Teardown takes the pod's host veth down (which cuts the pod off at once) and deletes it
//! on a background thread, because unregistering a device waits for an RCU grace period
//! (tens of milliseconds); [`NodeNetwork::settle`] waits for those deletions, and a restart
//! deletes leftovers. Calls for one pod id must not overlap (the kubelet serialises them).
//!
//! Everything goes through netlink (rtnetlink); nothing shells out. The library needs a tokio
//! runtime with IO enabled (multi-thread or current-thread). Its node-side netlink socket lives
//! in the network namespace of the thread that calls [`NodeNetwork::new`].

mod cidr;
mod ipam;
mod netns;
mod node;
mod reaper;
mod routes;

use std::net::Ipv4Addr;
use std::path::PathBuf;

pub use cidr::Ipv4Cidr;
pub use node::{NodeNetwork, host_veth_name};
pub use routes::ROUTE_PROTOCOL;

/// How the node's pod network looks.
#[derive(Debug, Clone)]
pub struct NetworkConfig {
    /// Name of the bridge, e.g. "kaji0" (at most 15 bytes).
    pub bridge: String,
    /// The node's podCIDR (`Node.spec.podCIDR`); at most a /30.
    pub pod_cidr: Ipv4Cidr,
    /// Directory for the IPAM state file (created if missing).
    pub state_dir: PathBuf,
    /// MTU of the bridge and the veth pairs; the kernel default when `None`.
    pub mtu: Option<u32>,
}

/// What a pod got from [`NodeNetwork::setup_pod`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodNetwork {
    /// Address of the pod's `eth0`.
    pub ip: Ipv4Addr,
    pub prefix_len: u8,
    /// The bridge address, the pod's default gateway.
    pub gateway: Ipv4Addr,
    /// Name of the host side of the veth pair.
    pub host_veth: String,
}

/// Errors of this crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid CIDR {input:?}: {reason}")]
    InvalidCidr { input: String, reason: &'static str },
    #[error("invalid network configuration: {0}")]
    Config(String),
    #[error("address range {cidr} is exhausted")]
    Exhausted { cidr: Ipv4Cidr },
    #[error("{context}: {source}")]
    Netlink {
        context: String,
        #[source]
        source: rtnetlink::Error,
    },
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error("IPAM state {}: {source}", path.display())]
    State {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("link {0} not found")]
    LinkNotFound(String),
    #[error("no tokio runtime: the pod network needs one with IO enabled")]
    NoRuntime,
}
