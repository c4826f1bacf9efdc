//! Conversions between served and stored versions, on JSON: events.k8s.io/v1 Events are
//! stored as core/v1 Events (upstream shares their storage), autoscaling/v1 HPAs as
//! autoscaling/v2 ones. What a version cannot express is kept in annotations, as upstream does
//! for HPAs, so a round trip loses nothing.

use serde_json::{Map, Value, json};

use super::autoscaling::default_hpa_v2_value;
use crate::registry::Conversion;

/// events.k8s.io/v1 Event ⇄ core/v1 Event (the stored form).
pub(crate) static EVENTS_V1_CONVERSION: Conversion = Conversion {
    to_storage: events_v1_to_core,
    from_storage: core_to_events_v1,
};

/// autoscaling/v1 HPA ⇄ autoscaling/v2 HPA (the stored form).
pub(crate) static HPA_V1_CONVERSION: Conversion = Conversion {
    to_storage: hpa_v1_to_v2,
    from_storage: hpa_v2_to_v1,
};

/// Field renames between events.k8s.io/v1 (left) and core/v1 (right); the rest have the same
/// name in both.
const EVENT_RENAMES: &[(&str, &str)] = &[
    ("regarding", "involvedObject"),
    ("note", "message"),
    ("reportingController", "reportingComponent"),
    ("deprecatedSource", "source"),
    ("deprecatedFirstTimestamp", "firstTimestamp"),
    ("deprecatedLastTimestamp", "lastTimestamp"),
    ("deprecatedCount", "count"),
];
const EVENT_SHARED: &[&str] = &[
    "metadata",
    "related",
    "reportingInstance",
    "eventTime",
    "series",
    "action",
    "reason",
    "type",
];

fn convert_event(value: Value, api_version: &str, to_core: bool) -> Value {
    let Value::Object(src) = value else { return value };
    let mut out = Map::new();
    out.insert("apiVersion".into(), Value::from(api_version));
    out.insert("kind".into(), Value::from("Event"));
    for key in EVENT_SHARED {
        if let Some(v) = src.get(*key) {
            out.insert((*key).to_string(), v.clone());
        }
    }
    for (events_name, core_name) in EVENT_RENAMES {
        let (from, to) = if to_core {
            (events_name, core_name)
        } else {
            (core_name, events_name)
        };
        if let Some(v) = src.get(*from).filter(|v| !v.is_null()) {
            out.insert((*to).to_string(), v.clone());
        }
    }
    Value::Object(out)
}

fn events_v1_to_core(value: Value) -> Value {
    convert_event(value, "v1", true)
}

fn core_to_events_v1(value: Value) -> Value {
    convert_event(value, "events.k8s.io/v1", false)
}

/// Annotations upstream uses to carry v2-only content through autoscaling/v1.
const METRICS_ANNOTATION: &str = "autoscaling.alpha.kubernetes.io/metrics";
const CURRENT_METRICS_ANNOTATION: &str = "autoscaling.alpha.kubernetes.io/current-metrics";
const CONDITIONS_ANNOTATION: &str = "autoscaling.alpha.kubernetes.io/conditions";
const BEHAVIOR_ANNOTATION: &str = "autoscaling.alpha.kubernetes.io/behavior";

fn is_cpu_utilization(metric: &Value, target_key: &str) -> bool {
    metric["type"] == "Resource"
        && metric["resource"]["name"] == "cpu"
        && metric["resource"][target_key]["averageUtilization"].is_i64()
}

/// Removes an annotation holding JSON and returns its parsed value.
fn take_annotation(meta: &mut Value, key: &str) -> Option<Value> {
    let annotations = meta.get_mut("annotations")?.as_object_mut()?;
    let raw = annotations.remove(key)?;
    if annotations.is_empty()
        && let Some(m) = meta.as_object_mut()
    {
        m.remove("annotations");
    }
    serde_json::from_str(raw.as_str()?).ok()
}

fn put_annotation(meta: &mut Value, key: &str, value: &Value) {
    if !meta.is_object() {
        *meta = json!({});
    }
    if !meta["annotations"].is_object() {
        meta["annotations"] = json!({});
    }
    meta["annotations"][key] = Value::from(value.to_string());
}

fn hpa_v1_to_v2(value: Value) -> Value {
    let Value::Object(src) = value else { return value };
    let mut meta = src.get("metadata").cloned().unwrap_or_else(|| json!({}));
    let spec = src.get("spec").cloned().unwrap_or_else(|| json!({}));
    let mut out_spec = json!({});
    for key in ["scaleTargetRef", "minReplicas", "maxReplicas"] {
        if let Some(v) = spec.get(key) {
            out_spec[key] = v.clone();
        }
    }
    let mut metrics: Vec<Value> = Vec::new();
    if let Some(Value::Array(extra)) = take_annotation(&mut meta, METRICS_ANNOTATION) {
        metrics.extend(extra);
    }
    if let Some(cpu) = spec.get("targetCPUUtilizationPercentage").filter(|v| v.is_i64()) {
        metrics.retain(|m| !is_cpu_utilization(m, "target"));
        metrics.insert(
            0,
            json!({"type": "Resource", "resource": {"name": "cpu",
            "target": {"type": "Utilization", "averageUtilization": cpu}}}),
        );
    }
    if !metrics.is_empty() {
        out_spec["metrics"] = Value::Array(metrics);
    }
    if let Some(behavior) = take_annotation(&mut meta, BEHAVIOR_ANNOTATION) {
        out_spec["behavior"] = behavior;
    }
    let mut out = json!({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "spec": out_spec});
    if let Some(status) = src.get("status").filter(|s| s.is_object()) {
        let mut out_status = json!({});
        for key in [
            "observedGeneration",
            "lastScaleTime",
            "currentReplicas",
            "desiredReplicas",
        ] {
            if let Some(v) = status.get(key) {
                out_status[key] = v.clone();
            }
        }
        let mut current: Vec<Value> = match take_annotation(&mut meta, CURRENT_METRICS_ANNOTATION) {
            Some(Value::Array(list)) => list,
            _ => Vec::new(),
        };
        if let Some(cpu) = status.get("currentCPUUtilizationPercentage").filter(|v| v.is_i64()) {
            current.retain(|m| !is_cpu_utilization(m, "current"));
            current.insert(
                0,
                json!({"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": cpu}}}),
            );
        }
        if !current.is_empty() {
            out_status["currentMetrics"] = Value::Array(current);
        }
        if let Some(conditions) = take_annotation(&mut meta, CONDITIONS_ANNOTATION) {
            out_status["conditions"] = conditions;
        }
        out["status"] = out_status;
    }
    out["metadata"] = meta;
    // Stored objects carry the v2 defaults (minReplicas, the 80% CPU metric).
    default_hpa_v2_value(out)
}

fn hpa_v2_to_v1(value: Value) -> Value {
    let Value::Object(src) = value else { return value };
    let mut meta = src.get("metadata").cloned().unwrap_or_else(|| json!({}));
    let spec = src.get("spec").cloned().unwrap_or_else(|| json!({}));
    let mut out_spec = json!({});
    for key in ["scaleTargetRef", "minReplicas", "maxReplicas"] {
        if let Some(v) = spec.get(key) {
            out_spec[key] = v.clone();
        }
    }
    let metrics = spec
        .get("metrics")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let (cpu, other): (Vec<Value>, Vec<Value>) = metrics.into_iter().partition(|m| is_cpu_utilization(m, "target"));
    if let Some(cpu) = cpu.first() {
        out_spec["targetCPUUtilizationPercentage"] = cpu["resource"]["target"]["averageUtilization"].clone();
    }
    if !other.is_empty() {
        put_annotation(&mut meta, METRICS_ANNOTATION, &Value::Array(other));
    }
    if let Some(behavior) = spec.get("behavior").filter(|b| !b.is_null()) {
        put_annotation(&mut meta, BEHAVIOR_ANNOTATION, behavior);
    }
    let mut out = json!({"apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler", "spec": out_spec});
    if let Some(status) = src.get("status").filter(|s| s.is_object()) {
        let mut out_status = json!({});
        for key in [
            "observedGeneration",
            "lastScaleTime",
            "currentReplicas",
            "desiredReplicas",
        ] {
            if let Some(v) = status.get(key) {
                out_status[key] = v.clone();
            }
        }
        // currentReplicas and desiredReplicas are required in v1.
        for key in ["currentReplicas", "desiredReplicas"] {
            if out_status.get(key).is_none() {
                out_status[key] = json!(0);
            }
        }
        let current = status
            .get("currentMetrics")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let (cpu, other): (Vec<Value>, Vec<Value>) =
            current.into_iter().partition(|m| is_cpu_utilization(m, "current"));
        if let Some(cpu) = cpu.first() {
            out_status["currentCPUUtilizationPercentage"] = cpu["resource"]["current"]["averageUtilization"].clone();
        }
        if !other.is_empty() {
            put_annotation(&mut meta, CURRENT_METRICS_ANNOTATION, &Value::Array(other));
        }
        if let Some(conditions) = status
            .get("conditions")
            .filter(|c| c.as_array().is_some_and(|c| !c.is_empty()))
        {
            put_annotation(&mut meta, CONDITIONS_ANNOTATION, conditions);
        }
        out["status"] = out_status;
    }
    out["metadata"] = meta;
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_round_trip() {
        let events = json!({
            "apiVersion": "events.k8s.io/v1", "kind": "Event",
            "metadata": {"name": "web.1", "namespace": "default"},
            "eventTime": "2024-01-01T00:00:00.000000Z",
            "regarding": {"kind": "Pod", "name": "web", "namespace": "default"},
            "related": {"kind": "Node", "name": "n1"},
            "note": "pulled", "reason": "Pulled", "type": "Normal", "action": "Pull",
            "reportingController": "kubelet", "reportingInstance": "n1",
            "series": {"count": 2, "lastObservedTime": "2024-01-01T00:01:00.000000Z"},
            "deprecatedSource": {"component": "kubelet"}, "deprecatedCount": 2,
            "deprecatedFirstTimestamp": "2024-01-01T00:00:00Z", "deprecatedLastTimestamp": "2024-01-01T00:01:00Z"
        });
        let core = events_v1_to_core(events.clone());
        assert_eq!(core["apiVersion"], "v1");
        assert_eq!(core["involvedObject"]["name"], "web");
        assert_eq!(core["message"], "pulled");
        assert_eq!(core["reportingComponent"], "kubelet");
        assert_eq!(core["source"]["component"], "kubelet");
        assert_eq!(core["count"], 2);
        assert_eq!(core["firstTimestamp"], "2024-01-01T00:00:00Z");
        assert!(core.get("regarding").is_none());
        assert_eq!(core_to_events_v1(core), events);
    }

    #[test]
    fn hpa_round_trip() {
        let v1 = json!({
            "apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                "minReplicas": 2, "maxReplicas": 5, "targetCPUUtilizationPercentage": 60},
            "status": {"currentReplicas": 2, "desiredReplicas": 3, "currentCPUUtilizationPercentage": 75}
        });
        let v2 = hpa_v1_to_v2(v1.clone());
        assert_eq!(v2["apiVersion"], "autoscaling/v2");
        assert_eq!(
            v2["spec"]["metrics"],
            json!([{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 60}}}])
        );
        assert_eq!(
            v2["status"]["currentMetrics"][0]["resource"]["current"]["averageUtilization"],
            75
        );
        assert_eq!(hpa_v2_to_v1(v2), v1);

        // Without a CPU target the stored object gets the default 80% metric, which reads back.
        let bare = json!({"apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "x"},
            "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "x"}, "maxReplicas": 3}});
        let stored = hpa_v1_to_v2(bare);
        assert_eq!(stored["spec"]["minReplicas"], 1);
        assert_eq!(hpa_v2_to_v1(stored)["spec"]["targetCPUUtilizationPercentage"], 80);
    }

    #[test]
    fn hpa_v2_only_content_survives_v1() {
        let v2 = json!({
            "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web"}, "minReplicas": 1, "maxReplicas": 5,
                "metrics": [
                    {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 50}}},
                    {"type": "Pods", "pods": {"metric": {"name": "qps"}, "target": {"type": "AverageValue", "averageValue": "10"}}}
                ],
                "behavior": {"scaleDown": {"stabilizationWindowSeconds": 60, "selectPolicy": "Max",
                    "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15}]},
                    "scaleUp": {"stabilizationWindowSeconds": 0, "selectPolicy": "Max", "policies": [
                        {"type": "Pods", "value": 4, "periodSeconds": 15}, {"type": "Percent", "value": 100, "periodSeconds": 15}]}}}
        });
        let v1 = hpa_v2_to_v1(v2.clone());
        assert_eq!(v1["spec"]["targetCPUUtilizationPercentage"], 50);
        assert!(v1["metadata"]["annotations"][METRICS_ANNOTATION].is_string());
        assert_eq!(hpa_v1_to_v2(v1), v2);
    }
}
