//! A host running what comes after the upgrade (SPEC §10): its billing-system integration reports
//! arrears as the `system` role, its scheduler fires the deadlines with `Scheduler::tick`, and
//! the owner's recharge unlocks the workspace — on a clock the host moves (a `ManualClock` here,
//! the system clock in production).
//!
//! Runs on a temporary SQLite file by default; set `DATABASE_URL=postgres://…` to run it on
//! PostgreSQL (it uses a workspace id of its own, so it can run against a shared database).
//!
//! `cargo run --example lifecycle`

use std::error::Error;
use std::sync::Arc;

use billing_adapters::view_store::billing_view;
use billing_adapters::Embedded;
use billing_domain::memory::ManualClock;
use billing_domain::{
    Action, Actor, ActorId, AgreementVersion, BillId, Currency, Email, ExternalId, Money,
    Registration, Role, SiteId, SitePolicy, UserName, WorkspaceCommand, WorkspaceId,
};
use billing_store::{RetryPolicy, StoreOptions};
use chrono::{Duration, Utc};

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let dir = tempfile::tempdir()?;
    let url = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| format!("sqlite://{}", dir.path().join("host.db").display()));
    let start = Utc::now();
    let clock = Arc::new(ManualClock::new(start));
    let billing = Embedded::open_with(
        &url,
        StoreOptions::default(),
        SitePolicy::builtin(),
        clock.clone(),
    )
    .await?;

    let suffix = std::process::id();
    let user = UserName::parse(&format!("acme-finance-{suffix}"))?;
    if let Registration::Taken = billing
        .expense_center
        .register(&user, &Email::parse("finance@acme.example")?)
        .await?
    {
        println!("(account {user} already registered)");
    }
    let workspace = WorkspaceId::parse(&format!("acme-life-{suffix}"))?;
    let owner = Actor::new(ActorId::parse("u-42")?, Role::Owner);
    let system = Actor::new(ActorId::parse("billing-system")?, Role::System);
    let send = |n: usize, actor: &Actor, action: Action| {
        let id = format!("{workspace}-{n}");
        let actor = actor.clone();
        let store = billing.store.clone();
        let workspace = workspace.clone();
        async move {
            let command = WorkspaceCommand::new(ExternalId::parse(&id)?, actor, action);
            let outcome = store
                .execute_with_retry(&workspace, &command, RetryPolicy::default())
                .await?;
            Ok::<_, Box<dyn Error>>(outcome)
        }
    };
    send(
        0,
        &owner,
        Action::RequestUpgrade {
            site: SiteId::parse("cn4")?,
        },
    )
    .await?;
    send(
        1,
        &owner,
        Action::BindAccount {
            user_name: user.clone(),
        },
    )
    .await?;
    send(
        2,
        &owner,
        Action::AcceptAgreement {
            version: AgreementVersion::parse("2024-06")?,
        },
    )
    .await?;

    // The Expense Center reports a bill in arrears: the countdown starts.
    let bill = BillId::parse("bill-2026-12")?;
    let amount = Money::parse_decimal("1234.56", Currency::Cny)?;
    let outcome = send(
        3,
        &system,
        Action::RecordArrears {
            bill: bill.clone(),
            amount,
        },
    )
    .await?;
    for e in &outcome.events {
        println!("{:>2} {}", e.sequence, e.event.describe());
    }

    // The host's scheduler ticks as days pass; each deadline fires once however often it ticks.
    let scheduler = billing.scheduler();
    for days in [5, 11, 11, 14, 14] {
        clock.set(start + Duration::days(days));
        let report = scheduler.tick().await?;
        println!(
            "day {days:>2}: {} reminder(s), {} lock(s), {} already done",
            report.reminders_sent.len(),
            report.locked.len(),
            report.already_done
        );
    }
    billing.projector.flush().await?;
    let view = billing_view(billing.db(), &workspace)
        .await?
        .ok_or("no view")?;
    println!("standing after day 14: {:?}", view.standing_name());
    assert_eq!(view.standing_name(), Some("locked"));

    // A recharge paid with a Huawei Cloud stored-value card settles the bill: unlocked.
    clock.set(start + Duration::days(15));
    let card = ExternalId::parse("HWSVC-0001")?;
    let outcome = send(
        4,
        &owner,
        Action::SettleArrears {
            bill,
            stored_value_card: Some(card),
        },
    )
    .await?;
    for e in &outcome.events {
        println!("{:>2} {}", e.sequence, e.event.describe());
    }
    billing.projector.flush().await?;
    let view = billing_view(billing.db(), &workspace)
        .await?
        .ok_or("no view")?;
    assert_eq!(view.standing_name(), Some("good"));
    println!("standing: good, plan: {}", view.plan_name());
    Ok(())
}
