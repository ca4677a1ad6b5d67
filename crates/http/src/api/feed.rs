//! The event feed: every committed event in commit order, as Server-Sent Events.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use billing_store::{write_positioned_line, Position, WakeUps};
use futures_util::stream::{self, Stream};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::extract::{ApiQuery, Authed};
use crate::problem::{ApiError, Problem};
use crate::Billing;

/// Where the feed starts.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct FeedQuery {
    /// After this position (`transaction.position`, as the events carry it); the start of the
    /// log when absent. `Last-Event-ID` wins over it.
    from: Option<String>,
    /// `false`: stop at the end of the log instead of following it.
    follow: Option<bool>,
}

/// Events read per round trip of the feed.
const FEED_BATCH: u32 = 500;

#[utoipa::path(
    get, path = "/v1/events", tag = "reads",
    summary = "Every committed event in commit order, as Server-Sent Events (the billing system only)",
    params(FeedQuery, ("Last-Event-ID" = Option<String>, Header, description = "Resume after this position")),
    responses(
        (status = 200, description = "text/event-stream: each event's id is its position, its data the export line with \"position\"", content_type = "text/event-stream", body = String),
        (status = "4XX", description = "A problem: the request or the token", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The store is unavailable; retry after Retry-After", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub(crate) async fn events(
    State(billing): State<Billing>,
    Authed(identity): Authed,
    headers: HeaderMap,
    ApiQuery(query): ApiQuery<FeedQuery>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    if !identity.is_system() {
        return Err(ApiError::SystemOnly {
            actor: identity.actor.to_string(),
            what: "read the event feed",
        });
    }
    let last_event_id = headers
        .get("last-event-id")
        .map(|v| {
            v.to_str()
                .map(str::to_owned)
                .map_err(|_| ApiError::invalid("Last-Event-ID", "is not text"))
        })
        .transpose()?;
    let (field, from) = match (last_event_id, query.from) {
        (Some(id), _) => ("Last-Event-ID", Some(id)),
        (None, from) => ("from", from),
    };
    let at = match from {
        Some(text) => text
            .parse::<Position>()
            .map_err(|e| ApiError::invalid(field, e))?,
        None => Position::START,
    };
    let db = billing.inner.embedded.db().clone();
    // The first read happens before the answer, so an unavailable store is a 503, not an
    // empty stream.
    let first = db.read_committed(at, FEED_BATCH).await?;
    let follow = query.follow.unwrap_or(true);
    let state = (db, at, first, follow, false);
    let stream = stream::unfold(
        state,
        |(db, mut at, mut rows, follow, mut ended)| async move {
            let mut wake = db.wake_ups();
            loop {
                if ended {
                    return None;
                }
                if !rows.is_empty() {
                    let row = rows.remove(0);
                    at = row.position;
                    let mut line = Vec::new();
                    let event = match write_positioned_line(&row, &mut line) {
                        Ok(()) => Event::default()
                            .id(row.position.to_string())
                            .event(row.row.event_type.clone())
                            .data(String::from_utf8_lossy(&line).trim_end()),
                        Err(e) => {
                            ended = true;
                            Event::default().event("error").data(e.to_string())
                        }
                    };
                    return Some((Ok(event), (db, at, rows, follow, ended)));
                }
                match db.read_committed(at, FEED_BATCH).await {
                    Ok(next) if !next.is_empty() => rows = next,
                    Ok(_) if !follow => return None,
                    Ok(_) => {
                        wake.wait(WakeUps::POLL).await;
                    }
                    Err(e) => {
                        ended = true;
                        let event = Event::default().event("error").data(e.to_string());
                        return Some((Ok(event), (db, at, rows, follow, ended)));
                    }
                }
            }
        },
    );
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}
