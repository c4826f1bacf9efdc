//! What a cluster is made of, recorded in `$KAJI_HOME/clusters/NAME/cluster.json` so that
//! `kaji down` (and `status`) can find every process, namespace and link.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

/// One cluster.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Cluster {
    pub name: String,
    /// Picks the subnets: `10.250.INDEX.0/24` for the nodes, `10.(244-INDEX).0.0/16` for pods.
    pub index: u8,
    pub bridge: String,
    /// `10.250.INDEX`: the bridge is `.1`, node `i` is `.(10+i)`.
    pub subnet: String,
    pub pod_cidr: String,
    pub nodes: Vec<Node>,
    pub processes: Vec<Process>,
}

/// One node: a network namespace with a kubelet and a kube-proxy.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Node {
    pub name: String,
    pub netns: String,
    pub ip: String,
    pub root_dir: PathBuf,
    pub cgroup_root: String,
    /// What `kaji node` did to it.
    #[serde(default)]
    pub state: NodeState,
}

/// Faults injected with `kaji node`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeState {
    /// Frozen (`kaji node stop`).
    pub stopped: bool,
    /// Its link to the bridge is down (`kaji node partition`).
    pub partitioned: bool,
}

impl NodeState {
    /// `running`, `stopped`, `partitioned` or both.
    pub fn describe(self) -> &'static str {
        match (self.stopped, self.partitioned) {
            (false, false) => "running",
            (true, false) => "stopped",
            (false, true) => "partitioned",
            (true, true) => "stopped and partitioned",
        }
    }
}

/// A process `kaji up` started.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Process {
    pub component: String,
    pub pid: i32,
    /// The executable, to tell our process from a later one that reuses the PID.
    pub binary: PathBuf,
    /// The node it serves (kubelet, kube-proxy); `None` for the control plane.
    #[serde(default)]
    pub node: Option<String>,
    /// How it was started, so `kaji up` on an existing cluster can start it again.
    #[serde(default)]
    pub args: Vec<String>,
    #[serde(default)]
    pub netns: Option<String>,
    #[serde(default)]
    pub log: PathBuf,
}

/// `$KAJI_HOME` or `~/.kaji`.
pub fn home() -> Result<PathBuf> {
    if let Some(home) = std::env::var_os("KAJI_HOME") {
        return Ok(PathBuf::from(home));
    }
    let user_home = std::env::var_os("HOME").context("neither KAJI_HOME nor HOME is set")?;
    Ok(PathBuf::from(user_home).join(".kaji"))
}

/// The directory of cluster `name`.
pub fn cluster_dir(name: &str) -> Result<PathBuf> {
    Ok(home()?.join("clusters").join(name))
}

/// Names of the recorded clusters.
pub fn cluster_names() -> Result<Vec<String>> {
    let dir = home()?.join("clusters");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.path().join("cluster.json").is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    Ok(names)
}

/// Cluster names become parts of link, namespace and node names.
pub fn validate_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 20
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.starts_with('-')
        && !name.ends_with('-');
    if !ok {
        bail!("invalid cluster name {name:?}: use 1-20 lowercase letters, digits and '-'");
    }
    Ok(())
}

impl Cluster {
    pub fn load(name: &str) -> Result<Cluster> {
        let path = cluster_dir(name)?.join("cluster.json");
        let text = std::fs::read_to_string(&path).with_context(|| format!("no cluster named {name:?}"))?;
        serde_json::from_str(&text).with_context(|| format!("reading {}", path.display()))
    }

    /// Writes the record (atomically: temp file, then rename).
    pub fn save(&self) -> Result<()> {
        let dir = cluster_dir(&self.name)?;
        std::fs::create_dir_all(&dir)?;
        let tmp = dir.join("cluster.json.tmp");
        std::fs::write(&tmp, serde_json::to_vec_pretty(self)?)?;
        std::fs::rename(&tmp, dir.join("cluster.json"))?;
        Ok(())
    }

    /// The host side of node `index`'s veth pair, on the bridge.
    pub fn node_link(&self, index: usize) -> String {
        format!("{}-{index}", self.bridge)
    }

    /// The first index no recorded cluster uses.
    pub fn free_index() -> Result<u8> {
        let used: Vec<u8> = cluster_names()?
            .iter()
            .filter_map(|name| Cluster::load(name).ok())
            .map(|c| c.index)
            .collect();
        (0..100u8)
            .find(|i| !used.contains(i))
            .context("100 clusters exist already")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_names_fit_in_link_names() {
        assert!(validate_name("dev-1").is_ok());
        for bad in ["", "Dev", "a_b", "-a", "a-", "averyveryverylongclustername"] {
            assert!(validate_name(bad).is_err(), "{bad}");
        }
    }
}
