//! Running a named subscription (SPEC §11): one instance at a time, takeover once a lease has run
//! out, and each batch's effect committed with its checkpoint — so an instance that lost its
//! lease, or a handler that failed, writes nothing, and every event's effect lands exactly once.

use std::time::Duration;

use async_trait::async_trait;
use billing_store::{PositionedRow, StoreError, StoreTx, SubscriptionHandler, SubscriptionName};
use chrono::{DateTime, Utc};

use crate::harness::*;

/// Records each event it is handed in table `handled` (a primary key per event, so an effect
/// written twice fails), in the batch's own transaction; fails after recording the event at
/// index `fail_at` of a batch, if set.
struct Recorder {
    fail_at: Option<usize>,
}

const INSERT: &str = "INSERT INTO handled (aggregate_id, sequence) VALUES ($1, $2)";

#[async_trait]
impl SubscriptionHandler for Recorder {
    async fn handle(
        &self,
        events: &[PositionedRow],
        mut tx: StoreTx<'_>,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        for (i, event) in events.iter().enumerate() {
            let (id, sequence) = (
                event.row.aggregate_id.as_str(),
                i64::try_from(event.row.sequence)?,
            );
            billing_store::on_backend!(&mut tx, |c| {
                sqlx::query(INSERT)
                    .bind(id)
                    .bind(sequence)
                    .execute(&mut **c)
                    .await?;
            });
            if self.fail_at == Some(i) {
                return Err(format!("the handler failed after {}", event.position).into());
            }
        }
        Ok(())
    }
}

fn at(seconds: i64) -> DateTime<Utc> {
    "2026-12-01T10:00:00Z".parse::<DateTime<Utc>>().unwrap() + chrono::Duration::seconds(seconds)
}

/// The events recorded in `handled`, in order.
async fn handled(h: &Harness) -> Vec<(String, i64)> {
    const ALL: &str = "SELECT aggregate_id, sequence FROM handled ORDER BY aggregate_id, sequence";
    billing_store::on_backend!(h.store.db().backend(), |pool| sqlx::query_as(ALL)
        .fetch_all(pool)
        .await
        .unwrap())
}

async fn prepare(h: &Harness) {
    h.raw(
        "CREATE TABLE handled (aggregate_id TEXT NOT NULL, sequence BIGINT NOT NULL, \
           PRIMARY KEY (aggregate_id, sequence))",
    )
    .await
    .unwrap();
    upgrade(&h.store, "acme", "cn1").await;
    wait_visible(h, 4).await;
}

/// Waits until `n` events are readable in the commit order: on PostgreSQL an event becomes
/// readable once every older writing transaction on the server has ended, other tests' included.
async fn wait_visible(h: &Harness, n: usize) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let visible = h
            .store
            .db()
            .read_committed(billing_store::Position::START, 1_000)
            .await
            .unwrap()
            .len();
        if visible >= n {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "only {visible} of {n} events became readable"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn acme(sequences: std::ops::RangeInclusive<i64>) -> Vec<(String, i64)> {
    sequences.map(|s| ("acme".to_owned(), s)).collect()
}

const LEASE: Duration = Duration::from_secs(10);

/// At most one instance runs a subscription; another takes over once the lease has run out, and
/// from then on the old one's batches are refused and write nothing — also after it got the
/// lease back, since others handled events meanwhile. Every event's effect lands once.
pub async fn one_instance_at_a_time_and_a_taken_over_one_writes_nothing(h: &Harness) {
    prepare(h).await;
    let db = h.store.db();
    let name = SubscriptionName::parse("finance").unwrap();
    let record = Recorder { fail_at: None };
    let mut a = db
        .subscriber(&name, "a", at(0), LEASE)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        db.subscriptions().await.unwrap()[0].holder,
        Some(("a".to_owned(), at(10)))
    );
    assert!(db
        .subscriber(&name, "b", at(5), LEASE)
        .await
        .unwrap()
        .is_none());
    let done = a.handle_next(2, at(1), &record).await.unwrap();
    assert_eq!(done.events, 2);
    assert_eq!(handled(h).await, acme(1..=2));
    // a's lease ran out at 10 s: b takes over from a's checkpoint.
    let mut b = db
        .subscriber(&name, "b", at(11), LEASE)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(b.checkpoint(), done.checkpoint);
    let err = a.handle_next(10, at(12), &record).await.unwrap_err();
    assert!(
        matches!(&err, StoreError::LostLease { holder, .. } if holder == "b"),
        "{err}"
    );
    assert!(!a.renew(at(12)).await.unwrap());
    assert_eq!(handled(h).await, acme(1..=2));
    assert_eq!(b.handle_next(10, at(13), &record).await.unwrap().events, 2);
    assert_eq!(b.handle_next(10, at(13), &record).await.unwrap().events, 0);
    assert_eq!(handled(h).await, acme(1..=4));
    // Released, it can be taken at once; a, back with an old checkpoint, is still refused.
    b.release().await.unwrap();
    assert_eq!(db.subscriptions().await.unwrap()[0].holder, None);
    assert!(a.renew(at(14)).await.unwrap());
    upgrade(&h.store, "beta", "us1").await;
    wait_visible(h, 8).await;
    let err = a.handle_next(10, at(15), &record).await.unwrap_err();
    assert!(matches!(err, StoreError::LostLease { .. }), "{err}");
    assert_eq!(handled(h).await, acme(1..=4));
    a.release().await.unwrap();
    let mut c = db
        .subscriber(&name, "c", at(16), LEASE)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(c.handle_next(100, at(16), &record).await.unwrap().events, 4);
    let mut expected = acme(1..=4);
    expected.extend((1..=4).map(|s| ("beta".to_owned(), s)));
    assert_eq!(handled(h).await, expected);
}

/// A handler that fails writes nothing of its batch — neither its effect nor the checkpoint —
/// and the same batch comes again.
pub async fn a_failing_handler_writes_nothing_and_its_batch_comes_again(h: &Harness) {
    prepare(h).await;
    let db = h.store.db();
    let name = SubscriptionName::parse("flaky").unwrap();
    let mut s = db
        .subscriber(&name, "s", at(0), LEASE)
        .await
        .unwrap()
        .unwrap();
    let err = s
        .handle_next(10, at(1), &Recorder { fail_at: Some(2) })
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::Handler { subscription, .. } if subscription == "flaky"),
        "{err}"
    );
    assert!(handled(h).await.is_empty());
    assert_eq!(
        db.checkpoint(&name).await.unwrap().unwrap().position,
        s.checkpoint()
    );
    let done = s
        .handle_next(10, at(2), &Recorder { fail_at: None })
        .await
        .unwrap();
    assert_eq!(done.events, 4);
    assert_eq!(handled(h).await, acme(1..=4));
    assert_eq!(
        db.checkpoint(&name).await.unwrap().unwrap().position,
        done.checkpoint
    );
}

/// A follower's wake-ups (SPEC §11 "Live"): it sleeps its whole timeout while nothing commits;
/// a commit through this process's store wakes it at once; after a wake-up it comes back again
/// soon by itself (on PostgreSQL an event can be readable only a moment after its commit).
pub async fn a_commit_wakes_a_follower_and_silence_lets_it_sleep(h: &Harness) {
    use std::time::Instant;
    let db = h.store.db();
    let mut wake = db.wake_ups();
    let quiet = Instant::now();
    assert!(
        !wake.wait(Duration::from_millis(200)).await,
        "nothing committed"
    );
    assert!(quiet.elapsed() >= Duration::from_millis(200));
    for i in 0..2 {
        let start = Instant::now();
        let (woken, ()) = tokio::join!(wake.wait(Duration::from_secs(30)), async {
            tokio::time::sleep(Duration::from_millis(100)).await;
            h.store
                .execute(
                    &ws(&format!("wake-{i}")),
                    &owner_cmd(&format!("wake-{i}"), act::request("cn1")),
                )
                .await
                .unwrap();
        });
        let waited = start.elapsed();
        assert!(woken, "commit {i}: not woken");
        assert!(
            waited >= Duration::from_millis(100) && waited < Duration::from_secs(5),
            "commit {i}: woken after {waited:?}"
        );
        // Then short waits, without a new commit: 5 + 10 + 20 + 40 + 80 ms, then the full one.
        let rechecks = Instant::now();
        for _ in 0..5 {
            assert!(!wake.wait(Duration::from_secs(30)).await);
        }
        let spent = rechecks.elapsed();
        assert!(
            spent >= Duration::from_millis(155) && spent < Duration::from_secs(2),
            "{spent:?}"
        );
        let full = Instant::now();
        assert!(!wake.wait(Duration::from_millis(300)).await);
        assert!(full.elapsed() >= Duration::from_millis(300));
    }
}
