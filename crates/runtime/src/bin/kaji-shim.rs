//! Stand-alone runtime shim, for tests and benchmarks: `kaji-shim container|pause DIR`.
//! The kubelet embeds the same entry point as `kubelet runtime-shim ...`.

fn main() {
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    std::process::exit(runtime::shim_main(args));
}
