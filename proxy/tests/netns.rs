//! Runs the proxier against real iptables, only inside a network namespace each test creates.

mod common;

use std::time::Duration;

use common::{Netns, slice};
use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use proxy::iptables::{CommandBackend, ResyncPlan, cleanup, plan_resync};
use proxy::proxier::{Proxier, SyncKind};
use proxy::rules::{Config, compute};

impl Netns {
    /// `iptables-save` without comment lines.
    fn save(&self) -> String {
        self.exec(&["iptables-save"], None)
            .lines()
            .filter(|l| !l.starts_with('#'))
            .map(|l| format!("{l}\n"))
            .collect()
    }

    fn backend(&self) -> CommandBackend {
        CommandBackend::in_netns(&self.0, "iptables-restore", "iptables-save")
    }
}

fn service(name: &str, ip: &str) -> Service {
    Service {
        metadata: ObjectMeta {
            namespace: Some("default".into()),
            name: Some(name.into()),
            ..Default::default()
        },
        spec: Some(ServiceSpec {
            cluster_ip: Some(ip.into()),
            ports: Some(vec![ServicePort {
                port: 80,
                ..Default::default()
            }]),
            ..Default::default()
        }),
        status: None,
    }
}

const FOREIGN: &str = "*nat
:FOREIGN - [0:0]
-A PREROUTING -j FOREIGN
-A FOREIGN -d 1.2.3.4/32 -j RETURN
COMMIT
*filter
-A INPUT -s 5.6.7.8/32 -j ACCEPT
COMMIT
";

#[tokio::test]
async fn sync_partial_update_resync_and_cleanup() {
    let netns = Netns::create("kproxy-test", "sync");
    netns.exec(&["iptables-restore", "--noflush"], Some(FOREIGN));
    let before = netns.save();
    let config = Config {
        node_name: "n1".into(),
        cluster_cidr: Some("10.244.0.0/16".into()),
    };
    let services = vec![
        service("a", "10.96.0.10"),
        service("b", "10.96.0.11"),
        service("c", "10.96.0.12"),
    ];
    let mut slices = vec![
        slice("a", &["10.244.0.2", "10.244.0.3"], None),
        slice("b", &["10.244.0.4"], None),
    ];
    let mut proxier = Proxier::new(netns.backend(), Duration::from_secs(3600));

    let first = compute(&services, &slices, &config);
    assert_eq!(proxier.sync(first).await.ok(), Some(SyncKind::Full));
    let applied = netns.save();
    assert!(applied.contains("-A PREROUTING -j FOREIGN") && applied.contains("-A INPUT -s 5.6.7.8/32 -j ACCEPT"));
    assert!(applied.contains("-A PREROUTING -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES"));
    assert!(applied.contains("--to-destination 10.244.0.3:8080"));
    assert!(applied.contains("default/c has no endpoints"), "{applied}");

    // One service changes: only its chains are restored.
    slices[1] = slice("b", &["10.244.0.9"], None);
    let second = compute(&services, &slices, &config);
    assert!(matches!(
        proxier.sync(second.clone()).await,
        Ok(SyncKind::Partial { chains: 3 })
    ));
    let updated = netns.save();
    assert!(updated.contains("--to-destination 10.244.0.9:8080") && !updated.contains("10.244.0.4:8080"));
    let untouched = |text: &str| -> Vec<String> {
        text.lines()
            .filter(|l| !l.contains("default/b"))
            .map(String::from)
            .collect()
    };
    let (old_lines, new_lines) = (untouched(&applied), untouched(&updated));
    assert_eq!(
        old_lines.iter().filter(|l| l.starts_with("-A")).count(),
        new_lines.iter().filter(|l| l.starts_with("-A")).count()
    );

    // A full resync over exact tables restores nothing.
    proxier.request_full_sync();
    assert_eq!(
        proxier.sync(second.clone()).await.ok(),
        Some(SyncKind::Resync { repaired: 0 })
    );
    assert_eq!(netns.save(), updated);

    // Drift: someone flushes a shard chain, adds a stray chain of ours and deletes a jump
    // from a built-in chain; a full resync repairs exactly that.
    netns.exec(&["iptables", "-t", "nat", "-F", "KUBE-SVCS-0A"], None);
    netns.exec(&["iptables", "-t", "nat", "-N", "KUBE-SEP-STRAY"], None);
    netns.exec(
        &[
            "iptables",
            "-t",
            "filter",
            "-D",
            "FORWARD",
            "-m",
            "comment",
            "--comment",
            "kubernetes forwarding rules",
            "-j",
            "KUBE-FORWARD",
        ],
        None,
    );
    let drifted = netns.save();
    assert!(!drifted.contains("-A KUBE-SVCS-0A") && drifted.contains(":KUBE-SEP-STRAY"));
    assert!(!drifted.contains("-j KUBE-FORWARD"));
    proxier.request_full_sync();
    assert_eq!(
        proxier.sync(second.clone()).await.ok(),
        Some(SyncKind::Resync { repaired: 2 })
    );
    assert_eq!(netns.save(), updated);

    // Someone deletes all of our chains (e.g. a firewall reload): restored whole.
    cleanup(&netns.backend()).await.expect("cleanup");
    proxier.request_full_sync();
    assert_eq!(proxier.sync(second).await.ok(), Some(SyncKind::Full));
    assert_eq!(netns.save(), updated);

    // Cleanup leaves iptables as it was found.
    cleanup(&netns.backend()).await.expect("cleanup");
    assert_eq!(netns.save(), before);
}

/// Every rule form `compute` writes reads back from `iptables-save` as the same rule, so that a
/// full resync over the tables it just wrote restores nothing.
#[tokio::test]
async fn resync_after_sync_finds_every_rule_form_in_place() {
    let netns = Netns::create("kproxy-test", "fixpoint");
    let config = Config {
        node_name: "n1".into(),
        cluster_cidr: Some("10.244.0.0/16".into()),
    };
    let mut services = vec![service("plain", "10.96.0.10"), service("empty", "10.96.0.11")];
    let mut node_port = service("np", "10.96.0.12");
    if let Some(spec) = node_port.spec.as_mut() {
        spec.type_ = Some("LoadBalancer".into());
        spec.external_traffic_policy = Some("Local".into());
        spec.external_ips = Some(vec!["203.0.113.7".into()]);
        spec.session_affinity = Some("ClientIP".into());
        if let Some(port) = spec.ports.as_mut().and_then(|p| p.first_mut()) {
            port.node_port = Some(30080);
            port.protocol = Some("UDP".into());
        }
    }
    services.push(node_port);
    let mut local_only = service("itp", "10.96.0.13");
    if let Some(spec) = local_only.spec.as_mut() {
        spec.internal_traffic_policy = Some("Local".into());
        spec.type_ = Some("NodePort".into());
        if let Some(port) = spec.ports.as_mut().and_then(|p| p.first_mut()) {
            port.node_port = Some(30081);
        }
    }
    services.push(local_only);
    let mut slices = vec![
        slice("plain", &["10.244.0.2", "10.244.0.3", "10.244.0.4"], None),
        slice("np", &["10.244.0.5", "10.244.0.6"], None),
        slice("itp", &["10.244.0.7"], None),
    ];
    for slice in &mut slices {
        if let Some(port) = slice.ports.as_mut().and_then(|p| p.first_mut())
            && slice.metadata.name.as_deref() == Some("np-x")
        {
            port.protocol = Some("UDP".into());
        }
        for endpoint in slice.endpoints.iter_mut().flatten() {
            if endpoint.addresses.first().is_some_and(|a| a == "10.244.0.5") {
                endpoint.node_name = Some("n1".into());
            }
        }
    }
    let desired = compute(&services, &slices, &config);
    let rendered = proxy::rules::render_full(&desired);
    for form in [
        "--rcheck",
        "--probability",
        "REJECT",
        "DROP",
        "--dst-type LOCAL",
        "! -s",
        "KUBE-SVL-",
        "KUBE-EXT-",
    ] {
        assert!(
            rendered.contains(form),
            "the cluster must exercise {form:?}:\n{rendered}"
        );
    }
    let mut proxier = Proxier::new(netns.backend(), Duration::from_secs(3600));
    assert_eq!(proxier.sync(desired.clone()).await.ok(), Some(SyncKind::Full));
    let saved = netns.save();
    assert_eq!(plan_resync(&saved, &desired), ResyncPlan::InSync, "{saved}");
}
