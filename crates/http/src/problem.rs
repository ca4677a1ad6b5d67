//! Errors as RFC 9457 problems (`application/problem+json`): [`ApiError`], the crate's one
//! error enum, and [`Problem`], its body. Every problem carries `code`, the rule name (SPEC
//! §12): a refusal by a rule is `409`, an invalid value `422`, a body over the limit `413`, the
//! store unavailable `503` with `Retry-After`. No input produces another 5xx.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use billing_adapters::AdapterError;
use billing_domain::{DomainError, WorkspaceId};
use billing_store::StoreError;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::AuthError;

/// Where the problem types are described (each code is an anchor there).
pub const PROBLEM_TYPES: &str =
    "https://github.com/workspace-billing/workspace-billing/blob/main/docs/http.md#problem-";

/// The media type of a problem.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// Seconds a client waits before retrying when the store is unavailable.
pub const RETRY_AFTER_SECONDS: u32 = 1;

/// An RFC 9457 problem, with the rule name in `code`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Problem {
    /// A URI naming the problem type (`…/docs/http.md#problem-CODE`).
    #[serde(rename = "type")]
    pub type_uri: String,
    /// A short summary of the type.
    pub title: String,
    /// The HTTP status.
    pub status: u16,
    /// What happened here, with the values involved.
    pub detail: String,
    /// The rule name (`not-workspace-owner`, `settlement-change-too-soon`, …).
    pub code: String,
}

impl Problem {
    /// A problem of `status` with `code` and `detail`.
    pub fn new(status: StatusCode, code: &str, detail: impl Into<String>) -> Self {
        Self {
            type_uri: format!("{PROBLEM_TYPES}{code}"),
            title: status.canonical_reason().unwrap_or("Error").to_owned(),
            status: status.as_u16(),
            detail: detail.into(),
            code: code.to_owned(),
        }
    }

    /// The status as a [`StatusCode`].
    pub fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = self.status_code();
        let retry = status == StatusCode::SERVICE_UNAVAILABLE;
        let body = serde_json::to_vec(&self).unwrap_or_default();
        let mut response = (status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        if retry {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECONDS));
        }
        response
    }
}

/// Everything a request can fail with. Each variant says how a client handles it; each is
/// answered as a [`Problem`] (see [`ApiError::problem`]). Nothing is written for any of them
/// except where a variant says so.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApiError {
    /// Not signed in (`401`): send a valid, unexpired token.
    #[error("{0}")]
    Unauthenticated(#[from] AuthError),
    /// The caller has no role in the workspace (`403 not-workspace-owner` for a command,
    /// `403 workspace-not-granted` for a read): use a token that grants one.
    #[error("actor {actor} has no role in workspace {workspace}")]
    NoRole {
        /// The caller.
        actor: String,
        /// The workspace.
        workspace: WorkspaceId,
        /// Whether the request was a command (else a read).
        command: bool,
    },
    /// Only the billing system may read this (`403 not-billing-system`).
    #[error("only the billing system may {what}; actor {actor} is not it")]
    SystemOnly {
        /// The caller.
        actor: String,
        /// What was asked.
        what: &'static str,
    },
    /// A `POST` without an `Idempotency-Key` header (`400 idempotency-key-required`): send one
    /// (a new one per command; the same one to re-send a command).
    #[error("every POST needs an Idempotency-Key header (a new one per command, the same one to re-send it)")]
    MissingIdempotencyKey,
    /// A body that is not JSON (`400 malformed-body`).
    #[error("the body is not JSON: {0}")]
    MalformedBody(String),
    /// A value that does not parse, or a body of the wrong shape (`422 invalid-value`, naming
    /// the field): fix the value.
    #[error("{field}: {reason}")]
    InvalidValue {
        /// The field, header or parameter.
        field: String,
        /// Why.
        reason: String,
    },
    /// A body over the limit (`413 body-too-large`).
    #[error("the body is larger than the {limit}-byte limit")]
    BodyTooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// `If-Match` names a version the workspace has moved past (`412 precondition-failed`):
    /// read the workspace again and decide again.
    #[error(
        "If-Match {expected} does not match workspace {workspace}, now at version \"{actual}\""
    )]
    PreconditionFailed {
        /// The workspace.
        workspace: WorkspaceId,
        /// What the request said.
        expected: String,
        /// The workspace's last sequence.
        actual: u64,
    },
    /// Nothing is served here (`404 not-found`).
    #[error("no such resource: {0}")]
    NotFound(String),
    /// The store's error: a refusal (`409`, or `403` for the role rules, `422` for bad
    /// values), a re-used command id (`422 command-id-reused`), the store unavailable (`503`),
    /// or a fault.
    #[error("{0}")]
    Store(#[from] StoreError),
    /// The views' or the outside systems' error.
    #[error("{0}")]
    Adapter(#[from] AdapterError),
}

impl From<DomainError> for ApiError {
    fn from(e: DomainError) -> Self {
        ApiError::Store(StoreError::Refused(e))
    }
}

/// The status of a domain refusal.
fn domain_status(e: &DomainError) -> StatusCode {
    match e {
        DomainError::NotWorkspaceOwner { .. } | DomainError::NotBillingSystem { .. } => {
            StatusCode::FORBIDDEN
        }
        DomainError::PortUnavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
        e if e.is_bad_input() => StatusCode::UNPROCESSABLE_ENTITY,
        _ => StatusCode::CONFLICT,
    }
}

fn store_problem(e: &StoreError) -> Problem {
    if let Some(d) = e.domain() {
        return Problem::new(domain_status(d), d.code(), d.to_string());
    }
    if e.is_unavailable() {
        return Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "store-unavailable",
            e.to_string(),
        );
    }
    match e {
        StoreError::CommandIdReused { .. } => Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "command-id-reused",
            e.to_string(),
        ),
        StoreError::Conflict { .. } => {
            Problem::new(StatusCode::CONFLICT, "conflict", e.to_string())
        }
        // A database fault is not the input's: the command may be re-sent with the same key.
        StoreError::Database(_) => Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "store-unavailable",
            format!(
                "{e}; the command may have been written: re-send it with the same Idempotency-Key"
            ),
        ),
        StoreError::Integrity { .. } => Problem::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "integrity",
            e.to_string(),
        ),
        _ => Problem::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()),
    }
}

impl ApiError {
    /// The problem this error is answered with.
    pub fn problem(&self) -> Problem {
        let detail = self.to_string();
        match self {
            ApiError::Unauthenticated(e) => {
                Problem::new(StatusCode::UNAUTHORIZED, e.code(), detail)
            }
            ApiError::NoRole { command: true, .. } => {
                Problem::new(StatusCode::FORBIDDEN, "not-workspace-owner", detail)
            }
            ApiError::NoRole { command: false, .. } => {
                Problem::new(StatusCode::FORBIDDEN, "workspace-not-granted", detail)
            }
            ApiError::SystemOnly { .. } => {
                Problem::new(StatusCode::FORBIDDEN, "not-billing-system", detail)
            }
            ApiError::MissingIdempotencyKey => {
                Problem::new(StatusCode::BAD_REQUEST, "idempotency-key-required", detail)
            }
            ApiError::MalformedBody(_) => {
                Problem::new(StatusCode::BAD_REQUEST, "malformed-body", detail)
            }
            ApiError::InvalidValue { .. } => {
                Problem::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid-value", detail)
            }
            ApiError::BodyTooLarge { .. } => {
                Problem::new(StatusCode::PAYLOAD_TOO_LARGE, "body-too-large", detail)
            }
            ApiError::PreconditionFailed { .. } => Problem::new(
                StatusCode::PRECONDITION_FAILED,
                "precondition-failed",
                detail,
            ),
            ApiError::NotFound(_) => Problem::new(StatusCode::NOT_FOUND, "not-found", detail),
            ApiError::Store(e) => store_problem(e),
            ApiError::Adapter(AdapterError::Store(e)) => store_problem(e),
            ApiError::Adapter(AdapterError::Database(_)) => {
                Problem::new(StatusCode::SERVICE_UNAVAILABLE, "store-unavailable", detail)
            }
            ApiError::Adapter(_) => {
                Problem::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", detail)
            }
        }
    }

    /// An invalid value of `field`.
    pub(crate) fn invalid(field: impl Into<String>, reason: impl std::fmt::Display) -> Self {
        ApiError::InvalidValue {
            field: field.into(),
            reason: reason.to_string(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let problem = self.problem();
        if problem.status >= 500 {
            tracing::error!(code = %problem.code, detail = %problem.detail, "request failed");
        }
        problem.into_response()
    }
}
