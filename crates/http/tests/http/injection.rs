//! Hostile values in the path, the query, the headers and the body: each is a 4xx problem (an
//! invalid value is `422 invalid-value`), never a 5xx; nothing is written, the store still
//! audits clean and its tables are still there (SQLite).

use reqwest::Method;
use serde_json::{json, Value};

use crate::harness::{segment, send, Harness};

/// Values no identifier accepts (quotes, spaces, control characters, beyond ASCII).
const HOSTILE: [&str; 6] = [
    "x'; DROP TABLE events;--",
    "\"quoted\"",
    "\u{7}",
    "a\u{0}b",
    "ünïcødé",
    "a b",
];

/// Values a free-text id (account, bill, card) may hold, but no workspace id, site, method,
/// user name or agreement version.
const ODD: [&str; 3] = ["../../etc/passwd", "<script>alert(1)</script>", "a/b"];

const PAID: &str = "paid";

/// Sends and expects `422 invalid-value`.
async fn invalid(what: &str, request: reqwest::RequestBuilder) {
    let reply = send(request).await;
    reply.assert_no_server_error(what);
    assert_eq!(
        (reply.status, reply.problem_code().as_deref()),
        (422, Some("invalid-value")),
        "{what}: {}",
        reply.text
    );
    reply.assert_problem_shape();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_ids_in_the_path_are_invalid_values() {
    let h = Harness::on_sqlite().await;
    h.make_commercial(PAID, "us1").await;
    let before = h.total_events().await;
    let owner = h.owner(PAID);
    let system = h.system();
    let long = "x".repeat(129);
    let mut ids: Vec<&str> = HOSTILE.into_iter().chain(ODD).collect();
    ids.push(&long);
    for bad in ids {
        let id = segment(bad);
        for path in [
            format!("/v1/workspaces/{id}"),
            format!("/v1/workspaces/{id}/history"),
        ] {
            invalid(&format!("GET {path}"), h.get(&path, &owner)).await;
            invalid(&format!("GET {path} as system"), h.get(&path, &system)).await;
        }
        for (command, body) in [
            ("upgrade", json!({ "site": "us1" })),
            ("account/bind", json!({ "username": "paid-finance" })),
            ("settlement", json!({ "method": "enterprise" })),
            ("dissolve", json!({})),
        ] {
            let path = format!("/v1/workspaces/{id}/{command}");
            let request = h
                .request(Method::POST, &path)
                .bearer_auth(&owner)
                .header("Idempotency-Key", h.key())
                .json(&body);
            invalid(&format!("POST {path}"), request).await;
        }
        if !ODD.contains(&bad) {
            let path = format!("/v1/workspaces/{PAID}/arrears/{id}/settle");
            let request = h
                .request(Method::POST, &path)
                .bearer_auth(&system)
                .header("Idempotency-Key", h.key())
                .json(&json!({}));
            invalid(&format!("POST {path}"), request).await;
        }
    }
    assert_eq!(h.total_events().await, before, "nothing is written");
    h.audit_clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_values_in_the_body_are_invalid_values() {
    let h = Harness::on_sqlite().await;
    h.make_commercial(PAID, "us1").await;
    let fresh = "fresh";
    h.ok(&h.owner(fresh), fresh, "upgrade", json!({ "site": "cn1" }))
        .await;
    let before = h.total_events().await;
    let system = h.system();
    for bad in ODD {
        for (workspace, command, body) in [
            (fresh, "upgrade", json!({ "site": bad })),
            (fresh, "account/bind", json!({ "username": bad })),
            (fresh, "agreement/accept", json!({ "version": bad })),
            (PAID, "settlement", json!({ "method": bad })),
        ] {
            let request = h.post(&h.owner(workspace), workspace, command, &body);
            invalid(&format!("{command} {body}"), request).await;
        }
    }
    for bad in HOSTILE {
        let owner_bodies: Vec<(&str, &str, Value)> = vec![
            (fresh, "upgrade", json!({ "site": bad })),
            (fresh, "account/bind", json!({ "username": bad })),
            (
                fresh,
                "account/register",
                json!({ "username": bad, "email": "a@b.example" }),
            ),
            (
                fresh,
                "account/register",
                json!({ "username": "fresh-co", "email": bad }),
            ),
            (fresh, "agreement/accept", json!({ "version": bad })),
            (PAID, "settlement", json!({ "method": bad })),
            (
                PAID,
                "settlement",
                json!({ "method": "aws", "account": bad }),
            ),
            (
                PAID,
                "settlement",
                json!({ "method": "aws", "account": "123456789012", "instance": bad }),
            ),
            (
                PAID,
                "arrears/b-1/settle",
                json!({ "stored_value_card": bad }),
            ),
        ];
        for (workspace, command, body) in owner_bodies {
            let request = h.post(&h.owner(workspace), workspace, command, &body);
            invalid(&format!("{command} {body}"), request).await;
        }
        for body in [
            json!({ "bill": bad, "amount": "1.00", "currency": "CNY" }),
            json!({ "bill": "b-1", "amount": bad, "currency": "CNY" }),
            json!({ "bill": "b-1", "amount": "1.00", "currency": bad }),
        ] {
            let request = h.post(&system, PAID, "arrears", &body);
            invalid(&format!("arrears {body}"), request).await;
        }
    }
    // Values of the wrong type or shape name the body.
    for body in [
        json!({ "site": 1 }),
        json!({ "site": null }),
        json!({ "site": ["us1"] }),
        json!({}),
        json!([]),
        json!("us1"),
    ] {
        let request = h.post(&h.owner(fresh), fresh, "upgrade", &body);
        invalid(&format!("upgrade {body}"), request).await;
    }
    for amount in [
        "-1.00",
        "1.234",
        "1e3",
        "0x10",
        "99999999999999999999999.00",
        "",
    ] {
        let body = json!({ "bill": "b-2", "amount": amount, "currency": "CNY" });
        let reply = send(h.post(&system, PAID, "arrears", &body)).await;
        reply.assert_no_server_error(&format!("amount {amount:?}"));
        assert_eq!(reply.status, 422, "amount {amount:?}: {}", reply.text);
    }
    assert_eq!(h.total_events().await, before, "nothing is written");

    // A value that passes every check but reads like SQL is only data.
    let sql_like = "1;DROP-TABLE-events;--";
    h.subscribe("aws", sql_like, true).await;
    let body = h
        .ok(
            &h.owner(PAID),
            PAID,
            "settlement",
            json!({ "method": "aws", "account": sql_like }),
        )
        .await;
    assert_eq!(body["view"]["cloud_account_id"], sql_like, "{body}");
    assert_eq!(h.total_events().await, before + 1);
    h.audit_clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_headers_and_queries_are_4xx() {
    let h = Harness::on_sqlite().await;
    h.make_commercial(PAID, "us1").await;
    let before = h.total_events().await;
    let owner = h.owner(PAID);
    let system = h.system();

    for key in [
        "x'; DROP TABLE events;--",
        "\"quoted\"",
        "a b",
        "ключ",
        &"k".repeat(129),
    ] {
        let request = h
            .request(Method::POST, &format!("/v1/workspaces/{PAID}/settlement"))
            .bearer_auth(&owner)
            .header("Idempotency-Key", key.as_bytes())
            .json(&json!({ "method": "enterprise" }));
        invalid(&format!("Idempotency-Key {key:?}"), request).await;
    }
    for as_of in [
        "yesterday",
        "2026-13-01T00:00:00Z",
        "'; DROP TABLE events;--",
        "\u{7}",
    ] {
        let path = format!("/v1/workspaces/{PAID}?as_of={}", segment(as_of));
        invalid(&format!("as_of {as_of:?}"), h.get(&path, &owner)).await;
    }
    for from in [
        "-1",
        "1",
        "a.b",
        "'; DROP TABLE events;--",
        "18446744073709551616.1",
    ] {
        let path = format!("/v1/events?follow=false&from={}", segment(from));
        invalid(&format!("from {from:?}"), h.get(&path, &system)).await;
        let request = h
            .get("/v1/events?follow=false", &system)
            .header("Last-Event-ID", from.as_bytes());
        invalid(&format!("Last-Event-ID {from:?}"), request).await;
    }

    // Not JSON at all.
    for text in ["{", "site=us1", "\u{0}", "{\"site\":\"us1\"}{}"] {
        let request = h
            .request(Method::POST, &format!("/v1/workspaces/{PAID}/settlement"))
            .bearer_auth(&owner)
            .header("Idempotency-Key", h.key())
            .header("Content-Type", "application/json")
            .body(text.to_owned());
        let reply = send(request).await;
        reply.assert_no_server_error(text);
        assert!(
            matches!(reply.status, 400 | 422),
            "a body that is not JSON ({text:?}): {} {}",
            reply.status,
            reply.text
        );
        reply.assert_problem_shape();
    }
    // JSON without its media type.
    let request = h
        .request(Method::POST, &format!("/v1/workspaces/{PAID}/settlement"))
        .bearer_auth(&owner)
        .header("Idempotency-Key", h.key())
        .header("Content-Type", "text/plain")
        .body(r#"{"method":"enterprise"}"#);
    invalid("text/plain", request).await;

    assert_eq!(h.total_events().await, before, "nothing is written");
    h.audit_clean().await;
    // The tables are still there: a command still goes through.
    let fresh = "after-all";
    h.ok(&h.owner(fresh), fresh, "upgrade", json!({ "site": "eu1" }))
        .await;
    assert_eq!(h.total_events().await, before + 1);
}

/// What axum's own extractors refuse (a path that is not UTF-8, a query of the wrong type, a
/// method the route does not take) must be a problem too: "errors are RFC 9457".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_frameworks_refusals_are_problems_too() {
    let h = Harness::on_sqlite().await;
    let owner = h.owner(PAID);
    let system = h.system();
    let cases = [
        ("GET", "/v1/workspaces/%FF".to_owned(), owner.clone()),
        (
            "GET",
            "/v1/workspaces/%C3%28/history".to_owned(),
            owner.clone(),
        ),
        ("GET", "/v1/events?follow=maybe".to_owned(), system.clone()),
        (
            "GET",
            "/v1/events?follow=false&from=%FF".to_owned(),
            system.clone(),
        ),
        (
            "POST",
            "/v1/workspaces/%FF/upgrade".to_owned(),
            owner.clone(),
        ),
        (
            "PUT",
            format!("/v1/workspaces/{PAID}/upgrade"),
            owner.clone(),
        ),
        ("DELETE", format!("/v1/workspaces/{PAID}"), owner.clone()),
    ];
    let mut not_problems = Vec::new();
    for (method, path, token) in cases {
        let request = h
            .request(
                Method::from_bytes(method.as_bytes()).expect("a method"),
                &path,
            )
            .bearer_auth(&token)
            .header("Idempotency-Key", h.key())
            .json(&json!({ "site": "us1" }));
        let reply = send(request).await;
        reply.assert_no_server_error(&path);
        assert!(
            (400..500).contains(&reply.status),
            "{method} {path}: {}",
            reply.status
        );
        if reply.header("content-type") != Some("application/problem+json") {
            not_problems.push(format!(
                "{method} {path} → {} {:?} {:?}",
                reply.status,
                reply.header("content-type"),
                reply.text
            ));
        }
    }
    assert!(
        not_problems.is_empty(),
        "not RFC 9457 problems:\n{}",
        not_problems.join("\n")
    );
    assert_eq!(h.total_events().await, 0);
}
