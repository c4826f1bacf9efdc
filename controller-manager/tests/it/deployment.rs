//! The deployment controller with the replicaset controller: a rolling update in steps that
//! respect maxSurge / maxUnavailable while the test plays kubelet, `kubectl rollout status`
//! and `kubectl rollout undo`.

use std::time::Duration;

use anyhow::{Result, bail, ensure};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use kube::{Api, ResourceExt};
use serde_json::json;

use crate::{Harness, wait_for};

const NS: &str = "dep";

/// Plays kubelet until the Deployment has rolled out completely, checking the rollout's
/// bounds at every step: never more than `max_pods` ReplicaSet replicas, never fewer than
/// `min_ready` ready pods once the first rollout is done.
async fn drive_rollout(harness: &Harness, max_pods: i32, min_ready: Option<usize>) -> Result<()> {
    let deployments: Api<Deployment> = Api::namespaced(harness.client.clone(), NS);
    let replicasets: Api<ReplicaSet> = Api::namespaced(harness.client.clone(), NS);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let rss = replicasets.list(&ListParams::default()).await?;
        let total: i32 = rss.items.iter().map(|rs| rs.spec.replicas.unwrap_or(0)).sum();
        ensure!(total <= max_pods, "{total} replicas exceed the surge bound {max_pods}");
        if let Some(min_ready) = min_ready {
            let ready = harness
                .live_pods(NS, "app=web")
                .await?
                .iter()
                .filter(|pod| is_ready(pod))
                .count();
            ensure!(ready >= min_ready, "only {ready} ready pods, below {min_ready}");
        }
        harness.mark_all_ready(NS, "app=web").await?;
        let d = deployments.get("web").await?;
        let status = d.status.clone().unwrap_or_default();
        let want = d.spec.replicas.unwrap_or(1);
        let complete = status.observed_generation >= d.metadata.generation
            && status.updated_replicas == Some(want)
            && status.replicas == Some(want)
            && status.available_replicas == Some(want);
        let pods = harness.live_pods(NS, "app=web").await?;
        if complete && pods.len() == want as usize {
            return Ok(());
        }
        if tokio::time::Instant::now() > deadline {
            bail!("rollout did not complete: {status:?}");
        }
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
}

fn is_ready(pod: &k8s_openapi::api::core::v1::Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|status| status.conditions.as_ref())
        .is_some_and(|conditions| conditions.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

fn annotation(rs: &ReplicaSet, key: &str) -> Option<String> {
    rs.metadata.annotations.as_ref()?.get(key).cloned()
}

fn image_of(rs: &ReplicaSet) -> Option<String> {
    rs.spec
        .template
        .as_ref()?
        .spec
        .as_ref()?
        .containers
        .first()?
        .image
        .clone()
}

#[tokio::test]
async fn rolling_update_and_rollback() -> Result<()> {
    let harness = Harness::start("replicaset,deployment").await?;
    harness.namespace(NS).await?;
    let deployments: Api<Deployment> = Api::namespaced(harness.client.clone(), NS);
    let replicasets: Api<ReplicaSet> = Api::namespaced(harness.client.clone(), NS);
    let d: Deployment = serde_json::from_value(json!({
        "metadata": {"name": "web", "annotations": {"kubernetes.io/change-cause": "first"}},
        "spec": {
            "replicas": 4,
            "selector": {"matchLabels": {"app": "web"}},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 1}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "web", "image": "nginx:1.0"}]},
            },
        },
    }))?;
    deployments.create(&PostParams::default(), &d).await?;
    drive_rollout(&harness, 5, None).await?;
    let (ok, out) = harness
        .kubectl(&["-n", NS, "rollout", "status", "deployment/web", "--timeout=20s"])
        .await?;
    ensure!(ok && out.contains("successfully rolled out"), "rollout status: {out}");

    let first = replicasets.list(&ListParams::default()).await?.items;
    ensure!(first.len() == 1, "one ReplicaSet expected, got {}", first.len());
    let first_name = first[0].metadata.name.clone().unwrap_or_default();
    let hash = first[0].labels().get("pod-template-hash").cloned().unwrap_or_default();
    ensure!(
        first_name == format!("web-{hash}") && !hash.is_empty(),
        "name {first_name} hash {hash}"
    );
    ensure!(annotation(&first[0], "deployment.kubernetes.io/revision").as_deref() == Some("1"));
    ensure!(annotation(&first[0], "kubernetes.io/change-cause").as_deref() == Some("first"));

    // Roll to a new image: in steps, within the bounds, ending with only new pods.
    deployments
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({
                "metadata": {"annotations": {"kubernetes.io/change-cause": "second"}},
                "spec": {"template": {"spec": {"containers": [{"name": "web", "image": "nginx:2.0"}]}}},
            })),
        )
        .await?;
    drive_rollout(&harness, 5, Some(3)).await?;
    let rss = replicasets.list(&ListParams::default()).await?.items;
    ensure!(rss.len() == 2, "two ReplicaSets expected");
    let new = rss
        .iter()
        .find(|rs| image_of(rs).as_deref() == Some("nginx:2.0"))
        .ok_or_else(|| anyhow::anyhow!("no new ReplicaSet"))?;
    ensure!(annotation(new, "deployment.kubernetes.io/revision").as_deref() == Some("2"));
    ensure!(new.spec.replicas == Some(4));
    let old = replicasets.get(&first_name).await?;
    ensure!(old.spec.replicas == Some(0), "old ReplicaSet not scaled to 0");
    let new_hash = new.labels().get("pod-template-hash").cloned().unwrap_or_default();
    for pod in harness.live_pods(NS, "app=web").await? {
        ensure!(pod.labels().get("pod-template-hash") == Some(&new_hash), "old pod left");
    }
    let events = wait_for("ScalingReplicaSet events", Duration::from_secs(10), || async {
        let (_, out) = harness.kubectl(&["-n", NS, "get", "events", "-o", "wide"]).await?;
        Ok(out
            .contains(&format!("Scaled up replica set {first_name} from 0 to 4"))
            .then_some(out))
    })
    .await?;
    ensure!(events.contains("ScalingReplicaSet"));

    // kubectl rollout undo: back to the first template; its ReplicaSet is reused, revision 3.
    let (ok, out) = harness
        .kubectl(&["-n", NS, "rollout", "undo", "deployment/web"])
        .await?;
    ensure!(ok, "rollout undo: {out}");
    drive_rollout(&harness, 5, Some(3)).await?;
    let reused = replicasets.get(&first_name).await?;
    let summary: Vec<String> = replicasets
        .list(&ListParams::default())
        .await?
        .items
        .iter()
        .map(|rs| {
            format!(
                "{} {:?} {:?} {:?}",
                rs.name_any(),
                rs.spec.replicas,
                image_of(rs),
                rs.metadata.annotations
            )
        })
        .collect();
    ensure!(
        reused.spec.replicas == Some(4),
        "first ReplicaSet not scaled back up: {summary:?} {:?}",
        deployments.get("web").await?
    );
    ensure!(annotation(&reused, "deployment.kubernetes.io/revision").as_deref() == Some("3"));
    ensure!(annotation(&reused, "deployment.kubernetes.io/revision-history").as_deref() == Some("1"));
    let d = deployments.get("web").await?;
    ensure!(
        d.metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get("deployment.kubernetes.io/revision"))
            .map(String::as_str)
            == Some("3")
    );
    ensure!(
        replicasets.list(&ListParams::default()).await?.items.len() == 2,
        "no third ReplicaSet"
    );
    let (ok, out) = harness
        .kubectl(&["-n", NS, "rollout", "status", "deployment/web", "--timeout=20s"])
        .await?;
    ensure!(ok && out.contains("successfully rolled out"), "rollout status: {out}");
    Ok(())
}
