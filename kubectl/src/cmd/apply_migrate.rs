//! After a server-side apply, what upstream kubectl does to an object that was client-side
//! applied before (`cmd/apply` and `csaupgrade`): keep the last-applied annotation under
//! manager `kubectl-last-applied`, move the client-side apply managers' fields into the
//! server-side applier's entry (a JSON patch of `metadata.managedFields`, guarded by the
//! resourceVersion), and have the caller re-send its apply so dropped fields go.

use api::managed::FieldSet;
use http::Method;
use serde_json::{Value, json};

use crate::cmd::apply::LAST_APPLIED;
use crate::error::Error;
use crate::request;

/// The manager kubectl keeps the last-applied annotation under.
const LAST_APPLIED_MANAGER: &str = "kubectl-last-applied";
/// The default server-side apply manager.
const DEFAULT_MANAGER: &str = "kubectl";
/// How often the managedFields patch is retried on a resourceVersion conflict.
const MAX_RETRY: usize = 5;

fn entries(object: &Value) -> &[Value] {
    object
        .pointer("/metadata/managedFields")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
}

fn is(entry: &Value, manager: &str, operation: &str) -> bool {
    entry["manager"] == manager && entry["operation"] == operation && entry.get("subresource").is_none_or(|s| s == "")
}

fn fields(entry: &Value) -> FieldSet {
    entry
        .get("fieldsV1")
        .and_then(|f| FieldSet::from_fields_v1(f).ok())
        .unwrap_or_default()
}

fn annotation_field() -> FieldSet {
    let mut set = FieldSet::new();
    set.insert(&[
        "f:metadata".to_string(),
        "f:annotations".into(),
        format!("f:{LAST_APPLIED}"),
    ]);
    set
}

/// Step one: with the default manager, applies the object's last-applied annotation as
/// `kubectl-last-applied` (once), so the next steps do not orphan it. Returns the object
/// as it now is.
pub async fn keep_last_applied(
    client: &kube::Client,
    object_url: &str,
    applied: Value,
    manager: &str,
    validation: &str,
) -> Result<Value, Error> {
    let Some(last) = applied
        .pointer("/metadata/annotations")
        .and_then(|a| a.get(LAST_APPLIED))
        .and_then(Value::as_str)
    else {
        return Ok(applied);
    };
    if manager != DEFAULT_MANAGER || entries(&applied).iter().any(|e| is(e, LAST_APPLIED_MANAGER, "Apply")) {
        return Ok(applied);
    }
    let mut metadata = json!({"name": applied["metadata"]["name"], "annotations": {LAST_APPLIED: last}});
    if let Some(ns) = applied["metadata"].get("namespace") {
        metadata["namespace"] = ns.clone();
    }
    let body = json!({"apiVersion": applied["apiVersion"], "kind": applied["kind"], "metadata": metadata});
    let url = request::with_query(
        object_url,
        &[("fieldManager", LAST_APPLIED_MANAGER), ("fieldValidation", validation)],
    );
    request::send(
        client,
        Method::PATCH,
        &url,
        "application/json",
        Some("application/apply-patch+yaml"),
        serde_json::to_vec(&body)?,
    )
    .await
}

/// The managedFields with every client-side apply manager's entry merged into `manager`'s
/// Apply entry (upstream `csaupgrade.UpgradeManagedFields`), or `None` when nothing changes.
fn upgraded(object: &Value, manager: &str) -> Option<Vec<Value>> {
    let original = entries(object).to_vec();
    let annotation = annotation_field();
    let mut csa_managers: Vec<String> = original
        .iter()
        .filter(|e| e["operation"] == "Update" && !fields(e).intersection(&annotation).is_empty())
        .filter_map(|e| e["manager"].as_str().map(str::to_string))
        .collect();
    csa_managers.sort();
    csa_managers.dedup();
    let mut list = original.clone();
    for csa in &csa_managers {
        let target = match list.iter().position(|e| is(e, manager, "Apply")) {
            Some(i) => i,
            None => {
                let Some(i) = list.iter().position(|e| is(e, csa, "Update")) else {
                    continue;
                };
                list[i]["operation"] = json!("Apply");
                list[i]["manager"] = json!(manager);
                i
            }
        };
        let version = list[target]["apiVersion"].clone();
        let mut combined = fields(&list[target]);
        if let Some(same_version) = list.iter().find(|e| is(e, csa, "Update") && e["apiVersion"] == version) {
            combined = combined.union(&fields(same_version));
        }
        list[target]["fieldsV1"] = combined.difference(&annotation).to_fields_v1();
        list.retain(|e| !is(e, csa, "Update"));
    }
    (list != original).then_some(list)
}

/// Step two: moves client-side apply ownership to `manager`. Returns whether it did (the
/// caller then re-sends its apply).
pub async fn upgrade_managed_fields(
    client: &kube::Client,
    object_url: &str,
    mut current: Value,
    manager: &str,
    validation: &str,
) -> Result<bool, Error> {
    let url = request::with_query(
        object_url,
        &[("fieldManager", manager), ("fieldValidation", validation)],
    );
    let mut last_error = None;
    for _ in 0..MAX_RETRY {
        let Some(list) = upgraded(&current, manager) else {
            return Ok(false);
        };
        let patch = json!([
            {"op": "replace", "path": "/metadata/managedFields", "value": list},
            // A replace rather than a test, so a concurrent write is a 409 Conflict.
            {"op": "replace", "path": "/metadata/resourceVersion", "value": current["metadata"]["resourceVersion"]},
        ]);
        let sent = request::send(
            client,
            Method::PATCH,
            &url,
            "application/json",
            Some("application/json-patch+json"),
            serde_json::to_vec(&patch)?,
        )
        .await;
        match sent {
            Ok(_) => return Ok(true),
            Err(Error::Api(status)) if status.code == 409 => {
                last_error = Some(Error::Api(status));
                current = request::get(client, object_url, "application/json").await?;
            }
            Err(other) => return Err(other),
        }
    }
    Err(last_error.unwrap_or_else(|| Error::Message("too many conflicts".into())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(manager: &str, operation: &str, fields: Value) -> Value {
        json!({"manager": manager, "operation": operation, "apiVersion": "v1", "fieldsType": "FieldsV1", "fieldsV1": fields})
    }

    #[test]
    fn client_side_managers_fold_into_the_apply_entry_without_the_annotation() {
        let annotated = json!({"f:data": {"f:a": {}, "f:b": {}}, "f:metadata": {"f:annotations": {format!("f:{LAST_APPLIED}"): {}}}});
        let object = json!({"metadata": {"managedFields": [
            entry("kubectl", "Apply", json!({"f:data": {"f:a": {}}})),
            entry("kubectl-client-side-apply", "Update", annotated.clone()),
            entry("other", "Update", json!({"f:data": {"f:c": {}}})),
        ]}});
        let list = upgraded(&object, "kubectl").expect("a change");
        assert_eq!(
            list,
            vec![
                entry("kubectl", "Apply", json!({"f:data": {"f:a": {}, "f:b": {}}})),
                entry("other", "Update", json!({"f:data": {"f:c": {}}})),
            ]
        );
        // Without an Apply entry the client-side one becomes it.
        let object = json!({"metadata": {"managedFields": [entry("kubectl-client-side-apply", "Update", annotated)]}});
        assert_eq!(
            upgraded(&object, "mine"),
            Some(vec![entry("mine", "Apply", json!({"f:data": {"f:a": {}, "f:b": {}}}))])
        );
        // Nothing owns the annotation through an update: nothing to do.
        let object = json!({"metadata": {"managedFields": [entry("other", "Update", json!({"f:data": {}}))]}});
        assert_eq!(upgraded(&object, "kubectl"), None);
    }
}
