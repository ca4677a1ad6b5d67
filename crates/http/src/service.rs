//! What the API and the console do with the library: send a command as the signed-in caller,
//! and read a workspace's view and history. Both the JSON handlers and the console pages go
//! through here, so they cannot disagree on a rule.

use billing_adapters::views::EventEntry;
use billing_adapters::{billing_view_at, BillingView};
use billing_domain::{Action, Actor, ExternalId, Workspace, WorkspaceCommand, WorkspaceId};
use billing_store::{CommandOutcome, RetryPolicy, StoreError, StoredEvent};
use chrono::{DateTime, Utc};

use crate::auth::Identity;
use crate::bodies::CommandResponse;
use crate::problem::ApiError;
use crate::Billing;

/// A command's outcome with the view right after it.
pub(crate) struct Done {
    pub(crate) outcome: CommandOutcome,
    pub(crate) view: BillingView,
}

impl Done {
    /// The API's body for it.
    pub(crate) fn response(&self, command_id: &ExternalId) -> CommandResponse {
        CommandResponse {
            workspace_id: self.outcome.workspace_id.to_string(),
            command_id: command_id.to_string(),
            events: self.outcome.events.iter().map(EventEntry::of).collect(),
            view: self.view.clone(),
        }
    }
}

impl Billing {
    /// Who `identity` is in `workspace`: the actor with the role its identity grants there (the
    /// only place the API and the console take a role from). Whether that role may send a
    /// command is the domain's rule, applied when the command is decided.
    ///
    /// # Errors
    /// [`ApiError::NoRole`] when the identity grants no role in the workspace.
    pub(crate) fn actor(
        &self,
        identity: &Identity,
        workspace: &WorkspaceId,
    ) -> Result<Actor, ApiError> {
        identity
            .actor_in(workspace)
            .ok_or_else(|| ApiError::NoRole {
                actor: identity.actor.to_string(),
                workspace: workspace.clone(),
                command: true,
            })
    }

    /// Sends `action` on `workspace` as `actor` (from [`Billing::actor`]), under command id
    /// `key`; with `expected`, only if the workspace is still at that sequence.
    ///
    /// # Errors
    /// The store's refusals (the domain's rules, the role's among them) and faults.
    pub(crate) async fn execute(
        &self,
        actor: Actor,
        workspace: &WorkspaceId,
        key: &ExternalId,
        action: Action,
        expected: Option<u64>,
    ) -> Result<Done, ApiError> {
        let command = WorkspaceCommand::new(key.clone(), actor, action);
        let store = &self.inner.embedded.store;
        let outcome = match expected {
            Some(expected) => store
                .execute_expecting(workspace, &command, expected)
                .await
                .map_err(|e| match e {
                    StoreError::Conflict {
                        expected,
                        actual: Some(actual),
                        ..
                    } => ApiError::PreconditionFailed {
                        workspace: workspace.clone(),
                        expected: format!("\"{expected}\""),
                        actual,
                    },
                    other => other.into(),
                })?,
            None => {
                store
                    .execute_with_retry(workspace, &command, RetryPolicy::default())
                    .await?
            }
        };
        let Some(last) = outcome.events.last() else {
            return Err(ApiError::internal("a command succeeded without events"));
        };
        let state = store.state_after(workspace, last.sequence).await?;
        let view = BillingView::from_state(workspace, &state, last.sequence, &last.metadata.hash);
        Ok(Done { outcome, view })
    }

    /// [`Billing::actor`], then [`Billing::execute`] as that actor: for a door whose action is
    /// made before the caller's role is known to be granted (the console's forms).
    ///
    /// # Errors
    /// As both.
    pub(crate) async fn execute_as(
        &self,
        identity: &Identity,
        workspace: &WorkspaceId,
        key: &ExternalId,
        action: Action,
    ) -> Result<Done, ApiError> {
        let actor = self.actor(identity, workspace)?;
        self.execute(actor, workspace, key, action, None).await
    }

    /// Whether `identity` may read `workspace`.
    pub(crate) fn may_read(
        &self,
        identity: &Identity,
        workspace: &WorkspaceId,
    ) -> Result<(), ApiError> {
        match identity.role_in(workspace) {
            Some(_) => Ok(()),
            None => Err(ApiError::NoRole {
                actor: identity.actor.to_string(),
                workspace: workspace.clone(),
                command: false,
            }),
        }
    }

    /// A workspace's state, view and events, read from its stream (so a view read right after
    /// a command shows it). A workspace without events is on the Experience Plan, at version 0.
    pub(crate) async fn read(
        &self,
        workspace: &WorkspaceId,
    ) -> Result<(Workspace, BillingView, Vec<StoredEvent>), ApiError> {
        let (state, events) = self.inner.embedded.store.load(workspace).await?;
        let (sequence, hash) = events
            .last()
            .map_or((0, ""), |e| (e.sequence, e.metadata.hash.as_str()));
        let view = BillingView::from_state(workspace, &state, sequence, hash);
        Ok((state, view, events))
    }

    /// The view as of `instant` (the Experience Plan's empty view before the first event).
    pub(crate) async fn read_as_of(
        &self,
        workspace: &WorkspaceId,
        instant: DateTime<Utc>,
    ) -> Result<BillingView, ApiError> {
        let (_, events) = self.inner.embedded.store.load(workspace).await?;
        Ok(billing_view_at(workspace, &events, instant)
            .unwrap_or_else(|| BillingView::from_state(workspace, &Workspace::default(), 0, "")))
    }
}
