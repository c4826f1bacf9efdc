//! Reclaiming everything a node left behind: the kubelet is fail-static (containers outlive
//! it), so whoever removes a node (`kaji down`, test fixtures) ends every process it caused
//! (shims, sandbox holders and containers: found by their root directory and cgroups), unmounts
//! everything under its root directory and removes its cgroups.

use std::path::{Path, PathBuf};
use std::time::Duration;

/// Ends the node's processes (SIGKILL, three rounds), unmounts everything under `root_dir` and
/// removes the cgroups under `cgroup_root` in every hierarchy. The caller's own process is
/// spared.
pub fn reclaim_node(root_dir: &Path, cgroup_root: &str) {
    for _ in 0..3 {
        for pid in processes_of(root_dir, cgroup_root) {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    unmount_under(root_dir);
    remove_cgroups(cgroup_root);
}

/// Processes of this node: whose command line names the root directory (shims, sandbox
/// holders) or that sit in a cgroup under the node's cgroup root (containers).
pub fn processes_of(root_dir: &Path, cgroup_root: &str) -> Vec<i32> {
    let root = root_dir.display().to_string();
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        if pid == std::process::id() as i32 {
            continue;
        }
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline);
        let cgroups = std::fs::read_to_string(entry.path().join("cgroup")).unwrap_or_default();
        if cmdline.contains(&root) || cgroups.lines().any(|l| l.contains(&format!("/{cgroup_root}/"))) {
            pids.push(pid);
        }
    }
    pids
}

/// Unmounts (lazily, deepest first) every mount point at or under `dir`.
pub fn unmount_under(dir: &Path) {
    let dir = dir.display().to_string();
    let prefix = format!("{}/", dir.trim_end_matches('/'));
    for _ in 0..3 {
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let mut targets: Vec<String> = mountinfo
            .lines()
            .filter_map(|l| l.split(' ').nth(4))
            .filter(|t| *t == dir || t.starts_with(&prefix))
            .map(str::to_string)
            .collect();
        if targets.is_empty() {
            return;
        }
        targets.sort_by_key(|t| std::cmp::Reverse(t.len()));
        for target in targets {
            let _ = nix::mount::umount2(target.as_str(), nix::mount::MntFlags::MNT_DETACH);
        }
    }
}

/// Removes `<hierarchy>/<cgroup_root>` (deepest first) in every mounted cgroup hierarchy.
fn remove_cgroups(cgroup_root: &str) {
    let mut dirs = Vec::new();
    for entry in std::fs::read_dir("/sys/fs/cgroup").into_iter().flatten().flatten() {
        dirs.push(entry.path().join(cgroup_root));
    }
    dirs.push(PathBuf::from("/sys/fs/cgroup").join(cgroup_root));
    for dir in dirs {
        let mut all = Vec::new();
        collect_dirs(&dir, &mut all);
        all.sort_by_key(|d| std::cmp::Reverse(d.components().count()));
        for d in all {
            let _ = std::fs::remove_dir(d);
        }
    }
}

fn collect_dirs(dir: &Path, out: &mut Vec<PathBuf>) {
    if !dir.is_dir() {
        return;
    }
    out.push(dir.to_path_buf());
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            collect_dirs(&entry.path(), out);
        }
    }
}
