//! Helpers shared by controllers: object keys, label selectors, owner references and pod
//! readiness, all pure.

use std::collections::BTreeMap;
use std::sync::Arc;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, OwnerReference};
use kube::core::{Selector, SelectorExt};
use kube::runtime::reflector::Store;
use kube::{Resource, ResourceExt};

/// `namespace/name` (or `name` for cluster-scoped objects), like client-go's
/// MetaNamespaceKeyFunc.
pub fn key_of<K: Resource>(obj: &K) -> String {
    let meta = obj.meta();
    key(meta.namespace.as_deref(), meta.name.as_deref().unwrap_or_default())
}

/// Builds a key from its parts.
pub fn key(namespace: Option<&str>, name: &str) -> String {
    match namespace {
        Some(ns) if !ns.is_empty() => format!("{ns}/{name}"),
        _ => name.to_string(),
    }
}

/// Splits a key into namespace and name.
pub fn split_key(key: &str) -> (Option<&str>, &str) {
    match key.split_once('/') {
        Some((ns, name)) => (Some(ns), name),
        None => (None, key),
    }
}

/// Looks an object up in a store by key.
pub fn get<K>(store: &Store<K>, key_text: &str) -> Option<Arc<K>>
where
    K: Resource<DynamicType = ()> + kube::runtime::reflector::Lookup<DynamicType = ()> + Clone + 'static,
{
    let (namespace, name) = split_key(key_text);
    let mut reference = kube::runtime::reflector::ObjectRef::<K>::new(name);
    if let Some(ns) = namespace {
        reference = reference.within(ns);
    }
    store.get(&reference)
}

/// Converts a label selector; `None` for one that cannot be converted (invalid operators),
/// which selects nothing.
pub fn selector(selector: &LabelSelector) -> Option<Selector> {
    Selector::try_from(selector.clone()).ok()
}

/// True when `selector` selects `labels`. An empty selector selects everything, like
/// upstream's `LabelSelectorAsSelector`.
pub fn selects(selector: &LabelSelector, labels: &BTreeMap<String, String>) -> bool {
    match Selector::try_from(selector.clone()) {
        Ok(selector) => selector.matches(labels),
        Err(_) => false,
    }
}

/// The controlling owner reference, if any.
pub fn controller_of(meta: &ObjectMeta) -> Option<&OwnerReference> {
    meta.owner_references
        .as_ref()?
        .iter()
        .find(|reference| reference.controller == Some(true))
}

/// The key of the object's controller when that controller is of `kind` (none otherwise).
pub fn controller_key(meta: &ObjectMeta, namespace: Option<&str>, kind: &str) -> Vec<String> {
    controller_of(meta)
        .filter(|owner| owner.kind == kind)
        .map(|owner| key(namespace, &owner.name))
        .into_iter()
        .collect()
}

/// An owner reference marking `owner` as the controller (controller=true,
/// blockOwnerDeletion=true).
pub fn controller_ref<K: Resource<DynamicType = ()>>(owner: &K) -> OwnerReference {
    OwnerReference {
        api_version: K::api_version(&()).into_owned(),
        kind: K::kind(&()).into_owned(),
        name: owner.name_any(),
        uid: owner.meta().uid.clone().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

/// True when the object is being deleted.
pub fn is_deleting(meta: &ObjectMeta) -> bool {
    meta.deletion_timestamp.is_some()
}

/// A pod that counts towards replicas: not finished, not being deleted.
pub fn is_pod_active(pod: &Pod) -> bool {
    let phase = pod.status.as_ref().and_then(|status| status.phase.as_deref());
    !matches!(phase, Some("Succeeded") | Some("Failed")) && pod.metadata.deletion_timestamp.is_none()
}

/// The pod's Ready condition's last transition, if Ready is True.
pub fn ready_since(pod: &Pod) -> Option<Option<Timestamp>> {
    let conditions = pod.status.as_ref()?.conditions.as_ref()?;
    let ready = conditions.iter().find(|condition| condition.type_ == "Ready")?;
    (ready.status == "True").then(|| ready.last_transition_time.as_ref().map(|time| time.0))
}

/// True when the pod's Ready condition is True.
pub fn is_pod_ready(pod: &Pod) -> bool {
    ready_since(pod).is_some()
}

/// True when the pod has been Ready for at least `min_ready_seconds` at `now`.
pub fn is_pod_available(pod: &Pod, min_ready_seconds: i32, now: Timestamp) -> bool {
    match ready_since(pod) {
        None => false,
        Some(_) if min_ready_seconds <= 0 => true,
        Some(None) => false,
        Some(Some(since)) => since
            .checked_add(jiff::SignedDuration::from_secs(i64::from(min_ready_seconds)))
            .map(|available_at| available_at <= now)
            .unwrap_or(false),
    }
}

/// How long until a ready pod becomes available, if it is ready but not yet available.
pub fn until_available(pod: &Pod, min_ready_seconds: i32, now: Timestamp) -> Option<std::time::Duration> {
    if min_ready_seconds <= 0 {
        return None;
    }
    let since = ready_since(pod)??;
    let at = since
        .checked_add(jiff::SignedDuration::from_secs(i64::from(min_ready_seconds)))
        .ok()?;
    let left = at.duration_since(now);
    (left.is_positive()).then(|| left.unsigned_abs())
}

#[cfg(test)]
pub(crate) mod testing {
    //! Builders for table tests.
    use super::*;
    use k8s_openapi::api::core::v1::{PodCondition, PodSpec, PodStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    /// A fixed "now" for tests.
    pub(crate) fn now() -> Timestamp {
        "2025-01-01T00:10:00Z".parse().expect("valid timestamp")
    }

    /// A timestamp `secs` seconds before `now()`.
    pub(crate) fn ago(secs: i64) -> Time {
        Time(now() - jiff::SignedDuration::from_secs(secs))
    }

    /// A pending pod with `labels`, created `age` seconds ago.
    pub(crate) fn pod(name: &str, labels: &[(&str, &str)], age: i64) -> Pod {
        Pod {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some("ns".into()),
                uid: Some(format!("uid-{name}")),
                labels: Some(labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()),
                creation_timestamp: Some(ago(age)),
                ..Default::default()
            },
            spec: Some(PodSpec::default()),
            status: Some(PodStatus {
                phase: Some("Pending".into()),
                ..Default::default()
            }),
        }
    }

    /// Marks the pod scheduled, Running and Ready since `secs` seconds ago.
    pub(crate) fn ready(mut pod: Pod, secs: i64) -> Pod {
        pod.spec.get_or_insert_with(Default::default).node_name = Some("node-1".into());
        let status = pod.status.get_or_insert_with(Default::default);
        status.phase = Some("Running".into());
        status.pod_ip = Some("10.0.0.1".into());
        status.conditions = Some(vec![PodCondition {
            type_: "Ready".into(),
            status: "True".into(),
            last_transition_time: Some(ago(secs)),
            ..Default::default()
        }]);
        pod
    }

    /// Sets the pod's controller reference.
    pub(crate) fn owned_by(mut pod: Pod, kind: &str, name: &str) -> Pod {
        pod.metadata.owner_references = Some(vec![OwnerReference {
            api_version: "apps/v1".into(),
            kind: kind.into(),
            name: name.into(),
            uid: format!("uid-{name}"),
            controller: Some(true),
            block_owner_deletion: Some(true),
        }]);
        pod
    }
}

#[cfg(test)]
mod tests {
    use super::testing::*;
    use super::*;

    #[test]
    fn availability_respects_min_ready_seconds() {
        let pod = ready(pod("a", &[], 100), 5);
        assert!(is_pod_available(&pod, 0, now()));
        assert!(is_pod_available(&pod, 5, now()));
        assert!(!is_pod_available(&pod, 10, now()));
        assert_eq!(
            until_available(&pod, 10, now()),
            Some(std::time::Duration::from_secs(5))
        );
        assert!(!is_pod_available(&super::testing::pod("b", &[], 1), 0, now()));
    }

    #[test]
    fn keys_round_trip() {
        assert_eq!(key(Some("ns"), "a"), "ns/a");
        assert_eq!(split_key("ns/a"), (Some("ns"), "a"));
        assert_eq!(split_key("node"), (None, "node"));
    }
}
