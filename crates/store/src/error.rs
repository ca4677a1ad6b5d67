//! The store's one error type, and the database fault it carries.

use std::path::PathBuf;
use std::sync::Arc;

use billing_domain::{DomainError, DomainErrorKind};
use thiserror::Error;

use crate::verify::Finding;

/// Why a store operation did not happen.
///
/// Each variant has one cause and says how to handle it; [`StoreError::handling`] sorts them
/// into the few ways a caller (the CLI's exit status, the HTTP status) answers them, and
/// [`StoreError::code`] names each cause. In short:
/// - [`StoreError::Refused`]: a domain rule refused the command, or its input is malformed;
///   nothing was written. Show the message; do not retry as is.
/// - [`StoreError::PortUnavailable`]: an outside system could not answer while the command was
///   decided; nothing was written. Retry later.
/// - [`StoreError::Conflict`]: the workspace is not at the sequence the command was decided at
///   (another writer came first, or an `If-Match` names an old version); nothing was written.
///   Read it again and decide again
///   ([`BillingStore::execute_with_retry`](crate::BillingStore::execute_with_retry) does).
/// - [`StoreError::CommandIdReused`]: a client bug: pick a new command id.
/// - [`StoreError::Unavailable`] / [`StoreError::Database`]: infrastructure; retry later. A
///   command that failed this way may or may not have been written: re-send it with the same
///   command id, which is safe (the store answers with the original outcome).
/// - [`StoreError::Integrity`]: the stored history of a workspace does not verify (its hashes,
///   links, sequences or head, or an event that breaks the rules); stop and audit
///   (`billing audit`).
/// - [`StoreError::Internal`]: a bug in this library, not in the input or the database; report
///   it. The message says whether anything was written.
/// - [`StoreError::Shortfall`]: a long read ended early; what it produced is incomplete. Retry.
/// - [`StoreError::InvalidUrl`], [`StoreError::Io`], [`StoreError::ImportChanged`]: bad input;
///   fix it. [`StoreError::ImportRefused`]: the file to import does not verify; audit it.
///   [`StoreError::NotEmpty`]: import into an empty store.
/// - [`StoreError::Migration`]: the schema could not be brought up to date; nothing else was
///   done. Retry; one that fails again is usually a database of a newer release (upgrade).
/// - [`StoreError::LostLease`]: another instance of the subscription took over; stop this one.
/// - [`StoreError::Handler`]: a subscription's handler failed; nothing of its batch was written
///   and the batch comes again.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum StoreError {
    /// A domain rule refused the command, or its input is malformed
    /// ([`DomainErrorKind::Rule`], [`DomainErrorKind::Role`], [`DomainErrorKind::BadInput`]);
    /// nothing was written. Show the message; do not retry as is. The store puts no other
    /// [`DomainError`] here: an outside system failing is [`StoreError::PortUnavailable`], a
    /// stored history the domain cannot fold is [`StoreError::Integrity`], and a domain answer
    /// that can only be a bug is [`StoreError::Internal`].
    #[error("{0}")]
    Refused(DomainError),
    /// An outside system (Expense Center, cloud marketplace) could not answer while the command
    /// was decided; nothing was written. Retry later.
    #[error("{port} unavailable: {reason}; nothing written: retry later")]
    PortUnavailable {
        /// Which system (`expense center`, `marketplace`).
        port: &'static str,
        /// What it reported.
        reason: String,
    },
    /// The workspace is not at the sequence the command was decided at: another writer appended
    /// first, or the caller expected a version it has moved past
    /// ([`BillingStore::execute_expecting`](crate::BillingStore::execute_expecting), HTTP's
    /// `If-Match`). Nothing was written. Read the workspace again and decide again
    /// ([`BillingStore::execute_with_retry`](crate::BillingStore::execute_with_retry) does).
    #[error("conflict: workspace {workspace} {}; nothing written: read it again and decide again", conflict_at(*.expected, *.actual))]
    Conflict {
        /// The workspace.
        workspace: String,
        /// The sequence the command was decided at (or the caller expected).
        expected: u64,
        /// The sequence the workspace is at, when the store read it (always on
        /// [`BillingStore::execute_expecting`](crate::BillingStore::execute_expecting)); `None`
        /// when the append itself found another writer's event in its place.
        actual: Option<u64>,
    },
    /// The command id was used before for different content; nothing was written. A client
    /// bug: send the command under a new id.
    #[error("command-id-reused: command id {command_id} was already used for a different command (on workspace {workspace}); use a new id")]
    CommandIdReused {
        /// The command id.
        command_id: String,
        /// The workspace it was first used on.
        workspace: String,
    },
    /// The stored history of a workspace does not verify: a hash, link, sequence or head, or an
    /// event the domain's rules refuse to fold. Only a corrupt or altered database has one: stop
    /// and audit (`billing audit`).
    #[error("integrity: workspace {workspace}: {detail}")]
    Integrity {
        /// The workspace.
        workspace: String,
        /// What does not verify.
        detail: String,
    },
    /// A bug in this library (not in the input, not in the database): report it.
    #[error("internal error (a bug in workspace-billing; please report it): {detail}")]
    Internal {
        /// What went wrong, and whether anything was written.
        detail: String,
    },
    /// A long read (export, audit) read fewer events than the store holds: its output is
    /// incomplete. Run it again.
    #[error("{operation} read {read} events but the store holds {expected}; its output is incomplete: run it again")]
    Shortfall {
        /// What was reading (`export`, `audit`).
        operation: &'static str,
        /// Events read.
        read: u64,
        /// Events the store held when the read began.
        expected: u64,
    },
    /// The URL names no supported database: fix the URL.
    #[error("invalid database URL {url:?}: {reason}")]
    InvalidUrl {
        /// The URL (password removed).
        url: String,
        /// Why.
        reason: String,
    },
    /// The database does not answer, or did not let the store in within its timeout. Retry
    /// later; a command may have been written: re-send it with the same command id.
    #[error("store unavailable at {url}: {reason}")]
    Unavailable {
        /// The URL (password removed).
        url: String,
        /// What the driver said, or what the store waited for.
        reason: String,
    },
    /// The database reported an error, or the connection broke during the operation
    /// ([`DbError::is_connection`]). Retry later; a command may have been written: re-send it
    /// with the same command id.
    #[error("database error: {0}")]
    Database(DbError),
    /// The schema migrations failed; nothing else was done. Retry; one that fails again is
    /// usually a database a newer release migrated: upgrade this one.
    #[error("migration failed: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
    /// Import needs an empty store; nothing was written. Import into an empty store.
    #[error("import refused: the store already holds events; import into an empty store")]
    NotEmpty,
    /// The file to import does not verify; nothing was written. Audit the file
    /// (`billing audit --from`).
    #[error("import refused: {total} finding(s), nothing written; first: {}", .findings.first().map(ToString::to_string).unwrap_or_default())]
    ImportRefused {
        /// The first findings (at most 100).
        findings: Vec<Finding>,
        /// How many findings in all.
        total: u64,
    },
    /// The file being imported changed between its verification and its writing; nothing was
    /// written. Import it again once nothing writes to it.
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
    /// A file could not be read or written: fix the path or its permissions.
    #[error("{}: {source}", .path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

/// Sorts what the domain answered a command on `workspace` with. A refusal (a rule, a role, bad
/// input) comes back, for the store to report as [`StoreError::Refused`] once it has ruled out a
/// stale decision; anything else is the store's error for its cause, at once: an outside system
/// that did not answer, a stored history the state was folded from but cannot be decided on
/// (corrupt), or facts that do not fit the command (the store gathered them: a bug). Nothing was
/// written for any of them.
pub(crate) fn domain_refusal(workspace: &str, e: DomainError) -> Result<DomainError, StoreError> {
    match e.kind() {
        DomainErrorKind::Rule | DomainErrorKind::Role | DomainErrorKind::BadInput => Ok(e),
        DomainErrorKind::PortUnavailable => match e {
            DomainError::PortUnavailable { port, reason } => {
                Err(StoreError::PortUnavailable { port, reason })
            }
            e => Err(StoreError::internal(format!(
                "workspace {workspace}: {} is classified as an outside system failing ({e}); nothing was written",
                e.code()
            ))),
        },
        DomainErrorKind::StoredHistory => Err(StoreError::Integrity {
            workspace: workspace.to_owned(),
            detail: format!("the stored history cannot be decided on: {e}"),
        }),
        DomainErrorKind::CallerBug => Err(StoreError::internal(format!(
            "workspace {workspace}: the domain answered {} to facts the store gathered for this command ({e}); nothing was written",
            e.code()
        ))),
    }
}

/// How far a conflicting workspace had moved, for [`StoreError::Conflict`]'s message.
fn conflict_at(expected: u64, actual: Option<u64>) -> String {
    match actual {
        Some(actual) => format!("is at sequence {actual}, not the expected {expected}"),
        None => format!("moved past sequence {expected} while this command was decided"),
    }
}

/// How a caller handles a [`StoreError`] (or an error that wraps one): what
/// [`StoreError::handling`] returns, and what a door maps to its answer (the CLI's exit status,
/// the HTTP status).
///
/// Not `#[non_exhaustive]`, unlike the error enums: a new way of handling is one every door must
/// decide how to answer, and a `match` on this enum in another crate needs no wildcard arm, so
/// adding one fails to compile there until it does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Handling {
    /// A rule refused: a domain rule, or the store's own (import only into an empty store, a
    /// subscription another instance runs). Nothing was written; show the message, do not retry
    /// as is.
    Refused,
    /// A role rule refused: the actor's role may not do this. Nothing was written; send it as
    /// an actor who holds the role.
    Forbidden,
    /// The input is malformed: a value, a settlement request, a URL, a file. Nothing was
    /// written; correct the input.
    BadInput,
    /// The command id names another command. Nothing was written; send this one under a new id.
    CommandIdReused,
    /// The workspace moved on while the command was decided. Nothing was written; read it again
    /// and decide again.
    Conflict,
    /// The store, its database or an outside system cannot serve now. Retry later; a command
    /// may have been written: re-send it with the same command id.
    Unavailable,
    /// Stored data — a workspace's history, an adapter's row or table, or a file to import —
    /// does not verify. Only a corrupt or altered database or file has it: audit.
    Integrity,
    /// A bug in this library: report it.
    Bug,
}

impl From<DomainErrorKind> for Handling {
    fn from(kind: DomainErrorKind) -> Self {
        match kind {
            DomainErrorKind::Rule => Handling::Refused,
            DomainErrorKind::Role => Handling::Forbidden,
            DomainErrorKind::BadInput => Handling::BadInput,
            DomainErrorKind::PortUnavailable => Handling::Unavailable,
            DomainErrorKind::StoredHistory => Handling::Integrity,
            DomainErrorKind::CallerBug => Handling::Bug,
        }
    }
}

impl StoreError {
    /// How a caller handles this error (an exhaustive `match`: a new variant compiles only
    /// with a decision here).
    pub fn handling(&self) -> Handling {
        match self {
            StoreError::Refused(e) => e.kind().into(),
            StoreError::PortUnavailable { .. }
            | StoreError::Unavailable { .. }
            | StoreError::Database(_)
            | StoreError::Shortfall { .. }
            | StoreError::Migration(_)
            | StoreError::Handler { .. } => Handling::Unavailable,
            StoreError::Conflict { .. } => Handling::Conflict,
            StoreError::CommandIdReused { .. } => Handling::CommandIdReused,
            StoreError::Integrity { .. } | StoreError::ImportRefused { .. } => Handling::Integrity,
            StoreError::Internal { .. } => Handling::Bug,
            StoreError::InvalidUrl { .. }
            | StoreError::ImportChanged { .. }
            | StoreError::Io { .. } => Handling::BadInput,
            StoreError::NotEmpty | StoreError::LostLease { .. } => Handling::Refused,
        }
    }

    /// The stable code of this error's cause: the rule name for a refusal
    /// (`not-workspace-owner`), else the cause's own (`conflict`, `store-unavailable`, …). The
    /// CLI's `--json` errors and the HTTP problems carry it.
    pub fn code(&self) -> &'static str {
        match self {
            StoreError::Refused(e) => e.code(),
            StoreError::PortUnavailable { .. } => "port-unavailable",
            StoreError::Conflict { .. } => "conflict",
            StoreError::CommandIdReused { .. } => "command-id-reused",
            StoreError::Integrity { .. } => "integrity",
            StoreError::Internal { .. } => "internal",
            StoreError::Shortfall { .. } => "shortfall",
            StoreError::InvalidUrl { .. } => "invalid-url",
            // One code for both: a client handles them alike (retry later, re-send the command
            // with the same id), and a database that answers with an error — one dropped under
            // the server says "does not exist" — is as unavailable to it as one that does not
            // answer. The message tells them apart.
            StoreError::Unavailable { .. } | StoreError::Database(_) => "store-unavailable",
            StoreError::Migration(_) => "migration-failed",
            StoreError::NotEmpty => "not-empty",
            StoreError::ImportRefused { .. } => "import-refused",
            StoreError::ImportChanged { .. } => "import-changed",
            StoreError::LostLease { .. } => "lost-lease",
            StoreError::Handler { .. } => "handler-failed",
            StoreError::Io { .. } => "io",
        }
    }

    /// Whether the workspace moved on while the command was decided
    /// ([`StoreError::Conflict`]): deciding again on the stored state may succeed.
    pub fn is_conflict(&self) -> bool {
        matches!(self, StoreError::Conflict { .. })
    }

    /// The domain's refusal, when a domain rule refused the command or its input
    /// ([`StoreError::Refused`]).
    pub fn domain(&self) -> Option<&DomainError> {
        match self {
            StoreError::Refused(e) => Some(e),
            _ => None,
        }
    }

    /// Whether the database could not be reached ([`StoreError::Unavailable`], or a
    /// [`StoreError::Database`] whose connection failed), as opposed to a refusal or a fault it
    /// reported: retrying later may succeed.
    pub fn is_unavailable(&self) -> bool {
        match self {
            StoreError::Unavailable { .. } => true,
            StoreError::Database(e) => e.is_connection(),
            _ => false,
        }
    }

    /// One value of every variant (two of [`StoreError::Database`]: a broken connection and
    /// another fault), for the tests of a mapping from this error in another crate (the CLI's
    /// exit statuses, the HTTP problems). The list is checked complete when this crate compiles
    /// ([`billing_domain::one_of_each!`]) and by its tests. [`StoreError::Refused`] appears with
    /// one rule; [`DomainError::one_of_each`] has the rest.
    pub fn one_of_each() -> Vec<StoreError> {
        Self::samples().1
    }

    fn samples() -> (usize, Vec<StoreError>) {
        let io = || std::io::Error::new(std::io::ErrorKind::NotFound, "no such file");
        billing_domain::one_of_each!(StoreError;
            StoreError::Refused(_) => StoreError::Refused(DomainError::UpgradeNotRequested);
            StoreError::PortUnavailable { .. } => StoreError::PortUnavailable {
                port: "expense center",
                reason: "connection refused".into(),
            };
            StoreError::Conflict { .. } => StoreError::Conflict {
                workspace: "acme".into(),
                expected: 3,
                actual: Some(4),
            }, StoreError::Conflict {
                workspace: "acme".into(),
                expected: 3,
                actual: None,
            };
            StoreError::CommandIdReused { .. } => StoreError::CommandIdReused {
                command_id: "c-1".into(),
                workspace: "acme".into(),
            };
            StoreError::Integrity { .. } => StoreError::Integrity {
                workspace: "acme".into(),
                detail: "sequence 2: hash-mismatch".into(),
            };
            StoreError::Internal { .. } => StoreError::internal("a sample; nothing was written");
            StoreError::Shortfall { .. } => StoreError::Shortfall {
                operation: "export",
                read: 9,
                expected: 10,
            };
            StoreError::InvalidUrl { .. } => StoreError::InvalidUrl {
                url: "mysql://db".into(),
                reason: "not a supported database".into(),
            };
            StoreError::Unavailable { .. } => StoreError::Unavailable {
                url: "postgres://db".into(),
                reason: "connection refused".into(),
            };
            StoreError::Database(_) => StoreError::from(sqlx::Error::PoolTimedOut),
                StoreError::from(sqlx::Error::RowNotFound);
            StoreError::Migration(_) => StoreError::Migration(
                sqlx::migrate::MigrateError::VersionMissing(99),
            );
            StoreError::NotEmpty => StoreError::NotEmpty;
            StoreError::ImportRefused { .. } => StoreError::ImportRefused {
                findings: Vec::new(),
                total: 1,
            };
            StoreError::ImportChanged { .. } => StoreError::ImportChanged {
                path: PathBuf::from("log.jsonl"),
                detail: "its length changed".into(),
            };
            StoreError::LostLease { .. } => StoreError::LostLease {
                subscription: "views".into(),
                holder: "b".into(),
            };
            StoreError::Handler { .. } => StoreError::Handler {
                subscription: "views".into(),
                detail: "the mailer failed".into(),
            };
            StoreError::Io { .. } => StoreError::Io {
                path: PathBuf::from("log.jsonl"),
                source: io(),
            };
        )
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

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use billing_domain::{DomainError, DomainErrorKind};

    use super::{domain_refusal, StoreError};

    /// What the domain answers that refuses nothing the user can fix gets the store's error for
    /// its cause: before issue 18 all of these came back as `StoreError::Refused` ("a rule
    /// refused: do not retry").
    #[test]
    fn a_domain_answer_that_refuses_nothing_is_not_refused() {
        let port = domain_refusal(
            "acme",
            DomainError::PortUnavailable {
                port: "marketplace",
                reason: "timed out".into(),
            },
        );
        assert!(
            matches!(&port, Err(StoreError::PortUnavailable { port: "marketplace", reason }) if reason == "timed out"),
            "{port:?}"
        );
        let history = domain_refusal(
            "acme",
            DomainError::InvalidTransition {
                event_type: "AgreementAccepted",
                reason: "no PlanUpgraded follows it".into(),
            },
        );
        assert!(
            matches!(&history, Err(StoreError::Integrity { workspace, detail })
                if workspace == "acme" && detail.contains("invalid-transition")),
            "{history:?}"
        );
        let bug = domain_refusal(
            "acme",
            DomainError::VerificationMissing {
                what: "the Expense Center account",
            },
        );
        assert!(
            matches!(&bug, Err(StoreError::Internal { detail })
                if detail.contains("verification-missing") && detail.contains("nothing was written")),
            "{bug:?}"
        );
        for e in DomainError::one_of_each().unwrap() {
            let refusal = matches!(
                e.kind(),
                DomainErrorKind::Rule | DomainErrorKind::Role | DomainErrorKind::BadInput
            );
            let sorted = domain_refusal("acme", e.clone());
            assert_eq!(sorted.as_ref().ok(), refusal.then_some(&e), "{e}");
        }
    }

    #[test]
    fn one_of_each_holds_a_value_of_every_variant() {
        let (arms, all) = StoreError::samples();
        let variants: HashSet<_> = all.iter().map(std::mem::discriminant).collect();
        assert_eq!(variants.len(), arms);
    }

    #[test]
    fn a_conflict_says_where_the_workspace_is_when_the_store_read_it() {
        let read = StoreError::Conflict {
            workspace: "acme".into(),
            expected: 3,
            actual: Some(5),
        };
        assert!(
            read.to_string()
                .contains("workspace acme is at sequence 5, not the expected 3"),
            "{read}"
        );
        let unread = StoreError::Conflict {
            workspace: "acme".into(),
            expected: 3,
            actual: None,
        };
        assert!(
            unread.to_string().contains("moved past sequence 3"),
            "{unread}"
        );
    }
}
