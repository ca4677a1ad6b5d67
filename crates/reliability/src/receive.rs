//! `billing-reliability receive --listen ADDR --secret-file FILE --out FILE`: a webhook receiver
//! for the crash test. It checks each request's Standard Webhooks signature with the reference
//! implementation (the `standardwebhooks` crate) and appends each verified body as one line to
//! `--out` (what `billing events` prints, so `consumed` can check it); a request that does not
//! verify is written as a `BAD …` line, which `consumed` reports. Runs until SIGTERM or SIGINT,
//! then prints how many requests came.

use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use serde_json::{json, Value};
use standardwebhooks::Webhook;

struct Receiver {
    webhook: Webhook,
    out: Mutex<std::fs::File>,
    received: AtomicU64,
    bad: AtomicU64,
}

async fn receive(State(r): State<Arc<Receiver>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    r.received.fetch_add(1, Ordering::Relaxed);
    let mut line = match r.webhook.verify(&body, &headers) {
        Ok(()) => body.to_vec(),
        Err(e) => {
            r.bad.fetch_add(1, Ordering::Relaxed);
            format!("BAD signature: {e}").into_bytes()
        }
    };
    line.push(b'\n');
    let written = r
        .out
        .lock()
        .map_err(|e| e.to_string())
        .and_then(|mut f| f.write_all(&line).map_err(|e| e.to_string()));
    match written {
        Ok(()) => StatusCode::NO_CONTENT,
        // Not recorded: the sender must try again.
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// Runs the receiver until a signal; returns its report.
pub(crate) async fn run(
    listen: &str,
    secret_file: &Path,
    out: &Path,
) -> Result<(Value, bool), String> {
    let secret = std::fs::read_to_string(secret_file)
        .map_err(|e| format!("{}: {e}", secret_file.display()))?;
    let webhook = Webhook::new(secret.trim()).map_err(|e| format!("the secret: {e}"))?;
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(out)
        .map_err(|e| format!("{}: {e}", out.display()))?;
    let receiver = Arc::new(Receiver {
        webhook,
        out: Mutex::new(file),
        received: AtomicU64::new(0),
        bad: AtomicU64::new(0),
    });
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    let app = axum::Router::new()
        .route("/hooks", axum::routing::post(receive))
        .with_state(receiver.clone());
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| format!("cannot listen for SIGTERM: {e}"))?;
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            tokio::select! {
                _ = terminate.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        })
        .await
        .map_err(|e| format!("the receiver stopped: {e}"))?;
    let bad = receiver.bad.load(Ordering::Relaxed);
    Ok((
        json!({
            "received": receiver.received.load(Ordering::Relaxed),
            "bad_signatures": bad,
        }),
        bad == 0,
    ))
}
