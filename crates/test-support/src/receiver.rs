//! A real webhook receiver on loopback for the tests: an HTTP server that checks each request's
//! Standard Webhooks signature with its own HMAC-SHA256 (not the sender's code), records what
//! came, and answers as the test scripts it (a status, a redirect, or no answer at all).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// One request as the receiver got it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Received {
    /// The `webhook-id` header.
    pub id: String,
    /// The `webhook-timestamp` header.
    pub timestamp: String,
    /// The body, as text.
    pub body: String,
    /// Whether one of the `webhook-signature` header's `v1` signatures is the HMAC-SHA256 of
    /// `id.timestamp.body` under the receiver's secret.
    pub signature_ok: bool,
    /// The status the receiver answered with (`None`: it never answered).
    pub answered: Option<u16>,
}

/// How the receiver answers a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    /// This status, with a short text body.
    Status(u16),
    /// 307 with this `Location`.
    Redirect(String),
    /// Nothing, for longer than any sender waits.
    Hang,
}

#[derive(Default)]
struct Inner {
    secret: Option<Vec<u8>>,
    script: VecDeque<Answer>,
    received: Vec<Received>,
}

/// A receiver listening on `127.0.0.1`; it stops when dropped.
pub struct Receiver {
    url: String,
    inner: Arc<Mutex<Inner>>,
    server: tokio::task::JoinHandle<()>,
}

fn lock(inner: &Mutex<Inner>) -> MutexGuard<'_, Inner> {
    inner.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Whether `header` holds a `v1,` signature of `id.timestamp.body` under `key`.
pub fn signature_matches(key: &[u8], id: &str, timestamp: &str, body: &[u8], header: &str) -> bool {
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key) else {
        return false;
    };
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    let expected = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    header
        .split(' ')
        .filter_map(|s| s.strip_prefix("v1,"))
        .any(|s| s == expected)
}

async fn receive(
    State(inner): State<Arc<Mutex<Inner>>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let (id, timestamp) = (header("webhook-id"), header("webhook-timestamp"));
    let answer = {
        let mut inner = lock(&inner);
        let signature_ok = inner.secret.as_deref().is_some_and(|key| {
            signature_matches(key, &id, &timestamp, &body, &header("webhook-signature"))
        });
        let answer = inner.script.pop_front().unwrap_or(Answer::Status(200));
        inner.received.push(Received {
            id,
            timestamp,
            body: String::from_utf8_lossy(&body).into_owned(),
            signature_ok,
            answered: match &answer {
                Answer::Status(s) => Some(*s),
                Answer::Redirect(_) => Some(307),
                Answer::Hang => None,
            },
        });
        answer
    };
    match answer {
        Answer::Status(code) => {
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            (status, format!("scripted {code}")).into_response()
        }
        Answer::Redirect(to) => {
            (StatusCode::TEMPORARY_REDIRECT, [("location", to)]).into_response()
        }
        Answer::Hang => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            StatusCode::OK.into_response()
        }
    }
}

impl Receiver {
    /// Starts a receiver on a free loopback port; every request is answered 200 until
    /// [`Receiver::script`] says otherwise.
    ///
    /// # Panics
    /// When no loopback port can be bound.
    pub async fn start() -> Self {
        let inner = Arc::new(Mutex::new(Inner::default()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a loopback port for the webhook receiver");
        let addr = listener.local_addr().expect("the receiver's address");
        let app = axum::Router::new()
            .route("/hooks", axum::routing::post(receive))
            .with_state(inner.clone());
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            url: format!("http://{addr}/hooks"),
            inner,
            server,
        }
    }

    /// Where it listens (`http://127.0.0.1:PORT/hooks`).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Verifies signatures from now on with `secret` (`whsec_` and base64).
    ///
    /// # Panics
    /// When the secret is not `whsec_` and base64.
    pub fn set_secret(&self, secret: &str) {
        let key = base64::engine::general_purpose::STANDARD
            .decode(secret.strip_prefix("whsec_").expect("a whsec_ secret"))
            .expect("a base64 secret");
        lock(&self.inner).secret = Some(key);
    }

    /// Answers the next requests so, in order; after them, 200 again.
    pub fn script(&self, answers: impl IntoIterator<Item = Answer>) {
        lock(&self.inner).script.extend(answers);
    }

    /// Forgets the answers scripted and not yet given: 200 from now on.
    pub fn clear_script(&self) {
        lock(&self.inner).script.clear();
    }

    /// Everything received so far, in arrival order.
    pub fn received(&self) -> Vec<Received> {
        lock(&self.inner).received.clone()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.server.abort();
    }
}
