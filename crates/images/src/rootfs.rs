//! One overlayfs root filesystem per container: the image's unpacked layers as `lowerdir`
//! (top layer first), `upper/` and `work/` in the container's directory, mounted on `merged/`.
//!
//! The mount options must fit in one page. When the absolute layer paths are too long for that
//! (many layers, a deep root directory), short symlinks `l/0`, `l/1`, ... to the layers are made
//! in the container directory and the overlay is mounted by a `mount(8)` child process whose
//! working directory is the container directory, with every path relative: the kernel resolves
//! relative option paths against the mounting process's working directory, and changing the
//! working directory of the (multi-threaded) kubelet itself would race with its other threads.

use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use nix::errno::Errno;
use nix::mount::{MntFlags, MsFlags, mount, umount2};

use crate::Image;
use crate::error::ImageError;

/// Longest overlay option string passed straight to mount(2) (the kernel copies one page).
pub const MAX_MOUNT_OPTIONS: usize = 4000;
const MERGED: &str = "merged";
const UPPER: &str = "upper";
const WORK: &str = "work";
const LINKS: &str = "l";
/// `mount(8)` from util-linux, for the relative-path mount of long layer lists.
const MOUNT_BINARY: &str = "/bin/mount";

/// Mounts `image`'s root filesystem for a container whose directory is `container_dir`
/// (created if missing) and returns the merged directory. Mounting an already mounted
/// container directory is an error (EBUSY); a previous container's upper layer is reused, so
/// callers give each container instance its own directory.
pub fn mount_rootfs(image: &Image, container_dir: &Path) -> Result<PathBuf, ImageError> {
    mount_rootfs_with_limit(image, container_dir, MAX_MOUNT_OPTIONS)
}

fn check_usable(path: &Path) -> Result<(), ImageError> {
    if path
        .as_os_str()
        .as_bytes()
        .iter()
        .any(|byte| matches!(byte, b',' | b':'))
    {
        return Err(ImageError::UnusablePath(path.to_path_buf()));
    }
    Ok(())
}

fn create_dir(path: &Path) -> Result<(), ImageError> {
    fs::create_dir_all(path).map_err(|error| ImageError::io("creating", path, error))
}

pub(crate) fn mount_rootfs_with_limit(
    image: &Image,
    container_dir: &Path,
    limit: usize,
) -> Result<PathBuf, ImageError> {
    if image.layers.is_empty() {
        return Err(ImageError::InvalidArchive(format!(
            "image {} has no layers",
            image.reference
        )));
    }
    create_dir(container_dir)?;
    let container_dir = container_dir
        .canonicalize()
        .map_err(|error| ImageError::io("resolving", container_dir, error))?;
    let (upper, work, merged) = (
        container_dir.join(UPPER),
        container_dir.join(WORK),
        container_dir.join(MERGED),
    );
    for dir in [&upper, &work, &merged] {
        create_dir(dir)?;
    }
    for path in image.layers.iter().chain([&container_dir]) {
        check_usable(path)?;
    }
    let lower: Vec<String> = image
        .layers
        .iter()
        .rev()
        .map(|layer| layer.display().to_string())
        .collect();
    let options = format!(
        "lowerdir={},upperdir={},workdir={}",
        lower.join(":"),
        upper.display(),
        work.display()
    );
    if options.len() <= limit {
        mount(
            Some("overlay"),
            &merged,
            Some("overlay"),
            MsFlags::empty(),
            Some(options.as_str()),
        )
        .map_err(|source| ImageError::Mount {
            action: "mounting overlay at",
            path: merged.clone(),
            source,
        })?;
        return Ok(merged);
    }
    mount_with_short_links(image, &container_dir, &merged)?;
    Ok(merged)
}

fn mount_with_short_links(image: &Image, container_dir: &Path, merged: &Path) -> Result<(), ImageError> {
    let links = container_dir.join(LINKS);
    if links.exists() {
        fs::remove_dir_all(&links).map_err(|error| ImageError::io("clearing", &links, error))?;
    }
    create_dir(&links)?;
    for (index, layer) in image.layers.iter().enumerate() {
        let link = links.join(index.to_string());
        std::os::unix::fs::symlink(layer, &link).map_err(|error| ImageError::io("linking", &link, error))?;
    }
    let lower: Vec<String> = (0..image.layers.len())
        .rev()
        .map(|index| format!("{LINKS}/{index}"))
        .collect();
    let options = format!("lowerdir={},upperdir={UPPER},workdir={WORK}", lower.join(":"));
    if options.len() > MAX_MOUNT_OPTIONS {
        return Err(ImageError::MountHelper {
            path: merged.to_path_buf(),
            message: format!("{} layers do not fit in the overlay mount options", image.layers.len()),
        });
    }
    let output = Command::new(MOUNT_BINARY)
        .current_dir(container_dir)
        .args(["-t", "overlay", "overlay", "-o", &options])
        .arg(MERGED)
        .output()
        .map_err(|error| ImageError::io("running", MOUNT_BINARY, error))?;
    if !output.status.success() {
        return Err(ImageError::MountHelper {
            path: merged.to_path_buf(),
            message: format!(
                "{MOUNT_BINARY} exited with {}: {}",
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            ),
        });
    }
    Ok(())
}

/// Unmounts the container's root filesystem (lazily if it is busy) and removes `merged/`,
/// `upper/`, `work/` and `l/`. Succeeds when nothing is mounted or the directory is gone, so
/// it can be called again after a crash.
pub fn unmount_rootfs(container_dir: &Path) -> Result<(), ImageError> {
    let merged = container_dir.join(MERGED);
    if !container_dir.exists() {
        return Ok(());
    }
    if is_mount_point(&merged)? {
        match umount2(&merged, MntFlags::empty()) {
            Ok(()) | Err(Errno::EINVAL) | Err(Errno::ENOENT) => {}
            Err(Errno::EBUSY) => umount2(&merged, MntFlags::MNT_DETACH).map_err(|source| ImageError::Mount {
                action: "detaching overlay at",
                path: merged.clone(),
                source,
            })?,
            Err(source) => {
                return Err(ImageError::Mount {
                    action: "unmounting overlay at",
                    path: merged.clone(),
                    source,
                });
            }
        }
    }
    for name in [MERGED, UPPER, WORK, LINKS] {
        let path = container_dir.join(name);
        match fs::remove_dir_all(&path) {
            Ok(()) => {}
            Err(error) if error.kind() == io::ErrorKind::NotFound => {}
            Err(error) => return Err(ImageError::io("removing", &path, error)),
        }
    }
    Ok(())
}

/// Whether `path` is a mount point: its device differs from its parent's, or (same device,
/// e.g. a bind mount) it is listed in /proc/self/mountinfo.
fn is_mount_point(path: &Path) -> Result<bool, ImageError> {
    use std::os::unix::fs::MetadataExt;
    let meta = match fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(error) => return Err(ImageError::io("inspecting", path, error)),
    };
    let parent = path.parent().unwrap_or(path);
    let parent_meta = fs::metadata(parent).map_err(|error| ImageError::io("inspecting", parent, error))?;
    if meta.dev() != parent_meta.dev() {
        return Ok(true);
    }
    let mountinfo = fs::read_to_string("/proc/self/mountinfo")
        .map_err(|error| ImageError::io("reading", "/proc/self/mountinfo", error))?;
    let wanted = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
    Ok(mountinfo
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .any(|mount_point| Path::new(&unescape_mountinfo(mount_point)) == wanted))
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
fn unescape_mountinfo(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] == b'\\'
            && index + 3 < bytes.len()
            && let Some(value) = std::str::from_utf8(&bytes[index + 1..index + 4])
                .ok()
                .and_then(|digits| u8::from_str_radix(digits, 8).ok())
        {
            out.push(value);
            index += 4;
            continue;
        }
        out.push(bytes[index]);
        index += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ImageConfig;

    /// Unmounts on drop, so a failing assertion leaves no mount behind.
    struct Cleanup<'a>(&'a Path);

    impl Drop for Cleanup<'_> {
        fn drop(&mut self) {
            let _ = unmount_rootfs(self.0);
        }
    }

    fn three_layers(root: &Path) -> Image {
        let layers: Vec<PathBuf> = (0..3).map(|index| root.join(format!("layer{index}"))).collect();
        for layer in &layers {
            fs::create_dir_all(layer.join("d")).unwrap();
        }
        fs::write(layers[0].join("a"), "a").unwrap();
        fs::write(layers[0].join("d/x"), "x").unwrap();
        nix::sys::stat::mknod(
            &layers[1].join("a"),
            nix::sys::stat::SFlag::S_IFCHR,
            nix::sys::stat::Mode::empty(),
            nix::sys::stat::makedev(0, 0),
        )
        .unwrap();
        fs::write(layers[1].join("b"), "b").unwrap();
        fs::write(layers[2].join("b"), "b from the top").unwrap();
        Image {
            reference: "test".into(),
            repo_digest: "test@sha256:00".into(),
            id: "sha256:00".into(),
            config: ImageConfig::default(),
            layers,
            size: 0,
        }
    }

    fn check_merged(merged: &Path) {
        assert!(!merged.join("a").exists(), "whited out by the middle layer");
        assert_eq!(fs::read_to_string(merged.join("b")).unwrap(), "b from the top");
        assert_eq!(fs::read_to_string(merged.join("d/x")).unwrap(), "x");
        assert!(is_mount_point(merged).unwrap());
    }

    #[test]
    fn mounts_with_absolute_paths_and_with_short_links() {
        let root = tempfile::tempdir().unwrap();
        let image = three_layers(root.path());
        for (name, limit) in [("direct", MAX_MOUNT_OPTIONS), ("links", 0)] {
            let container = root.path().join(name);
            let _cleanup = Cleanup(&container);
            let merged = mount_rootfs_with_limit(&image, &container, limit).unwrap();
            check_merged(&merged);
            assert_eq!(container.join(LINKS).exists(), limit == 0, "{name}");
            unmount_rootfs(&container).unwrap();
            assert!(!is_mount_point(&merged).unwrap());
            assert!(!merged.exists() && !container.join(LINKS).exists() && !container.join(UPPER).exists());
        }
    }

    #[test]
    fn refuses_unusable_paths_and_empty_images() {
        let root = tempfile::tempdir().unwrap();
        let mut image = three_layers(root.path());
        let container = root.path().join("with,comma");
        assert!(matches!(
            mount_rootfs(&image, &container),
            Err(ImageError::UnusablePath(_))
        ));
        image.layers.clear();
        assert!(mount_rootfs(&image, &root.path().join("c")).is_err());
        // Nothing mounted, nothing to undo.
        unmount_rootfs(&container).unwrap();
        unmount_rootfs(&root.path().join("never-created")).unwrap();
    }

    #[test]
    fn unescapes_mountinfo_fields() {
        assert_eq!(unescape_mountinfo(r"/a\040b"), "/a b");
        assert_eq!(unescape_mountinfo("/plain"), "/plain");
        assert_eq!(unescape_mountinfo(r"/end\04"), r"/end\04");
    }
}
