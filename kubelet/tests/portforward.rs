//! `kubectl port-forward` end to end: kubectl → the apiserver's `pods/portforward` proxy →
//! the kubelet's SPDY/3.1 session (tunnelled over WebSocket) → `127.0.0.1:<port>` inside the
//! pod's network namespace. The tunnelled scenarios run with both the real upstream kubectl
//! and ours (`kubectl/`); the plain SPDY fallback only with upstream's (ours has none). With
//! a short `--streaming-connection-idle-timeout`: 50 parallel requests and 100 MiB through one
//! session, sessions kept while data flows and closed once idle (exec too).

mod common;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use common::{Node1, phase, processes};
use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};

/// A running `kubectl port-forward` and the local port it listens on.
struct Forward {
    child: Child,
    port: u16,
    stderr: tokio::task::JoinHandle<String>,
}

/// Upstream's kubectl 1.37.
fn upstream() -> PathBuf {
    testkit::upstream_kubectl().expect("upstream kubectl")
}

impl Forward {
    async fn start(client: &Path, node: &Node1, args: &[&str]) -> Forward {
        Forward::start_with(client, node, args, true).await
    }

    /// `websockets: false` makes upstream's kubectl use its plain SPDY fallback.
    async fn start_with(client: &Path, node: &Node1, args: &[&str], websockets: bool) -> Forward {
        let mut child = Command::new(client)
            .env("KUBECTL_PORT_FORWARD_WEBSOCKETS", websockets.to_string())
            .arg("--kubeconfig")
            .arg(node.apiserver.kubeconfig())
            .arg("port-forward")
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("running kubectl");
        let stderr = child.stderr.take().expect("stderr");
        let stderr = tokio::spawn(async move {
            let mut text = String::new();
            let _ = BufReader::new(stderr).read_to_string(&mut text).await;
            text
        });
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let port = tokio::time::timeout(Duration::from_secs(30), async {
            while let Ok(Some(line)) = lines.next_line().await {
                // "Forwarding from 127.0.0.1:NNNN -> 8080"
                if let Some(rest) = line.strip_prefix("Forwarding from 127.0.0.1:") {
                    return rest.split_whitespace().next().and_then(|p| p.parse::<u16>().ok());
                }
            }
            None
        })
        .await
        .ok()
        .flatten();
        // Keep draining stdout ("Handling connection for …") so kubectl never blocks on it.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let Some(port) = port else {
            let _ = child.kill().await;
            panic!(
                "kubectl port-forward {args:?} did not start: {}\n--- kubelet log ---\n{}",
                stderr.await.unwrap_or_default(),
                node.kubelet.log_tail()
            );
        };
        Forward { child, port, stderr }
    }

    /// Stops kubectl and returns what it printed on stderr.
    async fn stop(mut self) -> String {
        let _ = self.child.kill().await;
        let _ = self.child.wait().await;
        tokio::time::timeout(Duration::from_secs(10), self.stderr)
            .await
            .ok()
            .and_then(Result::ok)
            .unwrap_or_default()
    }
}

/// `GET path` over HTTP/1.0 through the local port: (status line, body).
async fn get(port: u16, path: &str) -> (String, Vec<u8>) {
    let exchange = async {
        let mut conn = TcpStream::connect(("127.0.0.1", port)).await?;
        conn.write_all(format!("GET {path} HTTP/1.0\r\nHost: pod\r\n\r\n").as_bytes())
            .await?;
        let mut response = Vec::new();
        conn.read_to_end(&mut response).await?;
        Ok::<_, std::io::Error>(response)
    };
    let response = tokio::time::timeout(Duration::from_secs(60), exchange)
        .await
        .unwrap_or_else(|_| panic!("GET {path} through port {port} timed out"))
        .unwrap_or_else(|e| panic!("GET {path} through port {port}: {e}"));
    let split = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no HTTP response for {path}: {:?}", String::from_utf8_lossy(&response)));
    let head = String::from_utf8_lossy(&response[..split]).into_owned();
    let status = head.lines().next().unwrap_or_default().to_string();
    (status, response[split + 4..].to_vec())
}

async fn sha256(data: &[u8]) -> String {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("body");
    std::fs::write(&file, data).expect("writing the body");
    let out = Command::new("sha256sum").arg(&file).output().await.expect("sha256sum");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string()
}

/// Established TCP connections to `port` inside the pod (from its `/proc/net/tcp` and
/// `tcp6`: httpd listens on both families).
async fn established(node: &Node1, pod: &str, port: u16) -> usize {
    let out = Command::new(upstream())
        .arg("--kubeconfig")
        .arg(node.apiserver.kubeconfig())
        .args(["exec", pod, "--", "cat", "/proc/net/tcp", "/proc/net/tcp6"])
        .output()
        .await
        .expect("kubectl exec");
    let local = format!(":{port:04X}");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            fields.get(1).is_some_and(|a| a.ends_with(&local)) && fields.get(3) == Some(&"01")
        })
        .count()
}

const SERVE: &str = "mkdir -p /www && echo hello-from-pod > /www/index.html \
    && head -c 1572864 /dev/urandom > /www/big.bin \
    && sha256sum /www/big.bin > /www/big.sum \
    && exec httpd -f -p 8080 -h /www";

#[tokio::test(flavor = "multi_thread")]
async fn kubectl_port_forward_reaches_pod_ports() {
    let node = Node1::start(&[]).await;
    node.create_pod(
        "default",
        json!({
            "metadata": {"name": "web", "labels": {"app": "web"}},
            "spec": {
                "terminationGracePeriodSeconds": 1,
                "containers": [{
                    "name": "httpd", "image": node.image, "command": ["sh", "-c", SERVE],
                    "ports": [{"name": "http", "containerPort": 8080}],
                    "readinessProbe": {"tcpSocket": {"port": 8080}, "periodSeconds": 1},
                }],
            },
        }),
    )
    .await;
    node.wait_pod("default", "web", "running and ready", |p| {
        phase(p) == "Running"
            && p.status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
    })
    .await;

    // The plain SPDY upgrade (kubectl's fallback) works too.
    let spdy = Forward::start_with(&upstream(), &node, &["pod/web", ":8080"], false).await;
    let (_, body) = get(spdy.port, "/index.html").await;
    assert_eq!(body, b"hello-from-pod\n");
    let (_, big) = get(spdy.port, "/big.bin").await;
    assert_eq!(big.len(), 1_572_864);
    spdy.stop().await;
    assert!(
        node.kubelet.log_tail().contains("protocol=\"SPDY/3.1\""),
        "no plain SPDY session in the kubelet's log:\n{}",
        node.kubelet.log_tail()
    );

    // kubectl resolves services and deployments to a pod on its own.
    let services: kube::Api<k8s_openapi::api::core::v1::Service> = kube::Api::default_namespaced(node.client.clone());
    let service = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": "http"}]},
    }))
    .expect("service JSON");
    services
        .create(&Default::default(), &service)
        .await
        .expect("creating the service");
    let deployments: kube::Api<k8s_openapi::api::apps::v1::Deployment> =
        kube::Api::default_namespaced(node.client.clone());
    let deployment = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "httpd", "image": node.image}]},
            },
        },
    }))
    .expect("deployment JSON");
    deployments
        .create(&Default::default(), &deployment)
        .await
        .expect("creating the deployment");
    for client in [upstream(), testkit::workspace_binary("kubectl").expect("our kubectl")] {
        tunnelled(&node, &client).await;
    }
}

/// The SPDY-over-WebSocket tunnel (what kubectl 1.37 uses first), with one client.
async fn tunnelled(node: &Node1, client: &Path) {
    let forward = Forward::start(client, node, &["pod/web", ":8080"]).await;
    assert!(node.kubelet.log_tail().contains("SPDY/3.1+portforward.k8s.io"));
    // Several sequential connections on one session.
    for _ in 0..3 {
        let (status, body) = get(forward.port, "/index.html").await;
        assert!(status.contains("200"), "{status}");
        assert_eq!(body, b"hello-from-pod\n");
    }
    // Two concurrent connections.
    let (a, b) = tokio::join!(get(forward.port, "/index.html"), get(forward.port, "/big.sum"));
    assert_eq!(a.1, b"hello-from-pod\n");
    let expected = String::from_utf8_lossy(&b.1)
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string();
    assert_eq!(expected.len(), 64, "{:?}", String::from_utf8_lossy(&b.1));
    // A 1.5 MiB body, byte for byte, twice at once.
    let (first, second) = tokio::join!(get(forward.port, "/big.bin"), get(forward.port, "/big.bin"));
    for (status, body) in [first, second] {
        assert!(status.contains("200"), "{status}");
        assert_eq!(body.len(), 1_572_864);
        assert_eq!(sha256(&body).await, expected);
    }

    // Nothing listens on 9999: kubectl gets the kubelet's message on the error stream.
    let failing = Forward::start(client, node, &["pod/web", ":9999"]).await;
    let mut conn = TcpStream::connect(("127.0.0.1", failing.port))
        .await
        .expect("connecting");
    let _ = conn.write_all(b"GET / HTTP/1.0\r\n\r\n").await;
    let mut nothing = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(30), conn.read_to_end(&mut nothing)).await;
    assert!(nothing.is_empty(), "{:?}", String::from_utf8_lossy(&nothing));
    tokio::time::sleep(Duration::from_millis(500)).await;
    let stderr = failing.stop().await;
    eprintln!("kubectl port-forward :9999 said: {stderr}");
    assert!(
        stderr.contains("error forwarding port 9999 to pod default/web") && stderr.contains("127.0.0.1:9999"),
        "kubectl's stderr: {stderr}"
    );
    // The other session is unaffected.
    let (_, body) = get(forward.port, "/index.html").await;
    assert_eq!(body, b"hello-from-pod\n");

    for target in [vec!["svc/web", ":80"], vec!["deploy/web", ":8080"]] {
        let via = Forward::start(client, node, &target).await;
        let (_, body) = get(via.port, "/index.html").await;
        assert_eq!(body, b"hello-from-pod\n", "through {target:?}");
        via.stop().await;
    }

    // A connection held open through kubectl reaches the pod; once kubectl is gone, nothing
    // is left connected inside the pod.
    let idle = TcpStream::connect(("127.0.0.1", forward.port))
        .await
        .expect("connecting");
    let mut open = 0;
    for _ in 0..50 {
        open = established(node, "web", 8080).await;
        if open == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(open, 1, "the held connection in the pod");
    forward.stop().await;
    drop(idle);
    let mut left = usize::MAX;
    for _ in 0..50 {
        left = established(node, "web", 8080).await;
        if left == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        left,
        0,
        "connections to 8080 left in the pod\n{}",
        node.kubelet.log_tail()
    );
}

/// Serves `/www` like [`SERVE`], plus 100 MiB of random bytes and their checksum.
const SERVE_HUGE: &str = "mkdir -p /www && echo hello-from-pod > /www/index.html \
    && head -c 104857600 /dev/urandom > /www/huge.bin \
    && sha256sum /www/huge.bin > /www/huge.sum \
    && exec httpd -f -p 8080 -h /www";

#[tokio::test(flavor = "multi_thread")]
async fn busy_sessions_carry_load_and_idle_ones_are_closed() {
    const IDLE: Duration = Duration::from_secs(3);
    let node = Node1::start(&["--streaming-connection-idle-timeout", "3s"]).await;
    node.create_pod(
        "default",
        json!({
            "metadata": {"name": "huge"},
            "spec": {
                "terminationGracePeriodSeconds": 1,
                "containers": [{
                    "name": "httpd", "image": node.image, "command": ["sh", "-c", SERVE_HUGE],
                    "readinessProbe": {"tcpSocket": {"port": 8080}, "periodSeconds": 1},
                }],
            },
        }),
    )
    .await;
    node.wait_pod("default", "huge", "running and ready", |p| {
        p.status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
    })
    .await;
    let mut forward = Forward::start(&upstream(), &node, &["pod/huge", ":8080"]).await;

    // 50 requests at once through one session.
    let requests = (0..50).map(|_| get(forward.port, "/index.html"));
    for (status, body) in futures::future::join_all(requests).await {
        assert!(status.contains("200"), "{status}");
        assert_eq!(body, b"hello-from-pod\n");
    }
    // 100 MiB intact.
    let (_, sum) = get(forward.port, "/huge.sum").await;
    let (status, huge) = get(forward.port, "/huge.bin").await;
    assert!(status.contains("200"), "{status}");
    assert_eq!(huge.len(), 104_857_600);
    let expected = String::from_utf8_lossy(&sum)
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string();
    assert_eq!(sha256(&huge).await, expected, "the 100 MiB body changed on the way");
    drop(huge);

    // A request every second keeps the session past the idle timeout...
    let mut last = tokio::time::Instant::now();
    for _ in 0..6 {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let (_, body) = get(forward.port, "/index.html").await;
        assert_eq!(body, b"hello-from-pod\n");
        last = tokio::time::Instant::now();
    }
    // ...and without data (kubectl's pings do not count) the kubelet closes it: kubectl
    // loses its connection and exits.
    let exit = tokio::time::timeout(Duration::from_secs(30), forward.child.wait())
        .await
        .expect("kubectl port-forward still running long after the idle timeout")
        .expect("waiting for kubectl");
    let idle = last.elapsed();
    assert!(!exit.success(), "kubectl port-forward exits with an error");
    assert!(idle >= IDLE - Duration::from_millis(500), "closed after {idle:?} idle");
    let stderr = forward.stop().await;
    eprintln!("kubectl port-forward said: {stderr}");

    // An exec session with stdin open but nothing flowing is closed too, and its process
    // killed.
    let mut exec = Command::new(upstream())
        .arg("--kubeconfig")
        .arg(node.apiserver.kubeconfig())
        .args(["exec", "-i", "huge", "--", "sleep", "4324"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("running kubectl exec");
    let _stdin = exec.stdin.take();
    node.wait("the exec'd sleep to start", Duration::from_secs(30), || async {
        processes("sleep 4324") == 1
    })
    .await;
    let started = tokio::time::Instant::now();
    let exit = tokio::time::timeout(Duration::from_secs(30), exec.wait())
        .await
        .expect("kubectl exec still running long after the idle timeout")
        .expect("waiting for kubectl exec");
    assert!(!exit.success(), "kubectl exec ends with an error");
    assert!(
        started.elapsed() >= IDLE - Duration::from_secs(1),
        "closed after {:?}",
        started.elapsed()
    );
    node.wait("the exec'd sleep to be killed", Duration::from_secs(30), || async {
        processes("sleep 4324") == 0
    })
    .await;
}
