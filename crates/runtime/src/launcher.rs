//! The shim launcher: one small single-threaded process per [`crate::Runtime`]
//! (`runtime-shim launcher`, started on first use) that forks container shims and sandbox
//! holders on request, so that starting one costs a `fork` of an idle process instead of an
//! `exec` of the shim binary (for the kubelet, its own 46 MB executable: mapping it, dynamic
//! linking, tens of thousands of relocations and the page faults that follow) plus the
//! detaching fork.
//!
//! The runtime talks to it over a `SOCK_SEQPACKET` socket pair on the launcher's fd 0: one
//! [`LaunchRequest`] per shim, with the shim's status pipe and log file as `SCM_RIGHTS`; the
//! launcher forks, the child becomes the shim exactly as if it had been exec'd (status pipe on
//! fd 1, log on fd 2, own session), and the launcher answers [`LaunchReply`] with its PID. The
//! launcher holds nothing else: it ignores `SIGCHLD` so its children are reaped by the kernel,
//! and it exits when the runtime's end of the socket closes (the kubelet exited or was
//! killed). Shims it forked are unaffected by its exit: they were never tied to it beyond
//! being its children, just as exec'd shims are re-parented away from the kubelet.

use std::fs::File;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::socket::{AddressFamily, SockFlag, SockType, socketpair};
use serde::{Deserialize, Serialize};

use crate::error::RuntimeError;
use crate::process_exec::poll_readable;
use crate::runtime::ShimCommand;
use crate::tenant::{recv_message, send_message};

/// How long the launcher may take to acknowledge a request (a fork).
const REPLY_TIMEOUT: Duration = Duration::from_secs(10);

/// Runtime → launcher: fork a shim in `mode` (`container` or `pause`) for `dir`; the status
/// pipe's write end and the shim log come along as descriptors.
#[derive(Debug, Serialize, Deserialize)]
struct LaunchRequest {
    mode: String,
    dir: PathBuf,
}

/// Launcher → runtime.
#[derive(Debug, Serialize, Deserialize)]
enum LaunchReply {
    Forked { pid: u32 },
    Failed(String),
}

/// The runtime's handle on its launcher process.
pub(crate) struct Launcher {
    child: Child,
    socket: OwnedFd,
}

impl std::fmt::Debug for Launcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Launcher").field("pid", &self.child.id()).finish()
    }
}

impl Launcher {
    /// Starts `shim... launcher STATE_ROOT`. The state root is only there to be seen: the
    /// shims and holders it forks keep its command line, and whoever reclaims a node finds
    /// its processes by the root directory in their command lines (`reclaim`).
    pub(crate) fn start(shim: &ShimCommand, state_root: &Path) -> Result<Launcher, RuntimeError> {
        let (ours, theirs) = socketpair(AddressFamily::Unix, SockType::SeqPacket, None, SockFlag::SOCK_CLOEXEC)
            .map_err(|e| RuntimeError::io("socketpair", e.into()))?;
        let child = Command::new(&shim.program)
            .args(&shim.args)
            .arg("launcher")
            .arg(state_root)
            .current_dir("/")
            .stdin(Stdio::from(theirs))
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| RuntimeError::io(format!("spawn shim launcher {}", shim.program.display()), e))?;
        Ok(Launcher { child, socket: ours })
    }

    /// Has the launcher fork a shim whose stdout is `status` and stderr `log`. Returns once
    /// the shim exists; its report then comes on the status pipe.
    pub(crate) fn launch(&self, mode: &str, dir: &Path, status: &OwnedFd, log: &File) -> Result<u32, RuntimeError> {
        let request = LaunchRequest {
            mode: mode.to_owned(),
            dir: dir.to_owned(),
        };
        let socket = self.socket.as_raw_fd();
        send_message(socket, &request, &[status.as_raw_fd(), log.as_raw_fd()])
            .map_err(|e| RuntimeError::io("sending to the shim launcher", e))?;
        if !poll_readable(socket, REPLY_TIMEOUT)? {
            return Err(RuntimeError::Timeout("waiting for the shim launcher".into()));
        }
        match recv_message::<LaunchReply>(socket) {
            Ok(Some((LaunchReply::Forked { pid }, _))) => Ok(pid),
            Ok(Some((LaunchReply::Failed(message), _))) => Err(RuntimeError::Shim(format!("launcher: {message}"))),
            Ok(None) => Err(RuntimeError::Shim("the shim launcher exited".into())),
            Err(e) => Err(RuntimeError::io("reading from the shim launcher", e)),
        }
    }
}

impl Drop for Launcher {
    /// Closing our end makes the launcher exit; reap it (killing it if it lingers).
    fn drop(&mut self) {
        // SAFETY: shutting down a socket we own; the descriptor stays valid until drop.
        unsafe {
            libc::shutdown(self.socket.as_raw_fd(), libc::SHUT_RDWR);
        }
        let deadline = Instant::now() + Duration::from_secs(1);
        loop {
            match self.child.try_wait() {
                Ok(Some(_)) | Err(_) => return,
                Ok(None) if Instant::now() >= deadline => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    return;
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(1)),
            }
        }
    }
}

/// The launcher process: serves requests on fd 0 until it closes. Must be called while the
/// process is single-threaded (it forks).
pub(crate) fn serve() -> i32 {
    // Children are reaped by the kernel; each child restores the default at once, since a
    // shim waits for its own children.
    // SAFETY: setting a signal disposition, no handler.
    unsafe {
        libc::signal(libc::SIGCHLD, libc::SIG_IGN);
    }
    loop {
        let (request, fds) = match recv_message::<LaunchRequest>(0) {
            Ok(Some(message)) => message,
            Ok(None) => return 0,
            Err(e) => {
                eprintln!("shim launcher: {e}");
                return 1;
            }
        };
        let reply = match (fds.as_slice(), request.mode.as_str()) {
            ([status, log], "container" | "pause") => fork_shim(&request, status, log),
            _ => LaunchReply::Failed(format!("bad request {request:?} with {} descriptors", fds.len())),
        };
        drop(fds);
        if let Err(e) = send_message(0, &reply, &[]) {
            eprintln!("shim launcher: replying: {e}");
            return 1;
        }
    }
}

fn fork_shim(request: &LaunchRequest, status: &OwnedFd, log: &OwnedFd) -> LaunchReply {
    // SAFETY: the launcher is single-threaded, so the child may run arbitrary code.
    match unsafe { libc::fork() } {
        -1 => LaunchReply::Failed(format!("fork: {}", std::io::Error::last_os_error())),
        0 => {
            // SAFETY: plain descriptor and signal syscalls in the fresh child.
            unsafe {
                libc::signal(libc::SIGCHLD, libc::SIG_DFL);
                libc::dup2(status.as_raw_fd(), 1);
                libc::dup2(log.as_raw_fd(), 2);
                // The originals would stay open for the shim's whole life (nothing execs).
                libc::close(status.as_raw_fd());
                libc::close(log.as_raw_fd());
                libc::setsid();
            }
            // fd 0 is the launcher's socket: the shim must not hold it.
            crate::shim::redirect_to_null(0);
            let code = crate::shim::run_detached(&request.mode, &request.dir);
            // SAFETY: ends the child without running the launcher's exit path.
            unsafe { libc::_exit(code) }
        }
        pid => LaunchReply::Forked { pid: pid as u32 },
    }
}
