//! The backend-neutral view of the cluster that both proxy modes compute their rules from:
//! every proxied service port (ClusterIP, node port, external IPs, traffic policies, session
//! affinity) with its endpoints already categorised as upstream's `CategorizeEndpoints` does.
//!
//! [`crate::rules`] turns it into iptables chains, [`crate::nft`] into an nftables table.

use std::borrow::Borrow;
use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;

/// Default sessionAffinity ClientIP timeout, as upstream.
const DEFAULT_AFFINITY_SECONDS: i32 = 10800;

/// What the rules depend on besides the API objects.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Config {
    /// This node's name (`--hostname-override`): selects local endpoints.
    pub node_name: String,
    /// The pod CIDR of the cluster (`--cluster-cidr`): traffic to a ClusterIP from outside it
    /// is masqueraded. `None` disables that rule.
    pub cluster_cidr: Option<String>,
}

/// One endpoint of a service port.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Endpoint {
    pub ip: Ipv4Addr,
    pub port: i32,
    pub ready: bool,
    pub serving: bool,
    pub terminating: bool,
    pub node: Option<String>,
}

impl Endpoint {
    /// `ip:port`.
    pub fn address(&self) -> String {
        format!("{}:{}", self.ip, self.port)
    }
}

/// One port of a Service that gets rules, with its endpoints.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ServicePort {
    /// `namespace/name` or `namespace/name:port-name`, upstream's `ServicePortName`.
    pub name: String,
    pub namespace: String,
    pub service: String,
    /// The port's name (empty when unnamed).
    pub port_name: String,
    /// `tcp`, `udp` or `sctp`.
    pub protocol: String,
    pub cluster_ip: Ipv4Addr,
    pub port: i32,
    /// Set for NodePort and LoadBalancer services.
    pub node_port: Option<i32>,
    /// `spec.externalIPs` plus, for LoadBalancer services, the ingress IPs.
    pub external_ips: Vec<Ipv4Addr>,
    pub external_local: bool,
    pub internal_local: bool,
    /// sessionAffinity ClientIP timeout in seconds.
    pub affinity: Option<i32>,
    /// Every endpoint, sorted by `ip:port`.
    pub all: Vec<Endpoint>,
    /// Endpoints for "Cluster" policy: ready ones, or serving-terminating ones when none is.
    pub cluster: Vec<Endpoint>,
    /// The same among the endpoints on this node.
    pub local: Vec<Endpoint>,
}

impl ServicePort {
    /// Whether node ports or external/load-balancer IPs reach this port.
    pub fn has_external(&self) -> bool {
        self.node_port.is_some() || !self.external_ips.is_empty()
    }

    /// Whether the "Cluster" policy endpoints are used by some traffic.
    pub fn uses_cluster_endpoints(&self) -> bool {
        !self.internal_local || (self.has_external() && !self.external_local)
    }

    /// Whether the "Local" policy endpoints are used by some traffic.
    pub fn uses_local_endpoints(&self) -> bool {
        self.internal_local || (self.has_external() && self.external_local)
    }

    /// The endpoints ClusterIP traffic goes to.
    pub fn internal_endpoints(&self) -> &[Endpoint] {
        if self.internal_local {
            &self.local
        } else {
            &self.cluster
        }
    }

    /// The endpoints external traffic goes to.
    pub fn external_endpoints(&self) -> &[Endpoint] {
        if self.external_local {
            &self.local
        } else {
            &self.cluster
        }
    }
}

/// Upstream's endpoint categorisation: ready endpoints matching `keep`, or when there is none,
/// the serving-and-terminating ones.
fn usable(endpoints: &[Endpoint], keep: impl Fn(&Endpoint) -> bool) -> Vec<Endpoint> {
    let ready: Vec<Endpoint> = endpoints.iter().filter(|e| e.ready && keep(e)).cloned().collect();
    if !ready.is_empty() {
        return ready;
    }
    endpoints
        .iter()
        .filter(|e| e.serving && e.terminating && keep(e))
        .cloned()
        .collect()
}

/// Endpoints of one service port from the slices, deduplicated and sorted by `ip:port`.
fn endpoints_for(slices: &[&EndpointSlice], port_name: &str, protocol: &str) -> Vec<Endpoint> {
    let mut by_address: BTreeMap<String, Endpoint> = BTreeMap::new();
    for slice in slices {
        if slice.address_type != "IPv4" {
            continue;
        }
        let Some(port) = slice.ports.iter().flatten().find(|p| {
            p.name.as_deref().unwrap_or("") == port_name && p.protocol.as_deref().unwrap_or("TCP") == protocol
        }) else {
            continue;
        };
        let Some(number) = port.port.filter(|p| (1..=65535).contains(p)) else {
            continue;
        };
        for endpoint in slice.endpoints.iter().flatten() {
            let Some(ip) = endpoint.addresses.first().and_then(|a| a.parse::<Ipv4Addr>().ok()) else {
                continue;
            };
            let conditions = endpoint.conditions.as_ref();
            let ready = conditions.and_then(|c| c.ready).unwrap_or(true);
            let entry = Endpoint {
                ip,
                port: number,
                ready,
                serving: conditions.and_then(|c| c.serving).unwrap_or(ready),
                terminating: conditions.and_then(|c| c.terminating).unwrap_or(false),
                node: endpoint.node_name.clone(),
            };
            by_address.entry(entry.address()).or_insert(entry);
        }
    }
    by_address.into_values().collect()
}

/// Every proxied service port of the cluster, sorted by service (namespace, name) and then in
/// port order. Never fails: malformed objects, headless, ExternalName and IPv6 services are
/// skipped.
///
/// Generic over how the objects are held, so the proxy can pass its informer caches' `Arc`s
/// without cloning every object for each sync.
pub fn service_ports<S: Borrow<Service>, E: Borrow<EndpointSlice>>(
    services: &[S],
    slices: &[E],
    config: &Config,
) -> Vec<ServicePort> {
    let mut slices_by_service: BTreeMap<(&str, &str), Vec<&EndpointSlice>> = BTreeMap::new();
    for slice in slices.iter().map(Borrow::borrow) {
        let namespace = slice.metadata.namespace.as_deref().unwrap_or("");
        if let Some(name) = slice
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get("kubernetes.io/service-name"))
        {
            slices_by_service
                .entry((namespace, name.as_str()))
                .or_default()
                .push(slice);
        }
    }
    let mut sorted: Vec<&Service> = services.iter().map(Borrow::borrow).collect();
    sorted.sort_by(|a, b| {
        (a.metadata.namespace.as_deref(), a.metadata.name.as_deref())
            .cmp(&(b.metadata.namespace.as_deref(), b.metadata.name.as_deref()))
    });
    let mut out = Vec::new();
    for service in sorted {
        let namespace = service.metadata.namespace.as_deref().unwrap_or("");
        let Some(name) = service.metadata.name.as_deref() else {
            continue;
        };
        let service_slices = slices_by_service
            .get(&(namespace, name))
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        ports_of(&mut out, namespace, name, service, service_slices, config);
    }
    out
}

fn ports_of(
    out: &mut Vec<ServicePort>,
    namespace: &str,
    name: &str,
    service: &Service,
    slices: &[&EndpointSlice],
    config: &Config,
) {
    let Some(spec) = service.spec.as_ref() else { return };
    if spec.type_.as_deref() == Some("ExternalName") {
        return;
    }
    let Some(cluster_ip) = spec.cluster_ip.as_deref().and_then(|ip| ip.parse::<Ipv4Addr>().ok()) else {
        return; // headless ("None"), unallocated or IPv6
    };
    let affinity = (spec.session_affinity.as_deref() == Some("ClientIP")).then(|| {
        spec.session_affinity_config
            .as_ref()
            .and_then(|c| c.client_ip.as_ref())
            .and_then(|c| c.timeout_seconds)
            .unwrap_or(DEFAULT_AFFINITY_SECONDS)
    });
    let mut external_ips: Vec<Ipv4Addr> = spec
        .external_ips
        .iter()
        .flatten()
        .filter_map(|ip| ip.parse().ok())
        .collect();
    if spec.type_.as_deref() == Some("LoadBalancer") {
        let ingress = service.status.as_ref().and_then(|s| s.load_balancer.as_ref());
        external_ips.extend(
            ingress
                .and_then(|lb| lb.ingress.as_ref())
                .into_iter()
                .flatten()
                .filter_map(|i| i.ip.as_deref()?.parse::<Ipv4Addr>().ok()),
        );
    }
    let with_node_ports = matches!(spec.type_.as_deref(), Some("NodePort") | Some("LoadBalancer"));
    for port in spec.ports.iter().flatten() {
        let protocol_upper = port.protocol.as_deref().unwrap_or("TCP");
        if !matches!(protocol_upper, "TCP" | "UDP" | "SCTP") || !(1..=65535).contains(&port.port) {
            continue;
        }
        let port_name = port.name.as_deref().unwrap_or("");
        let all = endpoints_for(slices, port_name, protocol_upper);
        let cluster = usable(&all, |_| true);
        let local = usable(&all, |e| e.node.as_deref() == Some(config.node_name.as_str()));
        out.push(ServicePort {
            name: if port_name.is_empty() {
                format!("{namespace}/{name}")
            } else {
                format!("{namespace}/{name}:{port_name}")
            },
            namespace: namespace.to_string(),
            service: name.to_string(),
            port_name: port_name.to_string(),
            protocol: protocol_upper.to_ascii_lowercase(),
            cluster_ip,
            port: port.port,
            node_port: port.node_port.filter(|p| with_node_ports && (1..=65535).contains(p)),
            external_ips: external_ips.clone(),
            external_local: spec.external_traffic_policy.as_deref() == Some("Local"),
            internal_local: spec.internal_traffic_policy.as_deref() == Some("Local"),
            affinity,
            all,
            cluster,
            local,
        });
    }
}
