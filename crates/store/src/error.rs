//! The store's one error type.

use std::path::PathBuf;

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
///   command id, which is safe.
/// - [`StoreError::Integrity`]: the stored history is broken; stop and audit.
/// - [`StoreError::InvalidUrl`], [`StoreError::Io`], [`StoreError::ImportRefused`],
///   [`StoreError::NotEmpty`]: bad input; fix it.
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
    /// The URL names no supported database.
    #[error("invalid database URL {url:?}: {reason}")]
    InvalidUrl {
        /// The URL (password removed).
        url: String,
        /// Why.
        reason: String,
    },
    /// The database does not answer.
    #[error("store unavailable at {url}: {reason}")]
    Unavailable {
        /// The URL (password removed).
        url: String,
        /// What the driver said.
        reason: String,
    },
    /// A database error.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
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

    /// Whether the database could not be reached or failed (as opposed to a refusal).
    pub fn is_unavailable(&self) -> bool {
        match self {
            StoreError::Unavailable { .. } => true,
            StoreError::Database(e) => matches!(
                e,
                sqlx::Error::Io(_)
                    | sqlx::Error::PoolTimedOut
                    | sqlx::Error::PoolClosed
                    | sqlx::Error::Tls(_)
                    | sqlx::Error::WorkerCrashed
            ),
            _ => false,
        }
    }
}
