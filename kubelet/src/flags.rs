//! The kubelet's command line: upstream's flag names (the contract in issue 4).

use std::net::IpAddr;
use std::path::PathBuf;

use clap::Parser;

/// `kubelet --kubeconfig FILE --node-name N --root-dir DIR ...`
#[derive(Debug, Clone, Parser)]
#[command(name = "kubelet", version, about = "kaji's node agent with a built-in OCI runtime")]
pub struct Options {
    /// Kubeconfig with the credentials the kubelet uses to reach the apiserver.
    #[arg(long)]
    pub kubeconfig: PathBuf,

    /// The name of this node (default: the host name).
    #[arg(long)]
    pub node_name: Option<String>,

    /// Directory for the kubelet's state: images, pods, containers, logs.
    #[arg(long, default_value = "/var/lib/kubelet")]
    pub root_dir: PathBuf,

    /// Directory of static pod manifests, watched for additions, changes and removals.
    #[arg(long)]
    pub pod_manifest_path: Option<PathBuf>,

    /// A registry (HOST:PORT) pulled from over plain HTTP. Repeatable.
    #[arg(long = "insecure-registry", value_name = "HOST:PORT")]
    pub insecure_registries: Vec<String>,

    /// Pull images of registry FROM from registry TO instead (FROM=TO). Repeatable.
    #[arg(long = "registry-mirror", value_name = "FROM=TO", value_parser = parse_mirror)]
    pub registry_mirrors: Vec<(String, String)>,

    /// The address the kubelet's HTTPS server listens on.
    #[arg(long, default_value = "0.0.0.0")]
    pub address: IpAddr,

    /// The port of the kubelet's HTTPS server (logs, health).
    #[arg(long, default_value_t = 10250)]
    pub port: u16,

    /// The node's InternalIP (default: --address when it is not 0.0.0.0, else the first
    /// non-loopback IPv4 address of the network namespace).
    #[arg(long)]
    pub node_ip: Option<IpAddr>,

    /// Resources reserved for Kubernetes components, e.g. `cpu=100m,memory=256Mi`.
    #[arg(long, default_value = "")]
    pub kube_reserved: String,

    /// Resources reserved for the operating system, e.g. `cpu=100m,memory=256Mi`.
    #[arg(long, default_value = "")]
    pub system_reserved: String,

    /// The most pods this node runs.
    #[arg(long, default_value_t = 110)]
    pub max_pods: i64,

    /// Labels to add when registering the node (`k=v,k2=v2`).
    #[arg(long, default_value = "")]
    pub node_labels: String,

    /// Taints to add when registering the node (`key=value:Effect,...`).
    #[arg(long, default_value = "")]
    pub register_with_taints: String,

    /// DNS server IPs written into pods' resolv.conf (comma separated).
    #[arg(long, default_value = "")]
    pub cluster_dns: String,

    /// The cluster's DNS domain.
    #[arg(long, default_value = "cluster.local")]
    pub cluster_domain: String,

    /// CA bundle that signs the client certificates allowed to use the kubelet's HTTPS server
    /// (default: the CA in the kubeconfig, which signs the apiserver's client certificate).
    #[arg(long)]
    pub client_ca_file: Option<PathBuf>,

    /// Size at which a container's log file is rotated (e.g. 10Mi).
    #[arg(long, default_value = "10Mi")]
    pub container_log_max_size: String,

    /// How many log files (current included) are kept per container.
    #[arg(long, default_value_t = 5)]
    pub container_log_max_files: u32,

    /// Cgroup under which the pods' cgroups are made (`<cgroup-root>/kubepods/pod<uid>`).
    /// Several kubelets on one machine need different roots.
    #[arg(long, default_value = "/")]
    pub cgroup_root: String,

    /// Disk usage (percent) of the image filesystem above which unused images are removed.
    #[arg(long, default_value_t = 85)]
    pub image_gc_high_threshold: u8,

    /// Disk usage (percent) image garbage collection frees down to.
    #[arg(long, default_value_t = 80)]
    pub image_gc_low_threshold: u8,

    /// How often the node status is posted when nothing changed.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub node_status_update_frequency: std::time::Duration,

    /// The pod network: `bridge` (a bridge, a veth per pod and an address from the node's pod
    /// CIDR; pods wait until the node has one) or `none` (pods get a loopback interface only).
    #[arg(long, default_value = "bridge", value_parser = ["bridge", "none"])]
    pub pod_network: String,

    /// The pod CIDR when the node's `spec.podCIDR` is not set (standalone nodes).
    #[arg(long)]
    pub pod_cidr: Option<String>,

    /// The node's bridge for pod veths.
    #[arg(long, default_value = "kaji0")]
    pub network_bridge: String,

    /// Maximum time a streaming connection (exec, attach, port-forward) can be idle (no data
    /// either way; pings keep it open but do not count) before it is closed; 0 means never.
    #[arg(long, default_value = "4h", value_parser = parse_duration)]
    pub streaming_connection_idle_timeout: std::time::Duration,
}

fn parse_mirror(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((from, to)) if !from.is_empty() && !to.is_empty() => Ok((from.to_string(), to.to_string())),
        _ => Err(format!("expected FROM=TO, got {s:?}")),
    }
}

/// Go-syntax durations (`30s`, `1m30s`), shared by every component.
pub use component_base::parse_duration;

/// Parses `k=v,k2=v2` (empty → empty list).
pub fn parse_pairs(s: &str) -> Result<Vec<(String, String)>, String> {
    s.split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(|item| match item.split_once('=') {
            Some((key, value)) if !key.is_empty() => Ok((key.to_string(), value.to_string())),
            _ => Err(format!("expected key=value, got {item:?}")),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10s").unwrap().as_secs(), 10);
        assert_eq!(parse_duration("500ms").unwrap().as_millis(), 500);
        assert_eq!(parse_duration("2m").unwrap().as_secs(), 120);
        assert!(parse_duration("x").is_err());
        assert!(parse_duration("5d").is_err());
    }

    #[test]
    fn pairs_and_mirrors() {
        assert_eq!(
            parse_pairs("cpu=100m, memory=1Gi").unwrap(),
            vec![("cpu".into(), "100m".into()), ("memory".into(), "1Gi".into())]
        );
        assert!(parse_pairs("cpu").is_err());
        assert!(parse_pairs("").unwrap().is_empty());
        assert_eq!(
            parse_mirror("a:5000=b:5000").unwrap(),
            ("a:5000".into(), "b:5000".into())
        );
        assert!(parse_mirror("a").is_err());
    }
}
