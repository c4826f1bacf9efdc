//! PATCH bodies: JSON Patch (RFC 6902), JSON Merge Patch (RFC 7386) and strategic merge patch
//! (driven by the Kubernetes patch metadata the `api` crate publishes in OpenAPI, so the
//! server merges exactly as kubectl expects when it computes a patch).

use api::patch::PatchMeta;
use serde_json::Value;

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

/// Applies `patch` to `target`; `meta` is the patch metadata of the target's type.
pub fn apply(kind: PatchType, target: &Value, patch: &[u8], meta: &PatchMeta) -> ApiResult<Value> {
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
            if !patch_value.is_object() {
                return Err(ApiError::bad_request("a strategic merge patch must be a JSON object"));
            }
            api::patch::strategic_merge(target, &patch_value, meta).map_err(|e| match e.code() {
                400 => ApiError::bad_request(e.to_string()),
                422 => ApiError::new(422, "Invalid", e.to_string()),
                _ => ApiError::internal(e),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn strategic_merge_uses_the_kinds_patch_metadata() {
        let deployments = api::registry::find("apps", "v1", "deployments").unwrap();
        let meta = api::patch::patch_meta(deployments);
        let target = json!({"metadata": {"labels": {"k": "v", "gone": "1"}, "finalizers": ["f1"]},
            "spec": {"template": {"spec": {"containers": [
                {"name": "a", "image": "x", "ports": [{"containerPort": 80}]}, {"name": "b", "image": "y"}]}}}});
        let patch = br#"{"metadata": {"labels": {"gone": null}, "finalizers": ["f2"]},
            "spec": {"template": {"spec": {"containers": [{"name": "a", "image": "z"}, {"name": "b", "$patch": "delete"}]}}}}"#;
        let out = apply(PatchType::Strategic, &target, patch, &meta).unwrap();
        assert_eq!(
            out["spec"]["template"]["spec"]["containers"],
            json!([{"name": "a", "image": "z", "ports": [{"containerPort": 80}]}])
        );
        assert_eq!(out["metadata"]["labels"], json!({"k": "v"}));
        // Upstream orders patch items ahead of server-only ones (normalizeElementOrder).
        let mut finalizers: Vec<&str> = out["metadata"]["finalizers"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(Value::as_str)
            .collect();
        finalizers.sort();
        assert_eq!(finalizers, ["f1", "f2"]);
    }

    #[test]
    fn merge_and_json_patches() {
        let meta = PatchMeta::none();
        let target = json!({"spec": {"replicas": 1, "list": [1, 2]}});
        let out = apply(
            PatchType::Merge,
            &target,
            br#"{"spec": {"replicas": 3, "list": [9]}}"#,
            &meta,
        )
        .unwrap();
        assert_eq!(out, json!({"spec": {"replicas": 3, "list": [9]}}));
        let out = apply(
            PatchType::Json,
            &target,
            br#"[{"op": "replace", "path": "/spec/replicas", "value": 5}]"#,
            &meta,
        )
        .unwrap();
        assert_eq!(out["spec"]["replicas"], 5);
        let failed_test = br#"[{"op": "test", "path": "/spec/replicas", "value": 9}]"#;
        assert_eq!(
            apply(PatchType::Json, &target, failed_test, &meta).unwrap_err().code,
            422
        );
        assert_eq!(
            apply(PatchType::Merge, &target, b"not json", &meta).unwrap_err().code,
            400
        );
        assert_eq!(
            PatchType::from_content_type("application/apply-patch+yaml")
                .unwrap_err()
                .code,
            415
        );
    }
}
