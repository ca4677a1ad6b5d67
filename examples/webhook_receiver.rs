//! A webhook receiver, as a host would write one: it verifies each request's Standard Webhooks
//! signature (with the reference implementation, the `standardwebhooks` crate), drops what it
//! has already handled by `webhook-id` (delivery is at least once), and prints each event.
//!
//! ```sh
//! billing webhook add --url http://127.0.0.1:8090/hooks     # prints the endpoint's secret
//! WEBHOOK_SECRET=whsec_… cargo run --example webhook_receiver
//! billing deliver                                           # in another terminal
//! ```
//!
//! `RECEIVER_ADDR` sets where it listens (default `127.0.0.1:8090`). It answers 204 to a
//! verified request (also to one already seen), 401 to a bad or missing signature.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use standardwebhooks::Webhook;

struct Receiver {
    webhook: Webhook,
    seen: Mutex<HashSet<String>>,
}

async fn receive(
    State(receiver): State<Arc<Receiver>>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    if let Err(e) = receiver.webhook.verify(&body, &headers) {
        eprintln!("refused a request: {e}");
        return StatusCode::UNAUTHORIZED;
    }
    let id = headers
        .get("webhook-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let first_time = receiver
        .seen
        .lock()
        .map(|mut seen| seen.insert(id.clone()))
        .unwrap_or(true);
    if !first_time {
        println!("{id}: already handled (a redelivery)");
        return StatusCode::NO_CONTENT;
    }
    match serde_json::from_slice::<serde_json::Value>(&body) {
        Ok(event) => println!(
            "{id}: {} at position {}",
            event["event_type"].as_str().unwrap_or("?"),
            event["position"].as_str().unwrap_or("?")
        ),
        Err(e) => println!("{id}: a body that is not JSON ({e})"),
    }
    StatusCode::NO_CONTENT
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let secret = std::env::var("WEBHOOK_SECRET")
        .map_err(|_| "set WEBHOOK_SECRET to the secret `billing webhook add` printed (whsec_…)")?;
    let webhook = Webhook::new(&secret).map_err(|e| format!("WEBHOOK_SECRET: {e}"))?;
    let addr = std::env::var("RECEIVER_ADDR").unwrap_or_else(|_| "127.0.0.1:8090".to_owned());
    let listener = tokio::net::TcpListener::bind(&addr)
        .await
        .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    println!("listening on http://{addr}/hooks");
    let receiver = Arc::new(Receiver {
        webhook,
        seen: Mutex::new(HashSet::new()),
    });
    let app = axum::Router::new()
        .route("/hooks", post(receive))
        .with_state(receiver);
    axum::serve(listener, app).await?;
    Ok(())
}
