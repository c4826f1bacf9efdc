//! The statefulset controller: ordered creation that waits for readiness, stable identity
//! and claims, a rolling update from the highest ordinal down, `kubectl rollout status`, and
//! scale-down.

use std::collections::BTreeSet;
use std::time::Duration;

use anyhow::{Context as _, Result, bail, ensure};
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use kube::{Api, ResourceExt};
use serde_json::json;

use crate::{Harness, wait_for};

const NS: &str = "sts";
const TIMEOUT: Duration = Duration::from_secs(30);

async fn names(harness: &Harness) -> Result<BTreeSet<String>> {
    Ok(harness
        .live_pods(NS, "app=web")
        .await?
        .iter()
        .map(|pod| pod.name_any())
        .collect())
}

fn set_of(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|name| name.to_string()).collect()
}

async fn wait_pods(harness: &Harness, want: &[&str]) -> Result<()> {
    let want = set_of(want);
    wait_for(&format!("pods {want:?}"), TIMEOUT, || async {
        Ok((names(harness).await? == want).then_some(()))
    })
    .await
}

#[tokio::test]
async fn statefulset_orders_identifies_rolls_and_scales() -> Result<()> {
    let harness = Harness::start("statefulset").await?;
    harness.namespace(NS).await?;
    let client = harness.client.clone();
    let sets: Api<StatefulSet> = Api::namespaced(client.clone(), NS);
    let pods: Api<Pod> = Api::namespaced(client.clone(), NS);
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), NS);

    let set: StatefulSet = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {
            "replicas": 3,
            "serviceName": "web",
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "c", "image": "web:1"}]},
            },
            "volumeClaimTemplates": [{
                "metadata": {"name": "data"},
                "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
            }],
        },
    }))?;
    sets.create(&PostParams::default(), &set).await?;

    // OrderedReady: each pod waits for the one before it.
    for (index, expected) in [vec!["web-0"], vec!["web-0", "web-1"], vec!["web-0", "web-1", "web-2"]]
        .into_iter()
        .enumerate()
    {
        wait_pods(&harness, &expected).await?;
        tokio::time::sleep(Duration::from_millis(700)).await;
        ensure!(
            names(&harness).await? == set_of(&expected),
            "pod {index} did not wait for readiness"
        );
        harness.mark_all_ready(NS, "app=web").await?;
    }
    for ordinal in 0..3 {
        let name = format!("web-{ordinal}");
        let pod = pods.get(&name).await?;
        let spec = pod.spec.clone().context("spec")?;
        ensure!(spec.hostname.as_deref() == Some(name.as_str()) && spec.subdomain.as_deref() == Some("web"));
        ensure!(pod.labels().get("statefulset.kubernetes.io/pod-name") == Some(&name));
        let claim_name = format!("data-web-{ordinal}");
        let volume = spec
            .volumes
            .unwrap_or_default()
            .into_iter()
            .find(|volume| volume.name == "data")
            .context("data volume")?;
        ensure!(volume.persistent_volume_claim.map(|claim| claim.claim_name) == Some(claim_name.clone()));
        claims
            .get(&claim_name)
            .await
            .with_context(|| format!("claim {claim_name}"))?;
    }
    let rolled_out = || async {
        harness.mark_all_ready(NS, "app=web").await?;
        let set = sets.get("web").await?;
        let status = set.status.clone().unwrap_or_default();
        let want = set.spec.replicas.unwrap_or(1);
        Ok((status.observed_generation == set.metadata.generation
            && status.replicas == want
            && status.ready_replicas == Some(want)
            && status.available_replicas == Some(want)
            && status.updated_replicas == Some(want)
            && status.current_replicas == Some(want)
            && status.update_revision.is_some()
            && status.current_revision == status.update_revision)
            .then_some(status))
    };
    let first = wait_for("status of 3 ready", TIMEOUT, rolled_out).await?;
    let (ok, out) = harness
        .kubectl(&["-n", NS, "rollout", "status", "statefulset/web", "--timeout=20s"])
        .await?;
    ensure!(ok && out.contains("complete"), "rollout status: {out}");

    // Rolling update: pods move to the new revision from the highest ordinal down.
    sets.patch(
        "web",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "web:2"}]}}}})),
    )
    .await?;
    let update_revision = wait_for("a new update revision", TIMEOUT, || async {
        let status = sets.get("web").await?.status.unwrap_or_default();
        Ok(status
            .update_revision
            .filter(|revision| Some(revision) != first.update_revision.as_ref()))
    })
    .await?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let live = harness.live_pods(NS, "app=web").await?;
        let updated: Vec<i32> = live
            .iter()
            .filter(|pod| pod.labels().get("controller-revision-hash") == Some(&update_revision))
            .filter_map(|pod| pod.name_any().strip_prefix("web-")?.parse().ok())
            .collect();
        // Always a top suffix of the ordinals.
        if let Some(lowest) = updated.iter().min() {
            ensure!(updated.len() as i32 == 3 - lowest, "updated out of order: {updated:?}");
        }
        if let Ok(Some(_)) = rolled_out().await
            && updated.len() == 3
        {
            break;
        }
        if tokio::time::Instant::now() > deadline {
            bail!("rolling update did not finish: updated {updated:?}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (ok, out) = harness
        .kubectl(&["-n", NS, "rollout", "status", "statefulset/web", "--timeout=20s"])
        .await?;
    ensure!(ok && out.contains("complete"), "rollout status: {out}");
    for pod in harness.live_pods(NS, "app=web").await? {
        let image = pod
            .spec
            .as_ref()
            .and_then(|spec| spec.containers.first()?.image.clone());
        ensure!(image.as_deref() == Some("web:2"), "{} runs {image:?}", pod.name_any());
    }

    // Scale down to 1: the highest ordinals go, the claims stay.
    sets.patch(
        "web",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"replicas": 1}})),
    )
    .await?;
    wait_pods(&harness, &["web-0"]).await?;
    wait_for("status of 1", TIMEOUT, rolled_out).await?;
    let remaining = claims.list(&ListParams::default()).await?.items.len();
    ensure!(remaining == 3, "{remaining} claims left, 3 expected");
    Ok(())
}
