//! `-o custom-columns=NAME:.metadata.name,...` and `-o custom-columns-file=FILE` (kubectl's
//! `CustomColumnsPrinter`), aligned with kubectl's tabwriter settings.

use serde_json::Value;

use crate::format::go_sprint;
use crate::{Error, JsonPath, relaxed_expression};

/// kubectl's `printers.GetNewTabWriter`: minwidth 6, tabwidth 4 (unused with a space pad),
/// padding 3, pad character ' ', flags `RememberWidths` (no effect within one flush).
const TAB_MIN_WIDTH: usize = 6;
const TAB_PADDING: usize = 3;

/// One column: its header and its template (already in `{.path}` form).
#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    /// The header, printed as given.
    pub header: String,
    /// The JSONPath template the cells come from, e.g. `{.metadata.name}`.
    pub field_spec: String,
}

/// A parsed custom-columns spec.
#[derive(Debug, Clone, PartialEq)]
pub struct CustomColumns {
    columns: Vec<Column>,
    parsers: Vec<JsonPath>,
}

fn usage(msg: impl Into<String>) -> Error {
    Error::Usage(msg.into())
}

impl CustomColumns {
    /// Parses `HEADER:PATH,HEADER:PATH` (`-o custom-columns=`); each path may omit the braces
    /// and the leading dot (see [`relaxed_expression`]).
    pub fn parse(spec: &str) -> Result<Self, Error> {
        if spec.is_empty() {
            return Err(usage("custom-columns format specified but no custom columns given"));
        }
        let mut columns = Vec::new();
        for part in spec.split(',') {
            let Some((header, path)) = part.split_once(':') else {
                return Err(usage(format!(
                    "unexpected custom-columns spec: {part}, expected <header>:<json-path-expr>"
                )));
            };
            columns.push(Column {
                header: header.to_string(),
                field_spec: relaxed_expression(path)?,
            });
        }
        Self::from_columns(columns)
    }

    /// Parses the `-o custom-columns-file=` form: a line of whitespace-separated headers, then
    /// a line of whitespace-separated paths.
    pub fn from_template(template: &str) -> Result<Self, Error> {
        const FORMAT: &str =
            "Expected format is one line of space separated headers, one line of space separated column specs.";
        // Lines as bufio.Scanner yields them: no `\r`, no empty piece after a final newline.
        let mut lines: Vec<&str> = template
            .split('\n')
            .map(|l| l.strip_suffix('\r').unwrap_or(l))
            .collect();
        if template.is_empty() || template.ends_with('\n') {
            lines.pop();
        }
        let Some(header_line) = lines.first() else {
            return Err(usage(format!("invalid template, missing header line. {FORMAT}")));
        };
        let Some(spec_line) = lines.get(1) else {
            return Err(usage(format!("invalid template, missing spec line. {FORMAT}")));
        };
        let headers: Vec<&str> = header_line.split_whitespace().collect();
        let specs: Vec<&str> = spec_line.split_whitespace().collect();
        if headers.len() != specs.len() {
            return Err(usage(format!(
                "number of headers ({}) and field specifications ({}) don't match",
                headers.len(),
                specs.len()
            )));
        }
        let mut columns = Vec::new();
        for (header, spec) in headers.into_iter().zip(specs) {
            columns.push(Column {
                header: header.to_string(),
                field_spec: relaxed_expression(spec)?,
            });
        }
        Self::from_columns(columns)
    }

    fn from_columns(columns: Vec<Column>) -> Result<Self, Error> {
        let parsers = columns
            .iter()
            .map(|c| JsonPath::parse(&c.field_spec).map(|p| p.allow_missing_keys(true)))
            .collect::<Result<_, _>>()?;
        Ok(Self { columns, parsers })
    }

    /// The columns, in order.
    pub fn columns(&self) -> &[Column] {
        &self.columns
    }

    /// Renders a table: the header line (unless `no_headers`), then one line per object, a
    /// `List` (an object whose `items` is an array) contributing one line per item. A cell
    /// is `<none>` when its path finds nothing, and several values are joined with `,`.
    /// No objects print nothing at all.
    pub fn render(&self, objects: &[Value], no_headers: bool) -> Result<String, Error> {
        if objects.is_empty() {
            return Ok(String::new());
        }
        let mut rows: Vec<Vec<String>> = Vec::new();
        if !no_headers {
            rows.push(self.columns.iter().map(|c| c.header.clone()).collect());
        }
        for obj in objects {
            match obj.get("items").and_then(Value::as_array) {
                Some(items) => {
                    for item in items {
                        rows.push(self.row(item)?);
                    }
                }
                None => rows.push(self.row(obj)?),
            }
        }
        Ok(tabwrite(&rows))
    }

    fn row(&self, obj: &Value) -> Result<Vec<String>, Error> {
        let mut cells = Vec::with_capacity(self.parsers.len());
        for parser in &self.parsers {
            let groups = parser.find_results(obj)?;
            let mut values = Vec::new();
            if groups.first().is_none_or(|g| g.is_empty()) {
                values.push("<none>".to_string());
            }
            for value in groups.iter().flatten() {
                values.push(escape_terminal(&go_sprint(value)));
            }
            cells.push(values.join(","));
        }
        Ok(cells)
    }
}

/// cli-runtime's `EscapeTerminal`: ESC becomes `^[` and CR becomes `\r`.
fn escape_terminal(s: &str) -> String {
    s.replace('\u{1b}', "^[").replace('\r', "\\r")
}

/// Go's text/tabwriter over tab-separated rows with kubectl's settings: every cell but a row's
/// last is padded to its column block's width (widest cell + padding, at least the minimum).
/// Cells containing tabs or newlines split as they would in Go.
fn tabwrite(rows: &[Vec<String>]) -> String {
    let mut text = String::new();
    for row in rows {
        text.push_str(&row.join("\t"));
        text.push('\n');
    }
    let lines: Vec<Vec<&str>> = text.split('\n').map(|l| l.split('\t').collect()).collect();
    let mut writer = TabWriter {
        lines: &lines,
        widths: Vec::new(),
        out: String::new(),
    };
    writer.format(0, lines.len());
    writer.out
}

struct TabWriter<'a> {
    lines: &'a [Vec<&'a str>],
    widths: Vec<usize>,
    out: String,
}

impl TabWriter<'_> {
    fn has_cell(&self, line: usize, column: usize) -> bool {
        column + 1 < self.lines[line].len()
    }

    fn format(&mut self, mut line0: usize, line1: usize) {
        let column = self.widths.len();
        let mut this = line0;
        while this < line1 {
            if !self.has_cell(this, column) {
                this += 1;
                continue;
            }
            self.write_lines(line0, this);
            line0 = this;
            let mut width = TAB_MIN_WIDTH;
            while this < line1 && self.has_cell(this, column) {
                width = width.max(self.lines[this][column].chars().count() + TAB_PADDING);
                this += 1;
            }
            self.widths.push(width);
            self.format(line0, this);
            self.widths.pop();
            line0 = this;
        }
        self.write_lines(line0, line1);
    }

    fn write_lines(&mut self, line0: usize, line1: usize) {
        for i in line0..line1 {
            for (j, cell) in self.lines[i].iter().enumerate() {
                self.out.push_str(cell);
                if let Some(width) = self.widths.get(j) {
                    let pad = width.saturating_sub(cell.chars().count());
                    self.out.extend(std::iter::repeat_n(' ', pad));
                }
            }
            if i + 1 < self.lines.len() {
                self.out.push('\n');
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tabwriter_pads_all_but_the_last_cell() {
        let rows = vec![
            vec!["NAME".to_string(), "IMAGE".to_string()],
            vec!["a-long-pod-name".to_string(), "nginx".to_string()],
        ];
        assert_eq!(tabwrite(&rows), "NAME              IMAGE\na-long-pod-name   nginx\n");
        let narrow = vec![vec!["A".to_string(), "B".to_string()]];
        assert_eq!(tabwrite(&narrow), "A     B\n");
    }
}
