//! Three-way (client-side apply) patch tests: the exact bodies kubectl 1.37 sends (kubectl-wire
//! §7.3), the patch applied back to the live object, and upstream's list, `$retainKeys`,
//! `null` and conflict rules.

use serde_json::{Value, json};

use super::meta::Node;
use super::*;

const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

fn deployment_meta() -> PatchMeta {
    patch_meta_for_kind("apps", "v1", "Deployment")
}

/// The last-applied annotation kubectl writes for a manifest: compact, sorted keys,
/// `"annotations":{}` where the annotation itself goes, and a trailing newline.
fn last_applied(manifest: &Value) -> String {
    let mut m = manifest.clone();
    m["metadata"]["annotations"] = json!({});
    let m: Value = serde_json::from_str(&m.to_string()).expect("json");
    format!("{}\n", to_sorted_string(&m))
}

fn to_sorted_string(v: &Value) -> String {
    fn sort(v: &Value) -> Value {
        match v {
            Value::Object(map) => {
                let mut keys: Vec<&String> = map.keys().collect();
                keys.sort();
                Value::Object(keys.into_iter().map(|k| (k.clone(), sort(&map[k]))).collect())
            }
            Value::Array(list) => Value::Array(list.iter().map(sort).collect()),
            other => other.clone(),
        }
    }
    serde_json::to_string(&sort(v)).expect("json")
}

/// What kubectl diffs against: the manifest with its new last-applied annotation.
fn applied(manifest: &Value) -> Value {
    let mut m = manifest.clone();
    m["metadata"]["annotations"] = json!({ LAST_APPLIED: last_applied(manifest) });
    m
}

/// The original kubectl reads back from the live object's annotation.
fn original_of(manifest: &Value) -> Value {
    serde_json::from_str(&last_applied(manifest)).expect("json")
}

/// The live object after applying `manifest`: server metadata, defaults and status.
fn live(manifest: &Value) -> Value {
    let mut m = applied(manifest);
    let meta = m["metadata"].as_object_mut().expect("metadata");
    meta.insert("uid".into(), json!("0a1b"));
    meta.insert("resourceVersion".into(), json!("42"));
    meta.insert("generation".into(), json!(2));
    meta.insert("creationTimestamp".into(), json!("2026-01-01T00:00:00Z"));
    let spec = &mut m["spec"];
    spec["progressDeadlineSeconds"] = json!(600);
    spec["revisionHistoryLimit"] = json!(10);
    spec["strategy"] = json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}});
    spec["template"]["metadata"]["creationTimestamp"] = Value::Null;
    let pod = &mut spec["template"]["spec"];
    pod["restartPolicy"] = json!("Always");
    pod["dnsPolicy"] = json!("ClusterFirst");
    pod["terminationGracePeriodSeconds"] = json!(30);
    pod["securityContext"] = json!({});
    for c in pod["containers"].as_array_mut().into_iter().flatten() {
        c["imagePullPolicy"] = json!("IfNotPresent");
        c["terminationMessagePath"] = json!("/dev/termination-log");
        c["resources"] = json!({});
        for p in c["ports"].as_array_mut().into_iter().flatten() {
            p["protocol"] = json!("TCP");
        }
    }
    m["status"] = json!({"replicas": 2, "readyReplicas": 2, "observedGeneration": 2,
                         "conditions": [{"type": "Available", "status": "True"}]});
    m
}

fn deployment(replicas: u32, labels: Value, image: &str, env: Value, ports: Value) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default", "labels": labels},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "nginx", "image": image, "env": env, "ports": ports}]},
            },
        },
    })
}

fn v1() -> Value {
    deployment(
        2,
        json!({"app": "web"}),
        "nginx:1.25",
        json!([{"name": "FOO", "value": "bar"}, {"name": "BAR", "value": "x"}]),
        json!([{"containerPort": 80}, {"containerPort": 443}]),
    )
}

fn v2() -> Value {
    deployment(
        3,
        json!({"app": "web"}),
        "nginx:1.25",
        json!([{"name": "FOO", "value": "baz"}, {"name": "BAR", "value": "x"}]),
        json!([{"containerPort": 80}, {"containerPort": 443}]),
    )
}

fn v3() -> Value {
    deployment(
        3,
        json!({"app": "web", "tier": "frontend"}),
        "nginx:1.27",
        json!([{"name": "NEW", "value": "1"}, {"name": "FOO", "value": "baz"}]),
        json!([{"containerPort": 80}]),
    )
}

fn three_way(original: Option<&Value>, modified: &Value, current: &Value, meta: &PatchMeta) -> Value {
    three_way_merge_patch(original, modified, current, meta, true).unwrap_or_else(|e| panic!("three-way failed: {e}"))
}

/// The patch kubectl sends going from manifest `from` to manifest `to`, live object `current`.
fn apply_patch(from: &Value, to: &Value, current: &Value) -> Value {
    three_way(Some(&original_of(from)), &applied(to), current, &deployment_meta())
}

fn merge(current: &Value, patch: &Value, meta: &PatchMeta) -> Value {
    strategic_merge(current, patch, meta).unwrap_or_else(|e| panic!("merge failed: {e}"))
}

/// A wire body with its `"…"` last-applied placeholder filled in.
fn wire(body: &str, annotation: &str) -> String {
    body.replace("\"…\"", &Value::String(annotation.into()).to_string())
}

/// Asserts that `actual` holds every field of `expected` (merge lists matched by merge key,
/// in `expected`'s relative order; other lists equal), and none of its `null` fields.
fn assert_contains(actual: &Value, expected: &Value, node: Node<'_>, meta: &FieldMeta<'_>, path: &str) {
    match expected {
        Value::Object(map) => {
            for (key, want) in map {
                let (child, field) = node.field(key);
                let here = format!("{path}.{key}");
                if want.is_null() {
                    assert!(actual.get(key).is_none(), "{here} should be gone: {actual}");
                    continue;
                }
                let got = actual.get(key).unwrap_or_else(|| panic!("{here} missing in {actual}"));
                assert_contains(got, want, child, &field, &here);
            }
        }
        Value::Array(want) if meta.merges() => {
            let got = actual
                .as_array()
                .unwrap_or_else(|| panic!("{path} is not a list: {actual}"));
            let mut last = None;
            for item in want {
                let found = match meta.merge_key {
                    Some(key) => got.iter().position(|g| g.get(key) == item.get(key)),
                    None => got.iter().position(|g| g == item),
                };
                let i = found.unwrap_or_else(|| panic!("{path}: {item} missing in {actual}"));
                assert!(last < Some(i), "{path}: {item} out of order in {actual}");
                last = Some(i);
                assert_contains(&got[i], item, node.items(), &FieldMeta::default(), path);
            }
        }
        _ => assert_eq!(actual, expected, "{path}"),
    }
}

fn assert_applies(current: &Value, patch: &Value, modified: &Value, meta: &PatchMeta) -> Value {
    let out = merge(current, patch, meta);
    assert_contains(&out, modified, meta.root(), &FieldMeta::default(), "");
    out
}

#[test]
fn kubectl_wire_v1_to_v2_body() {
    let patch = apply_patch(&v1(), &v2(), &live(&v1()));
    let body = r#"{"metadata":{"annotations":{"kubectl.kubernetes.io/last-applied-configuration":"…"}},"spec":{"replicas":3,"template":{"spec":{"$setElementOrder/containers":[{"name":"nginx"}],"containers":[{"$setElementOrder/env":[{"name":"FOO"},{"name":"BAR"}],"env":[{"name":"FOO","value":"baz"}],"name":"nginx"}]}}}}"#;
    assert_eq!(patch.to_string(), wire(body, &last_applied(&v2())));
    let out = assert_applies(&live(&v1()), &patch, &applied(&v2()), &deployment_meta());
    assert_eq!(out["status"], live(&v1())["status"]);
    assert_eq!(out["spec"]["strategy"]["type"], "RollingUpdate");
}

#[test]
fn kubectl_wire_v2_to_v3_body() {
    let patch = apply_patch(&v2(), &v3(), &live(&v2()));
    let body = r#"{"metadata":{"annotations":{"kubectl.kubernetes.io/last-applied-configuration":"…"},"labels":{"tier":"frontend"}},"spec":{"template":{"spec":{"$setElementOrder/containers":[{"name":"nginx"}],"containers":[{"$setElementOrder/env":[{"name":"NEW"},{"name":"FOO"}],"$setElementOrder/ports":[{"containerPort":80}],"env":[{"name":"NEW","value":"1"},{"$patch":"delete","name":"BAR"}],"image":"nginx:1.27","name":"nginx","ports":[{"$patch":"delete","containerPort":443}]}]}}}}"#;
    assert_eq!(patch.to_string(), wire(body, &last_applied(&v3())));
    // kubectl-wire §7.3: what the server must make of it.
    let out = assert_applies(&live(&v2()), &patch, &applied(&v3()), &deployment_meta());
    let container = &out["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(
        container["env"],
        json!([{"name": "NEW", "value": "1"}, {"name": "FOO", "value": "baz"}])
    );
    assert_eq!(container["ports"], json!([{"containerPort": 80, "protocol": "TCP"}]));
    assert_eq!(out["metadata"]["labels"], json!({"app": "web", "tier": "frontend"}));
}

#[test]
fn kubectl_wire_label_removed_by_null() {
    let mut v4 = v3();
    v4["metadata"]["labels"] = json!({"app": "web"});
    let current = merge(
        &live(&v2()),
        &apply_patch(&v2(), &v3(), &live(&v2())),
        &deployment_meta(),
    );
    let patch = apply_patch(&v3(), &v4, &current);
    let body = r#"{"metadata":{"annotations":{"kubectl.kubernetes.io/last-applied-configuration":"…"},"labels":{"tier":null}}}"#;
    assert_eq!(patch.to_string(), wire(body, &last_applied(&v4)));
    let out = assert_applies(&current, &patch, &applied(&v4), &deployment_meta());
    assert_eq!(out["metadata"]["labels"], json!({"app": "web"}));
}

#[test]
fn round_trip_keeps_fields_only_live_has() {
    let mut current = live(&v2());
    current["metadata"]["annotations"]["deployment.kubernetes.io/revision"] = json!("2");
    current["metadata"]["labels"]["owner"] = json!("team-a");
    let env = current["spec"]["template"]["spec"]["containers"][0]["env"]
        .as_array_mut()
        .expect("env");
    env.push(json!({"name": "INJECTED", "value": "by-webhook"}));
    let meta = deployment_meta();
    let patch = apply_patch(&v2(), &v3(), &current);
    let out = assert_applies(&current, &patch, &applied(&v3()), &meta);

    // Removed from the manifest: gone.
    let container = &out["spec"]["template"]["spec"]["containers"][0];
    let names: Vec<&str> = container["env"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["name"].as_str())
        .collect();
    assert!(!names.contains(&"BAR"), "{names:?}");
    assert_eq!(container["ports"].as_array().map(Vec::len), Some(1));
    // Only live has them: kept.
    assert!(names.contains(&"INJECTED"), "{names:?}");
    assert_eq!(out["metadata"]["annotations"]["deployment.kubernetes.io/revision"], "2");
    assert_eq!(out["metadata"]["labels"]["owner"], "team-a");
    assert_eq!(out["metadata"]["uid"], "0a1b");
    assert_eq!(out["status"], current["status"]);
    assert_eq!(out["spec"]["strategy"], current["spec"]["strategy"]);
    assert_eq!(out["spec"]["revisionHistoryLimit"], 10);
    assert_eq!(container["imagePullPolicy"], "IfNotPresent");
    assert_eq!(container["ports"][0]["protocol"], "TCP");
}

#[test]
fn no_op_apply_is_empty() {
    for manifest in [v1(), v2(), v3()] {
        let patch = apply_patch(&manifest, &manifest, &live(&manifest));
        assert_eq!(patch, json!({}), "{manifest}");
    }
}

#[test]
fn first_apply_without_original_never_deletes() {
    let mut current = live(&v2());
    current["metadata"]["annotations"] = json!({});
    let patch = three_way(None, &applied(&v3()), &current, &deployment_meta());
    let text = patch.to_string();
    assert!(!text.contains("delete") && !text.contains("null"), "{text}");
    let out = assert_applies(&current, &patch, &applied(&v3()), &deployment_meta());
    let env = &out["spec"]["template"]["spec"]["containers"][0]["env"];
    assert_eq!(env.as_array().map(Vec::len), Some(3), "BAR stays: {env}");
}

#[test]
fn primitive_merge_list_finalizers() {
    let meta = deployment_meta();
    let original = json!({"metadata": {"name": "web", "finalizers": ["a", "b"]}});
    let modified = json!({"metadata": {"name": "web", "finalizers": ["b", "c"]}});
    let current = json!({"metadata": {"name": "web", "finalizers": ["a", "b", "x"]}});
    let patch = three_way(Some(&original), &modified, &current, &meta);
    assert_eq!(
        patch.to_string(),
        r#"{"metadata":{"$deleteFromPrimitiveList/finalizers":["a"],"$setElementOrder/finalizers":["b","c"],"finalizers":["c"]}}"#
    );
    let out = assert_applies(&current, &patch, &modified, &meta);
    let finalizers = out["metadata"]["finalizers"].as_array().cloned().unwrap_or_default();
    assert!(
        !finalizers.contains(&json!("a")) && finalizers.contains(&json!("x")),
        "{finalizers:?}"
    );

    // Same set in another order: only the order directive.
    let reordered = json!({"metadata": {"name": "web", "finalizers": ["b", "a"]}});
    let patch = three_way(Some(&original), &reordered, &original, &meta);
    assert_eq!(patch, json!({"metadata": {"$setElementOrder/finalizers": ["b", "a"]}}));
    assert_eq!(
        merge(&original, &patch, &meta)["metadata"]["finalizers"],
        json!(["b", "a"])
    );
}

fn with_pod(strategy: Value, volumes: Value) -> Value {
    json!({"spec": {"strategy": strategy, "template": {"spec": {
        "containers": [{"name": "c", "image": "i"}], "volumes": volumes}}}})
}

#[test]
fn retain_keys_deployment_strategy_and_volume_source() {
    let meta = deployment_meta();
    let original = with_pod(
        json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}}),
        json!([{"name": "data", "emptyDir": {}}]),
    );
    let modified = with_pod(
        json!({"type": "Recreate"}),
        json!([{"name": "data", "configMap": {"name": "cm"}}]),
    );
    let current = with_pod(
        json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": "25%"}}),
        json!([{"name": "data", "emptyDir": {}}]),
    );
    let patch = three_way(Some(&original), &modified, &current, &meta);
    assert_eq!(
        patch.to_string(),
        r#"{"spec":{"strategy":{"$retainKeys":["type"],"rollingUpdate":null,"type":"Recreate"},"template":{"spec":{"$setElementOrder/volumes":[{"name":"data"}],"volumes":[{"$retainKeys":["configMap","name"],"configMap":{"name":"cm"},"emptyDir":null,"name":"data"}]}}}}"#
    );
    let out = assert_applies(&current, &patch, &modified, &meta);
    assert_eq!(out["spec"]["strategy"], json!({"type": "Recreate"}));
    assert_eq!(
        out["spec"]["template"]["spec"]["volumes"],
        json!([{"name": "data", "configMap": {"name": "cm"}}])
    );
}

#[test]
fn retain_keys_sent_when_live_has_defaulted_siblings() {
    // As upstream: the live map has keys the manifest lacks, so `$retainKeys` goes out even
    // though nothing changed (the server then defaults the cleared keys again).
    let meta = deployment_meta();
    let manifest = with_pod(
        json!({"type": "RollingUpdate"}),
        json!([{"name": "data", "emptyDir": {}}]),
    );
    let current = with_pod(
        json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}}),
        json!([{"name": "data", "emptyDir": {}}]),
    );
    let patch = three_way(Some(&manifest), &manifest, &current, &meta);
    assert_eq!(patch, json!({"spec": {"strategy": {"$retainKeys": ["type"]}}}));
}

fn pod_spec(containers: Value) -> Value {
    json!({"spec": {"template": {"spec": {"containers": containers}}}})
}

#[test]
fn nested_merge_lists_containers_ports_env_volume_mounts() {
    let meta = deployment_meta();
    let original = pod_spec(json!([
        {"name": "app", "image": "a:1", "ports": [{"containerPort": 8080}],
         "env": [{"name": "A", "value": "1"}],
         "volumeMounts": [{"name": "data", "mountPath": "/data"}, {"name": "cache", "mountPath": "/cache"}]},
        {"name": "sidecar", "image": "s:1"}
    ]));
    let modified = pod_spec(json!([
        {"name": "app", "image": "a:1", "ports": [{"containerPort": 8080}, {"containerPort": 9090, "name": "metrics"}],
         "env": [{"name": "A", "value": "1"}],
         "volumeMounts": [{"name": "data", "mountPath": "/data", "readOnly": true}]},
        {"name": "helper", "image": "h:1"}
    ]));
    let current = pod_spec(json!([
        {"name": "app", "image": "a:1", "ports": [{"containerPort": 8080, "protocol": "TCP"}],
         "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "others"}],
         "volumeMounts": [{"name": "data", "mountPath": "/data"}, {"name": "cache", "mountPath": "/cache"}],
         "imagePullPolicy": "IfNotPresent"},
        {"name": "sidecar", "image": "s:1", "imagePullPolicy": "IfNotPresent"}
    ]));
    let patch = three_way(Some(&original), &modified, &current, &meta);
    // The live env has an item the manifest lacks, so (as upstream) its order goes out too.
    assert_eq!(
        patch.to_string(),
        concat!(
            r#"{"spec":{"template":{"spec":{"$setElementOrder/containers":[{"name":"app"},{"name":"helper"}],"#,
            r#""containers":[{"$setElementOrder/env":[{"name":"A"}],"$setElementOrder/ports":[{"containerPort":8080},{"containerPort":9090}],"#,
            r#""$setElementOrder/volumeMounts":[{"mountPath":"/data"}],"name":"app","#,
            r#""ports":[{"containerPort":9090,"name":"metrics"}],"#,
            r#""volumeMounts":[{"mountPath":"/data","readOnly":true},{"$patch":"delete","mountPath":"/cache"}]},"#,
            r#"{"image":"h:1","name":"helper"},{"$patch":"delete","name":"sidecar"}]}}}}"#
        )
    );
    let out = assert_applies(&current, &patch, &modified, &meta);
    let containers = &out["spec"]["template"]["spec"]["containers"];
    assert_eq!(containers.as_array().map(Vec::len), Some(2));
    assert_eq!(containers[0]["env"][1]["name"], "B", "an env var set by others stays");
    assert_eq!(containers[0]["volumeMounts"].as_array().map(Vec::len), Some(1));
}

#[test]
fn merge_key_change_deletes_the_old_item() {
    let meta = deployment_meta();
    let original = pod_spec(json!([{"name": "c", "ports": [{"containerPort": 80, "name": "http"}]}]));
    let modified = pod_spec(json!([{"name": "c", "ports": [{"containerPort": 8080, "name": "http"}]}]));
    let current = pod_spec(json!([{"name": "c", "ports": [{"containerPort": 80, "name": "http", "protocol": "TCP"}]}]));
    let patch = three_way(Some(&original), &modified, &current, &meta);
    assert_eq!(
        patch.to_string(),
        concat!(
            r#"{"spec":{"template":{"spec":{"$setElementOrder/containers":[{"name":"c"}],"containers":[{"#,
            r#""$setElementOrder/ports":[{"containerPort":8080}],"name":"c","#,
            r#""ports":[{"containerPort":8080,"name":"http"},{"$patch":"delete","containerPort":80}]}]}}}}"#
        )
    );
    let out = assert_applies(&current, &patch, &modified, &meta);
    assert_eq!(
        out["spec"]["template"]["spec"]["containers"][0]["ports"],
        json!([{"containerPort": 8080, "name": "http"}])
    );
}

#[test]
fn null_in_modified_deletes_the_field() {
    let meta = deployment_meta();
    let original = json!({"metadata": {"labels": {"app": "web", "old": "x"}}});
    let modified = json!({"metadata": {"labels": {"app": "web", "old": null}}, "spec": {"paused": null}});
    let current = json!({"metadata": {"labels": {"app": "web", "old": "x"}}, "spec": {"replicas": 1}});
    let patch = three_way(Some(&original), &modified, &current, &meta);
    // As upstream, a null for a field the live object lacks is sent too.
    assert_eq!(
        patch,
        json!({"metadata": {"labels": {"old": null}}, "spec": {"paused": null}})
    );
    let out = assert_applies(&current, &patch, &modified, &meta);
    assert_eq!(
        out,
        json!({"metadata": {"labels": {"app": "web"}}, "spec": {"replicas": 1}})
    );
}

#[test]
fn fields_dropped_from_the_manifest_are_deleted() {
    let meta = deployment_meta();
    let original = json!({"metadata": {"labels": {"app": "web", "tier": "x"}},
                          "spec": {"template": {"spec": {"containers": [{"name": "c", "args": ["-a"]}]}}}});
    let modified = json!({"metadata": {"labels": {"app": "web"}},
                          "spec": {"template": {"spec": {"containers": [{"name": "c"}]}}}});
    let mut current = original.clone();
    current["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"] = json!("Always");
    let patch = three_way(Some(&original), &modified, &current, &meta);
    assert_eq!(
        patch.to_string(),
        r#"{"metadata":{"labels":{"tier":null}},"spec":{"template":{"spec":{"$setElementOrder/containers":[{"name":"c"}],"containers":[{"args":null,"name":"c"}]}}}}"#
    );
    let out = assert_applies(&current, &patch, &modified, &meta);
    assert_eq!(
        out["spec"]["template"]["spec"]["containers"],
        json!([{"name": "c", "imagePullPolicy": "Always"}])
    );
}

#[test]
fn order_only_change_sends_set_element_order() {
    let meta = deployment_meta();
    let original = pod_spec(json!([{"name": "a"}, {"name": "b"}]));
    let modified = pod_spec(json!([{"name": "b"}, {"name": "a"}]));
    let patch = three_way(Some(&original), &modified, &original, &meta);
    assert_eq!(
        patch,
        json!({"spec": {"template": {"spec": {"$setElementOrder/containers": [{"name": "b"}, {"name": "a"}]}}}})
    );
    assert_eq!(merge(&original, &patch, &meta), modified);
}

#[test]
fn conflicts_only_without_overwrite() {
    let meta = deployment_meta();
    let original = json!({"spec": {"replicas": 2}});
    let modified = json!({"spec": {"replicas": 3}});
    let scaled = json!({"spec": {"replicas": 5}});
    let err = three_way_merge_patch(Some(&original), &modified, &scaled, &meta, false).expect_err("conflict");
    assert!(matches!(err, PatchError::Conflict { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("conflicts with changes made from original to current")
    );
    let patch = three_way_merge_patch(Some(&original), &modified, &scaled, &meta, true).expect("overwrite");
    assert_eq!(patch, json!({"spec": {"replicas": 3}}));

    // Someone else's change elsewhere, or the same change: no conflict.
    let labelled = json!({"metadata": {"labels": {"by": "other"}}, "spec": {"replicas": 2}});
    let patch = three_way_merge_patch(Some(&original), &modified, &labelled, &meta, false).expect("no conflict");
    assert_eq!(patch, json!({"spec": {"replicas": 3}}));
    let same = three_way_merge_patch(Some(&original), &modified, &modified, &meta, false).expect("same");
    assert_eq!(same, json!({}));

    // Merge-list items conflict by merge key.
    let env = |v: &str| pod_spec(json!([{"name": "c", "env": [{"name": "A", "value": v}]}]));
    let err = three_way_merge_patch(Some(&env("1")), &env("2"), &env("3"), &meta, false).expect_err("env");
    assert!(matches!(err, PatchError::Conflict { .. }), "{err}");
    let added = pod_spec(json!([{"name": "c", "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "b"}]}]));
    three_way_merge_patch(Some(&env("1")), &env("2"), &added, &meta, false).expect("other item");
}

#[test]
fn lists_without_merge_strategy_are_replaced() {
    let meta = deployment_meta();
    let original = pod_spec(json!([{"name": "c", "args": ["-a", "-b"]}]));
    let modified = pod_spec(json!([{"name": "c", "args": ["-a", "-c"]}]));
    let patch = three_way(Some(&original), &modified, &original, &meta);
    assert_eq!(
        patch.to_string(),
        r#"{"spec":{"template":{"spec":{"$setElementOrder/containers":[{"name":"c"}],"containers":[{"args":["-a","-c"],"name":"c"}]}}}}"#
    );
    // Without metadata every list is atomic.
    let patch = three_way(Some(&original), &modified, &original, &PatchMeta::none());
    assert_eq!(
        patch,
        json!({"spec": {"template": {"spec": {"containers": [{"name": "c", "args": ["-a", "-c"]}]}}}})
    );
    let err = three_way_merge_patch(Some(&json!([])), &modified, &original, &meta, true).expect_err("not an object");
    assert_eq!(err, PatchError::NotAnObject("array"));
}

#[test]
fn two_way_patch_turns_original_into_modified() {
    let meta = deployment_meta();
    let original = applied(&v2());
    let modified = applied(&v3());
    let patch = two_way_merge_patch(&original, &modified, &meta).expect("two-way");
    assert_eq!(patch["metadata"]["labels"], json!({"tier": "frontend"}));
    assert_eq!(merge(&original, &patch, &meta), modified);
    let labels = two_way_merge_patch(
        &json!({"metadata": {"labels": {"a": "1", "b": "2"}}}),
        &json!({"metadata": {"labels": {"a": "1", "c": "3"}}}),
        &meta,
    )
    .expect("labels");
    assert_eq!(labels.to_string(), r#"{"metadata":{"labels":{"b":null,"c":"3"}}}"#);
}

/// A schema shaped like upstream's `mergeItem` test type (the fields these cases use).
fn merge_item_meta() -> PatchMeta {
    let string = json!({"type": "string"});
    let list = json!({"type": "array", "items": {"$ref": "#/components/schemas/mergeItem"},
                      "x-kubernetes-patch-strategy": "merge", "x-kubernetes-patch-merge-key": "name"});
    let schemas = json!({
        "mergeItem": {"type": "object", "properties": {
            "name": string, "value": string, "other": string, "mergingList": list,
            "mergingIntList": {"type": "array", "items": {"type": "integer"}, "x-kubernetes-patch-strategy": "merge"},
            "retainKeysMap": {"allOf": [{"$ref": "#/components/schemas/mergeItem"}],
                              "x-kubernetes-patch-strategy": "retainKeys"},
        }},
    });
    match schemas {
        Value::Object(map) => PatchMeta::new(std::sync::Arc::new(map), "mergeItem"),
        _ => PatchMeta::none(),
    }
}

#[test]
fn upstream_three_way_cases() {
    let n = |name: i64| json!({"name": name});
    let nv = |name: i64, value: &str| json!({"name": name, "value": value});
    let del = |name: i64| json!({"name": name, "$patch": "delete"});
    // (description, original, modified, current, three-way patch, result), restating the
    // cases of upstream's strategicpatch tests.
    let cases = vec![
        (
            "delete all maps from merging list",
            json!({"mergingList": [n(1), n(2)]}),
            json!({"mergingList": []}),
            json!({"mergingList": [n(1), n(2)]}),
            json!({"mergingList": [del(1), del(2)]}),
            json!({"mergingList": []}),
        ),
        (
            "delete all maps from merging list with conflict",
            json!({"mergingList": [n(1), n(2)]}),
            json!({"mergingList": []}),
            json!({"mergingList": [{"name": 1, "other": "a"}, {"name": 2, "other": "b"}]}),
            json!({"mergingList": [del(1), del(2)]}),
            json!({"mergingList": []}),
        ),
        (
            "delete all maps from empty merging list",
            json!({"mergingList": [n(1), n(2)]}),
            json!({"mergingList": []}),
            json!({"mergingList": []}),
            json!({"mergingList": [del(1), del(2)]}),
            json!({"mergingList": []}),
        ),
        (
            "defined null values overwrite current fields (with conflict)",
            json!({"name": "2"}),
            json!({"name": "1", "value": "1", "other": null}),
            json!({"name": "a", "other": "a"}),
            json!({"name": "1", "value": "1", "other": null}),
            json!({"name": "1", "value": "1"}),
        ),
        (
            "defined null values remove original fields",
            json!({"name": "on", "value": "ov"}),
            json!({"name": "mn", "value": null}),
            json!({"name": "on", "value": "ov", "other": "co"}),
            json!({"name": "mn", "value": null}),
            json!({"name": "mn", "other": "co"}),
        ),
        (
            "retainKeys map with no change is left out",
            json!({"name": "a", "retainKeysMap": {"name": "foo"}}),
            json!({"name": "a", "value": "b", "retainKeysMap": {"name": "foo"}}),
            json!({"name": "a", "other": "c", "retainKeysMap": {"name": "foo"}}),
            json!({"value": "b"}),
            json!({"name": "a", "value": "b", "other": "c", "retainKeysMap": {"name": "foo"}}),
        ),
        (
            "nested patch merge with empty list",
            json!({"name": "hi"}),
            json!({"name": "hi", "mergingList": [{"name": "hello"}, {"$patch": "delete", "name": "doesntexist"}]}),
            json!({"name": "hi", "mergingList": [{"name": "hello2"}]}),
            json!({"$setElementOrder/mergingList": [{"name": "hello"}, {"name": "doesntexist"}],
                   "mergingList": [{"name": "hello"}, {"$patch": "delete", "name": "doesntexist"}]}),
            json!({"name": "hi", "mergingList": [{"name": "hello"}, {"name": "hello2"}]}),
        ),
        (
            "delete all duplicate items in lists of scalars",
            json!({"mergingIntList": [1, 2, 3, 3]}),
            json!({"mergingIntList": [1, 2]}),
            json!({"mergingIntList": [1, 2, 3, 3, 4]}),
            json!({"$setElementOrder/mergingIntList": [1, 2], "$deleteFromPrimitiveList/mergingIntList": [3]}),
            json!({"mergingIntList": [1, 2, 4]}),
        ),
        (
            "add and delete items in lists of scalars",
            json!({"mergingIntList": [1, 2, 3]}),
            json!({"mergingIntList": [1, 2, 4]}),
            json!({"mergingIntList": [1, 2, 3, 4]}),
            json!({"$setElementOrder/mergingIntList": [1, 2, 4], "$deleteFromPrimitiveList/mergingIntList": [3]}),
            json!({"mergingIntList": [1, 2, 4]}),
        ),
        (
            "merge lists of maps",
            json!({"mergingList": [n(1), nv(2, "2")]}),
            json!({"mergingList": [nv(4, "4"), n(1), nv(2, "2"), nv(3, "3")]}),
            json!({"mergingList": [{"name": 1, "other": "a"}, {"name": 2, "value": "2", "other": "b"}]}),
            json!({"$setElementOrder/mergingList": [n(4), n(1), n(2), n(3)],
                   "mergingList": [nv(4, "4"), nv(3, "3")]}),
            json!({"mergingList": [nv(4, "4"), {"name": 1, "other": "a"},
                                   {"name": 2, "value": "2", "other": "b"}, nv(3, "3")]}),
        ),
        (
            "merge lists of maps with conflict",
            json!({"mergingList": [n(1), nv(2, "2")]}),
            json!({"mergingList": [n(1), nv(2, "2"), nv(3, "3")]}),
            json!({"mergingList": [{"name": 1, "other": "a"}, {"name": 2, "value": "3", "other": "b"}]}),
            json!({"$setElementOrder/mergingList": [n(1), n(2), n(3)], "mergingList": [nv(2, "2"), nv(3, "3")]}),
            json!({"mergingList": [{"name": 1, "other": "a"}, {"name": 2, "value": "2", "other": "b"}, nv(3, "3")]}),
        ),
        (
            "add field to map in merging list with conflict",
            json!({"mergingList": [n(1), nv(2, "2")]}),
            json!({"mergingList": [nv(1, "1"), nv(2, "2")]}),
            json!({"mergingList": [{"name": 1, "other": "a"}, {"name": 3, "value": "2", "other": "b"}]}),
            json!({"$setElementOrder/mergingList": [n(1), n(2)], "mergingList": [nv(1, "1"), nv(2, "2")]}),
            json!({"mergingList": [{"name": 1, "value": "1", "other": "a"}, nv(2, "2"),
                                   {"name": 3, "value": "2", "other": "b"}]}),
        ),
        (
            "add an item that already exists in current object in merging list",
            json!({"mergingList": [nv(1, "a"), n(2)]}),
            json!({"mergingList": [nv(1, "a"), n(2), n(3)]}),
            json!({"mergingList": [{"name": 1, "value": "a", "other": "x"}, n(2), n(3)]}),
            json!({}),
            json!({"mergingList": [{"name": 1, "value": "a", "other": "x"}, n(2), n(3)]}),
        ),
        (
            "delete missing map from merging list",
            json!({"mergingList": [n(1), n(2)]}),
            json!({"mergingList": [n(2)]}),
            json!({"mergingList": [{"name": 2, "other": "b"}]}),
            json!({"$setElementOrder/mergingList": [n(2)], "mergingList": [del(1)]}),
            json!({"mergingList": [{"name": 2, "other": "b"}]}),
        ),
    ];
    let meta = merge_item_meta();
    for (description, original, modified, current, expected, result) in cases {
        let patch = three_way_merge_patch(Some(&original), &modified, &current, &meta, true)
            .unwrap_or_else(|e| panic!("{description}: {e}"));
        assert_eq!(patch, expected, "{description}");
        assert_eq!(merge(&current, &patch, &meta), result, "{description}");
        // Without overwrite, only the cases upstream names conflicts may conflict.
        match three_way_merge_patch(Some(&original), &modified, &current, &meta, false) {
            Ok(p) => assert_eq!(p, expected, "{description}"),
            Err(PatchError::Conflict { .. }) if description.contains("conflict") => {}
            Err(e) => panic!("{description}: {e}"),
        }
    }
}
