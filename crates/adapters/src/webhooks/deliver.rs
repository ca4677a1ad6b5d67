//! [`Deliverer`]: one running webhook delivery.

use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use billing_store::{Db, StoreError, Subscriber};
use chrono::{DateTime, Utc};
use futures_util::future::join_all;
use serde::Serialize;

use super::queue::{self, Due, Enqueue, Record};
use super::DeliveryPolicy;
use crate::error::AdapterError;

/// Events queued per step (one subscription batch).
const QUEUE_BATCH: u32 = 500;

/// The most of a receiver's answer kept in the error of a failed attempt.
const ANSWER_EXCERPT: usize = 200;

/// What one [`Deliverer::step`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Step {
    /// Events queued (each once per endpoint that takes its type).
    pub queued_events: usize,
    /// Attempts answered 2xx.
    pub delivered: usize,
    /// Attempts that failed and will be retried.
    pub retrying: usize,
    /// Attempts that failed for the last time: dead letters now.
    pub dead: usize,
    /// Endpoints disabled because the receiver answered 410 Gone.
    pub disabled: usize,
}

impl std::ops::AddAssign for Step {
    fn add_assign(&mut self, other: Step) {
        self.queued_events += other.queued_events;
        self.delivered += other.delivered;
        self.retrying += other.retrying;
        self.dead += other.dead;
        self.disabled += other.disabled;
    }
}

impl Step {
    /// Whether the step found nothing to queue and no attempt due.
    pub fn is_idle(&self) -> bool {
        *self == Step::default()
    }
}

/// One running webhook delivery: the holder of the `webhooks` subscription's lease (one at a
/// time; another takes over once this one's lease, [`DeliveryPolicy::lease`], has run out). See the
/// [module](super) for what receivers get.
#[derive(Debug)]
pub struct Deliverer {
    db: Db,
    subscriber: Subscriber,
    client: reqwest::Client,
    policy: DeliveryPolicy,
}

/// How one attempt ended.
enum Outcome {
    Delivered,
    Gone(String),
    Failed(String),
}

impl Deliverer {
    /// Starts delivery as `holder` (any id unique to this instance); `None` when another
    /// instance is delivering now.
    ///
    /// # Errors
    /// [`AdapterError::Store`] when the subscription cannot be read or taken;
    /// [`AdapterError::Internal`] when no HTTP client can be built (no TLS roots, say).
    pub async fn start(
        db: &Db,
        holder: &str,
        policy: DeliveryPolicy,
        now: DateTime<Utc>,
    ) -> Result<Option<Self>, AdapterError> {
        let Some(subscriber) = db
            .subscriber(&super::subscription(), holder, now, policy.lease)
            .await?
        else {
            return Ok(None);
        };
        let client = reqwest::Client::builder()
            .timeout(policy.timeout)
            .connect_timeout(policy.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("workspace-billing/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| AdapterError::Internal {
                detail: format!("the webhook HTTP client could not be built: {e}"),
            })?;
        Ok(Some(Self {
            db: db.clone(),
            subscriber,
            client,
            policy,
        }))
    }

    /// Renews the lease, queues the next committed events (at most 500) for the endpoints, and
    /// makes every attempt due at `now` (at most the policy's concurrency at once, the heads of
    /// distinct workspaces or endpoints), recording each outcome.
    ///
    /// # Errors
    /// [`AdapterError::Store`] with [`StoreError::LostLease`] when another instance took
    /// delivery over (stop this one); [`AdapterError::Store`] and other store errors: nothing
    /// recorded is lost, step again later. A receiver's failure is never an error here: it is
    /// recorded and retried.
    pub async fn step(&mut self, now: DateTime<Utc>) -> Result<Step, AdapterError> {
        if !self.subscriber.renew(now).await? {
            return Err(AdapterError::Store(StoreError::LostLease {
                subscription: super::SUBSCRIPTION.to_owned(),
                holder: "another instance".to_owned(),
            }));
        }
        let mut step = Step::default();
        let handler = Enqueue {
            now_ms: now.timestamp_millis(),
        };
        step.queued_events = self
            .subscriber
            .handle_next(QUEUE_BATCH, now, &handler)
            .await?
            .events;
        let due = queue::due(&self.db, now.timestamp_millis(), self.policy.concurrency).await?;
        let outcomes = join_all(due.iter().map(|d| self.attempt(d, now))).await;
        let mut records = Vec::with_capacity(due.len());
        for (due, outcome) in due.iter().zip(outcomes) {
            let record = match outcome {
                Outcome::Delivered => {
                    step.delivered += 1;
                    Record::Delivered
                }
                Outcome::Gone(why) => {
                    step.disabled += 1;
                    Record::Gone(why)
                }
                Outcome::Failed(error) => {
                    let next_ms = self.retry_at(due, now);
                    if next_ms.is_some() {
                        step.retrying += 1;
                    } else {
                        step.dead += 1;
                    }
                    Record::Failed { error, next_ms }
                }
            };
            records.push((due, record));
        }
        queue::record(&self.db, &records, now).await?;
        Ok(step)
    }

    /// When the next attempt already queued is due (`None`: nothing is pending for an enabled
    /// endpoint). New events can come before it: step again soon when following the log.
    ///
    /// # Errors
    /// [`AdapterError::Store`].
    pub async fn next_attempt(&self) -> Result<Option<DateTime<Utc>>, AdapterError> {
        queue::next_attempt(&self.db).await
    }

    /// Gives the lease up, so another instance can take over at once.
    ///
    /// # Errors
    /// [`AdapterError::Store`].
    pub async fn release(self) -> Result<(), AdapterError> {
        Ok(self.subscriber.release().await?)
    }

    /// The next attempt's time in Unix milliseconds after a failure at `now`, or `None` when the
    /// retries give up.
    fn retry_at(&self, due: &Due, now: DateTime<Utc>) -> Option<i64> {
        let now_ms = now.timestamp_millis();
        let first = due.first_failed_ms.unwrap_or(now_ms);
        let give_up = i64::try_from(self.policy.give_up_after.as_millis()).unwrap_or(i64::MAX);
        if now_ms.saturating_sub(first) >= give_up {
            return None;
        }
        let failures = usize::try_from(due.attempts).unwrap_or(0);
        // backon without its `std` feature seeds its jitter with one constant: every event would
        // jitter alike. A seed of our own per failure keeps the retries apart.
        let mut seed = [0u8; 8];
        if getrandom::fill(&mut seed).is_err() {
            seed = now.timestamp_nanos_opt().unwrap_or(now_ms).to_le_bytes();
        }
        let delay = ExponentialBuilder::new()
            .with_jitter_seed(u64::from_le_bytes(seed))
            .with_min_delay(self.policy.first_retry_delay)
            .with_max_delay(self.policy.max_retry_delay)
            .with_jitter()
            .without_max_times()
            .build()
            .nth(failures)
            .unwrap_or(self.policy.max_retry_delay);
        let delay = i64::try_from(delay.as_millis()).unwrap_or(i64::MAX);
        Some(now_ms.saturating_add(delay))
    }

    /// One POST of `due`, signed at `now`.
    async fn attempt(&self, due: &Due, now: DateTime<Utc>) -> Outcome {
        let id = format!("{}:{}", due.workspace_id, due.sequence);
        let timestamp = now.timestamp();
        let signature = match standardwebhooks::Webhook::new(&due.secret)
            .and_then(|hook| hook.sign(&id, timestamp, due.body.as_bytes()))
        {
            Ok(signature) => signature,
            Err(e) => {
                return Outcome::Failed(format!(
                    "endpoint {}: its stored secret cannot sign: {e}",
                    due.endpoint_id
                ))
            }
        };
        let sent = self
            .client
            .post(&due.url)
            .header("content-type", "application/json")
            .header("webhook-id", &id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(due.body.clone())
            .send()
            .await;
        let answer = match sent {
            Ok(answer) => answer,
            Err(e) => return Outcome::Failed(describe(&e, self.policy.timeout)),
        };
        let status = answer.status();
        if status.is_success() {
            return Outcome::Delivered;
        }
        if status == reqwest::StatusCode::GONE {
            return Outcome::Gone(format!(
                "the receiver answered {status}: it asks for no more events; \
                 `billing webhook retry {}` enables the endpoint again",
                due.endpoint_id
            ));
        }
        if status.is_redirection() {
            let to = answer
                .headers()
                .get("location")
                .and_then(|l| l.to_str().ok())
                .unwrap_or("nowhere")
                .to_owned();
            return Outcome::Failed(format!(
                "the receiver answered {status}, a redirect to {to}; webhooks do not follow \
                 redirects: add an endpoint with the URL it points to"
            ));
        }
        let text = answer.text().await.unwrap_or_default();
        let excerpt: String = text.chars().take(ANSWER_EXCERPT).collect();
        Outcome::Failed(if excerpt.is_empty() {
            format!("the receiver answered {status}")
        } else {
            format!("the receiver answered {status}: {excerpt}")
        })
    }
}

/// A failed request in words: what stopped it, with its causes.
fn describe(e: &reqwest::Error, timeout: Duration) -> String {
    if e.is_timeout() {
        return format!("no answer within {} s (timed out)", timeout.as_secs_f64());
    }
    let mut text = if e.is_connect() {
        "could not connect".to_owned()
    } else {
        "the request failed".to_owned()
    };
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
