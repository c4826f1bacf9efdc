//! The scheduler: pops a pod, runs one scheduling cycle against a fresh snapshot, assumes the
//! pod on the chosen node and binds it in the background (the binding cycle); on failure it
//! records FailedScheduling, sets PodScheduled=False and parks the pod in the queue.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, Patch, PatchParams, Preconditions};
use serde_json::json;
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::cache::Cache;
use crate::events::EventRecorder;
use crate::framework::{Code, CycleState, Framework, PodInfo, PostFilterResult, ScheduleResult};
use crate::metrics::Metrics;
use crate::plugins::{default_binder::DefaultBinder, default_plugins, framework};
use crate::queue::{QueuedPod, SchedulingQueue};
use crate::{SchedulerError, informers};

/// How the scheduler runs.
#[derive(Clone, Debug)]
pub struct SchedulerConfig {
    /// Pods with this `spec.schedulerName` are ours.
    pub scheduler_name: String,
    /// 0 = adaptive, as upstream.
    pub percentage_of_nodes_to_score: usize,
    pub preemption: bool,
    /// Bindings in flight at once.
    pub max_concurrent_bindings: usize,
    /// The events' reporting instance.
    pub instance: String,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        Self {
            scheduler_name: "default-scheduler".to_string(),
            percentage_of_nodes_to_score: 0,
            preemption: true,
            max_concurrent_bindings: 64,
            instance: "default-scheduler".to_string(),
        }
    }
}

/// See the module documentation.
pub struct Scheduler {
    pub(crate) client: kube::Client,
    pub(crate) config: SchedulerConfig,
    framework: Arc<Framework>,
    pub(crate) cache: Mutex<Cache>,
    pub(crate) queue: Arc<SchedulingQueue>,
    events: EventRecorder,
    pub metrics: Arc<Metrics>,
    bindings: Arc<Semaphore>,
}

impl Scheduler {
    /// A scheduler with the default plugins; call [`Scheduler::run`] (must be inside a Tokio
    /// runtime: it starts the event sender).
    pub fn new(client: kube::Client, config: SchedulerConfig) -> Arc<Self> {
        let binder = Arc::new(DefaultBinder::new(client.clone()));
        let mut framework = framework(default_plugins(Some(binder), config.preemption));
        framework.percentage_of_nodes_to_score = config.percentage_of_nodes_to_score;
        let queue = Arc::new(SchedulingQueue::new(framework.events.clone()));
        Arc::new(Self {
            events: EventRecorder::start(client.clone(), config.instance.clone()),
            bindings: Arc::new(Semaphore::new(config.max_concurrent_bindings.max(1))),
            client,
            config,
            framework: Arc::new(framework),
            cache: Mutex::default(),
            queue,
            metrics: Arc::default(),
        })
    }

    pub(crate) fn cache(&self) -> MutexGuard<'_, Cache> {
        self.cache.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Whether this scheduler handles `pod` (ours by name, not bound, not being deleted).
    pub(crate) fn responsible_for(&self, pod: &Pod) -> bool {
        let spec = pod.spec.as_ref();
        let name = spec
            .and_then(|s| s.scheduler_name.as_deref())
            .unwrap_or("default-scheduler");
        name == self.config.scheduler_name && spec.and_then(|s| s.node_name.as_deref()).is_none_or(str::is_empty)
    }

    /// Watches pods, nodes and namespaces, then schedules until `shutdown`.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) -> Result<(), SchedulerError> {
        let stop = shutdown.child_token();
        let synced = informers::start(self.clone(), stop.clone());
        tokio::select! {
            () = shutdown.cancelled() => return Ok(()),
            result = synced => result?,
        }
        tracing::info!(nodes = self.cache().counts().0, "caches synced, scheduling");
        tokio::spawn(self.queue.clone().run_flusher(Duration::from_millis(200), stop.clone()));
        loop {
            let popped = tokio::select! {
                () = shutdown.cancelled() => break,
                popped = self.queue.pop() => popped,
            };
            let Some(pod) = popped else { break };
            self.schedule_one(pod);
        }
        self.queue.close();
        stop.cancel();
        Ok(())
    }

    /// One scheduling cycle; the binding cycle continues in a task.
    pub(crate) fn schedule_one(self: &Arc<Self>, queued: QueuedPod) {
        let key = queued.info.key.clone();
        if queued.info.is_terminating() || self.cache().contains_pod(&key) {
            self.queue.done(&key);
            return;
        }
        let snapshot = self.cache().snapshot();
        let mut state = CycleState::default();
        let started = Instant::now();
        let result = self.framework.schedule(&mut state, &queued.info, &snapshot);
        self.metrics.record_algorithm_latency(started.elapsed());
        drop(snapshot);
        match result {
            ScheduleResult::Scheduled { node, .. } => self.assume_and_bind(queued, state, node),
            ScheduleResult::Unschedulable { diagnosis, nominated } => {
                Metrics::inc(&self.metrics.unschedulable);
                let message = diagnosis.message();
                tracing::debug!(pod = %key, %message, "unschedulable");
                self.queue
                    .add_unschedulable(&queued, diagnosis.unschedulable_plugins.clone());
                self.events.record(
                    &queued.info.pod,
                    "Warning",
                    "FailedScheduling",
                    "Scheduling",
                    message.clone(),
                );
                let nominated_node = nominated.as_ref().map(|n| n.nominated_node.clone());
                if let Some(nominated) = nominated {
                    self.preempt(&queued.info, nominated);
                }
                self.update_pod_condition(&queued.info, "Unschedulable", message, nominated_node);
            }
            ScheduleResult::Error(message) => {
                Metrics::inc(&self.metrics.errors);
                tracing::warn!(pod = %key, %message, "error scheduling pod");
                self.queue.add_unschedulable(&queued, BTreeSet::new());
                self.events.record(
                    &queued.info.pod,
                    "Warning",
                    "FailedScheduling",
                    "Scheduling",
                    message.clone(),
                );
                self.update_pod_condition(&queued.info, "SchedulerError", message, None);
            }
        }
    }

    fn assume_and_bind(self: &Arc<Self>, queued: QueuedPod, mut state: CycleState, node: String) {
        let key = queued.info.key.clone();
        let mut assumed_pod = (*queued.info.pod).clone();
        assumed_pod.spec.get_or_insert_default().node_name = Some(node.clone());
        let mut assumed = (*queued.info).clone();
        assumed.pod = Arc::new(assumed_pod);
        let assumed = Arc::new(assumed);
        if let Err(error) = self.cache().assume(assumed.clone()) {
            tracing::warn!(pod = %key, %error, "cannot assume pod");
            self.queue.done(&key);
            return;
        }
        let status = self.framework.run_reserve(&mut state, &assumed, &node);
        if !status.is_success() {
            self.cache().forget(&key);
            self.queue.add_unschedulable(&queued, BTreeSet::new());
            return;
        }
        self.queue.done(&key);
        Metrics::inc(&self.metrics.scheduled);
        self.metrics.record_queue_latency(queued.initial_add.elapsed());
        let this = self.clone();
        tokio::spawn(async move {
            let Ok(_permit) = this.bindings.clone().acquire_owned().await else {
                return;
            };
            let status = this.framework.run_bind(queued.info.pod.clone(), node.clone()).await;
            if status.is_success() {
                Metrics::inc(&this.metrics.bound);
                let note = format!("Successfully assigned {key} to {node}");
                this.events
                    .record(&queued.info.pod, "Normal", "Scheduled", "Binding", note);
                return;
            }
            this.cache().forget(&key);
            this.framework.run_unreserve(&mut state, &assumed, &node);
            if status.code == Code::Error {
                Metrics::inc(&this.metrics.errors);
                tracing::warn!(pod = %key, error = %status.message(), "binding failed");
                let note = format!("Binding rejected: {}", status.message());
                this.events
                    .record(&queued.info.pod, "Warning", "FailedScheduling", "Binding", note);
                this.queue.add_backoff(queued);
                this.queue
                    .move_on_event(crate::framework::ClusterEvent::AssignedPodDelete);
            } else {
                tracing::debug!(pod = %key, reason = %status.message(), "pod gone or bound elsewhere");
            }
        });
    }

    /// Deletes the victims (gracefully, only the exact pods chosen) in the background.
    fn preempt(&self, preemptor: &PodInfo, nominated: PostFilterResult) {
        for victim in nominated.victims {
            let api: Api<Pod> = Api::namespaced(self.client.clone(), &victim.namespace);
            let note = format!(
                "Preempted by pod {} on node {}",
                preemptor.uid, nominated.nominated_node
            );
            self.events
                .record(&victim.pod, "Normal", "Preempted", "Preempting", note);
            tokio::spawn(async move {
                let params = DeleteParams {
                    preconditions: Some(Preconditions {
                        uid: Some(victim.uid.clone()),
                        resource_version: None,
                    }),
                    ..DeleteParams::default()
                };
                if let Err(error) = api.delete(&victim.name, &params).await {
                    tracing::warn!(pod = %victim.key, %error, "cannot delete preemption victim");
                }
            });
        }
    }

    /// Sets PodScheduled=False (and the nominated node) when it differs from what the pod has.
    fn update_pod_condition(&self, pod: &PodInfo, reason: &'static str, message: String, nominated: Option<String>) {
        let status = pod.pod.status.as_ref();
        let current = status
            .and_then(|s| s.conditions.as_ref())
            .and_then(|c| c.iter().find(|c| c.type_ == "PodScheduled"));
        let unchanged = current.is_some_and(|c| {
            c.status == "False" && c.reason.as_deref() == Some(reason) && c.message.as_deref() == Some(message.as_str())
        });
        let nominated_unchanged =
            nominated.is_none() || status.and_then(|s| s.nominated_node_name.clone()) == nominated;
        if unchanged && nominated_unchanged {
            return;
        }
        let transition = match current {
            Some(c) if c.status == "False" => c.last_transition_time.clone().map(|t| t.0),
            _ => None,
        }
        .unwrap_or_else(k8s_openapi::jiff::Timestamp::now);
        let mut patch = json!({"status": {"conditions": [{
            "type": "PodScheduled",
            "status": "False",
            "reason": reason,
            "message": message,
            "lastProbeTime": null,
            "lastTransitionTime": transition,
        }]}});
        if let Some(node) = nominated {
            patch["status"]["nominatedNodeName"] = json!(node);
        }
        let api: Api<Pod> = Api::namespaced(self.client.clone(), &pod.namespace);
        let name = pod.name.clone();
        tokio::spawn(async move {
            if let Err(error) = api
                .patch_status(&name, &PatchParams::default(), &Patch::Strategic(&patch))
                .await
            {
                tracing::debug!(pod = %name, %error, "cannot update pod status");
            }
        });
    }
}
