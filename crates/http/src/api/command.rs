//! The command routes: one generic handler, and one documented operation, per [`CommandBody`].
//!
//! A command of the API is declared once, by its body type: the route, the summary the document
//! shows, and the [`Action`] its fields (and path) ask for. [`route`] turns the declaration into
//! the handler and the document's operation, from the same data, so neither can be forgotten.

use std::collections::HashMap;

use axum::extract::State;
use axum::http::{HeaderName, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use billing_domain::{Action, DomainError, WorkspaceId};
use serde::de::DeserializeOwned;
use utoipa::openapi::path::{HttpMethod, OperationBuilder, ParameterBuilder, ParameterIn, Paths};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::security::SecurityRequirement;
use utoipa::openapi::{ContentBuilder, Ref, Required, ResponseBuilder, ResponsesBuilder};
use utoipa::{IntoParams, PartialSchema, ToSchema};
use utoipa_axum::router::UtoipaMethodRouter;

use super::REPLAYED;
use crate::bodies::CommandResponse;
use crate::extract::{ApiPath, Authed, IdempotencyKey, IfMatch, JsonBody};
use crate::problem::{ApiError, Problem, PROBLEM_JSON};
use crate::Billing;

/// A command the API takes, declared by its body: where it is routed, how the document names it,
/// and which [`Action`] it asks for. The role is never the body's: it comes from the identity,
/// and the rules (role, shape, state) are the domain's.
pub(crate) trait CommandBody: DeserializeOwned + ToSchema + Send + 'static {
    /// The operation id in the document (`upgrade`, `bind_account`, …).
    const OPERATION: &'static str;
    /// The route: `/v1/workspaces/{id}/…`, with any further path parameters in braces.
    const PATH: &'static str;
    /// The document's one-line summary.
    const SUMMARY: &'static str;
    /// Rule names worth listing in the document's description of the problems (`""`: none).
    const REFUSALS: &'static str = "";
    /// The request body's description, when it needs one (an empty body allowed, say).
    const BODY: Option<&'static str> = None;
    /// Path parameters besides `id`: name and description.
    const PATH_PARAMETERS: &'static [(&'static str, &'static str)] = &[];

    /// The action the body asks for; `path` holds the route's path parameters by name.
    ///
    /// # Errors
    /// A value that does not parse (`422 invalid-value`, naming the field).
    fn action(self, path: &PathParameters) -> Result<Action, ApiError>;
}

/// A route's path parameters by name.
pub(crate) struct PathParameters(HashMap<String, String>);

impl PathParameters {
    /// The parameter `name` (empty when the route has none by that name).
    pub(crate) fn get(&self, name: &str) -> &str {
        self.0.get(name).map_or("", String::as_str)
    }
}

/// Parses `value` of the body's (or path's) `field`, refused as `422 invalid-value` naming it.
pub(crate) fn parse<T>(
    field: &str,
    value: &str,
    parse: impl FnOnce(&str) -> Result<T, DomainError>,
) -> Result<T, ApiError> {
    parse(value).map_err(|e| ApiError::invalid(field, e))
}

/// A workspace id from the path (`422 invalid-value` naming `id`).
pub(crate) fn workspace_id(id: &str) -> Result<WorkspaceId, ApiError> {
    parse("id", id, WorkspaceId::parse)
}

/// Sends `C`'s command as the signed-in caller and answers with its outcome.
async fn handle<C: CommandBody>(
    State(billing): State<Billing>,
    Authed(identity): Authed,
    ApiPath(path): ApiPath<HashMap<String, String>>,
    IdempotencyKey(key): IdempotencyKey,
    IfMatch(if_match): IfMatch,
    JsonBody(body): JsonBody<C>,
) -> Result<Response, ApiError> {
    let path = PathParameters(path);
    let workspace = workspace_id(path.get("id"))?;
    let actor = billing.actor(&identity, &workspace)?;
    let action = body.action(&path)?;
    let done = billing
        .execute(actor, &workspace, &key, action, if_match)
        .await?;
    let mut response = Json(done.response(&key)).into_response();
    if done.outcome.replayed {
        response.headers_mut().insert(
            HeaderName::from_static(REPLAYED),
            HeaderValue::from_static("true"),
        );
    }
    Ok(response)
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

/// A path parameter of type string, required.
fn path_parameter(name: &str, description: &str) -> utoipa::openapi::path::Parameter {
    ParameterBuilder::new()
        .name(name)
        .parameter_in(ParameterIn::Path)
        .required(Required::True)
        .description(Some(description))
        .schema(Some(String::schema()))
        .build()
}

/// A response of `status` whose body is a problem.
fn problem_response(description: &str) -> utoipa::openapi::Response {
    ResponseBuilder::new()
        .description(description)
        .content(
            PROBLEM_JSON,
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name(Problem::name())))
                .build(),
        )
        .build()
}

/// `C`'s handler and its operation in the document, for `OpenApiRouter::routes`.
pub(crate) fn route<C: CommandBody>() -> UtoipaMethodRouter<Billing> {
    let mut schemas = Vec::new();
    <C as ToSchema>::schemas(&mut schemas);
    schemas.push((C::name().into_owned(), C::schema()));
    <CommandResponse as ToSchema>::schemas(&mut schemas);
    schemas.push((
        CommandResponse::name().into_owned(),
        CommandResponse::schema(),
    ));

    let mut parameters = CommandHeaders::into_params(|| Some(ParameterIn::Header));
    parameters.push(path_parameter("id", "The workspace id"));
    for (name, description) in C::PATH_PARAMETERS {
        parameters.push(path_parameter(name, description));
    }
    let rules = if C::REFUSALS.is_empty() {
        String::new()
    } else {
        format!(" ({}, …)", C::REFUSALS)
    };
    let operation = OperationBuilder::new()
        .operation_id(Some(C::OPERATION))
        .tag("commands")
        .summary(Some(C::SUMMARY))
        .parameters(Some(parameters))
        .request_body(Some(
            RequestBodyBuilder::new()
                .description(C::BODY)
                .required(Some(Required::True))
                .content(
                    "application/json",
                    ContentBuilder::new()
                        .schema(Some(Ref::from_schema_name(C::name())))
                        .build(),
                )
                .build(),
        ))
        .responses(
            ResponsesBuilder::new()
                .response(
                    "200",
                    ResponseBuilder::new()
                        .description("The events written and the view after them")
                        .content(
                            "application/json",
                            ContentBuilder::new()
                                .schema(Some(Ref::from_schema_name(CommandResponse::name())))
                                .build(),
                        )
                        .build(),
                )
                .response(
                    "4XX",
                    problem_response(&format!(
                        "A problem: the request, the token or a rule{rules}"
                    )),
                )
                .response(
                    "503",
                    problem_response("The store is unavailable; retry after Retry-After"),
                )
                .build(),
        )
        .security(SecurityRequirement::new("bearer", Vec::<String>::new()))
        .build();
    let mut paths = Paths::new();
    paths.add_path_operation(C::PATH, vec![HttpMethod::Post], operation);
    (schemas, paths, axum::routing::post(handle::<C>))
}
