//! `billing-bench http`: the documented flow over HTTP against the same flow in-process.
//!
//! - **http**: a real `billing serve` child process (`--billing-bin`, default the `billing` next
//!   to this binary) on a fresh PostgreSQL database, `--listen 127.0.0.1:0`, `--auth-key` a
//!   fresh random key file. Eight clients (reqwest, one kept-alive HTTP/1.1 connection each),
//!   each on its own workspaces, send per workspace `POST …/upgrade {site: us1}`,
//!   `…/account/register {username, email}` (a unique user name), `…/agreement/accept
//!   {version: 2024-06}` and `…/settlement {method: aws, account}` (an AWS account subscribed
//!   in that database beforehand), each with its own `Idempotency-Key` and the workspace
//!   owner's bearer token (HS256, issued in-process with the same key). Every response must be
//!   200 (and not a replay); anything else fails the benchmark.
//! - **in_process** (the baseline): the same four commands per workspace through `Embedded` (as
//!   `billing serve` opens it: default store options, the projector running) and
//!   `BillingStore::execute_with_retry`, from eight tasks, on a fresh database of the same
//!   server.
//!
//! Every slice gets its own fresh database (and the http slice its own server process), warmed
//! up untimed by a few workspaces per client; the slices run A-B-B-A (in-process, http, http,
//! in-process) per round, and `http_vs_in_process` is the median over rounds of the http
//! slices' rates ÷ the in-process slices' rates. Latency is per command: for http from sending
//! the request to having read the whole response body; in-process around `execute_with_retry`.
//! Targets: `http_vs_in_process` ≥ 0.7 and the http p99 ≤ 25 ms.
//!
//! Also reported, to say where the time goes: CPU per command of this process (the in-process
//! store, or the HTTP clients), of the server process and of every `postgres` process, and the
//! machine's busy share; and per command what each database saw over its life
//! (`pg_stat_database`: transactions, rows read and written; migrations and warm-up included,
//! alike on both sides). The server runs with `--deliver-every 0`: its periodic hand-over of
//! pending notices to the mailer (two UPDATE transactions per opening reminder), which the
//! in-process side does not do, stays out of the timed slices; it delivers once when it stops.

mod server;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use billing_adapters::Embedded;
use billing_domain::{
    Action, Actor, ActorId, AgreementVersion, CloudAccount, Email, ExternalId, MethodId, Role,
    SiteId, UserName, WorkspaceCommand, WorkspaceId,
};
use billing_http::{Grant, JwtAuth};
use billing_store::{BillingStore, RetryPolicy, StoreOptions};
use serde_json::json;

use crate::measure::{median_min_max, round3};
use crate::pg;
use server::{Cpu, HttpWork, Request, Server};

/// Concurrent clients (and in-process tasks).
const CLIENTS: usize = 8;
/// Untimed workspaces per client before each timed slice (connections, statements, caches).
const WARM_UP: usize = 3;
/// The actor the tokens name, and the in-process commands' owner.
const OWNER: &str = "bench-owner";
/// The AWS account subscribed in every database, which the settlement step names.
const AWS_ACCOUNT: &str = "123456789012";
/// The commands of the flow per workspace.
const STEPS: usize = 4;
/// Target: http commands/s ÷ in-process commands/s.
const TARGET_RATIO: f64 = 0.7;
/// Target: the http p99 latency, in milliseconds.
const TARGET_P99_MS: f64 = 25.0;

/// Takes `--billing-bin PATH` (or `--billing-bin=PATH`) out of the arguments.
///
/// # Errors
/// `--billing-bin` without a path.
pub(crate) fn take_billing_bin(
    args: Vec<String>,
) -> Result<(Vec<String>, Option<PathBuf>), String> {
    let mut rest = Vec::new();
    let mut bin = None;
    let mut args = args.into_iter();
    while let Some(a) = args.next() {
        if a == "--billing-bin" {
            bin = Some(PathBuf::from(
                args.next().ok_or("--billing-bin needs a path")?,
            ));
        } else if let Some(path) = a.strip_prefix("--billing-bin=") {
            bin = Some(PathBuf::from(path));
        } else {
            rest.push(a);
        }
    }
    Ok((rest, bin))
}

/// One step of the flow: the API path after the workspace, its JSON body, its command id, and
/// the same command as a library action.
struct Step {
    path: &'static str,
    body: String,
    key: String,
    action: Action,
}

/// The documented flow on workspace `id`, registering user name `user`.
fn steps(id: &str, user: &str) -> Result<Vec<Step>, String> {
    let build = || -> Result<Vec<Step>, billing_domain::DomainError> {
        let email = format!("{user}@bench.example");
        Ok(vec![
            Step {
                path: "upgrade",
                body: json!({ "site": "us1" }).to_string(),
                key: format!("{id}-0"),
                action: Action::RequestUpgrade {
                    site: SiteId::parse("us1")?,
                },
            },
            Step {
                path: "account/register",
                body: json!({ "username": user, "email": email }).to_string(),
                key: format!("{id}-1"),
                action: Action::RegisterAndBindAccount {
                    user_name: UserName::parse(user)?,
                    email: Email::parse(&email)?,
                },
            },
            Step {
                path: "agreement/accept",
                body: json!({ "version": "2024-06" }).to_string(),
                key: format!("{id}-2"),
                action: Action::AcceptAgreement {
                    version: AgreementVersion::parse("2024-06")?,
                },
            },
            Step {
                path: "settlement",
                body: json!({ "method": "aws", "account": AWS_ACCOUNT }).to_string(),
                key: format!("{id}-3"),
                action: Action::ChangeSettlement(billing_domain::SettlementRequest::of(
                    MethodId::parse("aws")?,
                    Some(CloudAccount {
                        account_id: ExternalId::parse(AWS_ACCOUNT)?,
                        instance_id: None,
                    }),
                )),
            },
        ])
    };
    build().map_err(|e| e.to_string())
}

/// Per client, the workspace ids (and user names) of one slice: `{tag}-{client}-{w}`.
fn plan(tag: &str, per_client: usize) -> Vec<Vec<String>> {
    (0..CLIENTS)
        .map(|c| {
            (0..per_client)
                .map(|w| format!("{tag}-{c}-{w:05}"))
                .collect()
        })
        .collect()
}

/// What one timed slice did.
#[derive(Default)]
struct Measured {
    commands: usize,
    secs: f64,
    latencies_ms: Vec<f64>,
    cpu: Cpu,
    db: DbWork,
    /// What the server logged as warnings or errors.
    warnings: Vec<String>,
}

impl Measured {
    fn rate(&self) -> f64 {
        if self.secs > 0.0 {
            self.commands as f64 / self.secs
        } else {
            0.0
        }
    }
}

/// Subscribes the AWS account on `embedded`'s database.
async fn subscribe(embedded: &Embedded) -> Result<(), String> {
    let account = CloudAccount {
        account_id: ExternalId::parse(AWS_ACCOUNT).map_err(|e| e.to_string())?,
        instance_id: None,
    };
    let aws = MethodId::parse("aws").map_err(|e| e.to_string())?;
    embedded
        .marketplace
        .set(&aws, &account, true)
        .await
        .map_err(|e| format!("cannot subscribe the AWS account: {e}"))
}

/// What a bench database saw over its whole life (migrations, subscription, warm-up and the
/// timed slice), to check both sides did the same database work per command: its events, and
/// PostgreSQL's own counters of it (`pg_stat_database`).
#[derive(Clone, Copy, Debug, Default)]
struct DbWork {
    events: i64,
    /// Transactions committed or rolled back.
    xacts: i64,
    /// Rows read (`tup_returned`: scanned; `tup_fetched`: fetched through an index).
    returned: i64,
    fetched: i64,
    /// Rows written.
    inserted: i64,
    updated: i64,
    deleted: i64,
}

impl DbWork {
    /// Reads it once every connection to the database is closed: a closing backend reports its
    /// counters as it exits.
    async fn of(url: &str) -> Result<Self, String> {
        let name = url::Url::parse(url)
            .map_err(|e| e.to_string())?
            .path()
            .trim_start_matches('/')
            .to_owned();
        // Backends report on exit; give the last ones a moment.
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        let admin = pg::pool(&pg::server_url(), 1).await?;
        let row: (i64, i64, i64, i64, i64, i64) = sqlx::query_as(
            "SELECT xact_commit + xact_rollback, tup_returned, tup_fetched, tup_inserted, \
             tup_updated, tup_deleted FROM pg_stat_database WHERE datname = $1",
        )
        .bind(&name)
        .fetch_one(&admin)
        .await
        .map_err(|e| e.to_string())?;
        admin.close().await;
        let pool = pg::pool(url, 1).await?;
        let events: (i64,) = sqlx::query_as("SELECT count(*) FROM events")
            .fetch_one(&pool)
            .await
            .map_err(|e| e.to_string())?;
        pool.close().await;
        Ok(Self {
            events: events.0,
            xacts: row.0,
            returned: row.1,
            fetched: row.2,
            inserted: row.3,
            updated: row.4,
            deleted: row.5,
        })
    }

    fn add(&mut self, other: &Self) {
        self.events += other.events;
        self.xacts += other.xacts;
        self.returned += other.returned;
        self.fetched += other.fetched;
        self.inserted += other.inserted;
        self.updated += other.updated;
        self.deleted += other.deleted;
    }
}

/// Closes every connection of `embedded` (its pool waits for the command path's connections,
/// which the store gives back when dropped).
async fn close(embedded: Embedded) {
    let pool = match embedded.db().backend() {
        billing_store::Backend::Postgres(pool) => Some(pool.clone()),
        billing_store::Backend::Sqlite(_) => None,
    };
    drop(embedded);
    if let Some(pool) = pool {
        let _ = tokio::time::timeout(std::time::Duration::from_secs(5), pool.close()).await;
    }
}

/// The flow in-process, from [`CLIENTS`] tasks; returns latencies and wall seconds.
async fn in_process_flow(
    store: &Arc<BillingStore>,
    workspaces: &[Vec<String>],
) -> Result<(Vec<f64>, f64), String> {
    let owner = Actor::new(
        ActorId::parse(OWNER).map_err(|e| e.to_string())?,
        Role::Owner,
    );
    let mut inputs = Vec::new();
    for ids in workspaces {
        let mut mine = Vec::new();
        for id in ids {
            let commands = steps(id, id)?
                .into_iter()
                .map(|s| {
                    ExternalId::parse(&s.key)
                        .map(|key| WorkspaceCommand::new(key, owner.clone(), s.action))
                        .map_err(|e| e.to_string())
                })
                .collect::<Result<Vec<_>, String>>()?;
            mine.push((WorkspaceId::parse(id).map_err(|e| e.to_string())?, commands));
        }
        inputs.push(mine);
    }
    let start = Instant::now();
    let mut tasks = Vec::new();
    for mine in inputs {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(mine.len() * STEPS);
            for (id, commands) in &mine {
                for c in commands {
                    let t = Instant::now();
                    store
                        .execute_with_retry(id, c, RetryPolicy::default())
                        .await
                        .map_err(|e| format!("in-process {} on {id}: {e}", c.command_id))?;
                    latencies.push(t.elapsed().as_secs_f64() * 1e3);
                }
            }
            Ok::<_, String>(latencies)
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.map_err(|e| e.to_string())??);
    }
    Ok((all, start.elapsed().as_secs_f64()))
}

/// One in-process slice on a fresh database.
async fn in_process_slice(slice: usize, per_client: usize) -> Result<Measured, String> {
    let url = pg::fresh_database(&format!("http_a{slice}")).await?;
    let result = async {
        let embedded = Embedded::open(&url, StoreOptions::default())
            .await
            .map_err(|e| format!("cannot open {url}: {e}"))?;
        subscribe(&embedded).await?;
        in_process_flow(&embedded.store, &plan(&format!("w{slice}"), WARM_UP)).await?;
        let before = Cpu::sample(None);
        let (latencies_ms, secs) =
            in_process_flow(&embedded.store, &plan(&format!("p{slice}"), per_client)).await?;
        let cpu = Cpu::sample(None).since(&before);
        let _ = embedded.projector.flush().await;
        close(embedded).await;
        Ok::<_, String>(Measured {
            commands: latencies_ms.len(),
            secs,
            latencies_ms,
            cpu,
            db: DbWork::of(&url).await?,
            warnings: Vec::new(),
        })
    }
    .await;
    pg::drop_database(&url).await;
    result
}

/// The flow over HTTP from [`CLIENTS`] clients; returns latencies and wall seconds.
async fn http_flow(
    base: &str,
    auth: &JwtAuth,
    clients: &[reqwest::Client],
    workspaces: &[Vec<String>],
) -> Result<(Vec<f64>, f64), String> {
    let owner = ActorId::parse(OWNER).map_err(|e| e.to_string())?;
    let now = chrono::Utc::now();
    let mut inputs = Vec::new();
    for ids in workspaces {
        let mut mine = Vec::new();
        for id in ids {
            let workspace = WorkspaceId::parse(id).map_err(|e| e.to_string())?;
            let grant = Grant::Workspaces(BTreeMap::from([(workspace, Role::Owner)]));
            let token = auth
                .issue(&owner, &grant, now, chrono::Duration::hours(2))
                .map_err(|e| e.to_string())?;
            let requests = steps(id, id)?
                .into_iter()
                .map(|s| Request {
                    url: format!("{base}/v1/workspaces/{id}/{}", s.path),
                    key: s.key,
                    body: s.body,
                })
                .collect();
            mine.push(HttpWork { token, requests });
        }
        inputs.push(mine);
    }
    let start = Instant::now();
    let tasks: Vec<_> = inputs
        .into_iter()
        .zip(clients)
        .map(|(mine, client)| tokio::spawn(server::drive(client.clone(), mine)))
        .collect();
    let mut all = Vec::new();
    let mut failures = 0;
    let mut examples = Vec::new();
    for t in tasks {
        let report = t.await.map_err(|e| e.to_string())?;
        all.extend(report.latencies_ms);
        failures += report.failures;
        examples.extend(report.examples);
    }
    let secs = start.elapsed().as_secs_f64();
    if failures > 0 {
        examples.truncate(5);
        return Err(format!(
            "{failures} HTTP request(s) not answered 200 (each skipped the rest of its workspace's flow); first: {}",
            examples.join("; ")
        ));
    }
    Ok((all, secs))
}

/// The key file and the signer the bench issues tokens with.
struct Key {
    file: PathBuf,
    auth: JwtAuth,
}

impl Key {
    /// 32 random bytes, hex-encoded (so no trailing newline the server would strip).
    fn new(dir: &Path) -> Result<Self, String> {
        let mut raw = [0u8; 32];
        getrandom::fill(&mut raw).map_err(|e| format!("no random source: {e}"))?;
        let hex: String = raw.iter().map(|b| format!("{b:02x}")).collect();
        let file = dir.join("auth.key");
        std::fs::write(&file, &hex).map_err(|e| format!("cannot write the key file: {e}"))?;
        let auth = JwtAuth::hs256(hex.as_bytes()).map_err(|e| e.to_string())?;
        Ok(Self { file, auth })
    }
}

/// One http slice: a fresh database with the AWS account subscribed, a fresh server on it.
async fn http_slice(
    slice: usize,
    per_client: usize,
    bin: &Path,
    key: &Key,
    dir: &Path,
) -> Result<Measured, String> {
    let url = pg::fresh_database(&format!("http_b{slice}")).await?;
    let result = async {
        {
            // Migrates the database and subscribes the account, then lets go of it.
            let embedded = Embedded::open(&url, StoreOptions::default())
                .await
                .map_err(|e| format!("cannot open {url}: {e}"))?;
            subscribe(&embedded).await?;
            close(embedded).await;
        }
        let log = dir.join(format!("serve-{slice}.log"));
        let server = Server::start(bin, &url, &key.file, &log).await?;
        let run = async {
            let clients = (0..CLIENTS)
                .map(|_| server::client())
                .collect::<Result<Vec<_>, String>>()?;
            http_flow(
                &server.base,
                &key.auth,
                &clients,
                &plan(&format!("w{slice}"), WARM_UP),
            )
            .await?;
            let before = Cpu::sample(Some(server.pid()));
            let (latencies_ms, secs) = http_flow(
                &server.base,
                &key.auth,
                &clients,
                &plan(&format!("h{slice}"), per_client),
            )
            .await?;
            let cpu = Cpu::sample(Some(server.pid())).since(&before);
            Ok::<_, String>((latencies_ms, secs, cpu))
        }
        .await;
        let run =
            run.map_err(|e| format!("{e}\n  billing serve's stderr: {}", server.stderr_tail()));
        let stopped = server.stop().await;
        let (latencies_ms, secs, cpu) = run?;
        let warnings = stopped?;
        Ok::<_, String>(Measured {
            commands: latencies_ms.len(),
            secs,
            latencies_ms,
            cpu,
            db: DbWork::of(&url).await?,
            warnings,
        })
    }
    .await;
    pg::drop_database(&url).await;
    result
}

/// The value at quantile `q` (nearest rank) of sorted `values`; 0 for none.
fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// Everything one side measured over the run.
#[derive(Default)]
struct Side {
    commands: usize,
    secs: f64,
    latencies_ms: Vec<f64>,
    cpu: Cpu,
    /// Per slice: rate, p50, p99.
    slices: Vec<(f64, f64, f64)>,
    /// What the databases saw, and over how many commands (timed and warm-up).
    db: DbWork,
    db_commands: usize,
    /// The server's warnings and errors.
    warnings: Vec<String>,
}

impl Side {
    fn add(&mut self, mut m: Measured, per_client: usize) {
        m.latencies_ms.sort_by(f64::total_cmp);
        self.slices.push((
            m.rate(),
            quantile(&m.latencies_ms, 0.5),
            quantile(&m.latencies_ms, 0.99),
        ));
        self.db.add(&m.db);
        self.warnings.extend(m.warnings);
        self.db_commands += CLIENTS * (per_client + WARM_UP) * STEPS;
        self.commands += m.commands;
        self.secs += m.secs;
        self.latencies_ms.extend(m.latencies_ms);
        self.cpu.add(&m.cpu);
    }

    fn rate(&self) -> f64 {
        if self.secs > 0.0 {
            self.commands as f64 / self.secs
        } else {
            0.0
        }
    }

    /// (p50, p99, max) over every command of every slice, in ms.
    fn latency(&mut self) -> (f64, f64, f64) {
        self.latencies_ms.sort_by(f64::total_cmp);
        let l = &self.latencies_ms;
        (quantile(l, 0.5), quantile(l, 0.99), quantile(l, 1.0))
    }

    /// CPU µs per command of (this process, the server, PostgreSQL), and the machine's busy
    /// fraction while the slices ran.
    fn cpu_per_command(&self) -> (f64, f64, f64, f64) {
        let per = |s: f64| 1e6 * s / self.commands.max(1) as f64;
        let busy = if self.cpu.machine_total > 0.0 {
            self.cpu.machine_busy / self.cpu.machine_total
        } else {
            0.0
        };
        (
            per(self.cpu.own),
            per(self.cpu.server),
            per(self.cpu.postgres),
            busy,
        )
    }
}

/// ✓ or MISSED.
fn mark(met: bool) -> &'static str {
    if met {
        "✓"
    } else {
        "MISSED"
    }
}

/// Runs the `http` benchmark; returns the JSON object to print last.
///
/// # Errors
/// PostgreSQL or the `billing` binary is unavailable, or any command fails on either side.
pub(crate) async fn run(quick: bool, billing_bin: Option<PathBuf>) -> Result<String, String> {
    let (rounds, per_client) = if quick { (3, 25) } else { (5, 250) };
    let bin = match billing_bin {
        Some(bin) => bin,
        None => std::env::current_exe()
            .map_err(|e| format!("cannot find this binary: {e}"))?
            .with_file_name("billing"),
    };
    if !bin.is_file() {
        return Err(format!(
            "no billing binary at {} (cargo build --release -p billing-cli, or give --billing-bin PATH)",
            bin.display()
        ));
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    eprintln!(
        "http: {} (billing serve on a fresh database per slice) against in-process Embedded + \
         execute_with_retry; {CLIENTS} clients × {per_client} workspaces × {STEPS} commands per \
         slice (+{WARM_UP} warm-up workspaces per client), {rounds} rounds A-B-B-A; PostgreSQL \
         at {}; {cores} cores",
        bin.display(),
        pg::server_url()
    );
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let key = Key::new(dir.path())?;
    let mut in_process = Side::default();
    let mut http = Side::default();
    let mut ratios = Vec::new();
    let mut slice = 0;
    for round in 1..=rounds {
        let mut rates = [0.0f64; 2];
        for side in [0, 1, 1, 0] {
            slice += 1;
            let m = if side == 0 {
                in_process_slice(slice, per_client).await?
            } else {
                http_slice(slice, per_client, &bin, &key, dir.path()).await?
            };
            eprintln!(
                "  round {round} {:<10} {:>6.0} commands/s  ({} in {:.2}s)",
                if side == 0 { "in-process" } else { "http" },
                m.rate(),
                m.commands,
                m.secs
            );
            rates[side] += m.rate();
            if side == 0 {
                in_process.add(m, per_client);
            } else {
                http.add(m, per_client);
            }
        }
        if rates[0] > 0.0 {
            ratios.push(rates[1] / rates[0]);
        }
    }
    let (ratio, ratio_min, ratio_max) = median_min_max(&ratios);
    let (h50, h99, hmax) = http.latency();
    let (i50, i99, imax) = in_process.latency();
    let (h_own, h_server, h_pg, h_busy) = http.cpu_per_command();
    let (i_own, _, i_pg, i_busy) = in_process.cpu_per_command();
    let ratio_met = ratio >= TARGET_RATIO;
    let p99_met = h99 <= TARGET_P99_MS;
    for (name, side, (p50, p99, max)) in [
        ("in_process", &in_process, (i50, i99, imax)),
        ("http", &http, (h50, h99, hmax)),
    ] {
        eprintln!(
            "  {name:<10} {:>6.0} commands/s  ({} commands in {:.2}s); per command p50 {p50:.2} ms, p99 {p99:.2} ms, max {max:.1} ms",
            side.rate(),
            side.commands,
            side.secs
        );
    }
    eprintln!(
        "  CPU per command: in-process {i_own:.0} µs (bench) + {i_pg:.0} µs (PostgreSQL), machine {:.0}% busy; \
         http {h_own:.0} µs (bench: clients) + {h_server:.0} µs (billing serve) + {h_pg:.0} µs (PostgreSQL), machine {:.0}% busy",
        100.0 * i_busy,
        100.0 * h_busy
    );
    eprintln!(
        "  http / in_process: median {ratio:.3} over {} rounds (min {ratio_min:.3}, max {ratio_max:.3}) — target ≥ {TARGET_RATIO}: {}",
        ratios.len(),
        mark(ratio_met)
    );
    eprintln!(
        "  http p99 {h99:.2} ms — target ≤ {TARGET_P99_MS} ms: {}",
        mark(p99_met)
    );
    let per_slice = |s: &Side| {
        s.slices
            .iter()
            .map(|(rate, p50, p99)| {
                json!({ "per_s": rate.round(), "p50_ms": round3(*p50), "p99_ms": round3(*p99) })
            })
            .collect::<Vec<_>>()
    };
    // Per command, over every command the databases saw (the warm-up too; migrations and the
    // subscription are in the counters as well, the same on both sides).
    let db_per_command = |s: &Side| {
        let per = |n: i64| round3(n as f64 / s.db_commands.max(1) as f64);
        json!({
            "events": per(s.db.events),
            "transactions": per(s.db.xacts),
            "rows_returned": per(s.db.returned),
            "rows_fetched": per(s.db.fetched),
            "rows_inserted": per(s.db.inserted),
            "rows_updated": per(s.db.updated),
            "rows_deleted": per(s.db.deleted),
        })
    };
    let (http_db, in_process_db) = (db_per_command(&http), db_per_command(&in_process));
    eprintln!("  database work per command: in-process {in_process_db}; http {http_db}");
    if !http.warnings.is_empty() {
        eprintln!(
            "  billing serve logged {} warning(s)/error(s), first: {}",
            http.warnings.len(),
            http.warnings[..http.warnings.len().min(3)].join(" | ")
        );
    }
    Ok(json!({
        "bench": "http",
        "quick": quick,
        "clients": CLIENTS,
        "workspaces_per_client": per_client,
        "commands_per_workspace": STEPS,
        "rounds": rounds,
        "cores": cores,
        "http_vs_in_process": round3(ratio),
        "http_vs_in_process_min": round3(ratio_min),
        "http_vs_in_process_max": round3(ratio_max),
        "http_vs_in_process_rounds": ratios.iter().map(|r| round3(*r)).collect::<Vec<_>>(),
        "http_commands": http.commands,
        "http_seconds": round3(http.secs),
        "http_per_s": http.rate().round(),
        "http_p50_ms": round3(h50),
        "http_p99_ms": round3(h99),
        "http_max_ms": round3(hmax),
        "in_process_commands": in_process.commands,
        "in_process_seconds": round3(in_process.secs),
        "in_process_per_s": in_process.rate().round(),
        "in_process_p50_ms": round3(i50),
        "in_process_p99_ms": round3(i99),
        "in_process_max_ms": round3(imax),
        "http_slices": per_slice(&http),
        "in_process_slices": per_slice(&in_process),
        "http_bench_cpu_us_per_command": h_own.round(),
        "http_server_cpu_us_per_command": h_server.round(),
        "http_postgres_cpu_us_per_command": h_pg.round(),
        "http_machine_busy": round3(h_busy),
        "in_process_cpu_us_per_command": i_own.round(),
        "in_process_postgres_cpu_us_per_command": i_pg.round(),
        "in_process_machine_busy": round3(i_busy),
        "http_db_per_command": http_db,
        "in_process_db_per_command": in_process_db,
        "http_server_warnings": http.warnings.len(),
        "target_http_vs_in_process": TARGET_RATIO,
        "target_http_p99_ms": TARGET_P99_MS,
        "ratio_met": ratio_met,
        "p99_met": p99_met,
    })
    .to_string())
}
