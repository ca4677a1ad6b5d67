//! Regression test for an adapters defect the crash test found: after a process died between a
//! commit and its projection, a fresh process committing to the same workspace before its
//! projector caught up moved the billing view past the dead process's events, so the catch-up
//! never wrote their audit-trail entries (live views differed from rebuilt ones, I8).
//! Incremental view updates now apply only to a view that stands right before them; anything
//! else is left to the catch-up, which re-projects the whole stream.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use billing_adapters::view_store::{audit_trail, billing_view};
use billing_adapters::{Embedded, EmbeddedExpenseCenter, EmbeddedMarketplace};
use billing_domain::{
    Action, Actor, ActorId, Email, ExternalId, Role, SiteId, SitePolicy, UserName,
    WorkspaceCommand, WorkspaceId, WorkspaceServices,
};
use billing_store::{BillingStore, Db, StoreOptions, SystemClock};

fn command(id: &str, action: Action) -> WorkspaceCommand {
    WorkspaceCommand::new(
        ExternalId::parse(id).unwrap(),
        Actor::new(ActorId::parse("owner").unwrap(), Role::Owner),
        action,
    )
}

#[tokio::test]
async fn a_process_that_died_before_projecting_loses_no_trail_entries() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("gap.db").display());
    let ws = WorkspaceId::parse("w").unwrap();
    let options = StoreOptions::default();

    // Process A commits and dies before its projector ran: a store without a listener.
    {
        let db = Db::connect(&url, &options).await.unwrap();
        let services = WorkspaceServices {
            expense_center: Arc::new(EmbeddedExpenseCenter::new(
                db.clone(),
                std::sync::Arc::new(billing_store::SystemClock),
            )),
            marketplace: Arc::new(EmbeddedMarketplace::new(
                db.clone(),
                std::sync::Arc::new(billing_store::SystemClock),
            )),
            policy: Arc::new(SitePolicy::builtin()),
            clock: Arc::new(SystemClock),
        };
        let a = BillingStore::from_db(db, services, &options);
        a.execute(
            &ws,
            &command(
                "c1",
                Action::RequestUpgrade {
                    site: SiteId::parse("us1").unwrap(),
                },
            ),
        )
        .await
        .unwrap();
    }

    // Process B starts and serves a command for the same workspace at once.
    let b = Embedded::open(&url, options).await.unwrap();
    b.store
        .execute(
            &ws,
            &command(
                "c2",
                Action::RegisterAndBindAccount {
                    user_name: UserName::parse("finance").unwrap(),
                    email: Email::parse("f@example.com").unwrap(),
                },
            ),
        )
        .await
        .unwrap();
    b.projector.flush().await.unwrap();
    b.projector.catch_up().await.unwrap();

    let view = billing_view(b.db(), &ws).await.unwrap().unwrap();
    let trail = audit_trail(b.db(), &ws).await.unwrap();
    let sequences: Vec<u64> = trail.iter().map(|e| e.sequence).collect();
    assert_eq!(view.last_sequence, 2);
    assert_eq!(
        sequences,
        vec![1, 2],
        "the billing view is at sequence 2 but the audit trail holds {sequences:?}"
    );
}
