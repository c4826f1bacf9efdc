//! PodSpec and pod template validation, as upstream's `ValidatePodSpec` and
//! `ValidatePodTemplateSpec`; shared by Pods and every workload's template.

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::{
    Container, PodDNSConfig, PodSecurityContext, PodSpec, PodTemplateSpec, SecurityContext, Toleration,
    TopologySpreadConstraint,
};

use super::containers::{validate_containers, validate_init_containers, validate_resources};
use super::volumes::validate_volumes;
use crate::field::{FieldError, child, index, key};
use crate::validation::common::{
    dns1123_label, dns1123_subdomain, invalid_each, ip_address, nonnegative, nonnegative_quantity, optional_enum,
    required_enum,
};
use crate::validation::meta::{validate_annotations, validate_label_name, validate_labels};
use crate::validation::names::{inclusive_range_error, is_valid_label_value};

const MAX_INT32: i64 = i32::MAX as i64;
const MAX_UNIX_ID: i64 = 0xffff_ffff;

/// upstream's `ValidatePodTemplateSpec`: template labels/annotations (at `<path>.labels`, as
/// upstream reports them) and the spec.
pub fn validate_pod_template(template: Option<&PodTemplateSpec>, path: &str) -> Vec<FieldError> {
    let meta = template.and_then(|t| t.metadata.as_ref());
    let mut errs = validate_labels(meta.and_then(|m| m.labels.as_ref()), &child(path, "labels"));
    errs.extend(validate_annotations(
        meta.and_then(|m| m.annotations.as_ref()),
        &child(path, "annotations"),
    ));
    let default_spec = PodSpec::default();
    let spec = template.and_then(|t| t.spec.as_ref()).unwrap_or(&default_spec);
    let spec_path = child(path, "spec");
    errs.extend(validate_pod_spec(spec, &spec_path));
    if spec.ephemeral_containers.as_ref().is_some_and(|e| !e.is_empty()) {
        errs.push(FieldError::forbidden(
            child(&spec_path, "ephemeralContainers"),
            "ephemeral containers not allowed in pod template",
        ));
    }
    errs
}

/// upstream's `ValidatePodSpec`.
pub fn validate_pod_spec(spec: &PodSpec, path: &str) -> Vec<FieldError> {
    let (volumes, mut errs) = validate_volumes(spec.volumes.as_deref().unwrap_or_default(), &child(path, "volumes"));
    let init = spec.init_containers.as_deref().unwrap_or_default();
    errs.extend(validate_containers(
        &spec.containers,
        &volumes,
        &child(path, "containers"),
    ));
    errs.extend(validate_init_containers(
        init,
        &spec.containers,
        &volumes,
        &child(path, "initContainers"),
    ));
    errs.extend(host_port_conflicts(&spec.containers, &child(path, "containers")));
    errs.extend(validate_ephemeral_names(spec, path));
    errs.extend(required_enum(
        spec.restart_policy.as_deref(),
        &child(path, "restartPolicy"),
        &["Always", "OnFailure", "Never"],
    ));
    errs.extend(required_enum(
        spec.dns_policy.as_deref(),
        &child(path, "dnsPolicy"),
        &["ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"],
    ));
    errs.extend(validate_labels(
        spec.node_selector.as_ref(),
        &child(path, "nodeSelector"),
    ));
    errs.extend(validate_pod_security_context(
        spec.security_context.as_ref(),
        &child(path, "securityContext"),
    ));
    for (i, c) in spec.containers.iter().chain(init).enumerate() {
        // Container security contexts are reported under their own list.
        let (list, j) = if i < spec.containers.len() {
            ("containers", i)
        } else {
            ("initContainers", i - spec.containers.len())
        };
        errs.extend(validate_security_context(
            c,
            &child(&index(&child(path, list), j), "securityContext"),
        ));
    }
    errs.extend(validate_dns_config(
        spec.dns_config.as_ref(),
        spec.dns_policy.as_deref(),
        &child(path, "dnsConfig"),
    ));
    if let Some(name) = spec.service_account_name.as_deref().filter(|n| !n.is_empty()) {
        errs.extend(dns1123_subdomain(name, &child(path, "serviceAccountName")));
    }
    if let Some(name) = spec.node_name.as_deref().filter(|n| !n.is_empty()) {
        errs.extend(dns1123_subdomain(name, &child(path, "nodeName")));
    }
    if let Some(v) = spec.active_deadline_seconds
        && !(1..=MAX_INT32).contains(&v)
    {
        errs.push(FieldError::invalid(
            child(path, "activeDeadlineSeconds"),
            v,
            inclusive_range_error(1, MAX_INT32),
        ));
    }
    errs.extend(nonnegative(
        spec.termination_grace_period_seconds,
        &child(path, "terminationGracePeriodSeconds"),
    ));
    if let Some(h) = spec.hostname.as_deref().filter(|h| !h.is_empty()) {
        errs.extend(dns1123_label(h, &child(path, "hostname")));
    }
    if let Some(s) = spec.subdomain.as_deref().filter(|s| !s.is_empty()) {
        errs.extend(dns1123_label(s, &child(path, "subdomain")));
    }
    errs.extend(validate_tolerations(
        spec.tolerations.as_deref().unwrap_or_default(),
        &child(path, "tolerations"),
    ));
    for (i, alias) in spec.host_aliases.iter().flatten().enumerate() {
        let apath = index(&child(path, "hostAliases"), i);
        errs.extend(ip_address(&alias.ip, &child(&apath, "ip")));
        for (j, h) in alias.hostnames.iter().flatten().enumerate() {
            errs.extend(dns1123_subdomain(h, &index(&child(&apath, "hostnames"), j)));
        }
    }
    if let Some(name) = spec.priority_class_name.as_deref().filter(|n| !n.is_empty()) {
        errs.extend(dns1123_subdomain(name, &child(path, "priorityClassName")));
    }
    if let Some(name) = spec.runtime_class_name.as_deref() {
        errs.extend(dns1123_subdomain(name, &child(path, "runtimeClassName")));
    }
    if let Some(p) = spec.preemption_policy.as_deref() {
        errs.extend(required_enum(
            Some(p),
            &child(path, "preemptionPolicy"),
            &["PreemptLowerPriority", "Never"],
        ));
    }
    for (name, q) in spec.overhead.iter().flatten() {
        errs.extend(nonnegative_quantity(q, &key(&child(path, "overhead"), name)).1);
    }
    if let Some(os) = &spec.os {
        errs.extend(required_enum(
            Some(os.name.as_str()),
            &child(&child(path, "os"), "name"),
            &["linux", "windows"],
        ));
    }
    if let Some(r) = &spec.resources {
        errs.extend(validate_resources(r, &child(path, "resources")));
    }
    let mut gates = BTreeSet::new();
    for (i, gate) in spec.scheduling_gates.iter().flatten().enumerate() {
        let gpath = index(&child(path, "schedulingGates"), i);
        errs.extend(validate_label_name(&gate.name, &child(&gpath, "name")));
        if !gates.insert(gate.name.as_str()) {
            errs.push(FieldError::duplicate(child(&gpath, "name"), gate.name.as_str()));
        }
    }
    for (i, c) in spec.topology_spread_constraints.iter().flatten().enumerate() {
        errs.extend(validate_topology_spread(
            c,
            &index(&child(path, "topologySpreadConstraints"), i),
        ));
    }
    errs
}

/// Ephemeral container names must not collide with the others (they are added through the
/// `ephemeralcontainers` subresource, but a client may send them in a full update).
fn validate_ephemeral_names(spec: &PodSpec, path: &str) -> Vec<FieldError> {
    let mut names: BTreeSet<&str> = spec
        .containers
        .iter()
        .chain(spec.init_containers.iter().flatten())
        .map(|c| c.name.as_str())
        .collect();
    let mut errs = Vec::new();
    for (i, c) in spec.ephemeral_containers.iter().flatten().enumerate() {
        let npath = child(&index(&child(path, "ephemeralContainers"), i), "name");
        if c.name.is_empty() {
            errs.push(FieldError::required(&npath, ""));
        } else {
            errs.extend(dns1123_label(&c.name, &npath));
        }
        if !names.insert(c.name.as_str()) {
            errs.push(FieldError::duplicate(&npath, c.name.as_str()));
        }
    }
    errs
}

/// upstream's `AccumulateUniqueHostPorts` over the regular containers.
fn host_port_conflicts(containers: &[Container], path: &str) -> Vec<FieldError> {
    let mut seen = BTreeSet::new();
    let mut errs = Vec::new();
    for (ci, c) in containers.iter().enumerate() {
        for (pi, p) in c.ports.iter().flatten().enumerate() {
            let Some(host_port) = p.host_port.filter(|h| *h != 0) else {
                continue;
            };
            let id = format!(
                "{}/{}/{}",
                p.protocol.as_deref().unwrap_or_default(),
                p.host_ip.as_deref().unwrap_or_default(),
                host_port
            );
            if !seen.insert(id.clone()) {
                let ppath = index(&child(&index(path, ci), "ports"), pi);
                errs.push(FieldError::duplicate(child(&ppath, "hostPort"), id));
            }
        }
    }
    errs
}

/// upstream's `ValidateTolerations`.
pub fn validate_tolerations(tolerations: &[Toleration], path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for (i, t) in tolerations.iter().enumerate() {
        let tpath = index(path, i);
        let k = t.key.as_deref().unwrap_or_default();
        let op = t.operator.as_deref().unwrap_or_default();
        let effect = t.effect.as_deref().unwrap_or_default();
        let value = t.value.as_deref().unwrap_or_default();
        if !k.is_empty() {
            errs.extend(validate_label_name(k, &child(&tpath, "key")));
        }
        if k.is_empty() && op != "Exists" {
            errs.push(FieldError::invalid(
                child(&tpath, "operator"),
                op,
                "operator must be Exists when `key` is empty, which means \"match all values and all keys\"",
            ));
        }
        if t.toleration_seconds.is_some() && effect != "NoExecute" {
            errs.push(FieldError::invalid(
                child(&tpath, "effect"),
                effect,
                "effect must be 'NoExecute' when `tolerationSeconds` is set",
            ));
        }
        match op {
            "Equal" | "" => {
                let msgs = is_valid_label_value(value);
                if !msgs.is_empty() {
                    errs.push(FieldError::invalid(child(&tpath, "operator"), value, msgs.join(";")));
                }
            }
            "Exists" => {
                if !value.is_empty() {
                    errs.push(FieldError::invalid(
                        child(&tpath, "operator"),
                        serde_json::to_value(t).unwrap_or_default(),
                        "value must be empty when `operator` is 'Exists'",
                    ));
                }
            }
            other => errs.push(FieldError::not_supported(
                child(&tpath, "operator"),
                other,
                &["Equal", "Exists"],
            )),
        }
        errs.extend(optional_enum(
            t.effect.as_deref(),
            &child(&tpath, "effect"),
            &["NoSchedule", "PreferNoSchedule", "NoExecute"],
        ));
    }
    errs
}

fn validate_id(value: Option<i64>, path: &str) -> Vec<FieldError> {
    match value {
        Some(v) if !(0..=MAX_UNIX_ID).contains(&v) => {
            vec![FieldError::invalid(path, v, inclusive_range_error(0, MAX_UNIX_ID))]
        }
        _ => Vec::new(),
    }
}

fn validate_pod_security_context(sc: Option<&PodSecurityContext>, path: &str) -> Vec<FieldError> {
    let Some(sc) = sc else { return Vec::new() };
    let mut errs = validate_id(sc.run_as_user, &child(path, "runAsUser"));
    errs.extend(validate_id(sc.run_as_group, &child(path, "runAsGroup")));
    errs.extend(validate_id(sc.fs_group, &child(path, "fsGroup")));
    for (i, g) in sc.supplemental_groups.iter().flatten().enumerate() {
        errs.extend(validate_id(Some(*g), &index(&child(path, "supplementalGroups"), i)));
    }
    errs.extend(optional_enum(
        sc.fs_group_change_policy.as_deref(),
        &child(path, "fsGroupChangePolicy"),
        &["OnRootMismatch", "Always"],
    ));
    errs.extend(optional_enum(
        sc.supplemental_groups_policy.as_deref(),
        &child(path, "supplementalGroupsPolicy"),
        &["Merge", "Strict"],
    ));
    if let Some(profile) = &sc.seccomp_profile {
        errs.extend(required_enum(
            Some(profile.type_.as_str()),
            &child(&child(path, "seccompProfile"), "type"),
            &["Localhost", "RuntimeDefault", "Unconfined"],
        ));
    }
    errs
}

fn validate_security_context(c: &Container, path: &str) -> Vec<FieldError> {
    let Some(sc): Option<&SecurityContext> = c.security_context.as_ref() else {
        return Vec::new();
    };
    let mut errs = validate_id(sc.run_as_user, &child(path, "runAsUser"));
    errs.extend(validate_id(sc.run_as_group, &child(path, "runAsGroup")));
    if sc.privileged == Some(true) && sc.allow_privilege_escalation == Some(false) {
        errs.push(FieldError::invalid(
            path,
            serde_json::to_value(sc).unwrap_or_default(),
            "cannot set `allowPrivilegeEscalation` to false and `privileged` to true",
        ));
    }
    errs.extend(optional_enum(
        sc.proc_mount.as_deref(),
        &child(path, "procMount"),
        &["Default", "Unmasked"],
    ));
    errs
}

/// upstream's `validatePodDNSConfig` (the common rules).
fn validate_dns_config(config: Option<&PodDNSConfig>, policy: Option<&str>, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let none = policy == Some("None");
    let Some(config) = config else {
        if none {
            errs.push(FieldError::required(
                path,
                "must provide `dnsConfig` when `dnsPolicy` is None",
            ));
        }
        return errs;
    };
    let nameservers = config.nameservers.as_deref().unwrap_or_default();
    if none && nameservers.is_empty() {
        errs.push(FieldError::required(
            child(path, "nameservers"),
            "must provide at least one DNS nameserver when `dnsPolicy` is None",
        ));
    }
    if nameservers.len() > 3 {
        errs.push(FieldError::invalid(
            child(path, "nameservers"),
            serde_json::to_value(nameservers).unwrap_or_default(),
            "must not have more than 3 nameservers",
        ));
    }
    for (i, ns) in nameservers.iter().enumerate() {
        errs.extend(ip_address(ns, &index(&child(path, "nameservers"), i)));
    }
    let searches = config.searches.as_deref().unwrap_or_default();
    if searches.len() > 32 {
        errs.push(FieldError::invalid(
            child(path, "searches"),
            serde_json::to_value(searches).unwrap_or_default(),
            "must not have more than 32 search paths",
        ));
    }
    for (i, s) in searches.iter().enumerate() {
        // A trailing dot is allowed, and "." alone stands for the root.
        let trimmed = s.strip_suffix('.').unwrap_or(s);
        if s != "." {
            errs.extend(invalid_each(
                &index(&child(path, "searches"), i),
                trimmed,
                crate::validation::names::is_dns1123_subdomain(trimmed),
            ));
        }
    }
    for (i, o) in config.options.iter().flatten().enumerate() {
        if o.name.as_deref().unwrap_or_default().is_empty() {
            errs.push(FieldError::required(
                child(&index(&child(path, "options"), i), "name"),
                "Option.Name must not be empty",
            ));
        }
    }
    errs
}

fn validate_topology_spread(c: &TopologySpreadConstraint, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if c.max_skew <= 0 {
        errs.push(FieldError::invalid(
            child(path, "maxSkew"),
            c.max_skew,
            "must be greater than zero",
        ));
    }
    if c.topology_key.is_empty() {
        errs.push(FieldError::required(child(path, "topologyKey"), "can not be empty"));
    } else {
        errs.extend(validate_label_name(&c.topology_key, &child(path, "topologyKey")));
    }
    errs.extend(required_enum(
        Some(c.when_unsatisfiable.as_str()),
        &child(path, "whenUnsatisfiable"),
        &["DoNotSchedule", "ScheduleAnyway"],
    ));
    if let Some(m) = c.min_domains.filter(|m| *m <= 0) {
        errs.push(FieldError::invalid(
            child(path, "minDomains"),
            m,
            "must be greater than 0",
        ));
    }
    errs
}
