//! One HPA's reconcile as a pure step (upstream's `reconcileAutoscaler`): the target's scale,
//! the namespace's pods and the metrics read → the new status with its conditions, the
//! rescale to make and the events to record.

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::autoscaling::v2::{
    ContainerResourceMetricStatus, HorizontalPodAutoscaler, HorizontalPodAutoscalerCondition,
    HorizontalPodAutoscalerStatus, MetricSpec, MetricStatus, MetricTarget, MetricValueStatus, ResourceMetricStatus,
};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity as K8sQuantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, Time};

use super::behavior::History;
use super::metrics::{MetricsError, PodMetrics, resource_metric};
use super::replicas::{self, Calculator, Tolerances};

/// The controller's flags that shape a decision.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    pub tolerance: f64,
    pub cpu_initialization_period: SignedDuration,
    pub initial_readiness_delay: SignedDuration,
    pub downscale_stabilization: SignedDuration,
}

/// The target's `/scale`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scale {
    pub spec_replicas: i32,
    pub status_replicas: i32,
    pub selector: String,
}

/// What one sync saw.
pub struct Inputs<'a> {
    pub hpa: &'a HorizontalPodAutoscaler,
    /// The scale, or why it could not be read.
    pub scale: Result<Scale, String>,
    /// The pods of the HPA's namespace.
    pub pods: &'a [&'a Pod],
    /// The resource metrics of the target's pods, when a Resource metric asked for them.
    pub pod_metrics: Option<&'a Result<Vec<PodMetrics>, MetricsError>>,
    /// The other HPAs of the namespace with the selector their targets' scales had at their
    /// last sync: `(name, selector)`.
    pub other_selectors: &'a [(String, String)],
    pub now: Timestamp,
}

/// An event to record about the HPA.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedEvent {
    pub warning: bool,
    pub reason: String,
    pub note: String,
}

/// A change of the target's replicas.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rescale {
    pub from: i32,
    pub to: i32,
    pub reason: String,
}

/// What to do.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The status to write (if it differs from the HPA's).
    pub status: HorizontalPodAutoscalerStatus,
    pub rescale: Option<Rescale>,
    pub events: Vec<PlannedEvent>,
    /// The sync's error, if any (retried with back-off, like upstream's returned error).
    pub error: Option<String>,
    /// The desired replicas the status keeps if the rescale fails.
    previous_desired: i32,
}

/// True when `spec` asks for pod resource metrics.
pub fn needs_pod_metrics(hpa: &HorizontalPodAutoscaler) -> bool {
    hpa.spec
        .metrics
        .iter()
        .flatten()
        .any(|m| matches!(m.type_.as_str(), "Resource" | "ContainerResource"))
}

impl Plan {
    fn event(&mut self, warning: bool, reason: &str, note: String) {
        self.events.push(PlannedEvent {
            warning,
            reason: reason.to_string(),
            note,
        });
    }

    fn condition(&mut self, type_: &str, status: bool, reason: &str, message: String, now: Timestamp) {
        set_condition(&mut self.status, type_, status, reason, message, now);
    }

    /// Completes the plan with the rescale's outcome.
    pub fn rescaled(&mut self, result: Result<(), String>, now: Timestamp) {
        let Some(rescale) = self.rescale.clone() else { return };
        match result {
            Ok(()) => {
                let message = format!(
                    "the HPA controller was able to update the target scale to {}",
                    rescale.to
                );
                self.condition("AbleToScale", true, "SucceededRescale", message, now);
                let note = format!("New size: {}; reason: {}", rescale.to, rescale.reason);
                self.event(false, "SuccessfulRescale", note);
                self.status.last_scale_time = Some(Time(now));
            }
            Err(error) => {
                let note = format!("New size: {}; reason: {}; error: {error}", rescale.to, rescale.reason);
                self.event(true, "FailedRescale", note);
                let message = format!("the HPA controller was unable to update the target scale: {error}");
                self.condition("AbleToScale", false, "FailedUpdateScale", message, now);
                self.status.desired_replicas = self.previous_desired;
                self.error = Some(format!("failed to rescale: {error}"));
            }
        }
    }
}

/// upstream's `setCondition`: the transition time moves only when the status changes.
pub fn set_condition(
    status: &mut HorizontalPodAutoscalerStatus,
    type_: &str,
    value: bool,
    reason: &str,
    message: String,
    now: Timestamp,
) {
    let conditions = status.conditions.get_or_insert_with(Vec::new);
    let index = match conditions.iter().position(|c| c.type_ == type_) {
        Some(index) => index,
        None => {
            conditions.push(HorizontalPodAutoscalerCondition {
                type_: type_.to_string(),
                ..Default::default()
            });
            conditions.len() - 1
        }
    };
    let condition = &mut conditions[index];
    let value = if value { "True" } else { "False" };
    if condition.status != value {
        condition.last_transition_time = Some(Time(now));
    }
    condition.status = value.to_string();
    condition.reason = Some(reason.to_string());
    condition.message = Some(message);
}

/// A milli-value as a DecimalSI quantity (`250m`, `1`).
fn milli_quantity(milli: i64) -> K8sQuantity {
    let text = format!("{milli}m");
    K8sQuantity(
        api::quantity::Quantity::parse(&text)
            .map(|q| q.to_string())
            .unwrap_or(text),
    )
}

/// One metric's outcome: the proposal, the metric's name for messages and its status.
struct Proposal {
    replicas: i32,
    name: String,
    status: MetricStatus,
}

/// One metric's failure: the reason for the condition and event, and the error.
struct Failure {
    reason: &'static str,
    error: String,
    outer: String,
}

const NO_CUSTOM_METRICS: &str =
    "unable to fetch metrics from custom metrics API: no custom metrics API (custom.metrics.k8s.io) registered";

fn go_selector(selector: Option<&LabelSelector>) -> String {
    let Some(selector) = selector else { return "nil".into() };
    let labels: String = selector
        .match_labels
        .iter()
        .flatten()
        .map(|(k, v)| format!("{k}: {v},"))
        .collect();
    format!(
        "&LabelSelector{{MatchLabels:map[string]string{{{labels}}},MatchExpressions:[]LabelSelectorRequirement{{}},}}"
    )
}

/// The context one metric is computed in.
struct MetricContext<'a> {
    calc: Calculator,
    namespace: &'a str,
    current: i32,
    pods: &'a [&'a Pod],
    pod_metrics: Option<&'a Result<Vec<PodMetrics>, MetricsError>>,
}

impl MetricContext<'_> {
    /// upstream's `computeStatusForResourceMetricGeneric`: (replicas, status, name).
    fn resource(
        &self,
        target: &MetricTarget,
        resource: &str,
        container: Option<&str>,
    ) -> Result<(i32, MetricValueStatus, String), String> {
        let read = || -> Result<super::metrics::PodMetricsInfo, String> {
            let items = match self.pod_metrics {
                Some(Ok(items)) => items.as_slice(),
                Some(Err(error)) => {
                    return Err(format!(
                        "unable to get metrics for resource {resource}: unable to fetch metrics from resource metrics API: {error}"
                    ));
                }
                None => &[],
            };
            resource_metric(items, resource, container)
                .map(|(info, _)| info)
                .map_err(|error| format!("unable to get metrics for resource {resource}: {error}"))
        };
        if let Some(average) = &target.average_value {
            let target_milli = api::quantity::Quantity::parse(&average.0)
                .map(|q| q.milli_value())
                .unwrap_or(0);
            let info = read().map_err(|e| format!("failed to get {resource} usage: {e}"))?;
            let (replicas, usage) =
                replicas::raw_resource_replicas(&self.calc, self.current, target_milli, resource, self.pods, &info)
                    .map_err(|e| format!("failed to get {resource} usage: {e}"))?;
            let status = MetricValueStatus {
                average_value: Some(milli_quantity(usage)),
                ..Default::default()
            };
            return Ok((replicas, status, format!("{resource} resource")));
        }
        let Some(utilization) = target.average_utilization else {
            return Err("invalid resource metric source: neither an average utilization target nor an average value (usage) target was set".into());
        };
        let info = read().map_err(|e| format!("failed to get {resource} utilization: {e}"))?;
        let proposal = replicas::resource_replicas(
            &self.calc,
            self.current,
            utilization,
            resource,
            container,
            self.pods,
            &info,
        )
        .map_err(|e| format!("failed to get {resource} utilization: {e}"))?;
        let name = match container {
            Some(_) => format!("{resource} container resource utilization (percentage of request)"),
            None => format!("{resource} resource utilization (percentage of request)"),
        };
        let status = MetricValueStatus {
            average_utilization: Some(proposal.utilization),
            average_value: Some(milli_quantity(proposal.raw_average)),
            value: None,
        };
        Ok((proposal.replicas, status, name))
    }

    /// upstream's `computeReplicasForMetric`.
    fn compute(&self, spec: &MetricSpec) -> Result<Proposal, Failure> {
        match spec.type_.as_str() {
            "Resource" => {
                let source = spec.resource.as_ref().ok_or_else(|| missing_source("resource"))?;
                let (replicas, current, name) =
                    self.resource(&source.target, &source.name, None)
                        .map_err(|error| Failure {
                            reason: "FailedGetResourceMetric",
                            outer: format!("failed to get {} resource metric value: {error}", source.name),
                            error,
                        })?;
                Ok(Proposal {
                    replicas,
                    name,
                    status: MetricStatus {
                        type_: "Resource".into(),
                        resource: Some(ResourceMetricStatus {
                            name: source.name.clone(),
                            current,
                        }),
                        ..Default::default()
                    },
                })
            }
            "ContainerResource" => {
                let source = spec
                    .container_resource
                    .as_ref()
                    .ok_or_else(|| missing_source("containerResource"))?;
                let (replicas, current, name) = self
                    .resource(&source.target, &source.name, Some(&source.container))
                    .map_err(|error| Failure {
                        reason: "FailedGetContainerResourceMetric",
                        outer: format!("failed to get {} container metric value: {error}", source.container),
                        error,
                    })?;
                Ok(Proposal {
                    replicas,
                    name,
                    status: MetricStatus {
                        type_: "ContainerResource".into(),
                        container_resource: Some(ContainerResourceMetricStatus {
                            name: source.name.clone(),
                            container: source.container.clone(),
                            current,
                        }),
                        ..Default::default()
                    },
                })
            }
            // No custom or external metrics API is served: what upstream reports then.
            "Pods" => {
                let metric = spec.pods.as_ref().map(|p| p.metric.name.clone()).unwrap_or_default();
                let error = format!("unable to get metric {metric}: {NO_CUSTOM_METRICS}");
                Err(Failure {
                    reason: "FailedGetPodsMetric",
                    outer: format!("failed to get pods metric value: {error}"),
                    error,
                })
            }
            "Object" => {
                let (metric, kind, name) = spec
                    .object
                    .as_ref()
                    .map(|o| {
                        (
                            o.metric.name.clone(),
                            o.described_object.kind.clone(),
                            o.described_object.name.clone(),
                        )
                    })
                    .unwrap_or_default();
                let error = format!(
                    "unable to get metric {metric}: {kind} on {} {name}/{NO_CUSTOM_METRICS}",
                    self.namespace
                );
                Err(Failure {
                    reason: "FailedGetObjectMetric",
                    outer: format!("failed to get object metric value: {error}"),
                    error,
                })
            }
            "External" => {
                let (metric, selector) = spec
                    .external
                    .as_ref()
                    .map(|e| (e.metric.name.clone(), go_selector(e.metric.selector.as_ref())))
                    .unwrap_or_else(|| (String::new(), go_selector(None)));
                let error = format!(
                    "unable to get external metric {}/{metric}/{selector}: unable to fetch metrics from external metrics API: the server could not find the requested resource (get {metric}.external.metrics.k8s.io)",
                    self.namespace
                );
                Err(Failure {
                    reason: "FailedGetExternalMetric",
                    outer: format!("failed to get {metric} external metric value: {error}"),
                    error,
                })
            }
            other => {
                let error = format!("unknown metric source type {other:?}");
                Err(Failure {
                    reason: "InvalidMetricSourceType",
                    outer: error.clone(),
                    error,
                })
            }
        }
    }
}

fn missing_source(field: &str) -> Failure {
    let error = format!("the metric's {field} source is missing");
    Failure {
        reason: "InvalidMetricSourceType",
        outer: error.clone(),
        error,
    }
}

/// Decides one sync of `inputs.hpa`; `history` is its in-memory recommendation and scale
/// history, updated as upstream does.
pub fn decide(inputs: &Inputs<'_>, settings: &Settings, history: &mut History) -> Plan {
    let hpa = inputs.hpa;
    let now = inputs.now;
    let old = hpa.status.clone().unwrap_or_default();
    let mut plan = Plan {
        status: old.clone(),
        rescale: None,
        events: Vec::new(),
        error: None,
        previous_desired: old.desired_replicas,
    };
    plan.status.observed_generation = hpa.metadata.generation;
    let target = &hpa.spec.scale_target_ref;
    let scale = match &inputs.scale {
        Ok(scale) => scale,
        Err(error) => {
            plan.event(true, "FailedGetScale", error.clone());
            let message = format!("the HPA controller was unable to get the target's current scale: {error}");
            plan.condition("AbleToScale", false, "FailedGetScale", message, now);
            plan.error = Some(format!(
                "failed to query scale subresource for {}: {error}",
                target.name
            ));
            return plan;
        }
    };
    plan.condition(
        "AbleToScale",
        true,
        "SucceededGetScale",
        "the HPA controller was able to get the target's current scale".into(),
        now,
    );
    let current = scale.spec_replicas;
    history.record_initial(current, now);
    let min = hpa.spec.min_replicas.unwrap_or(1);
    let max = hpa.spec.max_replicas;
    let mut statuses: Option<Vec<MetricStatus>> = None;
    let (desired, reason, rescale) = if current == 0 && min != 0 {
        plan.condition(
            "ScalingActive",
            false,
            "ScalingDisabled",
            "scaling is disabled since the replica count of the target is zero".into(),
            now,
        );
        (0, String::new(), false)
    } else if current > max {
        (
            max,
            "Current number of replicas above Spec.MaxReplicas".to_string(),
            true,
        )
    } else if current < min {
        (
            min,
            "Current number of replicas below Spec.MinReplicas".to_string(),
            true,
        )
    } else {
        let computed = compute_replicas(inputs, settings, scale, &mut plan);
        statuses = computed.statuses;
        let Some((proposal, metric)) = computed.proposal else {
            plan.status.current_replicas = Some(current);
            plan.status.current_metrics = statuses;
            if let Some(error) = computed.error {
                plan.event(true, "FailedComputeMetricsReplicas", error.clone());
                plan.error = Some(format!(
                    "failed to compute desired number of replicas based on listed metrics for {}/{}/{}: {error}",
                    target.kind,
                    hpa.metadata.namespace.as_deref().unwrap_or_default(),
                    target.name
                ));
            }
            return plan;
        };
        plan.error = computed.error;
        let reason = if proposal > current {
            format!("{metric} above target")
        } else if proposal < current {
            "All metrics below target".to_string()
        } else {
            String::new()
        };
        let normalized = match &hpa.spec.behavior {
            None => history.normalize_legacy(current, proposal, min, max, settings.downscale_stabilization, now),
            Some(behavior) => history.normalize_with_behavior(
                behavior,
                current,
                proposal,
                min,
                max,
                settings.downscale_stabilization,
                now,
            ),
        };
        plan.condition(
            "AbleToScale",
            true,
            normalized.able_to_scale.0,
            normalized.able_to_scale.1.into(),
            now,
        );
        plan.condition(
            "ScalingLimited",
            normalized.limited,
            normalized.limited_reason.0,
            normalized.limited_reason.1.into(),
            now,
        );
        (normalized.replicas, reason, normalized.replicas != current)
    };
    plan.status.current_replicas = Some(current);
    plan.status.current_metrics = statuses;
    if rescale {
        plan.status.desired_replicas = desired;
        plan.rescale = Some(Rescale {
            from: current,
            to: desired,
            reason,
        });
    } else {
        plan.status.desired_replicas = current;
    }
    plan
}

/// The outcome of all metrics: the highest proposal with its metric, the statuses, and the
/// error (with a proposal: some metrics failed but scaling goes ahead).
struct Computed {
    proposal: Option<(i32, String)>,
    statuses: Option<Vec<MetricStatus>>,
    error: Option<String>,
}

/// upstream's `computeReplicasForMetrics`.
fn compute_replicas(inputs: &Inputs<'_>, settings: &Settings, scale: &Scale, plan: &mut Plan) -> Computed {
    let now = inputs.now;
    let fail = |error: String| Computed {
        proposal: None,
        statuses: None,
        error: Some(error),
    };
    if scale.selector.is_empty() {
        plan.event(true, "SelectorRequired", "selector is required".into());
        plan.condition(
            "ScalingActive",
            false,
            "InvalidSelector",
            "the HPA target's scale is missing a selector".into(),
            now,
        );
        return fail("selector is required".into());
    }
    let selector = match api::selector::LabelSelector::parse(&scale.selector) {
        Ok(selector) => selector,
        Err(error) => {
            let message = format!("couldn't convert selector into a corresponding internal selector object: {error}");
            plan.event(true, "InvalidSelector", message.clone());
            plan.condition("ScalingActive", false, "InvalidSelector", message.clone(), now);
            return fail(message);
        }
    };
    let pods: Vec<&Pod> = inputs
        .pods
        .iter()
        .copied()
        .filter(|pod| selector.matches(pod.metadata.labels.as_ref().unwrap_or(&Default::default())))
        .collect();
    if let Some(message) = ambiguous(inputs, &scale.selector, &pods) {
        plan.event(true, "AmbiguousSelector", message.clone());
        plan.condition("ScalingActive", false, "AmbiguousSelector", message.clone(), now);
        return fail(message);
    }
    let context = MetricContext {
        calc: Calculator {
            tolerances: tolerances(inputs.hpa, settings.tolerance),
            cpu_initialization_period: settings.cpu_initialization_period,
            initial_readiness_delay: settings.initial_readiness_delay,
            now,
        },
        namespace: inputs.hpa.metadata.namespace.as_deref().unwrap_or_default(),
        current: scale.spec_replicas,
        pods: &pods,
        pod_metrics: inputs.pod_metrics,
    };
    let specs = inputs.hpa.spec.metrics.clone().unwrap_or_default();
    let mut statuses = vec![MetricStatus::default(); specs.len()];
    let mut best: Option<(i32, String)> = None;
    let mut invalid = 0;
    let mut first_failure: Option<Failure> = None;
    for (index, spec) in specs.iter().enumerate() {
        match context.compute(spec) {
            Ok(proposal) => {
                statuses[index] = proposal.status;
                if best.as_ref().is_none_or(|(replicas, _)| proposal.replicas > *replicas) {
                    best = Some((proposal.replicas, proposal.name));
                }
            }
            Err(failure) => {
                plan.event(true, failure.reason, failure.error.clone());
                invalid += 1;
                first_failure.get_or_insert(failure);
            }
        }
    }
    let error = first_failure.as_ref().map(|failure| {
        format!(
            "invalid metrics ({invalid} invalid out of {}), first error is: {}",
            specs.len(),
            failure.outer
        )
    });
    let replicas = best.as_ref().map_or(0, |(replicas, _)| *replicas);
    if invalid >= specs.len() || (invalid > 0 && replicas < scale.spec_replicas) {
        if let Some(failure) = &first_failure {
            let message = format!("the HPA was unable to compute the replica count: {}", failure.error);
            plan.condition("ScalingActive", false, failure.reason, message, now);
        }
        return Computed {
            proposal: None,
            statuses: Some(statuses),
            error: error.or_else(|| Some("no metrics to compute the replica count from".into())),
        };
    }
    let metric = best.as_ref().map(|(_, name)| name.clone()).unwrap_or_default();
    plan.condition(
        "ScalingActive",
        true,
        "ValidMetricFound",
        format!("the HPA was able to successfully calculate a replica count from {metric}"),
        now,
    );
    Computed {
        proposal: best,
        statuses: Some(statuses),
        error,
    }
}

/// upstream's check that no pod is under two HPAs: the HPAs (this one included) whose
/// selector selects one of `pods`.
fn ambiguous(inputs: &Inputs<'_>, selector: &str, pods: &[&Pod]) -> Option<String> {
    let own = inputs.hpa.metadata.name.clone().unwrap_or_default();
    let empty = Default::default();
    let mut selecting: Vec<&str> = inputs
        .other_selectors
        .iter()
        .filter(|(name, _)| *name != own)
        .filter(|(_, text)| {
            api::selector::LabelSelector::parse(text).is_ok_and(|other| {
                !text.is_empty()
                    && pods
                        .iter()
                        .any(|pod| other.matches(pod.metadata.labels.as_ref().unwrap_or(&empty)))
            })
        })
        .map(|(name, _)| name.as_str())
        .collect();
    if selecting.is_empty() || pods.is_empty() {
        return None;
    }
    selecting.push(&own);
    selecting.sort_unstable();
    let namespace = inputs.hpa.metadata.namespace.as_deref().unwrap_or_default();
    let keys: Vec<String> = selecting.iter().map(|name| format!("{{{name} {namespace}}}")).collect();
    Some(format!(
        "pods by selector {selector} are controlled by multiple HPAs: [{}]",
        keys.join(" ")
    ))
}

/// The tolerances: `--horizontal-pod-autoscaler-tolerance`, or a direction's own.
fn tolerances(hpa: &HorizontalPodAutoscaler, default: f64) -> Tolerances {
    let own = |rules: Option<&k8s_openapi::api::autoscaling::v2::HPAScalingRules>| {
        rules
            .and_then(|r| r.tolerance.as_ref())
            .and_then(|q| api::quantity::Quantity::parse(&q.0))
            .map(|q| q.milli_value() as f64 / 1000.0)
            .unwrap_or(default)
    };
    let behavior = hpa.spec.behavior.as_ref();
    Tolerances {
        scale_down: own(behavior.and_then(|b| b.scale_down.as_ref())),
        scale_up: own(behavior.and_then(|b| b.scale_up.as_ref())),
    }
}

#[cfg(test)]
#[path = "decide_tests.rs"]
pub(super) mod tests;
