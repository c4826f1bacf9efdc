//! The Node object: registration, status (capacity, allocatable, conditions, addresses,
//! nodeInfo) and the heartbeat Lease in `kube-node-lease`.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::api::core::v1::{
    DaemonEndpoint, Node, NodeAddress, NodeCondition, NodeDaemonEndpoints, NodeSpec, NodeStatus, NodeSystemInfo, Taint,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta, OwnerReference, Time};
use kube::api::{Api, Patch, PatchParams, PostParams};
use tokio_util::sync::CancellationToken;

use crate::machine::Machine;

/// The version the kubelet reports (`kubectl get nodes` VERSION column).
pub const KUBELET_VERSION: &str = "v1.37.0-kaji";
/// The runtime the kubelet reports in nodeInfo.
pub const RUNTIME_VERSION: &str = concat!("kaji://", env!("CARGO_PKG_VERSION"));
/// Upstream's lease duration for node heartbeats.
pub const LEASE_DURATION_SECONDS: i32 = 40;

/// Registration settings, from flags.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    pub name: String,
    pub address: IpAddr,
    pub port: u16,
    pub max_pods: i64,
    /// `kube-reserved` + `system-reserved`, per resource, in milli-units.
    pub reserved_milli: BTreeMap<String, i128>,
    pub labels: Vec<(String, String)>,
    pub taints: Vec<Taint>,
}

/// Hard eviction thresholds that upstream subtracts from allocatable (memory.available 100Mi,
/// nodefs.available 10 %).
const EVICTION_MEMORY_BYTES: u64 = 100 * 1024 * 1024;

/// The node's status as observed now; `ready` holds why pods cannot run yet (the pod network).
pub fn node_status(config: &NodeConfig, machine: &Machine, ready: Result<(), &str>, now: &Time) -> NodeStatus {
    let mut capacity = BTreeMap::new();
    capacity.insert("cpu".to_string(), Quantity(machine.cpus.to_string()));
    capacity.insert(
        "memory".to_string(),
        Quantity(format!("{}Ki", machine.memory_bytes / 1024)),
    );
    capacity.insert(
        "ephemeral-storage".to_string(),
        Quantity(format!("{}Ki", machine.disk_bytes / 1024)),
    );
    capacity.insert("pods".to_string(), Quantity(config.max_pods.to_string()));

    let reserved = |name: &str| config.reserved_milli.get(name).copied().unwrap_or(0).max(0);
    let cpu_milli = (i128::from(machine.cpus) * 1000 - reserved("cpu")).max(0);
    let memory =
        (i128::from(machine.memory_bytes) - reserved("memory") / 1000 - i128::from(EVICTION_MEMORY_BYTES)).max(0);
    let disk = (i128::from(machine.disk_bytes) * 9 / 10 - reserved("ephemeral-storage") / 1000).max(0);
    let mut allocatable = BTreeMap::new();
    allocatable.insert(
        "cpu".to_string(),
        Quantity(if cpu_milli % 1000 == 0 {
            (cpu_milli / 1000).to_string()
        } else {
            format!("{cpu_milli}m")
        }),
    );
    allocatable.insert("memory".to_string(), Quantity(format!("{}Ki", memory / 1024)));
    allocatable.insert("ephemeral-storage".to_string(), Quantity(disk.to_string()));
    allocatable.insert("pods".to_string(), Quantity(config.max_pods.to_string()));

    let condition = |type_: &str, status: bool, reason: &str, message: &str| NodeCondition {
        type_: type_.to_string(),
        status: if status { "True" } else { "False" }.to_string(),
        reason: Some(reason.to_string()),
        message: Some(message.to_string()),
        last_heartbeat_time: Some(now.clone()),
        last_transition_time: Some(now.clone()),
    };
    let memory_pressure = machine.memory_available_bytes < EVICTION_MEMORY_BYTES;
    let disk_pressure = machine.disk_bytes > 0 && machine.disk_available_bytes * 10 < machine.disk_bytes;
    let pid_pressure = machine.pids_in_use * 10 > machine.pid_max * 9;
    let conditions = vec![
        if memory_pressure {
            condition(
                "MemoryPressure",
                true,
                "KubeletHasInsufficientMemory",
                "kubelet has insufficient memory available",
            )
        } else {
            condition(
                "MemoryPressure",
                false,
                "KubeletHasSufficientMemory",
                "kubelet has sufficient memory available",
            )
        },
        if disk_pressure {
            condition(
                "DiskPressure",
                true,
                "KubeletHasDiskPressure",
                "kubelet has disk pressure",
            )
        } else {
            condition(
                "DiskPressure",
                false,
                "KubeletHasNoDiskPressure",
                "kubelet has no disk pressure",
            )
        },
        if pid_pressure {
            condition(
                "PIDPressure",
                true,
                "KubeletHasInsufficientPID",
                "kubelet has insufficient PID available",
            )
        } else {
            condition(
                "PIDPressure",
                false,
                "KubeletHasSufficientPID",
                "kubelet has sufficient PID available",
            )
        },
        match ready {
            Ok(()) => condition("Ready", true, "KubeletReady", "kubelet is posting ready status"),
            Err(why) => condition("Ready", false, "KubeletNotReady", why),
        },
    ];

    NodeStatus {
        capacity: Some(capacity),
        allocatable: Some(allocatable),
        conditions: Some(conditions),
        addresses: Some(vec![
            NodeAddress {
                type_: "InternalIP".to_string(),
                address: config.address.to_string(),
            },
            NodeAddress {
                type_: "Hostname".to_string(),
                address: config.name.clone(),
            },
        ]),
        daemon_endpoints: Some(NodeDaemonEndpoints {
            kubelet_endpoint: Some(DaemonEndpoint {
                port: i32::from(config.port),
            }),
        }),
        node_info: Some(NodeSystemInfo {
            architecture: std::env::consts::ARCH
                .replace("x86_64", "amd64")
                .replace("aarch64", "arm64"),
            boot_id: machine.boot_id.clone(),
            container_runtime_version: RUNTIME_VERSION.to_string(),
            kernel_version: machine.kernel_version.clone(),
            kube_proxy_version: String::new(),
            kubelet_version: KUBELET_VERSION.to_string(),
            machine_id: machine.machine_id.clone(),
            operating_system: "linux".to_string(),
            os_image: machine.os_image.clone(),
            system_uuid: machine.machine_id.clone(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Keeps `lastTransitionTime` of conditions whose status did not change since `previous`.
pub fn carry_transition_times(status: &mut NodeStatus, previous: Option<&NodeStatus>) {
    let Some(previous) = previous.and_then(|p| p.conditions.as_ref()) else {
        return;
    };
    for condition in status.conditions.iter_mut().flatten() {
        if let Some(old) = previous.iter().find(|c| c.type_ == condition.type_)
            && old.status == condition.status
        {
            condition.last_transition_time = old.last_transition_time.clone();
        }
    }
}

/// The Node object the kubelet registers.
pub fn node_object(config: &NodeConfig) -> Node {
    let mut labels = BTreeMap::from([
        ("kubernetes.io/hostname".to_string(), config.name.clone()),
        ("kubernetes.io/os".to_string(), "linux".to_string()),
        ("kubernetes.io/arch".to_string(), "amd64".to_string()),
        ("beta.kubernetes.io/os".to_string(), "linux".to_string()),
        ("beta.kubernetes.io/arch".to_string(), "amd64".to_string()),
    ]);
    labels.extend(config.labels.iter().cloned());
    Node {
        metadata: ObjectMeta {
            name: Some(config.name.clone()),
            labels: Some(labels),
            annotations: Some(BTreeMap::from([(
                "node.alpha.kubernetes.io/ttl".to_string(),
                "0".to_string(),
            )])),
            ..Default::default()
        },
        spec: Some(NodeSpec {
            taints: (!config.taints.is_empty()).then(|| config.taints.clone()),
            ..Default::default()
        }),
        status: None,
    }
}

/// Parses `--register-with-taints` (`key=value:Effect,key:Effect`).
pub fn parse_taints(s: &str) -> Result<Vec<Taint>, String> {
    s.split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(|item| {
            let (kv, effect) = item
                .rsplit_once(':')
                .ok_or_else(|| format!("invalid taint {item:?}: expected key[=value]:Effect"))?;
            if !matches!(effect, "NoSchedule" | "PreferNoSchedule" | "NoExecute") {
                return Err(format!("invalid taint effect {effect:?} in {item:?}"));
            }
            let (key, value) = kv.split_once('=').map_or((kv, None), |(k, v)| (k, Some(v.to_string())));
            if key.is_empty() {
                return Err(format!("invalid taint {item:?}: empty key"));
            }
            Ok(Taint {
                key: key.to_string(),
                value,
                effect: effect.to_string(),
                time_added: None,
            })
        })
        .collect()
}

/// Registers the node (create, or adopt an existing Node of the same name) and posts its first
/// status.
pub async fn register(client: &kube::Client, config: &NodeConfig, machine: &Machine) -> Result<Node, kube::Error> {
    let nodes: Api<Node> = Api::all(client.clone());
    let node = match nodes.create(&PostParams::default(), &node_object(config)).await {
        Ok(node) => node,
        Err(kube::Error::Api(status)) if status.code == 409 => nodes.get(&config.name).await?,
        Err(error) => return Err(error),
    };
    post_status(
        client,
        config,
        machine,
        Err("the kubelet is starting"),
        node.status.as_ref(),
    )
    .await
}

/// Posts the node's status (merge patch of `status`).
pub async fn post_status(
    client: &kube::Client,
    config: &NodeConfig,
    machine: &Machine,
    ready: Result<(), &str>,
    previous: Option<&NodeStatus>,
) -> Result<Node, kube::Error> {
    let nodes: Api<Node> = Api::all(client.clone());
    let mut status = node_status(config, machine, ready, &Time(jiff::Timestamp::now()));
    carry_transition_times(&mut status, previous);
    let patch = serde_json::json!({ "status": status });
    nodes
        .patch_status(&config.name, &PatchParams::default(), &Patch::Strategic(&patch))
        .await
}

/// Renews the node's Lease every 10 s (creating it when missing) and posts node status every
/// `status_every`, until `cancel`.
pub async fn heartbeat(
    client: kube::Client,
    config: NodeConfig,
    network: std::sync::Arc<crate::network::PodNetworking>,
    root_dir: std::path::PathBuf,
    status_every: Duration,
    cancel: CancellationToken,
) {
    let mut last_status: Option<NodeStatus> = None;
    let mut node_uid: Option<String> = None;
    let mut lease_tick = tokio::time::interval(Duration::from_secs(10));
    let mut status_tick = tokio::time::interval(status_every);
    let mut network_changed = network.subscribe();
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            Ok(()) = network_changed.changed() => status_tick.reset_immediately(),
            _ = lease_tick.tick() => {
                if let Err(error) = renew_lease(&client, &config.name, node_uid.as_deref()).await {
                    tracing::warn!(%error, "renewing the node lease");
                }
            }
            _ = status_tick.tick() => {
                let machine = Machine::read(&root_dir);
                let ready = network.ready();
                match post_status(&client, &config, &machine, ready.as_ref().map(|_| ()).map_err(String::as_str), last_status.as_ref()).await {
                    Ok(node) => {
                        node_uid = node.metadata.uid.clone();
                        last_status = node.status;
                    }
                    Err(error) => tracing::warn!(%error, "posting node status"),
                }
            }
        }
    }
}

/// Creates or renews the Lease `kube-node-lease/<node>`.
pub async fn renew_lease(client: &kube::Client, node: &str, node_uid: Option<&str>) -> Result<Lease, kube::Error> {
    let leases: Api<Lease> = Api::namespaced(client.clone(), "kube-node-lease");
    let now = MicroTime(jiff::Timestamp::now());
    match leases.get_opt(node).await? {
        Some(mut lease) => {
            let spec = lease.spec.get_or_insert_with(Default::default);
            spec.holder_identity = Some(node.to_string());
            spec.lease_duration_seconds = Some(LEASE_DURATION_SECONDS);
            spec.renew_time = Some(now);
            leases.replace(node, &PostParams::default(), &lease).await
        }
        None => {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(node.to_string()),
                    namespace: Some("kube-node-lease".to_string()),
                    owner_references: node_uid.map(|uid| {
                        vec![OwnerReference {
                            api_version: "v1".to_string(),
                            kind: "Node".to_string(),
                            name: node.to_string(),
                            uid: uid.to_string(),
                            ..Default::default()
                        }]
                    }),
                    ..Default::default()
                },
                spec: Some(LeaseSpec {
                    holder_identity: Some(node.to_string()),
                    lease_duration_seconds: Some(LEASE_DURATION_SECONDS),
                    renew_time: Some(now),
                    ..Default::default()
                }),
            };
            leases.create(&PostParams::default(), &lease).await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn machine() -> Machine {
        Machine {
            cpus: 2,
            memory_bytes: 4 * 1024 * 1024 * 1024,
            memory_available_bytes: 2 * 1024 * 1024 * 1024,
            disk_bytes: 100 * 1024 * 1024 * 1024,
            disk_available_bytes: 50 * 1024 * 1024 * 1024,
            kernel_version: "6.1.0".into(),
            os_image: "Debian".into(),
            machine_id: "abc".into(),
            boot_id: "def".into(),
            pid_max: 4_194_304,
            pids_in_use: 100,
        }
    }

    fn config() -> NodeConfig {
        NodeConfig {
            name: "n1".into(),
            address: "10.0.0.2".parse().unwrap(),
            port: 10250,
            max_pods: 110,
            reserved_milli: BTreeMap::from([("cpu".into(), 100), ("memory".into(), 256 * 1024 * 1024 * 1000)]),
            labels: vec![("role".into(), "worker".into())],
            taints: vec![],
        }
    }

    #[test]
    fn capacity_and_allocatable() {
        let status = node_status(&config(), &machine(), Ok(()), &Time(jiff::Timestamp::UNIX_EPOCH));
        let capacity = status.capacity.unwrap();
        assert_eq!(capacity["cpu"].0, "2");
        assert_eq!(capacity["memory"].0, "4194304Ki");
        assert_eq!(capacity["pods"].0, "110");
        let allocatable = status.allocatable.unwrap();
        assert_eq!(allocatable["cpu"].0, "1900m");
        // 4Gi - 256Mi reserved - 100Mi eviction threshold
        assert_eq!(allocatable["memory"].0, format!("{}Ki", (4096 - 256 - 100) * 1024));
        let conditions = status.conditions.unwrap();
        let ready = conditions.iter().find(|c| c.type_ == "Ready").unwrap();
        assert_eq!(ready.status, "True");
        assert_eq!(ready.reason.as_deref(), Some("KubeletReady"));
        assert_eq!(status.daemon_endpoints.unwrap().kubelet_endpoint.unwrap().port, 10250);
        assert_eq!(status.node_info.unwrap().kubelet_version, KUBELET_VERSION);
    }

    #[test]
    fn pressure_conditions_follow_the_machine() {
        let mut m = machine();
        m.memory_available_bytes = 1024;
        m.disk_available_bytes = 1;
        let status = node_status(&config(), &m, Err("not ready"), &Time(jiff::Timestamp::UNIX_EPOCH));
        let by_type = |t: &str| {
            status
                .conditions
                .as_ref()
                .unwrap()
                .iter()
                .find(|c| c.type_ == t)
                .unwrap()
                .clone()
        };
        assert_eq!(by_type("MemoryPressure").status, "True");
        assert_eq!(by_type("DiskPressure").status, "True");
        assert_eq!(by_type("PIDPressure").status, "False");
        assert_eq!(by_type("Ready").status, "False");
    }

    #[test]
    fn transition_times_are_kept_while_status_holds() {
        let old = node_status(&config(), &machine(), Ok(()), &Time(jiff::Timestamp::UNIX_EPOCH));
        let later = Time(jiff::Timestamp::from_second(1000).unwrap());
        let mut new = node_status(&config(), &machine(), Err("not ready"), &later);
        carry_transition_times(&mut new, Some(&old));
        let conditions = new.conditions.unwrap();
        let memory = conditions.iter().find(|c| c.type_ == "MemoryPressure").unwrap();
        assert_eq!(
            memory.last_transition_time.as_ref().unwrap().0,
            jiff::Timestamp::UNIX_EPOCH
        );
        assert_eq!(memory.last_heartbeat_time.as_ref().unwrap().0, later.0);
        let ready = conditions.iter().find(|c| c.type_ == "Ready").unwrap();
        assert_eq!(ready.last_transition_time.as_ref().unwrap().0, later.0);
    }

    #[test]
    fn taints_parse_like_upstream() {
        let taints =
            parse_taints("dedicated=gpu:NoSchedule, node-role.kubernetes.io/control-plane:NoSchedule").unwrap();
        assert_eq!(taints.len(), 2);
        assert_eq!(taints[0].value.as_deref(), Some("gpu"));
        assert_eq!(taints[1].key, "node-role.kubernetes.io/control-plane");
        assert!(parse_taints("a=b:Sometimes").is_err());
        assert!(parse_taints("nokey").is_err());
    }

    #[test]
    fn node_object_has_standard_labels() {
        let node = node_object(&config());
        let labels = node.metadata.labels.unwrap();
        assert_eq!(labels["kubernetes.io/hostname"], "n1");
        assert_eq!(labels["role"], "worker");
    }
}
