//! The delivery queue, `webhook_deliveries`: filled by the `webhooks` subscription in its
//! batches' transactions, read head-first per endpoint and workspace, and updated with each
//! attempt's outcome.

use async_trait::async_trait;
use billing_store::{write_positioned_line, Db, PositionedRow, StoreTx, SubscriptionHandler};
use chrono::{DateTime, Utc};

use crate::error::AdapterError;
use crate::view_store::{db_int, on_pool};

/// Queues each event of a batch for every endpoint whose types include it.
pub(super) struct Enqueue {
    /// When the events are due (the batch's time).
    pub(super) now_ms: i64,
}

const ENDPOINTS: &str = "SELECT id, event_types FROM webhook_endpoints";

const INSERT: &str = "INSERT INTO webhook_deliveries \
         (endpoint_id, workspace_id, sequence, transaction_id, position, event_type, body, \
          status, next_attempt_ms) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, 'pending', $8) \
     ON CONFLICT (endpoint_id, workspace_id, sequence) DO NOTHING";

macro_rules! on_tx {
    ($tx:expr, |$conn:ident| $body:expr) => {
        match $tx {
            StoreTx::Postgres($conn) => $body,
            StoreTx::Sqlite($conn) => $body,
        }
    };
}

#[async_trait]
impl SubscriptionHandler for Enqueue {
    async fn handle(
        &self,
        events: &[PositionedRow],
        tx: StoreTx<'_>,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        let mut body = Vec::new();
        on_tx!(tx, |conn| {
            let endpoints: Vec<(String, String)> =
                sqlx::query_as(ENDPOINTS).fetch_all(&mut *conn).await?;
            let mut wanted = Vec::with_capacity(endpoints.len());
            for (id, types) in endpoints {
                let types: Vec<String> = serde_json::from_str(&types).map_err(|e| {
                    format!("webhook_endpoints: endpoint {id}: event_types {types:?}: {e}")
                })?;
                wanted.push((id, types));
            }
            if wanted.is_empty() {
                return Ok(());
            }
            for event in events {
                let row = &event.row;
                let mut line: Option<String> = None;
                for (id, types) in &wanted {
                    if !types.is_empty() && !types.contains(&row.event_type) {
                        continue;
                    }
                    if line.is_none() {
                        body.clear();
                        write_positioned_line(event, &mut body)?;
                        body.pop(); // the newline
                        line = Some(String::from_utf8(std::mem::take(&mut body))?);
                    }
                    let text = line.as_deref().unwrap_or_default();
                    sqlx::query(INSERT)
                        .bind(id)
                        .bind(&row.aggregate_id)
                        .bind(db_int(row.sequence))
                        .bind(db_int(event.position.transaction))
                        .bind(db_int(event.position.position))
                        .bind(&row.event_type)
                        .bind(text)
                        .bind(self.now_ms)
                        .execute(&mut *conn)
                        .await?;
                }
            }
        });
        Ok(())
    }
}

/// An attempt to make: the head of one endpoint's queue for one workspace.
#[derive(sqlx::FromRow)]
pub(super) struct Due {
    pub(super) endpoint_id: String,
    pub(super) workspace_id: String,
    pub(super) sequence: i64,
    pub(super) body: String,
    pub(super) attempts: i64,
    pub(super) first_failed_ms: Option<i64>,
    pub(super) url: String,
    pub(super) secret: String,
}

/// Heads due at `$1`: pending, the lowest pending sequence of their endpoint and workspace (so a
/// workspace's next event waits for the one before), of an enabled endpoint.
const DUE: &str = "SELECT d.endpoint_id, d.workspace_id, d.sequence, d.body, d.attempts, \
         d.first_failed_ms, e.url, e.secret \
     FROM webhook_deliveries d JOIN webhook_endpoints e ON e.id = d.endpoint_id \
     WHERE d.status = 'pending' AND d.next_attempt_ms <= $1 AND e.disabled_at IS NULL \
     AND d.sequence = (SELECT min(h.sequence) FROM webhook_deliveries h \
         WHERE h.endpoint_id = d.endpoint_id AND h.workspace_id = d.workspace_id \
         AND h.status = 'pending') \
     ORDER BY d.next_attempt_ms, d.position LIMIT $2";

/// The earliest attempt still to come: of the heads (as in `DUE`) of enabled endpoints.
const NEXT: &str = "SELECT min(d.next_attempt_ms) FROM webhook_deliveries d \
     JOIN webhook_endpoints e ON e.id = d.endpoint_id \
     WHERE d.status = 'pending' AND e.disabled_at IS NULL \
     AND d.sequence = (SELECT min(h.sequence) FROM webhook_deliveries h \
         WHERE h.endpoint_id = d.endpoint_id AND h.workspace_id = d.workspace_id \
         AND h.status = 'pending')";

pub(super) async fn due(db: &Db, now_ms: i64, limit: usize) -> Result<Vec<Due>, AdapterError> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    Ok(on_pool!(db, |pool| sqlx::query_as(DUE)
        .bind(now_ms)
        .bind(limit)
        .fetch_all(pool)
        .await?))
}

pub(super) async fn next_attempt(db: &Db) -> Result<Option<DateTime<Utc>>, AdapterError> {
    let ms: Option<i64> = on_pool!(db, |pool| sqlx::query_scalar(NEXT).fetch_one(pool).await?);
    Ok(ms.and_then(DateTime::from_timestamp_millis))
}

fn key<'q, DB: sqlx::Database>(
    q: sqlx::query::Query<'q, DB, <DB as sqlx::Database>::Arguments<'q>>,
    due: &'q Due,
) -> sqlx::query::Query<'q, DB, <DB as sqlx::Database>::Arguments<'q>>
where
    &'q str: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    i64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    q.bind(due.endpoint_id.as_str())
        .bind(due.workspace_id.as_str())
        .bind(due.sequence)
}

pub(super) async fn delivered(db: &Db, due: &Due, now: DateTime<Utc>) -> Result<(), AdapterError> {
    let at = super::now_text(now);
    on_pool!(db, |pool| {
        let mut tx = pool.begin().await?;
        let gone = key(
            sqlx::query(
                "DELETE FROM webhook_deliveries \
                 WHERE endpoint_id = $1 AND workspace_id = $2 AND sequence = $3",
            ),
            due,
        )
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if gone > 0 {
            sqlx::query(
                "UPDATE webhook_endpoints SET delivered = delivered + 1, last_delivered_at = $2 \
                 WHERE id = $1",
            )
            .bind(due.endpoint_id.as_str())
            .bind(&at)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
    });
    Ok(())
}

/// Records a failed attempt: retried at `next_ms`, or a dead letter when that is `None`.
pub(super) async fn failed(
    db: &Db,
    due: &Due,
    error: &str,
    now: DateTime<Utc>,
    next_ms: Option<i64>,
) -> Result<(), AdapterError> {
    let now_ms = now.timestamp_millis();
    let dead_at = next_ms.is_none().then(|| super::now_text(now));
    on_pool!(db, |pool| key(
        sqlx::query(
            "UPDATE webhook_deliveries SET attempts = attempts + 1, last_error = $4, \
                 first_failed_ms = coalesce(first_failed_ms, $5), \
                 next_attempt_ms = coalesce($6, next_attempt_ms), \
                 status = CASE WHEN $7 IS NULL THEN status ELSE 'dead' END, dead_at = $7 \
             WHERE endpoint_id = $1 AND workspace_id = $2 AND sequence = $3",
        ),
        due,
    )
    .bind(error)
    .bind(now_ms)
    .bind(next_ms)
    .bind(dead_at.as_deref())
    .execute(pool)
    .await
    .map(|_| ())?);
    Ok(())
}

/// Records a 410 Gone: the attempt counts, and the endpoint is disabled.
pub(super) async fn gone(
    db: &Db,
    due: &Due,
    error: &str,
    now: DateTime<Utc>,
) -> Result<(), AdapterError> {
    failed(db, due, error, now, Some(now.timestamp_millis())).await?;
    on_pool!(db, |pool| sqlx::query(
        "UPDATE webhook_endpoints SET disabled_at = $2, disabled_reason = $3 \
         WHERE id = $1 AND disabled_at IS NULL"
    )
    .bind(due.endpoint_id.as_str())
    .bind(super::now_text(now))
    .bind(error)
    .execute(pool)
    .await
    .map(|_| ())?);
    Ok(())
}
