//! Every error is an RFC 9457 problem: `application/problem+json` with `type`, `title`,
//! `status`, `detail` and `code`, its `status` the HTTP status (SQLite).

use reqwest::Method;
use serde_json::json;

use crate::harness::{send, Harness};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_kind_of_error_is_a_problem_with_its_status() {
    let h = Harness::on_sqlite().await;
    let w = "probs";
    let owner = h.owner(w);
    h.ok(&owner, w, "upgrade", json!({ "site": "us1" })).await;
    let post = |command: &str| {
        h.request(Method::POST, &format!("/v1/workspaces/{w}/{command}"))
            .bearer_auth(&owner)
            .header("Idempotency-Key", h.key())
    };
    let cases = [
        (
            post("account/bind").json(&json!({ "username": "x" })),
            422,
            "invalid-value",
        ),
        (
            h.request(Method::POST, &format!("/v1/workspaces/{w}/upgrade"))
                .bearer_auth(&owner)
                .json(&json!({ "site": "us1" })),
            400,
            "idempotency-key-required",
        ),
        (
            post("upgrade")
                .header("Content-Type", "application/json")
                .body("{not json"),
            400,
            "malformed-body",
        ),
        (
            h.request(Method::GET, &format!("/v1/workspaces/{w}")),
            401,
            "missing-token",
        ),
        (
            h.get(&format!("/v1/workspaces/{w}"), &h.owner("other")),
            403,
            "workspace-not-granted",
        ),
        (h.get("/nowhere", &owner), 404, "not-found"),
        (
            post("upgrade").json(&json!({ "site": "us1" })),
            409,
            "upgrade-already-requested",
        ),
        (
            h.post(
                &h.owner("fresh"),
                "fresh",
                "upgrade",
                &json!({ "site": "mars1" }),
            ),
            409,
            "unknown-site",
        ),
        (
            post("account/bind")
                .header("If-Match", "\"0\"")
                .json(&json!({ "username": "probs-x" })),
            412,
            "precondition-failed",
        ),
        (
            post("upgrade")
                .header("Content-Type", "application/json")
                .body(vec![b' '; 70_000]),
            413,
            "body-too-large",
        ),
    ];
    for (request, status, code) in cases {
        let problem = send(request).await.problem(status, code);
        let type_uri = problem["type"].as_str().unwrap_or_default();
        assert!(
            type_uri.starts_with("https://"),
            "the type is an absolute URI: {problem}"
        );
        assert!(!problem["detail"].as_str().unwrap_or_default().is_empty());
    }
    assert_eq!(h.stream_len(w).await, 1);
}
