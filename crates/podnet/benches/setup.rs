//! Pod network setup/teardown latency: podnet against the standard CNI bridge plugin.
//!
//! Everything runs inside a throwaway "node" network namespace. Each iteration creates a pod
//! namespace and connects it (setup), then disconnects it and drops the namespace (teardown).

#[path = "../tests/support/mod.rs"]
mod support;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use podnet::{NetworkConfig, NodeNetwork};
use support::Netns;

const N: usize = 200;
const WARMUP: usize = 10;
const CNI_BRIDGE: &str = "/usr/lib/cni/bridge";
const CNI_HOST_LOCAL: &str = "/usr/lib/cni/host-local";

fn main() {
    let node = Netns::new().expect("node namespace (run as root)");
    let state = tempfile::tempdir().expect("tempdir");
    let ours = node.block_on(|| async {
        let net = NodeNetwork::new(NetworkConfig {
            bridge: "kaji0".to_string(),
            pod_cidr: "10.244.1.0/24".parse().expect("cidr"),
            state_dir: state.path().join("podnet"),
            mtu: None,
        })
        .await
        .expect("node network");
        let mut netns = Vec::new();
        let mut setup = Vec::new();
        let mut teardown = Vec::new();
        for i in 0..WARMUP + N {
            let id = format!("bench-{i}");
            let start = Instant::now();
            let pod = Netns::new().expect("pod namespace");
            let created = Instant::now();
            net.setup_pod(&id, pod.path()).await.expect("setup_pod");
            let mid = Instant::now();
            net.teardown_pod(&id).await.expect("teardown_pod");
            drop(pod);
            let end = Instant::now();
            if i >= WARMUP {
                netns.push(created - start);
                setup.push(mid - start);
                teardown.push(end - mid);
            }
        }
        net.settle().await;
        // The same, waiting each time until the veth is deleted (what a synchronous
        // RTM_DELLINK costs).
        let mut teardown_settled = Vec::new();
        for i in 0..N {
            let id = format!("bench-settled-{i}");
            let pod = Netns::new().expect("pod namespace");
            net.setup_pod(&id, pod.path()).await.expect("setup_pod");
            let mid = Instant::now();
            net.teardown_pod(&id).await.expect("teardown_pod");
            net.settle().await;
            drop(pod);
            teardown_settled.push(mid.elapsed());
        }
        (netns, setup, teardown, teardown_settled)
    });

    let cni = if Path::new(CNI_BRIDGE).exists() && Path::new(CNI_HOST_LOCAL).exists() {
        Some(node.run(|| bench_cni(state.path())))
    } else {
        None
    };

    println!(
        "{N} iterations (after {WARMUP} warm-up), milliseconds; setup includes creating the pod netns, teardown includes dropping it"
    );
    println!("{:<22} {:>8} {:>8} {:>8}", "", "median", "p90", "p99");
    row("pod netns create", ours.0);
    row("podnet setup", ours.1);
    row("podnet teardown", ours.2);
    row("  + wait for delete", ours.3);
    match cni {
        Some((setup, teardown)) => {
            row("CNI bridge ADD", setup);
            row("CNI bridge DEL", teardown);
        }
        None => println!("CNI plugins not installed"),
    }
    drop(node);
}

/// The bridge + host-local plugins, run as processes from a thread in the node namespace.
fn bench_cni(dir: &Path) -> (Vec<Duration>, Vec<Duration>) {
    let config = format!(
        r#"{{"cniVersion":"1.0.0","name":"bench","type":"bridge","bridge":"cni-bench0","isGateway":true,"ipam":{{"type":"host-local","subnet":"10.88.0.0/16","dataDir":"{}"}}}}"#,
        dir.join("cni").display()
    );
    let mut setup = Vec::new();
    let mut teardown = Vec::new();
    for i in 0..WARMUP + N {
        let id = format!("bench{i}");
        let start = Instant::now();
        let pod = Netns::new().expect("pod namespace");
        cni("ADD", &id, pod.path(), &config);
        let mid = Instant::now();
        cni("DEL", &id, pod.path(), &config);
        drop(pod);
        let end = Instant::now();
        if i >= WARMUP {
            setup.push(mid - start);
            teardown.push(end - mid);
        }
    }
    (setup, teardown)
}

fn cni(command: &str, id: &str, netns: &Path, config: &str) {
    let mut child = Command::new(CNI_BRIDGE)
        .env_clear()
        .env("CNI_COMMAND", command)
        .env("CNI_CONTAINERID", id)
        .env("CNI_NETNS", netns)
        .env("CNI_IFNAME", "eth0")
        .env("CNI_PATH", "/usr/lib/cni")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawning the CNI bridge plugin");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(config.as_bytes())
        .expect("writing the CNI config");
    let out = child.wait_with_output().expect("CNI plugin");
    assert!(
        out.status.success(),
        "CNI {command} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn row(name: &str, mut samples: Vec<Duration>) {
    samples.sort();
    let at = |q: f64| {
        let i = ((samples.len() as f64 - 1.0) * q).round() as usize;
        samples.get(i).map_or(f64::NAN, |d| d.as_secs_f64() * 1e3)
    };
    println!("{name:<22} {:>8.3} {:>8.3} {:>8.3}", at(0.5), at(0.9), at(0.99));
}
