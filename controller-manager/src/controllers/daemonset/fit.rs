//! Which nodes a DaemonSet's pod belongs on, pure: upstream's `NodeShouldRunDaemonPod`
//! (node name, `nodeSelector` plus required node affinity, taints against the pod's
//! tolerations including the ones every daemon pod gets) and the pieces of the pod the
//! controller adds for a node (tolerations, the `metadata.name` node affinity).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Affinity, Node, NodeAffinity, NodeSelector, NodeSelectorRequirement, NodeSelectorTerm, PodSpec, Taint, Toleration,
};

/// The node field daemon pods are pinned with.
pub const NODE_NAME_FIELD: &str = "metadata.name";

/// What a node means for a DaemonSet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fit {
    /// A daemon pod should be created on the node.
    pub should_run: bool,
    /// An existing daemon pod may stay (it tolerates the NoExecute taints).
    pub should_continue_running: bool,
}

/// The tolerations upstream adds to every daemon pod (`AddOrUpdateDaemonPodTolerations`),
/// plus `network-unavailable` for host-network pods.
pub fn daemon_tolerations(host_network: bool) -> Vec<Toleration> {
    let exists = |key: &str, effect: &str| Toleration {
        key: Some(key.into()),
        operator: Some("Exists".into()),
        effect: Some(effect.into()),
        ..Default::default()
    };
    let mut tolerations = vec![
        exists("node.kubernetes.io/not-ready", "NoExecute"),
        exists("node.kubernetes.io/unreachable", "NoExecute"),
        exists("node.kubernetes.io/disk-pressure", "NoSchedule"),
        exists("node.kubernetes.io/memory-pressure", "NoSchedule"),
        exists("node.kubernetes.io/pid-pressure", "NoSchedule"),
        exists("node.kubernetes.io/unschedulable", "NoSchedule"),
    ];
    if host_network {
        tolerations.push(exists("node.kubernetes.io/network-unavailable", "NoSchedule"));
    }
    tolerations
}

/// The template's tolerations with the daemon ones added or replaced (same key and effect),
/// like upstream's `AddOrUpdateTolerationInPodSpec`.
pub fn with_daemon_tolerations(spec: &PodSpec) -> Vec<Toleration> {
    let mut tolerations = spec.tolerations.clone().unwrap_or_default();
    for added in daemon_tolerations(spec.host_network == Some(true)) {
        match tolerations
            .iter_mut()
            .find(|existing| existing.key == added.key && existing.effect == added.effect)
        {
            Some(existing) => *existing = added,
            None => tolerations.push(added),
        }
    }
    tolerations
}

/// The pod's affinity with the required node affinity replaced by one term selecting
/// `node` by `metadata.name` (upstream's `ReplaceDaemonSetPodNodeNameNodeAffinity`); preferred
/// terms and pod (anti-)affinity are kept.
pub fn pin_to_node(affinity: Option<Affinity>, node: &str) -> Affinity {
    let mut affinity = affinity.unwrap_or_default();
    let node_affinity = affinity.node_affinity.get_or_insert_with(NodeAffinity::default);
    node_affinity.required_during_scheduling_ignored_during_execution = Some(NodeSelector {
        node_selector_terms: vec![NodeSelectorTerm {
            match_fields: Some(vec![NodeSelectorRequirement {
                key: NODE_NAME_FIELD.into(),
                operator: "In".into(),
                values: Some(vec![node.into()]),
            }]),
            match_expressions: None,
        }],
    });
    affinity
}

/// The node a daemon pod is for: its `spec.nodeName`, else the node its required affinity pins
/// it to (upstream's `GetTargetNodeName`).
pub fn target_node(spec: &PodSpec) -> Option<String> {
    if let Some(node) = spec.node_name.as_deref().filter(|node| !node.is_empty()) {
        return Some(node.to_string());
    }
    let terms = &spec
        .affinity
        .as_ref()?
        .node_affinity
        .as_ref()?
        .required_during_scheduling_ignored_during_execution
        .as_ref()?
        .node_selector_terms;
    terms.iter().find_map(|term| {
        term.match_fields.as_ref()?.iter().find_map(|field| {
            let values = field.values.as_deref()?;
            (field.key == NODE_NAME_FIELD && field.operator == "In" && values.len() == 1).then(|| values[0].clone())
        })
    })
}

/// Whether `spec` (a DaemonSet's pod template spec) should run, or keep running, on `node`.
pub fn fit(spec: &PodSpec, node: &Node) -> Fit {
    const NO: Fit = Fit {
        should_run: false,
        should_continue_running: false,
    };
    let node_name = node.metadata.name.as_deref().unwrap_or_default();
    if spec
        .node_name
        .as_deref()
        .is_some_and(|name| !name.is_empty() && name != node_name)
    {
        return NO;
    }
    if !matches_selector_and_affinity(spec, node) {
        return NO;
    }
    let tolerations = with_daemon_tolerations(spec);
    let taints = node
        .spec
        .as_ref()
        .and_then(|spec| spec.taints.as_deref())
        .unwrap_or_default();
    let untolerated = |effects: &[&str]| {
        taints.iter().any(|taint| {
            effects.contains(&taint.effect.as_str())
                && !tolerations.iter().any(|toleration| tolerates(toleration, taint))
        })
    };
    if untolerated(&["NoSchedule", "NoExecute"]) {
        return Fit {
            should_run: false,
            should_continue_running: !untolerated(&["NoExecute"]),
        };
    }
    Fit {
        should_run: true,
        should_continue_running: true,
    }
}

/// True when `node` matches the pod's `nodeSelector` and its required node affinity.
pub fn matches_selector_and_affinity(spec: &PodSpec, node: &Node) -> bool {
    let empty = BTreeMap::new();
    let labels = node.metadata.labels.as_ref().unwrap_or(&empty);
    let selector_ok = spec
        .node_selector
        .iter()
        .flatten()
        .all(|(key, value)| labels.get(key) == Some(value));
    if !selector_ok {
        return false;
    }
    let required = spec
        .affinity
        .as_ref()
        .and_then(|affinity| affinity.node_affinity.as_ref())
        .and_then(|affinity| affinity.required_during_scheduling_ignored_during_execution.as_ref());
    match required {
        None => true,
        Some(selector) => selector.node_selector_terms.iter().any(|term| term_matches(term, node)),
    }
}

/// A term matches when it has at least one requirement and all of them match; an empty term
/// matches nothing (upstream's `nodeaffinity` semantics).
fn term_matches(term: &NodeSelectorTerm, node: &Node) -> bool {
    let empty = BTreeMap::new();
    let labels = node.metadata.labels.as_ref().unwrap_or(&empty);
    let expressions = term.match_expressions.as_deref().unwrap_or_default();
    let fields = term.match_fields.as_deref().unwrap_or_default();
    if expressions.is_empty() && fields.is_empty() {
        return false;
    }
    let name = node.metadata.name.clone().unwrap_or_default();
    expressions
        .iter()
        .all(|requirement| requirement_matches(requirement, labels.get(&requirement.key)))
        && fields.iter().all(|requirement| {
            requirement.key == NODE_NAME_FIELD
                && matches!(requirement.operator.as_str(), "In" | "NotIn")
                && requirement_matches(requirement, Some(&name))
        })
}

fn requirement_matches(requirement: &NodeSelectorRequirement, value: Option<&String>) -> bool {
    let values = requirement.values.as_deref().unwrap_or_default();
    let number = |text: &str| text.parse::<i64>().ok();
    match requirement.operator.as_str() {
        "In" => value.is_some_and(|value| values.contains(value)),
        "NotIn" => value.is_none_or(|value| !values.contains(value)),
        "Exists" => value.is_some(),
        "DoesNotExist" => value.is_none(),
        "Gt" | "Lt" => {
            let (Some(have), [bound]) = (value.and_then(|value| number(value)), values) else {
                return false;
            };
            let Some(bound) = number(bound) else {
                return false;
            };
            if requirement.operator == "Gt" {
                have > bound
            } else {
                have < bound
            }
        }
        _ => false,
    }
}

/// Upstream's `Toleration.ToleratesTaint`.
pub fn tolerates(toleration: &Toleration, taint: &Taint) -> bool {
    if let Some(effect) = toleration.effect.as_deref().filter(|effect| !effect.is_empty())
        && effect != taint.effect
    {
        return false;
    }
    let key = toleration.key.as_deref().unwrap_or_default();
    if !key.is_empty() && key != taint.key {
        return false;
    }
    match toleration.operator.as_deref().unwrap_or("Equal") {
        "Exists" => true,
        "Equal" | "" => {
            !key.is_empty()
                && toleration.value.as_deref().unwrap_or_default() == taint.value.as_deref().unwrap_or_default()
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::NodeSpec;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
    use serde_json::json;

    fn node(name: &str, labels: &[(&str, &str)], taints: &[(&str, &str)]) -> Node {
        Node {
            metadata: ObjectMeta {
                name: Some(name.into()),
                labels: Some(labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()),
                ..Default::default()
            },
            spec: Some(NodeSpec {
                taints: Some(
                    taints
                        .iter()
                        .map(|(key, effect)| Taint {
                            key: key.to_string(),
                            effect: effect.to_string(),
                            ..Default::default()
                        })
                        .collect(),
                ),
                ..Default::default()
            }),
            status: None,
        }
    }

    fn spec(value: serde_json::Value) -> PodSpec {
        let mut value = value;
        value["containers"] = json!([{"name": "c", "image": "i"}]);
        serde_json::from_value(value).expect("valid pod spec")
    }

    const RUN: Fit = Fit {
        should_run: true,
        should_continue_running: true,
    };
    const NEVER: Fit = Fit {
        should_run: false,
        should_continue_running: false,
    };
    const KEEP: Fit = Fit {
        should_run: false,
        should_continue_running: true,
    };

    #[test]
    fn node_fit_table() {
        let in_zone_a = json!({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [{"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]}]}}}});
        let by_name = json!({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [{"matchFields": [{"key": "metadata.name", "operator": "NotIn", "values": ["n1"]}]}]}}}});
        let gt = json!({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [{"matchExpressions": [{"key": "cpus", "operator": "Gt", "values": ["4"]}]}]}}}});
        let empty_term = json!({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [{}]}}}});
        let tolerate_gpu = json!({"tolerations": [{"key": "gpu", "operator": "Exists"}]});
        let tolerate_all = json!({"tolerations": [{"operator": "Exists"}]});
        let cases: Vec<(&str, serde_json::Value, Node, Fit)> = vec![
            ("plain node", json!({}), node("n1", &[], &[]), RUN),
            (
                "nodeSelector matches",
                json!({"nodeSelector": {"role": "edge"}}),
                node("n1", &[("role", "edge")], &[]),
                RUN,
            ),
            (
                "nodeSelector misses",
                json!({"nodeSelector": {"role": "edge"}}),
                node("n1", &[("role", "core")], &[]),
                NEVER,
            ),
            (
                "affinity In matches",
                in_zone_a.clone(),
                node("n1", &[("zone", "a")], &[]),
                RUN,
            ),
            (
                "affinity In misses",
                in_zone_a,
                node("n1", &[("zone", "b")], &[]),
                NEVER,
            ),
            (
                "matchFields NotIn excludes",
                by_name.clone(),
                node("n1", &[], &[]),
                NEVER,
            ),
            ("matchFields NotIn includes", by_name, node("n2", &[], &[]), RUN),
            ("Gt matches", gt.clone(), node("n1", &[("cpus", "8")], &[]), RUN),
            ("Gt misses", gt, node("n1", &[("cpus", "2")], &[]), NEVER),
            ("empty term selects nothing", empty_term, node("n1", &[], &[]), NEVER),
            (
                "nodeName elsewhere",
                json!({"nodeName": "n2"}),
                node("n1", &[], &[]),
                NEVER,
            ),
            (
                "NoSchedule taint: keep existing",
                json!({}),
                node("n1", &[], &[("gpu", "NoSchedule")]),
                KEEP,
            ),
            (
                "NoExecute taint: evict",
                json!({}),
                node("n1", &[], &[("gpu", "NoExecute")]),
                NEVER,
            ),
            (
                "PreferNoSchedule ignored",
                json!({}),
                node("n1", &[], &[("gpu", "PreferNoSchedule")]),
                RUN,
            ),
            (
                "tolerated taint",
                tolerate_gpu,
                node("n1", &[], &[("gpu", "NoExecute")]),
                RUN,
            ),
            (
                "tolerate everything",
                tolerate_all,
                node("n1", &[], &[("x", "NoExecute")]),
                RUN,
            ),
            (
                "daemon tolerations: not-ready, unschedulable",
                json!({}),
                node(
                    "n1",
                    &[],
                    &[
                        ("node.kubernetes.io/not-ready", "NoExecute"),
                        ("node.kubernetes.io/unreachable", "NoExecute"),
                        ("node.kubernetes.io/unschedulable", "NoSchedule"),
                        ("node.kubernetes.io/disk-pressure", "NoSchedule"),
                        ("node.kubernetes.io/memory-pressure", "NoSchedule"),
                        ("node.kubernetes.io/pid-pressure", "NoSchedule"),
                    ],
                ),
                RUN,
            ),
            (
                "network-unavailable only for host network",
                json!({}),
                node("n1", &[], &[("node.kubernetes.io/network-unavailable", "NoSchedule")]),
                KEEP,
            ),
            (
                "network-unavailable tolerated with host network",
                json!({"hostNetwork": true}),
                node("n1", &[], &[("node.kubernetes.io/network-unavailable", "NoSchedule")]),
                RUN,
            ),
        ];
        for (name, value, node, want) in cases {
            assert_eq!(fit(&spec(value), &node), want, "{name}");
        }
    }

    #[test]
    fn toleration_rules() {
        let taint = Taint {
            key: "k".into(),
            value: Some("v".into()),
            effect: "NoSchedule".into(),
            ..Default::default()
        };
        let toleration =
            |value: serde_json::Value| -> Toleration { serde_json::from_value(value).expect("toleration") };
        assert!(tolerates(&toleration(json!({"key": "k", "value": "v"})), &taint));
        assert!(!tolerates(&toleration(json!({"key": "k", "value": "w"})), &taint));
        assert!(!tolerates(
            &toleration(json!({"key": "k", "operator": "Exists", "effect": "NoExecute"})),
            &taint
        ));
        assert!(tolerates(
            &toleration(json!({"key": "k", "operator": "Exists", "effect": "NoSchedule"})),
            &taint
        ));
        assert!(!tolerates(
            &toleration(json!({"operator": "Equal", "value": "v"})),
            &taint
        ));
        assert!(!tolerates(
            &toleration(json!({"key": "k", "operator": "Bogus"})),
            &taint
        ));
    }

    #[test]
    fn pinning_replaces_required_terms_and_round_trips() {
        let original: Affinity = serde_json::from_value(json!({"nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]}]},
            "preferredDuringSchedulingIgnoredDuringExecution": [
                {"weight": 1, "preference": {"matchExpressions": [{"key": "ssd", "operator": "Exists"}]}}]}}))
        .expect("affinity");
        let pinned = pin_to_node(Some(original), "n7");
        let spec = PodSpec {
            affinity: Some(pinned.clone()),
            ..Default::default()
        };
        assert_eq!(target_node(&spec).as_deref(), Some("n7"));
        let node_affinity = pinned.node_affinity.expect("node affinity");
        assert_eq!(
            node_affinity
                .preferred_during_scheduling_ignored_during_execution
                .map(|p| p.len()),
            Some(1)
        );
        let spec = PodSpec {
            node_name: Some("n3".into()),
            ..spec
        };
        assert_eq!(target_node(&spec).as_deref(), Some("n3"));
        assert_eq!(target_node(&PodSpec::default()), None);
    }

    #[test]
    fn daemon_tolerations_replace_same_key_and_effect() {
        let spec: PodSpec = serde_json::from_value(json!({"containers": [], "tolerations": [
            {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 30},
            {"key": "mine", "operator": "Exists"}]}))
        .expect("spec");
        let tolerations = with_daemon_tolerations(&spec);
        assert_eq!(tolerations.len(), 7);
        let not_ready = tolerations
            .iter()
            .find(|t| t.key.as_deref() == Some("node.kubernetes.io/not-ready"))
            .expect("not-ready");
        assert_eq!(not_ready.toleration_seconds, None);
    }
}
