//! Wall time of everyday commands, kaji's kubectl against upstream kubectl 1.37 on the same
//! apiserver in the same run: `get pods` over 100 pods, and `apply -f` of 50 objects (first
//! apply creating them, second finding them unchanged). Each figure is the median of several
//! runs, each a fresh process as a user's shell starts it. Upstream keeps its discovery and
//! OpenAPI cache on disk (`--cache-dir`, warmed before timing: its best case); ours has no
//! disk cache and asks the server every time.
//!
//! Run: `cargo build --release --bins && cargo bench -p kubectl --bench cli`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use testkit::apiserver::ApiServer;

const RUNS: usize = 7;

fn main() -> Result<()> {
    let apiserver = ApiServer::start_embedded(&testkit::workspace_binary("kube-apiserver")?, &[])?;
    let kubeconfig = apiserver.kubeconfig();
    let ours = PathBuf::from(env!("CARGO_BIN_EXE_kubectl"));
    let upstream = testkit::upstream_kubectl()?;
    let cache = tempfile::tempdir()?;

    let pods: String = (0..100)
        .map(|i| {
            format!(
                "---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: pod-{i:03}\n  namespace: bench\n  labels: {{app: bench}}\nspec:\n  containers:\n  - name: main\n    image: busybox\n    command: [sleep, \"3600\"]\n"
            )
        })
        .collect();
    run(
        &upstream,
        &kubeconfig,
        cache.path(),
        &["create", "namespace", "bench"],
        None,
    )?;
    run(&upstream, &kubeconfig, cache.path(), &["apply", "-f", "-"], Some(&pods))?;

    let objects: String = (0..50)
        .map(|i| {
            format!(
                "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: config-{i:02}\n  labels: {{app: bench}}\ndata:\n  index: \"{i}\"\n  text: some configuration value\n"
            )
        })
        .collect();

    println!("kubectl wall time, median of {RUNS} runs (lower is better)");
    println!("{:<34} {:>10} {:>10} {:>7}", "command", "kaji", "upstream", "ratio");
    // Warm upstream's disk cache (discovery and OpenAPI) for every command timed below.
    run(
        &upstream,
        &kubeconfig,
        cache.path(),
        &["get", "pods", "-n", "bench"],
        None,
    )?;
    run(
        &upstream,
        &kubeconfig,
        cache.path(),
        &["apply", "-n", "bench", "-f", "-"],
        Some(&objects),
    )?;
    let get = ["get", "pods", "-n", "bench"];
    let ours_get = median(RUNS, || time(&ours, &kubeconfig, cache.path(), &get, None))?;
    let upstream_get = median(RUNS, || time(&upstream, &kubeconfig, cache.path(), &get, None))?;
    report("get pods (100 pods)", ours_get, upstream_get);

    // Apply into a fresh namespace per run (create path), then again (unchanged path).
    let mut namespace = 0;
    let mut apply_pair = |binary: &Path| -> Result<(Duration, Duration)> {
        namespace += 1;
        let ns = format!("apply-{namespace}");
        run(
            &upstream,
            &kubeconfig,
            cache.path(),
            &["create", "namespace", &ns],
            None,
        )?;
        let args = ["apply", "-n", &ns, "-f", "-"];
        let create = time(binary, &kubeconfig, cache.path(), &args, Some(&objects))?;
        let unchanged = time(binary, &kubeconfig, cache.path(), &args, Some(&objects))?;
        Ok((create, unchanged))
    };
    let mut ours_apply = Vec::new();
    let mut upstream_apply = Vec::new();
    for _ in 0..RUNS {
        ours_apply.push(apply_pair(&ours)?);
        upstream_apply.push(apply_pair(&upstream)?);
    }
    let pick = |runs: &[(Duration, Duration)], second: bool| {
        let mut v: Vec<Duration> = runs.iter().map(|r| if second { r.1 } else { r.0 }).collect();
        v.sort();
        v[v.len() / 2]
    };
    report(
        "apply -f (50 objects, create)",
        pick(&ours_apply, false),
        pick(&upstream_apply, false),
    );
    report(
        "apply -f (50 objects, unchanged)",
        pick(&ours_apply, true),
        pick(&upstream_apply, true),
    );
    let version = ["version", "--client"];
    let ours_version = median(RUNS, || time(&ours, &kubeconfig, cache.path(), &version, None))?;
    let upstream_version = median(RUNS, || time(&upstream, &kubeconfig, cache.path(), &version, None))?;
    report("version --client (start-up)", ours_version, upstream_version);
    Ok(())
}

fn report(name: &str, ours: Duration, upstream: Duration) {
    println!(
        "{name:<34} {:>8.1}ms {:>8.1}ms {:>6.2}x",
        ours.as_secs_f64() * 1e3,
        upstream.as_secs_f64() * 1e3,
        ours.as_secs_f64() / upstream.as_secs_f64()
    );
}

fn median(runs: usize, mut once: impl FnMut() -> Result<Duration>) -> Result<Duration> {
    let mut times = (0..runs).map(|_| once()).collect::<Result<Vec<_>>>()?;
    times.sort();
    Ok(times[times.len() / 2])
}

fn time(binary: &Path, kubeconfig: &Path, cache: &Path, args: &[&str], stdin: Option<&str>) -> Result<Duration> {
    let start = Instant::now();
    run(binary, kubeconfig, cache, args, stdin)?;
    Ok(start.elapsed())
}

fn run(binary: &Path, kubeconfig: &Path, cache: &Path, args: &[&str], stdin: Option<&str>) -> Result<String> {
    let mut child = Command::new(binary)
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .arg("--cache-dir")
        .arg(cache)
        .args(args)
        .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {}", binary.display()))?;
    if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(text.as_bytes())?;
    }
    let output = child.wait_with_output()?;
    ensure!(
        output.status.success(),
        "{} {args:?}: {}",
        binary.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}
