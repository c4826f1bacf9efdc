//! End-to-end: the server on 127.0.0.1 over UDP and TCP, forwarding to a second local server,
//! queried with hickory's wire format (and busybox nslookup when installed). Never touches the
//! real internet.

use std::net::SocketAddr;
use std::time::Duration;

use dns::{Catalog, DnsConfig, DnsServer, SharedCatalog};
use hickory_server::proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_server::proto::rr::{Name, RData, RecordType};
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

fn catalog() -> Catalog {
    let services: Vec<Service> = [
        json!({"metadata": {"name": "web", "namespace": "default"},
               "spec": {"clusterIP": "10.96.0.10", "ports": [{"name": "http", "port": 80}]}}),
        json!({"metadata": {"name": "db", "namespace": "default"}, "spec": {"clusterIP": "None"}}),
    ]
    .into_iter()
    .map(|v| serde_json::from_value(v).unwrap())
    .collect();
    let slices: Vec<EndpointSlice> = [json!({
        "metadata": {"name": "db-1", "namespace": "default",
                     "labels": {"kubernetes.io/service-name": "db"}},
        "addressType": "IPv4",
        "endpoints": [{"addresses": ["10.1.0.1"], "hostname": "db-0"}]})]
    .into_iter()
    .map(|v| serde_json::from_value(v).unwrap())
    .collect();
    Catalog::new(&services, &slices)
}

struct Running {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), dns::Error>>,
}

impl Running {
    async fn start(domain: &str, catalog: SharedCatalog, upstreams: Vec<SocketAddr>) -> Running {
        let config = DnsConfig {
            listen: vec!["127.0.0.1:0".parse().unwrap()],
            domain: domain.to_string(),
            upstreams,
        };
        let server = DnsServer::bind(&config, catalog).await.unwrap();
        let addr = server.local_addrs()[0];
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(server.run(async {
            let _ = stopped.await;
        }));
        Running {
            addr,
            stop: Some(stop),
            task,
        }
    }

    async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        let res = tokio::time::timeout(Duration::from_secs(5), self.task)
            .await
            .expect("server stops on shutdown");
        res.unwrap().unwrap();
    }
}

fn request(name: &str, qtype: RecordType) -> Vec<u8> {
    let mut msg = Message::new(0x4242, MessageType::Query, OpCode::Query);
    msg.metadata.recursion_desired = true;
    msg.add_query(Query::query(Name::from_ascii(name).unwrap(), qtype));
    msg.to_vec().unwrap()
}

async fn udp(addr: SocketAddr, name: &str, qtype: RecordType) -> Message {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    socket.send_to(&request(name, qtype), addr).await.unwrap();
    let mut buf = vec![0u8; 4096];
    let (n, _) = tokio::time::timeout(Duration::from_secs(10), socket.recv_from(&mut buf))
        .await
        .expect("UDP answer in time")
        .unwrap();
    Message::from_vec(&buf[..n]).unwrap()
}

async fn tcp(addr: SocketAddr, name: &str, qtype: RecordType) -> Message {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let req = request(name, qtype);
    let mut framed = u16::try_from(req.len()).unwrap().to_be_bytes().to_vec();
    framed.extend(req);
    stream.write_all(&framed).await.unwrap();
    let read = async {
        let len = stream.read_u16().await.unwrap();
        let mut buf = vec![0u8; usize::from(len)];
        stream.read_exact(&mut buf).await.unwrap();
        buf
    };
    let buf = tokio::time::timeout(Duration::from_secs(10), read)
        .await
        .expect("TCP answer in time");
    Message::from_vec(&buf).unwrap()
}

fn answers(msg: &Message) -> Vec<String> {
    msg.answers.iter().map(|r| r.data.to_string()).collect()
}

#[tokio::test]
async fn answers_cluster_names_over_udp_and_tcp() {
    let server = Running::start("cluster.local", SharedCatalog::new(catalog()), vec![]).await;

    let msg = udp(server.addr, "web.default.svc.cluster.local.", RecordType::A).await;
    assert_eq!(msg.metadata.id, 0x4242);
    assert_eq!(msg.metadata.response_code, ResponseCode::NoError);
    assert!(msg.metadata.authoritative);
    assert_eq!(answers(&msg), ["10.96.0.10"]);
    assert_eq!(msg.answers[0].ttl, 30);

    let msg = tcp(
        server.addr,
        "_http._tcp.web.default.svc.cluster.local.",
        RecordType::SRV,
    )
    .await;
    assert_eq!(msg.metadata.response_code, ResponseCode::NoError);
    assert_eq!(answers(&msg), ["0 100 80 web.default.svc.cluster.local."]);
    assert_eq!(msg.additionals.len(), 1);

    let msg = tcp(server.addr, "DB-0.db.default.svc.cluster.local.", RecordType::A).await;
    assert_eq!(answers(&msg), ["10.1.0.1"]);

    let msg = udp(server.addr, "1.0.1.10.in-addr.arpa.", RecordType::PTR).await;
    assert_eq!(answers(&msg), ["db-0.db.default.svc.cluster.local."]);

    server.stop().await;
}

#[tokio::test]
async fn nxdomain_and_nodata_carry_the_soa() {
    let server = Running::start("cluster.local", SharedCatalog::new(catalog()), vec![]).await;
    for (name, qtype, code) in [
        ("nope.default.svc.cluster.local.", RecordType::A, ResponseCode::NXDomain),
        ("web.nope.svc.cluster.local.", RecordType::A, ResponseCode::NXDomain),
        (
            "web.default.svc.cluster.local.",
            RecordType::AAAA,
            ResponseCode::NoError,
        ),
    ] {
        let msg = udp(server.addr, name, qtype).await;
        assert_eq!(msg.metadata.response_code, code, "{name}");
        assert!(msg.answers.is_empty(), "{name}");
        assert_eq!(msg.authorities.len(), 1, "{name}");
        let RData::SOA(soa) = &msg.authorities[0].data else {
            panic!("{name}: authority is not an SOA: {:?}", msg.authorities);
        };
        assert_eq!(soa.mname.to_string(), "ns.dns.cluster.local.");
    }
    server.stop().await;
}

#[tokio::test]
async fn outside_the_zone_without_upstreams_is_refused() {
    let server = Running::start("cluster.local", SharedCatalog::new(catalog()), vec![]).await;
    let msg = udp(server.addr, "example.org.", RecordType::A).await;
    assert_eq!(msg.metadata.response_code, ResponseCode::Refused);
    let msg = tcp(server.addr, "9.9.9.9.in-addr.arpa.", RecordType::PTR).await;
    assert_eq!(msg.metadata.response_code, ResponseCode::Refused);
    server.stop().await;
}

#[tokio::test]
async fn pending_catalog_is_servfail_for_cluster_names() {
    let server = Running::start("cluster.local", SharedCatalog::pending(), vec![]).await;
    let msg = udp(server.addr, "web.default.svc.cluster.local.", RecordType::A).await;
    assert_eq!(msg.metadata.response_code, ResponseCode::ServFail);
    server.stop().await;
}

#[tokio::test]
async fn forwards_other_names_to_the_upstreams() {
    // The "upstream" is a second instance serving another domain on 127.0.0.1.
    let upstream_catalog = Catalog::new(
        &[serde_json::from_value::<Service>(json!({
            "metadata": {"name": "www", "namespace": "ns"},
            "spec": {"clusterIP": "192.0.2.7"}}))
        .unwrap()],
        &[],
    );
    let upstream = Running::start("upstream.test", SharedCatalog::new(upstream_catalog), vec![]).await;
    let server = Running::start("cluster.local", SharedCatalog::new(catalog()), vec![upstream.addr]).await;

    let msg = udp(server.addr, "www.ns.svc.upstream.test.", RecordType::A).await;
    assert_eq!(msg.metadata.response_code, ResponseCode::NoError);
    assert_eq!(answers(&msg), ["192.0.2.7"]);
    let msg = tcp(server.addr, "www.ns.svc.upstream.test.", RecordType::A).await;
    assert_eq!(answers(&msg), ["192.0.2.7"]);

    let msg = udp(server.addr, "nope.ns.svc.upstream.test.", RecordType::A).await;
    assert_eq!(msg.metadata.response_code, ResponseCode::NXDomain);

    // Cluster names are still answered locally.
    let msg = udp(server.addr, "web.default.svc.cluster.local.", RecordType::A).await;
    assert_eq!(answers(&msg), ["10.96.0.10"]);
    assert!(msg.metadata.recursion_available);

    server.stop().await;
    upstream.stop().await;
}

#[tokio::test]
async fn malformed_packets_do_not_kill_the_server() {
    let server = Running::start("cluster.local", SharedCatalog::new(catalog()), vec![]).await;
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    for junk in [&b""[..], b"\x00", b"\x42\x42\x01\x00\x00\x01", &[0xffu8; 40][..]] {
        socket.send_to(junk, server.addr).await.unwrap();
    }
    let msg = udp(server.addr, "web.default.svc.cluster.local.", RecordType::A).await;
    assert_eq!(answers(&msg), ["10.96.0.10"]);
    server.stop().await;
}

#[tokio::test]
async fn large_answers_truncate_over_udp_and_fit_over_tcp() {
    let svc: Service = serde_json::from_value(json!({
        "metadata": {"name": "big", "namespace": "default"}, "spec": {"clusterIP": "None"}}))
    .unwrap();
    let endpoints: Vec<_> = (1..=100)
        .map(|i| json!({"addresses": [format!("10.2.0.{i}")]}))
        .collect();
    let slice: EndpointSlice = serde_json::from_value(json!({
        "metadata": {"name": "big-1", "namespace": "default",
                     "labels": {"kubernetes.io/service-name": "big"}},
        "addressType": "IPv4", "endpoints": endpoints}))
    .unwrap();
    let catalog = SharedCatalog::new(Catalog::new(&[svc], &[slice]));
    let server = Running::start("cluster.local", catalog, vec![]).await;
    let msg = udp(server.addr, "big.default.svc.cluster.local.", RecordType::A).await;
    assert!(msg.metadata.truncation);
    assert!(msg.answers.len() < 100);
    let msg = tcp(server.addr, "big.default.svc.cluster.local.", RecordType::A).await;
    assert!(!msg.metadata.truncation);
    assert_eq!(msg.answers.len(), 100);
    server.stop().await;
}

#[tokio::test]
async fn busybox_nslookup_resolves_a_service() {
    let busybox = std::path::Path::new("/bin/busybox");
    assert!(busybox.exists(), "/bin/busybox is missing: install busybox-static");
    let server = Running::start("cluster.local", SharedCatalog::new(catalog()), vec![]).await;
    let out = tokio::process::Command::new(busybox)
        .args(["nslookup", "web.default.svc.cluster.local"])
        .arg(server.addr.to_string())
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("10.96.0.10"),
        "busybox nslookup output:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    server.stop().await;
}

/// `serve` against a real kube-apiserver (embedded store): the reflectors feed the catalog and
/// follow changes. Needs `kube-apiserver` built into the same target directory
/// (`cargo build -p apiserver --bin kube-apiserver`; `cargo test --workspace` does).
#[tokio::test]
async fn serve_reflects_services_and_endpoint_slices_from_the_apiserver() {
    use kube::api::{Api, DeleteParams, PostParams};
    use testkit::apiserver::ApiServer;

    let binary = testkit::workspace_binary("kube-apiserver").expect("kube-apiserver");
    let apiserver = tokio::task::spawn_blocking(move || ApiServer::start_embedded(&binary, &[]))
        .await
        .unwrap()
        .unwrap();
    let kubeconfig = kube::config::Kubeconfig::read_from(apiserver.kubeconfig()).unwrap();
    let options = kube::config::KubeConfigOptions::default();
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &options)
        .await
        .unwrap();
    let client = kube::Client::try_from(config).unwrap();

    let services: Api<Service> = Api::namespaced(client.clone(), "default");
    let slices: Api<EndpointSlice> = Api::namespaced(client.clone(), "default");
    let pp = PostParams::default();
    let web: Service = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {"ports": [{"name": "http", "port": 80}]}}))
    .unwrap();
    let web = services.create(&pp, &web).await.unwrap();
    let web_ip = web.spec.unwrap().cluster_ip.unwrap();
    let db: Service = serde_json::from_value(json!({
        "metadata": {"name": "db"},
        "spec": {"clusterIP": "None", "ports": [{"name": "pg", "port": 5432}]}}))
    .unwrap();
    services.create(&pp, &db).await.unwrap();
    let slice: EndpointSlice = serde_json::from_value(json!({
        "metadata": {"name": "db-1", "labels": {"kubernetes.io/service-name": "db"}},
        "addressType": "IPv4",
        "ports": [{"name": "pg", "port": 5432, "protocol": "TCP"}],
        "endpoints": [{"addresses": ["10.1.0.1"], "hostname": "db-0", "conditions": {"ready": true}}]}))
    .unwrap();
    slices.create(&pp, &slice).await.unwrap();

    let addr = SocketAddr::from(([127, 0, 0, 1], testkit::free_port()));
    let config = DnsConfig {
        listen: vec![addr],
        domain: "cluster.local".into(),
        upstreams: vec![],
    };
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(dns::serve(config, client, async {
        let _ = stopped.await;
    }));

    // Polls until the answer to `name` is `want` (answers' rdata) or 20 s pass.
    async fn wait_for(addr: SocketAddr, name: &str, qtype: RecordType, want: &[&str]) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let got = match tokio::time::timeout(Duration::from_secs(2), udp(addr, name, qtype)).await {
                Ok(msg) => answers(&msg),
                Err(_) => vec!["<timeout>".to_string()],
            };
            if got == want {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{name} {qtype}: got {got:?}, want {want:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    wait_for(addr, "web.default.svc.cluster.local.", RecordType::A, &[&web_ip]).await;
    wait_for(addr, "db-0.db.default.svc.cluster.local.", RecordType::A, &["10.1.0.1"]).await;
    let msg = tcp(addr, "_pg._tcp.db.default.svc.cluster.local.", RecordType::SRV).await;
    assert_eq!(answers(&msg), ["0 100 5432 db-0.db.default.svc.cluster.local."]);

    // Changes follow: a deleted Service goes away.
    services.delete("web", &DeleteParams::default()).await.unwrap();
    wait_for(addr, "web.default.svc.cluster.local.", RecordType::A, &[]).await;
    let msg = udp(addr, "web.default.svc.cluster.local.", RecordType::A).await;
    assert_eq!(msg.metadata.response_code, ResponseCode::NXDomain);

    let _ = stop.send(());
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("serve stops on shutdown")
        .unwrap()
        .unwrap();
}
