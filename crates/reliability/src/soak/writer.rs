//! One writer: its own workspaces, its loop (plan, execute, compare with what the command
//! table expects), and what it saw, for the reconciliation.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use billing_domain::{Site, Workspace, WorkspaceCommand, WorkspaceId};
use billing_store::RetryPolicy;

use super::commands::{ordinary_command, race_command, Expect};
use super::Ctx;
use crate::exec::{classify, Kind, Settled};
use crate::rng::Rng;

/// One command's outcome, as its writer saw it.
#[derive(Debug)]
pub(super) enum Outcome {
    Ok { first: u64, last: u64 },
    Refused,
    Failed,
}

#[derive(Debug)]
pub(super) struct Record {
    pub(super) command_id: String,
    pub(super) workspace: String,
    pub(super) outcome: Outcome,
}

/// What one writer saw.
#[derive(Default)]
pub(super) struct WriterReport {
    pub(super) records: Vec<Record>,
    pub(super) ok_latency: Vec<Duration>,
    pub(super) refused_latency: Vec<Duration>,
    pub(super) refusals: BTreeMap<&'static str, u64>,
    pub(super) anomalies: Vec<(&'static str, String)>,
}

/// A workspace one writer owns (no other writer touches it), with the state it has reached.
pub(super) struct Owned {
    pub(super) id: WorkspaceId,
    pub(super) name: String,
    pub(super) site: Site,
    pub(super) state: Workspace,
}

/// The ordinary workspaces of writer `k` of `writers`: every `writers`-th of the first
/// `ordinary`, each on a site drawn from the writer's own stream.
pub(super) fn owned_workspaces(
    ctx: &Ctx,
    k: usize,
    writers: usize,
    ordinary: usize,
) -> Result<Vec<Owned>, String> {
    let prefix = &ctx.prefix;
    let mut owned = Vec::new();
    let mut rng = Rng::for_item(ctx.args.seed, 1_000_000 + k as u64);
    for i in (k..ordinary).step_by(writers) {
        let name = format!("{prefix}w{i:05}");
        let sites: Vec<&Site> = ctx.policy.sites().collect();
        let site = sites
            .get(rng.index(sites.len()))
            .ok_or("the site policy has no sites")?;
        owned.push(Owned {
            id: WorkspaceId::parse(&name).map_err(|e| format!("the soak made a bad value: {e}"))?,
            name,
            site: (*site).clone(),
            state: Workspace::default(),
        });
    }
    Ok(owned)
}

fn retry_policy() -> RetryPolicy {
    RetryPolicy {
        max_retries: 16,
        min_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(100),
    }
}

pub(super) async fn writer(
    ctx: &Ctx,
    k: usize,
    quota: u64,
    mut owned: Vec<Owned>,
    mut rng: Rng,
) -> WriterReport {
    let mut report = WriterReport::default();
    let mut race_no = 0u64;
    for j in 0..quota {
        let racing = race_no < ctx.races && (j + 1) % ctx.args.race_every == 0;
        let planned = if racing {
            let h = usize::try_from(race_no).unwrap_or(0) % ctx.hot.len().max(1);
            race_no += 1;
            ctx.barrier.wait().await;
            ctx.totals.races.fetch_add(1, Ordering::Relaxed);
            race_command(ctx, k, j, race_no, h, &mut report.anomalies).await
        } else if owned.is_empty() {
            continue;
        } else {
            let i = rng.index(owned.len());
            ordinary_command(ctx, k, j, &mut owned[i], &mut rng)
                .await
                .map(|(c, e)| (owned[i].id.clone(), c, e, Some(i)))
        };
        let (workspace, command, expect, owner_index) = match planned {
            Ok(p) => p,
            Err(e) => {
                report.anomalies.push((failure_kind(&e), e));
                continue;
            }
        };
        let started = Instant::now();
        let settled = execute(ctx, &workspace, &command).await;
        let latency = started.elapsed();
        let id = command.command_id.to_string();
        let outcome = match &settled {
            Settled::Ok { events, replayed } => {
                report.ok_latency.push(latency);
                if *replayed {
                    report
                        .anomalies
                        .push(("replayed", format!("{id}: a fresh command id was replayed")));
                }
                if let Some(i) = owner_index {
                    for e in events {
                        match owned[i].state.evolve(&e.event) {
                            Ok(s) => owned[i].state = s,
                            Err(err) => report.anomalies.push((
                                "model",
                                format!("{id}: the stored event does not follow: {err}"),
                            )),
                        }
                    }
                }
                match settled.range() {
                    Some((first, last)) => Outcome::Ok { first, last },
                    None => {
                        report
                            .anomalies
                            .push(("failed", format!("{id}: succeeded without events")));
                        Outcome::Failed
                    }
                }
            }
            Settled::Refused(rule) => {
                report.refused_latency.push(latency);
                *report.refusals.entry(rule.code()).or_default() += 1;
                Outcome::Refused
            }
            Settled::Failed(e) => {
                report
                    .anomalies
                    .push((failure_kind(e), format!("{id}: {e}")));
                Outcome::Failed
            }
        };
        let code = match &settled {
            Settled::Refused(rule) => Some(rule.code()),
            _ => None,
        };
        let fine = match (expect, &outcome, code) {
            (_, Outcome::Failed, _) => true, // already reported
            (Expect::Ok, Outcome::Ok { .. }, _) => true,
            (Expect::OkOr(_), Outcome::Ok { .. }, _) => true,
            (Expect::OkOr(codes), Outcome::Refused, Some(c)) => codes.contains(&c),
            (Expect::Refused(codes), Outcome::Refused, Some(c)) => codes.contains(&c),
            (Expect::Any, _, _) => true,
            _ => false,
        };
        if !fine {
            report.anomalies.push((
                "unexpected-outcome",
                format!("{id} on {workspace}: expected {expect:?}, got {settled:?}"),
            ));
        }
        report.records.push(Record {
            command_id: id,
            workspace: workspace.to_string(),
            outcome,
        });
    }
    report
}

/// Executes a command: first on its own (to count conflicts), then through the store's retry
/// helper when it conflicted.
async fn execute(ctx: &Ctx, workspace: &WorkspaceId, command: &WorkspaceCommand) -> Settled {
    let store = &ctx.embedded.store;
    let mut result = store.execute(workspace, command).await;
    if matches!(&result, Err(e) if e.is_conflict()) {
        ctx.totals.conflicts.fetch_add(1, Ordering::Relaxed);
        for _ in 0..5 {
            result = store
                .execute_with_retry(workspace, command, retry_policy())
                .await;
            if matches!(&result, Err(e) if e.is_conflict()) {
                ctx.totals
                    .conflicts_exhausted
                    .fetch_add(1, Ordering::Relaxed);
                continue;
            }
            break;
        }
    }
    match result {
        Ok(outcome) => Settled::Ok {
            events: outcome.events,
            replayed: outcome.replayed,
        },
        Err(e) => match classify(e) {
            (Kind::Rule(rule), _) => Settled::Refused(rule),
            (_, text) => Settled::Failed(text),
        },
    }
}

/// The anomaly kind of a failure: the store reporting a broken stream is its own kind.
pub(super) fn failure_kind(message: &str) -> &'static str {
    if message.starts_with("integrity:") {
        "store-integrity"
    } else {
        "failed"
    }
}
