//! `kubectl top node|pod`: resource usage from the Metrics API (`metrics.k8s.io/v1beta1`),
//! printed as upstream's `metricsutil` printer does: cores as `12m`, bytes as `34Mi`, node
//! percentages of allocatable (or capacity), every cell tab-terminated (so the last column is
//! padded too), sorted by name or by `--sort-by cpu|memory`.

use std::collections::BTreeMap;

use api::quantity::Quantity;
use serde_json::Value;

use crate::cmd::Context;
use crate::error::Error;
use crate::printer::table::TabWriter;
use crate::request::{self, with_query};

/// Display resource (CPU/memory) usage.
#[derive(clap::Args, Debug, Clone)]
pub struct TopArgs {
    #[command(subcommand)]
    pub command: TopCommand,
}

#[derive(clap::Subcommand, Debug, Clone)]
pub enum TopCommand {
    /// Display resource (CPU/memory) usage of nodes.
    #[command(alias = "nodes", alias = "no")]
    Node(TopFlags),
    /// Display resource (CPU/memory) usage of pods.
    #[command(alias = "pods", alias = "po")]
    Pod(TopFlags),
}

/// The flags `top node` and `top pod` take.
#[derive(clap::Args, Debug, Clone)]
pub struct TopFlags {
    /// NAME
    pub name: Option<String>,
    /// Label query; matching objects must satisfy all of the specified label constraints.
    #[arg(short = 'l', long)]
    pub selector: Option<String>,
    /// Field query (pods); the server supports a limited number of field queries per type.
    #[arg(long)]
    pub field_selector: Option<String>,
    /// Pods in every namespace; the namespace in the current context is ignored.
    #[arg(short = 'A', long)]
    pub all_namespaces: bool,
    /// Print usage of containers within pods.
    #[arg(long)]
    pub containers: bool,
    /// If present, print output without headers.
    #[arg(long)]
    pub no_headers: bool,
    /// Sort by cpu or memory.
    #[arg(long)]
    pub sort_by: Option<String>,
    /// Print node resources based on Capacity instead of Allocatable.
    #[arg(long)]
    pub show_capacity: bool,
    /// Print the sum of the resource usage.
    #[arg(long)]
    pub sum: bool,
    /// Enables using protocol-buffers to access Metrics API.
    #[arg(long, default_value_t = true, num_args = 0..=1, default_missing_value = "true", action = clap::ArgAction::Set)]
    pub use_protocol_buffers: bool,
}

const METRICS_BASE: &str = "/apis/metrics.k8s.io/v1beta1";
const JSON: &str = "application/json";

/// CPU and memory of one node, pod or container.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Usage {
    cpu: Quantity,
    memory: Quantity,
}

impl Usage {
    fn of(list: &Value) -> Usage {
        Usage {
            cpu: Quantity::from_json(&list["cpu"]).unwrap_or_default(),
            memory: Quantity::from_json(&list["memory"]).unwrap_or_default(),
        }
    }

    fn add(&mut self, other: &Usage) {
        self.cpu.add(&other.cpu);
        self.memory.add(&other.memory);
    }

    /// `<cpu>m`, `<memory>Mi`, each followed by `<n>%` when `available` has the resource.
    fn cells(&self, available: Option<&Value>) -> Vec<String> {
        let mut cells = Vec::new();
        for (quantity, key) in [(self.cpu, "cpu"), (self.memory, "memory")] {
            cells.push(if key == "cpu" {
                format!("{}m", quantity.milli_value())
            } else {
                format!("{}Mi", quantity.value() / (1024 * 1024))
            });
            if let Some(total) = available.and_then(|a| Quantity::from_json(&a[key])) {
                let fraction = quantity.milli_value() as f64 / total.milli_value() as f64 * 100.0;
                cells.push(format!("{}%", fraction as i64));
            }
        }
        cells
    }
}

fn sort_key(sort_by: Option<&str>, usage: &Usage) -> i64 {
    match sort_by {
        Some("cpu") => -usage.cpu.milli_value(),
        Some("memory") => -usage.memory.value(),
        _ => 0,
    }
}

/// A line: the cells, each tab-terminated (an empty last cell ends the line).
fn line(cells: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut line: Vec<String> = cells.into_iter().collect();
    line.push(String::new());
    line
}

/// `top node`'s lines: `metrics` (NodeMetrics), percentages of `available` (node name →
/// resource list); nodes in `available` without metrics get `<unknown>` lines.
fn node_lines(
    metrics: &[Value],
    available: &BTreeMap<String, Value>,
    no_headers: bool,
    sort_by: Option<&str>,
) -> Vec<Vec<String>> {
    let mut rows: Vec<(String, Usage)> = metrics
        .iter()
        .map(|m| {
            (
                m["metadata"]["name"].as_str().unwrap_or_default().to_string(),
                Usage::of(&m["usage"]),
            )
        })
        .collect();
    rows.sort_by(|a, b| {
        sort_key(sort_by, &a.1)
            .cmp(&sort_key(sort_by, &b.1))
            .then(a.0.cmp(&b.0))
    });
    let mut lines = Vec::new();
    if !no_headers {
        lines.push(line(
            ["NAME", "CPU(cores)", "CPU(%)", "MEMORY(bytes)", "MEMORY(%)"].map(String::from),
        ));
    }
    for (name, usage) in &rows {
        lines.push(line(
            std::iter::once(name.clone()).chain(usage.cells(available.get(name))),
        ));
    }
    for name in available.keys().filter(|n| !rows.iter().any(|(r, _)| r == *n)) {
        lines.push(line(
            std::iter::once(name.clone()).chain(std::iter::repeat_n("<unknown>".to_string(), 4)),
        ));
    }
    lines
}

/// How `top pod` prints.
#[derive(Clone, Copy, Debug, Default)]
struct PodLayout<'a> {
    containers: bool,
    namespace: bool,
    no_headers: bool,
    sort_by: Option<&'a str>,
    sum: bool,
}

/// (namespace, name, total, containers) of one PodMetrics.
type PodRow = (String, String, Usage, Vec<(String, Usage)>);

/// `top pod`'s lines from PodMetrics.
fn pod_lines(metrics: &[Value], layout: PodLayout<'_>) -> Vec<Vec<String>> {
    let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
    let mut pods: Vec<PodRow> = metrics
        .iter()
        .map(|m| {
            let containers: Vec<(String, Usage)> = m["containers"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|c| (text(&c["name"]), Usage::of(&c["usage"])))
                .collect();
            let mut total = Usage::default();
            containers.iter().for_each(|(_, u)| total.add(u));
            (
                text(&m["metadata"]["namespace"]),
                text(&m["metadata"]["name"]),
                total,
                containers,
            )
        })
        .collect();
    let sort_by = layout.sort_by;
    pods.sort_by(|a, b| {
        let by_usage = sort_key(sort_by, &a.2).cmp(&sort_key(sort_by, &b.2));
        let by_namespace = if layout.namespace {
            a.0.cmp(&b.0)
        } else {
            std::cmp::Ordering::Equal
        };
        by_usage.then(by_namespace).then(a.1.cmp(&b.1))
    });
    let mut lines = Vec::new();
    let mut width = 3;
    if !layout.no_headers {
        let mut header = Vec::new();
        if layout.namespace {
            header.push("NAMESPACE".to_string());
        }
        if layout.containers {
            header.push("POD".to_string());
        }
        header.extend(["NAME", "CPU(cores)", "MEMORY(bytes)"].map(String::from));
        lines.push(line(header));
    }
    width += usize::from(layout.namespace) + usize::from(layout.containers);
    let mut total = Usage::default();
    for (namespace, name, usage, containers) in &mut pods {
        total.add(usage);
        let prefix = |pod: Option<&str>| {
            let mut cells = Vec::new();
            if layout.namespace {
                cells.push(namespace.clone());
            }
            cells.extend(pod.map(str::to_string));
            cells
        };
        if layout.containers {
            containers.sort_by(|a, b| {
                sort_key(sort_by, &a.1)
                    .cmp(&sort_key(sort_by, &b.1))
                    .then(a.0.cmp(&b.0))
            });
            for (container, usage) in containers.iter() {
                let mut cells = prefix(Some(name));
                cells.push(container.clone());
                cells.extend(usage.cells(None));
                lines.push(line(cells));
            }
        } else {
            let mut cells = prefix(None);
            cells.push(name.clone());
            cells.extend(usage.cells(None));
            lines.push(line(cells));
        }
    }
    if layout.sum {
        let mut bar = vec![String::new(); width - 2];
        bar.extend(["________", "________"].map(String::from));
        lines.push(line(bar));
        let mut cells = vec![String::new(); width - 3];
        cells.push(String::new());
        cells.extend(total.cells(None));
        lines.push(line(cells));
    }
    lines
}

/// The items of a list, or the one object a GET returned.
fn items(value: Value, by_name: bool) -> Vec<Value> {
    if by_name {
        vec![value]
    } else {
        value["items"].as_array().cloned().unwrap_or_default()
    }
}

/// Runs `kubectl top node|pod`.
pub async fn run(ctx: &mut Context, args: &TopArgs) -> Result<(), Error> {
    let (TopCommand::Node(flags) | TopCommand::Pod(flags)) = &args.command;
    if let Some(sort_by) = flags.sort_by.as_deref().filter(|s| !s.is_empty())
        && sort_by != "cpu"
        && sort_by != "memory"
    {
        return Err(Error::Message("--sort-by accepts only cpu or memory".into()));
    }
    let discovery = ctx.discovery().await?;
    if !discovery.resources().iter().any(|r| r.group == "metrics.k8s.io") {
        return Err(Error::Message("Metrics API not available".into()));
    }
    let client = ctx.client().await?;
    let selector = flags.selector.clone().unwrap_or_default();
    let sort_by = flags.sort_by.as_deref().filter(|s| !s.is_empty());
    let lines = match &args.command {
        TopCommand::Node(_) => {
            let name = flags.name.as_deref().filter(|n| !n.is_empty());
            let (metrics_url, nodes_url) = match name {
                Some(name) => (format!("{METRICS_BASE}/nodes/{name}"), format!("/api/v1/nodes/{name}")),
                None => (
                    with_query(&format!("{METRICS_BASE}/nodes"), &[("labelSelector", &selector)]),
                    with_query("/api/v1/nodes", &[("labelSelector", &selector)]),
                ),
            };
            let metrics = items(request::get(&client, &metrics_url, JSON).await?, name.is_some());
            if metrics.is_empty() {
                return Err(Error::Message("metrics not available yet".into()));
            }
            let nodes = items(request::get(&client, &nodes_url, JSON).await?, name.is_some());
            let field = if flags.show_capacity { "capacity" } else { "allocatable" };
            let available: BTreeMap<String, Value> = nodes
                .iter()
                .map(|n| {
                    let name = n["metadata"]["name"].as_str().unwrap_or_default().to_string();
                    (name, n["status"][field].clone())
                })
                .collect();
            node_lines(&metrics, &available, flags.no_headers, sort_by)
        }
        TopCommand::Pod(_) => {
            let namespace = if flags.all_namespaces {
                None
            } else {
                Some(ctx.namespace().await?)
            };
            let scope = |resource: &str| match &namespace {
                Some(ns) => format!("/namespaces/{ns}/{resource}"),
                None => format!("/{resource}"),
            };
            let name = flags.name.as_deref().filter(|n| !n.is_empty());
            let field_selector = flags.field_selector.clone().unwrap_or_default();
            let query = [
                ("labelSelector", selector.as_str()),
                ("fieldSelector", field_selector.as_str()),
            ];
            let metrics_url = match name {
                Some(name) => format!("{METRICS_BASE}{}/{name}", scope("pods")),
                None => with_query(&format!("{METRICS_BASE}{}", scope("pods")), &query),
            };
            let metrics = items(request::get(&client, &metrics_url, JSON).await?, name.is_some());
            if metrics.is_empty() {
                let pods_url = with_query(&format!("/api/v1{}", scope("pods")), &query);
                let pods = items(request::get(&client, &pods_url, JSON).await?, false);
                if !pods.is_empty() {
                    return Err(Error::Message("metrics not available yet".into()));
                }
                match &namespace {
                    Some(ns) => ctx.err(&format!("No resources found in {ns} namespace.\n")),
                    None => ctx.err("No resources found\n"),
                }
                return Ok(());
            }
            let layout = PodLayout {
                containers: flags.containers,
                namespace: flags.all_namespaces,
                no_headers: flags.no_headers,
                sort_by,
                sum: flags.sum,
            };
            pod_lines(&metrics, layout)
        }
    };
    let text = TabWriter::default().format(&lines);
    ctx.out(&text);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn render(lines: &[Vec<String>]) -> String {
        TabWriter::default().format(lines)
    }

    #[test]
    fn nodes_print_as_upstream() {
        let metrics = vec![
            json!({"metadata": {"name": "b"}, "usage": {"cpu": "250000000n", "memory": "1048576Ki"}}),
            json!({"metadata": {"name": "a"}, "usage": {"cpu": "1n", "memory": "2047Ki"}}),
        ];
        let available = BTreeMap::from([
            ("a".to_string(), json!({"cpu": "2", "memory": "2Gi"})),
            ("b".to_string(), json!({"cpu": "2", "memory": "2Gi"})),
            ("c".to_string(), json!({"cpu": "2", "memory": "2Gi"})),
        ]);
        assert_eq!(
            render(&node_lines(&metrics, &available, false, None)),
            "NAME   CPU(cores)   CPU(%)      MEMORY(bytes)   MEMORY(%)   \n\
             a      1m           0%          1Mi             0%          \n\
             b      250m         12%         1024Mi          50%         \n\
             c      <unknown>    <unknown>   <unknown>       <unknown>   \n"
        );
        let sorted = node_lines(&metrics, &available, true, Some("cpu"));
        assert_eq!(sorted[0][0], "b");
        assert_eq!(sorted.len(), 3);
    }

    #[test]
    fn pods_print_as_upstream() {
        let metrics = vec![
            json!({"metadata": {"name": "web", "namespace": "default"}, "containers": [
                {"name": "app", "usage": {"cpu": "5m", "memory": "10Mi"}},
                {"name": "side", "usage": {"cpu": "20m", "memory": "1Mi"}}]}),
            json!({"metadata": {"name": "db", "namespace": "data"}, "containers": [
                {"name": "pg", "usage": {"cpu": "1500m", "memory": "300Mi"}}]}),
        ];
        let plain = PodLayout::default();
        assert_eq!(
            render(&pod_lines(&metrics, plain)),
            "NAME   CPU(cores)   MEMORY(bytes)   \n\
             db     1500m        300Mi           \n\
             web    25m          11Mi            \n"
        );
        let all = PodLayout {
            namespace: true,
            containers: true,
            sort_by: Some("memory"),
            sum: true,
            ..Default::default()
        };
        assert_eq!(
            render(&pod_lines(&metrics, all)),
            concat!(
                "NAMESPACE   POD   NAME   CPU(cores)   MEMORY(bytes)   \n",
                "data        db    pg     1500m        300Mi           \n",
                "default     web   app    5m           10Mi            \n",
                "default     web   side   20m          1Mi             \n",
                "                         ________     ________        \n",
                "                         1525m        311Mi           \n",
            )
        );
    }
}
