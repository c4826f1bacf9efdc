//! Fetches what each report shows besides the object: its events (by the same field selector
//! upstream uses), controller pods, a Deployment's ReplicaSets, a Service's EndpointSlices, a
//! Node's pods and lease, a Namespace's quotas and limit ranges.

use serde_json::Value;

use super::common::{s, selector_string};
use super::{DescribeError, Related, events};

/// Percent-encodes a query value.
fn encode(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for b in v.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(b as char),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

async fn get(client: &kube::Client, path: &str) -> Result<Value, DescribeError> {
    let req = http::Request::get(path).body(Vec::new())?;
    Ok(client.request::<Value>(req).await?)
}

/// Lists every item at `path` with the query `params`, following `continue` tokens.
async fn list(client: &kube::Client, path: &str, params: &[(&str, &str)]) -> Result<Vec<Value>, DescribeError> {
    let mut items = Vec::new();
    let mut token = String::new();
    loop {
        let mut query: Vec<String> = params.iter().map(|(k, v)| format!("{k}={}", encode(v))).collect();
        query.push("limit=500".into());
        if !token.is_empty() {
            query.push(format!("continue={}", encode(&token)));
        }
        let page = get(client, &format!("{path}?{}", query.join("&"))).await?;
        if let Some(list) = page.get("items").and_then(Value::as_array) {
            items.extend(list.iter().cloned());
        }
        token = s(&page, "/metadata/continue").to_string();
        if token.is_empty() {
            return Ok(items);
        }
    }
}

fn ns_path(prefix: &str, ns: &str, plural: &str) -> String {
    if ns.is_empty() {
        format!("{prefix}/{plural}")
    } else {
        format!("{prefix}/namespaces/{}/{plural}", encode(ns))
    }
}

/// Events about the object; errors yield an empty list, as upstream ignores them.
async fn search_events(
    client: &kube::Client,
    ns: &str,
    name: &str,
    kind: Option<&str>,
    uid: Option<&str>,
) -> Vec<Value> {
    let selector = events::field_selector(name, ns, kind, uid);
    let path = ns_path("/api/v1", ns, "events");
    match list(client, &path, &[("fieldSelector", &selector)]).await {
        Ok(items) => items
            .into_iter()
            .filter(|e| events::matches(e, name, ns, kind, uid))
            .collect(),
        Err(_) => Vec::new(),
    }
}

fn is_status(err: &DescribeError, code: u16) -> bool {
    matches!(err, DescribeError::Api(kube::Error::Api(e)) if e.code == code)
}

fn error_text(err: &DescribeError) -> String {
    match err {
        DescribeError::Api(kube::Error::Api(e)) => e.message.clone(),
        other => other.to_string(),
    }
}

/// The autoscaling/v2 form of an HPA fetched in another version (`None` when `hpa` already is
/// v2 or the v2 object cannot be read, as upstream then falls back to autoscaling/v1).
pub(super) async fn hpa_v2(client: &kube::Client, hpa: &Value) -> Option<Value> {
    if s(hpa, "/apiVersion") == "autoscaling/v2" {
        return None;
    }
    let path = format!(
        "{}/{}",
        ns_path(
            "/apis/autoscaling/v2",
            s(hpa, "/metadata/namespace"),
            "horizontalpodautoscalers"
        ),
        encode(s(hpa, "/metadata/name"))
    );
    get(client, &path).await.ok()
}

/// Gathers the related objects the report for `group`/`kind` needs.
pub(super) async fn related(
    client: &kube::Client,
    group: &str,
    kind: &str,
    obj: &Value,
    show_events: bool,
) -> Result<Related, DescribeError> {
    let ns = s(obj, "/metadata/namespace");
    let name = s(obj, "/metadata/name");
    let uid = Some(s(obj, "/metadata/uid")).filter(|u| !u.is_empty());
    let mut rel = Related::default();
    let selector = selector_string(obj.pointer("/spec/selector"));
    let pods_path = ns_path("/api/v1", ns, "pods");
    match (group, kind) {
        ("", "Pod") => {
            // upstream drops the kind, and matches mirror pods by their source UID
            let mirror = s(obj, "/metadata/annotations/kubernetes.io~1config.mirror");
            let uid = if mirror.is_empty() { uid } else { Some(mirror) };
            if show_events {
                rel.events = Some(search_events(client, ns, name, None, uid).await);
            }
            return Ok(rel);
        }
        ("apps", "Deployment") => {
            let path = ns_path("/apis/apps/v1", ns, "replicasets");
            rel.replica_sets = list(client, &path, &[("labelSelector", &selector)])
                .await
                .unwrap_or_default();
        }
        ("apps", "ReplicaSet") => match list(client, &pods_path, &[("labelSelector", &selector)]).await {
            Ok(p) => rel.pods = Some(p),
            Err(e) => rel.pods_error = Some(error_text(&e)),
        },
        ("apps", "DaemonSet") | ("apps", "StatefulSet") => {
            rel.pods = Some(list(client, &pods_path, &[("labelSelector", &selector)]).await?);
        }
        ("", "ReplicationController") => {
            let pairs = super::common::str_map(obj, "/spec/selector");
            let sel = pairs
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(",");
            rel.pods = Some(list(client, &pods_path, &[("labelSelector", &sel)]).await?);
        }
        ("", "Service") => {
            let path = ns_path("/apis/discovery.k8s.io/v1", ns, "endpointslices");
            let sel = format!("kubernetes.io/service-name={name}");
            rel.endpoint_slices = list(client, &path, &[("labelSelector", &sel)])
                .await
                .unwrap_or_default();
        }
        ("", "Node") => {
            let sel = format!("spec.nodeName={name},status.phase!=Succeeded,status.phase!=Failed");
            match list(client, "/api/v1/pods", &[("fieldSelector", &sel)]).await {
                Ok(pods) => {
                    let live = pods
                        .into_iter()
                        .filter(|p| {
                            s(p, "/spec/nodeName") == name && !matches!(s(p, "/status/phase"), "Succeeded" | "Failed")
                        })
                        .collect();
                    rel.pods = Some(live);
                }
                Err(e) if is_status(&e, 403) => rel.pods = None,
                Err(e) => return Err(e),
            }
            let lease_path = format!(
                "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/{}",
                encode(name)
            );
            rel.lease = Some(get(client, &lease_path).await.map_err(|e| error_text(&e)));
            if show_events {
                let mut evs = search_events(client, "", name, Some("Node"), uid).await;
                evs.extend(search_events(client, "", name, Some("Node"), Some(name)).await);
                rel.events = Some(evs);
            }
            return Ok(rel);
        }
        ("", "Namespace") => {
            for (plural, slot) in [
                ("resourcequotas", &mut rel.resource_quotas),
                ("limitranges", &mut rel.limit_ranges),
            ] {
                let path = ns_path("/api/v1", name, plural);
                match list(client, &path, &[]).await {
                    Ok(items) => *slot = Some(items),
                    Err(e) if is_status(&e, 404) => *slot = None,
                    Err(e) => return Err(e),
                }
            }
            return Ok(rel);
        }
        ("", "Secret") => return Ok(rel),
        _ => {}
    }
    if show_events {
        let kind_ref = Some(s(obj, "/kind")).filter(|k| !k.is_empty()).or(Some(kind));
        rel.events = Some(search_events(client, ns, name, kind_ref, uid).await);
    }
    Ok(rel)
}
