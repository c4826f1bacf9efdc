//! The runtime's error type.

use std::io;
use std::path::{Path, PathBuf};

/// Everything that can go wrong in [`crate::Runtime`] and the shim.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// An id is empty, too long or contains characters other than `[A-Za-z0-9_.-]`.
    #[error("invalid id {0:?}: use 1 to 128 characters of [A-Za-z0-9_.-]")]
    InvalidId(String),
    /// No sandbox or container with that id.
    #[error("{kind} {id:?} not found")]
    NotFound { kind: &'static str, id: String },
    /// A sandbox or container with that id exists already.
    #[error("{kind} {id:?} already exists")]
    AlreadyExists { kind: &'static str, id: String },
    /// The sandbox's namespace holder is gone, so nothing can join its namespaces.
    #[error("sandbox {0:?} is not ready: its namespace holder is not running")]
    SandboxNotReady(String),
    /// `exec` into a container that is not running (exited, or never started).
    #[error("container {0:?} is not running")]
    NotRunning(String),
    /// `remove_container` on a container that has not exited.
    #[error("container {0:?} is still running")]
    StillRunning(String),
    /// The container's command could not be found or executed, worded as upstream
    /// (`exec: "foo": executable file not found in $PATH`). Kubelet reason: `StartError`.
    #[error("{0}")]
    Exec(String),
    /// The container could not be created or started (mounts, cgroups, namespaces...).
    /// Kubelet reason: `StartError` / `RunContainerError`.
    #[error("failed to start container: {0}")]
    Start(String),
    /// The shim process failed outside of the container's own start.
    #[error("runtime shim failed: {0}")]
    Shim(String),
    /// The OCI runtime spec could not be built from the request.
    #[error("invalid container spec: {0}")]
    Spec(String),
    /// A cgroup operation failed.
    #[error("cgroup {path}: {source}")]
    Cgroup { path: PathBuf, source: io::Error },
    /// A file-system or process operation failed.
    #[error("{context}: {source}")]
    Io { context: String, source: io::Error },
    /// A state file could not be read back.
    #[error("corrupt state file {path}: {message}")]
    Corrupt { path: PathBuf, message: String },
    /// Waiting for the shim or a process took too long.
    #[error("timed out: {0}")]
    Timeout(String),
}

impl RuntimeError {
    /// Whether this error is the container's own fault at start (bad command, bad
    /// mounts...), which the kubelet reports in the container status as `StartError`,
    /// rather than a node-side failure.
    pub fn is_start_error(&self) -> bool {
        matches!(self, RuntimeError::Exec(_) | RuntimeError::Start(_))
    }

    pub(crate) fn io(context: impl Into<String>, source: io::Error) -> Self {
        RuntimeError::Io {
            context: context.into(),
            source,
        }
    }

    pub(crate) fn at(path: &Path, what: &str) -> impl FnOnce(io::Error) -> Self {
        let context = format!("{what} {}", path.display());
        move |source| RuntimeError::Io { context, source }
    }
}
