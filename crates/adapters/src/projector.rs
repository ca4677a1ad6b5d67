//! Keeping the views and the outbox up to date as commands commit — and catching up from the log
//! whenever that was interrupted.
//!
//! The store tells the [`Projector`] about each commit ([`CommitListener`]); the projector queues
//! the update and a background task applies queued updates in batches, one transaction per batch.
//! An update that fails is not dropped: the projector marks itself behind and catches up from the
//! log — every workspace whose view is older than its stream is re-projected from its last applied
//! sequence on — retrying until the database answers. [`Projector::flush`] waits until everything
//! committed so far is projected.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use billing_domain::{Clock, CloudAccount, MethodId, WorkspaceId};
use billing_store::{
    Commit, CommitListener, Db, PositionedRow, StoreError, StoreTx, SubscriptionHandler,
};
use tokio::sync::{mpsc, oneshot};

use crate::error::AdapterError;
use crate::view_store::{self, views_subscription, RebuildReport, ViewUpdate};

enum Msg {
    Update(Box<ViewUpdate>),
    Flush(oneshot::Sender<Result<(), String>>),
}

/// Projects commits into the billing view, the audit trail and the outbox.
pub struct Projector {
    db: Db,
    /// The process clock: the views subscription's lease, and when projected rows are recorded.
    clock: Arc<dyn Clock>,
    queue: mpsc::Sender<Msg>,
    behind: Arc<AtomicBool>,
}

impl std::fmt::Debug for Projector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Projector")
            .field("behind", &self.behind.load(Ordering::SeqCst))
            .finish_non_exhaustive()
    }
}

/// How many updates wait in the queue before the projector falls back to catching up.
const QUEUE: usize = 10_000;
/// How many updates one transaction applies.
const BATCH: usize = 500;

impl Projector {
    /// Starts a projector over `db` (a background task on the current tokio runtime), running
    /// by `clock`, the process clock ([`crate::Clocks::process`]). It starts behind: its first
    /// work is to catch up with whatever the log holds.
    pub fn start(db: Db, clock: Arc<dyn Clock>) -> Arc<Self> {
        let (queue, receiver) = mpsc::channel(QUEUE);
        let behind = Arc::new(AtomicBool::new(true));
        let projector = Arc::new(Self {
            db: db.clone(),
            clock: clock.clone(),
            queue,
            behind: behind.clone(),
        });
        tokio::spawn(run(db, clock, receiver, behind));
        projector
    }

    /// Waits until every commit heard so far is projected (and any catch-up is done).
    ///
    /// # Errors
    /// [`AdapterError::Behind`] when the views could not be brought up to date;
    /// [`AdapterError::Internal`] when the projector's task has stopped.
    pub async fn flush(&self) -> Result<(), AdapterError> {
        let stopped = || AdapterError::Internal {
            detail: "the projector's background task has stopped".into(),
        };
        let (done, result) = oneshot::channel();
        self.queue
            .send(Msg::Flush(done))
            .await
            .map_err(|_| stopped())?;
        match result.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(detail)) => Err(AdapterError::Behind { detail }),
            Err(_) => Err(stopped()),
        }
    }

    /// Brings every lagging workspace's views up to its stream now.
    ///
    /// # Errors
    /// As [`catch_up`].
    pub async fn catch_up(&self) -> Result<u64, AdapterError> {
        catch_up(&self.db, self.clock.as_ref()).await
    }

    /// Rebuilds the views from the log ([`view_store::rebuild`]), then catches up with commits
    /// that landed meanwhile.
    ///
    /// # Errors
    /// As [`view_store::rebuild`].
    pub async fn rebuild(&self, progress: impl FnMut(u64)) -> Result<RebuildReport, AdapterError> {
        let report = view_store::rebuild(&self.db, self.clock.as_ref(), progress).await?;
        self.behind.store(true, Ordering::SeqCst);
        self.flush().await?;
        Ok(report)
    }
}

impl CommitListener for Projector {
    fn committed(&self, commit: &Commit<'_>) {
        let update = ViewUpdate::for_commit(
            commit.workspace,
            commit.state,
            commit.events,
            self.clock.now(),
        );
        let Some(update) = update else { return };
        if self.queue.try_send(Msg::Update(Box::new(update))).is_err() {
            // Full or stopped: the log still has it; catch up later.
            self.behind.store(true, Ordering::SeqCst);
        }
    }
}

/// How long a catch-up holds the views subscription without renewing it (it renews at every
/// batch and releases it when done); one that died is taken over this long after.
const VIEWS_LEASE: Duration = Duration::from_secs(5);

/// How long [`catch_up`] waits — for another process's catch-up to finish, and for committed
/// events to become readable in the commit order (on PostgreSQL, once every older transaction on
/// the server has ended) — before it reports the views behind.
const CATCH_UP_PATIENCE: Duration = Duration::from_secs(30);

/// Events per catch-up batch.
const CATCH_UP_BATCH: u32 = 500;

/// The views subscription's handler: re-projects, from its stream, every workspace of the batch
/// whose view is behind the batch, in the batch's transaction (with the checkpoint). Views the
/// commit path already brought up to date are left alone: one query per batch finds them.
struct ProjectBehind<'c> {
    db: Db,
    clock: &'c dyn Clock,
    projected: AtomicU64,
}

#[async_trait]
impl SubscriptionHandler for ProjectBehind<'_> {
    async fn handle(
        &self,
        events: &[PositionedRow],
        mut tx: StoreTx<'_>,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        let mut newest: HashMap<&str, u64> = HashMap::new();
        for e in events {
            let at = newest.entry(e.row.aggregate_id.as_str()).or_default();
            *at = (*at).max(e.row.sequence);
        }
        let workspaces: Vec<&str> = newest.keys().copied().collect();
        let viewed = view_store::view_sequences(&mut tx, &workspaces).await?;
        let mut updates = Vec::new();
        for (workspace, sequence) in newest {
            if viewed.get(workspace).is_some_and(|at| *at >= sequence) {
                continue;
            }
            let id: WorkspaceId = workspace.parse().map_err(|e| {
                format!("events: the stored workspace id {workspace:?} does not parse: {e}")
            })?;
            // Events never change, so reading the stream beside the batch's transaction is safe;
            // the update (the whole stream, maybe past this batch) never moves a view back.
            if let Some(update) =
                view_store::catch_up_update(&self.db, &id, self.clock.now()).await?
            {
                updates.push(update);
            }
        }
        self.projected
            .fetch_add(updates.len() as u64, Ordering::Relaxed);
        view_store::apply_in(tx, &updates).await?;
        Ok(())
    }
}

/// Every workspace whose billing view settles through `method` with `account` (the same account
/// id and marketplace instance), in workspace order: the workspaces an ended or resumed cloud
/// subscription is reported to. The views are brought up to the log first ([`catch_up`]), so a
/// workspace whose view missed a commit is not left out.
///
/// # Errors
/// As [`catch_up`]; [`AdapterError::Store`]; [`AdapterError::Corrupt`] for a stored workspace id
/// that does not parse.
pub async fn workspaces_settling_through(
    db: &Db,
    clock: &dyn Clock,
    method: &MethodId,
    account: &CloudAccount,
) -> Result<Vec<WorkspaceId>, AdapterError> {
    catch_up(db, clock).await?;
    view_store::settling_through(db, method, account).await
}

/// A holder name unique to this call.
fn holder() -> String {
    static CALLS: AtomicU64 = AtomicU64::new(0);
    format!(
        "projector-{}-{}",
        std::process::id(),
        CALLS.fetch_add(1, Ordering::Relaxed)
    )
}

/// Runs the views subscription until nothing readable is left; `Ok(false)` when another
/// instance holds it (or took it over meanwhile).
async fn drain(db: &Db, handler: &ProjectBehind<'_>) -> Result<bool, AdapterError> {
    let clock = handler.clock;
    let Some(mut subscriber) = db
        .subscriber(&views_subscription(), &holder(), clock.now(), VIEWS_LEASE)
        .await?
    else {
        return Ok(false);
    };
    let drained = loop {
        match subscriber
            .handle_next(CATCH_UP_BATCH, clock.now(), handler)
            .await
        {
            Ok(handled) if handled.events == 0 => break Ok(true),
            Ok(_) => {
                if !subscriber.renew(clock.now()).await? {
                    break Ok(false);
                }
            }
            Err(StoreError::LostLease { .. }) => break Ok(false),
            Err(e) => break Err(AdapterError::from(e)),
        }
    };
    // Released in every case, so the next catch-up need not wait for the lease to run out.
    let released = subscriber.release().await;
    let drained = drained?;
    released?;
    Ok(drained)
}

/// Brings the views and the outbox up to the log, running by `clock` (the process clock: the
/// views subscription's lease). When some workspace's view is behind its stream, it runs the
/// views subscription ([`VIEWS_SUBSCRIPTION`](crate::view_store::VIEWS_SUBSCRIPTION)) from its
/// checkpoint to the end of what is readable in the commit order, then checks that no
/// workspace's view is behind its stream — waiting, when one is, for its events to become
/// readable (on PostgreSQL a transaction that committed late is readable once every older
/// transaction has ended) or for another process's catch-up to finish. Returns
/// how many workspaces it re-projected.
///
/// # Errors
/// [`AdapterError::Behind`] when views are still behind after 30 s (a long transaction on the
/// server, or views edited by hand: `billing rebuild-views`); [`AdapterError::Store`]
/// (the database, or a stream that does not verify); [`AdapterError::Corrupt`] for a
/// stored workspace id or upgrade that does not parse.
pub async fn catch_up(db: &Db, clock: &dyn Clock) -> Result<u64, AdapterError> {
    let handler = ProjectBehind {
        db: db.clone(),
        clock,
        projected: AtomicU64::new(0),
    };
    // Nothing behind (the commit path kept up): the subscription is not needed now, and its
    // lease is left to a catch-up that has work.
    if view_store::lagging_workspaces(db, 1).await?.is_empty() {
        return Ok(0);
    }
    let deadline = tokio::time::Instant::now() + CATCH_UP_PATIENCE;
    loop {
        if drain(db, &handler).await? && view_store::lagging_workspaces(db, 1).await?.is_empty() {
            return Ok(handler.projected.load(Ordering::Relaxed));
        }
        if tokio::time::Instant::now() >= deadline {
            let behind = view_store::lagging_workspaces(db, 1000).await?.len();
            return Err(AdapterError::Behind {
                detail: format!(
                    "after {} s, the views of {behind}{} workspace(s) are still behind their streams: \
                     their events are not readable in commit order yet (a long transaction on \
                     the server holds them back), another process's catch-up holds the views \
                     subscription, or the views were changed by hand",
                    CATCH_UP_PATIENCE.as_secs(),
                    if behind == 1000 { " or more" } else { "" }
                ),
            });
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn run(
    db: Db,
    clock: Arc<dyn Clock>,
    mut receiver: mpsc::Receiver<Msg>,
    behind: Arc<AtomicBool>,
) {
    let mut backoff = Duration::from_millis(50);
    loop {
        // While behind, wake up now and then even without new commits.
        let first = if behind.load(Ordering::SeqCst) {
            match tokio::time::timeout(backoff, receiver.recv()).await {
                Ok(None) => return,
                Ok(Some(msg)) => Some(msg),
                Err(_) => None,
            }
        } else {
            match receiver.recv().await {
                None => return,
                Some(msg) => Some(msg),
            }
        };
        let mut updates = Vec::new();
        let mut flushes = Vec::new();
        let mut next = first;
        while let Some(msg) = next {
            match msg {
                Msg::Update(update) => updates.push(*update),
                Msg::Flush(done) => flushes.push(done),
            }
            if updates.len() >= BATCH {
                break;
            }
            next = receiver.try_recv().ok();
        }
        // Queued updates only ever extend a view that stands right before them (see
        // `ViewUpdate::first_sequence`); whatever they cannot extend, the catch-up re-projects.
        if let Err(e) = view_store::apply(&db, &updates).await {
            tracing::warn!("view update failed, catching up from the log: {e}");
            behind.store(true, Ordering::SeqCst);
        }
        let mut outcome = Ok(());
        if behind.load(Ordering::SeqCst) {
            match catch_up(&db, clock.as_ref()).await {
                Ok(_) => {
                    behind.store(false, Ordering::SeqCst);
                    backoff = Duration::from_millis(50);
                }
                Err(e) => {
                    tracing::warn!("catch-up failed, retrying in {backoff:?}: {e}");
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                    outcome = Err(e.to_string());
                }
            }
        }
        for done in flushes {
            // A flusher that went away no longer needs the answer.
            let _ = done.send(outcome.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_views_subscription_name_is_valid() {
        assert_eq!(
            super::views_subscription().as_str(),
            crate::view_store::VIEWS_SUBSCRIPTION
        );
    }
}
