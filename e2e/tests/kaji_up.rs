//! `kaji up --nodes 2` and `kaji down`, run inside a namespace of their own (standing in for the
//! host, so the bridge and routes `kaji` makes never touch the real host's network): both nodes
//! become Ready, a Deployment behind a NodePort answers on every node and by DNS name, and
//! `kaji down` leaves links, namespaces, mounts and cgroups as they were.
//!
//! Needs every workspace binary built first (`cargo test --workspace` does that) and root.

use std::process::Output;
use std::time::{Duration, Instant};

use testkit::netlab::NetLab;
use testkit::registry::{ImageOptions, Registry, push_busybox_image};

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

struct Host {
    /// The cluster `kaji down` removes when the test ends early.
    name: String,
    up: bool,
    kubeconfig: std::path::PathBuf,
    home: tempfile::TempDir,
    lab: NetLab,
}

impl Drop for Host {
    fn drop(&mut self) {
        if self.up {
            let _ = self.kaji(&["down", "--name", &self.name.clone()]);
        }
    }
}

impl Host {
    fn kaji(&self, args: &[&str]) -> Output {
        self.lab
            .lab
            .command(testkit::workspace_binary("kaji").expect("kaji"))
            .args(args)
            .env("KAJI_HOME", self.home.path())
            .output()
            .expect("running kaji")
    }

    fn kubectl(&self, args: &[&str]) -> Output {
        self.lab
            .lab
            .command("kubectl")
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .args(args)
            .output()
            .expect("running kubectl")
    }

    fn ok(&self, args: &[&str]) -> String {
        let output = self.kubectl(args);
        assert!(output.status.success(), "kubectl {args:?}: {}", text(&output));
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// What `kaji down` must restore: the lab's links, the named namespaces, mounts and cgroups
    /// that mention the cluster.
    fn footprint(&self, name: &str) -> Vec<String> {
        let mut out = Vec::new();
        let links = self
            .lab
            .lab
            .command("ip")
            .args(["-o", "link", "show"])
            .output()
            .expect("ip link");
        out.extend(
            String::from_utf8_lossy(&links.stdout)
                .lines()
                .filter_map(|l| l.split(':').nth(1).map(|n| format!("link {}", n.trim()))),
        );
        for entry in std::fs::read_dir("/run/netns").into_iter().flatten().flatten() {
            let netns = entry.file_name().to_string_lossy().into_owned();
            if netns.contains(name) {
                out.push(format!("netns {netns}"));
            }
        }
        let home = self.home.path().display().to_string();
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        out.extend(
            mounts
                .lines()
                .filter(|l| l.contains(&home))
                .map(|l| format!("mount {l}")),
        );
        for hierarchy in std::fs::read_dir("/sys/fs/cgroup").into_iter().flatten().flatten() {
            for entry in std::fs::read_dir(hierarchy.path()).into_iter().flatten().flatten() {
                if entry.file_name().to_string_lossy().contains(name) {
                    out.push(format!("cgroup {}", entry.path().display()));
                }
            }
        }
        out.sort();
        out
    }
}

#[test]
fn kaji_up_makes_a_working_cluster_and_down_leaves_nothing() {
    let mut lab = NetLab::create(0).expect("lab");
    let registry = Registry::start().expect("registry");
    push_busybox_image(registry.host(), "busybox:1", &ImageOptions::default()).expect("push busybox");
    let port: u16 = registry
        .host()
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("registry port");
    let in_lab = lab.expose_host_port(port).expect("registry in the lab").to_string();
    let home = tempfile::tempdir().expect("KAJI_HOME");
    let kubeconfig = home.path().join("kubeconfig");
    let name = format!("t{}", std::process::id());
    let mut host = Host {
        name: name.clone(),
        up: false,
        kubeconfig,
        home,
        lab,
    };
    let before = host.footprint(&name);

    let started = Instant::now();
    let up = host.kaji(&[
        "up",
        "--name",
        &name,
        "--nodes",
        "2",
        "--kubeconfig",
        &host.kubeconfig.display().to_string(),
        "--insecure-registry",
        &in_lab,
    ]);
    let took = started.elapsed();
    host.up = true;
    let cluster_logs = || {
        let mut logs = String::new();
        let dir = host.home.path().join("clusters").join(&name).join("logs");
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let content = std::fs::read_to_string(entry.path()).unwrap_or_default();
            let tail = &content[content.len().saturating_sub(2000)..];
            logs.push_str(&format!("--- {} ---\n{tail}\n", entry.file_name().to_string_lossy()));
        }
        logs
    };
    assert!(up.status.success(), "kaji up: {}\n{}", text(&up), cluster_logs());
    eprintln!("kaji up --nodes 2 took {took:?}");
    let listed = host.kaji(&["list"]);
    assert!(text(&listed).lines().any(|l| l == name), "kaji list: {}", text(&listed));

    let nodes = host.ok(&["--context", &format!("kaji-{name}"), "get", "nodes", "--no-headers"]);
    assert_eq!(
        nodes
            .lines()
            .filter(|l| l.split_whitespace().nth(1) == Some("Ready"))
            .count(),
        2,
        "{nodes}"
    );

    // A Deployment behind a NodePort, reached from the host on every node, and by DNS name.
    let image = format!("{in_lab}/busybox:1");
    host.ok(&[
        "create",
        "deployment",
        "web",
        "--image",
        &image,
        "--replicas",
        "2",
        "--port",
        "8080",
        "--",
        "sh",
        "-c",
        "mkdir -p /www && hostname > /www/index.html && exec httpd -f -p 8080 -h /www",
    ]);
    host.ok(&["rollout", "status", "deployment/web", "--timeout", "120s"]);
    host.ok(&[
        "expose",
        "deployment",
        "web",
        "--type",
        "NodePort",
        "--port",
        "80",
        "--target-port",
        "8080",
    ]);
    let node_port = host.ok(&["get", "svc", "web", "-o", "jsonpath={.spec.ports[0].nodePort}"]);
    for node in ["10", "11"] {
        let url = format!("http://10.250.0.{node}:{node_port}/");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let fetched = host
                .lab
                .lab
                .command("busybox")
                .args(["timeout", "5", "busybox", "wget", "-qO-", &url])
                .output()
                .expect("wget");
            if fetched.status.success() && String::from_utf8_lossy(&fetched.stdout).starts_with("web-") {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{url} did not answer: {}\n{}",
                text(&fetched),
                cluster_logs()
            );
            std::thread::sleep(Duration::from_millis(300));
        }
    }
    let pod = host.ok(&[
        "get",
        "pods",
        "-l",
        "app=web",
        "-o",
        "jsonpath={.items[0].metadata.name}",
    ]);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let fetched = host.kubectl(&[
            "exec",
            &pod,
            "--",
            "busybox",
            "timeout",
            "5",
            "wget",
            "-qO-",
            "http://web/",
        ]);
        if fetched.status.success() {
            break;
        }
        assert!(Instant::now() < deadline, "http://web/ from a pod: {}", text(&fetched));
        std::thread::sleep(Duration::from_millis(300));
    }

    let down = host.kaji(&["down", "--name", &name]);
    host.up = false;
    assert!(down.status.success(), "kaji down: {}", text(&down));
    assert_eq!(host.footprint(&name), before, "kaji down leaves the host as it was");
    assert!(!host.home.path().join("clusters").join(&name).exists());
}
