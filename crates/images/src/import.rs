//! Importing images from archives into the store (`kaji load`, like `kind load image-archive`):
//! an OCI image layout tarball (`skopeo copy ... oci-archive:`, `umoci`, `docker buildx -o
//! type=oci`) or a docker archive (`docker save`). The archive is extracted under `tmp/`, every
//! blob's digest is checked before it moves into `blobs/`, layers are unpacked like pulled
//! ones, and each named image is recorded under its normalised reference. A docker archive has
//! no manifest, so one is made (as containerd does on import) to give the image a digest.

use std::io::Read;
use std::path::{Path, PathBuf};

use oci_client::client::linux_amd64_resolver;
use oci_client::manifest::{OciDescriptor, OciImageIndex, OciImageManifest};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::error::{ImageError, ImportError};
use crate::pull::parse_image_config;
use crate::store::{Record, now_secs, sha256_hex};
use crate::{Image, ImageStore, reference};

/// The annotations naming an image in an OCI layout's index: containerd's full name first,
/// then the OCI one (which some tools set to a tag only).
const NAME_ANNOTATIONS: &[&str] = &["io.containerd.image.name", "org.opencontainers.image.ref.name"];
const MANIFEST_TYPES: &[&str] = &[
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
];
const INDEX_TYPES: &[&str] = &[
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
];

/// One image of a docker archive's `manifest.json`.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DockerArchiveEntry {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

/// One image found in an archive, its blobs already in the store.
struct Found {
    names: Vec<String>,
    manifest_digest: String,
    repo_digest_target: String,
    config_digest: String,
    layers: Vec<String>,
    size: u64,
}

impl ImageStore {
    /// Imports every named image of the archive read from `archive`; returns them as stored.
    pub async fn import_archive(&self, archive: impl Read + Send + 'static) -> Result<Vec<Image>, ImportError> {
        let dir = self.inner.tmp_path("import");
        let extract = {
            let dir = dir.clone();
            move || -> Result<(), ImportError> {
                std::fs::create_dir_all(&dir).map_err(|error| ImageError::io("creating", &dir, error))?;
                // `unpack` refuses entries that would land outside `dir`.
                tar::Archive::new(archive)
                    .unpack(&dir)
                    .map_err(|error| ImportError::Invalid(format!("not a readable tar archive: {error}")))
            }
        };
        let result = async {
            tokio::task::spawn_blocking(extract)
                .await
                .map_err(|error| ImportError::Invalid(format!("extracting: {error}")))??;
            let found = if dir.join("index.json").is_file() {
                self.oci_layout(&dir)?
            } else if dir.join("manifest.json").is_file() {
                self.docker_archive(&dir)?
            } else {
                return Err(ImportError::Invalid(
                    "neither an OCI image layout (index.json) nor a docker archive (manifest.json)".into(),
                ));
            };
            let mut images = Vec::new();
            for image in found {
                images.extend(self.record_found(image).await?);
            }
            Ok(images)
        }
        .await;
        let _ = tokio::fs::remove_dir_all(&dir).await;
        result
    }

    /// The images of an OCI layout: the index's entries that carry a name, multi-platform
    /// indexes resolved to linux/amd64.
    fn oci_layout(&self, dir: &Path) -> Result<Vec<Found>, ImportError> {
        let index: OciImageIndex = read_json(&dir.join("index.json"), "index.json")?;
        let mut found = Vec::new();
        for entry in &index.manifests {
            let name = NAME_ANNOTATIONS
                .iter()
                .find_map(|key| entry.annotations.as_ref().and_then(|a| a.get(*key)))
                .cloned();
            let Some(name) = name else { continue };
            let names = vec![full_name(&name)?];
            let manifest_digest = if INDEX_TYPES.contains(&entry.media_type.as_str()) {
                let nested: OciImageIndex = read_json(&self.take_blob(dir, &entry.digest)?, &entry.digest)?;
                linux_amd64_resolver(&nested.manifests)
                    .ok_or_else(|| ImportError::Invalid(format!("{name}: no linux/amd64 image in its index")))?
            } else if MANIFEST_TYPES.contains(&entry.media_type.as_str()) {
                entry.digest.clone()
            } else {
                return Err(ImportError::Invalid(format!(
                    "{name}: unsupported media type {:?}",
                    entry.media_type
                )));
            };
            let manifest: OciImageManifest = read_json(&self.take_blob(dir, &manifest_digest)?, &manifest_digest)?;
            let mut size = descriptor_size(&manifest.config);
            self.take_blob(dir, &manifest.config.digest)?;
            for layer in &manifest.layers {
                self.take_blob(dir, &layer.digest)?;
                size += descriptor_size(layer);
            }
            found.push(Found {
                names,
                manifest_digest,
                repo_digest_target: entry.digest.clone(),
                config_digest: manifest.config.digest.clone(),
                layers: manifest.layers.iter().map(|l| l.digest.clone()).collect(),
                size,
            });
        }
        if found.is_empty() {
            return Err(ImportError::Invalid(format!(
                "no image in index.json carries a name ({})",
                NAME_ANNOTATIONS.join(" or ")
            )));
        }
        Ok(found)
    }

    /// The images of a docker archive: blobs addressed by content, and a manifest made for each.
    fn docker_archive(&self, dir: &Path) -> Result<Vec<Found>, ImportError> {
        let entries: Vec<DockerArchiveEntry> = read_json(&dir.join("manifest.json"), "manifest.json")?;
        let mut found = Vec::new();
        for entry in entries {
            let names = entry
                .repo_tags
                .unwrap_or_default()
                .iter()
                .map(|tag| full_name(tag))
                .collect::<Result<Vec<_>, _>>()?;
            if names.is_empty() {
                continue;
            }
            let (config_digest, config_size) = self.take_file(dir, &entry.config)?;
            let mut layers = Vec::new();
            let mut size = config_size;
            for layer in &entry.layers {
                let (digest, layer_size) = self.take_file(dir, layer)?;
                size += layer_size;
                layers.push((digest, layer_size));
            }
            let manifest = serde_json::json!({
                "schemaVersion": 2,
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config_size},
                "layers": layers.iter().map(|(digest, size)| serde_json::json!({
                    "mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": digest, "size": size,
                })).collect::<Vec<_>>(),
            });
            let bytes = serde_json::to_vec(&manifest).map_err(|error| ImportError::Invalid(error.to_string()))?;
            let manifest_digest = digest_of(&bytes);
            let path = self.inner.tmp_path("manifest");
            std::fs::write(&path, &bytes).map_err(|error| ImageError::io("writing", &path, error))?;
            self.move_blob(&path, &manifest_digest)?;
            found.push(Found {
                names,
                repo_digest_target: manifest_digest.clone(),
                manifest_digest,
                config_digest,
                layers: layers.into_iter().map(|(digest, _)| digest).collect(),
                size,
            });
        }
        if found.is_empty() {
            return Err(ImportError::Invalid("no image in manifest.json has a RepoTag".into()));
        }
        Ok(found)
    }

    /// Unpacks the image's layers and records it under each of its names.
    async fn record_found(&self, image: Found) -> Result<Vec<Image>, ImportError> {
        let hex = sha256_hex(&image.config_digest)
            .ok_or_else(|| ImportError::Invalid(format!("unsupported digest {:?}", image.config_digest)))?;
        let config_path = self.inner.blob_path(hex);
        let bytes = std::fs::read(&config_path).map_err(|error| ImageError::io("reading", &config_path, error))?;
        let config = parse_image_config(&bytes)
            .map_err(|error| ImportError::Invalid(format!("image config {}: {error}", image.config_digest)))?;
        let first = image.names.first().cloned().unwrap_or_default();
        for layer in &image.layers {
            self.ensure_layer(layer)
                .await
                .map_err(|failure| ImportError::Unpack(failure.into_error(&first)))?;
        }
        let mut stored = Vec::new();
        for name in &image.names {
            let parsed = reference::parse(name).map_err(ImportError::Reference)?;
            let record = Record {
                repo_digest: reference::repo_digest(&parsed, &image.repo_digest_target),
                manifest_digest: image.manifest_digest.clone(),
                id: image.config_digest.clone(),
                config: config.clone(),
                layers: image.layers.clone(),
                size: image.size,
                last_used: now_secs(),
            };
            stored.push(self.insert(name, record)?);
        }
        Ok(stored)
    }

    /// Moves the layout's blob `digest` into the store (checking its content) and returns its
    /// path there.
    fn take_blob(&self, dir: &Path, digest: &str) -> Result<PathBuf, ImportError> {
        let hex = sha256_hex(digest).ok_or_else(|| ImportError::Invalid(format!("unsupported digest {digest:?}")))?;
        let target = self.inner.blob_path(hex);
        if target.is_file() {
            return Ok(target);
        }
        let source = dir.join("blobs/sha256").join(hex);
        let actual = digest_of_file(&source)?;
        if actual != digest {
            return Err(ImportError::Invalid(format!("blob {digest} has digest {actual}")));
        }
        self.move_blob(&source, digest)
    }

    /// Moves the archive's file `name` into the store as a blob; returns its digest and size.
    fn take_file(&self, dir: &Path, name: &str) -> Result<(String, u64), ImportError> {
        let source = dir.join(name);
        if !source.starts_with(dir) || name.split('/').any(|part| part == "..") {
            return Err(ImportError::Invalid(format!("{name:?} is outside the archive")));
        }
        let digest = digest_of_file(&source)?;
        let size = std::fs::metadata(&source)
            .map_err(|error| ImageError::io("reading", &source, error))?
            .len();
        self.move_blob(&source, &digest)?;
        Ok((digest, size))
    }

    fn move_blob(&self, source: &Path, digest: &str) -> Result<PathBuf, ImportError> {
        let hex = sha256_hex(digest).ok_or_else(|| ImportError::Invalid(format!("unsupported digest {digest:?}")))?;
        let target = self.inner.blob_path(hex);
        if !target.is_file() {
            std::fs::rename(source, &target).map_err(|error| ImageError::io("storing", &target, error))?;
        }
        Ok(target)
    }
}

/// A name as the archive gives it, normalised; a bare tag (what some tools write into
/// `org.opencontainers.image.ref.name`) names no repository and is refused.
fn full_name(name: &str) -> Result<String, ImportError> {
    if !name.contains('/') && !name.contains(':') && !name.contains('@') {
        return Err(ImportError::Invalid(format!(
            "the image name {name:?} is only a tag; name images with their repository (e.g. registry:5000/app:{name})"
        )));
    }
    reference::normalize_reference(name).map_err(ImportError::Reference)
}

fn descriptor_size(descriptor: &OciDescriptor) -> u64 {
    u64::try_from(descriptor.size).unwrap_or(0)
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path, what: &str) -> Result<T, ImportError> {
    let bytes = std::fs::read(path).map_err(|error| ImportError::Invalid(format!("reading {what}: {error}")))?;
    serde_json::from_slice(&bytes).map_err(|error| ImportError::Invalid(format!("{what}: {error}")))
}

fn digest_of(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

fn digest_of_file(path: &Path) -> Result<String, ImportError> {
    let mut file =
        std::fs::File::open(path).map_err(|error| ImportError::Invalid(format!("{}: {error}", path.display())))?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0; 1 << 16];
    loop {
        let read = file
            .read(&mut buffer)
            .map_err(|error| ImageError::io("reading", path, error))?;
        if read == 0 {
            break;
        }
        hasher.update(&buffer[..read]);
    }
    Ok(format!("sha256:{}", hex::encode(hasher.finalize())))
}
