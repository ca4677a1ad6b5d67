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

use super::backend::{analyze, Dialect, StoreTx};
use super::Db;
use crate::error::StoreError;
use crate::record::{MetadataText, StoredRow};

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
        on_backend!(&self.backend, |pool, Same| {
            let mut tx = Dialect::begin_import(pool).await?;
            let any: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM events)")
                .fetch_one(&mut *tx)
                .await?;
            if any {
                return Err(StoreError::NotEmpty);
            }
            while let Some(row) = rows.try_next().await? {
                commands.push(&row).map_err(changed)?;
                batch.push(row);
                if batch.len() >= BATCH {
                    Dialect::flush_import(&mut tx, &mut batch, commands.take(false)).await?;
                    written += BATCH as u64;
                    progress(written);
                }
            }
            let n = batch.len() as u64;
            Dialect::flush_import(&mut tx, &mut batch, commands.take(true)).await?;
            written += n;
            progress(written);
            if written != expected {
                // Dropping the transaction rolls it back.
                return Err(changed(format!(
                    "verified {expected} events, read {written}"
                )));
            }
            // Statistics for the tables just filled: the first queries after an import would
            // otherwise be planned for empty tables (a nested loop over a million rows).
            analyze(&mut *tx, "events, commands").await?;
            if let Some(hook) = hook {
                hook.imported(Same(&mut *tx)).await?;
            }
            tx.commit().await?;
        });
        self.commits.committed();
        Ok(written)
    }
}

/// One command's record as an import rebuilds it.
pub(super) struct Span {
    pub(super) command_id: String,
    pub(super) workspace: String,
    pub(super) command_hash: String,
    pub(super) first: u64,
    pub(super) last: u64,
    pub(super) head_hash: String,
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
