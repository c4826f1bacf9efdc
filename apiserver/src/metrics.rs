//! Prometheus metrics (`/metrics`): requests by verb, resource and code with latency, and the
//! state of the watch caches.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub verb: String,
    pub code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResourceLabels {
    pub resource: String,
}

/// The apiserver's metrics.
pub struct Metrics {
    registry: Registry,
    pub requests: Family<RequestLabels, Counter>,
    pub latency: Family<RequestLabels, Histogram>,
    pub cached_objects: Family<ResourceLabels, Gauge>,
    pub cache_revision: Family<ResourceLabels, Gauge>,
    pub storage_size: Gauge,
    pub storage_compaction_lag: Gauge,
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let requests = Family::<RequestLabels, Counter>::default();
        let latency = Family::<RequestLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.0005, 2.0, 16))
        });
        let cached_objects = Family::<ResourceLabels, Gauge>::default();
        let cache_revision = Family::<ResourceLabels, Gauge>::default();
        registry.register(
            "apiserver_request",
            "API requests by verb and HTTP code",
            requests.clone(),
        );
        registry.register(
            "apiserver_request_duration_seconds",
            "API request latency by verb and HTTP code (watches: time to start)",
            latency.clone(),
        );
        registry.register(
            "apiserver_watch_cache_objects",
            "Objects held in each watch cache",
            cached_objects.clone(),
        );
        registry.register(
            "apiserver_watch_cache_revision",
            "Storage revision each watch cache has reached",
            cache_revision.clone(),
        );
        let storage_size = Gauge::default();
        let storage_compaction_lag = Gauge::default();
        registry.register(
            "apiserver_storage_size_bytes",
            "Bytes the embedded store occupies on disk (database and write-ahead log)",
            storage_size.clone(),
        );
        registry.register(
            "apiserver_storage_compaction_lag_revisions",
            "Revisions of history the embedded store keeps (current minus compacted revision)",
            storage_compaction_lag.clone(),
        );
        Self {
            registry,
            requests,
            latency,
            cached_objects,
            cache_revision,
            storage_size,
            storage_compaction_lag,
        }
    }

    /// The text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
