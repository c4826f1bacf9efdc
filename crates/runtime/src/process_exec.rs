//! Running a process in a running container ([`Runtime::exec`], [`Runtime::exec_sync`]),
//! for exec probes, lifecycle hooks and `kubectl exec`.
//!
//! The caller never forks: it spawns the exec helper (the shim binary in `exec` mode, see
//! the `tenant` module) as a child with a socket pair on its stdin, hands it the process's
//! stdio over that socket and reads back the PID and, later, the exit. Closing the socket
//! (dropping the [`ExecProcess`]) kills the process.

use std::fs::{File, OpenOptions};
use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::socket::{AddressFamily, SockFlag, SockType, socketpair};
use serde::{Deserialize, Serialize};

use crate::error::RuntimeError;
use crate::runtime::Runtime;
use crate::state;
use crate::tenant::{ExecControl, ExecReport, recv_message, send_message};
use crate::types::{ContainerState, User};

/// How long the helper may take to start the process.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a killed helper may take to go away before it is SIGKILLed itself.
const KILL_GRACE: Duration = Duration::from_secs(5);
/// Most output [`Runtime::exec_sync`] keeps per stream; the rest is read and dropped.
pub const EXEC_SYNC_MAX_OUTPUT: usize = 16 << 20;

/// A process to run in a container.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecRequest {
    /// The command and its arguments, resolved in the container's `PATH`.
    pub args: Vec<String>,
    /// `NAME=value` entries added to (and overriding) the container's environment.
    pub env: Vec<String>,
    /// Working directory; the container's when `None`.
    pub cwd: Option<String>,
    /// User and groups; the container's when `None`.
    pub user: Option<User>,
    /// Run on a new pseudo-terminal ([`ExecProcess::take_pty`], [`ExecProcess::resize`])
    /// instead of pipes.
    pub tty: bool,
    /// Give the process a stdin pipe ([`ExecProcess::take_stdin`]); `/dev/null` otherwise.
    pub stdin: bool,
}

/// How an exec'd process ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExecExit {
    /// The exit code, or 128 + signal when killed by a signal.
    pub exit_code: i32,
    pub signal: Option<i32>,
}

/// What [`Runtime::exec_sync`] collected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExecOutput {
    pub exit_code: i32,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

/// A running exec'd process. Dropping it kills the process (and its process group).
#[derive(Debug)]
pub struct ExecProcess {
    pid: u32,
    helper: Child,
    control: OwnedFd,
    stdin: Option<File>,
    stdout: Option<File>,
    stderr: Option<File>,
    pty: Option<File>,
    exit: Option<ExecExit>,
}

impl ExecProcess {
    /// Host PID of the process.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The write end of the process's stdin (with `stdin: true` and no TTY). Dropping it
    /// closes the process's stdin.
    pub fn take_stdin(&mut self) -> Option<File> {
        self.stdin.take()
    }

    /// The read end of the process's stdout (without TTY).
    pub fn take_stdout(&mut self) -> Option<File> {
        self.stdout.take()
    }

    /// The read end of the process's stderr (without TTY).
    pub fn take_stderr(&mut self) -> Option<File> {
        self.stderr.take()
    }

    /// The pseudo-terminal's master (with TTY): read the output, write the input.
    pub fn take_pty(&mut self) -> Option<File> {
        self.pty.take()
    }

    /// Sets the terminal's window size (`TIOCSWINSZ`; the process gets SIGWINCH). Needs the
    /// master, so call it before [`ExecProcess::take_pty`] or pass the master to
    /// [`resize_pty`].
    pub fn resize(&self, rows: u16, cols: u16) -> Result<(), RuntimeError> {
        let pty = self
            .pty
            .as_ref()
            .ok_or_else(|| RuntimeError::Shim("exec process has no terminal (or it was taken)".into()))?;
        resize_pty(pty, rows, cols)
    }

    /// SIGKILLs the process and its process group. Idempotent; [`ExecProcess::wait`] then
    /// reports the kill.
    pub fn kill(&mut self) -> Result<(), RuntimeError> {
        if self.exit.is_some() {
            return Ok(());
        }
        match send_message(self.control.as_raw_fd(), &ExecControl::Kill, &[]) {
            Ok(()) => Ok(()),
            // The helper is gone already: the process was killed or has exited.
            Err(e) if e.raw_os_error() == Some(libc::EPIPE) || e.raw_os_error() == Some(libc::ECONNRESET) => Ok(()),
            Err(e) => Err(RuntimeError::io("sending kill to the exec helper", e)),
        }
    }

    /// Waits for the process to exit.
    pub fn wait(&mut self) -> Result<ExecExit, RuntimeError> {
        loop {
            if let Some(exit) = self.wait_timeout(Duration::from_secs(3600))? {
                return Ok(exit);
            }
        }
    }

    /// Waits up to `timeout` for the process to exit; `Ok(None)` if it is still running.
    pub fn wait_timeout(&mut self, timeout: Duration) -> Result<Option<ExecExit>, RuntimeError> {
        if let Some(exit) = self.exit {
            return Ok(Some(exit));
        }
        if !poll_readable(self.control.as_raw_fd(), timeout)? {
            return Ok(None);
        }
        let exit = match recv_message::<ExecReport>(self.control.as_raw_fd()) {
            Ok(Some((ExecReport::Exited { exit_code, signal }, _))) => ExecExit { exit_code, signal },
            Ok(Some((other, _))) => return Err(RuntimeError::Shim(format!("unexpected exec report {other:?}"))),
            // The helper died without a report: its own status is the best we know.
            Ok(None) | Err(_) => {
                let status = self
                    .helper
                    .wait()
                    .map_err(|e| RuntimeError::io("waiting for the exec helper", e))?;
                return Err(RuntimeError::Shim(format!("exec helper died: {status}")));
            }
        };
        self.helper
            .wait()
            .map_err(|e| RuntimeError::io("waiting for the exec helper", e))?;
        self.exit = Some(exit);
        Ok(Some(exit))
    }
}

impl Drop for ExecProcess {
    fn drop(&mut self) {
        if self.exit.is_some() {
            return;
        }
        let _ = self.kill();
        let deadline = Instant::now() + KILL_GRACE;
        loop {
            match self.helper.try_wait() {
                Ok(Some(_)) | Err(_) => return,
                Ok(None) if Instant::now() >= deadline => {
                    let _ = self.helper.kill();
                    let _ = self.helper.wait();
                    return;
                }
                Ok(None) => {
                    let _ = poll_readable(self.control.as_raw_fd(), Duration::from_millis(5));
                    let _ = recv_nonblocking(self.control.as_raw_fd());
                }
            }
        }
    }
}

/// Sets a pseudo-terminal's window size.
pub fn resize_pty(pty: &File, rows: u16, cols: u16) -> Result<(), RuntimeError> {
    let size = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads one winsize from a valid pointer.
    if unsafe { libc::ioctl(pty.as_raw_fd(), libc::TIOCSWINSZ, &size) } < 0 {
        return Err(RuntimeError::io("TIOCSWINSZ", std::io::Error::last_os_error()));
    }
    Ok(())
}

impl Runtime {
    /// Starts a process inside a running container: its namespaces, cgroup, capabilities,
    /// user (unless overridden) and environment (plus `request.env`). Returns once the
    /// command has been exec'd; [`RuntimeError::Exec`] when it cannot be (upstream's
    /// wording), [`RuntimeError::NotRunning`] when the container is not running.
    pub fn exec(&self, id: &str, request: &ExecRequest) -> Result<ExecProcess, RuntimeError> {
        match self.container_state(id)? {
            ContainerState::Running { .. } => {}
            _ => return Err(RuntimeError::NotRunning(id.to_owned())),
        }
        if request.args.is_empty() {
            return Err(RuntimeError::Spec("no command given".into()));
        }
        let dir = self.container_dir(id);
        let (ours, theirs) = socketpair(AddressFamily::Unix, SockType::SeqPacket, None, SockFlag::SOCK_CLOEXEC)
            .map_err(|e| RuntimeError::io("socketpair", e.into()))?;
        let log_path = dir.join(state::SHIM_LOG);
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(RuntimeError::at(&log_path, "open"))?;
        let shim = self.shim_command();
        let helper = Command::new(&shim.program)
            .args(&shim.args)
            .arg("exec")
            .arg(&dir)
            .current_dir("/")
            .stdin(Stdio::from(theirs))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| RuntimeError::io(format!("spawn exec helper {}", shim.program.display()), e))?;
        let mut process = ExecProcess {
            pid: 0,
            helper,
            control: ours,
            stdin: None,
            stdout: None,
            stderr: None,
            pty: None,
            exit: None,
        };
        let theirs: [OwnedFd; 3] = if request.tty {
            let (master, slave) = open_pty()?;
            process.pty = Some(master);
            let slave_out = slave.try_clone().map_err(|e| RuntimeError::io("dup pty", e))?;
            let slave_err = slave.try_clone().map_err(|e| RuntimeError::io("dup pty", e))?;
            [slave.into(), slave_out.into(), slave_err.into()]
        } else {
            let stdin: OwnedFd = if request.stdin {
                let (r, w) = crate::shim::pipe().map_err(|e| RuntimeError::io("pipe", e))?;
                process.stdin = Some(File::from(w));
                r
            } else {
                File::open("/dev/null")
                    .map_err(|e| RuntimeError::io("open /dev/null", e))?
                    .into()
            };
            let (out_r, out_w) = crate::shim::pipe().map_err(|e| RuntimeError::io("pipe", e))?;
            let (err_r, err_w) = crate::shim::pipe().map_err(|e| RuntimeError::io("pipe", e))?;
            process.stdout = Some(File::from(out_r));
            process.stderr = Some(File::from(err_r));
            [stdin, out_w, err_w]
        };
        let fds: Vec<RawFd> = theirs.iter().map(|f| f.as_raw_fd()).collect();
        send_message(process.control.as_raw_fd(), &ExecControl::Start(request.clone()), &fds)
            .map_err(|e| RuntimeError::io("sending the exec request", e))?;
        drop(theirs);
        if !poll_readable(process.control.as_raw_fd(), START_TIMEOUT)? {
            return Err(RuntimeError::Timeout(format!("starting exec in {id}")));
        }
        match recv_message::<ExecReport>(process.control.as_raw_fd()) {
            Ok(Some((ExecReport::Started { pid }, _))) => {
                process.pid = pid;
                Ok(process)
            }
            Ok(Some((ExecReport::NotRunning, _))) => Err(RuntimeError::NotRunning(id.to_owned())),
            Ok(Some((ExecReport::ExecFailed(message), _))) => Err(RuntimeError::Exec(message)),
            Ok(Some((ExecReport::Failed(message), _))) => Err(RuntimeError::Shim(format!("exec: {message}"))),
            Ok(Some((other, _))) => Err(RuntimeError::Shim(format!("unexpected exec report {other:?}"))),
            Ok(None) | Err(_) => {
                let log = std::fs::read_to_string(&log_path).unwrap_or_default();
                let tail: String = log.lines().rev().take(5).collect::<Vec<_>>().join("; ");
                Err(RuntimeError::Shim(format!(
                    "exec helper exited without a status: {tail}"
                )))
            }
        }
    }

    /// Runs a command in a running container to completion, collecting its output (for
    /// exec probes and hooks). When `timeout` passes first, the process is killed and the
    /// result is [`RuntimeError::Timeout`]. Output beyond [`EXEC_SYNC_MAX_OUTPUT`] per
    /// stream is dropped.
    pub fn exec_sync(&self, id: &str, args: &[String], timeout: Duration) -> Result<ExecOutput, RuntimeError> {
        let deadline = Instant::now() + timeout;
        let request = ExecRequest {
            args: args.to_vec(),
            ..Default::default()
        };
        let mut process = self.exec(id, &request)?;
        let mut streams = [(process.take_stdout(), Vec::new()), (process.take_stderr(), Vec::new())];
        let mut buf = vec![0u8; 64 * 1024];
        let exit = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                process.kill()?;
                process.wait()?;
                return Err(RuntimeError::Timeout(format!(
                    "command {args:?} in container {id} timed out after {timeout:?}"
                )));
            }
            let mut pollfds: Vec<libc::pollfd> = streams
                .iter()
                .map(|(file, _)| libc::pollfd {
                    fd: file.as_ref().map_or(-1, |f| f.as_raw_fd()),
                    events: libc::POLLIN,
                    revents: 0,
                })
                .collect();
            pollfds.push(libc::pollfd {
                fd: process.control.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            });
            poll(&mut pollfds, left)?;
            for (i, (file, out)) in streams.iter_mut().enumerate() {
                if pollfds[i].revents != 0 {
                    read_some(file, out, &mut buf);
                }
            }
            if pollfds[2].revents != 0
                && let Some(exit) = process.wait_timeout(Duration::ZERO)?
            {
                break exit;
            }
        };
        // Everything the process wrote before exiting is in the pipes: drain without waiting
        // for EOF (a background child may hold the pipes open).
        for (file, out) in &mut streams {
            if let Some(f) = file.as_ref() {
                // SAFETY: fcntl on a descriptor we own.
                unsafe { libc::fcntl(f.as_raw_fd(), libc::F_SETFL, libc::O_NONBLOCK) };
            }
            while file.is_some() && read_some(file, out, &mut buf) {}
        }
        let [(_, stdout), (_, stderr)] = streams;
        Ok(ExecOutput {
            exit_code: exit.exit_code,
            stdout,
            stderr,
        })
    }
}

/// Reads once into `out` (up to the cap); closes the stream at EOF or error. Returns
/// whether something was read.
fn read_some(file: &mut Option<File>, out: &mut Vec<u8>, buf: &mut [u8]) -> bool {
    let Some(f) = file.as_mut() else {
        return false;
    };
    match f.read(buf) {
        Ok(0) => {
            *file = None;
            false
        }
        Ok(n) => {
            let room = EXEC_SYNC_MAX_OUTPUT.saturating_sub(out.len());
            out.extend_from_slice(&buf[..n.min(room)]);
            true
        }
        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => true,
        Err(_) => {
            *file = None;
            false
        }
    }
}

fn poll(pollfds: &mut [libc::pollfd], timeout: Duration) -> Result<usize, RuntimeError> {
    let millis = timeout.as_millis().min(i32::MAX as u128) as i32;
    // SAFETY: a valid array of pollfds of the given length.
    let n = unsafe { libc::poll(pollfds.as_mut_ptr(), pollfds.len() as libc::nfds_t, millis) };
    if n < 0 {
        let err = std::io::Error::last_os_error();
        if err.raw_os_error() == Some(libc::EINTR) {
            return Ok(0);
        }
        return Err(RuntimeError::io("poll", err));
    }
    Ok(n as usize)
}

/// Waits until `fd` is readable; false when `timeout` passed first.
pub(crate) fn poll_readable(fd: RawFd, timeout: Duration) -> Result<bool, RuntimeError> {
    let deadline = Instant::now() + timeout;
    loop {
        let mut pollfd = [libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        }];
        if poll(&mut pollfd, deadline.saturating_duration_since(Instant::now()))? > 0 {
            return Ok(true);
        }
        if Instant::now() >= deadline {
            return Ok(false);
        }
    }
}

/// Discards one pending message, if any.
fn recv_nonblocking(fd: RawFd) -> std::io::Result<()> {
    let mut buf = [0u8; 256];
    // SAFETY: recv into a valid buffer of the given size.
    unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), libc::MSG_DONTWAIT) };
    Ok(())
}

/// A new pseudo-terminal: (master, slave), both close-on-exec.
pub(crate) fn open_pty() -> Result<(File, File), RuntimeError> {
    let err = |what: &str| RuntimeError::io(what.to_owned(), std::io::Error::last_os_error());
    // SAFETY: posix_openpt/grantpt/unlockpt/ptsname_r on the descriptor we just opened, with
    // a valid buffer for the name.
    unsafe {
        let master = libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC);
        if master < 0 {
            return Err(err("posix_openpt"));
        }
        let master = File::from_raw_fd(master);
        if libc::grantpt(master.as_raw_fd()) != 0 || libc::unlockpt(master.as_raw_fd()) != 0 {
            return Err(err("unlockpt"));
        }
        let mut name = [0 as libc::c_char; 128];
        if libc::ptsname_r(master.as_raw_fd(), name.as_mut_ptr(), name.len()) != 0 {
            return Err(err("ptsname"));
        }
        let slave = libc::open(name.as_ptr(), libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC);
        if slave < 0 {
            return Err(err("open pty slave"));
        }
        Ok((master, File::from_raw_fd(slave)))
    }
}
