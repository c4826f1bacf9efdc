//! Single-node pod startup benchmark (issue 4): API create → Running seen through a watch,
//! against a real apiserver, a local registry and one real kubelet, image cached.
//!
//! Run as root (it creates real containers):
//!
//! ```text
//! export CARGO_TARGET_DIR=/work/target-bench
//! cargo build --release -p apiserver --bin kube-apiserver
//! cargo bench -p kubelet --bench pod_startup
//! ```
//!
//! `cargo bench` builds the kubelet's own binaries in release; the apiserver is another
//! package's binary, so it must be built first into the same target directory (the bench looks
//! for `<target>/release/kube-apiserver` and stops with an error naming the command when it is
//! missing).
//!
//! Phases: start apiserver (embedded store) + registry + one kubelet node, push busybox and
//! run one warm-up pod (the image pull); then **sequential**: N pods one after another, each
//! timed from the create call until the one watch (opened before) shows it Running with its
//! container ready, the earlier pods left running; delete them all; then **burst**: N pods
//! created concurrently, timed until all are Running; then the burst deletion, timed until all
//! are gone from the API (the kubelet confirms a deletion only once the pod's containers,
//! mounts and cgroups are gone). Pods run `sleep 3600` with `terminationGracePeriodSeconds: 1`:
//! `sleep` as PID 1 ignores SIGTERM, so every deletion includes the 1 s grace period.
//!
//! Settings (environment): `KAJI_BENCH_PODS` (sequential pods, default 100),
//! `KAJI_BENCH_BURST` (burst pods, default 100), `KAJI_BENCH_KUBELET_LOG` (where the kubelet's
//! log is copied at the end; default `$TMPDIR/kaji-pod-startup-kubelet.log`),
//! `KAJI_BENCH_SAMPLES` (a file to write each sequential pod's create time and latency to, as
//! TSV, for lining them up with other traces such as `perf record -k CLOCK_REALTIME`).
//!
//! Where the time goes: run with `RUST_LOG=kubelet=debug,kube_client=debug` (passed to the
//! kubelet and the apiserver). The kubelet then logs every API request it sends, with
//! microsecond timestamps, and the bench splits each sequential pod's startup into the steps
//! those requests mark (see [`phase_breakdown`]).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context as _, Result, bail};
use futures::StreamExt;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, DeleteParams, PostParams};
use kube::runtime::watcher;
use testkit::apiserver::ApiServer;
use testkit::kubelet::Kubelet;
use testkit::registry::{ImageOptions, Registry};
use tokio::sync::mpsc;

const NAMESPACE: &str = "default";
const LABEL: &str = "kaji-bench";
const LABEL_VALUE: &str = "pod-startup";
/// How long one pod may take before the bench gives up.
const POD_TIMEOUT: Duration = Duration::from_secs(60);

fn main() {
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(error) => {
            eprintln!("pod_startup: {error:#}");
            std::process::exit(2);
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("building the tokio runtime");
    // The fixtures live inside `run`: an error, a panic or Ctrl-C drops them, and their `Drop`
    // kills every process, unmounts and removes cgroups.
    let outcome = runtime.block_on(async {
        tokio::select! {
            outcome = run(&config) => outcome,
            _ = tokio::signal::ctrl_c() => Err(anyhow::anyhow!("interrupted")),
        }
    });
    if let Err(error) = outcome {
        eprintln!("pod_startup: {error:#}");
        std::process::exit(1);
    }
}

struct Config {
    sequential: usize,
    burst: usize,
    kubelet_log_copy: PathBuf,
    samples_file: Option<PathBuf>,
}

impl Config {
    fn from_env() -> Result<Config> {
        let number = |name: &str, default: usize| -> Result<usize> {
            match std::env::var(name) {
                Ok(text) => text.parse().with_context(|| format!("{name}={text:?} is not a number")),
                Err(_) => Ok(default),
            }
        };
        Ok(Config {
            sequential: number("KAJI_BENCH_PODS", 100)?,
            burst: number("KAJI_BENCH_BURST", 100)?,
            kubelet_log_copy: std::env::var_os("KAJI_BENCH_KUBELET_LOG")
                .map(PathBuf::from)
                .unwrap_or_else(|| std::env::temp_dir().join("kaji-pod-startup-kubelet.log")),
            samples_file: std::env::var_os("KAJI_BENCH_SAMPLES").map(PathBuf::from),
        })
    }
}

/// apiserver + registry + one kubelet; dropped in field order (the kubelet first, so its
/// containers go before the apiserver does).
struct Cluster {
    kubelet: Kubelet,
    client: kube::Client,
    image: String,
    _registry: Registry,
    apiserver: ApiServer,
}

impl Cluster {
    async fn start() -> Result<Cluster> {
        if !running_as_root() {
            bail!("the pod startup benchmark creates real containers: run it as root");
        }
        let _ = rustls::crypto::ring::default_provider().install_default();
        let apiserver_binary = testkit::workspace_binary("kube-apiserver").map_err(|error| {
            anyhow::anyhow!(
                "{error}\nthe release kube-apiserver is missing: build it first into the same target directory with\n  \
                 cargo build --release -p apiserver --bin kube-apiserver"
            )
        })?;
        let apiserver = ApiServer::start_embedded(&apiserver_binary, &[]).context("starting the apiserver")?;
        let registry = Registry::start().context("starting the registry")?;
        testkit::registry::push_busybox_image(registry.host(), "busybox:1", &ImageOptions::default())
            .context("pushing busybox")?;
        let image = format!("{}/busybox:1", registry.host());
        let node_name = format!("bench-{}", std::process::id());
        let kubelet = Kubelet::start(
            env!("CARGO_BIN_EXE_kubelet").as_ref(),
            &apiserver.kubeconfig(),
            &node_name,
            &["--insecure-registry", registry.host()],
        )
        .context("starting the kubelet")?;
        let kubeconfig = kube::config::Kubeconfig::read_from(apiserver.kubeconfig())?;
        let client_config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default()).await?;
        let client = kube::Client::try_from(client_config)?;
        let cluster = Cluster {
            kubelet,
            client,
            image,
            _registry: registry,
            apiserver,
        };
        cluster.wait_node_ready().await?;
        Ok(cluster)
    }

    async fn wait_node_ready(&self) -> Result<()> {
        let nodes: Api<Node> = Api::all(self.client.clone());
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            let ready = nodes
                .get_opt(&self.kubelet.node_name)
                .await
                .ok()
                .flatten()
                .and_then(|n| n.status)
                .and_then(|s| s.conditions)
                .into_iter()
                .flatten()
                .any(|c| c.type_ == "Ready" && c.status == "True");
            if ready {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        bail!("the node did not become Ready in 30 s\n{}", self.kubelet.log_tail())
    }

    fn pods(&self) -> Api<Pod> {
        Api::namespaced(self.client.clone(), NAMESPACE)
    }

    fn pod(&self, name: &str) -> Result<Pod> {
        Ok(serde_json::from_value(serde_json::json!({
            "metadata": {"name": name, "labels": {LABEL: LABEL_VALUE}},
            "spec": {
                "nodeName": self.kubelet.node_name,
                "terminationGracePeriodSeconds": 1,
                "containers": [{
                    "name": "main",
                    "image": self.image,
                    "imagePullPolicy": "IfNotPresent",
                    "command": ["sleep", "3600"],
                }],
            },
        }))?)
    }

    async fn create(&self, name: &str) -> Result<()> {
        self.pods()
            .create(&PostParams::default(), &self.pod(name)?)
            .await
            .with_context(|| format!("creating pod {name}"))?;
        Ok(())
    }

    fn kubelet_log_path(&self) -> Option<PathBuf> {
        // testkit keeps the log beside the root directory, in the fixture's temporary directory.
        Some(self.kubelet.root_dir.parent()?.join("kubelet.log"))
    }

    /// The kubelet process (not its shims): the one whose command line names this node.
    fn kubelet_pid(&self) -> Option<i32> {
        let node_flag = self.kubelet.node_name.as_str();
        find_process(|cmdline| cmdline.iter().any(|a| a == node_flag) && !cmdline.iter().any(|a| a == "runtime-shim"))
    }

    fn apiserver_pid(&self) -> Option<i32> {
        let data_dir = self.apiserver.data_dir().display().to_string();
        find_process(|cmdline| cmdline.iter().any(|a| a == &data_dir))
    }
}

/// What the watch saw.
#[derive(Debug)]
enum Seen {
    Running(String, Instant),
    Gone(String, Instant),
}

/// Stops the watch task when dropped (before the apiserver goes, so it does not retry against
/// a stopped server).
struct WatchTask(tokio::task::JoinHandle<()>);

impl Drop for WatchTask {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Opens the one watch on the bench's pods and forwards Running (phase Running, every container
/// ready) and deletions; returns once the watch is established.
async fn open_watch(client: kube::Client) -> Result<(mpsc::UnboundedReceiver<Seen>, WatchTask)> {
    let api: Api<Pod> = Api::namespaced(client, NAMESPACE);
    let config = watcher::Config::default().labels(&format!("{LABEL}={LABEL_VALUE}"));
    let mut stream = watcher(api, config).boxed();
    let (tx, rx) = mpsc::unbounded_channel();
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    let task = tokio::spawn(async move {
        let mut ready_tx = Some(ready_tx);
        let mut running: HashSet<String> = HashSet::new();
        while let Some(event) = stream.next().await {
            let at = Instant::now();
            match event {
                Ok(watcher::Event::InitDone) => {
                    if let Some(ready) = ready_tx.take() {
                        let _ = ready.send(());
                    }
                }
                Ok(watcher::Event::Apply(pod) | watcher::Event::InitApply(pod)) => {
                    let name = pod.metadata.name.clone().unwrap_or_default();
                    if is_running_and_ready(&pod) && running.insert(name.clone()) {
                        let _ = tx.send(Seen::Running(name, at));
                    }
                }
                Ok(watcher::Event::Delete(pod)) => {
                    let name = pod.metadata.name.clone().unwrap_or_default();
                    running.remove(&name);
                    let _ = tx.send(Seen::Gone(name, at));
                }
                Ok(watcher::Event::Init) => {}
                Err(error) => eprintln!("pod_startup: watch error (the watcher retries): {error}"),
            }
        }
    });
    tokio::time::timeout(Duration::from_secs(30), ready_rx)
        .await
        .context("the watch did not start in 30 s")?
        .context("the watch ended")?;
    Ok((rx, WatchTask(task)))
}

fn is_running_and_ready(pod: &Pod) -> bool {
    let Some(status) = &pod.status else { return false };
    let statuses = status.container_statuses.as_deref().unwrap_or_default();
    status.phase.as_deref() == Some("Running") && !statuses.is_empty() && statuses.iter().all(|c| c.ready)
}

/// Waits until the watch has shown every pod of `names` in the wanted state; returns when each
/// was seen.
async fn wait_for(
    rx: &mut mpsc::UnboundedReceiver<Seen>,
    names: &HashSet<String>,
    running: bool,
    timeout: Duration,
) -> Result<HashMap<String, Instant>> {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut seen = HashMap::new();
    while seen.len() < names.len() {
        let event = tokio::time::timeout_at(deadline, rx.recv())
            .await
            .map_err(|_| {
                anyhow::anyhow!(
                    "timed out after {timeout:?}: {} of {} pods {}",
                    seen.len(),
                    names.len(),
                    if running { "Running" } else { "gone" }
                )
            })?
            .context("the watch task ended")?;
        let (name, at) = match (event, running) {
            (Seen::Running(name, at), true) | (Seen::Gone(name, at), false) => (name, at),
            _ => continue,
        };
        if names.contains(&name) {
            seen.entry(name).or_insert(at);
        }
    }
    Ok(seen)
}

/// Whether the effective user is root (`Uid:` in `/proc/self/status`: real, effective, ...).
fn running_as_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            let line = status.lines().find(|l| l.starts_with("Uid:"))?;
            line.split_whitespace().nth(2).map(|euid| euid == "0")
        })
        .unwrap_or(false)
}

/// CPU seconds (user + system) a process has used, from `/proc/<pid>/stat`.
fn cpu_seconds(pid: Option<i32>) -> f64 {
    let Some(pid) = pid else { return 0.0 };
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the `(comm)`; utime and stime are fields 14 and 15 (1-based).
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok()).unwrap_or(0.0);
    let hz = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .unwrap_or(100) as f64;
    (ticks(11) + ticks(12)) / hz
}

fn find_process(matches: impl Fn(&[String]) -> bool) -> Option<i32> {
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let raw = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let cmdline: Vec<String> = raw
            .split(|b| *b == 0)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        if matches(&cmdline) {
            return Some(pid);
        }
    }
    None
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// CPU used by the kubelet and the apiserver over one phase.
struct CpuMeter {
    kubelet: Option<i32>,
    apiserver: Option<i32>,
    start: (f64, f64, Instant),
}

impl CpuMeter {
    fn start(cluster: &Cluster) -> CpuMeter {
        let kubelet = cluster.kubelet_pid();
        let apiserver = cluster.apiserver_pid();
        CpuMeter {
            kubelet,
            apiserver,
            start: (cpu_seconds(kubelet), cpu_seconds(apiserver), Instant::now()),
        }
    }

    /// (kubelet CPU s, apiserver CPU s, wall s) since `start`.
    fn read(&self) -> (f64, f64, f64) {
        (
            cpu_seconds(self.kubelet) - self.start.0,
            cpu_seconds(self.apiserver) - self.start.1,
            self.start.2.elapsed().as_secs_f64(),
        )
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    // Nearest rank.
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

/// One sequential pod: its name, when it was created (wall clock, for the kubelet log) and
/// how long until Running.
struct Sample {
    name: String,
    created_wall: SystemTime,
    latency: Duration,
}

async fn run(config: &Config) -> Result<()> {
    let load_before = load_average();
    println!("pod_startup: starting apiserver, registry and kubelet (load average {load_before})");
    let cluster = Cluster::start().await?;
    let outcome = measure(&cluster, config).await;
    if let Some(log) = cluster.kubelet_log_path() {
        match std::fs::copy(&log, &config.kubelet_log_copy) {
            Ok(_) => println!("kubelet log copied to {}", config.kubelet_log_copy.display()),
            Err(error) => eprintln!("pod_startup: copying the kubelet log {}: {error}", log.display()),
        }
    }
    if let Err(error) = &outcome {
        eprintln!(
            "--- kubelet log (end) ---\n{}\n--- apiserver log (end) ---\n{}",
            cluster.kubelet.log_tail(),
            cluster.apiserver.log_tail()
        );
        eprintln!("pod_startup: {error:#}");
    }
    println!("cleaning up (kubelet, containers, mounts, cgroups, registry, apiserver)");
    drop(cluster);
    println!("load average after: {}", load_average());
    outcome
}

async fn measure(cluster: &Cluster, config: &Config) -> Result<()> {
    let pods = cluster.pods();
    let (mut seen, _watch) = open_watch(cluster.client.clone()).await?;

    // Warm-up: pulls and unpacks the image.
    let started = Instant::now();
    cluster.create("warmup").await?;
    let warmup: HashSet<String> = ["warmup".to_string()].into();
    wait_for(&mut seen, &warmup, true, POD_TIMEOUT).await?;
    let warmup_time = started.elapsed();
    pods.delete("warmup", &DeleteParams::default()).await?;
    wait_for(&mut seen, &warmup, false, POD_TIMEOUT).await?;
    println!("warm-up pod (image pull) Running after {}", ms(warmup_time));

    // Sequential.
    let load_sequential = load_average();
    let meter = CpuMeter::start(cluster);
    let mut samples = Vec::with_capacity(config.sequential);
    for i in 0..config.sequential {
        let name = format!("seq-{i:03}");
        let created_wall = SystemTime::now();
        let started = Instant::now();
        cluster.create(&name).await?;
        let one: HashSet<String> = [name.clone()].into();
        let at = wait_for(&mut seen, &one, true, POD_TIMEOUT).await?;
        let latency = at[&name].saturating_duration_since(started);
        samples.push(Sample {
            name,
            created_wall,
            latency,
        });
    }
    let sequential_cpu = meter.read();

    // Idle with the sequential pods running: what the workers' polling costs.
    let idle = CpuMeter::start(cluster);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let idle_cpu = idle.read();

    let sequential_names: HashSet<String> = samples.iter().map(|s| s.name.clone()).collect();
    let sequential_delete = delete_all(cluster, &mut seen, &sequential_names).await?;
    assert_node_clean(cluster)?;

    // Burst.
    let load_burst = load_average();
    let burst_names: Vec<String> = (0..config.burst).map(|i| format!("burst-{i:03}")).collect();
    let meter = CpuMeter::start(cluster);
    let started = Instant::now();
    let creates = burst_names.iter().map(|name| cluster.create(name));
    let created = futures::future::join_all(creates).await;
    let all_created = started.elapsed();
    created.into_iter().collect::<Result<Vec<()>>>()?;
    let burst_set: HashSet<String> = burst_names.iter().cloned().collect();
    let at = wait_for(&mut seen, &burst_set, true, Duration::from_secs(120)).await?;
    let burst_total = at
        .values()
        .max()
        .map(|t| t.saturating_duration_since(started))
        .unwrap_or_default();
    let mut burst_each: Vec<Duration> = at.values().map(|t| t.saturating_duration_since(started)).collect();
    burst_each.sort();
    let burst_cpu = meter.read();
    let burst_delete = delete_all(cluster, &mut seen, &burst_set).await?;
    assert_node_clean(cluster)?;
    let load_after = load_average();

    // Report.
    let mut sorted: Vec<Duration> = samples.iter().map(|s| s.latency).collect();
    sorted.sort();
    let p = |q: f64| percentile(&sorted, q);
    let verdict = |ok: bool| if ok { "met" } else { "MISSED" };
    let first_ten: Vec<Duration> = {
        let mut v: Vec<Duration> = samples.iter().take(10).map(|s| s.latency).collect();
        v.sort();
        v
    };
    let last_ten: Vec<Duration> = {
        let mut v: Vec<Duration> = samples.iter().rev().take(10).map(|s| s.latency).collect();
        v.sort();
        v
    };
    println!();
    println!(
        "## Pod startup, single node ({} sequential, {} burst pods)",
        config.sequential, config.burst
    );
    println!();
    println!("load average: before sequential {load_sequential}; before burst {load_burst}; after {load_after}");
    println!();
    println!("| measurement | result | target |");
    println!("|---|---:|---|");
    println!(
        "| sequential p50 | {} | ≤ 50 ms: {} |",
        ms(p(50.0)),
        verdict(p(50.0) <= Duration::from_millis(50))
    );
    println!("| sequential p90 | {} | |", ms(p(90.0)));
    println!(
        "| sequential p99 | {} | ≤ 250 ms: {} |",
        ms(p(99.0)),
        verdict(p(99.0) <= Duration::from_millis(250))
    );
    println!("| sequential max | {} | |", ms(p(100.0)));
    println!(
        "| sequential p50 of pods 1–10 / last 10 | {} / {} | |",
        ms(percentile(&first_ten, 50.0)),
        ms(percentile(&last_ten, 50.0))
    );
    println!("| burst: {} creates returned | {} | |", config.burst, ms(all_created));
    println!(
        "| burst: all Running (p50 / p90 of each pod) | {} ({} / {}) | ≤ 5 s: {} |",
        ms(burst_total),
        ms(percentile(&burst_each, 50.0)),
        ms(percentile(&burst_each, 90.0)),
        verdict(burst_total <= Duration::from_secs(5))
    );
    println!(
        "| deletion of the {} sequential pods (at once), until gone | {} | |",
        config.sequential,
        ms(sequential_delete)
    );
    println!(
        "| burst deletion ({} pods), until gone | {} | (includes the 1 s grace) |",
        config.burst,
        ms(burst_delete)
    );
    println!();
    println!("| CPU (kubelet / apiserver), seconds of CPU per wall second | kubelet | apiserver |");
    println!("|---|---:|---:|");
    for (label, (kubelet, apiserver, wall)) in [
        ("sequential phase", sequential_cpu),
        ("idle, sequential pods running (3 s)", idle_cpu),
        ("burst phase", burst_cpu),
    ] {
        println!("| {label} | {:.2} | {:.2} |", kubelet / wall, apiserver / wall);
    }
    println!();
    println!("sequential latencies in creation order (ms):");
    let line: Vec<String> = samples
        .iter()
        .map(|s| format!("{:.0}", s.latency.as_secs_f64() * 1000.0))
        .collect();
    println!("{}", line.join(" "));

    if let Some(path) = &config.samples_file {
        let mut tsv = String::from("pod\tcreated_unix_s\tlatency_ms\n");
        for s in &samples {
            let created = s
                .created_wall
                .duration_since(SystemTime::UNIX_EPOCH)
                .unwrap_or_default();
            tsv.push_str(&format!(
                "{}\t{:.6}\t{:.3}\n",
                s.name,
                created.as_secs_f64(),
                s.latency.as_secs_f64() * 1000.0
            ));
        }
        std::fs::write(path, tsv).with_context(|| format!("writing {}", path.display()))?;
        println!("sequential samples written to {}", path.display());
    }
    if let Some(log) = cluster.kubelet_log_path() {
        phase_breakdown(&log, &samples);
    }
    Ok(())
}

/// Deletes `names` at once and waits until the watch saw every one gone.
async fn delete_all(
    cluster: &Cluster,
    seen: &mut mpsc::UnboundedReceiver<Seen>,
    names: &HashSet<String>,
) -> Result<Duration> {
    let pods = cluster.pods();
    let started = Instant::now();
    let params = DeleteParams::default();
    let deletes = names.iter().map(|name| pods.delete(name, &params));
    for result in futures::future::join_all(deletes).await {
        result.context("deleting a pod")?;
    }
    wait_for(seen, names, false, Duration::from_secs(120)).await?;
    Ok(started.elapsed())
}

/// After a deletion, nothing of the pods may be left on the node.
fn assert_node_clean(cluster: &Cluster) -> Result<()> {
    let root = &cluster.kubelet.root_dir;
    let left = |dir: &Path| std::fs::read_dir(dir).map(|d| d.count()).unwrap_or(0);
    let pods = left(&root.join("pods"));
    let containers = left(&root.join("runtime").join("containers"));
    let sandboxes = left(&root.join("runtime").join("sandboxes"));
    if pods + containers + sandboxes > 0 {
        bail!("pods deleted but the node still has {pods} pod dirs, {containers} containers, {sandboxes} sandboxes");
    }
    Ok(())
}

/// One API request the kubelet sent, from its `kube_client=debug` log.
struct Request {
    at: SystemTime,
    method: String,
    url: String,
}

fn parse_requests(log: &str) -> Vec<Request> {
    let mut out = Vec::new();
    for line in log.lines().filter(|l| l.ends_with("requesting")) {
        let Some(stamp) = line.split_whitespace().next() else {
            continue;
        };
        let Ok(at) = stamp.parse::<jiff::Timestamp>() else {
            continue;
        };
        let field = |name: &str| {
            line.split_once(&format!("{name}="))
                .and_then(|(_, rest)| rest.split([' ', '}']).next())
                .map(str::to_string)
        };
        let (Some(method), Some(url)) = (field("http.method"), field("http.url")) else {
            continue;
        };
        out.push(Request {
            at: SystemTime::from(at),
            method,
            url,
        });
    }
    out
}

/// Splits each sequential pod's startup at the API requests the kubelet sends on the way (its
/// `kube_client=debug` log): the "Pulled" event (after the sandbox, volumes and the image
/// lookup; the Services, ConfigMaps and Secrets come from the kubelet's caches, no request), the "Created" event (after the rootfs
/// mount, the /etc files and the runtime's start_container), the status PATCH, and the watch
/// event at the bench. Prints medians and p90s per step.
fn phase_breakdown(log: &Path, samples: &[Sample]) {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let requests = parse_requests(&text);
    if requests.is_empty() {
        println!();
        println!(
            "(no per-step breakdown: run with RUST_LOG=kubelet=debug,kube_client=debug to have the kubelet log its API requests)"
        );
        return;
    }
    let steps = [
        "create → \"Pulled\" event (watch delivery, worker start, observe, sources, sandbox, volumes, image lookup)",
        "\"Pulled\" → \"Created\" event (rootfs mount, /etc files, runtime start_container)",
        "\"Created\" → status PATCH sent (prune, observe, status)",
        "PATCH sent → Running seen by the bench's watch",
    ];
    let mut per_step: BTreeMap<usize, Vec<Duration>> = BTreeMap::new();
    let mut complete = 0;
    let mut extra_patches = 0;
    for sample in samples {
        let start = sample.created_wall;
        let end = start + sample.latency;
        let window: Vec<&Request> = requests
            .iter()
            .filter(|r| r.at >= start && r.at <= end + Duration::from_millis(5))
            .collect();
        let since = |from: SystemTime, to: SystemTime| to.duration_since(from).unwrap_or_default();
        let events: Vec<&&Request> = window
            .iter()
            .filter(|r| r.method == "POST" && r.url.contains("/events"))
            .collect();
        let status_path = format!("/pods/{}/status", sample.name);
        let patches: Vec<&&Request> = window
            .iter()
            .filter(|r| r.method == "PATCH" && r.url.contains(&status_path))
            .collect();
        let (Some(pulled), Some(created), Some(patch)) = (events.first(), events.get(1), patches.last()) else {
            continue;
        };
        extra_patches += patches.len() - 1;
        complete += 1;
        let marks = [start, pulled.at, created.at, patch.at, end];
        for (i, pair) in marks.windows(2).enumerate() {
            per_step.entry(i).or_default().push(since(pair[0], pair[1]));
        }
    }
    println!();
    println!(
        "### Where the time goes (kubelet log, {complete} of {} sequential pods matched; {extra_patches} extra status PATCHes)",
        samples.len()
    );
    println!();
    println!("| step | p50 | p90 | mean |");
    println!("|---|---:|---:|---:|");
    for (i, step) in steps.iter().enumerate() {
        let mut values = per_step.remove(&i).unwrap_or_default();
        values.sort();
        let mean = if values.is_empty() {
            Duration::ZERO
        } else {
            values.iter().sum::<Duration>() / values.len() as u32
        };
        println!(
            "| {step} | {} | {} | {} |",
            ms(percentile(&values, 50.0)),
            ms(percentile(&values, 90.0)),
            ms(mean)
        );
    }
}
