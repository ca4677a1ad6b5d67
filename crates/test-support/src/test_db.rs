//! The database a harness runs on, another store's connection to it, and a fresh one of the same
//! backend.

use std::future::Future;

use billing_store::{Db, PerBackend, StoreOptions};
use sqlx::PgPool;

use crate::{postgres, SqliteFile};

/// The database under a test, as the store's own backend switch holds it: a temporary SQLite
/// file, or the test's own PostgreSQL database (from `#[sqlx::test]`). What a test does with it
/// is [`TestDatabase`].
pub type TestDb = PerBackend<PgPool, SqliteFile>;

/// What a test does with its [`TestDb`]: make one, open it again, make an empty second one.
pub trait TestDatabase: Sized {
    /// A new temporary SQLite file.
    ///
    /// # Panics
    ///
    /// As [`SqliteFile::in_temp_dir`].
    fn sqlite() -> Self;

    /// The URL to open this database with again (as another process would).
    ///
    /// # Panics
    ///
    /// As [`url_of`](crate::url_of).
    fn url(&self) -> impl Future<Output = String> + Send;

    /// Another connection of the store to this database, migrated, as another process would
    /// open it: its own pool, lanes and writer.
    ///
    /// # Panics
    ///
    /// When the database cannot be opened.
    fn connect(&self, options: &StoreOptions) -> impl Future<Output = Db> + Send;

    /// An empty database of the same backend: a new temporary file, or a second PostgreSQL
    /// database beside this one ([`second_database`](crate::second_database)).
    ///
    /// # Panics
    ///
    /// As [`SqliteFile::in_temp_dir`] and [`second_database`](crate::second_database).
    fn fresh(&self) -> impl Future<Output = FreshDatabase> + Send;
}

impl TestDatabase for TestDb {
    fn sqlite() -> Self {
        Self::Sqlite(SqliteFile::in_temp_dir())
    }

    async fn url(&self) -> String {
        match self {
            Self::Sqlite(file) => file.url().to_owned(),
            Self::Postgres(pool) => postgres::url_of(pool).await,
        }
    }

    async fn connect(&self, options: &StoreOptions) -> Db {
        match self {
            Self::Sqlite(file) => Db::connect(file.url(), options).await,
            Self::Postgres(pool) => Db::from_pg_pool(pool.clone(), options).await,
        }
        .unwrap_or_else(|e| panic!("opening the test database again: {e}"))
    }

    async fn fresh(&self) -> FreshDatabase {
        match self {
            Self::Sqlite(_) => {
                let file = SqliteFile::in_temp_dir();
                FreshDatabase {
                    url: file.url().to_owned(),
                    _file: Some(file),
                }
            }
            Self::Postgres(pool) => FreshDatabase {
                url: postgres::second_database(pool).await,
                _file: None,
            },
        }
    }
}

/// An empty database from [`TestDatabase::fresh`]; keep it alive while the database is in use (a
/// SQLite file is removed when this is dropped).
#[derive(Debug)]
pub struct FreshDatabase {
    url: String,
    _file: Option<SqliteFile>,
}

impl FreshDatabase {
    /// The database's URL.
    pub fn url(&self) -> &str {
        &self.url
    }
}
