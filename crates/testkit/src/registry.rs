//! A real OCI registry (Debian's `docker-registry`) on a free loopback port, killed on drop,
//! and images built from Debian's `busybox-static` with `umoci` and pushed with `skopeo`.
//!
//! Needs the Debian packages `docker-registry umoci skopeo busybox-static`. Basic auth uses an
//! htpasswd file hashed with the `bcrypt` crate (no apache2-utils needed).
//!
//! Building an image is cheap enough to do per call (measured: `umoci init`+`new`+`insert` of
//! busybox + `config` ≈ 0.45 s, `skopeo copy` ≈ 0.35 s), so nothing is cached across calls and
//! every temporary directory is removed when its owner is dropped.

use std::fs::File;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::free_port;

const REGISTRY_BINARY: &str = "/usr/bin/docker-registry";
const UMOCI: &str = "/usr/bin/umoci";
const SKOPEO: &str = "/usr/bin/skopeo";
const BUSYBOX: &str = "/bin/busybox";
const START_TIMEOUT: Duration = Duration::from_secs(20);
const START_ATTEMPTS: usize = 3;
/// The tag used inside the local OCI layouts.
const LAYOUT_TAG: &str = "image";

/// Applets linked to busybox in `/bin` of the images built here.
pub const BUSYBOX_APPLETS: &[&str] = &[
    "sh",
    "true",
    "false",
    "echo",
    "cat",
    "sleep",
    "ls",
    "env",
    "id",
    "hostname",
    "wc",
    "yes",
    "head",
    "dd",
    "mkdir",
    "ps",
    "date",
    "touch",
    "test",
    "[",
    "printf",
    "nc",
    "wget",
    "httpd",
    "rm",
    "cp",
    "mv",
    "grep",
    "sed",
    "kill",
    "mount",
    "uname",
    "tail",
    "ln",
    "stat",
    "chmod",
    "whoami",
    "pwd",
    "timeout",
    "nslookup",
    "tar",
    "sha256sum",
];

/// A running registry, reachable at [`Registry::host`] over plain HTTP. Dropping it kills the
/// process (only the one started here) and removes its storage.
#[derive(Debug)]
pub struct Registry {
    host: String,
    credentials: Option<(String, String)>,
    child: Child,
    log_path: PathBuf,
    // Dropped after `Drop::drop` killed the child.
    _dir: tempfile::TempDir,
}

impl Registry {
    /// Starts an anonymous registry.
    pub fn start() -> anyhow::Result<Registry> {
        Self::start_with(None)
    }

    /// Starts a registry that demands HTTP basic auth with `user` / `password`.
    pub fn start_with_basic_auth(user: &str, password: &str) -> anyhow::Result<Registry> {
        Self::start_with(Some((user.to_string(), password.to_string())))
    }

    /// `127.0.0.1:PORT`.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The port it listens on (at 127.0.0.1).
    pub fn port(&self) -> u16 {
        self.host
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .unwrap_or_default()
    }

    /// The user and password of a basic-auth registry.
    pub fn credentials(&self) -> Option<(&str, &str)> {
        self.credentials
            .as_ref()
            .map(|(user, password)| (user.as_str(), password.as_str()))
    }

    /// The last `max_bytes` of the registry's log, for failure messages.
    pub fn log_tail(&self, max_bytes: usize) -> String {
        match std::fs::read(&self.log_path) {
            Ok(bytes) => String::from_utf8_lossy(&bytes[bytes.len().saturating_sub(max_bytes)..]).into_owned(),
            Err(error) => format!("(cannot read {}: {error})", self.log_path.display()),
        }
    }

    fn start_with(credentials: Option<(String, String)>) -> anyhow::Result<Registry> {
        if !Path::new(REGISTRY_BINARY).exists() {
            bail!("{REGISTRY_BINARY} not found: install it with `apt-get install docker-registry`");
        }
        let mut last_error = None;
        for _ in 0..START_ATTEMPTS {
            match Self::start_once(credentials.clone()) {
                Ok(registry) => return Ok(registry),
                Err(error) => last_error = Some(error),
            }
        }
        Err(last_error.unwrap_or_else(|| anyhow::anyhow!("the registry was never started")))
    }

    fn start_once(credentials: Option<(String, String)>) -> anyhow::Result<Registry> {
        let dir = tempfile::Builder::new()
            .prefix("kaji-registry-")
            .tempdir()
            .context("creating the registry's temporary directory")?;
        let port = free_port();
        let host = format!("127.0.0.1:{port}");
        let mut config = format!(
            "version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    \
             rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {host}\n",
            dir.path().join("data").display()
        );
        if let Some((user, password)) = &credentials {
            let hash = bcrypt::hash(password, 5).context("hashing the registry password")?;
            let htpasswd = dir.path().join("htpasswd");
            std::fs::write(&htpasswd, format!("{user}:{hash}\n")).context("writing htpasswd")?;
            config.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: kaji-test\n    path: {}\n",
                htpasswd.display()
            ));
        }
        let config_path = dir.path().join("config.yml");
        std::fs::write(&config_path, config).context("writing the registry config")?;
        let log_path = dir.path().join("registry.log");
        let log = File::create(&log_path).context("creating the registry log")?;
        let stderr = log.try_clone().context("duplicating the registry log handle")?;
        let child = Command::new(REGISTRY_BINARY)
            .arg("serve")
            .arg(&config_path)
            .env_remove("REGISTRY_HTTP_ADDR")
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(stderr)
            .spawn()
            .with_context(|| format!("spawning {REGISTRY_BINARY}"))?;
        let mut registry = Registry {
            host,
            credentials,
            child,
            log_path,
            _dir: dir,
        };
        registry.wait_ready(port)?;
        Ok(registry)
    }

    fn wait_ready(&mut self, port: u16) -> anyhow::Result<()> {
        let deadline = Instant::now() + START_TIMEOUT;
        let address = SocketAddr::from(([127, 0, 0, 1], port));
        loop {
            if let Some(status) = self.child.try_wait().context("polling the registry")? {
                bail!("the registry exited with {status}; log tail:\n{}", self.log_tail(4096));
            }
            if let Some(status) = http_status(address, "/v2/")
                && (status == 200 || status == 401)
            {
                return Ok(());
            }
            if Instant::now() >= deadline {
                bail!(
                    "the registry at {} was not ready within {START_TIMEOUT:?}; log tail:\n{}",
                    self.host,
                    self.log_tail(4096)
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The status code of one plain HTTP/1.0 `GET`, if the server answered.
fn http_status(address: SocketAddr, path: &str) -> Option<u16> {
    let timeout = Duration::from_secs(1);
    let mut stream = TcpStream::connect_timeout(&address, timeout).ok()?;
    stream.set_read_timeout(Some(timeout)).ok()?;
    stream.set_write_timeout(Some(timeout)).ok()?;
    stream
        .write_all(
            format!(
                "GET {path} HTTP/1.0\r\nHost: {address}\r\nAccept: application/vnd.oci.image.manifest.v1+json, \
                 application/vnd.oci.image.index.v1+json\r\n\r\n"
            )
            .as_bytes(),
        )
        .ok()?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).ok()?;
    let text = String::from_utf8_lossy(&response);
    text.split(' ').nth(1)?.parse().ok()
}

/// Image config values; `None` / empty keep umoci's defaults (no entrypoint, `sh` as cmd).
#[derive(Debug, Clone, Default)]
pub struct ImageOptions {
    pub entrypoint: Option<Vec<String>>,
    pub cmd: Option<Vec<String>>,
    /// `NAME=value`; `PATH=/bin` is always set.
    pub env: Vec<String>,
    pub working_dir: Option<String>,
    pub user: Option<String>,
    pub labels: Vec<(String, String)>,
    /// `80/tcp` style.
    pub exposed_ports: Vec<String>,
}

/// Builds a busybox image configured by `options` and pushes it to `registry_host` as
/// `repo_and_tag` (`app:v1`). Returns the manifest digest.
pub fn push_busybox_image(registry_host: &str, repo_and_tag: &str, options: &ImageOptions) -> anyhow::Result<String> {
    let image = OciImage::busybox()?;
    image.configure(options)?;
    image.push(registry_host, repo_and_tag, None)
}

/// An OCI image layout in a temporary directory, built with `umoci`, removed on drop.
#[derive(Debug)]
pub struct OciImage {
    dir: tempfile::TempDir,
}

impl OciImage {
    /// A layout with one layer: `/bin/busybox` and [`BUSYBOX_APPLETS`] as symlinks, plus empty
    /// `/tmp`, `/etc`, `/proc`, `/sys`, `/dev` and `/root`.
    pub fn busybox() -> anyhow::Result<OciImage> {
        for tool in [UMOCI, SKOPEO, BUSYBOX] {
            if !Path::new(tool).exists() {
                bail!("{tool} not found: install the Debian packages umoci, skopeo and busybox-static");
            }
        }
        let dir = tempfile::Builder::new().prefix("kaji-oci-").tempdir()?;
        let image = OciImage { dir };
        run(Command::new(UMOCI).args(["init", "--layout"]).arg(image.layout()))?;
        run(Command::new(UMOCI).args(["new", "--image"]).arg(image.image_ref()))?;
        image.modify(|rootfs| {
            let bin = rootfs.join("bin");
            std::fs::create_dir_all(&bin)?;
            for dir in ["tmp", "etc", "proc", "sys", "dev", "root"] {
                std::fs::create_dir_all(rootfs.join(dir))?;
            }
            std::fs::copy(BUSYBOX, bin.join("busybox")).context("copying busybox")?;
            for applet in BUSYBOX_APPLETS {
                std::os::unix::fs::symlink("busybox", bin.join(applet))?;
            }
            Ok(())
        })?;
        image.configure(&ImageOptions::default())?;
        Ok(image)
    }

    fn layout(&self) -> PathBuf {
        self.dir.path().join("layout")
    }

    fn image_ref(&self) -> String {
        format!("{}:{LAYOUT_TAG}", self.layout().display())
    }

    /// Adds a layer with whatever `change` does to the image's root filesystem (`umoci unpack`,
    /// `change(rootfs)`, `umoci repack`): new and changed files are added, deleted ones become
    /// whiteouts.
    pub fn modify(&self, change: impl FnOnce(&Path) -> anyhow::Result<()>) -> anyhow::Result<&Self> {
        let bundle = self.dir.path().join("bundle");
        run(Command::new(UMOCI)
            .args(["unpack", "--image"])
            .arg(self.image_ref())
            .arg(&bundle))?;
        let changed = change(&bundle.join("rootfs"));
        let repacked = changed.and_then(|()| {
            run(Command::new(UMOCI)
                .args(["repack", "--no-history", "--image"])
                .arg(self.image_ref())
                .arg(&bundle))
        });
        std::fs::remove_dir_all(&bundle).context("removing the umoci bundle")?;
        repacked?;
        Ok(self)
    }

    /// Adds a layer that deletes `target` with an explicit whiteout entry.
    pub fn whiteout(&self, target: &str) -> anyhow::Result<&Self> {
        run(Command::new(UMOCI)
            .args(["insert", "--no-history", "--whiteout", "--image"])
            .arg(self.image_ref())
            .arg(target))?;
        Ok(self)
    }

    /// Adds a layer making `target` an empty opaque directory (`.wh..wh..opq`): nothing of
    /// lower layers shows through it. Fill it with [`OciImage::modify`].
    ///
    /// Only empty directories: Debian's umoci 0.4.7 `insert` never closes its tar writer, so the
    /// last entry's padding and the end-of-archive blocks are missing. With header-only entries
    /// that leaves a tar that readers accept; with file data it does not.
    pub fn opaque_dir(&self, target: &str) -> anyhow::Result<&Self> {
        let empty = self.dir.path().join("empty");
        std::fs::create_dir_all(&empty)?;
        run(Command::new(UMOCI)
            .args(["insert", "--no-history", "--opaque", "--image"])
            .arg(self.image_ref())
            .arg(&empty)
            .arg(target))?;
        std::fs::remove_dir(&empty)?;
        Ok(self)
    }

    /// Sets the image config (linux/amd64, `PATH=/bin` plus `options`).
    pub fn configure(&self, options: &ImageOptions) -> anyhow::Result<&Self> {
        let mut command = Command::new(UMOCI);
        command
            .args([
                "config",
                "--no-history",
                "--os",
                "linux",
                "--architecture",
                "amd64",
                "--image",
            ])
            .arg(self.image_ref())
            .arg("--config.env=PATH=/bin");
        for env in &options.env {
            command.arg(format!("--config.env={env}"));
        }
        if let Some(entrypoint) = &options.entrypoint {
            command.arg("--clear=config.entrypoint");
            for arg in entrypoint {
                command.arg(format!("--config.entrypoint={arg}"));
            }
        }
        if let Some(cmd) = &options.cmd {
            command.arg("--clear=config.cmd");
            for arg in cmd {
                command.arg(format!("--config.cmd={arg}"));
            }
        }
        if let Some(dir) = &options.working_dir {
            command.arg(format!("--config.workingdir={dir}"));
        }
        if let Some(user) = &options.user {
            command.arg(format!("--config.user={user}"));
        }
        for (key, value) in &options.labels {
            command.arg(format!("--config.label={key}={value}"));
        }
        for port in &options.exposed_ports {
            command.arg(format!("--config.exposedports={port}"));
        }
        run(&mut command)?;
        Ok(self)
    }

    /// Pushes the image to `registry_host` (plain HTTP) as `repo_and_tag`, with basic-auth
    /// `credentials` if given. Returns the manifest digest.
    /// Writes the image as an archive at `dest` named `name` (`registry:5000/app:1`):
    /// `oci-archive` (an OCI layout tarball) or `docker-archive` (`docker save`'s format).
    pub fn save_archive(&self, transport: &str, dest: &Path, name: &str) -> anyhow::Result<()> {
        run(Command::new(SKOPEO)
            .args(["copy", "--quiet"])
            .arg(format!("oci:{}:{LAYOUT_TAG}", self.layout().display()))
            .arg(format!("{transport}:{}:{name}", dest.display())))
    }

    pub fn push(
        &self,
        registry_host: &str,
        repo_and_tag: &str,
        credentials: Option<(&str, &str)>,
    ) -> anyhow::Result<String> {
        let digest_file = self.dir.path().join("digest");
        let mut command = Command::new(SKOPEO);
        command
            .args(["copy", "--quiet", "--dest-tls-verify=false", "--digestfile"])
            .arg(&digest_file);
        if let Some((user, password)) = credentials {
            command.arg(format!("--dest-creds={user}:{password}"));
        }
        command
            .arg(format!("oci:{}:{LAYOUT_TAG}", self.layout().display()))
            .arg(format!("docker://{registry_host}/{repo_and_tag}"));
        run(&mut command)?;
        let digest = std::fs::read_to_string(&digest_file).context("reading skopeo's digest file")?;
        Ok(digest.trim().to_string())
    }
}

fn run(command: &mut Command) -> anyhow::Result<()> {
    let output = command
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running {command:?}"))?;
    if !output.status.success() {
        bail!(
            "{command:?} failed with {}: {}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest_status(registry: &Registry, path: &str) -> Option<u16> {
        let address: SocketAddr = registry.host().parse().ok()?;
        http_status(address, path)
    }

    #[test]
    fn pushes_a_busybox_image_and_cleans_up() -> anyhow::Result<()> {
        let registry = Registry::start()?;
        let digest = push_busybox_image(
            registry.host(),
            "fixture/busybox:v1",
            &ImageOptions {
                cmd: Some(vec!["sleep".into(), "3600".into()]),
                ..ImageOptions::default()
            },
        )?;
        assert!(digest.starts_with("sha256:") && digest.len() == 71, "{digest}");
        assert_eq!(
            manifest_status(&registry, &format!("/v2/fixture/busybox/manifests/{digest}")),
            Some(200)
        );
        assert_eq!(
            manifest_status(&registry, "/v2/fixture/busybox/manifests/nope"),
            Some(404)
        );

        let dir = registry._dir.path().to_path_buf();
        let address: SocketAddr = registry.host().parse()?;
        drop(registry);
        assert!(!dir.exists(), "{} survived", dir.display());
        assert_eq!(http_status(address, "/v2/"), None);
        Ok(())
    }

    #[test]
    fn basic_auth_registry_refuses_anonymous_pushes() -> anyhow::Result<()> {
        let registry = Registry::start_with_basic_auth("kaji", "s3cret")?;
        assert_eq!(manifest_status(&registry, "/v2/"), Some(401));
        let image = OciImage::busybox()?;
        assert!(image.push(registry.host(), "private/app:v1", None).is_err());
        assert!(
            image
                .push(registry.host(), "private/app:v1", Some(("kaji", "wrong")))
                .is_err()
        );
        let digest = image.push(registry.host(), "private/app:v1", registry.credentials())?;
        assert!(digest.starts_with("sha256:"));
        Ok(())
    }
}
