//! One error per cause on the command path (issue 18): an outside system that does not answer
//! is not a refusal, and a workspace that moved on is one conflict whichever path found it.

use std::sync::Arc;

use async_trait::async_trait;
use billing_domain::*;
use billing_store::{BillingStore, Handling, StoreError};

use crate::harness::{act, owner_cmd, ws, Harness, TestDb, KNOWN_USER};

/// An Expense Center that never answers.
struct Down;

#[async_trait]
impl ExpenseCenter for Down {
    async fn find_account(
        &self,
        _user_name: &UserName,
    ) -> Result<Option<ExpenseCenterAccount>, DomainError> {
        Err(DomainError::PortUnavailable {
            port: "expense center",
            reason: "connection refused".into(),
        })
    }

    async fn register_account(
        &self,
        _user_name: &UserName,
        _email: &Email,
        _request_id: &ExternalId,
    ) -> Result<Registration, DomainError> {
        Err(DomainError::PortUnavailable {
            port: "expense center",
            reason: "connection refused".into(),
        })
    }
}

/// Another store over the harness's database, whose Expense Center does not answer.
async fn with_expense_center_down(h: &Harness) -> BillingStore {
    let services = WorkspaceServices {
        expense_center: Arc::new(Down),
        ..h.world.services.clone()
    };
    match &h.backend {
        TestDb::Sqlite(file) => BillingStore::open(file.url(), services).await.unwrap(),
        TestDb::Postgres(pool) => BillingStore::from_pg_pool(pool.clone(), services)
            .await
            .unwrap(),
    }
}

/// Before issue 18 this came back as `StoreError::Refused(PortUnavailable)`, a variant whose
/// documentation says "a rule refused: do not retry".
pub async fn an_outside_system_that_does_not_answer_is_no_refusal(h: &Harness) {
    let w = ws("acme");
    h.store
        .execute(&w, &owner_cmd("c1", act::request("cn1")))
        .await
        .unwrap();
    let down = with_expense_center_down(h).await;
    let err = down
        .execute(&w, &owner_cmd("c2", act::bind(KNOWN_USER)))
        .await
        .unwrap_err();
    match &err {
        StoreError::PortUnavailable { port, reason } => {
            assert_eq!(
                (*port, reason.as_str()),
                ("expense center", "connection refused")
            );
        }
        other => panic!("expected PortUnavailable, got {other:?}"),
    }
    assert!(err.domain().is_none(), "not a rule refusal: {err}");
    assert_eq!(err.handling(), Handling::Unavailable);
    assert_eq!(err.code(), "port-unavailable");
    assert_eq!(h.count("events").await, 1, "nothing was written");
    // Retried once the Expense Center answers, the same command goes through.
    let done = h
        .store
        .execute(&w, &owner_cmd("c2", act::bind(KNOWN_USER)))
        .await
        .unwrap();
    assert_eq!(done.events[0].sequence, 2);
}

/// A stale `If-Match`, and a writer that came first, are the same error: `Conflict`, which says
/// where the workspace is when the store read it. Before issue 18 the first was
/// `VersionMismatch` and the second `Conflict`, one fact under two names.
pub async fn a_workspace_that_moved_on_is_one_conflict_on_every_path(h: &Harness) {
    let w = ws("acme");
    h.store
        .execute(&w, &owner_cmd("c1", act::request("cn1")))
        .await
        .unwrap();
    h.store
        .execute(&w, &owner_cmd("c2", act::bind(KNOWN_USER)))
        .await
        .unwrap();
    // Expected at 1, the workspace is at 2.
    let err = h
        .store
        .execute_expecting(&w, &owner_cmd("c3", act::accept()), 1)
        .await
        .unwrap_err();
    match &err {
        StoreError::Conflict {
            workspace,
            expected,
            actual,
        } => assert_eq!(
            (workspace.as_str(), *expected, *actual),
            ("acme", 1, Some(2))
        ),
        other => panic!("expected a conflict, got {other:?}"),
    }
    assert!(err.is_conflict(), "{err}");
    assert_eq!(err.handling(), Handling::Conflict);
    assert_eq!(err.code(), "conflict");
    assert!(
        err.to_string()
            .contains("workspace acme is at sequence 2, not the expected 1"),
        "{err}"
    );
    assert_eq!(h.count("events").await, 2, "nothing was written");

    // At the sequence it is at, the command goes through…
    let accept = owner_cmd("c3", act::accept());
    let done = h.store.execute_expecting(&w, &accept, 2).await.unwrap();
    assert_eq!(done.events[0].sequence, 3);
    // …and re-sent under the stale expectation, an executed command id answers its original
    // outcome, not a conflict.
    let replay = h.store.execute_expecting(&w, &accept, 1).await.unwrap();
    assert!(replay.replayed);
    assert_eq!(replay.events, done.events);
}
