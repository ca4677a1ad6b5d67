//! The per-test PostgreSQL databases: the server from `DATABASE_URL`, each test's own database
//! from `#[sqlx::test]`, and a second empty one beside it.

use sqlx::PgPool;
use url::Url;

/// The PostgreSQL server the suite runs against: `DATABASE_URL` (which `scripts/test` provides).
///
/// # Panics
///
/// When `DATABASE_URL` is unset, does not name PostgreSQL, or is not a URL: the PostgreSQL tests
/// must fail then, not skip.
pub fn database_url() -> Url {
    let url = std::env::var("DATABASE_URL").expect(
        "DATABASE_URL is not set: run the suite with scripts/test, which provides PostgreSQL",
    );
    assert!(
        url.starts_with("postgres"),
        "DATABASE_URL must point at PostgreSQL, got {url}"
    );
    Url::parse(&url).unwrap_or_else(|e| panic!("DATABASE_URL is not a URL ({e}): {url}"))
}

/// The URL of the database `pool` is connected to (a test's own database from `#[sqlx::test]`),
/// for opening it again as another process would.
///
/// # Panics
///
/// When the server does not answer, or as [`database_url`].
pub async fn url_of(pool: &PgPool) -> String {
    let name = current_database(pool).await;
    with_database(&name)
}

/// Creates an empty database beside the test's own (dropping a leftover of an earlier run
/// first) and returns its URL: the target of an import, say.
///
/// Its name is the tail of the test database's name, so each test has its own. It outlives the
/// test: the next run of the same test drops and re-creates it.
///
/// # Panics
///
/// When the server refuses, or as [`database_url`].
pub async fn second_database(pool: &PgPool) -> String {
    let name = current_database(pool).await;
    // Identifiers are cut at 63 bytes: keep the unique tail of the test database's name.
    let second = format!("imp_{}", &name[name.len().saturating_sub(40)..]);
    sqlx::query(&format!(
        "DROP DATABASE IF EXISTS \"{second}\" WITH (FORCE)"
    ))
    .execute(pool)
    .await
    .unwrap_or_else(|e| panic!("dropping database {second}: {e}"));
    sqlx::query(&format!("CREATE DATABASE \"{second}\""))
        .execute(pool)
        .await
        .unwrap_or_else(|e| panic!("creating database {second}: {e}"));
    with_database(&second)
}

async fn current_database(pool: &PgPool) -> String {
    sqlx::query_scalar("SELECT current_database()")
        .fetch_one(pool)
        .await
        .unwrap_or_else(|e| panic!("asking PostgreSQL for the current database: {e}"))
}

/// `DATABASE_URL` with its database replaced by `name`.
fn with_database(name: &str) -> String {
    let mut url = database_url();
    url.set_path(name);
    url.into()
}
