//! `billing-bench profile-commands CONTENDER OPS` (hidden): one contender of `commands` alone,
//! for profilers and counters rather than ratios.
//!
//! It builds the contender as `commands` does (same pools, durability and flow), runs one
//! untimed warm-up slice, then one measured slice of about `OPS` operations, and prints one
//! JSON object: operations, seconds, this process's CPU per operation and, on PostgreSQL, what
//! the server spent on them — the CPU of every process of the server's cluster (the postmaster
//! and its children, from `/proc`), its WAL bytes (`pg_stat_wal`), transactions
//! (`pg_stat_database`), and, when the `pg_stat_statements` extension is loaded, calls, WAL
//! bytes and execution time per operation of each statement the database ran.
//!
//! `BILLING_BENCH_PROFILE_SQL`, when set, is run (as one script) on the contender's database
//! after it is set up and before the warm-up: a schema variant (an index dropped, a constraint
//! changed) measured with the same binary.
//!
//! Uses: `perf record -p`, `valgrind --tool=callgrind` (two runs with different `OPS`; the
//! difference of their instruction counts divided by the difference of `OPS` is the cost of
//! one operation, whatever the start-up costs), `perf stat`. The measured slice does the same
//! work as a slice of `commands`; nothing is interleaved, so its rate is not a figure to quote.

use std::collections::BTreeMap;
use std::time::Instant;

use serde_json::{json, Value};
use sqlx::PgPool;

use super::baselines::{postgres_es, raw_pg, raw_sqlite, sqlite_es};
use super::{open, open_with, WRITERS};
use crate::contender::{Contender, Store};
use crate::measure::{cpu_seconds, round3};
use crate::pg;
use billing_store::SqliteDurability;

/// The hidden subcommand.
pub(crate) const PROFILE: &str = "profile-commands";

/// The contenders `profile-commands` knows (the names `commands` prints).
const NAMES: [&str; 11] = [
    "raw_insert_seq",
    "store_seq",
    "store_seq_1ev",
    "raw_insert_8",
    "store_8",
    "postgres_es_seq",
    "sqlite_raw_insert",
    "sqlite_store",
    "sqlite_store_8",
    "sqlite_store_normal",
    "sqlite_es_seq_normal",
];

/// CPU seconds (user + system) of the PostgreSQL cluster whose postmaster is `postmaster`: it
/// and every process it started (backends, WAL writer, checkpointer, …).
fn cluster_cpu_seconds(postmaster: u32) -> f64 {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return 0.0;
    };
    let mut total = 0.0;
    for entry in dir.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let Some((_, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        // After the name: state, ppid, …; utime and stime are the 12th and 13th.
        let ppid = fields.get(1).and_then(|v| v.parse::<u32>().ok());
        if pid != postmaster && ppid != Some(postmaster) {
            continue;
        }
        let ticks = |i: usize| {
            fields
                .get(i)
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or(0.0)
        };
        total += (ticks(11) + ticks(12)) / 100.0;
    }
    total
}

/// The postmaster of the server behind `pool` (the parent of one of its backends).
async fn postmaster(pool: &PgPool) -> Result<u32, String> {
    let backend: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(pool)
        .await
        .map_err(|e| e.to_string())?;
    let stat = std::fs::read_to_string(format!("/proc/{backend}/stat")).map_err(|e| {
        format!("cannot read the server's backend {backend} in /proc (is the server on this machine?): {e}")
    })?;
    stat.rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().nth(1))
        .and_then(|p| p.parse().ok())
        .ok_or_else(|| format!("no parent in /proc/{backend}/stat"))
}

/// What the server's counters say at one moment.
#[derive(Default)]
struct ServerCounters {
    /// CPU seconds of the cluster's processes.
    cpu: f64,
    wal_bytes: f64,
    commits: f64,
    /// Per statement (its text): calls, WAL bytes, execution milliseconds, rows.
    statements: BTreeMap<String, [f64; 4]>,
}

async fn server_counters(
    admin: &PgPool,
    postmaster: u32,
    database: &str,
) -> Result<ServerCounters, String> {
    let wal_bytes: f64 = sqlx::query_scalar("SELECT wal_bytes::float8 FROM pg_stat_wal")
        .fetch_one(admin)
        .await
        .map_err(|e| e.to_string())?;
    let commits: f64 =
        sqlx::query_scalar("SELECT xact_commit::float8 FROM pg_stat_database WHERE datname = $1")
            .bind(database)
            .fetch_one(admin)
            .await
            .map_err(|e| e.to_string())?;
    let has_statements: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_stat_statements')",
    )
    .fetch_one(admin)
    .await
    .map_err(|e| e.to_string())?;
    let mut statements = BTreeMap::new();
    if has_statements {
        let rows: Vec<(String, f64, f64, f64, f64)> = sqlx::query_as(
            "SELECT s.query, s.calls::float8, s.wal_bytes::float8, s.total_exec_time, s.rows::float8 \
             FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid WHERE d.datname = $1",
        )
        .bind(database)
        .fetch_all(admin)
        .await
        .map_err(|e| e.to_string())?;
        for (query, calls, wal, ms, rows) in rows {
            let e = statements.entry(query).or_insert([0.0; 4]);
            e[0] += calls;
            e[1] += wal;
            e[2] += ms;
            e[3] += rows;
        }
    }
    Ok(ServerCounters {
        cpu: cluster_cpu_seconds(postmaster),
        wal_bytes,
        commits,
        statements,
    })
}

/// The variable naming a schema variant's SQL.
const PROFILE_SQL: &str = "BILLING_BENCH_PROFILE_SQL";

/// Runs `sql` on the contender's database: `url` on PostgreSQL, every SQLite file in `dir`.
async fn variant(sql: &str, on_pg: bool, url: &str, dir: &std::path::Path) -> Result<(), String> {
    if on_pg {
        let pool = pg::pool(url, 1).await?;
        sqlx::raw_sql(sql)
            .execute(&pool)
            .await
            .map_err(|e| format!("{PROFILE_SQL}: {e}"))?;
        pool.close().await;
        return Ok(());
    }
    let files = std::fs::read_dir(dir).map_err(|e| e.to_string())?;
    for file in files.flatten() {
        let path = file.path();
        if path.extension().and_then(|e| e.to_str()) != Some("db") {
            continue;
        }
        let options = sqlx::sqlite::SqliteConnectOptions::new().filename(&path);
        let pool = sqlx::sqlite::SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await
            .map_err(|e| e.to_string())?;
        sqlx::raw_sql(sql)
            .execute(&pool)
            .await
            .map_err(|e| format!("{PROFILE_SQL} on {}: {e}", path.display()))?;
        pool.close().await;
    }
    Ok(())
}

/// Builds contender `name` on `url` (PostgreSQL) or in `dir` (SQLite) for about `ops`
/// operations per slice.
async fn build(
    name: &str,
    url: &str,
    dir: &std::path::Path,
    ops: usize,
) -> Result<(Box<dyn Contender>, usize), String> {
    let sqlite = |file: &str| format!("sqlite://{}", dir.join(file).display());
    let flows = |writers: usize| (ops / (3 * writers)).max(1);
    Ok(match name {
        "raw_insert_seq" => (Box::new(raw_pg(url, 1, ops).await?), ops),
        "raw_insert_8" => {
            let per = (ops / WRITERS).max(1);
            (Box::new(raw_pg(url, WRITERS, per).await?), per * WRITERS)
        }
        "store_seq" => {
            let store = open(url, 1).await?;
            (Box::new(Store::flow(store, 1, flows(1), "s")), flows(1) * 3)
        }
        "store_seq_1ev" => {
            let store = open(url, 1).await?;
            (
                Box::new(Store {
                    steps: 1,
                    ..Store::flow(store, 1, ops, "o")
                }),
                ops,
            )
        }
        "store_8" => {
            let store = open(url, WRITERS as u32).await?;
            (
                Box::new(Store::flow(store, WRITERS, flows(WRITERS), "p")),
                flows(WRITERS) * 3 * WRITERS,
            )
        }
        "postgres_es_seq" => (Box::new(postgres_es(url, flows(1)).await?), flows(1) * 3),
        "sqlite_raw_insert" => (
            Box::new(raw_sqlite(&dir.join("raw.db"), 1, ops).await?),
            ops,
        ),
        "sqlite_store" => {
            let store = open(&sqlite("store.db"), 1).await?;
            (Box::new(Store::flow(store, 1, flows(1), "l")), flows(1) * 3)
        }
        "sqlite_store_8" => {
            let store = open(&sqlite("store8.db"), WRITERS as u32).await?;
            (
                Box::new(Store::flow(store, WRITERS, flows(WRITERS), "q")),
                flows(WRITERS) * 3 * WRITERS,
            )
        }
        "sqlite_store_normal" => {
            let store = open_with(&sqlite("normal.db"), 1, SqliteDurability::Normal).await?;
            (Box::new(Store::flow(store, 1, flows(1), "n")), flows(1) * 3)
        }
        "sqlite_es_seq_normal" => (
            Box::new(sqlite_es(&dir.join("sqlite_es_normal.db"), flows(1), false).await?),
            flows(1) * 3,
        ),
        other => {
            return Err(format!(
                "no contender named {other}; one of {}",
                NAMES.join(", ")
            ))
        }
    })
}

/// Runs `profile-commands NAME OPS`; returns the JSON object to print last.
///
/// # Errors
/// An unknown contender, PostgreSQL unavailable, or a slice fails.
pub(crate) async fn run(name: &str, ops: &str) -> Result<String, String> {
    let ops: usize = ops
        .parse()
        .map_err(|e| format!("OPS must be a count, not {ops:?}: {e}"))?;
    let on_pg = !name.starts_with("sqlite");
    let url = if on_pg {
        pg::fresh_database("profile").await?
    } else {
        String::new()
    };
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let result = async {
        let (mut contender, planned) = build(name, &url, dir.path(), ops).await?;
        if let Ok(sql) = std::env::var(PROFILE_SQL) {
            variant(&sql, on_pg, &url, dir.path()).await?;
        }
        contender.prepare(1_000_000)?;
        contender.slice(1_000_000).await?;
        let server = if on_pg {
            let admin = pg::pool(&pg::server_url(), 1).await?;
            let postmaster = postmaster(&admin).await?;
            Some((admin, postmaster))
        } else {
            None
        };
        let database = url.rsplit('/').next().unwrap_or_default().to_owned();
        contender.prepare(1)?;
        let before = match &server {
            Some((admin, pm)) => Some(server_counters(admin, *pm, &database).await?),
            None => None,
        };
        let cpu = cpu_seconds();
        let start = Instant::now();
        let done = contender.slice(1).await?;
        let secs = start.elapsed().as_secs_f64();
        let cpu = cpu_seconds() - cpu;
        // The server's CPU now, before the contender's backends end (an ended process's CPU
        // leaves `/proc` with it).
        let server_cpu = server.as_ref().map(|(_, pm)| cluster_cpu_seconds(*pm));
        // Close the contender's connections: a backend that ends reports its statistics
        // (`pg_stat_database` would otherwise lag by up to its idle interval).
        drop(contender);
        tokio::time::sleep(std::time::Duration::from_millis(1_000)).await;
        let after = match &server {
            Some((admin, pm)) => Some(server_counters(admin, *pm, &database).await?),
            None => None,
        };
        let per = |x: f64| round3(x / done.max(1) as f64);
        let mut out = json!({
            "bench": PROFILE,
            "contender": name,
            "ops": done,
            "planned_ops": planned,
            "secs": round3(secs),
            "ops_per_s": (done as f64 / secs).round(),
            "client_cpu_us_per_op": per(cpu * 1e6),
        });
        if let (Some(b), Some(a), Some(server_cpu)) = (before, after, server_cpu) {
            out["server_cpu_us_per_op"] = json!(per((server_cpu - b.cpu) * 1e6));
            out["wal_bytes_per_op"] = json!(per(a.wal_bytes - b.wal_bytes));
            out["commits_per_op"] = json!(per(a.commits - b.commits));
            let mut statements: Vec<Value> = Vec::new();
            for (query, now) in &a.statements {
                let was = b.statements.get(query).copied().unwrap_or([0.0; 4]);
                let calls = now[0] - was[0];
                if calls <= 0.0 {
                    continue;
                }
                let text: String = query.chars().take(160).collect();
                statements.push(json!({
                    "query": text,
                    "calls_per_op": per(calls),
                    "wal_bytes_per_op": per(now[1] - was[1]),
                    "exec_us_per_op": per((now[2] - was[2]) * 1e3),
                    "rows_per_op": per(now[3] - was[3]),
                }));
            }
            out["statements"] = Value::Array(statements);
        }
        Ok::<_, String>(out.to_string())
    }
    .await;
    if on_pg {
        pg::drop_database(&url).await;
    }
    result
}
