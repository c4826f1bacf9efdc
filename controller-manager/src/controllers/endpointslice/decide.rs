//! The endpointslice controller's pure decision: given a Service, the pods of its namespace,
//! node zones and the slices this controller already manages for the Service, which slices
//! to create, update and delete.
//!
//! Endpoints are grouped by address type and resolved port set (a pod whose named port is
//! missing lands in a group without that port, as upstream). Existing slices keep the
//! endpoints they have while those stay desired (little churn, as upstream's reconciler);
//! new endpoints fill slices with room first, then new slices of at most
//! `MAX_ENDPOINTS_PER_SLICE`. A Service without endpoints keeps one empty placeholder slice.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions, EndpointPort, EndpointSlice};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use crate::controllers::endpointutil as eu;
use crate::util;

/// Upstream's `--max-endpoints-per-slice` default.
pub const MAX_ENDPOINTS_PER_SLICE: usize = 100;
/// The label naming a slice's Service.
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";
/// The label naming the controller that manages a slice.
pub const MANAGED_BY_LABEL: &str = "endpointslice.kubernetes.io/managed-by";
/// This controller's value for `MANAGED_BY_LABEL`.
pub const MANAGED_BY: &str = "endpointslice-controller.k8s.io";
/// The node label holding its zone.
pub const ZONE_LABEL: &str = "topology.kubernetes.io/zone";

/// What to write for one Service.
#[derive(Debug, Default, PartialEq)]
pub struct Plan {
    /// New slices (with `generateName`).
    pub create: Vec<EndpointSlice>,
    /// Changed slices (full objects, with the resourceVersion they were read at).
    pub update: Vec<EndpointSlice>,
    /// Slices to delete.
    pub delete: Vec<EndpointSlice>,
}

/// The group an endpoint belongs to: address type and ports.
type GroupKey = (String, Vec<PortKey>);
type PortKey = (Option<String>, Option<i32>, Option<String>, Option<String>);

fn port_key(port: &EndpointPort) -> PortKey {
    (
        port.name.clone(),
        port.port,
        port.protocol.clone(),
        port.app_protocol.clone(),
    )
}

fn group_key(address_type: &str, ports: &[EndpointPort]) -> GroupKey {
    let mut keys: Vec<PortKey> = ports.iter().map(port_key).collect();
    keys.sort();
    (address_type.to_string(), keys)
}

/// The slices this controller manages for `service` among `slices`.
pub fn owned_slices<'a>(service: &Service, slices: &'a [Arc<EndpointSlice>]) -> Vec<&'a EndpointSlice> {
    let name = service.metadata.name.as_deref().unwrap_or_default();
    slices
        .iter()
        .filter(|slice| slice.metadata.namespace == service.metadata.namespace)
        .filter(|slice| {
            let labels = slice.metadata.labels.as_ref();
            labels
                .and_then(|labels| labels.get(SERVICE_NAME_LABEL))
                .map(String::as_str)
                == Some(name)
                && labels
                    .and_then(|labels| labels.get(MANAGED_BY_LABEL))
                    .map(String::as_str)
                    == Some(MANAGED_BY)
        })
        .map(Arc::as_ref)
        .collect()
}

/// The endpoint for `pod` with `address`.
pub fn endpoint(service: &Service, pod: &Pod, address: String, zones: &HashMap<String, String>) -> Endpoint {
    let terminating = pod.metadata.deletion_timestamp.is_some();
    let ready = eu::is_ready(pod);
    let publish = eu::publish_not_ready(service);
    let node_name = eu::node_name(pod);
    Endpoint {
        addresses: vec![address],
        conditions: Some(EndpointConditions {
            ready: Some(publish || (ready && !terminating)),
            serving: Some(publish || ready),
            terminating: Some(terminating),
        }),
        hostname: eu::hostname(pod, service),
        zone: node_name.as_ref().and_then(|node| zones.get(node).cloned()),
        node_name,
        target_ref: Some(eu::target_ref(pod)),
        ..Default::default()
    }
}

/// The endpoint ports of `pod` for `service`: one per Service port whose target resolves.
pub fn endpoint_ports(service: &Service, pod: &Pod) -> Vec<EndpointPort> {
    service
        .spec
        .as_ref()
        .and_then(|spec| spec.ports.as_ref())
        .into_iter()
        .flatten()
        .filter_map(|port| {
            Some(EndpointPort {
                name: Some(port.name.clone().unwrap_or_default()),
                port: Some(eu::find_port(pod, port)?),
                protocol: Some(port.protocol.clone().unwrap_or_else(|| "TCP".into())),
                app_protocol: port.app_protocol.clone(),
            })
        })
        .collect()
}

/// The endpoints `service` should publish, grouped; within a group keyed by pod name.
fn desired(
    service: &Service,
    pods: &[Arc<Pod>],
    zones: &HashMap<String, String>,
) -> BTreeMap<GroupKey, (Vec<EndpointPort>, BTreeMap<String, Endpoint>)> {
    let mut groups: BTreeMap<GroupKey, (Vec<EndpointPort>, BTreeMap<String, Endpoint>)> = BTreeMap::new();
    let Some(selector) = eu::managed_selector(service) else {
        return groups;
    };
    let families = eu::service_families(service);
    for pod in pods {
        if pod.metadata.namespace != service.metadata.namespace
            || !eu::selects(selector, pod)
            || !eu::should_pod_be_in_endpoints(pod, true)
        {
            continue;
        }
        let ports = endpoint_ports(service, pod);
        for family in &families {
            let Some(address) = eu::pod_ip_of_family(pod, family) else {
                continue;
            };
            let key = group_key(family, &ports);
            let entry = groups.entry(key).or_insert_with(|| (ports.clone(), BTreeMap::new()));
            let name = pod.metadata.name.clone().unwrap_or_default();
            entry.1.insert(name, endpoint(service, pod, address, zones));
        }
    }
    groups
}

/// A new slice of `service` (named by the apiserver from `<service>-`).
fn new_slice(
    service: &Service,
    address_type: &str,
    ports: Vec<EndpointPort>,
    endpoints: Vec<Endpoint>,
) -> EndpointSlice {
    let name = service.metadata.name.clone().unwrap_or_default();
    EndpointSlice {
        metadata: ObjectMeta {
            generate_name: Some(format!("{name}-")),
            namespace: service.metadata.namespace.clone(),
            labels: Some(slice_labels(service)),
            owner_references: Some(vec![util::controller_ref(service)]),
            ..Default::default()
        },
        address_type: address_type.to_string(),
        endpoints: Some(endpoints),
        ports: Some(ports),
    }
}

fn slice_labels(service: &Service) -> BTreeMap<String, String> {
    let mut labels = eu::service_labels(service);
    labels.insert(
        SERVICE_NAME_LABEL.into(),
        service.metadata.name.clone().unwrap_or_default(),
    );
    labels.insert(MANAGED_BY_LABEL.into(), MANAGED_BY.into());
    labels
}

fn endpoint_pod_name(endpoint: &Endpoint) -> Option<&str> {
    endpoint.target_ref.as_ref()?.name.as_deref()
}

/// Decides for `service`; `existing` are the slices `owned_slices` found. `zones` maps node
/// names to their zone label.
pub fn decide(
    service: &Service,
    pods: &[Arc<Pod>],
    zones: &HashMap<String, String>,
    existing: &[&EndpointSlice],
) -> Plan {
    let mut plan = Plan::default();
    if eu::managed_selector(service).is_none() || util::is_deleting(&service.metadata) {
        return plan;
    }
    let mut groups = desired(service, pods, zones);
    let labels = slice_labels(service);
    let owner = util::controller_ref(service);
    let total: usize = groups.values().map(|(_, endpoints)| endpoints.len()).sum();

    // Existing slices first, oldest name first for determinism.
    let mut existing: Vec<&EndpointSlice> = existing.to_vec();
    existing.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    let mut changed: Vec<bool> = Vec::new();
    let mut kept_slices: Vec<(GroupKey, EndpointSlice)> = Vec::new();
    let mut placeholder_kept = false;
    for slice in existing {
        let ports = slice.ports.clone().unwrap_or_default();
        let key = group_key(&slice.address_type, &ports);
        let is_placeholder = ports.is_empty() && slice.endpoints.as_ref().is_none_or(Vec::is_empty);
        if total == 0 && is_placeholder && !placeholder_kept {
            placeholder_kept = true;
            let mut updated = slice.clone();
            let differs = relabel(&mut updated, &labels, &owner);
            if differs {
                plan.update.push(updated);
            }
            continue;
        }
        let Some((_, wanted)) = groups.get_mut(&key) else {
            plan.delete.push(slice.clone());
            continue;
        };
        let mut endpoints = Vec::new();
        for endpoint in slice.endpoints.iter().flatten() {
            let Some(name) = endpoint_pod_name(endpoint) else {
                continue;
            };
            if endpoints.len() >= MAX_ENDPOINTS_PER_SLICE {
                break;
            }
            if let Some(desired) = wanted.remove(name) {
                endpoints.push(desired);
            }
        }
        if endpoints.is_empty() {
            plan.delete.push(slice.clone());
            continue;
        }
        let mut updated = slice.clone();
        let mut differs = updated.endpoints.as_ref() != Some(&endpoints);
        updated.endpoints = Some(endpoints);
        differs |= relabel(&mut updated, &labels, &owner);
        changed.push(differs);
        kept_slices.push((key, updated));
    }
    // New endpoints: into kept slices with room, then into new slices.
    for (index, (key, slice)) in kept_slices.iter_mut().enumerate() {
        let Some((_, wanted)) = groups.get_mut(key) else {
            continue;
        };
        let endpoints = slice.endpoints.get_or_insert_with(Vec::new);
        while endpoints.len() < MAX_ENDPOINTS_PER_SLICE {
            let Some((_, endpoint)) = wanted.pop_first() else {
                break;
            };
            endpoints.push(endpoint);
            changed[index] = true;
        }
    }
    for ((_, slice), differs) in kept_slices.into_iter().zip(changed) {
        if differs {
            plan.update.push(slice);
        }
    }
    for ((address_type, _), (ports, wanted)) in std::mem::take(&mut groups) {
        let endpoints: Vec<Endpoint> = wanted.into_values().collect();
        for chunk in endpoints.chunks(MAX_ENDPOINTS_PER_SLICE) {
            plan.create
                .push(new_slice(service, &address_type, ports.clone(), chunk.to_vec()));
        }
    }
    if total == 0 && !placeholder_kept {
        let family = eu::service_families(service)[0];
        plan.create.push(new_slice(service, family, Vec::new(), Vec::new()));
    }
    plan
}

/// Brings the slice's labels and owner reference in line; true when anything changed.
fn relabel(
    slice: &mut EndpointSlice,
    labels: &BTreeMap<String, String>,
    owner: &k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference,
) -> bool {
    let mut differs = false;
    if slice.metadata.labels.as_ref() != Some(labels) {
        slice.metadata.labels = Some(labels.clone());
        differs = true;
    }
    let owners = slice.metadata.owner_references.get_or_insert_with(Vec::new);
    if !owners.iter().any(|reference| reference.uid == owner.uid) {
        owners.retain(|reference| reference.controller != Some(true));
        owners.push(owner.clone());
        differs = true;
    }
    differs
}
