//! Human output (aligned tables) and JSON output, written without panicking when stdout or
//! stderr is closed.

use std::fmt::Write as _;
use std::io::Write;

use serde_json::Value;

/// An aligned text table: a header row, then rows; columns are as wide as their widest cell.
#[derive(Debug, Default)]
pub(crate) struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
    right: Vec<bool>,
}

impl Table {
    /// A table with these column headers (may be empty: no header row).
    pub(crate) fn new<S: Into<String>>(header: impl IntoIterator<Item = S>) -> Self {
        let header: Vec<String> = header.into_iter().map(Into::into).collect();
        let right = vec![false; header.len()];
        Self {
            header,
            rows: Vec::new(),
            right,
        }
    }

    /// Aligns column `index` to the right (numbers).
    pub(crate) fn align_right(mut self, index: usize) -> Self {
        if self.right.len() <= index {
            self.right.resize(index + 1, false);
        }
        self.right[index] = true;
        self
    }

    /// Adds a row.
    pub(crate) fn row<S: Into<String>>(&mut self, cells: impl IntoIterator<Item = S>) {
        self.rows.push(cells.into_iter().map(Into::into).collect());
    }

    /// The table as text, each line indented by `indent` spaces and ending in a newline.
    pub(crate) fn render(&self, indent: usize) -> String {
        let columns = self
            .rows
            .iter()
            .map(Vec::len)
            .chain(std::iter::once(self.header.len()))
            .max()
            .unwrap_or(0);
        let mut widths = vec![0usize; columns];
        for row in std::iter::once(&self.header).chain(&self.rows) {
            for (i, cell) in row.iter().enumerate() {
                widths[i] = widths[i].max(width(cell));
            }
        }
        let mut text = String::new();
        let mut line = |row: &[String]| {
            let mut out = " ".repeat(indent);
            for (i, cell) in row.iter().enumerate() {
                let last = i + 1 == row.len();
                let pad = widths[i].saturating_sub(width(cell));
                if self.right.get(i).copied().unwrap_or(false) {
                    out.push_str(&" ".repeat(pad));
                    out.push_str(cell);
                } else {
                    out.push_str(cell);
                    if !last {
                        out.push_str(&" ".repeat(pad));
                    }
                }
                if !last {
                    out.push_str("  ");
                }
            }
            let _ = writeln!(text, "{}", out.trim_end());
        };
        if !self.header.is_empty() {
            line(&self.header);
        }
        for row in &self.rows {
            line(row);
        }
        text
    }
}

/// Display width of a cell: characters, control characters shown as nothing.
fn width(cell: &str) -> usize {
    cell.chars().filter(|c| !c.is_control()).count()
}

/// `-` for a missing value.
pub(crate) fn or_dash(value: Option<&str>) -> String {
    value.map_or_else(|| "-".to_owned(), ToOwned::to_owned)
}

/// Writes `text` to stdout. A closed stdout (a pipe whose reader went away) is not an error
/// worth panicking over: the output is simply dropped.
pub(crate) fn stdout(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
}

/// Writes `text` to stderr, ignoring a closed stderr.
pub(crate) fn stderr(text: &str) {
    let mut err = std::io::stderr().lock();
    let _ = err.write_all(text.as_bytes());
    let _ = err.flush();
}

/// Writes one JSON document (pretty, with a final newline) to stdout.
pub(crate) fn json(value: &Value) {
    let text = serde_json::to_string_pretty(value).unwrap_or_else(|e| {
        // Values built from serde_json::Value and derived Serialize impls always serialize;
        // still, say so rather than print nothing.
        format!("{{\"error\":{{\"code\":\"internal\",\"message\":\"{e}\"}}}}")
    });
    stdout(&format!("{text}\n"));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_align_and_lines_have_no_trailing_spaces() {
        let mut table = Table::new(["SEQ", "EVENT", "NOTE"]).align_right(0);
        table.row(["1", "UpgradeRequested", ""]);
        table.row(["10", "PlanUpgraded", "done"]);
        assert_eq!(
            table.render(2),
            "  SEQ  EVENT             NOTE\n    1  UpgradeRequested\n   10  PlanUpgraded      done\n"
        );
    }

    #[test]
    fn tables_without_header_render_rows_only() {
        let mut table = Table::new(Vec::<String>::new());
        table.row(["plan", "Commercial Plan"]);
        table.row(["head hash", "ab"]);
        assert_eq!(
            table.render(0),
            "plan       Commercial Plan\nhead hash  ab\n"
        );
    }
}
