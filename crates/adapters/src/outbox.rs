//! The opening reminder e-mail: recorded once per upgrade in the `email_outbox` table (its primary
//! key allows one per workspace), only after the upgrade's events are stored, and delivered by a
//! [`Mailer`] until it is marked sent.
//!
//! The outbox row is written by the projector after the commit, or by a catch-up from the log if
//! the process died first — so the reminder is never lost. Delivery marks the row sent after the
//! mailer accepted it; a crash between the two delivers the same message again, with the same
//! `Message-ID` (`<opening-reminder.WORKSPACE.SEQUENCE@workspace-billing>`), so the receiving side
//! can recognise it.

use async_trait::async_trait;
use billing_domain::{UserName, WorkspaceId};
use billing_store::record::decode;
use billing_store::{Db, ImportHook, StoreTx, StoredRow};
use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::error::AdapterError;
use crate::view_store::{
    insert_outbox, int, on_pool, outbox_row, parse, OutboxRow, OPENING_REMINDER,
};
use crate::views::rfc3339;

/// A message waiting in (or sent from) the outbox. Its serde form (what `billing --json` prints)
/// has the ids as strings and the instants in RFC 3339.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct OutboxMessage {
    /// The workspace.
    pub workspace_id: WorkspaceId,
    /// The kind ([`OPENING_REMINDER`]).
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
    /// When it was sent, if it was.
    pub sent_at: Option<DateTime<Utc>>,
    /// Delivery attempts so far.
    pub attempts: u64,
}

impl OutboxMessage {
    /// The message's stable `Message-ID`, the same on every delivery attempt.
    pub fn message_id(&self) -> String {
        format!(
            "<{}.{}.{}@workspace-billing>",
            self.kind, self.workspace_id, self.sequence
        )
    }
}

/// Delivers outbox messages. Implement it for the host's real e-mail.
#[async_trait]
pub trait Mailer: Send + Sync {
    /// Delivers one message.
    ///
    /// # Errors
    /// [`AdapterError::Delivery`]; the message stays in the outbox and is retried.
    async fn deliver(&self, message: &OutboxMessage) -> Result<(), AdapterError>;
}

/// The default delivery: the message stays in the database outbox (as sent) and a log line
/// records it.
#[derive(Clone, Copy, Debug, Default)]
pub struct LogMailer;

#[async_trait]
impl Mailer for LogMailer {
    async fn deliver(&self, message: &OutboxMessage) -> Result<(), AdapterError> {
        tracing::info!(
            workspace = %message.workspace_id,
            to = %message.user_name,
            message_id = %message.message_id(),
            "opening reminder: {}",
            message.subject
        );
        Ok(())
    }
}

/// An `email_outbox` row as stored.
#[derive(sqlx::FromRow)]
struct MessageRow {
    workspace_id: String,
    kind: String,
    sequence: i64,
    user_name: String,
    subject: String,
    body: String,
    created_at: String,
    sent_at: Option<String>,
    attempts: i64,
}

const OUTBOX_COLUMNS: &str =
    "workspace_id, kind, sequence, user_name, subject, body, created_at, sent_at, attempts";

impl MessageRow {
    /// The typed message; a stored value that does not parse is [`AdapterError::Integrity`].
    fn into_message(self) -> Result<OutboxMessage, AdapterError> {
        let ws = self.workspace_id.as_str();
        Ok(OutboxMessage {
            workspace_id: parse(ws, "email_outbox.workspace_id", ws)?,
            sequence: int(ws, "email_outbox.sequence", self.sequence)?,
            user_name: parse(ws, "email_outbox.user_name", &self.user_name)?,
            created_at: parse(ws, "email_outbox.created_at", &self.created_at)?,
            sent_at: self
                .sent_at
                .as_deref()
                .map(|at| parse(ws, "email_outbox.sent_at", at))
                .transpose()?,
            attempts: int(ws, "email_outbox.attempts", self.attempts)?,
            kind: self.kind,
            subject: self.subject,
            body: self.body,
        })
    }
}

/// Every outbox message, ordered by workspace.
///
/// # Errors
/// [`AdapterError::Database`]; [`AdapterError::Integrity`] for a stored value that does not
/// parse (naming its column and value).
pub async fn outbox(db: &Db) -> Result<Vec<OutboxMessage>, AdapterError> {
    let sql = format!("SELECT {OUTBOX_COLUMNS} FROM email_outbox ORDER BY workspace_id, kind");
    let rows: Vec<MessageRow> = on_pool!(db, |pool| sqlx::query_as(&sql).fetch_all(pool).await?);
    rows.into_iter().map(MessageRow::into_message).collect()
}

/// What a delivery run did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct DeliveryReport {
    /// Messages delivered and marked sent.
    pub sent: u64,
    /// Messages whose delivery failed (left for the next run).
    pub failed: u64,
}

/// Delivers every unsent message through `mailer` and marks each sent at `now` once delivered.
///
/// # Errors
/// [`AdapterError::Database`] reading or marking the outbox; [`AdapterError::Integrity`] for a
/// pending message whose stored values do not parse (nothing after it is delivered then); a
/// failed delivery is counted in the report and recorded on the row, not returned.
pub async fn deliver_pending(
    db: &Db,
    mailer: &dyn Mailer,
    now: DateTime<Utc>,
) -> Result<DeliveryReport, AdapterError> {
    let sql = format!(
        "SELECT {OUTBOX_COLUMNS} FROM email_outbox WHERE sent_at IS NULL ORDER BY workspace_id, kind"
    );
    let pending: Vec<MessageRow> =
        on_pool!(db, |pool| sqlx::query_as(&sql).fetch_all(pool).await?);
    let mut report = DeliveryReport::default();
    for row in pending {
        let message = row.into_message()?;
        let outcome = mailer.deliver(&message).await;
        // On success $1 is the sending time, on failure the error: one statement shape each.
        let (sql, value) = match &outcome {
            Ok(()) => (
                "UPDATE email_outbox SET sent_at = $1, attempts = attempts + 1, last_error = NULL \
                 WHERE workspace_id = $2 AND kind = $3 AND sent_at IS NULL",
                rfc3339(now),
            ),
            Err(e) => (
                "UPDATE email_outbox SET attempts = attempts + 1, last_error = $1 \
                 WHERE workspace_id = $2 AND kind = $3 AND sent_at IS NULL",
                e.to_string(),
            ),
        };
        on_pool!(db, |pool| sqlx::query(sql)
            .bind(&value)
            .bind(message.workspace_id.as_str())
            .bind(&message.kind)
            .execute(pool)
            .await?
            .rows_affected());
        match outcome {
            Ok(()) => report.sent += 1,
            Err(e) => {
                tracing::warn!(workspace = %message.workspace_id, "opening reminder not delivered: {e}");
                report.failed += 1;
            }
        }
    }
    Ok(report)
}

/// Records the opening reminder of every upgrade in the log that the outbox lacks (a catch-up
/// after a crash between commit and projection, or after a rebuild), as recorded at `now`.
/// Returns how many it added.
///
/// # Errors
/// [`AdapterError::Database`]; [`AdapterError::Integrity`] for a stored upgrade that does not
/// decode.
pub async fn ensure_outbox(db: &Db, now: DateTime<Utc>) -> Result<u64, AdapterError> {
    let select =
        "SELECT e.aggregate_type, e.aggregate_id, e.sequence, e.event_type, e.event_version, \
         CAST(e.payload AS TEXT) AS payload, CAST(e.metadata AS TEXT) AS metadata FROM events e \
         LEFT JOIN email_outbox o ON o.workspace_id = e.aggregate_id AND o.kind = $1 \
         WHERE e.event_type = 'PlanUpgraded' AND o.workspace_id IS NULL";
    let missing: Vec<StoredRow> = on_pool!(db, |pool| sqlx::query_as(select)
        .bind(OPENING_REMINDER)
        .fetch_all(pool)
        .await?);
    let mut rows: Vec<OutboxRow> = Vec::new();
    for row in &missing {
        let decoded = decode(row.as_ref()).map_err(|e| AdapterError::Integrity {
            workspace: row.aggregate_id.clone(),
            detail: format!("sequence {}: {e}", row.sequence),
        })?;
        let stored = &decoded.stored;
        rows.extend(outbox_row(&stored.workspace_id, stored, now));
    }
    let mut added = 0;
    for o in rows {
        // Another process may have recorded it since the select: count only what this inserts.
        added += on_pool!(db, |pool| insert_outbox(&o)
            .execute(pool)
            .await?
            .rows_affected());
    }
    Ok(added)
}

/// An imported log's upgrades had their opening reminders sent by the store the log came from:
/// an import records them as sent, in its own transaction, so the outbox never sends them a
/// second time. (One statement text for both backends: SQLite reads JSON with the same `->`
/// and `->>` operators as PostgreSQL.)
const IMPORTED_REMINDERS: &str = "INSERT INTO email_outbox \
    (workspace_id, kind, sequence, user_name, subject, body, created_at, sent_at, attempts) \
    SELECT aggregate_id, $1, sequence, \
           coalesce(payload->'PlanUpgraded'->'settlement'->'enterprise'->>'user_name', ''), \
           'opening reminder (sent before this store was imported)', '', \
           metadata->>'recorded_at', metadata->>'recorded_at', 0 \
    FROM events WHERE event_type = 'PlanUpgraded' \
    ON CONFLICT (workspace_id, kind) DO NOTHING";

/// The outbox's part of an import: every imported upgrade's reminder, recorded as already sent.
#[derive(Clone, Copy, Debug, Default)]
pub struct ImportedReminders;

#[async_trait]
impl ImportHook for ImportedReminders {
    async fn imported(&self, tx: StoreTx<'_>) -> Result<(), sqlx::Error> {
        match tx {
            StoreTx::Postgres(c) => {
                sqlx::query(IMPORTED_REMINDERS)
                    .bind(OPENING_REMINDER)
                    .execute(&mut *c)
                    .await?;
                // Planned with statistics, the outbox catch-up's anti-join over a large import
                // is a merge join, not minutes of nested loops.
                sqlx::query("ANALYZE email_outbox").execute(c).await?;
            }
            StoreTx::Sqlite(c) => {
                sqlx::query(IMPORTED_REMINDERS)
                    .bind(OPENING_REMINDER)
                    .execute(c)
                    .await?;
            }
        }
        Ok(())
    }
}

/// Delivery over SMTP (cargo feature `smtp`), through lettre.
#[cfg(feature = "smtp")]
pub mod smtp {
    use async_trait::async_trait;
    use billing_domain::{Email, UserName};
    use lettre::message::header::ContentType;
    use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

    use super::{Mailer, OutboxMessage};
    use crate::error::AdapterError;

    /// Resolves an Expense Center user name to an e-mail address.
    pub type AddressBook = dyn Fn(&UserName) -> Option<Email> + Send + Sync;

    /// Sends outbox messages through an SMTP relay.
    pub struct SmtpMailer {
        transport: AsyncSmtpTransport<Tokio1Executor>,
        from: String,
        address_book: Box<AddressBook>,
    }

    impl std::fmt::Debug for SmtpMailer {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("SmtpMailer")
                .field("from", &self.from)
                .finish_non_exhaustive()
        }
    }

    impl SmtpMailer {
        /// A mailer sending from `from` through the relay at `host:port` (no TLS: a local relay
        /// or sink), resolving recipients with `address_book`.
        pub fn unencrypted(
            host: &str,
            port: u16,
            from: &str,
            address_book: Box<AddressBook>,
        ) -> Self {
            Self {
                transport: AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)
                    .port(port)
                    .build(),
                from: from.to_owned(),
                address_book,
            }
        }
    }

    #[async_trait]
    impl Mailer for SmtpMailer {
        async fn deliver(&self, message: &OutboxMessage) -> Result<(), AdapterError> {
            let to = (self.address_book)(&message.user_name).ok_or_else(|| {
                AdapterError::Delivery(format!("no e-mail address for {}", message.user_name))
            })?;
            let email = Message::builder()
                .from(
                    self.from
                        .parse()
                        .map_err(|e| AdapterError::Delivery(format!("from: {e}")))?,
                )
                .to(to
                    .as_str()
                    .parse()
                    .map_err(|e| AdapterError::Delivery(format!("to {to}: {e}")))?)
                .message_id(Some(message.message_id()))
                .subject(&message.subject)
                .header(ContentType::TEXT_PLAIN)
                .body(message.body.clone())
                .map_err(|e| AdapterError::Delivery(e.to_string()))?;
            self.transport
                .send(email)
                .await
                .map_err(|e| AdapterError::Delivery(e.to_string()))?;
            Ok(())
        }
    }
}
