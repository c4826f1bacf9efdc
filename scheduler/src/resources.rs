//! Resource quantities and the requests of a pod, computed as upstream's resource helpers do.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Container, Pod};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

/// CPU assumed for a container without a CPU request when scoring (upstream: 100m).
pub const DEFAULT_MILLI_CPU_REQUEST: i64 = 100;
/// Memory assumed for a container without a memory request when scoring (upstream: 200 MiB).
pub const DEFAULT_MEMORY_REQUEST: i64 = 200 * 1024 * 1024;

/// Parses a Kubernetes quantity and returns `value × scale`, rounded up (upstream rounds
/// `MilliValue()` and `Value()` up). `None` for malformed input.
pub fn parse_scaled(quantity: &str, scale: i128) -> Option<i64> {
    let text = quantity.trim();
    let (sign, text) = match text.as_bytes().first() {
        Some(b'-') => (-1i128, &text[1..]),
        Some(b'+') => (1, &text[1..]),
        _ => (1, text),
    };
    let number_end = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, suffix) = text.split_at(number_end);
    if number.is_empty() || number == "." {
        return None;
    }
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if fraction.contains('.') || fraction.len() > 30 {
        return None;
    }
    let digits = format!("{whole}{fraction}");
    let mut mantissa: i128 = 0;
    for digit in digits.bytes() {
        mantissa = mantissa.checked_mul(10)?.checked_add(i128::from(digit - b'0'))?;
    }
    // value = mantissa × 10^(exp10 - fraction.len()) × 2^exp2
    let mut exp10: i32 = -(fraction.len() as i32);
    let mut exp2: u32 = 0;
    match suffix {
        "" => {}
        "Ki" => exp2 = 10,
        "Mi" => exp2 = 20,
        "Gi" => exp2 = 30,
        "Ti" => exp2 = 40,
        "Pi" => exp2 = 50,
        "Ei" => exp2 = 60,
        "n" => exp10 -= 9,
        "u" => exp10 -= 6,
        "m" => exp10 -= 3,
        "k" => exp10 += 3,
        "M" => exp10 += 6,
        "G" => exp10 += 9,
        "T" => exp10 += 12,
        "P" => exp10 += 15,
        "E" => exp10 += 18,
        other => {
            let exponent = other.strip_prefix('e').or_else(|| other.strip_prefix('E'))?;
            exp10 += exponent.parse::<i32>().ok()?;
        }
    }
    let mut value = mantissa.checked_mul(scale)?.checked_mul(1i128.checked_shl(exp2)?)?;
    if exp10 >= 0 {
        value = value.checked_mul(10i128.checked_pow(exp10 as u32)?)?;
    } else {
        let divisor = 10i128.checked_pow(exp10.unsigned_abs())?;
        value = (value + divisor - 1) / divisor; // round up
    }
    i64::try_from(sign * value).ok()
}

/// CPU in millicores.
pub fn milli_value(quantity: &Quantity) -> i64 {
    parse_scaled(&quantity.0, 1000).unwrap_or(0)
}

/// Any other resource in its base unit.
pub fn value(quantity: &Quantity) -> i64 {
    parse_scaled(&quantity.0, 1).unwrap_or(0)
}

/// A vector of resources: cpu, memory, ephemeral storage, pods and scalar (extended) resources.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Resource {
    pub milli_cpu: i64,
    pub memory: i64,
    pub ephemeral_storage: i64,
    pub allowed_pods: i64,
    pub scalar: BTreeMap<String, i64>,
}

impl Resource {
    /// From a resource list (requests, allocatable, overhead).
    pub fn from_list(list: Option<&BTreeMap<String, Quantity>>) -> Self {
        let mut resource = Self::default();
        resource.add_list(list);
        resource
    }

    pub fn add_list(&mut self, list: Option<&BTreeMap<String, Quantity>>) {
        for (name, quantity) in list.into_iter().flatten() {
            match name.as_str() {
                "cpu" => self.milli_cpu += milli_value(quantity),
                "memory" => self.memory += value(quantity),
                "ephemeral-storage" => self.ephemeral_storage += value(quantity),
                "pods" => self.allowed_pods += value(quantity),
                other if is_scalar_resource(other) => {
                    *self.scalar.entry(other.to_string()).or_default() += value(quantity)
                }
                _ => {}
            }
        }
    }

    pub fn add(&mut self, other: &Resource) {
        self.milli_cpu += other.milli_cpu;
        self.memory += other.memory;
        self.ephemeral_storage += other.ephemeral_storage;
        self.allowed_pods += other.allowed_pods;
        for (name, value) in &other.scalar {
            *self.scalar.entry(name.clone()).or_default() += value;
        }
    }

    pub fn sub(&mut self, other: &Resource) {
        self.milli_cpu -= other.milli_cpu;
        self.memory -= other.memory;
        self.ephemeral_storage -= other.ephemeral_storage;
        self.allowed_pods -= other.allowed_pods;
        for (name, value) in &other.scalar {
            *self.scalar.entry(name.clone()).or_default() -= value;
        }
    }

    pub fn set_max(&mut self, other: &Resource) {
        self.milli_cpu = self.milli_cpu.max(other.milli_cpu);
        self.memory = self.memory.max(other.memory);
        self.ephemeral_storage = self.ephemeral_storage.max(other.ephemeral_storage);
        for (name, value) in &other.scalar {
            let entry = self.scalar.entry(name.clone()).or_default();
            *entry = (*entry).max(*value);
        }
    }

    pub fn is_zero(&self) -> bool {
        self.milli_cpu == 0 && self.memory == 0 && self.ephemeral_storage == 0 && self.scalar.values().all(|v| *v == 0)
    }
}

/// Extended resources (`example.com/gpu`), hugepages and attachable volumes: what upstream calls
/// scalar resources.
pub fn is_scalar_resource(name: &str) -> bool {
    name.starts_with("hugepages-")
        || name.starts_with("attachable-volumes-")
        || (name.contains('/') && !name.starts_with("kubernetes.io/") && !name.starts_with("requests."))
}

fn container_requests(container: &Container) -> Resource {
    Resource::from_list(container.resources.as_ref().and_then(|r| r.requests.as_ref()))
}

fn is_restartable(container: &Container) -> bool {
    container.restart_policy.as_deref() == Some("Always")
}

/// The pod's effective request: the sum of its containers (and sidecars), the max with each
/// init container (which run one after the other), plus the pod overhead. `non_zero` applies
/// upstream's scoring defaults (100m CPU, 200 MiB) to containers that request nothing.
fn pod_requests_with(pod: &Pod, non_zero: bool) -> Resource {
    let Some(spec) = pod.spec.as_ref() else {
        return Resource::default();
    };
    let requests_of = |container: &Container| {
        let mut requests = container_requests(container);
        if non_zero {
            if requests.milli_cpu == 0 {
                requests.milli_cpu = DEFAULT_MILLI_CPU_REQUEST;
            }
            if requests.memory == 0 {
                requests.memory = DEFAULT_MEMORY_REQUEST;
            }
        }
        requests
    };
    let mut total = Resource::default();
    for container in &spec.containers {
        total.add(&requests_of(container));
    }
    let mut sidecars = Resource::default();
    let mut init_max = Resource::default();
    for container in spec.init_containers.iter().flatten() {
        let requests = requests_of(container);
        let during = if is_restartable(container) {
            total.add(&requests);
            sidecars.add(&requests);
            sidecars.clone()
        } else {
            let mut during = requests;
            during.add(&sidecars);
            during
        };
        init_max.set_max(&during);
    }
    total.set_max(&init_max);
    // Pod-level requests, when given, replace the containers' sum for cpu and memory.
    if let Some(pod_level) = spec.resources.as_ref().and_then(|r| r.requests.as_ref()) {
        let pod_level = Resource::from_list(Some(pod_level));
        if pod_level.milli_cpu > 0 {
            total.milli_cpu = pod_level.milli_cpu;
        }
        if pod_level.memory > 0 {
            total.memory = pod_level.memory;
        }
    }
    total.add_list(spec.overhead.as_ref());
    total
}

/// The pod's request as NodeResourcesFit checks it.
pub fn pod_requests(pod: &Pod) -> Resource {
    pod_requests_with(pod, false)
}

/// The pod's request for scoring, with defaults for containers that request nothing.
pub fn pod_non_zero_requests(pod: &Pod) -> Resource {
    pod_requests_with(pod, true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn quantities() {
        let cases = [
            ("100m", 1000, Some(100)),
            ("0.1", 1000, Some(100)),
            ("1", 1000, Some(1000)),
            ("2.5", 1000, Some(2500)),
            ("1Ki", 1, Some(1024)),
            ("1Gi", 1, Some(1 << 30)),
            ("1G", 1, Some(1_000_000_000)),
            ("1e3", 1, Some(1000)),
            ("1.5Mi", 1, Some(1_572_864)),
            ("1n", 1000, Some(1)), // rounded up
            ("-1", 1, Some(-1)),
            ("abc", 1, None),
            ("1Xi", 1, None),
            ("", 1, None),
        ];
        for (text, scale, want) in cases {
            assert_eq!(parse_scaled(text, scale), want, "{text}");
        }
    }

    fn pod(spec: serde_json::Value) -> Pod {
        serde_json::from_value(json!({"metadata": {"name": "p"}, "spec": spec})).expect("valid pod")
    }

    #[test]
    fn pod_requests_table() {
        let c = |cpu: &str, mem: &str| json!({"name": "c", "resources": {"requests": {"cpu": cpu, "memory": mem}}});
        let cases = [
            (
                "containers add up",
                json!({"containers": [c("1", "1Gi"), c("500m", "1Gi")]}),
                1500,
                2 << 30,
            ),
            (
                "init container max",
                json!({"containers": [c("1", "1Gi")], "initContainers": [c("2", "512Mi")]}),
                2000,
                1 << 30,
            ),
            (
                "overhead added",
                json!({"containers": [c("1", "1Gi")], "overhead": {"cpu": "250m", "memory": "1Mi"}}),
                1250,
                (1 << 30) + (1 << 20),
            ),
            (
                "sidecar adds to containers",
                json!({"containers": [c("1", "1Gi")], "initContainers": [
                    {"name": "s", "restartPolicy": "Always", "resources": {"requests": {"cpu": "1", "memory": "1Gi"}}},
                    c("1500m", "1Gi"),
                ]}),
                2500,
                2 << 30,
            ),
            ("no requests", json!({"containers": [{"name": "c"}]}), 0, 0),
        ];
        for (name, spec, cpu, memory) in cases {
            let requests = pod_requests(&pod(spec));
            assert_eq!((requests.milli_cpu, requests.memory), (cpu, memory), "{name}");
        }
        let non_zero = pod_non_zero_requests(&pod(json!({"containers": [{"name": "c"}]})));
        assert_eq!((non_zero.milli_cpu, non_zero.memory), (100, 200 << 20));
    }
}
