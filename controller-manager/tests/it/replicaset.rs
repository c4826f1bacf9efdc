//! The replicaset controller: scale up, adopt, readiness in status, scale down.

use std::time::Duration;

use anyhow::Result;
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use serde_json::json;

use crate::{Harness, wait_for, web_workload};

const TIMEOUT: Duration = Duration::from_secs(30);

#[tokio::test]
async fn replicaset_scales_adopts_and_reports_status() -> Result<()> {
    let harness = Harness::start("replicaset").await?;
    harness.namespace("rs").await?;
    let client = harness.client.clone();
    let pods: Api<Pod> = Api::namespaced(client.clone(), "rs");
    let replicasets: Api<ReplicaSet> = Api::namespaced(client.clone(), "rs");

    // An orphan pod that the ReplicaSet will adopt.
    let orphan: Pod = serde_json::from_value(json!({
        "metadata": {"name": "orphan", "labels": {"app": "web"}},
        "spec": {"containers": [{"name": "c", "image": "nginx"}]},
    }))?;
    pods.create(&PostParams::default(), &orphan).await?;

    let rs: ReplicaSet = web_workload(3)?;
    let rs = replicasets.create(&PostParams::default(), &rs).await?;
    let uid = rs.metadata.uid.clone().unwrap_or_default();

    let live = wait_for("3 pods", TIMEOUT, || async {
        let live = harness.live_pods("rs", "app=web").await?;
        Ok((live.len() == 3).then_some(live))
    })
    .await?;
    // Exactly 3 even after a while: never over-creates.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(harness.live_pods("rs", "app=web").await?.len(), 3);
    for pod in &live {
        let owner = pod
            .metadata
            .owner_references
            .as_ref()
            .and_then(|refs| refs.iter().find(|r| r.controller == Some(true)))
            .cloned();
        let owner = owner.ok_or_else(|| anyhow::anyhow!("pod without controller"))?;
        assert_eq!(owner.uid, uid);
        assert_eq!(owner.kind, "ReplicaSet");
        assert_eq!(owner.block_owner_deletion, Some(true));
    }
    assert!(live.iter().any(|pod| pod.metadata.name.as_deref() == Some("orphan")));

    harness.mark_all_ready("rs", "app=web").await?;
    wait_for("status with 3 ready", TIMEOUT, || async {
        let rs = replicasets.get("web").await?;
        let status = rs.status.unwrap_or_default();
        Ok((status.replicas == 3
            && status.ready_replicas == Some(3)
            && status.available_replicas == Some(3)
            && status.fully_labeled_replicas == Some(3)
            && status.observed_generation == rs.metadata.generation)
            .then_some(()))
    })
    .await?;

    // Scale down to 1: two pods go.
    replicasets
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 1}})),
        )
        .await?;
    wait_for("1 pod", TIMEOUT, || async {
        Ok((harness.live_pods("rs", "app=web").await?.len() == 1).then_some(()))
    })
    .await?;
    wait_for("status with 1 replica", TIMEOUT, || async {
        let status = replicasets.get("web").await?.status.unwrap_or_default();
        Ok((status.replicas == 1 && status.ready_replicas == Some(1)).then_some(()))
    })
    .await?;

    // A pod relabelled out of the selector is released and replaced.
    let remaining = harness.live_pods("rs", "app=web").await?;
    let name = remaining[0].metadata.name.clone().unwrap_or_default();
    pods.patch(
        &name,
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"app": "other"}}})),
    )
    .await?;
    wait_for("released pod", TIMEOUT, || async {
        let pod = pods.get(&name).await?;
        Ok(pod
            .metadata
            .owner_references
            .unwrap_or_default()
            .iter()
            .all(|r| r.uid != uid)
            .then_some(()))
    })
    .await?;
    wait_for("replacement pod", TIMEOUT, || async {
        Ok((harness.live_pods("rs", "app=web").await?.len() == 1).then_some(()))
    })
    .await?;
    Ok(())
}
