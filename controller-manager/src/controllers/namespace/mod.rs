//! The namespace controller: a namespace being deleted loses all its content (every
//! namespaced resource discovery lists that can be deleted), reports progress in its
//! conditions, and once empty has the `kubernetes` finalizer removed through
//! `namespaces/{name}/finalize`.

pub mod decide;

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams, Preconditions};
use kube::runtime::reflector::Store;
use kube::{Client, ResourceExt};

use crate::context::Context;
use crate::controllers::wiring::{EventForwarder, When, resync_each};
use crate::discovery;
use crate::error::{Error, Result, is_conflict, is_not_found};
use crate::queue::WorkQueue;
use crate::util;

/// The controller's name in `--controllers`.
pub const NAME: &str = "namespace";

/// How soon to look again while content is still going away.
const CONTENT_RECHECK: Duration = Duration::from_secs(2);

/// Runs the controller until the context is cancelled.
pub async fn run(ctx: Arc<Context>) -> Result<()> {
    let informer = ctx.informers.namespaces();
    let changes = informer.subscribe();
    informer.wait_ready().await?;
    let namespaces = informer.store();
    let queue = WorkQueue::<String>::new();
    let enqueue_all = resync_each(&queue, &namespaces, |ns| [ns.name_any()]);
    enqueue_all();
    let client = ctx.client.clone();
    let workers = ctx.options.concurrent_namespace_syncs;
    EventForwarder::new(&queue, enqueue_all)
        .on(changes, When::Applied, |ns| [ns.name_any()])
        .run_workers(NAME, workers, &ctx.token, move |name: String| {
            let (client, namespaces) = (client.clone(), namespaces.clone());
            async move { sync(&client, &namespaces, &name).await }
        })
        .await;
    Ok(())
}

async fn sync(client: &Client, namespaces: &Store<Namespace>, name: &str) -> Result<Option<Duration>> {
    let Some(namespace) = util::get(namespaces, name) else {
        return Ok(None);
    };
    let api: Api<Namespace> = Api::all(client.clone());
    match decide::need(&namespace) {
        decide::Need::Nothing => Ok(None),
        decide::Need::Remove => remove(&api, &namespace).await,
        decide::Need::DeleteContent => {
            let report = delete_content(client, name).await;
            let current = namespace
                .status
                .as_ref()
                .and_then(|status| status.conditions.clone())
                .unwrap_or_default();
            if let Some(conditions) = decide::conditions(&report, &current, jiff::Timestamp::now()) {
                let patch = serde_json::json!({"status": {"conditions": conditions}});
                match api
                    .patch_status(name, &PatchParams::default(), &Patch::Merge(&patch))
                    .await
                {
                    Ok(_) => {}
                    Err(error) if is_not_found(&error) => return Ok(None),
                    Err(error) => return Err(Error::api("update status of", "Namespace", name, error)),
                }
            }
            if let Some(error) = &report.discovery_failure {
                tracing::warn!(namespace = name, %error, "discovery failed while deleting namespace content");
                return Ok(Some(CONTENT_RECHECK));
            }
            if !report.deletion_failures.is_empty() {
                tracing::warn!(namespace = name, errors = ?report.deletion_failures, "deleting namespace content failed");
                return Ok(Some(CONTENT_RECHECK));
            }
            if !report.done() {
                return Ok(Some(CONTENT_RECHECK));
            }
            finalize(&api, &namespace).await
        }
    }
}

/// Deletes everything in namespace `name` and counts what is left.
async fn delete_content(client: &Client, name: &str) -> decide::Report {
    let mut report = decide::Report::default();
    let resources = match discovery::resources(client).await {
        Ok(resources) => resources,
        Err(error) => {
            report.discovery_failure = Some(error.to_string());
            return report;
        }
    };
    for resource in resources
        .iter()
        .filter(|r| r.namespaced() && r.supports("delete") && r.supports("list"))
    {
        let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), name, &resource.resource);
        if let Err(error) = delete_all(&api, resource).await {
            report
                .deletion_failures
                .push(format!("{}: {error}", resource.group_resource()));
            continue;
        }
        match api.list_metadata(&ListParams::default()).await {
            Ok(list) => {
                if list.items.is_empty() {
                    continue;
                }
                report.remaining.insert(resource.group_resource(), list.items.len());
                for item in &list.items {
                    for finalizer in item.metadata.finalizers.iter().flatten() {
                        *report.finalizers.entry(finalizer.clone()).or_default() += 1;
                    }
                }
            }
            Err(error) if is_not_found(&error) => {}
            Err(error) => report
                .deletion_failures
                .push(format!("{}: {error}", resource.group_resource())),
        }
    }
    report
}

/// Deletes every object of one resource: one deletecollection where supported, else one by one.
async fn delete_all(api: &Api<DynamicObject>, resource: &discovery::Resource) -> Result<(), kube::Error> {
    let params = DeleteParams::background();
    if resource.supports("deletecollection") {
        match api.delete_collection(&params, &ListParams::default()).await {
            Ok(_) => return Ok(()),
            // 405: served without deletecollection after all; fall back.
            Err(kube::Error::Api(status)) if status.code == 405 => {}
            Err(error) if is_not_found(&error) => return Ok(()),
            Err(error) => return Err(error),
        }
    }
    let list = match api.list_metadata(&ListParams::default()).await {
        Ok(list) => list,
        Err(error) if is_not_found(&error) => return Ok(()),
        Err(error) => return Err(error),
    };
    for item in list.items {
        if item.metadata.deletion_timestamp.is_some() {
            continue;
        }
        match api.delete(&item.name_any(), &params).await {
            Ok(_) => {}
            Err(error) if is_not_found(&error) => {}
            Err(error) => return Err(error),
        }
    }
    Ok(())
}

/// Removes our finalizer through `namespaces/{name}/finalize`, then removes the namespace.
async fn finalize(api: &Api<Namespace>, namespace: &Namespace) -> Result<Option<Duration>> {
    let name = namespace.name_any();
    let mut finalized = namespace.clone();
    finalized.spec.get_or_insert_with(Default::default).finalizers = Some(decide::finalizers_after(namespace));
    let result = api
        .replace_subresource("finalize", &name, &PostParams::default(), &finalized)
        .await;
    let finalized = match result {
        Ok(finalized) => finalized,
        Err(error) if is_not_found(&error) => return Ok(None),
        Err(error) => return Err(Error::api("finalize", "Namespace", name, error)),
    };
    if decide::need(&finalized) == decide::Need::Remove {
        return remove(api, &finalized).await;
    }
    Ok(None)
}

/// Deletes a finalized namespace (a no-op where the apiserver already removed it).
async fn remove(api: &Api<Namespace>, namespace: &Namespace) -> Result<Option<Duration>> {
    let name = namespace.name_any();
    let params = DeleteParams {
        preconditions: Some(Preconditions {
            uid: namespace.metadata.uid.clone(),
            resource_version: None,
        }),
        ..DeleteParams::default()
    };
    match api.delete(&name, &params).await {
        Ok(_) => Ok(None),
        Err(error) if is_not_found(&error) || is_conflict(&error) => Ok(None),
        Err(error) => Err(Error::api("delete", "Namespace", name, error)),
    }
}
