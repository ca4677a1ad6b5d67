//! The console (SPEC §12): the product's own Billing, Upgrade and Settlement pages, rendered on
//! the server from askama templates (escaped by default), working without JavaScript.
//!
//! Every page follows the console contract (ids, names, paths and texts a browser test relies
//! on). Every command goes through [`Billing::execute`], so the console and the JSON API share
//! every rule; every refusal is shown in words on the page it came from. Every form carries a
//! CSRF token (an HMAC of the session under the server's key) and a command id made when the
//! page was rendered, so a double submit is one command. A `POST` whose token is wrong, or whose
//! `Origin` names another host, is refused before anything is read or written.
//!
//! Routes (relative to the mount path):
//!
//! | method | path | what |
//! |---|---|---|
//! | GET, POST | `/sign-in` | sign in with a token (`?token=` or the form) |
//! | POST | `/sign-out` | clear the session cookie |
//! | GET | `/` | the workspaces the caller has a role in |
//! | GET | `/workspaces/{id}` | Billing |
//! | GET, POST | `/workspaces/{id}/upgrade` | the upgrade page; request the upgrade |
//! | POST | `/workspaces/{id}/account/bind` | bind an Expense Center account |
//! | POST | `/workspaces/{id}/account/register` | register one and bind it |
//! | POST | `/workspaces/{id}/agreement/accept` | accept the opening agreement |
//! | GET | `/workspaces/{id}/upgraded` | success; bind a settlement cloud account |
//! | GET, POST | `/workspaces/{id}/settlement` | change the settlement |

use askama::Template;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use billing_domain::SitePolicy;

use crate::Billing;

mod billing;
mod pages;
mod session;
mod settlement;
mod sign_in;
mod upgrade;
mod words;

#[cfg(test)]
mod test_app;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_flow;

/// The version of the opening agreement the console shows and sends.
pub(crate) const AGREEMENT_VERSION: &str = "2024-06";

/// What a console handler answers: a page or a redirect, either way ([`Stop`] for the early
/// answers of a check that did not pass).
pub(crate) type Reply = Result<Response, Stop>;

/// An answer that ends a request early: a refusal's page, or a redirect to the sign-in page
/// (boxed: a response is large, and most results are not this).
pub(crate) struct Stop(Box<Response>);

impl From<Response> for Stop {
    fn from(response: Response) -> Self {
        Self(Box::new(response))
    }
}

impl IntoResponse for Stop {
    fn into_response(self) -> Response {
        *self.0
    }
}

/// The console's routes.
pub(crate) fn routes() -> Router<Billing> {
    Router::new()
        .route("/sign-in", get(sign_in::page).post(sign_in::submit))
        .route("/sign-out", post(sign_in::sign_out))
        .route("/", get(billing::workspaces))
        .route("/workspaces/{id}", get(billing::billing))
        .route(
            "/workspaces/{id}/upgrade",
            get(upgrade::page).post(upgrade::request),
        )
        .route("/workspaces/{id}/account/bind", post(upgrade::bind))
        .route("/workspaces/{id}/account/register", post(upgrade::register))
        .route("/workspaces/{id}/agreement/accept", post(upgrade::accept))
        .route("/workspaces/{id}/upgraded", get(billing::upgraded))
        .route(
            "/workspaces/{id}/settlement",
            get(settlement::page).post(settlement::change),
        )
}

impl Billing {
    /// The mount path the console's links start with (`""` at the root).
    pub(crate) fn mount(&self) -> &str {
        &self.inner.options.mount_path
    }

    /// The console's home (`/`, or the mount path itself when nested).
    pub(crate) fn home(&self) -> String {
        match self.mount() {
            "" => "/".to_owned(),
            mount => mount.to_owned(),
        }
    }

    /// A console path under the mount path (`path` starts with `/`).
    pub(crate) fn path(&self, path: &str) -> String {
        format!("{}{path}", self.mount())
    }

    /// The site policy the store decides by.
    pub(crate) fn policy(&self) -> &SitePolicy {
        &self.inner.embedded.store.services().policy
    }
}

/// A rendered page with `status`. A template that fails to render (it cannot, for the values
/// these pages hold) is answered with a short plain page rather than a panic.
pub(crate) fn html(status: StatusCode, page: &impl Template) -> Response {
    match page.render() {
        Ok(body) => {
            let mut response = (status, body).into_response();
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            );
            // The pages carry session-bound tokens: no cache keeps them.
            response
                .headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            if status == StatusCode::SERVICE_UNAVAILABLE {
                response.headers_mut().insert(
                    header::RETRY_AFTER,
                    HeaderValue::from(crate::problem::RETRY_AFTER_SECONDS),
                );
            }
            response
        }
        Err(e) => {
            tracing::error!(error = %e, "a console page failed to render");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "The page could not be rendered.",
            )
                .into_response()
        }
    }
}

/// `303 See Other` to `location` (post/redirect/get).
pub(crate) fn see_other(location: &str) -> Response {
    let value = HeaderValue::from_str(location).unwrap_or_else(|_| HeaderValue::from_static("/"));
    let mut response = StatusCode::SEE_OTHER.into_response();
    response.headers_mut().insert(header::LOCATION, value);
    response
}
