//! Table tests of the replica calculation, cases after upstream's replica_calculator_test.

use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, PodCondition, PodSpec, PodStatus, ResourceRequirements};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity as K8sQuantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};

use super::*;

fn now() -> Timestamp {
    "2025-01-01T01:00:00Z".parse().unwrap()
}

fn ago(secs: i64) -> Timestamp {
    now() - SignedDuration::from_secs(secs)
}

fn calc() -> Calculator {
    Calculator {
        tolerances: Tolerances {
            scale_down: 0.1,
            scale_up: 0.1,
        },
        cpu_initialization_period: SignedDuration::from_mins(5),
        initial_readiness_delay: SignedDuration::from_secs(30),
        now: now(),
    }
}

/// A pod started `started` seconds ago, in `phase`, Ready (`ready`) since `since` seconds,
/// requesting `request` cpu (none for "").
fn pod(name: &str, phase: &str, ready: bool, started: i64, since: i64, request: &str) -> Pod {
    let requests = (!request.is_empty()).then(|| [("cpu".to_string(), K8sQuantity(request.to_string()))].into());
    Pod {
        metadata: ObjectMeta {
            name: Some(name.into()),
            ..Default::default()
        },
        spec: Some(PodSpec {
            containers: vec![Container {
                name: "c".into(),
                resources: Some(ResourceRequirements {
                    requests,
                    ..Default::default()
                }),
                ..Default::default()
            }],
            ..Default::default()
        }),
        status: Some(PodStatus {
            phase: Some(phase.into()),
            start_time: Some(Time(ago(started))),
            conditions: Some(vec![PodCondition {
                type_: "Ready".into(),
                status: if ready { "True" } else { "False" }.into(),
                last_transition_time: Some(Time(ago(since))),
                ..Default::default()
            }]),
            ..Default::default()
        }),
    }
}

/// A long-running ready pod requesting one cpu.
fn running(name: &str) -> Pod {
    pod(name, "Running", true, 3600, 3500, "1")
}

/// Readings taken `at` seconds ago over a 30 s window.
fn readings(values: &[(&str, i64)], at: i64) -> PodMetricsInfo {
    values
        .iter()
        .map(|(name, value)| {
            (
                name.to_string(),
                PodMetric {
                    timestamp: ago(at),
                    window: Duration::from_secs(30),
                    value: *value,
                },
            )
        })
        .collect()
}

#[test]
fn utilization_table() {
    type Case = (
        &'static str,
        Vec<Pod>,
        PodMetricsInfo,
        i32,
        i32,
        Result<(i32, i32), CalcError>,
    );
    let cases: Vec<Case> = vec![
        (
            "scale up",
            vec![running("a"), running("b"), running("c")],
            readings(&[("a", 300), ("b", 500), ("c", 700)], 10),
            3,
            30,
            Ok((5, 50)),
        ),
        (
            "within tolerance: no change",
            vec![running("a"), running("b"), running("c")],
            readings(&[("a", 1010), ("b", 1030), ("c", 1020)], 10),
            3,
            100,
            Ok((3, 102)),
        ),
        (
            "scale down",
            ["a", "b", "c", "d", "e"].into_iter().map(running).collect(),
            readings(&[("a", 100), ("b", 300), ("c", 500), ("d", 250), ("e", 250)], 10),
            5,
            50,
            Ok((3, 28)),
        ),
        (
            "unready pod counts as 0% on a scale-up",
            vec![pod("a", "Running", false, 60, 60, "1"), running("b"), running("c")],
            readings(&[("a", 300), ("b", 500), ("c", 700)], 10),
            3,
            30,
            Ok((4, 60)),
        ),
        (
            "cpu still initialising: sample taken before a full window since ready is ignored",
            vec![pod("a", "Running", true, 60, 20, "1"), running("b"), running("c")],
            readings(&[("a", 300), ("b", 500), ("c", 700)], 10),
            3,
            30,
            Ok((4, 60)),
        ),
        (
            "pending pod is unready; on a scale-down it is left out",
            vec![pod("a", "Pending", false, 60, 60, "1"), running("b"), running("c")],
            readings(&[("b", 100), ("c", 100)], 10),
            3,
            50,
            Ok((1, 10)),
        ),
        (
            "missing metric counts as 100% of its request on a scale-down",
            ["a", "b", "c", "d"].into_iter().map(running).collect(),
            readings(&[("a", 100), ("b", 100), ("c", 100)], 10),
            4,
            50,
            Ok((3, 10)),
        ),
        (
            "missing metric as 0% would flip a scale-up: no change",
            vec![running("a"), running("b")],
            readings(&[("a", 1200)], 10),
            2,
            100,
            Ok((2, 120)),
        ),
        (
            "failed and deleted pods are ignored",
            vec![
                pod("f", "Failed", false, 600, 600, "1"),
                {
                    let mut p = running("x");
                    p.metadata.deletion_timestamp = Some(Time(ago(1)));
                    p
                },
                running("a"),
                running("b"),
            ],
            readings(&[("f", 5000), ("x", 5000), ("a", 1000), ("b", 1000)], 10),
            2,
            50,
            Ok((4, 100)),
        ),
        (
            "no readings for the counted pods",
            vec![pod("a", "Pending", false, 60, 60, "1")],
            readings(&[], 10),
            1,
            50,
            Err(CalcError::NoMetrics),
        ),
        ("no pods", vec![], readings(&[], 10), 1, 50, Err(CalcError::NoPods)),
        (
            "a container without the request",
            vec![running("a"), pod("b", "Running", true, 3600, 3500, "")],
            readings(&[("a", 100), ("b", 100)], 10),
            2,
            50,
            Err(CalcError::MissingRequest {
                resource: "cpu".into(),
                container: "c".into(),
                pod: "b".into(),
            }),
        ),
    ];
    for (name, pods, metrics, current, target, want) in cases {
        let pods: Vec<&Pod> = pods.iter().collect();
        let got = resource_replicas(&calc(), current, target, "cpu", None, &pods, &metrics)
            .map(|p| (p.replicas, p.utilization));
        assert_eq!(got, want, "{name}");
    }
    let error = CalcError::MissingRequest {
        resource: "cpu".into(),
        container: "c".into(),
        pod: "b".into(),
    };
    assert_eq!(error.to_string(), "missing request for cpu in container c of Pod b");
}

#[test]
fn average_value_table() {
    let pods = [running("a"), running("b"), running("c")];
    let pods: Vec<&Pod> = pods.iter().collect();
    let metrics = readings(&[("a", 100), ("b", 200), ("c", 300)], 10);
    // Average 200m against 100m: twice the pods.
    assert_eq!(
        raw_resource_replicas(&calc(), 3, 100, "memory", &pods, &metrics),
        Ok((6, 200))
    );
    // Against 190m: within tolerance.
    assert_eq!(
        raw_resource_replicas(&calc(), 3, 190, "memory", &pods, &metrics),
        Ok((3, 200))
    );
    // A missing pod counts as the target on a scale-down: (100+100+400)/3 = 200 vs 400.
    let metrics = readings(&[("a", 100), ("b", 100)], 10);
    assert_eq!(
        raw_resource_replicas(&calc(), 3, 400, "memory", &pods, &metrics),
        Ok((2, 100))
    );
}

#[test]
fn tolerances_are_per_direction() {
    let t = Tolerances {
        scale_down: 0.05,
        scale_up: 0.5,
    };
    assert!(t.within(1.4) && t.within(0.96));
    assert!(!t.within(1.6) && !t.within(0.94));
}
