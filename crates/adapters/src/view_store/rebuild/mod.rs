//! Rebuilding both views from the log: fresh tables made from the live tables' schema
//! ([`schema`]), filled from one pass over the log ([`fill`]), counted, then swapped in.
//!
//! The fresh tables are copies of the live ones as they stand — whatever columns, defaults and
//! constraints the migrations gave them — never a copy of the DDL kept here, so a column a later
//! migration adds survives every rebuild. Inserts name their columns, so a column the views do
//! not write yet gets its default.

mod fill;
mod schema;

use billing_store::{on_backend, Backend, Db};

use billing_domain::Clock;

use crate::error::AdapterError;

/// What a rebuild did.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct RebuildReport {
    /// Events read from the log.
    pub events: u64,
    /// Workspaces (billing views) written.
    pub workspaces: u64,
}

/// The tables a rebuild replaces, each with the name of its fresh copy.
const TABLES: [(&str, &str); 2] = [
    ("billing_view", "billing_view_next"),
    ("audit_trail", "audit_trail_next"),
];

const DROP_NEXT: &str =
    "DROP TABLE IF EXISTS billing_view_next; DROP TABLE IF EXISTS audit_trail_next;";

const SWAP: &str =
    "DROP TABLE billing_view; ALTER TABLE billing_view_next RENAME TO billing_view; \
     DROP TABLE audit_trail; ALTER TABLE audit_trail_next RENAME TO audit_trail;";

/// Rebuilds both views from the log into fresh tables, then swaps them in — in one pass over the
/// log, writing in batches. It counts the events it read against the events the store held when
/// it began, and swaps nothing unless it read them all. `progress` gets the events read so far.
///
/// The log is read, folded and written at once, in three stages (a task reading, a thread
/// folding, a task writing), so a rebuild holds two of the pool's connections while it runs; on
/// PostgreSQL the fresh tables are filled in one transaction.
///
/// The fresh tables are made from the live tables' schema (see the module docs), so the columns,
/// defaults, constraints, indexes and triggers later migrations add survive a rebuild. Fresh
/// tables make a second run start from nothing, so nothing is ever counted twice; commits that
/// land while the rebuild runs are picked up by a catch-up afterwards (each view row knows its
/// last sequence).
///
/// # Errors
/// [`AdapterError::Shortfall`], [`StoreError::Integrity`](billing_store::StoreError::Integrity)
/// (a stream that does not fold),
/// [`AdapterError::Schema`] (a live table whose schema cannot be copied),
/// [`AdapterError::Store`], [`AdapterError::Internal`] (a stage of
/// the rebuild stopped). The old views stay in place on every
/// error.
pub async fn rebuild(
    db: &Db,
    clock: &dyn Clock,
    mut progress: impl FnMut(u64),
) -> Result<RebuildReport, AdapterError> {
    // Every event readable in the commit order now is committed, so the read below includes
    // it; the views subscription's checkpoint goes back here once the rebuilt views are in.
    let readable = db.last_readable().await?;
    let expected = db.count_events().await?;
    on_backend!(db.backend(), |pool| {
        sqlx::raw_sql(DROP_NEXT).execute(pool).await?;
    });
    // Per backend: each copies the live tables' schema from its own catalog (`schema`).
    let schema = match db.backend() {
        Backend::Postgres(pool) => schema::pg_schema(pool).await?,
        Backend::Sqlite(pool) => schema::sqlite_schema(pool).await?,
    };
    let result = match run_all(db, &schema.create).await {
        Ok(()) => fill::fill_next(db, &mut progress).await,
        Err(e) => Err(e),
    };
    let result = match result {
        Ok(report) => run_all(db, &schema.keys).await.map(|()| report),
        Err(e) => Err(e),
    };
    let report = match result {
        Ok(report) if report.events >= expected => report,
        Ok(report) => {
            drop_next(db).await;
            return Err(AdapterError::Shortfall {
                read: report.events,
                expected,
            });
        }
        Err(e) => {
            drop_next(db).await;
            return Err(e);
        }
    };
    if let Err(e) = swap(db, &schema.after_swap).await {
        drop_next(db).await;
        return Err(e);
    }
    // The views subscription may have handled events the rebuilt views do not hold (committed
    // after the read began): it handles everything after `readable` again.
    db.rewind_checkpoint(&super::views_subscription(), readable, clock.now())
        .await?;
    Ok(report)
}

/// Runs `statements` in order, each on its own.
async fn run_all(db: &Db, statements: &[String]) -> Result<(), AdapterError> {
    for statement in statements {
        on_backend!(db.backend(), |pool| {
            sqlx::raw_sql(statement).execute(pool).await?;
        });
    }
    Ok(())
}

/// Replaces the live tables with the fresh ones, and runs `after` — all in one transaction.
async fn swap(db: &Db, after: &[String]) -> Result<(), AdapterError> {
    on_backend!(db.backend(), |pool| {
        let mut tx = pool.begin().await?;
        sqlx::raw_sql(SWAP).execute(&mut *tx).await?;
        for statement in after {
            sqlx::raw_sql(statement).execute(&mut *tx).await?;
        }
        tx.commit().await?;
    });
    Ok(())
}

async fn drop_next(db: &Db) {
    let result = on_backend!(db.backend(), |pool| sqlx::raw_sql(DROP_NEXT)
        .execute(pool)
        .await
        .map(|_| ()));
    if let Err(e) = result {
        tracing::warn!("could not drop the unfinished rebuild tables: {e}");
    }
}
