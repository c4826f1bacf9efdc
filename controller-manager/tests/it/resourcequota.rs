//! ResourceQuota end to end: the controller fills in `status`, the apiserver's admission
//! refuses what would exceed a quota with upstream's messages (also as the real kubectl
//! shows them), and deleting objects gives their share back.

use std::time::Duration;

use anyhow::{Result, ensure};
use k8s_openapi::api::core::v1::{ConfigMap, Pod, ResourceQuota};
use kube::Api;
use kube::api::{DeleteParams, PostParams};
use serde_json::json;

use crate::{Harness, wait_for};

fn pod(name: &str, cpu: Option<&str>) -> Result<Pod> {
    let resources = match cpu {
        Some(cpu) => json!({"requests": {"cpu": cpu}}),
        None => json!({}),
    };
    Ok(serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {"containers": [{"name": "c", "image": "busybox", "resources": resources}]},
    }))?)
}

fn forbidden_message(error: kube::Error) -> Result<String> {
    match error {
        kube::Error::Api(status) if status.code == 403 && status.reason == "Forbidden" => Ok(status.message),
        other => anyhow::bail!("expected 403 Forbidden, got {other}"),
    }
}

/// The quota's `status.used` once the controller has written it, as `name=value` pairs.
async fn used(quotas: &Api<ResourceQuota>, name: &str) -> Result<Option<String>> {
    let quota = quotas.get(name).await?;
    Ok(quota.status.and_then(|s| s.used).map(|used| {
        used.iter()
            .map(|(k, v)| format!("{k}={}", v.0))
            .collect::<Vec<_>>()
            .join(",")
    }))
}

#[tokio::test]
async fn quotas_are_counted_enforced_and_released() -> Result<()> {
    let harness = Harness::start("resourcequota").await?;
    let ns = "quota";
    harness.namespace(ns).await?;
    let quotas: Api<ResourceQuota> = Api::namespaced(harness.client.clone(), ns);
    let pods: Api<Pod> = Api::namespaced(harness.client.clone(), ns);
    let configmaps: Api<ConfigMap> = Api::namespaced(harness.client.clone(), ns);
    let timeout = Duration::from_secs(30);
    let post = PostParams::default();

    // One pod exists before the quota: the controller counts it.
    pods.create(&post, &pod("early", Some("300m"))?).await?;
    let quota: ResourceQuota = serde_json::from_value(json!({
        "metadata": {"name": "q"},
        "spec": {"hard": {"pods": "2", "requests.cpu": "1", "count/configmaps": "1"}},
    }))?;
    quotas.create(&post, &quota).await?;
    wait_for("the quota's usage", timeout, || async {
        Ok(used(&quotas, "q")
            .await?
            .filter(|u| u == "count/configmaps=0,pods=1,requests.cpu=300m"))
    })
    .await?;

    // A pod that does not say how much cpu it needs is refused while cpu is limited.
    let refused = pods
        .create(&post, &pod("vague", None)?)
        .await
        .err()
        .map(forbidden_message);
    ensure!(
        matches!(&refused, Some(Ok(m)) if m == r#"pods "vague" is forbidden: failed quota: q: must specify requests.cpu for: c"#),
        "check 1: {refused:?}"
    );
    pods.create(&post, &pod("second", Some("500m"))?).await?;
    // Admission charged the quota at once, before any recount.
    ensure!(used(&quotas, "q").await?.as_deref() == Some("count/configmaps=0,pods=2,requests.cpu=800m"));
    let refused = pods
        .create(&post, &pod("third", Some("300m"))?)
        .await
        .err()
        .map(forbidden_message);
    let expected = r#"pods "third" is forbidden: exceeded quota: q, requested: pods=1,requests.cpu=300m, used: pods=2,requests.cpu=800m, limited: pods=2,requests.cpu=1"#;
    ensure!(matches!(&refused, Some(Ok(m)) if m == expected), "check 2: {refused:?}");
    // Nothing was stored for the refused pods.
    ensure!(pods.get_opt("third").await?.is_none() && pods.get_opt("vague").await?.is_none());

    // Deleting a pod gives its share back; the refused pod then fits.
    pods.delete("early", &DeleteParams::default().grace_period(0)).await?;
    wait_for("the released share", timeout, || async {
        Ok(used(&quotas, "q")
            .await?
            .filter(|u| u == "count/configmaps=0,pods=1,requests.cpu=500m"))
    })
    .await?;
    pods.create(&post, &pod("third", Some("300m"))?).await?;

    // Object counts: one ConfigMap allowed, released on deletion.
    let cm = |name: &str| -> Result<ConfigMap> { Ok(serde_json::from_value(json!({"metadata": {"name": name}}))?) };
    configmaps.create(&post, &cm("one")?).await?;
    let refused = configmaps.create(&post, &cm("two")?).await.err().map(forbidden_message);
    let expected = r#"configmaps "two" is forbidden: exceeded quota: q, requested: count/configmaps=1, used: count/configmaps=1, limited: count/configmaps=1"#;
    ensure!(matches!(&refused, Some(Ok(m)) if m == expected), "check 3: {refused:?}");
    configmaps.delete("one", &DeleteParams::default()).await?;
    wait_for("the ConfigMap's share back", timeout, || async {
        Ok(used(&quotas, "q")
            .await?
            .filter(|u| u.starts_with("count/configmaps=0,")))
    })
    .await?;
    configmaps.create(&post, &cm("two")?).await?;
    // The real kubectl shows the refusal as it shows upstream's.
    let (ok, text) = harness.kubectl(&["-n", ns, "create", "configmap", "three"]).await?;
    ensure!(
        !ok && text.contains(r#"configmaps "three" is forbidden: exceeded quota: q, requested: count/configmaps=1"#),
        "{text}"
    );
    // A dry run is checked but not charged.
    let dry = PostParams {
        dry_run: true,
        ..Default::default()
    };
    let refused = configmaps
        .create(&dry, &cm("three")?)
        .await
        .err()
        .map(forbidden_message);
    ensure!(
        matches!(&refused, Some(Ok(m)) if m.contains("exceeded quota")),
        "check 4: {refused:?}"
    );
    Ok(())
}
