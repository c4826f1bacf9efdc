//! Pod volume validation, as upstream's `ValidateVolumes` and the per-source validators for the
//! common sources (emptyDir, hostPath, secret, configMap, PVC, projected, downwardAPI, NFS, CSI,
//! ephemeral). Exotic in-tree sources are only counted, so "exactly one source" still holds.

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::{DownwardAPIVolumeFile, KeyToPath, Volume};

use crate::field::{FieldError, child, index};
use crate::validation::common::{dns1123_label, dns1123_subdomain, invalid_each, nonnegative_quantity, optional_enum};
use crate::validation::names::is_config_map_key;

const FILE_MODE_ERROR: &str = "must be a number between 0 and 0777 (octal), both inclusive";

/// The sources a volume may have, in upstream's order (used for "more than 1 volume type").
const SOURCES: &[&str] = &[
    "hostPath",
    "emptyDir",
    "gitRepo",
    "gcePersistentDisk",
    "awsElasticBlockStore",
    "secret",
    "nfs",
    "iscsi",
    "glusterfs",
    "persistentVolumeClaim",
    "rbd",
    "flexVolume",
    "cinder",
    "cephfs",
    "flocker",
    "downwardAPI",
    "fc",
    "azureFile",
    "configMap",
    "vsphereVolume",
    "quobyte",
    "azureDisk",
    "photonPersistentDisk",
    "projected",
    "portworxVolume",
    "scaleIO",
    "storageos",
    "csi",
    "ephemeral",
    "image",
];

/// Validates the volumes; returns the names of the valid ones (what mounts may reference).
pub(super) fn validate_volumes(volumes: &[Volume], path: &str) -> (BTreeSet<String>, Vec<FieldError>) {
    let mut names = BTreeSet::new();
    let mut errs = Vec::new();
    for (i, v) in volumes.iter().enumerate() {
        let vpath = index(path, i);
        let name_path = child(&vpath, "name");
        let mut el = validate_source(v, &vpath);
        if v.name.is_empty() {
            el.push(FieldError::required(&name_path, ""));
        } else {
            el.extend(dns1123_label(&v.name, &name_path));
        }
        if names.contains(&v.name) {
            el.push(FieldError::duplicate(&name_path, v.name.as_str()));
        }
        // Upstream leaves invalid volumes out of the set, so mounts of them are "not found" too.
        if el.is_empty() {
            names.insert(v.name.clone());
        }
        errs.extend(el);
    }
    (names, errs)
}

fn validate_source(v: &Volume, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let value = serde_json::to_value(v).unwrap_or_default();
    let present: Vec<&str> = SOURCES.iter().copied().filter(|s| value.get(*s).is_some()).collect();
    match present.as_slice() {
        [] => errs.push(FieldError::required(path, "must specify a volume type")),
        [_] => {}
        [_, rest @ ..] => {
            for extra in rest {
                errs.push(FieldError::forbidden(
                    child(path, extra),
                    "may not specify more than 1 volume type",
                ));
            }
        }
    }
    if let Some(h) = &v.host_path {
        let p = child(path, "hostPath");
        if h.path.is_empty() {
            errs.push(FieldError::required(child(&p, "path"), ""));
        } else {
            errs.extend(no_backsteps(&h.path, &child(&p, "path")));
        }
        errs.extend(optional_enum(
            h.type_.as_deref(),
            &child(&p, "type"),
            &[
                "DirectoryOrCreate",
                "Directory",
                "FileOrCreate",
                "File",
                "Socket",
                "CharDevice",
                "BlockDevice",
            ],
        ));
    }
    if let Some(e) = &v.empty_dir {
        let p = child(path, "emptyDir");
        errs.extend(optional_enum(
            e.medium.as_deref(),
            &child(&p, "medium"),
            &["Memory", "HugePages"],
        ));
        if let Some(limit) = &e.size_limit {
            errs.extend(nonnegative_quantity(limit, &child(&p, "sizeLimit")).1);
        }
    }
    if let Some(s) = &v.secret {
        let p = child(path, "secret");
        match s.secret_name.as_deref().unwrap_or_default() {
            "" => errs.push(FieldError::required(child(&p, "secretName"), "")),
            name => errs.extend(dns1123_subdomain(name, &child(&p, "secretName"))),
        }
        errs.extend(file_mode(s.default_mode, &child(&p, "defaultMode")));
        errs.extend(key_to_paths(
            s.items.as_deref().unwrap_or_default(),
            &child(&p, "items"),
        ));
    }
    if let Some(c) = &v.config_map {
        let p = child(path, "configMap");
        match c.name.as_str() {
            "" => errs.push(FieldError::required(child(&p, "name"), "")),
            name => errs.extend(dns1123_subdomain(name, &child(&p, "name"))),
        }
        errs.extend(file_mode(c.default_mode, &child(&p, "defaultMode")));
        errs.extend(key_to_paths(
            c.items.as_deref().unwrap_or_default(),
            &child(&p, "items"),
        ));
    }
    if let Some(c) = &v.persistent_volume_claim
        && c.claim_name.is_empty()
    {
        errs.push(FieldError::required(
            child(&child(path, "persistentVolumeClaim"), "claimName"),
            "",
        ));
    }
    if let Some(d) = &v.downward_api {
        let p = child(path, "downwardAPI");
        errs.extend(file_mode(d.default_mode, &child(&p, "defaultMode")));
        errs.extend(downward_files(
            d.items.as_deref().unwrap_or_default(),
            &child(&p, "items"),
        ));
    }
    if let Some(pr) = &v.projected {
        let p = child(path, "projected");
        errs.extend(file_mode(pr.default_mode, &child(&p, "defaultMode")));
        for (i, source) in pr.sources.iter().flatten().enumerate() {
            let sp = index(&child(&p, "sources"), i);
            if let Some(s) = &source.secret {
                errs.extend(key_to_paths(
                    s.items.as_deref().unwrap_or_default(),
                    &child(&child(&sp, "secret"), "items"),
                ));
            }
            if let Some(c) = &source.config_map {
                let cp = child(&sp, "configMap");
                errs.extend(key_to_paths(
                    c.items.as_deref().unwrap_or_default(),
                    &child(&cp, "items"),
                ));
            }
            if let Some(d) = &source.downward_api {
                let dp = child(&sp, "downwardAPI");
                errs.extend(downward_files(
                    d.items.as_deref().unwrap_or_default(),
                    &child(&dp, "items"),
                ));
            }
            if let Some(t) = &source.service_account_token {
                let tp = child(&sp, "serviceAccountToken");
                if t.expiration_seconds.is_some_and(|s| s < 600) {
                    errs.push(FieldError::invalid(
                        child(&tp, "expirationSeconds"),
                        t.expiration_seconds.unwrap_or_default(),
                        "may not specify a duration less than 10 minutes",
                    ));
                }
                if t.path.is_empty() {
                    errs.push(FieldError::required(child(&tp, "path"), ""));
                }
            }
        }
    }
    if let Some(n) = &v.nfs {
        let p = child(path, "nfs");
        if n.server.is_empty() {
            errs.push(FieldError::required(child(&p, "server"), ""));
        }
        if n.path.is_empty() {
            errs.push(FieldError::required(child(&p, "path"), ""));
        } else if !n.path.starts_with('/') {
            errs.push(FieldError::invalid(
                child(&p, "path"),
                n.path.as_str(),
                "must be an absolute path",
            ));
        }
    }
    if let Some(c) = &v.csi
        && c.driver.is_empty()
    {
        errs.push(FieldError::required(child(&child(path, "csi"), "driver"), ""));
    }
    if let Some(e) = &v.ephemeral
        && e.volume_claim_template.is_none()
    {
        errs.push(FieldError::required(
            child(&child(path, "ephemeral"), "volumeClaimTemplate"),
            "",
        ));
    }
    errs
}

fn file_mode(mode: Option<i32>, path: &str) -> Vec<FieldError> {
    match mode {
        Some(m) if !(0..=0o777).contains(&m) => vec![FieldError::invalid(path, m, FILE_MODE_ERROR)],
        _ => Vec::new(),
    }
}

/// upstream's `validateKeyToPath`.
fn key_to_paths(items: &[KeyToPath], path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let ip = index(path, i);
        if item.key.is_empty() {
            errs.push(FieldError::required(child(&ip, "key"), ""));
        } else {
            errs.extend(invalid_each(
                &child(&ip, "key"),
                &item.key,
                is_config_map_key(&item.key),
            ));
        }
        if item.path.is_empty() {
            errs.push(FieldError::required(child(&ip, "path"), ""));
        }
        errs.extend(local_non_reserved_path(&item.path, &child(&ip, "path")));
        errs.extend(file_mode(item.mode, &child(&ip, "mode")));
    }
    errs
}

fn downward_files(items: &[DownwardAPIVolumeFile], path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let ip = index(path, i);
        if item.path.is_empty() {
            errs.push(FieldError::required(child(&ip, "path"), ""));
        }
        errs.extend(local_non_reserved_path(&item.path, &child(&ip, "path")));
        errs.extend(file_mode(item.mode, &child(&ip, "mode")));
        match (&item.field_ref, &item.resource_field_ref) {
            (Some(_), Some(_)) => errs.push(FieldError::invalid(
                child(&ip, "fieldRef"),
                "",
                "fieldRef and resourceFieldRef can not be specified simultaneously",
            )),
            (None, None) => errs.push(FieldError::required(
                &ip,
                "one of fieldRef and resourceFieldRef is required",
            )),
            _ => {}
        }
    }
    errs
}

/// upstream's `validatePathNoBacksteps`.
pub(crate) fn no_backsteps(target: &str, path: &str) -> Vec<FieldError> {
    if target.split('/').any(|part| part == "..") {
        vec![FieldError::invalid(path, target, "must not contain '..'")]
    } else {
        Vec::new()
    }
}

/// upstream's `validateLocalDescendingPath` + `validateLocalNonReservedPath`.
pub(crate) fn local_non_reserved_path(target: &str, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if target.starts_with('/') {
        errs.push(FieldError::invalid(path, target, "must be a relative path"));
    }
    errs.extend(no_backsteps(target, path));
    if target.starts_with("..") && !errs.iter().any(|e| e.detail == "must not contain '..'") {
        errs.push(FieldError::invalid(path, target, "must not start with '..'"));
    }
    errs
}
