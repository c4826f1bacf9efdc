//! `kube-apiserver`: thin entry point.

use clap::Parser;

// The apiserver allocates and frees many small JSON values per request; glibc's allocator
// showed up as 25-50 % of CPU samples in the throughput benchmark.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    // mimalloc advises its arena for transparent huge pages, so every 2 MiB it touches becomes
    // resident at once: an idle apiserver held 64 MiB of huge pages for ~40 MiB of data. Opting
    // the process out of THP before the runtime and the heap grow keeps it at what it uses.
    // SAFETY: prctl with integer arguments only; failure just leaves THP as it was.
    unsafe {
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
    }
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(async {
            component_base::init_logging();
            let options = apiserver::Options::parse();
            let cancel = component_base::shutdown_token();
            apiserver::run(options, cancel).await
        })
}
