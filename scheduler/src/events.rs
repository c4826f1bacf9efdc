//! Events (`events.k8s.io/v1`) about scheduling decisions: Scheduled, FailedScheduling,
//! Preempted. Sent in the background, never blocking a cycle: like upstream's broadcaster, a
//! full buffer drops events, and an event repeated for the same object, reason and note becomes
//! a series (count, last observed time) instead of a new object.

use std::collections::HashMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{ObjectReference, Pod};
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::jiff::Timestamp;
use kube::Resource;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;
use tokio::sync::{Semaphore, mpsc};

/// The reporting controller of every event (upstream's scheduler name).
pub const REPORTING_CONTROLLER: &str = "default-scheduler";
const BUFFER: usize = 1000;
const CONCURRENT_WRITES: usize = 16;
const MAX_SERIES_CACHE: usize = 4096;

struct PendingEvent {
    regarding: ObjectReference,
    type_: &'static str,
    reason: &'static str,
    action: &'static str,
    note: String,
}

/// Sends events from a background task; cheap to clone.
#[derive(Clone)]
pub struct EventRecorder {
    tx: mpsc::Sender<PendingEvent>,
}

impl EventRecorder {
    /// Starts the sender; it stops when every recorder is dropped.
    pub fn start(client: kube::Client, instance: String) -> Self {
        let (tx, rx) = mpsc::channel(BUFFER);
        tokio::spawn(send_events(client, instance, rx));
        Self { tx }
    }

    /// Records an event about `pod`; dropped if the buffer is full.
    pub fn record(&self, pod: &Pod, type_: &'static str, reason: &'static str, action: &'static str, note: String) {
        let event = PendingEvent {
            regarding: pod.object_ref(&()),
            type_,
            reason,
            action,
            note,
        };
        if self.tx.try_send(event).is_err() {
            tracing::debug!(reason, "event buffer full, dropping event");
        }
    }
}

async fn send_events(client: kube::Client, instance: String, mut rx: mpsc::Receiver<PendingEvent>) {
    let permits = Arc::new(Semaphore::new(CONCURRENT_WRITES));
    // (uid, reason, note) → (event name, count)
    let mut series: HashMap<(String, &'static str, String), (String, i32)> = HashMap::new();
    while let Some(event) = rx.recv().await {
        let namespace = event
            .regarding
            .namespace
            .clone()
            .unwrap_or_else(|| "default".to_string());
        let api: Api<Event> = Api::namespaced(client.clone(), &namespace);
        let now = Timestamp::now();
        let key = (
            event.regarding.uid.clone().unwrap_or_default(),
            event.reason,
            event.note.clone(),
        );
        if series.len() > MAX_SERIES_CACHE {
            series.clear();
        }
        let Ok(permit) = permits.clone().acquire_owned().await else {
            return;
        };
        match series.get_mut(&key) {
            Some((name, count)) => {
                *count += 1;
                let patch = json!({"series": {"count": *count, "lastObservedTime": now}});
                let name = name.clone();
                tokio::spawn(async move {
                    if let Err(error) = api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch)).await {
                        tracing::debug!(%error, event = %name, "cannot update event series");
                    }
                    drop(permit);
                });
            }
            None => {
                let name = format!(
                    "{}.{:x}",
                    event.regarding.name.clone().unwrap_or_default(),
                    now.as_nanosecond()
                );
                let body = json!({
                    "metadata": {"name": name, "namespace": namespace},
                    "eventTime": now,
                    "reportingController": REPORTING_CONTROLLER,
                    "reportingInstance": instance,
                    "action": event.action,
                    "reason": event.reason,
                    "note": event.note,
                    "type": event.type_,
                    "regarding": event.regarding,
                });
                series.insert(key, (name, 1));
                let Ok(body) = serde_json::from_value::<Event>(body) else {
                    continue;
                };
                tokio::spawn(async move {
                    if let Err(error) = api.create(&PostParams::default(), &body).await {
                        tracing::debug!(%error, "cannot create event");
                    }
                    drop(permit);
                });
            }
        }
    }
}
