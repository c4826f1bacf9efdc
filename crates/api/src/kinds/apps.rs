//! apps/v1 kinds: defaults from upstream's `pkg/apis/apps/v1/defaults.go` and validation from
//! `pkg/apis/apps/validation` (selectors, templates, strategies, immutable selectors).

use k8s_openapi::api::apps::v1::{
    ControllerRevision, DaemonSet, DaemonSetUpdateStrategy, Deployment, DeploymentStrategy, ReplicaSet,
    RollingUpdateDaemonSet, RollingUpdateDeployment, RollingUpdateStatefulSetStrategy, StatefulSet,
    StatefulSetPersistentVolumeClaimRetentionPolicy, StatefulSetUpdateStrategy,
};
use k8s_openapi::api::core::v1::{PersistentVolumeClaimVolumeSource, PodTemplateSpec, Volume};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector as ApiSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::Value;

use crate::field::{FieldError, child, go_label_selector, go_string_map, index};
use crate::kinds::core::{default_pod_template, default_pvc_spec, validate_pod_template, validate_pvc_spec};
use crate::selector::LabelSelector;
use crate::strategy::{Operation, Typed};
use crate::validation::common::{
    int_or_percent, int_or_string_value, nonnegative, not_more_than_100_percent, percent_value, validate_label_selector,
};
use crate::validation::meta::{FIELD_IMMUTABLE, IS_NEGATIVE};

pub(crate) static DEPLOYMENT: Typed<Deployment> = Typed::new(default_deployment, validate_deployment);
pub(crate) static REPLICA_SET: Typed<ReplicaSet> = Typed::new(default_replica_set, validate_replica_set);
pub(crate) static STATEFUL_SET: Typed<StatefulSet> = Typed::new(default_stateful_set, validate_stateful_set);
pub(crate) static DAEMON_SET: Typed<DaemonSet> = Typed::new(default_daemon_set, validate_daemon_set);
pub(crate) static CONTROLLER_REVISION: Typed<ControllerRevision> =
    Typed::new(crate::strategy::no_defaults, validate_controller_revision);

fn percent(s: &str) -> Option<IntOrString> {
    Some(IntOrString::String(s.to_string()))
}

fn default_deployment(d: &mut Deployment) {
    let spec = &mut d.spec;
    spec.replicas.get_or_insert(1);
    let strategy = spec.strategy.get_or_insert_with(DeploymentStrategy::default);
    if strategy.type_.as_deref().is_none_or(str::is_empty) {
        strategy.type_ = Some("RollingUpdate".into());
    }
    if strategy.type_.as_deref() == Some("RollingUpdate") {
        let rolling = strategy
            .rolling_update
            .get_or_insert_with(RollingUpdateDeployment::default);
        // 25% each, upstream's defaults.
        if rolling.max_unavailable.is_none() {
            rolling.max_unavailable = percent("25%");
        }
        if rolling.max_surge.is_none() {
            rolling.max_surge = percent("25%");
        }
    }
    spec.revision_history_limit.get_or_insert(10);
    spec.progress_deadline_seconds.get_or_insert(600);
    default_pod_template(&mut spec.template);
}

fn default_replica_set(rs: &mut ReplicaSet) {
    let spec = &mut rs.spec;
    spec.replicas.get_or_insert(1);
    if let Some(t) = spec.template.as_mut() {
        default_pod_template(t);
    }
}

fn default_stateful_set(s: &mut StatefulSet) {
    let spec = &mut s.spec;
    if spec.pod_management_policy.as_deref().is_none_or(str::is_empty) {
        spec.pod_management_policy = Some("OrderedReady".into());
    }
    let strategy = spec
        .update_strategy
        .get_or_insert_with(StatefulSetUpdateStrategy::default);
    if strategy.type_.as_deref().is_none_or(str::is_empty) {
        strategy.type_ = Some("RollingUpdate".into());
        strategy
            .rolling_update
            .get_or_insert_with(RollingUpdateStatefulSetStrategy::default);
    }
    if strategy.type_.as_deref() == Some("RollingUpdate")
        && let Some(rolling) = strategy.rolling_update.as_mut()
    {
        rolling.partition.get_or_insert(0);
    }
    let policy = spec
        .persistent_volume_claim_retention_policy
        .get_or_insert_with(StatefulSetPersistentVolumeClaimRetentionPolicy::default);
    for field in [&mut policy.when_deleted, &mut policy.when_scaled] {
        if field.as_deref().is_none_or(str::is_empty) {
            *field = Some("Retain".into());
        }
    }
    spec.replicas.get_or_insert(1);
    spec.revision_history_limit.get_or_insert(10);
    default_pod_template(&mut spec.template);
    // Claim templates get the PersistentVolumeClaim defaults, status included.
    for claim in spec.volume_claim_templates.iter_mut().flatten() {
        default_pvc_spec(claim.spec.get_or_insert_with(Default::default));
        let status = claim.status.get_or_insert_with(Default::default);
        if status.phase.as_deref().is_none_or(str::is_empty) {
            status.phase = Some("Pending".into());
        }
    }
}

fn default_daemon_set(ds: &mut DaemonSet) {
    let spec = &mut ds.spec;
    let strategy = spec
        .update_strategy
        .get_or_insert_with(DaemonSetUpdateStrategy::default);
    if strategy.type_.as_deref().is_none_or(str::is_empty) {
        strategy.type_ = Some("RollingUpdate".into());
    }
    if strategy.type_.as_deref() == Some("RollingUpdate") {
        let rolling = strategy
            .rolling_update
            .get_or_insert_with(RollingUpdateDaemonSet::default);
        rolling.max_unavailable.get_or_insert(IntOrString::Int(1));
        rolling.max_surge.get_or_insert(IntOrString::Int(0));
    }
    spec.revision_history_limit.get_or_insert(10);
    default_pod_template(&mut spec.template);
}

/// An API selector with no requirements: upstream's `nil` selector for apps/v1 (the decoder
/// cannot tell a missing selector from `{}`, and a missing one is the common mistake).
fn is_empty_selector(sel: &ApiSelector) -> bool {
    sel.match_labels.as_ref().is_none_or(|m| m.is_empty()) && sel.match_expressions.as_ref().is_none_or(Vec::is_empty)
}

/// The selector checks every workload shares: required, well-formed, matching the template.
fn validate_selector_and_template(sel: &ApiSelector, template: Option<&PodTemplateSpec>) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let raw_labels = template
        .and_then(|t| t.metadata.as_ref())
        .and_then(|m| m.labels.as_ref());
    let labels = raw_labels.cloned().unwrap_or_default();
    let mismatch = || {
        FieldError::invalid_rendered(
            "spec.template.metadata.labels",
            go_string_map(raw_labels),
            "`selector` does not match template `labels`",
        )
    };
    if is_empty_selector(sel) {
        errs.push(FieldError::required("spec.selector", ""));
        // upstream's nil selector selects nothing, so the template cannot match it either.
        errs.push(mismatch());
        return errs;
    }
    errs.extend(validate_label_selector(sel, "spec.selector"));
    match LabelSelector::from_label_selector(sel) {
        Err(_) => errs.push(FieldError::invalid_rendered(
            "spec.selector",
            go_label_selector(sel),
            "invalid label selector",
        )),
        Ok(selector) => {
            if !selector.is_empty() && !selector.matches(&labels) {
                errs.push(mismatch());
            }
        }
    }
    errs
}

/// The template rules of ReplicaSet-like workloads: restartPolicy Always, no deadline.
fn validate_long_running_template(template: Option<&PodTemplateSpec>, kind: &str) -> Vec<FieldError> {
    let mut errs = validate_pod_template(template, "spec.template");
    let spec = template.and_then(|t| t.spec.as_ref());
    let restart = spec.and_then(|s| s.restart_policy.as_deref()).unwrap_or_default();
    if restart != "Always" {
        errs.push(FieldError::not_supported(
            "spec.template.spec.restartPolicy",
            restart,
            &["Always"],
        ));
    }
    if let Some(ads) = spec.and_then(|s| s.active_deadline_seconds) {
        errs.push(FieldError::invalid(
            "spec.template.spec.activeDeadlineSeconds",
            ads,
            format!("activeDeadlineSeconds in {kind} is not Supported"),
        ));
    }
    errs
}

fn selector_immutable(new: &ApiSelector, old: &ApiSelector) -> Vec<FieldError> {
    if new == old {
        Vec::new()
    } else {
        vec![FieldError::invalid_rendered(
            "spec.selector",
            go_label_selector(new),
            FIELD_IMMUTABLE,
        )]
    }
}

/// Status counters must not be negative (the common part of the workloads' status validation).
fn validate_status_counters(status: Option<Value>) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let Some(Value::Object(status)) = status else {
        return errs;
    };
    for (k, v) in &status {
        if let Some(n) = v.as_i64().filter(|n| *n < 0) {
            errs.push(FieldError::invalid(child("status", k), n, IS_NEGATIVE));
        }
    }
    errs
}

fn validate_deployment(d: &Deployment, old: Option<&Deployment>, op: Operation) -> Vec<FieldError> {
    if op == Operation::UpdateStatus {
        return validate_status_counters(serde_json::to_value(&d.status).ok());
    }
    let spec = d.spec.clone();
    let mut errs = nonnegative(spec.replicas.map(i64::from), "spec.replicas");
    errs.extend(validate_selector_and_template(&spec.selector, Some(&spec.template)));
    errs.extend(validate_long_running_template(Some(&spec.template), "ReplicaSet"));
    errs.extend(validate_deployment_strategy(spec.strategy.as_ref()));
    errs.extend(nonnegative(
        spec.min_ready_seconds.map(i64::from),
        "spec.minReadySeconds",
    ));
    errs.extend(nonnegative(
        spec.revision_history_limit.map(i64::from),
        "spec.revisionHistoryLimit",
    ));
    if let Some(pds) = spec.progress_deadline_seconds {
        errs.extend(nonnegative(Some(i64::from(pds)), "spec.progressDeadlineSeconds"));
        if pds <= spec.min_ready_seconds.unwrap_or(0) {
            errs.push(FieldError::invalid(
                "spec.progressDeadlineSeconds",
                pds,
                "must be greater than minReadySeconds",
            ));
        }
    }
    if let Some(old) = old {
        errs.extend(selector_immutable(&spec.selector, &old.spec.selector));
    }
    errs
}

fn validate_deployment_strategy(strategy: Option<&DeploymentStrategy>) -> Vec<FieldError> {
    let default = DeploymentStrategy::default();
    let strategy = strategy.unwrap_or(&default);
    let mut errs = Vec::new();
    match strategy.type_.as_deref().unwrap_or_default() {
        "Recreate" => {
            if strategy.rolling_update.is_some() {
                errs.push(FieldError::forbidden(
                    "spec.strategy.rollingUpdate",
                    "may not be specified when strategy `type` is 'Recreate'",
                ));
            }
        }
        "RollingUpdate" => match &strategy.rolling_update {
            None => errs.push(FieldError::required(
                "spec.strategy.rollingUpdate",
                "this should be defaulted and never be nil",
            )),
            Some(r) => {
                let path = "spec.strategy.rollingUpdate";
                let unavailable = r.max_unavailable.clone().unwrap_or(IntOrString::Int(0));
                let surge = r.max_surge.clone().unwrap_or(IntOrString::Int(0));
                errs.extend(int_or_percent(&unavailable, &child(path, "maxUnavailable")));
                errs.extend(int_or_percent(&surge, &child(path, "maxSurge")));
                if int_or_percent_value(&unavailable) == 0 && int_or_percent_value(&surge) == 0 {
                    errs.push(FieldError::invalid(
                        child(path, "maxUnavailable"),
                        int_or_string_value(&unavailable),
                        "may not be 0 when `maxSurge` is 0",
                    ));
                }
                errs.extend(not_more_than_100_percent(&unavailable, &child(path, "maxUnavailable")));
            }
        },
        other => errs.push(FieldError::not_supported(
            "spec.strategy",
            other,
            &["Recreate", "RollingUpdate"],
        )),
    }
    errs
}

/// upstream's `getIntOrPercentValue`: the int, or the number before `%`.
fn int_or_percent_value(v: &IntOrString) -> i64 {
    match v {
        IntOrString::Int(n) => i64::from(*n),
        IntOrString::String(_) => percent_value(v).unwrap_or(0),
    }
}

fn validate_replica_set(rs: &ReplicaSet, old: Option<&ReplicaSet>, op: Operation) -> Vec<FieldError> {
    if op == Operation::UpdateStatus {
        return validate_status_counters(serde_json::to_value(&rs.status).ok());
    }
    let spec = rs.spec.clone();
    let mut errs = nonnegative(spec.replicas.map(i64::from), "spec.replicas");
    errs.extend(nonnegative(
        spec.min_ready_seconds.map(i64::from),
        "spec.minReadySeconds",
    ));
    errs.extend(validate_selector_and_template(&spec.selector, spec.template.as_ref()));
    errs.extend(validate_long_running_template(spec.template.as_ref(), "ReplicaSet"));
    if let Some(old) = old {
        errs.extend(selector_immutable(&spec.selector, &old.spec.selector));
    }
    errs
}

fn validate_stateful_set(s: &StatefulSet, old: Option<&StatefulSet>, op: Operation) -> Vec<FieldError> {
    if op == Operation::UpdateStatus {
        return validate_status_counters(serde_json::to_value(&s.status).ok());
    }
    let spec = s.spec.clone();
    let mut errs = Vec::new();
    match spec.pod_management_policy.as_deref().unwrap_or_default() {
        "" => errs.push(FieldError::required("spec.podManagementPolicy", "")),
        "OrderedReady" | "Parallel" => {}
        other => errs.push(FieldError::invalid(
            "spec.podManagementPolicy",
            other,
            "must be 'OrderedReady' or 'Parallel'",
        )),
    }
    let strategy = spec.update_strategy.clone().unwrap_or_default();
    match strategy.type_.as_deref().unwrap_or_default() {
        "" => errs.push(FieldError::required("spec.updateStrategy", "")),
        "OnDelete" => {
            if let Some(r) = &strategy.rolling_update {
                errs.push(FieldError::invalid(
                    "spec.updateStrategy.rollingUpdate",
                    serde_json::to_value(r).unwrap_or_default(),
                    "only allowed for updateStrategy 'RollingUpdate'",
                ));
            }
        }
        "RollingUpdate" => {
            if let Some(r) = &strategy.rolling_update {
                errs.extend(nonnegative(
                    r.partition.map(i64::from),
                    "spec.updateStrategy.rollingUpdate.partition",
                ));
                if let Some(mu) = &r.max_unavailable {
                    let path = "spec.updateStrategy.rollingUpdate.maxUnavailable";
                    errs.extend(int_or_percent(mu, path));
                    if int_or_percent_value(mu) == 0 {
                        errs.push(FieldError::invalid(
                            path,
                            int_or_string_value(mu),
                            "must be greater than 0",
                        ));
                    }
                    errs.extend(not_more_than_100_percent(mu, path));
                }
            }
        }
        _ => errs.push(FieldError::invalid(
            "spec.updateStrategy",
            serde_json::to_value(&strategy).unwrap_or_default(),
            "must be 'RollingUpdate' or 'OnDelete'",
        )),
    }
    if let Some(policy) = &spec.persistent_volume_claim_retention_policy {
        for (v, name) in [
            (&policy.when_deleted, "whenDeleted"),
            (&policy.when_scaled, "whenScaled"),
        ] {
            let v = v.as_deref().unwrap_or_default();
            if v != "Retain" && v != "Delete" {
                errs.push(FieldError::not_supported(
                    child("spec.persistentVolumeClaimRetentionPolicy", name),
                    v,
                    &["Retain", "Delete"],
                ));
            }
        }
    }
    errs.extend(nonnegative(spec.replicas.map(i64::from), "spec.replicas"));
    if let Some(start) = spec.ordinals.as_ref().and_then(|o| o.start) {
        errs.extend(nonnegative(Some(i64::from(start)), "spec.ordinals.start"));
    }
    errs.extend(validate_selector_and_template(&spec.selector, Some(&spec.template)));
    // Volume mounts may name claim templates as well as the template's own volumes.
    let mut template = spec.template.clone();
    if let Some(pod_spec) = template.spec.as_mut() {
        for claim in spec.volume_claim_templates.iter().flatten() {
            let name = claim.metadata.name.clone().unwrap_or_default();
            pod_spec.volumes.get_or_insert_with(Vec::new).push(Volume {
                name: name.clone(),
                persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                    claim_name: name,
                    read_only: None,
                }),
                ..Default::default()
            });
        }
    }
    errs.extend(validate_long_running_template(Some(&template), "StatefulSet"));
    errs.extend(nonnegative(
        spec.min_ready_seconds.map(i64::from),
        "spec.minReadySeconds",
    ));
    for (i, claim) in spec.volume_claim_templates.iter().flatten().enumerate() {
        let cpath = index("spec.volumeClaimTemplates", i);
        if let Some(claim_spec) = &claim.spec {
            errs.extend(validate_pvc_spec(claim_spec, &child(&cpath, "spec")));
        }
    }
    if let Some(old) = old {
        // As stored by today's defaulting (see the pod update rules).
        let mut old = old.clone();
        default_stateful_set(&mut old);
        let old_spec = old.spec.clone();
        let mut munged = spec.clone();
        munged.replicas = old_spec.replicas;
        munged.template.clone_from(&old_spec.template);
        munged.update_strategy.clone_from(&old_spec.update_strategy);
        munged.min_ready_seconds = old_spec.min_ready_seconds;
        munged.ordinals.clone_from(&old_spec.ordinals);
        munged.revision_history_limit = old_spec.revision_history_limit;
        munged
            .persistent_volume_claim_retention_policy
            .clone_from(&old_spec.persistent_volume_claim_retention_policy);
        if munged != old_spec {
            errs.push(FieldError::forbidden(
                "spec",
                "updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'revisionHistoryLimit', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden",
            ));
        }
    }
    errs
}

fn validate_daemon_set(ds: &DaemonSet, old: Option<&DaemonSet>, op: Operation) -> Vec<FieldError> {
    if op == Operation::UpdateStatus {
        return validate_status_counters(serde_json::to_value(&ds.status).ok());
    }
    let spec = ds.spec.clone();
    let mut errs = validate_selector_and_template(&spec.selector, Some(&spec.template));
    errs.extend(validate_long_running_template(Some(&spec.template), "DaemonSet"));
    errs.extend(nonnegative(
        spec.min_ready_seconds.map(i64::from),
        "spec.minReadySeconds",
    ));
    let strategy = spec.update_strategy.clone().unwrap_or_default();
    match strategy.type_.as_deref().unwrap_or_default() {
        "OnDelete" => {}
        "RollingUpdate" => match &strategy.rolling_update {
            None => errs.push(FieldError::required("spec.updateStrategy.rollingUpdate", "")),
            Some(r) => {
                let path = "spec.updateStrategy.rollingUpdate";
                let mut has = [false, false];
                for (i, (v, name)) in [(&r.max_unavailable, "maxUnavailable"), (&r.max_surge, "maxSurge")]
                    .into_iter()
                    .enumerate()
                {
                    if let Some(v) = v.as_ref().filter(|v| int_or_percent_value(v) != 0) {
                        has[i] = true;
                        errs.extend(int_or_percent(v, &child(path, name)));
                        errs.extend(not_more_than_100_percent(v, &child(path, name)));
                    }
                }
                match has {
                    [true, true] => errs.push(FieldError::invalid(
                        child(path, "maxSurge"),
                        r.max_surge.as_ref().map(int_or_string_value).unwrap_or_default(),
                        "may not be set when maxUnavailable is non-zero",
                    )),
                    [false, false] => errs.push(FieldError::required(
                        child(path, "maxUnavailable"),
                        "cannot be 0 when maxSurge is 0",
                    )),
                    _ => {}
                }
            }
        },
        other => errs.push(FieldError::not_supported(
            "spec.updateStrategy",
            other,
            &["RollingUpdate", "OnDelete"],
        )),
    }
    errs.extend(nonnegative(
        spec.revision_history_limit.map(i64::from),
        "spec.revisionHistoryLimit",
    ));
    if let Some(old) = old {
        errs.extend(selector_immutable(&spec.selector, &old.spec.selector));
    }
    errs
}

fn validate_controller_revision(
    cr: &ControllerRevision,
    old: Option<&ControllerRevision>,
    _op: Operation,
) -> Vec<FieldError> {
    let mut errs = nonnegative(cr.revision, "revision");
    if cr.data.0.is_null() {
        errs.push(FieldError::required("data", "data is mandatory"));
    }
    if let Some(old) = old
        && old.data != cr.data
    {
        errs.push(FieldError::invalid("data", cr.data.0.clone(), FIELD_IMMUTABLE));
    }
    errs
}

#[cfg(test)]
#[path = "apps_tests.rs"]
mod tests;
