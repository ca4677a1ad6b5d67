//! The API's extractors: the caller's identity, the `Idempotency-Key` and `If-Match` headers,
//! and JSON bodies whose rejections are problems naming the field.

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, StatusCode};
use billing_domain::ExternalId;
use serde::de::DeserializeOwned;

use crate::auth::Identity;
use crate::problem::ApiError;
use crate::{Billing, BODY_LIMIT};

/// The signed-in caller.
pub(crate) struct Authed(pub(crate) Identity);

impl FromRequestParts<Billing> for Authed {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &Billing) -> Result<Self, ApiError> {
        Ok(Self(state.inner.auth.authenticate(parts).await?))
    }
}

/// The `Idempotency-Key` header: the command id.
pub(crate) struct IdempotencyKey(pub(crate) ExternalId);

/// The header's name.
pub(crate) const IDEMPOTENCY_KEY: &str = "idempotency-key";

impl<S: Send + Sync> FromRequestParts<S> for IdempotencyKey {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let value = parts
            .headers
            .get(IDEMPOTENCY_KEY)
            .ok_or(ApiError::MissingIdempotencyKey)?;
        let text = value
            .to_str()
            .map_err(|_| ApiError::invalid("Idempotency-Key", "is not visible ASCII text"))?;
        let id = ExternalId::parse(text).map_err(|e| ApiError::invalid("Idempotency-Key", e))?;
        Ok(Self(id))
    }
}

/// The `If-Match` header, if sent: the workspace version (`"<last sequence>"`) the caller
/// decided on.
pub(crate) struct IfMatch(pub(crate) Option<u64>);

impl<S: Send + Sync> FromRequestParts<S> for IfMatch {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        if_match(&parts.headers).map(Self)
    }
}

/// Reads `If-Match`: one strong entity tag of digits (`"12"`), or `*` (no condition).
pub(crate) fn if_match(headers: &HeaderMap) -> Result<Option<u64>, ApiError> {
    let Some(value) = headers.get(header::IF_MATCH) else {
        return Ok(None);
    };
    let bad = || {
        ApiError::invalid(
            "If-Match",
            "expected one entity tag like \"12\" (the ETag of GET /v1/workspaces/{id})",
        )
    };
    let text = value.to_str().map_err(|_| bad())?.trim();
    if text == "*" {
        return Ok(None);
    }
    let inner = text
        .strip_prefix('"')
        .and_then(|t| t.strip_suffix('"'))
        .ok_or_else(bad)?;
    if inner.is_empty() || !inner.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    inner.parse().map(Some).map_err(|_| bad())
}

/// A JSON body of `T`: not JSON → `400 malformed-body`; the wrong shape → `422 invalid-value`
/// naming the field; over [`BODY_LIMIT`] → `413 body-too-large`. An empty body reads as `{}`.
pub(crate) struct JsonBody<T>(pub(crate) T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let empty = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .is_some_and(|v| v.as_bytes() == b"0");
        let typed = req.headers().get(header::CONTENT_TYPE).is_some();
        if empty && !typed {
            return serde_json::from_str("{}")
                .map(Self)
                .map_err(|e| ApiError::invalid("body", e));
        }
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(value)) => Ok(Self(value)),
            Err(rejection) => Err(json_rejection(rejection)),
        }
    }
}

fn json_rejection(rejection: JsonRejection) -> ApiError {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        return ApiError::BodyTooLarge { limit: BODY_LIMIT };
    }
    match rejection {
        JsonRejection::JsonDataError(e) => {
            // serde's message names the field ("unknown field `role`", "missing field `site`").
            let reason =
                std::error::Error::source(&e).map_or_else(|| e.body_text(), ToString::to_string);
            ApiError::invalid("body", reason)
        }
        JsonRejection::MissingJsonContentType(_) => ApiError::invalid(
            "Content-Type",
            "a JSON body needs Content-Type: application/json",
        ),
        other => ApiError::MalformedBody(other.body_text()),
    }
}

/// `axum::extract::Path` whose rejection (a segment that is not UTF-8, say) is a problem:
/// `422 invalid-value` naming the path.
pub(crate) struct ApiPath<T>(pub(crate) T);

impl<T, S> FromRequestParts<S> for ApiPath<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(value)) => Ok(Self(value)),
            Err(rejection) => Err(ApiError::invalid("path", rejection.body_text())),
        }
    }
}

/// `axum::extract::Query` whose rejection is `422 invalid-value` naming the query.
pub(crate) struct ApiQuery<T>(pub(crate) T);

impl<T, S> FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(value)) => Ok(Self(value)),
            Err(rejection) => Err(ApiError::invalid("query", rejection.body_text())),
        }
    }
}
