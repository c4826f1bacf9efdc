//! kubectl's `-o jsonpath=TEMPLATE` printer (cli-runtime's `JSONPathPrinter` and its flags) and
//! `RelaxedJSONPathExpression`, the brace-less shorthand kubectl accepts where it builds a
//! template from a bare path (custom columns, `--sort-by`, `wait --for=jsonpath=`).

use serde_json::Value;

use crate::format::{go_quote, go_sharp_v};
use crate::{Error, JsonPath};

/// `-o jsonpath=TEMPLATE` / `-o jsonpath-file=FILE` / `-o jsonpath-as-json=TEMPLATE`.
///
/// The template is used as given: like upstream, a template without braces is literal text.
/// Missing keys print nothing by default (`--allow-missing-template-keys=true`).
#[derive(Debug, Clone, PartialEq)]
pub struct JsonPathPrinter {
    raw: String,
    path: JsonPath,
}

impl JsonPathPrinter {
    /// Parses the template, with kubectl's errors: `template format specified but no template
    /// given` for an empty one, `error parsing jsonpath TEMPLATE, REASON` for a bad one.
    pub fn new(template: &str) -> Result<Self, Error> {
        if template.is_empty() {
            return Err(Error::Usage("template format specified but no template given".into()));
        }
        let path = JsonPath::parse(template).map_err(|e| Error::PrinterParse {
            template: template.to_string(),
            message: e.to_string(),
        })?;
        Ok(Self {
            raw: template.to_string(),
            path: path.allow_missing_keys(true),
        })
    }

    /// `--allow-missing-template-keys` (default true).
    pub fn allow_missing_keys(mut self, allow: bool) -> Self {
        self.path = self.path.allow_missing_keys(allow);
        self
    }

    /// `-o jsonpath-as-json`: each result group as an indented JSON array.
    pub fn json_output(mut self, enable: bool) -> Self {
        self.path = self.path.json_output(enable);
        self
    }

    /// Prints one object, which for `kubectl get` of several objects is the `List` wrapping
    /// them (hence `{.items[*].metadata.name}`). An execution error carries kubectl's whole
    /// debugging message.
    pub fn print(&self, obj: &Value) -> Result<String, Error> {
        self.path.execute(obj).map_err(|e| Error::PrinterExecute {
            quoted_template: go_quote(&self.raw),
            detail: format!(
                "Error executing template: {e}. Printing more information for debugging the template:\n\
                 \ttemplate was:\n\t\t{}\n\
                 \tobject given to jsonpath engine was:\n\t\t{}\n\n",
                self.raw,
                go_sharp_v(obj)
            ),
        })
    }
}

/// kubectl's `RelaxedJSONPathExpression`: `metadata.name`, `.metadata.name`,
/// `{metadata.name}` and `{.metadata.name}` all become `{.metadata.name}`; an empty string stays
/// empty. Anything with braces elsewhere is rejected with kubectl's message.
pub fn relaxed_expression(expr: &str) -> Result<String, Error> {
    if expr.is_empty() {
        return Ok(String::new());
    }
    let no_braces = |s: &str| !s.is_empty() && !s.contains(['{', '}']);
    // `\.?([^{}]+)`: drop one leading dot unless that leaves nothing.
    let field_spec = |s: &str| -> String {
        match s.strip_prefix('.') {
            Some(rest) if !rest.is_empty() => rest.to_string(),
            _ => s.to_string(),
        }
    };
    let inner = expr
        .strip_prefix('{')
        .and_then(|s| s.strip_suffix('}'))
        .filter(|s| no_braces(s));
    let spec = match inner {
        Some(inner) => field_spec(inner),
        None if no_braces(expr) => field_spec(expr),
        None => {
            return Err(Error::Usage(
                "unexpected path string, expected a 'name1.name2' or '.name1.name2' or \
                 '{name1.name2}' or '{.name1.name2}'"
                    .into(),
            ));
        }
    };
    Ok(format!("{{.{spec}}}"))
}
