//! `kaji down`: stops the cluster's processes, reclaims each node (its containers, mounts and
//! cgroups), deletes the namespaces, links and route it made, takes its context out of the
//! kubeconfig and forgets it.

use std::time::Duration;

use anyhow::Result;

use crate::host;
use crate::state::{self, Cluster};

pub fn down(name: &str) -> Result<()> {
    let cluster = Cluster::load(name)?;
    // Frozen nodes resume first, so their processes can stop cleanly.
    for node in cluster.nodes.iter().filter(|n| n.state.stopped) {
        crate::node::signal_node(&cluster, node, libc::SIGCONT);
    }
    // Nodes first (their kubelets would recreate pods), then the control plane.
    for process in cluster.processes.iter().rev() {
        host::stop(process, Duration::from_secs(5));
    }
    for (index, node) in cluster.nodes.iter().enumerate() {
        runtime::reclaim::reclaim_node(&node.root_dir, &node.cgroup_root);
        // The host end of the node's veth pair goes now, with its peer: a deleted namespace
        // only takes its links along once the kernel's deferred clean-up of it has run, after
        // the last reference to it is gone, which can be after `kaji down` returned.
        let _ = host::ip(&["link", "delete", &cluster.node_link(index)]);
        let _ = host::ip(&["netns", "delete", &node.netns]);
    }
    let node0 = cluster.nodes.first().map(|n| n.ip.clone()).unwrap_or_default();
    let _ = host::ip(&["route", "del", &cluster.pod_cidr, "via", &node0]);
    let _ = host::ip(&["link", "delete", &cluster.bridge]);
    let dir = state::cluster_dir(name)?;
    if let Ok(target) = std::fs::read_to_string(dir.join("kubeconfig-path"))
        && let Err(error) = crate::kubeconfig::remove(std::path::Path::new(target.trim()), name)
    {
        eprintln!("warning: removing context kaji-{name}: {error:#}");
    }
    std::fs::remove_dir_all(&dir)?;
    println!("Deleted cluster kaji-{name}");
    Ok(())
}
