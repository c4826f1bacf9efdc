//! Pods talk, in a lab of network namespaces (nothing touches the host's network): the control
//! plane in the lab's namespace, two nodes each in its own namespace with a kubelet and a
//! kube-proxy. Driven through the real upstream kubectl: pod to pod across nodes, a ClusterIP
//! Service balancing over endpoints on both nodes, a NodePort reached from outside the nodes on
//! every node, ClientIP session affinity, a hostPort, endpoint removal taking effect, cluster DNS
//! names (service, headless, SRV, ExternalName) from inside a pod, and `kube-proxy --cleanup`
//! leaving iptables as it found it.
//!
//! Needs every workspace binary built first (`cargo test --workspace` does that), root, and the
//! iproute2, iptables and busybox-static packages.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use testkit::apiserver::ApiServer;
use testkit::component::Component;
use testkit::kubelet::Kubelet;
use testkit::netlab::{LAB_GATEWAY, NetLab};
use testkit::registry::{ImageOptions, Registry, push_busybox_image};

const CLUSTER_CIDR: &str = "10.244.0.0/16";

/// Declared in drop order: processes first, the lab's namespaces last.
struct Cluster {
    kubeconfig: PathBuf,
    proxies: Vec<Component>,
    nodes: Vec<Kubelet>,
    scheduler: Component,
    controllers: Component,
    _registry: Registry,
    apiserver: ApiServer,
    _dir: tempfile::TempDir,
    lab: NetLab,
}

impl Cluster {
    fn start() -> (Cluster, String) {
        let bin = |name: &str| testkit::workspace_binary(name).expect(name);
        let mut lab = NetLab::create(2).expect("network lab");
        let apiserver =
            ApiServer::start_embedded_in_netns(&bin("kube-apiserver"), &lab.lab.path(), &LAB_GATEWAY.to_string(), &[])
                .expect("apiserver");
        // Nodes use the apiserver's own kubeconfig (it points at the lab address); the host
        // side reaches it through a loopback forward.
        let forward = lab
            .forward(std::net::SocketAddr::from((LAB_GATEWAY, apiserver.port)))
            .expect("forward");
        let dir = tempfile::tempdir().expect("tempdir");
        let kubeconfig = dir.path().join("host.kubeconfig");
        let text = std::fs::read_to_string(apiserver.kubeconfig()).expect("kubeconfig");
        std::fs::write(
            &kubeconfig,
            text.replace(
                &format!("https://{LAB_GATEWAY}:{}", apiserver.port),
                &format!("https://127.0.0.1:{forward}"),
            ),
        )
        .expect("host kubeconfig");
        let host_kubeconfig = kubeconfig.display().to_string();

        let registry = Registry::start().expect("registry");
        push_busybox_image(registry.host(), "busybox:1", &ImageOptions::default()).expect("push busybox");
        let registry_port = registry.port();
        let in_lab = lab.expose_host_port(registry_port).expect("registry in the lab");
        let image = format!("{in_lab}/busybox:1");

        let scheduler =
            Component::start(&bin("kube-scheduler"), &["--kubeconfig", &host_kubeconfig]).expect("scheduler");
        let controllers = Component::start(
            &bin("kube-controller-manager"),
            &["--kubeconfig", &host_kubeconfig, "--cluster-cidr", CLUSTER_CIDR],
        )
        .expect("controller-manager");
        let lab_kubeconfig = apiserver.kubeconfig();
        // No upstream resolvers: names outside the cluster are never forwarded anywhere.
        let resolv_conf = dir.path().join("resolv.conf");
        std::fs::write(&resolv_conf, "").expect("resolv.conf");
        let resolv_conf = resolv_conf.display().to_string();
        let registry_flag = in_lab.to_string();
        let mut nodes = Vec::new();
        let mut proxies = Vec::new();
        for node in &lab.nodes {
            nodes.push(
                Kubelet::start_in_netns(
                    &bin("kubelet"),
                    &lab_kubeconfig,
                    &node.name,
                    &node.ns.path(),
                    &node.ip.to_string(),
                    &["--insecure-registry", &registry_flag, "--cluster-dns", "10.96.0.10"],
                )
                .expect("kubelet"),
            );
            proxies.push(
                Component::start_in_netns(
                    &bin("kube-proxy"),
                    &node.ns.path(),
                    &[
                        "--kubeconfig",
                        &lab_kubeconfig.display().to_string(),
                        "--hostname-override",
                        &node.name,
                        "--cluster-cidr",
                        CLUSTER_CIDR,
                        "--dns-resolv-conf",
                        &resolv_conf,
                    ],
                )
                .expect("kube-proxy"),
            );
        }
        (
            Cluster {
                kubeconfig,
                proxies,
                nodes,
                scheduler,
                controllers,
                _registry: registry,
                apiserver,
                _dir: dir,
                lab,
            },
            image,
        )
    }

    fn kubectl(&self, args: &[&str]) -> (bool, String, String) {
        let output = Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .args(args)
            .output()
            .expect("running kubectl");
        (
            output.status.success(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    }

    fn logs(&self) -> String {
        let mut out = String::new();
        for (i, node) in self.nodes.iter().enumerate() {
            out.push_str(&format!("--- kubelet {i} ---\n{}\n", node.log_tail()));
        }
        for (i, proxy) in self.proxies.iter().enumerate() {
            out.push_str(&format!("--- kube-proxy {i} ---\n{}\n", proxy.log_tail()));
        }
        out.push_str(&format!(
            "--- controller-manager ---\n{}\n",
            self.controllers.log_tail()
        ));
        out.push_str(&format!("--- scheduler ---\n{}\n", self.scheduler.log_tail()));
        out.push_str(&format!("--- apiserver ---\n{}\n", self.apiserver.log_tail()));
        out
    }

    fn ok(&self, args: &[&str]) -> String {
        let (ok, out, err) = self.kubectl(args);
        assert!(ok, "kubectl {args:?} failed: {err}\n{}", self.logs());
        out
    }

    fn wait(&self, what: &str, timeout: Duration, check: impl Fn() -> bool) {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if check() {
                return;
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        panic!("timed out waiting for {what}\n{}", self.logs());
    }

    fn apply(&self, yaml: &str) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("manifest.yaml");
        std::fs::write(&path, yaml).expect("manifest");
        self.ok(&["apply", "-f", &path.display().to_string()]);
    }

    /// `wget -qO- URL` from inside pod `client`, or None when it fails.
    fn fetch_from_pod(&self, pod: &str, url: &str) -> Option<String> {
        let (ok, out, err) = self.kubectl(&["exec", pod, "--", "timeout", "5", "wget", "-qO-", url]);
        if !ok {
            eprintln!("wget {url} from {pod}: {err}");
        }
        ok.then(|| out.trim().to_string())
    }

    /// `wget -qO- URL` from the lab's own namespace (outside every node).
    fn fetch_from_lab(&self, url: &str) -> Option<String> {
        let output = self
            .lab
            .lab
            .command("busybox")
            .args(["timeout", "5", "busybox", "wget", "-qO-", url])
            .output()
            .ok()?;
        output
            .status
            .success()
            .then(|| String::from_utf8_lossy(&output.stdout).trim().to_string())
    }
}

fn server_pod(name: &str, node: &str, image: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n  labels:\n    app: web\nspec:\n  nodeName: {node}\n  \
         containers:\n  - name: httpd\n    image: {image}\n    command: [sh, -c, 'mkdir -p /www && hostname > \
         /www/index.html && exec httpd -f -p 8080 -h /www']\n    ports:\n    - name: http\n      containerPort: 8080\n    \
         readinessProbe:\n      tcpSocket:\n        port: 8080\n      periodSeconds: 1\n"
    )
}

fn pod_ip(cluster: &Cluster, name: &str) -> String {
    cluster.ok(&["get", "pod", name, "-o", "jsonpath={.status.podIP}"])
}

#[test]
fn pods_reach_pods_services_and_names_across_nodes() {
    let (mut cluster, image) = Cluster::start();
    cluster.wait("two Ready nodes", Duration::from_secs(60), || {
        let (_, out, _) = cluster.kubectl(&["get", "nodes", "--no-headers"]);
        out.lines()
            .filter(|l| l.split_whitespace().nth(1) == Some("Ready"))
            .count()
            == 2
    });
    let node0 = cluster.lab.nodes[0].name.clone();
    let node1 = cluster.lab.nodes[1].name.clone();
    cluster.apply(&server_pod("web-0", &node0, &image));
    cluster.apply(&server_pod("web-1", &node1, &image));
    cluster.apply(&format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: client\nspec:\n  nodeName: {node0}\n  containers:\n  - name: c\n    \
         image: {image}\n    command: [sleep, '3600']\n"
    ));
    cluster.ok(&[
        "wait",
        "--for=condition=Ready",
        "pod/web-0",
        "pod/web-1",
        "pod/client",
        "--timeout=120s",
    ]);

    // Pod addresses come from each node's pod CIDR.
    let ip0 = pod_ip(&cluster, "web-0");
    let ip1 = pod_ip(&cluster, "web-1");
    assert!(ip0.starts_with("10.244.") && ip1.starts_with("10.244."), "{ip0} {ip1}");
    assert_ne!(
        ip0.rsplit_once('.').map(|(net, _)| net),
        ip1.rsplit_once('.').map(|(net, _)| net),
        "one /24 per node"
    );

    // Pod to pod, same node and across nodes, without NAT.
    assert_eq!(
        cluster
            .fetch_from_pod("client", &format!("http://{ip0}:8080/"))
            .as_deref(),
        Some("web-0")
    );
    assert_eq!(
        cluster
            .fetch_from_pod("client", &format!("http://{ip1}:8080/"))
            .as_deref(),
        Some("web-1")
    );

    // A ClusterIP Service balances over both.
    cluster.apply(
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\nspec:\n  selector:\n    app: web\n  ports:\n  - name: \
         http\n    port: 80\n    targetPort: 8080\n",
    );
    let cluster_ip = cluster.ok(&["get", "svc", "web", "-o", "jsonpath={.spec.clusterIP}"]);
    let mut seen = BTreeSet::new();
    cluster.wait("the ClusterIP to answer", Duration::from_secs(60), || {
        cluster
            .fetch_from_pod("client", &format!("http://{cluster_ip}/"))
            .is_some_and(|answer| answer == "web-0" || answer == "web-1")
    });
    for _ in 0..20 {
        if let Some(answer) = cluster.fetch_from_pod("client", &format!("http://{cluster_ip}/")) {
            seen.insert(answer);
        }
        if seen.len() == 2 {
            break;
        }
    }
    assert_eq!(
        seen,
        BTreeSet::from(["web-0".to_string(), "web-1".to_string()]),
        "both endpoints answer"
    );

    // A NodePort answers on every node, from outside the nodes.
    cluster.apply(
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: web-np\nspec:\n  type: NodePort\n  selector:\n    app: \
         web\n  ports:\n  - port: 80\n    targetPort: 8080\n",
    );
    let node_port = cluster.ok(&["get", "svc", "web-np", "-o", "jsonpath={.spec.ports[0].nodePort}"]);
    for node in &cluster.lab.nodes {
        let url = format!("http://{}:{node_port}/", node.ip);
        cluster.wait(&format!("NodePort {url}"), Duration::from_secs(30), || {
            cluster
                .fetch_from_lab(&url)
                .is_some_and(|answer| answer == "web-0" || answer == "web-1")
        });
    }

    // Cluster DNS: the service name, fully qualified and through the search path.
    cluster.wait("the service's DNS name", Duration::from_secs(30), || {
        let (ok, out, _) = cluster.kubectl(&["exec", "client", "--", "nslookup", "web.default.svc.cluster.local"]);
        ok && out.contains(&cluster_ip)
    });
    let short = cluster.fetch_from_pod("client", "http://web/");
    assert!(
        matches!(short.as_deref(), Some("web-0" | "web-1")),
        "http://web/ through the search path: {short:?}"
    );

    // Headless: every ready pod's address; SRV for the named port; ExternalName as a CNAME.
    cluster.apply(
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: web-headless\nspec:\n  clusterIP: None\n  selector:\n    \
         app: web\n  ports:\n  - name: http\n    port: 8080\n---\napiVersion: v1\nkind: Service\nmetadata:\n  name: \
         docs\nspec:\n  type: ExternalName\n  externalName: web.default.svc.cluster.local\n",
    );
    cluster.wait("the headless service's DNS name", Duration::from_secs(30), || {
        let (ok, out, _) = cluster.kubectl(&[
            "exec",
            "client",
            "--",
            "nslookup",
            "web-headless.default.svc.cluster.local",
        ]);
        ok && out.contains(&ip0) && out.contains(&ip1) && !out.contains(&cluster_ip)
    });
    let srv = cluster.ok(&[
        "exec",
        "client",
        "--",
        "nslookup",
        "-type=SRV",
        "_http._tcp.web.default.svc.cluster.local",
    ]);
    assert!(
        srv.contains("web.default.svc.cluster.local") && srv.contains("80"),
        "SRV answer:\n{srv}"
    );
    let cname = cluster.ok(&["exec", "client", "--", "nslookup", "docs.default.svc.cluster.local"]);
    assert!(
        cname.contains("web.default.svc.cluster.local"),
        "ExternalName answer:\n{cname}"
    );
    let (found, out, _) = cluster.kubectl(&["exec", "client", "--", "nslookup", "nothing.default.svc.cluster.local"]);
    assert!(
        !found || out.contains("NXDOMAIN"),
        "an unknown name does not resolve:\n{out}"
    );

    // ClientIP session affinity: one client always lands on the same endpoint.
    cluster.apply(
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: sticky\nspec:\n  sessionAffinity: ClientIP\n  selector:\n    \
         app: web\n  ports:\n  - port: 80\n    targetPort: 8080\n",
    );
    let sticky_ip = cluster.ok(&["get", "svc", "sticky", "-o", "jsonpath={.spec.clusterIP}"]);
    let url = format!("http://{sticky_ip}/");
    cluster.wait("the sticky service", Duration::from_secs(30), || {
        cluster.fetch_from_pod("client", &url).is_some()
    });
    let answers: BTreeSet<String> = (0..8).filter_map(|_| cluster.fetch_from_pod("client", &url)).collect();
    assert_eq!(answers.len(), 1, "session affinity keeps one endpoint: {answers:?}");

    // hostPort: the node's own address and port reach the pod.
    cluster.apply(&format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web-hp\nspec:\n  nodeName: {node1}\n  containers:\n  - name: \
         httpd\n    image: {image}\n    command: [sh, -c, 'mkdir -p /www && hostname > /www/index.html && exec httpd -f -p \
         8080 -h /www']\n    ports:\n    - containerPort: 8080\n      hostPort: 18080\n"
    ));
    cluster.ok(&["wait", "--for=condition=Ready", "pod/web-hp", "--timeout=60s"]);
    let host_port_url = format!("http://{}:18080/", cluster.lab.nodes[1].ip);
    cluster.wait("the hostPort", Duration::from_secs(30), || {
        cluster.fetch_from_lab(&host_port_url).as_deref() == Some("web-hp")
    });

    // Removing an endpoint takes effect: only web-0 answers afterwards.
    cluster.ok(&["delete", "pod", "web-1", "--grace-period=1"]);
    cluster.wait("web-1 to leave the Service", Duration::from_secs(60), || {
        (0..6).all(|_| {
            cluster
                .fetch_from_pod("client", &format!("http://{cluster_ip}/"))
                .as_deref()
                == Some("web-0")
        })
    });

    // `kube-proxy --cleanup` leaves the node's iptables as it found it: no rule and no chain.
    let node0_ns = cluster.lab.nodes[0].ns.path();
    drop(cluster.proxies.remove(0));
    let output = cluster.lab.nodes[0]
        .ns
        .command(testkit::workspace_binary("kube-proxy").expect("kube-proxy"))
        .arg("--cleanup")
        .output()
        .expect("kube-proxy --cleanup");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let saved = cluster.lab.nodes[0]
        .ns
        .command("iptables-save")
        .output()
        .expect("iptables-save");
    let saved = String::from_utf8_lossy(&saved.stdout);
    let leftovers: Vec<&str> = saved
        .lines()
        .filter(|l| l.starts_with("-A") || (l.starts_with(':') && l.contains("KUBE")))
        .collect();
    assert!(
        leftovers.is_empty(),
        "rules left in {}: {leftovers:?}",
        node0_ns.display()
    );
}
