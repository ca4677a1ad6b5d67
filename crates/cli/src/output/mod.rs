//! Human output (tables, instants) and JSON output, written without panicking when stdout or
//! stderr is closed.
//!
//! - [`Table`]: every table the commands print, aligned by display width;
//! - [`instant()`] and [`Zone`]: every instant people read, to the minute in the site's time zone
//!   or UTC, through the domain's one formatter (`--json` keeps full precision);
//! - [`stdout`], [`stderr`], [`json`]: the writers.

mod instant;
mod table;

use std::io::Write;

use serde_json::Value;

pub(crate) use instant::{instant, instant_or_dash, Zone};
pub(crate) use table::Table;

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
