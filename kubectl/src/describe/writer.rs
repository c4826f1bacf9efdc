//! The prefix writer and the column aligner behind every describe report: text is written at
//! two-space indentation levels, then cells separated by tabs are aligned the way Go's
//! `text/tabwriter` does it (minimum width 0, padding 2, padded with spaces).

/// Collects report text at indentation levels; `finish` aligns the tab-separated cells.
#[derive(Debug, Default)]
pub(crate) struct PrefixWriter {
    done: String,
    pending: String,
}

impl PrefixWriter {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Writes `text` after `level` indentation steps (only the first line gets the indentation).
    pub(crate) fn write(&mut self, level: usize, text: &str) {
        for _ in 0..level {
            self.pending.push_str("  ");
        }
        push_escaped(&mut self.pending, text);
    }

    /// Writes `text` and a newline, without indentation.
    pub(crate) fn line(&mut self, text: &str) {
        push_escaped(&mut self.pending, text);
        self.pending.push('\n');
    }

    /// Ends the current alignment block: later cells are aligned independently of earlier ones.
    pub(crate) fn flush(&mut self) {
        let text = std::mem::take(&mut self.pending);
        self.done.push_str(&align(&text));
    }

    /// The text as written, without column alignment.
    pub(crate) fn unaligned(self) -> String {
        self.done + &self.pending
    }

    /// The finished, aligned report.
    pub(crate) fn finish(mut self) -> String {
        self.flush();
        self.done
    }
}

/// Neutralises terminal control sequences the way kubectl's printers do.
fn push_escaped(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '\x1b' => out.push_str("^["),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
}

/// Aligns tab-terminated cells into columns (Go `text/tabwriter`, padding 2, flags 0).
pub(crate) fn align(text: &str) -> String {
    let lines: Vec<Vec<&str>> = text.split('\n').map(|l| l.split('\t').collect()).collect();
    let mut aligner = Aligner {
        lines,
        widths: Vec::new(),
        out: String::with_capacity(text.len() * 2),
    };
    let n = aligner.lines.len();
    aligner.format(0, n);
    aligner.out
}

struct Aligner<'a> {
    lines: Vec<Vec<&'a str>>,
    widths: Vec<usize>,
    out: String,
}

impl Aligner<'_> {
    fn format(&mut self, line0: usize, line1: usize) {
        let column = self.widths.len();
        let mut start = line0;
        let mut this = line0;
        while this < line1 {
            if column + 1 >= self.lines[this].len() {
                this += 1;
                continue;
            }
            self.write_lines(start, this);
            start = this;
            let mut width = 0;
            while this < line1 {
                let line = &self.lines[this];
                if column + 1 >= line.len() {
                    break;
                }
                width = width.max(line[column].chars().count() + 2);
                this += 1;
            }
            self.widths.push(width);
            self.format(start, this);
            self.widths.pop();
            start = this;
            // Go's loop steps past the line that ended the block; it cannot start a new one.
            this += 1;
        }
        self.write_lines(start, line1);
    }

    fn write_lines(&mut self, line0: usize, line1: usize) {
        let total = self.lines.len();
        for i in line0..line1 {
            for (j, cell) in self.lines[i].iter().enumerate() {
                self.out.push_str(cell);
                if let Some(&w) = self.widths.get(j) {
                    let pad = w.saturating_sub(cell.chars().count());
                    self.out.extend(std::iter::repeat_n(' ', pad));
                }
            }
            if i + 1 != total {
                self.out.push('\n');
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aligns_consecutive_lines_only() {
        let text = "Name:\tfoo\nNamespace:\tdefault\nContainers:\n  c:\n    Image:\tnginx\n";
        assert_eq!(
            align(text),
            "Name:       foo\nNamespace:  default\nContainers:\n  c:\n    Image:  nginx\n"
        );
    }

    #[test]
    fn nested_columns() {
        let text = "a\tbb\tc\naaa\tb\tcc\nx\n";
        assert_eq!(align(text), "a    bb  c\naaa  b   cc\nx\n");
    }
}
