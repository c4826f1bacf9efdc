//! Strategic merge patch tests: the bodies kubectl sends (client-side apply, `kubectl patch`)
//! against the real kinds' metadata, and upstream's merge cases (apimachinery's
//! `strategicpatch` test data: original, patch, expected result) against a schema shaped like
//! upstream's test type.

use std::sync::Arc;

use serde_json::{Value, json};

use super::*;
use crate::registry;

fn deployment_meta() -> PatchMeta {
    patch_meta(registry::find("apps", "v1", "deployments").expect("deployments"))
}

fn apply(original: Value, patch: Value, meta: &PatchMeta) -> Value {
    strategic_merge(&original, &patch, meta).unwrap_or_else(|e| panic!("patch failed: {e}"))
}

fn live_deployment() -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"},
                     "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "v1"}},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "web"}},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "containers": [{
                        "name": "nginx", "image": "nginx:1.25",
                        "env": [{"name": "FOO", "value": "bar"}, {"name": "BAR", "value": "x"}],
                        "ports": [{"containerPort": 80, "protocol": "TCP"}, {"containerPort": 443, "protocol": "TCP"}],
                        "volumeMounts": [{"name": "data", "mountPath": "/data"}],
                        "args": ["-a", "-b"],
                    }],
                    "volumes": [{"name": "data", "emptyDir": {}}],
                },
            },
        },
    })
}

#[test]
fn kubectl_apply_v1_to_v2() {
    // kubectl-wire §7.3: replicas 2→3, env FOO bar→baz.
    let patch = json!({
        "metadata": {"annotations": {"kubectl.kubernetes.io/last-applied-configuration": "v2"}},
        "spec": {"replicas": 3, "template": {"spec": {
            "$setElementOrder/containers": [{"name": "nginx"}],
            "containers": [{"$setElementOrder/env": [{"name": "FOO"}, {"name": "BAR"}],
                            "env": [{"name": "FOO", "value": "baz"}], "name": "nginx"}]}}}
    });
    let out = apply(live_deployment(), patch, &deployment_meta());
    assert_eq!(out["spec"]["replicas"], 3);
    let container = &out["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(
        container["env"],
        json!([{"name": "FOO", "value": "baz"}, {"name": "BAR", "value": "x"}])
    );
    assert_eq!(container["image"], "nginx:1.25");
    assert_eq!(
        out["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"],
        "v2"
    );
}

#[test]
fn kubectl_apply_v2_to_v3() {
    // kubectl-wire §7.3: new env NEW first, env BAR removed, port 443 removed, image bumped,
    // new label.
    let patch = json!({
        "metadata": {"annotations": {"kubectl.kubernetes.io/last-applied-configuration": "v3"},
                     "labels": {"tier": "frontend"}},
        "spec": {"template": {"spec": {"$setElementOrder/containers": [{"name": "nginx"}],
            "containers": [{"$setElementOrder/env": [{"name": "NEW"}, {"name": "FOO"}],
                            "$setElementOrder/ports": [{"containerPort": 80}],
                            "env": [{"name": "NEW", "value": "1"}, {"$patch": "delete", "name": "BAR"}],
                            "image": "nginx:1.27", "name": "nginx",
                            "ports": [{"$patch": "delete", "containerPort": 443}]}]}}}
    });
    let mut live = live_deployment();
    live["spec"]["template"]["spec"]["containers"][0]["env"][0]["value"] = json!("baz");
    let out = apply(live, patch, &deployment_meta());
    let spec = &out["spec"]["template"]["spec"];
    let container = &spec["containers"][0];
    assert_eq!(
        container["env"],
        json!([{"name": "NEW", "value": "1"}, {"name": "FOO", "value": "baz"}])
    );
    assert_eq!(container["ports"], json!([{"containerPort": 80, "protocol": "TCP"}]));
    assert_eq!(container["image"], "nginx:1.27");
    assert_eq!(
        container["volumeMounts"],
        json!([{"name": "data", "mountPath": "/data"}])
    );
    assert_eq!(spec["volumes"], json!([{"name": "data", "emptyDir": {}}]));
    assert_eq!(out["metadata"]["labels"], json!({"app": "web", "tier": "frontend"}));

    // Going back deletes the label with null.
    let back = apply(out, json!({"metadata": {"labels": {"tier": null}}}), &deployment_meta());
    assert_eq!(back["metadata"]["labels"], json!({"app": "web"}));
}

#[test]
fn kubectl_patch_bodies() {
    let meta = deployment_meta();
    // `kubectl set image`.
    let out = apply(
        live_deployment(),
        json!({"spec": {"template": {"spec": {"containers": [{"image": "nginx:2", "name": "nginx"}]}}}}),
        &meta,
    );
    assert_eq!(out["spec"]["template"]["spec"]["containers"][0]["image"], "nginx:2");
    assert_eq!(
        out["spec"]["template"]["spec"]["containers"][0]["env"][0]["name"],
        "FOO"
    );
    // `kubectl rollout restart`.
    let out = apply(
        live_deployment(),
        json!({"spec": {"template": {"metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": "t"}}}}}),
        &meta,
    );
    assert_eq!(
        out["spec"]["template"]["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"],
        "t"
    );
    assert_eq!(out["spec"]["template"]["metadata"]["labels"]["app"], "web");
    // A container added without an order directive goes before the later original items, as
    // upstream places it.
    let mut live = live_deployment();
    if let Some(containers) = live["spec"]["template"]["spec"]["containers"].as_array_mut() {
        containers.push(json!({"name": "sidecar", "image": "s"}));
    }
    let out = apply(
        live,
        json!({"spec": {"template": {"spec": {"containers": [{"name": "nginx", "image": "n2"}, {"name": "new", "image": "x"}]}}}}),
        &meta,
    );
    let names: Vec<_> = out["spec"]["template"]["spec"]["containers"]
        .as_array()
        .map(|c| c.iter().map(|c| c["name"].clone()).collect())
        .unwrap_or_default();
    assert_eq!(names, vec![json!("nginx"), json!("new"), json!("sidecar")]);
    // Lists without a strategy are replaced.
    let out = apply(
        live_deployment(),
        json!({"spec": {"template": {"spec": {"containers": [{"name": "nginx", "args": ["-c"]}]}}}}),
        &meta,
    );
    assert_eq!(out["spec"]["template"]["spec"]["containers"][0]["args"], json!(["-c"]));
}

#[test]
fn retain_keys_on_deployment_strategy_and_volumes() {
    let meta = deployment_meta();
    let out = apply(
        live_deployment(),
        json!({"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}}),
        &meta,
    );
    assert_eq!(out["spec"]["strategy"], json!({"type": "Recreate"}));
    let out = apply(
        live_deployment(),
        json!({"spec": {"template": {"spec": {"volumes": [
            {"$retainKeys": ["configMap", "name"], "name": "data", "configMap": {"name": "cm"}}]}}}}),
        &meta,
    );
    assert_eq!(
        out["spec"]["template"]["spec"]["volumes"],
        json!([{"name": "data", "configMap": {"name": "cm"}}])
    );
    let err = strategic_merge(
        &live_deployment(),
        &json!({"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate", "rollingUpdate": {}}}}),
        &meta,
    )
    .unwrap_err();
    assert_eq!(err, PatchError::RetainKeysMismatch);
    assert_eq!(err.code(), 422);
}

#[test]
fn same_field_name_different_merge_keys() {
    let svc = patch_meta(registry::find("", "v1", "services").expect("services"));
    let live =
        json!({"spec": {"ports": [{"name": "http", "port": 80, "targetPort": 8080}, {"name": "https", "port": 443}]}});
    let out = apply(
        live,
        json!({"spec": {"ports": [{"port": 80, "targetPort": 9090}]}}),
        &svc,
    );
    assert_eq!(
        out["spec"]["ports"],
        json!([{"name": "http", "port": 80, "targetPort": 9090}, {"name": "https", "port": 443}])
    );
    let pod = patch_meta(registry::find("", "v1", "pods").expect("pods"));
    let live =
        json!({"spec": {"containers": [{"name": "c", "ports": [{"containerPort": 80}, {"containerPort": 81}]}]}});
    let out = apply(
        live,
        json!({"spec": {"containers": [{"name": "c", "ports": [{"containerPort": 81, "name": "m"}]}]}}),
        &pod,
    );
    assert_eq!(
        out["spec"]["containers"][0]["ports"],
        json!([{"containerPort": 80}, {"containerPort": 81, "name": "m"}])
    );
    // Pod conditions merge by type, finalizers as a set.
    let live = json!({"metadata": {"finalizers": ["a", "b"]},
                      "status": {"conditions": [{"type": "Ready", "status": "False"}]}});
    let out = apply(
        live,
        json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["a"], "finalizers": ["c"]},
               "status": {"conditions": [{"type": "Ready", "status": "True"}, {"type": "Initialized", "status": "True"}]}}),
        &pod,
    );
    assert_eq!(out["metadata"]["finalizers"], json!(["c", "b"]));
    assert_eq!(
        out["status"]["conditions"],
        json!([{"type": "Ready", "status": "True"}, {"type": "Initialized", "status": "True"}])
    );
}

#[test]
fn kinds_without_metadata_replace_lists() {
    let meta = PatchMeta::none();
    let out = apply(
        json!({"a": [1, 2], "m": {"x": 1}}),
        json!({"a": [3], "m": {"y": 2}}),
        &meta,
    );
    assert_eq!(out, json!({"a": [3], "m": {"x": 1, "y": 2}}));
}

#[test]
fn metadata_lookup() {
    let meta = deployment_meta();
    let containers = meta.lookup(&["spec", "template", "spec", "containers"]);
    assert_eq!(containers.merge_key, Some("name"));
    assert!(containers.merges());
    assert_eq!(containers.list_type, Some("map"));
    let volumes = meta.lookup(&["spec", "template", "spec", "volumes"]);
    assert!(volumes.merges() && volumes.retains_keys());
    let ports = meta.lookup(&["spec", "template", "spec", "containers", "ports"]);
    assert_eq!(ports.merge_key, Some("containerPort"));
    assert_eq!(ports.list_map_keys, vec!["containerPort", "protocol"]);
    assert!(meta.lookup(&["spec", "strategy"]).retains_keys());
    assert_eq!(meta.lookup(&["spec", "selector"]).map_type, Some("atomic"));
    assert_eq!(
        meta.lookup(&["spec", "template", "spec", "containers", "args"]),
        FieldMeta {
            list_type: Some("atomic"),
            ..FieldMeta::default()
        }
    );
    assert_eq!(meta.lookup(&["spec", "nope"]), FieldMeta::default());
    assert_eq!(meta.root_name(), Some("io.k8s.api.apps.v1.Deployment"));
}

// ---- upstream's merge cases, against a schema shaped like upstream's test type ----

fn merge_item_meta() -> PatchMeta {
    let item = |strategy: &str, key: Option<&str>| {
        let mut s = json!({"type": "array", "items": {"$ref": "#/components/schemas/mergeItem"}});
        if !strategy.is_empty() {
            s["x-kubernetes-patch-strategy"] = json!(strategy);
        }
        if let Some(key) = key {
            s["x-kubernetes-patch-merge-key"] = json!(key);
        }
        s
    };
    let ints = |strategy: &str| {
        let mut s = json!({"type": "array", "items": {"type": "integer"}});
        if !strategy.is_empty() {
            s["x-kubernetes-patch-strategy"] = json!(strategy);
        }
        s
    };
    let string = json!({"type": "string"});
    let simple_map = json!({"type": "object", "additionalProperties": {"type": "string"}});
    let schemas = json!({
        "mergeItem": {"type": "object", "properties": {
            "name": string, "value": string, "other": string,
            "mergingList": item("merge", Some("name")),
            "nonMergingList": item("", None),
            "mergingIntList": ints("merge"),
            "nonMergingIntList": ints(""),
            "mergeItemPtr": item("merge", Some("name")),
            "simpleMap": simple_map,
            "replacingItem": {"type": "object", "x-kubernetes-patch-strategy": "replace"},
            "retainKeysMap": {"allOf": [{"$ref": "#/components/schemas/retainKeysMergeItem"}],
                              "x-kubernetes-patch-strategy": "retainKeys"},
            "retainKeysMergingList": item("merge,retainKeys", Some("name")),
        }},
        "retainKeysMergeItem": {"type": "object", "properties": {
            "name": string, "value": string, "other": string, "simpleMap": simple_map,
            "mergingIntList": ints("merge"),
            "mergingList": item("merge", Some("name")),
            "nonMergingList": item("", None),
        }},
    });
    match schemas {
        Value::Object(map) => PatchMeta::new(Arc::new(map), "mergeItem"),
        _ => PatchMeta::none(),
    }
}

/// (description, original, patch, expected result).
fn upstream_cases() -> Vec<(&'static str, Value, Value, Value)> {
    let n = |name: i64| json!({"name": name});
    vec![
        (
            "unique scalars when merging lists",
            json!({"mergingIntList": [1, 2]}),
            json!({"mergingIntList": [2, 3]}),
            json!({"mergingIntList": [1, 2, 3]}),
        ),
        (
            "delete map from nested map",
            json!({"simpleMap": {"key1": 1, "key2": 1}}),
            json!({"simpleMap": {"$patch": "delete"}}),
            json!({"simpleMap": {}}),
        ),
        (
            "delete all items from merging list",
            json!({"mergingList": [n(1), n(2)]}),
            json!({"mergingList": [{"$patch": "replace"}]}),
            json!({"mergingList": []}),
        ),
        (
            "merge empty merging lists",
            json!({"mergingList": []}),
            json!({"mergingList": []}),
            json!({"mergingList": []}),
        ),
        (
            "delete all keys from map",
            json!({"name": 1, "value": 1}),
            json!({"$patch": "replace"}),
            json!({}),
        ),
        (
            "add key and delete all keys from map",
            json!({"name": 1, "value": 1}),
            json!({"other": "a", "$patch": "replace"}),
            json!({"other": "a"}),
        ),
        (
            "delete all duplicate entries in a merging list",
            json!({"mergingList": [n(1), n(1), {"name": 2, "value": "a"}, n(3), n(3)]}),
            json!({"mergingList": [{"name": 1, "$patch": "delete"}, {"name": 3, "$patch": "delete"}]}),
            json!({"mergingList": [{"name": 2, "value": "a"}]}),
        ),
        (
            "retainKeys map can delete a field when no retainKeys directive present",
            json!({"retainKeysMap": {"name": "foo", "value": "a"}}),
            json!({"retainKeysMap": {"value": null}}),
            json!({"retainKeysMap": {"name": "foo"}}),
        ),
        (
            "preserve the order from the patch in a merging list",
            json!({"mergingList": [n(1), {"name": 2, "value": "b"}, n(3)]}),
            json!({"mergingList": [{"name": 3, "value": "c"}, {"name": 1, "value": "a"}, {"name": 2, "other": "x"}]}),
            json!({"mergingList": [{"name": 3, "value": "c"}, {"name": 1, "value": "a"}, {"name": 2, "value": "b", "other": "x"}]}),
        ),
        (
            "preserve the order from the patch in a merging list 2",
            json!({"mergingList": [n(1), {"name": 2, "value": "b"}, n(3)]}),
            json!({"mergingList": [{"name": 3, "value": "c"}, {"name": 1, "value": "a"}]}),
            json!({"mergingList": [{"name": 2, "value": "b"}, {"name": 3, "value": "c"}, {"name": 1, "value": "a"}]}),
        ),
        (
            "preserve the order from the patch in a merging int list",
            json!({"mergingIntList": [1, 2, 3]}),
            json!({"mergingIntList": [3, 1]}),
            json!({"mergingIntList": [2, 3, 1]}),
        ),
        (
            "$setElementOrder contains item that is not present in the list to be merged",
            json!({"mergingList": [n(1), n(3)]}),
            json!({"$setElementOrder/mergingList": [n(3), n(2), n(1)],
                "mergingList": [{"name": 3, "value": 3}, {"name": 1, "value": 1}]}),
            json!({"mergingList": [{"name": 3, "value": 3}, {"name": 1, "value": 1}]}),
        ),
        (
            "$setElementOrder contains item that is not present in the int list to be merged",
            json!({"mergingIntList": [1, 3]}),
            json!({"$setElementOrder/mergingIntList": [3, 2, 1]}),
            json!({"mergingIntList": [3, 1]}),
        ),
        (
            "$deleteFromPrimitiveList of nonexistent item in primitive list should not add the item to the list",
            json!({"mergingIntList": [1, 2]}),
            json!({"$deleteFromPrimitiveList/mergingIntList": [3]}),
            json!({"mergingIntList": [1, 2]}),
        ),
        (
            "$deleteFromPrimitiveList on empty primitive list should not add the item to the list",
            json!({"mergingIntList": null}),
            json!({"$deleteFromPrimitiveList/mergingIntList": [3]}),
            json!({"mergingIntList": null}),
        ),
        (
            "$deleteFromPrimitiveList on nonexistent primitive list should not add the primitive list",
            json!({"foo": ["bar"]}),
            json!({"$deleteFromPrimitiveList/mergingIntList": [3]}),
            json!({"foo": ["bar"]}),
        ),
        (
            "$deleteFromPrimitiveList should delete item from a list without merge patch strategy",
            json!({"nonMergingIntList": [1, 2, 3]}),
            json!({"$deleteFromPrimitiveList/nonMergingIntList": [2]}),
            json!({"nonMergingIntList": [1, 3]}),
        ),
        (
            "nested patch merge with empty list",
            json!({"name": "hi"}),
            json!({"mergingList": [{"name": "hello"}, {"$patch": "delete", "name": "doesntexist"}]}),
            json!({"name": "hi", "mergingList": [{"name": "hello"}]}),
        ),
        (
            "nested patch merge with empty list, three-way",
            json!({"name": "hi", "mergingList": [{"name": "hello2"}]}),
            json!({"$setElementOrder/mergingList": [{"name": "hello"}, {"name": "doesntexist"}],
                "mergingList": [{"name": "hello"}, {"$patch": "delete", "name": "doesntexist"}]}),
            json!({"name": "hi", "mergingList": [{"name": "hello"}, {"name": "hello2"}]}),
        ),
        (
            "delete items in lists of scalars",
            json!({"mergingIntList": [1, 2, 3, 4]}),
            json!({"$setElementOrder/mergingIntList": [1, 2], "$deleteFromPrimitiveList/mergingIntList": [3]}),
            json!({"mergingIntList": [1, 2, 4]}),
        ),
        (
            "delete all duplicate items in lists of scalars",
            json!({"mergingIntList": [1, 2, 3, 3, 4]}),
            json!({"$setElementOrder/mergingIntList": [1, 2], "$deleteFromPrimitiveList/mergingIntList": [3]}),
            json!({"mergingIntList": [1, 2, 4]}),
        ),
        (
            "merge lists of maps",
            json!({"mergingList": [{"name": 1, "other": "a"}, {"name": 2, "value": 2, "other": "b"}]}),
            json!({"$setElementOrder/mergingList": [n(4), n(1), n(2), n(3)],
                "mergingList": [{"name": 4, "value": 4}, {"name": 3, "value": 3}]}),
            json!({"mergingList": [{"name": 4, "value": 4}, {"name": 1, "other": "a"},
                                {"name": 2, "value": 2, "other": "b"}, {"name": 3, "value": 3}]}),
        ),
        (
            "add field to map in merging list with conflict",
            json!({"mergingList": [{"name": 1, "other": "a"}, {"name": 3, "value": 2, "other": "b"}]}),
            json!({"$setElementOrder/mergingList": [n(1), n(2)],
                "mergingList": [{"name": 1, "value": 1}, {"name": 2, "value": 2}]}),
            json!({"mergingList": [{"name": 1, "value": 1, "other": "a"}, {"name": 2, "value": 2},
                                {"name": 3, "value": 2, "other": "b"}]}),
        ),
        (
            "delete missing map from merging list with conflict",
            json!({"mergingList": [{"name": 3, "other": "a"}]}),
            json!({"$setElementOrder/mergingList": [n(2)], "mergingList": [n(2), {"name": 1, "$patch": "delete"}]}),
            json!({"mergingList": [n(2), {"name": 3, "other": "a"}]}),
        ),
        (
            "add map and delete map from merging list",
            json!({"mergingList": [n(1), {"name": 2, "other": "b"}, {"name": 4, "other": "c"}]}),
            json!({"$setElementOrder/mergingList": [n(2), n(3)], "mergingList": [n(3), {"name": 1, "$patch": "delete"}]}),
            json!({"mergingList": [{"name": 2, "other": "b"}, {"name": 4, "other": "c"}, n(3)]}),
        ),
        (
            "add map and delete map from merging list with conflict",
            json!({"mergingList": [{"name": 1, "other": "a"}, {"name": 4, "other": "c"}]}),
            json!({"$setElementOrder/mergingList": [n(2), n(3)],
                "mergingList": [n(2), n(3), {"name": 1, "$patch": "delete"}]}),
            json!({"mergingList": [{"name": 4, "other": "c"}, n(2), n(3)]}),
        ),
        (
            "add field to map in merging list nested in merging list",
            json!({"mergingList": [{"name": 1, "other": "a", "mergingList": [n(1), {"name": 2, "value": 2}]},
                                {"name": 2, "other": "b"}]}),
            json!({"$setElementOrder/mergingList": [n(1), n(2)],
                "mergingList": [{"$setElementOrder/mergingList": [n(1), n(2)], "name": 1,
                                 "mergingList": [{"name": 1, "value": 1}]}]}),
            json!({"mergingList": [{"name": 1, "other": "a", "mergingList": [{"name": 1, "value": 1}, {"name": 2, "value": 2}]},
                                {"name": 2, "other": "b"}]}),
        ),
        (
            "add map to merging list by pointer",
            json!({"mergeItemPtr": [{"name": 1, "other": "a"}, n(3)]}),
            json!({"$setElementOrder/mergeItemPtr": [n(1), n(2)], "mergeItemPtr": [n(2)]}),
            json!({"mergeItemPtr": [{"name": 1, "other": "a"}, n(2), n(3)]}),
        ),
        (
            "merge lists of scalars",
            json!({"mergingIntList": [1, 2, 4]}),
            json!({"$setElementOrder/mergingIntList": [1, 2, 3], "mergingIntList": [3]}),
            json!({"mergingIntList": [1, 2, 3, 4]}),
        ),
        (
            "add an item in a list of primitives and preserve order",
            json!({"mergingIntList": [1, 4, 2]}),
            json!({"$setElementOrder/mergingIntList": [3, 1, 2], "mergingIntList": [3]}),
            json!({"mergingIntList": [3, 1, 4, 2]}),
        ),
        (
            "delete an item in a list and preserve order",
            json!({"mergingList": [{"name": 1, "other": "a"}, {"name": 2, "value": 2, "other": "b"}, {"name": 3, "value": 3}]}),
            json!({"$setElementOrder/mergingList": [n(2), n(1)], "mergingList": [{"name": 3, "$patch": "delete"}]}),
            json!({"mergingList": [{"name": 2, "value": 2, "other": "b"}, {"name": 1, "other": "a"}]}),
        ),
        (
            "add and delete an item in a int list and preserve order",
            json!({"mergingIntList": [1, 2, 3]}),
            json!({"$setElementOrder/mergingIntList": [4, 2, 1], "mergingIntList": [4],
                "$deleteFromPrimitiveList/mergingIntList": [3]}),
            json!({"mergingIntList": [4, 2, 1]}),
        ),
        (
            "set elements order in a list with server-only items 2",
            json!({"mergingList": [{"name": 1, "other": "a"}, {"name": 2, "value": 2}, n(9), {"name": 3, "value": 3},
                                {"name": 4, "value": 4}]}),
            json!({"$setElementOrder/mergingList": [n(2), n(1), n(4), n(3)]}),
            json!({"mergingList": [{"name": 2, "value": 2}, {"name": 1, "other": "a"}, n(9), {"name": 4, "value": 4},
                                {"name": 3, "value": 3}]}),
        ),
        (
            "set elements order in a int list with server-only items 3",
            json!({"mergingIntList": [1, 2, 7, 9, 8, 3, 4]}),
            json!({"$setElementOrder/mergingIntList": [2, 1, 4, 3]}),
            json!({"mergingIntList": [2, 1, 7, 9, 8, 4, 3]}),
        ),
        (
            "behavior of set element order for a merging list with duplicate",
            json!({"mergingList": [n(1), {"name": 2, "value": "dup1"}, n(3), {"name": 2, "value": "dup2"}, n(4)]}),
            json!({"$setElementOrder/mergingList": [n(2), n(1), n(4), n(3), n(2)]}),
            json!({"mergingList": [{"name": 2, "value": "dup1"}, {"name": 2, "value": "dup2"}, n(1), n(4), n(3)]}),
        ),
        (
            "retainKeys map should clear defaulted field with conflict (discriminated union)",
            json!({"retainKeysMap": {"name": "type1", "value": "foo"}}),
            json!({"retainKeysMap": {"$retainKeys": ["name", "other"], "name": "type2", "other": "bar"}}),
            json!({"retainKeysMap": {"name": "type2", "other": "bar"}}),
        ),
        (
            "retainKeys map deletes a field and clears a field",
            json!({"retainKeysMap": {"name": "foo", "value": "bar", "other": "a"}}),
            json!({"retainKeysMap": {"$retainKeys": ["name"], "value": null}}),
            json!({"retainKeysMap": {"name": "foo"}}),
        ),
        (
            "retainKeys map adds a field in a nested map",
            json!({"retainKeysMap": {"name": "foo", "value": "bar", "simpleMap": {"key1": "a", "key3": "c"}}}),
            json!({"retainKeysMap": {"$retainKeys": ["name", "simpleMap", "value"], "simpleMap": {"key2": "b"}}}),
            json!({"retainKeysMap": {"name": "foo", "value": "bar", "simpleMap": {"key1": "a", "key2": "b", "key3": "c"}}}),
        ),
        (
            "replacing item is replaced",
            json!({"replacingItem": {"a": 1, "b": 2}}),
            json!({"replacingItem": {"c": 3}}),
            json!({"replacingItem": {"c": 3}}),
        ),
        (
            "defined null values remove fields and are not stored",
            json!({"name": "original-name", "value": "original-value", "other": "current-other"}),
            json!({"name": "modified-name", "value": null, "simpleMap": {"k": null, "j": "v"}}),
            json!({"name": "modified-name", "other": "current-other", "simpleMap": {"j": "v"}}),
        ),
    ]
}

#[test]
fn upstream_merge_cases() {
    let meta = merge_item_meta();
    for (description, original, patch, expected) in upstream_cases() {
        match strategic_merge(&original, &patch, &meta) {
            Ok(out) => assert_eq!(out, expected, "{description}"),
            Err(e) => panic!("{description}: {e}"),
        }
    }
}

#[test]
fn upstream_error_cases() {
    let meta = merge_item_meta();
    let cases: Vec<(&str, Value, Value, &str)> = vec![
        (
            "order in $setElementOrder and patch list must match",
            json!({"mergingList": [{"name": 1}, {"name": 3}, {"name": 2}]}),
            json!({"$setElementOrder/mergingList": [{"name": 1}, {"name": 2}, {"name": 3}],
                "mergingList": [{"name": 3, "value": 3}, {"name": 1, "value": 1}]}),
            "doesn't match",
        ),
        (
            "int order must match",
            json!({"mergingIntList": [1, 3, 2]}),
            json!({"$setElementOrder/mergingIntList": [1, 2, 3], "mergingIntList": [3, 1]}),
            "doesn't match",
        ),
        (
            "missing merge key",
            json!({"mergingList": [{"name": 1, "value": "a"}]}),
            json!({"mergingList": [{"value": "b"}]}),
            "does not contain declared merge key: name",
        ),
        (
            "merge directive in a list",
            json!({"mergingList": [{"name": 1}]}),
            json!({"mergingList": [{"$patch": "merge"}]}),
            "merging lists cannot yet be specified in the patch",
        ),
        (
            "unknown map directive",
            json!({}),
            json!({"simpleMap": {"$patch": "merge"}}),
            "unknown patch type: merge",
        ),
        (
            "retainKeys not a list",
            json!({}),
            json!({"retainKeysMap": {"$retainKeys": "name"}}),
            "invalid patch format of retainKeys",
        ),
        (
            "delete list without field",
            json!({}),
            json!({"$deleteFromPrimitiveList": [1]}),
            "invalid patch format of primitive list",
        ),
        (
            "order without field",
            json!({}),
            json!({"$setElementOrder": [1]}),
            "invalid patch format of setElementOrder list",
        ),
        (
            "list of lists",
            json!({"mergingIntList": [1]}),
            json!({"mergingIntList": [[2]]}),
            "lists of lists",
        ),
        (
            "mixed list",
            json!({"mergingIntList": [1]}),
            json!({"mergingIntList": ["a"]}),
            "not identical",
        ),
    ];
    for (description, original, patch, wanted) in cases {
        match strategic_merge(&original, &patch, &meta) {
            Ok(out) => panic!("{description}: expected an error, got {out}"),
            Err(e) => assert!(e.to_string().contains(wanted), "{description}: {e}"),
        }
    }
    let err = strategic_merge(&json!({}), &json!([1]), &meta).unwrap_err();
    assert_eq!(err.code(), 400);
    assert_eq!(
        err.to_string(),
        "json: cannot unmarshal array into Go value of type map[string]interface {}"
    );
}
