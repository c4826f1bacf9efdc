//! `GET /metrics/resource`: upstream kubelet's resource metrics (what metrics-server and our
//! apiserver's Metrics API scrape), in the Prometheus text format with millisecond timestamps:
//! node, pod and container CPU (cumulative core-seconds) and memory working set, container
//! start times and `resource_scrape_error`. Figures come from the runtime's cgroups.

use std::collections::BTreeMap;
use std::fmt::Write;

use k8s_openapi::api::core::v1::Pod;

use crate::pods::start::parse_container_id;

/// One container's figures.
#[derive(Clone, Debug, PartialEq)]
pub struct ContainerSample {
    pub namespace: String,
    pub pod: String,
    pub container: String,
    pub cpu_seconds: f64,
    pub memory_bytes: u64,
    pub start_time_seconds: f64,
}

/// One pod's figures (its cgroup).
#[derive(Clone, Debug, PartialEq)]
pub struct PodSample {
    pub namespace: String,
    pub pod: String,
    pub cpu_seconds: f64,
    pub memory_bytes: u64,
}

/// Everything one scrape reports.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ResourceSamples {
    /// Node CPU seconds and memory working set, when readable.
    pub node: Option<(f64, u64)>,
    pub pods: Vec<PodSample>,
    pub containers: Vec<ContainerSample>,
    /// Some cgroup could not be read.
    pub scrape_error: bool,
    /// When the figures were read, in milliseconds since the epoch.
    pub timestamp_ms: i64,
}

fn cpu_seconds(nanos: u64) -> f64 {
    nanos as f64 / 1e9
}

/// Reads the node's and every running container's cgroups. `pods` are the pods the kubelet
/// runs; containers of other pods (orphans being cleaned up) are left out.
pub fn collect(runtime: &runtime::Runtime, pods: &[Pod]) -> ResourceSamples {
    let by_uid: BTreeMap<&str, (&str, &str)> = pods
        .iter()
        .filter_map(|p| {
            let m = &p.metadata;
            Some((m.uid.as_deref()?, (m.namespace.as_deref()?, m.name.as_deref()?)))
        })
        .collect();
    let mut samples = ResourceSamples {
        timestamp_ms: jiff::Timestamp::now().as_millisecond(),
        ..Default::default()
    };
    samples.node = runtime
        .node_stats()
        .map(|s| (cpu_seconds(s.cpu_usage_nanos), s.memory_working_set_bytes));
    samples.scrape_error |= samples.node.is_none();
    // The latest running attempt of each container.
    let mut latest: BTreeMap<(String, String), (u32, String, jiff::Timestamp)> = BTreeMap::new();
    for (id, state) in runtime.list() {
        let runtime::ContainerState::Running { started_at, .. } = state else {
            continue;
        };
        let Some((uid, name, attempt)) = parse_container_id(&id) else {
            continue;
        };
        if !by_uid.contains_key(uid) {
            continue;
        }
        let key = (uid.to_string(), name.to_string());
        if latest.get(&key).is_none_or(|(a, _, _)| *a < attempt) {
            latest.insert(key, (attempt, id.clone(), started_at));
        }
    }
    let mut pod_uids = Vec::new();
    for ((uid, name), (_, id, started_at)) in &latest {
        let (namespace, pod) = by_uid[uid.as_str()];
        if !pod_uids.contains(uid) {
            pod_uids.push(uid.clone());
        }
        match runtime.container_stats(id) {
            Some(stats) => samples.containers.push(ContainerSample {
                namespace: namespace.to_string(),
                pod: pod.to_string(),
                container: name.clone(),
                cpu_seconds: cpu_seconds(stats.cpu_usage_nanos),
                memory_bytes: stats.memory_working_set_bytes,
                start_time_seconds: started_at.as_millisecond() as f64 / 1000.0,
            }),
            None => samples.scrape_error = true,
        }
    }
    for uid in pod_uids {
        let (namespace, pod) = by_uid[uid.as_str()];
        if let Some(stats) = runtime.sandbox_stats(&uid) {
            samples.pods.push(PodSample {
                namespace: namespace.to_string(),
                pod: pod.to_string(),
                cpu_seconds: cpu_seconds(stats.cpu_usage_nanos),
                memory_bytes: stats.memory_working_set_bytes,
            });
        }
    }
    samples
}

/// Escapes a label value as the text format requires.
fn label(value: &str) -> String {
    value.replace('\\', r"\\").replace('"', "\\\"").replace('\n', "\\n")
}

fn header(out: &mut String, name: &str, help: &str, kind: &str) {
    let _ = writeln!(out, "# HELP {name} [STABLE] {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// The exposition text, metric families in upstream's (alphabetical) order.
pub fn render(samples: &ResourceSamples) -> String {
    let ts = samples.timestamp_ms;
    let mut out = String::new();
    let container_labels = |c: &ContainerSample| {
        format!(
            "container=\"{}\",namespace=\"{}\",pod=\"{}\"",
            label(&c.container),
            label(&c.namespace),
            label(&c.pod)
        )
    };
    let pod_labels = |p: &PodSample| format!("namespace=\"{}\",pod=\"{}\"", label(&p.namespace), label(&p.pod));
    header(
        &mut out,
        "container_cpu_usage_seconds_total",
        "Cumulative cpu time consumed by the container in core-seconds",
        "counter",
    );
    for c in &samples.containers {
        let _ = writeln!(
            out,
            "container_cpu_usage_seconds_total{{{}}} {} {ts}",
            container_labels(c),
            c.cpu_seconds
        );
    }
    header(
        &mut out,
        "container_memory_working_set_bytes",
        "Current working set of the container in bytes",
        "gauge",
    );
    for c in &samples.containers {
        let _ = writeln!(
            out,
            "container_memory_working_set_bytes{{{}}} {} {ts}",
            container_labels(c),
            c.memory_bytes
        );
    }
    header(
        &mut out,
        "container_start_time_seconds",
        "Start time of the container since unix epoch in seconds",
        "gauge",
    );
    for c in &samples.containers {
        let _ = writeln!(
            out,
            "container_start_time_seconds{{{}}} {} {ts}",
            container_labels(c),
            c.start_time_seconds
        );
    }
    header(
        &mut out,
        "node_cpu_usage_seconds_total",
        "Cumulative cpu time consumed by the node in core-seconds",
        "counter",
    );
    if let Some((cpu, _)) = samples.node {
        let _ = writeln!(out, "node_cpu_usage_seconds_total {cpu} {ts}");
    }
    header(
        &mut out,
        "node_memory_working_set_bytes",
        "Current working set of the node in bytes",
        "gauge",
    );
    if let Some((_, memory)) = samples.node {
        let _ = writeln!(out, "node_memory_working_set_bytes {memory} {ts}");
    }
    header(
        &mut out,
        "pod_cpu_usage_seconds_total",
        "Cumulative cpu time consumed by the pod in core-seconds",
        "counter",
    );
    for p in &samples.pods {
        let _ = writeln!(
            out,
            "pod_cpu_usage_seconds_total{{{}}} {} {ts}",
            pod_labels(p),
            p.cpu_seconds
        );
    }
    header(
        &mut out,
        "pod_memory_working_set_bytes",
        "Current working set of the pod in bytes",
        "gauge",
    );
    for p in &samples.pods {
        let _ = writeln!(
            out,
            "pod_memory_working_set_bytes{{{}}} {} {ts}",
            pod_labels(p),
            p.memory_bytes
        );
    }
    header(
        &mut out,
        "resource_scrape_error",
        "1 if there was an error while getting container metrics, 0 otherwise",
        "gauge",
    );
    let _ = writeln!(out, "resource_scrape_error {}", u8::from(samples.scrape_error));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_has_upstream_names_labels_and_timestamps() {
        let samples = ResourceSamples {
            node: Some((12.5, 1_048_576)),
            pods: vec![PodSample {
                namespace: "default".into(),
                pod: "web".into(),
                cpu_seconds: 0.25,
                memory_bytes: 4096,
            }],
            containers: vec![ContainerSample {
                namespace: "default".into(),
                pod: "web".into(),
                container: "app\"1".into(),
                cpu_seconds: 0.2,
                memory_bytes: 2048,
                start_time_seconds: 1_700_000_000.5,
            }],
            scrape_error: false,
            timestamp_ms: 1_700_000_123_456,
        };
        let text = render(&samples);
        assert!(text.contains(
            "container_cpu_usage_seconds_total{container=\"app\\\"1\",namespace=\"default\",pod=\"web\"} 0.2 1700000123456\n"
        ));
        assert!(text.contains("# TYPE container_cpu_usage_seconds_total counter\n"));
        assert!(text.contains(
            "container_start_time_seconds{container=\"app\\\"1\",namespace=\"default\",pod=\"web\"} 1700000000.5 1700000123456\n"
        ));
        assert!(text.contains("node_cpu_usage_seconds_total 12.5 1700000123456\n"));
        assert!(text.contains("node_memory_working_set_bytes 1048576 1700000123456\n"));
        assert!(text.contains("pod_memory_working_set_bytes{namespace=\"default\",pod=\"web\"} 4096 1700000123456\n"));
        assert!(text.ends_with("resource_scrape_error 0\n"));
    }
}
