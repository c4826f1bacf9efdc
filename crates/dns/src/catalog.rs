//! The in-memory catalog the DNS answers come from: Services and EndpointSlices, indexed by name.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::sync::{Arc, RwLock};

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;

/// Label an EndpointSlice carries to name the Service it belongs to.
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

/// What DNS knows about the Services of a cluster, built from API objects.
///
/// Everything is stored lowercased and already validated, so answering never has to parse API
/// objects again.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    /// (namespace, name) → service.
    pub(crate) services: BTreeMap<(String, String), ServiceEntry>,
    /// Namespaces holding at least one Service.
    pub(crate) namespaces: BTreeSet<String>,
    /// IP → owner names relative to the cluster domain (`web.default.svc`, `pod-0.db.default.svc`).
    pub(crate) reverse: BTreeMap<IpAddr, Vec<String>>,
    /// SOA serial.
    pub(crate) serial: u32,
}

#[derive(Debug, Clone)]
pub(crate) enum ServiceKind {
    /// A virtual IP per family (may be empty for a Service without an allocated IP yet).
    ClusterIp(Vec<IpAddr>),
    /// `clusterIP: None`: the ready endpoints are the answer.
    Headless,
    /// `type: ExternalName`: a CNAME to this name.
    ExternalName(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PortEntry {
    /// Lowercased port name; empty for unnamed ports.
    pub(crate) name: String,
    /// Lowercased protocol: `tcp`, `udp` or `sctp`.
    pub(crate) protocol: String,
    pub(crate) port: u16,
}

#[derive(Debug, Clone)]
pub(crate) struct EndpointEntry {
    /// The endpoint's DNS label: its hostname, or its dashed IP when it has none.
    pub(crate) label: String,
    pub(crate) ip: IpAddr,
    /// The ports of the EndpointSlice the endpoint came from.
    pub(crate) ports: Vec<PortEntry>,
}

#[derive(Debug, Clone)]
pub(crate) struct ServiceEntry {
    pub(crate) kind: ServiceKind,
    pub(crate) ports: Vec<PortEntry>,
    /// Ready endpoints; only collected for headless Services.
    pub(crate) endpoints: Vec<EndpointEntry>,
}

impl Catalog {
    /// Builds a catalog from Services and EndpointSlices (all namespaces).
    ///
    /// Objects missing a name or namespace, or with unparseable IPs, are skipped (in part) rather
    /// than rejected: DNS answers for what it can.
    pub fn new<'a>(
        services: impl IntoIterator<Item = &'a Service>,
        endpoint_slices: impl IntoIterator<Item = &'a EndpointSlice>,
    ) -> Self {
        let mut catalog = Catalog {
            serial: 1,
            ..Catalog::default()
        };
        for svc in services {
            let (Some(ns), Some(name)) = (&svc.metadata.namespace, &svc.metadata.name) else {
                continue;
            };
            let Some(spec) = &svc.spec else { continue };
            let kind = if spec.type_.as_deref() == Some("ExternalName") {
                match &spec.external_name {
                    Some(target) if !target.is_empty() => ServiceKind::ExternalName(target.clone()),
                    _ => continue,
                }
            } else if spec.cluster_ip.as_deref() == Some("None") {
                ServiceKind::Headless
            } else {
                let mut ips: Vec<IpAddr> = spec
                    .cluster_ips
                    .iter()
                    .flatten()
                    .chain(spec.cluster_ip.iter())
                    .filter_map(|ip| ip.parse().ok())
                    .collect();
                dedup(&mut ips);
                ServiceKind::ClusterIp(ips)
            };
            let ports = spec
                .ports
                .iter()
                .flatten()
                .filter_map(|p| port_entry(p.name.as_deref(), Some(p.port), p.protocol.as_deref()))
                .collect();
            let key = (ns.to_lowercase(), name.to_lowercase());
            catalog.namespaces.insert(key.0.clone());
            catalog.services.insert(
                key,
                ServiceEntry {
                    kind,
                    ports,
                    endpoints: Vec::new(),
                },
            );
        }

        for slice in endpoint_slices {
            let Some(ns) = &slice.metadata.namespace else { continue };
            let Some(svc_name) = slice
                .metadata
                .labels
                .as_ref()
                .and_then(|labels| labels.get(SERVICE_NAME_LABEL))
            else {
                continue;
            };
            let key = (ns.to_lowercase(), svc_name.to_lowercase());
            let Some(entry) = catalog.services.get_mut(&key) else {
                continue;
            };
            if !matches!(entry.kind, ServiceKind::Headless) {
                continue;
            }
            let ports: Vec<PortEntry> = slice
                .ports
                .iter()
                .flatten()
                .filter_map(|p| port_entry(p.name.as_deref(), p.port, p.protocol.as_deref()))
                .collect();
            for endpoint in slice.endpoints.iter().flatten() {
                // Upstream: a nil `ready` means ready.
                let ready = endpoint.conditions.as_ref().and_then(|c| c.ready).unwrap_or(true);
                if !ready {
                    continue;
                }
                let hostname = endpoint
                    .hostname
                    .as_deref()
                    .filter(|h| !h.is_empty())
                    .map(str::to_lowercase);
                for address in &endpoint.addresses {
                    let Ok(ip) = address.parse::<IpAddr>() else { continue };
                    let label = hostname.clone().unwrap_or_else(|| dashed_ip(ip));
                    if entry.endpoints.iter().any(|e| e.ip == ip && e.label == label) {
                        continue;
                    }
                    entry.endpoints.push(EndpointEntry {
                        label,
                        ip,
                        ports: ports.clone(),
                    });
                }
            }
        }

        for ((ns, name), entry) in &catalog.services {
            match &entry.kind {
                ServiceKind::ClusterIp(ips) => {
                    for ip in ips {
                        push_reverse(&mut catalog.reverse, *ip, format!("{name}.{ns}.svc"));
                    }
                }
                ServiceKind::Headless => {
                    for ep in &entry.endpoints {
                        let owner = format!("{}.{name}.{ns}.svc", ep.label);
                        push_reverse(&mut catalog.reverse, ep.ip, owner);
                    }
                }
                ServiceKind::ExternalName(_) => {}
            }
        }
        catalog
    }

    /// Sets the SOA serial (CoreDNS uses the time of the last change).
    pub fn with_serial(mut self, serial: u32) -> Self {
        self.serial = serial;
        self
    }

    /// Number of Services in the catalog.
    pub fn service_count(&self) -> usize {
        self.services.len()
    }
}

fn push_reverse(reverse: &mut BTreeMap<IpAddr, Vec<String>>, ip: IpAddr, owner: String) {
    let owners = reverse.entry(ip).or_default();
    if !owners.contains(&owner) {
        owners.push(owner);
    }
}

fn port_entry(name: Option<&str>, port: Option<i32>, protocol: Option<&str>) -> Option<PortEntry> {
    let port = u16::try_from(port?).ok()?;
    Some(PortEntry {
        name: name.unwrap_or_default().to_lowercase(),
        protocol: protocol.unwrap_or("TCP").to_lowercase(),
        port,
    })
}

fn dedup(ips: &mut Vec<IpAddr>) {
    let mut seen = BTreeSet::new();
    ips.retain(|ip| seen.insert(*ip));
}

/// An IP written as a DNS label, as CoreDNS does: `10.0.0.1` → `10-0-0-1`, `fd00::1` → `fd00--1`.
pub(crate) fn dashed_ip(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string().replace('.', "-"),
        IpAddr::V6(v6) => v6.to_string().replace(':', "-"),
    }
}

/// A catalog shared between the updater (reflectors) and the DNS server; readers take a cheap
/// snapshot per query. A pending catalog (not synced yet) has no snapshot.
#[derive(Debug, Clone, Default)]
pub struct SharedCatalog(Arc<RwLock<Option<Arc<Catalog>>>>);

impl SharedCatalog {
    /// Wraps an initial catalog.
    pub fn new(catalog: Catalog) -> Self {
        SharedCatalog(Arc::new(RwLock::new(Some(Arc::new(catalog)))))
    }

    /// A catalog still waiting for its first [`SharedCatalog::replace`].
    pub fn pending() -> Self {
        SharedCatalog::default()
    }

    /// The current catalog, if any.
    pub fn snapshot(&self) -> Option<Arc<Catalog>> {
        // A poisoned lock still holds a whole value: the writer only ever swaps it.
        self.0.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Replaces the catalog.
    pub fn replace(&self, catalog: Catalog) {
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = Some(Arc::new(catalog));
    }
}
