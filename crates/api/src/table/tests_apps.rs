//! Workload rows (apps, batch, autoscaling), against the strings upstream prints.

use serde_json::{Value, json};

use super::testutil::{ago, cells, def, expect_columns, row_json};

fn apps(plural: &str) -> &'static crate::registry::ResourceDef {
    def("apps", "v1", plural)
}

fn meta(name: &str, age_seconds: i64) -> Value {
    json!({"name": name, "namespace": "default", "creationTimestamp": ago(age_seconds)})
}

fn template() -> Value {
    json!({"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [
        {"name": "nginx", "image": "nginx:1.27"}, {"name": "sidecar", "image": "busybox"}]}})
}

#[test]
fn deployments() {
    let d = apps("deployments");
    expect_columns(d, "Name,Ready,Up-to-date,Available,Age|Containers,Images,Selector");
    let obj = json!({
        "metadata": meta("web", 400),
        "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web", "tier": "fe"},
            "matchExpressions": [{"key": "env", "operator": "In", "values": ["prod", "canary"]}]},
            "template": template()},
        "status": {"replicas": 3, "readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2},
    });
    assert_eq!(
        row_json(d, &obj),
        json!([
            "web",
            "2/3",
            3,
            2,
            "6m40s",
            "nginx,sidecar",
            "nginx:1.27,busybox",
            "app=web,env in (canary,prod),tier=fe"
        ])
    );
    // Unset replicas default to 1; an unset status reads as zeros; an empty selector prints "".
    let fresh = json!({"metadata": meta("new", 5), "spec": {"selector": {}, "template": {"spec": {}}}});
    assert_eq!(row_json(d, &fresh), json!(["new", "0/1", 0, 0, "5s", "", "", ""]));
    let invalid = json!({"metadata": meta("bad", 5), "spec": {"selector": {"matchExpressions": [{"key": "a", "operator": "In"}]}}});
    assert_eq!(cells(d, &invalid)[7], "<invalid>");
}

#[test]
fn replica_sets_stateful_sets_daemon_sets() {
    let rs = apps("replicasets");
    expect_columns(rs, "Name,Desired,Current,Ready,Age|Containers,Images,Selector");
    let obj = json!({
        "metadata": meta("web-5d4f8", 400),
        "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web", "pod-template-hash": "5d4f8"}}, "template": template()},
        "status": {"replicas": 3, "readyReplicas": 3},
    });
    assert_eq!(
        row_json(rs, &obj),
        json!([
            "web-5d4f8",
            3,
            3,
            3,
            "6m40s",
            "nginx,sidecar",
            "nginx:1.27,busybox",
            "app=web,pod-template-hash=5d4f8"
        ])
    );
    assert_eq!(
        cells(rs, &json!({"metadata": meta("x", 1), "spec": {"replicas": 0}}))[1..4],
        [json!(0), json!(0), json!(0)]
    );
    assert_eq!(cells(rs, &json!({"metadata": meta("x", 1)}))[7], "<none>");

    let sts = apps("statefulsets");
    expect_columns(sts, "Name,Ready,Age|Containers,Images");
    let obj = json!({"metadata": meta("db", 3 * 3600), "spec": {"replicas": 3, "template": template()},
        "status": {"replicas": 3, "readyReplicas": 1}});
    assert_eq!(
        row_json(sts, &obj),
        json!(["db", "1/3", "3h", "nginx,sidecar", "nginx:1.27,busybox"])
    );

    let ds = apps("daemonsets");
    expect_columns(
        ds,
        "Name,Desired,Current,Ready,Up-to-date,Available,Node Selector,Age|Containers,Images,Selector",
    );
    let obj = json!({
        "metadata": meta("kube-proxy", 9 * 86400),
        "spec": {"selector": {"matchLabels": {"k8s-app": "kube-proxy"}},
            "template": {"spec": {"nodeSelector": {"kubernetes.io/os": "linux"},
                "containers": [{"name": "kube-proxy", "image": "registry.k8s.io/kube-proxy:v1.37.0"}]}}},
        "status": {"desiredNumberScheduled": 3, "currentNumberScheduled": 3, "numberReady": 2,
            "updatedNumberScheduled": 3, "numberAvailable": 2},
    });
    assert_eq!(
        row_json(ds, &obj),
        json!([
            "kube-proxy",
            3,
            3,
            2,
            3,
            2,
            "kubernetes.io/os=linux",
            "9d",
            "kube-proxy",
            "registry.k8s.io/kube-proxy:v1.37.0",
            "k8s-app=kube-proxy"
        ])
    );
    assert_eq!(cells(ds, &json!({"metadata": meta("x", 1)}))[6], "<none>");
}

#[test]
fn controller_revisions() {
    let cr = apps("controllerrevisions");
    expect_columns(cr, "Name,Controller,Revision,Age");
    let obj = json!({
        "metadata": {"name": "kube-proxy-7b9c", "creationTimestamp": ago(60), "ownerReferences": [
            {"apiVersion": "v1", "kind": "Pod", "name": "other", "controller": false},
            {"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "kube-proxy", "controller": true}]},
        "revision": 2,
    });
    assert_eq!(
        row_json(cr, &obj),
        json!(["kube-proxy-7b9c", "daemonset.apps/kube-proxy", 2, "60s"])
    );
    let core_owner = json!({"metadata": {"name": "r", "ownerReferences": [
        {"apiVersion": "v1", "kind": "ReplicationController", "name": "rc", "controller": true}]}, "revision": 1});
    assert_eq!(cells(cr, &core_owner)[1], "replicationcontroller/rc");
    assert_eq!(cells(cr, &json!({"metadata": {"name": "r"}}))[1], "<none>");
}

fn job(spec: Value, status: Value) -> Value {
    let mut spec = spec;
    spec["template"] = template();
    json!({"metadata": meta("pi", 600), "spec": spec, "status": status})
}

#[test]
fn jobs() {
    let j = def("batch", "v1", "jobs");
    expect_columns(j, "Name,Status,Completions,Duration,Age|Containers,Images,Selector");
    let complete = job(
        json!({"completions": 1, "parallelism": 1, "selector": {"matchLabels": {"batch.kubernetes.io/controller-uid": "abc"}}}),
        json!({"succeeded": 1, "startTime": ago(600), "completionTime": ago(600 - 37),
            "conditions": [{"type": "SuccessCriteriaMet", "status": "True"}, {"type": "Complete", "status": "True"}]}),
    );
    assert_eq!(
        row_json(j, &complete),
        json!([
            "pi",
            "Complete",
            "1/1",
            "37s",
            "10m",
            "nginx,sidecar",
            "nginx:1.27,busybox",
            "batch.kubernetes.io/controller-uid=abc"
        ])
    );
    let running = job(
        json!({"completions": 5, "parallelism": 2}),
        json!({"succeeded": 2, "active": 2, "startTime": ago(200)}),
    );
    assert_eq!(
        cells(j, &running)[1..4],
        [json!("Running"), json!("2/5"), json!("3m20s")]
    );
    let work_queue = job(json!({"parallelism": 3}), json!({"succeeded": 0}));
    assert_eq!(
        cells(j, &work_queue)[1..4],
        [json!("Running"), json!("0/1 of 3"), json!("")]
    );
    let defaulted = job(json!({}), json!({}));
    assert_eq!(cells(j, &defaulted)[2], "0/1");
    assert_eq!(cells(j, &defaulted)[7], "<none>");
    let cases = [
        (json!([{"type": "Failed", "status": "True"}]), "Failed"),
        (json!([{"type": "Suspended", "status": "True"}]), "Suspended"),
        (json!([{"type": "FailureTarget", "status": "True"}]), "FailureTarget"),
        (
            json!([{"type": "SuccessCriteriaMet", "status": "True"}]),
            "SuccessCriteriaMet",
        ),
        (
            json!([{"type": "Complete", "status": "False"}, {"type": "Complete", "status": "True"}]),
            "Running",
        ),
    ];
    for (conditions, want) in cases {
        let obj = job(json!({"completions": 1}), json!({"conditions": conditions}));
        assert_eq!(cells(j, &obj)[1], want);
    }
    let mut deleting = job(
        json!({}),
        json!({"conditions": [{"type": "Suspended", "status": "True"}]}),
    );
    deleting["metadata"]["deletionTimestamp"] = json!(ago(1));
    assert_eq!(cells(j, &deleting)[1], "Terminating");
}

#[test]
fn cron_jobs() {
    let cj = def("batch", "v1", "cronjobs");
    expect_columns(
        cj,
        "Name,Schedule,Timezone,Suspend,Active,Last Schedule,Age|Containers,Images,Selector",
    );
    let obj = json!({
        "metadata": meta("backup", 2 * 86400),
        "spec": {"schedule": "*/5 * * * *", "timeZone": "Etc/UTC", "suspend": false,
            "jobTemplate": {"spec": {"template": {"spec": {"containers": [{"name": "b", "image": "busybox"}]}}}}},
        "status": {"active": [{"name": "backup-1"}], "lastScheduleTime": ago(240)},
    });
    assert_eq!(
        row_json(cj, &obj),
        json!([
            "backup",
            "*/5 * * * *",
            "Etc/UTC",
            "False",
            1,
            "4m",
            "2d",
            "b",
            "busybox",
            "<none>"
        ])
    );
    let never = json!({"metadata": meta("n", 10), "spec": {"schedule": "@daily", "suspend": true}});
    assert_eq!(
        row_json(cj, &never),
        json!(["n", "@daily", "<none>", "True", 0, "<none>", "10s", "", "", "<none>"])
    );
    assert_eq!(cells(cj, &json!({"metadata": meta("d", 10)}))[3], "False");
}

#[test]
fn horizontal_pod_autoscalers() {
    let hpa = def("autoscaling", "v2", "horizontalpodautoscalers");
    expect_columns(hpa, "Name,Reference,Targets,MinPods,MaxPods,Replicas,Age");
    let obj = json!({
        "metadata": meta("web", 3600),
        "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
            "minReplicas": 2, "maxReplicas": 10, "metrics": [
                {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 50}}},
                {"type": "Resource", "resource": {"name": "memory", "target": {"type": "AverageValue", "averageValue": "500Mi"}}},
            ]},
        "status": {"currentReplicas": 3, "desiredReplicas": 3, "currentMetrics": [
            {"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": 23, "averageValue": "115m"}}},
            {"type": "Resource", "resource": {"name": "memory", "current": {"averageValue": "262144Ki"}}},
        ]},
    });
    assert_eq!(
        row_json(hpa, &obj),
        json!([
            "web",
            "Deployment/web",
            "cpu: 23%/50%, memory: 256Mi/500Mi",
            "2",
            10,
            3,
            "60m"
        ])
    );
    let fresh = json!({"metadata": meta("new", 5),
        "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web"}, "maxReplicas": 5}});
    assert_eq!(
        row_json(hpa, &fresh),
        json!(["new", "Deployment/web", "cpu: <unknown>/80%", "1", 5, 0, "5s"])
    );
    let many = json!({"metadata": meta("m", 5), "spec": {"maxReplicas": 3, "metrics": [
        {"type": "Pods", "pods": {"metric": {"name": "qps"}, "target": {"type": "AverageValue", "averageValue": "1k"}}},
        {"type": "Object", "object": {"target": {"type": "Value", "value": "10"}}},
        {"type": "External", "external": {"target": {"type": "AverageValue", "averageValue": "30"}}},
        {"type": "Bogus"},
    ]}, "status": {"currentMetrics": [{"type": "Pods", "pods": {"current": {"averageValue": "1500m"}}}]}});
    assert_eq!(cells(hpa, &many)[2], "1500m/1k, <unknown>/10 + 2 more...");
}

#[test]
fn autoscaling_v1_prints_through_v2() {
    let v1 = def("autoscaling", "v1", "horizontalpodautoscalers");
    expect_columns(v1, "Name,Reference,Targets,MinPods,MaxPods,Replicas,Age");
    let obj = json!({
        "apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler",
        "metadata": meta("web", 30),
        "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
            "minReplicas": 1, "maxReplicas": 4, "targetCPUUtilizationPercentage": 70},
        "status": {"currentReplicas": 1, "desiredReplicas": 1, "currentCPUUtilizationPercentage": 12},
    });
    assert_eq!(
        row_json(v1, &obj),
        json!(["web", "Deployment/web", "cpu: 12%/70%", "1", 4, 1, "30s"])
    );
}
