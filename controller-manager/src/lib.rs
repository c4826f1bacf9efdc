//! kube-controller-manager: the controllers that reconcile desired state.
//!
//! Each controller lives in `controllers/<name>/`: a pure `decide` step (the object plus the
//! relevant cache contents in, a plan of actions out; table-tested) and a thin step that
//! applies the plan through the API. Controllers share one watch per resource type
//! (`informer`), queue object keys in a client-go-like work queue (`queue`) and are
//! level-triggered: every sync starts from the caches, never from the event that caused it.

pub mod clock;
pub mod context;
pub mod controllers;
pub mod discovery;
pub mod error;
pub mod informer;
pub mod options;
pub mod queue;
pub mod util;

use component_base::leader_election::{LeaderElector, LeaseConfig};
use tokio_util::sync::CancellationToken;

pub use error::{Error, Result};
pub use options::Options;

/// Builds a client from `--kubeconfig` (or the default configuration without it).
pub async fn client(options: &Options) -> Result<kube::Client> {
    let config = match &options.kubeconfig {
        Some(path) => {
            let kubeconfig = kube::config::Kubeconfig::read_from(path).map_err(|error| Error::Kubeconfig {
                path: path.display().to_string(),
                message: error.to_string(),
            })?;
            kube::Config::from_custom_kubeconfig(kubeconfig, &kube::config::KubeConfigOptions::default())
                .await
                .map_err(|error| Error::Kubeconfig {
                    path: path.display().to_string(),
                    message: error.to_string(),
                })?
        }
        None => kube::Config::infer().await.map_err(|error| Error::Kubeconfig {
            path: "(default)".into(),
            message: error.to_string(),
        })?,
    };
    let mut config = config;
    component_base::set_user_agent(&mut config, "kube-controller-manager");
    kube::Client::try_from(config).map_err(Error::Client)
}

/// The controllers `--controllers` selects, or why the flag is invalid.
pub fn selected_controllers(options: &Options) -> Result<Vec<&'static str>> {
    options::select_controllers(
        &options.controllers,
        &controllers::names(),
        &controllers::disabled_by_default(),
    )
}

/// This replica's leader-election identity: `hostname_random`, as upstream.
pub fn identity() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_else(|_| "localhost".to_string());
    format!("{}_{:016x}", host.trim(), rand::random::<u64>())
}

/// Runs the controllers selected by `--controllers` until `token` is cancelled; with
/// `--leader-elect`, only while this replica holds the `kube-controller-manager` Lease.
pub async fn run(options: Options, client: kube::Client, token: CancellationToken) -> Result<()> {
    run_with_clock(options, client, token, clock::Clock::default()).await
}

/// Like `run`, with the controllers reading `clock` (tests shift it to reach schedules).
pub async fn run_with_clock(
    options: Options,
    client: kube::Client,
    token: CancellationToken,
    clock: clock::Clock,
) -> Result<()> {
    let selected = selected_controllers(&options)?;
    if !options.leader_elect {
        return run_controllers(&selected, options, client, token, clock).await;
    }
    let lease = LeaseConfig {
        namespace: options.leader_elect_resource_namespace.clone(),
        name: options.leader_elect_resource_name.clone(),
        identity: identity(),
        lease_duration: options.leader_elect_lease_duration,
        renew_deadline: options.leader_elect_renew_deadline,
        retry_period: options.leader_elect_retry_period,
    };
    LeaderElector::new(client.clone(), lease)
        .run(token, move |leading| async move {
            if let Err(error) = run_controllers(&selected, options, client, leading, clock).await {
                tracing::error!(%error, "controllers stopped");
            }
        })
        .await?;
    Ok(())
}

async fn run_controllers(
    selected: &[&str],
    options: Options,
    client: kube::Client,
    token: CancellationToken,
    clock: clock::Clock,
) -> Result<()> {
    let ctx = context::Context::with_clock(client, options, token.clone(), clock);
    let mut tasks = tokio::task::JoinSet::new();
    for descriptor in controllers::REGISTRY
        .iter()
        .filter(|descriptor| selected.contains(&descriptor.name))
    {
        tracing::info!(controller = descriptor.name, "starting controller");
        let name = descriptor.name;
        let future = (descriptor.run)(ctx.clone());
        tasks.spawn(async move { (name, future.await) });
    }
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok((name, Err(error))) => {
                token.cancel();
                tasks.shutdown().await;
                tracing::error!(controller = name, %error, "controller failed");
                return Err(error);
            }
            Ok((name, Ok(()))) => tracing::info!(controller = name, "controller stopped"),
            Err(error) => tracing::error!(%error, "controller task panicked"),
        }
    }
    Ok(())
}
