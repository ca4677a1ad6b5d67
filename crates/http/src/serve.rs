//! Serving a router until a shutdown signal, letting requests in flight finish.

use std::future::Future;

use axum::Router;
use tokio::net::TcpListener;

/// Why serving stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The listener failed (accepting, or reading its address): check the address and that
    /// the port is free.
    #[error("serving failed: {0}")]
    Io(#[from] std::io::Error),
}

/// Serves `app` on `listener` until `shutdown` resolves; then stops accepting and waits for
/// the requests in flight (open event feeds end at the signal too).
///
/// # Errors
/// [`ServeError::Io`].
pub async fn serve(
    listener: TcpListener,
    app: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await?;
    Ok(())
}
