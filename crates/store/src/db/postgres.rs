//! PostgreSQL: connecting, and what it does differently ([`Dialect`]). Its write path (one
//! statement per append, group commit when several are in flight) is `append.rs`.

use std::str::FromStr;
use std::sync::Arc;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection, PgConnection, PgPool, Postgres, Transaction};

use super::append::PgGroup;
use super::backend::Dialect;
use super::connect::redact;
use super::import::Span;
use super::lanes::Lanes;
use super::reads::{Position, PositionedRow};
use super::{seq_i64, Backend, Db, StoreOptions, Writer, POSTGRES_MIGRATOR};
use crate::error::StoreError;
use crate::record::{StoredRow, AGGREGATE_TYPE};

impl Db {
    /// A database over an existing PostgreSQL pool (a host's own, or a test's): applies the
    /// embedded migrations.
    ///
    /// # Errors
    /// [`StoreError::Migration`].
    pub async fn from_pg_pool(pool: PgPool, options: &StoreOptions) -> Result<Self, StoreError> {
        // PostgreSQL serializes concurrent migration runs itself (sqlx takes an advisory lock).
        POSTGRES_MIGRATOR.run(&pool).await?;
        let connect = pool.connect_options();
        let url = format!(
            "postgres://{}@{}:{}/{}",
            connect.get_username(),
            connect.get_host(),
            connect.get_port(),
            connect.get_database().unwrap_or_default()
        );
        Ok(Self {
            backend: Backend::Postgres(pool),
            url: Arc::from(url),
            lanes: Arc::new(Lanes::new(options)),
            writer: Writer::Postgres(Arc::new(PgGroup::default())),
            commits: Arc::default(),
        })
    }
}

/// Connects a pool to `url`.
pub(super) async fn connect_postgres(
    url: &str,
    options: &StoreOptions,
) -> Result<PgPool, StoreError> {
    let unavailable = |reason: String| StoreError::Unavailable {
        url: redact(url),
        reason,
    };
    let connect = PgConnectOptions::from_str(url).map_err(|e| StoreError::InvalidUrl {
        url: redact(url),
        reason: e.to_string(),
    })?;
    // One direct connection first: an unreachable server fails now, with its own reason
    // ("connection refused"), instead of after the pool's acquire timeout.
    let probe = tokio::time::timeout(options.busy_timeout, PgConnection::connect_with(&connect))
        .await
        .map_err(|_| unavailable(format!("no answer within {:?}", options.busy_timeout)))?
        .map_err(|e| unavailable(e.to_string()))?;
    let pool = PgPoolOptions::new()
        .max_connections(options.max_connections)
        .acquire_timeout(options.busy_timeout)
        // A broken connection shows up as an error on use; a ping per acquire costs a round
        // trip per operation.
        .test_before_acquire(false)
        .connect_with(connect)
        .await
        .map_err(|e| unavailable(e.to_string()))?;
    // Closing the probe politely is not worth waiting for.
    drop(probe);
    Ok(pool)
}

/// The commit order, PostgreSQL: events of transactions that ended before every transaction
/// still running, after a position, in (transaction, position) order (ADR 0009). SQLite needs
/// none of this — its one writer at a time makes positions commit-ordered — so it has its own
/// statement.
const COMMITTED_AFTER: &str = concat!(
    "SELECT CAST(CAST(transaction_id AS TEXT) AS BIGINT) AS commit_transaction, ",
    "position AS commit_position, aggregate_type, aggregate_id, sequence, event_type, ",
    "event_version, CAST(payload AS TEXT) AS payload, CAST(metadata AS TEXT) AS metadata ",
    "FROM events WHERE (transaction_id, position) > (CAST(CAST($1 AS TEXT) AS xid8), $2) ",
    "AND transaction_id < pg_snapshot_xmin(pg_current_snapshot()) ",
    "ORDER BY transaction_id, position LIMIT $3"
);

/// Events after a position in the commit order, PostgreSQL (as `read_committed` reads them).
const BEHIND: &str = "SELECT count(*) FROM events \
     WHERE (transaction_id, position) > (CAST(CAST($1 AS TEXT) AS xid8), $2) \
     AND transaction_id < pg_snapshot_xmin(pg_current_snapshot())";

/// The last event readable in the commit order now, PostgreSQL.
const LAST_READABLE: &str = "SELECT CAST(CAST(transaction_id AS TEXT) AS BIGINT), position \
     FROM events WHERE transaction_id < pg_snapshot_xmin(pg_current_snapshot()) \
     ORDER BY transaction_id DESC, position DESC LIMIT 1";

impl Dialect for Postgres {
    async fn read_committed(
        pool: &PgPool,
        after: Position,
        limit: i64,
    ) -> Result<Vec<PositionedRow>, sqlx::Error> {
        sqlx::query_as(COMMITTED_AFTER)
            .bind(seq_i64(after.transaction))
            .bind(seq_i64(after.position))
            .bind(limit)
            .fetch_all(pool)
            .await
    }

    async fn events_behind(pool: &PgPool, after: Position) -> Result<i64, sqlx::Error> {
        sqlx::query_scalar(BEHIND)
            .bind(seq_i64(after.transaction))
            .bind(seq_i64(after.position))
            .fetch_one(pool)
            .await
    }

    async fn last_readable(pool: &PgPool) -> Result<Option<(i64, i64)>, sqlx::Error> {
        sqlx::query_as(LAST_READABLE).fetch_optional(pool).await
    }

    async fn begin_import(pool: &PgPool) -> Result<Transaction<'static, Postgres>, sqlx::Error> {
        let mut tx = pool.begin().await?;
        // Nothing else may write while the import checks emptiness and fills the store.
        sqlx::query("LOCK TABLE events, commands IN EXCLUSIVE MODE")
            .execute(&mut *tx)
            .await?;
        Ok(tx)
    }

    async fn flush_import(
        tx: &mut Transaction<'static, Postgres>,
        batch: &mut Vec<StoredRow>,
        spans: Vec<Span>,
    ) -> Result<(), StoreError> {
        flush(tx, batch, spans).await
    }

    async fn begin_batch(pool: &PgPool) -> Result<Transaction<'static, Postgres>, sqlx::Error> {
        // The batch does not wait for its commit to reach the disk. A crash can then lose the
        // last batches whole — effect and checkpoint together — and they are handed over again:
        // still exactly once for what the handler writes in the batch, at least once for the
        // rest (ADR 0010). Waiting would cost the writers' commits a sync each time.
        let mut tx = pool.begin().await?;
        sqlx::query("SET LOCAL synchronous_commit = off")
            .execute(&mut *tx)
            .await?;
        Ok(tx)
    }

    async fn analyze(conn: &mut PgConnection, tables: &str) -> Result<(), sqlx::Error> {
        sqlx::query(&format!("ANALYZE {tables}"))
            .execute(conn)
            .await
            .map(|_| ())
    }
}

/// One statement per batch, the columns as arrays (`UNNEST`).
async fn flush(
    tx: &mut Transaction<'static, Postgres>,
    batch: &mut Vec<StoredRow>,
    spans: Vec<Span>,
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
