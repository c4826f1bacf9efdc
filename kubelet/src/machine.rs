//! What the kubelet reads off the machine: CPUs, memory, disk, kernel and OS identity, and the
//! node's address.

use std::net::IpAddr;
use std::path::Path;

/// Static facts and current usage of the machine the kubelet runs on.
#[derive(Debug, Clone, PartialEq)]
pub struct Machine {
    pub cpus: u64,
    pub memory_bytes: u64,
    pub memory_available_bytes: u64,
    pub disk_bytes: u64,
    pub disk_available_bytes: u64,
    pub kernel_version: String,
    pub os_image: String,
    pub machine_id: String,
    pub boot_id: String,
    pub pid_max: u64,
    pub pids_in_use: u64,
}

impl Machine {
    /// Reads the machine; `root_dir` is the filesystem whose size counts as ephemeral storage.
    pub fn read(root_dir: &Path) -> Machine {
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let (disk_bytes, disk_available_bytes) = disk_usage(root_dir);
        Machine {
            cpus: std::thread::available_parallelism()
                .map(|n| n.get() as u64)
                .unwrap_or(1),
            memory_bytes: meminfo_kib(&meminfo, "MemTotal") * 1024,
            memory_available_bytes: meminfo_kib(&meminfo, "MemAvailable") * 1024,
            disk_bytes,
            disk_available_bytes,
            kernel_version: nix::sys::utsname::uname()
                .map(|u| u.release().to_string_lossy().into_owned())
                .unwrap_or_default(),
            os_image: os_image(&std::fs::read_to_string("/etc/os-release").unwrap_or_default()),
            machine_id: read_trimmed("/etc/machine-id"),
            boot_id: read_trimmed("/proc/sys/kernel/random/boot_id"),
            pid_max: read_trimmed("/proc/sys/kernel/pid_max").parse().unwrap_or(32768),
            pids_in_use: std::fs::read_dir("/proc")
                .map(|entries| {
                    entries
                        .filter_map(Result::ok)
                        .filter(|e| e.file_name().to_string_lossy().bytes().all(|b| b.is_ascii_digit()))
                        .count() as u64
                })
                .unwrap_or(0),
        }
    }
}

fn read_trimmed(path: &str) -> String {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

fn meminfo_kib(meminfo: &str, key: &str) -> u64 {
    meminfo
        .lines()
        .find_map(|line| {
            let rest = line.strip_prefix(key)?.strip_prefix(':')?;
            rest.split_whitespace().next()?.parse().ok()
        })
        .unwrap_or(0)
}

fn os_image(os_release: &str) -> String {
    os_release
        .lines()
        .find_map(|line| line.strip_prefix("PRETTY_NAME="))
        .map(|v| v.trim_matches('"').to_string())
        .unwrap_or_else(|| "Linux".to_string())
}

fn disk_usage(path: &Path) -> (u64, u64) {
    match nix::sys::statvfs::statvfs(path) {
        Ok(stat) => {
            let fragment = stat.fragment_size();
            (stat.blocks() * fragment, stat.blocks_available() * fragment)
        }
        Err(_) => (0, 0),
    }
}

/// The first non-loopback IPv4 address of this network namespace, if any.
pub fn first_ipv4() -> Option<IpAddr> {
    let addrs = nix::ifaddrs::getifaddrs().ok()?;
    let mut candidates: Vec<IpAddr> = addrs
        .filter_map(|ifaddr| {
            let addr = ifaddr.address?;
            let v4 = addr.as_sockaddr_in()?;
            let ip = IpAddr::V4(v4.ip());
            (!ip.is_loopback()).then_some(ip)
        })
        .collect();
    candidates.sort();
    candidates.into_iter().next()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_meminfo_and_os_release() {
        let meminfo = "MemTotal:       24576000 kB\nMemFree:  100 kB\nMemAvailable:   2000 kB\n";
        assert_eq!(meminfo_kib(meminfo, "MemTotal"), 24576000);
        assert_eq!(meminfo_kib(meminfo, "MemAvailable"), 2000);
        assert_eq!(meminfo_kib(meminfo, "Missing"), 0);
        assert_eq!(
            os_image("NAME=\"Debian\"\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n"),
            "Debian GNU/Linux 12 (bookworm)"
        );
    }

    #[test]
    fn reads_this_machine() {
        let machine = Machine::read(Path::new("/"));
        assert!(machine.cpus >= 1);
        assert!(machine.memory_bytes > 0);
        assert!(machine.disk_bytes > 0);
        assert!(!machine.kernel_version.is_empty());
    }
}
