//! The Service kind: upstream's `SetDefaults_Service`, the IP-family defaults the service REST
//! storage applies in a single-stack IPv4 cluster, and `ValidateService` / `ValidateServiceUpdate`.

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::{ClientIPConfig, Service, ServicePort, ServiceSpec, SessionAffinityConfig};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::field::{FieldError, child, go_string_slice, index};
use crate::strategy::Operation;
use crate::validation::common::{dns1123_label, dns1123_subdomain, ip_address, port_num_or_name, required_enum};
use crate::validation::meta::{FIELD_IMMUTABLE, validate_labels, validate_qualified_name};
use crate::validation::names::{is_valid_cidr, is_valid_port_num};

/// upstream's `DefaultClientIPServiceAffinitySeconds` (3 hours).
const DEFAULT_CLIENT_IP_TIMEOUT: i32 = 10800;

fn externally_accessible(spec: &ServiceSpec) -> bool {
    match spec.type_.as_deref() {
        Some("LoadBalancer" | "NodePort") => true,
        Some("ClusterIP") => spec.external_ips.as_ref().is_some_and(|ips| !ips.is_empty()),
        _ => false,
    }
}

pub(crate) fn default_service(svc: &mut Service) {
    let spec = svc.spec.get_or_insert_with(Default::default);
    if spec.session_affinity.as_deref().is_none_or(str::is_empty) {
        spec.session_affinity = Some("None".into());
    }
    match spec.session_affinity.as_deref() {
        Some("None") => spec.session_affinity_config = None,
        Some("ClientIP") => {
            let has_timeout = spec
                .session_affinity_config
                .as_ref()
                .and_then(|c| c.client_ip.as_ref())
                .is_some_and(|c| c.timeout_seconds.is_some());
            if !has_timeout {
                spec.session_affinity_config = Some(SessionAffinityConfig {
                    client_ip: Some(ClientIPConfig {
                        timeout_seconds: Some(DEFAULT_CLIENT_IP_TIMEOUT),
                    }),
                });
            }
        }
        _ => {}
    }
    if spec.type_.as_deref().is_none_or(str::is_empty) {
        spec.type_ = Some("ClusterIP".into());
    }
    for p in spec.ports.iter_mut().flatten() {
        if p.protocol.as_deref().is_none_or(str::is_empty) {
            p.protocol = Some("TCP".into());
        }
        let unset = match &p.target_port {
            None => true,
            Some(IntOrString::Int(0)) => true,
            Some(IntOrString::String(s)) => s.is_empty(),
            Some(IntOrString::Int(_)) => false,
        };
        if unset {
            p.target_port = Some(IntOrString::Int(p.port));
        }
    }
    if externally_accessible(spec) && spec.external_traffic_policy.as_deref().is_none_or(str::is_empty) {
        spec.external_traffic_policy = Some("Cluster".into());
    }
    let ty = spec.type_.as_deref().unwrap_or_default().to_string();
    if spec.internal_traffic_policy.is_none() && matches!(ty.as_str(), "NodePort" | "LoadBalancer" | "ClusterIP") {
        spec.internal_traffic_policy = Some("Cluster".into());
    }
    if ty == "LoadBalancer" && spec.allocate_load_balancer_node_ports.is_none() {
        spec.allocate_load_balancer_node_ports = Some(true);
    }
    if ty != "ExternalName" {
        // The REST storage keeps clusterIP and clusterIPs in step, and in a single-stack IPv4
        // cluster every service with a cluster IP (or headless) is SingleStack IPv4.
        if let Some(ip) = spec.cluster_ip.as_deref().filter(|ip| !ip.is_empty())
            && spec.cluster_ips.as_ref().is_none_or(Vec::is_empty)
        {
            spec.cluster_ips = Some(vec![ip.to_string()]);
        }
        if spec.cluster_ip.as_deref().is_none_or(str::is_empty)
            && let Some(first) = spec.cluster_ips.as_ref().and_then(|ips| ips.first())
        {
            spec.cluster_ip = Some(first.clone());
        }
        if spec.ip_family_policy.as_deref().is_none_or(str::is_empty) {
            spec.ip_family_policy = Some("SingleStack".into());
        }
        if spec.ip_families.as_ref().is_none_or(Vec::is_empty) {
            spec.ip_families = Some(vec!["IPv4".into()]);
        }
    }
}

fn is_headless(spec: &ServiceSpec) -> bool {
    spec.type_.as_deref() == Some("ClusterIP") && spec.cluster_ips.as_deref() == Some(&["None".to_string()][..])
}

pub(crate) fn validate_service(svc: &Service, old: Option<&Service>, op: Operation) -> Vec<FieldError> {
    let default_spec = ServiceSpec::default();
    let spec = svc.spec.as_ref().unwrap_or(&default_spec);
    let mut errs = Vec::new();
    if let (Some(old), Operation::Update | Operation::UpdateStatus) = (old, op) {
        errs.extend(validate_cluster_ips_update(
            spec,
            old.spec.as_ref().unwrap_or(&default_spec),
        ));
    }
    errs.extend(validate_spec(spec));
    errs
}

fn validate_spec(spec: &ServiceSpec) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let ty = spec.type_.as_deref().unwrap_or_default();
    let ports = spec.ports.as_deref().unwrap_or_default();
    let cluster_ips = spec.cluster_ips.as_deref().unwrap_or_default();
    let headless = is_headless(spec);
    if ports.is_empty() && !headless && ty != "ExternalName" {
        errs.push(FieldError::required("spec.ports", ""));
    }
    match ty {
        "LoadBalancer" | "NodePort" if cluster_ips.first().map(String::as_str) == Some("None") => {
            errs.push(FieldError::invalid(
                "spec.clusterIPs[0]",
                "None",
                format!("may not be set to 'None' for {ty} services"),
            ));
        }
        "ExternalName" => {
            if !cluster_ips.is_empty() {
                errs.push(FieldError::forbidden(
                    "spec.clusterIPs",
                    "may not be set for ExternalName services",
                ));
            }
            if spec.ip_families.as_ref().is_some_and(|f| !f.is_empty()) {
                errs.push(FieldError::forbidden(
                    "spec.ipFamilies",
                    "may not be set for ExternalName services",
                ));
            }
            if spec.ip_family_policy.is_some() {
                errs.push(FieldError::forbidden(
                    "spec.ipFamilyPolicy",
                    "may not be set for ExternalName services",
                ));
            }
            let name = spec.external_name.as_deref().unwrap_or_default();
            let cname = name.strip_suffix('.').unwrap_or(name);
            if cname.is_empty() {
                errs.push(FieldError::required("spec.externalName", ""));
            } else {
                errs.extend(dns1123_subdomain(cname, "spec.externalName"));
            }
        }
        _ => {}
    }
    let mut names = BTreeSet::new();
    for (i, p) in ports.iter().enumerate() {
        errs.extend(validate_port(p, ports.len() > 1, &mut names, &index("spec.ports", i)));
    }
    errs.extend(validate_labels(spec.selector.as_ref(), "spec.selector"));
    errs.extend(required_enum(
        spec.session_affinity.as_deref(),
        "spec.sessionAffinity",
        &["ClientIP", "None"],
    ));
    match spec.session_affinity.as_deref() {
        Some("ClientIP") => {
            let timeout = spec
                .session_affinity_config
                .as_ref()
                .and_then(|c| c.client_ip.as_ref())
                .and_then(|c| c.timeout_seconds);
            match timeout {
                Some(t) if !(1..=86400).contains(&t) => errs.push(FieldError::invalid(
                    "spec.sessionAffinityConfig.clientIP.timeoutSeconds",
                    t,
                    "must be greater than 0 and less than 86400",
                )),
                _ => {}
            }
        }
        Some("None") if spec.session_affinity_config.is_some() => {
            errs.push(FieldError::forbidden(
                "spec.sessionAffinityConfig",
                "must not be set when session affinity is None",
            ));
        }
        _ => {}
    }
    errs.extend(validate_cluster_ips(spec));
    for (i, ip) in spec.external_ips.iter().flatten().enumerate() {
        errs.extend(ip_address(ip, &index("spec.externalIPs", i)));
    }
    errs.extend(required_enum(
        spec.type_.as_deref(),
        "spec.type",
        &["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"],
    ));
    let mut node_ports = BTreeSet::new();
    let mut port_keys = BTreeSet::new();
    for (i, p) in ports.iter().enumerate() {
        let ppath = index("spec.ports", i);
        let node_port = p.node_port.unwrap_or(0);
        if ty == "ClusterIP" && node_port != 0 {
            errs.push(FieldError::forbidden(
                child(&ppath, "nodePort"),
                "may not be used when `type` is 'ClusterIP'",
            ));
        }
        if node_port != 0 && !node_ports.insert((p.protocol.clone(), node_port)) {
            errs.push(FieldError::duplicate(child(&ppath, "nodePort"), node_port));
        }
        if !port_keys.insert((p.protocol.clone(), p.port)) {
            let key = serde_json::json!({"port": p.port, "protocol": p.protocol});
            errs.push(FieldError::duplicate(&ppath, key));
        }
    }
    for (i, range) in spec.load_balancer_source_ranges.iter().flatten().enumerate() {
        let msgs = is_valid_cidr(range.trim());
        if !msgs.is_empty() {
            errs.push(FieldError::invalid(
                index("spec.loadBalancerSourceRanges", i),
                range.as_str(),
                "must be a list of IP ranges. For example, 10.240.0.0/24,10.250.0.0/24 ",
            ));
        }
    }
    let external = externally_accessible(spec);
    match spec.external_traffic_policy.as_deref().unwrap_or_default() {
        "" if external => errs.push(FieldError::required("spec.externalTrafficPolicy", "")),
        "" => {}
        p if !external => errs.push(FieldError::invalid(
            "spec.externalTrafficPolicy",
            p,
            "may only be set for externally-accessible services",
        )),
        p if p != "Cluster" && p != "Local" => {
            errs.push(FieldError::not_supported(
                "spec.externalTrafficPolicy",
                p,
                &["Cluster", "Local"],
            ));
        }
        _ => {}
    }
    let needs_health_check = ty == "LoadBalancer" && spec.external_traffic_policy.as_deref() == Some("Local");
    if let Some(hc) = spec.health_check_node_port.filter(|p| *p != 0 && !needs_health_check) {
        errs.push(FieldError::invalid(
            "spec.healthCheckNodePort",
            hc,
            "may only be set when `type` is 'LoadBalancer' and `externalTrafficPolicy` is 'Local'",
        ));
    }
    match spec.internal_traffic_policy.as_deref() {
        None if matches!(ty, "NodePort" | "LoadBalancer" | "ClusterIP") => {
            errs.push(FieldError::required(
                "spec.internalTrafficPolicy",
                format!("must be specified when `type` is '{ty}'"),
            ));
        }
        Some(p) if p != "Cluster" && p != "Local" => {
            errs.push(FieldError::not_supported(
                "spec.internalTrafficPolicy",
                p,
                &["Cluster", "Local"],
            ));
        }
        _ => {}
    }
    errs
}

/// upstream's `validateServicePort`.
fn validate_port(p: &ServicePort, require_name: bool, names: &mut BTreeSet<String>, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let name = p.name.as_deref().unwrap_or_default();
    if require_name && name.is_empty() {
        errs.push(FieldError::required(child(path, "name"), ""));
    } else if !name.is_empty() {
        errs.extend(dns1123_label(name, &child(path, "name")));
        if !names.insert(name.to_string()) {
            errs.push(FieldError::duplicate(child(path, "name"), name));
        }
    }
    for m in is_valid_port_num(i64::from(p.port)) {
        errs.push(FieldError::invalid(child(path, "port"), p.port, m));
    }
    if let Some(np) = p.node_port.filter(|n| *n != 0) {
        for m in is_valid_port_num(i64::from(np)) {
            errs.push(FieldError::invalid(child(path, "nodePort"), np, m));
        }
    }
    errs.extend(required_enum(
        p.protocol.as_deref(),
        &child(path, "protocol"),
        &["SCTP", "TCP", "UDP"],
    ));
    if let Some(target) = &p.target_port {
        errs.extend(port_num_or_name(target, &child(path, "targetPort")));
    }
    if let Some(app) = &p.app_protocol {
        errs.extend(validate_qualified_name(app, &child(path, "appProtocol")));
    }
    errs
}

/// upstream's `ValidateServiceClusterIPsRelatedFields` (single-stack subset).
fn validate_cluster_ips(spec: &ServiceSpec) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let ips = spec.cluster_ips.as_deref().unwrap_or_default();
    let rendered = go_string_slice(ips);
    match spec.cluster_ip.as_deref().unwrap_or_default() {
        "" if !ips.is_empty() => errs.push(FieldError::invalid_rendered(
            "spec.clusterIPs",
            rendered.clone(),
            "must be empty when `clusterIP` is not specified",
        )),
        "" => {}
        ip => match ips.first() {
            None => errs.push(FieldError::required("spec.clusterIPs", "")),
            Some(first) if first != ip => {
                errs.push(FieldError::invalid_rendered(
                    "spec.clusterIPs",
                    rendered.clone(),
                    "first value must match `clusterIP`",
                ));
            }
            _ => {}
        },
    }
    let mut seen = BTreeSet::new();
    for (i, family) in spec.ip_families.iter().flatten().enumerate() {
        let p = index("spec.ipFamilies", i);
        if family != "IPv4" && family != "IPv6" {
            errs.push(FieldError::not_supported(&p, family.as_str(), &["IPv4", "IPv6"]));
        }
        if !seen.insert(family.as_str()) {
            errs.push(FieldError::duplicate(&p, family.as_str()));
        }
    }
    if let Some(policy) = spec.ip_family_policy.as_deref()
        && !matches!(policy, "PreferDualStack" | "RequireDualStack" | "SingleStack")
    {
        errs.push(FieldError::not_supported(
            "spec.ipFamilyPolicy",
            policy,
            &["PreferDualStack", "RequireDualStack", "SingleStack"],
        ));
    }
    for (i, ip) in ips.iter().enumerate() {
        if i == 0 && ip == "None" {
            if ips.len() > 1 {
                errs.push(FieldError::invalid_rendered(
                    "spec.clusterIPs",
                    rendered.clone(),
                    "'None' must be the first and only value",
                ));
            }
            continue;
        }
        errs.extend(ip_address(ip, &index("spec.clusterIPs", i)));
    }
    if ips.len() > 2 {
        errs.push(FieldError::invalid_rendered(
            "spec.clusterIPs",
            rendered,
            "may only hold up to 2 values",
        ));
    }
    errs
}

/// upstream's `validateUpgradeDowngradeClusterIPs`: allocated cluster IPs stay, unless the
/// service is or becomes an ExternalName.
fn validate_cluster_ips_update(new: &ServiceSpec, old: &ServiceSpec) -> Vec<FieldError> {
    if new.type_.as_deref() == Some("ExternalName") || old.type_.as_deref() == Some("ExternalName") {
        return Vec::new();
    }
    let new_ips = new.cluster_ips.as_deref().unwrap_or_default();
    let old_ips = old.cluster_ips.as_deref().unwrap_or_default();
    let rendered = go_string_slice(new_ips);
    let immutable =
        |i: usize| FieldError::invalid_rendered(index("spec.clusterIPs", i), rendered.clone(), FIELD_IMMUTABLE);
    if new_ips.len() == old_ips.len() {
        return old_ips
            .iter()
            .zip(new_ips)
            .enumerate()
            .filter(|(_, (o, n))| o != n)
            .map(|(i, _)| immutable(i))
            .collect();
    }
    match (old_ips.first(), new_ips.first()) {
        (Some(_), None) => vec![immutable(0)],
        (Some(o), Some(n)) if o != n => vec![immutable(0)],
        _ => Vec::new(),
    }
}
