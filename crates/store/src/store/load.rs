//! Loading a workspace's stream strictly: every row's own hash, every link, sequence and
//! transition verified, and the stream's end checked against the recorded head.

use billing_domain::{Workspace, WorkspaceId};

use crate::chain::GENESIS_HASH;
use crate::db::{Db, Head};
use crate::error::StoreError;
use crate::record::{decode, StoredEvent, StoredRow};

/// Loads and verifies one workspace's stream from `db` (see [`BillingStore::load`](crate::BillingStore::load)).
///
/// # Errors
/// [`StoreError::Integrity`] naming the first problem; [`StoreError::Database`].
pub async fn load_workspace(
    db: &Db,
    workspace: &WorkspaceId,
) -> Result<(Workspace, Vec<StoredEvent>), StoreError> {
    let (rows, head) = db.load_stream(workspace.as_str()).await?;
    let mut events = Vec::with_capacity(rows.len());
    let (state, sequence, hash) = fold_rows(workspace.as_str(), &rows, |e| events.push(e))?;
    check_head(workspace.as_str(), sequence, &hash, head.as_ref())?;
    Ok((state, events))
}

/// Decodes a stored row, checking its own hash.
pub(super) fn decode_row(row: &StoredRow) -> Result<(StoredEvent, String), StoreError> {
    let decoded = decode(row.as_ref()).map_err(|e| StoreError::Integrity {
        workspace: row.aggregate_id.clone(),
        detail: format!("sequence {}: {e}", row.sequence),
    })?;
    if decoded.computed_hash != decoded.stored.metadata.hash {
        return Err(StoreError::Integrity {
            workspace: row.aggregate_id.clone(),
            detail: format!(
                "sequence {}: hash-mismatch: content hashes to {} but the event claims {}",
                row.sequence, decoded.computed_hash, decoded.stored.metadata.hash
            ),
        });
    }
    Ok((decoded.stored, decoded.computed_hash))
}

/// Folds one workspace's rows strictly: sequences from 1 without gaps, hashes, links and
/// transitions all verify. Returns the state, the last sequence and the head hash.
pub(super) fn fold_rows(
    workspace: &str,
    rows: &[StoredRow],
    mut each: impl FnMut(StoredEvent),
) -> Result<(Workspace, u64, String), StoreError> {
    let integrity = |detail: String| StoreError::Integrity {
        workspace: workspace.to_owned(),
        detail,
    };
    let mut state = Workspace::default();
    let mut prev = GENESIS_HASH.to_owned();
    let mut sequence = 0u64;
    for row in rows {
        if row.sequence != sequence + 1 {
            return Err(integrity(format!(
                "sequence-gap: expected sequence {}, found {}",
                sequence + 1,
                row.sequence
            )));
        }
        let (stored, hash) = decode_row(row)?;
        if stored.metadata.prev_hash != prev {
            return Err(integrity(format!(
                "chain-broken at sequence {}: prev_hash {} does not link to {prev}",
                row.sequence, stored.metadata.prev_hash
            )));
        }
        state = state.evolve(&stored.event).map_err(|e| {
            integrity(format!(
                "invalid-transition at sequence {}: {e}",
                row.sequence
            ))
        })?;
        sequence = row.sequence;
        prev = hash;
        each(stored);
    }
    Ok((state, sequence, prev))
}

pub(super) fn check_head(
    workspace: &str,
    sequence: u64,
    hash: &str,
    head: Option<&Head>,
) -> Result<(), StoreError> {
    let (head_sequence, head_hash) =
        head.map_or((0, GENESIS_HASH), |h| (h.sequence, h.hash.as_str()));
    if head_sequence != sequence || head_hash != hash {
        return Err(StoreError::Integrity {
            workspace: workspace.to_owned(),
            detail: format!(
                "head-mismatch: the stream ends at sequence {sequence} ({hash}) but the recorded head is sequence {head_sequence} ({head_hash})"
            ),
        });
    }
    Ok(())
}
