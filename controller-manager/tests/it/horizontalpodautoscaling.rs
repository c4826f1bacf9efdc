//! The horizontal pod autoscaler against a real apiserver: a Deployment scaled through its
//! `/scale` from the usage a fake metrics source reports (the pods are the test's own, Ready
//! as a kubelet would mark them), and what upstream reports when the Metrics API is absent.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Result, ensure};
use clap::Parser;
use controller_manager::controllers::horizontalpodautoscaling::{self as hpa_controller, metrics};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::{Harness, wait_for};

/// Creates Deployment `web` (2 replicas, 500m cpu each), its two pods Running and Ready since
/// ten minutes, and an HPA on it targeting 50% cpu.
async fn setup(harness: &Harness, ns: &str) -> Result<()> {
    harness.namespace(ns).await?;
    let post = PostParams::default();
    let template = json!({
        "metadata": {"labels": {"app": "web"}},
        "spec": {"containers": [{"name": "c", "image": "nginx", "resources": {"requests": {"cpu": "500m"}}}]},
    });
    let deployment: Deployment = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}}, "template": template},
    }))?;
    Api::<Deployment>::namespaced(harness.client.clone(), ns)
        .create(&post, &deployment)
        .await?;
    let pods: Api<Pod> = Api::namespaced(harness.client.clone(), ns);
    let long_ago = (jiff::Timestamp::now() - jiff::SignedDuration::from_mins(10)).to_string();
    for name in ["web-1", "web-2"] {
        let mut pod = template.clone();
        pod["metadata"]["name"] = json!(name);
        pods.create(&post, &serde_json::from_value(pod)?).await?;
        let status = json!({"status": {
            "phase": "Running",
            "startTime": long_ago,
            "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": long_ago}],
        }});
        pods.patch_status(name, &PatchParams::default(), &Patch::Merge(&status))
            .await?;
    }
    let hpa: HorizontalPodAutoscaler = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
            "minReplicas": 1, "maxReplicas": 5,
            "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 50}}}],
        },
    }))?;
    Api::<HorizontalPodAutoscaler>::namespaced(harness.client.clone(), ns)
        .create(&post, &hpa)
        .await?;
    Ok(())
}

/// The HPA's condition `type_` as (status, reason, message), once it has one.
async fn condition(hpas: &Api<HorizontalPodAutoscaler>, type_: &str) -> Result<Option<(String, String, String)>> {
    let hpa = hpas.get("web").await?;
    Ok(hpa
        .status
        .and_then(|s| s.conditions)
        .into_iter()
        .flatten()
        .find(|c| c.type_ == type_)
        .map(|c| (c.status, c.reason.unwrap_or_default(), c.message.unwrap_or_default())))
}

fn usage(pods: &[(&str, &str)]) -> Vec<metrics::PodMetrics> {
    pods.iter()
        .map(|(name, cpu)| metrics::PodMetrics {
            name: name.to_string(),
            timestamp: jiff::Timestamp::now(),
            window: Duration::from_secs(15),
            containers: vec![metrics::ContainerUsage {
                name: "c".into(),
                usage: [(
                    "cpu".to_string(),
                    api::quantity::Quantity::parse(cpu).expect("quantity"),
                )]
                .into(),
            }],
        })
        .collect()
}

#[tokio::test]
async fn scales_a_deployment_from_pod_metrics() -> Result<()> {
    let harness = Harness::start("serviceaccount").await?;
    let ns = "hpa-scale";
    let source = metrics::FakeMetricsSource::new();
    source.set(ns, Ok(usage(&[("web-1", "450m"), ("web-2", "450m")])));
    let options = controller_manager::Options::try_parse_from([
        "kube-controller-manager".to_string(),
        format!("--kubeconfig={}", harness.kubeconfig.display()),
        "--horizontal-pod-autoscaler-sync-period=1s".to_string(),
    ])?;
    let token = CancellationToken::new();
    let _stop = token.clone().drop_guard();
    let ctx = controller_manager::context::Context::new(harness.client.clone(), options, token);
    let fake: Arc<dyn metrics::MetricsSource> = source.clone();
    tokio::spawn(hpa_controller::run_with_metrics(ctx, fake));
    setup(&harness, ns).await?;

    // 90% of the requests against 50%: ceil(1.8 * 2) = 4 pods (the legacy limit allows 4).
    let deployments: Api<Deployment> = Api::namespaced(harness.client.clone(), ns);
    let timeout = Duration::from_secs(30);
    wait_for("the Deployment scaled to 4", timeout, || async {
        Ok((deployments.get("web").await?.spec.replicas == Some(4)).then_some(()))
    })
    .await?;
    let hpas: Api<HorizontalPodAutoscaler> = Api::namespaced(harness.client.clone(), ns);
    let status = wait_for("the HPA's status", timeout, || async {
        Ok(hpas
            .get("web")
            .await?
            .status
            .filter(|s| s.desired_replicas == 4 && s.last_scale_time.is_some()))
    })
    .await?;
    // Read just after the rescale (from 2) or after a later sync (at 4, nothing to do).
    let later = status.current_replicas == Some(4);
    ensure!(status.current_replicas == Some(2) || later, "{status:?}");
    let cpu = status
        .current_metrics
        .as_ref()
        .and_then(|m| m.first())
        .and_then(|m| m.resource.as_ref())
        .map(|r| {
            (
                r.current.average_utilization,
                r.current.average_value.clone().map(|q| q.0),
            )
        });
    ensure!(cpu == Some((Some(90), Some("450m".into()))), "{cpu:?}");
    let able = status.conditions.iter().flatten().find(|c| c.type_ == "AbleToScale");
    let able = able.and_then(|c| c.reason.as_deref());
    let want = if later { "ReadyForNewScale" } else { "SucceededRescale" };
    ensure!(able == Some(want), "{:?}", status.conditions);
    ensure!(
        condition(&hpas, "ScalingActive").await?
            == Some((
                "True".into(),
                "ValidMetricFound".into(),
                "the HPA was able to successfully calculate a replica count from cpu resource utilization (percentage of request)"
                    .into()
            ))
    );
    // The source was asked for the scale's selector.
    ensure!(
        source.calls().iter().any(|(n, s)| n == ns && s == "app=web"),
        "{:?}",
        source.calls()
    );
    let events = wait_for("the SuccessfulRescale event", Duration::from_secs(10), || async {
        let (_, out) = harness.kubectl(&["-n", ns, "get", "events"]).await?;
        Ok(out.contains("SuccessfulRescale").then_some(out))
    })
    .await?;
    ensure!(
        events.contains("New size: 4; reason: cpu resource utilization (percentage of request) above target"),
        "{events}"
    );
    // Upstream kubectl shows the targets.
    let (ok, out) = harness.kubectl(&["-n", ns, "get", "hpa"]).await?;
    ensure!(ok && out.contains("cpu: 90%/50%"), "{out}");
    let (ok, out) = harness.kubectl(&["-n", ns, "describe", "hpa", "web"]).await?;
    ensure!(
        ok && out.contains("resource cpu on pods  (as a percentage of request):  90% (450m) / 50%")
            && out.contains("ScalingActive   True")
            && out.contains("SuccessfulRescale"),
        "{out}"
    );

    // Load gone: within tolerance of the target, nothing changes.
    source.set(ns, Ok(usage(&[("web-1", "260m"), ("web-2", "250m")])));
    tokio::time::sleep(Duration::from_secs(3)).await;
    ensure!(deployments.get("web").await?.spec.replicas == Some(4));
    Ok(())
}

#[tokio::test]
async fn reports_missing_resource_metrics_like_upstream() -> Result<()> {
    let harness = Harness::start_with(
        "horizontalpodautoscaling",
        &["--leader-elect=false", "--horizontal-pod-autoscaler-sync-period=1s"],
    )
    .await?;
    let ns = "hpa-nometrics";
    setup(&harness, ns).await?;
    let hpas: Api<HorizontalPodAutoscaler> = Api::namespaced(harness.client.clone(), ns);
    let (status, reason, message) = wait_for("ScalingActive=False", Duration::from_secs(30), || async {
        condition(&hpas, "ScalingActive").await
    })
    .await?;
    ensure!(
        status == "False" && reason == "FailedGetResourceMetric",
        "{reason}: {message}"
    );
    ensure!(
        message.starts_with(
            "the HPA was unable to compute the replica count: failed to get cpu utilization: unable to get metrics for resource cpu: "
        ),
        "{message}"
    );
    let events = wait_for("the FailedGetResourceMetric event", Duration::from_secs(10), || async {
        let (_, out) = harness.kubectl(&["-n", ns, "get", "events"]).await?;
        Ok((out.contains("FailedGetResourceMetric") && out.contains("FailedComputeMetricsReplicas")).then_some(out))
    })
    .await?;
    ensure!(events.contains("unable to get metrics for resource cpu"), "{events}");
    // Nothing was scaled.
    let deployments: Api<Deployment> = Api::namespaced(harness.client.clone(), ns);
    ensure!(deployments.get("web").await?.spec.replicas == Some(2));
    Ok(())
}
