//! Importing image archives: an OCI layout tarball and a docker archive, both written by
//! skopeo from a umoci-built busybox image, become images that pulls would have given; broken
//! archives are refused with nothing left behind.

use std::os::unix::fs::PermissionsExt;

use images::{ImportError, RegistryConfig};
use testkit::registry::OciImage;

use crate::open_store;

#[tokio::test]
async fn oci_and_docker_archives_import_into_the_store() {
    let image = OciImage::busybox().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let oci = dir.path().join("oci.tar");
    let docker = dir.path().join("docker.tar");
    image
        .save_archive("oci-archive", &oci, "registry.test:5000/app:1")
        .unwrap();
    image.save_archive("docker-archive", &docker, "busybox:2").unwrap();
    let (_root, store) = open_store(RegistryConfig::default());

    let imported = store.import_archive(std::fs::File::open(&oci).unwrap()).await.unwrap();
    assert_eq!(imported.len(), 1);
    let from_oci = &imported[0];
    assert_eq!(from_oci.reference, "registry.test:5000/app:1");
    assert!(
        from_oci.repo_digest.starts_with("registry.test:5000/app@sha256:"),
        "{}",
        from_oci.repo_digest
    );
    assert_eq!(from_oci.layers.len(), 1);
    let busybox = std::fs::metadata(from_oci.layers[0].join("bin/busybox")).unwrap();
    assert!(busybox.permissions().mode() & 0o111 != 0);
    assert!(
        from_oci.config.env.iter().any(|e| e.starts_with("PATH=")),
        "{:?}",
        from_oci.config
    );

    // A docker archive's uncompressed layer is a different blob of the same content; its name
    // is normalised like a pulled one's.
    let imported = store
        .import_archive(std::fs::File::open(&docker).unwrap())
        .await
        .unwrap();
    let from_docker = &imported[0];
    assert_eq!(from_docker.reference, "docker.io/library/busybox:2");
    assert_eq!(from_docker.id, from_oci.id, "the same config, so the same image id");
    assert!(from_docker.layers[0].join("bin/sh").symlink_metadata().is_ok());

    assert_eq!(store.lookup("busybox:2").map(|i| i.id), Some(from_oci.id.clone()));
    assert_eq!(store.lookup("registry.test:5000/app:1").as_ref(), Some(from_oci));
    assert!(
        std::fs::read_dir(store.root().join("tmp")).unwrap().next().is_none(),
        "tmp/ left over"
    );
}

#[tokio::test]
async fn broken_archives_are_refused_and_leave_nothing() {
    let (_root, store) = open_store(RegistryConfig::default());
    let error = store
        .import_archive(std::io::Cursor::new(b"not a tar archive at all".to_vec()))
        .await
        .unwrap_err();
    assert!(matches!(error, ImportError::Invalid(_)), "{error}");

    // A tar without index.json or manifest.json.
    let mut builder = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(3);
    header.set_mode(0o644);
    header.set_cksum();
    builder.append_data(&mut header, "hello.txt", &b"hi\n"[..]).unwrap();
    let error = store
        .import_archive(std::io::Cursor::new(builder.into_inner().unwrap()))
        .await
        .unwrap_err();
    assert!(error.to_string().contains("neither an OCI image layout"), "{error}");

    // An OCI archive whose image is named by a bare tag has no repository to record it under.
    let image = OciImage::busybox().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let tagged = dir.path().join("tag.tar");
    image.save_archive("oci-archive", &tagged, "v1").unwrap();
    let error = store
        .import_archive(std::fs::File::open(&tagged).unwrap())
        .await
        .unwrap_err();
    assert!(error.to_string().contains("only a tag"), "{error}");

    assert!(store.list().is_empty());
    assert!(
        std::fs::read_dir(store.root().join("tmp")).unwrap().next().is_none(),
        "tmp/ left over"
    );
}
