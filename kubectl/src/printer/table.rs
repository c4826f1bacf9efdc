//! Server-side `Table` objects printed as upstream's `HumanReadablePrinter` prints them:
//! uppercased headers, priority>0 columns only with `-o wide`, the NAMESPACE, label and
//! LABELS columns added from each row's object metadata, `kind/` name prefixes for mixed
//! kinds, and Go `tabwriter` alignment (minimum width 6, padding 3, widths remembered across
//! flushes so `--watch` rows stay aligned).

use serde_json::Value;

/// How a table is decorated.
#[derive(Debug, Clone, Default)]
pub struct TableOptions {
    /// Show priority>0 columns (`-o wide`).
    pub wide: bool,
    /// Prepend a NAMESPACE column (`-A`).
    pub with_namespace: bool,
    /// Append a LABELS column (`--show-labels`).
    pub show_labels: bool,
    /// Label keys shown as columns (`-L`).
    pub label_columns: Vec<String>,
    /// Leave out the header line.
    pub no_headers: bool,
    /// Prefix names with `kind.group/` (several kinds in one command).
    pub kind_prefix: Option<String>,
    /// Prepend an EVENT column with this watch event type.
    pub event_type: Option<String>,
}

/// A decorated table: header cells and rows of cells, before alignment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Grid {
    pub headers: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

/// Decorates a `meta.k8s.io/v1` Table as the options say.
pub fn grid(table: &Value, options: &TableOptions) -> Grid {
    let empty = Vec::new();
    let columns = table["columnDefinitions"].as_array().unwrap_or(&empty);
    let shown: Vec<usize> = (0..columns.len())
        .filter(|&i| options.wide || columns[i]["priority"].as_i64().unwrap_or(0) == 0)
        .collect();
    let name_column = options.kind_prefix.as_ref().and_then(|_| {
        columns
            .iter()
            .position(|c| c["format"] == "name" && c["type"] == "string")
    });

    let mut headers = Vec::new();
    if options.event_type.is_some() {
        headers.push("EVENT".to_string());
    }
    if options.with_namespace {
        headers.push("NAMESPACE".to_string());
    }
    headers.extend(
        shown
            .iter()
            .map(|&i| columns[i]["name"].as_str().unwrap_or_default().to_uppercase()),
    );
    headers.extend(label_headers(&options.label_columns));
    if options.show_labels {
        headers.push("LABELS".to_string());
    }

    let rows = table["rows"].as_array().unwrap_or(&empty);
    let rows = rows
        .iter()
        .map(|row| {
            let cells = row["cells"].as_array().unwrap_or(&empty);
            let metadata = &row["object"]["metadata"];
            let mut out = Vec::with_capacity(headers.len());
            if let Some(event) = &options.event_type {
                out.push(format_event_type(event));
            }
            if options.with_namespace {
                out.push(metadata["namespace"].as_str().unwrap_or_default().to_string());
            }
            for &i in &shown {
                let mut text = cell_text(cells.get(i).unwrap_or(&Value::Null));
                if Some(i) == name_column
                    && let Some(prefix) = &options.kind_prefix
                {
                    text = format!("{prefix}/{text}");
                }
                out.push(text);
            }
            for key in &options.label_columns {
                out.push(
                    metadata["labels"][key.as_str()]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                );
            }
            if options.show_labels {
                out.push(format_labels(&metadata["labels"]));
            }
            out
        })
        .collect();
    Grid { headers, rows }
}

/// A cell as Go's `fmt.Sprint` prints the decoded JSON value; nothing for `null`; text after
/// a line break is cut and replaced by `...`.
pub fn cell_text(cell: &Value) -> String {
    let text = match cell {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        other => other.to_string(),
    };
    match text.find(['\n', '\r', '\x0c']) {
        Some(at) => format!("{}...", &text[..at]),
        None => text,
    }
}

/// `k=v,k2=v2` sorted by key, `<none>` for no labels (upstream's `labels.FormatLabels`).
pub fn format_labels(labels: &Value) -> String {
    let Some(map) = labels.as_object().filter(|m| !m.is_empty()) else {
        return "<none>".to_string();
    };
    let mut pairs: Vec<(&String, &Value)> = map.iter().collect();
    pairs.sort_by(|a, b| a.0.cmp(b.0));
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
        .collect::<Vec<_>>()
        .join(",")
}

/// `-L` headers: the last `/`-separated segment of each key, uppercased.
fn label_headers(keys: &[String]) -> Vec<String> {
    keys.iter()
        .map(|k| k.rsplit('/').next().unwrap_or(k).to_uppercase())
        .collect()
}

fn format_event_type(event: &str) -> String {
    match event {
        "ADDED" => "ADDED   ".into(),
        "MODIFIED" => "MODIFIED".into(),
        "DELETED" => "DELETED ".into(),
        "ERROR" => "ERROR   ".into(),
        other => other.into(),
    }
}

/// Go's `text/tabwriter` as kubectl configures it (`GetNewTabWriter`): a column is as wide as
/// its widest cell plus 3, at least 6; the last cell of a line is not padded. With remembered
/// widths, later writes never shrink a column (kubectl's `RememberWidths` flag).
#[derive(Debug, Default)]
pub struct TabWriter {
    widths: Vec<usize>,
}

const MIN_WIDTH: usize = 6;
const PADDING: usize = 3;

impl TabWriter {
    /// Aligns `lines` (cells per line) and returns the text, one `\n`-terminated line each.
    pub fn format(&mut self, lines: &[Vec<String>]) -> String {
        for line in lines {
            // Every cell but the last is tab-terminated, so it takes part in the alignment.
            for (i, cell) in line.iter().enumerate().take(line.len().saturating_sub(1)) {
                let width = (cell.chars().count() + PADDING).max(MIN_WIDTH);
                if self.widths.len() <= i {
                    self.widths.push(width);
                } else if self.widths[i] < width {
                    self.widths[i] = width;
                }
            }
        }
        let mut out = String::new();
        for line in lines {
            for (i, cell) in line.iter().enumerate() {
                out.push_str(cell);
                if i + 1 < line.len() {
                    let pad = self.widths[i].saturating_sub(cell.chars().count());
                    out.extend(std::iter::repeat_n(' ', pad));
                }
            }
            out.push('\n');
        }
        out
    }
}

/// A grid as text: the header line (unless `no_headers`) and the rows, aligned.
pub fn render(grid: &Grid, no_headers: bool, writer: &mut TabWriter) -> String {
    let mut lines = Vec::with_capacity(grid.rows.len() + 1);
    if !no_headers {
        lines.push(grid.headers.clone());
    }
    lines.extend(grid.rows.iter().cloned());
    writer.format(&lines)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pods() -> Value {
        json!({"kind": "Table", "columnDefinitions": [
            {"name": "Name", "type": "string", "format": "name", "priority": 0},
            {"name": "Ready", "type": "string", "format": "", "priority": 0},
            {"name": "Restarts", "type": "integer", "format": "", "priority": 0},
            {"name": "IP", "type": "string", "format": "", "priority": 1}],
          "rows": [
            {"cells": ["web-1", "1/1", 0, "10.0.0.1"], "object": {"metadata": {"name": "web-1", "namespace": "default", "labels": {"b": "2", "a": "1"}}}},
            {"cells": ["x", "0/1", 12, null], "object": {"metadata": {"name": "x", "namespace": "kube-system"}}}]})
    }

    #[test]
    fn plain_table_aligns_like_go_tabwriter() {
        let grid = grid(&pods(), &TableOptions::default());
        let text = render(&grid, false, &mut TabWriter::default());
        assert_eq!(
            text,
            "NAME    READY   RESTARTS\nweb-1   1/1     0\nx       0/1     12\n"
        );
    }

    #[test]
    fn wide_namespace_labels_and_kind_prefix() {
        let options = TableOptions {
            wide: true,
            with_namespace: true,
            show_labels: true,
            label_columns: vec!["example.com/a".into()],
            kind_prefix: Some("pod".into()),
            ..Default::default()
        };
        let grid = grid(&pods(), &options);
        assert_eq!(
            grid.headers,
            ["NAMESPACE", "NAME", "READY", "RESTARTS", "IP", "A", "LABELS"]
        );
        assert_eq!(
            grid.rows[0],
            ["default", "pod/web-1", "1/1", "0", "10.0.0.1", "", "a=1,b=2"]
        );
        assert_eq!(grid.rows[1], ["kube-system", "pod/x", "0/1", "12", "", "", "<none>"]);
    }

    #[test]
    fn remembered_widths_never_shrink_and_line_breaks_are_cut() {
        let mut writer = TabWriter::default();
        let first = writer.format(&[vec!["a-long-name".into(), "x".into()]]);
        let second = writer.format(&[vec!["b".into(), "y".into()]]);
        assert_eq!(first, "a-long-name   x\n");
        assert_eq!(second, "b             y\n");
        assert_eq!(cell_text(&json!("one\ntwo")), "one...");
    }
}
