//! The view tables: writing projections, reading them, finding what lags, and rebuilding them.
//!
//! The same SQL runs on both backends (`$n` parameters work in SQLite too); `on_pool!` runs it
//! on whichever pool the store uses. Views are typed; `rows.rs` turns them into the text and
//! integers the tables store and parses them back.

mod rebuild;
mod rows;

use billing_domain::{UserName, Workspace, WorkspaceId};
use std::collections::HashMap;

use billing_store::{Db, StoreTx, StoredEvent};
use chrono::{DateTime, Utc};

pub use self::rebuild::{rebuild, RebuildReport};
use self::rows::{bind_trail, bind_view, TrailColumns, TrailRow, ViewColumns, ViewRow};
pub(crate) use self::rows::{db_int, int, parse};
use self::rows::{TRAIL_COLUMNS, VIEW_COLUMNS};
use crate::error::AdapterError;
use crate::views::{opening_reminder, rfc3339, AuditEntry, BillingView};

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
    pub workspace_id: WorkspaceId,
    /// The kind of message ([`OPENING_REMINDER`]).
    pub kind: String,
    /// The sequence of the event it is about.
    pub sequence: u64,
    /// The Expense Center user name it goes to.
    pub user_name: UserName,
    /// Subject line.
    pub subject: String,
    /// Text body.
    pub body: String,
    /// When it was recorded.
    pub created_at: DateTime<Utc>,
}

/// Everything one commit changes in the views.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ViewUpdate {
    /// The workspace's view after the commit.
    pub view: BillingView,
    /// The sequence of the first event this update carries: an incremental update applies only
    /// to a view that stands right before it, so a view never skips events (a skipped update
    /// leaves the view behind, and the catch-up re-projects it from the log).
    pub first_sequence: u64,
    /// A re-projection of the whole stream (catch-up): applies to any older view.
    pub full: bool,
    /// The commit's audit trail entries.
    pub trail: Vec<AuditEntry>,
    /// The opening reminder, when the commit upgraded the workspace.
    pub outbox: Option<OutboxRow>,
}

impl ViewUpdate {
    /// The update for one commit's `events`, which led `workspace` to `state`; it applies only to
    /// a view standing right before the first of them. `now` is when an opening reminder it
    /// carries is recorded. `None` for a commit without events.
    pub fn for_commit(
        workspace: &WorkspaceId,
        state: &Workspace,
        events: &[StoredEvent],
        now: DateTime<Utc>,
    ) -> Option<Self> {
        Self::new(workspace, state, events, now, false)
    }

    /// The update re-projecting `workspace`'s whole stream `events`, which folds to `state`; it
    /// applies to any older view (a catch-up). `None` for an empty stream.
    pub fn for_stream(
        workspace: &WorkspaceId,
        state: &Workspace,
        events: &[StoredEvent],
        now: DateTime<Utc>,
    ) -> Option<Self> {
        Self::new(workspace, state, events, now, true)
    }

    fn new(
        workspace: &WorkspaceId,
        state: &Workspace,
        events: &[StoredEvent],
        now: DateTime<Utc>,
        full: bool,
    ) -> Option<Self> {
        let (first, last) = (events.first()?, events.last()?);
        Some(Self {
            first_sequence: first.sequence,
            full,
            view: BillingView::from_state(workspace, state, last.sequence, &last.metadata.hash),
            trail: events.iter().map(AuditEntry::from_event).collect(),
            outbox: events.iter().find_map(|e| outbox_row(workspace, e, now)),
        })
    }
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
    for<'q> &'q str: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    String: for<'q> sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    i64: for<'q> sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    sqlx::query(INSERT_OUTBOX)
        .bind(o.workspace_id.as_str())
        .bind(o.kind.as_str())
        .bind(db_int(o.sequence))
        .bind(o.user_name.as_str())
        .bind(o.subject.as_str())
        .bind(o.body.as_str())
        .bind(rfc3339(o.created_at))
}

/// The statements of [`apply`] on one connection (either backend), inside its transaction.
macro_rules! apply_on {
    ($conn:expr, $updates:expr) => {{
        for update in $updates {
            let view = ViewColumns::of(&update.view);
            bind_view!(sqlx::query(UPSERT_VIEW), view)
                .bind(update.full)
                .bind(db_int(update.first_sequence))
                .execute(&mut *$conn)
                .await?;
            for e in &update.trail {
                let entry = TrailColumns::of(e);
                bind_trail!(sqlx::query(INSERT_TRAIL), entry)
                    .execute(&mut *$conn)
                    .await?;
            }
            if let Some(o) = &update.outbox {
                insert_outbox(o).execute(&mut *$conn).await?;
            }
        }
    }};
}

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
        apply_on!(&mut *tx, updates);
        tx.commit().await?;
    });
    Ok(())
}

/// [`apply`] inside an open transaction (a subscription batch's): the updates commit with it.
///
/// # Errors
/// [`AdapterError::Database`]; the transaction should then be rolled back.
pub(crate) async fn apply_in(tx: StoreTx<'_>, updates: &[ViewUpdate]) -> Result<(), AdapterError> {
    match tx {
        StoreTx::Postgres(conn) => apply_on!(&mut *conn, updates),
        StoreTx::Sqlite(conn) => apply_on!(&mut *conn, updates),
    }
    Ok(())
}

/// The `last_sequence` of each of `workspaces` that has a billing view, read inside `tx`.
///
/// # Errors
/// [`AdapterError::Database`]; [`AdapterError::Integrity`] for a negative stored sequence.
pub(crate) async fn view_sequences(
    tx: &mut StoreTx<'_>,
    workspaces: &[&str],
) -> Result<HashMap<String, u64>, AdapterError> {
    if workspaces.is_empty() {
        return Ok(HashMap::new());
    }
    let list: Vec<String> = (1..=workspaces.len()).map(|i| format!("${i}")).collect();
    let sql = format!(
        "SELECT workspace_id, last_sequence FROM billing_view WHERE workspace_id IN ({})",
        list.join(", ")
    );
    macro_rules! fetch {
        ($conn:expr) => {{
            let mut query = sqlx::query_as::<_, (String, i64)>(&sql);
            for w in workspaces {
                query = query.bind(*w);
            }
            query.fetch_all(&mut **$conn).await?
        }};
    }
    let rows = match tx {
        StoreTx::Postgres(conn) => fetch!(conn),
        StoreTx::Sqlite(conn) => fetch!(conn),
    };
    rows.into_iter()
        .map(|(w, n)| {
            let n = int(&w, "billing_view.last_sequence", n)?;
            Ok((w, n))
        })
        .collect()
}

/// The stored billing view of a workspace.
///
/// # Errors
/// [`AdapterError::Database`]; [`AdapterError::Integrity`] for a stored value that does not
/// parse (naming its column and value).
pub async fn billing_view(
    db: &Db,
    workspace: &WorkspaceId,
) -> Result<Option<BillingView>, AdapterError> {
    let sql = format!("SELECT {VIEW_COLUMNS} FROM billing_view WHERE workspace_id = $1");
    let row: Option<ViewRow> = on_pool!(db, |pool| sqlx::query_as(&sql)
        .bind(workspace.as_str())
        .fetch_optional(pool)
        .await?);
    row.map(ViewRow::into_view).transpose()
}

/// Every stored billing view, ordered by workspace.
///
/// # Errors
/// As [`billing_view`].
pub async fn all_billing_views(db: &Db) -> Result<Vec<BillingView>, AdapterError> {
    let sql = format!("SELECT {VIEW_COLUMNS} FROM billing_view ORDER BY workspace_id");
    let rows: Vec<ViewRow> = on_pool!(db, |pool| sqlx::query_as(&sql).fetch_all(pool).await?);
    rows.into_iter().map(ViewRow::into_view).collect()
}

/// The stored audit trail of a workspace, in order.
///
/// # Errors
/// [`AdapterError::Database`]; [`AdapterError::Integrity`] for a stored value that does not
/// parse (naming its column and value).
pub async fn audit_trail(
    db: &Db,
    workspace: &WorkspaceId,
) -> Result<Vec<AuditEntry>, AdapterError> {
    let sql = format!(
        "SELECT {TRAIL_COLUMNS} FROM audit_trail WHERE workspace_id = $1 ORDER BY sequence"
    );
    let rows: Vec<TrailRow> = on_pool!(db, |pool| sqlx::query_as(&sql)
        .bind(workspace.as_str())
        .fetch_all(pool)
        .await?);
    rows.into_iter().map(TrailRow::into_entry).collect()
}

/// Workspaces whose view is behind their stream (missing, or at an older sequence), at most
/// `limit`, in workspace order.
///
/// # Errors
/// [`AdapterError::Database`]; [`AdapterError::Integrity`] for a stored workspace id that does
/// not parse.
pub async fn lagging_workspaces(db: &Db, limit: u32) -> Result<Vec<WorkspaceId>, AdapterError> {
    let sql = "SELECT h.aggregate_id FROM heads h \
               LEFT JOIN billing_view v ON v.workspace_id = h.aggregate_id \
               WHERE h.aggregate_type = 'workspace' AND (v.last_sequence IS NULL OR v.last_sequence < h.sequence) \
               ORDER BY h.aggregate_id LIMIT $1";
    let rows: Vec<(String,)> = on_pool!(db, |pool| sqlx::query_as(sql)
        .bind(i64::from(limit))
        .fetch_all(pool)
        .await?);
    rows.iter()
        .map(|(id,)| parse(id, "heads.aggregate_id", id))
        .collect()
}

/// The opening reminder for `event`, when it is the upgrade, recorded at `now`.
pub fn outbox_row(
    workspace: &WorkspaceId,
    event: &StoredEvent,
    now: DateTime<Utc>,
) -> Option<OutboxRow> {
    let reminder = opening_reminder(workspace, &event.event)?;
    Some(OutboxRow {
        workspace_id: workspace.clone(),
        kind: OPENING_REMINDER.to_owned(),
        sequence: event.sequence,
        user_name: reminder.to,
        subject: reminder.subject,
        body: reminder.body,
        created_at: now,
    })
}

/// The outbox kind of the opening reminder e-mail.
pub const OPENING_REMINDER: &str = "opening-reminder";

/// Loads a workspace's verified stream and the update that brings its views up to it; `now` is
/// when an opening reminder it carries is recorded.
///
/// # Errors
/// As [`billing_store::load_workspace`].
pub async fn catch_up_update(
    db: &Db,
    workspace: &WorkspaceId,
    now: DateTime<Utc>,
) -> Result<Option<ViewUpdate>, AdapterError> {
    let (state, events) = billing_store::load_workspace(db, workspace).await?;
    Ok(ViewUpdate::for_stream(workspace, &state, &events, now))
}
