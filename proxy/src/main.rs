//! `kube-proxy`: thin entry point.

use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    component_base::init_logging();
    let options = proxy::Options::parse();
    let shutdown = component_base::shutdown_token();
    proxy::run(options, shutdown).await?;
    Ok(())
}
