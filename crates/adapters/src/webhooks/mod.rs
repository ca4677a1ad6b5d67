//! Webhooks (SPEC §11, ADR 0011): committed events POSTed to the host's HTTP endpoints, signed
//! the Standard Webhooks way, in order per workspace, retried with exponential backoff and
//! jitter for up to 72 hours, then kept as dead letters until [`retry`].
//!
//! - [`add_endpoint`], [`endpoints`], [`remove_endpoint`]: the endpoints, kept in the store's
//!   database. Adding one prints nothing secret twice: the signing secret is returned once.
//! - [`Deliverer`]: one running delivery (the `webhooks` subscription's lease holder). Each
//!   [`Deliverer::step`] queues the next committed events for every endpoint — in the same
//!   transaction as the subscription's checkpoint, so no event is queued twice or skipped — and
//!   makes every attempt that is due.
//! - [`failures`] and [`retry`]: the dead letters, and re-driving them.
//!
//! What a receiver gets: `POST` of the event's export line plus `"position"` (what
//! `billing events` prints), `content-type: application/json`, and the headers `webhook-id`
//! (the event's identity `WORKSPACE:SEQUENCE`, the same on every attempt and the same as
//! `billing publish`'s `Nats-Msg-Id`), `webhook-timestamp` (Unix seconds of the attempt) and
//! `webhook-signature` (`v1,` and the base64 HMAC-SHA256 of `id.timestamp.body` under the
//! endpoint's secret). Delivery is at least once: a crash after the receiver's 2xx and before it
//! is recorded sends the event again, with the same `webhook-id`.
//!
//! ```no_run
//! # async fn host(db: billing_store::Db) -> Result<(), billing_adapters::AdapterError> {
//! use billing_adapters::webhooks::{self, Deliverer, DeliveryPolicy};
//! use chrono::Utc;
//!
//! let added = webhooks::add_endpoint(&db, "https://example.com/hooks", &[], Utc::now()).await?;
//! println!("endpoint {} signs with {}", added.endpoint.id, added.secret);
//! if let Some(mut deliverer) =
//!     Deliverer::start(&db, "host-1", DeliveryPolicy::default(), Utc::now()).await?
//! {
//!     while !deliverer.step(Utc::now()).await?.is_idle() {}
//!     deliverer.release().await?;
//! }
//! # Ok(())
//! # }
//! ```

mod deliver;
mod queue;

use billing_domain::instant::rfc3339;
use std::fmt;
use std::time::Duration;

use base64::Engine;
use billing_domain::WorkspaceEvent;
use billing_store::{on_backend, Db, SubscriptionName};
use chrono::{DateTime, Utc};
use serde::Serialize;

pub use self::deliver::{Deliverer, Step};
use crate::error::AdapterError;
use crate::view_store::{int, parse};

/// The subscription that queues events for the endpoints.
pub const SUBSCRIPTION: &str = "webhooks";

pub(crate) fn subscription() -> SubscriptionName {
    // A valid name, checked by the tests.
    SubscriptionName::parse(SUBSCRIPTION).unwrap_or_else(|_| unreachable!())
}

/// How deliveries are attempted and retried.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeliveryPolicy {
    /// How long one attempt waits for the receiver's answer (connecting included) before it
    /// counts as failed.
    pub timeout: Duration,
    /// The delay before the first retry; each later one doubles, up to `max_retry_delay`, plus
    /// a random jitter of up to the same again.
    pub first_retry_delay: Duration,
    /// The longest delay between two attempts (before jitter).
    pub max_retry_delay: Duration,
    /// How long after an event's first failed attempt the retries give up and it becomes a dead
    /// letter.
    pub give_up_after: Duration,
    /// Most attempts in flight at once (each to a different workspace of an endpoint, or to a
    /// different endpoint).
    pub concurrency: usize,
    /// How long the delivery lease lasts without a step renewing it: another
    /// [`Deliverer`] can take over this long after one dies. Keep it well above `timeout` (a step
    /// waits for its attempts), or a slow step loses the lease to another instance.
    pub lease: Duration,
}

impl Default for DeliveryPolicy {
    /// 10 s per attempt; retries after 5 s, 10 s, 20 s … up to 1 h apart, for 72 hours; 16 at
    /// once; a 60 s lease.
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(10),
            first_retry_delay: Duration::from_secs(5),
            max_retry_delay: Duration::from_secs(3600),
            give_up_after: Duration::from_secs(72 * 3600),
            concurrency: 16,
            lease: Duration::from_secs(60),
        }
    }
}

/// An endpoint's id: `ep_` and 16 lowercase hex digits.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct EndpointId(String);

impl EndpointId {
    fn random() -> Result<Self, AdapterError> {
        let mut bytes = [0u8; 8];
        getrandom::fill(&mut bytes).map_err(|e| AdapterError::Internal {
            detail: format!("no randomness for an endpoint id: {e}"),
        })?;
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        Ok(Self(format!("ep_{hex}")))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::str::FromStr for EndpointId {
    type Err = AdapterError;

    /// # Errors
    /// [`AdapterError::Invalid`] for text that is not `ep_` and 16 lowercase hex digits.
    fn from_str(text: &str) -> Result<Self, AdapterError> {
        let ok = text.strip_prefix("ep_").is_some_and(|hex| {
            hex.len() == 16
                && hex
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        });
        if ok {
            Ok(Self(text.to_owned()))
        } else {
            Err(invalid(
                "endpoint",
                text,
                "an endpoint id is ep_ and 16 lowercase hex digits, as `billing webhook list` shows",
            ))
        }
    }
}

impl fmt::Display for EndpointId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn invalid(field: &'static str, value: &str, reason: impl Into<String>) -> AdapterError {
    AdapterError::Invalid {
        field,
        value: value.to_owned(),
        reason: reason.into(),
    }
}

/// Why an endpoint gets nothing until it is re-enabled by [`retry`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Disabled {
    /// When.
    pub at: DateTime<Utc>,
    /// Why (the receiver's answer).
    pub reason: String,
}

/// A webhook endpoint and how its deliveries stand.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Endpoint {
    /// Its id.
    pub id: EndpointId,
    /// Where events are POSTed (`http` or `https`).
    pub url: String,
    /// The event types it is sent; empty: every type.
    pub event_types: Vec<String>,
    /// When it was added.
    pub created_at: DateTime<Utc>,
    /// Set while it is disabled (the receiver answered 410 Gone).
    pub disabled: Option<Disabled>,
    /// Events delivered to it (answered 2xx).
    pub delivered: u64,
    /// When the last one was.
    pub last_delivered_at: Option<DateTime<Utc>>,
    /// Events queued for it, not yet delivered.
    pub pending: u64,
    /// Its dead letters.
    pub dead: u64,
}

/// What [`add_endpoint`] made: the endpoint and its signing secret, shown this once.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AddedEndpoint {
    /// The new endpoint.
    pub endpoint: Endpoint,
    /// Its signing secret, `whsec_` and the base64 of 32 random bytes (Standard Webhooks):
    /// what the receiver verifies signatures with.
    pub secret: String,
}

/// Checks a webhook URL: absolute, `http` or `https`, with a host.
///
/// # Errors
/// [`AdapterError::Invalid`] naming the URL and what is wrong with it.
pub fn check_url(text: &str) -> Result<url::Url, AdapterError> {
    let url = url::Url::parse(text).map_err(|e| invalid("url", text, e.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(invalid(
            "url",
            text,
            format!(
                "the scheme is {:?}; webhooks are POSTed over http or https",
                url.scheme()
            ),
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(invalid("url", text, "it has no host"));
    }
    Ok(url)
}

fn check_types(types: &[String]) -> Result<Vec<String>, AdapterError> {
    let mut out: Vec<String> = Vec::with_capacity(types.len());
    for t in types {
        if !WorkspaceEvent::TYPES.contains(&t.as_str()) {
            return Err(invalid(
                "event",
                t,
                format!(
                    "not an event type; the types are {}",
                    WorkspaceEvent::TYPES.join(", ")
                ),
            ));
        }
        if !out.contains(t) {
            out.push(t.clone());
        }
    }
    Ok(out)
}

/// Adds an endpoint that is sent the committed events of `event_types` (every type when empty)
/// from the `webhooks` subscription's checkpoint on: events already queued before it was added
/// are not sent to it.
///
/// # Errors
/// [`AdapterError::Invalid`] for a URL that is not http(s) or an unknown event type (nothing is
/// written); [`AdapterError::Store`].
pub async fn add_endpoint(
    db: &Db,
    url: &str,
    event_types: &[String],
    now: DateTime<Utc>,
) -> Result<AddedEndpoint, AdapterError> {
    let url = check_url(url)?.to_string();
    let event_types = check_types(event_types)?;
    let id = EndpointId::random()?;
    let mut key = [0u8; 32];
    getrandom::fill(&mut key).map_err(|e| AdapterError::Internal {
        detail: format!("no randomness for a webhook secret: {e}"),
    })?;
    let secret = format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode(key)
    );
    let types_json = serde_json::to_string(&event_types).map_err(|e| AdapterError::Internal {
        detail: format!("event types do not serialize: {e}"),
    })?;
    on_backend!(db.backend(), |pool| sqlx::query(
        "INSERT INTO webhook_endpoints (id, url, secret, event_types, created_at) \
         VALUES ($1, $2, $3, $4, $5)"
    )
    .bind(id.as_str())
    .bind(&url)
    .bind(&secret)
    .bind(&types_json)
    .bind(rfc3339(now))
    .execute(pool)
    .await
    .map(|_| ())?);
    Ok(AddedEndpoint {
        endpoint: Endpoint {
            id,
            url,
            event_types,
            created_at: now,
            disabled: None,
            delivered: 0,
            last_delivered_at: None,
            pending: 0,
            dead: 0,
        },
        secret,
    })
}

#[derive(sqlx::FromRow)]
struct EndpointRow {
    id: String,
    url: String,
    event_types: String,
    created_at: String,
    disabled_at: Option<String>,
    disabled_reason: Option<String>,
    delivered: i64,
    last_delivered_at: Option<String>,
    pending: i64,
    dead: i64,
}

const LIST: &str = "SELECT e.id, e.url, e.event_types, e.created_at, e.disabled_at, \
         e.disabled_reason, e.delivered, e.last_delivered_at, \
         (SELECT count(*) FROM webhook_deliveries d \
             WHERE d.endpoint_id = e.id AND d.status = 'pending') AS pending, \
         (SELECT count(*) FROM webhook_deliveries d \
             WHERE d.endpoint_id = e.id AND d.status = 'dead') AS dead \
     FROM webhook_endpoints e ORDER BY e.created_at, e.id";

impl EndpointRow {
    fn into_endpoint(self) -> Result<Endpoint, AdapterError> {
        let corrupt = |detail: String| AdapterError::Corrupt {
            location: "webhook_endpoints".into(),
            detail: format!("endpoint {}: {detail}", self.id),
        };
        let time = |column: &str, text: &str| {
            text.parse::<DateTime<Utc>>()
                .map_err(|e| corrupt(format!("{column} {text:?} does not parse: {e}")))
        };
        let disabled = match (&self.disabled_at, &self.disabled_reason) {
            (Some(at), reason) => Some(Disabled {
                at: time("disabled_at", at)?,
                reason: reason.clone().unwrap_or_default(),
            }),
            (None, _) => None,
        };
        let event_types: Vec<String> = serde_json::from_str(&self.event_types)
            .map_err(|e| corrupt(format!("event_types {:?}: {e}", self.event_types)))?;
        let id = &self.id;
        Ok(Endpoint {
            id: self
                .id
                .parse()
                .map_err(|e: AdapterError| corrupt(e.to_string()))?,
            created_at: time("created_at", &self.created_at)?,
            last_delivered_at: self
                .last_delivered_at
                .as_deref()
                .map(|t| time("last_delivered_at", t))
                .transpose()?,
            delivered: int(id, "webhook_endpoints.delivered", self.delivered)?,
            pending: int(id, "webhook_deliveries count", self.pending)?,
            dead: int(id, "webhook_deliveries count", self.dead)?,
            url: self.url.clone(),
            event_types,
            disabled,
        })
    }
}

/// Every endpoint, oldest first, with its delivered, pending and dead counts.
///
/// # Errors
/// [`AdapterError::Store`]; [`AdapterError::Corrupt`] for a hand-edited row.
pub async fn endpoints(db: &Db) -> Result<Vec<Endpoint>, AdapterError> {
    let rows: Vec<EndpointRow> = on_backend!(db.backend(), |pool| sqlx::query_as(LIST)
        .fetch_all(pool)
        .await?);
    rows.into_iter().map(EndpointRow::into_endpoint).collect()
}

/// Removes endpoint `id` with everything queued for it (pending and dead); returns how many
/// undelivered events were dropped with it.
///
/// # Errors
/// [`AdapterError::UnknownEndpoint`] when there is no such endpoint; [`AdapterError::Store`].
pub async fn remove_endpoint(db: &Db, id: &EndpointId) -> Result<u64, AdapterError> {
    let dropped: Option<i64> = on_backend!(db.backend(), |pool| {
        let mut tx = pool.begin().await?;
        let dropped: i64 =
            sqlx::query_scalar("SELECT count(*) FROM webhook_deliveries WHERE endpoint_id = $1")
                .bind(id.as_str())
                .fetch_one(&mut *tx)
                .await?;
        let removed = sqlx::query("DELETE FROM webhook_endpoints WHERE id = $1")
            .bind(id.as_str())
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        (removed > 0).then_some(dropped)
    });
    match dropped {
        Some(n) => int(id.as_str(), "webhook_deliveries count", n),
        None => Err(AdapterError::UnknownEndpoint(id.to_string())),
    }
}

/// An event whose retries gave up ([`failures`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DeadLetter {
    /// The endpoint.
    pub endpoint_id: EndpointId,
    /// The event's workspace.
    pub workspace_id: String,
    /// The event's sequence.
    pub sequence: u64,
    /// The event's type.
    pub event_type: String,
    /// Attempts made.
    pub attempts: u64,
    /// What the last attempt met.
    pub last_error: String,
    /// When the retries gave up.
    pub dead_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
struct DeadRow {
    endpoint_id: String,
    workspace_id: String,
    sequence: i64,
    event_type: String,
    attempts: i64,
    last_error: Option<String>,
    dead_at: Option<String>,
}

/// The dead letters, of one endpoint or of all, by endpoint, workspace and sequence.
///
/// # Errors
/// [`AdapterError::Store`]; [`AdapterError::Corrupt`] for a hand-edited row.
pub async fn failures(
    db: &Db,
    endpoint: Option<&EndpointId>,
) -> Result<Vec<DeadLetter>, AdapterError> {
    let rows: Vec<DeadRow> = on_backend!(db.backend(), |pool| {
        sqlx::query_as(
        "SELECT endpoint_id, workspace_id, sequence, event_type, attempts, last_error, dead_at \
         FROM webhook_deliveries WHERE status = 'dead' AND ($1 IS NULL OR endpoint_id = $1) \
         ORDER BY endpoint_id, workspace_id, sequence"
    )
    .bind(endpoint.map(EndpointId::as_str))
    .fetch_all(pool)
    .await?
    });
    rows.into_iter()
        .map(|r| {
            let ws = r.workspace_id.as_str();
            Ok(DeadLetter {
                endpoint_id: r.endpoint_id.parse()?,
                sequence: int(ws, "webhook_deliveries.sequence", r.sequence)?,
                attempts: int(ws, "webhook_deliveries.attempts", r.attempts)?,
                dead_at: parse(
                    ws,
                    "webhook_deliveries.dead_at",
                    r.dead_at.as_deref().unwrap_or(""),
                )?,
                last_error: r.last_error.unwrap_or_default(),
                event_type: r.event_type,
                workspace_id: r.workspace_id,
            })
        })
        .collect()
}

/// What [`retry`] re-drove.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Retried {
    /// Dead letters made pending again.
    pub dead_letters: u64,
    /// Whether the endpoint was disabled (and now is not).
    pub re_enabled: bool,
}

/// Re-drives endpoint `id`: its dead letters become pending again with their attempts reset, a
/// disabled endpoint is enabled again, and everything pending for it is due at `now`.
///
/// # Errors
/// [`AdapterError::UnknownEndpoint`] when there is no such endpoint; [`AdapterError::Store`].
pub async fn retry(db: &Db, id: &EndpointId, now: DateTime<Utc>) -> Result<Retried, AdapterError> {
    let result: Option<(u64, bool)> = on_backend!(db.backend(), |pool| {
        let mut tx = pool.begin().await?;
        let was: Option<Option<String>> =
            sqlx::query_scalar("SELECT disabled_at FROM webhook_endpoints WHERE id = $1")
                .bind(id.as_str())
                .fetch_optional(&mut *tx)
                .await?;
        match was {
            None => None,
            Some(disabled_at) => {
                sqlx::query(
                    "UPDATE webhook_endpoints SET disabled_at = NULL, disabled_reason = NULL \
                     WHERE id = $1",
                )
                .bind(id.as_str())
                .execute(&mut *tx)
                .await?;
                let dead = sqlx::query(
                    "UPDATE webhook_deliveries SET status = 'pending', attempts = 0, \
                         first_failed_ms = NULL, dead_at = NULL, next_attempt_ms = $2 \
                     WHERE endpoint_id = $1 AND status = 'dead'",
                )
                .bind(id.as_str())
                .bind(now.timestamp_millis())
                .execute(&mut *tx)
                .await?
                .rows_affected();
                sqlx::query(
                    "UPDATE webhook_deliveries SET next_attempt_ms = $2 \
                     WHERE endpoint_id = $1 AND next_attempt_ms > $2",
                )
                .bind(id.as_str())
                .bind(now.timestamp_millis())
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Some((dead, disabled_at.is_some()))
            }
        }
    });
    let (dead_letters, re_enabled) =
        result.ok_or_else(|| AdapterError::UnknownEndpoint(id.to_string()))?;
    Ok(Retried {
        dead_letters,
        re_enabled,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_subscription_name_is_valid() {
        assert_eq!(subscription().as_str(), SUBSCRIPTION);
    }

    #[test]
    fn urls_must_be_http_or_https_with_a_host() {
        for good in ["http://127.0.0.1:9/x", "https://example.com/hooks?a=1"] {
            check_url(good).unwrap();
        }
        for (bad, why) in [
            ("ftp://example.com/x", "\"ftp\""),
            ("file:///etc/passwd", "\"file\""),
            ("example.com/hooks", "relative URL"),
            ("mailto:a@b.c", "\"mailto\""),
            ("", "relative URL"),
        ] {
            let err = check_url(bad).unwrap_err().to_string();
            assert!(err.contains(&format!("{bad:?}")), "{err}");
            assert!(err.contains(why), "{bad}: {err}");
            assert!(err.contains("url"), "{err}");
        }
    }

    #[test]
    fn event_types_are_checked_and_kept_once() {
        let ok = check_types(&["PlanUpgraded".into(), "PlanUpgraded".into()]).unwrap();
        assert_eq!(ok, ["PlanUpgraded"]);
        let err = check_types(&["PlanDowngraded".into()])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("\"PlanDowngraded\"") && err.contains("UpgradeRequested"),
            "{err}"
        );
    }

    #[test]
    fn endpoint_ids_round_trip_and_bad_ones_are_named() {
        let id = EndpointId::random().unwrap();
        assert_eq!(id.as_str().parse::<EndpointId>().unwrap(), id);
        for bad in ["ep_123", "EP_0123456789abcdef", "ep_0123456789ABCDEF", "x"] {
            let err = bad.parse::<EndpointId>().unwrap_err().to_string();
            assert!(err.contains(&format!("{bad:?}")), "{err}");
        }
    }
}
