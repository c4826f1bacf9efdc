//! The desired nftables tables as a pure function of the cluster's service ports, laid out as
//! upstream's nftables proxier lays them out (`pkg/proxy/nftables`): base chains on the filter
//! and nat hooks, a `service-ips` verdict map (`ip . protocol . port → goto service chain`), a
//! `service-nodeports` map, `no-endpoint-services`/`no-endpoint-nodeports` maps to drop or
//! reject, a `cluster-ips` set, and per service port `service-`, `local-` and `external-`
//! chains that pick an `endpoint-` chain, which masquerades hairpin traffic and DNATs.
//!
//! Two differences. First, upstream balances with one `numgen random mod N vmap { 0 : goto A,
//! … }` rule. Each such vmap is an anonymous set, and binding an anonymous set costs the kernel
//! a walk over the whole transaction (`__nft_set_trans_bind`), so loading 4 000 services took
//! 5.8 s where the same rules without anonymous sets take 1.5 s (measured with `nft -c`, see
//! BENCHMARKS.md). We write the equivalent chain of `numgen random mod (N-i) == 0 goto E_i`
//! rules, the way the iptables mode uses `statistic --probability 1/(N-i)`.
//!
//! Second, the services are spread over [`SHARDS`] tables. Every commit that adds a jump, a
//! goto or a NAT rule makes the kernel re-validate the whole jump graph of the table it
//! touched (`nft_table_validate`, from every base chain, through every verdict map element,
//! without memo); in one table that is the graph of every service, ~50 ms of kernel time per
//! one-service change at 10 000 services (BENCHMARKS.md). So the main table `kube-proxy` keeps
//! what does not depend on one service's chains (the filter hooks, the `no-endpoint-*` maps,
//! `cluster-ips`, `reject-chain`, postrouting masquerade), and shard `kube-proxy-N` holds, for
//! the services whose `namespace/name` hashes to N, their chains, their `service-ips` and
//! `service-nodeports` elements and their affinity sets, with its own `mark-for-masquerade`
//! and nat base chains. A change validates one shard's graph.
//!
//! The nat chains of all shards sit on the same hooks; the kernel runs them in priority order
//! and stops at the first one that sets up a NAT binding (`nf_nat_inet_fn`), so a packet that
//! no shard's map knows passes through all of them untouched, as it passed through the one
//! table. Map keys are disjoint between shards (each key is put in the shard of the chain it
//! leads to, the last service to claim it wins as in the one map), so the shards' order does
//! not matter — except between a `service-ips` match and a `service-nodeports` match of the
//! same packet (an external IP that is a node address, on a port that is also a node port),
//! where the service IP must win: node ports are therefore looked up in separate base chains
//! one priority step later (`nat-prerouting-nodeports`/`nat-output-nodeports`, -99), after
//! every shard's `service-ips` lookup (-100).

use std::borrow::Borrow;
use std::collections::BTreeMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::net::Ipv4Addr;
use std::sync::Arc;

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;

use sha2::{Digest, Sha256};

use super::table::{
    Addr, BaseChain, Chain, Hook, Key, MASQ_BIT, Proto, Rule, Ruleset, SHARDS, Set, SetKind, Stmt, TABLE, Table,
    Verdict, shard_table,
};
use crate::model::{Config, Endpoint, ServicePort, service_ports};

pub const SERVICES: &str = "services";
pub const NODEPORTS: &str = "nodeports";
pub const MARK_MASQ: &str = "mark-for-masquerade";
pub const MASQUERADING: &str = "masquerading";
pub const SERVICE_ENDPOINTS_CHECK: &str = "service-endpoints-check";
pub const NODEPORT_ENDPOINTS_CHECK: &str = "nodeport-endpoints-check";
pub const CLUSTER_IPS_CHECK: &str = "cluster-ips-check";
pub const REJECT_CHAIN: &str = "reject-chain";
pub const SERVICE_IPS: &str = "service-ips";
pub const SERVICE_NODEPORTS: &str = "service-nodeports";
pub const NO_ENDPOINT_SERVICES: &str = "no-endpoint-services";
pub const NO_ENDPOINT_NODEPORTS: &str = "no-endpoint-nodeports";
pub const CLUSTER_IPS: &str = "cluster-ips";

/// `HASH-name`: upstream's `hashAndTruncate` (8 base32 characters of the name's SHA-256).
fn hashed(name: &str) -> String {
    format!("{}-{name}", &crate::rules::hash16(name)[..8])
}

fn stmt_ip(addr: Addr, net: Ipv4Addr, prefix: u8, negate: bool) -> Stmt {
    Stmt::Ip {
        addr,
        net,
        prefix,
        negate,
    }
}

/// Parses `a.b.c.d/n` (the host bits are cleared, as nft does).
fn parse_cidr(text: &str) -> Option<(Ipv4Addr, u8)> {
    let (ip, prefix) = text.split_once('/').unwrap_or((text, "32"));
    let ip: Ipv4Addr = ip.parse().ok()?;
    let prefix: u8 = prefix.parse().ok().filter(|p| *p <= 32)?;
    let mask = if prefix == 0 { 0 } else { u32::MAX << (32 - prefix) };
    Some((Ipv4Addr::from(u32::from(ip) & mask), prefix))
}

fn rule(stmts: impl IntoIterator<Item = Stmt>) -> Rule {
    Rule(stmts.into_iter().collect())
}

fn jump(chain: &str) -> Stmt {
    Stmt::Verdict(Verdict::Jump(chain.to_string()))
}

fn goto(chain: &str) -> Stmt {
    Stmt::Verdict(Verdict::Goto(chain.to_string()))
}

fn base(nat: bool, hook: Hook, priority: i32, rules: Vec<Rule>) -> Chain {
    Chain {
        base: Some(BaseChain { nat, hook, priority }),
        rules,
    }
}

fn regular(rules: Vec<Rule>) -> Chain {
    Chain { base: None, rules }
}

fn empty_set(kind: SetKind) -> Set {
    Set {
        kind,
        elements: BTreeMap::new(),
    }
}

/// The main table: the filter hooks (no-endpoint reject/drop, unallocated ClusterIPs) and the
/// postrouting masquerade, whatever the services.
fn main_table() -> Table {
    let mut table = Table::default();
    let new_jump = |chain: &str| rule([Stmt::CtStateNew, jump(chain)]);
    let not_localhost = stmt_ip(Addr::Destination, Ipv4Addr::new(127, 0, 0, 0), 8, true);
    let chains = [
        (
            "filter-input",
            base(
                false,
                Hook::Input,
                -110,
                vec![new_jump(NODEPORT_ENDPOINTS_CHECK), new_jump(SERVICE_ENDPOINTS_CHECK)],
            ),
        ),
        (
            "filter-forward",
            base(
                false,
                Hook::Forward,
                -110,
                vec![new_jump(SERVICE_ENDPOINTS_CHECK), new_jump(CLUSTER_IPS_CHECK)],
            ),
        ),
        (
            "filter-output",
            base(false, Hook::Output, -110, vec![new_jump(SERVICE_ENDPOINTS_CHECK)]),
        ),
        (
            "filter-output-post-dnat",
            base(false, Hook::Output, -90, vec![new_jump(CLUSTER_IPS_CHECK)]),
        ),
        (
            "nat-postrouting",
            base(true, Hook::Postrouting, 100, vec![rule([jump(MASQUERADING)])]),
        ),
        (
            MASQUERADING,
            regular(vec![
                rule([Stmt::MarkClear(MASQ_BIT), Stmt::Verdict(Verdict::Return)]),
                rule([Stmt::MarkXor(MASQ_BIT)]),
                rule([Stmt::Masquerade]),
            ]),
        ),
        (
            SERVICE_ENDPOINTS_CHECK,
            regular(vec![rule([Stmt::ServiceVmap(NO_ENDPOINT_SERVICES.into())])]),
        ),
        (
            NODEPORT_ENDPOINTS_CHECK,
            regular(vec![rule([
                Stmt::FibLocal(Addr::Destination),
                not_localhost,
                Stmt::PortVmap(NO_ENDPOINT_NODEPORTS.into()),
            ])]),
        ),
        (
            CLUSTER_IPS_CHECK,
            regular(vec![rule([
                Stmt::IpInSet {
                    addr: Addr::Destination,
                    set: CLUSTER_IPS.into(),
                },
                Stmt::Reject,
            ])]),
        ),
        (REJECT_CHAIN, regular(vec![rule([Stmt::Reject])])),
    ];
    for (name, chain) in chains {
        table.chains.insert(name.to_string(), chain);
    }
    for (name, kind) in [
        (CLUSTER_IPS, SetKind::Addresses),
        (NO_ENDPOINT_SERVICES, SetKind::ServiceMap),
        (NO_ENDPOINT_NODEPORTS, SetKind::PortMap),
    ] {
        table.sets.insert(name.to_string(), empty_set(kind));
    }
    table
}

/// A shard before its services: the nat base chains that dispatch to its services (service
/// IPs at dstnat priority -100, node ports one step later), the maps, `mark-for-masquerade`.
fn shard_base_table() -> Table {
    let mut table = Table::default();
    let not_localhost = stmt_ip(Addr::Destination, Ipv4Addr::new(127, 0, 0, 0), 8, true);
    let chains = [
        (
            "nat-prerouting",
            base(true, Hook::Prerouting, -100, vec![rule([jump(SERVICES)])]),
        ),
        (
            "nat-output",
            base(true, Hook::Output, -100, vec![rule([jump(SERVICES)])]),
        ),
        (
            "nat-prerouting-nodeports",
            base(true, Hook::Prerouting, -99, vec![rule([jump(NODEPORTS)])]),
        ),
        (
            "nat-output-nodeports",
            base(true, Hook::Output, -99, vec![rule([jump(NODEPORTS)])]),
        ),
        (MARK_MASQ, regular(vec![rule([Stmt::MarkOr(MASQ_BIT)])])),
        (SERVICES, regular(vec![rule([Stmt::ServiceVmap(SERVICE_IPS.into())])])),
        (
            NODEPORTS,
            regular(vec![rule([
                Stmt::FibLocal(Addr::Destination),
                not_localhost,
                Stmt::PortVmap(SERVICE_NODEPORTS.into()),
            ])]),
        ),
    ];
    for (name, chain) in chains {
        table.chains.insert(name.to_string(), chain);
    }
    for (name, kind) in [
        (SERVICE_IPS, SetKind::ServiceMap),
        (SERVICE_NODEPORTS, SetKind::PortMap),
    ] {
        table.sets.insert(name.to_string(), empty_set(kind));
    }
    table
}

/// The shard of a service: the first 8 bytes of the SHA-256 of `namespace/name`, modulo
/// `shards`. Stable across restarts and versions (for one shard count), and the same for
/// every port of the service, so a change to one service touches one shard.
pub fn shard_of(namespace: &str, service: &str, shards: usize) -> usize {
    let digest = Sha256::digest(format!("{namespace}/{service}").as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    let shards = u64::try_from(shards.max(1)).unwrap_or(1);
    usize::try_from(u64::from_be_bytes(first) % shards).unwrap_or(0)
}

/// The ruleset being built, in two passes over the service ports. The first ([`plan_port`])
/// fills the main table, decides which shard holds each key of the sharded maps (a key claimed
/// again moves to the new claimant, as in one map) and keeps a running digest of what each
/// table is computed from (see [`Ruleset::digests`]). The second ([`shard_port`]) builds only
/// the shards whose digest differs from the previous ruleset's; the others are that ruleset's
/// tables, shared (`None` here until [`Builder::into_ruleset`]).
struct Builder {
    main: Table,
    shards: Vec<Option<Table>>,
    owners: BTreeMap<(&'static str, Key), usize>,
    main_digest: DefaultHasher,
    shard_digests: Vec<DefaultHasher>,
}

impl Builder {
    fn new(shards: usize, cluster_cidr: Option<(Ipv4Addr, u8)>) -> Builder {
        let mut seed = DefaultHasher::new();
        cluster_cidr.hash(&mut seed);
        Builder {
            main: main_table(),
            shards: vec![None; shards],
            owners: BTreeMap::new(),
            main_digest: seed.clone(),
            shard_digests: vec![seed; shards],
        }
    }

    /// Records that `port` is computed into `shard`.
    fn digest(&mut self, shard: usize, port: &ServicePort) {
        if let Some(digest) = self.shard_digests.get_mut(shard) {
            port.hash(digest);
        }
    }

    /// Adds an element to the main table. The main table's digest is the sequence of these
    /// (all it gets from the services), so a change that keeps a service's ClusterIP and
    /// whether it has endpoints leaves the main table out of the diff.
    fn main_element(&mut self, set: &str, key: Key, verdict: Option<Verdict>) {
        (set, &key, &verdict).hash(&mut self.main_digest);
        element(&mut self.main, set, key, verdict);
    }

    /// First pass: `shard` claims `key` in its `map`, taking it from the shard that had it.
    fn claim(&mut self, shard: usize, map: &'static str, key: Key) {
        if let Some(previous) = self.owners.insert((map, key.clone()), shard)
            && previous != shard
            // The previous shard's content now depends on a later service too.
            && let Some(digest) = self.shard_digests.get_mut(previous)
        {
            (map, &key, shard).hash(digest);
        }
    }

    /// Second pass: puts `key → verdict` in `map` of `shard` if the shard kept the key to the
    /// end of the first pass. Claims within one shard come in port order, so the last one's
    /// verdict stays, as in one map.
    fn dispatch(&mut self, shard: usize, map: &'static str, key: Key, verdict: Verdict) {
        if self.owners.get(&(map, key.clone())) != Some(&shard) {
            return;
        }
        if let Some(Some(table)) = self.shards.get_mut(shard) {
            element(table, map, key, Some(verdict));
        }
    }

    fn into_ruleset(self, digests: &[u64], mut reused: Vec<Option<Arc<Table>>>) -> Ruleset {
        let mut ruleset = Ruleset::default();
        ruleset.tables.insert(TABLE.to_string(), Arc::new(self.main));
        ruleset.digests.insert(TABLE.to_string(), self.main_digest.finish());
        for (index, (built, digest)) in self.shards.into_iter().zip(digests).enumerate() {
            let table = match built {
                Some(table) => Arc::new(table),
                None => reused.get_mut(index).and_then(Option::take).unwrap_or_default(),
            };
            ruleset.tables.insert(shard_table(index), table);
            ruleset.digests.insert(shard_table(index), *digest);
        }
        ruleset
    }
}

/// Computes our tables for the whole cluster state. Never fails: malformed objects are skipped.
pub fn compute<S: Borrow<Service>, E: Borrow<EndpointSlice>>(services: &[S], slices: &[E], config: &Config) -> Ruleset {
    compute_sharded_reusing(services, slices, config, SHARDS, None)
}

/// [`compute`], taking from `previous` (what the proxier last applied) every shard table whose
/// inputs did not change instead of building it again: a one-service change builds one shard.
/// The result equals [`compute`]'s.
pub fn compute_reusing<S: Borrow<Service>, E: Borrow<EndpointSlice>>(
    services: &[S],
    slices: &[E],
    config: &Config,
    previous: Option<&Ruleset>,
) -> Ruleset {
    compute_sharded_reusing(services, slices, config, SHARDS, previous)
}

/// [`compute`] over `shards` shard tables (at least one).
pub fn compute_sharded<S: Borrow<Service>, E: Borrow<EndpointSlice>>(
    services: &[S],
    slices: &[E],
    config: &Config,
    shards: usize,
) -> Ruleset {
    compute_sharded_reusing(services, slices, config, shards, None)
}

fn compute_sharded_reusing<S: Borrow<Service>, E: Borrow<EndpointSlice>>(
    services: &[S],
    slices: &[E],
    config: &Config,
    shards: usize,
    previous: Option<&Ruleset>,
) -> Ruleset {
    let shards = shards.max(1);
    let cluster_cidr = config.cluster_cidr.as_deref().and_then(parse_cidr);
    let mut builder = Builder::new(shards, cluster_cidr);
    let ports = service_ports(services, slices, config);
    let port_shards: Vec<usize> = ports
        .iter()
        .map(|port| shard_of(&port.namespace, &port.service, shards))
        .collect();
    for (port, &shard) in ports.iter().zip(&port_shards) {
        builder.digest(shard, port);
        plan_port(&mut builder, shard, port);
    }
    let digests: Vec<u64> = builder.shard_digests.iter().map(Hasher::finish).collect();
    let reused: Vec<Option<Arc<Table>>> = digests
        .iter()
        .enumerate()
        .map(|(index, digest)| {
            let previous = previous?;
            let name = shard_table(index);
            (previous.digests.get(&name) == Some(digest))
                .then(|| previous.tables.get(&name).cloned())
                .flatten()
        })
        .collect();
    builder.shards = reused.iter().map(|r| r.is_none().then(shard_base_table)).collect();
    for (port, &shard) in ports.iter().zip(&port_shards) {
        if builder.shards.get(shard).is_some_and(Option::is_some) {
            shard_port(&mut builder, shard, port, cluster_cidr);
        }
    }
    builder.into_ruleset(&digests, reused)
}

fn element(table: &mut Table, set: &str, key: Key, verdict: Option<Verdict>) {
    if let Some(set) = table.sets.get_mut(set) {
        set.elements.insert(key, verdict);
    }
}

/// The names of one endpoint's chain and affinity set.
fn endpoint_names(base: &str, endpoint: &Endpoint) -> (String, String) {
    let hashed = hashed(&format!("{base}__{}/{}", endpoint.ip, endpoint.port));
    (format!("endpoint-{hashed}"), format!("affinity-{hashed}"))
}

/// How one service port is served, from its endpoints and traffic policies.
struct Shape {
    proto: Proto,
    port: u16,
    has_endpoints: bool,
    uses_cluster: bool,
    uses_local: bool,
    has_internal: bool,
    has_external: bool,
    uses_external_chain: bool,
}

fn shape(sp: &ServicePort) -> Option<Shape> {
    let (Some(proto), Ok(port)) = (Proto::parse(&sp.protocol), u16::try_from(sp.port)) else {
        return None;
    };
    let has_endpoints = !sp.cluster.is_empty();
    Some(Shape {
        proto,
        port,
        has_endpoints,
        uses_cluster: has_endpoints && (!sp.internal_local || sp.has_external()),
        uses_local: !sp.local.is_empty() && sp.uses_local_endpoints(),
        has_internal: has_endpoints && (!sp.internal_local || !sp.local.is_empty()),
        has_external: has_endpoints && (!sp.external_local || !sp.local.is_empty()),
        uses_external_chain: has_endpoints && sp.has_external(),
    })
}

/// First pass over one service port: its elements in the main table's maps and set, and its
/// claims on keys of its shard's maps.
fn plan_port(builder: &mut Builder, shard: usize, sp: &ServicePort) {
    let Some(shape) = shape(sp) else { return };
    let (proto, port) = (shape.proto, shape.port);
    builder.main_element(CLUSTER_IPS, Key::Ip(sp.cluster_ip), None);
    let no_endpoints = if shape.has_endpoints {
        Verdict::Drop
    } else {
        Verdict::Goto(REJECT_CHAIN.into())
    };
    let cluster_key = Key::Service(sp.cluster_ip, proto, port);
    if shape.has_internal {
        builder.claim(shard, SERVICE_IPS, cluster_key);
    } else {
        builder.main_element(NO_ENDPOINT_SERVICES, cluster_key, Some(no_endpoints.clone()));
    }
    for ip in &sp.external_ips {
        let key = Key::Service(*ip, proto, port);
        if shape.has_endpoints {
            builder.claim(shard, SERVICE_IPS, key.clone());
        }
        if !shape.has_external {
            builder.main_element(NO_ENDPOINT_SERVICES, key, Some(no_endpoints.clone()));
        }
    }
    if let Some(node_port) = sp.node_port.and_then(|p| u16::try_from(p).ok()) {
        let key = Key::Port(proto, node_port);
        if shape.has_endpoints {
            builder.claim(shard, SERVICE_NODEPORTS, key.clone());
        }
        if !shape.has_external {
            builder.main_element(NO_ENDPOINT_NODEPORTS, key, Some(no_endpoints));
        }
    }
}

/// Second pass over one service port of a shard being built: its map elements (the keys it
/// kept), its chains and its affinity sets.
fn shard_port(builder: &mut Builder, shard: usize, sp: &ServicePort, cluster_cidr: Option<(Ipv4Addr, u8)>) {
    let Some(shape) = shape(sp) else { return };
    let Shape {
        proto,
        port,
        has_endpoints,
        uses_cluster,
        uses_local,
        has_internal,
        has_external,
        uses_external_chain,
    } = shape;
    let base = format!("{}/{}/{}/{}", sp.namespace, sp.service, sp.protocol, sp.port_name);
    let hashed_base = hashed(&base);
    let cluster_chain = format!("service-{hashed_base}");
    let local_chain = format!("local-{hashed_base}");
    let external_chain = format!("external-{hashed_base}");
    let internal_chain = if sp.internal_local {
        &local_chain
    } else {
        &cluster_chain
    };
    let external_policy_chain = if sp.external_local {
        &local_chain
    } else {
        &cluster_chain
    };

    // Dispatch: the ClusterIP, external IPs and node port.
    if has_internal {
        let key = Key::Service(sp.cluster_ip, proto, port);
        builder.dispatch(shard, SERVICE_IPS, key, Verdict::Goto(internal_chain.clone()));
    }
    if has_endpoints {
        for ip in &sp.external_ips {
            let key = Key::Service(*ip, proto, port);
            builder.dispatch(shard, SERVICE_IPS, key, Verdict::Goto(external_chain.clone()));
        }
        if let Some(node_port) = sp.node_port.and_then(|p| u16::try_from(p).ok()) {
            let key = Key::Port(proto, node_port);
            builder.dispatch(shard, SERVICE_NODEPORTS, key, Verdict::Goto(external_chain.clone()));
        }
    }

    // Everything else lives in the service's shard.
    let Some(Some(table)) = builder.shards.get_mut(shard) else {
        return;
    };

    // Masquerade ClusterIP traffic from outside the pod network.
    let mut internal_rules = Vec::new();
    if has_internal && let Some((net, prefix)) = cluster_cidr {
        internal_rules.push(rule([
            stmt_ip(Addr::Destination, sp.cluster_ip, 32, false),
            Stmt::ProtoPort { proto, port },
            stmt_ip(Addr::Source, net, prefix, true),
            jump(MARK_MASQ),
        ]));
    }

    if uses_external_chain {
        let mut rules = Vec::new();
        if sp.external_local {
            if let Some((net, prefix)) = cluster_cidr {
                rules.push(rule([stmt_ip(Addr::Source, net, prefix, false), goto(&cluster_chain)]));
            }
            rules.push(rule([Stmt::FibLocal(Addr::Source), jump(MARK_MASQ)]));
            rules.push(rule([Stmt::FibLocal(Addr::Source), goto(&cluster_chain)]));
        } else {
            rules.push(rule([jump(MARK_MASQ)]));
        }
        if has_external {
            rules.push(rule([goto(external_policy_chain)]));
        }
        table.chains.insert(external_chain.clone(), regular(rules));
    }

    // Policy chains pick an endpoint chain; endpoint chains DNAT.
    let mut policy = |chain: &str, endpoints: &[Endpoint], table: &mut Table| {
        let mut rules = if chain == internal_chain.as_str() {
            std::mem::take(&mut internal_rules)
        } else {
            Vec::new()
        };
        if sp.affinity.is_some() {
            for endpoint in endpoints {
                let (endpoint_chain, affinity_set) = endpoint_names(&base, endpoint);
                rules.push(rule([
                    Stmt::IpInSet {
                        addr: Addr::Source,
                        set: affinity_set,
                    },
                    goto(&endpoint_chain),
                ]));
            }
        }
        let n = endpoints.len();
        for (i, endpoint) in endpoints.iter().enumerate() {
            let (endpoint_chain, _) = endpoint_names(&base, endpoint);
            let remaining = u32::try_from(n - i).unwrap_or(u32::MAX);
            if remaining > 1 {
                rules.push(rule([
                    Stmt::Numgen {
                        modulus: remaining,
                        value: 0,
                    },
                    goto(&endpoint_chain),
                ]));
            } else {
                rules.push(rule([goto(&endpoint_chain)]));
            }
        }
        table.chains.insert(chain.to_string(), regular(rules));
    };
    if uses_cluster {
        policy(&cluster_chain, &sp.cluster, table);
    }
    if uses_local {
        policy(&local_chain, &sp.local, table);
    }
    let mut endpoints: Vec<&Endpoint> = Vec::new();
    if uses_cluster {
        endpoints.extend(&sp.cluster);
    }
    if uses_local {
        endpoints.extend(sp.local.iter().filter(|l| !endpoints.contains(l)).collect::<Vec<_>>());
    }
    for endpoint in endpoints {
        let Ok(endpoint_port) = u16::try_from(endpoint.port) else {
            continue;
        };
        let (endpoint_chain, affinity_set) = endpoint_names(&base, endpoint);
        let mut rules = vec![rule([stmt_ip(Addr::Source, endpoint.ip, 32, false), jump(MARK_MASQ)])];
        if let Some(timeout) = sp.affinity {
            rules.push(rule([Stmt::UpdateSaddr(affinity_set.clone())]));
            table.sets.insert(
                affinity_set,
                Set {
                    kind: SetKind::Affinity {
                        timeout_seconds: u32::try_from(timeout).unwrap_or(1).max(1),
                    },
                    elements: BTreeMap::new(),
                },
            );
        }
        rules.push(rule([Stmt::Dnat {
            proto,
            ip: endpoint.ip,
            port: endpoint_port,
        }]));
        table.chains.insert(endpoint_chain, regular(rules));
    }
}
