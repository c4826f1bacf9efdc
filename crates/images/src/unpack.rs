//! Unpacking one layer archive (plain tar, gzip or zstd, detected from the magic bytes) into a
//! directory that overlayfs can use as a lower layer: OCI whiteouts `.wh.NAME` become 0:0
//! character devices, opaque markers `.wh..wh..opq` become the `trusted.overlay.opaque=y` xattr
//! on their directory. Modes, owners, xattrs, mtimes, symlinks, hard links and device nodes are
//! preserved (this needs root). Entries that would land outside the directory (`..`, absolute
//! hard link targets pointing out, writes through symlinks) fail the whole layer.

use std::ffi::OsStr;
use std::fs;
use std::io::{self, BufRead, BufReader, Read};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use nix::sys::stat::{Mode, SFlag, makedev, mknod};

use crate::error::ImageError;

const GZIP_MAGIC: &[u8] = &[0x1f, 0x8b];
const ZSTD_MAGIC: &[u8] = &[0x28, 0xb5, 0x2f, 0xfd];
const WHITEOUT_PREFIX: &str = ".wh.";
const OPAQUE_MARKER: &str = ".wh..wh..opq";
/// The xattr overlayfs reads to hide a lower directory's contents.
pub(crate) const OPAQUE_XATTR: &str = "trusted.overlay.opaque";

/// The compression of a layer blob.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

/// Looks at the first bytes of a layer blob.
pub fn detect_compression(head: &[u8]) -> Compression {
    if head.starts_with(GZIP_MAGIC) {
        Compression::Gzip
    } else if head.starts_with(ZSTD_MAGIC) {
        Compression::Zstd
    } else {
        Compression::None
    }
}

/// Unpacks the layer archive read from `reader` into `dest`, an existing empty directory.
pub fn unpack_layer(reader: impl Read, dest: &Path) -> Result<(), ImageError> {
    let mut reader = BufReader::with_capacity(256 * 1024, reader);
    let head = reader
        .fill_buf()
        .map_err(|error| ImageError::InvalidArchive(format!("reading the layer: {error}")))?;
    match detect_compression(head) {
        Compression::None => unpack_tar(reader, dest),
        Compression::Gzip => unpack_tar(flate2::bufread::MultiGzDecoder::new(reader), dest),
        Compression::Zstd => {
            let decoder = zstd::stream::read::Decoder::with_buffer(reader)
                .map_err(|error| ImageError::InvalidArchive(format!("zstd: {error}")))?;
            unpack_tar(decoder, dest)
        }
    }
}

fn archive_error(entry: &Path, error: io::Error) -> ImageError {
    ImageError::InvalidArchive(format!("{}: {error}", entry.display()))
}

fn unpack_tar(reader: impl Read, dest: &Path) -> Result<(), ImageError> {
    let root = dest
        .canonicalize()
        .map_err(|error| ImageError::io("resolving", dest, error))?;
    let mut archive = tar::Archive::new(reader);
    archive.set_preserve_permissions(true);
    archive.set_preserve_ownerships(true);
    archive.set_preserve_mtime(true);
    archive.set_unpack_xattrs(true);
    archive.set_overwrite(true);
    let entries = archive
        .entries()
        .map_err(|error| ImageError::InvalidArchive(error.to_string()))?;
    for entry in entries {
        let mut entry = entry.map_err(|error| ImageError::InvalidArchive(error.to_string()))?;
        let raw_path = entry
            .path()
            .map_err(|error| ImageError::InvalidArchive(format!("entry path: {error}")))?
            .into_owned();
        let relative = sanitize(&raw_path)?;
        let Some(name) = relative.file_name().map(OsStr::to_os_string) else {
            continue; // "./" or "/": the layer root itself.
        };
        let parent_relative = relative.parent().unwrap_or(Path::new(""));
        let name_bytes = name.as_bytes();

        if name_bytes == OPAQUE_MARKER.as_bytes() {
            let dir = ensure_dir_inside(&root, parent_relative)?;
            xattr::set(&dir, OPAQUE_XATTR, b"y").map_err(|error| ImageError::io("marking opaque", &dir, error))?;
            continue;
        }
        if let Some(hidden) = name_bytes.strip_prefix(WHITEOUT_PREFIX.as_bytes()) {
            if hidden.is_empty() || hidden == b"." || hidden == b".." {
                return Err(ImageError::InvalidArchive(format!(
                    "bad whiteout {}",
                    raw_path.display()
                )));
            }
            let dir = ensure_dir_inside(&root, parent_relative)?;
            let target = dir.join(OsStr::from_bytes(hidden));
            remove_existing(&target)?;
            mknod(&target, SFlag::S_IFCHR, Mode::empty(), makedev(0, 0)).map_err(|errno| {
                ImageError::io("creating whiteout", &target, io::Error::from_raw_os_error(errno as i32))
            })?;
            continue;
        }

        let kind = entry.header().entry_type();
        if kind.is_hard_link() {
            let link = entry
                .link_name()
                .map_err(|error| archive_error(&raw_path, error))?
                .ok_or_else(|| ImageError::InvalidArchive(format!("{}: hard link without target", raw_path.display())))?
                .into_owned();
            sanitize(&link)?;
        }
        if kind.is_character_special() || kind.is_block_special() || kind.is_fifo() {
            let dir = ensure_dir_inside(&root, parent_relative)?;
            make_special(&entry, kind, &dir.join(&name)).map_err(|error| archive_error(&raw_path, error))?;
            continue;
        }
        // Directories replace nothing; anything else replaces what an earlier entry of this
        // layer put there (tar semantics), never writing through a symlink.
        if !kind.is_dir() {
            let dir = ensure_dir_inside(&root, parent_relative)?;
            remove_existing(&dir.join(&name))?;
        }
        let unpacked = entry.unpack_in(&root).map_err(|error| {
            if error.to_string().contains("outside of destination") {
                ImageError::PathTraversal {
                    entry: raw_path.display().to_string(),
                }
            } else {
                archive_error(&raw_path, error)
            }
        })?;
        if !unpacked {
            return Err(ImageError::PathTraversal {
                entry: raw_path.display().to_string(),
            });
        }
    }
    Ok(())
}

/// The entry path as plain components; `..` anywhere is an error.
fn sanitize(path: &Path) -> Result<PathBuf, ImageError> {
    let mut clean = PathBuf::new();
    for component in path.components() {
        match component {
            Component::Normal(part) => clean.push(part),
            Component::RootDir | Component::CurDir => {}
            Component::ParentDir | Component::Prefix(_) => {
                return Err(ImageError::PathTraversal {
                    entry: path.display().to_string(),
                });
            }
        }
    }
    Ok(clean)
}

/// Creates `root/relative` as directories, resolving symlinks met on the way and refusing any
/// that lead outside `root`. Returns the resolved directory.
fn ensure_dir_inside(root: &Path, relative: &Path) -> Result<PathBuf, ImageError> {
    let mut current = root.to_path_buf();
    for component in relative.components() {
        let next = current.join(component);
        match fs::symlink_metadata(&next) {
            Err(error) if error.kind() == io::ErrorKind::NotFound => {
                fs::create_dir(&next).map_err(|error| ImageError::io("creating", &next, error))?;
                current = next;
            }
            Err(error) => return Err(ImageError::io("inspecting", &next, error)),
            Ok(meta) if meta.is_dir() => current = next,
            Ok(meta) if meta.file_type().is_symlink() => {
                let resolved = next
                    .canonicalize()
                    .map_err(|error| ImageError::io("resolving", &next, error))?;
                if !resolved.starts_with(root) || !resolved.is_dir() {
                    return Err(ImageError::PathTraversal {
                        entry: relative.display().to_string(),
                    });
                }
                current = resolved;
            }
            Ok(_) => {
                return Err(ImageError::InvalidArchive(format!(
                    "{} is not a directory",
                    next.display()
                )));
            }
        }
    }
    Ok(current)
}

fn remove_existing(target: &Path) -> Result<(), ImageError> {
    match fs::symlink_metadata(target) {
        Ok(meta) if meta.is_dir() => fs::remove_dir_all(target),
        Ok(_) => fs::remove_file(target),
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(error) => Err(error),
    }
    .map_err(|error| ImageError::io("replacing", target, error))
}

fn make_special<R: Read>(entry: &tar::Entry<'_, R>, kind: tar::EntryType, target: &Path) -> io::Result<()> {
    let header = entry.header();
    let (flag, dev) = if kind.is_fifo() {
        (SFlag::S_IFIFO, 0)
    } else {
        let major = header.device_major()?.unwrap_or(0);
        let minor = header.device_minor()?.unwrap_or(0);
        let flag = if kind.is_block_special() {
            SFlag::S_IFBLK
        } else {
            SFlag::S_IFCHR
        };
        (flag, makedev(u64::from(major), u64::from(minor)))
    };
    if fs::symlink_metadata(target).is_ok() {
        fs::remove_file(target)?;
    }
    mknod(target, flag, Mode::empty(), dev).map_err(|errno| io::Error::from_raw_os_error(errno as i32))?;
    std::os::unix::fs::lchown(target, Some(header.uid()? as u32), Some(header.gid()? as u32))?;
    let mode = header.mode()? & 0o7777;
    fs::set_permissions(target, std::os::unix::fs::PermissionsExt::from_mode(mode))
}

#[cfg(test)]
mod tests;
