//! Command-line flags, named as upstream's kube-proxy flags.

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

/// kube-proxy's flags.
#[derive(Clone, Debug, Parser)]
#[command(
    name = "kube-proxy",
    about = "Programs iptables or nftables so that Service IPs reach their endpoints"
)]
pub struct Options {
    /// Path to a kubeconfig file; without it, in-cluster config or $KUBECONFIG.
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
    /// The name of this node: endpoints on it are "local" for the Local traffic policies.
    #[arg(long)]
    pub hostname_override: Option<String>,
    /// The CIDR of the cluster's pods; traffic to a ClusterIP from outside it is masqueraded.
    #[arg(long)]
    pub cluster_cidr: Option<String>,
    /// Remove every rule and chain kube-proxy made, then exit.
    #[arg(long)]
    pub cleanup: bool,
    /// Which proxy mode to use: `iptables` or `nftables`.
    #[arg(long, default_value = "iptables")]
    pub proxy_mode: String,
    /// How often rules are resynced even without changes (`30s`, `1m`).
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub iptables_sync_period: Duration,
    /// Minimum time between two syncs; changes in between are batched.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    pub iptables_min_sync_period: Duration,
    /// How often the whole nat and filter tables (nftables mode: every table of ours) are
    /// rewritten to repair drift.
    #[arg(long, default_value = "1h", value_parser = parse_duration)]
    pub iptables_full_sync_period: Duration,
    /// The `iptables-restore` binary.
    #[arg(long, default_value = "iptables-restore")]
    pub iptables_restore_path: String,
    /// The `iptables-save` binary.
    #[arg(long, default_value = "iptables-save")]
    pub iptables_save_path: String,
    /// The ClusterIP of the `kube-system/kube-dns` Service (the kubelets' `--cluster-dns`).
    /// kube-proxy serves cluster DNS on the node's address and publishes it as this node's
    /// endpoint of that Service; empty turns the DNS server off.
    #[arg(long, default_value = "10.96.0.10")]
    pub cluster_dns: String,
    /// The cluster's DNS domain.
    #[arg(long, default_value = "cluster.local")]
    pub cluster_domain: String,
    /// Where the node's upstream resolvers are listed (names outside the cluster domain are
    /// forwarded to them).
    #[arg(long, default_value = "/etc/resolv.conf")]
    pub dns_resolv_conf: PathBuf,
}

/// Go-syntax durations (`30s`, `1m30s`), shared by every component.
pub use component_base::parse_duration;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_contract_flags() {
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert!(parse_duration("5x").is_err());
        let options = Options::try_parse_from([
            "kube-proxy",
            "--kubeconfig",
            "/k",
            "--hostname-override",
            "n1",
            "--cluster-cidr",
            "10.244.0.0/16",
            "--iptables-sync-period",
            "10s",
        ]);
        let options = options.ok();
        assert_eq!(
            options.as_ref().map(|o| o.iptables_sync_period),
            Some(Duration::from_secs(10))
        );
        assert_eq!(options.and_then(|o| o.hostname_override), Some("n1".to_string()));
    }
}
