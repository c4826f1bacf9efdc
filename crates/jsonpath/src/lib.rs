//! Kubernetes JSONPath templates (client-go `util/jsonpath`) over [`serde_json::Value`], and the
//! two kubectl printers built on them: `-o jsonpath=...` ([`JsonPathPrinter`]) and
//! `-o custom-columns=...` / `-o custom-columns-file=...` ([`CustomColumns`]).
//!
//! The template language is upstream's, quirks included: text outside `{...}` is printed
//! verbatim, `$` and `@` both mean "the current object" (inside `{range}` that is the element),
//! `['a.b']` is shorthand for `.a.b` (escape a dot as `a\.b` to keep it in a key), results of one
//! action are joined by a space, maps and lists print as compact JSON with sorted keys, and
//! numbers print the way Go prints `int64` / `float64`.
//!
//! Where the "no braces" leniency lives: upstream's `-o jsonpath=` printer does **not** wrap a
//! brace-less template (`-o jsonpath=.metadata.name` prints the literal text `.metadata.name`).
//! The wrapping is kubectl's `RelaxedJSONPathExpression`, applied to custom-columns specs,
//! `--sort-by` and `kubectl wait --for=jsonpath=`; it is [`relaxed_expression`] here.

mod columns;
mod eval;
mod format;
mod parser;
mod printer;

pub use columns::{Column, CustomColumns};
pub use eval::JsonPath;
pub use format::{go_sprint, marshal_go_json};
pub use printer::{JsonPathPrinter, relaxed_expression};

/// Errors from parsing or executing a template, worded like upstream's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The template does not parse (e.g. `unclosed action`, `unterminated array`).
    #[error("{0}")]
    Parse(String),
    /// The template parsed but failed on the data (e.g. `x is not found`,
    /// `array index out of bounds: index 5, length 2`).
    #[error("{0}")]
    Execute(String),
    /// kubectl's wording around a parse error of `-o jsonpath=TEMPLATE`.
    #[error("error parsing jsonpath {template}, {message}")]
    PrinterParse {
        /// The template as given.
        template: String,
        /// The parser's error message.
        message: String,
    },
    /// kubectl's wording around an execution error of `-o jsonpath=TEMPLATE`: the template in
    /// Go `%q` quoting, then the engine error, the template and the object (Go `%#v`).
    #[error("error executing jsonpath {quoted_template}: {detail}\n")]
    PrinterExecute {
        /// The template, quoted as Go's `%q` does.
        quoted_template: String,
        /// The `Error executing template: ...` block kubectl prints.
        detail: String,
    },
    /// A printer argument kubectl rejects (custom-columns spec or file, relaxed path, empty
    /// template).
    #[error("{0}")]
    Usage(String),
}
