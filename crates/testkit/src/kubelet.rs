//! A real `kubelet` process for one test node, and a thorough clean-up on drop: the kubelet is
//! fail-static (containers outlive it), so the fixture itself ends every process it caused
//! (shims, sandbox holders and containers: found by their root directory and cgroups), unmounts
//! everything under the node's root directory and removes its cgroups.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

/// A running kubelet for a test.
pub struct Kubelet {
    binary: PathBuf,
    args: Vec<String>,
    child: Option<Child>,
    netns: Option<PathBuf>,
    pub node_name: String,
    pub root_dir: PathBuf,
    pub port: u16,
    /// `--cgroup-root`: unique per test node so that nodes never share cgroups.
    pub cgroup_root: String,
    log_path: PathBuf,
    _dir: tempfile::TempDir,
}

impl Kubelet {
    /// Starts `binary` as node `node_name` against the apiserver of `kubeconfig`, listening on
    /// 127.0.0.1, with `extra_args`.
    /// It runs in the test's own network namespace, so it never builds a pod network there
    /// (`--pod-network none`: pods get loopback only); see [`Kubelet::start_in_netns`].
    pub fn start(binary: &Path, kubeconfig: &Path, node_name: &str, extra_args: &[&str]) -> Result<Kubelet> {
        let mut args = vec!["--pod-network", "none"];
        args.extend_from_slice(extra_args);
        Self::start_with(binary, kubeconfig, node_name, None, "127.0.0.1", &args)
    }

    /// Starts `binary` as node `node_name` inside the network namespace at `netns`, listening
    /// on (and reporting as its node IP) `address`.
    pub fn start_in_netns(
        binary: &Path,
        kubeconfig: &Path,
        node_name: &str,
        netns: &Path,
        address: &str,
        extra_args: &[&str],
    ) -> Result<Kubelet> {
        let mut args = vec!["--node-ip", address];
        args.extend_from_slice(extra_args);
        Self::start_with(binary, kubeconfig, node_name, Some(netns), address, &args)
    }

    fn start_with(
        binary: &Path,
        kubeconfig: &Path,
        node_name: &str,
        netns: Option<&Path>,
        address: &str,
        extra_args: &[&str],
    ) -> Result<Kubelet> {
        let dir = tempfile::Builder::new().prefix("kaji-kubelet-").tempdir()?;
        let root_dir = dir.path().join("root");
        let port = crate::free_port();
        let cgroup_root = format!("kaji-test-{}-{}", std::process::id(), node_name);
        let mut args: Vec<String> = vec![
            "--kubeconfig".into(),
            kubeconfig.display().to_string(),
            "--node-name".into(),
            node_name.into(),
            "--root-dir".into(),
            root_dir.display().to_string(),
            "--address".into(),
            address.into(),
            "--port".into(),
            port.to_string(),
            "--cgroup-root".into(),
            cgroup_root.clone(),
        ];
        args.extend(extra_args.iter().map(|s| s.to_string()));
        let mut kubelet = Kubelet {
            binary: binary.to_path_buf(),
            args,
            child: None,
            netns: netns.map(Path::to_path_buf),
            node_name: node_name.to_string(),
            root_dir,
            port,
            cgroup_root,
            log_path: dir.path().join("kubelet.log"),
            _dir: dir,
        };
        kubelet.launch()?;
        Ok(kubelet)
    }

    fn launch(&mut self) -> Result<()> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log_path)?;
        let mut command = Command::new(&self.binary);
        if let Some(netns) = &self.netns {
            crate::netlab::join_on_spawn(&mut command, netns);
        }
        let child = command
            .args(&self.args)
            .env("RUST_LOG", std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {}", self.binary.display()))?;
        self.child = Some(child);
        Ok(())
    }

    /// The end of the kubelet's log, for failure messages.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log_path).unwrap_or_default();
        let start = text.len().saturating_sub(6000);
        let start = (start..text.len())
            .find(|i| text.is_char_boundary(*i))
            .unwrap_or(text.len());
        text[start..].to_string()
    }

    /// `kill -9` of the kubelet alone (its containers keep running).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the kubelet again with the same flags and root directory.
    pub fn restart(&mut self) -> Result<()> {
        self.kill();
        self.launch()
    }

    /// Whether the kubelet process is still running.
    pub fn is_running(&mut self) -> bool {
        self.child.as_mut().is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    fn cleanup(&mut self) {
        if let Some(child) = self.child.as_mut() {
            // SIGTERM first; the kubelet leaves containers running by design.
            let _ = unsafe_kill(child.id() as i32, 15);
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline && matches!(child.try_wait(), Ok(None)) {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        self.kill();
        runtime::reclaim::reclaim_node(&self.root_dir, &self.cgroup_root);
        let _ = std::fs::remove_dir_all(&self.root_dir);
    }
}

impl Drop for Kubelet {
    fn drop(&mut self) {
        self.cleanup();
    }
}

fn unsafe_kill(pid: i32, signal: i32) -> i32 {
    // SAFETY: kill(2) has no memory-safety preconditions.
    unsafe { libc::kill(pid, signal) }
}
