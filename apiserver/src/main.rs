//! `kube-apiserver`: thin entry point.

use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    component_base::init_logging();
    let options = apiserver::Options::parse();
    let cancel = component_base::shutdown_token();
    apiserver::run(options, cancel).await
}
