//! The state root on a private tmpfs: the runtime's records only matter while the machine is
//! up (a reboot ends every container and holder), so they live in memory, as containerd's
//! `/run/containerd` and runc's `/run/runc` do on hosts where `/run` is a tmpfs.
//!
//! Why kaji mounts its own: a start creates about ten small files and removes most of them
//! again. On a disk file system that churn is the largest kaji-only cost of a start, and on
//! ext4 without a journal (this project's machines) it grows with every recent deletion
//! (`recently_deleted` in `__ext4_new_inode`; BENCHMARKS.md, "Container start"). A tmpfs
//! creates and deletes inodes without touching a disk.
//!
//! The tmpfs stays mounted when the kubelet exits, so a restarted kubelet (or a re-opened
//! [`crate::Runtime`]) finds the containers it left; whoever removes the node unmounts it
//! with everything else under its root ([`crate::reclaim`]).

use std::path::Path;

use nix::mount::{MsFlags, mount};
use nix::sys::statfs::{TMPFS_MAGIC, statfs};

/// Where the state root's records are kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StateMedium {
    /// A tmpfs: ours, mounted now or by an earlier run, or one the admin provided.
    Memory,
    /// The directory's own file system, and why the tmpfs was not used.
    Disk(DiskReason),
}

/// Why the state root stays on disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DiskReason {
    /// `KAJI_RUNTIME_TMPFS=off`.
    Disabled,
    /// The directory already holds sandboxes or containers (written by a kaji that kept its
    /// state on disk): a tmpfs over them would hide containers that are still running.
    HoldsState,
    /// Mounting failed (no `CAP_SYS_ADMIN`, for one).
    MountFailed,
}

/// Size cap of the tmpfs (memory is used only as files are written; a container's records
/// are a few KiB).
const TMPFS_OPTIONS: &str = "mode=0700,size=256m";

/// Puts `state_root` (an existing directory) on a tmpfs unless it already is one, it holds
/// records written to disk, or `KAJI_RUNTIME_TMPFS=off`.
pub(crate) fn prepare(state_root: &Path) -> StateMedium {
    if is_tmpfs(state_root) {
        return StateMedium::Memory;
    }
    if std::env::var_os("KAJI_RUNTIME_TMPFS").is_some_and(|v| v == "off") {
        return StateMedium::Disk(DiskReason::Disabled);
    }
    if ["sandboxes", "containers"]
        .iter()
        .any(|sub| has_entries(&state_root.join(sub)))
    {
        tracing::info!(root = %state_root.display(), "runtime state stays on disk: it holds records");
        return StateMedium::Disk(DiskReason::HoldsState);
    }
    let flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    match mount(
        Some("kaji-runtime"),
        state_root,
        Some("tmpfs"),
        flags,
        Some(TMPFS_OPTIONS),
    ) {
        Ok(()) => StateMedium::Memory,
        Err(errno) => {
            tracing::warn!(root = %state_root.display(), %errno, "runtime state stays on disk: mounting a tmpfs failed");
            StateMedium::Disk(DiskReason::MountFailed)
        }
    }
}

fn is_tmpfs(dir: &Path) -> bool {
    statfs(dir).is_ok_and(|fs| fs.filesystem_type() == TMPFS_MAGIC)
}

fn has_entries(dir: &Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|mut entries| entries.next().is_some())
}
