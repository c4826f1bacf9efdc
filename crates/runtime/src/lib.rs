//! kaji's built-in container runtime.
//!
//! The kubelet drives a [`Runtime`]: pod sandboxes ([`Runtime::create_sandbox`]) hold the
//! pod's network, IPC and UTS namespaces (and optionally its PID namespace) in a tiny
//! detached holder process and own the pod cgroup (`/kubepods/pod<uid>`); containers
//! ([`Runtime::start_container`]) join those namespaces by path and get their own mount
//! (and PID) namespace and a cgroup under the pod's.
//!
//! Each container runs under its own **shim** ([`shim_main`]): single-threaded, in its own
//! session, forked by the runtime's launcher (the kubelet binary executed once in launcher
//! mode, see the `launcher` module) rather than executed per container. The
//! shim creates the container, copies its stdout/stderr into the CRI log file and to the
//! clients attached to its main process ([`Runtime::attach`], the `attach` module: stdin and
//! terminal per the container's `stdin`/`stdinOnce`/`tty`), waits for its
//! init process (as child subreaper), records the exit (code, signal, OOM kill, time) in the
//! container's state directory and deletes it from libcontainer. Everything the runtime
//! knows is in the state directory, so a kubelet that was `kill -9`ed and restarted adopts
//! running containers (same PIDs) and sees the exits that happened while it was down.
//!
//! [`Runtime::exec`] / [`Runtime::exec_sync`] run a process inside a running container
//! (probes, hooks, `kubectl exec`): the shim binary again, in `exec` mode, as a child of the
//! caller that joins the container with libcontainer's tenant builder and is driven over a
//! socket pair (stdio passed as descriptors, PID and exit code reported back, the process
//! killed when the [`ExecProcess`] is dropped or the caller dies). Logs rotate as the
//! kubelet's `--container-log-max-size` / `--container-log-max-files` when the runtime is
//! built [`Runtime::with_log_rotation`].
//!
//! **Why libcontainer.** Containers are created by youki's `libcontainer` (with the
//! `oci-spec` types) rather than hand-written namespace code: it is a maintained OCI
//! runtime covering pivot_root, the default mounts and devices, masked paths,
//! capabilities, no_new_privs, cgroups v1 and v2 (libcgroups copes with this machine's
//! hybrid layout, which crun refuses) and seccomp. Its one constraint is that it clones the
//! calling process, which is unsound in a multi-threaded (tokio) process; hence the shim,
//! which we need anyway to keep containers and their logs alive across kubelet restarts.
//! Our own code covers what libcontainer does not do for a CRI runtime: the sandbox
//! holder, the pod cgroup, the exec-error reporting worded as upstream (a custom
//! `Executor`), log capture and exit records.

pub mod attach;
mod cgroups;
mod error;
mod exec;
mod launcher;
mod logs;
mod oci;
mod pause;
mod process_exec;
pub mod reclaim;
mod runtime;
mod shim;
mod state;
mod stats;
mod tenant;
mod types;
mod volatile;

pub use attach::Attachment;
pub use error::RuntimeError;
pub use logs::LogRotation;
pub use oci::DEFAULT_CAPABILITIES;
pub use process_exec::{EXEC_SYNC_MAX_OUTPUT, ExecExit, ExecOutput, ExecProcess, ExecRequest, resize_pty};
pub use runtime::{Runtime, ShimCommand};
pub use shim::shim_main;
pub use stats::CgroupStats;
pub use types::{
    Capabilities, ContainerSpec, ContainerState, Mount, MountKind, Resources, Sandbox, SandboxSpec, SandboxState, User,
};
pub use volatile::{DiskReason, StateMedium};
