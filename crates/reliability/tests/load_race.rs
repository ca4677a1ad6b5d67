//! Regression test for a store defect the soak test found: loading a workspace while another
//! writer commits to it failed with a spurious `StoreError::Integrity` (`head-mismatch`), because
//! `Db::load_stream` read the events and the recorded head in two statements (two snapshots).
//! It now reads both in one statement.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use billing_adapters::Embedded;
use billing_domain::memory::ManualClock;
use billing_domain::{
    Action, Actor, ActorId, AgreementVersion, CloudAccount, Email, ExternalId, MethodId, Role,
    SettlementRequest, SiteId, SitePolicy, UserName, WorkspaceCommand, WorkspaceId,
};
use billing_store::{load_workspace, StoreError, StoreOptions};

fn command(n: u64, action: Action) -> WorkspaceCommand {
    WorkspaceCommand::new(
        ExternalId::parse(&format!("c{n}")).unwrap(),
        Actor::new(ActorId::parse("owner").unwrap(), Role::Owner),
        action,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loading_while_another_writer_commits_never_reports_a_broken_stream() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("race.db").display());
    let clock = Arc::new(ManualClock::new("2026-01-15T00:00:00Z".parse().unwrap()));
    let embedded = Embedded::open_with(
        &url,
        StoreOptions::default(),
        SitePolicy::builtin(),
        clock.clone(),
    )
    .await
    .unwrap();
    let ws = WorkspaceId::parse("w").unwrap();
    let store = embedded.store.clone();
    for (n, action) in [
        Action::RequestUpgrade {
            site: SiteId::parse("us1").unwrap(),
        },
        Action::RegisterAndBindAccount {
            user_name: UserName::parse("finance").unwrap(),
            email: Email::parse("f@example.com").unwrap(),
        },
        Action::AcceptAgreement {
            version: AgreementVersion::parse("2024-06").unwrap(),
        },
    ]
    .into_iter()
    .enumerate()
    {
        store
            .execute(&ws, &command(n as u64, action))
            .await
            .unwrap();
    }
    let stop = Arc::new(AtomicBool::new(false));
    let commits = Arc::new(AtomicU64::new(0));
    // The writer: settlement back and forth, a month apart, as fast as it can.
    let writer = {
        let (store, marketplace, stop, commits, ws) = (
            store.clone(),
            embedded.marketplace.clone(),
            stop.clone(),
            commits.clone(),
            ws.clone(),
        );
        tokio::spawn(async move {
            let aws = MethodId::parse("aws").unwrap();
            let mut n = 9;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                clock.advance(chrono::Duration::days(32));
                let account = CloudAccount {
                    account_id: ExternalId::parse(&format!("a{n}")).unwrap(),
                    instance_id: None,
                };
                let action = if n % 2 == 0 {
                    marketplace.set(&aws, &account, true).await.unwrap();
                    Action::ChangeSettlement(SettlementRequest::of(aws.clone(), Some(account)))
                } else {
                    let current = CloudAccount {
                        account_id: ExternalId::parse(&format!("a{}", n - 1)).unwrap(),
                        instance_id: None,
                    };
                    marketplace.set(&aws, &current, false).await.unwrap();
                    Action::ChangeSettlement(SettlementRequest::of(MethodId::enterprise(), None))
                };
                store.execute(&ws, &command(n, action)).await.unwrap();
                commits.fetch_add(1, Ordering::Relaxed);
            }
        })
    };
    // The reader: loads and verifies the stream, as the command path does after a conflict.
    let started = Instant::now();
    let mut loads = 0u64;
    let mut spurious = Vec::new();
    while started.elapsed() < Duration::from_secs(10) && spurious.is_empty() {
        match load_workspace(embedded.db(), &ws).await {
            Ok(_) => loads += 1,
            Err(StoreError::Integrity { detail, .. }) => spurious.push(detail),
            Err(e) => panic!("load failed: {e}"),
        }
    }
    stop.store(true, Ordering::Relaxed);
    writer.await.unwrap();
    // The history itself is fine: a load after the writer stopped verifies.
    load_workspace(embedded.db(), &ws).await.unwrap();
    assert!(
        spurious.is_empty(),
        "after {loads} good loads and {} commits, a load reported a broken stream: {}",
        commits.load(Ordering::Relaxed),
        spurious[0]
    );
}
