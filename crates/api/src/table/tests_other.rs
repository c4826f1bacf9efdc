//! Leases, endpoint slices, ingresses, network policies, RBAC and CRD rows.

use serde_json::{Value, json};

use super::testutil::{ago, cells, def, expect_columns, row_json};

fn meta(name: &str, age_seconds: i64) -> Value {
    json!({"name": name, "namespace": "default", "creationTimestamp": ago(age_seconds)})
}

#[test]
fn leases() {
    let lease = def("coordination.k8s.io", "v1", "leases");
    expect_columns(lease, "Name,Holder,Age");
    let obj = json!({"metadata": meta("kube-scheduler", 86400), "spec": {"holderIdentity": "cp_1234"}});
    assert_eq!(row_json(lease, &obj), json!(["kube-scheduler", "cp_1234", "24h"]));
    assert_eq!(cells(lease, &json!({"metadata": meta("free", 1)}))[1], "");
}

#[test]
fn endpoint_slices() {
    let es = def("discovery.k8s.io", "v1", "endpointslices");
    expect_columns(es, "Name,AddressType,Ports,Endpoints,Age");
    let obj = json!({
        "metadata": meta("web-abc12", 90),
        "addressType": "IPv4",
        "ports": [{"name": "http", "port": 80, "protocol": "TCP"}, {"name": "metrics"}, {}],
        "endpoints": [{"addresses": ["10.0.0.1"]}, {"addresses": ["10.0.0.2", "10.0.0.3"]}, {"addresses": ["10.0.0.4"]}],
    });
    assert_eq!(
        row_json(es, &obj),
        json!([
            "web-abc12",
            "IPv4",
            "80,metrics,*",
            "10.0.0.1,10.0.0.2,10.0.0.3 + 1 more...",
            "90s"
        ])
    );
    let empty = json!({"metadata": meta("e", 90), "addressType": "IPv6"});
    assert_eq!(row_json(es, &empty), json!(["e", "IPv6", "<unset>", "<unset>", "90s"]));
}

#[test]
fn ingresses() {
    let ing = def("networking.k8s.io", "v1", "ingresses");
    expect_columns(ing, "Name,Class,Hosts,Address,Ports,Age");
    let obj = json!({
        "metadata": meta("web", 600),
        "spec": {"ingressClassName": "nginx", "tls": [{"hosts": ["a.example.com"]}],
            "rules": [{"host": "a.example.com"}, {"host": "b.example.com"}]},
        "status": {"loadBalancer": {"ingress": [{"ip": "192.0.2.10"}, {"hostname": "lb.example.com"}]}},
    });
    assert_eq!(
        row_json(ing, &obj),
        json!([
            "web",
            "nginx",
            "a.example.com,b.example.com",
            "192.0.2.10,lb.example.com",
            "80, 443",
            "10m"
        ])
    );
    let catch_all = json!({"metadata": meta("all", 5), "spec": {"defaultBackend": {"service": {"name": "x"}}}});
    assert_eq!(row_json(ing, &catch_all), json!(["all", "<none>", "*", "", "80", "5s"]));
    let many = json!({"metadata": meta("m", 5), "spec": {"rules": [
        {"host": "a"}, {}, {"host": "b"}, {"host": "c"}, {"host": "d"}, {"host": "e"}]}});
    assert_eq!(cells(ing, &many)[2], "a,b,c + 3 more...");
}

#[test]
fn network_policies() {
    let np = def("networking.k8s.io", "v1", "networkpolicies");
    expect_columns(np, "Name,Pod-Selector,Age");
    let obj = json!({"metadata": meta("deny", 60), "spec": {"podSelector": {"matchLabels": {"role": "db"}},
        "policyTypes": ["Ingress"]}});
    assert_eq!(row_json(np, &obj), json!(["deny", "role=db", "60s"]));
    let all = json!({"metadata": meta("all", 60), "spec": {"podSelector": {}}});
    assert_eq!(cells(np, &all)[1], "<none>");
    let exists = json!({"metadata": meta("x", 60), "spec": {"podSelector": {"matchExpressions": [
        {"key": "tier", "operator": "Exists"}, {"key": "app", "operator": "DoesNotExist"},
        {"key": "env", "operator": "NotIn", "values": ["dev"]}]}}});
    assert_eq!(cells(np, &exists)[1], "!app,env notin (dev),tier");
    let broken = json!({"metadata": meta("b", 60), "spec": {"podSelector": {"matchExpressions": [
        {"key": "tier", "operator": "Sometimes"}]}}});
    assert_eq!(cells(np, &broken)[1], "<error>");
}

#[test]
fn roles_use_the_default_convertor() {
    for (plural, namespaced) in [("roles", true), ("clusterroles", false)] {
        let d = def("rbac.authorization.k8s.io", "v1", plural);
        assert_eq!(d.namespaced, namespaced);
        expect_columns(d, "Name,Created At");
        let obj = json!({"metadata": {"name": "admin", "creationTimestamp": "2025-01-02T03:04:05Z"}, "rules": []});
        assert_eq!(row_json(d, &obj), json!(["admin", "2025-01-02T03:04:05Z"]));
        // Go prints its zero time for an unset creation timestamp.
        assert_eq!(cells(d, &json!({"metadata": {"name": "x"}}))[1], "0001-01-01T00:00:00Z");
    }
    let d = def("rbac.authorization.k8s.io", "v1", "roles");
    let offset = json!({"metadata": {"name": "o", "creationTimestamp": "2025-01-02T03:04:05.999+02:00"}});
    assert_eq!(cells(d, &offset)[1], "2025-01-02T01:04:05Z");
}

#[test]
fn role_bindings() {
    for plural in ["rolebindings", "clusterrolebindings"] {
        let d = def("rbac.authorization.k8s.io", "v1", plural);
        expect_columns(d, "Name,Role,Age|Users,Groups,ServiceAccounts");
        let obj = json!({
            "metadata": meta("read-pods", 3600 * 5 + 60 * 7),
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
            "subjects": [
                {"kind": "User", "name": "jane"}, {"kind": "User", "name": "joe"},
                {"kind": "Group", "name": "system:authenticated"},
                {"kind": "ServiceAccount", "name": "default", "namespace": "kube-system"},
                {"kind": "Robot", "name": "r2"},
            ],
        });
        assert_eq!(
            row_json(d, &obj),
            json!([
                "read-pods",
                "ClusterRole/view",
                "5h7m",
                "jane, joe",
                "system:authenticated",
                "kube-system/default"
            ])
        );
    }
}

#[test]
fn custom_resource_definitions() {
    let crd = def("apiextensions.k8s.io", "v1", "customresourcedefinitions");
    expect_columns(crd, "Name,Scope,Versions,Created At|Group,Kind,ShortNames,Established");
    let obj = json!({
        "metadata": {"name": "widgets.example.com", "creationTimestamp": "2025-05-31T10:00:00Z"},
        "spec": {"group": "example.com", "scope": "Namespaced",
            "names": {"plural": "widgets", "kind": "Widget", "shortNames": ["wd", "wdg"]},
            "versions": [{"name": "v1beta1", "served": true, "storage": false},
                {"name": "v1", "served": true, "storage": true}, {"name": "v1alpha1", "served": false}]},
        "status": {"conditions": [{"type": "NamesAccepted", "status": "True"}, {"type": "Established", "status": "True"}]},
    });
    assert_eq!(
        row_json(crd, &obj),
        json!([
            "widgets.example.com",
            "Namespaced",
            "v1(storage),v1beta1",
            "2025-05-31T10:00:00Z",
            "example.com",
            "Widget",
            "wd,wdg",
            true
        ])
    );
    let bare = json!({"metadata": {"name": "x"}});
    assert_eq!(
        row_json(crd, &bare),
        json!(["x", "", "", "0001-01-01T00:00:00Z", "", "", "", false])
    );
}
