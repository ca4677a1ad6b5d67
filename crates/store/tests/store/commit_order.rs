//! The commit order (SPEC §11, ADR 0009): a reader that goes on from the last position it got
//! sees every committed event exactly once, in workspace order, however commits interleave —
//! including a transaction that took its positions early and committed late.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use billing_store::{BillingStore, Position, PositionedRow};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;
use sqlx::Connection;

use crate::harness::*;

/// Reads everything visible after `from`, `batch` events at a time; returns what it read and
/// where it ended.
async fn read_to_end(
    store: &BillingStore,
    mut from: Position,
    batch: u32,
) -> (Vec<PositionedRow>, Position) {
    let mut rows = Vec::new();
    loop {
        let got = store.db().read_committed(from, batch).await.unwrap();
        let Some(last) = got.last() else {
            return (rows, from);
        };
        assert!(got.len() <= batch as usize);
        assert!(
            got.windows(2).all(|w| w[0].position < w[1].position) && got[0].position > from,
            "positions go forward"
        );
        from = last.position;
        rows.extend(got);
    }
}

/// Reads after `from` until `want` events came, polling: on PostgreSQL an event becomes readable
/// only once every transaction older than it has ended, anywhere on the server (other tests'
/// databases included), so the last events of a burst can take a moment. Then checks that
/// nothing more comes.
async fn read_until(
    store: &BillingStore,
    mut from: Position,
    batch: u32,
    want: usize,
) -> (Vec<PositionedRow>, Position) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let mut rows = Vec::new();
    while rows.len() < want && tokio::time::Instant::now() < deadline {
        let (got, at) = read_to_end(store, from, batch).await;
        from = at;
        if got.is_empty() {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        rows.extend(got);
    }
    let (more, at) = read_to_end(store, from, batch).await;
    rows.extend(more);
    (rows, at)
}

/// The documented flow's first `steps` commands on `workspace`.
async fn flow(store: &BillingStore, workspace: &str, steps: usize) {
    let w = ws(workspace);
    for (i, action) in [act::request("cn1"), act::bind(KNOWN_USER), act::accept()]
        .into_iter()
        .take(steps)
        .enumerate()
    {
        store
            .execute(&w, &owner_cmd(&format!("{workspace}-{i}"), action))
            .await
            .unwrap();
    }
}

/// On PostgreSQL a transaction can take its position, stay open while others commit past it,
/// and commit last. A reader that followed "position > the last one seen" would pass over its
/// event for good; this one waits for it.
#[sqlx::test(migrations = false)]
async fn postgres_a_transaction_that_commits_late_is_not_passed_over(pool: sqlx::PgPool) {
    let url = billing_test_support::url_of(&pool).await;
    let store = BillingStore::open(&url, World::new().services)
        .await
        .unwrap();
    let (nothing, start) = read_to_end(&store, Position::START, 100).await;
    assert!(nothing.is_empty());
    // Its own session: it takes the first block of positions, so its position is the lowest.
    let mut late = sqlx::PgConnection::connect(&url).await.unwrap();
    sqlx::raw_sql("BEGIN").execute(&mut late).await.unwrap();
    let late_position: i64 = sqlx::query_scalar(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, \
         payload, metadata) VALUES ('workspace', 'late', 1, 'UpgradeRequested', '1.0', '{}', '{}') \
         RETURNING position",
    )
    .fetch_one(&mut late)
    .await
    .unwrap();
    // The store commits four events past it, with higher positions.
    flow(&store, "early", 3).await;
    let positions: Vec<i64> =
        sqlx::query_scalar("SELECT position FROM events WHERE aggregate_id = 'early'")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(positions.len(), 4);
    assert!(
        positions.iter().all(|&p| p > late_position),
        "the late transaction's position {late_position} must be below the others' {positions:?}"
    );
    // While it is open the reader takes nothing it could later find something below.
    let (while_open, at) = read_to_end(&store, start, 2).await;
    assert!(while_open.is_empty(), "{while_open:?}");
    sqlx::raw_sql("COMMIT").execute(&mut late).await.unwrap();
    let (after, _) = read_until(&store, at, 2, 5).await;
    let seen: Vec<(&str, u64)> = after
        .iter()
        .map(|r| (r.row.aggregate_id.as_str(), r.row.sequence))
        .collect();
    assert_eq!(
        seen,
        [
            ("late", 1),
            ("early", 1),
            ("early", 2),
            ("early", 3),
            ("early", 4)
        ]
    );
}

/// One random round: writers, each running the documented flow (its first 1–3 commands) on
/// workspaces of its own, while a reader follows the commit order in batches.
#[derive(Clone, Debug)]
struct Round {
    /// Per writer, the steps of each of its workspaces.
    writers: Vec<Vec<usize>>,
    /// The reader's batch size.
    batch: u32,
}

fn round() -> impl Strategy<Value = Round> {
    (
        proptest::collection::vec(proptest::collection::vec(1usize..=3, 1..6), 1..8),
        1u32..12,
    )
        .prop_map(|(writers, batch)| Round { writers, batch })
}

/// Rounds per backend.
const ROUNDS: usize = 12;

/// Random interleavings of writers and a reader on both backends: the reader sees every event
/// that was committed exactly once, each workspace's in sequence order, positions always going
/// forward.
pub async fn a_reader_sees_every_committed_event_once_in_workspace_order(h: &Harness) {
    let store = Arc::new(h.reopen().await);
    let mut runner = TestRunner::default();
    let (_, mut at) = read_to_end(&store, Position::START, 100).await;
    for n in 0..ROUNDS {
        let case = round().new_tree(&mut runner).unwrap().current();
        let done = Arc::new(AtomicBool::new(false));
        let reader = {
            let (store, done) = (store.clone(), done.clone());
            let batch = case.batch;
            tokio::spawn(async move {
                let mut seen = Vec::new();
                loop {
                    let got = store.db().read_committed(at, batch).await.unwrap();
                    match got.last() {
                        Some(last) => at = last.position,
                        // The writers are done; the rest is read to the end below.
                        None if done.load(Ordering::SeqCst) => return (seen, at),
                        None => tokio::time::sleep(Duration::from_micros(200)).await,
                    }
                    seen.extend(got);
                }
            })
        };
        let mut writers = Vec::new();
        for (w, workspaces) in case.writers.iter().enumerate() {
            let store = store.clone();
            let workspaces = workspaces.clone();
            writers.push(tokio::spawn(async move {
                for (i, steps) in workspaces.into_iter().enumerate() {
                    flow(&store, &format!("r{n}-w{w}-{i}"), steps).await;
                }
            }));
        }
        for writer in writers {
            writer.await.unwrap();
        }
        done.store(true, Ordering::SeqCst);
        let (mut seen, end) = reader.await.unwrap();
        let total: usize = case
            .writers
            .iter()
            .flatten()
            .map(|&steps| [1, 2, 4][steps - 1])
            .sum();
        let (rest, end) =
            read_until(&store, end, case.batch, total.saturating_sub(seen.len())).await;
        seen.extend(rest);
        at = end;
        // What was committed: every flow's events (accepting writes two).
        let mut expected: HashMap<String, u64> = HashMap::new();
        for (w, workspaces) in case.writers.iter().enumerate() {
            for (i, steps) in workspaces.iter().enumerate() {
                expected.insert(format!("r{n}-w{w}-{i}"), [1, 2, 4][steps - 1]);
            }
        }
        let mut last: HashMap<&str, u64> = HashMap::new();
        for row in &seen {
            let id = row.row.aggregate_id.as_str();
            let previous = last.insert(id, row.row.sequence).unwrap_or(0);
            assert_eq!(
                row.row.sequence,
                previous + 1,
                "round {n} ({case:?}): {id} went from {previous} to {} (seen twice, skipped or out of order)",
                row.row.sequence
            );
        }
        let got: HashMap<String, u64> = last.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
        assert_eq!(got, expected, "round {n} ({case:?})");
        assert!(
            seen.windows(2).all(|w| w[0].position < w[1].position),
            "round {n}: positions go forward"
        );
    }
}

#[test]
fn positions_are_written_and_read_as_transaction_dot_position() {
    let p = Position {
        transaction: 812,
        position: 10_452,
    };
    assert_eq!(p.to_string(), "812.10452");
    assert_eq!("812.10452".parse::<Position>(), Ok(p));
    assert_eq!("0.0".parse::<Position>(), Ok(Position::START));
    for bad in [
        "",
        "812",
        "812.",
        ".5",
        "1.2.3",
        "-1.2",
        "+1.2",
        "1.x",
        "18446744073709551616.0",
    ] {
        let err = bad.parse::<Position>().unwrap_err();
        assert!(err.to_string().contains(&format!("{bad:?}")), "{err}");
    }
    // Commit order: the transaction first, then the position.
    assert!(
        Position {
            transaction: 1,
            position: 900
        } < Position {
            transaction: 2,
            position: 5
        }
    );
}

/// A named subscription's checkpoint is kept in the database, survives a restart, never moves
/// back, and says how far behind the log it is.
pub async fn a_checkpoint_is_durable_never_moves_back_and_knows_its_lag(h: &Harness) {
    use billing_store::SubscriptionName;
    use chrono::{DateTime, Utc};
    let name = SubscriptionName::parse("finance-feed").unwrap();
    let db = h.store.db();
    assert_eq!(db.checkpoint(&name).await.unwrap(), None);
    assert!(db.subscriptions().await.unwrap().is_empty());
    upgrade(&h.store, "acme", "cn1").await;
    let rows = read_until(&h.store, Position::START, 10, 4).await.0;
    assert_eq!(rows.len(), 4);
    let t0: DateTime<Utc> = "2026-12-01T10:00:00Z".parse().unwrap();
    assert!(db
        .save_checkpoint(&name, rows[1].position, t0)
        .await
        .unwrap());
    // Behind the stored one: nothing changes.
    let t1: DateTime<Utc> = "2026-12-01T10:05:00Z".parse().unwrap();
    assert!(!db
        .save_checkpoint(&name, rows[0].position, t1)
        .await
        .unwrap());
    assert!(!db
        .save_checkpoint(&name, rows[1].position, t1)
        .await
        .unwrap());
    let reopened = h.reopen().await;
    let saved = reopened.db().checkpoint(&name).await.unwrap().unwrap();
    assert_eq!((saved.position, saved.updated_at), (rows[1].position, t0));
    // Two events behind, since the third was recorded.
    let recorded: DateTime<Utc> = {
        let meta: serde_json::Value = serde_json::from_str(&rows[2].row.metadata).unwrap();
        meta["recorded_at"].as_str().unwrap().parse().unwrap()
    };
    let lags = reopened.db().subscriptions().await.unwrap();
    assert_eq!(lags.len(), 1);
    assert_eq!(lags[0].name, name);
    assert_eq!(lags[0].events_behind, 2);
    assert_eq!(lags[0].oldest_unhandled, Some(recorded));
    assert_eq!(
        lags[0].seconds_behind(recorded + chrono::Duration::seconds(90)),
        90
    );
    // Up to date: nothing behind.
    assert!(reopened
        .db()
        .save_checkpoint(&name, rows[3].position, t1)
        .await
        .unwrap());
    let lags = reopened.db().subscriptions().await.unwrap();
    assert_eq!(
        (
            lags[0].events_behind,
            lags[0].oldest_unhandled,
            lags[0].seconds_behind(t1)
        ),
        (0, None, 0)
    );
    // The last readable event is the last one read; a rewind moves the checkpoint back to a
    // position before it, never forward.
    assert_eq!(db.last_readable().await.unwrap(), rows[3].position);
    let t2: DateTime<Utc> = "2026-12-01T10:10:00Z".parse().unwrap();
    assert!(db
        .rewind_checkpoint(&name, rows[1].position, t2)
        .await
        .unwrap());
    let rewound = db.checkpoint(&name).await.unwrap().unwrap();
    assert_eq!(
        (rewound.position, rewound.updated_at),
        (rows[1].position, t2)
    );
    assert!(!db
        .rewind_checkpoint(&name, rows[2].position, t2)
        .await
        .unwrap());
    assert_eq!(
        db.checkpoint(&name).await.unwrap().unwrap().position,
        rows[1].position
    );
    assert_eq!(db.subscriptions().await.unwrap()[0].events_behind, 2);
}
