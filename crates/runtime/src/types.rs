//! The requests the kubelet sends and the states it reads back.

use std::path::PathBuf;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// CPU and memory limits, in the units the cgroup files use.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resources {
    /// cgroup v1 `cpu.shares` (2..=262144); converted to `cpu.weight` on cgroup v2.
    pub cpu_shares: Option<u64>,
    /// CFS quota in microseconds per `cpu_period` (`-1` or `None`: unlimited).
    pub cpu_quota: Option<i64>,
    /// CFS period in microseconds (default 100000).
    pub cpu_period: Option<u64>,
    /// Memory limit in bytes.
    pub memory_limit: Option<i64>,
}

/// A pod sandbox: the namespaces and the cgroup that all of a pod's containers share.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SandboxSpec {
    /// Runtime id of the sandbox (unique on the node).
    pub id: String,
    /// The pod's UID; the pod cgroup is `<cgroup parent>/pod<uid>`.
    pub pod_uid: String,
    /// The pod's hostname (the pod name, or `spec.hostname`).
    pub hostname: String,
    /// `spec.hostNetwork`: share the node's network and UTS namespaces.
    pub host_network: bool,
    /// `spec.shareProcessNamespace`: one PID namespace for all containers.
    pub share_process_namespace: bool,
    /// Pod-level limits written on the pod cgroup.
    pub resources: Resources,
}

/// A running sandbox as recorded on disk.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sandbox {
    pub id: String,
    /// Host PID of the namespace holder.
    pub pid: u32,
    /// The pod cgroup path, relative to each cgroup hierarchy root (`/kubepods/pod<uid>`).
    pub cgroup_path: String,
    pub spec: SandboxSpec,
}

/// Whether a sandbox's namespace holder is alive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SandboxState {
    Ready,
    NotReady,
}

/// User and groups a container runs as.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
}

/// What a mount is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum MountKind {
    /// Recursive bind mount of `source`.
    Bind,
    /// A fresh tmpfs (`source` ignored), optionally size-limited in bytes.
    Tmpfs { size: Option<u64> },
}

/// A mount into the container.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mount {
    pub source: PathBuf,
    pub destination: PathBuf,
    pub kind: MountKind,
    pub read_only: bool,
}

/// Capability changes relative to the default set (upstream containerd's).
/// Names with or without the `CAP_` prefix, case-insensitive; `ALL` is allowed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Capabilities {
    pub add: Vec<String>,
    pub drop: Vec<String>,
}

/// One container of a sandbox.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerSpec {
    /// Runtime id of the container (unique on the node).
    pub id: String,
    pub sandbox_id: String,
    /// The already-mounted root file system.
    pub rootfs: PathBuf,
    /// The command: image ENTRYPOINT/CMD already merged with command/args.
    pub args: Vec<String>,
    /// `NAME=value` entries; should contain `PATH`.
    pub env: Vec<String>,
    /// Working directory inside the container (`/` when empty).
    pub cwd: String,
    pub user: User,
    pub mounts: Vec<Mount>,
    pub resources: Resources,
    pub capabilities: Capabilities,
    pub privileged: bool,
    /// `allowPrivilegeEscalation: false`.
    pub no_new_privs: bool,
    pub read_only_rootfs: bool,
    /// The CRI-format log file the shim appends stdout and stderr to.
    pub log_path: PathBuf,
    /// `stdin: true`: the process reads a pipe the shim keeps open for attach clients
    /// ([`crate::Runtime::attach`]); `/dev/null` otherwise.
    #[serde(default)]
    pub stdin: bool,
    /// `stdinOnce: true`: the process's stdin is closed once the first attach client that
    /// wrote to it goes away (not with `tty`, like containerd).
    #[serde(default)]
    pub stdin_once: bool,
    /// `tty: true`: the process runs on a pseudo-terminal (stdout and stderr merged into
    /// stdout), sized by attach clients.
    #[serde(default)]
    pub tty: bool,
}

/// A container's state, derived from its state directory and a liveness check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ContainerState {
    /// Created but not yet started (transient inside `start_container`).
    Created,
    Running {
        /// Host PID of the container's init process.
        pid: u32,
        started_at: Timestamp,
    },
    Exited {
        /// The exit code, or 128 + signal when killed by a signal.
        exit_code: i32,
        /// The signal that killed the process, if any.
        signal: Option<i32>,
        /// The container's memory cgroup recorded an OOM kill.
        oom_killed: bool,
        started_at: Option<Timestamp>,
        finished_at: Timestamp,
    },
    /// The process and its shim are gone and no exit was recorded.
    Unknown,
}
