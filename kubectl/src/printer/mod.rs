//! Output formats (`-o`): the server's Table (default and `wide`), `yaml`, `json`, `name`,
//! `jsonpath=...` and `custom-columns=...`, each byte-compatible with upstream kubectl.

pub mod gojson;
pub mod table;
pub mod yaml;

use serde_json::{Map, Value};

use crate::error::Error;

/// What `-o` asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutputFormat {
    /// The server's table (no `-o`).
    Table,
    /// The table with priority>0 columns.
    Wide,
    Yaml,
    Json,
    /// `kind.group/name` per object.
    Name,
    /// A JSONPath template (`-o jsonpath=...`, `jsonpath-file=...`).
    JsonPath(String),
    /// `-o jsonpath-as-json=...`: the results as a JSON list.
    JsonPathAsJson(String),
    /// `-o custom-columns=HEADER:PATH,...`.
    CustomColumns(String),
    /// `-o custom-columns-file=FILE`: a header line and a template line.
    CustomColumnsFile(String),
}

impl OutputFormat {
    /// Parses `-o`'s value.
    pub fn parse(text: Option<&str>) -> Result<Self, Error> {
        let Some(text) = text else { return Ok(Self::Table) };
        let (name, arg) = match text.split_once('=') {
            Some((name, arg)) => (name, Some(arg)),
            None => (text, None),
        };
        let read = |path: &str| {
            std::fs::read_to_string(path).map_err(|e| Error::Message(format!("error reading template {path}, {e}")))
        };
        Ok(match (name, arg) {
            ("", None) => Self::Table,
            ("wide", None) => Self::Wide,
            ("yaml", None) => Self::Yaml,
            ("json", None) => Self::Json,
            ("name", None) => Self::Name,
            ("jsonpath", Some(template)) => Self::JsonPath(template.to_string()),
            ("jsonpath-as-json", Some(template)) => Self::JsonPathAsJson(template.to_string()),
            ("jsonpath-file", Some(path)) => Self::JsonPath(read(path)?),
            ("custom-columns", Some(spec)) => Self::CustomColumns(spec.to_string()),
            ("custom-columns-file", Some(path)) => Self::CustomColumnsFile(read(path)?),
            ("jsonpath" | "jsonpath-as-json" | "jsonpath-file" | "custom-columns" | "custom-columns-file", None) => {
                return Err(Error::Usage(format!("{name} format specified but no template given")));
            }
            _ => {
                return Err(Error::Usage(format!(
                    "unable to match a printer suitable for the output format \"{text}\", allowed formats are: custom-columns,custom-columns-file,json,jsonpath,jsonpath-as-json,jsonpath-file,name,wide,yaml"
                )));
            }
        })
    }

    /// Whether the server's Table is what gets printed.
    pub fn wants_table(&self) -> bool {
        matches!(self, Self::Table | Self::Wide)
    }
}

/// `-o jsonpath=...` (or `jsonpath-as-json`) applied to one object or a List.
pub fn jsonpath(template: &str, value: &Value, as_json: bool) -> Result<String, Error> {
    let printer = jsonpath::JsonPathPrinter::new(template)
        .map_err(|e| Error::Message(e.to_string()))?
        .json_output(as_json);
    printer.print(value).map_err(|e| Error::Message(e.to_string()))
}

/// `-o custom-columns=...` (`from_file`: the file form) over objects.
pub fn custom_columns(spec: &str, from_file: bool, objects: &[Value], no_headers: bool) -> Result<String, Error> {
    let columns = if from_file {
        jsonpath::CustomColumns::from_template(spec)
    } else {
        jsonpath::CustomColumns::parse(spec)
    }
    .map_err(|e| Error::Message(e.to_string()))?;
    columns
        .render(objects, no_headers)
        .map_err(|e| Error::Message(e.to_string()))
}

/// `-o json`: four-space indentation, keys sorted, `<`, `>`, `&` escaped as Go's encoder does.
pub fn to_json(value: &Value) -> String {
    let sorted = sorted(value);
    let mut buffer = Vec::new();
    let formatter = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut serializer = serde_json::Serializer::with_formatter(&mut buffer, formatter);
    serde::Serialize::serialize(&sorted, &mut serializer).expect("serializing a JSON value cannot fail");
    let text = String::from_utf8(buffer).expect("serde_json writes UTF-8");
    // These characters only occur inside strings in JSON text, so replacing them is exact.
    text.replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
        .replace('\u{2028}', "\\u2028")
        .replace('\u{2029}', "\\u2029")
        + "\n"
}

/// Compact JSON with sorted keys (Go's `json.Marshal` of a map), for annotations and patches.
pub fn to_compact_json(value: &Value) -> String {
    serde_json::to_string(&sorted(value))
        .expect("serializing a JSON value cannot fail")
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
}

/// A copy of `value` whose maps iterate in key order whatever serde_json's map type is.
fn sorted(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            let mut out = Map::new();
            for key in keys {
                out.insert(key.clone(), sorted(&map[key.as_str()]));
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.iter().map(sorted).collect()),
        other => other.clone(),
    }
}

/// The `List` kubectl prints for several objects in `-o json|yaml`.
pub fn list_of(items: Vec<Value>) -> Value {
    serde_json::json!({"apiVersion": "v1", "items": items, "kind": "List", "metadata": {"resourceVersion": ""}})
}

/// A line as klog's `Warning` writes it: `W1123 08:47:30.238067   31650 file:line] message`.
pub fn klog_warning(location: &str, message: &str) -> String {
    let now = jiff::Zoned::now();
    format!(
        "W{} {:>7} {location}] {message}\n",
        now.strftime("%m%d %H:%M:%S%.6f"),
        std::process::id()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_matches_go_marshal_indent() {
        let value = json!({"b": [1, {}], "a": "<x> & y", "c": {}});
        assert_eq!(
            to_json(&value),
            "{\n    \"a\": \"\\u003cx\\u003e \\u0026 y\",\n    \"b\": [\n        1,\n        {}\n    ],\n    \"c\": {}\n}\n"
        );
        assert_eq!(
            to_compact_json(&json!({"z": 1, "a": {"y": 2, "b": 3}})),
            r#"{"a":{"b":3,"y":2},"z":1}"#
        );
    }

    #[test]
    fn output_flags_parse_and_bad_ones_say_what_is_allowed() {
        assert_eq!(OutputFormat::parse(Some("wide")).unwrap(), OutputFormat::Wide);
        assert_eq!(
            OutputFormat::parse(Some("jsonpath={.a}")).unwrap(),
            OutputFormat::JsonPath("{.a}".into())
        );
        let error = OutputFormat::parse(Some("xml")).unwrap_err().render();
        assert!(error.starts_with("error: unable to match a printer suitable for the output format \"xml\""));
    }
}
