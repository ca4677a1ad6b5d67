//! Exit statuses (SPEC §7) and the one error type of the CLI, with the mapping from the
//! libraries' errors.

use billing_adapters::AdapterError;
use billing_domain::DomainError;
use billing_store::StoreError;
use serde_json::{json, Value};

/// How the process ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Status {
    /// 0: done.
    Done,
    /// 1: refused by a domain rule, or audit findings.
    Refused,
    /// 2: bad usage, or input that cannot be opened or read.
    Usage,
    /// 3: store unavailable.
    Unavailable,
}

impl Status {
    /// The process exit code.
    pub(crate) fn code(self) -> u8 {
        match self {
            Status::Done => 0,
            Status::Refused => 1,
            Status::Usage => 2,
            Status::Unavailable => 3,
        }
    }
}

/// Why a command did not complete.
#[derive(Debug)]
pub(crate) struct CliError {
    /// The exit status.
    pub(crate) status: Status,
    /// A stable code: the rule name for refusals (`unknown-user-name`), else a kind
    /// (`usage`, `invalid-value`, `store-unavailable`, …).
    pub(crate) code: String,
    /// The message, naming the values involved.
    pub(crate) message: String,
    /// More to say (e.g. import findings), shown in full in JSON output.
    pub(crate) details: Option<Value>,
    /// Lines to print before the message in human output.
    pub(crate) lines: Vec<String>,
}

impl CliError {
    /// An error with no details.
    pub(crate) fn new(status: Status, code: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            status,
            code: code.into(),
            message: message.into(),
            details: None,
            lines: Vec::new(),
        }
    }

    /// Bad usage or unreadable input (exit status 2).
    pub(crate) fn usage(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(Status::Usage, code, message)
    }

    /// The error as the JSON document of `--json` output.
    pub(crate) fn to_json(&self) -> Value {
        let mut error = json!({ "code": self.code, "message": self.message });
        if let (Some(details), Some(map)) = (&self.details, error.as_object_mut()) {
            map.insert("details".into(), details.clone());
        }
        json!({ "error": error })
    }
}

impl From<DomainError> for CliError {
    fn from(error: DomainError) -> Self {
        let status = if error.is_bad_input() {
            Status::Usage
        } else if matches!(error, DomainError::PortUnavailable { .. }) {
            Status::Unavailable
        } else {
            Status::Refused
        };
        Self::new(status, error.code(), error.to_string())
    }
}

impl From<StoreError> for CliError {
    fn from(error: StoreError) -> Self {
        let message = error.to_string();
        if error.is_unavailable() {
            return Self::new(Status::Unavailable, "store-unavailable", message);
        }
        match error {
            StoreError::Refused(domain) => domain.into(),
            StoreError::InvalidUrl { .. } => Self::usage("invalid-url", message),
            StoreError::Io { .. } => Self::usage("io", message),
            StoreError::NotEmpty => Self::new(Status::Refused, "not-empty", message),
            StoreError::ImportRefused { findings, total } => {
                let mut e = Self::new(Status::Refused, "import-refused", message);
                e.lines = findings.iter().map(ToString::to_string).collect();
                if total > findings.len() as u64 {
                    e.lines
                        .push(format!("… and {} more", total - findings.len() as u64));
                }
                e.details = Some(json!({ "findings": findings, "total": total }));
                e
            }
            StoreError::CommandIdReused { .. } => {
                Self::new(Status::Refused, "command-id-reused", message)
            }
            StoreError::Integrity { .. } => Self::new(Status::Refused, "integrity", message),
            StoreError::ImportChanged { .. } => Self::usage("import-changed", message),
            StoreError::Shortfall { .. } => Self::new(Status::Unavailable, "shortfall", message),
            // Not the input's fault and not a rule: the operator can only retry and report it.
            StoreError::Internal { .. } => {
                Self::new(Status::Unavailable, "internal-error", message)
            }
            StoreError::Conflict { .. } => Self::new(Status::Unavailable, "conflict", message),
            StoreError::Migration(_) => Self::new(Status::Unavailable, "migration-failed", message),
            // Unavailable and the database errors of an unreachable store are handled above;
            // any other database failure is the store's, not the input's.
            _ => Self::new(Status::Unavailable, "database-error", message),
        }
    }
}

impl From<AdapterError> for CliError {
    fn from(error: AdapterError) -> Self {
        let message = error.to_string();
        match error {
            AdapterError::Store(e) => e.into(),
            AdapterError::Integrity { .. } | AdapterError::Corrupt { .. } => {
                Self::new(Status::Refused, "integrity", message)
            }
            AdapterError::Internal { .. } => {
                Self::new(Status::Unavailable, "internal-error", message)
            }
            AdapterError::Behind { .. } => Self::new(Status::Unavailable, "views-behind", message),
            AdapterError::Shortfall { .. } => Self::new(Status::Unavailable, "shortfall", message),
            AdapterError::Delivery(_) => Self::new(Status::Unavailable, "delivery-failed", message),
            AdapterError::Invalid { .. } => Self::usage("invalid-value", message),
            AdapterError::UnknownEndpoint(_) => Self::usage("unknown-endpoint", message),
            _ => Self::new(Status::Unavailable, "database-error", message),
        }
    }
}

#[cfg(test)]
mod tests {
    use billing_domain::{UserName, WorkspaceId};

    use super::*;

    #[test]
    fn refusals_bad_input_and_outages_map_to_their_statuses() {
        let refused: CliError = StoreError::Refused(DomainError::UpgradeNotRequested).into();
        assert_eq!(
            (refused.status.code(), refused.code.as_str()),
            (1, "upgrade-not-requested")
        );
        let bad = WorkspaceId::parse("a b")
            .map(|_| ())
            .map_err(CliError::from);
        assert_eq!(bad.map_err(|e| e.status.code()), Err(2));
        let url: CliError = StoreError::InvalidUrl {
            url: "x".into(),
            reason: "y".into(),
        }
        .into();
        assert_eq!(url.status.code(), 2);
        let down: CliError = AdapterError::Store(StoreError::Unavailable {
            url: "x".into(),
            reason: "y".into(),
        })
        .into();
        assert_eq!(down.status.code(), 3);
        let port: CliError = DomainError::PortUnavailable {
            port: "expense center",
            reason: "down".into(),
        }
        .into();
        assert_eq!(port.status.code(), 3);
        let taken = UserName::parse("acme-finance")
            .map(|user_name| CliError::from(DomainError::UserNameTaken { user_name }));
        assert_eq!(taken.map(|e| e.status.code()).ok(), Some(1));
    }

    #[test]
    fn json_errors_have_code_and_message() {
        let e = CliError::usage("usage", "bad");
        assert_eq!(
            e.to_json(),
            json!({ "error": { "code": "usage", "message": "bad" } })
        );
    }
}
