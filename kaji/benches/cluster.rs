//! `kaji up` as a user meets it: wall time of `kaji up --nodes 3` until every node is Ready
//! (median of three clusters made and removed), the control plane's and one node's idle memory
//! (RSS of the recorded processes after the cluster has settled), and pod startup latency for
//! 30 pods placed by the scheduler over the 3 nodes with the image already on every node: from
//! the create request to the watch seeing the pod Ready (upstream's pod startup SLI, scheduling
//! included). Peers can't run
//! here (no Docker); their figures are the published ones in
//! `../shared/reference/perf-anchors.md`, printed alongside.
//!
//! Everything runs inside a network namespace standing in for the host (as the e2e tests do),
//! with a local registry for the image. Needs root.
//!
//! Run: `cargo build --release --bins && cargo bench -p kaji --bench cluster`.

use std::path::Path;
use std::process::Output;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::runtime::watcher;
use testkit::netlab::NetLab;
use testkit::registry::{ImageOptions, Registry, push_busybox_image};

const NODES: usize = 3;
const PODS: usize = 30;
const UP_RUNS: usize = 3;

struct Bench {
    lab: NetLab,
    kaji: std::path::PathBuf,
    home: tempfile::TempDir,
    name: String,
    up: bool,
}

impl Drop for Bench {
    fn drop(&mut self) {
        if self.up {
            let _ = self.kaji(&["down", "--name", &self.name.clone()]);
        }
    }
}

impl Bench {
    fn kaji(&self, args: &[&str]) -> Result<Output> {
        let output = self
            .lab
            .lab
            .command(&self.kaji)
            .args(args)
            .env("KAJI_HOME", self.home.path())
            .output()?;
        ensure!(
            output.status.success(),
            "kaji {args:?}: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        Ok(output)
    }

    fn kubeconfig(&self) -> std::path::PathBuf {
        self.home.path().join("kubeconfig")
    }

    /// Resident memory (KiB) of the recorded processes `select` picks.
    fn rss_kib(&self, select: impl Fn(&serde_json::Value) -> bool) -> Result<u64> {
        self.status_kib(select, "VmRSS:")
    }

    /// The sum of a `/proc/PID/status` figure (KiB) over the recorded processes `select` picks.
    fn status_kib(&self, select: impl Fn(&serde_json::Value) -> bool, field: &str) -> Result<u64> {
        let path = self.home.path().join("clusters").join(&self.name).join("cluster.json");
        let record: serde_json::Value = serde_json::from_slice(&std::fs::read(path)?)?;
        let mut total = 0;
        for process in record["processes"].as_array().context("processes")? {
            if !select(process) {
                continue;
            }
            let status = std::fs::read_to_string(format!("/proc/{}/status", process["pid"]))?;
            total += status
                .lines()
                .find_map(|l| l.strip_prefix(field))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
                .context("no such figure in /proc/PID/status")?;
        }
        Ok(total)
    }
}

fn main() -> Result<()> {
    let mut lab = NetLab::create(0)?;
    let registry = Registry::start()?;
    push_busybox_image(registry.host(), "busybox:1", &ImageOptions::default())?;
    let port = registry.port();
    let in_lab = lab.expose_host_port(port)?.to_string();
    let mut bench = Bench {
        lab,
        kaji: testkit::workspace_binary("kaji")?,
        home: tempfile::tempdir()?,
        name: format!("b{}", std::process::id()),
        up: false,
    };
    let kubeconfig = bench.kubeconfig().display().to_string();
    let nodes = NODES.to_string();
    let up_args = [
        "up",
        "--name",
        &bench.name,
        "--nodes",
        &nodes,
        "--kubeconfig",
        &kubeconfig,
        "--insecure-registry",
        &in_lab,
    ];

    let mut up_times = Vec::new();
    for run in 0..UP_RUNS {
        let started = Instant::now();
        bench.up = true;
        bench.kaji(&up_args)?;
        up_times.push(started.elapsed());
        if run + 1 < UP_RUNS {
            bench.kaji(&["down", "--name", &bench.name.clone()])?;
            bench.up = false;
        }
    }
    up_times.sort();

    // Settle, then measure memory at rest.
    std::thread::sleep(Duration::from_secs(15));
    let control_plane =
        bench.rss_kib(|p| p["node"].is_null() && !p["component"].as_str().is_some_and(|c| c.starts_with("kaji-")))?;
    for component in [
        "kube-apiserver",
        "kube-scheduler",
        "kube-controller-manager",
        "kubelet",
        "kube-proxy",
    ] {
        let rss = bench.rss_kib(|p| p["component"].as_str() == Some(component))?;
        let anon = bench.status_kib(|p| p["component"].as_str() == Some(component), "RssAnon:")?;
        println!(
            "idle RSS of {component} (all nodes for node components): {:.1} MB, of which anonymous {:.1} MB (the rest: pages of its executable)",
            rss as f64 / 1024.0,
            anon as f64 / 1024.0
        );
    }
    let node0 = format!("{}-node0", bench.name);
    let node = bench.rss_kib(|p| p["node"].as_str() == Some(node0.as_str()))?;

    let image = format!("{in_lab}/busybox:1");
    let name = bench.name.clone();
    let kubeconfig_path = bench.kubeconfig();
    let latencies = bench.lab.lab.run_in(move || -> Result<Vec<Duration>> {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        runtime.block_on(pod_startup(&kubeconfig_path, &name, &image))
    })??;

    println!("kaji up, {NODES} nodes (release build; peers: published figures)");
    println!("{:<44} {:>12}   peer", "measure", "kaji");
    println!(
        "{:<44} {:>10.2} s   kind 12-17 s for one node, minikube 40 s+ (target < 5 s)",
        format!("kaji up --nodes {NODES} to all Ready (median of {UP_RUNS})"),
        up_times[UP_RUNS / 2].as_secs_f64()
    );
    println!(
        "{:<44} {:>9.1} MB   k3s server 768-1596 MB (target < 80 MB)",
        "control plane RSS, idle",
        control_plane as f64 / 1024.0
    );
    println!(
        "{:<44} {:>9.1} MB   k3s agent 256-275 MB (target < 40 MB)",
        "one node's kubelet + kube-proxy RSS, idle",
        node as f64 / 1024.0
    );
    println!(
        "{:<44} {:>9.0} ms   (target p99 < 500 ms)",
        format!("pod startup p50, {PODS} pods, image cached"),
        percentile(&latencies, 50).as_secs_f64() * 1000.0
    );
    println!(
        "{:<44} {:>9.0} ms",
        format!("pod startup p99, {PODS} pods, image cached"),
        percentile(&latencies, 99).as_secs_f64() * 1000.0
    );
    bench.kaji(&["down", "--name", &bench.name.clone()])?;
    bench.up = false;
    Ok(())
}

fn percentile(sorted: &[Duration], p: usize) -> Duration {
    let index = ((sorted.len() * p).div_ceil(100)).clamp(1, sorted.len()) - 1;
    sorted[index]
}

/// Puts the image on every node (one pod each, then gone), then creates `PODS` pods spread
/// over the nodes and returns each one's latency from its create request to the watch seeing
/// it Ready, sorted.
async fn pod_startup(kubeconfig: &Path, cluster: &str, image: &str) -> Result<Vec<Duration>> {
    let config = kube::Config::from_custom_kubeconfig(
        kube::config::Kubeconfig::read_from(kubeconfig)?,
        &kube::config::KubeConfigOptions {
            context: Some(format!("kaji-{cluster}")),
            ..Default::default()
        },
    )
    .await?;
    let pods: Api<Pod> = Api::namespaced(kube::Client::try_from(config)?, "default");
    // `node`: bound there directly (warming a node's image store); `None`: scheduled.
    let pod = |name: String, node: Option<usize>| -> Result<Pod> {
        Ok(serde_json::from_value(serde_json::json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name, "labels": {"bench": "startup"}},
            "spec": {
                "nodeName": node.map(|node| format!("{cluster}-node{node}")),
                "terminationGracePeriodSeconds": 0,
                "containers": [{"name": "main", "image": image, "imagePullPolicy": "IfNotPresent", "command": ["sleep", "3600"]}],
            },
        }))?)
    };
    let warm: Vec<String> = (0..NODES).map(|n| format!("warm-{n}")).collect();
    for (n, name) in warm.iter().enumerate() {
        pods.create(&Default::default(), &pod(name.clone(), Some(n))?).await?;
    }
    wait_ready(&pods, &warm, Duration::from_secs(120)).await?;
    for name in &warm {
        pods.delete(name, &Default::default()).await?;
    }

    let names: Vec<String> = (0..PODS).map(|i| format!("startup-{i:02}")).collect();
    let mut created = Vec::new();
    // The watch starts before the first create, so no Ready transition is missed.
    let mut events = watcher(pods.clone(), watcher::Config::default().labels("bench=startup")).boxed();
    let mut ready_at = std::collections::HashMap::new();
    let mut placed = std::collections::BTreeMap::<String, usize>::new();
    let first = events.next().await; // the initial listing
    ensure!(first.is_some(), "the watch ended at once");
    for name in &names {
        created.push(Instant::now());
        pods.create(&Default::default(), &pod(name.clone(), None)?).await?;
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    while ready_at.len() < PODS {
        let event = tokio::time::timeout_at(deadline, events.next())
            .await
            .context("pods did not all become Ready in 120 s")?
            .context("the watch ended")??;
        let now = Instant::now();
        let changed = match event {
            watcher::Event::Apply(pod) | watcher::Event::InitApply(pod) => vec![pod],
            _ => Vec::new(),
        };
        for pod in changed {
            let name = pod.metadata.name.clone().unwrap_or_default();
            // The warm-up pods (going away) carry the same label.
            if is_ready(&pod) && names.contains(&name) && !ready_at.contains_key(&name) {
                ready_at.insert(name, now);
                let node = pod.spec.as_ref().and_then(|s| s.node_name.clone()).unwrap_or_default();
                *placed.entry(node).or_default() += 1;
            }
        }
    }
    let mut latencies: Vec<Duration> = names
        .iter()
        .zip(&created)
        .map(|(name, created)| ready_at[name].duration_since(*created))
        .collect();
    latencies.sort();
    println!("pods per node: {placed:?}");
    for name in &names {
        pods.delete(name, &Default::default()).await?;
    }
    Ok(latencies)
}

async fn wait_ready(pods: &Api<Pod>, names: &[String], timeout: Duration) -> Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        let mut all = true;
        for name in names {
            all &= pods.get(name).await.is_ok_and(|pod| is_ready(&pod));
        }
        if all {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("{names:?} not Ready within {timeout:?}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn is_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}
