//! Cgroup layout: the pod cgroups the runtime owns, and the paths it reads for OOM kills.
//!
//! Container cgroups are created by libcontainer (libcgroups) under the pod cgroup, from
//! the OCI `cgroupsPath` `/<parent>/pod<uid>/<container id>`, which both libcgroups
//! managers join to the hierarchy roots. On the hybrid layout (v1 controllers plus a v2
//! mount at `/sys/fs/cgroup/unified`) libcgroups uses v1, and so do we.

use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::RuntimeError;
use crate::types::Resources;

const CGROUP_ROOT: &str = "/sys/fs/cgroup";
/// v1 hierarchies libcgroups manages (and so the ones the pod cgroup exists in).
const V1_CONTROLLERS: &[&str] = &[
    "cpu",
    "cpuacct",
    "cpuset",
    "devices",
    "hugetlb",
    "memory",
    "pids",
    "perf_event",
    "blkio",
    "net_cls",
    "net_prio",
    "freezer",
];

/// The cgroup layout of this machine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Layout {
    /// cgroup v1 (pure or hybrid): one mount point per hierarchy we manage.
    V1 { mounts: Vec<PathBuf> },
    /// cgroup v2 only, at `/sys/fs/cgroup`.
    V2,
}

impl Layout {
    pub(crate) fn detect() -> Result<Layout, RuntimeError> {
        let root = Path::new(CGROUP_ROOT);
        if root.join("cgroup.controllers").exists() {
            return Ok(Layout::V2);
        }
        let mountinfo = fs::read_to_string("/proc/self/mountinfo")
            .map_err(RuntimeError::at(Path::new("/proc/self/mountinfo"), "read"))?;
        let mut mounts = Vec::new();
        for line in mountinfo.lines() {
            let Some((left, right)) = line.split_once(" - ") else {
                continue;
            };
            let mut right = right.split_whitespace();
            if right.next() != Some("cgroup") {
                continue;
            }
            let (Some(_source), Some(options)) = (right.next(), right.next()) else {
                continue;
            };
            let Some(mount_point) = left.split_whitespace().nth(4) else {
                continue;
            };
            if options.split(',').any(|o| V1_CONTROLLERS.contains(&o)) {
                let mount_point = PathBuf::from(mount_point);
                if !mounts.contains(&mount_point) {
                    mounts.push(mount_point);
                }
            }
        }
        if mounts.is_empty() {
            return Err(RuntimeError::Cgroup {
                path: root.to_owned(),
                source: std::io::Error::new(ErrorKind::NotFound, "no cgroup v1 or v2 hierarchy"),
            });
        }
        Ok(Layout::V1 { mounts })
    }

    /// Every directory that makes up the cgroup `path` (relative, like `/kubepods/pod1`).
    pub(crate) fn dirs(&self, path: &str) -> Vec<PathBuf> {
        let rel = path.trim_start_matches('/');
        match self {
            Layout::V1 { mounts } => mounts.iter().map(|m| m.join(rel)).collect(),
            Layout::V2 => vec![Path::new(CGROUP_ROOT).join(rel)],
        }
    }

    /// The file whose `oom_kill` counter tells whether the cgroup saw an OOM kill.
    pub(crate) fn oom_file(&self, path: &str) -> Option<PathBuf> {
        let rel = path.trim_start_matches('/');
        match self {
            Layout::V1 { mounts } => mounts
                .iter()
                .find(|m| {
                    m.file_name()
                        .is_some_and(|n| n.to_string_lossy().split(',').any(|c| c == "memory"))
                })
                .map(|m| m.join(rel).join("memory.oom_control")),
            Layout::V2 => Some(Path::new(CGROUP_ROOT).join(rel).join("memory.events")),
        }
    }

    /// Creates the pod cgroup (and its parents) and writes the pod-level limits.
    pub(crate) fn create_pod(&self, path: &str, resources: &Resources) -> Result<(), RuntimeError> {
        match self {
            Layout::V1 { mounts } => {
                for mount in mounts {
                    create_v1(mount, path)?;
                }
                for dir in self.dirs(path) {
                    let controllers = dir_controllers(mounts, &dir);
                    if controllers.contains(&"cpu") {
                        if let Some(shares) = resources.cpu_shares {
                            write(&dir.join("cpu.shares"), &shares.to_string())?;
                        }
                        if let Some(quota) = resources.cpu_quota {
                            let period = resources.cpu_period.unwrap_or(100_000);
                            write(&dir.join("cpu.cfs_period_us"), &period.to_string())?;
                            write(&dir.join("cpu.cfs_quota_us"), &quota.to_string())?;
                        }
                    }
                    if controllers.contains(&"memory")
                        && let Some(limit) = resources.memory_limit
                    {
                        write(&dir.join("memory.limit_in_bytes"), &limit.to_string())?;
                    }
                }
            }
            Layout::V2 => {
                let root = Path::new(CGROUP_ROOT);
                let mut dir = root.to_path_buf();
                for part in path.trim_start_matches('/').split('/').filter(|p| !p.is_empty()) {
                    enable_v2_controllers(&dir)?;
                    dir.push(part);
                    mkdir(&dir)?;
                }
                if let Some(shares) = resources.cpu_shares {
                    write(&dir.join("cpu.weight"), &shares_to_weight(shares).to_string())?;
                }
                if let Some(quota) = resources.cpu_quota {
                    let period = resources.cpu_period.unwrap_or(100_000);
                    let quota = if quota < 0 { "max".to_owned() } else { quota.to_string() };
                    write(&dir.join("cpu.max"), &format!("{quota} {period}"))?;
                }
                if let Some(limit) = resources.memory_limit {
                    write(&dir.join("memory.max"), &limit.to_string())?;
                }
            }
        }
        Ok(())
    }

    /// Removes the cgroup `path` in every hierarchy, waiting up to `timeout` for exiting
    /// processes to leave it. Missing directories are fine.
    pub(crate) fn remove(&self, path: &str, timeout: Duration) -> Result<(), RuntimeError> {
        remove_dirs(&self.dirs(path), false, timeout)
    }
}

/// Removes cgroup directories (leaves), waiting up to `timeout` for exiting processes to
/// leave them; with `kill`, first SIGKILLs the processes still in them (what is left of a
/// container whose init has exited, in a shared PID namespace). Missing ones are fine.
pub(crate) fn remove_dirs(dirs: &[PathBuf], kill: bool, timeout: Duration) -> Result<(), RuntimeError> {
    let deadline = std::time::Instant::now() + timeout;
    for dir in dirs {
        let mut pause = Duration::from_micros(200);
        loop {
            if kill {
                for pid in fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default().lines() {
                    if let Ok(pid) = pid.trim().parse::<libc::pid_t>() {
                        // SAFETY: kill(2) has no memory-safety preconditions.
                        unsafe { libc::kill(pid, libc::SIGKILL) };
                    }
                }
            }
            match fs::remove_dir(dir) {
                Ok(()) => break,
                Err(e) if e.kind() == ErrorKind::NotFound => break,
                Err(e) if std::time::Instant::now() < deadline && e.raw_os_error() == Some(libc::EBUSY) => {
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_millis(10));
                }
                Err(source) => {
                    return Err(RuntimeError::Cgroup {
                        path: dir.clone(),
                        source,
                    });
                }
            }
        }
    }
    Ok(())
}

/// Reads the `oom_kill` counter from `memory.oom_control` or `memory.events`.
pub(crate) fn oom_kills(file: &Path) -> u64 {
    fs::read_to_string(file)
        .ok()
        .and_then(|text| {
            text.lines()
                .find_map(|l| l.strip_prefix("oom_kill ").and_then(|n| n.trim().parse().ok()))
        })
        .unwrap_or(0)
}

/// Upstream's conversion of cgroup v1 shares to a v2 weight.
pub(crate) fn shares_to_weight(shares: u64) -> u64 {
    let shares = shares.clamp(2, 262_144);
    1 + ((shares - 2) * 9999) / 262_142
}

fn dir_controllers<'a>(mounts: &[PathBuf], dir: &'a Path) -> Vec<&'a str> {
    mounts
        .iter()
        .find(|m| dir.starts_with(m))
        .and_then(|m| m.file_name())
        .and_then(|n| dir.components().find(|c| c.as_os_str() == n))
        .and_then(|c| c.as_os_str().to_str())
        .map(|n| n.split(',').collect())
        .unwrap_or_default()
}

/// mkdir -p in one v1 hierarchy; new cpuset cgroups inherit `cpus`/`mems` from their parent
/// (the kernel leaves them empty, and an empty cpuset cannot take tasks).
fn create_v1(mount: &Path, path: &str) -> Result<(), RuntimeError> {
    let is_cpuset = mount
        .file_name()
        .is_some_and(|n| n.to_string_lossy().split(',').any(|c| c == "cpuset"));
    let mut dir = mount.to_path_buf();
    for part in path.trim_start_matches('/').split('/').filter(|p| !p.is_empty()) {
        let parent = dir.clone();
        dir.push(part);
        if mkdir(&dir)? && is_cpuset {
            for file in ["cpuset.cpus", "cpuset.mems"] {
                let value = fs::read_to_string(parent.join(file)).map_err(cgroup_err(&parent))?;
                write(&dir.join(file), value.trim())?;
            }
        }
    }
    Ok(())
}

fn enable_v2_controllers(dir: &Path) -> Result<(), RuntimeError> {
    let available = fs::read_to_string(dir.join("cgroup.controllers")).map_err(cgroup_err(dir))?;
    let enabled = fs::read_to_string(dir.join("cgroup.subtree_control")).map_err(cgroup_err(dir))?;
    for controller in available.split_whitespace() {
        if ["cpu", "memory", "pids", "io", "cpuset", "hugetlb"].contains(&controller)
            && !enabled.split_whitespace().any(|e| e == controller)
        {
            write(&dir.join("cgroup.subtree_control"), &format!("+{controller}"))?;
        }
    }
    Ok(())
}

/// Creates a directory; `Ok(true)` if it was new.
fn mkdir(dir: &Path) -> Result<bool, RuntimeError> {
    match fs::create_dir(dir) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == ErrorKind::AlreadyExists => Ok(false),
        Err(source) => Err(RuntimeError::Cgroup {
            path: dir.to_owned(),
            source,
        }),
    }
}

fn write(file: &Path, value: &str) -> Result<(), RuntimeError> {
    fs::write(file, value).map_err(cgroup_err(file))
}

fn cgroup_err(path: &Path) -> impl FnOnce(std::io::Error) -> RuntimeError {
    let path = path.to_owned();
    move |source| RuntimeError::Cgroup { path, source }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weight_conversion_matches_upstream() {
        assert_eq!(shares_to_weight(2), 1);
        assert_eq!(shares_to_weight(1024), 39);
        assert_eq!(shares_to_weight(262_144), 10_000);
    }

    #[test]
    fn oom_counter_is_parsed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("memory.oom_control");
        fs::write(&file, "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n").expect("write");
        assert_eq!(oom_kills(&file), 3);
        fs::write(&file, "low 0\nhigh 0\nmax 2\noom 1\noom_kill 0\n").expect("write");
        assert_eq!(oom_kills(&file), 0);
        assert_eq!(oom_kills(&dir.path().join("missing")), 0);
    }

    #[test]
    fn v1_paths_follow_each_hierarchy() {
        let layout = Layout::V1 {
            mounts: vec![
                PathBuf::from("/sys/fs/cgroup/cpu,cpuacct"),
                PathBuf::from("/sys/fs/cgroup/memory"),
            ],
        };
        assert_eq!(
            layout.dirs("/kubepods/pod1"),
            vec![
                PathBuf::from("/sys/fs/cgroup/cpu,cpuacct/kubepods/pod1"),
                PathBuf::from("/sys/fs/cgroup/memory/kubepods/pod1")
            ]
        );
        assert_eq!(
            layout.oom_file("/kubepods/pod1/c"),
            Some(PathBuf::from(
                "/sys/fs/cgroup/memory/kubepods/pod1/c/memory.oom_control"
            ))
        );
        assert_eq!(
            dir_controllers(
                &[PathBuf::from("/sys/fs/cgroup/cpu,cpuacct")],
                Path::new("/sys/fs/cgroup/cpu,cpuacct/kubepods")
            ),
            vec!["cpu", "cpuacct"]
        );
        assert_eq!(
            Layout::V2.oom_file("/kubepods/pod1/c"),
            Some(PathBuf::from("/sys/fs/cgroup/kubepods/pod1/c/memory.events"))
        );
    }
}
