//! Table tests of [`compute`](super::compute): rendered `iptables-restore` text compared with
//! snapshots under `src/testdata/` (`UPDATE_EXPECT=1 cargo test -p proxy` rewrites them).

use k8s_openapi::api::core::v1::{
    ClientIPConfig, LoadBalancerIngress, LoadBalancerStatus, ServicePort, ServiceStatus, SessionAffinityConfig,
};

use crate::testutil::{READY_A, READY_B, check, config, service, slice};

use super::*;

/// Renders only the chains that differ from an empty cluster, so snapshots stay small.
fn render_service_chains(services: &[Service], slices: &[EndpointSlice]) -> String {
    let empty = compute::<Service, EndpointSlice>(&[], &[], &config());
    let rules = compute(services, slices, &config());
    render_diff(&empty, &rules).unwrap_or_default()
}

#[test]
fn empty_cluster_has_only_base_chains() {
    check(
        "empty",
        &render_full(&compute::<Service, EndpointSlice>(&[], &[], &config())),
    );
}

#[test]
fn cluster_ip_with_two_endpoints() {
    let out = render_service_chains(
        &[service("web", "10.96.0.10", |_| {})],
        &[slice("web", &[READY_A, READY_B])],
    );
    assert!(out.contains("--probability 0.5000000000"));
    check("cluster_ip_two_endpoints", &out);
}

#[test]
fn chain_names_match_upstream_hashing() {
    // base32(sha256("ns/web:httptcp"))[:16], computed independently.
    let name = service_port_chain("KUBE-SVC-", "ns/web:http", "tcp");
    assert_eq!(name.len(), "KUBE-SVC-".len() + 16);
    assert!(
        name.chars()
            .skip(9)
            .all(|c| c.is_ascii_uppercase() || ('2'..='7').contains(&c))
    );
    assert_eq!(probability(3), "0.3333333333");
}

#[test]
fn node_port() {
    let out = render_service_chains(
        &[service("web", "10.96.0.10", |spec| {
            spec.type_ = Some("NodePort".into());
            if let Some(port) = spec.ports.as_mut().and_then(|p| p.first_mut()) {
                port.node_port = Some(30080);
            }
        })],
        &[slice("web", &[READY_A, READY_B])],
    );
    assert!(out.contains("-A KUBE-NODEPORTS -p tcp -m tcp --dport 30080:30111 -j KUBE-NPS-TCP-3AC"));
    check("node_port", &out);
}

#[test]
fn no_endpoints_rejects_in_filter() {
    let out = render_service_chains(
        &[service("web", "10.96.0.10", |spec| {
            spec.type_ = Some("NodePort".into());
            spec.external_ips = Some(vec!["192.0.2.1".into()]);
            if let Some(port) = spec.ports.as_mut().and_then(|p| p.first_mut()) {
                port.node_port = Some(30080);
            }
        })],
        &[],
    );
    assert!(!out.contains("*nat"), "no nat rules without endpoints:\n{out}");
    check("no_endpoints", &out);
}

#[test]
fn terminating_endpoints_used_only_without_ready_ones() {
    let terminating = ("10.244.3.3", false, true, true, "node-a");
    let not_serving = ("10.244.3.4", false, false, true, "node-a");
    let out = render_service_chains(
        &[service("web", "10.96.0.10", |_| {})],
        &[slice("web", &[terminating, not_serving])],
    );
    assert!(out.contains("10.244.3.3:8080") && !out.contains("10.244.3.4"));
    check("terminating_only", &out);
    let mixed = render_service_chains(
        &[service("web", "10.96.0.10", |_| {})],
        &[slice("web", &[terminating, READY_B])],
    );
    assert!(!mixed.contains("10.244.3.3"));
}

#[test]
fn session_affinity() {
    let out = render_service_chains(
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
    assert!(out.contains("--rcheck --seconds 600 --reap"));
    check("session_affinity", &out);
}

#[test]
fn external_traffic_policy_local() {
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
    let out = render_service_chains(std::slice::from_ref(&lb), &[slice("web", &[READY_A, READY_B])]);
    check("etp_local", &out);
    // No endpoint on this node: external traffic is dropped, pods still reach the cluster chain.
    let remote_only = render_service_chains(&[lb], &[slice("web", &[READY_B])]);
    assert!(remote_only.contains("has no local endpoints\" -m addrtype --dst-type LOCAL"));
    check("etp_local_no_local_endpoints", &remote_only);
}

#[test]
fn internal_traffic_policy_local() {
    let out = render_service_chains(
        &[service("web", "10.96.0.10", |spec| {
            spec.internal_traffic_policy = Some("Local".into());
        })],
        &[slice("web", &[READY_A, READY_B])],
    );
    assert!(out.contains("KUBE-SVL-") && !out.contains("KUBE-SVC-") && !out.contains("10.244.2.7"));
    check("itp_local", &out);
}

#[test]
fn headless_and_external_name_get_no_rules() {
    let headless = service("db", "None", |_| {});
    let external = service("ext", "", |spec| {
        spec.type_ = Some("ExternalName".into());
        spec.external_name = Some("example.com".into());
    });
    let out = render_service_chains(
        &[headless, external],
        &[slice("db", &[READY_A]), slice("ext", &[READY_A])],
    );
    assert_eq!(out, "");
}

#[test]
fn one_service_change_touches_only_its_chains() {
    let services: Vec<Service> = (0..50)
        .map(|i| service(&format!("s{i}"), &format!("10.96.{}.{}", i / 200, i % 200 + 1), |_| {}))
        .collect();
    let mut slices: Vec<EndpointSlice> = (0..50)
        .map(|i| {
            slice(
                &format!("s{i}"),
                &[(&format!("10.244.0.{}", i + 1), true, true, false, "node-a")],
            )
        })
        .collect();
    let before = compute(&services, &slices, &config());
    slices[7] = slice("s7", &[("10.244.9.9", true, true, false, "node-b")]);
    let after = compute(&services, &slices, &config());
    let diff = render_diff(&before, &after).unwrap_or_default();
    check("one_service_change", &diff);
    assert!(
        !diff.contains("KUBE-SERVICES"),
        "KUBE-SERVICES must not be rewritten:\n{diff}"
    );
    assert!(!diff.contains("*filter"));
    // A new service touches its shard and, the first time the shard appears, KUBE-SERVICES.
    let mut more = services.clone();
    more.push(service("new", "10.96.0.8", |_| {}));
    slices.push(slice("new", &[READY_A]));
    let added = render_diff(&after, &compute(&more, &slices, &config())).unwrap_or_default();
    assert!(added.contains(":KUBE-SVCS-08 - [0:0]") && !added.contains(":KUBE-SERVICES"));
    assert!(render_diff(&after, &after).is_none());
}

#[test]
fn malformed_input_is_skipped() {
    let mut broken = service("web", "10.96.0.10", |spec| {
        spec.ports = Some(vec![
            ServicePort {
                port: 0,
                ..Default::default()
            },
            ServicePort {
                port: 53,
                protocol: Some("ICMP".into()),
                ..Default::default()
            },
        ]);
    });
    broken.metadata.name = None;
    let ipv6 = service("v6", "fd00::1", |_| {});
    let out = render_service_chains(&[broken, ipv6], &[slice("v6", &[("not-an-ip", true, true, false, "")])]);
    assert_eq!(out, "");
}

#[test]
fn large_clusters_drop_the_endpoint_comments_as_upstream() {
    // One service with `count` ready endpoints (10.244.X.Y).
    let rules_with = |count: usize| {
        let ips: Vec<String> = (0..count)
            .map(|i| format!("10.244.{}.{}", i / 250, i % 250 + 1))
            .collect();
        let endpoints: Vec<crate::testutil::Ep<'_>> = ips
            .iter()
            .map(|ip| (ip.as_str(), true, true, false, "node-b"))
            .collect();
        compute(
            &[service("web", "10.96.0.10", |_| {})],
            &[slice("web", &endpoints)],
            &config(),
        )
    };
    let sep_rules = |rules: &RuleSet| -> Vec<String> {
        rules
            .nat
            .iter()
            .filter(|(chain, _)| chain.starts_with("KUBE-SEP-") || chain.starts_with("KUBE-SVC-"))
            .flat_map(|(_, r)| r.iter().cloned())
            .collect()
    };
    let small = rules_with(LARGE_CLUSTER_ENDPOINTS);
    let sep = sep_rules(&small);
    assert!(
        sep.iter()
            .filter(|r| r.contains("-j KUBE-SEP-") || r.contains("DNAT"))
            .all(|r| r.starts_with("-m comment")),
        "at the threshold every rule keeps its comment"
    );

    let large = rules_with(LARGE_CLUSTER_ENDPOINTS + 1);
    let sep = sep_rules(&large);
    let jumps: Vec<&String> = sep.iter().filter(|r| r.contains("-j KUBE-SEP-")).collect();
    let dnats: Vec<&String> = sep.iter().filter(|r| r.contains("-j DNAT")).collect();
    assert_eq!(jumps.len(), LARGE_CLUSTER_ENDPOINTS + 1);
    assert_eq!(dnats.len(), LARGE_CLUSTER_ENDPOINTS + 1);
    assert!(
        jumps.iter().chain(&dnats).all(|r| !r.contains("--comment")),
        "{:?}",
        jumps.first()
    );
    assert!(
        jumps[0].starts_with("-m statistic --mode random --probability "),
        "{}",
        jumps[0]
    );
    assert!(
        dnats
            .iter()
            .any(|r| *r == "-p tcp -m tcp -j DNAT --to-destination 10.244.0.1:8080")
    );
    // The cluster IP's dispatch and masquerade rules keep theirs, as upstream's do.
    let dispatch: Vec<&String> = large
        .nat
        .iter()
        .filter(|(chain, _)| chain.starts_with("KUBE-SVCS-"))
        .flat_map(|(_, r)| r)
        .collect();
    assert_eq!(dispatch.len(), 1);
    assert!(
        dispatch[0].starts_with("-m comment --comment \"ns/web:http cluster IP\""),
        "{}",
        dispatch[0]
    );
    assert!(
        sep.iter()
            .any(|r| r.contains("cluster IP\"") && r.contains("-j KUBE-MARK-MASQ"))
    );
}
