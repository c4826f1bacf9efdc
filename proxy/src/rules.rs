//! The desired iptables rule set, computed as a pure function of Services, EndpointSlices,
//! the node name and the proxy configuration, and its rendering as `iptables-restore` input.
//!
//! Chains follow upstream kube-proxy (`KUBE-SERVICES`, `KUBE-SVC-`, `KUBE-SVL-`, `KUBE-EXT-`,
//! `KUBE-SEP-`, `KUBE-NODEPORTS`, `KUBE-MARK-MASQ`, `KUBE-POSTROUTING`, filter `KUBE-SERVICES`,
//! `KUBE-EXTERNAL-SERVICES`, `KUBE-FORWARD`) with one difference: the per-service jumps of
//! `KUBE-SERVICES` and `KUBE-NODEPORTS` live in small dispatch chains (`KUBE-SVCS-XX`, sharded
//! by the low byte of the destination IP; `KUBE-NPS-PROTO-XXX`, sharded by node port / 32), so
//! that adding or removing one service rewrites one small chain instead of a chain holding a
//! rule per service (the module docs of `proxier` say why this matters).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::net::Ipv4Addr;

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use sha2::{Digest, Sha256};

/// Mark bit set on packets that must be masqueraded (upstream `--masquerade-bit` 14).
pub const MASQ_MARK: &str = "0x4000";
/// Default sessionAffinity ClientIP timeout, as upstream.
const DEFAULT_AFFINITY_SECONDS: i32 = 10800;

pub const KUBE_SERVICES: &str = "KUBE-SERVICES";
pub const KUBE_NODEPORTS: &str = "KUBE-NODEPORTS";
pub const KUBE_MARK_MASQ: &str = "KUBE-MARK-MASQ";
pub const KUBE_POSTROUTING: &str = "KUBE-POSTROUTING";
pub const KUBE_EXTERNAL_SERVICES: &str = "KUBE-EXTERNAL-SERVICES";
pub const KUBE_FORWARD: &str = "KUBE-FORWARD";

/// Fixed chain names this proxy owns.
const OWNED_CHAINS: &[&str] = &[
    KUBE_SERVICES,
    KUBE_NODEPORTS,
    KUBE_MARK_MASQ,
    KUBE_POSTROUTING,
    KUBE_EXTERNAL_SERVICES,
    KUBE_FORWARD,
];
/// Prefixes of per-service chains this proxy owns.
const OWNED_PREFIXES: &[&str] = &[
    "KUBE-SVC-",
    "KUBE-SVL-",
    "KUBE-EXT-",
    "KUBE-SEP-",
    "KUBE-FW-",
    "KUBE-XLB-",
    "KUBE-SVCS-",
    "KUBE-NPS-",
];

/// Whether a chain name belongs to this proxy (and is removed by `--cleanup`).
pub fn is_owned_chain(name: &str) -> bool {
    OWNED_CHAINS.contains(&name) || OWNED_PREFIXES.iter().any(|prefix| name.starts_with(prefix))
}

/// What the rules depend on besides the API objects.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Config {
    /// This node's name (`--hostname-override`): selects local endpoints.
    pub node_name: String,
    /// The pod CIDR of the cluster (`--cluster-cidr`): traffic to a ClusterIP from outside it
    /// is masqueraded. `None` disables that rule.
    pub cluster_cidr: Option<String>,
}

/// The two iptables tables the proxy writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TableName {
    Nat,
    Filter,
}

impl TableName {
    pub const ALL: [TableName; 2] = [TableName::Nat, TableName::Filter];

    pub fn as_str(self) -> &'static str {
        match self {
            TableName::Nat => "nat",
            TableName::Filter => "filter",
        }
    }
}

/// One table's chains, each with its rules (the text after `-A CHAIN `), in order.
pub type Chains = BTreeMap<String, Vec<String>>;

/// The complete desired state of our chains in both tables.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RuleSet {
    pub nat: Chains,
    pub filter: Chains,
}

impl RuleSet {
    pub fn table(&self, table: TableName) -> &Chains {
        match table {
            TableName::Nat => &self.nat,
            TableName::Filter => &self.filter,
        }
    }

    fn table_mut(&mut self, table: TableName) -> &mut Chains {
        match table {
            TableName::Nat => &mut self.nat,
            TableName::Filter => &mut self.filter,
        }
    }

    fn add(&mut self, table: TableName, chain: &str, rule: String) {
        self.table_mut(table).entry(chain.to_string()).or_default().push(rule);
    }

    fn ensure(&mut self, table: TableName, chain: &str) {
        self.table_mut(table).entry(chain.to_string()).or_default();
    }

    /// Number of rules over both tables.
    pub fn rule_count(&self) -> usize {
        self.nat.values().chain(self.filter.values()).map(Vec::len).sum()
    }
}

/// A jump from a built-in chain into ours: (table, built-in chain, rule text). Inserted at the
/// top of the built-in chain, as upstream does.
pub const BUILTIN_JUMPS: &[(TableName, &str, &str)] = &[
    (
        TableName::Nat,
        "PREROUTING",
        "-m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES",
    ),
    (
        TableName::Nat,
        "OUTPUT",
        "-m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES",
    ),
    (
        TableName::Nat,
        "POSTROUTING",
        "-m comment --comment \"kubernetes postrouting rules\" -j KUBE-POSTROUTING",
    ),
    (
        TableName::Filter,
        "INPUT",
        "-m conntrack --ctstate NEW -m comment --comment \"kubernetes externally-visible service portals\" -j KUBE-EXTERNAL-SERVICES",
    ),
    (
        TableName::Filter,
        "FORWARD",
        "-m comment --comment \"kubernetes forwarding rules\" -j KUBE-FORWARD",
    ),
    (
        TableName::Filter,
        "FORWARD",
        "-m conntrack --ctstate NEW -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES",
    ),
    (
        TableName::Filter,
        "FORWARD",
        "-m conntrack --ctstate NEW -m comment --comment \"kubernetes externally-visible service portals\" -j KUBE-EXTERNAL-SERVICES",
    ),
    (
        TableName::Filter,
        "OUTPUT",
        "-m conntrack --ctstate NEW -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES",
    ),
];

/// `base32(sha256(text))[..16]`, upstream's chain-name hash.
fn hash16(text: &str) -> String {
    let digest = Sha256::digest(text.as_bytes());
    let mut encoded = base32::encode(base32::Alphabet::Rfc4648 { padding: true }, &digest);
    encoded.truncate(16);
    encoded
}

/// Upstream's `servicePortChainName` family: `PREFIX` + hash of "ns/name:port" + protocol.
pub fn service_port_chain(prefix: &str, service_port_name: &str, protocol: &str) -> String {
    format!("{prefix}{}", hash16(&format!("{service_port_name}{protocol}")))
}

/// Upstream's `servicePortEndpointChainName`.
pub fn endpoint_chain(service_port_name: &str, protocol: &str, endpoint: &str) -> String {
    format!(
        "KUBE-SEP-{}",
        hash16(&format!("{service_port_name}{protocol}{endpoint}"))
    )
}

/// Upstream's `computeProbability`: 1/n with 10 decimals.
fn probability(n: usize) -> String {
    format!("{:.10}", 1.0 / n as f64)
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Endpoint {
    ip: Ipv4Addr,
    port: i32,
    ready: bool,
    serving: bool,
    terminating: bool,
    node: Option<String>,
}

impl Endpoint {
    fn address(&self) -> String {
        format!("{}:{}", self.ip, self.port)
    }
}

/// Upstream's endpoint categorisation: ready endpoints matching `keep`, or when there is none,
/// the serving-and-terminating ones.
fn usable(endpoints: &[Endpoint], keep: impl Fn(&Endpoint) -> bool) -> Vec<&Endpoint> {
    let ready: Vec<_> = endpoints.iter().filter(|e| e.ready && keep(e)).collect();
    if !ready.is_empty() {
        return ready;
    }
    endpoints
        .iter()
        .filter(|e| e.serving && e.terminating && keep(e))
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

/// `-p tcp -m tcp --dport P` (upstream spells protocol matches this way).
fn proto_port(protocol: &str, port: i32) -> String {
    format!("-p {protocol} -m {protocol} --dport {port}")
}

/// The dispatch chain holding the jumps for destination `ip`.
pub fn services_shard(ip: Ipv4Addr) -> String {
    format!("KUBE-SVCS-{:02X}", ip.octets()[3])
}

/// The dispatch chain holding the jumps for a node port.
pub fn nodeports_shard(protocol: &str, port: i32) -> String {
    format!("KUBE-NPS-{}-{:03X}", protocol.to_ascii_uppercase(), port >> 5)
}

/// Computes our rules for the whole cluster state. Never fails: malformed objects are skipped.
pub fn compute(services: &[Service], slices: &[EndpointSlice], config: &Config) -> RuleSet {
    let mut rules = RuleSet::default();
    base_chains(&mut rules);

    let mut slices_by_service: BTreeMap<(&str, &str), Vec<&EndpointSlice>> = BTreeMap::new();
    for slice in slices {
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

    let mut sorted: Vec<&Service> = services.iter().collect();
    sorted.sort_by(|a, b| {
        (a.metadata.namespace.as_deref(), a.metadata.name.as_deref())
            .cmp(&(b.metadata.namespace.as_deref(), b.metadata.name.as_deref()))
    });
    for service in sorted {
        let namespace = service.metadata.namespace.as_deref().unwrap_or("");
        let Some(name) = service.metadata.name.as_deref() else {
            continue;
        };
        let service_slices = slices_by_service
            .get(&(namespace, name))
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        service_rules(&mut rules, namespace, name, service, service_slices, config);
    }

    finish_dispatch(&mut rules);
    rules
}

fn base_chains(rules: &mut RuleSet) {
    use TableName::{Filter, Nat};
    rules.ensure(Nat, KUBE_SERVICES);
    rules.ensure(Nat, KUBE_NODEPORTS);
    rules.add(Nat, KUBE_MARK_MASQ, format!("-j MARK --or-mark {MASQ_MARK}"));
    rules.add(
        Nat,
        KUBE_POSTROUTING,
        format!("-m mark ! --mark {MASQ_MARK}/{MASQ_MARK} -j RETURN"),
    );
    rules.add(Nat, KUBE_POSTROUTING, format!("-j MARK --xor-mark {MASQ_MARK}"));
    rules.add(
        Nat,
        KUBE_POSTROUTING,
        "-m comment --comment \"kubernetes service traffic requiring SNAT\" -j MASQUERADE --random-fully".into(),
    );
    rules.ensure(Filter, KUBE_SERVICES);
    rules.ensure(Filter, KUBE_EXTERNAL_SERVICES);
    rules.add(Filter, KUBE_FORWARD, "-m conntrack --ctstate INVALID -j DROP".into());
    rules.add(
        Filter,
        KUBE_FORWARD,
        format!(
            "-m comment --comment \"kubernetes forwarding rules\" -m mark --mark {MASQ_MARK}/{MASQ_MARK} -j ACCEPT"
        ),
    );
    rules.add(
        Filter,
        KUBE_FORWARD,
        "-m comment --comment \"kubernetes forwarding conntrack rule\" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT"
            .into(),
    );
}

/// Adds the jumps into the dispatch shards to `KUBE-SERVICES` and `KUBE-NODEPORTS`.
fn finish_dispatch(rules: &mut RuleSet) {
    let shards: Vec<String> = rules
        .nat
        .keys()
        .filter(|c| c.starts_with("KUBE-SVCS-") || c.starts_with("KUBE-NPS-"))
        .cloned()
        .collect();
    for shard in shards {
        if let Some(byte) = shard.strip_prefix("KUBE-SVCS-") {
            let Ok(byte) = u8::from_str_radix(byte, 16) else {
                continue;
            };
            rules.add(
                TableName::Nat,
                KUBE_SERVICES,
                format!("-d 0.0.0.{byte}/0.0.0.255 -j {shard}"),
            );
        } else if let Some(rest) = shard.strip_prefix("KUBE-NPS-") {
            let Some((protocol, bucket)) = rest.split_once('-') else {
                continue;
            };
            let Ok(bucket) = i32::from_str_radix(bucket, 16) else {
                continue;
            };
            let protocol = protocol.to_ascii_lowercase();
            let (low, high) = (bucket << 5, (bucket << 5) + 31);
            rules.add(
                TableName::Nat,
                KUBE_NODEPORTS,
                format!("-p {protocol} -m {protocol} --dport {low}:{high} -j {shard}"),
            );
        }
    }
    rules.add(
        TableName::Nat,
        KUBE_SERVICES,
        "-m comment --comment \"kubernetes service nodeports; NOTE: this must be the last rule in this chain\" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS".into(),
    );
}

fn service_rules(
    rules: &mut RuleSet,
    namespace: &str,
    name: &str,
    service: &Service,
    slices: &[&EndpointSlice],
    config: &Config,
) {
    use TableName::{Filter, Nat};
    let Some(spec) = service.spec.as_ref() else { return };
    if spec.type_.as_deref() == Some("ExternalName") {
        return;
    }
    let Some(cluster_ip) = spec.cluster_ip.as_deref().and_then(|ip| ip.parse::<Ipv4Addr>().ok()) else {
        return; // headless ("None"), unallocated or IPv6
    };
    let external_local = spec.external_traffic_policy.as_deref() == Some("Local");
    let internal_local = spec.internal_traffic_policy.as_deref() == Some("Local");
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
        let protocol = protocol_upper.to_ascii_lowercase();
        let port_name = port.name.as_deref().unwrap_or("");
        let svc_port_name = if port_name.is_empty() {
            format!("{namespace}/{name}")
        } else {
            format!("{namespace}/{name}:{port_name}")
        };
        let node_port = port.node_port.filter(|p| with_node_ports && (1..=65535).contains(p));
        let has_external = node_port.is_some() || !external_ips.is_empty();

        let all = endpoints_for(slices, port_name, protocol_upper);
        let cluster = usable(&all, |_| true);
        let local = usable(&all, |e| e.node.as_deref() == Some(config.node_name.as_str()));
        let svc_chain = service_port_chain("KUBE-SVC-", &svc_port_name, &protocol);
        let svl_chain = service_port_chain("KUBE-SVL-", &svc_port_name, &protocol);
        let ext_chain = service_port_chain("KUBE-EXT-", &svc_port_name, &protocol);
        let uses_cluster_chain = !internal_local || has_external;
        let uses_local_chain = internal_local || (has_external && external_local);
        let (internal_chain, internal_eps) = if internal_local {
            (&svl_chain, &local)
        } else {
            (&svc_chain, &cluster)
        };
        let external_eps = if external_local { &local } else { &cluster };
        let dest = format!("-d {cluster_ip}/32 {}", proto_port(&protocol, port.port));

        // Internal traffic: ClusterIP.
        if internal_eps.is_empty() {
            let (why, target) = if cluster.is_empty() {
                ("has no endpoints", "REJECT")
            } else {
                ("has no local endpoints", "DROP")
            };
            rules.add(
                Filter,
                KUBE_SERVICES,
                format!("-m comment --comment \"{svc_port_name} {why}\" {dest} -j {target}"),
            );
        } else {
            rules.add(
                Nat,
                &services_shard(cluster_ip),
                format!("-m comment --comment \"{svc_port_name} cluster IP\" {dest} -j {internal_chain}"),
            );
            if let Some(cidr) = &config.cluster_cidr {
                rules.add(
                    Nat,
                    internal_chain,
                    format!(
                        "-m comment --comment \"{svc_port_name} cluster IP\" {dest} ! -s {cidr} -j {KUBE_MARK_MASQ}"
                    ),
                );
            }
        }

        // External traffic: node ports, external IPs and load-balancer IPs.
        if has_external {
            if external_eps.is_empty() {
                let (why, target) = if cluster.is_empty() {
                    ("has no endpoints", "REJECT")
                } else {
                    ("has no local endpoints", "DROP")
                };
                for ip in &external_ips {
                    rules.add(
                        Filter,
                        KUBE_EXTERNAL_SERVICES,
                        format!(
                            "-m comment --comment \"{svc_port_name} {why}\" -d {ip}/32 {} -j {target}",
                            proto_port(&protocol, port.port)
                        ),
                    );
                }
                if let Some(node_port) = node_port {
                    rules.add(
                        Filter,
                        KUBE_EXTERNAL_SERVICES,
                        format!(
                            "-m comment --comment \"{svc_port_name} {why}\" -m addrtype --dst-type LOCAL {} -j {target}",
                            proto_port(&protocol, node_port)
                        ),
                    );
                }
            }
            if !cluster.is_empty() {
                ext_rules(
                    rules,
                    &ext_chain,
                    &svc_chain,
                    &svl_chain,
                    &svc_port_name,
                    external_local,
                    !local.is_empty(),
                    config,
                );
                for ip in &external_ips {
                    rules.add(
                        Nat,
                        &services_shard(*ip),
                        format!(
                            "-m comment --comment \"{svc_port_name} external IP\" -d {ip}/32 {} -j {ext_chain}",
                            proto_port(&protocol, port.port)
                        ),
                    );
                }
                if let Some(node_port) = node_port {
                    rules.add(
                        Nat,
                        &nodeports_shard(&protocol, node_port),
                        format!(
                            "-m comment --comment \"{svc_port_name}\" {} -j {ext_chain}",
                            proto_port(&protocol, node_port)
                        ),
                    );
                }
            }
        }

        // Policy chains and endpoint chains.
        let balance = |rules: &mut RuleSet, chain: &str, endpoints: &[&Endpoint], used: &mut BTreeSet<String>| {
            for endpoint in endpoints {
                let sep = endpoint_chain(&svc_port_name, &protocol, &endpoint.address());
                if let Some(seconds) = affinity {
                    rules.add(
                        Nat,
                        chain,
                        format!(
                            "-m comment --comment \"{svc_port_name} -> {}\" -m recent --name {sep} --mask 255.255.255.255 --rsource --rcheck --seconds {seconds} --reap -j {sep}",
                            endpoint.address()
                        ),
                    );
                }
                used.insert(sep);
            }
            let n = endpoints.len();
            for (i, endpoint) in endpoints.iter().enumerate() {
                let sep = endpoint_chain(&svc_port_name, &protocol, &endpoint.address());
                let statistic = if i + 1 < n {
                    format!(" -m statistic --mode random --probability {}", probability(n - i))
                } else {
                    String::new()
                };
                rules.add(
                    Nat,
                    chain,
                    format!(
                        "-m comment --comment \"{svc_port_name} -> {}\"{statistic} -j {sep}",
                        endpoint.address()
                    ),
                );
            }
        };
        let mut seps: BTreeSet<String> = BTreeSet::new();
        if uses_cluster_chain && !cluster.is_empty() {
            balance(rules, &svc_chain, &cluster, &mut seps);
        }
        if uses_local_chain && !local.is_empty() {
            balance(rules, &svl_chain, &local, &mut seps);
        }
        for endpoint in &all {
            let sep = endpoint_chain(&svc_port_name, &protocol, &endpoint.address());
            if !seps.contains(&sep) {
                continue;
            }
            rules.add(
                Nat,
                &sep,
                format!(
                    "-m comment --comment \"{svc_port_name}\" -s {}/32 -j {KUBE_MARK_MASQ}",
                    endpoint.ip
                ),
            );
            let recent = match affinity {
                Some(_) => format!(" -m recent --set --name {sep} --mask 255.255.255.255 --rsource"),
                None => String::new(),
            };
            rules.add(
                Nat,
                &sep,
                format!(
                    "-m comment --comment \"{svc_port_name}\" -p {protocol}{recent} -m {protocol} -j DNAT --to-destination {}",
                    endpoint.address()
                ),
            );
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn ext_rules(
    rules: &mut RuleSet,
    ext_chain: &str,
    svc_chain: &str,
    svl_chain: &str,
    svc_port_name: &str,
    external_local: bool,
    has_local: bool,
    config: &Config,
) {
    use TableName::Nat;
    if !external_local {
        rules.add(
            Nat,
            ext_chain,
            format!("-m comment --comment \"masquerade traffic for {svc_port_name} external destinations\" -j {KUBE_MARK_MASQ}"),
        );
        rules.add(Nat, ext_chain, format!("-j {svc_chain}"));
        return;
    }
    if let Some(cidr) = &config.cluster_cidr {
        rules.add(
            Nat,
            ext_chain,
            format!("-m comment --comment \"pod traffic for {svc_port_name} external destinations\" -s {cidr} -j {svc_chain}"),
        );
    }
    rules.add(
        Nat,
        ext_chain,
        format!("-m comment --comment \"masquerade LOCAL traffic for {svc_port_name} external destinations\" -m addrtype --src-type LOCAL -j {KUBE_MARK_MASQ}"),
    );
    rules.add(
        Nat,
        ext_chain,
        format!("-m comment --comment \"route LOCAL traffic for {svc_port_name} external destinations\" -m addrtype --src-type LOCAL -j {svc_chain}"),
    );
    if has_local {
        rules.add(Nat, ext_chain, format!("-j {svl_chain}"));
    }
}

/// Renders every chain of `rules` as `--noflush` input that declares (and so flushes) each
/// chain and appends its rules: the snapshot form used in tests and the bare benchmark.
pub fn render_full(rules: &RuleSet) -> String {
    let mut out = String::new();
    for table in TableName::ALL {
        let chains = rules.table(table);
        let _ = writeln!(out, "*{}", table.as_str());
        for chain in chains.keys() {
            let _ = writeln!(out, ":{chain} - [0:0]");
        }
        for (chain, chain_rules) in chains {
            for rule in chain_rules {
                let _ = writeln!(out, "-A {chain} {rule}");
            }
        }
        out.push_str("COMMIT\n");
    }
    out
}

/// Renders the `--noflush` input that turns `old` into `new`, touching only chains whose rules
/// differ: changed chains are redeclared (flushed) and refilled, vanished ones flushed and
/// deleted. Returns `None` when nothing changed.
pub fn render_diff(old: &RuleSet, new: &RuleSet) -> Option<String> {
    let mut out = String::new();
    for table in TableName::ALL {
        // Both maps are sorted: one merge walk instead of a tree lookup per chain (at 30 000
        // chains the lookups' cache misses cost tens of milliseconds).
        let mut changed: Vec<(&String, &Vec<String>)> = Vec::new();
        let mut deleted: Vec<&String> = Vec::new();
        let mut old_chains = old.table(table).iter().peekable();
        for (chain, rules) in new.table(table) {
            while let Some((gone, _)) = old_chains.next_if(|(o, _)| *o < chain) {
                deleted.push(gone);
            }
            match old_chains.next_if(|(o, _)| *o == chain) {
                Some((_, old_rules)) if old_rules == rules => {}
                _ => changed.push((chain, rules)),
            }
        }
        deleted.extend(old_chains.map(|(gone, _)| gone));
        if changed.is_empty() && deleted.is_empty() {
            continue;
        }
        let _ = writeln!(out, "*{}", table.as_str());
        for chain in changed.iter().map(|(c, _)| *c).chain(deleted.iter().copied()) {
            let _ = writeln!(out, ":{chain} - [0:0]");
        }
        for (chain, chain_rules) in &changed {
            for rule in *chain_rules {
                let _ = writeln!(out, "-A {chain} {rule}");
            }
        }
        for chain in &deleted {
            let _ = writeln!(out, "-X {chain}");
        }
        out.push_str("COMMIT\n");
    }
    (!out.is_empty()).then_some(out)
}

#[cfg(test)]
#[path = "rules_tests.rs"]
mod tests;
