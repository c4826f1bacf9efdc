//! The libcontainer executor: runs inside the container's init process, resolves the
//! command the way upstream does and reports a failure, worded as upstream
//! (`exec: "foo": executable file not found in $PATH`), on a close-on-exec pipe. The
//! shim reads that pipe: EOF without data means the `execve` succeeded.

use std::ffi::CString;
use std::os::fd::RawFd;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use libcontainer::oci_spec::runtime::Spec;
use libcontainer::workload::{Executor, ExecutorError, ExecutorValidationError};

const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Executes the container's command; reports errors on `fd`.
#[derive(Clone)]
pub(crate) struct ExecReporter {
    fd: RawFd,
    /// For a process exec'd into a running container: `Some(tty)`.
    tenant: Option<bool>,
    /// A container's init process on a terminal (fd 0): it takes it as its controlling
    /// terminal (libcontainer's init has made it a session leader).
    terminal: bool,
}

impl ExecReporter {
    pub(crate) fn new(fd: RawFd, terminal: bool) -> Self {
        ExecReporter {
            fd,
            tenant: None,
            terminal,
        }
    }

    /// For an exec'd process: it leads its own session and process group (so that the
    /// helper can kill everything it started), takes fd 0 as its controlling terminal when
    /// `tty`, and is SIGKILLed if the exec helper (its parent) dies.
    pub(crate) fn tenant(fd: RawFd, tty: bool) -> Self {
        ExecReporter {
            fd,
            tenant: Some(tty),
            terminal: false,
        }
    }

    fn enter_session(&self, tty: bool) -> Result<(), String> {
        // SAFETY: setsid, ioctl and prctl with integer arguments only.
        unsafe {
            // libcontainer's init usually made us a session leader already.
            if libc::getsid(0) != libc::getpid() && libc::setsid() < 0 {
                return Err(format!("setsid: {}", std::io::Error::last_os_error()));
            }
            if tty && libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                return Err(format!(
                    "setting the controlling terminal: {}",
                    std::io::Error::last_os_error()
                ));
            }
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0);
        }
        Ok(())
    }

    fn report(&self, message: &str) {
        // SAFETY: writing a valid buffer to a descriptor inherited from the shim.
        unsafe {
            libc::write(self.fd, message.as_ptr().cast(), message.len());
        }
    }
}

fn args(spec: &Spec) -> Result<&Vec<String>, String> {
    spec.process()
        .as_ref()
        .and_then(|p| p.args().as_ref())
        .filter(|a| !a.is_empty())
        .ok_or_else(|| "no command specified".to_owned())
}

/// Resolves the command like Go's `exec.LookPath` (runc's wording of errors).
pub(crate) fn resolve(name: &str, path_var: Option<&str>, root: &Path) -> Result<PathBuf, String> {
    let check = |candidate: &Path| -> Result<(), std::io::Error> {
        let inside = root.join(candidate.strip_prefix("/").unwrap_or(candidate));
        let meta = inside.metadata()?;
        if meta.is_file() && meta.permissions().mode() & 0o111 != 0 {
            Ok(())
        } else {
            Err(std::io::Error::from_raw_os_error(libc::EACCES))
        }
    };
    if name.contains('/') {
        let path = PathBuf::from(name);
        return match check(&path) {
            Ok(()) => Ok(path),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Err(format!("exec: \"{name}\": stat {name}: no such file or directory"))
            }
            Err(_) => Err(format!("exec: \"{name}\": permission denied")),
        };
    }
    for dir in path_var.unwrap_or(DEFAULT_PATH).split(':') {
        let dir = if dir.is_empty() { "." } else { dir };
        let candidate = Path::new(dir).join(name);
        if check(&candidate).is_ok() {
            return Ok(candidate);
        }
    }
    Err(format!("exec: \"{name}\": executable file not found in $PATH"))
}

fn path_var(spec: &Spec) -> Option<String> {
    spec.process()
        .as_ref()
        .and_then(|p| p.env().as_ref())
        .and_then(|env| env.iter().find_map(|e| e.strip_prefix("PATH=").map(str::to_owned)))
}

impl Executor for ExecReporter {
    fn validate(&self, spec: &Spec) -> Result<(), ExecutorValidationError> {
        let checked = args(spec).and_then(|a| resolve(&a[0], path_var(spec).as_deref(), Path::new("/")));
        checked.map(|_| ()).map_err(|message| {
            self.report(&message);
            ExecutorValidationError::ArgValidationError(message)
        })
    }

    fn exec(&self, spec: &Spec) -> Result<(), ExecutorError> {
        let fail = |message: String| {
            self.report(&message);
            ExecutorError::Other(message)
        };
        if let Some(tty) = self.tenant {
            self.enter_session(tty).map_err(fail)?;
        } else if self.terminal {
            // SAFETY: ioctl with an integer argument on fd 0.
            if unsafe { libc::ioctl(0, libc::TIOCSCTTY, 0) } < 0 {
                return Err(fail(format!(
                    "setting the controlling terminal: {}",
                    std::io::Error::last_os_error()
                )));
            }
        }
        let args = args(spec).map_err(fail)?;
        let path = resolve(&args[0], path_var(spec).as_deref(), Path::new("/")).map_err(fail)?;
        let to_c = |s: &str| CString::new(s).map_err(|_| fail(format!("exec: {s:?}: argument contains NUL")));
        let program = to_c(&path.to_string_lossy())?;
        let argv: Vec<CString> = args.iter().map(|a| to_c(a)).collect::<Result<_, _>>()?;
        let mut argv_ptrs: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
        argv_ptrs.push(std::ptr::null());
        // SAFETY: program and argv are NUL-terminated C strings kept alive across the call;
        // the environment was set by libcontainer (`setup_envs`).
        unsafe { libc::execv(program.as_ptr(), argv_ptrs.as_ptr()) };
        let err = std::io::Error::last_os_error();
        Err(fail(format!("exec: \"{}\": {}", args[0], describe(&err))))
    }
}

fn describe(err: &std::io::Error) -> String {
    match err.raw_os_error() {
        Some(libc::ENOENT) => "no such file or directory".into(),
        Some(libc::EACCES) => "permission denied".into(),
        Some(libc::ENOEXEC) => "exec format error".into(),
        _ => err.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_like_look_path() {
        let root = tempfile::tempdir().expect("tempdir");
        let bin = root.path().join("bin");
        std::fs::create_dir(&bin).expect("mkdir");
        std::fs::write(bin.join("tool"), b"#!/bin/sh\n").expect("write");
        std::fs::set_permissions(bin.join("tool"), std::fs::Permissions::from_mode(0o755)).expect("chmod");
        std::fs::write(bin.join("data"), b"x").expect("write");
        assert_eq!(
            resolve("tool", Some("/usr/bin:/bin"), root.path()),
            Ok(PathBuf::from("/bin/tool"))
        );
        assert_eq!(
            resolve("foo", Some("/bin"), root.path()),
            Err("exec: \"foo\": executable file not found in $PATH".to_owned())
        );
        assert_eq!(
            resolve("data", Some("/bin"), root.path()),
            Err("exec: \"data\": executable file not found in $PATH".to_owned())
        );
        assert_eq!(
            resolve("/nope", None, root.path()),
            Err("exec: \"/nope\": stat /nope: no such file or directory".to_owned())
        );
        assert_eq!(resolve("/bin/tool", None, root.path()), Ok(PathBuf::from("/bin/tool")));
    }
}
