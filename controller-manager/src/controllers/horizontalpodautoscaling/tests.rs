//! Recorded-actions test: successive syncs with a fake metrics source, reading what the
//! source was asked and what each sync would do, while time moves.

use jiff::SignedDuration;
use serde_json::json;

use super::decide::tests::{condition, hpa, now, scale, settings, usage, web_pod};
use super::decide::{Inputs, Plan, decide};
use super::metrics::{FakeMetricsSource, MetricsSource};
use super::*;

/// One sync as the controller does it: the source asked with the scale's selector, then
/// the decision, then (on a rescale) the scale event recorded.
async fn sync(
    source: &FakeMetricsSource,
    hpa: &HorizontalPodAutoscaler,
    history: &mut History,
    replicas: i32,
    pods: &[Pod],
    at: i64,
) -> Plan {
    let scale = scale(replicas);
    let selector = scale.as_ref().unwrap().selector.clone();
    let metrics = source.pod_metrics("ns", &selector).await;
    let pods: Vec<&Pod> = pods.iter().collect();
    let now = now() + SignedDuration::from_secs(at);
    let inputs = Inputs {
        hpa,
        scale,
        pods: &pods,
        pod_metrics: Some(&metrics),
        other_selectors: &[],
        now,
    };
    let mut plan = decide(&inputs, &settings(), history);
    if let Some(rescale) = plan.rescale.clone() {
        history.record_scale(hpa.spec.behavior.as_ref(), rescale.from, rescale.to, now);
        plan.rescaled(Ok(()), now);
    }
    plan
}

#[tokio::test]
async fn scales_up_then_holds_the_scale_down_for_the_window() {
    let source = FakeMetricsSource::new();
    let mut hpa = hpa(
        json!([{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 50}}}]),
    );
    hpa.spec.behavior = Some(
        serde_json::from_value(json!({
            "scaleUp": {"stabilizationWindowSeconds": 0, "selectPolicy": "Max", "policies": [{"type": "Pods", "value": 2, "periodSeconds": 60}]},
            "scaleDown": {"stabilizationWindowSeconds": 120, "selectPolicy": "Max", "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15}]},
        }))
        .unwrap(),
    );
    let mut history = History::default();
    let two = [web_pod("a"), web_pod("b")];
    // Hot: 150% of the requests wants 6 pods; the Pods policy allows 2 more a minute.
    source.set("ns", Ok(usage(&[("a", "1500m"), ("b", "1500m")])));
    let plan = sync(&source, &hpa, &mut history, 2, &two, 0).await;
    assert_eq!(plan.rescale.as_ref().map(|r| r.to), Some(4));
    assert_eq!(condition(&plan, "ScalingLimited").1, "ScaleUpLimit");
    assert_eq!(plan.events[0].reason, "SuccessfulRescale");
    let four = [web_pod("a"), web_pod("b"), web_pod("c"), web_pod("d")];
    source.set(
        "ns",
        Ok(usage(&[("a", "1500m"), ("b", "1500m"), ("c", "1500m"), ("d", "1500m")])),
    );
    let plan = sync(&source, &hpa, &mut history, 4, &four, 15).await;
    assert_eq!(plan.rescale, None, "the 60 s period is used up");
    let plan = sync(&source, &hpa, &mut history, 4, &four, 61).await;
    assert_eq!(plan.rescale.as_ref().map(|r| r.to), Some(6));
    // Cold: 10% wants 1 pod, but the window keeps the recent high recommendations.
    let six: Vec<Pod> = ["a", "b", "c", "d", "e", "f"].into_iter().map(web_pod).collect();
    source.set(
        "ns",
        Ok(usage(&[
            ("a", "100m"),
            ("b", "100m"),
            ("c", "100m"),
            ("d", "100m"),
            ("e", "100m"),
            ("f", "100m"),
        ])),
    );
    let plan = sync(&source, &hpa, &mut history, 6, &six, 90).await;
    assert_eq!(plan.rescale, None);
    assert_eq!(condition(&plan, "AbleToScale").1, "ScaleDownStabilized");
    // 120 s after the last high recommendation (t=61), down it goes.
    let plan = sync(&source, &hpa, &mut history, 6, &six, 182).await;
    assert_eq!(
        plan.rescale.as_ref().map(|r| (r.to, r.reason.as_str())),
        Some((2, "All metrics below target"))
    );
    assert_eq!(plan.events[0].note, "New size: 2; reason: All metrics below target");
    // Every sync asked the source for the scale's selector in the HPA's namespace.
    let calls = source.calls();
    assert_eq!(calls.len(), 5);
    assert!(calls.iter().all(|(ns, selector)| ns == "ns" && selector == "app=web"));
}

#[test]
fn scale_target_groups() {
    assert_eq!(group_of("apps/v1"), "apps");
    assert_eq!(group_of("v1"), "");
    assert_eq!(group_of(""), "");
}
