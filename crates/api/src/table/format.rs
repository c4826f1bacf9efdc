//! Cell formatting shared by the printers: ages and durations as upstream's
//! `duration.HumanDuration`, label maps and selectors as `labels.FormatLabels` and
//! `metav1.FormatLabelSelector`, container lists, and "first three + N more" lists.

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1 as metav1;
use serde_json::{Map, Value};

use super::value::{Read, string_pairs};
use crate::selector::LabelSelector;

const NANOS_PER_SECOND: i64 = 1_000_000_000;

/// Go's zero `time.Time` (`0001-01-01T00:00:00Z`), which `IsZero` reports as unset.
fn is_go_zero(t: Timestamp) -> bool {
    t.as_second() == -62_135_596_800 && t.subsec_nanosecond() == 0
}

/// `to - from` in nanoseconds, saturating like Go's `Time.Sub`.
fn sub_nanos(to: Timestamp, from: Timestamp) -> i64 {
    let d = to.as_nanosecond() - from.as_nanosecond();
    i64::try_from(d).unwrap_or(if d < 0 { i64::MIN } else { i64::MAX })
}

/// upstream's `duration.HumanDuration` of a duration in nanoseconds: seconds up to two minutes,
/// then two units while the larger is small and one after; `<invalid>` more than a second in the
/// future.
pub(crate) fn human_duration(nanos: i64) -> String {
    let seconds = nanos / NANOS_PER_SECOND;
    if seconds < -1 {
        return "<invalid>".to_string();
    }
    if seconds < 0 {
        return "0s".to_string();
    }
    if seconds < 60 * 2 {
        return format!("{seconds}s");
    }
    let two = |big: i64, big_unit: &str, small: i64, small_unit: &str| {
        if small == 0 {
            format!("{big}{big_unit}")
        } else {
            format!("{big}{big_unit}{small}{small_unit}")
        }
    };
    let minutes = seconds / 60;
    if minutes < 10 {
        return two(minutes, "m", seconds % 60, "s");
    }
    if minutes < 60 * 3 {
        return format!("{minutes}m");
    }
    let hours = minutes / 60;
    if hours < 8 {
        return two(hours, "h", minutes % 60, "m");
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    if hours < 24 * 8 {
        return two(hours / 24, "d", hours % 24, "h");
    }
    if hours < 24 * 365 * 2 {
        return format!("{}d", hours / 24);
    }
    if hours < 24 * 365 * 8 {
        return two(hours / 24 / 365, "y", (hours / 24) % 365, "d");
    }
    format!("{}y", hours / 24 / 365)
}

/// upstream's `translateTimestampSince`: how long ago `t` was, `<unknown>` when unset.
pub(crate) fn since(t: Option<Timestamp>, now: Timestamp) -> String {
    match t {
        Some(t) if !is_go_zero(t) => human_duration(sub_nanos(now, t)),
        _ => "<unknown>".to_string(),
    }
}

/// The `AGE` cell: how long ago the object was created.
pub(crate) fn age(object: &Value, now: Timestamp) -> Value {
    Value::from(since(object.time_at(&["metadata", "creationTimestamp"]), now))
}

/// The human duration between two timestamps (`to - from`).
pub(crate) fn between(from: Timestamp, to: Timestamp) -> String {
    human_duration(sub_nanos(to, from))
}

/// A timestamp as Go's `t.UTC().Format(time.RFC3339)`; unset is Go's zero time.
pub(crate) fn rfc3339(t: Option<Timestamp>) -> String {
    match t {
        Some(t) => t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
        None => "0001-01-01T00:00:00Z".to_string(),
    }
}

/// `labels.FormatLabels`: `k=v` pairs in key order, `<none>` for an empty map.
pub(crate) fn format_labels(map: &Map<String, Value>) -> String {
    let s = string_pairs(map)
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",");
    if s.is_empty() { "<none>".to_string() } else { s }
}

/// `metav1.LabelSelectorAsSelector(sel).String()`: `Err` when the selector is invalid; an unset
/// selector (nothing) and an empty one (everything) both print as `""`.
pub(crate) fn selector_string(sel: &Value) -> Result<String, ()> {
    if sel.is_null() {
        return Ok(String::new());
    }
    let parsed: metav1::LabelSelector = serde_json::from_value(sel.clone()).map_err(|_| ())?;
    LabelSelector::from_label_selector(&parsed)
        .map(|s| s.to_string())
        .map_err(|_| ())
}

/// `metav1.FormatLabelSelector`: `<none>` for an empty or unset selector, `<error>` for an
/// invalid one.
pub(crate) fn format_label_selector(sel: &Value) -> String {
    match selector_string(sel) {
        Ok(s) if s.is_empty() => "<none>".to_string(),
        Ok(s) => s,
        Err(()) => "<error>".to_string(),
    }
}

/// `layoutContainerCells`: the names and the images of a pod spec's containers, comma-joined.
pub(crate) fn containers(pod_spec: &Value) -> (Value, Value) {
    let list = pod_spec.list_at(&["containers"]);
    let names: Vec<&str> = list.iter().map(|c| c.str_at(&["name"])).collect();
    let images: Vec<&str> = list.iter().map(|c| c.str_at(&["image"])).collect();
    (Value::from(names.join(",")), Value::from(images.join(",")))
}

/// `listWithMoreString`: the first `max` items, `+ N more...` for the rest, `empty` when none.
pub(crate) fn first_of(items: &[String], max: usize, empty: &str) -> String {
    if items.is_empty() {
        return empty.to_string();
    }
    if items.len() > max {
        return format!("{} + {} more...", items[..max].join(","), items.len() - max);
    }
    items.join(",")
}

/// Go's `net.JoinHostPort`: brackets around a host with a colon.
pub(crate) fn join_host_port(host: &str, port: i64) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// `<none>` for an empty string.
pub(crate) fn or_none(s: &str) -> String {
    if s.is_empty() {
        "<none>".to_string()
    } else {
        s.to_string()
    }
}
