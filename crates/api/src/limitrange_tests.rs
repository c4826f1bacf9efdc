//! Table tests of LimitRange defaulting and validation against upstream's LimitRanger.

use serde_json::{Value, json};

use super::*;

fn range(limits: Value) -> Value {
    json!({"metadata": {"name": "lr"}, "spec": {"limits": limits}})
}

fn pod(containers: Value) -> Value {
    json!({"metadata": {"name": "p"}, "spec": {"containers": containers}})
}

#[test]
fn defaults_fill_only_what_is_missing_and_annotate() {
    let lr = range(json!([{"type": "Container",
        "default": {"cpu": "500m", "memory": "256Mi"},
        "defaultRequest": {"cpu": "100m", "memory": "128Mi"}}]));
    let mut p = pod(json!([
        {"name": "bare"},
        {"name": "partial", "resources": {"requests": {"cpu": "200m"}, "limits": {"memory": "1Gi"}}},
        {"name": "full", "resources": {"requests": {"cpu": "1", "memory": "1Mi"}, "limits": {"cpu": "1", "memory": "1Mi"}}}
    ]));
    p["spec"]["initContainers"] = json!([{"name": "init"}]);
    assert!(default_pod(&lr, &mut p));
    assert_eq!(
        p["spec"]["containers"][0]["resources"],
        json!({"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"cpu": "500m", "memory": "256Mi"}})
    );
    assert_eq!(
        p["spec"]["containers"][1]["resources"],
        json!({"requests": {"cpu": "200m", "memory": "128Mi"}, "limits": {"cpu": "500m", "memory": "1Gi"}})
    );
    assert_eq!(p["spec"]["initContainers"][0]["resources"]["requests"]["cpu"], "100m");
    assert_eq!(
        p["metadata"]["annotations"][ANNOTATION],
        "LimitRanger plugin set: cpu, memory request for container bare; cpu, memory limit for container bare; \
         memory request for container partial; cpu limit for container partial; \
         cpu, memory request for init container init; cpu, memory limit for init container init"
    );
}

#[test]
fn nothing_to_default_leaves_the_pod_alone() {
    let cases = [
        (
            "no container item",
            range(json!([{"type": "Pod", "max": {"cpu": "1"}}])),
        ),
        (
            "everything given",
            range(json!([{"type": "Container", "default": {"cpu": "1"}, "defaultRequest": {"cpu": "1"}}])),
        ),
    ];
    for (name, lr) in cases {
        let mut p = pod(json!([{"name": "c", "resources": {"requests": {"cpu": "1"}, "limits": {"cpu": "2"}}}]));
        let before = p.clone();
        assert!(!default_pod(&lr, &mut p), "{name}");
        assert_eq!(p, before, "{name}");
    }
}

fn refused(lr: &Value, plural: &str, object: &Value) -> Option<String> {
    validate(lr, "", plural, object).err().map(|r| r.0)
}

#[test]
fn container_and_pod_constraints_with_upstream_messages() {
    let resources = |requests: Value, limits: Value| {
        pod(json!([{"name": "c", "resources": {"requests": requests, "limits": limits}}]))
    };
    let cases: &[(&str, Value, Value, Option<&str>)] = &[
        (
            "within range",
            json!([{"type": "Container", "min": {"cpu": "100m"}, "max": {"cpu": "1"}}]),
            resources(json!({"cpu": "200m"}), json!({"cpu": "500m"})),
            None,
        ),
        (
            "below min",
            json!([{"type": "Container", "min": {"cpu": "100m"}}]),
            resources(json!({"cpu": "50m"}), json!({})),
            Some("minimum cpu usage per Container is 100m, but request is 50m"),
        ),
        (
            "no request for a min",
            json!([{"type": "Container", "min": {"memory": "64Mi"}}]),
            resources(json!({}), json!({})),
            Some("minimum memory usage per Container is 64Mi.  No request is specified"),
        ),
        (
            "limit below min",
            json!([{"type": "Container", "min": {"cpu": "100m"}}]),
            resources(json!({"cpu": "100m"}), json!({"cpu": "50m"})),
            Some("minimum cpu usage per Container is 100m, but limit is 50m"),
        ),
        (
            "no limit for a max",
            json!([{"type": "Container", "max": {"cpu": "1"}}]),
            resources(json!({"cpu": "1"}), json!({})),
            Some("maximum cpu usage per Container is 1.  No limit is specified"),
        ),
        (
            "request above max",
            json!([{"type": "Container", "max": {"cpu": "1"}}]),
            resources(json!({"cpu": "2"}), json!({"cpu": "1"})),
            Some("maximum cpu usage per Container is 1, but request is 2"),
        ),
        (
            "ratio exceeded",
            json!([{"type": "Container", "maxLimitRequestRatio": {"cpu": "2"}}]),
            resources(json!({"cpu": "100m"}), json!({"cpu": "250m"})),
            Some("cpu max limit to request ratio per Container is 2, but provided ratio is 2.500000"),
        ),
        (
            "ratio without request",
            json!([{"type": "Container", "maxLimitRequestRatio": {"cpu": "2"}}]),
            resources(json!({}), json!({"cpu": "250m"})),
            Some("cpu max limit to request ratio per Container is 2, but no request is specified or request is 0"),
        ),
        (
            "ratio without limit",
            json!([{"type": "Container", "maxLimitRequestRatio": {"cpu": "2"}}]),
            resources(json!({"cpu": "100m"}), json!({})),
            Some("cpu max limit to request ratio per Container is 2, but no limit is specified or limit is 0"),
        ),
        (
            "several errors are bracketed",
            json!([{"type": "Container", "min": {"cpu": "100m"}}, {"type": "Pod", "max": {"memory": "1Gi"}}]),
            resources(json!({"cpu": "50m"}), json!({"memory": "2Gi"})),
            Some(
                "[minimum cpu usage per Container is 100m, but request is 50m, maximum memory usage per Pod is 1Gi, but limit is 2Gi]",
            ),
        ),
    ];
    for (name, limits, object, want) in cases {
        assert_eq!(
            refused(&range(limits.clone()), "pods", object).as_deref(),
            *want,
            "{name}"
        );
    }
}

#[test]
fn pod_items_sum_containers_and_count_sidecars() {
    let lr = range(json!([{"type": "Pod", "max": {"memory": "1Gi"}}]));
    let mut p = pod(json!([
        {"name": "a", "resources": {"limits": {"memory": "512Mi"}}},
        {"name": "b", "resources": {"limits": {"memory": "256Mi"}}}
    ]));
    assert_eq!(refused(&lr, "pods", &p), None);
    // A sidecar runs alongside the containers: 768Mi + 512Mi.
    p["spec"]["initContainers"] =
        json!([{"name": "s", "restartPolicy": "Always", "resources": {"limits": {"memory": "512Mi"}}}]);
    assert_eq!(
        refused(&lr, "pods", &p).as_deref(),
        Some("maximum memory usage per Pod is 1Gi, but limit is 1280Mi")
    );
    // A plain init container only raises the total to its own need.
    p["spec"]["initContainers"] = json!([{"name": "i", "resources": {"limits": {"memory": "2Gi"}}}]);
    assert_eq!(
        refused(&lr, "pods", &p).as_deref(),
        Some("maximum memory usage per Pod is 1Gi, but limit is 2Gi")
    );
    // Every container must give the limit for the pod to have one.
    let p = pod(json!([{"name": "a", "resources": {"limits": {"memory": "1Mi"}}}, {"name": "b"}]));
    assert_eq!(refused(&lr, "pods", &p), None);
}

#[test]
fn claims_are_checked_on_their_storage_request() {
    let lr = range(json!([{"type": "PersistentVolumeClaim", "min": {"storage": "1Gi"}, "max": {"storage": "10Gi"}}]));
    let claim = |size: &str| json!({"spec": {"resources": {"requests": {"storage": size}}}});
    assert_eq!(refused(&lr, "persistentvolumeclaims", &claim("5Gi")), None);
    assert_eq!(
        refused(&lr, "persistentvolumeclaims", &claim("20Gi")).as_deref(),
        Some("maximum storage usage per PersistentVolumeClaim is 10Gi, but request is 20Gi")
    );
    assert_eq!(
        refused(&lr, "persistentvolumeclaims", &claim("500Mi")).as_deref(),
        Some("minimum storage usage per PersistentVolumeClaim is 1Gi, but request is 500Mi")
    );
    assert_eq!(
        refused(&lr, "persistentvolumeclaims", &json!({"spec": {}})).as_deref(),
        Some(
            "[minimum storage usage per PersistentVolumeClaim is 1Gi.  No request is specified, maximum storage usage per PersistentVolumeClaim is 10Gi.  No request is specified]"
        )
    );
    // Claims are not pods: container items do not apply to them.
    let containers = range(json!([{"type": "Container", "max": {"cpu": "1"}}]));
    assert_eq!(refused(&containers, "persistentvolumeclaims", &claim("1Gi")), None);
}

#[test]
fn which_writes_are_looked_at() {
    assert!(applies("", "pods", false));
    assert!(!applies("", "pods", true));
    assert!(applies("", "persistentvolumeclaims", true));
    assert!(!applies("", "services", false));
    assert!(!applies("apps", "pods", false));
}
