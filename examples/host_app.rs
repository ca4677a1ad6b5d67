//! A host's own axum application that mounts the billing router under `/billing`, with its own
//! (toy but real) sign-in: a form that asks for a name, a cookie the host signs with its own key,
//! and an `Authenticate` that turns that cookie into the billing identity — the owner of the
//! workspace named after the person, a member of the shared `team` workspace.
//!
//! ```sh
//! cargo run -p workspace-billing --example host_app            # SQLite file host_app.db
//! DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres cargo run -p workspace-billing --example host_app
//! ```
//! Then open <http://127.0.0.1:3000/>, sign in with a name, and click through Billing → Upgrade.
//! `HOST_APP_LISTEN` changes the address.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use axum::extract::{Form, State};
use axum::http::header::{COOKIE, LOCATION, SET_COOKIE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use workspace_billing::adapters::Embedded;
use workspace_billing::domain::{ActorId, Role, WorkspaceId};
use workspace_billing::http::{Access, AuthError, Authenticate, Billing, HttpOptions, Identity};
use workspace_billing::store::StoreOptions;

/// The host's own session cookie: `name.signature`.
const HOST_COOKIE: &str = "host_user";

/// The host's identity provider: its cookie, signed with its own key.
#[derive(Clone)]
struct HostSignIn {
    key: Arc<[u8; 32]>,
}

impl HostSignIn {
    fn sign(&self, name: &str) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(self.key.as_ref()).expect("any key length");
        mac.update(name.as_bytes());
        let tag: String = mac
            .finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        format!("{name}.{tag}")
    }

    /// The signed-in name, if the cookie is the host's own.
    fn name(&self, headers: &HeaderMap) -> Option<String> {
        let cookies = headers.get(COOKIE)?.to_str().ok()?;
        let value = cookies
            .split(';')
            .filter_map(|c| c.trim().split_once('='))
            .find(|(k, _)| *k == HOST_COOKIE)?
            .1;
        let (name, _) = value.rsplit_once('.')?;
        (self.sign(name) == value).then(|| name.to_owned())
    }
}

#[async_trait]
impl Authenticate for HostSignIn {
    async fn authenticate(&self, request: &Parts) -> Result<Identity, AuthError> {
        let name = self.name(&request.headers).ok_or(AuthError::Missing)?;
        let bad = |e: workspace_billing::domain::DomainError| AuthError::Malformed(e.to_string());
        let mut roles = BTreeMap::new();
        roles.insert(
            WorkspaceId::parse(&format!("{name}-ws")).map_err(bad)?,
            Role::Owner,
        );
        roles.insert(WorkspaceId::parse("team").map_err(bad)?, Role::Member);
        Ok(Identity {
            actor: ActorId::parse(&name).map_err(bad)?,
            access: Access::Workspaces(roles),
        })
    }
}

async fn home(State(auth): State<HostSignIn>, headers: HeaderMap) -> Html<String> {
    let body = match auth.name(&headers) {
        Some(name) => format!(
            "<p>Signed in as <b>{name}</b>.</p><p><a href=\"/billing\">Billing</a> \
             (your workspace <code>{name}-ws</code>; you are a member of <code>team</code>)</p>"
        ),
        None => "<form method=post action=/sign-in><label>Your name (letters, digits, -) \
                 <input name=name pattern=\"[a-z0-9-]{1,40}\" required></label> \
                 <button>Sign in</button></form>"
            .to_owned(),
    };
    Html(format!(
        "<!doctype html><meta name=viewport content=\"width=device-width\">\
         <title>Host app</title><h1>Host app</h1>{body}"
    ))
}

#[derive(serde::Deserialize)]
struct SignIn {
    name: String,
}

async fn sign_in(State(auth): State<HostSignIn>, Form(form): Form<SignIn>) -> Response {
    let ok = !form.name.is_empty()
        && form.name.len() <= 40
        && form
            .name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if !ok {
        return (
            StatusCode::UNPROCESSABLE_ENTITY,
            "name: letters, digits and - only",
        )
            .into_response();
    }
    let cookie = format!(
        "{HOST_COOKIE}={}; HttpOnly; SameSite=Strict; Path=/",
        auth.sign(&form.name)
    );
    (
        StatusCode::SEE_OTHER,
        [(SET_COOKIE, cookie), (LOCATION, "/".to_owned())],
    )
        .into_response()
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::var("DATABASE_URL").unwrap_or_else(|_| "sqlite://host_app.db".to_owned());
    let embedded = Embedded::open(&url, StoreOptions::default()).await?;
    let mut key = [0u8; 32];
    getrandom::fill(&mut key)?;
    let auth = HostSignIn { key: Arc::new(key) };

    // The one call: the billing API and console, on the host's identity, under /billing.
    let billing = Billing::with_options(embedded, Arc::new(auth.clone()), HttpOptions::default());
    let app = Router::new()
        .route("/", get(home))
        .route("/sign-in", axum::routing::post(sign_in))
        .with_state(auth)
        .nest("/billing", billing.router_at("/billing"));

    let listen = std::env::var("HOST_APP_LISTEN").unwrap_or_else(|_| "127.0.0.1:3000".to_owned());
    let listener = tokio::net::TcpListener::bind(&listen).await?;
    println!(
        "host app on http://{}/ (billing under /billing, store {url})",
        listener.local_addr()?
    );
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    workspace_billing::http::serve(listener, app, shutdown).await?;
    Ok(())
}
