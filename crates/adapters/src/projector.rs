//! Keeping the views and the outbox up to date as commands commit — and catching up from the log
//! whenever that was interrupted.
//!
//! The store tells the [`Projector`] about each commit ([`CommitListener`]); the projector queues
//! the update and a background task applies queued updates in batches, one transaction per batch.
//! An update that fails is not dropped: the projector marks itself behind and catches up from the
//! log — every workspace whose view is older than its stream is re-projected from its last applied
//! sequence on — retrying until the database answers. [`Projector::flush`] waits until everything
//! committed so far is projected.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use billing_store::{Commit, CommitListener, Db};
use chrono::Utc;
use tokio::sync::{mpsc, oneshot};

use crate::error::AdapterError;
use crate::outbox::ensure_outbox;
use crate::view_store::{self, RebuildReport, ViewUpdate};

enum Msg {
    Update(Box<ViewUpdate>),
    Flush(oneshot::Sender<Result<(), String>>),
}

/// Projects commits into the billing view, the audit trail and the outbox.
pub struct Projector {
    db: Db,
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
/// How many lagging workspaces one catch-up round re-projects.
const LAGGING_BATCH: u32 = 500;

impl Projector {
    /// Starts a projector over `db` (a background task on the current tokio runtime). It starts
    /// behind: its first work is to catch up with whatever the log holds.
    pub fn start(db: Db) -> Arc<Self> {
        let (queue, receiver) = mpsc::channel(QUEUE);
        let behind = Arc::new(AtomicBool::new(true));
        let projector = Arc::new(Self {
            db: db.clone(),
            queue,
            behind: behind.clone(),
        });
        tokio::spawn(run(db, receiver, behind));
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
        catch_up(&self.db).await
    }

    /// Rebuilds the views from the log ([`view_store::rebuild`]), then catches up with commits
    /// that landed meanwhile.
    ///
    /// # Errors
    /// As [`view_store::rebuild`].
    pub async fn rebuild(&self, progress: impl FnMut(u64)) -> Result<RebuildReport, AdapterError> {
        let report = view_store::rebuild(&self.db, progress).await?;
        self.behind.store(true, Ordering::SeqCst);
        self.flush().await?;
        Ok(report)
    }
}

impl CommitListener for Projector {
    fn committed(&self, commit: &Commit<'_>) {
        let update =
            ViewUpdate::for_commit(commit.workspace, commit.state, commit.events, Utc::now());
        let Some(update) = update else { return };
        if self.queue.try_send(Msg::Update(Box::new(update))).is_err() {
            // Full or stopped: the log still has it; catch up later.
            self.behind.store(true, Ordering::SeqCst);
        }
    }
}

/// Re-projects every workspace whose view is behind its stream, and records opening reminders
/// for upgrades the outbox lacks (as recorded now, by the system clock). Returns how many
/// workspaces it re-projected.
///
/// # Errors
/// [`AdapterError::Database`] / [`AdapterError::Store`] (a stream that does not verify);
/// [`AdapterError::Integrity`] for a stored workspace id or upgrade that does not parse.
pub async fn catch_up(db: &Db) -> Result<u64, AdapterError> {
    let mut total = 0u64;
    loop {
        let lagging = view_store::lagging_workspaces(db, LAGGING_BATCH).await?;
        if lagging.is_empty() {
            break;
        }
        let mut updates = Vec::with_capacity(lagging.len());
        for workspace in &lagging {
            if let Some(update) = view_store::catch_up_update(db, workspace, Utc::now()).await? {
                updates.push(update);
            }
        }
        view_store::apply(db, &updates).await?;
        total += lagging.len() as u64;
        if lagging.len() < LAGGING_BATCH as usize {
            break;
        }
    }
    ensure_outbox(db, Utc::now()).await?;
    Ok(total)
}

async fn run(db: Db, mut receiver: mpsc::Receiver<Msg>, behind: Arc<AtomicBool>) {
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
            match catch_up(&db).await {
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
