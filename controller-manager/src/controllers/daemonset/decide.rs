//! The daemonset controller's pure decision: given a DaemonSet, the nodes, the pods of its
//! namespace and the current revision hash, which pods to adopt, release, create (one per
//! node) and delete, which old pods a rolling update replaces, and the new status
//! (upstream's `manage`, `podsShouldBeOnNode`, `rollingUpdate` with and without maxSurge,
//! and `updateDaemonSetStatus`).

use std::cmp::Ordering;
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::apps::v1::{DaemonSet, DaemonSetStatus};
use k8s_openapi::api::core::v1::{Node, Pod, PodSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::fit::{self, Fit};
use super::history::REVISION_HASH;
use crate::controllers::deployment::util::scaled_value;
use crate::util;

/// The label with the DaemonSet's template generation, on pods.
pub const TEMPLATE_GENERATION: &str = "pod-template-generation";

/// The DaemonSet annotation with the template generation (set by upstream's apiserver).
pub const TEMPLATE_GENERATION_ANNOTATION: &str = "deprecated.daemonset.template.generation";

/// Upstream's `BurstReplicas` for DaemonSets: the most pods created or deleted in one sync.
pub const BURST_REPLICAS: usize = 250;

/// The cache contents a decision is made from.
pub struct Inputs<'a> {
    pub nodes: &'a [Arc<Node>],
    /// Every pod of the DaemonSet's namespace.
    pub pods: &'a [Arc<Pod>],
    /// The hash of the current revision.
    pub hash: &'a str,
    pub now: Timestamp,
    /// False while earlier creations or deletions are not yet in the cache: only the status
    /// is updated then, without raising observedGeneration.
    pub expectations_met: bool,
    /// Nodes whose failed daemon pods are not deleted yet (back-off).
    pub backoff: &'a HashSet<String>,
}

/// What to do for one DaemonSet.
#[derive(Debug, Default)]
pub struct Plan {
    /// Orphan pods matching the selector: set this DaemonSet as their controller.
    pub adopt: Vec<Arc<Pod>>,
    /// Owned pods that no longer match the selector: remove the owner reference.
    pub release: Vec<Arc<Pod>>,
    /// Nodes that need a daemon pod, in name order.
    pub create_on: Vec<String>,
    /// Pods to delete (misscheduled, duplicates, failed, replaced by the rolling update).
    pub delete: Vec<Arc<Pod>>,
    /// Nodes whose failed pods are deleted now (their back-off advances).
    pub failed_on: Vec<String>,
    /// The status to write, when it differs from the current one.
    pub status: Option<DaemonSetStatus>,
    /// Sync again after this long (a ready pod becomes available, a back-off ends).
    pub requeue_after: Option<Duration>,
}

/// How long to wait before looking again at a node whose failed pods are backing off.
const BACKOFF_RECHECK: Duration = Duration::from_secs(1);

/// The DaemonSet's template generation: the annotation when present, else its generation.
pub fn template_generation(ds: &DaemonSet) -> Option<i64> {
    ds.metadata
        .annotations
        .as_ref()
        .and_then(|annotations| annotations.get(TEMPLATE_GENERATION_ANNOTATION))
        .and_then(|value| value.parse().ok())
        .or(ds.metadata.generation)
}

/// Upstream's `IsPodUpdated`: the pod carries the current hash or template generation.
pub fn is_pod_updated(pod: &Pod, hash: &str, generation: Option<i64>) -> bool {
    let labels = pod.metadata.labels.as_ref();
    let label = |key: &str| labels.and_then(|labels| labels.get(key)).map(String::as_str);
    let hash_matches = !hash.is_empty() && label(REVISION_HASH) == Some(hash);
    let generation_matches =
        generation.is_some_and(|generation| label(TEMPLATE_GENERATION) == Some(generation.to_string().as_str()));
    hash_matches || generation_matches
}

/// The pod the DaemonSet creates on `node`: its template with the revision labels, the daemon
/// tolerations and the affinity pinning it to the node, controlled by the DaemonSet.
pub fn daemon_pod(ds: &DaemonSet, node: &str, hash: &str) -> Pod {
    let template = ds.spec.template.clone();
    let meta = template.metadata.unwrap_or_default();
    let mut labels = meta.labels.unwrap_or_default();
    if let Some(generation) = template_generation(ds) {
        labels.insert(TEMPLATE_GENERATION.into(), generation.to_string());
    }
    if !hash.is_empty() {
        labels.insert(REVISION_HASH.into(), hash.into());
    }
    let mut spec: PodSpec = template.spec.unwrap_or_default();
    spec.tolerations = Some(fit::with_daemon_tolerations(&spec));
    spec.affinity = Some(fit::pin_to_node(spec.affinity.take(), node));
    let mut prefix = format!("{}-", ds.metadata.name.as_deref().unwrap_or_default());
    if prefix.len() > 58 {
        prefix.truncate(57);
        prefix.push('-');
    }
    Pod {
        metadata: ObjectMeta {
            generate_name: Some(prefix),
            namespace: ds.metadata.namespace.clone(),
            labels: Some(labels),
            annotations: meta.annotations,
            finalizers: meta.finalizers,
            owner_references: Some(vec![util::controller_ref(ds)]),
            ..Default::default()
        },
        spec: Some(spec),
        status: None,
    }
}

/// Upstream's `UnavailableCount`: maxUnavailable (default 1, percentages round up) against
/// the desired number of pods; at least 1.
pub fn max_unavailable(ds: &DaemonSet, desired: i32) -> i32 {
    let value = ds
        .spec
        .update_strategy
        .as_ref()
        .and_then(|strategy| strategy.rolling_update.as_ref())
        .and_then(|rolling| rolling.max_unavailable.clone())
        .unwrap_or(IntOrString::Int(1));
    scaled_value(&value, desired, true).max(1)
}

/// Upstream's `SurgeCount`: maxSurge (default 0, percentages round up) against the desired
/// number of pods.
pub fn max_surge(ds: &DaemonSet, desired: i32) -> i32 {
    if !is_rolling(ds) {
        return 0;
    }
    ds.spec
        .update_strategy
        .as_ref()
        .and_then(|strategy| strategy.rolling_update.as_ref())
        .and_then(|rolling| rolling.max_surge.as_ref())
        .map_or(0, |value| scaled_value(value, desired, true))
}

/// Upstream's `AllowsSurge`: a rolling update that may start a new pod beside an old one.
fn allows_surge(ds: &DaemonSet) -> bool {
    max_surge(ds, 1) != 0
}

fn has_hash(pod: &Pod, hash: &str) -> bool {
    pod.metadata
        .labels
        .as_ref()
        .and_then(|labels| labels.get(REVISION_HASH))
        .is_some_and(|value| value == hash)
}

fn is_rolling(ds: &DaemonSet) -> bool {
    ds.spec
        .update_strategy
        .as_ref()
        .and_then(|strategy| strategy.type_.as_deref())
        .is_none_or(|kind| kind == "RollingUpdate")
}

fn phase(pod: &Pod) -> Option<&str> {
    pod.status.as_ref()?.phase.as_deref()
}

fn is_terminal(pod: &Pod) -> bool {
    matches!(phase(pod), Some("Failed" | "Succeeded"))
}

/// Upstream's `podByCreationTimestampAndPhase`: Running first, then oldest first, then name.
fn oldest_running_first(a: &Arc<Pod>, b: &Arc<Pod>) -> Ordering {
    let running = |pod: &Pod| phase(pod) != Some("Running");
    running(a)
        .cmp(&running(b))
        .then_with(|| {
            let time = |pod: &Pod| pod.metadata.creation_timestamp.as_ref().map(|time| time.0);
            time(a).cmp(&time(b))
        })
        .then_with(|| a.metadata.name.cmp(&b.metadata.name))
}

/// Decides for `ds`.
pub fn decide(ds: &DaemonSet, inputs: &Inputs<'_>) -> Plan {
    let mut plan = Plan::default();
    if util::is_deleting(&ds.metadata) {
        return plan;
    }
    let owned = claim(ds, inputs.pods, &mut plan);
    let template_spec = ds.spec.template.spec.clone().unwrap_or_default();
    let fits: Vec<(&str, Fit)> = inputs
        .nodes
        .iter()
        .map(|node| {
            (
                node.metadata.name.as_deref().unwrap_or_default(),
                fit::fit(&template_spec, node),
            )
        })
        .collect();
    let mut by_node: BTreeMap<String, Vec<Arc<Pod>>> = BTreeMap::new();
    let mut unpinned = Vec::new();
    for pod in &owned {
        match pod.spec.as_ref().and_then(fit::target_node) {
            Some(node) => by_node.entry(node).or_default().push(pod.clone()),
            None => unpinned.push(pod.clone()),
        }
    }
    let generation = template_generation(ds);

    let surge = allows_surge(ds);
    let min_ready = ds.spec.min_ready_seconds.unwrap_or(0);
    if inputs.expectations_met {
        manage(&fits, &by_node, inputs, surge.then_some(min_ready), &mut plan);
        // Unscheduled pods for nodes that no longer exist are never scheduled: delete them
        // (scheduled ones are the pod garbage collector's).
        let known: HashSet<&str> = fits.iter().map(|(name, _)| *name).collect();
        for (node, pods) in &by_node {
            if known.contains(node.as_str()) {
                continue;
            }
            plan.delete.extend(
                pods.iter()
                    .filter(|pod| !util::is_deleting(&pod.metadata))
                    .filter(|pod| {
                        pod.spec
                            .as_ref()
                            .and_then(|spec| spec.node_name.as_deref())
                            .is_none_or(str::is_empty)
                    })
                    .cloned(),
            );
        }
        plan.create_on.truncate(BURST_REPLICAS);
        plan.delete.truncate(BURST_REPLICAS);
        if plan.create_on.is_empty() && plan.delete.is_empty() && is_rolling(ds) {
            if surge {
                (plan.delete, plan.create_on) = surge_update(ds, &fits, &by_node, inputs.hash, generation, inputs.now);
            } else {
                plan.delete = rolling_update(ds, &fits, &by_node, inputs.hash, generation, inputs.now);
            }
        }
    }

    let (status, requeue) = status(ds, &fits, &by_node, inputs, generation);
    plan.requeue_after = match (plan.requeue_after, requeue) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    let current = ds.status.clone().unwrap_or_default();
    if !same_status(&current, &status) {
        plan.status = Some(status);
    }
    plan
}

/// Sorts the namespace's pods into the DaemonSet's (after adoption and release).
fn claim(ds: &DaemonSet, pods: &[Arc<Pod>], plan: &mut Plan) -> Vec<Arc<Pod>> {
    let uid = ds.metadata.uid.as_deref().unwrap_or_default();
    let empty = BTreeMap::new();
    let selector = ds.spec.selector.clone();
    // An empty selector would select every pod: upstream refuses to act on it.
    let selects_all = selector.match_labels.as_ref().is_none_or(BTreeMap::is_empty)
        && selector.match_expressions.as_ref().is_none_or(Vec::is_empty);
    let matches = |pod: &Pod| !selects_all && util::selects(&selector, pod.metadata.labels.as_ref().unwrap_or(&empty));
    let mut owned = Vec::new();
    for pod in pods {
        match util::controller_of(&pod.metadata) {
            Some(owner) if owner.uid == uid => {
                if matches(pod) {
                    owned.push(pod.clone());
                } else {
                    plan.release.push(pod.clone());
                }
            }
            Some(_) => {}
            None => {
                if matches(pod) && !util::is_deleting(&pod.metadata) {
                    plan.adopt.push(pod.clone());
                    owned.push(pod.clone());
                }
            }
        }
    }
    owned
}

/// Upstream's `podsShouldBeOnNode` for every node; `surge` is the DaemonSet's minReadySeconds
/// when its rolling update may surge.
fn manage(
    fits: &[(&str, Fit)],
    by_node: &BTreeMap<String, Vec<Arc<Pod>>>,
    inputs: &Inputs<'_>,
    surge: Option<i32>,
    plan: &mut Plan,
) {
    for (node, fit) in fits {
        let pods = by_node.get(*node);
        match (pods, fit) {
            (None, Fit { should_run: true, .. }) => plan.create_on.push(node.to_string()),
            (
                _,
                Fit {
                    should_continue_running: true,
                    ..
                },
            ) => {
                let mut running = Vec::new();
                for pod in pods.into_iter().flatten() {
                    if util::is_deleting(&pod.metadata) {
                        continue;
                    }
                    match phase(pod) {
                        Some("Failed") if inputs.backoff.contains(*node) => {
                            plan.requeue_after = Some(BACKOFF_RECHECK);
                        }
                        Some("Failed") => {
                            plan.delete.push(pod.clone());
                            if !plan.failed_on.iter().any(|failed| failed.as_str() == *node) {
                                plan.failed_on.push(node.to_string());
                            }
                        }
                        Some("Succeeded") => plan.delete.push(pod.clone()),
                        _ => running.push(pod.clone()),
                    }
                }
                running.sort_by(oldest_running_first);
                match surge {
                    // Without surge, one pod per node: keep the oldest running one.
                    None => plan.delete.extend(running.into_iter().skip(1)),
                    Some(min_ready) => keep_surge_pair(running, inputs, min_ready, plan),
                }
            }
            (Some(pods), _) => {
                plan.delete
                    .extend(pods.iter().filter(|pod| !util::is_deleting(&pod.metadata)).cloned());
            }
            (None, _) => {}
        }
    }
}

/// With surge, a node keeps its oldest new pod and its oldest old pod (`running` is sorted
/// oldest first) while the new one is not available yet and the old one is ready; once the
/// new pod is available (or the old one not ready) the old one goes. Any other pod goes.
fn keep_surge_pair(running: Vec<Arc<Pod>>, inputs: &Inputs<'_>, min_ready: i32, plan: &mut Plan) {
    let (mut oldest_new, mut oldest_old): (Option<Arc<Pod>>, Option<Arc<Pod>>) = (None, None);
    for pod in running {
        let slot = if has_hash(&pod, inputs.hash) {
            &mut oldest_new
        } else {
            &mut oldest_old
        };
        if slot.is_none() {
            *slot = Some(pod);
        } else {
            plan.delete.push(pod);
        }
    }
    if let (Some(new), Some(old)) = (oldest_new, oldest_old)
        && (!util::is_pod_ready(&old) || util::is_pod_available(&new, min_ready, inputs.now))
    {
        plan.delete.push(old);
    }
}

/// Upstream's `rollingUpdate` with maxSurge: (old pods to delete, nodes to start a new pod
/// on beside the old one). A node whose old pod is not available gets its new pod at once;
/// otherwise at most maxSurge nodes run an old and a not-yet-available new pod together. An
/// old pod goes once the new pod on its node is available.
fn surge_update(
    ds: &DaemonSet,
    fits: &[(&str, Fit)],
    by_node: &BTreeMap<String, Vec<Arc<Pod>>>,
    hash: &str,
    generation: Option<i64>,
    now: Timestamp,
) -> (Vec<Arc<Pod>>, Vec<String>) {
    let desired = fits.iter().filter(|(_, fit)| fit.should_run).count() as i32;
    let max_surge = max_surge(ds, desired);
    let min_ready = ds.spec.min_ready_seconds.unwrap_or(0);
    let should_run = |node: &str| fits.iter().any(|(name, fit)| *name == node && fit.should_run);
    let (mut surging, mut delete, mut allowed, mut candidates) = (0, Vec::new(), Vec::new(), Vec::new());
    for (node, pods) in by_node {
        let live: Vec<&Arc<Pod>> = pods.iter().filter(|pod| !util::is_deleting(&pod.metadata)).collect();
        let (new, old): (Vec<_>, Vec<_>) = live.into_iter().partition(|pod| is_pod_updated(pod, hash, generation));
        match (new.as_slice(), old.as_slice()) {
            // Up to date or empty: the manage step looks after it.
            (_, []) if new.len() <= 1 => {}
            ([], [old]) => {
                if !util::is_pod_available(old, min_ready, now) {
                    if should_run(node) {
                        allowed.push(node.clone());
                    }
                } else if surging < max_surge {
                    candidates.push(node.clone());
                }
            }
            ([new], [old]) => {
                if util::is_pod_available(new, min_ready, now) {
                    delete.push((*old).clone());
                } else {
                    surging += 1;
                }
            }
            // Excess pods: the manage step cleans up; the node counts as surging.
            _ => surging += 1,
        }
    }
    let room = (max_surge - surging).max(0) as usize;
    allowed.extend(candidates.into_iter().take(room));
    (delete, allowed)
}

/// Upstream's `rollingUpdate` with maxSurge 0: the old pods to delete now, keeping at most
/// maxUnavailable nodes without an available pod. Old pods that are not available anyway
/// are always replaced.
fn rolling_update(
    ds: &DaemonSet,
    fits: &[(&str, Fit)],
    by_node: &BTreeMap<String, Vec<Arc<Pod>>>,
    hash: &str,
    generation: Option<i64>,
    now: Timestamp,
) -> Vec<Arc<Pod>> {
    let desired = fits.iter().filter(|(_, fit)| fit.should_run).count() as i32;
    let max_unavailable = max_unavailable(ds, desired);
    let min_ready = ds.spec.min_ready_seconds.unwrap_or(0);
    let mut unavailable = 0;
    let mut replace = Vec::new();
    let mut candidates = Vec::new();
    for pods in by_node.values() {
        let live: Vec<&Arc<Pod>> = pods.iter().filter(|pod| !util::is_deleting(&pod.metadata)).collect();
        let (new, old): (Vec<_>, Vec<_>) = live.into_iter().partition(|pod| is_pod_updated(pod, hash, generation));
        match (new.as_slice(), old.as_slice()) {
            ([new], []) => {
                if !util::is_pod_available(new, min_ready, now) {
                    unavailable += 1;
                }
            }
            ([], [old]) => {
                if !util::is_pod_available(old, min_ready, now) {
                    replace.push((*old).clone());
                } else if unavailable < max_unavailable {
                    candidates.push((*old).clone());
                }
            }
            // Nothing, both, or duplicates: the manage step sorts the node out.
            _ => unavailable += 1,
        }
    }
    let room = (max_unavailable - unavailable).max(0) as usize;
    replace.extend(candidates.into_iter().take(room));
    replace
}

/// Upstream's `updateDaemonSetStatus`; also how long until a ready pod becomes available.
fn status(
    ds: &DaemonSet,
    fits: &[(&str, Fit)],
    by_node: &BTreeMap<String, Vec<Arc<Pod>>>,
    inputs: &Inputs<'_>,
    generation: Option<i64>,
) -> (DaemonSetStatus, Option<Duration>) {
    let min_ready = ds.spec.min_ready_seconds.unwrap_or(0);
    let (mut desired, mut current, mut misscheduled, mut ready, mut available, mut updated) = (0, 0, 0, 0, 0, 0);
    let mut requeue: Option<Duration> = None;
    for (node, fit) in fits {
        let mut pods: Vec<Arc<Pod>> = by_node
            .get(*node)
            .into_iter()
            .flatten()
            .filter(|pod| !(is_terminal(pod) && util::is_deleting(&pod.metadata)))
            .cloned()
            .collect();
        let scheduled = !pods.is_empty();
        if !fit.should_run {
            if scheduled {
                misscheduled += 1;
            }
            continue;
        }
        desired += 1;
        if !scheduled {
            continue;
        }
        current += 1;
        pods.sort_by(oldest_running_first);
        let pod = &pods[0];
        if util::is_pod_ready(pod) {
            ready += 1;
            if util::is_pod_available(pod, min_ready, inputs.now) {
                available += 1;
            } else if let Some(left) = util::until_available(pod, min_ready, inputs.now) {
                requeue = Some(requeue.map_or(left, |other| other.min(left)));
            }
        }
        if is_pod_updated(pod, inputs.hash, generation) {
            updated += 1;
        }
    }
    let previous = ds.status.clone().unwrap_or_default();
    let observed_generation = if inputs.expectations_met {
        ds.metadata.generation
    } else {
        previous.observed_generation
    };
    let status = DaemonSetStatus {
        current_number_scheduled: current,
        number_misscheduled: misscheduled,
        desired_number_scheduled: desired,
        number_ready: ready,
        number_available: Some(available),
        number_unavailable: Some(desired - available),
        updated_number_scheduled: Some(updated),
        observed_generation,
        ..previous
    };
    (status, requeue)
}

fn same_status(a: &DaemonSetStatus, b: &DaemonSetStatus) -> bool {
    a.current_number_scheduled == b.current_number_scheduled
        && a.number_misscheduled == b.number_misscheduled
        && a.desired_number_scheduled == b.desired_number_scheduled
        && a.number_ready == b.number_ready
        && a.number_available.unwrap_or(0) == b.number_available.unwrap_or(0)
        && a.number_unavailable.unwrap_or(0) == b.number_unavailable.unwrap_or(0)
        && a.updated_number_scheduled.unwrap_or(0) == b.updated_number_scheduled.unwrap_or(0)
        && a.observed_generation == b.observed_generation
}
