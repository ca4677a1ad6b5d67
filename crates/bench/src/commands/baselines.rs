//! The baselines of `commands`: raw single-row INSERTs (PostgreSQL and SQLite) and plain cqrs-es
//! frameworks (`postgres_cqrs`, `sqlite_cqrs`) on the same aggregate and services.

use std::path::Path;
use std::time::Duration;

use billing_domain::Workspace;
use cqrs_es::persist::{PersistedEventRepository, PersistedEventStore};
use cqrs_es::CqrsFramework;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgPool, SqlitePool};

use crate::contender::{flow, services, Contender, Slice, Work};
use crate::pg;

/// A payload and metadata of the size the store writes (an `AccountBound` event).
const PAYLOAD: &str = r#"{"AccountBound":{"account_id":"ec-000001","at":"2026-11-27T09:00:00Z","by":"alice","newly_registered":false,"user_name":"acme-finance"}}"#;
const METADATA: &str = r#"{"actor_id":"alice","actor_role":"owner","command_hash":"07d1b440861fdf6b6311822e584a38d32ed3cb18daad37edd4e2cebf7fe05ae8","command_id":"w-000001-1","hash":"c518351e562eaf31607f2f735c12c8fa467ae543020aecd40de65210110832de","occurred_at":"2026-11-27T09:00:00Z","prev_hash":"9f4af2fd2761b3600b1b2762d789c12d583bf3b20fe997a998089ec284edfbde","recorded_at":"2026-11-27T09:00:00Z"}"#;

/// How long a SQLite connection waits for the file's write lock before failing (every SQLite
/// contender, the store included, uses the same).
pub(super) const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Single-row INSERTs of an event-sized row on PostgreSQL, `writers` at once, each holding its
/// own connection for the whole slice (no pool round trips at all).
pub(super) struct RawPg {
    pool: PgPool,
    writers: usize,
    rows_per_writer: usize,
}

impl Contender for RawPg {
    fn slice(&mut self, slice: usize) -> Slice<'_> {
        Box::pin(async move {
            let mut tasks = Vec::new();
            for writer in 0..self.writers {
                let pool = self.pool.clone();
                let n = self.rows_per_writer;
                let id = format!("w{slice}-{writer}");
                tasks.push(tokio::spawn(async move {
                    let mut conn = pool.acquire().await.map_err(|e| e.to_string())?;
                    for i in 0..n {
                        sqlx::query(
                            "INSERT INTO raw_events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata) \
                             VALUES ('workspace', $1, $2, 'AccountBound', '1.0', $3::json, $4::json)",
                        )
                        .bind(id.as_str())
                        .bind(i as i64 + 1)
                        .bind(PAYLOAD)
                        .bind(METADATA)
                        .execute(&mut *conn)
                        .await
                        .map_err(|e| e.to_string())?;
                    }
                    Ok::<_, String>(n)
                }));
            }
            let mut done = 0;
            for t in tasks {
                done += t.await.map_err(|e| e.to_string())??;
            }
            Ok(done)
        })
    }
}

/// A [`RawPg`] on a fresh table with the `events` primary key in the database at `url`.
pub(super) async fn raw_pg(
    url: &str,
    writers: usize,
    rows_per_writer: usize,
) -> Result<RawPg, String> {
    let pool = pg::pool(url, writers as u32).await?;
    sqlx::query(
        "CREATE TABLE raw_events (aggregate_type text NOT NULL, aggregate_id text NOT NULL, \
         sequence bigint NOT NULL, event_type text NOT NULL, event_version text NOT NULL, \
         payload json NOT NULL, metadata json NOT NULL, \
         PRIMARY KEY (aggregate_type, aggregate_id, sequence))",
    )
    .execute(&pool)
    .await
    .map_err(|e| e.to_string())?;
    Ok(RawPg {
        pool,
        writers,
        rows_per_writer,
    })
}

/// Single-row INSERTs of an event-sized row on one SQLite file, `writers` at once, each on its
/// own connection held for the whole slice; every INSERT is its own (autocommit) transaction.
pub(super) struct RawSqlite {
    pool: SqlitePool,
    writers: usize,
    rows_per_writer: usize,
}

impl Contender for RawSqlite {
    fn slice(&mut self, slice: usize) -> Slice<'_> {
        Box::pin(async move {
            let mut tasks = Vec::new();
            for writer in 0..self.writers {
                let pool = self.pool.clone();
                let n = self.rows_per_writer;
                let id = format!("w{slice}-{writer}");
                tasks.push(tokio::spawn(async move {
                    let mut conn = pool.acquire().await.map_err(|e| e.to_string())?;
                    for i in 0..n {
                        sqlx::query(
                            "INSERT INTO raw_events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata) \
                             VALUES ('workspace', ?1, ?2, 'AccountBound', '1.0', ?3, ?4)",
                        )
                        .bind(id.as_str())
                        .bind(i as i64 + 1)
                        .bind(PAYLOAD)
                        .bind(METADATA)
                        .execute(&mut *conn)
                        .await
                        .map_err(|e| e.to_string())?;
                    }
                    Ok::<_, String>(n)
                }));
            }
            let mut done = 0;
            for t in tasks {
                done += t.await.map_err(|e| e.to_string())??;
            }
            Ok(done)
        })
    }
}

/// SQLite connection options every SQLite baseline uses: WAL, `synchronous=FULL` (as the
/// store's `SqliteDurability::Full`), [`SQLITE_BUSY_TIMEOUT`].
fn sqlite_options(path: &Path) -> SqliteConnectOptions {
    SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .busy_timeout(SQLITE_BUSY_TIMEOUT)
}

/// A [`RawSqlite`] on a new file at `path` with one connection per writer.
pub(super) async fn raw_sqlite(
    path: &Path,
    writers: usize,
    rows_per_writer: usize,
) -> Result<RawSqlite, String> {
    let pool = SqlitePoolOptions::new()
        .max_connections(writers as u32)
        .test_before_acquire(false)
        .connect_with(sqlite_options(path))
        .await
        .map_err(|e| e.to_string())?;
    sqlx::query(
        "CREATE TABLE raw_events (aggregate_type TEXT NOT NULL, aggregate_id TEXT NOT NULL, \
         sequence INTEGER NOT NULL, event_type TEXT NOT NULL, event_version TEXT NOT NULL, \
         payload TEXT NOT NULL, metadata TEXT NOT NULL, \
         PRIMARY KEY (aggregate_type, aggregate_id, sequence)) STRICT",
    )
    .execute(&pool)
    .await
    .map_err(|e| e.to_string())?;
    Ok(RawSqlite {
        pool,
        writers,
        rows_per_writer,
    })
}

/// A plain cqrs-es framework (no snapshots, no queries) over repository `R`, one writer.
pub(super) struct CqrsEs<R: PersistedEventRepository> {
    cqrs: CqrsFramework<Workspace, PersistedEventStore<R, Workspace>>,
    prefix: &'static str,
    workspaces: usize,
    inputs: Vec<Work>,
}

impl<R: PersistedEventRepository> Contender for CqrsEs<R> {
    fn prepare(&mut self, slice: usize) -> Result<(), String> {
        self.inputs = (0..self.workspaces)
            .map(|w| flow(&format!("{}{slice}", self.prefix), w))
            .collect::<Result<_, _>>()?;
        Ok(())
    }

    fn slice(&mut self, _slice: usize) -> Slice<'_> {
        Box::pin(async move {
            let mut done = 0;
            for (id, commands) in std::mem::take(&mut self.inputs) {
                for c in commands {
                    self.cqrs
                        .execute(id.as_str(), c)
                        .await
                        .map_err(|e| e.to_string())?;
                    done += 1;
                }
            }
            Ok(done)
        })
    }
}

/// `postgres_es::postgres_cqrs` with its default pool, on the tables postgres-es documents.
pub(super) async fn postgres_es(
    url: &str,
    workspaces: usize,
) -> Result<CqrsEs<postgres_es::PostgresEventRepository>, String> {
    let pool = postgres_es::default_postgress_pool(url).await;
    for sql in [
        "CREATE TABLE events (aggregate_type text NOT NULL, aggregate_id text NOT NULL, \
         sequence bigint CHECK (sequence >= 0) NOT NULL, event_type text NOT NULL, \
         event_version text NOT NULL, payload json NOT NULL, metadata json NOT NULL, \
         PRIMARY KEY (aggregate_type, aggregate_id, sequence))",
        "CREATE TABLE snapshots (aggregate_type text NOT NULL, aggregate_id text NOT NULL, \
         last_sequence bigint CHECK (last_sequence >= 0) NOT NULL, \
         current_snapshot bigint CHECK (current_snapshot >= 0) NOT NULL, payload json NOT NULL, \
         PRIMARY KEY (aggregate_type, aggregate_id, last_sequence))",
    ] {
        sqlx::query(sql)
            .execute(&pool)
            .await
            .map_err(|e| e.to_string())?;
    }
    Ok(CqrsEs {
        cqrs: postgres_es::postgres_cqrs(pool, vec![], services()),
        prefix: "pges",
        workspaces,
        inputs: Vec::new(),
    })
}

/// `sqlite_es::sqlite_cqrs` on a new file at `path`, with `synchronous=FULL` (`full`) or its own
/// default `NORMAL`.
///
/// The pool is sqlite-es's `default_sqlite_pool` (WAL, foreign keys, ten connections, sqlx's
/// ping on acquire), with the `synchronous` setting asked for (the store under comparison runs
/// with the same) and an explicit [`SQLITE_BUSY_TIMEOUT`]. sqlite-es 0.5's only migration
/// also inserts a test event and a test view, so the tables its repository reads and writes
/// (`events`, and `snapshots`, which plain `sqlite_cqrs` never touches) are created here with
/// the columns of that migration.
pub(super) async fn sqlite_es(
    path: &Path,
    workspaces: usize,
    full: bool,
) -> Result<CqrsEs<sqlite_es::SqliteEventRepository>, String> {
    let synchronous = if full {
        SqliteSynchronous::Full
    } else {
        SqliteSynchronous::Normal
    };
    let pool = SqlitePoolOptions::new()
        .max_connections(10)
        .connect_with(
            sqlite_options(path)
                .synchronous(synchronous)
                .foreign_keys(true),
        )
        .await
        .map_err(|e| e.to_string())?;
    for sql in [
        "CREATE TABLE events (aggregate_type text NOT NULL, aggregate_id text NOT NULL, \
         sequence integer CHECK (sequence >= 0) NOT NULL, event_type text NOT NULL, \
         event_version text NOT NULL, payload text NOT NULL, metadata text NOT NULL, \
         PRIMARY KEY (aggregate_type, aggregate_id, sequence)) STRICT",
        "CREATE TABLE snapshots (aggregate_type text NOT NULL, aggregate_id text NOT NULL, \
         last_sequence integer CHECK (last_sequence >= 0) NOT NULL, \
         current_snapshot integer CHECK (current_snapshot >= 0) NOT NULL, \
         payload text NOT NULL, PRIMARY KEY (aggregate_type, aggregate_id, last_sequence)) STRICT",
    ] {
        sqlx::query(sql)
            .execute(&pool)
            .await
            .map_err(|e| e.to_string())?;
    }
    Ok(CqrsEs {
        cqrs: sqlite_es::sqlite_cqrs(pool, vec![], services()),
        prefix: "lies",
        workspaces,
        inputs: Vec::new(),
    })
}
