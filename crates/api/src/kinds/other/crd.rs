//! CustomResourceDefinitions: upstream's apiextensions v1 defaults (singular, listKind,
//! conversion strategy) and the structural rules of `ValidateCustomResourceDefinition` that
//! clients hit (name, group, names, scope, versions). Schema validation itself is not checked.

use std::collections::BTreeSet;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceConversion, CustomResourceDefinition,
};

use crate::field::{FieldError, child, index};
use crate::strategy::Operation;
use crate::validation::meta::validate_immutable;
use crate::validation::names::{is_dns1035_label, is_dns1123_subdomain};

pub(crate) fn default_crd(crd: &mut CustomResourceDefinition) {
    let names = &mut crd.spec.names;
    if names.singular.as_deref().is_none_or(str::is_empty) {
        names.singular = Some(names.kind.to_lowercase());
    }
    if names.list_kind.as_deref().is_none_or(str::is_empty) && !names.kind.is_empty() {
        names.list_kind = Some(format!("{}List", names.kind));
    }
    crd.spec.conversion.get_or_insert_with(|| CustomResourceConversion {
        strategy: "None".into(),
        webhook: None,
    });
}

pub(crate) fn validate_crd(
    crd: &CustomResourceDefinition,
    old: Option<&CustomResourceDefinition>,
    op: Operation,
) -> Vec<FieldError> {
    if op == Operation::UpdateStatus {
        return Vec::new();
    }
    let spec = &crd.spec;
    let mut errs = Vec::new();
    let name = crd.metadata.name.as_deref().unwrap_or_default();
    if name != format!("{}.{}", spec.names.plural, spec.group) {
        errs.push(FieldError::invalid(
            "metadata.name",
            name,
            "must be spec.names.plural+\".\"+spec.group",
        ));
    }
    if spec.group.is_empty() {
        errs.push(FieldError::required("spec.group", ""));
    } else {
        let msgs = is_dns1123_subdomain(&spec.group);
        if !msgs.is_empty() {
            errs.push(FieldError::invalid("spec.group", spec.group.as_str(), msgs.join(",")));
        }
        if !spec.group.contains('.') {
            errs.push(FieldError::invalid(
                "spec.group",
                spec.group.as_str(),
                "should be a domain with at least one dot",
            ));
        }
    }
    match spec.scope.as_str() {
        "" => errs.push(FieldError::required("spec.scope", "")),
        "Cluster" | "Namespaced" => {}
        other => errs.push(FieldError::not_supported(
            "spec.scope",
            other,
            &["Cluster", "Namespaced"],
        )),
    }
    errs.extend(validate_names(crd));
    errs.extend(validate_versions(crd));
    if let Some(c) = &spec.conversion {
        match c.strategy.as_str() {
            "None" | "Webhook" => {}
            other => errs.push(FieldError::not_supported(
                "spec.conversion.strategy",
                other,
                &["None", "Webhook"],
            )),
        }
        if c.strategy == "Webhook" && c.webhook.is_none() {
            errs.push(FieldError::required(
                "spec.conversion.webhook",
                "required when strategy is set to Webhook",
            ));
        }
    }
    if let Some(old) = old {
        errs.extend(validate_immutable(&spec.group, &old.spec.group, "spec.group"));
        errs.extend(validate_immutable(
            &spec.names.plural,
            &old.spec.names.plural,
            "spec.names.plural",
        ));
    }
    errs
}

fn dns1035(value: &str, path: &str, prefix: &str) -> Option<FieldError> {
    let msgs = is_dns1035_label(value);
    (!msgs.is_empty()).then(|| FieldError::invalid(path, value, format!("{prefix}{}", msgs.join(","))))
}

/// upstream's `ValidateCustomResourceDefinitionNames`.
fn validate_names(crd: &CustomResourceDefinition) -> Vec<FieldError> {
    let names = &crd.spec.names;
    let path = "spec.names";
    let mut errs = Vec::new();
    if names.plural.is_empty() {
        errs.push(FieldError::required(child(path, "plural"), ""));
    } else {
        errs.extend(dns1035(&names.plural, &child(path, "plural"), ""));
    }
    if let Some(singular) = names.singular.as_deref().filter(|s| !s.is_empty()) {
        errs.extend(dns1035(singular, &child(path, "singular"), ""));
    }
    if names.kind.is_empty() {
        errs.push(FieldError::required(child(path, "kind"), ""));
    } else {
        let mixed = "may have mixed case, but should otherwise match: ";
        errs.extend(
            dns1035(&names.kind.to_lowercase(), &child(path, "kind"), mixed).map(|mut e| {
                e.value = Some(format!("{:?}", names.kind));
                e
            }),
        );
    }
    if let Some(list_kind) = names.list_kind.as_deref() {
        if list_kind.is_empty() {
            errs.push(FieldError::required(child(path, "listKind"), ""));
        } else if names.kind == list_kind {
            errs.push(FieldError::invalid(
                child(path, "listKind"),
                list_kind,
                "kind and listKind may not be the same",
            ));
        }
    }
    for (i, short) in names.short_names.iter().flatten().enumerate() {
        errs.extend(dns1035(short, &index(&child(path, "shortNames"), i), ""));
    }
    errs
}

/// Versions: unique DNS-1035 names, exactly one storage version, and a schema each.
fn validate_versions(crd: &CustomResourceDefinition) -> Vec<FieldError> {
    let versions = &crd.spec.versions;
    let mut errs = Vec::new();
    if versions.is_empty() {
        errs.push(FieldError::required(
            "spec.versions",
            "must have exactly one version marked as storage version",
        ));
        return errs;
    }
    let rendered = || serde_json::to_value(versions).unwrap_or_default();
    let mut seen = BTreeSet::new();
    let mut unique = true;
    for (i, v) in versions.iter().enumerate() {
        let vp = index("spec.versions", i);
        if !seen.insert(v.name.as_str()) {
            unique = false;
        }
        errs.extend(dns1035(&v.name, &child(&vp, "name"), ""));
        if v.schema.as_ref().and_then(|s| s.open_api_v3_schema.as_ref()).is_none() {
            errs.push(FieldError::required(
                child(&child(&vp, "schema"), "openAPIV3Schema"),
                "schemas are required",
            ));
        }
    }
    if !unique {
        errs.push(FieldError::invalid(
            "spec.versions",
            rendered(),
            "must contain unique version names",
        ));
    }
    if versions.iter().filter(|v| v.storage).count() != 1 {
        errs.push(FieldError::invalid(
            "spec.versions",
            rendered(),
            "must have exactly one version marked as storage version",
        ));
    }
    if !versions.iter().any(|v| v.served) {
        errs.push(FieldError::invalid(
            "spec.versions",
            rendered(),
            "must have at least one version marked as served",
        ));
    }
    errs
}
