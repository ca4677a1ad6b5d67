//! The JSON Lines reader and the audit replayer under hostile input (issue 5), as a property test
//! that fits in CI (the long runs are the cargo-fuzz targets in `fuzz/`).
//!
//! Inputs are random byte soups, and lines of a real export mutated: random byte flips,
//! truncations, splices of two lines, extreme numbers, odd field values, invalid UTF-8, lone CRs,
//! NUL and other control bytes, deep nesting, blank lines and lines beyond
//! [`MAX_LINE_BYTES`]. For every input, [`audit_lines`] and [`Verifier::push_line`]:
//! - never panic, and `audit_lines` returns `Ok` (malformed content is a finding, not an error);
//! - count every line (`summary.records`) and every finding (`summary.findings`);
//! - report every line that is not a valid event with at least one finding carrying its line
//!   number — and so every line that does not say what one of the export's lines says (blank
//!   lines excepted: the audit skips them);
//! - report a line beyond the limit as too long, without holding it (a 20 MB line, generated on
//!   the fly, is reported with its length and the next line is read as usual).
//!
//! And the import, which verifies a file before writing it, judges every file as the audit does.

use std::collections::HashSet;
use std::io::{BufReader, Read};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use billing_domain::*;
use billing_store::audit::{audit_lines, AuditOptions, MAX_LINE_BYTES};
use billing_store::record::{decode, EventLineRef};
use billing_store::{BillingStore, Finding, FindingCode, StoreError, Verifier};
use proptest::prelude::*;
use proptest::sample::Index;

use crate::harness::*;

// ---------------------------------------------------------------------------------------------
// A real export to mutate

/// The lines of a real export: workspaces at every step, on several sites, one settling through
/// AWS, one with a newly registered account.
fn valid_lines() -> &'static Vec<Vec<u8>> {
    static LINES: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    LINES.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let world = World::new();
            let store = BillingStore::open("sqlite::memory:", world.services.clone())
                .await
                .unwrap();
            upgrade(&store, "ws-a", "cn1").await;
            upgrade(&store, "ws-b", "us1").await;
            let aws = MethodId::parse("aws").unwrap();
            let account = CloudAccount {
                account_id: ExternalId::parse("111111111111").unwrap(),
                instance_id: None,
            };
            world.marketplace.subscribe(&aws, &account);
            store
                .execute(
                    &ws("ws-b"),
                    &owner_cmd("b-settle", act::settle("aws", Some(("111111111111", None)))),
                )
                .await
                .unwrap();
            for (i, action) in [act::request("eu1"), act::register("new-finance")]
                .into_iter()
                .enumerate()
            {
                store
                    .execute(&ws("ws-c"), &owner_cmd(&format!("c-{i}"), action))
                    .await
                    .unwrap();
            }
            store
                .execute(&ws("ws-d"), &owner_cmd("d-0", act::request("cn4")))
                .await
                .unwrap();
            let mut out = Vec::new();
            store.export(&mut out, |_| {}).await.unwrap();
            out.split(|b| *b == b'\n')
                .filter(|l| !l.is_empty())
                .map(<[u8]>::to_vec)
                .collect()
        })
    })
}

/// The export's lines as JSON values: what a line says, whatever its layout.
fn valid_values() -> &'static Vec<serde_json::Value> {
    static VALUES: OnceLock<Vec<serde_json::Value>> = OnceLock::new();
    VALUES.get_or_init(|| {
        valid_lines()
            .iter()
            .map(|l| serde_json::from_slice(l).unwrap())
            .collect()
    })
}

fn line(i: Index) -> &'static [u8] {
    let lines = valid_lines();
    &lines[i.index(lines.len())]
}

// ---------------------------------------------------------------------------------------------
// Hostile inputs

/// One piece of a hostile file (a line, or for `Soup` any bytes, newlines included).
#[derive(Clone, Debug)]
enum Piece {
    /// A line of the export as it is.
    Valid(Index),
    /// A line with random bytes overwritten.
    Flip(Index, Vec<(Index, u8)>),
    /// A line cut short.
    Truncate(Index, Index),
    /// The start of one line followed by the end of another.
    Splice(Index, Index, Index, Index),
    /// A line with bytes inserted: invalid UTF-8, a lone CR, NUL, control characters.
    Insert(Index, Index, &'static [u8]),
    /// A line whose sequence is replaced by another number.
    Sequence(Index, &'static str),
    /// A line with one string field's value replaced.
    Field(Index, &'static str, &'static str),
    /// A line of `MAX_LINE_BYTES + extra` bytes: a valid line padded with spaces inside the JSON,
    /// or just bytes.
    Huge { extra: usize, padded: Option<Index> },
    /// A payload nested `depth` arrays deep.
    Nested(Index, usize),
    /// A blank or whitespace-only line.
    Blank(&'static str),
    /// Random bytes (which may hold newlines).
    Soup(Vec<u8>),
}

const INSERTS: &[&[u8]] = &[
    b"\xff",
    b"\xc3",
    b"\xed\xa0\x80", // a UTF-16 surrogate, not UTF-8
    b"\xf4\x90\x80\x80",
    b"\r",
    b"\r\r",
    b"\0",
    b"\x07",
    b"\x1b[2J",
    b"\\",
    b"\"",
    b"\\u0000",
    b"\\ud800",
    b"}",
    b",",
    b" ",
];

const NUMBERS: &[&str] = &[
    "0",
    "-1",
    "1.5",
    "1e3",
    "2",
    "9007199254740993",
    "9223372036854775807",
    "9223372036854775808",
    "18446744073709551614",
    "18446744073709551615",
    "18446744073709551616",
    "1e400",
    "null",
    "\"1\"",
];

const FIELDS: &[&str] = &[
    "aggregate_type",
    "aggregate_id",
    "event_type",
    "event_version",
];

const VALUES: &[&str] = &[
    "",
    "workspace",
    "ws-a",
    "ws-z",
    "a';--",
    "1.0",
    "2.0",
    "PlanUpgraded",
    "PlanDowngraded",
    "UpgradeRequested",
    "\\u0000",
    "ünï",
];

fn piece() -> impl Strategy<Value = Piece> {
    prop_oneof![
        6 => any::<Index>().prop_map(Piece::Valid),
        4 => (any::<Index>(), proptest::collection::vec((any::<Index>(), any::<u8>()), 1..4))
            .prop_map(|(i, edits)| Piece::Flip(i, edits)),
        2 => (any::<Index>(), any::<Index>()).prop_map(|(i, at)| Piece::Truncate(i, at)),
        2 => (any::<Index>(), any::<Index>(), any::<Index>(), any::<Index>())
            .prop_map(|(a, b, x, y)| Piece::Splice(a, b, x, y)),
        3 => (any::<Index>(), any::<Index>(), proptest::sample::select(INSERTS))
            .prop_map(|(i, at, bytes)| Piece::Insert(i, at, bytes)),
        2 => (any::<Index>(), proptest::sample::select(NUMBERS))
            .prop_map(|(i, n)| Piece::Sequence(i, n)),
        2 => (any::<Index>(), proptest::sample::select(FIELDS), proptest::sample::select(VALUES))
            .prop_map(|(i, f, v)| Piece::Field(i, f, v)),
        1 => (1usize..4096, proptest::option::of(any::<Index>()))
            .prop_map(|(extra, padded)| Piece::Huge { extra, padded }),
        1 => (any::<Index>(), prop_oneof![Just(127usize), Just(128), Just(129), 1_000usize..50_000])
            .prop_map(|(i, depth)| Piece::Nested(i, depth)),
        1 => proptest::sample::select(vec!["", " ", "\r", "\t \t", "\u{b}\u{c}"]).prop_map(Piece::Blank),
        2 => proptest::collection::vec(any::<u8>(), 0..300).prop_map(Piece::Soup),
    ]
}

/// `line` with its sequence number replaced by `number` (any JSON text).
fn with_sequence(line: &[u8], number: &str) -> Vec<u8> {
    let text = String::from_utf8(line.to_vec()).unwrap();
    let start = text.find("\"sequence\":").unwrap() + "\"sequence\":".len();
    let end = start + text[start..].find(',').unwrap();
    format!("{}{number}{}", &text[..start], &text[end..]).into_bytes()
}

/// The bytes of a piece (a line without its newline, except for soups).
fn render(piece: &Piece) -> Vec<u8> {
    match piece {
        Piece::Valid(i) => line(*i).to_vec(),
        Piece::Flip(i, edits) => {
            let mut bytes = line(*i).to_vec();
            for (at, byte) in edits {
                let at = at.index(bytes.len());
                bytes[at] = *byte;
            }
            bytes
        }
        Piece::Truncate(i, at) => {
            let bytes = line(*i);
            bytes[..at.index(bytes.len())].to_vec()
        }
        Piece::Splice(a, b, x, y) => {
            let (a, b) = (line(*a), line(*b));
            let mut bytes = a[..x.index(a.len())].to_vec();
            bytes.extend_from_slice(&b[y.index(b.len())..]);
            bytes
        }
        Piece::Insert(i, at, inserted) => {
            let mut bytes = line(*i).to_vec();
            let at = at.index(bytes.len() + 1);
            bytes.splice(at..at, inserted.iter().copied());
            bytes
        }
        Piece::Sequence(i, number) => with_sequence(line(*i), number),
        Piece::Field(i, field, value) => {
            let text = String::from_utf8(line(*i).to_vec()).unwrap();
            let key = format!("\"{field}\":\"");
            let start = text.find(&key).unwrap() + key.len();
            let end = start + text[start..].find('"').unwrap();
            format!("{}{value}{}", &text[..start], &text[end..]).into_bytes()
        }
        Piece::Huge { extra, padded } => {
            let len = MAX_LINE_BYTES + extra;
            match padded {
                Some(i) => {
                    let text = line(*i);
                    let at = text
                        .windows(b"\"payload\"".len())
                        .position(|w| w == b"\"payload\"")
                        .unwrap();
                    let mut bytes = text[..at].to_vec();
                    bytes.resize(len.saturating_sub(text.len() - at).max(at), b' ');
                    bytes.extend_from_slice(&text[at..]);
                    bytes
                }
                None => vec![b'{'; len],
            }
        }
        Piece::Nested(i, depth) => {
            let text = String::from_utf8(line(*i).to_vec()).unwrap();
            let start = text.find("\"payload\":").unwrap() + "\"payload\":".len();
            let end = text.find(",\"metadata\":").unwrap();
            format!(
                "{}{}{}{}",
                &text[..start],
                "[".repeat(*depth),
                "]".repeat(*depth),
                &text[end..]
            )
            .into_bytes()
        }
        Piece::Blank(text) => text.as_bytes().to_vec(),
        Piece::Soup(bytes) => bytes.clone(),
    }
}

/// A file's bytes, shown as (lossy) text when a case fails.
#[derive(Clone)]
struct Bytes(Vec<u8>);

impl std::fmt::Debug for Bytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let text = String::from_utf8_lossy(&self.0);
        if text.len() > 4000 {
            let head: String = text.chars().take(2000).collect();
            write!(f, "{} bytes: {head:?}…", self.0.len())
        } else {
            write!(f, "{} bytes: {text:?}", self.0.len())
        }
    }
}

/// A hostile file: pieces joined by newlines (with or without a final one), or one byte soup.
fn file() -> impl Strategy<Value = Bytes> {
    prop_oneof![
        1 => proptest::collection::vec(any::<u8>(), 0..2048),
        1 => proptest::collection::vec(
            prop_oneof![Just(b'{'), Just(b'}'), Just(b'"'), Just(b':'), Just(b','), Just(b'\n'),
                        Just(b'\r'), Just(b'['), Just(b'\\'), Just(b'0'), any::<u8>()],
            0..2048,
        ),
        6 => (proptest::collection::vec(piece(), 0..30), any::<bool>()).prop_map(|(pieces, final_newline)| {
            let mut bytes = Vec::new();
            for (i, piece) in pieces.iter().enumerate() {
                if i > 0 {
                    bytes.push(b'\n');
                }
                bytes.extend_from_slice(&render(piece));
            }
            if final_newline && !pieces.is_empty() {
                bytes.push(b'\n');
            }
            bytes
        }),
    ]
    .prop_map(Bytes)
}

// ---------------------------------------------------------------------------------------------
// What the reader must make of a file

/// The file's lines as the reader numbers them: split at `\n`, a final newline ends the last
/// line rather than starting an empty one.
fn lines_of(bytes: &[u8]) -> Vec<&[u8]> {
    if bytes.is_empty() {
        return Vec::new();
    }
    let body = bytes.strip_suffix(b"\n").unwrap_or(bytes);
    body.split(|b| *b == b'\n').collect()
}

/// How a line must be judged.
#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    /// Longer than the limit: a `malformed-line` saying so.
    TooLong,
    /// Blank: skipped.
    Blank,
    /// A valid event (it may still break the chain or the rules).
    Event,
    /// Not an event: some finding must carry its line number.
    Rejected,
}

fn verdict(raw: &[u8]) -> Verdict {
    if raw.len() > MAX_LINE_BYTES {
        return Verdict::TooLong;
    }
    let content = raw.strip_suffix(b"\r").unwrap_or(raw);
    if content.iter().all(u8::is_ascii_whitespace) {
        return Verdict::Blank;
    }
    let Ok(text) = std::str::from_utf8(content) else {
        return Verdict::Rejected;
    };
    let Ok(parsed) = serde_json::from_str::<EventLineRef<'_>>(text) else {
        return Verdict::Rejected;
    };
    let decoded = decode(parsed.row());
    if decoded.is_ok() {
        Verdict::Event
    } else {
        Verdict::Rejected
    }
}

fn audit(bytes: &[u8]) -> (Vec<Finding>, billing_store::Summary) {
    let policy = SitePolicy::builtin();
    let mut findings = Vec::new();
    let summary = audit_lines(
        BufReader::with_capacity(4096, bytes),
        Some(&policy),
        &AuditOptions::default(),
        |f| findings.push(f),
        |_| {},
    )
    .expect("audit_lines fails only when its reader does");
    (findings, summary)
}

fn check_file(bytes: &[u8]) -> Result<(), TestCaseError> {
    let (findings, summary) = audit(bytes);
    let lines = lines_of(bytes);
    prop_assert_eq!(summary.records, lines.len() as u64, "every line is counted");
    prop_assert_eq!(
        summary.findings,
        findings.len() as u64,
        "every finding is counted"
    );
    let with_line: HashSet<u64> = findings.iter().filter_map(|f| f.line).collect();
    for f in &findings {
        if let Some(n) = f.line {
            prop_assert!(
                n >= 1 && n <= lines.len() as u64,
                "a finding on a line the file does not have: {}",
                f
            );
        }
    }
    let valid = valid_values();
    let mut events = 0u64;
    for (i, raw) in lines.iter().enumerate() {
        let n = i as u64 + 1;
        let shown = String::from_utf8_lossy(&raw[..raw.len().min(300)]);
        match verdict(raw) {
            Verdict::TooLong => {
                let expected = format!(
                    "line of {} bytes is longer than the {MAX_LINE_BYTES}-byte limit",
                    raw.len()
                );
                prop_assert!(
                    findings.iter().any(|f| f.line == Some(n)
                        && f.code == FindingCode::MalformedLine
                        && f.detail == expected),
                    "line {} ({} bytes) is not reported as too long: {:?}",
                    n,
                    raw.len(),
                    findings
                );
            }
            Verdict::Blank => {}
            Verdict::Rejected => prop_assert!(
                with_line.contains(&n),
                "line {} is not an event but no finding names it: {:?}\nfindings: {:?}",
                n,
                shown,
                findings
            ),
            Verdict::Event => {
                events += 1;
                // A line that does not say what one of the export's lines says (its layout
                // aside: whitespace, key order, escapes) was altered: its hash or its place in
                // the chain says so.
                let said: serde_json::Value = serde_json::from_slice(raw).unwrap();
                if !valid.contains(&said) {
                    prop_assert!(
                        with_line.contains(&n),
                        "line {} was altered but no finding names it: {:?}\nfindings: {:?}",
                        n,
                        shown,
                        findings
                    );
                }
            }
        }
    }
    // Valid events out of workspace order are reported, not counted.
    prop_assert!(
        summary.events <= events,
        "more events counted than there are"
    );

    // The verifier, line by line, without the reader in front of it.
    let policy = SitePolicy::builtin();
    let mut verifier = Verifier::new(Some(&policy));
    for (i, raw) in lines.iter().enumerate() {
        let n = i as u64 + 1;
        if raw.len() > MAX_LINE_BYTES {
            continue;
        }
        let Ok(text) = std::str::from_utf8(raw) else {
            continue;
        };
        let (found, _) = verifier.push_line(n, text);
        if verdict(raw) == Verdict::Rejected {
            prop_assert!(
                found.iter().any(|f| f.line == Some(n)),
                "push_line: line {} is not an event but no finding names it: {:?}",
                n,
                found
            );
        }
    }
    let _ = verifier.finish();
    Ok(())
}

fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: cases(256),
        // Failures are reported with their minimal input, not written into the source tree.
        failure_persistence: None,
        .. ProptestConfig::default()
    })]

    #[test]
    fn the_reader_reports_every_rejected_line_and_never_panics(bytes in file()) {
        check_file(&bytes.0)?;
    }
}

// ---------------------------------------------------------------------------------------------
// Fixed inputs

#[test]
fn the_export_itself_is_clean() {
    let mut bytes = valid_lines().join(&b'\n');
    bytes.push(b'\n');
    let (findings, summary) = audit(&bytes);
    assert!(findings.is_empty(), "{findings:?}");
    assert_eq!(summary.records, valid_lines().len() as u64);
    assert_eq!(summary.events, summary.records);
}

/// Bytes generated on the fly: `len` bytes of `fill`, then `tail`.
struct Generated {
    len: usize,
    fill: u8,
    tail: Vec<u8>,
    pos: usize,
}

impl Read for Generated {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.pos < self.len {
            let n = buf.len().min(self.len - self.pos);
            buf[..n].fill(self.fill);
            self.pos += n;
            return Ok(n);
        }
        let at = self.pos - self.len;
        let n = buf.len().min(self.tail.len() - at);
        buf[..n].copy_from_slice(&self.tail[at..at + n]);
        self.pos += n;
        Ok(n)
    }
}

/// A 20 MB line is reported as too long with its exact length — counted as it streams past,
/// never held (the reader is fed from a generator, so the only copy would be the reader's own) —
/// and the line after it is read and verified as usual.
#[test]
fn a_20_mb_line_is_reported_as_too_long_without_being_held() {
    const LEN: usize = 20 * 1024 * 1024;
    let started = Instant::now();
    let first = &valid_lines()[0];
    let mut tail = vec![b'\n'];
    tail.extend_from_slice(first);
    tail.push(b'\n');
    let reader = Generated {
        len: LEN,
        fill: b'[',
        tail,
        pos: 0,
    };
    let mut findings = Vec::new();
    let summary = audit_lines(
        BufReader::with_capacity(64 * 1024, reader),
        Some(&SitePolicy::builtin()),
        &AuditOptions::default(),
        |f| findings.push(f),
        |_| {},
    )
    .unwrap();
    assert_eq!(summary.records, 2);
    assert_eq!(summary.events, 1, "the line after the long one is verified");
    assert_eq!(findings.len(), 1, "{findings:?}");
    let finding = &findings[0];
    assert_eq!(finding.code, FindingCode::MalformedLine);
    assert_eq!(finding.line, Some(1));
    assert_eq!(
        finding.detail,
        format!("line of {LEN} bytes is longer than the {MAX_LINE_BYTES}-byte limit")
    );
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "took {:?}",
        started.elapsed()
    );
}

/// A sequence at the top of the `u64` range, followed by another event of the same workspace:
/// the verifier must report it (a gap, a mismatch), not overflow computing the next sequence.
#[test]
fn a_sequence_at_the_top_of_u64_does_not_overflow() {
    for number in ["18446744073709551615", "18446744073709551614"] {
        let bytes = [
            with_sequence(&valid_lines()[0], number),
            valid_lines()[1].clone(),
            valid_lines()[1].clone(),
        ]
        .join(&b'\n');
        let result = std::panic::catch_unwind(|| audit(&bytes));
        let (findings, summary) = result.unwrap_or_else(|_| {
            panic!("audit_lines panicked on a line with sequence {number} (verify.rs computes last_sequence + 1)")
        });
        assert_eq!(summary.records, 3);
        assert!(findings.iter().any(|f| f.line == Some(1)), "{findings:?}");
        assert!(findings.iter().any(|f| f.line == Some(2)), "{findings:?}");
    }
}

/// SPEC §5 gives a line seven fields. A line with another one (here what a splice of two lines
/// makes: a second, misspelt `aggregate_type`; or a note a forger adds) is not a stored event:
/// the hash does not cover the extra field and import would drop it silently, so export →
/// import → export would not give the file back. The audit must name the line.
#[test]
fn a_line_with_a_field_the_format_does_not_have_is_reported() {
    let first = String::from_utf8(valid_lines()[0].clone()).unwrap();
    for extra in [
        "\"ggregate_type\":\"workspace\",",
        "\"note\":\"approved by the CFO\",",
        "\"hash\":\"0000\",",
    ] {
        let line = first.replacen('{', &format!("{{{extra}"), 1);
        assert!(
            serde_json::from_str::<serde_json::Value>(&line).is_ok(),
            "{line}"
        );
        let (findings, summary) = audit(line.as_bytes());
        assert_eq!(summary.records, 1);
        assert!(
            findings.iter().any(|f| f.line == Some(1)),
            "a line with the extra field {extra} passes the audit: {line}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Import reads files too

async fn import_agrees_with_audit(bytes: Vec<u8>) -> Result<(), TestCaseError> {
    let (findings, summary) = audit(&bytes);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log.jsonl");
    std::fs::write(&path, &bytes).unwrap();
    let world = World::new();
    let store = BillingStore::open("sqlite::memory:", world.services.clone())
        .await
        .unwrap();
    let imported = store.import(&path, |_, _| {}).await;
    let clean = summary.findings == 0;
    match &imported {
        Ok(report) => {
            prop_assert!(
                clean,
                "import accepted a file the audit reports: {:?}",
                findings
            );
            prop_assert_eq!(report.events, summary.events);
        }
        Err(StoreError::ImportRefused {
            findings: refused,
            total,
        }) => {
            prop_assert!(
                !clean,
                "import refused a file the audit finds clean: {:?}",
                refused
            );
            prop_assert_eq!(*total, summary.findings, "import and audit count alike");
            prop_assert_eq!(store.db().count_events().await.unwrap(), 0);
        }
        Err(other) => {
            return Err(TestCaseError::fail(format!(
                "import of a readable file failed ({other}); the audit says {} finding(s): {:?}",
                summary.findings,
                findings.iter().take(3).collect::<Vec<_>>()
            )))
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: cases(64),
        // Failures are reported with their minimal input, not written into the source tree.
        failure_persistence: None,
        .. ProptestConfig::default()
    })]

    /// `billing import` verifies with the same verifier as `billing audit`: it must accept
    /// exactly the files the audit finds clean, and refuse the others with the same findings.
    #[test]
    fn import_accepts_exactly_the_files_the_audit_finds_clean(bytes in file()) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(import_agrees_with_audit(bytes.0))?;
    }
}
