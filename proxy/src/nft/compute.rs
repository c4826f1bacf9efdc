//! The desired nftables table as a pure function of the cluster's service ports, laid out as
//! upstream's nftables proxier lays it out (`pkg/proxy/nftables`): base chains on the filter
//! and nat hooks, a `service-ips` verdict map (`ip . protocol . port → goto service chain`), a
//! `service-nodeports` map, `no-endpoint-services`/`no-endpoint-nodeports` maps to drop or
//! reject, a `cluster-ips` set, and per service port `service-`, `local-` and `external-`
//! chains that pick an `endpoint-` chain, which masquerades hairpin traffic and DNATs.
//!
//! One difference: upstream balances with one `numgen random mod N vmap { 0 : goto A, … }`
//! rule. Each such vmap is an anonymous set, and binding an anonymous set costs the kernel a
//! walk over the whole transaction (`__nft_set_trans_bind`), so loading 4 000 services took
//! 5.8 s where the same rules without anonymous sets take 1.5 s (measured with `nft -c`, see
//! BENCHMARKS.md). We write the equivalent chain of `numgen random mod (N-i) == 0 goto E_i`
//! rules, the way the iptables mode uses `statistic --probability 1/(N-i)`.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;

use super::table::{Addr, BaseChain, Chain, Hook, Key, MASQ_BIT, Proto, Rule, Set, SetKind, Stmt, Table, Verdict};
use crate::model::{Config, Endpoint, ServicePort, service_ports};

pub const SERVICES: &str = "services";
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

/// The chains and sets that exist whatever the services.
fn base_table() -> Table {
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
            "nat-prerouting",
            base(true, Hook::Prerouting, -100, vec![rule([jump(SERVICES)])]),
        ),
        (
            "nat-output",
            base(true, Hook::Output, -100, vec![rule([jump(SERVICES)])]),
        ),
        (
            "nat-postrouting",
            base(true, Hook::Postrouting, 100, vec![rule([jump(MASQUERADING)])]),
        ),
        (MARK_MASQ, regular(vec![rule([Stmt::MarkOr(MASQ_BIT)])])),
        (
            MASQUERADING,
            regular(vec![
                rule([Stmt::MarkClear(MASQ_BIT), Stmt::Verdict(Verdict::Return)]),
                rule([Stmt::MarkXor(MASQ_BIT)]),
                rule([Stmt::Masquerade]),
            ]),
        ),
        (
            SERVICES,
            regular(vec![
                rule([Stmt::ServiceVmap(SERVICE_IPS.into())]),
                rule([
                    Stmt::FibLocal(Addr::Destination),
                    not_localhost.clone(),
                    Stmt::PortVmap(SERVICE_NODEPORTS.into()),
                ]),
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
        (SERVICE_IPS, SetKind::ServiceMap),
        (SERVICE_NODEPORTS, SetKind::PortMap),
        (NO_ENDPOINT_SERVICES, SetKind::ServiceMap),
        (NO_ENDPOINT_NODEPORTS, SetKind::PortMap),
    ] {
        table.sets.insert(
            name.to_string(),
            Set {
                kind,
                elements: BTreeMap::new(),
            },
        );
    }
    table
}

/// Computes our table for the whole cluster state. Never fails: malformed objects are skipped.
pub fn compute(services: &[Service], slices: &[EndpointSlice], config: &Config) -> Table {
    let mut table = base_table();
    let cluster_cidr = config.cluster_cidr.as_deref().and_then(parse_cidr);
    for port in service_ports(services, slices, config) {
        service_port(&mut table, &port, cluster_cidr);
    }
    table
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

fn service_port(table: &mut Table, sp: &ServicePort, cluster_cidr: Option<(Ipv4Addr, u8)>) {
    let (Some(proto), Ok(port)) = (Proto::parse(&sp.protocol), u16::try_from(sp.port)) else {
        return;
    };
    let base = format!("{}/{}/{}/{}", sp.namespace, sp.service, sp.protocol, sp.port_name);
    let hashed_base = hashed(&base);
    let cluster_chain = format!("service-{hashed_base}");
    let local_chain = format!("local-{hashed_base}");
    let external_chain = format!("external-{hashed_base}");
    element(table, CLUSTER_IPS, Key::Ip(sp.cluster_ip), None);

    let has_endpoints = !sp.cluster.is_empty();
    let uses_cluster = has_endpoints && (!sp.internal_local || sp.has_external());
    let uses_local = !sp.local.is_empty() && sp.uses_local_endpoints();
    let has_internal = has_endpoints && (!sp.internal_local || !sp.local.is_empty());
    let has_external = has_endpoints && (!sp.external_local || !sp.local.is_empty());
    let uses_external_chain = has_endpoints && sp.has_external();
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
    let (internal_verdict, external_verdict) = if has_endpoints {
        (Verdict::Drop, Verdict::Drop)
    } else {
        (Verdict::Goto(REJECT_CHAIN.into()), Verdict::Goto(REJECT_CHAIN.into()))
    };

    // Dispatch: the ClusterIP, external IPs and node port.
    let cluster_key = Key::Service(sp.cluster_ip, proto, port);
    if has_internal {
        element(
            table,
            SERVICE_IPS,
            cluster_key,
            Some(Verdict::Goto(internal_chain.clone())),
        );
    } else {
        element(table, NO_ENDPOINT_SERVICES, cluster_key, Some(internal_verdict));
    }
    for ip in &sp.external_ips {
        let key = Key::Service(*ip, proto, port);
        if has_endpoints {
            element(
                table,
                SERVICE_IPS,
                key.clone(),
                Some(Verdict::Goto(external_chain.clone())),
            );
        }
        if !has_external {
            element(table, NO_ENDPOINT_SERVICES, key, Some(external_verdict.clone()));
        }
    }
    if let Some(node_port) = sp.node_port.and_then(|p| u16::try_from(p).ok()) {
        let key = Key::Port(proto, node_port);
        if has_endpoints {
            element(
                table,
                SERVICE_NODEPORTS,
                key.clone(),
                Some(Verdict::Goto(external_chain.clone())),
            );
        }
        if !has_external {
            element(table, NO_ENDPOINT_NODEPORTS, key, Some(external_verdict));
        }
    }

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
