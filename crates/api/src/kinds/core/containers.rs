//! Container validation, as upstream's `validateContainers` / `validateInitContainers` and the
//! helpers they share: names, image, ports, env, volume mounts, resources, probes, hooks.

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::{
    Container, ContainerPort, EnvFromSource, EnvVar, LifecycleHandler, Probe, ResourceRequirements, VolumeMount,
};

use crate::field::{FieldError, child, index, key};
use crate::validation::common::{
    dns1123_label, dns1123_subdomain, invalid_each, nonnegative, nonnegative_quantity, port_num_or_name, required_enum,
};
use crate::validation::meta::validate_qualified_name;
use crate::validation::names::{
    is_config_map_key, is_http_header_name, is_qualified_name, is_relaxed_env_var_name, is_valid_port_name,
    is_valid_port_num,
};

/// Resources a container may request without a domain prefix.
const STANDARD_CONTAINER_RESOURCES: &[&str] = &["cpu", "memory", "ephemeral-storage"];

/// Downward API fields an env var may reference.
const ENV_FIELD_PATHS: &[&str] = &[
    "metadata.name",
    "metadata.namespace",
    "metadata.uid",
    "spec.nodeName",
    "spec.serviceAccountName",
    "status.hostIP",
    "status.hostIPs",
    "status.podIP",
    "status.podIPs",
];

/// Regular containers: at least one, each valid, names unique.
pub(super) fn validate_containers(containers: &[Container], volumes: &BTreeSet<String>, path: &str) -> Vec<FieldError> {
    if containers.is_empty() {
        return vec![FieldError::required(path, "")];
    }
    let mut errs = Vec::new();
    let mut names = BTreeSet::new();
    for (i, c) in containers.iter().enumerate() {
        let cpath = index(path, i);
        errs.extend(validate_container_common(c, volumes, &cpath));
        if !names.insert(c.name.as_str()) {
            errs.push(FieldError::duplicate(child(&cpath, "name"), c.name.as_str()));
        }
        errs.extend(validate_probe(
            c.liveness_probe.as_ref(),
            &child(&cpath, "livenessProbe"),
            true,
        ));
        errs.extend(validate_probe(
            c.readiness_probe.as_ref(),
            &child(&cpath, "readinessProbe"),
            false,
        ));
        errs.extend(validate_probe(
            c.startup_probe.as_ref(),
            &child(&cpath, "startupProbe"),
            true,
        ));
        if let Some(p) = c
            .readiness_probe
            .as_ref()
            .and_then(|p| p.termination_grace_period_seconds)
        {
            errs.push(FieldError::invalid(
                child(&child(&cpath, "readinessProbe"), "terminationGracePeriodSeconds"),
                p,
                "must not be set for readinessProbes",
            ));
        }
        errs.extend(validate_lifecycle(c, &cpath));
    }
    errs
}

/// Init containers: names unique across init and regular containers; probes and hooks only for
/// sidecars (`restartPolicy: Always`).
pub(super) fn validate_init_containers(
    init: &[Container],
    regular: &[Container],
    volumes: &BTreeSet<String>,
    path: &str,
) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let mut names: BTreeSet<&str> = regular.iter().map(|c| c.name.as_str()).collect();
    for (i, c) in init.iter().enumerate() {
        let cpath = index(path, i);
        errs.extend(validate_container_common(c, volumes, &cpath));
        let sidecar = c.restart_policy.as_deref() == Some("Always");
        if let Some(policy) = c.restart_policy.as_deref()
            && policy != "Always"
        {
            errs.push(FieldError::not_supported(
                child(&cpath, "restartPolicy"),
                policy,
                &["Always"],
            ));
        }
        if names.contains(c.name.as_str()) {
            errs.push(FieldError::duplicate(child(&cpath, "name"), c.name.as_str()));
        } else if !c.name.is_empty() {
            names.insert(c.name.as_str());
        }
        if sidecar {
            errs.extend(validate_probe(
                c.liveness_probe.as_ref(),
                &child(&cpath, "livenessProbe"),
                true,
            ));
            errs.extend(validate_probe(
                c.readiness_probe.as_ref(),
                &child(&cpath, "readinessProbe"),
                false,
            ));
            errs.extend(validate_probe(
                c.startup_probe.as_ref(),
                &child(&cpath, "startupProbe"),
                true,
            ));
            errs.extend(validate_lifecycle(c, &cpath));
        } else {
            let msg = "may not be set for init containers without restartPolicy=Always";
            if c.lifecycle.is_some() {
                errs.push(FieldError::forbidden(child(&cpath, "lifecycle"), msg));
            }
            for (probe, name) in [
                (&c.liveness_probe, "livenessProbe"),
                (&c.readiness_probe, "readinessProbe"),
                (&c.startup_probe, "startupProbe"),
            ] {
                if probe.is_some() {
                    errs.push(FieldError::forbidden(child(&cpath, name), msg));
                }
            }
        }
    }
    errs
}

/// upstream's `validateContainerCommon`.
fn validate_container_common(c: &Container, volumes: &BTreeSet<String>, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let name_path = child(path, "name");
    if c.name.is_empty() {
        errs.push(FieldError::required(&name_path, ""));
    } else {
        errs.extend(dns1123_label(&c.name, &name_path));
    }
    if c.image.as_deref().unwrap_or_default().is_empty() {
        errs.push(FieldError::required(child(path, "image"), ""));
    }
    match c.termination_message_policy.as_deref().unwrap_or_default() {
        "File" | "FallbackToLogsOnError" => {}
        "" => errs.push(FieldError::required(
            child(path, "terminationMessagePolicy"),
            "must be 'File' or 'FallbackToLogsOnError'",
        )),
        other => errs.push(FieldError::invalid(
            child(path, "terminationMessagePolicy"),
            other,
            "must be 'File' or 'FallbackToLogsOnError'",
        )),
    }
    errs.extend(validate_ports(
        c.ports.as_deref().unwrap_or_default(),
        &child(path, "ports"),
    ));
    errs.extend(validate_env(c.env.as_deref().unwrap_or_default(), &child(path, "env")));
    errs.extend(validate_env_from(
        c.env_from.as_deref().unwrap_or_default(),
        &child(path, "envFrom"),
    ));
    errs.extend(validate_volume_mounts(
        c.volume_mounts.as_deref().unwrap_or_default(),
        volumes,
        &child(path, "volumeMounts"),
    ));
    errs.extend(required_enum(
        c.image_pull_policy.as_deref(),
        &child(path, "imagePullPolicy"),
        &["Always", "IfNotPresent", "Never"],
    ));
    if let Some(r) = &c.resources {
        errs.extend(validate_resources(r, &child(path, "resources")));
    }
    errs
}

/// upstream's `validateContainerPorts`.
pub(super) fn validate_ports(ports: &[ContainerPort], path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let mut names = BTreeSet::new();
    for (i, p) in ports.iter().enumerate() {
        let ppath = index(path, i);
        if let Some(name) = p.name.as_deref().filter(|n| !n.is_empty()) {
            let msgs = is_valid_port_name(name);
            if !msgs.is_empty() {
                errs.extend(invalid_each(&child(&ppath, "name"), name, msgs));
            } else if !names.insert(name) {
                errs.push(FieldError::duplicate(child(&ppath, "name"), name));
            }
        }
        if p.container_port == 0 {
            errs.push(FieldError::required(child(&ppath, "containerPort"), ""));
        } else {
            for m in is_valid_port_num(i64::from(p.container_port)) {
                errs.push(FieldError::invalid(child(&ppath, "containerPort"), p.container_port, m));
            }
        }
        if let Some(host_port) = p.host_port.filter(|h| *h != 0) {
            for m in is_valid_port_num(i64::from(host_port)) {
                errs.push(FieldError::invalid(child(&ppath, "hostPort"), host_port, m));
            }
        }
        errs.extend(required_enum(
            p.protocol.as_deref(),
            &child(&ppath, "protocol"),
            &["SCTP", "TCP", "UDP"],
        ));
    }
    errs
}

/// upstream's `ValidateEnv` (with relaxed names, GA since 1.34).
fn validate_env(vars: &[EnvVar], path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for (i, e) in vars.iter().enumerate() {
        let epath = index(path, i);
        let name_path = child(&epath, "name");
        if e.name.is_empty() {
            errs.push(FieldError::required(&name_path, ""));
        }
        errs.extend(invalid_each(&name_path, &e.name, is_relaxed_env_var_name(&e.name)));
        let Some(from) = &e.value_from else { continue };
        let fpath = child(&epath, "valueFrom");
        let mut sources = 0;
        if let Some(f) = &from.field_ref {
            sources += 1;
            let rpath = child(&fpath, "fieldRef");
            match (f.api_version.as_deref().unwrap_or_default(), f.field_path.as_str()) {
                ("", _) => errs.push(FieldError::required(child(&rpath, "apiVersion"), "")),
                (_, "") => errs.push(FieldError::required(child(&rpath, "fieldPath"), "")),
                ("v1", fp) => errs.extend(validate_env_field_path(fp, &rpath)),
                (v, fp) => errs.push(FieldError::invalid(
                    child(&rpath, "fieldPath"),
                    fp,
                    format!("error converting fieldPath: unsupported pod version: {v}"),
                )),
            }
        }
        if let Some(r) = &from.resource_field_ref {
            sources += 1;
            let rpath = child(&fpath, "resourceFieldRef");
            const RESOURCES: &[&str] = &[
                "limits.cpu",
                "limits.ephemeral-storage",
                "limits.memory",
                "requests.cpu",
                "requests.ephemeral-storage",
                "requests.memory",
            ];
            if r.resource.is_empty() {
                errs.push(FieldError::required(child(&rpath, "resource"), ""));
            } else if !RESOURCES.contains(&r.resource.as_str()) && !r.resource.contains("hugepages-") {
                errs.push(FieldError::not_supported(
                    child(&rpath, "resource"),
                    r.resource.as_str(),
                    RESOURCES,
                ));
            }
        }
        if let Some(r) = &from.config_map_key_ref {
            sources += 1;
            errs.extend(key_selector(&r.name, &r.key, &child(&fpath, "configMapKeyRef")));
        }
        if let Some(r) = &from.secret_key_ref {
            sources += 1;
            errs.extend(key_selector(&r.name, &r.key, &child(&fpath, "secretKeyRef")));
        }
        if from.file_key_ref.is_some() {
            sources += 1;
        }
        if sources == 0 {
            errs.push(FieldError::invalid(
                &fpath,
                "",
                "must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`",
            ));
        } else if !e.value.as_deref().unwrap_or_default().is_empty() {
            errs.push(FieldError::invalid(
                &fpath,
                "",
                "may not be specified when `value` is not empty",
            ));
        } else if sources > 1 {
            errs.push(FieldError::invalid(
                &fpath,
                "",
                "may not have more than one field specified at a time",
            ));
        }
    }
    errs
}

fn validate_env_field_path(field_path: &str, path: &str) -> Vec<FieldError> {
    // `metadata.labels['key']` and `metadata.annotations['key']` select one entry.
    if let Some((base, rest)) = field_path.split_once("['")
        && let Some(subscript) = rest.strip_suffix("']")
    {
        return match base {
            "metadata.annotations" => validate_qualified_name(&subscript.to_lowercase(), path),
            "metadata.labels" => validate_qualified_name(subscript, path),
            _ => vec![FieldError::invalid(path, base, "does not support subscript")],
        };
    }
    if ENV_FIELD_PATHS.contains(&field_path) {
        Vec::new()
    } else {
        vec![FieldError::not_supported(
            child(path, "fieldPath"),
            field_path,
            ENV_FIELD_PATHS,
        )]
    }
}

/// upstream's `validateConfigMapKeySelector` / `validateSecretKeySelector`.
fn key_selector(name: &str, k: &str, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if name.is_empty() {
        errs.push(FieldError::required(child(path, "name"), ""));
    } else {
        errs.extend(dns1123_subdomain(name, &child(path, "name")));
    }
    if k.is_empty() {
        errs.push(FieldError::required(child(path, "key"), ""));
    } else {
        errs.extend(invalid_each(&child(path, "key"), k, is_config_map_key(k)));
    }
    errs
}

/// upstream's `ValidateEnvFrom`.
fn validate_env_from(sources: &[EnvFromSource], path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for (i, s) in sources.iter().enumerate() {
        let spath = index(path, i);
        if let Some(prefix) = s.prefix.as_deref().filter(|p| !p.is_empty()) {
            errs.extend(invalid_each(
                &child(&spath, "prefix"),
                prefix,
                is_relaxed_env_var_name(prefix),
            ));
        }
        let mut count = 0;
        if let Some(c) = &s.config_map_ref {
            count += 1;
            errs.extend(dns1123_subdomain(
                &c.name,
                &child(&child(&spath, "configMapRef"), "name"),
            ));
        }
        if let Some(c) = &s.secret_ref {
            count += 1;
            errs.extend(dns1123_subdomain(&c.name, &child(&child(&spath, "secretRef"), "name")));
        }
        if count == 0 {
            errs.push(FieldError::invalid(
                &spath,
                "",
                "must specify one of: `configMapRef` or `secretRef`",
            ));
        } else if count > 1 {
            errs.push(FieldError::invalid(
                &spath,
                "",
                "may not have more than one field specified at a time",
            ));
        }
    }
    errs
}

/// upstream's `ValidateVolumeMounts`.
fn validate_volume_mounts(mounts: &[VolumeMount], volumes: &BTreeSet<String>, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let mut mount_points = BTreeSet::new();
    for (i, m) in mounts.iter().enumerate() {
        let mpath = index(path, i);
        if m.name.is_empty() {
            errs.push(FieldError::required(child(&mpath, "name"), ""));
        }
        if !volumes.contains(&m.name) {
            errs.push(FieldError::not_found(child(&mpath, "name"), m.name.as_str()));
        }
        if m.mount_path.is_empty() {
            errs.push(FieldError::required(child(&mpath, "mountPath"), ""));
        }
        if !mount_points.insert(m.mount_path.as_str()) {
            errs.push(FieldError::invalid(
                child(&mpath, "mountPath"),
                m.mount_path.as_str(),
                "must be unique",
            ));
        }
        if let Some(sub) = m.sub_path.as_deref().filter(|s| !s.is_empty()) {
            errs.extend(super::volumes::local_non_reserved_path(sub, &child(path, "subPath")));
        }
        if m.sub_path.as_deref().is_some_and(|s| !s.is_empty())
            && m.sub_path_expr.as_deref().is_some_and(|s| !s.is_empty())
        {
            errs.push(FieldError::invalid(
                child(&mpath, "subPathExpr"),
                m.sub_path_expr.as_deref().unwrap_or_default(),
                "subPathExpr and subPath are mutually exclusive",
            ));
        }
        if let Some(p) = m.mount_propagation.as_deref() {
            errs.extend(required_enum(
                Some(p),
                &child(&mpath, "mountPropagation"),
                &["Bidirectional", "HostToContainer", "None"],
            ));
        }
    }
    errs
}

/// upstream's `ValidateContainerResourceRequirements`: names, quantities, requests ≤ limits.
pub(super) fn validate_resources(r: &ResourceRequirements, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let lim_path = child(path, "limits");
    let req_path = child(path, "requests");
    let mut limits = std::collections::BTreeMap::new();
    for (name, q) in r.limits.iter().flatten() {
        let p = key(&lim_path, name);
        errs.extend(validate_container_resource_name(name, &p));
        let (parsed, e) = nonnegative_quantity(q, &p);
        errs.extend(e);
        errs.extend(integer_if_extended(name, parsed.as_ref(), &q.0, &p));
        if let Some(parsed) = parsed {
            limits.insert(name.as_str(), (parsed, q.0.as_str()));
        }
    }
    for (name, q) in r.requests.iter().flatten() {
        let p = key(&req_path, name);
        errs.extend(validate_container_resource_name(name, &p));
        let (parsed, e) = nonnegative_quantity(q, &p);
        errs.extend(e);
        errs.extend(integer_if_extended(name, parsed.as_ref(), &q.0, &p));
        let overcommit = STANDARD_CONTAINER_RESOURCES.contains(&name.as_str());
        match (parsed, limits.get(name.as_str())) {
            (Some(req), Some((lim, lim_text))) => {
                if !overcommit && req != *lim {
                    errs.push(FieldError::invalid(
                        &req_path,
                        q.0.as_str(),
                        format!("must be equal to {name} limit of {lim_text}"),
                    ));
                } else if req > *lim {
                    errs.push(FieldError::invalid(
                        &req_path,
                        q.0.as_str(),
                        format!("must be less than or equal to {name} limit of {lim_text}"),
                    ));
                }
            }
            (_, None) if !overcommit && !r.limits.as_ref().is_some_and(|l| l.contains_key(name)) => {
                errs.push(FieldError::required(
                    &lim_path,
                    "Limit must be set for non overcommitable resources",
                ));
            }
            _ => {}
        }
    }
    errs
}

fn validate_container_resource_name(name: &str, path: &str) -> Vec<FieldError> {
    let mut errs = invalid_each(path, name, is_qualified_name(name));
    if !errs.is_empty() {
        return errs;
    }
    if !name.contains('/') {
        if !STANDARD_CONTAINER_RESOURCES.contains(&name) && !name.starts_with("hugepages-") {
            errs.push(FieldError::invalid(
                path,
                name,
                "must be a standard resource for containers",
            ));
        }
    } else if !name.contains("kubernetes.io/") && name.starts_with("requests.") {
        errs.push(FieldError::invalid(
            path,
            name,
            "doesn't follow extended resource name standard",
        ));
    }
    errs
}

/// Extended resources (domain-prefixed, outside kubernetes.io) are counted in whole units.
fn integer_if_extended(
    name: &str,
    q: Option<&crate::validation::quantity::Quantity>,
    text: &str,
    path: &str,
) -> Vec<FieldError> {
    let extended = name.contains('/') && !name.contains("kubernetes.io/");
    match q.and_then(|q| q.milli_value()) {
        Some(m) if extended && m % 1000 != 0 => vec![FieldError::invalid(path, text, "must be an integer")],
        _ => Vec::new(),
    }
}

/// upstream's `validateProbe` (+ the liveness/startup `successThreshold` rule).
fn validate_probe(probe: Option<&Probe>, path: &str, success_must_be_one: bool) -> Vec<FieldError> {
    let Some(p) = probe else { return Vec::new() };
    let mut errs = validate_handler(
        p.exec.is_some(),
        p.http_get.as_ref(),
        p.tcp_socket.as_ref().map(|t| &t.port),
        p.grpc.as_ref(),
        path,
        false,
    );
    for (v, name) in [
        (p.initial_delay_seconds, "initialDelaySeconds"),
        (p.timeout_seconds, "timeoutSeconds"),
        (p.period_seconds, "periodSeconds"),
        (p.success_threshold, "successThreshold"),
        (p.failure_threshold, "failureThreshold"),
    ] {
        errs.extend(nonnegative(v.map(i64::from), &child(path, name)));
    }
    if let Some(t) = p.termination_grace_period_seconds.filter(|t| *t <= 0) {
        errs.push(FieldError::invalid(
            child(path, "terminationGracePeriodSeconds"),
            t,
            "must be greater than 0",
        ));
    }
    if success_must_be_one && let Some(s) = p.success_threshold.filter(|s| *s != 1) {
        errs.push(FieldError::invalid(child(path, "successThreshold"), s, "must be 1"));
    }
    errs
}

fn validate_lifecycle(c: &Container, path: &str) -> Vec<FieldError> {
    let Some(l) = &c.lifecycle else { return Vec::new() };
    let lpath = child(path, "lifecycle");
    let mut errs = Vec::new();
    for (hook, name) in [(&l.post_start, "postStart"), (&l.pre_stop, "preStop")] {
        if let Some(h) = hook {
            errs.extend(validate_lifecycle_handler(h, &child(&lpath, name)));
        }
    }
    errs
}

fn validate_lifecycle_handler(h: &LifecycleHandler, path: &str) -> Vec<FieldError> {
    let mut errs = validate_handler(
        h.exec.is_some(),
        h.http_get.as_ref(),
        h.tcp_socket.as_ref().map(|t| &t.port),
        None,
        path,
        h.sleep.is_some(),
    );
    if let Some(s) = &h.sleep
        && s.seconds < 0
    {
        errs.push(FieldError::invalid(
            child(&child(path, "sleep"), "seconds"),
            s.seconds,
            "must be non-negative integer",
        ));
    }
    if let Some(exec) = &h.exec
        && exec.command.as_deref().unwrap_or_default().is_empty()
    {
        errs.push(FieldError::required(child(&child(path, "exec"), "command"), ""));
    }
    errs
}

/// upstream's `validateHandler`: exactly one action, each well-formed.
fn validate_handler(
    exec: bool,
    http: Option<&k8s_openapi::api::core::v1::HTTPGetAction>,
    tcp_port: Option<&k8s_openapi::apimachinery::pkg::util::intstr::IntOrString>,
    grpc: Option<&k8s_openapi::api::core::v1::GRPCAction>,
    path: &str,
    sleep: bool,
) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let mut count = 0;
    for (present, name) in [
        (exec, "exec"),
        (http.is_some(), "httpGet"),
        (tcp_port.is_some(), "tcpSocket"),
        (grpc.is_some(), "grpc"),
        (sleep, "sleep"),
    ] {
        if present {
            count += 1;
            if count > 1 {
                errs.push(FieldError::forbidden(
                    child(path, name),
                    "may not specify more than 1 handler type",
                ));
            }
        }
    }
    if count == 0 {
        errs.push(FieldError::required(path, "must specify a handler type"));
    }
    if let Some(h) = http {
        let hp = child(path, "httpGet");
        if h.path.as_deref().unwrap_or_default().is_empty() {
            errs.push(FieldError::required(child(&hp, "path"), ""));
        }
        errs.extend(port_num_or_name(&h.port, &child(&hp, "port")));
        match h.scheme.as_deref().unwrap_or_default() {
            "HTTP" | "HTTPS" => {}
            other => errs.push(FieldError::not_supported(
                child(&hp, "scheme"),
                other,
                &["HTTP", "HTTPS"],
            )),
        }
        for (i, header) in h.http_headers.iter().flatten().enumerate() {
            let p = child(&index(&child(&hp, "httpHeaders"), i), "name");
            errs.extend(invalid_each(&p, &header.name, is_http_header_name(&header.name)));
        }
    }
    if let Some(port) = tcp_port {
        errs.extend(port_num_or_name(port, &child(&child(path, "tcpSocket"), "port")));
    }
    if let Some(grpc) = grpc {
        let gp = child(path, "grpc");
        for m in is_valid_port_num(i64::from(grpc.port)) {
            errs.push(FieldError::invalid(child(&gp, "port"), grpc.port, m));
        }
        if let Some(mode) = grpc.mode.as_deref().filter(|m| !["TLS", "Plaintext"].contains(m)) {
            errs.push(FieldError::not_supported(
                child(&gp, "mode"),
                mode,
                &["Plaintext", "TLS"],
            ));
        }
    }
    errs
}
