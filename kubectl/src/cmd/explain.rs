//! `kubectl explain TYPE[.field.path]`: the server's OpenAPI v3 schema of a resource, printed as
//! upstream's plaintext template (`explain/v2/templates/plaintext.tmpl`) does: the GVK found
//! through the resource's paths, DESCRIPTION, FIELD and FIELDS sections, `$ref`s followed
//! (cycles cut), type hints like `<[]Container>` and `<map[string]string>`, enums, and
//! descriptions word-wrapped as `go-wordwrap` wraps them.

use std::collections::BTreeSet;

use serde_json::{Map, Value};

use crate::cmd::Context;
use crate::error::Error;
use crate::request;

/// Describe fields and structure of various resources.
#[derive(clap::Args, Debug, Clone)]
pub struct ExplainArgs {
    /// TYPE[.FIELD]...
    pub args: Vec<String>,
    /// Print the fields of fields (Currently only 1 level deep).
    #[arg(long)]
    pub recursive: bool,
    /// Use given api-version (group/version) of the resource.
    #[arg(long)]
    pub api_version: Option<String>,
    /// Format in which to render the schema (plaintext).
    #[arg(long, default_value = "plaintext")]
    pub output: String,
}

/// Runs `kubectl explain`.
pub async fn run(ctx: &mut Context, args: &ExplainArgs) -> Result<(), Error> {
    let Some(request) = args.args.first() else {
        return Err(Error::Message(
            "You must specify the type of resource to explain. Use \"kubectl api-resources\" for a complete list of supported resources.".into(),
        ));
    };
    if args.args.len() > 1 {
        return Err(Error::Message("We accept only this format: explain RESOURCE".into()));
    }
    let openapi_v2 = match args.output.as_str() {
        "plaintext" => false,
        "plaintext-openapiv2" => true,
        other => return Err(Error::Message(format!("unrecognized format: {other}"))),
    };
    let mut parts = request.split('.');
    let word = parts.next().unwrap_or_default();
    let field_path: Vec<String> = parts.map(str::to_string).collect();
    let discovery = ctx.discovery().await?;
    if openapi_v2 {
        // The Swagger 2.0 document names the kind; `--api-version` only replaces the
        // group-version looked for.
        let base = discovery
            .resolve(word)
            .map_err(|e| Error::Aggregate(e.to_string()))?
            .clone();
        let (group, version) = match &args.api_version {
            Some(api_version) => api_version.split_once('/').unwrap_or(("", api_version)),
            None => (base.group.as_str(), base.version.as_str()),
        };
        let (group, version) = (group.to_string(), version.to_string());
        let client = ctx.client().await?;
        let document = request::get(&client, "/openapi/v2", "application/json").await?;
        let mut text = String::new();
        let explained = crate::cmd::explain_v2::explain(
            &document,
            &group,
            &version,
            &base.kind,
            &field_path,
            args.recursive,
            &mut text,
        );
        ctx.out(&text);
        return explained;
    }
    let resource = match &args.api_version {
        None => discovery
            .resolve(word)
            .map_err(|e| Error::Aggregate(e.to_string()))?
            .clone(),
        Some(api_version) => {
            let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
            let base = discovery.resolve(word).map_err(|e| Error::Aggregate(e.to_string()))?;
            discovery
                .resources()
                .iter()
                .find(|r| r.group == group && r.version == version && r.plural == base.plural)
                .cloned()
                .ok_or_else(|| {
                    Error::Message(format!(
                        "couldn't find resource for \"{}\"",
                        if group.is_empty() {
                            format!("/{version}, Resource={}", base.plural)
                        } else {
                            format!("{group}/{version}, Resource={}", base.plural)
                        }
                    ))
                })?
        }
    };
    let client = ctx.client().await?;
    let index = request::get(&client, "/openapi/v3", "application/json").await?;
    let key = if resource.group.is_empty() {
        format!("api/{}", resource.version)
    } else {
        format!("apis/{}/{}", resource.group, resource.version)
    };
    let Some(url) = index["paths"][&key]["serverRelativeURL"].as_str() else {
        return Err(Error::Message(format!(
            "couldn't find resource for \"{}\"",
            resource.api_version()
        )));
    };
    let document = request::get(&client, url, "application/json").await?;
    let mut text = String::new();
    let explained = explain(
        &document,
        &resource.group,
        &resource.version,
        &resource.plural,
        &field_path,
        args.recursive,
        &mut text,
    );
    // Upstream prints the header before it finds out a field does not exist.
    ctx.out(&text);
    explained
}

/// Writes the plaintext explanation of the resource `group/version/plural` in `document` to
/// `out` (the header stays there when a field then turns out not to exist).
pub fn explain(
    document: &Value,
    group: &str,
    version: &str,
    plural: &str,
    field_path: &[String],
    recursive: bool,
    out: &mut String,
) -> Result<(), Error> {
    let prefix = if group.is_empty() {
        "/api".to_string()
    } else {
        format!("/apis/{group}")
    };
    let searches = [
        format!("{prefix}/{version}/{plural}"),
        format!("{prefix}/{version}/{plural}/{{name}}"),
        format!("{prefix}/{version}/namespaces/{{namespace}}/{plural}"),
        format!("{prefix}/{version}/namespaces/{{namespace}}/{plural}/{{name}}"),
    ];
    let gvk = searches.iter().find_map(|path| {
        let element = document["paths"].get(path)?;
        ["get", "post", "put", "patch", "delete"]
            .iter()
            .find_map(|method| element.get(*method)?.get("x-kubernetes-group-version-kind").cloned())
    });
    let Some(gvk) = gvk else {
        let gvr = if group.is_empty() {
            format!("/{version}, Resource={plural}")
        } else {
            format!("{group}/{version}, Resource={plural}")
        };
        return Err(Error::Message(format!("GVR ({gvr}) not found in OpenAPI schema")));
    };
    if let Some(group) = gvk["group"].as_str().filter(|g| !g.is_empty()) {
        out.push_str(&format!("GROUP:      {group}\n"));
    }
    out.push_str(&format!("KIND:       {}\n", text(&gvk["kind"])));
    out.push_str(&format!("VERSION:    {}\n\n", text(&gvk["version"])));
    let explainer = Explainer { document, recursive };
    let schemas = document["components"]["schemas"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    let mut keys: Vec<&String> = schemas.keys().collect();
    keys.sort();
    let found = keys.into_iter().map(|k| &schemas[k]).find(|schema| {
        schema["x-kubernetes-group-version-kind"]
            .as_array()
            .is_some_and(|list| list.contains(&gvk))
    });
    let Some(schema) = found else {
        return Err(Error::Message(format!(
            "GVK {} not found in OpenAPI schema",
            go_map(&gvk)
        )));
    };
    let body = explainer.output(schema, field_path, &BTreeSet::new());
    if body.is_empty() {
        let last = field_path.last().map(String::as_str).unwrap_or_default();
        return Err(Error::Message(format!("field \"{last}\" does not exist")));
    }
    out.push_str(&body);
    out.push('\n');
    Ok(())
}

/// Go's `%v` of a map (`map[group:apps kind:Deployment version:v1]`).
fn go_map(value: &Value) -> String {
    let Some(map) = value.as_object() else {
        return text(value);
    };
    let mut keys: Vec<&String> = map.keys().collect();
    keys.sort();
    let pairs: Vec<String> = keys.iter().map(|k| format!("{k}:{}", text(&map[*k]))).collect();
    format!("map[{}]", pairs.join(" "))
}

fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// A map-valued `additionalProperties` (a boolean one has no schema).
fn additional(schema: &Value) -> Option<&Value> {
    schema.get("additionalProperties").filter(|v| v.is_object())
}

fn truthy(value: Option<&Value>) -> bool {
    match value {
        None | Some(Value::Null) | Some(Value::Bool(false)) => false,
        Some(Value::String(s)) => !s.is_empty(),
        Some(Value::Array(a)) => !a.is_empty(),
        Some(Value::Object(m)) => !m.is_empty(),
        Some(_) => true,
    }
}

fn sorted(map: &Map<String, Value>) -> Vec<(&String, &Value)> {
    let mut entries: Vec<_> = map.iter().collect();
    entries.sort_by(|a, b| a.0.cmp(b.0));
    entries
}

struct Explainer<'a> {
    document: &'a Value,
    recursive: bool,
}

impl<'a> Explainer<'a> {
    /// `resolveRef`: a `#/components/schemas/...` reference inside the document.
    fn resolve(&self, reference: &str) -> Option<&'a Value> {
        let fragment = reference.strip_prefix('#')?;
        let mut current = self.document;
        for part in fragment.split('/').filter(|p| !p.is_empty()) {
            current = current.get(part).filter(|v| v.is_object())?;
        }
        Some(current)
    }

    fn resolved<'b>(&self, schema: &'b Value) -> &'b Value
    where
        'a: 'b,
    {
        schema["$ref"].as_str().and_then(|r| self.resolve(r)).unwrap_or(schema)
    }

    /// The `output` template: follows the field path, then prints the description and fields.
    fn output(&self, schema: &Value, path: &[String], history: &BTreeSet<String>) -> String {
        let reference = schema["$ref"].as_str().unwrap_or_default();
        let mut next = history.clone();
        next.insert(reference.to_string());
        let resolved = self.resolved(schema);
        if path.is_empty() {
            let mut out = String::from("DESCRIPTION:\n");
            let description = self.description(resolved);
            let description = if description.is_empty() {
                "<empty>".to_string()
            } else {
                description
            };
            out.push_str(&indent(4, &wrap(76, &description)));
            out.push('\n');
            let docs = external_docs(resolved, None);
            if !docs.is_empty() {
                out.push('\n');
                out.push_str(&docs);
            }
            let fields = self.field_list(resolved, 1, &BTreeSet::new());
            if !fields.is_empty() {
                out.push_str("FIELDS:\n");
                out.push_str(&fields);
            }
            return out;
        }
        if !reference.is_empty() && history.contains(reference) {
            return String::new();
        }
        if let Some(sub) = resolved["properties"].get(&path[0]) {
            let mut out = String::new();
            if path.len() == 1 {
                out.push_str(&format!("FIELD: {} <{}>\n", path[0], self.type_guess(sub)));
                out.push_str(&extract_enum(sub, true, -1, 0));
                out.push_str("\n\n");
            }
            out.push_str(&self.output(sub, &path[1..], &BTreeSet::new()));
            return out;
        }
        if let Some(items) = resolved.get("items").filter(|v| truthy(Some(v))) {
            return self.output(items, path, &next);
        }
        if let Some(map) = additional(resolved) {
            return self.output(map, path, &next);
        }
        for sub in resolved["allOf"].as_array().map(Vec::as_slice).unwrap_or_default() {
            let out = self.output(sub, path, &next);
            if !out.is_empty() {
                return out;
            }
        }
        String::new()
    }

    /// The `description` template: the schema's and its `allOf`, items' and map values'.
    fn description(&self, schema: &Value) -> String {
        let resolved = self.resolved(schema);
        let mut out = String::new();
        if let Some(description) = resolved["description"].as_str().filter(|d| !d.is_empty()) {
            out.push_str(description);
            out.push('\n');
        }
        for sub in resolved["allOf"].as_array().map(Vec::as_slice).unwrap_or_default() {
            out.push_str(&self.description(sub));
        }
        if let Some(items) = resolved.get("items").filter(|v| truthy(Some(v))) {
            out.push_str(&self.description(items));
        }
        if let Some(map) = additional(resolved) {
            out.push_str(&self.description(map));
        }
        out
    }

    /// The `fieldList` template.
    fn field_list(&self, schema: &Value, level: usize, history: &BTreeSet<String>) -> String {
        let reference = schema["$ref"].as_str().unwrap_or_default();
        if !reference.is_empty() && history.contains(reference) {
            return String::new();
        }
        let mut next = history.clone();
        next.insert(reference.to_string());
        let resolved = self.resolved(schema);
        let mut out = String::new();
        if let Some(properties) = resolved["properties"].as_object() {
            for (name, sub) in sorted(properties) {
                out.push_str(&self.field_detail(name, resolved, level));
                if self.recursive {
                    out.push_str(&self.field_list(sub, level + 1, &next));
                }
            }
        }
        for sub in resolved["allOf"].as_array().map(Vec::as_slice).unwrap_or_default() {
            out.push_str(&self.field_list(sub, level, &next));
        }
        if let Some(items) = resolved.get("items").filter(|v| truthy(Some(v))) {
            out.push_str(&self.field_list(items, level, &next));
        }
        if let Some(map) = additional(resolved) {
            out.push_str(&self.field_list(map, level, &next));
        }
        out
    }

    /// The `fieldDetail` template: `name\t<type> -required-`, then the description unless
    /// recursive.
    fn field_detail(&self, name: &str, parent: &Value, level: usize) -> String {
        let amount = level * 2;
        let field = &parent["properties"][name];
        let mut out = indent(amount, name);
        out.push_str(&format!("\t<{}>", self.type_guess(field)));
        let required = parent["required"]
            .as_array()
            .is_some_and(|r| r.iter().any(|v| v == name));
        if required {
            out.push_str(" -required-");
        }
        out.push_str(&extract_enum(field, false, 4, amount));
        out.push('\n');
        if !self.recursive {
            let description = field["description"]
                .as_str()
                .filter(|d| !d.is_empty())
                .unwrap_or("<no description>");
            out.push_str(&indent(amount + 2, &wrap(78usize.saturating_sub(amount), description)));
            out.push('\n');
            out.push_str(&external_docs(field, Some(amount)));
            out.push('\n');
        }
        out
    }

    /// The `typeGuess` template.
    fn type_guess(&self, schema: &Value) -> String {
        if let Some(items) = schema.get("items").filter(|v| truthy(Some(v))) {
            return format!("[]{}", self.type_guess(items));
        }
        if let Some(map) = additional(schema) {
            return format!("map[string]{}", self.type_guess(map));
        }
        if let Some([only]) = schema["allOf"].as_array().map(Vec::as_slice)
            && !truthy(schema.get("properties"))
        {
            return self.type_guess(only);
        }
        if let Some(reference) = schema["$ref"].as_str().filter(|r| !r.is_empty()) {
            let target = self.resolve(reference);
            let kind = target.and_then(|t| t["type"].as_str()).filter(|t| !t.is_empty());
            return match kind {
                None | Some("object") => {
                    let name = reference.rsplit('/').next().unwrap_or_default();
                    let short = name.rsplit('.').next().unwrap_or_default();
                    if short.is_empty() {
                        "Object".into()
                    } else {
                        short.to_string()
                    }
                }
                Some(kind) => kind.to_string(),
            };
        }
        match schema["type"].as_str() {
            Some("object") | None | Some("") => "Object".into(),
            Some(kind) => kind.to_string(),
        }
    }
}

/// The `externalDocs` block of a schema (`field`: the indentation of the field whose docs
/// they are, which also puts a blank line before them).
fn external_docs(schema: &Value, field: Option<usize>) -> String {
    let Some(docs) = schema.get("externalDocs").filter(|d| truthy(Some(d))) else {
        return String::new();
    };
    let (header, body, width) = match field {
        None => (0, 4, 76),
        Some(amount) => (amount + 2, amount + 4, 76usize.saturating_sub(amount)),
    };
    let mut out = String::new();
    if field.is_some() {
        out.push('\n');
    }
    out.push_str(&indent(header, "EXTERNAL DOCS:"));
    out.push('\n');
    if let Some(description) = docs["description"].as_str().filter(|d| !d.is_empty()) {
        out.push_str(&indent(body, &wrap(width, description)));
        out.push('\n');
    }
    if let Some(url) = docs["url"].as_str().filter(|u| !u.is_empty()) {
        out.push_str(&indent(body, &format!("URL: {url}")));
        out.push('\n');
    }
    out
}

/// The `extractEnum` template: `enum: a, b, c, d, ....` after a field, or one value per line
/// under `ENUM:` in the long view.
fn extract_enum(schema: &Value, long: bool, limit: i64, amount: usize) -> String {
    let Some(values) = schema["enum"].as_array().filter(|v| !v.is_empty()) else {
        return String::new();
    };
    let mut out = if long {
        "ENUM:".to_string()
    } else {
        format!("\n{}enum: ", " ".repeat(amount))
    };
    for (index, value) in values.iter().enumerate() {
        if limit > -1 && index as i64 >= limit {
            out.push_str(", ....");
            break;
        }
        if index > 0 && !long {
            out.push_str(", ");
        } else if long {
            out.push_str("\n    ");
        }
        match value {
            Value::String(s) if s.is_empty() => out.push_str("\"\""),
            other => out.push_str(&text(other)),
        }
    }
    out
}

/// Pads every line by `amount` spaces (sprig's `indent`).
fn indent(amount: usize, text: &str) -> String {
    let pad = " ".repeat(amount);
    format!("{pad}{}", text.replace('\n', &format!("\n{pad}")))
}

/// Characters waiting to be written by [`wrap`], with their count.
#[derive(Default)]
struct Pending {
    text: String,
    len: usize,
}

impl Pending {
    fn push(&mut self, c: char) {
        self.text.push(c);
        self.len += 1;
    }

    fn clear(&mut self) {
        self.text.clear();
        self.len = 0;
    }

    /// Writes the characters out and forgets them.
    fn flush(&mut self, out: &mut String) {
        out.push_str(&self.text);
        self.clear();
    }
}

/// `go-wordwrap`'s `WrapString`: breaks lines at spaces so they fit `limit` (a word longer
/// than the limit stays whole), keeping existing line breaks.
pub fn wrap(limit: usize, text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut current = 0usize;
    let (mut word, mut spaces) = (Pending::default(), Pending::default());
    for c in text.chars() {
        if c == '\n' {
            if !word.text.is_empty() || current + spaces.len <= limit {
                spaces.flush(&mut out);
            }
            spaces.clear();
            word.flush(&mut out);
            out.push(c);
            current = 0;
        } else if c.is_whitespace() && c != '\u{a0}' {
            if spaces.text.is_empty() || !word.text.is_empty() {
                current += spaces.len + word.len;
                spaces.flush(&mut out);
                word.flush(&mut out);
            }
            spaces.push(c);
        } else {
            word.push(c);
            if current + spaces.len + word.len > limit && word.len < limit {
                out.push('\n');
                current = 0;
                spaces.clear();
            }
        }
    }
    if !word.text.is_empty() || current + spaces.len <= limit {
        spaces.flush(&mut out);
    }
    word.flush(&mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrapping_breaks_at_spaces_and_keeps_long_words() {
        assert_eq!(wrap(10, "aaa bbb ccc ddd"), "aaa bbb\nccc ddd");
        assert_eq!(wrap(5, "abcdefgh ij"), "abcdefgh\nij");
        assert_eq!(wrap(20, "one\ntwo"), "one\ntwo");
        assert_eq!(indent(2, "a\nb"), "  a\n  b");
    }
}
