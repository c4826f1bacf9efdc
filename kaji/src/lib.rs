//! `kaji`: a multi-node cluster on one Linux machine, kind-style. The control plane runs on the
//! host; every node is a network namespace joined to a bridge the command creates, with its own
//! kubelet (and root directory and cgroups) and kube-proxy. `kaji up` builds it and waits until
//! every node is Ready, `kaji down` removes every process, namespace, link, route, mount and
//! cgroup it made. What a cluster is made of is recorded under `$KAJI_HOME` (default
//! `~/.kaji`)`/clusters/NAME/cluster.json`, so `down` needs nothing else.

pub mod config;
pub mod control_plane;
pub mod down;
pub mod host;
pub mod kubeconfig;
pub mod lb;
pub mod load;
pub mod logs;
pub mod node;
pub mod registry;
pub mod state;
pub mod units;
pub mod up;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// Command line.
#[derive(Debug, Parser)]
#[command(
    name = "kaji",
    about = "A Kubernetes-compatible cluster on this machine, nodes as network namespaces"
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Creates a cluster (or starts again whatever of an existing one stopped) and waits until
    /// every node is Ready.
    Up(UpArgs),
    /// Stops a cluster and removes everything it made.
    Down {
        #[arg(long, default_value = "kaji")]
        name: String,
    },
    /// Lists the clusters.
    List,
    /// Shows a cluster's nodes and processes.
    Status {
        #[arg(long, default_value = "kaji")]
        name: String,
    },
    /// Loads image archives (OCI layout or docker archive tarballs) into every node.
    Load(load::LoadArgs),
    /// Prints every component's log, tagged by component and node.
    Logs(logs::LogsArgs),
    /// Stops or starts a node, or partitions it off the network and heals it (fault injection).
    Node(node::NodeArgs),
    /// The front end of several apiservers (started by `kaji up --apiservers N`).
    #[command(hide = true)]
    ApiserverLb(lb::LbArgs),
    /// Passes the bridge address's connections to a registry on the host's loopback (started
    /// by `kaji up --insecure-registry 127.0.0.1:PORT`).
    #[command(hide = true)]
    RegistryRelay(lb::LbArgs),
}

/// `kaji up` flags.
#[derive(Debug, clap::Args)]
pub struct UpArgs {
    /// The cluster's name (its context is `kaji-NAME`; default `kaji`, or the config's).
    #[arg(long)]
    pub name: Option<String>,
    /// How many nodes (default 1, or as many as the config lists; an existing cluster keeps
    /// its own).
    #[arg(long)]
    pub nodes: Option<u8>,
    /// A cluster file (`apiVersion: kaji.dev/v1alpha1`, `kind: Cluster`): nodes with labels
    /// and taints, registries, store, apiservers, extra flags per component. Flags win over it.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The kubeconfig to write or merge the admin context into (default `~/.kube/config`).
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
    /// A plain-HTTP registry the nodes may pull from (`HOST:PORT`, reachable from the nodes).
    #[arg(long = "insecure-registry", value_name = "HOST:PORT")]
    pub insecure_registries: Vec<String>,
    /// Store the cluster in a real etcd (`/usr/bin/etcd`) instead of the apiserver's embedded
    /// store.
    #[arg(long)]
    pub etcd: bool,
    /// How many etcd members (implies `--etcd`; default 1).
    #[arg(long, value_name = "N")]
    pub etcd_members: Option<u8>,
    /// How many apiservers, behind one address (needs `--etcd`; default 1).
    #[arg(long, value_name = "N")]
    pub apiservers: Option<u8>,
}

/// Runs one command.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Up(args) => up::up(&args),
        Command::Down { name } => down::down(&name),
        Command::List => {
            for name in state::cluster_names()? {
                println!("{name}");
            }
            Ok(())
        }
        Command::Load(args) => load::load(&args),
        Command::ApiserverLb(args) | Command::RegistryRelay(args) => lb::run(&args),
        Command::Logs(args) => logs::logs(&args),
        Command::Node(args) => node::node(&args),
        Command::Status { name } => {
            let cluster = state::Cluster::load(&name)?;
            println!(
                "cluster {} (bridge {}, {}.1)",
                cluster.name, cluster.bridge, cluster.subnet
            );
            for node in &cluster.nodes {
                println!(
                    "  node {} {} (netns {}) {}",
                    node.name,
                    node.ip,
                    node.netns,
                    node.state.describe()
                );
            }
            for process in &cluster.processes {
                let state = if host::is_running(process) {
                    "running"
                } else {
                    "stopped"
                };
                println!("  {:<24} pid {:<8} {state}", process.component, process.pid);
            }
            Ok(())
        }
    }
}
