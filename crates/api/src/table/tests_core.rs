//! core/v1 rows other than pods, against the strings upstream prints.

use serde_json::{Value, json};

use super::testutil::{ago, cells, columns, core, def, expect_columns, row_json};

fn meta(name: &str, age_seconds: i64) -> Value {
    json!({"name": name, "namespace": "default", "creationTimestamp": ago(age_seconds)})
}

#[test]
fn namespaces() {
    let ns = core("namespaces");
    expect_columns(ns, "Name,Status,Age");
    let active = json!({"metadata": meta("default", 3 * 86400 + 5 * 3600), "status": {"phase": "Active"}});
    assert_eq!(row_json(ns, &active), json!(["default", "Active", "3d5h"]));
    let mut terminating = active.clone();
    terminating["status"]["phase"] = json!("Terminating");
    assert_eq!(cells(ns, &terminating)[1], "Terminating");
    // Decoding defaults an unset phase to Active.
    assert_eq!(cells(ns, &json!({"metadata": meta("x", 10)}))[1], "Active");
}

fn node(conditions: Value, unschedulable: bool, labels: Value) -> Value {
    json!({
        "metadata": {"name": "node-1", "creationTimestamp": ago(20 * 86400), "labels": labels},
        "spec": {"unschedulable": unschedulable},
        "status": {
            "conditions": conditions,
            "addresses": [{"type": "Hostname", "address": "node-1"}, {"type": "InternalIP", "address": "192.168.1.10"}],
            "nodeInfo": {"kubeletVersion": "v1.37.0", "osImage": "Debian GNU/Linux 12 (bookworm)",
                "kernelVersion": "6.1.0-18-amd64", "containerRuntimeVersion": "containerd://1.7.24",
                "architecture": "amd64"},
        },
    })
}

#[test]
fn nodes() {
    let nodes = core("nodes");
    expect_columns(
        nodes,
        "Name,Status,Roles,Age,Version|Internal-IP,External-IP,OS-Image,Kernel-Version,Container-Runtime",
    );
    let ready = json!([{"type": "MemoryPressure", "status": "False"}, {"type": "Ready", "status": "True"}]);
    let labels = json!({"node-role.kubernetes.io/control-plane": "", "node-role.kubernetes.io/etcd": "true",
        "kubernetes.io/hostname": "node-1"});
    assert_eq!(
        row_json(nodes, &node(ready.clone(), false, labels)),
        json!([
            "node-1",
            "Ready",
            "control-plane,etcd",
            "20d",
            "v1.37.0",
            "192.168.1.10",
            "<none>",
            "Debian GNU/Linux 12 (bookworm)",
            "6.1.0-18-amd64 (amd64)",
            "containerd://1.7.24"
        ])
    );
    let cordoned = node(ready, true, json!({"kubernetes.io/role": "worker"}));
    assert_eq!(
        cells(nodes, &cordoned)[1..3],
        [json!("Ready,SchedulingDisabled"), json!("worker")]
    );
    let not_ready = node(json!([{"type": "Ready", "status": "Unknown"}]), false, json!({}));
    assert_eq!(cells(nodes, &not_ready)[1..3], [json!("NotReady"), json!("<none>")]);
    let unknown = node(json!([]), true, json!(null));
    assert_eq!(cells(nodes, &unknown)[1], "Unknown,SchedulingDisabled");
    let bare = json!({"metadata": {"name": "n"}});
    assert_eq!(
        row_json(nodes, &bare),
        json!([
            "n",
            "Unknown",
            "<none>",
            "<unknown>",
            "",
            "<none>",
            "<none>",
            "<unknown>",
            "<unknown>",
            "<unknown>"
        ])
    );
}

fn service(spec: Value, status: Value) -> Value {
    json!({"metadata": meta("web", 90), "spec": spec, "status": status})
}

#[test]
fn services() {
    let svc = core("services");
    expect_columns(svc, "Name,Type,Cluster-IP,External-IP,Port(s),Age|Selector");
    let cluster_ip = service(
        json!({"type": "ClusterIP", "clusterIP": "10.96.0.10", "clusterIPs": ["10.96.0.10"],
            "ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}],
            "selector": {"k8s-app": "kube-dns", "app": "dns"}}),
        json!({}),
    );
    assert_eq!(
        row_json(svc, &cluster_ip),
        json!([
            "web",
            "ClusterIP",
            "10.96.0.10",
            "<none>",
            "53/UDP,53/TCP",
            "90s",
            "app=dns,k8s-app=kube-dns"
        ])
    );
    let node_port = service(
        json!({"type": "NodePort", "clusterIPs": ["10.96.1.1"],
            "ports": [{"port": 80, "nodePort": 30080, "protocol": "TCP"}, {"port": 443, "protocol": "TCP"}]}),
        json!({}),
    );
    assert_eq!(
        cells(svc, &node_port)[2..5],
        [json!("10.96.1.1"), json!("<none>"), json!("80:30080/TCP,443/TCP")]
    );
    assert_eq!(cells(svc, &node_port)[6], "<none>");
    let pending = service(
        json!({"type": "LoadBalancer", "clusterIPs": ["10.96.2.2"], "ports": [{"port": 80, "nodePort": 31000, "protocol": "TCP"}]}),
        json!({"loadBalancer": {}}),
    );
    assert_eq!(cells(svc, &pending)[3], "<pending>");
    let lb = service(
        json!({"type": "LoadBalancer", "clusterIPs": ["10.96.2.2"], "externalIPs": ["1.2.3.4"]}),
        json!({"loadBalancer": {"ingress": [{"ip": "203.0.113.9"}, {"hostname": "lb.example.com"}, {"ip": "203.0.113.9"}]}}),
    );
    assert_eq!(cells(svc, &lb)[3], "203.0.113.9,lb.example.com,1.2.3.4");
    assert_eq!(cells(svc, &lb)[4], "<none>");
    let external = service(
        json!({"type": "ExternalName", "externalName": "db.example.com"}),
        json!({}),
    );
    assert_eq!(cells(svc, &external)[2..4], [json!("<none>"), json!("db.example.com")]);
    let headless = service(
        json!({"clusterIP": "None", "externalIPs": ["5.6.7.8", "9.9.9.9"], "ports": [{"port": 8080}]}),
        json!({}),
    );
    // Decoding defaults the type, clusterIPs and the protocol.
    assert_eq!(
        cells(svc, &headless)[1..5],
        [
            json!("ClusterIP"),
            json!("None"),
            json!("5.6.7.8,9.9.9.9"),
            json!("8080/TCP")
        ]
    );
}

#[test]
fn endpoints() {
    let ep = core("endpoints");
    expect_columns(ep, "Name,Endpoints,Age");
    let none = json!({"metadata": meta("web", 60)});
    assert_eq!(row_json(ep, &none), json!(["web", "<none>", "60s"]));
    let many = json!({"metadata": meta("web", 60), "subsets": [
        {"addresses": [{"ip": "10.0.0.1"}, {"ip": "10.0.0.2"}], "ports": [{"port": 80}, {"port": 443}]},
        {"addresses": [{"ip": "10.0.0.3"}], "ports": [{"port": 8080}]},
    ]});
    assert_eq!(cells(ep, &many)[1], "10.0.0.1:80,10.0.0.2:80,10.0.0.1:443 + 2 more...");
    let headless =
        json!({"metadata": meta("db", 60), "subsets": [{"addresses": [{"ip": "10.0.0.9"}, {"ip": "fd00::1"}]}]});
    assert_eq!(cells(ep, &headless)[1], "10.0.0.9,fd00::1");
    let v6 =
        json!({"metadata": meta("v6", 60), "subsets": [{"addresses": [{"ip": "fd00::1"}], "ports": [{"port": 53}]}]});
    assert_eq!(cells(ep, &v6)[1], "[fd00::1]:53");
    let empty_subset = json!({"metadata": meta("e", 60), "subsets": [{"notReadyAddresses": [{"ip": "10.0.0.1"}]}]});
    assert_eq!(cells(ep, &empty_subset)[1], "");
}

#[test]
fn config_maps_secrets_service_accounts() {
    let cm = core("configmaps");
    expect_columns(cm, "Name,Data,Age");
    let obj = json!({"metadata": meta("kube-root-ca.crt", 7200), "data": {"ca.crt": "x", "b": "y"}, "binaryData": {"c": "AA=="}});
    assert_eq!(row_json(cm, &obj), json!(["kube-root-ca.crt", 3, "120m"]));
    assert_eq!(cells(cm, &json!({"metadata": meta("e", 1)}))[1], 0);

    let secret = core("secrets");
    expect_columns(secret, "Name,Type,Data,Age");
    let tls = json!({"metadata": meta("tls", 30), "type": "kubernetes.io/tls", "data": {"tls.crt": "", "tls.key": ""}});
    assert_eq!(row_json(secret, &tls), json!(["tls", "kubernetes.io/tls", 2, "30s"]));
    assert_eq!(
        cells(secret, &json!({"metadata": meta("o", 30)}))[1..3],
        [json!("Opaque"), json!(0)]
    );

    let sa = core("serviceaccounts");
    expect_columns(sa, "Name,Secrets,Age");
    let obj = json!({"metadata": meta("default", 600), "secrets": [{"name": "default-token"}]});
    assert_eq!(row_json(sa, &obj), json!(["default", 1, "10m"]));
}

fn event_columns() -> Vec<(String, i64)> {
    [
        ("Last Seen", 0),
        ("Type", 0),
        ("Reason", 0),
        ("Object", 0),
        ("Subobject", 1),
        ("Source", 1),
        ("Message", 0),
        ("First Seen", 1),
        ("Count", 1),
        ("Name", 1),
    ]
    .iter()
    .map(|(n, p)| (n.to_string(), *p))
    .collect()
}

#[test]
fn core_events() {
    let ev = core("events");
    assert_eq!(columns(ev), event_columns());
    let obj = json!({
        "metadata": meta("web-1.17a", 3600),
        "involvedObject": {"kind": "Pod", "name": "web-1", "namespace": "default", "fieldPath": "spec.containers{app}"},
        "reason": "BackOff", "message": "Back-off restarting failed container\n", "type": "Warning",
        "source": {"component": "kubelet", "host": "node-1"},
        "firstTimestamp": ago(3600), "lastTimestamp": ago(125), "count": 14,
    });
    assert_eq!(
        row_json(ev, &obj),
        json!([
            "2m5s",
            "Warning",
            "BackOff",
            "pod/web-1",
            "spec.containers{app}",
            "kubelet, node-1",
            "Back-off restarting failed container",
            "60m",
            14,
            "web-1.17a"
        ])
    );
    // A new-style event: eventTime only, reporting controller, no count.
    let new_style = json!({
        "metadata": meta("n.1", 5),
        "involvedObject": {"kind": "Node"},
        "reason": "Starting", "message": "", "type": "Normal",
        "eventTime": "2025-06-01T11:59:50.123456Z",
        "reportingComponent": "kube-proxy", "reportingInstance": "",
    });
    assert_eq!(
        row_json(ev, &new_style),
        json!(["9s", "Normal", "Starting", "node", "", "kube-proxy", "", "9s", 1, "n.1"])
    );
    let series = json!({
        "metadata": meta("s.1", 5),
        "involvedObject": {"kind": "Pod", "name": "p"},
        "eventTime": ago(900), "series": {"count": 7, "lastObservedTime": ago(30)},
    });
    let c = cells(ev, &series);
    assert_eq!(
        (c[0].clone(), c[7].clone(), c[8].clone()),
        (json!("30s"), json!("15m"), json!(7))
    );
    let bare = cells(ev, &json!({}));
    assert_eq!(
        (bare[0].clone(), bare[3].clone(), bare[8].clone()),
        (json!("<unknown>"), json!(""), json!(1))
    );
}

#[test]
fn events_k8s_io_print_as_core_events() {
    let ev = def("events.k8s.io", "v1", "events");
    assert_eq!(columns(ev), event_columns());
    let obj = json!({
        "apiVersion": "events.k8s.io/v1", "kind": "Event",
        "metadata": meta("web.1", 60),
        "eventTime": ago(60),
        "reportingController": "default-scheduler", "reportingInstance": "default-scheduler-cp",
        "action": "Binding", "reason": "Scheduled", "type": "Normal",
        "regarding": {"kind": "Pod", "name": "web", "namespace": "default"},
        "note": "Successfully assigned default/web to node-1",
    });
    assert_eq!(
        row_json(ev, &obj),
        json!([
            "60s",
            "Normal",
            "Scheduled",
            "pod/web",
            "",
            "default-scheduler, default-scheduler-cp",
            "Successfully assigned default/web to node-1",
            "60s",
            1,
            "web.1"
        ])
    );
}

#[test]
fn persistent_volumes() {
    let pv = core("persistentvolumes");
    expect_columns(
        pv,
        "Name,Capacity,Access Modes,Reclaim Policy,Status,Claim,StorageClass,VolumeAttributesClass,Reason,Age|VolumeMode",
    );
    let bound = json!({
        "metadata": {"name": "pv-1", "creationTimestamp": ago(86400)},
        "spec": {"capacity": {"storage": "10Gi"}, "accessModes": ["ReadWriteMany", "ReadWriteOnce", "ReadWriteOnce"],
            "persistentVolumeReclaimPolicy": "Delete", "storageClassName": "standard",
            "claimRef": {"namespace": "default", "name": "data"}, "volumeMode": "Filesystem"},
        "status": {"phase": "Bound"},
    });
    assert_eq!(
        row_json(pv, &bound),
        json!([
            "pv-1",
            "10Gi",
            "RWO,RWX",
            "Delete",
            "Bound",
            "default/data",
            "standard",
            "<unset>",
            "",
            "24h",
            "Filesystem"
        ])
    );
    let mut deleting = bound.clone();
    deleting["metadata"]["deletionTimestamp"] = json!(ago(1));
    deleting["metadata"]["annotations"] = json!({"volume.beta.kubernetes.io/storage-class": "legacy"});
    assert_eq!(
        cells(pv, &deleting)[4..7],
        [json!("Terminating"), json!("default/data"), json!("legacy")]
    );
    let bare = json!({"metadata": {"name": "pv-2"}, "spec": {"capacity": {"storage": "2048Mi"}}});
    assert_eq!(
        row_json(pv, &bare),
        json!([
            "pv-2",
            "2Gi",
            "",
            "Retain",
            "Pending",
            "",
            "",
            "<unset>",
            "",
            "<unknown>",
            "Filesystem"
        ])
    );
}

#[test]
fn persistent_volume_claims() {
    let pvc = core("persistentvolumeclaims");
    expect_columns(
        pvc,
        "Name,Status,Volume,Capacity,Access Modes,StorageClass,VolumeAttributesClass,Age|VolumeMode",
    );
    let bound = json!({
        "metadata": meta("data", 300),
        "spec": {"volumeName": "pvc-123", "storageClassName": "standard", "volumeMode": "Block",
            "resources": {"requests": {"storage": "1Gi"}}, "volumeAttributesClassName": "gold"},
        "status": {"phase": "Bound", "capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"]},
    });
    assert_eq!(
        row_json(pvc, &bound),
        json!([
            "data", "Bound", "pvc-123", "1Gi", "RWO", "standard", "gold", "5m", "Block"
        ])
    );
    let pending = json!({"metadata": meta("wait", 30), "spec": {"resources": {"requests": {"storage": "1Gi"}}},
        "status": {"phase": "Pending"}});
    assert_eq!(
        row_json(pvc, &pending),
        json!(["wait", "Pending", "", "", "", "", "<unset>", "30s", "Filesystem"])
    );
}

#[test]
fn resource_quotas_and_limit_ranges() {
    let rq = core("resourcequotas");
    expect_columns(rq, "Name,Request,Limit,Age");
    let obj = json!({
        "metadata": meta("compute", 120),
        "status": {
            "hard": {"requests.cpu": "1", "requests.memory": "1Gi", "limits.cpu": "2", "limits.memory": "2Gi", "pods": "10"},
            "used": {"requests.cpu": "500m", "requests.memory": "512Mi", "limits.cpu": "1000m", "pods": "3"},
        },
    });
    assert_eq!(
        row_json(rq, &obj),
        json!([
            "compute",
            "pods: 3/10, requests.cpu: 500m/1, requests.memory: 512Mi/1Gi",
            "limits.cpu: 1/2, limits.memory: 0/2Gi",
            "2m"
        ])
    );
    assert_eq!(
        row_json(rq, &json!({"metadata": meta("e", 120)})),
        json!(["e", "", "", "2m"])
    );

    let lr = core("limitranges");
    expect_columns(lr, "Name,Created At");
    let obj = json!({"metadata": {"name": "limits", "creationTimestamp": "2024-02-29T08:30:00Z"}});
    assert_eq!(row_json(lr, &obj), json!(["limits", "2024-02-29T08:30:00Z"]));
}
