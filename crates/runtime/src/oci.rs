//! Builds the OCI runtime spec (`config.json`) of a container from a [`ContainerSpec`].
//!
//! The spec follows what containerd's CRI plugin generates for Kubernetes: the default
//! mounts, masked and read-only paths, containerd's default capability set, the sandbox's
//! namespaces joined by path, and the container cgroup under the pod cgroup. Seccomp is
//! left unconfined, which is Kubernetes' default when no `seccompProfile` is set.

use std::collections::BTreeSet;

use oci_spec::runtime::Spec;
use serde_json::{Value, json};

use crate::error::RuntimeError;
use crate::types::{ContainerSpec, MountKind};

/// containerd's default capabilities (`oci.defaultUnixCaps`).
pub const DEFAULT_CAPABILITIES: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// Every capability the kernel and oci-spec know (for `privileged` and `ALL`).
const ALL_CAPABILITIES: &[&str] = &[
    "CAP_AUDIT_CONTROL",
    "CAP_AUDIT_READ",
    "CAP_AUDIT_WRITE",
    "CAP_BLOCK_SUSPEND",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_KILL",
    "CAP_LEASE",
    "CAP_LINUX_IMMUTABLE",
    "CAP_MAC_ADMIN",
    "CAP_MAC_OVERRIDE",
    "CAP_MKNOD",
    "CAP_NET_ADMIN",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_RAW",
    "CAP_PERFMON",
    "CAP_SETGID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_SETUID",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_CHROOT",
    "CAP_SYS_MODULE",
    "CAP_SYS_NICE",
    "CAP_SYS_PACCT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
];

const MASKED_PATHS: &[&str] = &[
    "/proc/acpi",
    "/proc/asound",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

const READONLY_PATHS: &[&str] = &["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"];

/// The sandbox facts a container spec needs.
pub(crate) struct SandboxNamespaces {
    /// Host PID of the namespace holder.
    pub(crate) holder_pid: u32,
    pub(crate) host_network: bool,
    pub(crate) share_pid: bool,
}

/// Resolves the capability set: the default (or all, when privileged), then `add`, then `drop`.
pub(crate) fn capabilities(spec: &ContainerSpec) -> Result<BTreeSet<String>, RuntimeError> {
    let normalize = |name: &String| -> Result<String, RuntimeError> {
        let upper = name.trim().to_ascii_uppercase();
        let full = if upper.starts_with("CAP_") {
            upper
        } else {
            format!("CAP_{upper}")
        };
        if full == "CAP_ALL" || ALL_CAPABILITIES.contains(&full.as_str()) {
            Ok(full)
        } else {
            Err(RuntimeError::Spec(format!("unknown capability {name:?}")))
        }
    };
    let all = || ALL_CAPABILITIES.iter().map(|c| (*c).to_owned());
    let mut caps: BTreeSet<String> = if spec.privileged {
        all().collect()
    } else {
        DEFAULT_CAPABILITIES.iter().map(|c| (*c).to_owned()).collect()
    };
    for name in &spec.capabilities.add {
        match normalize(name)?.as_str() {
            "CAP_ALL" => caps.extend(all()),
            cap => {
                caps.insert(cap.to_owned());
            }
        }
    }
    for name in &spec.capabilities.drop {
        match normalize(name)?.as_str() {
            "CAP_ALL" => caps.clear(),
            cap => {
                caps.remove(cap);
            }
        }
    }
    Ok(caps)
}

/// Builds the OCI spec. `cgroup_path` is the container cgroup (`/<parent>/pod<uid>/<id>`).
pub(crate) fn build_spec(
    spec: &ContainerSpec,
    sandbox: &SandboxNamespaces,
    cgroup_path: &str,
) -> Result<Spec, RuntimeError> {
    if spec.args.is_empty() {
        return Err(RuntimeError::Spec("no command given".into()));
    }
    let caps: Vec<String> = capabilities(spec)?.into_iter().collect();
    let ns = |kind: &str| format!("/proc/{}/ns/{kind}", sandbox.holder_pid);

    let mut namespaces = vec![json!({"type": "mount"})];
    namespaces.push(if sandbox.share_pid {
        json!({"type": "pid", "path": ns("pid")})
    } else {
        json!({"type": "pid"})
    });
    namespaces.push(json!({"type": "ipc", "path": ns("ipc")}));
    if !sandbox.host_network {
        namespaces.push(json!({"type": "network", "path": ns("net")}));
        namespaces.push(json!({"type": "uts", "path": ns("uts")}));
    }

    let sys_options: Vec<&str> = if spec.privileged {
        vec!["nosuid", "noexec", "nodev"]
    } else {
        vec!["nosuid", "noexec", "nodev", "ro"]
    };
    let mut mounts = vec![
        json!({"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]}),
        json!({"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]}),
        json!({"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]}),
        json!({"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": sys_options}),
    ];
    for mount in &spec.mounts {
        if !mount.destination.is_absolute() {
            return Err(RuntimeError::Spec(format!(
                "mount destination {} is not absolute",
                mount.destination.display()
            )));
        }
        let mut options: Vec<String> = match &mount.kind {
            MountKind::Bind => vec!["rbind".into(), "rprivate".into()],
            MountKind::Tmpfs { size } => {
                let mut o = vec!["nosuid".to_owned(), "nodev".to_owned(), "mode=1777".to_owned()];
                if let Some(size) = size {
                    o.push(format!("size={size}"));
                }
                o
            }
        };
        if mount.read_only {
            options.push("ro".into());
        }
        let (typ, source) = match &mount.kind {
            MountKind::Bind => ("bind", mount.source.to_string_lossy().into_owned()),
            MountKind::Tmpfs { .. } => ("tmpfs", "tmpfs".to_owned()),
        };
        mounts.push(json!({
            "destination": mount.destination, "type": typ, "source": source, "options": options,
        }));
    }

    let mut resources = json!({"devices": [{"allow": spec.privileged, "access": "rwm"}]});
    let mut cpu = serde_json::Map::new();
    if let Some(shares) = spec.resources.cpu_shares {
        cpu.insert("shares".into(), json!(shares));
    }
    if let Some(quota) = spec.resources.cpu_quota {
        cpu.insert("quota".into(), json!(quota));
        cpu.insert("period".into(), json!(spec.resources.cpu_period.unwrap_or(100_000)));
    }
    if !cpu.is_empty() {
        resources["cpu"] = Value::Object(cpu);
    }
    if let Some(limit) = spec.resources.memory_limit {
        resources["memory"] = json!({"limit": limit});
    }

    let mut linux = json!({
        "namespaces": namespaces,
        "cgroupsPath": cgroup_path,
        "resources": resources,
    });
    if !spec.privileged {
        linux["maskedPaths"] = json!(MASKED_PATHS);
        linux["readonlyPaths"] = json!(READONLY_PATHS);
    }
    let cwd = if spec.cwd.is_empty() { "/" } else { spec.cwd.as_str() };
    let value = json!({
        "ociVersion": "1.2.0",
        "root": {"path": spec.rootfs, "readonly": spec.read_only_rootfs},
        "process": {
            "terminal": false,
            "user": {
                "uid": spec.user.uid,
                "gid": spec.user.gid,
                "additionalGids": spec.user.additional_gids,
            },
            "args": spec.args,
            "env": spec.env,
            "cwd": cwd,
            "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
            "noNewPrivileges": spec.no_new_privs,
        },
        "mounts": mounts,
        "linux": linux,
    });
    serde_json::from_value(value).map_err(|e| RuntimeError::Spec(e.to_string()))
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use oci_spec::runtime::{Capability, LinuxNamespaceType};

    use super::*;
    use crate::types::{Capabilities, Mount, Resources, User};

    fn spec() -> ContainerSpec {
        ContainerSpec {
            id: "c1".into(),
            sandbox_id: "s1".into(),
            rootfs: PathBuf::from("/rootfs"),
            args: vec!["/bin/true".into()],
            env: vec!["PATH=/bin".into()],
            cwd: String::new(),
            user: User {
                uid: 1000,
                gid: 1000,
                additional_gids: vec![5],
            },
            mounts: vec![Mount {
                source: PathBuf::from("/var/lib/kaji/hosts"),
                destination: PathBuf::from("/etc/hosts"),
                kind: MountKind::Bind,
                read_only: true,
            }],
            resources: Resources {
                memory_limit: Some(1 << 24),
                cpu_quota: Some(50_000),
                ..Default::default()
            },
            capabilities: Capabilities {
                add: vec!["net_admin".into()],
                drop: vec!["CAP_KILL".into()],
            },
            privileged: false,
            no_new_privs: true,
            read_only_rootfs: true,
            log_path: PathBuf::from("/log"),
            stdin: false,
            stdin_once: false,
            tty: false,
        }
    }

    #[test]
    fn spec_joins_sandbox_namespaces_and_sets_limits() {
        let sandbox = SandboxNamespaces {
            holder_pid: 42,
            host_network: false,
            share_pid: false,
        };
        let oci = build_spec(&spec(), &sandbox, "/kubepods/podu/c1").expect("spec");
        let linux = oci.linux().as_ref().expect("linux");
        let namespaces = linux.namespaces().as_ref().expect("namespaces");
        let net = namespaces
            .iter()
            .find(|n| n.typ() == LinuxNamespaceType::Network)
            .expect("net");
        assert_eq!(net.path().as_deref(), Some(std::path::Path::new("/proc/42/ns/net")));
        let pid = namespaces
            .iter()
            .find(|n| n.typ() == LinuxNamespaceType::Pid)
            .expect("pid");
        assert_eq!(pid.path(), &None);
        assert_eq!(
            linux.cgroups_path().as_deref(),
            Some(std::path::Path::new("/kubepods/podu/c1"))
        );
        let memory = linux.resources().as_ref().and_then(|r| *r.memory()).expect("memory");
        assert_eq!(memory.limit(), Some(1 << 24));
        let process = oci.process().as_ref().expect("process");
        assert_eq!(process.cwd(), std::path::Path::new("/"));
        assert_eq!(process.no_new_privileges(), Some(true));
        let caps = process
            .capabilities()
            .as_ref()
            .and_then(|c| c.bounding().clone())
            .expect("caps");
        assert!(caps.contains(&Capability::NetAdmin));
        assert!(!caps.contains(&Capability::Kill));
        assert!(caps.contains(&Capability::Chown));
        assert_eq!(oci.root().as_ref().map(|r| r.readonly()), Some(Some(true)));
    }

    #[test]
    fn host_network_and_shared_pid() {
        let sandbox = SandboxNamespaces {
            holder_pid: 7,
            host_network: true,
            share_pid: true,
        };
        let oci = build_spec(&spec(), &sandbox, "/p/c").expect("spec");
        let namespaces = oci.linux().as_ref().and_then(|l| l.namespaces().clone()).expect("ns");
        assert!(!namespaces.iter().any(|n| n.typ() == LinuxNamespaceType::Network));
        assert!(!namespaces.iter().any(|n| n.typ() == LinuxNamespaceType::Uts));
        let pid = namespaces
            .iter()
            .find(|n| n.typ() == LinuxNamespaceType::Pid)
            .expect("pid");
        assert_eq!(pid.path().as_deref(), Some(std::path::Path::new("/proc/7/ns/pid")));
    }

    #[test]
    fn capability_rules() {
        let mut s = spec();
        s.capabilities = Capabilities {
            add: vec![],
            drop: vec!["ALL".into()],
        };
        assert!(capabilities(&s).expect("caps").is_empty());
        s.capabilities = Capabilities {
            add: vec!["bogus".into()],
            drop: vec![],
        };
        assert!(matches!(capabilities(&s), Err(RuntimeError::Spec(_))));
        s.capabilities = Capabilities::default();
        s.privileged = true;
        assert!(capabilities(&s).expect("caps").contains("CAP_SYS_ADMIN"));
        s.args.clear();
        let sandbox = SandboxNamespaces {
            holder_pid: 7,
            host_network: true,
            share_pid: true,
        };
        assert!(build_spec(&s, &sandbox, "/p/c").is_err());
    }
}
