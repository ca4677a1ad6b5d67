//! The reads: a workspace's billing view (now or as of an instant, with its `ETag`) and its
//! history.

use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use utoipa::IntoParams;

use super::command::workspace_id;
use billing_adapters::views::{EventEntry, FlatView};

use crate::bodies::HistoryResponse;
use crate::extract::{ApiPath, ApiQuery, Authed};
use crate::problem::{ApiError, Problem};
use crate::Billing;

/// `?as_of=` of a view read.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct AsOf {
    /// Show the view as of this instant (RFC 3339).
    as_of: Option<String>,
}

#[utoipa::path(
    get, path = "/v1/workspaces/{id}", tag = "reads",
    summary = "The billing view (owner, admin, member, or the billing system)",
    params(("id" = String, Path, description = "The workspace id"), AsOf),
    responses(
        (status = 200, description = "The billing view; ETag: \"<last sequence>\"", body = FlatView,
            headers(("ETag" = String, description = "The workspace version, for If-Match"))),
        (status = "4XX", description = "A problem: the request or the token", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The store is unavailable; retry after Retry-After", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub(crate) async fn workspace(
    State(billing): State<Billing>,
    Authed(identity): Authed,
    ApiPath(id): ApiPath<String>,
    ApiQuery(query): ApiQuery<AsOf>,
) -> Result<Response, ApiError> {
    let workspace = workspace_id(&id)?;
    billing.may_read(&identity, &workspace)?;
    let view = match query.as_of.as_deref() {
        Some(text) => {
            let instant = DateTime::parse_from_rfc3339(text)
                .map_err(|e| ApiError::invalid("as_of", format!("{text:?} is not RFC 3339: {e}")))?
                .with_timezone(&Utc);
            billing.read_as_of(&workspace, instant).await?
        }
        None => billing.read(&workspace).await?.1,
    };
    let etag = format!("\"{}\"", view.last_sequence);
    let mut response = Json(view).into_response();
    if let Ok(value) = HeaderValue::from_str(&etag) {
        response.headers_mut().insert(header::ETAG, value);
    }
    Ok(response)
}

#[utoipa::path(
    get, path = "/v1/workspaces/{id}/history", tag = "reads",
    summary = "The workspace's events, oldest first",
    params(("id" = String, Path, description = "The workspace id")),
    responses(
        (status = 200, description = "The events", body = HistoryResponse),
        (status = "4XX", description = "A problem: the request or the token", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The store is unavailable; retry after Retry-After", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub(crate) async fn history(
    State(billing): State<Billing>,
    Authed(identity): Authed,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<HistoryResponse>, ApiError> {
    let workspace = workspace_id(&id)?;
    billing.may_read(&identity, &workspace)?;
    let (_, _, events) = billing.read(&workspace).await?;
    Ok(Json(HistoryResponse {
        workspace_id: workspace.to_string(),
        events: events.iter().map(EventEntry::of).collect(),
    }))
}
