//! `billing webhook add|list|remove|failures|retry` and `billing deliver` (SPEC §11).

use std::time::Duration;

use billing_adapters::webhooks::{self, Deliverer, DeliveryPolicy, EndpointId, Step};
use billing_store::WakeUps;
use chrono::Utc;
use serde_json::json;

use super::events::stop_signal;
use super::{open, Context, Report};
use crate::exit::{CliError, Status};
use crate::output::{instant, instant_or_dash, Table};

fn types_text(types: &[String]) -> String {
    if types.is_empty() {
        "every type".to_owned()
    } else {
        types.join(", ")
    }
}

/// `billing webhook add`.
pub(super) async fn add(ctx: &Context, url: &str, events: &[String]) -> Result<Report, CliError> {
    let embedded = open(ctx).await?;
    let added = webhooks::add_endpoint(embedded.db(), url, events, Utc::now()).await?;
    let e = &added.endpoint;
    Ok(Report::done(
        format!(
            "Added webhook endpoint {} for {} ({}).\n\
             Signing secret (shown only now; the receiver verifies `webhook-signature` with it):\n\
             {}\n\
             `billing deliver --follow` sends it the events committed from now on.\n",
            e.id,
            e.url,
            types_text(&e.event_types),
            added.secret
        ),
        json!({ "endpoint": e, "secret": added.secret }),
    ))
}

/// `billing webhook list`.
pub(super) async fn list(ctx: &Context) -> Result<Report, CliError> {
    let embedded = open(ctx).await?;
    let endpoints = webhooks::endpoints(embedded.db()).await?;
    let mut table = Table::new([
        "endpoint",
        "url",
        "events",
        "delivered",
        "pending",
        "dead",
        "last delivered",
        "state",
    ])
    .align_right(3)
    .align_right(4)
    .align_right(5);
    for e in &endpoints {
        table.row([
            e.id.to_string(),
            e.url.clone(),
            types_text(&e.event_types),
            e.delivered.to_string(),
            e.pending.to_string(),
            e.dead.to_string(),
            instant_or_dash(e.last_delivered_at),
            e.disabled.as_ref().map_or_else(
                || "enabled".to_owned(),
                |d| format!("disabled since {}: {}", instant(d.at), d.reason),
            ),
        ]);
    }
    let human = if endpoints.is_empty() {
        "No webhook endpoints; `billing webhook add --url URL` adds one.\n".to_owned()
    } else {
        table.render(0)
    };
    Ok(Report::done(human, json!({ "endpoints": endpoints })))
}

/// `billing webhook remove`.
pub(super) async fn remove(ctx: &Context, id: &EndpointId) -> Result<Report, CliError> {
    let embedded = open(ctx).await?;
    let dropped = webhooks::remove_endpoint(embedded.db(), id).await?;
    Ok(Report::done(
        format!(
            "Removed webhook endpoint {id}; {dropped} undelivered events for it were dropped.\n"
        ),
        json!({ "removed": id, "dropped": dropped }),
    ))
}

/// `billing webhook failures`.
pub(super) async fn failures(ctx: &Context, id: Option<&EndpointId>) -> Result<Report, CliError> {
    let embedded = open(ctx).await?;
    let dead = webhooks::failures(embedded.db(), id).await?;
    let mut table = Table::new([
        "endpoint",
        "workspace",
        "sequence",
        "event",
        "attempts",
        "dead since",
        "last error",
    ])
    .align_right(2)
    .align_right(4);
    for d in &dead {
        table.row([
            d.endpoint_id.to_string(),
            d.workspace_id.clone(),
            d.sequence.to_string(),
            d.event_type.clone(),
            d.attempts.to_string(),
            instant(d.dead_at),
            d.last_error.clone(),
        ]);
    }
    let human = if dead.is_empty() {
        "No dead letters.\n".to_owned()
    } else {
        format!(
            "{}`billing webhook retry ENDPOINT` attempts an endpoint's dead letters again.\n",
            table.render(0)
        )
    };
    Ok(Report::done(human, json!({ "dead_letters": dead })))
}

/// `billing webhook retry`.
pub(super) async fn retry(ctx: &Context, id: &EndpointId) -> Result<Report, CliError> {
    let embedded = open(ctx).await?;
    let retried = webhooks::retry(embedded.db(), id, Utc::now()).await?;
    Ok(Report::done(
        format!(
            "Endpoint {id}: {} dead letters are pending again{}; everything pending for it is \
             due now (`billing deliver` sends it).\n",
            retried.dead_letters,
            if retried.re_enabled {
                ", and the endpoint is enabled again"
            } else {
                ""
            }
        ),
        json!({ "endpoint": id, "dead_letters": retried.dead_letters, "re_enabled": retried.re_enabled }),
    ))
}

/// `billing deliver`: steps until nothing is due (or, with `follow`, until a signal).
pub(super) async fn deliver(
    ctx: &Context,
    follow: bool,
    timeout: Duration,
    lease: Duration,
) -> Result<Report, CliError> {
    let embedded = open(ctx).await?;
    let db = embedded.db();
    let holder = format!(
        "billing-deliver-{}-{}",
        std::process::id(),
        Utc::now().timestamp_micros()
    );
    let policy = DeliveryPolicy {
        timeout,
        lease,
        ..DeliveryPolicy::default()
    };
    let Some(mut deliverer) = Deliverer::start(db, &holder, policy, Utc::now()).await? else {
        return Err(CliError::new(
            Status::Unavailable,
            "delivery-running",
            format!(
                "another `billing deliver` is delivering (it holds subscription {}, see \
                 `billing subscriptions`); a new one can take over once its lease has run out \
                 after it stopped",
                webhooks::SUBSCRIPTION
            ),
        ));
    };
    let stop = stop_signal()?;
    tokio::pin!(stop);
    let mut wake = db.wake_ups();
    let mut total = Step::default();
    loop {
        // A step runs to its end (at most one attempt's timeout), so every attempt made is
        // recorded before a signal is obeyed.
        let step = deliverer.step(Utc::now()).await?;
        total += step;
        if !step.is_idle() {
            continue;
        }
        if !follow {
            break;
        }
        // Until a commit, the next retry, or one poll interval, whichever comes first.
        let poll = WakeUps::POLL;
        let wait = deliverer
            .next_attempt()
            .await?
            .and_then(|at| (at - Utc::now()).to_std().ok())
            .map_or(poll, |until| until.min(poll));
        tokio::select! {
            _ = wake.wait(wait) => {}
            () = stop.as_mut() => break,
        }
    }
    let next = deliverer.next_attempt().await?;
    deliverer.release().await?;
    let endpoints = webhooks::endpoints(db).await?;
    let pending: u64 = endpoints.iter().map(|e| e.pending).sum();
    let dead: u64 = endpoints.iter().map(|e| e.dead).sum();
    let disabled = endpoints.iter().filter(|e| e.disabled.is_some()).count();
    let mut human = format!(
        "Queued {} events; delivered {}; {} failed attempts will be retried; {} became dead \
         letters; {} endpoints disabled by 410 Gone.\n",
        total.queued_events, total.delivered, total.retrying, total.dead, total.disabled
    );
    if pending > 0 {
        human.push_str(&format!(
            "{pending} events are still pending{}.\n",
            next.map_or_else(
                || " for disabled endpoints".to_owned(),
                |at| format!("; the next attempt is due at {}", instant(at))
            )
        ));
    }
    if dead > 0 || disabled > 0 {
        human.push_str(&format!(
            "{dead} dead letters and {disabled} disabled endpoints: see `billing webhook failures` \
             and `billing webhook list`.\n"
        ));
    }
    Ok(Report::done(
        human,
        json!({
            "queued_events": total.queued_events,
            "delivered": total.delivered,
            "retrying": total.retrying,
            "dead": total.dead,
            "disabled": total.disabled,
            "pending": pending,
            "dead_letters": dead,
            "next_attempt": next,
        }),
    ))
}
