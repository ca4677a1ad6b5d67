//! `billing-reliability soak`: many concurrent writers over many workspaces, valid and refused
//! commands mixed, and every few commands all writers racing on one hot workspace at once; then
//! the totals are reconciled against the store and every invariant is checked.
//!
//! Time runs fast (a calendar month every `--month-ms` of real time, through the store's injected
//! clock), so the once-a-month settlement rule lets workspaces change settlement many times in
//! one run instead of refusing every change after the first.
//!
//! - `clock`: the fast clock;
//! - `commands`: the command table, what each writer sends and what it must get back;
//! - `writer`: one writer's workspaces and loop, and the report of what it saw;
//! - `reconcile`: the reports against the store, every invariant, the summary.

mod clock;
mod commands;
mod reconcile;
mod writer;

use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::{Duration, Instant};

use billing_adapters::Embedded;
use billing_domain::{DomainError, Email, SitePolicy, UserName, WorkspaceId};
use billing_store::StoreOptions;
use chrono::Utc;
use tokio::sync::Barrier;

use crate::exec::persist;
use crate::rng::Rng;
use clock::FastClock;

/// What to run.
#[derive(Debug, Clone)]
pub(crate) struct SoakArgs {
    /// Database URL.
    pub(crate) db: String,
    /// Concurrent writers.
    pub(crate) writers: usize,
    /// Workspaces (including the hot ones).
    pub(crate) workspaces: usize,
    /// Commands in all.
    pub(crate) commands: u64,
    /// Hot workspaces all writers race on.
    pub(crate) hot: usize,
    /// A race every this many commands of each writer.
    pub(crate) race_every: u64,
    /// Real milliseconds per simulated calendar month.
    pub(crate) month_ms: u64,
    /// Seed of the workload.
    pub(crate) seed: u64,
}

/// What every writer shares: the store, the hot workspaces and shared accounts, the totals.
struct Ctx {
    embedded: Embedded,
    policy: SitePolicy,
    prefix: String,
    hot: Vec<WorkspaceId>,
    shared: Vec<UserName>,
    barrier: Barrier,
    totals: Totals,
    races: u64,
    args: SoakArgs,
}

/// Counts the writers add to as they go.
#[derive(Default)]
struct Totals {
    conflicts: AtomicU64,
    conflicts_exhausted: AtomicU64,
    subscriptions: AtomicU64,
    races: AtomicU64,
}

/// Accounts registered up front, which writers bind (and race to bind) to many workspaces.
const SHARED: usize = 16;

/// Runs the soak; returns the JSON summary and whether no invariant broke.
pub(crate) async fn run(args: SoakArgs) -> Result<(serde_json::Value, bool), String> {
    let started = Instant::now();
    let writers = args.writers.max(1);
    let hot_count = args.hot.min(args.workspaces);
    let run_id = Utc::now().timestamp_millis();
    let prefix = format!("s{run_id:x}-");
    let clock = Arc::new(FastClock::month_every(args.month_ms));
    let options = StoreOptions {
        max_connections: u32::try_from(writers + 4).unwrap_or(u32::MAX),
        ..StoreOptions::default()
    };
    let embedded = Embedded::open_with(&args.db, options, SitePolicy::builtin(), clock)
        .await
        .map_err(|e| format!("opening the store: {e}"))?;
    let bad = |e: DomainError| format!("the soak made a bad value: {e}");
    let mut shared = Vec::new();
    for k in 0..SHARED {
        let user_name = UserName::parse(&format!("{prefix}shared-{k}")).map_err(bad)?;
        let email = Email::parse(&format!("shared-{k}@soak.example.com")).map_err(bad)?;
        persist(
            "registering the shared accounts",
            Duration::from_secs(30),
            || embedded.expense_center.register(&user_name, &email),
        )
        .await?;
        shared.push(user_name);
    }
    let hot = (0..hot_count)
        .map(|h| WorkspaceId::parse(&format!("{prefix}hot-{h}")))
        .collect::<Result<Vec<_>, _>>()
        .map_err(bad)?;
    let per_writer = args.commands / writers as u64;
    let races = if hot.is_empty() || args.race_every == 0 {
        0
    } else {
        per_writer / args.race_every
    };
    let ctx = Arc::new(Ctx {
        embedded,
        policy: SitePolicy::builtin(),
        prefix,
        hot,
        shared,
        barrier: Barrier::new(writers),
        totals: Totals::default(),
        races,
        args: args.clone(),
    });
    // Ordinary workspaces, dealt round-robin to the writers (one writer each: no races there).
    let ordinary = args.workspaces - hot_count;
    let mut tasks = Vec::new();
    for k in 0..writers {
        let quota = per_writer + u64::from((k as u64) < args.commands % writers as u64);
        let owned = writer::owned_workspaces(&ctx, k, writers, ordinary)?;
        let ctx = ctx.clone();
        let seed = args.seed;
        tasks.push(tokio::spawn(async move {
            writer::writer(&ctx, k, quota, owned, Rng::for_item(seed, k as u64)).await
        }));
    }
    let mut reports = Vec::new();
    for task in tasks {
        reports.push(task.await.map_err(|e| format!("a writer stopped: {e}"))?);
    }
    let load_seconds = started.elapsed().as_secs_f64();
    reconcile::reconcile(&ctx, reports, load_seconds, started).await
}
