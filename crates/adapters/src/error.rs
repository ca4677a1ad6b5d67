//! The adapters' one error type.

use billing_store::{Handling, StoreError};
use thiserror::Error;

/// Why an adapter operation did not happen.
///
/// Each variant has one cause and says how to handle it; [`AdapterError::handling`] sorts them
/// into the store's [`Handling`] (what the doors map to an exit status or an HTTP status), and
/// [`AdapterError::code`] names each cause.
/// - [`AdapterError::Store`] wraps the store's errors, the database's among them (on the store's
///   tables and the adapters' alike: a `sqlx::Error` converts to [`StoreError::Database`]); see
///   [`StoreError`] for how to handle them.
/// - [`AdapterError::Shortfall`]: a rebuild read fewer events than the store holds; nothing was
///   swapped in. Retry; if it persists, audit the store.
/// - [`AdapterError::Corrupt`]: a stored view, trail, outbox, directory or webhook row that does
///   not parse into its domain type (only a corrupt or hand-edited database has one): audit the
///   store; `billing rebuild-views` rewrites the views and trail from the log, a directory or
///   webhook row must be fixed or removed by hand. (A stored *history* that does not verify is
///   the store's [`StoreError::Integrity`].)
/// - [`AdapterError::Schema`]: a view table's schema is not one a rebuild can copy; nothing was
///   swapped in. Fix the table (it was not made by the migrations).
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
    /// A store error, or the database's on the adapters' own tables.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A rebuild read fewer events than the store holds; nothing was swapped in. Retry.
    #[error(
        "rebuild read {read} events but the store holds {expected}; the old views stay in place"
    )]
    Shortfall {
        /// Events read.
        read: u64,
        /// Events the store holds.
        expected: u64,
    },
    /// A stored row of the adapters' tables that does not parse (only a corrupt or hand-edited
    /// database has one): audit; rebuild the views, fix a directory or webhook row by hand.
    #[error("{location}: {detail}")]
    Corrupt {
        /// Whose row: `workspace ID` for a view, trail or outbox row; the table
        /// (`expense_center_accounts`, `webhook_endpoints`) for a directory or webhook row.
        location: String,
        /// Which column holds which value, and why it does not parse.
        detail: String,
    },
    /// A view table whose schema a rebuild cannot copy into a fresh table; nothing was swapped
    /// in. Fix the table.
    #[error("cannot rebuild {table}: {detail}")]
    Schema {
        /// The table.
        table: &'static str,
        /// What is wrong with its schema.
        detail: String,
    },
    /// The views could not be brought up to the log now; they catch up later.
    #[error("the views could not catch up with the log: {detail}; they catch up at the next commit (or run `billing rebuild-views`)")]
    Behind {
        /// Why, as the catch-up's own error said.
        detail: String,
    },
    /// A bug in this library: report it.
    #[error("internal error (a bug in workspace-billing; please report it): {detail}")]
    Internal {
        /// What went wrong.
        detail: String,
    },
    /// An e-mail could not be delivered; it stays in the outbox and is retried.
    #[error("delivery failed: {0}")]
    Delivery(String),
    /// An input that breaks a rule; nothing was written. Correct the named field.
    #[error("{field} {value:?}: {reason}")]
    Invalid {
        /// Which input (`url`, `event`, `endpoint`).
        field: &'static str,
        /// The value given.
        value: String,
        /// The rule it breaks.
        reason: String,
    },
    /// No webhook endpoint has this id; nothing was written.
    #[error("there is no webhook endpoint {0}; `billing webhook list` shows the ids")]
    UnknownEndpoint(String),
}

/// A database error on the adapters' tables is the store's [`StoreError::Database`]: one cause,
/// one variant, classified the same way ([`billing_store::DbError::is_connection`]).
impl From<sqlx::Error> for AdapterError {
    fn from(e: sqlx::Error) -> Self {
        AdapterError::Store(StoreError::from(e))
    }
}

impl AdapterError {
    /// How a caller handles this error (an exhaustive `match`: a new variant compiles only
    /// with a decision here).
    pub fn handling(&self) -> Handling {
        match self {
            AdapterError::Store(e) => e.handling(),
            AdapterError::Shortfall { .. }
            | AdapterError::Behind { .. }
            | AdapterError::Delivery(_) => Handling::Unavailable,
            AdapterError::Corrupt { .. } | AdapterError::Schema { .. } => Handling::Integrity,
            AdapterError::Internal { .. } => Handling::Bug,
            AdapterError::Invalid { .. } | AdapterError::UnknownEndpoint(_) => Handling::BadInput,
        }
    }

    /// The stable code of this error's cause (the store's, for [`AdapterError::Store`]).
    pub fn code(&self) -> &'static str {
        match self {
            AdapterError::Store(e) => e.code(),
            AdapterError::Shortfall { .. } => "shortfall",
            AdapterError::Corrupt { .. } => "corrupt-row",
            AdapterError::Schema { .. } => "view-schema",
            AdapterError::Behind { .. } => "views-behind",
            AdapterError::Internal { .. } => "internal",
            AdapterError::Delivery(_) => "delivery-failed",
            AdapterError::Invalid { .. } => "invalid-value",
            AdapterError::UnknownEndpoint(_) => "unknown-endpoint",
        }
    }

    /// One value of every variant, for the tests of a mapping from this error in another crate
    /// (the CLI's exit statuses, the HTTP problems). The list is checked complete when this
    /// crate compiles ([`billing_domain::one_of_each!`]) and by its tests.
    /// [`AdapterError::Store`] appears once; [`StoreError::one_of_each`] has the rest.
    pub fn one_of_each() -> Vec<AdapterError> {
        Self::samples().1
    }

    fn samples() -> (usize, Vec<AdapterError>) {
        billing_domain::one_of_each!(AdapterError;
            AdapterError::Store(_) => AdapterError::Store(StoreError::NotEmpty);
            AdapterError::Shortfall { .. } => AdapterError::Shortfall { read: 9, expected: 10 };
            AdapterError::Corrupt { .. } => AdapterError::Corrupt {
                location: "workspace acme".into(),
                detail: "billing_view.site holds \"CN 1\", which does not parse".into(),
            }, AdapterError::Corrupt {
                location: "webhook_endpoints".into(),
                detail: "endpoint e-1: created_at \"yesterday\" does not parse".into(),
            };
            AdapterError::Schema { .. } => AdapterError::Schema {
                table: "billing_view",
                detail: "a column the migrations do not make".into(),
            };
            AdapterError::Behind { .. } => AdapterError::Behind {
                detail: "store unavailable".into(),
            };
            AdapterError::Internal { .. } => AdapterError::Internal {
                detail: "the projector task stopped".into(),
            };
            AdapterError::Delivery(_) => AdapterError::Delivery("the mail server refused".into());
            AdapterError::Invalid { .. } => AdapterError::Invalid {
                field: "url",
                value: "ftp://x".into(),
                reason: "must be http or https".into(),
            };
            AdapterError::UnknownEndpoint(_) => AdapterError::UnknownEndpoint("e-9".into());
        )
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::AdapterError;

    #[test]
    fn one_of_each_holds_a_value_of_every_variant() {
        let (arms, all) = AdapterError::samples();
        let variants: HashSet<_> = all.iter().map(std::mem::discriminant).collect();
        assert_eq!(variants.len(), arms);
    }

    /// The adapters' tables fail like the store's: a broken connection is `store-unavailable`.
    /// Before issue 18 it was `AdapterError::Database`, a second name for the store's
    /// `Database`, without its connection classification.
    #[test]
    fn a_database_error_is_the_stores() {
        let e = AdapterError::from(sqlx::Error::PoolTimedOut);
        assert!(
            matches!(&e, AdapterError::Store(s) if s.is_unavailable()),
            "{e:?}"
        );
        assert_eq!(e.code(), "store-unavailable");
    }
}
