//! The JSON API under `/v1` and its OpenAPI document: every route is registered through
//! `utoipa-axum`'s `routes!`, so the router and the document are built from one list.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Request};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use billing_domain::{
    Action, AgreementVersion, BillId, CloudAccount, Currency, Email, ExternalId, MethodId, Money,
    SiteId, UserName, WorkspaceId,
};
use billing_store::{write_positioned_line, Position, WakeUps};
use chrono::{DateTime, Utc};
use futures_util::stream::{self, Stream};
use serde::Deserialize;
use tower_http::trace::TraceLayer;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{IntoParams, Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::bodies::{
    AcceptBody, ArrearsBody, BindBody, CommandResponse, DissolveBody, HistoryResponse,
    RegisterBody, SettleArrearsBody, SettlementBody, UpgradeBody, ViewBody,
};
use crate::extract::{
    ApiPath, ApiQuery, Authed, IdempotencyKey, IfMatch, JsonBody, IDEMPOTENCY_KEY,
};
use crate::problem::{ApiError, Problem};
use crate::service::view_body;
use crate::{Billing, BODY_LIMIT};

/// The response header that marks a replayed command.
pub(crate) const REPLAYED: &str = "idempotent-replayed";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "workspace-billing",
        description = "The upgrade of a workspace from the Experience Plan to the Commercial Plan, and what follows (SPEC §12). Every POST needs an Idempotency-Key; errors are RFC 9457 problems with the rule name in `code`."
    ),
    modifiers(&BearerAuth),
    components(schemas(Problem)),
    tags(
        (name = "commands", description = "The owner's upgrade flow and the billing system's reports"),
        (name = "reads", description = "The billing view, its history and the event feed")
    )
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

fn api_routes() -> OpenApiRouter<Billing> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(upgrade))
        .routes(routes!(bind_account))
        .routes(routes!(register_account))
        .routes(routes!(accept_agreement))
        .routes(routes!(change_settlement))
        .routes(routes!(dissolve))
        .routes(routes!(record_arrears))
        .routes(routes!(settle_arrears))
        .routes(routes!(workspace))
        .routes(routes!(history))
        .routes(routes!(events))
}

/// The generated document.
pub(crate) fn document() -> utoipa::openapi::OpenApi {
    api_routes().into_openapi()
}

/// The whole router: API, document, console; body limit and request tracing.
pub(crate) fn router(billing: Billing) -> Router {
    let (api, doc) = api_routes().split_for_parts();
    let doc = std::sync::Arc::new(doc);
    let mut app = api.route(
        "/openapi.json",
        axum::routing::get(move || {
            let doc = doc.clone();
            async move { Json(doc.as_ref().clone()) }
        }),
    );
    if billing.inner.options.console {
        app = app.merge(crate::console::routes());
    }
    app.fallback(|| async { ApiError::NotFound("no route here".into()) })
        .method_not_allowed_fallback(|| async {
            Problem::new(
                axum::http::StatusCode::METHOD_NOT_ALLOWED,
                "method-not-allowed",
                "this path does not take this method (see /openapi.json)",
            )
        })
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(
            TraceLayer::new_for_http().make_span_with(|request: &Request<_>| {
                let command_id = request
                    .headers()
                    .get(IDEMPOTENCY_KEY)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("");
                tracing::info_span!(
                    "request",
                    method = %request.method(),
                    path = %request.uri().path(),
                    command_id = %command_id,
                )
            }),
        )
        .with_state(billing)
}

/// A workspace id from the path (`422 invalid-value` naming `id`).
fn workspace_id(id: &str) -> Result<WorkspaceId, ApiError> {
    WorkspaceId::parse(id).map_err(|e| ApiError::invalid("id", e))
}

fn parse<T>(
    field: &str,
    value: &str,
    parse: impl FnOnce(&str) -> Result<T, billing_domain::DomainError>,
) -> Result<T, ApiError> {
    parse(value).map_err(|e| ApiError::invalid(field, e))
}

/// Sends a command and answers with its outcome.
async fn command(
    billing: &Billing,
    identity: &crate::auth::Identity,
    id: &str,
    key: &ExternalId,
    if_match: Option<u64>,
    action: impl FnOnce() -> Result<Action, ApiError>,
) -> Result<Response, ApiError> {
    let workspace = workspace_id(id)?;
    if identity.role_in(&workspace).is_none() {
        return Err(ApiError::NoRole {
            actor: identity.actor.to_string(),
            workspace,
            command: true,
        });
    }
    let action = action()?;
    let done = billing
        .execute(identity, &workspace, key, action, if_match)
        .await?;
    let body = done.response(key)?;
    let mut response = Json(body).into_response();
    if done.outcome.replayed {
        response.headers_mut().insert(
            HeaderName::from_static(REPLAYED),
            HeaderValue::from_static("true"),
        );
    }
    Ok(response)
}

#[utoipa::path(
    post, path = "/v1/workspaces/{id}/upgrade", tag = "commands",
    summary = "Request the upgrade to the Commercial Plan on a site (owner)",
    params(CommandHeaders, ("id" = String, Path, description = "The workspace id")),
    request_body = UpgradeBody,
    responses(
        (status = 200, description = "The events written and the view after them", body = CommandResponse),
        (status = "4XX", description = "A problem: the request, the token or a rule", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The store is unavailable; retry after Retry-After", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
async fn upgrade(
    State(billing): State<Billing>,
    Authed(identity): Authed,
    ApiPath(id): ApiPath<String>,
    IdempotencyKey(key): IdempotencyKey,
    IfMatch(if_match): IfMatch,
    JsonBody(body): JsonBody<UpgradeBody>,
) -> Result<Response, ApiError> {
    command(&billing, &identity, &id, &key, if_match, || {
        Ok(Action::RequestUpgrade {
            site: parse("site", &body.site, SiteId::parse)?,
        })
    })
    .await
}

#[utoipa::path(
    post, path = "/v1/workspaces/{id}/account/bind", tag = "commands",
    summary = "Bind an existing, verified Expense Center account by user name (owner)",
    params(CommandHeaders, ("id" = String, Path, description = "The workspace id")),
    request_body = BindBody,
    responses(
        (status = 200, description = "The events written and the view after them", body = CommandResponse),
        (status = "4XX", description = "A problem: the request, the token or a rule (unknown-user-name, …)", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The store is unavailable; retry after Retry-After", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
async fn bind_account(
    State(billing): State<Billing>,
    Authed(identity): Authed,
    ApiPath(id): ApiPath<String>,
    IdempotencyKey(key): IdempotencyKey,
    IfMatch(if_match): IfMatch,
    JsonBody(body): JsonBody<BindBody>,
) -> Result<Response, ApiError> {
    command(&billing, &identity, &id, &key, if_match, || {
        Ok(Action::BindAccount {
            user_name: parse("username", &body.username, UserName::parse)?,
        })
    })
    .await
}

#[utoipa::path(
    post, path = "/v1/workspaces/{id}/account/register", tag = "commands",
    summary = "Register a new Expense Center account and bind it (owner)",
    params(CommandHeaders, ("id" = String, Path, description = "The workspace id")),
    request_body = RegisterBody,
    responses(
        (status = 200, description = "The events written and the view after them", body = CommandResponse),
        (status = "4XX", description = "A problem: the request, the token or a rule (user-name-taken, …)", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The store is unavailable; retry after Retry-After", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
async fn register_account(
    State(billing): State<Billing>,
    Authed(identity): Authed,
    ApiPath(id): ApiPath<String>,
    IdempotencyKey(key): IdempotencyKey,
    IfMatch(if_match): IfMatch,
    JsonBody(body): JsonBody<RegisterBody>,
) -> Result<Response, ApiError> {
    command(&billing, &identity, &id, &key, if_match, || {
        Ok(Action::RegisterAndBindAccount {
            user_name: parse("username", &body.username, UserName::parse)?,
            email: parse("email", &body.email, Email::parse)?,
        })
    })
    .await
}

#[utoipa::path(
    post, path = "/v1/workspaces/{id}/agreement/accept", tag = "commands",
    summary = "Accept the opening agreement: the upgrade, for good (owner)",
    params(CommandHeaders, ("id" = String, Path, description = "The workspace id")),
    request_body = AcceptBody,
    responses(
        (status = 200, description = "The events written and the view after them", body = CommandResponse),
        (status = "4XX", description = "A problem: the request, the token or a rule", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The store is unavailable; retry after Retry-After", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
async fn accept_agreement(
    State(billing): State<Billing>,
    Authed(identity): Authed,
    ApiPath(id): ApiPath<String>,
    IdempotencyKey(key): IdempotencyKey,
    IfMatch(if_match): IfMatch,
    JsonBody(body): JsonBody<AcceptBody>,
) -> Result<Response, ApiError> {
    command(&billing, &identity, &id, &key, if_match, || {
        Ok(Action::AcceptAgreement {
            version: parse("version", &body.version, AgreementVersion::parse)?,
        })
    })
    .await
}

/// The settlement a body asks for.
pub(crate) fn settlement_action(
    method: &str,
    account: Option<&str>,
    instance: Option<&str>,
) -> Result<Action, ApiError> {
    let method = parse("method", method, MethodId::parse)?;
    let instance_id = instance
        .filter(|s| !s.is_empty())
        .map(|i| parse("instance", i, ExternalId::parse))
        .transpose()?;
    let account = account
        .filter(|s| !s.is_empty())
        .map(|a| parse("account", a, ExternalId::parse))
        .transpose()?
        .map(|account_id| CloudAccount {
            account_id,
            instance_id: instance_id.clone(),
        });
    if account.is_none() && instance_id.is_some() {
        return Err(ApiError::invalid(
            "instance",
            "an instance needs an account",
        ));
    }
    Ok(Action::ChangeSettlement { method, account })
}

#[utoipa::path(
    post, path = "/v1/workspaces/{id}/settlement", tag = "commands",
    summary = "Change how the workspace settles (owner; at most once a calendar month)",
    params(CommandHeaders, ("id" = String, Path, description = "The workspace id")),
    request_body = SettlementBody,
    responses(
        (status = 200, description = "The events written and the view after them", body = CommandResponse),
        (status = "4XX", description = "A problem: the request, the token or a rule (settlement-change-too-soon, cloud-settlement-locked-in, …)", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The store is unavailable; retry after Retry-After", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
async fn change_settlement(
    State(billing): State<Billing>,
    Authed(identity): Authed,
    ApiPath(id): ApiPath<String>,
    IdempotencyKey(key): IdempotencyKey,
    IfMatch(if_match): IfMatch,
    JsonBody(body): JsonBody<SettlementBody>,
) -> Result<Response, ApiError> {
    command(&billing, &identity, &id, &key, if_match, || {
        settlement_action(
            &body.method,
            body.account.as_deref(),
            body.instance.as_deref(),
        )
    })
    .await
}

#[utoipa::path(
    post, path = "/v1/workspaces/{id}/dissolve", tag = "commands",
    summary = "Dissolve the workspace during a countdown (owner; irreversible)",
    params(CommandHeaders, ("id" = String, Path, description = "The workspace id")),
    request_body(content = DissolveBody, description = "Empty, or {}"),
    responses(
        (status = 200, description = "The events written and the view after them", body = CommandResponse),
        (status = "4XX", description = "A problem: the request, the token or a rule (not-in-countdown, …)", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The store is unavailable; retry after Retry-After", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
async fn dissolve(
    State(billing): State<Billing>,
    Authed(identity): Authed,
    ApiPath(id): ApiPath<String>,
    IdempotencyKey(key): IdempotencyKey,
    IfMatch(if_match): IfMatch,
    JsonBody(body): JsonBody<DissolveBody>,
) -> Result<Response, ApiError> {
    let DissolveBody {} = body;
    command(&billing, &identity, &id, &key, if_match, || {
        Ok(Action::Dissolve)
    })
    .await
}

#[utoipa::path(
    post, path = "/v1/workspaces/{id}/arrears", tag = "commands",
    summary = "Report a bill in arrears (the billing system only)",
    params(CommandHeaders, ("id" = String, Path, description = "The workspace id")),
    request_body = ArrearsBody,
    responses(
        (status = 200, description = "The events written and the view after them", body = CommandResponse),
        (status = "4XX", description = "A problem: the request, the token or a rule (not-billing-system, arrears-already-recorded, …)", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The store is unavailable; retry after Retry-After", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
async fn record_arrears(
    State(billing): State<Billing>,
    Authed(identity): Authed,
    ApiPath(id): ApiPath<String>,
    IdempotencyKey(key): IdempotencyKey,
    IfMatch(if_match): IfMatch,
    JsonBody(body): JsonBody<ArrearsBody>,
) -> Result<Response, ApiError> {
    command(&billing, &identity, &id, &key, if_match, || {
        let currency: Currency = body
            .currency
            .parse()
            .map_err(|e| ApiError::invalid("currency", e))?;
        Ok(Action::RecordArrears {
            bill: parse("bill", &body.bill, BillId::parse)?,
            amount: parse("amount", &body.amount, |a| {
                Money::parse_decimal(a, currency)
            })?,
        })
    })
    .await
}

#[utoipa::path(
    post, path = "/v1/workspaces/{id}/arrears/{bill}/settle", tag = "commands",
    summary = "Settle a bill in arrears by a recharge (the owner or the billing system)",
    params(CommandHeaders, ("id" = String, Path, description = "The workspace id"), ("bill" = String, Path, description = "The bill id")),
    request_body(content = SettleArrearsBody, description = "Empty, {} or the stored-value card order"),
    responses(
        (status = 200, description = "The events written and the view after them", body = CommandResponse),
        (status = "4XX", description = "A problem: the request, the token or a rule (unknown-arrears, …)", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The store is unavailable; retry after Retry-After", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
async fn settle_arrears(
    State(billing): State<Billing>,
    Authed(identity): Authed,
    ApiPath((id, bill)): ApiPath<(String, String)>,
    IdempotencyKey(key): IdempotencyKey,
    IfMatch(if_match): IfMatch,
    JsonBody(body): JsonBody<SettleArrearsBody>,
) -> Result<Response, ApiError> {
    command(&billing, &identity, &id, &key, if_match, || {
        Ok(Action::SettleArrears {
            bill: parse("bill", &bill, BillId::parse)?,
            stored_value_card: body
                .stored_value_card
                .as_deref()
                .map(|c| parse("stored_value_card", c, ExternalId::parse))
                .transpose()?,
        })
    })
    .await
}

/// The headers every command takes.
#[derive(IntoParams)]
#[into_params(parameter_in = Header)]
#[allow(dead_code)]
struct CommandHeaders {
    /// The command id: a new one per command, the same one to re-send it (required).
    #[param(
        rename = "Idempotency-Key",
        required = true,
        min_length = 1,
        max_length = 128,
        pattern = "^[A-Za-z0-9._:-]+$"
    )]
    idempotency_key: String,
    /// The workspace version (`"<last sequence>"`, its ETag) the command was decided on.
    #[param(rename = "If-Match", required = false)]
    if_match: Option<String>,
}

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
        (status = 200, description = "The billing view; ETag: \"<last sequence>\"", body = ViewBody,
            headers(("ETag" = String, description = "The workspace version, for If-Match"))),
        (status = "4XX", description = "A problem: the request or the token", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The store is unavailable; retry after Retry-After", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
async fn workspace(
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
    let mut response = Json(view_body(&view)?).into_response();
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
async fn history(
    State(billing): State<Billing>,
    Authed(identity): Authed,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<HistoryResponse>, ApiError> {
    let workspace = workspace_id(&id)?;
    billing.may_read(&identity, &workspace)?;
    let (_, _, events) = billing.read(&workspace).await?;
    Ok(Json(HistoryResponse {
        workspace_id: workspace.to_string(),
        events: events.iter().map(crate::bodies::EventBody::of).collect(),
    }))
}

/// Where the feed starts.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct FeedQuery {
    /// After this position (`transaction.position`, as the events carry it); the start of the
    /// log when absent. `Last-Event-ID` wins over it.
    from: Option<String>,
    /// `false`: stop at the end of the log instead of following it.
    follow: Option<bool>,
}

/// Events read per round trip of the feed.
const FEED_BATCH: u32 = 500;

#[utoipa::path(
    get, path = "/v1/events", tag = "reads",
    summary = "Every committed event in commit order, as Server-Sent Events (the billing system only)",
    params(FeedQuery, ("Last-Event-ID" = Option<String>, Header, description = "Resume after this position")),
    responses(
        (status = 200, description = "text/event-stream: each event's id is its position, its data the export line with \"position\"", content_type = "text/event-stream", body = String),
        (status = "4XX", description = "A problem: the request or the token", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The store is unavailable; retry after Retry-After", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
async fn events(
    State(billing): State<Billing>,
    Authed(identity): Authed,
    headers: HeaderMap,
    ApiQuery(query): ApiQuery<FeedQuery>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    if !identity.is_system() {
        return Err(ApiError::SystemOnly {
            actor: identity.actor.to_string(),
            what: "read the event feed",
        });
    }
    let last_event_id = headers
        .get("last-event-id")
        .map(|v| {
            v.to_str()
                .map(str::to_owned)
                .map_err(|_| ApiError::invalid("Last-Event-ID", "is not text"))
        })
        .transpose()?;
    let (field, from) = match (last_event_id, query.from) {
        (Some(id), _) => ("Last-Event-ID", Some(id)),
        (None, from) => ("from", from),
    };
    let at = match from {
        Some(text) => text
            .parse::<Position>()
            .map_err(|e| ApiError::invalid(field, e))?,
        None => Position::START,
    };
    let db = billing.inner.embedded.db().clone();
    // The first read happens before the answer, so an unavailable store is a 503, not an
    // empty stream.
    let first = db.read_committed(at, FEED_BATCH).await?;
    let follow = query.follow.unwrap_or(true);
    let state = (db, at, first, follow, false);
    let stream = stream::unfold(
        state,
        |(db, mut at, mut rows, follow, mut ended)| async move {
            let mut wake = db.wake_ups();
            loop {
                if ended {
                    return None;
                }
                if !rows.is_empty() {
                    let row = rows.remove(0);
                    at = row.position;
                    let mut line = Vec::new();
                    let event = match write_positioned_line(&row, &mut line) {
                        Ok(()) => Event::default()
                            .id(row.position.to_string())
                            .event(row.row.event_type.clone())
                            .data(String::from_utf8_lossy(&line).trim_end()),
                        Err(e) => {
                            ended = true;
                            Event::default().event("error").data(e.to_string())
                        }
                    };
                    return Some((Ok(event), (db, at, rows, follow, ended)));
                }
                match db.read_committed(at, FEED_BATCH).await {
                    Ok(next) if !next.is_empty() => rows = next,
                    Ok(_) if !follow => return None,
                    Ok(_) => {
                        wake.wait(WakeUps::POLL).await;
                    }
                    Err(e) => {
                        ended = true;
                        let event = Event::default().event("error").data(e.to_string());
                        return Some((Ok(event), (db, at, rows, follow, ended)));
                    }
                }
            }
        },
    );
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}
