//! Who may do what: every bad credential, role and oversized body gets its documented status and
//! code, and none of them writes anything (SQLite).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use billing_domain::Role;
use billing_http::JwtAuth;
use chrono::{Duration, Utc};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::{Method, RequestBuilder};
use serde_json::{json, Value};

use crate::harness::{send, Harness, KEY};

/// The workspace the commands are aimed at (on the Experience Plan: the owner could upgrade it).
const W: &str = "target";
/// A commercial workspace (the billing system could report arrears on it).
const PAID: &str = "paid";

/// Sends `request`, expects the problem, and checks that nothing was written.
async fn refused(
    h: &Harness,
    what: &str,
    request: RequestBuilder,
    status: u16,
    code: &str,
) -> Value {
    let before = h.total_events().await;
    let reply = send(request).await;
    assert_eq!(
        (reply.status, reply.problem_code().as_deref()),
        (status, Some(code)),
        "{what}: expected {status} {code}, got {}: {}",
        reply.status,
        reply.text
    );
    reply.assert_problem_shape();
    assert_eq!(h.total_events().await, before, "{what}: nothing is written");
    reply.json()
}

fn upgrade(h: &Harness) -> RequestBuilder {
    h.request(Method::POST, &format!("/v1/workspaces/{W}/upgrade"))
        .header("Idempotency-Key", h.key())
        .json(&json!({ "site": "us1" }))
}

/// Signs `claims` with the server's key and `algorithm`.
fn signed(claims: &Value, algorithm: Algorithm) -> String {
    jsonwebtoken::encode(
        &Header::new(algorithm),
        claims,
        &EncodingKey::from_secret(KEY),
    )
    .expect("signing test claims")
}

fn owner_claims(workspace: &str) -> Value {
    json!({
        "sub": "mallory",
        "exp": (Utc::now() + Duration::hours(1)).timestamp(),
        "workspaces": { workspace: "owner" },
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_without_valid_credentials_is_401() {
    let h = Harness::on_sqlite().await;
    h.make_commercial(PAID, "us1").await;

    refused(&h, "no token", upgrade(&h), 401, "missing-token").await;
    for garbage in [
        "Bearer garbage",
        "Bearer a.b.c",
        "Bearer ",
        "Basic b2xpdmlhOnNlY3JldA==",
        "olivia",
    ] {
        refused(
            &h,
            garbage,
            upgrade(&h).header("Authorization", garbage),
            401,
            "malformed-token",
        )
        .await;
    }

    // Another key.
    let forger =
        JwtAuth::hs256(b"not-the-server-key-but-just-as-long-0123456789").expect("a forger's key");
    let forged = forger
        .issue(
            &billing_domain::ActorId::parse("mallory").expect("an actor"),
            &billing_http::Grant::Workspaces([(crate::harness::ws(W), Role::Owner)].into()),
            Utc::now(),
            Duration::hours(1),
        )
        .expect("a forged token");
    refused(
        &h,
        "wrong signature",
        upgrade(&h).bearer_auth(&forged),
        401,
        "invalid-token",
    )
    .await;

    // A real token for another workspace, its payload swapped for one naming this workspace.
    let real = h.owner("elsewhere");
    let mut parts: Vec<String> = real.split('.').map(str::to_owned).collect();
    parts[1] = URL_SAFE_NO_PAD.encode(owner_claims(W).to_string());
    let tampered = parts.join(".");
    refused(
        &h,
        "tampered payload",
        upgrade(&h).bearer_auth(&tampered),
        401,
        "invalid-token",
    )
    .await;

    // `alg: none`, unsigned.
    let none = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#),
        URL_SAFE_NO_PAD.encode(owner_claims(W).to_string())
    );
    let problem = refused(
        &h,
        "alg none",
        upgrade(&h).bearer_auth(&none),
        401,
        "invalid-token",
    )
    .await;
    assert!(problem["detail"].as_str().is_some(), "{problem}");

    // Signed with the server's key, but another algorithm than the server's.
    let hs512 = signed(&owner_claims(W), Algorithm::HS512);
    refused(
        &h,
        "HS512",
        upgrade(&h).bearer_auth(&hs512),
        401,
        "invalid-token",
    )
    .await;

    let expired = h.token_at(
        "olivia",
        &billing_http::Grant::Workspaces([(crate::harness::ws(W), Role::Owner)].into()),
        Utc::now() - Duration::hours(2),
        Duration::hours(1),
    );
    refused(
        &h,
        "expired",
        upgrade(&h).bearer_auth(&expired),
        401,
        "token-expired",
    )
    .await;

    // Well signed, but claims no token can carry: `system` as a workspace role, both a scope
    // and workspaces, an unknown scope, a missing expiry.
    let exp = (Utc::now() + Duration::hours(1)).timestamp();
    for (what, claims) in [
        (
            "system as a workspace role",
            json!({ "sub": "m", "exp": exp, "workspaces": { W: "system" } }),
        ),
        (
            "role root",
            json!({ "sub": "m", "exp": exp, "workspaces": { W: "root" } }),
        ),
        (
            "scope and workspaces",
            json!({ "sub": "m", "exp": exp, "scope": "billing-system", "workspaces": { W: "owner" } }),
        ),
        (
            "unknown scope",
            json!({ "sub": "m", "exp": exp, "scope": "admin" }),
        ),
        ("no grant", json!({ "sub": "m", "exp": exp })),
        (
            "bad workspace id",
            json!({ "sub": "m", "exp": exp, "workspaces": { "a'b": "owner" } }),
        ),
    ] {
        let token = signed(&claims, Algorithm::HS256);
        refused(
            &h,
            what,
            upgrade(&h).bearer_auth(&token),
            401,
            "malformed-token",
        )
        .await;
    }
    let no_exp = signed(
        &json!({ "sub": "m", "workspaces": { W: "owner" } }),
        Algorithm::HS256,
    );
    let reply = send(upgrade(&h).bearer_auth(&no_exp)).await;
    assert_eq!(reply.status, 401, "a token without exp: {}", reply.text);

    // Reads are guarded the same way.
    for path in [
        format!("/v1/workspaces/{PAID}"),
        format!("/v1/workspaces/{PAID}/history"),
        "/v1/events".into(),
    ] {
        let request = h.request(Method::GET, &path);
        refused(&h, &path, request, 401, "missing-token").await;
        let request = h.request(Method::GET, &path).bearer_auth(&none);
        refused(&h, &path, request, 401, "invalid-token").await;
    }
    assert_eq!(h.stream_len(W).await, 0);
    h.audit_clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_valid_token_without_the_role_is_403() {
    let h = Harness::on_sqlite().await;
    h.make_commercial(PAID, "us1").await;

    // A token that grants no role in the workspace is `workspace-not-granted`, for a command as
    // for a read. Corrected in issue 18: this asserted `not-workspace-owner`, the code of the
    // domain's role rule (a member or admin sending an owner's command), another cause.
    let elsewhere = h.owner("elsewhere");
    refused(
        &h,
        "another workspace's owner",
        upgrade(&h).bearer_auth(&elsewhere),
        403,
        "workspace-not-granted",
    )
    .await;
    for role in [Role::Admin, Role::Member] {
        let token = h.role_token("adam", W, role);
        refused(
            &h,
            role.as_str(),
            upgrade(&h).bearer_auth(&token),
            403,
            "not-workspace-owner",
        )
        .await;
    }
    let system = h.system();
    refused(
        &h,
        "the billing system",
        upgrade(&h).bearer_auth(&system),
        403,
        "not-workspace-owner",
    )
    .await;

    // Only the billing system reports arrears.
    let arrears = json!({ "bill": "b-1", "amount": "12.34", "currency": "CNY" });
    for token in [h.owner(PAID), h.role_token("adam", PAID, Role::Admin)] {
        let request = h.post(&token, PAID, "arrears", &arrears);
        refused(
            &h,
            "arrears by a member",
            request,
            403,
            "not-billing-system",
        )
        .await;
    }
    // …and it does (the refusals above were the role's, not the request's).
    let body = h.ok(&system, PAID, "arrears", arrears.clone()).await;
    assert_eq!(body["events"][0]["actor_role"], "system", "{body}");

    // A role in the body is not a role: the body is refused as a whole.
    let member = h.role_token("adam", W, Role::Member);
    let smuggled = h.post(
        &member,
        W,
        "upgrade",
        &json!({ "site": "us1", "role": "owner" }),
    );
    let problem = refused(&h, "role in the body", smuggled, 422, "invalid-value").await;
    assert!(
        problem["detail"]
            .as_str()
            .is_some_and(|d| d.contains("role")),
        "{problem}"
    );
    let smuggled = h.post(
        &member,
        W,
        "upgrade",
        &json!({ "site": "us1", "actor": { "role": "owner" } }),
    );
    refused(&h, "actor in the body", smuggled, 422, "invalid-value").await;

    // Reading another workspace is refused too.
    let request = h.get(&format!("/v1/workspaces/{PAID}"), &elsewhere);
    refused(&h, "read elsewhere", request, 403, "workspace-not-granted").await;
    let request = h.get(&format!("/v1/workspaces/{PAID}/history"), &elsewhere);
    refused(
        &h,
        "history elsewhere",
        request,
        403,
        "workspace-not-granted",
    )
    .await;
    // The feed is the billing system's.
    let request = h.get("/v1/events", &h.owner(PAID));
    refused(&h, "feed", request, 403, "not-billing-system").await;

    assert_eq!(h.stream_len(W).await, 0);
    h.audit_clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_over_64_kib_is_413() {
    let h = Harness::on_sqlite().await;
    let owner = h.owner(W);
    let padded = |size: usize| {
        let mut body = r#"{"site":"us1"}"#.to_owned();
        body.push_str(&" ".repeat(size - body.len()));
        body
    };
    let post = |body: String| {
        h.request(Method::POST, &format!("/v1/workspaces/{W}/upgrade"))
            .bearer_auth(&owner)
            .header("Idempotency-Key", h.key())
            .header("Content-Type", "application/json")
            .body(body)
    };
    let mut huge = r#"{"site":"us1","pad":""#.to_owned();
    huge.push_str(&"a".repeat(1024 * 1024));
    huge.push_str(r#""}"#);
    refused(&h, "1 MiB", post(huge), 413, "body-too-large").await;
    refused(
        &h,
        "64 KiB + 1",
        post(padded(64 * 1024 + 1)),
        413,
        "body-too-large",
    )
    .await;
    // Exactly at the limit is accepted.
    let reply = send(post(padded(64 * 1024))).await;
    assert_eq!(
        reply.status, 200,
        "a body of exactly 64 KiB: {}",
        reply.text
    );
    assert_eq!(h.stream_len(W).await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cross_site_request_cannot_send_a_command() {
    let h = Harness::on_sqlite().await;
    let owner = h.owner(W);
    let cookie = format!("billing_session={owner}");
    // What a foreign page can send without a preflight: a simple POST with the owner's cookie,
    // no custom headers, a form or text body.
    let simple = h
        .request(Method::POST, &format!("/v1/workspaces/{W}/upgrade"))
        .header("Cookie", &cookie)
        .header("Origin", "https://evil.example")
        .header("Content-Type", "text/plain")
        .body(r#"{"site":"us1"}"#);
    refused(
        &h,
        "simple cross-site POST",
        simple,
        400,
        "idempotency-key-required",
    )
    .await;
    let form = h
        .request(Method::POST, &format!("/v1/workspaces/{W}/upgrade"))
        .header("Cookie", &cookie)
        .header("Origin", "https://evil.example")
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body("site=us1");
    refused(
        &h,
        "cross-site form to the API",
        form,
        400,
        "idempotency-key-required",
    )
    .await;

    // The console's own forms: from a foreign origin, or without their CSRF field, or with a
    // wrong one, they are refused.
    for (what, origin, body) in [
        (
            "a foreign origin, no csrf",
            Some("https://evil.example"),
            "site=us1",
        ),
        (
            "a foreign origin, a forged csrf",
            Some("https://evil.example"),
            "site=us1&csrf=forged",
        ),
        ("no origin, no csrf", None, "site=us1"),
        (
            "this origin, a forged csrf",
            Some(h.server.base.as_str()),
            "site=us1&csrf=forged",
        ),
    ] {
        let mut form = h
            .request(Method::POST, &format!("/workspaces/{W}/upgrade"))
            .header("Cookie", &cookie)
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(body);
        if let Some(origin) = origin {
            form = form.header("Origin", origin);
        }
        let before = h.total_events().await;
        let reply = send(form).await;
        assert_eq!(
            reply.status, 403,
            "a console form with {what}: {}",
            reply.text
        );
        assert_eq!(h.total_events().await, before, "{what}: nothing is written");
    }
    assert_eq!(h.stream_len(W).await, 0);

    // The control: the same form with the page's own CSRF token goes through.
    let page = send(
        h.request(Method::GET, &format!("/workspaces/{W}/upgrade"))
            .header("Cookie", &cookie),
    )
    .await;
    assert_eq!(page.status, 200, "{}", page.text);
    let field = |name: &str| {
        let marker = format!("name=\"{name}\" value=\"");
        let start = page.text.find(&marker).map(|i| i + marker.len());
        start.and_then(|i| page.text[i..].split('"').next().map(str::to_owned))
    };
    let csrf = field("csrf").unwrap_or_else(|| panic!("the page has a csrf field: {}", page.text));
    let command_id = field("command_id").unwrap_or_default();
    let form = h
        .request(Method::POST, &format!("/workspaces/{W}/upgrade"))
        .header("Cookie", &cookie)
        .header("Origin", h.server.base.as_str())
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(format!("site=us1&csrf={csrf}&command_id={command_id}"));
    let reply = send(form).await;
    assert!(
        reply.status < 400,
        "the console's own form: {} {}",
        reply.status,
        reply.text
    );
    assert_eq!(
        h.stream_len(W).await,
        1,
        "the console's own form writes the upgrade"
    );
}
