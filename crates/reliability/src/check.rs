//! `billing-reliability check`: after a crash, everything the journals say against everything the
//! store holds — acknowledged commands present, refused ones absent, the audit clean, the
//! unacknowledged ones safely re-sent, the views rebuild-equal and one reminder per upgrade.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use billing_adapters::Embedded;
use billing_domain::{SitePolicy, WorkspaceId};
use billing_store::{command_hash, RetryPolicy, StoreOptions};
use serde::Serialize;
use serde_json::json;

use crate::exec::{persist, settle, Retries, Settled};
use crate::facts::{audit, outbox_check, views_rebuild_equal, AuditFigures, StoreFacts};
use crate::journal::{Ack, Journals};

/// What to check.
#[derive(Debug)]
pub(crate) struct CheckArgs {
    /// Database URL.
    pub(crate) db: String,
    /// Journals of the runs against it.
    pub(crate) journals: Vec<PathBuf>,
    /// How long to wait for a database that is still coming back.
    pub(crate) patience: Duration,
}

/// Anomalies by kind, with the first few described.
#[derive(Debug, Default, Serialize)]
pub(crate) struct Anomalies {
    /// How many, in all.
    pub(crate) total: u64,
    /// How many of each kind.
    pub(crate) by_kind: BTreeMap<&'static str, u64>,
    /// The first ones, described.
    pub(crate) first: Vec<String>,
}

impl Anomalies {
    /// Records one anomaly.
    pub(crate) fn add(&mut self, kind: &'static str, detail: impl Into<String>) {
        self.total += 1;
        *self.by_kind.entry(kind).or_default() += 1;
        if self.first.len() < 50 {
            self.first.push(format!("{kind}: {}", detail.into()));
        }
    }

    /// Records every finding of an audit (described up to the audit's own limit).
    pub(crate) fn add_audit(&mut self, audit: &AuditFigures) {
        self.add_all("audit", audit.first_findings.iter().cloned());
        let rest = audit
            .findings
            .saturating_sub(audit.first_findings.len() as u64);
        if rest > 0 {
            self.total += rest;
            *self.by_kind.entry("audit").or_default() += rest;
        }
    }

    /// Records each of `details` as an anomaly of `kind`.
    pub(crate) fn add_all(
        &mut self,
        kind: &'static str,
        details: impl IntoIterator<Item = String>,
    ) {
        for d in details {
            self.add(kind, d);
        }
    }
}

#[derive(Debug, Default, Serialize)]
struct Counts {
    journal_lines: u64,
    torn_lines: u64,
    commands_sent: u64,
    acked_ok: u64,
    acked_ok_replayed: u64,
    acked_refused: u64,
    unacknowledged: u64,
    unacknowledged_found_committed: u64,
    unacknowledged_not_committed: u64,
    resent_unacknowledged_ok: u64,
    resent_unacknowledged_replayed: u64,
    resent_unacknowledged_refused: u64,
    resent_acknowledged: u64,
    resent_acknowledged_replayed_same: u64,
    command_records: u64,
    events: u64,
    workspaces: u64,
    transient_retries: u64,
}

/// Runs the check; returns the JSON report and whether it found no anomaly.
pub(crate) async fn run(args: CheckArgs) -> Result<(serde_json::Value, bool), String> {
    let started = Instant::now();
    let mut anomalies = Anomalies::default();
    let mut counts = Counts::default();
    let journals =
        Journals::read(&args.journals).map_err(|e| format!("reading the journals: {e}"))?;
    anomalies.add_all("journal", journals.problems.iter().cloned());
    counts.journal_lines = journals.lines;
    counts.torn_lines = journals.torn;
    counts.commands_sent = journals.commands.len() as u64;

    let embedded = persist("opening the store", args.patience, || {
        Embedded::open(&args.db, StoreOptions::default())
    })
    .await?;
    let db = embedded.db();
    let policy = SitePolicy::builtin();

    // (a) Acknowledged commands are in the store, refused ones are not; nothing else is.
    let before = StoreFacts::read(db, "").await?;
    anomalies.add_all("records", before.consistency());
    let mut workspaces = BTreeMap::new();
    for (id, sent) in &journals.commands {
        let workspace = match WorkspaceId::parse(&sent.workspace) {
            Ok(w) => w,
            Err(e) => {
                anomalies.add("journal", format!("command {id}: workspace: {e}"));
                continue;
            }
        };
        let hash = command_hash(&workspace, &sent.command);
        let record = before.commands.get(id);
        if let Some(row) = record {
            if row.workspace != sent.workspace || row.command_hash != hash {
                anomalies.add(
                    "acknowledged",
                    format!(
                        "command {id}: recorded for {} with hash {}, but sent to {} with hash {hash}",
                        row.workspace, row.command_hash, sent.workspace
                    ),
                );
            }
        }
        match (&sent.ack, record) {
            (
                Some(Ack::Ok {
                    first,
                    last,
                    replayed,
                }),
                Some(row),
            ) => {
                counts.acked_ok += 1;
                counts.acked_ok_replayed += u64::from(*replayed);
                if (row.first, row.last) != (*first, *last) {
                    anomalies.add(
                        "acknowledged",
                        format!(
                            "command {id}: acknowledged {first}..{last} but recorded {}..{}",
                            row.first, row.last
                        ),
                    );
                }
            }
            (Some(Ack::Ok { first, last, .. }), None) => {
                counts.acked_ok += 1;
                anomalies.add(
                    "acknowledged",
                    format!(
                        "command {id}: acknowledged {first}..{last} on {} but not in the store",
                        sent.workspace
                    ),
                );
            }
            (Some(Ack::Refused { code }), record) => {
                counts.acked_refused += 1;
                if let Some(row) = record {
                    anomalies.add(
                        "refused-wrote",
                        format!(
                            "command {id}: refused ({code}) but recorded {}..{}",
                            row.first, row.last
                        ),
                    );
                }
            }
            (None, record) => {
                counts.unacknowledged += 1;
                if record.is_some() {
                    counts.unacknowledged_found_committed += 1;
                } else {
                    counts.unacknowledged_not_committed += 1;
                }
            }
        }
        workspaces.insert(id.clone(), workspace);
    }
    for id in before.commands.keys() {
        if !journals.commands.contains_key(id) {
            anomalies.add(
                "unsent",
                format!("command {id} is recorded but no journal sent it"),
            );
        }
    }

    // (b) The audit: chains, sequences, transitions (AgreementAccepted without PlanUpgraded).
    let audit_before = audit(db, &policy).await?;
    anomalies.add_audit(&audit_before);

    // (c) Re-send the unacknowledged commands, then the acknowledged ones.
    let retry = RetryPolicy::default();
    let retries = Retries::default();
    let mut settled_now: BTreeMap<String, Option<(u64, u64)>> = BTreeMap::new();
    for (id, sent) in journals.unacknowledged() {
        let Some(workspace) = workspaces.get(id) else {
            continue;
        };
        let settled = settle(
            &embedded.store,
            workspace,
            &sent.command,
            retry,
            args.patience,
            &retries,
        )
        .await;
        let range = settled.range();
        let record = before.commands.get(id);
        match settled {
            Settled::Ok { replayed, .. } => {
                counts.resent_unacknowledged_ok += 1;
                counts.resent_unacknowledged_replayed += u64::from(replayed);
                match (record, range) {
                    (Some(row), Some(range)) => {
                        if !replayed || (row.first, row.last) != range {
                            anomalies.add("resend", format!(
                                "command {id}: recorded {}..{} before, re-send gave {range:?} (replayed {replayed})",
                                row.first, row.last
                            ));
                        }
                    }
                    (None, Some(_)) => {
                        if replayed {
                            anomalies.add(
                                "resend",
                                format!(
                                "command {id}: not recorded before, yet its re-send was a replay"
                            ),
                            );
                        }
                    }
                    (_, None) => {
                        anomalies.add("resend", format!("command {id}: succeeded without events"))
                    }
                }
                settled_now.insert(id.clone(), range);
            }
            Settled::Refused(rule) => {
                counts.resent_unacknowledged_refused += 1;
                if let Some(row) = record {
                    anomalies.add(
                        "resend",
                        format!(
                            "command {id}: recorded {}..{} but its re-send was refused: {rule}",
                            row.first, row.last
                        ),
                    );
                }
                settled_now.insert(id.clone(), None);
            }
            Settled::Failed(e) => anomalies.add("resend", format!("command {id}: {e}")),
        }
    }
    for (id, sent) in &journals.commands {
        let (Some(Ack::Ok { first, last, .. }), Some(workspace)) = (&sent.ack, workspaces.get(id))
        else {
            continue;
        };
        counts.resent_acknowledged += 1;
        match settle(
            &embedded.store,
            workspace,
            &sent.command,
            retry,
            args.patience,
            &retries,
        )
        .await
        {
            Settled::Ok {
                events,
                replayed: true,
            } if events.first().map(|e| e.sequence) == Some(*first)
                && events.last().map(|e| e.sequence) == Some(*last) =>
            {
                counts.resent_acknowledged_replayed_same += 1;
            }
            other => anomalies.add(
                "resend",
                format!("command {id}: acknowledged {first}..{last}, re-sent: {other:?}"),
            ),
        }
    }
    counts.transient_retries = retries.transient.load(std::sync::atomic::Ordering::Relaxed);

    // After the re-sends: one record per command id, every record matching its events, every
    // command either recorded as acknowledged or refused with nothing written.
    let after = StoreFacts::read(db, "").await?;
    anomalies.add_all("records", after.consistency());
    for (id, sent) in &journals.commands {
        let record = after.commands.get(id).map(|r| (r.first, r.last));
        let expected = match (&sent.ack, settled_now.get(id)) {
            (Some(Ack::Ok { first, last, .. }), _) => Some((*first, *last)),
            (Some(Ack::Refused { .. }), _) => None,
            (None, Some(range)) => *range,
            // Its re-send failed: already reported.
            (None, None) => continue,
        };
        if record != expected {
            anomalies.add("records", format!(
                "command {id}: after the re-sends the store records {record:?}, expected {expected:?}"
            ));
        }
    }
    for id in after.commands.keys() {
        if !journals.commands.contains_key(id) {
            anomalies.add(
                "unsent",
                format!("command {id} is recorded but no journal sent it"),
            );
        }
    }
    counts.command_records = after.commands.len() as u64;
    counts.events = after.events;
    counts.workspaces = after.events_per_workspace.len() as u64;
    let audit_after = audit(db, &policy).await?;
    anomalies.add_audit(&audit_after);

    // (d) Views: caught up, then rebuilt, equal.
    let views = views_rebuild_equal(&embedded, &after, "").await?;
    anomalies.add_all("views", views.mismatches.iter().cloned());

    // (e) One opening reminder per upgrade, sent once.
    let outbox = outbox_check(&embedded, &after, "").await?;
    anomalies.add_all("outbox", outbox.mismatches.iter().cloned());

    let ok = anomalies.total == 0;
    let report = json!({
        "check": if ok { "ok" } else { "anomalies" },
        "counts": counts,
        "audit_before_resend": audit_before,
        "audit_after_resend": audit_after,
        "views": views,
        "outbox": outbox,
        "anomalies": anomalies,
        "seconds": started.elapsed().as_secs_f64(),
    });
    Ok((report, ok))
}
