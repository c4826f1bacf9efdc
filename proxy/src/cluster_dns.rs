//! The node-local cluster DNS server that kube-proxy runs beside its proxier. It serves the
//! cluster domain on the node's address, port 53, and publishes itself as this node's endpoint
//! of the `kube-system/kube-dns` Service. That Service has `internalTrafficPolicy: Local`, so the
//! proxier on each node sends the pods' queries to the DNS ClusterIP to their own node's server.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Node, Service, ServicePort, ServiceSpec};
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions, EndpointPort, EndpointSlice};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::Api;
use kube::api::{ObjectMeta, PostParams};
use tokio_util::sync::CancellationToken;

/// The namespace and name of the DNS Service, as in every Kubernetes cluster.
pub const NAMESPACE: &str = "kube-system";
pub const SERVICE: &str = "kube-dns";
/// `endpointslice.kubernetes.io/managed-by` of the slices kube-proxy publishes.
pub const MANAGED_BY: &str = "kube-proxy.kaji.dev";

/// What the DNS server needs to know.
#[derive(Clone, Debug)]
pub struct DnsOptions {
    /// The DNS Service's ClusterIP (the kubelet's `--cluster-dns`).
    pub cluster_ip: Ipv4Addr,
    pub domain: String,
    pub node_name: String,
    /// Where the node's upstream resolvers are listed.
    pub resolv_conf: PathBuf,
}

/// Failures while setting the DNS server up.
#[derive(Debug, thiserror::Error)]
pub enum DnsError {
    #[error("the API: {0}")]
    Api(#[from] kube::Error),
    #[error("cluster DNS: {0}")]
    Server(#[from] dns::Error),
}

/// Runs the node's DNS server until `cancel`; its endpoint is withdrawn on the way out.
pub async fn run(client: kube::Client, options: DnsOptions, cancel: CancellationToken) -> Result<(), DnsError> {
    let node = loop {
        match node_address(&client, &options.node_name).await {
            Ok(Some(found)) => break found,
            Ok(None) => tracing::info!(node = %options.node_name, "waiting for the node's InternalIP"),
            Err(error) => tracing::warn!(%error, "reading the node"),
        }
        tokio::select! {
            _ = cancel.cancelled() => return Ok(()),
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    };
    let (node_ip, node_uid) = node;
    let upstreams = dns::upstreams_from_resolv_conf(
        &options.resolv_conf,
        &[IpAddr::V4(node_ip), IpAddr::V4(options.cluster_ip)],
    );
    let config = dns::DnsConfig {
        listen: vec![SocketAddr::from((node_ip, 53))],
        domain: options.domain.clone(),
        upstreams,
    };
    let server = tokio::spawn(dns::serve(config, client.clone(), cancel.clone().cancelled_owned()));
    ensure_service(&client, options.cluster_ip).await?;
    let slices: Api<EndpointSlice> = Api::namespaced(client.clone(), NAMESPACE);
    let slice = endpoint_slice(&options.node_name, &node_uid, node_ip);
    let name = slice.metadata.name.clone().unwrap_or_default();
    publish(&slices, &slice).await?;
    let result = match server.await {
        Ok(result) => result.map_err(DnsError::from),
        Err(error) => {
            tracing::error!(%error, "the DNS server task ended");
            Ok(())
        }
    };
    if let Err(error) = slices.delete(&name, &Default::default()).await {
        tracing::warn!(%error, "withdrawing the node's DNS endpoint");
    }
    result
}

/// The node's InternalIP (IPv4) and UID, once it has them.
async fn node_address(client: &kube::Client, node_name: &str) -> Result<Option<(Ipv4Addr, String)>, kube::Error> {
    let Some(node) = Api::<Node>::all(client.clone()).get_opt(node_name).await? else {
        return Ok(None);
    };
    let ip = node
        .status
        .as_ref()
        .and_then(|s| s.addresses.as_ref())
        .into_iter()
        .flatten()
        .filter(|a| a.type_ == "InternalIP")
        .find_map(|a| a.address.parse::<Ipv4Addr>().ok());
    Ok(ip.zip(node.metadata.uid))
}

/// Creates the DNS Service when it is missing (an existing one is left as it is).
async fn ensure_service(client: &kube::Client, cluster_ip: Ipv4Addr) -> Result<(), kube::Error> {
    let services: Api<Service> = Api::namespaced(client.clone(), NAMESPACE);
    if services.get_opt(SERVICE).await?.is_some() {
        return Ok(());
    }
    match services.create(&PostParams::default(), &dns_service(cluster_ip)).await {
        Ok(_) => Ok(()),
        // Another node's kube-proxy may have been first: its create wins with 409 (same name) or
        // 422 (the ClusterIP is taken by then).
        Err(error) => match services.get_opt(SERVICE).await? {
            Some(_) => Ok(()),
            None => Err(error),
        },
    }
}

fn dns_ports<T>(make: impl Fn(&str, &str) -> T) -> Vec<T> {
    vec![make("dns", "UDP"), make("dns-tcp", "TCP")]
}

/// `kube-system/kube-dns`: no selector (kube-proxy publishes its endpoints), node-local.
pub fn dns_service(cluster_ip: Ipv4Addr) -> Service {
    Service {
        metadata: ObjectMeta {
            name: Some(SERVICE.into()),
            namespace: Some(NAMESPACE.into()),
            labels: Some(BTreeMap::from([
                ("k8s-app".to_string(), "kube-dns".to_string()),
                ("kubernetes.io/name".to_string(), "CoreDNS".to_string()),
            ])),
            ..Default::default()
        },
        spec: Some(ServiceSpec {
            cluster_ip: Some(cluster_ip.to_string()),
            cluster_ips: Some(vec![cluster_ip.to_string()]),
            internal_traffic_policy: Some("Local".into()),
            ports: Some(dns_ports(|name, protocol| ServicePort {
                name: Some(name.into()),
                protocol: Some(protocol.into()),
                port: 53,
                target_port: Some(k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(53)),
                ..Default::default()
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// This node's endpoint of the DNS Service, owned by the Node (removed with it).
pub fn endpoint_slice(node_name: &str, node_uid: &str, node_ip: Ipv4Addr) -> EndpointSlice {
    EndpointSlice {
        metadata: ObjectMeta {
            name: Some(format!("{SERVICE}-{node_name}")),
            namespace: Some(NAMESPACE.into()),
            labels: Some(BTreeMap::from([
                ("kubernetes.io/service-name".to_string(), SERVICE.to_string()),
                (
                    "endpointslice.kubernetes.io/managed-by".to_string(),
                    MANAGED_BY.to_string(),
                ),
            ])),
            owner_references: Some(vec![OwnerReference {
                api_version: "v1".into(),
                kind: "Node".into(),
                name: node_name.into(),
                uid: node_uid.into(),
                ..Default::default()
            }]),
            ..Default::default()
        },
        address_type: "IPv4".into(),
        endpoints: Some(vec![Endpoint {
            addresses: vec![node_ip.to_string()],
            conditions: Some(EndpointConditions {
                ready: Some(true),
                serving: Some(true),
                terminating: Some(false),
            }),
            node_name: Some(node_name.into()),
            ..Default::default()
        }]),
        ports: Some(dns_ports(|name, protocol| EndpointPort {
            name: Some(name.into()),
            protocol: Some(protocol.into()),
            port: Some(53),
            ..Default::default()
        })),
    }
}

/// Creates or replaces the node's slice.
async fn publish(slices: &Api<EndpointSlice>, slice: &EndpointSlice) -> Result<(), kube::Error> {
    let name = slice.metadata.name.clone().unwrap_or_default();
    match slices.get_opt(&name).await? {
        None => slices.create(&PostParams::default(), slice).await.map(|_| ()),
        Some(existing) => {
            let mut replacement = slice.clone();
            replacement.metadata.resource_version = existing.metadata.resource_version;
            slices
                .replace(&name, &PostParams::default(), &replacement)
                .await
                .map(|_| ())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dns_service_is_node_local_and_the_slice_points_at_this_node() {
        let service = dns_service(Ipv4Addr::new(10, 96, 0, 10));
        let spec = service.spec.expect("spec");
        assert_eq!(spec.internal_traffic_policy.as_deref(), Some("Local"));
        assert!(spec.selector.is_none());
        assert_eq!(spec.cluster_ip.as_deref(), Some("10.96.0.10"));
        let slice = endpoint_slice("n1", "uid-1", Ipv4Addr::new(10, 0, 0, 7));
        assert_eq!(slice.metadata.name.as_deref(), Some("kube-dns-n1"));
        let endpoints = slice.endpoints.expect("endpoints");
        assert_eq!(endpoints[0].node_name.as_deref(), Some("n1"));
        assert_eq!(endpoints[0].addresses, vec!["10.0.0.7".to_string()]);
        let labels = slice.metadata.labels.expect("labels");
        assert_eq!(labels["kubernetes.io/service-name"], "kube-dns");
        assert_eq!(slice.ports.expect("ports").len(), 2);
    }
}
