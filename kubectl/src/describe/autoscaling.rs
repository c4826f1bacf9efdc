//! HorizontalPodAutoscalers: the autoscaling/v2 report (metrics as `current / target`,
//! replica bounds, scaling behavior, conditions) and the autoscaling/v1 one, as upstream's
//! `HorizontalPodAutoscalerDescriber` prints them.

use jiff::Zoned;
use serde_json::Value;

use super::common::{annotations_multiline, arr, i, labels_multiline, opt_i, rfc1123z, s, str_map, ts};
use super::events::describe_events;
use super::pod::quantity_text;
use super::writer::PrefixWriter;
use crate::cmd::objects::go_quote;

const UNKNOWN: &str = "<unknown>";

/// Go's `(*Quantity).String()`: the canonical quantity, `<nil>` when absent.
fn quantity(v: Option<&Value>) -> String {
    match v.filter(|v| !v.is_null()) {
        Some(q) => quantity_text(q),
        None => "<nil>".into(),
    }
}

/// The value at `ptr` when present and not null.
fn present<'a>(v: &'a Value, ptr: &str) -> Option<&'a Value> {
    v.pointer(ptr).filter(|v| !v.is_null())
}

/// The report for an HPA: autoscaling/v2 unless the object is an autoscaling/v1 one.
pub(crate) fn render_hpa(hpa: &Value, events: Option<&[Value]>, now: &Zoned) -> String {
    let v1 = s(hpa, "/apiVersion") == "autoscaling/v1";
    let mut w = PrefixWriter::new();
    w.write(0, &format!("Name:\t{}\n", s(hpa, "/metadata/name")));
    w.write(0, &format!("Namespace:\t{}\n", s(hpa, "/metadata/namespace")));
    labels_multiline(&mut w, "Labels", &str_map(hpa, "/metadata/labels"));
    annotations_multiline(&mut w, "Annotations", &str_map(hpa, "/metadata/annotations"));
    w.write(
        0,
        &format!(
            "CreationTimestamp:\t{}\n",
            rfc1123z(ts(hpa, "/metadata/creationTimestamp"), now)
        ),
    );
    let kind = s(hpa, "/spec/scaleTargetRef/kind");
    w.write(
        0,
        &format!("Reference:\t{kind}/{}\n", s(hpa, "/spec/scaleTargetRef/name")),
    );
    if v1 {
        if let Some(target) = opt_i(hpa, "/spec/targetCPUUtilizationPercentage") {
            w.write(0, &format!("Target CPU utilization:\t{target}%\n"));
            let current = opt_i(hpa, "/status/currentCPUUtilizationPercentage")
                .map_or_else(|| UNKNOWN.to_string(), |c| c.to_string());
            w.write(0, &format!("Current CPU utilization:\t{current}%\n"));
        }
    } else {
        w.write(0, "Metrics:\t( current / target )\n");
        let current = arr(hpa, "/status/currentMetrics");
        for (n, metric) in arr(hpa, "/spec/metrics").iter().enumerate() {
            write_metric(&mut w, metric, current.get(n));
        }
    }
    let min = opt_i(hpa, "/spec/minReplicas").map_or_else(|| "<unset>".to_string(), |m| m.to_string());
    w.write(0, &format!("Min replicas:\t{min}\n"));
    w.write(0, &format!("Max replicas:\t{}\n", i(hpa, "/spec/maxReplicas")));
    if !v1 && let Some(behavior) = present(hpa, "/spec/behavior") {
        w.write(0, "Behavior:\n");
        write_direction(&mut w, "Scale Up", present(behavior, "/scaleUp"));
        write_direction(&mut w, "Scale Down", present(behavior, "/scaleDown"));
    }
    w.write(0, &format!("{kind} pods:\t"));
    w.write(
        0,
        &format!(
            "{} current / {} desired\n",
            i(hpa, "/status/currentReplicas"),
            i(hpa, "/status/desiredReplicas")
        ),
    );
    let conditions = arr(hpa, "/status/conditions");
    if !v1 && !conditions.is_empty() {
        w.write(0, "Conditions:\n");
        w.write(1, "Type\tStatus\tReason\tMessage\n");
        w.write(1, "----\t------\t------\t-------\n");
        for c in conditions {
            w.write(
                1,
                &format!(
                    "{}\t{}\t{}\t{}\n",
                    s(c, "/type"),
                    s(c, "/status"),
                    s(c, "/reason"),
                    s(c, "/message")
                ),
            );
        }
    }
    describe_events(events, &mut w, now);
    w.finish()
}

/// A status value of the current metric when its `source` part is reported.
fn current_of(current: Option<&Value>, source: &str, field: &str) -> Option<String> {
    let part = present(current?, &format!("/{source}"))?;
    Some(quantity(present(part, &format!("/current/{field}"))))
}

/// `<current utilization>% (<current average value>)` when the utilization is reported.
fn utilization_of(current: Option<&Value>, source: &str) -> String {
    current
        .and_then(|c| present(c, &format!("/{source}")))
        .and_then(|part| {
            let util = opt_i(part, "/current/averageUtilization")?;
            Some(format!(
                "{util}% ({})",
                quantity(present(part, "/current/averageValue"))
            ))
        })
        .unwrap_or_else(|| UNKNOWN.into())
}

/// One `Metrics:` line: what is measured, then `current / target`.
fn write_metric(w: &mut PrefixWriter, metric: &Value, current: Option<&Value>) {
    let known = |source: &str, field: &str| current_of(current, source, field).unwrap_or_else(|| UNKNOWN.into());
    match s(metric, "/type") {
        "External" => {
            let name = go_quote(s(metric, "/external/metric/name"));
            if let Some(avg) = present(metric, "/external/target/averageValue") {
                let cur = current
                    .and_then(|c| present(c, "/external/current/averageValue"))
                    .map_or_else(|| UNKNOWN.to_string(), quantity_text);
                w.write(
                    1,
                    &format!("{name} (target average value):\t{cur} / {}\n", quantity_text(avg)),
                );
            } else {
                let target = quantity(present(metric, "/external/target/value"));
                w.write(
                    1,
                    &format!("{name} (target value):\t{} / {target}\n", known("external", "value")),
                );
            }
        }
        "Pods" => {
            let name = go_quote(s(metric, "/pods/metric/name"));
            let target = quantity(present(metric, "/pods/target/averageValue"));
            w.write(
                1,
                &format!("{name} on pods:\t{} / {target}\n", known("pods", "averageValue")),
            );
        }
        "Object" => {
            w.write(
                1,
                &format!(
                    "\"{}\" on {}/{} ",
                    s(metric, "/object/metric/name"),
                    s(metric, "/object/describedObject/kind"),
                    s(metric, "/object/describedObject/name")
                ),
            );
            let (label, field) = if s(metric, "/object/target/type") == "AverageValue" {
                ("target average value", "averageValue")
            } else {
                ("target value", "value")
            };
            let target = quantity(present(metric, &format!("/object/target/{field}")));
            w.write(0, &format!("({label}):\t{} / {target}\n", known("object", field)));
        }
        "Resource" => {
            w.write(1, &format!("resource {} on pods", s(metric, "/resource/name")));
            write_resource_target(w, metric, current, "resource");
        }
        "ContainerResource" => {
            w.write(
                1,
                &format!(
                    "resource {} of container \"{}\" on pods",
                    s(metric, "/containerResource/name"),
                    s(metric, "/containerResource/container")
                ),
            );
            write_resource_target(w, metric, current, "containerResource");
        }
        other => w.write(1, &format!("<unknown metric type {}>\n", go_quote(other))),
    }
}

/// The rest of a (container) resource metric line: an average value, or a utilization.
fn write_resource_target(w: &mut PrefixWriter, metric: &Value, current: Option<&Value>, source: &str) {
    if let Some(avg) = present(metric, &format!("/{source}/target/averageValue")) {
        let cur = current_of(current, source, "averageValue").unwrap_or_else(|| UNKNOWN.into());
        w.write(0, &format!(":\t{cur} / {}\n", quantity_text(avg)));
    } else {
        let target = opt_i(metric, &format!("/{source}/target/averageUtilization"))
            .map_or_else(|| "<auto>".to_string(), |t| format!("{t}%"));
        let cur = utilization_of(current, source);
        w.write(1, &format!("(as a percentage of request):\t{cur} / {target}\n"));
    }
}

/// The `Scale Up:` / `Scale Down:` block of the behavior, when that direction is set.
fn write_direction(w: &mut PrefixWriter, direction: &str, rules: Option<&Value>) {
    let Some(rules) = rules else { return };
    w.write(1, &format!("{direction}:\n"));
    if let Some(window) = opt_i(rules, "/stabilizationWindowSeconds") {
        w.write(2, &format!("Stabilization Window: {window} seconds\n"));
    }
    let policies = arr(rules, "/policies");
    if policies.is_empty() {
        return;
    }
    let select = match s(rules, "/selectPolicy") {
        "" => "Max",
        p => p,
    };
    w.write(2, &format!("Select Policy: {select}\n"));
    w.write(2, "Policies:\n");
    for p in policies {
        w.write(
            3,
            &format!(
                "- Type: {}\tValue: {}\tPeriod: {} seconds\n",
                s(p, "/type"),
                i(p, "/value"),
                i(p, "/periodSeconds")
            ),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn metric_text(metric: Value, current: Option<Value>) -> String {
        let mut w = PrefixWriter::new();
        write_metric(&mut w, &metric, current.as_ref());
        w.unaligned()
    }

    #[test]
    fn resource_utilization() {
        let m = json!({"type": "Resource", "resource": {"name": "cpu",
            "target": {"type": "Utilization", "averageUtilization": 50}}});
        assert_eq!(
            metric_text(m.clone(), None),
            "  resource cpu on pods  (as a percentage of request):\t<unknown> / 50%\n"
        );
        let cur = json!({"type": "Resource", "resource": {"name": "cpu",
            "current": {"averageUtilization": 12, "averageValue": "120m"}}});
        assert_eq!(
            metric_text(m, Some(cur)),
            "  resource cpu on pods  (as a percentage of request):\t12% (120m) / 50%\n"
        );
    }

    #[test]
    fn resource_average_value_and_unknown_type() {
        let m = json!({"type": "Resource", "resource": {"name": "memory",
            "target": {"type": "AverageValue", "averageValue": "100Mi"}}});
        let cur = json!({"resource": {"current": {"averageValue": "50Mi"}}});
        assert_eq!(metric_text(m, Some(cur)), "  resource memory on pods:\t50Mi / 100Mi\n");
        assert_eq!(
            metric_text(json!({"type": "Weird"}), None),
            "  <unknown metric type \"Weird\">\n"
        );
    }

    #[test]
    fn pods_object_external_container() {
        let pods = json!({"type": "Pods", "pods": {"metric": {"name": "qps"},
            "target": {"type": "AverageValue", "averageValue": "1k"}}});
        assert_eq!(metric_text(pods, None), "  \"qps\" on pods:\t<unknown> / 1k\n");
        let object = json!({"type": "Object", "object": {"metric": {"name": "hits"},
            "describedObject": {"kind": "Service", "name": "web"},
            "target": {"type": "Value", "value": "10"}}});
        assert_eq!(
            metric_text(object, Some(json!({"object": {"current": {}}}))),
            "  \"hits\" on Service/web (target value):\t<nil> / 10\n"
        );
        let external = json!({"type": "External", "external": {"metric": {"name": "queue"},
            "target": {"type": "AverageValue", "averageValue": "30"}}});
        assert_eq!(
            metric_text(external, None),
            "  \"queue\" (target average value):\t<unknown> / 30\n"
        );
        let container = json!({"type": "ContainerResource", "containerResource": {"name": "cpu",
            "container": "app", "target": {"type": "Utilization"}}});
        assert_eq!(
            metric_text(container, None),
            "  resource cpu of container \"app\" on pods  (as a percentage of request):\t<unknown> / <auto>\n"
        );
    }

    #[test]
    fn autoscaling_v1_report() {
        use jiff::tz::TimeZone;
        let hpa = json!({"apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "old", "namespace": "ns", "creationTimestamp": "2026-01-02T03:04:05Z"},
            "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web"},
                     "maxReplicas": 5, "targetCPUUtilizationPercentage": 70},
            "status": {"currentReplicas": 1, "desiredReplicas": 2}});
        let now = Zoned::new("2026-01-02T03:05:05Z".parse().expect("time"), TimeZone::UTC);
        assert_eq!(
            render_hpa(&hpa, Some(&[]), &now),
            "Name:                     old\n\
             Namespace:                ns\n\
             Labels:                   <none>\n\
             Annotations:              <none>\n\
             CreationTimestamp:        Fri, 02 Jan 2026 03:04:05 +0000\n\
             Reference:                Deployment/web\n\
             Target CPU utilization:   70%\n\
             Current CPU utilization:  <unknown>%\n\
             Min replicas:             <unset>\n\
             Max replicas:             5\n\
             Deployment pods:          1 current / 2 desired\n\
             Events:                   <none>\n"
        );
    }

    #[test]
    fn behavior_defaults_select_policy() {
        let mut w = PrefixWriter::new();
        let rules = json!({"stabilizationWindowSeconds": 0,
            "policies": [{"type": "Pods", "value": 4, "periodSeconds": 15}]});
        write_direction(&mut w, "Scale Up", Some(&rules));
        assert_eq!(
            w.unaligned(),
            "  Scale Up:\n    Stabilization Window: 0 seconds\n    Select Policy: Max\n    Policies:\n      - Type: Pods\tValue: 4\tPeriod: 15 seconds\n"
        );
    }
}
