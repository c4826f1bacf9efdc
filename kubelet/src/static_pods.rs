//! Static pods: manifests in `--pod-manifest-path` run without the API (files added, changed
//! and removed at runtime are picked up within a second), and each gets a **mirror pod** in the
//! API (`<name>-<node>`, annotated `kubernetes.io/config.mirror`) that shows its status, as
//! upstream's kubelet does. A changed file is a new pod (a new UID), like upstream.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{Api, DeleteParams, PostParams};
use tokio_util::sync::CancellationToken;

use crate::pods::manager::PodManager;
use crate::pods::worker::StatusTarget;

pub const MIRROR_ANNOTATION: &str = "kubernetes.io/config.mirror";
const HASH_ANNOTATION: &str = "kubernetes.io/config.hash";
const SOURCE_ANNOTATION: &str = "kubernetes.io/config.source";

/// A static pod read from a file.
#[derive(Debug, Clone)]
pub struct StaticPod {
    pub uid: String,
    pub pod: Pod,
}

/// FNV-1a, 128 bits: a stable hash for static pod UIDs (std's hasher may change between
/// Rust releases, and a UID must survive a kubelet upgrade).
fn fnv128(data: &[u8]) -> u128 {
    let mut hash: u128 = 0x6c62272e07bb014262b821756295c58d;
    for byte in data {
        hash ^= u128::from(*byte);
        hash = hash.wrapping_mul(0x0000000001000000000000000000013B);
    }
    hash
}

/// Reads one manifest: the pod as the kubelet runs it (name `<name>-<node>`, node bound, UID
/// from the content, config annotations).
pub fn read_manifest(path: &Path, node: &str) -> Result<StaticPod, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("reading {}: {e}", path.display()))?;
    let options = serde_saphyr::options! { legacy_octal_numbers: true };
    let mut pod: Pod = serde_saphyr::from_str_with_options(&text, options)
        .map_err(|e| format!("{}: invalid pod manifest: {e}", path.display()))?;
    if pod.metadata.name.as_deref().is_none_or(str::is_empty) {
        return Err(format!("{}: the pod has no name", path.display()));
    }
    let namespace = pod.metadata.namespace.clone().unwrap_or_else(|| "default".to_string());
    let name = format!("{}-{node}", pod.metadata.name.clone().unwrap_or_default());
    let hash = fnv128(format!("{}\n{node}\n{text}", path.display()).as_bytes());
    let uid = format!("{hash:032x}");
    pod.metadata.name = Some(name);
    pod.metadata.namespace = Some(namespace);
    pod.metadata.uid = Some(uid.clone());
    let annotations = pod.metadata.annotations.get_or_insert_with(Default::default);
    annotations.insert(HASH_ANNOTATION.to_string(), uid.clone());
    annotations.insert(SOURCE_ANNOTATION.to_string(), "file".to_string());
    let spec = pod.spec.get_or_insert_with(Default::default);
    spec.node_name = Some(node.to_string());
    Ok(StaticPod { uid, pod })
}

/// Every static pod in `dir` (unreadable files are skipped with a warning).
pub fn read_dir(dir: &Path, node: &str) -> BTreeMap<PathBuf, StaticPod> {
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') || !path.is_file() {
            continue;
        }
        match read_manifest(&path, node) {
            Ok(pod) => {
                out.insert(path, pod);
            }
            Err(error) => tracing::warn!(%error, "skipping a static pod manifest"),
        }
    }
    out
}

/// The UIDs of the static pods currently in the manifest directory.
pub fn static_uids(manifest_dir: Option<&Path>, node: &str) -> HashSet<String> {
    manifest_dir
        .map(|dir| read_dir(dir, node).into_values().map(|p| p.uid).collect())
        .unwrap_or_default()
}

/// Syncs the manifest directory into the pod manager every second, and keeps mirror pods.
pub async fn run(manager: PodManager, client: kube::Client, dir: PathBuf, node: String, cancel: CancellationToken) {
    let mut running: BTreeMap<String, StaticPod> = BTreeMap::new();
    loop {
        let current: BTreeMap<String, StaticPod> = read_dir(&dir, &node)
            .into_values()
            .map(|p| (p.uid.clone(), p))
            .collect();
        for (uid, old) in &running {
            if !current.contains_key(uid) {
                manager.remove(uid);
                delete_mirror(&client, &old.pod).await;
            }
        }
        for (uid, static_pod) in &current {
            ensure_mirror(&client, &static_pod.pod, &node).await;
            let target = StatusTarget {
                namespace: static_pod.pod.metadata.namespace.clone().unwrap_or_default(),
                name: static_pod.pod.metadata.name.clone().unwrap_or_default(),
                is_static: true,
            };
            if !running.contains_key(uid) {
                manager.update(uid, static_pod.pod.clone(), target);
            }
        }
        running = current;
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}

async fn ensure_mirror(client: &kube::Client, pod: &Pod, node: &str) {
    let namespace = pod.metadata.namespace.clone().unwrap_or_default();
    let name = pod.metadata.name.clone().unwrap_or_default();
    let api: Api<Pod> = Api::namespaced(client.clone(), &namespace);
    let hash = pod.metadata.uid.clone().unwrap_or_default();
    match api.get_opt(&name).await {
        Ok(Some(existing)) => {
            let mirror_of = existing
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(MIRROR_ANNOTATION))
                .cloned();
            if mirror_of.as_deref() == Some(hash.as_str()) || existing.metadata.deletion_timestamp.is_some() {
                return;
            }
            // A mirror of an older version (or a non-mirror pod of that name): replace it.
            let _ = api.delete(&name, &DeleteParams::default().grace_period(0)).await;
        }
        Ok(None) => {}
        Err(error) => {
            tracing::debug!(%error, "reading a mirror pod");
            return;
        }
    }
    let mut mirror = pod.clone();
    mirror.metadata.uid = None;
    mirror.metadata.resource_version = None;
    mirror.status = None;
    mirror
        .metadata
        .annotations
        .get_or_insert_with(Default::default)
        .insert(MIRROR_ANNOTATION.to_string(), hash);
    if let Ok(node_object) = Api::<Node>::all(client.clone()).get(node).await {
        mirror.metadata.owner_references = Some(vec![OwnerReference {
            api_version: "v1".to_string(),
            kind: "Node".to_string(),
            name: node.to_string(),
            uid: node_object.metadata.uid.unwrap_or_default(),
            controller: Some(true),
            ..Default::default()
        }]);
    }
    if let Err(error) = api.create(&PostParams::default(), &mirror).await {
        tracing::debug!(%error, "creating a mirror pod");
    }
}

async fn delete_mirror(client: &kube::Client, pod: &Pod) {
    let namespace = pod.metadata.namespace.clone().unwrap_or_default();
    let name = pod.metadata.name.clone().unwrap_or_default();
    let api: Api<Pod> = Api::namespaced(client.clone(), &namespace);
    let _ = api.delete(&name, &DeleteParams::default().grace_period(0)).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifests_become_node_bound_pods_with_stable_uids() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("web.yaml");
        std::fs::write(&path, "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\nspec:\n  containers:\n  - name: c\n    image: busybox\n").unwrap();
        let a = read_manifest(&path, "n1").unwrap();
        assert_eq!(a.pod.metadata.name.as_deref(), Some("web-n1"));
        assert_eq!(a.pod.metadata.namespace.as_deref(), Some("default"));
        assert_eq!(a.pod.spec.as_ref().unwrap().node_name.as_deref(), Some("n1"));
        assert_eq!(read_manifest(&path, "n1").unwrap().uid, a.uid, "same file, same UID");
        std::fs::write(&path, "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\nspec:\n  containers:\n  - name: c\n    image: busybox:2\n").unwrap();
        assert_ne!(
            read_manifest(&path, "n1").unwrap().uid,
            a.uid,
            "a changed file is a new pod"
        );
        std::fs::write(dir.path().join("bad.yaml"), "kind: [").unwrap();
        assert_eq!(read_dir(dir.path(), "n1").len(), 1);
        assert_eq!(static_uids(Some(dir.path()), "n1").len(), 1);
    }
}
