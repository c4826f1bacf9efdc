//! Shared fixture for the kubelet's integration tests: an apiserver (embedded store), a local
//! registry with a busybox image, and one kubelet node.

#![allow(dead_code, unreachable_pub)]

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Event, Node, Pod};
use kube::api::{Api, PostParams};
use testkit::apiserver::ApiServer;
use testkit::kubelet::Kubelet;
use testkit::registry::{ImageOptions, Registry};

pub struct Node1 {
    pub kubelet: Kubelet,
    pub client: kube::Client,
    pub image: String,
    pub registry: Registry,
    pub apiserver: ApiServer,
}

pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", &uuid_like()[..8])
}

fn uuid_like() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    format!("{:016x}", nanos ^ (u128::from(std::process::id()) << 40))
        .chars()
        .rev()
        .collect()
}

pub async fn client_for(apiserver: &ApiServer) -> kube::Client {
    let kubeconfig = kube::config::Kubeconfig::read_from(apiserver.kubeconfig()).expect("kubeconfig");
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .expect("client config");
    kube::Client::try_from(config).expect("client")
}

impl Node1 {
    /// Starts everything and waits until the node is Ready.
    pub async fn start(extra_kubelet_args: &[&str]) -> Node1 {
        Node1::start_with(&[], extra_kubelet_args).await
    }

    /// Like [`Node1::start`], with extra apiserver flags.
    pub async fn start_with(apiserver_args: &[&str], extra_kubelet_args: &[&str]) -> Node1 {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let apiserver = ApiServer::start_embedded(
            &testkit::workspace_binary("kube-apiserver").expect("apiserver"),
            apiserver_args,
        )
        .expect("starting the apiserver");
        let registry = Registry::start().expect("starting the registry");
        let image = format!("{}/busybox:1", registry.host());
        testkit::registry::push_busybox_image(registry.host(), "busybox:1", &ImageOptions::default())
            .expect("pushing busybox");
        let node_name = unique("node");
        let mut args = vec!["--insecure-registry", registry.host()];
        args.extend_from_slice(extra_kubelet_args);
        let kubelet = Kubelet::start(
            env!("CARGO_BIN_EXE_kubelet").as_ref(),
            &apiserver.kubeconfig(),
            &node_name,
            &args,
        )
        .expect("starting the kubelet");
        let client = client_for(&apiserver).await;
        let fixture = Node1 {
            kubelet,
            client,
            image,
            registry,
            apiserver,
        };
        let nodes: Api<Node> = Api::all(fixture.client.clone());
        fixture
            .wait("node Ready", Duration::from_secs(30), || async {
                nodes
                    .get_opt(&fixture.kubelet.node_name)
                    .await
                    .ok()
                    .flatten()
                    .is_some_and(|n| {
                        n.status
                            .and_then(|s| s.conditions)
                            .into_iter()
                            .flatten()
                            .any(|c| c.type_ == "Ready" && c.status == "True")
                    })
            })
            .await;
        fixture
    }

    /// Polls `check` until it holds or panics after `timeout` with the kubelet's log.
    pub async fn wait<F, Fut>(&self, what: &str, timeout: Duration, check: F)
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if check().await {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!(
            "timed out waiting for {what}\n--- kubelet log ---\n{}",
            self.kubelet.log_tail()
        );
    }

    /// Waits until some core/v1 Event in `namespace` satisfies `matches`.
    pub async fn wait_event(&self, namespace: &str, what: &str, timeout: Duration, matches: impl Fn(&Event) -> bool) {
        let events: Api<Event> = Api::namespaced(self.client.clone(), namespace);
        self.wait(what, timeout, || async {
            events
                .list(&Default::default())
                .await
                .is_ok_and(|list| list.items.iter().any(&matches))
        })
        .await;
    }

    pub fn pods(&self, namespace: &str) -> Api<Pod> {
        Api::namespaced(self.client.clone(), namespace)
    }

    /// Creates a pod bound to this node from a JSON spec (`spec.nodeName` filled in).
    pub async fn create_pod(&self, namespace: &str, mut pod: serde_json::Value) -> Pod {
        pod["spec"]["nodeName"] = serde_json::json!(self.kubelet.node_name);
        let pod: Pod = serde_json::from_value(pod).expect("pod JSON");
        self.pods(namespace)
            .create(&PostParams::default(), &pod)
            .await
            .expect("creating the pod")
    }

    /// Waits until `check` holds for the pod.
    pub async fn wait_pod(&self, namespace: &str, name: &str, what: &str, check: impl Fn(&Pod) -> bool) -> Pod {
        let api = self.pods(namespace);
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut last = None;
        while Instant::now() < deadline {
            if let Ok(Some(pod)) = api.get_opt(name).await {
                if check(&pod) {
                    return pod;
                }
                last = Some(pod);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!(
            "timed out waiting for pod {name}: {what}\nlast: {}\n--- kubelet log ---\n{}",
            serde_json::to_string_pretty(&last.and_then(|p| p.status)).unwrap_or_default(),
            self.kubelet.log_tail()
        );
    }
}

impl Node1 {
    /// Waits until the pod is gone from the API.
    pub async fn wait_gone(&self, namespace: &str, name: &str) {
        let api = self.pods(namespace);
        self.wait(&format!("pod {name} to be gone"), Duration::from_secs(30), || async {
            api.get_opt(name).await.ok().flatten().is_none()
        })
        .await;
    }
}

pub fn phase(pod: &Pod) -> &str {
    pod.status.as_ref().and_then(|s| s.phase.as_deref()).unwrap_or("")
}

pub fn container_state(pod: &Pod, name: &str) -> k8s_openapi::api::core::v1::ContainerStatus {
    pod.status
        .as_ref()
        .and_then(|s| s.container_statuses.clone())
        .into_iter()
        .flatten()
        .find(|c| c.name == name)
        .unwrap_or_default()
}

/// The clients every `kubectl` scenario runs with: upstream's kubectl 1.37 and ours (built by
/// `cargo build --bins`).
pub fn clients() -> Vec<std::path::PathBuf> {
    vec![
        testkit::upstream_kubectl().expect("upstream kubectl"),
        testkit::workspace_binary("kubectl").expect("our kubectl"),
    ]
}

/// Runs `client` against the fixture's apiserver, feeding `stdin` if given (then closing it).
pub async fn kubectl(
    client: &std::path::Path,
    node: &Node1,
    args: &[&str],
    stdin: Option<&[u8]>,
) -> std::process::Output {
    kubectl_with_env(client, node, &[], args, stdin).await
}

/// [`kubectl`] with extra environment variables.
pub async fn kubectl_with_env(
    client: &std::path::Path,
    node: &Node1,
    env: &[(&str, &str)],
    args: &[&str],
    stdin: Option<&[u8]>,
) -> std::process::Output {
    use tokio::io::AsyncWriteExt;
    let mut command = tokio::process::Command::new(client);
    command
        .envs(env.iter().copied())
        .arg("--kubeconfig")
        .arg(node.apiserver.kubeconfig())
        .args(args)
        .stdin(if stdin.is_some() {
            std::process::Stdio::piped()
        } else {
            std::process::Stdio::null()
        })
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    let mut child = command.spawn().expect("running kubectl");
    if let (Some(data), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(data).await.expect("writing kubectl's stdin");
    }
    tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("{} {args:?} timed out\n{}", client.display(), node.kubelet.log_tail()))
        .expect("waiting for kubectl")
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// What a client printed and returned for one command.
#[derive(Debug, PartialEq, Eq)]
pub struct Seen {
    pub args: Vec<String>,
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

pub fn seen(args: &[&str], out: &std::process::Output) -> Seen {
    Seen {
        args: args.iter().map(|a| a.to_string()).collect(),
        code: out.status.code(),
        stdout: text(&out.stdout),
        stderr: text(&out.stderr),
    }
}

/// Python helpers for driving kubectl on a pseudo-terminal; a scenario follows them:
/// `spawn(argv, rows, cols)` runs argv on a new terminal of that size (returns pid and the
/// master, which the scenario keeps in the global `fd`), `setsize(fd, rows, cols)`,
/// `expect(pattern, retry=bytes)` waits for output (writing `retry` every second), `finish()`
/// reads to the end and returns the exit code; `out` holds everything read.
pub const PTY_PRELUDE: &str = r#"
import fcntl, os, pty, select, struct, sys, termios, time
def setsize(fd, rows, cols):
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack('HHHH', rows, cols, 0, 0))
def spawn(argv, rows, cols):
    pid, fd = pty.fork()
    if pid == 0:
        setsize(0, rows, cols)
        os.execvp(argv[0], argv)
    return pid, fd
out = b''
def expect(pattern, timeout=30, retry=None):
    global out
    deadline = time.time() + timeout
    next_retry = time.time() + 1
    while pattern not in out:
        now = time.time()
        if now > deadline:
            sys.stderr.write('timed out waiting for %r; got %r\n' % (pattern, out))
            sys.exit(90)
        if retry and now > next_retry:
            os.write(fd, retry)
            next_retry = now + 1
        ready, _, _ = select.select([fd], [], [], 0.2)
        if ready:
            try:
                data = os.read(fd, 4096)
            except OSError:
                data = b''
            if not data:
                sys.stderr.write('kubectl ended early; got %r\n' % out)
                sys.exit(91)
            out += data
def finish():
    global out
    while True:
        try:
            data = os.read(fd, 4096)
        except OSError:
            break
        if not data:
            break
        out += data
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)
"#;

/// Host processes whose command line is exactly `command` (argv joined by spaces).
pub fn processes(command: &str) -> usize {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| std::fs::read(entry.path().join("cmdline")).ok())
        .filter(|cmdline| {
            let argv: Vec<String> = cmdline
                .split(|b| *b == 0)
                .filter(|a| !a.is_empty())
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect();
            argv.join(" ") == command
        })
        .count()
}
