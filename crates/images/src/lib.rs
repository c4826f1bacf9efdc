//! OCI images for the kubelet: pulling through the distribution API ([`ImageStore::pull`]) or
//! importing archives ([`ImageStore::import_archive`]),
//! a content-addressed store shared by all pods, layers unpacked once for overlayfs, image
//! garbage collection, and one overlayfs root filesystem per container ([`mount_rootfs`]).
//!
//! Layout of the store root (the kubelet passes `<root-dir>/images`):
//!
//! ```text
//! blobs/sha256/<hex>      config and layer blobs, as downloaded (digest verified)
//! layers/sha256/<hex>/    each layer blob unpacked once (whiteouts in overlayfs form)
//! tmp/                    downloads and unpacks in progress, renamed into place when complete
//! index.json              references → images, with last-use times (survives restarts)
//! ```
//!
//! Nothing is ever half-written under `blobs/` or `layers/`: content goes to `tmp/` first and
//! is renamed into place, and `tmp/` is emptied when the store is opened.
//!
//! Everything here needs root (ownership, device nodes, `trusted.*` xattrs, mounts).

mod credentials;
mod error;
mod import;
mod pull;
mod reference;
mod rootfs;
mod store;
mod unpack;

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub use credentials::{CredentialsError, RegistryCredential, credentials_from_dockerconfigjson, matching_credentials};
pub use error::{ImageError, ImportError, PullError};
pub use reference::normalize_reference;
pub use rootfs::{MAX_MOUNT_OPTIONS, mount_rootfs, unmount_rootfs};
pub use store::{GcReport, ImageStore, StoreStats};
pub use unpack::{Compression, detect_compression, unpack_layer};

/// How to reach registries, from the kubelet's flags.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RegistryConfig {
    /// `host:port` of registries spoken to over plain HTTP (`--insecure-registry`). A mirror
    /// target of an insecure registry is insecure too.
    pub insecure: Vec<String>,
    /// Registry host rewrites `(from, to)` (`--registry-mirror FROM=TO`), e.g.
    /// `("registry:5000", "127.0.0.1:5000")`. References keep naming `from`.
    pub mirrors: Vec<(String, String)>,
}

/// An image present in the store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Image {
    /// The normalised reference it was pulled as (`docker.io/library/busybox:latest`).
    pub reference: String,
    /// `repository@digest` of what was pulled (the index digest for multi-arch images), as the
    /// kubelet reports in `status.containerStatuses[].imageID`.
    pub repo_digest: String,
    /// The image id: the digest of its config (`sha256:...`).
    pub id: String,
    /// The runtime-relevant part of the image config.
    pub config: ImageConfig,
    /// Unpacked layer directories, bottom layer first.
    pub layers: Vec<PathBuf>,
    /// Bytes of the config and (compressed) layer blobs, as upstream reports image sizes.
    pub size: u64,
}

/// What the runtime needs from an image's config (`config` in the OCI image config JSON).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageConfig {
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    /// `NAME=value` entries.
    pub env: Vec<String>,
    /// Empty means `/`.
    pub working_dir: String,
    /// `user`, `uid`, `user:group` or `uid:gid`; empty means root.
    pub user: String,
    /// `80/tcp` style keys.
    pub exposed_ports: Vec<String>,
    pub labels: BTreeMap<String, String>,
    pub stop_signal: Option<String>,
}
