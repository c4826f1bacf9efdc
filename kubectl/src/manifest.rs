//! Objects from `-f`: files, directories (`-R` to recurse), `-` for stdin, http(s) URLs;
//! multi-document YAML and JSON, with `List` objects flattened into their items, in order.

use std::io::Read;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::error::Error;

/// One object read from a manifest, with where it came from (for messages).
#[derive(Debug, Clone)]
pub struct Manifest {
    pub object: Value,
    pub source: String,
}

/// Reads every object of every `-f` argument.
pub fn read_all(filenames: &[String], recursive: bool) -> Result<Vec<Manifest>, Error> {
    if filenames.is_empty() {
        return Err(Error::Usage("must specify one of -f and -k".into()));
    }
    let mut out = Vec::new();
    for name in filenames {
        if name == "-" {
            let mut text = String::new();
            std::io::stdin().read_to_string(&mut text)?;
            out.extend(parse(&text, "STDIN")?);
            continue;
        }
        if name.starts_with("http://") || name.starts_with("https://") {
            out.extend(parse(&crate::fetch::get(name)?, name)?);
            continue;
        }
        let path = Path::new(name);
        if !path.exists() {
            return Err(Error::Message(format!("the path \"{name}\" does not exist")));
        }
        if path.is_dir() {
            for file in manifest_files(path, recursive)? {
                let text = std::fs::read_to_string(&file)?;
                out.extend(parse(&text, &file.display().to_string())?);
            }
        } else {
            let text = std::fs::read_to_string(path)?;
            out.extend(parse(&text, name)?);
        }
    }
    Ok(out)
}

/// The `.json`, `.yaml` and `.yml` files of a directory in name order (and its
/// subdirectories' with `recursive`).
fn manifest_files(dir: &Path, recursive: bool) -> Result<Vec<PathBuf>, Error> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    let mut out = Vec::new();
    for entry in entries {
        if entry.is_dir() {
            if recursive {
                out.extend(manifest_files(&entry, true)?);
            }
        } else if entry
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| matches!(e, "json" | "yaml" | "yml"))
        {
            out.push(entry);
        }
    }
    Ok(out)
}

/// Parses one file's text: JSON (one object) or YAML documents separated by `---`.
pub fn parse(text: &str, source: &str) -> Result<Vec<Manifest>, Error> {
    let documents: Vec<Value> = if text.trim_start().starts_with('{') {
        vec![serde_json::from_str(text).map_err(|e| Error::Message(format!("error parsing {source}: {e}")))?]
    } else {
        serde_saphyr::from_multiple::<Value>(text)
            .map_err(|e| Error::Message(format!("error parsing {source}: {}", first_line(&e.to_string()))))?
    };
    let mut out = Vec::new();
    for document in documents {
        flatten(document, source, &mut out)?;
    }
    Ok(out)
}

fn flatten(document: Value, source: &str, out: &mut Vec<Manifest>) -> Result<(), Error> {
    match document {
        Value::Null => Ok(()),
        Value::Object(ref map) if map.is_empty() => Ok(()),
        Value::Object(map) => {
            let kind = map.get("kind").and_then(Value::as_str).unwrap_or_default();
            if kind.ends_with("List") && map.get("items").is_some_and(Value::is_array) {
                for item in map["items"].as_array().cloned().unwrap_or_default() {
                    flatten(item, source, out)?;
                }
                return Ok(());
            }
            if kind.is_empty() {
                return Err(Error::Message(format!(
                    "error validating data from {source}: Object 'Kind' is missing in '{}'",
                    serde_json::to_string(&map).unwrap_or_default()
                )));
            }
            if !map.get("apiVersion").is_some_and(Value::is_string) {
                return Err(Error::Message(format!(
                    "error validating data from {source}: apiVersion not set"
                )));
            }
            out.push(Manifest {
                object: Value::Object(map),
                source: source.to_string(),
            });
            Ok(())
        }
        other => Err(Error::Message(format!(
            "error parsing {source}: expected an object, got {}",
            match other {
                Value::Array(_) => "a list",
                Value::String(_) => "a string",
                Value::Number(_) => "a number",
                _ => "a scalar",
            }
        ))),
    }
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multi_document_yaml_and_lists_flatten_in_order() {
        let text = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\n---\napiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Secret\n  metadata: {name: b}\n- apiVersion: v1\n  kind: Service\n  metadata: {name: c}\n";
        let objects = parse(text, "x.yaml").unwrap();
        let names: Vec<_> = objects
            .iter()
            .map(|m| m.object["metadata"]["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["a", "b", "c"]);
    }

    #[test]
    fn bad_input_is_one_clear_error() {
        assert!(
            parse("metadata: {name: a}\n", "x.yaml")
                .unwrap_err()
                .to_string()
                .contains("Object 'Kind' is missing")
        );
        assert!(
            parse("a: [\n", "x.yaml")
                .unwrap_err()
                .to_string()
                .starts_with("error parsing x.yaml")
        );
        assert!(
            parse("{\"kind\": ", "x.json")
                .unwrap_err()
                .to_string()
                .starts_with("error parsing x.json")
        );
        let missing = read_all(&["/nonexistent/x.yaml".into()], false).unwrap_err();
        assert_eq!(missing.to_string(), "the path \"/nonexistent/x.yaml\" does not exist");
    }
}
