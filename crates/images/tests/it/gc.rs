//! Image removal and garbage collection.

use std::collections::HashSet;

use images::ImageError;
use testkit::registry::{ImageOptions, OciImage, Registry};

use crate::{insecure, open_store};

#[tokio::test]
async fn garbage_collection_removes_unused_images_only() {
    let registry = Registry::start().unwrap();
    let host = registry.host();
    // One layout, two configs: both images share the busybox layer.
    let image = OciImage::busybox().unwrap();
    image.push(host, "gc/used:v1", None).unwrap();
    image
        .configure(&ImageOptions {
            cmd: Some(vec!["true".into()]),
            ..ImageOptions::default()
        })
        .unwrap();
    image.push(host, "gc/unused:v1", None).unwrap();
    let (_root, store) = open_store(insecure(&registry));
    let used = store.pull(&format!("{host}/gc/used:v1"), &[]).await.unwrap();
    let unused = store.pull(&format!("{host}/gc/unused:v1"), &[]).await.unwrap();
    assert_ne!(used.id, unused.id);
    assert_eq!(used.layers, unused.layers, "same busybox layer, stored once");
    let blob = |id: &str| store.root().join("blobs/sha256").join(&id["sha256:".len()..]);
    let in_use: HashSet<String> = [used.id.clone()].into();

    // Below the high threshold (or with GC disabled) nothing goes.
    let report = store.garbage_collect(&in_use, 100, 80).unwrap();
    assert!(report.removed.is_empty());
    assert_eq!(store.list().len(), 2);

    // Threshold 0: usage is always above it, and everything unused must go.
    let report = store.garbage_collect(&in_use, 0, 0).unwrap();
    assert_eq!(report.removed, vec![unused.id.clone()]);
    assert!(report.wanted_bytes > 0 && report.freed_bytes > 0, "{report:?}");
    assert_eq!(store.list(), vec![used.clone()]);
    assert!(store.lookup(&unused.reference).is_none());
    assert!(!blob(&unused.id).exists());
    assert!(blob(&used.id).is_file());
    assert!(used.layers[0].join("bin/busybox").is_file(), "shared layer kept");

    // Explicit removal takes the layer with it once nothing references it.
    store.remove(&used.id).unwrap();
    assert!(store.list().is_empty());
    assert!(!used.layers[0].exists());
    assert!(
        std::fs::read_dir(store.root().join("blobs/sha256"))
            .unwrap()
            .next()
            .is_none()
    );
    assert!(matches!(store.remove(&used.id), Err(ImageError::NotFound(_))));
}
