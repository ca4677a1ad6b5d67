//! The store's database under a test, past the store: raw SQL, and taking the database away.

use billing_store::{on_backend, Db, PerBackend};
use sqlx::{Connection as _, PgConnection};

use crate::TestDb;

/// Runs `sql` on the store's database, bypassing the store (to tamper with a table, or to make a
/// test's own); the rows it changed.
///
/// # Errors
/// The database's error: a test may expect one (the append-only triggers refusing a change).
pub async fn execute(db: &Db, sql: &str) -> Result<u64, sqlx::Error> {
    on_backend!(db.backend(), |pool| sqlx::query(sql)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))
}

/// The one integer `sql` selects (a `count(*)`).
///
/// # Panics
///
/// When the query fails.
pub async fn query_i64(db: &Db, sql: &str) -> i64 {
    on_backend!(db.backend(), |pool| sqlx::query_scalar(sql)
        .fetch_one(pool)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}")))
}

/// Something that keeps a store away from its database until it ends: on SQLite another
/// "process" holding the write lock (`BEGIN IMMEDIATE`), on PostgreSQL the test database closed
/// to connections and its connections ended (from the server's maintenance database).
#[derive(Debug)]
pub struct Outage(PerBackend<(PgConnection, String), sqlx::pool::PoolConnection<sqlx::Sqlite>>);

impl Outage {
    /// Takes `db` away.
    ///
    /// # Panics
    ///
    /// When the database refuses.
    pub async fn begin(db: &TestDb) -> Self {
        match db {
            TestDb::Sqlite(file) => {
                let pool = sqlx::SqlitePool::connect(file.url())
                    .await
                    .unwrap_or_else(|e| panic!("opening {}: {e}", file.url()));
                let mut conn = pool
                    .acquire()
                    .await
                    .expect("a connection of the second pool");
                sqlx::query("BEGIN IMMEDIATE")
                    .execute(&mut *conn)
                    .await
                    .expect("BEGIN IMMEDIATE");
                Self(PerBackend::Sqlite(conn))
            }
            TestDb::Postgres(pool) => {
                let name: String = sqlx::query_scalar("SELECT current_database()")
                    .fetch_one(pool)
                    .await
                    .expect("the test database's name");
                let mut control = PgConnection::connect(crate::database_url().as_str())
                    .await
                    .expect("a connection to the maintenance database");
                sqlx::query(&format!(
                    "ALTER DATABASE \"{name}\" ALLOW_CONNECTIONS false"
                ))
                .execute(&mut control)
                .await
                .expect("closing the test database to connections");
                sqlx::query(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1",
                )
                .bind(&name)
                .execute(&mut control)
                .await
                .expect("ending the test database's connections");
                Self(PerBackend::Postgres((control, name)))
            }
        }
    }

    /// Gives the database back.
    ///
    /// # Panics
    ///
    /// When the database refuses.
    pub async fn end(self) {
        match self.0 {
            PerBackend::Sqlite(mut conn) => {
                sqlx::query("ROLLBACK")
                    .execute(&mut *conn)
                    .await
                    .expect("ROLLBACK");
            }
            PerBackend::Postgres((mut control, name)) => {
                sqlx::query(&format!("ALTER DATABASE \"{name}\" ALLOW_CONNECTIONS true"))
                    .execute(&mut control)
                    .await
                    .expect("opening the test database to connections again");
            }
        }
    }
}
