//! The stores `scale` compares: generated logs imported through the public
//! [`BillingStore::import`], settled, and the workspaces they left mid-flow.

use std::path::Path;
use std::time::Instant;

use billing_store::{on_backend, Backend, BillingStore, StoreOptions};

use crate::contender::services;
use crate::loggen::{Log, Shape};

/// Every fourth generated workspace stops after its binding (the others follow the documented
/// flow, and every fourth of those on a cloud site then changes its settlement).
pub(super) const SHAPE: Shape = Shape {
    bound_only_every: 4,
};

/// Opens the store at `url` with `options`.
pub(super) async fn open(url: &str, options: StoreOptions) -> Result<BillingStore, String> {
    BillingStore::open_with(url, services(), options)
        .await
        .map_err(|e| format!("cannot open {url}: {e}"))
}

/// Closes the store's pool now (its connections would otherwise linger until dropped).
pub(super) async fn close(store: &BillingStore) {
    on_backend!(store.db().backend(), |pool| pool.close().await);
}

/// Imports the log at `path` into the empty store at `url`, then settles the database: on
/// PostgreSQL `VACUUM (ANALYZE)` (hint bits, visibility map, statistics, so no measurement
/// pays for them or meets autovacuum), on SQLite a truncating WAL checkpoint (the import is one
/// transaction, so its pages sit in the WAL until then). Returns the import's events/s.
pub(super) async fn import(url: &str, path: &Path, log: &Log) -> Result<f64, String> {
    let store = open(url, StoreOptions::default()).await?;
    let start = Instant::now();
    let report = store
        .import(path, |_, _| {})
        .await
        .map_err(|e| format!("import of {} into {url} failed: {e}", path.display()))?;
    let secs = start.elapsed().as_secs_f64();
    if report.events != log.events {
        return Err(format!(
            "import wrote {} events of {}",
            report.events, log.events
        ));
    }
    let settled = match store.db().backend() {
        Backend::Postgres(pool) => sqlx::raw_sql("VACUUM (ANALYZE)")
            .execute(pool)
            .await
            .map(|_| ()),
        Backend::Sqlite(pool) => sqlx::raw_sql("PRAGMA wal_checkpoint(TRUNCATE)")
            .execute(pool)
            .await
            .map(|_| ()),
    };
    settled.map_err(|e| format!("cannot settle {url} after the import: {e}"))?;
    close(&store).await;
    Ok(log.events as f64 / secs.max(1e-9))
}

/// The events the store holds now.
pub(super) async fn count_events(url: &str) -> Result<u64, String> {
    let store = open(url, StoreOptions::default()).await?;
    let n = store.db().count_events().await.map_err(|e| e.to_string());
    close(&store).await;
    n
}

/// `needed` of the workspaces `log` left after their binding, spread evenly over the whole key
/// range and dealt out round-robin into `slices` groups (so every group spans the range). The
/// log's last workspace is never taken: the log may have cut it short.
pub(super) fn bound_only_workspaces(
    log: &Log,
    slices: usize,
    per_slice: usize,
) -> Result<Vec<Vec<u64>>, String> {
    let candidates: Vec<u64> = (0..log.workspaces.saturating_sub(1))
        .filter(|&w| SHAPE.bound_only(w))
        .collect();
    let needed = slices * per_slice;
    if candidates.len() < needed {
        return Err(format!(
            "a {}-event log leaves {} workspaces after their binding; {needed} are needed",
            log.events,
            candidates.len()
        ));
    }
    let picked: Vec<u64> = (0..needed)
        .filter_map(|i| candidates.get(i * candidates.len() / needed).copied())
        .collect();
    let mut groups = vec![Vec::with_capacity(per_slice); slices];
    for (i, w) in picked.into_iter().enumerate() {
        if let Some(group) = groups.get_mut(i % slices) {
            group.push(w);
        }
    }
    Ok(groups)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bound_only_workspaces_are_distinct_spread_and_never_the_last() {
        let log = Log {
            events: 10_000,
            workspaces: 2_700,
            bytes: 0,
        };
        let groups = bound_only_workspaces(&log, 12, 20).unwrap();
        assert_eq!(groups.len(), 12);
        let mut all: Vec<u64> = groups.iter().flatten().copied().collect();
        assert!(groups.iter().all(|g| g.len() == 20));
        assert!(all.iter().all(|&w| SHAPE.bound_only(w) && w < 2_699));
        // Every group spans the key range.
        assert!(groups.iter().all(|g| g[0] < 300 && g[19] > 2_300));
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), 240);
        assert!(bound_only_workspaces(&log, 100, 20).is_err());
    }
}
