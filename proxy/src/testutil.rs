//! Fixtures shared by the rule tests of both proxy modes: compact Service and EndpointSlice
//! builders and the snapshot check (`UPDATE_EXPECT=1` rewrites the files under `src/testdata`).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec};
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions, EndpointPort, EndpointSlice};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use crate::model::Config;

pub(crate) fn service(name: &str, ip: &str, edit: impl FnOnce(&mut ServiceSpec)) -> Service {
    let mut spec = ServiceSpec {
        cluster_ip: Some(ip.to_string()),
        type_: Some("ClusterIP".into()),
        ports: Some(vec![ServicePort {
            name: Some("http".into()),
            port: 80,
            protocol: Some("TCP".into()),
            ..Default::default()
        }]),
        ..Default::default()
    };
    edit(&mut spec);
    Service {
        metadata: ObjectMeta {
            namespace: Some("ns".into()),
            name: Some(name.into()),
            ..Default::default()
        },
        spec: Some(spec),
        status: None,
    }
}

/// An endpoint: (ip, ready, serving, terminating, node).
pub(crate) type Ep<'a> = (&'a str, bool, bool, bool, &'a str);

pub(crate) fn slice(service: &str, endpoints: &[Ep<'_>]) -> EndpointSlice {
    EndpointSlice {
        metadata: ObjectMeta {
            namespace: Some("ns".into()),
            name: Some(format!("{service}-abc")),
            labels: Some(BTreeMap::from([(
                "kubernetes.io/service-name".to_string(),
                service.to_string(),
            )])),
            ..Default::default()
        },
        address_type: "IPv4".into(),
        endpoints: Some(
            endpoints
                .iter()
                .map(|(ip, ready, serving, terminating, node)| Endpoint {
                    addresses: vec![ip.to_string()],
                    conditions: Some(EndpointConditions {
                        ready: Some(*ready),
                        serving: Some(*serving),
                        terminating: Some(*terminating),
                    }),
                    node_name: Some(node.to_string()),
                    ..Default::default()
                })
                .collect(),
        ),
        ports: Some(vec![EndpointPort {
            name: Some("http".into()),
            port: Some(8080),
            protocol: Some("TCP".into()),
            ..Default::default()
        }]),
    }
}

pub(crate) fn config() -> Config {
    Config {
        node_name: "node-a".into(),
        cluster_cidr: Some("10.244.0.0/16".into()),
    }
}

pub(crate) const READY_A: Ep<'static> = ("10.244.1.5", true, true, false, "node-a");
pub(crate) const READY_B: Ep<'static> = ("10.244.2.7", true, true, false, "node-b");

pub(crate) fn check(name: &str, actual: &str) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("src/testdata")
        .join(format!("{name}.txt"));
    if std::env::var_os("UPDATE_EXPECT").is_some() {
        let _ = std::fs::create_dir_all(path.parent().unwrap_or(std::path::Path::new(".")));
        let _ = std::fs::write(&path, actual);
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_default();
    assert_eq!(actual, expected, "snapshot {name} differs (UPDATE_EXPECT=1 to rewrite)");
}
