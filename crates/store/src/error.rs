//! The store's one error type, and the database fault it carries.

use std::path::PathBuf;
use std::sync::Arc;

use billing_domain::DomainError;
use thiserror::Error;

use crate::verify::Finding;

/// Why a store operation did not happen.
///
/// How a caller should handle them:
/// - [`StoreError::Refused`]: the domain refused the command (a rule or bad input); nothing was
///   written. Show the message; do not retry.
/// - [`StoreError::Conflict`]: another writer appended to the workspace first; nothing was
///   written. Retry (see [`BillingStore::execute_with_retry`](crate::BillingStore::execute_with_retry)).
/// - [`StoreError::CommandIdReused`]: a client bug: pick a new command id.
/// - [`StoreError::Unavailable`] / [`StoreError::Database`]: infrastructure; retry later. A
///   command that failed this way may or may not have been written: re-send it with the same
///   command id, which is safe (the store answers with the original outcome).
/// - [`StoreError::Integrity`]: the stored history of a workspace does not verify; stop and
///   audit (`billing audit`).
/// - [`StoreError::Internal`]: a bug in this library, not in the input or the database; report
///   it. The message says whether anything was written.
/// - [`StoreError::Shortfall`]: a long read ended early; what it produced is incomplete. Retry.
/// - [`StoreError::InvalidUrl`], [`StoreError::Io`], [`StoreError::ImportRefused`],
///   [`StoreError::ImportChanged`], [`StoreError::NotEmpty`]: bad input; fix it.
/// - [`StoreError::Migration`]: the schema could not be brought up to date; nothing else was
///   done. Usually a database this version of the library does not know (newer migrations).
/// - [`StoreError::LostLease`]: another instance of the subscription took over; stop this one.
/// - [`StoreError::Handler`]: a subscription's handler failed; nothing of its batch was written
///   and the batch comes again.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The domain refused the command; nothing was written.
    #[error("{0}")]
    Refused(#[from] DomainError),
    /// Another writer appended to the workspace first; nothing was written.
    #[error("conflict: workspace {workspace} moved past sequence {expected_sequence} while this command was decided; retry")]
    Conflict {
        /// The workspace.
        workspace: String,
        /// The sequence the command was decided at.
        expected_sequence: u64,
    },
    /// The workspace is not at the sequence the caller expected
    /// ([`BillingStore::execute_expecting`](crate::BillingStore::execute_expecting)); nothing
    /// was written. Read the workspace again and decide again.
    #[error("version-mismatch: workspace {workspace} is at sequence {actual}, not the expected {expected}; nothing written")]
    VersionMismatch {
        /// The workspace.
        workspace: String,
        /// The sequence the caller expected.
        expected: u64,
        /// The sequence the workspace is at.
        actual: u64,
    },
    /// The command id was used before for different content.
    #[error("command-id-reused: command id {command_id} was already used for a different command (on workspace {workspace}); use a new id")]
    CommandIdReused {
        /// The command id.
        command_id: String,
        /// The workspace it was first used on.
        workspace: String,
    },
    /// The stored history of a workspace does not verify.
    #[error("integrity: workspace {workspace}: {detail}")]
    Integrity {
        /// The workspace.
        workspace: String,
        /// What does not verify.
        detail: String,
    },
    /// A bug in this library (not in the input, not in the database).
    #[error("internal error (a bug in workspace-billing; please report it): {detail}")]
    Internal {
        /// What went wrong, and whether anything was written.
        detail: String,
    },
    /// A long read (export, audit) read fewer events than the store holds.
    #[error("{operation} read {read} events but the store holds {expected}; its output is incomplete: run it again")]
    Shortfall {
        /// What was reading (`export`, `audit`).
        operation: &'static str,
        /// Events read.
        read: u64,
        /// Events the store held when the read began.
        expected: u64,
    },
    /// The URL names no supported database.
    #[error("invalid database URL {url:?}: {reason}")]
    InvalidUrl {
        /// The URL (password removed).
        url: String,
        /// Why.
        reason: String,
    },
    /// The database does not answer, or did not let the store in within its timeout.
    #[error("store unavailable at {url}: {reason}")]
    Unavailable {
        /// The URL (password removed).
        url: String,
        /// What the driver said, or what the store waited for.
        reason: String,
    },
    /// The database reported an error.
    #[error("database error: {0}")]
    Database(DbError),
    /// The schema migrations failed.
    #[error("migration failed: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
    /// Import needs an empty store.
    #[error("import refused: the store already holds events; import into an empty store")]
    NotEmpty,
    /// The file to import does not verify; nothing was written.
    #[error("import refused: {total} finding(s), nothing written; first: {}", .findings.first().map(ToString::to_string).unwrap_or_default())]
    ImportRefused {
        /// The first findings (at most 100).
        findings: Vec<Finding>,
        /// How many findings in all.
        total: u64,
    },
    /// The file being imported changed between its verification and its writing; nothing was
    /// written.
    #[error("import refused: {} changed while it was imported ({detail}); nothing written", .path.display())]
    ImportChanged {
        /// The file.
        path: PathBuf,
        /// What differed.
        detail: String,
    },
    /// Another instance runs the subscription now: it took over once this one's lease had run
    /// out. Nothing of this instance's batch was written; stop this instance (the other one
    /// goes on from the saved checkpoint).
    #[error("subscription {subscription} is run by another instance now ({holder}); this instance's batch wrote nothing")]
    LostLease {
        /// The subscription.
        subscription: String,
        /// Who holds it now (`none or unknown` when nobody does or it could not be read).
        holder: String,
    },
    /// A subscription's handler failed; its batch wrote nothing and the checkpoint stayed, so
    /// the batch is handed over again. Fix what the detail says, or retry.
    #[error("subscription {subscription}: its handler failed, nothing of the batch was written: {detail}")]
    Handler {
        /// The subscription.
        subscription: String,
        /// The handler's error.
        detail: String,
    },
    /// A file could not be read or written.
    #[error("{}: {source}", .path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

impl StoreError {
    /// Whether retrying the same command may succeed (a write conflict).
    pub fn is_conflict(&self) -> bool {
        matches!(self, StoreError::Conflict { .. })
    }

    /// The rule name, when the domain refused the command.
    pub fn domain(&self) -> Option<&DomainError> {
        match self {
            StoreError::Refused(e) => Some(e),
            _ => None,
        }
    }

    /// Whether the database could not be reached (as opposed to a refusal or a fault it
    /// reported): retrying later may succeed.
    pub fn is_unavailable(&self) -> bool {
        match self {
            StoreError::Unavailable { .. } => true,
            StoreError::Database(e) => e.is_connection(),
            _ => false,
        }
    }

    pub(crate) fn internal(detail: impl Into<String>) -> Self {
        StoreError::Internal {
            detail: detail.into(),
        }
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        StoreError::Database(DbError::from_sqlx(e))
    }
}

/// What the database driver reported. Cheap to clone: a group commit hands the same fault to
/// every command it carried.
#[derive(Clone, Debug)]
pub struct DbError {
    code: Option<String>,
    connection: bool,
    source: Arc<dyn std::error::Error + Send + Sync>,
}

impl DbError {
    pub(crate) fn from_sqlx(e: sqlx::Error) -> Self {
        let code = match &e {
            sqlx::Error::Database(db) => db.code().map(|c| c.into_owned()),
            _ => None,
        };
        // PostgreSQL's classes 08 (connection exception) and 57P (the server shutting down or
        // terminating the session, or not accepting connections yet) are the connection's fault.
        let server_gone = matches!(&e, sqlx::Error::Database(_))
            && code
                .as_deref()
                .is_some_and(|c| c.starts_with("08") || c.starts_with("57P"));
        let connection = server_gone
            || matches!(
                e,
                sqlx::Error::Io(_)
                    | sqlx::Error::PoolTimedOut
                    | sqlx::Error::PoolClosed
                    | sqlx::Error::Tls(_)
                    | sqlx::Error::WorkerCrashed
            );
        Self {
            code,
            connection,
            source: Arc::new(e),
        }
    }

    pub(crate) fn from_sqlite(e: rusqlite::Error) -> Self {
        let code = e.sqlite_error().map(|f| f.extended_code.to_string());
        Self {
            code,
            connection: false,
            source: Arc::new(e),
        }
    }

    /// The database's own error code, when it gave one: the SQLSTATE on PostgreSQL (`23505`),
    /// the extended result code on SQLite (`2067`).
    pub fn code(&self) -> Option<&str> {
        self.code.as_deref()
    }

    /// Whether the connection itself failed (I/O, TLS, a pool that timed out or closed): the
    /// database may be fine again later.
    pub fn is_connection(&self) -> bool {
        self.connection
    }
}

impl std::fmt::Display for DbError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.source.fmt(f)
    }
}

impl std::error::Error for DbError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(self.source.as_ref())
    }
}
