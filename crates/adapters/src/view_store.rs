//! The view tables: writing projections, reading them, finding what lags, and rebuilding them.
//!
//! The same SQL runs on both backends (`$n` parameters work in SQLite too); `on_pool!` runs it
//! on whichever pool the store uses.

use billing_domain::{Workspace, WorkspaceId};
use billing_store::record::decode_unverified;
use billing_store::{Backend, Db, StoredEvent};
use futures_util::TryStreamExt;

use crate::error::AdapterError;
use crate::views::{AuditEntry, BillingView};

/// Runs the same code on the store's PostgreSQL or SQLite pool.
macro_rules! on_pool {
    ($db:expr, |$pool:ident| $body:expr) => {
        match $db.backend() {
            billing_store::Backend::Postgres($pool) => $body,
            billing_store::Backend::Sqlite($pool) => $body,
        }
    };
}
pub(crate) use on_pool;

/// An outbox message to record (at most one per workspace and kind).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutboxRow {
    /// The workspace.
    pub workspace_id: String,
    /// The kind of message (`opening-reminder`).
    pub kind: String,
    /// The sequence of the event it is about.
    pub sequence: i64,
    /// The Expense Center user name it goes to.
    pub user_name: String,
    /// Subject line.
    pub subject: String,
    /// Text body.
    pub body: String,
    /// When it was recorded (RFC 3339).
    pub created_at: String,
}

/// Everything one commit changes in the views.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ViewUpdate {
    /// The workspace's view after the commit.
    pub view: BillingView,
    /// The sequence of the first event this update carries: an incremental update applies only
    /// to a view that stands right before it, so a view never skips events (a skipped update
    /// leaves the view behind, and the catch-up re-projects it from the log).
    pub first_sequence: i64,
    /// A re-projection of the whole stream (catch-up): applies to any older view.
    pub full: bool,
    /// The commit's audit trail entries.
    pub trail: Vec<AuditEntry>,
    /// The opening reminder, when the commit upgraded the workspace.
    pub outbox: Option<OutboxRow>,
}

/// Binds a [`BillingView`]'s fourteen columns, in table order, to a query of either backend.
macro_rules! bind_view {
    ($query:expr, $v:expr) => {
        $query
            .bind(&$v.workspace_id)
            .bind(&$v.plan)
            .bind(&$v.upgrade_step)
            .bind(&$v.site)
            .bind(&$v.user_name)
            .bind(&$v.settlement_method)
            .bind(&$v.cloud_account_id)
            .bind(&$v.cloud_instance_id)
            .bind(&$v.agreement_version)
            .bind(&$v.upgraded_at)
            .bind(&$v.data_visible_from)
            .bind($v.settlement_changes)
            .bind($v.last_sequence)
            .bind(&$v.head_hash)
    };
}

const UPSERT_VIEW: &str = "INSERT INTO billing_view (workspace_id, plan, upgrade_step, site, user_name, \
    settlement_method, cloud_account_id, cloud_instance_id, agreement_version, upgraded_at, \
    data_visible_from, settlement_changes, last_sequence, head_hash) \
    SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14 WHERE $15 OR $16 = 1 OR EXISTS (SELECT 1 FROM billing_view WHERE workspace_id = $1) \
    ON CONFLICT (workspace_id) DO UPDATE SET plan = excluded.plan, upgrade_step = excluded.upgrade_step, \
    site = excluded.site, user_name = excluded.user_name, settlement_method = excluded.settlement_method, \
    cloud_account_id = excluded.cloud_account_id, cloud_instance_id = excluded.cloud_instance_id, \
    agreement_version = excluded.agreement_version, upgraded_at = excluded.upgraded_at, \
    data_visible_from = excluded.data_visible_from, settlement_changes = excluded.settlement_changes, \
    last_sequence = excluded.last_sequence, head_hash = excluded.head_hash \
    WHERE ($15 AND billing_view.last_sequence < excluded.last_sequence) \
       OR (NOT $15 AND billing_view.last_sequence = $16 - 1)";

const INSERT_TRAIL: &str =
    "INSERT INTO audit_trail (workspace_id, sequence, event_type, actor_id, \
    actor_role, occurred_at, description) VALUES ($1, $2, $3, $4, $5, $6, $7) \
    ON CONFLICT (workspace_id, sequence) DO NOTHING";

const INSERT_OUTBOX: &str = "INSERT INTO email_outbox (workspace_id, kind, sequence, user_name, subject, \
    body, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (workspace_id, kind) DO NOTHING";

/// The statement that records an outbox message unless its workspace already has one of its
/// kind (either backend).
pub(crate) fn insert_outbox<DB>(
    o: &OutboxRow,
) -> sqlx::query::Query<'_, DB, <DB as sqlx::Database>::Arguments<'_>>
where
    DB: sqlx::Database,
    for<'q> &'q String: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    i64: for<'q> sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    sqlx::query(INSERT_OUTBOX)
        .bind(&o.workspace_id)
        .bind(&o.kind)
        .bind(o.sequence)
        .bind(&o.user_name)
        .bind(&o.subject)
        .bind(&o.body)
        .bind(&o.created_at)
}

const VIEW_COLUMNS: &str = "workspace_id, plan, upgrade_step, site, user_name, settlement_method, \
    cloud_account_id, cloud_instance_id, agreement_version, upgraded_at, data_visible_from, \
    settlement_changes, last_sequence, head_hash";

/// Applies updates in one transaction. Each is guarded by its sequence: a view never moves
/// backwards and a trail entry or outbox message is never written twice, so applying an update
/// again (a retry, a catch-up) changes nothing.
///
/// # Errors
/// [`AdapterError::Database`]; nothing is applied then.
pub async fn apply(db: &Db, updates: &[ViewUpdate]) -> Result<(), AdapterError> {
    if updates.is_empty() {
        return Ok(());
    }
    on_pool!(db, |pool| {
        let mut tx = pool.begin().await?;
        for update in updates {
            let v = &update.view;
            bind_view!(sqlx::query(UPSERT_VIEW), v)
                .bind(update.full)
                .bind(update.first_sequence)
                .execute(&mut *tx)
                .await?;
            for e in &update.trail {
                sqlx::query(INSERT_TRAIL)
                    .bind(&e.workspace_id)
                    .bind(e.sequence)
                    .bind(&e.event_type)
                    .bind(&e.actor_id)
                    .bind(&e.actor_role)
                    .bind(&e.occurred_at)
                    .bind(&e.description)
                    .execute(&mut *tx)
                    .await?;
            }
            if let Some(o) = &update.outbox {
                insert_outbox(o).execute(&mut *tx).await?;
            }
        }
        tx.commit().await?;
    });
    Ok(())
}

type ViewRow = (
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    i64,
    i64,
    String,
);

fn view_from_row(r: ViewRow) -> BillingView {
    BillingView {
        workspace_id: r.0,
        plan: r.1,
        upgrade_step: r.2,
        site: r.3,
        user_name: r.4,
        settlement_method: r.5,
        cloud_account_id: r.6,
        cloud_instance_id: r.7,
        agreement_version: r.8,
        upgraded_at: r.9,
        data_visible_from: r.10,
        settlement_changes: r.11,
        last_sequence: r.12,
        head_hash: r.13,
    }
}

/// The stored billing view of a workspace.
///
/// # Errors
/// [`AdapterError::Database`].
pub async fn billing_view(db: &Db, workspace: &str) -> Result<Option<BillingView>, AdapterError> {
    let sql = format!("SELECT {VIEW_COLUMNS} FROM billing_view WHERE workspace_id = $1");
    let row: Option<ViewRow> = on_pool!(db, |pool| sqlx::query_as(&sql)
        .bind(workspace)
        .fetch_optional(pool)
        .await?);
    Ok(row.map(view_from_row))
}

/// Every stored billing view, ordered by workspace.
///
/// # Errors
/// [`AdapterError::Database`].
pub async fn all_billing_views(db: &Db) -> Result<Vec<BillingView>, AdapterError> {
    let sql = format!("SELECT {VIEW_COLUMNS} FROM billing_view ORDER BY workspace_id");
    let rows: Vec<ViewRow> = on_pool!(db, |pool| sqlx::query_as(&sql).fetch_all(pool).await?);
    Ok(rows.into_iter().map(view_from_row).collect())
}

/// The stored audit trail of a workspace, in order.
///
/// # Errors
/// [`AdapterError::Database`].
pub async fn audit_trail(db: &Db, workspace: &str) -> Result<Vec<AuditEntry>, AdapterError> {
    let sql = "SELECT workspace_id, sequence, event_type, actor_id, actor_role, occurred_at, description \
               FROM audit_trail WHERE workspace_id = $1 ORDER BY sequence";
    let rows: Vec<(String, i64, String, String, String, String, String)> =
        on_pool!(db, |pool| sqlx::query_as(sql)
            .bind(workspace)
            .fetch_all(pool)
            .await?);
    Ok(rows
        .into_iter()
        .map(|r| AuditEntry {
            workspace_id: r.0,
            sequence: r.1,
            event_type: r.2,
            actor_id: r.3,
            actor_role: r.4,
            occurred_at: r.5,
            description: r.6,
        })
        .collect())
}

/// Workspaces whose view is behind their stream (missing, or at an older sequence), at most
/// `limit`, in workspace order.
///
/// # Errors
/// [`AdapterError::Database`].
pub async fn lagging_workspaces(db: &Db, limit: i64) -> Result<Vec<String>, AdapterError> {
    let sql = "SELECT h.aggregate_id FROM heads h \
               LEFT JOIN billing_view v ON v.workspace_id = h.aggregate_id \
               WHERE h.aggregate_type = 'workspace' AND (v.last_sequence IS NULL OR v.last_sequence < h.sequence) \
               ORDER BY h.aggregate_id LIMIT $1";
    let rows: Vec<(String,)> = on_pool!(db, |pool| sqlx::query_as(sql)
        .bind(limit)
        .fetch_all(pool)
        .await?);
    Ok(rows.into_iter().map(|r| r.0).collect())
}

/// The update for `events` leading to `state`: the commit's events (`full = false`), or the
/// whole stream (`full = true`).
pub fn update_for(
    workspace: &str,
    state: &Workspace,
    events: &[StoredEvent],
    now: &str,
    full: bool,
) -> Option<ViewUpdate> {
    let (first, last) = (events.first()?, events.last()?);
    Some(ViewUpdate {
        first_sequence: i64::try_from(first.sequence).unwrap_or(i64::MAX),
        full,
        view: BillingView::from_state(workspace, state, last.sequence, &last.metadata.hash),
        trail: events.iter().map(AuditEntry::from_event).collect(),
        outbox: events.iter().find_map(|e| outbox_row(workspace, e, now)),
    })
}

/// The opening reminder for `event`, when it is the upgrade.
pub fn outbox_row(workspace: &str, event: &StoredEvent, now: &str) -> Option<OutboxRow> {
    let (user_name, subject, body) = crate::views::opening_reminder(workspace, &event.event)?;
    Some(OutboxRow {
        workspace_id: workspace.to_owned(),
        kind: OPENING_REMINDER.to_owned(),
        sequence: i64::try_from(event.sequence).unwrap_or(i64::MAX),
        user_name,
        subject,
        body,
        created_at: now.to_owned(),
    })
}

/// The outbox kind of the opening reminder e-mail.
pub const OPENING_REMINDER: &str = "opening-reminder";

/// What a rebuild did.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct RebuildReport {
    /// Events read from the log.
    pub events: u64,
    /// Workspaces (billing views) written.
    pub workspaces: u64,
}

const SQLITE_NEXT_TABLES: &str = "
CREATE TABLE billing_view_next (
    workspace_id TEXT PRIMARY KEY, plan TEXT NOT NULL, upgrade_step TEXT NOT NULL, site TEXT,
    user_name TEXT, settlement_method TEXT, cloud_account_id TEXT, cloud_instance_id TEXT,
    agreement_version TEXT, upgraded_at TEXT, data_visible_from TEXT,
    settlement_changes INTEGER NOT NULL, last_sequence INTEGER NOT NULL, head_hash TEXT NOT NULL
) STRICT;
CREATE TABLE audit_trail_next (
    workspace_id TEXT NOT NULL, sequence INTEGER NOT NULL, event_type TEXT NOT NULL,
    actor_id TEXT NOT NULL, actor_role TEXT NOT NULL, occurred_at TEXT NOT NULL,
    description TEXT NOT NULL, PRIMARY KEY (workspace_id, sequence)
) STRICT;";

/// PostgreSQL: the fresh tables start without keys (filled faster); the keys are added once
/// they are full, before the swap.
const PG_NEXT_TABLES: &str = "
CREATE TABLE billing_view_next (LIKE billing_view INCLUDING DEFAULTS);
CREATE TABLE audit_trail_next (LIKE audit_trail INCLUDING DEFAULTS);";

const PG_NEXT_KEYS: &str = "
ALTER TABLE billing_view_next ADD PRIMARY KEY (workspace_id);
ALTER TABLE audit_trail_next ADD PRIMARY KEY (workspace_id, sequence);";

const BATCH: usize = 2_000;

/// Rebuilds both views from the log into fresh tables, then swaps them in — in one pass over the
/// log, writing in batches. It counts the events it read against the events the store held when
/// it began, and swaps nothing unless it read them all. `progress` gets the events read so far.
///
/// Fresh tables make a second run start from nothing, so nothing is ever counted twice; commits
/// that land while the rebuild runs are picked up by a catch-up afterwards (each view row knows
/// its last sequence).
///
/// # Errors
/// [`AdapterError::Shortfall`], [`AdapterError::Integrity`] (a stream that does not fold),
/// [`AdapterError::Database`] / [`AdapterError::Store`].
pub async fn rebuild(
    db: &Db,
    mut progress: impl FnMut(u64),
) -> Result<RebuildReport, AdapterError> {
    let expected = db.count_events().await?;
    on_pool!(db, |pool| {
        sqlx::raw_sql(
            "DROP TABLE IF EXISTS billing_view_next; DROP TABLE IF EXISTS audit_trail_next;",
        )
        .execute(pool)
        .await?;
    });
    match db.backend() {
        Backend::Postgres(pool) => {
            sqlx::raw_sql(PG_NEXT_TABLES).execute(pool).await?;
        }
        Backend::Sqlite(pool) => {
            sqlx::raw_sql(SQLITE_NEXT_TABLES).execute(pool).await?;
        }
    }
    let mut result = fill_next(db, &mut progress).await;
    if let (Ok(_), Backend::Postgres(pool)) = (&result, db.backend()) {
        if let Err(e) = sqlx::raw_sql(PG_NEXT_KEYS).execute(pool).await {
            result = Err(e.into());
        }
    }
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
    on_pool!(db, |pool| {
        let mut tx = pool.begin().await?;
        sqlx::raw_sql(
            "DROP TABLE billing_view; ALTER TABLE billing_view_next RENAME TO billing_view; \
             DROP TABLE audit_trail; ALTER TABLE audit_trail_next RENAME TO audit_trail;",
        )
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
    });
    Ok(report)
}

async fn drop_next(db: &Db) {
    let drop = "DROP TABLE IF EXISTS billing_view_next; DROP TABLE IF EXISTS audit_trail_next;";
    let result = on_pool!(db, |pool| sqlx::raw_sql(drop)
        .execute(pool)
        .await
        .map(|_| ()));
    if let Err(e) = result {
        tracing::warn!("could not drop the unfinished rebuild tables: {e}");
    }
}

async fn fill_next(db: &Db, progress: &mut impl FnMut(u64)) -> Result<RebuildReport, AdapterError> {
    let mut rows = db.stream_all();
    let mut views: Vec<BillingView> = Vec::with_capacity(BATCH);
    let mut trail: Vec<AuditEntry> = Vec::with_capacity(BATCH);
    let mut current: Option<(String, Workspace, u64, String)> = None;
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
        if current.as_ref().map(|c| c.0.as_str()) != Some(row.aggregate_id.as_str()) {
            if let Some((ws, state, seq, head)) = current.take() {
                views.push(BillingView::from_state(&ws, &state, seq, &head));
                report.workspaces += 1;
            }
            current = Some((
                row.aggregate_id.clone(),
                Workspace::default(),
                0,
                String::new(),
            ));
        }
        if let Some((ws, state, seq, head)) = current.as_mut() {
            if stored.sequence != *seq + 1 {
                return Err(integrity(
                    ws,
                    format!("sequence {} after {seq}", stored.sequence),
                ));
            }
            *state = state
                .evolve(&stored.event)
                .map_err(|e| integrity(ws, format!("sequence {}: {e}", stored.sequence)))?;
            *seq = stored.sequence;
            head.clone_from(&stored.metadata.hash);
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
    if let Some((ws, state, seq, head)) = current.take() {
        views.push(BillingView::from_state(&ws, &state, seq, &head));
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

/// Appends one field to a `COPY … FROM STDIN` text row (escaped; `None` is `\N`).
fn copy_field(out: &mut String, value: Option<&str>, last: bool) {
    match value {
        None => out.push_str("\\N"),
        Some(text) => {
            for c in text.chars() {
                match c {
                    '\\' => out.push_str("\\\\"),
                    '\n' => out.push_str("\\n"),
                    '\r' => out.push_str("\\r"),
                    '\t' => out.push_str("\\t"),
                    c => out.push(c),
                }
            }
        }
    }
    out.push(if last { '\n' } else { '\t' });
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
                    let changes = v.settlement_changes.to_string();
                    let last = v.last_sequence.to_string();
                    for (i, field) in [
                        Some(v.workspace_id.as_str()),
                        Some(v.plan.as_str()),
                        Some(v.upgrade_step.as_str()),
                        v.site.as_deref(),
                        v.user_name.as_deref(),
                        v.settlement_method.as_deref(),
                        v.cloud_account_id.as_deref(),
                        v.cloud_instance_id.as_deref(),
                        v.agreement_version.as_deref(),
                        v.upgraded_at.as_deref(),
                        v.data_visible_from.as_deref(),
                        Some(changes.as_str()),
                        Some(last.as_str()),
                        Some(v.head_hash.as_str()),
                    ]
                    .into_iter()
                    .enumerate()
                    {
                        copy_field(&mut text, field, i == 13);
                    }
                }
                let mut copy = conn
                    .copy_in_raw(&format!(
                        "COPY billing_view_next ({VIEW_COLUMNS}) FROM STDIN"
                    ))
                    .await?;
                copy.send(text.into_bytes()).await?;
                copy.finish().await?;
            }
            if !trail.is_empty() {
                let mut text = String::with_capacity(trail.len() * 200);
                for e in trail {
                    let sequence = e.sequence.to_string();
                    for (i, field) in [
                        e.workspace_id.as_str(),
                        sequence.as_str(),
                        e.event_type.as_str(),
                        e.actor_id.as_str(),
                        e.actor_role.as_str(),
                        e.occurred_at.as_str(),
                        e.description.as_str(),
                    ]
                    .into_iter()
                    .enumerate()
                    {
                        copy_field(&mut text, Some(field), i == 6);
                    }
                }
                let mut copy = conn
                    .copy_in_raw(
                        "COPY audit_trail_next (workspace_id, sequence, event_type, actor_id, actor_role, \
                         occurred_at, description) FROM STDIN",
                    )
                    .await?;
                copy.send(text.into_bytes()).await?;
                copy.finish().await?;
            }
        }
        Backend::Sqlite(pool) => {
            let mut tx = pool.begin().await?;
            for chunk in views.chunks(500) {
                let mut sql = String::from("INSERT INTO billing_view_next VALUES ");
                for i in 0..chunk.len() {
                    sql.push_str(if i == 0 { "" } else { "," });
                    sql.push_str("(?,?,?,?,?,?,?,?,?,?,?,?,?,?)");
                }
                let mut q = sqlx::query(&sql);
                for v in chunk {
                    q = bind_view!(q, v);
                }
                q.execute(&mut *tx).await?;
            }
            for chunk in trail.chunks(1000) {
                let mut sql = String::from("INSERT INTO audit_trail_next VALUES ");
                for i in 0..chunk.len() {
                    sql.push_str(if i == 0 { "" } else { "," });
                    sql.push_str("(?,?,?,?,?,?,?)");
                }
                let mut q = sqlx::query(&sql);
                for e in chunk {
                    q = q
                        .bind(&e.workspace_id)
                        .bind(e.sequence)
                        .bind(&e.event_type)
                        .bind(&e.actor_id)
                        .bind(&e.actor_role)
                        .bind(&e.occurred_at)
                        .bind(&e.description);
                }
                q.execute(&mut *tx).await?;
            }
            tx.commit().await?;
        }
    }
    Ok(())
}

/// Loads a workspace's verified stream and the update that brings its views up to it.
///
/// # Errors
/// As [`billing_store::load_workspace`].
pub async fn catch_up_update(
    db: &Db,
    workspace: &str,
    now: &str,
) -> Result<Option<ViewUpdate>, AdapterError> {
    let id = WorkspaceId::parse(workspace).map_err(|e| AdapterError::Integrity {
        workspace: workspace.to_owned(),
        detail: e.to_string(),
    })?;
    let (state, events) = billing_store::load_workspace(db, &id).await?;
    Ok(update_for(workspace, &state, &events, now, true))
}

#[cfg(test)]
mod tests {
    use super::copy_field;

    #[test]
    fn copy_fields_escape_what_copy_text_format_reads_specially() {
        let mut out = String::new();
        copy_field(&mut out, Some("a\tb\\c\nd\re"), false);
        copy_field(&mut out, None, true);
        assert_eq!(out, "a\\tb\\\\c\\nd\\re\t\\N\n");
    }
}
