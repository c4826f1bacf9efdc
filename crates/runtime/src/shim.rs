//! The per-container shim: a single-threaded process that creates the container with
//! libcontainer, reports the start on its status pipe, copies the container's output into
//! the CRI log file and to attach clients (see the `attach` module), waits for the container's init process as its child subreaper,
//! records the exit and deletes the libcontainer container.
//!
//! It runs detached from the kubelet (own session, re-parented away from it), so the
//! container, its logs and its exit record survive a `kill -9` of the kubelet.

use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};

use jiff::Timestamp;
use libcontainer::container::Container;
use libcontainer::container::builder::ContainerBuilder;
use libcontainer::syscall::syscall::SyscallType;

use crate::attach::{self, Hub};
use crate::cgroups;
use crate::exec::ExecReporter;
use crate::logs::{LineBuffer, RotatingLog, Stream};
use crate::pause;
use crate::state::{self, ExitRecord, ProcId, ShimConfig, ShimStatus, StartedRecord};
use crate::tenant;

/// Exit code recorded when the container could not be started (as upstream's StartError).
pub(crate) const START_FAILED_EXIT_CODE: i32 = 128;

/// Entry point of the shim binary, given the arguments after the shim sub-command:
/// `container <state dir>`, `pause <state dir>`, `exec <container state dir>` (the exec
/// helper) or `launcher` (see the `launcher` module). Must be called before any other
/// thread exists (libcontainer clones the calling process). Returns the process exit code.
pub fn shim_main(args: Vec<OsString>) -> i32 {
    let mode = args.first().and_then(|a| a.to_str()).unwrap_or_default().to_owned();
    if mode == "launcher" {
        return crate::launcher::serve();
    }
    let Some(dir) = args.get(1).map(PathBuf::from) else {
        eprintln!("usage: runtime-shim container|pause|exec STATE_DIR | launcher");
        return 2;
    };
    // The exec helper stays the caller's child (the caller waits for it and kills it);
    // container shims and sandbox holders detach: the invoking process returns at once (the
    // runtime reaps it), the child carries on in its own session, re-parented away.
    if mode != "exec" {
        // SAFETY: the shim is single-threaded here, so fork has no lock hazards.
        match unsafe { libc::fork() } {
            -1 => {
                eprintln!("fork: {}", std::io::Error::last_os_error());
                return 1;
            }
            0 => {}
            _ => return 0,
        }
        // SAFETY: plain syscalls without memory arguments.
        unsafe {
            libc::setsid();
        }
    }
    let code = run_detached(&mode, &dir);
    // SAFETY: ends the process without unwinding into the caller's main, which belongs to
    // the process that invoked the shim and has already returned in the parent.
    unsafe { libc::_exit(code) }
}

/// Runs the shim in `mode` for `dir`, with the status pipe on fd 1 and the shim log on
/// fd 2, in the process's own session (or as the exec helper). Returns the exit code.
pub(crate) fn run_detached(mode: &str, dir: &Path) -> i32 {
    // libcontainer reports its details through tracing: send them to the shim log (stderr
    // as we were started, kept on its own descriptor because the exec helper hands fd 2 to
    // the process it runs).
    // SAFETY: duplicating fd 2 to a fresh close-on-exec descriptor.
    let log_fd = unsafe { libc::fcntl(2, libc::F_DUPFD_CLOEXEC, 3) };
    if log_fd >= 0 {
        // SAFETY: fcntl returned a descriptor nothing else owns.
        let log = unsafe { File::from_raw_fd(log_fd) };
        let filter = tracing_subscriber::EnvFilter::try_from_env("KAJI_SHIM_LOG")
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("error"));
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_ansi(false)
            .with_writer(std::sync::Mutex::new(log))
            .try_init();
    }
    match mode {
        "container" => run_container(dir),
        "pause" => pause::run(dir),
        "exec" => tenant::run(dir),
        other => {
            eprintln!("unknown shim mode {other:?}");
            2
        }
    }
}

/// Writes the one status line on stdout (the runtime's pipe), then points stdout at
/// /dev/null so the runtime sees no more from us.
pub(crate) fn report(status: &ShimStatus) {
    let mut line = serde_json::to_vec(status).unwrap_or_default();
    line.push(b'\n');
    // SAFETY: fd 1 is open for the whole life of the process; ManuallyDrop keeps it open.
    let mut out = std::mem::ManuallyDrop::new(unsafe { File::from_raw_fd(1) });
    if let Err(e) = out.write_all(&line) {
        eprintln!("writing status: {e}");
    }
    redirect_to_null(1);
}

pub(crate) fn redirect_to_null(fd: RawFd) {
    if let Ok(null) = OpenOptions::new().read(true).write(true).open("/dev/null") {
        // SAFETY: dup2 onto a standard descriptor we own.
        unsafe {
            libc::dup2(null.as_raw_fd(), fd);
        }
    }
}

pub(crate) fn pipe() -> std::io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: fds is a valid 2-element array.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: pipe2 returned two fresh descriptors that nothing else owns.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

fn run_container(dir: &Path) -> i32 {
    let config: ShimConfig = match state::read_json(&dir.join(state::SHIM_FILE)) {
        Ok(Some(config)) => config,
        Ok(None) => return fail(dir, None, ShimStatus::Failed("shim.json missing".into())),
        Err(e) => return fail(dir, None, ShimStatus::Failed(e.to_string())),
    };
    // SAFETY: prctl with integer arguments only.
    unsafe {
        libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
    }
    match start(dir, &config) {
        Ok(started) => supervise(dir, &config, started),
        Err(status) => fail(dir, Some(&config), status),
    }
}

/// Records a failed start as an exit with code 128 and reports it.
fn fail(dir: &Path, config: Option<&ShimConfig>, status: ShimStatus) -> i32 {
    eprintln!("start failed: {status:?}");
    let finished_at = Timestamp::now();
    if let Some(config) = config {
        delete_container(config);
    }
    let record = ExitRecord {
        exit_code: START_FAILED_EXIT_CODE,
        signal: None,
        oom_killed: false,
        finished_at,
    };
    if let Err(e) = state::write_json(&dir.join(state::EXIT_FILE), &record) {
        eprintln!("recording exit: {e}");
    }
    report(&status);
    1
}

struct Started {
    pid: u32,
    /// stdout and stderr, or the terminal's master.
    outputs: Vec<(OwnedFd, Stream)>,
    hub: Hub,
    log: RotatingLog,
    exec_error: Option<String>,
}

fn start(dir: &Path, config: &ShimConfig) -> Result<Started, ShimStatus> {
    let failed = |what: &str, e: &dyn std::fmt::Display| ShimStatus::Failed(format!("{what}: {e}"));
    if let Some(parent) = config.log_path.parent() {
        fs::create_dir_all(parent).map_err(|e| failed("create log directory", &e))?;
    }
    let log = RotatingLog::open(&config.log_path, config.log_rotation).map_err(|e| failed("open log file", &e))?;
    let (stdio, ours) = attach::setup(config, dir).map_err(|e| failed("setting up stdio", &e))?;
    let (exec_r, exec_w) = pipe().map_err(|e| failed("pipe", &e))?;

    let built = ContainerBuilder::new(config.id.clone(), SyscallType::Linux)
        .with_root_path(&config.libcontainer_root)
        .map(|b| {
            b.with_executor(ExecReporter::new(exec_w.as_raw_fd(), config.tty))
                .with_stdin(stdio.stdin)
                .with_stdout(stdio.stdout)
                .with_stderr(stdio.stderr)
                .as_init(&config.bundle)
                .with_systemd(false)
                .build()
        });
    // Our copy of the write end must go so that reading sees EOF once the init process
    // has exec'd (the pipe is close-on-exec) or died.
    drop(exec_w);
    let mut container = match built {
        Ok(Ok(container)) => container,
        Ok(Err(e)) | Err(e) => {
            // The init process's own diagnostics went to the container's stderr.
            for (fd, _) in &ours.outputs {
                eprintln!("container output: {}", drain(fd));
            }
            return Err(match read_exec_error(exec_r) {
                Some(message) => ShimStatus::ExecFailed(message),
                None => ShimStatus::StartFailed(error_chain(&e)),
            });
        }
    };
    container
        .start()
        .map_err(|e| ShimStatus::StartFailed(error_chain(&e)))?;
    let pid = container
        .pid()
        .and_then(|p| u32::try_from(p.as_raw()).ok())
        .ok_or_else(|| ShimStatus::StartFailed("libcontainer recorded no pid".into()))?;
    let exec_error = read_exec_error(exec_r);
    Ok(Started {
        pid,
        outputs: ours.outputs,
        hub: ours.hub,
        log,
        exec_error,
    })
}

/// Reads what is buffered in a pipe without blocking.
fn drain(fd: &OwnedFd) -> String {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    // SAFETY: fcntl and read on a descriptor we own, into a valid buffer.
    unsafe {
        libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, libc::O_NONBLOCK);
        loop {
            let got = libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len());
            if got <= 0 {
                break;
            }
            out.extend_from_slice(&buf[..got as usize]);
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub(crate) fn read_exec_error(read_end: OwnedFd) -> Option<String> {
    let mut message = String::new();
    File::from(read_end).read_to_string(&mut message).ok()?;
    (!message.is_empty()).then_some(message)
}

pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut message = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        message.push_str(": ");
        message.push_str(&s.to_string());
        source = s.source();
    }
    message
}

fn supervise(dir: &Path, config: &ShimConfig, mut started: Started) -> i32 {
    let started_at = Timestamp::now();
    let process = ProcId::of(started.pid);
    let shim = ProcId::of(std::process::id());
    if let (Some(process), Some(shim)) = (process, shim) {
        let record = StartedRecord {
            process,
            shim,
            started_at,
        };
        if let Err(e) = state::write_json(&dir.join(state::STARTED_FILE), &record) {
            eprintln!("recording start: {e}");
        }
    }
    report(&match started.exec_error.take() {
        Some(message) => ShimStatus::ExecFailed(message),
        None => ShimStatus::Started { pid: started.pid },
    });

    let status = pump_until_exit(&mut started);
    started.hub.finish(dir);
    let (exit_code, signal) = if libc::WIFSIGNALED(status) {
        let signal = libc::WTERMSIG(status);
        (128 + signal, Some(signal))
    } else {
        (libc::WEXITSTATUS(status), None)
    };
    let finished_at = Timestamp::now();
    let oom_killed = config.oom_file.as_deref().is_some_and(|f| cgroups::oom_kills(f) > 0);
    // Clean up before recording the exit: once the exit is on disk, the container is
    // fully gone and `remove_container` has nothing to wait for.
    delete_container(config);
    let record = ExitRecord {
        exit_code,
        signal,
        oom_killed,
        finished_at,
    };
    if let Err(e) = state::write_json(&dir.join(state::EXIT_FILE), &record) {
        eprintln!("recording exit: {e}");
    }
    // Reap anything else that was re-parented to us.
    // SAFETY: waitpid with a null-free status pointer.
    while unsafe { libc::waitpid(-1, std::ptr::null_mut(), libc::WNOHANG) } > 0 {}
    0
}

/// Copies output to the log and attach clients, and serves those, until the init process
/// exits, then drains what is left. Returns the wait status.
fn pump_until_exit(started: &mut Started) -> i32 {
    let pid = started.pid as libc::pid_t;
    // SAFETY: pidfd_open takes two integers.
    let pidfd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) } as RawFd;
    let mut buffers: Vec<LineBuffer> = started.outputs.iter().map(|(_, s)| LineBuffer::new(*s)).collect();
    let fds: Vec<RawFd> = started.outputs.iter().map(|(fd, _)| fd.as_raw_fd()).collect();
    let outputs = fds.len();
    let mut open = vec![true; outputs];
    let mut status: Option<i32> = None;
    let mut buf = vec![0u8; 64 * 1024];
    let mut idle_polls = 0;
    while status.is_none() || open.iter().any(|o| *o) {
        let mut pollfds: Vec<libc::pollfd> = fds
            .iter()
            .zip(open.iter().copied())
            .map(|(fd, o)| libc::pollfd {
                fd: if o { *fd } else { -1 },
                events: libc::POLLIN,
                revents: 0,
            })
            .collect();
        let watch_pid = status.is_none() && pidfd >= 0;
        pollfds.push(libc::pollfd {
            fd: if watch_pid { pidfd } else { -1 },
            events: libc::POLLIN,
            revents: 0,
        });
        // Attach clients are served while the process runs.
        let hub_entries = pollfds.len();
        if status.is_none() {
            pollfds.extend(started.hub.poll_entries());
        }
        // Without a pidfd, poll the child every 100 ms; after the exit, give leftover
        // writers (processes sharing the pipes) 200 ms of silence before giving up.
        let timeout = if status.is_some() || pidfd < 0 { 100 } else { -1 };
        // SAFETY: pollfds is a valid array of the given length.
        let n = unsafe { libc::poll(pollfds.as_mut_ptr(), pollfds.len() as libc::nfds_t, timeout) };
        if n < 0 {
            if std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            break;
        }
        for i in 0..outputs {
            if open[i] && pollfds[i].revents != 0 {
                // SAFETY: reading into a buffer of the given size from an fd we own.
                let got = unsafe { libc::read(fds[i], buf.as_mut_ptr().cast(), buf.len()) };
                if got > 0 {
                    let data = &buf[..got as usize];
                    let now = Timestamp::now();
                    if let Err(e) = buffers[i].push(data, now, &mut started.log) {
                        eprintln!("writing log: {e}");
                    }
                    started.hub.output(started.outputs[i].1, data);
                } else if got == 0
                    || !matches!(
                        std::io::Error::last_os_error().raw_os_error(),
                        Some(libc::EINTR | libc::EAGAIN)
                    )
                {
                    // A terminal's master reports EIO once the last slave is closed.
                    open[i] = false;
                }
            }
        }
        if pollfds.len() > hub_entries {
            started.hub.handle(&pollfds[hub_entries..]);
        }
        if status.is_none() && (pidfd < 0 || pollfds[outputs].revents != 0) {
            let mut raw = 0;
            // SAFETY: waitpid on our (re-parented) child with a valid status pointer.
            let rc = unsafe { libc::waitpid(pid, &mut raw, if pidfd < 0 { libc::WNOHANG } else { 0 }) };
            if rc == pid {
                status = Some(raw);
            } else if rc < 0 {
                // Not our child (should not happen): treat as gone with an unknown code.
                status = Some(255 << 8);
            }
        }
        if status.is_some() {
            if n == 0 {
                idle_polls += 1;
                if idle_polls >= 2 {
                    break;
                }
            } else {
                idle_polls = 0;
            }
        }
    }
    let now = Timestamp::now();
    for buffer in &mut buffers {
        if let Err(e) = buffer.finish(now, &mut started.log) {
            eprintln!("writing log: {e}");
        }
    }
    if pidfd >= 0 {
        // SAFETY: closing the pidfd we opened.
        unsafe { libc::close(pidfd) };
    }
    match status {
        Some(status) => status,
        None => {
            let mut raw = 0;
            // SAFETY: blocking wait for our child with a valid status pointer.
            unsafe { libc::waitpid(pid, &mut raw, 0) };
            raw
        }
    }
}

/// Deletes the container's cgroups and libcontainer state once its init process has
/// exited. Best effort: the runtime removes leftovers in `remove_container`.
///
/// With the cgroup directories known (every record written by this version), this is a
/// few `rmdir`s, after SIGKILLing what is left in them (a shared PID namespace outlives the
/// container's init), as libcontainer's delete does; it skips libcontainer's delete, which
/// re-reads its state and parses mountinfo once per controller, and has no hooks or Intel
/// RDT state to undo for kaji's containers.
fn delete_container(config: &ShimConfig) {
    let root = config.libcontainer_root.join(&config.id);
    if !config.cgroup_dirs.is_empty() {
        if let Err(e) = cgroups::remove_dirs(&config.cgroup_dirs, true, std::time::Duration::from_secs(5)) {
            eprintln!("removing cgroups: {e}");
        }
        if let Err(e) = fs::remove_dir_all(&root)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            eprintln!("removing libcontainer state: {e}");
        }
        return;
    }
    if !root.exists() {
        // libcontainer already cleaned up after a failed build.
        return;
    }
    match Container::load(root.clone()) {
        Ok(mut container) => {
            if let Err(e) = container.delete(true) {
                eprintln!("libcontainer delete: {}", error_chain(&e));
            }
        }
        Err(e) => eprintln!("libcontainer load: {}", error_chain(&e)),
    }
    if root.exists() {
        let _ = fs::remove_dir_all(&root);
    }
}
