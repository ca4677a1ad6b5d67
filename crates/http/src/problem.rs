//! Errors as RFC 9457 problems (`application/problem+json`): [`ApiError`], the crate's one
//! error enum, and [`Problem`], its body. Every problem carries `code`, the cause's name (a
//! rule's SPEC name for a refusal). SPEC §12: a refusal by a rule is `409` (`403` for the role
//! rules), an invalid value `422`, a body over the limit `413`, the store or an outside system
//! unavailable `503` with `Retry-After`. No input produces another 5xx: a `500` is a stored
//! history (or adapter row) that does not verify (`integrity`, `corrupt-row`, …) or a bug
//! (`internal`).
//!
//! The table is [`ApiError::problem`], one exhaustive `match` over this crate's variants, and
//! for the libraries' errors one over the store's [`Handling`] (which their own exhaustive
//! `handling()` methods choose), so a new variant or a new way of handling compiles only with
//! a decision on its answer.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use billing_adapters::AdapterError;
use billing_domain::{DomainError, WorkspaceId};
use billing_store::{Handling, StoreError};
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
    /// The token grants the caller no role in the workspace (`403 workspace-not-granted`, for a
    /// command as for a read): use a token that grants one. (A role that may not do what a
    /// command asks is the domain's rule: `403 not-workspace-owner`, `403 not-billing-system`.)
    #[error("actor {actor} has no role in workspace {workspace}")]
    NoRole {
        /// The caller.
        actor: String,
        /// The workspace.
        workspace: WorkspaceId,
        /// Whether the request was a command (else a read): for the console's words.
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
    /// The store's error, answered by how it is handled ([`StoreError::handling`]) with its code
    /// ([`StoreError::code`]): a refusal `409` (`403` for the role rules, `422` for bad input), a
    /// re-used command id `422 command-id-reused`, a conflict `409 conflict` (the API answers
    /// one under `If-Match` as [`ApiError::PreconditionFailed`]), the store or an outside system
    /// unavailable `503`, a stored history that does not verify or a bug `500`.
    #[error("{0}")]
    Store(#[from] StoreError),
    /// The views' or the outside systems' error, answered like the store's
    /// ([`AdapterError::handling`], [`AdapterError::code`]).
    #[error("{0}")]
    Adapter(#[from] AdapterError),
    /// A bug in this crate (`500 internal`), not in the request or the store: report it. The
    /// detail says whether the command was written (re-sending it with the same
    /// `Idempotency-Key` answers its outcome).
    #[error("internal error (a bug in workspace-billing's HTTP API; please report it): {detail}")]
    Internal {
        /// What went wrong, and whether anything was written.
        detail: String,
    },
}

/// A domain error met at this door (a value that does not parse): answered by its kind, as the
/// store's refusals are.
impl From<DomainError> for ApiError {
    fn from(e: DomainError) -> Self {
        ApiError::Store(StoreError::Refused(e))
    }
}

/// The HTTP status of a way of handling an error. One exhaustive `match`: a new way of handling
/// compiles only with a decision here.
fn status_of(handling: Handling) -> StatusCode {
    match handling {
        Handling::Refused | Handling::Conflict => StatusCode::CONFLICT,
        Handling::Forbidden => StatusCode::FORBIDDEN,
        Handling::BadInput | Handling::CommandIdReused => StatusCode::UNPROCESSABLE_ENTITY,
        // With `Retry-After` (see `Problem::into_response`).
        Handling::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        // No input produces these: a stored history or row that does not verify, or a bug.
        Handling::Integrity | Handling::Bug => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

fn store_problem(e: &StoreError) -> Problem {
    let detail = match e {
        // A database fault is not the input's: the command may be re-sent with the same key.
        StoreError::Database(_) => format!(
            "{e}; the command may have been written: re-send it with the same Idempotency-Key"
        ),
        _ => e.to_string(),
    };
    Problem::new(status_of(e.handling()), e.code(), detail)
}

impl ApiError {
    /// The problem this error is answered with.
    pub fn problem(&self) -> Problem {
        let detail = self.to_string();
        match self {
            ApiError::Unauthenticated(e) => {
                Problem::new(StatusCode::UNAUTHORIZED, e.code(), detail)
            }
            ApiError::NoRole { .. } => {
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
            ApiError::Adapter(e) => Problem::new(status_of(e.handling()), e.code(), detail),
            ApiError::Internal { .. } => {
                Problem::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", detail)
            }
        }
    }

    /// A bug in this crate, described by `detail`.
    pub(crate) fn internal(detail: impl Into<String>) -> Self {
        ApiError::Internal {
            detail: detail.into(),
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

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use axum::http::header::RETRY_AFTER;
    use axum::response::IntoResponse;
    use billing_adapters::AdapterError;
    use billing_domain::WorkspaceId;
    use billing_store::StoreError;

    use super::ApiError;
    use crate::auth::AuthError;

    fn samples() -> (usize, Vec<ApiError>) {
        let w = WorkspaceId::parse("acme").unwrap();
        billing_domain::one_of_each!(ApiError;
            ApiError::Unauthenticated(_) => ApiError::Unauthenticated(AuthError::Missing),
                ApiError::Unauthenticated(AuthError::Malformed("not a JWT".into())),
                ApiError::Unauthenticated(AuthError::Invalid("bad signature".into())),
                ApiError::Unauthenticated(AuthError::Expired);
            ApiError::NoRole { .. } => ApiError::NoRole {
                actor: "eve".into(),
                workspace: w.clone(),
                command: true,
            }, ApiError::NoRole {
                actor: "eve".into(),
                workspace: w.clone(),
                command: false,
            };
            ApiError::SystemOnly { .. } => ApiError::SystemOnly {
                actor: "alice".into(),
                what: "read the event feed",
            };
            ApiError::MissingIdempotencyKey => ApiError::MissingIdempotencyKey;
            ApiError::MalformedBody(_) => ApiError::MalformedBody("expected value".into());
            ApiError::InvalidValue { .. } => ApiError::invalid("site", "may not be empty");
            ApiError::BodyTooLarge { .. } => ApiError::BodyTooLarge { limit: 65_536 };
            ApiError::PreconditionFailed { .. } => ApiError::PreconditionFailed {
                workspace: w,
                expected: "\"3\"".into(),
                actual: 4,
            };
            ApiError::NotFound(_) => ApiError::NotFound("/v2".into());
            ApiError::Store(_) => ApiError::Store(StoreError::NotEmpty);
            ApiError::Adapter(_) => ApiError::Adapter(AdapterError::Delivery("refused".into()));
            ApiError::Internal { .. } => ApiError::internal("a view that does not serialize");
        )
    }

    /// Every code this crate's own variants answer, with its status. (The store's, the
    /// adapters' and the domain's errors, every variant, are in the CLI's table test
    /// `every_error_has_its_exit_status_and_problem`, which checks both doors.)
    const ANSWERS: &[(&str, u16)] = &[
        ("missing-token", 401),
        ("malformed-token", 401),
        ("invalid-token", 401),
        ("token-expired", 401),
        ("workspace-not-granted", 403),
        ("not-billing-system", 403),
        ("idempotency-key-required", 400),
        ("malformed-body", 400),
        ("invalid-value", 422),
        ("body-too-large", 413),
        ("precondition-failed", 412),
        ("not-found", 404),
        ("not-empty", 409),
        ("delivery-failed", 503),
        ("internal", 500),
    ];

    /// Before issue 18 a command by a token that grants no role in the workspace answered
    /// `403 not-workspace-owner`, the code of the domain's role rule (a member or admin sending
    /// an owner's command); it is `workspace-not-granted` now, as a read always was. And a bug
    /// of this crate was a `StoreError::Internal`; it is `ApiError::Internal`.
    #[test]
    fn every_api_error_answers_its_status_and_code() {
        let (arms, all) = samples();
        let variants: HashSet<_> = all.iter().map(std::mem::discriminant).collect();
        assert_eq!(variants.len(), arms);
        for e in all {
            let problem = e.problem();
            let expected = ANSWERS
                .iter()
                .find(|(code, _)| *code == problem.code)
                .map(|(_, status)| *status);
            assert_eq!(expected, Some(problem.status), "{e:?} answered {problem:?}");
            assert!(
                problem
                    .type_uri
                    .ends_with(&format!("#problem-{}", problem.code)),
                "{problem:?}"
            );
            let response = e.into_response();
            assert_eq!(
                response.headers().get(RETRY_AFTER).is_some(),
                problem.status == 503,
                "{problem:?}: Retry-After with every 503, and only then"
            );
        }
    }
}
