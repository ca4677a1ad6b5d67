//! Named subscriptions (SPEC §11): where each one stands in the commit order
//! ([`Db::read_committed`], ADR 0009), kept in the events' own database; how far behind the log
//! each one is; and [`Subscriber`], one running instance of a subscription — one at a time per
//! name, with takeover when its lease runs out, and each batch's effect committed with its
//! checkpoint.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::backend::{Dialect, StoreTx};
use super::reads::PositionedRow;
use super::{seq_i64, seq_u64, Db, Position};
use crate::error::StoreError;
use crate::record::MetadataText;

/// The most characters a subscription name has.
const MAX_NAME: usize = 64;

/// A subscription's name: 1 to 64 of `a`–`z`, `0`–`9`, `.`, `_` and `-`, starting with a letter
/// or a digit.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SubscriptionName(String);

/// A subscription name that breaks the rules of [`SubscriptionName`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "{0:?} is not a subscription name: 1 to 64 of a-z, 0-9, '.', '_' and '-', starting with a \
     letter or a digit"
)]
pub struct BadSubscriptionName(pub String);

impl SubscriptionName {
    /// Checks `text` against the rules.
    ///
    /// # Errors
    /// [`BadSubscriptionName`] naming the text.
    pub fn parse(text: &str) -> Result<Self, BadSubscriptionName> {
        let allowed = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
        let ok = text.len() <= MAX_NAME
            && text.bytes().next().is_some_and(allowed)
            && text
                .bytes()
                .all(|b| allowed(b) || matches!(b, b'.' | b'_' | b'-'));
        if ok {
            Ok(Self(text.to_owned()))
        } else {
            Err(BadSubscriptionName(text.to_owned()))
        }
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for SubscriptionName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Where a subscription stands: the last event it handled, and when that was saved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    /// The position of the last event handled.
    pub position: Position,
    /// When the checkpoint last moved.
    pub updated_at: DateTime<Utc>,
}

/// A subscription and how far behind the log it is ([`Db::subscriptions`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubscriptionLag {
    /// The subscription.
    pub name: SubscriptionName,
    /// Its checkpoint.
    pub checkpoint: Checkpoint,
    /// Committed events after the checkpoint, visible now.
    pub events_behind: u64,
    /// When the oldest of those was recorded; `None` when it is up to date.
    pub oldest_unhandled: Option<DateTime<Utc>>,
    /// The instance holding the subscription's lease, and until when; `None` when no
    /// [`Subscriber`] holds it.
    pub holder: Option<(String, DateTime<Utc>)>,
}

impl SubscriptionLag {
    /// Seconds from the oldest unhandled event's recording to `now`; 0 when up to date.
    pub fn seconds_behind(&self, now: DateTime<Utc>) -> i64 {
        self.oldest_unhandled
            .map_or(0, |t| (now - t).num_seconds().max(0))
    }
}

const CHECKPOINT: &str =
    "SELECT transaction_id, position, updated_at FROM subscriptions WHERE name = $1";

const ALL: &str = "SELECT name, transaction_id, position, updated_at, holder, lease_until_ms \
     FROM subscriptions ORDER BY name";

/// Moves a checkpoint forward only: a save behind the stored one changes nothing.
const SAVE: &str = "INSERT INTO subscriptions (name, transaction_id, position, updated_at) \
     VALUES ($1, $2, $3, $4) \
     ON CONFLICT (name) DO UPDATE SET transaction_id = excluded.transaction_id, \
         position = excluded.position, updated_at = excluded.updated_at \
     WHERE (subscriptions.transaction_id, subscriptions.position) \
         < (excluded.transaction_id, excluded.position)";

fn stored_time(name: &str, text: &str) -> Result<DateTime<Utc>, StoreError> {
    text.parse().map_err(|e| {
        StoreError::internal(format!(
            "subscription {name}: its stored updated_at {text:?} does not parse: {e}"
        ))
    })
}

fn checkpoint_of(
    name: &str,
    (transaction, position, updated_at): (i64, i64, String),
) -> Result<Checkpoint, StoreError> {
    Ok(Checkpoint {
        position: Position {
            transaction: seq_u64(transaction),
            position: seq_u64(position),
        },
        updated_at: stored_time(name, &updated_at)?,
    })
}

impl Db {
    /// The checkpoint of subscription `name`; `None` for a name never saved (it starts at the
    /// beginning of the log).
    ///
    /// # Errors
    /// [`StoreError::Database`], [`StoreError::Unavailable`].
    pub async fn checkpoint(
        &self,
        name: &SubscriptionName,
    ) -> Result<Option<Checkpoint>, StoreError> {
        let row: Option<(i64, i64, String)> = on_backend!(&self.backend, |pool| {
            sqlx::query_as(CHECKPOINT)
                .bind(name.as_str())
                .fetch_optional(pool)
                .await?
        });
        row.map(|r| checkpoint_of(name.as_str(), r)).transpose()
    }

    /// Saves `position` as subscription `name`'s checkpoint at `now`, creating it if it is new.
    /// A checkpoint never moves back: returns `false`, and changes nothing, when the stored one
    /// is at or after `position`.
    ///
    /// # Errors
    /// [`StoreError::Database`], [`StoreError::Unavailable`].
    pub async fn save_checkpoint(
        &self,
        name: &SubscriptionName,
        position: Position,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        self.write_checkpoint(SAVE, name, position, now).await
    }

    /// Every subscription, by name, with how far behind the log it is now.
    ///
    /// # Errors
    /// [`StoreError::Database`], [`StoreError::Unavailable`]; [`StoreError::Internal`] for a
    /// stored time that does not parse.
    pub async fn subscriptions(&self) -> Result<Vec<SubscriptionLag>, StoreError> {
        #[allow(clippy::type_complexity)] // the columns of `ALL`
        let rows: Vec<(String, i64, i64, String, Option<String>, Option<i64>)> =
            on_backend!(&self.backend, |pool| sqlx::query_as(ALL)
                .fetch_all(pool)
                .await?);
        let mut lags = Vec::with_capacity(rows.len());
        for (name, transaction, position, updated_at, holder, lease_until) in rows {
            let checkpoint = checkpoint_of(&name, (transaction, position, updated_at))?;
            let name = SubscriptionName::parse(&name).map_err(|e| {
                StoreError::internal(format!("a stored subscription has a bad name: {e}"))
            })?;
            let after = checkpoint.position;
            let behind: i64 =
                on_backend!(&self.backend, |pool| Dialect::events_behind(pool, after)
                    .await?);
            let next = self.read_committed(after, 1).await?;
            let oldest_unhandled = next.first().map(recorded_at).transpose()?;
            let holder = holder.zip(lease_until.and_then(DateTime::from_timestamp_millis));
            lags.push(SubscriptionLag {
                name,
                checkpoint,
                events_behind: seq_u64(behind),
                oldest_unhandled,
                holder,
            });
        }
        Ok(lags)
    }
}

/// Moves a checkpoint back to `($2, $3)` when it is past it.
const REWIND: &str =
    "UPDATE subscriptions SET transaction_id = $2, position = $3, updated_at = $4 \
     WHERE name = $1 AND (transaction_id, position) > ($2, $3)";

impl Db {
    /// The position of the last event [`Db::read_committed`] can read now ([`Position::START`]
    /// for an empty log). Every event at or before it was committed before this call returned.
    ///
    /// # Errors
    /// [`StoreError::Database`], [`StoreError::Unavailable`].
    pub async fn last_readable(&self) -> Result<Position, StoreError> {
        let row = on_backend!(&self.backend, |pool| Dialect::last_readable(pool).await?);
        Ok(
            row.map_or(Position::START, |(transaction, position)| Position {
                transaction: seq_u64(transaction),
                position: seq_u64(position),
            }),
        )
    }

    /// Moves subscription `name`'s checkpoint back to `to` when it is past it (so the events
    /// after `to` are handled again: for a handler whose effect was replaced, as a view rebuild
    /// replaces the views). Returns whether it moved. An instance running the subscription then
    /// finds its next batch refused ([`StoreError::LostLease`]) and starts again from `to`.
    ///
    /// # Errors
    /// [`StoreError::Database`], [`StoreError::Unavailable`].
    pub async fn rewind_checkpoint(
        &self,
        name: &SubscriptionName,
        to: Position,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        self.write_checkpoint(REWIND, name, to, now).await
    }

    /// Runs `sql` (`SAVE` or `REWIND`: `$1` name, `$2`/`$3` the position, `$4` the time);
    /// whether it changed the checkpoint.
    async fn write_checkpoint(
        &self,
        sql: &'static str,
        name: &SubscriptionName,
        position: Position,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let updated_at = now.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true);
        let moved = on_backend!(&self.backend, |pool| {
            sqlx::query(sql)
                .bind(name.as_str())
                .bind(seq_i64(position.transaction))
                .bind(seq_i64(position.position))
                .bind(&updated_at)
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(moved > 0)
    }
}

/// Takes (or renews) a subscription's lease for `$3` until `$4`, creating the subscription at the
/// beginning of the log if it is new — unless another holder's lease still runs at `$5`.
const ACQUIRE: &str = "INSERT INTO subscriptions \
         (name, transaction_id, position, updated_at, holder, lease_until_ms) \
     VALUES ($1, 0, 0, $2, $3, $4) \
     ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, \
         lease_until_ms = excluded.lease_until_ms \
     WHERE subscriptions.holder IS NULL OR subscriptions.holder = excluded.holder \
         OR subscriptions.lease_until_ms < $5";

const RELEASE: &str = "UPDATE subscriptions SET holder = NULL, lease_until_ms = NULL \
     WHERE name = $1 AND holder = $2";

/// Moves the checkpoint of a subscription this holder still holds, from where this holder last
/// saw it (`$6`, `$7`): anything else means another instance handled events meanwhile. First in
/// a batch's transaction: on PostgreSQL it locks the row, so a takeover waits for the batch.
const ADVANCE: &str =
    "UPDATE subscriptions SET transaction_id = $3, position = $4, updated_at = $5 \
     WHERE name = $1 AND holder = $2 AND transaction_id = $6 AND position = $7";

const HOLDER: &str = "SELECT holder FROM subscriptions WHERE name = $1";

/// What one call of a [`SubscriptionHandler`] is given and may write.
#[async_trait]
pub trait SubscriptionHandler: Send + Sync {
    /// Handles `events`, the next ones in commit order, inside the transaction that then saves
    /// the checkpoint after the last of them: what it writes through `tx` commits with the
    /// checkpoint, or not at all (exactly-once effect). Work outside the database happens at
    /// least once: a batch that fails, or whose instance dies, is handed over again.
    ///
    /// # Errors
    /// Any error of the handler's own; the batch then writes nothing and the checkpoint stays.
    async fn handle(
        &self,
        events: &[PositionedRow],
        tx: StoreTx<'_>,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>>;
}

/// What [`Subscriber::handle_next`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Handled {
    /// Events handed to the handler (0: nothing new was visible).
    pub events: usize,
    /// The checkpoint after the batch.
    pub checkpoint: Position,
}

/// One running instance of a named subscription. It holds the subscription's lease — at most
/// one instance does — and must renew it within the lease's length; once that has run out
/// another instance may take over, and this one's next batch is refused
/// ([`StoreError::LostLease`]) without writing anything.
#[derive(Debug)]
pub struct Subscriber {
    db: Db,
    name: SubscriptionName,
    holder: String,
    lease: Duration,
    checkpoint: Position,
}

fn millis(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

impl Db {
    /// Starts an instance of subscription `name` as `holder` (any id unique to this instance),
    /// holding its lease until `now + lease`; `None` when another instance holds an unexpired
    /// lease. A new name starts at the beginning of the log.
    ///
    /// # Errors
    /// [`StoreError::Database`], [`StoreError::Unavailable`].
    pub async fn subscriber(
        &self,
        name: &SubscriptionName,
        holder: &str,
        now: DateTime<Utc>,
        lease: Duration,
    ) -> Result<Option<Subscriber>, StoreError> {
        let subscriber = Subscriber {
            db: self.clone(),
            name: name.clone(),
            holder: holder.to_owned(),
            lease,
            checkpoint: Position::START,
        };
        if !subscriber.renew(now).await? {
            return Ok(None);
        }
        let checkpoint = self
            .checkpoint(name)
            .await?
            .map_or(Position::START, |c| c.position);
        Ok(Some(Subscriber {
            checkpoint,
            ..subscriber
        }))
    }
}

impl Subscriber {
    /// The subscription.
    pub fn name(&self) -> &SubscriptionName {
        &self.name
    }

    /// The last event this instance handled (or the checkpoint it started from).
    pub fn checkpoint(&self) -> Position {
        self.checkpoint
    }

    /// Extends the lease to `now` plus its length; `false` when another instance holds it now.
    ///
    /// # Errors
    /// [`StoreError::Database`], [`StoreError::Unavailable`].
    pub async fn renew(&self, now: DateTime<Utc>) -> Result<bool, StoreError> {
        let until = now + chrono::Duration::from_std(self.lease).unwrap_or(chrono::Duration::MAX);
        let updated_at = now.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true);
        let n = on_backend!(self.db.backend(), |pool| sqlx::query(ACQUIRE)
            .bind(self.name.as_str())
            .bind(&updated_at)
            .bind(&self.holder)
            .bind(millis(until))
            .bind(millis(now))
            .execute(pool)
            .await?
            .rows_affected());
        Ok(n > 0)
    }

    /// Gives the lease up, so another instance can start at once.
    ///
    /// # Errors
    /// [`StoreError::Database`], [`StoreError::Unavailable`].
    pub async fn release(self) -> Result<(), StoreError> {
        on_backend!(self.db.backend(), |pool| sqlx::query(RELEASE)
            .bind(self.name.as_str())
            .bind(&self.holder)
            .execute(pool)
            .await
            .map(|_| ()))?;
        Ok(())
    }

    /// Hands the next (at most `limit`) events after the checkpoint to `handler`, then saves
    /// the checkpoint after the last of them — the handler's writes and the checkpoint in one
    /// transaction. Nothing new visible: returns 0 events and writes nothing.
    ///
    /// # Errors
    /// [`StoreError::LostLease`]: another instance took over, or handled events since this one
    /// last did; nothing was written — stop this instance. [`StoreError::Handler`]: the handler
    /// failed; nothing was written and the batch comes again. [`StoreError::Database`],
    /// [`StoreError::Unavailable`].
    pub async fn handle_next(
        &mut self,
        limit: u32,
        now: DateTime<Utc>,
        handler: &dyn SubscriptionHandler,
    ) -> Result<Handled, StoreError> {
        let events = self.db.read_committed(self.checkpoint, limit).await?;
        let Some(last) = events.last().map(|e| e.position) else {
            return Ok(Handled {
                events: 0,
                checkpoint: self.checkpoint,
            });
        };
        let updated_at = now.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true);
        // On PostgreSQL the batch does not wait for its commit to reach the disk
        // (`Dialect::begin_batch`, ADR 0010).
        on_backend!(self.db.backend(), |pool, Same| {
            let mut tx = Dialect::begin_batch(pool).await?;
            let moved = sqlx::query(ADVANCE)
                .bind(self.name.as_str())
                .bind(&self.holder)
                .bind(seq_i64(last.transaction))
                .bind(seq_i64(last.position))
                .bind(&updated_at)
                .bind(seq_i64(self.checkpoint.transaction))
                .bind(seq_i64(self.checkpoint.position))
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if moved == 0 {
                drop(tx);
                return Err(self.lost().await);
            }
            handler
                .handle(&events, Same(&mut *tx))
                .await
                .map_err(|e| StoreError::Handler {
                    subscription: self.name.to_string(),
                    detail: e.to_string(),
                })?;
            tx.commit().await?;
        });
        self.checkpoint = last;
        Ok(Handled {
            events: events.len(),
            checkpoint: last,
        })
    }

    /// The error for a batch refused because another instance holds the subscription.
    async fn lost(&self) -> StoreError {
        // Only for the message: a holder that cannot be read is reported as unknown.
        let holder: Option<Option<String>> = on_backend!(self.db.backend(), |pool| {
            sqlx::query_scalar(HOLDER)
                .bind(self.name.as_str())
                .fetch_optional(pool)
                .await
                .ok()
                .flatten()
        });
        StoreError::LostLease {
            subscription: self.name.to_string(),
            holder: holder
                .flatten()
                .unwrap_or_else(|| "none or unknown".to_owned()),
        }
    }
}

/// When the store recorded `row`'s event (its metadata's `recorded_at`).
fn recorded_at(row: &PositionedRow) -> Result<DateTime<Utc>, StoreError> {
    let integrity = |detail: String| StoreError::Integrity {
        workspace: row.row.aggregate_id.clone(),
        detail: format!("sequence {}: {detail}", row.row.sequence),
    };
    let meta: MetadataText<'_> =
        serde_json::from_str(&row.row.metadata).map_err(|e| integrity(e.to_string()))?;
    meta.recorded_at
        .parse()
        .map_err(|e| integrity(format!("recorded_at {:?}: {e}", meta.recorded_at)))
}

#[cfg(test)]
mod tests {
    use super::SubscriptionName;

    #[test]
    fn names_follow_the_rules() {
        for good in ["billing-view", "a", "webhooks.v1", "0_x", &"a".repeat(64)] {
            assert_eq!(SubscriptionName::parse(good).unwrap().as_str(), good);
        }
        for bad in ["", "-a", ".a", "A", "a b", "a/b", "ä", &"a".repeat(65)] {
            let err = SubscriptionName::parse(bad).unwrap_err();
            assert!(err.to_string().contains(&format!("{bad:?}")), "{err}");
        }
    }
}
