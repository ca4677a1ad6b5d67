//! The console (placeholder until the pages land).

use utoipa_axum::router::OpenApiRouter;

use crate::Billing;

/// The console's routes.
pub(crate) fn routes() -> axum::Router<Billing> {
    axum::Router::new()
}

#[allow(dead_code)]
fn _unused(_: OpenApiRouter<Billing>) {}
