//! The nftables mode against the real kernel, only inside network namespaces each test
//! creates: the netlink encoding reads back exactly as `nft -f` of the same text, and a
//! ClusterIP and a NodePort answer through the rules, follow endpoint removal, and `--cleanup`
//! leaves nothing behind.

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
use proxy::nft::compute::compute;
use proxy::nft::netlink::{NetlinkBackend, delete_table_blocking};
use proxy::nft::table::render;
use proxy::nft::{NftBackend, NftProxier};
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

/// `nft list table ip kube-proxy`, or "" when there is none.
fn listing(netns: &Netns) -> String {
    let tables = netns.exec(&["nft", "list", "tables"], None);
    if !tables.contains("kube-proxy") {
        return String::new();
    }
    netns.exec(&["nft", "list", "table", "ip", "kube-proxy"], None)
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

#[tokio::test]
async fn cluster_ip_and_node_port_answer_follow_endpoint_removal_and_cleanup() {
    let node = Netns::create("kproxy-nft", "traffic");
    // The node's own address and two "pod" addresses, all local to the namespace, on a veth
    // pair whose both ends stay inside it: no route leaves it.
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

    let node_port = |name: &str, ip: &str| {
        service(name, ip, |spec| {
            spec.type_ = Some("NodePort".into());
            if let Some(port) = spec.ports.as_mut().and_then(|p| p.first_mut()) {
                port.node_port = Some(30080);
            }
        })
    };
    let services = vec![node_port("web", "10.96.0.10")];
    let mut slices = vec![slice("web", &["10.244.0.2", "10.244.0.3"], Some("n1"))];
    let mut proxier = NftProxier::new(node.backend(), Duration::from_secs(3600));
    let synced = proxier.sync(compute(&services, &slices, &config())).await;
    assert!(matches!(synced, Ok(SyncKind::Full)), "{synced:?}");

    let cluster_ip: SocketAddr = "10.96.0.10:80".parse().expect("address");
    let node_port_addr: SocketAddr = "10.250.0.1:30080".parse().expect("address");
    for to in [cluster_ip, node_port_addr] {
        let answers: Vec<String> = (0..24).map(|_| ask(&node, to)).collect();
        assert!(
            answers.iter().any(|a| a == "a") && answers.iter().any(|a| a == "b"),
            "{to} must reach both endpoints: {answers:?}"
        );
        assert!(answers.iter().all(|a| a == "a" || a == "b"), "{answers:?}");
    }

    // Endpoint removal: one incremental transaction, after which only "a" answers.
    slices[0] = slice("web", &["10.244.0.2"], Some("n1"));
    let synced = proxier.sync(compute(&services, &slices, &config())).await;
    assert!(matches!(synced, Ok(SyncKind::Partial { .. })), "{synced:?}");
    for to in [cluster_ip, node_port_addr] {
        let answers: Vec<String> = (0..12).map(|_| ask(&node, to)).collect();
        assert!(answers.iter().all(|a| a == "a"), "{to}: {answers:?}");
    }

    // No endpoints left: the ClusterIP is rejected (connection refused), not left hanging.
    slices[0] = slice("web", &[], Some("n1"));
    assert!(proxier.sync(compute(&services, &slices, &config())).await.is_ok());
    let refused = ask(&node, cluster_ip);
    assert!(refused.starts_with("error") && refused.contains("refused"), "{refused}");
    assert!(!listing(&node).contains("chain endpoint-"), "{}", listing(&node));

    // --cleanup's nftables part leaves no table; a second cleanup finds nothing and succeeds.
    let backend = node.backend();
    assert!(backend.apply(vec![]).await.is_ok());
    delete_table_blocking(&backend).expect("cleanup");
    assert_eq!(listing(&node), "");
    delete_table_blocking(&backend).expect("second cleanup");
}
