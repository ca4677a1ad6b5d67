//! The outbox: every e-mail the billing sends, recorded in the `email_outbox` table only after the
//! events it is about are stored, and delivered by a [`Mailer`] until it is marked sent.
//!
//! - the **opening reminder** ([`OPENING_REMINDER`]), once per upgrade;
//! - the **notices of the standing** (SPEC §10): [`COUNTDOWN_STARTED`], [`COUNTDOWN_REMINDER`]
//!   (due at the countdown's `remind_at`), [`LOCKED`], [`UNLOCKED`] and
//!   [`SETTLEMENT_FALLEN_BACK`] (a `SettlementChanged` with reason `cloud-subscription-ended`
//!   made by the billing system, role `system`).
//!
//! Each is one row per triggering event and kind (the table's primary key: workspace, sequence,
//! kind), and one per workspace, countdown and kind (a unique index): recording it again is a
//! no-op. The rows are written by the projector after the commit, or by a catch-up from the log
//! if the process died first ([`ensure_outbox`], and the views' catch-up) — so no notice is
//! lost. Delivery marks the row sent after the mailer accepted it; a crash between the two
//! delivers the same message again, with the same `Message-ID`
//! (`<KIND.WORKSPACE.SEQUENCE@workspace-billing>`), so the receiving side can recognise it.

use async_trait::async_trait;
use billing_domain::{UserName, WorkspaceId};
use billing_store::{on_backend, Db, ImportHook, StoreTx};
use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::clocks::Clocks;
use crate::error::AdapterError;
use crate::view_store::{insert_outbox, int, parse, stream_notices, OutboxRow};
use billing_domain::instant::{rfc3339, sortable};

pub use crate::notices::{
    COUNTDOWN_REMINDER, COUNTDOWN_STARTED, LOCKED, NOTICE_KINDS, OPENING_REMINDER,
    SETTLEMENT_FALLEN_BACK, UNLOCKED,
};

/// A message waiting in (or sent from) the outbox. Its serde form (what `billing --json` prints)
/// has the ids as strings and the instants in RFC 3339.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct OutboxMessage {
    /// The workspace.
    pub workspace_id: WorkspaceId,
    /// The kind (one of [`NOTICE_KINDS`]).
    pub kind: String,
    /// The sequence of the event it is about.
    pub sequence: u64,
    /// The countdown it is about (`None` for the opening reminder and a fallback).
    pub countdown: Option<u32>,
    /// The Expense Center user name it goes to.
    pub user_name: UserName,
    /// Subject line.
    pub subject: String,
    /// Text body.
    pub body: String,
    /// When it was recorded.
    pub created_at: DateTime<Utc>,
    /// When it fell due: for a countdown reminder the countdown's `remind_at`, otherwise when
    /// its event occurred.
    pub due_at: DateTime<Utc>,
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
        let what = if message.kind == OPENING_REMINDER {
            "opening reminder"
        } else {
            message.kind.as_str()
        };
        tracing::info!(
            workspace = %message.workspace_id,
            to = %message.user_name,
            message_id = %message.message_id(),
            "{what}: {}",
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
    countdown: Option<i64>,
    user_name: String,
    subject: String,
    body: String,
    created_at: String,
    due_at: String,
    sent_at: Option<String>,
    attempts: i64,
}

const OUTBOX_COLUMNS: &str = "workspace_id, kind, sequence, countdown, user_name, subject, body, \
    created_at, due_at, sent_at, attempts";

impl MessageRow {
    /// The typed message; a stored value that does not parse is [`AdapterError::Corrupt`].
    fn into_message(self) -> Result<OutboxMessage, AdapterError> {
        let ws = self.workspace_id.as_str();
        Ok(OutboxMessage {
            workspace_id: parse(ws, "email_outbox.workspace_id", ws)?,
            sequence: int(ws, "email_outbox.sequence", self.sequence)?,
            countdown: self
                .countdown
                .map(|n| int(ws, "email_outbox.countdown", n))
                .transpose()?,
            user_name: parse(ws, "email_outbox.user_name", &self.user_name)?,
            created_at: parse(ws, "email_outbox.created_at", &self.created_at)?,
            due_at: parse(ws, "email_outbox.due_at", &self.due_at)?,
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

/// Every outbox message of every kind, ordered by workspace, kind and sequence.
///
/// # Errors
/// [`AdapterError::Store`]; [`AdapterError::Corrupt`] for a stored value that does not
/// parse (naming its column and value).
pub async fn outbox(db: &Db) -> Result<Vec<OutboxMessage>, AdapterError> {
    let sql =
        format!("SELECT {OUTBOX_COLUMNS} FROM email_outbox ORDER BY workspace_id, kind, sequence");
    let rows: Vec<MessageRow> = on_backend!(db.backend(), |pool| sqlx::query_as(&sql)
        .fetch_all(pool)
        .await?);
    rows.into_iter().map(MessageRow::into_message).collect()
}

/// The outbox's notices (every kind, the opening reminder included) of `workspace`, or of every
/// workspace, ordered by workspace then sequence: what `billing notices` lists.
///
/// # Errors
/// As [`outbox`].
pub async fn notices(
    db: &Db,
    workspace: Option<&WorkspaceId>,
) -> Result<Vec<OutboxMessage>, AdapterError> {
    let rows: Vec<MessageRow> = match workspace {
        Some(w) => {
            let sql = format!(
                "SELECT {OUTBOX_COLUMNS} FROM email_outbox WHERE workspace_id = $1 \
                 ORDER BY workspace_id, sequence, kind"
            );
            on_backend!(db.backend(), |pool| sqlx::query_as(&sql)
                .bind(w.as_str())
                .fetch_all(pool)
                .await?)
        }
        None => {
            let sql = format!(
                "SELECT {OUTBOX_COLUMNS} FROM email_outbox ORDER BY workspace_id, sequence, kind"
            );
            on_backend!(db.backend(), |pool| sqlx::query_as(&sql)
                .fetch_all(pool)
                .await?)
        }
    };
    rows.into_iter().map(MessageRow::into_message).collect()
}

/// How long a delivery run holds a message it is handing to the mailer before another run may
/// take it over (the first died, or its mailer hangs).
pub const CLAIM: chrono::Duration = chrono::Duration::minutes(5);

/// What a delivery run did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct DeliveryReport {
    /// Messages delivered and marked sent.
    pub sent: u64,
    /// Messages whose delivery failed (left for the next run).
    pub failed: u64,
}

/// Delivers every unsent message of every kind through `mailer`, in workspace and sequence
/// order, and marks each sent at the billing clock's instant once delivered.
///
/// Each message is claimed before the mailer gets it, so runs at the same time (concurrent
/// `billing tick`s, two host processes) never deliver one message both; a run that dies
/// holding a claim delays that message by up to [`CLAIM`], and one that dies after the mailer
/// took a message but before marking it sent delivers it again later, with the same
/// `Message-ID`. Claims run by the process clock: they are about processes, not about the
/// instant billing happens at (a check after a crash test gives a later process clock, by which
/// every claim of a killed run has run out).
///
/// # Errors
/// [`AdapterError::Store`] reading or marking the outbox; [`AdapterError::Corrupt`] for a
/// pending message whose stored values do not parse (nothing after it is delivered then); a
/// failed delivery is counted in the report and recorded on the row, not returned.
pub async fn deliver_pending(
    db: &Db,
    mailer: &dyn Mailer,
    clocks: &Clocks,
) -> Result<DeliveryReport, AdapterError> {
    let (now, wall) = (clocks.billing.now(), clocks.process.now());
    let sql = format!(
        "SELECT {OUTBOX_COLUMNS} FROM email_outbox WHERE sent_at IS NULL \
         ORDER BY workspace_id, sequence, kind"
    );
    let pending: Vec<MessageRow> = on_backend!(db.backend(), |pool| sqlx::query_as(&sql)
        .fetch_all(pool)
        .await?);
    let mut report = DeliveryReport::default();
    for row in pending {
        let message = row.into_message()?;
        // Claim it first: another run (a concurrent `billing tick`, a second host process)
        // that claimed it, or marked it sent since the select, keeps it. A claim runs out after
        // CLAIM (a run that died while holding it), by the process clock.
        let claimed = on_backend!(db.backend(), |pool| sqlx::query(
            "UPDATE email_outbox SET claimed_until = $1 \
             WHERE workspace_id = $2 AND sequence = $3 AND kind = $4 AND sent_at IS NULL \
             AND (claimed_until IS NULL OR claimed_until < $5)"
        )
        .bind(sortable(wall + CLAIM))
        .bind(message.workspace_id.as_str())
        .bind(crate::view_store::db_int(message.sequence))
        .bind(&message.kind)
        .bind(sortable(wall))
        .execute(pool)
        .await?
        .rows_affected());
        if claimed == 0 {
            continue;
        }
        let outcome = mailer.deliver(&message).await;
        // On success $1 is the sending time, on failure the error: one statement shape each.
        let (sql, value) = match &outcome {
            Ok(()) => (
                "UPDATE email_outbox SET sent_at = $1, attempts = attempts + 1, last_error = NULL, \
                 claimed_until = NULL \
                 WHERE workspace_id = $2 AND sequence = $3 AND kind = $4 AND sent_at IS NULL",
                rfc3339(now),
            ),
            Err(e) => (
                "UPDATE email_outbox SET attempts = attempts + 1, last_error = $1, \
                 claimed_until = NULL \
                 WHERE workspace_id = $2 AND sequence = $3 AND kind = $4 AND sent_at IS NULL",
                e.to_string(),
            ),
        };
        on_backend!(db.backend(), |pool| sqlx::query(sql)
            .bind(&value)
            .bind(message.workspace_id.as_str())
            .bind(crate::view_store::db_int(message.sequence))
            .bind(&message.kind)
            .execute(pool)
            .await?
            .rows_affected());
        match outcome {
            Ok(()) => report.sent += 1,
            Err(e) => {
                tracing::warn!(
                    workspace = %message.workspace_id,
                    kind = %message.kind,
                    "notice not delivered: {e}"
                );
                report.failed += 1;
            }
        }
    }
    Ok(report)
}

/// The condition on `events e` of the events that call for a notice (one text for both
/// backends: SQLite reads JSON with the same `->` and `->>` operators as PostgreSQL).
const NOTICE_EVENTS: &str = "(e.event_type IN ('PlanUpgraded', 'CountdownStarted', \
    'CountdownReminded', 'WorkspaceLocked', 'WorkspaceUnlocked') \
    OR (e.event_type = 'SettlementChanged' \
        AND e.payload->'SettlementChanged'->>'reason' = 'cloud-subscription-ended' \
        AND e.metadata->>'actor_role' = 'system'))";

/// Workspaces per page of [`ensure_outbox`].
const ENSURE_PAGE: i64 = 500;

/// Records every notice the log calls for that the outbox lacks (a catch-up after a crash between
/// commit and projection, or after a rebuild), as recorded at `now`: the opening reminder of
/// every upgrade and the standing's notices. Each workspace with a missing notice has its stream
/// loaded (verified) and its notices composed as the projector composes them. Returns how many
/// it added.
///
/// # Errors
/// [`AdapterError::Store`] (the database, or a stream that does not verify);
/// [`AdapterError::Corrupt`] for a stored workspace id that does not parse.
pub async fn ensure_outbox(db: &Db, now: DateTime<Utc>) -> Result<u64, AdapterError> {
    let select = format!(
        "SELECT DISTINCT e.aggregate_id FROM events e \
         LEFT JOIN email_outbox o ON o.workspace_id = e.aggregate_id AND o.sequence = e.sequence \
         WHERE e.aggregate_type = 'workspace' AND {NOTICE_EVENTS} AND o.workspace_id IS NULL \
           AND e.aggregate_id > $1 \
         ORDER BY e.aggregate_id LIMIT $2"
    );
    let mut added = 0;
    let mut after = String::new();
    loop {
        let page: Vec<(String,)> = on_backend!(db.backend(), |pool| sqlx::query_as(&select)
            .bind(after.as_str())
            .bind(ENSURE_PAGE)
            .fetch_all(pool)
            .await?);
        let Some((last,)) = page.last() else {
            return Ok(added);
        };
        after.clone_from(last);
        for (id,) in &page {
            let workspace: WorkspaceId = parse(id, "events.aggregate_id", id)?;
            let (state, events) = billing_store::load_workspace(db, &workspace).await?;
            let rows: Vec<OutboxRow> = stream_notices(&workspace, &state, &events, now);
            for o in rows {
                // Another process may have recorded it since the select: count only what this
                // inserts.
                added += on_backend!(db.backend(), |pool| insert_outbox(&o)
                    .execute(pool)
                    .await?
                    .rows_affected());
            }
        }
    }
}

/// An imported log's notices were sent by the store the log came from: an import records every
/// notice the log calls for as sent, in its own transaction, so the outbox never sends them a
/// second time. The recipient is the stream's bound user name (its `AccountBound`), `due_at` the
/// countdown's `remind_at` for a reminder and the event's instant otherwise.
static IMPORTED_NOTICES: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "INSERT INTO email_outbox \
    (workspace_id, kind, sequence, countdown, user_name, subject, body, created_at, due_at, \
     sent_at, attempts) \
    SELECT e.aggregate_id, \
           CASE e.event_type WHEN 'PlanUpgraded' THEN '{OPENING_REMINDER}' \
                WHEN 'CountdownStarted' THEN '{COUNTDOWN_STARTED}' \
                WHEN 'CountdownReminded' THEN '{COUNTDOWN_REMINDER}' \
                WHEN 'WorkspaceLocked' THEN '{LOCKED}' \
                WHEN 'WorkspaceUnlocked' THEN '{UNLOCKED}' \
                ELSE '{SETTLEMENT_FALLEN_BACK}' END, \
           e.sequence, \
           CAST(e.payload->e.event_type->>'countdown' AS BIGINT), \
           coalesce((SELECT a.payload->'AccountBound'->>'user_name' FROM events a \
                     WHERE a.aggregate_type = e.aggregate_type AND a.aggregate_id = e.aggregate_id \
                       AND a.event_type = 'AccountBound' ORDER BY a.sequence LIMIT 1), ''), \
           'notice (sent before this store was imported)', '', \
           e.metadata->>'recorded_at', \
           CASE WHEN e.event_type = 'CountdownReminded' THEN coalesce( \
               (SELECT s.payload->'CountdownStarted'->>'remind_at' FROM events s \
                WHERE s.aggregate_type = e.aggregate_type AND s.aggregate_id = e.aggregate_id \
                  AND s.event_type = 'CountdownStarted' \
                  AND CAST(s.payload->'CountdownStarted'->>'countdown' AS BIGINT) \
                    = CAST(e.payload->'CountdownReminded'->>'countdown' AS BIGINT) \
                ORDER BY s.sequence LIMIT 1), \
               e.metadata->>'occurred_at') \
                ELSE e.metadata->>'occurred_at' END, \
           e.metadata->>'recorded_at', 0 \
    FROM events e WHERE e.aggregate_type = 'workspace' AND {NOTICE_EVENTS} \
    ON CONFLICT DO NOTHING"
    )
});

/// The outbox's part of an import: every imported notice (the opening reminders and the
/// standing's notices), recorded as already sent.
#[derive(Clone, Copy, Debug, Default)]
pub struct ImportedReminders;

#[async_trait]
impl ImportHook for ImportedReminders {
    async fn imported(&self, mut tx: StoreTx<'_>) -> Result<(), sqlx::Error> {
        on_backend!(&mut tx, |c| {
            sqlx::query(IMPORTED_NOTICES.as_str())
                .execute(&mut **c)
                .await?;
        });
        // Planned with statistics, the outbox catch-up's anti-join over a large import is a
        // merge join, not minutes of nested loops.
        tx.analyze("email_outbox").await
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
