//! `-o json` of objects kubectl holds as Go structs (what `create <generator>` builds):
//! keys in the structs' field order rather than sorted, maps (labels, data, ...) sorted, as
//! Go's `json.MarshalIndent` of a typed object writes them. Fields this table does not know
//! follow the known ones, sorted.

use serde_json::Value;

/// Field order across the core types the generators build (TypeMeta, ObjectMeta, ConfigMap,
/// Secret, Deployment, Job, Service, PodTemplateSpec, PodSpec, Container, ports, selectors);
/// every struct's fields appear in it in that struct's order.
const ORDER: &[&str] = &[
    "kind",
    "apiVersion",
    "metadata",
    "name",
    "generateName",
    "namespace",
    "selfLink",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "labels",
    "annotations",
    "ownerReferences",
    "finalizers",
    "managedFields",
    "immutable",
    "data",
    "stringData",
    "binaryData",
    "image",
    "command",
    "args",
    "workingDir",
    "replicas",
    "parallelism",
    "completions",
    "volumes",
    "initContainers",
    "containers",
    "ephemeralContainers",
    "ports",
    "hostPort",
    "containerPort",
    "protocol",
    "appProtocol",
    "port",
    "targetPort",
    "nodePort",
    "envFrom",
    "env",
    "resources",
    "resizePolicy",
    "restartPolicy",
    "volumeMounts",
    "volumeDevices",
    "livenessProbe",
    "readinessProbe",
    "startupProbe",
    "lifecycle",
    "terminationMessagePath",
    "terminationMessagePolicy",
    "imagePullPolicy",
    "terminationGracePeriodSeconds",
    "activeDeadlineSeconds",
    "backoffLimit",
    "dnsPolicy",
    "nodeSelector",
    "serviceAccountName",
    "serviceAccount",
    "automountServiceAccountToken",
    "nodeName",
    "hostNetwork",
    "hostPID",
    "hostIPC",
    "shareProcessNamespace",
    "securityContext",
    "stdin",
    "stdinOnce",
    "tty",
    "imagePullSecrets",
    "hostname",
    "subdomain",
    "affinity",
    "schedulerName",
    "tolerations",
    "priority",
    "enableServiceLinks",
    "preemptionPolicy",
    "selector",
    "matchLabels",
    "matchExpressions",
    "manualSelector",
    "template",
    "strategy",
    "maxUnavailable",
    "maxSurge",
    "minReadySeconds",
    "revisionHistoryLimit",
    "paused",
    "progressDeadlineSeconds",
    "clusterIP",
    "clusterIPs",
    "type",
    "externalIPs",
    "sessionAffinity",
    "loadBalancerIP",
    "loadBalancerSourceRanges",
    "externalName",
    "externalTrafficPolicy",
    "healthCheckNodePort",
    "publishNotReadyAddresses",
    "sessionAffinityConfig",
    "ipFamilies",
    "ipFamilyPolicy",
    "allocateLoadBalancerNodePorts",
    "loadBalancerClass",
    "internalTrafficPolicy",
    "trafficDistribution",
    "ttlSecondsAfterFinished",
    "completionMode",
    "suspend",
    "podReplacementPolicy",
    "spec",
    "status",
    "loadBalancer",
    // Tolerations and selector requirements; environment variables' values.
    "key",
    "operator",
    "value",
    "values",
    "effect",
    "tolerationSeconds",
    // PodStatus.
    "phase",
    "qosClass",
];

/// An owner reference's own order (its `apiVersion` comes before `kind`).
const OWNER_REFERENCE: &[&str] = &["apiVersion", "kind", "name", "uid", "controller", "blockOwnerDeletion"];

/// Keys whose values are Go maps, printed sorted.
const MAPS: &[&str] = &[
    "labels",
    "annotations",
    "data",
    "stringData",
    "binaryData",
    "matchLabels",
    "nodeSelector",
];

/// The object as Go's typed JSON encoder indents it (four spaces, `<>&` escaped).
pub fn to_json(value: &Value) -> String {
    let mut out = String::new();
    write(value, "", None, &mut out);
    out.push('\n');
    out
}

fn write(value: &Value, indent: &str, key: Option<&str>, out: &mut String) {
    match value {
        Value::Object(map) if map.is_empty() => out.push_str("{}"),
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            let is_map = key.is_some_and(|k| MAPS.contains(&k))
                || (key == Some("selector")
                    && !map.contains_key("matchLabels")
                    && !map.contains_key("matchExpressions"));
            let order = if key == Some("ownerReferences") {
                OWNER_REFERENCE
            } else {
                ORDER
            };
            let rank = |k: &str| order.iter().position(|o| *o == k).unwrap_or(usize::MAX);
            if is_map {
                keys.sort();
            } else {
                keys.sort_by(|a, b| rank(a).cmp(&rank(b)).then_with(|| a.cmp(b)));
            }
            let inner = format!("{indent}    ");
            out.push_str("{\n");
            for (index, k) in keys.iter().enumerate() {
                out.push_str(&inner);
                out.push_str(&escape(&serde_json::to_string(k).expect("strings serialize")));
                out.push_str(": ");
                // Items of a list keep the list's key, for owner references.
                let child = if is_map { None } else { Some(k.as_str()) };
                write(&map[k.as_str()], &inner, child, out);
                if index + 1 < keys.len() {
                    out.push(',');
                }
                out.push('\n');
            }
            out.push_str(indent);
            out.push('}');
        }
        Value::Array(items) if items.is_empty() => out.push_str("[]"),
        Value::Array(items) => {
            let inner = format!("{indent}    ");
            out.push_str("[\n");
            for (index, item) in items.iter().enumerate() {
                out.push_str(&inner);
                write(item, &inner, key, out);
                if index + 1 < items.len() {
                    out.push(',');
                }
                out.push('\n');
            }
            out.push_str(indent);
            out.push(']');
        }
        scalar => out.push_str(&escape(&serde_json::to_string(scalar).expect("scalars serialize"))),
    }
}

/// The object as Go's typed JSON encoder writes it without indentation (what
/// `runtime.Encode` gives), with its trailing newline.
pub fn to_compact(value: &Value) -> String {
    let indented = to_json(value);
    let mut out = String::with_capacity(indented.len());
    let (mut in_string, mut escaped) = (false, false);
    for c in indented.chars() {
        if in_string {
            out.push(c);
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => in_string = false,
                _ => {}
            }
        } else if c == '"' {
            in_string = true;
            out.push(c);
        } else if !c.is_whitespace() {
            out.push(c);
        }
    }
    out.push('\n');
    out
}

/// Go's encoder escapes `<`, `>`, `&` and the line and paragraph separators in strings.
fn escape(text: &str) -> String {
    text.replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
        .replace('\u{2028}', "\\u2028")
        .replace('\u{2029}', "\\u2029")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn typed_objects_keep_field_order_and_sort_maps() {
        let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "data": {"b": "2", "a": "<1>"},
            "metadata": {"namespace": "ns", "name": "c", "labels": {"z": "1", "name": "x"}}});
        assert_eq!(
            to_json(&cm),
            "{\n    \"kind\": \"ConfigMap\",\n    \"apiVersion\": \"v1\",\n    \"metadata\": {\n        \"name\": \"c\",\n        \"namespace\": \"ns\",\n        \"labels\": {\n            \"name\": \"x\",\n            \"z\": \"1\"\n        }\n    },\n    \"data\": {\n        \"a\": \"\\u003c1\\u003e\",\n        \"b\": \"2\"\n    }\n}\n"
        );
        let owner = json!({"ownerReferences": [{"kind": "CronJob", "apiVersion": "batch/v1", "name": "c"}]});
        assert!(to_json(&owner).contains("\"apiVersion\": \"batch/v1\",\n            \"kind\": \"CronJob\""));
        assert_eq!(
            to_compact(&json!({"metadata": {"name": "a b\\\" \n"}, "kind": "X"})),
            "{\"kind\":\"X\",\"metadata\":{\"name\":\"a b\\\\\\\" \\n\"}}\n"
        );
        assert_eq!(
            to_json(&json!({"a": [], "b": {}})),
            "{\n    \"a\": [],\n    \"b\": {}\n}\n"
        );
    }
}
