//! Adopting and releasing dependents by owner reference, as merge patches guarded by the
//! dependent's resourceVersion (a concurrent change makes the patch fail and the sync retry).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use serde_json::{Value, json};

/// The patch making `owner` the controller of the object with `meta`.
pub fn adopt_patch(meta: &ObjectMeta, owner: OwnerReference) -> Value {
    let mut references: Vec<OwnerReference> = meta
        .owner_references
        .clone()
        .unwrap_or_default()
        .into_iter()
        .filter(|reference| reference.uid != owner.uid)
        .collect();
    references.push(owner);
    json!({"metadata": {"ownerReferences": references, "resourceVersion": meta.resource_version}})
}

/// The patch removing the owner with `owner_uid` from the object with `meta`.
pub fn release_patch(meta: &ObjectMeta, owner_uid: &str) -> Value {
    let references: Vec<OwnerReference> = meta
        .owner_references
        .clone()
        .unwrap_or_default()
        .into_iter()
        .filter(|reference| reference.uid != owner_uid)
        .collect();
    let references = if references.is_empty() {
        Value::Null
    } else {
        json!(references)
    };
    json!({"metadata": {"ownerReferences": references, "resourceVersion": meta.resource_version}})
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference(uid: &str) -> OwnerReference {
        OwnerReference {
            api_version: "apps/v1".into(),
            kind: "ReplicaSet".into(),
            name: uid.into(),
            uid: uid.into(),
            controller: Some(true),
            block_owner_deletion: Some(true),
        }
    }

    #[test]
    fn adopt_and_release_keep_other_owners() {
        let meta = ObjectMeta {
            resource_version: Some("7".into()),
            owner_references: Some(vec![OwnerReference {
                controller: None,
                ..reference("other")
            }]),
            ..Default::default()
        };
        let patch = adopt_patch(&meta, reference("mine"));
        assert_eq!(patch["metadata"]["ownerReferences"].as_array().map(Vec::len), Some(2));
        assert_eq!(patch["metadata"]["resourceVersion"], "7");
        let patch = release_patch(&meta, "other");
        assert_eq!(patch["metadata"]["ownerReferences"], Value::Null);
    }
}
