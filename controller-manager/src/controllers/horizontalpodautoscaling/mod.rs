//! The horizontal pod autoscaler controller (`horizontalpodautoscaling`): every
//! `--horizontal-pod-autoscaler-sync-period` per HPA it reads the target's `/scale` (any
//! scalable kind, resolved through discovery), lists the target's pods by the scale's
//! selector, reads their usage from the resource Metrics API ([`metrics::MetricsSource`]),
//! decides (`decide`, `replicas`, `behavior`: upstream's replica calculation, stabilization
//! and scaling policies) and applies: the new size through `/scale`, the status, the events.
//! The recommendation and scale-event history is kept in memory, as upstream does.

pub mod behavior;
pub mod decide;
pub mod metrics;
pub mod replicas;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jiff::SignedDuration;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{DynamicObject, Patch, PatchParams, PostParams};
use kube::runtime::reflector::Store;
use kube::{Api, ResourceExt};
use serde_json::{Value, json};

use crate::clock::Clock;
use crate::context::{Context, EventRecorder};
use crate::controllers::wiring::{EventForwarder, Forward, resync_each};
use crate::discovery;
use crate::error::{Error, Result};
use crate::informer::Change;
use crate::queue::WorkQueue;
use crate::util;
use behavior::History;
use decide::{Inputs, Scale, Settings};
use metrics::{ApiMetricsSource, MetricsSource};

/// The controller's name in `--controllers`.
pub const NAME: &str = "horizontalpodautoscaling";

struct Controller {
    client: kube::Client,
    hpas: Store<HorizontalPodAutoscaler>,
    pods: Store<Pod>,
    recorder: EventRecorder,
    metrics: Arc<dyn MetricsSource>,
    clock: Clock,
    settings: Settings,
    histories: Mutex<HashMap<String, History>>,
    /// Each HPA's target selector at its last sync (upstream's `hpaSelectors`), by key.
    selectors: Mutex<HashMap<String, String>>,
    /// The served resources, refreshed when a scale target's kind is not among them.
    resources: tokio::sync::Mutex<Vec<discovery::Resource>>,
}

/// Runs the controller, reading the resource Metrics API through the apiserver.
pub async fn run(ctx: Arc<Context>) -> Result<()> {
    let source = Arc::new(ApiMetricsSource::new(ctx.client.clone()));
    run_with_metrics(ctx, source).await
}

/// Runs the controller with `metrics` as the source of pod usage, until the context is
/// cancelled.
pub async fn run_with_metrics(ctx: Arc<Context>, metrics: Arc<dyn MetricsSource>) -> Result<()> {
    let hpa_informer = ctx.informers.horizontalpodautoscalers();
    let pod_informer = ctx.informers.pods();
    let hpa_changes = hpa_informer.subscribe();
    hpa_informer.wait_ready().await?;
    pod_informer.wait_ready().await?;
    let options = &ctx.options;
    let settings = Settings {
        tolerance: options.horizontal_pod_autoscaler_tolerance,
        cpu_initialization_period: signed(options.horizontal_pod_autoscaler_cpu_initialization_period),
        initial_readiness_delay: signed(options.horizontal_pod_autoscaler_initial_readiness_delay),
        downscale_stabilization: signed(options.horizontal_pod_autoscaler_downscale_stabilization),
    };
    let controller = Arc::new(Controller {
        client: ctx.client.clone(),
        hpas: hpa_informer.store(),
        pods: pod_informer.store(),
        recorder: ctx.recorder("horizontal-pod-autoscaler"),
        metrics,
        clock: ctx.clock,
        settings,
        histories: Mutex::new(HashMap::new()),
        selectors: Mutex::new(HashMap::new()),
        resources: tokio::sync::Mutex::new(Vec::new()),
    });
    let queue = WorkQueue::<String>::new();
    let enqueue_all = resync_each(&queue, &controller.hpas, |hpa| [util::key_of(hpa)]);
    EventForwarder::new(&queue, enqueue_all)
        // A new HPA or a spec change is looked at at once; the controller's own status
        // writes wait for the next period, as upstream's rate-limited queue makes them.
        // A deleted one is synced once more to drop its history.
        .watch(hpa_changes, |change| match change {
            Change::Applied(hpa) => {
                let observed = hpa.status.as_ref().and_then(|s| s.observed_generation);
                let changed = observed.is_none() || observed != hpa.metadata.generation;
                Forward::Keys(changed.then(|| util::key_of(hpa.as_ref())))
            }
            Change::Deleted(hpa) => Forward::Keys(Some(util::key_of(hpa.as_ref()))),
            Change::Resynced => Forward::ResyncAll,
        })
        .every(options.horizontal_pod_autoscaler_sync_period)
        .run_workers(
            NAME,
            options.concurrent_horizontal_pod_autoscaler_syncs,
            &ctx.token,
            move |key: String| {
                let controller = controller.clone();
                async move { controller.sync(&key).await }
            },
        )
        .await;
    Ok(())
}

fn signed(duration: Duration) -> SignedDuration {
    SignedDuration::try_from(duration).unwrap_or(SignedDuration::MAX)
}

/// The message of an API error (the Status message, as upstream prints it).
fn message(error: &kube::Error) -> String {
    match error {
        kube::Error::Api(status) => status.message.clone(),
        other => other.to_string(),
    }
}

/// The group of an `apiVersion` (`apps/v1` → `apps`, `v1` → core).
fn group_of(api_version: &str) -> &str {
    api_version.split_once('/').map_or("", |(group, _)| group)
}

impl Controller {
    /// The resource serving `kind` in the group of `api_version`, refreshing discovery once.
    async fn resolve(&self, api_version: &str, kind: &str) -> Result<kube::discovery::ApiResource, String> {
        let group = group_of(api_version);
        // Discovery lists each resource in its group's preferred version, which serves the
        // same `/scale` as the version the reference names.
        let pick = |resources: &[discovery::Resource]| {
            resources
                .iter()
                .find(|r| r.resource.group == group && r.resource.kind == kind && r.namespaced())
                .map(|r| r.resource.clone())
        };
        let mut resources = self.resources.lock().await;
        if let Some(found) = pick(&resources) {
            return Ok(found);
        }
        *resources = discovery::resources(&self.client).await.map_err(|e| e.to_string())?;
        pick(&resources).ok_or_else(|| format!("no matches for kind \"{kind}\" in group \"{group}\""))
    }

    /// The target's scale API and its Scale.
    async fn scale(
        &self,
        hpa: &HorizontalPodAutoscaler,
        namespace: &str,
    ) -> Result<(Api<DynamicObject>, k8s_openapi::api::autoscaling::v1::Scale), String> {
        let target = &hpa.spec.scale_target_ref;
        let api_version = target.api_version.as_deref().unwrap_or_default();
        let resource = self.resolve(api_version, &target.kind).await?;
        let api: Api<DynamicObject> = Api::namespaced_with(self.client.clone(), namespace, &resource);
        let scale = api.get_scale(&target.name).await.map_err(|e| message(&e))?;
        Ok((api, scale))
    }

    async fn sync(&self, key: &str) -> Result<Option<Duration>> {
        let Some(hpa) = util::get(&self.hpas, key) else {
            self.histories.lock().unwrap_or_else(|e| e.into_inner()).remove(key);
            self.selectors.lock().unwrap_or_else(|e| e.into_inner()).remove(key);
            return Ok(None);
        };
        let namespace = hpa.namespace().unwrap_or_default();
        let scale = self.scale(&hpa, &namespace).await;
        let view = scale.as_ref().map_err(Clone::clone).map(|(_, scale)| Scale {
            spec_replicas: scale.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0),
            status_replicas: scale.status.as_ref().map_or(0, |s| s.replicas),
            selector: scale
                .status
                .as_ref()
                .and_then(|s| s.selector.clone())
                .unwrap_or_default(),
        });
        let pods: Vec<Arc<Pod>> = self
            .pods
            .state()
            .into_iter()
            .filter(|pod| pod.namespace().as_deref() == Some(namespace.as_str()))
            .collect();
        let pods: Vec<&Pod> = pods.iter().map(AsRef::as_ref).collect();
        let pod_metrics = match &view {
            Ok(scale) if decide::needs_pod_metrics(&hpa) && !scale.selector.is_empty() => {
                Some(self.metrics.pod_metrics(&namespace, &scale.selector).await)
            }
            _ => None,
        };
        let other_selectors: Vec<(String, String)> = {
            let mut selectors = self.selectors.lock().unwrap_or_else(|e| e.into_inner());
            if let Ok(scale) = &view {
                selectors.insert(key.to_string(), scale.selector.clone());
            }
            let prefix = format!("{namespace}/");
            selectors
                .iter()
                .filter(|(other, _)| other.as_str() != key)
                .filter_map(|(other, selector)| {
                    other
                        .strip_prefix(&prefix)
                        .map(|name| (name.to_string(), selector.clone()))
                })
                .collect()
        };
        let now = self.clock.now();
        let inputs = Inputs {
            other_selectors: &other_selectors,
            hpa: &hpa,
            scale: view,
            pods: &pods,
            pod_metrics: pod_metrics.as_ref(),
            now,
        };
        let mut plan = {
            let mut histories = self.histories.lock().unwrap_or_else(|e| e.into_inner());
            decide::decide(&inputs, &self.settings, histories.entry(key.to_string()).or_default())
        };
        if let (Some(rescale), Ok((api, scale))) = (plan.rescale.clone(), scale) {
            let mut scale = scale;
            scale.spec.get_or_insert_with(Default::default).replicas = Some(rescale.to);
            let result = api
                .replace_scale(&hpa.spec.scale_target_ref.name, &PostParams::default(), &scale)
                .await
                .map(drop)
                .map_err(|e| message(&e));
            if result.is_ok() {
                let mut histories = self.histories.lock().unwrap_or_else(|e| e.into_inner());
                histories.entry(key.to_string()).or_default().record_scale(
                    hpa.spec.behavior.as_ref(),
                    rescale.from,
                    rescale.to,
                    now,
                );
            }
            plan.rescaled(result, now);
        }
        for event in &plan.events {
            self.recorder
                .publish(hpa.as_ref(), event.warning, &event.reason, event.note.clone())
                .await;
        }
        let old = serde_json::to_value(hpa.status.clone().unwrap_or_default()).unwrap_or(Value::Null);
        let mut new = serde_json::to_value(&plan.status).map_err(|source| Error::Encode {
            what: format!("HorizontalPodAutoscaler status {key}"),
            source,
        })?;
        if old != new {
            if plan.status.current_metrics.is_none() {
                new["currentMetrics"] = Value::Null;
            }
            let api: Api<HorizontalPodAutoscaler> = Api::namespaced(self.client.clone(), &namespace);
            let patch = json!({ "status": new });
            match api
                .patch_status(&hpa.name_any(), &PatchParams::default(), &Patch::Merge(&patch))
                .await
            {
                Ok(_) => {}
                Err(error) if crate::error::is_not_found(&error) => {}
                Err(error) => {
                    let note = format!("failed to update status for {}: {}", hpa.name_any(), message(&error));
                    self.recorder
                        .publish(hpa.as_ref(), true, "FailedUpdateStatus", note)
                        .await;
                    return Err(Error::api("update status of", "HorizontalPodAutoscaler", key, error));
                }
            }
        }
        if let Some(error) = plan.error {
            tracing::debug!(controller = NAME, key, %error, "sync incomplete");
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests;
