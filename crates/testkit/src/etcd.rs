//! A real etcd server (Debian's `etcd-server`) on free loopback ports, killed on drop.
//!
//! Each [`EtcdServer`] is a fresh single-member cluster with its own data directory, so tests
//! never share state unless they share the server.

use std::fs::File;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::free_port;

/// The etcd binary Debian's `etcd-server` package installs.
const ETCD_BINARY: &str = "/usr/bin/etcd";
/// How long a fresh server may take to report healthy.
const START_TIMEOUT: Duration = Duration::from_secs(20);
/// Ports come from [`free_port`], which can race with other processes; retry a few times.
const START_ATTEMPTS: usize = 3;

/// A running etcd, reachable at [`EtcdServer::endpoint`]. Dropping it kills the process and
/// removes its data directory.
#[derive(Debug)]
pub struct EtcdServer {
    /// The client URL, e.g. `http://127.0.0.1:40123`.
    pub endpoint: String,
    child: Child,
    log_path: PathBuf,
    // Dropped after `Drop::drop` has killed the child, so etcd never sees its directory vanish.
    _dir: tempfile::TempDir,
}

impl EtcdServer {
    /// Starts etcd on free ports and waits until `/health` reports healthy.
    pub fn start() -> anyhow::Result<Self> {
        if !Path::new(ETCD_BINARY).exists() {
            bail!("{ETCD_BINARY} not found: install it with `apt-get install etcd-server`");
        }
        let mut last_error = None;
        for _ in 0..START_ATTEMPTS {
            match Self::start_once() {
                Ok(server) => return Ok(server),
                Err(error) => last_error = Some(error),
            }
        }
        Err(last_error.unwrap_or_else(|| anyhow::anyhow!("etcd was never started")))
    }

    /// The file etcd logs to (inside its temporary directory).
    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// The last `max_bytes` of etcd's log, for failure messages.
    pub fn log_tail(&self, max_bytes: usize) -> String {
        read_tail(&self.log_path, max_bytes)
    }

    fn start_once() -> anyhow::Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("kaji-etcd-")
            .tempdir()
            .context("creating etcd's temporary directory")?;
        let log_path = dir.path().join("etcd.log");
        let log = File::create(&log_path).context("creating etcd's log file")?;
        let stderr = log.try_clone().context("duplicating etcd's log file handle")?;
        let client_port = free_port();
        let peer_port = free_port();
        let client_url = format!("http://127.0.0.1:{client_port}");
        let peer_url = format!("http://127.0.0.1:{peer_port}");

        let mut command = Command::new(ETCD_BINARY);
        // ETCD_* variables from the environment would override or conflict with our flags.
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("ETCD_") {
                command.env_remove(name);
            }
        }
        command
            .arg("--name=default")
            .arg(format!("--data-dir={}", dir.path().join("data").display()))
            .arg(format!("--listen-client-urls={client_url}"))
            .arg(format!("--advertise-client-urls={client_url}"))
            .arg(format!("--listen-peer-urls={peer_url}"))
            .arg(format!("--initial-advertise-peer-urls={peer_url}"))
            .arg(format!("--initial-cluster=default={peer_url}"))
            .arg("--initial-cluster-state=new")
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(stderr);
        let child = command.spawn().with_context(|| format!("spawning {ETCD_BINARY}"))?;

        // From here on, `server`'s Drop cleans up if we bail out.
        let mut server = EtcdServer {
            endpoint: client_url,
            child,
            log_path,
            _dir: dir,
        };
        server.wait_healthy(client_port)?;
        Ok(server)
    }

    fn wait_healthy(&mut self, port: u16) -> anyhow::Result<()> {
        let deadline = Instant::now() + START_TIMEOUT;
        let address = SocketAddr::from(([127, 0, 0, 1], port));
        loop {
            if let Some(status) = self.child.try_wait().context("polling etcd")? {
                bail!(
                    "etcd exited with {status} before becoming healthy; log tail:\n{}",
                    self.log_tail(4096)
                );
            }
            if health_check(address) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                bail!(
                    "etcd at {} was not healthy within {START_TIMEOUT:?}; log tail:\n{}",
                    self.endpoint,
                    self.log_tail(4096)
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for EtcdServer {
    fn drop(&mut self) {
        // Only our own child, by its handle. Errors mean it already exited, which is fine.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One `GET /health` over a plain TCP connection; true if etcd says it is healthy.
fn health_check(address: SocketAddr) -> bool {
    let timeout = Duration::from_secs(1);
    let Ok(mut stream) = TcpStream::connect_timeout(&address, timeout) else {
        return false;
    };
    if stream.set_read_timeout(Some(timeout)).is_err() || stream.set_write_timeout(Some(timeout)).is_err() {
        return false;
    }
    let request = format!("GET /health HTTP/1.0\r\nHost: {address}\r\n\r\n");
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    // HTTP/1.0: the server closes the connection after the response.
    let mut response = Vec::new();
    if stream.read_to_end(&mut response).is_err() {
        return false;
    }
    String::from_utf8_lossy(&response).contains(r#""health":"true""#)
}

fn read_tail(path: &Path, max_bytes: usize) -> String {
    match std::fs::read(path) {
        Ok(bytes) => {
            let start = bytes.len().saturating_sub(max_bytes);
            String::from_utf8_lossy(&bytes[start..]).into_owned()
        }
        Err(error) => format!("(cannot read {}: {error})", path.display()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_healthy_and_cleans_up() -> anyhow::Result<()> {
        let server = EtcdServer::start()?;
        let dir = server._dir.path().to_path_buf();
        assert!(server.endpoint.starts_with("http://127.0.0.1:"));
        let port: u16 = server
            .endpoint
            .rsplit(':')
            .next()
            .context("endpoint has a port")?
            .parse()?;
        assert!(health_check(SocketAddr::from(([127, 0, 0, 1], port))));
        drop(server);
        assert!(!dir.exists(), "data directory {} survived", dir.display());
        assert!(!health_check(SocketAddr::from(([127, 0, 0, 1], port))));
        Ok(())
    }
}
