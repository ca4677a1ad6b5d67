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
use billing_adapters::{deliver_pending, Embedded, LogMailer};
use billing_domain::{
    Action, Actor, ActorId, AgreementVersion, Email, ExternalId, Registration, Role, SiteId,
    UserName, WorkspaceCommand, WorkspaceId,
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
                Action::ChangeSettlement {
                    method: billing_domain::MethodId::enterprise(),
                    account: None,
                },
            ),
        )
        .await;
    if let Err(e) = refused {
        println!("refused: {e}");
    }

    // The console reads the projected views.
    billing.projector.flush().await?;
    if let Some(view) = billing_view(billing.db(), workspace.as_str()).await? {
        println!(
            "billing: {} since {}; data visible from {}; settles through {}; head {}",
            view.plan_name(),
            view.upgraded_at.as_deref().unwrap_or("-"),
            view.data_visible_from.as_deref().unwrap_or("-"),
            view.settlement_method.as_deref().unwrap_or("-"),
            view.head_hash
        );
        println!(
            "expense center: {}",
            view.expense_center_link("https://expense-center.example")
                .unwrap_or_default()
        );
    }
    println!(
        "audit trail: {} entries",
        audit_trail(billing.db(), workspace.as_str()).await?.len()
    );
    let sent = deliver_pending(billing.db(), &LogMailer, &chrono::Utc::now().to_rfc3339()).await?;
    println!("opening reminders sent: {}", sent.sent);
    Ok(())
}
