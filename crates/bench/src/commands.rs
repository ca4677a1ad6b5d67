//! `billing-bench commands`: the command path against its baselines.
//!
//! Every contender runs in short slices, interleaved (a rotating order per round), and its rate is
//! total operations over total time — so a noisy neighbour slows all contenders alike instead of
//! whichever happened to run at that moment.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

use billing_domain::memory::{InMemoryExpenseCenter, InMemoryMarketplace};
use billing_domain::*;
use billing_store::{BillingStore, SqliteDurability, StoreOptions, SystemClock};
use cqrs_es::CqrsFramework;
use serde_json::json;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgPool, SqlitePool};

use crate::measure::{cpu_seconds, round3, Tally};
use crate::pg;

/// A payload and metadata of the size the store writes (an `AccountBound` event).
const PAYLOAD: &str = r#"{"AccountBound":{"account_id":"ec-000001","at":"2026-11-27T09:00:00Z","by":"alice","newly_registered":false,"user_name":"acme-finance"}}"#;
const METADATA: &str = r#"{"actor_id":"alice","actor_role":"owner","command_hash":"07d1b440861fdf6b6311822e584a38d32ed3cb18daad37edd4e2cebf7fe05ae8","command_id":"w-000001-1","hash":"c518351e562eaf31607f2f735c12c8fa467ae543020aecd40de65210110832de","occurred_at":"2026-11-27T09:00:00Z","prev_hash":"9f4af2fd2761b3600b1b2762d789c12d583bf3b20fe997a998089ec284edfbde","recorded_at":"2026-11-27T09:00:00Z"}"#;

const WRITERS: usize = 8;

/// (baseline, contender) pairs whose ratio the benchmark reports.
const PAIRS: [(&str, &str); 5] = [
    ("raw_insert_seq", "store_seq"),
    ("raw_insert_seq", "store_seq_1ev"),
    ("raw_insert_8", "store_8"),
    ("postgres_es_seq", "store_seq"),
    ("sqlite_raw_insert", "sqlite_store"),
];

/// Services with in-memory ports (the user name `acme-finance` exists) and the built-in policy.
pub(crate) fn services() -> WorkspaceServices {
    let expense_center = Arc::new(InMemoryExpenseCenter::new());
    if let Ok(name) = UserName::parse("acme-finance") {
        expense_center.add(&name);
    }
    WorkspaceServices {
        expense_center,
        marketplace: Arc::new(InMemoryMarketplace::new()),
        policy: Arc::new(SitePolicy::builtin()),
        clock: Arc::new(SystemClock),
    }
}

/// The three commands that upgrade workspace `w`: a request, a verified binding, and the
/// agreement (which writes two events).
fn flow(prefix: &str, w: usize) -> Result<(WorkspaceId, Vec<WorkspaceCommand>), String> {
    let build = || -> Result<_, DomainError> {
        let id = WorkspaceId::parse(&format!("{prefix}-{w:07}"))?;
        let owner = Actor::new(ActorId::parse("alice")?, Role::Owner);
        let actions = [
            Action::RequestUpgrade {
                site: SiteId::parse("us1")?,
            },
            Action::BindAccount {
                user_name: UserName::parse("acme-finance")?,
            },
            Action::AcceptAgreement {
                version: AgreementVersion::parse("2024-06")?,
            },
        ];
        let mut commands = Vec::new();
        for (i, a) in actions.into_iter().enumerate() {
            commands.push(WorkspaceCommand::new(
                ExternalId::parse(&format!("{id}-{i}"))?,
                owner.clone(),
                a,
            ));
        }
        Ok((id, commands))
    };
    build().map_err(|e| e.to_string())
}

type Slice<'a> = Pin<Box<dyn Future<Output = Result<usize, String>> + 'a>>;

/// One contender: runs a slice of work and reports how many operations it did.
trait Contender {
    /// Builds the inputs of slice `slice` (untimed: a host builds its commands anyway).
    fn prepare(&mut self, slice: usize) -> Result<(), String> {
        let _ = slice;
        Ok(())
    }
    /// Runs slice `slice` (timed) and says how many operations it did.
    fn slice(&mut self, slice: usize) -> Slice<'_>;
}

type Inputs = Vec<Vec<(WorkspaceId, Vec<WorkspaceCommand>)>>;

struct Store {
    store: Arc<BillingStore>,
    writers: usize,
    workspaces_per_writer: usize,
    prefix: &'static str,
    /// How many commands of the flow to run per workspace: 3 (the documented flow, four events)
    /// or 1 (only the request: one event per command).
    steps: usize,
    /// Per writer, the workspaces and commands of the prepared slice.
    inputs: Inputs,
}

impl Contender for Store {
    fn prepare(&mut self, slice: usize) -> Result<(), String> {
        self.inputs = (0..self.writers)
            .map(|writer| {
                let prefix = format!("{}{slice}-{writer}", self.prefix);
                (0..self.workspaces_per_writer)
                    .map(|w| {
                        flow(&prefix, w).map(|(id, mut commands)| {
                            commands.truncate(self.steps);
                            (id, commands)
                        })
                    })
                    .collect::<Result<Vec<_>, String>>()
            })
            .collect::<Result<Inputs, String>>()?;
        Ok(())
    }

    fn slice(&mut self, _slice: usize) -> Slice<'_> {
        Box::pin(async move {
            let mut tasks = Vec::new();
            for workspaces in std::mem::take(&mut self.inputs) {
                let store = self.store.clone();
                tasks.push(tokio::spawn(async move {
                    let mut done = 0;
                    for (id, commands) in &workspaces {
                        for c in commands {
                            store.execute(id, c).await.map_err(|e| e.to_string())?;
                            done += 1;
                        }
                    }
                    Ok::<_, String>(done)
                }));
            }
            let mut done = 0;
            for t in tasks {
                done += t.await.map_err(|e| e.to_string())??;
            }
            Ok(done)
        })
    }
}

struct RawPg {
    pool: PgPool,
    writers: usize,
    rows_per_writer: usize,
}

impl Contender for RawPg {
    fn slice(&mut self, slice: usize) -> Slice<'_> {
        Box::pin(async move {
            let mut tasks = Vec::new();
            for writer in 0..self.writers {
                let pool = self.pool.clone();
                let n = self.rows_per_writer;
                let id = format!("w{slice}-{writer}");
                tasks.push(tokio::spawn(async move {
                    // The connection is held for the whole slice: no pool round trips at all.
                    let mut conn = pool.acquire().await.map_err(|e| e.to_string())?;
                    for i in 0..n {
                        sqlx::query(
                            "INSERT INTO raw_events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata) \
                             VALUES ('workspace', $1, $2, 'AccountBound', '1.0', $3::json, $4::json)",
                        )
                        .bind(id.as_str())
                        .bind(i as i64 + 1)
                        .bind(PAYLOAD)
                        .bind(METADATA)
                        .execute(&mut *conn)
                        .await
                        .map_err(|e| e.to_string())?;
                    }
                    Ok::<_, String>(n)
                }));
            }
            let mut done = 0;
            for t in tasks {
                done += t.await.map_err(|e| e.to_string())??;
            }
            Ok(done)
        })
    }
}

struct PostgresEs {
    cqrs: CqrsFramework<
        Workspace,
        cqrs_es::persist::PersistedEventStore<postgres_es::PostgresEventRepository, Workspace>,
    >,
    workspaces: usize,
    inputs: Vec<(WorkspaceId, Vec<WorkspaceCommand>)>,
}

impl Contender for PostgresEs {
    fn prepare(&mut self, slice: usize) -> Result<(), String> {
        self.inputs = (0..self.workspaces)
            .map(|w| flow(&format!("pges{slice}"), w))
            .collect::<Result<_, _>>()?;
        Ok(())
    }

    fn slice(&mut self, _slice: usize) -> Slice<'_> {
        Box::pin(async move {
            let mut done = 0;
            for (id, commands) in std::mem::take(&mut self.inputs) {
                for c in commands {
                    self.cqrs
                        .execute(id.as_str(), c)
                        .await
                        .map_err(|e| e.to_string())?;
                    done += 1;
                }
            }
            Ok(done)
        })
    }
}

struct RawSqlite {
    pool: SqlitePool,
    rows: usize,
}

impl Contender for RawSqlite {
    fn slice(&mut self, slice: usize) -> Slice<'_> {
        Box::pin(async move {
            let id = format!("w{slice}");
            let mut conn = self.pool.acquire().await.map_err(|e| e.to_string())?;
            for i in 0..self.rows {
                sqlx::query(
                    "INSERT INTO raw_events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata) \
                     VALUES ('workspace', ?1, ?2, 'AccountBound', '1.0', ?3, ?4)",
                )
                .bind(id.as_str())
                .bind(i as i64 + 1)
                .bind(PAYLOAD)
                .bind(METADATA)
                .execute(&mut *conn)
                .await
                .map_err(|e| e.to_string())?;
            }
            Ok(self.rows)
        })
    }
}

const RAW_TABLE_PG: &str =
    "CREATE TABLE raw_events (aggregate_type text NOT NULL, aggregate_id text NOT NULL, \
     sequence bigint NOT NULL, event_type text NOT NULL, event_version text NOT NULL, \
     payload json NOT NULL, metadata json NOT NULL, \
     PRIMARY KEY (aggregate_type, aggregate_id, sequence))";

async fn raw_pg(url: &str, writers: usize, rows_per_writer: usize) -> Result<RawPg, String> {
    let pool = pg::pool(url, writers as u32).await?;
    sqlx::query(RAW_TABLE_PG)
        .execute(&pool)
        .await
        .map_err(|e| e.to_string())?;
    Ok(RawPg {
        pool,
        writers,
        rows_per_writer,
    })
}

async fn postgres_es(url: &str, workspaces: usize) -> Result<PostgresEs, String> {
    let pool = postgres_es::default_postgress_pool(url).await;
    for sql in [
        "CREATE TABLE events (aggregate_type text NOT NULL, aggregate_id text NOT NULL, \
         sequence bigint CHECK (sequence >= 0) NOT NULL, event_type text NOT NULL, \
         event_version text NOT NULL, payload json NOT NULL, metadata json NOT NULL, \
         PRIMARY KEY (aggregate_type, aggregate_id, sequence))",
        "CREATE TABLE snapshots (aggregate_type text NOT NULL, aggregate_id text NOT NULL, \
         last_sequence bigint CHECK (last_sequence >= 0) NOT NULL, \
         current_snapshot bigint CHECK (current_snapshot >= 0) NOT NULL, payload json NOT NULL, \
         PRIMARY KEY (aggregate_type, aggregate_id, last_sequence))",
    ] {
        sqlx::query(sql)
            .execute(&pool)
            .await
            .map_err(|e| e.to_string())?;
    }
    Ok(PostgresEs {
        cqrs: postgres_es::postgres_cqrs(pool, vec![], services()),
        workspaces,
        inputs: Vec::new(),
    })
}

async fn raw_sqlite(path: &std::path::Path, rows: usize) -> Result<RawSqlite, String> {
    let options = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full);
    let pool = SqlitePoolOptions::new()
        .max_connections(1)
        .test_before_acquire(false)
        .connect_with(options)
        .await
        .map_err(|e| e.to_string())?;
    sqlx::query(
        "CREATE TABLE raw_events (aggregate_type TEXT NOT NULL, aggregate_id TEXT NOT NULL, \
         sequence INTEGER NOT NULL, event_type TEXT NOT NULL, event_version TEXT NOT NULL, \
         payload TEXT NOT NULL, metadata TEXT NOT NULL, \
         PRIMARY KEY (aggregate_type, aggregate_id, sequence)) STRICT",
    )
    .execute(&pool)
    .await
    .map_err(|e| e.to_string())?;
    Ok(RawSqlite { pool, rows })
}

/// Runs the `commands` benchmark; returns the JSON object to print last.
pub(crate) async fn run(quick: bool) -> Result<String, String> {
    // Slices of roughly a quarter second each; quick runs fewer.
    let (slices, seq_workspaces, par_workspaces, pges_workspaces) = if quick {
        (5, 60, 25, 25)
    } else {
        (15, 150, 60, 60)
    };
    let server = pg::server_url();
    let settings: (String, String, String) = {
        let pool = pg::pool(&server, 1).await?;
        let row = sqlx::query_as(
            "SELECT current_setting('server_version'), current_setting('synchronous_commit'), current_setting('fsync')",
        )
        .fetch_one(&pool)
        .await
        .map_err(|e| e.to_string())?;
        pool.close().await;
        row
    };
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    eprintln!(
        "commands: PostgreSQL {} (synchronous_commit={}, fsync={}); SQLite WAL synchronous=FULL; {slices} interleaved slices; {cores} cores",
        settings.0, settings.1, settings.2
    );

    let mut databases = Vec::new();
    let url_raw1 = pg::fresh_database("raw1").await?;
    let url_raw8 = pg::fresh_database("raw8").await?;
    let url_store = pg::fresh_database("store").await?;
    let url_pges = pg::fresh_database("pges").await?;
    databases.extend([
        url_raw1.clone(),
        url_raw8.clone(),
        url_store.clone(),
        url_pges.clone(),
    ]);
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;

    let result = async {
        let store_options = StoreOptions {
            max_connections: WRITERS as u32,
            ..StoreOptions::default()
        };
        let pg_store = Arc::new(
            BillingStore::open_with(&url_store, services(), store_options.clone())
                .await
                .map_err(|e| e.to_string())?,
        );
        // The sequential contenders each get one connection, like the raw baseline's pool.
        let pg_store_1 = Arc::new(
            BillingStore::open_with(
                &url_store,
                services(),
                StoreOptions {
                    max_connections: 1,
                    ..StoreOptions::default()
                },
            )
            .await
            .map_err(|e| e.to_string())?,
        );
        let sqlite_url = format!("sqlite://{}", dir.path().join("store.db").display());
        let sqlite_store = Arc::new(
            BillingStore::open_with(
                &sqlite_url,
                services(),
                StoreOptions {
                    sqlite_durability: SqliteDurability::Full,
                    ..StoreOptions::default()
                },
            )
            .await
            .map_err(|e| e.to_string())?,
        );
        let mut contenders: Vec<(&'static str, Box<dyn Contender>)> = vec![
            (
                "raw_insert_seq",
                Box::new(raw_pg(&url_raw1, 1, seq_workspaces * 3).await?),
            ),
            (
                "store_seq",
                Box::new(Store {
                    store: pg_store_1.clone(),
                    writers: 1,
                    workspaces_per_writer: seq_workspaces,
                    prefix: "s",
                    steps: 3,
                    inputs: Vec::new(),
                }),
            ),
            (
                "store_seq_1ev",
                Box::new(Store {
                    store: pg_store_1.clone(),
                    writers: 1,
                    workspaces_per_writer: seq_workspaces * 3,
                    prefix: "o",
                    steps: 1,
                    inputs: Vec::new(),
                }),
            ),
            (
                "raw_insert_8",
                Box::new(raw_pg(&url_raw8, WRITERS, par_workspaces * 3).await?),
            ),
            (
                "store_8",
                Box::new(Store {
                    store: pg_store.clone(),
                    writers: WRITERS,
                    workspaces_per_writer: par_workspaces,
                    prefix: "p",
                    steps: 3,
                    inputs: Vec::new(),
                }),
            ),
            (
                "postgres_es_seq",
                Box::new(postgres_es(&url_pges, pges_workspaces).await?),
            ),
            (
                "sqlite_raw_insert",
                Box::new(raw_sqlite(&dir.path().join("raw.db"), seq_workspaces * 3).await?),
            ),
            (
                "sqlite_store",
                Box::new(Store {
                    store: sqlite_store,
                    writers: 1,
                    workspaces_per_writer: seq_workspaces,
                    prefix: "l",
                    steps: 3,
                    inputs: Vec::new(),
                }),
            ),
        ];
        // Warm up every contender (connections, prepared statements, caches) untimed.
        for (_, c) in contenders.iter_mut() {
            c.prepare(1_000_000)?;
            c.slice(1_000_000).await?;
        }
        let index = |name: &str| contenders.iter().position(|(n, _)| *n == name);
        let pairs: Vec<(usize, usize)> = PAIRS
            .iter()
            .filter_map(|(base, other)| Some((index(base)?, index(other)?)))
            .collect();
        let mut tallies = vec![Tally::default(); contenders.len()];
        let mut ratios: Vec<Vec<f64>> = vec![Vec::new(); pairs.len()];
        let mut slice_no = 0;
        for _ in 0..slices {
            for (p, &(base, other)) in pairs.iter().enumerate() {
                // A B B A: both sides see the same conditions on average.
                let mut rates = [0.0f64; 2];
                for (side, i) in [(0, base), (1, other), (1, other), (0, base)] {
                    slice_no += 1;
                    contenders[i].1.prepare(slice_no)?;
                    let cpu = cpu_seconds();
                    let start = Instant::now();
                    let ops = contenders[i].1.slice(slice_no).await?;
                    let secs = start.elapsed().as_secs_f64();
                    tallies[i].secs += secs;
                    tallies[i].ops += ops;
                    tallies[i].cpu += cpu_seconds() - cpu;
                    rates[side] += ops as f64 / secs;
                }
                if rates[0] > 0.0 {
                    ratios[p].push(rates[1] / rates[0]);
                }
            }
        }
        for ((name, _), t) in contenders.iter().zip(&tallies) {
            eprintln!(
                "  {name:<18} {:>8.0} ops/s  ({} ops in {:.2}s; client CPU {:.0} µs/op)",
                t.rate(),
                t.ops,
                t.secs,
                t.cpu_us_per_op()
            );
        }
        let mut medians = Vec::new();
        for (p, &(base, other)) in pairs.iter().enumerate() {
            let mut r = ratios[p].clone();
            r.sort_by(f64::total_cmp);
            let median = r.get(r.len() / 2).copied().unwrap_or(0.0);
            eprintln!(
                "  {} / {}: median {:.3} over {} slice pairs (min {:.3}, max {:.3})",
                contenders[other].0,
                contenders[base].0,
                median,
                r.len(),
                r.first().copied().unwrap_or(0.0),
                r.last().copied().unwrap_or(0.0)
            );
            medians.push((contenders[other].0, contenders[base].0, median));
        }
        Ok::<_, String>((
            contenders.iter().map(|(n, _)| *n).collect::<Vec<_>>(),
            tallies,
            medians,
        ))
    }
    .await;
    for url in &databases {
        pg::drop_database(url).await;
    }
    let (names, tallies, medians) = result?;
    let rate = |name: &str| {
        names
            .iter()
            .position(|n| *n == name)
            .map_or(0.0, |i| tallies[i].rate())
    };
    // The ratio of a pair: the median of its per-slice ratios.
    let ratio = |a: &str, b: &str| {
        medians
            .iter()
            .find(|(x, y, _)| *x == a && *y == b)
            .map_or(0.0, |(_, _, m)| *m)
    };
    let mut out = json!({
        "bench": "commands",
        "vs_raw_insert_seq": round3(ratio("store_seq", "raw_insert_seq")),
        "vs_raw_insert_8": round3(ratio("store_8", "raw_insert_8")),
        "vs_postgres_es_seq": round3(ratio("store_seq", "postgres_es_seq")),
        "sqlite_vs_raw_insert": round3(ratio("sqlite_store", "sqlite_raw_insert")),
        "single_event_vs_raw_insert_seq": round3(ratio("store_seq_1ev", "raw_insert_seq")),
        "postgres_es_vs_raw_insert_seq": round3(if rate("raw_insert_seq") > 0.0 { rate("postgres_es_seq") / rate("raw_insert_seq") } else { 0.0 }),
        "quick": quick,
    });
    for name in &names {
        out[format!("{name}_per_s")] = json!(rate(name).round());
    }
    Ok(out.to_string())
}
