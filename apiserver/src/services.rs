//! Service address allocation: ClusterIPs from `--service-cluster-ip-range` and NodePorts from
//! `--service-node-port-range`. Each allocation is one storage key
//! (`/registry/kaji.io/serviceips/<ip>`, `/registry/kaji.io/servicenodeports/<port>`) created
//! with create-if-absent, so two apiservers never hand out the same address, allocations
//! survive restarts, and releasing is deleting the key. (Upstream moved from one bitmap object
//! to one IPAddress object per allocation for the same reasons.)

use std::net::Ipv4Addr;
use std::sync::Arc;

use bytes::Bytes;
use serde_json::Value;
use storage::{ListRequest, Storage, StorageError};

use crate::error::{ApiError, ApiResult};

const IP_PREFIX: &str = "/registry/kaji.io/serviceips/";
const PORT_PREFIX: &str = "/registry/kaji.io/servicenodeports/";
/// Random probes before scanning the whole range for a free entry.
const RANDOM_TRIES: usize = 16;

/// An IPv4 CIDR such as 10.96.0.0/12.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cidr {
    pub base: Ipv4Addr,
    pub bits: u8,
}

impl Cidr {
    pub fn parse(s: &str) -> Result<Self, String> {
        let (ip, bits) = s
            .split_once('/')
            .ok_or_else(|| format!("invalid CIDR {s:?}: missing /"))?;
        let ip: Ipv4Addr = ip.parse().map_err(|_| format!("invalid CIDR {s:?}: bad address"))?;
        let bits: u8 = bits
            .parse()
            .ok()
            .filter(|b| *b <= 30)
            .ok_or_else(|| format!("invalid CIDR {s:?}: prefix must be 0-30"))?;
        let mask = if bits == 0 { 0 } else { u32::MAX << (32 - bits) };
        Ok(Self {
            base: Ipv4Addr::from(u32::from(ip) & mask),
            bits,
        })
    }

    fn size(&self) -> u32 {
        1u32 << (32 - self.bits)
    }

    /// Whether `ip` is a usable host address (not the network or broadcast address).
    pub fn contains_host(&self, ip: Ipv4Addr) -> bool {
        let offset = u32::from(ip).wrapping_sub(u32::from(self.base));
        offset >= 1 && offset < self.size() - 1 && u32::from(ip) >= u32::from(self.base)
    }

    /// The n-th host address (1-based).
    pub fn host(&self, n: u32) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.base) + n)
    }

    fn hosts(&self) -> u32 {
        self.size() - 2
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.base, self.bits)
    }
}

/// Parses `30000-32767`.
pub fn parse_port_range(s: &str) -> Result<(u16, u16), String> {
    let (lo, hi) = s.split_once('-').ok_or_else(|| format!("invalid port range {s:?}"))?;
    let lo: u16 = lo.trim().parse().map_err(|_| format!("invalid port range {s:?}"))?;
    let hi: u16 = hi.trim().parse().map_err(|_| format!("invalid port range {s:?}"))?;
    if lo == 0 || lo > hi {
        return Err(format!("invalid port range {s:?}"));
    }
    Ok((lo, hi))
}

/// The two allocators.
pub struct Allocators {
    storage: Arc<dyn Storage>,
    pub cluster_ip_range: Cidr,
    pub node_port_range: (u16, u16),
}

/// What went wrong allocating, worded like upstream's allocator errors.
#[derive(Debug)]
pub enum AllocError {
    NotInRange(String),
    Taken,
    Full,
    Storage(StorageError),
}

impl Allocators {
    pub fn new(storage: Arc<dyn Storage>, cluster_ip_range: Cidr, node_port_range: (u16, u16)) -> Self {
        Self {
            storage,
            cluster_ip_range,
            node_port_range,
        }
    }

    async fn claim(&self, key: String, owner: &str) -> Result<bool, AllocError> {
        match self.storage.create(&key, Bytes::from(owner.to_string())).await {
            Ok(_) => Ok(true),
            Err(StorageError::AlreadyExists(_)) => Ok(false),
            Err(other) => Err(AllocError::Storage(other)),
        }
    }

    async fn free_by_scan(
        &self,
        prefix: &str,
        candidates: impl Iterator<Item = String>,
    ) -> Result<Option<String>, AllocError> {
        let used = self
            .storage
            .list(ListRequest {
                prefix: prefix.to_string(),
                ..Default::default()
            })
            .await
            .map_err(AllocError::Storage)?;
        let used: std::collections::HashSet<String> = used
            .kvs
            .into_iter()
            .map(|kv| kv.key.trim_start_matches(prefix).to_string())
            .collect();
        Ok(candidates.into_iter().find(|c| !used.contains(c)))
    }

    /// Allocates `want`, or a free address when `None`.
    pub async fn allocate_ip(&self, want: Option<Ipv4Addr>, owner: &str) -> Result<Ipv4Addr, AllocError> {
        let range = self.cluster_ip_range;
        if let Some(ip) = want {
            if !range.contains_host(ip) {
                return Err(AllocError::NotInRange(format!(
                    "provided IP is not in the valid range. The range of valid IPs is {range}"
                )));
            }
            return if self.claim(format!("{IP_PREFIX}{ip}"), owner).await? {
                Ok(ip)
            } else {
                Err(AllocError::Taken)
            };
        }
        let hosts = range.hosts();
        for _ in 0..RANDOM_TRIES {
            let ip = range.host(1 + rand::random_range(0..hosts));
            if self.claim(format!("{IP_PREFIX}{ip}"), owner).await? {
                return Ok(ip);
            }
        }
        loop {
            let free = self
                .free_by_scan(IP_PREFIX, (1..=hosts).map(|n| range.host(n).to_string()))
                .await?;
            let Some(ip) = free.and_then(|s| s.parse::<Ipv4Addr>().ok()) else {
                return Err(AllocError::Full);
            };
            if self.claim(format!("{IP_PREFIX}{ip}"), owner).await? {
                return Ok(ip);
            }
        }
    }

    pub async fn release_ip(&self, ip: &str) {
        release(self.storage.as_ref(), format!("{IP_PREFIX}{ip}")).await;
    }

    /// Allocates node port `want`, or a free one when `None`.
    pub async fn allocate_port(&self, want: Option<u16>, owner: &str) -> Result<u16, AllocError> {
        let (lo, hi) = self.node_port_range;
        if let Some(port) = want {
            if port < lo || port > hi {
                return Err(AllocError::NotInRange(format!(
                    "provided port is not in the valid range. The range of valid ports is {lo}-{hi}"
                )));
            }
            return if self.claim(format!("{PORT_PREFIX}{port}"), owner).await? {
                Ok(port)
            } else {
                Err(AllocError::Taken)
            };
        }
        for _ in 0..RANDOM_TRIES {
            let port = rand::random_range(lo..=hi);
            if self.claim(format!("{PORT_PREFIX}{port}"), owner).await? {
                return Ok(port);
            }
        }
        loop {
            let free = self.free_by_scan(PORT_PREFIX, (lo..=hi).map(|p| p.to_string())).await?;
            let Some(port) = free.and_then(|s| s.parse::<u16>().ok()) else {
                return Err(AllocError::Full);
            };
            if self.claim(format!("{PORT_PREFIX}{port}"), owner).await? {
                return Ok(port);
            }
        }
    }

    pub async fn release_port(&self, port: u16) {
        release(self.storage.as_ref(), format!("{PORT_PREFIX}{port}")).await;
    }
}

async fn release(storage: &dyn Storage, key: String) {
    match storage.delete(&key, None).await {
        Ok(_) | Err(StorageError::NotFound(_)) => {}
        Err(error) => tracing::warn!(%key, %error, "could not release allocation; it leaks until repaired"),
    }
}

/// The addresses a Service object holds.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Held {
    pub cluster_ip: Option<String>,
    pub node_ports: Vec<u16>,
}

impl Held {
    pub fn of(service: &Value) -> Self {
        let spec = &service["spec"];
        let cluster_ip = spec["clusterIP"]
            .as_str()
            .filter(|ip| !ip.is_empty() && *ip != "None")
            .map(str::to_string);
        let node_ports = spec["ports"]
            .as_array()
            .map(|ports| {
                ports
                    .iter()
                    .filter_map(|p| p["nodePort"].as_u64())
                    .filter_map(|p| u16::try_from(p).ok())
                    .collect()
            })
            .unwrap_or_default();
        Self { cluster_ip, node_ports }
    }
}

fn wants_node_ports(service: &Value) -> bool {
    matches!(
        service["spec"]["type"].as_str(),
        Some("NodePort") | Some("LoadBalancer")
    )
}

impl Allocators {
    /// Fills in and claims the addresses `service` needs that `old` (on update) did not hold.
    /// Returns what was newly claimed, to release if the write fails. `service` is the admitted
    /// (defaulted and validated) object.
    pub async fn claim_for(&self, service: &mut Value, old: Option<&Value>, owner: &str) -> ApiResult<Held> {
        let mut claimed = Held::default();
        let result = self.claim_inner(service, old, owner, &mut claimed).await;
        if result.is_err() {
            self.release_held(&claimed).await;
        }
        result.map(|()| claimed)
    }

    async fn claim_inner(
        &self,
        service: &mut Value,
        old: Option<&Value>,
        owner: &str,
        claimed: &mut Held,
    ) -> ApiResult<()> {
        let old_held = old.map(Held::of).unwrap_or_default();
        let name = service["metadata"]["name"].as_str().unwrap_or_default().to_string();
        let invalid = |field: String, value: Value, detail: String| {
            let def = api::registry::find("", "v1", "services").expect("services are registered");
            ApiError::invalid(def, &name, &[api::FieldError::invalid(field, value, detail)])
        };
        let external_name = service["spec"]["type"].as_str() == Some("ExternalName");
        let ip = service["spec"]["clusterIP"].as_str().unwrap_or_default().to_string();
        if !external_name && ip != "None" && old_held.cluster_ip.as_deref() != Some(ip.as_str())
            || (ip.is_empty() && !external_name)
        {
            let want = if ip.is_empty() {
                None
            } else {
                Some(ip.parse::<Ipv4Addr>().map_err(|_| {
                    invalid(
                        "spec.clusterIPs[0]".into(),
                        Value::from(ip.clone()),
                        "must be a valid IP address".into(),
                    )
                })?)
            };
            match self.allocate_ip(want, owner).await {
                Ok(got) => {
                    claimed.cluster_ip = Some(got.to_string());
                    service["spec"]["clusterIP"] = Value::from(got.to_string());
                    service["spec"]["clusterIPs"] = Value::from(vec![got.to_string()]);
                }
                Err(AllocError::NotInRange(why)) => {
                    return Err(invalid(
                        "spec.clusterIPs[0]".into(),
                        Value::from(ip.clone()),
                        format!("failed to allocate IP {ip}: {why}"),
                    ));
                }
                Err(AllocError::Taken) => {
                    return Err(invalid(
                        "spec.clusterIPs".into(),
                        Value::from(vec![ip.clone()]),
                        format!("failed to allocate IP {ip}: provided IP is already allocated"),
                    ));
                }
                Err(AllocError::Full) => {
                    return Err(ApiError::internal("failed to allocate a serviceIP: range is full"));
                }
                Err(AllocError::Storage(e)) => return Err(e.into()),
            }
        }
        if wants_node_ports(service) {
            let Some(ports) = service["spec"]["ports"].as_array_mut() else {
                return Ok(());
            };
            for (i, port) in ports.iter_mut().enumerate() {
                let want = port["nodePort"]
                    .as_u64()
                    .and_then(|p| u16::try_from(p).ok())
                    .filter(|p| *p != 0);
                if let Some(p) = want
                    && old_held.node_ports.contains(&p)
                {
                    continue;
                }
                match self.allocate_port(want, owner).await {
                    Ok(got) => {
                        claimed.node_ports.push(got);
                        port["nodePort"] = Value::from(got);
                    }
                    Err(AllocError::NotInRange(why)) => {
                        return Err(invalid(
                            format!("spec.ports[{i}].nodePort"),
                            Value::from(want.unwrap_or(0)),
                            why,
                        ));
                    }
                    Err(AllocError::Taken) => {
                        return Err(invalid(
                            format!("spec.ports[{i}].nodePort"),
                            Value::from(want.unwrap_or(0)),
                            "provided port is already allocated".into(),
                        ));
                    }
                    Err(AllocError::Full) => {
                        return Err(ApiError::internal("failed to allocate a nodePort: range is full"));
                    }
                    Err(AllocError::Storage(e)) => return Err(e.into()),
                }
            }
        }
        Ok(())
    }

    pub async fn release_held(&self, held: &Held) {
        if let Some(ip) = &held.cluster_ip {
            self.release_ip(ip).await;
        }
        for port in &held.node_ports {
            self.release_port(*port).await;
        }
    }

    /// After an update is stored: releases what `old` held and `new` no longer does.
    pub async fn release_dropped(&self, old: &Value, new: &Value) {
        let (old, new) = (Held::of(old), Held::of(new));
        let dropped = Held {
            cluster_ip: old.cluster_ip.filter(|ip| new.cluster_ip.as_ref() != Some(ip)),
            node_ports: old
                .node_ports
                .into_iter()
                .filter(|p| !new.node_ports.contains(p))
                .collect(),
        };
        self.release_held(&dropped).await;
    }
}

fn needs_cluster_ip(service: &Value) -> bool {
    service["spec"]["type"].as_str() != Some("ExternalName")
}

fn is_load_balancer(service: &Value) -> bool {
    service["spec"]["type"].as_str() == Some("LoadBalancer")
}

fn needs_health_check_port(service: &Value) -> bool {
    is_load_balancer(service) && service["spec"]["externalTrafficPolicy"].as_str() == Some("Local")
}

fn externally_accessible(service: &Value) -> bool {
    wants_node_ports(service)
        || (service["spec"]["type"].as_str().unwrap_or("ClusterIP") == "ClusterIP"
            && service["spec"]["externalIPs"]
                .as_array()
                .is_some_and(|ips| !ips.is_empty()))
}

fn node_ports(service: &Value) -> Vec<Value> {
    service["spec"]["ports"]
        .as_array()
        .map(|ports| {
            ports
                .iter()
                .map(|p| p.get("nodePort").cloned().unwrap_or(Value::Null))
                .collect()
        })
        .unwrap_or_default()
}

/// Prepares a Service update as upstream does: first keep the allocated values the client
/// left out (`patchAllocatedValues`: cluster IPs, node ports of ports that still exist matched
/// by port and protocol, the health-check node port), then drop the fields that only made sense
/// for the old type when the client left them as they were (`dropTypeDependentFields`), so that
/// e.g. switching NodePort → ClusterIP with the object as read just works.
pub fn prepare_service_update(new: &mut Value, old: &Value) {
    let spec_str = |v: &Value, f: &str| v["spec"][f].clone();
    if needs_cluster_ip(old) && needs_cluster_ip(new) {
        if new["spec"]["clusterIP"].as_str().unwrap_or_default().is_empty()
            && let Some(ip) = old["spec"].get("clusterIP").cloned()
        {
            new["spec"]["clusterIP"] = ip;
        }
        if new["spec"]["clusterIPs"].as_array().is_none_or(Vec::is_empty)
            && let Some(ips) = old["spec"].get("clusterIPs").cloned()
        {
            new["spec"]["clusterIPs"] = ips;
        }
    }
    if wants_node_ports(old) && wants_node_ports(new) {
        let old_ports: Vec<Value> = old["spec"]["ports"].as_array().cloned().unwrap_or_default();
        if let Some(ports) = new["spec"]["ports"].as_array_mut() {
            for port in ports.iter_mut().filter(|p| p["nodePort"].as_u64().unwrap_or(0) == 0) {
                let protocol = port["protocol"].as_str().unwrap_or("TCP").to_string();
                if let Some(np) = old_ports
                    .iter()
                    .find(|o| o["port"] == port["port"] && o["protocol"].as_str().unwrap_or("TCP") == protocol)
                    .and_then(|o| o.get("nodePort"))
                {
                    port["nodePort"] = np.clone();
                }
            }
        }
    }
    if needs_health_check_port(old)
        && needs_health_check_port(new)
        && new["spec"]["healthCheckNodePort"].as_u64().unwrap_or(0) == 0
        && let Some(port) = old["spec"].get("healthCheckNodePort").cloned()
    {
        new["spec"]["healthCheckNodePort"] = port;
    }

    let drop = |new: &mut Value, field: &str| {
        if let Some(spec) = new["spec"].as_object_mut() {
            spec.remove(field);
        }
    };
    if needs_cluster_ip(old) && !needs_cluster_ip(new) {
        for field in ["clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy"] {
            if spec_str(new, field) == spec_str(old, field) {
                drop(new, field);
            }
        }
    }
    if wants_node_ports(old)
        && !wants_node_ports(new)
        && node_ports(new) == node_ports(old)
        && let Some(ports) = new["spec"]["ports"].as_array_mut()
    {
        for port in ports.iter_mut().filter_map(Value::as_object_mut) {
            port.remove("nodePort");
        }
    }
    if needs_health_check_port(old)
        && !needs_health_check_port(new)
        && spec_str(new, "healthCheckNodePort") == spec_str(old, "healthCheckNodePort")
    {
        drop(new, "healthCheckNodePort");
    }
    if is_load_balancer(old) && !is_load_balancer(new) {
        for field in ["allocateLoadBalancerNodePorts", "loadBalancerClass"] {
            if spec_str(new, field) == spec_str(old, field) {
                drop(new, field);
            }
        }
    }
    if externally_accessible(old)
        && !externally_accessible(new)
        && spec_str(new, "externalTrafficPolicy") == spec_str(old, "externalTrafficPolicy")
    {
        drop(new, "externalTrafficPolicy");
    }
    if needs_cluster_ip(old)
        && !needs_cluster_ip(new)
        && spec_str(new, "internalTrafficPolicy") == spec_str(old, "internalTrafficPolicy")
    {
        drop(new, "internalTrafficPolicy");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use storage::memory::MemoryStorage;

    #[test]
    fn cidr_parsing() {
        let c = Cidr::parse("10.96.0.0/12").unwrap();
        assert_eq!(c.host(1), Ipv4Addr::new(10, 96, 0, 1));
        assert!(c.contains_host(Ipv4Addr::new(10, 111, 255, 254)));
        assert!(!c.contains_host(Ipv4Addr::new(10, 111, 255, 255)));
        assert!(!c.contains_host(Ipv4Addr::new(10, 96, 0, 0)));
        assert!(!c.contains_host(Ipv4Addr::new(10, 112, 0, 1)));
        assert!(Cidr::parse("10.96.0.0").is_err());
        assert_eq!(parse_port_range("30000-32767").unwrap(), (30000, 32767));
        assert!(parse_port_range("5-1").is_err());
    }

    #[tokio::test]
    async fn allocates_every_address_once_then_reports_full() {
        let storage: Arc<dyn Storage> = Arc::new(MemoryStorage::new());
        let alloc = Allocators::new(storage, Cidr::parse("10.0.0.0/29").unwrap(), (30000, 30002));
        let mut ips = Vec::new();
        for _ in 0..6 {
            ips.push(alloc.allocate_ip(None, "x").await.unwrap());
        }
        ips.sort();
        ips.dedup();
        assert_eq!(ips.len(), 6);
        assert!(matches!(alloc.allocate_ip(None, "x").await, Err(AllocError::Full)));
        alloc.release_ip("10.0.0.3").await;
        assert_eq!(alloc.allocate_ip(None, "x").await.unwrap(), Ipv4Addr::new(10, 0, 0, 3));
        assert!(matches!(
            alloc.allocate_ip(Some(Ipv4Addr::new(10, 0, 0, 3)), "x").await,
            Err(AllocError::Taken)
        ));
        assert!(matches!(
            alloc.allocate_ip(Some(Ipv4Addr::new(10, 0, 1, 3)), "x").await,
            Err(AllocError::NotInRange(_))
        ));
        for _ in 0..3 {
            alloc.allocate_port(None, "x").await.unwrap();
        }
        assert!(matches!(alloc.allocate_port(None, "x").await, Err(AllocError::Full)));
    }

    #[test]
    fn updates_keep_allocated_values() {
        let old = json!({"spec": {"type": "NodePort", "clusterIP": "10.96.0.9", "clusterIPs": ["10.96.0.9"],
            "ports": [{"port": 80, "protocol": "TCP", "nodePort": 30080}]}});
        let mut new = json!({"spec": {"type": "NodePort", "ports": [{"port": 80, "protocol": "TCP"}, {"port": 81}]}});
        prepare_service_update(&mut new, &old);
        assert_eq!(new["spec"]["clusterIP"], "10.96.0.9");
        assert_eq!(new["spec"]["ports"][0]["nodePort"], 30080);
        assert!(new["spec"]["ports"][1].get("nodePort").is_none());
        // NodePort → ClusterIP with the object as read: node ports and the external policy go.
        let mut read = old.clone();
        read["spec"]["externalTrafficPolicy"] = json!("Cluster");
        let mut back = read.clone();
        back["spec"]["type"] = json!("ClusterIP");
        prepare_service_update(&mut back, &read);
        assert!(back["spec"]["ports"][0].get("nodePort").is_none());
        assert!(back["spec"].get("externalTrafficPolicy").is_none());
        assert_eq!(back["spec"]["clusterIP"], "10.96.0.9");
        // → ExternalName: the cluster IPs go.
        let mut external = read.clone();
        external["spec"]["type"] = json!("ExternalName");
        prepare_service_update(&mut external, &read);
        assert!(external["spec"].get("clusterIP").is_none());
    }
}
