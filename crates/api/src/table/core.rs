//! core/v1 kinds other than pods: namespaces, nodes, services, endpoints, config maps, secrets,
//! events, service accounts, persistent volumes and claims, resource quotas.

use jiff::Timestamp;
use serde_json::Value;

use super::descriptions as d;
use super::format::{age, format_labels, join_host_port, or_none, since};
use super::value::{Read, strings};
use super::{AGE, Column, NAME, Printer, col, wide};
use crate::quantity::canonical as quantity;

const fn printer(columns: &'static [Column], cells: fn(&Value, Timestamp) -> Vec<Value>) -> Printer {
    Printer {
        columns,
        cells,
        null_rows_when_empty: false,
    }
}

/// `value`, or the default decoding would fill in when it is empty.
pub(crate) fn default_str<'a>(value: &'a str, default: &'a str) -> &'a str {
    if value.is_empty() { default } else { value }
}

/// `spec.type`, defaulted to `ClusterIP`.
fn service_type(o: &Value) -> &str {
    default_str(o.str_at(&["spec", "type"]), "ClusterIP")
}

// ---- namespaces ----

pub(crate) static NAMESPACE: Printer = printer(
    &[NAME, col("Status", "string", "The status of the namespace"), AGE],
    |o, now| {
        let phase = default_str(o.str_at(&["status", "phase"]), "Active");
        vec![o.name().into(), phase.into(), age(o, now)]
    },
);

// ---- nodes ----

pub(crate) static NODE: Printer = printer(
    &[
        NAME,
        col("Status", "string", "The status of the node"),
        col("Roles", "string", "The roles of the node"),
        AGE,
        col("Version", "string", d::NODE_KUBELET),
        wide("Internal-IP", "string", d::NODE_ADDRESSES),
        wide("External-IP", "string", d::NODE_ADDRESSES),
        wide("OS-Image", "string", d::NODE_OS_IMAGE),
        wide("Kernel-Version", "string", d::NODE_KERNEL),
        wide("Container-Runtime", "string", d::NODE_RUNTIME),
    ],
    node_cells,
);

fn node_cells(o: &Value, now: Timestamp) -> Vec<Value> {
    // The last Ready condition wins, as upstream keys them by type.
    let ready = o
        .list_at(&["status", "conditions"])
        .iter()
        .rev()
        .find(|c| c.str_at(&["type"]) == "Ready");
    let mut status = vec![match ready {
        Some(c) if c.str_at(&["status"]) == "True" => "Ready",
        Some(_) => "NotReady",
        None => "Unknown",
    }];
    if o.bool_at(&["spec", "unschedulable"]) {
        status.push("SchedulingDisabled");
    }
    let mut roles: Vec<&str> = Vec::new();
    for (k, v) in o.map_at(&["metadata", "labels"]) {
        if let Some(role) = k.strip_prefix("node-role.kubernetes.io/") {
            if !role.is_empty() {
                roles.push(role);
            }
        } else if k == "kubernetes.io/role"
            && let Some(role) = v.as_str().filter(|r| !r.is_empty())
        {
            roles.push(role);
        }
    }
    roles.sort_unstable();
    roles.dedup();
    let address = |kind: &str| {
        o.list_at(&["status", "addresses"])
            .iter()
            .find(|a| a.str_at(&["type"]) == kind)
            .map_or_else(|| "<none>".to_string(), |a| a.str_at(&["address"]).to_string())
    };
    let info = o.at(&["status", "nodeInfo"]);
    let unknown = |s: &str| {
        if s.is_empty() {
            "<unknown>".to_string()
        } else {
            s.to_string()
        }
    };
    let mut kernel = unknown(info.str_at(&["kernelVersion"]));
    let arch = info.str_at(&["architecture"]);
    if !arch.is_empty() {
        kernel = format!("{kernel} ({arch})");
    }
    vec![
        o.name().into(),
        status.join(",").into(),
        or_none(&roles.join(",")).into(),
        age(o, now),
        info.str_at(&["kubeletVersion"]).into(),
        address("InternalIP").into(),
        address("ExternalIP").into(),
        unknown(info.str_at(&["osImage"])).into(),
        kernel.into(),
        unknown(info.str_at(&["containerRuntimeVersion"])).into(),
    ]
}

// ---- services ----

pub(crate) static SERVICE: Printer = printer(
    &[
        NAME,
        col("Type", "string", d::SVC_TYPE),
        col("Cluster-IP", "string", d::SVC_CLUSTER_IP),
        col("External-IP", "string", d::SVC_EXTERNAL_IPS),
        col("Port(s)", "string", d::SVC_PORTS),
        AGE,
        wide("Selector", "string", d::SVC_SELECTOR),
    ],
    service_cells,
);

/// `getServiceExternalIP` (wide, so load-balancer addresses are not clipped).
fn external_ip(o: &Value) -> String {
    let external = strings(o.list_at(&["spec", "externalIPs"]));
    match service_type(o) {
        "ClusterIP" | "NodePort" => or_none(&external.join(",")),
        "LoadBalancer" => {
            let mut lb: Vec<&str> = o
                .list_at(&["status", "loadBalancer", "ingress"])
                .iter()
                .filter_map(|i| {
                    [i.str_at(&["ip"]), i.str_at(&["hostname"])]
                        .into_iter()
                        .find(|s| !s.is_empty())
                })
                .collect();
            lb.sort_unstable();
            lb.dedup();
            lb.extend(external);
            if lb.is_empty() {
                "<pending>".to_string()
            } else {
                lb.join(",")
            }
        }
        "ExternalName" => o.str_at(&["spec", "externalName"]).to_string(),
        _ => "<unknown>".to_string(),
    }
}

fn service_cells(o: &Value, now: Timestamp) -> Vec<Value> {
    // Defaulting fills clusterIPs from clusterIP.
    let cluster_ip = match o.list_at(&["spec", "clusterIPs"]).first() {
        Some(ip) => ip.as_str().unwrap_or("").to_string(),
        None => or_none(o.str_at(&["spec", "clusterIP"])),
    };
    let ports: Vec<String> = o
        .list_at(&["spec", "ports"])
        .iter()
        .map(|p| {
            let (port, node_port, protocol) = (
                p.int_at(&["port"]),
                p.int_at(&["nodePort"]),
                default_str(p.str_at(&["protocol"]), "TCP"),
            );
            if node_port > 0 {
                format!("{port}:{node_port}/{protocol}")
            } else {
                format!("{port}/{protocol}")
            }
        })
        .collect();
    vec![
        o.name().into(),
        service_type(o).into(),
        cluster_ip.into(),
        external_ip(o).into(),
        or_none(&ports.join(",")).into(),
        age(o, now),
        format_labels(o.map_at(&["spec", "selector"])).into(),
    ]
}

// ---- endpoints ----

pub(crate) static ENDPOINTS: Printer = printer(&[NAME, col("Endpoints", "string", d::EP_SUBSETS), AGE], |o, now| {
    vec![o.name().into(), format_endpoints(o).into(), age(o, now)]
});

/// `formatEndpoints`: `ip:port` per address and port, the first three and how many more.
fn format_endpoints(o: &Value) -> String {
    let subsets = o.list_at(&["subsets"]);
    if subsets.is_empty() {
        return "<none>".to_string();
    }
    let mut list: Vec<String> = Vec::new();
    let mut count = 0usize;
    for ss in subsets {
        let addresses = ss.list_at(&["addresses"]);
        let ports = ss.list_at(&["ports"]);
        if ports.is_empty() {
            // Headless services may have no ports.
            count += addresses.len();
            list.extend(
                addresses
                    .iter()
                    .map(|a| a.str_at(&["ip"]).to_string())
                    .take(3 - list.len()),
            );
            continue;
        }
        for port in ports {
            count += addresses.len();
            let n = port.int_at(&["port"]);
            list.extend(
                addresses
                    .iter()
                    .map(|a| join_host_port(a.str_at(&["ip"]), n))
                    .take(3 - list.len()),
            );
        }
    }
    let shown = list.join(",");
    if count > 3 {
        format!("{shown} + {} more...", count - 3)
    } else {
        shown
    }
}

// ---- config maps, secrets, service accounts ----

pub(crate) static CONFIG_MAP: Printer = printer(&[NAME, col("Data", "string", d::CM_DATA), AGE], |o, now| {
    let n = o.map_at(&["data"]).len() + o.map_at(&["binaryData"]).len();
    vec![o.name().into(), n.into(), age(o, now)]
});

pub(crate) static SECRET: Printer = printer(
    &[
        NAME,
        col("Type", "string", d::SECRET_TYPE),
        col("Data", "string", d::SECRET_DATA),
        AGE,
    ],
    |o, now| {
        vec![
            o.name().into(),
            default_str(o.str_at(&["type"]), "Opaque").into(),
            o.map_at(&["data"]).len().into(),
            age(o, now),
        ]
    },
);

pub(crate) static SERVICE_ACCOUNT: Printer =
    printer(&[NAME, col("Secrets", "string", d::SA_SECRETS), AGE], |o, now| {
        vec![o.name().into(), o.list_at(&["secrets"]).len().into(), age(o, now)]
    });

// ---- events ----

pub(crate) static EVENT: Printer = printer(
    &[
        col("Last Seen", "string", d::EV_LAST),
        col("Type", "string", d::EV_TYPE),
        col("Reason", "string", d::EV_REASON),
        col("Object", "string", d::EV_INVOLVED),
        wide("Subobject", "string", d::EV_FIELD_PATH),
        wide("Source", "string", d::EV_SOURCE),
        col("Message", "string", d::EV_MESSAGE),
        wide("First Seen", "string", d::EV_FIRST),
        wide("Count", "string", d::EV_COUNT),
        Column { priority: 1, ..NAME },
    ],
    event_cells,
);

fn first_non_empty<'a>(a: &'a str, b: &'a str) -> &'a str {
    if a.is_empty() { b } else { a }
}

fn event_cells(o: &Value, now: Timestamp) -> Vec<Value> {
    let first_time = o.time_at(&["firstTimestamp"]).or_else(|| o.time_at(&["eventTime"]));
    let first = since(first_time, now);
    let mut last = match o.time_at(&["lastTimestamp"]) {
        Some(t) => since(Some(t), now),
        None => first.clone(),
    };
    let mut count = o.int_at(&["count"]);
    if o.has(&["series"]) {
        last = since(o.time_at(&["series", "lastObservedTime"]), now);
        count = o.int_at(&["series", "count"]);
    } else if count == 0 {
        // Singleton events have no count in the new API.
        count = 1;
    }
    let kind = o.str_at(&["involvedObject", "kind"]).to_lowercase();
    let target = match o.str_at(&["involvedObject", "name"]) {
        "" => kind,
        name => format!("{kind}/{name}"),
    };
    let component = first_non_empty(o.str_at(&["source", "component"]), o.str_at(&["reportingComponent"]));
    let instance = first_non_empty(o.str_at(&["source", "host"]), o.str_at(&["reportingInstance"]));
    let source = if instance.is_empty() {
        component.to_string()
    } else {
        format!("{component}, {instance}")
    };
    vec![
        last.into(),
        o.str_at(&["type"]).into(),
        o.str_at(&["reason"]).into(),
        target.into(),
        o.str_at(&["involvedObject", "fieldPath"]).into(),
        source.into(),
        o.str_at(&["message"]).trim().into(),
        first.into(),
        count.into(),
        o.name().into(),
    ]
}

// ---- persistent volumes and claims ----

/// `helper.GetAccessModesAsString`: RWO, ROX, RWX, RWOP in that order, each once.
fn access_modes(modes: &[Value]) -> String {
    let modes = strings(modes);
    [
        ("ReadWriteOnce", "RWO"),
        ("ReadOnlyMany", "ROX"),
        ("ReadWriteMany", "RWX"),
        ("ReadWriteOncePod", "RWOP"),
    ]
    .iter()
    .filter(|(mode, _)| modes.contains(mode))
    .map(|(_, short)| *short)
    .collect::<Vec<_>>()
    .join(",")
}

/// The storage class: the beta annotation when present, else `spec.storageClassName`.
fn storage_class(o: &Value) -> String {
    match o.at(&["metadata", "annotations", "volume.beta.kubernetes.io/storage-class"]) {
        Value::String(class) => class.clone(),
        _ => o.str_at(&["spec", "storageClassName"]).to_string(),
    }
}

fn unset_or(v: &Value) -> String {
    v.as_str().map_or_else(|| "<unset>".to_string(), str::to_string)
}

/// The phase (defaulted to `Pending`), or `Terminating` while deleting.
fn phase_or_terminating(o: &Value) -> String {
    if o.has(&["metadata", "deletionTimestamp"]) {
        "Terminating".to_string()
    } else {
        default_str(o.str_at(&["status", "phase"]), "Pending").to_string()
    }
}

/// `spec.volumeMode`, defaulted to `Filesystem`.
fn volume_mode(o: &Value) -> String {
    match o.at(&["spec", "volumeMode"]) {
        Value::Null => "Filesystem".to_string(),
        v => unset_or(v),
    }
}

pub(crate) static PERSISTENT_VOLUME: Printer = printer(
    &[
        NAME,
        col("Capacity", "string", d::PV_CAPACITY),
        col("Access Modes", "string", d::PV_ACCESS),
        col("Reclaim Policy", "string", d::PV_RECLAIM),
        col("Status", "string", d::PV_PHASE),
        col("Claim", "string", d::PV_CLAIM),
        col("StorageClass", "string", "StorageClass of the pv"),
        col("VolumeAttributesClass", "string", "VolumeAttributesClass of the pv"),
        col("Reason", "string", d::PV_REASON),
        AGE,
        wide("VolumeMode", "string", d::PV_MODE),
    ],
    |o, now| {
        let claim = if o.has(&["spec", "claimRef"]) {
            format!(
                "{}/{}",
                o.str_at(&["spec", "claimRef", "namespace"]),
                o.str_at(&["spec", "claimRef", "name"])
            )
        } else {
            String::new()
        };
        vec![
            o.name().into(),
            quantity(o.at(&["spec", "capacity", "storage"])).into(),
            access_modes(o.list_at(&["spec", "accessModes"])).into(),
            default_str(o.str_at(&["spec", "persistentVolumeReclaimPolicy"]), "Retain").into(),
            phase_or_terminating(o).into(),
            claim.into(),
            storage_class(o).into(),
            unset_or(o.at(&["spec", "volumeAttributesClassName"])).into(),
            o.str_at(&["status", "reason"]).into(),
            age(o, now),
            volume_mode(o).into(),
        ]
    },
);

pub(crate) static PERSISTENT_VOLUME_CLAIM: Printer = printer(
    &[
        NAME,
        col("Status", "string", d::PVC_PHASE),
        col("Volume", "string", d::PVC_VOLUME),
        col("Capacity", "string", d::PVC_CAPACITY),
        col("Access Modes", "string", d::PVC_ACCESS),
        col("StorageClass", "string", "StorageClass of the pvc"),
        col("VolumeAttributesClass", "string", "VolumeAttributesClass of the pvc"),
        AGE,
        wide("VolumeMode", "string", d::PVC_MODE),
    ],
    |o, now| {
        let volume = o.str_at(&["spec", "volumeName"]);
        let (capacity, modes) = if volume.is_empty() {
            (String::new(), String::new())
        } else {
            (
                quantity(o.at(&["status", "capacity", "storage"])),
                access_modes(o.list_at(&["status", "accessModes"])),
            )
        };
        vec![
            o.name().into(),
            phase_or_terminating(o).into(),
            volume.into(),
            capacity.into(),
            modes.into(),
            storage_class(o).into(),
            unset_or(o.at(&["spec", "volumeAttributesClassName"])).into(),
            age(o, now),
            volume_mode(o).into(),
        ]
    },
);

// ---- resource quotas ----

pub(crate) static RESOURCE_QUOTA: Printer = printer(
    &[
        NAME,
        col(
            "Request",
            "string",
            "Request represents a minimum amount of cpu/memory that a container may consume.",
        ),
        col(
            "Limit",
            "string",
            "Limits control the maximum amount of cpu/memory that a container may use independent of contention on the node.",
        ),
        AGE,
    ],
    |o, now| {
        let hard = o.map_at(&["status", "hard"]);
        let used = o.at(&["status", "used"]);
        let mut names: Vec<&String> = hard.keys().collect();
        names.sort_unstable();
        let (mut requests, mut limits) = (Vec::new(), Vec::new());
        for name in names {
            let entry = format!(
                "{name}: {}/{}",
                quantity(used.get(name.as_str()).unwrap_or(&Value::Null)),
                quantity(hard.get(name.as_str()).unwrap_or(&Value::Null))
            );
            if name.starts_with("limits.") {
                limits.push(entry);
            } else {
                requests.push(entry);
            }
        }
        vec![
            o.name().into(),
            requests.join(", ").into(),
            limits.join(", ").into(),
            age(o, now),
        ]
    },
);
