//! `kaji up`: the bridge, the control plane on the host, one network namespace per node with
//! its kubelet and kube-proxy, a route to the pods, then waits until every node is Ready and
//! merges the admin context into the kubeconfig. A failure half-way removes what was made.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use k8s_openapi::api::core::v1::Node as NodeObject;
use kube::Api;

use crate::config::Plan;
use crate::state::{self, Cluster, Node, Process};
use crate::units::{APISERVER, CONTROLLER_MANAGER, KUBELET, PROXY, SCHEDULER, Unit};
use crate::{UpArgs, host};

pub fn up(args: &UpArgs) -> Result<()> {
    let plan = Plan::from_args(args)?;
    state::validate_name(&plan.name)?;
    crate::control_plane::validate(&plan)?;
    let started = Instant::now();
    if state::cluster_dir(&plan.name)?.join("cluster.json").exists() {
        let adopted = readopt(&plan, started);
        end_steps();
        return adopted;
    }
    let index = Cluster::free_index()?;
    let subnet = format!("10.250.{index}");
    let dir = state::cluster_dir(&plan.name)?;
    std::fs::create_dir_all(dir.join("logs"))?;
    let mut cluster = Cluster {
        name: plan.name.clone(),
        index,
        bridge: format!("kaji{index}"),
        subnet: subnet.clone(),
        pod_cidr: format!("10.{}.0.0/16", 244 - u16::from(index)),
        nodes: Vec::new(),
        processes: Vec::new(),
    };
    cluster.save()?;
    let built = build(&mut cluster, &plan, started);
    end_steps();
    match built {
        Ok(()) => Ok(()),
        Err(error) => {
            let _ = cluster.save();
            eprintln!("kaji up failed: {error:#}\nremoving what was made");
            if let Err(cleanup) = crate::down::down(&plan.name) {
                eprintln!("cleaning up: {cleanup:#}");
            }
            Err(error)
        }
    }
}

/// Reports a step of `kaji up`: on a terminal a spinner shows the step in progress and each
/// finished one stays as a line; otherwise (logs, CI) plain lines.
pub(crate) fn step(started: Instant, text: &str) {
    let line = format!("[{:>5.1}s] {text}", started.elapsed().as_secs_f64());
    match spinner() {
        Some(bar) => {
            if !bar.message().is_empty() {
                bar.println(format!("  ✓ {}", bar.message()));
            }
            bar.set_message(line);
        }
        None => println!("{line}"),
    }
}

/// Ends the spinner (if any), leaving the last step as a finished line.
pub(crate) fn end_steps() {
    if let Some(bar) = spinner() {
        if !bar.message().is_empty() {
            bar.println(format!("  ✓ {}", bar.message()));
            bar.set_message("");
        }
        bar.finish_and_clear();
    }
}

fn spinner() -> Option<&'static indicatif::ProgressBar> {
    static SPINNER: std::sync::OnceLock<Option<indicatif::ProgressBar>> = std::sync::OnceLock::new();
    SPINNER
        .get_or_init(|| {
            std::io::IsTerminal::is_terminal(&std::io::stdout()).then(|| {
                let bar = indicatif::ProgressBar::new_spinner();
                bar.enable_steady_tick(Duration::from_millis(100));
                bar
            })
        })
        .as_ref()
}

fn build(cluster: &mut Cluster, plan: &Plan, started: Instant) -> Result<()> {
    let dir = state::cluster_dir(&cluster.name)?;
    let logs = dir.join("logs");
    let gateway = format!("{}.1", cluster.subnet);
    // Every binary the units name must be next to kaji before anything is made.
    for unit in [&APISERVER, &SCHEDULER, &CONTROLLER_MANAGER, &KUBELET, &PROXY] {
        host::binary(&unit.command(&[])?.0)?;
    }

    step(started, &format!("bridge {} ({gateway}/24)", cluster.bridge));
    host::ip(&["link", "add", &cluster.bridge, "type", "bridge"])?;
    host::ip(&["addr", "add", &format!("{gateway}/24"), "dev", &cluster.bridge])?;
    host::ip(&["link", "set", &cluster.bridge, "up"])?;

    let registries = start_registry_relays(cluster, plan, &gateway, started)?;
    let admin = crate::control_plane::start(cluster, plan, &gateway, started)?;
    let admin_path = admin.display().to_string();

    for (i, node_plan) in (0u8..).zip(&plan.nodes) {
        let name = format!("{}-node{i}", cluster.name);
        let netns = format!("kaji-{}-{i}", cluster.name);
        let ip = format!("{}.{}", cluster.subnet, 10 + u16::from(i));
        step(started, &format!("node {name}: namespace {netns}, {ip}"));
        let node = Node {
            name: name.clone(),
            netns: netns.clone(),
            ip: ip.clone(),
            root_dir: dir.join("nodes").join(&name),
            cgroup_root: format!("kaji-{}-{i}", cluster.name),
            state: Default::default(),
        };
        cluster.nodes.push(node.clone());
        cluster.save()?;
        host::ip(&["netns", "add", &netns])?;
        let veth = cluster.node_link(usize::from(i));
        host::ip(&[
            "link", "add", &veth, "type", "veth", "peer", "name", "eth0", "netns", &netns,
        ])?;
        host::ip(&["link", "set", &veth, "master", &cluster.bridge, "up"])?;
        host::ip(&["-n", &netns, "link", "set", "lo", "up"])?;
        host::ip(&["-n", &netns, "addr", "add", &format!("{ip}/24"), "dev", "eth0"])?;
        host::ip(&["-n", &netns, "link", "set", "eth0", "up"])?;
        host::ip(&["-n", &netns, "route", "add", "default", "via", &gateway])?;
        std::fs::create_dir_all(&node.root_dir)?;
        let mut kubelet_extra = registries.clone();
        if !node_plan.labels.is_empty() {
            kubelet_extra.push(format!("--node-labels {}", node_plan.labels));
        }
        if !node_plan.taints.is_empty() {
            kubelet_extra.push(format!("--register-with-taints {}", node_plan.taints));
        }
        kubelet_extra.push(plan.extra(&KUBELET));
        let kubelet_extra = kubelet_extra.join(" ");
        let proxy_extra = plan.extra(&PROXY);
        let root_dir = node.root_dir.display().to_string();
        let values = [
            ("KUBECONFIG", admin_path.as_str()),
            ("NODE_NAME", &name),
            ("NODE_IP", &ip),
            ("ROOT_DIR", &root_dir),
            ("CGROUP_ROOT", &node.cgroup_root),
            ("CLUSTER_CIDR", &cluster.pod_cidr),
        ];
        let mut kubelet_values = values.to_vec();
        kubelet_values.push(("EXTRA_ARGS", &kubelet_extra));
        let mut proxy_values = values.to_vec();
        proxy_values.push(("EXTRA_ARGS", &proxy_extra));
        for (unit, values) in [(&KUBELET, kubelet_values), (&PROXY, proxy_values)] {
            let log = logs.join(format!("{}-{name}.log", unit.name));
            let process = start_unit(unit, &values, &log, Some(&netns))?;
            cluster.processes.push(Process {
                node: Some(name.clone()),
                ..process
            });
        }
        cluster.save()?;
    }
    // The host reaches pods through the first node, which routes to the others (host-gw).
    let node0 = cluster.nodes[0].ip.clone();
    host::ip(&["route", "replace", &cluster.pod_cidr, "via", &node0])?;

    step(started, "waiting for every node to be Ready");
    wait_ready(&admin, cluster.nodes.len(), cluster, started)?;

    let target = publish(cluster, plan, &admin, started)?;
    end_steps();
    println!(
        "\nUse it with:\n  kubectl --kubeconfig {} --context kaji-{} get nodes\nRemove it with:\n  kaji down --name {}",
        target.display(),
        cluster.name,
        cluster.name
    );
    Ok(())
}

/// Starts a relay on the bridge address for each registry on the host's loopback
/// (`registry.rs`); returns the kubelets' registry flags.
fn start_registry_relays(cluster: &mut Cluster, plan: &Plan, gateway: &str, started: Instant) -> Result<Vec<String>> {
    let api = crate::control_plane::API_PORT;
    let reserved: Vec<u16> = (api..=api + 5).chain(2379..=2392).collect();
    let registries = crate::registry::plan_registries(plan, gateway, &reserved)?;
    let logs = state::cluster_dir(&cluster.name)?.join("logs");
    let kaji = std::env::current_exe().context("locating the kaji executable")?;
    for port in &registries.relayed_ports {
        let (listen, backend) = crate::registry::relay_addresses(gateway, *port)?;
        step(
            started,
            &format!("registry 127.0.0.1:{port} relayed to the nodes at {listen}"),
        );
        let args = [
            "registry-relay".to_string(),
            "--listen".into(),
            listen.to_string(),
            "--backend".into(),
            backend.to_string(),
        ];
        let log = logs.join(format!("kaji-registry-relay-{port}.log"));
        let process = host::spawn("kaji-registry-relay", &kaji, &args, &log, None)?;
        cluster.processes.push(process);
        cluster.save()?;
    }
    Ok(registries.kubelet_words)
}

/// `kaji up` on an existing cluster: its namespaces and links must still be there (a host
/// reboot loses them: then `kaji down` and up again); every recorded component that no longer
/// runs is started again as it was, and the kubelets adopt the containers that kept running.
fn readopt(plan: &Plan, started: Instant) -> Result<()> {
    let mut cluster = Cluster::load(&plan.name)?;
    if plan.nodes_given && plan.nodes.len() != cluster.nodes.len() {
        bail!(
            "cluster {:?} exists with {} nodes: `kaji down --name {}` removes it",
            plan.name,
            cluster.nodes.len(),
            plan.name
        );
    }
    // `ip`, not /sys/class/net: sysfs shows the namespace it was mounted in.
    if host::ip(&["link", "show", "dev", &cluster.bridge]).is_err() {
        bail!(
            "cluster {:?} is recorded but its bridge {} is gone (the host restarted?): `kaji down --name {}` and `kaji up` again",
            plan.name,
            cluster.bridge,
            plan.name
        );
    }
    for node in &cluster.nodes {
        if !std::path::Path::new("/run/netns").join(&node.netns).exists() {
            bail!(
                "node {} of cluster {:?} lost its namespace {}: `kaji down --name {}` and `kaji up` again",
                node.name,
                plan.name,
                node.netns,
                plan.name
            );
        }
    }
    step(started, &format!("cluster kaji-{} exists: adopting it", cluster.name));
    for index in 0..cluster.nodes.len() {
        let node = cluster.nodes[index].clone();
        if node.state.stopped {
            step(started, &format!("resuming stopped node {}", node.name));
            crate::node::signal_node(&cluster, &node, libc::SIGCONT);
        }
        if node.state.partitioned {
            step(started, &format!("healing partitioned node {}", node.name));
            host::ip(&["link", "set", &cluster.node_link(index), "up"])?;
        }
        cluster.nodes[index].state = Default::default();
    }
    cluster.save()?;
    for index in 0..cluster.processes.len() {
        let process = &cluster.processes[index];
        if host::is_running(process) {
            continue;
        }
        if process.args.is_empty() {
            bail!(
                "{} is not running and was recorded by an older kaji: `kaji down --name {}` and `kaji up` again",
                process.component,
                plan.name
            );
        }
        let label = match &process.node {
            Some(node) => format!("{} on {node}", process.component),
            None => process.component.clone(),
        };
        step(started, &format!("starting {label} again"));
        cluster.processes[index] = host::respawn(process)?;
        cluster.save()?;
    }
    let admin = crate::control_plane::admin_kubeconfig(&cluster)?;
    step(started, "waiting for every node to be Ready");
    wait_ready(&admin, cluster.nodes.len(), &cluster, started)?;
    publish(&cluster, plan, &admin, started)?;
    Ok(())
}

/// Merges the admin context into the kubeconfig (remembering where, for `down`); returns the
/// kubeconfig's path.
fn publish(cluster: &Cluster, plan: &Plan, admin: &std::path::Path, started: Instant) -> Result<std::path::PathBuf> {
    let target = match &plan.kubeconfig {
        Some(path) => path.clone(),
        None => crate::kubeconfig::default_path()?,
    };
    crate::kubeconfig::merge(&target, admin, &cluster.name)?;
    let dir = state::cluster_dir(&cluster.name)?;
    std::fs::write(dir.join("kubeconfig-path"), target.display().to_string())?;
    step(started, &format!("cluster kaji-{} is up", cluster.name));
    Ok(target)
}

/// Starts `unit`'s command line with `values`, logging to `log`, inside `netns` when given.
pub(crate) fn start_unit(
    unit: &Unit,
    values: &[(&str, &str)],
    log: &std::path::Path,
    netns: Option<&str>,
) -> Result<Process> {
    let (program, args) = unit.command(values)?;
    host::spawn(unit.name, &host::binary(&program)?, &args, log, netns)
}

pub(crate) fn wait_for(timeout: Duration, what: &str, check: impl Fn() -> bool) -> Result<()> {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if check() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    bail!("timed out waiting for {what}")
}

/// Polls the Nodes until `count` of them are Ready; a component that died ends the wait.
fn wait_ready(admin: &std::path::Path, count: usize, cluster: &Cluster, started: Instant) -> Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime
        .block_on(async {
            let kubeconfig = kube::config::Kubeconfig::read_from(admin)?;
            let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default()).await?;
            let client = kube::Client::try_from(config)?;
            let nodes: Api<NodeObject> = Api::all(client);
            let deadline = Instant::now() + Duration::from_secs(120);
            let mut reported = 0;
            loop {
                if let Some(dead) = cluster.processes.iter().find(|p| !host::is_running(p)) {
                    bail!("{}", log_tail(dead));
                }
                let ready = nodes
                    .list(&Default::default())
                    .await
                    .map(|list| list.items.iter().filter(|n| is_ready(n)).count())
                    .unwrap_or(0);
                if ready > reported {
                    step(started, &format!("{ready}/{count} nodes Ready"));
                    reported = ready;
                }
                if ready >= count {
                    return Ok(());
                }
                if Instant::now() > deadline {
                    bail!("only {ready} of {count} nodes became Ready in 120 s");
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        })
        .context("waiting for the nodes")
}

/// A process that exited and the end of its log (the logs go with the cluster when a failed
/// `up` cleans up, so this is what the user sees).
pub(crate) fn log_tail(dead: &Process) -> String {
    let log = std::fs::read_to_string(&dead.log).unwrap_or_default();
    let lines: Vec<&str> = log.lines().collect();
    format!(
        "{} (pid {}) exited; the end of its log:\n{}",
        dead.component,
        dead.pid,
        lines[lines.len().saturating_sub(15)..].join("\n")
    )
}

fn is_ready(node: &NodeObject) -> bool {
    node.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|conditions| conditions.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}
