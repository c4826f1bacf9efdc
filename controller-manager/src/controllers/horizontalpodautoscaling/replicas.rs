//! The replica calculation for resource metrics (upstream's `replica_calculator.go`): pods
//! grouped into ready, unready (not yet ready or still initialising their CPU), missing a
//! metric, and ignored (failed or being deleted); the usage ratio against the target; the
//! tolerance; and the second pass that assumes 0% for missing and unready pods on a scale-up
//! (100% of the request, or the target, for missing ones on a scale-down) and never flips
//! the direction.

use std::collections::{BTreeMap, BTreeSet};

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::core::v1::Pod;

use super::metrics::{PodMetric, PodMetricsInfo};

/// The tolerances around a usage ratio of 1 within which nothing changes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tolerances {
    pub scale_down: f64,
    pub scale_up: f64,
}

impl Tolerances {
    /// True when `ratio` is close enough to 1 not to scale.
    pub fn within(&self, ratio: f64) -> bool {
        (1.0 - self.scale_down) <= ratio && ratio <= (1.0 + self.scale_up)
    }
}

/// The settings and the time a calculation runs with.
#[derive(Debug, Clone, Copy)]
pub struct Calculator {
    pub tolerances: Tolerances,
    /// `--horizontal-pod-autoscaler-cpu-initialization-period`.
    pub cpu_initialization_period: SignedDuration,
    /// `--horizontal-pod-autoscaler-initial-readiness-delay`.
    pub initial_readiness_delay: SignedDuration,
    pub now: Timestamp,
}

/// Why no replica count could be computed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CalcError {
    #[error("no pods returned by selector while calculating replica count")]
    NoPods,
    #[error("did not receive metrics for targeted pods (pods might be unready)")]
    NoMetrics,
    #[error("missing request for {resource} in container {container} of Pod {pod}")]
    MissingRequest {
        resource: String,
        container: String,
        pod: String,
    },
    #[error("no metrics returned matched known pods")]
    NoMatchingRequests,
}

/// A utilization proposal: replicas, the utilization in percent of the requests, and the raw
/// average usage in milli-units.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UtilizationProposal {
    pub replicas: i32,
    pub utilization: i32,
    pub raw_average: i64,
}

/// How the pods fall for one resource.
#[derive(Debug, Default)]
struct Groups {
    ready: usize,
    unready: BTreeSet<String>,
    missing: BTreeSet<String>,
    ignored: BTreeSet<String>,
}

fn phase(pod: &Pod) -> &str {
    pod.status.as_ref().and_then(|s| s.phase.as_deref()).unwrap_or_default()
}

/// upstream's `groupPods`.
fn group_pods(calc: &Calculator, pods: &[&Pod], metrics: &PodMetricsInfo, resource: &str) -> Groups {
    let mut groups = Groups::default();
    for pod in pods {
        let name = pod.metadata.name.clone().unwrap_or_default();
        if pod.metadata.deletion_timestamp.is_some() || phase(pod) == "Failed" {
            groups.ignored.insert(name);
            continue;
        }
        if phase(pod) == "Pending" {
            groups.unready.insert(name);
            continue;
        }
        let Some(metric) = metrics.get(&name) else {
            groups.missing.insert(name);
            continue;
        };
        if resource == "cpu" && cpu_unready(calc, pod, metric) {
            groups.unready.insert(name);
            continue;
        }
        groups.ready += 1;
    }
    groups
}

/// A CPU sample does not count while the pod is unready in its initialisation period, or
/// when no full metric window was collected since it became ready; after that period only
/// pods that never became ready are ignored.
fn cpu_unready(calc: &Calculator, pod: &Pod, metric: &PodMetric) -> bool {
    let status = pod.status.as_ref();
    let condition = status
        .and_then(|s| s.conditions.as_ref())
        .and_then(|c| c.iter().find(|c| c.type_ == "Ready"));
    let start = status.and_then(|s| s.start_time.as_ref()).map(|t| t.0);
    let (Some(condition), Some(start)) = (condition, start) else {
        return true;
    };
    let transition = condition
        .last_transition_time
        .as_ref()
        .map(|t| t.0)
        .unwrap_or(Timestamp::UNIX_EPOCH);
    let add = |t: Timestamp, d: SignedDuration| t.checked_add(d).unwrap_or(t);
    if add(start, calc.cpu_initialization_period) > calc.now {
        let window = SignedDuration::try_from(metric.window).unwrap_or_default();
        condition.status == "False" || metric.timestamp < add(transition, window)
    } else {
        condition.status == "False" && add(start, calc.initial_readiness_delay) > transition
    }
}

/// upstream's `calculatePodRequests`: the milli-value of `resource` each pod requests, over
/// its containers and restartable init containers (or only `container`).
fn pod_requests(pods: &[&Pod], container: Option<&str>, resource: &str) -> Result<BTreeMap<String, i64>, CalcError> {
    let mut requests = BTreeMap::new();
    for pod in pods {
        let name = pod.metadata.name.clone().unwrap_or_default();
        let spec = pod.spec.as_ref();
        let sidecars = spec
            .and_then(|s| s.init_containers.as_ref())
            .into_iter()
            .flatten()
            .filter(|c| c.restart_policy.as_deref() == Some("Always"));
        let containers = spec.map(|s| s.containers.iter()).into_iter().flatten().chain(sidecars);
        let mut sum = 0i64;
        for c in containers.filter(|c| container.is_none_or(|wanted| wanted == c.name)) {
            let request = c
                .resources
                .as_ref()
                .and_then(|r| r.requests.as_ref())
                .and_then(|r| r.get(resource))
                .and_then(|q| api::quantity::Quantity::parse(&q.0));
            match request {
                Some(q) => sum = sum.saturating_add(q.milli_value()),
                None => {
                    return Err(CalcError::MissingRequest {
                        resource: resource.to_string(),
                        container: c.name.clone(),
                        pod: name,
                    });
                }
            }
        }
        requests.insert(name, sum);
    }
    Ok(requests)
}

/// upstream's `GetResourceUtilizationRatio`: (ratio, utilization %, raw average).
fn utilization_ratio(
    metrics: &BTreeMap<String, i64>,
    requests: &BTreeMap<String, i64>,
    target: i32,
) -> Result<(f64, i32, i64), CalcError> {
    let (mut used, mut requested, mut entries) = (0i64, 0i64, 0i64);
    for (pod, value) in metrics {
        if let Some(request) = requests.get(pod) {
            used += value;
            requested += request;
            entries += 1;
        }
    }
    if requested == 0 {
        return Err(CalcError::NoMatchingRequests);
    }
    let utilization = i32::try_from(used * 100 / requested).unwrap_or(i32::MAX);
    Ok((f64::from(utilization) / f64::from(target), utilization, used / entries))
}

/// The plain average of the values and its ratio to `target` (upstream's
/// `GetMetricUsageRatio`).
fn usage_ratio(metrics: &BTreeMap<String, i64>, target: i64) -> (f64, i64) {
    let total: i64 = metrics.values().sum();
    let average = total / i64::try_from(metrics.len().max(1)).unwrap_or(1);
    (average as f64 / target as f64, average)
}

/// The pods' readings once the ignored and unready ones are left out.
fn counted_values(metrics: &PodMetricsInfo, groups: &Groups) -> BTreeMap<String, i64> {
    metrics
        .iter()
        .filter(|(pod, _)| !groups.ignored.contains(*pod) && !groups.unready.contains(*pod))
        .map(|(pod, m)| (pod.clone(), m.value))
        .collect()
}

fn ceil_replicas(ratio: f64, count: usize) -> i32 {
    let replicas = (ratio * count as f64).ceil();
    if replicas >= f64::from(i32::MAX) {
        i32::MAX
    } else {
        replicas as i32
    }
}

/// What both calculations share after the first ratio: the second pass over missing and
/// unready pods. `fill_missing_down` is the value a missing pod is assumed to use on a
/// scale-down; `ratio` recomputes the ratio of the filled-in values.
fn second_pass(
    current: i32,
    tolerances: &Tolerances,
    first: f64,
    mut values: BTreeMap<String, i64>,
    groups: &Groups,
    fill_missing_down: impl Fn(&str) -> i64,
    ratio: impl Fn(&BTreeMap<String, i64>) -> Result<f64, CalcError>,
) -> Result<i32, CalcError> {
    let scale_up_with_unready = !groups.unready.is_empty() && first > 1.0;
    if !scale_up_with_unready && groups.missing.is_empty() {
        if tolerances.within(first) {
            return Ok(current);
        }
        return Ok(ceil_replicas(first, groups.ready));
    }
    for pod in &groups.missing {
        if first < 1.0 {
            values.insert(pod.clone(), fill_missing_down(pod));
        } else if first > 1.0 {
            values.insert(pod.clone(), 0);
        }
    }
    if scale_up_with_unready {
        for pod in &groups.unready {
            values.insert(pod.clone(), 0);
        }
    }
    let second = ratio(&values)?;
    if tolerances.within(second) || (first < 1.0 && second > 1.0) || (first > 1.0 && second < 1.0) {
        return Ok(current);
    }
    let replicas = ceil_replicas(second, values.len());
    if (second < 1.0 && replicas > current) || (second > 1.0 && replicas < current) {
        return Ok(current);
    }
    Ok(replicas)
}

/// upstream's `GetResourceReplicas`: a target utilization (percent of the requests).
pub fn resource_replicas(
    calc: &Calculator,
    current: i32,
    target_utilization: i32,
    resource: &str,
    container: Option<&str>,
    pods: &[&Pod],
    metrics: &PodMetricsInfo,
) -> Result<UtilizationProposal, CalcError> {
    if pods.is_empty() {
        return Err(CalcError::NoPods);
    }
    let groups = group_pods(calc, pods, metrics, resource);
    let values = counted_values(metrics, &groups);
    let requests = pod_requests(pods, container, resource)?;
    if values.is_empty() {
        return Err(CalcError::NoMetrics);
    }
    let (first, utilization, raw_average) = utilization_ratio(&values, &requests, target_utilization)?;
    let fallback = i64::from(target_utilization.max(100));
    let replicas = second_pass(
        current,
        &calc.tolerances,
        first,
        values,
        &groups,
        |pod| requests.get(pod).copied().unwrap_or(0) * fallback / 100,
        |values| utilization_ratio(values, &requests, target_utilization).map(|(ratio, _, _)| ratio),
    )?;
    Ok(UtilizationProposal {
        replicas,
        utilization,
        raw_average,
    })
}

/// upstream's `GetRawResourceReplicas`: a target average value per pod (milli-units); the
/// replicas and the current average.
pub fn raw_resource_replicas(
    calc: &Calculator,
    current: i32,
    target: i64,
    resource: &str,
    pods: &[&Pod],
    metrics: &PodMetricsInfo,
) -> Result<(i32, i64), CalcError> {
    if pods.is_empty() {
        return Err(CalcError::NoPods);
    }
    let groups = group_pods(calc, pods, metrics, resource);
    let values = counted_values(metrics, &groups);
    if values.is_empty() {
        return Err(CalcError::NoMetrics);
    }
    let (first, average) = usage_ratio(&values, target);
    let replicas = second_pass(
        current,
        &calc.tolerances,
        first,
        values,
        &groups,
        |_| target,
        |values| Ok(usage_ratio(values, target).0),
    )?;
    Ok((replicas, average))
}

#[cfg(test)]
#[path = "replicas_tests.rs"]
mod tests;
