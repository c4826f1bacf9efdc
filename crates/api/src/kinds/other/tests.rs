//! Tests of the coordination, discovery, events, autoscaling, networking and apiextensions kinds.

use serde_json::{Value, json};

use crate::kinds::testutil::{admit, assert_matches, check_invalid, create_ok, def, merge};
use crate::strategy::Operation;

#[test]
fn leases() {
    let d = def("coordination.k8s.io", "v1", "leases");
    let base = json!({"metadata": {"name": "node-1", "namespace": "kube-node-lease"},
        "spec": {"holderIdentity": "node-1", "leaseDurationSeconds": 40}});
    create_ok(d, base.clone());
    check_invalid(
        d,
        &base,
        &[
            (
                json!({"spec": {"leaseDurationSeconds": 0}}),
                &["spec.leaseDurationSeconds: Invalid value: 0: must be greater than 0"],
            ),
            (
                json!({"spec": {"leaseTransitions": -1}}),
                &["spec.leaseTransitions: Invalid value: -1: must be greater than or equal to 0"],
            ),
            (
                json!({"spec": {"preferredHolder": "x"}}),
                &["spec.preferredHolder: Forbidden: may only be specified if `strategy` is defined"],
            ),
        ],
    );
}

#[test]
fn endpoint_slices() {
    let d = def("discovery.k8s.io", "v1", "endpointslices");
    let base = json!({"metadata": {"name": "web-abc", "namespace": "default"}, "addressType": "IPv4",
        "endpoints": [{"addresses": ["10.0.0.1"], "conditions": {"ready": true}}], "ports": [{"port": 80}]});
    let slice = create_ok(d, base.clone());
    assert_eq!(slice["ports"][0], json!({"name": "", "port": 80, "protocol": "TCP"}));
    check_invalid(
        d,
        &base,
        &[
            (
                json!({"addressType": "IPv5"}),
                &["addressType: Unsupported value: \"IPv5\": supported values: \"FQDN\", \"IPv4\", \"IPv6\""],
            ),
            (
                json!({"endpoints": [{"addresses": []}]}),
                &["endpoints[0].addresses: Required value: must contain at least 1 address"],
            ),
            (
                json!({"endpoints": [{"addresses": ["::1"]}]}),
                &["endpoints[0].addresses[0]: Invalid value: \"::1\": must be a valid IPv4 address"],
            ),
            (
                json!({"ports": [{"port": 80}, {"port": 81}]}),
                &["ports[1].name: Duplicate value: \"\""],
            ),
        ],
    );
    let err = admit(
        d,
        merge(
            &slice,
            &json!({"addressType": "IPv6", "endpoints": [{"addresses": ["::1"]}]}),
        ),
        Some(&slice),
        Operation::Update,
    )
    .err()
    .unwrap_or_default();
    assert_matches(
        &err,
        &["addressType: Invalid value: \"IPv6\": field is immutable"],
        &json!("type"),
    );
}

#[test]
fn events_v1() {
    let d = def("events.k8s.io", "v1", "events");
    let base = json!({"metadata": {"name": "web.1", "namespace": "default"},
        "eventTime": "2024-01-01T00:00:00.000000Z", "type": "Normal", "reason": "Started", "action": "Start",
        "reportingController": "example.com/controller", "reportingInstance": "controller-1",
        "regarding": {"kind": "Pod", "name": "web", "namespace": "default"}});
    let ev = create_ok(d, base.clone());
    check_invalid(
        d,
        &base,
        &[
            (
                json!({"type": "Info"}),
                &["type: Invalid value: \"\": has invalid value: Info"],
            ),
            (json!({"eventTime": null}), &["eventTime: Required value"]),
            (json!({"action": ""}), &["action: Required value"]),
            (
                json!({"deprecatedCount": 3}),
                &["deprecatedCount: Invalid value: \"\": needs to be unset"],
            ),
            (
                json!({"series": {"count": 1, "lastObservedTime": "2024-01-01T00:00:00.000000Z"}}),
                &["series.count: Invalid value: \"\": should be at least 2"],
            ),
        ],
    );
    let err = admit(d, merge(&ev, &json!({"reason": "Other"})), Some(&ev), Operation::Update)
        .err()
        .unwrap_or_default();
    assert_matches(
        &err,
        &["reason: Invalid value: \"Other\": field is immutable"],
        &json!("reason"),
    );
}

fn hpa(version: &str) -> Value {
    json!({"apiVersion": format!("autoscaling/{version}"), "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}, "maxReplicas": 5}})
}

#[test]
fn hpas() {
    let v2 = def("autoscaling", "v2", "horizontalpodautoscalers");
    let created = create_ok(
        v2,
        merge(
            &hpa("v2"),
            &json!({"spec": {"behavior": {"scaleDown": {"stabilizationWindowSeconds": 60}}}}),
        ),
    );
    assert_eq!(created["spec"]["minReplicas"], 1);
    assert_eq!(
        created["spec"]["metrics"],
        json!([{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}}])
    );
    assert_eq!(
        created["spec"]["behavior"]["scaleDown"]["stabilizationWindowSeconds"],
        60
    );
    assert_eq!(
        created["spec"]["behavior"]["scaleDown"]["policies"],
        json!([{"type": "Percent", "value": 100, "periodSeconds": 15}])
    );
    assert_eq!(
        created["spec"]["behavior"]["scaleUp"]["policies"][0],
        json!({"type": "Pods", "value": 4, "periodSeconds": 15})
    );
    check_invalid(
        v2,
        &hpa("v2"),
        &[
            (
                json!({"spec": {"maxReplicas": 0}}),
                &[
                    "spec.maxReplicas: Invalid value: 0: must be greater than 0",
                    "spec.maxReplicas: Invalid value: 0: must be greater than or equal to `minReplicas`",
                ],
            ),
            (
                json!({"spec": {"minReplicas": 6}}),
                &["spec.maxReplicas: Invalid value: 5: must be greater than or equal to `minReplicas`"],
            ),
            (
                json!({"spec": {"scaleTargetRef": {"kind": "", "name": "a/b"}}}),
                &[
                    "spec.scaleTargetRef.kind: Required value",
                    "spec.scaleTargetRef.name: Invalid value: \"a/b\": may not contain '/'",
                ],
            ),
            (
                json!({"spec": {"metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 0}}}]}}),
                &["spec.metrics[0].resource.target.averageUtilization: Invalid value: 0: must be greater than 0"],
            ),
            (
                json!({"spec": {"metrics": [{"type": "Pods"}]}}),
                &["spec.metrics[0].pods: Required value: must populate information for the given metric source"],
            ),
        ],
    );
    let v1 = def("autoscaling", "v1", "horizontalpodautoscalers");
    let created = create_ok(
        v1,
        merge(&hpa("v1"), &json!({"spec": {"targetCPUUtilizationPercentage": 50}})),
    );
    assert_eq!(created["spec"]["minReplicas"], 1);
    check_invalid(
        v1,
        &hpa("v1"),
        &[(
            json!({"spec": {"targetCPUUtilizationPercentage": 0}}),
            &["spec.targetCPUUtilizationPercentage: Invalid value: 0: must be greater than 0"],
        )],
    );
}

#[test]
fn ingresses() {
    let d = def("networking.k8s.io", "v1", "ingresses");
    let base = json!({"metadata": {"name": "web", "namespace": "default"}, "spec": {"rules": [{"host": "web.example.com",
        "http": {"paths": [{"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "web", "port": {"number": 80}}}}]}}]}});
    create_ok(d, base.clone());
    let path = |p: Value| json!({"spec": {"rules": [{"http": {"paths": [p]}}]}});
    check_invalid(
        d,
        &base,
        &[
            (
                json!({"spec": {"rules": []}}),
                &["spec: Invalid value: []: either `defaultBackend` or `rules` must be specified"],
            ),
            (
                json!({"spec": {"rules": [{"host": "10.0.0.1", "http": {"paths": [{"path": "/", "pathType": "Exact", "backend": {"service": {"name": "web", "port": {"name": "http"}}}}]}}]}}),
                &["spec.rules[0].host: Invalid value: \"10.0.0.1\": must be a DNS name, not an IP address"],
            ),
            (
                path(
                    json!({"path": "/", "pathType": "Regex", "backend": {"service": {"name": "web", "port": {"number": 80}}}}),
                ),
                &[
                    "spec.rules[0].http.paths[0].pathType: Unsupported value: \"Regex\": supported values: \"Exact\", \"ImplementationSpecific\", \"Prefix\"",
                ],
            ),
            (
                path(
                    json!({"path": "api", "pathType": "Prefix", "backend": {"service": {"name": "web", "port": {"number": 80}}}}),
                ),
                &["spec.rules[0].http.paths[0].path: Invalid value: \"api\": must be an absolute path"],
            ),
            (
                path(json!({"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "web"}}})),
                &["spec.rules[0].http.paths[0].backend: Required value: port name or number is required"],
            ),
            (
                json!({"spec": {"rules": [{"host": "*.*.example.com"}]}}),
                &["spec.rules[0].host: Invalid value: \"*.*.example.com\": a wildcard DNS-1123 subdomain"],
            ),
        ],
    );
}

#[test]
fn network_policies() {
    let d = def("networking.k8s.io", "v1", "networkpolicies");
    let base = json!({"metadata": {"name": "deny", "namespace": "default"},
        "spec": {"podSelector": {}, "egress": [{"ports": [{"port": 53}]}]}});
    let np = create_ok(d, base.clone());
    assert_eq!(np["spec"]["policyTypes"], json!(["Ingress", "Egress"]));
    assert_eq!(np["spec"]["egress"][0]["ports"][0]["protocol"], "TCP");
    check_invalid(
        d,
        &base,
        &[
            (
                json!({"spec": {"policyTypes": ["Sideways"]}}),
                &["spec.policyTypes[0]: Unsupported value: \"Sideways\": supported values: \"Ingress\", \"Egress\""],
            ),
            (
                json!({"spec": {"ingress": [{"from": [{}]}]}}),
                &["spec.ingress[0].from[0]: Required value: must specify a peer"],
            ),
            (
                json!({"spec": {"ingress": [{"from": [{"ipBlock": {"cidr": "10.0.0.0/8", "except": ["192.168.0.0/16"]}}]}]}}),
                &[
                    "spec.ingress[0].from[0].ipBlock.except[0]: Invalid value: \"192.168.0.0/16\": must be a strict subset of `cidr`",
                ],
            ),
            (
                json!({"spec": {"egress": [{"ports": [{"port": 80, "endPort": 70}]}]}}),
                &["spec.egress[0].ports[0].endPort: Invalid value: 80: must be greater than or equal to `port`"],
            ),
        ],
    );
    assert!(create_ok(d, merge(&base, &json!({"spec": {"ingress": [{"from": [{"ipBlock": {"cidr": "10.0.0.0/8", "except": ["10.1.0.0/16"]}}]}]}})))
        .is_object());
}

#[test]
fn custom_resource_definitions() {
    let d = def("apiextensions.k8s.io", "v1", "customresourcedefinitions");
    let base = json!({"metadata": {"name": "widgets.example.com"}, "spec": {"group": "example.com", "scope": "Namespaced",
        "names": {"plural": "widgets", "kind": "Widget"},
        "versions": [{"name": "v1", "served": true, "storage": true, "schema": {"openAPIV3Schema": {"type": "object"}}}]}});
    let crd = create_ok(d, base.clone());
    assert_eq!(crd["spec"]["names"]["singular"], "widget");
    assert_eq!(crd["spec"]["names"]["listKind"], "WidgetList");
    assert_eq!(crd["spec"]["conversion"], json!({"strategy": "None"}));
    check_invalid(
        d,
        &base,
        &[
            (
                json!({"metadata": {"name": "gadgets.example.com"}}),
                &["metadata.name: Invalid value: \"gadgets.example.com\": must be spec.names.plural+\".\"+spec.group"],
            ),
            (
                json!({"spec": {"scope": "Global"}}),
                &["spec.scope: Unsupported value: \"Global\": supported values: \"Cluster\", \"Namespaced\""],
            ),
            (
                json!({"spec": {"versions": [{"name": "v1", "served": true, "storage": false, "schema": {"openAPIV3Schema": {"type": "object"}}}]}}),
                &["spec.versions: Invalid value: [{"],
            ),
            (
                json!({"spec": {"versions": [{"name": "v1", "served": true, "storage": true}]}}),
                &["spec.versions[0].schema.openAPIV3Schema: Required value: schemas are required"],
            ),
            (
                json!({"spec": {"names": {"kind": "Bad_Kind"}}}),
                &[
                    // The singular name is defaulted from the kind.
                    "spec.names.singular: Invalid value: \"bad_kind\": a DNS-1035 label",
                    "spec.names.kind: Invalid value: \"Bad_Kind\": may have mixed case, but should otherwise match: a DNS-1035 label",
                ],
            ),
        ],
    );
}
