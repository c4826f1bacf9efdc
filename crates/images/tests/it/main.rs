//! Integration tests of the image store against a real `docker-registry` on 127.0.0.1 with
//! images built by umoci and pushed by skopeo (see `testkit::registry`). Run as root.

mod gc;
mod import;
mod pull;
mod rootfs;

use std::path::Path;

use images::{ImageStore, RegistryConfig};
use testkit::registry::Registry;

/// A store in a fresh temporary root; the directory goes when the returned guard drops.
pub(crate) fn open_store(config: RegistryConfig) -> (tempfile::TempDir, ImageStore) {
    let root = tempfile::Builder::new().prefix("kaji-images-").tempdir().unwrap();
    let store = ImageStore::open(root.path(), config).unwrap();
    (root, store)
}

/// The registry config that reaches `registry` over plain HTTP.
pub(crate) fn insecure(registry: &Registry) -> RegistryConfig {
    RegistryConfig {
        insecure: vec![registry.host().to_string()],
        mirrors: Vec::new(),
    }
}

pub(crate) fn inode(path: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::symlink_metadata(path).unwrap().ino()
}
