//! Pod volumes: emptyDir (disk or tmpfs), hostPath (with its type checks), configMap, secret
//! (on tmpfs), downwardAPI and projected (written atomically through a `..data` symlink like
//! upstream's AtomicWriter, so updates appear all at once), and persistentVolumeClaim bound to a
//! hostPath or local PersistentVolume. Then each container's bind mounts, with subPath.

use std::collections::BTreeMap;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Component, Path, PathBuf};

use k8s_openapi::api::core::v1::{
    ConfigMap, Container, KeyToPath, PersistentVolume, PersistentVolumeClaim, Pod, Secret, Volume,
};

use super::env::{EnvSources, field_value, resource_value};

/// The objects volumes refer to, fetched by the worker.
#[derive(Debug, Default, Clone)]
pub struct VolumeSources {
    pub config_maps: BTreeMap<String, ConfigMap>,
    pub secrets: BTreeMap<String, Secret>,
    pub claims: BTreeMap<String, PersistentVolumeClaim>,
    pub volumes: BTreeMap<String, PersistentVolume>,
    /// Service account token for projected serviceAccountToken sources, when available.
    pub service_account_token: Option<String>,
    pub ca_crt: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum VolumeError {
    #[error("configmap \"{0}\" not found")]
    ConfigMapNotFound(String),
    #[error("secret \"{0}\" not found")]
    SecretNotFound(String),
    #[error("configmap references non-existent config key: {0}")]
    ConfigMapKey(String),
    #[error("secret references non-existent secret key: {0}")]
    SecretKey(String),
    #[error("persistentvolumeclaim \"{0}\" not found")]
    ClaimNotFound(String),
    #[error("persistentvolumeclaim \"{0}\" is not bound")]
    ClaimNotBound(String),
    #[error("persistentvolume \"{0}\" has no hostPath or local source")]
    UnsupportedVolume(String),
    #[error("hostPath type check failed: {path} is not a {expected}")]
    HostPathType { path: String, expected: String },
    #[error("volume {0:?} has no supported source")]
    UnsupportedSource(String),
    #[error("unable to find volume {0:?} for a volumeMount")]
    MissingVolume(String),
    #[error("invalid subPath {0:?}: must be a relative path without '..'")]
    SubPath(String),
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Env(#[from] super::env::EnvError),
}

fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> VolumeError {
    let context = context.into();
    move |source| VolumeError::Io { context, source }
}

/// A prepared volume: where it is on the node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreparedVolume {
    pub path: PathBuf,
    /// Always mounted read-only (configMap, secret, downwardAPI, projected).
    pub read_only: bool,
}

/// One bind mount for a container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindMount {
    pub source: PathBuf,
    pub destination: String,
    pub read_only: bool,
}

/// Prepares every volume of `pod` under `pod_dir/volumes`; idempotent (run on every sync, so
/// configMap and secret changes reach running pods).
pub fn prepare(
    pod: &Pod,
    pod_dir: &Path,
    sources: &VolumeSources,
    env_sources: &EnvSources,
) -> Result<BTreeMap<String, PreparedVolume>, VolumeError> {
    let mut out = BTreeMap::new();
    for volume in pod.spec.iter().flat_map(|s| s.volumes.iter().flatten()) {
        out.insert(
            volume.name.clone(),
            prepare_one(pod, volume, pod_dir, sources, env_sources)?,
        );
    }
    Ok(out)
}

fn volume_dir(pod_dir: &Path, plugin: &str, name: &str) -> PathBuf {
    pod_dir.join("volumes").join(plugin).join(name)
}

fn prepare_one(
    pod: &Pod,
    volume: &Volume,
    pod_dir: &Path,
    sources: &VolumeSources,
    env_sources: &EnvSources,
) -> Result<PreparedVolume, VolumeError> {
    let name = &volume.name;
    if let Some(empty) = &volume.empty_dir {
        let dir = volume_dir(pod_dir, "empty-dir", name);
        create_dir(&dir, 0o777)?;
        if empty.medium.as_deref() == Some("Memory") {
            let size = empty
                .size_limit
                .as_ref()
                .and_then(|q| api::validation::quantity::Quantity::parse(&q.0))
                .and_then(|q| q.milli_value())
                .map(|m| m / 1000);
            mount_tmpfs(&dir, size)?;
        }
        return Ok(PreparedVolume {
            path: dir,
            read_only: false,
        });
    }
    if let Some(host) = &volume.host_path {
        check_host_path(&host.path, host.type_.as_deref().unwrap_or(""))?;
        return Ok(PreparedVolume {
            path: PathBuf::from(&host.path),
            read_only: false,
        });
    }
    if let Some(claim_source) = &volume.persistent_volume_claim {
        let claim = sources
            .claims
            .get(&claim_source.claim_name)
            .ok_or_else(|| VolumeError::ClaimNotFound(claim_source.claim_name.clone()))?;
        let pv_name = claim
            .spec
            .as_ref()
            .and_then(|s| s.volume_name.clone())
            .filter(|n| !n.is_empty())
            .ok_or_else(|| VolumeError::ClaimNotBound(claim_source.claim_name.clone()))?;
        let pv = sources
            .volumes
            .get(&pv_name)
            .ok_or_else(|| VolumeError::ClaimNotBound(claim_source.claim_name.clone()))?;
        let spec = pv.spec.clone().unwrap_or_default();
        let path = if let Some(host) = spec.host_path {
            check_host_path(&host.path, host.type_.as_deref().unwrap_or("DirectoryOrCreate"))?;
            host.path
        } else if let Some(local) = spec.local {
            local.path
        } else {
            return Err(VolumeError::UnsupportedVolume(pv_name));
        };
        return Ok(PreparedVolume {
            path: PathBuf::from(path),
            read_only: claim_source.read_only.unwrap_or(false),
        });
    }
    let payload = if let Some(cm_source) = &volume.config_map {
        let mode = cm_source.default_mode.unwrap_or(0o644);
        config_map_files(
            sources,
            &cm_source.name,
            cm_source.items.as_deref(),
            mode,
            cm_source.optional,
        )?
        .into_iter()
        .map(|f| ("configmap", f))
        .collect::<Vec<_>>()
    } else if let Some(secret_source) = &volume.secret {
        let secret_name = secret_source.secret_name.clone().unwrap_or_default();
        let mode = secret_source.default_mode.unwrap_or(0o644);
        secret_files(
            sources,
            &secret_name,
            secret_source.items.as_deref(),
            mode,
            secret_source.optional,
        )?
        .into_iter()
        .map(|f| ("secret", f))
        .collect()
    } else if let Some(downward) = &volume.downward_api {
        let mode = downward.default_mode.unwrap_or(0o644);
        downward_files(pod, downward.items.as_deref().unwrap_or_default(), mode, env_sources)?
            .into_iter()
            .map(|f| ("downward-api", f))
            .collect()
    } else if let Some(projected) = &volume.projected {
        let mode = projected.default_mode.unwrap_or(0o644);
        let mut files = Vec::new();
        for source in projected.sources.iter().flatten() {
            if let Some(cm) = &source.config_map {
                files.extend(config_map_files(
                    sources,
                    &cm.name,
                    cm.items.as_deref(),
                    mode,
                    cm.optional,
                )?);
            }
            if let Some(secret) = &source.secret {
                files.extend(secret_files(
                    sources,
                    &secret.name,
                    secret.items.as_deref(),
                    mode,
                    secret.optional,
                )?);
            }
            if let Some(downward) = &source.downward_api {
                files.extend(downward_files(
                    pod,
                    downward.items.as_deref().unwrap_or_default(),
                    mode,
                    env_sources,
                )?);
            }
            if let Some(token) = &source.service_account_token
                && let Some(value) = &sources.service_account_token
            {
                files.push((token.path.clone(), value.as_bytes().to_vec(), 0o644));
            }
            if let Some(bundle) = &source.cluster_trust_bundle
                && let Some(ca) = &sources.ca_crt
            {
                files.push((bundle.path.clone(), ca.as_bytes().to_vec(), 0o644));
            }
        }
        files.into_iter().map(|f| ("projected", f)).collect()
    } else {
        return Err(VolumeError::UnsupportedSource(name.clone()));
    };
    let plugin = payload.first().map(|(p, _)| *p).unwrap_or(if volume.secret.is_some() {
        "secret"
    } else if volume.config_map.is_some() {
        "configmap"
    } else if volume.downward_api.is_some() {
        "downward-api"
    } else {
        "projected"
    });
    let dir = volume_dir(pod_dir, plugin, name);
    create_dir(&dir, 0o755)?;
    if volume.secret.is_some() || volume.projected.is_some() {
        // Secrets never touch disk.
        mount_tmpfs(&dir, None)?;
    }
    atomic_write(&dir, payload.into_iter().map(|(_, f)| f).collect())?;
    Ok(PreparedVolume {
        path: dir,
        read_only: true,
    })
}

type File = (String, Vec<u8>, i32);

/// The files of a configMap source (`data` and `binaryData`, or the selected `items`).
fn config_map_files(
    sources: &VolumeSources,
    name: &str,
    items: Option<&[KeyToPath]>,
    mode: i32,
    optional: Option<bool>,
) -> Result<Vec<File>, VolumeError> {
    let Some(cm) = sources.config_maps.get(name) else {
        return match optional {
            Some(true) => Ok(Vec::new()),
            _ => Err(VolumeError::ConfigMapNotFound(name.to_string())),
        };
    };
    let mut data: BTreeMap<String, Vec<u8>> = cm
        .data
        .iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.as_bytes().to_vec()))
        .collect();
    data.extend(cm.binary_data.iter().flatten().map(|(k, v)| (k.clone(), v.0.clone())));
    select(
        &data,
        items,
        mode,
        |k| VolumeError::ConfigMapKey(k.to_string()),
        optional,
    )
}

/// The files of a secret source (`data`, or the selected `items`).
fn secret_files(
    sources: &VolumeSources,
    name: &str,
    items: Option<&[KeyToPath]>,
    mode: i32,
    optional: Option<bool>,
) -> Result<Vec<File>, VolumeError> {
    let Some(secret) = sources.secrets.get(name) else {
        return match optional {
            Some(true) => Ok(Vec::new()),
            _ => Err(VolumeError::SecretNotFound(name.to_string())),
        };
    };
    let data: BTreeMap<String, Vec<u8>> = secret
        .data
        .iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.0.clone()))
        .collect();
    select(&data, items, mode, |k| VolumeError::SecretKey(k.to_string()), optional)
}

fn select(
    data: &BTreeMap<String, Vec<u8>>,
    items: Option<&[KeyToPath]>,
    default_mode: i32,
    missing: impl Fn(&str) -> VolumeError,
    optional: Option<bool>,
) -> Result<Vec<File>, VolumeError> {
    match items {
        None => Ok(data.iter().map(|(k, v)| (k.clone(), v.clone(), default_mode)).collect()),
        Some(items) => {
            let mut out = Vec::new();
            for item in items {
                match data.get(&item.key) {
                    Some(v) => out.push((item.path.clone(), v.clone(), item.mode.unwrap_or(default_mode))),
                    None if optional == Some(true) => {}
                    None => return Err(missing(&item.key)),
                }
            }
            Ok(out)
        }
    }
}

fn downward_files(
    pod: &Pod,
    items: &[k8s_openapi::api::core::v1::DownwardAPIVolumeFile],
    default_mode: i32,
    env_sources: &EnvSources,
) -> Result<Vec<File>, VolumeError> {
    let mut out = Vec::new();
    for item in items {
        let value = if let Some(field) = &item.field_ref {
            field_value(pod, &field.field_path)?
        } else if let Some(resource) = &item.resource_field_ref {
            let container = pod
                .spec
                .iter()
                .flat_map(|s| s.containers.iter())
                .find(|c| Some(c.name.as_str()) == resource.container_name.as_deref())
                .cloned()
                .unwrap_or_default();
            let divisor = resource.divisor.as_ref().map(|q| q.0.as_str()).unwrap_or("1");
            resource_value(&container, &resource.resource, divisor, env_sources)?
        } else {
            String::new()
        };
        out.push((item.path.clone(), value.into_bytes(), item.mode.unwrap_or(default_mode)));
    }
    Ok(out)
}

fn valid_relative(path: &str) -> bool {
    !path.is_empty()
        && Path::new(path).components().all(|c| matches!(c, Component::Normal(_)))
        && !path.starts_with("..")
}

/// Writes `files` into `dir` the way upstream's AtomicWriter does: a fresh timestamped
/// directory, then `..data` swapped to it with one rename, and top-level entries as symlinks
/// through `..data`. Nothing is rewritten when the payload did not change.
pub fn atomic_write(dir: &Path, files: Vec<File>) -> Result<(), VolumeError> {
    for (path, _, _) in &files {
        if !valid_relative(path) {
            return Err(VolumeError::SubPath(path.clone()));
        }
    }
    let data_link = dir.join("..data");
    if let Ok(current) = std::fs::read_link(&data_link)
        && same_payload(&dir.join(&current), &files)
    {
        return Ok(());
    }
    let stamp = format!("..{}", jiff::Timestamp::now().strftime("%Y_%m_%d_%H_%M_%S.%f"));
    let new_dir = dir.join(&stamp);
    create_dir(&new_dir, 0o755)?;
    for (path, bytes, mode) in &files {
        let target = new_dir.join(path);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(io(format!("creating {}", parent.display())))?;
        }
        std::fs::write(&target, bytes).map_err(io(format!("writing {}", target.display())))?;
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode((*mode as u32) & 0o7777))
            .map_err(io(format!("chmod {}", target.display())))?;
    }
    let tmp_link = dir.join("..data_tmp");
    let _ = std::fs::remove_file(&tmp_link);
    symlink(&stamp, &tmp_link).map_err(io("linking ..data_tmp"))?;
    let old = std::fs::read_link(&data_link).ok();
    std::fs::rename(&tmp_link, &data_link).map_err(io("swapping ..data"))?;
    // Top-level names → ..data/<name>; stale ones removed.
    let wanted: std::collections::BTreeSet<String> = files
        .iter()
        .filter_map(|(p, _, _)| p.split('/').next().map(str::to_string))
        .collect();
    for entry in std::fs::read_dir(dir)
        .map_err(io(format!("reading {}", dir.display())))?
        .flatten()
    {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.starts_with("..") && !wanted.contains(&name) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
    for name in &wanted {
        let link = dir.join(name);
        if std::fs::symlink_metadata(&link).is_err() {
            symlink(format!("..data/{name}"), &link).map_err(io(format!("linking {}", link.display())))?;
        }
    }
    if let Some(old) = old
        && old != Path::new(&stamp)
    {
        let _ = std::fs::remove_dir_all(dir.join(old));
    }
    Ok(())
}

fn same_payload(current: &Path, files: &[File]) -> bool {
    let count = walk_files(current).len();
    count == files.len()
        && files.iter().all(|(path, bytes, mode)| {
            let target = current.join(path);
            std::fs::read(&target).is_ok_and(|b| &b == bytes)
                && std::fs::metadata(&target).is_ok_and(|m| m.permissions().mode() & 0o7777 == (*mode as u32) & 0o7777)
        })
}

fn walk_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk_files(&path));
        } else {
            out.push(path);
        }
    }
    out
}

fn create_dir(dir: &Path, mode: u32) -> Result<(), VolumeError> {
    std::fs::create_dir_all(dir).map_err(io(format!("creating {}", dir.display())))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode)).map_err(io(format!("chmod {}", dir.display())))
}

fn is_mount_point(dir: &Path) -> bool {
    let Ok(mountinfo) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return false;
    };
    let target = dir.to_string_lossy();
    mountinfo
        .lines()
        .any(|line| line.split(' ').nth(4) == Some(target.as_ref()))
}

fn mount_tmpfs(dir: &Path, size_bytes: Option<i128>) -> Result<(), VolumeError> {
    if is_mount_point(dir) {
        return Ok(());
    }
    let data = size_bytes.map(|s| format!("size={s}"));
    nix::mount::mount(
        Some("tmpfs"),
        dir,
        Some("tmpfs"),
        nix::mount::MsFlags::MS_NOSUID | nix::mount::MsFlags::MS_NODEV,
        data.as_deref(),
    )
    .map_err(|e| VolumeError::Io {
        context: format!("mounting tmpfs on {}", dir.display()),
        source: e.into(),
    })
}

/// Unmounts every tmpfs under `pod_dir/volumes` and removes the pod's volume directories (not
/// hostPath or PV contents, which live elsewhere).
pub fn cleanup(pod_dir: &Path) -> Result<(), VolumeError> {
    let volumes = pod_dir.join("volumes");
    if let Ok(mountinfo) = std::fs::read_to_string("/proc/self/mountinfo") {
        let prefix = format!("{}/", volumes.to_string_lossy());
        let mut targets: Vec<&str> = mountinfo
            .lines()
            .filter_map(|line| line.split(' ').nth(4))
            .filter(|t| t.starts_with(&prefix))
            .collect();
        targets.sort_by_key(|t| std::cmp::Reverse(t.len()));
        for target in targets {
            nix::mount::umount2(target, nix::mount::MntFlags::MNT_DETACH).map_err(|e| VolumeError::Io {
                context: format!("unmounting {target}"),
                source: e.into(),
            })?;
        }
    }
    match std::fs::remove_dir_all(&volumes) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io(format!("removing {}", volumes.display()))(e)),
    }
}

fn check_host_path(path: &str, type_: &str) -> Result<(), VolumeError> {
    use std::os::unix::fs::FileTypeExt;
    let meta = std::fs::metadata(path);
    let fail = |expected: &str| VolumeError::HostPathType {
        path: path.to_string(),
        expected: expected.to_string(),
    };
    match type_ {
        "" => Ok(()),
        "DirectoryOrCreate" => {
            if meta.is_err() {
                std::fs::create_dir_all(path).map_err(io(format!("creating {path}")))?;
                std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
                    .map_err(io(format!("chmod {path}")))?;
            } else if !meta.as_ref().is_ok_and(|m| m.is_dir()) {
                return Err(fail("directory"));
            }
            Ok(())
        }
        "FileOrCreate" => {
            if meta.is_err() {
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .map_err(io(format!("creating {path}")))?;
            } else if !meta.as_ref().is_ok_and(|m| m.is_file()) {
                return Err(fail("file"));
            }
            Ok(())
        }
        "Directory" if meta.as_ref().is_ok_and(|m| m.is_dir()) => Ok(()),
        "File" if meta.as_ref().is_ok_and(|m| m.is_file()) => Ok(()),
        "Socket" if meta.as_ref().is_ok_and(|m| m.file_type().is_socket()) => Ok(()),
        "CharDevice" if meta.as_ref().is_ok_and(|m| m.file_type().is_char_device()) => Ok(()),
        "BlockDevice" if meta.as_ref().is_ok_and(|m| m.file_type().is_block_device()) => Ok(()),
        "Directory" => Err(fail("directory")),
        "File" => Err(fail("file")),
        "Socket" => Err(fail("socket")),
        "CharDevice" => Err(fail("character device")),
        "BlockDevice" => Err(fail("block device")),
        other => Err(fail(other)),
    }
}

/// The bind mounts of `container` (its volumeMounts, with subPath and readOnly).
pub fn container_mounts(
    container: &Container,
    volumes: &BTreeMap<String, PreparedVolume>,
) -> Result<Vec<BindMount>, VolumeError> {
    let mut out = Vec::new();
    for mount in container.volume_mounts.iter().flatten() {
        let volume = volumes
            .get(&mount.name)
            .ok_or_else(|| VolumeError::MissingVolume(mount.name.clone()))?;
        let sub_path = mount.sub_path.as_deref().filter(|s| !s.is_empty());
        let source = match sub_path {
            Some(sub) => {
                if !valid_relative(sub) {
                    return Err(VolumeError::SubPath(sub.to_string()));
                }
                let source = volume.path.join(sub);
                // Resolve symlinks and make sure the result stays inside the volume.
                if std::fs::symlink_metadata(&source).is_err() && !volume.read_only {
                    std::fs::create_dir_all(&source).map_err(io(format!("creating subPath {}", source.display())))?;
                }
                let resolved = source
                    .canonicalize()
                    .map_err(io(format!("resolving subPath {}", source.display())))?;
                let base = volume
                    .path
                    .canonicalize()
                    .map_err(io(format!("resolving {}", volume.path.display())))?;
                if !resolved.starts_with(&base) {
                    return Err(VolumeError::SubPath(sub.to_string()));
                }
                resolved
            }
            None => volume.path.clone(),
        };
        out.push(BindMount {
            source,
            destination: mount.mount_path.clone(),
            read_only: volume.read_only || mount.read_only.unwrap_or(false),
        });
    }
    Ok(out)
}

#[cfg(test)]
#[path = "volumes_tests.rs"]
mod tests;
