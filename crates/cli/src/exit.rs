//! Exit statuses (SPEC §7) and the one error type of the CLI, with the mapping from the
//! libraries' errors.

use billing_adapters::AdapterError;
use billing_domain::DomainError;
use billing_store::{Handling, StoreError};
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

/// The exit status of a way of handling an error (SPEC §7). One exhaustive `match`: a new way of
/// handling compiles only with a decision here, and each error enum's own `handling()` (an
/// exhaustive `match` in its crate) decides for each of its variants.
fn status_of(handling: Handling) -> Status {
    match handling {
        // 1: refused by a rule (the domain's, a role's, the store's: a re-used command id, an
        // import into a store that holds events), or findings: stored data that does not verify.
        Handling::Refused
        | Handling::Forbidden
        | Handling::CommandIdReused
        | Handling::Integrity => Status::Refused,
        // 2: the input is wrong or cannot be read.
        Handling::BadInput => Status::Usage,
        // 3: the store (or an outside system) cannot serve now: retry later. Other writers that
        // outlasted the retries and a bug in the library are not the input's fault nor a rule:
        // the operator can only retry (and report a bug).
        Handling::Conflict | Handling::Unavailable | Handling::Bug => Status::Unavailable,
    }
}

impl From<DomainError> for CliError {
    fn from(error: DomainError) -> Self {
        Self::new(
            status_of(error.kind().into()),
            error.code(),
            error.to_string(),
        )
    }
}

impl From<StoreError> for CliError {
    fn from(error: StoreError) -> Self {
        let mut e = Self::new(status_of(error.handling()), error.code(), error.to_string());
        if let StoreError::ImportRefused { findings, total } = &error {
            e.lines = findings.iter().map(ToString::to_string).collect();
            if *total > findings.len() as u64 {
                e.lines
                    .push(format!("… and {} more", total - findings.len() as u64));
            }
            e.details = Some(json!({ "findings": findings, "total": total }));
        }
        e
    }
}

impl From<AdapterError> for CliError {
    fn from(error: AdapterError) -> Self {
        if let AdapterError::Store(store) = error {
            // The store's own mapping, with its details (import findings).
            return store.into();
        }
        Self::new(status_of(error.handling()), error.code(), error.to_string())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

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

    /// Every code the libraries' errors carry, with the exit status (SPEC §7) and the HTTP status
    /// (SPEC §12) it is answered with: the decision, written down once for both doors.
    const ANSWERS: &[(&str, u8, u16)] = &[
        // The domain's rule refusals: 1 / 409, the role rules 1 / 403.
        ("already-commercial", 1, 409),
        ("upgrade-already-requested", 1, 409),
        ("upgrade-not-requested", 1, 409),
        ("unknown-site", 1, 409),
        ("unknown-user-name", 1, 409),
        ("user-name-taken", 1, 409),
        ("account-not-bound", 1, 409),
        ("account-already-bound", 1, 409),
        ("not-commercial-yet", 1, 409),
        ("settlement-not-allowed-on-site", 1, 409),
        ("settlement-unchanged", 1, 409),
        ("settlement-change-too-soon", 1, 409),
        ("cloud-settlement-locked-in", 1, 409),
        ("cloud-account-not-subscribed", 1, 409),
        ("clock-behind-stream", 1, 409),
        ("workspace-locked", 1, 409),
        ("workspace-dissolved", 1, 409),
        ("not-in-countdown", 1, 409),
        ("deadline-not-reached", 1, 409),
        ("reminder-already-sent", 1, 409),
        ("arrears-already-recorded", 1, 409),
        ("unknown-arrears", 1, 409),
        ("not-settling-through-account", 1, 409),
        ("cloud-subscription-already-ended", 1, 409),
        ("cloud-subscription-not-ended", 1, 409),
        ("not-workspace-owner", 1, 403),
        ("not-billing-system", 1, 403),
        // Bad input: 2 / 422 (the domain's, the store's, the adapters').
        ("invalid-value", 2, 422),
        ("invalid-settlement-request", 2, 422),
        ("invalid-site-policy", 2, 422),
        ("invalid-url", 2, 422),
        ("import-changed", 2, 422),
        ("io", 2, 422),
        ("unknown-endpoint", 2, 422),
        // The store's own refusals: 1 (409, or 422 for a re-used command id, SPEC §12).
        ("command-id-reused", 1, 422),
        ("not-empty", 1, 409),
        ("lost-lease", 1, 409),
        // Other writers moved the workspace on: 3 / 409 (412 under If-Match, in the API).
        ("conflict", 3, 409),
        // Retry later: 3 / 503 with Retry-After.
        ("port-unavailable", 3, 503),
        ("store-unavailable", 3, 503),
        ("shortfall", 3, 503),
        ("migration-failed", 3, 503),
        ("handler-failed", 3, 503),
        ("views-behind", 3, 503),
        ("delivery-failed", 3, 503),
        // Stored data (or a file to import) that does not verify: 1 (findings) / 500.
        ("integrity", 1, 500),
        ("invalid-transition", 1, 500),
        ("unsupported-version", 1, 500),
        ("import-refused", 1, 500),
        ("corrupt-row", 1, 500),
        ("view-schema", 1, 500),
        // A bug in the library: 3 / 500.
        ("internal", 3, 500),
        ("verification-missing", 3, 500),
    ];

    /// Every variant of `DomainError`, `StoreError` and `AdapterError` (each error crate's
    /// `one_of_each`, which does not compile while it misses a variant), alone and wrapped in
    /// the errors that carry it, through the CLI's mapping and the HTTP API's: each gets the
    /// exit status and the problem status its code has in `ANSWERS`, with the same code at
    /// both doors. A new variant fails here until its answer is written down above.
    #[test]
    fn every_error_has_its_exit_status_and_problem() {
        fn check(seen: &mut HashSet<&'static str>, cli: CliError, api: billing_http::ApiError) {
            let problem = api.problem();
            let answer = ANSWERS.iter().find(|(code, ..)| *code == cli.code);
            let Some((code, exit, status)) = answer else {
                panic!(
                    "no answer for {} ({}): add it to ANSWERS",
                    cli.code, cli.message
                );
            };
            assert_eq!(
                (cli.status.code(), problem.status, problem.code.as_str()),
                (*exit, *status, *code),
                "{}",
                cli.message
            );
            seen.insert(code);
        }
        let domain = || DomainError::one_of_each().unwrap();
        let mut seen = HashSet::new();
        let mut checked = 0;
        for (cli, api) in domain().into_iter().zip(domain()) {
            check(&mut seen, cli.into(), api.into());
            checked += 1;
        }
        for (cli, api) in domain().into_iter().zip(domain()) {
            check(
                &mut seen,
                StoreError::Refused(cli).into(),
                StoreError::Refused(api).into(),
            );
            checked += 1;
        }
        let stores = StoreError::one_of_each;
        for (cli, api) in stores().into_iter().zip(stores()) {
            check(&mut seen, cli.into(), api.into());
            checked += 1;
        }
        for (cli, api) in stores().into_iter().zip(stores()) {
            check(
                &mut seen,
                AdapterError::Store(cli).into(),
                AdapterError::Store(api).into(),
            );
            checked += 1;
        }
        let adapters = AdapterError::one_of_each;
        for (cli, api) in adapters().into_iter().zip(adapters()) {
            check(&mut seen, cli.into(), api.into());
            checked += 1;
        }
        let unused: Vec<_> = ANSWERS
            .iter()
            .map(|(code, ..)| *code)
            .filter(|code| !seen.contains(code))
            .collect();
        assert!(unused.is_empty(), "no error answers {unused:?} any more");
        assert!(checked > ANSWERS.len(), "{checked} errors checked");
    }

    /// Corrected in issue 18: these went through wildcard arms before, and came out as
    /// `database-error` with exit status 3 (a subscription another instance took over, a view
    /// table of the wrong shape) or as a rule refusal with exit status 1 (a caller bug), and an
    /// outside system that did not answer rode in `StoreError::Refused`.
    #[test]
    fn causes_that_went_through_a_wildcard_have_their_own_answer() {
        let lease: CliError = StoreError::LostLease {
            subscription: "views".into(),
            holder: "b".into(),
        }
        .into();
        assert_eq!(
            (lease.status.code(), lease.code.as_str()),
            (1, "lost-lease")
        );
        let schema: CliError = AdapterError::Schema {
            table: "billing_view",
            detail: "an extra column".into(),
        }
        .into();
        assert_eq!(
            (schema.status.code(), schema.code.as_str()),
            (1, "view-schema")
        );
        let bug: CliError = DomainError::VerificationMissing {
            what: "the Expense Center account",
        }
        .into();
        assert_eq!(
            (bug.status.code(), bug.code.as_str()),
            (3, "verification-missing")
        );
        let port: CliError = StoreError::PortUnavailable {
            port: "marketplace",
            reason: "timed out".into(),
        }
        .into();
        assert_eq!(
            (port.status.code(), port.code.as_str()),
            (3, "port-unavailable")
        );
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
