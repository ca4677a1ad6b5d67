//! SQLite: connecting and migrating (safely when several processes open one new file), and
//! what it does differently ([`Dialect`]). Its write path (one writer thread) is
//! `sqlite_writer.rs`.

use std::str::FromStr;
use std::sync::Arc;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Connection, Sqlite, SqliteConnection, SqlitePool, Transaction};

use super::backend::Dialect;
use super::import::Span;
use super::lanes::Lanes;
use super::reads::{Position, PositionedRow};
use super::sqlite_writer::{SqliteWriter, WriterConfig};
use super::{seq_i64, Backend, Db, SqliteDurability, StoreOptions, Writer, SQLITE_MIGRATOR};
use crate::error::StoreError;
use crate::record::{StoredRow, AGGREGATE_TYPE};

/// Connects to `url` (`sqlite://PATH`, `sqlite::memory:`), migrates, and starts the writer.
pub(super) async fn connect_sqlite(url: &str, options: &StoreOptions) -> Result<Db, StoreError> {
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
        .connect_with(connect.clone())
        .await
        .map_err(|e| StoreError::Unavailable {
            url: url.to_owned(),
            reason: e.to_string(),
        })?;
    migrate_sqlite(&pool).await?;
    let writer = SqliteWriter::start(WriterConfig {
        url: url.to_owned(),
        file: connect.get_filename().to_owned(),
        in_memory: memory,
        durability: options.sqlite_durability,
        busy_timeout: options.busy_timeout,
    })
    .await?;
    Ok(Db {
        backend: Backend::Sqlite(pool),
        url: Arc::from(url),
        lanes: Arc::new(Lanes::new(options)),
        writer: Writer::Sqlite(Arc::new(writer)),
        commits: Arc::default(),
    })
}

/// Brings a SQLite database's schema up to date, safely when several processes open the same
/// new file at once.
///
/// sqlx's migrator checks which migrations are applied and then applies the rest, with nothing
/// held in between on SQLite: two processes opening a new file both found nothing applied, and
/// the second failed with `table events already exists`. Here the whole run happens inside one
/// `BEGIN IMMEDIATE` transaction (SQLite's write lock, waited for with the busy timeout), so the
/// second process finds the schema complete once it gets the lock. The migrator's own
/// transactions nest inside it as savepoints. A database already up to date is recognised
/// without taking the write lock, so opening a busy store does not wait for its writers.
async fn migrate_sqlite(pool: &SqlitePool) -> Result<(), StoreError> {
    let mut conn = pool.acquire().await?;
    if up_to_date(&mut conn).await {
        return Ok(());
    }
    let mut tx = conn.begin_with("BEGIN IMMEDIATE").await?;
    SQLITE_MIGRATOR.run_direct(&mut *tx).await?;
    tx.commit().await?;
    Ok(())
}

/// Whether every embedded migration is recorded as applied, with its checksum (a database that
/// cannot say, or says anything else, is not).
async fn up_to_date(conn: &mut sqlx::SqliteConnection) -> bool {
    let applied: Result<Vec<(i64, Vec<u8>)>, sqlx::Error> =
        sqlx::query_as("SELECT version, checksum FROM _sqlx_migrations WHERE success")
            .fetch_all(&mut *conn)
            .await;
    let Ok(applied) = applied else {
        return false;
    };
    SQLITE_MIGRATOR.iter().all(|m| {
        applied
            .iter()
            .any(|(version, checksum)| *version == m.version && checksum[..] == m.checksum[..])
    })
}

/// The commit order, SQLite: positions after one, in order. A new row's position is one more
/// than the largest committed one, taken under the file's write lock, so no transaction can
/// commit a position below one a reader has seen.
const COMMITTED_AFTER: &str = concat!(
    "SELECT 0 AS commit_transaction, position AS commit_position, aggregate_type, aggregate_id, ",
    "sequence, event_type, event_version, CAST(payload AS TEXT) AS payload, ",
    "CAST(metadata AS TEXT) AS metadata FROM events WHERE position > $1 ORDER BY position LIMIT $2"
);

/// Events after a position, SQLite (positions alone are in commit order).
const BEHIND: &str = "SELECT count(*) FROM events WHERE position > $1";

/// The last event readable in the commit order now, SQLite.
const LAST_READABLE: &str = "SELECT 0, position FROM events ORDER BY position DESC LIMIT 1";

impl Dialect for Sqlite {
    async fn read_committed(
        pool: &SqlitePool,
        after: Position,
        limit: i64,
    ) -> Result<Vec<PositionedRow>, sqlx::Error> {
        sqlx::query_as(COMMITTED_AFTER)
            .bind(seq_i64(after.position))
            .bind(limit)
            .fetch_all(pool)
            .await
    }

    async fn events_behind(pool: &SqlitePool, after: Position) -> Result<i64, sqlx::Error> {
        sqlx::query_scalar(BEHIND)
            .bind(seq_i64(after.position))
            .fetch_one(pool)
            .await
    }

    async fn last_readable(pool: &SqlitePool) -> Result<Option<(i64, i64)>, sqlx::Error> {
        sqlx::query_as(LAST_READABLE).fetch_optional(pool).await
    }

    async fn begin_import(pool: &SqlitePool) -> Result<Transaction<'static, Sqlite>, sqlx::Error> {
        // IMMEDIATE: take the write lock before checking emptiness.
        pool.begin_with("BEGIN IMMEDIATE").await
    }

    async fn flush_import(
        tx: &mut Transaction<'static, Sqlite>,
        batch: &mut Vec<StoredRow>,
        spans: Vec<Span>,
    ) -> Result<(), StoreError> {
        flush(tx, batch, spans).await
    }

    async fn begin_batch(pool: &SqlitePool) -> Result<Transaction<'static, Sqlite>, sqlx::Error> {
        pool.begin().await
    }

    async fn analyze(_conn: &mut SqliteConnection, _tables: &str) -> Result<(), sqlx::Error> {
        Ok(())
    }
}

/// SQLite has no arrays: multi-row `VALUES`, 100 rows (700 parameters) per statement.
async fn flush(
    tx: &mut Transaction<'static, Sqlite>,
    batch: &mut Vec<StoredRow>,
    spans: Vec<Span>,
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
    for span in spans {
        sqlx::query(
            "INSERT INTO commands (command_id, aggregate_type, aggregate_id, command_hash, first_sequence, last_sequence, head_hash) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
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
