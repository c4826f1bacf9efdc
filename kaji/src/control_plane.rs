//! The control plane of a `kaji up` cluster, on the host: the store (the apiserver's embedded
//! one, or `--etcd` with `--etcd-members N` real etcd processes forming one cluster), one or
//! more apiservers (`--apiservers N`, which need etcd: the embedded store belongs to one
//! apiserver), the scheduler and the controller-manager. With several apiservers a front end
//! (`kaji apiserver-lb`, `lb.rs`) listens on the cluster's API address and spreads connections
//! over those that answer, so one kubeconfig reaches them all and survives one going down.
//!
//! Every client uses `<cluster dir>/admin.kubeconfig`: the first apiserver's admin kubeconfig
//! with the front address as its server.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::config::Plan;
use crate::state::{self, Cluster, Process};
use crate::units::{APISERVER, CONTROLLER_MANAGER, SCHEDULER};
use crate::{host, up};

/// The port clients use: the apiserver's, or the front end's with several apiservers.
pub const API_PORT: u16 = 6443;
const ETCD_BINARY: &str = "/usr/bin/etcd";

/// The admin kubeconfig every client of the cluster uses.
pub fn admin_kubeconfig(cluster: &Cluster) -> Result<PathBuf> {
    Ok(state::cluster_dir(&cluster.name)?.join("admin.kubeconfig"))
}

/// Checks the control-plane settings before anything is made.
pub fn validate(plan: &Plan) -> Result<()> {
    let members = plan.etcd_members.unwrap_or(1);
    let apiservers = plan.apiservers;
    if !(1..=7).contains(&members) {
        bail!("--etcd-members must be between 1 and 7");
    }
    if !(1..=5).contains(&apiservers) {
        bail!("--apiservers must be between 1 and 5");
    }
    if apiservers > 1 && plan.etcd_members.is_none() {
        bail!("--apiservers {apiservers} needs --etcd: the embedded store belongs to one apiserver");
    }
    if plan.etcd_members.is_some() && !Path::new(ETCD_BINARY).exists() {
        bail!("--etcd needs {ETCD_BINARY}: install the Debian package etcd-server");
    }
    Ok(())
}

/// Starts the store, the apiservers (and their front end), the scheduler and the
/// controller-manager; returns when the admin kubeconfig is written.
pub fn start(cluster: &mut Cluster, plan: &Plan, gateway: &str, started: Instant) -> Result<PathBuf> {
    let dir = state::cluster_dir(&cluster.name)?;
    let logs = dir.join("logs");
    let mut apiserver_flags = Vec::new();
    if let Some(members) = plan.etcd_members {
        up::step(started, &format!("etcd: {members} member(s)"));
        let endpoints = start_etcd(cluster, members, gateway, &dir, &logs)?;
        apiserver_flags.push(format!("--etcd-servers {}", endpoints.join(",")));
    }
    apiserver_flags.push(plan.extra(&APISERVER));
    let apiserver_flags = apiserver_flags.join(" ");

    let apiservers = plan.apiservers;
    up::step(
        started,
        &format!("control plane: {apiservers} kube-apiserver(s), kube-scheduler, kube-controller-manager"),
    );
    let mut backends = Vec::new();
    for i in 0..apiservers {
        // One apiserver listens on the API port itself; several listen on the ports after it,
        // behind the front end.
        let port = if apiservers == 1 {
            API_PORT
        } else {
            API_PORT + 1 + u16::from(i)
        };
        let data_dir = dir.join(if i == 0 {
            "apiserver".to_string()
        } else {
            format!("apiserver{i}")
        });
        std::fs::create_dir_all(&data_dir)?;
        if i > 0 {
            // One CA and one service-account signing key for all of them.
            copy_dir(&dir.join("apiserver/pki"), &data_dir.join("pki"))?;
        }
        let data = data_dir.display().to_string();
        let log = if i == 0 {
            logs.join("kube-apiserver.log")
        } else {
            logs.join(format!("kube-apiserver{i}.log"))
        };
        let process = up::start_unit(
            &APISERVER,
            &[
                ("DATA_DIR", &data),
                ("BIND_ADDRESS", gateway),
                ("ADVERTISE_ADDRESS", gateway),
                ("SECURE_PORT", &port.to_string()),
                ("EXTRA_ARGS", &apiserver_flags),
            ],
            &log,
            None,
        )?;
        cluster.processes.push(process.clone());
        cluster.save()?;
        let kubeconfig = data_dir.join("admin.kubeconfig");
        up::wait_for(Duration::from_secs(60), "the apiserver's kubeconfig", || {
            kubeconfig.exists() || !host::is_running(&process)
        })?;
        if !kubeconfig.exists() {
            bail!("{}", up::log_tail(&process));
        }
        backends.push(format!("{gateway}:{port}"));
    }
    if apiservers > 1 {
        let mut lb_args = vec![
            "apiserver-lb".to_string(),
            "--listen".into(),
            format!("{gateway}:{API_PORT}"),
        ];
        for backend in &backends {
            lb_args.extend(["--backend".to_string(), backend.clone()]);
        }
        let kaji = std::env::current_exe().context("locating the kaji executable")?;
        let process = host::spawn(
            "kaji-apiserver-lb",
            &kaji,
            &lb_args,
            &logs.join("kaji-apiserver-lb.log"),
            None,
        )?;
        cluster.processes.push(process);
        cluster.save()?;
    }
    let admin = admin_kubeconfig(cluster)?;
    write_admin_kubeconfig(
        &dir.join("apiserver/admin.kubeconfig"),
        &admin,
        &format!("https://{gateway}:{API_PORT}"),
    )?;

    let admin_path = admin.display().to_string();
    for unit in [&SCHEDULER, &CONTROLLER_MANAGER] {
        let process = up::start_unit(
            unit,
            &[
                ("KUBECONFIG", &admin_path),
                ("CLUSTER_CIDR", &cluster.pod_cidr),
                ("EXTRA_ARGS", &plan.extra(unit)),
            ],
            &logs.join(format!("{}.log", unit.name)),
            None,
        )?;
        cluster.processes.push(process);
    }
    cluster.save()?;
    Ok(admin)
}

/// Starts `members` etcd processes forming one cluster on the bridge address (client ports
/// 2379, 2381, ..., peer ports 2380, 2382, ...); returns the client endpoints.
fn start_etcd(cluster: &mut Cluster, members: u8, gateway: &str, dir: &Path, logs: &Path) -> Result<Vec<String>> {
    let ports = |i: u8| (2379 + 2 * u16::from(i), 2380 + 2 * u16::from(i));
    let initial_cluster: Vec<String> = (0..members)
        .map(|i| format!("etcd{i}=http://{gateway}:{}", ports(i).1))
        .collect();
    let mut endpoints = Vec::new();
    for i in 0..members {
        let (client, peer) = ports(i);
        let client_url = format!("http://{gateway}:{client}");
        let peer_url = format!("http://{gateway}:{peer}");
        let data_dir = dir.join("etcd").join(format!("etcd{i}"));
        std::fs::create_dir_all(&data_dir)?;
        let args: Vec<String> = [
            "--name",
            &format!("etcd{i}"),
            "--data-dir",
            &data_dir.display().to_string(),
            "--listen-client-urls",
            &client_url,
            "--advertise-client-urls",
            &client_url,
            "--listen-peer-urls",
            &peer_url,
            "--initial-advertise-peer-urls",
            &peer_url,
            "--initial-cluster",
            &initial_cluster.join(","),
            "--initial-cluster-token",
            &format!("kaji-{}", cluster.name),
            "--initial-cluster-state",
            "new",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let log = logs.join(format!("etcd{i}.log"));
        let process = host::spawn("etcd", Path::new(ETCD_BINARY), &args, &log, None)?;
        cluster.processes.push(Process {
            component: format!("etcd{i}"),
            ..process
        });
        cluster.save()?;
        endpoints.push(client_url);
    }
    // The apiserver gives up on a store it cannot reach, so the members must have elected a
    // leader first.
    for (i, endpoint) in endpoints.iter().enumerate() {
        let address = endpoint.trim_start_matches("http://").to_string();
        up::wait_for(Duration::from_secs(30), &format!("etcd{i} to be healthy"), || {
            etcd_healthy(&address)
        })?;
    }
    Ok(endpoints)
}

/// Whether the etcd member at `address` answers `/health` with `"health":"true"`.
fn etcd_healthy(address: &str) -> bool {
    use std::io::{Read, Write};
    let Ok(address) = address.parse::<std::net::SocketAddr>() else {
        return false;
    };
    let Ok(mut stream) = std::net::TcpStream::connect_timeout(&address, Duration::from_millis(500)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let request = format!("GET /health HTTP/1.0\r\nHost: {address}\r\n\r\n");
    let mut answer = String::new();
    stream.write_all(request.as_bytes()).is_ok()
        && stream.read_to_string(&mut answer).is_ok()
        && answer.contains("\"health\":\"true\"")
}

/// Writes the apiserver's admin kubeconfig with `server` as the cluster's address.
fn write_admin_kubeconfig(from: &Path, to: &Path, server: &str) -> Result<()> {
    let mut config =
        kube::config::Kubeconfig::read_from(from).with_context(|| format!("reading {}", from.display()))?;
    for cluster in config.clusters.iter_mut().filter_map(|c| c.cluster.as_mut()) {
        cluster.server = Some(server.to_string());
    }
    crate::kubeconfig::write(to, &config)
}

fn copy_dir(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from).with_context(|| format!("reading {}", from.display()))? {
        let entry = entry?;
        std::fs::copy(entry.path(), to.join(entry.file_name()))
            .with_context(|| format!("copying {}", entry.path().display()))?;
    }
    Ok(())
}
