//! `billing-bench transfer`: export and import stream, so their memory stays flat as the log
//! grows.
//!
//! - Two logs generated with the store's own encoding ([`crate::loggen`]): N events and N/10
//!   (1,000,000 and 100,000; 100,000 and 10,000 with `--quick`).
//! - For each backend (PostgreSQL, a fresh database per run; SQLite, a fresh file) and each log:
//!   a child process of this binary (hidden `transfer-child`) imports the log into the empty
//!   store through [`BillingStore::import`] (verify, then write all or nothing), and another child
//!   exports the store through [`BillingStore::export`]. Each child reports its event count, its
//!   time and its peak RSS.
//! - The export must be byte-identical to the imported log (export → import → export is the
//!   identity, SPEC §5); any difference fails the benchmark.
//! - Figures: peak RSS at N over peak RSS at N/10, per backend and direction (1.0 is perfectly
//!   flat), and events/s of each.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read};
use std::path::Path;
use std::time::Instant;

use billing_store::BillingStore;
use serde_json::{json, Value};

use crate::loggen::write_log;
use crate::measure::{child_json, json_f64, peak_rss_kib, round3};
use crate::pg::{drop_database, fresh_database};

/// The hidden subcommand that imports or exports in a child process and reports its peak RSS.
pub(crate) const CHILD: &str = "transfer-child";

/// The child process: `import URL FILE` or `export URL FILE`; returns a JSON object with the
/// event count, the seconds it took and this process's peak RSS (before opening the store, and
/// at the end).
///
/// # Errors
/// The store cannot be opened, the import is refused, the file cannot be read or written.
pub(crate) async fn child(direction: &str, url: &str, file: &str) -> Result<String, String> {
    let before = peak_rss_kib()?;
    let store = BillingStore::open(url, crate::contender::services())
        .await
        .map_err(|e| format!("cannot open {url}: {e}"))?;
    let path = Path::new(file);
    let start = Instant::now();
    let events = match direction {
        "import" => {
            store
                .import(path, |_, _| {})
                .await
                .map_err(|e| format!("import of {file} failed: {e}"))?
                .events
        }
        "export" => {
            let out = File::create(path).map_err(|e| format!("cannot create {file}: {e}"))?;
            let mut out = BufWriter::new(out);
            store
                .export(&mut out, |_| {})
                .await
                .map_err(|e| format!("export to {file} failed: {e}"))?
        }
        other => return Err(format!("unknown direction {other}")),
    };
    let secs = start.elapsed().as_secs_f64();
    Ok(json!({
        "events": events,
        "secs": secs,
        "peak_rss_kib_before": before,
        "peak_rss_kib": peak_rss_kib()?,
    })
    .to_string())
}

/// What one child run reported.
#[derive(Clone, Copy, Debug)]
struct Run {
    events: u64,
    secs: f64,
    peak_kib: u64,
}

/// Runs [`child`] in a new process of this binary.
fn run_child(direction: &str, url: &str, file: &Path) -> Result<Run, String> {
    let args = [CHILD, direction, url].map(std::ffi::OsStr::new);
    let last = child_json(direction, &[args[0], args[1], args[2], file.as_os_str()])?;
    let num = |k: &str| json_f64(direction, &last, k);
    Ok(Run {
        events: num("events")? as u64,
        secs: num("secs")?,
        peak_kib: num("peak_rss_kib")? as u64,
    })
}

/// Whether two files hold the same bytes (read in chunks, never whole).
fn same_bytes(a: &Path, b: &Path) -> Result<bool, String> {
    let open = |p: &Path| {
        File::open(p)
            .map(|f| BufReader::with_capacity(1 << 20, f))
            .map_err(|e| format!("cannot open {}: {e}", p.display()))
    };
    let (mut ra, mut rb) = (open(a)?, open(b)?);
    let (mut ba, mut bb) = (vec![0u8; 1 << 16], vec![0u8; 1 << 16]);
    loop {
        let na = read_full(&mut ra, &mut ba).map_err(|e| e.to_string())?;
        let nb = read_full(&mut rb, &mut bb).map_err(|e| e.to_string())?;
        if na != nb || ba[..na] != bb[..nb] {
            return Ok(false);
        }
        if na == 0 {
            return Ok(true);
        }
    }
}

/// Fills `buf` as far as the reader allows; returns how much it read (less only at the end).
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

/// Imports `log` into a fresh store at `url`, exports it again and checks the bytes; returns
/// (import, export).
fn round_trip(url: &str, log: &Path, events: u64, out: &Path) -> Result<(Run, Run), String> {
    let import = run_child("import", url, log)?;
    let export = run_child("export", url, out)?;
    if import.events != events || export.events != events {
        return Err(format!(
            "{url}: imported {} and exported {} events of {events}",
            import.events, export.events
        ));
    }
    if !same_bytes(log, out)? {
        return Err(format!(
            "{url}: the export of an imported log differs from the log ({} vs {})",
            out.display(),
            log.display()
        ));
    }
    std::fs::remove_file(out).map_err(|e| e.to_string())?;
    Ok((import, export))
}

/// Runs the `transfer` benchmark; returns the JSON object to print last.
///
/// # Errors
/// A log cannot be written, a child fails, a count is short, or an export differs from its log.
pub(crate) async fn run(quick: bool) -> Result<String, String> {
    let big_events: u64 = if quick { 100_000 } else { 1_000_000 };
    let small_events = big_events / 10;
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let big = dir.path().join("transfer-big.jsonl");
    let small = dir.path().join("transfer-small.jsonl");
    let big_log = write_log(&big, big_events)?;
    write_log(&small, small_events)?;
    let out = dir.path().join("transfer-export.jsonl");
    eprintln!(
        "transfer: import then export of {} and {small_events} events ({:.0} MB and {:.0} MB), \
         each in its own process, on PostgreSQL and on SQLite",
        big_log.events,
        big_log.bytes as f64 / 1e6,
        big_log.bytes as f64 / 1e7,
    );

    let mut fields = serde_json::Map::new();
    fields.insert("bench".into(), json!("transfer"));
    let mut worst: f64 = 0.0;
    for backend in ["postgres", "sqlite"] {
        let mut runs = Vec::new();
        for (label, log, events) in [("big", &big, big_events), ("small", &small, small_events)] {
            let url = if backend == "postgres" {
                fresh_database(&format!("transfer_{label}")).await?
            } else {
                format!(
                    "sqlite://{}",
                    dir.path().join(format!("{label}.db")).display()
                )
            };
            let result = round_trip(&url, log, events, &out);
            if backend == "postgres" {
                drop_database(&url).await;
            }
            runs.push(result?);
        }
        let [(big_import, big_export), (small_import, small_export)] = [runs[0], runs[1]];
        for (direction, b, s) in [
            ("import", big_import, small_import),
            ("export", big_export, small_export),
        ] {
            let ratio = b.peak_kib as f64 / s.peak_kib.max(1) as f64;
            worst = worst.max(ratio);
            let rate = b.events as f64 / b.secs.max(1e-9);
            eprintln!(
                "  {backend:<8} {direction}: peak RSS {} KiB at {} events, {} KiB at {} \
                 (ratio {ratio:.3}); {rate:.0} events/s",
                b.peak_kib, b.events, s.peak_kib, s.events
            );
            fields.insert(
                format!("{backend}_{direction}_rss_ratio"),
                json!(round3(ratio)),
            );
            fields.insert(
                format!("{backend}_{direction}_peak_rss_kib"),
                json!(b.peak_kib),
            );
            fields.insert(
                format!("{backend}_{direction}_events_per_s"),
                json!(rate.round()),
            );
        }
    }
    eprintln!("  exports byte-identical to the imported logs: yes");
    fields.insert("rss_ratio_max".into(), json!(round3(worst)));
    fields.insert("events".into(), json!(big_events));
    fields.insert("quick".into(), json!(quick));
    Ok(Value::Object(fields).to_string())
}
