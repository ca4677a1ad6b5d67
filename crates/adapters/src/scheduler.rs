//! The durable deadlines of SPEC §10: a countdown's reminder and its lock, fired by the billing
//! system when they fall due.
//!
//! The deadlines live in the log (each `CountdownStarted` names its `remind_at` and `deadline`),
//! and the billing view shows every running countdown's. A [`Scheduler::tick`] brings the views up
//! to the log, asks the view which deadlines are due at the store's clock's instant, and fires
//! each as a command of the billing system (`billing-system`, role `system`) with an id that
//! names the deadline: `deadline:reminder:N:WORKSPACE` and `deadline:lock:N:WORKSPACE`
//! (`deadline:KIND:N:sha256:HEX` of the workspace id when that would be longer than
//! [`MAX_ID_LEN`]). The store's idempotency and the domain's rules make every deadline fire
//! exactly once however ticks run — concurrently, repeatedly, or after a crash half-way: a
//! second attempt gets the original outcome (`replayed`) or a refusal such as
//! `reminder-already-sent` or `not-in-countdown`, both counted as already done.

use std::collections::HashMap;
use std::sync::Arc;

use billing_domain::{
    Action, Actor, ActorId, DomainError, ExternalId, WorkspaceCommand, WorkspaceEvent, WorkspaceId,
    MAX_ID_LEN,
};
use billing_store::{BillingStore, RetryPolicy, StoreError};
use chrono::{DateTime, Utc};
use futures_util::StreamExt as _;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::clocks::Clocks;
use crate::error::AdapterError;
use crate::view_store::{due_countdowns, Deadline, DueCountdown};

/// The actor id the billing system fires deadlines under.
pub const BILLING_SYSTEM_ACTOR: &str = "billing-system";

/// Due countdowns read per page.
const PAGE: u32 = 500;

/// Commands in flight at once within a page (different workspaces).
const IN_FLIGHT: usize = 8;

/// What one tick did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct TickReport {
    /// The instant the tick fired deadlines at (the store's clock).
    pub at: DateTime<Utc>,
    /// The workspaces whose countdown reminder this tick fired, in workspace order.
    pub reminders_sent: Vec<WorkspaceId>,
    /// The workspaces this tick locked, in workspace order.
    pub locked: Vec<WorkspaceId>,
    /// Deadlines found due that were already fired (by another tick, or an earlier run of this
    /// one) or no longer apply (the countdown ended meanwhile): the original outcome came back,
    /// or a refusal that says so.
    pub already_done: u64,
    /// The deadlines that could not be fired now, each with its workspace and why; the next tick
    /// tries them again. One workspace's failure does not stop the others.
    pub failed: Vec<(WorkspaceId, String)>,
}

/// Fires the reminders and locks that are due (SPEC §10), from the library — what `billing tick`
/// runs.
#[derive(Clone, Debug)]
pub struct Scheduler {
    store: Arc<BillingStore>,
    clocks: Clocks,
    retry: RetryPolicy,
}

/// How one deadline's command came out.
enum Fired {
    /// This call wrote the event.
    Now,
    /// Already fired, or nothing to fire any more.
    AlreadyDone,
    /// Could not be fired now.
    Failed(String),
}

impl Scheduler {
    /// A scheduler over `store`: the deadlines due at `clocks.billing`'s instant (which should
    /// be the store's services' clock, the one the deadlines' commands are stamped with), the
    /// views' catch-up by `clocks.process`.
    pub fn new(store: Arc<BillingStore>, clocks: Clocks) -> Self {
        Self {
            store,
            clocks,
            retry: RetryPolicy {
                max_retries: 16,
                ..RetryPolicy::default()
            },
        }
    }

    /// Fires every deadline due at the store's clock's instant: first brings the views up to the
    /// log ([`crate::catch_up`]), so a view that missed a commit cannot hide a deadline; then,
    /// page by page, sends every due and unsent reminder, then locks every countdown whose
    /// deadline passed (a workspace past its deadline whose reminder was never sent gets the
    /// reminder first).
    ///
    /// # Errors
    /// The catch-up's errors ([`AdapterError::Behind`], …), and [`AdapterError::Store`] /
    /// [`AdapterError::Corrupt`] reading the billing view. A deadline that cannot be fired is
    /// not an error of the tick: it is in [`TickReport::failed`].
    pub async fn tick(&self) -> Result<TickReport, AdapterError> {
        let at = self.clocks.billing.now();
        let db = self.store.db();
        crate::projector::catch_up(db, self.clocks.process.as_ref()).await?;
        let mut report = TickReport {
            at,
            ..TickReport::default()
        };
        // Pass 1 fires the reminders; what became of each workspace's reminder decides pass 2.
        let mut reminded: HashMap<WorkspaceId, bool> = HashMap::new();
        for deadline in [Deadline::Reminder, Deadline::Lock] {
            let mut after: Option<(String, String)> = None;
            loop {
                let page = due_countdowns(
                    db,
                    deadline,
                    at,
                    after.as_ref().map(|(d, w)| (d.as_str(), w.as_str())),
                    PAGE,
                )
                .await?;
                let Some(last) = page.last() else { break };
                after = Some((last.due.clone(), last.workspace.as_str().to_owned()));
                let full = page.len() == PAGE as usize;
                let seen = &reminded;
                let outcomes: Vec<(WorkspaceId, Vec<(Deadline, Fired)>)> =
                    futures_util::stream::iter(page)
                        .map(|due| async move {
                            let fired = self
                                .fire(deadline, &due, seen.get(&due.workspace).copied())
                                .await;
                            (due.workspace, fired)
                        })
                        .buffer_unordered(IN_FLIGHT)
                        .collect()
                        .await;
                for (workspace, fired) in outcomes {
                    for (which, fired) in fired {
                        if which == Deadline::Reminder {
                            reminded.insert(workspace.clone(), !matches!(fired, Fired::Failed(_)));
                        }
                        match (fired, which) {
                            (Fired::Now, Deadline::Reminder) => {
                                report.reminders_sent.push(workspace.clone());
                            }
                            (Fired::Now, Deadline::Lock) => report.locked.push(workspace.clone()),
                            (Fired::AlreadyDone, _) => report.already_done += 1,
                            (Fired::Failed(why), _) => {
                                report.failed.push((workspace.clone(), why));
                            }
                        }
                    }
                }
                if !full {
                    break;
                }
            }
        }
        report.reminders_sent.sort();
        report.locked.sort();
        report.failed.sort();
        Ok(report)
    }

    /// Fires one due deadline. A lock waits for the countdown's reminder: `reminder` says what
    /// this tick's first pass made of it (`Some(false)`: it failed, so no lock now); when the
    /// first pass did not see it and the view shows it unsent, it is sent first.
    async fn fire(
        &self,
        deadline: Deadline,
        due: &DueCountdown,
        reminder: Option<bool>,
    ) -> Vec<(Deadline, Fired)> {
        let mut fired = Vec::new();
        if deadline == Deadline::Lock {
            match reminder {
                Some(true) => {}
                Some(false) => return fired,
                None if due.reminded => {}
                None => {
                    let outcome = self.command(Deadline::Reminder, due).await;
                    let failed = matches!(outcome, Fired::Failed(_));
                    fired.push((Deadline::Reminder, outcome));
                    if failed {
                        return fired;
                    }
                }
            }
        }
        fired.push((deadline, self.command(deadline, due).await));
        fired
    }

    async fn command(&self, deadline: Deadline, due: &DueCountdown) -> Fired {
        let (kind, action) = match deadline {
            Deadline::Reminder => ("reminder", Action::SendReminder),
            Deadline::Lock => ("lock", Action::Lock),
        };
        let command = match (
            command_id(kind, due.countdown, &due.workspace),
            ActorId::parse(BILLING_SYSTEM_ACTOR),
        ) {
            (Ok(id), Ok(actor)) => {
                WorkspaceCommand::new(id, Actor::new(actor, billing_domain::Role::System), action)
            }
            (Err(e), _) | (_, Err(e)) => return Fired::Failed(format!("command id: {e}")),
        };
        let wrote = |e: &WorkspaceEvent| match deadline {
            Deadline::Reminder => matches!(e, WorkspaceEvent::CountdownReminded(_)),
            Deadline::Lock => matches!(e, WorkspaceEvent::WorkspaceLocked(_)),
        };
        match self
            .store
            .execute_with_retry(&due.workspace, &command, self.retry)
            .await
        {
            Ok(outcome) if outcome.replayed => Fired::AlreadyDone,
            Ok(outcome) if outcome.events.iter().any(|s| wrote(&s.event)) => Fired::Now,
            Ok(outcome) => Fired::Failed(format!(
                "{} of countdown {} wrote no {} event ({} other event(s))",
                command.command_id,
                due.countdown,
                kind,
                outcome.events.len()
            )),
            Err(StoreError::Refused(refusal)) if done(&refusal, deadline) => Fired::AlreadyDone,
            Err(e) => Fired::Failed(format!(
                "{} of countdown {}: {e}",
                command.command_id, due.countdown
            )),
        }
    }
}

/// Whether a refusal of a deadline's command means there is nothing (left) to fire: it was
/// fired already, or the countdown is no longer running or not due (the view was behind).
fn done(refusal: &DomainError, deadline: Deadline) -> bool {
    match refusal {
        DomainError::ReminderAlreadySent { .. } => deadline == Deadline::Reminder,
        DomainError::NotInCountdown { .. }
        | DomainError::WorkspaceDissolved { .. }
        | DomainError::DeadlineNotReached { .. } => true,
        _ => false,
    }
}

/// The deterministic command id of a deadline: `deadline:KIND:N:WORKSPACE`, or
/// `deadline:KIND:N:sha256:HEX` (the SHA-256 of the workspace id) when that would be longer than
/// [`MAX_ID_LEN`].
///
/// # Errors
/// [`DomainError::InvalidValue`] — never for a valid workspace id.
pub fn command_id(
    kind: &str,
    countdown: u32,
    workspace: &WorkspaceId,
) -> Result<ExternalId, DomainError> {
    let plain = format!("deadline:{kind}:{countdown}:{workspace}");
    if plain.chars().count() <= MAX_ID_LEN {
        return ExternalId::parse(&plain);
    }
    let digest = hex::encode(Sha256::digest(workspace.as_str().as_bytes()));
    ExternalId::parse(&format!("deadline:{kind}:{countdown}:sha256:{digest}"))
}
