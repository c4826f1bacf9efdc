//! What the endpointslice and endpoints controllers share, all pure: which pods a Service
//! selects and publishes, how a Service port's targetPort resolves in a pod, and the pods'
//! addresses per IP family.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{ObjectReference, Pod, Service, ServicePort};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

/// The Service every cluster has, whose endpoints the apiserver maintains itself.
pub fn is_apiserver_service(service: &Service) -> bool {
    service.metadata.namespace.as_deref() == Some("default") && service.metadata.name.as_deref() == Some("kubernetes")
}

/// The Service's selector when the controllers manage its endpoints: a selector is set and
/// it is not `default/kubernetes`.
pub fn managed_selector(service: &Service) -> Option<&BTreeMap<String, String>> {
    if is_apiserver_service(service) {
        return None;
    }
    service.spec.as_ref()?.selector.as_ref()
}

/// True when a selector (a plain label map, as Services have) selects `pod`. An empty
/// selector selects nothing for Services (upstream: `labels.Set(selector).AsSelectorPreValidated`
/// selects everything, but an empty selector is treated as "no selector").
pub fn selects(selector: &BTreeMap<String, String>, pod: &Pod) -> bool {
    if selector.is_empty() {
        return false;
    }
    let labels = pod.metadata.labels.as_ref();
    selector
        .iter()
        .all(|(key, value)| labels.and_then(|labels| labels.get(key)) == Some(value))
}

/// True when `publishNotReadyAddresses` is set.
pub fn publish_not_ready(service: &Service) -> bool {
    service
        .spec
        .as_ref()
        .and_then(|spec| spec.publish_not_ready_addresses)
        .unwrap_or(false)
}

/// Upstream's `ShouldPodBeInEndpoints`: a pod with an IP that has not finished; terminating
/// pods only when `include_terminating`.
pub fn should_pod_be_in_endpoints(pod: &Pod, include_terminating: bool) -> bool {
    let status = pod.status.as_ref();
    if matches!(
        status.and_then(|status| status.phase.as_deref()),
        Some("Succeeded") | Some("Failed")
    ) {
        return false;
    }
    if !include_terminating && pod.metadata.deletion_timestamp.is_some() {
        return false;
    }
    !pod_ips(pod).is_empty()
}

/// The pod's IPs: `podIPs`, or `podIP` for pods that only report that.
pub fn pod_ips(pod: &Pod) -> Vec<String> {
    let Some(status) = pod.status.as_ref() else {
        return Vec::new();
    };
    let mut ips: Vec<String> = status
        .pod_ips
        .iter()
        .flatten()
        .map(|ip| ip.ip.clone())
        .filter(|ip| !ip.is_empty())
        .collect();
    if ips.is_empty()
        && let Some(ip) = status.pod_ip.as_ref().filter(|ip| !ip.is_empty())
    {
        ips.push(ip.clone());
    }
    ips
}

/// The pod's IP of `family` (`IPv4` or `IPv6`), if it has one.
pub fn pod_ip_of_family(pod: &Pod, family: &str) -> Option<String> {
    pod_ips(pod).into_iter().find(|ip| ip_family(ip) == Some(family))
}

/// `IPv4` or `IPv6` for an address, `None` for something else.
pub fn ip_family(ip: &str) -> Option<&'static str> {
    match ip.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(_)) => Some("IPv4"),
        Ok(std::net::IpAddr::V6(_)) => Some("IPv6"),
        Err(_) => None,
    }
}

/// The address families the Service publishes: `spec.ipFamilies`, else the family of its
/// clusterIP, else IPv4.
pub fn service_families(service: &Service) -> Vec<&'static str> {
    let spec = service.spec.as_ref();
    let mut families: Vec<&'static str> = spec
        .and_then(|spec| spec.ip_families.as_ref())
        .into_iter()
        .flatten()
        .filter_map(|family| match family.as_str() {
            "IPv4" => Some("IPv4"),
            "IPv6" => Some("IPv6"),
            _ => None,
        })
        .collect();
    if families.is_empty() {
        families.push(
            spec.and_then(|spec| spec.cluster_ip.as_deref())
                .and_then(ip_family)
                .unwrap_or("IPv4"),
        );
    }
    families.dedup();
    families
}

/// True when the pod is Ready (its Ready condition is True).
pub fn is_ready(pod: &Pod) -> bool {
    crate::util::is_pod_ready(pod)
}

/// Upstream's `FindPort`: the container port the Service port targets in `pod`. A number is
/// used as is (0 or unset: the Service port); a name is looked up among the ports of the
/// pod's containers and restartable init containers with the same protocol, `None` when
/// missing.
pub fn find_port(pod: &Pod, port: &ServicePort) -> Option<i32> {
    match &port.target_port {
        None => Some(port.port),
        Some(IntOrString::Int(0)) => Some(port.port),
        Some(IntOrString::Int(number)) => Some(*number),
        Some(IntOrString::String(name)) => {
            if let Ok(number) = name.parse::<i32>() {
                return Some(number);
            }
            let protocol = port.protocol.as_deref().unwrap_or("TCP");
            let spec = pod.spec.as_ref()?;
            let sidecars = spec
                .init_containers
                .iter()
                .flatten()
                .filter(|container| container.restart_policy.as_deref() == Some("Always"));
            spec.containers
                .iter()
                .chain(sidecars)
                .flat_map(|container| container.ports.iter().flatten())
                .find(|container_port| {
                    container_port.name.as_deref() == Some(name.as_str())
                        && container_port.protocol.as_deref().unwrap_or("TCP") == protocol
                })
                .map(|container_port| container_port.container_port)
        }
    }
}

/// The endpoint's hostname: the pod's `spec.hostname` when its `spec.subdomain` is the
/// Service's name (headless-service DNS), as upstream.
pub fn hostname(pod: &Pod, service: &Service) -> Option<String> {
    let spec = pod.spec.as_ref()?;
    let hostname = spec.hostname.as_ref().filter(|name| !name.is_empty())?;
    (spec.subdomain.as_deref() == service.metadata.name.as_deref()).then(|| hostname.clone())
}

/// The endpoint's reference to its pod.
pub fn target_ref(pod: &Pod) -> ObjectReference {
    ObjectReference {
        kind: Some("Pod".into()),
        namespace: pod.metadata.namespace.clone(),
        name: pod.metadata.name.clone(),
        uid: pod.metadata.uid.clone(),
        ..Default::default()
    }
}

/// The node the pod runs on, if scheduled.
pub fn node_name(pod: &Pod) -> Option<String> {
    pod.spec
        .as_ref()
        .and_then(|spec| spec.node_name.clone())
        .filter(|name| !name.is_empty())
}

/// The labels upstream puts on Endpoints and EndpointSlices: the Service's own, plus
/// `service.kubernetes.io/headless` for headless Services.
pub fn service_labels(service: &Service) -> BTreeMap<String, String> {
    let mut labels = service.metadata.labels.clone().unwrap_or_default();
    let headless = service.spec.as_ref().and_then(|spec| spec.cluster_ip.as_deref()) == Some("None");
    if headless {
        labels.insert("service.kubernetes.io/headless".into(), String::new());
    } else {
        labels.remove("service.kubernetes.io/headless");
    }
    labels
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{Container, ContainerPort, PodSpec};

    fn pod_with_ports(ports: &[(&str, i32, &str)]) -> Pod {
        Pod {
            spec: Some(PodSpec {
                containers: vec![Container {
                    name: "c".into(),
                    ports: Some(
                        ports
                            .iter()
                            .map(|(name, port, protocol)| ContainerPort {
                                name: Some(name.to_string()),
                                container_port: *port,
                                protocol: Some(protocol.to_string()),
                                ..Default::default()
                            })
                            .collect(),
                    ),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn service_port(port: i32, target: Option<IntOrString>, protocol: &str) -> ServicePort {
        ServicePort {
            port,
            target_port: target,
            protocol: Some(protocol.into()),
            ..Default::default()
        }
    }

    #[test]
    fn target_ports_resolve_like_find_port() {
        let pod = pod_with_ports(&[("http", 8080, "TCP"), ("dns", 53, "UDP")]);
        assert_eq!(find_port(&pod, &service_port(80, None, "TCP")), Some(80));
        assert_eq!(
            find_port(&pod, &service_port(80, Some(IntOrString::Int(9000)), "TCP")),
            Some(9000)
        );
        assert_eq!(
            find_port(&pod, &service_port(80, Some(IntOrString::String("http".into())), "TCP")),
            Some(8080)
        );
        assert_eq!(
            find_port(&pod, &service_port(53, Some(IntOrString::String("dns".into())), "TCP")),
            None,
            "protocol must match"
        );
        assert_eq!(
            find_port(
                &pod,
                &service_port(80, Some(IntOrString::String("missing".into())), "TCP")
            ),
            None
        );
    }

    #[test]
    fn families_and_ips() {
        assert_eq!(ip_family("10.0.0.1"), Some("IPv4"));
        assert_eq!(ip_family("fd00::1"), Some("IPv6"));
        assert_eq!(ip_family("nope"), None);
        assert_eq!(service_families(&Service::default()), vec!["IPv4"]);
    }
}
