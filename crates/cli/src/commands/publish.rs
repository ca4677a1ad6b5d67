//! `billing publish --nats`: committed events, in commit order, to a NATS JetStream stream
//! (SPEC §11), the checkpoint saved only once JetStream has acknowledged.

use async_nats::jetstream::{self, stream};
use async_nats::HeaderMap;
use billing_store::{write_positioned_line, Position, PositionedRow, SubscriptionName};
use chrono::Utc;
use serde_json::json;

use super::events::{keep_following, stop_signal};
use super::{open, Context, Report};
use crate::exit::{CliError, Status};

/// Events published per batch (their acknowledgements are awaited together).
const BATCH: u32 = 500;

/// The subject of `workspace`'s events in `stream`: `billing.STREAM.WORKSPACE`, every byte of
/// the workspace id other than `A-Z a-z 0-9 _ -` written `~XX` (so `.`, `*`, `>` and `~` never
/// reach the subject as themselves).
pub(crate) fn subject(stream: &str, workspace: &str) -> String {
    let mut out = format!("billing.{stream}.");
    for b in workspace.bytes() {
        if b.is_ascii_alphanumeric() || b == b'_' || b == b'-' {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("~{b:02X}"));
        }
    }
    out
}

fn unavailable(url: &str, e: impl std::fmt::Display) -> CliError {
    CliError::new(
        Status::Unavailable,
        "nats-unavailable",
        format!("NATS at {url}: {e}; nothing more was published, the checkpoint stays at the last acknowledged event"),
    )
}

/// `billing publish`.
pub(super) async fn publish(
    ctx: &Context,
    url: &str,
    stream_name: &str,
    follow: bool,
) -> Result<Report, CliError> {
    let embedded = open(ctx).await?;
    let db = embedded.db();
    let name = SubscriptionName::parse(&format!("publish.{}", stream_name.to_ascii_lowercase()))
        .map_err(|e| CliError::usage("invalid-value", e.to_string()))?;
    let client = async_nats::connect(url)
        .await
        .map_err(|e| unavailable(url, e))?;
    let js = jetstream::new(client);
    js.get_or_create_stream(stream::Config {
        name: stream_name.to_owned(),
        subjects: vec![format!("billing.{stream_name}.>")],
        ..Default::default()
    })
    .await
    .map_err(|e| unavailable(url, e))?;
    let stop = stop_signal()?;
    tokio::pin!(stop);
    let mut wake = db.wake_ups();
    let mut at = db
        .checkpoint(&name)
        .await?
        .map_or(Position::START, |c| c.position);
    let (mut published, mut duplicates) = (0u64, 0u64);
    loop {
        let rows = db.read_committed(at, BATCH).await?;
        if let Some(last) = rows.last() {
            duplicates += send(&js, stream_name, &rows)
                .await
                .map_err(|e| unavailable(url, e))?;
            published += rows.len() as u64;
            at = last.position;
            db.save_checkpoint(&name, at, Utc::now()).await?;
            continue;
        }
        if !keep_following(follow, &mut wake, stop.as_mut()).await {
            break;
        }
    }
    Ok(Report::done(
        format!(
            "Published {published} events to stream {stream_name} ({duplicates} already there); checkpoint {at}\n"
        ),
        json!({
            "published": published,
            "duplicates": duplicates,
            "stream": stream_name,
            "position": at.to_string(),
        }),
    ))
}

/// Publishes `rows` and waits for every acknowledgement; returns how many JetStream reported as
/// duplicates (sent before, within its duplicate window).
async fn send(
    js: &jetstream::Context,
    stream: &str,
    rows: &[PositionedRow],
) -> Result<u64, String> {
    let mut acks = Vec::with_capacity(rows.len());
    for row in rows {
        let mut line = Vec::new();
        write_positioned_line(row, &mut line).map_err(|e| e.to_string())?;
        line.pop(); // the newline
        let mut headers = HeaderMap::new();
        headers.insert(
            "Nats-Msg-Id",
            format!("{}:{}", row.row.aggregate_id, row.row.sequence).as_str(),
        );
        let ack = js
            .publish_with_headers(subject(stream, &row.row.aggregate_id), headers, line.into())
            .await
            .map_err(|e| e.to_string())?;
        acks.push(ack);
    }
    let mut duplicates = 0;
    for ack in acks {
        if ack.await.map_err(|e| e.to_string())?.duplicate {
            duplicates += 1;
        }
    }
    Ok(duplicates)
}

#[cfg(test)]
mod tests {
    use super::subject;

    #[test]
    fn workspace_ids_become_one_subject_token() {
        assert_eq!(subject("BILLING", "acme"), "billing.BILLING.acme");
        assert_eq!(
            subject("S", "a.b*c>d~e f_g-h"),
            "billing.S.a~2Eb~2Ac~3Ed~7Ee~20f_g-h"
        );
    }
}
