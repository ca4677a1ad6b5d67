//! `billing-bench audit`: auditing a large JSON Lines log against bare `serde_json` parsing of
//! the same lines, and the audit's peak memory at two log sizes.
//!
//! - The log is generated with the store's own encoding ([`crate::loggen`]): valid hashes and
//!   chains, so the audit does all its work (decode, hash, link, replay with the site policy)
//!   and must report no findings — any finding fails the benchmark.
//! - Throughput: rounds of A-B-B-A passes over the whole file (A = read each line and parse it
//!   into a `serde_json::Value`, B = [`audit_lines`]), the file in the page cache for both. The
//!   ratio is the median over rounds of (audit lines/s) ÷ (parse lines/s).
//! - Memory: the audit runs in a child process (this binary's hidden `audit-child FILE`) that
//!   prints its peak RSS, once on the N-event file and once on an N/10-event file.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::time::Instant;

use billing_domain::SitePolicy;
use billing_store::audit::{audit_lines, AuditOptions};
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
    audit(&big, log.events)?;
    audit(&small, small_log.events)?;

    let mut parse = Tally::default();
    let mut audited = Tally::default();
    let mut ratios = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let mut rates = [0.0f64; 2];
        for side in [0usize, 1, 1, 0] {
            let cpu = cpu_seconds();
            let start = Instant::now();
            let lines = if side == 0 {
                raw_parse(&big)?
            } else {
                audit(&big, log.events)?
            };
            let secs = start.elapsed().as_secs_f64();
            let tally = if side == 0 { &mut parse } else { &mut audited };
            tally.ops += usize::try_from(lines).unwrap_or(usize::MAX);
            tally.secs += secs;
            tally.cpu += cpu_seconds() - cpu;
            rates[side] += lines as f64 / secs;
        }
        if rates[0] > 0.0 {
            ratios.push(rates[1] / rates[0]);
        }
    }
    for (name, t) in [("raw_parse", &parse), ("audit", &audited)] {
        eprintln!(
            "  {name:<10} {:>9.0} lines/s  ({} lines in {:.2}s; CPU {:.2} µs/line)",
            t.rate(),
            t.ops,
            t.secs,
            t.cpu_us_per_op()
        );
    }
    let (ratio, lo, hi) = median_min_max(&ratios);
    eprintln!(
        "  audit / raw_parse: median {ratio:.3} over {} rounds (min {lo:.3}, max {hi:.3})",
        ratios.len()
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
        "audit_lines_per_s": audited.rate().round(),
        "raw_parse_lines_per_s": parse.rate().round(),
        "audit_cpu_us_per_line": round3(audited.cpu_us_per_op()),
        "raw_parse_cpu_us_per_line": round3(parse.cpu_us_per_op()),
        "peak_rss_kib": big_peak,
        "peak_rss_kib_tenth": small_peak,
        "generate_events_per_s": (log.events as f64 / gen_secs.max(1e-9)).round(),
        "quick": quick,
    })
    .to_string())
}
