//! Auditing a log (SPEC §8): a JSON Lines file or the store itself, streamed in constant memory
//! through [`Verifier`], reporting every finding and a summary.

use std::io::BufRead;

use billing_domain::SitePolicy;
use futures_util::TryStreamExt;

use crate::db::Db;
use crate::error::StoreError;
use crate::verify::{Finding, FindingCode, Summary, Verifier};

/// The longest line an audit reads; a longer one is a `malformed-line` finding, and the reader
/// skips to its end without holding it in memory.
pub const MAX_LINE_BYTES: usize = 1 << 20;

/// What to check besides the log itself.
#[derive(Clone, Debug, Default)]
pub struct AuditOptions {
    /// Heads kept outside the log (`--expect-head W=HASH`): a workspace whose stream does not end
    /// with this hash is a `head-mismatch`.
    pub expect_heads: Vec<(String, String)>,
}

/// Reads lines of at most `max` bytes into one reused buffer; a longer line is reported as too
/// long and skipped.
pub struct LineReader<R> {
    inner: R,
    max: usize,
    line: u64,
    buf: Vec<u8>,
}

/// One line from a [`LineReader`].
#[derive(Debug, PartialEq, Eq)]
pub enum Line<'a> {
    /// A line's bytes, without its line ending.
    Bytes(&'a [u8]),
    /// A line longer than the limit (its length in bytes).
    TooLong(usize),
}

impl<R: BufRead> LineReader<R> {
    /// A reader of lines up to `max` bytes.
    pub fn new(inner: R, max: usize) -> Self {
        Self {
            inner,
            max,
            line: 0,
            buf: Vec::new(),
        }
    }

    /// The next line and its number (from 1), or `None` at the end.
    ///
    /// # Errors
    /// The underlying reader's error.
    pub fn next_line(&mut self) -> std::io::Result<Option<(u64, Line<'_>)>> {
        let buf = &mut self.buf;
        buf.clear();
        let mut total = 0usize;
        let mut saw_any = false;
        loop {
            let chunk = self.inner.fill_buf()?;
            if chunk.is_empty() {
                break;
            }
            saw_any = true;
            let (take, done) = match memchr::memchr(b'\n', chunk) {
                Some(i) => (i, true),
                None => (chunk.len(), false),
            };
            if total + take <= self.max {
                buf.extend_from_slice(&chunk[..take]);
            } else if total <= self.max {
                // Crossed the limit: stop keeping bytes, and give the memory back.
                *buf = Vec::new();
            }
            total += take;
            self.inner.consume(take + usize::from(done));
            if done {
                break;
            }
        }
        if !saw_any {
            return Ok(None);
        }
        self.line += 1;
        if total > self.max {
            return Ok(Some((self.line, Line::TooLong(total))));
        }
        if buf.last() == Some(&b'\r') {
            buf.pop();
        }
        Ok(Some((self.line, Line::Bytes(buf))))
    }
}

/// Audits a JSON Lines log read from `reader`, calling `on_finding` for every finding and
/// `progress` with the number of lines read so far (every 10,000 lines and at the end).
///
/// # Errors
/// [`StoreError::Io`] when the reader fails (malformed content is a finding, not an error).
pub fn audit_lines(
    reader: impl BufRead,
    policy: Option<&SitePolicy>,
    options: &AuditOptions,
    mut on_finding: impl FnMut(Finding),
    mut progress: impl FnMut(u64),
) -> Result<Summary, StoreError> {
    let mut verifier = Verifier::new(policy);
    for (workspace, hash) in &options.expect_heads {
        verifier.expect_head(workspace.clone(), hash.clone());
    }
    let mut lines = LineReader::new(reader, MAX_LINE_BYTES);
    let mut extra = 0u64;
    let mut count = 0u64;
    loop {
        let next = lines.next_line().map_err(|source| StoreError::Io {
            path: "<audit input>".into(),
            source,
        })?;
        let Some((line, content)) = next else { break };
        count = line;
        let findings = match content {
            Line::Bytes(bytes) if bytes.iter().all(u8::is_ascii_whitespace) => Vec::new(),
            Line::Bytes(bytes) => match std::str::from_utf8(bytes) {
                Ok(text) => verifier.push_line(line, text).0,
                Err(e) => {
                    extra += 1;
                    vec![malformed(line, format!("not UTF-8: {e}"))]
                }
            },
            Line::TooLong(len) => {
                extra += 1;
                vec![malformed(
                    line,
                    format!("line of {len} bytes is longer than the {MAX_LINE_BYTES}-byte limit"),
                )]
            }
        };
        for finding in findings {
            on_finding(finding);
        }
        if line % 10_000 == 0 {
            progress(line);
        }
    }
    progress(count);
    let (findings, _, mut summary) = verifier.finish();
    for finding in findings {
        on_finding(finding);
    }
    // Lines the verifier never saw (not UTF-8, too long) still count as records and findings.
    summary.findings += extra;
    summary.records = count;
    Ok(summary)
}

fn malformed(line: u64, detail: String) -> Finding {
    Finding {
        code: FindingCode::MalformedLine,
        workspace: None,
        sequence: None,
        line: Some(line),
        detail,
    }
}

/// Audits the store's own log: every stream in order, each checked against the head the store
/// recorded for it (newest events removed → `head-mismatch`), plus any `expect_heads`.
///
/// # Errors
/// [`StoreError::Database`] when reading fails; [`StoreError::Shortfall`] when fewer events were
/// read than the store holds (a short read never passes for a clean audit).
pub async fn audit_store(
    db: &Db,
    policy: Option<&SitePolicy>,
    options: &AuditOptions,
    mut on_finding: impl FnMut(Finding),
    mut progress: impl FnMut(u64),
) -> Result<Summary, StoreError> {
    let expected_total = db.count_events().await?;
    let mut verifier = Verifier::new(policy);
    let mut outside: std::collections::HashMap<String, String> =
        options.expect_heads.iter().cloned().collect();
    let mut heads = db.stream_heads();
    let mut next_head = heads.try_next().await?;
    let mut rows = db.stream_all();
    let mut current: Option<String> = None;
    let mut read = 0u64;
    while let Some(row) = rows.try_next().await? {
        if current.as_deref() != Some(row.aggregate_id.as_str()) {
            // Heads of workspaces that sort before this one have no events at all.
            while let Some(head) = next_head.take() {
                if head.workspace.as_str() < row.aggregate_id.as_str() {
                    on_finding(missing_stream(&head.workspace, &head.hash));
                    next_head = heads.try_next().await?;
                } else {
                    if head.workspace == row.aggregate_id {
                        verifier.expect_head(head.workspace.clone(), head.hash.clone());
                        next_head = heads.try_next().await?;
                    } else {
                        next_head = Some(head);
                    }
                    break;
                }
            }
            if let Some(hash) = outside.remove(&row.aggregate_id) {
                verifier.expect_head(row.aggregate_id.clone(), hash);
            }
            current = Some(row.aggregate_id.clone());
        }
        read += 1;
        let (findings, _) = verifier.push_row(row.as_ref());
        for finding in findings {
            on_finding(finding);
        }
        if read % 10_000 == 0 {
            progress(read);
        }
    }
    progress(read);
    let mut missing = 0;
    while let Some(head) = next_head {
        on_finding(missing_stream(&head.workspace, &head.hash));
        missing += 1;
        next_head = heads.try_next().await?;
    }
    for (workspace, hash) in outside {
        verifier.expect_head(workspace, hash);
    }
    let (findings, _, mut summary) = verifier.finish();
    for finding in findings {
        on_finding(finding);
    }
    summary.findings += missing;
    if read < expected_total {
        return Err(StoreError::Shortfall {
            operation: "audit",
            read,
            expected: expected_total,
        });
    }
    Ok(summary)
}

fn missing_stream(workspace: &str, hash: &str) -> Finding {
    Finding {
        code: FindingCode::HeadMismatch,
        workspace: Some(workspace.to_owned()),
        sequence: None,
        line: None,
        detail: format!("the store records head {hash} but holds no events of this workspace"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_lines_are_reported_and_skipped_without_keeping_them() {
        let text = format!("ab\n{}\ncd\r\n\nlast", "x".repeat(50));
        let mut reader = LineReader::new(std::io::BufReader::with_capacity(8, text.as_bytes()), 10);
        let mut got = Vec::new();
        while let Some((n, line)) = reader.next_line().unwrap() {
            got.push((
                n,
                match line {
                    Line::Bytes(b) => Some(b.to_vec()),
                    Line::TooLong(len) => {
                        assert_eq!(len, 50);
                        None
                    }
                },
            ));
        }
        assert_eq!(
            got,
            vec![
                (1, Some(b"ab".to_vec())),
                (2, None),
                (3, Some(b"cd".to_vec())),
                (4, Some(Vec::new())),
                (5, Some(b"last".to_vec())),
            ]
        );
    }
}
