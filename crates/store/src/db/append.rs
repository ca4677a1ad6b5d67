//! The write path: what one command appends, how it is classified when it does not land, and
//! PostgreSQL's one-statement append with its group commit. (SQLite's is `sqlite_writer`.)
//!
//! Cancellation: a PostgreSQL append that runs alone runs on a lane, which closes its connection
//! if the caller's future is dropped mid-statement (the statement is atomic: it lands whole or
//! not at all). Appends that run while others are in flight are carried by a committer task the
//! callers do not own, so dropping one caller never cancels the batch that carries the others.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};

use sqlx::PgConnection;
use tokio::sync::oneshot;

use super::backend::PerBackend;
use super::{seq_i64, Db, Writer};
use crate::error::{DbError, StoreError};
use crate::record::AGGREGATE_TYPE;

/// Everything one command appends: its events, the new head and its idempotency record, all or
/// nothing.
#[derive(Debug)]
pub(crate) struct Append {
    /// The workspace.
    pub(crate) workspace: String,
    /// The events, with consecutive sequences (at most [`MAX_EVENTS_PER_COMMAND`]).
    pub(crate) rows: Vec<NewRow>,
    /// The new head hash (the last row's hash).
    pub(crate) head_hash: String,
    /// The command id.
    pub(crate) command_id: String,
    /// The command's content hash.
    pub(crate) command_hash: String,
}

/// One event to append.
#[derive(Debug)]
pub(crate) struct NewRow {
    /// The sequence.
    pub(crate) sequence: u64,
    /// The event type.
    pub(crate) event_type: &'static str,
    /// The event version.
    pub(crate) event_version: &'static str,
    /// The payload text (canonical JSON).
    pub(crate) payload: String,
    /// The metadata text (canonical JSON).
    pub(crate) metadata: String,
}

/// The most events one command appends (accepting the agreement appends two).
pub(crate) const MAX_EVENTS_PER_COMMAND: usize = 2;

/// Why an append did not land. Every variant means nothing of it was written, except
/// `Unavailable` and `Database`, which mean the outcome is unknown (the connection failed
/// around the commit).
#[derive(Clone, Debug)]
pub(crate) enum AppendError {
    /// Another writer appended to the workspace first (its sequence or head is taken).
    Conflict,
    /// The command id already wrote events.
    DuplicateCommand,
    /// The database could not be reached, or did not let the append in within the timeout.
    Unavailable {
        /// Which database.
        url: String,
        /// Why.
        reason: String,
    },
    /// The database refused or failed the append for another reason.
    Database(DbError),
    /// A bug in this library.
    Internal(String),
}

impl AppendError {
    /// What a store error on the way to an append (taking a lane) means for the append.
    pub(super) fn from_store(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable { url, reason } => AppendError::Unavailable { url, reason },
            StoreError::Database(e) => AppendError::Database(e),
            other => AppendError::Internal(other.to_string()),
        }
    }
}

/// Classifies a PostgreSQL error of an append: a unique violation on the command id is a
/// duplicate command, any other unique violation (the stream key, the head) a conflict.
fn classify(err: sqlx::Error) -> AppendError {
    if let sqlx::Error::Database(db) = &err {
        if db.is_unique_violation() {
            return if db.constraint() == Some("commands_pkey") {
                AppendError::DuplicateCommand
            } else {
                AppendError::Conflict
            };
        }
    }
    AppendError::Database(DbError::from_sqlx(err))
}

/// Group commit state: how many appends are in flight, and those waiting for a committer.
#[derive(Default)]
pub(crate) struct PgGroup {
    active: AtomicUsize,
    queue: Mutex<Queue>,
}

#[derive(Default)]
struct Queue {
    waiting: Vec<Queued>,
    committers: usize,
}

/// An append waiting for a committer, with where to send its outcome.
type Queued = (Append, oneshot::Sender<Result<(), AppendError>>);

/// Committer tasks (batches in flight) at once.
const COMMITTERS: usize = 2;

/// The most appends one group commit carries.
pub(crate) const MAX_GROUP: usize = 64;

impl Db {
    /// Appends one command's events, moves the head and records the command id — all or nothing.
    /// Concurrent appends share transactions and syncs (group commit) on both backends.
    pub(crate) async fn append(&self, append: Append) -> Result<(), AppendError> {
        if append.rows.is_empty() {
            return Ok(());
        }
        if append.rows.len() > MAX_EVENTS_PER_COMMAND {
            return Err(AppendError::Internal(format!(
                "a command produced {} events; the store appends at most {MAX_EVENTS_PER_COMMAND} per command; nothing was written",
                append.rows.len()
            )));
        }
        let appended = match &self.writer {
            Writer::Sqlite(writer) => writer.append(append).await,
            Writer::Postgres(group) => self.append_pg(group, append).await,
        };
        if appended.is_ok() {
            self.commits.committed();
        }
        appended
    }

    /// PostgreSQL: directly on a lane when nothing else is in flight, else through the group
    /// commit.
    async fn append_pg(&self, group: &PgGroup, append: Append) -> Result<(), AppendError> {
        /// Counts an append in flight until dropped (also when its future is cancelled).
        struct InFlight<'a>(&'a AtomicUsize);
        impl Drop for InFlight<'_> {
            fn drop(&mut self) {
                self.0.fetch_sub(1, Ordering::SeqCst);
            }
        }
        let alone = group.active.fetch_add(1, Ordering::SeqCst) == 0;
        let _in_flight = InFlight(&group.active);
        if alone {
            return self.append_on_lane(&append).await;
        }
        let (done, outcome) = oneshot::channel();
        let start = {
            let mut queue = group.queue.lock().unwrap_or_else(PoisonError::into_inner);
            queue.waiting.push((append, done));
            let start = queue.committers < COMMITTERS;
            if start {
                queue.committers += 1;
            }
            start
        };
        if start {
            let db = self.clone();
            tokio::spawn(async move { db.commit_groups().await });
        }
        outcome.await.unwrap_or_else(|_| {
            Err(AppendError::Internal(
                "the group commit carrying this command stopped without an answer; its outcome is unknown: re-send it with the same command id".into(),
            ))
        })
    }

    /// A committer: commits what is waiting, batch after batch, until nothing is.
    async fn commit_groups(self) {
        let Writer::Postgres(group) = &self.writer else {
            return;
        };
        loop {
            let batch: Vec<Queued> = {
                let mut queue = group.queue.lock().unwrap_or_else(PoisonError::into_inner);
                if queue.waiting.is_empty() {
                    queue.committers -= 1;
                    return;
                }
                let n = queue.waiting.len().min(MAX_GROUP);
                queue.waiting.drain(..n).collect()
            };
            let (appends, senders): (Vec<Append>, Vec<_>) = batch.into_iter().unzip();
            let outcomes = if appends.len() == 1 {
                vec![self.append_on_lane(&appends[0]).await]
            } else {
                self.append_batch_on_lane(&appends).await
            };
            for (sender, outcome) in senders.into_iter().zip(outcomes) {
                // A caller that went away no longer needs its outcome.
                let _ = sender.send(outcome);
            }
        }
    }

    /// One append on a lane. The connection is kept after a conflict or a duplicate command id
    /// (the database answered; nothing is left open), closed after anything else.
    async fn append_on_lane(&self, append: &Append) -> Result<(), AppendError> {
        let mut lane = self.lane().await.map_err(AppendError::from_store)?;
        let PerBackend::Postgres(conn) = &mut lane.conn else {
            return Err(AppendError::Internal(
                "a PostgreSQL append was given a SQLite connection".into(),
            ));
        };
        let result = append_one(conn, append).await;
        if matches!(
            result,
            Ok(()) | Err(AppendError::Conflict | AppendError::DuplicateCommand)
        ) {
            lane.release();
        }
        result
    }

    /// Several appends in one statement on a lane; a statement that failed applies its fault to
    /// every append in it.
    pub(super) async fn append_batch_on_lane(
        &self,
        appends: &[Append],
    ) -> Vec<Result<(), AppendError>> {
        let outcome = async {
            let mut lane = self.lane().await.map_err(AppendError::from_store)?;
            let PerBackend::Postgres(conn) = &mut lane.conn else {
                return Err(AppendError::Internal(
                    "a PostgreSQL append was given a SQLite connection".into(),
                ));
            };
            let outcomes = append_batch(conn, appends).await?;
            lane.release();
            Ok(outcomes)
        };
        match outcome.await {
            Ok(outcomes) => outcomes,
            Err(e) => appends.iter().map(|_| Err(e.clone())).collect(),
        }
    }
}

/// The one statement that appends a command (PostgreSQL): its events and its record. See
/// [`append_sql`] for the parameters.
async fn append_one(conn: &mut PgConnection, append: &Append) -> Result<(), AppendError> {
    let (Some(first), Some(last)) = (append.rows.first(), append.rows.last()) else {
        return Ok(());
    };
    let mut query = sqlx::query(append_sql(append.rows.len()))
        .bind(AGGREGATE_TYPE)
        .bind(append.workspace.as_str())
        .bind(seq_i64(last.sequence))
        .bind(append.head_hash.as_str())
        .bind(append.command_id.as_str())
        .bind(append.command_hash.as_str())
        .bind(seq_i64(first.sequence));
    for row in &append.rows {
        query = query
            .bind(seq_i64(row.sequence))
            .bind(row.event_type)
            .bind(row.event_version)
            .bind(row.payload.as_str())
            .bind(row.metadata.as_str());
    }
    query.execute(&mut *conn).await.map_err(classify)?;
    Ok(())
}

/// Several commands' appends in one statement and one transaction: `billing_append_batch` gives
/// each its own subtransaction and answers one status per append. The statement's own failure
/// is classified exactly as a single append's is (and then applies to every append in it).
async fn append_batch(
    conn: &mut PgConnection,
    appends: &[Append],
) -> Result<Vec<Result<(), AppendError>>, AppendError> {
    let n = appends.len();
    let (mut ws, mut firsts, mut lasts) = (Vec::with_capacity(n), Vec::new(), Vec::new());
    let (mut heads, mut cmds, mut hashes) = (Vec::new(), Vec::new(), Vec::new());
    let (mut ev_append, mut ev_seq, mut ev_type) = (Vec::new(), Vec::new(), Vec::new());
    let (mut ev_version, mut ev_payload, mut ev_meta) = (Vec::new(), Vec::new(), Vec::new());
    for (i, a) in appends.iter().enumerate() {
        let (Some(first), Some(last)) = (a.rows.first(), a.rows.last()) else {
            return Err(AppendError::Internal(
                "an empty append reached the group commit".into(),
            ));
        };
        ws.push(a.workspace.as_str());
        firsts.push(seq_i64(first.sequence));
        lasts.push(seq_i64(last.sequence));
        heads.push(a.head_hash.as_str());
        cmds.push(a.command_id.as_str());
        hashes.push(a.command_hash.as_str());
        for row in &a.rows {
            ev_append.push(i32::try_from(i + 1).unwrap_or(i32::MAX));
            ev_seq.push(seq_i64(row.sequence));
            ev_type.push(row.event_type);
            ev_version.push(row.event_version);
            ev_payload.push(row.payload.as_str());
            ev_meta.push(row.metadata.as_str());
        }
    }
    let statuses: Vec<String> = sqlx::query_scalar(
        "SELECT billing_append_batch($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
    )
    .bind(AGGREGATE_TYPE)
    .bind(&ws)
    .bind(&firsts)
    .bind(&lasts)
    .bind(&heads)
    .bind(&cmds)
    .bind(&hashes)
    .bind(&ev_append)
    .bind(&ev_seq)
    .bind(&ev_type)
    .bind(&ev_version)
    .bind(&ev_payload)
    .bind(&ev_meta)
    .fetch_one(&mut *conn)
    .await
    .map_err(classify)?;
    if statuses.len() != n {
        // The statement committed, but what it committed is not known per append.
        return Err(AppendError::Internal(format!(
            "billing_append_batch answered {} statuses for {n} appends; their outcomes are unknown: re-send them with the same command ids",
            statuses.len()
        )));
    }
    Ok(statuses
        .into_iter()
        .map(|status| match status.as_str() {
            "ok" => Ok(()),
            "conflict" => Err(AppendError::Conflict),
            "duplicate" => Err(AppendError::DuplicateCommand),
            other => Err(AppendError::Internal(format!(
                "billing_append_batch answered the unknown status {other:?}; the append's outcome is unknown: re-send it with the same command id"
            ))),
        })
        .collect())
}

/// The statement that appends `events` events (PostgreSQL): the events and the command's
/// record (its idempotency record and the new head), in one data-modifying statement.
/// Parameters: $1 aggregate type, $2 workspace, $3 last sequence, $4 head hash, $5 command id,
/// $6 command hash, $7 first sequence, then five per event (sequence, type, version, payload,
/// metadata).
fn append_sql(events: usize) -> &'static str {
    static CACHE: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    let cache = CACHE.get_or_init(|| {
        (1..=MAX_EVENTS_PER_COMMAND)
            .map(|n| {
                let values: Vec<String> = (0..n)
                    .map(|i| {
                        let b = 8 + i * 5;
                        format!(
                            "($1, $2, ${}, ${}, ${}, ${}::json, ${}::json)",
                            b,
                            b + 1,
                            b + 2,
                            b + 3,
                            b + 4
                        )
                    })
                    .collect();
                format!(
                    "WITH new_events AS (INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata) VALUES {}) \
                     INSERT INTO commands (command_id, aggregate_type, aggregate_id, command_hash, first_sequence, last_sequence, head_hash) \
                     VALUES ($5, $1, $2, $6, $7, $3, $4)",
                    values.join(", ")
                )
            })
            .collect()
    });
    cache
        .get(events.clamp(1, MAX_EVENTS_PER_COMMAND) - 1)
        .map_or("", String::as_str)
}
