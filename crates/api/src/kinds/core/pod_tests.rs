//! Pod defaulting and validation tests, through the kind's full admission.

use serde_json::{Value, json};

use crate::kinds::testutil::{admit, assert_matches, check_invalid, create_ok, def, merge};
use crate::strategy::Operation;

fn pods() -> &'static crate::registry::ResourceDef {
    def("", "v1", "pods")
}

fn base() -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {
            "containers": [{
                "name": "app", "image": "nginx",
                "ports": [{"containerPort": 80, "name": "http"}],
                "resources": {"limits": {"cpu": "0.5", "memory": "128Mi"}},
                "livenessProbe": {"httpGet": {"port": 80}},
                "env": [{"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
                "volumeMounts": [{"name": "data", "mountPath": "/data"}]
            }],
            "volumes": [{"name": "data"}, {"name": "cfg", "configMap": {"name": "cfg"}}]
        }
    })
}

#[test]
fn valid_pod_gets_defaults() {
    let pod = create_ok(pods(), base());
    let spec = &pod["spec"];
    assert_eq!(spec["restartPolicy"], "Always");
    assert_eq!(spec["dnsPolicy"], "ClusterFirst");
    assert_eq!(spec["schedulerName"], "default-scheduler");
    assert_eq!(spec["terminationGracePeriodSeconds"], 30);
    assert_eq!(spec["securityContext"], json!({}));
    assert_eq!(spec["enableServiceLinks"], true);
    assert_eq!(spec["priority"], 0);
    assert_eq!(spec["preemptionPolicy"], "PreemptLowerPriority");
    let c = &spec["containers"][0];
    assert_eq!(c["terminationMessagePath"], "/dev/termination-log");
    assert_eq!(c["terminationMessagePolicy"], "File");
    assert_eq!(c["imagePullPolicy"], "Always");
    assert_eq!(c["ports"][0]["protocol"], "TCP");
    assert_eq!(c["resources"]["limits"]["cpu"], "500m");
    assert_eq!(c["resources"]["requests"], json!({"cpu": "500m", "memory": "128Mi"}));
    assert_eq!(c["livenessProbe"]["timeoutSeconds"], 1);
    assert_eq!(c["livenessProbe"]["periodSeconds"], 10);
    assert_eq!(c["livenessProbe"]["successThreshold"], 1);
    assert_eq!(c["livenessProbe"]["failureThreshold"], 3);
    assert_eq!(c["livenessProbe"]["httpGet"]["scheme"], "HTTP");
    assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/");
    assert_eq!(c["env"][0]["valueFrom"]["fieldRef"]["apiVersion"], "v1");
    assert_eq!(spec["volumes"][0]["emptyDir"], json!({}));
    assert_eq!(spec["volumes"][1]["configMap"]["defaultMode"], 420);
    assert_eq!(
        spec["tolerations"],
        json!([
            {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
            {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}
        ])
    );
    assert_eq!(pod["status"], json!({"phase": "Pending", "qosClass": "Guaranteed"}));
}

#[test]
fn qos_classes_and_existing_tolerations() {
    let best_effort = merge(
        &base(),
        &json!({"spec": {"containers": [{"name": "a", "image": "nginx:1.25"}], "volumes": null}}),
    );
    let pod = create_ok(pods(), best_effort);
    assert_eq!(pod["status"]["qosClass"], "BestEffort");
    assert_eq!(pod["spec"]["containers"][0]["imagePullPolicy"], "IfNotPresent");
    let burstable = merge(
        &base(),
        &json!({"spec": {"volumes": null, "tolerations": [{"operator": "Exists"}],
            "containers": [{"name": "a", "image": "nginx", "resources": {"requests": {"cpu": "100m"}}}]}}),
    );
    let pod = create_ok(pods(), burstable);
    assert_eq!(pod["status"]["qosClass"], "Burstable");
    // A toleration of every taint already covers both default ones.
    assert_eq!(pod["spec"]["tolerations"], json!([{"operator": "Exists"}]));
}

#[test]
fn invalid_pods() {
    let c = |extra: Value| {
        let mut container = base()["spec"]["containers"][0].clone();
        container = merge(&container, &extra);
        json!({"spec": {"containers": [container]}})
    };
    let cases: Vec<(Value, &[&str])> = vec![
        (
            json!({"spec": {"containers": []}}),
            &["spec.containers: Required value"],
        ),
        (
            c(json!({"name": "App_1"})),
            &["spec.containers[0].name: Invalid value: \"App_1\": a lowercase RFC 1123 label must consist of"],
        ),
        (c(json!({"image": ""})), &["spec.containers[0].image: Required value"]),
        (
            c(json!({"ports": [{"containerPort": 70000}]})),
            &[
                "spec.containers[0].ports[0].containerPort: Invalid value: 70000: must be between 1 and 65535, inclusive",
            ],
        ),
        (
            c(json!({"ports": [{"containerPort": 80, "protocol": "HTTP"}]})),
            &[
                "spec.containers[0].ports[0].protocol: Unsupported value: \"HTTP\": supported values: \"SCTP\", \"TCP\", \"UDP\"",
            ],
        ),
        (
            c(json!({"ports": [{"containerPort": 80, "name": "a"}, {"containerPort": 81, "name": "a"}]})),
            &["spec.containers[0].ports[1].name: Duplicate value: \"a\""],
        ),
        (
            c(json!({"ports": [{"containerPort": 80, "name": "Web"}]})),
            &[
                "spec.containers[0].ports[0].name: Invalid value: \"Web\": must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)",
            ],
        ),
        (
            c(json!({"resources": {"requests": {"cpu": "2"}, "limits": {"cpu": "1"}}})),
            &[
                "spec.containers[0].resources.requests: Invalid value: \"2\": must be less than or equal to cpu limit of 1",
            ],
        ),
        (
            c(json!({"resources": {"limits": {"cpu": "lots"}}})),
            &[
                "spec.containers[0].resources.limits[cpu]: Invalid value: \"lots\": quantities must match the regular expression",
                // Requests were defaulted from the limits.
                "spec.containers[0].resources.requests[cpu]: Invalid value: \"lots\": quantities must match the regular expression",
            ],
        ),
        (
            c(json!({"resources": {"requests": {"cpu": "-1"}}})),
            &["spec.containers[0].resources.requests[cpu]: Invalid value: \"-1\": must be greater than or equal to 0"],
        ),
        (
            c(json!({"resources": {"requests": {"gpu": "1"}}})),
            &[
                "spec.containers[0].resources.requests[gpu]: Invalid value: \"gpu\": must be a standard resource for containers",
                "spec.containers[0].resources.limits: Required value: Limit must be set for non overcommitable resources",
            ],
        ),
        (
            c(json!({"volumeMounts": [{"name": "missing", "mountPath": "/x"}]})),
            &["spec.containers[0].volumeMounts[0].name: Not found: \"missing\""],
        ),
        (
            c(json!({"env": [{"name": "A=B"}]})),
            &[
                "spec.containers[0].env[0].name: Invalid value: \"A=B\": a valid environment variable name must consist only of printable ASCII characters other than '='",
            ],
        ),
        (
            c(json!({"env": [{"name": "A", "value": "x", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}]})),
            &[
                "spec.containers[0].env[0].valueFrom: Invalid value: \"\": may not be specified when `value` is not empty",
            ],
        ),
        (
            c(json!({"env": [{"name": "A", "valueFrom": {"fieldRef": {"fieldPath": "spec.bogus"}}}]})),
            &["spec.containers[0].env[0].valueFrom.fieldRef.fieldPath: Unsupported value: \"spec.bogus\""],
        ),
        (
            c(json!({"imagePullPolicy": "Sometimes"})),
            &[
                "spec.containers[0].imagePullPolicy: Unsupported value: \"Sometimes\": supported values: \"Always\", \"IfNotPresent\", \"Never\"",
            ],
        ),
        (
            c(json!({"livenessProbe": {"httpGet": {"port": 80}, "successThreshold": 2}})),
            &["spec.containers[0].livenessProbe.successThreshold: Invalid value: 2: must be 1"],
        ),
        (
            c(json!({"readinessProbe": {"grpc": {"port": 0, "mode": "mTLS"}}})),
            &[
                "spec.containers[0].readinessProbe.grpc.port: Invalid value: 0: must be between 1 and 65535, inclusive",
                "spec.containers[0].readinessProbe.grpc.mode: Unsupported value: \"mTLS\": supported values: \"Plaintext\", \"TLS\"",
            ],
        ),
        (
            c(json!({"readinessProbe": {"periodSeconds": 5}})),
            &["spec.containers[0].readinessProbe: Required value: must specify a handler type"],
        ),
        (
            json!({"spec": {"restartPolicy": "Sometimes"}}),
            &[
                "spec.restartPolicy: Unsupported value: \"Sometimes\": supported values: \"Always\", \"OnFailure\", \"Never\"",
            ],
        ),
        (
            json!({"spec": {"dnsPolicy": "Google"}}),
            &[
                "spec.dnsPolicy: Unsupported value: \"Google\": supported values: \"ClusterFirstWithHostNet\", \"ClusterFirst\", \"Default\", \"None\"",
            ],
        ),
        (
            json!({"spec": {"activeDeadlineSeconds": 0}}),
            &["spec.activeDeadlineSeconds: Invalid value: 0: must be between 1 and 2147483647, inclusive"],
        ),
        (
            json!({"spec": {"terminationGracePeriodSeconds": -5}}),
            &["spec.terminationGracePeriodSeconds: Invalid value: -5: must be greater than or equal to 0"],
        ),
        (
            json!({"spec": {"nodeSelector": {"disk": "very fast"}}}),
            &["spec.nodeSelector: Invalid value: \"very fast\": a valid label must be an empty string"],
        ),
        (
            json!({"spec": {"tolerations": [{"key": "", "operator": "Equal", "value": "x"}]}}),
            &["spec.tolerations[0].operator: Invalid value: \"Equal\": operator must be Exists when `key` is empty"],
        ),
        (
            json!({"spec": {"tolerations": [{"key": "k", "effect": "NoSchedule", "tolerationSeconds": 5}]}}),
            &[
                "spec.tolerations[0].effect: Invalid value: \"NoSchedule\": effect must be 'NoExecute' when `tolerationSeconds` is set",
            ],
        ),
        (
            json!({"spec": {"volumes": [{"name": "a"}, {"name": "a"}]}}),
            &[
                "spec.volumes[1].name: Duplicate value: \"a\"",
                "spec.containers[0].volumeMounts[0].name: Not found: \"data\"",
            ],
        ),
        (
            json!({"spec": {"volumes": [{"name": "data", "emptyDir": {}, "hostPath": {"path": "/x"}}]}}),
            &[
                "spec.volumes[0].emptyDir: Forbidden: may not specify more than 1 volume type",
                "spec.containers[0].volumeMounts[0].name: Not found: \"data\"",
            ],
        ),
        (
            json!({"spec": {"volumes": [{"name": "data", "secret": {}}]}}),
            &[
                "spec.volumes[0].secret.secretName: Required value",
                "spec.containers[0].volumeMounts[0].name: Not found: \"data\"",
            ],
        ),
        (
            json!({"spec": {"initContainers": [{"name": "app", "image": "busybox"}]}}),
            &["spec.initContainers[0].name: Duplicate value: \"app\""],
        ),
        (
            json!({"metadata": {"name": "Web"}}),
            &["metadata.name: Invalid value: \"Web\": a lowercase RFC 1123 subdomain"],
        ),
    ];
    check_invalid(pods(), &base(), &cases);
}

#[test]
fn pod_updates() {
    let old = create_ok(pods(), base());
    let update = |patch: Value| admit(pods(), merge(&old, &patch), Some(&old), Operation::Update);
    // Images, activeDeadlineSeconds (from unset), added tolerations and labels may change.
    let mut tolerations = old["spec"]["tolerations"].as_array().cloned().unwrap_or_default();
    tolerations.push(json!({"key": "gpu", "operator": "Exists"}));
    let mut containers = old["spec"]["containers"].clone();
    containers[0]["image"] = json!("nginx:1.27");
    let ok = update(json!({"metadata": {"labels": {"v": "2"}},
        "spec": {"containers": containers, "activeDeadlineSeconds": 60, "tolerations": tolerations}}));
    assert!(ok.is_ok(), "{ok:?}");

    let err = update(json!({"spec": {"nodeName": "other"}})).err().unwrap_or_default();
    assert_eq!(err.len(), 1, "{err:?}");
    assert!(
        err[0].starts_with("spec: Forbidden: pod updates may not change fields other than `spec.containers[*].image`,"),
        "{}",
        err[0]
    );
    assert!(err[0].contains("+ \tNodeName: \"other\","), "{}", err[0]);

    let mut containers = old["spec"]["containers"].clone();
    if let Some(list) = containers.as_array_mut() {
        list.push(json!({"name": "b", "image": "busybox"}));
    }
    let err = update(json!({"spec": {"containers": containers}}))
        .err()
        .unwrap_or_default();
    assert_matches(
        &err,
        &["spec.containers: Forbidden: pod updates may not add or remove containers"],
        &json!("add"),
    );

    // The default tolerations come back on every write, so remove a client-added one.
    let tolerated = create_ok(
        pods(),
        merge(
            &base(),
            &json!({"spec": {"tolerations": [{"key": "gpu", "operator": "Exists"}]}}),
        ),
    );
    let err = admit(
        pods(),
        merge(&tolerated, &json!({"spec": {"tolerations": []}})),
        Some(&tolerated),
        Operation::Update,
    )
    .err()
    .unwrap_or_default();
    assert_matches(
        &err,
        &["spec.tolerations: Forbidden: existing toleration can not be modified except its tolerationSeconds"],
        &json!("rm"),
    );

    let with_deadline = merge(&old, &json!({"spec": {"activeDeadlineSeconds": 60}}));
    let err = admit(
        pods(),
        merge(&with_deadline, &json!({"spec": {"activeDeadlineSeconds": 120}})),
        Some(&with_deadline),
        Operation::Update,
    )
    .err()
    .unwrap_or_default();
    assert_matches(
        &err,
        &["spec.activeDeadlineSeconds: Invalid value: 120: must be less than or equal to previous value"],
        &json!("ads"),
    );

    let err = update(json!({"metadata": {"name": "other"}})).err().unwrap_or_default();
    assert_matches(
        &err,
        &["metadata.name: Invalid value: \"other\": field is immutable"],
        &json!("name"),
    );
}

#[test]
fn pod_status_updates() {
    let old = create_ok(pods(), base());
    let status = |s: Value| {
        admit(
            pods(),
            merge(&old, &json!({"status": s})),
            Some(&old),
            Operation::UpdateStatus,
        )
    };
    assert!(status(json!({"phase": "Running", "podIP": "10.0.0.5", "podIPs": [{"ip": "10.0.0.5"}]})).is_ok());
    let err = status(json!({"podIPs": [{"ip": "10.0.0.500"}]}))
        .err()
        .unwrap_or_default();
    assert_matches(
        &err,
        &["status.podIPs[0].ip: Invalid value: \"10.0.0.500\": must be a valid IP address"],
        &json!("ip"),
    );
    let done = merge(&old, &json!({"status": {"phase": "Succeeded"}}));
    let err = admit(
        pods(),
        merge(&done, &json!({"status": {"phase": "Running"}})),
        Some(&done),
        Operation::UpdateStatus,
    )
    .err()
    .unwrap_or_default();
    assert_matches(
        &err,
        &["status.phase: Forbidden: cannot transition from terminal phase Succeeded to Running"],
        &json!("phase"),
    );
}

/// The ServiceAccount admission plugin's default name on create, and the deprecated
/// `serviceAccount` kept equal to `serviceAccountName` (in templates too).
#[test]
fn service_account_defaults() {
    let create = |mut pod: Value| {
        crate::kinds::core::pod_defaults::admit_service_account(&mut pod);
        create_ok(pods(), pod)
    };
    let pod = create(base());
    assert_eq!(
        (&pod["spec"]["serviceAccountName"], &pod["spec"]["serviceAccount"]),
        (&json!("default"), &json!("default"))
    );
    let named = create(merge(&base(), &json!({"spec": {"serviceAccountName": "builder"}})));
    assert_eq!(named["spec"]["serviceAccount"], "builder");
    let deprecated = create(merge(&base(), &json!({"spec": {"serviceAccount": "old"}})));
    assert_eq!(deprecated["spec"]["serviceAccountName"], "old");
    let mirror = create(merge(
        &base(),
        &json!({"metadata": {"annotations": {"kubernetes.io/config.mirror": "abc"}}}),
    ));
    assert!(mirror["spec"].get("serviceAccountName").is_none(), "{}", mirror["spec"]);
    // Without the create-time admission (an update), nothing names one.
    let updated = create_ok(pods(), base());
    assert!(updated["spec"].get("serviceAccountName").is_none());
    let deployment = create_ok(
        def("apps", "v1", "deployments"),
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d", "namespace": "default"},
               "spec": {"selector": {"matchLabels": {"a": "b"}}, "template": {"metadata": {"labels": {"a": "b"}},
                        "spec": {"serviceAccountName": "builder", "containers": [{"name": "c", "image": "nginx"}]}}}}),
    );
    assert_eq!(deployment["spec"]["template"]["spec"]["serviceAccount"], "builder");
}
