//! PATCH bodies: JSON Patch (RFC 6902), JSON Merge Patch (RFC 7386) and strategic merge patch.
//!
//! Strategic merge patch here knows the list merge keys of the built-in types by field name
//! (containers by `name`, ports by `containerPort`/`port`, conditions by `type`, ...) and the
//! `$patch`, `$retainKeys`, `$setElementOrder` and `$deleteFromPrimitiveList` directives. The
//! full per-type patch metadata (generated with OpenAPI) arrives with the kubectl-compatibility
//! work; until then a list without a known merge key is replaced, as upstream does for lists
//! without a patch strategy.

use serde_json::{Map, Value};

use crate::error::{ApiError, ApiResult};

/// The supported patch content types.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PatchType {
    Json,
    Merge,
    Strategic,
}

impl PatchType {
    pub fn from_content_type(content_type: &str) -> ApiResult<Self> {
        let media = content_type.split(';').next().unwrap_or("").trim();
        match media {
            "application/json-patch+json" => Ok(Self::Json),
            "application/merge-patch+json" => Ok(Self::Merge),
            "application/strategic-merge-patch+json" => Ok(Self::Strategic),
            other => Err(ApiError::new(
                415,
                "UnsupportedMediaType",
                format!(
                    "the body of the request was in an unknown format ({other:?}) - accepted media types include: \
                     application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json"
                ),
            )),
        }
    }
}

/// Applies `patch` to `target`.
pub fn apply(kind: PatchType, target: &Value, patch: &[u8]) -> ApiResult<Value> {
    let patch_value: Value =
        serde_json::from_slice(patch).map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))?;
    match kind {
        PatchType::Json => {
            let ops: json_patch::Patch = serde_json::from_value(patch_value)
                .map_err(|e| ApiError::bad_request(format!("the JSON patch is not valid: {e}")))?;
            let mut doc = target.clone();
            json_patch::patch(&mut doc, &ops).map_err(|e| {
                ApiError::new(
                    422,
                    "Invalid",
                    format!("the server rejected our request due to an error in our request: {e}"),
                )
            })?;
            Ok(doc)
        }
        PatchType::Merge => {
            if !patch_value.is_object() {
                return Err(ApiError::bad_request("a merge patch must be a JSON object"));
            }
            let mut doc = target.clone();
            json_patch::merge(&mut doc, &patch_value);
            Ok(doc)
        }
        PatchType::Strategic => {
            let Value::Object(patch_map) = patch_value else {
                return Err(ApiError::bad_request("a strategic merge patch must be a JSON object"));
            };
            let Value::Object(target_map) = target.clone() else {
                return Err(ApiError::bad_request("the object to patch is not a JSON object"));
            };
            Ok(Value::Object(merge_map(target_map, patch_map, "")?))
        }
    }
}

/// The merge key of a list field, by field name (and, for `ports`, by element shape).
fn merge_key(field: &str, sample: Option<&Value>) -> Option<&'static str> {
    Some(match field {
        "containers"
        | "initContainers"
        | "ephemeralContainers"
        | "env"
        | "volumes"
        | "imagePullSecrets"
        | "volumeDevices"
        | "resourceClaims" => {
            if field == "volumeDevices" {
                "devicePath"
            } else {
                "name"
            }
        }
        "volumeMounts" => "mountPath",
        "conditions" => "type",
        "ownerReferences" => "uid",
        "hostAliases" => "ip",
        "topologySpreadConstraints" => "topologyKey",
        "ports" => {
            let has = |k: &str| sample.and_then(|s| s.get(k)).is_some();
            if has("containerPort") { "containerPort" } else { "port" }
        }
        _ => return None,
    })
}

/// Primitive lists merged as sets rather than replaced.
fn is_merged_primitive_list(field: &str) -> bool {
    field == "finalizers"
}

fn merge_map(mut target: Map<String, Value>, patch: Map<String, Value>, path: &str) -> ApiResult<Map<String, Value>> {
    match patch.get("$patch").and_then(Value::as_str) {
        Some("replace") => {
            let mut replaced = patch;
            replaced.remove("$patch");
            return Ok(replaced);
        }
        Some("delete") => return Ok(Map::new()),
        Some(other) => return Err(ApiError::bad_request(format!("unknown patch type {other:?} in {path}"))),
        None => {}
    }
    let retain: Option<Vec<String>> = patch
        .get("$retainKeys")
        .and_then(Value::as_array)
        .map(|keys| keys.iter().filter_map(|k| k.as_str().map(str::to_string)).collect());
    let mut orders: Map<String, Value> = Map::new();
    for (key, value) in patch {
        if key == "$retainKeys" {
            continue;
        }
        if let Some(field) = key.strip_prefix("$setElementOrder/") {
            orders.insert(field.to_string(), value);
            continue;
        }
        if let Some(field) = key.strip_prefix("$deleteFromPrimitiveList/") {
            if let (Some(Value::Array(existing)), Value::Array(remove)) = (target.get_mut(field), &value) {
                existing.retain(|v| !remove.contains(v));
            }
            continue;
        }
        let child_path = if path.is_empty() {
            key.clone()
        } else {
            format!("{path}.{key}")
        };
        match value {
            Value::Null => {
                target.remove(&key);
            }
            Value::Object(patch_child) => {
                let merged = match target.remove(&key) {
                    Some(Value::Object(existing)) => merge_map(existing, patch_child, &child_path)?,
                    _ => merge_map(Map::new(), patch_child, &child_path)?,
                };
                target.insert(key, Value::Object(merged));
            }
            Value::Array(patch_list) => {
                let merged = match target.remove(&key) {
                    Some(Value::Array(existing)) => merge_list(&key, existing, patch_list, &child_path)?,
                    _ => merge_list(&key, Vec::new(), patch_list, &child_path)?,
                };
                target.insert(key, Value::Array(merged));
            }
            scalar => {
                target.insert(key, scalar);
            }
        }
    }
    for (field, order) in orders {
        if let (Some(Value::Array(list)), Value::Array(order)) = (target.get_mut(&field), order) {
            reorder(&field, list, &order);
        }
    }
    if let Some(retain) = retain {
        target.retain(|k, _| retain.contains(k));
    }
    Ok(target)
}

fn merge_list(field: &str, mut existing: Vec<Value>, patch: Vec<Value>, path: &str) -> ApiResult<Vec<Value>> {
    if is_merged_primitive_list(field) {
        for item in patch {
            if !existing.contains(&item) {
                existing.push(item);
            }
        }
        return Ok(existing);
    }
    let Some(key) = merge_key(field, patch.first().or(existing.first())) else {
        return Ok(patch);
    };
    if patch
        .iter()
        .any(|p| p.get("$patch").and_then(Value::as_str) == Some("replace"))
    {
        return Ok(patch.into_iter().filter(|p| p.get("$patch").is_none()).collect());
    }
    for item in patch {
        let Value::Object(item_map) = item else {
            return Err(ApiError::bad_request(format!(
                "{path}: expected a list of objects merged by {key:?}"
            )));
        };
        let id = item_map.get(key).cloned();
        let position = id
            .as_ref()
            .and_then(|id| existing.iter().position(|e| e.get(key) == Some(id)));
        let delete = item_map.get("$patch").and_then(Value::as_str) == Some("delete");
        match (position, delete) {
            (Some(i), true) => {
                existing.remove(i);
            }
            (None, true) => {}
            (Some(i), false) => {
                let current = match existing[i].take() {
                    Value::Object(m) => m,
                    _ => Map::new(),
                };
                existing[i] = Value::Object(merge_map(current, item_map, path)?);
            }
            (None, false) => existing.push(Value::Object(merge_map(Map::new(), item_map, path)?)),
        }
    }
    Ok(existing)
}

fn reorder(field: &str, list: &mut [Value], order: &[Value]) {
    let key = merge_key(field, list.first());
    let rank = |v: &Value| -> usize {
        let id = match key {
            Some(k) => order.iter().position(|o| o.get(k).is_some() && o.get(k) == v.get(k)),
            None => order.iter().position(|o| o == v),
        };
        id.unwrap_or(usize::MAX)
    };
    list.sort_by_key(rank);
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn strategic_merges_containers_by_name_and_deletes() {
        let target = json!({"spec": {"containers": [{"name": "a", "image": "x"}, {"name": "b", "image": "y"}],
            "finalizers": ["f1"]}, "metadata": {"labels": {"k": "v", "gone": "1"}}});
        let patch = br#"{"spec": {"containers": [{"name": "b", "image": "z"}, {"name": "a", "$patch": "delete"}],
            "finalizers": ["f2"]}, "metadata": {"labels": {"gone": null}}}"#;
        let out = apply(PatchType::Strategic, &target, patch).unwrap();
        assert_eq!(out["spec"]["containers"], json!([{"name": "b", "image": "z"}]));
        assert_eq!(out["spec"]["finalizers"], json!(["f1", "f2"]));
        assert_eq!(out["metadata"]["labels"], json!({"k": "v"}));
    }

    #[test]
    fn merge_and_json_patches() {
        let target = json!({"spec": {"replicas": 1, "list": [1, 2]}});
        let out = apply(PatchType::Merge, &target, br#"{"spec": {"replicas": 3, "list": [9]}}"#).unwrap();
        assert_eq!(out, json!({"spec": {"replicas": 3, "list": [9]}}));
        let out = apply(
            PatchType::Json,
            &target,
            br#"[{"op": "replace", "path": "/spec/replicas", "value": 5}]"#,
        )
        .unwrap();
        assert_eq!(out["spec"]["replicas"], 5);
        assert_eq!(
            apply(
                PatchType::Json,
                &target,
                br#"[{"op": "test", "path": "/spec/replicas", "value": 9}]"#
            )
            .unwrap_err()
            .code,
            422
        );
        assert_eq!(apply(PatchType::Merge, &target, b"not json").unwrap_err().code, 400);
        assert_eq!(
            PatchType::from_content_type("application/apply-patch+yaml")
                .unwrap_err()
                .code,
            415
        );
    }
}
