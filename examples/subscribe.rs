//! A host following the store's events with a named subscription: one running instance at a
//! time (a lease, taken over if this process dies), each batch handed to a handler inside the
//! transaction that saves the subscription's checkpoint — so a handler that writes to the same
//! database has its effect exactly once, and anything else it does happens at least once.
//!
//! Runs on a temporary SQLite file by default; set `DATABASE_URL=postgres://…` to run it on
//! PostgreSQL.
//!
//! `cargo run --example subscribe`

use std::error::Error;
use std::time::Duration;

use async_trait::async_trait;
use billing_adapters::Embedded;
use billing_domain::{
    Action, Actor, ActorId, ExternalId, Role, SiteId, WorkspaceCommand, WorkspaceId,
};
use billing_store::{PositionedRow, StoreOptions, StoreTx, SubscriptionHandler, SubscriptionName};
use chrono::Utc;

/// Tells finance about every upgrade (printed here; a host would call its own system).
struct TellFinance;

#[async_trait]
impl SubscriptionHandler for TellFinance {
    async fn handle(
        &self,
        events: &[PositionedRow],
        _tx: StoreTx<'_>,
    ) -> Result<(), Box<dyn Error + Send + Sync>> {
        for event in events {
            println!(
                "  {} {} #{} {}",
                event.position, event.row.aggregate_id, event.row.sequence, event.row.event_type
            );
        }
        Ok(())
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let dir = tempfile::tempdir()?;
    let url = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| format!("sqlite://{}", dir.path().join("host.db").display()));
    let billing = Embedded::open(&url, StoreOptions::default()).await?;
    let workspace = WorkspaceId::parse(&format!("subscribe-{}", std::process::id()))?;
    let command = WorkspaceCommand::new(
        ExternalId::parse(&format!("{workspace}-request"))?,
        Actor::new(ActorId::parse("owner-1")?, Role::Owner),
        Action::RequestUpgrade {
            site: SiteId::parse("cn1")?,
        },
    );
    billing.store.execute(&workspace, &command).await?;

    // One instance of "finance" at a time: this one holds the lease for 30 s and renews it as
    // it goes; `None` would mean another instance is running.
    let name = SubscriptionName::parse("finance")?;
    let holder = format!("example-{}", std::process::id());
    let lease = Duration::from_secs(30);
    let Some(mut finance) = billing
        .db()
        .subscriber(&name, &holder, Utc::now(), lease)
        .await?
    else {
        println!("another instance of {name} is running");
        return Ok(());
    };
    println!("{name} starts after {}", finance.checkpoint());
    loop {
        let handled = finance.handle_next(100, Utc::now(), &TellFinance).await?;
        if handled.events == 0 {
            break;
        }
        finance.renew(Utc::now()).await?;
    }
    println!("{name} is at {}", finance.checkpoint());
    finance.release().await?;
    Ok(())
}
