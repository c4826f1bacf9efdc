//! Command-line flags, named as upstream's kube-scheduler flags.

use std::path::PathBuf;
use std::time::Duration;

use clap::{ArgAction, Parser};

/// kube-scheduler's flags.
#[derive(Clone, Debug, Parser)]
#[command(name = "kube-scheduler", about = "Assigns pods to nodes")]
pub struct Options {
    /// Path to a kubeconfig file; without it, in-cluster config or $KUBECONFIG.
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
    /// Run leader election before scheduling (`--leader-elect=false` to disable).
    #[arg(long, action = ArgAction::Set, default_value_t = true, num_args = 0..=1, default_missing_value = "true")]
    pub leader_elect: bool,
    /// How long non-leaders wait after the last observed renewal before taking over.
    #[arg(long, default_value = "15s", value_parser = parse_duration)]
    pub leader_elect_lease_duration: Duration,
    /// How long the leader keeps trying to renew before it steps down.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub leader_elect_renew_deadline: Duration,
    /// How long clients wait between acquire and renew attempts.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub leader_elect_retry_period: Duration,
    /// The name of the Lease used for leader election.
    #[arg(long, default_value = "kube-scheduler")]
    pub leader_elect_resource_name: String,
    /// The namespace of the Lease used for leader election.
    #[arg(long, default_value = "kube-system")]
    pub leader_elect_resource_namespace: String,
}

/// Go-syntax durations (`30s`, `1m30s`), shared by every component.
pub use component_base::parse_duration;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("15s"), Ok(Duration::from_secs(15)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert!(parse_duration("15").is_err());
        assert!(parse_duration("abc").is_err());
    }

    #[test]
    fn flags_like_upstream() {
        let defaults = Options::parse_from(["kube-scheduler"]);
        assert!(defaults.leader_elect);
        assert_eq!(defaults.leader_elect_resource_name, "kube-scheduler");
        assert_eq!(defaults.leader_elect_resource_namespace, "kube-system");
        assert_eq!(defaults.leader_elect_lease_duration, Duration::from_secs(15));
        let off = Options::parse_from([
            "kube-scheduler",
            "--leader-elect=false",
            "--kubeconfig",
            "/tmp/k",
            "--leader-elect-retry-period=1s",
        ]);
        assert!(!off.leader_elect);
        assert_eq!(off.kubeconfig, Some(PathBuf::from("/tmp/k")));
        assert_eq!(off.leader_elect_retry_period, Duration::from_secs(1));
        assert!(Options::parse_from(["kube-scheduler", "--leader-elect"]).leader_elect);
    }
}
