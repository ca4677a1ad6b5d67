//! Executing a command until it settles: an outcome (events or a rule's refusal), retrying what
//! is transient (the database gone or restarting, a port that could not answer, conflicts the
//! store's own retry helper gave up on), or giving up after a while of nothing but failures.

use std::future::Future;
use std::time::{Duration, Instant};

use billing_domain::{DomainError, WorkspaceCommand, WorkspaceId};
use billing_store::{BillingStore, RetryPolicy, StoreError, StoredEvent};

/// How a command ended.
#[derive(Debug)]
pub(crate) enum Settled {
    /// It wrote (or had written, when `replayed`) these events.
    Ok {
        /// The events, as stored.
        events: Vec<StoredEvent>,
        /// Whether the store returned the outcome of an earlier execution.
        replayed: bool,
    },
    /// A rule refused it; nothing was written.
    Refused(DomainError),
    /// Not a rule and not transient (or transient for too long): an anomaly.
    Failed(String),
}

impl Settled {
    /// The first and last sequence written, for an `Ok` with events.
    pub(crate) fn range(&self) -> Option<(u64, u64)> {
        match self {
            Settled::Ok { events, .. } => Some((events.first()?.sequence, events.last()?.sequence)),
            _ => None,
        }
    }
}

/// What an error means to a caller that keeps going.
pub(crate) enum Kind {
    /// Retry later (the database, a port, a conflict).
    Transient,
    /// A rule refused the command.
    Rule(DomainError),
    /// Anything else: report it.
    Fatal,
}

/// Classifies a store error.
pub(crate) fn classify(error: StoreError) -> (Kind, String) {
    let text = error.to_string();
    let kind = match error {
        StoreError::Unavailable { .. }
        | StoreError::Database(_)
        | StoreError::Conflict { .. }
        | StoreError::PortUnavailable { .. } => Kind::Transient,
        // The store routes a stored history it cannot decide on to `Integrity` and a caller bug
        // to `Internal` (both fatal below): a refusal is a rule's.
        StoreError::Refused(rule) => Kind::Rule(rule),
        _ => Kind::Fatal,
    };
    (kind, text)
}

/// Backoff between attempts while the database is away: doubling from 50 ms to 2 s.
#[derive(Debug)]
pub(crate) struct Backoff {
    next: Duration,
}

impl Backoff {
    pub(crate) fn new() -> Self {
        Self {
            next: Duration::from_millis(50),
        }
    }

    /// Sleeps, then doubles the next delay.
    pub(crate) async fn wait(&mut self) {
        tokio::time::sleep(self.next).await;
        self.next = (self.next * 2).min(Duration::from_secs(2));
    }
}

/// Counts of what happened on the way to the outcomes.
#[derive(Debug, Default)]
pub(crate) struct Retries {
    /// Attempts that failed transiently and were retried.
    pub(crate) transient: std::sync::atomic::AtomicU64,
}

/// Executes `command` through the store's retry helper until it settles.
///
/// Transient failures are retried with [`Backoff`] for up to `patience` without a single
/// success; then the command fails.
pub(crate) async fn settle(
    store: &BillingStore,
    workspace: &WorkspaceId,
    command: &WorkspaceCommand,
    policy: RetryPolicy,
    patience: Duration,
    retries: &Retries,
) -> Settled {
    let started = Instant::now();
    let mut backoff = Backoff::new();
    loop {
        match store.execute_with_retry(workspace, command, policy).await {
            Ok(outcome) => {
                return Settled::Ok {
                    events: outcome.events,
                    replayed: outcome.replayed,
                }
            }
            Err(error) => match classify(error) {
                (Kind::Rule(rule), _) => return Settled::Refused(rule),
                (Kind::Fatal, text) => return Settled::Failed(text),
                (Kind::Transient, text) => {
                    if started.elapsed() > patience {
                        return Settled::Failed(format!(
                            "gave up after {:?} of transient failures; last: {text}",
                            started.elapsed()
                        ));
                    }
                    retries
                        .transient
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    backoff.wait().await;
                }
            },
        }
    }
}

/// Runs `op` until it succeeds, retrying every error for up to `patience` (set-up steps such as
/// opening the store or registering an account while the database restarts).
pub(crate) async fn persist<T, E: std::fmt::Display, F, Fut>(
    what: &str,
    patience: Duration,
    mut op: F,
) -> Result<T, String>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let started = Instant::now();
    let mut backoff = Backoff::new();
    loop {
        match op().await {
            Ok(v) => return Ok(v),
            Err(e) => {
                if started.elapsed() > patience {
                    return Err(format!(
                        "{what}: gave up after {:?}: {e}",
                        started.elapsed()
                    ));
                }
                backoff.wait().await;
            }
        }
    }
}
