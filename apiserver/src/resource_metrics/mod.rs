//! The Metrics API (`metrics.k8s.io/v1beta1`: `nodes` → NodeMetrics, `pods` → PodMetrics),
//! served by the apiserver itself as k3s bundles metrics-server: no aggregation layer. A
//! scraper fetches every Ready node's kubelet `/metrics/resource` every `--metric-resolution`
//! (through `node_proxy::kubelet_get`), `decode` reads it and `storage` keeps two samples per
//! series and computes usage. Reads are `get` and `list` only (no watch, as metrics-server),
//! with label selectors on the node's or pod's labels and field selectors over the nodes and
//! pods themselves (the items are the listed objects that have metrics).

pub mod decode;
pub mod storage;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::response::{IntoResponse, Response};
use http::{Method, StatusCode};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::error::{ApiError, ApiResult};
use crate::handlers::json_response;
use crate::request::{ListOptions, Query};
use crate::store::Store;
use storage::{MetricsStorage, go_duration, rfc3339};

pub const GROUP: &str = "metrics.k8s.io";
pub const VERSION: &str = "v1beta1";
/// The verbs both resources serve.
pub const VERBS: &[&str] = &["get", "list"];

/// One Metrics API resource, for discovery.
pub struct MetricsResource {
    pub plural: &'static str,
    /// metrics-server's storages name themselves `node` and `pod`.
    pub singular: &'static str,
    pub kind: &'static str,
    pub namespaced: bool,
}

/// The resources served, for discovery.
pub const RESOURCES: &[MetricsResource] = &[
    MetricsResource {
        plural: "nodes",
        singular: "node",
        kind: "NodeMetrics",
        namespaced: false,
    },
    MetricsResource {
        plural: "pods",
        singular: "pod",
        kind: "PodMetrics",
        namespaced: true,
    },
];

/// The kubelet endpoint scraped.
const RESOURCE_METRICS_PATH: &str = "/metrics/resource";

/// The samples, shared by the scraper and the handlers.
#[derive(Default)]
pub struct MetricsApi {
    storage: Mutex<MetricsStorage>,
}

fn is_ready(node: &Value) -> bool {
    node["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["type"] == "Ready" && c["status"] == "True")
}

fn def(plural: &str) -> ApiResult<&'static api::registry::ResourceDef> {
    api::registry::find("", "v1", plural).ok_or_else(|| ApiError::internal(format!("{plural} are not registered")))
}

impl MetricsApi {
    /// Starts the scraper: one round every `resolution` until `cancel`.
    pub fn start(
        store: Arc<Store>,
        tls: Arc<rustls::ClientConfig>,
        resolution: Duration,
        cancel: CancellationToken,
    ) -> Arc<Self> {
        let api = Arc::new(MetricsApi::default());
        let scraper = api.clone();
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(resolution.max(Duration::from_millis(100)));
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    _ = ticker.tick() => {}
                }
                if !store.all_ready() {
                    continue;
                }
                let batches = scrape_all(&store, &tls, resolution).await;
                scraper
                    .storage
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .store(&batches);
            }
        });
        api
    }
}

/// One round: every Ready node's kubelet, concurrently, each within `timeout`.
async fn scrape_all(
    store: &Store,
    tls: &Arc<rustls::ClientConfig>,
    timeout: Duration,
) -> BTreeMap<String, decode::NodeBatch> {
    let Ok(nodes_def) = def("nodes") else {
        return BTreeMap::new();
    };
    let listed = match ListOptions::from_query(nodes_def, &Query::default()) {
        Ok(options) => store.list(nodes_def, None, &options).await,
        Err(error) => Err(error),
    };
    let nodes = match listed {
        Ok(list) => list.items,
        Err(error) => {
            tracing::warn!(error = %error.message, "metrics: listing nodes");
            return BTreeMap::new();
        }
    };
    let scrapes = nodes.iter().filter(|n| is_ready(&n.value)).map(|node| {
        let tls = tls.clone();
        async move {
            let name = node.name.clone();
            let fetched = tokio::time::timeout(
                timeout,
                crate::node_proxy::kubelet_get(tls, &node.value, RESOURCE_METRICS_PATH),
            )
            .await;
            let now = jiff::Timestamp::now().as_millisecond();
            match fetched {
                Ok(Ok(body)) => match decode::decode(&String::from_utf8_lossy(&body), now) {
                    Ok(batch) => Some((name, batch)),
                    Err(error) => {
                        tracing::warn!(node = %name, %error, "metrics: decoding the kubelet's resource metrics");
                        None
                    }
                },
                Ok(Err(error)) => {
                    tracing::warn!(node = %name, error = %error.message, "metrics: scraping");
                    None
                }
                Err(_) => {
                    tracing::warn!(node = %name, "metrics: scrape timed out");
                    None
                }
            }
        }
    });
    futures::future::join_all(scrapes).await.into_iter().flatten().collect()
}

impl MetricsApi {
    /// Answers `/apis/metrics.k8s.io/v1beta1/...`; `None` for any other path.
    pub async fn handle(
        &self,
        store: &Store,
        method: &Method,
        segments: &[&str],
        query: Option<&str>,
    ) -> Option<Response> {
        let rest = match segments {
            ["apis", GROUP, VERSION, rest @ ..] if !rest.is_empty() => rest,
            _ => return None,
        };
        let (plural, namespace, name) = match rest {
            ["nodes"] => ("nodes", None, None),
            ["nodes", name] => ("nodes", None, Some(*name)),
            ["pods"] => ("pods", None, None),
            ["namespaces", ns, "pods"] => ("pods", Some(*ns), None),
            ["namespaces", ns, "pods", name] => ("pods", Some(*ns), Some(*name)),
            _ => return Some(ApiError::path_not_found().into_response()),
        };
        if method != Method::GET {
            return Some(ApiError::method_not_allowed().into_response());
        }
        let result = self.read(store, plural, namespace, name, query).await;
        Some(match result {
            Ok(value) => json_response(StatusCode::OK, &value),
            Err(error) => error.into_response(),
        })
    }

    async fn read(
        &self,
        store: &Store,
        plural: &str,
        namespace: Option<&str>,
        name: Option<&str>,
        query: Option<&str>,
    ) -> ApiResult<Value> {
        let query = Query::parse(query)?;
        let def = def(plural)?;
        let (kind, resource) = if plural == "nodes" {
            ("NodeMetrics", "nodemetrics")
        } else {
            ("PodMetrics", "podmetrics")
        };
        if let Some(name) = name {
            let not_found = || ApiError::new(404, "NotFound", format!("{resource}.{GROUP} {name:?} not found"));
            let object = store
                .get_cached(def, namespace, name, None)
                .await
                .map_err(|_| not_found())?;
            return self.item(&object.value, kind).ok_or_else(not_found);
        }
        let options = ListOptions::from_query(def, &query)?;
        if options.watch {
            return Err(ApiError::method_not_allowed());
        }
        let listed = store.list(def, namespace, &options).await?;
        let items: Vec<Value> = listed.items.iter().filter_map(|o| self.item(&o.value, kind)).collect();
        Ok(
            json!({"kind": format!("{kind}List"), "apiVersion": format!("{GROUP}/{VERSION}"), "metadata": {}, "items": items}),
        )
    }

    /// The NodeMetrics or PodMetrics of a node or pod, if it has metrics.
    fn item(&self, object: &Value, kind: &str) -> Option<Value> {
        let metadata = &object["metadata"];
        let name = metadata["name"].as_str()?;
        let mut meta = json!({"name": name, "creationTimestamp": rfc3339(jiff::Timestamp::now().as_millisecond())});
        if let Some(labels) = metadata.get("labels").filter(|l| l.is_object()) {
            meta["labels"] = labels.clone();
        }
        let storage = self.storage.lock().unwrap_or_else(|e| e.into_inner());
        let mut item = if kind == "NodeMetrics" {
            let usage = storage.node(name)?;
            json!({"timestamp": rfc3339(usage.timestamp_ms), "window": go_duration(usage.window_ms), "usage": usage.json()})
        } else {
            let namespace = metadata["namespace"].as_str()?;
            meta["namespace"] = json!(namespace);
            let usage = storage.pod(namespace, name)?;
            let containers: Vec<Value> = usage
                .containers
                .iter()
                .map(|(c, u)| json!({"name": c, "usage": u.json()}))
                .collect();
            json!({"timestamp": rfc3339(usage.timestamp_ms), "window": go_duration(usage.window_ms), "containers": containers})
        };
        item["kind"] = json!(kind);
        item["apiVersion"] = json!(format!("{GROUP}/{VERSION}"));
        item["metadata"] = meta;
        Some(item)
    }
}
