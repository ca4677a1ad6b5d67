//! The HTTP surface of workspace-billing (SPEC §12): an axum [`Router`] a host mounts in its own
//! application, with
//!
//! - the JSON API under `/v1` (commands, the billing view, its history, the event feed as
//!   Server-Sent Events) and its OpenAPI 3.1 document at `/openapi.json`, generated from the
//!   handlers ([`openapi`]);
//! - the console at `/`: the product's own Billing, Upgrade and Settlement pages, rendered on
//!   the server, working without JavaScript, its forms protected against cross-site requests.
//!
//! Identity is the host's: implement [`Authenticate`] over your sign-in, or use [`JwtAuth`]
//! (bearer tokens, HS256), which `billing serve` uses. A role never comes from a request body.
//!
//! ```no_run
//! # async fn host(embedded: billing_adapters::Embedded, auth: billing_http::JwtAuth) {
//! let billing = billing_http::Billing::new(embedded, auth);
//! let app = axum::Router::new().nest("/billing", billing.router_at("/billing"));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await.unwrap();
//! billing_http::serve(listener, app, std::future::pending()).await.unwrap();
//! # }
//! ```

use std::sync::Arc;

use axum::Router;
use billing_adapters::Embedded;

mod api;
pub mod auth;
mod bodies;
mod console;
mod cookies;
mod extract;
mod problem;
mod serve;
mod service;

pub use auth::{Access, AuthError, Authenticate, Grant, Identity, IssueError, JwtAuth};
pub use bodies::{
    AcceptBody, ArrearsBody, BindBody, CommandResponse, DissolveBody, HistoryResponse,
    RegisterBody, SettleArrearsBody, SettlementBody, UpgradeBody,
};
pub use problem::{ApiError, Problem, PROBLEM_JSON, PROBLEM_TYPES, RETRY_AFTER_SECONDS};
pub use serve::{serve, ServeError};

/// The largest request body accepted, in bytes (64 KiB); a larger one is `413 body-too-large`.
pub const BODY_LIMIT: usize = 64 * 1024;

/// How the router behaves for a host.
#[derive(Clone, Debug)]
pub struct HttpOptions {
    /// The path the router is mounted at (`""` at the root, `"/billing"` when nested there):
    /// the console's links and cookies are under it.
    pub mount_path: String,
    /// The Expense Center's address, for the console's "Expense Center" link.
    pub expense_center_url: String,
    /// Whether the console's cookies are `Secure` (set it when served over HTTPS).
    pub secure_cookies: bool,
    /// Whether the console at `/` is served (the API always is).
    pub console: bool,
}

impl Default for HttpOptions {
    fn default() -> Self {
        Self {
            mount_path: String::new(),
            expense_center_url: "https://expense-center.example".to_owned(),
            secure_cookies: false,
            console: true,
        }
    }
}

/// The billing HTTP service: the library behind the router, the host's identity provider, and
/// the options. Cheap to clone.
#[derive(Clone)]
pub struct Billing {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) embedded: Embedded,
    pub(crate) auth: Arc<dyn Authenticate>,
    pub(crate) options: HttpOptions,
    /// The console's key for its cross-site-request tokens (random per process).
    pub(crate) csrf_key: [u8; 32],
}

impl std::fmt::Debug for Billing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Billing")
            .field("options", &self.inner.options)
            .finish_non_exhaustive()
    }
}

impl Billing {
    /// The service over `embedded` (store, views, outside systems), with `auth` deciding who
    /// asks, and the default options.
    pub fn new(embedded: Embedded, auth: impl Authenticate) -> Self {
        Self::with_options(embedded, Arc::new(auth), HttpOptions::default())
    }

    /// The service with a host's options.
    pub fn with_options(
        embedded: Embedded,
        auth: Arc<dyn Authenticate>,
        options: HttpOptions,
    ) -> Self {
        let mut csrf_key = [0u8; 32];
        // Without an operating-system random source the key stays all zeros: the tokens are
        // then still bound to the session, and SameSite=Strict cookies still hold.
        if getrandom::fill(&mut csrf_key).is_err() {
            tracing::warn!("no random source: the console's CSRF key is fixed");
        }
        Self {
            inner: Arc::new(Inner {
                embedded,
                auth,
                options,
                csrf_key,
            }),
        }
    }

    /// The router, mounted at the root: the API, `/openapi.json` and the console.
    pub fn router(&self) -> Router {
        api::router(self.clone())
    }

    /// The router for mounting under `path` (`app.nest(path, billing.router_at(path))`): the
    /// console's links and cookies are under `path`.
    pub fn router_at(&self, path: &str) -> Router {
        let mut options = self.inner.options.clone();
        options.mount_path = path.trim_end_matches('/').to_owned();
        let billing = Self {
            inner: Arc::new(Inner {
                embedded: self.inner.embedded.clone(),
                auth: self.inner.auth.clone(),
                options,
                csrf_key: self.inner.csrf_key,
            }),
        };
        api::router(billing)
    }

    /// What the service runs on.
    pub fn embedded(&self) -> &Embedded {
        &self.inner.embedded
    }
}

/// The OpenAPI 3.1 document of the API, generated from the handlers and their types.
pub fn openapi() -> utoipa::openapi::OpenApi {
    api::document()
}
