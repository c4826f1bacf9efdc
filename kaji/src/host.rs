//! The host side: links and namespaces (through `ip`, from iproute2), and the cluster's
//! processes, started detached (own session, log file) so they outlive `kaji up`.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::state::Process;

/// Runs `ip ARGS`, failing with its message.
pub fn ip(args: &[&str]) -> Result<()> {
    let output = Command::new("ip")
        .args(args)
        .output()
        .context("running ip (install iproute2)")?;
    if !output.status.success() {
        bail!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(())
}

/// Starts `binary` with `args`, detached, logging to `log`, inside the network namespace
/// `netns` (a name under /run/netns) when given.
pub fn spawn(component: &str, binary: &Path, args: &[String], log: &Path, netns: Option<&str>) -> Result<Process> {
    use std::os::unix::process::CommandExt;
    let log_file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .with_context(|| format!("opening {}", log.display()))?;
    let mut command = Command::new(binary);
    command
        .args(args)
        .stdin(Stdio::null())
        .stdout(log_file.try_clone()?)
        .stderr(log_file);
    let netns_path = netns
        .map(|name| std::ffi::CString::new(format!("/run/netns/{name}")))
        .transpose()?;
    // SAFETY: runs in the forked child before exec; only async-signal-safe calls (setsid,
    // open, setns, close) on data prepared before the fork.
    unsafe {
        command.pre_exec(move || {
            libc::setsid();
            if let Some(path) = &netns_path {
                let fd = libc::open(path.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC);
                if fd < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                let rc = libc::setns(fd, libc::CLONE_NEWNET);
                let error = std::io::Error::last_os_error();
                libc::close(fd);
                if rc != 0 {
                    return Err(error);
                }
            }
            Ok(())
        });
    }
    let child = command
        .spawn()
        .with_context(|| format!("starting {}", binary.display()))?;
    Ok(Process {
        component: component.to_string(),
        pid: child.id() as i32,
        binary: binary.to_path_buf(),
        node: None,
        args: args.to_vec(),
        netns: netns.map(str::to_string),
        log: log.to_path_buf(),
    })
}

/// Starts a recorded process again, the same way; the record gets the new PID.
pub fn respawn(process: &Process) -> Result<Process> {
    let fresh = spawn(
        &process.component,
        &process.binary,
        &process.args,
        &process.log,
        process.netns.as_deref(),
    )?;
    Ok(Process {
        node: process.node.clone(),
        ..fresh
    })
}

/// Whether the recorded process still runs (and is still ours: same executable).
pub fn is_running(process: &Process) -> bool {
    std::fs::read_link(format!("/proc/{}/exe", process.pid)).is_ok_and(|exe| runs_binary(&exe, &process.binary))
}

/// Whether `exe` (a `/proc/PID/exe` link) is `binary`, also after the file was replaced under
/// the running process (a rebuild or an upgrade while the cluster runs): the kernel then shows
/// the old path with " (deleted)" appended. Without this, `kaji down` took such processes for
/// gone and left them running in the node namespaces.
pub fn runs_binary(exe: &Path, binary: &Path) -> bool {
    if exe == binary {
        return true;
    }
    let exe = exe.as_os_str().as_encoded_bytes();
    exe.strip_suffix(b" (deleted)")
        .is_some_and(|old| old == binary.as_os_str().as_encoded_bytes())
}

/// SIGTERM, up to `grace`, then SIGKILL; only if the PID is still our process.
pub fn stop(process: &Process, grace: Duration) {
    if !is_running(process) {
        return;
    }
    signal(process.pid, libc::SIGTERM);
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        if !is_running(process) {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    if is_running(process) {
        signal(process.pid, libc::SIGKILL);
    }
}

/// Sends `signal` to the recorded process if it is still ours.
pub fn signal_process(process: &Process, signal: i32) {
    if is_running(process) {
        self::signal(process.pid, signal);
    }
}

fn signal(pid: i32, signal: i32) {
    // SAFETY: kill(2) has no memory-safety preconditions; the PID was checked to be ours.
    unsafe {
        libc::kill(pid, signal);
    }
}

/// The directory holding the `kaji` executable, where the component binaries are built too.
pub fn binary(name: &str) -> Result<std::path::PathBuf> {
    let exe = std::env::current_exe()?;
    let dir = exe.parent().context("the kaji executable has no directory")?;
    let path = dir.join(name);
    if !path.is_file() {
        bail!(
            "{} not found next to kaji: build every binary (`cargo build --release --bins`)",
            path.display()
        );
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::runs_binary;

    #[test]
    fn a_replaced_binary_still_counts_as_ours() {
        let binary = Path::new("/opt/kaji/bin/kube-proxy");
        assert!(runs_binary(Path::new("/opt/kaji/bin/kube-proxy"), binary));
        assert!(runs_binary(Path::new("/opt/kaji/bin/kube-proxy (deleted)"), binary));
        assert!(!runs_binary(Path::new("/usr/bin/sleep"), binary));
        assert!(!runs_binary(
            Path::new("/opt/kaji/bin/kube-proxy-old (deleted)"),
            binary
        ));
        assert!(!runs_binary(
            Path::new("/opt/kaji/bin/kube-proxy (deleted) (deleted)"),
            binary
        ));
    }
}
