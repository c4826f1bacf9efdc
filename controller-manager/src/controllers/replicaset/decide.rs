//! The replicaset controller's pure decision: given a ReplicaSet and the pods of its
//! namespace, which pods to adopt, release, create and delete, and the new status.

use std::cmp::Ordering;
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::apps::v1::{ReplicaSet, ReplicaSetStatus};
use k8s_openapi::api::core::v1::Pod;

use crate::util;

/// Upstream's `BurstReplicas`: the most pods created or deleted in one sync.
pub const BURST_REPLICAS: usize = 500;

/// What to do for one ReplicaSet.
#[derive(Debug, Default)]
pub struct Plan {
    /// Orphan pods matching the selector: set this ReplicaSet as their controller.
    pub adopt: Vec<Arc<Pod>>,
    /// Owned pods that no longer match the selector: remove the owner reference.
    pub release: Vec<Arc<Pod>>,
    /// Pods to create from the template.
    pub create: usize,
    /// Pods to delete, most disposable first.
    pub delete: Vec<Arc<Pod>>,
    /// The status to write, when it differs from the current one.
    pub status: Option<ReplicaSetStatus>,
    /// Sync again after this long (a ready pod becomes available).
    pub requeue_after: Option<Duration>,
}

/// Decides for `rs`, given every pod of its namespace. `expectations_met` is false while
/// earlier creations or deletions are not yet visible in the cache: no pods are created or
/// deleted then.
pub fn decide(rs: &ReplicaSet, pods: &[Arc<Pod>], now: Timestamp, expectations_met: bool) -> Plan {
    let mut plan = Plan::default();
    let spec = &rs.spec;
    let selector = &spec.selector;
    let rs_uid = rs.metadata.uid.as_deref().unwrap_or_default();
    let rs_deleting = util::is_deleting(&rs.metadata);
    let matches = |pod: &Pod| {
        let empty = Default::default();
        let labels = pod.metadata.labels.as_ref().unwrap_or(&empty);
        util::selects(selector, labels)
    };

    let mut owned: Vec<Arc<Pod>> = Vec::new();
    for pod in pods {
        match util::controller_of(&pod.metadata) {
            Some(owner) if owner.uid == rs_uid => {
                if matches(pod) {
                    owned.push(pod.clone());
                } else if !rs_deleting {
                    plan.release.push(pod.clone());
                }
            }
            Some(_) => {}
            None => {
                if matches(pod) && !rs_deleting && !util::is_deleting(&pod.metadata) {
                    plan.adopt.push(pod.clone());
                    owned.push(pod.clone());
                }
            }
        }
    }

    let active: Vec<Arc<Pod>> = owned.into_iter().filter(|pod| util::is_pod_active(pod)).collect();
    let desired = spec.replicas.unwrap_or(1).max(0) as usize;
    if expectations_met && !rs_deleting {
        if active.len() < desired {
            plan.create = (desired - active.len()).min(BURST_REPLICAS);
        } else if active.len() > desired {
            let excess = (active.len() - desired).min(BURST_REPLICAS);
            let mut ranked = active.clone();
            ranked.sort_by(|a, b| deletion_order(a, b, now));
            ranked.truncate(excess);
            plan.delete = ranked;
        }
    }

    let min_ready = spec.min_ready_seconds.unwrap_or(0);
    let template_labels = spec
        .template
        .as_ref()
        .and_then(|template| template.metadata.as_ref())
        .and_then(|meta| meta.labels.clone())
        .unwrap_or_default();
    let fully_labeled = active
        .iter()
        .filter(|pod| {
            let labels = pod.metadata.labels.clone().unwrap_or_default();
            template_labels.iter().all(|(k, v)| labels.get(k) == Some(v))
        })
        .count();
    let ready = active.iter().filter(|pod| util::is_pod_ready(pod)).count();
    let available = active
        .iter()
        .filter(|pod| util::is_pod_available(pod, min_ready, now))
        .count();
    plan.requeue_after = active
        .iter()
        .filter_map(|pod| util::until_available(pod, min_ready, now))
        .min();

    let current = rs.status.clone().unwrap_or_default();
    let status = ReplicaSetStatus {
        replicas: active.len() as i32,
        fully_labeled_replicas: Some(fully_labeled as i32),
        ready_replicas: Some(ready as i32),
        available_replicas: Some(available as i32),
        observed_generation: rs.metadata.generation,
        ..current.clone()
    };
    if !same_status(&current, &status) {
        plan.status = Some(status);
    }
    plan
}

fn same_status(a: &ReplicaSetStatus, b: &ReplicaSetStatus) -> bool {
    a.replicas == b.replicas
        && a.fully_labeled_replicas.unwrap_or(0) == b.fully_labeled_replicas.unwrap_or(0)
        && a.ready_replicas.unwrap_or(0) == b.ready_replicas.unwrap_or(0)
        && a.available_replicas.unwrap_or(0) == b.available_replicas.unwrap_or(0)
        && a.observed_generation == b.observed_generation
}

/// Upstream's `ActivePods` order: the pod to delete first sorts first. Unscheduled before
/// scheduled, Pending before Unknown before Running, not ready before ready, ready for less
/// time before longer, more restarts before fewer, newer before older.
pub fn deletion_order(a: &Pod, b: &Pod, now: Timestamp) -> Ordering {
    let node = |pod: &Pod| {
        pod.spec
            .as_ref()
            .and_then(|spec| spec.node_name.as_deref())
            .is_some_and(|node| !node.is_empty())
    };
    let phase_rank = |pod: &Pod| match pod.status.as_ref().and_then(|status| status.phase.as_deref()) {
        Some("Pending") => 0,
        Some("Running") => 2,
        _ => 1,
    };
    let ready = |pod: &Pod| util::is_pod_ready(pod);
    let ready_for = |pod: &Pod| {
        util::ready_since(pod)
            .flatten()
            .map(|since| now.duration_since(since))
            .unwrap_or_default()
    };
    let restarts = |pod: &Pod| {
        pod.status
            .as_ref()
            .and_then(|status| status.container_statuses.as_ref())
            .map(|statuses| statuses.iter().map(|status| status.restart_count).max().unwrap_or(0))
            .unwrap_or(0)
    };
    let created = |pod: &Pod| pod.metadata.creation_timestamp.as_ref().map(|time| time.0);
    node(a)
        .cmp(&node(b))
        .then_with(|| phase_rank(a).cmp(&phase_rank(b)))
        .then_with(|| ready(a).cmp(&ready(b)))
        .then_with(|| {
            if ready(a) && ready(b) {
                ready_for(a).cmp(&ready_for(b))
            } else {
                Ordering::Equal
            }
        })
        .then_with(|| restarts(b).cmp(&restarts(a)))
        .then_with(|| match (created(a), created(b)) {
            (None, None) => Ordering::Equal,
            (None, Some(_)) => Ordering::Less,
            (Some(_), None) => Ordering::Greater,
            (Some(a), Some(b)) => b.cmp(&a),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::testing::*;
    use k8s_openapi::api::apps::v1::ReplicaSetSpec;
    use k8s_openapi::api::core::v1::PodTemplateSpec;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};

    fn rs(replicas: i32, min_ready: i32) -> ReplicaSet {
        let labels: std::collections::BTreeMap<String, String> = [("app".to_string(), "web".to_string())].into();
        ReplicaSet {
            metadata: ObjectMeta {
                name: Some("web".into()),
                namespace: Some("ns".into()),
                uid: Some("uid-web".into()),
                generation: Some(2),
                ..Default::default()
            },
            spec: ReplicaSetSpec {
                replicas: Some(replicas),
                min_ready_seconds: Some(min_ready),
                selector: LabelSelector {
                    match_labels: Some(labels.clone()),
                    ..Default::default()
                },
                template: Some(PodTemplateSpec {
                    metadata: Some(ObjectMeta {
                        labels: Some(
                            [
                                ("app".to_string(), "web".to_string()),
                                ("tier".to_string(), "fe".to_string()),
                            ]
                            .into(),
                        ),
                        ..Default::default()
                    }),
                    spec: None,
                }),
            },
            status: None,
        }
    }

    fn web(name: &str, age: i64) -> Pod {
        owned_by(pod(name, &[("app", "web"), ("tier", "fe")], age), "ReplicaSet", "web")
    }

    fn names(pods: &[Arc<Pod>]) -> Vec<String> {
        pods.iter()
            .map(|pod| pod.metadata.name.clone().unwrap_or_default())
            .collect()
    }

    struct Case {
        name: &'static str,
        rs: ReplicaSet,
        pods: Vec<Pod>,
        expectations_met: bool,
        create: usize,
        delete: Vec<&'static str>,
        adopt: Vec<&'static str>,
        release: Vec<&'static str>,
    }

    #[test]
    fn table() {
        let cases = vec![
            Case {
                name: "scale up from zero",
                rs: rs(3, 0),
                pods: vec![],
                expectations_met: true,
                create: 3,
                delete: vec![],
                adopt: vec![],
                release: vec![],
            },
            Case {
                name: "unmet expectations create nothing",
                rs: rs(3, 0),
                pods: vec![],
                expectations_met: false,
                create: 0,
                delete: vec![],
                adopt: vec![],
                release: vec![],
            },
            Case {
                name: "adopts a matching orphan and counts it",
                rs: rs(2, 0),
                pods: vec![
                    web("a", 10),
                    pod("orphan", &[("app", "web")], 10),
                    pod("other", &[("app", "db")], 10),
                ],
                expectations_met: true,
                create: 0,
                delete: vec![],
                adopt: vec!["orphan"],
                release: vec![],
            },
            Case {
                name: "releases an owned pod whose labels changed",
                rs: rs(1, 0),
                pods: vec![
                    web("a", 10),
                    owned_by(pod("b", &[("app", "db")], 10), "ReplicaSet", "web"),
                ],
                expectations_met: true,
                create: 0,
                delete: vec![],
                adopt: vec![],
                release: vec!["b"],
            },
            Case {
                name: "ignores pods controlled by others, finished and terminating pods",
                rs: rs(2, 0),
                pods: vec![
                    owned_by(pod("x", &[("app", "web")], 10), "ReplicaSet", "other"),
                    {
                        let mut pod = web("done", 10);
                        pod.status.as_mut().unwrap().phase = Some("Succeeded".into());
                        pod
                    },
                    {
                        let mut pod = web("gone", 10);
                        pod.metadata.deletion_timestamp = Some(ago(1));
                        pod
                    },
                ],
                expectations_met: true,
                create: 2,
                delete: vec![],
                adopt: vec![],
                release: vec![],
            },
            Case {
                name: "scale down prefers unscheduled, pending, not ready, newer",
                rs: rs(1, 0),
                pods: vec![
                    ready(web("old-ready", 100), 90),
                    ready(web("new-ready", 50), 40),
                    web("pending-old", 80),
                    web("pending-new", 20),
                ],
                expectations_met: true,
                create: 0,
                delete: vec!["pending-new", "pending-old", "new-ready"],
                adopt: vec![],
                release: vec![],
            },
        ];
        for case in cases {
            let pods: Vec<Arc<Pod>> = case.pods.into_iter().map(Arc::new).collect();
            let plan = decide(&case.rs, &pods, now(), case.expectations_met);
            assert_eq!(plan.create, case.create, "{}: create", case.name);
            assert_eq!(names(&plan.delete), case.delete, "{}: delete", case.name);
            assert_eq!(names(&plan.adopt), case.adopt, "{}: adopt", case.name);
            assert_eq!(names(&plan.release), case.release, "{}: release", case.name);
        }
    }

    #[test]
    fn status_counts_and_min_ready_requeue() {
        let rs = rs(3, 10);
        let pods: Vec<Arc<Pod>> = vec![
            Arc::new(ready(web("a", 100), 60)),
            Arc::new(ready(web("b", 100), 4)),
            Arc::new(owned_by(pod("c", &[("app", "web")], 100), "ReplicaSet", "web")),
        ];
        let plan = decide(&rs, &pods, now(), true);
        let status = plan.status.expect("status changes");
        assert_eq!(status.replicas, 3);
        assert_eq!(status.fully_labeled_replicas, Some(2));
        assert_eq!(status.ready_replicas, Some(2));
        assert_eq!(status.available_replicas, Some(1));
        assert_eq!(status.observed_generation, Some(2));
        assert_eq!(plan.requeue_after, Some(Duration::from_secs(6)));
        // Unchanged status is not written again.
        let mut synced = rs.clone();
        synced.status = Some(status);
        assert!(decide(&synced, &pods, now(), true).status.is_none());
    }

    #[test]
    fn deleting_replicaset_neither_creates_nor_adopts() {
        let mut rs = rs(3, 0);
        rs.metadata.deletion_timestamp = Some(ago(1));
        let pods = vec![Arc::new(pod("orphan", &[("app", "web")], 1))];
        let plan = decide(&rs, &pods, now(), true);
        assert_eq!(plan.create, 0);
        assert!(plan.adopt.is_empty());
    }
}
