//! `billing events`: committed events in commit order, as JSON Lines (SPEC §11).

use std::io::Write;
use std::time::Duration;

use billing_store::{write_positioned_line, Position};

use super::{open, Context, Report};
use crate::exit::{CliError, Status};

/// Events read per round trip.
const BATCH: u32 = 500;

/// How long `--follow` waits before asking again when nothing new was visible.
const POLL: Duration = Duration::from_millis(50);

/// `billing events`: prints every event after `from`; with `follow`, keeps printing new ones
/// until SIGINT or SIGTERM.
pub(super) async fn events(
    ctx: &Context,
    from: Position,
    follow: bool,
) -> Result<Report, CliError> {
    let embedded = open(ctx).await?;
    let db = embedded.db();
    let stop = stop_signal()?;
    tokio::pin!(stop);
    let mut at = from;
    let mut line = Vec::new();
    loop {
        let rows = db.read_committed(at, BATCH).await?;
        if let Some(last) = rows.last() {
            at = last.position;
            let mut out = std::io::stdout().lock();
            for row in &rows {
                line.clear();
                write_positioned_line(row, &mut line)?;
                out.write_all(&line).map_err(stdout_error)?;
            }
            out.flush().map_err(stdout_error)?;
            continue;
        }
        if !follow {
            break;
        }
        tokio::select! {
            () = tokio::time::sleep(POLL) => {}
            () = &mut stop => break,
        }
    }
    Ok(Report {
        status: Status::Done,
        human: String::new(),
        json: None,
    })
}

fn stdout_error(e: std::io::Error) -> CliError {
    CliError::usage("io", format!("cannot write the events to stdout: {e}"))
}

/// Resolves at the first SIGINT or SIGTERM.
#[cfg(unix)]
fn stop_signal() -> Result<impl std::future::Future<Output = ()>, CliError> {
    use tokio::signal::unix::{signal, SignalKind};
    let listen = |kind: SignalKind, name: &str| {
        signal(kind).map_err(|e| CliError::usage("io", format!("cannot listen for {name}: {e}")))
    };
    let mut interrupt = listen(SignalKind::interrupt(), "SIGINT")?;
    let mut terminate = listen(SignalKind::terminate(), "SIGTERM")?;
    Ok(async move {
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = terminate.recv() => {}
        }
    })
}

/// Resolves at the first Ctrl-C.
#[cfg(not(unix))]
fn stop_signal() -> Result<impl std::future::Future<Output = ()>, CliError> {
    Ok(async {
        let _ = tokio::signal::ctrl_c().await;
    })
}
