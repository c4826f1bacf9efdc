//! Deployment helpers, pure: the pod-template hash, annotations, surge and unavailability
//! fenceposts, revisions, template equality, conditions and the computed status.

use std::collections::BTreeMap;

use jiff::Timestamp;
use k8s_openapi::api::apps::v1::{Deployment, DeploymentCondition, DeploymentStatus, ReplicaSet};
use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

/// The label and selector key distinguishing a Deployment's ReplicaSets.
pub const POD_TEMPLATE_HASH: &str = "pod-template-hash";
/// The revision of a ReplicaSet (and of its Deployment's current one).
pub const REVISION: &str = "deployment.kubernetes.io/revision";
/// Earlier revisions a reused ReplicaSet had.
pub const REVISION_HISTORY: &str = "deployment.kubernetes.io/revision-history";
/// `spec.replicas` of the Deployment when the ReplicaSet was last scaled.
pub const DESIRED_REPLICAS: &str = "deployment.kubernetes.io/desired-replicas";
/// `spec.replicas + maxSurge` when the ReplicaSet was last scaled.
pub const MAX_REPLICAS: &str = "deployment.kubernetes.io/max-replicas";
/// The reason for the change, copied from the Deployment to its ReplicaSets.
pub const CHANGE_CAUSE: &str = "kubernetes.io/change-cause";

/// Annotations never copied from a Deployment to its ReplicaSets.
const SKIP_COPY: &[&str] = &[
    "kubectl.kubernetes.io/last-applied-configuration",
    REVISION,
    REVISION_HISTORY,
    DESIRED_REPLICAS,
    MAX_REPLICAS,
    "deprecated.deployment.rollback.to",
];

/// The Progressing condition type and its reasons.
pub const PROGRESSING: &str = "Progressing";
/// The Available condition type.
pub const AVAILABLE: &str = "Available";
pub const REASON_NEW_RS_AVAILABLE: &str = "NewReplicaSetAvailable";
pub const REASON_RS_UPDATED: &str = "ReplicaSetUpdated";
pub const REASON_NEW_RS_CREATED: &str = "NewReplicaSetCreated";
pub const REASON_FOUND_NEW_RS: &str = "FoundNewReplicaSet";
pub const REASON_TIMED_OUT: &str = "ProgressDeadlineExceeded";
pub const REASON_PAUSED: &str = "DeploymentPaused";
pub const REASON_RESUMED: &str = "DeploymentResumed";
pub const REASON_MIN_AVAILABLE: &str = "MinimumReplicasAvailable";
pub const REASON_MIN_UNAVAILABLE: &str = "MinimumReplicasUnavailable";

/// FNV-32a of the template (as JSON) and the collision count, encoded with upstream's
/// `SafeEncodeString` alphabet: a short string of consonants and digits that can never
/// form a bad word.
pub fn template_hash(template: &PodTemplateSpec, collision_count: Option<i32>) -> String {
    let mut hash: u32 = 0x811c_9dc5;
    let mut feed = |bytes: &[u8]| {
        for byte in bytes {
            hash ^= u32::from(*byte);
            hash = hash.wrapping_mul(0x0100_0193);
        }
    };
    let canonical = normalize(serde_json::to_value(template).unwrap_or_default());
    feed(canonical.to_string().as_bytes());
    if let Some(count) = collision_count {
        feed(&count.to_le_bytes());
    }
    safe_encode(&hash.to_string())
}

fn safe_encode(text: &str) -> String {
    const ALPHANUMS: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    text.bytes()
        .map(|byte| ALPHANUMS[usize::from(byte) % ALPHANUMS.len()] as char)
        .collect()
}

/// `spec.replicas`, defaulted to 1.
pub fn replicas(d: &Deployment) -> i32 {
    d.spec.replicas.unwrap_or(1)
}

/// `spec.replicas` of a ReplicaSet, defaulted to 1.
pub fn rs_replicas(rs: &ReplicaSet) -> i32 {
    rs.spec.replicas.unwrap_or(1)
}

/// True for the RollingUpdate strategy (the default).
pub fn is_rolling(d: &Deployment) -> bool {
    d.spec
        .strategy
        .as_ref()
        .and_then(|strategy| strategy.type_.as_deref())
        .is_none_or(|kind| kind == "RollingUpdate")
}

/// An int-or-percent scaled against `total`, rounding up or down like upstream.
pub fn scaled_value(value: &IntOrString, total: i32, round_up: bool) -> i32 {
    match value {
        IntOrString::Int(n) => *n,
        IntOrString::String(text) => {
            let Some(percent) = text.strip_suffix('%').and_then(|p| p.trim().parse::<i64>().ok()) else {
                return text.parse().unwrap_or(0);
            };
            let product = percent * i64::from(total);
            let scaled = if round_up {
                (product + 99).div_euclid(100)
            } else {
                product.div_euclid(100)
            };
            scaled.clamp(0, i64::from(i32::MAX)) as i32
        }
    }
}

/// Upstream's `ResolveFenceposts`: (maxSurge, maxUnavailable) in pods; surge rounds up,
/// unavailability rounds down, and both zero means one unavailable.
pub fn fenceposts(d: &Deployment) -> (i32, i32) {
    if !is_rolling(d) {
        return (0, 0);
    }
    let rolling = d
        .spec
        .strategy
        .as_ref()
        .and_then(|strategy| strategy.rolling_update.as_ref());
    let quarter = IntOrString::String("25%".into());
    let surge = rolling
        .and_then(|r| r.max_surge.clone())
        .unwrap_or_else(|| quarter.clone());
    let unavailable = rolling.and_then(|r| r.max_unavailable.clone()).unwrap_or(quarter);
    let desired = replicas(d);
    let surge = scaled_value(&surge, desired, true);
    let unavailable = scaled_value(&unavailable, desired, false);
    if surge == 0 && unavailable == 0 {
        return (0, 1);
    }
    (surge, unavailable)
}

/// Max surge in pods (0 for Recreate).
pub fn max_surge(d: &Deployment) -> i32 {
    fenceposts(d).0
}

/// Max unavailable in pods, never more than the desired replicas (0 for Recreate).
pub fn max_unavailable(d: &Deployment) -> i32 {
    if !is_rolling(d) || replicas(d) == 0 {
        return 0;
    }
    fenceposts(d).1.min(replicas(d))
}

/// The numeric annotation `key` of `rs`.
pub fn int_annotation(rs: &ReplicaSet, key: &str) -> Option<i64> {
    rs.metadata.annotations.as_ref()?.get(key)?.parse().ok()
}

/// The revision of `rs` (0 without one).
pub fn revision(rs: &ReplicaSet) -> i64 {
    int_annotation(rs, REVISION).unwrap_or(0)
}

/// The Deployment's annotations that its ReplicaSets carry too.
pub fn copyable_annotations(d: &Deployment) -> BTreeMap<String, String> {
    d.metadata
        .annotations
        .clone()
        .unwrap_or_default()
        .into_iter()
        .filter(|(key, _)| !SKIP_COPY.contains(&key.as_str()))
        .collect()
}

/// True when two pod templates are equal apart from the `pod-template-hash` label.
pub fn equal_ignore_hash(a: &PodTemplateSpec, b: &PodTemplateSpec) -> bool {
    let strip = |template: &PodTemplateSpec| {
        let mut template = template.clone();
        if let Some(meta) = template.metadata.as_mut()
            && let Some(labels) = meta.labels.as_mut()
        {
            labels.remove(POD_TEMPLATE_HASH);
            if labels.is_empty() {
                meta.labels = None;
            }
        }
        normalize(serde_json::to_value(template).unwrap_or_default())
    };
    strip(a) == strip(b)
}

/// Drops nulls, empty objects and empty arrays, recursively: Go's API structs make no
/// difference between an absent struct and an empty one (`resources: {}`), and clients
/// such as `kubectl rollout undo` round-trip templates through them.
fn normalize(value: serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(key, value)| (key, normalize(value)))
                .filter(|(_, value)| !is_empty(value))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(normalize).collect()),
        other => other,
    }
}

fn is_empty(value: &serde_json::Value) -> bool {
    match value {
        serde_json::Value::Null => true,
        serde_json::Value::Object(map) => map.is_empty(),
        serde_json::Value::Array(items) => items.is_empty(),
        _ => false,
    }
}

/// The condition of `type_`, if present.
pub fn condition<'a>(status: &'a DeploymentStatus, type_: &str) -> Option<&'a DeploymentCondition> {
    status
        .conditions
        .as_ref()?
        .iter()
        .find(|condition| condition.type_.as_deref() == Some(type_))
}

/// Sets a condition like upstream's `SetDeploymentCondition`: unchanged if the status and
/// reason are the same; the transition time kept when only the reason or message changes.
pub fn set_condition(
    status: &mut DeploymentStatus,
    type_: &str,
    value: &str,
    reason: &str,
    message: String,
    now: Timestamp,
) {
    let conditions = status.conditions.get_or_insert_with(Vec::new);
    let existing = conditions.iter().position(|c| c.type_.as_deref() == Some(type_));
    let now = Time(now);
    let mut transition = Some(now.clone());
    if let Some(index) = existing {
        let current = &conditions[index];
        if current.status.as_deref() == Some(value) && current.reason.as_deref() == Some(reason) {
            return;
        }
        if current.status.as_deref() == Some(value) {
            transition = current.last_transition_time.clone();
        }
        conditions.remove(index);
    }
    conditions.push(DeploymentCondition {
        type_: Some(type_.into()),
        status: Some(value.into()),
        reason: Some(reason.into()),
        message: Some(message),
        last_update_time: Some(now),
        last_transition_time: transition,
    });
}

/// Removes the condition of `type_`.
pub fn remove_condition(status: &mut DeploymentStatus, type_: &str) {
    if let Some(conditions) = status.conditions.as_mut() {
        conditions.retain(|c| c.type_.as_deref() != Some(type_));
    }
}

/// Upstream's `calculateStatus`: counts from the ReplicaSets plus the Available condition.
pub fn calculate_status(
    d: &Deployment,
    all: &[ReplicaSet],
    new_rs: Option<&ReplicaSet>,
    base: &DeploymentStatus,
    now: Timestamp,
) -> DeploymentStatus {
    let sum = |f: fn(&ReplicaSet) -> i32| all.iter().map(f).sum::<i32>();
    let available = sum(|rs| rs.status.as_ref().and_then(|s| s.available_replicas).unwrap_or(0));
    let mut status = DeploymentStatus {
        observed_generation: d.metadata.generation,
        replicas: Some(sum(|rs| rs.status.as_ref().map_or(0, |s| s.replicas))),
        updated_replicas: Some(new_rs.and_then(|rs| rs.status.as_ref()).map_or(0, |s| s.replicas)),
        ready_replicas: Some(sum(|rs| rs.status.as_ref().and_then(|s| s.ready_replicas).unwrap_or(0))),
        available_replicas: Some(available),
        unavailable_replicas: Some((replicas(d) - available).max(0)),
        collision_count: base.collision_count,
        conditions: base.conditions.clone(),
        terminating_replicas: base.terminating_replicas,
    };
    if available >= replicas(d) - max_unavailable(d) {
        let message = "Deployment has minimum availability.".to_string();
        set_condition(&mut status, AVAILABLE, "True", REASON_MIN_AVAILABLE, message, now);
    } else {
        let message = "Deployment does not have minimum availability.".to_string();
        set_condition(&mut status, AVAILABLE, "False", REASON_MIN_UNAVAILABLE, message, now);
    }
    status
}

/// Upstream's `DeploymentComplete`.
pub fn is_complete(d: &Deployment, status: &DeploymentStatus) -> bool {
    let desired = replicas(d);
    status.updated_replicas.unwrap_or(0) == desired
        && status.replicas.unwrap_or(0) == desired
        && status.available_replicas.unwrap_or(0) == desired
        && status.observed_generation >= d.metadata.generation
}

/// Upstream's `DeploymentProgressing`: more updated, ready or available pods, or fewer old.
pub fn is_progressing(d: &Deployment, new: &DeploymentStatus) -> bool {
    let old = d.status.clone().unwrap_or_default();
    let old_old = old.replicas.unwrap_or(0) - old.updated_replicas.unwrap_or(0);
    let new_old = new.replicas.unwrap_or(0) - new.updated_replicas.unwrap_or(0);
    new.updated_replicas.unwrap_or(0) > old.updated_replicas.unwrap_or(0)
        || new_old < old_old
        || new.ready_replicas.unwrap_or(0) > old.ready_replicas.unwrap_or(0)
        || new.available_replicas.unwrap_or(0) > old.available_replicas.unwrap_or(0)
}

/// Upstream's `DeploymentTimedOut`, plus how long until it would time out.
pub fn timed_out(d: &Deployment, status: &DeploymentStatus, now: Timestamp) -> (bool, Option<std::time::Duration>) {
    let Some(deadline) = d.spec.progress_deadline_seconds.filter(|s| *s != i32::MAX) else {
        return (false, None);
    };
    let Some(condition) = condition(status, PROGRESSING) else {
        return (false, None);
    };
    match condition.reason.as_deref() {
        Some(REASON_NEW_RS_AVAILABLE) => return (false, None),
        Some(REASON_TIMED_OUT) => return (true, None),
        _ => {}
    }
    let Some(from) = condition.last_update_time.as_ref() else {
        return (false, None);
    };
    let at = from.0 + jiff::SignedDuration::from_secs(i64::from(deadline));
    if now > at {
        (true, None)
    } else {
        (
            false,
            Some(at.duration_since(now).unsigned_abs() + std::time::Duration::from_secs(1)),
        )
    }
}

/// True when the Deployment has a progress deadline.
pub fn has_progress_deadline(d: &Deployment) -> bool {
    d.spec.progress_deadline_seconds.is_some_and(|s| s != i32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::{DeploymentSpec, DeploymentStrategy, RollingUpdateDeployment};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn deployment(replicas: i32, surge: IntOrString, unavailable: IntOrString) -> Deployment {
        Deployment {
            spec: DeploymentSpec {
                replicas: Some(replicas),
                strategy: Some(DeploymentStrategy {
                    type_: Some("RollingUpdate".into()),
                    rolling_update: Some(RollingUpdateDeployment {
                        max_surge: Some(surge),
                        max_unavailable: Some(unavailable),
                    }),
                }),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    #[test]
    fn fenceposts_round_like_upstream() {
        let pct = |p: &str| IntOrString::String(p.into());
        let cases = [
            (10, pct("25%"), pct("25%"), (3, 2)),
            (4, pct("25%"), pct("25%"), (1, 1)),
            (1, pct("25%"), pct("25%"), (1, 0)),
            (3, IntOrString::Int(0), IntOrString::Int(0), (0, 1)),
            (5, IntOrString::Int(2), pct("10%"), (2, 0)),
        ];
        for (replicas, surge, unavailable, expected) in cases {
            assert_eq!(
                fenceposts(&deployment(replicas, surge, unavailable)),
                expected,
                "{replicas}"
            );
        }
    }

    #[test]
    fn hash_is_stable_safe_and_depends_on_template_and_collisions() {
        let template = PodTemplateSpec::default();
        let a = template_hash(&template, None);
        assert_eq!(a, template_hash(&template, None));
        assert!(a.chars().all(|c| "bcdfghjklmnpqrstvwxz2456789".contains(c)));
        assert_ne!(a, template_hash(&template, Some(1)));
        let labelled = PodTemplateSpec {
            metadata: Some(ObjectMeta {
                labels: Some([("a".to_string(), "b".to_string())].into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_ne!(a, template_hash(&labelled, None));
    }

    #[test]
    fn templates_equal_ignoring_hash_label() {
        let mut a = PodTemplateSpec {
            metadata: Some(ObjectMeta {
                labels: Some([("app".to_string(), "x".to_string())].into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        let mut b = a.clone();
        b.metadata
            .as_mut()
            .unwrap()
            .labels
            .as_mut()
            .unwrap()
            .insert(POD_TEMPLATE_HASH.into(), "abc".into());
        assert!(equal_ignore_hash(&a, &b));
        b.spec = Some(k8s_openapi::api::core::v1::PodSpec {
            security_context: Some(Default::default()),
            ..Default::default()
        });
        a.spec = Some(Default::default());
        assert!(equal_ignore_hash(&a, &b), "an empty struct equals an absent one");
        b.metadata
            .as_mut()
            .unwrap()
            .labels
            .as_mut()
            .unwrap()
            .insert("app".into(), "y".into());
        assert!(!equal_ignore_hash(&a, &b));
    }
}
