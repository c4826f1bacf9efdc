//! The garbage collector: background, foreground and orphan deletion against the real
//! apiserver.

use std::time::Duration;

use anyhow::Result;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::Api;
use kube::api::{DeleteParams, ListParams, PostParams};
use serde_json::json;

use crate::{Harness, wait_for, web_workload};

const TIMEOUT: Duration = Duration::from_secs(30);

fn web_deployment() -> Result<Deployment> {
    web_workload(2)
}

async fn count<K>(api: &Api<K>, selector: &str) -> Result<usize>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    Ok(api.list(&ListParams::default().labels(selector)).await?.items.len())
}

#[tokio::test]
async fn background_deletion_removes_replicasets_and_pods() -> Result<()> {
    let harness = Harness::start("garbagecollector,deployment,replicaset").await?;
    harness.namespace("gc-bg").await?;
    let client = harness.client.clone();
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "gc-bg");
    let replicasets: Api<ReplicaSet> = Api::namespaced(client.clone(), "gc-bg");
    let pods: Api<Pod> = Api::namespaced(client.clone(), "gc-bg");
    deployments.create(&PostParams::default(), &web_deployment()?).await?;
    wait_for("2 pods", TIMEOUT, || async {
        Ok((count(&pods, "app=web").await? == 2).then_some(()))
    })
    .await?;
    deployments.delete("web", &DeleteParams::background()).await?;
    wait_for("replicasets and pods gone", TIMEOUT, || async {
        Ok((count(&replicasets, "app=web").await? == 0 && count(&pods, "app=web").await? == 0).then_some(()))
    })
    .await?;
    Ok(())
}

/// A ReplicaSet (not reconciled: no replicaset controller runs) with two pods it owns.
async fn replicaset_with_pods(harness: &Harness, namespace: &str) -> Result<ReplicaSet> {
    let replicasets: Api<ReplicaSet> = Api::namespaced(harness.client.clone(), namespace);
    let pods: Api<Pod> = Api::namespaced(harness.client.clone(), namespace);
    let mut rs: ReplicaSet = web_workload(2)?;
    rs.metadata.labels = Some([("app".to_string(), "web".to_string())].into());
    let rs = replicasets.create(&PostParams::default(), &rs).await?;
    for name in ["a", "b"] {
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {
                "name": name,
                "labels": {"app": "web"},
                "finalizers": ["example.com/hold"],
                "ownerReferences": [{
                    "apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web",
                    "uid": rs.metadata.uid, "controller": true, "blockOwnerDeletion": true,
                }],
            },
            "spec": {"containers": [{"name": "c", "image": "nginx"}]},
        }))?;
        pods.create(&PostParams::default(), &pod).await?;
    }
    Ok(rs)
}

#[tokio::test]
async fn foreground_deletion_waits_for_dependents() -> Result<()> {
    let harness = Harness::start("garbagecollector").await?;
    harness.namespace("gc-fg").await?;
    let client = harness.client.clone();
    let replicasets: Api<ReplicaSet> = Api::namespaced(client.clone(), "gc-fg");
    let pods: Api<Pod> = Api::namespaced(client.clone(), "gc-fg");
    replicaset_with_pods(&harness, "gc-fg").await?;
    replicasets.delete("web", &DeleteParams::foreground()).await?;
    // The pods are being deleted but a finalizer holds them: the owner must wait.
    wait_for("pods being deleted", TIMEOUT, || async {
        let list = pods.list(&ListParams::default()).await?;
        Ok(list
            .items
            .iter()
            .all(|pod| pod.metadata.deletion_timestamp.is_some())
            .then_some(()))
    })
    .await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rs = replicasets.get("web").await?;
    assert!(rs.metadata.deletion_timestamp.is_some());
    assert!(
        rs.metadata
            .finalizers
            .unwrap_or_default()
            .contains(&"foregroundDeletion".to_string())
    );
    // Release the pods: they go, then the owner.
    for name in ["a", "b"] {
        pods.patch(
            name,
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(json!({"metadata": {"finalizers": null}})),
        )
        .await?;
    }
    wait_for("replicaset gone after its pods", TIMEOUT, || async {
        Ok(replicasets.get_opt("web").await?.is_none().then_some(()))
    })
    .await?;
    assert_eq!(count(&pods, "app=web").await?, 0);
    Ok(())
}

#[tokio::test]
async fn orphan_deletion_keeps_dependents_and_dangling_owners_are_collected() -> Result<()> {
    let harness = Harness::start("garbagecollector").await?;
    harness.namespace("gc-or").await?;
    let client = harness.client.clone();
    let replicasets: Api<ReplicaSet> = Api::namespaced(client.clone(), "gc-or");
    let pods: Api<Pod> = Api::namespaced(client.clone(), "gc-or");
    let configmaps: Api<ConfigMap> = Api::namespaced(client.clone(), "gc-or");
    let rs = replicaset_with_pods(&harness, "gc-or").await?;

    // kubectl delete --cascade=orphan
    let (ok, output) = harness
        .kubectl(&["-n", "gc-or", "delete", "replicaset", "web", "--cascade=orphan"])
        .await?;
    assert!(ok, "kubectl: {output}");
    wait_for("replicaset gone", TIMEOUT, || async {
        Ok(replicasets.get_opt("web").await?.is_none().then_some(()))
    })
    .await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let list = pods.list(&ListParams::default().labels("app=web")).await?;
    assert_eq!(list.items.len(), 2, "orphaned pods stay");
    for pod in &list.items {
        assert!(pod.metadata.deletion_timestamp.is_none());
        assert!(pod.metadata.owner_references.clone().unwrap_or_default().is_empty());
    }

    // A ConfigMap whose owner never existed (a stale uid) is collected.
    let cm: ConfigMap = serde_json::from_value(json!({
        "metadata": {"name": "dangling", "ownerReferences": [{
            "apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web", "uid": rs.metadata.uid,
        }]},
    }))?;
    configmaps.create(&PostParams::default(), &cm).await?;
    wait_for("dangling configmap collected", TIMEOUT, || async {
        Ok(configmaps.get_opt("dangling").await?.is_none().then_some(()))
    })
    .await?;
    for name in ["a", "b"] {
        pods.patch(
            name,
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(json!({"metadata": {"finalizers": null}})),
        )
        .await?;
    }
    Ok(())
}
