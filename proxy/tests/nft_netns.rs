//! The nftables mode against the real kernel, only inside network namespaces each test
//! creates: the netlink encoding reads back exactly as `nft -f` of the same text, ClusterIPs
//! and NodePorts of services in different shard tables answer through the rules, follow
//! endpoint removal (reject without endpoints), a full sync deletes stray shard tables and
//! keeps session affinity, and `--cleanup` leaves nothing of ours behind.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsFd;
use std::time::Duration;

use common::{Netns, slice};
use k8s_openapi::api::core::v1::{ClientIPConfig, Service, ServicePort, ServiceSpec, SessionAffinityConfig};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use proxy::model::Config;
use proxy::nft::NftProxier;
use proxy::nft::affinity::affinity_sets;
use proxy::nft::compute::{compute, compute_reusing, shard_of};
use proxy::nft::netlink::{NetlinkBackend, delete_tables_blocking};
use proxy::nft::table::{SHARDS, render};
use proxy::proxier::SyncKind;

impl Netns {
    fn backend(&self) -> NetlinkBackend {
        NetlinkBackend::in_netns(&self.0)
    }

    /// Runs `f` on a thread inside the namespace (sockets it makes stay there).
    fn run<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> T {
        let path = format!("/run/netns/{}", self.0);
        std::thread::spawn(move || {
            let file = std::fs::File::open(&path).expect("open netns");
            nix::sched::setns(file.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
            f()
        })
        .join()
        .expect("netns thread")
    }
}

fn service(name: &str, ip: &str, edit: impl FnOnce(&mut ServiceSpec)) -> Service {
    let mut spec = ServiceSpec {
        cluster_ip: Some(ip.into()),
        ports: Some(vec![ServicePort {
            port: 80,
            ..Default::default()
        }]),
        ..Default::default()
    };
    edit(&mut spec);
    Service {
        metadata: ObjectMeta {
            namespace: Some("default".into()),
            name: Some(name.into()),
            ..Default::default()
        },
        spec: Some(spec),
        status: None,
    }
}

fn config() -> Config {
    Config {
        node_name: "n1".into(),
        cluster_cidr: Some("10.244.0.0/16".into()),
    }
}

/// `nft list ruleset` of the namespace (only the tests' tables are in it).
fn listing(netns: &Netns) -> String {
    netns.exec(&["nft", "list", "ruleset"], None)
}

/// The names of the namespace's tables, `family name` each.
fn tables(netns: &Netns) -> Vec<String> {
    netns
        .exec(&["nft", "list", "tables"], None)
        .lines()
        .filter_map(|l| l.strip_prefix("table "))
        .map(str::to_string)
        .collect()
}

/// A cluster that uses every statement the mode writes.
fn every_form() -> (Vec<Service>, Vec<EndpointSlice>) {
    let services = vec![
        service("plain", "10.96.0.10", |_| {}),
        service("empty", "10.96.0.11", |spec| {
            spec.type_ = Some("NodePort".into());
            if let Some(port) = spec.ports.as_mut().and_then(|p| p.first_mut()) {
                port.node_port = Some(30081);
            }
        }),
        service("local", "10.96.0.12", |spec| {
            spec.type_ = Some("NodePort".into());
            spec.external_traffic_policy = Some("Local".into());
            spec.external_ips = Some(vec!["203.0.113.7".into()]);
            spec.session_affinity = Some("ClientIP".into());
            spec.session_affinity_config = Some(SessionAffinityConfig {
                client_ip: Some(ClientIPConfig {
                    timeout_seconds: Some(600),
                }),
            });
            if let Some(port) = spec.ports.as_mut().and_then(|p| p.first_mut()) {
                port.node_port = Some(30082);
                port.protocol = Some("UDP".into());
            }
        }),
    ];
    let mut local = slice("local", &["10.244.0.5", "10.244.0.6"], Some("n1"));
    if let Some(port) = local.ports.as_mut().and_then(|p| p.first_mut()) {
        port.protocol = Some("UDP".into());
    }
    let slices = vec![
        slice("plain", &["10.244.0.2", "10.244.0.3", "10.244.0.4"], Some("n1")),
        local,
    ];
    (services, slices)
}

#[tokio::test]
async fn netlink_encoding_reads_back_as_nft_text() {
    let (services, slices) = every_form();
    let table = compute(&services, &slices, &config());
    let text = render(&table);
    for form in [
        "numgen",
        "update @affinity-",
        "fib saddr",
        "goto reject-chain",
        "dnat to",
        "!= 10.244.0.0/16",
    ] {
        assert!(text.contains(form), "the cluster must exercise {form:?}:\n{text}");
    }
    let by_nft = Netns::create("kproxy-nft", "text");
    by_nft.exec(&["nft", "-f", "-"], Some(&text));
    let by_netlink = Netns::create("kproxy-nft", "netlink");
    let mut proxier = NftProxier::new(by_netlink.backend(), Duration::from_secs(3600));
    let synced = proxier.sync(table.clone()).await;
    assert!(matches!(synced, Ok(SyncKind::Full)), "{synced:?}");
    let (want, got) = (listing(&by_nft), listing(&by_netlink));
    assert!(want.contains("chain services"), "{want}");
    assert_eq!(got, want);
    // A second full sync over the table rewrites it to the same content.
    proxier.request_full_sync();
    assert!(matches!(proxier.sync(table).await, Ok(SyncKind::Full)));
    assert_eq!(listing(&by_netlink), want);
}

/// What one connection to `to` answers, made from inside `netns`.
fn ask(netns: &Netns, to: SocketAddr) -> String {
    netns.run(move || {
        let mut stream = match TcpStream::connect_timeout(&to, Duration::from_secs(2)) {
            Ok(stream) => stream,
            Err(error) => return format!("error: {error}"),
        };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
        let mut answer = String::new();
        let _ = stream.read_to_string(&mut answer);
        answer
    })
}

/// Serves `name` to every connection on `addr` inside `netns`, until the process ends.
fn serve(netns: &Netns, addr: &str, name: &'static str) {
    let addr: SocketAddr = addr.parse().expect("address");
    let listener = netns.run(move || TcpListener::bind(addr).expect("bind"));
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut stream = stream;
            let _ = stream.write_all(name.as_bytes());
        }
    });
}

/// Three service names of `default` that land in three different shard tables.
fn names_in_distinct_shards() -> [String; 3] {
    let mut names: Vec<String> = Vec::new();
    let mut shards = Vec::new();
    for i in 0.. {
        let name = format!("web{i}");
        let shard = shard_of("default", &name, SHARDS);
        if !shards.contains(&shard) {
            shards.push(shard);
            names.push(name);
        }
        if names.len() == 3 {
            break;
        }
    }
    [names[0].clone(), names[1].clone(), names[2].clone()]
}

/// A node namespace: the node's own address 10.250.0.1 and two "pod" addresses serving "a"
/// (10.244.0.2:8080) and "b" (10.244.0.3:8080), all local to the namespace, on a veth pair
/// whose both ends stay inside it: no route leaves it.
fn node_with_two_pods(test: &str) -> Netns {
    let node = Netns::create("kproxy-nft", test);
    node.exec(&["ip", "link", "set", "lo", "up"], None);
    node.exec(
        &[
            "ip", "link", "add", "kproxy0", "type", "veth", "peer", "name", "kproxy1",
        ],
        None,
    );
    node.exec(&["ip", "link", "set", "kproxy0", "up"], None);
    node.exec(&["ip", "link", "set", "kproxy1", "up"], None);
    for address in ["10.250.0.1/32", "10.244.0.2/32", "10.244.0.3/32"] {
        node.exec(&["ip", "addr", "add", address, "dev", "kproxy0"], None);
    }
    // The service range needs a route for the first lookup, before DNAT rewrites it.
    node.exec(&["ip", "route", "add", "10.96.0.0/16", "dev", "kproxy0"], None);
    serve(&node, "10.244.0.2:8080", "a");
    serve(&node, "10.244.0.3:8080", "b");
    node
}

#[tokio::test]
async fn services_in_several_shards_answer_follow_endpoint_removal_and_cleanup() {
    let node = node_with_two_pods("traffic");
    // Something of the node's own on the first node port: reached only if no rule takes the
    // connection (neither DNAT nor the no-endpoint reject).
    serve(&node, "10.250.0.1:30080", "node");

    // Three NodePort services, each in its own shard; a packet for the later ones passes
    // through the nat chains of the other shards first (in whatever order the kernel has them).
    let [first, second, third] = names_in_distinct_shards();
    let node_port = |name: &str, ip: &str, port: i32| {
        service(name, ip, |spec| {
            spec.type_ = Some("NodePort".into());
            if let Some(p) = spec.ports.as_mut().and_then(|p| p.first_mut()) {
                p.node_port = Some(port);
            }
        })
    };
    let services = vec![
        node_port(&first, "10.96.0.10", 30080),
        node_port(&second, "10.96.0.11", 30081),
        node_port(&third, "10.96.0.12", 30082),
    ];
    let mut slices = vec![
        slice(&first, &["10.244.0.2", "10.244.0.3"], Some("n1")),
        slice(&second, &["10.244.0.2"], Some("n1")),
        slice(&third, &["10.244.0.3"], Some("n1")),
    ];
    let mut proxier = NftProxier::new(node.backend(), Duration::from_secs(3600));
    let synced = proxier.sync(compute(&services, &slices, &config())).await;
    assert!(matches!(synced, Ok(SyncKind::Full)), "{synced:?}");
    assert_eq!(tables(&node).len(), SHARDS + 1, "{:?}", tables(&node));

    let addr = |text: &str| -> SocketAddr { text.parse().expect("address") };
    let (cluster_ip, node_port_addr) = (addr("10.96.0.10:80"), addr("10.250.0.1:30080"));
    for to in [cluster_ip, node_port_addr] {
        let answers: Vec<String> = (0..24).map(|_| ask(&node, to)).collect();
        assert!(
            answers.iter().any(|a| a == "a") && answers.iter().any(|a| a == "b"),
            "{to} must reach both endpoints: {answers:?}"
        );
        assert!(answers.iter().all(|a| a == "a" || a == "b"), "{answers:?}");
    }
    for (to, want) in [
        ("10.96.0.11:80", "a"),
        ("10.250.0.1:30081", "a"),
        ("10.96.0.12:80", "b"),
        ("10.250.0.1:30082", "b"),
    ] {
        for _ in 0..4 {
            assert_eq!(ask(&node, addr(to)), want, "{to}");
        }
    }

    // Endpoint removal: one incremental transaction, after which only "a" answers. Computed
    // as kube-proxy's loop does, the other shards being the applied tables themselves.
    slices[0] = slice(&first, &["10.244.0.2"], Some("n1"));
    let desired = compute_reusing(&services, &slices, &config(), proxier.applied());
    let synced = proxier.sync(desired).await;
    assert!(matches!(synced, Ok(SyncKind::Partial { .. })), "{synced:?}");
    for to in [cluster_ip, node_port_addr] {
        let answers: Vec<String> = (0..12).map(|_| ask(&node, to)).collect();
        assert!(answers.iter().all(|a| a == "a"), "{to}: {answers:?}");
    }

    // No endpoints left: the ClusterIP and the node port are rejected (connection refused),
    // not left hanging or handed to the node's own listener; the other shards still answer.
    slices[0] = slice(&first, &[], Some("n1"));
    let desired = compute_reusing(&services, &slices, &config(), proxier.applied());
    assert!(proxier.sync(desired).await.is_ok());
    for to in [cluster_ip, node_port_addr] {
        let refused = ask(&node, to);
        assert!(
            refused.starts_with("error") && refused.contains("refused"),
            "{to}: {refused}"
        );
    }
    let gone = format!("-default/{first}/");
    assert!(
        !listing(&node)
            .lines()
            .any(|l| l.contains("chain endpoint-") && l.contains(&gone)),
        "{}",
        listing(&node)
    );
    assert_eq!(ask(&node, addr("10.96.0.11:80")), "a");
    assert_eq!(ask(&node, addr("10.250.0.1:30082")), "b");

    // --cleanup's nftables part leaves none of our tables; a second cleanup finds nothing.
    let backend = node.backend();
    delete_tables_blocking(&backend).expect("cleanup");
    assert_eq!(tables(&node), Vec::<String>::new());
    delete_tables_blocking(&backend).expect("second cleanup");
    // Without the rules the node's own listener gets the node port again.
    assert_eq!(ask(&node, node_port_addr), "node");
}

#[tokio::test]
async fn full_sync_and_cleanup_remove_stray_shards_only() {
    let node = Netns::create("kproxy-nft", "strays");
    // A shard of a layout with more shards, and tables that are not ours.
    node.exec(
        &["nft", "-f", "-"],
        Some("add table ip kube-proxy-99\nadd table ip kube-proxy-extra\nadd table inet kube-proxy\nadd table ip other\n"),
    );
    let (services, slices) = every_form();
    let mut proxier = NftProxier::new(node.backend(), Duration::from_secs(3600));
    let synced = proxier.sync(compute(&services, &slices, &config())).await;
    assert!(matches!(synced, Ok(SyncKind::Full)), "{synced:?}");
    let after_sync = tables(&node);
    assert!(!after_sync.contains(&"ip kube-proxy-99".to_string()), "{after_sync:?}");
    for kept in [
        "ip kube-proxy-extra",
        "inet kube-proxy",
        "ip other",
        "ip kube-proxy",
        "ip kube-proxy-0",
    ] {
        assert!(after_sync.contains(&kept.to_string()), "{kept} missing: {after_sync:?}");
    }
    node.exec(&["nft", "add", "table", "ip", "kube-proxy-42"], None);
    delete_tables_blocking(&node.backend()).expect("cleanup");
    let mut left = tables(&node);
    left.sort();
    assert_eq!(left, ["inet kube-proxy", "ip kube-proxy-extra", "ip other"]);
}

/// Session affinity holds across a full sync, which deletes and recreates the tables: the
/// client's entry is read back from the kernel and written into the new set with what was left
/// of its timeout, so the client keeps its endpoint.
#[tokio::test]
async fn session_affinity_survives_a_full_sync() {
    let node = node_with_two_pods("affinity");
    let services = vec![service("sticky", "10.96.0.20", |spec| {
        spec.session_affinity = Some("ClientIP".into());
        spec.session_affinity_config = Some(SessionAffinityConfig {
            client_ip: Some(ClientIPConfig {
                timeout_seconds: Some(600),
            }),
        });
    })];
    let slices = vec![slice("sticky", &["10.244.0.2", "10.244.0.3"], Some("n1"))];
    let backend = node.backend();
    let mut proxier = NftProxier::new(backend.clone(), Duration::from_secs(3600));
    let desired = compute(&services, &slices, &config());
    let sets = affinity_sets(&desired);
    assert!(matches!(proxier.sync(desired).await, Ok(SyncKind::Full)));

    let to: SocketAddr = "10.96.0.20:80".parse().expect("address");
    let chosen = ask(&node, to);
    assert!(chosen == "a" || chosen == "b", "{chosen}");
    for _ in 0..6 {
        assert_eq!(ask(&node, to), chosen, "affinity before the full sync");
    }
    let client: std::net::Ipv4Addr = "10.250.0.1".parse().expect("address");
    let learnt = backend.affinity_blocking(&sets).expect("read the affinity sets");
    assert!(
        learnt.len() == 1 && learnt[0].client == client && learnt[0].remaining_ms <= 600_000,
        "{learnt:?}"
    );

    proxier.request_full_sync();
    let synced = proxier.sync(compute(&services, &slices, &config())).await;
    assert!(matches!(synced, Ok(SyncKind::Full)), "{synced:?}");
    let kept = backend.affinity_blocking(&sets).expect("read the affinity sets again");
    assert!(
        kept.len() == 1
            && kept[0].set == learnt[0].set
            && kept[0].client == client
            && kept[0].remaining_ms <= learnt[0].remaining_ms
            && kept[0].remaining_ms > 590_000,
        "the entry is back with what was left of its timeout: {kept:?} (was {learnt:?})"
    );
    // nft shows an element's own timeout only where it differs from the set's.
    assert!(
        listing(&node).contains("elements = { 10.250.0.1 "),
        "{}",
        listing(&node)
    );
    for _ in 0..6 {
        assert_eq!(ask(&node, to), chosen, "affinity after the full sync");
    }
}
