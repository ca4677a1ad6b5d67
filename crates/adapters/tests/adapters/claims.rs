//! Two delivery runs at once never deliver one notice both: each message is claimed before the
//! mailer gets it (found by the deadlines crash round: concurrent `billing tick`s each delivered
//! the outbox). A run that died holding a claim delays its message until the claim runs out.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use billing_adapters::outbox::{outbox, CLAIM};
use billing_adapters::{deliver_pending, AdapterError, Mailer, OutboxMessage};
use chrono::Utc;

use crate::harness::{t, upgrade, Harness};

/// Counts deliveries per `Message-ID`, slowly, so that runs overlap.
#[derive(Default)]
struct CountingMailer {
    delivered: Mutex<BTreeMap<String, u32>>,
}

#[async_trait::async_trait]
impl Mailer for CountingMailer {
    async fn deliver(&self, message: &OutboxMessage) -> Result<(), AdapterError> {
        tokio::time::sleep(Duration::from_millis(5)).await;
        *self
            .delivered
            .lock()
            .unwrap()
            .entry(message.message_id())
            .or_default() += 1;
        Ok(())
    }
}

pub async fn concurrent_delivery_runs_deliver_each_notice_once(h: &Harness) {
    h.register("acme-finance").await;
    for i in 0..12 {
        upgrade(h, &format!("w{i}"), "cn4").await;
    }
    h.billing.projector.flush().await.unwrap();
    let db = h.billing.db();
    let mailer = CountingMailer::default();
    let now = t("2026-11-27T10:00:00Z");
    let clocks = billing_adapters::Clocks::at(now);
    let (a, b, c) = tokio::join!(
        deliver_pending(db, &mailer, &clocks),
        deliver_pending(db, &mailer, &clocks),
        deliver_pending(db, &mailer, &clocks),
    );
    let sent = a.unwrap().sent + b.unwrap().sent + c.unwrap().sent;
    let delivered = mailer.delivered.lock().unwrap().clone();
    assert_eq!(delivered.len(), 12, "{delivered:?}");
    assert!(delivered.values().all(|n| *n == 1), "{delivered:?}");
    assert_eq!(sent, 12);
    assert!(outbox(db)
        .await
        .unwrap()
        .iter()
        .all(|m| m.sent_at == Some(now)));
}

pub async fn a_claim_of_a_run_that_died_runs_out(h: &Harness) {
    h.register("acme-finance").await;
    upgrade(h, "acme", "cn4").await;
    h.billing.projector.flush().await.unwrap();
    // A run claimed the reminder and died before the mailer took it.
    let held = (Utc::now() + CLAIM).to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
    h.raw(&format!("UPDATE email_outbox SET claimed_until = '{held}'"))
        .await
        .unwrap();
    let mailer = CountingMailer::default();
    let now = t("2026-11-27T10:00:00Z");
    let during = deliver_pending(h.billing.db(), &mailer, &billing_adapters::Clocks::at(now))
        .await
        .unwrap();
    assert_eq!(during.sent, 0, "the claim holds");
    let after = Utc::now() + CLAIM + chrono::Duration::seconds(1);
    let later = deliver_pending(
        h.billing.db(),
        &mailer,
        &billing_adapters::Clocks {
            billing: std::sync::Arc::new(billing_domain::memory::ManualClock::new(now)),
            process: std::sync::Arc::new(billing_domain::memory::ManualClock::new(after)),
        },
    )
    .await
    .unwrap();
    assert_eq!(later.sent, 1, "the claim ran out");
    assert_eq!(mailer.delivered.lock().unwrap().len(), 1);
}
