//! Nodes: roles, taints, lease, conditions, addresses, capacity, system info, and the requests
//! and limits of the non-terminated pods placed on them.

use std::collections::BTreeMap;

use jiff::Zoned;
use serde_json::Value;

use super::common::{
    annotations_multiline, arr, b, labels_multiline, rfc1123z, s, since, str_map, taints_multiline, ts,
};
use super::events::describe_events;
use super::writer::PrefixWriter;
use api::quantity::Quantity;

type ResourceList = BTreeMap<String, Quantity>;

fn resource_list(v: Option<&Value>) -> ResourceList {
    v.and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, q)| Some((k.clone(), Quantity::from_json(q)?)))
                .collect()
        })
        .unwrap_or_default()
}

fn add_list(into: &mut ResourceList, from: &ResourceList) {
    for (k, q) in from {
        into.entry(k.clone()).and_modify(|e| e.add(q)).or_insert(*q);
    }
}

fn max_list(into: &mut ResourceList, from: &ResourceList) {
    for (k, q) in from {
        match into.get_mut(k) {
            Some(e) if q > e => *e = *q,
            Some(_) => {}
            None => {
                into.insert(k.clone(), *q);
            }
        }
    }
}

/// A pod's effective requests or limits (`kind` is `requests` or `limits`): containers summed,
/// init containers as a floor (sidecars added), overhead added, pod-level values winning.
fn pod_resources(pod: &Value, kind: &str) -> ResourceList {
    let mut total = ResourceList::new();
    for c in arr(pod, "/spec/containers") {
        add_list(&mut total, &resource_list(c.pointer(&format!("/resources/{kind}"))));
    }
    let mut sidecars = ResourceList::new();
    let mut init_max = ResourceList::new();
    for c in arr(pod, "/spec/initContainers") {
        let own = resource_list(c.pointer(&format!("/resources/{kind}")));
        let effective = if s(c, "/restartPolicy") == "Always" {
            add_list(&mut total, &own);
            add_list(&mut sidecars, &own);
            sidecars.clone()
        } else {
            let mut tmp = own;
            add_list(&mut tmp, &sidecars);
            tmp
        };
        max_list(&mut init_max, &effective);
    }
    max_list(&mut total, &init_max);
    if kind == "requests" {
        add_list(&mut total, &resource_list(pod.pointer("/spec/overhead")));
    }
    for (k, q) in resource_list(pod.pointer(&format!("/spec/resources/{kind}"))) {
        if k == "cpu" || k == "memory" {
            total.insert(k, q);
        }
    }
    total
}

/// `part / whole * 100` truncated, as Go's float-to-int conversion does on amd64.
fn percent(part: i64, whole: i64) -> i64 {
    let f = part as f64 / whole as f64 * 100.0;
    if f.is_finite() { f as i64 } else { i64::MIN }
}

fn get(list: &ResourceList, k: &str) -> Quantity {
    list.get(k).copied().unwrap_or_default()
}

/// The node's lease as fetched: the object, or the error text of a failed fetch.
pub(crate) type LeaseResult = Result<Value, String>;

/// The report for a node; `pods` is `None` when the caller may not list pods.
pub(crate) fn render_node(
    node: &Value,
    pods: Option<&[Value]>,
    lease: Option<LeaseResult>,
    events: Option<&[Value]>,
    now: &Zoned,
) -> String {
    let mut w = PrefixWriter::new();
    w.write(0, &format!("Name:\t{}\n", s(node, "/metadata/name")));
    let mut roles: Vec<String> = Vec::new();
    for (k, v) in str_map(node, "/metadata/labels") {
        if let Some(role) = k.strip_prefix("node-role.kubernetes.io/") {
            if !role.is_empty() {
                roles.push(role.to_string());
            }
        } else if k == "kubernetes.io/role" && !v.is_empty() {
            roles.push(v.to_string());
        }
    }
    roles.sort();
    roles.dedup();
    let roles = if roles.is_empty() {
        "<none>".to_string()
    } else {
        roles.join(",")
    };
    w.write(0, &format!("Roles:\t{roles}\n"));
    labels_multiline(&mut w, "Labels", &str_map(node, "/metadata/labels"));
    annotations_multiline(&mut w, "Annotations", &str_map(node, "/metadata/annotations"));
    w.write(
        0,
        &format!(
            "CreationTimestamp:\t{}\n",
            rfc1123z(ts(node, "/metadata/creationTimestamp"), now)
        ),
    );
    taints_multiline(&mut w, "Taints", arr(node, "/spec/taints"));
    w.write(0, &format!("Unschedulable:\t{}\n", b(node, "/spec/unschedulable")));
    match lease {
        Some(Ok(l)) => {
            w.write(0, "Lease:\n");
            let holder = l
                .pointer("/spec/holderIdentity")
                .and_then(Value::as_str)
                .unwrap_or("<unset>");
            w.write(1, &format!("HolderIdentity:\t{holder}\n"));
            for (label, ptr) in [("AcquireTime", "/spec/acquireTime"), ("RenewTime", "/spec/renewTime")] {
                let t = ts(&l, ptr).map(|t| rfc1123z(Some(t), now));
                w.write(1, &format!("{label}:\t{}\n", t.as_deref().unwrap_or("<unset>")));
            }
        }
        Some(Err(e)) => w.write(0, &format!("Lease:\tFailed to get lease: {e}\n")),
        None => {}
    }
    let conditions = arr(node, "/status/conditions");
    if !conditions.is_empty() {
        w.write(
            0,
            "Conditions:\n  Type\tStatus\tLastHeartbeatTime\tLastTransitionTime\tReason\tMessage\n",
        );
        w.write(
            1,
            "----\t------\t-----------------\t------------------\t------\t-------\n",
        );
        for c in conditions {
            w.write(
                1,
                &format!(
                    "{} \t{} \t{} \t{} \t{} \t{}\n",
                    s(c, "/type"),
                    s(c, "/status"),
                    rfc1123z(ts(c, "/lastHeartbeatTime"), now),
                    rfc1123z(ts(c, "/lastTransitionTime"), now),
                    s(c, "/reason"),
                    s(c, "/message")
                ),
            );
        }
    }
    w.write(0, "Addresses:\n");
    for a in arr(node, "/status/addresses") {
        w.write(1, &format!("{}:\t{}\n", s(a, "/type"), s(a, "/address")));
    }
    let capacity = resource_list(node.pointer("/status/capacity"));
    let allocatable_raw = resource_list(node.pointer("/status/allocatable"));
    for (title, list) in [("Capacity", &capacity), ("Allocatable", &allocatable_raw)] {
        if !list.is_empty() {
            w.write(0, &format!("{title}:\n"));
            for (k, q) in list {
                w.write(0, &format!("  {k}:\t{q}\n"));
            }
        }
    }
    w.write(0, "System Info:\n");
    for (label, key) in [
        ("Machine ID", "machineID"),
        ("System UUID", "systemUUID"),
        ("Boot ID", "bootID"),
        ("Kernel Version", "kernelVersion"),
        ("OS Image", "osImage"),
        ("Operating System", "operatingSystem"),
        ("Architecture", "architecture"),
        ("Container Runtime Version", "containerRuntimeVersion"),
        ("Kubelet Version", "kubeletVersion"),
    ] {
        w.write(
            0,
            &format!("  {label}:\t{}\n", s(node, &format!("/status/nodeInfo/{key}"))),
        );
    }
    let pod_cidr = s(node, "/spec/podCIDR");
    if !pod_cidr.is_empty() {
        w.write(0, &format!("PodCIDR:\t{pod_cidr}\n"));
    }
    let cidrs: Vec<&str> = arr(node, "/spec/podCIDRs").iter().filter_map(Value::as_str).collect();
    if !cidrs.is_empty() {
        w.write(0, &format!("PodCIDRs:\t{}\n", cidrs.join(",")));
    }
    let provider = s(node, "/spec/providerID");
    if !provider.is_empty() {
        w.write(0, &format!("ProviderID:\t{provider}\n"));
    }
    match pods {
        Some(pods) => {
            let allocatable = if allocatable_raw.is_empty() {
                &capacity
            } else {
                &allocatable_raw
            };
            describe_node_resource(pods, allocatable, &mut w, now);
        }
        None => w.write(0, "Pods:\tnot authorized\n"),
    }
    describe_events(events, &mut w, now);
    w.finish()
}

fn describe_node_resource(pods: &[Value], allocatable: &ResourceList, w: &mut PrefixWriter, now: &Zoned) {
    w.write(0, &format!("Non-terminated Pods:\t({} in total)\n", pods.len()));
    w.write(
        1,
        "Namespace\tName\t\tCPU Requests\tCPU Limits\tMemory Requests\tMemory Limits\tAge\n",
    );
    w.write(
        1,
        "---------\t----\t\t------------\t----------\t---------------\t-------------\t---\n",
    );
    let alloc_cpu = get(allocatable, "cpu").milli_value();
    let alloc_mem = get(allocatable, "memory").value();
    let mut reqs = ResourceList::new();
    let mut limits = ResourceList::new();
    for pod in pods {
        let (r, l) = (pod_resources(pod, "requests"), pod_resources(pod, "limits"));
        let (cr, cl, mr, ml) = (get(&r, "cpu"), get(&l, "cpu"), get(&r, "memory"), get(&l, "memory"));
        w.write(
            1,
            &format!(
                "{}\t{}\t\t{} ({}%)\t{} ({}%)\t{} ({}%)\t{} ({}%)\t{}\n",
                s(pod, "/metadata/namespace"),
                s(pod, "/metadata/name"),
                cr,
                percent(cr.milli_value(), alloc_cpu),
                cl,
                percent(cl.milli_value(), alloc_cpu),
                mr,
                percent(mr.value(), alloc_mem),
                ml,
                percent(ml.value(), alloc_mem),
                since(ts(pod, "/metadata/creationTimestamp"), now)
            ),
        );
        add_list(&mut reqs, &r);
        add_list(&mut limits, &l);
    }
    w.write(
        0,
        "Allocated resources:\n  (Total limits may be over 100 percent, i.e., overcommitted.)\n",
    );
    w.write(1, "Resource\tRequests\tLimits\n");
    w.write(1, "--------\t--------\t------\n");
    let guarded = |part: i64, whole: i64| if whole != 0 { percent(part, whole) } else { 0 };
    let row = |w: &mut PrefixWriter, name: &str, milli: bool| {
        let (r, l, a) = (get(&reqs, name), get(&limits, name), get(allocatable, name));
        let (rv, lv, av) = if milli {
            (r.milli_value(), l.milli_value(), a.milli_value())
        } else {
            (r.value(), l.value(), a.value())
        };
        w.write(
            1,
            &format!("{name}\t{r} ({}%)\t{l} ({}%)\n", guarded(rv, av), guarded(lv, av)),
        );
    };
    row(w, "cpu", true);
    row(w, "memory", false);
    row(w, "ephemeral-storage", false);
    let mut huge: Vec<&String> = Vec::new();
    let mut ext: Vec<&String> = Vec::new();
    for k in allocatable.keys() {
        if k.starts_with("hugepages-") {
            huge.push(k);
        } else if !is_standard_container_resource(k) && k != "pods" {
            ext.push(k);
        }
    }
    for k in huge {
        row(w, k, false);
    }
    for k in ext {
        w.write(1, &format!("{k}\t{}\t{}\n", get(&reqs, k), get(&limits, k)));
    }
}

/// Whether `name` is a standard container resource (cpu, memory, storage, hugepages).
fn is_standard_container_resource(name: &str) -> bool {
    matches!(name, "cpu" | "memory" | "ephemeral-storage") || name.starts_with("hugepages-")
}
