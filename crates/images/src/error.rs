//! Error types: [`PullError`] for pulls (what the kubelet turns into pod reasons and messages)
//! [`ImageError`] for the local store, unpacking and root filesystem mounts, and [`ImportError`]
//! for image archives.

use std::path::PathBuf;

/// Why a pull failed. Every variant displays as upstream's
/// `Failed to pull image "REFERENCE": DETAIL`, so the kubelet can put it in a container's
/// `waiting.message` and in the `Failed` event verbatim.
#[derive(Debug, thiserror::Error)]
pub enum PullError {
    /// The reference does not parse (upstream reason `InvalidImageName`).
    #[error("Failed to apply default image tag \"{image}\": couldn't parse image name \"{image}\": {message}")]
    InvalidReference { image: String, message: String },
    /// The registry does not know the repository, tag or digest.
    #[error("Failed to pull image \"{image}\": {message}")]
    NotFound { image: String, message: String },
    /// The registry refused the (missing or wrong) credentials.
    #[error("Failed to pull image \"{image}\": {message}")]
    Unauthorized { image: String, message: String },
    /// The registry could not be reached (connection refused, DNS, TLS, timeout).
    #[error("Failed to pull image \"{image}\": {message}")]
    Unreachable { image: String, message: String },
    /// Content did not match its digest.
    #[error("Failed to pull image \"{image}\": {message}")]
    BadDigest { image: String, message: String },
    /// A layer could not be unpacked (bad archive, path traversal, disk full).
    #[error("Failed to pull image \"{image}\": {message}")]
    Unpack { image: String, message: String },
    /// Any other answer of the registry (5xx, unsupported manifest, no linux/amd64 entry).
    #[error("Failed to pull image \"{image}\": {message}")]
    Registry { image: String, message: String },
    /// The local store failed (I/O on the root directory).
    #[error("Failed to pull image \"{image}\": {message}")]
    Store { image: String, message: String },
}

impl PullError {
    /// The container waiting reason upstream's kubelet reports for this failure.
    pub fn reason(&self) -> &'static str {
        match self {
            PullError::InvalidReference { .. } => "InvalidImageName",
            _ => "ErrImagePull",
        }
    }

    /// The reference as the caller gave it.
    pub fn image(&self) -> &str {
        match self {
            PullError::InvalidReference { image, .. }
            | PullError::NotFound { image, .. }
            | PullError::Unauthorized { image, .. }
            | PullError::Unreachable { image, .. }
            | PullError::BadDigest { image, .. }
            | PullError::Unpack { image, .. }
            | PullError::Registry { image, .. }
            | PullError::Store { image, .. } => image,
        }
    }
}

/// Failures of the local store, the layer unpacker and the overlay mounts.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// An I/O operation on `path` failed.
    #[error("{action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A layer archive contains a path that would land outside the layer directory.
    #[error("layer entry {entry:?} escapes the layer directory")]
    PathTraversal { entry: String },
    /// A layer archive is malformed.
    #[error("invalid layer archive: {0}")]
    InvalidArchive(String),
    /// The on-disk index could not be read or written.
    #[error("image index {path}: {message}")]
    Index { path: PathBuf, message: String },
    /// mount(2) / umount(2) failed.
    #[error("{action} {path}: {source}")]
    Mount {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: nix::Error,
    },
    /// A path cannot be used as an overlayfs option (contains ',' or ':').
    #[error("path {0} cannot be used in overlayfs options (contains ',' or ':')")]
    UnusablePath(PathBuf),
    /// The mount helper for long lowerdir lists failed.
    #[error("mounting overlay at {path} failed: {message}")]
    MountHelper { path: PathBuf, message: String },
    /// No image with that id is in the store.
    #[error("image {0} not found in the store")]
    NotFound(String),
}

impl ImageError {
    pub(crate) fn io(action: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        ImageError::Io {
            action,
            path: path.into(),
            source,
        }
    }
}

/// Why importing an image archive failed.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The archive is not an image archive we understand, or its content is inconsistent.
    #[error("{0}")]
    Invalid(String),
    /// An image name in the archive does not parse.
    #[error(transparent)]
    Reference(PullError),
    /// A layer could not be unpacked.
    #[error(transparent)]
    Unpack(PullError),
    /// The local store failed.
    #[error(transparent)]
    Store(#[from] ImageError),
}
