//! `billing-bench`: measures workspace-billing against baselines in the same run and prints
//! ratios; the last line of output is one JSON object.
//!
//! - `billing-bench commands [--quick]`: commands/s of the store against a raw single-row INSERT
//!   (sequential and 8 writers), against plain `postgres_cqrs` (postgres-es 0.5), and the same
//!   on SQLite: against raw SQLite INSERTs with the same durability (one writer and eight) and
//!   against plain `sqlite_cqrs` (sqlite-es 0.5).
//! - `billing-bench audit [--quick]`: auditing a JSON Lines log (1,000,000 events; 200,000 with
//!   `--quick`) against bare `serde_json` parsing of the same lines, and the audit's peak RSS on
//!   that log against a log a tenth its size.
//! - `billing-bench rebuild [--quick]`: rebuilding the views from a PostgreSQL log (1,000,000
//!   events; 200,000 with `--quick`) against cqrs-es's `QueryReplay` into a `GenericQuery`.
//! - `billing-bench scale [--quick]`: a store of 1,000,000 events against one of 10,000
//!   (100,000 and 1,000 with `--quick`) on PostgreSQL and SQLite: commands/s (big ÷ small), the
//!   latency of a first command on an uncached workspace (small ÷ big), and the memory the
//!   command cache holds per cached workspace (RSS growth of a child process).
//! - `billing-bench feed [--quick]`: a named subscription catching up on a log against the bare
//!   streaming read of it, and following eight writers live: delivery delay (p99) and the
//!   command path's rate with the follower against without.
//! - `billing-bench transfer [--quick]`: import and export of a 1,000,000-event log (100,000
//!   with `--quick`) on PostgreSQL and SQLite, each in its own process: peak RSS against a log a
//!   tenth its size, events/s, and the export byte-identical to the imported log.
//! - `billing-bench http [--quick] [--billing-bin PATH]`: the documented flow over HTTP to a
//!   real `billing serve` child (8 clients, distinct workspaces) against the same flow
//!   in-process through `Embedded`: commands/s ratio and per-command p50/p99 latency.
//!
//! PostgreSQL comes from `DATABASE_URL`, else the local server at 127.0.0.1:5432 (`scripts/bench`
//! provisions one like the tests do). Every measurement gets its own fresh database.

mod audit;
mod commands;
mod contender;
mod feed;
mod http;
mod loggen;
mod measure;
mod pg;
mod rebuild;
mod scale;
mod transfer;

use std::process::ExitCode;

fn usage() -> ExitCode {
    eprintln!("usage: billing-bench commands|audit|feed|http|rebuild|scale|transfer [--quick] [--billing-bin PATH]");
    ExitCode::from(2)
}

/// Prints the benchmark's JSON object as the last line of stdout, or its error on stderr.
fn finish(result: Result<String, String>) -> ExitCode {
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

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // The audit benchmark's child process (hidden): audits one file, prints its peak RSS.
    if let [child, file] = args.as_slice() {
        if child == audit::CHILD {
            return finish(audit::child(file));
        }
    }
    // One pass of one audit contender over a file (hidden; for profilers).
    if let [pass, which, file] = args.as_slice() {
        if pass == audit::PASS {
            return finish(audit::pass(which, file));
        }
    }
    // Writes a valid log of N events (hidden; for profiling and fuzz corpora).
    if let [gen, file, events] = args.as_slice() {
        if gen == "gen-log" {
            let Ok(events) = events.parse::<u64>() else {
                return usage();
            };
            return finish(
                loggen::write_log(std::path::Path::new(file), events)
                    .map(|_| format!("{{\"bench\":\"gen-log\",\"events\":{events}}}")),
            );
        }
    }
    let (args, billing_bin) = match http::take_billing_bin(args) {
        Ok(split) => split,
        Err(e) => {
            eprintln!("billing-bench: {e}");
            return usage();
        }
    };
    let quick = args.iter().any(|a| a == "--quick");
    let Some(which) = args.iter().find(|a| !a.starts_with("--")) else {
        return usage();
    };
    if let Some(bad) = args.iter().find(|a| a.starts_with("--") && *a != "--quick") {
        eprintln!("billing-bench: unknown option {bad}");
        return usage();
    }
    if which == "audit" {
        // No database and no runtime: the audit is synchronous.
        return finish(audit::run(quick));
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
    // The transfer benchmark's child process (hidden): one import or export, prints its peak RSS.
    if let [child, direction, url, file] = args.as_slice() {
        if child == transfer::CHILD {
            return finish(runtime.block_on(transfer::child(direction, url, file)));
        }
    }
    // The scale benchmark's child process (hidden): warms a store's cache, prints RSS growth.
    if let [child, url, warm_up, n] = args.as_slice() {
        if child == scale::CACHE_CHILD {
            return finish(runtime.block_on(scale::cache_child(url, warm_up, n)));
        }
    }
    // One contender of `commands` alone, for profilers and server counters (hidden).
    if let [profile, name, ops] = args.as_slice() {
        if profile == commands::profile::PROFILE {
            return finish(runtime.block_on(commands::profile::run(name, ops)));
        }
    }
    // Rebuilds and floors alone, for profilers (hidden).
    if let [profile, events, rounds] = args.as_slice() {
        if profile == rebuild::PROFILE {
            return finish(runtime.block_on(rebuild::profile(events, rounds)));
        }
    }
    let result = match which.as_str() {
        "commands" => runtime.block_on(commands::run(quick)),
        "feed" => runtime.block_on(feed::run(quick)),
        "http" => runtime.block_on(http::run(quick, billing_bin)),
        "rebuild" => runtime.block_on(rebuild::run(quick)),
        "scale" => runtime.block_on(scale::run(quick)),
        "transfer" => runtime.block_on(transfer::run(quick)),
        _ => return usage(),
    };
    finish(result)
}
