//! Carrying out a history plan through the API, for DaemonSets and StatefulSets alike: create
//! or renumber the current revision and delete the old ones past the limit.

use k8s_openapi::api::apps::v1::ControllerRevision;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::{Api, ResourceExt};
use serde_json::json;

use super::history::{self, Current, HistoryPlan, Owner};
use crate::error::{Error, Result, is_conflict, is_not_found};
use crate::util;

/// The outcome of [`apply`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    /// The current revision exists: its name and hash.
    Current { name: String, hash: String },
    /// Another object already has the current revision's name: raise the collision count.
    Collision,
}

/// Applies `plan` for `owner`.
pub async fn apply(client: &kube::Client, owner: &Owner<'_>, plan: &HistoryPlan) -> Result<Applied> {
    let key = util::key(owner.namespace, owner.name);
    let api: Api<ControllerRevision> = Api::namespaced(client.clone(), owner.namespace.unwrap_or_default());
    let applied = Applied::Current {
        name: plan.current.name(),
        hash: plan.current.hash(),
    };
    match &plan.current {
        Current::Existing { name, bump_to, .. } => {
            if let Some(revision) = bump_to {
                let patch = json!({ "revision": revision });
                match api.patch(name, &PatchParams::default(), &Patch::Merge(&patch)).await {
                    Ok(_) => {}
                    Err(error) if is_not_found(&error) => {}
                    Err(error) => return Err(Error::api("update", "ControllerRevision", key, error)),
                }
            }
        }
        Current::Create(revision) => match api.create(&PostParams::default(), revision).await {
            Ok(_) => {}
            Err(error) if is_conflict(&error) => {
                let name = revision.name_any();
                let existing = api
                    .get(&name)
                    .await
                    .map_err(|error| Error::api("get", "ControllerRevision", &name, error))?;
                let ours = util::controller_of(&existing.metadata).is_some_and(|reference| reference.uid == owner.uid);
                if !(ours && history::matches(owner, &existing)) {
                    return Ok(Applied::Collision);
                }
            }
            Err(error) => return Err(Error::api("create", "ControllerRevision", key, error)),
        },
    }
    for name in &plan.delete {
        match api.delete(name, &DeleteParams::default()).await {
            Ok(_) => {}
            Err(error) if is_not_found(&error) => {}
            Err(error) => return Err(Error::api("delete", "ControllerRevision", name.clone(), error)),
        }
    }
    Ok(applied)
}
