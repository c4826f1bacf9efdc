//! Lenient reads from stored JSON: a missing, `null` or wrongly typed field reads as the zero
//! value Go's printers would see for an unset field (`""`, `0`, `false`, an empty list).

use jiff::Timestamp;
use serde_json::{Map, Value};

static NULL: Value = Value::Null;
static EMPTY_MAP: std::sync::LazyLock<Map<String, Value>> = std::sync::LazyLock::new(Map::new);

/// Path-based reads on a JSON value.
pub(crate) trait Read {
    /// The value at `path`, or `null`.
    fn at(&self, path: &[&str]) -> &Value;

    /// Whether the field is present and not `null` (a non-nil pointer in Go).
    fn has(&self, path: &[&str]) -> bool {
        !self.at(path).is_null()
    }

    /// A string field, `""` when absent or not a string.
    fn str_at(&self, path: &[&str]) -> &str {
        self.at(path).as_str().unwrap_or("")
    }

    /// A string field that must be set (`Some` only for a string).
    fn opt_str(&self, path: &[&str]) -> Option<&str> {
        self.at(path).as_str()
    }

    /// An integer field, `None` when absent or not an integer.
    fn opt_int(&self, path: &[&str]) -> Option<i64> {
        as_int(self.at(path))
    }

    /// An integer field, `0` when absent.
    fn int_at(&self, path: &[&str]) -> i64 {
        self.opt_int(path).unwrap_or(0)
    }

    /// A boolean field, `false` when absent.
    fn bool_at(&self, path: &[&str]) -> bool {
        self.at(path).as_bool().unwrap_or(false)
    }

    /// A list field, empty when absent or not a list.
    fn list_at(&self, path: &[&str]) -> &[Value] {
        self.at(path).as_array().map(Vec::as_slice).unwrap_or(&[])
    }

    /// A map field, empty when absent or not an object.
    fn map_at(&self, path: &[&str]) -> &Map<String, Value> {
        self.at(path).as_object().unwrap_or(&EMPTY_MAP)
    }

    /// A timestamp field (RFC 3339), `None` when absent or unparsable.
    fn time_at(&self, path: &[&str]) -> Option<Timestamp> {
        self.opt_str(path).and_then(parse_time)
    }

    /// The object's `metadata.name`.
    fn name(&self) -> &str {
        self.str_at(&["metadata", "name"])
    }
}

impl Read for Value {
    fn at(&self, path: &[&str]) -> &Value {
        let mut v = self;
        for key in path {
            match v.get(key) {
                Some(next) => v = next,
                None => return &NULL,
            }
        }
        v
    }
}

/// An integer from a JSON number (integral floats included, as Go's decoder accepts `1.0`).
pub(crate) fn as_int(v: &Value) -> Option<i64> {
    if let Some(i) = v.as_i64() {
        return Some(i);
    }
    if let Some(u) = v.as_u64() {
        return Some(i64::try_from(u).unwrap_or(i64::MAX));
    }
    match v.as_f64() {
        Some(f) if f.fract() == 0.0 && f.abs() < 9.0e18 => Some(f as i64),
        _ => None,
    }
}

/// Parses an RFC 3339 timestamp as the API writes it (`2024-05-01T10:00:00Z`, optionally with a
/// fraction or an offset).
pub(crate) fn parse_time(s: &str) -> Option<Timestamp> {
    s.trim().parse::<Timestamp>().ok()
}

/// A string map (labels, a selector map) as sorted pairs; non-string values read as `""`.
pub(crate) fn string_pairs(map: &Map<String, Value>) -> Vec<(&str, &str)> {
    let mut pairs: Vec<(&str, &str)> = map
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str().unwrap_or("")))
        .collect();
    pairs.sort_unstable();
    pairs
}

/// The strings of a list field (non-strings skipped).
pub(crate) fn strings(list: &[Value]) -> Vec<&str> {
    list.iter().filter_map(Value::as_str).collect()
}
