//! `billing-bench audit`: auditing a large JSON Lines log against bare `serde_json` parsing of
//! the same lines, and the audit's peak memory at two log sizes.
//!
//! - The log is generated with the store's own encoding ([`crate::loggen`]): valid hashes and
//!   chains, so the audit does all its work (decode, hash, link, replay with the site policy)
//!   and must report no findings — any finding fails the benchmark.
//! - Throughput: rounds of A-B-B-A passes over the whole file (A = read each line and parse it
//!   into a `serde_json::Value`, B = [`audit_lines`]), the file in the page cache for both. The
//!   ratio is the median over rounds of (audit lines/s) ÷ (parse lines/s).
//! - The ceiling (issue 18): a third contender, `typed_hash`, does what an audit cannot do
//!   without — each line parsed borrowed into its fields ([`EventLineRef`]), the payload into a
//!   typed [`WorkspaceEvent`] (the domain needs it to replay), the metadata into borrowed
//!   strings ([`MetadataText`]), and SHA-256 over the line's bytes, already in memory (about as
//!   many bytes as an event's hash covers) — and nothing else: no canonical check, no chain, no
//!   replay. It runs A-B-B-A against the `Value` parse and against the audit in the same rounds
//!   (`typed_hash_vs_raw_parse`, `vs_typed_hash`), so `vs_raw_parse` can be read as how close a
//!   typed decode with its hash gets to the bare parse, times how close the audit gets to that.
//!   Once, outside the ratios, its two halves alone: the typed decode without the hash, and
//!   reading the lines with only the hash.
//! - Memory: the audit runs in a child process (this binary's hidden `audit-child FILE`) that
//!   prints its peak RSS, once on the N-event file and once on an N/10-event file.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::time::Instant;

use billing_domain::{SitePolicy, WorkspaceEvent};
use billing_store::audit::{audit_lines, AuditOptions, Line, LineReader, MAX_LINE_BYTES};
use billing_store::chain::sha256_hex;
use billing_store::record::{EventLineRef, MetadataText};
use serde_json::{json, Value};

use crate::loggen::{write_log, Log};
use crate::measure::{
    child_json, cpu_seconds, json_f64, median_min_max, peak_rss_kib, round3, Tally,
};

/// The hidden subcommand that audits one file in a child process and reports its peak RSS.
pub(crate) const CHILD: &str = "audit-child";

/// Reads `path` line by line and parses every line into a `serde_json::Value`; returns the
/// number of lines.
fn raw_parse(path: &Path) -> Result<u64, String> {
    let file = File::open(path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    let mut reader = BufReader::new(file);
    let mut line = String::with_capacity(2048);
    let mut lines = 0u64;
    loop {
        line.clear();
        let n = reader
            .read_line(&mut line)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        if n == 0 {
            break;
        }
        let value: Value = serde_json::from_str(&line)
            .map_err(|e| format!("line {} is not JSON: {e}", lines + 1))?;
        std::hint::black_box(&value);
        lines += 1;
    }
    Ok(lines)
}

/// What [`typed`] does with each line.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Typed {
    /// The typed, borrowed decode and SHA-256 of the line (the ceiling contender).
    DecodeAndHash,
    /// The typed, borrowed decode only.
    DecodeOnly,
    /// SHA-256 of the line only.
    HashOnly,
}

/// Reads `path` as the audit does ([`LineReader`], one reused buffer, UTF-8 checked) and, per
/// line, does `what`; returns the number of lines.
fn typed(path: &Path, what: Typed) -> Result<u64, String> {
    let file = File::open(path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    let mut reader = LineReader::new(BufReader::new(file), MAX_LINE_BYTES);
    let mut lines = 0u64;
    loop {
        let next = reader
            .next_line()
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let Some((n, line)) = next else { break };
        let Line::Bytes(bytes) = line else {
            return Err(format!("line {n} is too long"));
        };
        let text = std::str::from_utf8(bytes).map_err(|e| format!("line {n}: {e}"))?;
        if what != Typed::HashOnly {
            let fields: EventLineRef<'_> =
                serde_json::from_str(text).map_err(|e| format!("line {n}: {e}"))?;
            let event: WorkspaceEvent = serde_json::from_str(fields.payload.get())
                .map_err(|e| format!("line {n}: payload: {e}"))?;
            let metadata: MetadataText<'_> = serde_json::from_str(fields.metadata.get())
                .map_err(|e| format!("line {n}: metadata: {e}"))?;
            std::hint::black_box((&fields, &event, &metadata));
        }
        if what != Typed::DecodeOnly {
            std::hint::black_box(sha256_hex(bytes));
        }
        lines += 1;
    }
    Ok(lines)
}

/// Audits `path` with the built-in site policy; returns the number of lines, failing unless it
/// is `expected` and the audit found nothing.
fn audit(path: &Path, expected: u64) -> Result<u64, String> {
    let file = File::open(path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    let policy = SitePolicy::builtin();
    let mut first = None;
    let summary = audit_lines(
        BufReader::new(file),
        Some(&policy),
        &AuditOptions::default(),
        |finding| {
            if first.is_none() {
                first = Some(finding.to_string());
            }
        },
        |_| {},
    )
    .map_err(|e| format!("audit of {} failed: {e}", path.display()))?;
    if summary.findings > 0 {
        return Err(format!(
            "the generated log {} has {} audit findings (first: {}); the generator is wrong",
            path.display(),
            summary.findings,
            first.unwrap_or_default()
        ));
    }
    if summary.records != expected || summary.events != expected {
        return Err(format!(
            "the audit read {} lines ({} events) of {}, expected {expected}",
            summary.records,
            summary.events,
            path.display()
        ));
    }
    Ok(summary.records)
}

/// The child process: audits `path`, checks it is clean, and returns a JSON object with its
/// line count and this process's peak RSS.
///
/// # Errors
/// The file cannot be read, or it has findings.
pub(crate) fn child(path: &str) -> Result<String, String> {
    let path = Path::new(path);
    let before = peak_rss_kib()?;
    let file = File::open(path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    let policy = SitePolicy::builtin();
    let summary = audit_lines(
        BufReader::new(file),
        Some(&policy),
        &AuditOptions::default(),
        |_| {},
        |_| {},
    )
    .map_err(|e| format!("audit of {} failed: {e}", path.display()))?;
    if summary.findings > 0 {
        return Err(format!(
            "{} has {} audit findings",
            path.display(),
            summary.findings
        ));
    }
    Ok(json!({
        "records": summary.records,
        "peak_rss_kib_before": before,
        "peak_rss_kib": peak_rss_kib()?,
    })
    .to_string())
}

/// The hidden subcommand that runs one pass of one contender over a file, for profilers.
pub(crate) const PASS: &str = "audit-pass";

/// One pass of `which` (`raw_parse`, `audit`, `typed_hash`, `typed_decode`, `hash`) over
/// `path`; returns a JSON object with the lines read and the pass's seconds. Nothing is
/// compared: this is for `perf` and `valgrind --tool=callgrind`, not for figures.
///
/// # Errors
/// An unknown contender, or the pass fails.
pub(crate) fn pass(which: &str, path: &str) -> Result<String, String> {
    let path = Path::new(path);
    let start = Instant::now();
    let lines = match which {
        "raw_parse" => raw_parse(path)?,
        // The audit child's own work (audit, no findings allowed), without its RSS figures.
        "audit" => return child(&path.display().to_string()),
        "typed_hash" => typed(path, Typed::DecodeAndHash)?,
        "typed_decode" => typed(path, Typed::DecodeOnly)?,
        "hash" => typed(path, Typed::HashOnly)?,
        other => {
            return Err(format!(
                "no pass named {other}; one of raw_parse, audit, typed_hash, typed_decode, hash"
            ))
        }
    };
    Ok(json!({
        "bench": PASS,
        "pass": which,
        "lines": lines,
        "secs": round3(start.elapsed().as_secs_f64()),
    })
    .to_string())
}

/// Runs [`child`] in a new process of this binary; returns (lines, peak RSS before the audit,
/// peak RSS) in KiB.
fn run_child(path: &Path) -> Result<(u64, u64, u64), String> {
    let last = child_json("audit", &[std::ffi::OsStr::new(CHILD), path.as_os_str()])?;
    let field = |k: &str| json_f64("audit", &last, k).map(|n| n as u64);
    Ok((
        field("records")?,
        field("peak_rss_kib_before")?,
        field("peak_rss_kib")?,
    ))
}

/// Runs the `audit` benchmark; returns the JSON object to print last.
///
/// # Errors
/// The log cannot be written or read, or the audit finds anything in it.
pub(crate) fn run(quick: bool) -> Result<String, String> {
    let (events, rounds) = if quick {
        (200_000u64, 3)
    } else {
        (1_000_000u64, 3)
    };
    let small_events = events / 10;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let big = dir.path().join("audit-big.jsonl");
    let small = dir.path().join("audit-small.jsonl");

    let start = Instant::now();
    let log: Log = write_log(&big, events)?;
    let gen_secs = start.elapsed().as_secs_f64();
    let small_log = write_log(&small, small_events)?;
    eprintln!(
        "audit: {} events in {} workspaces, {:.0} MB ({:.0} bytes/line), generated in {:.1}s; \
         {rounds} A-B-B-A rounds over the whole file; {cores} cores",
        log.events,
        log.workspaces,
        log.bytes as f64 / 1e6,
        log.bytes as f64 / log.events.max(1) as f64,
        gen_secs
    );

    // Warm-up (untimed): the page cache, the allocator, and a first check that both logs are
    // clean.
    raw_parse(&big)?;
    typed(&big, Typed::DecodeAndHash)?;
    audit(&big, log.events)?;
    audit(&small, small_log.events)?;

    // Contenders: 0 = raw parse, 1 = audit, 2 = typed decode + hash. Each round runs the pairs
    // (parse, audit), (parse, typed), (typed, audit) A-B-B-A, in that order.
    const PAIRS: [(usize, usize); 3] = [(0, 1), (0, 2), (2, 1)];
    let mut tallies = [Tally::default(); 3];
    let mut ratios: [Vec<f64>; 3] = Default::default();
    let pass = |side: usize| match side {
        0 => raw_parse(&big),
        1 => audit(&big, log.events),
        _ => typed(&big, Typed::DecodeAndHash),
    };
    for _ in 0..rounds {
        for (p, &(base, other)) in PAIRS.iter().enumerate() {
            let mut rates = [0.0f64; 2];
            for side in [base, other, other, base] {
                let cpu = cpu_seconds();
                let start = Instant::now();
                let lines = pass(side)?;
                let secs = start.elapsed().as_secs_f64();
                if lines != log.events {
                    return Err(format!("a pass read {lines} lines of {}", log.events));
                }
                let tally = &mut tallies[side];
                tally.ops += usize::try_from(lines).unwrap_or(usize::MAX);
                tally.secs += secs;
                tally.cpu += cpu_seconds() - cpu;
                rates[usize::from(side == other)] += lines as f64 / secs;
            }
            if rates[0] > 0.0 {
                ratios[p].push(rates[1] / rates[0]);
            }
        }
    }
    let [parse, audited, typed_hash] = tallies;
    for (name, t) in [
        ("raw_parse", &parse),
        ("audit", &audited),
        ("typed_hash", &typed_hash),
    ] {
        eprintln!(
            "  {name:<10} {:>9.0} lines/s  ({} lines in {:.2}s; CPU {:.2} µs/line)",
            t.rate(),
            t.ops,
            t.secs,
            t.cpu_us_per_op()
        );
    }
    let mut medians = [0.0f64; 3];
    for (p, (name, r)) in [
        "audit / raw_parse",
        "typed_hash / raw_parse",
        "audit / typed_hash",
    ]
    .iter()
    .zip(&ratios)
    .enumerate()
    {
        let (median, lo, hi) = median_min_max(r);
        medians[p] = median;
        eprintln!(
            "  {name}: median {median:.3} over {} rounds (min {lo:.3}, max {hi:.3})",
            r.len()
        );
    }
    let [ratio, typed_vs_parse, vs_typed] = medians;
    // The ceiling's halves, once each, outside the ratios.
    let once = |what: Typed| -> Result<f64, String> {
        let start = Instant::now();
        let lines = typed(&big, what)?;
        Ok(lines as f64 / start.elapsed().as_secs_f64())
    };
    let (decode_only, hash_only) = (once(Typed::DecodeOnly)?, once(Typed::HashOnly)?);
    eprintln!(
        "  typed_hash's halves alone (once): typed decode {decode_only:.0} lines/s; reading \
         with SHA-256 only {hash_only:.0} lines/s"
    );

    let (big_lines, big_before, big_peak) = run_child(&big)?;
    let (small_lines, small_before, small_peak) = run_child(&small)?;
    if big_lines != log.events || small_lines != small_log.events {
        return Err(format!(
            "the audit child read {big_lines} and {small_lines} lines, expected {} and {}",
            log.events, small_log.events
        ));
    }
    let rss_ratio = if small_peak > 0 {
        big_peak as f64 / small_peak as f64
    } else {
        0.0
    };
    eprintln!(
        "  peak RSS of the audit process: {big_peak} KiB for {} events, {small_peak} KiB for {} \
         (before auditing: {big_before} / {small_before} KiB); ratio {rss_ratio:.3}",
        log.events, small_log.events
    );

    Ok(json!({
        "bench": "audit",
        "vs_raw_parse": round3(ratio),
        "rss_ratio": round3(rss_ratio),
        "events": log.events,
        "workspaces": log.workspaces,
        "file_bytes": log.bytes,
        "typed_hash_vs_raw_parse": round3(typed_vs_parse),
        "vs_typed_hash": round3(vs_typed),
        "audit_lines_per_s": audited.rate().round(),
        "raw_parse_lines_per_s": parse.rate().round(),
        "typed_hash_lines_per_s": typed_hash.rate().round(),
        "typed_decode_only_lines_per_s": decode_only.round(),
        "hash_only_lines_per_s": hash_only.round(),
        "audit_cpu_us_per_line": round3(audited.cpu_us_per_op()),
        "raw_parse_cpu_us_per_line": round3(parse.cpu_us_per_op()),
        "typed_hash_cpu_us_per_line": round3(typed_hash.cpu_us_per_op()),
        "peak_rss_kib": big_peak,
        "peak_rss_kib_tenth": small_peak,
        "generate_events_per_s": (log.events as f64 / gen_secs.max(1e-9)).round(),
        "quick": quick,
    })
    .to_string())
}
