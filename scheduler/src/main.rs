//! `kube-scheduler`: thin entry point.

use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    component_base::init_logging();
    let options = scheduler::Options::parse();
    let shutdown = component_base::shutdown_token();
    scheduler::run(options, shutdown).await?;
    Ok(())
}
