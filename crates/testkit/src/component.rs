//! Any kaji component binary (`kube-scheduler`, `kube-controller-manager`, ...) run for a
//! test with its log in a temporary directory, stopped on drop (SIGTERM, then SIGKILL).

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

/// A running component process.
pub struct Component {
    child: Option<Child>,
    log: tempfile::NamedTempFile,
}

impl Component {
    /// Starts `binary` with `args`, logging to a temporary file.
    pub fn start(binary: &Path, args: &[&str]) -> Result<Component> {
        Self::start_with(binary, None, args)
    }

    /// Starts `binary` with `args` inside the network namespace at `netns`.
    pub fn start_in_netns(binary: &Path, netns: &Path, args: &[&str]) -> Result<Component> {
        Self::start_with(binary, Some(netns), args)
    }

    fn start_with(binary: &Path, netns: Option<&Path>, args: &[&str]) -> Result<Component> {
        let log = tempfile::Builder::new()
            .prefix("kaji-component-")
            .suffix(".log")
            .tempfile()?;
        let mut command = Command::new(binary);
        if let Some(netns) = netns {
            crate::netlab::join_on_spawn(&mut command, netns);
        }
        let child = command
            .args(args)
            .env("RUST_LOG", std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()))
            .stdin(Stdio::null())
            .stdout(log.reopen()?)
            .stderr(log.reopen()?)
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        Ok(Component {
            child: Some(child),
            log,
        })
    }

    /// The end of the component's log.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(self.log.path()).unwrap_or_default();
        let start = text.len().saturating_sub(4000);
        let start = (start..text.len())
            .find(|i| text.is_char_boundary(*i))
            .unwrap_or(text.len());
        text[start..].to_string()
    }
}

impl Drop for Component {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SAFETY: kill(2) has no memory-safety preconditions; the pid is our child's.
            unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline && matches!(child.try_wait(), Ok(None)) {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
