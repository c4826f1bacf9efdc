//! [`Runtime`]: the kubelet-facing API. It never clones or forks the calling process
//! itself (only `posix_spawn`-style `Command`s), so it is safe inside a multi-threaded
//! tokio process; all namespace and container work happens in shim processes.

use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::io::Read;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::cgroups::Layout;
use crate::error::RuntimeError;
use crate::launcher::Launcher;
use crate::logs::LogRotation;
use crate::oci::{SandboxNamespaces, build_spec};
use crate::state::{self, ExitRecord, ProcId, SandboxRecord, ShimConfig, ShimStatus, StartedRecord, validate_id};
use crate::stats::CgroupStats;
use crate::types::{ContainerSpec, ContainerState, Sandbox, SandboxSpec, SandboxState};
use crate::volatile::{self, StateMedium};

/// How long a shim may take to report a start.
const SHIM_TIMEOUT: Duration = Duration::from_secs(60);
/// How long removal waits for killed processes to go away.
const KILL_TIMEOUT: Duration = Duration::from_secs(10);

/// How to run the shim: `program args... container|pause DIR`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShimCommand {
    pub program: PathBuf,
    pub args: Vec<OsString>,
}

/// The container runtime. Cheap to create: all state is on disk under the state root,
/// so a new instance (a restarted kubelet) sees every sandbox and container.
#[derive(Debug)]
pub struct Runtime {
    root: PathBuf,
    medium: StateMedium,
    shim: ShimCommand,
    /// Forks container shims and sandbox holders (started on first use; `None` also after
    /// it failed, until the next start retries it).
    launcher: Mutex<Option<Launcher>>,
    /// False when `KAJI_SHIM_LAUNCHER=off`: every shim is executed (for comparison, or as
    /// an escape hatch).
    use_launcher: bool,
    layout: Layout,
    cgroup_parent: String,
    log_rotation: Option<LogRotation>,
}

impl Runtime {
    /// Opens (creating if needed) the state root, on a tmpfs of its own when it can be
    /// (see [`StateMedium`]). Pod cgroups go under `/kubepods`.
    pub fn new(state_root: &Path, shim: ShimCommand) -> Result<Runtime, RuntimeError> {
        fs::create_dir_all(state_root).map_err(RuntimeError::at(state_root, "create"))?;
        let medium = volatile::prepare(state_root);
        for sub in ["sandboxes", "containers", "lc"] {
            let dir = state_root.join(sub);
            fs::create_dir_all(&dir).map_err(RuntimeError::at(&dir, "create"))?;
        }
        let root = state_root
            .canonicalize()
            .map_err(RuntimeError::at(state_root, "resolve"))?;
        Ok(Runtime {
            root,
            medium,
            shim,
            launcher: Mutex::new(None),
            use_launcher: std::env::var_os("KAJI_SHIM_LAUNCHER").is_none_or(|v| v != "off"),
            layout: Layout::detect()?,
            cgroup_parent: "kubepods".into(),
            log_rotation: None,
        })
    }

    /// Rotates the logs of containers started from now on (the kubelet's
    /// `--container-log-max-size` / `--container-log-max-files`); without it logs grow
    /// unbounded. `max_files` below 2 counts as 2 (the current file and one rotated).
    pub fn with_log_rotation(mut self, rotation: LogRotation) -> Runtime {
        self.log_rotation = Some(rotation);
        self
    }

    /// Puts pod cgroups under `/<parent>` instead of `/kubepods`.
    pub fn with_cgroup_parent(mut self, parent: &str) -> Result<Runtime, RuntimeError> {
        for part in parent.split('/').filter(|p| !p.is_empty()) {
            validate_id(part)?;
        }
        self.cgroup_parent = parent.trim_matches('/').to_owned();
        Ok(self)
    }

    /// Where the records under the state root are kept.
    pub fn state_medium(&self) -> StateMedium {
        self.medium
    }

    fn sandbox_dir(&self, id: &str) -> PathBuf {
        self.root.join("sandboxes").join(id)
    }

    pub(crate) fn container_dir(&self, id: &str) -> PathBuf {
        self.root.join("containers").join(id)
    }

    pub(crate) fn shim_command(&self) -> &ShimCommand {
        &self.shim
    }

    /// Creates the pod's namespaces (held by a detached holder process) and pod cgroup.
    pub fn create_sandbox(&self, spec: &SandboxSpec) -> Result<Sandbox, RuntimeError> {
        validate_id(&spec.id)?;
        validate_id(&spec.pod_uid)?;
        let dir = self.sandbox_dir(&spec.id);
        create_new_dir(&dir, "sandbox", &spec.id)?;
        let cgroup_path = format!("/{}/pod{}", self.cgroup_parent, spec.pod_uid).replace("//", "/");
        let result = (|| {
            state::write_json(&dir.join(state::SPEC_FILE), spec)?;
            self.layout.create_pod(&cgroup_path, &spec.resources)?;
            let pid = match self.spawn_shim("pause", &dir)? {
                ShimStatus::Started { pid } => pid,
                other => return Err(RuntimeError::Shim(format!("sandbox holder: {other:?}"))),
            };
            let holder = ProcId::of(pid).ok_or_else(|| RuntimeError::Shim("sandbox holder exited at once".into()))?;
            let sandbox = Sandbox {
                id: spec.id.clone(),
                pid,
                cgroup_path: cgroup_path.clone(),
                spec: spec.clone(),
            };
            state::write_json(
                &dir.join(state::SANDBOX_FILE),
                &SandboxRecord {
                    sandbox: sandbox.clone(),
                    holder,
                },
            )?;
            Ok(sandbox)
        })();
        if result.is_err() {
            if let Ok(Some(record)) = state::read_json::<SandboxRecord>(&dir.join(state::SANDBOX_FILE)) {
                let _ = record.holder.signal(libc::SIGKILL);
            }
            let _ = self.layout.remove(&cgroup_path, Duration::from_secs(1));
            let _ = fs::remove_dir_all(&dir);
        }
        result
    }

    fn sandbox_record(&self, id: &str) -> Result<SandboxRecord, RuntimeError> {
        validate_id(id)?;
        state::read_json(&self.sandbox_dir(id).join(state::SANDBOX_FILE))?.ok_or_else(|| RuntimeError::NotFound {
            kind: "sandbox",
            id: id.to_owned(),
        })
    }

    /// The recorded sandbox.
    pub fn sandbox(&self, id: &str) -> Result<Sandbox, RuntimeError> {
        Ok(self.sandbox_record(id)?.sandbox)
    }

    /// Whether the sandbox's namespace holder is still running.
    pub fn sandbox_state(&self, id: &str) -> Result<SandboxState, RuntimeError> {
        let record = self.sandbox_record(id)?;
        Ok(if record.holder.is_running() {
            SandboxState::Ready
        } else {
            SandboxState::NotReady
        })
    }

    /// Every recorded sandbox.
    pub fn list_sandboxes(&self) -> Vec<Sandbox> {
        list_dir(&self.root.join("sandboxes"))
            .into_iter()
            .filter_map(|id| self.sandbox(&id).ok())
            .collect()
    }

    /// Kills and removes the sandbox's containers, then its holder, cgroup and state.
    pub fn remove_sandbox(&self, id: &str) -> Result<(), RuntimeError> {
        validate_id(id)?;
        let dir = self.sandbox_dir(id);
        if !dir.exists() {
            return Err(RuntimeError::NotFound {
                kind: "sandbox",
                id: id.to_owned(),
            });
        }
        for container in list_dir(&self.root.join("containers")) {
            let spec: Option<ContainerSpec> = state::read_json(&self.container_dir(&container).join(state::SPEC_FILE))
                .ok()
                .flatten();
            if spec.is_some_and(|s| s.sandbox_id == id) {
                self.stop_container(&container)?;
                self.remove_container(&container)?;
            }
        }
        if let Some(record) = state::read_json::<SandboxRecord>(&dir.join(state::SANDBOX_FILE))? {
            record.holder.signal(libc::SIGKILL)?;
            wait_until(KILL_TIMEOUT, || !record.holder.is_running())
                .map_err(|()| RuntimeError::Timeout(format!("sandbox {id} holder did not exit")))?;
            self.layout.remove(&record.sandbox.cgroup_path, KILL_TIMEOUT)?;
        }
        fs::remove_dir_all(&dir).map_err(RuntimeError::at(&dir, "remove"))
    }

    /// SIGKILLs a container and waits until its exit is recorded (or it is gone).
    fn stop_container(&self, id: &str) -> Result<(), RuntimeError> {
        self.kill(id, libc::SIGKILL)?;
        wait_until(KILL_TIMEOUT, || {
            !matches!(
                self.container_state(id),
                Ok(ContainerState::Running { .. } | ContainerState::Created)
            )
        })
        .map_err(|()| RuntimeError::Timeout(format!("container {id} did not exit")))
    }

    /// Creates and starts a container in its sandbox. Returns once the command has been
    /// exec'd, or with [`RuntimeError::Exec`] / [`RuntimeError::Start`] saying why not; the
    /// container then shows as exited with code 128 until it is removed.
    pub fn start_container(&self, spec: &ContainerSpec) -> Result<(), RuntimeError> {
        validate_id(&spec.id)?;
        let sandbox = self.sandbox_record(&spec.sandbox_id)?;
        if !sandbox.holder.is_running() {
            return Err(RuntimeError::SandboxNotReady(spec.sandbox_id.clone()));
        }
        let namespaces = SandboxNamespaces {
            holder_pid: sandbox.holder.pid,
            host_network: sandbox.sandbox.spec.host_network,
            share_pid: sandbox.sandbox.spec.share_process_namespace,
        };
        let cgroup_path = format!("{}/{}", sandbox.sandbox.cgroup_path, spec.id);
        let oci = build_spec(spec, &namespaces, &cgroup_path)?;
        let dir = self.container_dir(&spec.id);
        create_new_dir(&dir, "container", &spec.id)?;
        // The state directory is the bundle (one directory less to create per start).
        let bundle = dir.clone();
        oci.save(bundle.join("config.json"))
            .map_err(|e| RuntimeError::Spec(e.to_string()))?;
        state::write_json(&dir.join(state::SPEC_FILE), spec)?;
        let config = ShimConfig {
            id: spec.id.clone(),
            bundle,
            libcontainer_root: self.root.join("lc"),
            log_path: spec.log_path.clone(),
            oom_file: self.layout.oom_file(&cgroup_path),
            cgroup_dirs: self.layout.dirs(&cgroup_path),
            cgroup_path,
            log_rotation: self.log_rotation,
            stdin: spec.stdin,
            stdin_once: spec.stdin_once,
            tty: spec.tty,
        };
        state::write_json(&dir.join(state::SHIM_FILE), &config)?;
        match self.spawn_shim("container", &dir)? {
            ShimStatus::Started { .. } => Ok(()),
            ShimStatus::ExecFailed(message) => Err(RuntimeError::Exec(message)),
            ShimStatus::StartFailed(message) => Err(RuntimeError::Start(message)),
            ShimStatus::Failed(message) => Err(RuntimeError::Shim(message)),
        }
    }

    /// The container's state from its records and a PID-reuse-safe liveness check.
    pub fn container_state(&self, id: &str) -> Result<ContainerState, RuntimeError> {
        validate_id(id)?;
        let dir = self.container_dir(id);
        if !dir.exists() {
            return Err(RuntimeError::NotFound {
                kind: "container",
                id: id.to_owned(),
            });
        }
        let started: Option<StartedRecord> = state::read_json(&dir.join(state::STARTED_FILE))?;
        let exited = |exit: ExitRecord, started: &Option<StartedRecord>| ContainerState::Exited {
            exit_code: exit.exit_code,
            signal: exit.signal,
            oom_killed: exit.oom_killed,
            started_at: started.as_ref().map(|s| s.started_at),
            finished_at: exit.finished_at,
        };
        if let Some(exit) = state::read_json(&dir.join(state::EXIT_FILE))? {
            return Ok(exited(exit, &started));
        }
        let Some(record) = started else {
            return Ok(ContainerState::Created);
        };
        if record.process.is_alive() || record.shim.is_running() {
            return Ok(ContainerState::Running {
                pid: record.process.pid,
                started_at: record.started_at,
            });
        }
        // The shim may have written the exit and gone between the two reads.
        Ok(match state::read_json(&dir.join(state::EXIT_FILE))? {
            Some(exit) => exited(exit, &Some(record)),
            None => ContainerState::Unknown,
        })
    }

    /// Every container with its state.
    pub fn list(&self) -> Vec<(String, ContainerState)> {
        self.list_with_prefix("")
    }

    /// The containers whose id starts with `prefix` (e.g. one pod's), with their states; only
    /// those containers' state is read.
    pub fn list_with_prefix(&self, prefix: &str) -> Vec<(String, ContainerState)> {
        list_dir(&self.root.join("containers"))
            .into_iter()
            .filter(|id| id.starts_with(prefix))
            .filter_map(|id| self.container_state(&id).ok().map(|s| (id, s)))
            .collect()
    }

    /// The container's spec as given to `start_container`.
    pub fn container_spec(&self, id: &str) -> Result<ContainerSpec, RuntimeError> {
        validate_id(id)?;
        state::read_json(&self.container_dir(id).join(state::SPEC_FILE))?.ok_or_else(|| RuntimeError::NotFound {
            kind: "container",
            id: id.to_owned(),
        })
    }

    /// Sends `signal` to the container's init process (only that process; SIGKILL to the
    /// init of a container's own PID namespace takes the namespace down). A container that
    /// has already exited is not an error.
    pub fn kill(&self, id: &str, signal: i32) -> Result<(), RuntimeError> {
        validate_id(id)?;
        let dir = self.container_dir(id);
        if !dir.exists() {
            return Err(RuntimeError::NotFound {
                kind: "container",
                id: id.to_owned(),
            });
        }
        if let Some(record) = state::read_json::<StartedRecord>(&dir.join(state::STARTED_FILE))? {
            record.process.signal(signal)?;
        }
        Ok(())
    }

    /// CPU and memory of a container's cgroup; `None` when the container or its cgroup is
    /// gone (an exited container's cgroup is removed by its shim).
    pub fn container_stats(&self, id: &str) -> Option<CgroupStats> {
        validate_id(id).ok()?;
        let config = state::read_json::<ShimConfig>(&self.container_dir(id).join(state::SHIM_FILE)).ok()??;
        self.layout.stats(&config.cgroup_path)
    }

    /// CPU and memory of a pod sandbox's cgroup (all its containers).
    pub fn sandbox_stats(&self, id: &str) -> Option<CgroupStats> {
        let sandbox = self.sandbox(id).ok()?;
        self.layout.stats(&sandbox.cgroup_path)
    }

    /// CPU and memory of the whole node.
    pub fn node_stats(&self) -> Option<CgroupStats> {
        self.layout.node_stats()
    }

    /// Removes an exited container: leftover libcontainer state and cgroup, and the state
    /// directory. The log file stays.
    pub fn remove_container(&self, id: &str) -> Result<(), RuntimeError> {
        match self.container_state(id)? {
            ContainerState::Running { .. } => return Err(RuntimeError::StillRunning(id.to_owned())),
            ContainerState::Created | ContainerState::Exited { .. } | ContainerState::Unknown => {}
        }
        // The shim cleans up (cgroups, libcontainer state) before it records the exit, so
        // there is no shim to wait for; what follows only catches leftovers of a shim that
        // died.
        let dir = self.container_dir(id);
        let lc_dir = self.root.join("lc").join(id);
        if lc_dir.exists() {
            fs::remove_dir_all(&lc_dir).map_err(RuntimeError::at(&lc_dir, "remove"))?;
        }
        if let Some(config) = state::read_json::<ShimConfig>(&dir.join(state::SHIM_FILE))? {
            self.layout.remove(&config.cgroup_path, KILL_TIMEOUT)?;
        }
        fs::remove_dir_all(&dir).map_err(RuntimeError::at(&dir, "remove"))
    }

    /// Starts a detached shim in `mode` for `dir` and returns the status it reports: forked
    /// by the launcher, or (if the launcher cannot be used) by executing the shim binary.
    fn spawn_shim(&self, mode: &str, dir: &Path) -> Result<ShimStatus, RuntimeError> {
        let log_path = dir.join(state::SHIM_LOG);
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(RuntimeError::at(&log_path, "open"))?;
        let launched = if self.use_launcher {
            self.launch(mode, dir, &log)
                .inspect_err(|e| tracing::warn!(error = %e, "shim launcher unavailable, executing the shim"))
                .ok()
        } else {
            None
        };
        let line = match launched {
            Some(status) => read_line(status, SHIM_TIMEOUT)?,
            None => self.exec_shim(mode, dir, log)?,
        };
        if line.is_empty() {
            let log = fs::read_to_string(&log_path).unwrap_or_default();
            return Err(RuntimeError::Shim(format!(
                "exited without a status; log: {}",
                log.trim()
            )));
        }
        serde_json::from_str(&line).map_err(|e| RuntimeError::Shim(format!("bad status {line:?}: {e}")))
    }

    /// Has the launcher fork the shim (restarting the launcher once if it has gone away);
    /// returns the read end of the shim's status pipe.
    fn launch(&self, mode: &str, dir: &Path, log: &File) -> Result<File, RuntimeError> {
        let (status_r, status_w) = crate::shim::pipe().map_err(|e| RuntimeError::io("pipe", e))?;
        let mut launcher = self.launcher.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut last_error = None;
        for _ in 0..2 {
            if launcher.is_none() {
                *launcher = Some(Launcher::start(&self.shim, &self.root)?);
            }
            let Some(current) = launcher.as_ref() else { break };
            match current.launch(mode, dir, &status_w, log) {
                Ok(_pid) => return Ok(File::from(status_r)),
                Err(e) => {
                    *launcher = None;
                    last_error = Some(e);
                }
            }
        }
        Err(last_error.unwrap_or_else(|| RuntimeError::Shim("no shim launcher".into())))
    }

    /// Executes the shim binary, which forks the shim and exits; returns its status line.
    fn exec_shim(&self, mode: &str, dir: &Path, log: File) -> Result<String, RuntimeError> {
        let mut child = Command::new(&self.shim.program)
            .args(&self.shim.args)
            .arg(mode)
            .arg(dir)
            .current_dir("/")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .map_err(|e| RuntimeError::io(format!("spawn shim {}", self.shim.program.display()), e))?;
        let line = child
            .stdout
            .take()
            .map(|out| read_line(File::from(std::os::fd::OwnedFd::from(out)), SHIM_TIMEOUT));
        // The invoked process forks the real shim and exits at once.
        let _ = child.wait();
        line.unwrap_or_else(|| Err(RuntimeError::Shim("no status pipe".into())))
    }
}

/// Reads up to the first newline (or EOF) with a deadline.
fn read_line(mut file: File, timeout: Duration) -> Result<String, RuntimeError> {
    let deadline = Instant::now() + timeout;
    let mut line = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(RuntimeError::Timeout("waiting for the shim's status".into()));
        }
        let mut pollfd = libc::pollfd {
            fd: file.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        let n = unsafe { libc::poll(&mut pollfd, 1, left.as_millis().min(i32::MAX as u128) as i32) };
        if n < 0 {
            let err = std::io::Error::last_os_error();
            if err.raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            return Err(RuntimeError::io("poll shim status", err));
        }
        if n == 0 {
            continue;
        }
        let got = match file.read(&mut buf) {
            Ok(got) => got,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(RuntimeError::io("read shim status", e)),
        };
        if got == 0 {
            break;
        }
        line.extend_from_slice(&buf[..got]);
        if let Some(nl) = line.iter().position(|&b| b == b'\n') {
            line.truncate(nl);
            break;
        }
    }
    Ok(String::from_utf8_lossy(&line).into_owned())
}

fn create_new_dir(dir: &Path, kind: &'static str, id: &str) -> Result<(), RuntimeError> {
    match fs::create_dir(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Err(RuntimeError::AlreadyExists {
            kind,
            id: id.to_owned(),
        }),
        Err(e) => Err(RuntimeError::io(format!("create {}", dir.display()), e)),
    }
}

fn list_dir(dir: &Path) -> Vec<String> {
    let mut ids: Vec<String> = fs::read_dir(dir)
        .map(|entries| entries.filter_map(|e| e.ok()?.file_name().into_string().ok()).collect())
        .unwrap_or_default();
    ids.sort();
    ids
}

fn wait_until(timeout: Duration, mut done: impl FnMut() -> bool) -> Result<(), ()> {
    let deadline = Instant::now() + timeout;
    while !done() {
        if Instant::now() >= deadline {
            return Err(());
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    Ok(())
}
