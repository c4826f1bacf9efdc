//! `kube-controller-manager`: thin entry point.

use anyhow::Context as _;
use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let options = controller_manager::Options::parse();
    component_base::init_logging();
    controller_manager::selected_controllers(&options)?;
    let token = component_base::shutdown_token();
    let client = controller_manager::client(&options)
        .await
        .context("connecting to the apiserver")?;
    controller_manager::run(options, client, token).await?;
    Ok(())
}
