//! The conditional command path (`execute_expecting`, HTTP's `If-Match`) and the state right
//! after a given event (`state_after`, what an HTTP answer shows after a command).

use billing_domain::{Workspace, WorkspaceCommand, WorkspaceId};

use super::{BillingStore, CommandOutcome};
use crate::error::StoreError;

impl BillingStore {
    /// [`BillingStore::execute`] only if the workspace is still at `expected_sequence` (its last
    /// sequence; 0 for no events): optimistic concurrency for a caller that decided on what it
    /// read (HTTP's `If-Match`). A command id executed before gets its original outcome whatever
    /// the workspace's sequence now.
    ///
    /// # Errors
    /// As [`BillingStore::execute`]; [`StoreError::Conflict`] (nothing written) when the
    /// workspace is at another sequence, or another writer appended while this command was
    /// decided — always with the sequence it is at (`actual`).
    pub async fn execute_expecting(
        &self,
        workspace: &WorkspaceId,
        command: &WorkspaceCommand,
        expected_sequence: u64,
    ) -> Result<CommandOutcome, StoreError> {
        match self
            .execute_at(workspace, command, Some(expected_sequence))
            .await
        {
            Err(StoreError::Conflict { actual: None, .. }) => {
                let actual = self
                    .db
                    .head(workspace.as_str())
                    .await?
                    .map_or(0, |h| h.sequence);
                Err(StoreError::Conflict {
                    workspace: workspace.to_string(),
                    expected: expected_sequence,
                    actual: Some(actual),
                })
            }
            other => other,
        }
    }

    /// The workspace's state right after its event `sequence` (0: before any): from the cache
    /// when it holds exactly that sequence (the usual case right after a command), else by
    /// loading the stream and folding it up to there. What an HTTP response shows as "the view
    /// after this command", the same on a replay as the first time.
    ///
    /// # Errors
    /// As [`BillingStore::load`]; [`StoreError::Integrity`] when the stream is shorter.
    pub async fn state_after(
        &self,
        workspace: &WorkspaceId,
        sequence: u64,
    ) -> Result<Workspace, StoreError> {
        if let Some(hit) = self.cache_get(workspace.as_str()) {
            if hit.sequence == sequence {
                return Ok(hit.state.clone());
            }
        }
        let (_, events) = self.load(workspace).await?;
        let mut state = Workspace::default();
        for stored in events.iter().take_while(|e| e.sequence <= sequence) {
            // `load` folded the whole stream already; a refusal here is the same history's.
            state = state
                .evolve(&stored.event)
                .map_err(|e| StoreError::Integrity {
                    workspace: workspace.to_string(),
                    detail: format!("invalid-transition at sequence {}: {e}", stored.sequence),
                })?;
        }
        if events.len() < usize::try_from(sequence).unwrap_or(usize::MAX) {
            return Err(StoreError::Integrity {
                workspace: workspace.to_string(),
                detail: format!("the stream has {} events, not {sequence}", events.len()),
            });
        }
        Ok(state)
    }
}
