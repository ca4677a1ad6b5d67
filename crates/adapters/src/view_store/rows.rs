//! The database edge of the views: typed views and trail entries to the text and integers their
//! tables store, and back. Reading parses every column into its domain type; a stored value that
//! does not parse is an [`AdapterError::Corrupt`] naming the workspace, the column and the
//! value (only a hand-edited or corrupt table has one; a rebuild rewrites the views from the log).

use std::borrow::Cow;
use std::fmt::Display;
use std::str::FromStr;

use billing_domain::{MethodId, Settlement};

use crate::error::AdapterError;
use billing_domain::instant::{rfc3339, sortable};

use crate::views::{AuditEntry, BillingView, FlatView};

/// The `billing_view` columns the views write, in table order.
pub(crate) const VIEW_COLUMNS: &str = "workspace_id, plan, upgrade_step, site, user_name, \
    settlement_method, cloud_account_id, cloud_instance_id, agreement_version, upgraded_at, \
    data_visible_from, settlement_changes, last_sequence, head_hash, standing, reasons, \
    countdown, countdown_started_at, countdown_deadline, remind_at, reminded_at, locked_at, \
    dissolved_at";

/// How many columns [`VIEW_COLUMNS`] names.
pub(crate) const VIEW_WIDTH: usize = 23;

/// The `audit_trail` columns the views write, in table order.
pub(crate) const TRAIL_COLUMNS: &str =
    "workspace_id, sequence, event_type, actor_id, actor_role, occurred_at, description";

/// A sequence or count as the tables store it (`bigint` / `INTEGER`). No stream reaches
/// `i64::MAX` events; a larger value would be stored as `i64::MAX`.
pub(crate) fn db_int(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

fn unreadable(
    workspace: &str,
    column: &'static str,
    value: &dyn std::fmt::Debug,
    why: &dyn Display,
) -> AdapterError {
    AdapterError::Corrupt {
        location: format!("workspace {workspace}"),
        detail: format!("{column} holds {value:?}, which does not parse: {why}"),
    }
}

/// Parses stored text `value` of `column` (e.g. `billing_view.site`) of `workspace`'s row.
///
/// # Errors
/// [`AdapterError::Corrupt`] naming the workspace, the column and the value.
pub(crate) fn parse<T>(
    workspace: &str,
    column: &'static str,
    value: &str,
) -> Result<T, AdapterError>
where
    T: FromStr,
    T::Err: Display,
{
    value
        .parse()
        .map_err(|e| unreadable(workspace, column, &value, &e))
}

/// [`parse`] for a nullable column.
///
/// # Errors
/// As [`parse`].
pub(crate) fn parse_opt<T>(
    workspace: &str,
    column: &'static str,
    value: Option<&str>,
) -> Result<Option<T>, AdapterError>
where
    T: FromStr,
    T::Err: Display,
{
    value.map(|v| parse(workspace, column, v)).transpose()
}

/// A stored integer of `column` as the unsigned type the views carry.
///
/// # Errors
/// [`AdapterError::Corrupt`] for a negative or too large value.
pub(crate) fn int<T>(workspace: &str, column: &'static str, value: i64) -> Result<T, AdapterError>
where
    T: TryFrom<i64>,
    T::Error: Display,
{
    T::try_from(value).map_err(|e| unreadable(workspace, column, &value, &e))
}

/// A [`BillingView`] as its `billing_view` row stores it, borrowed from the view.
pub(crate) struct ViewColumns<'a> {
    pub(crate) workspace_id: &'a str,
    pub(crate) plan: &'static str,
    pub(crate) upgrade_step: &'static str,
    pub(crate) site: Option<&'a str>,
    pub(crate) user_name: Option<&'a str>,
    pub(crate) settlement_method: Option<&'a str>,
    pub(crate) cloud_account_id: Option<&'a str>,
    pub(crate) cloud_instance_id: Option<&'a str>,
    pub(crate) agreement_version: Option<&'a str>,
    pub(crate) upgraded_at: Option<String>,
    pub(crate) data_visible_from: Option<String>,
    pub(crate) settlement_changes: i64,
    pub(crate) last_sequence: i64,
    pub(crate) head_hash: &'a str,
    pub(crate) standing: Option<&'static str>,
    /// The open reasons as a JSON array of the domain's `Reason`.
    pub(crate) reasons: String,
    pub(crate) countdown: Option<i64>,
    /// The countdown's and standing's instants, in the [`sortable`] form.
    pub(crate) countdown_started_at: Option<String>,
    pub(crate) countdown_deadline: Option<String>,
    pub(crate) remind_at: Option<String>,
    pub(crate) reminded_at: Option<String>,
    pub(crate) locked_at: Option<String>,
    pub(crate) dissolved_at: Option<String>,
}

/// The reasons as the `billing_view.reasons` column stores them: a JSON array.
fn reasons_json(reasons: &[billing_domain::Reason]) -> String {
    // The domain's reasons always serialize (strings, numbers and instants).
    serde_json::to_string(reasons).unwrap_or_else(|_| "[]".to_owned())
}

impl<'a> ViewColumns<'a> {
    /// The columns of `v`.
    pub(crate) fn of(v: &'a BillingView) -> Self {
        let (settlement_method, cloud) = match &v.settlement {
            None => (None, None),
            Some(Settlement::Enterprise { .. }) => (Some(MethodId::ENTERPRISE), None),
            Some(Settlement::Cloud { method, account }) => (Some(method.as_str()), Some(account)),
        };
        Self {
            workspace_id: v.workspace_id.as_str(),
            plan: v.plan.as_str(),
            upgrade_step: v.upgrade_step.as_str(),
            site: v.site.as_ref().map(|s| s.as_str()),
            user_name: v.user_name.as_ref().map(|u| u.as_str()),
            settlement_method,
            cloud_account_id: cloud.map(|a| a.account_id.as_str()),
            cloud_instance_id: cloud.and_then(|a| a.instance_id.as_ref().map(|i| i.as_str())),
            agreement_version: v.agreement_version.as_ref().map(|a| a.as_str()),
            upgraded_at: v.upgraded_at.map(rfc3339),
            data_visible_from: v.data_visible_from.map(rfc3339),
            settlement_changes: i64::from(v.settlement_changes),
            last_sequence: db_int(v.last_sequence),
            head_hash: &v.head_hash,
            standing: v.standing_name(),
            reasons: reasons_json(&v.reasons),
            countdown: v.countdown().map(|c| i64::from(c.number)),
            countdown_started_at: v.countdown().map(|c| sortable(c.started_at)),
            countdown_deadline: v.countdown().map(|c| sortable(c.deadline)),
            remind_at: v.countdown().map(|c| sortable(c.remind_at)),
            reminded_at: v.countdown().and_then(|c| c.reminded_at).map(sortable),
            locked_at: v.locked_at().map(sortable),
            dissolved_at: v.dissolved_at().map(sortable),
        }
    }

    /// The values in [`VIEW_COLUMNS`] order, for `COPY`.
    pub(crate) fn fields(&self) -> [Field<'_>; VIEW_WIDTH] {
        [
            Field::Text(Some(self.workspace_id)),
            Field::Text(Some(self.plan)),
            Field::Text(Some(self.upgrade_step)),
            Field::Text(self.site),
            Field::Text(self.user_name),
            Field::Text(self.settlement_method),
            Field::Text(self.cloud_account_id),
            Field::Text(self.cloud_instance_id),
            Field::Text(self.agreement_version),
            Field::Text(self.upgraded_at.as_deref()),
            Field::Text(self.data_visible_from.as_deref()),
            Field::Int(self.settlement_changes),
            Field::Int(self.last_sequence),
            Field::Text(Some(self.head_hash)),
            Field::Text(self.standing),
            Field::Text(Some(&self.reasons)),
            Field::OptInt(self.countdown),
            Field::Text(self.countdown_started_at.as_deref()),
            Field::Text(self.countdown_deadline.as_deref()),
            Field::Text(self.remind_at.as_deref()),
            Field::Text(self.reminded_at.as_deref()),
            Field::Text(self.locked_at.as_deref()),
            Field::Text(self.dissolved_at.as_deref()),
        ]
    }
}

/// A query of either backend, as sqlx builds it.
type Query<'q, DB> = sqlx::query::Query<'q, DB, <DB as sqlx::Database>::Arguments<'q>>;

/// Binds a [`ViewColumns`]' twenty-three values, in [`VIEW_COLUMNS`] order, to a query of either
/// backend.
pub(crate) fn bind_view<'q, DB>(query: Query<'q, DB>, c: &'q ViewColumns<'_>) -> Query<'q, DB>
where
    DB: sqlx::Database,
    &'q str: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    Option<&'q str>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    i64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    Option<i64>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    query
        .bind(c.workspace_id)
        .bind(c.plan)
        .bind(c.upgrade_step)
        .bind(c.site)
        .bind(c.user_name)
        .bind(c.settlement_method)
        .bind(c.cloud_account_id)
        .bind(c.cloud_instance_id)
        .bind(c.agreement_version)
        .bind(c.upgraded_at.as_deref())
        .bind(c.data_visible_from.as_deref())
        .bind(c.settlement_changes)
        .bind(c.last_sequence)
        .bind(c.head_hash)
        .bind(c.standing)
        .bind(c.reasons.as_str())
        .bind(c.countdown)
        .bind(c.countdown_started_at.as_deref())
        .bind(c.countdown_deadline.as_deref())
        .bind(c.remind_at.as_deref())
        .bind(c.reminded_at.as_deref())
        .bind(c.locked_at.as_deref())
        .bind(c.dissolved_at.as_deref())
}

/// A `billing_view` row as stored.
#[derive(sqlx::FromRow)]
pub(crate) struct ViewRow {
    workspace_id: String,
    plan: String,
    upgrade_step: String,
    site: Option<String>,
    user_name: Option<String>,
    settlement_method: Option<String>,
    cloud_account_id: Option<String>,
    cloud_instance_id: Option<String>,
    agreement_version: Option<String>,
    upgraded_at: Option<String>,
    data_visible_from: Option<String>,
    settlement_changes: i64,
    last_sequence: i64,
    head_hash: String,
    standing: Option<String>,
    reasons: String,
    countdown: Option<i64>,
    countdown_started_at: Option<String>,
    countdown_deadline: Option<String>,
    remind_at: Option<String>,
    reminded_at: Option<String>,
    locked_at: Option<String>,
    dissolved_at: Option<String>,
}

impl ViewRow {
    /// The typed view this row stores.
    ///
    /// # Errors
    /// [`AdapterError::Corrupt`] naming the column and value that do not parse, or the
    /// settlement columns that do not make a settlement.
    pub(crate) fn into_view(self) -> Result<BillingView, AdapterError> {
        let ws = self.workspace_id.as_str();
        let flat = FlatView {
            workspace_id: parse(ws, "billing_view.workspace_id", ws)?,
            plan: parse(ws, "billing_view.plan", &self.plan)?,
            upgrade_step: parse(ws, "billing_view.upgrade_step", &self.upgrade_step)?,
            site: parse_opt(ws, "billing_view.site", self.site.as_deref())?,
            user_name: parse_opt(ws, "billing_view.user_name", self.user_name.as_deref())?,
            settlement_method: parse_opt(
                ws,
                "billing_view.settlement_method",
                self.settlement_method.as_deref(),
            )?,
            cloud_account_id: parse_opt(
                ws,
                "billing_view.cloud_account_id",
                self.cloud_account_id.as_deref(),
            )?,
            cloud_instance_id: parse_opt(
                ws,
                "billing_view.cloud_instance_id",
                self.cloud_instance_id.as_deref(),
            )?,
            agreement_version: parse_opt(
                ws,
                "billing_view.agreement_version",
                self.agreement_version.as_deref(),
            )?,
            upgraded_at: parse_opt(ws, "billing_view.upgraded_at", self.upgraded_at.as_deref())?,
            data_visible_from: parse_opt(
                ws,
                "billing_view.data_visible_from",
                self.data_visible_from.as_deref(),
            )?,
            settlement_changes: int(
                ws,
                "billing_view.settlement_changes",
                self.settlement_changes,
            )?,
            last_sequence: int(ws, "billing_view.last_sequence", self.last_sequence)?,
            head_hash: self.head_hash.clone(),
            standing: self.standing.clone(),
            reasons: serde_json::from_str(&self.reasons)
                .map_err(|e| unreadable(ws, "billing_view.reasons", &self.reasons, &e))?,
            countdown: self
                .countdown
                .map(|n| int(ws, "billing_view.countdown", n))
                .transpose()?,
            countdown_started_at: parse_opt(
                ws,
                "billing_view.countdown_started_at",
                self.countdown_started_at.as_deref(),
            )?,
            countdown_deadline: parse_opt(
                ws,
                "billing_view.countdown_deadline",
                self.countdown_deadline.as_deref(),
            )?,
            remind_at: parse_opt(ws, "billing_view.remind_at", self.remind_at.as_deref())?,
            reminded_at: parse_opt(ws, "billing_view.reminded_at", self.reminded_at.as_deref())?,
            locked_at: parse_opt(ws, "billing_view.locked_at", self.locked_at.as_deref())?,
            dissolved_at: parse_opt(
                ws,
                "billing_view.dissolved_at",
                self.dissolved_at.as_deref(),
            )?,
        };
        BillingView::try_from(flat).map_err(|detail| AdapterError::Corrupt {
            location: format!("workspace {}", self.workspace_id),
            detail: format!("stored billing_view row: {detail}"),
        })
    }
}

/// An [`AuditEntry`] as its `audit_trail` row stores it, borrowed from the entry.
pub(crate) struct TrailColumns<'a> {
    pub(crate) workspace_id: &'a str,
    pub(crate) sequence: i64,
    pub(crate) event_type: &'a str,
    pub(crate) actor_id: &'a str,
    pub(crate) actor_role: &'static str,
    pub(crate) occurred_at: Cow<'a, str>,
    pub(crate) description: &'a str,
}

impl<'a> TrailColumns<'a> {
    /// The columns of `e`.
    pub(crate) fn of(e: &'a AuditEntry) -> Self {
        Self {
            workspace_id: e.workspace_id.as_str(),
            sequence: db_int(e.sequence),
            event_type: &e.event_type,
            actor_id: e.actor_id.as_str(),
            actor_role: e.actor_role.as_str(),
            occurred_at: Cow::Owned(rfc3339(e.occurred_at)),
            description: &e.description,
        }
    }

    /// The values in [`TRAIL_COLUMNS`] order, for `COPY`.
    pub(crate) fn fields(&self) -> [Field<'_>; 7] {
        [
            Field::Text(Some(self.workspace_id)),
            Field::Int(self.sequence),
            Field::Text(Some(self.event_type)),
            Field::Text(Some(self.actor_id)),
            Field::Text(Some(self.actor_role)),
            Field::Text(Some(&self.occurred_at)),
            Field::Text(Some(self.description)),
        ]
    }
}

/// Binds a [`TrailColumns`]' seven values, in [`TRAIL_COLUMNS`] order, to a query of either
/// backend.
pub(crate) fn bind_trail<'q, DB>(query: Query<'q, DB>, c: &'q TrailColumns<'_>) -> Query<'q, DB>
where
    DB: sqlx::Database,
    &'q str: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    i64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    query
        .bind(c.workspace_id)
        .bind(c.sequence)
        .bind(c.event_type)
        .bind(c.actor_id)
        .bind(c.actor_role)
        .bind(&*c.occurred_at)
        .bind(c.description)
}

/// An `audit_trail` row as stored.
#[derive(sqlx::FromRow)]
pub(crate) struct TrailRow {
    workspace_id: String,
    sequence: i64,
    event_type: String,
    actor_id: String,
    actor_role: String,
    occurred_at: String,
    description: String,
}

impl TrailRow {
    /// The typed entry this row stores.
    ///
    /// # Errors
    /// [`AdapterError::Corrupt`] naming the column and value that do not parse.
    pub(crate) fn into_entry(self) -> Result<AuditEntry, AdapterError> {
        let ws = self.workspace_id.as_str();
        Ok(AuditEntry {
            workspace_id: parse(ws, "audit_trail.workspace_id", ws)?,
            sequence: int(ws, "audit_trail.sequence", self.sequence)?,
            actor_id: parse(ws, "audit_trail.actor_id", &self.actor_id)?,
            actor_role: parse(ws, "audit_trail.actor_role", &self.actor_role)?,
            occurred_at: parse(ws, "audit_trail.occurred_at", &self.occurred_at)?,
            event_type: self.event_type,
            description: self.description,
        })
    }
}

/// One stored value, for a `COPY … FROM STDIN` text row.
pub(crate) enum Field<'a> {
    /// Text, or NULL.
    Text(Option<&'a str>),
    /// An integer.
    Int(i64),
    /// An integer, or NULL.
    OptInt(Option<i64>),
}

/// Appends one `COPY … FROM STDIN` text row: fields separated by tabs and ended by a newline,
/// text escaped, `None` as `\N`.
pub(crate) fn copy_row(out: &mut String, fields: &[Field<'_>]) {
    use std::fmt::Write as _;
    for (i, field) in fields.iter().enumerate() {
        if i > 0 {
            out.push('\t');
        }
        match field {
            Field::Int(n) | Field::OptInt(Some(n)) => {
                // Writing to a String cannot fail.
                let _ = write!(out, "{n}");
            }
            Field::OptInt(None) => out.push_str("\\N"),
            Field::Text(None) => out.push_str("\\N"),
            Field::Text(Some(text))
                if !text
                    .bytes()
                    .any(|b| matches!(b, b'\\' | b'\n' | b'\r' | b'\t')) =>
            {
                out.push_str(text);
            }
            Field::Text(Some(text)) => {
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
    }
    out.push('\n');
}

#[cfg(test)]
mod tests {
    use super::{copy_row, Field};

    #[test]
    fn copy_fields_escape_what_copy_text_format_reads_specially() {
        let mut out = String::new();
        copy_row(
            &mut out,
            &[
                Field::Text(Some("a\tb\\c\nd\re")),
                Field::Text(None),
                Field::Int(-7),
            ],
        );
        assert_eq!(out, "a\\tb\\\\c\\nd\\re\t\\N\t-7\n");
    }
}
