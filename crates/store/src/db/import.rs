//! The all-or-nothing import transaction: every row, the command records rebuilt from them, and
//! whatever the adapters' [`ImportHook`] adds — committed together, or not at all.
//!
//! The store knows nothing of the adapters' tables: the hook is how an imported log's meaning
//! for them (the outbox's reminders, already sent by the store the log came from) is written in
//! the same transaction.

use std::path::Path;

use async_trait::async_trait;
use futures_util::stream::BoxStream;
use futures_util::TryStreamExt;
use sqlx::{PgConnection, SqliteConnection};

use super::{seq_i64, Backend, Db};
use crate::error::StoreError;
use crate::record::{MetadataText, StoredRow, AGGREGATE_TYPE};

/// Work an import does inside its own transaction, after every row is written and before it
/// commits. A hook that fails rolls the whole import back.
#[async_trait]
pub trait ImportHook: Send + Sync {
    /// Runs the hook's statements on the import's open transaction.
    ///
    /// # Errors
    /// The database's error; the import then writes nothing.
    async fn imported(&self, tx: StoreTx<'_>) -> Result<(), sqlx::Error>;
}

/// An open transaction of the store's database, on either backend: an import's (for an
/// [`ImportHook`]) or a subscription batch's (for a
/// [`SubscriptionHandler`](crate::SubscriptionHandler)), so what a hook or handler writes
/// commits with it or not at all.
#[derive(Debug)]
pub enum StoreTx<'t> {
    /// PostgreSQL.
    Postgres(&'t mut PgConnection),
    /// SQLite.
    Sqlite(&'t mut SqliteConnection),
}

/// Rows written per statement.
const BATCH: usize = 500;

impl Db {
    /// Writes a whole verified import in one transaction: all rows, their command records (the
    /// idempotency records and heads), then `hook`; commits only if exactly `expected` rows came
    /// (the number verified), else writes nothing.
    pub(crate) async fn import(
        &self,
        mut rows: BoxStream<'_, Result<StoredRow, StoreError>>,
        expected: u64,
        source: &Path,
        hook: Option<&dyn ImportHook>,
        mut progress: impl FnMut(u64),
    ) -> Result<u64, StoreError> {
        let mut written = 0u64;
        let mut batch: Vec<StoredRow> = Vec::with_capacity(BATCH);
        let mut commands = CommandSpans::default();
        let changed = |detail: String| StoreError::ImportChanged {
            path: source.to_owned(),
            detail,
        };
        macro_rules! fill {
            ($tx:ident, $flush:ident) => {{
                while let Some(row) = rows.try_next().await? {
                    commands.push(&row).map_err(changed)?;
                    batch.push(row);
                    if batch.len() >= BATCH {
                        $flush(&mut $tx, &mut batch, commands.take(false)).await?;
                        written += BATCH as u64;
                        progress(written);
                    }
                }
                let n = batch.len() as u64;
                $flush(&mut $tx, &mut batch, commands.take(true)).await?;
                written += n;
                progress(written);
                if written != expected {
                    // Dropping the transaction rolls it back.
                    return Err(changed(format!(
                        "verified {expected} events, read {written}"
                    )));
                }
            }};
        }
        match &self.backend {
            Backend::Postgres(pool) => {
                let mut tx = pool.begin().await?;
                // Nothing else may write while the import checks emptiness and fills the store.
                sqlx::query("LOCK TABLE events, commands IN EXCLUSIVE MODE")
                    .execute(&mut *tx)
                    .await?;
                if any_events(&mut *tx).await? {
                    return Err(StoreError::NotEmpty);
                }
                fill!(tx, flush_pg);
                // Statistics for the tables just filled: the first queries after an import would
                // otherwise be planned for empty tables (a nested loop over a million rows).
                sqlx::query("ANALYZE events, commands")
                    .execute(&mut *tx)
                    .await?;
                if let Some(hook) = hook {
                    hook.imported(StoreTx::Postgres(&mut tx)).await?;
                }
                tx.commit().await?;
            }
            Backend::Sqlite(pool) => {
                // IMMEDIATE: take the write lock before checking emptiness.
                let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
                if any_events(&mut *tx).await? {
                    return Err(StoreError::NotEmpty);
                }
                fill!(tx, flush_sqlite);
                if let Some(hook) = hook {
                    hook.imported(StoreTx::Sqlite(&mut tx)).await?;
                }
                tx.commit().await?;
            }
        }
        self.commits.committed();
        Ok(written)
    }
}

async fn any_events<'c, E>(conn: E) -> Result<bool, sqlx::Error>
where
    E: sqlx::Executor<'c>,
    bool: sqlx::Type<E::Database> + for<'r> sqlx::Decode<'r, E::Database>,
    for<'q> <E::Database as sqlx::Database>::Arguments<'q>: sqlx::IntoArguments<'q, E::Database>,
    (bool,): for<'r> sqlx::FromRow<'r, <E::Database as sqlx::Database>::Row>,
{
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM events)")
        .fetch_one(conn)
        .await
}

/// One command's record as an import rebuilds it.
struct Span {
    command_id: String,
    workspace: String,
    command_hash: String,
    first: u64,
    last: u64,
    head_hash: String,
}

/// Groups consecutive events of one command into command records (idempotency and head).
#[derive(Default)]
struct CommandSpans {
    open: Option<Span>,
    done: Vec<Span>,
}

impl CommandSpans {
    /// Adds a row (its metadata read once).
    fn push(&mut self, row: &StoredRow) -> Result<(), String> {
        let meta: MetadataText<'_> = serde_json::from_str(&row.metadata).map_err(|e| {
            format!(
                "workspace {} sequence {}: metadata: {e}",
                row.aggregate_id, row.sequence
            )
        })?;
        match &mut self.open {
            Some(span)
                if span.command_id == meta.command_id && span.workspace == row.aggregate_id =>
            {
                span.last = row.sequence;
                span.head_hash = meta.hash.into_owned();
            }
            _ => {
                if let Some(done) = self.open.take() {
                    self.done.push(done);
                }
                self.open = Some(Span {
                    command_id: meta.command_id.into_owned(),
                    workspace: row.aggregate_id.clone(),
                    command_hash: meta.command_hash.into_owned(),
                    first: row.sequence,
                    last: row.sequence,
                    head_hash: meta.hash.into_owned(),
                });
            }
        }
        Ok(())
    }

    /// The finished records (and, at the end, the open one too).
    fn take(&mut self, all: bool) -> Vec<Span> {
        if all {
            if let Some(done) = self.open.take() {
                self.done.push(done);
            }
        }
        std::mem::take(&mut self.done)
    }
}

/// PostgreSQL: one statement per batch, the columns as arrays (`UNNEST`).
async fn flush_pg(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
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

/// SQLite has no arrays: multi-row `VALUES`, 100 rows (700 parameters) per statement.
async fn flush_sqlite(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
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
