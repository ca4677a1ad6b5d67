//! The database under the store, split along its seams:
//!
//! - `backend`: which database — [`PerBackend`], the one switch every crate uses, with
//!   [`on_backend!`](crate::on_backend) to run the same code on either, and the `Dialect` each
//!   backend implements where they differ; how a third backend is added;
//! - `postgres` and `sqlite`: each backend's own part — connecting, migrating (safe for any
//!   number of processes opening the same new database at once), its `Dialect`;
//! - `connect`: which backend a URL names;
//! - `lanes`: the command path's own connections, closed rather than reused when an operation
//!   on them did not finish (an error, or its future dropped);
//! - `reads`: every read statement, one text for both backends;
//! - `append` and `sqlite_writer`: the write path — PostgreSQL appends in one statement (group
//!   commit when several are in flight), SQLite appends through one writer thread that commits
//!   whatever is queued in one transaction;
//! - `import`: the all-or-nothing import transaction, with a hook for the adapters' tables;
//! - `subscriptions`: named subscriptions' checkpoints in the commit order, and their lag.
//!
//! Only what a host may call is public: connecting, the pools (for the adapters' own tables) and
//! reads. Appends and imports go through [`BillingStore`](crate::BillingStore), which decides and
//! verifies first.

#[macro_use]
mod backend;
mod append;
mod connect;
mod import;
mod lanes;
mod postgres;
mod reads;
mod sqlite;
mod sqlite_writer;
mod subscriptions;
#[cfg(test)]
mod tests;
mod wake;

use std::sync::Arc;
use std::time::Duration;

pub(crate) use append::{Append, AppendError, NewRow};
pub use backend::{Backend, PerBackend, StoreTx};
pub use connect::redact;
pub use import::ImportHook;
pub(crate) use reads::CommandRecord;
pub use reads::{BadPosition, EventRow, Head, Position, PositionedRow};
pub use subscriptions::{
    BadSubscriptionName, Checkpoint, Handled, Subscriber, SubscriptionHandler, SubscriptionLag,
    SubscriptionName,
};
pub use wake::WakeUps;

/// Embedded PostgreSQL migrations (`crates/store/migrations/postgres`).
pub static POSTGRES_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres");
/// Embedded SQLite migrations (`crates/store/migrations/sqlite`).
pub static SQLITE_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");

/// How durable SQLite commits are (`PRAGMA synchronous` of the writer's connection).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SqliteDurability {
    /// `FULL`: a commit survives power loss (the default).
    Full,
    /// `NORMAL`: in WAL mode a commit survives a process crash but may be lost on power loss.
    Normal,
}

/// Options for opening a store.
///
/// **Connections.** A store opens at most `2 × max_connections` database connections, plus one
/// on SQLite: the pool (long operations: streams, exports, imports, rebuilds, the adapters'
/// tables) opens up to `max_connections`, and the command path keeps up to `max_connections` of
/// its own ("lanes", opened beside the pool so a command never waits for the pool's health
/// check); on SQLite one more connection belongs to the writer thread that commits every append.
/// Size a PostgreSQL server's `max_connections` for that ceiling times the number of processes.
#[derive(Clone, Debug)]
pub struct StoreOptions {
    /// The most connections the pool opens, and the most the command path keeps (see above).
    pub max_connections: u32,
    /// How many workspaces' states the command cache keeps.
    pub cache_capacity: usize,
    /// SQLite's `synchronous` setting.
    pub sqlite_durability: SqliteDurability,
    /// How long to wait for a connection, or for SQLite's write lock held by another process.
    pub busy_timeout: Duration,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            max_connections: 10,
            cache_capacity: 10_000,
            sqlite_durability: SqliteDurability::Full,
            busy_timeout: Duration::from_secs(5),
        }
    }
}

/// A connected, migrated database: its pool, the command path's lanes and its writer.
#[derive(Clone)]
pub struct Db {
    backend: Backend,
    /// The URL without its password, for messages.
    url: Arc<str>,
    lanes: Arc<lanes::Lanes>,
    writer: Writer,
    /// This process's commits, for wake-ups in the same process.
    commits: Arc<wake::Commits>,
}

/// Where appends go: straight to PostgreSQL, or through its group commit when others are in
/// flight; to the SQLite writer thread.
type Writer = PerBackend<Arc<append::PgGroup>, Arc<sqlite_writer::SqliteWriter>>;

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db")
            .field("backend", &self.kind())
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

impl Db {
    /// The pool (for the adapters' own tables and long reads).
    pub fn backend(&self) -> &Backend {
        &self.backend
    }

    /// Which backend, as a word (`postgres`, `sqlite`).
    pub fn kind(&self) -> &'static str {
        self.backend.kind()
    }

    /// The database URL, password removed.
    pub fn url(&self) -> &str {
        &self.url
    }
}

/// Sequences are counted from 1 by one per event; they cannot reach 2^63.
fn seq_i64(sequence: u64) -> i64 {
    i64::try_from(sequence).unwrap_or(i64::MAX)
}

fn seq_u64(sequence: i64) -> u64 {
    u64::try_from(sequence).unwrap_or(0)
}
