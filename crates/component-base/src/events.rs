//! Events recorded the way upstream's kubelet and controller-manager record them (client-go's
//! `record.EventRecorder`): core/v1 Events with `source`, `firstTimestamp`, `lastTimestamp`
//! and `count`. When the same event about the same object happens again, the first one's count
//! and last timestamp are patched instead of a new Event being written.
//!
//! Why not kube-runtime's `Recorder`: it writes events.k8s.io Events (what upstream's
//! scheduler writes). Those have no `lastTimestamp`, so on a cluster where every component used
//! it, `kubectl get events --sort-by=.lastTimestamp` (the cheat sheet's command) found nothing
//! to sort by and printed nothing.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};

/// How many distinct events are remembered for counting repeats (client-go's LRU size).
const REMEMBERED: usize = 4096;

/// Writes Events as `component` (and `host`, for a node's agents).
#[derive(Clone)]
pub struct EventRecorder {
    client: kube::Client,
    component: String,
    host: Option<String>,
    seen: Arc<Mutex<Seen>>,
}

/// Events written so far: what identifies one → its namespace, name and count.
#[derive(Default)]
struct Seen {
    events: HashMap<String, (String, String, i32)>,
    order: VecDeque<String>,
}

impl Seen {
    fn remember(&mut self, key: String, value: (String, String, i32)) {
        if self.events.insert(key.clone(), value).is_none() {
            self.order.push_back(key);
        }
        while self.order.len() > REMEMBERED {
            if let Some(oldest) = self.order.pop_front() {
                self.events.remove(&oldest);
            }
        }
    }
}

/// The parts that make two events "the same" (client-go's `getEventKey`).
fn event_key(reference: &ObjectReference, warning: bool, reason: &str, message: &str) -> String {
    [
        reference.kind.as_deref().unwrap_or_default(),
        reference.namespace.as_deref().unwrap_or_default(),
        reference.name.as_deref().unwrap_or_default(),
        reference.uid.as_deref().unwrap_or_default(),
        reference.api_version.as_deref().unwrap_or_default(),
        reference.field_path.as_deref().unwrap_or_default(),
        if warning { "Warning" } else { "Normal" },
        reason,
        message,
    ]
    .join("\u{0}")
}

impl EventRecorder {
    pub fn new(client: kube::Client, component: &str, host: Option<String>) -> EventRecorder {
        EventRecorder {
            client,
            component: component.to_string(),
            host,
            seen: Arc::default(),
        }
    }

    /// Records an event about the object `reference` names: a new Event, or one more count
    /// of the same event recorded before.
    pub async fn record(
        &self,
        reference: &ObjectReference,
        warning: bool,
        reason: &str,
        message: &str,
    ) -> Result<(), kube::Error> {
        let now = Time(jiff::Timestamp::now());
        let key = event_key(reference, warning, reason, message);
        let repeat = self.lock().events.get(&key).cloned();
        if let Some((namespace, name, count)) = repeat {
            let api: Api<Event> = Api::namespaced(self.client.clone(), &namespace);
            let patch = serde_json::json!({"count": count + 1, "lastTimestamp": now});
            match api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch)).await {
                Ok(_) => {
                    self.lock().remember(key, (namespace, name, count + 1));
                    return Ok(());
                }
                // Gone (its TTL ran out): write it anew.
                Err(kube::Error::Api(status)) if status.code == 404 => {}
                Err(error) => return Err(error),
            }
        }
        // Cluster-scoped objects' events live in `default`, as upstream's.
        let namespace = reference
            .namespace
            .clone()
            .filter(|ns| !ns.is_empty())
            .unwrap_or_else(|| "default".to_string());
        let nanos = now.0.as_nanosecond();
        let name = format!("{}.{nanos:x}", reference.name.as_deref().unwrap_or("event"));
        let event = Event {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                namespace: Some(namespace.clone()),
                ..Default::default()
            },
            involved_object: reference.clone(),
            reason: Some(reason.to_string()),
            message: Some(message.to_string()),
            type_: Some(if warning { "Warning" } else { "Normal" }.to_string()),
            source: Some(EventSource {
                component: Some(self.component.clone()),
                host: self.host.clone(),
            }),
            first_timestamp: Some(now.clone()),
            last_timestamp: Some(now),
            count: Some(1),
            reporting_component: Some(self.component.clone()),
            reporting_instance: Some(self.host.clone().unwrap_or_default()),
            ..Default::default()
        };
        let api: Api<Event> = Api::namespaced(self.client.clone(), &namespace);
        api.create(&PostParams::default(), &event).await?;
        self.lock().remember(key, (namespace, name, 1));
        Ok(())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Seen> {
        self.seen.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod_ref(name: &str) -> ObjectReference {
        ObjectReference {
            kind: Some("Pod".into()),
            namespace: Some("default".into()),
            name: Some(name.into()),
            uid: Some(format!("uid-{name}")),
            api_version: Some("v1".into()),
            ..Default::default()
        }
    }

    #[test]
    fn the_same_event_has_the_same_key_and_any_difference_another() {
        let a = event_key(&pod_ref("a"), false, "Pulled", "pulled");
        assert_eq!(a, event_key(&pod_ref("a"), false, "Pulled", "pulled"));
        for other in [
            event_key(&pod_ref("b"), false, "Pulled", "pulled"),
            event_key(&pod_ref("a"), true, "Pulled", "pulled"),
            event_key(&pod_ref("a"), false, "Pulling", "pulled"),
            event_key(&pod_ref("a"), false, "Pulled", "pulled again"),
        ] {
            assert_ne!(a, other);
        }
    }

    #[test]
    fn only_the_newest_events_are_remembered() {
        let mut seen = Seen::default();
        for i in 0..REMEMBERED + 10 {
            seen.remember(format!("k{i}"), ("default".into(), format!("e{i}"), 1));
        }
        seen.remember("k20".into(), ("default".into(), "e20".into(), 2));
        assert_eq!(seen.events.len(), REMEMBERED);
        assert!(!seen.events.contains_key("k9") && seen.events.contains_key("k10"));
        assert_eq!(seen.events["k20"].2, 2);
        assert_eq!(seen.order.len(), REMEMBERED);
    }
}
