//! `NodeNetwork`: the bridge, per-pod veth pairs and the IPAM of one node.

use std::fs::File;
use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::AsRawFd;
use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use futures::TryStreamExt;
use netlink_packet_route::link::{InfoData, InfoVeth, LinkAttribute, LinkFlags};
use rtnetlink::{Handle, LinkBridge, LinkMessageBuilder, LinkUnspec, LinkVeth, RouteMessageBuilder};

use crate::ipam::Ipam;
use crate::netns::{AbortOnDrop, connect_in};
use crate::reaper::Reaper;
use crate::{Error, Ipv4Cidr, NetworkConfig, PodNetwork};

/// Name of the pod side of every veth pair.
const POD_IFNAME: &str = "eth0";
/// Linux gives the loopback device index 1 in every network namespace.
const LOOPBACK_INDEX: u32 = 1;
/// Longest interface name Linux accepts (IFNAMSIZ - 1).
const MAX_IFNAME: usize = 15;

/// The pod network of one node. Cheap to share: all methods take `&self` and may run
/// concurrently from several tasks.
#[derive(Debug)]
pub struct NodeNetwork {
    config: NetworkConfig,
    handle: Handle,
    bridge_index: u32,
    gateway: Ipv4Addr,
    ipam: Mutex<Ipam>,
    reaper: Reaper,
    /// The netlink connection task; it does not end by itself when the handle is dropped.
    _connection: AbortOnDrop,
}

/// Host-side veth name of a pod: "veth" and 11 hex digits of a stable hash of the pod id
/// (15 bytes, the kernel's limit), so it can be found again after a restart.
pub fn host_veth_name(pod_id: &str) -> String {
    // FNV-1a, 64 bit: stable across Rust versions, unlike `DefaultHasher`.
    let hash = pod_id.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    format!("veth{:011x}", hash & 0xfff_ffff_ffff)
}

impl NodeNetwork {
    /// Ensures the bridge exists with the gateway address (first host of `pod_cidr`) and is
    /// up, sets `net.ipv4.ip_forward=1` and loads the IPAM state from `state_dir`.
    pub async fn new(config: NetworkConfig) -> Result<Self, Error> {
        if config.bridge.is_empty() || config.bridge.len() > MAX_IFNAME || config.bridge.contains(['/', ' ', '\0']) {
            return Err(Error::Config(format!(
                "bridge name {:?} is not a valid interface name",
                config.bridge
            )));
        }
        std::fs::create_dir_all(&config.state_dir).map_err(|source| Error::Io {
            context: format!("creating {}", config.state_dir.display()),
            source,
        })?;
        let ipam = Ipam::load(&config.state_dir, config.pod_cidr)?;
        let gateway = ipam.gateway();

        let (connection, handle, _unsolicited) = rtnetlink::new_connection().map_err(|source| Error::Io {
            context: "opening a netlink socket".to_string(),
            source,
        })?;
        // Stops the connection task when `new` fails or is cancelled, or with `self`.
        let connection = AbortOnDrop(tokio::spawn(connection));

        let bridge_index = ensure_bridge(&handle, &config, gateway).await?;
        let reaper = Reaper::start()?;
        reap_orphans(&handle, bridge_index, &reaper).await?;
        // Written from the calling thread on purpose: /proc/sys/net shows the network
        // namespace of the thread that opens it.
        std::fs::write("/proc/sys/net/ipv4/ip_forward", b"1").map_err(|source| Error::Io {
            context: "enabling net.ipv4.ip_forward".to_string(),
            source,
        })?;
        Ok(Self {
            config,
            handle,
            bridge_index,
            gateway,
            ipam: Mutex::new(ipam),
            reaper,
            _connection: connection,
        })
    }

    /// The configuration this network was built from.
    pub fn config(&self) -> &NetworkConfig {
        &self.config
    }

    /// The gateway address (on the bridge).
    pub fn gateway(&self) -> Ipv4Addr {
        self.gateway
    }

    fn ipam(&self) -> MutexGuard<'_, Ipam> {
        // A panic while holding the lock cannot leave the IPAM half-changed (every change
        // is undone on error), so a poisoned lock is still usable.
        self.ipam.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Connects the pod whose network namespace is `netns` (e.g. `/proc/<pid>/ns/net`).
    /// Idempotent: the same `pod_id` gets the same address again, also after a restart; an
    /// existing veth pair of the pod is replaced.
    pub async fn setup_pod(&self, pod_id: &str, netns: &Path) -> Result<PodNetwork, Error> {
        let (ip, new) = self.ipam().allocate(pod_id)?;
        let host_veth = host_veth_name(pod_id);
        match self.connect_pod(&host_veth, ip, netns).await {
            Ok(()) => Ok(PodNetwork {
                ip,
                prefix_len: self.config.pod_cidr.prefix_len(),
                gateway: self.gateway,
                host_veth,
            }),
            Err(e) => {
                if let Err(del) = self.delete_link(&host_veth).await {
                    tracing::warn!(pod_id, %host_veth, error = %del, "cleaning up a failed pod setup");
                }
                if new && let Err(rel) = self.ipam().release(pod_id) {
                    tracing::warn!(pod_id, error = %rel, "releasing the address of a failed pod setup");
                }
                Err(e)
            }
        }
    }

    async fn connect_pod(&self, host_veth: &str, ip: Ipv4Addr, netns: &Path) -> Result<(), Error> {
        let ns_file = File::open(netns).map_err(|source| Error::Io {
            context: format!("opening network namespace {}", netns.display()),
            source,
        })?;
        // The veth pair and the netlink socket inside the pod are made at the same time.
        let (created, pod) = tokio::join!(self.create_veth(host_veth, &ns_file), connect_in(netns));
        let pod_connection = pod?;
        let pod = &pod_connection.handle;
        if let Err(e) = created {
            if errno(&e) != Some(libc_errno(nix::errno::Errno::EEXIST)) {
                return Err(netlink(format!("creating veth {host_veth}"), e));
            }
            // A pair from an earlier setup of this pod: start over.
            self.delete_link(host_veth).await?;
            self.create_veth(host_veth, &ns_file)
                .await
                .map_err(|e| netlink(format!("creating veth {host_veth}"), e))?;
        }
        drop(ns_file);

        let prefix_len = self.config.pod_cidr.prefix_len();
        let gateway = self.gateway;
        let lo_up = async {
            pod.link()
                .set(LinkUnspec::new_with_index(LOOPBACK_INDEX).up().build())
                .execute()
                .await
                .map_err(|e| netlink("setting lo up in the pod", e))
        };
        let eth0 = async {
            let index = link_index(pod, POD_IFNAME).await?;
            // The peer cannot be created up (the kernel answers ENOTCONN).
            pod.link()
                .set(LinkUnspec::new_with_index(index).up().build())
                .execute()
                .await
                .map_err(|e| netlink(format!("setting {POD_IFNAME} up in the pod"), e))?;
            pod.address()
                .add(index, IpAddr::V4(ip), prefix_len)
                .replace()
                .execute()
                .await
                .map_err(|e| netlink(format!("adding {ip}/{prefix_len} to {POD_IFNAME}"), e))?;
            let route = RouteMessageBuilder::<Ipv4Addr>::new()
                .gateway(gateway)
                .output_interface(index)
                .build();
            pod.route()
                .add(route)
                .replace()
                .execute()
                .await
                .map_err(|e| netlink(format!("adding the default route via {gateway}"), e))
        };
        let (lo, eth0) = tokio::join!(lo_up, eth0);
        lo.and(eth0)
    }

    /// One request: the host side (up, a port of the bridge) and the pod side (`eth0`,
    /// created directly in the pod's namespace).
    async fn create_veth(&self, host_veth: &str, ns_file: &File) -> Result<(), rtnetlink::Error> {
        let mut peer = LinkMessageBuilder::<LinkUnspec>::new()
            .name(POD_IFNAME)
            .setns_by_fd(ns_file.as_raw_fd());
        let mut host = LinkVeth::new(host_veth, POD_IFNAME);
        if let Some(mtu) = self.config.mtu {
            peer = peer.mtu(mtu);
            host = host.mtu(mtu);
        }
        let host = host
            .set_info_data(InfoData::Veth(InfoVeth::Peer(peer.build())))
            .controller(self.bridge_index)
            .up();
        self.handle.link().add(host.build()).execute().await
    }

    /// Deletes a link of the node namespace by name; a missing link is fine.
    async fn delete_link(&self, name: &str) -> Result<(), Error> {
        let message = LinkUnspec::new_with_name(name).build();
        match self.handle.link().del_with_message(message).execute().await {
            Ok(()) => Ok(()),
            Err(e) if errno(&e) == Some(libc_errno(nix::errno::Errno::ENODEV)) => Ok(()),
            Err(e) => Err(netlink(format!("deleting {name}"), e)),
        }
    }

    /// Disconnects the pod and releases its address. Idempotent.
    ///
    /// The host veth is taken down, which cuts the pod off the bridge at once, and is then
    /// deleted (its peer with it) in the background: the kernel needs an RCU grace period to
    /// unregister a device. [`NodeNetwork::settle`] waits for those deletions.
    pub async fn teardown_pod(&self, pod_id: &str) -> Result<(), Error> {
        let name = host_veth_name(pod_id);
        match link_index(&self.handle, &name).await {
            Ok(index) => {
                let down = LinkUnspec::new_with_index(index).down().build();
                match self.handle.link().set(down).execute().await {
                    Ok(()) => {}
                    Err(e) if errno(&e) == Some(libc_errno(nix::errno::Errno::ENODEV)) => {}
                    Err(e) => return Err(netlink(format!("setting {name} down"), e)),
                }
                self.reaper.delete(index, name);
            }
            Err(Error::LinkNotFound(_)) => {}
            Err(e) => return Err(e),
        }
        self.ipam().release(pod_id)?;
        Ok(())
    }

    /// Waits until the veth deletions of earlier [`NodeNetwork::teardown_pod`] calls are done.
    pub async fn settle(&self) {
        self.reaper.flush().await;
    }

    /// The address held by `pod_id`, if any.
    pub fn pod_ip(&self, pod_id: &str) -> Option<Ipv4Addr> {
        self.ipam().get(pod_id)
    }

    /// Pods that hold an address, sorted by pod id (so the kubelet can release orphans).
    pub fn allocated(&self) -> Vec<(String, Ipv4Addr)> {
        self.ipam().allocated()
    }

    /// host-gw: makes the main routing table hold exactly `routes` (another node's podCIDR
    /// via that node's InternalIP) among the routes this library owns (marked with
    /// [`crate::ROUTE_PROTOCOL`]). Foreign routes are never touched; a foreign route to the
    /// same destination makes that one route fail. A route to this node's own podCIDR is
    /// skipped. Every route is tried; the first error is returned.
    pub async fn sync_routes(&self, routes: &[(Ipv4Cidr, Ipv4Addr)]) -> Result<(), Error> {
        crate::routes::sync(&self.handle, self.config.pod_cidr, routes).await
    }
}

/// Queues the deletion of host veths left over by a teardown whose background deletion did
/// not finish (the process stopped): ports of the bridge that are administratively down.
/// Setup always leaves a port up, so these belong to torn-down pods.
async fn reap_orphans(handle: &Handle, bridge_index: u32, reaper: &Reaper) -> Result<(), Error> {
    let mut links = handle.link().get().execute();
    while let Some(link) = links.try_next().await.map_err(|e| netlink("listing links", e))? {
        let mut port_of_bridge = false;
        let mut name = String::new();
        for attr in &link.attributes {
            match attr {
                LinkAttribute::Controller(index) => port_of_bridge = *index == bridge_index,
                LinkAttribute::IfName(n) => name.clone_from(n),
                _ => {}
            }
        }
        if port_of_bridge && !link.header.flags.contains(LinkFlags::Up) && name.starts_with("veth") {
            tracing::info!(%name, "deleting the host veth of a torn-down pod");
            reaper.delete(link.header.index, name);
        }
    }
    Ok(())
}

async fn ensure_bridge(handle: &Handle, config: &NetworkConfig, gateway: Ipv4Addr) -> Result<u32, Error> {
    let name = &config.bridge;
    let index = match link_index(handle, name).await {
        Ok(index) => {
            handle
                .link()
                .set(LinkUnspec::new_with_index(index).up().build())
                .execute()
                .await
                .map_err(|e| netlink(format!("setting {name} up"), e))?;
            index
        }
        Err(Error::LinkNotFound(_)) => {
            // A fixed MAC derived from the gateway: otherwise the bridge takes the lowest
            // MAC of its ports, and it changes as pods come and go.
            let o = gateway.octets();
            let mut bridge = LinkBridge::new(name).address(vec![0x0a, 0x58, o[0], o[1], o[2], o[3]]);
            if let Some(mtu) = config.mtu {
                bridge = bridge.mtu(mtu);
            }
            match handle.link().add(bridge.build()).execute().await {
                Ok(()) => {}
                // Created concurrently by someone else: fine.
                Err(e) if errno(&e) == Some(libc_errno(nix::errno::Errno::EEXIST)) => {}
                Err(e) => return Err(netlink(format!("creating bridge {name}"), e)),
            }
            link_index(handle, name).await?
        }
        Err(e) => return Err(e),
    };
    handle
        .address()
        .add(index, IpAddr::V4(gateway), config.pod_cidr.prefix_len())
        .replace()
        .execute()
        .await
        .map_err(|e| netlink(format!("adding {gateway} to {name}"), e))?;
    Ok(index)
}

/// Index of the link called `name`, or `Error::LinkNotFound`.
pub(crate) async fn link_index(handle: &Handle, name: &str) -> Result<u32, Error> {
    let mut links = handle.link().get().match_name(name).execute();
    match links.try_next().await {
        Ok(Some(link)) => Ok(link.header.index),
        Ok(None) => Err(Error::LinkNotFound(name.to_string())),
        Err(e) if errno(&e) == Some(libc_errno(nix::errno::Errno::ENODEV)) => {
            Err(Error::LinkNotFound(name.to_string()))
        }
        Err(e) => Err(netlink(format!("looking up {name}"), e)),
    }
}

pub(crate) fn netlink(context: impl Into<String>, source: rtnetlink::Error) -> Error {
    Error::Netlink {
        context: context.into(),
        source,
    }
}

/// The errno of a netlink error answer (positive), if that is what `e` is.
pub(crate) fn errno(e: &rtnetlink::Error) -> Option<i32> {
    match e {
        rtnetlink::Error::NetlinkError(msg) => msg.code.map(|c| c.get().saturating_abs()),
        _ => None,
    }
}

pub(crate) fn libc_errno(e: nix::errno::Errno) -> i32 {
    e as i32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_veth_names_are_stable_and_short() {
        let a = host_veth_name("default/nginx-abc");
        assert_eq!(a, host_veth_name("default/nginx-abc"));
        assert_ne!(a, host_veth_name("default/nginx-abd"));
        assert_eq!(a.len(), 15);
        assert!(a.starts_with("veth"));
        assert_eq!(host_veth_name("").len(), 15);
        assert_eq!(host_veth_name(&"x".repeat(10_000)).len(), 15);
    }
}
