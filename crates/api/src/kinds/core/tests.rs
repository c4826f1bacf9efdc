//! Tests of the core/v1 kinds other than Pods, ConfigMaps and Secrets.

use serde_json::{Value, json};

use crate::kinds::testutil::{admit, assert_matches, check_invalid, create_ok, def, merge};
use crate::strategy::Operation;

fn update_err(d: &crate::registry::ResourceDef, old: &Value, patch: Value) -> Vec<String> {
    admit(d, merge(old, &patch), Some(old), Operation::Update)
        .err()
        .unwrap_or_default()
}

#[test]
fn services() {
    let d = def("", "v1", "services");
    let base = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": "default"},
        "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]}});
    let svc = create_ok(d, base.clone());
    let spec = &svc["spec"];
    assert_eq!(spec["type"], "ClusterIP");
    assert_eq!(spec["sessionAffinity"], "None");
    assert_eq!(
        spec["ports"][0],
        json!({"port": 80, "protocol": "TCP", "targetPort": 80})
    );
    assert_eq!(spec["internalTrafficPolicy"], "Cluster");
    assert_eq!(spec["ipFamilyPolicy"], "SingleStack");
    assert_eq!(spec["ipFamilies"], json!(["IPv4"]));
    assert!(spec.get("externalTrafficPolicy").is_none());

    let np = create_ok(
        d,
        merge(
            &base,
            &json!({"spec": {"type": "NodePort", "sessionAffinity": "ClientIP"}}),
        ),
    );
    assert_eq!(np["spec"]["externalTrafficPolicy"], "Cluster");
    assert_eq!(np["spec"]["sessionAffinityConfig"]["clientIP"]["timeoutSeconds"], 10800);
    let ext = create_ok(
        d,
        json!({"metadata": {"name": "db", "namespace": "default"},
        "spec": {"type": "ExternalName", "externalName": "db.example.com."}}),
    );
    assert!(ext["spec"].get("ipFamilies").is_none());
    let headless = create_ok(d, merge(&base, &json!({"spec": {"clusterIP": "None", "ports": null}})));
    assert_eq!(headless["spec"]["clusterIPs"], json!(["None"]));

    check_invalid(
        d,
        &base,
        &[
            (json!({"spec": {"ports": null}}), &["spec.ports: Required value"]),
            (
                json!({"spec": {"ports": [{"port": 80}, {"port": 81}]}}),
                &[
                    "spec.ports[0].name: Required value",
                    "spec.ports[1].name: Required value",
                ],
            ),
            (
                json!({"spec": {"ports": [{"port": 80, "name": "a"}, {"port": 81, "name": "a"}]}}),
                &["spec.ports[1].name: Duplicate value: \"a\""],
            ),
            (
                json!({"spec": {"ports": [{"port": 0}]}}),
                &[
                    "spec.ports[0].port: Invalid value: 0: must be between 1 and 65535, inclusive",
                    // targetPort defaults to port.
                    "spec.ports[0].targetPort: Invalid value: 0: must be between 1 and 65535, inclusive",
                ],
            ),
            (
                json!({"spec": {"ports": [{"port": 80, "nodePort": 30080}]}}),
                &["spec.ports[0].nodePort: Forbidden: may not be used when `type` is 'ClusterIP'"],
            ),
            (
                json!({"spec": {"type": "Magic"}}),
                &[
                    "spec.type: Unsupported value: \"Magic\": supported values: \"ClusterIP\", \"ExternalName\", \"LoadBalancer\", \"NodePort\"",
                ],
            ),
            (
                json!({"spec": {"clusterIP": "10.0.0.300"}}),
                &["spec.clusterIPs[0]: Invalid value: \"10.0.0.300\": must be a valid IP address"],
            ),
            (
                json!({"spec": {"selector": {"app": "a b"}}}),
                &["spec.selector: Invalid value: \"a b\": a valid label must be"],
            ),
            (
                json!({"spec": {"type": "ExternalName"}}),
                &["spec.externalName: Required value"],
            ),
            (
                json!({"spec": {"type": "ExternalName", "externalName": "x.example.com", "ipFamilies": ["IPv4"]}}),
                &["spec.ipFamilies: Forbidden: may not be set for ExternalName services"],
            ),
            (
                json!({"spec": {"externalTrafficPolicy": "Local"}}),
                &[
                    "spec.externalTrafficPolicy: Invalid value: \"Local\": may only be set for externally-accessible services",
                ],
            ),
            (
                json!({"metadata": {"name": "1web"}}),
                &["metadata.name: Invalid value: \"1web\": a DNS-1035 label"],
            ),
        ],
    );
    let allocated = merge(
        &svc,
        &json!({"spec": {"clusterIP": "10.96.0.10", "clusterIPs": ["10.96.0.10"]}}),
    );
    let err = update_err(
        d,
        &allocated,
        json!({"spec": {"clusterIP": "10.96.0.11", "clusterIPs": ["10.96.0.11"]}}),
    );
    assert_matches(
        &err,
        &["spec.clusterIPs[0]: Invalid value: []string{\"10.96.0.11\"}: field is immutable"],
        &json!("ip"),
    );
    let to_external = json!({"spec": {"type": "ExternalName", "externalName": "x.example.com", "clusterIP": null,
        "clusterIPs": null, "ipFamilies": null, "ipFamilyPolicy": null, "internalTrafficPolicy": null}});
    assert!(admit(d, merge(&allocated, &to_external), Some(&allocated), Operation::Update).is_ok());
}

#[test]
fn namespaces_nodes_endpoints() {
    let ns = def("", "v1", "namespaces");
    let created = create_ok(
        ns,
        json!({"metadata": {"name": "team-a"}, "spec": {"finalizers": ["kubernetes"]}}),
    );
    assert_eq!(created["metadata"]["labels"]["kubernetes.io/metadata.name"], "team-a");
    assert_eq!(created["status"]["phase"], "Active");
    check_invalid(
        ns,
        &created,
        &[(
            json!({"spec": {"finalizers": ["custom"]}}),
            &[
                "spec.finalizers: Invalid value: \"custom\": name is neither a standard finalizer name nor is it fully qualified",
            ],
        )],
    );

    let nodes = def("", "v1", "nodes");
    let node = create_ok(
        nodes,
        json!({"metadata": {"name": "n1"}, "status": {"capacity": {"cpu": "4", "memory": "8Gi"}}}),
    );
    assert_eq!(node["status"]["allocatable"], json!({"cpu": "4", "memory": "8Gi"}));
    check_invalid(
        nodes,
        &node,
        &[
            (
                json!({"spec": {"taints": [{"key": "a", "effect": "Sometimes"}]}}),
                &["spec.taints[0].effect: Unsupported value: \"Sometimes\""],
            ),
            (
                json!({"spec": {"taints": [{"key": "a", "effect": "NoSchedule"}, {"key": "a", "effect": "NoSchedule"}]}}),
                &[
                    "spec.taints[1]: Duplicate value: {\"effect\":\"NoSchedule\",\"key\":\"a\"}: taints must be unique by key and effect pair",
                ],
            ),
            (
                json!({"spec": {"podCIDRs": ["10.0.0.0/99"]}}),
                &["spec.podCIDRs[0]: Invalid value: \"10.0.0.0/99\": must be a valid CIDR value"],
            ),
        ],
    );
    let with_cidr = merge(&node, &json!({"spec": {"podCIDRs": ["10.244.0.0/24"]}}));
    let err = update_err(nodes, &with_cidr, json!({"spec": {"podCIDRs": ["10.244.1.0/24"]}}));
    assert_matches(
        &err,
        &["spec.podCIDRs: Forbidden: node updates may not change podCIDR except from \"\" to valid"],
        &json!("cidr"),
    );

    let eps = def("", "v1", "endpoints");
    let ep = create_ok(
        eps,
        json!({"metadata": {"name": "web", "namespace": "default"},
        "subsets": [{"addresses": [{"ip": "10.0.0.1"}], "ports": [{"port": 80}]}]}),
    );
    assert_eq!(ep["subsets"][0]["ports"][0]["protocol"], "TCP");
    check_invalid(
        eps,
        &ep,
        &[
            (
                json!({"subsets": [{"ports": [{"port": 80}]}]}),
                &["subsets[0]: Required value: must specify `addresses` or `notReadyAddresses`"],
            ),
            (
                json!({"subsets": [{"addresses": [{"ip": "nope"}]}]}),
                &["subsets[0].addresses[0].ip: Invalid value: \"nope\": must be a valid IP address"],
            ),
        ],
    );
}

#[test]
fn core_events() {
    let d = def("", "v1", "events");
    let base = json!({"metadata": {"name": "web.1", "namespace": "default"},
        "involvedObject": {"kind": "Pod", "name": "web", "namespace": "default"}, "reason": "Started"});
    create_ok(d, base.clone());
    check_invalid(
        d,
        &base,
        &[
            (
                json!({"involvedObject": {"namespace": "other"}}),
                &["involvedObject.namespace: Invalid value: \"other\": does not match event.namespace"],
            ),
            (
                json!({"eventTime": "2024-01-01T00:00:00.000000Z"}),
                &[
                    "reportingComponent: Required value",
                    "reportingComponent: Invalid value: \"\": name part must be non-empty",
                    "reportingComponent: Invalid value: \"\": name part must consist of",
                    "reportingInstance: Required value",
                    "action: Required value",
                ],
            ),
        ],
    );
}

#[test]
fn volumes_and_claims() {
    let pvs = def("", "v1", "persistentvolumes");
    let pv = create_ok(
        pvs,
        json!({"metadata": {"name": "pv1"},
        "spec": {"accessModes": ["ReadWriteOnce"], "capacity": {"storage": "1024Mi"}, "hostPath": {"path": "/data"}}}),
    );
    assert_eq!(pv["spec"]["persistentVolumeReclaimPolicy"], "Retain");
    assert_eq!(pv["spec"]["volumeMode"], "Filesystem");
    assert_eq!(pv["spec"]["capacity"]["storage"], "1Gi");
    assert_eq!(pv["status"]["phase"], "Pending");
    check_invalid(
        pvs,
        &pv,
        &[
            (
                json!({"spec": {"accessModes": []}}),
                &["spec.accessModes: Required value"],
            ),
            (
                json!({"spec": {"accessModes": ["ReadEverything"]}}),
                &["spec.accessModes: Unsupported value: \"ReadEverything\""],
            ),
            (json!({"spec": {"capacity": null}}), &["spec.capacity: Required value"]),
            (
                json!({"spec": {"hostPath": null}}),
                &["spec: Required value: must specify a volume type"],
            ),
        ],
    );

    let pvcs = def("", "v1", "persistentvolumeclaims");
    let base = json!({"metadata": {"name": "data", "namespace": "default"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}});
    let pvc = create_ok(pvcs, base.clone());
    assert_eq!(pvc["spec"]["volumeMode"], "Filesystem");
    assert_eq!(pvc["status"]["phase"], "Pending");
    check_invalid(
        pvcs,
        &base,
        &[
            (
                json!({"spec": {"accessModes": null}}),
                &["spec.accessModes: Required value: at least 1 access mode is required"],
            ),
            (
                json!({"spec": {"resources": {"requests": {"storage": null}}}}),
                &["spec.resources[storage]: Required value"],
            ),
            (
                json!({"spec": {"resources": {"requests": {"storage": "0"}}}}),
                &["spec.resources[storage]: Invalid value: \"0\": must be greater than zero"],
            ),
        ],
    );
    assert!(
        admit(
            pvcs,
            merge(&pvc, &json!({"spec": {"volumeName": "pv1"}})),
            Some(&pvc),
            Operation::Update
        )
        .is_ok()
    );
    let err = update_err(
        pvcs,
        &pvc,
        json!({"spec": {"resources": {"requests": {"storage": "2Gi"}}}}),
    );
    assert_matches(
        &err,
        &["spec: Forbidden: spec is immutable after creation except resources.requests"],
        &json!("unbound"),
    );
    let bound = merge(&pvc, &json!({"status": {"phase": "Bound"}}));
    assert!(
        admit(
            pvcs,
            merge(
                &bound,
                &json!({"spec": {"resources": {"requests": {"storage": "2Gi"}}}})
            ),
            Some(&bound),
            Operation::Update
        )
        .is_ok()
    );
}

#[test]
fn quotas_and_limit_ranges() {
    let rqs = def("", "v1", "resourcequotas");
    let rq = create_ok(
        rqs,
        json!({"metadata": {"name": "q", "namespace": "default"},
        "spec": {"hard": {"pods": "10", "requests.cpu": "0.5", "count/deployments.apps": "2"}}}),
    );
    assert_eq!(rq["spec"]["hard"]["requests.cpu"], "500m");
    check_invalid(
        rqs,
        &rq,
        &[
            (
                json!({"spec": {"hard": {"pods": "1.5"}}}),
                &["spec.hard[pods]: Invalid value: \"1500m\": must be an integer"],
            ),
            (
                json!({"spec": {"hard": {"widgets": "1"}}}),
                &[
                    "spec.hard[widgets]: Invalid value: \"widgets\": must be a standard resource type or fully qualified",
                ],
            ),
            (
                json!({"spec": {"hard": {"cpu": "-1"}}}),
                &["spec.hard[cpu]: Invalid value: \"-1\": must be greater than or equal to 0"],
            ),
        ],
    );

    let lrs = def("", "v1", "limitranges");
    let lr = create_ok(
        lrs,
        json!({"metadata": {"name": "l", "namespace": "default"},
        "spec": {"limits": [{"type": "Container", "max": {"cpu": "2"}, "min": {"memory": "64Mi"}}]}}),
    );
    assert_eq!(lr["spec"]["limits"][0]["default"], json!({"cpu": "2"}));
    assert_eq!(
        lr["spec"]["limits"][0]["defaultRequest"],
        json!({"cpu": "2", "memory": "64Mi"})
    );
    check_invalid(
        lrs,
        &lr,
        &[
            (
                json!({"spec": {"limits": [{"type": "Container", "max": {"cpu": "1"}, "min": {"cpu": "2"}}]}}),
                &[
                    "spec.limits[0].min[cpu]: Invalid value: \"2\": min value 2 is greater than max value 1",
                    "spec.limits[0].defaultRequest[cpu]: Invalid value: \"1\": min value 2 is greater than default request value 1",
                    "spec.limits[0].default[cpu]: Invalid value: \"2\": min value 2 is greater than default value 1",
                ],
            ),
            (
                json!({"spec": {"limits": [{"type": "Volume"}]}}),
                &["spec.limits[0].type: Unsupported value: \"Volume\""],
            ),
            (
                json!({"spec": {"limits": [{"type": "Container", "maxLimitRequestRatio": {"cpu": "500m"}}]}}),
                &["spec.limits[0].maxLimitRequestRatio[cpu]: Invalid value: \"500m\": ratio 500m is less than 1"],
            ),
            (
                json!({"spec": {"limits": [{"type": "Pod", "min": {"cpu": "1"}, "max": {"cpu": "2"}, "maxLimitRequestRatio": {"cpu": "3"}}]}}),
                &[
                    "spec.limits[0].maxLimitRequestRatio[cpu]: Invalid value: \"3\": ratio 3 is greater than max/min = 2.000000",
                ],
            ),
            (
                json!({"spec": {"limits": [{"type": "PersistentVolumeClaim", "max": {"cpu": "1"}}]}}),
                &[
                    "spec.limits[0].limits: Required value: either minimum or maximum storage value is required, but neither was provided",
                ],
            ),
            (
                json!({"spec": {"limits": [{"type": "Container", "default": {"hugepages-2Mi": "4Mi"}, "defaultRequest": {"hugepages-2Mi": "2Mi"}}]}}),
                &[
                    "spec.limits[0].defaultRequest[hugepages-2Mi]: Invalid value: \"2Mi\": default value 4Mi must equal to defaultRequest value 2Mi in hugepages-2Mi",
                ],
            ),
        ],
    );
}
