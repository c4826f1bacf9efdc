//! The node lifecycle controller: a Node whose kubelet has not renewed its Lease in
//! `kube-node-lease` (nor posted status) for `--node-monitor-grace-period` gets its kubelet
//! conditions set to Unknown; the `unreachable` / `not-ready` taints follow its Ready
//! condition (and go when it is Ready again); pods on a Node with a NoExecute taint are
//! evicted (deleted) once their toleration seconds for it run out, and marked not Ready
//! while their Node is unreachable.
//!
//! Health is judged by when this controller saw the heartbeat change (upstream's probe
//! timestamps), never by comparing the kubelet's clock with ours.

pub mod decide;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{DeleteParams, Patch, PatchParams, Preconditions};
use kube::runtime::reflector::Store;
use kube::{Api, ResourceExt};
use tokio::time::Instant;

use crate::context::{Context, EventRecorder};
use crate::controllers::wiring::{EventForwarder, When, resync_each};
use crate::error::{Error, Result, is_conflict, is_not_found};
use crate::queue::WorkQueue;
use crate::util;

/// The controller's name in `--controllers`.
pub const NAME: &str = "nodelifecycle";

/// The namespace of the kubelets' Leases.
const LEASE_NAMESPACE: &str = "kube-node-lease";

/// The last heartbeat seen for a Node and when this controller saw it change.
#[derive(Debug)]
struct Probe {
    heartbeat: (Option<Time>, Option<Time>),
    seen: Instant,
}

struct Controller {
    client: kube::Client,
    nodes: Store<Node>,
    leases: Store<Lease>,
    pods: Store<Pod>,
    grace: Duration,
    period: Duration,
    probes: Mutex<HashMap<String, Probe>>,
    recorder: EventRecorder,
}

/// Runs the controller until the context is cancelled.
pub async fn run(ctx: Arc<Context>) -> Result<()> {
    let node_informer = ctx.informers.nodes();
    let lease_informer = ctx.informers.leases();
    let pod_informer = ctx.informers.pods();
    let node_changes = node_informer.subscribe();
    let lease_changes = lease_informer.subscribe();
    let pod_changes = pod_informer.subscribe();
    node_informer.wait_ready().await?;
    lease_informer.wait_ready().await?;
    pod_informer.wait_ready().await?;
    let controller = Arc::new(Controller {
        client: ctx.client.clone(),
        nodes: node_informer.store(),
        leases: lease_informer.store(),
        pods: pod_informer.store(),
        grace: ctx.options.node_monitor_grace_period,
        period: ctx.options.node_monitor_period.max(Duration::from_millis(100)),
        probes: Mutex::new(HashMap::new()),
        recorder: ctx.recorder("node-controller"),
    });
    let queue = WorkQueue::<String>::new();
    let enqueue_all = resync_each(&queue, &controller.nodes, |node| [node.name_any()]);
    // No initial enqueue: the first tick, at once, is it.
    EventForwarder::new(&queue, enqueue_all)
        .every(controller.period)
        .on(node_changes, When::Changed, |node| [node.name_any()])
        .on(lease_changes, When::Changed, |lease| [lease.name_any()])
        .on(pod_changes, When::Applied, |pod| {
            pod.spec.as_ref().and_then(|spec| spec.node_name.clone())
        })
        .run_workers(NAME, 1, &ctx.token, move |name: String| {
            let controller = controller.clone();
            async move { controller.sync(&name).await }
        })
        .await;
    Ok(())
}

fn lock(probes: &Mutex<HashMap<String, Probe>>) -> std::sync::MutexGuard<'_, HashMap<String, Probe>> {
    probes.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Controller {
    /// True when the Node's kubelet posted within the grace period; the time left if so.
    fn health(&self, node: &Node) -> (bool, Duration) {
        let name = node.name_any();
        let lease = util::get(&self.leases, &util::key(Some(LEASE_NAMESPACE), &name));
        let renewed = lease.and_then(|lease| lease.spec.as_ref()?.renew_time.clone().map(|t| Time(t.0)));
        let posted = node
            .status
            .as_ref()
            .and_then(|status| status.conditions.as_ref())
            .and_then(|conditions| conditions.iter().find(|c| c.type_ == "Ready"))
            .and_then(|ready| ready.last_heartbeat_time.clone());
        let heartbeat = (renewed, posted);
        let now = Instant::now();
        let mut probes = lock(&self.probes);
        let probe = probes.entry(name).or_insert_with(|| Probe {
            heartbeat: heartbeat.clone(),
            seen: now,
        });
        if probe.heartbeat != heartbeat {
            probe.heartbeat = heartbeat;
            probe.seen = now;
        }
        let elapsed = now.duration_since(probe.seen);
        (elapsed <= self.grace, self.grace.saturating_sub(elapsed))
    }

    async fn sync(&self, name: &str) -> Result<Option<Duration>> {
        let Some(node) = util::get(&self.nodes, name) else {
            lock(&self.probes).remove(name);
            return Ok(None);
        };
        let (healthy, left) = self.health(&node);
        let now = jiff::Timestamp::now();
        let api: Api<Node> = Api::all(self.client.clone());
        let mut conditions = node
            .status
            .as_ref()
            .and_then(|status| status.conditions.clone())
            .unwrap_or_default();
        if let Some(updated) = decide::conditions(&node, healthy, now) {
            let patch = serde_json::json!({"status": {"conditions": updated}});
            match api
                .patch_status(name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
            {
                Ok(_) => {}
                Err(error) if is_not_found(&error) => return Ok(None),
                Err(error) => return Err(Error::api("update status of", "Node", name, error)),
            }
            tracing::info!(
                node = name,
                "kubelet stopped posting node status: conditions set to Unknown"
            );
            self.recorder
                .publish(
                    node.as_ref(),
                    false,
                    "NodeNotReady",
                    format!("Node {name} status is now: NodeNotReady"),
                )
                .await;
            conditions = updated;
        }
        let ready = decide::ready_status(&conditions).map(str::to_string);
        let mut taints = node
            .spec
            .as_ref()
            .and_then(|spec| spec.taints.clone())
            .unwrap_or_default();
        if decide::taints(&node, ready.as_deref(), now).is_some() {
            // Re-read: the taints are written with the resourceVersion they were computed from.
            let fresh = match api.get_opt(name).await {
                Ok(Some(fresh)) => fresh,
                Ok(None) => return Ok(None),
                Err(error) => return Err(Error::api("get", "Node", name, error)),
            };
            let fresh_ready = fresh
                .status
                .as_ref()
                .and_then(|status| status.conditions.as_ref())
                .and_then(|c| decide::ready_status(c).map(str::to_string));
            if let Some(updated) = decide::taints(&fresh, fresh_ready.as_deref(), now) {
                let patch = serde_json::json!({
                    "metadata": {"resourceVersion": fresh.metadata.resource_version},
                    "spec": {"taints": updated},
                });
                match api.patch(name, &PatchParams::default(), &Patch::Merge(&patch)).await {
                    Ok(_) => {}
                    Err(error) if is_not_found(&error) => return Ok(None),
                    Err(error) => return Err(Error::api("update taints of", "Node", name, error)),
                }
                tracing::info!(node = name, ready = ?fresh_ready, "node taints updated");
                taints = updated;
            }
        }
        let next_eviction = self.evict(name, &taints, ready.as_deref() == Some("Unknown")).await?;
        let mut again = self.period;
        if healthy {
            again = again.min(left + Duration::from_millis(100));
        }
        if let Some(next) = next_eviction {
            again = again.min(next.max(Duration::from_millis(100)));
        }
        Ok(Some(again))
    }

    /// Evicts the pods on Node `name` whose tolerations of its NoExecute taints ran out, marks
    /// the others not Ready when the Node is unreachable; returns when the next eviction is due.
    async fn evict(
        &self,
        name: &str,
        taints: &[k8s_openapi::api::core::v1::Taint],
        unreachable: bool,
    ) -> Result<Option<Duration>> {
        let now = jiff::Timestamp::now();
        let pods: Vec<Arc<Pod>> = self
            .pods
            .state()
            .into_iter()
            .filter(|pod| pod.spec.as_ref().and_then(|spec| spec.node_name.as_deref()) == Some(name))
            .filter(|pod| !util::is_deleting(&pod.metadata))
            .collect();
        let mut next: Option<Duration> = None;
        for pod in pods {
            let api: Api<Pod> = Api::namespaced(self.client.clone(), &pod.namespace().unwrap_or_default());
            match decide::eviction_delay(&pod, taints, now) {
                Some(delay) if delay.is_zero() => {
                    let params = DeleteParams {
                        preconditions: Some(Preconditions {
                            uid: pod.metadata.uid.clone(),
                            resource_version: None,
                        }),
                        ..DeleteParams::default()
                    };
                    match api.delete(&pod.name_any(), &params).await {
                        Ok(_) => {
                            tracing::info!(node = name, pod = %util::key_of(pod.as_ref()), "evicted pod from tainted node");
                            self.recorder
                                .publish(
                                    pod.as_ref(),
                                    false,
                                    "TaintManagerEviction",
                                    format!("Marking for deletion Pod {}", util::key_of(pod.as_ref())),
                                )
                                .await;
                        }
                        Err(error) if is_not_found(&error) || is_conflict(&error) => {}
                        Err(error) => return Err(Error::api("evict", "Pod", util::key_of(pod.as_ref()), error)),
                    }
                    continue;
                }
                Some(delay) => next = Some(next.map_or(delay, |n| n.min(delay))),
                None => {}
            }
            if unreachable && util::is_pod_ready(&pod) {
                self.mark_not_ready(&api, &pod).await?;
            }
        }
        Ok(next)
    }

    async fn mark_not_ready(&self, api: &Api<Pod>, pod: &Pod) -> Result<()> {
        let now = Time(jiff::Timestamp::now());
        let mut conditions = pod
            .status
            .as_ref()
            .and_then(|status| status.conditions.clone())
            .unwrap_or_default();
        for condition in conditions.iter_mut().filter(|c| c.type_ == "Ready") {
            condition.status = "False".into();
            condition.last_transition_time = Some(now.clone());
        }
        let patch = serde_json::json!({
            "metadata": {"resourceVersion": pod.metadata.resource_version},
            "status": {"conditions": conditions},
        });
        match api
            .patch_status(&pod.name_any(), &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(_) => Ok(()),
            Err(error) if is_not_found(&error) => Ok(()),
            Err(error) => Err(Error::api("mark not ready", "Pod", util::key_of(pod), error)),
        }
    }
}
