//! `billing demo --lifecycle`: what comes after the upgrade (SPEC §10), on a fresh embedded store
//! in a temporary directory — arrears, the 14-day countdown, its reminder, the lock, and a
//! recharge paid with a Huawei Cloud stored-value card that unlocks — moving time the way
//! `--now` moves it for every other command.

use std::sync::Arc;

use billing_adapters::outbox::notices;
use billing_adapters::Embedded;
use billing_domain::memory::ManualClock;
use billing_domain::{
    Action, Actor, ActorId, AgreementVersion, BillId, Currency, Email, ExternalId, Money,
    Registration, Role, SiteId, SitePolicy, UserName, WorkspaceId,
};
use billing_store::StoreOptions;
use chrono::{DateTime, Duration, SecondsFormat, Timelike, Utc};
use serde_json::json;

use super::demo::{command, conclude, events_json, value, Outcome, Steps, STEP_INDENT};
use super::lifecycle::system_actor;
use super::workspace::{events_table, run_command, trail_table, view_json, view_table};
use super::{Context, Report};
use crate::exit::{CliError, Status};
use crate::output::{instant, instant_or_dash, Table, Zone};

/// Runs the lifecycle demo on a temporary store.
pub(super) async fn run(ctx: &Context, expense_center_url: &str) -> Result<Report, CliError> {
    let dir = tempfile::Builder::new()
        .prefix("billing-demo-lifecycle-")
        .tempdir()
        .map_err(|e| {
            CliError::new(
                Status::Unavailable,
                "store-unavailable",
                format!("cannot create a temporary directory for the demo store: {e}"),
            )
        })?;
    let url = format!("sqlite://{}", dir.path().join("lifecycle.db").display());
    // Whole seconds read better in a walk-through.
    let start = ctx.instant();
    let start = start.with_nanosecond(0).unwrap_or(start);
    let clock = Arc::new(ManualClock::new(start));
    let embedded = Embedded::open_with(
        &url,
        StoreOptions::default(),
        SitePolicy::builtin(),
        clock.clone(),
    )
    .await?;
    let result = walk(&embedded, &clock, start, &url, ctx, expense_center_url).await;
    drop(embedded);
    drop(dir);
    result
}

/// A step title with the instant it happens at, as `--now` would give it.
fn at(title: &str, now: DateTime<Utc>, start: DateTime<Utc>) -> String {
    let days = (now - start).num_days();
    format!(
        "Day {days} (--now {}): {title}",
        now.to_rfc3339_opts(SecondsFormat::AutoSi, true)
    )
}

async fn walk(
    embedded: &Embedded,
    clock: &ManualClock,
    start: DateTime<Utc>,
    url: &str,
    ctx: &Context,
    expense_center_url: &str,
) -> Result<Report, CliError> {
    let workspace = value(WorkspaceId::parse("acme"))?;
    let owner = Actor::new(value(ActorId::parse("alice"))?, Role::Owner);
    let system = system_actor()?;
    let user_name = value(UserName::parse("acme-finance"))?;
    let email = value(Email::parse("finance@acme.example"))?;
    let bill = value(BillId::parse("bill-2026-12"))?;
    let amount = value(Money::parse_decimal("1234.56", Currency::Cny))?;
    let card = value(ExternalId::parse("HWSVC-20261216-0001"))?;
    let policy = embedded.store.services().policy.standing().to_owned();
    let mut steps = Steps::default();
    let header = if ctx.json {
        String::new()
    } else {
        format!(
            "billing demo --lifecycle: an embedded store at {url}, workspace {workspace} on site cn4, \
             owner {}, the billing system as {}; countdown {} days, reminder {} days before\n\n",
            owner.id, system.id, policy.countdown_days, policy.reminder_lead_days
        )
    };

    // 1. The documented upgrade, in brief.
    match embedded.expense_center.register(&user_name, &email).await? {
        Registration::Registered(_) => {}
        Registration::Taken => {
            return Err(billing_domain::DomainError::UserNameTaken { user_name }.into())
        }
    }
    let site = value(SiteId::parse("cn4"))?;
    let zone = Zone::of(Some(&site));
    let version = value(AgreementVersion::parse("2024-06"))?;
    let mut upgrade_events = Vec::new();
    for (id, action) in [
        ("demo-1", Action::RequestUpgrade { site }),
        (
            "demo-2",
            Action::BindAccount {
                user_name: user_name.clone(),
            },
        ),
        ("demo-3", Action::AcceptAgreement { version }),
    ] {
        let (outcome, _) = run_command(embedded, &workspace, &command(id, &owner, action)?).await?;
        upgrade_events.extend(outcome.events);
    }
    steps.step(
        &at(
            "Upgrade to the Commercial Plan (request, bind, accept)",
            clock_now(clock),
            start,
        ),
        &events_table(&upgrade_events, zone)
            .nested(STEP_INDENT)
            .render(0),
        events_json(&upgrade_events),
    );

    // 2. The billing system reports arrears: the countdown starts.
    let record = command(
        "demo-4",
        &system,
        Action::RecordArrears {
            bill: bill.clone(),
            amount,
        },
    )?;
    let (outcome, _) = run_command(embedded, &workspace, &record).await?;
    steps.step(
        &at(
            &format!("The billing system records arrears: bill {bill} over {amount}"),
            clock_now(clock),
            start,
        ),
        &events_table(&outcome.events, zone)
            .nested(STEP_INDENT)
            .render(0),
        events_json(&outcome.events),
    );

    // 3–5. Ticks as the days pass: nothing, the reminder, the lock.
    let deadline = policy.deadline(start);
    let remind_at = policy.remind_at(deadline);
    for (title, when) in [
        (
            "billing tick: nothing is due yet",
            start + Duration::days(5),
        ),
        ("billing tick: the reminder is due", remind_at),
        ("billing tick: the deadline passed", deadline),
    ] {
        clock.set(when);
        let report = embedded.scheduler().tick().await?;
        super::settle(embedded).await;
        let lines = format!(
            "{} reminder(s) sent, {} workspace(s) locked, {} already done",
            report.reminders_sent.len(),
            report.locked.len(),
            report.already_done
        );
        steps.step(
            &at(title, when, start),
            &lines,
            json!({
                "reminders_sent": report.reminders_sent,
                "locked": report.locked,
                "already_done": report.already_done,
            }),
        );
    }

    // 6. While locked, the owner cannot dissolve (or do anything that clears no reason).
    clock.set(deadline + Duration::hours(2));
    let dissolve = command("demo-5", &owner, Action::Dissolve)?;
    match run_command(embedded, &workspace, &dissolve).await {
        Err(refusal) if refusal.code == "workspace-locked" => steps.step(
            &at(
                "The owner tries to dissolve the locked workspace",
                clock_now(clock),
                start,
            ),
            &format!("refused, nothing written: {}", refusal.message),
            json!({ "refused": { "code": refusal.code, "message": refusal.message } }),
        ),
        Err(other) => return Err(other),
        Ok(_) => {
            return Err(CliError::new(
                Status::Refused,
                "demo-failed",
                "dissolving a locked workspace was not refused",
            ))
        }
    }

    // 7. A recharge paid with a stored-value card settles the bill: unlocked.
    clock.set(deadline + Duration::days(1));
    let settle = command(
        "demo-6",
        &owner,
        Action::SettleArrears {
            bill: bill.clone(),
            stored_value_card: Some(card.clone()),
        },
    )?;
    let (outcome, _) = run_command(embedded, &workspace, &settle).await?;
    steps.step(
        &at(
            &format!("The owner recharges with Huawei Cloud stored-value card order {card}: bill {bill} settled"),
            clock_now(clock),
            start,
        ),
        &events_table(&outcome.events, zone).nested(STEP_INDENT).render(0),
        events_json(&outcome.events),
    );

    // The result: notices, view, trail and a clean audit.
    embedded.projector.flush().await?;
    let sent = notices(embedded.db(), Some(&workspace)).await?;
    let mut table = Table::new(["KIND", "DUE", "SENT", "SUBJECT"]);
    for m in &sent {
        table.row([
            m.kind.clone(),
            instant(m.due_at),
            instant_or_dash(m.sent_at),
            m.subject.clone(),
        ]);
    }
    let Outcome {
        view,
        trail,
        listed,
        audit,
    } = conclude(embedded, &workspace).await?;
    let human = format!(
        "{header}{}\nNotices (outbox)\n{}\nBilling view\n{}\nAudit trail\n{}\n{listed}{}",
        steps.human,
        table.render(2),
        view_table(&view, expense_center_url, None).render(2),
        trail_table(&trail, zone).render(2),
        audit.human
    );
    let json = json!({
        "store": url,
        "workspace": workspace.as_str(),
        "steps": steps.json,
        "notices": sent,
        "view": view_json(&view, expense_center_url, None),
        "history": trail,
        "audit": audit.json,
    });
    Ok(Report {
        status: audit.status,
        human,
        json: Some(json),
    })
}

fn clock_now(clock: &ManualClock) -> DateTime<Utc> {
    billing_domain::Clock::now(clock)
}
