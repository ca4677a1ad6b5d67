//! The view tables: writing projections, reading them, finding what lags, and rebuilding them.
//!
//! The same SQL runs on both backends (`$n` parameters work in SQLite too);
//! [`on_backend!`](billing_store::on_backend) runs it on whichever database the store uses. Views are typed; `rows.rs` turns them into the text and
//! integers the tables store and parses them back.

mod rebuild;
mod rows;

use billing_domain::{UserName, Workspace, WorkspaceId};
use std::collections::HashMap;

use billing_store::{on_backend, Db, StoreTx, StoredEvent};
use chrono::{DateTime, Utc};

pub use self::rebuild::{rebuild, RebuildReport};

/// The subscription that brings the views up to the log after anything the commit path missed
/// (SPEC §11: the views run on the same mechanism a host uses). `catch_up` runs it; a rebuild
/// moves its checkpoint back to what the rebuild read.
pub const VIEWS_SUBSCRIPTION: &str = "billing-views";

/// [`VIEWS_SUBSCRIPTION`] as a subscription name.
pub(crate) fn views_subscription() -> billing_store::SubscriptionName {
    // A valid name, checked by the tests.
    billing_store::SubscriptionName::parse(VIEWS_SUBSCRIPTION).unwrap_or_else(|_| unreachable!())
}
use self::rows::{bind_trail, bind_view, TrailColumns, TrailRow, ViewColumns, ViewRow};
pub(crate) use self::rows::{db_int, int, parse};
use self::rows::{TRAIL_COLUMNS, VIEW_COLUMNS};
use crate::error::AdapterError;
pub use crate::notices::OPENING_REMINDER;
use crate::notices::{notice, Notice};
use billing_domain::instant::{rfc3339, sortable};

use crate::views::{AuditEntry, BillingView};

/// An outbox message to record: at most one per triggering event (workspace and sequence) and
/// kind, and at most one per workspace, countdown and kind.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutboxRow {
    /// The workspace.
    pub workspace_id: WorkspaceId,
    /// The kind of message (one of [`crate::outbox::NOTICE_KINDS`]).
    pub kind: String,
    /// The sequence of the event it is about.
    pub sequence: u64,
    /// The countdown it is about (`None` for the opening reminder and a fallback).
    pub countdown: Option<u32>,
    /// When it fell due: the countdown's `remind_at` for a reminder, the event's instant
    /// otherwise.
    pub due_at: DateTime<Utc>,
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
    /// The notices its events call for (the opening reminder, the standing's notices), each
    /// recorded unless the outbox has it already.
    pub outbox: Vec<OutboxRow>,
}

impl ViewUpdate {
    /// The update for one commit's `events`, which led `workspace` to `state`; it applies only to
    /// a view standing right before the first of them. `now` is when the notices it carries are
    /// recorded. `None` for a commit without events.
    ///
    /// Its notices are composed with `state`, the state after the whole commit: every event that
    /// calls for a notice with the state in it (the reasons) is the last of its commit.
    pub fn for_commit(
        workspace: &WorkspaceId,
        state: &Workspace,
        events: &[StoredEvent],
        now: DateTime<Utc>,
    ) -> Option<Self> {
        Self::new(workspace, state, events, now, false)
    }

    /// The update re-projecting `workspace`'s whole stream `events`, which folds to `state`; it
    /// applies to any older view (a catch-up). Its notices are every notice of the stream, each
    /// composed with the state right after its event. `None` for an empty stream.
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
        let outbox = if full {
            stream_notices(workspace, state, events, now)
        } else {
            events
                .iter()
                .filter_map(|e| outbox_row(workspace, state, e, now))
                .collect()
        };
        Some(Self {
            first_sequence: first.sequence,
            full,
            view: BillingView::from_state(workspace, state, last.sequence, &last.metadata.hash),
            trail: events.iter().map(AuditEntry::from_event).collect(),
            outbox,
        })
    }
}

/// Every notice of `workspace`'s whole stream `events` (which folds to `state`), each composed
/// with the state right after its event, recorded at `now`.
pub(crate) fn stream_notices(
    workspace: &WorkspaceId,
    state: &Workspace,
    events: &[StoredEvent],
    now: DateTime<Utc>,
) -> Vec<OutboxRow> {
    let mut rows = Vec::new();
    let mut at = Workspace::default();
    for e in events {
        match at.evolve(&e.event) {
            Ok(next) => at = next,
            // A verified stream always folds; should it not, the final state stands in.
            Err(_) => at = state.clone(),
        }
        rows.extend(outbox_row(workspace, &at, e, now));
    }
    rows
}

const UPSERT_VIEW: &str = "INSERT INTO billing_view (workspace_id, plan, upgrade_step, site, user_name, \
    settlement_method, cloud_account_id, cloud_instance_id, agreement_version, upgraded_at, \
    data_visible_from, settlement_changes, last_sequence, head_hash, standing, reasons, \
    countdown, countdown_started_at, countdown_deadline, remind_at, reminded_at, locked_at, \
    dissolved_at) \
    SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, \
    $20, $21, $22, $23 WHERE $24 OR $25 = 1 OR EXISTS (SELECT 1 FROM billing_view WHERE workspace_id = $1) \
    ON CONFLICT (workspace_id) DO UPDATE SET plan = excluded.plan, upgrade_step = excluded.upgrade_step, \
    site = excluded.site, user_name = excluded.user_name, settlement_method = excluded.settlement_method, \
    cloud_account_id = excluded.cloud_account_id, cloud_instance_id = excluded.cloud_instance_id, \
    agreement_version = excluded.agreement_version, upgraded_at = excluded.upgraded_at, \
    data_visible_from = excluded.data_visible_from, settlement_changes = excluded.settlement_changes, \
    last_sequence = excluded.last_sequence, head_hash = excluded.head_hash, \
    standing = excluded.standing, reasons = excluded.reasons, countdown = excluded.countdown, \
    countdown_started_at = excluded.countdown_started_at, \
    countdown_deadline = excluded.countdown_deadline, remind_at = excluded.remind_at, \
    reminded_at = excluded.reminded_at, locked_at = excluded.locked_at, \
    dissolved_at = excluded.dissolved_at \
    WHERE ($24 AND billing_view.last_sequence < excluded.last_sequence) \
       OR (NOT $24 AND billing_view.last_sequence = $25 - 1)";

const INSERT_TRAIL: &str =
    "INSERT INTO audit_trail (workspace_id, sequence, event_type, actor_id, \
    actor_role, occurred_at, description) VALUES ($1, $2, $3, $4, $5, $6, $7) \
    ON CONFLICT (workspace_id, sequence) DO NOTHING";

/// Records a notice unless the outbox has it: any of the table's keys (the event and kind; the
/// workspace, countdown and kind) makes a second insert a no-op.
const INSERT_OUTBOX: &str = "INSERT INTO email_outbox (workspace_id, kind, sequence, countdown, \
    user_name, subject, body, created_at, due_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
    ON CONFLICT DO NOTHING";

/// The statement that records an outbox message unless the outbox already has it (the same
/// event and kind, or the same workspace, countdown and kind), on either backend.
pub(crate) fn insert_outbox<DB>(
    o: &OutboxRow,
) -> sqlx::query::Query<'_, DB, <DB as sqlx::Database>::Arguments<'_>>
where
    DB: sqlx::Database,
    for<'q> &'q str: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    String: for<'q> sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    i64: for<'q> sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    Option<i64>: for<'q> sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    sqlx::query(INSERT_OUTBOX)
        .bind(o.workspace_id.as_str())
        .bind(o.kind.as_str())
        .bind(db_int(o.sequence))
        .bind(o.countdown.map(i64::from))
        .bind(o.user_name.as_str())
        .bind(o.subject.as_str())
        .bind(o.body.as_str())
        .bind(rfc3339(o.created_at))
        .bind(rfc3339(o.due_at))
}

/// Applies updates in one transaction. Each is guarded by its sequence: a view never moves
/// backwards and a trail entry or outbox message is never written twice, so applying an update
/// again (a retry, a catch-up) changes nothing.
///
/// # Errors
/// [`AdapterError::Store`]; nothing is applied then.
pub async fn apply(db: &Db, updates: &[ViewUpdate]) -> Result<(), AdapterError> {
    if updates.is_empty() {
        return Ok(());
    }
    on_backend!(db.backend(), |pool, Same| {
        let mut tx = pool.begin().await?;
        apply_in(Same(&mut *tx), updates).await?;
        tx.commit().await?;
    });
    Ok(())
}

/// [`apply`] inside an open transaction (a subscription batch's): the updates commit with it.
///
/// # Errors
/// [`AdapterError::Store`]; the transaction should then be rolled back.
pub(crate) async fn apply_in(tx: StoreTx<'_>, updates: &[ViewUpdate]) -> Result<(), AdapterError> {
    // In workspace order (a stable sort: one workspace's updates keep their order), so that two
    // transactions writing the same workspaces' rows — a process's commit path and another's
    // catch-up — take the row locks in one order and never deadlock (PostgreSQL detected one
    // between two concurrent `billing tick`s).
    let mut ordered: Vec<&ViewUpdate> = updates.iter().collect();
    ordered.sort_by(|a, b| a.view.workspace_id.cmp(&b.view.workspace_id));
    on_backend!(tx, |conn| {
        for update in ordered {
            let view = ViewColumns::of(&update.view);
            bind_view(sqlx::query(UPSERT_VIEW), &view)
                .bind(update.full)
                .bind(db_int(update.first_sequence))
                .execute(&mut *conn)
                .await?;
            for e in &update.trail {
                let entry = TrailColumns::of(e);
                bind_trail(sqlx::query(INSERT_TRAIL), &entry)
                    .execute(&mut *conn)
                    .await?;
            }
            for o in &update.outbox {
                insert_outbox(o).execute(&mut *conn).await?;
            }
        }
    });
    Ok(())
}

/// The `last_sequence` of each of `workspaces` that has a billing view, read inside `tx`.
///
/// # Errors
/// [`AdapterError::Store`]; [`AdapterError::Corrupt`] for a negative stored sequence.
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
    let rows = on_backend!(tx, |conn| {
        let mut query = sqlx::query_as::<_, (String, i64)>(&sql);
        for w in workspaces {
            query = query.bind(*w);
        }
        query.fetch_all(&mut **conn).await?
    });
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
/// [`AdapterError::Store`]; [`AdapterError::Corrupt`] for a stored value that does not
/// parse (naming its column and value).
pub async fn billing_view(
    db: &Db,
    workspace: &WorkspaceId,
) -> Result<Option<BillingView>, AdapterError> {
    let sql = format!("SELECT {VIEW_COLUMNS} FROM billing_view WHERE workspace_id = $1");
    let row: Option<ViewRow> = on_backend!(db.backend(), |pool| sqlx::query_as(&sql)
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
    let rows: Vec<ViewRow> = on_backend!(db.backend(), |pool| sqlx::query_as(&sql)
        .fetch_all(pool)
        .await?);
    rows.into_iter().map(ViewRow::into_view).collect()
}

/// The stored audit trail of a workspace, in order.
///
/// # Errors
/// [`AdapterError::Store`]; [`AdapterError::Corrupt`] for a stored value that does not
/// parse (naming its column and value).
pub async fn audit_trail(
    db: &Db,
    workspace: &WorkspaceId,
) -> Result<Vec<AuditEntry>, AdapterError> {
    let sql = format!(
        "SELECT {TRAIL_COLUMNS} FROM audit_trail WHERE workspace_id = $1 ORDER BY sequence"
    );
    let rows: Vec<TrailRow> = on_backend!(db.backend(), |pool| sqlx::query_as(&sql)
        .bind(workspace.as_str())
        .fetch_all(pool)
        .await?);
    rows.into_iter().map(TrailRow::into_entry).collect()
}

/// Workspaces whose view is behind their stream (missing, or at an older sequence), at most
/// `limit`, in workspace order.
///
/// # Errors
/// [`AdapterError::Store`]; [`AdapterError::Corrupt`] for a stored workspace id that does
/// not parse.
pub async fn lagging_workspaces(db: &Db, limit: u32) -> Result<Vec<WorkspaceId>, AdapterError> {
    let sql = "SELECT h.aggregate_id FROM heads h \
               LEFT JOIN billing_view v ON v.workspace_id = h.aggregate_id \
               WHERE h.aggregate_type = 'workspace' AND (v.last_sequence IS NULL OR v.last_sequence < h.sequence) \
               ORDER BY h.aggregate_id LIMIT $1";
    let rows: Vec<(String,)> = on_backend!(db.backend(), |pool| sqlx::query_as(sql)
        .bind(i64::from(limit))
        .fetch_all(pool)
        .await?);
    rows.iter()
        .map(|(id,)| parse(id, "heads.aggregate_id", id))
        .collect()
}

/// The notice `event` calls for (the opening reminder, or one of the standing's notices), given
/// `after`, the workspace's state right after the event; recorded at `now`. `None` for an event
/// that calls for none.
pub fn outbox_row(
    workspace: &WorkspaceId,
    after: &Workspace,
    event: &StoredEvent,
    now: DateTime<Utc>,
) -> Option<OutboxRow> {
    let Notice {
        kind,
        countdown,
        to,
        due_at,
        subject,
        body,
    } = notice(workspace, after, event)?;
    Some(OutboxRow {
        workspace_id: workspace.clone(),
        kind: kind.to_owned(),
        sequence: event.sequence,
        countdown,
        due_at,
        user_name: to,
        subject,
        body,
        created_at: now,
    })
}

/// Loads a workspace's verified stream and the update that brings its views up to it; `now` is
/// when the notices it carries are recorded.
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

/// Every workspace whose billing view, as the table holds it now, settles through `method` with
/// `account` (the same account id and marketplace instance), in workspace order. Bring the views
/// up to the log first ([`crate::workspaces_settling_through`] does) for the answer to include
/// every commit.
///
/// # Errors
/// [`AdapterError::Store`]; [`AdapterError::Corrupt`] for a stored workspace id that does not
/// parse.
pub async fn settling_through(
    db: &Db,
    method: &billing_domain::MethodId,
    account: &billing_domain::CloudAccount,
) -> Result<Vec<WorkspaceId>, AdapterError> {
    let sql = "SELECT workspace_id FROM billing_view \
               WHERE cloud_account_id = $1 AND settlement_method = $2 \
                 AND coalesce(cloud_instance_id, '') = $3 \
               ORDER BY workspace_id";
    let instance = account.instance_id.as_ref().map_or("", |i| i.as_str());
    let rows: Vec<(String,)> = on_backend!(db.backend(), |pool| sqlx::query_as(sql)
        .bind(account.account_id.as_str())
        .bind(method.as_str())
        .bind(instance)
        .fetch_all(pool)
        .await?);
    rows.iter()
        .map(|(id,)| parse(id, "billing_view.workspace_id", id))
        .collect()
}

/// Which deadline of a countdown is due.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Deadline {
    /// The reminder (`remind_at` passed, not sent yet).
    Reminder,
    /// The lock (`countdown_deadline` passed).
    Lock,
}

/// A countdown whose deadline is due, as the billing view shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct DueCountdown {
    /// The workspace.
    pub(crate) workspace: WorkspaceId,
    /// The countdown's number.
    pub(crate) countdown: u32,
    /// The due instant (in the [`sortable`] form), for paging.
    pub(crate) due: String,
    /// Whether the view shows the countdown's reminder sent.
    pub(crate) reminded: bool,
}

/// One page of the countdowns whose `deadline` is due at `now`, after `after` (the last due
/// instant and workspace of the previous page), at most `limit`, in (due instant, workspace)
/// order. Each query is served by its partial index of migration 0006.
pub(crate) async fn due_countdowns(
    db: &Db,
    deadline: Deadline,
    now: DateTime<Utc>,
    after: Option<(&str, &str)>,
    limit: u32,
) -> Result<Vec<DueCountdown>, AdapterError> {
    let (column, unsent) = match deadline {
        Deadline::Reminder => ("remind_at", " AND reminded_at IS NULL"),
        Deadline::Lock => ("countdown_deadline", ""),
    };
    let sql = format!(
        "SELECT workspace_id, countdown, {column}, reminded_at FROM billing_view \
         WHERE standing = 'countdown'{unsent} AND {column} <= $1 \
           AND ({column} > $2 OR ({column} = $2 AND workspace_id > $3)) \
         ORDER BY {column}, workspace_id LIMIT $4"
    );
    let (due_after, workspace_after) = after.unwrap_or(("", ""));
    let now = sortable(now);
    #[allow(clippy::type_complexity)]
    let rows: Vec<(String, Option<i64>, Option<String>, Option<String>)> =
        on_backend!(db.backend(), |pool| {
            sqlx::query_as(&sql)
                .bind(now.as_str())
                .bind(due_after)
                .bind(workspace_after)
                .bind(i64::from(limit))
                .fetch_all(pool)
                .await?
        });
    rows.into_iter()
        .map(|(id, countdown, due, reminded_at)| {
            let missing = |column: &str| AdapterError::Corrupt {
                location: format!("workspace {id}"),
                detail: format!("billing_view.{column} is NULL in a countdown"),
            };
            let countdown = countdown.ok_or_else(|| missing("countdown"))?;
            Ok(DueCountdown {
                countdown: int(&id, "billing_view.countdown", countdown)?,
                due: due.ok_or_else(|| missing(column))?,
                reminded: reminded_at.is_some(),
                workspace: parse(&id, "billing_view.workspace_id", &id)?,
            })
        })
        .collect()
}
