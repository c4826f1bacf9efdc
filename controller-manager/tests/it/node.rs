//! nodeipam and nodelifecycle with fake Node objects and a Lease the test renews, then stops
//! renewing (there is no kubelet).

use std::collections::HashSet;
use std::time::Duration;

use anyhow::Result;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::Api;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use serde_json::json;

use crate::{Harness, wait_for};

const TIMEOUT: Duration = Duration::from_secs(30);

fn now() -> String {
    jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

#[tokio::test]
async fn nodes_get_distinct_pod_cidrs() -> Result<()> {
    let harness = Harness::start_with(
        "nodeipam",
        &[
            "--leader-elect=false",
            "--cluster-cidr=10.200.0.0/16",
            "--node-cidr-mask-size=24",
        ],
    )
    .await?;
    let nodes: Api<Node> = Api::all(harness.client.clone());
    for name in ["n1", "n2", "n3"] {
        nodes
            .create(
                &PostParams::default(),
                &serde_json::from_value(json!({"metadata": {"name": name}}))?,
            )
            .await?;
    }
    let cidrs = wait_for("3 pod CIDRs", TIMEOUT, || async {
        let list = nodes.list(&Default::default()).await?;
        let cidrs: Vec<String> = list
            .items
            .iter()
            .filter_map(|node| node.spec.as_ref()?.pod_cidr.clone())
            .collect();
        Ok((cidrs.len() == 3).then_some(cidrs))
    })
    .await?;
    let distinct: HashSet<&String> = cidrs.iter().collect();
    assert_eq!(distinct.len(), 3, "{cidrs:?}");
    assert!(
        cidrs
            .iter()
            .all(|cidr| cidr.starts_with("10.200.") && cidr.ends_with("/24"))
    );
    let node = nodes.get("n1").await?;
    let spec = node.spec.unwrap_or_default();
    assert_eq!(spec.pod_cidrs, spec.pod_cidr.map(|cidr| vec![cidr]));
    Ok(())
}

async fn renew(leases: &Api<Lease>, name: &str) -> Result<()> {
    leases
        .patch(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"renewTime": now()}})),
        )
        .await?;
    Ok(())
}

fn has_taint(node: &Node, key: &str, effect: &str) -> bool {
    node.spec
        .as_ref()
        .and_then(|spec| spec.taints.as_ref())
        .is_some_and(|taints| taints.iter().any(|t| t.key == key && t.effect == effect))
}

fn ready_status(node: &Node) -> Option<String> {
    node.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "Ready")
        .map(|c| c.status.clone())
}

#[tokio::test]
async fn silent_node_goes_unknown_gets_tainted_and_pods_are_evicted() -> Result<()> {
    let harness = Harness::start_with(
        "nodelifecycle",
        &[
            "--leader-elect=false",
            "--node-monitor-grace-period=3s",
            "--node-monitor-period=500ms",
        ],
    )
    .await?;
    harness.namespace("nl").await?;
    let client = harness.client.clone();
    let nodes: Api<Node> = Api::all(client.clone());
    let leases: Api<Lease> = Api::namespaced(client.clone(), "kube-node-lease");
    let pods: Api<Pod> = Api::namespaced(client.clone(), "nl");
    nodes
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "w1"}}))?,
        )
        .await?;
    let ready = json!({"status": {"conditions": [
        {"type": "Ready", "status": "True", "reason": "KubeletReady", "lastHeartbeatTime": now(), "lastTransitionTime": now()},
    ]}});
    nodes
        .patch_status("w1", &PatchParams::default(), &Patch::Merge(&ready))
        .await?;
    leases
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({
                "metadata": {"name": "w1"},
                "spec": {"holderIdentity": "w1", "leaseDurationSeconds": 40, "renewTime": now()},
            }))?,
        )
        .await?;
    // Pods bound to the node: one tolerating unreachable for 1s, one with the apiserver's
    // default tolerations (300s).
    for (name, tolerations) in [
        (
            "short",
            json!([{"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 1}]),
        ),
        ("default", json!(null)),
    ] {
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": name},
            "spec": {"nodeName": "w1", "containers": [{"name": "c", "image": "nginx"}], "tolerations": tolerations},
        }))?;
        pods.create(&PostParams::default(), &pod).await?;
    }

    // Renewing: stays Ready and untainted past the grace period.
    for _ in 0..10 {
        renew(&leases, "w1").await?;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let node = nodes.get("w1").await?;
    assert_eq!(ready_status(&node).as_deref(), Some("True"));
    assert!(!has_taint(&node, "node.kubernetes.io/unreachable", "NoExecute"));

    // Silence: Unknown, tainted, the short-tolerance pod evicted, the other kept.
    wait_for("node Unknown and tainted", TIMEOUT, || async {
        let node = nodes.get("w1").await?;
        Ok((ready_status(&node).as_deref() == Some("Unknown")
            && has_taint(&node, "node.kubernetes.io/unreachable", "NoExecute"))
        .then_some(()))
    })
    .await?;
    let node = nodes.get("w1").await?;
    let condition = node
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|c| c.iter().find(|c| c.type_ == "Ready"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(condition.reason.as_deref(), Some("NodeStatusUnknown"));
    assert_eq!(
        condition.message.as_deref(),
        Some("Kubelet stopped posting node status.")
    );
    wait_for("short-tolerance pod evicted", TIMEOUT, || async {
        Ok(pods
            .get_opt("short")
            .await?
            .is_none_or(|pod| pod.metadata.deletion_timestamp.is_some())
            .then_some(()))
    })
    .await?;
    let kept = pods.get("default").await?;
    assert!(kept.metadata.deletion_timestamp.is_none(), "300s default toleration");

    // The kubelet is back: Ready again, taints removed.
    renew(&leases, "w1").await?;
    nodes
        .patch_status("w1", &PatchParams::default(), &Patch::Merge(&ready))
        .await?;
    wait_for("taints removed", TIMEOUT, || async {
        // Keep the heartbeat going while waiting.
        renew(&leases, "w1").await?;
        let node = nodes.get("w1").await?;
        Ok((ready_status(&node).as_deref() == Some("True")
            && !has_taint(&node, "node.kubernetes.io/unreachable", "NoExecute")
            && !has_taint(&node, "node.kubernetes.io/unreachable", "NoSchedule"))
        .then_some(()))
    })
    .await?;
    pods.delete("default", &DeleteParams::default().grace_period(0)).await?;
    Ok(())
}
