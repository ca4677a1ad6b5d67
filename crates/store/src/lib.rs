//! Event stores for workspace-billing: PostgreSQL and embedded SQLite behind one command executor.
//!
//! - [`BillingStore::open`] takes a URL (`postgres://…`, `sqlite://PATH`, `sqlite::memory:`),
//!   applies the embedded migrations and returns the executor.
//! - [`BillingStore::execute`] decides a command with the domain and appends its events, the new
//!   chain head and the idempotency record in one round trip; [`BillingStore::execute_with_retry`]
//!   retries write conflicts with jittered backoff.
//! - The `events` table is append-only in the database itself (triggers refuse UPDATE, DELETE and
//!   TRUNCATE); every event's metadata carries `prev_hash` and `hash` ([`chain`]).
//! - [`BillingStore::export`] / [`BillingStore::import`] stream JSON Lines; import verifies the
//!   whole file first ([`verify::Verifier`]) and writes all or nothing.
//!
//! ```no_run
//! # async fn run(services: billing_domain::WorkspaceServices) -> Result<(), Box<dyn std::error::Error>> {
//! use billing_domain::*;
//! use billing_store::BillingStore;
//!
//! let store = BillingStore::open("sqlite://billing.db", services).await?;
//! let workspace = WorkspaceId::parse("acme")?;
//! let command = WorkspaceCommand::new(
//!     ExternalId::parse("cmd-1")?,
//!     Actor::new(ActorId::parse("alice")?, Role::Owner),
//!     Action::RequestUpgrade { site: SiteId::parse("cn1")? },
//! );
//! let outcome = store.execute(&workspace, &command).await?;
//! assert_eq!(outcome.events.len(), 1);
//! # Ok(()) }
//! ```

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod audit;
pub mod chain;
mod clock;
pub mod db;
mod error;
mod export;
pub mod record;
mod store;
pub mod verify;

pub use clock::SystemClock;
pub use db::{
    Backend, BadPosition, BadSubscriptionName, Checkpoint, Db, EventRow, Handled, Head, ImportHook,
    PerBackend, Position, PositionedRow, SqliteDurability, StoreOptions, StoreTx, Subscriber,
    SubscriptionHandler, SubscriptionLag, SubscriptionName, WakeUps,
};
pub use error::{DbError, Handling, StoreError};
pub use export::{write_line, write_positioned_line, ImportReport};
pub use record::{EventMetadata, RowRef, StoredEvent, StoredRow, AGGREGATE_TYPE};
pub use store::{
    command_hash, load_workspace, BillingStore, CommandOutcome, Commit, CommitListener, RetryPolicy,
};
pub use verify::{Finding, FindingCode, Summary, Verifier};
