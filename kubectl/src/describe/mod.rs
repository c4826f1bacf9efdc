//! `kubectl describe`: the human-readable report of one object, with its related objects and
//! events, in upstream kubectl's layout (`pkg/describe` of kubectl).
//!
//! Fetching and rendering are split: [`describe`] gathers what a report needs into a
//! [`Related`] (events, pods, replica sets, endpoint slices, ...), then a pure renderer per kind
//! turns the object and that bundle into text, which the tests drive with captured fixtures.

mod autoscaling;
mod common;
mod events;
mod fetch;
mod node;
mod other;
mod pod;
mod service;
mod volumes;
mod workloads;
mod writer;

#[cfg(test)]
mod tests;

use jiff::Zoned;
use kube::core::discovery::ApiResource;
use serde_json::Value;

use common::s;

/// Why an object could not be described.
#[derive(Debug, thiserror::Error)]
pub enum DescribeError {
    /// A request for a related object (events, replica sets, pods, endpoints) failed.
    #[error(transparent)]
    Api(#[from] kube::Error),
    /// A request could not be built (a name or selector that is not valid in a URL).
    #[error("invalid request: {0}")]
    Request(#[from] http::Error),
}

/// Everything besides the object itself that a report shows.
#[derive(Debug, Default, Clone)]
pub(crate) struct Related {
    /// Events about the object; `None` when the report has no events section.
    pub(crate) events: Option<Vec<Value>>,
    /// Pods selected by a controller, or the non-terminated pods on a node (`None`: not allowed).
    pub(crate) pods: Option<Vec<Value>>,
    /// Why the pods could not be listed (ReplicaSets print it).
    pub(crate) pods_error: Option<String>,
    /// ReplicaSets matching a Deployment's selector.
    pub(crate) replica_sets: Vec<Value>,
    /// EndpointSlices of a Service.
    pub(crate) endpoint_slices: Vec<Value>,
    /// ResourceQuotas of a Namespace (`None`: not served).
    pub(crate) resource_quotas: Option<Vec<Value>>,
    /// LimitRanges of a Namespace (`None`: not served).
    pub(crate) limit_ranges: Option<Vec<Value>>,
    /// A node's lease, or the error text of fetching it.
    pub(crate) lease: Option<Result<Value, String>>,
}

/// The report for `obj` (a full object of the kind `resource` names), as upstream prints it.
/// Without `show_events` the events are neither fetched nor printed, as upstream does when one
/// command describes several objects.
pub async fn describe(
    client: &kube::Client,
    resource: &ApiResource,
    obj: &Value,
    show_events: bool,
) -> Result<String, DescribeError> {
    // Upstream describes an HPA as autoscaling/v2 whichever version named it.
    // List items carry no apiVersion: the renderer tells the versions apart by it.
    let hpa = if resource.group == "autoscaling" && resource.kind == "HorizontalPodAutoscaler" {
        let mut hpa = fetch::hpa_v2(client, obj).await.unwrap_or_else(|| obj.clone());
        if let Some(fields) = hpa.as_object_mut() {
            let version = Value::String(format!("autoscaling/{}", resource.version));
            fields.entry("apiVersion").or_insert(version);
        }
        Some(hpa)
    } else {
        None
    };
    let obj = hpa.as_ref().unwrap_or(obj);
    let related = fetch::related(client, &resource.group, &resource.kind, obj, show_events).await?;
    Ok(render(&resource.group, &resource.kind, obj, &related, &Zoned::now()))
}

/// Renders the report for `obj` of `group`/`kind` with the related objects already fetched.
pub(crate) fn render(group: &str, kind: &str, obj: &Value, rel: &Related, now: &Zoned) -> String {
    let events = rel.events.as_deref();
    let pods = rel.pods.as_deref().unwrap_or(&[]);
    let uid = s(obj, "/metadata/uid");
    let counts = workloads::PodCounts::of(pods, uid);
    match (group, kind) {
        ("", "Pod") => pod::render_pod(obj, events, now),
        ("apps", "Deployment") => {
            let (old, new) = split_replica_sets(obj, &rel.replica_sets);
            workloads::render_deployment(obj, &old, &new, events, now)
        }
        ("apps", "ReplicaSet") => {
            let counts = match &rel.pods_error {
                Some(e) => Err(e.clone()),
                None => Ok(counts),
            };
            workloads::render_replica_set(obj, counts, events, now)
        }
        ("", "ReplicationController") => workloads::render_replication_controller(obj, counts, events, now),
        ("apps", "DaemonSet") => workloads::render_daemon_set(obj, counts, events, now),
        ("apps", "StatefulSet") => workloads::render_stateful_set(obj, counts, events, now),
        ("batch", "Job") => workloads::render_job(obj, events, now),
        ("batch", "CronJob") => workloads::render_cron_job(obj, events, now),
        ("", "Service") => service::render_service(obj, &rel.endpoint_slices, events, now),
        ("", "Endpoints") => service::render_endpoints(obj, events, now),
        ("", "Node") => node::render_node(obj, rel.pods.as_deref(), rel.lease.clone(), events, now),
        ("", "Namespace") => {
            other::render_namespace(obj, rel.resource_quotas.as_deref(), rel.limit_ranges.as_deref(), now)
        }
        ("", "ConfigMap") => other::render_config_map(obj, events, now),
        ("", "Secret") => other::render_secret(obj),
        ("", "ServiceAccount") => other::render_service_account(obj, events, now),
        ("autoscaling", "HorizontalPodAutoscaler") => autoscaling::render_hpa(obj, events, now),
        _ => other::render_generic(obj, events, now),
    }
}

/// Splits a Deployment's ReplicaSets into (old, new) as upstream does: only those it controls,
/// oldest first; the new one is the first whose pod template matches the Deployment's
/// (ignoring the `pod-template-hash` label).
fn split_replica_sets(d: &Value, rss: &[Value]) -> (Vec<Value>, Vec<Value>) {
    let uid = s(d, "/metadata/uid");
    let mut owned: Vec<&Value> = rss
        .iter()
        .filter(|rs| common::controller_uid(rs) == Some(uid))
        .collect();
    owned.sort_by(|a, b| {
        let key = |v: &Value| {
            (
                common::ts(v, "/metadata/creationTimestamp"),
                s(v, "/metadata/name").to_string(),
            )
        };
        key(a).cmp(&key(b))
    });
    let strip = |t: Option<&Value>| -> Value {
        let mut t = t.cloned().unwrap_or(Value::Null);
        if let Some(labels) = t.pointer_mut("/metadata/labels").and_then(Value::as_object_mut) {
            labels.remove("pod-template-hash");
        }
        t
    };
    let want = strip(d.pointer("/spec/template"));
    let new_pos = owned.iter().position(|rs| strip(rs.pointer("/spec/template")) == want);
    let mut old = Vec::new();
    let mut new = Vec::new();
    for (n, rs) in owned.into_iter().enumerate() {
        if Some(n) == new_pos {
            new.push(rs.clone());
        } else {
            old.push(rs.clone());
        }
    }
    (old, new)
}

/// The `Pod Template:` section as upstream's `DescribePodTemplate` writes it straight into a
/// buffer (no column alignment: tabs stay tabs), for `rollout history --revision` and
/// `rollout undo --dry-run`.
pub fn pod_template_text(template: &Value) -> String {
    let mut w = writer::PrefixWriter::new();
    pod::describe_pod_template(Some(template), &mut w, &Zoned::now());
    w.unaligned()
}

/// A `LabelSelector` object as the `labelSelector` query of a list request ("" selects all).
pub fn label_selector_query(selector: Option<&Value>) -> String {
    common::selector_string(selector)
}

/// Aligns tab-separated cells like Go's `text/tabwriter` with padding 2 (upstream's
/// `tabbedString`, as `rollout history` uses it).
pub fn align_tabbed(text: &str) -> String {
    writer::align(text)
}
