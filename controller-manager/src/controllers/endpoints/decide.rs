//! The endpoints controller's pure decision: the legacy `v1 Endpoints` object of a Service
//! (ready pods in `addresses`, the others in `notReadyAddresses`, subsets grouped by port set
//! as upstream's `RepackSubsets`), and whether it differs from the stored one.

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{EndpointAddress, EndpointPort, EndpointSubset, Endpoints, Pod, Service};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use crate::controllers::endpointutil as eu;

/// The label marking Endpoints this controller manages.
pub const MANAGED_BY_LABEL: &str = "endpoints.kubernetes.io/managed-by";
/// This controller's value for `MANAGED_BY_LABEL`.
pub const MANAGED_BY: &str = "endpoint-controller";
/// Upstream's cap on addresses in one Endpoints object.
pub const MAX_CAPACITY: usize = 1000;
/// The annotation set when addresses were dropped to stay under `MAX_CAPACITY`.
pub const OVER_CAPACITY_ANNOTATION: &str = "endpoints.kubernetes.io/over-capacity";

/// What to do with a Service's Endpoints.
#[derive(Debug, PartialEq)]
pub enum Action {
    /// Nothing changes.
    None,
    /// Create this object.
    Create(Endpoints),
    /// Replace the stored object with this one.
    Update(Endpoints),
}

type PortKey = (Option<String>, i32, Option<String>, Option<String>);

fn port_key(port: &EndpointPort) -> PortKey {
    (
        port.name.clone(),
        port.port,
        port.protocol.clone(),
        port.app_protocol.clone(),
    )
}

/// The subsets for `service` from the pods of its namespace.
pub fn subsets(service: &Service, pods: &[Arc<Pod>]) -> (Vec<EndpointSubset>, bool) {
    let Some(selector) = eu::managed_selector(service) else {
        return (Vec::new(), false);
    };
    let publish = eu::publish_not_ready(service);
    let family = eu::service_families(service)[0];
    let headless = service.spec.as_ref().and_then(|spec| spec.cluster_ip.as_deref()) == Some("None");
    let service_ports = service
        .spec
        .as_ref()
        .and_then(|spec| spec.ports.clone())
        .unwrap_or_default();
    // address (ip, pod) → (ready, ports)
    let mut addresses: BTreeMap<(String, String), (EndpointAddress, bool, Vec<EndpointPort>)> = BTreeMap::new();
    for pod in pods {
        if pod.metadata.namespace != service.metadata.namespace
            || !eu::selects(selector, pod)
            || !eu::should_pod_be_in_endpoints(pod, publish)
        {
            continue;
        }
        let Some(ip) = eu::pod_ip_of_family(pod, family) else {
            continue;
        };
        let address = EndpointAddress {
            ip: ip.clone(),
            hostname: eu::hostname(pod, service),
            node_name: eu::node_name(pod),
            target_ref: Some(eu::target_ref(pod)),
        };
        let ready = publish || eu::is_ready(pod);
        let mut ports = Vec::new();
        for port in &service_ports {
            if let Some(number) = eu::find_port(pod, port) {
                ports.push(EndpointPort {
                    name: port.name.clone(),
                    port: number,
                    protocol: Some(port.protocol.clone().unwrap_or_else(|| "TCP".into())),
                    app_protocol: port.app_protocol.clone(),
                });
            }
        }
        // Without ports only headless Services publish the address.
        if ports.is_empty() && !(headless && service_ports.is_empty()) {
            continue;
        }
        let name = pod.metadata.name.clone().unwrap_or_default();
        addresses.insert((ip, name), (address, ready, ports));
    }
    // Group addresses by identical port sets.
    let mut groups: BTreeMap<Vec<PortKey>, EndpointSubset> = BTreeMap::new();
    let truncated = addresses.len() > MAX_CAPACITY;
    for (address, ready, mut ports) in addresses.into_values().take(MAX_CAPACITY) {
        ports.sort_by_key(port_key);
        let key: Vec<PortKey> = ports.iter().map(port_key).collect();
        let subset = groups.entry(key).or_insert_with(|| EndpointSubset {
            ports: (!ports.is_empty()).then_some(ports),
            ..Default::default()
        });
        let list = if ready {
            subset.addresses.get_or_insert_with(Vec::new)
        } else {
            subset.not_ready_addresses.get_or_insert_with(Vec::new)
        };
        list.push(address);
    }
    let mut subsets: Vec<EndpointSubset> = groups.into_values().collect();
    for subset in &mut subsets {
        for list in [&mut subset.addresses, &mut subset.not_ready_addresses]
            .into_iter()
            .flatten()
        {
            list.sort_by(|a, b| a.ip.cmp(&b.ip));
        }
    }
    (subsets, truncated)
}

/// Decides for `service` given the stored Endpoints of the same name, if any.
pub fn decide(service: &Service, pods: &[Arc<Pod>], current: Option<&Endpoints>) -> Action {
    if eu::managed_selector(service).is_none() || service.metadata.deletion_timestamp.is_some() {
        return Action::None;
    }
    let (subsets, truncated) = subsets(service, pods);
    let mut labels = eu::service_labels(service);
    labels.insert(MANAGED_BY_LABEL.into(), MANAGED_BY.into());
    let mut annotations = current
        .and_then(|endpoints| endpoints.metadata.annotations.clone())
        .unwrap_or_default();
    if truncated {
        annotations.insert(OVER_CAPACITY_ANNOTATION.into(), "truncated".into());
    } else {
        annotations.remove(OVER_CAPACITY_ANNOTATION);
    }
    let subsets = (!subsets.is_empty()).then_some(subsets);
    match current {
        None => Action::Create(Endpoints {
            metadata: ObjectMeta {
                name: service.metadata.name.clone(),
                namespace: service.metadata.namespace.clone(),
                labels: Some(labels),
                annotations: (!annotations.is_empty()).then_some(annotations),
                ..Default::default()
            },
            subsets,
        }),
        Some(current) => {
            let same_subsets = current.subsets.as_ref().filter(|s| !s.is_empty()) == subsets.as_ref();
            let same_labels = current.metadata.labels.clone().unwrap_or_default() == labels;
            let same_annotations = current.metadata.annotations.clone().unwrap_or_default() == annotations;
            if same_subsets && same_labels && same_annotations {
                return Action::None;
            }
            let mut updated = current.clone();
            updated.metadata.labels = Some(labels);
            updated.metadata.annotations = (!annotations.is_empty()).then_some(annotations);
            updated.subsets = subsets;
            Action::Update(updated)
        }
    }
}
