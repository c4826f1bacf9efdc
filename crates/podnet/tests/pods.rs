//! Pod network setup against real namespaces: each test builds its own "node" namespace
//! and "pod" namespaces, so the host's network is never touched.

mod support;

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use podnet::{Error, Ipv4Cidr, NetworkConfig, NodeNetwork, host_veth_name};
use support::Netns;

fn config(state: &tempfile::TempDir, cidr: &str) -> NetworkConfig {
    NetworkConfig {
        bridge: "kaji0".to_string(),
        pod_cidr: cidr.parse().unwrap(),
        state_dir: state.path().join("ipam"),
        mtu: Some(1400),
    }
}

fn ip(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

#[test]
fn pod_gets_eth0_address_and_default_route() {
    let node = Netns::new().unwrap();
    let pod = Netns::new().unwrap();
    let state = tempfile::tempdir().unwrap();
    let first = node.block_on(|| async {
        let net = NodeNetwork::new(config(&state, "10.244.1.0/24")).await.unwrap();
        let first = net.setup_pod("default/web", pod.path()).await.unwrap();
        // idempotent: same address, the pair is rebuilt
        let again = net.setup_pod("default/web", pod.path()).await.unwrap();
        assert_eq!(first, again);
        assert_eq!(net.pod_ip("default/web"), Some(first.ip));
        assert_eq!(net.allocated(), vec![("default/web".to_string(), first.ip)]);
        first
    });
    assert_eq!(first.ip, ip("10.244.1.2"));
    assert_eq!(first.prefix_len, 24);
    assert_eq!(first.gateway, ip("10.244.1.1"));
    assert_eq!(first.host_veth, host_veth_name("default/web"));

    let inside = pod.snapshot();
    let eth0 = inside.link("eth0").expect("eth0 in the pod");
    assert!(eth0.up);
    assert_eq!(eth0.mtu, 1400);
    assert!(inside.link("lo").unwrap().up);
    assert!(inside.addrs.contains(&("eth0".to_string(), ip("10.244.1.2"), 24)));
    let default = inside
        .routes
        .iter()
        .find(|r| r.dst == "0.0.0.0/0")
        .expect("default route");
    assert_eq!(default.gateway, Some(ip("10.244.1.1")));
    assert_eq!(default.dev, "eth0");

    let outside = node.snapshot();
    let bridge = outside.link("kaji0").expect("bridge");
    assert!(bridge.up);
    assert!(outside.addrs.contains(&("kaji0".to_string(), ip("10.244.1.1"), 24)));
    let veth = outside.link(&first.host_veth).expect("host veth");
    assert!(veth.up);
    assert_eq!(veth.master, Some(bridge.index));
    assert_eq!(
        outside.links.iter().filter(|l| l.master == Some(bridge.index)).count(),
        1
    );
    let forward = node.run(|| std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap());
    assert_eq!(forward.trim(), "1");
}

fn listen(ns: &Netns, addr: Ipv4Addr) -> TcpListener {
    ns.run(|| TcpListener::bind((addr, 0)).unwrap())
}

fn connect_and_greet(ns: &Netns, listener: &TcpListener) {
    let to: SocketAddr = listener.local_addr().unwrap();
    let mut client = ns.run(|| TcpStream::connect_timeout(&to, Duration::from_secs(5)).unwrap());
    client.write_all(b"hi").unwrap();
    let (mut server, _) = listener.accept().unwrap();
    let mut buf = [0u8; 2];
    server.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"hi");
}

#[test]
fn pods_reach_each_other_and_the_gateway() {
    let node = Netns::new().unwrap();
    let (a, b) = (Netns::new().unwrap(), Netns::new().unwrap());
    let state = tempfile::tempdir().unwrap();
    let (net_a, net_b) = node.block_on(|| async {
        let net = NodeNetwork::new(config(&state, "10.244.7.0/24")).await.unwrap();
        let net_a = net.setup_pod("a", a.path()).await.unwrap();
        let net_b = net.setup_pod("b", b.path()).await.unwrap();
        (net_a, net_b)
    });
    assert_ne!(net_a.ip, net_b.ip);
    connect_and_greet(&b, &listen(&a, net_a.ip));
    connect_and_greet(&a, &listen(&b, net_b.ip));
    // via the bridge address (the default gateway) into the node
    connect_and_greet(&a, &listen(&node, net_a.gateway));
}

#[test]
fn teardown_removes_the_pair_and_releases_the_address() {
    let node = Netns::new().unwrap();
    let pod = Netns::new().unwrap();
    let state = tempfile::tempdir().unwrap();
    let setup = node.block_on(|| async {
        let net = NodeNetwork::new(config(&state, "10.244.1.0/24")).await.unwrap();
        let setup = net.setup_pod("p", pod.path()).await.unwrap();
        net.teardown_pod("p").await.unwrap();
        assert_eq!(net.pod_ip("p"), None);
        assert!(net.allocated().is_empty());
        // idempotent, also for pods never seen
        net.teardown_pod("p").await.unwrap();
        net.teardown_pod("never-seen").await.unwrap();
        // the released address is not handed out again right away (round robin)
        let next = net.setup_pod("q", pod.path()).await.unwrap();
        assert_eq!(next.ip, ip("10.244.1.3"));
        net.teardown_pod("q").await.unwrap();
        net.settle().await;
        setup
    });
    assert!(node.snapshot().link(&setup.host_veth).is_none());
    assert!(node.snapshot().link(&host_veth_name("q")).is_none());
    assert!(pod.snapshot().link("eth0").is_none());
}

#[test]
fn addresses_survive_a_restart() {
    let node = Netns::new().unwrap();
    let (a, b) = (Netns::new().unwrap(), Netns::new().unwrap());
    let state = tempfile::tempdir().unwrap();
    let before = node.block_on(|| async {
        let net = NodeNetwork::new(config(&state, "10.244.3.0/24")).await.unwrap();
        let a1 = net.setup_pod("a", a.path()).await.unwrap();
        net.setup_pod("b", b.path()).await.unwrap();
        net.teardown_pod("b").await.unwrap();
        a1
    });
    node.block_on(|| async {
        // the bridge exists already; the IPAM state comes from disk
        let net = NodeNetwork::new(config(&state, "10.244.3.0/24")).await.unwrap();
        assert_eq!(net.allocated(), vec![("a".to_string(), before.ip)]);
        let a2 = net.setup_pod("a", a.path()).await.unwrap();
        assert_eq!(a2, before);
        let c = net.setup_pod("c", b.path()).await.unwrap();
        assert_eq!(c.ip, ip("10.244.3.4"));
    });
    let inside = a.snapshot();
    assert!(inside.addrs.contains(&("eth0".to_string(), before.ip, 24)));
}

#[test]
fn exhausted_range_is_a_clear_error_and_leaves_nothing_behind() {
    let node = Netns::new().unwrap();
    let (a, b) = (Netns::new().unwrap(), Netns::new().unwrap());
    let state = tempfile::tempdir().unwrap();
    node.block_on(|| async {
        // a /30 has exactly one address for pods
        let net = NodeNetwork::new(config(&state, "10.9.0.0/30")).await.unwrap();
        assert_eq!(net.setup_pod("a", a.path()).await.unwrap().ip, ip("10.9.0.2"));
        let err = net.setup_pod("b", b.path()).await.unwrap_err();
        assert!(matches!(err, Error::Exhausted { .. }), "{err}");
        assert_eq!(err.to_string(), "address range 10.9.0.0/30 is exhausted");
        assert_eq!(net.pod_ip("b"), None);
    });
    assert!(node.snapshot().link(&host_veth_name("b")).is_none());
    assert!(b.snapshot().link("eth0").is_none());
}

#[test]
fn failed_setup_releases_the_address() {
    let node = Netns::new().unwrap();
    let state = tempfile::tempdir().unwrap();
    node.block_on(|| async {
        let net = NodeNetwork::new(config(&state, "10.244.1.0/24")).await.unwrap();
        let missing = state.path().join("no-such-netns");
        let err = net.setup_pod("a", &missing).await.unwrap_err();
        assert!(matches!(err, Error::Io { .. }), "{err}");
        assert!(net.allocated().is_empty());
        // a file that is not a network namespace
        let not_ns = state.path().join("plain-file");
        std::fs::write(&not_ns, b"").unwrap();
        assert!(net.setup_pod("a", &not_ns).await.is_err());
        assert!(net.allocated().is_empty());
    });
    assert_eq!(
        node.snapshot()
            .links
            .iter()
            .filter(|l| l.name.starts_with("veth"))
            .count(),
        0
    );
}

#[test]
fn concurrent_setups_on_a_multi_thread_runtime() {
    let node = Netns::new().unwrap();
    let pods: Vec<Netns> = (0..16).map(|_| Netns::new().unwrap()).collect();
    let state = tempfile::tempdir().unwrap();
    let ips = node.run(|| {
        // worker threads are spawned from this thread, so they share its namespace
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(4)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let net = Arc::new(NodeNetwork::new(config(&state, "10.244.5.0/24")).await.unwrap());
            let tasks: Vec<_> = pods
                .iter()
                .enumerate()
                .map(|(i, pod)| {
                    let net = net.clone();
                    let path = pod.path().to_path_buf();
                    tokio::spawn(async move { net.setup_pod(&format!("pod-{i}"), &path).await })
                })
                .collect();
            let mut ips = Vec::new();
            for task in tasks {
                ips.push(task.await.unwrap().unwrap().ip);
            }
            ips
        })
    });
    let mut unique = ips.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), pods.len());
    for (pod, ip) in pods.iter().zip(&ips) {
        assert!(pod.snapshot().addrs.contains(&("eth0".to_string(), *ip, 24)));
    }
}

#[test]
fn invalid_config_is_rejected() {
    let node = Netns::new().unwrap();
    let state = tempfile::tempdir().unwrap();
    node.block_on(|| async {
        let mut bad = config(&state, "10.244.1.0/24");
        bad.bridge = "a-bridge-name-too-long".to_string();
        assert!(matches!(NodeNetwork::new(bad).await, Err(Error::Config(_))));
        let tiny = config(&state, "10.244.1.0/31");
        assert!(matches!(NodeNetwork::new(tiny).await, Err(Error::Config(_))));
    });
    assert!(node.snapshot().link("kaji0").is_none());
}

#[test]
fn sync_routes_changes_only_its_own_routes() {
    let node = Netns::new().unwrap();
    let state = tempfile::tempdir().unwrap();
    let c = |s: &str| s.parse::<Ipv4Cidr>().unwrap();
    node.block_on(|| async {
        // an "uplink" with an address, so other nodes' IPs are reachable
        let (conn, handle, _) = rtnetlink::new_connection().unwrap();
        tokio::spawn(conn);
        handle
            .link()
            .add(rtnetlink::LinkVeth::new("uplink0", "uplink1").up().build())
            .execute()
            .await
            .unwrap();
        let up1 = rtnetlink::LinkUnspec::new_with_name("uplink1").up().build();
        handle.link().change(up1).execute().await.unwrap();
        let mut links = handle.link().get().match_name("uplink0").execute();
        let index = futures::TryStreamExt::try_next(&mut links)
            .await
            .unwrap()
            .unwrap()
            .header
            .index;
        handle
            .address()
            .add(index, ip("192.168.50.1").into(), 24)
            .execute()
            .await
            .unwrap();
        // a foreign route, static protocol
        let foreign = rtnetlink::RouteMessageBuilder::<Ipv4Addr>::new()
            .destination_prefix(ip("10.244.9.0"), 24)
            .gateway(ip("192.168.50.9"))
            .build();
        handle.route().add(foreign).execute().await.unwrap();

        let net = NodeNetwork::new(config(&state, "10.244.1.0/24")).await.unwrap();
        net.sync_routes(&[
            (c("10.244.2.0/24"), ip("192.168.50.2")),
            (c("10.244.3.0/24"), ip("192.168.50.3")),
            (c("10.244.1.0/24"), ip("192.168.50.1")), // our own: skipped
        ])
        .await
        .unwrap();
    });
    let ours = |snap: &support::Snapshot| {
        let mut v: Vec<(String, Option<Ipv4Addr>)> = snap
            .routes
            .iter()
            .filter(|r| r.protocol == podnet::ROUTE_PROTOCOL)
            .map(|r| (r.dst.clone(), r.gateway))
            .collect();
        v.sort();
        v
    };
    let foreign_present = |snap: &support::Snapshot| {
        snap.routes.iter().any(|r| {
            r.dst == "10.244.9.0/24" && r.gateway == Some(ip("192.168.50.9")) && r.protocol != podnet::ROUTE_PROTOCOL
        })
    };
    let snap = node.snapshot();
    assert_eq!(
        ours(&snap),
        vec![
            ("10.244.2.0/24".to_string(), Some(ip("192.168.50.2"))),
            ("10.244.3.0/24".to_string(), Some(ip("192.168.50.3")))
        ]
    );
    assert!(foreign_present(&snap));

    node.block_on(|| async {
        let net = NodeNetwork::new(config(&state, "10.244.1.0/24")).await.unwrap();
        // a moved gateway, a removed node, and a destination owned by someone else
        let err = net
            .sync_routes(&[
                (c("10.244.3.0/24"), ip("192.168.50.33")),
                (c("10.244.9.0/24"), ip("192.168.50.99")),
            ])
            .await
            .unwrap_err();
        assert!(err.to_string().contains("10.244.9.0/24"), "{err}");
    });
    let snap = node.snapshot();
    assert_eq!(
        ours(&snap),
        vec![("10.244.3.0/24".to_string(), Some(ip("192.168.50.33")))]
    );
    assert!(foreign_present(&snap));

    node.block_on(|| async {
        let net = NodeNetwork::new(config(&state, "10.244.1.0/24")).await.unwrap();
        net.sync_routes(&[]).await.unwrap();
        net.sync_routes(&[]).await.unwrap();
    });
    let snap = node.snapshot();
    assert!(ours(&snap).is_empty());
    assert!(foreign_present(&snap));
}

#[test]
fn restart_deletes_host_veths_of_torn_down_pods() {
    let node = Netns::new().unwrap();
    let (a, b) = (Netns::new().unwrap(), Netns::new().unwrap());
    let state = tempfile::tempdir().unwrap();
    node.block_on(|| async {
        let net = NodeNetwork::new(config(&state, "10.244.1.0/24")).await.unwrap();
        net.setup_pod("a", a.path()).await.unwrap();
        net.setup_pod("b", b.path()).await.unwrap();
        // what a teardown leaves when the process stops before the background deletion
        let (conn, handle, _) = rtnetlink::new_connection().unwrap();
        tokio::spawn(conn);
        let down = rtnetlink::LinkUnspec::new_with_name(&host_veth_name("a"))
            .down()
            .build();
        handle.link().change(down).execute().await.unwrap();
        drop(net);
        let net = NodeNetwork::new(config(&state, "10.244.1.0/24")).await.unwrap();
        net.settle().await;
    });
    let snap = node.snapshot();
    assert!(snap.link(&host_veth_name("a")).is_none());
    assert!(snap.link(&host_veth_name("b")).is_some_and(|l| l.up));
}

#[test]
fn teardown_cuts_the_pod_off_at_once() {
    let node = Netns::new().unwrap();
    let (a, b) = (Netns::new().unwrap(), Netns::new().unwrap());
    let state = tempfile::tempdir().unwrap();
    let net_a = node.block_on(|| async {
        let net = NodeNetwork::new(config(&state, "10.244.1.0/24")).await.unwrap();
        let net_a = net.setup_pod("a", a.path()).await.unwrap();
        net.setup_pod("b", b.path()).await.unwrap();
        net.teardown_pod("a").await.unwrap();
        // no settle: the host veth may still exist, but only down
        net_a
    });
    let snap = node.snapshot();
    assert!(snap.link(&net_a.host_veth).is_none_or(|l| !l.up));
    let listener = listen(&b, ip("10.244.1.3"));
    let to = listener.local_addr().unwrap();
    let reached = a.run(|| TcpStream::connect_timeout(&to, Duration::from_millis(300)).is_ok());
    assert!(!reached, "a torn-down pod still reaches the bridge");
}
