//! `kubectl explain --output=plaintext-openapiv2`: the resource's schema from the server's
//! Swagger 2.0 document (`/openapi/v2`), printed as upstream's older explain printer does
//! (`kubectl/pkg/explain`): schemas classified as kube-openapi's proto models classify them
//! (kind, map, array, primitive, arbitrary, reference), the field path followed through them,
//! `KIND`/`VERSION`, `RESOURCE` or `FIELD`, the descriptions collected on the way, and the
//! fields (or, with `--recursive`, the tree of field names), wrapped at 80 columns by its own
//! line-filling wrapper.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::error::Error;

/// Width the printer wraps to.
const WRAP: usize = 80;
const FIELD_INDENT: usize = 3;
const DESCRIPTION_INDENT: usize = 5;
const FIELD_DESCRIPTION_INDENT: usize = 2;
const RECURSIVE_INDENT: usize = 3;

/// What a schema is, as kube-openapi's `proto.Definitions.ParseSchema` decides.
enum Shape<'a> {
    /// An object with properties.
    Kind,
    Map(Sub<'a>),
    Array(Sub<'a>),
    Primitive(&'a str),
    Arbitrary,
    /// A `$ref` to a definition.
    Reference(&'a str, &'a Value),
}

/// A map's or array's element: a schema, or arbitrary data sharing its parent's description.
#[derive(Clone, Copy)]
enum Sub<'a> {
    Schema(&'a Value),
    Arbitrary,
}

/// Explains `kind` of `group/version` (`field_path` below it) from the v2 `document`.
pub fn explain(
    document: &Value,
    group: &str,
    version: &str,
    kind: &str,
    field_path: &[String],
    recursive: bool,
    out: &mut String,
) -> Result<(), Error> {
    let gvk = serde_json::json!({"group": group, "kind": kind, "version": version});
    let definitions = document["definitions"].as_object();
    let root = definitions.into_iter().flatten().find_map(|(_, schema)| {
        schema["x-kubernetes-group-version-kind"]
            .as_array()
            .is_some_and(|list| list.contains(&gvk))
            .then_some(schema)
    });
    let api_version = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    let Some(root) = root else {
        return Err(Error::Message(format!(
            "couldn't find resource for \"{api_version}, Kind={kind}\""
        )));
    };
    let model = Model { document };
    let (found, collected) = model.lookup(root, field_path)?;
    let printer = Printer {
        model: &model,
        name: field_path.last().map(String::as_str).unwrap_or_default(),
        kind,
        api_version: &api_version,
        recursive,
    };
    printer.print(found, collected, out);
    Ok(())
}

struct Model<'a> {
    document: &'a Value,
}

impl<'a> Model<'a> {
    fn shape(&self, schema: &'a Value) -> Shape<'a> {
        if let Some(reference) = schema["$ref"].as_str() {
            let name = reference.strip_prefix("#/definitions/").unwrap_or(reference);
            if let Some(target) = self.document["definitions"].get(name) {
                return Shape::Reference(name, target);
            }
            return Shape::Arbitrary;
        }
        let has_properties = schema.get("properties").is_some_and(Value::is_object);
        let ty = match &schema["type"] {
            Value::String(t) => Some(t.as_str()),
            Value::Array(list) if list.len() == 1 => list[0].as_str(),
            _ => None,
        };
        match ty {
            None if has_properties => Shape::Kind,
            None => Shape::Arbitrary,
            Some("object") if has_properties => Shape::Kind,
            Some("object") => Shape::Map(match schema.get("additionalProperties") {
                Some(sub @ Value::Object(_)) => Sub::Schema(sub),
                _ => Sub::Arbitrary,
            }),
            Some("array") => Shape::Array(match schema.get("items") {
                Some(sub @ Value::Object(_)) => Sub::Schema(sub),
                _ => Sub::Arbitrary,
            }),
            Some(primitive) => Shape::Primitive(primitive),
        }
    }

    /// `LookupSchemaForField`: follows `path` through kinds (passing through references,
    /// arrays and maps); a primitive or arbitrary schema ends the walk wherever it is. Also
    /// returns what the printer collects on the way down to the found schema.
    fn lookup(&self, schema: &'a Value, path: &[String]) -> Result<(Found<'a>, Vec<&'a str>), Error> {
        let mut current = Found::Schema(schema);
        let mut rest = path;
        loop {
            let Found::Schema(schema) = current else {
                return Ok((current, Vec::new()));
            };
            if rest.is_empty() {
                return Ok((current, Vec::new()));
            }
            current = match self.shape(schema) {
                Shape::Kind => {
                    let Some(field) = schema["properties"].get(&rest[0]) else {
                        return Err(Error::Message(format!("field \"{}\" does not exist", rest[0])));
                    };
                    rest = &rest[1..];
                    Found::Schema(field)
                }
                Shape::Reference(_, target) => Found::Schema(target),
                Shape::Map(sub) | Shape::Array(sub) => match sub {
                    Sub::Schema(sub) => Found::Schema(sub),
                    Sub::Arbitrary => Found::Arbitrary(schema),
                },
                Shape::Primitive(_) | Shape::Arbitrary => return Ok((current, Vec::new())),
            };
        }
    }

    /// `GetTypeName`.
    fn type_name(&self, schema: &'a Value) -> String {
        match self.shape(schema) {
            Shape::Kind => "Object".into(),
            Shape::Map(sub) => format!("map[string]{}", self.sub_type_name(sub)),
            Shape::Array(sub) => format!("[]{}", self.sub_type_name(sub)),
            Shape::Primitive(ty) => ty.to_string(),
            Shape::Arbitrary => String::new(),
            Shape::Reference(_, target) => self.type_name(target),
        }
    }

    fn sub_type_name(&self, sub: Sub<'a>) -> String {
        match sub {
            Sub::Schema(schema) => self.type_name(schema),
            Sub::Arbitrary => String::new(),
        }
    }
}

/// The schema the field path led to: a schema, or the arbitrary element of a map or array
/// without an element schema (described by that map or array).
#[derive(Clone, Copy)]
enum Found<'a> {
    Schema(&'a Value),
    Arbitrary(&'a Value),
}

struct Printer<'a, 'm> {
    model: &'m Model<'a>,
    name: &'m str,
    kind: &'m str,
    api_version: &'m str,
    recursive: bool,
}

fn description(schema: &Value) -> &str {
    schema["description"].as_str().unwrap_or_default()
}

impl<'a> Printer<'a, '_> {
    /// `PrintModel`: descends through references, arrays and maps collecting their
    /// descriptions (and the outermost type), then prints the kind, primitive or arbitrary
    /// schema it reaches.
    fn print(&self, found: Found<'a>, mut descriptions: Vec<&'a str>, out: &mut String) {
        let mut ty: Option<String> = None;
        let mut current = found;
        loop {
            let schema = match current {
                Found::Arbitrary(parent) => {
                    self.header(out);
                    self.descriptions(&descriptions, description(parent), out);
                    return;
                }
                Found::Schema(schema) => schema,
            };
            match self.model.shape(schema) {
                Shape::Reference(_, target) => {
                    descriptions.push(description(schema));
                    current = Found::Schema(target);
                }
                Shape::Array(sub) | Shape::Map(sub) => {
                    descriptions.push(description(schema));
                    ty.get_or_insert_with(|| self.model.type_name(schema));
                    current = match sub {
                        Sub::Schema(sub) => Found::Schema(sub),
                        Sub::Arbitrary => Found::Arbitrary(schema),
                    };
                }
                Shape::Kind => {
                    self.header(out);
                    if !self.name.is_empty() {
                        let ty = ty.unwrap_or_else(|| "Object".into());
                        write(out, 0, &format!("RESOURCE: {} <{ty}>\n", self.name));
                    }
                    self.descriptions(&descriptions, description(schema), out);
                    write(out, 0, "\nFIELDS:");
                    if self.recursive {
                        self.recursive_fields(schema, FIELD_INDENT, &mut BTreeSet::new(), out);
                    } else {
                        self.fields(schema, out);
                    }
                    return;
                }
                Shape::Primitive(primitive) => {
                    self.header(out);
                    let ty = ty.unwrap_or_else(|| primitive.to_string());
                    write(out, 0, &format!("FIELD:    {} <{ty}>\n", self.name));
                    self.descriptions(&descriptions, description(schema), out);
                    return;
                }
                Shape::Arbitrary => {
                    self.header(out);
                    self.descriptions(&descriptions, description(schema), out);
                    return;
                }
            }
        }
    }

    fn header(&self, out: &mut String) {
        write(out, 0, &format!("KIND:     {}", self.kind));
        write(out, 0, &format!("VERSION:  {}\n", self.api_version));
    }

    /// `PrintDescription`: every non-empty description, a blank line before all but the
    /// first position's.
    fn descriptions(&self, collected: &[&str], own: &str, out: &mut String) {
        write(out, 0, "DESCRIPTION:");
        let mut empty = true;
        for (index, text) in collected.iter().copied().chain([own]).enumerate() {
            if text.is_empty() {
                continue;
            }
            empty = false;
            if index != 0 {
                write(out, 0, "");
            }
            write_wrapped(out, DESCRIPTION_INDENT, text);
        }
        if empty {
            write_wrapped(out, DESCRIPTION_INDENT, "<empty>");
        }
    }

    /// The regular fields printer: each field's name, type and required mark, then its
    /// description and a blank line.
    fn fields(&self, kind: &'a Value, out: &mut String) {
        let required: Vec<&str> = kind["required"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        for (name, field) in sorted_properties(kind) {
            let mark = if required.contains(&name.as_str()) {
                " -required-"
            } else {
                ""
            };
            write(
                out,
                FIELD_INDENT,
                &format!("{name}\t<{}>{mark}", self.model.type_name(field)),
            );
            write_wrapped(out, FIELD_INDENT + FIELD_DESCRIPTION_INDENT, description(field));
            write(out, FIELD_INDENT, "");
        }
    }

    /// The recursive fields printer: field names and types as a tree, each reference entered
    /// once per branch.
    fn recursive_fields(&self, schema: &'a Value, level: usize, visiting: &mut BTreeSet<&'a str>, out: &mut String) {
        match self.model.shape(schema) {
            Shape::Kind => {
                for (name, field) in sorted_properties(schema) {
                    write(out, level, &format!("{name}\t<{}>", self.model.type_name(field)));
                    self.recursive_fields(field, level + RECURSIVE_INDENT, visiting, out);
                }
            }
            Shape::Array(Sub::Schema(sub)) | Shape::Map(Sub::Schema(sub)) => {
                self.recursive_fields(sub, level, visiting, out);
            }
            Shape::Reference(name, target) if visiting.insert(name) => {
                self.recursive_fields(target, level, visiting, out);
                visiting.remove(name);
            }
            _ => {}
        }
    }
}

fn sorted_properties(schema: &Value) -> Vec<(&String, &Value)> {
    let mut fields: Vec<_> = schema["properties"].as_object().into_iter().flatten().collect();
    fields.sort_by(|a, b| a.0.cmp(b.0));
    fields
}

/// `Formatter.Write`: one line with the indentation; an empty text is a bare newline.
fn write(out: &mut String, indent: usize, text: &str) {
    if !text.is_empty() {
        out.push_str(&" ".repeat(indent));
        out.push_str(text);
    }
    out.push('\n');
}

/// `Formatter.WriteWrapped`: the text wrapped to the width left after the indentation.
fn write_wrapped(out: &mut String, indent: usize, text: &str) {
    for line in wrap_string(text, WRAP.saturating_sub(indent)) {
        write(out, indent, &line);
    }
}

/// Whether a source line starts a new output line rather than continuing the previous one.
fn starts_new_line(last_word: &str, line: &str) -> bool {
    if last_word.ends_with(':') || line.starts_with("    ") {
        return true;
    }
    let line = line.trim();
    if line.is_empty() {
        return true;
    }
    // Lines that look like list items: `1.`, `1`, `-` or `*` followed by whitespace.
    let digits = line.bytes().take_while(u8::is_ascii_digit).count();
    let rest = if digits > 0 {
        line[digits..].strip_prefix('.').unwrap_or(&line[digits..])
    } else {
        line.strip_prefix(['-', '*']).unwrap_or(line)
    };
    rest.len() < line.len() && rest.starts_with([' ', '\t', '\n', '\x0c', '\r'])
}

/// `wrapString`: fills lines with words up to `width` bytes (a longer word gets a line of its
/// own), keeping indented code lines as they are, blank lines after the first output line,
/// and line breaks after a `:` or before a list item.
fn wrap_string(text: &str, width: usize) -> Vec<String> {
    let mut wrapped: Vec<String> = Vec::new();
    let mut line: Vec<&str> = Vec::new();
    let mut line_len = 0usize;
    let mut last_word = "";
    let flush = |wrapped: &mut Vec<String>, line: &mut Vec<&str>, line_len: &mut usize, last_word: &mut &str| {
        if !line.is_empty() {
            *last_word = "";
            wrapped.push(line.join(" "));
            line.clear();
            *line_len = 0;
        }
    };
    for source in text.split('\n') {
        if source.starts_with("    ") {
            flush(&mut wrapped, &mut line, &mut line_len, &mut last_word);
            wrapped.push(source.to_string());
            continue;
        }
        if !wrapped.is_empty() && source.trim().is_empty() {
            flush(&mut wrapped, &mut line, &mut line_len, &mut last_word);
            wrapped.push(String::new());
            continue;
        }
        if starts_new_line(last_word, source) {
            flush(&mut wrapped, &mut line, &mut line_len, &mut last_word);
        }
        for word in source.split_whitespace() {
            last_word = word;
            let added = if line.is_empty() {
                word.len()
            } else {
                line_len + 1 + word.len()
            };
            if added > width && !line.is_empty() {
                // As upstream's, the flush forgets the word just seen.
                flush(&mut wrapped, &mut line, &mut line_len, &mut last_word);
                line_len = word.len();
            } else {
                line_len = added;
            }
            line.push(word);
        }
    }
    flush(&mut wrapped, &mut line, &mut line_len, &mut last_word);
    wrapped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wraps_like_upstreams_formatter() {
        assert_eq!(wrap_string("aaa bbb ccc ddd", 7), ["aaa bbb", "ccc ddd"]);
        assert_eq!(wrap_string("abcdefghij kl", 5), ["abcdefghij", "kl"]);
        assert_eq!(wrap_string("one\ntwo", 20), ["one two"]);
        assert_eq!(wrap_string("Values:\n- a\n- b", 40), ["Values:", "- a", "- b"]);
        assert_eq!(
            wrap_string("a\n\nb\n    code  kept", 40),
            ["a", "b", "    code  kept"],
            "a blank line is kept only once something was written out"
        );
        assert_eq!(wrap_string("a\nb\n\nc", 1), ["a", "b", "", "c"]);
        assert_eq!(wrap_string("", 40), Vec::<String>::new());
        assert!(starts_new_line("", "1. first"));
        assert!(starts_new_line("", "2 second"));
        assert!(!starts_new_line("", "12345"));
        assert!(!starts_new_line("", "-x"));
    }
}
