//! HorizontalPodAutoscalers: autoscaling/v2 defaults (minReplicas, the 80% CPU metric, the
//! scaling behavior rules) and upstream's `pkg/apis/autoscaling/validation`, applied to v2 and,
//! on the fields it has, to v1.

use k8s_openapi::api::autoscaling::{v1 as hpa_v1, v2 as hpa_v2};
use serde_json::Value;

use crate::field::{FieldError, child, index};
use crate::strategy::Operation;
use crate::validation::common::invalid_each;
use crate::validation::names::is_valid_path_segment_name;
use crate::validation::quantity::Quantity;

/// upstream's `DefaultCPUUtilization`.
const DEFAULT_CPU_UTILIZATION: i32 = 80;

pub(crate) fn default_hpa_v1(hpa: &mut hpa_v1::HorizontalPodAutoscaler) {
    hpa.spec.min_replicas.get_or_insert(1);
}

pub(crate) fn default_hpa_v2(hpa: &mut hpa_v2::HorizontalPodAutoscaler) {
    let spec = &mut hpa.spec;
    spec.min_replicas.get_or_insert(1);
    if spec.metrics.as_ref().is_none_or(Vec::is_empty) {
        spec.metrics = Some(vec![hpa_v2::MetricSpec {
            type_: "Resource".into(),
            resource: Some(hpa_v2::ResourceMetricSource {
                name: "cpu".into(),
                target: hpa_v2::MetricTarget {
                    type_: "Utilization".into(),
                    average_utilization: Some(DEFAULT_CPU_UTILIZATION),
                    ..Default::default()
                },
            }),
            ..Default::default()
        }]);
    }
    // A behavior, once given, is filled in completely.
    if let Some(behavior) = spec.behavior.as_mut() {
        let up = behavior.scale_up.get_or_insert_with(Default::default);
        up.stabilization_window_seconds.get_or_insert(0);
        up.select_policy.get_or_insert_with(|| "Max".into());
        if up.policies.as_ref().is_none_or(Vec::is_empty) {
            up.policies = Some(vec![policy("Pods", 4), policy("Percent", 100)]);
        }
        let down = behavior.scale_down.get_or_insert_with(Default::default);
        down.stabilization_window_seconds.get_or_insert(300);
        down.select_policy.get_or_insert_with(|| "Max".into());
        if down.policies.as_ref().is_none_or(Vec::is_empty) {
            down.policies = Some(vec![policy("Percent", 100)]);
        }
    }
}

fn policy(type_: &str, value: i32) -> hpa_v2::HPAScalingPolicy {
    hpa_v2::HPAScalingPolicy {
        type_: type_.into(),
        value,
        period_seconds: 15,
    }
}

/// Applies the v2 defaults to a v2 object in JSON (what conversion to storage needs); the value
/// is returned unchanged if it does not decode.
pub(crate) fn default_hpa_v2_value(value: Value) -> Value {
    match serde_json::from_value::<hpa_v2::HorizontalPodAutoscaler>(value.clone()) {
        Ok(mut hpa) => {
            default_hpa_v2(&mut hpa);
            serde_json::to_value(&hpa).unwrap_or(value)
        }
        Err(_) => value,
    }
}

/// upstream's `ValidateCrossVersionObjectReference`.
fn validate_target_ref(kind: &str, name: &str) -> Vec<FieldError> {
    let path = "spec.scaleTargetRef";
    let mut errs = Vec::new();
    for (value, field) in [(kind, "kind"), (name, "name")] {
        if value.is_empty() {
            errs.push(FieldError::required(child(path, field), ""));
        } else {
            errs.extend(invalid_each(
                &child(path, field),
                value,
                is_valid_path_segment_name(value),
            ));
        }
    }
    errs
}

fn validate_replicas(min: Option<i32>, max: i32) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if let Some(m) = min.filter(|m| *m < 1) {
        errs.push(FieldError::invalid(
            "spec.minReplicas",
            m,
            "must be greater than or equal to 1",
        ));
    }
    if max < 1 {
        errs.push(FieldError::invalid("spec.maxReplicas", max, "must be greater than 0"));
    }
    if min.is_some_and(|m| max < m) {
        errs.push(FieldError::invalid(
            "spec.maxReplicas",
            max,
            "must be greater than or equal to `minReplicas`",
        ));
    }
    errs
}

pub(crate) fn validate_hpa_v1(
    hpa: &hpa_v1::HorizontalPodAutoscaler,
    _old: Option<&hpa_v1::HorizontalPodAutoscaler>,
    op: Operation,
) -> Vec<FieldError> {
    if op == Operation::UpdateStatus {
        return Vec::new();
    }
    let spec = &hpa.spec;
    let mut errs = validate_replicas(spec.min_replicas, spec.max_replicas);
    errs.extend(validate_target_ref(
        &spec.scale_target_ref.kind,
        &spec.scale_target_ref.name,
    ));
    if let Some(t) = spec.target_cpu_utilization_percentage.filter(|t| *t < 1) {
        errs.push(FieldError::invalid(
            "spec.targetCPUUtilizationPercentage",
            t,
            "must be greater than 0",
        ));
    }
    errs
}

pub(crate) fn validate_hpa_v2(
    hpa: &hpa_v2::HorizontalPodAutoscaler,
    _old: Option<&hpa_v2::HorizontalPodAutoscaler>,
    op: Operation,
) -> Vec<FieldError> {
    if op == Operation::UpdateStatus {
        return Vec::new();
    }
    let spec = &hpa.spec;
    let mut errs = validate_replicas(spec.min_replicas, spec.max_replicas);
    errs.extend(validate_target_ref(
        &spec.scale_target_ref.kind,
        &spec.scale_target_ref.name,
    ));
    for (i, m) in spec.metrics.iter().flatten().enumerate() {
        errs.extend(validate_metric(m, &index("spec.metrics", i)));
    }
    if let Some(b) = &spec.behavior {
        for (rules, name) in [(&b.scale_up, "scaleUp"), (&b.scale_down, "scaleDown")] {
            if let Some(r) = rules {
                errs.extend(validate_scaling_rules(r, &child("spec.behavior", name)));
            }
        }
    }
    errs
}

const METRIC_TYPES: &[&str] = &["Object", "Pods", "Resource", "External", "ContainerResource"];

/// upstream's `validateMetricSpec`: a known type with exactly its own source populated.
fn validate_metric(m: &hpa_v2::MetricSpec, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if m.type_.is_empty() {
        errs.push(FieldError::required(
            child(path, "type"),
            "must specify a metric source type",
        ));
    }
    let present: Vec<&str> = [
        (m.object.is_some(), "object"),
        (m.pods.is_some(), "pods"),
        (m.resource.is_some(), "resource"),
        (m.external.is_some(), "external"),
        (m.container_resource.is_some(), "containerResource"),
    ]
    .into_iter()
    .filter_map(|(p, n)| p.then_some(n))
    .collect();
    let expected = match m.type_.as_str() {
        "Object" => "object",
        "Pods" => "pods",
        "Resource" => "resource",
        "External" => "external",
        "ContainerResource" => "containerResource",
        other => {
            errs.push(FieldError::not_supported(child(path, "type"), other, METRIC_TYPES));
            ""
        }
    };
    if !expected.is_empty() && !present.contains(&expected) {
        errs.push(FieldError::required(
            child(path, expected),
            "must populate information for the given metric source",
        ));
    }
    if present.len() > 1 || (present.len() == 1 && !present.contains(&expected)) {
        for extra in present.iter().filter(|p| **p != expected) {
            errs.push(FieldError::forbidden(
                child(path, extra),
                "must populate the given metric source only",
            ));
        }
    }
    if let Some(r) = &m.resource {
        let rp = child(path, "resource");
        errs.extend(validate_resource_target(&r.name, &r.target, &rp));
    }
    if let Some(r) = &m.container_resource {
        let rp = child(path, "containerResource");
        if r.container.is_empty() {
            errs.push(FieldError::required(
                child(&rp, "container"),
                "must specify a container",
            ));
        }
        errs.extend(validate_resource_target(&r.name, &r.target, &rp));
    }
    for (metric, target, name) in [
        (
            m.pods.as_ref().map(|p| &p.metric),
            m.pods.as_ref().map(|p| &p.target),
            "pods",
        ),
        (
            m.object.as_ref().map(|p| &p.metric),
            m.object.as_ref().map(|p| &p.target),
            "object",
        ),
        (
            m.external.as_ref().map(|p| &p.metric),
            m.external.as_ref().map(|p| &p.target),
            "external",
        ),
    ] {
        if let (Some(metric), Some(target)) = (metric, target) {
            let mp = child(path, name);
            if metric.name.is_empty() {
                errs.push(FieldError::required(
                    child(&child(&mp, "metric"), "name"),
                    "must specify a metric name",
                ));
            }
            errs.extend(validate_target(target, &child(&mp, "target")));
        }
    }
    errs
}

fn validate_resource_target(name: &str, target: &hpa_v2::MetricTarget, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if name.is_empty() {
        errs.push(FieldError::required(
            child(path, "name"),
            "must specify a resource name",
        ));
    }
    let tp = child(path, "target");
    errs.extend(validate_target(target, &tp));
    if target.average_utilization.is_none() && target.average_value.is_none() {
        errs.push(FieldError::required(
            child(&tp, "averageUtilization"),
            "must set either a target raw value or a target utilization",
        ));
    }
    if target.average_utilization.is_some() && target.average_value.is_some() {
        errs.push(FieldError::forbidden(
            child(&tp, "averageValue"),
            "may not set both a target raw value and a target utilization",
        ));
    }
    errs
}

/// upstream's `validateMetricTarget`.
fn validate_target(t: &hpa_v2::MetricTarget, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if t.type_.is_empty() {
        errs.push(FieldError::required(
            child(path, "type"),
            "must specify a metric target type",
        ));
    }
    if !matches!(t.type_.as_str(), "Utilization" | "Value" | "AverageValue") {
        errs.push(FieldError::invalid(
            child(path, "type"),
            t.type_.as_str(),
            "must be either Utilization, Value, or AverageValue",
        ));
    }
    for (q, name) in [(&t.value, "value"), (&t.average_value, "averageValue")] {
        if let Some(q) = q {
            let positive = Quantity::parse(&q.0).is_some_and(|v| !v.is_negative() && !v.is_zero());
            if !positive {
                errs.push(FieldError::invalid(child(path, name), q.0.as_str(), "must be positive"));
            }
        }
    }
    if let Some(u) = t.average_utilization.filter(|u| *u < 1) {
        errs.push(FieldError::invalid(
            child(path, "averageUtilization"),
            u,
            "must be greater than 0",
        ));
    }
    errs
}

/// upstream's `validateScalingRules`.
fn validate_scaling_rules(r: &hpa_v2::HPAScalingRules, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if let Some(w) = r.stabilization_window_seconds {
        if w < 0 {
            errs.push(FieldError::invalid(
                child(path, "stabilizationWindowSeconds"),
                w,
                "must be greater than or equal to zero",
            ));
        }
        if w > 3600 {
            errs.push(FieldError::invalid(
                child(path, "stabilizationWindowSeconds"),
                w,
                "must be less than or equal to 3600",
            ));
        }
    }
    if let Some(p) = r.select_policy.as_deref()
        && !matches!(p, "Max" | "Min" | "Disabled")
    {
        errs.push(FieldError::not_supported(
            child(path, "selectPolicy"),
            p,
            &["Max", "Min", "Disabled"],
        ));
    }
    let policies = r.policies.as_deref().unwrap_or_default();
    if policies.is_empty() {
        errs.push(FieldError::required(
            child(path, "policies"),
            "must specify at least one Policy",
        ));
    }
    for (i, p) in policies.iter().enumerate() {
        let pp = index(&child(path, "policies"), i);
        if p.type_ != "Pods" && p.type_ != "Percent" {
            errs.push(FieldError::not_supported(
                child(&pp, "type"),
                p.type_.as_str(),
                &["Pods", "Percent"],
            ));
        }
        if p.value <= 0 {
            errs.push(FieldError::invalid(
                child(&pp, "value"),
                p.value,
                "must be greater than zero",
            ));
        }
        if p.period_seconds <= 0 {
            errs.push(FieldError::invalid(
                child(&pp, "periodSeconds"),
                p.period_seconds,
                "must be greater than zero",
            ));
        }
        if p.period_seconds > 1800 {
            errs.push(FieldError::invalid(
                child(&pp, "periodSeconds"),
                p.period_seconds,
                "must be less than or equal to 1800",
            ));
        }
    }
    errs
}
