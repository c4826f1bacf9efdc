//! Unit tests of the layer unpacker on in-memory archives (need root: ownership, device nodes
//! and `trusted.*` xattrs).

use std::io::Write;
use std::os::unix::fs::{FileTypeExt, MetadataExt};

use super::*;

fn header(kind: tar::EntryType, path: &str, mode: u32, size: u64) -> tar::Header {
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(kind);
    header.set_path(path).unwrap();
    header.set_mode(mode);
    header.set_size(size);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(1_700_000_000);
    header
}

fn add_file(builder: &mut tar::Builder<Vec<u8>>, path: &str, mode: u32, content: &[u8], owner: (u64, u64)) {
    let mut header = header(tar::EntryType::Regular, path, mode, content.len() as u64);
    header.set_uid(owner.0);
    header.set_gid(owner.1);
    header.set_cksum();
    builder.append(&header, content).unwrap();
}

fn add_dir(builder: &mut tar::Builder<Vec<u8>>, path: &str, mode: u32) {
    let mut header = header(tar::EntryType::Directory, path, mode, 0);
    header.set_cksum();
    builder.append(&header, io::empty()).unwrap();
}

fn add_link(builder: &mut tar::Builder<Vec<u8>>, kind: tar::EntryType, path: &str, target: &str) {
    let mut header = header(kind, path, 0o777, 0);
    builder.append_link(&mut header, path, target).unwrap();
}

/// A layer exercising every kind of entry the unpacker handles.
fn sample_layer() -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    add_dir(&mut builder, "etc/", 0o755);
    add_file(&mut builder, "etc/config", 0o640, b"key=value\n", (1000, 1001));
    add_file(&mut builder, "bin/tool", 0o4755, b"#!/bin/sh\n", (0, 0));
    add_link(&mut builder, tar::EntryType::Symlink, "bin/alias", "tool");
    add_link(&mut builder, tar::EntryType::Symlink, "abs", "/etc/config");
    add_link(&mut builder, tar::EntryType::Link, "bin/hard", "bin/tool");
    add_file(&mut builder, "var/.wh.gone", 0o644, b"", (0, 0));
    add_dir(&mut builder, "opq/", 0o700);
    add_file(&mut builder, "opq/.wh..wh..opq", 0o644, b"", (0, 0));
    add_file(&mut builder, "opq/kept", 0o600, b"new", (0, 0));
    let mut fifo = header(tar::EntryType::Fifo, "run/pipe", 0o620, 0);
    fifo.set_cksum();
    builder.append(&fifo, io::empty()).unwrap();
    builder.into_inner().unwrap()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap()
}

fn zstd(data: &[u8]) -> Vec<u8> {
    zstd::stream::encode_all(data, 3).unwrap()
}

fn assert_sample_unpacked(dir: &Path) {
    let config = dir.join("etc/config");
    assert_eq!(fs::read(&config).unwrap(), b"key=value\n");
    let meta = fs::metadata(&config).unwrap();
    assert_eq!(meta.mode() & 0o7777, 0o640);
    assert_eq!((meta.uid(), meta.gid()), (1000, 1001));
    assert_eq!(fs::metadata(dir.join("bin/tool")).unwrap().mode() & 0o7777, 0o4755);
    assert_eq!(fs::read_link(dir.join("bin/alias")).unwrap(), Path::new("tool"));
    assert_eq!(fs::read_link(dir.join("abs")).unwrap(), Path::new("/etc/config"));
    let tool = fs::metadata(dir.join("bin/tool")).unwrap();
    let hard = fs::metadata(dir.join("bin/hard")).unwrap();
    assert_eq!(tool.ino(), hard.ino(), "hard link shares the inode");

    let whiteout = fs::symlink_metadata(dir.join("var/gone")).unwrap();
    assert!(whiteout.file_type().is_char_device());
    assert_eq!(whiteout.rdev(), 0);
    assert!(!dir.join("var/.wh.gone").exists());

    assert_eq!(
        xattr::get(dir.join("opq"), OPAQUE_XATTR).unwrap().as_deref(),
        Some(&b"y"[..])
    );
    assert_eq!(fs::metadata(dir.join("opq")).unwrap().mode() & 0o7777, 0o700);
    assert!(!dir.join("opq/.wh..wh..opq").exists());
    assert_eq!(fs::read(dir.join("opq/kept")).unwrap(), b"new");

    let pipe = fs::symlink_metadata(dir.join("run/pipe")).unwrap();
    assert!(pipe.file_type().is_fifo());
    assert_eq!(pipe.mode() & 0o7777, 0o620);
}

#[test]
fn unpacks_plain_gzip_and_zstd_layers() {
    let plain = sample_layer();
    let cases = [
        ("plain", plain.clone(), Compression::None),
        ("gzip", gzip(&plain), Compression::Gzip),
        ("zstd", zstd(&plain), Compression::Zstd),
    ];
    for (name, blob, compression) in cases {
        assert_eq!(detect_compression(&blob), compression, "{name}");
        let dir = tempfile::tempdir().unwrap();
        unpack_layer(&blob[..], dir.path()).unwrap_or_else(|error| panic!("{name}: {error}"));
        assert_sample_unpacked(dir.path());
    }
}

/// Writes a header whose name bypasses `tar::Header::set_path`'s own `..` check.
fn raw_entry(builder: &mut tar::Builder<Vec<u8>>, kind: tar::EntryType, name: &str, link: &str, data: &[u8]) {
    let mut header = tar::Header::new_old();
    header.set_entry_type(kind);
    header.set_mode(0o644);
    header.set_size(data.len() as u64);
    let old = header.as_old_mut();
    old.name[..name.len()].copy_from_slice(name.as_bytes());
    old.linkname[..link.len()].copy_from_slice(link.as_bytes());
    header.set_cksum();
    builder.append(&header, data).unwrap();
}

fn unpack_raw(kind: tar::EntryType, name: &str, link: &str) -> (tempfile::TempDir, Result<(), ImageError>) {
    let mut builder = tar::Builder::new(Vec::new());
    add_file(&mut builder, "ok", 0o644, b"fine", (0, 0));
    raw_entry(&mut builder, kind, name, link, b"evil");
    let archive = builder.into_inner().unwrap();
    let parent = tempfile::tempdir().unwrap();
    let dest = parent.path().join("layer");
    fs::create_dir(&dest).unwrap();
    let result = unpack_layer(&archive[..], &dest);
    (parent, result)
}

#[test]
fn rejects_parent_directory_paths() {
    let (parent, result) = unpack_raw(tar::EntryType::Regular, "../escaped", "");
    assert!(matches!(result, Err(ImageError::PathTraversal { .. })), "{result:?}");
    assert!(!parent.path().join("escaped").exists());

    let (parent, result) = unpack_raw(tar::EntryType::Regular, "a/../../escaped", "");
    assert!(matches!(result, Err(ImageError::PathTraversal { .. })), "{result:?}");
    assert!(!parent.path().join("escaped").exists());
}

#[test]
fn rejects_hard_links_out_of_the_layer() {
    let (_parent, result) = unpack_raw(tar::EntryType::Link, "passwd", "../../../etc/passwd");
    assert!(matches!(result, Err(ImageError::PathTraversal { .. })), "{result:?}");
}

#[test]
fn rejects_writes_through_symlinks_out_of_the_layer() {
    let outside = tempfile::tempdir().unwrap();
    let mut builder = tar::Builder::new(Vec::new());
    add_link(
        &mut builder,
        tar::EntryType::Symlink,
        "link",
        outside.path().to_str().unwrap(),
    );
    add_file(&mut builder, "link/evil", 0o644, b"evil", (0, 0));
    let archive = builder.into_inner().unwrap();
    let dest = tempfile::tempdir().unwrap();
    assert!(unpack_layer(&archive[..], dest.path()).is_err());
    assert!(!outside.path().join("evil").exists());

    // A whiteout behind the same symlink must not create a device outside either.
    let mut builder = tar::Builder::new(Vec::new());
    add_link(
        &mut builder,
        tar::EntryType::Symlink,
        "link",
        outside.path().to_str().unwrap(),
    );
    add_file(&mut builder, "link/.wh.victim", 0o644, b"", (0, 0));
    let archive = builder.into_inner().unwrap();
    let dest = tempfile::tempdir().unwrap();
    let result = unpack_layer(&archive[..], dest.path());
    assert!(matches!(result, Err(ImageError::PathTraversal { .. })), "{result:?}");
    assert!(!outside.path().join("victim").exists());
}

#[test]
fn rejects_garbage() {
    let dest = tempfile::tempdir().unwrap();
    assert!(unpack_layer(&gzip(b"this is not a tar archive at all, just text")[..], dest.path()).is_err());
    let dest = tempfile::tempdir().unwrap();
    assert!(unpack_layer(&[0x28, 0xb5, 0x2f, 0xfd, 1, 2, 3][..], dest.path()).is_err());
}

#[test]
fn later_entries_replace_earlier_ones() {
    let mut builder = tar::Builder::new(Vec::new());
    add_file(&mut builder, "a", 0o644, b"first", (0, 0));
    add_file(&mut builder, "a", 0o600, b"second", (0, 0));
    add_link(&mut builder, tar::EntryType::Symlink, "b", "a");
    add_file(&mut builder, "b", 0o644, b"file now", (0, 0));
    let archive = builder.into_inner().unwrap();
    let dest = tempfile::tempdir().unwrap();
    unpack_layer(&archive[..], dest.path()).unwrap();
    assert_eq!(fs::read(dest.path().join("a")).unwrap(), b"second");
    assert!(fs::symlink_metadata(dest.path().join("b")).unwrap().is_file());
    assert_eq!(
        fs::read(dest.path().join("a")).unwrap(),
        b"second",
        "not written through the symlink"
    );
}
