//! kube-scheduler: assigns pods to nodes.
//!
//! Informers ([`informers`]) feed a [`cache::Cache`] of nodes and bound or assumed pods and a
//! [`queue::SchedulingQueue`] of pending pods. [`scheduler::Scheduler`] pops one pod at a time,
//! runs the plugins of the [`framework`] ([`plugins`]) against an immutable snapshot, assumes
//! the pod on the chosen node and binds it in the background; failures become FailedScheduling
//! events and a PodScheduled=False condition. With leader election on, only the replica holding
//! the Lease schedules.

pub mod cache;
pub mod events;
pub mod framework;
mod informers;
pub mod metrics;
pub mod options;
pub mod plugins;
pub mod queue;
pub mod resources;
pub mod scheduler;

use std::time::Duration;

use component_base::leader_election::{LeaderElectionError, LeaderElector, LeaseConfig};
use tokio_util::sync::CancellationToken;

pub use options::Options;
pub use scheduler::{Scheduler, SchedulerConfig};

/// Why the scheduler stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum SchedulerError {
    #[error("reading kubeconfig {path}: {source}")]
    Kubeconfig {
        path: String,
        source: kube::config::KubeconfigError,
    },
    #[error("loading client configuration: {0}")]
    InferConfig(#[from] kube::config::InferConfigError),
    #[error("creating the API client: {0}")]
    Client(#[from] kube::Error),
    #[error(transparent)]
    LeaderElection(#[from] LeaderElectionError),
    #[error("stopped before the caches synced")]
    Stopped,
}

/// A client from `--kubeconfig`, or inferred (in-cluster, `$KUBECONFIG`, `~/.kube/config`).
pub async fn client(options: &Options) -> Result<kube::Client, SchedulerError> {
    let config = match &options.kubeconfig {
        Some(path) => {
            let kubeconfig =
                kube::config::Kubeconfig::read_from(path).map_err(|source| SchedulerError::Kubeconfig {
                    path: path.display().to_string(),
                    source,
                })?;
            kube::Config::from_custom_kubeconfig(kubeconfig, &kube::config::KubeConfigOptions::default())
                .await
                .map_err(|source| SchedulerError::Kubeconfig {
                    path: path.display().to_string(),
                    source,
                })?
        }
        None => kube::Config::infer().await?,
    };
    let mut config = config;
    component_base::set_user_agent(&mut config, "kube-scheduler");
    Ok(kube::Client::try_from(config)?)
}

/// This replica's leader-election identity: `hostname_random`, as upstream.
pub fn identity() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_else(|_| "localhost".to_string());
    format!("{}_{:016x}", host.trim(), rand::random::<u64>())
}

/// Runs the scheduler until `shutdown` (or until leadership is lost, an error).
pub async fn run(options: Options, shutdown: CancellationToken) -> Result<(), SchedulerError> {
    let client = client(&options).await?;
    let identity = identity();
    let config = SchedulerConfig {
        instance: identity.clone(),
        ..SchedulerConfig::default()
    };
    if !options.leader_elect {
        return Scheduler::new(client, config).run(shutdown).await;
    }
    let lease = LeaseConfig {
        namespace: options.leader_elect_resource_namespace.clone(),
        name: options.leader_elect_resource_name.clone(),
        identity,
        lease_duration: options.leader_elect_lease_duration,
        renew_deadline: options.leader_elect_renew_deadline,
        retry_period: options.leader_elect_retry_period,
    };
    let elector = LeaderElector::new(client.clone(), lease);
    elector
        .run(shutdown, move |leading| async move {
            if let Err(error) = Scheduler::new(client, config).run(leading).await {
                tracing::error!(%error, "scheduler stopped");
            }
        })
        .await?;
    // Give in-flight bindings a moment to finish after shutdown.
    tokio::time::sleep(Duration::from_millis(100)).await;
    Ok(())
}
