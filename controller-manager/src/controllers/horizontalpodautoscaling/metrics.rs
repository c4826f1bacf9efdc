//! Where the autoscaler reads pod usage: the resource Metrics API
//! (`metrics.k8s.io/v1beta1` PodMetrics) behind the [`MetricsSource`] trait, so tests use a
//! fake, and upstream's reduction of a PodMetrics list to one milli-value per pod
//! (`metrics/client.go`).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use api::quantity::Quantity;
use futures::future::BoxFuture;
use jiff::Timestamp;
use serde::Deserialize;

/// The path of the resource Metrics API's pod metrics in `namespace`.
pub fn pod_metrics_path(namespace: &str) -> String {
    format!("/apis/metrics.k8s.io/v1beta1/namespaces/{namespace}/pods")
}

/// Why the metrics could not be read.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct MetricsError(pub String);

/// One container's usage.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ContainerUsage {
    pub name: String,
    /// Resource name → quantity.
    pub usage: BTreeMap<String, Quantity>,
}

/// One pod's PodMetrics item.
#[derive(Debug, Clone, PartialEq)]
pub struct PodMetrics {
    pub name: String,
    pub timestamp: Timestamp,
    pub window: Duration,
    pub containers: Vec<ContainerUsage>,
}

/// Reads pod metrics: `selector` is the label selector text of the scale target's pods.
pub trait MetricsSource: Send + Sync {
    /// The PodMetrics of `namespace` matching `selector`.
    fn pod_metrics<'a>(
        &'a self,
        namespace: &'a str,
        selector: &'a str,
    ) -> BoxFuture<'a, Result<Vec<PodMetrics>, MetricsError>>;
}

/// The real source: a LIST of the Metrics API through the apiserver.
pub struct ApiMetricsSource {
    client: kube::Client,
}

impl ApiMetricsSource {
    pub fn new(client: kube::Client) -> Self {
        ApiMetricsSource { client }
    }
}

#[derive(Deserialize)]
struct WireList {
    #[serde(default)]
    items: Vec<WireItem>,
}

#[derive(Deserialize)]
struct WireItem {
    #[serde(default)]
    metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
    timestamp: Option<String>,
    window: Option<String>,
    #[serde(default)]
    containers: Vec<WireContainer>,
}

#[derive(Deserialize)]
struct WireContainer {
    #[serde(default)]
    name: String,
    #[serde(default)]
    usage: BTreeMap<String, serde_json::Value>,
}

/// Decodes a `PodMetricsList` body (upstream's wire shape).
pub fn parse_pod_metrics_list(body: &[u8]) -> Result<Vec<PodMetrics>, MetricsError> {
    let list: WireList =
        serde_json::from_slice(body).map_err(|error| MetricsError(format!("decoding PodMetricsList: {error}")))?;
    Ok(list
        .items
        .into_iter()
        .map(|item| PodMetrics {
            name: item.metadata.name.unwrap_or_default(),
            timestamp: item
                .timestamp
                .and_then(|t| t.parse().ok())
                .unwrap_or(Timestamp::UNIX_EPOCH),
            window: item
                .window
                .and_then(|w| component_base::parse_duration(&w).ok())
                .unwrap_or_default(),
            containers: item
                .containers
                .into_iter()
                .map(|c| ContainerUsage {
                    name: c.name,
                    usage: c
                        .usage
                        .iter()
                        .filter_map(|(k, v)| Quantity::from_json(v).map(|q| (k.clone(), q)))
                        .collect(),
                })
                .collect(),
        })
        .collect())
}

impl MetricsSource for ApiMetricsSource {
    fn pod_metrics<'a>(
        &'a self,
        namespace: &'a str,
        selector: &'a str,
    ) -> BoxFuture<'a, Result<Vec<PodMetrics>, MetricsError>> {
        Box::pin(async move {
            let mut path = pod_metrics_path(namespace);
            if !selector.is_empty() {
                let query: String = url_encode(selector);
                path = format!("{path}?labelSelector={query}");
            }
            let request = http::Request::get(&path)
                .body(Vec::new())
                .map_err(|error| MetricsError(error.to_string()))?;
            let text = self.client.request_text(request).await.map_err(|error| match error {
                kube::Error::Api(status) if status.code == 404 => {
                    MetricsError("the server could not find the requested resource (get pods.metrics.k8s.io)".into())
                }
                other => MetricsError(other.to_string()),
            })?;
            parse_pod_metrics_list(text.as_bytes())
        })
    }
}

/// Percent-encodes a query value.
fn url_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A fake source for tests: fixed answers per namespace, and the calls it saw.
#[derive(Default)]
pub struct FakeMetricsSource {
    answers: Mutex<BTreeMap<String, Result<Vec<PodMetrics>, MetricsError>>>,
    calls: Mutex<Vec<(String, String)>>,
}

impl FakeMetricsSource {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Answers requests for `namespace` with `answer` from now on.
    pub fn set(&self, namespace: &str, answer: Result<Vec<PodMetrics>, MetricsError>) {
        self.answers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(namespace.to_string(), answer);
    }

    /// The `(namespace, selector)` of every request so far.
    pub fn calls(&self) -> Vec<(String, String)> {
        self.calls.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

impl MetricsSource for FakeMetricsSource {
    fn pod_metrics<'a>(
        &'a self,
        namespace: &'a str,
        selector: &'a str,
    ) -> BoxFuture<'a, Result<Vec<PodMetrics>, MetricsError>> {
        self.calls
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((namespace.to_string(), selector.to_string()));
        let answer = self
            .answers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(namespace)
            .cloned()
            .unwrap_or_else(|| Err(MetricsError("no metrics for this namespace".into())));
        Box::pin(async move { answer })
    }
}

/// One pod's reading: the summed milli-value of one resource.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PodMetric {
    pub timestamp: Timestamp,
    pub window: Duration,
    pub value: i64,
}

/// Pod name → reading.
pub type PodMetricsInfo = BTreeMap<String, PodMetric>;

/// upstream's `GetResourceMetric` reduction: per pod, the sum over its containers (or the one
/// named `container`) of `resource`, in milli-units; a pod missing the resource in a
/// container is left out. Also the first item's timestamp.
pub fn resource_metric(
    items: &[PodMetrics],
    resource: &str,
    container: Option<&str>,
) -> Result<(PodMetricsInfo, Timestamp), String> {
    let first = items
        .first()
        .ok_or_else(|| "no metrics returned from resource metrics API".to_string())?;
    let mut info = PodMetricsInfo::new();
    for item in items {
        let reading = |value| PodMetric {
            timestamp: item.timestamp,
            window: item.window,
            value,
        };
        match container {
            Some(container) => {
                for c in item.containers.iter().filter(|c| c.name == container) {
                    let Some(usage) = c.usage.get(resource) else {
                        return Err(format!(
                            "failed to get container metrics: missing resource metric {resource} for container {container} in pod {}",
                            item.name
                        ));
                    };
                    info.insert(item.name.clone(), reading(usage.milli_value()));
                }
            }
            None => {
                let sum: Option<i64> = (!item.containers.is_empty())
                    .then(|| {
                        item.containers
                            .iter()
                            .map(|c| c.usage.get(resource).map(Quantity::milli_value))
                            .sum()
                    })
                    .flatten();
                if let Some(sum) = sum {
                    info.insert(item.name.clone(), reading(sum));
                }
            }
        }
    }
    Ok((info, first.timestamp))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_upstream_list_and_sums_containers() {
        let body = br#"{"kind":"PodMetricsList","apiVersion":"metrics.k8s.io/v1beta1","items":[
          {"metadata":{"name":"a","namespace":"ns"},"timestamp":"2025-01-01T00:00:00Z","window":"15.5s",
           "containers":[{"name":"c1","usage":{"cpu":"250m","memory":"10Mi"}},{"name":"c2","usage":{"cpu":"1","memory":"1Mi"}}]},
          {"metadata":{"name":"b"},"timestamp":"2025-01-01T00:00:01Z","window":"15s",
           "containers":[{"name":"c1","usage":{"memory":"10Mi"}}]},
          {"metadata":{"name":"c"},"timestamp":"2025-01-01T00:00:01Z","window":"15s","containers":[]}]}"#;
        let items = parse_pod_metrics_list(body).unwrap();
        assert_eq!(items.len(), 3);
        assert_eq!(items[0].window, Duration::from_millis(15_500));
        let (info, at) = resource_metric(&items, "cpu", None).unwrap();
        assert_eq!(at, "2025-01-01T00:00:00Z".parse::<Timestamp>().unwrap());
        // b lacks cpu, c has no containers: both missing.
        assert_eq!(info.keys().collect::<Vec<_>>(), ["a"]);
        assert_eq!(info["a"].value, 1250);
        let (info, _) = resource_metric(&items, "cpu", Some("c2")).unwrap();
        assert_eq!(info["a"].value, 1000);
        assert_eq!(
            resource_metric(&items, "cpu", Some("c1")).unwrap_err(),
            "failed to get container metrics: missing resource metric cpu for container c1 in pod b"
        );
        assert_eq!(
            resource_metric(&[], "cpu", None).unwrap_err(),
            "no metrics returned from resource metrics API"
        );
        assert!(parse_pod_metrics_list(b"not json").is_err());
    }

    #[test]
    fn selectors_are_query_encoded() {
        assert_eq!(url_encode("app=web,tier in (a)"), "app%3Dweb%2Ctier%20in%20%28a%29");
    }
}
