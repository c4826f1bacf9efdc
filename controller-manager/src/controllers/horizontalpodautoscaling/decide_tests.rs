//! Table tests of one reconcile's decision: conditions, events and rescales as upstream.

use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, PodCondition, PodSpec, PodStatus, ResourceRequirements};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde_json::json;

use super::*;
use crate::controllers::horizontalpodautoscaling::metrics::ContainerUsage;

pub(in crate::controllers::horizontalpodautoscaling) fn now() -> Timestamp {
    "2025-01-01T01:00:00Z".parse().unwrap()
}

pub(in crate::controllers::horizontalpodautoscaling) fn settings() -> Settings {
    Settings {
        tolerance: 0.1,
        cpu_initialization_period: SignedDuration::from_mins(5),
        initial_readiness_delay: SignedDuration::from_secs(30),
        downscale_stabilization: SignedDuration::from_mins(5),
    }
}

/// An HPA on Deployment `web` with the given metrics (JSON) and 1..=10 replicas.
pub(in crate::controllers::horizontalpodautoscaling) fn hpa(metrics: serde_json::Value) -> HorizontalPodAutoscaler {
    serde_json::from_value(json!({
        "metadata": {"name": "h", "namespace": "ns", "generation": 2},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
            "minReplicas": 1, "maxReplicas": 10,
            "metrics": metrics,
        },
    }))
    .unwrap()
}

pub(in crate::controllers::horizontalpodautoscaling) fn cpu_utilization(percent: i32) -> serde_json::Value {
    json!([{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": percent}}}])
}

/// A long-running ready pod `app=web` requesting 1 cpu.
pub(in crate::controllers::horizontalpodautoscaling) fn web_pod(name: &str) -> Pod {
    let started = Time(now() - SignedDuration::from_hours(1));
    Pod {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some("ns".into()),
            labels: Some([("app".to_string(), "web".to_string())].into()),
            ..Default::default()
        },
        spec: Some(PodSpec {
            containers: vec![Container {
                name: "c".into(),
                resources: Some(ResourceRequirements {
                    requests: Some([("cpu".to_string(), K8sQuantity("1".into()))].into()),
                    ..Default::default()
                }),
                ..Default::default()
            }],
            ..Default::default()
        }),
        status: Some(PodStatus {
            phase: Some("Running".into()),
            start_time: Some(started.clone()),
            conditions: Some(vec![PodCondition {
                type_: "Ready".into(),
                status: "True".into(),
                last_transition_time: Some(started),
                ..Default::default()
            }]),
            ..Default::default()
        }),
    }
}

/// PodMetrics for pods using the given milli-cpu.
pub(in crate::controllers::horizontalpodautoscaling) fn usage(values: &[(&str, &str)]) -> Vec<PodMetrics> {
    values
        .iter()
        .map(|(name, cpu)| PodMetrics {
            name: name.to_string(),
            timestamp: now() - SignedDuration::from_secs(10),
            window: Duration::from_secs(15),
            containers: vec![ContainerUsage {
                name: "c".into(),
                usage: [("cpu".to_string(), api::quantity::Quantity::parse(cpu).unwrap())].into(),
            }],
        })
        .collect()
}

pub(in crate::controllers::horizontalpodautoscaling) fn scale(replicas: i32) -> Result<Scale, String> {
    Ok(Scale {
        spec_replicas: replicas,
        status_replicas: replicas,
        selector: "app=web".into(),
    })
}

pub(in crate::controllers::horizontalpodautoscaling) fn condition(
    plan: &Plan,
    type_: &str,
) -> (String, String, String) {
    let c = plan
        .status
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == type_)
        .unwrap_or_else(|| panic!("no {type_} condition in {:?}", plan.status.conditions));
    (
        c.status.clone(),
        c.reason.clone().unwrap_or_default(),
        c.message.clone().unwrap_or_default(),
    )
}

fn run(
    hpa: &HorizontalPodAutoscaler,
    scale: Result<Scale, String>,
    pods: &[Pod],
    metrics: Option<Result<Vec<PodMetrics>, MetricsError>>,
) -> Plan {
    let pods: Vec<&Pod> = pods.iter().collect();
    let inputs = Inputs {
        hpa,
        scale,
        pods: &pods,
        pod_metrics: metrics.as_ref(),
        other_selectors: &[],
        now: now(),
    };
    decide(&inputs, &settings(), &mut History::default())
}

#[test]
fn scale_up_on_cpu_above_target() {
    let pods = [web_pod("a"), web_pod("b")];
    let plan = run(
        &hpa(cpu_utilization(50)),
        scale(2),
        &pods,
        Some(Ok(usage(&[("a", "900m"), ("b", "700m")]))),
    );
    // 80% of the requests against 50%: ceil(1.6 * 2) = 4.
    assert_eq!(
        plan.rescale,
        Some(Rescale {
            from: 2,
            to: 4,
            reason: "cpu resource utilization (percentage of request) above target".into()
        })
    );
    assert_eq!(plan.status.desired_replicas, 4);
    assert_eq!(plan.status.current_replicas, Some(2));
    assert_eq!(plan.status.observed_generation, Some(2));
    let current = plan.status.current_metrics.clone().unwrap();
    let cpu = current[0].resource.as_ref().unwrap();
    assert_eq!(
        (cpu.current.average_utilization, cpu.current.average_value.clone()),
        (Some(80), Some(K8sQuantity("800m".into())))
    );
    assert_eq!(
        condition(&plan, "ScalingActive"),
        (
            "True".into(),
            "ValidMetricFound".into(),
            "the HPA was able to successfully calculate a replica count from cpu resource utilization (percentage of request)".into()
        )
    );
    assert_eq!(condition(&plan, "ScalingLimited").1, "DesiredWithinRange");
    assert!(plan.events.is_empty());
}

#[test]
fn within_tolerance_changes_nothing() {
    let pods = [web_pod("a"), web_pod("b")];
    let plan = run(
        &hpa(cpu_utilization(50)),
        scale(2),
        &pods,
        Some(Ok(usage(&[("a", "520m"), ("b", "500m")]))),
    );
    assert_eq!(plan.rescale, None);
    assert_eq!(plan.status.desired_replicas, 2);
    assert_eq!(condition(&plan, "AbleToScale").1, "ReadyForNewScale");
}

#[test]
fn metrics_api_absent() {
    let pods = [web_pod("a")];
    let error = MetricsError("the server could not find the requested resource (get pods.metrics.k8s.io)".into());
    let plan = run(&hpa(cpu_utilization(50)), scale(1), &pods, Some(Err(error)));
    let cause = "failed to get cpu utilization: unable to get metrics for resource cpu: unable to fetch metrics from resource metrics API: the server could not find the requested resource (get pods.metrics.k8s.io)";
    assert_eq!(
        condition(&plan, "ScalingActive"),
        (
            "False".into(),
            "FailedGetResourceMetric".into(),
            format!("the HPA was unable to compute the replica count: {cause}")
        )
    );
    let reasons: Vec<_> = plan
        .events
        .iter()
        .map(|e| (e.reason.as_str(), e.note.as_str()))
        .collect();
    let computed = format!(
        "invalid metrics (1 invalid out of 1), first error is: failed to get cpu resource metric value: {cause}"
    );
    assert_eq!(
        reasons,
        [
            ("FailedGetResourceMetric", cause),
            ("FailedComputeMetricsReplicas", computed.as_str())
        ]
    );
    assert_eq!(plan.rescale, None);
    // One (empty) status per metric, as upstream writes.
    assert_eq!(plan.status.current_metrics.as_ref().map(Vec::len), Some(1));
}

#[test]
fn custom_and_external_metrics_are_not_served() {
    let metrics = json!([
        {"type": "Pods", "pods": {"metric": {"name": "rps"}, "target": {"type": "AverageValue", "averageValue": "10"}}},
        {"type": "Object", "object": {"metric": {"name": "hits"}, "describedObject": {"kind": "Service", "name": "front", "apiVersion": "v1"}, "target": {"type": "Value", "value": "10"}}},
        {"type": "External", "external": {"metric": {"name": "queue"}, "target": {"type": "Value", "value": "10"}}},
    ]);
    let plan = run(&hpa(metrics), scale(1), &[web_pod("a")], None);
    let (status, reason, message) = condition(&plan, "ScalingActive");
    assert_eq!((status.as_str(), reason.as_str()), ("False", "FailedGetPodsMetric"));
    assert_eq!(
        message,
        "the HPA was unable to compute the replica count: unable to get metric rps: unable to fetch metrics from custom metrics API: no custom metrics API (custom.metrics.k8s.io) registered"
    );
    let reasons: Vec<_> = plan.events.iter().map(|e| e.reason.as_str()).collect();
    assert_eq!(
        reasons,
        [
            "FailedGetPodsMetric",
            "FailedGetObjectMetric",
            "FailedGetExternalMetric",
            "FailedComputeMetricsReplicas"
        ]
    );
    assert_eq!(
        plan.events[1].note,
        "unable to get metric hits: Service on ns front/unable to fetch metrics from custom metrics API: no custom metrics API (custom.metrics.k8s.io) registered"
    );
    assert!(
        plan.events[3]
            .note
            .starts_with("invalid metrics (3 invalid out of 3), first error is: failed to get pods metric value: ")
    );
}

#[test]
fn one_failing_metric_does_not_stop_a_scale_up() {
    let mut metrics = cpu_utilization(50);
    metrics.as_array_mut().unwrap().push(json!({"type": "Pods", "pods": {"metric": {"name": "rps"}, "target": {"type": "AverageValue", "averageValue": "10"}}}));
    let pods = [web_pod("a")];
    let plan = run(&hpa(metrics), scale(1), &pods, Some(Ok(usage(&[("a", "1")]))));
    assert_eq!(plan.rescale.as_ref().map(|r| r.to), Some(2));
    assert_eq!(condition(&plan, "ScalingActive").1, "ValidMetricFound");
    assert!(
        plan.error
            .is_some_and(|e| e.starts_with("invalid metrics (1 invalid out of 2)"))
    );
}

#[test]
fn scale_edge_cases() {
    let pods = [web_pod("a")];
    // Target scaled to zero: disabled.
    let plan = run(&hpa(cpu_utilization(50)), scale(0), &pods, None);
    assert_eq!(
        condition(&plan, "ScalingActive"),
        (
            "False".into(),
            "ScalingDisabled".into(),
            "scaling is disabled since the replica count of the target is zero".into()
        )
    );
    assert_eq!((plan.rescale, plan.status.desired_replicas), (None, 0));
    // Above max: down to max without looking at metrics.
    let plan = run(&hpa(cpu_utilization(50)), scale(12), &pods, None);
    assert_eq!(
        plan.rescale.map(|r| (r.to, r.reason)),
        Some((10, "Current number of replicas above Spec.MaxReplicas".to_string()))
    );
    // The scale cannot be read.
    let plan = run(
        &hpa(cpu_utilization(50)),
        Err("deployments.apps \"web\" not found".into()),
        &pods,
        None,
    );
    assert_eq!(
        condition(&plan, "AbleToScale"),
        (
            "False".into(),
            "FailedGetScale".into(),
            "the HPA controller was unable to get the target's current scale: deployments.apps \"web\" not found"
                .into()
        )
    );
    assert_eq!(plan.events[0].reason, "FailedGetScale");
    // No selector on the scale.
    let plan = run(
        &hpa(cpu_utilization(50)),
        Ok(Scale {
            spec_replicas: 1,
            status_replicas: 1,
            selector: String::new(),
        }),
        &pods,
        None,
    );
    assert_eq!(condition(&plan, "ScalingActive").1, "InvalidSelector");
    assert_eq!(plan.events[0].reason, "SelectorRequired");
    // A pod without a cpu request.
    let mut bare = web_pod("b");
    bare.spec.as_mut().unwrap().containers[0].resources = None;
    let plan = run(
        &hpa(cpu_utilization(50)),
        scale(2),
        &[web_pod("a"), bare],
        Some(Ok(usage(&[("a", "1"), ("b", "1")]))),
    );
    assert_eq!(
        plan.events[0].note,
        "failed to get cpu utilization: missing request for cpu in container c of Pod b"
    );
}

#[test]
fn rescale_outcome_completes_the_status() {
    let pods = [web_pod("a")];
    let mut ok = run(
        &hpa(cpu_utilization(50)),
        scale(1),
        &pods,
        Some(Ok(usage(&[("a", "1")]))),
    );
    ok.rescaled(Ok(()), now());
    assert_eq!(condition(&ok, "AbleToScale").1, "SucceededRescale");
    assert_eq!(
        ok.events[0].note,
        "New size: 2; reason: cpu resource utilization (percentage of request) above target"
    );
    assert_eq!(ok.status.last_scale_time, Some(Time(now())));
    let mut failed = run(
        &hpa(cpu_utilization(50)),
        scale(1),
        &pods,
        Some(Ok(usage(&[("a", "1")]))),
    );
    failed.rescaled(Err("conflict".into()), now());
    assert_eq!(condition(&failed, "AbleToScale").1, "FailedUpdateScale");
    assert_eq!(failed.events[0].reason, "FailedRescale");
    assert_eq!(failed.status.desired_replicas, 0);
    assert_eq!(failed.status.last_scale_time, None);
}

#[test]
fn pods_under_two_hpas_are_ambiguous() {
    let pods = [web_pod("a")];
    let pods: Vec<&Pod> = pods.iter().collect();
    let metrics = Some(Ok(usage(&[("a", "1")])));
    let hpa = hpa(cpu_utilization(50));
    let decide_with = |others: &[(String, String)]| {
        let inputs = Inputs {
            hpa: &hpa,
            scale: scale(1),
            pods: &pods,
            pod_metrics: metrics.as_ref(),
            other_selectors: others,
            now: now(),
        };
        decide(&inputs, &settings(), &mut History::default())
    };
    let plan = decide_with(&[
        ("other".into(), "app=web,tier!=db".into()),
        ("h".into(), "app=web".into()),
    ]);
    let message = "pods by selector app=web are controlled by multiple HPAs: [{h ns} {other ns}]";
    assert_eq!(
        condition(&plan, "ScalingActive"),
        ("False".into(), "AmbiguousSelector".into(), message.into())
    );
    assert_eq!(plan.events[0].reason, "AmbiguousSelector");
    assert_eq!(plan.rescale, None);
    // Another HPA over other pods is no conflict.
    let plan = decide_with(&[("other".into(), "app=db".into())]);
    assert_eq!(plan.rescale.map(|r| r.to), Some(2));
}
