//! Shared helpers for the table tests: a fixed `now`, timestamps relative to it, registry
//! lookups and cell extraction.

use jiff::{SignedDuration, Timestamp};
use serde_json::Value;

use crate::registry::{self, ResourceDef};

/// The fixed "now" every test prints against.
pub(crate) fn now() -> Timestamp {
    "2025-06-01T12:00:00Z".parse().expect("valid timestamp")
}

/// The RFC 3339 text of `now - seconds`.
pub(crate) fn ago(seconds: i64) -> String {
    let t = now() - SignedDuration::from_secs(seconds);
    t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// A served resource by group, version and plural.
pub(crate) fn def(group: &str, version: &str, plural: &str) -> &'static ResourceDef {
    registry::find(group, version, plural).unwrap_or_else(|| panic!("{group}/{version} {plural} is not served"))
}

/// A core/v1 resource.
pub(crate) fn core(plural: &str) -> &'static ResourceDef {
    def("", "v1", plural)
}

/// The cells of `object`'s row, asserting there is one per column.
pub(crate) fn cells(def: &ResourceDef, object: &Value) -> Vec<Value> {
    let cells = super::row(def, object, now());
    assert_eq!(cells.len(), super::column_definitions(def).len(), "{} cells", def.kind);
    cells
}

/// The column names and priorities of a resource.
pub(crate) fn columns(def: &ResourceDef) -> Vec<(String, i64)> {
    super::column_definitions(def)
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap_or("").to_string(),
                c["priority"].as_i64().unwrap_or(-1),
            )
        })
        .collect()
}

/// Expected columns: names before `|` have priority 0, after it priority 1.
pub(crate) fn expect_columns(def: &ResourceDef, spec: &str) {
    let (normal, wide) = spec.split_once('|').unwrap_or((spec, ""));
    let mut want = Vec::new();
    for (list, priority) in [(normal, 0), (wide, 1)] {
        for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            want.push((name.to_string(), priority));
        }
    }
    assert_eq!(columns(def), want, "{} columns", def.kind);
}

/// Cells as JSON for a compact comparison.
pub(crate) fn row_json(def: &ResourceDef, object: &Value) -> Value {
    Value::Array(cells(def, object))
}
