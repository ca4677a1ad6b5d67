//! One database per test (SQLite file or a fresh PostgreSQL database), the embedded billing over
//! it, and the router served on a real loopback port; helpers to send requests over HTTP and to
//! check what came back.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use billing_adapters::Embedded;
use billing_domain::memory::ManualClock;
use billing_domain::{
    ActorId, CloudAccount, Email, ExternalId, MethodId, Role, SitePolicy, UserName, WorkspaceId,
};
use billing_http::{Billing, Grant, JwtAuth};
use billing_store::audit::{audit_store, AuditOptions};
use billing_store::{Db, StoreOptions};
use billing_test_support::{BackendHarness, TestDatabase, TestDb};
use chrono::{DateTime, Duration, Utc};
use reqwest::header::HeaderMap;
use reqwest::{Method, RequestBuilder};
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// The server's signing key (HS256, 32 bytes or more).
pub const KEY: &[u8] = b"the-http-suite-signing-key-0123456789abcdef";

/// The instant the domain's clock starts at: the middle of a month on every site.
pub const START: &str = "2026-11-10T09:00:00Z";

/// An instant the next calendar month on every site.
pub const NEXT_MONTH: &str = "2026-12-02T12:00:00Z";

pub fn t(s: &str) -> DateTime<Utc> {
    s.parse().expect("a test instant in RFC 3339")
}

pub fn ws(id: &str) -> WorkspaceId {
    WorkspaceId::parse(id).expect("a valid workspace id")
}

/// The router on a loopback port; stops when dropped.
pub struct Server {
    pub base: String,
    pub client: reqwest::Client,
    pub auth: JwtAuth,
    task: JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Server {
    /// Serves `Billing::new(embedded, JwtAuth::hs256(KEY))` with `billing_http::serve`.
    pub async fn start(embedded: Embedded) -> Self {
        let auth = JwtAuth::hs256(KEY).expect("a 32-byte key is accepted");
        let billing = Billing::new(embedded, auth.clone());
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a free loopback port");
        let addr = listener.local_addr().expect("the listener's address");
        let task = tokio::spawn(async move {
            billing_http::serve(listener, billing.router(), std::future::pending())
                .await
                .expect("the server runs until the test ends");
        });
        let client = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(20))
            .build()
            .expect("an HTTP client");
        Self {
            base: format!("http://{addr}"),
            client,
            auth,
            task,
        }
    }
}

/// A test's database, clock, embedded billing and server.
pub struct Harness {
    /// The database (a SQLite file lives as long as this).
    _db: TestDb,
    pub clock: Arc<ManualClock>,
    pub embedded: Embedded,
    pub server: Server,
    keys: AtomicU64,
}

impl BackendHarness for Harness {
    async fn sqlite() -> Self {
        let db = TestDb::sqlite();
        let clock = Arc::new(ManualClock::new(t(START)));
        let embedded = Embedded::open_with(
            &db.url().await,
            StoreOptions::default(),
            SitePolicy::builtin(),
            clock.clone(),
        )
        .await
        .expect("opening the SQLite store");
        Self::over(db, clock, embedded).await
    }

    async fn postgres(pool: sqlx::PgPool) -> Self {
        let clock = Arc::new(ManualClock::new(t(START)));
        let options = StoreOptions::default();
        let db = Db::from_pg_pool(pool.clone(), &options)
            .await
            .expect("migrating the test's PostgreSQL database");
        let embedded = Embedded::over(
            db,
            &options,
            SitePolicy::builtin(),
            billing_adapters::Clocks::billing_at(clock.clone()),
        );
        Self::over(TestDb::Postgres(pool), clock, embedded).await
    }
}

/// What the server answered.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: HeaderMap,
    pub text: String,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text)
            .unwrap_or_else(|e| panic!("the body is not JSON ({e}): {}", self.text))
    }

    /// A 200 with a JSON body.
    pub fn ok(&self) -> Value {
        assert_eq!(
            self.status, 200,
            "expected 200, got {}: {}",
            self.status, self.text
        );
        let content_type = self.header("content-type").unwrap_or_default();
        assert!(
            content_type.starts_with("application/json"),
            "a 200 is JSON, got Content-Type {content_type:?}"
        );
        self.json()
    }

    /// An RFC 9457 problem of `status` with `code`: the media type, the five members, and
    /// `status` the HTTP status.
    pub fn problem(&self, status: u16, code: &str) -> Value {
        assert_eq!(
            (self.status, self.problem_code().as_deref()),
            (status, Some(code)),
            "expected {status} {code}, got {}: {}",
            self.status,
            self.text
        );
        self.assert_problem_shape();
        self.json()
    }

    /// The `code` of a problem body, if the body is one.
    pub fn problem_code(&self) -> Option<String> {
        serde_json::from_str::<Value>(&self.text)
            .ok()?
            .get("code")?
            .as_str()
            .map(str::to_owned)
    }

    /// The body is an RFC 9457 problem whose `status` is the HTTP status.
    pub fn assert_problem_shape(&self) {
        let content_type = self.header("content-type").unwrap_or_default();
        assert_eq!(
            content_type, "application/problem+json",
            "a {} is a problem: {}",
            self.status, self.text
        );
        let body = self.json();
        for key in ["type", "title", "detail", "code"] {
            let value = body.get(key).and_then(Value::as_str);
            assert!(
                value.is_some_and(|v| !v.is_empty()),
                "problem member {key:?} is a non-empty string: {body}"
            );
        }
        assert_eq!(
            body.get("status").and_then(Value::as_u64),
            Some(u64::from(self.status)),
            "the problem's status is the HTTP status: {body}"
        );
        let code = body["code"].as_str().unwrap_or_default();
        assert!(
            body["type"].as_str().is_some_and(|t| t.ends_with(code)),
            "the problem type names the code: {body}"
        );
    }

    /// Never a 5xx other than 503.
    pub fn assert_no_server_error(&self, what: &str) {
        assert!(
            self.status < 500,
            "{what}: the input produced a {}: {}",
            self.status,
            self.text
        );
    }
}

/// Sends a request and reads the whole answer.
pub async fn send(request: RequestBuilder) -> Reply {
    let response = request.send().await.expect("the server answers");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let text = response.text().await.expect("the body is read");
    Reply {
        status,
        headers,
        text,
    }
}

/// Percent-encodes every byte outside the unreserved set, for a path segment.
pub fn segment(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

impl Harness {
    /// The server over an opened billing.
    pub async fn over(db: TestDb, clock: Arc<ManualClock>, embedded: Embedded) -> Self {
        let server = Server::start(embedded.clone()).await;
        Self {
            _db: db,
            clock,
            embedded,
            server,
            keys: AtomicU64::new(0),
        }
    }

    /// A SQLite harness, for the tests that need one backend only.
    pub async fn on_sqlite() -> Self {
        <Self as BackendHarness>::sqlite().await
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.server.base)
    }

    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.server.client.request(method, self.url(path))
    }

    pub fn get(&self, path: &str, token: &str) -> RequestBuilder {
        self.request(Method::GET, path).bearer_auth(token)
    }

    /// A new Idempotency-Key.
    pub fn key(&self) -> String {
        format!("key-{}", self.keys.fetch_add(1, Ordering::Relaxed))
    }

    /// `POST /v1/workspaces/{workspace}/{command}` with a new key and a JSON body.
    pub fn post(
        &self,
        token: &str,
        workspace: &str,
        command: &str,
        body: &Value,
    ) -> RequestBuilder {
        self.post_keyed(token, workspace, command, &self.key(), body)
    }

    pub fn post_keyed(
        &self,
        token: &str,
        workspace: &str,
        command: &str,
        key: &str,
        body: &Value,
    ) -> RequestBuilder {
        self.request(
            Method::POST,
            &format!("/v1/workspaces/{workspace}/{command}"),
        )
        .bearer_auth(token)
        .header("Idempotency-Key", key)
        .json(body)
    }

    /// Sends a command as `token` and expects 200.
    pub async fn ok(&self, token: &str, workspace: &str, command: &str, body: Value) -> Value {
        send(self.post(token, workspace, command, &body)).await.ok()
    }

    pub fn token(&self, actor: &str, grant: &Grant) -> String {
        self.token_at(actor, grant, Utc::now(), Duration::hours(1))
    }

    pub fn token_at(
        &self,
        actor: &str,
        grant: &Grant,
        now: DateTime<Utc>,
        ttl: Duration,
    ) -> String {
        let actor = ActorId::parse(actor).expect("a valid actor id");
        self.server
            .auth
            .issue(&actor, grant, now, ttl)
            .expect("the token is issued")
    }

    pub fn role_token(&self, actor: &str, workspace: &str, role: Role) -> String {
        self.token(
            actor,
            &Grant::Workspaces(BTreeMap::from([(ws(workspace), role)])),
        )
    }

    pub fn owner(&self, workspace: &str) -> String {
        self.role_token("olivia", workspace, Role::Owner)
    }

    pub fn system(&self) -> String {
        self.token("billing", &Grant::System)
    }

    /// An account in the embedded Expense Center.
    pub async fn register_user(&self, name: &str) {
        self.embedded
            .expense_center
            .register(
                &UserName::parse(name).expect("a valid user name"),
                &Email::parse(&format!("{name}@example.com")).expect("a valid e-mail"),
            )
            .await
            .expect("registering in the Expense Center");
    }

    /// A subscription in the embedded marketplace.
    pub async fn subscribe(&self, method: &str, account: &str, active: bool) {
        let method = MethodId::parse(method).expect("a valid method");
        let account = CloudAccount {
            account_id: ExternalId::parse(account).expect("a valid account id"),
            instance_id: None,
        };
        self.embedded
            .marketplace
            .set(&method, &account, active)
            .await
            .expect("setting the subscription");
    }

    /// Upgrades `workspace` on `site` through the API: upgrade, bind a new account, accept.
    pub async fn make_commercial(&self, workspace: &str, site: &str) -> Value {
        let owner = self.owner(workspace);
        let user = format!("{workspace}-finance");
        self.register_user(&user).await;
        self.ok(
            &owner,
            workspace,
            "upgrade",
            serde_json::json!({ "site": site }),
        )
        .await;
        self.ok(
            &owner,
            workspace,
            "account/bind",
            serde_json::json!({ "username": user }),
        )
        .await;
        self.ok(
            &owner,
            workspace,
            "agreement/accept",
            serde_json::json!({ "version": "2024-06" }),
        )
        .await
    }

    /// Every event in the store.
    pub async fn total_events(&self) -> u64 {
        self.embedded
            .db()
            .count_events()
            .await
            .expect("counting the events")
    }

    /// The events of one workspace, read from the store (not over HTTP).
    pub async fn stream_len(&self, workspace: &str) -> usize {
        let (_, events) = self
            .embedded
            .store
            .load(&ws(workspace))
            .await
            .expect("loading the workspace");
        events.len()
    }

    /// The event types of `GET …/history`.
    pub async fn history(&self, workspace: &str) -> Vec<String> {
        let body = send(self.get(
            &format!("/v1/workspaces/{workspace}/history"),
            &self.owner(workspace),
        ))
        .await
        .ok();
        body["events"]
            .as_array()
            .expect("history has events")
            .iter()
            .map(|e| e["event_type"].as_str().expect("an event type").to_owned())
            .collect()
    }

    /// The store audits clean.
    pub async fn audit_clean(&self) {
        let mut findings = Vec::new();
        audit_store(
            self.embedded.db(),
            Some(&SitePolicy::builtin()),
            &AuditOptions::default(),
            |finding| findings.push(finding.to_string()),
            |_| {},
        )
        .await
        .expect("the audit runs");
        assert!(findings.is_empty(), "the audit found {findings:?}");
    }
}
