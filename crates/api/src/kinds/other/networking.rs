//! networking.k8s.io/v1: Ingress and NetworkPolicy, as upstream's
//! `pkg/apis/networking/v1/defaults.go` and `pkg/apis/networking/validation`.

use k8s_openapi::api::networking::v1::{
    IPBlock, Ingress, IngressBackend, NetworkPolicy, NetworkPolicyPeer, NetworkPolicyPort,
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::field::{FieldError, child, index};
use crate::strategy::Operation;
use crate::validation::common::{dns1035_label, dns1123_subdomain, invalid_each, validate_label_selector};
use crate::validation::names::{
    DNS1123_SUBDOMAIN_MAX_LENGTH, is_dns1123_subdomain, is_valid_cidr, is_valid_port_name, is_valid_port_num,
    max_len_error, parse_ip, regex_error,
};

/// upstream's `IsWildcardDNS1123Subdomain`: `*.` then a subdomain.
fn is_wildcard_subdomain(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > DNS1123_SUBDOMAIN_MAX_LENGTH {
        errs.push(max_len_error(DNS1123_SUBDOMAIN_MAX_LENGTH));
    }
    let ok = value
        .strip_prefix("*.")
        .is_some_and(|rest| is_dns1123_subdomain(rest).is_empty());
    if !ok {
        errs.push(regex_error(
            "a wildcard DNS-1123 subdomain must start with '*.', followed by a valid DNS subdomain, which must consist of lower case alphanumeric characters, '-' or '.' and end with an alphanumeric character",
            "\\*\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*",
            &["*.example.com"],
        ));
    }
    errs
}

fn validate_host(host: &str, path: &str) -> Vec<FieldError> {
    if host.contains('*') {
        invalid_each(path, host, is_wildcard_subdomain(host))
    } else {
        dns1123_subdomain(host, path)
    }
}

pub(crate) fn validate_ingress(ing: &Ingress, _old: Option<&Ingress>, op: Operation) -> Vec<FieldError> {
    if op == Operation::UpdateStatus {
        return Vec::new();
    }
    let spec = ing.spec.clone().unwrap_or_default();
    let mut errs = Vec::new();
    let rules = spec.rules.as_deref().unwrap_or_default();
    if rules.is_empty() && spec.default_backend.is_none() {
        errs.push(FieldError::invalid(
            "spec",
            serde_json::to_value(rules).unwrap_or_default(),
            "either `defaultBackend` or `rules` must be specified",
        ));
    }
    if let Some(b) = &spec.default_backend {
        errs.extend(validate_backend(b, "spec.defaultBackend"));
    }
    for (i, rule) in rules.iter().enumerate() {
        let rp = index("spec.rules", i);
        if let Some(host) = rule.host.as_deref().filter(|h| !h.is_empty()) {
            if parse_ip(host).is_some() {
                errs.push(FieldError::invalid(
                    child(&rp, "host"),
                    host,
                    "must be a DNS name, not an IP address",
                ));
            }
            errs.extend(validate_host(host, &child(&rp, "host")));
        }
        if let Some(http) = &rule.http {
            let hp = child(&rp, "http");
            if http.paths.is_empty() {
                errs.push(FieldError::required(child(&hp, "paths"), ""));
            }
            for (j, p) in http.paths.iter().enumerate() {
                let pp = index(&child(&hp, "paths"), j);
                let path = p.path.as_deref().unwrap_or_default();
                match p.path_type.as_str() {
                    "Exact" | "Prefix" => {
                        if !path.starts_with('/') {
                            errs.push(FieldError::invalid(
                                child(&pp, "path"),
                                path,
                                "must be an absolute path",
                            ));
                        }
                        for seq in ["//", "/./", "/../", "%2f", "%2F"] {
                            if path.contains(seq) {
                                errs.push(FieldError::invalid(
                                    child(&pp, "path"),
                                    path,
                                    format!("must not contain '{seq}'"),
                                ));
                            }
                        }
                        for suffix in ["/..", "/."] {
                            if path.ends_with(suffix) {
                                errs.push(FieldError::invalid(
                                    child(&pp, "path"),
                                    path,
                                    format!("cannot end with '{suffix}'"),
                                ));
                            }
                        }
                    }
                    "ImplementationSpecific" => {
                        if !path.is_empty() && !path.starts_with('/') {
                            errs.push(FieldError::invalid(
                                child(&pp, "path"),
                                path,
                                "must be an absolute path",
                            ));
                        }
                    }
                    "" => {
                        errs.push(FieldError::required(
                            child(&pp, "pathType"),
                            "pathType must be specified",
                        ));
                        continue;
                    }
                    other => errs.push(FieldError::not_supported(
                        child(&pp, "pathType"),
                        other,
                        &["Exact", "ImplementationSpecific", "Prefix"],
                    )),
                }
                errs.extend(validate_backend(&p.backend, &child(&pp, "backend")));
            }
        }
    }
    for (i, tls) in spec.tls.iter().flatten().enumerate() {
        let tp = index("spec.tls", i);
        for (j, host) in tls.hosts.iter().flatten().enumerate() {
            errs.extend(validate_host(host, &index(&child(&tp, "hosts"), j)));
        }
        if let Some(secret) = tls.secret_name.as_deref().filter(|s| !s.is_empty()) {
            errs.extend(dns1123_subdomain(secret, &child(&tp, "secretName")));
        }
    }
    if let Some(class) = spec.ingress_class_name.as_deref().filter(|c| !c.is_empty()) {
        errs.extend(dns1123_subdomain(class, "spec.ingressClassName"));
    }
    errs
}

/// upstream's `validateIngressBackend`: a resource or a service with a port name or number.
fn validate_backend(b: &IngressBackend, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    match (&b.resource, &b.service) {
        (Some(_), Some(_)) => errs.push(FieldError::invalid(
            path,
            "",
            "cannot set both resource and service backends",
        )),
        (Some(r), None) => {
            let rp = child(path, "resource");
            if r.kind.is_empty() {
                errs.push(FieldError::required(child(&rp, "kind"), ""));
            }
            if r.name.is_empty() {
                errs.push(FieldError::required(child(&rp, "name"), ""));
            }
        }
        (None, Some(s)) => {
            let sp = child(path, "service");
            if s.name.is_empty() {
                errs.push(FieldError::required(child(&sp, "name"), ""));
            } else {
                errs.extend(dns1035_label(&s.name, &child(&sp, "name")));
            }
            let name = s.port.as_ref().and_then(|p| p.name.as_deref()).unwrap_or_default();
            let number = s.port.as_ref().and_then(|p| p.number).unwrap_or(0);
            let port_path = child(&sp, "port");
            match (name.is_empty(), number == 0) {
                (false, false) => errs.push(FieldError::invalid(path, "", "cannot set both port name & port number")),
                (false, true) => errs.extend(invalid_each(&child(&port_path, "name"), name, is_valid_port_name(name))),
                (true, false) => {
                    for m in is_valid_port_num(i64::from(number)) {
                        errs.push(FieldError::invalid(child(&port_path, "number"), number, m));
                    }
                }
                (true, true) => errs.push(FieldError::required(path, "port name or number is required")),
            }
        }
        (None, None) => errs.push(FieldError::invalid(path, "", "resource or service backend is required")),
    }
    errs
}

/// upstream's `SetDefaults_NetworkPolicy` / `SetDefaults_NetworkPolicyPort`.
pub(crate) fn default_network_policy(np: &mut NetworkPolicy) {
    let spec = np.spec.get_or_insert_with(Default::default);
    if spec.policy_types.as_ref().is_none_or(Vec::is_empty) {
        // Any policy that names no types implies Ingress, plus Egress when it has egress rules.
        let mut types = vec!["Ingress".to_string()];
        if spec.egress.as_ref().is_some_and(|e| !e.is_empty()) {
            types.push("Egress".into());
        }
        spec.policy_types = Some(types);
    }
    let ports = spec
        .ingress
        .iter_mut()
        .flatten()
        .flat_map(|r| r.ports.iter_mut().flatten())
        .chain(
            spec.egress
                .iter_mut()
                .flatten()
                .flat_map(|r| r.ports.iter_mut().flatten()),
        );
    for p in ports {
        p.protocol.get_or_insert_with(|| "TCP".into());
    }
}

pub(crate) fn validate_network_policy(
    np: &NetworkPolicy,
    _old: Option<&NetworkPolicy>,
    _op: Operation,
) -> Vec<FieldError> {
    let spec = np.spec.clone().unwrap_or_default();
    let mut errs = Vec::new();
    if let Some(sel) = &spec.pod_selector {
        errs.extend(validate_label_selector(sel, "spec.podSelector"));
    }
    for (i, rule) in spec.ingress.iter().flatten().enumerate() {
        let rp = index("spec.ingress", i);
        for (j, p) in rule.ports.iter().flatten().enumerate() {
            errs.extend(validate_np_port(p, &index(&child(&rp, "ports"), j)));
        }
        for (j, peer) in rule.from.iter().flatten().enumerate() {
            errs.extend(validate_peer(peer, &index(&child(&rp, "from"), j)));
        }
    }
    for (i, rule) in spec.egress.iter().flatten().enumerate() {
        let rp = index("spec.egress", i);
        for (j, p) in rule.ports.iter().flatten().enumerate() {
            errs.extend(validate_np_port(p, &index(&child(&rp, "ports"), j)));
        }
        for (j, peer) in rule.to.iter().flatten().enumerate() {
            errs.extend(validate_peer(peer, &index(&child(&rp, "to"), j)));
        }
    }
    let types = spec.policy_types.as_deref().unwrap_or_default();
    if types.len() > 2 {
        errs.push(FieldError::invalid(
            "spec.policyTypes",
            serde_json::to_value(types).unwrap_or_default(),
            "may not specify more than two policyTypes",
        ));
        return errs;
    }
    for (i, t) in types.iter().enumerate() {
        if t != "Ingress" && t != "Egress" {
            errs.push(FieldError::not_supported(
                index("spec.policyTypes", i),
                t.as_str(),
                &["Ingress", "Egress"],
            ));
        }
    }
    errs
}

/// upstream's `ValidateNetworkPolicyPort`.
fn validate_np_port(p: &NetworkPolicyPort, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if let Some(proto) = p.protocol.as_deref()
        && !matches!(proto, "TCP" | "UDP" | "SCTP")
    {
        errs.push(FieldError::not_supported(
            child(path, "protocol"),
            proto,
            &["TCP", "UDP", "SCTP"],
        ));
    }
    match (&p.port, p.end_port) {
        (Some(IntOrString::Int(port)), end) => {
            for m in is_valid_port_num(i64::from(*port)) {
                errs.push(FieldError::invalid(child(path, "port"), *port, m));
            }
            if let Some(end) = end {
                if end < *port {
                    errs.push(FieldError::invalid(
                        child(path, "endPort"),
                        *port,
                        "must be greater than or equal to `port`",
                    ));
                }
                for m in is_valid_port_num(i64::from(end)) {
                    errs.push(FieldError::invalid(child(path, "endPort"), end, m));
                }
            }
        }
        (Some(IntOrString::String(name)), end) => {
            if let Some(end) = end {
                errs.push(FieldError::invalid(
                    child(path, "endPort"),
                    end,
                    "may not be specified when `port` is non-numeric",
                ));
            }
            errs.extend(invalid_each(&child(path, "port"), name, is_valid_port_name(name)));
        }
        (None, Some(end)) => {
            errs.push(FieldError::invalid(
                child(path, "endPort"),
                end,
                "may not be specified when `port` is not specified",
            ));
        }
        (None, None) => {}
    }
    errs
}

/// upstream's `ValidateNetworkPolicyPeer`.
fn validate_peer(peer: &NetworkPolicyPeer, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let mut count = 0;
    if let Some(sel) = &peer.pod_selector {
        count += 1;
        errs.extend(validate_label_selector(sel, &child(path, "podSelector")));
    }
    if let Some(sel) = &peer.namespace_selector {
        count += 1;
        errs.extend(validate_label_selector(sel, &child(path, "namespaceSelector")));
    }
    if let Some(block) = &peer.ip_block {
        count += 1;
        errs.extend(validate_ip_block(block, &child(path, "ipBlock")));
    }
    if count == 0 {
        errs.push(FieldError::required(path, "must specify a peer"));
    } else if count > 1 && peer.ip_block.is_some() {
        errs.push(FieldError::forbidden(
            path,
            "may not specify both ipBlock and another peer",
        ));
    }
    errs
}

fn validate_ip_block(block: &IPBlock, path: &str) -> Vec<FieldError> {
    if block.cidr.is_empty() {
        return vec![FieldError::required(child(path, "cidr"), "")];
    }
    let mut errs = invalid_each(&child(path, "cidr"), &block.cidr, is_valid_cidr(&block.cidr));
    for (i, except) in block.except.iter().flatten().enumerate() {
        let ep = index(&child(path, "except"), i);
        let msgs = is_valid_cidr(except);
        if !msgs.is_empty() {
            errs.extend(invalid_each(&ep, except, msgs));
        } else if !cidr_strictly_contains(&block.cidr, except) {
            errs.push(FieldError::invalid(
                ep,
                except.as_str(),
                "must be a strict subset of `cidr`",
            ));
        }
    }
    errs
}

/// Whether `inner` is a strictly smaller network inside `outer` (both valid CIDRs).
fn cidr_strictly_contains(outer: &str, inner: &str) -> bool {
    let parse = |c: &str| -> Option<(u128, u32, bool)> {
        let (ip, bits) = c.split_once('/')?;
        let bits: u32 = bits.parse().ok()?;
        match parse_ip(ip)? {
            std::net::IpAddr::V4(v4) => Some((u128::from(u32::from(v4)) << 96, bits, true)),
            std::net::IpAddr::V6(v6) => Some((u128::from(v6), bits, false)),
        }
    };
    let (Some((o_ip, o_bits, o_v4)), Some((i_ip, i_bits, i_v4))) = (parse(outer), parse(inner)) else {
        return false;
    };
    if o_v4 != i_v4 {
        return false;
    }
    // Work in 128-bit space: IPv4 addresses sit in the top 32 bits, so prefix lengths count
    // from the top either way.
    if i_bits <= o_bits {
        return false;
    }
    let mask = if o_bits == 0 {
        0
    } else {
        u128::MAX << (128 - o_bits.min(128))
    };
    (o_ip & mask) == (i_ip & mask)
}
