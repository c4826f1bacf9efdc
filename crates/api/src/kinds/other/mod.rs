//! Kinds of the smaller groups: coordination, discovery, events, autoscaling, networking,
//! apiextensions; and the conversions between served and stored versions.

use std::collections::BTreeSet;

use k8s_openapi::api::autoscaling::{v1 as autoscaling_v1, v2 as autoscaling_v2};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::events::v1 as events_v1;
use k8s_openapi::api::networking::v1::{Ingress, NetworkPolicy};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;

use crate::field::{FieldError, child, index};
use crate::kinds::core::misc::reporter_rules;
use crate::strategy::{Operation, Typed, no_defaults};
use crate::validation::common::{dns1123_label, dns1123_subdomain, invalid_each, required_enum};
use crate::validation::meta::{validate_immutable, validate_labels, validate_qualified_name};
use crate::validation::names::{is_dns1123_label, is_dns1123_subdomain, parse_ip};

mod autoscaling;
mod conversion;
mod crd;
mod networking;

pub(crate) use conversion::{EVENTS_V1_CONVERSION, HPA_V1_CONVERSION};

pub(crate) static LEASE: Typed<Lease> = Typed::new(no_defaults, validate_lease);
pub(crate) static ENDPOINT_SLICE: Typed<EndpointSlice> = Typed::new(default_endpoint_slice, validate_endpoint_slice);
pub(crate) static EVENTS_V1_EVENT: Typed<events_v1::Event> = Typed::new(no_defaults, validate_events_v1);
pub(crate) static HPA_V2: Typed<autoscaling_v2::HorizontalPodAutoscaler> =
    Typed::new(autoscaling::default_hpa_v2, autoscaling::validate_hpa_v2);
pub(crate) static HPA_V1: Typed<autoscaling_v1::HorizontalPodAutoscaler> =
    Typed::new(autoscaling::default_hpa_v1, autoscaling::validate_hpa_v1);
pub(crate) static INGRESS: Typed<Ingress> = Typed::new(no_defaults, networking::validate_ingress);
pub(crate) static NETWORK_POLICY: Typed<NetworkPolicy> =
    Typed::new(networking::default_network_policy, networking::validate_network_policy);
pub(crate) static CUSTOM_RESOURCE_DEFINITION: Typed<CustomResourceDefinition> =
    Typed::new(crd::default_crd, crd::validate_crd);

/// upstream's `ValidateLeaseSpec`.
fn validate_lease(lease: &Lease, _old: Option<&Lease>, _op: Operation) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let Some(spec) = &lease.spec else { return errs };
    if let Some(d) = spec.lease_duration_seconds.filter(|d| *d <= 0) {
        errs.push(FieldError::invalid(
            "spec.leaseDurationSeconds",
            d,
            "must be greater than 0",
        ));
    }
    if let Some(t) = spec.lease_transitions.filter(|t| *t < 0) {
        errs.push(FieldError::invalid(
            "spec.leaseTransitions",
            t,
            "must be greater than or equal to 0",
        ));
    }
    if let Some(s) = spec.strategy.as_deref() {
        errs.extend(required_enum(Some(s), "spec.strategy", &["OldestEmulationVersion"]));
    }
    if spec.preferred_holder.as_deref().is_some_and(|h| !h.is_empty())
        && spec.strategy.as_deref().is_none_or(str::is_empty)
    {
        errs.push(FieldError::forbidden(
            "spec.preferredHolder",
            "may only be specified if `strategy` is defined",
        ));
    }
    errs
}

/// upstream's discovery/v1 `SetDefaults_EndpointPort`: name "" and protocol TCP.
fn default_endpoint_slice(slice: &mut EndpointSlice) {
    for p in slice.ports.iter_mut().flatten() {
        p.name.get_or_insert_with(String::new);
        p.protocol.get_or_insert_with(|| "TCP".into());
    }
}

/// upstream's `ValidateEndpointSlice` (and the addressType immutability of updates).
fn validate_endpoint_slice(slice: &EndpointSlice, old: Option<&EndpointSlice>, _op: Operation) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let address_type = slice.address_type.as_str();
    errs.extend(required_enum(
        Some(address_type),
        "addressType",
        &["FQDN", "IPv4", "IPv6"],
    ));
    let endpoints = slice.endpoints.as_deref().unwrap_or_default();
    if endpoints.len() > 1000 {
        errs.push(FieldError::too_many("endpoints", endpoints.len(), 1000));
    }
    for (i, ep) in endpoints.iter().enumerate() {
        let ep_path = index("endpoints", i);
        let addr_path = child(&ep_path, "addresses");
        if ep.addresses.is_empty() {
            errs.push(FieldError::required(&addr_path, "must contain at least 1 address"));
        } else if ep.addresses.len() > 100 {
            errs.push(FieldError::too_many(&addr_path, ep.addresses.len(), 100));
        }
        for (j, addr) in ep.addresses.iter().enumerate() {
            let p = index(&addr_path, j);
            match (address_type, parse_ip(addr)) {
                ("IPv4", Some(std::net::IpAddr::V4(_))) | ("IPv6", Some(std::net::IpAddr::V6(_))) => {}
                ("IPv4", _) => errs.push(FieldError::invalid(p, addr.as_str(), "must be a valid IPv4 address")),
                ("IPv6", _) => errs.push(FieldError::invalid(p, addr.as_str(), "must be a valid IPv6 address")),
                ("FQDN", _) => errs.extend(fqdn(addr, &p)),
                _ => {}
            }
        }
        if let Some(node) = &ep.node_name {
            errs.extend(dns1123_subdomain(node, &child(&ep_path, "nodeName")));
        }
        errs.extend(validate_labels(
            ep.deprecated_topology.as_ref(),
            &child(&ep_path, "deprecatedTopology"),
        ));
        if let Some(zone) = &ep.zone {
            let zone_label = [("topology.kubernetes.io/zone".to_string(), zone.clone())]
                .into_iter()
                .collect();
            errs.extend(validate_labels(Some(&zone_label), &child(&ep_path, "zone")));
        }
        if let Some(h) = &ep.hostname {
            errs.extend(dns1123_label(h, &child(&ep_path, "hostname")));
        }
    }
    let mut names = BTreeSet::new();
    for (i, p) in slice.ports.iter().flatten().enumerate() {
        let pp = index("ports", i);
        let name = p.name.as_deref().unwrap_or_default();
        if !name.is_empty() {
            errs.extend(dns1123_label(name, &child(&pp, "name")));
        }
        if !names.insert(name) {
            errs.push(FieldError::duplicate(child(&pp, "name"), name));
        }
        errs.extend(required_enum(
            p.protocol.as_deref(),
            &child(&pp, "protocol"),
            &["SCTP", "TCP", "UDP"],
        ));
        if let Some(app) = &p.app_protocol {
            errs.extend(validate_qualified_name(app, &child(&pp, "appProtocol")));
        }
    }
    if let Some(old) = old {
        errs.extend(validate_immutable(
            &slice.address_type,
            &old.address_type,
            "addressType",
        ));
    }
    errs
}

/// upstream's `IsFullyQualifiedDomainName`.
fn fqdn(name: &str, path: &str) -> Vec<FieldError> {
    let trimmed = name.strip_suffix('.').unwrap_or(name);
    let msgs = is_dns1123_subdomain(trimmed);
    if !msgs.is_empty() {
        return vec![FieldError::invalid(path, trimmed, msgs.join(","))];
    }
    if trimmed.split('.').count() < 2 {
        return vec![FieldError::invalid(
            path,
            trimmed,
            "should be a domain with at least two segments separated by dots",
        )];
    }
    for label in trimmed.split('.') {
        let msgs = is_dns1123_label(label);
        if !msgs.is_empty() {
            return invalid_each(path, label, vec![msgs.join(",")]);
        }
    }
    Vec::new()
}

/// upstream's `ValidateEventCreate` / `ValidateEventUpdate` for events.k8s.io/v1: the legacy
/// rules with the new-style fields required, deprecated fields unset, and, on update, the event
/// fixed except for its series.
fn validate_events_v1(ev: &events_v1::Event, old: Option<&events_v1::Event>, _op: Operation) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let namespace = ev.metadata.namespace.as_deref().unwrap_or_default();
    let regarding_ns = ev
        .regarding
        .as_ref()
        .and_then(|r| r.namespace.as_deref())
        .unwrap_or_default();
    if ev.event_time.is_some() && regarding_ns.is_empty() && namespace != "default" && namespace != "kube-system" {
        errs.push(FieldError::invalid(
            "involvedObject.namespace",
            regarding_ns,
            "does not match event.namespace",
        ));
    }
    errs.extend(reporter_rules(
        ev.reporting_controller.as_deref().unwrap_or_default(),
        "reportingController",
        ev.reporting_instance.as_deref().unwrap_or_default(),
        ev.action.as_deref().unwrap_or_default(),
        ev.reason.as_deref().unwrap_or_default(),
        ev.note.as_deref().unwrap_or_default(),
        "note",
    ));
    if ev.series.as_ref().is_some_and(|s| s.count < 2) {
        errs.push(FieldError::invalid("series.count", "", "should be at least 2"));
    }
    if ev.event_time.is_none() {
        errs.push(FieldError::required("eventTime", ""));
    }
    let ty = ev.type_.as_deref().unwrap_or_default();
    if ty != "Normal" && ty != "Warning" {
        errs.push(FieldError::invalid("type", "", format!("has invalid value: {ty}")));
    }
    if ev.deprecated_first_timestamp.is_some() {
        errs.push(FieldError::invalid("deprecatedFirstTimestamp", "", "needs to be unset"));
    }
    if ev.deprecated_last_timestamp.is_some() {
        errs.push(FieldError::invalid("deprecatedLastTimestamp", "", "needs to be unset"));
    }
    if ev.deprecated_count.unwrap_or(0) != 0 {
        errs.push(FieldError::invalid("deprecatedCount", "", "needs to be unset"));
    }
    if ev
        .deprecated_source
        .as_ref()
        .is_some_and(|s| s.component.is_some() || s.host.is_some())
    {
        errs.push(FieldError::invalid("deprecatedSource", "", "needs to be unset"));
    }
    if let Some(old) = old {
        errs.extend(validate_immutable(&ev.regarding, &old.regarding, "regarding"));
        errs.extend(validate_immutable(&ev.reason, &old.reason, "reason"));
        errs.extend(validate_immutable(&ev.note, &old.note, "note"));
        errs.extend(validate_immutable(&ev.type_, &old.type_, "type"));
        errs.extend(validate_immutable(&ev.event_time, &old.event_time, "eventTime"));
        errs.extend(validate_immutable(&ev.action, &old.action, "action"));
        errs.extend(validate_immutable(&ev.related, &old.related, "related"));
        errs.extend(validate_immutable(
            &ev.reporting_controller,
            &old.reporting_controller,
            "reportingController",
        ));
        errs.extend(validate_immutable(
            &ev.reporting_instance,
            &old.reporting_instance,
            "reportingInstance",
        ));
    }
    errs
}

#[cfg(test)]
mod tests;
