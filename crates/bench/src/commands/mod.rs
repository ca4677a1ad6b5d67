//! `billing-bench commands`: the command path against its baselines, on PostgreSQL and SQLite.
//!
//! Contenders run in interleaved A-B-B-A slices ([`crate::contender::interleave`]); every ratio
//! is the median of its per-round ratios. The SQLite contenders (store, raw INSERTs, plain
//! sqlite-es) all use WAL, `synchronous=FULL` and the same busy timeout, each on its own file;
//! the store and sqlite-es are compared once more with sqlite-es's own default,
//! `synchronous=NORMAL`, on both sides (no sync per commit, so the command path's own cost is
//! what is compared, not the disk's).

mod baselines;
pub(crate) mod profile;

use std::sync::Arc;

use billing_store::{BillingStore, SqliteDurability, StoreOptions};
use serde_json::json;

use crate::contender::{interleave, services, Named, Store};
use crate::measure::round3;
use crate::pg;
use baselines::{postgres_es, raw_pg, raw_sqlite, sqlite_es, SQLITE_BUSY_TIMEOUT};

/// Concurrent writers of the `_8` contenders.
const WRITERS: usize = 8;

/// (baseline, contender) pairs whose ratio the benchmark reports.
const PAIRS: [(&str, &str); 8] = [
    ("raw_insert_seq", "store_seq"),
    ("raw_insert_seq", "store_seq_1ev"),
    ("raw_insert_8", "store_8"),
    ("postgres_es_seq", "store_seq"),
    ("sqlite_raw_insert", "sqlite_store"),
    ("sqlite_raw_insert_8", "sqlite_store_8"),
    ("sqlite_es_seq", "sqlite_store"),
    ("sqlite_es_seq_normal", "sqlite_store_normal"),
];

/// Opens a store on `url` with `connections` connections (and lanes), durable SQLite commits
/// and the baselines' busy timeout.
async fn open(url: &str, connections: u32) -> Result<Arc<BillingStore>, String> {
    open_with(url, connections, SqliteDurability::Full).await
}

/// [`open`] with SQLite commits as durable as `durability`.
async fn open_with(
    url: &str,
    connections: u32,
    durability: SqliteDurability,
) -> Result<Arc<BillingStore>, String> {
    let options = StoreOptions {
        max_connections: connections,
        sqlite_durability: durability,
        busy_timeout: SQLITE_BUSY_TIMEOUT,
        ..StoreOptions::default()
    };
    BillingStore::open_with(url, services(), options)
        .await
        .map(Arc::new)
        .map_err(|e| format!("cannot open {url}: {e}"))
}

/// The server's version, `synchronous_commit` and `fsync`.
async fn pg_settings() -> Result<(String, String, String), String> {
    let pool = pg::pool(&pg::server_url(), 1).await?;
    let row = sqlx::query_as(
        "SELECT current_setting('server_version'), current_setting('synchronous_commit'), current_setting('fsync')",
    )
    .fetch_one(&pool)
    .await
    .map_err(|e| e.to_string())?;
    pool.close().await;
    Ok(row)
}

/// Runs the `commands` benchmark; returns the JSON object to print last.
///
/// # Errors
/// PostgreSQL is unavailable, a file cannot be created, or a contender fails.
pub(crate) async fn run(quick: bool) -> Result<String, String> {
    // Slices of roughly a quarter second each; quick runs fewer.
    // postgres_cqrs is slow (about a third of the store): fewer workspaces keep its slices as
    // long as the others'. sqlite_cqrs gets as many as the sequential store.
    let (rounds, seq_workspaces, par_workspaces, pges_workspaces) = if quick {
        (5, 60, 25, 25)
    } else {
        (15, 150, 60, 60)
    };
    let settings = pg_settings().await?;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    eprintln!(
        "commands: PostgreSQL {} (synchronous_commit={}, fsync={}); every SQLite contender \
         (store, raw INSERT, sqlite-es) on its own file with WAL, synchronous=FULL, \
         busy_timeout={}s (and store vs sqlite-es once more with synchronous=NORMAL on both); \
         {rounds} interleaved rounds; {cores} cores",
        settings.0,
        settings.1,
        settings.2,
        SQLITE_BUSY_TIMEOUT.as_secs()
    );

    let mut databases = Vec::new();
    for tag in ["raw1", "raw8", "store", "pges"] {
        match pg::fresh_database(tag).await {
            Ok(url) => databases.push(url),
            Err(e) => {
                for url in &databases {
                    pg::drop_database(url).await;
                }
                return Err(e);
            }
        }
    }
    let [url_raw1, url_raw8, url_store, url_pges] = [0, 1, 2, 3].map(|i| databases[i].clone());
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let sqlite = |name: &str| format!("sqlite://{}", dir.path().join(name).display());

    let result = async {
        let pg_store_8 = open(&url_store, WRITERS as u32).await?;
        // The sequential contenders each get one connection, like the raw baseline's pool.
        let pg_store_1 = open(&url_store, 1).await?;
        let sqlite_store_1 = open(&sqlite("store.db"), 1).await?;
        let sqlite_store_8 = open(&sqlite("store8.db"), WRITERS as u32).await?;
        let sqlite_store_normal =
            open_with(&sqlite("normal.db"), 1, SqliteDurability::Normal).await?;
        let mut contenders: Vec<Named> = vec![
            (
                "raw_insert_seq",
                Box::new(raw_pg(&url_raw1, 1, seq_workspaces * 3).await?),
            ),
            (
                "store_seq",
                Box::new(Store::flow(pg_store_1.clone(), 1, seq_workspaces, "s")),
            ),
            (
                "store_seq_1ev",
                Box::new(Store {
                    steps: 1,
                    ..Store::flow(pg_store_1, 1, seq_workspaces * 3, "o")
                }),
            ),
            (
                "raw_insert_8",
                Box::new(raw_pg(&url_raw8, WRITERS, par_workspaces * 3).await?),
            ),
            (
                "store_8",
                Box::new(Store::flow(pg_store_8, WRITERS, par_workspaces, "p")),
            ),
            (
                "postgres_es_seq",
                Box::new(postgres_es(&url_pges, pges_workspaces).await?),
            ),
            (
                "sqlite_raw_insert",
                Box::new(raw_sqlite(&dir.path().join("raw.db"), 1, seq_workspaces * 3).await?),
            ),
            (
                "sqlite_store",
                Box::new(Store::flow(sqlite_store_1, 1, seq_workspaces, "l")),
            ),
            (
                "sqlite_raw_insert_8",
                Box::new(
                    raw_sqlite(&dir.path().join("raw8.db"), WRITERS, par_workspaces * 3).await?,
                ),
            ),
            (
                "sqlite_store_8",
                Box::new(Store::flow(sqlite_store_8, WRITERS, par_workspaces, "q")),
            ),
            (
                "sqlite_es_seq",
                Box::new(sqlite_es(&dir.path().join("sqlite_es.db"), seq_workspaces, true).await?),
            ),
            (
                "sqlite_store_normal",
                Box::new(Store::flow(sqlite_store_normal, 1, seq_workspaces * 4, "n")),
            ),
            (
                "sqlite_es_seq_normal",
                Box::new(
                    sqlite_es(
                        &dir.path().join("sqlite_es_normal.db"),
                        seq_workspaces,
                        false,
                    )
                    .await?,
                ),
            ),
        ];
        interleave(&mut contenders, &PAIRS, rounds).await
    }
    .await;
    for url in &databases {
        pg::drop_database(url).await;
    }
    let measured = result?;
    measured.print();
    let ratio = |contender: &str, baseline: &str| round3(measured.ratio(contender, baseline));
    // A ratio of overall rates, for reference only (not interleaved with each other).
    let rate_ratio = |a: &str, b: &str| {
        let base = measured.rate(b);
        round3(if base > 0.0 {
            measured.rate(a) / base
        } else {
            0.0
        })
    };
    let mut out = json!({
        "bench": "commands",
        "vs_raw_insert_seq": ratio("store_seq", "raw_insert_seq"),
        "vs_raw_insert_8": ratio("store_8", "raw_insert_8"),
        "vs_postgres_es_seq": ratio("store_seq", "postgres_es_seq"),
        "sqlite_vs_raw_insert": ratio("sqlite_store", "sqlite_raw_insert"),
        "sqlite_8_vs_raw_insert_8": ratio("sqlite_store_8", "sqlite_raw_insert_8"),
        "vs_sqlite_es_seq": ratio("sqlite_store_normal", "sqlite_es_seq_normal"),
        "vs_sqlite_es_seq_full": ratio("sqlite_store", "sqlite_es_seq"),
        "single_event_vs_raw_insert_seq": ratio("store_seq_1ev", "raw_insert_seq"),
        "postgres_es_vs_raw_insert_seq": rate_ratio("postgres_es_seq", "raw_insert_seq"),
        "sqlite_es_vs_raw_insert": rate_ratio("sqlite_es_seq", "sqlite_raw_insert"),
        "sqlite_durability_of_vs_sqlite_es_seq": "NORMAL (sqlite-es's default) on both sides",
        "quick": quick,
    });
    for (name, t) in &measured.tallies {
        out[format!("{name}_per_s")] = json!(t.rate().round());
    }
    Ok(out.to_string())
}
