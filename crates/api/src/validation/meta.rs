//! ObjectMeta validation, as upstream's `ValidateObjectMeta` / `ValidateObjectMetaUpdate` (with
//! the extra finalizer-name rule `pkg/apis/core/validation` adds for built-in kinds).

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};

use crate::field::{FieldError, child, go_string_slice, index};
use crate::registry::{NameRule, ResourceDef};
use crate::validation::names::{
    is_dns1035_label, is_dns1123_label, is_dns1123_subdomain, is_qualified_name, is_valid_label_value,
    is_valid_path_segment_name, is_valid_path_segment_prefix, mask_trailing_dash,
};

/// upstream's `TotalAnnotationSizeLimitB`.
pub const TOTAL_ANNOTATION_SIZE_LIMIT: usize = 256 * 1024;

/// upstream's `FieldImmutableErrorMsg`.
pub const FIELD_IMMUTABLE: &str = "field is immutable";

/// upstream's `IsNegativeErrorMsg`.
pub const IS_NEGATIVE: &str = "must be greater than or equal to 0";

/// Finalizers that built-in kinds accept without a domain prefix.
const STANDARD_FINALIZERS: &[&str] = &["kubernetes", "orphan", "foregroundDeletion"];

/// Validates `meta` for an object of `def` (and, on update, against `old`).
pub fn validate_object_meta(def: &ResourceDef, meta: &ObjectMeta, old: Option<&ObjectMeta>) -> Vec<FieldError> {
    let mut errs = match old {
        None => validate_create(def, meta),
        Some(old) => validate_update(meta, old),
    };
    // Built-in kinds (everything but CRDs, which use the generic rules) also reject unqualified
    // finalizers other than the standard ones.
    if def.group != "apiextensions.k8s.io" {
        for (i, f) in meta.finalizers.iter().flatten().enumerate() {
            if !f.contains('/') && !STANDARD_FINALIZERS.contains(&f.as_str()) {
                errs.push(FieldError::invalid(
                    index("metadata.finalizers", i),
                    f.as_str(),
                    "name is neither a standard finalizer name nor is it fully qualified",
                ));
            }
        }
    }
    errs
}

/// The messages for `name` under `rule`; `prefix` is true for a generateName prefix.
pub fn validate_name(rule: NameRule, name: &str, prefix: bool) -> Vec<String> {
    match rule {
        NameRule::Subdomain => is_dns1123_subdomain(&masked(name, prefix)),
        NameRule::Label => is_dns1123_label(&masked(name, prefix)),
        NameRule::Rfc1035Label => is_dns1035_label(&masked(name, prefix)),
        NameRule::PathSegment if prefix => is_valid_path_segment_prefix(name),
        NameRule::PathSegment => is_valid_path_segment_name(name),
    }
}

fn masked(name: &str, prefix: bool) -> String {
    if prefix {
        mask_trailing_dash(name)
    } else {
        name.to_string()
    }
}

fn validate_create(def: &ResourceDef, meta: &ObjectMeta) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let generate_name = meta.generate_name.as_deref().unwrap_or_default();
    let name = meta.name.as_deref().unwrap_or_default();
    if !generate_name.is_empty() {
        for msg in validate_name(def.name_rule, generate_name, true) {
            errs.push(FieldError::invalid("metadata.generateName", generate_name, msg));
        }
    }
    if name.is_empty() {
        // With a generateName the server makes the name up; a bare empty name is an error.
        if generate_name.is_empty() {
            errs.push(FieldError::required(
                "metadata.name",
                "name or generateName is required",
            ));
        }
    } else {
        for msg in validate_name(def.name_rule, name, false) {
            errs.push(FieldError::invalid("metadata.name", name, msg));
        }
    }
    let namespace = meta.namespace.as_deref().unwrap_or_default();
    if def.namespaced {
        if namespace.is_empty() {
            errs.push(FieldError::required("metadata.namespace", ""));
        } else {
            for msg in is_dns1123_label(namespace) {
                errs.push(FieldError::invalid("metadata.namespace", namespace, msg));
            }
        }
    } else if !namespace.is_empty() {
        errs.push(FieldError::forbidden("metadata.namespace", "not allowed on this type"));
    }
    if let Some(generation) = meta.generation.filter(|g| *g < 0) {
        errs.push(FieldError::invalid("metadata.generation", generation, IS_NEGATIVE));
    }
    errs.extend(validate_common(meta));
    errs
}

fn validate_update(meta: &ObjectMeta, old: &ObjectMeta) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if old.deletion_timestamp.is_some() {
        let old_finalizers = old.finalizers.clone().unwrap_or_default();
        let mut extra: Vec<String> = meta
            .finalizers
            .iter()
            .flatten()
            .filter(|f| !old_finalizers.contains(f))
            .cloned()
            .collect();
        extra.sort();
        extra.dedup();
        if !extra.is_empty() {
            errs.push(FieldError::forbidden(
                "metadata.finalizers",
                format!(
                    "no new finalizers can be added if the object is being deleted, found new finalizers {}",
                    go_string_slice(&extra)
                ),
            ));
        }
    }
    immutable_str(
        &mut errs,
        "metadata.name",
        meta.name.as_deref(),
        old.name.as_deref(),
        false,
    );
    immutable_str(
        &mut errs,
        "metadata.namespace",
        meta.namespace.as_deref(),
        old.namespace.as_deref(),
        false,
    );
    // The server copies an omitted uid from the stored object (upstream's BeforeUpdate), so only
    // a different one is an error.
    immutable_str(&mut errs, "metadata.uid", meta.uid.as_deref(), old.uid.as_deref(), true);
    // Creation and deletion timestamps are likewise restored from the stored object when it has
    // them; setting one the stored object lacks is the error.
    if old.creation_timestamp.is_none()
        && let Some(t) = &meta.creation_timestamp
    {
        errs.push(FieldError::invalid(
            "metadata.creationTimestamp",
            t.0.to_string(),
            FIELD_IMMUTABLE,
        ));
    }
    if old.deletion_timestamp.is_none()
        && let Some(t) = &meta.deletion_timestamp
    {
        errs.push(FieldError::invalid(
            "metadata.deletionTimestamp",
            t.0.to_string(),
            FIELD_IMMUTABLE,
        ));
    }
    if old.deletion_grace_period_seconds.is_none()
        && let Some(s) = meta.deletion_grace_period_seconds
    {
        errs.push(FieldError::invalid(
            "metadata.deletionGracePeriodSeconds",
            s,
            FIELD_IMMUTABLE,
        ));
    }
    errs.extend(validate_common(meta));
    errs
}

fn immutable_str(errs: &mut Vec<FieldError>, path: &str, new: Option<&str>, old: Option<&str>, omit_ok: bool) {
    let new = new.unwrap_or_default();
    if omit_ok && new.is_empty() {
        return;
    }
    if new != old.unwrap_or_default() {
        errs.push(FieldError::invalid(path, new, FIELD_IMMUTABLE));
    }
}

/// What create and update both check: labels, annotations, owner references, finalizers.
fn validate_common(meta: &ObjectMeta) -> Vec<FieldError> {
    let mut errs = validate_labels(meta.labels.as_ref(), "metadata.labels");
    errs.extend(validate_annotations(meta.annotations.as_ref(), "metadata.annotations"));
    errs.extend(validate_owner_references(
        meta.owner_references.as_deref().unwrap_or_default(),
    ));
    errs.extend(validate_finalizers(
        meta.finalizers.as_deref().unwrap_or_default(),
        "metadata.finalizers",
    ));
    errs
}

/// upstream's `ValidateLabels`: qualified-name keys and label values, reported at `path`.
pub fn validate_labels(labels: Option<&BTreeMap<String, String>>, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for (k, v) in labels.into_iter().flatten() {
        errs.extend(validate_label_name(k, path));
        for msg in is_valid_label_value(v) {
            errs.push(FieldError::invalid(path, v.as_str(), msg));
        }
    }
    errs
}

/// upstream's `ValidateLabelName`.
pub fn validate_label_name(name: &str, path: &str) -> Vec<FieldError> {
    is_qualified_name(name)
        .into_iter()
        .map(|msg| FieldError::invalid(path, name, msg))
        .collect()
}

/// upstream's `ValidateQualifiedName`.
pub fn validate_qualified_name(name: &str, path: &str) -> Vec<FieldError> {
    validate_label_name(name, path)
}

/// upstream's `ValidateAnnotations`: case-insensitive qualified-name keys, 256 KiB in total.
pub fn validate_annotations(annotations: Option<&BTreeMap<String, String>>, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let mut total = 0usize;
    for (k, v) in annotations.into_iter().flatten() {
        for msg in is_qualified_name(&k.to_lowercase()) {
            errs.push(FieldError::invalid(path, k.as_str(), msg));
        }
        total = total.saturating_add(k.len()).saturating_add(v.len());
    }
    if total > TOTAL_ANNOTATION_SIZE_LIMIT {
        errs.push(FieldError::too_long(path, TOTAL_ANNOTATION_SIZE_LIMIT));
    }
    errs
}

/// upstream's `ValidateOwnerReferences`: each reference complete, at most one controller.
pub fn validate_owner_references(refs: &[OwnerReference]) -> Vec<FieldError> {
    let path = "metadata.ownerReferences";
    let mut errs = Vec::new();
    let mut first_controller: Option<String> = None;
    for r in refs {
        // `schema.FromAPIVersionAndKind`: more than one `/` is no version at all.
        let version = match r.api_version.split('/').collect::<Vec<_>>().as_slice() {
            [v] => *v,
            [_, v] => *v,
            _ => "",
        };
        let group = r.api_version.split_once('/').map(|(g, _)| g).unwrap_or_default();
        if version.is_empty() {
            errs.push(FieldError::invalid(
                child(path, "apiVersion"),
                r.api_version.as_str(),
                "version must not be empty",
            ));
        }
        if r.kind.is_empty() {
            errs.push(FieldError::invalid(child(path, "kind"), "", "must not be empty"));
        }
        if r.name.is_empty() {
            errs.push(FieldError::invalid(child(path, "name"), "", "must not be empty"));
        }
        if r.uid.is_empty() {
            errs.push(FieldError::invalid(child(path, "uid"), "", "must not be empty"));
        }
        if group.is_empty() && version == "v1" && r.kind == "Event" {
            let rendered = serde_json::to_value(r).unwrap_or_default();
            errs.push(FieldError::invalid(
                path,
                rendered,
                "/v1, Kind=Event is disallowed from being an owner",
            ));
        }
        if r.controller == Some(true) {
            let current = format!("{}/{}", r.kind, r.name);
            match &first_controller {
                Some(first) => {
                    let rendered = serde_json::to_value(refs).unwrap_or_default();
                    errs.push(FieldError::invalid(
                        path,
                        rendered,
                        format!(
                            "Only one reference can have Controller set to true. Found \"true\" in references for {first} and {current}"
                        ),
                    ));
                }
                None => first_controller = Some(current),
            }
        }
    }
    errs
}

/// upstream's `ValidateFinalizers`: qualified names, not both `orphan` and `foregroundDeletion`.
pub fn validate_finalizers(finalizers: &[String], path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for f in finalizers {
        for msg in is_qualified_name(f) {
            errs.push(FieldError::invalid(path, f.as_str(), msg));
        }
    }
    let has = |name: &str| finalizers.iter().any(|f| f == name);
    if has("orphan") && has("foregroundDeletion") {
        errs.push(FieldError::invalid_rendered(
            path,
            go_string_slice(finalizers),
            "finalizer orphan and foregroundDeletion cannot be both set",
        ));
    }
    errs
}

/// upstream's `ValidateNonnegativeField`.
pub fn validate_nonnegative(value: i64, path: &str) -> Vec<FieldError> {
    if value < 0 {
        vec![FieldError::invalid(path, value, IS_NEGATIVE)]
    } else {
        Vec::new()
    }
}

/// upstream's `ValidateImmutableField` for any comparable value, rendering the new value.
pub fn validate_immutable<T: PartialEq + serde::Serialize>(new: &T, old: &T, path: &str) -> Vec<FieldError> {
    if new == old {
        Vec::new()
    } else {
        vec![FieldError::invalid(
            path,
            serde_json::to_value(new).unwrap_or_default(),
            FIELD_IMMUTABLE,
        )]
    }
}

#[cfg(test)]
#[path = "meta_tests.rs"]
mod tests;
