//! `billing-bench feed`: following the store with a named subscription (SPEC §11, issue 10), on
//! PostgreSQL.
//!
//! - **Catch-up**: a store holding a generated log (200,000 events; 50,000 with `--quick`) is
//!   read to the end by a new [`Subscriber`](billing_store::Subscriber) (batches of 2,000, each committing its checkpoint,
//!   a handler that does nothing) against the bare streaming read of the same events (the
//!   rebuild benchmark's baseline), A-B-B-A; `catch_up_vs_stream` is the median ratio of
//!   events/s.
//! - **Live, and its cost to the command path**: eight writers run the documented flow, A-B-B-A,
//!   alone (`commands_8`) and with a follower running (`commands_8_followed`): a subscriber that
//!   starts at the end of the log and hands every new event to a handler noting how long after
//!   its recording (`recorded_at`, taken just before the append) it arrived; it asks every
//!   10 ms, so it commits a checkpoint at most 100 times a second. `followed_vs_alone` is the median ratio of commands/s; `live_p99_ms`
//!   is the 99th percentile of those delays over every followed slice.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use billing_store::{
    Backend, BillingStore, Db, Position, PositionedRow, StoreTx, SubscriptionHandler,
    SubscriptionName,
};
use chrono::{DateTime, Utc};
use serde_json::json;

use crate::contender::{interleave, services, Contender, Named, Slice, Store};
use crate::loggen::write_log;
use crate::measure::round3;
use crate::pg;
use crate::rebuild::{bare_stream, filled_store};

/// Events a catch-up batch carries.
const BATCH: u32 = 2_000;

/// How often the live follower asks for new events.
const POLL: Duration = Duration::from_millis(10);

/// A subscriber's lease in the benchmark (long: nothing takes over here).
const LEASE: Duration = Duration::from_secs(600);

/// Does nothing with the events it is handed.
struct Ignore;

#[async_trait]
impl SubscriptionHandler for Ignore {
    async fn handle(
        &self,
        _events: &[PositionedRow],
        _tx: StoreTx<'_>,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        Ok(())
    }
}

/// Notes, for every event it is handed, the milliseconds from its recording to now.
#[derive(Default)]
struct Delays(Mutex<Vec<f64>>);

#[async_trait]
impl SubscriptionHandler for Delays {
    async fn handle(
        &self,
        events: &[PositionedRow],
        _tx: StoreTx<'_>,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        let now = Utc::now();
        let mut delays = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        for event in events {
            // The store writes metadata itself: `"recorded_at":"<RFC 3339>"` is found by its
            // key, cheaper than parsing the whole object (the follower's cost is measured).
            let text = &event.row.metadata;
            let key = "\"recorded_at\":\"";
            let start = text.find(key).ok_or("an event without recorded_at")? + key.len();
            let end = text[start..]
                .find('"')
                .ok_or("recorded_at is not terminated")?
                + start;
            let recorded: DateTime<Utc> = text[start..end].parse()?;
            delays.push((now - recorded).num_microseconds().unwrap_or(i64::MAX) as f64 / 1e3);
        }
        Ok(())
    }
}

/// The bare streaming read of the whole log.
struct Stream {
    db: Db,
    events: u64,
}

impl Contender for Stream {
    fn slice(&mut self, _slice: usize) -> Slice<'_> {
        Box::pin(async move {
            let read = bare_stream(&self.db, self.events).await?;
            Ok(usize::try_from(read).unwrap_or(usize::MAX))
        })
    }
}

/// A new subscriber reading the whole log to its end.
struct CatchUp {
    db: Db,
    events: u64,
}

impl Contender for CatchUp {
    fn slice(&mut self, slice: usize) -> Slice<'_> {
        Box::pin(async move {
            let name = subscription(&format!("catch-up-{slice}"))?;
            let mut subscriber = self
                .db
                .subscriber(&name, "bench", Utc::now(), LEASE)
                .await
                .map_err(|e| e.to_string())?
                .ok_or("the catch-up subscription is held by another instance")?;
            let mut read = 0u64;
            loop {
                let handled = subscriber
                    .handle_next(BATCH, Utc::now(), &Ignore)
                    .await
                    .map_err(|e| e.to_string())?;
                if handled.events == 0 {
                    break;
                }
                read += handled.events as u64;
            }
            subscriber.release().await.map_err(|e| e.to_string())?;
            if read != self.events {
                return Err(format!(
                    "the catch-up read {read} events of {}",
                    self.events
                ));
            }
            Ok(usize::try_from(read).unwrap_or(usize::MAX))
        })
    }
}

fn subscription(name: &str) -> Result<SubscriptionName, String> {
    SubscriptionName::parse(name).map_err(|e| e.to_string())
}

/// The documented flow from eight writers, with a follower running alongside.
struct Followed {
    writers: Store,
    delays: Arc<Delays>,
}

/// The last committed position: where a follower that should see only new events starts.
async fn end_of_log(db: &Db) -> Result<Position, String> {
    let Backend::Postgres(pool) = db.backend() else {
        return Err("the feed benchmark runs on PostgreSQL".to_owned());
    };
    let last: Option<(i64, i64)> = sqlx::query_as(
        "SELECT CAST(CAST(transaction_id AS TEXT) AS BIGINT), position FROM events \
         ORDER BY transaction_id DESC, position DESC LIMIT 1",
    )
    .fetch_optional(pool)
    .await
    .map_err(|e| e.to_string())?;
    Ok(last.map_or(Position::START, |(t, p)| Position {
        transaction: u64::try_from(t).unwrap_or(0),
        position: u64::try_from(p).unwrap_or(0),
    }))
}

impl Contender for Followed {
    fn prepare(&mut self, slice: usize) -> Result<(), String> {
        self.writers.prepare(slice)
    }

    fn slice(&mut self, slice: usize) -> Slice<'_> {
        Box::pin(async move {
            let db = self.writers.store.db().clone();
            let name = subscription(&format!("live-{slice}"))?;
            db.save_checkpoint(&name, end_of_log(&db).await?, Utc::now())
                .await
                .map_err(|e| e.to_string())?;
            let mut follower = db
                .subscriber(&name, "bench", Utc::now(), LEASE)
                .await
                .map_err(|e| e.to_string())?
                .ok_or("the live subscription is held by another instance")?;
            let stop = Arc::new(AtomicBool::new(false));
            let task = {
                let (stop, delays) = (stop.clone(), self.delays.clone());
                tokio::spawn(async move {
                    loop {
                        // Whether the writers were done before this batch was read.
                        let last_round = stop.load(Ordering::SeqCst);
                        let handled = follower
                            .handle_next(BATCH, Utc::now(), delays.as_ref())
                            .await
                            .map_err(|e| e.to_string())?;
                        if handled.events == 0 && last_round {
                            return Ok::<_, String>(follower);
                        }
                        // At most one batch (one checkpoint commit) per poll.
                        tokio::time::sleep(POLL).await;
                    }
                })
            };
            let done = self.writers.slice(slice).await;
            stop.store(true, Ordering::SeqCst);
            let follower = task.await.map_err(|e| e.to_string())??;
            follower.release().await.map_err(|e| e.to_string())?;
            done
        })
    }
}

/// The `q`-th quantile of `values` (sorted in place), nearest rank.
fn quantile(values: &mut [f64], q: f64) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_by(f64::total_cmp);
    let rank = ((q * values.len() as f64).ceil() as usize).clamp(1, values.len());
    values[rank - 1]
}

/// Runs the `feed` benchmark; returns the JSON object to print last.
pub(crate) async fn run(quick: bool) -> Result<String, String> {
    let (events, rounds, per_writer) = if quick {
        (50_000u64, 3, 25)
    } else {
        (200_000u64, 7, 60)
    };
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let path = dir.path().join("feed.jsonl");
    let log = write_log(&path, events)?;
    let url = pg::fresh_database("feed").await?;
    let (store, _) = filled_store(&url, &path, &log).await?;
    eprintln!(
        "feed: PostgreSQL; catch-up of {events} events in batches of {BATCH} against the bare \
         stream, {rounds} A-B-B-A rounds; then 8 writers ({per_writer} new workspaces each per \
         slice) alone and with a live follower, {rounds} rounds"
    );
    let mut catch_up: Vec<Named> = vec![
        (
            "bare_stream",
            Box::new(Stream {
                db: store.db().clone(),
                events,
            }),
        ),
        (
            "catch_up",
            Box::new(CatchUp {
                db: store.db().clone(),
                events,
            }),
        ),
    ];
    let caught = interleave(&mut catch_up, &[("bare_stream", "catch_up")], rounds).await?;
    caught.print();
    drop(store);

    let url = pg::fresh_database("feedlive").await?;
    let store = Arc::new(
        BillingStore::open(&url, services())
            .await
            .map_err(|e| e.to_string())?,
    );
    let delays = Arc::new(Delays::default());
    let mut live: Vec<Named> = vec![
        (
            "commands_8",
            Box::new(Store::flow(store.clone(), 8, per_writer, "a")),
        ),
        (
            "commands_8_followed",
            Box::new(Followed {
                writers: Store::flow(store.clone(), 8, per_writer, "f"),
                delays: delays.clone(),
            }),
        ),
    ];
    let followed = interleave(&mut live, &[("commands_8", "commands_8_followed")], rounds).await?;
    followed.print();
    let mut all = std::mem::take(&mut *delays.0.lock().unwrap_or_else(PoisonError::into_inner));
    let (p50, p99, max) = (
        quantile(&mut all, 0.5),
        quantile(&mut all, 0.99),
        quantile(&mut all, 1.0),
    );
    eprintln!(
        "  live: {} events followed; from recording to the handler p50 {p50:.1} ms, p99 {p99:.1} ms, max {max:.1} ms",
        all.len()
    );
    Ok(json!({
        "bench": "feed",
        "quick": quick,
        "events": events,
        "catch_up_events_per_s": caught.rate("catch_up").round(),
        "bare_stream_events_per_s": caught.rate("bare_stream").round(),
        "catch_up_vs_stream": round3(caught.ratio("catch_up", "bare_stream")),
        "commands_8_per_s": followed.rate("commands_8").round(),
        "commands_8_followed_per_s": followed.rate("commands_8_followed").round(),
        "followed_vs_alone": round3(followed.ratio("commands_8_followed", "commands_8")),
        "live_events": all.len(),
        "live_p50_ms": round3(p50),
        "live_p99_ms": round3(p99),
        "live_max_ms": round3(max),
    })
    .to_string())
}
