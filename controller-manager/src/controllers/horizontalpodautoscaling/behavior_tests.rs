//! Table tests of the normalisation: stabilization windows and scaling policies.

use k8s_openapi::api::autoscaling::v2::HPAScalingPolicy;

use super::*;

fn t0() -> Timestamp {
    "2025-01-01T00:00:00Z".parse().unwrap()
}

fn at(secs: i64) -> Timestamp {
    t0() + SignedDuration::from_secs(secs)
}

fn policy(type_: &str, value: i32, period: i32) -> HPAScalingPolicy {
    HPAScalingPolicy {
        type_: type_.into(),
        value,
        period_seconds: period,
    }
}

fn rules(window: i32, select: &str, policies: Vec<HPAScalingPolicy>) -> HPAScalingRules {
    HPAScalingRules {
        stabilization_window_seconds: Some(window),
        select_policy: Some(select.into()),
        policies: Some(policies),
        tolerance: None,
    }
}

/// The API's defaults: up 0 s, max(4 pods, 100%) per 15 s; down 300 s, 100% per 15 s.
fn defaults() -> HorizontalPodAutoscalerBehavior {
    HorizontalPodAutoscalerBehavior {
        scale_up: Some(rules(0, "Max", vec![policy("Pods", 4, 15), policy("Percent", 100, 15)])),
        scale_down: Some(rules(300, "Max", vec![policy("Percent", 100, 15)])),
    }
}

const FIVE_MIN: SignedDuration = SignedDuration::from_secs(300);

#[test]
fn stabilization_window_holds_a_scale_down() {
    let behavior = defaults();
    let mut history = History::default();
    history.record_initial(10, at(0));
    // The load drops: the recommendation of 10 from t=0 holds for 300 s.
    let n = history.normalize_with_behavior(&behavior, 10, 3, 1, 20, FIVE_MIN, at(30));
    assert_eq!(n.replicas, 10);
    assert_eq!(n.able_to_scale.0, "ScaleDownStabilized");
    assert!(!n.limited);
    let n = history.normalize_with_behavior(&behavior, 10, 4, 1, 20, FIVE_MIN, at(200));
    assert_eq!(n.replicas, 10);
    // t=0 is out of the window; the highest since is 4 (t=200).
    let n = history.normalize_with_behavior(&behavior, 10, 3, 1, 20, FIVE_MIN, at(320));
    assert_eq!(n.replicas, 4);
    assert_eq!(n.able_to_scale.0, "ScaleDownStabilized");
    let n = history.normalize_with_behavior(&behavior, 4, 3, 1, 20, FIVE_MIN, at(520));
    assert_eq!((n.replicas, n.able_to_scale.0), (3, "ReadyForNewScale"));
}

#[test]
fn scale_up_stabilization_takes_the_lowest() {
    let mut behavior = defaults();
    behavior.scale_up = Some(rules(60, "Max", vec![policy("Pods", 100, 15)]));
    let mut history = History::default();
    history.record_initial(2, at(0));
    let n = history.normalize_with_behavior(&behavior, 2, 8, 1, 20, FIVE_MIN, at(10));
    assert_eq!((n.replicas, n.able_to_scale.0), (2, "ScaleUpStabilized"));
    let n = history.normalize_with_behavior(&behavior, 2, 8, 1, 20, FIVE_MIN, at(70));
    assert_eq!((n.replicas, n.able_to_scale.0), (8, "ReadyForNewScale"));
}

#[test]
fn policies_limit_the_rate() {
    type Case = (&'static str, HPAScalingRules, i32, i32, i32, &'static str);
    let cases: Vec<Case> = vec![
        // Max of (1 + 4, 1 * 2) = 5.
        (
            "default: 4 pods or 100%",
            defaults().scale_up.unwrap(),
            1,
            20,
            5,
            "ScaleUpLimit",
        ),
        // Max of (10 + 4, 10 * 2) = 20, max replicas 15.
        (
            "default, big: 100% wins, clamped by max",
            defaults().scale_up.unwrap(),
            10,
            30,
            15,
            "TooManyReplicas",
        ),
        (
            "Min picks the smaller",
            rules(0, "Min", vec![policy("Pods", 4, 15), policy("Percent", 100, 15)]),
            10,
            30,
            14,
            "ScaleUpLimit",
        ),
        (
            "Percent rounds up",
            rules(0, "Max", vec![policy("Percent", 10, 60)]),
            3,
            30,
            4,
            "ScaleUpLimit",
        ),
        (
            "Disabled",
            rules(0, "Disabled", vec![policy("Pods", 4, 15)]),
            3,
            30,
            3,
            "ScaleUpLimit",
        ),
        (
            "within the rate",
            rules(0, "Max", vec![policy("Pods", 4, 15)]),
            3,
            6,
            6,
            "DesiredWithinRange",
        ),
    ];
    for (name, up, current, proposal, want, reason) in cases {
        let behavior = HorizontalPodAutoscalerBehavior {
            scale_up: Some(up),
            ..defaults()
        };
        let mut history = History::default();
        let n = history.normalize_with_behavior(&behavior, current, proposal, 1, 15, FIVE_MIN, at(0));
        assert_eq!((n.replicas, n.limited_reason.0), (want, reason), "{name}");
        assert_eq!(n.limited, want != proposal, "{name}");
    }
}

#[test]
fn scale_events_within_the_period_count_against_the_policy() {
    let mut behavior = defaults();
    behavior.scale_up = Some(rules(0, "Max", vec![policy("Pods", 2, 60)]));
    behavior.scale_down = Some(rules(0, "Max", vec![policy("Percent", 50, 60)]));
    let mut history = History::default();
    let n = history.normalize_with_behavior(&behavior, 2, 10, 1, 20, FIVE_MIN, at(0));
    assert_eq!(n.replicas, 4);
    history.record_scale(Some(&behavior), 2, 4, at(0));
    // Within the 60 s period the 2 pods added already used the policy up.
    let n = history.normalize_with_behavior(&behavior, 4, 10, 1, 20, FIVE_MIN, at(30));
    assert_eq!((n.replicas, n.limited_reason.0), (4, "ScaleUpLimit"));
    // After it, 2 more.
    let n = history.normalize_with_behavior(&behavior, 4, 10, 1, 20, FIVE_MIN, at(61));
    assert_eq!(n.replicas, 6);
    // Down by at most half of what there was at the period's start.
    let n = history.normalize_with_behavior(&behavior, 10, 1, 1, 20, FIVE_MIN, at(200));
    assert_eq!((n.replicas, n.limited_reason.0), (5, "ScaleDownLimit"));
    history.record_scale(Some(&behavior), 10, 5, at(200));
    let n = history.normalize_with_behavior(&behavior, 5, 1, 1, 20, FIVE_MIN, at(210));
    assert_eq!(n.replicas, 5);
    // Below min replicas: TooFewReplicas.
    let n = history.normalize_with_behavior(&behavior, 5, 1, 4, 20, FIVE_MIN, at(400));
    assert_eq!((n.replicas, n.limited_reason.0), (4, "TooFewReplicas"));
}

#[test]
fn legacy_rules_without_behavior() {
    let mut history = History::default();
    history.record_initial(5, at(0));
    // Scale-down held by the earlier recommendation of 5.
    let n = history.normalize_legacy(5, 2, 1, 20, FIVE_MIN, at(60));
    assert_eq!((n.replicas, n.able_to_scale.0), (5, "ScaleDownStabilized"));
    let n = history.normalize_legacy(5, 2, 1, 20, FIVE_MIN, at(400));
    assert_eq!((n.replicas, n.able_to_scale.0), (2, "ReadyForNewScale"));
    // Scale-up at most doubles (at least to 4).
    let n = history.normalize_legacy(2, 50, 1, 20, FIVE_MIN, at(800));
    assert_eq!((n.replicas, n.limited_reason.0, n.limited), (4, "ScaleUpLimit", true));
    let n = history.normalize_legacy(8, 50, 1, 10, FIVE_MIN, at(1200));
    assert_eq!((n.replicas, n.limited_reason.0), (10, "TooManyReplicas"));
    let n = history.normalize_legacy(3, 3, 1, 10, FIVE_MIN, at(1600));
    assert_eq!(
        (n.replicas, n.limited_reason.0, n.limited),
        (3, "DesiredWithinRange", false)
    );
}
