//! The daemonset controller against fake Node objects: one pinned pod per fitting node,
//! nodes starting and stopping to fit, a failed pod replaced, a rolling update bounded by
//! maxUnavailable with its ControllerRevisions, and `kubectl rollout status`.

use std::collections::BTreeSet;
use std::time::Duration;

use anyhow::{Context as _, Result, bail, ensure};
use k8s_openapi::api::apps::v1::{ControllerRevision, DaemonSet};
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use kube::{Api, ResourceExt};
use serde_json::json;

use crate::{Harness, wait_for};

const NS: &str = "ds";
const TIMEOUT: Duration = Duration::from_secs(30);

/// The node a daemon pod is pinned to by its required node affinity.
fn pinned_node(pod: &Pod) -> Option<String> {
    let terms = &pod
        .spec
        .as_ref()?
        .affinity
        .as_ref()?
        .node_affinity
        .as_ref()?
        .required_during_scheduling_ignored_during_execution
        .as_ref()?
        .node_selector_terms;
    let field = terms.first()?.match_fields.as_ref()?.first()?;
    (field.key == "metadata.name" && field.operator == "In").then(|| field.values.clone()?.first().cloned())?
}

fn is_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|status| status.conditions.as_ref())
        .is_some_and(|conditions| conditions.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// The live daemon pods' nodes.
async fn pod_nodes(harness: &Harness) -> Result<BTreeSet<String>> {
    let pods = harness.live_pods(NS, "app=agent").await?;
    Ok(pods.iter().filter_map(pinned_node).collect())
}

async fn wait_nodes(harness: &Harness, want: &[&str]) -> Result<Vec<Pod>> {
    let want: BTreeSet<String> = want.iter().map(|node| node.to_string()).collect();
    wait_for(&format!("daemon pods on {want:?}"), TIMEOUT, || async {
        let pods = harness.live_pods(NS, "app=agent").await?;
        let nodes: Vec<String> = pods.iter().filter_map(pinned_node).collect();
        let distinct: BTreeSet<String> = nodes.iter().cloned().collect();
        Ok((nodes.len() == want.len() && distinct == want).then_some(pods))
    })
    .await
}

/// Waits until the status reports `desired` pods, all updated and available, for the current
/// generation.
async fn wait_rolled_out(harness: &Harness, desired: i32) -> Result<()> {
    let daemonsets: Api<DaemonSet> = Api::namespaced(harness.client.clone(), NS);
    wait_for(&format!("status with {desired} available"), TIMEOUT, || async {
        harness.mark_all_ready(NS, "app=agent").await?;
        let ds = daemonsets.get("agent").await?;
        let status = ds.status.unwrap_or_default();
        Ok((status.observed_generation == ds.metadata.generation
            && status.desired_number_scheduled == desired
            && status.current_number_scheduled == desired
            && status.number_ready == desired
            && status.number_available == Some(desired)
            && status.updated_number_scheduled == Some(desired)
            && status.number_misscheduled == 0)
            .then_some(()))
    })
    .await
}

#[tokio::test]
async fn daemonset_places_replaces_and_rolls_out() -> Result<()> {
    let harness = Harness::start("daemonset").await?;
    harness.namespace(NS).await?;
    let client = harness.client.clone();
    let nodes: Api<Node> = Api::all(client.clone());
    let pods: Api<Pod> = Api::namespaced(client.clone(), NS);
    let daemonsets: Api<DaemonSet> = Api::namespaced(client.clone(), NS);
    let revisions: Api<ControllerRevision> = Api::namespaced(client.clone(), NS);

    for (name, role, taints) in [
        ("n1", "worker", json!(null)),
        (
            "n2",
            "worker",
            json!([{"key": "node.kubernetes.io/not-ready", "effect": "NoExecute"}]),
        ),
        ("n3", "edge", json!(null)),
        (
            "n4",
            "worker",
            json!([{"key": "dedicated", "value": "db", "effect": "NoSchedule"}]),
        ),
    ] {
        let node: Node = serde_json::from_value(json!({
            "metadata": {"name": name, "labels": {"role": role}},
            "spec": {"taints": taints},
        }))?;
        nodes.create(&PostParams::default(), &node).await?;
    }
    let ds: DaemonSet = serde_json::from_value(json!({
        "metadata": {"name": "agent"},
        "spec": {
            "selector": {"matchLabels": {"app": "agent"}},
            "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1}},
            "template": {
                "metadata": {"labels": {"app": "agent"}},
                "spec": {
                    "nodeSelector": {"role": "worker"},
                    "containers": [{"name": "c", "image": "agent:1"}],
                },
            },
        },
    }))?;
    let ds = daemonsets.create(&PostParams::default(), &ds).await?;
    let uid = ds.uid().unwrap_or_default();

    // Workers only; n2's not-ready taint is tolerated, n4's NoSchedule one is not.
    let placed = wait_nodes(&harness, &["n1", "n2"]).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    ensure!(pod_nodes(&harness).await?.len() == 2, "over-created");
    ensure!(harness.live_pods(NS, "app=agent").await?.len() == 2, "over-created");
    for pod in &placed {
        let owner = pod
            .owner_references()
            .iter()
            .find(|owner| owner.controller == Some(true))
            .context("pod without controller")?;
        ensure!(owner.uid == uid && owner.kind == "DaemonSet");
        let tolerations = pod
            .spec
            .as_ref()
            .and_then(|spec| spec.tolerations.clone())
            .unwrap_or_default();
        ensure!(
            tolerations
                .iter()
                .any(|t| t.key.as_deref() == Some("node.kubernetes.io/unschedulable")),
            "daemon tolerations missing: {tolerations:?}"
        );
        let labels = pod.labels();
        ensure!(labels.contains_key("controller-revision-hash") && labels.contains_key("pod-template-generation"));
    }
    wait_rolled_out(&harness, 2).await?;
    let (ok, out) = harness
        .kubectl(&["-n", NS, "rollout", "status", "daemonset/agent", "--timeout=20s"])
        .await?;
    ensure!(ok && out.contains("successfully rolled out"), "rollout status: {out}");

    // n3 becomes a worker: it gets a pod. n1 gets a NoExecute taint: its pod goes.
    nodes
        .patch(
            "n3",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"role": "worker"}}})),
        )
        .await?;
    wait_nodes(&harness, &["n1", "n2", "n3"]).await?;
    nodes
        .patch(
            "n1",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"taints": [{"key": "evict", "effect": "NoExecute"}]}})),
        )
        .await?;
    wait_nodes(&harness, &["n2", "n3"]).await?;
    wait_rolled_out(&harness, 2).await?;

    // A failed pod is deleted and replaced.
    let on_n2 = harness
        .live_pods(NS, "app=agent")
        .await?
        .into_iter()
        .find(|pod| pinned_node(pod).as_deref() == Some("n2"))
        .context("pod on n2")?;
    let failed_name = on_n2.name_any();
    pods.patch_status(
        &failed_name,
        &PatchParams::default(),
        &Patch::Merge(json!({"status": {"phase": "Failed"}})),
    )
    .await?;
    wait_for("replacement on n2", TIMEOUT, || async {
        let pods = harness.live_pods(NS, "app=agent").await?;
        Ok(pods
            .iter()
            .any(|pod| pinned_node(pod).as_deref() == Some("n2") && pod.name_any() != failed_name)
            .then_some(()))
    })
    .await?;
    wait_rolled_out(&harness, 2).await?;

    // Rolling update: a new template, at most one node without an available pod at a time.
    let first_hash = revisions.list(&ListParams::default()).await?.items;
    ensure!(first_hash.len() == 1, "one revision expected, got {}", first_hash.len());
    daemonsets
        .patch(
            "agent",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "agent:2"}]}}}})),
        )
        .await?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let live = harness.live_pods(NS, "app=agent").await?;
        let ready_nodes: BTreeSet<String> = live.iter().filter(|p| is_ready(p)).filter_map(pinned_node).collect();
        ensure!(
            !ready_nodes.is_empty(),
            "more than one node unavailable: ready on {ready_nodes:?}"
        );
        let images: Vec<String> = live
            .iter()
            .filter_map(|pod| pod.spec.as_ref()?.containers.first()?.image.clone())
            .collect();
        let ds = daemonsets.get("agent").await?;
        let status = ds.status.clone().unwrap_or_default();
        if images.len() == 2
            && images.iter().all(|image| image == "agent:2")
            && status.observed_generation == ds.metadata.generation
            && status.updated_number_scheduled == Some(2)
            && status.number_available == Some(2)
        {
            break;
        }
        if tokio::time::Instant::now() > deadline {
            bail!("rolling update did not finish: images {images:?}, status {status:?}");
        }
        // Play kubelet slowly, so the one-at-a-time bound is observable.
        tokio::time::sleep(Duration::from_millis(300)).await;
        harness.mark_all_ready(NS, "app=agent").await?;
    }
    let (ok, out) = harness
        .kubectl(&["-n", NS, "rollout", "status", "daemonset/agent", "--timeout=20s"])
        .await?;
    ensure!(ok && out.contains("successfully rolled out"), "rollout status: {out}");
    let history = revisions.list(&ListParams::default()).await?.items;
    let mut numbers: Vec<i64> = history.iter().filter_map(|revision| revision.revision).collect();
    numbers.sort();
    ensure!(numbers == [1, 2], "revisions {numbers:?}");
    let newest = history
        .iter()
        .find(|revision| revision.revision == Some(2))
        .context("revision 2")?;
    let hash = newest
        .labels()
        .get("controller-revision-hash")
        .cloned()
        .unwrap_or_default();
    for pod in harness.live_pods(NS, "app=agent").await? {
        ensure!(
            pod.labels().get("controller-revision-hash") == Some(&hash),
            "pod {} not updated",
            pod.name_any()
        );
    }
    Ok(())
}
