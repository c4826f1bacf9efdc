//! Tests of the sharded layout as data: which table each object lands in, that every table's
//! jumps stay inside it, that sharding only moves objects (the same chains and elements as one
//! shard), that a change touches only its service's shard, and the full sync's handling of
//! tables it no longer wants.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::{ClientIPConfig, Service, ServicePort, SessionAffinityConfig};
use k8s_openapi::api::discovery::v1::EndpointSlice;

use super::compute::{SERVICE_IPS, compute, compute_reusing, compute_sharded, shard_of};
use super::diff::{diff, full};
use super::table::{Chain, Key, Op, Ruleset, SHARDS, Stmt, TABLE, Table, Verdict, is_our_table, shard_table};
use super::{FakeNftBackend, NftProxier};
use crate::proxier::SyncKind;
use crate::testutil::{READY_A, READY_B, config, service, slice};

/// Services using every form the layout has, spread over several shards.
fn varied() -> (Vec<Service>, Vec<EndpointSlice>) {
    let mut services = Vec::new();
    let mut slices = Vec::new();
    for i in 0..40 {
        let name = format!("s{i}");
        let ip = format!("10.96.1.{}", i + 1);
        services.push(service(&name, &ip, |spec| {
            match i % 4 {
                1 => {
                    spec.type_ = Some("NodePort".into());
                    if let Some(port) = spec.ports.as_mut().and_then(|p| p.first_mut()) {
                        port.node_port = Some(30000 + i);
                    }
                }
                2 => {
                    spec.type_ = Some("NodePort".into());
                    spec.external_traffic_policy = Some("Local".into());
                    spec.external_ips = Some(vec![format!("192.0.2.{}", i + 1)]);
                    if let Some(port) = spec.ports.as_mut().and_then(|p| p.first_mut()) {
                        port.node_port = Some(30000 + i);
                    }
                }
                3 => {
                    spec.session_affinity = Some("ClientIP".into());
                    spec.session_affinity_config = Some(SessionAffinityConfig {
                        client_ip: Some(ClientIPConfig {
                            timeout_seconds: Some(60),
                        }),
                    });
                }
                _ => {}
            }
            // A second port: both ports of one service land in one shard.
            if let Some(ports) = spec.ports.as_mut() {
                ports.push(ServicePort {
                    name: Some("metrics".into()),
                    port: 9090,
                    protocol: Some("TCP".into()),
                    ..Default::default()
                });
            }
        }));
        // Every fifth service has no endpoints (no-endpoint maps in the main table).
        if i % 5 != 4 {
            slices.push(slice(&name, &[READY_A, READY_B]));
        }
    }
    (services, slices)
}

/// Two service names (`x0`, `x1`, …) whose services land in different shards.
fn two_services_in_two_shards() -> [String; 2] {
    let first = "x0".to_string();
    let second = (1..)
        .map(|i| format!("x{i}"))
        .find(|name| shard_of("ns", name, SHARDS) != shard_of("ns", &first, SHARDS))
        .unwrap_or_default();
    [first, second]
}

/// Whether a chain is one of a service port's (`service-HASH-ns/name/proto/port`, …): their
/// names hold the service's `namespace/name`, the fixed chains' names do not.
fn per_service(chain: &str) -> bool {
    chain.contains('/')
}

/// The per-service chains over all tables, with the table each is in.
fn service_chains(ruleset: &Ruleset) -> BTreeMap<String, (String, Chain)> {
    let mut out = BTreeMap::new();
    for (table, content) in &ruleset.tables {
        for (name, chain) in &content.chains {
            if per_service(name) {
                let previous = out.insert(name.clone(), (table.clone(), chain.clone()));
                assert!(previous.is_none(), "{name} is in two tables");
            }
        }
    }
    out
}

/// Every element of every set of `name` over all tables, with the table it is in.
fn elements(ruleset: &Ruleset, name: &str) -> BTreeMap<Key, (String, Option<Verdict>)> {
    let mut out = BTreeMap::new();
    for (table, content) in &ruleset.tables {
        if let Some(set) = content.sets.get(name) {
            for (key, verdict) in &set.elements {
                let previous = out.insert(key.clone(), (table.clone(), verdict.clone()));
                assert!(previous.is_none(), "{key} of {name} is in two tables");
            }
        }
    }
    out
}

/// The chains a table's rules and map elements jump or go to, and the sets its rules use.
fn references(table: &Table) -> (Vec<String>, Vec<String>) {
    let mut chains = Vec::new();
    let mut sets = Vec::new();
    let mut verdict = |v: &Verdict| {
        if let Verdict::Jump(c) | Verdict::Goto(c) = v {
            chains.push(c.clone());
        }
    };
    for chain in table.chains.values() {
        for rule in &chain.rules {
            for stmt in &rule.0 {
                match stmt {
                    Stmt::Verdict(v) => verdict(v),
                    Stmt::IpInSet { set, .. }
                    | Stmt::ServiceVmap(set)
                    | Stmt::PortVmap(set)
                    | Stmt::UpdateSaddr(set) => sets.push(set.clone()),
                    _ => {}
                }
            }
        }
    }
    for set in table.sets.values() {
        for v in set.elements.values().flatten() {
            verdict(v);
        }
    }
    (chains, sets)
}

#[test]
fn shard_of_is_stable_spread_and_the_same_for_every_port() {
    // Pinned: a different hash would move every service at an upgrade (one full sync).
    assert_eq!(shard_of("ns", "web", 16), 2);
    assert_eq!(shard_of("ns", "s7", 16), 5);
    assert_eq!(shard_of("ns", "web", 1), 0);
    let mut counts = vec![0; SHARDS];
    for i in 0..1600 {
        counts[shard_of("bench", &format!("svc-{i}"), SHARDS)] += 1;
    }
    assert!(counts.iter().all(|c| (50..=150).contains(c)), "{counts:?}");

    let (services, slices) = varied();
    let ruleset = compute(&services, &slices, &config());
    for (name, (table, _)) in service_chains(&ruleset) {
        // `service-HASH-ns/s12/tcp/http`, `endpoint-HASH-ns/s12/tcp/metrics__IP/PORT`
        let service = name.split('/').nth(1).unwrap_or_default();
        assert_eq!(table, shard_table(shard_of("ns", service, SHARDS)), "{name}");
    }
}

#[test]
fn every_table_is_closed_under_jumps_and_set_references() {
    let (services, slices) = varied();
    let ruleset = compute(&services, &slices, &config());
    assert_eq!(ruleset.tables.len(), SHARDS + 1);
    let mut used_shards = 0;
    for (name, table) in &ruleset.tables {
        let (chains, sets) = references(table);
        for chain in &chains {
            assert!(table.chains.contains_key(chain), "{name}: {chain} is not in the table");
        }
        for set in &sets {
            assert!(table.sets.contains_key(set), "{name}: set {set} is not in the table");
        }
        if name != TABLE && table.chains.len() > 7 {
            used_shards += 1;
        }
    }
    assert!(used_shards >= 8, "40 services spread over {used_shards} shards");
    // What does not depend on a service's chains stays in the main table.
    let main = &ruleset.tables[TABLE];
    assert!(main.chains.contains_key("filter-input") && main.chains.contains_key("masquerading"));
    assert!(!main.chains.keys().any(|c| per_service(c) || c == "nat-prerouting"));
    assert!(!main.sets.contains_key(SERVICE_IPS));
}

#[test]
fn sharding_only_moves_objects() {
    let (services, slices) = varied();
    let one = compute_sharded(&services, &slices, &config(), 1);
    let many = compute(&services, &slices, &config());
    assert_eq!(one.tables[TABLE], many.tables[TABLE]);
    let strip = |m: BTreeMap<String, (String, Chain)>| m.into_iter().map(|(k, (_, c))| (k, c)).collect::<Vec<_>>();
    assert_eq!(strip(service_chains(&one)), strip(service_chains(&many)));
    for map in [SERVICE_IPS, "service-nodeports"] {
        let verdicts = |r: &Ruleset| {
            elements(r, map)
                .into_iter()
                .map(|(k, (_, v))| (k, v))
                .collect::<Vec<_>>()
        };
        assert_eq!(verdicts(&one), verdicts(&many), "{map}");
        // Each element sits in the table of the chain it leads to.
        for (key, (table, verdict)) in elements(&many, map) {
            let Some(Verdict::Goto(chain)) = verdict else {
                panic!("{key}: {verdict:?}");
            };
            assert!(many.tables[&table].chains.contains_key(&chain), "{key} → {chain}");
        }
    }
    let objects = |r: &Ruleset| r.object_count() - r.tables.values().map(|t| base_objects(t)).sum::<usize>();
    assert_eq!(objects(&one), objects(&many));
}

/// Rules of a table's fixed chains (the ones every shard or the main table always has).
fn base_objects(table: &Table) -> usize {
    table
        .chains
        .iter()
        .filter(|(name, _)| !per_service(name))
        .map(|(_, c)| c.rules.len())
        .sum()
}

#[test]
fn a_key_claimed_by_two_shards_belongs_to_the_last_claimant() {
    // Two services in different shards claim the same external IP and port; as in one map,
    // the service computed last wins, and the other shard does not keep a stale element.
    let names = two_services_in_two_shards();
    let with_ip = |name: &str, ip: &str| {
        service(name, ip, |spec| {
            spec.external_ips = Some(vec!["198.51.100.1".into()]);
        })
    };
    let services = vec![with_ip(&names[0], "10.96.0.1"), with_ip(&names[1], "10.96.0.2")];
    let slices = vec![slice(&names[0], &[READY_A]), slice(&names[1], &[READY_B])];
    let one = compute_sharded(&services, &slices, &config(), 1);
    let many = compute(&services, &slices, &config());
    let key = Key::Service("198.51.100.1".parse().expect("ip"), super::table::Proto::Tcp, 80);
    let winner = elements(&one, SERVICE_IPS).remove(&key).and_then(|(_, v)| v);
    let (table, verdict) = elements(&many, SERVICE_IPS).remove(&key).expect("the key");
    assert_eq!(verdict, winner);
    let Some(Verdict::Goto(chain)) = verdict else {
        panic!("{winner:?}");
    };
    assert!(many.tables[&table].chains.contains_key(&chain));
}

#[test]
fn digests_follow_the_inputs_of_each_table() {
    let (services, mut slices) = varied();
    let before = compute(&services, &slices, &config());
    assert_eq!(before.digests.len(), SHARDS + 1);
    assert_eq!(compute(&services, &slices, &config()), before, "deterministic");
    slices[3] = slice("s3", &[READY_A]);
    let after = compute(&services, &slices, &config());
    let changed: Vec<&String> = before
        .digests
        .iter()
        .filter(|(table, digest)| after.digests.get(*table) != Some(*digest))
        .map(|(table, _)| table)
        .collect();
    // Other endpoints, still some: the main table (ClusterIPs, no-endpoint maps) is the same.
    assert_eq!(changed, [&shard_table(shard_of("ns", "s3", SHARDS))]);
    slices[3] = slice("s3", &[]);
    let empty = compute(&services, &slices, &config());
    assert_ne!(empty.digests[TABLE], after.digests[TABLE], "into no-endpoint-services");
    // A cluster CIDR changes every table's rules, and every digest.
    let mut other = config();
    other.cluster_cidr = Some("10.0.0.0/8".into());
    let elsewhere = compute(&services, &slices, &other);
    assert!(before.digests.iter().all(|(t, d)| elsewhere.digests.get(t) != Some(d)));
}

#[test]
fn a_key_given_back_to_an_unchanged_shard_is_part_of_the_diff() {
    // x claims the external IP first, y (another shard) takes it over; when y lets it go,
    // x's shard gets it back although nothing of x changed: its digest must change too.
    let names = two_services_in_two_shards();
    let (x, y) = (&names[0], &names[1]);
    let with_ip = |name: &str, ip: &str, external: bool| {
        service(name, ip, |spec| {
            if external {
                spec.external_ips = Some(vec!["198.51.100.1".into()]);
            }
        })
    };
    let slices = vec![slice(x, &[READY_A]), slice(y, &[READY_B])];
    let both = compute(
        &[with_ip(x, "10.96.0.1", true), with_ip(y, "10.96.0.2", true)],
        &slices,
        &config(),
    );
    let only_x = compute(
        &[with_ip(x, "10.96.0.1", true), with_ip(y, "10.96.0.2", false)],
        &slices,
        &config(),
    );
    let key = Key::Service("198.51.100.1".parse().expect("ip"), super::table::Proto::Tcp, 80);
    let holder = |r: &Ruleset| elements(r, SERVICE_IPS).remove(&key).map(|(table, _)| table);
    let (x_shard, y_shard) = (
        shard_table(shard_of("ns", x, SHARDS)),
        shard_table(shard_of("ns", y, SHARDS)),
    );
    // Service ports are computed in name order: y comes after x and wins.
    assert_eq!(holder(&both), Some(y_shard.clone()));
    assert_eq!(holder(&only_x), Some(x_shard.clone()));
    assert_ne!(both.digests[&x_shard], only_x.digests[&x_shard]);
    let script = diff(&both, &only_x).expect("a change").to_nft_script();
    assert!(
        script.contains(&format!(
            "add element ip {x_shard} service-ips {{ 198.51.100.1 . tcp . 80 : goto external-"
        )) && script.contains(&format!(
            "delete element ip {y_shard} service-ips {{ 198.51.100.1 . tcp . 80 }}"
        )),
        "{script}"
    );
}

#[test]
fn reusing_the_previous_ruleset_gives_what_a_fresh_compute_gives() {
    // Two services of different shards that claim the same external IP, for the hand-over.
    let names = two_services_in_two_shards();
    let with_ip = |name: &str, ip: &str, external: bool| {
        service(name, ip, |spec| {
            if external {
                spec.external_ips = Some(vec!["198.51.100.1".into()]);
            }
        })
    };
    let (services, slices) = varied();
    let mut states = vec![(services.clone(), slices.clone())];
    let mut next = |change: &dyn Fn(&mut Vec<Service>, &mut Vec<EndpointSlice>)| {
        let (mut services, mut slices) = states.last().cloned().expect("a state");
        change(&mut services, &mut slices);
        states.push((services, slices));
    };
    next(&|_, slices| slices[3] = slice("s3", &[READY_A]));
    next(&|_, slices| slices[3] = slice("s3", &[]));
    next(&|services, _| {
        services.remove(5);
    });
    next(&|services, slices| {
        services.push(service("new", "10.96.9.9", |_| {}));
        slices.push(slice("new", &[READY_B]));
    });
    let (x, y) = (names[0].clone(), names[1].clone());
    next(&|services, slices| {
        services.push(with_ip(&x, "10.96.8.1", true));
        services.push(with_ip(&y, "10.96.8.2", true));
        slices.push(slice(&x, &[READY_A]));
        slices.push(slice(&y, &[READY_B]));
    });
    next(&|services, _| {
        if let Some(last) = services.last_mut() {
            *last = with_ip(&y, "10.96.8.2", false);
        }
    });
    next(&|services, _| {
        if let Some(last) = services.last_mut() {
            *last = with_ip(&y, "10.96.8.2", true);
        }
    });

    let mut previous = compute(&states[0].0, &states[0].1, &config());
    for (step, (services, slices)) in states.iter().enumerate().skip(1) {
        let reused = compute_reusing(services, slices, &config(), Some(&previous));
        assert_eq!(reused, compute(services, slices, &config()), "step {step}");
        for (name, table) in &reused.tables {
            let same_inputs = previous.digests.get(name) == reused.digests.get(name);
            if name != TABLE {
                // An unchanged shard is the previous table itself; a changed one is new.
                assert_eq!(
                    std::sync::Arc::ptr_eq(table, &previous.tables[name]),
                    same_inputs,
                    "step {step}: {name}"
                );
            }
        }
        previous = reused;
    }
}

#[test]
fn tables_without_digests_are_compared() {
    let (services, slices) = varied();
    let computed = compute(&services, &slices, &config());
    let mut edited = computed.clone();
    let shard = shard_table(shard_of("ns", "s1", SHARDS));
    if let Some(table) = edited.tables.get_mut(&shard).map(std::sync::Arc::make_mut) {
        table.chains.remove("mark-for-masquerade");
    }
    // The digest still claims the computed content: a diff would trust it.
    assert!(diff(&computed, &edited).is_none());
    edited.digests.remove(&shard);
    let script = diff(&edited, &computed).expect("a change").to_nft_script();
    assert!(
        script.starts_with(&format!("add chain ip {shard} mark-for-masquerade\n")),
        "{script}"
    );
}

#[test]
fn a_change_touches_only_its_service_shard() {
    let (services, mut slices) = varied();
    let before = compute(&services, &slices, &config());
    slices[3] = slice("s3", &[READY_A]);
    let after = compute(&services, &slices, &config());
    let transaction = diff(&before, &after).expect("a change");
    let tables: Vec<&str> = transaction.parts.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(tables, [shard_table(shard_of("ns", "s3", SHARDS))]);

    // Losing every endpoint also moves the service into the main table's no-endpoint map.
    slices[3] = slice("s3", &[]);
    let empty = compute(&services, &slices, &config());
    let transaction = diff(&after, &empty).expect("a change");
    let mut tables: Vec<&str> = transaction.parts.iter().map(|(t, _)| t.as_str()).collect();
    tables.sort();
    let shard = shard_table(shard_of("ns", "s3", SHARDS));
    assert_eq!(tables, [TABLE, shard.as_str()]);
    let script = transaction.to_nft_script();
    assert!(
        script.contains("add element ip kube-proxy no-endpoint-services { 10.96.1.4 . tcp . 80 : goto reject-chain }"),
        "{script}"
    );
    assert!(
        script.contains(&format!(
            "delete element ip {shard} service-ips {{ 10.96.1.4 . tcp . 80 }}"
        )),
        "{script}"
    );
}

#[test]
fn a_new_shard_count_needs_a_full_sync_that_deletes_stray_tables() {
    let (services, slices) = varied();
    let two = compute_sharded(&services, &slices, &config(), 2);
    let three = compute_sharded(&services, &slices, &config(), 3);
    assert!(diff(&three, &two).is_none(), "another set of tables cannot be diffed");
    let strays = ["kube-proxy".to_string(), "kube-proxy-1".into(), "kube-proxy-2".into()];
    let transaction = full(&two, &strays, &[]);
    // Only kube-proxy-2 goes for good; the wanted tables are recreated (add, delete, add).
    assert_eq!(
        transaction.parts[0],
        ("kube-proxy-2".to_string(), vec![Op::DeleteTable])
    );
    let names: Vec<&str> = transaction.parts.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(names, ["kube-proxy-2", "kube-proxy", "kube-proxy-0", "kube-proxy-1"]);
    for (_, ops) in &transaction.parts[1..] {
        assert_eq!(ops[..3], [Op::AddTable, Op::DeleteTable, Op::AddTable]);
    }
}

#[test]
fn our_tables_are_the_main_one_and_numbered_shards() {
    for ours in ["kube-proxy", "kube-proxy-0", "kube-proxy-15", "kube-proxy-99"] {
        assert!(is_our_table(ours), "{ours}");
    }
    for theirs in [
        "kube-proxy-",
        "kube-proxy-x",
        "kube-proxy-1a",
        "kube-proxyx",
        "kube",
        "filter",
    ] {
        assert!(!is_our_table(theirs), "{theirs}");
    }
}

#[tokio::test]
async fn a_full_sync_deletes_the_stray_tables_the_backend_lists() {
    let (services, slices) = varied();
    let fake = FakeNftBackend::default();
    if let Ok(mut tables) = fake.tables.lock() {
        *tables = vec!["kube-proxy".into(), "kube-proxy-40".into()];
    }
    let mut proxier = NftProxier::new(fake.clone(), Duration::from_secs(3600));
    let ruleset = compute(&services, &slices, &config());
    assert_eq!(proxier.sync(ruleset).await.ok(), Some(SyncKind::Full));
    let calls = fake.take_calls();
    assert!(
        calls[0].starts_with("delete table ip kube-proxy-40\nadd table ip kube-proxy\ndelete table ip kube-proxy\n"),
        "{}",
        &calls[0][..200]
    );
    assert_eq!(calls[0].matches("delete table").count(), SHARDS + 2);
}
