//! Table tests of the nftables mode: [`compute`](super::compute::compute) rendered as `nft -f`
//! text against snapshots under `src/testdata/nft_*.txt`, the incremental transactions of
//! [`diff`](super::diff::diff), and the proxier's choice between full and partial syncs.

use std::time::Duration;

use k8s_openapi::api::core::v1::{
    ClientIPConfig, LoadBalancerIngress, LoadBalancerStatus, Service, ServiceStatus, SessionAffinityConfig,
};
use k8s_openapi::api::discovery::v1::EndpointSlice;

use super::affinity::{Remembered, affinity_sets};
use super::compute::{compute, compute_sharded, shard_of};
use super::diff::{diff, full};
use super::table::{SHARDS, TABLE, render, shard_table};
use super::{FakeNftBackend, NftProxier};
use crate::proxier::SyncKind;
use crate::testutil::{READY_A, READY_B, check, config, service, slice};

/// The operations that add this cluster's service objects to an empty cluster's table.
fn service_ops(services: &[Service], slices: &[EndpointSlice]) -> String {
    let empty = compute::<Service, EndpointSlice>(&[], &[], &config());
    let table = compute(services, slices, &config());
    diff(&empty, &table).map(|t| t.to_nft_script()).unwrap_or_default()
}

/// The shard table of Service `ns/web`.
fn web_shard() -> String {
    shard_table(shard_of("ns", "web", SHARDS))
}

fn node_port(name: &str) -> Service {
    service(name, "10.96.0.10", |spec| {
        spec.type_ = Some("NodePort".into());
        if let Some(port) = spec.ports.as_mut().and_then(|p| p.first_mut()) {
            port.node_port = Some(30080);
        }
    })
}

#[test]
fn empty_cluster_has_only_base_chains_and_maps() {
    // Two shards keep the snapshot readable; every shard has the same base.
    check(
        "nft_empty",
        &render(&compute_sharded::<Service, EndpointSlice>(&[], &[], &config(), 2)),
    );
    let all = compute::<Service, EndpointSlice>(&[], &[], &config());
    assert_eq!(all.tables.len(), SHARDS + 1);
    let shards: Vec<_> = all.tables.iter().filter(|(name, _)| name.as_str() != TABLE).collect();
    assert!(
        shards.iter().all(|(_, table)| *table == shards[0].1),
        "identical empty shards"
    );
}

#[test]
fn cluster_ip_with_two_endpoints() {
    let out = service_ops(
        &[service("web", "10.96.0.10", |_| {})],
        &[slice("web", &[READY_A, READY_B])],
    );
    assert!(out.contains("numgen random mod 2 == 0 goto endpoint-"), "{out}");
    let shard = web_shard();
    assert!(out.contains(&format!(
        "add element ip {shard} service-ips {{ 10.96.0.10 . tcp . 80 : goto service-"
    )));
    assert!(out.contains("add element ip kube-proxy cluster-ips { 10.96.0.10 }"));
    check("nft_cluster_ip_two_endpoints", &out);
}

#[test]
fn node_port_goes_through_the_external_chain() {
    let out = service_ops(&[node_port("web")], &[slice("web", &[READY_A, READY_B])]);
    assert!(
        out.contains("service-nodeports { tcp . 30080 : goto external-"),
        "{out}"
    );
    check("nft_node_port", &out);
}

#[test]
fn no_endpoints_reject_and_no_local_endpoints_drop() {
    let mut with_ips = node_port("web");
    if let Some(spec) = with_ips.spec.as_mut() {
        spec.external_ips = Some(vec!["192.0.2.1".into()]);
    }
    let out = service_ops(std::slice::from_ref(&with_ips), &[]);
    assert!(!out.contains("add chain"), "no chains without endpoints:\n{out}");
    check("nft_no_endpoints", &out);

    let mut local = with_ips;
    if let Some(spec) = local.spec.as_mut() {
        spec.external_traffic_policy = Some("Local".into());
    }
    let remote_only = service_ops(&[local], &[slice("web", &[READY_B])]);
    assert!(
        remote_only.contains("no-endpoint-nodeports { tcp . 30080 : drop }"),
        "{remote_only}"
    );
    assert!(remote_only.contains("fib saddr type local goto service-"));
    check("nft_etp_local_no_local_endpoints", &remote_only);
}

#[test]
fn terminating_endpoints_used_only_without_ready_ones() {
    let terminating = ("10.244.3.3", false, true, true, "node-a");
    let not_serving = ("10.244.3.4", false, false, true, "node-a");
    let out = service_ops(
        &[service("web", "10.96.0.10", |_| {})],
        &[slice("web", &[terminating, not_serving])],
    );
    assert!(
        out.contains("dnat to 10.244.3.3:8080") && !out.contains("10.244.3.4"),
        "{out}"
    );
    let mixed = service_ops(
        &[service("web", "10.96.0.10", |_| {})],
        &[slice("web", &[terminating, READY_B])],
    );
    assert!(!mixed.contains("10.244.3.3"));
}

#[test]
fn session_affinity_uses_dynamic_sets() {
    let out = service_ops(
        &[service("web", "10.96.0.10", |spec| {
            spec.session_affinity = Some("ClientIP".into());
            spec.session_affinity_config = Some(SessionAffinityConfig {
                client_ip: Some(ClientIPConfig {
                    timeout_seconds: Some(600),
                }),
            });
        })],
        &[slice("web", &[READY_A, READY_B])],
    );
    assert!(out.contains("flags dynamic,timeout ; timeout 600s"), "{out}");
    assert!(out.contains("update @affinity-"));
    check("nft_session_affinity", &out);
}

#[test]
fn traffic_policies_local() {
    let mut lb = service("web", "10.96.0.10", |spec| {
        spec.type_ = Some("LoadBalancer".into());
        spec.external_traffic_policy = Some("Local".into());
        if let Some(port) = spec.ports.as_mut().and_then(|p| p.first_mut()) {
            port.node_port = Some(30080);
        }
    });
    lb.status = Some(ServiceStatus {
        load_balancer: Some(LoadBalancerStatus {
            ingress: Some(vec![LoadBalancerIngress {
                ip: Some("203.0.113.9".into()),
                ..Default::default()
            }]),
        }),
        ..Default::default()
    });
    let out = service_ops(std::slice::from_ref(&lb), &[slice("web", &[READY_A, READY_B])]);
    assert!(out.contains(&format!("add chain ip {} local-", web_shard())));
    check("nft_etp_local", &out);

    let itp = service_ops(
        &[service("web", "10.96.0.10", |spec| {
            spec.internal_traffic_policy = Some("Local".into());
        })],
        &[slice("web", &[READY_A, READY_B])],
    );
    assert!(
        itp.contains(&format!("chain ip {} local-", web_shard()))
            && !itp
                .lines()
                .any(|l| l.starts_with("add chain") && l.contains(" service-")),
        "{itp}"
    );
    assert!(!itp.contains("10.244.2.7"), "{itp}");
    check("nft_itp_local", &itp);
}

#[test]
fn headless_and_external_name_get_no_rules() {
    let headless = service("db", "None", |_| {});
    let external = service("ext", "", |spec| {
        spec.type_ = Some("ExternalName".into());
        spec.external_name = Some("example.com".into());
    });
    let out = service_ops(
        &[headless, external],
        &[slice("db", &[READY_A]), slice("ext", &[READY_A])],
    );
    assert_eq!(out, "");
}

fn fifty() -> (Vec<Service>, Vec<EndpointSlice>) {
    let services: Vec<Service> = (0..50)
        .map(|i| service(&format!("s{i}"), &format!("10.96.0.{}", i + 1), |_| {}))
        .collect();
    let slices: Vec<EndpointSlice> = (0..50)
        .map(|i| {
            slice(
                &format!("s{i}"),
                &[(&format!("10.244.0.{}", i + 1), true, true, false, "node-a")],
            )
        })
        .collect();
    (services, slices)
}

#[test]
fn one_endpoint_change_touches_only_its_chains_and_element() {
    let (services, mut slices) = fifty();
    let before = compute(&services, &slices, &config());
    slices[7] = slice("s7", &[("10.244.9.9", true, true, false, "node-b")]);
    let after = compute(&services, &slices, &config());
    let ops = diff(&before, &after).unwrap_or_default().to_nft_script();
    check("nft_one_endpoint_change", &ops);
    assert!(
        !ops.contains("service-ips"),
        "the map element still points at the same chain:\n{ops}"
    );
    assert_eq!(ops.lines().filter(|l| l.starts_with("delete chain")).count(), 1);

    // Removing every endpoint: the service moves from service-ips to no-endpoint-services.
    slices[7] = slice("s7", &[]);
    let empty = compute(&services, &slices, &config());
    let ops = diff(&after, &empty).unwrap_or_default().to_nft_script();
    assert!(
        ops.contains(&format!(
            "delete element ip {} service-ips {{ 10.96.0.8 . tcp . 80 }}",
            shard_table(shard_of("ns", "s7", SHARDS))
        )),
        "{ops}"
    );
    assert!(
        ops.contains("add element ip kube-proxy no-endpoint-services { 10.96.0.8 . tcp . 80 : goto reject-chain }")
    );
    let deletions: Vec<&str> = ops.lines().filter(|l| l.starts_with("delete chain")).collect();
    assert!(
        deletions.len() == 2 && deletions[0].contains(" service-"),
        "{deletions:?}"
    );
    assert!(diff(&empty, &empty).is_none());
}

#[tokio::test]
async fn proxier_syncs_full_then_partial_then_nothing() {
    let (services, mut slices) = fifty();
    let fake = FakeNftBackend::default();
    let mut proxier = NftProxier::new(fake.clone(), Duration::from_secs(3600));
    let first = compute(&services, &slices, &config());
    assert_eq!(proxier.sync(first.clone()).await.ok(), Some(SyncKind::Full));
    let calls = fake.take_calls();
    assert_eq!(calls, vec![full(&first, &[], &[]).to_nft_script()]);
    assert!(calls[0].starts_with("add table ip kube-proxy\ndelete table ip kube-proxy\nadd table"));

    slices[3] = slice("s3", &[("10.244.7.7", true, true, false, "node-a")]);
    let second = compute(&services, &slices, &config());
    assert_eq!(
        proxier.sync(second.clone()).await.ok(),
        Some(SyncKind::Partial { chains: 3 })
    );
    assert_eq!(fake.take_calls().len(), 1);
    assert_eq!(proxier.sync(second.clone()).await.ok(), Some(SyncKind::Unchanged));
    assert!(fake.take_calls().is_empty());

    // A failure makes the next sync full.
    if let Ok(mut fail) = fake.fail_next.lock() {
        *fail = true;
    }
    assert!(proxier.sync(first.clone()).await.is_err());
    assert_eq!(proxier.sync(first).await.ok(), Some(SyncKind::Full));
}

#[tokio::test]
async fn a_full_sync_puts_the_session_affinity_entries_back() {
    let services = [service("web", "10.96.0.10", |spec| {
        spec.session_affinity = Some("ClientIP".into());
        spec.session_affinity_config = Some(SessionAffinityConfig {
            client_ip: Some(ClientIPConfig {
                timeout_seconds: Some(600),
            }),
        });
    })];
    let desired = compute(&services, &[slice("web", &[READY_A, READY_B])], &config());
    let sets = affinity_sets(&desired);
    assert_eq!(sets.len(), 2, "one set per endpoint: {sets:?}");
    let (table, set) = sets[0].clone();
    let entry = |set: &str, client: [u8; 4], remaining_ms| Remembered {
        table: table.clone(),
        set: set.to_owned(),
        client: client.into(),
        remaining_ms,
    };
    let fake = FakeNftBackend::default();
    *fake.tables.lock().expect("tables") = vec![TABLE.to_owned(), table.clone()];
    *fake.remembered.lock().expect("remembered") = vec![
        entry(&set, [10, 0, 0, 5], 90_000),
        // Longer than the set's timeout now (it was lowered): clamped to it.
        entry(&set, [10, 0, 0, 6], 7_200_000),
        // A set the new tables no longer have.
        entry("affinity-gone", [10, 0, 0, 7], 1_000),
    ];
    let mut proxier = NftProxier::new(fake.clone(), Duration::from_secs(3600));
    assert_eq!(proxier.sync(desired).await.ok(), Some(SyncKind::Full));
    let script = fake.take_calls().concat();
    let delete = script
        .find(&format!("delete table ip {table}\n"))
        .expect("the table is replaced");
    for element in [
        format!("add element ip {table} {set} {{ 10.0.0.5 timeout 90000ms }}"),
        format!("add element ip {table} {set} {{ 10.0.0.6 timeout 600000ms }}"),
    ] {
        let at = script
            .find(&element)
            .unwrap_or_else(|| panic!("{element} missing:\n{script}"));
        assert!(at > delete, "{element} must come after the table is recreated");
    }
    assert!(!script.contains("10.0.0.7"), "{script}");
}
