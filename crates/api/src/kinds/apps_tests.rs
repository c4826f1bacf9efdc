//! apps/v1 defaulting and validation tests.

use serde_json::{Value, json};

use crate::kinds::testutil::{admit, assert_matches, check_invalid, create_ok, def, merge};
use crate::strategy::Operation;

fn workload(kind: &str) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": kind,
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "app", "image": "nginx:1.27"}]}}
        }
    })
}

#[test]
fn deployment_defaults() {
    let d = create_ok(def("apps", "v1", "deployments"), workload("Deployment"));
    let spec = &d["spec"];
    assert_eq!(spec["replicas"], 1);
    assert_eq!(
        spec["strategy"],
        json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}})
    );
    assert_eq!(spec["revisionHistoryLimit"], 10);
    assert_eq!(spec["progressDeadlineSeconds"], 600);
    let pod = &spec["template"]["spec"];
    assert_eq!(pod["restartPolicy"], "Always");
    assert_eq!(pod["dnsPolicy"], "ClusterFirst");
    assert_eq!(pod["containers"][0]["imagePullPolicy"], "IfNotPresent");
    // Pod-only defaults stay out of templates.
    assert!(pod.get("enableServiceLinks").is_none());
    assert!(pod.get("tolerations").is_none());
}

#[test]
fn deployment_validation() {
    let d = def("apps", "v1", "deployments");
    let cases: Vec<(Value, &[&str])> = vec![
        (
            json!({"spec": {"replicas": -1}}),
            &["spec.replicas: Invalid value: -1: must be greater than or equal to 0"],
        ),
        (
            json!({"spec": {"selector": {"matchLabels": {"app": "other"}}}}),
            &[
                "spec.template.metadata.labels: Invalid value: map[string]string{\"app\":\"web\"}: `selector` does not match template `labels`",
            ],
        ),
        (
            json!({"spec": {"selector": null}}),
            &[
                "spec.selector: Required value",
                "spec.template.metadata.labels: Invalid value: map[string]string{\"app\":\"web\"}: `selector` does not match template `labels`",
            ],
        ),
        (
            json!({"spec": {"selector": {"matchExpressions": [{"key": "app", "operator": "In"}]}}}),
            &[
                "spec.selector.matchExpressions[0].values: Required value: must be specified when `operator` is 'In' or 'NotIn'",
                "spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string{\"app\":\"web\"}, MatchExpressions:[]v1.LabelSelectorRequirement{v1.LabelSelectorRequirement{Key:\"app\", Operator:\"In\", Values:[]string(nil)}}}: invalid label selector",
            ],
        ),
        (
            json!({"spec": {"template": {"spec": {"restartPolicy": "Never"}}}}),
            &["spec.template.spec.restartPolicy: Unsupported value: \"Never\": supported values: \"Always\""],
        ),
        (
            json!({"spec": {"template": {"spec": {"containers": []}}}}),
            &["spec.template.spec.containers: Required value"],
        ),
        (
            json!({"spec": {"template": {"metadata": {"labels": {"app": "web", "bad key": "x"}}}}}),
            &["spec.template.labels: Invalid value: \"bad key\": name part must consist of"],
        ),
        (
            json!({"spec": {"strategy": {"rollingUpdate": {"maxSurge": 0, "maxUnavailable": 0}}}}),
            &["spec.strategy.rollingUpdate.maxUnavailable: Invalid value: 0: may not be 0 when `maxSurge` is 0"],
        ),
        (
            json!({"spec": {"strategy": {"rollingUpdate": {"maxUnavailable": "150%"}}}}),
            &["spec.strategy.rollingUpdate.maxUnavailable: Invalid value: \"150%\": must not be greater than 100%"],
        ),
        (
            json!({"spec": {"strategy": {"rollingUpdate": {"maxSurge": "x"}}}}),
            &[
                "spec.strategy.rollingUpdate.maxSurge: Invalid value: \"x\": a valid percent string must be a numeric string followed by an ending '%'",
            ],
        ),
        (
            json!({"spec": {"strategy": {"type": "Recreate", "rollingUpdate": {"maxSurge": 1}}}}),
            &["spec.strategy.rollingUpdate: Forbidden: may not be specified when strategy `type` is 'Recreate'"],
        ),
        (
            json!({"spec": {"strategy": {"type": "BlueGreen"}}}),
            &["spec.strategy: Unsupported value: \"BlueGreen\""],
        ),
        (
            json!({"spec": {"minReadySeconds": 700}}),
            &["spec.progressDeadlineSeconds: Invalid value: 600: must be greater than minReadySeconds"],
        ),
    ];
    check_invalid(d, &workload("Deployment"), &cases);

    let old = create_ok(d, workload("Deployment"));
    let relabeled = merge(
        &old,
        &json!({"spec": {"selector": {"matchLabels": {"app": "web2"}},
        "template": {"metadata": {"labels": {"app": "web2"}}}}}),
    );
    let err = admit(d, relabeled, Some(&old), Operation::Update)
        .err()
        .unwrap_or_default();
    assert_matches(
        &err,
        &[
            "spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string{\"app\":\"web2\"}, MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: field is immutable",
        ],
        &json!("selector"),
    );
    assert!(
        admit(
            d,
            merge(&old, &json!({"spec": {"replicas": 3}})),
            Some(&old),
            Operation::Update
        )
        .is_ok()
    );
    let err = admit(
        d,
        merge(&old, &json!({"status": {"replicas": -1}})),
        Some(&old),
        Operation::UpdateStatus,
    )
    .err()
    .unwrap_or_default();
    assert_matches(
        &err,
        &["status.replicas: Invalid value: -1: must be greater than or equal to 0"],
        &json!("status"),
    );
}

#[test]
fn replica_sets_and_daemon_sets() {
    let rs = create_ok(def("apps", "v1", "replicasets"), workload("ReplicaSet"));
    assert_eq!(rs["spec"]["replicas"], 1);
    check_invalid(
        def("apps", "v1", "replicasets"),
        &workload("ReplicaSet"),
        &[(
            json!({"spec": {"template": {"spec": {"activeDeadlineSeconds": 5}}}}),
            &[
                "spec.template.spec.activeDeadlineSeconds: Invalid value: 5: activeDeadlineSeconds in ReplicaSet is not Supported",
            ],
        )],
    );

    let dsd = def("apps", "v1", "daemonsets");
    let ds = create_ok(dsd, workload("DaemonSet"));
    assert_eq!(
        ds["spec"]["updateStrategy"],
        json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 1}})
    );
    assert_eq!(ds["spec"]["revisionHistoryLimit"], 10);
    check_invalid(
        dsd,
        &workload("DaemonSet"),
        &[
            (
                json!({"spec": {"updateStrategy": {"rollingUpdate": {"maxUnavailable": 0, "maxSurge": 0}}}}),
                &["spec.updateStrategy.rollingUpdate.maxUnavailable: Required value: cannot be 0 when maxSurge is 0"],
            ),
            (
                json!({"spec": {"updateStrategy": {"rollingUpdate": {"maxUnavailable": 1, "maxSurge": 1}}}}),
                &[
                    "spec.updateStrategy.rollingUpdate.maxSurge: Invalid value: 1: may not be set when maxUnavailable is non-zero",
                ],
            ),
            (
                json!({"spec": {"updateStrategy": {"type": "Sometimes"}}}),
                &["spec.updateStrategy: Unsupported value: \"Sometimes\""],
            ),
        ],
    );
}

#[test]
fn stateful_sets() {
    let d = def("apps", "v1", "statefulsets");
    let base = merge(
        &workload("StatefulSet"),
        &json!({"spec": {
            "serviceName": "web",
            "template": {"spec": {"containers": [{"name": "app", "image": "nginx", "volumeMounts": [{"name": "data", "mountPath": "/data"}]}]}},
            "volumeClaimTemplates": [{"metadata": {"name": "data"},
                "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}]
        }}),
    );
    let sts = create_ok(d, base.clone());
    let spec = &sts["spec"];
    assert_eq!(spec["replicas"], 1);
    assert_eq!(spec["podManagementPolicy"], "OrderedReady");
    assert_eq!(
        spec["updateStrategy"],
        json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 0}})
    );
    assert_eq!(
        spec["persistentVolumeClaimRetentionPolicy"],
        json!({"whenDeleted": "Retain", "whenScaled": "Retain"})
    );
    assert_eq!(spec["revisionHistoryLimit"], 10);
    assert_eq!(spec["volumeClaimTemplates"][0]["spec"]["volumeMode"], "Filesystem");
    assert_eq!(spec["volumeClaimTemplates"][0]["status"]["phase"], "Pending");
    check_invalid(
        d,
        &base,
        &[
            (
                json!({"spec": {"podManagementPolicy": "Random"}}),
                &["spec.podManagementPolicy: Invalid value: \"Random\": must be 'OrderedReady' or 'Parallel'"],
            ),
            (
                json!({"spec": {"volumeClaimTemplates": [{"metadata": {"name": "other"}, "spec": {"accessModes": ["ReadWriteOnce"]}}]}}),
                &[
                    "spec.template.spec.containers[0].volumeMounts[0].name: Not found: \"data\"",
                    "spec.volumeClaimTemplates[0].spec.resources[storage]: Required value",
                ],
            ),
        ],
    );
    let err = admit(
        d,
        merge(&sts, &json!({"spec": {"serviceName": "other"}})),
        Some(&sts),
        Operation::Update,
    )
    .err()
    .unwrap_or_default();
    assert_matches(
        &err,
        &["spec: Forbidden: updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template'"],
        &json!("sts"),
    );
    assert!(
        admit(
            d,
            merge(&sts, &json!({"spec": {"replicas": 5}})),
            Some(&sts),
            Operation::Update
        )
        .is_ok()
    );
}

#[test]
fn controller_revisions() {
    let d = def("apps", "v1", "controllerrevisions");
    let base = json!({"metadata": {"name": "web-1", "namespace": "default"}, "revision": 1, "data": {"spec": {}}});
    let cr = create_ok(d, base.clone());
    check_invalid(
        d,
        &base,
        &[(
            json!({"revision": -1}),
            &["revision: Invalid value: -1: must be greater than or equal to 0"],
        )],
    );
    let err = admit(
        d,
        merge(&cr, &json!({"data": {"spec": {"x": 1}}})),
        Some(&cr),
        Operation::Update,
    )
    .err()
    .unwrap_or_default();
    assert_matches(
        &err,
        &["data: Invalid value: {\"spec\":{\"x\":1}}: field is immutable"],
        &json!("data"),
    );
}
