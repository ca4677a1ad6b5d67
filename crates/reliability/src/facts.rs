//! What the store holds, read straight from its tables, and the checks every run makes on it:
//! command records against the events they name, views against a rebuild, the outbox against
//! the upgrades, and the audit.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use billing_adapters::outbox::outbox;
use billing_adapters::view_store::{all_billing_views, audit_trail};
use billing_adapters::{deliver_pending, AuditEntry, BillingView, Embedded, LogMailer};
use billing_domain::SitePolicy;
use billing_store::audit::{audit_store, AuditOptions};
use billing_store::{on_backend, Db};
use serde::{Deserialize, Serialize};

/// A command record (`commands` table).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct CommandRow {
    /// The workspace.
    pub(crate) workspace: String,
    /// The hash of the command's content.
    pub(crate) command_hash: String,
    /// First sequence written.
    pub(crate) first: u64,
    /// Last sequence written.
    pub(crate) last: u64,
}

/// The events one command id wrote, as the events themselves say (their metadata).
#[derive(Clone, Debug, Default)]
pub(crate) struct Span {
    workspaces: Vec<String>,
    min: u64,
    max: u64,
    count: u64,
    hashes: Vec<String>,
}

/// What the store holds (the workspaces whose id starts with a prefix).
#[derive(Debug, Default)]
pub(crate) struct StoreFacts {
    /// Command records by command id.
    pub(crate) commands: HashMap<String, CommandRow>,
    /// Command ids with more than one record.
    pub(crate) duplicate_records: Vec<String>,
    /// Events per command id, from the events' metadata.
    spans: HashMap<String, Span>,
    /// Events per workspace.
    pub(crate) events_per_workspace: BTreeMap<String, u64>,
    /// The last sequence and hash of every workspace.
    pub(crate) heads: BTreeMap<String, (u64, String)>,
    /// The sequences of every workspace's `PlanUpgraded` events.
    pub(crate) upgrades: BTreeMap<String, Vec<u64>>,
    /// Events in all.
    pub(crate) events: u64,
    /// Events whose metadata does not parse.
    pub(crate) unreadable: Vec<String>,
}

#[derive(Deserialize)]
struct Metadata {
    command_id: String,
    command_hash: String,
    hash: String,
}

fn seq(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

impl StoreFacts {
    /// Reads the command records and events of the workspaces whose id starts with `prefix`.
    pub(crate) async fn read(db: &Db, prefix: &str) -> Result<Self, String> {
        let like = format!("{prefix}%");
        let sql_e = |e: sqlx::Error| format!("reading the store: {e}");
        let commands: Vec<(String, String, String, i64, i64)> = on_backend!(db.backend(), |pool| {
            sqlx::query_as(
                "SELECT command_id, aggregate_id, command_hash, first_sequence, last_sequence \
                 FROM commands WHERE aggregate_id LIKE $1",
            )
            .bind(&like)
            .fetch_all(pool)
            .await
            .map_err(sql_e)?
        });
        // `CAST(… AS TEXT)`: PostgreSQL's `json` column and SQLite's text column alike, as
        // stored.
        let events: Vec<(String, i64, String, String)> = on_backend!(db.backend(), |pool| {
            sqlx::query_as(
                "SELECT aggregate_id, sequence, event_type, CAST(metadata AS TEXT) FROM events \
                 WHERE aggregate_id LIKE $1 ORDER BY aggregate_id, sequence",
            )
            .bind(&like)
            .fetch_all(pool)
            .await
            .map_err(sql_e)?
        });
        let mut facts = StoreFacts::default();
        for (id, workspace, command_hash, first, last) in commands {
            let row = CommandRow {
                workspace,
                command_hash,
                first: seq(first),
                last: seq(last),
            };
            if facts.commands.insert(id.clone(), row).is_some() {
                facts.duplicate_records.push(id);
            }
        }
        for (workspace, sequence, event_type, metadata) in events {
            let sequence = seq(sequence);
            facts.events += 1;
            *facts
                .events_per_workspace
                .entry(workspace.clone())
                .or_default() += 1;
            if event_type == "PlanUpgraded" {
                facts
                    .upgrades
                    .entry(workspace.clone())
                    .or_default()
                    .push(sequence);
            }
            let meta: Metadata = match serde_json::from_str(&metadata) {
                Ok(m) => m,
                Err(e) => {
                    facts
                        .unreadable
                        .push(format!("{workspace} sequence {sequence}: {e}"));
                    continue;
                }
            };
            facts
                .heads
                .insert(workspace.clone(), (sequence, meta.hash.clone()));
            let span = facts.spans.entry(meta.command_id).or_insert_with(|| Span {
                min: u64::MAX,
                ..Span::default()
            });
            if !span.workspaces.contains(&workspace) {
                span.workspaces.push(workspace);
            }
            if !span.hashes.contains(&meta.command_hash) {
                span.hashes.push(meta.command_hash);
            }
            span.min = span.min.min(sequence);
            span.max = span.max.max(sequence);
            span.count += 1;
        }
        Ok(facts)
    }

    /// Every way the command records and the events disagree: a record without its events, events
    /// without a record, a command whose events are not one contiguous run in one workspace, a
    /// command id recorded twice.
    pub(crate) fn consistency(&self) -> Vec<String> {
        let mut problems = Vec::new();
        for id in &self.duplicate_records {
            problems.push(format!("command {id} has more than one record"));
        }
        for line in &self.unreadable {
            problems.push(format!("event metadata does not parse: {line}"));
        }
        let mut recorded_events = 0u64;
        for (id, row) in &self.commands {
            recorded_events += row.last.saturating_sub(row.first) + 1;
            match self.spans.get(id) {
                None => problems.push(format!(
                    "command {id} is recorded ({} {}..{}) but wrote no events",
                    row.workspace, row.first, row.last
                )),
                Some(span) => {
                    if span.workspaces != [row.workspace.clone()]
                        || span.min != row.first
                        || span.max != row.last
                        || span.count != row.last - row.first + 1
                        || span.hashes != [row.command_hash.clone()]
                    {
                        problems.push(format!(
                            "command {id} is recorded as {} {}..{} but its events are {:?} {}..{} ({} events, command hashes {:?})",
                            row.workspace, row.first, row.last, span.workspaces, span.min,
                            span.max, span.count, span.hashes
                        ));
                    }
                }
            }
        }
        for (id, span) in &self.spans {
            if !self.commands.contains_key(id) {
                problems.push(format!(
                    "{} event(s) of command {id} in {:?} have no command record",
                    span.count, span.workspaces
                ));
            }
        }
        if recorded_events != self.events {
            problems.push(format!(
                "the command records account for {recorded_events} events but the store holds {}",
                self.events
            ));
        }
        problems
    }
}

/// The audit's figures.
#[derive(Debug, Default, Serialize)]
pub(crate) struct AuditFigures {
    /// Events audited.
    pub(crate) events: u64,
    /// Workspaces audited.
    pub(crate) workspaces: u64,
    /// Commercial workspaces.
    pub(crate) commercial: u64,
    /// Findings.
    pub(crate) findings: u64,
    /// The first findings.
    pub(crate) first_findings: Vec<String>,
}

/// Audits the whole store ([`audit_store`] with the built-in site policy).
pub(crate) async fn audit(db: &Db, policy: &SitePolicy) -> Result<AuditFigures, String> {
    let mut first = Vec::new();
    let mut count = 0u64;
    let summary = audit_store(
        db,
        Some(policy),
        &AuditOptions::default(),
        |finding| {
            count += 1;
            if first.len() < 20 {
                first.push(finding.to_string());
            }
        },
        |_| {},
    )
    .await
    .map_err(|e| format!("the audit failed: {e}"))?;
    Ok(AuditFigures {
        events: summary.events,
        workspaces: summary.workspaces,
        commercial: summary.commercial,
        findings: count.max(summary.findings),
        first_findings: first,
    })
}

/// The views of the workspaces under a prefix.
#[derive(Debug, PartialEq, Eq)]
struct Views {
    views: Vec<BillingView>,
    trails: BTreeMap<String, Vec<AuditEntry>>,
}

async fn read_views(db: &Db, prefix: &str) -> Result<Views, String> {
    let e = |e: billing_adapters::AdapterError| format!("reading the views: {e}");
    let views: Vec<BillingView> = all_billing_views(db)
        .await
        .map_err(e)?
        .into_iter()
        .filter(|v| v.workspace_id.as_str().starts_with(prefix))
        .collect();
    let mut trails = BTreeMap::new();
    for view in &views {
        trails.insert(
            view.workspace_id.to_string(),
            audit_trail(db, &view.workspace_id).await.map_err(e)?,
        );
    }
    Ok(Views { views, trails })
}

/// The views' figures.
#[derive(Debug, Default, Serialize)]
pub(crate) struct ViewFigures {
    /// Billing views compared.
    pub(crate) billing_views: u64,
    /// Audit trail entries compared.
    pub(crate) trail_entries: u64,
    /// Events the rebuild read.
    pub(crate) rebuilt_from_events: u64,
    /// Differences (each an anomaly).
    pub(crate) mismatches: Vec<String>,
}

/// Brings the live views up to date (flush and catch-up), checks them against the log, rebuilds
/// them from the log and checks that the rebuilt views equal the live ones.
pub(crate) async fn views_rebuild_equal(
    embedded: &Embedded,
    facts: &StoreFacts,
    prefix: &str,
) -> Result<ViewFigures, String> {
    let db = embedded.db();
    match tokio::time::timeout(Duration::from_secs(120), embedded.projector.flush()).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err(format!("the projector could not catch up: {e}")),
        Err(_) => return Err("the projector did not catch up within 120 s".into()),
    }
    embedded
        .projector
        .catch_up()
        .await
        .map_err(|e| format!("catch-up failed: {e}"))?;
    let live = read_views(db, prefix).await?;
    let mut figures = ViewFigures {
        billing_views: live.views.len() as u64,
        trail_entries: live.trails.values().map(|t| t.len() as u64).sum(),
        ..ViewFigures::default()
    };
    let mut mismatch = |m: String| {
        if figures.mismatches.len() < 50 {
            figures.mismatches.push(m);
        }
    };
    // Live views against the log itself.
    let by_id: BTreeMap<&str, &BillingView> = live
        .views
        .iter()
        .map(|v| (v.workspace_id.as_str(), v))
        .collect();
    for (workspace, (sequence, hash)) in &facts.heads {
        match by_id.get(workspace.as_str()) {
            None => mismatch(format!(
                "{workspace}: no billing view for a stream of {sequence} events"
            )),
            Some(view) => {
                if view.last_sequence != *sequence || view.head_hash != *hash {
                    mismatch(format!(
                        "{workspace}: the view is at sequence {} ({}) but the stream at {sequence} ({hash})",
                        view.last_sequence, view.head_hash
                    ));
                }
            }
        }
        let trail = live.trails.get(workspace).map_or(0, Vec::len) as u64;
        let events = facts
            .events_per_workspace
            .get(workspace)
            .copied()
            .unwrap_or(0);
        if trail != events {
            mismatch(format!(
                "{workspace}: the audit trail has {trail} entries for {events} events"
            ));
        }
    }
    for view in &live.views {
        if !facts.heads.contains_key(view.workspace_id.as_str()) {
            mismatch(format!(
                "{}: a billing view for a workspace without events",
                view.workspace_id
            ));
        }
    }
    let report = embedded
        .projector
        .rebuild(|_| {})
        .await
        .map_err(|e| format!("the rebuild failed: {e}"))?;
    figures.rebuilt_from_events = report.events;
    let rebuilt = read_views(db, prefix).await?;
    if rebuilt != live {
        let mut differences = 0;
        let rebuilt_by_id: BTreeMap<&str, &BillingView> = rebuilt
            .views
            .iter()
            .map(|v| (v.workspace_id.as_str(), v))
            .collect();
        for view in &live.views {
            let other = rebuilt_by_id.get(view.workspace_id.as_str());
            if other != Some(&view) {
                differences += 1;
                if figures.mismatches.len() < 50 {
                    figures.mismatches.push(format!(
                        "{}: live view {view:?} but rebuilt {other:?}",
                        view.workspace_id
                    ));
                }
            }
            let id = view.workspace_id.as_str();
            if live.trails.get(id) != rebuilt.trails.get(id) {
                differences += 1;
                if figures.mismatches.len() < 50 {
                    figures.mismatches.push(format!(
                        "{}: the live audit trail differs from the rebuilt one",
                        view.workspace_id
                    ));
                }
            }
        }
        if rebuilt.views.len() != live.views.len() {
            differences += 1;
            figures.mismatches.push(format!(
                "{} live billing views but {} rebuilt",
                live.views.len(),
                rebuilt.views.len()
            ));
        }
        if differences == 0 {
            figures
                .mismatches
                .push("the rebuilt views differ from the live ones".into());
        }
    }
    Ok(figures)
}

/// The outbox's figures.
#[derive(Debug, Default, Serialize)]
pub(crate) struct OutboxFigures {
    /// `PlanUpgraded` events.
    pub(crate) upgrades: u64,
    /// Opening reminders in the outbox.
    pub(crate) reminders: u64,
    /// Reminders this check delivered (the rest were delivered before).
    pub(crate) delivered_now: u64,
    /// Differences (each an anomaly).
    pub(crate) mismatches: Vec<String>,
}

/// Delivers pending reminders through [`LogMailer`], then checks that every upgrade has exactly
/// one reminder, sent once, and that no reminder exists without an upgrade.
pub(crate) async fn outbox_check(
    embedded: &Embedded,
    facts: &StoreFacts,
    prefix: &str,
) -> Result<OutboxFigures, String> {
    let db = embedded.db();
    let delivery = deliver_pending(
        db,
        &LogMailer,
        &billing_adapters::Clocks::at(chrono::Utc::now()),
    )
    .await
    .map_err(|e| format!("delivering the outbox: {e}"))?;
    let messages = outbox(db)
        .await
        .map_err(|e| format!("reading the outbox: {e}"))?;
    let mut figures = OutboxFigures {
        upgrades: facts.upgrades.values().map(|v| v.len() as u64).sum(),
        delivered_now: delivery.sent,
        ..OutboxFigures::default()
    };
    let mut reminders: BTreeMap<&str, Vec<&billing_adapters::OutboxMessage>> = BTreeMap::new();
    for m in messages
        .iter()
        .filter(|m| m.workspace_id.as_str().starts_with(prefix))
    {
        figures.reminders += 1;
        reminders
            .entry(m.workspace_id.as_str())
            .or_default()
            .push(m);
    }
    let mut mismatch = |m: String| {
        if figures.mismatches.len() < 50 {
            figures.mismatches.push(m);
        }
    };
    if delivery.failed > 0 {
        mismatch(format!(
            "{} reminders could not be delivered",
            delivery.failed
        ));
    }
    for (workspace, sequences) in &facts.upgrades {
        let found = reminders.remove(workspace.as_str()).unwrap_or_default();
        match (sequences.as_slice(), found.as_slice()) {
            ([sequence], [m]) => {
                if m.sequence != *sequence || m.kind != "opening-reminder" {
                    mismatch(format!(
                        "{workspace}: reminder {} for sequence {} but the upgrade is sequence {sequence}",
                        m.kind, m.sequence
                    ));
                }
                if m.sent_at.is_none() || m.attempts != 1 {
                    mismatch(format!(
                        "{workspace}: reminder sent_at {:?} after {} attempts (expected sent, once)",
                        m.sent_at, m.attempts
                    ));
                }
            }
            _ => mismatch(format!(
                "{workspace}: PlanUpgraded at sequences {sequences:?} but {} reminder(s)",
                found.len()
            )),
        }
    }
    for (workspace, found) in reminders {
        mismatch(format!(
            "{workspace}: {} reminder(s) without a PlanUpgraded",
            found.len()
        ));
    }
    Ok(figures)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(commands: &[(&str, &str, u64, u64)], events: &[(&str, u64, &str)]) -> StoreFacts {
        let mut f = StoreFacts::default();
        for (id, ws, first, last) in commands {
            f.commands.insert(
                (*id).into(),
                CommandRow {
                    workspace: (*ws).into(),
                    command_hash: format!("h-{id}"),
                    first: *first,
                    last: *last,
                },
            );
        }
        for (ws, sequence, id) in events {
            f.events += 1;
            let span = f.spans.entry((*id).into()).or_insert_with(|| Span {
                min: u64::MAX,
                ..Span::default()
            });
            if !span.workspaces.contains(&(*ws).to_owned()) {
                span.workspaces.push((*ws).into());
            }
            let h = format!("h-{id}");
            if !span.hashes.contains(&h) {
                span.hashes.push(h);
            }
            span.min = span.min.min(*sequence);
            span.max = span.max.max(*sequence);
            span.count += 1;
        }
        f
    }

    #[test]
    fn consistent_records_pass() {
        let f = facts(
            &[("a", "w1", 1, 1), ("b", "w1", 2, 3)],
            &[("w1", 1, "a"), ("w1", 2, "b"), ("w1", 3, "b")],
        );
        assert_eq!(f.consistency(), Vec::<String>::new());
    }

    #[test]
    fn every_disagreement_is_reported() {
        // A record without events, events without a record, a short span.
        let f = facts(
            &[("a", "w1", 1, 1), ("b", "w1", 2, 3)],
            &[("w1", 2, "b"), ("w1", 4, "c")],
        );
        let problems = f.consistency();
        assert_eq!(problems.len(), 4, "{problems:?}");
        assert!(problems.iter().any(|p| p.contains("command a")));
        assert!(problems.iter().any(|p| p.contains("command b")));
        assert!(problems.iter().any(|p| p.contains("command c")));
        assert!(problems.iter().any(|p| p.contains("account for 3 events")));
    }
}
