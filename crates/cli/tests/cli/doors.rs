//! The same request gets the same answer at every door (issue 18, STYLE #18): one table of
//! settlement requests — every method the site policy knows and one it does not, with a cloud
//! account id given or absent and a marketplace instance id given or absent, on every site — sent
//! through the CLI (`billing settlement set`, a child process on the same store), the API
//! (`POST /v1/workspaces/{id}/settlement`) and the console's settlement form (both served by
//! `billing-http` on a loopback socket), each on a workspace of its own freshly upgraded on that
//! site. Each door hands the domain what its user typed, so the answer (the rule code, or `ok`)
//! must be the same at all three, and a refused request must write nothing. On both backends.

use std::collections::BTreeMap;

use billing_adapters::Embedded;
use billing_domain::{
    Action, Actor, ActorId, AgreementVersion, CloudAccount, Email, ExternalId, MethodId, Role,
    SiteId, SitePolicy, UserName, WorkspaceCommand, WorkspaceId,
};
use billing_http::{Billing, Grant, JwtAuth};
use billing_store::StoreOptions;
use billing_test_support::{BackendHarness, SqliteFile};
use serde_json::Value;

use crate::harness::billing_with_db;

const KEY: &[u8] = b"0123456789abcdef0123456789abcdef";
const USER: &str = "acme-finance";
const AWS_ACCOUNT: &str = "123456789012";
const ALIBABA_ACCOUNT: &str = "1688";
const INSTANCE: &str = "i-1";
/// Every method of the built-in policy, and one no site knows.
const METHODS: [&str; 4] = ["enterprise", "alibaba-cloud", "aws", "bitcoin"];

/// A store served over loopback, and what the doors need to reach it.
pub(crate) struct Doors {
    url: String,
    embedded: Embedded,
    auth: JwtAuth,
    base: String,
    http: reqwest::Client,
    _file: Option<SqliteFile>,
}

impl Doors {
    async fn over(url: String, file: Option<SqliteFile>) -> Self {
        let embedded = Embedded::open(&url, StoreOptions::default()).await.unwrap();
        let auth = JwtAuth::hs256(KEY).unwrap();
        let router = Billing::new(embedded.clone(), auth.clone()).router();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(billing_http::serve(
            listener,
            router,
            std::future::pending(),
        ));
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        Self {
            url,
            embedded,
            auth,
            base,
            http,
            _file: file,
        }
    }
}

impl BackendHarness for Doors {
    async fn sqlite() -> Self {
        let file = SqliteFile::in_temp_dir();
        Self::over(file.url().to_owned(), Some(file)).await
    }

    async fn postgres(pool: sqlx::PgPool) -> Self {
        Self::over(billing_test_support::url_of(&pool).await, None).await
    }
}

/// One request of the table.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Request {
    site: String,
    method: &'static str,
    account: Option<&'static str>,
    instance: Option<&'static str>,
}

impl Request {
    /// The workspace this request is sent to through `door`.
    fn workspace(&self, door: &str) -> String {
        format!(
            "{door}-{}-{}-{}{}",
            self.site,
            self.method,
            if self.account.is_some() { "a" } else { "x" },
            if self.instance.is_some() { "i" } else { "x" },
        )
    }
}

fn table(policy: &SitePolicy) -> Vec<Request> {
    let mut rows = Vec::new();
    for site in policy.sites() {
        for method in METHODS {
            let account = if method == "alibaba-cloud" {
                ALIBABA_ACCOUNT
            } else {
                AWS_ACCOUNT
            };
            for account in [None, Some(account)] {
                for instance in [None, Some(INSTANCE)] {
                    rows.push(Request {
                        site: site.id.to_string(),
                        method,
                        account,
                        instance,
                    });
                }
            }
        }
    }
    rows
}

fn id(s: &str) -> ExternalId {
    ExternalId::parse(s).unwrap()
}

/// Walks `workspace` to the Commercial Plan on `site`, through the library.
async fn upgrade(h: &Doors, workspace: &str, site: &str) {
    let workspace = WorkspaceId::parse(workspace).unwrap();
    let owner = Actor::new(ActorId::parse("alice").unwrap(), Role::Owner);
    let steps = [
        Action::RequestUpgrade {
            site: SiteId::parse(site).unwrap(),
        },
        Action::BindAccount {
            user_name: UserName::parse(USER).unwrap(),
        },
        Action::AcceptAgreement {
            version: AgreementVersion::parse("2024-06").unwrap(),
        },
    ];
    for (i, action) in steps.into_iter().enumerate() {
        let command =
            WorkspaceCommand::new(id(&format!("setup-{workspace}-{i}")), owner.clone(), action);
        h.embedded
            .store
            .execute(&workspace, &command)
            .await
            .unwrap_or_else(|e| panic!("setting up {workspace}: {e}"));
    }
}

fn token(h: &Doors, workspace: &str) -> String {
    let grant = Grant::Workspaces(BTreeMap::from([(
        WorkspaceId::parse(workspace).unwrap(),
        Role::Owner,
    )]));
    h.auth
        .issue(
            &ActorId::parse("alice").unwrap(),
            &grant,
            chrono::Utc::now(),
            chrono::Duration::hours(1),
        )
        .unwrap()
}

/// `billing settlement set` as a child process: `ok`, or the error's code. It runs on a blocking
/// thread: waiting for the child on the runtime's own thread would stall this process's
/// projector mid-batch (holding the views subscription's row), and the child's catch-up waits
/// for that row.
async fn through_cli(h: &Doors, r: &Request) -> String {
    let (url, r) = (h.url.clone(), r.clone());
    tokio::task::spawn_blocking(move || cli_answer(&url, &r))
        .await
        .unwrap()
}

fn cli_answer(url: &str, r: &Request) -> String {
    let workspace = r.workspace("cli");
    let mut args = vec![
        "--json",
        "settlement",
        "set",
        "--workspace",
        &workspace,
        "--actor",
        "alice",
        "--method",
        r.method,
    ];
    if let Some(account) = r.account {
        args.extend(["--account", account]);
    }
    if let Some(instance) = r.instance {
        args.extend(["--instance", instance]);
    }
    let run = billing_with_db(url, &args);
    if run.code == 0 {
        return "ok".to_owned();
    }
    run.json()["error"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("no error code: {run:?}"))
        .to_owned()
}

/// `POST /v1/workspaces/{id}/settlement`: `ok`, or the problem's code.
async fn through_api(h: &Doors, r: &Request) -> String {
    let workspace = r.workspace("api");
    let mut body = serde_json::Map::new();
    body.insert("method".into(), r.method.into());
    if let Some(account) = r.account {
        body.insert("account".into(), account.into());
    }
    if let Some(instance) = r.instance {
        body.insert("instance".into(), instance.into());
    }
    let reply = h
        .http
        .post(format!("{}/v1/workspaces/{workspace}/settlement", h.base))
        .bearer_auth(token(h, &workspace))
        .header("Idempotency-Key", format!("door-{workspace}"))
        .json(&Value::Object(body))
        .send()
        .await
        .unwrap();
    if reply.status() == 200 {
        return "ok".to_owned();
    }
    let problem: Value = reply.json().await.unwrap();
    problem["code"].as_str().unwrap().to_owned()
}

/// The value of the attribute `name="…"` after `marker` in `html`.
fn attribute<'a>(html: &'a str, marker: &str, name: &str) -> &'a str {
    let at = html
        .find(marker)
        .unwrap_or_else(|| panic!("{marker} in {html}"));
    let rest = &html[at..];
    let start = rest.find(&format!("{name}=\"")).unwrap() + name.len() + 2;
    &rest[start..start + rest[start..].find('"').unwrap()]
}

/// The settlement form of the console, as a browser sends it (every field, empty when not
/// typed): `ok` (a redirect to Billing), or the code the page shows.
async fn through_console(h: &Doors, r: &Request) -> String {
    let workspace = r.workspace("console");
    let cookie = format!("billing_session={}", token(h, &workspace));
    let page = h
        .http
        .get(format!("{}/workspaces/{workspace}/settlement", h.base))
        .header("Cookie", &cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let form = &page[page.find(r#"id="settlement-form""#).unwrap()..];
    let fields = [
        ("csrf", attribute(form, r#"name="csrf""#, "value")),
        (
            "command_id",
            attribute(form, r#"name="command_id""#, "value"),
        ),
        ("method", r.method),
        ("account", r.account.unwrap_or("")),
        ("instance", r.instance.unwrap_or("")),
    ];
    let reply = h
        .http
        .post(format!("{}/workspaces/{workspace}/settlement", h.base))
        .header("Cookie", &cookie)
        .header("Origin", &h.base)
        .form(&fields)
        .send()
        .await
        .unwrap();
    if reply.status() == 303 {
        return "ok".to_owned();
    }
    let html = reply.text().await.unwrap();
    let start = html
        .find(r#"<code id="error-code">"#)
        .unwrap_or_else(|| panic!("no error code on the page: {html}"))
        + r#"<code id="error-code">"#.len();
    html[start..start + html[start..].find('<').unwrap()].to_owned()
}

async fn events(h: &Doors, workspace: &str) -> usize {
    let (_, events) = h
        .embedded
        .store
        .load(&WorkspaceId::parse(workspace).unwrap())
        .await
        .unwrap();
    events.len()
}

pub(crate) async fn every_settlement_request_gets_the_same_answer_at_every_door(h: &Doors) {
    let policy = SitePolicy::builtin();
    h.embedded
        .expense_center
        .register(
            &UserName::parse(USER).unwrap(),
            &Email::parse("finance@acme.example").unwrap(),
        )
        .await
        .unwrap();
    let subscribed = [
        ("aws", AWS_ACCOUNT, None),
        ("alibaba-cloud", ALIBABA_ACCOUNT, Some(INSTANCE)),
    ];
    for (method, account, instance) in subscribed {
        let account = CloudAccount {
            account_id: id(account),
            instance_id: instance.map(id),
        };
        h.embedded
            .marketplace
            .set(&MethodId::parse(method).unwrap(), &account, true)
            .await
            .unwrap();
    }
    let rows = table(&policy);
    assert_eq!(rows.len(), 7 * 4 * 2 * 2);
    for r in &rows {
        for door in ["cli", "api", "console"] {
            upgrade(h, &r.workspace(door), &r.site).await;
        }
    }
    let upgraded = events(h, &rows[0].workspace("cli")).await;

    let mut answers: BTreeMap<Request, [String; 3]> = BTreeMap::new();
    let mut differ = Vec::new();
    for r in &rows {
        let cli = through_cli(h, r).await;
        let api = through_api(h, r).await;
        let console = through_console(h, r).await;
        if cli != api || api != console {
            differ.push(format!("{r:?}: cli {cli}, api {api}, console {console}"));
        }
        for (door, answer) in [("cli", &cli), ("api", &api), ("console", &console)] {
            let written = events(h, &r.workspace(door)).await - upgraded;
            let expected = usize::from(answer == "ok");
            assert_eq!(written, expected, "{door} {r:?} answered {answer}");
        }
        answers.insert(r.clone(), [cli, api, console]);
    }
    assert!(
        differ.is_empty(),
        "{} of {} requests got different answers at different doors:\n{}",
        differ.len(),
        rows.len(),
        differ.join("\n")
    );

    // The table is not trivially uniform: the domain's answers, spot-checked.
    let answer = |site: &str, method, account, instance| {
        answers[&Request {
            site: site.to_owned(),
            method,
            account,
            instance,
        }][0]
            .clone()
    };
    let aws = Some(AWS_ACCOUNT);
    let ali = Some(ALIBABA_ACCOUNT);
    let inst = Some(INSTANCE);
    assert_eq!(answer("us1", "aws", aws, None), "ok");
    assert_eq!(answer("cn1", "alibaba-cloud", ali, inst), "ok");
    assert_eq!(
        answer("us1", "enterprise", None, None),
        "settlement-unchanged"
    );
    for (site, method, account, instance) in [
        ("us1", "aws", aws, inst),
        ("us1", "aws", None, inst),
        ("us1", "aws", None, None),
        ("us1", "enterprise", aws, None),
        ("us1", "enterprise", None, inst),
        ("cn1", "alibaba-cloud", ali, None),
        ("cn1", "alibaba-cloud", None, inst),
    ] {
        assert_eq!(
            answer(site, method, account, instance),
            "invalid-settlement-request",
            "{site} {method} {account:?} {instance:?}"
        );
    }
    assert_eq!(
        answer("us1", "alibaba-cloud", ali, inst),
        "settlement-not-allowed-on-site"
    );
    assert_eq!(
        answer("cn4", "aws", aws, None),
        "settlement-not-allowed-on-site"
    );
    assert_eq!(
        answer("eu1", "bitcoin", None, None),
        "settlement-not-allowed-on-site"
    );
}

billing_test_support::on_both_backends! {
    harness: crate::doors::Doors,
    scenarios: crate::doors,
    tests: [every_settlement_request_gets_the_same_answer_at_every_door],
}
