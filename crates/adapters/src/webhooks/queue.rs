//! The delivery queue, `webhook_deliveries`: filled by the `webhooks` subscription in its
//! batches' transactions, read head-first per endpoint and workspace, and updated with each
//! attempt's outcome.

use async_trait::async_trait;
use billing_store::{
    on_backend, write_positioned_line, Db, PositionedRow, StoreTx, SubscriptionHandler,
};
use chrono::{DateTime, Utc};

use crate::error::AdapterError;
use crate::view_store::db_int;

/// Queues each event of a batch for every endpoint whose types include it.
pub(super) struct Enqueue {
    /// When the events are due (the batch's time).
    pub(super) now_ms: i64,
}

const ENDPOINTS: &str = "SELECT id, event_types FROM webhook_endpoints";

/// The queue rows' columns, as each row binds them.
const INSERT: &str = "INSERT INTO webhook_deliveries \
     (endpoint_id, workspace_id, sequence, transaction_id, position, event_type, body, status, \
      next_attempt_ms) ";

/// Queue rows per statement (9 parameters each).
const ROWS_PER_INSERT: usize = 200;

#[async_trait]
impl SubscriptionHandler for Enqueue {
    async fn handle(
        &self,
        events: &[PositionedRow],
        tx: StoreTx<'_>,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        let mut body = Vec::new();
        on_backend!(tx, |conn| {
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
            // Each event wanted by some endpoint, as its body (written once), then one row per
            // endpoint that takes it, inserted a few hundred rows per statement.
            let mut rows: Vec<(&str, &PositionedRow, usize)> = Vec::new();
            let mut bodies: Vec<String> = Vec::new();
            for event in events {
                let takers = wanted
                    .iter()
                    .filter(|(_, types)| types.is_empty() || types.contains(&event.row.event_type));
                let mut first = true;
                for (id, _) in takers {
                    if first {
                        body.clear();
                        write_positioned_line(event, &mut body)?;
                        body.pop(); // the newline
                        bodies.push(String::from_utf8(std::mem::take(&mut body))?);
                        first = false;
                    }
                    rows.push((id.as_str(), event, bodies.len() - 1));
                }
            }
            for chunk in rows.chunks(ROWS_PER_INSERT) {
                let mut insert = sqlx::QueryBuilder::new(INSERT);
                insert.push_values(chunk, |mut b, (id, event, body)| {
                    b.push_bind(*id)
                        .push_bind(event.row.aggregate_id.as_str())
                        .push_bind(db_int(event.row.sequence))
                        .push_bind(db_int(event.position.transaction))
                        .push_bind(db_int(event.position.position))
                        .push_bind(event.row.event_type.as_str())
                        .push_bind(bodies[*body].as_str())
                        .push_bind("pending")
                        .push_bind(self.now_ms);
                });
                insert.push(" ON CONFLICT (endpoint_id, workspace_id, sequence) DO NOTHING");
                insert.build().execute(&mut *conn).await?;
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
    Ok(on_backend!(db.backend(), |pool| sqlx::query_as(DUE)
        .bind(now_ms)
        .bind(limit)
        .fetch_all(pool)
        .await?))
}

pub(super) async fn next_attempt(db: &Db) -> Result<Option<DateTime<Utc>>, AdapterError> {
    let ms: Option<i64> = on_backend!(db.backend(), |pool| sqlx::query_scalar(NEXT)
        .fetch_one(pool)
        .await?);
    Ok(ms.and_then(DateTime::from_timestamp_millis))
}

/// What one attempt's outcome records.
pub(super) enum Record {
    /// Answered 2xx: the row goes, and the endpoint counts it.
    Delivered,
    /// Failed: the error, and the next attempt's time (`None`: a dead letter now).
    Failed {
        /// What the attempt met.
        error: String,
        /// Unix milliseconds of the next attempt.
        next_ms: Option<i64>,
    },
    /// Answered 410 Gone: the attempt counts (due again at once when re-enabled), and the
    /// endpoint is disabled.
    Gone(String),
}

const DELETE: &str = "DELETE FROM webhook_deliveries \
     WHERE endpoint_id = $1 AND workspace_id = $2 AND sequence = $3";

const COUNT_DELIVERED: &str = "UPDATE webhook_endpoints \
     SET delivered = delivered + 1, last_delivered_at = $2 WHERE id = $1";

const FAILED: &str = "UPDATE webhook_deliveries SET attempts = attempts + 1, last_error = $4, \
         first_failed_ms = coalesce(first_failed_ms, $5), \
         next_attempt_ms = coalesce($6, next_attempt_ms), \
         status = CASE WHEN $7 IS NULL THEN status ELSE 'dead' END, dead_at = $7 \
     WHERE endpoint_id = $1 AND workspace_id = $2 AND sequence = $3";

const DISABLE: &str = "UPDATE webhook_endpoints SET disabled_at = $2, disabled_reason = $3 \
     WHERE id = $1 AND disabled_at IS NULL";

/// Records every outcome of one step at `now`, in one transaction.
pub(super) async fn record(
    db: &Db,
    records: &[(&Due, Record)],
    now: DateTime<Utc>,
) -> Result<(), AdapterError> {
    if records.is_empty() {
        return Ok(());
    }
    let (now_ms, at) = (
        now.timestamp_millis(),
        billing_domain::instant::rfc3339(now),
    );
    on_backend!(db.backend(), |pool| {
        let mut tx = pool.begin().await?;
        for (due, record) in records {
            let key = (
                due.endpoint_id.as_str(),
                due.workspace_id.as_str(),
                due.sequence,
            );
            let (error, next_ms) = match record {
                Record::Delivered => {
                    let gone = sqlx::query(DELETE)
                        .bind(key.0)
                        .bind(key.1)
                        .bind(key.2)
                        .execute(&mut *tx)
                        .await?
                        .rows_affected();
                    if gone > 0 {
                        sqlx::query(COUNT_DELIVERED)
                            .bind(key.0)
                            .bind(&at)
                            .execute(&mut *tx)
                            .await?;
                    }
                    continue;
                }
                Record::Failed { error, next_ms } => (error, *next_ms),
                Record::Gone(error) => {
                    sqlx::query(DISABLE)
                        .bind(key.0)
                        .bind(&at)
                        .bind(error)
                        .execute(&mut *tx)
                        .await?;
                    (error, Some(now_ms))
                }
            };
            let dead_at = next_ms.is_none().then_some(at.as_str());
            sqlx::query(FAILED)
                .bind(key.0)
                .bind(key.1)
                .bind(key.2)
                .bind(error)
                .bind(now_ms)
                .bind(next_ms)
                .bind(dead_at)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
    });
    Ok(())
}
