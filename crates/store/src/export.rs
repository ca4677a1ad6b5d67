//! JSON Lines export and import (SPEC §5): one stored event per line, ordered by workspace then
//! sequence; both stream, so memory stays flat however large the store.

use std::fs::File;
use std::io::{BufReader, Write};
use std::path::Path;

use futures_util::{stream, StreamExt, TryStreamExt};
use serde_json::value::RawValue;

use crate::audit::{audit_lines, AuditOptions, Line, LineReader, MAX_LINE_BYTES};
use crate::db::PositionedRow;
use crate::error::StoreError;
use crate::record::{EventLine, StoredRow};
use crate::store::BillingStore;
use crate::verify::{Finding, Summary};

/// What an import wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImportReport {
    /// Events written.
    pub events: u64,
    /// The verification summary of the file.
    pub summary: Summary,
}

/// Writes one row as a JSON Lines line (with its newline) into `out`.
///
/// # Errors
/// [`StoreError::Integrity`] when stored payload or metadata is not JSON.
pub fn write_line(row: &StoredRow, out: &mut Vec<u8>) -> Result<(), StoreError> {
    write_line_at(row, None, out)
}

/// Writes one event of the commit order as a JSON Lines line: the export line plus its
/// `"position"` (`billing events`).
///
/// # Errors
/// As [`write_line`].
pub fn write_positioned_line(row: &PositionedRow, out: &mut Vec<u8>) -> Result<(), StoreError> {
    write_line_at(&row.row, Some(row.position.to_string()), out)
}

fn write_line_at(
    row: &StoredRow,
    position: Option<String>,
    out: &mut Vec<u8>,
) -> Result<(), StoreError> {
    let raw = |text: &str, what: &str| {
        RawValue::from_string(text.to_owned()).map_err(|e| StoreError::Integrity {
            workspace: row.aggregate_id.clone(),
            detail: format!("sequence {}: stored {what} is not JSON: {e}", row.sequence),
        })
    };
    let line = EventLine {
        aggregate_type: row.aggregate_type.clone(),
        aggregate_id: row.aggregate_id.clone(),
        sequence: row.sequence,
        event_type: row.event_type.clone(),
        event_version: row.event_version.clone(),
        payload: raw(&row.payload, "payload")?,
        metadata: raw(&row.metadata, "metadata")?,
        position,
    };
    // Strings and raw JSON always serialize.
    serde_json::to_writer(&mut *out, &line).map_err(|e| {
        StoreError::internal(format!(
            "workspace {} sequence {}: the line could not be written: {e}",
            row.aggregate_id, row.sequence
        ))
    })?;
    out.push(b'\n');
    Ok(())
}

impl BillingStore {
    /// Streams every event as JSON Lines into `out`, ordered by workspace then sequence, calling
    /// `progress` with the number of events written so far. Returns how many were written, and
    /// fails unless that equals the number of events the store holds.
    ///
    /// # Errors
    /// [`StoreError::Io`] when `out` fails, [`StoreError::Shortfall`] on a short read,
    /// [`StoreError::Database`].
    pub async fn export(
        &self,
        out: &mut dyn Write,
        mut progress: impl FnMut(u64),
    ) -> Result<u64, StoreError> {
        let expected = self.db().count_events().await?;
        let mut rows = self.db().stream_all();
        let mut buf = Vec::with_capacity(64 * 1024);
        let mut written = 0u64;
        let io = |source| StoreError::Io {
            path: "<export output>".into(),
            source,
        };
        while let Some(row) = rows.try_next().await? {
            write_line(&row, &mut buf)?;
            written += 1;
            if buf.len() >= 60 * 1024 {
                out.write_all(&buf).map_err(io)?;
                buf.clear();
                progress(written);
            }
        }
        out.write_all(&buf).map_err(io)?;
        out.flush().map_err(io)?;
        progress(written);
        // A stream that ended early must not pass for a whole export.
        if written < expected {
            return Err(StoreError::Shortfall {
                operation: "export",
                read: written,
                expected,
            });
        }
        Ok(written)
    }

    /// Verifies the JSON Lines file at `path` in full (order, sequences, the hash chain, the
    /// aggregate's rules), then writes all of it into this empty store in one transaction, or
    /// nothing. `progress` gets `(phase, lines)` with phase `"verify"` then `"write"`.
    ///
    /// # Errors
    /// [`StoreError::ImportRefused`] with the findings when the file does not verify;
    /// [`StoreError::ImportChanged`] when it changed after it was verified (nothing written);
    /// [`StoreError::NotEmpty`]; [`StoreError::Io`]; [`StoreError::Database`].
    pub async fn import(
        &self,
        path: &Path,
        mut progress: impl FnMut(&'static str, u64),
    ) -> Result<ImportReport, StoreError> {
        let io = |source| StoreError::Io {
            path: path.to_owned(),
            source,
        };
        if self.db().count_events().await? > 0 {
            return Err(StoreError::NotEmpty);
        }
        // Pass 1: verify everything exactly as an audit of the file would, keeping only the
        // current workspace in memory.
        let reader = BufReader::new(File::open(path).map_err(io)?);
        let mut findings: Vec<Finding> = Vec::new();
        let summary = audit_lines(
            reader,
            Some(&self.services().policy),
            &AuditOptions::default(),
            |finding| {
                if findings.len() < 100 {
                    findings.push(finding);
                }
            },
            |n| progress("verify", n),
        )
        .map_err(|e| match e {
            StoreError::Io { source, .. } => io(source),
            other => other,
        })?;
        if summary.findings > 0 {
            return Err(StoreError::ImportRefused {
                findings,
                total: summary.findings,
            });
        }
        // Pass 2: write, reading the file again the same way.
        let mut lines = LineReader::new(
            BufReader::new(File::open(path).map_err(io)?),
            MAX_LINE_BYTES,
        );
        let changed = |detail: String| StoreError::ImportChanged {
            path: path.to_owned(),
            detail,
        };
        let next_row = move || -> Option<Result<StoredRow, StoreError>> {
            loop {
                let (_, line) = match lines.next_line() {
                    Ok(Some(line)) => line,
                    Ok(None) => return None,
                    Err(e) => return Some(Err(io(e))),
                };
                let bytes = match line {
                    Line::Bytes(bytes) if bytes.iter().all(u8::is_ascii_whitespace) => continue,
                    Line::Bytes(bytes) => bytes,
                    Line::TooLong(len) => {
                        return Some(Err(changed(format!("a line of {len} bytes"))))
                    }
                };
                let parsed: EventLine = match serde_json::from_slice(bytes) {
                    Ok(parsed) => parsed,
                    Err(e) => return Some(Err(changed(e.to_string()))),
                };
                return Some(Ok(StoredRow {
                    aggregate_type: parsed.aggregate_type,
                    aggregate_id: parsed.aggregate_id,
                    sequence: parsed.sequence,
                    event_type: parsed.event_type,
                    event_version: parsed.event_version,
                    payload: parsed.payload.get().to_owned(),
                    metadata: parsed.metadata.get().to_owned(),
                }));
            }
        };
        let rows = stream::iter(std::iter::from_fn(next_row)).boxed();
        let events = self
            .db()
            .import(rows, summary.events, path, self.import_hook(), |n| {
                progress("write", n)
            })
            .await?;
        Ok(ImportReport { events, summary })
    }
}
