//! End-to-end tests of a whole cluster. They drive binaries, HTTP and the real kubectl only;
//! they link no component. [`Host`] is the harness: `kaji` and the upstream kubectl run inside
//! a network namespace of the test's own (standing in for the host, so the bridge and routes
//! `kaji up` makes never touch the real host's network), with a `KAJI_HOME` of their own.

use std::path::PathBuf;
use std::process::Output;
use std::time::{Duration, Instant};

use testkit::netlab::NetLab;

/// stdout and stderr of a finished command, for messages.
pub fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Polls `check` every 300 ms until it holds; panics with `what` (and `context()`) after
/// `timeout`.
pub fn wait_until(what: &str, timeout: Duration, context: impl Fn() -> String, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}\n{}", context());
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// A stand-in host for one cluster; `kaji down` runs when it is dropped with the cluster up.
pub struct Host {
    /// The cluster `kaji down` removes when the test ends early.
    pub name: String,
    pub up: bool,
    pub kubeconfig: PathBuf,
    pub home: tempfile::TempDir,
    pub lab: NetLab,
}

impl Drop for Host {
    fn drop(&mut self) {
        if self.up {
            let _ = self.kaji(&["down", "--name", &self.name.clone()]);
        }
    }
}

impl Host {
    /// A host for cluster `name` in `lab`, with a fresh `KAJI_HOME` and kubeconfig path.
    pub fn new(lab: NetLab, name: String) -> Host {
        let home = tempfile::tempdir().expect("KAJI_HOME");
        Host {
            name,
            up: false,
            kubeconfig: home.path().join("kubeconfig"),
            home,
            lab,
        }
    }

    pub fn kaji(&self, args: &[&str]) -> Output {
        self.lab
            .lab
            .command(testkit::workspace_binary("kaji").expect("kaji"))
            .args(args)
            .env("KAJI_HOME", self.home.path())
            .output()
            .expect("running kaji")
    }

    /// Runs `kaji` and asserts it succeeded; returns its stdout.
    pub fn kaji_ok(&self, args: &[&str]) -> String {
        let output = self.kaji(args);
        assert!(output.status.success(), "kaji {args:?}: {}", text(&output));
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    pub fn kubectl(&self, args: &[&str]) -> Output {
        self.lab
            .lab
            .command("kubectl")
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .args(args)
            .output()
            .expect("running kubectl")
    }

    /// Runs kubectl and asserts it succeeded; returns its stdout. With `KAJI_E2E_PAUSE` set, a
    /// failure first waits 15 minutes with the cluster up, to be looked at (lab and home are
    /// printed).
    pub fn ok(&self, args: &[&str]) -> String {
        let output = self.kubectl(args);
        if !output.status.success() && std::env::var_os("KAJI_E2E_PAUSE").is_some() {
            eprintln!("PAUSED: lab {} home {}", self.lab.lab.name, self.home.path().display());
            std::thread::sleep(Duration::from_secs(900));
        }
        assert!(
            output.status.success(),
            "kubectl {args:?}: {}\n{}",
            text(&output),
            self.state()
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// Fetches `url` from the host (5 s at most).
    pub fn fetch(&self, url: &str) -> Output {
        self.lab
            .lab
            .command("busybox")
            .args(["timeout", "5", "busybox", "wget", "-qO-", url])
            .output()
            .expect("wget")
    }

    /// Waits up to 30 s for `url` to answer with a web pod's name.
    pub fn wait_for_answer(&self, url: &str) {
        let mut last = String::new();
        wait_until(
            &format!("{url} to answer"),
            Duration::from_secs(30),
            || self.cluster_logs(),
            || {
                let fetched = self.fetch(url);
                last = text(&fetched);
                fetched.status.success() && String::from_utf8_lossy(&fetched.stdout).starts_with("web-")
            },
        );
    }

    /// Waits up to `timeout` for node `node`'s STATUS column to be `status`.
    pub fn wait_node_status(&self, node: &str, status: &str, timeout: Duration) {
        wait_until(
            &format!("node {node} to be {status}"),
            timeout,
            || text(&self.kubectl(&["get", "nodes"])),
            || {
                let out = self.kubectl(&["get", "node", node, "--no-headers"]);
                String::from_utf8_lossy(&out.stdout).split_whitespace().nth(1) == Some(status)
            },
        );
    }

    /// Pods, recent events and the end of every component's log, for failure messages.
    pub fn state(&self) -> String {
        let pods = self.kubectl(&["get", "pods", "-A", "-o", "wide"]);
        let events = self.kubectl(&["get", "events", "-A", "--sort-by", ".lastTimestamp"]);
        let events = text(&events);
        let recent: Vec<&str> = events.lines().rev().take(40).collect();
        format!(
            "--- pods ---\n{}--- events (newest first) ---\n{}\n{}",
            text(&pods),
            recent.join("\n"),
            self.cluster_logs()
        )
    }

    /// The end of every component's log, for failure messages.
    pub fn cluster_logs(&self) -> String {
        let mut logs = String::new();
        let dir = self.home.path().join("clusters").join(&self.name).join("logs");
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let content = std::fs::read_to_string(entry.path()).unwrap_or_default();
            let mut from = content.len().saturating_sub(2000);
            while !content.is_char_boundary(from) {
                from += 1;
            }
            let tail = &content[from..];
            logs.push_str(&format!("--- {} ---\n{tail}\n", entry.file_name().to_string_lossy()));
        }
        logs
    }

    /// The cluster's record (`cluster.json`).
    pub fn record(&self) -> serde_json::Value {
        let path = self.home.path().join("clusters").join(&self.name).join("cluster.json");
        serde_json::from_slice(&std::fs::read(path).expect("cluster.json")).expect("cluster.json parses")
    }

    /// The PIDs of the recorded processes whose component is `component`.
    pub fn recorded_pids(&self, component: &str) -> Vec<String> {
        self.record()["processes"]
            .as_array()
            .expect("processes")
            .iter()
            .filter(|p| p["component"] == component)
            .map(|p| p["pid"].to_string())
            .collect()
    }

    /// Runs `kaji down` and asserts it succeeded, ended every process the cluster recorded and
    /// left the host as `before` was.
    pub fn down(&mut self, before: &[String]) {
        let processes: Vec<(String, String)> = self.record()["processes"]
            .as_array()
            .expect("processes")
            .iter()
            .map(|p| (p["pid"].to_string(), p["binary"].as_str().unwrap_or("").to_string()))
            .collect();
        let down = self.kaji(&["down", "--name", &self.name.clone()]);
        self.up = false;
        assert!(down.status.success(), "kaji down: {}", text(&down));
        assert_eq!(self.footprint(), before, "kaji down leaves the host as it was");
        assert!(!self.home.path().join("clusters").join(&self.name).exists());
        for (pid, binary) in processes {
            let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap_or_default();
            // A binary rebuilt while the cluster ran shows as "PATH (deleted)".
            let exe = exe.display().to_string();
            assert_ne!(
                exe.strip_suffix(" (deleted)").unwrap_or(&exe),
                binary,
                "pid {pid} still runs after kaji down"
            );
        }
    }

    /// What `kaji down` must restore: the lab's links and iptables rules, the named namespaces,
    /// mounts and cgroups that mention the cluster.
    pub fn footprint(&self) -> Vec<String> {
        let name = &self.name;
        let mut out = Vec::new();
        for save in ["iptables-save", "ip6tables-save"] {
            let rules = self.lab.lab.command(save).output().expect(save);
            out.extend(
                String::from_utf8_lossy(&rules.stdout)
                    .lines()
                    .filter(|l| !l.starts_with('#'))
                    // Chain policies carry packet counters: `:INPUT ACCEPT [12:840]`.
                    .map(|l| format!("{save} {}", l.split(" [").next().unwrap_or(l))),
            );
        }
        let links = self
            .lab
            .lab
            .command("ip")
            .args(["-o", "link", "show"])
            .output()
            .expect("ip link");
        out.extend(
            String::from_utf8_lossy(&links.stdout)
                .lines()
                .filter_map(|l| l.split(':').nth(1).map(|n| format!("link {}", n.trim()))),
        );
        for entry in std::fs::read_dir("/run/netns").into_iter().flatten().flatten() {
            let netns = entry.file_name().to_string_lossy().into_owned();
            if netns.contains(name.as_str()) {
                out.push(format!("netns {netns}"));
            }
        }
        let home = self.home.path().display().to_string();
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        out.extend(
            mounts
                .lines()
                .filter(|l| l.contains(&home))
                .map(|l| format!("mount {l}")),
        );
        for hierarchy in std::fs::read_dir("/sys/fs/cgroup").into_iter().flatten().flatten() {
            for entry in std::fs::read_dir(hierarchy.path()).into_iter().flatten().flatten() {
                if entry.file_name().to_string_lossy().contains(name.as_str()) {
                    out.push(format!("cgroup {}", entry.path().display()));
                }
            }
        }
        out.sort();
        out
    }
}
