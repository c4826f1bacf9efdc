//! Records of sandboxes and containers under the state root (a tmpfs, see `volatile`), and
//! process liveness checks that are safe against PID reuse.
//!
//! Layout under the state root:
//! - `sandboxes/<id>/sandbox.json`: [`crate::Sandbox`] plus the holder's start time.
//! - `containers/<id>/spec.json`: the request; `config.json`: the OCI spec (the directory
//!   is the container's OCI bundle);
//!   `shim.json`: what the shim needs; `started.json` / `exit.json`: written by the shim;
//!   `shim.log`: the shim's own diagnostics; `attach.sock`: the shim's socket for attach
//!   clients while the container runs.
//! - `lc/<id>`: libcontainer's state while the container exists.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use jiff::Timestamp;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::RuntimeError;

/// A process identified by PID and kernel start time (field 22 of `/proc/<pid>/stat`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ProcId {
    pub(crate) pid: u32,
    pub(crate) start_ticks: u64,
}

impl ProcId {
    /// Identifies a live process now.
    pub(crate) fn of(pid: u32) -> Option<ProcId> {
        proc_start_ticks(pid).map(|start_ticks| ProcId { pid, start_ticks })
    }

    /// The same process (not a reuse of its PID) still exists, zombie or not.
    pub(crate) fn is_alive(&self) -> bool {
        proc_start_ticks(self.pid) == Some(self.start_ticks)
    }

    /// The same process exists and is not a zombie waiting to be reaped (a finished shim is
    /// re-parented to init, which may reap it late).
    pub(crate) fn is_running(&self) -> bool {
        proc_stat(self.pid).is_some_and(|(state, ticks)| ticks == self.start_ticks && !matches!(state, 'Z' | 'X'))
    }

    /// Sends `signal` if the process is still the one recorded. `Ok(false)` when gone.
    pub(crate) fn signal(&self, signal: i32) -> Result<bool, RuntimeError> {
        if !self.is_alive() {
            return Ok(false);
        }
        let pid = i32::try_from(self.pid).map_err(|_| RuntimeError::Shim("bad pid".into()))?;
        // SAFETY: kill(2) has no memory-safety preconditions.
        let rc = unsafe { libc::kill(pid, signal) };
        if rc == 0 {
            return Ok(true);
        }
        let err = std::io::Error::last_os_error();
        if err.raw_os_error() == Some(libc::ESRCH) {
            Ok(false)
        } else {
            Err(RuntimeError::io(format!("kill {pid}"), err))
        }
    }
}

/// Start time of a process in clock ticks since boot, `None` if it does not exist.
pub(crate) fn proc_start_ticks(pid: u32) -> Option<u64> {
    proc_stat(pid).map(|(_, ticks)| ticks)
}

/// State letter and start time of a process.
fn proc_stat(pid: u32) -> Option<(char, u64)> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may contain spaces and parentheses: skip past the last ')'.
    let mut rest = stat[stat.rfind(')')? + 1..].split_whitespace();
    // rest starts with "state ppid ...": start time is field 22 overall, 20th here.
    let state = rest.next()?.chars().next()?;
    Some((state, rest.nth(18)?.parse().ok()?))
}

/// Recorded by the shim once the container's process has been started.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct StartedRecord {
    pub(crate) process: ProcId,
    pub(crate) shim: ProcId,
    pub(crate) started_at: Timestamp,
}

/// Recorded by the shim when the container's init process has exited.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct ExitRecord {
    pub(crate) exit_code: i32,
    pub(crate) signal: Option<i32>,
    pub(crate) oom_killed: bool,
    pub(crate) finished_at: Timestamp,
}

/// What the runtime hands the container shim.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct ShimConfig {
    pub(crate) id: String,
    pub(crate) bundle: PathBuf,
    pub(crate) libcontainer_root: PathBuf,
    pub(crate) log_path: PathBuf,
    /// `memory.oom_control` (v1) or `memory.events` (v2) of the container cgroup.
    pub(crate) oom_file: Option<PathBuf>,
    /// The container cgroup, relative to the hierarchy roots.
    pub(crate) cgroup_path: String,
    /// The container cgroup's directory in every hierarchy, which the shim removes itself
    /// once the container has exited (empty in older records: libcontainer deletes then).
    #[serde(default)]
    pub(crate) cgroup_dirs: Vec<PathBuf>,
    /// Log rotation (absent in records written before rotation existed).
    #[serde(default)]
    pub(crate) log_rotation: Option<crate::logs::LogRotation>,
    /// The container's stdio as [`crate::ContainerSpec`] asks for it (absent in records
    /// written before attach existed: no stdin, no terminal).
    #[serde(default)]
    pub(crate) stdin: bool,
    #[serde(default)]
    pub(crate) stdin_once: bool,
    #[serde(default)]
    pub(crate) tty: bool,
}

/// The sandbox record.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct SandboxRecord {
    pub(crate) sandbox: crate::Sandbox,
    pub(crate) holder: ProcId,
}

/// The one line a shim writes on its status pipe.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum ShimStatus {
    Started { pid: u32 },
    ExecFailed(String),
    StartFailed(String),
    Failed(String),
}

pub(crate) const SPEC_FILE: &str = "spec.json";
pub(crate) const SHIM_FILE: &str = "shim.json";
pub(crate) const STARTED_FILE: &str = "started.json";
pub(crate) const EXIT_FILE: &str = "exit.json";
pub(crate) const SANDBOX_FILE: &str = "sandbox.json";
pub(crate) const SHIM_LOG: &str = "shim.log";
/// The shim's unix socket for attach clients, in the container's state directory.
pub(crate) const ATTACH_SOCKET: &str = "attach.sock";

/// Writes `value` as JSON to `path` atomically (temp file, rename).
///
/// No fsync: the records must survive a crash of the kubelet or a shim, which the rename
/// alone guarantees (readers see the old file or the new one, never half of one). A
/// machine crash ends every container and holder anyway, so their records are stale after
/// a reboot whatever their durability; fsyncs were 4 per container on the start path and
/// cost milliseconds each on a busy disk.
pub(crate) fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<(), RuntimeError> {
    let bytes = serde_json::to_vec(value).map_err(|e| RuntimeError::Corrupt {
        path: path.to_owned(),
        message: e.to_string(),
    })?;
    let tmp = path.with_extension("tmp");
    let mut file = fs::File::create(&tmp).map_err(RuntimeError::at(&tmp, "create"))?;
    file.write_all(&bytes).map_err(RuntimeError::at(&tmp, "write"))?;
    fs::rename(&tmp, path).map_err(RuntimeError::at(path, "rename to"))
}

/// Reads a JSON record; `Ok(None)` when the file does not exist.
pub(crate) fn read_json<T: DeserializeOwned>(path: &Path) -> Result<Option<T>, RuntimeError> {
    match fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| RuntimeError::Corrupt {
                path: path.to_owned(),
                message: e.to_string(),
            }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(RuntimeError::io(format!("read {}", path.display()), e)),
    }
}

/// Ids become directory and cgroup names: keep them to a safe alphabet.
pub(crate) fn validate_id(id: &str) -> Result<(), RuntimeError> {
    let ok = !id.is_empty()
        && id.len() <= 128
        && !id.starts_with('.')
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(RuntimeError::InvalidId(id.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_start_ticks_are_stable_and_pid_reuse_is_detected() {
        let me = ProcId::of(std::process::id()).expect("self exists");
        assert!(me.is_alive());
        assert!(me.is_running());
        let other = ProcId {
            pid: me.pid,
            start_ticks: me.start_ticks + 1,
        };
        assert!(!other.is_alive());
    }

    #[test]
    fn ids_are_validated() {
        assert!(validate_id("abc-1.2_3").is_ok());
        for bad in ["", ".hidden", "a/b", "a b", &"x".repeat(129)] {
            assert!(validate_id(bad).is_err(), "{bad:?}");
        }
    }
}
