//! Rebuilding both views from the log: fresh tables made from the live tables' schema, filled in
//! batches from one pass over the log, counted, then swapped in.
//!
//! The fresh tables are copies of the live ones as they stand — whatever columns, defaults and
//! constraints the migrations gave them — never a copy of the DDL kept here, so a column a later
//! migration adds survives every rebuild. Inserts name their columns, so a column the views do
//! not write yet gets its default.

use billing_domain::{Workspace, WorkspaceId};
use billing_store::record::decode_unverified;
use billing_store::{Backend, Db};
use futures_util::TryStreamExt;
use sqlx::{PgPool, SqlitePool};

use super::on_pool;
use super::rows::{bind_trail, bind_view, copy_row, TrailColumns, ViewColumns};
use super::rows::{TRAIL_COLUMNS, VIEW_COLUMNS};
use crate::error::AdapterError;
use crate::views::{AuditEntry, BillingView};

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

const BATCH: usize = 2_000;

/// What a rebuild takes from the live tables' schema, read before it fills fresh ones.
#[derive(Debug, Default)]
struct LiveSchema {
    /// Creates the fresh tables: the live tables' columns, types, defaults and constraints.
    create: Vec<String>,
    /// PostgreSQL: adds the live tables' keys to the fresh ones once they are full (a table
    /// without keys fills faster). SQLite: nothing — its keys are part of the table's text.
    keys: Vec<String>,
    /// Runs in the swap, once the fresh tables carry the live names: the live tables' other
    /// indexes and their triggers, recreated from their own definitions (which name the live
    /// table, and whose names the dropped tables freed); on PostgreSQL also the keys renamed to
    /// their live names.
    after_swap: Vec<String>,
}

/// SQLite: every table's, index's and trigger's `CREATE` text is in `sqlite_schema`. The fresh
/// table is the live table's text with the name replaced; the indexes (other than the keys'
/// automatic ones, which have no text) and triggers are recreated as they were after the swap.
async fn sqlite_schema(pool: &SqlitePool) -> Result<LiveSchema, AdapterError> {
    let mut schema = LiveSchema::default();
    for (live, next) in TABLES {
        let objects: Vec<(String, String)> = sqlx::query_as(
            "SELECT type, sql FROM sqlite_schema \
             WHERE tbl_name = $1 COLLATE NOCASE AND sql IS NOT NULL ORDER BY rowid",
        )
        .bind(live)
        .fetch_all(pool)
        .await?;
        let mut tables = 0;
        for (kind, sql) in objects {
            if kind == "table" {
                tables += 1;
                let create =
                    create_table_as(&sql, live, next).map_err(|why| AdapterError::Schema {
                        table: live,
                        detail: format!("its text in sqlite_schema, {sql:?}: {why}"),
                    })?;
                schema.create.push(create);
            } else {
                schema.after_swap.push(sql);
            }
        }
        if tables != 1 {
            return Err(AdapterError::Schema {
                table: live,
                detail: format!("sqlite_schema holds {tables} tables of that name"),
            });
        }
    }
    Ok(schema)
}

/// PostgreSQL: `LIKE … INCLUDING ALL EXCLUDING INDEXES` copies every column with its type,
/// collation, NOT NULL, default, CHECK constraints, generated and identity definitions, storage,
/// compression, statistics targets and comments — all a migration could add to a view table
/// except indexes. Indexes are left out so the fill does not maintain them: the keys (primary
/// key, unique and exclusion constraints) are added once the tables are full, from the live
/// tables' own definitions (`pg_get_constraintdef`), under temporary names renamed in the swap;
/// other indexes and triggers (which `LIKE` never copies) are recreated in the swap from
/// `pg_get_indexdef` / `pg_get_triggerdef`.
async fn pg_schema(pool: &PgPool) -> Result<LiveSchema, AdapterError> {
    let mut schema = LiveSchema::default();
    for (live, next) in TABLES {
        schema.create.push(format!(
            "CREATE TABLE {next} (LIKE {live} INCLUDING ALL EXCLUDING INDEXES)"
        ));
        let keys: Vec<(String, String)> = sqlx::query_as(
            "SELECT conname::text, pg_get_constraintdef(oid) FROM pg_constraint \
             WHERE conrelid = $1::text::regclass AND contype IN ('p', 'u', 'x') ORDER BY conname",
        )
        .bind(live)
        .fetch_all(pool)
        .await?;
        for (i, (name, definition)) in keys.into_iter().enumerate() {
            // Index names are unique per schema: the key gets its live name only once the live
            // table (and its index) is gone.
            let temporary = format!("{next}_key{i}");
            schema.keys.push(format!(
                "ALTER TABLE {next} ADD CONSTRAINT {temporary} {definition}"
            ));
            schema.after_swap.push(format!(
                "ALTER TABLE {live} RENAME CONSTRAINT {temporary} TO {}",
                pg_ident(&name)
            ));
        }
        let others: Vec<(String,)> = sqlx::query_as(
            "SELECT pg_get_indexdef(i.indexrelid) FROM pg_index i \
             WHERE i.indrelid = $1::text::regclass AND NOT EXISTS (SELECT 1 FROM pg_constraint c \
                 WHERE c.conrelid = i.indrelid AND c.conindid = i.indexrelid) \
             UNION ALL \
             SELECT pg_get_triggerdef(t.oid) FROM pg_trigger t \
             WHERE t.tgrelid = $1::text::regclass AND NOT t.tgisinternal",
        )
        .bind(live)
        .fetch_all(pool)
        .await?;
        schema
            .after_swap
            .extend(others.into_iter().map(|(sql,)| sql));
    }
    Ok(schema)
}

/// A PostgreSQL identifier, quoted.
fn pg_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// `sql`, the `CREATE TABLE` text of table `live` as SQLite stores it in `sqlite_schema`, for a
/// table named `next` instead.
///
/// SQLite stores `CREATE TABLE ` (keywords in upper case, the qualifier and `IF NOT EXISTS`
/// removed), then the name as it was written — bare, `"quoted"`, `[bracketed]`, `` `ticked` ``
/// or `'quoted'`; `ALTER TABLE … RENAME` writes it `"quoted"` — then the rest of the statement
/// verbatim. Only the name is replaced; nothing after it is touched.
///
/// # Errors
/// What is unexpected about the text (another name, an unterminated quote, no `CREATE TABLE`).
fn create_table_as(sql: &str, live: &str, next: &str) -> Result<String, String> {
    let head = sql
        .get(..12)
        .filter(|h| h.eq_ignore_ascii_case("CREATE TABLE"));
    let rest = match head {
        Some(_) => sql[12..].trim_start(),
        None => return Err("it does not start with CREATE TABLE".into()),
    };
    let (name, after) = split_name(rest).ok_or("its table name is not terminated")?;
    if !name.eq_ignore_ascii_case(live) {
        return Err(format!("it creates table {name:?}"));
    }
    Ok(format!("CREATE TABLE \"{next}\"{after}"))
}

/// Splits a leading SQLite identifier off `text`: its unquoted name, and the text after it.
fn split_name(text: &str) -> Option<(String, &str)> {
    let first = text.chars().next()?;
    let close = match first {
        '"' | '`' | '\'' => first,
        '[' => ']',
        _ => {
            let end = text
                .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == '$' || !c.is_ascii()))
                .unwrap_or(text.len());
            return (end > 0).then(|| (text[..end].to_owned(), &text[end..]));
        }
    };
    let mut name = String::new();
    let mut chars = text.char_indices().skip(1).peekable();
    while let Some((i, c)) = chars.next() {
        if c != close {
            name.push(c);
            continue;
        }
        // A doubled quote is one quote character in the name (not so for `]`).
        if close != ']' && chars.peek().map(|&(_, d)| d) == Some(close) {
            name.push(c);
            chars.next();
            continue;
        }
        return Some((name, &text[i + c.len_utf8()..]));
    }
    None
}

/// Rebuilds both views from the log into fresh tables, then swaps them in — in one pass over the
/// log, writing in batches. It counts the events it read against the events the store held when
/// it began, and swaps nothing unless it read them all. `progress` gets the events read so far.
///
/// The fresh tables are made from the live tables' schema (see the module docs), so the columns,
/// defaults, constraints, indexes and triggers later migrations add survive a rebuild. Fresh
/// tables make a second run start from nothing, so nothing is ever counted twice; commits that
/// land while the rebuild runs are picked up by a catch-up afterwards (each view row knows its
/// last sequence).
///
/// # Errors
/// [`AdapterError::Shortfall`], [`AdapterError::Integrity`] (a stream that does not fold),
/// [`AdapterError::Schema`] (a live table whose schema cannot be copied),
/// [`AdapterError::Database`] / [`AdapterError::Store`]. The old views stay in place on every
/// error.
pub async fn rebuild(
    db: &Db,
    mut progress: impl FnMut(u64),
) -> Result<RebuildReport, AdapterError> {
    let expected = db.count_events().await?;
    on_pool!(db, |pool| {
        sqlx::raw_sql(DROP_NEXT).execute(pool).await?;
    });
    let schema = match db.backend() {
        Backend::Postgres(pool) => pg_schema(pool).await?,
        Backend::Sqlite(pool) => sqlite_schema(pool).await?,
    };
    let result = match run_all(db, &schema.create).await {
        Ok(()) => fill_next(db, &mut progress).await,
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
    Ok(report)
}

/// Runs `statements` in order, each on its own.
async fn run_all(db: &Db, statements: &[String]) -> Result<(), AdapterError> {
    for statement in statements {
        on_pool!(db, |pool| {
            sqlx::raw_sql(statement).execute(pool).await?;
        });
    }
    Ok(())
}

/// Replaces the live tables with the fresh ones, and runs `after` — all in one transaction.
async fn swap(db: &Db, after: &[String]) -> Result<(), AdapterError> {
    on_pool!(db, |pool| {
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
    let result = on_pool!(db, |pool| sqlx::raw_sql(DROP_NEXT)
        .execute(pool)
        .await
        .map(|_| ()));
    if let Err(e) = result {
        tracing::warn!("could not drop the unfinished rebuild tables: {e}");
    }
}

/// The workspace being folded: its id, state, last sequence and head hash.
struct Current {
    workspace: WorkspaceId,
    state: Workspace,
    sequence: u64,
    head: String,
}

impl Current {
    fn view(&self) -> BillingView {
        BillingView::from_state(&self.workspace, &self.state, self.sequence, &self.head)
    }
}

async fn fill_next(db: &Db, progress: &mut impl FnMut(u64)) -> Result<RebuildReport, AdapterError> {
    let mut rows = db.stream_all();
    let mut views: Vec<BillingView> = Vec::with_capacity(BATCH);
    let mut trail: Vec<AuditEntry> = Vec::with_capacity(BATCH);
    let mut current: Option<Current> = None;
    let mut report = RebuildReport {
        events: 0,
        workspaces: 0,
    };
    // One batch is written (on its own connection) while the next one is decoded.
    let mut writing: Option<tokio::task::JoinHandle<Result<(), AdapterError>>> = None;
    let integrity = |workspace: &str, detail: String| AdapterError::Integrity {
        workspace: workspace.to_owned(),
        detail,
    };
    while let Some(row) = rows.try_next().await? {
        report.events += 1;
        // The log is verified on load and by audits; a rebuild only needs the events.
        let stored = decode_unverified(row.as_ref())
            .map_err(|e| integrity(&row.aggregate_id, format!("sequence {}: {e}", row.sequence)))?;
        if current.as_ref().map(|c| c.workspace.as_str()) != Some(row.aggregate_id.as_str()) {
            if let Some(done) = current.take() {
                views.push(done.view());
                report.workspaces += 1;
            }
            current = Some(Current {
                workspace: stored.workspace_id.clone(),
                state: Workspace::default(),
                sequence: 0,
                head: String::new(),
            });
        }
        if let Some(c) = current.as_mut() {
            if stored.sequence != c.sequence + 1 {
                return Err(integrity(
                    c.workspace.as_str(),
                    format!("sequence {} after {}", stored.sequence, c.sequence),
                ));
            }
            c.state = c.state.evolve(&stored.event).map_err(|e| {
                integrity(
                    c.workspace.as_str(),
                    format!("sequence {}: {e}", stored.sequence),
                )
            })?;
            c.sequence = stored.sequence;
            c.head.clone_from(&stored.metadata.hash);
        }
        trail.push(AuditEntry::from_event(&stored));
        if trail.len() >= BATCH {
            if let Some(previous) = writing.take() {
                join(previous).await?;
            }
            let (db, batch_views, batch_trail) = (
                db.clone(),
                std::mem::replace(&mut views, Vec::with_capacity(BATCH)),
                std::mem::replace(&mut trail, Vec::with_capacity(BATCH)),
            );
            writing = Some(tokio::spawn(async move {
                write_next(&db, &batch_views, &batch_trail).await
            }));
            progress(report.events);
        }
    }
    if let Some(previous) = writing.take() {
        join(previous).await?;
    }
    if let Some(done) = current.take() {
        views.push(done.view());
        report.workspaces += 1;
    }
    write_next(db, &views, &trail).await?;
    progress(report.events);
    Ok(report)
}

async fn join(task: tokio::task::JoinHandle<Result<(), AdapterError>>) -> Result<(), AdapterError> {
    task.await.map_err(|e| AdapterError::Integrity {
        workspace: String::new(),
        detail: format!("a rebuild writer stopped: {e}"),
    })?
}

/// `INSERT INTO table (columns) VALUES (?, …), …` for `rows` rows of `width` values.
fn insert_values(table: &str, columns: &str, width: usize, rows: usize) -> String {
    let row = format!("({})", vec!["?"; width].join(","));
    format!(
        "INSERT INTO {table} ({columns}) VALUES {}",
        vec![row; rows].join(",")
    )
}

async fn write_next(
    db: &Db,
    views: &[BillingView],
    trail: &[AuditEntry],
) -> Result<(), AdapterError> {
    match db.backend() {
        Backend::Postgres(pool) => {
            let mut conn = pool.acquire().await?;
            if !views.is_empty() {
                let mut text = String::with_capacity(views.len() * 256);
                for v in views {
                    copy_row(&mut text, &ViewColumns::of(v).fields());
                }
                let statement = format!("COPY billing_view_next ({VIEW_COLUMNS}) FROM STDIN");
                let mut copy = conn.copy_in_raw(&statement).await?;
                copy.send(text.into_bytes()).await?;
                copy.finish().await?;
            }
            if !trail.is_empty() {
                let mut text = String::with_capacity(trail.len() * 200);
                for e in trail {
                    copy_row(&mut text, &TrailColumns::of(e).fields());
                }
                let statement = format!("COPY audit_trail_next ({TRAIL_COLUMNS}) FROM STDIN");
                let mut copy = conn.copy_in_raw(&statement).await?;
                copy.send(text.into_bytes()).await?;
                copy.finish().await?;
            }
        }
        Backend::Sqlite(pool) => {
            let mut tx = pool.begin().await?;
            for chunk in views.chunks(500) {
                let columns: Vec<ViewColumns<'_>> = chunk.iter().map(ViewColumns::of).collect();
                let sql = insert_values("billing_view_next", VIEW_COLUMNS, 14, columns.len());
                let mut q = sqlx::query(&sql);
                for c in &columns {
                    q = bind_view!(q, c);
                }
                q.execute(&mut *tx).await?;
            }
            for chunk in trail.chunks(1000) {
                let columns: Vec<TrailColumns<'_>> = chunk.iter().map(TrailColumns::of).collect();
                let sql = insert_values("audit_trail_next", TRAIL_COLUMNS, 7, columns.len());
                let mut q = sqlx::query(&sql);
                for c in &columns {
                    q = bind_trail!(q, c);
                }
                q.execute(&mut *tx).await?;
            }
            tx.commit().await?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{create_table_as, insert_values};

    #[test]
    fn the_fresh_table_is_the_live_text_under_the_new_name() {
        for (stored, rest) in [
            (
                "CREATE TABLE billing_view (\n    a TEXT PRIMARY KEY\n) STRICT",
                " (\n    a TEXT PRIMARY KEY\n) STRICT",
            ),
            (
                "CREATE TABLE \"billing_view\" (a TEXT, b TEXT NOT NULL DEFAULT 'x')",
                " (a TEXT, b TEXT NOT NULL DEFAULT 'x')",
            ),
            ("CREATE TABLE [billing_view](a)", "(a)"),
            ("CREATE TABLE `Billing_View` (a)", " (a)"),
            ("create table  'billing_view'(a)", "(a)"),
        ] {
            assert_eq!(
                create_table_as(stored, "billing_view", "billing_view_next"),
                Ok(format!("CREATE TABLE \"billing_view_next\"{rest}")),
                "{stored}"
            );
        }
    }

    #[test]
    fn a_text_for_another_table_or_with_a_broken_name_is_refused() {
        for stored in [
            "CREATE TABLE billing_view_old (a)",
            "CREATE TABLE \"billing_view (a)",
            "CREATE VIEW billing_view AS SELECT 1",
            "CREATE TABLE \"billing\"\"view\" (a)",
            "",
        ] {
            assert!(
                create_table_as(stored, "billing_view", "billing_view_next").is_err(),
                "{stored}"
            );
        }
    }

    #[test]
    fn inserts_name_their_columns() {
        assert_eq!(
            insert_values("t", "a, b", 2, 2),
            "INSERT INTO t (a, b) VALUES (?,?),(?,?)"
        );
    }
}
