//! The exec helper: `runtime-shim exec <container state dir>`, a short-lived single-threaded
//! child of the runtime's caller that runs one process inside a running container with
//! libcontainer's tenant builder (all of the container's namespaces, its cgroup, its
//! capabilities, no_new_privs and mounts), then waits for it.
//!
//! It talks to [`crate::Runtime::exec`] over a `SOCK_SEQPACKET` socket pair on its fd 0: the
//! runtime sends one [`ExecControl::Start`] with the process's stdin, stdout and stderr as
//! `SCM_RIGHTS`; the helper answers [`ExecReport::Started`] (or why not), later
//! [`ExecReport::Exited`]. [`ExecControl::Kill`], or the runtime's end of the socket closing
//! (the handle dropped, the caller died), SIGKILLs the process's whole process group.

use std::collections::HashMap;
use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;

use libcontainer::container::builder::ContainerBuilder;
use libcontainer::container::{Container, ContainerStatus};
use libcontainer::syscall::syscall::SyscallType;
use nix::sys::socket::{ControlMessage, ControlMessageOwned, MsgFlags, recvmsg, sendmsg};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::exec::ExecReporter;
use crate::process_exec::ExecRequest;
use crate::state::{self, ShimConfig};
use crate::types::ContainerSpec;

/// Largest control message (an [`ExecRequest`] with its arguments and environment).
pub(crate) const MAX_MESSAGE: usize = 1 << 20;

/// Runtime → helper.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum ExecControl {
    /// Run this; the message carries stdin, stdout and stderr.
    Start(ExecRequest),
    /// SIGKILL the process (and its process group).
    Kill,
}

/// Helper → runtime.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum ExecReport {
    /// Running; host PID of the process.
    Started { pid: u32 },
    /// The container is not running (any more).
    NotRunning,
    /// The command could not be found or executed (upstream's wording).
    ExecFailed(String),
    /// Anything else that kept the process from starting.
    Failed(String),
    /// The process exited: its code, or 128 + signal.
    Exited { exit_code: i32, signal: Option<i32> },
}

/// Sends one JSON message with optional descriptors.
pub(crate) fn send_message<T: Serialize>(socket: RawFd, message: &T, fds: &[RawFd]) -> std::io::Result<()> {
    let bytes = serde_json::to_vec(message).map_err(std::io::Error::other)?;
    if bytes.len() > MAX_MESSAGE {
        return Err(std::io::Error::other("exec control message too large"));
    }
    let iov = [IoSlice::new(&bytes)];
    let rights = [ControlMessage::ScmRights(fds)];
    let cmsgs: &[ControlMessage<'_>] = if fds.is_empty() { &[] } else { &rights };
    loop {
        match sendmsg::<()>(socket, &iov, cmsgs, MsgFlags::MSG_NOSIGNAL, None) {
            Ok(_) => return Ok(()),
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

/// Receives one JSON message and the descriptors that came with it (close-on-exec).
/// `Ok(None)` at end of stream.
pub(crate) fn recv_message<T: DeserializeOwned>(socket: RawFd) -> std::io::Result<Option<(T, Vec<OwnedFd>)>> {
    let mut buf = vec![0u8; MAX_MESSAGE];
    let mut cmsg = nix::cmsg_space!([RawFd; 3]);
    let (bytes, fds) = loop {
        let mut iov = [IoSliceMut::new(&mut buf)];
        match recvmsg::<()>(socket, &mut iov, Some(&mut cmsg), MsgFlags::MSG_CMSG_CLOEXEC) {
            Ok(msg) => {
                let mut fds = Vec::new();
                for c in msg.cmsgs().map_err(std::io::Error::from)? {
                    if let ControlMessageOwned::ScmRights(received) = c {
                        // SAFETY: the kernel just installed these descriptors for us.
                        fds.extend(received.into_iter().map(|fd| unsafe { OwnedFd::from_raw_fd(fd) }));
                    }
                }
                break (msg.bytes, fds);
            }
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        }
    };
    if bytes == 0 {
        return Ok(None);
    }
    let message = serde_json::from_slice(&buf[..bytes]).map_err(std::io::Error::other)?;
    Ok(Some((message, fds)))
}

/// Runs the helper; fd 0 is the control socket. Returns the process exit code.
pub(crate) fn run(dir: &Path) -> i32 {
    // SAFETY: duplicating fd 0 (the control socket) to a fresh close-on-exec descriptor.
    let raw = unsafe { libc::fcntl(0, libc::F_DUPFD_CLOEXEC, 3) };
    if raw < 0 {
        tracing::error!("exec helper: no control socket: {}", std::io::Error::last_os_error());
        return 1;
    }
    // SAFETY: fcntl returned a descriptor nothing else owns.
    let control = unsafe { OwnedFd::from_raw_fd(raw) };
    crate::shim::redirect_to_null(0);
    let socket = control.as_raw_fd();
    let report = |r: &ExecReport| {
        if let Err(e) = send_message(socket, r, &[]) {
            tracing::error!("exec helper: reporting {r:?}: {e}");
        }
    };
    let (request, stdio) = match recv_message::<ExecControl>(socket) {
        Ok(Some((ExecControl::Start(request), fds))) if fds.len() == 3 => (request, fds),
        Ok(Some(_)) => {
            report(&ExecReport::Failed("bad exec request".into()));
            return 1;
        }
        Ok(None) => return 1,
        Err(e) => {
            report(&ExecReport::Failed(format!("reading exec request: {e}")));
            return 1;
        }
    };
    // The process inherits our 0, 1 and 2; our diagnostics go to the log (see shim_main).
    for (target, fd) in stdio.iter().enumerate() {
        // SAFETY: dup2 of a received descriptor onto a standard one.
        unsafe { libc::dup2(fd.as_raw_fd(), target as RawFd) };
    }
    drop(stdio);
    let pid = match start(dir, &request) {
        Ok(pid) => pid,
        Err(r) => {
            report(&r);
            return 1;
        }
    };
    report(&ExecReport::Started { pid: pid as u32 });
    let (exit_code, signal) = supervise(socket, pid);
    report(&ExecReport::Exited { exit_code, signal });
    // Reap the intermediate process and anything else that was ours.
    // SAFETY: waitpid with a null status pointer.
    while unsafe { libc::waitpid(-1, std::ptr::null_mut(), libc::WNOHANG) } > 0 {}
    exit_code
}

fn start(dir: &Path, request: &ExecRequest) -> Result<libc::pid_t, ExecReport> {
    let failed = |what: &str, e: &dyn std::fmt::Display| ExecReport::Failed(format!("{what}: {e}"));
    let config: ShimConfig = state::read_json(&dir.join(state::SHIM_FILE))
        .map_err(|e| failed("reading shim.json", &e))?
        .ok_or(ExecReport::NotRunning)?;
    let spec: ContainerSpec = state::read_json(&dir.join(state::SPEC_FILE))
        .map_err(|e| failed("reading spec.json", &e))?
        .ok_or(ExecReport::NotRunning)?;
    if request.args.is_empty() {
        return Err(ExecReport::Failed("no command given".into()));
    }
    let lc_dir = config.libcontainer_root.join(&config.id);
    match Container::load(lc_dir) {
        Ok(container) if container.status() == ContainerStatus::Running => {}
        _ => return Err(ExecReport::NotRunning),
    }
    let user = request.user.clone().unwrap_or(spec.user);
    let cwd = match request.cwd.as_deref() {
        Some(cwd) if !cwd.is_empty() => cwd.to_owned(),
        _ if spec.cwd.is_empty() => "/".to_owned(),
        _ => spec.cwd.clone(),
    };
    let mut env = HashMap::new();
    for entry in &request.env {
        let (name, value) = entry.split_once('=').unwrap_or((entry, ""));
        env.insert(name.to_owned(), value.to_owned());
    }
    let (exec_r, exec_w) = crate::shim::pipe().map_err(|e| failed("pipe", &e))?;
    let built = ContainerBuilder::new(config.id.clone(), SyscallType::Linux)
        .with_root_path(&config.libcontainer_root)
        .map(|b| {
            b.with_executor(ExecReporter::tenant(exec_w.as_raw_fd(), request.tty))
                .as_tenant()
                .with_container_args(request.args.clone())
                .with_env(env)
                .with_cwd(Some(cwd))
                .with_user(Some(user.uid))
                .with_group(Some(user.gid))
                .with_additional_gids(user.additional_gids.clone())
                .with_detach(false)
                .build()
        });
    drop(exec_w);
    let exec_error = crate::shim::read_exec_error(exec_r);
    match built {
        Ok(Ok(pid)) => match exec_error {
            // The executor failed after the builder returned: reap it and report why.
            Some(message) => {
                // SAFETY: waitpid on our child with a null status pointer.
                unsafe { libc::waitpid(pid.as_raw(), std::ptr::null_mut(), 0) };
                Err(ExecReport::ExecFailed(message))
            }
            None => Ok(pid.as_raw()),
        },
        Ok(Err(e)) | Err(e) => Err(match exec_error {
            Some(message) => ExecReport::ExecFailed(message),
            None => ExecReport::Failed(crate::shim::error_chain(&e)),
        }),
    }
}

/// Waits for the process while watching the control socket. Returns (exit code, signal).
fn supervise(socket: RawFd, pid: libc::pid_t) -> (i32, Option<i32>) {
    // SAFETY: pidfd_open takes two integers.
    let raw = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) } as RawFd;
    // SAFETY: a fresh descriptor when non-negative.
    let pidfd = (raw >= 0).then(|| unsafe { OwnedFd::from_raw_fd(raw) });
    let mut control_open = true;
    loop {
        let mut pollfds = [
            libc::pollfd {
                fd: if control_open { socket } else { -1 },
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: pidfd.as_ref().map_or(-1, |f| f.as_raw_fd()),
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        let timeout = if pidfd.is_some() { -1 } else { 50 };
        // SAFETY: a valid array of two pollfds.
        let n = unsafe { libc::poll(pollfds.as_mut_ptr(), 2, timeout) };
        if n < 0 && std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            break;
        }
        if control_open && pollfds[0].revents != 0 {
            match recv_message::<ExecControl>(socket) {
                Ok(Some((ExecControl::Kill, _))) => kill_group(pid),
                Ok(Some(_)) => {}
                // The runtime's handle is gone: nobody can see the process any more.
                Ok(None) | Err(_) => {
                    control_open = false;
                    kill_group(pid);
                }
            }
        }
        let mut status = 0;
        // SAFETY: waitpid on our child with a valid status pointer.
        let rc = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        if rc == pid {
            return decode(status);
        }
        if rc < 0 {
            return (255, None);
        }
    }
    let mut status = 0;
    // SAFETY: blocking wait on our child with a valid status pointer.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    decode(status)
}

fn decode(status: i32) -> (i32, Option<i32>) {
    if libc::WIFSIGNALED(status) {
        let signal = libc::WTERMSIG(status);
        (128 + signal, Some(signal))
    } else {
        (libc::WEXITSTATUS(status), None)
    }
}

/// SIGKILLs the process group the executor made the process lead, and the process.
fn kill_group(pid: libc::pid_t) {
    // SAFETY: kill(2) without memory arguments; the pid is our unreaped child, so neither
    // it nor its group id can have been reused.
    unsafe {
        libc::kill(-pid, libc::SIGKILL);
        libc::kill(pid, libc::SIGKILL);
    }
}
