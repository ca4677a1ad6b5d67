//! The reconciliation: the writers' reports against what the store holds (totals, per-workspace
//! event ranges), the audit, the views and the outbox; the JSON summary.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;

use super::writer::{Outcome, WriterReport};
use super::Ctx;
use crate::check::Anomalies;
use crate::facts::{audit, outbox_check, views_rebuild_equal, StoreFacts};
use crate::stats::Latency;

/// Reconciles the writers' reports with the store; returns the JSON summary and whether no
/// invariant broke.
pub(super) async fn reconcile(
    ctx: &Ctx,
    reports: Vec<WriterReport>,
    load_seconds: f64,
    started: Instant,
) -> Result<(serde_json::Value, bool), String> {
    let mut anomalies = Anomalies::default();
    let mut ok_latency = Vec::new();
    let mut refused_latency = Vec::new();
    let mut records = Vec::new();
    let mut refusals: BTreeMap<&'static str, u64> = BTreeMap::new();
    for r in reports {
        for (code, n) in r.refusals {
            *refusals.entry(code).or_default() += n;
        }
        for (kind, detail) in r.anomalies {
            anomalies.add(kind, detail);
        }
        ok_latency.extend(r.ok_latency);
        refused_latency.extend(r.refused_latency);
        records.extend(r.records);
    }
    let db = ctx.embedded.db();
    let facts = StoreFacts::read(db, &ctx.prefix).await?;
    anomalies.add_all("records", facts.consistency());
    // Totals: every acknowledged command is recorded with the events its writer saw; no refused
    // command wrote anything; nothing is recorded that no writer acknowledged.
    let (mut ok, mut refused, mut failed) = (0u64, 0u64, 0u64);
    let mut seen: HashMap<&str, Vec<(u64, u64)>> = HashMap::new();
    let mut acknowledged: HashMap<&str, ()> = HashMap::new();
    for r in &records {
        let row = facts.commands.get(&r.command_id);
        match r.outcome {
            Outcome::Ok { first, last } => {
                ok += 1;
                acknowledged.insert(r.command_id.as_str(), ());
                seen.entry(r.workspace.as_str())
                    .or_default()
                    .push((first, last));
                match row {
                    Some(row)
                        if row.workspace == r.workspace
                            && (row.first, row.last) == (first, last) => {}
                    other => anomalies.add(
                        "totals",
                        format!(
                            "{}: acknowledged {first}..{last} on {} but recorded {other:?}",
                            r.command_id, r.workspace
                        ),
                    ),
                }
            }
            Outcome::Refused => {
                refused += 1;
                if let Some(row) = row {
                    anomalies.add(
                        "refused-wrote",
                        format!("{}: refused but recorded {row:?}", r.command_id),
                    );
                }
            }
            Outcome::Failed => failed += 1,
        }
    }
    for id in facts.commands.keys() {
        if !acknowledged.contains_key(id.as_str()) {
            anomalies.add(
                "totals",
                format!("{id}: recorded but no writer saw it succeed"),
            );
        }
    }
    if ok != facts.commands.len() as u64 {
        anomalies.add(
            "totals",
            format!(
                "{ok} commands acknowledged but {} recorded",
                facts.commands.len()
            ),
        );
    }
    // Per workspace: the writers' ranges tile 1..=events exactly (no two writers won the same
    // version, nothing lost), and match what the store holds.
    let mut workspaces: BTreeMap<&str, u64> = BTreeMap::new();
    for (workspace, mut ranges) in seen {
        ranges.sort_unstable();
        let mut next = 1u64;
        for (first, last) in &ranges {
            if *first != next {
                anomalies.add(
                    "totals",
                    format!("{workspace}: writers saw ranges {ranges:?}: not contiguous from 1"),
                );
                break;
            }
            next = last + 1;
        }
        workspaces.insert(workspace, next - 1);
    }
    for (workspace, events) in &facts.events_per_workspace {
        let saw = workspaces.remove(workspace.as_str()).unwrap_or(0);
        if saw != *events {
            anomalies.add(
                "totals",
                format!("{workspace}: the store holds {events} events, the writers saw {saw}"),
            );
        }
    }
    for (workspace, saw) in workspaces {
        anomalies.add(
            "totals",
            format!("{workspace}: the writers saw {saw} events, the store holds none"),
        );
    }
    let audit = audit(db, &ctx.policy).await?;
    anomalies.add_audit(&audit);
    let views = views_rebuild_equal(&ctx.embedded, &facts, &ctx.prefix).await?;
    anomalies.add_all("views", views.mismatches.iter().cloned());
    let outbox = outbox_check(&ctx.embedded, &facts, &ctx.prefix).await?;
    anomalies.add_all("outbox", outbox.mismatches.iter().cloned());
    let mut all_latency: Vec<Duration> =
        ok_latency.iter().chain(&refused_latency).copied().collect();
    let acknowledged_latency = Latency::of(&mut all_latency);
    let commands = records.len() as u64;
    let t = &ctx.totals;
    let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
    let passed = anomalies.total == 0;
    let summary = json!({
        "soak": if passed { "ok" } else { "anomalies" },
        "writers": ctx.args.writers,
        "workspaces": ctx.args.workspaces,
        "hot_workspaces": ctx.hot.len(),
        "commands": commands,
        "acknowledged_ok": ok,
        "acknowledged_refused": refused,
        "refusals_by_rule": refusals,
        "failed": failed,
        "command_records": facts.commands.len(),
        "events": facts.events,
        "race_rounds": ctx.races,
        "race_commands": load(&t.races),
        "conflicts": load(&t.conflicts),
        "conflicts_exhausting_helper": load(&t.conflicts_exhausted),
        "subscription_changes": load(&t.subscriptions),
        "commercial": audit.commercial,
        "audit_findings": audit.findings,
        "views": views,
        "outbox": outbox,
        "latency_ms": {
            "acknowledged": acknowledged_latency,
            "ok": Latency::of(&mut ok_latency),
            "refused": Latency::of(&mut refused_latency),
        },
        "commands_per_second": commands as f64 / load_seconds.max(1e-9),
        "load_seconds": load_seconds,
        "seconds": started.elapsed().as_secs_f64(),
        "month_ms": ctx.args.month_ms,
        "seed": ctx.args.seed,
        "prefix": ctx.prefix,
        "anomalies": anomalies,
    });
    Ok((summary, passed))
}
