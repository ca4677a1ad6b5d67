//! The adapters' one error type.

use billing_store::StoreError;
use thiserror::Error;

/// Why an adapter operation did not happen.
///
/// - [`AdapterError::Store`] wraps the store's errors (see `StoreError` for how to handle them).
/// - [`AdapterError::Database`]: the view, outbox or directory tables could not be read or
///   written; retry later (projections catch up from the log).
/// - [`AdapterError::Shortfall`]: a rebuild read fewer events than the store holds; nothing was
///   swapped in. Retry; if it persists, audit the store.
/// - [`AdapterError::Integrity`]: a stored history that does not fold, or a stored view,
///   trail, outbox or directory value that does not parse into its domain type (only a corrupt or
///   hand-edited database has either): audit the store; `billing rebuild-views` rewrites the
///   views from the log.
/// - [`AdapterError::Schema`]: a view table's schema is not one a rebuild can copy; nothing was
///   swapped in. Fix the table (it was not made by the migrations).
/// - [`AdapterError::Corrupt`]: a stored directory value (the embedded Expense Center) that does
///   not parse; only a hand-edited database has one. Fix or remove the row.
/// - [`AdapterError::Behind`]: the views could not be brought up to the log just now (the
///   detail says why, usually the database); they stay behind and catch up at the next commit or
///   with `billing rebuild-views`. Nothing in the log is lost.
/// - [`AdapterError::Internal`]: a bug in this library (its background task stopped, say);
///   report it. The log is unaffected: views catch up from it.
/// - [`AdapterError::Delivery`]: an e-mail could not be delivered; it stays in the outbox and is
///   retried.
/// - [`AdapterError::Invalid`]: an input (a webhook URL, an event type, an endpoint id) broke a
///   rule; nothing was written. Correct the named field.
/// - [`AdapterError::UnknownEndpoint`]: no webhook endpoint has that id; nothing was written.
///   `billing webhook list` shows the ids.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum AdapterError {
    /// A store error.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A database error on the adapters' tables.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// A rebuild read fewer events than the store holds.
    #[error(
        "rebuild read {read} events but the store holds {expected}; the old views stay in place"
    )]
    Shortfall {
        /// Events read.
        read: u64,
        /// Events the store holds.
        expected: u64,
    },
    /// A history that does not fold, or a stored value that does not parse (only a corrupt or
    /// hand-edited store has either).
    #[error("workspace {workspace}: {detail}")]
    Integrity {
        /// The workspace.
        workspace: String,
        /// What is wrong: for a stored value, its table and column and the value.
        detail: String,
    },
    /// A view table whose schema a rebuild cannot copy into a fresh table.
    #[error("cannot rebuild {table}: {detail}")]
    Schema {
        /// The table.
        table: &'static str,
        /// What is wrong with its schema.
        detail: String,
    },
    /// A stored directory value that does not parse (only a hand-edited database has one).
    #[error("{table}: {detail}")]
    Corrupt {
        /// The table.
        table: &'static str,
        /// Which row and column, and the value.
        detail: String,
    },
    /// The views could not be brought up to the log now; they catch up later.
    #[error("the views could not catch up with the log: {detail}; they catch up at the next commit (or run `billing rebuild-views`)")]
    Behind {
        /// Why, as the catch-up's own error said.
        detail: String,
    },
    /// A bug in this library.
    #[error("internal error (a bug in workspace-billing; please report it): {detail}")]
    Internal {
        /// What went wrong.
        detail: String,
    },
    /// An e-mail could not be delivered.
    #[error("delivery failed: {0}")]
    Delivery(String),
    /// An input that breaks a rule.
    #[error("{field} {value:?}: {reason}")]
    Invalid {
        /// Which input (`url`, `event`, `endpoint`).
        field: &'static str,
        /// The value given.
        value: String,
        /// The rule it breaks.
        reason: String,
    },
    /// No webhook endpoint has this id.
    #[error("there is no webhook endpoint {0}; `billing webhook list` shows the ids")]
    UnknownEndpoint(String),
}
