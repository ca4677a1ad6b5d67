//! `billing-reliability consumed --db URL --lines FILE --kills K`: after a consumer
//! (`billing events --subscription NAME --follow`) was killed `K` times and restarted, and then
//! run to the end, checks what it wrote against the store: every committed event reached it,
//! nothing that was not committed did, each workspace's events came first in sequence order, at
//! most `--redeliveries-per-kill` events per kill came twice (handled, the checkpoint not yet
//! saved: one for `billing events`, the attempts in flight for `billing deliver`), and at most
//! one line per kill was cut short by the kill. The webhook round checks the crash test's
//! receiver's file (`receive`) the same way.

use std::collections::{HashMap, HashSet};

use billing_store::{Db, Position, StoreOptions};
use serde_json::{json, Value};

/// Runs the check; returns the JSON report and whether it found no anomaly.
pub(crate) async fn run(
    url: &str,
    lines: &std::path::Path,
    kills: u64,
    redeliveries_per_kill: u64,
) -> Result<(Value, bool), String> {
    let db = Db::connect(url, &StoreOptions::default())
        .await
        .map_err(|e| format!("cannot open {url}: {e}"))?;
    let mut committed: HashSet<(String, u64)> = HashSet::new();
    let mut at = Position::START;
    loop {
        let rows = db
            .read_committed(at, 5_000)
            .await
            .map_err(|e| e.to_string())?;
        let Some(last) = rows.last() else { break };
        at = last.position;
        committed.extend(
            rows.into_iter()
                .map(|r| (r.row.aggregate_id, r.row.sequence)),
        );
    }
    let text = std::fs::read_to_string(lines).map_err(|e| format!("{}: {e}", lines.display()))?;
    let mut anomalies: Vec<String> = Vec::new();
    let (mut torn, mut redelivered) = (0u64, 0u64);
    let mut seen: HashSet<(String, u64)> = HashSet::new();
    let mut last_new: HashMap<String, u64> = HashMap::new();
    for (n, line) in text.lines().enumerate() {
        if let Some(bad) = line.strip_prefix("BAD ") {
            anomalies.push(format!(
                "line {}: the receiver refused a request: {bad}",
                n + 1
            ));
            continue;
        }
        let Ok(v) = serde_json::from_str::<Value>(line) else {
            torn += 1;
            continue;
        };
        let (Some(workspace), Some(sequence)) =
            (v["aggregate_id"].as_str(), v["sequence"].as_u64())
        else {
            anomalies.push(format!("line {}: not an event line", n + 1));
            continue;
        };
        let key = (workspace.to_owned(), sequence);
        if !committed.contains(&key) {
            anomalies.push(format!(
                "line {}: {workspace} #{sequence} was never committed",
                n + 1
            ));
        }
        if !seen.insert(key) {
            redelivered += 1;
            continue;
        }
        let previous = last_new.insert(workspace.to_owned(), sequence).unwrap_or(0);
        if sequence != previous + 1 {
            anomalies.push(format!(
                "line {}: {workspace} #{sequence} came first after #{previous}",
                n + 1
            ));
        }
    }
    let missing = committed.difference(&seen).count();
    if missing > 0 {
        anomalies.push(format!(
            "{missing} committed events never reached the consumer"
        ));
    }
    let allowed = kills.saturating_mul(redeliveries_per_kill);
    if redelivered > allowed {
        anomalies.push(format!(
            "{redelivered} events came twice after {kills} kills (at most {allowed})"
        ));
    }
    if torn > kills {
        anomalies.push(format!("{torn} lines cut short after {kills} kills"));
    }
    let ok = anomalies.is_empty();
    Ok((
        json!({
            "consumed": if ok { "ok" } else { "anomalies" },
            "committed": committed.len(),
            "received": seen.len(),
            "redelivered": redelivered,
            "torn_lines": torn,
            "kills": kills,
            "redeliveries_allowed": allowed,
            "anomalies": anomalies,
        }),
        ok,
    ))
}
