//! Table tests of field sets, FieldsV1, path strings, update bookkeeping and apply.

use serde_json::{Value, json};

use super::*;

fn deployments() -> PatchMeta {
    crate::patch::patch_meta(crate::registry::find("apps", "v1", "deployments").unwrap())
}

fn set_of(fields_v1: Value) -> FieldSet {
    FieldSet::from_fields_v1(&fields_v1).unwrap()
}

fn deployment(image: &str, replicas: i64) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"}},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [
                {"name": "nginx", "image": image, "ports": [{"containerPort": 80}],
                 "env": [{"name": "A", "value": "1"}]}]}}}})
}

fn writer<'a>(manager: &'a str, operation: Operation) -> Writer<'a> {
    Writer {
        manager,
        operation,
        api_version: "apps/v1",
        subresource: "",
        time: "2026-01-01T00:00:00Z",
    }
}

#[test]
fn field_set_of_an_object_keys_lists_as_upstream() {
    let set = fields_of(&deployment("nginx:1", 2), &deployments());
    let expected = json!({
        "f:metadata": {"f:labels": {"f:app": {}}},
        "f:spec": {"f:replicas": {}, "f:selector": {}, "f:template": {
            "f:metadata": {"f:labels": {"f:app": {}}},
            "f:spec": {"f:containers": {"k:{\"name\":\"nginx\"}": {
                ".": {}, "f:name": {}, "f:image": {},
                "f:env": {"k:{\"name\":\"A\"}": {".": {}, "f:name": {}, "f:value": {}}},
                "f:ports": {"k:{\"containerPort\":80,\"protocol\":\"TCP\"}": {".": {}, "f:containerPort": {}}}}}}}}
    });
    assert_eq!(set.to_fields_v1(), expected);
    // Round trip.
    assert_eq!(set_of(expected.clone()), set);
    assert_eq!(set_of(expected).to_fields_v1(), set.to_fields_v1());
}

#[test]
fn fields_v1_rejects_bad_elements() {
    for bad in [
        json!({"x:y": {}}),
        json!({"k:notjson": {}}),
        json!({"f:a": 1}),
        json!([]),
    ] {
        assert!(FieldSet::from_fields_v1(&bad).is_err(), "{bad}");
    }
    let set = set_of(json!({"f:spec": {"f:finalizers": {"v:\"kubernetes\"": {}}}, "f:list": {"i:0": {}}}));
    assert!(set.contains(&["f:spec", "f:finalizers", "v:\"kubernetes\""]));
}

#[test]
fn union_difference_intersection() {
    let a = set_of(json!({"f:spec": {"f:replicas": {}, "f:paused": {}}}));
    let b = set_of(json!({"f:spec": {"f:replicas": {}, "f:minReadySeconds": {}}}));
    assert_eq!(
        a.union(&b).to_fields_v1(),
        json!({"f:spec": {"f:minReadySeconds": {}, "f:paused": {}, "f:replicas": {}}})
    );
    assert_eq!(a.difference(&b).to_fields_v1(), json!({"f:spec": {"f:paused": {}}}));
    assert_eq!(a.intersection(&b).to_fields_v1(), json!({"f:spec": {"f:replicas": {}}}));
    assert!(a.difference(&a).is_empty());
    // A member with children keeps its `.` through a union with a leaf-only set.
    let item = set_of(json!({"k:{\"name\":\"a\"}": {".": {}, "f:name": {}}}));
    assert_eq!(
        item.difference(&set_of(json!({"k:{\"name\":\"a\"}": {"f:name": {}}})))
            .paths()
            .len(),
        1
    );
}

#[test]
fn path_strings_as_structured_merge_diff_prints_them() {
    let cases: &[(&[&str], &str)] = &[
        (&["f:spec", "f:replicas"], ".spec.replicas"),
        (
            &[
                "f:spec",
                "f:template",
                "f:spec",
                "f:containers",
                "k:{\"name\":\"nginx\"}",
                "f:env",
                "k:{\"name\":\"NEW\"}",
                "f:value",
            ],
            ".spec.template.spec.containers[name=\"nginx\"].env[name=\"NEW\"].value",
        ),
        (
            &["f:ports", "k:{\"containerPort\":80,\"protocol\":\"TCP\"}"],
            ".ports[containerPort=80,protocol=\"TCP\"]",
        ),
        (&["f:finalizers", "v:\"a\""], ".finalizers[=\"a\"]"),
        (&["f:args", "i:2"], ".args[2]"),
    ];
    for (path, want) in cases {
        assert_eq!(path_string(path), *want);
    }
}

#[test]
fn update_takes_changed_fields_and_drops_removed_ones() {
    let meta = deployments();
    let created = deployment("nginx:1", 2);
    let entries = update(
        &json!({}),
        &created,
        &meta,
        Vec::new(),
        &writer("kubectl-create", Operation::Update),
    );
    assert_eq!(entries.len(), 1);
    assert!(entries[0].fields.contains(&["f:spec", "f:replicas"]));
    // Another writer changes replicas: it takes the field from the creator.
    let scaled = deployment("nginx:1", 5);
    let entries = update(&created, &scaled, &meta, entries, &writer("hpa", Operation::Update));
    let creator = entries.iter().find(|e| e.manager == "kubectl-create").unwrap();
    let hpa = entries.iter().find(|e| e.manager == "hpa").unwrap();
    assert!(!creator.fields.contains(&["f:spec", "f:replicas"]));
    assert_eq!(hpa.fields.to_fields_v1(), json!({"f:spec": {"f:replicas": {}}}));
    // Nothing changed: nothing recorded, no new entry.
    let same = update(
        &scaled,
        &scaled,
        &meta,
        entries.clone(),
        &writer("noop", Operation::Update),
    );
    assert_eq!(same, entries);
}

#[test]
fn apply_conflicts_force_and_removal() {
    let meta = deployments();
    let (live, entries) = apply(
        None,
        &deployment("nginx:1", 2),
        &meta,
        Vec::new(),
        &writer("kubectl", Operation::Apply),
        false,
    )
    .unwrap();
    assert_eq!(entries[0].operation, Operation::Apply);
    // Same values from another manager: shared, no conflict.
    let (_, shared) = apply(
        Some(&live),
        &deployment("nginx:1", 2),
        &meta,
        entries.clone(),
        &writer("other", Operation::Apply),
        false,
    )
    .unwrap();
    assert_eq!(shared.len(), 2);
    // Different values: conflicts, upstream's message.
    let conflicts = apply(
        Some(&live),
        &deployment("nginx:2", 3),
        &meta,
        entries.clone(),
        &writer("other", Operation::Apply),
        false,
    )
    .unwrap_err();
    assert_eq!(
        conflict_message(&conflicts),
        "Apply failed with 2 conflicts: conflicts with \"kubectl\":\n- .spec.replicas\n- .spec.template.spec.containers[name=\"nginx\"].image"
    );
    assert_eq!(
        conflict_message(&conflicts[..1]),
        "Apply failed with 1 conflict: conflict with \"kubectl\": .spec.replicas"
    );
    // Forced: the values change and ownership moves.
    let (forced, moved) = apply(
        Some(&live),
        &deployment("nginx:2", 3),
        &meta,
        entries.clone(),
        &writer("other", Operation::Apply),
        true,
    )
    .unwrap();
    assert_eq!(forced["spec"]["replicas"], 3);
    let kubectl = moved.iter().find(|e| e.manager == "kubectl").unwrap();
    assert!(!kubectl.fields.contains(&["f:spec", "f:replicas"]));
    // The first manager stops applying env: it goes, the rest stays.
    let mut without_env = deployment("nginx:1", 2);
    without_env["spec"]["template"]["spec"]["containers"][0]
        .as_object_mut()
        .unwrap()
        .remove("env");
    let (pruned, _) = apply(
        Some(&live),
        &without_env,
        &meta,
        entries,
        &writer("kubectl", Operation::Apply),
        false,
    )
    .unwrap();
    let container = &pruned["spec"]["template"]["spec"]["containers"][0];
    assert!(container.get("env").is_none(), "{container}");
    assert_eq!(container["image"], "nginx:1");
}

#[test]
fn apply_keeps_fields_another_manager_owns_and_merges_lists_by_key() {
    let meta = deployments();
    let (live, entries) = apply(
        None,
        &deployment("nginx:1", 2),
        &meta,
        Vec::new(),
        &writer("kubectl", Operation::Apply),
        false,
    )
    .unwrap();
    // A second manager adds a sidecar and an env var to nginx.
    let sidecar = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
        "spec": {"template": {"spec": {"containers": [
            {"name": "nginx", "env": [{"name": "B", "value": "2"}]}, {"name": "log", "image": "busybox"}]}}}});
    let (live, entries) = apply(
        Some(&live),
        &sidecar,
        &meta,
        entries,
        &writer("side", Operation::Apply),
        false,
    )
    .unwrap();
    let containers = live["spec"]["template"]["spec"]["containers"].as_array().unwrap();
    assert_eq!(containers.len(), 2);
    assert_eq!(
        containers[0]["env"],
        json!([{"name": "A", "value": "1"}, {"name": "B", "value": "2"}])
    );
    // The first manager drops env: A goes, B (owned by `side`) stays.
    let mut without_env = deployment("nginx:1", 2);
    without_env["spec"]["template"]["spec"]["containers"][0]
        .as_object_mut()
        .unwrap()
        .remove("env");
    let (live, _) = apply(
        Some(&live),
        &without_env,
        &meta,
        entries,
        &writer("kubectl", Operation::Apply),
        false,
    )
    .unwrap();
    assert_eq!(
        live["spec"]["template"]["spec"]["containers"][0]["env"],
        json!([{"name": "B", "value": "2"}])
    );
}

#[test]
fn entries_round_trip_and_sort() {
    let mut object = json!({"metadata": {"name": "x"}});
    let entry = |manager: &str, operation| Entry {
        manager: manager.into(),
        operation,
        api_version: "v1".into(),
        time: Some("2026-01-01T00:00:00Z".into()),
        subresource: String::new(),
        fields: set_of(json!({"f:data": {"f:a": {}}})),
    };
    let mut status = entry("kubelet", Operation::Update);
    status.subresource = "status".into();
    let empty = Entry {
        fields: FieldSet::new(),
        ..entry("gone", Operation::Update)
    };
    store(
        &mut object,
        vec![status.clone(), entry("kubectl", Operation::Apply), empty],
    );
    let list = object["metadata"]["managedFields"].as_array().unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(list[0]["operation"], "Apply");
    assert_eq!(list[1]["subresource"], "status");
    assert_eq!(decode(&object).unwrap()[1], status);
    assert_eq!(status.describe(), "\"kubelet\" with subresource \"status\" using v1");
    assert!(decode(&json!({"metadata": {"managedFields": [{"operation": "Bogus"}]}})).is_err());
}
