//! The JSON API under `/v1` and its OpenAPI document, built from one list of routes
//! ([`api_routes`]): the commands (`command`: each declared once by its body type), the reads
//! (`reads`) and the event feed (`feed`), each registered so that the router and the document
//! cannot disagree.

pub(crate) mod command;
mod feed;
mod reads;

use axum::extract::DefaultBodyLimit;
use axum::http::Request;
use axum::{Json, Router};
use tower_http::trace::TraceLayer;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use self::command::route;
use crate::bodies::{
    AcceptBody, ArrearsBody, BindBody, DissolveBody, RegisterBody, SettleArrearsBody,
    SettlementBody, UpgradeBody,
};
use crate::extract::IDEMPOTENCY_KEY;
use crate::problem::{ApiError, Problem};
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
        .routes(route::<UpgradeBody>())
        .routes(route::<BindBody>())
        .routes(route::<RegisterBody>())
        .routes(route::<AcceptBody>())
        .routes(route::<SettlementBody>())
        .routes(route::<DissolveBody>())
        .routes(route::<ArrearsBody>())
        .routes(route::<SettleArrearsBody>())
        .routes(routes!(reads::workspace))
        .routes(routes!(reads::history))
        .routes(routes!(feed::events))
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
