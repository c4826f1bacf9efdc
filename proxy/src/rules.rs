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

use std::borrow::Borrow;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::net::Ipv4Addr;

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use sha2::{Digest, Sha256};

/// Mark bit set on packets that must be masqueraded (upstream `--masquerade-bit` 14).
pub const MASQ_MARK: &str = "0x4000";

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

pub use crate::model::Config;
use crate::model::{Endpoint, ServicePort, service_ports};

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
pub(crate) fn hash16(text: &str) -> String {
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

/// Above this many endpoints (over all service ports) the rules are in upstream's "large
/// cluster mode": the endpoint chains' rules and the jumps into them carry no comment.
///
/// iptables-nft stores a comment as an xt `comment` match, one more expression that the kernel
/// validates on every commit that adds a jump or NAT rule to the nat table, by walking every
/// rule reachable from its base chains. At 10 000 services with 2 endpoints each, the comments
/// cost about a third of that walk (measured with `iptables-restore` of one rule: 83 ms of
/// kernel time with every rule commented, 58 ms in this mode, under load).
pub const LARGE_CLUSTER_ENDPOINTS: usize = 1000;

/// Computes our rules for the whole cluster state. Never fails: malformed objects are skipped.
pub fn compute<S: Borrow<Service>, E: Borrow<EndpointSlice>>(services: &[S], slices: &[E], config: &Config) -> RuleSet {
    let mut rules = RuleSet::default();
    base_chains(&mut rules);

    let ports = service_ports(services, slices, config);
    let large = ports.iter().map(|p| p.all.len()).sum::<usize>() > LARGE_CLUSTER_ENDPOINTS;
    for port in &ports {
        service_rules(&mut rules, port, config, large);
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

/// The `-m comment` of a rule in an endpoint chain or jumping into one: none in large cluster
/// mode, as upstream's `appendServiceCommentLocked`.
fn endpoint_comment(large: bool, text: &str) -> String {
    if large {
        String::new()
    } else {
        format!("-m comment --comment \"{text}\" ")
    }
}

fn service_rules(rules: &mut RuleSet, service_port: &ServicePort, config: &Config, large: bool) {
    use TableName::{Filter, Nat};
    let ServicePort {
        name: svc_port_name,
        protocol,
        cluster_ip,
        node_port,
        external_ips,
        external_local,
        affinity,
        all,
        ..
    } = service_port;
    let (cluster_ip, node_port, external_local, affinity) = (*cluster_ip, *node_port, *external_local, *affinity);
    let has_external = service_port.has_external();
    let cluster: Vec<&Endpoint> = service_port.cluster.iter().collect();
    let local: Vec<&Endpoint> = service_port.local.iter().collect();
    let svc_chain = service_port_chain("KUBE-SVC-", svc_port_name, protocol);
    let svl_chain = service_port_chain("KUBE-SVL-", svc_port_name, protocol);
    let ext_chain = service_port_chain("KUBE-EXT-", svc_port_name, protocol);
    let internal_local = service_port.internal_local;
    let uses_cluster_chain = !internal_local || has_external;
    let uses_local_chain = internal_local || (has_external && external_local);
    let (internal_chain, internal_eps) = if internal_local {
        (&svl_chain, &local)
    } else {
        (&svc_chain, &cluster)
    };
    let external_eps = if external_local { &local } else { &cluster };
    let dest = format!("-d {cluster_ip}/32 {}", proto_port(protocol, service_port.port));

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
                format!("-m comment --comment \"{svc_port_name} cluster IP\" {dest} ! -s {cidr} -j {KUBE_MARK_MASQ}"),
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
            for ip in external_ips {
                rules.add(
                    Filter,
                    KUBE_EXTERNAL_SERVICES,
                    format!(
                        "-m comment --comment \"{svc_port_name} {why}\" -d {ip}/32 {} -j {target}",
                        proto_port(protocol, service_port.port)
                    ),
                );
            }
            if let Some(node_port) = node_port {
                rules.add(
                    Filter,
                    KUBE_EXTERNAL_SERVICES,
                    format!(
                        "-m comment --comment \"{svc_port_name} {why}\" -m addrtype --dst-type LOCAL {} -j {target}",
                        proto_port(protocol, node_port)
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
                svc_port_name,
                external_local,
                !local.is_empty(),
                config,
            );
            for ip in external_ips {
                rules.add(
                    Nat,
                    &services_shard(*ip),
                    format!(
                        "-m comment --comment \"{svc_port_name} external IP\" -d {ip}/32 {} -j {ext_chain}",
                        proto_port(protocol, service_port.port)
                    ),
                );
            }
            if let Some(node_port) = node_port {
                rules.add(
                    Nat,
                    &nodeports_shard(protocol, node_port),
                    format!(
                        "-m comment --comment \"{svc_port_name}\" {} -j {ext_chain}",
                        proto_port(protocol, node_port)
                    ),
                );
            }
        }
    }

    // Policy chains and endpoint chains.
    let balance = |rules: &mut RuleSet, chain: &str, endpoints: &[&Endpoint], used: &mut BTreeSet<String>| {
        for endpoint in endpoints {
            let sep = endpoint_chain(svc_port_name, protocol, &endpoint.address());
            if let Some(seconds) = affinity {
                let comment = endpoint_comment(large, &format!("{svc_port_name} -> {}", endpoint.address()));
                rules.add(
                    Nat,
                    chain,
                    format!(
                        "{comment}-m recent --name {sep} --mask 255.255.255.255 --rsource --rcheck --seconds {seconds} --reap -j {sep}"
                    ),
                );
            }
            used.insert(sep);
        }
        let n = endpoints.len();
        for (i, endpoint) in endpoints.iter().enumerate() {
            let sep = endpoint_chain(svc_port_name, protocol, &endpoint.address());
            let statistic = if i + 1 < n {
                format!("-m statistic --mode random --probability {} ", probability(n - i))
            } else {
                String::new()
            };
            let comment = endpoint_comment(large, &format!("{svc_port_name} -> {}", endpoint.address()));
            rules.add(Nat, chain, format!("{comment}{statistic}-j {sep}"));
        }
    };
    let mut seps: BTreeSet<String> = BTreeSet::new();
    if uses_cluster_chain && !cluster.is_empty() {
        balance(rules, &svc_chain, &cluster, &mut seps);
    }
    if uses_local_chain && !local.is_empty() {
        balance(rules, &svl_chain, &local, &mut seps);
    }
    for endpoint in all {
        let sep = endpoint_chain(svc_port_name, protocol, &endpoint.address());
        if !seps.contains(&sep) {
            continue;
        }
        let comment = endpoint_comment(large, svc_port_name);
        rules.add(Nat, &sep, format!("{comment}-s {}/32 -j {KUBE_MARK_MASQ}", endpoint.ip));
        let recent = match affinity {
            Some(_) => format!(" -m recent --set --name {sep} --mask 255.255.255.255 --rsource"),
            None => String::new(),
        };
        rules.add(
            Nat,
            &sep,
            format!(
                "{comment}-p {protocol}{recent} -m {protocol} -j DNAT --to-destination {}",
                endpoint.address()
            ),
        );
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
