//! The statefulset controller's pure decision (upstream's `updateStatefulSet`): given a
//! StatefulSet, the pods of its namespace and its current and update revisions, which pods
//! (with their claims) to create, which to delete (failed ones, scale-down from the highest
//! ordinal, the rolling update from the highest ordinal down to the partition), which to fix
//! up, and the new status. With `OrderedReady` every step waits for the pods before it to be
//! Running and Ready; with `Parallel` creation and deletion do not wait.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::apps::v1::{StatefulSet, StatefulSetStatus};
use k8s_openapi::api::core::v1::{
    PersistentVolumeClaim, PersistentVolumeClaimVolumeSource, Pod, PodTemplateSpec, Volume,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde_json::{Value, json};

use crate::util;

/// The label with the name of the revision a pod was made from.
pub const REVISION_LABEL: &str = "controller-revision-hash";
/// The label with the pod's own name (for per-pod Services).
pub const POD_NAME_LABEL: &str = "statefulset.kubernetes.io/pod-name";
/// The label with the pod's ordinal.
pub const POD_INDEX_LABEL: &str = "apps.kubernetes.io/pod-index";

/// One revision of the template.
#[derive(Debug, Clone, Copy)]
pub struct Revision<'a> {
    pub name: &'a str,
    pub template: &'a PodTemplateSpec,
}

/// The cache contents a decision is made from.
pub struct Inputs<'a> {
    /// Every pod of the StatefulSet's namespace.
    pub pods: &'a [Arc<Pod>],
    /// The revision of `status.currentRevision` (the update revision when there is none).
    pub current: Revision<'a>,
    /// The revision of the current template.
    pub update: Revision<'a>,
    pub now: Timestamp,
}

/// A pod to create, after its claims.
#[derive(Debug, Clone)]
pub struct Create {
    pub pod: Pod,
    pub claims: Vec<PersistentVolumeClaim>,
}

/// What to do for one StatefulSet.
#[derive(Debug, Default)]
pub struct Plan {
    /// Orphan pods of this set matching the selector: set it as their controller.
    pub adopt: Vec<Arc<Pod>>,
    /// Owned pods that no longer match the selector: remove the owner reference.
    pub release: Vec<Arc<Pod>>,
    /// Pods to create, in order.
    pub create: Vec<Create>,
    /// Pods to delete, in order.
    pub delete: Vec<Arc<Pod>>,
    /// Pods whose identity labels are wrong, with the merge patch restoring them.
    pub relabel: Vec<(Arc<Pod>, Value)>,
    /// The status to write, when it differs from the current one.
    pub status: Option<StatefulSetStatus>,
    /// Sync again after this long (a ready pod becomes available).
    pub requeue_after: Option<Duration>,
}

/// `<parent>-<ordinal>` split like upstream's `getParentNameAndOrdinal`.
pub fn parent_and_ordinal(name: &str) -> Option<(&str, i32)> {
    let (parent, ordinal) = name.rsplit_once('-')?;
    if ordinal.is_empty() || !ordinal.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    Some((parent, ordinal.parse().ok()?))
}

/// The name of the claim from `template` for the pod with `ordinal`.
pub fn claim_name(template: &str, set: &str, ordinal: i32) -> String {
    format!("{template}-{set}-{ordinal}")
}

fn set_name(set: &StatefulSet) -> &str {
    set.metadata.name.as_deref().unwrap_or_default()
}

fn ordinal_of(set: &StatefulSet, pod: &Pod) -> Option<i32> {
    let (parent, ordinal) = parent_and_ordinal(pod.metadata.name.as_deref()?)?;
    (parent == set_name(set)).then_some(ordinal)
}

fn start_ordinal(set: &StatefulSet) -> i32 {
    set.spec
        .ordinals
        .as_ref()
        .and_then(|ordinals| ordinals.start)
        .unwrap_or(0)
        .max(0)
}

fn is_parallel(set: &StatefulSet) -> bool {
    set.spec.pod_management_policy.as_deref() == Some("Parallel")
}

fn is_rolling(set: &StatefulSet) -> bool {
    set.spec
        .update_strategy
        .as_ref()
        .and_then(|strategy| strategy.type_.as_deref())
        .is_none_or(|kind| kind == "RollingUpdate")
}

fn partition(set: &StatefulSet) -> Option<i32> {
    set.spec
        .update_strategy
        .as_ref()
        .and_then(|strategy| strategy.rolling_update.as_ref())
        .and_then(|rolling| rolling.partition)
}

fn phase(pod: &Pod) -> Option<&str> {
    pod.status.as_ref()?.phase.as_deref()
}

fn revision_of(pod: &Pod) -> Option<&str> {
    pod.metadata.labels.as_ref()?.get(REVISION_LABEL).map(String::as_str)
}

fn running_and_ready(pod: &Pod) -> bool {
    phase(pod) == Some("Running") && util::is_pod_ready(pod)
}

/// Running, Ready for minReadySeconds, not terminating: upstream's `isHealthy`.
fn healthy(pod: &Pod, min_ready: i32, now: Timestamp) -> bool {
    running_and_ready(pod) && util::is_pod_available(pod, min_ready, now) && !util::is_deleting(&pod.metadata)
}

/// The claims of the pod with `ordinal`: each template named `<template>-<set>-<ordinal>`,
/// labelled with the selector's labels.
pub fn claims_for(set: &StatefulSet, ordinal: i32) -> Vec<PersistentVolumeClaim> {
    let selector_labels = set.spec.selector.match_labels.clone().unwrap_or_default();
    set.spec
        .volume_claim_templates
        .iter()
        .flatten()
        .map(|template| {
            let template_name = template.metadata.name.as_deref().unwrap_or_default();
            let mut labels = template.metadata.labels.clone().unwrap_or_default();
            labels.extend(selector_labels.clone());
            PersistentVolumeClaim {
                metadata: ObjectMeta {
                    name: Some(claim_name(template_name, set_name(set), ordinal)),
                    namespace: set.metadata.namespace.clone(),
                    labels: Some(labels),
                    annotations: template.metadata.annotations.clone(),
                    ..Default::default()
                },
                spec: template.spec.clone(),
                status: None,
            }
        })
        .collect()
}

/// The pod with `ordinal` from `revision`: named `<set>-<ordinal>`, hostname and subdomain
/// for the governing Service, identity and revision labels, one volume per claim template,
/// controlled by the set.
pub fn pod_for(set: &StatefulSet, revision: Revision<'_>, ordinal: i32) -> Pod {
    let name = format!("{}-{ordinal}", set_name(set));
    let template = revision.template.clone();
    let meta = template.metadata.unwrap_or_default();
    let mut labels = meta.labels.unwrap_or_default();
    labels.insert(POD_NAME_LABEL.into(), name.clone());
    labels.insert(POD_INDEX_LABEL.into(), ordinal.to_string());
    labels.insert(REVISION_LABEL.into(), revision.name.into());
    let mut spec = template.spec.unwrap_or_default();
    spec.hostname = Some(name.clone());
    spec.subdomain = set.spec.service_name.clone().filter(|service| !service.is_empty());
    let claims: BTreeMap<String, String> = set
        .spec
        .volume_claim_templates
        .iter()
        .flatten()
        .filter_map(|template| {
            let template_name = template.metadata.name.clone()?;
            let claim = claim_name(&template_name, set_name(set), ordinal);
            Some((template_name, claim))
        })
        .collect();
    if !claims.is_empty() {
        let mut volumes: Vec<Volume> = claims
            .iter()
            .map(|(volume, claim)| Volume {
                name: volume.clone(),
                persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                    claim_name: claim.clone(),
                    read_only: None,
                }),
                ..Default::default()
            })
            .collect();
        volumes.extend(
            spec.volumes
                .take()
                .into_iter()
                .flatten()
                .filter(|volume| !claims.contains_key(&volume.name)),
        );
        spec.volumes = Some(volumes);
    }
    Pod {
        metadata: ObjectMeta {
            name: Some(name),
            namespace: set.metadata.namespace.clone(),
            labels: Some(labels),
            annotations: meta.annotations,
            finalizers: meta.finalizers,
            owner_references: Some(vec![util::controller_ref(set)]),
            ..Default::default()
        },
        spec: Some(spec),
        status: None,
    }
}

/// The identity labels a pod lacks, as a merge patch.
fn identity_patch(pod: &Pod, ordinal: i32) -> Option<Value> {
    let name = pod.metadata.name.clone().unwrap_or_default();
    let labels = pod.metadata.labels.clone().unwrap_or_default();
    let want = [(POD_NAME_LABEL, name), (POD_INDEX_LABEL, ordinal.to_string())];
    let missing: serde_json::Map<String, Value> = want
        .into_iter()
        .filter(|(key, value)| labels.get(*key) != Some(value))
        .map(|(key, value)| (key.to_string(), json!(value)))
        .collect();
    (!missing.is_empty()).then(|| json!({"metadata": {"labels": missing}}))
}

/// Decides for `set`.
pub fn decide(set: &StatefulSet, inputs: &Inputs<'_>) -> Plan {
    let mut plan = Plan::default();
    let owned = claim(set, inputs.pods, &mut plan);
    let status = status(set, &owned, inputs);
    if util::is_deleting(&set.metadata) {
        finish(set, status, &mut plan);
        return plan;
    }
    let start = start_ordinal(set);
    let count = set.spec.replicas.unwrap_or(1).max(0);
    let mut replicas: Vec<Option<Arc<Pod>>> = vec![None; count as usize];
    let mut condemned: Vec<(i32, Arc<Pod>)> = Vec::new();
    for pod in &owned {
        let Some(ordinal) = ordinal_of(set, pod) else { continue };
        match usize::try_from(ordinal - start)
            .ok()
            .filter(|index| *index < replicas.len())
        {
            Some(index) => replicas[index] = Some(pod.clone()),
            None => condemned.push((ordinal, pod.clone())),
        }
    }
    condemned.sort_by_key(|(ordinal, _)| std::cmp::Reverse(*ordinal));
    let min_ready = set.spec.min_ready_seconds.unwrap_or(0);
    let now = inputs.now;
    let monotonic = !is_parallel(set);
    let first_unhealthy = replicas
        .iter()
        .flatten()
        .chain(condemned.iter().map(|(_, pod)| pod))
        .find(|pod| !healthy(pod, min_ready, now))
        .and_then(|pod| pod.metadata.uid.clone());
    plan.requeue_after = owned
        .iter()
        .filter_map(|pod| util::until_available(pod, min_ready, now))
        .min();

    // The replicas, lowest ordinal first.
    let current_replicas = set
        .status
        .as_ref()
        .and_then(|status| status.current_replicas)
        .unwrap_or(0);
    let mut blocked = false;
    for (index, slot) in replicas.iter().enumerate() {
        let ordinal = start + index as i32;
        let Some(pod) = slot else {
            let use_current = is_rolling(set)
                && match partition(set) {
                    None => (index as i32) < current_replicas,
                    Some(partition) => (index as i32) < partition,
                };
            let revision = if use_current { inputs.current } else { inputs.update };
            plan.create.push(Create {
                pod: pod_for(set, revision, ordinal),
                claims: claims_for(set, ordinal),
            });
            if monotonic {
                blocked = true;
                break;
            }
            continue;
        };
        if matches!(phase(pod), Some("Failed" | "Succeeded")) {
            if !util::is_deleting(&pod.metadata) {
                plan.delete.push(pod.clone());
            }
            if monotonic {
                blocked = true;
                break;
            }
            continue;
        }
        if monotonic && !healthy(pod, min_ready, now) {
            blocked = true;
            break;
        }
        if !util::is_deleting(&pod.metadata)
            && let Some(patch) = identity_patch(pod, ordinal)
        {
            plan.relabel.push((pod.clone(), patch));
        }
    }

    // Scale down, highest ordinal first; one at a time unless Parallel.
    if !blocked {
        for (_, pod) in &condemned {
            if util::is_deleting(&pod.metadata) {
                if monotonic {
                    blocked = true;
                    break;
                }
                continue;
            }
            if monotonic && !healthy(pod, min_ready, now) && pod.metadata.uid != first_unhealthy {
                blocked = true;
                break;
            }
            plan.delete.push(pod.clone());
            if monotonic {
                blocked = true;
                break;
            }
        }
    }

    // The rolling update: from the highest ordinal down to the partition, one pod at a time,
    // each replaced only once those above it are healthy on the update revision.
    let parallel_busy = !monotonic && (!plan.create.is_empty() || !plan.delete.is_empty());
    if !blocked && !parallel_busy && is_rolling(set) {
        let floor = partition(set).unwrap_or(0).max(0) as usize;
        for slot in replicas.iter().skip(floor).rev() {
            let Some(pod) = slot else { break };
            if revision_of(pod) != Some(inputs.update.name) && !util::is_deleting(&pod.metadata) {
                plan.delete.push(pod.clone());
                break;
            }
            if !healthy(pod, min_ready, now) {
                break;
            }
        }
    }
    finish(set, status, &mut plan);
    plan
}

fn finish(set: &StatefulSet, status: StatefulSetStatus, plan: &mut Plan) {
    let current = set.status.clone().unwrap_or_default();
    if !same_status(&current, &status) {
        plan.status = Some(status);
    }
}

/// Sorts the namespace's pods into the set's (after adoption and release): upstream claims
/// only pods named `<set>-<ordinal>`.
fn claim(set: &StatefulSet, pods: &[Arc<Pod>], plan: &mut Plan) -> Vec<Arc<Pod>> {
    let uid = set.metadata.uid.as_deref().unwrap_or_default();
    let empty = BTreeMap::new();
    let deleting = util::is_deleting(&set.metadata);
    let matches = |pod: &Pod| util::selects(&set.spec.selector, pod.metadata.labels.as_ref().unwrap_or(&empty));
    let mut owned = Vec::new();
    for pod in pods.iter().filter(|pod| ordinal_of(set, pod).is_some()) {
        match util::controller_of(&pod.metadata) {
            Some(owner) if owner.uid == uid => {
                if matches(pod) {
                    owned.push(pod.clone());
                } else if !deleting {
                    plan.release.push(pod.clone());
                }
            }
            Some(_) => {}
            None => {
                if matches(pod) && !deleting && !util::is_deleting(&pod.metadata) {
                    plan.adopt.push(pod.clone());
                    owned.push(pod.clone());
                }
            }
        }
    }
    owned
}

/// Upstream's status computation, with `completeRollingUpdate`.
fn status(set: &StatefulSet, owned: &[Arc<Pod>], inputs: &Inputs<'_>) -> StatefulSetStatus {
    let min_ready = set.spec.min_ready_seconds.unwrap_or(0);
    let (mut replicas, mut ready, mut available, mut current, mut updated) = (0, 0, 0, 0, 0);
    for pod in owned {
        replicas += 1;
        if running_and_ready(pod) {
            ready += 1;
            if util::is_pod_available(pod, min_ready, inputs.now) {
                available += 1;
            }
        }
        if !util::is_deleting(&pod.metadata) {
            if revision_of(pod) == Some(inputs.current.name) {
                current += 1;
            }
            if revision_of(pod) == Some(inputs.update.name) {
                updated += 1;
            }
        }
    }
    let previous = set.status.clone().unwrap_or_default();
    let mut status = StatefulSetStatus {
        replicas,
        ready_replicas: Some(ready),
        available_replicas: Some(available),
        current_replicas: Some(current),
        updated_replicas: Some(updated),
        current_revision: Some(inputs.current.name.to_string()),
        update_revision: Some(inputs.update.name.to_string()),
        observed_generation: set.metadata.generation,
        ..previous
    };
    if is_rolling(set) && updated == replicas && ready == replicas {
        status.current_replicas = Some(updated);
        status.current_revision = Some(inputs.update.name.to_string());
    }
    status
}

fn same_status(a: &StatefulSetStatus, b: &StatefulSetStatus) -> bool {
    a.replicas == b.replicas
        && a.ready_replicas.unwrap_or(0) == b.ready_replicas.unwrap_or(0)
        && a.available_replicas.unwrap_or(0) == b.available_replicas.unwrap_or(0)
        && a.current_replicas.unwrap_or(0) == b.current_replicas.unwrap_or(0)
        && a.updated_replicas.unwrap_or(0) == b.updated_replicas.unwrap_or(0)
        && a.current_revision == b.current_revision
        && a.update_revision == b.update_revision
        && a.observed_generation == b.observed_generation
}
