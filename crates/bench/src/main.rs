//! `billing-bench`: measures workspace-billing against baselines in the same run and prints
//! ratios; the last line of output is one JSON object.
//!
//! - `billing-bench commands [--quick]`: commands/s of the store against a raw single-row INSERT
//!   (sequential and 8 writers), against plain `postgres_cqrs` (postgres-es 0.5), and the SQLite
//!   store against a raw SQLite INSERT with the same `synchronous` setting.
//!
//! PostgreSQL comes from `DATABASE_URL`, else the local server at 127.0.0.1:5432 (`scripts/bench`
//! provisions one like the tests do). Every measurement gets its own fresh database.

mod commands;
mod pg;

use std::process::ExitCode;

fn usage() -> ExitCode {
    eprintln!("usage: billing-bench commands [--quick]");
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let quick = args.iter().any(|a| a == "--quick");
    let Some(which) = args.iter().find(|a| !a.starts_with("--")) else {
        return usage();
    };
    if let Some(bad) = args.iter().find(|a| a.starts_with("--") && *a != "--quick") {
        eprintln!("billing-bench: unknown option {bad}");
        return usage();
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("billing-bench: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = match which.as_str() {
        "commands" => runtime.block_on(commands::run(quick)),
        _ => return usage(),
    };
    match result {
        Ok(json) => {
            println!("{json}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("billing-bench: {e}");
            ExitCode::FAILURE
        }
    }
}
