//! Pulling an image with `oci-client`: credentials tried in the keyring's order, mirrors and
//! plain-HTTP registries, linux/amd64 chosen from multi-arch indexes, blobs downloaded (digest
//! verified) and layers unpacked once each, under a per-digest lock.

use std::collections::BTreeMap;
use std::sync::Once;
use std::sync::atomic::Ordering;
use std::time::Duration;

use oci_client::client::{ClientConfig, ClientProtocol, linux_amd64_resolver};
use oci_client::errors::{OciDistributionError, OciErrorCode};
use oci_client::manifest::{OciDescriptor, OciImageManifest};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};
use serde::Deserialize;

use crate::credentials::{RegistryCredential, matching_credentials};
use crate::error::{ImageError, PullError};
use crate::reference::{self, canonical_host, mirror_for};
use crate::store::{ImageStore, Record, now_secs, sha256_hex};
use crate::unpack::unpack_layer;
use crate::{Image, ImageConfig};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const READ_TIMEOUT: Duration = Duration::from_secs(60);
const LAYER_MEDIA_TYPES: &[&str] = &[
    "application/vnd.oci.image.layer.v1.tar",
    "application/vnd.oci.image.layer.v1.tar+gzip",
    "application/vnd.oci.image.layer.v1.tar+zstd",
    "application/vnd.oci.image.layer.nondistributable.v1.tar",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
    "application/vnd.docker.image.rootfs.diff.tar",
    "application/vnd.docker.image.rootfs.diff.tar.gzip",
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
];

/// What a failure is, before it gets the image name.
pub(crate) enum Failure {
    NotFound(String),
    Unauthorized(String),
    Unreachable(String),
    BadDigest(String),
    Unpack(String),
    Registry(String),
    Store(String),
}

impl Failure {
    pub(crate) fn into_error(self, image: &str) -> PullError {
        let image = image.to_string();
        match self {
            Failure::NotFound(message) => PullError::NotFound { image, message },
            Failure::Unauthorized(message) => PullError::Unauthorized { image, message },
            Failure::Unreachable(message) => PullError::Unreachable { image, message },
            Failure::BadDigest(message) => PullError::BadDigest { image, message },
            Failure::Unpack(message) => PullError::Unpack { image, message },
            Failure::Registry(message) => PullError::Registry { image, message },
            Failure::Store(message) => PullError::Store { image, message },
        }
    }
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// Sorts an `oci-client` error into the kinds the kubelet reports.
fn classify(error: OciDistributionError, normalized: &str, registry: &str) -> Failure {
    let not_found = || {
        Failure::NotFound(format!(
            "failed to resolve reference \"{normalized}\": {normalized}: not found"
        ))
    };
    let unauthorized = |detail: String| {
        Failure::Unauthorized(format!(
            "failed to resolve reference \"{normalized}\": pull access denied, repository does not exist or may \
             require authorization: {detail}"
        ))
    };
    match error {
        OciDistributionError::RegistryError { envelope, .. } => {
            let codes: Vec<&OciErrorCode> = envelope.errors.iter().map(|error| &error.code).collect();
            if codes
                .iter()
                .any(|code| matches!(code, OciErrorCode::Unauthorized | OciErrorCode::Denied))
            {
                unauthorized(envelope.to_string())
            } else if codes.iter().any(|code| {
                matches!(
                    code,
                    OciErrorCode::ManifestUnknown
                        | OciErrorCode::NameUnknown
                        | OciErrorCode::BlobUnknown
                        | OciErrorCode::NotFound
                )
            }) {
                not_found()
            } else {
                Failure::Registry(format!("failed to resolve reference \"{normalized}\": {envelope}"))
            }
        }
        OciDistributionError::UnauthorizedError { url } => unauthorized(format!("401 Unauthorized from {url}")),
        OciDistributionError::AuthenticationFailure(reason) => {
            unauthorized(format!("failed to fetch oauth token: {}", reason.trim()))
        }
        OciDistributionError::ServerError { code: 404, .. } | OciDistributionError::ImageManifestNotFoundError(_) => {
            not_found()
        }
        OciDistributionError::ServerError {
            code: 401 | 403,
            url,
            message,
        } => unauthorized(format!("{url}: {}", message.trim())),
        OciDistributionError::DigestError(error) => {
            Failure::BadDigest(format!("failed to verify content of \"{normalized}\": {error}"))
        }
        OciDistributionError::RequestError(error) if error.is_connect() || error.is_timeout() => Failure::Unreachable(
            format!("failed to do request to registry {registry}: {}", error_chain(&error)),
        ),
        OciDistributionError::IoError(error) => Failure::Store(format!("writing content of \"{normalized}\": {error}")),
        other => Failure::Registry(format!("failed to pull \"{normalized}\": {}", error_chain(&other))),
    }
}

/// The config file's fields the runtime uses (Docker and OCI spell them alike).
#[derive(Deserialize, Default)]
#[serde(default)]
struct RawConfigFile {
    config: Option<RawConfig>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "PascalCase")]
struct RawConfig {
    entrypoint: Option<Vec<String>>,
    cmd: Option<Vec<String>>,
    env: Option<Vec<String>>,
    working_dir: Option<String>,
    user: Option<String>,
    exposed_ports: Option<BTreeMap<String, serde_json::Value>>,
    labels: Option<BTreeMap<String, String>>,
    stop_signal: Option<String>,
}

pub(crate) fn parse_image_config(bytes: &[u8]) -> Result<ImageConfig, serde_json::Error> {
    let raw: RawConfigFile = serde_json::from_slice(bytes)?;
    let config = raw.config.unwrap_or_default();
    Ok(ImageConfig {
        entrypoint: config.entrypoint.unwrap_or_default(),
        cmd: config.cmd.unwrap_or_default(),
        env: config.env.unwrap_or_default(),
        working_dir: config.working_dir.unwrap_or_default(),
        user: config.user.unwrap_or_default(),
        exposed_ports: config.exposed_ports.unwrap_or_default().into_keys().collect(),
        labels: config.labels.unwrap_or_default(),
        stop_signal: config.stop_signal.filter(|signal| !signal.is_empty()),
    })
}

/// oci-client with `rustls-tls-no-provider` needs a process-wide crypto provider: ring.
fn install_crypto_provider() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        // Fails only if another provider is installed already, which is just as good.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

impl ImageStore {
    fn client(&self) -> Client {
        install_crypto_provider();
        let config = &self.inner.config;
        let mut insecure: Vec<String> = config.insecure.iter().map(|host| canonical_host(host)).collect();
        for (from, to) in &config.mirrors {
            if insecure.contains(&canonical_host(from)) {
                insecure.push(canonical_host(to));
            }
        }
        Client::new(ClientConfig {
            protocol: ClientProtocol::HttpsExcept(insecure),
            platform_resolver: Some(Box::new(linux_amd64_resolver)),
            connect_timeout: Some(CONNECT_TIMEOUT),
            read_timeout: Some(READ_TIMEOUT),
            ..ClientConfig::default()
        })
    }

    /// Pulls `reference` (normalised like upstream) with the first of `auth` that matches its
    /// registry and works (anonymously when none matches), unpacks its layers and records it.
    /// Blobs and layers already in the store are not fetched again.
    pub async fn pull(&self, reference: &str, auth: &[RegistryCredential]) -> Result<Image, PullError> {
        let mut parsed = reference::parse(reference)?;
        let normalized = parsed.whole();
        if parsed.digest().is_some()
            && let Some(image) = self.present_by_digest(&normalized)
        {
            return Ok(image);
        }
        let registry = parsed.registry().to_string();
        let mut candidates = matching_credentials(auth, &registry, parsed.repository());
        if let Some(mirror) = mirror_for(&registry, &self.inner.config.mirrors) {
            let mirror = mirror.to_string();
            for credential in matching_credentials(auth, &mirror, parsed.repository()) {
                if !candidates.contains(&credential) {
                    candidates.push(credential);
                }
            }
            parsed.set_mirror_registry(mirror);
        }
        let contacted = parsed.resolve_registry().to_string();
        let fail = |failure: Failure| failure.into_error(reference);

        let mut attempts: Vec<RegistryAuth> = candidates
            .iter()
            .map(|credential| RegistryAuth::Basic(credential.username.clone(), credential.password.clone()))
            .collect();
        if attempts.is_empty() {
            attempts.push(RegistryAuth::Anonymous);
        }
        let mut last_failure = None;
        let mut resolved = None;
        for auth in &attempts {
            let client = self.client();
            match client.pull_image_manifest_and_list_digest(&parsed, auth).await {
                Ok(found) => {
                    resolved = Some((client, found));
                    break;
                }
                Err(error) => {
                    let failure = classify(error, &normalized, &contacted);
                    let retry = matches!(failure, Failure::Unauthorized(_));
                    last_failure = Some(failure);
                    if !retry {
                        break;
                    }
                }
            }
        }
        let Some((client, (manifest, manifest_digest, list_digest))) = resolved else {
            return Err(fail(
                last_failure.unwrap_or_else(|| Failure::Registry("no attempt made".into())),
            ));
        };
        let repo_digest = reference::repo_digest(&parsed, list_digest.as_deref().unwrap_or(&manifest_digest));
        tracing::debug!(image = %normalized, %repo_digest, layers = manifest.layers.len(), "pulling");

        let record = self
            .fetch_content(
                &client,
                &parsed,
                &normalized,
                &contacted,
                &manifest,
                &manifest_digest,
                repo_digest,
            )
            .await
            .map_err(fail)?;
        self.insert(&normalized, record)
            .map_err(|error| fail(Failure::Store(error.to_string())))
    }

    #[allow(clippy::too_many_arguments)]
    async fn fetch_content(
        &self,
        client: &Client,
        parsed: &Reference,
        normalized: &str,
        contacted: &str,
        manifest: &OciImageManifest,
        manifest_digest: &str,
        repo_digest: String,
    ) -> Result<Record, Failure> {
        let bad_digest = |digest: &str| Failure::Registry(format!("unsupported digest {digest:?} in \"{normalized}\""));
        for layer in &manifest.layers {
            if !LAYER_MEDIA_TYPES.contains(&layer.media_type.as_str()) {
                return Err(Failure::Registry(format!(
                    "unsupported layer media type {:?} in \"{normalized}\"",
                    layer.media_type
                )));
            }
            sha256_hex(&layer.digest).ok_or_else(|| bad_digest(&layer.digest))?;
        }
        sha256_hex(&manifest.config.digest).ok_or_else(|| bad_digest(&manifest.config.digest))?;

        let mut digests: Vec<String> = manifest.layers.iter().map(|layer| layer.digest.clone()).collect();
        digests.push(manifest.config.digest.clone());
        let _pins = self.pin(digests);

        let config_path = self
            .ensure_blob(client, parsed, normalized, contacted, &manifest.config)
            .await?;
        let config_bytes = tokio::fs::read(&config_path)
            .await
            .map_err(|error| Failure::Store(format!("reading {}: {error}", config_path.display())))?;
        let config = parse_image_config(&config_bytes)
            .map_err(|error| Failure::Registry(format!("invalid image config of \"{normalized}\": {error}")))?;

        for layer in &manifest.layers {
            self.ensure_blob(client, parsed, normalized, contacted, layer).await?;
            self.ensure_layer(&layer.digest).await?;
        }
        let size = std::iter::once(&manifest.config)
            .chain(&manifest.layers)
            .map(|descriptor| u64::try_from(descriptor.size).unwrap_or(0))
            .sum();
        Ok(Record {
            repo_digest,
            manifest_digest: manifest_digest.to_string(),
            id: manifest.config.digest.clone(),
            config,
            layers: manifest.layers.iter().map(|layer| layer.digest.clone()).collect(),
            size,
            last_used: now_secs(),
        })
    }

    /// Downloads a blob into `blobs/sha256/<hex>` unless it is there; oci-client verifies the
    /// digest while streaming.
    async fn ensure_blob(
        &self,
        client: &Client,
        parsed: &Reference,
        normalized: &str,
        contacted: &str,
        descriptor: &OciDescriptor,
    ) -> Result<std::path::PathBuf, Failure> {
        let hex = sha256_hex(&descriptor.digest)
            .ok_or_else(|| Failure::Registry(format!("unsupported digest {:?}", descriptor.digest)))?;
        let path = self.inner.blob_path(hex);
        let lock = self.inner.digest_lock(&format!("blob:{hex}"));
        let _guard = lock.lock().await;
        if tokio::fs::try_exists(&path).await.unwrap_or(false) {
            return Ok(path);
        }
        let tmp = self.inner.tmp_path("blob");
        let result = async {
            let file = tokio::fs::File::create(&tmp)
                .await
                .map_err(|error| Failure::Store(format!("creating {}: {error}", tmp.display())))?;
            client
                .pull_blob(parsed, descriptor, file)
                .await
                .map_err(|error| classify(error, normalized, contacted))?;
            tokio::fs::rename(&tmp, &path)
                .await
                .map_err(|error| Failure::Store(format!("storing {}: {error}", path.display())))
        }
        .await;
        if result.is_err() {
            let _ = tokio::fs::remove_file(&tmp).await;
        }
        result?;
        self.inner.blobs_downloaded.fetch_add(1, Ordering::Relaxed);
        Ok(path)
    }

    /// Unpacks a stored layer blob into `layers/sha256/<hex>` unless it is there: into `tmp/`
    /// first, then renamed, so a crash never leaves a half layer.
    pub(crate) async fn ensure_layer(&self, digest: &str) -> Result<(), Failure> {
        let hex = sha256_hex(digest).ok_or_else(|| Failure::Registry(format!("unsupported digest {digest:?}")))?;
        let target = self.inner.layer_path(hex);
        let lock = self.inner.digest_lock(&format!("layer:{hex}"));
        let _guard = lock.lock().await;
        if tokio::fs::try_exists(&target).await.unwrap_or(false) {
            return Ok(());
        }
        let blob = self.inner.blob_path(hex);
        let tmp = self.inner.tmp_path("layer");
        let unpack = {
            let tmp = tmp.clone();
            move || -> Result<(), ImageError> {
                std::fs::create_dir(&tmp).map_err(|error| ImageError::io("creating", &tmp, error))?;
                let file = std::fs::File::open(&blob).map_err(|error| ImageError::io("opening", &blob, error))?;
                unpack_layer(file, &tmp)?;
                match std::fs::rename(&tmp, &target) {
                    Ok(()) => Ok(()),
                    // Another process unpacked the same layer meanwhile.
                    Err(_) if target.is_dir() => {
                        let _ = std::fs::remove_dir_all(&tmp);
                        Ok(())
                    }
                    Err(error) => Err(ImageError::io("storing", &target, error)),
                }
            }
        };
        let result = tokio::task::spawn_blocking(unpack)
            .await
            .map_err(|error| Failure::Unpack(format!("unpacking layer {digest}: {error}")))?;
        if let Err(error) = result {
            let _ = tokio::fs::remove_dir_all(&tmp).await;
            return Err(Failure::Unpack(format!("failed to extract layer {digest}: {error}")));
        }
        self.inner.layers_unpacked.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_runtime_config() {
        let json = br#"{
            "architecture": "amd64", "os": "linux",
            "config": {
                "Entrypoint": ["/bin/sh", "-c"], "Cmd": ["echo hi"], "Env": ["PATH=/bin", "A=b=c"],
                "WorkingDir": "/work", "User": "1000:1000",
                "ExposedPorts": {"80/tcp": {}, "53/udp": {}},
                "Labels": {"app": "demo"}, "StopSignal": "SIGQUIT"
            },
            "rootfs": {"type": "layers", "diff_ids": []}
        }"#;
        let config = parse_image_config(json).unwrap();
        assert_eq!(config.entrypoint, ["/bin/sh", "-c"]);
        assert_eq!(config.cmd, ["echo hi"]);
        assert_eq!(config.env, ["PATH=/bin", "A=b=c"]);
        assert_eq!(config.working_dir, "/work");
        assert_eq!(config.user, "1000:1000");
        assert_eq!(config.exposed_ports, ["53/udp", "80/tcp"]);
        assert_eq!(config.labels.get("app").map(String::as_str), Some("demo"));
        assert_eq!(config.stop_signal.as_deref(), Some("SIGQUIT"));
    }

    #[test]
    fn tolerates_missing_and_null_config_fields() {
        let config = parse_image_config(br#"{"config": {"Cmd": null, "Env": null}}"#).unwrap();
        assert_eq!(config, ImageConfig::default());
        assert_eq!(parse_image_config(b"{}").unwrap(), ImageConfig::default());
        assert!(parse_image_config(b"[1]").is_err());
    }
}
