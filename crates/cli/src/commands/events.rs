//! `billing events`: committed events in commit order, as JSON Lines (SPEC §11), from a position
//! or from a named subscription's checkpoint; `billing subscriptions`: each checkpoint and its
//! lag.

use std::io::Write;

use billing_store::{write_positioned_line, Position, SubscriptionName, WakeUps};
use chrono::Utc;
use serde_json::json;

use super::{open, Context, Report};
use crate::exit::{CliError, Status};
use crate::output::{instant, instant_or_dash, Table};

/// Events read per round trip.
const BATCH: u32 = 500;

/// `billing events`: prints every event after `from`; with `follow`, keeps printing new ones
/// until SIGINT or SIGTERM. With a subscription, its checkpoint is saved after each line is
/// written (so a line can be printed again after a crash, never skipped).
pub(super) async fn events(
    ctx: &Context,
    from: Option<Position>,
    subscription: Option<SubscriptionName>,
    follow: bool,
) -> Result<Report, CliError> {
    let embedded = open(ctx).await?;
    let db = embedded.db();
    let stop = stop_signal()?;
    tokio::pin!(stop);
    let mut wake = db.wake_ups();
    let mut at = match &subscription {
        None => from.unwrap_or(Position::START),
        Some(name) => db
            .checkpoint(name)
            .await?
            .map_or(Position::START, |c| c.position),
    };
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
                if let Some(name) = &subscription {
                    out.flush().map_err(stdout_error)?;
                    db.save_checkpoint(name, row.position, Utc::now()).await?;
                }
            }
            out.flush().map_err(stdout_error)?;
            continue;
        }
        if !keep_following(follow, &mut wake, stop.as_mut()).await {
            break;
        }
    }
    Ok(Report {
        status: Status::Done,
        human: String::new(),
        json: None,
    })
}

/// `billing subscriptions`.
pub(super) async fn subscriptions(ctx: &Context) -> Result<Report, CliError> {
    let embedded = open(ctx).await?;
    // The views subscription is this process's own too: let its start-up catch-up finish, so
    // what is listed does not depend on how far it got.
    if let Err(e) = embedded.projector.flush().await {
        crate::output::stderr(&format!(
            "warning: the views could not catch up ({e}); {} is listed as it stands\n",
            billing_adapters::VIEWS_SUBSCRIPTION
        ));
    }
    let lags = embedded.db().subscriptions().await?;
    let now = Utc::now();
    let mut table = Table::new([
        "subscription",
        "position",
        "saved",
        "events behind",
        "seconds behind",
        "oldest unhandled",
        "run by",
    ])
    .align_right(3)
    .align_right(4);
    let mut list = Vec::with_capacity(lags.len());
    for lag in &lags {
        let seconds = lag.seconds_behind(now);
        table.row([
            lag.name.to_string(),
            lag.checkpoint.position.to_string(),
            instant(lag.checkpoint.updated_at),
            lag.events_behind.to_string(),
            seconds.to_string(),
            instant_or_dash(lag.oldest_unhandled),
            lag.holder.as_ref().map_or_else(
                || "-".to_owned(),
                |(holder, until)| format!("{holder} (lease until {})", instant(*until)),
            ),
        ]);
        list.push(json!({
            "name": lag.name.as_str(),
            "position": lag.checkpoint.position.to_string(),
            "updated_at": lag.checkpoint.updated_at,
            "events_behind": lag.events_behind,
            "seconds_behind": seconds,
            "oldest_unhandled": lag.oldest_unhandled,
            "holder": lag.holder.as_ref().map(|(holder, _)| holder),
            "lease_until": lag.holder.as_ref().map(|(_, until)| until),
        }));
    }
    let human = if lags.is_empty() {
        "No subscriptions yet.\n".to_owned()
    } else if lags
        .iter()
        .any(|l| l.name.as_str() == billing_adapters::VIEWS_SUBSCRIPTION)
    {
        format!(
            "{}{} moves only when the views catch up on something the commit path missed; its \
             lag is not the views' (they are projected as each command commits).\n",
            table.render(0),
            billing_adapters::VIEWS_SUBSCRIPTION
        )
    } else {
        table.render(0)
    };
    Ok(Report::done(human, json!({ "subscriptions": list })))
}

/// After a read that found nothing new: without `--follow`, or once `stop` (a signal) has come,
/// `false`; else waits for a wake-up (a commit) or one poll interval, and says `true`.
pub(super) async fn keep_following(
    follow: bool,
    wake: &mut WakeUps,
    stop: std::pin::Pin<&mut impl std::future::Future<Output = ()>>,
) -> bool {
    if !follow {
        return false;
    }
    let poll = WakeUps::POLL;
    tokio::select! {
        _ = wake.wait(poll) => true,
        () = stop => false,
    }
}

fn stdout_error(e: std::io::Error) -> CliError {
    CliError::usage("io", format!("cannot write the events to stdout: {e}"))
}

/// Resolves at the first SIGINT or SIGTERM.
#[cfg(unix)]
pub(super) fn stop_signal() -> Result<impl std::future::Future<Output = ()>, CliError> {
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
pub(super) fn stop_signal() -> Result<impl std::future::Future<Output = ()>, CliError> {
    Ok(async {
        let _ = tokio::signal::ctrl_c().await;
    })
}
