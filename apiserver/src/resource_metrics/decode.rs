//! Decoding a kubelet's `/metrics/resource` (Prometheus text format) into one node's batch,
//! as metrics-server's decoder does: the node's CPU seconds and working set, and per
//! container its CPU seconds, working set and start time, each with the sample's timestamp.
//! Containers missing either figure are dropped; so is a node missing one.

use std::collections::BTreeMap;

/// One measurement: cumulative CPU in nanoseconds and the working set, at `timestamp_ms`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Point {
    pub timestamp_ms: i64,
    pub cpu_nanos: u64,
    pub memory_bytes: u64,
    /// Container start time (ms since the epoch); a change means the container restarted.
    pub start_ms: i64,
}

/// One node's scrape.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct NodeBatch {
    pub node: Option<Point>,
    /// (namespace, pod) → container → point.
    pub pods: BTreeMap<(String, String), BTreeMap<String, Point>>,
}

#[derive(Default)]
struct Partial {
    cpu: Option<(u64, i64)>,
    memory: Option<(u64, i64)>,
    start_ms: i64,
}

/// Why a scrape could not be decoded.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("line {line}: {message}")]
pub struct DecodeError {
    pub line: usize,
    pub message: String,
}

/// A sample line's parts: name, labels, value, timestamp.
type SampleLine<'a> = (&'a str, BTreeMap<String, String>, f64, Option<i64>);

/// Splits `name{labels} value [timestamp]` into its parts.
fn split_sample(line: &str) -> Option<SampleLine<'_>> {
    let (name, labels, rest) = match line.find('{') {
        Some(open) => {
            let close = open + line[open..].find('}')?;
            (&line[..open], parse_labels(&line[open + 1..close])?, &line[close + 1..])
        }
        None => {
            let end = line.find(char::is_whitespace)?;
            (&line[..end], BTreeMap::new(), &line[end..])
        }
    };
    let mut fields = rest.split_whitespace();
    let value = parse_float(fields.next()?)?;
    let timestamp = match fields.next() {
        Some(ts) => Some(ts.parse().ok()?),
        None => None,
    };
    Some((name.trim(), labels, value, timestamp))
}

fn parse_float(text: &str) -> Option<f64> {
    match text {
        "+Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        "NaN" => Some(f64::NAN),
        _ => text.parse().ok(),
    }
}

/// `a="x",b="y\"z"` → map (escapes `\\`, `\"`, `\n`).
fn parse_labels(text: &str) -> Option<BTreeMap<String, String>> {
    let mut labels = BTreeMap::new();
    let mut chars = text.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace() || *c == ',') {
            chars.next();
        }
        if chars.peek().is_none() {
            return Some(labels);
        }
        let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.next()? != '"' {
            return None;
        }
        let mut value = String::new();
        loop {
            match chars.next()? {
                '\\' => match chars.next()? {
                    'n' => value.push('\n'),
                    c => value.push(c),
                },
                '"' => break,
                c => value.push(c),
            }
        }
        labels.insert(key.trim().to_string(), value);
    }
}

/// Decodes one scrape; `default_ms` stands in for samples without a timestamp.
pub fn decode(text: &str, default_ms: i64) -> Result<NodeBatch, DecodeError> {
    let mut node = Partial::default();
    let mut containers: BTreeMap<(String, String, String), Partial> = BTreeMap::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (name, labels, value, timestamp) = split_sample(line).ok_or_else(|| DecodeError {
            line: i + 1,
            message: format!("cannot parse sample {line:?}"),
        })?;
        if !value.is_finite() || value < 0.0 {
            continue;
        }
        let ts = timestamp.unwrap_or(default_ms);
        let container = || {
            let key = |k: &str| labels.get(k).cloned().unwrap_or_default();
            (key("namespace"), key("pod"), key("container"))
        };
        match name {
            "node_cpu_usage_seconds_total" => node.cpu = Some(((value * 1e9) as u64, ts)),
            "node_memory_working_set_bytes" => node.memory = Some((value as u64, ts)),
            "container_cpu_usage_seconds_total" => {
                containers.entry(container()).or_default().cpu = Some(((value * 1e9) as u64, ts))
            }
            "container_memory_working_set_bytes" => {
                containers.entry(container()).or_default().memory = Some((value as u64, ts))
            }
            "container_start_time_seconds" => {
                containers.entry(container()).or_default().start_ms = (value * 1000.0) as i64
            }
            _ => {}
        }
    }
    let point = |p: &Partial| {
        let ((cpu, ts), (memory, _)) = (p.cpu?, p.memory?);
        Some(Point {
            timestamp_ms: ts,
            cpu_nanos: cpu,
            memory_bytes: memory,
            start_ms: p.start_ms,
        })
    };
    let mut batch = NodeBatch {
        node: point(&node),
        ..Default::default()
    };
    for ((namespace, pod, name), partial) in &containers {
        if let Some(point) = point(partial) {
            batch
                .pods
                .entry((namespace.clone(), pod.clone()))
                .or_default()
                .insert(name.clone(), point);
        }
    }
    Ok(batch)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCRAPE: &str = r#"# HELP container_cpu_usage_seconds_total [STABLE] Cumulative cpu time consumed by the container in core-seconds
# TYPE container_cpu_usage_seconds_total counter
container_cpu_usage_seconds_total{container="busy",namespace="default",pod="burn"} 12.5 1700000000123
container_cpu_usage_seconds_total{container="half",namespace="default",pod="x"} 1 1700000000123
container_memory_working_set_bytes{container="busy",namespace="default",pod="burn"} 1.048576e+06 1700000000123
container_start_time_seconds{container="busy",namespace="default",pod="burn"} 1.7e+09 1700000000123
node_cpu_usage_seconds_total 100.25 1700000000100
node_memory_working_set_bytes 2048 1700000000100
resource_scrape_error 0
"#;

    #[test]
    fn scrape_decodes_to_points() {
        let batch = decode(SCRAPE, 0).expect("decodes");
        assert_eq!(
            batch.node,
            Some(Point {
                timestamp_ms: 1_700_000_000_100,
                cpu_nanos: 100_250_000_000,
                memory_bytes: 2048,
                start_ms: 0
            })
        );
        let burn = &batch.pods[&("default".to_string(), "burn".to_string())];
        assert_eq!(
            burn["busy"],
            Point {
                timestamp_ms: 1_700_000_000_123,
                cpu_nanos: 12_500_000_000,
                memory_bytes: 1_048_576,
                start_ms: 1_700_000_000_000
            }
        );
        // A container without its memory figure is dropped.
        assert!(!batch.pods.contains_key(&("default".to_string(), "x".to_string())));
    }

    #[test]
    fn labels_unescape_and_garbage_is_an_error() {
        let labels = parse_labels(r#"a="x\"y", b = "z\\n""#).expect("labels");
        assert_eq!(labels["a"], "x\"y");
        assert_eq!(labels["b"], "z\\n");
        assert!(decode("node_cpu_usage_seconds_total{oops 1\n", 0).is_err());
        assert!(decode("node_cpu_usage_seconds_total abc\n", 0).is_err());
    }
}
