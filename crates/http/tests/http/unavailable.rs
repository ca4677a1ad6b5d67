//! The store unavailable: every request that needs it is `503 store-unavailable` with
//! `Retry-After`, never another 5xx (PostgreSQL: the database is dropped under the server).

use std::sync::Arc;
use std::time::Duration;

use billing_adapters::Embedded;
use billing_domain::memory::ManualClock;
use billing_domain::SitePolicy;
use billing_store::StoreOptions;
use billing_test_support::TestDb;
use reqwest::Method;
use serde_json::json;

use crate::harness::{send, t, Harness, Reply, START};

/// What is wrong with the answer to a request that needs the store, if anything: it must be a
/// 503 problem (the store, or the embedded Expense Center on the same database) with
/// `Retry-After` in seconds.
fn unavailable(reply: &Reply, what: &str) -> Option<String> {
    let code = reply.problem_code();
    if reply.status != 503
        || !matches!(
            code.as_deref(),
            Some("store-unavailable" | "port-unavailable")
        )
    {
        return Some(format!("{what}: {} {}", reply.status, reply.text));
    }
    reply.assert_problem_shape();
    let retry = reply.header("retry-after");
    if !retry.is_some_and(|r| r.parse::<u32>().is_ok_and(|s| s > 0)) {
        return Some(format!("{what}: Retry-After is {retry:?}"));
    }
    None
}

#[sqlx::test(migrations = false)]
async fn an_unavailable_store_is_503_with_retry_after(pool: sqlx::PgPool) {
    // The server runs on a database of its own, which the test's connection then drops.
    let url = billing_test_support::second_database(&pool).await;
    let name = url
        .rsplit('/')
        .next()
        .and_then(|n| n.split('?').next())
        .expect("the database's name")
        .to_owned();
    let clock = Arc::new(ManualClock::new(t(START)));
    let options = StoreOptions {
        busy_timeout: Duration::from_secs(2),
        ..StoreOptions::default()
    };
    let embedded = Embedded::open_with(&url, options, SitePolicy::builtin(), clock.clone())
        .await
        .expect("opening the server's database");
    let h = Harness::over(TestDb::Postgres(pool.clone()), clock, embedded).await;
    let w = "down";
    let owner = h.owner(w);
    let upgrade = json!({ "site": "us1" });
    let first = send(h.post_keyed(&owner, w, "upgrade", "upgrade-1", &upgrade)).await;
    first.ok();
    h.register_user("down-finance").await;

    sqlx::query(&format!("DROP DATABASE \"{name}\" WITH (FORCE)"))
        .execute(&pool)
        .await
        .expect("dropping the server's database");

    let system = h.system();
    let requests = [
        (
            "bind",
            h.post(
                &owner,
                w,
                "account/bind",
                &json!({ "username": "down-finance" }),
            ),
        ),
        (
            "a new workspace",
            h.post(&h.owner("new"), "new", "upgrade", &upgrade),
        ),
        (
            "a replay",
            h.post_keyed(&owner, w, "upgrade", "upgrade-1", &upgrade),
        ),
        ("the view", h.get(&format!("/v1/workspaces/{w}"), &owner)),
        (
            "as of",
            h.get(
                &format!("/v1/workspaces/{w}?as_of=2026-11-10T10:00:00Z"),
                &owner,
            ),
        ),
        (
            "the history",
            h.get(&format!("/v1/workspaces/{w}/history"), &owner),
        ),
        ("the feed", h.get("/v1/events?follow=false", &system)),
        (
            "arrears",
            h.request(Method::POST, &format!("/v1/workspaces/{w}/arrears"))
                .bearer_auth(&system)
                .header("Idempotency-Key", h.key())
                .json(&json!({ "bill": "b-1", "amount": "1.00", "currency": "USD" })),
        ),
    ];
    let mut wrong = Vec::new();
    for (what, request) in requests {
        wrong.extend(unavailable(&send(request).await, what));
    }
    assert!(
        wrong.is_empty(),
        "not 503 with Retry-After:\n{}",
        wrong.join("\n")
    );
    // What needs no store still answers.
    send(h.request(Method::GET, "/openapi.json")).await.ok();
    send(h.request(Method::GET, "/v1/workspaces/down"))
        .await
        .problem(401, "missing-token");
}
