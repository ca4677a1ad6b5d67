//! The OpenAPI document and the router agree: every documented operation is routed, every route
//! of the API is documented (SQLite).

use std::collections::BTreeSet;

use reqwest::Method;
use serde_json::{json, Value};

use crate::harness::{send, Harness};

/// The API's routes, as SPEC §12 lists them.
const ROUTES: [(&str, &str); 11] = [
    ("post", "/v1/workspaces/{id}/upgrade"),
    ("post", "/v1/workspaces/{id}/account/bind"),
    ("post", "/v1/workspaces/{id}/account/register"),
    ("post", "/v1/workspaces/{id}/agreement/accept"),
    ("post", "/v1/workspaces/{id}/settlement"),
    ("post", "/v1/workspaces/{id}/dissolve"),
    ("post", "/v1/workspaces/{id}/arrears"),
    ("post", "/v1/workspaces/{id}/arrears/{bill}/settle"),
    ("get", "/v1/workspaces/{id}"),
    ("get", "/v1/workspaces/{id}/history"),
    ("get", "/v1/events"),
];

const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

async fn document(h: &Harness) -> Value {
    let reply = send(h.request(Method::GET, "/openapi.json")).await;
    reply.ok()
}

/// Every (method, path) of the document.
fn operations(doc: &Value) -> BTreeSet<(String, String)> {
    let paths = doc["paths"].as_object().expect("the document has paths");
    paths
        .iter()
        .flat_map(|(path, item)| {
            let item = item.as_object().expect("a path item is an object");
            METHODS
                .iter()
                .filter(|m| item.contains_key(**m))
                .map(|m| ((*m).to_owned(), path.clone()))
                .collect::<Vec<_>>()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_document_is_openapi_3_1_and_lists_exactly_the_routes() {
    let h = Harness::on_sqlite().await;
    let doc = document(&h).await;
    let version = doc["openapi"].as_str().expect("an openapi version");
    assert!(version.starts_with("3.1"), "OpenAPI 3.1, got {version}");
    assert!(doc["info"]["title"].as_str().is_some(), "{}", doc["info"]);

    let documented = operations(&doc);
    let expected: BTreeSet<(String, String)> = ROUTES
        .iter()
        .map(|(m, p)| ((*m).to_owned(), (*p).to_owned()))
        .collect();
    let undocumented: Vec<_> = expected.difference(&documented).collect();
    let unlisted: Vec<_> = documented.difference(&expected).collect();
    assert!(
        undocumented.is_empty(),
        "routes missing from the document: {undocumented:?}"
    );
    assert!(
        unlisted.is_empty(),
        "documented operations the API does not list: {unlisted:?}"
    );

    // Bearer auth is declared and every operation requires it.
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"], "bearer",
        "{}",
        doc["components"]["securitySchemes"]
    );
    for (method, path) in &documented {
        let operation = &doc["paths"][path][method];
        assert!(
            operation["security"]
                .as_array()
                .is_some_and(|s| !s.is_empty()),
            "{method} {path} declares its security"
        );
        let params = operation["parameters"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let param = |name: &str, place: &str| {
            params
                .iter()
                .find(|p| p["name"] == name && p["in"] == place)
                .cloned()
        };
        for name in path
            .split('/')
            .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
        {
            let p =
                param(name, "path").unwrap_or_else(|| panic!("{method} {path} documents {name}"));
            assert_eq!(p["required"], true, "{method} {path}: {p}");
        }
        if method == "post" {
            let key = param("Idempotency-Key", "header")
                .unwrap_or_else(|| panic!("{method} {path} documents Idempotency-Key"));
            assert_eq!(
                key["required"], true,
                "{method} {path}: the key is required"
            );
            assert!(
                param("If-Match", "header").is_some(),
                "{method} {path} documents If-Match"
            );
            assert!(
                operation["requestBody"]["content"]["application/json"].is_object(),
                "{method} {path} documents its JSON body"
            );
        }
        // Success and the problems are documented, problems with their media type.
        let responses = operation["responses"].as_object().expect("responses");
        assert!(responses.contains_key("200"), "{method} {path}: 200");
        for status in ["4XX", "503"] {
            assert!(
                responses[status]["content"]["application/problem+json"].is_object(),
                "{method} {path}: {status} is a problem: {}",
                responses.get(status).cloned().unwrap_or_default()
            );
        }
    }
    assert!(
        doc["components"]["schemas"]["Problem"].is_object(),
        "the Problem schema"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_documented_operation_is_routed() {
    let h = Harness::on_sqlite().await;
    let doc = document(&h).await;
    let w = "routed";
    let owner = h.owner(w);
    let mut checked = 0;
    for (method, path) in operations(&doc) {
        let url = path.replace("{id}", w).replace("{bill}", "b-1");
        let url = if url == "/v1/events" {
            "/v1/events?follow=false".to_owned()
        } else {
            url
        };
        let mut request = h
            .request(
                Method::from_bytes(method.to_uppercase().as_bytes()).expect("a method"),
                &url,
            )
            .bearer_auth(&owner);
        if method == "post" {
            request = request.header("Idempotency-Key", h.key()).json(&json!({}));
        }
        let reply = send(request).await;
        assert!(
            !matches!(reply.status, 404 | 405),
            "{method} {path} is documented but answers {}: {}",
            reply.status,
            reply.text
        );
        reply.assert_no_server_error(&path);
        checked += 1;
    }
    assert_eq!(checked, ROUTES.len());

    // And what is not documented is not served: there is no way back to the Experience Plan.
    for path in [
        "/v1/workspaces/routed/downgrade",
        "/v1/workspaces/routed/rollback",
        "/v1/workspaces/routed/plan",
        "/v1",
        "/v2/workspaces/routed",
    ] {
        let request = h
            .request(Method::POST, path)
            .bearer_auth(&owner)
            .header("Idempotency-Key", h.key())
            .json(&json!({}));
        send(request).await.problem(404, "not-found");
    }
    assert_eq!(h.total_events().await, 0);
}
