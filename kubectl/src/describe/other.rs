//! Namespaces (with quotas and limit ranges), ConfigMaps, Secrets, ServiceAccounts, and the
//! generic field-tree report upstream falls back to for kinds without a describer.

use std::collections::BTreeSet;

use jiff::Zoned;
use serde_json::Value;

use super::common::{annotations_multiline, arr, go_value, labels_multiline, rfc1123z, s, str_map, ts};
use super::events::describe_events;
use super::pod::quantity_text;
use super::writer::PrefixWriter;

fn header(w: &mut PrefixWriter, obj: &Value) {
    w.write(0, &format!("Name:\t{}\n", s(obj, "/metadata/name")));
    w.write(0, &format!("Namespace:\t{}\n", s(obj, "/metadata/namespace")));
    labels_multiline(w, "Labels", &str_map(obj, "/metadata/labels"));
    annotations_multiline(w, "Annotations", &str_map(obj, "/metadata/annotations"));
}

fn sorted_keys(v: &Value, ptr: &str) -> Vec<String> {
    let mut keys: Vec<String> = v
        .pointer(ptr)
        .and_then(Value::as_object)
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    keys.sort();
    keys
}

/// The report for a namespace; `None` lists mean the server does not serve that resource.
pub(crate) fn render_namespace(
    ns: &Value,
    quotas: Option<&[Value]>,
    limit_ranges: Option<&[Value]>,
    now: &Zoned,
) -> String {
    let mut w = PrefixWriter::new();
    w.write(0, &format!("Name:\t{}\n", s(ns, "/metadata/name")));
    labels_multiline(&mut w, "Labels", &str_map(ns, "/metadata/labels"));
    annotations_multiline(&mut w, "Annotations", &str_map(ns, "/metadata/annotations"));
    w.write(0, &format!("Status:\t{}\n", s(ns, "/status/phase")));
    let conditions = arr(ns, "/status/conditions");
    if !conditions.is_empty() {
        w.write(0, "Conditions:\n");
        w.write(1, "Type\tStatus\tLastTransitionTime\tReason\tMessage\n");
        w.write(1, "----\t------\t------------------\t------\t-------\n");
        for c in conditions {
            w.write(
                1,
                &format!(
                    "{}\t{}\t{}\t{}\t{}\n",
                    s(c, "/type"),
                    s(c, "/status"),
                    rfc1123z(ts(c, "/lastTransitionTime"), now),
                    s(c, "/reason"),
                    s(c, "/message")
                ),
            );
        }
    }
    if let Some(quotas) = quotas {
        w.write(0, "\n");
        describe_quotas(quotas, &mut w);
    }
    if let Some(ranges) = limit_ranges {
        w.write(0, "\n");
        describe_limit_ranges(ranges, &mut w);
    }
    w.finish()
}

fn scope_help(scope: &str) -> &'static str {
    match scope {
        "Terminating" => {
            "Matches all pods that have an active deadline. These pods have a limited lifespan on a node before being actively terminated by the system."
        }
        "NotTerminating" => {
            "Matches all pods that do not have an active deadline. These pods usually include long running pods whose container command is not expected to terminate."
        }
        "BestEffort" => {
            "Matches all pods that do not have resource requirements set. These pods have a best effort quality of service."
        }
        "NotBestEffort" => {
            "Matches all pods that have at least one resource requirement set. These pods have a burstable or guaranteed quality of service."
        }
        _ => "",
    }
}

fn describe_quotas(quotas: &[Value], w: &mut PrefixWriter) {
    if quotas.is_empty() {
        w.write(0, "No resource quota.\n");
        return;
    }
    let mut sorted: Vec<&Value> = quotas.iter().collect();
    sorted.sort_by(|a, b| s(a, "/metadata/name").cmp(s(b, "/metadata/name")));
    w.write(0, "Resource Quotas\n");
    for q in sorted {
        w.write(1, &format!("Name:\t{}\n", s(q, "/metadata/name")));
        let mut scopes: Vec<&str> = arr(q, "/spec/scopes").iter().filter_map(Value::as_str).collect();
        if !scopes.is_empty() {
            scopes.sort();
            w.write(1, &format!("Scopes:\t{}\n", scopes.join(", ")));
            for sc in scopes {
                let help = scope_help(sc);
                if !help.is_empty() {
                    w.write(1, &format!("* {help}\n"));
                }
            }
        }
        w.write(1, "Resource\tUsed\tHard\n");
        w.write(1, "--------\t---\t---\n");
        for r in sorted_keys(q, "/status/hard") {
            let key = r.replace('~', "~0").replace('/', "~1");
            let hard = q
                .pointer(&format!("/status/hard/{key}"))
                .map(quantity_text)
                .unwrap_or_default();
            let used = q
                .pointer(&format!("/status/used/{key}"))
                .map(quantity_text)
                .unwrap_or_else(|| "0".into());
            w.write(1, &format!("{r}\t{used}\t{hard}\n"));
        }
    }
}

fn describe_limit_ranges(ranges: &[Value], w: &mut PrefixWriter) {
    if ranges.is_empty() {
        w.write(0, "No LimitRange resource.\n");
        return;
    }
    w.write(
        0,
        "Resource Limits\n Type\tResource\tMin\tMax\tDefault Request\tDefault Limit\tMax Limit/Request Ratio\n",
    );
    w.write(
        0,
        " ----\t--------\t---\t---\t---------------\t-------------\t-----------------------\n",
    );
    for lr in ranges {
        limit_range_rows(lr, " ", w);
    }
}

/// One row per limit-range item and resource (`-` where a bound is unset).
pub(crate) fn limit_range_rows(lr: &Value, prefix: &str, w: &mut PrefixWriter) {
    for item in arr(lr, "/spec/limits") {
        let fields = ["min", "max", "defaultRequest", "default", "maxLimitRequestRatio"];
        let mut names: BTreeSet<String> = BTreeSet::new();
        for f in fields {
            names.extend(sorted_keys(item, &format!("/{f}")));
        }
        for n in names {
            let cell = |f: &str| {
                item.pointer(&format!("/{f}/{}", n.replace('~', "~0").replace('/', "~1")))
                    .map(quantity_text)
                    .unwrap_or_else(|| "-".into())
            };
            w.write(
                0,
                &format!(
                    "{prefix}{}\t{n}\t{}\t{}\t{}\t{}\t{}\n",
                    s(item, "/type"),
                    cell("min"),
                    cell("max"),
                    cell("defaultRequest"),
                    cell("default"),
                    cell("maxLimitRequestRatio")
                ),
            );
        }
    }
}

/// Decoded length of standard base64 text.
fn base64_len(text: &str) -> usize {
    let t = text.trim_end_matches('=');
    t.len() * 3 / 4
}

/// The report for a ConfigMap (keys sorted; upstream prints them in map order).
pub(crate) fn render_config_map(cm: &Value, events: Option<&[Value]>, now: &Zoned) -> String {
    let mut w = PrefixWriter::new();
    header(&mut w, cm);
    w.write(0, "\nData\n====\n");
    for k in sorted_keys(cm, "/data") {
        w.write(0, &format!("{k}:\n----\n"));
        w.write(0, &format!("{}\n", cm["data"][&k].as_str().unwrap_or("")));
        w.write(0, "\n");
    }
    w.write(0, "\nBinaryData\n====\n");
    for k in sorted_keys(cm, "/binaryData") {
        let len = base64_len(cm["binaryData"][&k].as_str().unwrap_or(""));
        w.write(0, &format!("{k}: {len} bytes\n"));
    }
    w.write(0, "\n");
    describe_events(events, &mut w, now);
    w.finish()
}

/// The report for a Secret: sizes only, except a service-account token which is shown.
pub(crate) fn render_secret(secret: &Value) -> String {
    use base64::Engine as _;
    let mut w = PrefixWriter::new();
    header(&mut w, secret);
    let kind = s(secret, "/type");
    w.write(0, &format!("\nType:\t{kind}\n"));
    w.write(0, "\nData\n====\n");
    for k in sorted_keys(secret, "/data") {
        let raw = secret["data"][&k].as_str().unwrap_or("");
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(raw)
            .unwrap_or_default();
        if k == "token" && kind == "kubernetes.io/service-account-token" {
            w.write(0, &format!("{k}:\t{}\n", String::from_utf8_lossy(&bytes)));
        } else {
            w.write(0, &format!("{k}:\t{} bytes\n", bytes.len()));
        }
    }
    w.finish()
}

/// The report for a ServiceAccount: its image pull secrets (kubectl 1.37 shows no mountable
/// secrets or tokens).
pub(crate) fn render_service_account(sa: &Value, events: Option<&[Value]>, now: &Zoned) -> String {
    let mut w = PrefixWriter::new();
    header(&mut w, sa);
    let pull: Vec<&str> = arr(sa, "/imagePullSecrets").iter().map(|r| s(r, "/name")).collect();
    if pull.is_empty() {
        w.write(0, "Image pull secrets:\t<none>\n");
    }
    for (n, name) in pull.iter().enumerate() {
        let prefix = if n == 0 { "Image pull secrets:" } else { "" };
        w.write(0, &format!("{prefix}\t{name}\n"));
    }
    describe_events(events, &mut w, now);
    w.finish()
}

/// Upstream's label for a field name: camel-case words title-cased, common acronyms upper-cased.
fn smart_label(field: &str) -> String {
    if field.chars().any(|c| !c.is_alphabetic() && c != '-') {
        return field.to_string();
    }
    // split into runs of the same class: lower, upper, other
    let class = |c: char| {
        if c.is_lowercase() {
            1
        } else if c.is_uppercase() {
            2
        } else {
            3
        }
    };
    let mut runs: Vec<Vec<char>> = Vec::new();
    let mut last = 0;
    for c in field.chars() {
        let k = class(c);
        if k == last {
            if let Some(r) = runs.last_mut() {
                r.push(c);
            }
        } else {
            runs.push(vec![c]);
        }
        last = k;
    }
    for n in 0..runs.len().saturating_sub(1) {
        if runs[n][0].is_uppercase()
            && runs[n + 1][0].is_lowercase()
            && let Some(c) = runs[n].pop()
        {
            runs[n + 1].insert(0, c);
        }
    }
    let acronyms = ["API", "URL", "UID", "OSB", "GUID"];
    runs.into_iter()
        .filter(|r| !r.is_empty())
        .map(|r| r.into_iter().collect::<String>())
        .filter(|p| p != "_")
        .map(|p| {
            let upper = p.to_uppercase();
            if acronyms.contains(&upper.as_str()) {
                upper
            } else {
                let mut cs = p.chars();
                match cs.next() {
                    Some(f) => f.to_uppercase().chain(cs).collect(),
                    None => p,
                }
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

const GENERIC_SKIP: &[&str] = &[
    ".metadata.managedFields",
    ".metadata.name",
    ".metadata.namespace",
    ".metadata.labels",
    ".metadata.annotations",
];

fn unstructured(w: &mut PrefixWriter, level: usize, content: &serde_json::Map<String, Value>, prefix: &str) {
    let mut fields: Vec<&String> = content.keys().collect();
    fields.sort();
    for field in fields {
        let path = format!("{prefix}.{field}");
        if GENERIC_SKIP.contains(&path.as_str()) {
            continue;
        }
        match &content[field] {
            Value::Object(m) => {
                w.write(level, &format!("{}:\n", smart_label(field)));
                unstructured(w, level + 1, m, &path);
            }
            Value::Array(items) => {
                w.write(level, &format!("{}:\n", smart_label(field)));
                for item in items {
                    match item {
                        Value::Object(m) => unstructured(w, level + 1, m, &path),
                        other => w.write(level + 1, &format!("{}\n", go_value(other))),
                    }
                }
            }
            other => w.write(level, &format!("{}:\t{}\n", smart_label(field), go_value(other))),
        }
    }
}

/// The generic report: identity, then every field as an indented tree, then events.
pub(crate) fn render_generic(obj: &Value, events: Option<&[Value]>, now: &Zoned) -> String {
    let mut w = PrefixWriter::new();
    header(&mut w, obj);
    if let Some(m) = obj.as_object() {
        unstructured(&mut w, 0, m, "");
    }
    describe_events(events, &mut w, now);
    w.finish()
}

#[cfg(test)]
mod tests {
    use super::smart_label;

    #[test]
    fn smart_labels() {
        assert_eq!(smart_label("apiVersion"), "API Version");
        assert_eq!(smart_label("creationTimestamp"), "Creation Timestamp");
        assert_eq!(smart_label("uid"), "UID");
        assert_eq!(smart_label("podCIDR"), "Pod CIDR");
        assert_eq!(smart_label("k8s"), "k8s");
    }
}
