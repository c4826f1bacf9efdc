//! Table tests for the endpointslice decision: Service + pods (+ existing slices) → slices.

use std::collections::HashMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Container, ContainerPort, PodIP, PodSpec, Service, ServicePort, ServiceSpec};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::decide::*;
use crate::util::testing::*;
use k8s_openapi::api::core::v1::Pod;

fn service(ports: Vec<ServicePort>, publish_not_ready: bool) -> Service {
    Service {
        metadata: ObjectMeta {
            name: Some("web".into()),
            namespace: Some("ns".into()),
            uid: Some("uid-svc".into()),
            ..Default::default()
        },
        spec: Some(ServiceSpec {
            selector: Some([("app".to_string(), "web".to_string())].into()),
            ports: Some(ports),
            publish_not_ready_addresses: Some(publish_not_ready),
            cluster_ip: Some("10.96.0.10".into()),
            ..Default::default()
        }),
        status: None,
    }
}

fn port(name: &str, port: i32, target: IntOrString) -> ServicePort {
    ServicePort {
        name: Some(name.into()),
        port,
        target_port: Some(target),
        protocol: Some("TCP".into()),
        ..Default::default()
    }
}

/// A web pod with `ip` (none if empty) and container ports.
fn web(name: &str, ip: &str, container_ports: &[(&str, i32)]) -> Pod {
    let mut pod = pod(name, &[("app", "web")], 10);
    pod.spec = Some(PodSpec {
        node_name: Some("node-a".into()),
        containers: vec![Container {
            name: "c".into(),
            ports: Some(
                container_ports
                    .iter()
                    .map(|(name, number)| ContainerPort {
                        name: Some(name.to_string()),
                        container_port: *number,
                        ..Default::default()
                    })
                    .collect(),
            ),
            ..Default::default()
        }],
        ..Default::default()
    });
    if !ip.is_empty() {
        let status = pod.status.get_or_insert_with(Default::default);
        status.pod_ip = Some(ip.into());
        status.pod_ips = Some(vec![PodIP { ip: ip.into() }]);
    }
    pod
}

fn made_ready(pod: Pod) -> Pod {
    let ip = pod.status.as_ref().and_then(|status| status.pod_ip.clone());
    let mut pod = ready(pod, 5);
    pod.spec.as_mut().expect("spec").node_name = Some("node-a".into());
    let status = pod.status.as_mut().expect("status");
    status.pod_ip = ip.clone();
    status.pod_ips = ip.map(|ip| vec![PodIP { ip }]);
    pod
}

fn terminating(mut pod: Pod) -> Pod {
    pod.metadata.deletion_timestamp = Some(ago(1));
    pod
}

fn zones() -> HashMap<String, String> {
    [("node-a".to_string(), "zone-1".to_string())].into()
}

/// (pod name, ready, serving, terminating) per endpoint of each slice, and each slice's ports.
type Summary = Vec<(Vec<(i32, String)>, Vec<(String, bool, bool, bool)>)>;

fn summary(slices: &[EndpointSlice]) -> Summary {
    slices
        .iter()
        .map(|slice| {
            let ports = slice
                .ports
                .iter()
                .flatten()
                .map(|port| (port.port.unwrap_or(0), port.name.clone().unwrap_or_default()))
                .collect();
            let endpoints = slice
                .endpoints
                .iter()
                .flatten()
                .map(|endpoint| {
                    let conditions = endpoint.conditions.clone().unwrap_or_default();
                    (
                        endpoint
                            .target_ref
                            .as_ref()
                            .and_then(|r| r.name.clone())
                            .unwrap_or_default(),
                        conditions.ready == Some(true),
                        conditions.serving == Some(true),
                        conditions.terminating == Some(true),
                    )
                })
                .collect();
            (ports, endpoints)
        })
        .collect()
}

fn s(text: &str) -> String {
    text.to_string()
}

#[test]
fn table() {
    let numbered = || service(vec![port("http", 80, IntOrString::Int(8080))], false);
    let named = || service(vec![port("http", 80, IntOrString::String("web".into()))], false);
    let cases: Vec<(&str, Service, Vec<Pod>, Summary)> = vec![
        (
            "conditions follow readiness and termination; pods without IP are skipped",
            numbered(),
            vec![
                made_ready(web("a", "10.0.0.1", &[])),
                web("b", "10.0.0.2", &[]),
                terminating(made_ready(web("c", "10.0.0.3", &[]))),
                web("no-ip", "", &[]),
                pod("other", &[("app", "db")], 1),
            ],
            vec![(
                vec![(8080, s("http"))],
                vec![
                    (s("a"), true, true, false),
                    (s("b"), false, false, false),
                    (s("c"), false, true, true),
                ],
            )],
        ),
        (
            "publishNotReadyAddresses makes every endpoint ready",
            service(vec![port("http", 80, IntOrString::Int(8080))], true),
            vec![web("b", "10.0.0.2", &[]), terminating(web("c", "10.0.0.3", &[]))],
            vec![(
                vec![(8080, s("http"))],
                vec![(s("b"), true, true, false), (s("c"), true, true, true)],
            )],
        ),
        (
            "named target ports resolve per pod; a pod lacking the name gets a slice without the port",
            named(),
            vec![
                made_ready(web("a", "10.0.0.1", &[("web", 8080)])),
                made_ready(web("b", "10.0.0.2", &[("web", 9090)])),
                made_ready(web("c", "10.0.0.3", &[("other", 7070)])),
            ],
            vec![
                (vec![], vec![(s("c"), true, true, false)]),
                (vec![(8080, s("http"))], vec![(s("a"), true, true, false)]),
                (vec![(9090, s("http"))], vec![(s("b"), true, true, false)]),
            ],
        ),
        (
            "no endpoints: one placeholder slice",
            numbered(),
            vec![web("no-ip", "", &[])],
            vec![(vec![], vec![])],
        ),
    ];
    for (name, service, pods, expected) in cases {
        let pods: Vec<Arc<Pod>> = pods.into_iter().map(Arc::new).collect();
        let plan = decide(&service, &pods, &zones(), &[]);
        assert!(plan.update.is_empty() && plan.delete.is_empty(), "{name}");
        assert_eq!(summary(&plan.create), expected, "{name}");
    }
}

#[test]
fn slices_carry_labels_owner_topology_and_target_refs() {
    let service = service(vec![port("http", 80, IntOrString::Int(8080))], false);
    let pods = vec![Arc::new(made_ready(web("a", "10.0.0.1", &[])))];
    let plan = decide(&service, &pods, &zones(), &[]);
    let slice = &plan.create[0];
    assert_eq!(slice.metadata.generate_name.as_deref(), Some("web-"));
    assert_eq!(slice.address_type, "IPv4");
    let labels = slice.metadata.labels.clone().unwrap_or_default();
    assert_eq!(labels.get(SERVICE_NAME_LABEL).map(String::as_str), Some("web"));
    assert_eq!(labels.get(MANAGED_BY_LABEL).map(String::as_str), Some(MANAGED_BY));
    let owner = &slice.metadata.owner_references.as_ref().expect("owner")[0];
    assert_eq!((owner.kind.as_str(), owner.uid.as_str()), ("Service", "uid-svc"));
    let endpoint = &slice.endpoints.as_ref().expect("endpoints")[0];
    assert_eq!(endpoint.addresses, vec!["10.0.0.1"]);
    assert_eq!(endpoint.node_name.as_deref(), Some("node-a"));
    assert_eq!(endpoint.zone.as_deref(), Some("zone-1"));
    let target = endpoint.target_ref.as_ref().expect("target ref");
    assert_eq!(target.kind.as_deref(), Some("Pod"));
    assert_eq!(target.uid.as_deref(), Some("uid-a"));
}

/// Names a created slice as the apiserver would, with a resourceVersion.
fn stored(mut slice: EndpointSlice, name: &str) -> EndpointSlice {
    slice.metadata.name = Some(name.into());
    slice.metadata.uid = Some(format!("uid-{name}"));
    slice.metadata.resource_version = Some("1".into());
    slice
}

#[test]
fn existing_slices_are_updated_filled_split_and_deleted() {
    let service = service(vec![port("http", 80, IntOrString::Int(8080))], false);
    let pods: Vec<Arc<Pod>> = (0..150)
        .map(|i| {
            Arc::new(web(
                &format!("p{i:03}"),
                &format!("10.0.{}.{}", i / 200, i % 200 + 1),
                &[],
            ))
        })
        .collect();
    let plan = decide(&service, &pods, &zones(), &[]);
    assert_eq!(plan.create.len(), 2, "150 endpoints need two slices");
    assert_eq!(
        plan.create[0].endpoints.as_ref().map(Vec::len),
        Some(MAX_ENDPOINTS_PER_SLICE)
    );
    let existing: Vec<EndpointSlice> = plan
        .create
        .into_iter()
        .enumerate()
        .map(|(i, slice)| stored(slice, &format!("web-{i}")))
        .collect();
    let refs: Vec<&EndpointSlice> = existing.iter().collect();

    // Steady state: nothing to do.
    assert_eq!(decide(&service, &pods, &zones(), &refs), Plan::default());

    // One pod becomes ready: only its slice is updated.
    let mut changed = pods.clone();
    changed[120] = Arc::new(made_ready(web("p120", "10.0.0.121", &[])));
    let plan = decide(&service, &changed, &zones(), &refs);
    assert!(plan.create.is_empty() && plan.delete.is_empty());
    assert_eq!(plan.update.len(), 1);
    assert_eq!(plan.update[0].metadata.name.as_deref(), Some("web-1"));

    // Pods of the second slice go away: it is deleted; a new pod fills the first slice's gap.
    let mut fewer: Vec<Arc<Pod>> = pods[..99].to_vec();
    fewer.push(Arc::new(web("zzz", "10.0.9.9", &[])));
    let plan = decide(&service, &fewer, &zones(), &refs);
    assert!(plan.create.is_empty());
    assert_eq!(plan.delete.len(), 1);
    assert_eq!(plan.delete[0].metadata.name.as_deref(), Some("web-1"));
    assert_eq!(plan.update.len(), 1);
    assert_eq!(plan.update[0].endpoints.as_ref().map(Vec::len), Some(100));

    // A Service without selector is left alone.
    let mut manual = service.clone();
    manual.spec.as_mut().expect("spec").selector = None;
    assert_eq!(decide(&manual, &pods, &zones(), &refs), Plan::default());
}
