//! Shared fixtures: a busybox rootfs, a runtime on a temporary state root with its own
//! cgroup parent, and clean-up of everything on drop.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use runtime::{Capabilities, ContainerSpec, ContainerState, Resources, Runtime, SandboxSpec, ShimCommand, User};

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A unique id for this test process.
pub(crate) fn unique(prefix: &str) -> String {
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::SeqCst)
    )
}

pub(crate) fn shim() -> ShimCommand {
    ShimCommand {
        program: PathBuf::from(env!("CARGO_BIN_EXE_kaji-shim")),
        args: vec![],
    }
}

/// Copies Debian's static busybox into `dir/bin` with a symlink per applet.
pub(crate) fn busybox_rootfs(dir: &Path) {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).expect("mkdir bin");
    std::fs::copy("/bin/busybox", bin.join("busybox")).expect("copy busybox (apt-get install busybox-static)");
    let list = std::process::Command::new("/bin/busybox")
        .arg("--list")
        .output()
        .expect("busybox --list");
    for applet in String::from_utf8_lossy(&list.stdout).lines() {
        if applet != "busybox" {
            std::os::unix::fs::symlink("busybox", bin.join(applet)).expect("symlink applet");
        }
    }
    for sub in ["proc", "sys", "dev", "tmp", "etc"] {
        std::fs::create_dir_all(dir.join(sub)).expect("mkdir");
    }
    std::fs::write(dir.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n").expect("passwd");
}

/// A runtime with a private state root, rootfs and cgroup parent; removes everything on drop.
pub(crate) struct Fixture {
    pub(crate) dir: tempfile::TempDir,
    pub(crate) runtime: Runtime,
    pub(crate) cgroup_parent: String,
}

impl Fixture {
    pub(crate) fn new() -> Fixture {
        // SAFETY: geteuid has no preconditions.
        assert_eq!(unsafe { libc::geteuid() }, 0, "runtime tests need root");
        let dir = tempfile::Builder::new()
            .prefix("kaji-rt")
            .tempdir_in("/tmp")
            .expect("tempdir");
        busybox_rootfs(&dir.path().join("rootfs"));
        let cgroup_parent = unique("kaji-test");
        let runtime = Fixture::open(dir.path(), &cgroup_parent);
        Fixture {
            dir,
            runtime,
            cgroup_parent,
        }
    }

    pub(crate) fn open(dir: &Path, cgroup_parent: &str) -> Runtime {
        Runtime::new(&dir.join("state"), shim())
            .expect("runtime")
            .with_cgroup_parent(cgroup_parent)
            .expect("cgroup parent")
    }

    pub(crate) fn rootfs(&self) -> PathBuf {
        self.dir.path().join("rootfs")
    }

    pub(crate) fn sandbox(&self, hostname: &str, share_pid: bool) -> String {
        let id = unique("sb");
        let spec = SandboxSpec {
            id: id.clone(),
            pod_uid: unique("uid"),
            hostname: hostname.into(),
            host_network: false,
            share_process_namespace: share_pid,
            resources: Resources::default(),
        };
        self.runtime.create_sandbox(&spec).expect("create sandbox");
        id
    }

    pub(crate) fn container(&self, sandbox: &str, args: &[&str]) -> ContainerSpec {
        let id = unique("c");
        ContainerSpec {
            log_path: self.dir.path().join("logs").join(format!("{id}.log")),
            id,
            sandbox_id: sandbox.into(),
            rootfs: self.rootfs(),
            args: args.iter().map(|a| (*a).to_owned()).collect(),
            env: vec!["PATH=/bin".into()],
            cwd: "/".into(),
            user: User::default(),
            mounts: vec![],
            resources: Resources::default(),
            capabilities: Capabilities::default(),
            privileged: false,
            no_new_privs: false,
            read_only_rootfs: false,
            stdin: false,
            stdin_once: false,
            tty: false,
        }
    }

    /// Polls until the container has exited.
    pub(crate) fn wait_exit(&self, id: &str) -> ContainerState {
        wait_exit(&self.runtime, id)
    }

    /// The log file's records as `(stream, tag, content)`, checking the timestamp format.
    pub(crate) fn log_records(&self, spec: &ContainerSpec) -> Vec<(String, String, String)> {
        let text = std::fs::read_to_string(&spec.log_path).expect("read log");
        text.lines()
            .map(|line| {
                let mut parts = line.splitn(4, ' ');
                let ts = parts.next().expect("timestamp");
                assert_eq!(ts.len(), 30, "timestamp {ts:?}");
                assert!(
                    ts.ends_with('Z') && ts.as_bytes()[10] == b'T' && ts.as_bytes()[19] == b'.',
                    "{ts}"
                );
                ts.parse::<jiff::Timestamp>().expect("RFC 3339 timestamp");
                let stream = parts.next().expect("stream").to_owned();
                let tag = parts.next().expect("tag").to_owned();
                (stream, tag, parts.next().unwrap_or_default().to_owned())
            })
            .collect()
    }

    /// Content of the stdout records.
    pub(crate) fn stdout(&self, spec: &ContainerSpec) -> Vec<String> {
        self.log_records(spec)
            .into_iter()
            .filter(|(s, _, _)| s == "stdout")
            .map(|(_, _, c)| c)
            .collect()
    }
}

pub(crate) fn wait_exit(runtime: &Runtime, id: &str) -> ContainerState {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let state = runtime.container_state(id).expect("container state");
        if matches!(state, ContainerState::Exited { .. }) {
            return state;
        }
        assert!(Instant::now() < deadline, "container {id} still {state:?}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        if std::thread::panicking() {
            // Show the shims' own logs to explain the failure.
            let containers = self.dir.path().join("state/containers");
            for entry in std::fs::read_dir(containers).into_iter().flatten().flatten() {
                let log = std::fs::read_to_string(entry.path().join("shim.log")).unwrap_or_default();
                eprintln!("shim log of {:?}:\n{log}", entry.file_name());
            }
            for entry in std::fs::read_dir(self.dir.path().join("logs"))
                .into_iter()
                .flatten()
                .flatten()
            {
                let log = std::fs::read_to_string(entry.path()).unwrap_or_default();
                eprintln!("container log {:?}:\n{log}", entry.file_name());
            }
        }
        for sandbox in self.runtime.list_sandboxes() {
            if let Err(e) = self.runtime.remove_sandbox(&sandbox.id) {
                eprintln!("cleanup of sandbox {}: {e}", sandbox.id);
            }
        }
        for (id, _) in self.runtime.list() {
            let _ = self.runtime.kill(&id, libc::SIGKILL);
            let _ = wait_exit(&self.runtime, &id);
            let _ = self.runtime.remove_container(&id);
        }
        for dir in cgroup_dirs(&self.cgroup_parent) {
            let _ = std::fs::remove_dir(dir);
        }
        // The state root's tmpfs outlives the runtime instance (as it outlives a kubelet).
        runtime::reclaim::unmount_under(&self.dir.path().join("state"));
    }
}

/// The cgroup directories named `parent` in every hierarchy that has one.
pub(crate) fn cgroup_dirs(parent: &str) -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Ok(entries) = std::fs::read_dir("/sys/fs/cgroup") {
        for entry in entries.flatten() {
            let dir = entry.path().join(parent);
            if dir.exists() {
                dirs.push(dir);
            }
        }
    }
    let v2 = Path::new("/sys/fs/cgroup").join(parent);
    if Path::new("/sys/fs/cgroup/cgroup.controllers").exists() && v2.exists() {
        dirs.push(v2);
    }
    dirs
}
