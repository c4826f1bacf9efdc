//! Namespaces, Nodes, Endpoints and core/v1 Events: the cluster's bookkeeping kinds.

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::{EndpointAddress, EndpointPort, Endpoints, Event, Namespace, Node, NodeStatus};

use super::pod_defaults::canonicalize_list;
use crate::field::{FieldError, child, index, key};
use crate::strategy::Operation;
use crate::validation::common::{
    dns1123_label, dns1123_subdomain, invalid_each, ip_address, nonnegative_quantity, required_enum,
};
use crate::validation::meta::{validate_label_name, validate_qualified_name};
use crate::validation::names::{is_qualified_name, is_valid_cidr, is_valid_label_value, is_valid_port_num};

const STANDARD_FINALIZERS: &[&str] = &["kubernetes", "orphan", "foregroundDeletion"];

/// upstream's `SetDefaults_Namespace` / `SetDefaults_NamespaceStatus`: the
/// `kubernetes.io/metadata.name` label and phase Active.
pub(crate) fn default_namespace(ns: &mut Namespace) {
    if let Some(name) = ns.metadata.name.clone().filter(|n| !n.is_empty()) {
        ns.metadata
            .labels
            .get_or_insert_with(Default::default)
            .insert("kubernetes.io/metadata.name".into(), name);
    }
    let status = ns.status.get_or_insert_with(Default::default);
    if status.phase.as_deref().is_none_or(str::is_empty) {
        status.phase = Some("Active".into());
    }
}

pub(crate) fn validate_namespace(ns: &Namespace, _old: Option<&Namespace>, _op: Operation) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for f in ns.spec.iter().flat_map(|s| s.finalizers.iter().flatten()) {
        let msgs = is_qualified_name(f);
        if !msgs.is_empty() {
            errs.extend(invalid_each("spec.finalizers", f, msgs));
        } else if !f.contains('/') && !STANDARD_FINALIZERS.contains(&f.as_str()) {
            errs.push(FieldError::invalid(
                "spec.finalizers",
                f.as_str(),
                "name is neither a standard finalizer name nor is it fully qualified",
            ));
        }
    }
    if let Some(phase) = ns.status.as_ref().and_then(|s| s.phase.as_deref()) {
        errs.extend(required_enum(Some(phase), "status.phase", &["Active", "Terminating"]));
    }
    errs
}

/// upstream's `SetDefaults_NodeStatus`: allocatable defaults to capacity.
pub(crate) fn default_node(node: &mut Node) {
    let status = node.status.get_or_insert_with(NodeStatus::default);
    if status.allocatable.is_none() {
        status.allocatable.clone_from(&status.capacity);
    }
    for list in [&mut status.capacity, &mut status.allocatable].into_iter().flatten() {
        canonicalize_list(list);
    }
}

pub(crate) fn validate_node(node: &Node, old: Option<&Node>, op: Operation) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let spec = node.spec.clone().unwrap_or_default();
    let status = node.status.clone().unwrap_or_default();
    for (list, name) in [(&status.capacity, "capacity"), (&status.allocatable, "allocatable")] {
        for (k, q) in list.iter().flatten() {
            let p = key(&child("status", name), k);
            errs.extend(invalid_each(&p, k, is_qualified_name(k)));
            errs.extend(nonnegative_quantity(q, &p).1);
        }
    }
    for (i, cidr) in spec.pod_cidrs.iter().flatten().enumerate() {
        errs.extend(invalid_each(&index("spec.podCIDRs", i), cidr, is_valid_cidr(cidr)));
    }
    let mut seen = BTreeSet::new();
    for (i, t) in spec.taints.iter().flatten().enumerate() {
        let tpath = index("spec.taints", i);
        errs.extend(validate_label_name(&t.key, &child(&tpath, "key")));
        let value = t.value.as_deref().unwrap_or_default();
        let msgs = is_valid_label_value(value);
        if !msgs.is_empty() {
            errs.push(FieldError::invalid(child(&tpath, "value"), value, msgs.join(";")));
        }
        errs.extend(required_enum(
            Some(t.effect.as_str()),
            &child(&tpath, "effect"),
            &["NoSchedule", "PreferNoSchedule", "NoExecute"],
        ));
        if !seen.insert((t.effect.as_str(), t.key.as_str())) {
            let mut e = FieldError::duplicate(&tpath, serde_json::to_value(t).unwrap_or_default());
            e.detail = "taints must be unique by key and effect pair".into();
            errs.push(e);
        }
    }
    if let (Some(old), Operation::Update | Operation::UpdateStatus) = (old, op) {
        let old_spec = old.spec.clone().unwrap_or_default();
        let mut addresses = BTreeSet::new();
        for (i, a) in status.addresses.iter().flatten().enumerate() {
            if !addresses.insert((a.type_.as_str(), a.address.as_str())) {
                errs.push(FieldError::duplicate(
                    index("status.addresses", i),
                    serde_json::to_value(a).unwrap_or_default(),
                ));
            }
        }
        let old_cidrs = old_spec.pod_cidrs.unwrap_or_default();
        if !old_cidrs.is_empty() && old_cidrs != spec.pod_cidrs.clone().unwrap_or_default() {
            errs.push(FieldError::forbidden(
                "spec.podCIDRs",
                "node updates may not change podCIDR except from \"\" to valid",
            ));
        }
        let old_provider = old_spec.provider_id.unwrap_or_default();
        if !old_provider.is_empty() && Some(&old_provider) != spec.provider_id.as_ref() {
            errs.push(FieldError::forbidden(
                "spec.providerID",
                "node updates may not change providerID except from \"\" to valid",
            ));
        }
    }
    errs
}

/// upstream's `SetDefaults_EndpointPort`: protocol TCP.
pub(crate) fn default_endpoints(ep: &mut Endpoints) {
    for p in ep
        .subsets
        .iter_mut()
        .flatten()
        .flat_map(|s| s.ports.iter_mut().flatten())
    {
        if p.protocol.as_deref().is_none_or(str::is_empty) {
            p.protocol = Some("TCP".into());
        }
    }
}

pub(crate) fn validate_endpoints(ep: &Endpoints, _old: Option<&Endpoints>, _op: Operation) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for (i, s) in ep.subsets.iter().flatten().enumerate() {
        let spath = index("subsets", i);
        let addresses = s.addresses.as_deref().unwrap_or_default();
        let not_ready = s.not_ready_addresses.as_deref().unwrap_or_default();
        if addresses.is_empty() && not_ready.is_empty() {
            errs.push(FieldError::required(
                &spath,
                "must specify `addresses` or `notReadyAddresses`",
            ));
        }
        for (j, a) in addresses.iter().enumerate() {
            errs.extend(validate_endpoint_address(a, &index(&child(&spath, "addresses"), j)));
        }
        for (j, a) in not_ready.iter().enumerate() {
            errs.extend(validate_endpoint_address(
                a,
                &index(&child(&spath, "notReadyAddresses"), j),
            ));
        }
        let ports = s.ports.as_deref().unwrap_or_default();
        for (j, p) in ports.iter().enumerate() {
            errs.extend(validate_endpoint_port(
                p,
                ports.len() > 1,
                &index(&child(&spath, "ports"), j),
            ));
        }
    }
    errs
}

fn validate_endpoint_address(a: &EndpointAddress, path: &str) -> Vec<FieldError> {
    let mut errs = ip_address(&a.ip, &child(path, "ip"));
    if let Some(h) = a.hostname.as_deref().filter(|h| !h.is_empty()) {
        errs.extend(dns1123_label(h, &child(path, "hostname")));
    }
    if let Some(n) = a.node_name.as_deref().filter(|n| !n.is_empty()) {
        errs.extend(dns1123_subdomain(n, &child(path, "nodeName")));
    }
    errs
}

fn validate_endpoint_port(p: &EndpointPort, require_name: bool, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let name = p.name.as_deref().unwrap_or_default();
    if require_name && name.is_empty() {
        errs.push(FieldError::required(child(path, "name"), ""));
    } else if !name.is_empty() {
        errs.extend(dns1123_label(name, &child(path, "name")));
    }
    for m in is_valid_port_num(i64::from(p.port)) {
        errs.push(FieldError::invalid(child(path, "port"), p.port, m));
    }
    errs.extend(required_enum(
        p.protocol.as_deref(),
        &child(path, "protocol"),
        &["SCTP", "TCP", "UDP"],
    ));
    if let Some(app) = &p.app_protocol {
        errs.extend(validate_qualified_name(app, &child(path, "appProtocol")));
    }
    errs
}

/// Length limits upstream puts on new-style events.
pub(crate) const REPORTING_INSTANCE_LIMIT: usize = 128;
pub(crate) const ACTION_LIMIT: usize = 128;
pub(crate) const REASON_LIMIT: usize = 128;
pub(crate) const NOTE_LIMIT: usize = 1024;

/// upstream's `legacyValidateEvent` for core/v1 (what `ValidateEventCreate/Update` run for
/// that version): namespaces agree; new-style events (with eventTime) carry their reporter.
pub(crate) fn validate_event(ev: &Event, _old: Option<&Event>, _op: Operation) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let namespace = ev.metadata.namespace.as_deref().unwrap_or_default();
    let involved_ns = ev.involved_object.namespace.as_deref().unwrap_or_default();
    let mismatch = || {
        FieldError::invalid(
            "involvedObject.namespace",
            involved_ns,
            "does not match event.namespace",
        )
    };
    if ev.event_time.is_none() {
        let ok = if involved_ns.is_empty() {
            namespace.is_empty() || namespace == "default"
        } else {
            namespace == involved_ns
        };
        if !ok {
            errs.push(mismatch());
        }
        return errs;
    }
    if involved_ns.is_empty() && namespace != "default" && namespace != "kube-system" {
        errs.push(mismatch());
    }
    errs.extend(reporter_rules(
        ev.reporting_component.as_deref().unwrap_or_default(),
        "reportingComponent",
        ev.reporting_instance.as_deref().unwrap_or_default(),
        ev.action.as_deref().unwrap_or_default(),
        ev.reason.as_deref().unwrap_or_default(),
        ev.message.as_deref().unwrap_or_default(),
        "message",
    ));
    errs
}

/// The reporter/action/reason/note rules shared by core/v1 and events.k8s.io/v1 Events.
pub(crate) fn reporter_rules(
    controller: &str,
    controller_field: &str,
    instance: &str,
    action: &str,
    reason: &str,
    note: &str,
    note_field: &str,
) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if controller.is_empty() {
        errs.push(FieldError::required(controller_field, ""));
    }
    errs.extend(validate_qualified_name(controller, controller_field));
    for (value, field, limit) in [
        (instance, "reportingInstance", REPORTING_INSTANCE_LIMIT),
        (action, "action", ACTION_LIMIT),
        (reason, "reason", REASON_LIMIT),
    ] {
        if value.is_empty() {
            errs.push(FieldError::required(field, ""));
        }
        if value.len() > limit {
            errs.push(FieldError::invalid(
                field,
                "",
                format!("can have at most {limit} characters"),
            ));
        }
    }
    if note.len() > NOTE_LIMIT {
        errs.push(FieldError::invalid(
            note_field,
            "",
            format!("can have at most {NOTE_LIMIT} characters"),
        ));
    }
    errs
}
