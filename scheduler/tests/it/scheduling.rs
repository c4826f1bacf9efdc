//! The scheduler against a real apiserver: placement, failures, late nodes, anti-affinity,
//! taints.

use std::collections::BTreeSet;
use std::time::Duration;

use anyhow::{Context, Result};
use k8s_openapi::api::core::v1::Pod;
use kube::api::Api;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::{Cluster, wait_for};
use scheduler::{Scheduler, SchedulerConfig};

const TIMEOUT: Duration = Duration::from_secs(20);

/// Starts a scheduler (no leader election) that stops when the returned token is dropped.
fn start_scheduler(cluster: &Cluster) -> tokio_util::sync::DropGuard {
    let shutdown = CancellationToken::new();
    let scheduler = Scheduler::new(cluster.client.clone(), SchedulerConfig::default());
    tokio::spawn(scheduler.run(shutdown.clone()));
    shutdown.drop_guard()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_land_on_fitting_nodes() -> Result<()> {
    let cluster = Cluster::start().await?;
    cluster.add_node("small", "1", json!({})).await?;
    cluster.add_node("big", "4", json!({})).await?;
    let _scheduler = start_scheduler(&cluster);
    cluster.add_pod("p", "2", json!({})).await?;
    assert_eq!(cluster.wait_bound("p", TIMEOUT).await?, "big");
    let note = wait_for(TIMEOUT, || async {
        cluster
            .events_for("p", "Scheduled")
            .await
            .ok()?
            .into_iter()
            .next()?
            .note
    })
    .await
    .context("no Scheduled event")?;
    assert_eq!(note, "Successfully assigned default/p to big");
    // Pods for another scheduler are left alone.
    cluster
        .add_pod("other", "100m", json!({"spec": {"schedulerName": "someone-else"}}))
        .await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(cluster.node_of("other").await?, None);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exhaustion_reports_failed_scheduling_until_a_node_arrives() -> Result<()> {
    let cluster = Cluster::start().await?;
    let control_plane_taint =
        json!({"spec": {"taints": [{"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}]}});
    cluster.add_node("cp", "4", control_plane_taint).await?;
    cluster.add_node("n1", "1", json!({})).await?;
    cluster.add_node("n2", "1", json!({})).await?;
    let _scheduler = start_scheduler(&cluster);
    cluster.add_pod("big", "2", json!({})).await?;
    let expected = "0/3 nodes are available: 1 node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }, \
                    2 Insufficient cpu. preemption: 0/3 nodes are available: 1 Preemption is not helpful for scheduling, \
                    2 No preemption victims found for incoming pod.";
    let note = wait_for(TIMEOUT, || async {
        cluster
            .events_for("big", "FailedScheduling")
            .await
            .ok()?
            .into_iter()
            .next()?
            .note
    })
    .await
    .context("no FailedScheduling event")?;
    assert_eq!(note, expected);
    let pods: Api<Pod> = Api::namespaced(cluster.client.clone(), "default");
    let condition = wait_for(TIMEOUT, || async {
        let pod = pods.get("big").await.ok()?;
        pod.status?
            .conditions?
            .into_iter()
            .find(|c| c.type_ == "PodScheduled" && c.status == "False")
    })
    .await
    .context("no PodScheduled=False condition")?;
    assert_eq!(condition.reason.as_deref(), Some("Unschedulable"));
    assert_eq!(condition.message.as_deref(), Some(expected));
    // A node that fits arrives: the pending pod goes there.
    cluster.add_node("n3", "4", json!({})).await?;
    assert_eq!(cluster.wait_bound("big", TIMEOUT).await?, "n3");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anti_affinity_spreads_replicas_over_nodes() -> Result<()> {
    let cluster = Cluster::start().await?;
    for name in ["n1", "n2", "n3"] {
        cluster.add_node(name, "8", json!({})).await?;
    }
    let _scheduler = start_scheduler(&cluster);
    let replica = json!({
        "metadata": {"labels": {"app": "web"}},
        "spec": {"affinity": {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
            {"labelSelector": {"matchLabels": {"app": "web"}}, "topologyKey": "kubernetes.io/hostname"}]}}},
    });
    for name in ["web-0", "web-1", "web-2", "web-3"] {
        cluster.add_pod(name, "100m", replica.clone()).await?;
    }
    let mut nodes = BTreeSet::new();
    let mut bound = 0;
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    while bound < 3 && tokio::time::Instant::now() < deadline {
        nodes.clear();
        bound = 0;
        for name in ["web-0", "web-1", "web-2", "web-3"] {
            if let Some(node) = cluster.node_of(name).await? {
                nodes.insert(node);
                bound += 1;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut final_nodes = Vec::new();
    for name in ["web-0", "web-1", "web-2", "web-3"] {
        final_nodes.extend(cluster.node_of(name).await?);
    }
    assert_eq!(final_nodes.len(), 3, "exactly three replicas fit: {final_nodes:?}");
    assert_eq!(
        final_nodes.iter().collect::<BTreeSet<_>>().len(),
        3,
        "one per node: {final_nodes:?}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn taints_need_tolerations() -> Result<()> {
    let cluster = Cluster::start().await?;
    let taint = json!({"spec": {"taints": [{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}]}});
    cluster.add_node("gpu", "4", taint).await?;
    let _scheduler = start_scheduler(&cluster);
    cluster.add_pod("plain", "100m", json!({})).await?;
    let tolerating = json!({"spec": {"tolerations": [
        {"key": "dedicated", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"}]}});
    cluster.add_pod("tolerant", "100m", tolerating).await?;
    assert_eq!(cluster.wait_bound("tolerant", TIMEOUT).await?, "gpu");
    let note = wait_for(TIMEOUT, || async {
        cluster
            .events_for("plain", "FailedScheduling")
            .await
            .ok()?
            .into_iter()
            .next()?
            .note
    })
    .await
    .context("no FailedScheduling event")?;
    assert_eq!(
        note,
        "0/1 nodes are available: 1 node(s) had untolerated taint {dedicated: gpu}. \
         preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling."
    );
    assert_eq!(cluster.node_of("plain").await?, None);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preemption_evicts_lower_priority_pods() -> Result<()> {
    let cluster = Cluster::start().await?;
    cluster.add_node("n1", "2", json!({})).await?;
    let _scheduler = start_scheduler(&cluster);
    cluster
        .add_pod("low", "1500m", json!({"spec": {"priority": 1}}))
        .await?;
    cluster.wait_bound("low", TIMEOUT).await?;
    cluster
        .add_pod("high", "1500m", json!({"spec": {"priority": 100}}))
        .await?;
    // The victim is deleted gracefully; with no kubelet here, finish the deletion as one would.
    let pods: Api<Pod> = Api::namespaced(cluster.client.clone(), "default");
    let terminating = wait_for(TIMEOUT, || async {
        pods.get("low").await.ok()?.metadata.deletion_timestamp.map(|_| ())
    })
    .await;
    assert!(terminating.is_some(), "the victim is being deleted");
    // The scheduler nominates the node after it has started the victims' deletion.
    let nominated = wait_for(TIMEOUT, || async {
        pods.get("high").await.ok()?.status?.nominated_node_name
    })
    .await;
    assert_eq!(nominated.as_deref(), Some("n1"));
    pods.delete("low", &kube::api::DeleteParams::default().grace_period(0))
        .await?;
    assert_eq!(cluster.wait_bound("high", TIMEOUT).await?, "n1");
    Ok(())
}
