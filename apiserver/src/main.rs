//! `kube-apiserver`: thin entry point.

use clap::Parser;

// The apiserver allocates and frees many small JSON values per request; glibc's allocator
// showed up as 25-50 % of CPU samples in the throughput benchmark.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    component_base::init_logging();
    let options = apiserver::Options::parse();
    let cancel = component_base::shutdown_token();
    apiserver::run(options, cancel).await
}
