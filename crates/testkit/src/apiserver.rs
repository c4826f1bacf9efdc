//! A real `kube-apiserver` process on a free loopback port, stopped on drop.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// The apiserver [`shared_embedded_kubeconfig`] started, if any.
static SHARED_EMBEDDED: std::sync::Mutex<Option<ApiServer>> = std::sync::Mutex::new(None);

unsafe extern "C" {
    fn atexit(callback: extern "C" fn()) -> std::ffi::c_int;
}

/// Stops the shared apiserver when the test binary exits (statics are never dropped).
extern "C" fn stop_shared_embedded() {
    let server = match SHARED_EMBEDDED.lock() {
        Ok(mut guard) => guard.take(),
        Err(poisoned) => poisoned.into_inner().take(),
    };
    drop(server);
}

/// The admin kubeconfig of one embedded-store apiserver shared by every test of this test
/// binary: started on first use, stopped (and its data removed) when the binary exits.
pub fn shared_embedded_kubeconfig(binary: &Path) -> Result<PathBuf> {
    let mut guard = SHARED_EMBEDDED.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if guard.is_none() {
        *guard = Some(ApiServer::start_embedded(binary, &[])?);
        // SAFETY: registering a plain `extern "C" fn()` with libc's atexit has no preconditions.
        unsafe { atexit(stop_shared_embedded) };
    }
    Ok(guard.as_ref().expect("started above").kubeconfig())
}

/// A running apiserver and its data directory.
pub struct ApiServer {
    binary: PathBuf,
    args: Vec<String>,
    data_dir: tempfile::TempDir,
    child: Option<Child>,
    pub port: u16,
    /// The etcd the apiserver stores into; empty when it runs on its embedded store.
    pub etcd_endpoint: String,
    /// `--bind-address`.
    pub bind_address: String,
    /// The network namespace the process runs in (None: the test's own).
    netns: Option<PathBuf>,
}

impl ApiServer {
    /// Starts `binary` (the test's `env!("CARGO_BIN_EXE_kube-apiserver")`) against etcd at
    /// `etcd_endpoint`, with `extra_args`, and waits until it is ready. With
    /// `KAJI_TEST_STORAGE=embedded` in the environment it runs on its embedded store instead,
    /// so a whole test suite written for etcd can run on the embedded store.
    pub fn start(binary: &Path, etcd_endpoint: &str, extra_args: &[&str]) -> Result<Self> {
        if std::env::var("KAJI_TEST_STORAGE").is_ok_and(|storage| storage == "embedded") {
            return Self::start_embedded(binary, extra_args);
        }
        Self::start_with(binary, etcd_endpoint, extra_args)
    }

    /// Starts `binary` on its embedded store (in its data directory, so it survives
    /// [`ApiServer::restart`] and [`ApiServer::kill`]), with `extra_args`, and waits until it is
    /// ready.
    pub fn start_embedded(binary: &Path, extra_args: &[&str]) -> Result<Self> {
        Self::start_with(binary, "", extra_args)
    }

    fn start_with(binary: &Path, etcd_endpoint: &str, extra_args: &[&str]) -> Result<Self> {
        let data_dir = tempfile::Builder::new().prefix("kaji-apiserver-").tempdir()?;
        let mut server = Self {
            binary: binary.to_path_buf(),
            args: extra_args.iter().map(|s| s.to_string()).collect(),
            data_dir,
            child: None,
            port: crate::free_port(),
            etcd_endpoint: etcd_endpoint.to_string(),
            bind_address: "127.0.0.1".into(),
            netns: None,
        };
        server.launch()?;
        Ok(server)
    }

    /// Starts `binary` on its embedded store inside the network namespace at `netns`, listening
    /// on `bind_address` (which the kubeconfig it writes points at), and waits until it is ready.
    pub fn start_embedded_in_netns(
        binary: &Path,
        netns: &Path,
        bind_address: &str,
        extra_args: &[&str],
    ) -> Result<Self> {
        let data_dir = tempfile::Builder::new().prefix("kaji-apiserver-").tempdir()?;
        let mut server = Self {
            binary: binary.to_path_buf(),
            args: extra_args.iter().map(|s| s.to_string()).collect(),
            data_dir,
            child: None,
            port: crate::free_port(),
            etcd_endpoint: String::new(),
            bind_address: bind_address.to_string(),
            netns: Some(netns.to_path_buf()),
        };
        server.launch()?;
        Ok(server)
    }

    pub fn data_dir(&self) -> &Path {
        self.data_dir.path()
    }

    /// The admin kubeconfig the apiserver wrote.
    pub fn kubeconfig(&self) -> PathBuf {
        self.data_dir.path().join("admin.kubeconfig")
    }

    pub fn url(&self) -> String {
        format!("https://{}:{}", self.bind_address, self.port)
    }

    fn log_path(&self) -> PathBuf {
        self.data_dir.path().join("apiserver.log")
    }

    /// The end of the apiserver's log, for failure messages.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(self.log_path()).unwrap_or_default();
        let start = text.len().saturating_sub(4000);
        text.get(start..).unwrap_or_default().to_string()
    }

    fn launch(&mut self) -> Result<()> {
        // The kubeconfig is (re)written just before the server reports ready: wait for a fresh one.
        let _ = std::fs::remove_file(self.kubeconfig());
        let log = std::fs::File::create(self.log_path())?;
        let mut command = Command::new(&self.binary);
        if let Some(netns) = &self.netns {
            crate::netlab::join_on_spawn(&mut command, netns);
        }
        // Without --etcd-servers the apiserver uses its embedded store (its default).
        if !self.etcd_endpoint.is_empty() {
            command.arg("--etcd-servers").arg(&self.etcd_endpoint);
        }
        let child = command
            .arg("--data-dir")
            .arg(self.data_dir.path())
            .arg("--bind-address")
            .arg(&self.bind_address)
            .arg("--secure-port")
            .arg(self.port.to_string())
            .args(&self.args)
            .env("RUST_LOG", std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {}", self.binary.display()))?;
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Some(child) = self.child.as_mut()
                && let Some(status) = child.try_wait()?
            {
                bail!("kube-apiserver exited with {status}:\n{}", self.log_tail());
            }
            if self.kubeconfig().exists() {
                std::thread::sleep(Duration::from_millis(50));
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        bail!("kube-apiserver did not become ready in 30 s:\n{}", self.log_tail())
    }

    /// Stops the process (SIGTERM, then SIGKILL after 5 s).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            if let Ok(pid) = i32::try_from(child.id()) {
                // SAFETY: signalling a child process we spawned and have not yet reaped.
                unsafe {
                    libc::kill(pid, libc::SIGTERM);
                }
            }
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Kills the process with SIGKILL (no chance to clean up) and reaps it; [`ApiServer::restart`]
    /// starts it again.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stops and starts the process again with the same data directory and port.
    pub fn restart(&mut self) -> Result<()> {
        self.stop();
        self.launch()
    }
}

impl Drop for ApiServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
