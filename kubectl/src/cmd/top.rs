//! `kubectl top node|pod`: resource usage from the Metrics API (`metrics.k8s.io`). kaji's
//! cluster serves no Metrics API, so this reports what upstream reports then.

use crate::cmd::Context;
use crate::error::Error;

/// Display resource (CPU/memory) usage.
#[derive(clap::Args, Debug, Clone)]
pub struct TopArgs {
    #[command(subcommand)]
    pub command: TopCommand,
}

#[derive(clap::Subcommand, Debug, Clone)]
pub enum TopCommand {
    /// Display resource (CPU/memory) usage of nodes.
    #[command(alias = "nodes", alias = "no")]
    Node(TopFlags),
    /// Display resource (CPU/memory) usage of pods.
    #[command(alias = "pods", alias = "po")]
    Pod(TopFlags),
}

/// The flags `top node` and `top pod` take.
#[derive(clap::Args, Debug, Clone)]
pub struct TopFlags {
    /// NAME
    pub name: Option<String>,
    /// Label query; matching objects must satisfy all of the specified label constraints.
    #[arg(short = 'l', long)]
    pub selector: Option<String>,
    /// Field query (pods); the server supports a limited number of field queries per type.
    #[arg(long)]
    pub field_selector: Option<String>,
    /// Pods in every namespace; the namespace in the current context is ignored.
    #[arg(short = 'A', long)]
    pub all_namespaces: bool,
    /// Print usage of containers within pods.
    #[arg(long)]
    pub containers: bool,
    /// If present, print output without headers.
    #[arg(long)]
    pub no_headers: bool,
    /// Sort by cpu or memory.
    #[arg(long)]
    pub sort_by: Option<String>,
    /// Print node resources based on Capacity instead of Allocatable.
    #[arg(long)]
    pub show_capacity: bool,
    /// Print the sum of the resource usage.
    #[arg(long)]
    pub sum: bool,
    /// Enables using protocol-buffers to access Metrics API.
    #[arg(long, default_value_t = true, num_args = 0..=1, default_missing_value = "true", action = clap::ArgAction::Set)]
    pub use_protocol_buffers: bool,
}

/// Runs `kubectl top node|pod`: the Metrics API must be served.
pub async fn run(ctx: &mut Context, _args: &TopArgs) -> Result<(), Error> {
    let discovery = ctx.discovery().await?;
    let served = discovery.resources().iter().any(|r| r.group == "metrics.k8s.io");
    if !served {
        return Err(Error::Message("Metrics API not available".into()));
    }
    Err(Error::Message(
        "this kubectl does not read the Metrics API yet; use upstream kubectl for top".into(),
    ))
}
