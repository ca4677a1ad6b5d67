//! Flow tests of the console through the router, on a temporary SQLite store: sign-in, the
//! upgrade with its refusals in words, the cross-site checks writing nothing, a member's view,
//! escaping, and a settlement change refused as too soon.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use axum::Router;
use billing_adapters::Embedded;
use billing_domain::{ActorId, CloudAccount, Email, ExternalId, MethodId, Role, UserName, WorkspaceId};
use billing_store::StoreOptions;
use billing_test_support::SqliteFile;
use tower::ServiceExt as _;

use crate::auth::{Grant, JwtAuth};
use crate::{Billing, HttpOptions};

const KEY: &[u8] = b"0123456789abcdef0123456789abcdef";

struct App {
    router: Router,
    embedded: Embedded,
    auth: JwtAuth,
    _db: SqliteFile,
}

struct Reply {
    status: StatusCode,
    location: String,
    set_cookie: String,
    body: String,
}

impl App {
    async fn new() -> Self {
        let db = SqliteFile::in_temp_dir();
        let embedded = Embedded::open(db.url(), StoreOptions::default()).await.unwrap();
        embedded
            .expense_center
            .register(
                &UserName::parse("acme-finance").unwrap(),
                &Email::parse("finance@acme.example").unwrap(),
            )
            .await
            .unwrap();
        let auth = JwtAuth::hs256(KEY).unwrap();
        let billing =
            Billing::with_options(embedded.clone(), Arc::new(auth.clone()), HttpOptions::default());
        Self {
            router: billing.router(),
            embedded,
            auth,
            _db: db,
        }
    }

    fn token(&self, workspace: &str, role: Role) -> String {
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

    async fn send(&self, method: Method, path: &str, token: &str, form: &str, origin: Option<&str>) -> Reply {
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
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
        Reply {
            status,
            location,
            set_cookie,
            body: String::from_utf8(bytes.to_vec()).unwrap(),
        }
    }

    async fn get(&self, path: &str, token: &str) -> Reply {
        self.send(Method::GET, path, token, "", None).await
    }

    /// Posts `fields` with the csrf and command id of the form `form_id` on the page at `page`.
    async fn submit(&self, page: &str, form_id: &str, token: &str, fields: &str) -> Reply {
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
        self.send(Method::POST, &action, token, &body, Some("http://localhost:8080")).await
    }

    async fn events(&self, workspace: &str) -> usize {
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
fn hidden(html: &str, marker: &str) -> String {
    let start = html.find(marker).unwrap() + marker.len();
    html[start..][..html[start..].find('"').unwrap()].to_owned()
}

#[tokio::test]
async fn sign_in_upgrade_and_refusals_in_words() {
    let app = App::new().await;
    let owner = app.token("ws-1", Role::Owner);

    let signed = app.get(&format!("/sign-in?token={owner}"), "").await;
    assert_eq!(signed.status, StatusCode::SEE_OTHER);
    assert_eq!(signed.location, "/");
    assert!(signed.set_cookie.starts_with(&format!("billing_session={owner}")));
    for part in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(signed.set_cookie.contains(part), "{}", signed.set_cookie);
    }
    let bad = app.get("/sign-in?token=not.a.token", "").await;
    assert_eq!(bad.status, StatusCode::UNAUTHORIZED);
    assert!(bad.body.contains(r#"<p id="error" role="alert""#), "{}", bad.body);
    assert_eq!(app.get("/", "").await.location, "/sign-in");
    assert_eq!(app.get("/", &owner).await.location, "/workspaces/ws-1");

    let billing = app.get("/workspaces/ws-1", &owner).await.body;
    assert!(billing.contains(r#"<p id="plan" class="plan">Experience Plan</p>"#), "{billing}");
    assert!(billing.contains(r#"<a id="upgrade" class="button" href="/workspaces/ws-1/upgrade">Upgrade</a>"#));
    assert!(billing.contains(" · workspace-billing</title>"));

    let page = "/workspaces/ws-1/upgrade";
    let requested = app.submit(page, "request-form", &owner, "site=cn1").await;
    assert_eq!((requested.status, requested.location.as_str()), (StatusCode::SEE_OTHER, page));
    assert!(app.get("/workspaces/ws-1", &owner).await.body.contains(">Continue upgrade</a>"));

    let unknown = app.submit(page, "bind-form", &owner, "username=nobody-here").await;
    assert_eq!(unknown.status, StatusCode::CONFLICT);
    assert!(unknown.body.contains("No Expense Center account has the user name “nobody-here”. Check the name, or register a new account below."), "{}", unknown.body);
    assert!(unknown.body.contains(r#"id="bind-form""#));
    let taken = app
        .submit(page, "register-form", &owner, "username=acme-finance&email=a%40b.example")
        .await;
    assert_eq!(taken.status, StatusCode::CONFLICT);
    assert!(taken.body.contains("The user name “acme-finance” is taken. Choose another one."));
    assert_eq!(app.submit(page, "bind-form", &owner, "username=acme-finance").await.status, StatusCode::SEE_OTHER);

    let before = app.events("ws-1").await;
    let unticked = app.submit(page, "agreement-form", &owner, "").await;
    assert_eq!(unticked.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(unticked.body.contains(r#"role="alert" data-code="agreement-not-ticked">Tick the box to accept the opening agreement.</p>"#));
    assert_eq!(app.events("ws-1").await, before, "nothing written");

    let accepted = app.submit(page, "agreement-form", &owner, "agree=yes").await;
    assert_eq!(accepted.location, "/workspaces/ws-1/upgraded");
    let upgraded = app.get(&accepted.location, &owner).await.body;
    assert!(upgraded.contains(r#"<p id="cloud-provider">Alibaba Cloud</p>"#), "{upgraded}");
    assert!(upgraded.contains(r#"id="cloud-instance""#) && upgraded.contains(r#"value="alibaba-cloud""#));
    let billing = app.get("/workspaces/ws-1", &owner).await.body;
    assert!(billing.contains(">Commercial Plan</p>"));
    assert!(billing.contains(r#"<a id="expense-center" href="https://expense-center.example/accounts/acme-finance">Expense Center</a>"#));
    assert!(billing.contains(r#"<p id="settlement">Enterprise (Expense Center account acme-finance)</p>"#));
    assert_eq!(app.get(page, &owner).await.location, "/workspaces/ws-1");
}

#[tokio::test]
async fn cross_site_and_tokenless_posts_write_nothing() {
    let app = App::new().await;
    let owner = app.token("ws-2", Role::Owner);
    let path = "/workspaces/ws-2/upgrade";
    let html = app.get(path, &owner).await.body;
    let csrf = hidden(&html, "name=\"csrf\" value=\"");

    let wrong = app.send(Method::POST, path, &owner, "csrf=AAAA&site=cn1", None).await;
    assert_eq!(wrong.status, StatusCode::FORBIDDEN);
    assert!(wrong.body.contains("csrf-token-invalid"));
    let missing = app.send(Method::POST, path, &owner, "site=cn1", None).await;
    assert_eq!(missing.status, StatusCode::FORBIDDEN);
    let cross = app
        .send(Method::POST, path, &owner, &format!("csrf={csrf}&site=cn1"), Some("http://evil.example"))
        .await;
    assert_eq!(cross.status, StatusCode::FORBIDDEN);
    assert!(cross.body.contains("cross-site-request"));
    let unparsable = app.send(Method::POST, path, &owner, "csrf=a&csrf=b", None).await;
    assert_eq!(unparsable.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(app.events("ws-2").await, 0);

    // The right token, sent twice with one command id: one command.
    let body = format!("csrf={csrf}&command_id=abc123&site=cn4");
    for _ in 0..2 {
        let ok = app.send(Method::POST, path, &owner, &body, None).await;
        assert_eq!(ok.status, StatusCode::SEE_OTHER, "{}", ok.body);
    }
    assert_eq!(app.events("ws-2").await, 1);
}

#[tokio::test]
async fn members_see_the_owner_note_and_are_refused() {
    let app = App::new().await;
    let member = app.token("ws-3", Role::Member);
    let billing = app.get("/workspaces/ws-3", &member).await.body;
    assert!(billing.contains(r#"<button id="upgrade" disabled>Upgrade</button>"#));
    assert!(billing.contains(r#"<p id="upgrade-note">Only the workspace owner can upgrade this workspace.</p>"#));
    let upgrade = app.get("/workspaces/ws-3/upgrade", &member).await;
    assert_eq!(upgrade.status, StatusCode::FORBIDDEN);
    assert!(upgrade.body.contains("not-workspace-owner") && upgrade.body.contains("Only the workspace owner"));
    let csrf = hidden(&billing, "name=\"csrf\" value=\"");
    let post = app
        .send(Method::POST, "/workspaces/ws-3/upgrade", &member, &format!("csrf={csrf}&site=cn1"), None)
        .await;
    assert_eq!(post.status, StatusCode::FORBIDDEN);
    assert_eq!(app.events("ws-3").await, 0);
    let elsewhere = app.get("/workspaces/ws-9", &member).await;
    assert_eq!(elsewhere.status, StatusCode::FORBIDDEN);
    let script = app.get("/workspaces/%3Cscript%3E", &member).await;
    assert_eq!(script.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(!script.body.contains("<script>") && script.body.contains("&#60;script&#62;"), "{}", script.body);
}

#[tokio::test]
async fn a_second_settlement_change_in_a_month_is_refused_in_words() {
    let app = App::new().await;
    let owner = app.token("ws-4", Role::Owner);
    let page = "/workspaces/ws-4/upgrade";
    app.submit(page, "request-form", &owner, "site=cn2").await;
    app.submit(page, "bind-form", &owner, "username=acme-finance").await;
    let accepted = app.submit(page, "agreement-form", &owner, "agree=yes").await;
    assert_eq!(accepted.location, "/workspaces/ws-4/upgraded");
    assert!(app.get(&accepted.location, &owner).await.body.contains(r#"<p id="cloud-provider">AWS</p>"#));

    let aws = MethodId::parse("aws").unwrap();
    let account = |id: &str| CloudAccount {
        account_id: ExternalId::parse(id).unwrap(),
        instance_id: None,
    };
    let unsubscribed = app.submit(&accepted.location, "cloud-form", &owner, "account=%3Cb%3E1").await;
    assert_eq!(unsubscribed.status, StatusCode::CONFLICT, "{}", unsubscribed.body);
    assert!(unsubscribed.body.contains("AWS account &#60;b&#62;1 has no active marketplace subscription."), "{}", unsubscribed.body);
    assert!(unsubscribed.body.contains(r#"id="cloud-form""#));

    let market = &app.embedded.marketplace;
    market.set(&aws, &account("111111111111"), true).await.unwrap();
    let first = app.submit(&accepted.location, "cloud-form", &owner, "account=111111111111").await;
    assert_eq!(first.location, "/workspaces/ws-4");
    assert!(app.get("/workspaces/ws-4", &owner).await.body.contains(r#"<p id="settlement">AWS account 111111111111</p>"#));

    // The once-a-month rule is checked before the subscription lock-in.
    let settlement = "/workspaces/ws-4/settlement";
    let before = app.events("ws-4").await;
    let soon = app
        .submit(settlement, "settlement-form", &owner, "method=enterprise&account=ignored")
        .await;
    assert_eq!(soon.status, StatusCode::CONFLICT, "{}", soon.body);
    assert!(soon.body.contains("The settlement method can change only once per calendar month. The next change is possible from "));
    assert!(soon.body.contains(" 00:00 (Asia/Shanghai).</p>"), "{}", soon.body);
    assert!(soon.body.contains(r#"id="settlement-form""#));
    assert!(soon.body.contains(r#"<option value="enterprise" selected>Enterprise (Expense Center)</option>"#));
    assert!(soon.body.contains(r#"<p id="settlement">AWS account 111111111111</p>"#));
    assert_eq!(app.events("ws-4").await, before, "nothing written");
}
