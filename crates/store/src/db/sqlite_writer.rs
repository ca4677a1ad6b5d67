//! SQLite's write path: one writer thread per store that owns the only connection appends go
//! through (rusqlite, on the same `libsqlite3-sys` as sqlx), and commits whatever is queued in
//! one transaction — one sync for all of it, as PostgreSQL's group commit does.
//!
//! Why a thread and not sqlx: SQLite has one writer at a time anyway, so nothing is lost by
//! queueing; a group needs a savepoint per append (one command's conflict must not undo the
//! others), which is a round trip per statement through sqlx's worker but a plain function call
//! here; and a caller's future only ever waits for an answer, so dropping it (a host's request
//! timeout) cannot leave a connection inside a transaction or holding the file's write lock.
//! See `docs/adr/0007-sqlite-appends-on-one-writer-thread.md`.

use std::path::PathBuf;
use std::time::Duration;

use rusqlite::{ffi, params, Connection, ErrorCode, OpenFlags};
use tokio::sync::{mpsc, oneshot};

use super::append::{Append, AppendError, MAX_GROUP};
use super::{seq_i64, SqliteDurability};
use crate::error::{DbError, StoreError};
use crate::record::AGGREGATE_TYPE;

/// What the writer opens.
pub(super) struct WriterConfig {
    /// The store's URL, for messages.
    pub(super) url: String,
    /// The file (or, in memory, the shared-cache name sqlx gave the database).
    pub(super) file: PathBuf,
    /// An in-memory database (shared with the pool through SQLite's shared cache).
    pub(super) in_memory: bool,
    /// `PRAGMA synchronous` of the writer's connection: the durability of every commit.
    pub(super) durability: SqliteDurability,
    /// How long `BEGIN IMMEDIATE` waits for another process's write lock.
    pub(super) busy_timeout: Duration,
}

/// The handle callers send appends to.
pub(super) struct SqliteWriter {
    jobs: mpsc::UnboundedSender<Job>,
}

/// An append, and where its outcome goes.
pub(super) struct Job {
    pub(super) append: Append,
    pub(super) done: oneshot::Sender<Result<(), AppendError>>,
}

const INSERT_COMMAND: &str = "INSERT INTO commands (command_id, aggregate_type, aggregate_id, \
     command_hash, first_sequence, last_sequence, head_hash) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) \
     ON CONFLICT (command_id) DO NOTHING";

const INSERT_EVENT: &str = "INSERT INTO events (aggregate_type, aggregate_id, sequence, \
     event_type, event_version, payload, metadata) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";

impl SqliteWriter {
    /// Opens the writer's connection on its own thread and starts it.
    pub(super) async fn start(config: WriterConfig) -> Result<Self, StoreError> {
        let (jobs, queue) = mpsc::unbounded_channel();
        let (opened, opening) = oneshot::channel();
        let url = config.url.clone();
        std::thread::Builder::new()
            .name("billing-sqlite-writer".into())
            .spawn(move || match open(&config) {
                Ok(conn) => {
                    let _ = opened.send(Ok(()));
                    Writer { conn, config }.run(queue);
                }
                Err(e) => {
                    let _ = opened.send(Err(e));
                }
            })
            .map_err(|e| StoreError::Unavailable {
                url: url.clone(),
                reason: format!("could not start the SQLite writer thread: {e}"),
            })?;
        opening.await.map_err(|_| {
            StoreError::internal("the SQLite writer thread stopped before it opened the database")
        })??;
        Ok(Self { jobs })
    }

    /// Queues an append and waits for its outcome. Dropping this future leaves the append to
    /// the writer, which skips it if it has not started the batch yet.
    pub(super) async fn append(&self, append: Append) -> Result<(), AppendError> {
        let (done, outcome) = oneshot::channel();
        self.jobs.send(Job { append, done }).map_err(|_| {
            AppendError::Internal(
                "the SQLite writer thread has stopped; nothing was written".into(),
            )
        })?;
        outcome.await.unwrap_or_else(|_| {
            Err(AppendError::Internal(
                "the SQLite writer thread stopped without an answer; the outcome is unknown: re-send the command with the same command id".into(),
            ))
        })
    }
}

pub(super) fn open(config: &WriterConfig) -> Result<Connection, StoreError> {
    let unavailable = |e: rusqlite::Error| StoreError::Unavailable {
        url: config.url.clone(),
        reason: format!("the writer could not open the database: {e}"),
    };
    let mut flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_URI
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    if config.in_memory {
        flags |= OpenFlags::SQLITE_OPEN_MEMORY | OpenFlags::SQLITE_OPEN_SHARED_CACHE;
    } else {
        flags |= OpenFlags::SQLITE_OPEN_PRIVATE_CACHE;
    }
    let conn = Connection::open_with_flags(&config.file, flags).map_err(unavailable)?;
    conn.busy_timeout(config.busy_timeout)
        .map_err(unavailable)?;
    let synchronous = match config.durability {
        SqliteDurability::Full => "FULL",
        SqliteDurability::Normal => "NORMAL",
    };
    conn.pragma_update(None, "synchronous", synchronous)
        .map_err(unavailable)?;
    conn.pragma_update(None, "foreign_keys", true)
        .map_err(unavailable)?;
    Ok(conn)
}

/// The writer thread's state.
pub(super) struct Writer {
    pub(super) conn: Connection,
    pub(super) config: WriterConfig,
}

impl Writer {
    /// Commits batches until every handle is gone.
    fn run(mut self, mut queue: mpsc::UnboundedReceiver<Job>) {
        while let Some(first) = queue.blocking_recv() {
            let mut jobs = vec![first];
            while jobs.len() < MAX_GROUP {
                match queue.try_recv() {
                    Ok(job) => jobs.push(job),
                    Err(_) => break,
                }
            }
            // A caller that went away before its batch began is not written: it never learns
            // an outcome either way, and re-sending its command id decides it afresh.
            jobs.retain(|job| !job.done.is_closed());
            if jobs.is_empty() {
                continue;
            }
            let outcomes = self.commit(&jobs);
            for (job, outcome) in jobs.into_iter().zip(outcomes) {
                let _ = job.done.send(outcome);
            }
        }
    }

    /// One transaction for every job: each in its own savepoint when there are several, so one
    /// job's conflict leaves the others; one sync at the commit.
    pub(super) fn commit(&mut self, jobs: &[Job]) -> Vec<Result<(), AppendError>> {
        if let Err(e) = self.exec("BEGIN IMMEDIATE") {
            let fault = self.fault(e);
            self.recover();
            return jobs.iter().map(|_| Err(fault.clone())).collect();
        }
        let outcomes: Vec<Result<(), AppendError>> = if let [job] = jobs {
            vec![insert(&self.conn, &job.append)]
        } else {
            jobs.iter()
                .map(|job| self.in_savepoint(&job.append))
                .collect()
        };
        let landed = outcomes.iter().any(Result::is_ok);
        let finish = if landed { "COMMIT" } else { "ROLLBACK" };
        match self.exec(finish) {
            Ok(()) => outcomes,
            Err(e) => {
                // The transaction did not commit: nothing of it is written.
                let fault = self.fault(e);
                self.recover();
                outcomes
                    .into_iter()
                    .map(|o| match o {
                        Ok(()) => Err(fault.clone()),
                        rejected => rejected,
                    })
                    .collect()
            }
        }
    }

    fn in_savepoint(&self, append: &Append) -> Result<(), AppendError> {
        self.exec("SAVEPOINT append").map_err(|e| self.fault(e))?;
        let result = insert(&self.conn, append);
        if result.is_err() {
            self.exec("ROLLBACK TO append").map_err(|e| self.fault(e))?;
        }
        self.exec("RELEASE append").map_err(|e| self.fault(e))?;
        result
    }

    /// Runs one transaction-control statement, prepared once (they are run for every append).
    fn exec(&self, sql: &str) -> Result<(), rusqlite::Error> {
        self.conn.prepare_cached(sql)?.execute([])?;
        Ok(())
    }

    /// What a failure of the transaction's own statements (`BEGIN`, `SAVEPOINT`, `COMMIT`)
    /// means for the appends in it.
    fn fault(&self, e: rusqlite::Error) -> AppendError {
        match e.sqlite_error_code() {
            Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => AppendError::Unavailable {
                url: self.config.url.clone(),
                reason: format!(
                    "another connection held the write lock for longer than the busy timeout ({:?}): {e}",
                    self.config.busy_timeout
                ),
            },
            _ => AppendError::Database(DbError::from_sqlite(e)),
        }
    }

    /// After a failed transaction statement: make sure no transaction stays open (it would hold
    /// the file's write lock), reopening the connection if it cannot be rolled back.
    fn recover(&mut self) {
        if self.conn.is_autocommit() {
            return;
        }
        let _ = self.conn.execute_batch("ROLLBACK");
        if !self.conn.is_autocommit() {
            match open(&self.config) {
                Ok(conn) => self.conn = conn,
                Err(e) => tracing::error!("the SQLite writer could not reopen the database: {e}"),
            }
        }
    }
}

/// One command's rows: its record first (a duplicate command id inserts nothing), then its
/// events. Classified by SQLite's extended result codes, not by message text: the command id is
/// the `commands` primary key (`SQLITE_CONSTRAINT_PRIMARYKEY`); a taken sequence or head is a
/// `UNIQUE` constraint (`SQLITE_CONSTRAINT_UNIQUE`).
fn insert(conn: &Connection, append: &Append) -> Result<(), AppendError> {
    let (Some(first), Some(last)) = (append.rows.first(), append.rows.last()) else {
        return Ok(());
    };
    let recorded = conn
        .prepare_cached(INSERT_COMMAND)
        .and_then(|mut insert| {
            insert.execute(params![
                append.command_id,
                AGGREGATE_TYPE,
                append.workspace,
                append.command_hash,
                seq_i64(first.sequence),
                seq_i64(last.sequence),
                append.head_hash,
            ])
        })
        .map_err(classify)?;
    if recorded == 0 {
        return Err(AppendError::DuplicateCommand);
    }
    let mut insert = conn.prepare_cached(INSERT_EVENT).map_err(classify)?;
    for row in &append.rows {
        insert
            .execute(params![
                AGGREGATE_TYPE,
                append.workspace,
                seq_i64(row.sequence),
                row.event_type,
                row.event_version,
                row.payload,
                row.metadata,
            ])
            .map_err(classify)?;
    }
    Ok(())
}

fn classify(e: rusqlite::Error) -> AppendError {
    match e.sqlite_error().map(|f| f.extended_code) {
        Some(ffi::SQLITE_CONSTRAINT_PRIMARYKEY) => AppendError::DuplicateCommand,
        Some(ffi::SQLITE_CONSTRAINT_UNIQUE) => AppendError::Conflict,
        _ => AppendError::Database(DbError::from_sqlite(e)),
    }
}
