//! Image garbage collection: every five minutes, when the image filesystem is fuller than
//! `--image-gc-high-threshold`, images no container uses are removed (least recently used first)
//! down to `--image-gc-low-threshold`, as upstream's image manager does.

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::pods::start::AttemptMeta;

/// The ids of the images that containers on this node were started from (every attempt still on
/// disk counts, so an exited container can restart without a pull).
pub fn images_in_use(root_dir: &Path, images: &images::ImageStore) -> HashSet<String> {
    let mut out = HashSet::new();
    for pod in std::fs::read_dir(root_dir.join("pods")).into_iter().flatten().flatten() {
        for container in std::fs::read_dir(pod.path().join("containers"))
            .into_iter()
            .flatten()
            .flatten()
        {
            for attempt in std::fs::read_dir(container.path()).into_iter().flatten().flatten() {
                let meta: Option<AttemptMeta> = std::fs::read(attempt.path().join("meta.json"))
                    .ok()
                    .and_then(|b| serde_json::from_slice(&b).ok());
                if let Some(image) = meta.and_then(|m| images.lookup(&m.image)) {
                    out.insert(image.id);
                }
            }
        }
    }
    out
}

/// Runs the collector until `cancel`.
pub async fn run(
    root_dir: std::path::PathBuf,
    images: Arc<images::ImageStore>,
    high: u8,
    low: u8,
    cancel: CancellationToken,
) {
    let mut tick = tokio::time::interval(Duration::from_secs(300));
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tick.tick() => {}
        }
        let root = root_dir.clone();
        let store = images.clone();
        let result = tokio::task::spawn_blocking(move || {
            let in_use = images_in_use(&root, &store);
            store.garbage_collect(&in_use, high, low)
        })
        .await;
        match result {
            Ok(Ok(report)) if !report.removed.is_empty() => {
                tracing::info!(
                    removed = report.removed.len(),
                    freed = report.freed_bytes,
                    "image garbage collection"
                );
            }
            Ok(Err(error)) => tracing::warn!(%error, "image garbage collection"),
            _ => {}
        }
    }
}
