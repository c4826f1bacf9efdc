//! Pulls: plain HTTP, cache hits, mirrors, errors, basic auth, multi-arch indexes, concurrency.

use std::os::unix::fs::PermissionsExt;

use base64::Engine as _;
use images::{ImageStore, PullError, RegistryConfig, credentials_from_dockerconfigjson};
use testkit::registry::{ImageOptions, OciImage, Registry, push_busybox_image};

use crate::{inode, insecure, open_store};

fn options() -> ImageOptions {
    ImageOptions {
        entrypoint: Some(vec!["/bin/sh".into(), "-c".into()]),
        cmd: Some(vec!["echo hello".into()]),
        env: vec!["GREETING=hi there".into()],
        working_dir: Some("/tmp".into()),
        user: Some("1000:1000".into()),
        labels: vec![("app".into(), "demo".into())],
        exposed_ports: vec!["8080/tcp".into()],
    }
}

#[tokio::test]
async fn pulls_busybox_over_plain_http_and_remembers_it() {
    let registry = Registry::start().unwrap();
    let digest = push_busybox_image(registry.host(), "test/busybox:v1", &options()).unwrap();
    let (root, store) = open_store(insecure(&registry));
    let reference = format!("{}/test/busybox:v1", registry.host());

    let image = store.pull(&reference, &[]).await.unwrap();
    assert_eq!(image.reference, reference);
    assert_eq!(image.repo_digest, format!("{}/test/busybox@{digest}", registry.host()));
    assert!(image.id.starts_with("sha256:"));
    assert_eq!(image.layers.len(), 1);
    let busybox = image.layers[0].join("bin/busybox");
    let meta = std::fs::metadata(&busybox).unwrap();
    assert!(
        meta.is_file() && meta.permissions().mode() & 0o111 != 0,
        "{}",
        busybox.display()
    );
    assert_eq!(
        std::fs::read_link(image.layers[0].join("bin/sh")).unwrap().to_str(),
        Some("busybox")
    );
    assert_eq!(image.config.entrypoint, ["/bin/sh", "-c"]);
    assert_eq!(image.config.cmd, ["echo hello"]);
    assert!(
        image.config.env.contains(&"GREETING=hi there".to_string()),
        "{:?}",
        image.config.env
    );
    assert!(image.config.env.contains(&"PATH=/bin".to_string()));
    assert_eq!(image.config.working_dir, "/tmp");
    assert_eq!(image.config.user, "1000:1000");
    assert_eq!(image.config.exposed_ports, ["8080/tcp"]);
    assert_eq!(image.config.labels.get("app").map(String::as_str), Some("demo"));
    assert!(image.size > 500_000, "size {}", image.size);
    let config_blob = store.root().join("blobs/sha256").join(&image.id["sha256:".len()..]);
    assert!(config_blob.is_file());
    assert!(
        std::fs::read_dir(store.root().join("tmp")).unwrap().next().is_none(),
        "tmp/ left over"
    );

    // Present locally, by tag, by repo digest and by id; and again after a restart.
    assert_eq!(store.lookup(&reference).as_ref(), Some(&image));
    assert_eq!(
        store.lookup(&image.repo_digest).map(|found| found.id),
        Some(image.id.clone())
    );
    assert_eq!(store.lookup(&image.id).map(|found| found.id), Some(image.id.clone()));
    assert!(store.lookup(&format!("{}/test/busybox:v2", registry.host())).is_none());
    drop(store);
    let reopened = ImageStore::open(root.path(), insecure(&registry)).unwrap();
    assert_eq!(reopened.lookup(&reference), Some(image.clone()));
    assert_eq!(reopened.list(), vec![image]);
}

#[tokio::test]
async fn second_pull_is_a_cache_hit() {
    let registry = Registry::start().unwrap();
    push_busybox_image(registry.host(), "cache/busybox:v1", &ImageOptions::default()).unwrap();
    let (_root, store) = open_store(insecure(&registry));
    let reference = format!("{}/cache/busybox:v1", registry.host());

    let first = store.pull(&reference, &[]).await.unwrap();
    let stats = store.stats();
    assert_eq!(
        (stats.blobs_downloaded, stats.layers_unpacked),
        (2, 1),
        "config + one layer"
    );
    let layer_inode = inode(&first.layers[0]);
    let busybox_inode = inode(&first.layers[0].join("bin/busybox"));

    let second = store.pull(&reference, &[]).await.unwrap();
    assert_eq!(second, first);
    assert_eq!(store.stats(), stats, "nothing downloaded or unpacked again");
    assert_eq!(inode(&second.layers[0]), layer_inode);
    assert_eq!(inode(&second.layers[0].join("bin/busybox")), busybox_inode);

    // By digest, a present image does not even need the registry.
    let by_digest = first.repo_digest.clone();
    drop(registry);
    let image = store.pull(&by_digest, &[]).await.unwrap();
    assert_eq!(image.id, first.id);
}

#[tokio::test]
async fn mirrors_rewrite_the_registry_host() {
    let registry = Registry::start().unwrap();
    let digest = push_busybox_image(registry.host(), "mirrored/app:v1", &ImageOptions::default()).unwrap();
    let (_root, store) = open_store(RegistryConfig {
        insecure: vec!["registry:5000".into()],
        mirrors: vec![("registry:5000".into(), registry.host().to_string())],
    });
    let image = store.pull("registry:5000/mirrored/app:v1", &[]).await.unwrap();
    assert_eq!(image.reference, "registry:5000/mirrored/app:v1");
    assert_eq!(image.repo_digest, format!("registry:5000/mirrored/app@{digest}"));
    assert!(store.lookup("registry:5000/mirrored/app:v1").is_some());
}

#[tokio::test]
async fn missing_images_and_registries_are_reported() {
    let registry = Registry::start().unwrap();
    push_busybox_image(registry.host(), "test/busybox:v1", &ImageOptions::default()).unwrap();
    let (_root, store) = open_store(insecure(&registry));

    let missing_tag = format!("{}/test/busybox:nope", registry.host());
    let error = store.pull(&missing_tag, &[]).await.unwrap_err();
    assert!(matches!(error, PullError::NotFound { .. }), "{error:?}");
    assert_eq!(error.reason(), "ErrImagePull");
    assert!(
        error
            .to_string()
            .starts_with(&format!("Failed to pull image \"{missing_tag}\": ")),
        "{error}"
    );
    assert!(error.to_string().contains("not found"), "{error}");

    let missing_repo = format!("{}/no/such/repo:v1", registry.host());
    let error = store.pull(&missing_repo, &[]).await.unwrap_err();
    assert!(matches!(error, PullError::NotFound { .. }), "{error:?}");

    let error = store.pull("Not A Reference", &[]).await.unwrap_err();
    assert!(matches!(error, PullError::InvalidReference { .. }), "{error:?}");
    assert_eq!(error.reason(), "InvalidImageName");

    let closed = format!("127.0.0.1:{}", testkit::free_port());
    let (_root, store) = open_store(RegistryConfig {
        insecure: vec![closed.clone()],
        mirrors: Vec::new(),
    });
    let error = store.pull(&format!("{closed}/app:v1"), &[]).await.unwrap_err();
    assert!(matches!(error, PullError::Unreachable { .. }), "{error:?}");
    assert!(store.list().is_empty());
}

fn dockerconfigjson(host: &str, user: &str, password: &str) -> Vec<u8> {
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    format!(r#"{{"auths": {{"{host}": {{"auth": "{auth}"}}}}}}"#).into_bytes()
}

#[tokio::test]
async fn basic_auth_needs_the_right_credentials() {
    let registry = Registry::start_with_basic_auth("kaji", "pull-secret").unwrap();
    OciImage::busybox()
        .unwrap()
        .push(registry.host(), "private/app:v1", registry.credentials())
        .unwrap();
    let (_root, store) = open_store(insecure(&registry));
    let reference = format!("{}/private/app:v1", registry.host());

    let error = store.pull(&reference, &[]).await.unwrap_err();
    assert!(matches!(error, PullError::Unauthorized { .. }), "{error:?}");
    assert!(
        error
            .to_string()
            .starts_with(&format!("Failed to pull image \"{reference}\""))
    );

    let wrong = credentials_from_dockerconfigjson(&dockerconfigjson(registry.host(), "kaji", "nope")).unwrap();
    let error = store.pull(&reference, &wrong).await.unwrap_err();
    assert!(matches!(error, PullError::Unauthorized { .. }), "{error:?}");

    // Credentials for another registry do not apply; the right ones are found among them.
    let mut secrets = credentials_from_dockerconfigjson(&dockerconfigjson("other:5000", "x", "y")).unwrap();
    secrets
        .extend(credentials_from_dockerconfigjson(&dockerconfigjson(registry.host(), "kaji", "pull-secret")).unwrap());
    let image = store.pull(&reference, &secrets).await.unwrap();
    assert!(image.layers[0].join("bin/busybox").is_file());
}

#[tokio::test]
async fn concurrent_pulls_of_one_image_share_the_work() {
    let registry = Registry::start().unwrap();
    push_busybox_image(registry.host(), "race/busybox:v1", &ImageOptions::default()).unwrap();
    let (_root, store) = open_store(insecure(&registry));
    let reference = format!("{}/race/busybox:v1", registry.host());

    let tasks: Vec<_> = (0..4)
        .map(|_| {
            let store = store.clone();
            let reference = reference.clone();
            tokio::spawn(async move { store.pull(&reference, &[]).await })
        })
        .collect();
    let mut images = Vec::new();
    for task in tasks {
        images.push(task.await.unwrap().unwrap());
    }
    assert!(images.windows(2).all(|pair| pair[0] == pair[1]));
    let stats = store.stats();
    assert_eq!((stats.blobs_downloaded, stats.layers_unpacked), (2, 1));
    assert!(images[0].layers[0].join("bin/busybox").is_file());
}

#[tokio::test]
async fn multi_arch_indexes_resolve_to_linux_amd64() {
    use oci_client::client::{ClientConfig, ClientProtocol};
    use oci_client::manifest::OciImageIndex;
    use oci_client::secrets::RegistryAuth;

    let registry = Registry::start().unwrap();
    let host = registry.host();
    let amd64 = push_busybox_image(host, "multi/app:amd64", &options()).unwrap();
    let arm64 = push_busybox_image(host, "multi/app:arm64", &ImageOptions::default()).unwrap();

    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = oci_client::Client::new(ClientConfig {
        protocol: ClientProtocol::Http,
        ..ClientConfig::default()
    });
    let mut entries = Vec::new();
    for (digest, arch) in [(&arm64, "arm64"), (&amd64, "amd64")] {
        let reference: oci_client::Reference = format!("{host}/multi/app@{digest}").parse().unwrap();
        let (raw, _) = client
            .pull_manifest_raw(
                &reference,
                &RegistryAuth::Anonymous,
                &["application/vnd.oci.image.manifest.v1+json"],
            )
            .await
            .unwrap();
        entries.push(serde_json::json!({
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": digest, "size": raw.len(),
            "platform": {"architecture": arch, "os": "linux"}
        }));
    }
    let index: OciImageIndex = serde_json::from_value(serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": entries,
    }))
    .unwrap();
    let index_ref: oci_client::Reference = format!("{host}/multi/app:latest").parse().unwrap();
    let index_url = client
        .push_manifest_list(&index_ref, &RegistryAuth::Anonymous, index)
        .await
        .unwrap();
    // The answer is the manifest's URL, which ends in its digest.
    let index_digest = index_url.rsplit('/').next().unwrap();
    assert!(index_digest.starts_with("sha256:"), "{index_url}");

    let (_root, store) = open_store(insecure(&registry));
    let image = store.pull(&format!("{host}/multi/app"), &[]).await.unwrap();
    assert_eq!(image.reference, format!("{host}/multi/app:latest"));
    assert_eq!(image.config.cmd, ["echo hello"], "the amd64 image was chosen");
    assert_eq!(image.repo_digest, format!("{host}/multi/app@{index_digest}"));
    // The platform manifest's digest finds it too.
    assert!(store.lookup(&format!("{host}/multi/app@{amd64}")).is_some());
}
