//! What the command cache holds per cached workspace, measured as memory a process gains.
//!
//! A child process of this binary (hidden `scale-cache-child URL WARM N`) opens the store with a
//! cache large enough for everything, loads the first `WARM` generated workspaces into its cache
//! through [`BillingStore::state`] (which loads, verifies and caches a stream), reads its
//! resident set size (`VmRSS`), loads `N` more, and reads it again. The figure is the growth
//! divided by `N`: the warm-up absorbs the one-time costs (connections, statement caches, the
//! allocator's arenas), so what grows is the cache's entries (key, state, head hash, LRU node)
//! plus whatever the allocator keeps around them. The child also reports the growth over each
//! half of the `N`, so a reader can see it is linear.

use std::sync::Arc;

use billing_domain::WorkspaceId;
use billing_store::{BillingStore, StoreOptions};
use serde_json::json;

use super::stores::{close, open};
use crate::loggen::workspace_id;
use crate::measure::{child_json, json_f64, rss_kib};

/// The hidden subcommand that warms a store's cache in a child process.
pub(crate) const CHILD: &str = "scale-cache-child";

/// Tasks loading workspaces at once.
const LOADERS: u64 = 4;

/// Loads generated workspaces `from..to` into the store's cache, `LOADERS` at a time.
async fn warm(store: &Arc<BillingStore>, from: u64, to: u64) -> Result<(), String> {
    let mut tasks = Vec::new();
    for loader in 0..LOADERS {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut w = from + loader;
            while w < to {
                let id = WorkspaceId::parse(&workspace_id(w)).map_err(|e| e.to_string())?;
                store
                    .state(&id)
                    .await
                    .map_err(|e| format!("loading {id}: {e}"))?;
                w += LOADERS;
            }
            Ok::<_, String>(())
        }));
    }
    for t in tasks {
        t.await.map_err(|e| e.to_string())??;
    }
    Ok(())
}

/// The child process: warms `warm_up` then `n` workspaces into the cache of the store at
/// `url`; returns a JSON object with the RSS readings (KiB) and the bytes per workspace.
///
/// # Errors
/// The arguments are not numbers, the store cannot be opened, or a workspace does not load.
pub(crate) async fn child(url: &str, warm_up: &str, n: &str) -> Result<String, String> {
    let parse = |s: &str| {
        s.parse::<u64>()
            .map_err(|e| format!("{s} is not a count: {e}"))
    };
    let (warm_up, n) = (parse(warm_up)?, parse(n)?.max(2));
    let options = StoreOptions {
        cache_capacity: usize::try_from(warm_up + n + 16).unwrap_or(usize::MAX),
        ..StoreOptions::default()
    };
    let store = Arc::new(open(url, options).await?);
    let result = async {
        warm(&store, 0, warm_up).await?;
        let before = rss_kib()?;
        warm(&store, warm_up, warm_up + n / 2).await?;
        let half = rss_kib()?;
        warm(&store, warm_up + n / 2, warm_up + n).await?;
        let after = rss_kib()?;
        Ok::<_, String>((before, half, after))
    }
    .await;
    close(&store).await;
    let (before, half, after) = result?;
    let per = |kib: u64, count: u64| kib as f64 * 1024.0 / count.max(1) as f64;
    Ok(json!({
        "rss_kib_after_warm_up": before,
        "rss_kib_after_half": half,
        "rss_kib_after_all": after,
        "bytes_per_workspace": per(after.saturating_sub(before), n),
        "bytes_per_workspace_first_half": per(half.saturating_sub(before), n / 2),
        "bytes_per_workspace_second_half": per(after.saturating_sub(half), n - n / 2),
    })
    .to_string())
}

/// What one child run measured.
#[derive(Clone, Copy, Debug)]
pub(super) struct CacheBytes {
    /// RSS growth per cached workspace, in bytes.
    pub(super) per_workspace: f64,
    /// The same over the first half of the workspaces.
    pub(super) first_half: f64,
    /// The same over the second half.
    pub(super) second_half: f64,
    /// RSS after the warm-up, KiB.
    pub(super) rss_before_kib: f64,
    /// RSS at the end, KiB.
    pub(super) rss_after_kib: f64,
}

/// Runs [`child`] in a new process of this binary on the store at `url`.
pub(super) fn measure(url: &str, warm_up: u64, n: u64) -> Result<CacheBytes, String> {
    let what = "cache";
    let last = child_json(what, &[CHILD, url, &warm_up.to_string(), &n.to_string()])?;
    let num = |k: &str| json_f64(what, &last, k);
    Ok(CacheBytes {
        per_workspace: num("bytes_per_workspace")?,
        first_half: num("bytes_per_workspace_first_half")?,
        second_half: num("bytes_per_workspace_second_half")?,
        rss_before_kib: num("rss_kib_after_warm_up")?,
        rss_after_kib: num("rss_kib_after_all")?,
    })
}
