//! The node lifecycle controller's pure decisions: the conditions of a Node whose kubelet
//! stopped posting (Unknown, `NodeStatusUnknown`), the not-ready / unreachable taints that
//! follow its Ready condition, and when each pod on a NoExecute-tainted Node is evicted
//! given its tolerations.

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::core::v1::{Node, NodeCondition, Pod, Taint, Toleration};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

/// The taint of a Node whose Ready condition is Unknown.
pub const UNREACHABLE: &str = "node.kubernetes.io/unreachable";
/// The taint of a Node whose Ready condition is False.
pub const NOT_READY: &str = "node.kubernetes.io/not-ready";
/// The conditions the kubelet posts, set to Unknown when it stops.
pub const KUBELET_CONDITIONS: &[&str] = &["Ready", "MemoryPressure", "DiskPressure", "PIDPressure"];

/// The Node's conditions after `healthy` (the kubelet posted within the grace period):
/// `Some` with every kubelet condition set to Unknown when it is not healthy and they are not
/// Unknown already; `None` when nothing changes.
pub fn conditions(node: &Node, healthy: bool, now: Timestamp) -> Option<Vec<NodeCondition>> {
    if healthy {
        return None;
    }
    let mut conditions = node
        .status
        .as_ref()
        .and_then(|status| status.conditions.clone())
        .unwrap_or_default();
    let mut changed = false;
    for type_ in KUBELET_CONDITIONS {
        match conditions.iter_mut().find(|condition| condition.type_ == *type_) {
            Some(condition) => {
                if condition.status != "Unknown" {
                    condition.status = "Unknown".into();
                    condition.reason = Some("NodeStatusUnknown".into());
                    condition.message = Some("Kubelet stopped posting node status.".into());
                    condition.last_transition_time = Some(Time(now));
                    changed = true;
                }
            }
            None => {
                conditions.push(NodeCondition {
                    type_: type_.to_string(),
                    status: "Unknown".into(),
                    reason: Some("NodeStatusNeverUpdated".into()),
                    message: Some("Kubelet never posted node status.".into()),
                    last_heartbeat_time: node.metadata.creation_timestamp.clone(),
                    last_transition_time: Some(Time(now)),
                });
                changed = true;
            }
        }
    }
    changed.then_some(conditions)
}

/// The status of the Ready condition (`True`, `False`, `Unknown`), `None` without one.
pub fn ready_status(conditions: &[NodeCondition]) -> Option<&str> {
    conditions
        .iter()
        .find(|condition| condition.type_ == "Ready")
        .map(|condition| condition.status.as_str())
}

/// The Node's taints given its Ready status: `unreachable` for Unknown, `not-ready` for
/// False (NoSchedule and NoExecute each), neither for True. `None` when they do not change.
pub fn taints(node: &Node, ready: Option<&str>, now: Timestamp) -> Option<Vec<Taint>> {
    let current = node
        .spec
        .as_ref()
        .and_then(|spec| spec.taints.clone())
        .unwrap_or_default();
    let wanted_key = match ready {
        Some("Unknown") => Some(UNREACHABLE),
        Some("False") => Some(NOT_READY),
        _ => None,
    };
    let mut taints: Vec<Taint> = current
        .iter()
        .filter(|taint| {
            let ours = taint.key == UNREACHABLE || taint.key == NOT_READY;
            !ours || Some(taint.key.as_str()) == wanted_key
        })
        .cloned()
        .collect();
    if let Some(key) = wanted_key {
        for effect in ["NoSchedule", "NoExecute"] {
            if !taints.iter().any(|taint| taint.key == key && taint.effect == effect) {
                taints.push(Taint {
                    key: key.into(),
                    effect: effect.into(),
                    value: None,
                    time_added: (effect == "NoExecute").then_some(Time(now)),
                });
            }
        }
    }
    (taints != current).then_some(taints)
}

/// Upstream's `ToleratesTaint`.
pub fn tolerates(toleration: &Toleration, taint: &Taint) -> bool {
    if let Some(effect) = toleration.effect.as_deref().filter(|e| !e.is_empty())
        && effect != taint.effect
    {
        return false;
    }
    let key = toleration.key.as_deref().unwrap_or_default();
    if !key.is_empty() && key != taint.key {
        return false;
    }
    match toleration.operator.as_deref().unwrap_or("Equal") {
        "Exists" => true,
        "Equal" | "" => toleration.value.as_deref().unwrap_or_default() == taint.value.as_deref().unwrap_or_default(),
        _ => false,
    }
}

/// When `pod` must be evicted from a Node with `taints`: `Some(ZERO)` at once (a NoExecute
/// taint it does not tolerate, or its tolerationSeconds for it have passed), `Some(d)` in
/// `d`, `None` never (every NoExecute taint tolerated forever, or no such taint).
pub fn eviction_delay(pod: &Pod, taints: &[Taint], now: Timestamp) -> Option<Duration> {
    let tolerations = pod
        .spec
        .as_ref()
        .and_then(|spec| spec.tolerations.clone())
        .unwrap_or_default();
    let mut earliest: Option<Duration> = None;
    for taint in taints.iter().filter(|taint| taint.effect == "NoExecute") {
        let matching: Vec<&Toleration> = tolerations.iter().filter(|t| tolerates(t, taint)).collect();
        if matching.is_empty() {
            return Some(Duration::ZERO);
        }
        // The shortest tolerationSeconds wins; any toleration without one tolerates forever
        // only if no matching one limits it (upstream's getMinTolerationTime).
        let seconds = matching.iter().filter_map(|t| t.toleration_seconds).min();
        let Some(seconds) = seconds else {
            continue;
        };
        let added = taint.time_added.as_ref().map(|time| time.0).unwrap_or(now);
        let due = added
            .checked_add(SignedDuration::from_secs(seconds.max(0)))
            .unwrap_or(added);
        let left = due.duration_since(now);
        let left = if left.is_positive() {
            left.unsigned_abs()
        } else {
            Duration::ZERO
        };
        earliest = Some(earliest.map_or(left, |e| e.min(left)));
    }
    earliest
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::testing::{ago, now};
    use k8s_openapi::api::core::v1::{NodeSpec, NodeStatus, PodSpec};

    fn node(ready: &str, taints: Vec<Taint>) -> Node {
        Node {
            spec: Some(NodeSpec {
                taints: Some(taints),
                ..Default::default()
            }),
            status: Some(NodeStatus {
                conditions: Some(vec![NodeCondition {
                    type_: "Ready".into(),
                    status: ready.into(),
                    reason: Some("KubeletReady".into()),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn taint(key: &str, effect: &str, added_secs_ago: i64) -> Taint {
        Taint {
            key: key.into(),
            effect: effect.into(),
            value: None,
            time_added: Some(ago(added_secs_ago)),
        }
    }

    #[test]
    fn silent_kubelet_makes_conditions_unknown() {
        let ready = node("True", vec![]);
        assert_eq!(conditions(&ready, true, now()), None);
        let updated = conditions(&ready, false, now()).expect("changed");
        assert_eq!(updated.len(), 4);
        assert!(updated.iter().all(|c| c.status == "Unknown"));
        assert_eq!(updated[0].reason.as_deref(), Some("NodeStatusUnknown"));
        assert_eq!(
            updated[0].message.as_deref(),
            Some("Kubelet stopped posting node status.")
        );
        assert_eq!(updated[1].reason.as_deref(), Some("NodeStatusNeverUpdated"));
        let mut unknown = ready.clone();
        unknown.status.as_mut().unwrap().conditions = Some(updated);
        assert_eq!(conditions(&unknown, false, now()), None, "already Unknown");
    }

    #[test]
    fn taints_follow_ready() {
        let keys =
            |taints: Vec<Taint>| -> Vec<(String, String)> { taints.into_iter().map(|t| (t.key, t.effect)).collect() };
        let other = taint("dedicated", "NoSchedule", 1);
        let plain = node("True", vec![other.clone()]);
        assert_eq!(taints(&plain, Some("True"), now()), None);
        assert_eq!(
            keys(taints(&plain, Some("Unknown"), now()).expect("tainted")),
            vec![
                ("dedicated".to_string(), "NoSchedule".to_string()),
                (UNREACHABLE.to_string(), "NoSchedule".to_string()),
                (UNREACHABLE.to_string(), "NoExecute".to_string()),
            ]
        );
        let unreachable = node(
            "Unknown",
            vec![
                other.clone(),
                taint(UNREACHABLE, "NoSchedule", 5),
                taint(UNREACHABLE, "NoExecute", 5),
            ],
        );
        assert_eq!(taints(&unreachable, Some("Unknown"), now()), None);
        assert_eq!(
            keys(taints(&unreachable, Some("False"), now()).expect("swapped")),
            vec![
                ("dedicated".to_string(), "NoSchedule".to_string()),
                (NOT_READY.to_string(), "NoSchedule".to_string()),
                (NOT_READY.to_string(), "NoExecute".to_string()),
            ]
        );
        assert_eq!(
            keys(taints(&unreachable, Some("True"), now()).expect("cleared")),
            vec![("dedicated".to_string(), "NoSchedule".to_string())]
        );
    }

    fn pod(tolerations: Vec<Toleration>) -> Pod {
        Pod {
            spec: Some(PodSpec {
                tolerations: Some(tolerations),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn toleration(key: &str, seconds: Option<i64>) -> Toleration {
        Toleration {
            key: Some(key.into()),
            operator: Some("Exists".into()),
            effect: Some("NoExecute".into()),
            toleration_seconds: seconds,
            value: None,
        }
    }

    #[test]
    fn eviction_waits_for_toleration_seconds() {
        let taints = vec![
            taint(UNREACHABLE, "NoExecute", 100),
            taint(UNREACHABLE, "NoSchedule", 100),
        ];
        let cases = [
            ("no toleration: at once", pod(vec![]), Some(Duration::ZERO)),
            (
                "default 300s, tainted 100s ago",
                pod(vec![toleration(UNREACHABLE, Some(300))]),
                Some(Duration::from_secs(200)),
            ),
            ("tolerated forever", pod(vec![toleration(UNREACHABLE, None)]), None),
            (
                "toleration of another taint does not help",
                pod(vec![toleration(NOT_READY, Some(300))]),
                Some(Duration::ZERO),
            ),
            (
                "time is up",
                pod(vec![toleration(UNREACHABLE, Some(30))]),
                Some(Duration::ZERO),
            ),
            (
                "empty key with Exists tolerates everything",
                pod(vec![Toleration {
                    operator: Some("Exists".into()),
                    ..Default::default()
                }]),
                None,
            ),
        ];
        for (name, pod, expected) in cases {
            assert_eq!(eviction_delay(&pod, &taints, now()), expected, "{name}");
        }
        assert_eq!(eviction_delay(&pod(vec![]), &[], now()), None);
    }
}
