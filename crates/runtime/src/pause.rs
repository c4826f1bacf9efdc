//! The sandbox's namespace holder ("pause"): unshares the pod's network, IPC and UTS
//! namespaces (and optionally its PID namespace), sets the pod hostname, brings up the
//! loopback interface, then sleeps, reaping orphans when it is the PID namespace's init.
//! Containers join its namespaces through `/proc/<pid>/ns/*`.

use std::path::Path;

use crate::shim::{redirect_to_null, report};
use crate::state::{self, ShimStatus};
use crate::types::SandboxSpec;

/// Runs in the detached shim child: sets up the namespaces, forks the holder, reports its
/// PID and returns.
pub(crate) fn run(dir: &Path) -> i32 {
    let spec: SandboxSpec = match state::read_json(&dir.join(state::SPEC_FILE)) {
        Ok(Some(spec)) => spec,
        Ok(None) => return failed("spec.json missing".into()),
        Err(e) => return failed(e.to_string()),
    };
    let mut flags = libc::CLONE_NEWIPC;
    if !spec.host_network {
        flags |= libc::CLONE_NEWNET | libc::CLONE_NEWUTS;
    }
    if spec.share_process_namespace {
        flags |= libc::CLONE_NEWPID;
    }
    // SAFETY: unshare takes flags only; this process is single-threaded.
    if unsafe { libc::unshare(flags) } != 0 {
        return failed(format!("unshare: {}", std::io::Error::last_os_error()));
    }
    if !spec.host_network {
        // SAFETY: a valid buffer and its length.
        let rc = unsafe { libc::sethostname(spec.hostname.as_ptr().cast(), spec.hostname.len()) };
        if rc != 0 {
            return failed(format!(
                "sethostname {:?}: {}",
                spec.hostname,
                std::io::Error::last_os_error()
            ));
        }
        if let Err(e) = loopback_up() {
            return failed(format!("bringing up lo: {e}"));
        }
    }
    // The holder is a child so that, with a new PID namespace, it is that namespace's init.
    // SAFETY: single-threaded process.
    match unsafe { libc::fork() } {
        -1 => failed(format!("fork: {}", std::io::Error::last_os_error())),
        0 => hold(),
        pid => {
            report(&ShimStatus::Started { pid: pid as u32 });
            0
        }
    }
}

fn failed(message: String) -> i32 {
    eprintln!("pause: {message}");
    report(&ShimStatus::Failed(message));
    1
}

/// Sleeps until SIGTERM/SIGINT/SIGKILL, reaping children.
fn hold() -> i32 {
    redirect_to_null(0);
    redirect_to_null(1);
    redirect_to_null(2);
    // SAFETY: signal-set manipulation on a local, zero-initialised sigset_t.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for signal in [libc::SIGTERM, libc::SIGINT, libc::SIGCHLD] {
            libc::sigaddset(&mut set, signal);
        }
        libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        loop {
            let mut signal = 0;
            if libc::sigwait(&set, &mut signal) != 0 {
                continue;
            }
            if signal == libc::SIGCHLD {
                while libc::waitpid(-1, std::ptr::null_mut(), libc::WNOHANG) > 0 {}
            } else {
                return 0;
            }
        }
    }
}

/// `ip link set lo up` through the classic ioctl.
fn loopback_up() -> std::io::Result<()> {
    // SAFETY: socket/ioctl/close on a zeroed ifreq naming "lo"; all pointers are valid.
    unsafe {
        let sock = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
        if sock < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let mut req: libc::ifreq = std::mem::zeroed();
        for (dst, src) in req.ifr_name.iter_mut().zip(b"lo\0") {
            *dst = *src as libc::c_char;
        }
        let mut result = Ok(());
        if libc::ioctl(sock, libc::SIOCGIFFLAGS, &mut req) < 0 {
            result = Err(std::io::Error::last_os_error());
        } else {
            req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
            if libc::ioctl(sock, libc::SIOCSIFFLAGS, &req) < 0 {
                result = Err(std::io::Error::last_os_error());
            }
        }
        libc::close(sock);
        result
    }
}
