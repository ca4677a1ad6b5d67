//! The latency of a first command on a workspace the store has not cached.
//!
//! Each slice opens a fresh [`BillingStore`](billing_store::BillingStore) (untimed; its cache is empty), warms its
//! connections and statements with the documented flow on one brand-new workspace (untimed),
//! then accepts the agreement on `per_slice` workspaces the imported log left after their
//! binding — each one's first command in this store, so each loads and verifies its stream from
//! the database before deciding and appending two events. Each command is timed alone; a
//! slice's figure is the median of its commands. Rounds run A-B-B-A (A = small store, B = big
//! store); a round's ratio is small ÷ big of the two slices' sums, and the figure is the median
//! over rounds (1.0: the big store is no slower).

use std::time::Instant;

use billing_domain::{
    Action, Actor, ActorId, AgreementVersion, DomainError, ExternalId, Role, WorkspaceCommand,
    WorkspaceId,
};
use billing_store::StoreOptions;

use super::stores::{close, open};
use crate::contender::flow;
use crate::loggen::workspace_id;
use crate::measure::median_min_max;

/// What [`cold_ratio`] measured.
#[derive(Clone, Debug, Default)]
pub(super) struct Cold {
    /// Median over rounds of (small store latency ÷ big store latency).
    pub(super) ratio: f64,
    /// Smallest round ratio.
    pub(super) min: f64,
    /// Largest round ratio.
    pub(super) max: f64,
    /// Median latency of all first commands on the small store, in µs.
    pub(super) small_us: f64,
    /// Median latency of all first commands on the big store, in µs.
    pub(super) big_us: f64,
    /// First commands timed on each store.
    pub(super) samples: usize,
}

/// The command that accepts the agreement on generated workspace `w`, and its id.
fn accept(w: u64) -> Result<(WorkspaceId, WorkspaceCommand), String> {
    let build = || -> Result<_, DomainError> {
        let id = WorkspaceId::parse(&workspace_id(w))?;
        let command = WorkspaceCommand::new(
            ExternalId::parse(&format!("{id}-cold"))?,
            Actor::new(ActorId::parse("alice")?, Role::Owner),
            Action::AcceptAgreement {
                version: AgreementVersion::parse("2024-06")?,
            },
        );
        Ok((id, command))
    };
    build().map_err(|e| e.to_string())
}

/// One slice on the store at `url`: the latencies (seconds) of the first commands on
/// `workspaces`, in a freshly opened store. `slice` names the warm-up workspace.
async fn slice(url: &str, workspaces: &[u64], slice: usize) -> Result<Vec<f64>, String> {
    let commands = workspaces
        .iter()
        .map(|&w| accept(w))
        .collect::<Result<Vec<_>, _>>()?;
    let store = open(url, StoreOptions::default()).await?;
    let result = async {
        let (warm, steps) = flow(&format!("cold{slice}"), 0)?;
        for c in &steps {
            store.execute(&warm, c).await.map_err(|e| e.to_string())?;
        }
        let mut latencies = Vec::with_capacity(commands.len());
        for (id, command) in &commands {
            let start = Instant::now();
            let outcome = store
                .execute(id, command)
                .await
                .map_err(|e| format!("accepting on {id}: {e}"))?;
            latencies.push(start.elapsed().as_secs_f64());
            if outcome.replayed || outcome.events.len() != 2 {
                return Err(format!(
                    "accepting on {id} wrote {} events (replayed: {}); expected two new ones",
                    outcome.events.len(),
                    outcome.replayed
                ));
            }
        }
        Ok(latencies)
    }
    .await;
    close(&store).await;
    result
}

/// Measures first-command latency on the stores at `small` and `big` in `rounds` A-B-B-A
/// rounds; `small_groups` and `big_groups` hold one group of never-touched bound-only
/// workspaces per slice (two per round each).
///
/// # Errors
/// A store cannot be opened, there are too few groups, or a command fails.
pub(super) async fn cold_ratio(
    small: &str,
    big: &str,
    small_groups: &[Vec<u64>],
    big_groups: &[Vec<u64>],
    rounds: usize,
) -> Result<Cold, String> {
    let mut all = [Vec::new(), Vec::new()];
    let mut ratios = Vec::with_capacity(rounds);
    let mut next = [0usize; 2];
    let mut slice_no = 0;
    for _ in 0..rounds {
        let mut sums = [0.0f64; 2];
        for side in [0usize, 1, 1, 0] {
            let (url, groups) = if side == 0 {
                (small, small_groups)
            } else {
                (big, big_groups)
            };
            let group = groups
                .get(next[side])
                .ok_or_else(|| format!("no workspaces left for cold slice {}", next[side]))?;
            next[side] += 1;
            slice_no += 1;
            let latencies = slice(url, group, slice_no).await?;
            sums[side] += median_min_max(&latencies).0;
            all[side].extend(latencies);
        }
        if sums[1] > 0.0 {
            ratios.push(sums[0] / sums[1]);
        }
    }
    let (ratio, min, max) = median_min_max(&ratios);
    Ok(Cold {
        ratio,
        min,
        max,
        small_us: 1e6 * median_min_max(&all[0]).0,
        big_us: 1e6 * median_min_max(&all[1]).0,
        samples: all[0].len(),
    })
}
