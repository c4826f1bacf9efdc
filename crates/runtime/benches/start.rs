//! Container create+start+wait+delete of `/bin/true` on a busybox rootfs: kaji vs `crun run`
//! and `runc run` on the same rootfs, interleaved rounds, as in perf-anchors section 2.1.
//! Runs as root inside a private mount namespace with `/sys/fs/cgroup/unified` unmounted
//! (crun refuses the hybrid layout otherwise); the bench re-executes itself under `unshare`.
//! kaji's containers join a sandbox created once (as a pod's containers do), while the peers
//! create all namespaces per run.

#[path = "../tests/common/mod.rs"]
mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use runtime::ContainerState;

const ROUNDS: usize = 10;
// Set KAJI_BENCH_ROUNDS to shorten a run, KAJI_BENCH_PHASES=1 to print kaji's phases.
const RUNS_PER_ROUND: usize = 10;

fn main() {
    if std::env::var_os("KAJI_BENCH_INNER").is_none() {
        let exe = std::env::current_exe().expect("current exe");
        let status = Command::new("unshare")
            .args(["-m", "--propagation", "private", "--", "sh", "-c"])
            .arg("umount /sys/fs/cgroup/unified 2>/dev/null; exec \"$0\" \"$@\"")
            .arg(exe)
            .args(std::env::args_os().skip(1))
            .env("KAJI_BENCH_INNER", "1")
            .status()
            .expect("unshare");
        std::process::exit(status.code().unwrap_or(1));
    }
    let f = common::Fixture::new();
    let sandbox = f.sandbox("bench", false);
    let bundle = f.dir.path().join("bundle");
    make_bundle(&bundle, &f.rootfs());

    let mut tools: Vec<(&str, Vec<Duration>)> = vec![("kaji", vec![]), ("crun", vec![]), ("runc", vec![])];
    let available = |tool: &str| {
        Command::new(tool)
            .arg("--version")
            .stdout(Stdio::null())
            .status()
            .is_ok()
    };
    tools.retain(|(name, _)| *name == "kaji" || available(name));
    let mut n = 0;
    let rounds = std::env::var("KAJI_BENCH_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(ROUNDS);
    for round in 0..rounds {
        let count = tools.len();
        for i in 0..count {
            let (name, samples) = &mut tools[(i + round) % count];
            for _ in 0..RUNS_PER_ROUND {
                n += 1;
                let start = Instant::now();
                match *name {
                    "kaji" => run_kaji(&f, &sandbox),
                    tool => run_peer(tool, &bundle, n),
                }
                samples.push(start.elapsed());
            }
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    println!(
        "container create+start+wait+delete of /bin/true, {} runs each (ms)",
        rounds * RUNS_PER_ROUND
    );
    println!("{:<6} {:>8} {:>8} {:>8} {:>8}", "tool", "min", "median", "p90", "p99");
    for (name, samples) in &mut tools {
        samples.sort();
        let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize].as_secs_f64() * 1000.0;
        println!(
            "{name:<6} {:>8.2} {:>8.2} {:>8.2} {:>8.2}",
            at(0.0),
            at(0.5),
            at(0.9),
            at(0.99)
        );
    }
}

fn run_kaji(f: &common::Fixture, sandbox: &str) {
    let mut spec = f.container(sandbox, &["/bin/true"]);
    spec.read_only_rootfs = true;
    let t0 = Instant::now();
    f.runtime.start_container(&spec).expect("start");
    let t1 = t0.elapsed();
    loop {
        match f.runtime.container_state(&spec.id).expect("state") {
            ContainerState::Exited { exit_code: 0, .. } => break,
            ContainerState::Exited { exit_code, .. } => panic!("exit code {exit_code}"),
            _ => std::thread::sleep(Duration::from_micros(200)),
        }
    }
    let t2 = t0.elapsed();
    f.runtime.remove_container(&spec.id).expect("remove");
    if std::env::var_os("KAJI_BENCH_PHASES").is_some() {
        eprintln!("start {t1:?} exited {t2:?} removed {:?}", t0.elapsed());
    }
}

fn run_peer(tool: &str, bundle: &Path, n: usize) {
    let status = Command::new(tool)
        .args(["run", "--bundle"])
        .arg(bundle)
        .arg(format!("bench-{tool}-{}-{n}", std::process::id()))
        .stdin(Stdio::null())
        .status()
        .expect("run peer");
    assert!(status.success(), "{tool} failed: {status}");
}

/// `runc spec` with `/bin/true`, no terminal and a read-only root.
fn make_bundle(bundle: &Path, rootfs: &Path) {
    std::fs::create_dir_all(bundle).expect("bundle dir");
    let status = Command::new("runc")
        .args(["spec", "-b"])
        .arg(bundle)
        .status()
        .expect("runc spec");
    assert!(status.success());
    let path = bundle.join("config.json");
    let mut config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).expect("read spec")).expect("parse spec");
    config["process"]["terminal"] = false.into();
    config["process"]["args"] = serde_json::json!(["/bin/true"]);
    config["root"]["path"] = rootfs.to_string_lossy().into_owned().into();
    config["root"]["readonly"] = true.into();
    std::fs::write(&path, serde_json::to_vec_pretty(&config).expect("encode")).expect("write spec");
}
