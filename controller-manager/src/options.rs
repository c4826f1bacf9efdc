//! Command-line flags, named like upstream kube-controller-manager's.

use std::path::PathBuf;
use std::time::Duration;

use crate::error::{Error, Result};

/// kube-controller-manager's flags.
#[derive(Debug, Clone, clap::Parser)]
#[command(
    name = "kube-controller-manager",
    about = "Runs the kaji controllers that reconcile desired state"
)]
pub struct Options {
    /// Path to a kubeconfig file; without it, the in-cluster or default configuration.
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
    /// Controllers to enable: `*` enables every default controller, `foo` enables foo, `-foo`
    /// disables foo.
    #[arg(long, value_delimiter = ',', default_value = "*")]
    pub controllers: Vec<String>,
    /// Elect a leader before running the controllers.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub leader_elect: bool,
    /// How long non-leaders wait after the last observed renewal before taking over.
    #[arg(long, default_value = "15s", value_parser = parse_duration)]
    pub leader_elect_lease_duration: Duration,
    /// How long the leader keeps trying to renew before it steps down.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub leader_elect_renew_deadline: Duration,
    /// How often candidates try to acquire and the leader renews.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub leader_elect_retry_period: Duration,
    /// The name of the Lease used for leader election.
    #[arg(long, default_value = "kube-controller-manager")]
    pub leader_elect_resource_name: String,
    /// The namespace of the Lease used for leader election.
    #[arg(long, default_value = "kube-system")]
    pub leader_elect_resource_namespace: String,
    /// CIDR range for pods in the cluster.
    #[arg(long, default_value = "10.244.0.0/16")]
    pub cluster_cidr: String,
    /// Mask size of each node's pod CIDR.
    #[arg(long, default_value_t = 24)]
    pub node_cidr_mask_size: u8,
    /// Allocate and set pod CIDRs on nodes.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub allocate_node_cidrs: bool,
    /// How long a node may go without renewing its Lease before it is marked unhealthy.
    #[arg(long, default_value = "40s", value_parser = parse_duration)]
    pub node_monitor_grace_period: Duration,
    /// How often the node lifecycle controller checks node health.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub node_monitor_period: Duration,
    /// Number of replica sets synced concurrently.
    #[arg(long, default_value_t = 5)]
    pub concurrent_replicaset_syncs: usize,
    /// Number of deployments synced concurrently.
    #[arg(long, default_value_t = 5)]
    pub concurrent_deployment_syncs: usize,
    /// Number of services whose endpoint slices are synced concurrently.
    #[arg(long, default_value_t = 5)]
    pub concurrent_service_endpoint_syncs: usize,
    /// Number of services whose Endpoints are synced concurrently.
    #[arg(long, default_value_t = 5)]
    pub concurrent_endpoint_syncs: usize,
    /// Number of namespaces deleted concurrently.
    #[arg(long, default_value_t = 10)]
    pub concurrent_namespace_syncs: usize,
    /// Number of garbage collector workers.
    #[arg(long, default_value_t = 20)]
    pub concurrent_gc_syncs: usize,
    /// Number of service accounts synced concurrently.
    #[arg(long, default_value_t = 5)]
    pub concurrent_serviceaccount_syncs: usize,
    /// Number of jobs synced concurrently.
    #[arg(long, default_value_t = 5)]
    pub concurrent_job_syncs: usize,
    /// Number of cron jobs synced concurrently.
    #[arg(long, default_value_t = 5)]
    pub concurrent_cron_job_syncs: usize,
    /// Number of resource quotas synced concurrently.
    #[arg(long, default_value_t = 5)]
    pub concurrent_resource_quota_syncs: usize,
    /// How often every quota's usage is recounted from scratch.
    #[arg(long, default_value = "5m0s", value_parser = parse_duration)]
    pub resource_quota_sync_period: Duration,
    /// How often each HorizontalPodAutoscaler is reconciled.
    #[arg(long, default_value = "15s", value_parser = parse_duration)]
    pub horizontal_pod_autoscaler_sync_period: Duration,
    /// The minimum change (from 1.0) of the usage ratio before the autoscaler scales.
    #[arg(long, default_value_t = 0.1)]
    pub horizontal_pod_autoscaler_tolerance: f64,
    /// How far back the autoscaler looks for a higher recommendation before scaling down
    /// (HPAs without a `behavior`, and the default of those with one).
    #[arg(long, default_value = "5m0s", value_parser = parse_duration)]
    pub horizontal_pod_autoscaler_downscale_stabilization: Duration,
    /// After a pod starts, how long CPU samples may be skipped while it is not ready.
    #[arg(long, default_value = "5m0s", value_parser = parse_duration)]
    pub horizontal_pod_autoscaler_cpu_initialization_period: Duration,
    /// After a pod starts, how long a not-ready pod counts as not yet ready.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub horizontal_pod_autoscaler_initial_readiness_delay: Duration,
    /// Number of horizontal pod autoscalers synced concurrently.
    #[arg(long, default_value_t = 5)]
    pub concurrent_horizontal_pod_autoscaler_syncs: usize,
}

/// Go-syntax durations (`30s`, `1m30s`), shared by every component.
pub use component_base::parse_duration;

/// Resolves `--controllers` against the known names (`all`) and those on by default.
pub fn select_controllers<'a>(flag: &[String], all: &[&'a str], disabled_by_default: &[&str]) -> Result<Vec<&'a str>> {
    let mut star = false;
    let mut enabled = Vec::new();
    let mut disabled = Vec::new();
    for item in flag.iter().map(|item| item.trim()).filter(|item| !item.is_empty()) {
        if item == "*" {
            star = true;
            continue;
        }
        let (negated, name) = match item.strip_prefix('-') {
            Some(name) => (true, name),
            None => (false, item),
        };
        if !all.contains(&name) {
            return Err(Error::Flag {
                flag: "controllers",
                message: format!("{name:?} is not in the list of known controllers: {}", all.join(", ")),
            });
        }
        if negated {
            disabled.push(name);
        } else {
            enabled.push(name);
        }
    }
    Ok(all
        .iter()
        .copied()
        .filter(|name| {
            if disabled.contains(name) {
                return false;
            }
            enabled.contains(name) || (star && !disabled_by_default.contains(name))
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[test]
    fn durations_parse_like_go() {
        assert_eq!(parse_duration("40s").unwrap(), Duration::from_secs(40));
        assert_eq!(parse_duration("1m30s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("0").unwrap(), Duration::ZERO);
        assert!(parse_duration("40").is_err());
        assert!(parse_duration("s").is_err());
        assert!(parse_duration("3y").is_err());
    }

    #[test]
    fn controllers_flag_selects_like_upstream() {
        let all = ["a", "b", "c"];
        let select = |flag: &str| {
            let items: Vec<String> = flag.split(',').map(str::to_string).collect();
            select_controllers(&items, &all, &["c"])
        };
        assert_eq!(select("*").unwrap(), vec!["a", "b"]);
        assert_eq!(select("*,-a").unwrap(), vec!["b"]);
        assert_eq!(select("*,c").unwrap(), vec!["a", "b", "c"]);
        assert_eq!(select("b").unwrap(), vec!["b"]);
        assert!(select("*,-nope").is_err());
    }

    #[test]
    fn autoscaler_flags_have_upstream_defaults() {
        let options = Options::try_parse_from(["kube-controller-manager"]).unwrap();
        assert_eq!(options.horizontal_pod_autoscaler_sync_period, Duration::from_secs(15));
        assert_eq!(options.horizontal_pod_autoscaler_tolerance, 0.1);
        assert_eq!(
            options.horizontal_pod_autoscaler_downscale_stabilization,
            Duration::from_secs(300)
        );
        assert_eq!(
            options.horizontal_pod_autoscaler_cpu_initialization_period,
            Duration::from_secs(300)
        );
        assert_eq!(
            options.horizontal_pod_autoscaler_initial_readiness_delay,
            Duration::from_secs(30)
        );
    }

    #[test]
    fn flags_have_upstream_defaults() {
        let options = Options::try_parse_from(["kube-controller-manager"]).unwrap();
        assert!(options.leader_elect);
        assert_eq!(options.cluster_cidr, "10.244.0.0/16");
        assert_eq!(options.node_cidr_mask_size, 24);
        assert_eq!(options.node_monitor_grace_period, Duration::from_secs(40));
        assert_eq!(options.concurrent_job_syncs, 5);
        assert_eq!(options.concurrent_cron_job_syncs, 5);
        let options = Options::try_parse_from([
            "kube-controller-manager",
            "--leader-elect=false",
            "--controllers=*,-job",
        ])
        .unwrap();
        assert!(!options.leader_elect);
        assert_eq!(options.controllers, vec!["*", "-job"]);
    }
}
