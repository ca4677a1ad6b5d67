//! Tables for people, laid out by comfy-table (ADR 6): columns as wide as their widest cell in
//! *display* columns (a CJK character takes two), two spaces between columns, no borders, no
//! trailing spaces, every line ending in a newline.
//!
//! On a terminal, a table wider than the terminal wraps its *last* column to fit (the other
//! columns keep their width: put free text such as descriptions last). It wraps at spaces
//! only, and only if that leaves it at least 24 columns and room for its longest word (a hash,
//! a link); otherwise the table is left to the terminal's own line wrap. Anywhere else
//! (a pipe, a file) nothing is wrapped or cut, so `grep` and `cut` see whole cells; and nothing
//! is ever coloured: comfy-table is built without its `tty` feature, which holds all its styling.

use comfy_table::{presets, CellAlignment, ColumnConstraint, ContentArrangement};
use unicode_width::UnicodeWidthStr;

/// Spaces between two columns.
const GAP: u16 = 2;

/// The narrowest the last column is wrapped into on a terminal; with less room the table is not
/// wrapped at all.
const MIN_WRAPPED: u16 = 24;

/// A table: an optional header row, then rows. Build it with [`Table::new`] (or
/// [`Table::pairs`]), add [`row`](Table::row)s, and [`render`](Table::render) it. Only the last
/// column wraps on a narrow terminal, so free text goes last.
///
/// ```text
/// SEQ  EVENT             OCCURRED AT
///   1  UpgradeRequested  2026-11-27 09:00:00 UTC
/// ```
#[derive(Debug, Default)]
pub(crate) struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
    right: Vec<usize>,
    margin: usize,
}

impl Table {
    /// A table with these column headers (may be empty: no header row).
    pub(crate) fn new<S: Into<String>>(header: impl IntoIterator<Item = S>) -> Self {
        Self {
            header: header.into_iter().map(Into::into).collect(),
            ..Self::default()
        }
    }

    /// A table of label–value rows, without a header row.
    pub(crate) fn pairs() -> Self {
        Self::default()
    }

    /// Aligns column `index` to the right (numbers).
    pub(crate) fn align_right(mut self, index: usize) -> Self {
        self.right.push(index);
        self
    }

    /// Tells the table that its caller indents its text by `columns` more (a table inside an
    /// indented block), so it fits the terminal less those columns.
    pub(crate) fn nested(mut self, columns: usize) -> Self {
        self.margin = self.margin.saturating_add(columns);
        self
    }

    /// Adds a row. Rows may have fewer cells than others; the missing ones are empty.
    pub(crate) fn row<S: Into<String>>(&mut self, cells: impl IntoIterator<Item = S>) {
        self.rows.push(cells.into_iter().map(Into::into).collect());
    }

    /// The table as text, each line indented by `indent` spaces and ending in a newline; fitted
    /// to the terminal's width when stdout is a terminal.
    pub(crate) fn render(&self, indent: usize) -> String {
        let margin = u16::try_from(self.margin).unwrap_or(u16::MAX);
        let width = stdout_width().map(|w| w.saturating_sub(margin));
        self.render_within(indent, width)
    }

    /// The table as text, fitted into `width` columns (indent included) if given, else as wide
    /// as its cells.
    pub(crate) fn render_within(&self, indent: usize, width: Option<u16>) -> String {
        let mut table = comfy_table::Table::new();
        table.load_style(presets::NOTHING);
        if !self.header.is_empty() {
            table.set_header(self.header.iter().map(|c| shown(c)));
        }
        for row in &self.rows {
            table.add_row(row.iter().map(|c| shown(c)));
        }
        let columns = table.column_count();
        for column in table.column_iter_mut() {
            let last = column.index + 1 == columns;
            column.set_padding((0, if last { 0 } else { GAP }));
            if !last {
                // Only the last column wraps on a narrow terminal; instants, names and
                // numbers stay on one line.
                column.set_constraint(ColumnConstraint::ContentWidth);
            }
            if self.right.contains(&column.index) {
                column.set_cell_alignment(CellAlignment::Right);
            }
        }
        if let Some(width) = width {
            let width = width.saturating_sub(u16::try_from(indent).unwrap_or(u16::MAX));
            // What the columns before the last one take, gaps included.
            let fixed = table
                .column_max_content_widths()
                .iter()
                .take(columns.saturating_sub(1))
                .fold(0u16, |sum, w| sum.saturating_add(*w).saturating_add(GAP));
            // Wrap only at spaces: a hash, a link or an instant is never cut in two, and a
            // sliver of a column reads worse than the terminal's own line wrap.
            let needed = self.longest_last_word(columns).max(MIN_WRAPPED);
            if width.saturating_sub(fixed) >= needed {
                table.set_content_arrangement(ContentArrangement::Dynamic);
                table.set_width(width);
            }
        }
        let pad = " ".repeat(indent);
        let mut text = String::new();
        for line in table.lines() {
            let line = format!("{pad}{line}");
            text.push_str(line.trim_end());
            text.push('\n');
        }
        text
    }
}

impl Table {
    /// The display width of the widest word (run of non-spaces) in the last column.
    fn longest_last_word(&self, columns: usize) -> u16 {
        let last = columns.saturating_sub(1);
        let widest = std::iter::once(&self.header)
            .chain(&self.rows)
            .filter_map(|row| row.get(last))
            .flat_map(|cell| {
                shown(cell)
                    .split_whitespace()
                    .map(str::width)
                    .collect::<Vec<_>>()
            })
            .max()
            .unwrap_or(0);
        u16::try_from(widest).unwrap_or(u16::MAX)
    }
}

/// The width of the terminal on stdout; `None` when stdout is not a terminal.
fn stdout_width() -> Option<u16> {
    console::Term::stdout()
        .size_checked()
        .map(|(_rows, columns)| columns)
}

/// A cell as shown: control characters (a newline, a tab, an escape) spelled out as `\n`, `\t`,
/// `\u{1b}`, so a cell stays on its line and cannot drive the terminal.
fn shown(cell: &str) -> String {
    if !cell.chars().any(char::is_control) {
        return cell.to_owned();
    }
    let mut text = String::with_capacity(cell.len() + 8);
    for c in cell.chars() {
        if c.is_control() {
            text.extend(c.escape_default());
        } else {
            text.push(c);
        }
    }
    text
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
            table.render_within(2, None),
            "  SEQ  EVENT             NOTE\n    1  UpgradeRequested\n   10  PlanUpgraded      done\n"
        );
    }

    #[test]
    fn tables_without_header_render_rows_only() {
        let mut table = Table::pairs();
        table.row(["plan", "Commercial Plan"]);
        table.row(["head hash", "ab"]);
        assert_eq!(
            table.render_within(0, None),
            "plan       Commercial Plan\nhead hash  ab\n"
        );
    }

    #[test]
    fn wide_characters_align_by_display_width() {
        // "アップグレード" is 7 characters but 14 columns wide.
        let mut table = Table::new(["DESCRIPTION", "ACTOR"]);
        table.row(["アップグレード", "alice"]);
        table.row(["upgrade", "bob"]);
        assert_eq!(
            table.render_within(0, None),
            "DESCRIPTION     ACTOR\nアップグレード  alice\nupgrade         bob\n"
        );
    }

    #[test]
    fn without_a_terminal_nothing_is_wrapped_or_cut() {
        let long = "x".repeat(500);
        let mut table = Table::new(["A", "B"]);
        table.row(["1", long.as_str()]);
        assert_eq!(table.render_within(0, None), format!("A  B\n1  {long}\n"));
    }

    #[test]
    fn on_a_narrow_terminal_wide_cells_wrap_to_fit() {
        let mut table = Table::new(["SEQ", "DESCRIPTION"]).align_right(0);
        table.row([
            "1",
            "alice requested the upgrade to the Commercial Plan on site us1",
        ]);
        let text = table.render_within(2, Some(40));
        assert!(text.lines().count() > 2, "{text}");
        assert!(
            text.starts_with("  SEQ  DESCRIPTION\n    1  alice"),
            "{text}"
        );
        for line in text.lines() {
            assert!(line.chars().count() <= 40, "{line:?} in\n{text}");
        }
        assert!(text.contains("alice"), "{text}");
        assert!(text.contains("us1"), "{text}");
    }

    #[test]
    fn a_terminal_too_narrow_for_the_last_column_leaves_the_table_unwrapped() {
        let mut table = Table::new(["OCCURRED AT", "DESCRIPTION"]);
        table.row(["2026-11-27 09:00:00 UTC", "alice requested the upgrade"]);
        assert_eq!(
            table.render_within(0, Some(40)),
            "OCCURRED AT              DESCRIPTION\n2026-11-27 09:00:00 UTC  alice requested the upgrade\n"
        );
    }

    #[test]
    fn words_are_never_cut_to_fit() {
        let hash = "371771144e143ee8997925bf328297377dd7e999e8a69d4b3a500ae90aaa95bb";
        let mut table = Table::pairs();
        table.row([
            "Settlement",
            "enterprise (Expense Center account acme-finance)",
        ]);
        table.row(["Head hash", hash]);
        assert_eq!(
            table.render_within(0, Some(70)),
            format!(
                "Settlement  enterprise (Expense Center account acme-finance)\nHead hash   {hash}\n"
            )
        );
        let wrapped = table.render_within(0, Some(80));
        assert!(wrapped.contains(hash), "{wrapped}");
    }

    #[test]
    fn control_characters_are_spelled_out() {
        let mut table = Table::pairs();
        table.row(["note", "a\nb\t\u{1b}[31mred"]);
        assert_eq!(
            table.render_within(0, None),
            "note  a\\nb\\t\\u{1b}[31mred\n"
        );
    }

    #[test]
    fn odd_sizes_do_not_panic() {
        let huge = "界".repeat(70_000);
        let mut table = Table::new(["A", "B", "C"]).align_right(7);
        table.row(["1"]);
        table.row([huge.as_str(), "", "x"]);
        for width in [None, Some(0), Some(1), Some(3), Some(u16::MAX)] {
            for indent in [0, 5, 100_000] {
                let _ = table.render_within(indent, width);
            }
        }
        assert_eq!(Table::new(Vec::<String>::new()).render_within(2, None), "");
    }
}
