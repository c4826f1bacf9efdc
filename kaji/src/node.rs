//! `kaji node stop|start|partition|heal NODE`: fault injection. `stop` freezes a node like a
//! suspended VM (its kubelet, kube-proxy, shims and containers get SIGSTOP, so it stops renewing
//! its Lease and its pods stop answering) and `start` resumes it; `partition` takes the node's
//! link to the bridge down (it can reach neither the control plane nor the other nodes, nor be
//! reached) and `heal` brings it back up. The node's state is recorded so `status` shows it and
//! `down` resumes frozen processes before stopping them.

use anyhow::{Context, Result};

use crate::host;
use crate::state::{Cluster, Node, NodeState};

/// What to do to the node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Action {
    /// Freeze the node: kubelet, kube-proxy and every container stop running.
    Stop,
    /// Resume a stopped node.
    Start,
    /// Cut the node off the cluster network.
    Partition,
    /// Reconnect a partitioned node.
    Heal,
}

/// `kaji node` flags.
#[derive(Debug, clap::Args)]
pub struct NodeArgs {
    /// The cluster.
    #[arg(long, default_value = "kaji")]
    pub name: String,
    /// What to do.
    #[arg(value_enum)]
    pub action: Action,
    /// The node, by its name (`kaji-node1`) or index (`1`).
    pub node: String,
}

pub fn node(args: &NodeArgs) -> Result<()> {
    let mut cluster = Cluster::load(&args.name)?;
    let index = find(&cluster, &args.node)?;
    let node = cluster.nodes[index].clone();
    let state = node.state;
    let next = match (args.action, state.stopped, state.partitioned) {
        (Action::Stop, true, _)
        | (Action::Start, false, _)
        | (Action::Partition, _, true)
        | (Action::Heal, _, false) => {
            println!("node {} is already {}", node.name, state.describe());
            return Ok(());
        }
        (Action::Stop, false, _) => {
            signal_node(&cluster, &node, libc::SIGSTOP);
            NodeState { stopped: true, ..state }
        }
        (Action::Start, true, _) => {
            signal_node(&cluster, &node, libc::SIGCONT);
            NodeState {
                stopped: false,
                ..state
            }
        }
        (Action::Partition, _, false) => {
            host::ip(&["link", "set", &cluster.node_link(index), "down"])?;
            NodeState {
                partitioned: true,
                ..state
            }
        }
        (Action::Heal, _, true) => {
            host::ip(&["link", "set", &cluster.node_link(index), "up"])?;
            NodeState {
                partitioned: false,
                ..state
            }
        }
    };
    cluster.nodes[index].state = next;
    cluster.save()?;
    println!("node {} {}", node.name, next.describe());
    Ok(())
}

/// The index of the node named `name` (or `CLUSTER-name`, or its index).
pub fn find(cluster: &Cluster, name: &str) -> Result<usize> {
    let qualified = format!("{}-{name}", cluster.name);
    cluster
        .nodes
        .iter()
        .position(|n| n.name == name || n.name == qualified)
        .or_else(|| name.parse::<usize>().ok().filter(|i| *i < cluster.nodes.len()))
        .with_context(|| {
            let names: Vec<&str> = cluster.nodes.iter().map(|n| n.name.as_str()).collect();
            format!(
                "cluster {} has no node {name:?} (nodes: {})",
                cluster.name,
                names.join(", ")
            )
        })
}

/// Signals the node's kubelet and kube-proxy (by their recorded PIDs) and every process of its
/// pods (shims, sandbox holders, containers), three rounds so a process forked meanwhile is
/// caught too.
pub fn signal_node(cluster: &Cluster, node: &Node, signal: i32) {
    for _ in 0..3 {
        for process in cluster
            .processes
            .iter()
            .filter(|p| p.node.as_deref() == Some(node.name.as_str()))
        {
            host::signal_process(process, signal);
        }
        for pid in runtime::reclaim::processes_of(&node.root_dir, &node.cgroup_root) {
            // SAFETY: kill(2) has no memory-safety preconditions; the PID was found among the
            // node's processes just now.
            unsafe {
                libc::kill(pid, signal);
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}
