//! `billing-bench scale`: how the cost of a command grows with the store, on both backends.
//!
//! - Two logs generated with the store's own encoding ([`crate::loggen`], every fourth
//!   workspace stopped after its binding): 1,000,000 and 10,000 events (100,000 and 1,000 with
//!   `--quick`: the same 100×), each imported once per backend through
//!   [`billing_store::BillingStore::import`] into an empty store, then settled.
//! - Cold load ([`cold`]), first: the latency of a first command on a workspace the store has
//!   not cached, small store ÷ big store.
//! - Commands: the documented flow on new workspaces, one writer, on the big store and on the
//!   small one in interleaved A-B-B-A slices ([`crate::contender::interleave`]); big ÷ small.
//! - Cache memory ([`cache`]): the resident memory a child process gains per workspace it
//!   warms into a store's cache, on the big PostgreSQL store (the client holds no database
//!   pages there, unlike SQLite's page cache, which lives in the process).
//!
//! Both ratios read 1.0 when the big store is no slower; the target is ≥ 0.9 for each.

mod cache;
mod cold;
mod stores;

use std::path::Path;
use std::sync::Arc;

use billing_store::StoreOptions;
use serde_json::{json, Map, Value};

use crate::contender::{interleave, Named, Store};
use crate::loggen::{write_log_with, Log};
use crate::measure::round3;
use crate::pg;

pub(crate) use cache::{child as cache_child, CHILD as CACHE_CHILD};

/// Sizes and repetitions of one run.
#[derive(Clone, Copy, Debug)]
struct Plan {
    big_events: u64,
    small_events: u64,
    /// A-B-B-A rounds of the commands comparison.
    rounds: usize,
    /// New workspaces per commands slice (three commands each).
    workspaces_per_slice: usize,
    /// A-B-B-A rounds of the cold-load comparison.
    cold_rounds: usize,
    /// First commands timed per cold slice.
    cold_per_slice: usize,
    /// Workspaces the cache child warms before its first reading, and after it.
    cache_warm_up: u64,
    cache_workspaces: u64,
}

impl Plan {
    fn new(quick: bool) -> Self {
        if quick {
            Self {
                big_events: 100_000,
                small_events: 1_000,
                rounds: 5,
                workspaces_per_slice: 40,
                cold_rounds: 5,
                cold_per_slice: 6,
                cache_warm_up: 2_000,
                cache_workspaces: 20_000,
            }
        } else {
            Self {
                big_events: 1_000_000,
                small_events: 10_000,
                rounds: 11,
                workspaces_per_slice: 100,
                cold_rounds: 11,
                cold_per_slice: 25,
                cache_warm_up: 5_000,
                cache_workspaces: 100_000,
            }
        }
    }
}

/// What one backend measured.
struct Figures {
    commands_ratio: f64,
    commands_min: f64,
    commands_max: f64,
    small_per_s: f64,
    big_per_s: f64,
    cold: cold::Cold,
    import_big_per_s: f64,
    events_after: [u64; 2],
}

/// Imports both logs into the stores at `small` and `big`, then measures cold loads and
/// commands on them.
async fn measure(
    kind: &str,
    small: &str,
    big: &str,
    logs: [(&Path, &Log); 2],
    plan: &Plan,
) -> Result<Figures, String> {
    let [(small_path, small_log), (big_path, big_log)] = logs;
    stores::import(small, small_path, small_log).await?;
    let import_big_per_s = stores::import(big, big_path, big_log).await?;
    eprintln!(
        "  {kind}: imported {} and {} events ({:.0} events/s for the big one)",
        big_log.events, small_log.events, import_big_per_s
    );
    let slices = 2 * plan.cold_rounds;
    let small_groups = stores::bound_only_workspaces(small_log, slices, plan.cold_per_slice)?;
    let big_groups = stores::bound_only_workspaces(big_log, slices, plan.cold_per_slice)?;
    let cold = cold::cold_ratio(small, big, &small_groups, &big_groups, plan.cold_rounds).await?;

    let small_store = Arc::new(stores::open(small, StoreOptions::default()).await?);
    let big_store = Arc::new(stores::open(big, StoreOptions::default()).await?);
    let mut contenders: Vec<Named> = vec![
        (
            "small",
            Box::new(Store::flow(
                small_store.clone(),
                1,
                plan.workspaces_per_slice,
                "s",
            )),
        ),
        (
            "big",
            Box::new(Store::flow(
                big_store.clone(),
                1,
                plan.workspaces_per_slice,
                "b",
            )),
        ),
    ];
    let measured = interleave(&mut contenders, &[("small", "big")], plan.rounds).await;
    drop(contenders);
    for store in [&small_store, &big_store] {
        stores::close(store).await;
    }
    let measured = measured?;
    let ratio = measured
        .ratios
        .first()
        .cloned()
        .ok_or("the commands comparison measured nothing")?;
    let events_after = [
        stores::count_events(small).await?,
        stores::count_events(big).await?,
    ];
    Ok(Figures {
        commands_ratio: ratio.median,
        commands_min: ratio.min,
        commands_max: ratio.max,
        small_per_s: measured.rate("small"),
        big_per_s: measured.rate("big"),
        cold,
        import_big_per_s,
        events_after,
    })
}

/// Prints one backend's figures on stderr and adds them to `out` under `prefix`.
fn report(prefix: &str, f: &Figures, out: &mut Map<String, Value>) {
    eprintln!(
        "  {prefix} commands: big {:.0}/s, small {:.0}/s; big / small median {:.3} over the \
         rounds (min {:.3}, max {:.3}); the stores held {} and {} events at the end",
        f.big_per_s,
        f.small_per_s,
        f.commands_ratio,
        f.commands_min,
        f.commands_max,
        f.events_after[1],
        f.events_after[0]
    );
    eprintln!(
        "  {prefix} cold first command: small {:.0} µs, big {:.0} µs (medians of {} each); \
         small / big median {:.3} over the rounds (min {:.3}, max {:.3})",
        f.cold.small_us, f.cold.big_us, f.cold.samples, f.cold.ratio, f.cold.min, f.cold.max
    );
    let mut put = |k: &str, v: Value| {
        out.insert(format!("{prefix}_{k}"), v);
    };
    put("commands_ratio", json!(round3(f.commands_ratio)));
    put("cold_load_ratio", json!(round3(f.cold.ratio)));
    put("commands_big_per_s", json!(f.big_per_s.round()));
    put("commands_small_per_s", json!(f.small_per_s.round()));
    put("cold_load_big_us", json!(f.cold.big_us.round()));
    put("cold_load_small_us", json!(f.cold.small_us.round()));
    put("import_events_per_s", json!(f.import_big_per_s.round()));
}

/// Runs the `scale` benchmark; returns the JSON object to print last.
///
/// # Errors
/// PostgreSQL is unavailable, a log cannot be written or imported, a command fails, or the
/// cache child fails.
pub(crate) async fn run(quick: bool) -> Result<String, String> {
    let plan = Plan::new(quick);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let (big_path, small_path) = (dir.path().join("big.jsonl"), dir.path().join("small.jsonl"));
    let big_log = write_log_with(&big_path, plan.big_events, stores::SHAPE)?;
    let small_log = write_log_with(&small_path, plan.small_events, stores::SHAPE)?;
    eprintln!(
        "scale: stores of {} events ({} workspaces) and {} events ({} workspaces), every fourth \
         workspace left after its binding; PostgreSQL and SQLite (WAL, synchronous=FULL), \
         default store options; {} command rounds of {} new workspaces per slice, {} cold \
         rounds of {} first commands per slice; {cores} cores",
        big_log.events,
        big_log.workspaces,
        small_log.events,
        small_log.workspaces,
        plan.rounds,
        plan.workspaces_per_slice,
        plan.cold_rounds,
        plan.cold_per_slice
    );
    let logs = [
        (small_path.as_path(), &small_log),
        (big_path.as_path(), &big_log),
    ];
    let mut out = Map::new();
    out.insert("bench".into(), json!("scale"));

    let url_small = pg::fresh_database("scale_small").await?;
    let url_big = match pg::fresh_database("scale_big").await {
        Ok(url) => url,
        Err(e) => {
            pg::drop_database(&url_small).await;
            return Err(e);
        }
    };
    let pg_result = async {
        let figures = measure("postgres", &url_small, &url_big, logs, &plan).await?;
        let cache = cache::measure(&url_big, plan.cache_warm_up, plan.cache_workspaces)?;
        Ok::<_, String>((figures, cache))
    }
    .await;
    pg::drop_database(&url_small).await;
    pg::drop_database(&url_big).await;
    let (pg_figures, cache) = pg_result?;

    let sqlite = |name: &str| format!("sqlite://{}", dir.path().join(name).display());
    let lite = measure(
        "sqlite",
        &sqlite("small.db"),
        &sqlite("big.db"),
        logs,
        &plan,
    )
    .await?;

    report("pg", &pg_figures, &mut out);
    report("sqlite", &lite, &mut out);
    eprintln!(
        "  cache: {:.0} bytes per cached workspace ({} workspaces after {} warm-up ones; RSS \
         {:.0} → {:.0} KiB; first half {:.0}, second half {:.0} bytes each)",
        cache.per_workspace,
        plan.cache_workspaces,
        plan.cache_warm_up,
        cache.rss_before_kib,
        cache.rss_after_kib,
        cache.first_half,
        cache.second_half
    );
    out.insert(
        "cache_bytes_per_workspace".into(),
        json!(cache.per_workspace.round()),
    );
    out.insert("cache_workspaces".into(), json!(plan.cache_workspaces));
    out.insert("big_events".into(), json!(big_log.events));
    out.insert("small_events".into(), json!(small_log.events));
    out.insert("quick".into(), json!(quick));
    Ok(Value::Object(out).to_string())
}
