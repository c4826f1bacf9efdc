//! `kubelet`: thin entry point. `kubelet runtime-shim ...` is the container shim (see the
//! `runtime` crate): it must run before any thread exists, so it is dispatched first.

use clap::Parser;

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args_os();
    if args.nth(1).as_deref() == Some(std::ffi::OsStr::new(kubelet::run::SHIM_ARG)) {
        std::process::exit(runtime::shim_main(args.collect()));
    }
    let options = kubelet::Options::parse();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(async {
            component_base::init_logging();
            let cancel = component_base::shutdown_token();
            kubelet::run::run(options, cancel).await
        })
}
