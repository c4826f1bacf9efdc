//! PersistentVolumes, PersistentVolumeClaims, ResourceQuotas and LimitRanges.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    LimitRange, PersistentVolume, PersistentVolumeClaim, PersistentVolumeClaimSpec, PersistentVolumeSpec, ResourceQuota,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity as ApiQuantity;

use super::pod_defaults::{canonicalize_list, default_pvc_spec};
use crate::field::{FieldError, child, index, key};
use crate::selector::LabelSelector;
use crate::strategy::Operation;
use crate::validation::common::{dns1123_subdomain, invalid_each, nonnegative_quantity, optional_enum};
use crate::validation::meta::validate_immutable;
use crate::validation::names::is_qualified_name;
use crate::validation::quantity::Quantity;

const ACCESS_MODES: &[&str] = &["ReadOnlyMany", "ReadWriteMany", "ReadWriteOnce", "ReadWriteOncePod"];

/// The JSON keys of a PV's volume sources.
const PV_SOURCES: &[&str] = &[
    "gcePersistentDisk",
    "awsElasticBlockStore",
    "hostPath",
    "glusterfs",
    "nfs",
    "rbd",
    "quobyte",
    "iscsi",
    "cephfs",
    "cinder",
    "fc",
    "flocker",
    "flexVolume",
    "azureFile",
    "vsphereVolume",
    "azureDisk",
    "photonPersistentDisk",
    "portworxVolume",
    "scaleIO",
    "local",
    "storageos",
    "csi",
];

pub(crate) fn default_pv(pv: &mut PersistentVolume) {
    let spec = pv.spec.get_or_insert_with(Default::default);
    if spec
        .persistent_volume_reclaim_policy
        .as_deref()
        .is_none_or(str::is_empty)
    {
        spec.persistent_volume_reclaim_policy = Some("Retain".into());
    }
    if spec.volume_mode.as_deref().is_none_or(str::is_empty) {
        spec.volume_mode = Some("Filesystem".into());
    }
    if let Some(capacity) = spec.capacity.as_mut() {
        canonicalize_list(capacity);
    }
    if let Some(h) = spec.host_path.as_mut() {
        h.type_.get_or_insert_with(String::new);
    }
    let status = pv.status.get_or_insert_with(Default::default);
    if status.phase.as_deref().is_none_or(str::is_empty) {
        status.phase = Some("Pending".into());
    }
}

fn validate_access_modes(modes: &[String], path: &str, required_detail: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if modes.is_empty() {
        errs.push(FieldError::required(path, required_detail));
    }
    for m in modes {
        if !ACCESS_MODES.contains(&m.as_str()) {
            errs.push(FieldError::not_supported(path, m.as_str(), ACCESS_MODES));
        }
    }
    if modes.len() > 1 && modes.iter().any(|m| m == "ReadWriteOncePod") {
        errs.push(FieldError::forbidden(
            path,
            "may not use ReadWriteOncePod with other access modes",
        ));
    }
    errs
}

pub(crate) fn validate_pv(pv: &PersistentVolume, old: Option<&PersistentVolume>, op: Operation) -> Vec<FieldError> {
    let default_spec = PersistentVolumeSpec::default();
    let spec = pv.spec.as_ref().unwrap_or(&default_spec);
    let mut errs = validate_access_modes(spec.access_modes.as_deref().unwrap_or_default(), "spec.accessModes", "");
    let capacity = spec.capacity.clone().unwrap_or_default();
    if capacity.is_empty() {
        errs.push(FieldError::required("spec.capacity", ""));
    }
    if !capacity.is_empty() && (!capacity.contains_key("storage") || capacity.len() > 1) {
        errs.push(FieldError::not_supported(
            "spec.capacity",
            serde_json::to_value(&capacity).unwrap_or_default(),
            &["storage"],
        ));
    }
    for (k, q) in &capacity {
        errs.extend(nonnegative_quantity(q, &key("spec.capacity", k)).1);
    }
    errs.extend(optional_enum(
        spec.persistent_volume_reclaim_policy.as_deref(),
        "spec.persistentVolumeReclaimPolicy",
        &["Delete", "Recycle", "Retain"],
    ));
    errs.extend(optional_enum(
        spec.volume_mode.as_deref(),
        "spec.volumeMode",
        &["Block", "Filesystem"],
    ));
    if let Some(class) = spec.storage_class_name.as_deref().filter(|c| !c.is_empty()) {
        errs.extend(dns1123_subdomain(class, "spec.storageClassName"));
    }
    let value = serde_json::to_value(spec).unwrap_or_default();
    let sources: Vec<&str> = PV_SOURCES.iter().copied().filter(|s| value.get(*s).is_some()).collect();
    match sources.as_slice() {
        [] => errs.push(FieldError::required("spec", "must specify a volume type")),
        [_] => {}
        [_, rest @ ..] => {
            for s in rest {
                errs.push(FieldError::forbidden(
                    child("spec", s),
                    "may not specify more than 1 volume type",
                ));
            }
        }
    }
    if let Some(h) = &spec.host_path
        && h.path.is_empty()
    {
        errs.push(FieldError::required("spec.hostPath.path", ""));
    }
    if let Some(l) = &spec.local
        && l.path.is_empty()
    {
        errs.push(FieldError::required("spec.local.path", ""));
    }
    if let (Some(old), Operation::Update) = (old, op) {
        let old_spec = old.spec.as_ref().unwrap_or(&default_spec);
        let sources_of = |v: &serde_json::Value| -> Vec<(String, serde_json::Value)> {
            PV_SOURCES
                .iter()
                .filter_map(|s| v.get(*s).map(|x| (s.to_string(), x.clone())))
                .collect()
        };
        if sources_of(&value) != sources_of(&serde_json::to_value(old_spec).unwrap_or_default()) {
            errs.push(FieldError::forbidden(
                "spec.persistentvolumesource",
                "spec.persistentvolumesource is immutable after creation",
            ));
        }
        errs.extend(validate_immutable(
            &spec.volume_mode,
            &old_spec.volume_mode,
            "volumeMode",
        ));
    }
    errs
}

pub(crate) fn default_pvc(pvc: &mut PersistentVolumeClaim) {
    default_pvc_spec(pvc.spec.get_or_insert_with(Default::default));
    let status = pvc.status.get_or_insert_with(Default::default);
    if status.phase.as_deref().is_none_or(str::is_empty) {
        status.phase = Some("Pending".into());
    }
}

/// upstream's `ValidatePersistentVolumeClaimSpec`.
pub fn validate_pvc_spec(spec: &PersistentVolumeClaimSpec, path: &str) -> Vec<FieldError> {
    let mut errs = validate_access_modes(
        spec.access_modes.as_deref().unwrap_or_default(),
        &child(path, "accessModes"),
        "at least 1 access mode is required",
    );
    if let Some(sel) = &spec.selector
        && let Err(e) = LabelSelector::from_label_selector(sel)
    {
        errs.push(FieldError::invalid(
            child(path, "selector"),
            serde_json::to_value(sel).unwrap_or_default(),
            e,
        ));
    }
    let storage_path = key(&child(path, "resources"), "storage");
    match spec
        .resources
        .as_ref()
        .and_then(|r| r.requests.as_ref())
        .and_then(|r| r.get("storage"))
    {
        None => errs.push(FieldError::required(&storage_path, "")),
        Some(q) => match Quantity::parse(&q.0) {
            None => errs.extend(nonnegative_quantity(q, &storage_path).1),
            Some(parsed) if parsed.is_negative() || parsed.is_zero() => {
                errs.push(FieldError::invalid(
                    &storage_path,
                    q.0.as_str(),
                    "must be greater than zero",
                ));
            }
            Some(_) => {}
        },
    }
    if let Some(class) = spec.storage_class_name.as_deref().filter(|c| !c.is_empty()) {
        errs.extend(dns1123_subdomain(class, &child(path, "storageClassName")));
    }
    errs.extend(optional_enum(
        spec.volume_mode.as_deref(),
        &child(path, "volumeMode"),
        &["Block", "Filesystem"],
    ));
    errs
}

pub(crate) fn validate_pvc(
    pvc: &PersistentVolumeClaim,
    old: Option<&PersistentVolumeClaim>,
    op: Operation,
) -> Vec<FieldError> {
    let default_spec = PersistentVolumeClaimSpec::default();
    let spec = pvc.spec.as_ref().unwrap_or(&default_spec);
    let mut errs = validate_pvc_spec(spec, "spec");
    if let (Some(old), Operation::Update) = (old, op) {
        let old_spec = old.spec.as_ref().unwrap_or(&default_spec);
        let bound = old.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Bound");
        // The binder may set volumeName once; a bound claim may change its storage request
        // (expansion) and volume attributes class.
        let mut munged = spec.clone();
        if old_spec.volume_name.as_deref().unwrap_or_default().is_empty() {
            munged.volume_name.clone_from(&old_spec.volume_name);
        }
        if bound {
            let old_requests = old_spec.resources.as_ref().and_then(|r| r.requests.clone());
            munged.resources.get_or_insert_with(Default::default).requests = old_requests;
            munged
                .volume_attributes_class_name
                .clone_from(&old_spec.volume_attributes_class_name);
            if munged
                .resources
                .as_ref()
                .is_some_and(|r| r.requests.is_none() && r.limits.is_none())
                && old_spec.resources.is_none()
            {
                munged.resources = None;
            }
        }
        if munged != *old_spec {
            errs.push(FieldError::forbidden(
                "spec",
                "spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims",
            ));
        }
    }
    errs
}

/// Resource names a quota may constrain without a domain prefix.
const QUOTA_RESOURCES: &[&str] = &[
    "pods",
    "services",
    "replicationcontrollers",
    "resourcequotas",
    "secrets",
    "configmaps",
    "persistentvolumeclaims",
    "services.nodeports",
    "services.loadbalancers",
    "requests.cpu",
    "requests.memory",
    "requests.storage",
    "requests.ephemeral-storage",
    "limits.cpu",
    "limits.memory",
    "limits.ephemeral-storage",
    "cpu",
    "memory",
    "ephemeral-storage",
];
/// Quota resources counted in whole objects.
const INTEGER_QUOTA_RESOURCES: &[&str] = &[
    "pods",
    "services",
    "replicationcontrollers",
    "resourcequotas",
    "secrets",
    "configmaps",
    "persistentvolumeclaims",
    "services.nodeports",
    "services.loadbalancers",
];

pub(crate) fn default_resource_quota(rq: &mut ResourceQuota) {
    if let Some(hard) = rq.spec.as_mut().and_then(|s| s.hard.as_mut()) {
        canonicalize_list(hard);
    }
}

pub(crate) fn validate_resource_quota(
    rq: &ResourceQuota,
    _old: Option<&ResourceQuota>,
    _op: Operation,
) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let Some(spec) = &rq.spec else { return errs };
    for (name, q) in spec.hard.iter().flatten() {
        let p = key("spec.hard", name);
        errs.extend(invalid_each(&p, name, is_qualified_name(name)));
        let known = QUOTA_RESOURCES.contains(&name.as_str())
            || name.starts_with("count/")
            || name.starts_with("hugepages-")
            || name.starts_with("requests.hugepages-")
            || name.contains('/');
        if !known {
            errs.push(FieldError::invalid(
                &p,
                name.as_str(),
                "must be a standard resource type or fully qualified",
            ));
        }
        let (parsed, e) = nonnegative_quantity(q, &p);
        errs.extend(e);
        let integer = INTEGER_QUOTA_RESOURCES.contains(&name.as_str()) || name.starts_with("count/");
        if integer && parsed.and_then(|q| q.milli_value()).is_some_and(|m| m % 1000 != 0) {
            errs.push(FieldError::invalid(&p, q.0.as_str(), "must be an integer"));
        }
    }
    for (i, scope) in spec.scopes.iter().flatten().enumerate() {
        const SCOPES: &[&str] = &[
            "BestEffort",
            "CrossNamespacePodAffinity",
            "NotBestEffort",
            "NotTerminating",
            "PriorityClass",
            "Terminating",
            "VolumeAttributesClass",
        ];
        if !SCOPES.contains(&scope.as_str()) {
            errs.push(FieldError::not_supported(
                index("spec.scopes", i),
                scope.as_str(),
                SCOPES,
            ));
        }
    }
    errs
}

/// upstream's `SetDefaults_LimitRangeItem`: container items default their limit to max and
/// their request to the limit, then to min.
pub(crate) fn default_limit_range(lr: &mut LimitRange) {
    for item in lr.spec.iter_mut().flat_map(|s| s.limits.iter_mut()) {
        if item.type_ == "Container" {
            let mut default = item.default.take().unwrap_or_default();
            for (k, v) in item.max.iter().flatten() {
                default.entry(k.clone()).or_insert_with(|| v.clone());
            }
            let mut request = item.default_request.take().unwrap_or_default();
            for (k, v) in default.iter().chain(item.min.iter().flatten()) {
                request.entry(k.clone()).or_insert_with(|| v.clone());
            }
            item.default = Some(default).filter(|m| !m.is_empty());
            item.default_request = Some(request).filter(|m| !m.is_empty());
        }
        for list in [
            &mut item.default,
            &mut item.default_request,
            &mut item.max,
            &mut item.min,
            &mut item.max_limit_request_ratio,
        ]
        .into_iter()
        .flatten()
        {
            canonicalize_list(list);
        }
    }
}

pub(crate) fn validate_limit_range(lr: &LimitRange, _old: Option<&LimitRange>, _op: Operation) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let mut types = Vec::new();
    for (i, item) in lr.spec.iter().flat_map(|s| s.limits.iter()).enumerate() {
        let ipath = index("spec.limits", i);
        match item.type_.as_str() {
            "Pod" | "Container" | "PersistentVolumeClaim" => {}
            other => errs.push(FieldError::not_supported(
                child(&ipath, "type"),
                other,
                &["Container", "PersistentVolumeClaim", "Pod"],
            )),
        }
        if types.contains(&item.type_) {
            errs.push(FieldError::duplicate(child(&ipath, "type"), item.type_.as_str()));
        }
        types.push(item.type_.clone());
        let parse = |list: &Option<BTreeMap<String, ApiQuantity>>, name: &str, errs: &mut Vec<FieldError>| {
            let mut out = BTreeMap::new();
            for (k, q) in list.iter().flatten() {
                let p = key(&child(&ipath, name), k);
                errs.extend(invalid_each(&p, k, is_qualified_name(k)));
                let (parsed, e) = nonnegative_quantity(q, &p);
                errs.extend(e);
                if let Some(parsed) = parsed {
                    out.insert(k.clone(), (parsed, q.0.clone()));
                }
            }
            out
        };
        let max = parse(&item.max, "max", &mut errs);
        let min = parse(&item.min, "min", &mut errs);
        let default = parse(&item.default, "default", &mut errs);
        let request = parse(&item.default_request, "defaultRequest", &mut errs);
        let ratio = parse(&item.max_limit_request_ratio, "maxLimitRequestRatio", &mut errs);
        if item.type_ == "PersistentVolumeClaim" && !min.contains_key("storage") && !max.contains_key("storage") {
            errs.push(FieldError::required(
                child(&ipath, "limits"),
                "either minimum or maximum storage value is required, but neither was provided",
            ));
        }
        if item.type_ == "Pod" {
            if !default.is_empty() {
                errs.push(FieldError::forbidden(
                    child(&ipath, "default"),
                    "may not be specified when `type` is 'Pod'",
                ));
            }
            if !request.is_empty() {
                errs.push(FieldError::forbidden(
                    child(&ipath, "defaultRequest"),
                    "may not be specified when `type` is 'Pod'",
                ));
            }
        }
        let mut names: Vec<&String> = max
            .keys()
            .chain(min.keys())
            .chain(default.keys())
            .chain(request.keys())
            .chain(ratio.keys())
            .collect();
        names.sort();
        names.dedup();
        for k in names {
            let (mx, mn, df, rq) = (max.get(k), min.get(k), default.get(k), request.get(k));
            let mut check = |a: Option<&(Quantity, String)>,
                             b: Option<&(Quantity, String)>,
                             field: &str,
                             shown: &str,
                             what: &str| {
                if let (Some((aq, at)), Some((bq, bt))) = (a, b)
                    && aq > bq
                {
                    let value = if shown == "a" { at } else { bt };
                    errs.push(FieldError::invalid(
                        key(&child(&ipath, field), k),
                        value.as_str(),
                        what.replace("{a}", at).replace("{b}", bt),
                    ));
                }
            };
            check(mn, mx, "min", "a", "min value {a} is greater than max value {b}");
            check(
                mn,
                rq,
                "defaultRequest",
                "b",
                "min value {a} is greater than default request value {b}",
            );
            check(
                rq,
                mx,
                "defaultRequest",
                "a",
                "default request value {a} is greater than max value {b}",
            );
            check(
                rq,
                df,
                "defaultRequest",
                "a",
                "default request value {a} is greater than default limit value {b}",
            );
            check(
                mn,
                df,
                "default",
                "a",
                "min value {a} is greater than default value {b}",
            );
            check(
                df,
                mx,
                "default",
                "b",
                "default value {a} is greater than max value {b}",
            );
            errs.extend(check_ratio(&ipath, k, ratio.get(k), mn, mx));
            if let (Some((dq, dt)), Some((rq, rt))) = (df, rq)
                && !overcommit_allowed(k)
                && dq != rq
            {
                errs.push(FieldError::invalid(
                    key(&child(&ipath, "defaultRequest"), k),
                    rt.as_str(),
                    format!("default value {dt} must equal to defaultRequest value {rt} in {k}"),
                ));
            }
        }
    }
    errs
}

/// Upstream's `IsOvercommitAllowed`: native resources other than hugepages.
fn overcommit_allowed(name: &str) -> bool {
    (!name.contains('/') || name.contains("kubernetes.io/")) && !name.starts_with("hugepages-")
}

/// A LimitRange item's maxLimitRequestRatio: at least 1, and no more than max/min allows.
fn check_ratio(
    ipath: &str,
    name: &str,
    ratio: Option<&(Quantity, String)>,
    min: Option<&(Quantity, String)>,
    max: Option<&(Quantity, String)>,
) -> Vec<FieldError> {
    let Some((ratio, text)) = ratio else {
        return Vec::new();
    };
    let path = key(&child(ipath, "maxLimitRequestRatio"), name);
    let mut errs = Vec::new();
    if ratio.as_f64() < 1.0 {
        errs.push(FieldError::invalid(
            path.clone(),
            text.as_str(),
            format!("ratio {text} is less than 1"),
        ));
    }
    if let (Some((min, _)), Some((max, _))) = (min, max) {
        let limit = max.as_f64() / min.as_f64();
        if ratio.as_f64() > limit {
            errs.push(FieldError::invalid(
                path,
                text.as_str(),
                format!("ratio {text} is greater than max/min = {limit:.6}"),
            ));
        }
    }
    errs
}
