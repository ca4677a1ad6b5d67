//! The flow tests' harness: the router over a temporary SQLite store, JWT sign-in, and a
//! browser's way of sending a page's form.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use axum::Router;
use billing_adapters::Embedded;
use billing_domain::{ActorId, Email, Role, UserName, WorkspaceId};
use billing_store::StoreOptions;
use billing_test_support::SqliteFile;
use tower::ServiceExt as _;

use crate::auth::{Grant, JwtAuth};
use crate::{Billing, HttpOptions};

const KEY: &[u8] = b"0123456789abcdef0123456789abcdef";

pub(crate) struct App {
    pub(crate) router: Router,
    pub(crate) embedded: Embedded,
    auth: JwtAuth,
    _db: SqliteFile,
}

pub(crate) struct Reply {
    pub(crate) status: StatusCode,
    pub(crate) location: String,
    pub(crate) set_cookie: String,
    pub(crate) body: String,
}

impl App {
    pub(crate) async fn new() -> Self {
        Self::mounted("").await
    }

    /// The router nested at `mount` (at the root for `""`).
    pub(crate) async fn mounted(mount: &str) -> Self {
        let db = SqliteFile::in_temp_dir();
        let embedded = Embedded::open(db.url(), StoreOptions::default())
            .await
            .unwrap();
        embedded
            .expense_center
            .register(
                &UserName::parse("acme-finance").unwrap(),
                &Email::parse("finance@acme.example").unwrap(),
            )
            .await
            .unwrap();
        let auth = JwtAuth::hs256(KEY).unwrap();
        let billing = Billing::with_options(
            embedded.clone(),
            Arc::new(auth.clone()),
            HttpOptions::default(),
        );
        let router = match mount {
            "" => billing.router(),
            mount => Router::new().nest(mount, billing.router_at(mount)),
        };
        Self {
            router,
            embedded,
            auth,
            _db: db,
        }
    }

    pub(crate) fn token(&self, workspace: &str, role: Role) -> String {
        let roles = BTreeMap::from([(WorkspaceId::parse(workspace).unwrap(), role)]);
        self.auth
            .issue(
                &ActorId::parse("u-1").unwrap(),
                &Grant::Workspaces(roles),
                chrono::Utc::now(),
                chrono::Duration::hours(1),
            )
            .unwrap()
    }

    pub(crate) async fn send(
        &self,
        method: Method,
        path: &str,
        token: &str,
        form: &str,
        origin: Option<&str>,
    ) -> Reply {
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header(header::HOST, "localhost:8080")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
        if !token.is_empty() {
            request = request.header(header::COOKIE, format!("billing_session={token}"));
        }
        if let Some(origin) = origin {
            request = request.header(header::ORIGIN, origin);
        }
        let response = self
            .router
            .clone()
            .oneshot(request.body(Body::from(form.to_owned())).unwrap())
            .await
            .unwrap();
        let text = |name| {
            response
                .headers()
                .get(name)
                .map(|v: &header::HeaderValue| v.to_str().unwrap().to_owned())
                .unwrap_or_default()
        };
        let (location, set_cookie) = (text(header::LOCATION), text(header::SET_COOKIE));
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        Reply {
            status,
            location,
            set_cookie,
            body: String::from_utf8(bytes.to_vec()).unwrap(),
        }
    }

    pub(crate) async fn get(&self, path: &str, token: &str) -> Reply {
        self.send(Method::GET, path, token, "", None).await
    }

    /// Posts `fields` with the csrf and command id of the form `form_id` on the page at `page`.
    pub(crate) async fn submit(
        &self,
        page: &str,
        form_id: &str,
        token: &str,
        fields: &str,
    ) -> Reply {
        let html = self.get(page, token).await.body;
        let form = &html[html.find(&format!("id=\"{form_id}\"")).unwrap()..];
        let form = &form[..form.find("</form>").unwrap()];
        let action = hidden(form, "action=\"");
        // Every hidden field of the form (csrf, command_id, and e.g. the cloud form's method).
        let mut body = String::new();
        for input in form.split("<input type=\"hidden\" ").skip(1) {
            let (name, value) = (hidden(input, "name=\""), hidden(input, "value=\""));
            body.push_str(&format!("{name}={value}&"));
        }
        body.push_str(fields);
        self.send(
            Method::POST,
            &action,
            token,
            &body,
            Some("http://localhost:8080"),
        )
        .await
    }

    pub(crate) async fn events(&self, workspace: &str) -> usize {
        let (_, events) = self
            .embedded
            .store
            .load(&WorkspaceId::parse(workspace).unwrap())
            .await
            .unwrap();
        events.len()
    }
}

/// The value after `marker` up to the next `"`.
pub(crate) fn hidden(html: &str, marker: &str) -> String {
    let start = html.find(marker).unwrap() + marker.len();
    html[start..][..html[start..].find('"').unwrap()].to_owned()
}
