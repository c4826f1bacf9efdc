//! Shared pieces of every report: JSON field access, timestamps and ages, label and annotation
//! blocks, selectors, tolerations and taints, printed the way upstream kubectl prints them.

use jiff::{Timestamp, Zoned};
use serde_json::Value;

use super::writer::PrefixWriter;

/// Annotations upstream never shows.
const SKIP_ANNOTATIONS: &[&str] = &["kubectl.kubernetes.io/last-applied-configuration"];
const MAX_ANNOTATION_LEN: usize = 140;

/// The string at JSON pointer `ptr`, or "" when absent or not a string.
pub(crate) fn s<'a>(v: &'a Value, ptr: &str) -> &'a str {
    v.pointer(ptr).and_then(Value::as_str).unwrap_or("")
}

/// The integer at `ptr`, if any.
pub(crate) fn opt_i(v: &Value, ptr: &str) -> Option<i64> {
    v.pointer(ptr).and_then(Value::as_i64)
}

/// The integer at `ptr`, 0 when absent (Go's zero value).
pub(crate) fn i(v: &Value, ptr: &str) -> i64 {
    opt_i(v, ptr).unwrap_or(0)
}

/// The bool at `ptr`, false when absent.
pub(crate) fn b(v: &Value, ptr: &str) -> bool {
    v.pointer(ptr).and_then(Value::as_bool).unwrap_or(false)
}

/// The array at `ptr`, empty when absent.
pub(crate) fn arr<'a>(v: &'a Value, ptr: &str) -> &'a [Value] {
    v.pointer(ptr)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

/// The string map at `ptr` as sorted pairs (labels, annotations, selectors).
pub(crate) fn str_map<'a>(v: &'a Value, ptr: &str) -> Vec<(&'a str, &'a str)> {
    let mut out: Vec<(&str, &str)> = v
        .pointer(ptr)
        .and_then(Value::as_object)
        .map(|m| m.iter().map(|(k, v)| (k.as_str(), v.as_str().unwrap_or(""))).collect())
        .unwrap_or_default();
    out.sort();
    out
}

/// Go's `%v` of a string slice: `[a b c]`.
pub(crate) fn go_slice(items: &[Value]) -> String {
    let parts: Vec<String> = items.iter().map(go_value).collect();
    format!("[{}]", parts.join(" "))
}

/// Go's `%v` of a decoded JSON value.
pub(crate) fn go_value(v: &Value) -> String {
    match v {
        Value::Null => "<nil>".into(),
        Value::Bool(b) => b.to_string(),
        Value::String(s) => s.clone(),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                i.to_string()
            } else if let Some(u) = n.as_u64() {
                u.to_string()
            } else {
                let f = n.as_f64().unwrap_or(0.0);
                if f.fract() == 0.0 && f.abs() < 1e21 {
                    format!("{f:.0}")
                } else {
                    f.to_string()
                }
            }
        }
        Value::Array(a) => go_slice(a),
        Value::Object(m) => {
            let parts: Vec<String> = m.iter().map(|(k, v)| format!("{k}:{}", go_value(v))).collect();
            format!("map[{}]", parts.join(" "))
        }
    }
}

/// Parses an RFC 3339 timestamp field.
pub(crate) fn ts(v: &Value, ptr: &str) -> Option<Timestamp> {
    s(v, ptr).parse().ok()
}

/// `Mon, 02 Jan 2006 15:04:05 -0700` in the report's time zone; Go's zero time when absent.
pub(crate) fn rfc1123z(t: Option<Timestamp>, now: &Zoned) -> String {
    match t {
        Some(t) => t
            .to_zoned(now.time_zone().clone())
            .strftime("%a, %d %b %Y %H:%M:%S %z")
            .to_string(),
        None => "Mon, 01 Jan 0001 00:00:00 +0000".into(),
    }
}

/// The age of `t` as upstream prints it (`5m`, `3h2m`, `<unknown>`, `<invalid>`).
pub(crate) fn since(t: Option<Timestamp>, now: &Zoned) -> String {
    match t {
        None => "<unknown>".into(),
        Some(t) => {
            let nanos = now.timestamp().as_nanosecond() - t.as_nanosecond();
            human_duration(nanos)
        }
    }
}

/// apimachinery's `duration.HumanDuration` of a nanosecond span.
pub(crate) fn human_duration(nanos: i128) -> String {
    let seconds = nanos / 1_000_000_000;
    if seconds < -1 {
        return "<invalid>".into();
    } else if seconds < 0 {
        return "0s".into();
    } else if seconds < 60 * 2 {
        return format!("{seconds}s");
    }
    let minutes = seconds / 60;
    if minutes < 10 {
        let s = seconds % 60;
        return if s == 0 {
            format!("{minutes}m")
        } else {
            format!("{minutes}m{s}s")
        };
    } else if minutes < 60 * 3 {
        return format!("{minutes}m");
    }
    let hours = seconds / 3600;
    if hours < 8 {
        let m = minutes % 60;
        return if m == 0 {
            format!("{hours}h")
        } else {
            format!("{hours}h{m}m")
        };
    } else if hours < 48 {
        return format!("{hours}h");
    } else if hours < 24 * 8 {
        let h = hours % 24;
        return if h == 0 {
            format!("{}d", hours / 24)
        } else {
            format!("{}d{h}h", hours / 24)
        };
    } else if hours < 24 * 365 * 2 {
        return format!("{}d", hours / 24);
    } else if hours < 24 * 365 * 8 {
        let dy = (hours / 24) % 365;
        return if dy == 0 {
            format!("{}y", hours / 24 / 365)
        } else {
            format!("{}y{dy}d", hours / 24 / 365)
        };
    }
    format!("{}y", hours / 24 / 365)
}

/// `Labels:\tk=v` with one pair per line, or `<none>`.
pub(crate) fn labels_multiline(w: &mut PrefixWriter, title: &str, pairs: &[(&str, &str)]) {
    labels_multiline_indent(w, "", title, pairs);
}

/// Like [`labels_multiline`] with an indentation string before the title and continuation lines.
pub(crate) fn labels_multiline_indent(w: &mut PrefixWriter, indent: &str, title: &str, pairs: &[(&str, &str)]) {
    w.write(0, &format!("{indent}{title}:\t"));
    if pairs.is_empty() {
        w.line("<none>");
        return;
    }
    for (n, (k, v)) in pairs.iter().enumerate() {
        if n != 0 {
            w.write(0, &format!("{indent}\t"));
        }
        w.write(0, &format!("{k}={v}\n"));
    }
}

/// `Annotations:\tk: v`, long or multi-line values folded below the key, or `<none>`.
pub(crate) fn annotations_multiline(w: &mut PrefixWriter, title: &str, pairs: &[(&str, &str)]) {
    w.write(0, &format!("{title}:\t"));
    let keys: Vec<&(&str, &str)> = pairs.iter().filter(|(k, _)| !SKIP_ANNOTATIONS.contains(k)).collect();
    if keys.is_empty() {
        w.line("<none>");
        return;
    }
    for (n, (k, v)) in keys.into_iter().enumerate() {
        if n != 0 {
            w.write(0, "\t");
        }
        let value = v.strip_suffix('\n').unwrap_or(v);
        if value.len() + k.len() + 2 > MAX_ANNOTATION_LEN || value.contains('\n') {
            w.write(0, &format!("{k}:\n"));
            for part in value.split('\n') {
                w.write(0, &format!("\t  {}\n", shorten(part, MAX_ANNOTATION_LEN - 2)));
            }
        } else {
            w.write(0, &format!("{k}: {value}\n"));
        }
    }
}

/// Cuts `s` to `max` bytes and marks the cut, as upstream does (on a char boundary here).
fn shorten(s: &str, max: usize) -> String {
    if s.len() > max {
        let mut end = max;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        format!("{}...", &s[..end])
    } else {
        s.to_string()
    }
}

/// `labels.FormatLabels`: `k=v,k2=v2` sorted, or `<none>`.
pub(crate) fn format_labels(pairs: &[(&str, &str)]) -> String {
    if pairs.is_empty() {
        return "<none>".into();
    }
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// The string form of a `LabelSelector` as a `labels.Selector` ("" when it selects everything).
pub(crate) fn selector_string(sel: Option<&Value>) -> String {
    let Some(sel) = sel.filter(|v| !v.is_null()) else {
        return String::new();
    };
    let mut reqs: Vec<(String, String)> = Vec::new();
    for (k, v) in str_map(sel, "/matchLabels") {
        reqs.push((k.to_string(), format!("{k}={v}")));
    }
    for e in arr(sel, "/matchExpressions") {
        let key = s(e, "/key");
        let mut values: Vec<&str> = arr(e, "/values").iter().filter_map(Value::as_str).collect();
        values.sort();
        values.dedup();
        let text = match s(e, "/operator") {
            "In" => format!("{key} in ({})", values.join(",")),
            "NotIn" => format!("{key} notin ({})", values.join(",")),
            "Exists" => key.to_string(),
            "DoesNotExist" => format!("!{key}"),
            op => format!("{key} {op} ({})", values.join(",")),
        };
        reqs.push((key.to_string(), text));
    }
    reqs.sort_by(|a, b| a.0.cmp(&b.0));
    reqs.into_iter().map(|(_, t)| t).collect::<Vec<_>>().join(",")
}

/// `metav1.FormatLabelSelector`: the selector string, or `<none>` when empty.
pub(crate) fn format_label_selector(sel: Option<&Value>) -> String {
    let s = selector_string(sel);
    if s.is_empty() { "<none>".into() } else { s }
}

/// `Tolerations:` lines (`key=value:Effect op=Exists for 300s`), sorted by key.
pub(crate) fn tolerations_multiline(w: &mut PrefixWriter, title: &str, tolerations: &[Value]) {
    w.write(0, &format!("{title}:\t"));
    if tolerations.is_empty() {
        w.line("<none>");
        return;
    }
    let mut sorted: Vec<&Value> = tolerations.iter().collect();
    sorted.sort_by(|a, b| s(a, "/key").cmp(s(b, "/key")));
    for (n, t) in sorted.into_iter().enumerate() {
        if n != 0 {
            w.write(0, "\t");
        }
        let (key, value, effect) = (s(t, "/key"), s(t, "/value"), s(t, "/effect"));
        let mut line = key.to_string();
        if !value.is_empty() {
            line.push_str(&format!("={value}"));
        }
        if !effect.is_empty() {
            line.push_str(&format!(":{effect}"));
        }
        if s(t, "/operator") == "Exists" && value.is_empty() {
            if !key.is_empty() || !effect.is_empty() {
                line.push_str(" op=Exists");
            } else {
                line.push_str("op=Exists");
            }
        }
        if let Some(secs) = opt_i(t, "/tolerationSeconds") {
            line.push_str(&format!(" for {secs}s"));
        }
        line.push('\n');
        w.write(0, &line);
    }
}

/// `Taints:` lines (`key=value:Effect`), sorted by effect then key.
pub(crate) fn taints_multiline(w: &mut PrefixWriter, title: &str, taints: &[Value]) {
    w.write(0, &format!("{title}:\t"));
    if taints.is_empty() {
        w.line("<none>");
        return;
    }
    let mut sorted: Vec<&Value> = taints.iter().collect();
    sorted.sort_by_key(|t| format!("{},{}", s(t, "/effect"), s(t, "/key")));
    for (n, t) in sorted.into_iter().enumerate() {
        if n != 0 {
            w.write(0, "\t");
        }
        let (key, value, effect) = (s(t, "/key"), s(t, "/value"), s(t, "/effect"));
        let text = if value.is_empty() {
            format!("{key}:{effect}")
        } else {
            format!("{key}={value}:{effect}")
        };
        w.write(0, &format!("{text}\n"));
    }
}

/// `Kind/name` of the controlling owner reference, if any.
pub(crate) fn controller_of(obj: &Value) -> Option<String> {
    arr(obj, "/metadata/ownerReferences")
        .iter()
        .find(|r| b(r, "/controller"))
        .map(|r| format!("{}/{}", s(r, "/kind"), s(r, "/name")))
}

/// The UID of the controlling owner reference, if any.
pub(crate) fn controller_uid(obj: &Value) -> Option<&str> {
    arr(obj, "/metadata/ownerReferences")
        .iter()
        .find(|r| b(r, "/controller"))
        .map(|r| s(r, "/uid"))
}

/// Go's `%v` of a bool pointer rendered as `True`/`False`/`<unset>`.
pub(crate) fn bool_ptr(v: Option<&Value>) -> &'static str {
    match v.and_then(Value::as_bool) {
        Some(true) => "True",
        Some(false) => "False",
        None => "<unset>",
    }
}

/// An int-or-string field as text (`25%`, `1`); `<nil>` when absent.
pub(crate) fn int_or_string(v: Option<&Value>) -> String {
    match v {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => "<nil>".into(),
    }
}

/// `s`, or `<none>` when empty.
pub(crate) fn or_none(s: &str) -> &str {
    if s.is_empty() { "<none>" } else { s }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        let sec = 1_000_000_000i128;
        assert_eq!(human_duration(-5 * sec), "<invalid>");
        assert_eq!(human_duration(-sec), "0s");
        assert_eq!(human_duration(119 * sec), "119s");
        assert_eq!(human_duration(125 * sec), "2m5s");
        assert_eq!(human_duration(600 * sec), "10m");
        assert_eq!(human_duration(3 * 3600 * sec + 60 * sec), "3h1m");
        assert_eq!(human_duration(30 * 3600 * sec), "30h");
        assert_eq!(human_duration(50 * 3600 * sec), "2d2h");
        assert_eq!(human_duration(400 * 86400 * sec), "400d");
        assert_eq!(human_duration(800 * 86400 * sec), "2y70d");
    }

    #[test]
    fn selectors() {
        let sel = serde_json::json!({
            "matchLabels": {"app": "web"},
            "matchExpressions": [{"key": "tier", "operator": "In", "values": ["b", "a"]},
                                 {"key": "gone", "operator": "DoesNotExist"}]
        });
        assert_eq!(selector_string(Some(&sel)), "app=web,!gone,tier in (a,b)");
        assert_eq!(format_label_selector(None), "<none>");
    }
}
