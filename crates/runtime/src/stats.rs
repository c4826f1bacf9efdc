//! Resource usage read from cgroups, as cAdvisor reads it for the kubelet's resource metrics:
//! cumulative CPU time and the memory working set (usage minus inactive file pages).
//! cgroup v1: `cpuacct.usage` and `memory.usage_in_bytes` − `total_inactive_file` of
//! `memory.stat`; v2: `usage_usec` of `cpu.stat` and `memory.current` − `inactive_file`.
//! The node's figures come from the root cgroup, or on v2 (whose root has no `memory.current`)
//! from `/proc/stat` and `/proc/meminfo`.

use std::fs;
use std::path::{Path, PathBuf};

use crate::cgroups::Layout;

/// CPU and memory of one cgroup (a container, a pod, the node) at the time it was read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CgroupStats {
    /// Cumulative CPU time in nanoseconds.
    pub cpu_usage_nanos: u64,
    /// Working set in bytes.
    pub memory_working_set_bytes: u64,
}

impl Layout {
    /// The mount point of the v1 hierarchy holding `controller`.
    fn v1_mount(mounts: &[PathBuf], controller: &str) -> Option<PathBuf> {
        mounts
            .iter()
            .find(|m| {
                m.file_name()
                    .is_some_and(|n| n.to_string_lossy().split(',').any(|c| c == controller))
            })
            .cloned()
    }

    /// Reads the cgroup `path` (relative, like `/kubepods/pod1/c`); `None` if it is gone.
    pub(crate) fn stats(&self, path: &str) -> Option<CgroupStats> {
        let rel = path.trim_start_matches('/');
        match self {
            Layout::V1 { mounts } => {
                let cpu_dir = Self::v1_mount(mounts, "cpuacct")?.join(rel);
                let memory_dir = Self::v1_mount(mounts, "memory")?.join(rel);
                let cpu_usage_nanos = read_u64(&cpu_dir.join("cpuacct.usage"))?;
                let usage = read_u64(&memory_dir.join("memory.usage_in_bytes"))?;
                let stat = fs::read_to_string(memory_dir.join("memory.stat")).ok()?;
                let inactive = stat_field(&stat, "total_inactive_file").unwrap_or(0);
                Some(CgroupStats {
                    cpu_usage_nanos,
                    memory_working_set_bytes: usage.saturating_sub(inactive),
                })
            }
            Layout::V2 => {
                let dir = Path::new("/sys/fs/cgroup").join(rel);
                v2_stats(&dir)
            }
        }
    }

    /// The node's figures: the root cgroup on v1, `/proc` on v2.
    pub(crate) fn node_stats(&self) -> Option<CgroupStats> {
        match self {
            Layout::V1 { .. } => self.stats("/"),
            Layout::V2 => {
                let cpu_usage_nanos = proc_stat_cpu_nanos(&fs::read_to_string("/proc/stat").ok()?)?;
                let memory_working_set_bytes = meminfo_working_set(&fs::read_to_string("/proc/meminfo").ok()?)?;
                Some(CgroupStats {
                    cpu_usage_nanos,
                    memory_working_set_bytes,
                })
            }
        }
    }
}

fn v2_stats(dir: &Path) -> Option<CgroupStats> {
    let cpu = fs::read_to_string(dir.join("cpu.stat")).ok()?;
    let usage_usec = stat_field(&cpu, "usage_usec")?;
    let current = read_u64(&dir.join("memory.current"))?;
    let stat = fs::read_to_string(dir.join("memory.stat")).ok()?;
    let inactive = stat_field(&stat, "inactive_file").unwrap_or(0);
    Some(CgroupStats {
        cpu_usage_nanos: usage_usec.saturating_mul(1000),
        memory_working_set_bytes: current.saturating_sub(inactive),
    })
}

fn read_u64(file: &Path) -> Option<u64> {
    fs::read_to_string(file).ok()?.trim().parse().ok()
}

/// The value of `key` in a flat-keyed file (`key value` per line).
fn stat_field(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let (k, v) = line.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok()).flatten()
    })
}

/// Busy CPU time of the `cpu` line of `/proc/stat` (user, nice, system, irq, softirq, steal),
/// in nanoseconds; the kernel counts in USER_HZ (100) ticks.
fn proc_stat_cpu_nanos(text: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with("cpu "))?;
    let fields: Vec<u64> = line.split_whitespace().skip(1).filter_map(|f| f.parse().ok()).collect();
    let busy: u64 = [0usize, 1, 2, 5, 6, 7].iter().filter_map(|i| fields.get(*i)).sum();
    Some(busy.saturating_mul(10_000_000))
}

/// cAdvisor's machine working set from `/proc/meminfo`: MemTotal − MemFree − Inactive(file).
fn meminfo_working_set(text: &str) -> Option<u64> {
    let kib = |key: &str| {
        text.lines().find_map(|l| {
            let rest = l.strip_prefix(key)?.strip_prefix(':')?;
            rest.split_whitespace().next()?.parse::<u64>().ok()
        })
    };
    let total = kib("MemTotal")?;
    let free = kib("MemFree")?;
    let inactive_file = kib("Inactive(file)").unwrap_or(0);
    Some(total.saturating_sub(free).saturating_sub(inactive_file) * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v1_working_set_subtracts_inactive_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cpu = dir.path().join("cpu,cpuacct");
        let memory = dir.path().join("memory");
        for d in [&cpu, &memory] {
            fs::create_dir_all(d.join("pod1")).expect("mkdir");
        }
        fs::write(cpu.join("pod1/cpuacct.usage"), "123456789\n").expect("write");
        fs::write(memory.join("pod1/memory.usage_in_bytes"), "10485760\n").expect("write");
        fs::write(
            memory.join("pod1/memory.stat"),
            "cache 100\ninactive_file 7\ntotal_inactive_file 1048576\n",
        )
        .expect("write");
        let layout = Layout::V1 {
            mounts: vec![cpu, memory],
        };
        assert_eq!(
            layout.stats("/pod1"),
            Some(CgroupStats {
                cpu_usage_nanos: 123_456_789,
                memory_working_set_bytes: 9 * 1024 * 1024,
            })
        );
        assert_eq!(layout.stats("/missing"), None);
    }

    #[test]
    fn v2_files_are_read() {
        let dir = tempfile::tempdir().expect("tempdir");
        fs::write(dir.path().join("cpu.stat"), "usage_usec 2500\nuser_usec 2000\n").expect("write");
        fs::write(dir.path().join("memory.current"), "4096\n").expect("write");
        fs::write(dir.path().join("memory.stat"), "anon 1\ninactive_file 1024\n").expect("write");
        assert_eq!(
            v2_stats(dir.path()),
            Some(CgroupStats {
                cpu_usage_nanos: 2_500_000,
                memory_working_set_bytes: 3072,
            })
        );
    }

    #[test]
    fn proc_files_give_node_figures() {
        let stat = "cpu  100 5 50 1000 7 3 2 1 0 0\ncpu0 1 2 3 4 5 6 7 8 0 0\n";
        assert_eq!(proc_stat_cpu_nanos(stat), Some((100 + 5 + 50 + 3 + 2 + 1) * 10_000_000));
        let meminfo = "MemTotal:       1000 kB\nMemFree:         200 kB\nInactive(file):   100 kB\n";
        assert_eq!(meminfo_working_set(meminfo), Some(700 * 1024));
    }
}
