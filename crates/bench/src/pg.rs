//! Fresh PostgreSQL databases for measurements.

use sqlx::postgres::PgPoolOptions;
use sqlx::PgPool;

/// The server to measure on.
pub(crate) fn server_url() -> String {
    std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// A new empty database on the server; returns its URL.
pub(crate) async fn fresh_database(tag: &str) -> Result<String, String> {
    let admin = PgPoolOptions::new()
        .max_connections(1)
        .connect(&server_url())
        .await
        .map_err(|e| format!("PostgreSQL at {} does not answer: {e}", server_url()))?;
    let name = format!("billing_bench_{}_{tag}", std::process::id());
    sqlx::query(&format!("DROP DATABASE IF EXISTS {name}"))
        .execute(&admin)
        .await
        .map_err(|e| e.to_string())?;
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&admin)
        .await
        .map_err(|e| e.to_string())?;
    admin.close().await;
    let mut url = url::Url::parse(&server_url()).map_err(|e| e.to_string())?;
    url.set_path(&name);
    Ok(url.to_string())
}

/// Drops a database made by [`fresh_database`].
pub(crate) async fn drop_database(url: &str) {
    let Ok(parsed) = url::Url::parse(url) else {
        return;
    };
    let name = parsed.path().trim_start_matches('/').to_owned();
    if let Ok(admin) = PgPoolOptions::new()
        .max_connections(1)
        .connect(&server_url())
        .await
    {
        let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .execute(&admin)
            .await;
        admin.close().await;
    }
}

/// A pool like the store's: no ping per acquire.
pub(crate) async fn pool(url: &str, connections: u32) -> Result<PgPool, String> {
    PgPoolOptions::new()
        .max_connections(connections)
        .test_before_acquire(false)
        .connect(url)
        .await
        .map_err(|e| e.to_string())
}
