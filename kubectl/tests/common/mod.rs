//! The golden-test harness shared by kubectl's integration tests: one embedded apiserver per
//! test binary, both clients (ours and upstream 1.37) bound to it, a fresh namespace per test,
//! and comparison of their output with ages normalised.

#![allow(dead_code)] // each test binary uses a different part of the harness

pub(crate) mod twins;

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use anyhow::{Context, Result, ensure};

/// The admin kubeconfig of one apiserver for the whole file (stopped when the test binary
/// exits); each test works in its own namespace.
pub(crate) fn kubeconfig() -> Result<PathBuf> {
    testkit::apiserver::shared_embedded_kubeconfig(&testkit::workspace_binary("kube-apiserver")?)
}

#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Output {
    pub(crate) code: i32,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

/// The two clients, bound to the test apiserver's admin kubeconfig.
pub(crate) struct Clients {
    pub(crate) ours: PathBuf,
    pub(crate) upstream: PathBuf,
    pub(crate) kubeconfig: PathBuf,
    pub(crate) cache: tempfile::TempDir,
    pub(crate) namespace: String,
}

impl Clients {
    /// Both clients and a fresh namespace `prefix-<random>` (created by upstream kubectl).
    pub(crate) fn new(prefix: &str) -> Result<Self> {
        let clients = Self {
            ours: PathBuf::from(env!("CARGO_BIN_EXE_kubectl")),
            upstream: testkit::upstream_kubectl()?,
            kubeconfig: kubeconfig()?,
            cache: tempfile::tempdir()?,
            namespace: format!("{prefix}-{}", &uuid_like()[..8]),
        };
        clients.upstream(&["create", "namespace", &clients.namespace])?.ok()?;
        Ok(clients)
    }

    pub(crate) fn run(&self, binary: &PathBuf, args: &[&str], stdin: Option<&str>) -> Result<Output> {
        self.run_env(binary, args, stdin, &[])
    }

    /// As `run`, with extra environment (`None` removes a variable).
    pub(crate) fn run_env(
        &self,
        binary: &PathBuf,
        args: &[&str],
        stdin: Option<&str>,
        env: &[(&str, Option<&str>)],
    ) -> Result<Output> {
        let mut command = Command::new(binary);
        command
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .arg("--cache-dir")
            .arg(self.cache.path())
            .args(args)
            .env("KUBECTL_KUBERC", "false")
            .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (name, value) in env {
            match value {
                Some(value) => command.env(name, value),
                None => command.env_remove(name),
            };
        }
        let mut child = command
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
            pipe.write_all(text.as_bytes())?;
        }
        let output = child.wait_with_output()?;
        Ok(Output {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        })
    }

    pub(crate) fn ours(&self, args: &[&str]) -> Result<Output> {
        self.run(&self.ours, args, None)
    }

    pub(crate) fn upstream(&self, args: &[&str]) -> Result<Output> {
        self.run(&self.upstream, args, None)
    }

    /// Runs `args` in the test namespace with both clients and asserts the same result.
    pub(crate) fn same(&self, args: &[&str]) -> Result<Output> {
        let mut full = vec!["-n", self.namespace.as_str()];
        full.extend_from_slice(args);
        let upstream = normalise(self.upstream(&full)?);
        let ours = normalise(self.ours(&full)?);
        ensure_same(&full.join(" "), &upstream, &ours)?;
        Ok(ours)
    }

    /// Applies YAML text with one client in the test namespace.
    pub(crate) fn apply_with(&self, binary: &PathBuf, yaml: &str) -> Result<Output> {
        self.run(binary, &["-n", &self.namespace, "apply", "-f", "-"], Some(yaml))
    }
}

impl Output {
    pub(crate) fn ok(self) -> Result<Self> {
        ensure!(self.code == 0, "exit {}: {}{}", self.code, self.stdout, self.stderr);
        Ok(self)
    }
}

/// Fails, showing both, unless the two clients' outputs are equal.
pub(crate) fn ensure_same(what: &str, upstream: &Output, ours: &Output) -> Result<()> {
    ensure!(
        ours == upstream,
        "kubectl {what}:\n--- upstream (exit {}):\n{}{}\n--- ours (exit {}):\n{}{}\n--- as data:\n{upstream:?}\n{ours:?}",
        upstream.code,
        upstream.stdout,
        upstream.stderr,
        ours.code,
        ours.stdout,
        ours.stderr
    );
    Ok(())
}

pub(crate) fn uuid_like() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("{:016x}", nanos ^ (u128::from(std::process::id()) << 40))
        .chars()
        .rev()
        .collect()
}

/// Ages (`5s`, `2m3s`, `10h`) become `<age>`; warnings about the server's version skew,
/// which only upstream prints, are dropped.
pub(crate) fn normalise(mut output: Output) -> Output {
    let age = regex::Regex::new(r"\b\d+[smhdy](\d+[smh])?\b").expect("valid regex");
    output.stdout = age.replace_all(&output.stdout, "<age>").into_owned();
    output.stderr = age.replace_all(&output.stderr, "<age>").into_owned();
    output.stderr = output
        .stderr
        .lines()
        .filter(|l| !l.starts_with("WARNING: version difference"))
        .map(|l| format!("{l}\n"))
        .collect();
    // klog lines carry their time and the process id.
    let klog = regex::Regex::new(r"(?m)^W\d{4} \d\d:\d\d:\d\d\.\d{6} +\d+ ").expect("valid regex");
    output.stderr = klog.replace_all(&output.stderr, "W<klog> ").into_owned();
    output
}
