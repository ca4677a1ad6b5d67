//! `billing-reliability load`: drives many workspaces through the documented flow, journaling
//! every command before it is executed and every outcome after it, and keeps going through
//! database crashes and restarts.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use billing_adapters::Embedded;
use billing_domain::SitePolicy;
use billing_store::{RetryPolicy, StoreOptions};
use serde_json::json;

use crate::exec::{persist, settle, Retries, Settled};
use crate::flow::{workspace_flow, Step};
use crate::journal::JournalWriter;

/// What to run.
#[derive(Debug, Clone)]
pub(crate) struct LoadArgs {
    /// Database URL.
    pub(crate) db: String,
    /// Journal file.
    pub(crate) journal: std::path::PathBuf,
    /// Workspaces to drive.
    pub(crate) workspaces: u64,
    /// Seed of the workload.
    pub(crate) seed: u64,
    /// Concurrent writers.
    pub(crate) writers: usize,
    /// Stop sending after this many commands.
    pub(crate) stop_after_commands: Option<u64>,
    /// How long to keep retrying a database that does not answer.
    pub(crate) patience: Duration,
}

#[derive(Default)]
struct Counters {
    sent: AtomicU64,
    ok: AtomicU64,
    replayed: AtomicU64,
    refused: AtomicU64,
    failed: AtomicU64,
    unexpected: AtomicU64,
    events: AtomicU64,
    workspaces_done: AtomicU64,
    retries: Retries,
}

/// Runs the load; returns the JSON summary and whether everything went as expected.
pub(crate) async fn run(args: LoadArgs) -> Result<(serde_json::Value, bool), String> {
    let started = Instant::now();
    let journal = Arc::new(
        JournalWriter::open(&args.journal)
            .map_err(|e| format!("cannot open the journal {}: {e}", args.journal.display()))?,
    );
    let options = StoreOptions {
        max_connections: u32::try_from(args.writers + 2).unwrap_or(u32::MAX),
        ..StoreOptions::default()
    };
    let embedded = persist("opening the store", args.patience, || {
        Embedded::open(&args.db, options.clone())
    })
    .await?;
    let embedded = Arc::new(embedded);
    let next = Arc::new(AtomicU64::new(0));
    let counters = Arc::new(Counters::default());
    let policy = Arc::new(SitePolicy::builtin());
    let mut tasks = Vec::new();
    for _ in 0..args.writers.max(1) {
        let (embedded, next, counters, policy, journal, args) = (
            embedded.clone(),
            next.clone(),
            counters.clone(),
            policy.clone(),
            journal.clone(),
            args.clone(),
        );
        tasks.push(tokio::spawn(async move {
            writer(&embedded, &next, &counters, &policy, &journal, &args).await
        }));
    }
    let mut errors = Vec::new();
    for task in tasks {
        match task.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => errors.push(e),
            Err(e) => errors.push(format!("a writer stopped: {e}")),
        }
    }
    // The views follow on their own; waiting here only makes them current for whoever looks next.
    let flushed = tokio::time::timeout(Duration::from_secs(30), embedded.projector.flush()).await;
    let views = match flushed {
        Ok(Ok(())) => "current".to_owned(),
        Ok(Err(e)) => format!("behind: {e}"),
        Err(_) => "behind: flush timed out".to_owned(),
    };
    let c = &counters;
    let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
    let ok = errors.is_empty() && load(&c.failed) == 0 && load(&c.unexpected) == 0;
    let summary = json!({
        "load": if ok { "done" } else { "anomalies" },
        "workspaces": load(&c.workspaces_done),
        "commands_sent": load(&c.sent),
        "acknowledged_ok": load(&c.ok),
        "acknowledged_replayed": load(&c.replayed),
        "acknowledged_refused": load(&c.refused),
        "failed": load(&c.failed),
        "unexpected_outcomes": load(&c.unexpected),
        "events": load(&c.events),
        "transient_retries": load(&c.retries.transient),
        "views": views,
        "errors": errors,
        "seconds": started.elapsed().as_secs_f64(),
    });
    Ok((summary, ok))
}

async fn writer(
    embedded: &Embedded,
    next: &AtomicU64,
    counters: &Counters,
    policy: &SitePolicy,
    journal: &JournalWriter,
    args: &LoadArgs,
) -> Result<(), String> {
    let retry = RetryPolicy::default();
    let io = |e: std::io::Error| format!("cannot write the journal: {e}");
    loop {
        let index = next.fetch_add(1, Ordering::Relaxed);
        if index >= args.workspaces {
            return Ok(());
        }
        let (workspace, steps) = workspace_flow(policy, "", args.seed, index)
            .map_err(|e| format!("workspace {index}: the generator made a bad value: {e}"))?;
        for step in steps {
            match step {
                Step::Register { user_name, email } => {
                    persist("registering a shared account", args.patience, || {
                        embedded.expense_center.register(&user_name, &email)
                    })
                    .await?;
                }
                Step::Subscribe { method, account } => {
                    persist("subscribing a cloud account", args.patience, || {
                        embedded.marketplace.set(&method, &account, true)
                    })
                    .await?;
                }
                Step::Command {
                    command,
                    may_refuse,
                    must_refuse,
                } => {
                    let n = counters.sent.fetch_add(1, Ordering::Relaxed);
                    if args.stop_after_commands.is_some_and(|limit| n >= limit) {
                        counters.sent.fetch_sub(1, Ordering::Relaxed);
                        return Ok(());
                    }
                    let id = command.command_id.as_str();
                    journal.sent(workspace.as_str(), &command).map_err(io)?;
                    let settled = settle(
                        &embedded.store,
                        &workspace,
                        &command,
                        retry,
                        args.patience,
                        &counters.retries,
                    )
                    .await;
                    let range = settled.range();
                    match settled {
                        Settled::Ok { events, replayed } => {
                            let Some((first, last)) = range else {
                                // A command that succeeds always writes at least one event.
                                counters.failed.fetch_add(1, Ordering::Relaxed);
                                journal
                                    .fail(workspace.as_str(), id, "succeeded without events")
                                    .map_err(io)?;
                                continue;
                            };
                            journal
                                .ack_ok(workspace.as_str(), id, first, last, replayed)
                                .map_err(io)?;
                            counters.ok.fetch_add(1, Ordering::Relaxed);
                            counters
                                .events
                                .fetch_add(events.len() as u64, Ordering::Relaxed);
                            if replayed {
                                counters.replayed.fetch_add(1, Ordering::Relaxed);
                            }
                            if must_refuse {
                                counters.unexpected.fetch_add(1, Ordering::Relaxed);
                                eprintln!("load: {id} succeeded but must be refused by one of {may_refuse:?}");
                            }
                        }
                        Settled::Refused(rule) => {
                            journal
                                .ack_refused(workspace.as_str(), id, rule.code())
                                .map_err(io)?;
                            counters.refused.fetch_add(1, Ordering::Relaxed);
                            if !may_refuse.contains(&rule.code()) {
                                counters.unexpected.fetch_add(1, Ordering::Relaxed);
                                eprintln!("load: {id} refused unexpectedly: {rule}");
                            }
                        }
                        Settled::Failed(message) => {
                            journal.fail(workspace.as_str(), id, &message).map_err(io)?;
                            counters.failed.fetch_add(1, Ordering::Relaxed);
                            eprintln!("load: {id} failed: {message}");
                            // The rest of this workspace's flow depends on this step.
                            break;
                        }
                    }
                }
            }
        }
        counters.workspaces_done.fetch_add(1, Ordering::Relaxed);
    }
}
