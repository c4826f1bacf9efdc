//! The Pod kind: create, update and status-update validation (upstream's `ValidatePodCreate`,
//! `ValidatePodUpdate`, `ValidatePodStatusUpdate`).

use k8s_openapi::api::core::v1::{Pod, PodSpec, Toleration};
use serde_json::Value;

use super::pod_validation::{validate_pod_spec, validate_tolerations};
use crate::field::{FieldError, child, index};
use crate::strategy::Operation;
use crate::validation::common::{dns1123_subdomain, ip_address};
use crate::validation::names::inclusive_range_error;

const UPDATE_FORBIDDEN: &str = "pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)";

pub(crate) fn validate_pod(pod: &Pod, old: Option<&Pod>, op: Operation) -> Vec<FieldError> {
    let default_spec = PodSpec::default();
    let spec = pod.spec.as_ref().unwrap_or(&default_spec);
    match (op, old) {
        (Operation::UpdateStatus, Some(old)) => validate_status_update(pod, old),
        (Operation::Update, Some(old)) => {
            // Compare with the stored pod as today's defaulting would have written it, so an
            // object stored by an older server does not make every update "change" the spec.
            let mut old = old.clone();
            super::pod_defaults::default_pod(&mut old);
            let old_spec = old.spec.as_ref().unwrap_or(&default_spec);
            let mut errs = validate_pod_spec(spec, "spec");
            errs.extend(validate_spec_update(spec, old_spec));
            errs
        }
        _ => validate_pod_spec(spec, "spec"),
    }
}

/// What may change in a running pod's spec: images, activeDeadlineSeconds (only down or from
/// unset), added tolerations, schedulingGates removals, terminationGracePeriodSeconds (-n → 1).
fn validate_spec_update(new: &PodSpec, old: &PodSpec) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let new_init = new.init_containers.as_deref().unwrap_or_default();
    let old_init = old.init_containers.as_deref().unwrap_or_default();
    for (new_list, old_list, name) in [
        (&new.containers[..], &old.containers[..], "containers"),
        (new_init, old_init, "initContainers"),
    ] {
        let path = child("spec", name);
        if new_list.len() != old_list.len() {
            errs.push(FieldError::forbidden(
                path,
                "pod updates may not add or remove containers",
            ));
            return errs;
        }
        for (i, c) in new_list.iter().enumerate() {
            let image = c.image.as_deref().unwrap_or_default();
            if image.trim() != image {
                errs.push(FieldError::invalid(
                    child(&index(&path, i), "image"),
                    image,
                    "must not have leading or trailing whitespace",
                ));
            }
        }
    }
    match (new.active_deadline_seconds, old.active_deadline_seconds) {
        (Some(n), _) if !(0..=i64::from(i32::MAX)).contains(&n) => {
            errs.push(FieldError::invalid(
                "spec.activeDeadlineSeconds",
                n,
                inclusive_range_error(0, i64::from(i32::MAX)),
            ));
            return errs;
        }
        (Some(n), Some(o)) if o < n => {
            errs.push(FieldError::invalid(
                "spec.activeDeadlineSeconds",
                n,
                "must be less than or equal to previous value",
            ));
            return errs;
        }
        (None, Some(_)) => errs.push(FieldError::invalid(
            "spec.activeDeadlineSeconds",
            Value::Null,
            "must not update from a positive integer to nil value",
        )),
        _ => {}
    }
    errs.extend(only_added_tolerations(
        new.tolerations.as_deref().unwrap_or_default(),
        old.tolerations.as_deref().unwrap_or_default(),
    ));
    let old_gates = old.scheduling_gates.as_deref().unwrap_or_default();
    if new.scheduling_gates.iter().flatten().any(|g| !old_gates.contains(g)) {
        errs.push(FieldError::forbidden(
            "spec.schedulingGates",
            "only deletion is allowed, but found new scheduling gate",
        ));
    }
    if new == old {
        return errs;
    }
    // Put back what may change, then anything still different is forbidden.
    let mut munged = new.clone();
    for (c, o) in munged.containers.iter_mut().zip(&old.containers) {
        c.image.clone_from(&o.image);
    }
    for (c, o) in munged.init_containers.iter_mut().flatten().zip(old_init) {
        c.image.clone_from(&o.image);
    }
    munged.active_deadline_seconds = old.active_deadline_seconds;
    munged.scheduling_gates.clone_from(&old.scheduling_gates);
    munged.tolerations.clone_from(&old.tolerations);
    if old.termination_grace_period_seconds.is_some_and(|t| t < 0) && munged.termination_grace_period_seconds == Some(1)
    {
        munged.termination_grace_period_seconds = old.termination_grace_period_seconds;
    }
    // A gated pod may gain node selector entries.
    if !old_gates.is_empty()
        && let (Some(new_sel), old_sel) = (&munged.node_selector, old.node_selector.as_ref())
        && old_sel.into_iter().flatten().all(|(k, v)| new_sel.get(k) == Some(v))
    {
        munged.node_selector.clone_from(&old.node_selector);
    }
    if munged != *old {
        errs.push(FieldError::forbidden(
            "spec",
            format!("{UPDATE_FORBIDDEN}\n{}", spec_diff(old, &munged)),
        ));
    }
    errs
}

/// upstream's `validateOnlyAddedTolerations`: existing tolerations stay (their
/// tolerationSeconds may change); new ones are validated.
fn only_added_tolerations(new: &[Toleration], old: &[Toleration]) -> Vec<FieldError> {
    for o in old {
        let kept = new.iter().any(|n| {
            let mut o = o.clone();
            o.toleration_seconds = n.toleration_seconds;
            o == *n
        });
        if !kept {
            return vec![FieldError::forbidden(
                "spec.tolerations",
                "existing toleration can not be modified except its tolerationSeconds",
            )];
        }
    }
    validate_tolerations(new, "spec.tolerations")
}

/// A readable field-by-field diff of two pod specs, in the spirit of the `cmp.Diff` output
/// upstream appends to the forbidden-update message.
fn spec_diff(old: &PodSpec, new: &PodSpec) -> String {
    let old = serde_json::to_value(old).unwrap_or_default();
    let new = serde_json::to_value(new).unwrap_or_default();
    let empty = serde_json::Map::new();
    let old_map = old.as_object().unwrap_or(&empty);
    let new_map = new.as_object().unwrap_or(&empty);
    let mut keys: Vec<&String> = old_map.keys().chain(new_map.keys()).collect();
    keys.sort();
    keys.dedup();
    let mut out = String::from("  core.PodSpec{\n");
    for k in keys {
        let (a, b) = (old_map.get(k), new_map.get(k));
        if a == b {
            continue;
        }
        let field = go_field_name(k);
        if let Some(a) = a {
            out.push_str(&format!("- \t{field}: {a},\n"));
        }
        if let Some(b) = b {
            out.push_str(&format!("+ \t{field}: {b},\n"));
        }
    }
    out.push_str("  }\n");
    out
}

fn go_field_name(json_key: &str) -> String {
    let mut chars = json_key.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// upstream's `ValidatePodStatusUpdate` (the rules that matter to clients): terminal phases
/// are final, IPs and the nominated node name are well-formed. The spec is the stored one.
fn validate_status_update(pod: &Pod, old: &Pod) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let status = pod.status.clone().unwrap_or_default();
    let old_phase = old.status.as_ref().and_then(|s| s.phase.as_deref()).unwrap_or_default();
    let new_phase = status.phase.as_deref().unwrap_or_default();
    if matches!(old_phase, "Succeeded" | "Failed") && new_phase != old_phase {
        errs.push(FieldError::forbidden(
            "status.phase",
            format!("cannot transition from terminal phase {old_phase} to {new_phase}"),
        ));
    }
    if let Some(n) = status.nominated_node_name.as_deref().filter(|n| !n.is_empty()) {
        errs.extend(dns1123_subdomain(n, "status.nominatedNodeName"));
    }
    for (i, ip) in status.pod_ips.iter().flatten().enumerate() {
        errs.extend(ip_address(&ip.ip, &child(&index("status.podIPs", i), "ip")));
    }
    for (i, ip) in status.host_ips.iter().flatten().enumerate() {
        errs.extend(ip_address(&ip.ip, &child(&index("status.hostIPs", i), "ip")));
    }
    errs
}
