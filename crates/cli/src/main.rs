//! `billing`: the workspace-billing command-line tool for operators and auditors (SPEC §7).
//!
//! - [`args`]: the command line as clap parses it, every value into its type (bad input exits 2
//!   before anything is opened);
//! - [`commands`]: running a command against the store (or a file) into a report;
//! - [`output`] and [`progress`]: tables, JSON and progress bars;
//! - [`exit`]: exit statuses and the mapping from the libraries' errors.
//!
//! Exit status: 0 done; 1 refused by a domain rule, or audit findings; 2 bad usage, or input that
//! cannot be opened or read; 3 store unavailable.

mod args;
mod commands;
mod exit;
mod output;
mod progress;

use std::ffi::OsString;
use std::process::ExitCode;
use std::str::FromStr;

use clap::error::ErrorKind;
use clap::Parser;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;

use crate::args::Cli;
use crate::commands::{Context, Report};
use crate::exit::{CliError, Status};

/// The log filter unless `BILLING_LOG` gives one: warnings only. A command reports what it did
/// in its own output (the opening reminder it delivered, say); its log stays quiet.
const DEFAULT_LOG: &str = "warn";

/// The log filter of `billing serve` unless `BILLING_LOG` gives one: a server has no other
/// output, so it also logs each notice the log mailer delivers.
const SERVE_LOG: &str = "warn,billing_adapters::outbox=info";

/// Sends log lines to stderr: `BILLING_LOG` (a `tracing` targets filter such as
/// `info` or `warn,billing_adapters=debug`), else `default`.
fn init_logging(default: &str) {
    let filter = std::env::var("BILLING_LOG")
        .ok()
        .and_then(|s| Targets::from_str(&s).ok())
        .or_else(|| Targets::from_str(default).ok())
        .unwrap_or_default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .without_time()
        .with_target(false)
        .finish()
        .with(filter);
    // Only fails if a subscriber is already set, which then keeps logging.
    let _ = tracing::subscriber::set_global_default(subscriber);
}

/// Whether `--json` was asked for, judged from the raw arguments (for errors clap reports
/// before it has parsed anything).
fn wants_json(args: &[OsString]) -> bool {
    args.iter()
        .skip(1)
        .take_while(|a| *a != "--")
        .any(|a| a == "--json")
}

/// The error of a value that did not parse, as the CLI reports it: the domain's refusal of a
/// domain value, or the tool's own for its options. `None` for clap's own usage errors.
fn value_error(error: &clap::Error) -> Option<CliError> {
    let source = std::error::Error::source(error)?;
    if let Some(domain) = source.downcast_ref::<billing_domain::DomainError>() {
        return Some(domain.clone().into());
    }
    if let Some(bad) = source.downcast_ref::<args::BadValue>() {
        return Some(CliError::usage(bad.code, bad.message.clone()));
    }
    if let Some(adapter) = source.downcast_ref::<billing_adapters::AdapterError>() {
        return Some(CliError::usage("invalid-value", adapter.to_string()));
    }
    None
}

/// Prints a clap error or help, and returns the exit status: 0 for `--help` and `--version`,
/// else 2.
fn usage_error(error: &clap::Error, json: bool) -> ExitCode {
    let informational = matches!(
        error.kind(),
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion
    );
    if informational {
        let _ = error.print();
        return ExitCode::SUCCESS;
    }
    if let Some(value) = value_error(error) {
        report_error(&value, json);
        return ExitCode::from(value.status.code());
    }
    if json {
        // The whole message up to the usage line: it names the missing or unknown option.
        let text = error.render().to_string();
        let message = text
            .lines()
            .take_while(|l| !l.starts_with("Usage:") && !l.starts_with("For more information"))
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join(" ")
            .trim_start_matches("error: ")
            .to_owned();
        let message = if message.is_empty() {
            "bad usage".to_owned()
        } else {
            message
        };
        output::json(&CliError::usage("usage", message).to_json());
    } else {
        let _ = error.print();
    }
    ExitCode::from(Status::Usage.code())
}

/// Prints an error the way the output mode asks.
fn report_error(error: &CliError, json: bool) {
    if json {
        output::json(&error.to_json());
        return;
    }
    let mut text = String::new();
    for line in &error.lines {
        text.push_str(line);
        text.push('\n');
    }
    let label = match error.status {
        Status::Refused => "refused",
        _ => "error",
    };
    text.push_str(&format!("{label}: {}\n", error.message));
    output::stderr(&text);
}

/// Prints a report the way the output mode asks.
fn print_report(report: &Report, json: bool) {
    if json {
        if let Some(value) = &report.json {
            output::json(value);
        }
    } else {
        output::stdout(&report.human);
    }
}

fn main() -> ExitCode {
    let argv: Vec<OsString> = std::env::args_os().collect();
    let json_hint = wants_json(&argv);
    let cli = match Cli::try_parse_from(&argv) {
        Ok(cli) => cli,
        Err(error) => return usage_error(&error, json_hint),
    };
    let json = cli.json;
    init_logging(match cli.command {
        args::Command::Serve { .. } => SERVE_LOG,
        _ => DEFAULT_LOG,
    });
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            let error = CliError::new(
                Status::Unavailable,
                "runtime-unavailable",
                format!("cannot start the async runtime: {e}"),
            );
            report_error(&error, json);
            return ExitCode::from(error.status.code());
        }
    };
    let ctx = Context {
        db_url: cli.db,
        json,
        now: cli.now,
    };
    let outcome = runtime.block_on(commands::run(cli.command, &ctx));
    let status = match outcome {
        Ok(report) => {
            print_report(&report, json);
            report.status
        }
        Err(error) => {
            report_error(&error, json);
            error.status
        }
    };
    // Background work (the projector) is done once the command flushed; do not wait for idle
    // connections to time out.
    runtime.shutdown_background();
    ExitCode::from(status.code())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_is_detected_before_the_end_of_options() {
        let args = |v: &[&str]| v.iter().map(OsString::from).collect::<Vec<_>>();
        assert!(wants_json(&args(&["billing", "show", "--json"])));
        assert!(wants_json(&args(&["billing", "--json", "show"])));
        assert!(!wants_json(&args(&["billing", "show", "--", "--json"])));
        assert!(!wants_json(&args(&["--json"])));
    }
}
