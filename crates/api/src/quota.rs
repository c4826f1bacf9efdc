//! ResourceQuota accounting shared by the apiserver's quota admission and the
//! controller-manager's resourcequota controller, as upstream's quota evaluators define it:
//! what an object uses ([`usage`]), which quotas it counts against ([`matches`]), what a
//! quota tracking compute resources requires of each container ([`constraints`]), and the
//! admission decision with upstream's messages ([`charge`]).
//!
//! Objects are JSON values in their served form, so the apiserver needs no typed decoding;
//! the controller serialises its typed objects once.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use crate::quantity::Quantity;

/// Resource names mapped to amounts (a `ResourceList`).
pub type Usage = BTreeMap<String, Quantity>;

/// `count/<resource>` for the core group, `count/<resource>.<group>` otherwise.
pub fn count_name(group: &str, plural: &str) -> String {
    if group.is_empty() {
        format!("count/{plural}")
    } else {
        format!("count/{plural}.{group}")
    }
}

/// The legacy object-count name of a core resource (`pods`, `services`, ...), if it has one.
fn legacy_count_name(group: &str, plural: &str) -> Option<&'static str> {
    if !group.is_empty() {
        return None;
    }
    Some(match plural {
        "pods" => "pods",
        "services" => "services",
        "configmaps" => "configmaps",
        "secrets" => "secrets",
        "persistentvolumeclaims" => "persistentvolumeclaims",
        "replicationcontrollers" => "replicationcontrollers",
        "resourcequotas" => "resourcequotas",
        _ => return None,
    })
}

fn one() -> Quantity {
    Quantity::parse("1").expect("1 is a quantity")
}

/// Upstream's `QuotaV1Pod`: a pod in a terminal phase, or past the end of its deletion grace
/// period, uses nothing but its object count.
fn pod_counts(pod: &Value, now: jiff::Timestamp) -> bool {
    if matches!(pod["status"]["phase"].as_str(), Some("Succeeded" | "Failed")) {
        return false;
    }
    let deleted_at = pod["metadata"]["deletionTimestamp"]
        .as_str()
        .and_then(|t| t.parse::<jiff::Timestamp>().ok());
    let grace = pod["metadata"]["deletionGracePeriodSeconds"].as_i64();
    if let (Some(at), Some(grace)) = (deleted_at, grace)
        && now.as_second() > at.as_second() + grace
    {
        return false;
    }
    true
}

/// The sum of one resource list over a pod's containers, raised to any init container's
/// (init containers run one at a time before the others), plus the pod's overhead: upstream's
/// `PodRequests` / `PodLimits` for pods without sidecars.
fn pod_resources(spec: &Value, list: &str) -> Usage {
    let mut total = Usage::new();
    for c in spec["containers"].as_array().into_iter().flatten() {
        for (name, q) in c["resources"][list].as_object().into_iter().flatten() {
            if let Some(q) = Quantity::from_json(q) {
                total.entry(name.clone()).or_default().add(&q);
            }
        }
    }
    for c in spec["initContainers"].as_array().into_iter().flatten() {
        for (name, q) in c["resources"][list].as_object().into_iter().flatten() {
            if let Some(q) = Quantity::from_json(q) {
                let entry = total.entry(name.clone()).or_default();
                if q > *entry {
                    *entry = q;
                }
            }
        }
    }
    for (name, q) in spec["overhead"].as_object().into_iter().flatten() {
        if let Some(q) = Quantity::from_json(q) {
            total.entry(name.clone()).or_default().add(&q);
        }
    }
    total
}

/// Upstream's `podComputeUsageHelper`: `pods` plus the compute names of the requests and
/// limits given.
fn compute_usage(requests: &Usage, limits: &Usage) -> Usage {
    let mut usage = Usage::new();
    usage.insert("pods".into(), one());
    for (name, q) in requests {
        match name.as_str() {
            "cpu" | "memory" | "ephemeral-storage" => {
                usage.insert(name.clone(), *q);
                usage.insert(format!("requests.{name}"), *q);
            }
            other if other.starts_with("hugepages-") => {
                usage.insert(name.clone(), *q);
                usage.insert(format!("requests.{name}"), *q);
            }
            // Extended resources are quota'd as `requests.<name>` only.
            other if other.contains('/') => {
                usage.insert(format!("requests.{name}"), *q);
            }
            _ => {}
        }
    }
    for (name, q) in limits {
        if matches!(name.as_str(), "cpu" | "memory" | "ephemeral-storage") {
            usage.insert(format!("limits.{name}"), *q);
        }
    }
    usage
}

/// What `object` (of resource `group`/`plural`) counts against a quota.
pub fn usage(group: &str, plural: &str, object: &Value, now: jiff::Timestamp) -> Usage {
    let mut usage = Usage::new();
    usage.insert(count_name(group, plural), one());
    match (group, plural) {
        ("", "pods") => {
            if pod_counts(object, now) {
                let spec = &object["spec"];
                usage.extend(compute_usage(
                    &pod_resources(spec, "requests"),
                    &pod_resources(spec, "limits"),
                ));
            }
        }
        ("", "services") => {
            usage.insert("services".into(), one());
            let ports = object["spec"]["ports"].as_array().map_or(0, Vec::len);
            let node_ports = |n: usize| Quantity::parse(&n.to_string()).unwrap_or_default();
            match object["spec"]["type"].as_str() {
                Some("NodePort") => {
                    usage.insert("services.nodeports".into(), node_ports(ports));
                }
                Some("LoadBalancer") => {
                    usage.insert("services.loadbalancers".into(), one());
                    if object["spec"]["allocateLoadBalancerNodePorts"] != false {
                        usage.insert("services.nodeports".into(), node_ports(ports));
                    }
                }
                _ => {}
            }
        }
        ("", "persistentvolumeclaims") => {
            usage.insert("persistentvolumeclaims".into(), one());
            let class = object["spec"]["storageClassName"].as_str().unwrap_or_default();
            if !class.is_empty() {
                usage.insert(
                    format!("{class}.storageclass.storage.k8s.io/persistentvolumeclaims"),
                    one(),
                );
            }
            if let Some(size) = Quantity::from_json(&object["spec"]["resources"]["requests"]["storage"]) {
                usage.insert("requests.storage".into(), size);
                if !class.is_empty() {
                    usage.insert(format!("{class}.storageclass.storage.k8s.io/requests.storage"), size);
                }
            }
        }
        _ => {
            if let Some(name) = legacy_count_name(group, plural) {
                usage.insert(name.into(), one());
            }
        }
    }
    usage
}

/// Whether resource name `name` is one that objects of `group`/`plural` can use (upstream's
/// `MatchingResources` of the resource's evaluator).
pub fn tracks(group: &str, plural: &str, name: &str) -> bool {
    if name == count_name(group, plural) || legacy_count_name(group, plural) == Some(name) {
        return true;
    }
    match (group, plural) {
        ("", "pods") => {
            matches!(
                name,
                "cpu"
                    | "memory"
                    | "ephemeral-storage"
                    | "requests.cpu"
                    | "requests.memory"
                    | "requests.ephemeral-storage"
                    | "limits.cpu"
                    | "limits.memory"
                    | "limits.ephemeral-storage"
            ) || name.starts_with("hugepages-")
                || name.starts_with("requests.hugepages-")
                || (name.starts_with("requests.") && name.contains('/'))
        }
        ("", "services") => matches!(name, "services.nodeports" | "services.loadbalancers"),
        ("", "persistentvolumeclaims") => {
            name == "requests.storage"
                || name.ends_with(".storageclass.storage.k8s.io/requests.storage")
                || name.ends_with(".storageclass.storage.k8s.io/persistentvolumeclaims")
        }
        _ => false,
    }
}

/// The quota's tracked resource names (`status.hard`, or `spec.hard` for the controller).
fn names(list: &Value) -> BTreeSet<String> {
    list.as_object().into_iter().flatten().map(|(k, _)| k.clone()).collect()
}

/// A JSON `ResourceList` parsed (amounts that are not quantities left out).
pub(crate) fn list(list: &Value) -> Usage {
    list.as_object()
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| Quantity::from_json(v).map(|q| (k.clone(), q)))
        .collect()
}

/// Whether a pod's containers request or limit no cpu or memory (QoS BestEffort).
fn best_effort(spec: &Value) -> bool {
    let containers = spec["containers"].as_array().into_iter().flatten();
    let init = spec["initContainers"].as_array().into_iter().flatten();
    !containers.chain(init).any(|c| {
        ["requests", "limits"].iter().any(|list| {
            c["resources"][list].as_object().is_some_and(|l| {
                l.iter()
                    .any(|(k, v)| (k == "cpu" || k == "memory") && Quantity::from_json(v).is_some_and(|q| !q.is_zero()))
            })
        })
    })
}

/// Whether a pod's affinity terms reach other namespaces.
fn cross_namespace_affinity(spec: &Value) -> bool {
    ["podAffinity", "podAntiAffinity"].iter().any(|kind| {
        let affinity = &spec["affinity"][kind];
        let required = affinity["requiredDuringSchedulingIgnoredDuringExecution"].as_array();
        let preferred = affinity["preferredDuringSchedulingIgnoredDuringExecution"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|p| &p["podAffinityTerm"]);
        required.into_iter().flatten().chain(preferred).any(|t| {
            t["namespaces"].as_array().is_some_and(|n| !n.is_empty())
                || t.get("namespaceSelector").is_some_and(|s| !s.is_null())
        })
    })
}

/// Whether one scope selector requirement holds for a pod.
fn pod_in_scope(spec: &Value, scope: &str, operator: &str, values: &[&str]) -> bool {
    match scope {
        "Terminating" => spec["activeDeadlineSeconds"].as_i64().is_some_and(|s| s >= 0),
        "NotTerminating" => spec["activeDeadlineSeconds"].as_i64().is_none_or(|s| s < 0),
        "BestEffort" => best_effort(spec),
        "NotBestEffort" => !best_effort(spec),
        "CrossNamespacePodAffinity" => cross_namespace_affinity(spec),
        "PriorityClass" => {
            let class = spec["priorityClassName"].as_str().unwrap_or_default();
            match operator {
                "In" => values.contains(&class),
                "NotIn" => !values.contains(&class),
                "Exists" => !class.is_empty(),
                "DoesNotExist" => class.is_empty(),
                _ => false,
            }
        }
        _ => false,
    }
}

/// Whether `quota` counts `object` (of `group`/`plural`) against the names in `hard`: it
/// tracks something the object uses, and every scope holds (scopes only ever hold for pods).
pub fn matches(quota: &Value, hard: &Value, group: &str, plural: &str, object: &Value) -> bool {
    if !names(hard).iter().any(|n| tracks(group, plural, n)) {
        return false;
    }
    let mut requirements: Vec<(String, String, Vec<&str>)> = quota["spec"]["scopes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(|s| (s.to_string(), "Exists".to_string(), Vec::new()))
        .collect();
    for r in quota["spec"]["scopeSelector"]["matchExpressions"]
        .as_array()
        .into_iter()
        .flatten()
    {
        requirements.push((
            r["scopeName"].as_str().unwrap_or_default().to_string(),
            r["operator"].as_str().unwrap_or_default().to_string(),
            r["values"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect(),
        ));
    }
    if requirements.is_empty() {
        return true;
    }
    (group, plural) == ("", "pods")
        && requirements
            .iter()
            .all(|(scope, op, values)| pod_in_scope(&object["spec"], scope, op, values))
}

/// Upstream's pod `Constraints`: when a quota tracks cpu or memory, every container must
/// request (or limit) it; `Err` is the "must specify ..." text.
pub fn constraints(group: &str, plural: &str, hard: &Value, object: &Value) -> Result<(), String> {
    if (group, plural) != ("", "pods") {
        return Ok(());
    }
    const VALIDATED: &[&str] = &[
        "cpu",
        "memory",
        "requests.cpu",
        "requests.memory",
        "limits.cpu",
        "limits.memory",
    ];
    let required: BTreeSet<String> = names(hard)
        .into_iter()
        .filter(|n| VALIDATED.contains(&n.as_str()))
        .collect();
    if required.is_empty() {
        return Ok(());
    }
    let mut missing: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let spec = &object["spec"];
    for c in spec["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .chain(spec["initContainers"].as_array().into_iter().flatten())
    {
        let container = serde_json::json!({"containers": [c]});
        let has = compute_usage(
            &pod_resources(&container, "requests"),
            &pod_resources(&container, "limits"),
        );
        for name in &required {
            if !has.contains_key(name) {
                missing
                    .entry(name.clone())
                    .or_default()
                    .insert(c["name"].as_str().unwrap_or_default().to_string());
            }
        }
    }
    if missing.is_empty() {
        return Ok(());
    }
    let parts: Vec<String> = missing
        .iter()
        .map(|(name, containers)| {
            format!(
                "{name} for: {}",
                containers.iter().cloned().collect::<Vec<_>>().join(",")
            )
        })
        .collect();
    Err(format!("must specify {}", parts.join("; ")))
}

/// Upstream's `prettyPrint`: `name=value` pairs, sorted, comma-separated.
pub fn pretty(usage: &Usage) -> String {
    usage
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// Why admission refused an object (the text after `<resource> "<name>" is forbidden: `).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Refused(pub String);

/// Whether quota admission looks at updates of `group`/`plural` (upstream's evaluators'
/// `Handles`): a Service can change type, a claim can grow; pods change resources only
/// through `resize`, which is not served, and other kinds only count objects.
pub fn handles_update(group: &str, plural: &str) -> bool {
    group.is_empty() && matches!(plural, "services" | "persistentvolumeclaims")
}

/// What an update adds to the usage of `old`: upstream's `SubtractWithNonNegativeResult`
/// of the two usages, zeros dropped (updates never release usage; the controller recounts).
fn growth(mut new: Usage, old: &Usage) -> Usage {
    for (name, q) in new.iter_mut() {
        if let Some(before) = old.get(name) {
            q.sub(before);
        }
    }
    new.retain(|_, q| q.is_positive());
    new
}

/// Upstream's `CheckRequest`: for each quota (JSON ResourceQuotas of the object's namespace)
/// that counts the object, checks its constraints and that `status.used` plus what the object
/// adds (its usage on a create; on an update of the stored `old`, only the growth) stays
/// within `status.hard`. Returns the quotas' new `status.used` (by index into `quotas`) to
/// charge, or why the object is refused.
pub fn charge(
    quotas: &[Value],
    group: &str,
    plural: &str,
    object: &Value,
    old: Option<&Value>,
    now: jiff::Timestamp,
) -> Result<Vec<(usize, Usage)>, Refused> {
    let mut interesting = Vec::new();
    for (i, quota) in quotas.iter().enumerate() {
        let hard = &quota["status"]["hard"];
        if !matches(quota, hard, group, plural, object) {
            continue;
        }
        let name = quota["metadata"]["name"].as_str().unwrap_or_default();
        constraints(group, plural, hard, object).map_err(|e| Refused(format!("failed quota: {name}: {e}")))?;
        let restricted: Vec<String> = names(hard).into_iter().filter(|n| tracks(group, plural, n)).collect();
        let used = names(&quota["status"]["used"]);
        if restricted.iter().any(|n| !used.contains(n)) {
            return Err(Refused(format!(
                "status unknown for quota: {name}, resources: {}",
                restricted.join(",")
            )));
        }
        interesting.push(i);
    }
    let added = usage(group, plural, object, now);
    let delta: Usage = match old {
        Some(old) => growth(added, &usage(group, plural, old, now)),
        None => added.into_iter().filter(|(_, q)| !q.is_zero()).collect(),
    };
    if delta.is_empty() {
        return Ok(Vec::new());
    }
    let mut charged = Vec::new();
    for i in interesting {
        let quota = &quotas[i];
        let hard = list(&quota["status"]["hard"]);
        let used = list(&quota["status"]["used"]);
        let requested: Usage = delta
            .iter()
            .filter(|(k, _)| hard.contains_key(*k))
            .map(|(k, v)| (k.clone(), *v))
            .collect();
        let mut new_used = used.clone();
        for (k, v) in &requested {
            new_used.entry(k.clone()).or_default().add(v);
        }
        let exceeded: BTreeSet<&String> = requested
            .keys()
            .filter(|k| new_used.get(*k).is_some_and(|u| hard.get(*k).is_some_and(|h| u > h)))
            .collect();
        if !exceeded.is_empty() {
            let mask = |u: &Usage| -> Usage {
                u.iter()
                    .filter(|(k, _)| exceeded.contains(k))
                    .map(|(k, v)| (k.clone(), *v))
                    .collect()
            };
            return Err(Refused(format!(
                "exceeded quota: {}, requested: {}, used: {}, limited: {}",
                quota["metadata"]["name"].as_str().unwrap_or_default(),
                pretty(&mask(&requested)),
                pretty(&mask(&used)),
                pretty(&mask(&hard)),
            )));
        }
        charged.push((i, new_used));
    }
    Ok(charged)
}

/// The usage a quota reports: for each name in its `spec.hard`, the sum over `objects` (each
/// with its group and plural) it counts; names nothing uses are zero.
pub fn recompute<'a>(
    quota: &Value,
    objects: impl IntoIterator<Item = (&'a str, &'a str, &'a Value)>,
    now: jiff::Timestamp,
) -> Usage {
    let hard = &quota["spec"]["hard"];
    let tracked = names(hard);
    let mut used: Usage = tracked.iter().map(|n| (n.clone(), Quantity::default())).collect();
    for (group, plural, object) in objects {
        if !matches(quota, hard, group, plural, object) {
            continue;
        }
        for (name, q) in usage(group, plural, object, now) {
            if let Some(total) = used.get_mut(&name) {
                total.add(&q);
            }
        }
    }
    used
}

/// A usage as a JSON `ResourceList`.
pub fn to_json(usage: &Usage) -> Value {
    Value::Object(
        usage
            .iter()
            .map(|(k, v)| (k.clone(), Value::from(v.to_string())))
            .collect(),
    )
}

#[cfg(test)]
#[path = "quota_tests.rs"]
mod tests;
