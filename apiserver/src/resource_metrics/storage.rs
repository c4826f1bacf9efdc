//! The last two samples of every node and container, as metrics-server's storage keeps them,
//! and the usage computed from them: CPU as the rate between the two cumulative figures
//! (nanocores over the window between their timestamps), memory as the last working set.
//! A pod has metrics only when every one of its containers has two samples.

use std::collections::BTreeMap;

use api::quantity::{Format, Quantity};
use serde_json::{Value, json};

use super::decode::{NodeBatch, Point};

/// Two samples of one series: the previous (if any) and the last.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Series {
    prev: Option<Point>,
    last: Point,
}

impl Series {
    /// The series after `point` arrives: an older or identical sample changes nothing (the
    /// kubelet served its cached figures again); a restart or a counter going back starts over.
    fn push(old: Option<&Series>, point: Point) -> Series {
        match old {
            Some(old) if point.timestamp_ms <= old.last.timestamp_ms => *old,
            Some(old) if point.start_ms == old.last.start_ms && point.cpu_nanos >= old.last.cpu_nanos => Series {
                prev: Some(old.last),
                last: point,
            },
            _ => Series {
                prev: None,
                last: point,
            },
        }
    }

    fn usage(&self) -> Option<Usage> {
        let prev = self.prev?;
        let window_ms = self.last.timestamp_ms - prev.timestamp_ms;
        if window_ms <= 0 {
            return None;
        }
        let delta = self.last.cpu_nanos.checked_sub(prev.cpu_nanos)?;
        Some(Usage {
            timestamp_ms: self.last.timestamp_ms,
            window_ms,
            nanocores: (u128::from(delta) * 1000 / window_ms as u128) as u64,
            memory_bytes: self.last.memory_bytes,
        })
    }
}

/// Usage over one window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Usage {
    /// The end of the window (the last sample), ms since the epoch.
    pub timestamp_ms: i64,
    pub window_ms: i64,
    pub nanocores: u64,
    pub memory_bytes: u64,
}

impl Usage {
    /// `{"cpu": "<n>n", "memory": "<n>Ki"}` as metrics-server writes it.
    pub fn json(&self) -> Value {
        let cpu = Quantity::from_nanos(i128::from(self.nanocores), Format::DecimalSi);
        let memory = Quantity::from_units(i64::try_from(self.memory_bytes).unwrap_or(i64::MAX), Format::BinarySi);
        json!({"cpu": cpu.to_string(), "memory": memory.to_string()})
    }
}

/// A pod's usage: per container, in name order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PodUsage {
    pub timestamp_ms: i64,
    pub window_ms: i64,
    pub containers: Vec<(String, Usage)>,
}

/// Every node's and container's last two samples.
#[derive(Debug, Default)]
pub struct MetricsStorage {
    nodes: BTreeMap<String, Series>,
    pods: BTreeMap<(String, String), BTreeMap<String, Series>>,
}

impl MetricsStorage {
    /// Takes one round of scrapes (node name → batch). Nodes and pods that are not in it
    /// (a failed scrape, a deleted pod) lose their samples, as in metrics-server.
    pub fn store(&mut self, batches: &BTreeMap<String, NodeBatch>) {
        let mut nodes = BTreeMap::new();
        let mut pods: BTreeMap<(String, String), BTreeMap<String, Series>> = BTreeMap::new();
        for (name, batch) in batches {
            if let Some(point) = batch.node {
                nodes.insert(name.clone(), Series::push(self.nodes.get(name), point));
            }
            for (pod, containers) in &batch.pods {
                let old = self.pods.get(pod);
                let entry = pods.entry(pod.clone()).or_default();
                for (container, point) in containers {
                    entry.insert(
                        container.clone(),
                        Series::push(old.and_then(|o| o.get(container)), *point),
                    );
                }
            }
        }
        self.nodes = nodes;
        self.pods = pods;
    }

    /// A node's usage, once it has two samples.
    pub fn node(&self, name: &str) -> Option<Usage> {
        self.nodes.get(name)?.usage()
    }

    /// A pod's usage, once every container has two samples.
    pub fn pod(&self, namespace: &str, name: &str) -> Option<PodUsage> {
        let containers = self.pods.get(&(namespace.to_string(), name.to_string()))?;
        let usages: Vec<(String, Usage)> = containers
            .iter()
            .map(|(c, series)| Some((c.clone(), series.usage()?)))
            .collect::<Option<_>>()?;
        let first = usages.first()?.1;
        Some(PodUsage {
            timestamp_ms: usages
                .iter()
                .map(|(_, u)| u.timestamp_ms)
                .max()
                .unwrap_or(first.timestamp_ms),
            window_ms: first.window_ms,
            containers: usages,
        })
    }
}

/// A window as Go's `time.Duration.String()` writes it (`15.012s`, `1m0.5s`, `500ms`).
pub fn go_duration(ms: i64) -> String {
    if ms == 0 {
        return "0s".into();
    }
    if ms.abs() < 1000 {
        return format!("{ms}ms");
    }
    let (minutes, rest) = (ms / 60_000, ms % 60_000);
    let seconds = if rest % 1000 == 0 {
        format!("{}s", rest / 1000)
    } else {
        let text = format!("{}.{:03}", rest / 1000, rest % 1000);
        format!("{}s", text.trim_end_matches('0'))
    };
    match (minutes / 60, minutes % 60) {
        (0, 0) => seconds,
        (0, m) => format!("{m}m{seconds}"),
        (h, m) => format!("{h}h{m}m{seconds}"),
    }
}

/// A timestamp as `metav1.Time` serializes (RFC 3339, whole seconds, UTC).
pub fn rfc3339(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms)
        .map(|t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(ts: i64, cpu: u64, memory: u64) -> Point {
        Point {
            timestamp_ms: ts,
            cpu_nanos: cpu,
            memory_bytes: memory,
            start_ms: 1,
        }
    }

    fn batch(node: Option<Point>, containers: &[(&str, &str, Point)]) -> BTreeMap<String, NodeBatch> {
        let mut b = NodeBatch {
            node,
            ..Default::default()
        };
        for (pod, container, p) in containers {
            b.pods
                .entry(("default".to_string(), pod.to_string()))
                .or_default()
                .insert(container.to_string(), *p);
        }
        BTreeMap::from([("n1".to_string(), b)])
    }

    #[test]
    fn rate_needs_two_samples_and_uses_their_window() {
        let mut storage = MetricsStorage::default();
        storage.store(&batch(
            Some(point(1_000, 5_000_000_000, 4096)),
            &[("p", "c", point(1_000, 100, 1024))],
        ));
        assert_eq!(storage.node("n1"), None);
        assert_eq!(storage.pod("default", "p"), None);
        // 0.5 s of CPU over 2 s: 250m.
        storage.store(&batch(
            Some(point(3_000, 5_500_000_000, 8192)),
            &[("p", "c", point(3_000, 100 + 20_000_000, 2048 * 1024))],
        ));
        let node = storage.node("n1").expect("node usage");
        assert_eq!(
            (node.nanocores, node.window_ms, node.memory_bytes),
            (250_000_000, 2_000, 8192)
        );
        assert_eq!(node.json(), json!({"cpu": "250m", "memory": "8Ki"}));
        let pod = storage.pod("default", "p").expect("pod usage");
        assert_eq!(pod.containers[0].1.json(), json!({"cpu": "10m", "memory": "2Mi"}));
        // The same sample again changes nothing; a pod gone from the batch is gone.
        storage.store(&batch(Some(point(3_000, 5_500_000_000, 8192)), &[]));
        assert_eq!(storage.node("n1"), Some(node));
        assert_eq!(storage.pod("default", "p"), None);
    }

    #[test]
    fn restart_starts_over_and_pods_wait_for_every_container() {
        let mut storage = MetricsStorage::default();
        storage.store(&batch(
            None,
            &[("p", "a", point(1_000, 10, 1)), ("p", "b", point(1_000, 10, 1))],
        ));
        let mut restarted = point(2_000, 5, 1);
        restarted.start_ms = 2;
        storage.store(&batch(
            None,
            &[("p", "a", point(2_000, 1_000_010, 1)), ("p", "b", restarted)],
        ));
        assert_eq!(storage.pod("default", "p"), None);
        let mut b = point(3_000, 1_000_005, 1);
        b.start_ms = 2;
        storage.store(&batch(None, &[("p", "a", point(3_000, 2_000_010, 1)), ("p", "b", b)]));
        let pod = storage.pod("default", "p").expect("both containers have two samples");
        let cpu: Vec<u64> = pod.containers.iter().map(|(_, u)| u.nanocores).collect();
        assert_eq!(cpu, vec![1_000_000, 1_000_000]);
        assert_eq!(pod.window_ms, 1_000);
    }

    #[test]
    fn go_formats() {
        assert_eq!(go_duration(1_500), "1.5s");
        assert_eq!(go_duration(15_012), "15.012s");
        assert_eq!(go_duration(60_500), "1m0.5s");
        assert_eq!(go_duration(500), "500ms");
        assert_eq!(rfc3339(1_700_000_000_999), "2023-11-14T22:13:20Z");
    }
}
