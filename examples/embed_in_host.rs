//! A host application embedding workspace-billing: it wires the store, the ports and the views
//! on one database, runs the upgrade flow for a signed-in owner, reads the billing view the
//! console would show, and delivers the opening reminder.
//!
//! Runs on a temporary SQLite file by default; set `DATABASE_URL=postgres://…` to run it on
//! PostgreSQL (it uses a workspace id of its own, so it can run against a shared database).
//!
//! `cargo run --example embed_in_host`

use std::error::Error;

use billing_adapters::view_store::{audit_trail, billing_view};
use billing_adapters::{Embedded, LogMailer};
use billing_domain::{
    Action, Actor, ActorId, AgreementVersion, Email, ExternalId, MethodId, Plan, Registration,
    Role, Settlement, SettlementRequest, SiteId, UserName, WorkspaceCommand, WorkspaceId,
};
use billing_store::{RetryPolicy, StoreOptions};

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let dir = tempfile::tempdir()?;
    let url = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| format!("sqlite://{}", dir.path().join("host.db").display()));
    let billing = Embedded::open(&url, StoreOptions::default()).await?;
    println!("store: {}", billing.db().kind());

    // The Expense Center knows the customer's finance account (embedded stand-in here).
    let suffix = std::process::id();
    let user = UserName::parse(&format!("acme-finance-{suffix}"))?;
    if let Registration::Taken = billing
        .expense_center
        .register(&user, &Email::parse("finance@acme.example")?)
        .await?
    {
        println!("(account {user} already registered)");
    }

    // The signed-in owner upgrades the workspace; every command carries who and in which role.
    let workspace = WorkspaceId::parse(&format!("acme-{suffix}"))?;
    let owner = Actor::new(ActorId::parse("u-42")?, Role::Owner);
    let steps = [
        Action::RequestUpgrade {
            site: SiteId::parse("eu1")?,
        },
        Action::BindAccount {
            user_name: user.clone(),
        },
        Action::AcceptAgreement {
            version: AgreementVersion::parse("2024-06")?,
        },
    ];
    for (i, action) in steps.into_iter().enumerate() {
        let command = WorkspaceCommand::new(
            ExternalId::parse(&format!("{workspace}-{i}"))?,
            owner.clone(),
            action,
        );
        let outcome = billing
            .store
            .execute_with_retry(&workspace, &command, RetryPolicy::default())
            .await?;
        for e in &outcome.events {
            println!("  #{} {}", e.sequence, e.event.describe());
        }
    }

    // An admin may not change settlement: the refusal names its rule.
    let admin = Actor::new(ActorId::parse("u-7")?, Role::Admin);
    let refused = billing
        .store
        .execute(
            &workspace,
            &WorkspaceCommand::new(
                ExternalId::parse(&format!("{workspace}-x"))?,
                admin,
                Action::ChangeSettlement(SettlementRequest::of(MethodId::enterprise(), None)),
            ),
        )
        .await;
    if let Err(e) = refused {
        println!("refused: {e}");
    }

    // The console reads the projected views: domain types and instants, no strings to parse.
    billing.projector.flush().await?;
    if let Some(view) = billing_view(billing.db(), &workspace).await? {
        if let (Plan::Commercial, Some(since)) = (view.plan, view.upgraded_at) {
            println!(
                "billing: {} since {}; data before it no longer viewable: {}",
                view.plan_name(),
                since.format("%Y-%m-%d %H:%M UTC"),
                view.data_visible_from == Some(since)
            );
        }
        if let Some(Settlement::Enterprise { user_name }) = &view.settlement {
            let link = view.expense_center_link("https://expense-center.example");
            println!("settles through {user_name}: {}", link.unwrap_or_default());
        }
        println!("head {} at sequence {}", view.head_hash, view.last_sequence);
    }
    let trail = audit_trail(billing.db(), &workspace).await?;
    println!("audit trail: {} entries", trail.len());
    let sent = billing.deliver_pending(&LogMailer).await?;
    println!("opening reminders sent: {}", sent.sent);
    Ok(())
}
