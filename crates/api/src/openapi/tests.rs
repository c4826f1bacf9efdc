//! What kubectl reads from the documents: the index, the PATCH operation of every kind with
//! `fieldValidation` and the strategic-merge-patch content type, the kind's schema found by
//! its `x-kubernetes-group-version-kind`, and the patch metadata on its fields.

use std::sync::Arc;

use serde_json::{Map, Value, json};

use super::*;
use crate::patch::PatchMeta;

fn doc(group: &str, version: &str) -> Value {
    document(group, version)
        .unwrap_or_else(|| panic!("no document for {group}/{version}"))
        .value()
}

fn components(doc: &Value) -> &Map<String, Value> {
    doc.pointer("/components/schemas")
        .and_then(Value::as_object)
        .expect("components.schemas")
}

#[test]
fn index_lists_every_group_version_with_its_hash() {
    let index = index();
    let paths = index["paths"].as_object().expect("paths");
    for (group, versions) in registry::group_versions() {
        for version in versions {
            let doc = document(group, version).expect("document");
            let key = if group.is_empty() {
                format!("api/{version}")
            } else {
                format!("apis/{group}/{version}")
            };
            assert_eq!(
                paths[&key]["serverRelativeURL"],
                json!(format!("/openapi/v3/{key}?hash={}", doc.hash))
            );
            assert_eq!(doc.hash.len(), 128);
            assert!(doc.hash.chars().all(|c| c.is_ascii_digit() || c.is_ascii_uppercase()));
            assert_eq!(hex_upper(&Sha512::digest(&doc.json)), doc.hash);
            let (value, hash) = group_version(group, version).expect("group_version");
            assert_eq!(hash, doc.hash);
            assert_eq!(serde_json::to_vec(&value).ok(), Some(doc.json.clone()));
        }
    }
    assert!(group_version("nope.example.com", "v1").is_none());
    assert!(group_version("", "v2").is_none());
}

/// The check kubectl's `--validate=strict` makes (cli-runtime `query_param_verifier_v3.go`)
/// and the one client-side apply makes before computing a strategic merge patch.
#[test]
fn every_kind_has_a_patch_operation_with_field_validation() {
    for def in registry::RESOURCES {
        let doc = doc(def.group, def.version);
        let gvk = json!({"group": def.group, "version": def.version, "kind": def.kind});
        let patch_ops: Vec<&Value> = doc["paths"]
            .as_object()
            .expect("paths")
            .values()
            .filter_map(|item| item.get("patch"))
            .filter(|op| op["x-kubernetes-group-version-kind"] == gvk)
            .collect();
        assert!(!patch_ops.is_empty(), "{} has no PATCH operation", def.kind);
        for op in patch_ops {
            let params = op["parameters"].as_array().expect("parameters");
            for name in ["fieldValidation", "dryRun", "fieldManager", "force"] {
                assert!(
                    params.iter().any(|p| p["name"] == name && p["in"] == "query"),
                    "{} PATCH lacks {name}",
                    def.kind
                );
            }
            for media in PATCH_TYPES {
                assert!(
                    op["requestBody"]["content"].get(*media).is_some(),
                    "{} PATCH lacks {media}",
                    def.kind
                );
            }
            assert_eq!(op["x-kubernetes-action"], "patch");
        }
        // kubectl then finds the kind's schema by its GVK (an array on the schema).
        let found = components(&doc).values().any(|schema| {
            schema["x-kubernetes-group-version-kind"]
                .as_array()
                .is_some_and(|gvks| gvks.contains(&gvk))
        });
        assert!(found, "no schema carries the GVK of {}", def.kind);
    }
}

#[test]
fn operations_are_shaped_like_upstreams() {
    let core = doc("", "v1");
    let pods = &core["paths"]["/api/v1/namespaces/{namespace}/pods"];
    assert_eq!(pods["get"]["operationId"], "listCoreV1NamespacedPod");
    assert_eq!(pods["get"]["x-kubernetes-action"], "list");
    assert_eq!(pods["post"]["x-kubernetes-action"], "post");
    assert_eq!(pods["delete"]["x-kubernetes-action"], "deletecollection");
    let pod = &core["paths"]["/api/v1/namespaces/{namespace}/pods/{name}"];
    for (verb, action, id) in [
        ("get", "get", "readCoreV1NamespacedPod"),
        ("put", "put", "replaceCoreV1NamespacedPod"),
        ("patch", "patch", "patchCoreV1NamespacedPod"),
        ("delete", "delete", "deleteCoreV1NamespacedPod"),
    ] {
        assert_eq!(pod[verb]["x-kubernetes-action"], action);
        assert_eq!(pod[verb]["operationId"], id);
    }
    assert_eq!(
        pod["get"]["responses"]["200"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/io.k8s.api.core.v1.Pod"
    );
    assert!(core["paths"].get("/api/v1/pods").is_some());
    assert!(
        core["paths"]
            .get("/api/v1/namespaces/{namespace}/pods/{name}/status")
            .is_some()
    );
    assert_eq!(
        core["paths"]["/api/v1/namespaces/{namespace}/pods/{name}/eviction"]["post"]["x-kubernetes-group-version-kind"],
        json!({"group": "policy", "version": "v1", "kind": "Eviction"})
    );
    assert!(core["paths"].get("/api/v1/namespaces/{name}/finalize").is_some());
    assert!(core["paths"].get("/api/v1/nodes/{name}").is_some());
    let apps = doc("apps", "v1");
    let scale = &apps["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}/scale"];
    assert_eq!(
        scale["patch"]["x-kubernetes-group-version-kind"],
        json!({"group": "autoscaling", "version": "v1", "kind": "Scale"})
    );
    assert_eq!(scale["patch"]["operationId"], "patchAppsV1NamespacedDeploymentScale");
    let rbac = doc("rbac.authorization.k8s.io", "v1");
    assert!(
        rbac["paths"]["/apis/rbac.authorization.k8s.io/v1/clusterroles/{name}"]["patch"]["operationId"]
            == "patchRbacAuthorizationV1ClusterRole"
    );
}

/// Every `$ref` of a document points at one of its own components.
#[test]
fn documents_are_self_contained() {
    fn refs<'a>(value: &'a Value, out: &mut Vec<&'a str>) {
        match value {
            Value::Object(map) => {
                if let Some(Value::String(r)) = map.get("$ref") {
                    out.push(r);
                }
                map.values().for_each(|v| refs(v, out));
            }
            Value::Array(items) => items.iter().for_each(|v| refs(v, out)),
            _ => {}
        }
    }
    for doc in &documents().docs {
        let mut all = Vec::new();
        let value = doc.value();
        refs(&value, &mut all);
        let schemas = components(&value);
        for r in all {
            let name = r.strip_prefix("#/components/schemas/").expect("component ref");
            assert!(
                schemas.contains_key(name),
                "{}/{}: dangling {r}",
                doc.group,
                doc.version
            );
        }
        assert_eq!(value["openapi"], "3.0.0");
    }
}

/// The patch metadata as kubectl's `PatchMetaFromOpenAPIV3` finds it, from one document only.
#[test]
fn pod_and_deployment_schemas_carry_patch_metadata() {
    let core = doc("", "v1");
    let pod = PatchMeta::new(Arc::new(components(&core).clone()), "io.k8s.api.core.v1.Pod");
    let containers = pod.lookup(&["spec", "containers"]);
    assert_eq!(containers.merge_key, Some("name"));
    assert_eq!(containers.patch_strategy, Some("merge"));
    assert_eq!(containers.list_type, Some("map"));
    assert_eq!(containers.list_map_keys, vec!["name"]);
    assert_eq!(
        pod.lookup(&["spec", "volumes"]).patch_strategy,
        Some("merge,retainKeys")
    );
    assert_eq!(pod.lookup(&["metadata", "finalizers"]).list_type, Some("set"));
    assert_eq!(pod.lookup(&["metadata", "ownerReferences"]).merge_key, Some("uid"));
    assert_eq!(pod.lookup(&["status", "conditions"]).merge_key, Some("type"));

    let pod_spec = &components(&core)["io.k8s.api.core.v1.PodSpec"]["properties"]["containers"];
    assert_eq!(pod_spec["x-kubernetes-patch-merge-key"], "name");
    assert_eq!(
        pod_spec["items"]["$ref"],
        "#/components/schemas/io.k8s.api.core.v1.Container"
    );
    let pod_schema = &components(&core)["io.k8s.api.core.v1.Pod"];
    assert_eq!(
        pod_schema["x-kubernetes-group-version-kind"],
        json!([{"group": "", "version": "v1", "kind": "Pod"}])
    );
    assert!(
        pod_schema.get("required").is_none(),
        "metadata is not required upstream"
    );
    assert_eq!(
        pod_schema["properties"]["spec"]["allOf"][0]["$ref"],
        "#/components/schemas/io.k8s.api.core.v1.PodSpec"
    );

    let apps = doc("apps", "v1");
    let strategy = &components(&apps)["io.k8s.api.apps.v1.DeploymentSpec"]["properties"]["strategy"];
    assert_eq!(strategy["x-kubernetes-patch-strategy"], "retainKeys");
    assert_eq!(
        strategy["allOf"][0]["$ref"],
        "#/components/schemas/io.k8s.api.apps.v1.DeploymentStrategy"
    );
    assert_eq!(
        components(&apps)["io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelector"]["x-kubernetes-map-type"],
        "atomic"
    );
    let list = &components(&apps)["io.k8s.api.apps.v1.DeploymentList"];
    assert_eq!(
        list["properties"]["items"]["items"]["$ref"],
        "#/components/schemas/io.k8s.api.apps.v1.Deployment"
    );
    assert_eq!(
        list["x-kubernetes-group-version-kind"],
        json!([{"group": "apps", "version": "v1", "kind": "DeploymentList"}])
    );
}

/// Every row of the facts table names a field of a generated schema (catches typos and
/// fields renamed upstream).
#[test]
fn facts_name_existing_fields() {
    let schemas = schemas();
    let mut checked = 0;
    for (name, schema) in schemas.iter() {
        let Some(properties) = schema.get("properties").and_then(Value::as_object) else {
            continue;
        };
        for (field, property) in properties {
            if let Some(facts) = field_facts(name, field) {
                checked += 1;
                if let Some(key) = facts.patch_merge_key {
                    assert_eq!(property["x-kubernetes-patch-merge-key"], key, "{name}.{field}");
                }
            }
        }
    }
    assert_eq!(
        checked,
        facts::row_count(),
        "rows naming fields no generated schema has"
    );
    assert_eq!(
        field_facts("io.k8s.api.core.v1.ServiceSpec", "ports").and_then(|f| f.patch_merge_key),
        Some("port")
    );
    assert_eq!(type_map_type("io.k8s.api.rbac.v1.RoleRef"), Some("atomic"));
}

#[test]
fn documents_are_cached_and_stable() {
    let a = document("apps", "v1").expect("apps/v1");
    let b = document("apps", "v1").expect("apps/v1");
    assert!(std::ptr::eq(a, b));
    let (again, _) = generate_one("apps", "v1");
    assert_eq!(again.hash, a.hash, "generation is deterministic");
    assert_eq!(
        schema_name("apps", "v1", "Deployment").as_deref(),
        Some("io.k8s.api.apps.v1.Deployment")
    );
}
