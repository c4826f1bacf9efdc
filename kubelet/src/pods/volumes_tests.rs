//! Tests for pod volumes (as root: secret volumes are tmpfs mounts).

use super::*;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{
    ConfigMapVolumeSource, EmptyDirVolumeSource, HostPathVolumeSource, PodSpec, SecretVolumeSource, VolumeMount,
};

fn pod(volumes: Vec<Volume>) -> Pod {
    Pod {
        metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
            name: Some("p".into()),
            namespace: Some("ns".into()),
            ..Default::default()
        },
        spec: Some(PodSpec {
            volumes: Some(volumes),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn sources() -> VolumeSources {
    VolumeSources {
        config_maps: BTreeMap::from([(
            "cfg".into(),
            ConfigMap {
                data: Some(BTreeMap::from([
                    ("a.conf".into(), "A".into()),
                    ("b.conf".into(), "B".into()),
                ])),
                ..Default::default()
            },
        )]),
        secrets: BTreeMap::from([(
            "sec".into(),
            Secret {
                data: Some(BTreeMap::from([("token".into(), ByteString(b"s3cret".to_vec()))])),
                ..Default::default()
            },
        )]),
        ..Default::default()
    }
}

/// Cleans the pod dir's mounts even when an assertion fails.
struct PodDir(tempfile::TempDir);
impl Drop for PodDir {
    fn drop(&mut self) {
        let _ = cleanup(self.0.path());
    }
}

#[test]
fn config_map_secret_and_empty_dir() {
    let dir = PodDir(tempfile::tempdir().unwrap());
    let volumes = vec![
        Volume {
            name: "cfg".into(),
            config_map: Some(ConfigMapVolumeSource {
                name: "cfg".into(),
                items: Some(vec![KeyToPath {
                    key: "a.conf".into(),
                    path: "sub/a.conf".into(),
                    mode: Some(0o600),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            ..Default::default()
        },
        Volume {
            name: "sec".into(),
            secret: Some(SecretVolumeSource {
                secret_name: Some("sec".into()),
                ..Default::default()
            }),
            ..Default::default()
        },
        Volume {
            name: "scratch".into(),
            empty_dir: Some(EmptyDirVolumeSource::default()),
            ..Default::default()
        },
    ];
    let p = pod(volumes);
    let prepared = prepare(&p, dir.0.path(), &sources(), &EnvSources::default()).unwrap();
    let cfg = &prepared["cfg"];
    assert!(cfg.read_only);
    assert_eq!(std::fs::read_to_string(cfg.path.join("sub/a.conf")).unwrap(), "A");
    assert!(!cfg.path.join("b.conf").exists());
    let mode = std::fs::metadata(cfg.path.join("sub/a.conf"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let sec = &prepared["sec"];
    assert_eq!(std::fs::read_to_string(sec.path.join("token")).unwrap(), "s3cret");
    assert!(is_mount_point(&sec.path), "secret volumes live on tmpfs");
    assert!(!prepared["scratch"].read_only);

    // An update is swapped in at once through ..data.
    let mut updated = sources();
    updated
        .config_maps
        .get_mut("cfg")
        .unwrap()
        .data
        .as_mut()
        .unwrap()
        .insert("a.conf".into(), "A2".into());
    prepare(&p, dir.0.path(), &updated, &EnvSources::default()).unwrap();
    assert_eq!(std::fs::read_to_string(cfg.path.join("sub/a.conf")).unwrap(), "A2");
    let stamped: Vec<_> = std::fs::read_dir(&cfg.path)
        .unwrap()
        .flatten()
        .filter(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            n.starts_with("..") && n != "..data"
        })
        .collect();
    assert_eq!(stamped.len(), 1, "the old payload directory is removed");

    cleanup(dir.0.path()).unwrap();
    assert!(!is_mount_point(&sec.path));
    assert!(!dir.0.path().join("volumes").exists());
}

#[test]
fn missing_sources_fail_unless_optional() {
    let dir = PodDir(tempfile::tempdir().unwrap());
    let volume = |optional| Volume {
        name: "v".into(),
        config_map: Some(ConfigMapVolumeSource {
            name: "absent".into(),
            optional,
            ..Default::default()
        }),
        ..Default::default()
    };
    let err = prepare(
        &pod(vec![volume(None)]),
        dir.0.path(),
        &sources(),
        &EnvSources::default(),
    )
    .unwrap_err();
    assert_eq!(err.to_string(), "configmap \"absent\" not found");
    prepare(
        &pod(vec![volume(Some(true))]),
        dir.0.path(),
        &sources(),
        &EnvSources::default(),
    )
    .unwrap();
}

#[test]
fn host_path_types() {
    let dir = tempfile::tempdir().unwrap();
    let new_dir = dir.path().join("made");
    check_host_path(new_dir.to_str().unwrap(), "DirectoryOrCreate").unwrap();
    assert!(new_dir.is_dir());
    let err = check_host_path(new_dir.to_str().unwrap(), "File").unwrap_err();
    assert!(err.to_string().contains("is not a file"), "{err}");
    assert!(check_host_path(dir.path().join("nope").to_str().unwrap(), "Directory").is_err());
    let file = dir.path().join("f");
    check_host_path(file.to_str().unwrap(), "FileOrCreate").unwrap();
    assert!(file.is_file());
}

#[test]
fn mounts_with_sub_path() {
    let dir = PodDir(tempfile::tempdir().unwrap());
    let host = tempfile::tempdir().unwrap();
    let p = pod(vec![Volume {
        name: "data".into(),
        host_path: Some(HostPathVolumeSource {
            path: host.path().to_string_lossy().into_owned(),
            type_: None,
        }),
        ..Default::default()
    }]);
    let prepared = prepare(&p, dir.0.path(), &sources(), &EnvSources::default()).unwrap();
    let container = |sub: &str| Container {
        name: "c".into(),
        volume_mounts: Some(vec![VolumeMount {
            name: "data".into(),
            mount_path: "/data".into(),
            sub_path: Some(sub.into()),
            read_only: Some(true),
            ..Default::default()
        }]),
        ..Default::default()
    };
    let mounts = container_mounts(&container("logs"), &prepared).unwrap();
    assert_eq!(mounts[0].source, host.path().canonicalize().unwrap().join("logs"));
    assert!(mounts[0].read_only);
    assert!(host.path().join("logs").is_dir(), "subPath directories are created");
    assert!(container_mounts(&container("../etc"), &prepared).is_err());
    std::os::unix::fs::symlink("/etc", host.path().join("escape")).unwrap();
    assert!(
        container_mounts(&container("escape"), &prepared).is_err(),
        "symlinks out of the volume are refused"
    );
    let missing = Container {
        name: "c".into(),
        volume_mounts: Some(vec![VolumeMount {
            name: "nope".into(),
            mount_path: "/x".into(),
            ..Default::default()
        }]),
        ..Default::default()
    };
    assert!(container_mounts(&missing, &prepared).is_err());
}
