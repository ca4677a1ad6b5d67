//! The SQL of both backends. Everything else in the crate is backend-neutral.

use std::str::FromStr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures_util::stream::BoxStream;
use futures_util::{StreamExt, TryStreamExt};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Connection, PgConnection, PgPool, Row, SqliteConnection, SqlitePool};
use tokio::sync::{Semaphore, SemaphorePermit};

use crate::error::StoreError;
use crate::record::AGGREGATE_TYPE;

/// Embedded PostgreSQL migrations (`crates/store/migrations/postgres`).
pub static POSTGRES_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres");
/// Embedded SQLite migrations (`crates/store/migrations/sqlite`).
pub static SQLITE_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");

/// How durable SQLite commits are (`PRAGMA synchronous`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SqliteDurability {
    /// `FULL`: a commit survives power loss (the default).
    Full,
    /// `NORMAL`: in WAL mode a commit survives a process crash but may be lost on power loss.
    Normal,
}

/// Options for opening a store.
#[derive(Clone, Debug)]
pub struct StoreOptions {
    /// The most connections the pool opens.
    pub max_connections: u32,
    /// How many workspaces' states the command cache keeps.
    pub cache_capacity: usize,
    /// SQLite's `synchronous` setting.
    pub sqlite_durability: SqliteDurability,
    /// How long to wait for a connection or a SQLite lock.
    pub busy_timeout: Duration,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            max_connections: 10,
            cache_capacity: 10_000,
            sqlite_durability: SqliteDurability::Full,
            busy_timeout: Duration::from_secs(5),
        }
    }
}

/// Which database, with its pool.
#[derive(Clone, Debug)]
pub enum Backend {
    /// PostgreSQL.
    Postgres(PgPool),
    /// SQLite.
    Sqlite(SqlitePool),
}

/// A database: its pool for long operations (streams, imports, migrations), and lanes — a few
/// connections of its own that the command path reuses.
///
/// sqlx pings every connection it takes back into its pool: one more round trip per query. The
/// command path makes one round trip per command, so it keeps its connections instead: a lane is
/// taken, used for one operation and put back, and only dropped (closed) after an error.
#[derive(Clone)]
pub struct Db {
    backend: Backend,
    lanes: Arc<Lanes>,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db")
            .field("backend", &self.kind())
            .finish_non_exhaustive()
    }
}

struct Lanes {
    idle: Mutex<Vec<Conn>>,
    permits: Semaphore,
    timeout: Duration,
}

enum Conn {
    Pg(PgConnection),
    Lite(SqliteConnection),
}

/// A connection of the command path, returned to the idle lanes when dropped.
struct Lane<'a> {
    lanes: &'a Lanes,
    conn: Option<Conn>,
    _permit: SemaphorePermit<'a>,
}

impl Lane<'_> {
    fn conn(&mut self) -> Result<&mut Conn, StoreError> {
        self.conn.as_mut().ok_or_else(|| StoreError::Integrity {
            workspace: String::new(),
            detail: "a lane was used after its connection was dropped".into(),
        })
    }

    /// Closes the connection instead of reusing it (its state is unknown after an error).
    fn discard(&mut self) {
        self.conn = None;
    }
}

impl Drop for Lane<'_> {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            self.lanes
                .idle
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(conn);
        }
    }
}

/// A stored row of the `events` table, payload and metadata as their exact text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Row7 {
    /// The aggregate type.
    pub aggregate_type: String,
    /// The workspace id.
    pub aggregate_id: String,
    /// The sequence.
    pub sequence: u64,
    /// The event type.
    pub event_type: String,
    /// The event version.
    pub event_version: String,
    /// The payload text.
    pub payload: String,
    /// The metadata text.
    pub metadata: String,
}

/// The head of one workspace's chain as the store records it (its newest command record).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Head {
    /// The workspace.
    pub workspace: String,
    /// Its newest sequence.
    pub sequence: u64,
    /// Its newest hash.
    pub hash: String,
}

/// An idempotency record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommandRecord {
    /// The workspace the command wrote to.
    pub workspace: String,
    /// The hash of the command's content.
    pub command_hash: String,
    /// Its first event's sequence.
    pub first_sequence: u64,
    /// Its last event's sequence.
    pub last_sequence: u64,
}

/// Everything one command appends, written in one statement (PostgreSQL) or one transaction
/// (SQLite).
#[derive(Debug)]
pub struct Append {
    /// The workspace.
    pub workspace: String,
    /// The events, with consecutive sequences.
    pub rows: Vec<NewRow>,
    /// The new head hash (the last row's hash).
    pub head_hash: String,
    /// The command id.
    pub command_id: String,
    /// The command's content hash.
    pub command_hash: String,
}

/// One event to append.
#[derive(Debug)]
pub struct NewRow {
    /// The sequence.
    pub sequence: u64,
    /// The event type.
    pub event_type: &'static str,
    /// The event version.
    pub event_version: &'static str,
    /// The payload text.
    pub payload: String,
    /// The metadata text.
    pub metadata: String,
}

/// Why an append did not happen.
#[derive(Debug)]
pub enum AppendError {
    /// Another writer appended to the workspace first.
    Conflict,
    /// The command id already wrote events.
    DuplicateCommand,
    /// Anything else.
    Store(StoreError),
}

fn seq_i64(sequence: u64) -> i64 {
    // Sequences are counted from 1 by one per event; they cannot reach 2^63.
    i64::try_from(sequence).unwrap_or(i64::MAX)
}

fn seq_u64(sequence: i64) -> u64 {
    u64::try_from(sequence).unwrap_or(0)
}

fn classify(err: sqlx::Error) -> AppendError {
    if let sqlx::Error::Database(db) = &err {
        if db.is_unique_violation() {
            let constraint = db.constraint().unwrap_or_default();
            let message = db.message();
            if constraint == "commands_pkey" || message.contains("commands.command_id") {
                return AppendError::DuplicateCommand;
            }
            return AppendError::Conflict;
        }
    }
    AppendError::Store(StoreError::from(err))
}

impl Db {
    /// Connects to `url` and applies the embedded migrations.
    ///
    /// # Errors
    /// [`StoreError::InvalidUrl`] for a URL that is neither `postgres://…` nor `sqlite:…`,
    /// [`StoreError::Unavailable`] when the database does not answer, [`StoreError::Migration`]
    /// when the schema cannot be brought up to date.
    pub async fn connect(url: &str, options: &StoreOptions) -> Result<Self, StoreError> {
        let backend = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let connect = PgConnectOptions::from_str(url).map_err(|e| StoreError::InvalidUrl {
                url: redact(url),
                reason: e.to_string(),
            })?;
            // One direct connection first: an unreachable server fails now, with its own reason
            // ("connection refused"), instead of after the pool's acquire timeout.
            let probe =
                tokio::time::timeout(options.busy_timeout, PgConnection::connect_with(&connect))
                    .await
                    .map_err(|_| StoreError::Unavailable {
                        url: redact(url),
                        reason: format!("no answer within {:?}", options.busy_timeout),
                    })?
                    .map_err(|e| StoreError::Unavailable {
                        url: redact(url),
                        reason: e.to_string(),
                    })?;
            let pool = PgPoolOptions::new()
                .max_connections(options.max_connections)
                .acquire_timeout(options.busy_timeout)
                // A broken connection shows up as an error on use; a ping per acquire costs a
                // round trip per command.
                .test_before_acquire(false)
                .connect_with(connect)
                .await
                .map_err(|e| StoreError::Unavailable {
                    url: redact(url),
                    reason: e.to_string(),
                })?;
            // Closing the probe politely is not worth waiting for.
            drop(probe);
            Backend::Postgres(pool)
        } else if url.starts_with("sqlite:") {
            let memory = url.contains(":memory:") || url.contains("mode=memory");
            let path = url
                .trim_start_matches("sqlite:")
                .trim_start_matches("//")
                .split('?')
                .next()
                .unwrap_or_default();
            if path.is_empty() && !memory {
                return Err(StoreError::InvalidUrl {
                    url: url.to_owned(),
                    reason: "no file: use sqlite://PATH (or sqlite::memory:)".into(),
                });
            }
            let connect = SqliteConnectOptions::from_str(url)
                .map_err(|e| StoreError::InvalidUrl {
                    url: url.to_owned(),
                    reason: e.to_string(),
                })?
                .create_if_missing(true)
                .journal_mode(if memory {
                    SqliteJournalMode::Memory
                } else {
                    SqliteJournalMode::Wal
                })
                .synchronous(match options.sqlite_durability {
                    SqliteDurability::Full => SqliteSynchronous::Full,
                    SqliteDurability::Normal => SqliteSynchronous::Normal,
                })
                .busy_timeout(options.busy_timeout)
                .foreign_keys(true);
            let mut pool = SqlitePoolOptions::new()
                .max_connections(options.max_connections)
                .acquire_timeout(options.busy_timeout)
                .test_before_acquire(false);
            if memory {
                // An in-memory database lives as long as one of its connections.
                pool = pool
                    .min_connections(1)
                    .idle_timeout(None)
                    .max_lifetime(None);
            }
            let pool = pool
                .connect_with(connect)
                .await
                .map_err(|e| StoreError::Unavailable {
                    url: url.to_owned(),
                    reason: e.to_string(),
                })?;
            Backend::Sqlite(pool)
        } else {
            return Err(StoreError::InvalidUrl {
                url: redact(url),
                reason: "expected postgres://…, sqlite://PATH or sqlite::memory:".into(),
            });
        };
        let db = Db::new(backend, options);
        db.migrate().await?;
        Ok(db)
    }

    /// A database over an existing pool (not yet migrated: see [`Db::migrate`]).
    pub fn new(backend: Backend, options: &StoreOptions) -> Self {
        let lanes = usize::try_from(options.max_connections.max(1)).unwrap_or(1);
        Self {
            backend,
            lanes: Arc::new(Lanes {
                idle: Mutex::new(Vec::new()),
                permits: Semaphore::new(lanes),
                timeout: options.busy_timeout,
            }),
        }
    }

    /// The pool.
    pub fn backend(&self) -> &Backend {
        &self.backend
    }

    async fn lane(&self) -> Result<Lane<'_>, StoreError> {
        let lanes = &*self.lanes;
        let permit = tokio::time::timeout(lanes.timeout, lanes.permits.acquire())
            .await
            .map_err(|_| StoreError::Unavailable {
                url: self.kind().into(),
                reason: format!("no connection free within {:?}", lanes.timeout),
            })?
            .map_err(|_| StoreError::Unavailable {
                url: self.kind().into(),
                reason: "the store is closed".into(),
            })?;
        let idle = lanes
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        let conn = match idle {
            Some(conn) => conn,
            None => self.connect_lane().await?,
        };
        Ok(Lane {
            lanes,
            conn: Some(conn),
            _permit: permit,
        })
    }

    async fn connect_lane(&self) -> Result<Conn, StoreError> {
        let unavailable = |e: sqlx::Error| StoreError::Unavailable {
            url: self.kind().into(),
            reason: e.to_string(),
        };
        Ok(match &self.backend {
            Backend::Postgres(pool) => Conn::Pg(
                PgConnection::connect_with(&pool.connect_options())
                    .await
                    .map_err(unavailable)?,
            ),
            Backend::Sqlite(pool) => Conn::Lite(
                SqliteConnection::connect_with(&pool.connect_options())
                    .await
                    .map_err(unavailable)?,
            ),
        })
    }

    /// Applies the embedded migrations (PostgreSQL serializes concurrent runs with an advisory
    /// lock).
    ///
    /// # Errors
    /// [`StoreError::Migration`].
    pub async fn migrate(&self) -> Result<(), StoreError> {
        match &self.backend {
            Backend::Postgres(pool) => POSTGRES_MIGRATOR.run(pool).await?,
            Backend::Sqlite(pool) => SQLITE_MIGRATOR.run(pool).await?,
        }
        Ok(())
    }

    /// Which backend, as a word.
    pub fn kind(&self) -> &'static str {
        match &self.backend {
            Backend::Postgres(_) => "postgres",
            Backend::Sqlite(_) => "sqlite",
        }
    }

    /// Runs `op` on a lane; a failed operation closes its connection instead of reusing it.
    async fn on_lane<T>(
        &self,
        op: impl for<'c> FnOnce(
            &'c mut Conn,
        ) -> futures_util::future::BoxFuture<'c, Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        let mut lane = self.lane().await?;
        let result = op(lane.conn()?).await;
        if result.is_err() {
            lane.discard();
        }
        result
    }

    /// One workspace's events in sequence order, and its recorded head (one connection, two
    /// queries).
    ///
    /// # Errors
    /// [`StoreError::Database`].
    pub async fn load_stream(
        &self,
        workspace: &str,
    ) -> Result<(Vec<Row7>, Option<Head>), StoreError> {
        // One statement, so events and head come from one snapshot: read separately, a commit
        // landing in between would look like a head that runs ahead of its stream.
        let workspace = workspace.to_owned();
        self.on_lane(move |conn| {
            Box::pin(async move {
                let rows = match &mut *conn {
                    Conn::Pg(c) => sqlx::query(
                        "SELECT 0 AS kind, sequence, event_type, event_version, payload::text, metadata::text \
                         FROM events WHERE aggregate_type = $1 AND aggregate_id = $2 \
                         UNION ALL \
                         SELECT 1, h.last_sequence, h.head_hash, '', '', '' FROM ( \
                           SELECT last_sequence, head_hash FROM commands \
                           WHERE aggregate_type = $1 AND aggregate_id = $2 \
                           ORDER BY last_sequence DESC LIMIT 1) AS h \
                         ORDER BY kind, sequence",
                    )
                    .bind(AGGREGATE_TYPE)
                    .bind(&workspace)
                    .fetch_all(&mut *c)
                    .await?
                    .iter()
                    .map(|r| stream_or_head(&workspace, r))
                    .collect::<Result<Vec<_>, _>>()?,
                    Conn::Lite(c) => sqlx::query(
                        "SELECT 0 AS kind, sequence, event_type, event_version, payload, metadata \
                         FROM events WHERE aggregate_type = ?1 AND aggregate_id = ?2 \
                         UNION ALL \
                         SELECT 1, h.last_sequence, h.head_hash, '', '', '' FROM ( \
                           SELECT last_sequence, head_hash FROM commands \
                           WHERE aggregate_type = ?1 AND aggregate_id = ?2 \
                           ORDER BY last_sequence DESC LIMIT 1) AS h \
                         ORDER BY kind, sequence",
                    )
                    .bind(AGGREGATE_TYPE)
                    .bind(&workspace)
                    .fetch_all(&mut *c)
                    .await?
                    .iter()
                    .map(|r| stream_or_head(&workspace, r))
                    .collect::<Result<Vec<_>, _>>()?,
                };
                let mut events = Vec::with_capacity(rows.len());
                let mut head = None;
                for row in rows {
                    match row {
                        Either::Event(e) => events.push(e),
                        Either::Head(h) => head = Some(h),
                    }
                }
                Ok((events, head))
            })
        })
        .await
    }

    /// The recorded head of one workspace.
    ///
    /// # Errors
    /// [`StoreError::Database`].
    pub async fn head(&self, workspace: &str) -> Result<Option<Head>, StoreError> {
        let workspace = workspace.to_owned();
        self.on_lane(move |conn| Box::pin(async move { head_on(conn, &workspace).await }))
            .await
    }

    /// The idempotency record of `command_id` and the head sequence of `workspace`, in one
    /// round trip.
    ///
    /// # Errors
    /// [`StoreError::Database`].
    pub async fn command_and_head(
        &self,
        command_id: &str,
        workspace: &str,
    ) -> Result<(Option<CommandRecord>, u64), StoreError> {
        type R = (
            Option<String>,
            Option<String>,
            Option<i64>,
            Option<i64>,
            Option<i64>,
        );
        let (command_id, workspace) = (command_id.to_owned(), workspace.to_owned());
        let row: R = self
            .on_lane(move |conn| {
                Box::pin(async move {
                    Ok(match conn {
                        Conn::Pg(c) => sqlx::query_as(
                            "SELECT c.aggregate_id, c.command_hash, c.first_sequence, c.last_sequence, \
                             (SELECT max(last_sequence) FROM commands WHERE aggregate_type = $1 AND aggregate_id = $3) \
                             FROM (SELECT 1) AS one LEFT JOIN commands c ON c.command_id = $2",
                        )
                        .bind(AGGREGATE_TYPE)
                        .bind(&command_id)
                        .bind(&workspace)
                        .fetch_one(&mut *c)
                        .await?,
                        Conn::Lite(c) => sqlx::query_as(
                            "SELECT c.aggregate_id, c.command_hash, c.first_sequence, c.last_sequence, \
                             (SELECT max(last_sequence) FROM commands WHERE aggregate_type = ?1 AND aggregate_id = ?3) \
                             FROM (SELECT 1) AS one LEFT JOIN commands c ON c.command_id = ?2",
                        )
                        .bind(AGGREGATE_TYPE)
                        .bind(&command_id)
                        .bind(&workspace)
                        .fetch_one(&mut *c)
                        .await?,
                    })
                })
            })
            .await?;
        let record = match row {
            (Some(workspace), Some(command_hash), Some(first), Some(last), _) => {
                Some(CommandRecord {
                    workspace,
                    command_hash,
                    first_sequence: seq_u64(first),
                    last_sequence: seq_u64(last),
                })
            }
            _ => None,
        };
        Ok((record, row.4.map_or(0, seq_u64)))
    }

    /// Events `first..=last` of one workspace.
    ///
    /// # Errors
    /// [`StoreError::Database`].
    pub async fn events_range(
        &self,
        workspace: &str,
        first: u64,
        last: u64,
    ) -> Result<Vec<Row7>, StoreError> {
        let workspace = workspace.to_owned();
        self.on_lane(move |conn| {
            Box::pin(async move {
                match conn {
                    Conn::Pg(c) => sqlx::query(
                        "SELECT sequence, event_type, event_version, payload::text, metadata::text FROM events \
                         WHERE aggregate_type = $1 AND aggregate_id = $2 AND sequence BETWEEN $3 AND $4 ORDER BY sequence",
                    )
                    .bind(AGGREGATE_TYPE)
                    .bind(&workspace)
                    .bind(seq_i64(first))
                    .bind(seq_i64(last))
                    .fetch_all(&mut *c)
                    .await?
                    .iter()
                    .map(|r| row7_tail(&workspace, r))
                    .collect(),
                    Conn::Lite(c) => sqlx::query(
                        "SELECT sequence, event_type, event_version, payload, metadata FROM events \
                         WHERE aggregate_type = ?1 AND aggregate_id = ?2 AND sequence BETWEEN ?3 AND ?4 ORDER BY sequence",
                    )
                    .bind(AGGREGATE_TYPE)
                    .bind(&workspace)
                    .bind(seq_i64(first))
                    .bind(seq_i64(last))
                    .fetch_all(&mut *c)
                    .await?
                    .iter()
                    .map(|r| row7_tail(&workspace, r))
                    .collect(),
                }
            })
        })
        .await
    }

    /// How many events the store holds.
    ///
    /// # Errors
    /// [`StoreError::Database`].
    pub async fn count_events(&self) -> Result<u64, StoreError> {
        let n: i64 = self
            .on_lane(|conn| {
                Box::pin(async move {
                    Ok(match conn {
                        Conn::Pg(c) => {
                            sqlx::query_scalar("SELECT count(*) FROM events")
                                .fetch_one(&mut *c)
                                .await?
                        }
                        Conn::Lite(c) => {
                            sqlx::query_scalar("SELECT count(*) FROM events")
                                .fetch_one(&mut *c)
                                .await?
                        }
                    })
                })
            })
            .await?;
        Ok(seq_u64(n))
    }

    /// Appends one command's events, moves the head and records the command id — all or
    /// nothing, in one round trip.
    ///
    /// # Errors
    /// [`AppendError::Conflict`] when the first sequence is taken (a concurrent writer),
    /// [`AppendError::DuplicateCommand`] when the command id already wrote events.
    pub async fn append(&self, append: &Append) -> Result<(), AppendError> {
        let mut lane = self.lane().await.map_err(AppendError::Store)?;
        let conn = lane.conn().map_err(AppendError::Store)?;
        let result = append_on(conn, append).await;
        if matches!(result, Err(AppendError::Store(_))) {
            lane.discard();
        }
        result
    }

    /// Appends several commands' events in one round trip and one transaction (group commit);
    /// each append succeeds or fails on its own. With one append this is [`Db::append`].
    ///
    /// On PostgreSQL the batch runs `billing_append_batch`, which gives every append its own
    /// subtransaction; SQLite has one writer at a time, so its appends run one by one.
    pub async fn append_batch(&self, appends: &[Append]) -> Vec<Result<(), AppendError>> {
        let mut lane = match self.lane().await {
            Ok(lane) => lane,
            Err(e) => {
                let text = e.to_string();
                return appends
                    .iter()
                    .map(|_| {
                        Err(AppendError::Store(StoreError::Unavailable {
                            url: self.kind().into(),
                            reason: text.clone(),
                        }))
                    })
                    .collect();
            }
        };
        let outcomes = match lane.conn() {
            Ok(Conn::Pg(c)) if appends.len() > 1 && appends.iter().all(|a| !a.rows.is_empty()) => {
                pg_append_batch(c, appends).await
            }
            Ok(conn) => {
                let mut out = Vec::with_capacity(appends.len());
                for append in appends {
                    out.push(append_on(conn, append).await);
                }
                out
            }
            Err(e) => {
                let text = e.to_string();
                appends
                    .iter()
                    .map(|_| {
                        Err(AppendError::Store(StoreError::Unavailable {
                            url: self.kind().into(),
                            reason: text.clone(),
                        }))
                    })
                    .collect()
            }
        };
        if outcomes
            .iter()
            .any(|o| matches!(o, Err(AppendError::Store(_))))
        {
            lane.discard();
        }
        outcomes
    }

    /// Closes the idle lanes, so long operations find the pool's connections free.
    fn release_lanes(&self) {
        self.lanes
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }

    /// Every event, ordered by workspace id (byte order) then sequence, streamed.
    pub fn stream_all(&self) -> BoxStream<'_, Result<Row7, StoreError>> {
        self.release_lanes();
        match &self.backend {
            Backend::Postgres(pool) => sqlx::query(
                "SELECT aggregate_type, aggregate_id, sequence, event_type, event_version, payload::text, metadata::text \
                 FROM events ORDER BY aggregate_type, aggregate_id, sequence",
            )
            .fetch(pool)
            .map(|r| r.map_err(StoreError::from).and_then(|r| row7(&r)))
            .boxed(),
            Backend::Sqlite(pool) => sqlx::query(
                "SELECT aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata \
                 FROM events ORDER BY aggregate_type, aggregate_id, sequence",
            )
            .fetch(pool)
            .map(|r| r.map_err(StoreError::from).and_then(|r| row7(&r)))
            .boxed(),
        }
    }

    /// Every recorded head, ordered by workspace id, streamed.
    pub fn stream_heads(&self) -> BoxStream<'_, Result<Head, StoreError>> {
        let map = |r: Result<(String, i64, String), sqlx::Error>| {
            r.map(|(workspace, sequence, hash)| Head {
                workspace,
                sequence: seq_u64(sequence),
                hash,
            })
            .map_err(StoreError::from)
        };
        self.release_lanes();
        match &self.backend {
            Backend::Postgres(pool) => sqlx::query_as(
                "SELECT aggregate_id, sequence, hash FROM heads WHERE aggregate_type = $1 ORDER BY aggregate_id",
            )
            .bind(AGGREGATE_TYPE)
            .fetch(pool)
            .map(map)
            .boxed(),
            Backend::Sqlite(pool) => sqlx::query_as(
                "SELECT aggregate_id, sequence, hash FROM heads WHERE aggregate_type = ?1 ORDER BY aggregate_id",
            )
            .bind(AGGREGATE_TYPE)
            .fetch(pool)
            .map(map)
            .boxed(),
        }
    }

    /// Writes a whole verified import in one transaction: all rows, heads and command records,
    /// or nothing.
    ///
    /// # Errors
    /// [`StoreError::NotEmpty`] when the store already holds events; [`StoreError::Database`].
    pub async fn import<'s>(
        &self,
        mut rows: BoxStream<'s, Result<Row7, StoreError>>,
        mut progress: impl FnMut(u64),
    ) -> Result<u64, StoreError> {
        const BATCH: usize = 500;
        let mut written = 0u64;
        let mut batch: Vec<Row7> = Vec::with_capacity(BATCH);
        let mut commands = CommandSpans::default();
        macro_rules! run {
            ($tx:ident, $flush:ident) => {{
                while let Some(row) = rows.try_next().await? {
                    let hash = metadata_field(&row.metadata, "hash");
                    let command_id = metadata_field(&row.metadata, "command_id");
                    let command_hash = metadata_field(&row.metadata, "command_hash");
                    commands.push(
                        &row.aggregate_id,
                        row.sequence,
                        command_id,
                        command_hash,
                        hash,
                    );
                    batch.push(row);
                    if batch.len() >= BATCH {
                        $flush(&mut $tx, &mut batch, &mut commands, false).await?;
                        written += BATCH as u64;
                        progress(written);
                    }
                }
                let n = batch.len() as u64;
                $flush(&mut $tx, &mut batch, &mut commands, true).await?;
                written += n;
                progress(written);
            }};
        }
        match &self.backend {
            Backend::Postgres(pool) => {
                let mut tx = pool.begin().await?;
                // Nothing else may write while the import checks emptiness and fills the store.
                sqlx::query("LOCK TABLE events, commands IN EXCLUSIVE MODE")
                    .execute(&mut *tx)
                    .await?;
                let any: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM events)")
                    .fetch_one(&mut *tx)
                    .await?;
                if any {
                    return Err(StoreError::NotEmpty);
                }
                run!(tx, flush_pg);
                sqlx::query(IMPORTED_REMINDERS_PG).execute(&mut *tx).await?;
                tx.commit().await?;
            }
            Backend::Sqlite(pool) => {
                // IMMEDIATE: take the write lock before checking emptiness.
                let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
                let any: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM events)")
                    .fetch_one(&mut *tx)
                    .await?;
                if any {
                    return Err(StoreError::NotEmpty);
                }
                run!(tx, flush_sqlite);
                sqlx::query(IMPORTED_REMINDERS_SQLITE)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
            }
        }
        Ok(written)
    }
}

async fn head_on(conn: &mut Conn, workspace: &str) -> Result<Option<Head>, StoreError> {
    let row: Option<(i64, String)> =
        match conn {
            Conn::Pg(c) => sqlx::query_as(
                "SELECT last_sequence, head_hash FROM commands \
                 WHERE aggregate_type = $1 AND aggregate_id = $2 ORDER BY last_sequence DESC LIMIT 1",
            )
            .bind(AGGREGATE_TYPE)
            .bind(workspace)
            .fetch_optional(&mut *c)
            .await?,
            Conn::Lite(c) => sqlx::query_as(
                "SELECT last_sequence, head_hash FROM commands \
                 WHERE aggregate_type = ?1 AND aggregate_id = ?2 ORDER BY last_sequence DESC LIMIT 1",
            )
            .bind(AGGREGATE_TYPE)
            .bind(workspace)
            .fetch_optional(&mut *c)
            .await?,
        };
    Ok(row.map(|(sequence, hash)| Head {
        workspace: workspace.to_owned(),
        sequence: seq_u64(sequence),
        hash,
    }))
}

async fn append_on(conn: &mut Conn, append: &Append) -> Result<(), AppendError> {
    let (Some(first), Some(last)) = (append.rows.first(), append.rows.last()) else {
        return Ok(());
    };
    if append.rows.len() > MAX_EVENTS_PER_COMMAND {
        return Err(AppendError::Store(StoreError::Integrity {
            workspace: append.workspace.clone(),
            detail: format!(
                "a command produced {} events; the store appends at most {MAX_EVENTS_PER_COMMAND} per command",
                append.rows.len()
            ),
        }));
    }
    let (first_seq, last_seq) = (seq_i64(first.sequence), seq_i64(last.sequence));
    macro_rules! bound {
        ($sql:expr) => {{
            let mut query = sqlx::query($sql)
                .bind(AGGREGATE_TYPE)
                .bind(append.workspace.as_str())
                .bind(last_seq)
                .bind(append.head_hash.as_str())
                .bind(append.command_id.as_str())
                .bind(append.command_hash.as_str())
                .bind(first_seq);
            for row in &append.rows {
                query = query
                    .bind(seq_i64(row.sequence))
                    .bind(row.event_type)
                    .bind(row.event_version)
                    .bind(row.payload.as_str())
                    .bind(row.metadata.as_str());
            }
            query
        }};
    }
    match conn {
        Conn::Pg(c) => {
            let sql = pg_append_sql(append.rows.len());
            bound!(sql).execute(&mut *c).await.map_err(classify)?;
        }
        Conn::Lite(c) => {
            // One script, one trip to SQLite's worker thread: the whole append in an IMMEDIATE
            // transaction (the write lock is taken before anything is read).
            let sql = sqlite_append_sql(append.rows.len());
            if let Err(e) = bound!(sql).execute(&mut *c).await {
                // The script stopped at the failing statement, inside its transaction.
                if let Err(rollback) = sqlx::query("ROLLBACK").execute(&mut *c).await {
                    return Err(AppendError::Store(StoreError::from(rollback)));
                }
                return Err(classify(e));
            }
        }
    }
    Ok(())
}

async fn pg_append_batch(
    conn: &mut PgConnection,
    appends: &[Append],
) -> Vec<Result<(), AppendError>> {
    let mut ws = Vec::with_capacity(appends.len());
    let (mut firsts, mut lasts, mut heads, mut cmds, mut hashes) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut ev_append, mut ev_seq, mut ev_type, mut ev_version, mut ev_payload, mut ev_meta) = (
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
    );
    for (i, a) in appends.iter().enumerate() {
        let (Some(first), Some(last)) = (a.rows.first(), a.rows.last()) else {
            continue;
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
    let result: Result<Vec<String>, sqlx::Error> = sqlx::query_scalar(
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
    .await;
    let all = |detail: String| -> Vec<Result<(), AppendError>> {
        appends
            .iter()
            .map(|_| {
                Err(AppendError::Store(StoreError::Unavailable {
                    url: "postgres".into(),
                    reason: detail.clone(),
                }))
            })
            .collect()
    };
    match result {
        Ok(statuses) if statuses.len() == appends.len() => statuses
            .into_iter()
            .map(|status| match status.as_str() {
                "ok" => Ok(()),
                "conflict" => Err(AppendError::Conflict),
                "duplicate" => Err(AppendError::DuplicateCommand),
                other => Err(AppendError::Store(StoreError::Integrity {
                    workspace: String::new(),
                    detail: format!("append failed: {other}"),
                })),
            })
            .collect(),
        Ok(statuses) => all(format!(
            "the batch append answered {} statuses for {} appends",
            statuses.len(),
            appends.len()
        )),
        Err(e) => all(e.to_string()),
    }
}

/// The one statement that appends `events` events (PostgreSQL): the events and the command's
/// record (its idempotency record and the new head). Parameters: $1 aggregate type,
/// $2 workspace, $3 last sequence, $4 head hash, $5 command id, $6 command hash, $7 first
/// sequence, then five per event (sequence, type, version, payload, metadata).
fn pg_append_sql(events: usize) -> &'static str {
    static CACHE: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    let cache = CACHE.get_or_init(|| {
        (1..=MAX_EVENTS_PER_COMMAND)
            .map(|n| {
                let [events, command] = append_statements(n, '$', "::json");
                format!("WITH new_events AS ({events}) {command}")
            })
            .collect()
    });
    cache
        .get(events.clamp(1, MAX_EVENTS_PER_COMMAND) - 1)
        .map_or("", String::as_str)
}

/// The two inserts of an append of `n` events, with parameters written `{sigil}N` (`$N` or
/// `?NNN`) and JSON parameters cast with `json_cast`: the events, then the command record.
fn append_statements(n: usize, sigil: char, json_cast: &str) -> [String; 2] {
    let values: Vec<String> = (0..n)
        .map(|i| {
            let b = 8 + i * 5;
            format!(
                "({sigil}1, {sigil}2, {sigil}{}, {sigil}{}, {sigil}{}, {sigil}{}{json_cast}, {sigil}{}{json_cast})",
                b,
                b + 1,
                b + 2,
                b + 3,
                b + 4
            )
        })
        .collect();
    [
        format!(
            "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata) VALUES {}",
            values.join(", ")
        ),
        format!(
            "INSERT INTO commands (command_id, aggregate_type, aggregate_id, command_hash, first_sequence, last_sequence, head_hash) \
             VALUES ({sigil}5, {sigil}1, {sigil}2, {sigil}6, {sigil}7, {sigil}3, {sigil}4)"
        ),
    ]
}

/// The append script for SQLite; the same parameters as [`pg_append_sql`], as `?NNN`.
fn sqlite_append_sql(events: usize) -> &'static str {
    static CACHE: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    let cache = CACHE.get_or_init(|| {
        (1..=MAX_EVENTS_PER_COMMAND)
            .map(|n| {
                let [events, command] = append_statements(n, '?', "");
                format!("BEGIN IMMEDIATE; {events}; {command}; COMMIT;")
            })
            .collect()
    });
    cache
        .get(events.clamp(1, MAX_EVENTS_PER_COMMAND) - 1)
        .map_or("", String::as_str)
}

/// The most events one command appends (accepting the agreement appends two).
pub const MAX_EVENTS_PER_COMMAND: usize = 2;

/// One command's record as an import rebuilds it.
struct Span {
    command_id: String,
    workspace: String,
    command_hash: String,
    first: u64,
    last: u64,
    head_hash: String,
}

/// An imported log's upgrades had their opening reminders sent by the store the log came from:
/// the import records them as sent, so the outbox never sends them a second time.
const IMPORTED_REMINDERS_PG: &str = "INSERT INTO email_outbox \
    (workspace_id, kind, sequence, user_name, subject, body, created_at, sent_at, attempts) \
    SELECT aggregate_id, 'opening-reminder', sequence, \
           coalesce(payload->'PlanUpgraded'->'settlement'->'enterprise'->>'user_name', ''), \
           'opening reminder (sent before this store was imported)', '', \
           metadata->>'recorded_at', metadata->>'recorded_at', 0 \
    FROM events WHERE event_type = 'PlanUpgraded' \
    ON CONFLICT (workspace_id, kind) DO NOTHING";

/// [`IMPORTED_REMINDERS_PG`] for SQLite.
const IMPORTED_REMINDERS_SQLITE: &str = "INSERT INTO email_outbox \
    (workspace_id, kind, sequence, user_name, subject, body, created_at, sent_at, attempts) \
    SELECT aggregate_id, 'opening-reminder', sequence, \
           coalesce(json_extract(payload, '$.PlanUpgraded.settlement.enterprise.user_name'), ''), \
           'opening reminder (sent before this store was imported)', '', \
           json_extract(metadata, '$.recorded_at'), json_extract(metadata, '$.recorded_at'), 0 \
    FROM events WHERE event_type = 'PlanUpgraded' \
    ON CONFLICT (workspace_id, kind) DO NOTHING";

/// Groups consecutive events of one command into command records (idempotency and head).
#[derive(Default)]
struct CommandSpans {
    open: Option<Span>,
    done: Vec<Span>,
}

impl CommandSpans {
    fn push(
        &mut self,
        workspace: &str,
        sequence: u64,
        command_id: String,
        command_hash: String,
        hash: String,
    ) {
        match &mut self.open {
            Some(span) if span.command_id == command_id && span.workspace == workspace => {
                span.last = sequence;
                span.head_hash = hash;
            }
            _ => {
                if let Some(done) = self.open.take() {
                    self.done.push(done);
                }
                self.open = Some(Span {
                    command_id,
                    workspace: workspace.to_owned(),
                    command_hash,
                    first: sequence,
                    last: sequence,
                    head_hash: hash,
                });
            }
        }
    }

    fn take(&mut self, all: bool) -> Vec<Span> {
        if all {
            if let Some(done) = self.open.take() {
                self.done.push(done);
            }
        }
        std::mem::take(&mut self.done)
    }
}

fn metadata_field(metadata: &str, key: &str) -> String {
    serde_json::from_str::<serde_json::Value>(metadata)
        .ok()
        .and_then(|v| v.get(key).and_then(|f| f.as_str().map(str::to_owned)))
        .unwrap_or_default()
}

async fn flush_pg(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    batch: &mut Vec<Row7>,
    commands: &mut CommandSpans,
    all: bool,
) -> Result<(), StoreError> {
    if !batch.is_empty() {
        let ids: Vec<&str> = batch.iter().map(|r| r.aggregate_id.as_str()).collect();
        let seqs: Vec<i64> = batch.iter().map(|r| seq_i64(r.sequence)).collect();
        let types: Vec<&str> = batch.iter().map(|r| r.event_type.as_str()).collect();
        let versions: Vec<&str> = batch.iter().map(|r| r.event_version.as_str()).collect();
        let payloads: Vec<&str> = batch.iter().map(|r| r.payload.as_str()).collect();
        let metas: Vec<&str> = batch.iter().map(|r| r.metadata.as_str()).collect();
        sqlx::query(
            "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata) \
             SELECT $1, e.i, e.s, e.t, e.v, e.p::json, e.m::json \
             FROM UNNEST($2::text[], $3::bigint[], $4::text[], $5::text[], $6::text[], $7::text[]) AS e(i, s, t, v, p, m)",
        )
        .bind(AGGREGATE_TYPE)
        .bind(&ids)
        .bind(&seqs)
        .bind(&types)
        .bind(&versions)
        .bind(&payloads)
        .bind(&metas)
        .execute(&mut **tx)
        .await?;
        batch.clear();
    }
    let spans = commands.take(all);
    if !spans.is_empty() {
        let ids: Vec<&str> = spans.iter().map(|c| c.command_id.as_str()).collect();
        let wss: Vec<&str> = spans.iter().map(|c| c.workspace.as_str()).collect();
        let hashes: Vec<&str> = spans.iter().map(|c| c.command_hash.as_str()).collect();
        let firsts: Vec<i64> = spans.iter().map(|c| seq_i64(c.first)).collect();
        let lasts: Vec<i64> = spans.iter().map(|c| seq_i64(c.last)).collect();
        let heads: Vec<&str> = spans.iter().map(|c| c.head_hash.as_str()).collect();
        sqlx::query(
            "INSERT INTO commands (command_id, aggregate_type, aggregate_id, command_hash, first_sequence, last_sequence, head_hash) \
             SELECT c.i, $1, c.w, c.h, c.f, c.l, c.d \
             FROM UNNEST($2::text[], $3::text[], $4::text[], $5::bigint[], $6::bigint[], $7::text[]) AS c(i, w, h, f, l, d)",
        )
        .bind(AGGREGATE_TYPE)
        .bind(&ids)
        .bind(&wss)
        .bind(&hashes)
        .bind(&firsts)
        .bind(&lasts)
        .bind(&heads)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

async fn flush_sqlite(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    batch: &mut Vec<Row7>,
    commands: &mut CommandSpans,
    all: bool,
) -> Result<(), StoreError> {
    for chunk in batch.chunks(100) {
        let mut sql = String::from(
            "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata) VALUES ",
        );
        for i in 0..chunk.len() {
            sql.push_str(if i == 0 {
                "(?,?,?,?,?,?,?)"
            } else {
                ",(?,?,?,?,?,?,?)"
            });
        }
        let mut q = sqlx::query(&sql);
        for r in chunk {
            q = q
                .bind(AGGREGATE_TYPE)
                .bind(r.aggregate_id.as_str())
                .bind(seq_i64(r.sequence))
                .bind(r.event_type.as_str())
                .bind(r.event_version.as_str())
                .bind(r.payload.as_str())
                .bind(r.metadata.as_str());
        }
        q.execute(&mut **tx).await?;
    }
    batch.clear();
    for span in commands.take(all) {
        sqlx::query(
            "INSERT INTO commands (command_id, aggregate_type, aggregate_id, command_hash, first_sequence, last_sequence, head_hash) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )
        .bind(span.command_id)
        .bind(AGGREGATE_TYPE)
        .bind(span.workspace)
        .bind(span.command_hash)
        .bind(seq_i64(span.first))
        .bind(seq_i64(span.last))
        .bind(span.head_hash)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

fn get<'r, R: Row, T>(row: &'r R, index: usize) -> Result<T, StoreError>
where
    T: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    usize: sqlx::ColumnIndex<R>,
{
    row.try_get(index).map_err(StoreError::from)
}

fn row7<R: Row>(row: &R) -> Result<Row7, StoreError>
where
    for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    usize: sqlx::ColumnIndex<R>,
{
    Ok(Row7 {
        aggregate_type: get(row, 0)?,
        aggregate_id: get(row, 1)?,
        sequence: seq_u64(get::<R, i64>(row, 2)?),
        event_type: get(row, 3)?,
        event_version: get(row, 4)?,
        payload: get(row, 5)?,
        metadata: get(row, 6)?,
    })
}

fn row7_tail<R: Row>(workspace: &str, row: &R) -> Result<Row7, StoreError>
where
    for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    usize: sqlx::ColumnIndex<R>,
{
    Ok(Row7 {
        aggregate_type: AGGREGATE_TYPE.to_owned(),
        aggregate_id: workspace.to_owned(),
        sequence: seq_u64(get::<R, i64>(row, 0)?),
        event_type: get(row, 1)?,
        event_version: get(row, 2)?,
        payload: get(row, 3)?,
        metadata: get(row, 4)?,
    })
}

enum Either {
    Event(Row7),
    Head(Head),
}

/// A row of [`Db::load_stream`]'s query: an event (kind 0) or the recorded head (kind 1).
fn stream_or_head<R: Row>(workspace: &str, row: &R) -> Result<Either, StoreError>
where
    for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> i32: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    usize: sqlx::ColumnIndex<R>,
{
    let kind: i32 = get(row, 0)?;
    let sequence = seq_u64(get::<R, i64>(row, 1)?);
    if kind == 1 {
        return Ok(Either::Head(Head {
            workspace: workspace.to_owned(),
            sequence,
            hash: get(row, 2)?,
        }));
    }
    Ok(Either::Event(Row7 {
        aggregate_type: AGGREGATE_TYPE.to_owned(),
        aggregate_id: workspace.to_owned(),
        sequence,
        event_type: get(row, 2)?,
        event_version: get(row, 3)?,
        payload: get(row, 4)?,
        metadata: get(row, 5)?,
    }))
}

/// The URL without its password, for messages.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let creds = &url[scheme + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}{}:***{}", &url[..scheme + 3], user, &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}
