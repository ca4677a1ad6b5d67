//! `billing-reliability`: the load generator, the crash checker and the soak test behind
//! `scripts/crash-test` and `scripts/soak`.
//!
//! - `load`: drives workspaces through the documented flow, journaling every command before it is
//!   executed and every outcome after, and keeps going through database crashes.
//! - `check`: after a crash, verifies the store against the journals (acknowledged commands
//!   present, refused ones absent, audit clean, unacknowledged ones re-sent safely, views
//!   rebuild-equal, one reminder per upgrade) and prints a JSON report.
//! - `soak`: concurrent writers, valid and refused commands, races on hot workspaces; reconciles
//!   the totals and checks every invariant.
//! - `integrity`: SQLite's `PRAGMA integrity_check` on a store file.
//! - `consumed`: what a killed and restarted consumer of the commit order wrote, against the
//!   store (every event reached it; redeliveries at most one per kill).
//! - `deadlines-seed`: upgraded workspaces with arrears recorded by the billing system at seeded
//!   instants (countdowns whose reminders and locks fall due later).
//! - `deadlines-check`: after `billing tick` processes ran (and were killed) up to an instant,
//!   every due reminder and lock fired exactly once, nothing early, one notice each, audit clean.
//!
//! Every subcommand prints one JSON object as its last line of stdout. Exit status: 0 no anomaly;
//! 1 anomalies; 2 bad usage; 3 the run itself could not be carried out (store unreachable…).

mod check;
mod consumed;
mod deadlines;
mod deadlines_check;
mod exec;
mod facts;
mod flow;
mod integrity;
mod jetstream;
mod journal;
mod load;
mod receive;
mod rng;
mod soak;
mod stats;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};

/// Reliability tools for workspace-billing.
#[derive(Debug, Parser)]
#[command(name = "billing-reliability", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Drive many workspaces through the documented flow, journaling every command.
    Load {
        /// Database URL (`postgres://…` or `sqlite://PATH`).
        #[arg(long, value_name = "URL")]
        db: String,
        /// The journal file (appended to).
        #[arg(long, value_name = "FILE")]
        journal: PathBuf,
        /// How many workspaces.
        #[arg(long, default_value_t = 200)]
        workspaces: u64,
        /// Seed of the workload (the same seed gives the same commands).
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Concurrent writers.
        #[arg(long, default_value_t = 4)]
        writers: usize,
        /// Stop after sending this many commands.
        #[arg(long, value_name = "M")]
        stop_after_commands: Option<u64>,
        /// Seconds to keep retrying while the database does not answer.
        #[arg(long, default_value_t = 120)]
        patience: u64,
    },
    /// Verify a store against the journals of the runs against it (after a crash).
    Check {
        /// Database URL.
        #[arg(long, value_name = "URL")]
        db: String,
        /// A journal file (repeatable).
        #[arg(long = "journal", value_name = "FILE", required = true)]
        journals: Vec<PathBuf>,
        /// Seconds to keep retrying while the database does not answer.
        #[arg(long, default_value_t = 60)]
        patience: u64,
    },
    /// Concurrent writers, valid and refused commands, races; then reconcile everything.
    Soak {
        /// Database URL.
        #[arg(long, value_name = "URL")]
        db: String,
        /// The short variant: 200 workspaces, 5,000 commands (unless given).
        #[arg(long)]
        quick: bool,
        /// Concurrent writers.
        #[arg(long, default_value_t = 8)]
        writers: usize,
        /// Workspaces, hot ones included (default 1,000; 200 with --quick).
        #[arg(long)]
        workspaces: Option<usize>,
        /// Commands in all (default 100,000; 5,000 with --quick).
        #[arg(long)]
        commands: Option<u64>,
        /// Hot workspaces that all writers race on.
        #[arg(long, default_value_t = 8)]
        hot: usize,
        /// Every writer joins a race every this many commands.
        #[arg(long, default_value_t = 25)]
        race_every: u64,
        /// Real milliseconds per simulated calendar month.
        #[arg(long, default_value_t = 250)]
        month_ms: u64,
        /// Seed of the workload.
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// SQLite's PRAGMA integrity_check and the event count of a store file.
    Integrity {
        /// `sqlite://PATH`.
        #[arg(long, value_name = "URL")]
        db: String,
    },
    /// What a killed and restarted consumer (`billing events --subscription`) wrote, against
    /// the store: every committed event once or (at most once per kill) twice, in workspace
    /// order.
    Consumed {
        /// Database URL.
        #[arg(long, value_name = "URL")]
        db: String,
        /// The consumer's output, all its runs appended.
        #[arg(long, value_name = "FILE")]
        lines: PathBuf,
        /// How many times the consumer was killed.
        #[arg(long, default_value_t = 0)]
        kills: u64,
        /// How many events one kill may leave handled but not yet recorded (sent again after
        /// the restart): 1 for `billing events`, the attempts in flight for `billing deliver`.
        #[arg(long, default_value_t = 1)]
        redeliveries_per_kill: u64,
    },
    /// Upgraded workspaces whose arrears (recorded by the billing system at seeded instants)
    /// start countdowns: the deadlines `billing tick` fires in the crash test's deadlines round.
    DeadlinesSeed {
        /// Database URL.
        #[arg(long, value_name = "URL")]
        db: String,
        /// How many workspaces.
        #[arg(long, default_value_t = 2_000)]
        workspaces: u64,
        /// Seed of the plan (the same seed gives the same commands at the same instants).
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// When the workspaces are upgraded (RFC 3339); arrears follow within --spread-days.
        #[arg(long, value_name = "RFC3339")]
        start: String,
        /// Arrears are recorded at instants spread over this many days after --start.
        #[arg(long, default_value_t = 10)]
        spread_days: u64,
        /// Concurrent writers.
        #[arg(long, default_value_t = 16)]
        writers: usize,
    },
    /// After `billing tick` ran up to --now: every due reminder and lock fired exactly once,
    /// none early, one notice each in the outbox, the audit clean.
    DeadlinesCheck {
        /// Database URL.
        #[arg(long, value_name = "URL")]
        db: String,
        /// The instant of the last tick (RFC 3339).
        #[arg(long, value_name = "RFC3339")]
        now: String,
        /// The ticks' log (their stderr, all appended): every notice `LogMailer` delivered is a
        /// line naming its `message_id`; a notice delivered twice is an anomaly beyond one per
        /// kill (delivered, killed before it was marked sent).
        #[arg(long, value_name = "FILE")]
        mail_log: Option<PathBuf>,
        /// How many ticks were killed (with --mail-log).
        #[arg(long, default_value_t = 0)]
        kills: u64,
    },
    /// Every message of a JetStream stream as a line, for `consumed`.
    Jetstream {
        /// The NATS server.
        #[arg(long, value_name = "URL")]
        nats: String,
        /// The stream.
        #[arg(long, value_name = "NAME")]
        stream: String,
        /// The file to write the lines to.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        /// Delete the stream afterwards.
        #[arg(long)]
        delete: bool,
    },
    /// A webhook receiver that verifies signatures and appends each verified body as a line.
    Receive {
        /// Where to listen, e.g. `127.0.0.1:8091`.
        #[arg(long, value_name = "ADDR")]
        listen: String,
        /// A file holding the endpoint's secret (`whsec_…`).
        #[arg(long, value_name = "FILE")]
        secret_file: PathBuf,
        /// The file to append the lines to.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
}

/// An RFC 3339 instant given on the command line.
fn instant(option: &str, value: &str) -> Result<chrono::DateTime<chrono::Utc>, String> {
    chrono::DateTime::parse_from_rfc3339(value)
        .map(|t| t.with_timezone(&chrono::Utc))
        .map_err(|e| format!("{option} {value:?}: not an RFC 3339 instant: {e}"))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let instants = match &cli.command {
        Command::DeadlinesSeed { start, .. } => instant("--start", start),
        Command::DeadlinesCheck { now, .. } => instant("--now", now),
        _ => Ok(chrono::DateTime::UNIX_EPOCH),
    };
    let at = match instants {
        Ok(at) => at,
        Err(e) => {
            eprintln!("billing-reliability: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("billing-reliability: cannot start the runtime: {e}");
            return ExitCode::from(3);
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Load {
                db,
                journal,
                workspaces,
                seed,
                writers,
                stop_after_commands,
                patience,
            } => {
                load::run(load::LoadArgs {
                    db,
                    journal,
                    workspaces,
                    seed,
                    writers,
                    stop_after_commands,
                    patience: Duration::from_secs(patience),
                })
                .await
            }
            Command::Check {
                db,
                journals,
                patience,
            } => {
                check::run(check::CheckArgs {
                    db,
                    journals,
                    patience: Duration::from_secs(patience),
                })
                .await
            }
            Command::Soak {
                db,
                quick,
                writers,
                workspaces,
                commands,
                hot,
                race_every,
                month_ms,
                seed,
            } => {
                soak::run(soak::SoakArgs {
                    db,
                    writers,
                    workspaces: workspaces.unwrap_or(if quick { 200 } else { 1_000 }),
                    commands: commands.unwrap_or(if quick { 5_000 } else { 100_000 }),
                    hot,
                    race_every,
                    month_ms,
                    seed,
                })
                .await
            }
            Command::Integrity { db } => integrity::run(&db).await,
            Command::Consumed {
                db,
                lines,
                kills,
                redeliveries_per_kill,
            } => consumed::run(&db, &lines, kills, redeliveries_per_kill).await,
            Command::DeadlinesSeed {
                db,
                workspaces,
                seed,
                spread_days,
                writers,
                start: _,
            } => {
                deadlines::seed(deadlines::SeedArgs {
                    db,
                    workspaces,
                    seed,
                    start: at,
                    spread_days,
                    writers,
                })
                .await
            }
            Command::DeadlinesCheck {
                db,
                now: _,
                mail_log,
                kills,
            } => deadlines_check::run(&db, at, mail_log.as_deref(), kills).await,
            Command::Jetstream {
                nats,
                stream,
                out,
                delete,
            } => jetstream::run(&nats, &stream, &out, delete).await,
            Command::Receive {
                listen,
                secret_file,
                out,
            } => receive::run(&listen, &secret_file, &out).await,
        }
    });
    match result {
        Ok((report, ok)) => {
            println!("{report}");
            if ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Err(e) => {
            eprintln!("billing-reliability: {e}");
            ExitCode::from(3)
        }
    }
}
